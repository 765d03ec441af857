/*
 * The foundation demo: connect (settings from the environment, see
 * spotdb/db.h), bring the schema up to date, and print what `spotdb status`
 * prints.  It shows the error-handling pattern of the library: every call
 * returns 0 or a negative SPOTDB_E* code, and the handle explains why.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <spotdb/spotdb.h>

static void print_migration(const spotdb_migration_info *m, const char *sql,
                            void *payload)
{
    (void)sql;
    (void)payload;
    printf("  %s %04" PRId64 "_%s (%" PRId32 " ms)\n",
           m->state == SPOTDB_MIGRATION_ADOPTED ? "adopted" : "applied",
           m->version, m->name, m->execution_ms);
}

int main(void)
{
    spotdb_migrate_options opts = SPOTDB_MIGRATE_OPTIONS_INIT;
    spotdb_status *st = NULL;
    spotdb_db *db = NULL;
    int rc;

    printf("libspotdb %s\n", spotdb_version());
    rc = spotdb_open(&db, NULL, NULL);
    if (rc != 0) {
        fprintf(stderr, "demo: %s (%s)\n", spotdb_last_errmsg(),
                spotdb_strerror(rc));
        return EXIT_FAILURE;
    }

    printf("migrating:\n");
    opts.callback = print_migration;
    rc = spotdb_migrate(db, &opts);
    if (rc == 0)
        rc = spotdb_status_get(&st, db);
    if (rc != 0) {
        fprintf(stderr, "demo: %s (%s)\n", spotdb_errmsg(db),
                spotdb_strerror(rc));
        spotdb_close(db);
        return EXIT_FAILURE;
    }

    printf("spotdb status:\n  schema version %" PRId64 " of %" PRId64 "\n",
           st->current_version, st->latest_version);
    for (size_t i = 0; i < st->applied_count; i++)
        printf("  applied %04" PRId64 "_%s, %" PRId32 " ms\n",
               st->applied[i].version, st->applied[i].name,
               st->applied[i].execution_ms);
    printf("  %zu pending\n", st->pending_count);

    spotdb_status_free(st);
    spotdb_close(db);
    return EXIT_SUCCESS;
}
