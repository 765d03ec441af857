/*
 * The two views of schema v1, read through the same descriptions as the
 * tables.  Their quirks (the model join by version string, the 1000-row
 * window) belong to the views and are kept: see spotdb/views.h.
 */
#include <stdlib.h>

#include "table.h"

#define NN SPOTDB__NOT_NULL

#define A(field, type, flags, allowed) \
    SPOTDB__COL(spotdb_active_instance, field, type, flags, 0, 0, allowed, \
                NULL, NULL)

enum { AI_ENVIRONMENT_TYPE = 10 };

static const spotdb__column active_columns[] = {
    A(id, SPOTDB__UUID, NN, NULL),
    A(instance_id, SPOTDB__TEXT, NN, NULL),
    A(instance_type, SPOTDB__TEXT, NN, NULL),
    A(availability_zone, SPOTDB__TEXT, NN, NULL),
    A(pipeline_mode, SPOTDB__TEXT, NN, NULL),
    A(is_shadow_mode, SPOTDB__BOOL, 0, NULL),
    A(assigned_model_version, SPOTDB__TEXT, 0, NULL),
    A(last_evaluation, SPOTDB__TIMESTAMP, 0, NULL),
    A(aws_account_id, SPOTDB__TEXT, NN, NULL),
    A(account_name, SPOTDB__TEXT, NN, NULL),
    A(environment_type, SPOTDB__TEXT, NN, spotdb__environment_types),
    A(region, SPOTDB__TEXT, NN, NULL),
    A(user_email, SPOTDB__TEXT, NN, NULL),
    A(username, SPOTDB__TEXT, NN, NULL),
    A(model_name, SPOTDB__TEXT, 0, NULL),
    A(model_version, SPOTDB__TEXT, 0, NULL),
};

static const spotdb__filter active_filters[] = {
    { AI_ENVIRONMENT_TYPE, "=",
      offsetof(spotdb_active_instance_filter, environment_type) },
};

SPOTDB__TABLE(active_instance, "v_active_instances", active_columns,
              active_filters, SPOTDB__NELEMS(active_filters),
              SPOTDB_ACTIVE_INSTANCE_FILTER_VERSION, 0, false, NULL);

#define R(field, type, flags, allowed) \
    SPOTDB__COL(spotdb_recent_experiment, field, type, flags, 0, 0, \
                allowed, NULL, NULL)

enum { RE_DECISION = 2, RE_IS_SHADOW_RUN = 4 };

static const spotdb__column recent_columns[] = {
    R(id, SPOTDB__UUID, NN, NULL),
    R(execution_time, SPOTDB__TIMESTAMP, NN, NULL),
    R(decision, SPOTDB__TEXT, 0, spotdb__decisions),
    R(prediction_score, SPOTDB__FLOAT64, 0, NULL),
    R(is_shadow_run, SPOTDB__BOOL, 0, NULL),
    R(execution_duration_ms, SPOTDB__INT32, 0, NULL),
    R(instance_id, SPOTDB__TEXT, NN, NULL),
    R(instance_type, SPOTDB__TEXT, NN, NULL),
    R(pipeline_mode, SPOTDB__TEXT, NN, NULL),
    R(aws_account_id, SPOTDB__TEXT, NN, NULL),
    R(account_name, SPOTDB__TEXT, NN, NULL),
    R(model_name, SPOTDB__TEXT, 0, NULL),
    R(model_version, SPOTDB__TEXT, 0, NULL),
    R(selected_instance_type, SPOTDB__TEXT, 0, NULL),
    R(projected_hourly_savings, SPOTDB__FLOAT64, 0, NULL),
};

static const spotdb__filter recent_filters[] = {
    { RE_DECISION, "=", offsetof(spotdb_recent_experiment_filter, decision) },
    { RE_IS_SHADOW_RUN, "=",
      offsetof(spotdb_recent_experiment_filter, is_shadow_run) },
};

SPOTDB__TABLE(recent_experiment, "v_recent_experiments", recent_columns,
              recent_filters, SPOTDB__NELEMS(recent_filters),
              SPOTDB_RECENT_EXPERIMENT_FILTER_VERSION, 0, false, NULL);

SPOTDB__ROWS_FUNCTIONS(active_instance)
SPOTDB__ROWS_FUNCTIONS(recent_experiment)

/* "Newest evaluation first" as the documentation's query means it:
 * instances never evaluated go last rather than first (DESC alone would
 * put NULLs first); id breaks ties so the order is stable. */
#define ACTIVE_ORDER "last_evaluation DESC NULLS LAST, id, model_name"
#define RECENT_ORDER "execution_time DESC, id DESC"

int spotdb_active_instance_list(spotdb_active_instance_rows **out,
                                spotdb_db *db,
                                const spotdb_active_instance_filter *filter,
                                int32_t limit)
{
    return spotdb__view((spotdb__rows **)out, db,
                        &spotdb__active_instance_table, filter, ACTIVE_ORDER,
                        limit, NULL, NULL);
}

SPOTDB__STREAM_TRAMPOLINE(active_instance)

int spotdb_active_instance_stream(spotdb_db *db,
                                  const spotdb_active_instance_filter *filter,
                                  int32_t limit, spotdb_active_instance_cb cb,
                                  void *payload)
{
    struct active_instance_stream s = { cb, payload };

    return spotdb__view(NULL, db, &spotdb__active_instance_table, filter,
                        ACTIVE_ORDER, limit, cb ? active_instance_each : NULL,
                        &s);
}

int spotdb_recent_experiment_list(
    spotdb_recent_experiment_rows **out, spotdb_db *db,
    const spotdb_recent_experiment_filter *filter, int32_t limit)
{
    return spotdb__view((spotdb__rows **)out, db,
                        &spotdb__recent_experiment_table, filter,
                        RECENT_ORDER, limit, NULL, NULL);
}

SPOTDB__STREAM_TRAMPOLINE(recent_experiment)

int spotdb_recent_experiment_stream(
    spotdb_db *db, const spotdb_recent_experiment_filter *filter,
    int32_t limit, spotdb_recent_experiment_cb cb, void *payload)
{
    struct recent_experiment_stream s = { cb, payload };

    return spotdb__view(NULL, db, &spotdb__recent_experiment_table, filter,
                        RECENT_ORDER, limit,
                        cb ? recent_experiment_each : NULL, &s);
}
