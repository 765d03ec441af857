/*
 * spotdb: the command-line tool over libspotdb.  It uses only the public
 * API, reads the same environment as the library (see spotdb/db.h), and
 * prints one line per migration; failures are one line on stderr with a
 * non-zero exit.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <spotdb/spotdb.h>

enum { EXIT_USAGE = 2 };

static const char usage_main[] =
    "usage: spotdb [-d CONNINFO] COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  migrate   apply pending schema migrations\n"
    "  status    show the schema version, applied and pending migrations\n"
    "  version   show the library and schema versions\n"
    "  doctor    check for the default admin password, shared external ids,\n"
    "            an unverified TLS connection and schema drift\n"
    "\n"
    "Options:\n"
    "  -d, --database CONNINFO  libpq settings or URI; without it, DATABASE_URL,\n"
    "                           then POSTGRES_HOST/PORT/USER/PASSWORD/DB, then\n"
    "                           libpq's PG* variables are used (keep passwords\n"
    "                           out of it: other users can see a command line)\n"
    "      --trace              print every statement the library runs to stderr\n"
    "                           (operation, time, rows, outcome; never values)\n"
    "  -h, --help               show this help; 'spotdb COMMAND --help' for one\n";

static const char usage_migrate[] =
    "usage: spotdb migrate [--to N] [--dry-run] [--lock-timeout MS]\n"
    "\n"
    "Apply pending migrations, each in its own transaction, printing one line\n"
    "per migration.  Concurrent runs queue on an advisory lock.\n"
    "\n"
    "  --to N             stop after version N (default: the newest)\n"
    "  --dry-run          change nothing; print the SQL that would run\n"
    "  --lock-timeout MS  wait at most MS ms for another migrator (default\n"
    "                     60000; -1 waits without limit)\n";

static const char usage_status[] =
    "usage: spotdb status\n"
    "\n"
    "Show the database's schema version, the applied migrations with their\n"
    "times, and the pending ones.  Changes nothing.\n";

static const char usage_version[] =
    "usage: spotdb version\n"
    "\n"
    "Show the library version and the schema versions it embeds.  Needs no\n"
    "database.\n";

static const char usage_doctor[] =
    "usage: spotdb doctor\n"
    "\n"
    "Check the database and the connection for what an operator should fix:\n"
    "the default admin password still set, accounts sharing an external id,\n"
    "a connection to a non-local host without verified TLS, migrations\n"
    "changed, unknown or pending, and a schema that differs from what the\n"
    "applied migrations build.  Prints one line per finding, 'SEVERITY CODE:\n"
    "message' (severity info, warning or error), or 'no findings'.  Changes\n"
    "nothing.  Exit status: 0 when no finding is a warning or an error, 1\n"
    "otherwise or when the checks could not run, 2 for a usage error.\n";

static int usage_error(const char *msg, const char *usage)
{
    if (*msg)
        fprintf(stderr, "spotdb: %s\n", msg);
    fputs(usage, stderr);
    return EXIT_USAGE;
}

static int fail(spotdb_db *db, int rc)
{
    const char *msg = db ? spotdb_errmsg(db) : spotdb_last_errmsg();

    fprintf(stderr, "spotdb: %s\n", *msg ? msg : spotdb_strerror(rc));
    return EXIT_FAILURE;
}

/* One line per statement: the SQL on one line, cut at 160 bytes. */
static void print_trace(const spotdb_trace_event *ev, void *payload)
{
    char sql[161];
    size_t n = 0;

    (void)payload;
    for (const char *p = ev->sql; *p && n < sizeof sql - 1; p++) {
        bool blank = *p == '\n' || *p == '\t' || *p == ' ' || *p == '\r';

        if (blank && (n == 0 || sql[n - 1] == ' '))
            continue;
        sql[n++] = blank ? ' ' : *p;
    }
    sql[n] = '\0';
    fprintf(stderr, "spotdb: trace: %.3f ms, %" PRId64 " rows, %s%s%s%s: %s%s%s: %s\n",
            (double)ev->duration_us / 1000.0, ev->rows,
            ev->code ? spotdb_strerror(ev->code) : "ok",
            *ev->sqlstate ? " (SQLSTATE " : "", ev->sqlstate,
            *ev->sqlstate ? ")" : "", ev->name,
            *ev->statement ? " " : "", ev->statement, sql);
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

static bool parse_int64(const char *s, int64_t *out)
{
    char *end;

    errno = 0;
    *out = strtoll(s, &end, 10);
    return errno == 0 && end != s && *end == '\0';
}

static void format_time(char *buf, size_t sz, int64_t us)
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;

    if (gmtime_r(&t, &tm))
        strftime(buf, sz, "%Y-%m-%d %H:%M:%S UTC", &tm);
    else
        snprintf(buf, sz, "?");
}

static void on_migration(const spotdb_migration_info *m, const char *sql,
                         void *payload)
{
    int *changes = payload;

    if (sql) {
        printf("-- %04" PRId64 "_%s.sql (version %" PRId64 ")\n%s\n",
               m->version, m->name, m->version, sql);
    } else if (m->state == SPOTDB_MIGRATION_ADOPTED) {
        printf("adopted the existing schema as %04" PRId64 "_%s\n",
               m->version, m->name);
        ++*changes;
    } else {
        printf("applied %04" PRId64 "_%s in %" PRId32 " ms\n", m->version,
               m->name, m->execution_ms);
        ++*changes;
    }
    fflush(stdout);
}

/* Arguments are checked before connecting: a typo is a usage error
 * whatever the state of the server. */
static int parse_migrate(int argc, char **argv, spotdb_migrate_options *opts)
{
    for (int i = 1; i < argc; i++) {
        int64_t v;

        if (strcmp(argv[i], "--dry-run") == 0) {
            opts->dry_run = 1;
        } else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc) {
            if (!parse_int64(argv[++i], &v) || v <= 0)
                return usage_error("--to takes a positive version number",
                                   usage_migrate);
            opts->target_version = v;
        } else if (strcmp(argv[i], "--lock-timeout") == 0 && i + 1 < argc) {
            if (!parse_int64(argv[++i], &v) || v == 0 || v < -1 || v > INT32_MAX)
                return usage_error("--lock-timeout takes a positive number of "
                                   "milliseconds, or -1", usage_migrate);
            opts->lock_timeout_ms = (int32_t)v;
        } else {
            fprintf(stderr, "spotdb: migrate: unknown argument '%s'\n", argv[i]);
            return usage_error("", usage_migrate);
        }
    }
    return 0;
}

static int cmd_migrate(spotdb_db *db, spotdb_migrate_options *opts)
{
    spotdb_status *st = NULL;
    int changes = 0, rc;

    opts->callback = on_migration;
    opts->payload = &changes;
    rc = spotdb_migrate(db, opts);
    if (rc == 0 && !opts->dry_run)
        rc = spotdb_status_get(&st, db);
    if (rc != 0)
        return fail(db, rc);
    if (st)
        printf("%s at version %" PRId64 "\n", changes ? "now" : "up to date",
               st->current_version);
    spotdb_status_free(st);
    return EXIT_SUCCESS;
}

static const char *state_name(int state)
{
    switch (state) {
    case SPOTDB_MIGRATION_APPLIED: return "applied";
    case SPOTDB_MIGRATION_CHANGED: return "CHANGED since applied";
    case SPOTDB_MIGRATION_UNKNOWN: return "unknown to this library";
    default: return "pending";
    }
}

static int cmd_status(spotdb_db *db)
{
    spotdb_status *st;
    int rc;

    if ((rc = spotdb_status_get(&st, db)) != 0)
        return fail(db, rc);
    printf("schema version: %" PRId64 " (library embeds up to %" PRId64 ")\n",
           st->current_version, st->latest_version);
    if (!st->tracked && st->unversioned_schema == 1)
        printf("unversioned schema v1 found: 'spotdb migrate' will adopt it\n");
    else if (!st->tracked && st->unversioned_schema == 2)
        printf("unversioned, partial or different schema found: "
               "'spotdb migrate' will refuse it and list the differences\n");
    else if (!st->tracked && st->unversioned_schema < 0)
        printf("no tracking table, and this role may not probe for a "
               "hand-built schema (it needs CREATE on the database)\n");
    printf("applied:%s\n", st->applied_count ? "" : " none");
    for (size_t i = 0; i < st->applied_count; i++) {
        char when[64];
        const spotdb_migration_info *m = &st->applied[i];

        format_time(when, sizeof when, m->applied_at_us);
        printf("  %04" PRId64 "_%s  %s  %" PRId32 " ms  %s\n", m->version,
               m->name, when, m->execution_ms, state_name(m->state));
    }
    printf("pending:%s\n", st->pending_count ? "" : " none");
    for (size_t i = 0; i < st->pending_count; i++)
        printf("  %04" PRId64 "_%s\n", st->pending[i].version,
               st->pending[i].name);
    spotdb_status_free(st);
    return EXIT_SUCCESS;
}

static int cmd_doctor(spotdb_db *db)
{
    spotdb_doctor_report *r;
    int rc;

    if ((rc = spotdb_doctor_run(&r, db)) != 0)
        return fail(db, rc);
    for (size_t i = 0; i < r->count; i++)
        printf("%s %s: %s\n",
               spotdb_doctor_severity_name(r->findings[i].severity),
               r->findings[i].code, r->findings[i].message);
    if (r->count == 0)
        printf("no findings\n");
    rc = r->worst >= SPOTDB_DOCTOR_WARNING ? EXIT_FAILURE : EXIT_SUCCESS;
    spotdb_doctor_report_free(r);
    return rc;
}

static int cmd_version(int argc)
{
    spotdb_migration_info m;
    size_t n = spotdb_migration_embedded_count();

    if (argc > 1)
        return usage_error("version takes no arguments", usage_version);
    printf("libspotdb %s (headers %s)\n", spotdb_version(), SPOTDB_VERSION);
    if (spotdb_migration_embedded(&m, n - 1) == 0)
        printf("schema versions embedded: 1 to %" PRId64 "\n", m.version);
    for (size_t i = 0; i < n; i++)
        if (spotdb_migration_embedded(&m, i) == 0)
            printf("  %04" PRId64 "_%s  sha256 %s\n", m.version, m.name,
                   m.checksum);
    return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
    spotdb_migrate_options mopts = SPOTDB_MIGRATE_OPTIONS_INIT;
    spotdb_open_options oopts = SPOTDB_OPEN_OPTIONS_INIT;
    const char *conninfo = NULL, *cmd;
    bool trace = false;
    int i = 1, rc;
    spotdb_db *db;

    while (i < argc && argv[i][0] == '-') {
        if ((strcmp(argv[i], "-d") == 0 || strcmp(argv[i], "--database") == 0) &&
            i + 1 < argc) {
            conninfo = argv[i + 1];
            i += 2;
        } else if (strcmp(argv[i], "--trace") == 0) {
            trace = true;
            i++;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage_main, stdout);
            return EXIT_SUCCESS;
        } else {
            fprintf(stderr, "spotdb: unknown option '%s'\n", argv[i]);
            return usage_error("", usage_main);
        }
    }
    if (i == argc)
        return usage_error("no command given", usage_main);
    cmd = argv[i];
    argc -= i;
    argv += i;
    if (strcmp(cmd, "help") == 0) {
        fputs(usage_main, stdout);
        return EXIT_SUCCESS;
    }
    if (strcmp(cmd, "migrate") != 0 && strcmp(cmd, "status") != 0 &&
        strcmp(cmd, "version") != 0 && strcmp(cmd, "doctor") != 0) {
        fprintf(stderr, "spotdb: unknown command '%s'\n", cmd);
        return usage_error("", usage_main);
    }
    if (wants_help(argc, argv)) {
        fputs(strcmp(cmd, "migrate") == 0  ? usage_migrate
              : strcmp(cmd, "status") == 0 ? usage_status
              : strcmp(cmd, "doctor") == 0 ? usage_doctor
                                           : usage_version,
              stdout);
        return EXIT_SUCCESS;
    }
    if (strcmp(cmd, "version") == 0)
        return cmd_version(argc);
    if (strcmp(cmd, "status") == 0 && argc > 1)
        return usage_error("status takes no arguments", usage_status);
    if (strcmp(cmd, "doctor") == 0 && argc > 1)
        return usage_error("doctor takes no arguments", usage_doctor);
    if (strcmp(cmd, "migrate") == 0 &&
        (rc = parse_migrate(argc, argv, &mopts)) != 0)
        return rc;
    /* Every command works on databases that are behind: no handshake. */
    oopts.schema_check = SPOTDB_SCHEMA_CHECK_SKIP;
    if ((rc = spotdb_open(&db, conninfo, &oopts)) != 0)
        return fail(NULL, rc);
    if (trace)
        spotdb_set_trace(db, print_trace, NULL);
    rc = strcmp(cmd, "migrate") == 0  ? cmd_migrate(db, &mopts)
         : strcmp(cmd, "doctor") == 0 ? cmd_doctor(db)
                                      : cmd_status(db);
    spotdb_close(db);
    return rc;
}
