/*
 * The connection pool: a fixed array of slots under one mutex, and a
 * condition variable that says "a slot may have come free".  The mutex
 * guards only the bookkeeping; opening, checking, resetting and closing
 * a handle (all network round trips) happen outside it, on a slot the
 * thread has marked as its own.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "internal.h"

#define DEFAULT_MAX_SIZE 10
#define MAX_MAX_SIZE 10000
#define DEFAULT_ACQUIRE_TIMEOUT_MS 30000
#define DEFAULT_IDLE_CHECK_MS 1000

enum slot_state {
    SLOT_FREE = 0,                  /* no handle */
    SLOT_IDLE,                      /* a handle waiting in the pool */
    SLOT_LENT,                      /* owned by a borrower, or being
                                       opened or checked for one (db NULL
                                       while opening) */
    SLOT_RETURNING                  /* being reset by spotdb_pool_release */
};

typedef struct slot {
    spotdb_db *db;
    int64_t idle_since;             /* monotonic us, when IDLE */
    int state;
} slot;

struct spotdb_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed;           /* a slot turned IDLE or FREE */
    char *conninfo;                 /* NULL: the environment */
    spotdb_open_options open_opts;
    bool has_open_opts;
    char *application_name;         /* open_opts' copy */
    int32_t max_size;
    int32_t acquire_timeout_ms;     /* -1: forever */
    int64_t idle_check_us;          /* -1: never ping */
    slot *slots;                    /* max_size of them */
    /* Counts and counters, under the lock. */
    int32_t idle, lent, waiting;
    int64_t acquires, waits, timeouts, reconnects, pings;
};

int spotdb_pool_options_init(spotdb_pool_options *opts, unsigned int version)
{
    return spotdb__options_init(opts, sizeof *opts, version,
                                SPOTDB_POOL_OPTIONS_VERSION,
                                "spotdb_pool_options_init");
}

/* How much of a caller's spotdb_open_options exists: a caller built
 * against an older db.h has the shorter struct (the members each version
 * added are listed at SPOTDB_OPEN_OPTIONS_VERSION).  0: unknown. */
static size_t open_options_size(unsigned int version)
{
    if (version == SPOTDB_OPEN_OPTIONS_VERSION)
        return sizeof(spotdb_open_options);
    switch (version) {
    case 1: return offsetof(spotdb_open_options, schema_check);
    case 2: return offsetof(spotdb_open_options, statements);
    case 3: return offsetof(spotdb_open_options, pooler);
    case 4: return offsetof(spotdb_open_options, replica_reads) +
                   sizeof(int32_t);
    default: return 0;
    }
}

static int copy_open_options(spotdb_pool *p, const spotdb_open_options *o)
{
    size_t size;

    if (!o)
        return 0;
    if (!(size = open_options_size(o->version)))
        return spotdb__fail(NULL, SPOTDB_EINVAL, "spotdb_pool_open: "
                            "opts->open_options->version is %u, expected "
                            "1 to %d", o->version,
                            SPOTDB_OPEN_OPTIONS_VERSION);
    memcpy(&p->open_opts, o, size);
    p->has_open_opts = true;
    if (o->application_name) {
        if (!(p->application_name = spotdb__strdup(o->application_name)))
            return spotdb__fail(NULL, SPOTDB_ENOMEM, "out of memory");
        p->open_opts.application_name = p->application_name;
    }
    return 0;
}

/* The options, defaults filled in, every value checked. */
static int read_options(spotdb_pool *p, int32_t *initial,
                        const spotdb_pool_options *opts)
{
    spotdb_pool_options o = SPOTDB_POOL_OPTIONS_INIT;

    if (opts && (opts->version == 0 ||
                 opts->version > SPOTDB_POOL_OPTIONS_VERSION))
        return spotdb__fail(NULL, SPOTDB_EINVAL, "spotdb_pool_open: "
                            "opts->version is %u, expected 1 to %d",
                            opts->version, SPOTDB_POOL_OPTIONS_VERSION);
    if (opts)
        o = *opts;
    if (o.max_size < 0 || o.max_size > MAX_MAX_SIZE)
        return spotdb__fail(NULL, SPOTDB_EINVAL, "spotdb_pool_open: "
                            "opts->max_size must be 0 to %d", MAX_MAX_SIZE);
    p->max_size = o.max_size ? o.max_size : DEFAULT_MAX_SIZE;
    if (o.initial_size < 0 || o.initial_size > p->max_size)
        return spotdb__fail(NULL, SPOTDB_EINVAL, "spotdb_pool_open: "
                            "opts->initial_size must be 0 to max_size (%d)",
                            (int)p->max_size);
    *initial = o.initial_size;
    if (o.acquire_timeout_ms < -1 || o.idle_check_after_ms < -1)
        return spotdb__fail(NULL, SPOTDB_EINVAL, "spotdb_pool_open: "
                            "opts->acquire_timeout_ms and "
                            "idle_check_after_ms must be -1 or more");
    p->acquire_timeout_ms = o.acquire_timeout_ms ? o.acquire_timeout_ms
                                                 : DEFAULT_ACQUIRE_TIMEOUT_MS;
    p->idle_check_us = o.idle_check_after_ms < 0 ? -1
        : 1000 * (int64_t)(o.idle_check_after_ms ? o.idle_check_after_ms
                                                 : DEFAULT_IDLE_CHECK_MS);
    return copy_open_options(p, o.open_options);
}

static int open_handle(spotdb_pool *p, spotdb_db **out)
{
    return spotdb_open(out, p->conninfo,
                       p->has_open_opts ? &p->open_opts : NULL);
}

/* Free a pool with no lent handle. */
static void destroy(spotdb_pool *p)
{
    for (int32_t i = 0; p->slots && i < p->max_size; i++)
        spotdb_close(p->slots[i].db);
    free(p->slots);
    spotdb__wipe_free(p->conninfo);
    free(p->application_name);
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* The condition variable waits on the monotonic clock, so that a change
 * of the wall clock does not stretch or cut an acquire's timeout. */
static int init_sync(spotdb_pool *p)
{
    pthread_condattr_t attr;
    int rc;

    if (pthread_mutex_init(&p->lock, NULL) != 0)
        return -1;
    if (pthread_condattr_init(&attr) != 0) {
        pthread_mutex_destroy(&p->lock);
        return -1;
    }
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&p->freed, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        pthread_mutex_destroy(&p->lock);
    return rc;
}

static int open_initial(spotdb_pool *p, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        int rc = open_handle(p, &p->slots[i].db);

        if (rc != 0)
            return rc;
        p->slots[i].state = SLOT_IDLE;
        p->slots[i].idle_since = spotdb__monotonic_us();
        p->idle++;
    }
    return 0;
}

int spotdb_pool_open(spotdb_pool **out, const char *conninfo,
                     const spotdb_pool_options *opts)
{
    spotdb_pool *p;
    int32_t initial = 0;
    int rc;

    spotdb__clear_last_error();
    if (!out)
        return spotdb__fail(NULL, SPOTDB_EINVAL,
                            "spotdb_pool_open: out must not be NULL");
    *out = NULL;
    if (!(p = spotdb__calloc(1, sizeof *p)))
        return spotdb__fail(NULL, SPOTDB_ENOMEM, "out of memory");
    if (init_sync(p) != 0) {
        free(p);
        return spotdb__fail(NULL, SPOTDB_ENOMEM,
                            "spotdb_pool_open: cannot create a mutex");
    }
    if ((rc = read_options(p, &initial, opts)) != 0) {
        destroy(p);
        return rc;
    }
    p->slots = spotdb__calloc((size_t)p->max_size, sizeof *p->slots);
    if (!p->slots || (conninfo && !(p->conninfo = spotdb__strdup(conninfo)))) {
        destroy(p);
        return spotdb__fail(NULL, SPOTDB_ENOMEM, "out of memory");
    }
    if ((rc = open_initial(p, initial)) != 0) {
        destroy(p);             /* keeps spotdb_open's message */
        return rc;
    }
    *out = p;
    return 0;
}

/* A deadline `ms` from now on the monotonic clock. */
static struct timespec deadline_in(int32_t ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Under the lock: the slot to lend, the most recently used idle handle
 * first (the likeliest to be alive and not to need a ping), else a free
 * slot to open one in; -1 when every slot is lent. */
static int32_t pick_slot(spotdb_pool *p)
{
    int32_t idle = -1, free_slot = -1;

    for (int32_t i = 0; i < p->max_size; i++) {
        const slot *s = &p->slots[i];

        if (s->state == SLOT_IDLE &&
            (idle < 0 || s->idle_since > p->slots[idle].idle_since))
            idle = i;
        else if (s->state == SLOT_FREE && free_slot < 0)
            free_slot = i;
    }
    return idle >= 0 ? idle : free_slot;
}

/* Under the lock: claim a slot, waiting up to `timeout_ms` (-1: no
 * limit) for one; returns its index, or -1 after the timeout. */
static int32_t claim_slot(spotdb_pool *p, int32_t timeout_ms)
{
    struct timespec deadline = { 0, 0 };
    bool waited = false, expired = timeout_ms == 0;
    int32_t i;

    if (timeout_ms > 0)
        deadline = deadline_in(timeout_ms);
    while ((i = pick_slot(p)) < 0 && !expired) {
        if (!waited)
            p->waits++;
        waited = true;
        p->waiting++;
        if (timeout_ms < 0)
            pthread_cond_wait(&p->freed, &p->lock);
        else
            expired = pthread_cond_timedwait(&p->freed, &p->lock,
                                             &deadline) == ETIMEDOUT;
        p->waiting--;
    }
    if (i < 0) {
        p->timeouts++;
        return -1;
    }
    if (p->slots[i].state == SLOT_IDLE)
        p->idle--;
    p->slots[i].state = SLOT_LENT;
    p->lent++;
    return i;
}

/* Whether an idle handle can be lent.  First without a round trip: the
 * server writes nothing to an idle session of the library (no LISTEN)
 * unless it is ending it (terminated, idle timeout, shutdown: a FATAL
 * message, then the close): the handle's own probe (io.c), one poll when
 * nothing is there, condemns the handle.  Then, for one idle for long, a ping, which finds
 * a connection that died without a word (a network gone); it runs as a
 * call on the handle, within the handle's call timeout if it has one. */
static bool healthy(spotdb_pool *p, spotdb_db *db, int64_t idle_since,
                    bool *pinged)
{
    PGresult *res;

    if (!db->conn || PQtransactionStatus(db->conn) != PQTRANS_IDLE ||
        !spotdb__alive(db))
        return false;
    if (p->idle_check_us < 0 ||
        spotdb__monotonic_us() - idle_since <= p->idle_check_us)
        return true;
    *pinged = true;
    if (spotdb__enter(db, true) != 0)
        return false;
    res = spotdb__exec(db, "SELECT 1", "pool health check");
    if (!res)
        return false;
    PQclear(res);
    spotdb__clear_error(db);
    return true;
}

/* Give slot `i` up after its handle could not be opened. */
static void drop_slot(spotdb_pool *p, int32_t i)
{
    pthread_mutex_lock(&p->lock);
    p->slots[i].db = NULL;
    p->slots[i].state = SLOT_FREE;
    p->lent--;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

int spotdb_pool_acquire(spotdb_pool *p, spotdb_db **out, int32_t timeout_ms)
{
    spotdb_db *db;
    int64_t since;
    bool pinged = false, broken = false;
    int32_t i;
    int rc;

    spotdb__clear_last_error();
    if (out)
        *out = NULL;
    if (!p || !out || timeout_ms < SPOTDB_POOL_WAIT_DEFAULT)
        return spotdb__fail(NULL, SPOTDB_EINVAL, "spotdb_pool_acquire: p "
                            "and out must not be NULL, timeout_ms must be "
                            "-2 or more");
    if (timeout_ms == SPOTDB_POOL_WAIT_DEFAULT)
        timeout_ms = p->acquire_timeout_ms;
    pthread_mutex_lock(&p->lock);
    i = claim_slot(p, timeout_ms);
    db = i >= 0 ? p->slots[i].db : NULL;
    since = i >= 0 ? p->slots[i].idle_since : 0;
    pthread_mutex_unlock(&p->lock);
    if (i < 0)
        return spotdb__fail(NULL, SPOTDB_ETIMEOUT, "spotdb_pool_acquire: "
                            "all %d connections stayed in use for %d ms",
                            (int)p->max_size, (int)timeout_ms);
    /* The slot is this thread's now: its handle is checked, or replaced,
     * without the lock. */
    if (db && !healthy(p, db, since, &pinged)) {
        spotdb_close(db);
        db = NULL;
        broken = true;
    }
    if (pinged || broken) {
        pthread_mutex_lock(&p->lock);
        p->pings += pinged;
        p->reconnects += broken;
        pthread_mutex_unlock(&p->lock);
    }
    rc = db ? 0 : open_handle(p, &db);
    if (rc != 0) {
        drop_slot(p, i);
        return rc;
    }
    pthread_mutex_lock(&p->lock);
    p->slots[i].db = db;
    p->acquires++;
    pthread_mutex_unlock(&p->lock);
    *out = db;
    return 0;
}

/* Make a returned handle as spotdb_open() left it; false when it cannot
 * be reused (its connection broke, or is still busy with a statement). */
static bool reset(spotdb_pool *p, spotdb_db *db)
{
    spotdb_set_trace(db, NULL, NULL);
    spotdb_set_call_timeout(db, p->open_opts.call_timeout_ms);
    db->scope[0] = '\0';           /* the next user must name their own */
    if (db->read_settings)
        spotdb_replica_reads(db, 1);
    if (spotdb_in_transaction(db) && spotdb_rollback(db) != 0)
        return false;
    if (!db->conn || db->broken || PQstatus(db->conn) != CONNECTION_OK)
        return false;
    spotdb__clear_error(db);
    return PQtransactionStatus(db->conn) == PQTRANS_IDLE;
}

int spotdb_pool_release(spotdb_pool *p, spotdb_db *db)
{
    int32_t i;
    bool reusable;

    spotdb__clear_last_error();
    if (!p)
        return spotdb__fail(NULL, SPOTDB_EINVAL,
                            "spotdb_pool_release: p must not be NULL");
    if (!db)
        return 0;
    pthread_mutex_lock(&p->lock);
    for (i = 0; i < p->max_size; i++)
        if (p->slots[i].db == db && p->slots[i].state == SLOT_LENT)
            break;
    if (i < p->max_size)
        p->slots[i].state = SLOT_RETURNING;
    pthread_mutex_unlock(&p->lock);
    if (i == p->max_size)
        return spotdb__fail(NULL, SPOTDB_EINVAL, "spotdb_pool_release: the "
                            "handle is not lent by this pool (never, or "
                            "already given back)");
    if (!(reusable = reset(p, db)))
        spotdb_close(db);
    pthread_mutex_lock(&p->lock);
    if (reusable) {
        p->slots[i].state = SLOT_IDLE;
        p->slots[i].idle_since = spotdb__monotonic_us();
        p->idle++;
    } else {
        p->slots[i].db = NULL;
        p->slots[i].state = SLOT_FREE;
        p->reconnects++;
    }
    p->lent--;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

int spotdb_pool_stats_get(spotdb_pool_stats *out, spotdb_pool *p)
{
    spotdb__clear_last_error();
    if (!out || !p || out->version == 0 ||
        out->version > SPOTDB_POOL_STATS_VERSION)
        return spotdb__fail(NULL, SPOTDB_EINVAL, "spotdb_pool_stats_get: "
                            "out and p must not be NULL and out->version "
                            "must be 1 to %d", SPOTDB_POOL_STATS_VERSION);
    pthread_mutex_lock(&p->lock);
    out->max_size = p->max_size;
    out->size = p->idle + p->lent;
    out->idle = p->idle;
    out->in_use = p->lent;
    out->waiting = p->waiting;
    out->acquires = p->acquires;
    out->waits = p->waits;
    out->timeouts = p->timeouts;
    out->reconnects = p->reconnects;
    out->pings = p->pings;
    pthread_mutex_unlock(&p->lock);
    return 0;
}

int spotdb_pool_close(spotdb_pool *p)
{
    int32_t lent;

    spotdb__clear_last_error();
    if (!p)
        return 0;
    pthread_mutex_lock(&p->lock);
    lent = p->lent;
    pthread_mutex_unlock(&p->lock);
    if (lent > 0)
        return spotdb__fail(NULL, SPOTDB_EINVAL, "spotdb_pool_close: %d "
                            "handle(s) still lent; give them back first",
                            (int)lent);
    destroy(p);
    return 0;
}
