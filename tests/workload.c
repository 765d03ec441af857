/*
 * The workload of the threaded stress tests (workload.h).
 */
#include "workload.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define RECENT 20

/* ---- outcome ------------------------------------------------------------- */

void wl_note_error(wl_worker *w, spotdb_db *db, const char *what, int rc)
{
    const char *msg = db ? spotdb_errmsg(db) : spotdb_last_errmsg();

    w->errors++;
    if (strstr(msg, "prepared statement"))
        w->prepared_errors++;
    if (!w->first[0])
        snprintf(w->first, sizeof w->first, "worker %d, %s: %s: %s",
                 w->index, what, spotdb_strerror(rc), msg);
}

void wl_mismatch(wl_worker *w, const char *what)
{
    w->mismatches++;
    if (!w->first_mismatch[0])
        snprintf(w->first_mismatch, sizeof w->first_mismatch, "%s", what);
    if (!w->first[0])
        snprintf(w->first, sizeof w->first, "worker %d: %s", w->index, what);
}

/* ---- set-up -------------------------------------------------------------- */

static void made(spotdb_db *db, int rc, const char *what)
{
    ck_assert_msg(rc == 0, "%s -> %d (%s): %s", what, rc,
                  spotdb_strerror(rc), spotdb_errmsg(db));
}

void wl_prepare(wl_worker *w, spotdb_db *db, int index, int capacity)
{
    spotdb_user u, *user = NULL;
    spotdb_account a, *acct = NULL;
    spotdb_model m, *model = NULL;
    spotdb_instance in, *inst = NULL;
    char name[32], email[64], aws[32], arn[64], version[24], ec2[24];

    memset(w, 0, sizeof *w);
    w->index = index;
    w->ops = capacity;
    w->ids = calloc((size_t)capacity + 1, SPOTDB_UUID_SIZE);
    ck_assert_ptr_nonnull(w->ids);
    snprintf(name, sizeof name, "worker%d", index);
    snprintf(email, sizeof email, "%s@example.com", name);
    snprintf(aws, sizeof aws, "4000000000%02d", index);
    snprintf(arn, sizeof arn, "arn:aws:iam::%s:role/spot", aws);
    snprintf(version, sizeof version, "v%d.0.0", index);
    snprintf(ec2, sizeof ec2, "i-%08x", 0xa0000000u + (unsigned)index);
    snprintf(w->model_name, sizeof w->model_name, "WorkerModel%d", index);

    memset(&u, 0, sizeof u);
    u.email = email;
    u.username = name;
    made(db, spotdb_user_create(&user, db, &u,
                                SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME,
                                "pw"), "user");
    memset(&a, 0, sizeof a);
    a.account_id = aws;
    a.account_name = name;
    a.role_arn = arn;
    a.external_id = "ext";
    made(db, spotdb_account_create_for_username(&acct, db, name, &a,
             SPOTDB_ACCOUNT_ACCOUNT_ID | SPOTDB_ACCOUNT_ACCOUNT_NAME |
             SPOTDB_ACCOUNT_ROLE_ARN | SPOTDB_ACCOUNT_EXTERNAL_ID),
         "account");
    memset(&m, 0, sizeof m);
    m.name = w->model_name;
    m.version = version;
    made(db, spotdb_model_create(&model, db, &m,
                                 SPOTDB_MODEL_NAME | SPOTDB_MODEL_VERSION),
         "model");
    memset(&in, 0, sizeof in);
    in.instance_id = ec2;
    in.instance_type = "c5.large";
    in.availability_zone = "ap-south-1a";
    in.assigned_model_version = version;
    made(db, spotdb_instance_create_for_aws_account(&inst, db, aws, &in,
             SPOTDB_INSTANCE_INSTANCE_ID | SPOTDB_INSTANCE_INSTANCE_TYPE |
             SPOTDB_INSTANCE_AVAILABILITY_ZONE |
             SPOTDB_INSTANCE_ASSIGNED_MODEL_VERSION), "instance");
    memcpy(w->instance, inst->id, SPOTDB_UUID_SIZE);
    memcpy(w->model, model->id, SPOTDB_UUID_SIZE);
    spotdb_instance_free(inst);
    spotdb_model_free(model);
    spotdb_account_free(acct);
    spotdb_user_free(user);
}

void wl_free(wl_worker *w, int n)
{
    for (int i = 0; i < n; i++) {
        free(w[i].ids);
        w[i].ids = NULL;
    }
}

/* ---- operations ---------------------------------------------------------- */

int wl_create_log(wl_worker *w, spotdb_db *db, int i)
{
    spotdb_experiment_log in, *e = NULL;
    int rc;

    memset(&in, 0, sizeof in);
    memcpy(in.instance_id, w->instance, SPOTDB_UUID_SIZE);
    memcpy(in.model_id, w->model, SPOTDB_UUID_SIZE);
    in.decision = i % 3 ? "STAY" : "SWITCH";
    in.prediction_score = (i % 100) / 100.0;
    in.execution_time = spotdb_now_us();
    in.projected_hourly_savings = 0.001 * (i % 7);
    rc = spotdb_experiment_log_create(&e, db, &in,
             SPOTDB_EXPERIMENT_LOG_INSTANCE_ID |
             SPOTDB_EXPERIMENT_LOG_MODEL_ID | SPOTDB_EXPERIMENT_LOG_DECISION |
             SPOTDB_EXPERIMENT_LOG_PREDICTION_SCORE |
             SPOTDB_EXPERIMENT_LOG_EXECUTION_TIME |
             SPOTDB_EXPERIMENT_LOG_PROJECTED_HOURLY_SAVINGS);
    if (rc == 0) {
        if (strcmp(e->instance_id, w->instance) != 0)
            wl_mismatch(w, "a created log names another instance");
        /* A log that never stands (rolled back) is overwritten by the
         * next one. */
        memcpy(w->ids[w->head + (size_t)w->logs], e->id, SPOTDB_UUID_SIZE);
    }
    spotdb_experiment_log_free(e);
    return rc;
}

void wl_op_create_log(wl_worker *w, spotdb_db *db, int i)
{
    WL_CALL("creating a log", wl_create_log(w, db, i));
    w->logs++;
out:
    return;
}

void wl_op_get_instance(wl_worker *w, spotdb_db *db)
{
    spotdb_instance *inst = NULL;

    WL_CALL("reading the instance",
            spotdb_instance_get(&inst, db, w->instance));
    if (strcmp(inst->id, w->instance) != 0 ||
        (w->last_eval == 0
             ? !(inst->nulls & SPOTDB_INSTANCE_LAST_EVALUATION)
             : inst->last_evaluation != w->last_eval))
        wl_mismatch(w, "the instance read back differs from the last write");
out:
    spotdb_instance_free(inst);
}

static int update_eval(wl_worker *w, spotdb_db *db, int64_t *eval)
{
    spotdb_instance ch;

    memset(&ch, 0, sizeof ch);
    ch.last_evaluation = *eval = spotdb_now_us();
    return spotdb_instance_update(NULL, db, w->instance, &ch,
                                  SPOTDB_INSTANCE_LAST_EVALUATION);
}

void wl_op_update_instance(wl_worker *w, spotdb_db *db)
{
    int64_t eval;

    WL_CALL("updating the instance", update_eval(w, db, &eval));
    w->last_eval = eval;
out:
    return;
}

void wl_op_list_logs(wl_worker *w, spotdb_db *db)
{
    spotdb_experiment_log_filter f = SPOTDB_EXPERIMENT_LOG_FILTER_INIT;
    spotdb_experiment_log_rows *r = NULL;
    int64_t want = w->logs < RECENT ? w->logs : RECENT;

    f.instance_id = w->instance;
    WL_CALL("listing logs",
            spotdb_experiment_log_list(&r, db, &f, NULL, RECENT));
    if ((int64_t)r->count != want)
        wl_mismatch(w, "a list of the thread's logs has the wrong length");
    for (size_t k = 0; k < r->count; k++)
        if (strcmp(r->items[k].instance_id, w->instance) != 0)
            wl_mismatch(w, "a list of the thread's logs holds another's");
out:
    spotdb_experiment_log_rows_free(r);
}

void wl_op_count_logs(wl_worker *w, spotdb_db *db)
{
    spotdb_experiment_log_filter f = SPOTDB_EXPERIMENT_LOG_FILTER_INIT;
    int64_t n = -1;

    f.instance_id = w->instance;
    WL_CALL("counting logs", spotdb_experiment_log_count(&n, db, &f));
    if (n != w->logs)
        wl_mismatch(w, "the count of the thread's logs is wrong");
out:
    return;
}

void wl_op_active_view(wl_worker *w, spotdb_db *db)
{
    spotdb_active_instance_rows *r = NULL;
    int seen = 0;

    WL_CALL("listing active instances",
            spotdb_active_instance_list(&r, db, NULL, 0));
    for (size_t k = 0; k < r->count; k++)
        if (strcmp(r->items[k].id, w->instance) == 0)
            seen += r->items[k].model_name &&
                    strcmp(r->items[k].model_name, w->model_name) == 0;
    if (seen != 1)
        wl_mismatch(w, "the thread's instance is not once in "
                       "v_active_instances");
out:
    spotdb_active_instance_rows_free(r);
}

void wl_op_recent_view(wl_worker *w, spotdb_db *db)
{
    spotdb_recent_experiment_rows *r = NULL;

    WL_CALL("listing recent experiments",
            spotdb_recent_experiment_list(&r, db, NULL, RECENT));
    if (r->count > RECENT)
        wl_mismatch(w, "v_recent_experiments returned more than the limit");
out:
    spotdb_recent_experiment_rows_free(r);
}

void wl_op_report(wl_worker *w, spotdb_db *db)
{
    spotdb_model_performance_rows *r = NULL;
    int64_t runs = 0;

    WL_CALL("reading the model report",
            spotdb_model_performance_list(&r, db, NULL));
    for (size_t k = 0; k < r->count; k++)
        if (strcmp(r->items[k].model_name, w->model_name) == 0)
            runs = r->items[k].runs;
    if (runs != w->logs)
        wl_mismatch(w, "the report counts another number of the thread's "
                       "runs");
out:
    spotdb_model_performance_rows_free(r);
}

/* Through a pooler, both run on the one server session the transaction
 * holds. */
void wl_op_transaction(wl_worker *w, spotdb_db *db, int i)
{
    int64_t eval;

    WL_CALL("begin", spotdb_begin(db));
    WL_CALL("creating a log in a transaction", wl_create_log(w, db, i));
    WL_CALL("updating in a transaction", update_eval(w, db, &eval));
    WL_CALL("commit", spotdb_commit(db));
    w->logs++;
    w->last_eval = eval;
    return;
out:
    spotdb_rollback(db);
}

void wl_op_delete_oldest_log(wl_worker *w, spotdb_db *db)
{
    if (w->logs == 0)
        return;
    WL_CALL("deleting a log",
            spotdb_experiment_log_delete(db, w->ids[w->head]));
    w->head++;
    w->logs--;
out:
    return;
}

/* ---- threads ------------------------------------------------------------- */

typedef struct wl_thread {
    pthread_t id;
    wl_worker *w;
    void (*body)(wl_worker *w);
    atomic_int *done;
} wl_thread;

static void *run_body(void *arg)
{
    wl_thread *t = arg;

    t->body(t->w);
    atomic_fetch_add(t->done, 1);
    return NULL;
}

double wl_run(wl_worker *w, int n, void (*body)(wl_worker *w),
              void (*sample)(void *payload), void *payload, double every_s)
{
    wl_thread *t = calloc((size_t)n, sizeof *t);
    atomic_int done;
    double t0;

    ck_assert_ptr_nonnull(t);
    atomic_init(&done, 0);
    t0 = th_now_s();
    for (int i = 0; i < n; i++) {
        t[i].w = &w[i];
        t[i].body = body;
        t[i].done = &done;
        ck_assert_int_eq(pthread_create(&t[i].id, NULL, run_body, &t[i]), 0);
    }
    while (atomic_load(&done) < n) {
        if (sample)
            sample(payload);
        th_sleep_s(every_s);
    }
    for (int i = 0; i < n; i++)
        pthread_join(t[i].id, NULL);
    t0 = th_now_s() - t0;
    free(t);
    return t0;
}

wl_totals wl_sum(const wl_worker *w, int n)
{
    wl_totals r = { 0 };

    for (int i = 0; i < n; i++) {
        r.errors += w[i].errors;
        r.prepared_errors += w[i].prepared_errors;
        r.mismatches += w[i].mismatches;
        r.ops += w[i].ops;
        if (!r.first[0] && w[i].first[0])
            snprintf(r.first, sizeof r.first, "%s", w[i].first);
        if (!r.first_mismatch[0] && w[i].first_mismatch[0])
            snprintf(r.first_mismatch, sizeof r.first_mismatch, "%s",
                     w[i].first_mismatch);
    }
    return r;
}

void wl_check_written(PGconn *direct, const wl_worker *w, int n)
{
    for (int i = 0; i < n; i++) {
        th_qeq(direct, NULL, "SELECT NULLIF(count(*), %lld) FROM "
               "experiment_logs WHERE instance_id = '%s'",
               (long long)w[i].logs, w[i].instance);
        th_qeq(direct, "t", "SELECT coalesce((extract(epoch FROM "
               "last_evaluation) * 1000000)::bigint, 0) = %lld FROM "
               "instances WHERE id = '%s'",
               (long long)w[i].last_eval, w[i].instance);
    }
}
