/*
 * Schema v1 as an independent oracle.
 *
 * Each test migrates a fresh database with the library, then reads the
 * catalog through a raw libpq connection and compares it with tables
 * written by hand from ../shared/spec/schema-v1.md (the contract), not from
 * sql/0001_initial.sql: if the migration and the spec disagree, these
 * tests say where.
 */
#include <crypt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

/* ---- the spec, by hand --------------------------------------------------- */

/* One column: name, format_type(), NOT NULL, pg_get_expr() of the default
 * (NULL: no default). */
typedef struct colspec {
    const char *name;
    const char *type;
    bool notnull;
    const char *def;
} colspec;

#define VC(n) "character varying(" #n ")"
#define TS "timestamp without time zone"
#define UUID_DEF "uuid_generate_v4()"
#define NOW_DEF "CURRENT_TIMESTAMP"

static const colspec users_cols[] = {
    { "id", "uuid", true, UUID_DEF },
    { "email", VC(255), true, NULL },
    { "username", VC(50), true, NULL },
    { "hashed_password", VC(255), true, NULL },
    { "full_name", VC(100), false, NULL },
    { "role", VC(20), true, "'user'::character varying" },
    { "is_active", "boolean", true, "true" },
    { "created_at", TS, true, NOW_DEF },
    { "updated_at", TS, false, NOW_DEF },
    { "last_login", TS, false, NULL },
};

static const colspec accounts_cols[] = {
    { "id", "uuid", true, UUID_DEF },
    { "user_id", "uuid", true, NULL },
    { "account_id", VC(12), true, NULL },
    { "account_name", VC(100), true, NULL },
    { "environment_type", VC(20), true, "'LAB'::character varying" },
    { "role_arn", VC(255), true, NULL },
    { "external_id", VC(255), true, NULL },
    { "region", VC(20), true, "'ap-south-1'::character varying" },
    { "is_active", "boolean", false, "true" },
    { "created_at", TS, true, NOW_DEF },
    { "updated_at", TS, false, NOW_DEF },
};

static const colspec instances_cols[] = {
    { "id", "uuid", true, UUID_DEF },
    { "account_id", "uuid", true, NULL },
    { "instance_id", VC(50), true, NULL },
    { "instance_type", VC(20), true, NULL },
    { "availability_zone", VC(20), true, NULL },
    { "assigned_model_version", VC(50), false, NULL },
    { "pipeline_mode", VC(20), true, "'CLUSTER'::character varying" },
    { "is_shadow_mode", "boolean", false, "false" },
    { "is_active", "boolean", false, "true" },
    { "last_evaluation", TS, false, NULL },
    { "metadata", "jsonb", false, NULL },
    { "created_at", TS, true, NOW_DEF },
    { "updated_at", TS, false, NOW_DEF },
};

static const colspec model_registry_cols[] = {
    { "id", "uuid", true, UUID_DEF },
    { "name", VC(50), true, NULL },
    { "version", VC(20), true, NULL },
    { "s3_path", VC(255), false, NULL },
    { "local_path", VC(255), false, NULL },
    { "description", "text", false, NULL },
    { "is_experimental", "boolean", false, "false" },
    { "is_active", "boolean", false, "true" },
    { "feature_version", VC(20), false, NULL },
    { "created_at", TS, true, NOW_DEF },
    { "created_by", "uuid", false, NULL },
};

static const colspec experiment_logs_cols[] = {
    { "id", "uuid", true, UUID_DEF },
    { "instance_id", "uuid", true, NULL },
    { "model_id", "uuid", false, NULL },
    { "pipeline_mode", VC(20), false, NULL },
    { "is_shadow_run", "boolean", false, "false" },
    { "prediction_score", "double precision", false, NULL },
    { "decision", VC(50), false, NULL },
    { "decision_reason", "text", false, NULL },
    { "execution_time", TS, true, NOW_DEF },
    { "execution_duration_ms", "integer", false, NULL },
    { "candidates_evaluated", "integer", false, NULL },
    { "selected_instance_type", VC(20), false, NULL },
    { "selected_availability_zone", VC(20), false, NULL },
    { "old_spot_price", "double precision", false, NULL },
    { "new_spot_price", "double precision", false, NULL },
    { "projected_hourly_savings", "double precision", false, NULL },
    { "features_used", "jsonb", false, NULL },
    { "error_message", "text", false, NULL },
};

/* Views: names and types only (a view column has no NOT NULL or default). */
static const colspec v_active_instances_cols[] = {
    { "id", "uuid", false, NULL },
    { "instance_id", VC(50), false, NULL },
    { "instance_type", VC(20), false, NULL },
    { "availability_zone", VC(20), false, NULL },
    { "pipeline_mode", VC(20), false, NULL },
    { "is_shadow_mode", "boolean", false, NULL },
    { "assigned_model_version", VC(50), false, NULL },
    { "last_evaluation", TS, false, NULL },
    { "aws_account_id", VC(12), false, NULL },
    { "account_name", VC(100), false, NULL },
    { "environment_type", VC(20), false, NULL },
    { "region", VC(20), false, NULL },
    { "user_email", VC(255), false, NULL },
    { "username", VC(50), false, NULL },
    { "model_name", VC(50), false, NULL },
    { "model_version", VC(20), false, NULL },
};

static const colspec v_recent_experiments_cols[] = {
    { "id", "uuid", false, NULL },
    { "execution_time", TS, false, NULL },
    { "decision", VC(50), false, NULL },
    { "prediction_score", "double precision", false, NULL },
    { "is_shadow_run", "boolean", false, NULL },
    { "execution_duration_ms", "integer", false, NULL },
    { "instance_id", VC(50), false, NULL },
    { "instance_type", VC(20), false, NULL },
    { "pipeline_mode", VC(20), false, NULL },
    { "aws_account_id", VC(12), false, NULL },
    { "account_name", VC(100), false, NULL },
    { "model_name", VC(50), false, NULL },
    { "model_version", VC(20), false, NULL },
    { "selected_instance_type", VC(20), false, NULL },
    { "projected_hourly_savings", "double precision", false, NULL },
};

/* The tracking table of libspotdb (spotdb/migrate.h); only names and
 * types are part of the brief, so NOT NULL and defaults are not checked. */
static const colspec tracking_cols[] = {
    { "version", "bigint", true, NULL },
    { "name", "text", false, NULL },
    { "checksum", "text", false, NULL },
    { "applied_at", "timestamp with time zone", false, NULL },
    { "execution_ms", "integer", false, NULL },
    { "compatible", "boolean", false, NULL },
};

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

typedef struct relspec {
    const char *name;
    const colspec *cols;
    size_t ncols;
} relspec;

static const relspec tables[] = {
    { "users", users_cols, NELEMS(users_cols) },
    { "accounts", accounts_cols, NELEMS(accounts_cols) },
    { "instances", instances_cols, NELEMS(instances_cols) },
    { "model_registry", model_registry_cols, NELEMS(model_registry_cols) },
    { "experiment_logs", experiment_logs_cols, NELEMS(experiment_logs_cols) },
};

static const relspec views[] = {
    { "v_active_instances", v_active_instances_cols,
      NELEMS(v_active_instances_cols) },
    { "v_recent_experiments", v_recent_experiments_cols,
      NELEMS(v_recent_experiments_cols) },
};

/* The five tables, as a SQL list for catalog filters. */
#define V1_TABLES "'users','accounts','instances','model_registry'," \
                  "'experiment_logs'"

/* One constraint.  columns: comma-separated, in key order.  For 'f':
 * referenced table and column, ON DELETE action as confdeltype ('c'
 * cascade, 'a' no action).  For 'c': the allowed values, sorted (C
 * collation), comma-separated. */
typedef struct conspec {
    const char *table;
    const char *name;
    char type;
    const char *columns;
    const char *ref_table;
    const char *ref_columns;
    char on_delete;
    const char *values;
} conspec;

static const conspec constraints[] = {
    { "users", "users_pkey", 'p', "id", NULL, NULL, 0, NULL },
    { "users", "users_email_key", 'u', "email", NULL, NULL, 0, NULL },
    { "users", "users_username_key", 'u', "username", NULL, NULL, 0, NULL },
    { "users", "chk_role", 'c', "role", NULL, NULL, 0, "admin,lab,user" },

    { "accounts", "accounts_pkey", 'p', "id", NULL, NULL, 0, NULL },
    { "accounts", "accounts_account_id_key", 'u', "account_id", NULL, NULL,
      0, NULL },
    { "accounts", "accounts_user_id_fkey", 'f', "user_id", "users", "id",
      'c', NULL },
    { "accounts", "chk_environment_type", 'c', "environment_type", NULL,
      NULL, 0, "LAB,PROD" },

    { "instances", "instances_pkey", 'p', "id", NULL, NULL, 0, NULL },
    { "instances", "instances_instance_id_key", 'u', "instance_id", NULL,
      NULL, 0, NULL },
    { "instances", "instances_account_id_fkey", 'f', "account_id",
      "accounts", "id", 'c', NULL },
    { "instances", "chk_pipeline_mode", 'c', "pipeline_mode", NULL, NULL, 0,
      "CLUSTER,LINEAR" },

    { "model_registry", "model_registry_pkey", 'p', "id", NULL, NULL, 0,
      NULL },
    { "model_registry", "uq_model_version", 'u', "name,version", NULL, NULL,
      0, NULL },
    { "model_registry", "model_registry_created_by_fkey", 'f', "created_by",
      "users", "id", 'a', NULL },

    { "experiment_logs", "experiment_logs_pkey", 'p', "id", NULL, NULL, 0,
      NULL },
    { "experiment_logs", "experiment_logs_instance_id_fkey", 'f',
      "instance_id", "instances", "id", 'c', NULL },
    { "experiment_logs", "experiment_logs_model_id_fkey", 'f', "model_id",
      "model_registry", "id", 'a', NULL },
};

typedef struct idxspec {
    const char *table;
    const char *name;
    const char *column;
} idxspec;

static const idxspec indexes[] = {
    { "users", "idx_users_email", "email" },
    { "users", "idx_users_username", "username" },
    { "users", "idx_users_role", "role" },
    { "accounts", "idx_accounts_user_id", "user_id" },
    { "accounts", "idx_accounts_account_id", "account_id" },
    { "accounts", "idx_accounts_environment_type", "environment_type" },
    { "instances", "idx_instances_account_id", "account_id" },
    { "instances", "idx_instances_instance_id", "instance_id" },
    { "instances", "idx_instances_pipeline_mode", "pipeline_mode" },
    { "instances", "idx_instances_last_evaluation", "last_evaluation" },
    { "model_registry", "idx_model_registry_name", "name" },
    { "model_registry", "idx_model_registry_version", "version" },
    { "model_registry", "idx_model_registry_is_active", "is_active" },
    { "experiment_logs", "idx_experiment_logs_instance_id", "instance_id" },
    { "experiment_logs", "idx_experiment_logs_model_id", "model_id" },
    { "experiment_logs", "idx_experiment_logs_execution_time",
      "execution_time" },
    { "experiment_logs", "idx_experiment_logs_decision", "decision" },
};

typedef struct trgspec {
    const char *table;
    const char *name;
} trgspec;

static const trgspec triggers[] = {
    { "users", "update_users_updated_at" },
    { "accounts", "update_accounts_updated_at" },
    { "instances", "update_instances_updated_at" },
};

/* ---- helpers ------------------------------------------------------------ */

/* Conninfo of the fixture's database (malloc'd). */
static char *test_conninfo(void)
{
    return th_conninfo_with_db(th_admin_url(), th_db_name());
}

/* Migrate the fixture's database with the library. */
static void migrate_db(void)
{
    char *ci = test_conninfo();
    spotdb_db *db = NULL;
    int rc = th_open_unchecked(&db, ci);

    ck_assert_msg(rc == 0, "spotdb_open: %d %s", rc, spotdb_last_errmsg());
    rc = spotdb_migrate(db, NULL);
    ck_assert_msg(rc == 0, "spotdb_migrate: %d (%s) %s", rc,
                  spotdb_strerror(rc), spotdb_errmsg(db));
    spotdb_close(db);
    free(ci);
}

/* A raw connection to the fixture's database, session TimeZone UTC. */
static PGconn *raw_connect(void)
{
    char *ci = test_conninfo();
    PGconn *c = th_connect(ci);

    free(ci);
    th_exec(c, "SET TimeZone TO 'UTC'");
    return c;
}

/* Migrate, then connect raw. */
static PGconn *migrated(void)
{
    migrate_db();
    return raw_connect();
}

/* A query that must return rows; the result is the caller's. */
static PGresult *query(PGconn *c, const char *sql, int n,
                       const char *const *params)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);

    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql,
                  PQerrorMessage(c));
    return r;
}

/* First column of the first row of a one-parameter query (malloc'd, NULL
 * for SQL NULL or no row). */
static char *scalar1(PGconn *c, const char *sql, const char *param)
{
    PGresult *r = query(c, sql, 1, &param);
    char *v = NULL;

    if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        v = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

/* NULL-safe string equality. */
static bool same(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static const char *show(const char *s)
{
    return s ? s : "(none)";
}

/* Compare the ordered columns of public.<rel> (relkind 'r' or 'v') with
 * the spec; fail on the first difference. */
static void check_columns(PGconn *c, const relspec *rel, char relkind,
                          bool check_null_default)
{
    static const char sql[] =
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod),"
        " a.attnotnull, pg_get_expr(d.adbin, d.adrelid)"
        " FROM pg_attribute a"
        " JOIN pg_class t ON t.oid = a.attrelid"
        " LEFT JOIN pg_attrdef d"
        "   ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " WHERE t.relname = $1 AND t.relnamespace = 'public'::regnamespace"
        "   AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum";
    const char *kind_sql =
        "SELECT t.relkind FROM pg_class t WHERE t.relname = $1"
        " AND t.relnamespace = 'public'::regnamespace";
    char *kind = scalar1(c, kind_sql, rel->name);
    PGresult *r;
    int rows;

    ck_assert_msg(kind != NULL, "%s: no such relation in schema public",
                  rel->name);
    ck_assert_msg(kind[0] == relkind, "%s: relkind is '%s', expected '%c'",
                  rel->name, kind, relkind);
    free(kind);

    r = query(c, sql, 1, &rel->name);
    rows = PQntuples(r);
    for (int i = 0; i < rows || (size_t)i < rel->ncols; i++) {
        const colspec *e;
        const char *name, *type, *def;
        bool notnull;

        ck_assert_msg(i < rows, "%s: column #%d '%s' is missing (the "
                      "relation has %d columns, the spec %zu)", rel->name,
                      i + 1, rel->cols[i].name, rows, rel->ncols);
        name = PQgetvalue(r, i, 0);
        ck_assert_msg((size_t)i < rel->ncols, "%s: extra column #%d '%s' "
                      "not in the spec", rel->name, i + 1, name);
        e = &rel->cols[i];
        type = PQgetvalue(r, i, 1);
        notnull = PQgetvalue(r, i, 2)[0] == 't';
        def = PQgetisnull(r, i, 3) ? NULL : PQgetvalue(r, i, 3);
        ck_assert_msg(same(name, e->name), "%s: column #%d is '%s', the "
                      "spec says '%s'", rel->name, i + 1, name, e->name);
        ck_assert_msg(same(type, e->type), "%s.%s: type is '%s', the spec "
                      "says '%s'", rel->name, name, type, e->type);
        if (!check_null_default)
            continue;
        ck_assert_msg(notnull == e->notnull, "%s.%s: %s, the spec says %s",
                      rel->name, name, notnull ? "NOT NULL" : "nullable",
                      e->notnull ? "NOT NULL" : "nullable");
        ck_assert_msg(same(def, e->def), "%s.%s: default is %s, the spec "
                      "says %s", rel->name, name, show(def), show(e->def));
    }
    PQclear(r);
}

static char hash_buf[256];

/* Stored hash of the admin user, copied into hash_buf. */
static const char *admin_hash(PGconn *c)
{
    char *h = th_scalar(c, "SELECT hashed_password FROM users"
                           " WHERE username = 'admin'");

    ck_assert_msg(h != NULL, "no admin user");
    ck_assert_msg(strlen(h) < sizeof hash_buf, "admin hash too long");
    strcpy(hash_buf, h);
    free(h);
    return hash_buf;
}

/* Whether crypt(password, hash) reproduces the hash. */
static bool crypt_matches(const char *password, const char *hash)
{
    struct crypt_data *data = calloc(1, sizeof *data);
    const char *out;
    bool ok;

    ck_assert_ptr_nonnull(data);
    out = crypt_rn(password, hash, data, (int)sizeof *data);
    ok = out != NULL && strcmp(out, hash) == 0;
    free(data);
    return ok;
}

/* Insert a user, an account and an instance with the given suffix; returns
 * nothing, the rows are found by their natural keys. */
static void insert_owner_chain(PGconn *c, const char *tag)
{
    const char *p[1] = { tag };
    PGresult *r = PQexecParams(c,
        "WITH u AS (INSERT INTO users (email, username, hashed_password)"
        "  VALUES ($1 || '@example.com', $1, '$2b$12$x') RETURNING id),"
        " a AS (INSERT INTO accounts (user_id, account_id, account_name,"
        "  role_arn, external_id)"
        "  SELECT id, lpad(length($1)::text, 12, '0'), $1,"
        "   'arn:aws:iam::000000000000:role/x', 'ext' FROM u RETURNING id)"
        " INSERT INTO instances (account_id, instance_id, instance_type,"
        "  availability_zone) SELECT id, 'i-' || $1, 'c5.large',"
        "  'ap-south-1a' FROM a",
        1, NULL, p, NULL, NULL, 0);

    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "insert chain %s:"
                  " %s", tag, PQerrorMessage(c));
    PQclear(r);
}

/* Run SQL that must fail with `sqlstate`, naming `constraint`. */
static void expect_violation(PGconn *c, const char *sql, const char *sqlstate,
                             const char *constraint)
{
    PGresult *r = PQexec(c, sql);
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *cn = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);

    ck_assert_msg(PQresultStatus(r) == PGRES_FATAL_ERROR, "%s: succeeded, "
                  "expected a violation of %s", sql, constraint);
    ck_assert_msg(same(st, sqlstate), "%s: SQLSTATE %s, expected %s", sql,
                  show(st), sqlstate);
    ck_assert_msg(same(cn, constraint), "%s: violated %s, expected %s", sql,
                  show(cn), constraint);
    PQclear(r);
}

/* ---- 1. tables and columns ---------------------------------------------- */

START_TEST(tables_and_columns)
{
    PGconn *c = migrated();

    for (size_t i = 0; i < NELEMS(tables); i++)
        check_columns(c, &tables[i], 'r', true);
    PQfinish(c);
}
END_TEST

/* The only tables and views of schema public are those of the spec and
 * the tracking table; no sequence either (every key is a UUID). */
START_TEST(no_other_relations)
{
    PGconn *c = migrated();
    char *got = th_scalar(c,
        "SELECT string_agg(relkind::text || ':' || relname, ','"
        "  ORDER BY relkind, relname COLLATE \"C\")"
        " FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        " AND relkind IN ('r', 'v', 'm', 'S', 'p', 'f')");
    const char *want = "r:accounts,r:experiment_logs,r:instances,"
                       "r:model_registry,r:spotdb_schema_migrations,r:users,"
                       "v:v_active_instances,v:v_recent_experiments";

    ck_assert_msg(same(got, want), "relations of public are %s, expected %s",
                  show(got), want);
    free(got);
    PQfinish(c);
}
END_TEST

/* ---- 2. constraints ----------------------------------------------------- */

START_TEST(constraints_exact)
{
    static const char sql[] =
        "SELECT t.relname, k.conname, k.contype,"
        " (SELECT string_agg(a.attname, ',' ORDER BY u.o)"
        "    FROM unnest(k.conkey) WITH ORDINALITY u(n, o)"
        "    JOIN pg_attribute a ON a.attrelid = k.conrelid"
        "     AND a.attnum = u.n),"
        " (SELECT f.relname FROM pg_class f WHERE f.oid = k.confrelid),"
        " (SELECT string_agg(a.attname, ',' ORDER BY u.o)"
        "    FROM unnest(k.confkey) WITH ORDINALITY u(n, o)"
        "    JOIN pg_attribute a ON a.attrelid = k.confrelid"
        "     AND a.attnum = u.n),"
        " k.confdeltype, k.confupdtype,"
        " (SELECT string_agg(v, ',' ORDER BY v COLLATE \"C\") FROM"
        "   (SELECT DISTINCT m[1] AS v FROM regexp_matches("
        "     pg_get_constraintdef(k.oid), '''([^'']*)''', 'g') m) s),"
        " k.condeferrable, pg_get_constraintdef(k.oid)"
        " FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid"
        " WHERE t.relnamespace = 'public'::regnamespace"
        "   AND t.relname IN (" V1_TABLES ")"
        "   AND k.contype <> 'n'"   /* NOT NULL rows of PostgreSQL 18 */
        " ORDER BY t.relname, k.conname";
    PGconn *c = migrated();
    PGresult *r = query(c, sql, 0, NULL);
    int rows = PQntuples(r);
    bool seen[NELEMS(constraints)] = { false };

    for (int i = 0; i < rows; i++) {
        const char *table = PQgetvalue(r, i, 0);
        const char *name = PQgetvalue(r, i, 1);
        char type = PQgetvalue(r, i, 2)[0];
        const char *cols = PQgetisnull(r, i, 3) ? NULL : PQgetvalue(r, i, 3);
        const char *reft = PQgetisnull(r, i, 4) ? NULL : PQgetvalue(r, i, 4);
        const char *refc = PQgetisnull(r, i, 5) ? NULL : PQgetvalue(r, i, 5);
        char del = PQgetvalue(r, i, 6)[0];
        char upd = PQgetvalue(r, i, 7)[0];
        const char *vals = PQgetisnull(r, i, 8) ? NULL : PQgetvalue(r, i, 8);
        bool deferrable = PQgetvalue(r, i, 9)[0] == 't';
        const char *def = PQgetvalue(r, i, 10);
        const conspec *e = NULL;

        for (size_t k = 0; k < NELEMS(constraints); k++)
            if (same(constraints[k].name, name)) {
                e = &constraints[k];
                seen[k] = true;
            }
        ck_assert_msg(e != NULL, "%s: constraint %s (%s) is not in the spec",
                      table, name, def);
        ck_assert_msg(same(table, e->table), "constraint %s is on %s, the "
                      "spec puts it on %s", name, table, e->table);
        ck_assert_msg(type == e->type, "%s.%s: contype '%c', the spec says "
                      "'%c' (%s)", table, name, type, e->type, def);
        ck_assert_msg(same(cols, e->columns), "%s.%s: on (%s), the spec says "
                      "(%s)", table, name, show(cols), e->columns);
        ck_assert_msg(!deferrable, "%s.%s: deferrable", table, name);
        if (e->type == 'f') {
            ck_assert_msg(same(reft, e->ref_table) &&
                          same(refc, e->ref_columns), "%s.%s: references "
                          "%s(%s), the spec says %s(%s)", table, name,
                          show(reft), show(refc), e->ref_table,
                          e->ref_columns);
            ck_assert_msg(del == e->on_delete, "%s.%s: ON DELETE action "
                          "'%c', the spec says '%c' (%s)", table, name, del,
                          e->on_delete, def);
            ck_assert_msg(upd == 'a', "%s.%s: ON UPDATE action '%c', the "
                          "spec gives none (%s)", table, name, upd, def);
        }
        if (e->type == 'c')
            ck_assert_msg(same(vals, e->values), "%s.%s: allows {%s}, the "
                          "spec says {%s} (%s)", table, name, show(vals),
                          e->values, def);
    }
    for (size_t k = 0; k < NELEMS(constraints); k++)
        ck_assert_msg(seen[k], "%s: constraint %s is missing",
                      constraints[k].table, constraints[k].name);
    PQclear(r);
    PQfinish(c);
}
END_TEST

/* The constraints also behave: each allowed value is accepted, anything
 * else is refused by the named constraint; deleting a user cascades down
 * to the experiment logs; the no-action keys refuse the delete. */
START_TEST(constraints_behave)
{
    PGconn *c = migrated();

    th_exec(c, "INSERT INTO users (email, username, hashed_password, role)"
               " VALUES ('a@x', 'a', 'h', 'admin'), ('u@x', 'u', 'h', 'user'),"
               " ('l@x', 'l', 'h', 'lab')");
    expect_violation(c, "INSERT INTO users (email, username, hashed_password,"
                        " role) VALUES ('s@x', 's', 'h', 'ADMIN')", "23514",
                     "chk_role");
    expect_violation(c, "INSERT INTO users (email, username, hashed_password)"
                        " VALUES ('a@x', 'a2', 'h')", "23505",
                     "users_email_key");
    expect_violation(c, "INSERT INTO users (email, username, hashed_password)"
                        " VALUES ('a2@x', 'a', 'h')", "23505",
                     "users_username_key");

    th_exec(c, "INSERT INTO accounts (user_id, account_id, account_name,"
               " environment_type, role_arn, external_id)"
               " SELECT id, '111111111111', 'p', 'PROD', 'arn', 'e'"
               " FROM users WHERE username = 'u'");
    th_exec(c, "INSERT INTO accounts (user_id, account_id, account_name,"
               " environment_type, role_arn, external_id)"
               " SELECT id, '222222222222', 'l', 'LAB', 'arn', 'e'"
               " FROM users WHERE username = 'u'");
    expect_violation(c, "INSERT INTO accounts (user_id, account_id,"
                        " account_name, environment_type, role_arn,"
                        " external_id) SELECT id, '333333333333', 'x', 'lab',"
                        " 'arn', 'e' FROM users WHERE username = 'u'",
                     "23514", "chk_environment_type");
    expect_violation(c, "INSERT INTO accounts (user_id, account_id,"
                        " account_name, role_arn, external_id)"
                        " SELECT id, '111111111111', 'x', 'arn', 'e'"
                        " FROM users WHERE username = 'u'",
                     "23505", "accounts_account_id_key");
    expect_violation(c, "INSERT INTO accounts (user_id, account_id,"
                        " account_name, role_arn, external_id) VALUES"
                        " (uuid_generate_v4(), '444444444444', 'x', 'arn',"
                        " 'e')", "23503", "accounts_user_id_fkey");

    th_exec(c, "INSERT INTO instances (account_id, instance_id, instance_type,"
               " availability_zone, pipeline_mode) SELECT id, 'i-1', 't', 'z',"
               " 'CLUSTER' FROM accounts WHERE account_id = '111111111111'");
    th_exec(c, "INSERT INTO instances (account_id, instance_id, instance_type,"
               " availability_zone, pipeline_mode) SELECT id, 'i-2', 't', 'z',"
               " 'LINEAR' FROM accounts WHERE account_id = '111111111111'");
    expect_violation(c, "INSERT INTO instances (account_id, instance_id,"
                        " instance_type, availability_zone, pipeline_mode)"
                        " SELECT id, 'i-3', 't', 'z', 'MESH' FROM accounts"
                        " WHERE account_id = '111111111111'",
                     "23514", "chk_pipeline_mode");
    expect_violation(c, "INSERT INTO instances (account_id, instance_id,"
                        " instance_type, availability_zone) SELECT id, 'i-1',"
                        " 't', 'z' FROM accounts"
                        " WHERE account_id = '111111111111'",
                     "23505", "instances_instance_id_key");

    th_exec(c, "INSERT INTO model_registry (name, version, created_by)"
               " SELECT 'M', 'v1', id FROM users WHERE username = 'a'");
    expect_violation(c, "INSERT INTO model_registry (name, version)"
                        " VALUES ('M', 'v1')", "23505", "uq_model_version");
    th_exec(c, "INSERT INTO model_registry (name, version) VALUES ('M', 'v2'),"
               " ('N', 'v1')");

    /* experiment_logs.pipeline_mode and decision have no CHECK in v1. */
    th_exec(c, "INSERT INTO experiment_logs (instance_id, model_id,"
               " pipeline_mode, decision) SELECT i.id, m.id, 'anything',"
               " 'ANYTHING' FROM instances i, model_registry m"
               " WHERE i.instance_id = 'i-1' AND m.name = 'M'"
               " AND m.version = 'v1'");

    expect_violation(c, "DELETE FROM model_registry WHERE name = 'M'"
                        " AND version = 'v1'", "23503",
                     "experiment_logs_model_id_fkey");
    expect_violation(c, "DELETE FROM users WHERE username = 'a'", "23503",
                     "model_registry_created_by_fkey");

    th_exec(c, "DELETE FROM users WHERE username = 'u'");
    ck_assert_int_eq(th_count(c, "SELECT count(*) FROM accounts"), 0);
    ck_assert_int_eq(th_count(c, "SELECT count(*) FROM instances"), 0);
    ck_assert_int_eq(th_count(c, "SELECT count(*) FROM experiment_logs"), 0);
    PQfinish(c);
}
END_TEST

/* ---- 3. indexes --------------------------------------------------------- */

/* Indexes that libspotdb's later migrations add to the spec's, for speed
 * (sql/0002_experiment_log_paging.sql); each must be exactly this, and
 * the spec's own stay exactly as the spec says. */
static bool added_index(const char *table, const char *name, const char *def)
{
    static const struct { const char *table, *name, *def; } added[] = {
        { "experiment_logs", "idx_experiment_logs_instance_time",
          "CREATE INDEX idx_experiment_logs_instance_time ON "
          "public.experiment_logs USING btree (instance_id, decision, "
          "execution_time DESC, id DESC)" },
    };

    for (size_t k = 0; k < NELEMS(added); k++)
        if (same(added[k].table, table) && same(added[k].name, name)) {
            ck_assert_msg(same(added[k].def, def), "%s: index %s is %s",
                          table, name, def);
            return true;
        }
    return false;
}

START_TEST(indexes_exact)
{
    static const char sql[] =
        "SELECT t.relname, i.relname, am.amname, x.indisunique,"
        " x.indnatts,"
        " (SELECT string_agg(a.attname, ',' ORDER BY u.o)"
        "    FROM unnest(x.indkey::int2[]) WITH ORDINALITY u(n, o)"
        "    JOIN pg_attribute a ON a.attrelid = x.indrelid"
        "     AND a.attnum = u.n),"
        " x.indpred IS NULL AND x.indexprs IS NULL"
        "  AND 0 = ALL (x.indoption::int2[]),"
        " EXISTS (SELECT 1 FROM pg_constraint k"
        "   WHERE k.conindid = x.indexrelid AND k.conrelid = x.indrelid),"
        " pg_get_indexdef(x.indexrelid)"
        " FROM pg_index x"
        " JOIN pg_class i ON i.oid = x.indexrelid"
        " JOIN pg_class t ON t.oid = x.indrelid"
        " JOIN pg_am am ON am.oid = i.relam"
        " WHERE t.relnamespace = 'public'::regnamespace"
        "   AND t.relname IN (" V1_TABLES ")"
        " ORDER BY t.relname, i.relname";
    PGconn *c = migrated();
    PGresult *r = query(c, sql, 0, NULL);
    int rows = PQntuples(r);
    bool seen[NELEMS(indexes)] = { false };

    for (int i = 0; i < rows; i++) {
        const char *table = PQgetvalue(r, i, 0);
        const char *name = PQgetvalue(r, i, 1);
        const char *am = PQgetvalue(r, i, 2);
        bool unique = PQgetvalue(r, i, 3)[0] == 't';
        const char *natts = PQgetvalue(r, i, 4);
        const char *cols = PQgetisnull(r, i, 5) ? NULL : PQgetvalue(r, i, 5);
        bool plain = PQgetvalue(r, i, 6)[0] == 't';
        bool of_constraint = PQgetvalue(r, i, 7)[0] == 't';
        const char *def = PQgetvalue(r, i, 8);
        const idxspec *e = NULL;

        if (of_constraint) {
            /* Those of the PK and UNIQUE constraints: constraints_exact
             * checks them; here only that they carry the same name. */
            bool known = false;

            for (size_t k = 0; k < NELEMS(constraints); k++)
                known |= same(constraints[k].name, name) &&
                         (constraints[k].type == 'p' ||
                          constraints[k].type == 'u');
            ck_assert_msg(known, "%s: index %s backs a constraint that is "
                          "not a PK or UNIQUE of the spec (%s)", table, name,
                          def);
            continue;
        }
        for (size_t k = 0; k < NELEMS(indexes); k++)
            if (same(indexes[k].name, name)) {
                e = &indexes[k];
                seen[k] = true;
            }
        if (!e && added_index(table, name, def))
            continue;
        ck_assert_msg(e != NULL, "%s: index %s is not in the spec (%s)",
                      table, name, def);
        ck_assert_msg(same(table, e->table), "index %s is on %s, the spec "
                      "puts it on %s", name, table, e->table);
        ck_assert_msg(same(natts, "1") && same(cols, e->column), "%s: index "
                      "%s is on (%s), the spec says (%s)", table, name,
                      show(cols), e->column);
        ck_assert_msg(!unique, "%s: index %s is UNIQUE (%s)", table, name,
                      def);
        ck_assert_msg(same(am, "btree"), "%s: index %s uses %s (%s)", table,
                      name, am, def);
        ck_assert_msg(plain, "%s: index %s is partial, on an expression or "
                      "not in ascending order (%s)", table, name, def);
    }
    for (size_t k = 0; k < NELEMS(indexes); k++)
        ck_assert_msg(seen[k], "%s: index %s is missing", indexes[k].table,
                      indexes[k].name);
    PQclear(r);
    PQfinish(c);
}
END_TEST

/* ---- 4. the updated_at trigger ------------------------------------------ */

START_TEST(trigger_catalog)
{
    static const char fn_sql[] =
        "SELECT l.lanname, format_type(p.prorettype, NULL), p.pronargs"
        " FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang"
        " WHERE p.proname = 'update_updated_at_column'"
        "   AND p.pronamespace = 'public'::regnamespace";
    /* tgtype bits: 1 ROW, 2 BEFORE, 16 UPDATE. */
    static const char trg_sql[] =
        "SELECT t.relname, g.tgname, g.tgtype, g.tgfoid ="
        "  'public.update_updated_at_column()'::regprocedure,"
        " g.tgenabled, g.tgnargs, g.tgqual IS NULL,"
        " cardinality(g.tgattr::int2[]), pg_get_triggerdef(g.oid)"
        " FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid"
        " WHERE NOT g.tgisinternal"
        "   AND t.relnamespace = 'public'::regnamespace"
        /* migration 0003's guard of users.role, beyond the spec: its
         * behaviour is test_tenancy's */
        "   AND g.tgname <> 'guard_users_role'"
        " ORDER BY g.tgname";
    PGconn *c = migrated();
    PGresult *r = query(c, fn_sql, 0, NULL);
    bool seen[NELEMS(triggers)] = { false };
    int rows;

    ck_assert_msg(PQntuples(r) == 1, "public.update_updated_at_column: %d "
                  "functions of that name, expected 1", PQntuples(r));
    ck_assert_msg(same(PQgetvalue(r, 0, 0), "plpgsql"), "update_updated_at_"
                  "column is in %s, the spec says plpgsql",
                  PQgetvalue(r, 0, 0));
    ck_assert_msg(same(PQgetvalue(r, 0, 1), "trigger"), "update_updated_at_"
                  "column returns %s", PQgetvalue(r, 0, 1));
    ck_assert_msg(same(PQgetvalue(r, 0, 2), "0"), "update_updated_at_column"
                  " takes %s arguments", PQgetvalue(r, 0, 2));
    PQclear(r);

    r = query(c, trg_sql, 0, NULL);
    rows = PQntuples(r);
    for (int i = 0; i < rows; i++) {
        const char *table = PQgetvalue(r, i, 0);
        const char *name = PQgetvalue(r, i, 1);
        const char *def = PQgetvalue(r, i, 8);
        const trgspec *e = NULL;

        for (size_t k = 0; k < NELEMS(triggers); k++)
            if (same(triggers[k].name, name)) {
                e = &triggers[k];
                seen[k] = true;
            }
        ck_assert_msg(e != NULL, "%s: trigger %s is not in the spec (%s)",
                      table, name, def);
        ck_assert_msg(same(table, e->table), "trigger %s is on %s, the spec "
                      "puts it on %s", name, table, e->table);
        ck_assert_msg(same(PQgetvalue(r, i, 2), "19"), "trigger %s: tgtype "
                      "%s, expected BEFORE UPDATE FOR EACH ROW (%s)", name,
                      PQgetvalue(r, i, 2), def);
        ck_assert_msg(PQgetvalue(r, i, 3)[0] == 't', "trigger %s does not "
                      "call update_updated_at_column() (%s)", name, def);
        ck_assert_msg(same(PQgetvalue(r, i, 4), "O"), "trigger %s: enabled "
                      "state %s", name, PQgetvalue(r, i, 4));
        ck_assert_msg(same(PQgetvalue(r, i, 5), "0") &&
                      PQgetvalue(r, i, 6)[0] == 't' &&
                      (PQgetisnull(r, i, 7) || same(PQgetvalue(r, i, 7), "0")),
                      "trigger %s has arguments, a WHEN or a column list (%s)",
                      name, def);
    }
    for (size_t k = 0; k < NELEMS(triggers); k++)
        ck_assert_msg(seen[k], "%s: trigger %s is missing", triggers[k].table,
                      triggers[k].name);
    PQclear(r);
    PQfinish(c);
}
END_TEST

/* An UPDATE that sets updated_at to an old value still stores "now"; one
 * that leaves it alone moves it too. */
START_TEST(trigger_overrides_updated_at)
{
    static const char *const updates[] = {
        "UPDATE users SET updated_at = '2000-01-01', full_name = 'T'"
        " WHERE username = 'trg'",
        "UPDATE accounts SET updated_at = '2000-01-01', account_name = 'T'"
        " WHERE account_name = 'trg'",
        "UPDATE instances SET updated_at = '2000-01-01', instance_type = 'T'"
        " WHERE instance_id = 'i-trg'",
    };
    static const char *const checks[] = {
        "SELECT count(*) FROM users WHERE username = 'trg' AND"
        " updated_at BETWEEN localtimestamp - interval '1 minute'"
        " AND localtimestamp + interval '1 minute'",
        "SELECT count(*) FROM accounts WHERE account_name = 'T' AND"
        " updated_at BETWEEN localtimestamp - interval '1 minute'"
        " AND localtimestamp + interval '1 minute'",
        "SELECT count(*) FROM instances WHERE instance_id = 'i-trg' AND"
        " updated_at BETWEEN localtimestamp - interval '1 minute'"
        " AND localtimestamp + interval '1 minute'",
    };
    PGconn *c = migrated();

    insert_owner_chain(c, "trg");
    for (size_t i = 0; i < NELEMS(updates); i++) {
        char *got;

        th_exec(c, updates[i]);
        got = th_scalar(c, checks[i]);
        ck_assert_msg(same(got, "1"), "%s: updated_at is not recent after "
                      "the UPDATE (the trigger did not override it)",
                      updates[i]);
        free(got);
    }

    /* Without naming updated_at: it moves from an old value to now. */
    th_exec(c, "ALTER TABLE users DISABLE TRIGGER update_users_updated_at");
    th_exec(c, "UPDATE users SET updated_at = '2000-01-01'"
               " WHERE username = 'trg'");
    th_exec(c, "ALTER TABLE users ENABLE TRIGGER update_users_updated_at");
    ck_assert_int_eq(th_count(c, "SELECT count(*) FROM users WHERE username"
                                 " = 'trg' AND updated_at = '2000-01-01'"), 1);
    th_exec(c, "UPDATE users SET last_login = localtimestamp"
               " WHERE username = 'trg'");
    ck_assert_msg(th_count(c, "SELECT count(*) FROM users WHERE username ="
                              " 'trg' AND updated_at > '2001-01-01'") == 1,
                  "users.updated_at did not move on an UPDATE of another "
                  "column");
    PQfinish(c);
}
END_TEST

/* ---- 5. views ----------------------------------------------------------- */

START_TEST(views_columns)
{
    PGconn *c = migrated();

    for (size_t i = 0; i < NELEMS(views); i++)
        check_columns(c, &views[i], 'v', false);
    PQfinish(c);
}
END_TEST

/* v_active_instances: both is_active must be TRUE (NULL is not), and the
 * model join by version alone gives one row per model with that version. */
START_TEST(view_active_instances_rows)
{
    PGconn *c = migrated();
    char *got;

    insert_owner_chain(c, "on");
    insert_owner_chain(c, "off1");
    insert_owner_chain(c, "off22");
    insert_owner_chain(c, "null333");
    th_exec(c, "UPDATE instances SET is_active = FALSE"
               " WHERE instance_id = 'i-off1'");
    th_exec(c, "UPDATE accounts SET is_active = FALSE"
               " WHERE account_name = 'off22'");
    th_exec(c, "UPDATE accounts SET is_active = NULL"
               " WHERE account_name = 'null333'");
    got = th_scalar(c, "SELECT string_agg(concat_ws('/', instance_id,"
                       " instance_type, availability_zone, pipeline_mode,"
                       " is_shadow_mode, aws_account_id, account_name,"
                       " environment_type, region, user_email, username),"
                       " ',') FROM v_active_instances");
    ck_assert_msg(same(got, "i-on/c5.large/ap-south-1a/CLUSTER/f/"
                            "000000000002/on/LAB/ap-south-1/on@example.com/"
                            "on"),
                  "v_active_instances shows %s, expected only i-on with "
                  "its columns in the spec's meaning", show(got));
    free(got);

    th_exec(c, "INSERT INTO model_registry (name, version) VALUES"
               " ('A', 'v9'), ('B', 'v9'), ('C', 'v8')");
    th_exec(c, "UPDATE instances SET assigned_model_version = 'v9'"
               " WHERE instance_id = 'i-on'");
    got = th_scalar(c, "SELECT string_agg(model_name || ':' || model_version,"
                       " ',' ORDER BY model_name) FROM v_active_instances");
    ck_assert_msg(same(got, "A:v9,B:v9"), "two models sharing version v9: "
                  "v_active_instances gives %s, expected A:v9,B:v9",
                  show(got));
    free(got);
    th_exec(c, "UPDATE instances SET assigned_model_version = NULL"
               " WHERE instance_id = 'i-on'");
    ck_assert_int_eq(th_count(c, "SELECT count(*) FROM v_active_instances"
                                 " WHERE model_name IS NULL"), 1);
    PQfinish(c);
}
END_TEST

/* v_recent_experiments: the newest 1000 by execution_time, the window
 * inside the view; logs without a model still appear. */
START_TEST(view_recent_experiments_rows)
{
    PGconn *c = migrated();
    char *got;
    long n;

    insert_owner_chain(c, "exp");
    th_exec(c, "INSERT INTO experiment_logs (instance_id, decision,"
               " execution_time)"
               " SELECT i.id, CASE WHEN n = 1 THEN 'SWITCH' ELSE 'STAY' END,"
               "  timestamp '2024-01-01' + n * interval '1 minute'"
               " FROM instances i, generate_series(1, 1001) n");
    n = th_count(c, "SELECT count(*) FROM v_recent_experiments");
    ck_assert_msg(n == 1000, "v_recent_experiments over 1001 logs shows %ld "
                  "rows, the spec says the newest 1000", n);
    ck_assert_msg(th_count(c, "SELECT count(*) FROM v_recent_experiments"
                              " WHERE decision = 'SWITCH'") == 0,
                  "a filter on v_recent_experiments sees the oldest row, "
                  "outside the newest 1000");

    got = th_scalar(c, "SELECT min(execution_time)::text || ' ' ||"
                       " max(execution_time)::text || ' ' || instance_id ||"
                       " ' ' || aws_account_id || ' ' ||"
                       " coalesce(model_name, 'none')"
                       " FROM v_recent_experiments"
                       " GROUP BY instance_id, aws_account_id, model_name");
    ck_assert_msg(same(got, "2024-01-01 00:02:00 2024-01-01 16:41:00 i-exp "
                            "000000000003 none"),
                  "v_recent_experiments window: %s", show(got));
    free(got);

    /* pipeline_mode is the instance's; the model join is by id. */
    th_exec(c, "UPDATE experiment_logs SET pipeline_mode = 'LOGMODE'");
    th_exec(c, "INSERT INTO model_registry (name, version) VALUES"
               " ('M', 'v1'), ('N', 'v1')");
    th_exec(c, "UPDATE experiment_logs SET model_id = (SELECT id FROM"
               " model_registry WHERE name = 'M'),"
               " selected_instance_type = 'm5.large',"
               " projected_hourly_savings = 0.25, prediction_score = 0.5,"
               " execution_duration_ms = 7, is_shadow_run = TRUE"
               " WHERE execution_time = (SELECT max(execution_time)"
               "  FROM experiment_logs)");
    n = th_count(c, "SELECT count(*) FROM v_recent_experiments");
    ck_assert_msg(n == 1000, "v_recent_experiments shows %ld rows after "
                  "two models share a version, expected 1000", n);
    got = th_scalar(c, "SELECT concat_ws('/', decision, prediction_score,"
                       " is_shadow_run, execution_duration_ms, instance_type,"
                       " pipeline_mode, account_name, model_name,"
                       " model_version, selected_instance_type,"
                       " projected_hourly_savings)"
                       " FROM v_recent_experiments"
                       " ORDER BY execution_time DESC LIMIT 1");
    ck_assert_msg(same(got, "STAY/0.5/t/7/c5.large/CLUSTER/exp/M/v1/"
                            "m5.large/0.25"),
                  "newest row of v_recent_experiments: %s", show(got));
    free(got);
    PQfinish(c);
}
END_TEST

/* ---- 6. comments -------------------------------------------------------- */

START_TEST(table_comments)
{
    PGconn *c = migrated();

    for (size_t i = 0; i < NELEMS(tables); i++) {
        char *got = scalar1(c, "SELECT obj_description(oid, 'pg_class')"
                               " FROM pg_class WHERE relname = $1"
                               " AND relnamespace = 'public'::regnamespace",
                            tables[i].name);

        ck_assert_msg(got != NULL && got[0] != '\0', "table %s has no "
                      "COMMENT", tables[i].name);
        free(got);
    }
    PQfinish(c);
}
END_TEST

/* ---- 7. the admin user -------------------------------------------------- */

START_TEST(admin_user)
{
    PGconn *c = migrated();
    PGresult *r = query(c,
        "SELECT email, username, full_name, role, is_active::text,"
        " hashed_password FROM users", 0, NULL);
    const char *hash;

    ck_assert_msg(PQntuples(r) == 1, "users holds %d rows after migrating, "
                  "expected only the admin", PQntuples(r));
    ck_assert_msg(same(PQgetvalue(r, 0, 0), "admin@spotoptimizer.local"),
                  "admin email is %s", PQgetvalue(r, 0, 0));
    ck_assert_msg(same(PQgetvalue(r, 0, 1), "admin"), "admin username is %s",
                  PQgetvalue(r, 0, 1));
    ck_assert_msg(!PQgetisnull(r, 0, 2) &&
                  same(PQgetvalue(r, 0, 2), "System Administrator"),
                  "admin full_name is %s", PQgetvalue(r, 0, 2));
    ck_assert_msg(same(PQgetvalue(r, 0, 3), "admin"), "admin role is %s",
                  PQgetvalue(r, 0, 3));
    ck_assert_msg(same(PQgetvalue(r, 0, 4), "true"), "admin is_active is %s",
                  PQgetvalue(r, 0, 4));
    PQclear(r);

    hash = admin_hash(c);
    ck_assert_msg(strncmp(hash, "$2b$12$", 7) == 0, "admin hash does not "
                  "start with $2b$12$ (a bcrypt hash of cost 12)");
    ck_assert_msg(strlen(hash) == 60, "admin hash has %zu characters, a "
                  "bcrypt hash has 60", strlen(hash));
    ck_assert_msg(crypt_matches("admin", hash), "crypt(\"admin\", hash) "
                  "does not give the stored hash: admin/admin cannot log in");
    ck_assert_msg(!crypt_matches("wrong", hash), "crypt(\"wrong\", hash) "
                  "gives the stored hash");
    ck_assert_msg(!crypt_matches("Admin", hash), "crypt(\"Admin\", hash) "
                  "gives the stored hash");
    PQfinish(c);
}
END_TEST

/* ---- 8. sessions pinned to UTC ------------------------------------------ */

/* SQL that checks a stored TIMESTAMP `$1` is within 10 s of UTC now. */
static const char near_utc_now_sql[] =
    "SELECT abs(extract(epoch FROM $1::timestamp"
    " - (now() AT TIME ZONE 'UTC')))::text";

static void assert_near_utc_now(PGconn *utc, const char *ts, const char *what)
{
    char *diff = scalar1(utc, near_utc_now_sql, ts);

    ck_assert_msg(diff && strtod(diff, NULL) < 10.0, "%s = %s is %s s away "
                  "from UTC now: the session was not pinned to UTC", what, ts,
                  show(diff));
    free(diff);
}

/* Give the fixture's database a non-UTC default TimeZone and prove that a
 * raw session sees it. */
static void set_database_timezone_kolkata(void)
{
    PGconn *c = raw_connect();
    char sql[160];
    char *tz;

    snprintf(sql, sizeof sql, "ALTER DATABASE %s SET TimeZone TO "
             "'Asia/Kolkata'", th_db_name());
    th_exec(c, sql);
    PQfinish(c);

    {
        char *ci = test_conninfo();

        c = th_connect(ci);
        free(ci);
    }
    tz = th_scalar(c, "SHOW TimeZone");
    ck_assert_msg(same(tz, "Asia/Kolkata"), "a new raw session has TimeZone "
                  "%s, the test needs Asia/Kolkata", show(tz));
    free(tz);
    PQfinish(c);
}

START_TEST(session_pinned_to_utc)
{
    PGconn *utc;
    spotdb_db *db = NULL;
    char *ci, *tz;
    PGresult *r;
    int rc;

    migrate_db();
    set_database_timezone_kolkata();

    ci = test_conninfo();
    rc = th_open_unchecked(&db, ci);
    free(ci);
    ck_assert_msg(rc == 0, "spotdb_open: %d %s", rc, spotdb_last_errmsg());
    tz = th_scalar(db->conn, "SHOW TimeZone");
    ck_assert_msg(same(tz, "UTC") || same(tz, "Etc/UTC"), "a spotdb session "
                  "has TimeZone %s", show(tz));
    free(tz);
    r = PQexec(db->conn, "INSERT INTO users (email, username,"
                         " hashed_password) VALUES ('tz@x', 'tz', 'h')"
                         " RETURNING created_at, updated_at");
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "insert: %s",
                  PQerrorMessage(db->conn));

    utc = raw_connect();
    assert_near_utc_now(utc, PQgetvalue(r, 0, 0), "users.created_at");
    assert_near_utc_now(utc, PQgetvalue(r, 0, 1), "users.updated_at");
    PQclear(r);

    /* The trigger runs in the same pinned session. */
    th_exec(db->conn, "UPDATE users SET updated_at = '2000-01-01'"
                      " WHERE username = 'tz'");
    tz = th_scalar(utc, "SELECT updated_at::text FROM users"
                        " WHERE username = 'tz'");
    ck_assert_ptr_nonnull(tz);
    assert_near_utc_now(utc, tz, "users.updated_at after UPDATE");
    free(tz);
    PQfinish(utc);
    spotdb_close(db);
}
END_TEST

/* The migration's own session is pinned too: the admin row it inserts has
 * a UTC created_at even when the database defaults to another zone. */
START_TEST(migration_session_pinned_to_utc)
{
    PGconn *utc;
    char *ts;

    set_database_timezone_kolkata();
    migrate_db();
    utc = raw_connect();
    ts = th_scalar(utc, "SELECT created_at::text FROM users"
                        " WHERE username = 'admin'");
    ck_assert_msg(ts != NULL, "no admin user");
    assert_near_utc_now(utc, ts, "admin created_at");
    free(ts);
    ts = th_scalar(utc, "SELECT updated_at::text FROM users"
                        " WHERE username = 'admin'");
    ck_assert_msg(ts != NULL, "admin updated_at is NULL");
    assert_near_utc_now(utc, ts, "admin updated_at");
    free(ts);
    PQfinish(utc);
}
END_TEST

/* ---- extension and tracking table --------------------------------------- */

START_TEST(uuid_ossp_installed)
{
    PGconn *c = migrated();
    char *id;

    ck_assert_msg(th_count(c, "SELECT count(*) FROM pg_extension"
                              " WHERE extname = 'uuid-ossp'") == 1,
                  "extension uuid-ossp is not installed");
    id = th_scalar(c, "SELECT id::text FROM users WHERE username = 'admin'");
    ck_assert_msg(id && strlen(id) == 36 && id[14] == '4', "admin id %s is "
                  "not a version-4 UUID from uuid_generate_v4()", show(id));
    free(id);
    PQfinish(c);
}
END_TEST

START_TEST(tracking_table)
{
    static const relspec tracking = { "spotdb_schema_migrations",
                                      tracking_cols, NELEMS(tracking_cols) };
    static const char pk_sql[] =
        "SELECT string_agg(a.attname, ',')"
        " FROM pg_constraint k JOIN pg_attribute a"
        "  ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey)"
        " WHERE k.conrelid = 'public.spotdb_schema_migrations'::regclass"
        "   AND k.contype = 'p'";
    static const char sha_sql[] =
        "SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')";
    PGconn *c = migrated();
    char *file = th_read_file(th_source_path("../sql/0001_initial.sql"));
    char *sha = scalar1(c, sha_sql, file);
    char *pk;
    PGresult *r;

    free(file);
    check_columns(c, &tracking, 'r', false);
    pk = th_scalar(c, pk_sql);
    ck_assert_msg(same(pk, "version"), "spotdb_schema_migrations primary "
                  "key is on (%s), expected (version)", show(pk));
    free(pk);

    r = query(c, "SELECT version::text, name, checksum, applied_at IS NOT"
                 " NULL AND applied_at > now() - interval '1 hour',"
                 " execution_ms >= 0 FROM spotdb_schema_migrations"
                 " ORDER BY version", 0, NULL);
    ck_assert_msg(PQntuples(r) == (int)spotdb_migration_embedded_count(),
                  "spotdb_schema_migrations holds %d rows, expected %zu",
                  PQntuples(r), spotdb_migration_embedded_count());
    ck_assert_msg(same(PQgetvalue(r, 0, 0), "1"), "recorded version %s, "
                  "expected 1", PQgetvalue(r, 0, 0));
    ck_assert_msg(same(PQgetvalue(r, 0, 1), "initial"), "recorded name %s, "
                  "expected initial", PQgetvalue(r, 0, 1));
    ck_assert_msg(same(PQgetvalue(r, 0, 2), sha), "recorded checksum %s, "
                  "sha256 of sql/0001_initial.sql is %s", PQgetvalue(r, 0, 2),
                  show(sha));
    ck_assert_msg(PQgetvalue(r, 0, 3)[0] == 't', "applied_at is not recent");
    ck_assert_msg(PQgetvalue(r, 0, 4)[0] == 't', "execution_ms is negative "
                  "or NULL");
    PQclear(r);
    free(sha);
    PQfinish(c);
}
END_TEST

/* ---- suite -------------------------------------------------------------- */

static Suite *schema_suite(void)
{
    Suite *s = suite_create("schema");
    TCase *tc = tcase_create("schema-v1");

    tcase_add_checked_fixture(tc, th_setup_db, th_teardown_db);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, tables_and_columns);
    tcase_add_test(tc, no_other_relations);
    tcase_add_test(tc, constraints_exact);
    tcase_add_test(tc, constraints_behave);
    tcase_add_test(tc, indexes_exact);
    tcase_add_test(tc, trigger_catalog);
    tcase_add_test(tc, trigger_overrides_updated_at);
    tcase_add_test(tc, views_columns);
    tcase_add_test(tc, view_active_instances_rows);
    tcase_add_test(tc, view_recent_experiments_rows);
    tcase_add_test(tc, table_comments);
    tcase_add_test(tc, admin_user);
    tcase_add_test(tc, session_pinned_to_utc);
    tcase_add_test(tc, migration_session_pinned_to_utc);
    tcase_add_test(tc, uuid_ossp_installed);
    tcase_add_test(tc, tracking_table);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return th_run(schema_suite());
}
