/*
 * A C++11 program using the public headers and the shared library, built
 * with -Wall -Wextra -Werror -pedantic: the extern "C" guards must hold
 * (without them the calls below would not link), the initialiser macros
 * must be valid C++, and the calls must give their documented results.
 * Needs no server.  Exit status 0 on success, 1 with a message otherwise.
 */
#include <cstdio>
#include <cstring>

#include <spotdb/spotdb.h>

static int failures = 0;

static void expect(bool ok, const char *what)
{
    if (!ok) {
        std::fprintf(stderr, "cxx_consumer: %s\n", what);
        failures++;
    }
}

int main()
{
    expect(std::strcmp(spotdb_version(), SPOTDB_VERSION) == 0,
           "spotdb_version() differs from SPOTDB_VERSION");
    expect(SPOTDB_VERSION_MAJOR >= 0 && SPOTDB_VERSION_MINOR >= 0,
           "version macros are not integers");

    expect(std::strcmp(spotdb_strerror(SPOTDB_ENOTFOUND), "") != 0,
           "spotdb_strerror(SPOTDB_ENOTFOUND) is empty");
    expect(spotdb_strerror(12345) != NULL, "spotdb_strerror of junk is NULL");

    /* The macro and the function give the same defaults. */
    spotdb_open_options by_macro = SPOTDB_OPEN_OPTIONS_INIT;
    spotdb_open_options by_call;
    std::memset(&by_call, 0xff, sizeof by_call);
    expect(spotdb_open_options_init(&by_call, SPOTDB_OPEN_OPTIONS_VERSION) == 0,
           "spotdb_open_options_init failed");
    expect(by_call.version == by_macro.version &&
           by_call.application_name == NULL &&
           by_call.connect_timeout_s == by_macro.connect_timeout_s &&
           by_call.schema_check == SPOTDB_SCHEMA_CHECK_REQUIRE,
           "spotdb_open_options_init differs from SPOTDB_OPEN_OPTIONS_INIT");
    expect(spotdb_open_options_init(&by_call, 0) == SPOTDB_EINVAL,
           "spotdb_open_options_init accepted version 0");

    spotdb_migrate_options mopts = SPOTDB_MIGRATE_OPTIONS_INIT;
    expect(mopts.version == SPOTDB_MIGRATE_OPTIONS_VERSION,
           "SPOTDB_MIGRATE_OPTIONS_INIT has the wrong version");
    spotdb_user_filter filter = SPOTDB_USER_FILTER_INIT;
    expect(filter.role == NULL, "SPOTDB_USER_FILTER_INIT filters");

    /* Settings libpq cannot parse: refused before any connection. */
    spotdb_db *db = NULL;
    expect(spotdb_open(&db, "no equals sign", NULL) == SPOTDB_EINVAL,
           "spotdb_open accepted unparsable settings");
    expect(db == NULL, "spotdb_open left a handle after failing");
    expect(spotdb_last_errmsg()[0] != '\0', "no spotdb_last_errmsg()");
    spotdb_close(db);

    size_t n = spotdb_migration_embedded_count();
    spotdb_migration_info info;
    expect(n >= 1 && spotdb_migration_embedded(&info, 0) == 0 &&
           info.version == 1 && info.state == SPOTDB_MIGRATION_PENDING,
           "the first embedded migration is not 0001");
    expect(spotdb_migration_embedded(&info, n) == SPOTDB_EINVAL,
           "spotdb_migration_embedded accepted an index out of range");

    /* Row structs and column bits as a C++ caller fills them. */
    spotdb_user user = spotdb_user();
    user.email = "cxx@example.com";
    uint64_t fields = SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME;
    expect(fields == 6 && user.nulls == 0 && user.id[0] == '\0',
           "column bits or value-initialised row are wrong");
    spotdb_user_free(NULL);

    if (failures == 0)
        std::printf("cxx_consumer: libspotdb %s from C++, %zu migrations\n",
                    spotdb_version(), n);
    return failures == 0 ? 0 : 1;
}
