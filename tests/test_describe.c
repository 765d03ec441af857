/*
 * spotdb_schema_describe(): the document is strict JSON, published once,
 * and says what the compiler says.  Every column of every relation, every
 * filter member and the option and status structs are compared here with
 * offsetof and sizeof of the public headers and with the SPOTDB_*_<COLUMN>
 * bit macros, so a struct, a bit or a description that drifts fails.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json_object.h>
#include <json-c/json_tokener.h>

#include "harness.h"
#include "table.h"

#define NELEMS(a) (sizeof (a) / sizeof *(a))

/* ---- helpers ------------------------------------------------------------ */

static json_object *parse(void)
{
    const char *text = spotdb_schema_describe();
    json_tokener *tok;
    json_object *doc;
    size_t len;

    ck_assert_ptr_nonnull(text);
    len = strlen(text);
    tok = json_tokener_new();
    ck_assert_ptr_nonnull(tok);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT
#ifdef JSON_TOKENER_VALIDATE_UTF8
                           | JSON_TOKENER_VALIDATE_UTF8
#endif
                           );
    doc = json_tokener_parse_ex(tok, text, (int)len);
    ck_assert_msg(doc != NULL && json_tokener_get_error(tok) ==
                  json_tokener_success, "not JSON: %s",
                  json_tokener_error_desc(json_tokener_get_error(tok)));
    /* The whole text is the one document. */
    ck_assert_uint_eq(json_tokener_get_parse_end(tok), len);
    json_tokener_free(tok);
    ck_assert(json_object_is_type(doc, json_type_object));
    return doc;
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;

    ck_assert_msg(json_object_object_get_ex(o, key, &v), "no member \"%s\" "
                  "in %s", key, json_object_to_json_string(o));
    return v;
}

static int64_t get_int(json_object *o, const char *key)
{
    json_object *v = get(o, key);

    ck_assert_msg(json_object_is_type(v, json_type_int), "%s is not an "
                  "integer", key);
    return json_object_get_int64(v);
}

static const char *get_str(json_object *o, const char *key)
{
    json_object *v = get(o, key);

    if (v == NULL)
        return NULL;
    ck_assert_msg(json_object_is_type(v, json_type_string), "%s is not a "
                  "string", key);
    return json_object_get_string(v);
}

static bool get_bool(json_object *o, const char *key)
{
    json_object *v = get(o, key);

    ck_assert_msg(json_object_is_type(v, json_type_boolean), "%s is not a "
                  "boolean", key);
    return json_object_get_boolean(v);
}

/* The element of array `a` whose `key` is `value`. */
static json_object *find(json_object *a, const char *key, const char *value)
{
    ck_assert(json_object_is_type(a, json_type_array));
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        json_object *e = json_object_array_get_idx(a, i);
        const char *v = get_str(e, key);

        if (v && strcmp(v, value) == 0)
            return e;
    }
    ck_abort_msg("no element with %s \"%s\"", key, value);
    return NULL;
}

static json_object *relation(json_object *doc, const char *name)
{
    return find(get(doc, "relations"), "name", name);
}

static json_object *described_struct(json_object *doc, const char *name)
{
    return find(get(doc, "structs"), "name", name);
}

/* What the compiler says about one struct member. */
typedef struct fact {
    const char *name;
    size_t offset;
    size_t size;
    const char *c_type;
    uint64_t bit;                   /* columns: SPOTDB_<ENT>_<COLUMN> */
} fact;

#define FACT(S, m, ctype, bit) \
    { #m, offsetof(S, m), sizeof(((S *)0)->m), ctype, bit }

#define UUID_T "char[37]"
#define TEXT_T "const char *"
#define BOOL_T "bool"
#define TIME_T "int64_t"

/* The described members (or columns) are exactly `facts`, in order. */
static void same_members(json_object *members, const fact *facts, size_t n,
                         const char *what, bool columns)
{
    ck_assert_msg(json_object_array_length(members) == n, "%s: %zu members "
                  "described, the struct has %zu", what,
                  json_object_array_length(members), n);
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(members, i);
        const char *name = get_str(m, "name");

        ck_assert_msg(strcmp(name, facts[i].name) == 0, "%s: member %zu is "
                      "%s, the struct's is %s", what, i, name,
                      facts[i].name);
        ck_assert_msg((size_t)get_int(m, "offset") == facts[i].offset,
                      "%s.%s: offset %lld, offsetof %zu", what, name,
                      (long long)get_int(m, "offset"), facts[i].offset);
        ck_assert_msg((size_t)get_int(m, "size") == facts[i].size,
                      "%s.%s: size %lld, sizeof %zu", what, name,
                      (long long)get_int(m, "size"), facts[i].size);
        ck_assert_msg(strcmp(get_str(m, "c_type"), facts[i].c_type) == 0,
                      "%s.%s: c_type %s, expected %s", what, name,
                      get_str(m, "c_type"), facts[i].c_type);
        if (columns) {
            ck_assert_int_eq(get_int(m, "index"), (int64_t)i);
            ck_assert_msg((uint64_t)get_int(m, "bit") == facts[i].bit,
                          "%s.%s: bit %lld, the header's macro %llu", what,
                          name, (long long)get_int(m, "bit"),
                          (unsigned long long)facts[i].bit);
        }
    }
}

/* Alignment of a member as the ABIs we build for give it: arrays of char
 * 1, scalars and pointers their size. */
static size_t align_of(json_object *m)
{
    return strchr(get_str(m, "c_type"), '[') ? 1 : (size_t)get_int(m, "size");
}

/* The members tile the struct: each starts where the previous one ends or
 * after padding shorter than its own alignment, and only such padding
 * follows the last, so a member added to the struct but missing from the
 * description is caught. */
static void covers(json_object *members, size_t size, const char *what)
{
    size_t end = 0, n = json_object_array_length(members), max_align = 1;

    ck_assert_msg(n > 0, "%s: no members", what);
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(members, i);
        size_t off = (size_t)get_int(m, "offset"), align = align_of(m);

        ck_assert_msg(off >= end, "%s.%s overlaps the member before it",
                      what, get_str(m, "name"));
        ck_assert_msg(off == end || (off - end < align && off % align == 0),
                      "%s: %zu bytes before %s are not padding: a member "
                      "is missing", what, off - end, get_str(m, "name"));
        end = off + (size_t)get_int(m, "size");
        if (align > max_align)
            max_align = align;
    }
    ck_assert_msg(end <= size && size - end < max_align, "%s: %zu bytes "
                  "after the last member of %zu: a member is missing", what,
                  size - end, size);
}

/* A relation: its struct, the offset of `nulls`, and every column. */
static void check_relation(json_object *doc, const char *name,
                           const char *kind, const char *c_struct,
                           size_t size, size_t nulls, const fact *cols,
                           size_t ncols)
{
    json_object *r = relation(doc, name);
    json_object *rows = get(r, "rows");

    ck_assert_str_eq(get_str(r, "kind"), kind);
    ck_assert_str_eq(get_str(r, "c_struct"), c_struct);
    ck_assert_uint_eq((size_t)get_int(r, "sizeof"), size);
    ck_assert_uint_eq((size_t)get_int(r, "nulls_offset"), nulls);
    same_members(get(r, "columns"), cols, ncols, name, true);
    /* The page struct has the shared layout. */
    covers(get(rows, "members"), (size_t)get_int(rows, "sizeof"), name);
    ck_assert_uint_eq((size_t)get_int(rows, "sizeof"), 3 * sizeof(void *));
}

/* ---- tests -------------------------------------------------------------- */

START_TEST(document_is_strict_json)
{
    json_object *doc = parse();
    json_object *lib = get(doc, "library");
    const spotdb__migration_set *set = &spotdb__builtin_migrations;

    ck_assert_int_eq(get_int(doc, "format"), SPOTDB_SCHEMA_FORMAT);
    ck_assert_str_eq(get_str(lib, "name"), "libspotdb");
    ck_assert_str_eq(get_str(lib, "version"), SPOTDB_VERSION);
    ck_assert_int_eq(get_int(doc, "schema_version"),
                     set->items[set->count - 1].version);
    ck_assert_int_eq(get_int(get(doc, "platform"), "pointer_size"),
                     (int64_t)sizeof(void *));
    ck_assert_int_eq(get_int(get(doc, "constants"), "SPOTDB_UUID_SIZE"),
                     SPOTDB_UUID_SIZE);
    ck_assert_int_eq(get_int(get(doc, "constants"), "SPOTDB_MAX_LIMIT"),
                     SPOTDB_MAX_LIMIT);
    /* Five tables, two views, one report. */
    ck_assert_uint_eq(json_object_array_length(get(doc, "relations")), 8);
    json_object_put(doc);
}
END_TEST

START_TEST(document_is_built_once)
{
    const char *a = spotdb_schema_describe();

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_eq(spotdb_schema_describe(), a);
}
END_TEST

static void *describe_thread(void *arg)
{
    (void)arg;
    return (void *)spotdb_schema_describe();
}

/* Concurrent first calls: all get the one published document.  (Each
 * test runs in a fresh process under Check's fork mode.) */
START_TEST(first_calls_race_to_one_document)
{
    pthread_t t[8];
    void *got[8];

    for (size_t i = 0; i < NELEMS(t); i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, describe_thread, NULL),
                         0);
    for (size_t i = 0; i < NELEMS(t); i++) {
        ck_assert_int_eq(pthread_join(t[i], &got[i]), 0);
        ck_assert_ptr_nonnull(got[i]);
        ck_assert_ptr_eq(got[i], got[0]);
    }
    ck_assert_ptr_eq(spotdb_schema_describe(), got[0]);
}
END_TEST

START_TEST(tables_match_structs)
{
    static const fact user[] = {
        FACT(spotdb_user, id, UUID_T, SPOTDB_USER_ID),
        FACT(spotdb_user, email, TEXT_T, SPOTDB_USER_EMAIL),
        FACT(spotdb_user, username, TEXT_T, SPOTDB_USER_USERNAME),
        FACT(spotdb_user, full_name, TEXT_T, SPOTDB_USER_FULL_NAME),
        FACT(spotdb_user, role, TEXT_T, SPOTDB_USER_ROLE),
        FACT(spotdb_user, is_active, BOOL_T, SPOTDB_USER_IS_ACTIVE),
        FACT(spotdb_user, created_at, TIME_T, SPOTDB_USER_CREATED_AT),
        FACT(spotdb_user, updated_at, TIME_T, SPOTDB_USER_UPDATED_AT),
        FACT(spotdb_user, last_login, TIME_T, SPOTDB_USER_LAST_LOGIN),
    };
    static const fact account[] = {
        FACT(spotdb_account, id, UUID_T, SPOTDB_ACCOUNT_ID),
        FACT(spotdb_account, user_id, UUID_T, SPOTDB_ACCOUNT_USER_ID),
        FACT(spotdb_account, account_id, TEXT_T, SPOTDB_ACCOUNT_ACCOUNT_ID),
        FACT(spotdb_account, account_name, TEXT_T,
             SPOTDB_ACCOUNT_ACCOUNT_NAME),
        FACT(spotdb_account, environment_type, TEXT_T,
             SPOTDB_ACCOUNT_ENVIRONMENT_TYPE),
        FACT(spotdb_account, role_arn, TEXT_T, SPOTDB_ACCOUNT_ROLE_ARN),
        FACT(spotdb_account, external_id, TEXT_T, SPOTDB_ACCOUNT_EXTERNAL_ID),
        FACT(spotdb_account, region, TEXT_T, SPOTDB_ACCOUNT_REGION),
        FACT(spotdb_account, is_active, BOOL_T, SPOTDB_ACCOUNT_IS_ACTIVE),
        FACT(spotdb_account, created_at, TIME_T, SPOTDB_ACCOUNT_CREATED_AT),
        FACT(spotdb_account, updated_at, TIME_T, SPOTDB_ACCOUNT_UPDATED_AT),
    };
    static const fact instance[] = {
        FACT(spotdb_instance, id, UUID_T, SPOTDB_INSTANCE_ID),
        FACT(spotdb_instance, account_id, UUID_T, SPOTDB_INSTANCE_ACCOUNT_ID),
        FACT(spotdb_instance, instance_id, TEXT_T,
             SPOTDB_INSTANCE_INSTANCE_ID),
        FACT(spotdb_instance, instance_type, TEXT_T,
             SPOTDB_INSTANCE_INSTANCE_TYPE),
        FACT(spotdb_instance, availability_zone, TEXT_T,
             SPOTDB_INSTANCE_AVAILABILITY_ZONE),
        FACT(spotdb_instance, assigned_model_version, TEXT_T,
             SPOTDB_INSTANCE_ASSIGNED_MODEL_VERSION),
        FACT(spotdb_instance, pipeline_mode, TEXT_T,
             SPOTDB_INSTANCE_PIPELINE_MODE),
        FACT(spotdb_instance, is_shadow_mode, BOOL_T,
             SPOTDB_INSTANCE_IS_SHADOW_MODE),
        FACT(spotdb_instance, is_active, BOOL_T, SPOTDB_INSTANCE_IS_ACTIVE),
        FACT(spotdb_instance, last_evaluation, TIME_T,
             SPOTDB_INSTANCE_LAST_EVALUATION),
        FACT(spotdb_instance, metadata, TEXT_T, SPOTDB_INSTANCE_METADATA),
        FACT(spotdb_instance, created_at, TIME_T, SPOTDB_INSTANCE_CREATED_AT),
        FACT(spotdb_instance, updated_at, TIME_T, SPOTDB_INSTANCE_UPDATED_AT),
    };
    static const fact model[] = {
        FACT(spotdb_model, id, UUID_T, SPOTDB_MODEL_ID),
        FACT(spotdb_model, name, TEXT_T, SPOTDB_MODEL_NAME),
        FACT(spotdb_model, version, TEXT_T, SPOTDB_MODEL_VERSION),
        FACT(spotdb_model, s3_path, TEXT_T, SPOTDB_MODEL_S3_PATH),
        FACT(spotdb_model, local_path, TEXT_T, SPOTDB_MODEL_LOCAL_PATH),
        FACT(spotdb_model, description, TEXT_T, SPOTDB_MODEL_DESCRIPTION),
        FACT(spotdb_model, is_experimental, BOOL_T,
             SPOTDB_MODEL_IS_EXPERIMENTAL),
        FACT(spotdb_model, is_active, BOOL_T, SPOTDB_MODEL_IS_ACTIVE),
        FACT(spotdb_model, feature_version, TEXT_T,
             SPOTDB_MODEL_FEATURE_VERSION),
        FACT(spotdb_model, created_at, TIME_T, SPOTDB_MODEL_CREATED_AT),
        FACT(spotdb_model, created_by, UUID_T, SPOTDB_MODEL_CREATED_BY),
    };
#define L(m, t, b) FACT(spotdb_experiment_log, m, t, \
                        SPOTDB_EXPERIMENT_LOG_##b)
    static const fact log[] = {
        L(id, UUID_T, ID),
        L(instance_id, UUID_T, INSTANCE_ID),
        L(model_id, UUID_T, MODEL_ID),
        L(pipeline_mode, TEXT_T, PIPELINE_MODE),
        L(is_shadow_run, BOOL_T, IS_SHADOW_RUN),
        L(prediction_score, "double", PREDICTION_SCORE),
        L(decision, TEXT_T, DECISION),
        L(decision_reason, TEXT_T, DECISION_REASON),
        L(execution_time, TIME_T, EXECUTION_TIME),
        L(execution_duration_ms, "int32_t", EXECUTION_DURATION_MS),
        L(candidates_evaluated, "int32_t", CANDIDATES_EVALUATED),
        L(selected_instance_type, TEXT_T, SELECTED_INSTANCE_TYPE),
        L(selected_availability_zone, TEXT_T, SELECTED_AVAILABILITY_ZONE),
        L(old_spot_price, "double", OLD_SPOT_PRICE),
        L(new_spot_price, "double", NEW_SPOT_PRICE),
        L(projected_hourly_savings, "double", PROJECTED_HOURLY_SAVINGS),
        L(features_used, TEXT_T, FEATURES_USED),
        L(error_message, TEXT_T, ERROR_MESSAGE),
    };
#undef L
    json_object *doc = parse();

    check_relation(doc, "users", "table", "spotdb_user", sizeof(spotdb_user),
                   offsetof(spotdb_user, nulls), user, NELEMS(user));
    check_relation(doc, "accounts", "table", "spotdb_account",
                   sizeof(spotdb_account), offsetof(spotdb_account, nulls),
                   account, NELEMS(account));
    check_relation(doc, "instances", "table", "spotdb_instance",
                   sizeof(spotdb_instance), offsetof(spotdb_instance, nulls),
                   instance, NELEMS(instance));
    check_relation(doc, "model_registry", "table", "spotdb_model",
                   sizeof(spotdb_model), offsetof(spotdb_model, nulls),
                   model, NELEMS(model));
    check_relation(doc, "experiment_logs", "table", "spotdb_experiment_log",
                   sizeof(spotdb_experiment_log),
                   offsetof(spotdb_experiment_log, nulls), log, NELEMS(log));
    json_object_put(doc);
}
END_TEST

START_TEST(views_and_report_match_structs)
{
#define A(m, t, b) FACT(spotdb_active_instance, m, t, \
                        SPOTDB_ACTIVE_INSTANCE_##b)
    static const fact active[] = {
        A(id, UUID_T, ID),
        A(instance_id, TEXT_T, INSTANCE_ID),
        A(instance_type, TEXT_T, INSTANCE_TYPE),
        A(availability_zone, TEXT_T, AVAILABILITY_ZONE),
        A(pipeline_mode, TEXT_T, PIPELINE_MODE),
        A(is_shadow_mode, BOOL_T, IS_SHADOW_MODE),
        A(assigned_model_version, TEXT_T, ASSIGNED_MODEL_VERSION),
        A(last_evaluation, TIME_T, LAST_EVALUATION),
        A(aws_account_id, TEXT_T, AWS_ACCOUNT_ID),
        A(account_name, TEXT_T, ACCOUNT_NAME),
        A(environment_type, TEXT_T, ENVIRONMENT_TYPE),
        A(region, TEXT_T, REGION),
        A(user_email, TEXT_T, USER_EMAIL),
        A(username, TEXT_T, USERNAME),
        A(model_name, TEXT_T, MODEL_NAME),
        A(model_version, TEXT_T, MODEL_VERSION),
    };
#undef A
#define R(m, t, b) FACT(spotdb_recent_experiment, m, t, \
                        SPOTDB_RECENT_EXPERIMENT_##b)
    static const fact recent[] = {
        R(id, UUID_T, ID),
        R(execution_time, TIME_T, EXECUTION_TIME),
        R(decision, TEXT_T, DECISION),
        R(prediction_score, "double", PREDICTION_SCORE),
        R(is_shadow_run, BOOL_T, IS_SHADOW_RUN),
        R(execution_duration_ms, "int32_t", EXECUTION_DURATION_MS),
        R(instance_id, TEXT_T, INSTANCE_ID),
        R(instance_type, TEXT_T, INSTANCE_TYPE),
        R(pipeline_mode, TEXT_T, PIPELINE_MODE),
        R(aws_account_id, TEXT_T, AWS_ACCOUNT_ID),
        R(account_name, TEXT_T, ACCOUNT_NAME),
        R(model_name, TEXT_T, MODEL_NAME),
        R(model_version, TEXT_T, MODEL_VERSION),
        R(selected_instance_type, TEXT_T, SELECTED_INSTANCE_TYPE),
        R(projected_hourly_savings, "double", PROJECTED_HOURLY_SAVINGS),
    };
#undef R
#define P(m, t, b) FACT(spotdb_model_performance, m, t, \
                        SPOTDB_MODEL_PERFORMANCE_##b)
    static const fact perf[] = {
        P(model_name, TEXT_T, MODEL_NAME),
        P(model_version, TEXT_T, MODEL_VERSION),
        P(runs, "int64_t", RUNS),
        P(avg_prediction_score, "double", AVG_PREDICTION_SCORE),
        P(switch_count, "int64_t", SWITCH_COUNT),
        P(avg_projected_savings, "double", AVG_PROJECTED_SAVINGS),
    };
#undef P
    json_object *doc = parse();

    check_relation(doc, "v_active_instances", "view",
                   "spotdb_active_instance", sizeof(spotdb_active_instance),
                   offsetof(spotdb_active_instance, nulls), active,
                   NELEMS(active));
    check_relation(doc, "v_recent_experiments", "view",
                   "spotdb_recent_experiment",
                   sizeof(spotdb_recent_experiment),
                   offsetof(spotdb_recent_experiment, nulls), recent,
                   NELEMS(recent));
    check_relation(doc, "model_performance", "report",
                   "spotdb_model_performance",
                   sizeof(spotdb_model_performance),
                   offsetof(spotdb_model_performance, nulls), perf,
                   NELEMS(perf));
    json_object_put(doc);
}
END_TEST

/* Column rules come from the descriptions the library validates with. */
START_TEST(columns_carry_rules)
{
    json_object *doc = parse();
    json_object *users = get(relation(doc, "users"), "columns");
    json_object *email = find(users, "name", "email");
    json_object *role = find(users, "name", "role");
    json_object *id = find(users, "name", "id");
    json_object *updated = find(users, "name", "updated_at");
    json_object *metadata = find(get(relation(doc, "instances"), "columns"),
                                 "name", "metadata");
    json_object *allowed = get(role, "allowed");

    ck_assert_str_eq(get_str(email, "sql_type"), "varchar(255)");
    ck_assert_int_eq(get_int(email, "max_chars"), 255);
    ck_assert(get_bool(email, "required"));
    ck_assert(!get_bool(email, "nullable"));
    ck_assert(!get_bool(email, "has_default"));
    ck_assert_str_eq(get_str(email, "rule"), "email");
    ck_assert(get_bool(role, "has_default"));
    ck_assert_uint_eq(json_object_array_length(allowed), 3);
    ck_assert_str_eq(json_object_get_string(
                         json_object_array_get_idx(allowed, 0)), "admin");
    ck_assert(get_bool(id, "key"));
    ck_assert(!get_bool(id, "updatable"));
    ck_assert(!get_bool(updated, "updatable"));
    ck_assert(get_bool(updated, "timestamp"));
    ck_assert(get_bool(metadata, "json"));
    ck_assert_str_eq(get_str(metadata, "sql_type"), "jsonb");
    ck_assert(get_bool(find(get(relation(doc, "accounts"), "columns"),
                            "name", "is_active"), "nullable"));
    ck_assert_str_eq(get_str(relation(doc, "users"), "key"), "id");
    ck_assert_ptr_null(get(relation(doc, "v_active_instances"), "key"));
    ck_assert_str_eq(get_str(get(relation(doc, "experiment_logs"), "order"),
                             "column"), "execution_time");
    ck_assert(get_bool(get(relation(doc, "experiment_logs"), "order"),
                       "descending"));
    ck_assert(!get_bool(find(get(relation(doc, "v_recent_experiments"),
                                 "columns"), "name", "id"), "insertable"));
    json_object_put(doc);
}
END_TEST

/* A filter's members, its size and version, and what each filters. */
static void check_filter(json_object *doc, const char *name,
                         const char *c_struct, size_t size,
                         unsigned version, const fact *members, size_t n)
{
    json_object *f = get(relation(doc, name), "filter");

    ck_assert_str_eq(get_str(f, "c_struct"), c_struct);
    ck_assert_uint_eq((size_t)get_int(f, "sizeof"), size);
    ck_assert_int_eq(get_int(f, "version"), version);
    same_members(get(f, "members"), members, n, c_struct, false);
    covers(get(f, "members"), size, c_struct);
}

START_TEST(filters_match_structs)
{
#define F(S, m, t) FACT(S, m, t, 0)
#define V(S) F(S, version, "unsigned int")
    static const fact user[] = {
        V(spotdb_user_filter),
        F(spotdb_user_filter, role, "const char *"),
        F(spotdb_user_filter, is_active, "const bool *"),
    };
    static const fact account[] = {
        V(spotdb_account_filter),
        F(spotdb_account_filter, user_id, "const char *"),
        F(spotdb_account_filter, environment_type, "const char *"),
        F(spotdb_account_filter, is_active, "const bool *"),
    };
    static const fact instance[] = {
        V(spotdb_instance_filter),
        F(spotdb_instance_filter, account_id, "const char *"),
        F(spotdb_instance_filter, pipeline_mode, "const char *"),
        F(spotdb_instance_filter, is_active, "const bool *"),
    };
    static const fact model[] = {
        V(spotdb_model_filter),
        F(spotdb_model_filter, name, "const char *"),
        F(spotdb_model_filter, is_active, "const bool *"),
    };
    static const fact log[] = {
        V(spotdb_experiment_log_filter),
        F(spotdb_experiment_log_filter, instance_id, "const char *"),
        F(spotdb_experiment_log_filter, model_id, "const char *"),
        F(spotdb_experiment_log_filter, decision, "const char *"),
        F(spotdb_experiment_log_filter, is_shadow_run, "const bool *"),
        F(spotdb_experiment_log_filter, executed_from, "const int64_t *"),
        F(spotdb_experiment_log_filter, executed_before, "const int64_t *"),
    };
    static const fact active[] = {
        V(spotdb_active_instance_filter),
        F(spotdb_active_instance_filter, environment_type, "const char *"),
    };
    static const fact recent[] = {
        V(spotdb_recent_experiment_filter),
        F(spotdb_recent_experiment_filter, decision, "const char *"),
        F(spotdb_recent_experiment_filter, is_shadow_run, "const bool *"),
    };
    static const fact perf[] = {
        V(spotdb_model_performance_filter),
        F(spotdb_model_performance_filter, since, "const int64_t *"),
        F(spotdb_model_performance_filter, until, "const int64_t *"),
    };
#undef V
#undef F
    json_object *doc = parse();
    json_object *members = get(get(relation(doc, "experiment_logs"),
                                   "filter"), "members");
    json_object *from = find(members, "name", "executed_from");

    check_filter(doc, "users", "spotdb_user_filter",
                 sizeof(spotdb_user_filter), SPOTDB_USER_FILTER_VERSION,
                 user, NELEMS(user));
    check_filter(doc, "accounts", "spotdb_account_filter",
                 sizeof(spotdb_account_filter),
                 SPOTDB_ACCOUNT_FILTER_VERSION, account, NELEMS(account));
    check_filter(doc, "instances", "spotdb_instance_filter",
                 sizeof(spotdb_instance_filter),
                 SPOTDB_INSTANCE_FILTER_VERSION, instance, NELEMS(instance));
    check_filter(doc, "model_registry", "spotdb_model_filter",
                 sizeof(spotdb_model_filter), SPOTDB_MODEL_FILTER_VERSION,
                 model, NELEMS(model));
    check_filter(doc, "experiment_logs", "spotdb_experiment_log_filter",
                 sizeof(spotdb_experiment_log_filter),
                 SPOTDB_EXPERIMENT_LOG_FILTER_VERSION, log, NELEMS(log));
    check_filter(doc, "v_active_instances", "spotdb_active_instance_filter",
                 sizeof(spotdb_active_instance_filter),
                 SPOTDB_ACTIVE_INSTANCE_FILTER_VERSION, active,
                 NELEMS(active));
    check_filter(doc, "v_recent_experiments",
                 "spotdb_recent_experiment_filter",
                 sizeof(spotdb_recent_experiment_filter),
                 SPOTDB_RECENT_EXPERIMENT_FILTER_VERSION, recent,
                 NELEMS(recent));
    check_filter(doc, "model_performance", "spotdb_model_performance_filter",
                 sizeof(spotdb_model_performance_filter),
                 SPOTDB_MODEL_PERFORMANCE_FILTER_VERSION, perf, NELEMS(perf));
    /* Column filters say which column and how they compare. */
    ck_assert_str_eq(get_str(from, "column"), "execution_time");
    ck_assert_str_eq(get_str(from, "op"), ">=");
    ck_assert(get_bool(from, "timestamp"));
    ck_assert_str_eq(get_str(find(members, "name", "executed_before"),
                             "op"), "<");
    ck_assert_str_eq(get_str(find(members, "name", "decision"), "column"),
                     "decision");
    ck_assert(get_bool(find(get(get(relation(doc, "model_performance"),
                                    "filter"), "members"), "name", "since"),
                       "timestamp"));
    json_object_put(doc);
}
END_TEST

/* Every column filter of a description is named in the document. */
START_TEST(every_column_filter_is_described)
{
    static const spotdb__table *const tables[] = {
        &spotdb__user_table, &spotdb__account_table,
        &spotdb__instance_table, &spotdb__model_table,
        &spotdb__experiment_log_table, &spotdb__active_instance_table,
        &spotdb__recent_experiment_table,
    };
    json_object *doc = parse();

    for (size_t i = 0; i < NELEMS(tables); i++) {
        const spotdb__table *t = tables[i];
        json_object *m = get(get(relation(doc, t->relation), "filter"),
                             "members");
        size_t named = 0;

        for (size_t j = 0; j < json_object_array_length(m); j++) {
            json_object *e = json_object_array_get_idx(m, j);
            json_object *col = NULL;

            if (!json_object_object_get_ex(e, "column", &col))
                continue;
            named++;
            for (size_t k = 0; k < t->nfilters; k++)
                if ((int64_t)t->filters[k].offset == get_int(e, "offset"))
                    ck_assert_str_eq(json_object_get_string(col),
                        t->columns[t->filters[k].column].name);
        }
        ck_assert_msg(named == t->nfilters, "%s: %zu of %zu filters "
                      "described", t->relation, named, t->nfilters);
    }
    json_object_put(doc);
}
END_TEST

START_TEST(structs_match)
{
#define F(S, m, t) FACT(S, m, t, 0)
    static const fact open_options[] = {
        F(spotdb_open_options, version, "unsigned int"),
        F(spotdb_open_options, application_name, "const char *"),
        F(spotdb_open_options, connect_timeout_s, "int32_t"),
        F(spotdb_open_options, schema_check, "int32_t"),
        F(spotdb_open_options, statements, "int32_t"),
        F(spotdb_open_options, pooler, "int32_t"),
        F(spotdb_open_options, replica_reads, "int32_t"),
        F(spotdb_open_options, call_timeout_ms, "int32_t"),
    };
    static const fact migrate_options[] = {
        F(spotdb_migrate_options, version, "unsigned int"),
        F(spotdb_migrate_options, target_version, "int64_t"),
        F(spotdb_migrate_options, dry_run, "int32_t"),
        F(spotdb_migrate_options, lock_timeout_ms, "int32_t"),
        F(spotdb_migrate_options, callback, "spotdb_migrate_cb"),
        F(spotdb_migrate_options, payload, "void *"),
    };
    static const fact status[] = {
        F(spotdb_status, current_version, "int64_t"),
        F(spotdb_status, latest_version, "int64_t"),
        F(spotdb_status, tracked, "int32_t"),
        F(spotdb_status, unversioned_schema, "int32_t"),
        F(spotdb_status, applied_count, "size_t"),
        F(spotdb_status, applied, "spotdb_migration_info *"),
        F(spotdb_status, pending_count, "size_t"),
        F(spotdb_status, pending, "spotdb_migration_info *"),
    };
    static const fact info[] = {
        F(spotdb_migration_info, version, "int64_t"),
        F(spotdb_migration_info, name, "const char *"),
        F(spotdb_migration_info, checksum, "const char *"),
        F(spotdb_migration_info, applied_at_us, "int64_t"),
        F(spotdb_migration_info, execution_ms, "int32_t"),
        F(spotdb_migration_info, state, "int32_t"),
    };
    static const fact rows[] = {
        F(spotdb_user_rows, items, "void *"),
        F(spotdb_user_rows, count, "size_t"),
        F(spotdb_user_rows, next_cursor, "const char *"),
    };
#undef F
    static const struct {
        const char *name;
        size_t size;
        long version;
        const fact *members;
        size_t n;
    } expected[] = {
        { "spotdb_open_options", sizeof(spotdb_open_options),
          SPOTDB_OPEN_OPTIONS_VERSION, open_options, NELEMS(open_options) },
        { "spotdb_migrate_options", sizeof(spotdb_migrate_options),
          SPOTDB_MIGRATE_OPTIONS_VERSION, migrate_options,
          NELEMS(migrate_options) },
        { "spotdb_status", sizeof(spotdb_status), -1, status,
          NELEMS(status) },
        { "spotdb_migration_info", sizeof(spotdb_migration_info), -1, info,
          NELEMS(info) },
        { "spotdb_rows", sizeof(spotdb_user_rows), -1, rows, NELEMS(rows) },
    };
    json_object *doc = parse();

    for (size_t i = 0; i < NELEMS(expected); i++) {
        json_object *s = described_struct(doc, expected[i].name);

        ck_assert_uint_eq((size_t)get_int(s, "sizeof"), expected[i].size);
        if (expected[i].version < 0)
            ck_assert_ptr_null(get(s, "version"));
        else
            ck_assert_int_eq(get_int(s, "version"), expected[i].version);
        same_members(get(s, "members"), expected[i].members, expected[i].n,
                     expected[i].name, false);
        covers(get(s, "members"), expected[i].size, expected[i].name);
    }
    ck_assert(get_bool(find(get(described_struct(doc,
                                "spotdb_migration_info"), "members"),
                            "name", "applied_at_us"), "timestamp"));
    json_object_put(doc);
}
END_TEST

/* Every code spotdb_strerror() knows is listed, with its message. */
START_TEST(errors_are_complete)
{
    json_object *doc = parse();
    json_object *errs = get(doc, "errors");
    size_t known = 0;

    for (int code = 5; code >= -100; code--) {
        const char *msg = spotdb_strerror(code);
        bool listed = false;

        if (strcmp(msg, "unknown error") != 0)
            known++;
        for (size_t i = 0; i < json_object_array_length(errs); i++) {
            json_object *e = json_object_array_get_idx(errs, i);

            if (get_int(e, "code") != code)
                continue;
            listed = true;
            ck_assert_str_eq(get_str(e, "message"), msg);
            ck_assert(strncmp(get_str(e, "name"), "SPOTDB_", 7) == 0);
        }
        ck_assert_msg(listed == (strcmp(msg, "unknown error") != 0),
                      "code %d: listed %d, strerror \"%s\"", code, listed,
                      msg);
    }
    ck_assert_uint_eq(json_object_array_length(errs), known);
    ck_assert_int_eq(get_int(find(errs, "name", "SPOTDB_ECONFLICT"), "code"),
                     SPOTDB_ECONFLICT);
    json_object_put(doc);
}
END_TEST

/* The functions each kind of relation must have, and their prototypes. */
START_TEST(functions_are_described)
{
    static const char *const table_ops[] = {
        "create", "get", "update", "delete", "list", "count", "stream",
        "free", "rows_free",
    };
    static const char *const read_ops[] = { "list", "stream", "rows_free" };
    json_object *doc = parse();
    json_object *rels = get(doc, "relations");
    json_object *user_fns = get(relation(doc, "users"), "functions");
    json_object *create = get(user_fns, "create");
    json_object *params = get(create, "params");
    json_object *many = get(get(relation(doc, "instances"), "functions"),
                            "insert_many");
    json_object *ids = json_object_array_get_idx(get(many, "params"), 4);
    char name[128];

    for (size_t i = 0; i < json_object_array_length(rels); i++) {
        json_object *r = json_object_array_get_idx(rels, i);
        bool table = strcmp(get_str(r, "kind"), "table") == 0;
        const char *const *ops = table ? table_ops : read_ops;
        size_t n = table ? NELEMS(table_ops) : NELEMS(read_ops);

        for (size_t j = 0; j < n; j++) {
            json_object *f = get(get(r, "functions"), ops[j]);

            snprintf(name, sizeof name, "spotdb_%s_%s",
                     get_str(r, "entity"), ops[j]);
            ck_assert_str_eq(get_str(f, "name"), name);
        }
    }
    ck_assert_str_eq(get_str(create, "prototype"),
                     "int spotdb_user_create(spotdb_user **out, "
                     "spotdb_db *db, const spotdb_user *in, uint64_t fields, "
                     "const char *password)");
    ck_assert_uint_eq(json_object_array_length(params), 5);
    ck_assert_str_eq(get_str(json_object_array_get_idx(params, 2), "c_type"),
                     "const spotdb_user *");
    ck_assert_str_eq(get_str(json_object_array_get_idx(params, 2), "name"),
                     "in");
    ck_assert_str_eq(get_str(ids, "name"), "ids");
    ck_assert_str_eq(get_str(ids, "c_type"), "char (*)[37]");
    ck_assert_str_eq(get_str(get(user_fns, "get_by_email"), "name"),
                     "spotdb_user_get_by_email");
    ck_assert_str_eq(get_str(get(user_fns, "authenticate"), "name"),
                     "spotdb_user_authenticate");
    ck_assert_str_eq(get_str(find(get(doc, "functions"), "name",
                                  "spotdb_version"), "prototype"),
                     "const char *spotdb_version(void)");
    ck_assert_uint_eq(json_object_array_length(get(find(get(doc, "functions"),
                          "name", "spotdb_version"), "params")), 0);
    json_object_put(doc);
}
END_TEST

static Suite *describe_suite(void)
{
    Suite *s = suite_create("describe");
    TCase *tc = tcase_create("document");

    tcase_add_test(tc, document_is_strict_json);
    tcase_add_test(tc, document_is_built_once);
    tcase_add_test(tc, first_calls_race_to_one_document);
    suite_add_tcase(s, tc);

    tc = tcase_create("layout");
    tcase_add_test(tc, tables_match_structs);
    tcase_add_test(tc, views_and_report_match_structs);
    tcase_add_test(tc, columns_carry_rules);
    tcase_add_test(tc, filters_match_structs);
    tcase_add_test(tc, every_column_filter_is_described);
    tcase_add_test(tc, structs_match);
    suite_add_tcase(s, tc);

    tc = tcase_create("api");
    tcase_add_test(tc, errors_are_complete);
    tcase_add_test(tc, functions_are_described);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return th_run(describe_suite());
}
