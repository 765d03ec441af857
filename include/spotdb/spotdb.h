/**
 * @file spotdb/spotdb.h
 * @brief Umbrella header: include this one.
 *
 * libspotdb is the data-access layer of the Spot Optimizer platform on
 * PostgreSQL.  Conventions that hold in every module:
 *
 * - Functions that can fail return 0 or a negative SPOTDB_E* code
 *   (spotdb/errors.h); detail is in spotdb_errmsg() for calls on a handle
 *   and spotdb_last_errmsg() for calls without one.
 * - Out-parameters come first; on failure `*out` is set to NULL.
 * - Whatever the library returns through `T **out` belongs to the caller
 *   and is released with the matching `spotdb_*_free`, which accepts NULL.
 * - Thread safety: a connection handle (spotdb_db) is used by one thread at
 *   a time; different handles may be used concurrently from different
 *   threads; returned objects are immutable and may cross threads; a pool
 *   (spotdb_pool) and every call without a handle may be used from any
 *   thread.  There is no global initialisation call.
 * - After fork(), a child process must neither use nor close its parent's
 *   handles or pools (closing would end the parent's sessions); it opens
 *   its own.
 */
#ifndef SPOTDB_SPOTDB_H
#define SPOTDB_SPOTDB_H

#include "common.h"
#include "version.h"
#include "errors.h"
#include "db.h"
#include "pool.h"
#include "migrate.h"
#include "rows.h"
#include "users.h"
#include "accounts.h"
#include "instances.h"
#include "models.h"
#include "experiment_logs.h"
#include "views.h"
#include "reports.h"
#include "trace.h"
#include "transaction.h"
#include "scope.h"
#include "schema.h"
#include "doctor.h"

#endif /* SPOTDB_SPOTDB_H */
