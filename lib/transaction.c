/*
 * Transactions spanning several calls on a handle, and the clock the
 * library's timestamps use.
 */
#include <time.h>

#include "internal.h"

static int status(const spotdb_db *db)
{
    return db && db->conn ? (int)PQtransactionStatus(db->conn)
                          : (int)PQTRANS_UNKNOWN;
}

int spotdb_in_transaction(const spotdb_db *db)
{
    int st = status(db);

    return st == PQTRANS_INTRANS || st == PQTRANS_INERROR;
}

int spotdb_begin(spotdb_db *db)
{
    spotdb__clear_error(db);
    if (!db)
        return spotdb__fail(NULL, SPOTDB_EINVAL, "the handle is NULL");
    if (spotdb_in_transaction(db))
        return spotdb__fail(db, SPOTDB_EINVAL, "begin: a transaction is "
                            "already open (transactions do not nest)");
    return spotdb__command(db, "BEGIN", "begin");
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
    /* The server answers COMMIT of a failed transaction with ROLLBACK and
     * no error; the caller must hear that nothing was stored. */
    failed = status(db) == PQTRANS_INERROR;
    if ((rc = spotdb__command(db, "COMMIT", "commit")) != 0)
        return rc;
    if (failed)
        return spotdb__fail(db, SPOTDB_ESQL, "commit: a call in the "
                            "transaction had failed, so it was rolled back "
                            "and nothing was stored");
    return 0;
}

int spotdb_rollback(spotdb_db *db)
{
    spotdb__clear_error(db);
    if (!db)
        return spotdb__fail(NULL, SPOTDB_EINVAL, "the handle is NULL");
    if (!spotdb_in_transaction(db))
        return 0;
    return spotdb__command(db, "ROLLBACK", "rollback");
}

int64_t spotdb_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
