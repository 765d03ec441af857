/*
 * Replica-safe reads on a second connection (spotdb_replica_reads()).
 *
 * The handle keeps the settings it was opened with, deep-copied with
 * target_session_attrs=prefer-standby, and opens the read connection at
 * the first routed read.  A routed read swaps the handle's connection and
 * statement cache with the read connection's for its duration, so the
 * code that runs the statements does not know where it runs.
 *
 * libpq's prefer-standby lands on a primary when no standby answers;
 * the read connection then stays there for RETRY_US and is opened again
 * after that, so reads return to a standby that has come back.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"

#define RETRY_US INT64_C(10000000)

spotdb__settings *spotdb__settings_copy(const char *const *keywords,
                                        const char *const *values,
                                        const char *attrs)
{
    spotdb__settings *s = spotdb__calloc(1, sizeof *s);
    size_t n = 0, k = 0;
    bool oom = !s;

    while (keywords[n])
        n++;
    if (s) {
        s->keywords = spotdb__calloc(n + 2, sizeof *s->keywords);
        s->values = spotdb__calloc(n + 2, sizeof *s->values);
        oom = !s->keywords || !s->values;
    }
    for (size_t i = 0; i <= n && !oom; i++) {
        const char *kw = i < n ? keywords[i] : "target_session_attrs";
        char *kc, *vc;

        if (i < n && strcmp(kw, "target_session_attrs") == 0)
            continue;
        kc = spotdb__strdup(kw);
        vc = spotdb__strdup(i < n ? values[i] : attrs);
        if (!kc || !vc) {
            free(kc);
            free(vc);
            oom = true;
            break;
        }
        s->keywords[k] = kc;
        s->values[k++] = vc;
    }
    if (oom) {
        spotdb__settings_free(s);
        return NULL;
    }
    return s;
}

void spotdb__settings_free(spotdb__settings *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->keywords && s->keywords[i]; i++) {
        free(s->keywords[i]);
        spotdb__wipe_free(s->values[i]);
    }
    free(s->keywords);
    free(s->values);
    free(s);
}

/* Under the cancel lock: spotdb_cancel() on another thread must find
 * the cancel object of the connection in use. */
static void swap(spotdb_db *db)
{
    spotdb__link cur = { db->conn, db->statements, db->nstatements,
                         db->cancel };

    pthread_mutex_lock(&db->cancel_lock);
    db->conn = db->other.conn;
    db->statements = db->other.statements;
    db->nstatements = db->other.nstatements;
    db->cancel = db->other.cancel;
    db->other = cur;
    pthread_mutex_unlock(&db->cancel_lock);
}

/* Drop the read connection, which must be the current one. */
static void drop_current(spotdb_db *db)
{
    pthread_mutex_lock(&db->cancel_lock);
    PQfreeCancel(db->cancel);
    db->cancel = NULL;
    pthread_mutex_unlock(&db->cancel_lock);
    PQfinish(db->conn);
    db->conn = NULL;
    spotdb__statements_forget(db);
}

/* Open the read connection as the current one (the main is in `other`).
 * Where it landed is remembered: on a primary, it is replaced after
 * RETRY_US. */
static bool open_current(spotdb_db *db)
{
    int64_t now = spotdb__monotonic_us();

    db->conn = PQconnectdbParams((const char *const *)db->read_settings->keywords,
                                 (const char *const *)db->read_settings->values,
                                 0);
    if (!db->conn || PQstatus(db->conn) != CONNECTION_OK ||
        spotdb__setup_session(db) != 0) {
        drop_current(db);
        db->read_on_primary_since = now ? now : 1;
        return false;
    }
    spotdb__cancel_refresh(db);
    spotdb__replica_landed(db);
    return true;
}

void spotdb__replica_landed(spotdb_db *db)
{
    /* Reported by servers from PostgreSQL 14 on. */
    const char *standby = PQparameterStatus(db->conn, "in_hot_standby");
    int64_t now = spotdb__monotonic_us();

    db->read_on_primary_since = standby && strcmp(standby, "on") == 0
                                    ? 0 : (now ? now : 1);
}

/* Whether the read connection should be (re)opened now: it is missing or
 * sits on a primary, and the last attempt is RETRY_US old. */
static bool due(const spotdb_db *db)
{
    return db->read_on_primary_since == 0 ||
           spotdb__monotonic_us() - db->read_on_primary_since >= RETRY_US;
}

bool spotdb__route_begin(spotdb_db *db)
{
    db->rows_handed = 0;
    if (!db->route_reads || !db->read_settings || db->on_replica ||
        spotdb_in_transaction(db))
        return false;
    if (db->other.conn && db->read_on_primary_since && due(db)) {
        swap(db);
        drop_current(db);
        swap(db);
    }
    if (!db->other.conn) {
        if (db->read_on_primary_since && !due(db))
            return false;
        swap(db);
        if (!open_current(db)) {
            swap(db);
            return false;
        }
        swap(db);
    }
    swap(db);
    db->on_replica = true;
    return true;
}

bool spotdb__route_retry(spotdb_db *db, bool *routed, int rc)
{
    bool broken = rc == SPOTDB_ECONN && db->on_replica &&
                  PQstatus(db->conn) != CONNECTION_OK;

    if (!*routed || !broken || db->rows_handed > 0)
        return false;
    *routed = false;            /* once */
    drop_current(db);
    spotdb__clear_error(db);
    if (!open_current(db)) {
        /* No read connection at all: send it to the main one. */
        swap(db);
        db->on_replica = false;
    }
    return true;
}

void spotdb__route_end(spotdb_db *db)
{
    if (!db->on_replica)
        return;
    swap(db);
    db->on_replica = false;
}

void spotdb__replica_close(spotdb_db *db)
{
    if (db->other.conn) {
        swap(db);
        drop_current(db);
        swap(db);
    }
    spotdb__settings_free(db->read_settings);
    db->read_settings = NULL;
}

int spotdb_replica_reads(spotdb_db *db, int on)
{
    int was;

    spotdb__clear_error(db);
    if (!db)
        return spotdb__fail(NULL, SPOTDB_EINVAL, "the handle is NULL");
    if (!db->read_settings)
        return spotdb__fail(db, SPOTDB_EINVAL, "spotdb_replica_reads: the "
                            "handle was not opened with replica_reads = "
                            "SPOTDB_REPLICA_READS_ON");
    was = db->route_reads;
    db->route_reads = on != 0;
    return was;
}
