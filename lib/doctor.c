/*
 * spotdb_doctor_run(): what an operator should fix, as a list of findings
 * (spotdb/doctor.h).  Each check reads; none writes.  A check the server
 * refuses becomes a finding, so that one missing privilege does not hide
 * the other checks; only a lost connection or memory ends the run.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "internal.h"
#include "password.h"

/* Migration 0001 seeds the login admin / admin (docs/migrations.md). */
#define SEEDED_ADMIN_USERNAME "admin"
#define SEEDED_ADMIN_PASSWORD "admin"

#define STR(x) #x
#define XSTR(x) STR(x)

#define MAX_GROUPS 10               /* shared external ids named */
#define MAX_ACCOUNTS 10             /* account ids named per group */
#define MAX_PENDING 10              /* pending migrations named */

typedef struct builder {
    spotdb_doctor_report *r;
    size_t cap;
    bool oom;
} builder;

static void one_line(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r' || *s == '\t')
            *s = ' ';
}

static void add(builder *b, int severity, const char *code, const char *fmt,
                ...) SPOTDB__PRINTF(4, 5);

static void add(builder *b, int severity, const char *code, const char *fmt,
                ...)
{
    spotdb_doctor_finding *f;
    va_list ap;
    char *msg;
    int n;

    if (b->oom)
        return;
    if (b->r->count == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        spotdb_doctor_finding *grown = spotdb__realloc(b->r->findings,
                                               cap * sizeof *grown);
        if (!grown) {
            b->oom = true;
            return;
        }
        b->r->findings = grown;
        b->cap = cap;
    }
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !(msg = spotdb__malloc((size_t)n + 1))) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, (size_t)n + 1, fmt, ap);
    va_end(ap);
    one_line(msg);
    f = &b->r->findings[b->r->count++];
    f->severity = severity;
    f->code = code;
    f->message = msg;
    if (severity > b->r->worst)
        b->r->worst = severity;
}

/* Failures that end the run: the following checks could not talk to the
 * server either. */
static bool fatal(int rc)
{
    return rc == SPOTDB_ECONN || rc == SPOTDB_ENOMEM ||
           rc == SPOTDB_ETIMEOUT || rc == SPOTDB_ECANCELED ||
           rc == SPOTDB_EUNKNOWN;
}

/* A check that failed with code rc: a finding, unless the run must end. */
static int refused(builder *b, spotdb_db *db, int rc, const char *check)
{
    if (fatal(rc))
        return rc;
    add(b, SPOTDB_DOCTOR_WARNING, "check_failed", "%s: not checked: %s",
        check, db->errmsg[0] ? db->errmsg : spotdb_strerror(rc));
    return 0;
}

/* ---- the seeded admin password ----------------------------------------- */

/* Verified here rather than by spotdb_user_authenticate(), which would
 * record a login and re-hash a weak hash: the doctor changes nothing. */
static int check_admin_password(builder *b, spotdb_db *db)
{
    static const char *const params[1] = { SEEDED_ADMIN_USERNAME };
    char hash[SPOTDB__HASH_LEN + 1] = "";
    bool active = false, weak, match;
    int rc;
    PGresult *res = spotdb__exec_params(
        db, "SELECT hashed_password, is_active FROM users WHERE username = $1",
        1, params, "reading the admin user");

    if (!res)
        return refused(b, db, db->errcode, "default admin password");
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) &&
        PQgetlength(res, 0, 0) == SPOTDB__HASH_LEN) {
        memcpy(hash, PQgetvalue(res, 0, 0), SPOTDB__HASH_LEN + 1);
        active = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    }
    PQclear(res);
    if (!hash[0])
        return 0;           /* no such user, or no bcrypt hash: no login */
    rc = spotdb__password_verify(db, SEEDED_ADMIN_PASSWORD, hash, &match,
                                 &weak);
    spotdb__wipe(hash, sizeof hash);
    if (rc != 0)
        return refused(b, db, rc, "default admin password");
    if (match)
        add(b, active ? SPOTDB_DOCTOR_ERROR : SPOTDB_DOCTOR_WARNING,
            "default_admin_password",
            "user \"" SEEDED_ADMIN_USERNAME "\"%s still has the default "
            "password that migration 0001 seeds: set a new one "
            "(spotdb_user_set_password)",
            active ? "" : " (inactive)");
    return 0;
}

/* ---- shared external ids ----------------------------------------------- */

/* The external id is the shared secret of the STS AssumeRole call: it is
 * grouped on in the server and never selected, so no message, trace or
 * result of the library ever carries it.  Accounts are named by their
 * AWS account id. */
static const char shared_external_id_sql[] =
    "SELECT count(*) OVER (), sum(count(*)) OVER (), count(*),"
    " array_to_string((array_agg(account_id ORDER BY account_id))[1:"
    XSTR(MAX_ACCOUNTS) "], ', ')"
    " FROM accounts GROUP BY external_id HAVING count(*) > 1"
    " ORDER BY min(account_id) LIMIT " XSTR(MAX_GROUPS);

static int check_shared_external_ids(builder *b, spotdb_db *db)
{
    PGresult *res = spotdb__exec(db, shared_external_id_sql,
                                 "looking for shared external ids");
    char list[2048] = "";
    size_t used = 0;
    long groups, accounts;

    if (!res)
        return refused(b, db, db->errcode, "shared external ids");
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    groups = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    accounts = strtol(PQgetvalue(res, 0, 1), NULL, 10);
    for (int r = 0; r < PQntuples(res) && used < sizeof list; r++) {
        long n = strtol(PQgetvalue(res, r, 2), NULL, 10);
        int w = snprintf(list + used, sizeof list - used, "%s%s%s",
                         r ? "; " : "", PQgetvalue(res, r, 3),
                         n > MAX_ACCOUNTS ? ", ..." : "");
        used += w > 0 ? (size_t)w : 0;
    }
    add(b, SPOTDB_DOCTOR_WARNING, "shared_external_id",
        "%ld external id%s shared by %ld accounts (each group shares one): "
        "%s%s; give each account's role an external id of its own "
        "(confused-deputy protection)",
        groups, groups == 1 ? " is" : "s are", accounts, list,
        groups > PQntuples(res) ? "; ..." : "");
    PQclear(res);
    return 0;
}

/* ---- TLS of the connection --------------------------------------------- */

/* The connection's sslmode, and whether libpq had a root certificate
 * file: with one, require (and prefer, allow) verify the chain as
 * verify-ca does.  libpq's rule: sslrootcert, else
 * ~/.postgresql/root.crt. */
static void effective_sslmode(PGconn *conn, char *mode, size_t n,
                              bool *root_cert)
{
    PQconninfoOption *opts = PQconninfo(conn);
    const char *home = getenv("HOME");
    char path[1024] = "";

    snprintf(mode, n, "prefer");            /* libpq's default */
    if (home && *home)
        snprintf(path, sizeof path, "%s/.postgresql/root.crt", home);
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (strcmp(o->keyword, "sslmode") == 0 && o->val && *o->val)
            snprintf(mode, n, "%s", o->val);
        if (strcmp(o->keyword, "sslrootcert") == 0 && o->val && *o->val)
            snprintf(path, sizeof path, "%s", o->val);
    }
    PQconninfoFree(opts);
    *root_cert = path[0] && access(path, R_OK) == 0;
}

/* By the rule of the sslmode default (db.h): the host the connection
 * reached, by name and by address (host=localhost hostaddr=10.1.2.3
 * reaches 10.1.2.3). */
static void check_tls(builder *b, PGconn *conn)
{
    const char *host = PQhost(conn), *addr = PQhostaddr(conn);
    const char *port = PQport(conn);
    bool show_addr = addr && *addr && host && strcmp(host, addr) != 0;
    char mode[32], where[600];
    bool root_cert;

    if (spotdb__hosts_local(host) && spotdb__hosts_local(addr))
        return;
    /* GSSAPI encryption authenticates the server through Kerberos. */
    if (PQgssEncInUse(conn))
        return;
    effective_sslmode(conn, mode, sizeof mode, &root_cert);
    snprintf(where, sizeof where, "the connection to host \"%s\"%s%s%s "
             "port %s", host ? host : "", show_addr ? " (" : "",
             show_addr ? addr : "", show_addr ? ")" : "",
             port && *port ? port : "5432");
    if (!PQsslInUse(conn))
        add(b, SPOTDB_DOCTOR_ERROR, "tls_missing",
            "%s is not encrypted (sslmode=%s): set sslmode=verify-full and "
            "sslrootcert to the CA of the server's certificate", where, mode);
    else if (strcmp(mode, "verify-ca") == 0 ||
             (strcmp(mode, "verify-full") != 0 && root_cert))
        add(b, SPOTDB_DOCTOR_WARNING, "tls_hostname_unchecked",
            "%s verifies that the server's certificate comes from the CA "
            "but not that it names the host (sslmode=%s): set "
            "sslmode=verify-full", where, mode);
    else if (strcmp(mode, "verify-full") != 0)
        add(b, SPOTDB_DOCTOR_ERROR, "tls_unverified",
            "%s is encrypted but the server's certificate is not verified "
            "(sslmode=%s): anyone on the path can pose as the server; set "
            "sslmode=verify-full and sslrootcert to the CA of the server's "
            "certificate", where, mode);
}

/* ---- schema ------------------------------------------------------------ */

static bool applied(const spotdb_status *st, int64_t version)
{
    for (size_t i = 0; i < st->applied_count; i++)
        if (st->applied[i].version == version &&
            st->applied[i].state != SPOTDB_MIGRATION_UNKNOWN)
            return true;
    return false;
}

static void check_unversioned(builder *b, const spotdb_status *st)
{
    static const char *const what[] = {
        "and none of schema v1: run `spotdb migrate`",
        "but schema v1 built by hand: `spotdb migrate` will adopt it as "
        "version 1",
        "but part of schema v1, or a different one: `spotdb migrate` "
        "refuses it and lists the differences",
    };
    int k = st->unversioned_schema;

    add(b, SPOTDB_DOCTOR_ERROR, "schema_unversioned",
        "the database has no spotdb_schema_migrations table, %s",
        k >= 0 && k <= 2 ? what[k]
                         : "and this role may not probe for a hand-built "
                           "schema (it needs CREATE on the database)");
}

static void check_history(builder *b, const spotdb_status *st)
{
    char names[1024] = "";
    size_t used = 0;

    for (size_t i = 0; i < st->applied_count; i++) {
        const spotdb_migration_info *m = &st->applied[i];

        if (m->state == SPOTDB_MIGRATION_CHANGED)
            add(b, SPOTDB_DOCTOR_ERROR, "migration_changed",
                "the checksum recorded for applied migration %04" PRId64
                "_%s.sql differs from the library's copy (the file changed "
                "after it was applied, or the row was edited): `spotdb "
                "migrate` refuses this database", m->version, m->name);
        else if (m->state == SPOTDB_MIGRATION_UNKNOWN)
            add(b, SPOTDB_DOCTOR_WARNING, "migration_unknown",
                "the database records migration %04" PRId64 "_%s, which "
                "libspotdb %s does not know: the database is newer than "
                "this library", m->version, m->name, SPOTDB_VERSION);
    }
    for (size_t i = 0; i < st->pending_count && i < MAX_PENDING; i++) {
        int w = snprintf(names + used, sizeof names - used, "%s%04" PRId64
                         "_%s", i ? ", " : "", st->pending[i].version,
                         st->pending[i].name);
        used += w > 0 && (size_t)w < sizeof names - used ? (size_t)w : 0;
    }
    if (st->pending_count)
        add(b, SPOTDB_DOCTOR_WARNING, "migration_pending",
            "%zu migration%s not applied yet: %s%s; run `spotdb migrate`",
            st->pending_count, st->pending_count == 1 ? " is" : "s are",
            names, st->pending_count > MAX_PENDING ? ", ..." : "");
}

/* The catalog the first n embedded migrations build, against the
 * database's, in a transaction that is rolled back whatever happens. */
static int compare_catalog(builder *b, spotdb_db *db, size_t n)
{
    int match = SPOTDB__CATALOG_EQUAL;
    int rc = spotdb__command(db, "BEGIN", "starting the schema comparison");

    if (rc == 0)
        rc = spotdb__catalog_compare_many(
            db, spotdb__builtin_migrations.items, n, &match);
    if (rc != 0 && strcmp(db->sqlstate, "42501") == 0) {
        add(b, SPOTDB_DOCTOR_INFO, "schema_not_compared",
            "the schema was not compared with what the migrations build: "
            "this role may not create the scratch schema the comparison "
            "needs (it needs CREATE on the database)");
        rc = 0;
    } else if (rc != 0)
        rc = refused(b, db, rc, "schema drift");
    else if (match == SPOTDB__CATALOG_DIFFERENT)
        add(b, SPOTDB_DOCTOR_WARNING, "schema_drift", "%s", db->errmsg);
    else if (match == SPOTDB__CATALOG_ABSENT)
        add(b, SPOTDB_DOCTOR_WARNING, "schema_drift",
            "the current schema holds none of the tables, views and "
            "functions that the applied migrations build: does "
            "search_path name the right schema?");
    if (PQstatus(db->conn) == CONNECTION_OK &&
        PQtransactionStatus(db->conn) != PQTRANS_IDLE)
        spotdb__quiet(db, "ROLLBACK", "ending the schema comparison");
    return rc;
}

static int check_drift(builder *b, spotdb_db *db, const spotdb_status *st)
{
    const spotdb__migration_set *set = &spotdb__builtin_migrations;
    size_t prefix = 0;
    bool hole = false, unknown = false;

    for (size_t i = 0; i < st->applied_count; i++)
        unknown = unknown || st->applied[i].state == SPOTDB_MIGRATION_UNKNOWN;
    while (prefix < set->count && applied(st, set->items[prefix].version))
        prefix++;
    for (size_t i = prefix; i < set->count; i++)
        hole = hole || applied(st, set->items[i].version);
    if (unknown || hole) {
        add(b, SPOTDB_DOCTOR_INFO, "schema_not_compared",
            "the schema was not compared with what the migrations build: "
            "%s", unknown ? "the database has migrations this library does "
                            "not know"
                          : "migrations were applied out of order");
        return 0;
    }
    return prefix ? compare_catalog(b, db, prefix) : 0;
}

/* ---- the report -------------------------------------------------------- */

void spotdb_doctor_report_free(spotdb_doctor_report *report)
{
    if (!report)
        return;
    for (size_t i = 0; i < report->count; i++)
        free((char *)report->findings[i].message);
    free(report->findings);
    free(report);
}

const char *spotdb_doctor_severity_name(int severity)
{
    switch (severity) {
    case SPOTDB_DOCTOR_INFO: return "info";
    case SPOTDB_DOCTOR_WARNING: return "warning";
    case SPOTDB_DOCTOR_ERROR: return "error";
    default: return "unknown";
    }
}

static int run_checks(builder *b, spotdb_db *db, const spotdb_status *st)
{
    /* Without a tracking table the tables may not exist: they are read
     * only when the status probe found schema v1 complete. */
    bool tables = st->tracked || st->unversioned_schema == 1;
    int rc = 0;

    if (tables && (rc = check_admin_password(b, db)) == 0)
        rc = check_shared_external_ids(b, db);
    if (rc != 0)
        return rc;
    check_tls(b, db->conn);
    if (!st->tracked) {
        check_unversioned(b, st);
        return 0;
    }
    check_history(b, st);
    return check_drift(b, db, st);
}

int spotdb_doctor_run(spotdb_doctor_report **out, spotdb_db *db)
{
    spotdb_status *st = NULL;
    builder b = { NULL, 0, false };
    int rc;

    if (out)
        *out = NULL;
    if ((rc = spotdb__enter(db, false)) != 0)
        return rc;
    if (!out || !db)
        return spotdb__fail(db, SPOTDB_EINVAL, "spotdb_doctor_run: out and "
                            "db must not be NULL");
    if (db->tx_open)
        return spotdb__fail(db, SPOTDB_EINVAL, "spotdb_doctor_run: a "
                            "transaction is open on the handle; end it first");
    if ((rc = spotdb_status_get(&st, db)) != 0)
        return rc;
    if (!(b.r = spotdb__calloc(1, sizeof *b.r))) {
        spotdb_status_free(st);
        return spotdb__fail(db, SPOTDB_ENOMEM, "out of memory");
    }
    rc = run_checks(&b, db, st);
    spotdb_status_free(st);
    if (rc == 0 && b.oom)
        rc = spotdb__fail(db, SPOTDB_ENOMEM, "out of memory");
    if (rc != 0) {
        spotdb_doctor_report_free(b.r);
        return rc;
    }
    /* a refused check is a finding, not a failure */
    spotdb__clear_error(db);
    *out = b.r;
    return 0;
}
