/*
 * spotdb_schema_describe(): the relations, structs and functions as one
 * JSON document for binding generators (see spotdb/schema.h).
 *
 * Columns, offsets, limits, allowed values and filters come from the
 * spotdb__table descriptions in table.h, the ones that drive the SQL and
 * the codec.  What those do not hold (filter member names, the option and
 * status structs, which functions exist) is listed here, with offsets and
 * sizes from the compiler; a member's type and a function's prototype are
 * checked against the declarations by _Generic, whose missing default
 * makes any mismatch a compile error.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json_object.h>

#include "alloc.h"
#include "table.h"

#define STR(x) #x
#define XSTR(x) STR(x)

/* ---- what the descriptions do not hold --------------------------------- */

/* A member of a public struct.  `meaning` may be NULL for filter members
 * that filter a column: the column's description says it then. */
typedef struct member {
    const char *name;
    const char *c_type;
    size_t offset;
    size_t size;
    const char *meaning;
    bool timestamp;                 /* int64_t microseconds since 1970 */
    int checked;                    /* 1: see MEMBER_OF */
} member;

/* `checked` is a _Generic without a default: a member whose type is not
 * T does not compile.  T is stringized before any expansion, so "bool"
 * stays "bool". */
#define MEMBER_OF(S, m, T, t_name, meaning, ts)                             \
    { #m, t_name, offsetof(S, m), sizeof(((S *)0)->m), meaning, ts,         \
      _Generic(((S *)0)->m, T: 1) }
#define MEMBER(S, m, T, meaning) MEMBER_OF(S, m, T, #T, meaning, false)
#define TIME_MEMBER(S, m, T, meaning) MEMBER_OF(S, m, T, #T, meaning, true)

/* A function: its prototype as text, from the same tokens the compiler
 * checks against the declaration. */
typedef struct function {
    const char *op;                 /* "get_by_email"; NULL for globals */
    const char *name;
    const char *returns;
    const char *params;             /* "(spotdb_user **out, ...)" */
    int checked;                    /* 1, or no build: as for members */
} function;

#define FUNCTION(op, fn, ret, params)                                       \
    { op, #fn, #ret, XSTR(params), _Generic(&fn, ret (*) params: 1) }
#define GLOBAL(fn, ret, params) FUNCTION(NULL, fn, ret, params)
#define OP(ENT, op, ret, params)                                            \
    FUNCTION(#op, spotdb_##ENT##_##op, ret, params)

/* Parameter lists of the operations, S being the row struct. */
#define P_CREATE(S) (S **out, spotdb_db *db, const S *in, uint64_t fields)
#define P_CREATE_FOR(S, key) \
    (S **out, spotdb_db *db, const char *key, const S *in, uint64_t fields)
#define P_GET(S, key) (S **out, spotdb_db *db, const char *key)
#define P_GET2(S, k1, k2) \
    (S **out, spotdb_db *db, const char *k1, const char *k2)
#define P_UPDATE(S) \
    (S **out, spotdb_db *db, const char *id, const S *in, uint64_t fields)
#define P_DELETE(S) (spotdb_db *db, const char *id)
#define P_LIST(S) (S##_rows **out, spotdb_db *db, const S##_filter *filter, \
                   const char *cursor, int32_t limit)
#define P_VIEW_LIST(S) \
    (S##_rows **out, spotdb_db *db, const S##_filter *filter, int32_t limit)
#define P_REPORT_LIST(S) \
    (S##_rows **out, spotdb_db *db, const S##_filter *filter)
#define P_COUNT(S) (int64_t *out, spotdb_db *db, const S##_filter *filter)
#define P_STREAM(S) (spotdb_db *db, const S##_filter *filter, S##_cb cb, \
                     void *payload)
#define P_VIEW_STREAM(S) (spotdb_db *db, const S##_filter *filter, \
                          int32_t limit, S##_cb cb, void *payload)
#define P_INSERT_MANY(S) \
    (spotdb_db *db, const S *rows, size_t n, uint64_t fields, \
     char (*ids)[SPOTDB_UUID_SIZE], int64_t *bad_row)
#define P_FREE(S) (S *row)
#define P_ROWS_FREE(S) (S##_rows *rows)

/* What every table has. */
#define TABLE_OPS(ENT)                                                      \
    OP(ENT, get, int, P_GET(spotdb_##ENT, id)),                             \
    OP(ENT, update, int, P_UPDATE(spotdb_##ENT)),                           \
    OP(ENT, delete, int, P_DELETE(spotdb_##ENT)),                           \
    OP(ENT, list, int, P_LIST(spotdb_##ENT)),                               \
    OP(ENT, count, int, P_COUNT(spotdb_##ENT)),                             \
    OP(ENT, stream, int, P_STREAM(spotdb_##ENT)),                           \
    OP(ENT, free, void, P_FREE(spotdb_##ENT)),                              \
    OP(ENT, rows_free, void, P_ROWS_FREE(spotdb_##ENT))

static const function user_ops[] = {
    OP(user, create, int, (spotdb_user **out, spotdb_db *db,
                           const spotdb_user *in, uint64_t fields,
                           const char *password)),
    TABLE_OPS(user),
    OP(user, get_by_email, int, P_GET(spotdb_user, email)),
    OP(user, get_by_username, int, P_GET(spotdb_user, username)),
    OP(user, authenticate, int, (spotdb_user **out, spotdb_db *db,
                                 const char *login, const char *password)),
    OP(user, set_password, int, (spotdb_db *db, const char *id,
                                 const char *password)),
};

static const function account_ops[] = {
    OP(account, create, int, P_CREATE(spotdb_account)),
    TABLE_OPS(account),
    OP(account, get_by_account_id, int, P_GET(spotdb_account, account_id)),
    OP(account, create_for_username, int,
       P_CREATE_FOR(spotdb_account, username)),
};

static const function instance_ops[] = {
    OP(instance, create, int, P_CREATE(spotdb_instance)),
    TABLE_OPS(instance),
    OP(instance, get_by_instance_id, int,
       P_GET(spotdb_instance, instance_id)),
    OP(instance, create_for_aws_account, int,
       P_CREATE_FOR(spotdb_instance, aws_account_id)),
    OP(instance, insert_many, int, P_INSERT_MANY(spotdb_instance)),
};

static const function model_ops[] = {
    OP(model, create, int, P_CREATE(spotdb_model)),
    TABLE_OPS(model),
    OP(model, get_by_name_version, int,
       P_GET2(spotdb_model, name, version)),
};

static const function experiment_log_ops[] = {
    OP(experiment_log, create, int, P_CREATE(spotdb_experiment_log)),
    TABLE_OPS(experiment_log),
    OP(experiment_log, insert_many, int,
       P_INSERT_MANY(spotdb_experiment_log)),
};

#define VIEW_OPS(ENT)                                                       \
    OP(ENT, list, int, P_VIEW_LIST(spotdb_##ENT)),                          \
    OP(ENT, stream, int, P_VIEW_STREAM(spotdb_##ENT)),                      \
    OP(ENT, rows_free, void, P_ROWS_FREE(spotdb_##ENT))

static const function active_instance_ops[] = { VIEW_OPS(active_instance) };
static const function recent_experiment_ops[] = {
    VIEW_OPS(recent_experiment)
};

static const function model_performance_ops[] = {
    OP(model_performance, list, int, P_REPORT_LIST(spotdb_model_performance)),
    OP(model_performance, stream, int, P_STREAM(spotdb_model_performance)),
    OP(model_performance, rows_free, void,
       P_ROWS_FREE(spotdb_model_performance)),
};

static const function global_functions[] = {
    GLOBAL(spotdb_version, const char *, (void)),
    GLOBAL(spotdb_strerror, const char *, (int code)),
    GLOBAL(spotdb_last_errmsg, const char *, (void)),
    GLOBAL(spotdb_schema_describe, const char *, (void)),
    GLOBAL(spotdb_open_options_init, int, (spotdb_open_options *opts,
                                           unsigned int version)),
    GLOBAL(spotdb_open, int, (spotdb_db **out, const char *conninfo,
                              const spotdb_open_options *opts)),
    GLOBAL(spotdb_close, void, (spotdb_db *db)),
    GLOBAL(spotdb_errmsg, const char *, (const spotdb_db *db)),
    GLOBAL(spotdb_sqlstate, const char *, (const spotdb_db *db)),
    GLOBAL(spotdb_begin, int, (spotdb_db *db)),
    GLOBAL(spotdb_commit, int, (spotdb_db *db)),
    GLOBAL(spotdb_rollback, int, (spotdb_db *db)),
    GLOBAL(spotdb_set_scope, int, (spotdb_db *db, const char *user_id)),
    GLOBAL(spotdb_scope, const char *, (const spotdb_db *db)),
    GLOBAL(spotdb_migrate_options_init, int, (spotdb_migrate_options *opts,
                                              unsigned int version)),
    GLOBAL(spotdb_migrate, int, (spotdb_db *db,
                                 const spotdb_migrate_options *opts)),
    GLOBAL(spotdb_status_get, int, (spotdb_status **out, spotdb_db *db)),
    GLOBAL(spotdb_status_free, void, (spotdb_status *status)),
    GLOBAL(spotdb_migration_embedded_count, size_t, (void)),
    GLOBAL(spotdb_migration_embedded, int, (spotdb_migration_info *out,
                                            size_t index)),
    GLOBAL(spotdb_conn_source_of, int, (const spotdb_db *db)),
    GLOBAL(spotdb_in_transaction, int, (const spotdb_db *db)),
    GLOBAL(spotdb_pooled, int, (const spotdb_db *db)),
    GLOBAL(spotdb_replica_reads, int, (spotdb_db *db, int on)),
    GLOBAL(spotdb_set_call_timeout, int, (spotdb_db *db, int32_t ms)),
    GLOBAL(spotdb_cancel, int, (spotdb_db *db)),
    GLOBAL(spotdb_now_us, int64_t, (void)),
    GLOBAL(spotdb_set_trace, int, (spotdb_db *db, spotdb_trace_fn fn,
                                   void *payload)),
    GLOBAL(spotdb_retry_options_init, int, (spotdb_retry_options *opts,
                                            unsigned int version)),
    GLOBAL(spotdb_run_transaction, int, (spotdb_db *db,
                                         spotdb_transaction_fn fn,
                                         void *payload,
                                         const spotdb_retry_options *opts,
                                         int32_t *attempts)),
    GLOBAL(spotdb_pool_options_init, int, (spotdb_pool_options *opts,
                                           unsigned int version)),
    GLOBAL(spotdb_pool_open, int, (spotdb_pool **out, const char *conninfo,
                                   const spotdb_pool_options *opts)),
    GLOBAL(spotdb_pool_acquire, int, (spotdb_pool *p, spotdb_db **out,
                                      int32_t timeout_ms)),
    GLOBAL(spotdb_pool_release, int, (spotdb_pool *p, spotdb_db *db)),
    GLOBAL(spotdb_pool_stats_get, int, (spotdb_pool_stats *out,
                                        spotdb_pool *p)),
    GLOBAL(spotdb_pool_close, int, (spotdb_pool *p)),
    GLOBAL(spotdb_doctor_run, int, (spotdb_doctor_report **out,
                                    spotdb_db *db)),
    GLOBAL(spotdb_doctor_report_free, void, (spotdb_doctor_report *report)),
    GLOBAL(spotdb_doctor_severity_name, const char *, (int severity)),
};

/* Filter structs: `version`, then the members; those that filter a column
 * are matched with the description's filters by offset. */
#define FILTER_VERSION(S) \
    MEMBER(S, version, unsigned int, "layout version of the struct: set " \
           "it to the filter's `version`")

static const member user_filter[] = {
    FILTER_VERSION(spotdb_user_filter),
    MEMBER(spotdb_user_filter, role, const char *, NULL),
    MEMBER(spotdb_user_filter, is_active, const bool *, NULL),
};

static const member account_filter[] = {
    FILTER_VERSION(spotdb_account_filter),
    MEMBER(spotdb_account_filter, user_id, const char *, NULL),
    MEMBER(spotdb_account_filter, environment_type, const char *, NULL),
    MEMBER(spotdb_account_filter, is_active, const bool *, NULL),
};

static const member instance_filter[] = {
    FILTER_VERSION(spotdb_instance_filter),
    MEMBER(spotdb_instance_filter, account_id, const char *, NULL),
    MEMBER(spotdb_instance_filter, pipeline_mode, const char *, NULL),
    MEMBER(spotdb_instance_filter, is_active, const bool *, NULL),
};

static const member model_filter[] = {
    FILTER_VERSION(spotdb_model_filter),
    MEMBER(spotdb_model_filter, name, const char *, NULL),
    MEMBER(spotdb_model_filter, is_active, const bool *, NULL),
};

static const member experiment_log_filter[] = {
    FILTER_VERSION(spotdb_experiment_log_filter),
    MEMBER(spotdb_experiment_log_filter, instance_id, const char *, NULL),
    MEMBER(spotdb_experiment_log_filter, model_id, const char *, NULL),
    MEMBER(spotdb_experiment_log_filter, decision, const char *, NULL),
    MEMBER(spotdb_experiment_log_filter, is_shadow_run, const bool *, NULL),
    MEMBER(spotdb_experiment_log_filter, executed_from, const int64_t *,
           NULL),
    MEMBER(spotdb_experiment_log_filter, executed_before, const int64_t *,
           NULL),
};

static const member active_instance_filter[] = {
    FILTER_VERSION(spotdb_active_instance_filter),
    MEMBER(spotdb_active_instance_filter, environment_type, const char *,
           NULL),
};

static const member recent_experiment_filter[] = {
    FILTER_VERSION(spotdb_recent_experiment_filter),
    MEMBER(spotdb_recent_experiment_filter, decision, const char *, NULL),
    MEMBER(spotdb_recent_experiment_filter, is_shadow_run, const bool *,
           NULL),
};

/* The report's window is not a column filter: reports.c binds it. */
static const member model_performance_filter[] = {
    FILTER_VERSION(spotdb_model_performance_filter),
    TIME_MEMBER(spotdb_model_performance_filter, since, const int64_t *,
                "logs with execution_time >= *since; NULL: 7 days before "
                "now"),
    TIME_MEMBER(spotdb_model_performance_filter, until, const int64_t *,
                "logs with execution_time < *until; NULL: no bound"),
};

typedef struct relation {
    const char *kind;               /* "table", "view", "report" */
    const spotdb__table *table;
    const char *c_struct;
    const char *item_type;          /* "spotdb_user *" */
    const char *rows_struct;
    size_t rows_size;
    size_t items_offset;
    size_t count_offset;
    size_t cursor_offset;
    const char *filter_struct;
    size_t filter_size;
    const member *filter;
    size_t nfilter;
    const function *ops;
    size_t nops;
} relation;

#define RELATION(KIND, ENT)                                                 \
    { KIND, &spotdb__##ENT##_table, "spotdb_" #ENT, "spotdb_" #ENT " *",    \
      "spotdb_" #ENT "_rows", sizeof(spotdb_##ENT##_rows),                  \
      offsetof(spotdb_##ENT##_rows, items),                                 \
      offsetof(spotdb_##ENT##_rows, count),                                 \
      offsetof(spotdb_##ENT##_rows, next_cursor),                           \
      "spotdb_" #ENT "_filter", sizeof(spotdb_##ENT##_filter),              \
      ENT##_filter, SPOTDB__NELEMS(ENT##_filter),                           \
      ENT##_ops, SPOTDB__NELEMS(ENT##_ops) }

static const relation relations[] = {
    RELATION("table", user),
    RELATION("table", account),
    RELATION("table", instance),
    RELATION("table", model),
    RELATION("table", experiment_log),
    RELATION("view", active_instance),
    RELATION("view", recent_experiment),
    RELATION("report", model_performance),
};

/* The structs of options, migration status and pages. */
static const member open_options[] = {
    MEMBER(spotdb_open_options, version, unsigned int,
           "SPOTDB_OPEN_OPTIONS_VERSION"),
    MEMBER(spotdb_open_options, application_name, const char *,
           "application_name when the settings give none; NULL: libspotdb"),
    MEMBER(spotdb_open_options, connect_timeout_s, int32_t,
           "seconds; 0: 10"),
    MEMBER(spotdb_open_options, schema_check, int32_t,
           "0: refuse a database at another schema version; 1: skip"),
    MEMBER(spotdb_open_options, statements, int32_t,
           "0: prepared statements; 1: unnamed only"),
    MEMBER(spotdb_open_options, pooler, int32_t,
           "0: detect; 1: none; 2: transaction-mode pooler"),
    MEMBER(spotdb_open_options, replica_reads, int32_t,
           "0: one connection; 1: lists and counts from a standby"),
    MEMBER(spotdb_open_options, call_timeout_ms, int32_t,
           "deadline of every call in milliseconds; 0: none"),
};

static const member pool_options[] = {
    MEMBER(spotdb_pool_options, version, unsigned int,
           "SPOTDB_POOL_OPTIONS_VERSION"),
    MEMBER(spotdb_pool_options, max_size, int32_t,
           "most handles open at once; 0: 10"),
    MEMBER(spotdb_pool_options, initial_size, int32_t,
           "handles opened by spotdb_pool_open; 0: none"),
    MEMBER(spotdb_pool_options, acquire_timeout_ms, int32_t,
           "0: 30000; -1: wait without limit"),
    MEMBER(spotdb_pool_options, idle_check_after_ms, int32_t,
           "ping an idle handle older than this; 0: 1000; -1: never"),
    MEMBER(spotdb_pool_options, open_options, const spotdb_open_options *,
           "options of every open, copied; NULL: defaults"),
};

static const member pool_stats[] = {
    MEMBER(spotdb_pool_stats, version, unsigned int,
           "set by the caller to SPOTDB_POOL_STATS_VERSION"),
    MEMBER(spotdb_pool_stats, max_size, int32_t, "max_size in effect"),
    MEMBER(spotdb_pool_stats, size, int32_t, "idle plus in_use"),
    MEMBER(spotdb_pool_stats, idle, int32_t, "handles waiting in the pool"),
    MEMBER(spotdb_pool_stats, in_use, int32_t, "handles lent out"),
    MEMBER(spotdb_pool_stats, waiting, int32_t,
           "threads waiting in spotdb_pool_acquire"),
    MEMBER(spotdb_pool_stats, acquires, int64_t, "successful acquires"),
    MEMBER(spotdb_pool_stats, waits, int64_t, "acquires that had to wait"),
    MEMBER(spotdb_pool_stats, timeouts, int64_t,
           "acquires that failed with SPOTDB_ETIMEOUT"),
    MEMBER(spotdb_pool_stats, reconnects, int64_t,
           "handles closed because their connection broke"),
    MEMBER(spotdb_pool_stats, pings, int64_t,
           "SELECT 1 round trips before reuse"),
};

static const member retry_options[] = {
    MEMBER(spotdb_retry_options, version, unsigned int,
           "SPOTDB_RETRY_OPTIONS_VERSION"),
    MEMBER(spotdb_retry_options, max_attempts, int32_t,
           "runs of the body at most; 0: 5"),
    MEMBER(spotdb_retry_options, base_delay_ms, int32_t,
           "delay before the second run, doubling; 0: 10"),
    MEMBER(spotdb_retry_options, max_delay_ms, int32_t,
           "upper bound of one delay; 0: 1000"),
    MEMBER(spotdb_retry_options, isolation, const char *,
           "NULL, \"serializable\", \"repeatable read\" or "
           "\"read committed\""),
};

static const member trace_event[] = {
    MEMBER(spotdb_trace_event, version, unsigned int,
           "SPOTDB_TRACE_EVENT_VERSION of the library"),
    MEMBER(spotdb_trace_event, name, const char *, "the operation"),
    MEMBER(spotdb_trace_event, sql, const char *,
           "SQL text with placeholders, never values"),
    MEMBER(spotdb_trace_event, statement, const char *,
           "prepared statement name, or \"\""),
    MEMBER(spotdb_trace_event, duration_us, int64_t,
           "send to complete result, monotonic"),
    MEMBER(spotdb_trace_event, rows, int64_t,
           "rows returned or changed; -1: none"),
    MEMBER(spotdb_trace_event, code, int, "0 or a spotdb_error_code"),
    MEMBER(spotdb_trace_event, sqlstate, const char *,
           "SQLSTATE of a server failure, else \"\""),
    MEMBER(spotdb_trace_event, replica, int,
           "1 when run on the read connection"),
};

static const member doctor_finding[] = {
    MEMBER(spotdb_doctor_finding, severity, int32_t,
           "a spotdb_doctor_severity value"),
    MEMBER(spotdb_doctor_finding, code, const char *,
           "stable identifier of the check and outcome"),
    MEMBER(spotdb_doctor_finding, message, const char *,
           "one line for people; owned by the report"),
};

static const member doctor_report[] = {
    MEMBER(spotdb_doctor_report, count, size_t, "entries in findings"),
    MEMBER(spotdb_doctor_report, findings, spotdb_doctor_finding *,
           "the findings; NULL when count is 0"),
    MEMBER(spotdb_doctor_report, worst, int32_t,
           "highest severity, 0 for none"),
};

static const member migrate_options[] = {
    MEMBER(spotdb_migrate_options, version, unsigned int,
           "SPOTDB_MIGRATE_OPTIONS_VERSION"),
    MEMBER(spotdb_migrate_options, target_version, int64_t,
           "stop after this version; 0: the newest"),
    MEMBER(spotdb_migrate_options, dry_run, int32_t,
           "non-zero: change nothing"),
    MEMBER(spotdb_migrate_options, lock_timeout_ms, int32_t,
           "0: 60000; -1: wait without limit"),
    MEMBER(spotdb_migrate_options, callback, spotdb_migrate_cb,
           "progress callback, or NULL"),
    MEMBER(spotdb_migrate_options, payload, void *,
           "passed to callback"),
};

static const member migration_info[] = {
    MEMBER(spotdb_migration_info, version, int64_t, "NNNN of the file"),
    MEMBER(spotdb_migration_info, name, const char *, "the file's name part"),
    MEMBER(spotdb_migration_info, checksum, const char *, "SHA-256 hex"),
    TIME_MEMBER(spotdb_migration_info, applied_at_us, int64_t,
                "0 when not applied"),
    MEMBER(spotdb_migration_info, execution_ms, int32_t,
           "-1 when not applied"),
    MEMBER(spotdb_migration_info, state, int32_t,
           "1 applied, 2 pending, 3 changed, 4 unknown, 5 adopted"),
};

static const member status[] = {
    MEMBER(spotdb_status, current_version, int64_t,
           "highest applied version, 0 for none"),
    MEMBER(spotdb_status, latest_version, int64_t,
           "highest version embedded in the library"),
    MEMBER(spotdb_status, tracked, int32_t,
           "1 when the tracking table exists"),
    MEMBER(spotdb_status, unversioned_schema, int32_t,
           "without tracking table: 0 none, 1 adoptable, 2 differs, "
           "-1 not probed"),
    MEMBER(spotdb_status, applied_count, size_t, "entries in applied"),
    MEMBER(spotdb_status, applied, spotdb_migration_info *,
           "recorded migrations, oldest first"),
    MEMBER(spotdb_status, pending_count, size_t, "entries in pending"),
    MEMBER(spotdb_status, pending, spotdb_migration_info *,
           "embedded migrations not applied, oldest first"),
};

/* Every relation's *_rows struct has this layout (table.h checks it). */
static const member rows[] = {
    MEMBER(spotdb__rows, items, void *, "count rows of the relation"),
    MEMBER(spotdb__rows, count, size_t, "number of rows"),
    MEMBER(spotdb__rows, next_cursor, const char *,
           "cursor of the next page; NULL after the last page"),
};

typedef struct named_struct {
    const char *name;
    size_t size;
    long version;                   /* -1: not an option struct */
    const member *members;
    size_t nmembers;
} named_struct;

#define STRUCT(S, version, members) \
    { #S, sizeof(S), version, members, SPOTDB__NELEMS(members) }

static const named_struct structs[] = {
    STRUCT(spotdb_open_options, SPOTDB_OPEN_OPTIONS_VERSION, open_options),
    STRUCT(spotdb_migrate_options, SPOTDB_MIGRATE_OPTIONS_VERSION,
           migrate_options),
    STRUCT(spotdb_migration_info, -1, migration_info),
    STRUCT(spotdb_status, -1, status),
    { "spotdb_rows", sizeof(spotdb__rows), -1, rows,
      SPOTDB__NELEMS(rows) },
    STRUCT(spotdb_pool_options, SPOTDB_POOL_OPTIONS_VERSION, pool_options),
    STRUCT(spotdb_pool_stats, SPOTDB_POOL_STATS_VERSION, pool_stats),
    STRUCT(spotdb_retry_options, SPOTDB_RETRY_OPTIONS_VERSION,
           retry_options),
    STRUCT(spotdb_trace_event, SPOTDB_TRACE_EVENT_VERSION, trace_event),
    STRUCT(spotdb_doctor_finding, -1, doctor_finding),
    STRUCT(spotdb_doctor_report, -1, doctor_report),
};

/* Handles whose layout is private: bindings pass them as pointers. */
static const char *const opaque_types[] = { "spotdb_db", "spotdb_pool" };

typedef struct named_value {
    const char *name;
    long value;
} named_value;

#define VALUE(x) { #x, x }

static const named_value constants[] = {
    VALUE(SPOTDB_SCHEMA_FORMAT),
    VALUE(SPOTDB_UUID_SIZE),
    VALUE(SPOTDB_DEFAULT_LIMIT),
    VALUE(SPOTDB_MAX_LIMIT),
    VALUE(SPOTDB_OPEN_OPTIONS_VERSION),
    VALUE(SPOTDB_MIGRATE_OPTIONS_VERSION),
    VALUE(SPOTDB_POOL_OPTIONS_VERSION),
    VALUE(SPOTDB_POOL_STATS_VERSION),
    VALUE(SPOTDB_POOL_WAIT_DEFAULT),
    VALUE(SPOTDB_POOL_WAIT_FOREVER),
    VALUE(SPOTDB_RETRY_OPTIONS_VERSION),
    VALUE(SPOTDB_TRACE_EVENT_VERSION),
    VALUE(SPOTDB_VERSION_MAJOR),
    VALUE(SPOTDB_VERSION_MINOR),
    VALUE(SPOTDB_VERSION_PATCH),
    VALUE(SPOTDB_CONN_ARGUMENT),
    VALUE(SPOTDB_CONN_DATABASE_URL),
    VALUE(SPOTDB_CONN_POSTGRES_ENV),
    VALUE(SPOTDB_CONN_LIBPQ_DEFAULTS),
    VALUE(SPOTDB_SCHEMA_CHECK_REQUIRE),
    VALUE(SPOTDB_SCHEMA_CHECK_SKIP),
    VALUE(SPOTDB_STATEMENTS_PREPARED),
    VALUE(SPOTDB_STATEMENTS_UNNAMED),
    VALUE(SPOTDB_POOLER_AUTO),
    VALUE(SPOTDB_POOLER_NONE),
    VALUE(SPOTDB_POOLER_TRANSACTION),
    VALUE(SPOTDB_REPLICA_READS_OFF),
    VALUE(SPOTDB_REPLICA_READS_ON),
    VALUE(SPOTDB_MIGRATION_APPLIED),
    VALUE(SPOTDB_MIGRATION_PENDING),
    VALUE(SPOTDB_MIGRATION_CHANGED),
    VALUE(SPOTDB_MIGRATION_UNKNOWN),
    VALUE(SPOTDB_MIGRATION_ADOPTED),
    VALUE(SPOTDB_DOCTOR_INFO),
    VALUE(SPOTDB_DOCTOR_WARNING),
    VALUE(SPOTDB_DOCTOR_ERROR),
};

static const named_value errors[] = {
    VALUE(SPOTDB_OK), VALUE(SPOTDB_ERROR), VALUE(SPOTDB_EINVAL),
    VALUE(SPOTDB_ENOMEM), VALUE(SPOTDB_ECONN), VALUE(SPOTDB_ESQL),
    VALUE(SPOTDB_ENOTFOUND), VALUE(SPOTDB_ECONFLICT),
    VALUE(SPOTDB_EREFERENCE), VALUE(SPOTDB_EAUTH), VALUE(SPOTDB_ESCHEMA),
    VALUE(SPOTDB_ECHECKSUM), VALUE(SPOTDB_EMIGRATE), VALUE(SPOTDB_EADOPT),
    VALUE(SPOTDB_ELOCKED), VALUE(SPOTDB_EPOOLER), VALUE(SPOTDB_ETIMEOUT),
    VALUE(SPOTDB_ECANCELED), VALUE(SPOTDB_EUNKNOWN),
    VALUE(SPOTDB_ESERIALIZATION),
    VALUE(SPOTDB_EDENIED),
};

/* Names of the extra rules, for generators that want to check early. */
static const struct { spotdb__text_rule fn; const char *name; }
text_rules[] = {
    { spotdb__rule_aws_account, "aws_account_id" },
    { spotdb__rule_role_arn, "iam_role_arn" },
    { spotdb__rule_external_id, "sts_external_id" },
    { spotdb__rule_ec2_id, "ec2_instance_id" },
    { spotdb__rule_email, "email" },
    { spotdb__rule_username, "username" },
    { spotdb__rule_json, "json" },
};

static const struct { spotdb__number_rule fn; const char *name; }
number_rules[] = {
    { spotdb__rule_probability, "probability" },
    { spotdb__rule_finite, "finite" },
};

/* ---- building the document --------------------------------------------- */

/* Every constructor can run out of memory; the first failure marks the
 * builder and the document is dropped at the end, so no helper needs to
 * unwind. */
typedef struct builder {
    bool failed;
} builder;

static json_object *made(builder *b, json_object *o)
{
    if (!o)
        b->failed = true;
    return o;
}

/* Add v (consumed, NULL meaning a failed constructor) as obj[key]. */
static void put(builder *b, json_object *obj, const char *key,
                json_object *v)
{
    if (!obj || !v || json_object_object_add(obj, key, v) != 0) {
        b->failed = true;
        json_object_put(v);
    }
}

static void put_null(builder *b, json_object *obj, const char *key)
{
    if (!obj || json_object_object_add(obj, key, NULL) != 0)
        b->failed = true;
}

static void put_str(builder *b, json_object *obj, const char *key,
                    const char *s)
{
    if (s)
        put(b, obj, key, json_object_new_string(s));
    else
        put_null(b, obj, key);
}

static void put_int(builder *b, json_object *obj, const char *key,
                    int64_t v)
{
    put(b, obj, key, json_object_new_int64(v));
}

static void put_bool(builder *b, json_object *obj, const char *key, bool v)
{
    put(b, obj, key, json_object_new_boolean(v));
}

static void append(builder *b, json_object *array, json_object *v)
{
    if (!array || !v || json_object_array_add(array, v) != 0) {
        b->failed = true;
        json_object_put(v);
    }
}

static const char *type_c(spotdb__type t)
{
    switch (t) {
    case SPOTDB__UUID: return "char[" XSTR(SPOTDB_UUID_SIZE) "]";
    case SPOTDB__TEXT: return "const char *";
    case SPOTDB__JSON: return "const char *";
    case SPOTDB__BOOL: return "bool";
    case SPOTDB__INT32: return "int32_t";
    case SPOTDB__INT64: return "int64_t";
    case SPOTDB__FLOAT64: return "double";
    case SPOTDB__TIMESTAMP: return "int64_t";
    }
    return "?";
}

static size_t type_size(spotdb__type t)
{
    switch (t) {
    case SPOTDB__UUID: return SPOTDB_UUID_SIZE;
    case SPOTDB__TEXT: return sizeof(const char *);
    case SPOTDB__JSON: return sizeof(const char *);
    case SPOTDB__BOOL: return sizeof(bool);
    case SPOTDB__INT32: return sizeof(int32_t);
    case SPOTDB__INT64: return sizeof(int64_t);
    case SPOTDB__FLOAT64: return sizeof(double);
    case SPOTDB__TIMESTAMP: return sizeof(int64_t);
    }
    return 0;
}

static const char *sql_type(const spotdb__column *c, char *buf, size_t n)
{
    switch (c->type) {
    case SPOTDB__UUID: return "uuid";
    case SPOTDB__TEXT:
        if (!c->max_chars)
            return "text";
        snprintf(buf, n, "varchar(%u)", c->max_chars);
        return buf;
    case SPOTDB__JSON: return "jsonb";
    case SPOTDB__BOOL: return "boolean";
    case SPOTDB__INT32: return "integer";
    case SPOTDB__INT64: return "bigint";
    case SPOTDB__FLOAT64: return "double precision";
    case SPOTDB__TIMESTAMP: return "timestamp";
    }
    return "?";
}

static const char *rule_name(const spotdb__column *c)
{
    for (size_t i = 0; c->text_rule && i < SPOTDB__NELEMS(text_rules); i++)
        if (text_rules[i].fn == c->text_rule)
            return text_rules[i].name;
    for (size_t i = 0; c->number_rule && i < SPOTDB__NELEMS(number_rules);
         i++)
        if (number_rules[i].fn == c->number_rule)
            return number_rules[i].name;
    return c->text_rule || c->number_rule ? "custom" : NULL;
}

static json_object *column_json(builder *b, const relation *r, size_t i)
{
    const spotdb__column *c = &r->table->columns[i];
    bool table = strcmp(r->kind, "table") == 0;
    json_object *o = made(b, json_object_new_object());
    char buf[32];

    put_str(b, o, "name", c->name);
    put_int(b, o, "index", (int64_t)i);
    put_int(b, o, "bit", (int64_t)SPOTDB_COLUMN_BIT(i));
    put_str(b, o, "sql_type", sql_type(c, buf, sizeof buf));
    put_str(b, o, "c_type", type_c(c->type));
    put_bool(b, o, "timestamp", c->type == SPOTDB__TIMESTAMP);
    put_bool(b, o, "json", c->type == SPOTDB__JSON);
    put_int(b, o, "offset", (int64_t)c->offset);
    put_int(b, o, "size", (int64_t)type_size(c->type));
    put_bool(b, o, "nullable", !(c->flags & SPOTDB__NOT_NULL));
    put_bool(b, o, "has_default", table && !(c->flags & SPOTDB__REQUIRED));
    put_bool(b, o, "required", (c->flags & SPOTDB__REQUIRED) != 0);
    put_bool(b, o, "key", (c->flags & SPOTDB__KEY) != 0);
    put_bool(b, o, "insertable", table);
    put_bool(b, o, "updatable",
             table && !(c->flags & (SPOTDB__KEY | SPOTDB__TRIGGER)));
    put_int(b, o, "min_chars", c->min_chars);
    put_int(b, o, "max_chars", c->max_chars);
    if (c->allowed) {
        json_object *a = made(b, json_object_new_array());

        for (const char *const *v = c->allowed; *v; v++)
            append(b, a, json_object_new_string(*v));
        put(b, o, "allowed", a);
    } else {
        put_null(b, o, "allowed");
    }
    put_str(b, o, "rule", rule_name(c));
    return o;
}

static json_object *member_json(builder *b, const char *name,
                                const char *c_type, size_t offset,
                                size_t size, const char *meaning,
                                bool timestamp)
{
    json_object *o = made(b, json_object_new_object());

    put_str(b, o, "name", name);
    put_str(b, o, "c_type", c_type);
    put_int(b, o, "offset", (int64_t)offset);
    put_int(b, o, "size", (int64_t)size);
    put_str(b, o, "meaning", meaning);
    put_bool(b, o, "timestamp", timestamp);
    return o;
}

static json_object *members_json(builder *b, const member *m, size_t n)
{
    json_object *a = made(b, json_object_new_array());

    for (size_t i = 0; i < n; i++)
        append(b, a, member_json(b, m[i].name, m[i].c_type, m[i].offset,
                                 m[i].size, m[i].meaning, m[i].timestamp));
    return a;
}

/* A filter member that filters a column: the description's entry at
 * its offset gives the column and the comparison. */
static void filter_column(builder *b, json_object *o, const relation *r,
                          const member *m)
{
    const spotdb__table *t = r->table;
    char meaning[160];

    for (size_t i = 0; i < t->nfilters; i++) {
        const spotdb__column *c = &t->columns[t->filters[i].column];

        if (t->filters[i].offset != m->offset)
            continue;
        put_bool(b, o, "timestamp", c->type == SPOTDB__TIMESTAMP);
        put_str(b, o, "column", c->name);
        put_str(b, o, "op", t->filters[i].op);
        snprintf(meaning, sizeof meaning, "rows whose %s %s *%s (never "
                 "NULL ones); NULL: no filter", c->name, t->filters[i].op,
                 m->name);
        put_str(b, o, "meaning", meaning);
        return;
    }
}

static json_object *filter_json(builder *b, const relation *r)
{
    json_object *o = made(b, json_object_new_object());
    json_object *a = made(b, json_object_new_array());

    put_str(b, o, "c_struct", r->filter_struct);
    put_int(b, o, "sizeof", (int64_t)r->filter_size);
    put_int(b, o, "version", r->table->filter_version);
    for (size_t i = 0; i < r->nfilter; i++) {
        const member *m = &r->filter[i];
        json_object *mo = member_json(b, m->name, m->c_type, m->offset,
                                      m->size, m->meaning, m->timestamp);

        if (!m->meaning)
            filter_column(b, mo, r, m);
        append(b, a, mo);
    }
    put(b, o, "members", a);
    return o;
}

static json_object *rows_json(builder *b, const relation *r)
{
    json_object *o = made(b, json_object_new_object());
    json_object *a = made(b, json_object_new_array());

    put_str(b, o, "c_struct", r->rows_struct);
    put_int(b, o, "sizeof", (int64_t)r->rows_size);
    append(b, a, member_json(b, "items", r->item_type, r->items_offset,
                             sizeof(void *), rows[0].meaning, false));
    append(b, a, member_json(b, "count", "size_t", r->count_offset,
                             sizeof(size_t), rows[1].meaning, false));
    append(b, a, member_json(b, "next_cursor", "const char *",
                             r->cursor_offset, sizeof(const char *),
                             rows[2].meaning, false));
    put(b, o, "members", a);
    return o;
}

/* "spotdb_user **out" -> name "out", type "spotdb_user **"; "char
 * (*ids)[37]" -> "ids", "char (*)[37]". */
static json_object *param_json(builder *b, const char *p, size_t len)
{
    json_object *o = made(b, json_object_new_object());
    const char *star = memchr(p, '(', len);
    char type[128], name[64];
    size_t start, end;

    if (star && star + 2 < p + len && star[1] == '*') {
        start = (size_t)(star + 2 - p);
        for (end = start; end < len && p[end] != ')'; end++)
            ;
    } else {
        for (end = len; end > 0 && p[end - 1] == ' '; end--)
            ;
        for (start = end; start > 0 && (p[start - 1] == '_' ||
             (p[start - 1] >= '0' && p[start - 1] <= '9') ||
             (p[start - 1] >= 'a' && p[start - 1] <= 'z') ||
             (p[start - 1] >= 'A' && p[start - 1] <= 'Z')); start--)
            ;
    }
    snprintf(name, sizeof name, "%.*s", (int)(end - start), p + start);
    /* The type is the text around the name, without trailing blanks. */
    snprintf(type, sizeof type, "%.*s%.*s", (int)start, p,
             (int)(len - end), p + end);
    for (size_t n = strlen(type); n > 0 && type[n - 1] == ' '; n--)
        type[n - 1] = '\0';
    put_str(b, o, "name", name);
    put_str(b, o, "c_type", type);
    return o;
}

static json_object *params_json(builder *b, const char *params)
{
    json_object *a = made(b, json_object_new_array());
    const char *p = params + 1, *end = params + strlen(params) - 1;

    if (strcmp(params, "(void)") == 0)
        return a;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;

        while (*p == ' ')
            p++;
        append(b, a, param_json(b, p, (size_t)(stop - p)));
        p = stop + 1;
    }
    return a;
}

static json_object *function_json(builder *b, const function *f)
{
    json_object *o = made(b, json_object_new_object());
    size_t n = strlen(f->returns);
    char proto[512];

    put_str(b, o, "name", f->name);
    put_str(b, o, "returns", f->returns);
    put(b, o, "params", params_json(b, f->params));
    snprintf(proto, sizeof proto, "%s%s%s%s", f->returns,
             f->returns[n - 1] == '*' ? "" : " ", f->name, f->params);
    put_str(b, o, "prototype", proto);
    return o;
}

static json_object *relation_json(builder *b, const relation *r)
{
    const spotdb__table *t = r->table;
    bool table = strcmp(r->kind, "table") == 0;
    json_object *o = made(b, json_object_new_object());
    json_object *cols = made(b, json_object_new_array());
    json_object *fns = made(b, json_object_new_object());
    const char *key = NULL;

    for (size_t i = 0; i < t->ncolumns; i++)
        if (t->columns[i].flags & SPOTDB__KEY)
            key = t->columns[i].name;
    /* The report's `relation` is a phrase for messages, not SQL. */
    put_str(b, o, "name", table || strcmp(r->kind, "view") == 0
                          ? t->relation : t->entity);
    put_str(b, o, "entity", t->entity);
    put_str(b, o, "kind", r->kind);
    put_str(b, o, "c_struct", r->c_struct);
    put_int(b, o, "sizeof", (int64_t)t->row_size);
    put_int(b, o, "nulls_offset", (int64_t)t->nulls_offset);
    put_str(b, o, "key", key);
    if (table) {
        json_object *order = made(b, json_object_new_object());

        put_str(b, order, "column", t->columns[t->order_column].name);
        put_bool(b, order, "descending", t->descending);
        put(b, o, "order", order);
    } else {
        put_null(b, o, "order");
    }
    for (size_t i = 0; i < t->ncolumns; i++)
        append(b, cols, column_json(b, r, i));
    put(b, o, "columns", cols);
    put(b, o, "filter", filter_json(b, r));
    put(b, o, "rows", rows_json(b, r));
    for (size_t i = 0; i < r->nops; i++)
        put(b, fns, r->ops[i].op, function_json(b, &r->ops[i]));
    put(b, o, "functions", fns);
    return o;
}

static json_object *platform_json(builder *b)
{
    static const uint16_t probe = 1;
    json_object *o = made(b, json_object_new_object());

    put_int(b, o, "pointer_size", (int64_t)sizeof(void *));
    put_int(b, o, "size_t_size", (int64_t)sizeof(size_t));
    put_int(b, o, "bool_size", (int64_t)sizeof(bool));
    put_int(b, o, "int_size", (int64_t)sizeof(int));
    put_int(b, o, "long_size", (int64_t)sizeof(long));
    put_str(b, o, "byte_order",
            *(const unsigned char *)&probe ? "little" : "big");
    return o;
}

static json_object *document(builder *b)
{
    const spotdb__migration_set *set = &spotdb__builtin_migrations;
    json_object *o = made(b, json_object_new_object());
    json_object *lib = made(b, json_object_new_object());
    json_object *consts = made(b, json_object_new_object());
    json_object *errs = made(b, json_object_new_array());
    json_object *sts = made(b, json_object_new_array());
    json_object *opq = made(b, json_object_new_array());
    json_object *fns = made(b, json_object_new_array());
    json_object *rels = made(b, json_object_new_array());

    put_int(b, o, "format", SPOTDB_SCHEMA_FORMAT);
    put_str(b, lib, "name", "libspotdb");
    put_str(b, lib, "version", spotdb_version());
    put(b, o, "library", lib);
    put_int(b, o, "schema_version",
            set->count ? set->items[set->count - 1].version : 0);
    put(b, o, "platform", platform_json(b));
    for (size_t i = 0; i < SPOTDB__NELEMS(constants); i++)
        put_int(b, consts, constants[i].name, constants[i].value);
    put(b, o, "constants", consts);
    for (size_t i = 0; i < SPOTDB__NELEMS(errors); i++) {
        json_object *e = made(b, json_object_new_object());

        put_int(b, e, "code", errors[i].value);
        put_str(b, e, "name", errors[i].name);
        put_str(b, e, "message", spotdb_strerror((int)errors[i].value));
        append(b, errs, e);
    }
    put(b, o, "errors", errs);
    for (size_t i = 0; i < SPOTDB__NELEMS(structs); i++) {
        json_object *s = made(b, json_object_new_object());

        put_str(b, s, "name", structs[i].name);
        put_int(b, s, "sizeof", (int64_t)structs[i].size);
        if (structs[i].version >= 0)
            put_int(b, s, "version", structs[i].version);
        else
            put_null(b, s, "version");
        put(b, s, "members", members_json(b, structs[i].members,
                                          structs[i].nmembers));
        append(b, sts, s);
    }
    put(b, o, "structs", sts);
    for (size_t i = 0; i < SPOTDB__NELEMS(opaque_types); i++)
        append(b, opq, made(b, json_object_new_string(opaque_types[i])));
    put(b, o, "opaque", opq);
    for (size_t i = 0; i < SPOTDB__NELEMS(global_functions); i++)
        append(b, fns, function_json(b, &global_functions[i]));
    put(b, o, "functions", fns);
    for (size_t i = 0; i < SPOTDB__NELEMS(relations); i++)
        append(b, rels, relation_json(b, &relations[i]));
    put(b, o, "relations", rels);
    return o;
}

static char *build(void)
{
    builder b = { false };
    json_object *doc = document(&b);
    const char *text = NULL;
    char *copy = NULL;

    if (!b.failed)
        text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN |
                                              JSON_C_TO_STRING_NOSLASHESCAPE);
    if (text)
        copy = spotdb__strdup(text);
    json_object_put(doc);
    return copy;
}

/* Built once and never freed: callers keep the pointer for the life of
 * the process.  Threads racing on the first call each build a copy; the
 * first to publish wins and the others free theirs, so a failed build
 * (out of memory) is simply retried by the next call. */
static _Atomic(char *) published;

const char *spotdb_schema_describe(void)
{
    char *doc = atomic_load_explicit(&published, memory_order_acquire);
    char *expected = NULL;

    if (doc)
        return doc;
    if (!(doc = build()))
        return NULL;
    if (!atomic_compare_exchange_strong_explicit(&published, &expected, doc,
                                                 memory_order_acq_rel,
                                                 memory_order_acquire)) {
        free(doc);
        doc = expected;
    }
    return doc;
}
