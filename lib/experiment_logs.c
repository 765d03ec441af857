/*
 * experiment_logs: the description of the table.  Schema v1 has no CHECK
 * on decision or pipeline_mode here; the library holds them to the
 * documented values anyway, so that the reports count what they mean.
 */
#include <stdlib.h>

#include "table.h"

#define C(field, type, flags, maxc, allowed, trule, nrule) \
    SPOTDB__COL(spotdb_experiment_log, field, type, flags, 0, maxc, \
                allowed, trule, nrule)
#define NN SPOTDB__NOT_NULL
#define REQ (SPOTDB__NOT_NULL | SPOTDB__REQUIRED)

enum { ID, INSTANCE_ID, MODEL_ID, PIPELINE_MODE, IS_SHADOW_RUN,
       PREDICTION_SCORE, DECISION, DECISION_REASON, EXECUTION_TIME };

static const spotdb__column columns[] = {
    C(id, SPOTDB__UUID, NN | SPOTDB__KEY, 0, NULL, NULL, NULL),
    C(instance_id, SPOTDB__UUID, REQ, 0, NULL, NULL, NULL),
    C(model_id, SPOTDB__UUID, 0, 0, NULL, NULL, NULL),
    C(pipeline_mode, SPOTDB__TEXT, 0, 20, spotdb__pipeline_modes, NULL,
      NULL),
    C(is_shadow_run, SPOTDB__BOOL, 0, 0, NULL, NULL, NULL),
    C(prediction_score, SPOTDB__FLOAT64, 0, 0, NULL, NULL,
      spotdb__rule_probability),
    C(decision, SPOTDB__TEXT, 0, 50, spotdb__decisions, NULL, NULL),
    C(decision_reason, SPOTDB__TEXT, 0, 0, NULL, NULL, NULL),
    C(execution_time, SPOTDB__TIMESTAMP, NN, 0, NULL, NULL, NULL),
    C(execution_duration_ms, SPOTDB__INT32, 0, 0, NULL, NULL, NULL),
    C(candidates_evaluated, SPOTDB__INT32, 0, 0, NULL, NULL, NULL),
    C(selected_instance_type, SPOTDB__TEXT, 0, 20, NULL, NULL, NULL),
    C(selected_availability_zone, SPOTDB__TEXT, 0, 20, NULL, NULL, NULL),
    C(old_spot_price, SPOTDB__FLOAT64, 0, 0, NULL, NULL,
      spotdb__rule_finite),
    C(new_spot_price, SPOTDB__FLOAT64, 0, 0, NULL, NULL,
      spotdb__rule_finite),
    C(projected_hourly_savings, SPOTDB__FLOAT64, 0, 0, NULL, NULL,
      spotdb__rule_finite),
    C(features_used, SPOTDB__JSON, 0, 0, NULL, spotdb__rule_json, NULL),
    C(error_message, SPOTDB__TEXT, 0, 0, NULL, NULL, NULL),
};

static const spotdb__filter filters[] = {
    { INSTANCE_ID, "=", offsetof(spotdb_experiment_log_filter, instance_id) },
    { MODEL_ID, "=", offsetof(spotdb_experiment_log_filter, model_id) },
    { DECISION, "=", offsetof(spotdb_experiment_log_filter, decision) },
    { IS_SHADOW_RUN, "=", offsetof(spotdb_experiment_log_filter,
                                   is_shadow_run) },
    { EXECUTION_TIME, ">=", offsetof(spotdb_experiment_log_filter,
                                     executed_from) },
    { EXECUTION_TIME, "<", offsetof(spotdb_experiment_log_filter,
                                    executed_before) },
};

/* Newest first: the order analysts read decisions in. */
SPOTDB__TABLE(experiment_log, "experiment_logs", columns, filters,
              SPOTDB__NELEMS(filters), SPOTDB_EXPERIMENT_LOG_FILTER_VERSION,
              EXECUTION_TIME, true, NULL);

SPOTDB__TABLE_FUNCTIONS(experiment_log, spotdb__experiment_log_table)
SPOTDB__CREATE_FUNCTION(experiment_log, spotdb__experiment_log_table)
SPOTDB__INSERT_MANY_FUNCTION(experiment_log, spotdb__experiment_log_table)
