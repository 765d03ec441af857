/*
 * Tenant isolation under random load (migration 0003, spotdb/scope.h):
 * at least 100,000 operations over every table and both views, as random
 * acting users of the three roles (and inactive, unknown and no users),
 * each checked against an oracle kept in this test.
 *
 * The oracle holds every row with its owner chain (account -> user and
 * environment, instance -> account, log -> instance) and each user's role,
 * and says for every call what the acting user must get: the row, or
 * SPOTDB_ENOTFOUND for a row they may not see, or SPOTDB_EDENIED for a
 * write whose result they may not have.  Every row any call returns must
 * be one the actor may see (the invariant: cross-tenant rows seen, and
 * writes made where the oracle says none may be, both 0), lists, counts,
 * streams and views must return exactly the rows the oracle expects, and
 * successful writes update the oracle, so the data set evolves: accounts
 * move, users change role, instances and logs come and go.  Some
 * operations run inside transactions, with the acting user changed in the
 * middle, committed, rolled back, or doomed by a refused write.  At the
 * end (and every tenth of the run) the whole database, read by the
 * superuser past the policies, must equal the oracle.
 *
 * The seed is printed; SPOTDB_TEST_SEED replays a run (the same choices;
 * the server makes other ids), SPOTDB_TENANCY_OPS changes its length
 * (100,000; 10,000 under valgrind).  A mismatch is printed with the
 * events before it; the figures go to stderr.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

/* The login role of the scoped handles.  Roles belong to the cluster and
 * other suites run beside this one: a name of its own, created when
 * missing, never dropped. */
#define APP_ROLE "spotdb_tenancy_random_app"

#define OPS_PLAIN 100000L
#define OPS_VALGRIND 10000L
#define UUID_LEN (SPOTDB_UUID_SIZE - 1)
#define GHOSTS 64                /* ids of deleted rows kept per table */
#define MAX_REPORTED 30          /* mismatches printed in full */
#define MAX_MISMATCHES 200       /* then the run stops */

/* ---- random numbers ----------------------------------------------------- */

static uint64_t rng;

static uint64_t rnd64(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * UINT64_C(0x2545F4914F6CDD1D);
}

static uint32_t rn(uint32_t n)
{
    return n ? (uint32_t)(rnd64() % n) : 0;
}

static bool chance(unsigned pct)
{
    return rn(100) < pct;
}

static unsigned test_seed(void)
{
    const char *s = getenv("SPOTDB_TEST_SEED");
    unsigned seed = s && *s ? (unsigned)strtoul(s, NULL, 10)
                            : (unsigned)time(NULL) ^ (unsigned)getpid();
    uint64_t z = (uint64_t)seed + UINT64_C(0x9E3779B97F4A7C15);

    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    rng = (z ^ (z >> 31)) | 1;
    return seed;
}

/* A version 4 UUID no row has (the test never makes two alike). */
static void random_uuid(char *out)
{
    uint64_t a = rnd64(), b = rnd64();

    snprintf(out, SPOTDB_UUID_SIZE, "%08x-%04x-4%03x-%04x-%012llx",
             (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffffu,
             (unsigned)a & 0xfffu, 0x8000u | ((unsigned)(b >> 48) & 0x3fffu),
             (unsigned long long)(b & UINT64_C(0xffffffffffff)));
}

/* ---- the oracle's tables ------------------------------------------------ */

/* Every oracle row starts with this.  `mark` and `hits` count how often
 * the result being checked returned the row. */
typedef struct ohdr {
    char id[SPOTDB_UUID_SIZE];
    bool live;
    unsigned mark;
    unsigned hits;
} ohdr;

typedef struct otab {
    size_t size;                 /* of one row */
    char *rows;
    size_t n, cap, live;
    int32_t *slots;              /* 1 + index of a row; 0: free */
    size_t nslots;
    char ghosts[GHOSTS][SPOTDB_UUID_SIZE];
    size_t nghosts;
} otab;

enum { TU, TA, TI, TM, TL, NTABLES };
static const char *const table_name[NTABLES] = {
    "users", "accounts", "instances", "models", "experiment_logs"
};
static otab T[NTABLES];

#define ROW(t, i) ((ohdr *)((t)->rows + (size_t)(i) * (t)->size))

static size_t id_hash(const char *id)
{
    uint64_t h = UINT64_C(1469598103934665603);

    for (int k = 0; k < UUID_LEN && id[k]; k++)
        h = (h ^ (unsigned char)id[k]) * UINT64_C(1099511628211);
    return (size_t)h;
}

static void slot_put(otab *t, size_t index)
{
    size_t k = id_hash(ROW(t, index)->id) & (t->nslots - 1);

    while (t->slots[k])
        k = (k + 1) & (t->nslots - 1);
    t->slots[k] = (int32_t)index + 1;
}

static void slots_rebuild(otab *t, size_t nslots)
{
    free(t->slots);
    t->nslots = nslots;
    t->slots = calloc(nslots, sizeof *t->slots);
    ck_assert_ptr_nonnull(t->slots);
    for (size_t i = 0; i < t->n; i++)
        slot_put(t, i);
}

static void ot_init(otab *t, size_t size)
{
    memset(t, 0, sizeof *t);
    t->size = size;
    slots_rebuild(t, 1024);
}

static void ot_free(otab *t)
{
    free(t->rows);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

static void ot_copy(otab *dst, const otab *src)
{
    *dst = *src;
    dst->rows = malloc(src->cap * src->size + 1);
    dst->slots = malloc(src->nslots * sizeof *src->slots);
    ck_assert(dst->rows && dst->slots);
    if (src->n)
        memcpy(dst->rows, src->rows, src->n * src->size);
    memcpy(dst->slots, src->slots, src->nslots * sizeof *src->slots);
}

/* The row with this id, dead or alive; NULL when the test never had it. */
static ohdr *ot_get(const otab *t, const char *id)
{
    size_t k = id_hash(id) & (t->nslots - 1);

    for (; t->slots[k]; k = (k + 1) & (t->nslots - 1)) {
        ohdr *r = ROW(t, t->slots[k] - 1);

        if (strcmp(r->id, id) == 0)
            return r;
    }
    return NULL;
}

static ohdr *ot_find(const otab *t, const char *id)
{
    ohdr *r = id && *id ? ot_get(t, id) : NULL;

    return r && r->live ? r : NULL;
}

/* Add a copy of `row` (its header's id set); returns the stored row,
 * valid until the next ot_add or compaction. */
static ohdr *ot_add(otab *t, const void *row)
{
    ohdr *r;

    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 256;
        t->rows = realloc(t->rows, t->cap * t->size);
        ck_assert_ptr_nonnull(t->rows);
    }
    r = ROW(t, t->n);
    memcpy(r, row, t->size);
    r->live = true;
    r->mark = r->hits = 0;
    t->n++;
    t->live++;
    if (t->n * 2 >= t->nslots)
        slots_rebuild(t, t->nslots * 2);
    else
        slot_put(t, t->n - 1);
    return r;
}

static void ot_kill(otab *t, ohdr *r)
{
    r->live = false;
    t->live--;
    memcpy(t->ghosts[t->nghosts++ % GHOSTS], r->id, SPOTDB_UUID_SIZE);
}

/* Drop dead rows once they are most of the table (their ids live on in
 * the ghost ring, for lookups that must find nothing). */
static void ot_compact(otab *t)
{
    size_t k = 0;

    if (t->n < 512 || t->live * 2 > t->n)
        return;
    for (size_t i = 0; i < t->n; i++)
        if (ROW(t, i)->live)
            memmove(ROW(t, k++), ROW(t, i), t->size);
    t->n = k;
    slots_rebuild(t, t->nslots);
}

/* ---- what the oracle keeps ---------------------------------------------- */

enum { R_NONE, R_ADMIN, R_USER, R_LAB };
static const char *const role_name[] = { "none", "admin", "user", "lab" };
static const char *const decisions[] = { "SWITCH", "STAY",
                                         "FALLBACK_ONDEMAND" };

typedef struct o_user {
    ohdr h;
    char email[48];
    char username[40];
    char full_name[40];
    char password[24];          /* "": not to be tried (cost 12 hash) */
    int role;
    bool active;
    bool seed_admin;            /* kept an admin, never deleted */
} o_user;

typedef struct o_account {
    ohdr h;
    char user_id[SPOTDB_UUID_SIZE];
    char aws[13];
    char name[40];
    bool prod;
    bool active;
} o_account;

typedef struct o_instance {
    ohdr h;
    char account_id[SPOTDB_UUID_SIZE];
    char ec2[24];
    char model_version[24];     /* "": NULL */
    bool linear;
    bool active;
} o_instance;

typedef struct o_model {
    ohdr h;
    char name[32];
    char version[24];
    char created_by[SPOTDB_UUID_SIZE];  /* "": NULL */
    bool active;
} o_model;

typedef struct o_log {
    ohdr h;
    char instance_id[SPOTDB_UUID_SIZE];
    char model_id[SPOTDB_UUID_SIZE];    /* "": NULL */
    int decision;
    bool shadow;
    int64_t exec_time;
} o_log;

#define FIND(type, t, id) ((type *)ot_find(&T[t], id))
#define AT(type, t, i) ((type *)ROW(&T[t], i))

static int role_from(const char *s)
{
    for (int r = R_ADMIN; r <= R_LAB; r++)
        if (s && strcmp(s, role_name[r]) == 0)
            return r;
    return -1;
}

static int decision_from(const char *s)
{
    for (int d = 0; d < 3; d++)
        if (s && strcmp(s, decisions[d]) == 0)
            return d;
    return -1;
}

/* ---- figures ------------------------------------------------------------ */

static struct stats {
    long ops, gets, lookups, lists, pages, counts, streams, views;
    long creates, updates, deletes, bulk, logins, writes_ok;
    long txns, rolled_back, doomed, txn_switches, switches;
    long rows, cross_seen, cross_changed, denied, notfound, refused;
    long mismatches, verified_rows;
    long actors[4], ghost_actors, no_actor;
    long denied_by[32];         /* EDENIED as expected, per op_kind;
                                   doom()'s at O_KINDS */
    long lab_prod;              /* of which: lab user, own PROD account */
    long own_guard;             /* non-admin changing own role/is_active */
} S;
static int g_kind;              /* op_kind of the running operation */

/* ---- the run's state ---------------------------------------------------- */

static spotdb_db *su;           /* superuser handle: setup only */
static spotdb_db *app[2];       /* scoped handles on APP_ROLE */
static PGconn *pg;              /* superuser connection: verification */
static char *app_conninfo;
static int cur;                 /* handle in use */
static char g_act[SPOTDB_UUID_SIZE];   /* acting user, "" for none */
static int g_role;              /* their role as the oracle has it */
static long g_op;               /* number of the running operation */
static unsigned g_seed;
static unsigned g_epoch;        /* of the result being checked */
static long g_serial;           /* makes every key unique */
static int64_t g_time;          /* execution_time of the next log */
static bool in_txn, txn_doomed;
static otab saved[NTABLES];     /* the oracle at BEGIN */

static spotdb_db *H(void)
{
    return app[cur];
}

/* The last events, printed with the first mismatch. */
#define TRACE 40
static char trace_ring[TRACE][160];
static long trace_n;

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void trace(const char *fmt, ...)
{
    char *line = trace_ring[trace_n++ % TRACE];
    va_list ap;
    int k;

    k = snprintf(line, 160, "op %ld h%d %s %.8s %s: ", g_op, cur,
                 in_txn ? "T" : "-", g_act[0] ? g_act : "none",
                 role_name[g_role]);
    va_start(ap, fmt);
    vsnprintf(line + k, (size_t)(160 - k), fmt, ap);
    va_end(ap);
}

static void dump_trace(void)
{
    long from = trace_n > TRACE ? trace_n - TRACE : 0;

    for (long k = from; k < trace_n; k++)
        fprintf(stderr, "  trace: %s\n", trace_ring[k % TRACE]);
}

static void bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void bad(const char *fmt, ...)
{
    va_list ap;

    S.mismatches++;
    if (S.mismatches <= MAX_REPORTED) {
        fprintf(stderr, "tenancy: seed %u, op %ld, actor %s (%s)%s: ",
                g_seed, g_op, g_act[0] ? g_act : "(none)",
                role_name[g_role], in_txn ? ", in a transaction" : "");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        if (S.mismatches <= 3)
            dump_trace();
    }
    ck_assert_msg(S.mismatches < MAX_MISMATCHES, "tenancy: %ld mismatches "
                  "(seed %u), stopping", S.mismatches, g_seed);
}

/* A code the server gives by rejecting a statement, which dooms an open
 * transaction (a lookup that finds nothing, a refused argument and a
 * wrong password do not). */
static bool dooms(int code)
{
    return code != 0 && code != SPOTDB_ENOTFOUND && code != SPOTDB_EINVAL &&
           code != SPOTDB_EAUTH;
}

/* Compare a call's code with the oracle's.  A write that succeeded where
 * the actor may not write is a cross-tenant change. */
static bool outcome(int got, int want, bool write, const char *what)
{
    trace("%s -> %d (want %d)", what, got, want);
    if (got == want) {
        if (want == SPOTDB_EDENIED) {
            S.denied++;
            S.denied_by[g_kind]++;
        } else if (want == SPOTDB_ENOTFOUND) {
            S.notfound++;
        } else if (want != 0) {
            S.refused++;
        } else if (write) {
            S.writes_ok++;
        }
        return true;
    }
    if (got == 0 && write &&
        (want == SPOTDB_EDENIED || want == SPOTDB_ENOTFOUND))
        S.cross_changed++;
    bad("%s: got %d (%s: %s), expected %d (%s)", what, got,
        spotdb_strerror(got), spotdb_errmsg(H()), want,
        spotdb_strerror(want));
    if (in_txn && dooms(got))
        txn_doomed = true;
    return false;
}

/* ---- who sees what ------------------------------------------------------ */

static int role_of(const char *id)
{
    const o_user *u = FIND(o_user, TU, id);

    return u && u->active ? u->role : R_NONE;
}

static bool admin(void)
{
    return g_role == R_ADMIN;
}

static bool vis_user(const o_user *u)
{
    return admin() || (g_role != R_NONE && strcmp(u->h.id, g_act) == 0);
}

/* May the actor have an account of this owner and environment? */
static bool may_have_account(const char *user_id, bool prod)
{
    return admin() ||
           (g_role != R_NONE && strcmp(user_id, g_act) == 0 &&
            (g_role == R_USER || (g_role == R_LAB && !prod)));
}

static bool vis_account(const o_account *a)
{
    return may_have_account(a->user_id, a->prod);
}

static bool vis_account_id(const char *id)
{
    const o_account *a = FIND(o_account, TA, id);

    return a && vis_account(a);
}

static bool vis_instance(const o_instance *i)
{
    return admin() || vis_account_id(i->account_id);
}

static bool vis_instance_id(const char *id)
{
    const o_instance *i = FIND(o_instance, TI, id);

    return i && vis_instance(i);
}

static bool vis_log(const o_log *l)
{
    return admin() || vis_instance_id(l->instance_id);
}

static bool vis_model(void)
{
    return g_role != R_NONE;
}

static bool writes_models(void)
{
    return g_role == R_ADMIN || g_role == R_LAB;
}

static bool visible(int t, const ohdr *r)
{
    switch (t) {
    case TU: return vis_user((const o_user *)r);
    case TA: return vis_account((const o_account *)r);
    case TI: return vis_instance((const o_instance *)r);
    case TM: return vis_model();
    default: return vis_log((const o_log *)r);
    }
}

/* ---- picking rows ------------------------------------------------------- */

/* A live row, uniformly, among those the predicate keeps (all if NULL). */
static ohdr *pick(int t, bool (*keep)(int, const ohdr *))
{
    ohdr *chosen = NULL;
    uint32_t k = 0;

    for (size_t i = 0; i < T[t].n; i++) {
        ohdr *r = ROW(&T[t], i);

        if (r->live && (!keep || keep(t, r)) && rn(++k) == 0)
            chosen = r;
    }
    return chosen;
}

static void ghost_id(int t, char *out)
{
    if (T[t].nghosts && chance(60))
        memcpy(out, T[t].ghosts[rn((uint32_t)(T[t].nghosts < GHOSTS ?
                                              T[t].nghosts : GHOSTS))],
               SPOTDB_UUID_SIZE);
    else
        random_uuid(out);
}

/* An id to act on: mostly one the actor sees, else anyone's, sometimes
 * one that no longer (or never did) exist. */
static void pick_id(int t, char *out)
{
    unsigned r = rn(100);
    ohdr *row = NULL;

    if (r < 55)
        row = pick(t, visible);
    if (!row && r < 93)
        row = pick(t, NULL);
    if (row)
        memcpy(out, row->id, SPOTDB_UUID_SIZE);
    else
        ghost_id(t, out);
}

/* ---- checking results --------------------------------------------------- */

static void begin_result(void)
{
    g_epoch++;
}

/* Filters of the result being checked, in oracle terms: -1, NULL or ""
 * do not filter. */
static struct {
    int role, active;                           /* users */
    const char *user_id; int prod, acc_active;  /* accounts */
    const char *account_id; int linear, inst_active;  /* instances */
    const char *name; int model_active;         /* models */
    const char *instance_id, *model_id;         /* logs */
    int decision, shadow; const int64_t *from;
    int view_prod;                              /* v_active_instances */
} F;

static char f_ids[3][SPOTDB_UUID_SIZE];
static char g_want_id[SPOTDB_UUID_SIZE];   /* the row a get asks for */
static char f_name[32];
static int64_t f_from;

static void clear_filters(void)
{
    g_want_id[0] = '\0';
    memset(&F, 0, sizeof F);
    F.role = F.active = F.prod = F.acc_active = F.linear = -1;
    F.inst_active = F.model_active = F.decision = F.shadow = -1;
    F.view_prod = -1;
}

static bool flag_is(int want, bool v)
{
    return want < 0 || (want == 1) == v;
}

static bool id_is(const char *want, const char *v)
{
    return !want || strcmp(want, v) == 0;
}

/* Number of models of that version (the view's join on version only). */
static unsigned models_of_version(const char *version)
{
    unsigned n = 0;

    for (size_t i = 0; *version && i < T[TM].n; i++) {
        const o_model *m = AT(o_model, TM, i);

        n += m->h.live && strcmp(m->version, version) == 0;
    }
    return n;
}

enum { K_USER, K_ACCOUNT, K_INSTANCE, K_MODEL, K_LOG, K_ACTIVE, K_RECENT };
static const int kind_table[] = { TU, TA, TI, TM, TL, TI, TL };

/* How many times the result must hold the row: 0 when the actor may not
 * see it or the filter drops it. */
static unsigned mult(int kind, const ohdr *r)
{
    const o_account *a;
    unsigned n;

    if (!r->live || !visible(kind_table[kind], r))
        return 0;
    switch (kind) {
    case K_USER: {
        const o_user *u = (const o_user *)r;

        return F.role < 0 ? flag_is(F.active, u->active)
                          : u->role == F.role && flag_is(F.active, u->active);
    }
    case K_ACCOUNT: {
        const o_account *x = (const o_account *)r;

        return id_is(F.user_id, x->user_id) && flag_is(F.prod, x->prod) &&
               flag_is(F.acc_active, x->active);
    }
    case K_INSTANCE: {
        const o_instance *i = (const o_instance *)r;

        return id_is(F.account_id, i->account_id) &&
               flag_is(F.linear, i->linear) &&
               flag_is(F.inst_active, i->active);
    }
    case K_MODEL: {
        const o_model *m = (const o_model *)r;

        return id_is(F.name, m->name) && flag_is(F.model_active, m->active);
    }
    case K_LOG:
    case K_RECENT: {
        const o_log *l = (const o_log *)r;

        return id_is(F.instance_id, l->instance_id) &&
               id_is(F.model_id, l->model_id) &&
               (F.decision < 0 || F.decision == l->decision) &&
               flag_is(F.shadow, l->shadow) &&
               (!F.from || l->exec_time >= *F.from);
    }
    default: {
        const o_instance *i = (const o_instance *)r;

        a = FIND(o_account, TA, i->account_id);
        if (!i->active || !a || !a->active || !flag_is(F.view_prod, a->prod))
            return 0;
        n = models_of_version(i->model_version);
        return n ? n : 1;
    }
    }
}

/* A row a call returned: count it, and it must be one the actor sees
 * (else it is a cross-tenant row), the filter keeps, and not returned
 * more often than the oracle says.  Returns the oracle's row, or NULL. */
static ohdr *seen(int kind, const char *id, const char *what)
{
    int t = kind_table[kind];
    ohdr *r = ot_find(&T[t], id);
    unsigned m;

    S.rows++;
    if (!r || !visible(t, r)) {
        S.cross_seen++;
        bad("%s returned %s row %s, which the actor may not see (%s)", what,
            table_name[t], id, r ? "another tenant's" : "unknown to the test");
        return NULL;
    }
    if (g_want_id[0] && strcmp(id, g_want_id) != 0)
        bad("%s returned %s row %s, not %s", what, table_name[t], id,
            g_want_id);
    if (r->mark != g_epoch) {
        r->mark = g_epoch;
        r->hits = 0;
    }
    m = mult(kind, r);
    if (++r->hits > m)
        bad("%s returned %s row %s %u times, expected %u (filter)", what,
            table_name[t], id, r->hits, m);
    return r;
}

/* After a complete result: it held every expected row as often as
 * expected (`returned` rows in all). */
static void expect_complete(int kind, size_t returned, const char *what)
{
    otab *t = &T[kind_table[kind]];
    size_t want = 0;

    for (size_t i = 0; i < t->n; i++) {
        ohdr *r = ROW(t, i);
        unsigned m = mult(kind, r);

        want += m;
        if (m && (r->mark != g_epoch || r->hits != m))
            bad("%s: %s row %s came back %u times, expected %u", what,
                table_name[kind_table[kind]], r->id,
                r->mark == g_epoch ? r->hits : 0, m);
    }
    if (returned != want)
        bad("%s: %zu rows, expected %zu", what, returned, want);
}

static long expected_count(int kind)
{
    otab *t = &T[kind_table[kind]];
    long n = 0;

    for (size_t i = 0; i < t->n; i++)
        n += mult(kind, ROW(t, i));
    return n;
}

static bool same(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static void check_user(const spotdb_user *r, const char *what)
{
    const o_user *u = (const o_user *)seen(K_USER, r->id, what);

    if (u && (!same(r->email, u->email) || !same(r->username, u->username) ||
              !same(r->full_name, u->full_name) ||
              role_from(r->role) != u->role || r->is_active != u->active))
        bad("%s: user %s is %s/%s/%s/%d, the oracle has %s/%s/%s/%d", what,
            r->id, r->email, r->username, r->role, r->is_active, u->email,
            u->username, role_name[u->role], u->active);
}

static void check_account(const spotdb_account *r, const char *what)
{
    const o_account *a = (const o_account *)seen(K_ACCOUNT, r->id, what);

    if (a && (!same(r->user_id, a->user_id) || !same(r->account_id, a->aws) ||
              !same(r->account_name, a->name) ||
              !same(r->environment_type, a->prod ? "PROD" : "LAB") ||
              r->is_active != a->active))
        bad("%s: account %s is %s/%s/%s/%s/%d, the oracle has "
            "%s/%s/%s/%s/%d", what, r->id, r->user_id, r->account_id,
            r->account_name, r->environment_type, r->is_active, a->user_id,
            a->aws, a->name, a->prod ? "PROD" : "LAB", a->active);
}

static void check_instance(const spotdb_instance *r, const char *what)
{
    const o_instance *i = (const o_instance *)seen(K_INSTANCE, r->id, what);

    if (i && (!same(r->account_id, i->account_id) ||
              !same(r->instance_id, i->ec2) ||
              !same(r->assigned_model_version, i->model_version) ||
              !same(r->pipeline_mode, i->linear ? "LINEAR" : "CLUSTER") ||
              r->is_active != i->active))
        bad("%s: instance %s is %s/%s/%s/%s/%d, the oracle has "
            "%s/%s/%s/%s/%d", what, r->id, r->account_id, r->instance_id,
            r->assigned_model_version ? r->assigned_model_version : "NULL",
            r->pipeline_mode, r->is_active, i->account_id, i->ec2,
            i->model_version, i->linear ? "LINEAR" : "CLUSTER", i->active);
}

static void check_model(const spotdb_model *r, const char *what)
{
    const o_model *m = (const o_model *)seen(K_MODEL, r->id, what);

    if (m && (!same(r->name, m->name) || !same(r->version, m->version) ||
              !same(r->created_by, m->created_by) ||
              r->is_active != m->active))
        bad("%s: model %s is %s/%s/%s/%d, the oracle has %s/%s/%s/%d", what,
            r->id, r->name, r->version, r->created_by, r->is_active, m->name,
            m->version, m->created_by, m->active);
}

static void check_log(const spotdb_experiment_log *r, const char *what)
{
    const o_log *l = (const o_log *)seen(K_LOG, r->id, what);

    if (l && (!same(r->instance_id, l->instance_id) ||
              !same(r->model_id, l->model_id) ||
              decision_from(r->decision) != l->decision ||
              r->is_shadow_run != l->shadow ||
              r->execution_time != l->exec_time))
        bad("%s: log %s is %s/%s/%s/%d, the oracle has %s/%s/%s/%d", what,
            r->id, r->instance_id, r->model_id, r->decision,
            r->is_shadow_run, l->instance_id, l->model_id,
            decisions[l->decision], l->shadow);
}

static void check_active(const spotdb_active_instance *r, const char *what)
{
    const o_instance *i = (const o_instance *)seen(K_ACTIVE, r->id, what);
    const o_account *a = i ? FIND(o_account, TA, i->account_id) : NULL;
    const o_user *u = a ? FIND(o_user, TU, a->user_id) : NULL;

    if (i && (!a || !u || !same(r->instance_id, i->ec2) ||
              !same(r->aws_account_id, a->aws) ||
              !same(r->environment_type, a->prod ? "PROD" : "LAB") ||
              !same(r->username, u->username) ||
              !same(r->user_email, u->email) ||
              !same(r->assigned_model_version, i->model_version)))
        bad("%s: active instance %s (%s, account %s, owner %s) differs from "
            "the oracle", what, r->id, r->instance_id, r->aws_account_id,
            r->username);
}

static void check_recent(const spotdb_recent_experiment *r,
                         const char *what)
{
    const o_log *l = (const o_log *)seen(K_RECENT, r->id, what);
    const o_instance *i = l ? FIND(o_instance, TI, l->instance_id) : NULL;
    const o_account *a = i ? FIND(o_account, TA, i->account_id) : NULL;

    if (l && (!i || !a || !same(r->instance_id, i->ec2) ||
              !same(r->aws_account_id, a->aws) ||
              decision_from(r->decision) != l->decision ||
              r->is_shadow_run != l->shadow))
        bad("%s: recent experiment %s (%s, account %s) differs from the "
            "oracle", what, r->id, r->instance_id, r->aws_account_id);
}

/* ---- the oracle's writes ------------------------------------------------ */

static void kill_log(o_log *l)
{
    ot_kill(&T[TL], &l->h);
}

static void kill_instance(o_instance *i)
{
    for (size_t k = 0; k < T[TL].n; k++) {
        o_log *l = AT(o_log, TL, k);

        if (l->h.live && strcmp(l->instance_id, i->h.id) == 0)
            kill_log(l);
    }
    ot_kill(&T[TI], &i->h);
}

static void kill_account(o_account *a)
{
    for (size_t k = 0; k < T[TI].n; k++) {
        o_instance *i = AT(o_instance, TI, k);

        if (i->h.live && strcmp(i->account_id, a->h.id) == 0)
            kill_instance(i);
    }
    ot_kill(&T[TA], &a->h);
}

static void kill_user(o_user *u)
{
    for (size_t k = 0; k < T[TA].n; k++) {
        o_account *a = AT(o_account, TA, k);

        if (a->h.live && strcmp(a->user_id, u->h.id) == 0)
            kill_account(a);
    }
    ot_kill(&T[TU], &u->h);
}

static bool model_in_use(const char *id)
{
    for (size_t k = 0; k < T[TL].n; k++) {
        const o_log *l = AT(o_log, TL, k);

        if (l->h.live && strcmp(l->model_id, id) == 0)
            return true;
    }
    return false;
}

static bool user_in_use(const char *id)
{
    for (size_t k = 0; k < T[TM].n; k++) {
        const o_model *m = AT(o_model, TM, k);

        if (m->h.live && strcmp(m->created_by, id) == 0)
            return true;
    }
    return false;
}

/* ---- input rows --------------------------------------------------------- */

/* A 12-digit AWS number no account has. */
static void fresh_aws(char *out)
{
    char digits[24];

    snprintf(digits, sizeof digits, "%012ld", 100000000000L + ++g_serial);
    memcpy(out, digits, 12);
    out[12] = '\0';
}

static void account_input(spotdb_account *in, char *arn, char *ext,
                          const char *user_id, const char *aws,
                          const char *name, bool prod)
{
    memset(in, 0, sizeof *in);
    snprintf(in->user_id, SPOTDB_UUID_SIZE, "%s", user_id);
    sprintf(arn, "arn:aws:iam::%s:role/spot", aws);
    sprintf(ext, "ext-%s", aws);
    in->account_id = aws;
    in->account_name = name;
    in->environment_type = prod ? "PROD" : "LAB";
    in->role_arn = arn;
    in->external_id = ext;
}

#define ACCOUNT_FIELDS                                                       \
    (SPOTDB_ACCOUNT_ACCOUNT_ID | SPOTDB_ACCOUNT_ACCOUNT_NAME |                \
     SPOTDB_ACCOUNT_ENVIRONMENT_TYPE | SPOTDB_ACCOUNT_ROLE_ARN |             \
     SPOTDB_ACCOUNT_EXTERNAL_ID)

static const char *random_version(void)
{
    const o_model *m;

    if (chance(45))
        return NULL;
    if (chance(15) || !(m = (const o_model *)pick(TM, NULL)))
        return "v-none";
    return m->version;
}

static void instance_input(spotdb_instance *in, char *ec2,
                           const char *account_id)
{
    const char *version = random_version();

    memset(in, 0, sizeof *in);
    snprintf(in->account_id, SPOTDB_UUID_SIZE, "%s", account_id);
    snprintf(ec2, 24, "i-%017lx", (unsigned long)++g_serial);
    in->instance_id = ec2;
    in->instance_type = "c5.large";
    in->availability_zone = "ap-south-1a";
    in->assigned_model_version = version;
    in->pipeline_mode = chance(50) ? "LINEAR" : "CLUSTER";
    in->is_active = !chance(15);
    if (!version)
        in->nulls = SPOTDB_INSTANCE_ASSIGNED_MODEL_VERSION;
}

#define INSTANCE_FIELDS                                                      \
    (SPOTDB_INSTANCE_INSTANCE_ID | SPOTDB_INSTANCE_INSTANCE_TYPE |           \
     SPOTDB_INSTANCE_AVAILABILITY_ZONE |                                     \
     SPOTDB_INSTANCE_ASSIGNED_MODEL_VERSION |                                \
     SPOTDB_INSTANCE_PIPELINE_MODE | SPOTDB_INSTANCE_IS_ACTIVE)

static o_instance instance_of(const spotdb_instance *in, const char *id)
{
    o_instance o;

    memset(&o, 0, sizeof o);
    snprintf(o.h.id, SPOTDB_UUID_SIZE, "%s", id);
    snprintf(o.account_id, SPOTDB_UUID_SIZE, "%s", in->account_id);
    snprintf(o.ec2, sizeof o.ec2, "%s", in->instance_id);
    snprintf(o.model_version, sizeof o.model_version, "%s",
             in->assigned_model_version ? in->assigned_model_version : "");
    o.linear = strcmp(in->pipeline_mode, "LINEAR") == 0;
    o.active = in->is_active;
    return o;
}

static void log_input(spotdb_experiment_log *in, const char *instance_id)
{
    const o_model *m = chance(70) ? (const o_model *)pick(TM, NULL) : NULL;

    memset(in, 0, sizeof *in);
    snprintf(in->instance_id, SPOTDB_UUID_SIZE, "%s", instance_id);
    if (m)
        memcpy(in->model_id, m->h.id, SPOTDB_UUID_SIZE);
    in->pipeline_mode = "CLUSTER";
    in->decision = decisions[rn(3)];
    in->is_shadow_run = chance(30);
    in->prediction_score = (double)rn(1000) / 1000.0;
    in->execution_time = g_time += 1000;
}

#define LOG_FIELDS                                                           \
    (SPOTDB_EXPERIMENT_LOG_INSTANCE_ID | SPOTDB_EXPERIMENT_LOG_MODEL_ID |    \
     SPOTDB_EXPERIMENT_LOG_PIPELINE_MODE |                                   \
     SPOTDB_EXPERIMENT_LOG_IS_SHADOW_RUN |                                   \
     SPOTDB_EXPERIMENT_LOG_PREDICTION_SCORE |                                \
     SPOTDB_EXPERIMENT_LOG_DECISION | SPOTDB_EXPERIMENT_LOG_EXECUTION_TIME)

static o_log log_of(const spotdb_experiment_log *in, const char *id)
{
    o_log o;

    memset(&o, 0, sizeof o);
    snprintf(o.h.id, SPOTDB_UUID_SIZE, "%s", id);
    memcpy(o.instance_id, in->instance_id, SPOTDB_UUID_SIZE);
    memcpy(o.model_id, in->model_id, SPOTDB_UUID_SIZE);
    o.decision = decision_from(in->decision);
    o.shadow = in->is_shadow_run;
    o.exec_time = in->execution_time;
    return o;
}

/* ---- reads -------------------------------------------------------------- */

static void op_get(int t)
{
    char id[SPOTDB_UUID_SIZE];
    const ohdr *r;
    int want, rc;

    pick_id(t, id);
    r = ot_find(&T[t], id);
    want = r && visible(t, r) ? 0 : SPOTDB_ENOTFOUND;
    clear_filters();
    memcpy(g_want_id, id, SPOTDB_UUID_SIZE);
    begin_result();
    S.gets++;
    switch (t) {
    case TU: {
        spotdb_user *row = NULL;

        rc = spotdb_user_get(&row, H(), id);
        if (outcome(rc, want, false, "user_get") && rc == 0)
            check_user(row, "user_get");
        spotdb_user_free(row);
        break;
    }
    case TA: {
        spotdb_account *row = NULL;

        rc = spotdb_account_get(&row, H(), id);
        if (outcome(rc, want, false, "account_get") && rc == 0)
            check_account(row, "account_get");
        spotdb_account_free(row);
        break;
    }
    case TI: {
        spotdb_instance *row = NULL;

        rc = spotdb_instance_get(&row, H(), id);
        if (outcome(rc, want, false, "instance_get") && rc == 0)
            check_instance(row, "instance_get");
        spotdb_instance_free(row);
        break;
    }
    case TM: {
        spotdb_model *row = NULL;

        rc = spotdb_model_get(&row, H(), id);
        if (outcome(rc, want, false, "model_get") && rc == 0)
            check_model(row, "model_get");
        spotdb_model_free(row);
        break;
    }
    default: {
        spotdb_experiment_log *row = NULL;

        rc = spotdb_experiment_log_get(&row, H(), id);
        if (outcome(rc, want, false, "experiment_log_get") && rc == 0)
            check_log(row, "experiment_log_get");
        spotdb_experiment_log_free(row);
        break;
    }
    }
}

/* Lookups by each table's unique key. */
static void op_lookup(int t)
{
    char id[SPOTDB_UUID_SIZE], key[64];
    const ohdr *r;
    int want, rc;

    pick_id(t, id);
    r = ot_find(&T[t], id);
    want = r && visible(t, r) ? 0 : SPOTDB_ENOTFOUND;
    clear_filters();
    memcpy(g_want_id, id, SPOTDB_UUID_SIZE);
    begin_result();
    S.lookups++;
    switch (t) {
    case TU: {
        const o_user *u = (const o_user *)r;
        spotdb_user *row = NULL;
        bool by_email = chance(50);

        if (u)
            snprintf(key, sizeof key, "%s", by_email ? u->email : u->username);
        else if (by_email)
            snprintf(key, sizeof key, "nobody%ld@x.test", ++g_serial);
        else
            snprintf(key, sizeof key, "nobody%ld", ++g_serial);
        rc = by_email ? spotdb_user_get_by_email(&row, H(), key)
                      : spotdb_user_get_by_username(&row, H(), key);
        if (outcome(rc, want, false, "user_get_by_key") && rc == 0)
            check_user(row, "user_get_by_key");
        spotdb_user_free(row);
        break;
    }
    case TA: {
        const o_account *a = (const o_account *)r;
        spotdb_account *row = NULL;

        if (a)
            snprintf(key, sizeof key, "%s", a->aws);
        else
            fresh_aws(key);
        rc = spotdb_account_get_by_account_id(&row, H(), key);
        if (outcome(rc, want, false, "account_get_by_account_id") && rc == 0)
            check_account(row, "account_get_by_account_id");
        spotdb_account_free(row);
        break;
    }
    case TI: {
        const o_instance *i = (const o_instance *)r;
        spotdb_instance *row = NULL;

        if (i)
            snprintf(key, sizeof key, "%s", i->ec2);
        else
            snprintf(key, sizeof key, "i-%017lx", (unsigned long)++g_serial);
        rc = spotdb_instance_get_by_instance_id(&row, H(), key);
        if (outcome(rc, want, false, "instance_get_by_instance_id") &&
            rc == 0)
            check_instance(row, "instance_get_by_instance_id");
        spotdb_instance_free(row);
        break;
    }
    default: {
        const o_model *m = (const o_model *)r;
        spotdb_model *row = NULL;

        rc = spotdb_model_get_by_name_version(&row, H(),
                                              m ? m->name : "no-such-model",
                                              m ? m->version : "v0");
        if (outcome(rc, want, false, "model_get_by_name_version") && rc == 0)
            check_model(row, "model_get_by_name_version");
        spotdb_model_free(row);
        break;
    }
    }
}

/* Filters: a random one of each table's, in oracle terms (F) and as the
 * library's struct. */
static const bool bool_values[2] = { false, true };

static int random_flag(int pct)
{
    return chance(pct) ? (int)rn(2) : -1;
}

static const char *filter_id(int t, int slot)
{
    pick_id(t, f_ids[slot]);
    return f_ids[slot];
}

static void user_filter(spotdb_user_filter *f)
{
    *f = (spotdb_user_filter)SPOTDB_USER_FILTER_INIT;
    clear_filters();
    if (chance(35)) {
        F.role = (int)rn(3) + R_ADMIN;
        f->role = role_name[F.role];
    }
    if ((F.active = random_flag(30)) >= 0)
        f->is_active = &bool_values[F.active];
}

static void account_filter(spotdb_account_filter *f)
{
    *f = (spotdb_account_filter)SPOTDB_ACCOUNT_FILTER_INIT;
    clear_filters();
    if (chance(40))
        f->user_id = F.user_id = filter_id(TU, 0);
    if ((F.prod = random_flag(35)) >= 0)
        f->environment_type = F.prod ? "PROD" : "LAB";
    if ((F.acc_active = random_flag(25)) >= 0)
        f->is_active = &bool_values[F.acc_active];
}

static void instance_filter(spotdb_instance_filter *f)
{
    *f = (spotdb_instance_filter)SPOTDB_INSTANCE_FILTER_INIT;
    clear_filters();
    if (chance(45))
        f->account_id = F.account_id = filter_id(TA, 0);
    if ((F.linear = random_flag(30)) >= 0)
        f->pipeline_mode = F.linear ? "LINEAR" : "CLUSTER";
    if ((F.inst_active = random_flag(25)) >= 0)
        f->is_active = &bool_values[F.inst_active];
}

static void model_filter(spotdb_model_filter *f)
{
    const o_model *m;

    *f = (spotdb_model_filter)SPOTDB_MODEL_FILTER_INIT;
    clear_filters();
    if (chance(40)) {
        m = (const o_model *)pick(TM, NULL);
        snprintf(f_name, sizeof f_name, "%s", m && chance(85) ? m->name :
                 "no-such-model");
        f->name = F.name = f_name;
    }
    if ((F.model_active = random_flag(30)) >= 0)
        f->is_active = &bool_values[F.model_active];
}

static void log_filter(spotdb_experiment_log_filter *f)
{
    const o_log *l;

    *f = (spotdb_experiment_log_filter)SPOTDB_EXPERIMENT_LOG_FILTER_INIT;
    clear_filters();
    if (chance(45))
        f->instance_id = F.instance_id = filter_id(TI, 0);
    if (chance(15))
        f->model_id = F.model_id = filter_id(TM, 1);
    if (chance(30)) {
        F.decision = (int)rn(3);
        f->decision = decisions[F.decision];
    }
    if ((F.shadow = random_flag(25)) >= 0)
        f->is_shadow_run = &bool_values[F.shadow];
    if (chance(15) && (l = (const o_log *)pick(TL, NULL))) {
        f_from = l->exec_time;
        f->executed_from = F.from = &f_from;
    }
}

static int32_t random_limit(void)
{
    static const int32_t limits[] = { 0, 1, 7, 25, 100, 1000 };

    return limits[rn(6)];
}

/* One list call, page by page: every row is checked, and a result read
 * to its end must be exactly the oracle's. */
#define LIST_PAGES(kind, what, list_call, rows_type, free_fn, check_fn)      \
    do {                                                                     \
        char *cursor_ = NULL;                                                \
        size_t n_ = 0;                                                       \
        bool follow_ = chance(60), failed_ = false;                          \
        int32_t limit_ = random_limit();                                     \
                                                                             \
        begin_result();                                                      \
        S.lists++;                                                           \
        for (;;) {                                                           \
            rows_type *rows_ = NULL;                                         \
            int rc_ = list_call;                                             \
                                                                             \
            S.pages++;                                                       \
            if (!outcome(rc_, 0, false, what)) {                             \
                failed_ = true;                                              \
                break;                                                       \
            }                                                                \
            if (rows_->count > (size_t)(limit_ ? limit_ : 100))              \
                bad("%s: %zu rows on a page of %d", what, rows_->count,      \
                    (int)limit_);                                            \
            for (size_t k_ = 0; k_ < rows_->count; k_++)                     \
                check_fn(&rows_->items[k_], what);                           \
            n_ += rows_->count;                                              \
            free(cursor_);                                                   \
            cursor_ = rows_->next_cursor ? strdup(rows_->next_cursor)       \
                                         : NULL;                             \
            free_fn(rows_);                                                  \
            if (!cursor_ || !follow_)                                        \
                break;                                                       \
        }                                                                    \
        if (!cursor_ && !failed_)                                            \
            expect_complete(kind, n_, what);                                 \
        free(cursor_);                                                       \
    } while (0)

#define CURSOR_ARG cursor_, limit_

static void op_list(int t)
{
    switch (t) {
    case TU: {
        spotdb_user_filter f;

        user_filter(&f);
        LIST_PAGES(K_USER, "user_list",
                   spotdb_user_list(&rows_, H(), &f, CURSOR_ARG),
                   spotdb_user_rows, spotdb_user_rows_free, check_user);
        break;
    }
    case TA: {
        spotdb_account_filter f;

        account_filter(&f);
        LIST_PAGES(K_ACCOUNT, "account_list",
                   spotdb_account_list(&rows_, H(), &f, CURSOR_ARG),
                   spotdb_account_rows, spotdb_account_rows_free,
                   check_account);
        break;
    }
    case TI: {
        spotdb_instance_filter f;

        instance_filter(&f);
        LIST_PAGES(K_INSTANCE, "instance_list",
                   spotdb_instance_list(&rows_, H(), &f, CURSOR_ARG),
                   spotdb_instance_rows, spotdb_instance_rows_free,
                   check_instance);
        break;
    }
    case TM: {
        spotdb_model_filter f;

        model_filter(&f);
        LIST_PAGES(K_MODEL, "model_list",
                   spotdb_model_list(&rows_, H(), &f, CURSOR_ARG),
                   spotdb_model_rows, spotdb_model_rows_free, check_model);
        break;
    }
    default: {
        spotdb_experiment_log_filter f;

        log_filter(&f);
        LIST_PAGES(K_LOG, "experiment_log_list",
                   spotdb_experiment_log_list(&rows_, H(), &f, CURSOR_ARG),
                   spotdb_experiment_log_rows,
                   spotdb_experiment_log_rows_free, check_log);
        break;
    }
    }
}

static void op_count(int t)
{
    int64_t n = -1;
    int rc, kind = t;           /* K_* equals T* for the tables */

    S.counts++;
    switch (t) {
    case TU: {
        spotdb_user_filter f;

        user_filter(&f);
        if (chance(20)) {
            clear_filters();
            rc = spotdb_user_count(&n, H(), NULL);
        } else {
            rc = spotdb_user_count(&n, H(), &f);
        }
        break;
    }
    case TA: {
        spotdb_account_filter f;

        account_filter(&f);
        rc = spotdb_account_count(&n, H(), &f);
        break;
    }
    case TI: {
        spotdb_instance_filter f;

        instance_filter(&f);
        rc = spotdb_instance_count(&n, H(), &f);
        break;
    }
    case TM: {
        spotdb_model_filter f;

        model_filter(&f);
        rc = spotdb_model_count(&n, H(), &f);
        break;
    }
    default: {
        spotdb_experiment_log_filter f;

        log_filter(&f);
        rc = spotdb_experiment_log_count(&n, H(), &f);
        break;
    }
    }
    if (outcome(rc, 0, false, "count")) {
        long want = expected_count(kind);

        if (n != want)
            bad("%s count: %lld, expected %ld", table_name[t], (long long)n,
                want);
    }
}

/* Streams: every row checked as it comes; some are stopped early. */
typedef struct stream_ctx {
    size_t n, stop;
    const char *what;
} stream_ctx;

#define STREAM_CB(name, type, check_fn)                                      \
    static int name(const type *row, void *payload)                          \
    {                                                                        \
        stream_ctx *c = payload;                                             \
                                                                             \
        check_fn(row, c->what);                                              \
        return ++c->n == c->stop ? 7 : 0;                                    \
    }

STREAM_CB(user_cb, spotdb_user, check_user)
STREAM_CB(account_cb, spotdb_account, check_account)
STREAM_CB(instance_cb, spotdb_instance, check_instance)
STREAM_CB(model_cb, spotdb_model, check_model)
STREAM_CB(log_cb, spotdb_experiment_log, check_log)
STREAM_CB(active_cb, spotdb_active_instance, check_active)
STREAM_CB(recent_cb, spotdb_recent_experiment, check_recent)

static void stream_done(int rc, stream_ctx *c, int kind)
{
    int want = c->stop && c->n == c->stop ? 7 : 0;

    if (rc != want) {
        outcome(rc, want, false, c->what);
        return;
    }
    if (!want)
        expect_complete(kind, c->n, c->what);
}

static void op_stream(int t)
{
    stream_ctx c = { 0, chance(20) ? 1 + rn(5) : 0, NULL };
    int rc;

    begin_result();
    S.streams++;
    switch (t) {
    case TU: {
        spotdb_user_filter f;

        user_filter(&f);
        c.what = "user_stream";
        rc = spotdb_user_stream(H(), &f, user_cb, &c);
        break;
    }
    case TA: {
        spotdb_account_filter f;

        account_filter(&f);
        c.what = "account_stream";
        rc = spotdb_account_stream(H(), &f, account_cb, &c);
        break;
    }
    case TI: {
        spotdb_instance_filter f;

        instance_filter(&f);
        c.what = "instance_stream";
        rc = spotdb_instance_stream(H(), &f, instance_cb, &c);
        break;
    }
    case TM: {
        spotdb_model_filter f;

        model_filter(&f);
        c.what = "model_stream";
        rc = spotdb_model_stream(H(), &f, model_cb, &c);
        break;
    }
    default: {
        spotdb_experiment_log_filter f;

        log_filter(&f);
        c.what = "experiment_log_stream";
        rc = spotdb_experiment_log_stream(H(), &f, log_cb, &c);
        break;
    }
    }
    stream_done(rc, &c, t);
}

/* The views: a list with a limit, or a stream. */
static void view_done(int rc, int kind, size_t n, int32_t limit,
                      const char *what)
{
    long want;

    if (!outcome(rc, 0, false, what))
        return;
    want = expected_count(kind);
    if (limit == 0 || want <= limit)
        expect_complete(kind, n, what);
    else if ((long)n != limit)
        bad("%s: %zu rows with a limit of %d, expected %d", what, n,
            (int)limit, (int)limit);
}

static void op_active_view(void)
{
    spotdb_active_instance_filter f = SPOTDB_ACTIVE_INSTANCE_FILTER_INIT;
    int32_t limit = chance(70) ? 0 : (int32_t)(1 + rn(30));
    int rc;

    clear_filters();
    if ((F.view_prod = random_flag(40)) >= 0)
        f.environment_type = F.view_prod ? "PROD" : "LAB";
    begin_result();
    S.views++;
    if (chance(25)) {
        stream_ctx c = { 0, 0, "active_instance_stream" };

        S.streams++;
        rc = spotdb_active_instance_stream(H(), &f, limit, active_cb, &c);
        view_done(rc, K_ACTIVE, c.n, limit, c.what);
    } else {
        spotdb_active_instance_rows *rows = NULL;

        rc = spotdb_active_instance_list(&rows, H(), &f, limit);
        for (size_t k = 0; rc == 0 && k < rows->count; k++)
            check_active(&rows->items[k], "active_instance_list");
        view_done(rc, K_ACTIVE, rc ? 0 : rows->count, limit,
                  "active_instance_list");
        spotdb_active_instance_rows_free(rows);
    }
}

static void op_recent_view(void)
{
    spotdb_recent_experiment_filter f = SPOTDB_RECENT_EXPERIMENT_FILTER_INIT;
    int32_t limit = chance(70) ? 0 : (int32_t)(1 + rn(30));
    int rc;

    clear_filters();
    if (chance(35)) {
        F.decision = (int)rn(3);
        f.decision = decisions[F.decision];
    }
    if ((F.shadow = random_flag(30)) >= 0)
        f.is_shadow_run = &bool_values[F.shadow];
    begin_result();
    S.views++;
    if (chance(25)) {
        stream_ctx c = { 0, 0, "recent_experiment_stream" };

        S.streams++;
        rc = spotdb_recent_experiment_stream(H(), &f, limit, recent_cb, &c);
        view_done(rc, K_RECENT, c.n, limit, c.what);
    } else {
        spotdb_recent_experiment_rows *rows = NULL;

        rc = spotdb_recent_experiment_list(&rows, H(), &f, limit);
        for (size_t k = 0; rc == 0 && k < rows->count; k++)
            check_recent(&rows->items[k], "recent_experiment_list");
        view_done(rc, K_RECENT, rc ? 0 : rows->count, limit,
                  "recent_experiment_list");
        spotdb_recent_experiment_rows_free(rows);
    }
}

/* ---- writes ------------------------------------------------------------- */

/* Populations stay between these, so that the data set neither dies out
 * nor outgrows v_recent_experiments' 1000-row window. */
static const size_t floor_of[NTABLES] = { 10, 20, 60, 4, 150 };
static const size_t cap_of[NTABLES] = { 30, 90, 240, 24, 600 };

/* A create that would succeed in a full table, or a delete in a scarce
 * one, is not made (refused ones still are). */
static bool full(int t, int want)
{
    return want == 0 && T[t].live >= cap_of[t];
}

static bool scarce(int t, int want)
{
    return want == 0 && T[t].live <= floor_of[t];
}

/* A write op returns false when it did not run: inside a transaction, a
 * write the server would refuse is not made (doom() makes one on
 * purpose). */
static bool skip(int want)
{
    return in_txn && dooms(want);
}

static bool op_user_create(void)
{
    spotdb_user in, *row = NULL;
    char email[48], username[40], password[24];
    long k = ++g_serial;
    int want = admin() ? 0 : SPOTDB_EDENIED, rc, role;

    if (skip(want) || full(TU, want))
        return false;
    role = chance(10) ? R_ADMIN : chance(50) ? R_USER : R_LAB;
    snprintf(email, sizeof email, "u%ld@tenancy.test", k);
    snprintf(username, sizeof username, "u%ld", k);
    snprintf(password, sizeof password, "pw-%ld", k);
    memset(&in, 0, sizeof in);
    in.email = email;
    in.username = username;
    in.full_name = "New User";
    in.role = role_name[role];
    in.is_active = !chance(10);
    S.creates++;
    rc = spotdb_user_create(&row, H(), &in,
                            SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME |
                            SPOTDB_USER_FULL_NAME | SPOTDB_USER_ROLE |
                            SPOTDB_USER_IS_ACTIVE, password);
    outcome(rc, want, true, "user_create");
    if (rc == 0) {
        o_user u;

        memset(&u, 0, sizeof u);
        memcpy(u.h.id, row->id, SPOTDB_UUID_SIZE);
        strcpy(u.email, email);
        strcpy(u.username, username);
        strcpy(u.full_name, "New User");
        strcpy(u.password, password);
        u.role = role;
        u.active = in.is_active;
        ot_add(&T[TU], &u);
    }
    spotdb_user_free(row);
    return true;
}

static bool op_user_update(void)
{
    char id[SPOTDB_UUID_SIZE], email[48], name[40];
    spotdb_user in, *row = NULL;
    uint64_t fields = 0;
    o_user *u;
    int want, rc, role = -1;
    bool guarded = false;

    if (chance(40) && g_act[0])
        memcpy(id, g_act, SPOTDB_UUID_SIZE);
    else
        pick_id(TU, id);
    u = FIND(o_user, TU, id);
    memset(&in, 0, sizeof in);
    snprintf(name, sizeof name, "name %ld", ++g_serial);
    in.full_name = name;
    fields = SPOTDB_USER_FULL_NAME;
    if (chance(15)) {
        snprintf(email, sizeof email, "e%ld@tenancy.test", g_serial);
        in.email = email;
        fields |= SPOTDB_USER_EMAIL;
    }
    if (chance(35) && !(u && u->seed_admin)) {
        if (chance(50)) {
            role = u && chance(80) ? (u->role == R_USER ? R_LAB : R_USER)
                                   : (int)rn(3) + R_ADMIN;
            in.role = role_name[role];
            fields |= SPOTDB_USER_ROLE;
            guarded = !u || role != u->role;
        } else {
            in.is_active = chance(75);
            fields |= SPOTDB_USER_IS_ACTIVE;
            guarded = !u || in.is_active != u->active;
        }
    }
    if (!u || !vis_user(u))
        want = SPOTDB_ENOTFOUND;
    else if (guarded && !admin())
        want = SPOTDB_EDENIED;
    else
        want = 0;
    if (skip(want))
        return false;
    S.updates++;
    rc = spotdb_user_update(&row, H(), id, &in, fields);
    if (outcome(rc, want, true, "user_update") && rc == SPOTDB_EDENIED &&
        strcmp(id, g_act) == 0)
        S.own_guard++;
    if (rc == 0 && u) {
        snprintf(u->full_name, sizeof u->full_name, "%s", name);
        if (fields & SPOTDB_USER_EMAIL)
            snprintf(u->email, sizeof u->email, "%s", email);
        if (fields & SPOTDB_USER_ROLE)
            u->role = role;
        if (fields & SPOTDB_USER_IS_ACTIVE)
            u->active = in.is_active;
        if (row && strcmp(row->id, id) != 0)
            bad("user_update returned user %s for %s", row->id, id);
    }
    spotdb_user_free(row);
    return true;
}

/* Admins delete users (and all they own); nobody else may. */
static bool op_user_delete(void)
{
    char id[SPOTDB_UUID_SIZE];
    o_user *u;
    int want, rc;

    pick_id(TU, id);
    u = FIND(o_user, TU, id);
    if (u && u->seed_admin)
        return false;
    if (!u || !vis_user(u) || !admin())
        want = SPOTDB_ENOTFOUND;
    else
        want = user_in_use(id) ? SPOTDB_EREFERENCE : 0;
    if (skip(want) || scarce(TU, want))
        return false;
    S.deletes++;
    rc = spotdb_user_delete(H(), id);
    outcome(rc, want, true, "user_delete");
    if (rc == 0 && u)
        kill_user(u);
    return true;
}

static bool op_set_password(void)
{
    char id[SPOTDB_UUID_SIZE], password[24];
    o_user *u;
    int want, rc;

    pick_id(TU, id);
    u = FIND(o_user, TU, id);
    if (u && !u->password[0])
        return false;
    want = u && vis_user(u) ? 0 : SPOTDB_ENOTFOUND;
    snprintf(password, sizeof password, "pw-%ld", ++g_serial);
    S.updates++;
    rc = spotdb_user_set_password(H(), id, password);
    outcome(rc, want, true, "user_set_password");
    if (rc == 0 && u)
        strcpy(u->password, password);
    return true;
}

/* A login is checked whoever the handle acts for, and leaves the scope
 * as it was. */
static bool op_authenticate(void)
{
    const o_user *u = (const o_user *)pick(TU, NULL);
    spotdb_user *row = NULL;
    bool right = chance(75);
    int want, rc;

    if (!u || !u->password[0])
        return false;
    want = right && u->active ? 0 : SPOTDB_EAUTH;
    S.logins++;
    rc = spotdb_user_authenticate(&row, H(), chance(50) ? u->email
                                                         : u->username,
                                  right ? u->password : "wrong password");
    outcome(rc, want, false, "user_authenticate");
    if (rc == 0 && strcmp(row->id, u->h.id) != 0)
        bad("user_authenticate returned user %s for %s", row->id, u->h.id);
    if (!same(spotdb_scope(H()), g_act))
        bad("user_authenticate left the scope at %s",
            spotdb_scope(H()) ? spotdb_scope(H()) : "(none)");
    spotdb_user_free(row);
    return true;
}

static bool op_account_create(void)
{
    char user_id[SPOTDB_UUID_SIZE], aws[13], arn[64], ext[32], name[40];
    spotdb_account in, *row = NULL;
    const o_user *u;
    bool prod = chance(40), by_name = chance(30);
    int want, rc;

    if (chance(55) && g_act[0])
        memcpy(user_id, g_act, SPOTDB_UUID_SIZE);
    else
        pick_id(TU, user_id);
    u = FIND(o_user, TU, user_id);
    fresh_aws(aws);
    snprintf(name, sizeof name, "account %s", aws);
    account_input(&in, arn, ext, user_id, aws, name, prod);
    if (by_name && !(u && vis_user(u)))
        want = SPOTDB_ENOTFOUND;    /* the owner lookup finds nobody */
    else if (!may_have_account(user_id, prod))
        want = SPOTDB_EDENIED;
    else
        want = u ? 0 : SPOTDB_EREFERENCE;
    if (skip(want) || full(TA, want))
        return false;
    S.creates++;
    if (by_name)
        rc = spotdb_account_create_for_username(&row, H(),
                                                u ? u->username : "nobody",
                                                &in, ACCOUNT_FIELDS);
    else
        rc = spotdb_account_create(&row, H(), &in,
                                   ACCOUNT_FIELDS | SPOTDB_ACCOUNT_USER_ID);
    if (outcome(rc, want, true, by_name ? "account_create_for_username"
                                        : "account_create") &&
        rc == SPOTDB_EDENIED && g_role == R_LAB && prod &&
        strcmp(user_id, g_act) == 0)
        S.lab_prod++;
    if (rc == 0) {
        o_account a;

        memset(&a, 0, sizeof a);
        memcpy(a.h.id, row->id, SPOTDB_UUID_SIZE);
        memcpy(a.user_id, row->user_id, SPOTDB_UUID_SIZE);
        strcpy(a.aws, aws);
        strcpy(a.name, name);
        a.prod = prod;
        a.active = true;
        ot_add(&T[TA], &a);
    }
    spotdb_account_free(row);
    return true;
}

static bool op_account_update(void)
{
    char id[SPOTDB_UUID_SIZE], owner[SPOTDB_UUID_SIZE], name[40];
    spotdb_account in, *row = NULL;
    uint64_t fields = SPOTDB_ACCOUNT_ACCOUNT_NAME;
    o_account *a;
    bool prod, moved = false;
    int want, rc;

    pick_id(TA, id);
    a = FIND(o_account, TA, id);
    memset(&in, 0, sizeof in);
    snprintf(name, sizeof name, "renamed %ld", ++g_serial);
    in.account_name = name;
    prod = a ? a->prod : false;
    if (chance(25)) {
        prod = a ? !a->prod : chance(50);
        in.environment_type = prod ? "PROD" : "LAB";
        fields |= SPOTDB_ACCOUNT_ENVIRONMENT_TYPE;
    }
    if (chance(15)) {
        in.is_active = a ? !a->active : false;
        fields |= SPOTDB_ACCOUNT_IS_ACTIVE;
    }
    snprintf(owner, sizeof owner, "%s", a ? a->user_id : "");
    if (chance(12)) {
        const o_user *u = (const o_user *)pick(TU, NULL);

        if (u && chance(85))
            memcpy(owner, u->h.id, SPOTDB_UUID_SIZE);
        else
            ghost_id(TU, owner);
        memcpy(in.user_id, owner, SPOTDB_UUID_SIZE);
        fields |= SPOTDB_ACCOUNT_USER_ID;
        moved = true;
    }
    if (!a || !vis_account(a))
        want = SPOTDB_ENOTFOUND;
    else if (!may_have_account(owner, prod))
        want = SPOTDB_EDENIED;
    else
        want = FIND(o_user, TU, owner) ? 0 : SPOTDB_EREFERENCE;
    if (skip(want))
        return false;
    S.updates++;
    rc = spotdb_account_update(&row, H(), id, &in, fields);
    if (outcome(rc, want, true, moved ? "account_update (owner)"
                                      : "account_update") &&
        rc == SPOTDB_EDENIED && g_role == R_LAB && prod &&
        strcmp(owner, g_act) == 0)
        S.lab_prod++;
    if (rc == 0 && a) {
        strcpy(a->name, name);
        a->prod = prod;
        if (fields & SPOTDB_ACCOUNT_IS_ACTIVE)
            a->active = in.is_active;
        memcpy(a->user_id, owner, SPOTDB_UUID_SIZE);
    }
    spotdb_account_free(row);
    return true;
}

static bool op_account_delete(void)
{
    char id[SPOTDB_UUID_SIZE];
    o_account *a;
    int want, rc;

    pick_id(TA, id);
    a = FIND(o_account, TA, id);
    want = a && vis_account(a) ? 0 : SPOTDB_ENOTFOUND;
    if (scarce(TA, want))
        return false;
    S.deletes++;
    rc = spotdb_account_delete(H(), id);
    outcome(rc, want, true, "account_delete");
    if (rc == 0 && a)
        kill_account(a);
    return true;
}

/* May the actor put a row under this account (instances) or instance
 * (logs)?  The parent's visibility decides; an admin needs it to exist. */
static int want_under(int parent_table, const char *parent_id)
{
    const ohdr *p = ot_find(&T[parent_table], parent_id);

    if (admin())
        return p ? 0 : SPOTDB_EREFERENCE;
    return p && visible(parent_table, p) ? 0 : SPOTDB_EDENIED;
}

static bool op_instance_create(void)
{
    char account_id[SPOTDB_UUID_SIZE], ec2[24];
    spotdb_instance in, *row = NULL;
    const o_account *a;
    bool by_aws = chance(25);
    int want, rc;

    pick_id(TA, account_id);
    a = FIND(o_account, TA, account_id);
    instance_input(&in, ec2, account_id);
    if (by_aws)
        want = a && vis_account(a) ? 0 : SPOTDB_ENOTFOUND;
    else
        want = want_under(TA, account_id);
    if (skip(want) || full(TI, want))
        return false;
    S.creates++;
    if (by_aws) {
        char aws[13];

        if (a)
            strcpy(aws, a->aws);
        else
            fresh_aws(aws);
        rc = spotdb_instance_create_for_aws_account(&row, H(), aws, &in,
                                                    INSTANCE_FIELDS);
    } else {
        rc = spotdb_instance_create(&row, H(), &in,
                                    INSTANCE_FIELDS |
                                    SPOTDB_INSTANCE_ACCOUNT_ID);
    }
    outcome(rc, want, true, by_aws ? "instance_create_for_aws_account"
                                   : "instance_create");
    if (rc == 0) {
        o_instance i = instance_of(&in, row->id);

        memcpy(i.account_id, row->account_id, SPOTDB_UUID_SIZE);
        ot_add(&T[TI], &i);
    }
    spotdb_instance_free(row);
    return true;
}

static bool op_instance_update(void)
{
    char id[SPOTDB_UUID_SIZE], account_id[SPOTDB_UUID_SIZE];
    spotdb_instance in, *row = NULL;
    uint64_t fields = SPOTDB_INSTANCE_PIPELINE_MODE;
    o_instance *i;
    const char *version = NULL;
    int want, rc;

    pick_id(TI, id);
    i = FIND(o_instance, TI, id);
    memset(&in, 0, sizeof in);
    in.pipeline_mode = i && i->linear ? "CLUSTER" : "LINEAR";
    if (chance(20)) {
        in.is_active = i ? !i->active : true;
        fields |= SPOTDB_INSTANCE_IS_ACTIVE;
    }
    if (chance(20)) {
        version = random_version();
        in.assigned_model_version = version;
        fields |= SPOTDB_INSTANCE_ASSIGNED_MODEL_VERSION;
    }
    snprintf(account_id, sizeof account_id, "%s", i ? i->account_id : "");
    if (chance(12)) {
        pick_id(TA, account_id);
        memcpy(in.account_id, account_id, SPOTDB_UUID_SIZE);
        fields |= SPOTDB_INSTANCE_ACCOUNT_ID;
    }
    if (!i || !vis_instance(i))
        want = SPOTDB_ENOTFOUND;
    else
        want = want_under(TA, account_id);
    if (skip(want))
        return false;
    S.updates++;
    rc = spotdb_instance_update(&row, H(), id, &in, fields);
    outcome(rc, want, true, fields & SPOTDB_INSTANCE_ACCOUNT_ID ?
            "instance_update (account)" : "instance_update");
    if (rc == 0 && i) {
        i->linear = !i->linear;
        if (fields & SPOTDB_INSTANCE_IS_ACTIVE)
            i->active = in.is_active;
        if (fields & SPOTDB_INSTANCE_ASSIGNED_MODEL_VERSION)
            snprintf(i->model_version, sizeof i->model_version, "%s",
                     version ? version : "");
        memcpy(i->account_id, account_id, SPOTDB_UUID_SIZE);
    }
    spotdb_instance_free(row);
    return true;
}

static bool op_instance_delete(void)
{
    char id[SPOTDB_UUID_SIZE];
    o_instance *i;
    int want, rc;

    pick_id(TI, id);
    i = FIND(o_instance, TI, id);
    want = i && vis_instance(i) ? 0 : SPOTDB_ENOTFOUND;
    if (scarce(TI, want))
        return false;
    S.deletes++;
    rc = spotdb_instance_delete(H(), id);
    outcome(rc, want, true, "instance_delete");
    if (rc == 0 && i)
        kill_instance(i);
    return true;
}

/* insert_many of 1 to 6 rows, some under parents the actor may not
 * write to: all stored, or none, naming the first refused row. */
#define BULK_MAX 6

static int bulk_parents(int parent, char (*ids)[SPOTDB_UUID_SIZE], size_t n,
                        int64_t *first_bad)
{
    int want = 0;

    *first_bad = -1;
    for (size_t k = 0; k < n; k++) {
        const ohdr *p = chance(80) ? pick(parent, admin() ? NULL : visible)
                                   : NULL;
        int w;

        if (p)
            memcpy(ids[k], p->id, SPOTDB_UUID_SIZE);
        else
            pick_id(parent, ids[k]);
        w = want_under(parent, ids[k]);
        if (w && !want) {
            want = w;
            *first_bad = (int64_t)k;
        }
    }
    return want;
}

static bool op_instance_bulk(void)
{
    char parents[BULK_MAX][SPOTDB_UUID_SIZE], ec2[BULK_MAX][24];
    char ids[BULK_MAX][SPOTDB_UUID_SIZE];
    spotdb_instance rows[BULK_MAX];
    size_t n = 1 + rn(BULK_MAX);
    int64_t first_bad, bad_row = -2;
    int want, rc;

    want = bulk_parents(TA, parents, n, &first_bad);
    if (skip(want) || full(TI, want))
        return false;
    for (size_t k = 0; k < n; k++)
        instance_input(&rows[k], ec2[k], parents[k]);
    S.bulk++;
    S.creates++;
    rc = spotdb_instance_insert_many(H(), rows, n,
                                     INSTANCE_FIELDS |
                                     SPOTDB_INSTANCE_ACCOUNT_ID,
                                     ids, &bad_row);
    outcome(rc, want, true, "instance_insert_many");
    if (rc != 0 && rc == want && bad_row != first_bad)
        bad("instance_insert_many: bad_row %lld, expected %lld",
            (long long)bad_row, (long long)first_bad);
    for (size_t k = 0; rc == 0 && k < n; k++) {
        o_instance i = instance_of(&rows[k], ids[k]);

        ot_add(&T[TI], &i);
    }
    return true;
}

static bool op_model_create(void)
{
    spotdb_model in, *row = NULL;
    char name[32], version[24];
    const o_model *same_version = chance(20) ?
                                  (const o_model *)pick(TM, NULL) : NULL;
    uint64_t fields = SPOTDB_MODEL_NAME | SPOTDB_MODEL_VERSION |
                      SPOTDB_MODEL_IS_ACTIVE;
    int want = writes_models() ? 0 : SPOTDB_EDENIED, rc;

    if (skip(want) || full(TM, want))
        return false;
    memset(&in, 0, sizeof in);
    snprintf(name, sizeof name, "model-%ld", ++g_serial);
    if (same_version)
        snprintf(version, sizeof version, "%s", same_version->version);
    else
        snprintf(version, sizeof version, "v%ld.0", g_serial);
    in.name = name;
    in.version = version;
    in.is_active = !chance(20);
    if (chance(50) && g_act[0]) {
        memcpy(in.created_by, g_act, SPOTDB_UUID_SIZE);
        fields |= SPOTDB_MODEL_CREATED_BY;
    }
    S.creates++;
    rc = spotdb_model_create(&row, H(), &in, fields);
    outcome(rc, want, true, "model_create");
    if (rc == 0) {
        o_model m;

        memset(&m, 0, sizeof m);
        memcpy(m.h.id, row->id, SPOTDB_UUID_SIZE);
        strcpy(m.name, name);
        strcpy(m.version, version);
        memcpy(m.created_by, row->created_by, SPOTDB_UUID_SIZE);
        m.active = in.is_active;
        ot_add(&T[TM], &m);
    }
    spotdb_model_free(row);
    return true;
}

/* Every acting user reads models; only admin and lab change them, and a
 * model `user` may not change is not there for their UPDATE. */
static bool op_model_update(void)
{
    char id[SPOTDB_UUID_SIZE], version[24] = "";
    spotdb_model in, *row = NULL;
    uint64_t fields = SPOTDB_MODEL_IS_ACTIVE | SPOTDB_MODEL_DESCRIPTION;
    o_model *m;
    int want, rc;

    pick_id(TM, id);
    m = FIND(o_model, TM, id);
    memset(&in, 0, sizeof in);
    in.is_active = m ? !m->active : true;
    in.description = "changed";
    if (chance(15)) {
        snprintf(version, sizeof version, "v%ld.1", ++g_serial);
        in.version = version;
        fields |= SPOTDB_MODEL_VERSION;
    }
    want = m && writes_models() ? 0 : SPOTDB_ENOTFOUND;
    S.updates++;
    rc = spotdb_model_update(&row, H(), id, &in, fields);
    outcome(rc, want, true, "model_update");
    if (rc == 0 && m) {
        m->active = in.is_active;
        if (version[0])
            strcpy(m->version, version);
    }
    spotdb_model_free(row);
    return true;
}

static bool op_model_delete(void)
{
    char id[SPOTDB_UUID_SIZE];
    o_model *m;
    int want, rc;

    pick_id(TM, id);
    m = FIND(o_model, TM, id);
    if (!m || !writes_models())
        want = SPOTDB_ENOTFOUND;
    else
        want = model_in_use(id) ? SPOTDB_EREFERENCE : 0;
    if (skip(want) || scarce(TM, want))
        return false;
    S.deletes++;
    rc = spotdb_model_delete(H(), id);
    outcome(rc, want, true, "model_delete");
    if (rc == 0 && m)
        ot_kill(&T[TM], &m->h);
    return true;
}

static bool op_log_create(void)
{
    char instance_id[SPOTDB_UUID_SIZE];
    spotdb_experiment_log in, *row = NULL;
    int want, rc;

    pick_id(TI, instance_id);
    want = want_under(TI, instance_id);
    if (skip(want) || full(TL, want))
        return false;
    log_input(&in, instance_id);
    S.creates++;
    rc = spotdb_experiment_log_create(&row, H(), &in, LOG_FIELDS);
    outcome(rc, want, true, "experiment_log_create");
    if (rc == 0) {
        o_log l = log_of(&in, row->id);

        ot_add(&T[TL], &l);
    }
    spotdb_experiment_log_free(row);
    return true;
}

static bool op_log_bulk(void)
{
    char parents[BULK_MAX][SPOTDB_UUID_SIZE], ids[BULK_MAX][SPOTDB_UUID_SIZE];
    spotdb_experiment_log rows[BULK_MAX];
    size_t n = 1 + rn(BULK_MAX);
    int64_t first_bad, bad_row = -2;
    int want, rc;

    want = bulk_parents(TI, parents, n, &first_bad);
    if (skip(want) || full(TL, want))
        return false;
    for (size_t k = 0; k < n; k++)
        log_input(&rows[k], parents[k]);
    S.bulk++;
    S.creates++;
    rc = spotdb_experiment_log_insert_many(H(), rows, n, LOG_FIELDS, ids,
                                           &bad_row);
    outcome(rc, want, true, "experiment_log_insert_many");
    if (rc != 0 && rc == want && bad_row != first_bad)
        bad("experiment_log_insert_many: bad_row %lld, expected %lld",
            (long long)bad_row, (long long)first_bad);
    for (size_t k = 0; rc == 0 && k < n; k++) {
        o_log l = log_of(&rows[k], ids[k]);

        ot_add(&T[TL], &l);
    }
    return true;
}

static bool op_log_update(void)
{
    char id[SPOTDB_UUID_SIZE], instance_id[SPOTDB_UUID_SIZE];
    spotdb_experiment_log in, *row = NULL;
    uint64_t fields = SPOTDB_EXPERIMENT_LOG_DECISION |
                      SPOTDB_EXPERIMENT_LOG_IS_SHADOW_RUN;
    o_log *l;
    int want, rc, decision = (int)rn(3);

    pick_id(TL, id);
    l = FIND(o_log, TL, id);
    memset(&in, 0, sizeof in);
    in.decision = decisions[decision];
    in.is_shadow_run = l ? !l->shadow : false;
    snprintf(instance_id, sizeof instance_id, "%s",
             l ? l->instance_id : "");
    if (chance(12)) {
        pick_id(TI, instance_id);
        memcpy(in.instance_id, instance_id, SPOTDB_UUID_SIZE);
        fields |= SPOTDB_EXPERIMENT_LOG_INSTANCE_ID;
    }
    if (!l || !vis_log(l))
        want = SPOTDB_ENOTFOUND;
    else
        want = want_under(TI, instance_id);
    if (skip(want))
        return false;
    S.updates++;
    rc = spotdb_experiment_log_update(&row, H(), id, &in, fields);
    outcome(rc, want, true, fields & SPOTDB_EXPERIMENT_LOG_INSTANCE_ID ?
            "experiment_log_update (instance)" : "experiment_log_update");
    if (rc == 0 && l) {
        l->decision = decision;
        l->shadow = in.is_shadow_run;
        memcpy(l->instance_id, instance_id, SPOTDB_UUID_SIZE);
    }
    spotdb_experiment_log_free(row);
    return true;
}

static bool op_log_delete(void)
{
    char id[SPOTDB_UUID_SIZE];
    o_log *l;
    int want, rc;

    pick_id(TL, id);
    l = FIND(o_log, TL, id);
    want = l && vis_log(l) ? 0 : SPOTDB_ENOTFOUND;
    if (scarce(TL, want))
        return false;
    S.deletes++;
    rc = spotdb_experiment_log_delete(H(), id);
    outcome(rc, want, true, "experiment_log_delete");
    if (rc == 0 && l)
        kill_log(l);
    return true;
}

/* ---- the mix ------------------------------------------------------------ */

enum op_kind {
    O_GET, O_LOOKUP, O_COUNT, O_LIST, O_STREAM, O_ACTIVE, O_RECENT,
    O_USER_CREATE, O_USER_UPDATE, O_USER_DELETE, O_PASSWORD, O_LOGIN,
    O_ACCOUNT_CREATE, O_ACCOUNT_UPDATE, O_ACCOUNT_DELETE,
    O_INSTANCE_CREATE, O_INSTANCE_BULK, O_INSTANCE_UPDATE, O_INSTANCE_DELETE,
    O_MODEL_CREATE, O_MODEL_UPDATE, O_MODEL_DELETE,
    O_LOG_CREATE, O_LOG_BULK, O_LOG_UPDATE, O_LOG_DELETE, O_KINDS
};
_Static_assert(O_KINDS < 32, "S.denied_by has room for every kind");

/* Weights per 1,000 operations: mostly the cheap calls. */
static const unsigned weight[O_KINDS] = {
    [O_GET] = 260, [O_LOOKUP] = 120, [O_COUNT] = 120, [O_LIST] = 70,
    [O_STREAM] = 15, [O_ACTIVE] = 15, [O_RECENT] = 15,
    [O_USER_CREATE] = 4, [O_USER_UPDATE] = 18, [O_USER_DELETE] = 3,
    [O_PASSWORD] = 2, [O_LOGIN] = 3,
    [O_ACCOUNT_CREATE] = 22, [O_ACCOUNT_UPDATE] = 25, [O_ACCOUNT_DELETE] = 10,
    [O_INSTANCE_CREATE] = 28, [O_INSTANCE_BULK] = 5,
    [O_INSTANCE_UPDATE] = 25, [O_INSTANCE_DELETE] = 14,
    [O_MODEL_CREATE] = 6, [O_MODEL_UPDATE] = 10, [O_MODEL_DELETE] = 4,
    [O_LOG_CREATE] = 40, [O_LOG_BULK] = 6, [O_LOG_UPDATE] = 30,
    [O_LOG_DELETE] = 30,
};

static enum op_kind pick_kind(void)
{
    unsigned total = 0, r;

    for (int k = 0; k < O_KINDS; k++)
        total += weight[k];
    r = rn(total);
    for (int k = 0; k < O_KINDS; k++) {
        if (r < weight[k])
            return (enum op_kind)k;
        r -= weight[k];
    }
    return O_GET;
}

/* Run one operation; false when it chose not to (see skip()). */
static bool run_op(enum op_kind k)
{
    int t = (int)rn(NTABLES);

    g_kind = (int)k;
    switch (k) {
    case O_GET: op_get(t); return true;
    case O_LOOKUP: op_lookup(t == TL ? (int)rn(4) : t); return true;
    case O_COUNT: op_count(t); return true;
    case O_LIST: op_list(t); return true;
    case O_STREAM: op_stream(t); return true;
    case O_ACTIVE: op_active_view(); return true;
    case O_RECENT: op_recent_view(); return true;
    case O_USER_CREATE: return op_user_create();
    case O_USER_UPDATE: return op_user_update();
    case O_USER_DELETE: return op_user_delete();
    case O_PASSWORD: return op_set_password();
    case O_LOGIN: return op_authenticate();
    case O_ACCOUNT_CREATE: return op_account_create();
    case O_ACCOUNT_UPDATE: return op_account_update();
    case O_ACCOUNT_DELETE: return op_account_delete();
    case O_INSTANCE_CREATE: return op_instance_create();
    case O_INSTANCE_BULK: return op_instance_bulk();
    case O_INSTANCE_UPDATE: return op_instance_update();
    case O_INSTANCE_DELETE: return op_instance_delete();
    case O_MODEL_CREATE: return op_model_create();
    case O_MODEL_UPDATE: return op_model_update();
    case O_MODEL_DELETE: return op_model_delete();
    case O_LOG_CREATE: return op_log_create();
    case O_LOG_BULK: return op_log_bulk();
    case O_LOG_UPDATE: return op_log_update();
    default: return op_log_delete();
    }
}

/* ---- actors, handles, transactions -------------------------------------- */

static bool is_active_user(int t, const ohdr *r)
{
    (void)t;
    return ((const o_user *)r)->active;
}

/* A random acting user: mostly an active user, else any user the
 * database has (inactive ones too), sometimes a deleted or unknown one,
 * sometimes nobody. */
static void choose_actor(char *out)
{
    const ohdr *u = NULL;
    unsigned r = rn(100);

    if (r < 3) {
        out[0] = '\0';
        return;
    }
    if (r >= 6)
        u = pick(TU, r < 20 ? NULL : is_active_user);
    if (!u) {
        ghost_id(TU, out);
        return;
    }
    memcpy(out, u->id, SPOTDB_UUID_SIZE);
}

static void set_actor(const char *id)
{
    int rc = spotdb_set_scope(H(), id[0] ? id : NULL);

    ck_assert_msg(rc == 0, "set_scope: %s", spotdb_errmsg(H()));
    ck_assert_msg(same(spotdb_scope(H()), id), "spotdb_scope() is %s, not %s",
                  spotdb_scope(H()) ? spotdb_scope(H()) : "NULL", id);
    memcpy(g_act, id, SPOTDB_UUID_SIZE);
    S.switches++;
    trace("set_scope");
}

static void refresh_role(void)
{
    g_role = g_act[0] ? role_of(g_act) : R_NONE;
}

static void tally_actor(void)
{
    if (!g_act[0])
        S.no_actor++;
    else if (!FIND(o_user, TU, g_act))
        S.ghost_actors++;
    else
        S.actors[g_role]++;
}

static void snapshot(void)
{
    for (int t = 0; t < NTABLES; t++)
        ot_copy(&saved[t], &T[t]);
}

static void restore(bool keep)
{
    for (int t = 0; t < NTABLES; t++) {
        if (keep) {
            ot_free(&saved[t]);
        } else {
            ot_free(&T[t]);
            T[t] = saved[t];
            memset(&saved[t], 0, sizeof saved[t]);
        }
    }
}

/* A write the actor may not make, to doom the transaction: an account
 * for someone else, or (admins may) a log under an instance that is not
 * there.  Then any statement fails until the transaction ends. */
static void doom(void)
{
    char instance_id[SPOTDB_UUID_SIZE];
    spotdb_experiment_log in;
    int64_t n = -1;
    int rc;

    g_kind = O_KINDS;
    if (admin()) {
        random_uuid(instance_id);
        log_input(&in, instance_id);
        S.creates++;
        rc = spotdb_experiment_log_create(NULL, H(), &in, LOG_FIELDS);
        outcome(rc, SPOTDB_EREFERENCE, true, "experiment_log_create (doom)");
    } else {
        char aws[13], arn[64], ext[32], other[SPOTDB_UUID_SIZE];
        spotdb_account acc;
        const o_user *u = (const o_user *)pick(TU, NULL);

        snprintf(other, sizeof other, "%s",
                 u && strcmp(u->h.id, g_act) != 0 ? u->h.id :
                 "00000000-0000-4000-8000-000000000000");
        fresh_aws(aws);
        account_input(&acc, arn, ext, other, aws, "not mine", false);
        S.creates++;
        rc = spotdb_account_create(NULL, H(), &acc,
                                   ACCOUNT_FIELDS | SPOTDB_ACCOUNT_USER_ID);
        outcome(rc, SPOTDB_EDENIED, true, "account_create (doom)");
    }
    S.ops++;
    rc = spotdb_user_count(&n, H(), NULL);
    if (rc != SPOTDB_ESQL)
        bad("count in a doomed transaction: %d (%s), expected ESQL", rc,
            spotdb_strerror(rc));
    txn_doomed = true;
}

enum { END_COMMIT, END_ROLLBACK, END_DOOM };

static void txn_begin(void)
{
    int rc;

    snapshot();
    rc = spotdb_begin(H());
    ck_assert_msg(rc == 0, "begin: %s", spotdb_errmsg(H()));
    in_txn = true;
    txn_doomed = false;
    S.txns++;
    trace("begin");
}

static void txn_end(int how)
{
    int rc;

    if (how == END_DOOM && !txn_doomed)
        doom();
    if (txn_doomed) {
        rc = spotdb_commit(H());
        if (rc != SPOTDB_ESQL)
            bad("commit of a doomed transaction: %d (%s), expected ESQL", rc,
                spotdb_strerror(rc));
        S.doomed++;
        restore(false);
    } else if (how == END_ROLLBACK) {
        rc = spotdb_rollback(H());
        ck_assert_msg(rc == 0, "rollback: %s", spotdb_errmsg(H()));
        S.rolled_back++;
        restore(false);
    } else {
        rc = spotdb_commit(H());
        ck_assert_msg(rc == 0, "commit: %s", spotdb_errmsg(H()));
        restore(true);
    }
    trace("end %d", how);
    in_txn = txn_doomed = false;
}

/* ---- the database against the oracle ------------------------------------ */

static PGresult *query(const char *sql)
{
    PGresult *r = PQexec(pg, sql);

    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql,
                  PQerrorMessage(pg));
    return r;
}

static bool col_is(PGresult *r, int row, int col, const char *v)
{
    return strcmp(PQgetvalue(r, row, col), v) == 0;
}

static bool col_flag(PGresult *r, int row, int col, bool v)
{
    return col_is(r, row, col, v ? "t" : "f");
}

/* Every stored row must be the oracle's, and every oracle row stored:
 * a row changed, added or removed behind the oracle's back is a
 * cross-tenant change. */
static long verify_table(int t, const char *sql)
{
    PGresult *r = query(sql);
    long diff = 0;

    for (int k = 0; k < PQntuples(r); k++) {
        const ohdr *h = ot_find(&T[t], PQgetvalue(r, k, 0));
        bool ok = h != NULL;

        if (ok && t == TU) {
            const o_user *u = (const o_user *)h;

            ok = col_is(r, k, 1, u->email) && col_is(r, k, 2, u->username) &&
                 col_is(r, k, 3, u->full_name) &&
                 col_is(r, k, 4, role_name[u->role]) &&
                 col_flag(r, k, 5, u->active);
        } else if (ok && t == TA) {
            const o_account *a = (const o_account *)h;

            ok = col_is(r, k, 1, a->user_id) && col_is(r, k, 2, a->aws) &&
                 col_is(r, k, 3, a->name) &&
                 col_is(r, k, 4, a->prod ? "PROD" : "LAB") &&
                 col_flag(r, k, 5, a->active);
        } else if (ok && t == TI) {
            const o_instance *i = (const o_instance *)h;

            ok = col_is(r, k, 1, i->account_id) && col_is(r, k, 2, i->ec2) &&
                 col_is(r, k, 3, i->linear ? "LINEAR" : "CLUSTER") &&
                 col_flag(r, k, 4, i->active) &&
                 col_is(r, k, 5, i->model_version);
        } else if (ok && t == TM) {
            const o_model *m = (const o_model *)h;

            ok = col_is(r, k, 1, m->name) && col_is(r, k, 2, m->version) &&
                 col_flag(r, k, 3, m->active) &&
                 col_is(r, k, 4, m->created_by);
        } else if (ok) {
            const o_log *l = (const o_log *)h;

            ok = col_is(r, k, 1, l->instance_id) &&
                 col_is(r, k, 2, l->model_id) &&
                 col_is(r, k, 3, decisions[l->decision]) &&
                 col_flag(r, k, 4, l->shadow);
        }
        if (!ok) {
            diff++;
            bad("stored %s row %s differs from the oracle (%s)",
                table_name[t], PQgetvalue(r, k, 0),
                h ? "changed" : "unknown");
        }
    }
    if ((size_t)PQntuples(r) != T[t].live) {
        diff++;
        bad("%d %s rows stored, the oracle has %zu", PQntuples(r),
            table_name[t], T[t].live);
    }
    S.verified_rows += PQntuples(r);
    PQclear(r);
    return diff;
}

static long verify_database(void)
{
    long diff = 0;

    diff += verify_table(TU, "SELECT id, email, username, "
                         "coalesce(full_name, ''), role, is_active "
                         "FROM users");
    diff += verify_table(TA, "SELECT id, user_id, account_id, account_name, "
                         "environment_type, is_active FROM accounts");
    diff += verify_table(TI, "SELECT id, account_id, instance_id, "
                         "pipeline_mode, is_active, "
                         "coalesce(assigned_model_version, '') "
                         "FROM instances");
    diff += verify_table(TM, "SELECT id, name, version, is_active, "
                         "coalesce(created_by::text, '') "
                         "FROM model_registry");
    diff += verify_table(TL, "SELECT id, instance_id, "
                         "coalesce(model_id::text, ''), decision, "
                         "is_shadow_run FROM experiment_logs");
    S.cross_changed += diff;
    return diff;
}

/* ---- setup -------------------------------------------------------------- */

static void open_app(spotdb_db **out)
{
    int rc = spotdb_open(out, app_conninfo, NULL);

    ck_assert_msg(rc == 0, "open as %s: %s", APP_ROLE, spotdb_last_errmsg());
}

static void setup(void)
{
    th_setup_migrated_db();
    memset(&S, 0, sizeof S);
    memset(T, 0, sizeof T);
    in_txn = txn_doomed = false;
    pg = th_connect(th_db_conninfo());
    th_login_role(APP_ROLE, "spotdb_app");
    app_conninfo = th_conninfo_as(APP_ROLE);
    su = th_open();
    open_app(&app[0]);
    open_app(&app[1]);
    ot_init(&T[TU], sizeof(o_user));
    ot_init(&T[TA], sizeof(o_account));
    ot_init(&T[TI], sizeof(o_instance));
    ot_init(&T[TM], sizeof(o_model));
    ot_init(&T[TL], sizeof(o_log));
}

static void teardown(void)
{
    if (in_txn)
        restore(true);
    for (int t = 0; t < NTABLES; t++)
        ot_free(&T[t]);
    spotdb_close(app[0]);
    spotdb_close(app[1]);
    spotdb_close(su);
    app[0] = app[1] = su = NULL;
    free(app_conninfo);
    app_conninfo = NULL;
    if (pg)
        PQfinish(pg);
    pg = NULL;
    th_teardown_db();
}

/* Seeding goes through the superuser's unscoped handle, which the
 * policies do not hold; the oracle records what it stored. */
static o_user *seed_user(int role, bool active, bool seed_admin)
{
    spotdb_user in, *row = NULL;
    o_user u;
    long k = ++g_serial;
    int rc;

    memset(&u, 0, sizeof u);
    snprintf(u.email, sizeof u.email, "seed%ld@tenancy.test", k);
    snprintf(u.username, sizeof u.username, "seed%ld", k);
    snprintf(u.full_name, sizeof u.full_name, "Seed %ld", k);
    snprintf(u.password, sizeof u.password, "pw-%ld", k);
    u.role = role;
    u.active = active;
    u.seed_admin = seed_admin;
    memset(&in, 0, sizeof in);
    in.email = u.email;
    in.username = u.username;
    in.full_name = u.full_name;
    in.role = role_name[role];
    in.is_active = active;
    rc = spotdb_user_create(&row, su, &in, SPOTDB_USER_EMAIL |
                            SPOTDB_USER_USERNAME | SPOTDB_USER_FULL_NAME |
                            SPOTDB_USER_ROLE | SPOTDB_USER_IS_ACTIVE,
                            u.password);
    ck_assert_msg(rc == 0, "seed user: %s", spotdb_errmsg(su));
    memcpy(u.h.id, row->id, SPOTDB_UUID_SIZE);
    spotdb_user_free(row);
    return (o_user *)ot_add(&T[TU], &u);
}

static void seed_account(const char *user_id, bool prod, bool active)
{
    char aws[13], arn[64], ext[32], name[40];
    spotdb_account in, *row = NULL;
    o_account a;
    int rc;

    fresh_aws(aws);
    snprintf(name, sizeof name, "seed account %s", aws);
    account_input(&in, arn, ext, user_id, aws, name, prod);
    in.is_active = active;
    rc = spotdb_account_create(&row, su, &in, ACCOUNT_FIELDS |
                               SPOTDB_ACCOUNT_USER_ID |
                               SPOTDB_ACCOUNT_IS_ACTIVE);
    ck_assert_msg(rc == 0, "seed account: %s", spotdb_errmsg(su));
    memset(&a, 0, sizeof a);
    memcpy(a.h.id, row->id, SPOTDB_UUID_SIZE);
    memcpy(a.user_id, user_id, SPOTDB_UUID_SIZE);
    strcpy(a.aws, aws);
    strcpy(a.name, name);
    a.prod = prod;
    a.active = active;
    spotdb_account_free(row);
    ot_add(&T[TA], &a);
    for (int k = 0; k < 3; k++) {
        char ec2[24], log_ids[2][SPOTDB_UUID_SIZE];
        spotdb_instance inst, *irow = NULL;
        spotdb_experiment_log logs[2];
        o_instance i;

        instance_input(&inst, ec2, a.h.id);
        rc = spotdb_instance_create(&irow, su, &inst, INSTANCE_FIELDS |
                                    SPOTDB_INSTANCE_ACCOUNT_ID);
        ck_assert_msg(rc == 0, "seed instance: %s", spotdb_errmsg(su));
        i = instance_of(&inst, irow->id);
        spotdb_instance_free(irow);
        ot_add(&T[TI], &i);
        for (int j = 0; j < 2; j++)
            log_input(&logs[j], i.h.id);
        rc = spotdb_experiment_log_insert_many(su, logs, 2, LOG_FIELDS,
                                               log_ids, NULL);
        ck_assert_msg(rc == 0, "seed logs: %s", spotdb_errmsg(su));
        for (int j = 0; j < 2; j++) {
            o_log l = log_of(&logs[j], log_ids[j]);

            ot_add(&T[TL], &l);
        }
    }
}

static void seed_model(const char *name, const char *version,
                       const char *created_by)
{
    spotdb_model in, *row = NULL;
    o_model m;
    int rc;

    memset(&in, 0, sizeof in);
    in.name = name;
    in.version = version;
    in.is_active = true;
    if (created_by)
        memcpy(in.created_by, created_by, SPOTDB_UUID_SIZE);
    rc = spotdb_model_create(&row, su, &in, SPOTDB_MODEL_NAME |
                             SPOTDB_MODEL_VERSION | SPOTDB_MODEL_IS_ACTIVE |
                             SPOTDB_MODEL_CREATED_BY);
    ck_assert_msg(rc == 0, "seed model: %s", spotdb_errmsg(su));
    memset(&m, 0, sizeof m);
    memcpy(m.h.id, row->id, SPOTDB_UUID_SIZE);
    snprintf(m.name, sizeof m.name, "%s", name);
    snprintf(m.version, sizeof m.version, "%s", version);
    memcpy(m.created_by, row->created_by, SPOTDB_UUID_SIZE);
    m.active = true;
    spotdb_model_free(row);
    ot_add(&T[TM], &m);
}

/* 3 admins, 5 users, 4 lab users and an inactive one, besides the
 * migration's default admin; each owns PROD and LAB accounts (lab users
 * too: an admin may give them one, which they then cannot see), with
 * three instances each and two logs per instance; six models, two of
 * them sharing a version. */
static void seed(void)
{
    static const int roles[] = { R_ADMIN, R_ADMIN, R_ADMIN, R_USER, R_USER,
                                 R_USER, R_USER, R_USER, R_LAB, R_LAB,
                                 R_LAB, R_LAB, R_LAB };
    char ids[13][SPOTDB_UUID_SIZE], name[32], version[24];
    spotdb_user *admin_row = NULL;
    o_user def;
    int rc;

    rc = spotdb_user_get_by_username(&admin_row, su, "admin");
    ck_assert_msg(rc == 0, "default admin: %s", spotdb_errmsg(su));
    memset(&def, 0, sizeof def);
    memcpy(def.h.id, admin_row->id, SPOTDB_UUID_SIZE);
    snprintf(def.email, sizeof def.email, "%s", admin_row->email);
    snprintf(def.username, sizeof def.username, "%s", admin_row->username);
    snprintf(def.full_name, sizeof def.full_name, "%s",
             admin_row->full_name ? admin_row->full_name : "");
    def.role = R_ADMIN;
    def.active = true;
    def.seed_admin = true;
    spotdb_user_free(admin_row);
    ot_add(&T[TU], &def);
    for (int k = 0; k < 13; k++) {
        o_user *u = seed_user(roles[k], k != 12, roles[k] == R_ADMIN);

        memcpy(ids[k], u->h.id, SPOTDB_UUID_SIZE);
    }
    for (int k = 0; k < 6; k++) {
        snprintf(name, sizeof name, "seed-model-%d", k);
        snprintf(version, sizeof version, "v%d.0", k == 5 ? 1 : k);
        seed_model(name, version, k % 2 ? ids[k % 3] : NULL);
    }
    for (int k = 0; k < 13; k++) {
        seed_account(ids[k], true, true);
        if (roles[k] == R_ADMIN)
            continue;
        seed_account(ids[k], false, true);
        seed_account(ids[k], chance(50), k % 4 != 0);
    }
}

/* Outside a transaction: now and then plan one (its length, and how it
 * ends) on either handle; else maybe change handles. */
static long plan_transaction(int *how)
{
    if (chance(5)) {
        cur = (int)rn(2);
        *how = chance(65) ? END_COMMIT : chance(50) ? END_ROLLBACK
                                                    : END_DOOM;
        return 5 + (long)rn(30);
    }
    if (chance(20))
        cur = !cur;
    return 0;
}

/* A new actor for most operations outside transactions (a few in a row
 * keep theirs); inside, now and then, which sends the scope at once.
 * The handle in use acts for them. */
static void next_actor(long *keep)
{
    char next[SPOTDB_UUID_SIZE];

    if (in_txn ? chance(12) : (*keep)-- <= 0) {
        choose_actor(next);
        if (!same(spotdb_scope(H()), next)) {
            set_actor(next);
            if (in_txn)
                S.txn_switches++;
        }
        memcpy(g_act, next, SPOTDB_UUID_SIZE);
        *keep = (long)rn(4);
    } else if (!same(spotdb_scope(H()), g_act)) {
        set_actor(g_act);
    }
}

/* ---- the test ----------------------------------------------------------- */

static long ops_wanted(void)
{
    const char *s = getenv("SPOTDB_TENANCY_OPS");

    if (s && *s)
        return strtol(s, NULL, 10);
    return th_under_valgrind() ? OPS_VALGRIND : OPS_PLAIN;
}

/* Scopes that must be refused, and a role that must see nothing. */
static void sanity(void)
{
    int64_t n = -1;

    ck_assert_int_eq(spotdb_set_scope(su, AT(o_user, TU, 0)->h.id),
                     SPOTDB_EINVAL);
    ck_assert_int_eq(spotdb_set_scope(app[0], "not-a-uuid"), SPOTDB_EINVAL);
    ck_assert_ptr_null(spotdb_scope(app[0]));
    ck_assert_int_eq(spotdb_user_count(&n, app[0], NULL), 0);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(spotdb_experiment_log_count(&n, app[1], NULL), 0);
    ck_assert_int_eq(n, 0);
}

START_TEST(random_operations_stay_in_their_tenant)
{
    long total = ops_wanted(), txn_left = 0, keep = 0;
    long next_verify = total / 10 > 0 ? total / 10 : 1;
    int txn_end_how = END_COMMIT;
    double t0;

    g_seed = test_seed();
    g_time = spotdb_now_us() - INT64_C(86400000000);
    fprintf(stderr, "tenancy: seed %u (SPOTDB_TEST_SEED replays it), %ld "
            "operations%s\n", g_seed, total,
            th_under_valgrind() ? " (reduced under valgrind)" : "");
    seed();
    sanity();
    clear_filters();
    t0 = th_now_s();
    for (g_op = 0; g_op < total;) {
        if (!in_txn) {
            for (int t = 0; t < NTABLES; t++)
                ot_compact(&T[t]);
            if (g_op >= next_verify) {
                verify_database();
                next_verify += total / 10 > 0 ? total / 10 : 1;
            }
            if ((txn_left = plan_transaction(&txn_end_how)) > 0)
                keep = 0;
        }
        next_actor(&keep);
        if (txn_left > 0 && !in_txn)
            txn_begin();
        refresh_role();
        if (!run_op(pick_kind()))
            continue;
        tally_actor();
        S.ops++;
        g_op++;
        if (in_txn && (txn_doomed || --txn_left <= 0 || g_op == total)) {
            refresh_role();
            txn_end(txn_doomed ? END_DOOM : txn_end_how);
            txn_left = 0;
        }
    }
    ck_assert(!in_txn);
    verify_database();
    fprintf(stderr,
            "tenancy: %ld operations (%ld gets, %ld lookups by key, %ld "
            "lists in %ld pages, %ld counts, %ld streams, %ld view reads, "
            "%ld creates of which %ld bulk, %ld updates, %ld deletes, %ld "
            "logins; %ld transactions: %ld rolled back, %ld doomed, %ld "
            "scope changes inside) as %ld admin, %ld user, %ld lab, %ld "
            "inactive-or-unknown and %ld no-user actions, %ld scope "
            "switches; %ld rows returned, %ld cross-tenant rows seen, %ld "
            "changed; %ld writes done, %ld denied (EDENIED) and %ld not "
            "found (ENOTFOUND) as expected, %ld other refusals; %ld stored "
            "rows compared; in %.1f s\n",
            S.ops, S.gets, S.lookups, S.lists, S.pages, S.counts, S.streams,
            S.views, S.creates, S.bulk, S.updates, S.deletes, S.logins,
            S.txns, S.rolled_back, S.doomed, S.txn_switches,
            S.actors[R_ADMIN], S.actors[R_USER], S.actors[R_LAB],
            S.actors[R_NONE] + S.ghost_actors, S.no_actor, S.switches,
            S.rows, S.cross_seen, S.cross_changed, S.writes_ok, S.denied,
            S.notfound, S.refused, S.verified_rows, th_now_s() - t0);
    fprintf(stderr, "tenancy: refused as expected (EDENIED) by call: "
            "user_create %ld, user_update %ld, account_create %ld, "
            "account_update %ld, instance_create %ld, instance_update %ld, "
            "instance_insert_many %ld, model_create %ld, "
            "experiment_log_create %ld, experiment_log_update %ld, "
            "experiment_log_insert_many %ld (of which a lab user's own "
            "PROD account %ld, own role or is_active %ld), doomed "
            "transactions %ld\n",
            S.denied_by[O_USER_CREATE], S.denied_by[O_USER_UPDATE],
            S.denied_by[O_ACCOUNT_CREATE], S.denied_by[O_ACCOUNT_UPDATE],
            S.denied_by[O_INSTANCE_CREATE], S.denied_by[O_INSTANCE_UPDATE],
            S.denied_by[O_INSTANCE_BULK], S.denied_by[O_MODEL_CREATE],
            S.denied_by[O_LOG_CREATE], S.denied_by[O_LOG_UPDATE],
            S.denied_by[O_LOG_BULK], S.lab_prod, S.own_guard, S.doomed);
    ck_assert_msg(S.cross_seen == 0, "%ld cross-tenant rows seen (seed %u)",
                  S.cross_seen, g_seed);
    ck_assert_msg(S.cross_changed == 0, "%ld cross-tenant changes (seed %u)",
                  S.cross_changed, g_seed);
    ck_assert_msg(S.mismatches == 0, "%ld outcomes differ from the oracle "
                  "(seed %u)", S.mismatches, g_seed);
    ck_assert_int_ge(S.ops, total);
    /* A full run reaches every kind of refusal (a shorter one may not). */
    if (total >= OPS_PLAIN) {
        static const int kinds[] = {
            O_USER_CREATE, O_USER_UPDATE, O_ACCOUNT_CREATE, O_ACCOUNT_UPDATE,
            O_INSTANCE_CREATE, O_INSTANCE_UPDATE, O_INSTANCE_BULK,
            O_MODEL_CREATE, O_LOG_CREATE, O_LOG_UPDATE, O_LOG_BULK
        };

        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
            ck_assert_msg(S.denied_by[kinds[k]] > 0, "no refusal of kind %d",
                          kinds[k]);
        ck_assert_int_gt(S.lab_prod, 0);
        ck_assert_int_gt(S.own_guard, 0);
        ck_assert_int_gt(S.doomed, 0);
        ck_assert_int_gt(S.txn_switches, 0);
        ck_assert_int_gt(S.no_actor, 0);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tenancy_random");
    TCase *tc = tcase_create("oracle");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, random_operations_stay_in_their_tenant);
    suite_add_tcase(s, tc);
    return th_run(s);
}
