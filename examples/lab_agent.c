/*
 * lab_agent: what a Lab Mode optimizer agent does with libspotdb.
 *
 * It registers a user, an AWS account, a model and an instance (all unique
 * per run, so it can run any number of times against one database), logs
 * a few hundred optimizer decisions in one transaction, marks the instance
 * as evaluated, and prints the two views and the model-performance report.
 *
 *   lab_agent [CONNINFO]      settings from CONNINFO, else the environment
 *                             (DATABASE_URL, POSTGRES_*, PG*: spotdb/db.h)
 *
 * The database must be migrated first (`spotdb migrate`): spotdb_open()
 * refuses a schema older than the library with SPOTDB_ESCHEMA.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <spotdb/spotdb.h>

#define N_DECISIONS 300
#define US_PER_SEC INT64_C(1000000)
/* Decisions are spread over the last three days: inside the report's
 * default seven-day window. */
#define SPREAD_US (3 * 24 * 3600 * US_PER_SEC)

/*
 * The error-handling pattern: every call returns 0 or a negative SPOTDB_E*
 * code, and the handle holds the detail of its last failure (with db NULL,
 * spotdb_errmsg() gives spotdb_last_errmsg(), which covers spotdb_open()).
 * The message is printed BEFORE anything else is called on the handle,
 * because every call clears it.  Rolling back is a no-op outside a
 * transaction, so it is safe on every error path.
 */
static void check(int rc, spotdb_db *db, const char *what)
{
    if (rc == 0)
        return;
    fprintf(stderr, "lab_agent: %s: %s: %s\n", what, spotdb_strerror(rc),
            spotdb_errmsg(db));
    if (db != NULL) {
        spotdb_rollback(db);
        spotdb_close(db);
    }
    exit(EXIT_FAILURE);
}

/* splitmix64: small, good enough, and deterministic for a given seed, so
 * the logged decisions are the same on every run. */
static uint64_t next_u64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Uniform in [0, 1): the top 53 bits as a double. */
static double next_unit(uint64_t *state)
{
    return (double)(next_u64(state) >> 11) / 9007199254740992.0;
}

/* "YYYY-MM-DD HH:MM:SS" in UTC; "-" for NULL.  Floor division, so that a
 * timestamp before 1970 still lands on the right second. */
static const char *fmt_time(char *buf, size_t size, int64_t us, bool null)
{
    int64_t secs = us / US_PER_SEC - (us % US_PER_SEC < 0 ? 1 : 0);
    time_t t = (time_t)secs;
    struct tm tm;

    if (null)
        return "-";
    if (us == INT64_MAX || us == INT64_MIN)
        return us > 0 ? "infinity" : "-infinity";
    if (gmtime_r(&t, &tm) == NULL ||
        strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        return "?";
    return buf;
}

/* Text columns may be SQL NULL, which the library returns as NULL. */
static const char *str(const char *s)
{
    return s != NULL ? s : "-";
}

/* A NULL double reads as 0.0: only the row's nulls bit tells them apart. */
static const char *num(char *buf, size_t size, double v, int digits,
                       bool null)
{
    if (null)
        return "-";
    snprintf(buf, size, "%.*f", digits, v);
    return buf;
}

static void print_active_instances(spotdb_db *db)
{
    spotdb_active_instance_filter f = SPOTDB_ACTIVE_INSTANCE_FILTER_INIT;
    spotdb_active_instance_rows *rows = NULL;
    char when[32];

    f.environment_type = "LAB";
    check(spotdb_active_instance_list(&rows, db, &f, 10), db,
          "list active instances");

    printf("\nActive LAB instances, newest evaluation first (top 10)\n");
    printf("%-19s  %-10s  %-11s  %-7s  %-21s  %-13s  %s\n", "INSTANCE",
           "TYPE", "ZONE", "MODE", "MODEL", "VERSION", "LAST EVALUATION");
    for (size_t i = 0; i < rows->count; i++) {
        const spotdb_active_instance *r = &rows->items[i];
        printf("%-19s  %-10s  %-11s  %-7s  %-21.21s  %-13.13s  %s\n",
               r->instance_id, r->instance_type, r->availability_zone,
               r->pipeline_mode, str(r->model_name),
               str(r->assigned_model_version),
               fmt_time(when, sizeof when, r->last_evaluation,
                        r->nulls & SPOTDB_ACTIVE_INSTANCE_LAST_EVALUATION));
    }
    spotdb_active_instance_rows_free(rows);
}

static void print_recent_switches(spotdb_db *db)
{
    spotdb_recent_experiment_filter f = SPOTDB_RECENT_EXPERIMENT_FILTER_INIT;
    spotdb_recent_experiment_rows *rows = NULL;
    const bool real = false; /* filters take pointers: NULL = no filter */
    char when[32];

    f.decision = "SWITCH";
    f.is_shadow_run = &real;
    check(spotdb_recent_experiment_list(&rows, db, &f, 10), db,
          "list recent switches");

    printf("\nTen most recent real switches (UTC)\n");
    printf("%-19s  %-19s  %-10s  %-10s  %5s  %9s  %s\n", "EXECUTED",
           "INSTANCE", "FROM", "TO", "SCORE", "SAVED $/h", "MODEL VERSION");
    for (size_t i = 0; i < rows->count; i++) {
        const spotdb_recent_experiment *r = &rows->items[i];
        char score[32], saved[32];

        printf("%-19s  %-19s  %-10s  %-10s  %5s  %9s  %.13s\n",
               fmt_time(when, sizeof when, r->execution_time, false),
               r->instance_id, r->instance_type,
               str(r->selected_instance_type),
               num(score, sizeof score, r->prediction_score, 3,
                   r->nulls & SPOTDB_RECENT_EXPERIMENT_PREDICTION_SCORE),
               num(saved, sizeof saved, r->projected_hourly_savings, 4,
                   r->nulls &
                       SPOTDB_RECENT_EXPERIMENT_PROJECTED_HOURLY_SAVINGS),
               str(r->model_version));
    }
    spotdb_recent_experiment_rows_free(rows);
}

static void print_model_performance(spotdb_db *db)
{
    spotdb_model_performance_rows *rows = NULL;

    /* NULL filter: the default window, the last seven days. */
    check(spotdb_model_performance_list(&rows, db, NULL), db,
          "model performance report");

    printf("\nModel performance, last 7 days\n");
    printf("%-21s  %-13s  %6s  %9s  %8s  %11s\n", "MODEL", "VERSION", "RUNS",
           "AVG SCORE", "SWITCHES", "AVG SAV $/h");
    for (size_t i = 0; i < rows->count; i++) {
        const spotdb_model_performance *r = &rows->items[i];
        char score[32], saved[32];

        printf("%-21.21s  %-13.13s  %6" PRId64 "  %9s  %8" PRId64 "  %11s\n",
               str(r->model_name), str(r->model_version), r->runs,
               num(score, sizeof score, r->avg_prediction_score, 3,
                   r->nulls & SPOTDB_MODEL_PERFORMANCE_AVG_PREDICTION_SCORE),
               r->switch_count,
               num(saved, sizeof saved, r->avg_projected_savings, 4,
                   r->nulls & SPOTDB_MODEL_PERFORMANCE_AVG_PROJECTED_SAVINGS));
    }
    spotdb_model_performance_rows_free(rows);
}

/*
 * One optimizer decision.  The decision follows the crash probability:
 * high scores move the workload to a calmer spot pool (or, when no pool
 * is calm enough, to on-demand); low scores stay put.
 */
static void log_decision(spotdb_db *db, const char *instance_uuid,
                         const char *model_uuid, int64_t when,
                         uint64_t *rng, int counts[2])
{
    static const char *const types[] = { "c5.large", "c5a.large",
                                         "c6i.large", "m5.large",
                                         "m6i.large" };
    static const char *const zones[] = { "ap-south-1a", "ap-south-1b",
                                         "ap-south-1c" };
    spotdb_experiment_log in;
    spotdb_experiment_log *stored = NULL;
    uint64_t fields;
    char reason[128], features[256];
    double score = next_unit(rng);
    double old_price = 0.030 + 0.060 * next_unit(rng);
    double volatility = next_unit(rng);

    /* Zero the struct, then name every column written in `fields`; the
     * ones left out take the server's default. */
    memset(&in, 0, sizeof in);
    memcpy(in.instance_id, instance_uuid, SPOTDB_UUID_SIZE);
    memcpy(in.model_id, model_uuid, SPOTDB_UUID_SIZE);
    in.pipeline_mode = "CLUSTER";
    in.is_shadow_run = next_unit(rng) < 0.2;
    in.prediction_score = score;
    in.execution_time = when;
    in.execution_duration_ms = 150 + (int32_t)(next_u64(rng) % 1800);
    in.candidates_evaluated = 3 + (int32_t)(next_u64(rng) % 10);
    in.old_spot_price = old_price;
    snprintf(features, sizeof features,
             "{\"price_volatility_1h\": %.4f, \"interruption_rate\": %.4f,"
             " \"family\": \"c5\", \"pools\": %" PRId32 "}",
             volatility, score * 0.2, in.candidates_evaluated);
    in.features_used = features;
    fields = SPOTDB_EXPERIMENT_LOG_INSTANCE_ID |
             SPOTDB_EXPERIMENT_LOG_MODEL_ID |
             SPOTDB_EXPERIMENT_LOG_PIPELINE_MODE |
             SPOTDB_EXPERIMENT_LOG_DECISION |
             SPOTDB_EXPERIMENT_LOG_IS_SHADOW_RUN |
             SPOTDB_EXPERIMENT_LOG_DECISION_REASON |
             SPOTDB_EXPERIMENT_LOG_PREDICTION_SCORE |
             SPOTDB_EXPERIMENT_LOG_EXECUTION_TIME |
             SPOTDB_EXPERIMENT_LOG_EXECUTION_DURATION_MS |
             SPOTDB_EXPERIMENT_LOG_CANDIDATES_EVALUATED |
             SPOTDB_EXPERIMENT_LOG_OLD_SPOT_PRICE |
             SPOTDB_EXPERIMENT_LOG_NEW_SPOT_PRICE |
             SPOTDB_EXPERIMENT_LOG_PROJECTED_HOURLY_SAVINGS |
             SPOTDB_EXPERIMENT_LOG_FEATURES_USED;

    if (score >= 0.92) {
        in.decision = "FALLBACK_ONDEMAND";
        in.new_spot_price = 0.096; /* the on-demand price costs extra */
        snprintf(reason, sizeof reason,
                 "crash risk %.2f, no spot pool below threshold", score);
    } else if (score >= 0.65) {
        in.decision = "SWITCH";
        in.selected_instance_type = types[next_u64(rng) % 5];
        in.selected_availability_zone = zones[next_u64(rng) % 3];
        in.new_spot_price = old_price * (0.55 + 0.35 * next_unit(rng));
        fields |= SPOTDB_EXPERIMENT_LOG_SELECTED_INSTANCE_TYPE |
                  SPOTDB_EXPERIMENT_LOG_SELECTED_AVAILABILITY_ZONE;
        snprintf(reason, sizeof reason,
                 "crash risk %.2f, calmer pool %s/%s", score,
                 in.selected_instance_type, in.selected_availability_zone);
        counts[in.is_shadow_run ? 1 : 0]++; /* real, shadow */
    } else {
        in.decision = "STAY";
        in.new_spot_price = old_price;
        snprintf(reason, sizeof reason, "crash risk %.2f is acceptable",
                 score);
    }
    in.decision_reason = reason;
    in.projected_hourly_savings = old_price - in.new_spot_price;

    check(spotdb_experiment_log_create(&stored, db, &in, fields), db,
          "log decision");
    spotdb_experiment_log_free(stored);
}

int main(int argc, char **argv)
{
    spotdb_open_options opts = SPOTDB_OPEN_OPTIONS_INIT;
    spotdb_db *db = NULL;
    spotdb_user u, *user = NULL;
    spotdb_account a, *account = NULL;
    spotdb_model m, *model = NULL;
    spotdb_instance in, *inst = NULL, bump;
    char username[64], email[96], aws_number[16], arn[64], ext_id[48];
    char version[24], ec2_id[24];
    uint64_t run, hi, lo, rng = UINT64_C(20240601); /* fixed seed */
    int64_t now;
    int switches[2] = { 0, 0 }; /* real, shadow */

    /* Names unique per run: the username from pid and clock, the other
     * keys from a hash of them, so that runs close in time differ in every
     * digit (the decisions, on the other hand, repeat from run to run). */
    now = spotdb_now_us();
    run = (uint64_t)now ^ ((uint64_t)getpid() << 32);
    run = next_u64(&run);

    opts.application_name = "lab_agent";
    check(spotdb_open(&db, argc > 1 ? argv[1] : NULL, &opts), NULL,
          "connect");

    /* 1. The owner.  The password is hashed (bcrypt) inside the library
     *    and never stored or sent in clear. */
    snprintf(username, sizeof username, "lab-%ld-%lld", (long)getpid(),
             (long long)time(NULL));
    snprintf(email, sizeof email, "%s@lab.spotoptimizer.local", username);
    memset(&u, 0, sizeof u);
    u.email = email;
    u.username = username;
    u.full_name = "Lab Agent";
    u.role = "lab";
    check(spotdb_user_create(&user, db, &u,
                             SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME |
                                 SPOTDB_USER_FULL_NAME | SPOTDB_USER_ROLE,
                             "correct horse battery staple"),
          db, "create user");
    printf("user      %-40s id %s\n", user->username, user->id);

    /* 2. The AWS account, found by username: the documented workflow. */
    snprintf(aws_number, sizeof aws_number, "%012" PRIu64,
             run % UINT64_C(1000000000000));
    snprintf(arn, sizeof arn, "arn:aws:iam::%s:role/SpotOptimizerLab",
             aws_number);
    snprintf(ext_id, sizeof ext_id, "spotopt-lab-%016" PRIx64, run);
    memset(&a, 0, sizeof a);
    a.account_id = aws_number;
    a.account_name = "Spot Optimizer Lab";
    a.environment_type = "LAB";
    a.role_arn = arn;
    a.external_id = ext_id;
    a.region = "ap-south-1";
    check(spotdb_account_create_for_username(
              &account, db, username, &a,
              SPOTDB_ACCOUNT_ACCOUNT_ID | SPOTDB_ACCOUNT_ACCOUNT_NAME |
                  SPOTDB_ACCOUNT_ENVIRONMENT_TYPE | SPOTDB_ACCOUNT_ROLE_ARN |
                  SPOTDB_ACCOUNT_EXTERNAL_ID | SPOTDB_ACCOUNT_REGION),
          db, "create account");
    printf("account   %-40s id %s\n", account->account_id, account->id);

    /* 3. The model version under test.  created_by is a UUID field: copy
     *    the whole array, NUL included. */
    snprintf(version, sizeof version, "v2.1-%08" PRIx32,
             (uint32_t)(run >> 32));
    memset(&m, 0, sizeof m);
    m.name = "FamilyStressPredictor";
    m.version = version;
    m.description = "stress predictor over instance-family price signals";
    m.is_experimental = true;
    m.feature_version = "v2.0";
    memcpy(m.created_by, user->id, SPOTDB_UUID_SIZE);
    check(spotdb_model_create(&model, db, &m,
                              SPOTDB_MODEL_NAME | SPOTDB_MODEL_VERSION |
                                  SPOTDB_MODEL_DESCRIPTION |
                                  SPOTDB_MODEL_IS_EXPERIMENTAL |
                                  SPOTDB_MODEL_FEATURE_VERSION |
                                  SPOTDB_MODEL_CREATED_BY),
          db, "create model");
    printf("model     %-40s id %s\n", version, model->id);

    /* 4. The instance, registered by the account's AWS number.  An EC2
     *    id is "i-" and 17 lower-case hex digits: 4 bits, then 64. */
    hi = next_u64(&run) & 0xf;
    lo = next_u64(&run);
    snprintf(ec2_id, sizeof ec2_id, "i-%01" PRIx64 "%016" PRIx64, hi, lo);
    memset(&in, 0, sizeof in);
    in.instance_id = ec2_id;
    in.instance_type = "c5.large";
    in.availability_zone = "ap-south-1a";
    in.assigned_model_version = version; /* the views join on this */
    in.pipeline_mode = "CLUSTER";
    in.metadata = "{\"team\": \"lab\", \"owner\": \"lab_agent\"}";
    check(spotdb_instance_create_for_aws_account(
              &inst, db, aws_number, &in,
              SPOTDB_INSTANCE_INSTANCE_ID | SPOTDB_INSTANCE_INSTANCE_TYPE |
                  SPOTDB_INSTANCE_AVAILABILITY_ZONE |
                  SPOTDB_INSTANCE_ASSIGNED_MODEL_VERSION |
                  SPOTDB_INSTANCE_PIPELINE_MODE | SPOTDB_INSTANCE_METADATA),
          db, "create instance");
    printf("instance  %-40s id %s\n", inst->instance_id, inst->id);

    /* 5. The decisions, all or nothing: one transaction instead of 300
     *    commits.  On a failure check() prints the detail and rolls back,
     *    so no half-written batch is left behind. */
    check(spotdb_begin(db), db, "begin");
    for (int i = 0; i < N_DECISIONS; i++) {
        /* Oldest first, evenly over SPREAD_US, up to a minute ago. */
        int64_t when = now - 60 * US_PER_SEC -
                       SPREAD_US / N_DECISIONS * (N_DECISIONS - 1 - i);
        log_decision(db, inst->id, model->id, when, &rng, switches);
    }
    check(spotdb_commit(db), db, "commit");
    printf("logged    %d decisions: %d SWITCH, %d real and %d shadow\n",
           N_DECISIONS, switches[0] + switches[1], switches[0], switches[1]);

    /* 6. A partial update: only last_evaluation is written; every other
     *    column keeps its value.  The stored row is not needed: NULL. */
    memset(&bump, 0, sizeof bump);
    bump.last_evaluation = spotdb_now_us();
    check(spotdb_instance_update(NULL, db, inst->id, &bump,
                                 SPOTDB_INSTANCE_LAST_EVALUATION),
          db, "update last_evaluation");

    /* 7. What the dashboard shows. */
    print_active_instances(db);
    print_recent_switches(db);
    print_model_performance(db);

    spotdb_instance_free(inst);
    spotdb_model_free(model);
    spotdb_account_free(account);
    spotdb_user_free(user);
    spotdb_close(db);
    return EXIT_SUCCESS;
}
