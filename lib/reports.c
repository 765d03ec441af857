/*
 * The model-performance comparison of the schema's documentation, as
 * typed rows decoded by the same machinery as the tables.
 */
#include <stdlib.h>
#include <string.h>

#include "table.h"

#define P(field, type, flags) \
    SPOTDB__COL(spotdb_model_performance, field, type, flags, 0, 0, NULL, \
                NULL, NULL)

static const spotdb__column columns[] = {
    P(model_name, SPOTDB__TEXT, SPOTDB__NOT_NULL),
    P(model_version, SPOTDB__TEXT, SPOTDB__NOT_NULL),
    P(runs, SPOTDB__INT64, SPOTDB__NOT_NULL),
    P(avg_prediction_score, SPOTDB__FLOAT64, 0),
    P(switch_count, SPOTDB__INT64, SPOTDB__NOT_NULL),
    P(avg_projected_savings, SPOTDB__FLOAT64, 0),
};

SPOTDB__TABLE(model_performance, "the model-performance report", columns,
              NULL, 0, SPOTDB_MODEL_PERFORMANCE_FILTER_VERSION, 0, false,
              NULL);

SPOTDB__ROWS_FUNCTIONS(model_performance)

/* LOCALTIMESTAMP, not now(): the columns are timestamps without time
 * zone holding UTC, and the session is in UTC. */
static const char report_sql[] =
    "SELECT m.name, m.version, count(*),"
    " avg(e.prediction_score),"
    " count(*) FILTER (WHERE e.decision = 'SWITCH'),"
    " avg(e.projected_hourly_savings)"
    " FROM experiment_logs e JOIN model_registry m ON m.id = e.model_id"
    " WHERE e.execution_time >= coalesce($1, LOCALTIMESTAMP - interval '7 days')"
    " AND ($2::timestamp IS NULL OR e.execution_time < $2)"
    " GROUP BY m.name, m.version"
    " ORDER BY 6 DESC NULLS LAST, 1, 2";

/* The window's two bounds, NULL when absent, as parameters. */
static int bind_window(spotdb_db *db,
                       const spotdb_model_performance_filter *filter,
                       spotdb__params *p)
{
    static const spotdb__column bound = { "bound", SPOTDB__TIMESTAMP, 0, 0,
                                          0, 0, NULL, NULL, NULL };
    const int64_t *bounds[2] = { NULL, NULL };
    unsigned char check[8];

    if (filter && (filter->version == 0 ||
                   filter->version > SPOTDB_MODEL_PERFORMANCE_FILTER_VERSION))
        return spotdb__fail(db, SPOTDB_EINVAL, "model_performance filter: "
                            "version is %u, expected 1", filter->version);
    if (filter) {
        bounds[0] = filter->since;
        bounds[1] = filter->until;
    }
    for (int i = 0; i < 2; i++) {
        if (bounds[i] && !spotdb__encode_timestamp(check, *bounds[i]))
            return spotdb__fail(db, SPOTDB_EINVAL, "model_performance.%s: "
                                "is out of range", i ? "until" : "since");
        spotdb__bind(p, &bound, bounds[i]);
    }
    return 0;
}

static int report(spotdb_model_performance_rows **out, spotdb_db *db,
                  const spotdb_model_performance_filter *filter,
                  spotdb__row_fn fn, void *ctx)
{
    spotdb__params p = { .n = 0 };
    int rc;

    if ((rc = spotdb__begin_read((spotdb__rows **)out, db,
                                 &spotdb__model_performance_table, fn)) != 0 ||
        (rc = bind_window(db, filter, &p)) != 0)
        return rc;
    return spotdb__query((spotdb__rows **)out, db,
                         &spotdb__model_performance_table, report_sql, &p, fn,
                         ctx);
}

int spotdb_model_performance_list(
    spotdb_model_performance_rows **out, spotdb_db *db,
    const spotdb_model_performance_filter *filter)
{
    return report(out, db, filter, NULL, NULL);
}

SPOTDB__STREAM_TRAMPOLINE(model_performance)

int spotdb_model_performance_stream(
    spotdb_db *db, const spotdb_model_performance_filter *filter,
    spotdb_model_performance_cb cb, void *payload)
{
    struct model_performance_stream s = { cb, payload };

    return report(NULL, db, filter, cb ? model_performance_each : NULL, &s);
}
