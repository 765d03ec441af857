/*
 * Recognising schema v1 in a database that has no tracking table: a
 * database built by hand from the original schema file.
 *
 * The reference is not a second, hand-kept description of v1: the
 * migration itself is run in a scratch schema inside a savepoint, both
 * schemas are described by the same catalog query, and the savepoint is
 * rolled back.  So what is accepted is exactly what 0001_initial.sql
 * builds.  Compared per relation: kind, columns in order (type,
 * nullability, default), constraints, indexes and triggers with their
 * definitions; per function: signature and language.  Comments and view
 * texts are not compared (the original wording differs); view columns are.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"

#define PROBE_SCHEMA "spotdb_catalog_probe"
#define MAX_LISTED 25

/* One row per catalog fact, "kind object detail", schema-qualified names
 * everywhere because search_path is pg_catalog while it runs. */
static const char fingerprint_sql[] =
    "WITH rels AS ("
    "  SELECT c.oid, c.relname, c.relkind, c.relrowsecurity,"
    "    c.relforcerowsecurity, c.reloptions FROM pg_class c"
    "  JOIN pg_namespace n ON n.oid = c.relnamespace"
    "  WHERE n.nspname = $1 AND c.relkind IN ('r', 'v', 'p', 'm')"
    "    AND NOT EXISTS (SELECT 1 FROM pg_depend d"
    "      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid"
    "        AND d.deptype = 'e'))"
    " SELECT 'relation', relname, CASE relkind WHEN 'r' THEN 'table'"
    "   WHEN 'v' THEN 'view' WHEN 'p' THEN 'partitioned table'"
    "   ELSE 'materialized view' END FROM rels"
    " UNION ALL"
    " SELECT 'column', r.relname, format('#%s %s %s%s%s',"
    "   lpad((row_number() OVER (PARTITION BY r.oid ORDER BY a.attnum))::text,"
    "        3, '0'),"
    "   quote_ident(a.attname), format_type(a.atttypid, a.atttypmod),"
    "   CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END,"
    "   COALESCE(' DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid), ''))"
    " FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid"
    "   AND a.attnum > 0 AND NOT a.attisdropped"
    " LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum"
    " UNION ALL"
    " SELECT 'constraint', r.relname,"
    "   quote_ident(co.conname) || ' ' || pg_get_constraintdef(co.oid)"
    " FROM rels r JOIN pg_constraint co ON co.conrelid = r.oid"
    " UNION ALL"
    " SELECT 'index', r.relname, pg_get_indexdef(i.indexrelid)"
    " FROM rels r JOIN pg_index i ON i.indrelid = r.oid"
    " UNION ALL"
    " SELECT 'trigger', r.relname, pg_get_triggerdef(t.oid)"
    " FROM rels r JOIN pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal"
    /* tenant isolation (0003): a policy or a flag lost is a hole */
    " UNION ALL"
    " SELECT 'row security', relname, concat_ws(' ',"
    "   CASE WHEN relrowsecurity THEN 'enabled' END,"
    "   CASE WHEN relforcerowsecurity THEN 'forced' END)"
    " FROM rels WHERE relrowsecurity OR relforcerowsecurity"
    " UNION ALL"
    " SELECT 'options', relname, array_to_string(reloptions, ', ')"
    " FROM rels WHERE reloptions IS NOT NULL"
    " UNION ALL"
    " SELECT 'policy', r.relname, format('%s %s %s TO %s USING (%s) "
    "WITH CHECK (%s)', quote_ident(p.polname),"
    "   CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END,"
    "   CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT'"
    "     WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,"
    "   (SELECT string_agg(CASE WHEN o = 0 THEN 'public'"
    "      ELSE (SELECT quote_ident(rolname) FROM pg_roles WHERE oid = o)"
    "      END, ', ' ORDER BY o) FROM unnest(p.polroles) o),"
    "   pg_get_expr(p.polqual, p.polrelid),"
    "   pg_get_expr(p.polwithcheck, p.polrelid))"
    " FROM rels r JOIN pg_policy p ON p.polrelid = r.oid"
    " UNION ALL"
    " SELECT 'function', p.proname, quote_ident(p.proname) || '('"
    "   || pg_get_function_identity_arguments(p.oid) || ') '"
    "   || pg_get_function_result(p.oid) || ' ' || l.lanname"
    " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
    " JOIN pg_language l ON l.oid = p.prolang"
    " WHERE n.nspname = $1 AND NOT EXISTS (SELECT 1 FROM pg_depend d"
    "   WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid"
    "     AND d.deptype = 'e')";

typedef struct fact_list {
    char **line;                    /* "kind object: detail" */
    char **object;
    size_t n;
} fact_list;

static void facts_free(fact_list *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->line[i]);
        free(f->object[i]);
    }
    free(f->line);
    free(f->object);
    memset(f, 0, sizeof *f);
}

/* Copy s replacing every "from" by "to". */
static char *replace_all(const char *s, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), n = 0, o = 0;
    char *out;

    for (const char *p = strstr(s, from); p; p = strstr(p + fl, from))
        n++;
    out = spotdb__malloc(strlen(s) + n * (tl > fl ? tl - fl : 0) + 1);
    if (!out)
        return NULL;
    while (*s) {
        if (strncmp(s, from, fl) == 0) {
            memcpy(out + o, to, tl);
            o += tl;
            s += fl;
        } else {
            out[o++] = *s++;
        }
    }
    out[o] = '\0';
    return out;
}

/* Describe `schema`, naming it as `as_name` in every definition. */
static int describe(spotdb_db *db, const char *schema, const char *qualified,
                    const char *as_qualified, fact_list *out)
{
    const char *params[1] = { schema };
    PGresult *res = spotdb__exec_params(db, fingerprint_sql, 1, params,
                                        "reading the catalog");
    int rows;

    memset(out, 0, sizeof *out);
    if (!res)
        return db->errcode;
    rows = PQntuples(res);
    out->line = spotdb__calloc((size_t)rows + 1, sizeof *out->line);
    out->object = spotdb__calloc((size_t)rows + 1, sizeof *out->object);
    if (!out->line || !out->object)
        goto oom;
    for (int r = 0; r < rows; r++) {
        char *detail = replace_all(PQgetvalue(res, r, 2), qualified,
                                   as_qualified);
        size_t len;

        if (!detail)
            goto oom;
        len = strlen(PQgetvalue(res, r, 0)) + strlen(PQgetvalue(res, r, 1)) +
              strlen(detail) + 4;
        out->line[r] = spotdb__malloc(len);
        out->object[r] = spotdb__strdup(PQgetvalue(res, r, 1));
        if (out->line[r])
            snprintf(out->line[r], len, "%s %s: %s", PQgetvalue(res, r, 0),
                     PQgetvalue(res, r, 1), detail);
        free(detail);
        out->n = (size_t)r + 1;
        if (!out->line[r] || !out->object[r])
            goto oom;
    }
    PQclear(res);
    return 0;
oom:
    PQclear(res);
    facts_free(out);
    return spotdb__fail(db, SPOTDB_ENOMEM, "out of memory reading the catalog");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool names_object(const fact_list *f, const char *object)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->object[i], object) == 0)
            return true;
    return false;
}

/* Keep only the facts of `actual` about objects the reference has, so
 * unrelated tables of the database do not count. */
static void keep_known(fact_list *actual, const fact_list *ref)
{
    size_t w = 0;

    for (size_t r = 0; r < actual->n; r++) {
        if (names_object(ref, actual->object[r])) {
            actual->line[w] = actual->line[r];
            actual->object[w] = actual->object[r];
            w++;
        } else {
            free(actual->line[r]);
            free(actual->object[r]);
        }
    }
    actual->n = w;
}

static void append(char *buf, size_t bufsz, const char *s)
{
    size_t n = strlen(buf);

    if (n + 1 < bufsz)
        snprintf(buf + n, bufsz - n, "%s", s);
}

/* Whether line is the "relation X" or "function X" fact of its object:
 * the one line that stands for a whole missing object. */
static bool is_object_line(const char *line)
{
    return strncmp(line, "relation ", 9) == 0 ||
           strncmp(line, "function ", 9) == 0;
}

static void note(char *msg, size_t msgsz, size_t *n, const char *what,
                 const char *line)
{
    if (++*n <= MAX_LISTED) {
        append(msg, msgsz, what);
        append(msg, msgsz, line);
    }
}

/* Sorted merge of the two lists; writes the differences into msg and
 * returns their number.  An object missing altogether counts once, not
 * once per column, index and constraint. */
static size_t diff(fact_list *ref, fact_list *act, char *msg, size_t msgsz)
{
    size_t i = 0, j = 0, n = 0;

    for (size_t k = 0; k < ref->n; k++)
        if (!names_object(act, ref->object[k]) && is_object_line(ref->line[k]))
            note(msg, msgsz, &n, "; missing: ", ref->line[k]);
    for (size_t k = 0; k < ref->n; k++)
        if (!names_object(act, ref->object[k]))
            ref->line[k][0] = '\0';    /* already reported */
    qsort(ref->line, ref->n, sizeof *ref->line, cmp_str);
    qsort(act->line, act->n, sizeof *act->line, cmp_str);
    while (i < ref->n && !ref->line[i][0])
        i++;
    while (i < ref->n || j < act->n) {
        int c = i == ref->n ? 1 : j == act->n ? -1
                                              : strcmp(ref->line[i], act->line[j]);
        if (c == 0) {
            i++, j++;
        } else if (c < 0) {
            note(msg, msgsz, &n, "; missing or different: ", ref->line[i++]);
        } else {
            note(msg, msgsz, &n, "; unexpected: ", act->line[j++]);
        }
    }
    return n;
}

/* The current schema, bare and as PostgreSQL prints it qualified. */
static int current_schema(spotdb_db *db, char *bare, char *quoted, size_t sz)
{
    PGresult *res = spotdb__exec(db, "SELECT current_schema(), "
                                     "quote_ident(current_schema())",
                                 "reading the current schema");

    if (!res)
        return db->errcode;
    if (PQgetisnull(res, 0, 0)) {
        PQclear(res);
        return spotdb__fail(db, SPOTDB_EINVAL, "no schema of search_path "
                            "exists: nothing to create the tables in");
    }
    snprintf(bare, sz, "%s", PQgetvalue(res, 0, 0));
    snprintf(quoted, sz, "%s.", PQgetvalue(res, 0, 1));
    PQclear(res);
    return 0;
}

static int probe_facts(spotdb_db *db, const spotdb__migration *m, size_t n,
                       const char *target_q, fact_list *ref)
{
    int rc = spotdb__command(db, "CREATE SCHEMA " PROBE_SCHEMA,
                             "creating the probe schema");

    if (rc == 0)
        rc = spotdb__command(db,
                             "SELECT set_config('search_path', '" PROBE_SCHEMA
                             ", ' || current_setting('search_path'), true)",
                             "setting search_path");
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = spotdb__run_script(db, &m[i], "building the reference catalog "
                                "from ", "");
    if (rc == 0)
        rc = spotdb__command(db, "SELECT set_config('search_path', "
                                 "'pg_catalog', true)",
                             "setting search_path");
    if (rc == 0)
        rc = describe(db, PROBE_SCHEMA, PROBE_SCHEMA ".", target_q, ref);
    return rc;
}

/* The common case, a new database, needs no probe: a schema with no
 * table, view or function of its own holds none of the migration's. */
static int schema_is_empty(spotdb_db *db, bool *empty)
{
    PGresult *res = spotdb__exec(
        db,
        "SELECT NOT EXISTS (SELECT 1 FROM pg_class"
        "  WHERE relnamespace = current_schema()::regnamespace"
        "    AND relkind IN ('r', 'v', 'p', 'm'))"
        " AND NOT EXISTS (SELECT 1 FROM pg_proc p"
        "  WHERE pronamespace = current_schema()::regnamespace"
        "    AND NOT EXISTS (SELECT 1 FROM pg_depend d"
        "      WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid"
        "        AND d.deptype = 'e'))",
        "looking at the current schema");

    if (!res)
        return db->errcode;
    *empty = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return 0;
}

/* `adoption`: word the differences for a database about to be adopted. */
static int compare(spotdb_db *db, const spotdb__migration *m, size_t nm,
                   bool adoption, int *match)
{
    char target[256], target_q[260];
    fact_list ref = { 0 }, act = { 0 };
    char msg[SPOTDB__ERRMSG_MAX] = "";
    bool empty = false;
    int rc;

    *match = SPOTDB__CATALOG_DIFFERENT;
    if ((rc = current_schema(db, target, target_q, sizeof target)) != 0)
        return rc;
    if ((rc = schema_is_empty(db, &empty)) != 0)
        return rc;
    if (empty) {
        *match = SPOTDB__CATALOG_ABSENT;
        return 0;
    }
    if ((rc = spotdb__command(db, "SAVEPOINT spotdb_probe", "savepoint")) != 0)
        return rc;
    rc = probe_facts(db, m, nm, target_q, &ref);
    if (rc == 0)
        rc = describe(db, target, target_q, target_q, &act);
    /* Whatever happened, the probe schema and search_path go away. */
    if (PQstatus(db->conn) == CONNECTION_OK) {
        PGresult *r = spotdb__pq_exec(db, "ROLLBACK TO SAVEPOINT "
                                      "spotdb_probe; RELEASE SAVEPOINT "
                                      "spotdb_probe", "rolling back the probe");
        if (rc == 0 && PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = spotdb__fail_result(db, r, "rolling back the probe");
        PQclear(r);
    }
    if (rc == 0) {
        keep_known(&act, &ref);
        if (act.n == 0) {
            *match = SPOTDB__CATALOG_ABSENT;
        } else {
            size_t n = diff(&ref, &act, msg, sizeof msg);
            if (n == 0) {
                *match = SPOTDB__CATALOG_EQUAL;
            } else if (!adoption) {
                spotdb__fail(db, SPOTDB_EADOPT,
                             "schema \"%s\" differs from the schema that %s%s"
                             "%s build%s: %zu difference%s%s%s", target,
                             m->filename, nm > 1 ? " to " : "",
                             nm > 1 ? m[nm - 1].filename : "",
                             nm > 1 ? "" : "s", n, n == 1 ? "" : "s", msg,
                             n > MAX_LISTED ? "; ..." : "");
            } else {
                spotdb__fail(db, SPOTDB_EADOPT,
                             "schema \"%s\" holds part of the schema that %s "
                             "builds, or a different one: %zu difference%s%s%s",
                             target, m->filename, n, n == 1 ? "" : "s", msg,
                             n > MAX_LISTED ? "; ..." : "");
            }
        }
    }
    facts_free(&ref);
    facts_free(&act);
    return rc;
}

int spotdb__catalog_compare(spotdb_db *db, const spotdb__migration *m,
                            int *match)
{
    return compare(db, m, 1, true, match);
}

int spotdb__catalog_compare_many(spotdb_db *db, const spotdb__migration *m,
                                 size_t n, int *match)
{
    return compare(db, m, n, false, match);
}
