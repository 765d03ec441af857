/*
 * The program of a meson project that gets libspotdb through
 * dependency('libspotdb'), installed or as a subproject.  It prints the
 * library's version and the description of an error code; when
 * DATABASE_URL is set it also opens that database and prints its schema
 * version.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spotdb/spotdb.h>

int main(void)
{
    spotdb_db *db;
    spotdb_status *st;
    spotdb_open_options opts;
    const char *url = getenv("DATABASE_URL");

    printf("spot-agent on libspotdb %s; SPOTDB_ENOTFOUND is \"%s\"\n",
           spotdb_version(), spotdb_strerror(SPOTDB_ENOTFOUND));
    if (strcmp(spotdb_version(), SPOTDB_VERSION) != 0)
        return 1;
    if (!url || !*url)
        return 0;

    /* The function rather than the macro, as a binding would do it. */
    if (spotdb_open_options_init(&opts, SPOTDB_OPEN_OPTIONS_VERSION) != 0)
        return 1;
    opts.schema_check = SPOTDB_SCHEMA_CHECK_SKIP;
    opts.application_name = "spot-agent";
    if (spotdb_open(&db, NULL, &opts) != 0) {
        fprintf(stderr, "spot-agent: %s\n", spotdb_last_errmsg());
        return 1;
    }
    if (spotdb_status_get(&st, db) != 0) {
        fprintf(stderr, "spot-agent: %s\n", spotdb_errmsg(db));
        spotdb_close(db);
        return 1;
    }
    printf("database at schema version %lld\n",
           (long long)st->current_version);
    spotdb_status_free(st);
    spotdb_close(db);
    return 0;
}
