/*
 * Where connection settings come from, in the documented order (db.h):
 * the argument, DATABASE_URL, the POSTGRES_* variables, libpq's defaults.
 * Parsing is libpq's own (PQconninfoParse), so a URI or keyword string
 * means exactly what it means to psql.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    /* + timeout, fallback name, encoding, target_session_attrs, end */
    size_t n = N_POSTGRES_ENV + 5;

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
    ci->keywords = calloc(slots, sizeof *ci->keywords);
    ci->values = calloc(slots, sizeof *ci->values);
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
    /* libpq uses the fallback only when nothing names application_name,
     * PGAPPNAME included. */
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
