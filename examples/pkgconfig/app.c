/*
 * An outside program, built against an installed libspotdb with nothing
 * but cc and pkg-config (build.sh).  It prints the library's version and,
 * when DATABASE_URL (or the POSTGRES_* or PG* variables) name a server,
 * the schema version of that database.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spotdb/spotdb.h>

int main(void)
{
    spotdb_db *db;
    spotdb_status *st;
    spotdb_open_options opts = SPOTDB_OPEN_OPTIONS_INIT;
    const char *url = getenv("DATABASE_URL");

    printf("libspotdb %s (headers %s), %zu migrations embedded\n",
           spotdb_version(), SPOTDB_VERSION,
           spotdb_migration_embedded_count());
    if (strcmp(spotdb_version(), SPOTDB_VERSION) != 0) {
        fprintf(stderr, "app: loaded a library other than the headers'\n");
        return 1;
    }
    if (!url || !*url) {
        printf("DATABASE_URL is not set: not connecting\n");
        return 0;
    }

    /* Only reads the migration state, so it works on any database. */
    opts.schema_check = SPOTDB_SCHEMA_CHECK_SKIP;
    if (spotdb_open(&db, NULL, &opts) != 0) {
        fprintf(stderr, "app: %s\n", spotdb_last_errmsg());
        return 1;
    }
    if (spotdb_status_get(&st, db) != 0) {
        fprintf(stderr, "app: %s\n", spotdb_errmsg(db));
        spotdb_close(db);
        return 1;
    }
    printf("database at schema version %lld of %lld\n",
           (long long)st->current_version, (long long)st->latest_version);
    spotdb_status_free(st);
    spotdb_close(db);
    return 0;
}
