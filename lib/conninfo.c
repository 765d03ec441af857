/*
 * Where connection settings come from, in the documented order (db.h):
 * the argument, DATABASE_URL, the POSTGRES_* variables, libpq's defaults.
 * Parsing is libpq's own (PQconninfoParse), so a URI or keyword string
 * means exactly what it means to psql.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"

#define DEFAULT_CONNECT_TIMEOUT_S 10

static const struct {
    const char *env;
    const char *keyword;
} postgres_env[] = {
    { "POSTGRES_HOST", "host" },
    { "POSTGRES_PORT", "port" },
    { "POSTGRES_USER", "user" },
    { "POSTGRES_PASSWORD", "password" },
    { "POSTGRES_DB", "dbname" },
};
#define N_POSTGRES_ENV (sizeof postgres_env / sizeof postgres_env[0])

/* A dead server or network noticed within 10 s (db.h), unless the
 * settings say otherwise: an idle connection is probed after 5 s, every
 * second, 3 times; data unacknowledged for 8 s gives up.  Linux counts
 * that from the first retransmission, up to 0.6 s after the send, which
 * made 9 s take 9.4-9.7 s through a blackholed path (test_deadpeer.c):
 * too close to 10.  libpq applies them to TCP connections only. */
static const struct {
    const char *keyword, *value;
} dead_peer[] = {
    { "keepalives", "1" },
    { "keepalives_idle", "5" },
    { "keepalives_interval", "1" },
    { "keepalives_count", "3" },
    { "tcp_user_timeout", "8000" },
};
#define N_DEAD_PEER (sizeof dead_peer / sizeof dead_peer[0])

/* Secure by default (db.h): a server reached over the network must prove
 * who it is, so without an sslmode in the settings or PGSSLMODE, a
 * non-local host gets sslmode=verify-full.  A library must not print a
 * warning instead; spotdb_doctor_run() reports a connection that ended
 * up unverified anyway. */
#define SECURE_SSLMODE "verify-full"

const char *spotdb__conn_source_name(int source)
{
    switch (source) {
    case SPOTDB_CONN_ARGUMENT: return "the conninfo argument";
    case SPOTDB_CONN_DATABASE_URL: return "DATABASE_URL";
    case SPOTDB_CONN_POSTGRES_ENV: return "POSTGRES_* variables";
    default: return "libpq defaults";
    }
}

static const char *nonempty_env(const char *name)
{
    const char *v = getenv(name);

    return v && *v ? v : NULL;
}

static int pick_source(const char *conninfo, const char **raw)
{
    bool any = false;

    *raw = NULL;
    if (conninfo && *conninfo) {
        *raw = conninfo;
        return SPOTDB_CONN_ARGUMENT;
    }
    if ((*raw = nonempty_env("DATABASE_URL")) != NULL)
        return SPOTDB_CONN_DATABASE_URL;
    for (size_t i = 0; i < N_POSTGRES_ENV; i++)
        any = any || nonempty_env(postgres_env[i].env);
    return any ? SPOTDB_CONN_POSTGRES_ENV : SPOTDB_CONN_LIBPQ_DEFAULTS;
}

static bool has_keyword(const spotdb__conninfo *ci, const char *kw)
{
    for (size_t i = 0; i < ci->count; i++)
        if (strcmp(ci->keywords[i], kw) == 0)
            return true;
    return false;
}

static void push(spotdb__conninfo *ci, const char *kw, const char *val)
{
    ci->keywords[ci->count] = kw;
    ci->values[ci->count] = val;
    ci->count++;
    ci->keywords[ci->count] = NULL;
    ci->values[ci->count] = NULL;
    if (strcmp(kw, "password") == 0)
        ci->password = val;
}

/* The last non-empty value of `kw`: libpq ignores empty ones. */
static const char *setting(const spotdb__conninfo *ci, const char *kw)
{
    const char *v = NULL;

    for (size_t i = 0; i < ci->count; i++)
        if (strcmp(ci->keywords[i], kw) == 0 && ci->values[i][0])
            v = ci->values[i];
    return v;
}

/* Host names compare without regard to case (DNS), addresses exactly. */
static bool same_name(const char *name, const char *h, size_t n)
{
    if (strlen(name) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = h[i] >= 'A' && h[i] <= 'Z' ? (char)(h[i] - 'A' + 'a') : h[i];

        if (name[i] != c)
            return false;
    }
    return true;
}

static bool is_local_host(const char *h, size_t n)
{
    static const char *const local[] = { "localhost", "127.0.0.1", "::1" };

    /* Empty: libpq's default, the unix socket; '/' or '@': a socket. */
    if (n == 0 || h[0] == '/' || h[0] == '@')
        return true;
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
        if (same_name(local[i], h, n))
            return true;
    return false;
}

bool spotdb__hosts_local(const char *list)
{
    const char *p = list;

    if (!p)
        return true;
    for (;;) {
        size_t n = strcspn(p, ",");

        if (!is_local_host(p, n))
            return false;
        if (!p[n])
            return true;
        p += n + 1;
    }
}

/* Whether to push the secure default: no sslmode anywhere libpq would
 * find one, and a host or hostaddr (from the settings, else PGHOST and
 * PGHOSTADDR) of which at least one is not local.  A service file may
 * name both host and sslmode, and settings given here would override
 * its sslmode: with a service, libpq decides alone. */
static bool wants_verify_full(const spotdb__conninfo *ci)
{
    const char *host = setting(ci, "host"), *addr = setting(ci, "hostaddr");

    if (setting(ci, "sslmode") || setting(ci, "requiressl") ||
        nonempty_env("PGSSLMODE") || nonempty_env("PGREQUIRESSL") ||
        setting(ci, "service") || nonempty_env("PGSERVICE"))
        return false;
    if (!host)
        host = nonempty_env("PGHOST");
    if (!addr)
        addr = nonempty_env("PGHOSTADDR");
    return !spotdb__hosts_local(host) || !spotdb__hosts_local(addr);
}

static int parse_raw(spotdb__conninfo *ci)
{
    char *err = NULL;

    ci->parsed = PQconninfoParse(ci->raw, &err);
    if (!ci->parsed) {
        char msg[SPOTDB__ERRMSG_MAX], safe[SPOTDB__ERRMSG_MAX];
        size_t n;

        if (!err)
            return spotdb__fail(NULL, SPOTDB_ENOMEM,
                                "out of memory parsing connection settings");
        snprintf(msg, sizeof msg, "invalid connection settings (from %s): %s",
                 spotdb__conn_source_name(ci->source), err);
        PQfreemem(err);
        n = strlen(msg);
        while (n > 0 && msg[n - 1] == '\n')
            msg[--n] = '\0';
        /* Redact here, with the raw string: once parsing failed the
         * password is known only as whatever the rules find in it. */
        spotdb__redact(safe, sizeof safe, msg, ci->raw, NULL);
        return spotdb__fail(NULL, SPOTDB_EINVAL, "%s", safe);
    }
    return 0;
}

static size_t slots_needed(const spotdb__conninfo *ci)
{
    /* + timeout, fallback name, encoding, target_session_attrs, sslmode,
     * the N_DEAD_PEER settings, end */
    size_t n = N_POSTGRES_ENV + 6 + N_DEAD_PEER;

    for (const PQconninfoOption *o = ci->parsed; o && o->keyword; o++)
        n++;
    return n;
}

int spotdb__conninfo_resolve(spotdb__conninfo *ci, const char *conninfo,
                             const spotdb_open_options *opts)
{
    int rc;
    size_t slots;

    memset(ci, 0, sizeof *ci);
    ci->source = pick_source(conninfo, &ci->raw);
    if (ci->raw && (rc = parse_raw(ci)) != 0)
        return rc;
    slots = slots_needed(ci);
    ci->keywords = spotdb__calloc(slots, sizeof *ci->keywords);
    ci->values = spotdb__calloc(slots, sizeof *ci->values);
    if (!ci->keywords || !ci->values) {
        spotdb__conninfo_free(ci);
        return spotdb__fail(NULL, SPOTDB_ENOMEM, "out of memory");
    }
    for (const PQconninfoOption *o = ci->parsed; o && o->keyword; o++)
        if (o->val)
            push(ci, o->keyword, o->val);
    if (ci->source == SPOTDB_CONN_POSTGRES_ENV)
        for (size_t i = 0; i < N_POSTGRES_ENV; i++) {
            const char *v = nonempty_env(postgres_env[i].env);
            if (v)
                push(ci, postgres_env[i].keyword, v);
        }
    if (!has_keyword(ci, "connect_timeout")) {
        snprintf(ci->timeout, sizeof ci->timeout, "%d",
                 opts && opts->connect_timeout_s > 0 ? (int)opts->connect_timeout_s
                                                     : DEFAULT_CONNECT_TIMEOUT_S);
        push(ci, "connect_timeout", ci->timeout);
    }
    for (size_t i = 0; i < N_DEAD_PEER; i++)
        if (!has_keyword(ci, dead_peer[i].keyword))
            push(ci, dead_peer[i].keyword, dead_peer[i].value);
    if (wants_verify_full(ci))
        push(ci, "sslmode", SECURE_SSLMODE);
    /* libpq uses the fallback only when nothing names application_name,
     * PGAPPNAME included; one the settings give is theirs to keep. */
    if (!has_keyword(ci, "fallback_application_name"))
        push(ci, "fallback_application_name",
             opts && opts->application_name ? opts->application_name
                                            : "libspotdb");
    /* The API speaks UTF-8 whatever the database encoding. */
    if (!has_keyword(ci, "client_encoding"))
        push(ci, "client_encoding", "UTF8");
    return 0;
}

void spotdb__conninfo_set(spotdb__conninfo *ci, const char *kw,
                          const char *val)
{
    for (size_t i = 0; i < ci->count; i++)
        if (strcmp(ci->keywords[i], kw) == 0) {
            ci->values[i] = val;
            return;
        }
    push(ci, kw, val);
}

void spotdb__conninfo_free(spotdb__conninfo *ci)
{
    if (!ci)
        return;
    free(ci->keywords);
    free(ci->values);
    if (ci->parsed)
        PQconninfoFree(ci->parsed);
    memset(ci, 0, sizeof *ci);
}
