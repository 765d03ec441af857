/*
 * Talking to the server within a call: reconnecting at the start of a
 * call, sending a statement, waiting for its results within the call's
 * deadline, cancelling from another thread, and telling apart the ways a
 * lost connection ends a call (not sent, rolled back, outcome unknown).
 *
 * Statements are sent with libpq's asynchronous functions and their
 * results awaited with poll(), so that a deadline holds even when the
 * server stops answering: at the deadline the statement is cancelled;
 * if no answer comes GRACE_US later either (a stopped backend, a dead
 * network), the connection is abandoned and the next call reconnects.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <strings.h>

#include "table.h"

#define GRACE_US INT64_C(50000)

/* ---- reconnecting ------------------------------------------------------ */

void spotdb__cancel_refresh(spotdb_db *db)
{
    PGcancel *fresh = PQgetCancel(db->conn);

    pthread_mutex_lock(&db->cancel_lock);
    PQfreeCancel(db->cancel);
    db->cancel = fresh;
    pthread_mutex_unlock(&db->cancel_lock);
}

/* PQreset opens a connection with the same settings; what the old one
 * had prepared is gone with it. */
static int reconnect(spotdb_db *db)
{
    PQreset(db->conn);
    spotdb__statements_forget(db);
    db->broken = false;
    db->reconnects++;
    if (PQstatus(db->conn) != CONNECTION_OK)
        return spotdb__connect_failed(db);
    spotdb__cancel_refresh(db);
    if (db->on_replica)
        spotdb__replica_landed(db);
    return spotdb__setup_session(db);
}

/* Whether the connection is still there.  A backend terminated, or a
 * server restarted, since the last call left its FATAL message and EOF
 * in the socket: a poll that finds nothing to read costs one system call;
 * otherwise reading, and parsing (libpq takes a FATAL while idle for a
 * notice), until the EOF shows, lets the call reconnect before it sends
 * anything.  The bound keeps a stream of notifications from holding the
 * call up. */
bool spotdb__alive(spotdb_db *db)
{
    struct pollfd pfd = { .fd = PQsocket(db->conn), .events = POLLIN };
    bool ok = !db->broken && PQstatus(db->conn) == CONNECTION_OK;

    db->probing = true;
    db->doomed = false;
    for (int i = 0; ok && i < 4 && poll(&pfd, 1, 0) > 0; i++) {
        ok = PQconsumeInput(db->conn) != 0;
        (void)PQisBusy(db->conn);
        ok = ok && !db->doomed && PQstatus(db->conn) == CONNECTION_OK;
    }
    db->probing = false;
    return ok;
}

int spotdb__enter(spotdb_db *db, bool timed)
{
    spotdb__clear_error(db);
    if (!db || !db->conn)
        return 0;               /* the caller reports the missing handle */
    db->timed_out = db->unsure = db->sent = false;
    db->probe_pending = true;
    atomic_store(&db->cancel_requested, false);
    db->deadline_us = timed && db->call_timeout_ms > 0
        ? spotdb__monotonic_us() + (int64_t)db->call_timeout_ms * 1000 : 0;
    return 0;
}

bool spotdb__ready(spotdb_db *db)
{
    if (!db->probe_pending)
        return !db->broken;
    db->probe_pending = false;
    if (spotdb__alive(db))
        return true;
    /* A transaction the server has rolled back must not silently turn
     * into autocommit calls on a new connection. */
    if (db->tx_open) {
        spotdb__fail(db, SPOTDB_ECONN, "the connection was lost inside a "
                     "transaction, which the server rolled back: nothing of "
                     "it was committed (spotdb_rollback() ends it)");
        return false;
    }
    return reconnect(db) == 0;
}

/* ---- sending and collecting -------------------------------------------- */

static bool starts_with_word(const char *sql, const char *word)
{
    size_t n = strlen(word);

    while (*sql == ' ' || *sql == '\n' || *sql == '\t')
        sql++;
    return strncasecmp(sql, word, n) == 0 &&
           (sql[n] == '\0' || sql[n] == ' ' || sql[n] == '\n' ||
            sql[n] == ';' || sql[n] == '(');
}

/* A statement whose effect may already be committed when its answer is
 * lost: COMMIT, and a write outside a transaction block (every write the
 * library sends starts with one of these words). */
static bool unsure_if_lost(spotdb_db *db, const char *sql)
{
    static const char *const writes[] = { "INSERT", "UPDATE", "DELETE",
                                          "COPY" };

    if (starts_with_word(sql, "COMMIT") || starts_with_word(sql, "END"))
        return true;
    if (PQtransactionStatus(db->conn) != PQTRANS_IDLE)
        return false;
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
        if (starts_with_word(sql, writes[i]))
            return true;
    return false;
}

static bool ready_by(spotdb_db *db, int64_t deadline)
{
    while (PQisBusy(db->conn)) {
        int64_t left = deadline - spotdb__monotonic_us();
        struct pollfd pfd = { .fd = PQsocket(db->conn), .events = POLLIN };
        int n;

        if (left <= 0)
            return false;
        n = poll(&pfd, 1, (int)((left + 999) / 1000));
        if (n < 0 && errno != EINTR)
            return true;        /* PQgetResult will report the failure */
        if (n > 0 && !PQconsumeInput(db->conn))
            return true;
    }
    return true;
}

static void *send_cancel(void *arg)
{
    char why[256];

    PQcancel(arg, why, sizeof why);
    PQfreeCancel(arg);
    return NULL;
}

/* The cancel request goes from a thread of its own: PQcancel waits until
 * the server closes the request's connection, and PostgreSQL before 17
 * forks a process to read it, which on a loaded machine can take longer
 * than a deadline may be overrun.  The thread owns its cancel object, so
 * the handle may be closed meanwhile. */
static void cancel_in_background(spotdb_db *db)
{
    PGcancel *c = PQgetCancel(db->conn);
    pthread_attr_t attr;
    pthread_t t;
    int rc;

    if (!c)
        return;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&t, &attr, send_cancel, c);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        send_cancel(c);         /* no thread to be had: in line */
}

bool spotdb__await(spotdb_db *db)
{
    while (db->deadline_us && !ready_by(db, db->deadline_us)) {
        if (db->timed_out) {
            db->broken = true;  /* the grace is over too */
            return false;
        }
        db->timed_out = true;
        cancel_in_background(db);
        db->deadline_us = spotdb__monotonic_us() + GRACE_US;
    }
    return true;
}

/* Results as PQexec gathers them: the last, or the first error; stop at
 * a COPY, which the caller goes on with. */
static PGresult *collect(spotdb_db *db)
{
    PGresult *last = NULL, *res;
    ExecStatusType st;

    db->completed = false;
    while (spotdb__await(db) && (res = PQgetResult(db->conn)) != NULL) {
        if (last && PQresultStatus(last) == PGRES_FATAL_ERROR) {
            PQclear(res);
            continue;
        }
        PQclear(last);
        last = res;
        st = PQresultStatus(last);
        db->completed = db->completed || st == PGRES_COMMAND_OK ||
                        st == PGRES_TUPLES_OK;
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT ||
            st == PGRES_COPY_BOTH || PQstatus(db->conn) == CONNECTION_BAD)
            break;
    }
    if (db->broken) {
        PQclear(last);
        return NULL;
    }
    return last;
}

/* One statement to send: binary parameters (p, with a prepared name or
 * not), text ones (in_text: ntext of them, results in text too), or none
 * (the simple protocol, results in text). */
typedef struct statement {
    const char *sql;
    const char *name;
    const spotdb__params *p;
    bool in_text;
    int ntext;
    const char *const *text;
} statement;

/* A pipeline allows the extended protocol only: a statement without
 * parameters goes as one with none, its results in text as before. */
static int send_statement(spotdb_db *db, const statement *s, bool pipelined)
{
    const spotdb__params *p = s->p;

    if (s->in_text || (!p && pipelined))
        return PQsendQueryParams(db->conn, s->sql, s->ntext, NULL, s->text,
                                 NULL, NULL, 0);
    if (!p)
        return PQsendQuery(db->conn, s->sql);
    return s->name ? PQsendQueryPrepared(db->conn, s->name, p->n, p->values,
                                         p->lengths, p->formats, 1)
                   : PQsendQueryParams(db->conn, s->sql, p->n, p->types,
                                       p->values, p->lengths, p->formats, 1);
}

/* Read the pipeline's results up to its sync, so it can be left. */
static void to_sync(spotdb_db *db)
{
    PGresult *res;
    bool sync = false;

    while (!sync && !db->broken && PQstatus(db->conn) == CONNECTION_OK &&
           spotdb__await(db) && (res = PQgetResult(db->conn)) != NULL) {
        sync = PQresultStatus(res) == PGRES_PIPELINE_SYNC;
        PQclear(res);
    }
}

/* Outside a transaction, a scoped handle's statement goes in one pipeline
 * behind the set_config that names the acting user: everything before a
 * pipeline's sync is one implicit transaction, so the transaction-local
 * setting holds for exactly this statement (or, for a BEGIN, for the
 * transaction it opens), costs no round trip, and reaches the same server
 * session behind a transaction-mode pooler.  Should the set_config fail,
 * its error is the answer: the statement was skipped. */
static PGresult *run_scoped(spotdb_db *db, const statement *s)
{
    const char *user = db->scope;
    PGresult *set = NULL, *res = NULL;

    if (!PQenterPipelineMode(db->conn))
        return NULL;
    db->sent = PQsendQueryParams(db->conn, spotdb__scope_sql, 1, NULL, &user,
                                 NULL, NULL, 0) &&
               send_statement(db, s, true) && PQpipelineSync(db->conn);
    if (db->sent) {
        set = collect(db);
        res = collect(db);
        to_sync(db);
    }
    if (set && PQresultStatus(set) != PGRES_TUPLES_OK &&
        PQresultStatus(res) == PGRES_PIPELINE_ABORTED) {
        PQclear(res);
        res = set;
        set = NULL;
    }
    PQclear(set);
    (void)PQexitPipelineMode(db->conn);
    return res;
}

static PGresult *run(spotdb_db *db, const statement *s)
{
    if (!spotdb__ready(db))
        return NULL;
    db->unsure = unsure_if_lost(db, s->sql);
    if (db->scope[0] && PQtransactionStatus(db->conn) == PQTRANS_IDLE)
        return run_scoped(db, s);
    db->sent = send_statement(db, s, false);
    return db->sent ? collect(db) : NULL;
}

PGresult *spotdb__run(spotdb_db *db, const char *sql, const char *name,
                      const spotdb__params *p)
{
    statement s = { sql, name, p, false, 0, NULL };

    return run(db, &s);
}

PGresult *spotdb__run_text(spotdb_db *db, const char *sql, int n,
                           const char *const *values)
{
    statement s = { sql, NULL, NULL, true, n, values };

    return run(db, &s);
}

PGresult *spotdb__prepare(spotdb_db *db, const char *name, const char *sql,
                          const spotdb__params *p)
{
    if (!spotdb__ready(db))
        return NULL;
    db->unsure = false;
    db->sent = PQsendPrepare(db->conn, name, sql, p->n, p->types);
    return db->sent ? collect(db) : NULL;
}

/* ---- what a failure means ---------------------------------------------- */

int spotdb__code_of(spotdb_db *db, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
                            : NULL;
    bool ok = spotdb__conn_ok(db->conn, state) && !db->broken;
    int code;

    if (db->timed_out)
        return !ok && db->unsure ? SPOTDB_EUNKNOWN : SPOTDB_ETIMEOUT;
    if (state && strcmp(state, "57014") == 0)
        return SPOTDB_ECANCELED;
    code = spotdb__code_for_sqlstate(state, ok);
    /* The server flushes a statement's completion before a FATAL that
     * ends the session (a terminated backend), and commits only after
     * that completion: its error with nothing completed before it means
     * nothing was committed.  A completion followed by the loss, or a
     * silent loss (a crash, a network failure), may hide a commit. */
    if (code == SPOTDB_ECONN && db->sent && db->unsure &&
        (db->completed || !state || !*state))
        return SPOTDB_EUNKNOWN;
    return code;
}

/* ---- the public calls ---------------------------------------------------- */

int spotdb_set_call_timeout(spotdb_db *db, int32_t ms)
{
    spotdb__clear_error(db);
    if (!db)
        return spotdb__fail(NULL, SPOTDB_EINVAL, "the handle is NULL");
    if (ms < 0)
        return spotdb__fail(db, SPOTDB_EINVAL,
                            "spotdb_set_call_timeout: ms must be >= 0");
    db->call_timeout_ms = ms;
    return 0;
}

/* No error slot is touched: the handle belongs to the thread whose call
 * this interrupts. */
int spotdb_cancel(spotdb_db *db)
{
    char why[256];
    int sent = 0;

    if (!db)
        return SPOTDB_EINVAL;
    atomic_store(&db->cancel_requested, true);
    pthread_mutex_lock(&db->cancel_lock);
    if (db->cancel)
        sent = PQcancel(db->cancel, why, sizeof why);
    pthread_mutex_unlock(&db->cancel_lock);
    return sent ? 0 : SPOTDB_ECONN;
}
