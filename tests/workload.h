/*
 * The mixed workload that the threaded stress tests run (test_pool.c on a
 * pool, test_pgbouncer.c through PgBouncer and directly): each worker has
 * a user, account, model and instance of its own, writes experiment logs
 * and updates its instance, and checks every read against what it wrote.
 *
 * A test supplies what differs: how a thread gets its handles (the body
 * given to wl_run, with w->ctx for its own data) and the mix of
 * operations (its own run_op over the wl_op_* below, plus any of its own
 * written with WL_CALL).  A failed call or a wrong read never stops a
 * worker: it is counted, the first one kept as text, and the test asserts
 * on the totals.
 */
#ifndef SPOTDB_TEST_WORKLOAD_H
#define SPOTDB_TEST_WORKLOAD_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "spotdb/spotdb.h"

typedef struct wl_worker {
    int index;
    int ops;                        /* operations of the next run */
    void *ctx;                      /* the test's: where handles come from */
    char instance[SPOTDB_UUID_SIZE]; /* instances.id */
    char model[SPOTDB_UUID_SIZE];
    char model_name[32];
    /* outcome */
    int errors;                     /* calls that failed */
    int prepared_errors;            /* ... naming a prepared statement */
    int mismatches;                 /* reads that disagree with the writes */
    char first[320];                /* the first of either */
    char first_mismatch[160];
    int64_t logs;                   /* live logs of this worker's instance */
    int64_t last_eval;              /* its last_evaluation as last written */
    char (*ids)[SPOTDB_UUID_SIZE];  /* ids of live logs from ids[head] on */
    size_t head;
} wl_worker;

/* Count a failed call (db NULL: a call without a handle, whose message
 * is the thread-local one) and a read that disagrees. */
void wl_note_error(wl_worker *w, spotdb_db *db, const char *what, int rc);
void wl_mismatch(wl_worker *w, const char *what);

/* Run `call`; on failure count it and jump to the label `out` of the
 * calling function, which needs `w` and `db` in scope. */
#define WL_CALL(what, call)                                                  \
    do {                                                                     \
        int rc_ = (call);                                                    \
        if (rc_ != 0) {                                                      \
            wl_note_error(w, db, what, rc_);                                 \
            goto out;                                                        \
        }                                                                    \
    } while (0)

/* Zero *w and give it worker number `index`'s user, account, model and
 * instance (assigned that model), made with `db`, and room for the ids of
 * `capacity` logs over all its runs; w->ops is `capacity` until the test
 * sets it.  Fails the test on error. */
void wl_prepare(wl_worker *w, spotdb_db *db, int index, int capacity);
/* Free what wl_prepare allocated for `n` workers. */
void wl_free(wl_worker *w, int n);

/* Create a log for the worker's instance and remember its id after the
 * live ones, without counting it (the caller does, once it stands);
 * returns the call's code. */
int wl_create_log(wl_worker *w, spotdb_db *db, int i);

/* The operations; `i` is the operation's number in the run. */
void wl_op_create_log(wl_worker *w, spotdb_db *db, int i);
void wl_op_get_instance(wl_worker *w, spotdb_db *db);
void wl_op_update_instance(wl_worker *w, spotdb_db *db);
void wl_op_list_logs(wl_worker *w, spotdb_db *db);
void wl_op_count_logs(wl_worker *w, spotdb_db *db);
void wl_op_active_view(wl_worker *w, spotdb_db *db);
void wl_op_recent_view(wl_worker *w, spotdb_db *db);
void wl_op_report(wl_worker *w, spotdb_db *db);
/* A log and an instance update that commit together. */
void wl_op_transaction(wl_worker *w, spotdb_db *db, int i);
void wl_op_delete_oldest_log(wl_worker *w, spotdb_db *db);

/* Run body(&w[k]) in a thread of its own for each of the `n` workers;
 * until all have returned, call sample(payload) every `every_s` seconds
 * (sample may be NULL); join them.  Returns the seconds from the first
 * thread's start to the last one's end. */
double wl_run(wl_worker *w, int n, void (*body)(wl_worker *w),
              void (*sample)(void *payload), void *payload, double every_s);

/* The outcome of `n` workers. */
typedef struct wl_totals {
    int errors, prepared_errors, mismatches;
    long ops;
    char first[320];                /* the first worker's first, if any */
    char first_mismatch[160];
} wl_totals;
wl_totals wl_sum(const wl_worker *w, int n);

/* What each of `n` workers believes it wrote (its live logs, its last
 * evaluation) is what `direct`, a connection of its own, reads. */
void wl_check_written(PGconn *direct, const wl_worker *w, int n);

#endif
