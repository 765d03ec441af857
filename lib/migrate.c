/*
 * Applying the embedded migrations (docs/migrations.md).
 *
 * Order of a run: take the session-level advisory lock (so concurrent
 * migrators queue and each version is applied once), adopt an unversioned
 * v1 schema when there is one, refuse a database that is newer or has
 * drifted, then apply each pending migration in its own transaction
 * together with its tracking row.  The lock is released on every path;
 * should the process die, the server releases it with the session.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "internal.h"

/* "spotdb" in ASCII, then the lock's own number: a constant any tool can
 * look up in pg_locks (classid 0x73706f74, objid 0x64620001). */
#define MIGRATE_LOCK_KEY "8318271057444339713"
#define DEFAULT_LOCK_TIMEOUT_MS 60000

static const char tracking_ddl[] =
    "CREATE TABLE IF NOT EXISTS spotdb_schema_migrations ("
    " version bigint PRIMARY KEY,"
    " name text NOT NULL,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now(),"
    " execution_ms integer NOT NULL,"
    " compatible boolean NOT NULL DEFAULT false);"
    /* Tables made by libspotdb 0.1.0 lack the column. */
    "ALTER TABLE spotdb_schema_migrations"
    " ADD COLUMN IF NOT EXISTS compatible boolean NOT NULL DEFAULT false";

static const char record_sql[] =
    "INSERT INTO spotdb_schema_migrations (version, name, checksum, "
    "execution_ms, compatible) VALUES ($1, $2, $3, $4, $5)";

/* A row of the tracking table. */
typedef struct applied {
    int64_t version;
    char *name;
    char *checksum;
    int64_t applied_at_us;
    int32_t execution_ms;
} applied;

typedef struct applied_list {
    applied *rows;
    size_t n;
} applied_list;

int spotdb_migrate_options_init(spotdb_migrate_options *opts,
                                unsigned int version)
{
    return spotdb__options_init(opts, sizeof *opts, version,
                                SPOTDB_MIGRATE_OPTIONS_VERSION,
                                "spotdb_migrate_options_init");
}

size_t spotdb_migration_embedded_count(void)
{
    return spotdb__builtin_migrations.count;
}

static void info_from(spotdb_migration_info *info, const spotdb__migration *m)
{
    info->version = m->version;
    info->name = m->name;
    info->checksum = m->checksum;
    info->applied_at_us = 0;
    info->execution_ms = -1;
    info->state = SPOTDB_MIGRATION_PENDING;
}

int spotdb_migration_embedded(spotdb_migration_info *out, size_t index)
{
    spotdb__clear_last_error();
    if (!out || index >= spotdb__builtin_migrations.count)
        return spotdb__fail(NULL, SPOTDB_EINVAL,
                            "spotdb_migration_embedded: index %zu out of "
                            "range (0 to %zu)", index,
                            spotdb__builtin_migrations.count - 1);
    info_from(out, &spotdb__builtin_migrations.items[index]);
    return 0;
}

static const spotdb__migration *find(const spotdb__migration_set *set,
                                     int64_t version)
{
    for (size_t i = 0; i < set->count; i++)
        if (set->items[i].version == version)
            return &set->items[i];
    return NULL;
}

static int64_t latest(const spotdb__migration_set *set)
{
    return set->count ? set->items[set->count - 1].version : 0;
}

static int64_t now_us(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the tracking table ------------------------------------------------ */

static void applied_free(applied_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->rows[i].name);
        free(l->rows[i].checksum);
    }
    free(l->rows);
    memset(l, 0, sizeof *l);
}

static int tracking_exists(spotdb_db *db, bool *exists)
{
    PGresult *res = spotdb__exec(db, "SELECT to_regclass("
                                     "'spotdb_schema_migrations') IS NOT NULL",
                                 "looking for spotdb_schema_migrations");
    if (!res)
        return db->errcode;
    *exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return 0;
}

static int load_applied(spotdb_db *db, applied_list *out)
{
    PGresult *res = spotdb__exec(
        db,
        "SELECT version, name, checksum, "
        "(extract(epoch FROM applied_at) * 1000000)::bigint, execution_ms "
        "FROM spotdb_schema_migrations ORDER BY version",
        "reading spotdb_schema_migrations");
    int rows;

    memset(out, 0, sizeof *out);
    if (!res)
        return db->errcode;
    rows = PQntuples(res);
    out->rows = spotdb__calloc((size_t)rows + 1, sizeof *out->rows);
    if (!out->rows) {
        PQclear(res);
        return spotdb__fail(db, SPOTDB_ENOMEM, "out of memory");
    }
    for (int r = 0; r < rows; r++) {
        applied *a = &out->rows[r];

        a->version = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        a->name = spotdb__strdup(PQgetvalue(res, r, 1));
        a->checksum = spotdb__strdup(PQgetvalue(res, r, 2));
        a->applied_at_us = strtoll(PQgetvalue(res, r, 3), NULL, 10);
        a->execution_ms = (int32_t)strtol(PQgetvalue(res, r, 4), NULL, 10);
        out->n = (size_t)r + 1;
        if (!a->name || !a->checksum) {
            PQclear(res);
            applied_free(out);
            return spotdb__fail(db, SPOTDB_ENOMEM, "out of memory");
        }
    }
    PQclear(res);
    return 0;
}

static bool is_applied(const applied_list *l, int64_t version)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->rows[i].version == version)
            return true;
    return false;
}

static int64_t current_version(const applied_list *l)
{
    return l->n ? l->rows[l->n - 1].version : 0;
}

/* Refuse, before anything changes, a database this library must not
 * touch: one that is newer, one whose history was rewritten, and one with
 * a hole below its current version. */
static int verify_history(spotdb_db *db, const spotdb__migration_set *set,
                          const applied_list *l)
{
    int64_t cur = current_version(l);

    for (size_t i = 0; i < l->n; i++) {
        const applied *a = &l->rows[i];
        const spotdb__migration *m = find(set, a->version);

        if (!m)
            return spotdb__fail(db, SPOTDB_ESCHEMA,
                                "the database records migration %" PRId64
                                " (%s), which libspotdb %s does not know "
                                "(its newest is %" PRId64 "): the database is "
                                "newer than this library; upgrade libspotdb",
                                a->version, a->name, SPOTDB_VERSION,
                                latest(set));
        if (strcmp(m->checksum, a->checksum) != 0)
            return spotdb__fail(db, SPOTDB_ECHECKSUM,
                                "checksum mismatch for %s: the database "
                                "applied %s, the library embeds %s; an applied "
                                "migration must never change (add a new one "
                                "instead)",
                                m->filename, a->checksum, m->checksum);
    }
    for (size_t i = 0; i < set->count; i++)
        if (set->items[i].version < cur && !is_applied(l, set->items[i].version))
            return spotdb__fail(db, SPOTDB_ESCHEMA,
                                "%s is not applied but the later version %"
                                PRId64 " is; refusing to apply migrations out "
                                "of order", set->items[i].filename, cur);
    return 0;
}

/* ---- running one migration -------------------------------------------- */

/* The migration's statements, with a failure that says where the database
 * stays; a statement the server rejects is a failed migration. */
static int run_migration(spotdb_db *db, const spotdb__migration *m,
                         int64_t previous)
{
    char outcome[96];
    int rc;

    snprintf(outcome, sizeof outcome, " and was rolled back; the database "
             "stays at version %" PRId64, previous);
    rc = spotdb__run_script(db, m, "migration ", outcome);
    if (rc == SPOTDB_ESQL || rc == SPOTDB_EINVAL || rc == SPOTDB_ECONFLICT ||
        rc == SPOTDB_EREFERENCE || rc == SPOTDB_ERROR)
        rc = db->errcode = SPOTDB_EMIGRATE;
    return rc;
}

static int record(spotdb_db *db, const spotdb__migration *m, int32_t ms)
{
    char version[24], elapsed[16];
    const char *params[5] = { version, m->name, m->checksum, elapsed,
                              m->compatible ? "true" : "false" };
    PGresult *res;

    snprintf(version, sizeof version, "%" PRId64, m->version);
    snprintf(elapsed, sizeof elapsed, "%" PRId32, ms);
    res = spotdb__exec_params(db, record_sql, 5, params,
                              "recording the migration");
    if (!res)
        return db->errcode;
    PQclear(res);
    return 0;
}

/* Leave the failed transaction without losing the error that ended it. */
static void abort_tx(spotdb_db *db)
{
    if (PQstatus(db->conn) == CONNECTION_OK &&
        PQtransactionStatus(db->conn) != PQTRANS_IDLE)
        spotdb__quiet(db, "ROLLBACK", "rolling back the migration");
}

static void report(const spotdb_migrate_options *opts,
                   const spotdb__migration *m, int state, int32_t ms,
                   const char *sql)
{
    spotdb_migration_info info;

    if (!opts || !opts->callback)
        return;
    info_from(&info, m);
    info.state = state;
    if (state != SPOTDB_MIGRATION_PENDING) {
        info.applied_at_us = now_us(CLOCK_REALTIME);
        info.execution_ms = ms;
    }
    opts->callback(&info, sql, opts->payload);
}

static int apply_one(spotdb_db *db, const spotdb__migration *m,
                     int64_t previous, const spotdb_migrate_options *opts)
{
    int64_t t0 = now_us(CLOCK_MONOTONIC);
    int32_t ms;
    int rc = spotdb__command(db, "BEGIN", "starting the migration");

    if (rc == 0)
        rc = spotdb__command(db, tracking_ddl, "creating the tracking table");
    if (rc == 0)
        rc = run_migration(db, m, previous);
    ms = (int32_t)((now_us(CLOCK_MONOTONIC) - t0) / 1000);
    if (rc == 0)
        rc = record(db, m, ms);
    if (rc == 0)
        rc = spotdb__command(db, "COMMIT", "committing the migration");
    if (rc != 0) {
        abort_tx(db);
        return rc;
    }
    report(opts, m, SPOTDB_MIGRATION_APPLIED, ms, NULL);
    return 0;
}

/* ---- adoption ---------------------------------------------------------- */

/* No tracking table.  Returns 0 with *adopted set when the database held
 * the adoptable schema exactly (recorded now, or in a dry run only
 * reported), 0 with *adopted false when it held none of it. */
static int adopt(spotdb_db *db, const spotdb__migration_set *set,
                 const spotdb_migrate_options *opts, bool *adopted)
{
    const spotdb__migration *m = find(set, set->adoptable_version);
    int match, rc;

    *adopted = false;
    if (!m)
        return 0;
    if ((rc = spotdb__command(db, "BEGIN", "starting adoption")) != 0)
        return rc;
    rc = spotdb__catalog_compare(db, m, &match);
    if (rc == 0 && match == SPOTDB__CATALOG_DIFFERENT)
        rc = db->errcode;
    if (rc == 0 && match == SPOTDB__CATALOG_EQUAL && !opts->dry_run) {
        rc = spotdb__command(db, tracking_ddl, "creating the tracking table");
        if (rc == 0)
            rc = record(db, m, 0);
        if (rc == 0)
            rc = spotdb__command(db, "COMMIT", "committing the adoption");
    }
    abort_tx(db);
    if (rc != 0)
        return rc;
    *adopted = match == SPOTDB__CATALOG_EQUAL;
    if (*adopted)
        report(opts, m, SPOTDB_MIGRATION_ADOPTED, 0, NULL);
    return 0;
}

/* ---- the run ----------------------------------------------------------- */

static int check_options(spotdb_db *db, const spotdb__migration_set *set,
                         const spotdb_migrate_options *o)
{
    if (o->version == 0 || o->version > SPOTDB_MIGRATE_OPTIONS_VERSION)
        return spotdb__fail(db, SPOTDB_EINVAL,
                            "spotdb_migrate: opts->version is %u, expected 1 "
                            "to %d", o->version, SPOTDB_MIGRATE_OPTIONS_VERSION);
    if (o->target_version < 0 ||
        (o->target_version > 0 && !find(set, o->target_version)))
        return spotdb__fail(db, SPOTDB_EINVAL,
                            "spotdb_migrate: target_version %" PRId64 " is not "
                            "an embedded migration (they go from %" PRId64
                            " to %" PRId64 ")",
                            o->target_version,
                            set->count ? set->items[0].version : 0,
                            latest(set));
    if (o->lock_timeout_ms < -1)
        return spotdb__fail(db, SPOTDB_EINVAL,
                            "spotdb_migrate: lock_timeout_ms must be -1 (no "
                            "limit), 0 (default) or positive");
    if (PQtransactionStatus(db->conn) != PQTRANS_IDLE)
        return spotdb__fail(db, SPOTDB_EINVAL,
                            "spotdb_migrate: a transaction is open on this "
                            "handle; migrations run in their own");
    return 0;
}

/* Wait for the advisory lock for at most the configured time.  While the
 * lock is held the server also checks that the client is still there, so
 * a killed migrator releases it promptly even inside a long statement. */
static int lock(spotdb_db *db, const spotdb_migrate_options *o)
{
    char timeout[24];
    const char *params[1] = { timeout };
    PGresult *res;
    int32_t ms = o->lock_timeout_ms == 0 ? DEFAULT_LOCK_TIMEOUT_MS
                                         : o->lock_timeout_ms;

    snprintf(timeout, sizeof timeout, "%" PRId32, ms < 0 ? 0 : ms);
    res = spotdb__exec_params(
        db,
        "SELECT set_config('lock_timeout', $1, false), "
        "set_config('client_connection_check_interval', '1000', false)",
        1, params, "configuring the migration session");
    if (!res)
        return db->errcode;
    PQclear(res);
    res = spotdb__exec(db, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")",
                       "taking the migration lock");
    if (!res && strcmp(db->sqlstate, "55P03") == 0)
        return spotdb__fail(db, SPOTDB_ELOCKED,
                            "another migrator held the migration lock for "
                            "more than %" PRId32 " ms; try again, or raise "
                            "lock_timeout_ms", ms);
    if (!res)
        return db->errcode;
    PQclear(res);
    return spotdb__command(db, "RESET lock_timeout", "resetting lock_timeout");
}

static void unlock(spotdb_db *db)
{
    if (PQstatus(db->conn) != CONNECTION_OK)
        return;
    spotdb__quiet(db, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY "); "
                      "RESET client_connection_check_interval; "
                      "RESET lock_timeout", "releasing the migration lock");
}

static int run_locked(spotdb_db *db, const spotdb__migration_set *set,
                      const spotdb_migrate_options *o)
{
    applied_list l = { 0 };
    bool exists, adopted = false;
    int64_t target = o->target_version ? o->target_version : latest(set);
    int64_t cur;
    int rc;

    if ((rc = tracking_exists(db, &exists)) != 0)
        return rc;
    if (!exists && set->adoptable_version &&
        (rc = adopt(db, set, o, &adopted)) != 0)
        return rc;
    if (exists || (adopted && !o->dry_run))
        if ((rc = load_applied(db, &l)) != 0)
            return rc;
    if ((rc = verify_history(db, set, &l)) != 0)
        goto out;
    cur = adopted && o->dry_run ? set->adoptable_version : current_version(&l);
    if (target < cur) {
        rc = spotdb__fail(db, SPOTDB_EINVAL,
                          "target version %" PRId64 " is below the current "
                          "version %" PRId64 "; there are no down migrations",
                          target, cur);
        goto out;
    }
    for (size_t i = 0; i < set->count && rc == 0; i++) {
        const spotdb__migration *m = &set->items[i];

        if (m->version <= cur || m->version > target)
            continue;
        if (o->dry_run) {
            report(o, m, SPOTDB_MIGRATION_PENDING, -1, m->sql);
            continue;
        }
        if ((rc = apply_one(db, m, cur, o)) == 0)
            cur = m->version;
    }
out:
    applied_free(&l);
    return rc;
}

int spotdb__migrate_set(spotdb_db *db, const spotdb__migration_set *set,
                        const spotdb_migrate_options *opts)
{
    spotdb_migrate_options defaults = SPOTDB_MIGRATE_OPTIONS_INIT;
    int rc;

    if (!db)
        return spotdb__fail(NULL, SPOTDB_EINVAL,
                            "spotdb_migrate: db must not be NULL");
    if ((rc = spotdb__enter(db, false)) != 0)
        return rc;
    if (!opts)
        opts = &defaults;
    if ((rc = check_options(db, set, opts)) != 0)
        return rc;
    /* The lock is a session's: behind a transaction pooler, the next
     * transaction may run on another server connection, and a lock left
     * on the pooled one would be handed to whichever client gets it. */
    if (db->pooled)
        return spotdb__fail(db, SPOTDB_EPOOLER,
                            "spotdb_migrate: this connection goes through a "
                            "transaction-mode connection pooler (such as "
                            "PgBouncer): migrations hold a session lock and "
                            "need a direct connection to PostgreSQL; "
                            "connect to the server's own host and port (a "
                            "session-mode pooler may be declared with "
                            "pooler = SPOTDB_POOLER_NONE)");
    if ((rc = lock(db, opts)) != 0) {
        unlock(db);
        return rc;
    }
    rc = run_locked(db, set, opts);
    unlock(db);
    /* Statements prepared before the schema changed may no longer match
     * it. */
    spotdb__statements_reset(db);
    return rc;
}

int spotdb_migrate(spotdb_db *db, const spotdb_migrate_options *opts)
{
    return spotdb__migrate_set(db, &spotdb__builtin_migrations, opts);
}

/* ---- status ------------------------------------------------------------ */

static int info_copy(spotdb_migration_info *dst, int64_t version,
                     const char *name, const char *checksum, int state)
{
    dst->version = version;
    dst->name = spotdb__strdup(name);
    dst->checksum = spotdb__strdup(checksum);
    dst->applied_at_us = 0;
    dst->execution_ms = -1;
    dst->state = state;
    return dst->name && dst->checksum ? 0 : SPOTDB_ENOMEM;
}

void spotdb_status_free(spotdb_status *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->applied_count; i++) {
        free((char *)st->applied[i].name);
        free((char *)st->applied[i].checksum);
    }
    for (size_t i = 0; i < st->pending_count; i++) {
        free((char *)st->pending[i].name);
        free((char *)st->pending[i].checksum);
    }
    free(st->applied);
    free(st->pending);
    free(st);
}

static int fill_status(spotdb_status *st, const spotdb__migration_set *set,
                       const applied_list *l)
{
    st->applied = spotdb__calloc(l->n + 1, sizeof *st->applied);
    st->pending = spotdb__calloc(set->count + 1, sizeof *st->pending);
    if (!st->applied || !st->pending)
        return SPOTDB_ENOMEM;
    for (size_t i = 0; i < l->n; i++) {
        const applied *a = &l->rows[i];
        const spotdb__migration *m = find(set, a->version);
        int state = !m ? SPOTDB_MIGRATION_UNKNOWN
                    : strcmp(m->checksum, a->checksum) ? SPOTDB_MIGRATION_CHANGED
                                                      : SPOTDB_MIGRATION_APPLIED;
        spotdb_migration_info *d = &st->applied[st->applied_count++];

        if (info_copy(d, a->version, a->name, a->checksum, state) != 0)
            return SPOTDB_ENOMEM;
        d->applied_at_us = a->applied_at_us;
        d->execution_ms = a->execution_ms;
    }
    for (size_t i = 0; i < set->count; i++) {
        const spotdb__migration *m = &set->items[i];
        if (is_applied(l, m->version))
            continue;
        if (info_copy(&st->pending[st->pending_count++], m->version, m->name,
                      m->checksum, SPOTDB_MIGRATION_PENDING) != 0)
            return SPOTDB_ENOMEM;
    }
    st->current_version = current_version(l);
    st->latest_version = latest(set);
    return 0;
}

/* Without a tracking table: is there a v1 schema to adopt?  Probed in a
 * transaction that is rolled back, so nothing changes.  A role that may
 * not create the scratch schema still gets a status, with -1 here. */
static int probe_unversioned(spotdb_db *db, const spotdb__migration_set *set,
                             int32_t *out)
{
    const spotdb__migration *m = find(set, set->adoptable_version);
    bool own_tx = PQtransactionStatus(db->conn) == PQTRANS_IDLE;
    int match = SPOTDB__CATALOG_ABSENT, rc = 0;

    if (m && own_tx)
        rc = spotdb__command(db, "BEGIN", "starting the probe");
    if (m && rc == 0)
        rc = spotdb__catalog_compare(db, m, &match);
    if (m && own_tx)
        abort_tx(db);
    *out = rc == 0 ? match : -1;
    return rc == SPOTDB_ECONN || rc == SPOTDB_ENOMEM ? rc : 0;
}

int spotdb__status_set(spotdb_status **out, spotdb_db *db,
                       const spotdb__migration_set *set)
{
    applied_list l = { 0 };
    spotdb_status *st;
    bool exists;
    int rc;

    if (!out || !db)
        return spotdb__fail(db, SPOTDB_EINVAL,
                            "spotdb_status_get: out and db must not be NULL");
    *out = NULL;
    if ((rc = spotdb__enter(db, false)) != 0)
        return rc;
    if ((rc = tracking_exists(db, &exists)) != 0)
        return rc;
    if (exists && (rc = load_applied(db, &l)) != 0)
        return rc;
    st = spotdb__calloc(1, sizeof *st);
    if (!st) {
        applied_free(&l);
        return spotdb__fail(db, SPOTDB_ENOMEM, "out of memory");
    }
    st->tracked = exists;
    if (fill_status(st, set, &l) != 0)
        rc = spotdb__fail(db, SPOTDB_ENOMEM, "out of memory");
    if (rc == 0 && !exists)
        rc = probe_unversioned(db, set, &st->unversioned_schema);
    applied_free(&l);
    if (rc != 0) {
        spotdb_status_free(st);
        return rc;
    }
    spotdb__clear_error(db);        /* a probe's differences are not a failure */
    *out = st;
    return 0;
}

int spotdb_status_get(spotdb_status **out, spotdb_db *db)
{
    return spotdb__status_set(out, db, &spotdb__builtin_migrations);
}
