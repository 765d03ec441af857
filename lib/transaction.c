/*
 * Transactions spanning several calls on a handle, the runner that runs
 * one again after a serialization failure or deadlock, and the clock the
 * library's timestamps use.
 */
#include <string.h>
#include <time.h>

#include "internal.h"

static int status(const spotdb_db *db)
{
    return db && db->conn ? (int)PQtransactionStatus(db->conn)
                          : (int)PQTRANS_UNKNOWN;
}

/* tx_open too: a transaction whose connection was lost is still open
 * for the caller until spotdb_rollback() ends it. */
int spotdb_in_transaction(const spotdb_db *db)
{
    int st = status(db);

    return (db && db->tx_open) || st == PQTRANS_INTRANS ||
           st == PQTRANS_INERROR;
}

static int begin_with(spotdb_db *db, const char *sql)
{
    int rc;

    if (!db) {
        spotdb__clear_error(db);
        return spotdb__fail(NULL, SPOTDB_EINVAL, "the handle is NULL");
    }
    if ((rc = spotdb__enter(db, true)) != 0)
        return rc;
    if (spotdb_in_transaction(db))
        return spotdb__fail(db, SPOTDB_EINVAL, "begin: a transaction is "
                            "already open (transactions do not nest)");
    if ((rc = spotdb__command(db, sql, "begin")) == 0)
        db->tx_open = true;
    return rc;
}

int spotdb_begin(spotdb_db *db)
{
    return begin_with(db, "BEGIN");
}

int spotdb_commit(spotdb_db *db)
{
    bool failed;
    int rc;

    spotdb__clear_error(db);
    if (!db)
        return spotdb__fail(NULL, SPOTDB_EINVAL, "the handle is NULL");
    if (!spotdb_in_transaction(db))
        return spotdb__fail(db, SPOTDB_EINVAL, "commit: no transaction is "
                            "open");
    /* A connection lost before COMMIT was sent: the server rolled back,
     * and spotdb__enter says so. */
    if ((rc = spotdb__enter(db, true)) != 0) {
        db->tx_open = false;
        return rc;
    }
    /* The server answers COMMIT of a failed transaction with ROLLBACK and
     * no error; the caller must hear that nothing was stored. */
    failed = status(db) == PQTRANS_INERROR;
    rc = spotdb__command(db, "COMMIT", "commit");
    db->tx_open = false;
    if (rc != 0)
        return rc;
    if (failed)
        return spotdb__fail(db, SPOTDB_ESQL, "commit: a call in the "
                            "transaction had failed, so it was rolled back "
                            "and nothing was stored");
    return 0;
}

/* Ends the transaction without touching the handle's error: the runner
 * keeps the failure that made it roll back. */
static int end_transaction(spotdb_db *db)
{
    bool open = spotdb_in_transaction(db);

    db->tx_open = false;
    if (!open || PQstatus(db->conn) != CONNECTION_OK || db->broken)
        return 0;               /* a lost connection rolled it back */
    spotdb__quiet(db, "ROLLBACK", "rollback");
    return 0;
}

int spotdb_rollback(spotdb_db *db)
{
    spotdb__clear_error(db);
    if (!db)
        return spotdb__fail(NULL, SPOTDB_EINVAL, "the handle is NULL");
    if (!spotdb_in_transaction(db))
        return 0;
    if (db->tx_open && PQstatus(db->conn) == CONNECTION_OK && !db->broken) {
        db->tx_open = false;
        return spotdb__command(db, "ROLLBACK", "rollback");
    }
    return end_transaction(db);
}

/* ---- the runner ---------------------------------------------------------- */

int spotdb_retry_options_init(spotdb_retry_options *opts,
                              unsigned int version)
{
    return spotdb__options_init(opts, sizeof *opts, version,
                                SPOTDB_RETRY_OPTIONS_VERSION,
                                "spotdb_retry_options_init");
}

/* The BEGIN for an isolation level named in the options: the SQL comes
 * from this list, never from the caller's string. */
static const char *begin_sql(const char *isolation)
{
    static const struct {
        const char *name, *sql;
    } levels[] = {
        { "serializable", "BEGIN ISOLATION LEVEL SERIALIZABLE" },
        { "repeatable read", "BEGIN ISOLATION LEVEL REPEATABLE READ" },
        { "read committed", "BEGIN ISOLATION LEVEL READ COMMITTED" },
    };

    if (!isolation)
        return "BEGIN";
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
        if (strcmp(isolation, levels[i].name) == 0)
            return levels[i].sql;
    return NULL;
}

typedef struct retry_policy {
    int32_t max_attempts, base_ms, max_ms;
    const char *begin;
} retry_policy;

static int read_policy(spotdb_db *db, const spotdb_retry_options *o,
                       retry_policy *p)
{
    static const spotdb_retry_options defaults = SPOTDB_RETRY_OPTIONS_INIT;

    if (!o)
        o = &defaults;
    if (o->version != SPOTDB_RETRY_OPTIONS_VERSION)
        return spotdb__fail(db, SPOTDB_EINVAL, "spotdb_run_transaction: "
                            "opts->version is %u, expected %d", o->version,
                            SPOTDB_RETRY_OPTIONS_VERSION);
    if (o->max_attempts < 0 || o->base_delay_ms < 0 || o->max_delay_ms < 0)
        return spotdb__fail(db, SPOTDB_EINVAL, "spotdb_run_transaction: "
                            "opts->max_attempts, base_delay_ms and "
                            "max_delay_ms must be >= 0");
    if (!(p->begin = begin_sql(o->isolation)))
        return spotdb__fail(db, SPOTDB_EINVAL, "spotdb_run_transaction: "
                            "opts->isolation must be NULL, \"serializable\", "
                            "\"repeatable read\" or \"read committed\"");
    p->max_attempts = o->max_attempts ? o->max_attempts : 5;
    p->base_ms = o->base_delay_ms ? o->base_delay_ms : 10;
    p->max_ms = o->max_delay_ms ? o->max_delay_ms : 1000;
    return 0;
}

/* Between half and all of base * 2^(attempt - 1), capped: clients that
 * collided once must not collide again in lockstep. */
static void back_off(const retry_policy *p, int32_t attempt, uint64_t *seed)
{
    int64_t ms = p->base_ms;
    struct timespec ts;

    for (int32_t i = 1; i < attempt && ms < p->max_ms; i++)
        ms *= 2;
    if (ms > p->max_ms)
        ms = p->max_ms;
    *seed ^= *seed << 13;       /* xorshift64 */
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    ms = ms / 2 + (int64_t)(*seed % (uint64_t)(ms / 2 + 1));
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

int spotdb_run_transaction(spotdb_db *db, spotdb_transaction_fn fn,
                           void *payload, const spotdb_retry_options *opts,
                           int32_t *attempts)
{
    uint64_t seed = (uint64_t)spotdb__monotonic_us() ^ (uint64_t)(size_t)db;
    retry_policy p = { 0, 0, 0, NULL };
    int32_t n = 0;
    int rc;

    if (attempts)
        *attempts = 0;
    spotdb__clear_error(db);
    if (!db || !fn)
        return spotdb__fail(db, SPOTDB_EINVAL, "spotdb_run_transaction: db "
                            "and fn must not be NULL");
    if ((rc = read_policy(db, opts, &p)) != 0)
        return rc;
    seed |= 1;
    for (;;) {
        if ((rc = begin_with(db, p.begin)) != 0)
            break;
        n++;
        rc = fn(db, payload);
        if (rc == 0)
            rc = spotdb_commit(db);
        else
            end_transaction(db);
        if (rc != SPOTDB_ESERIALIZATION || n >= p.max_attempts)
            break;
        back_off(&p, n, &seed);
    }
    if (attempts)
        *attempts = n;
    return rc;
}

int64_t spotdb_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
