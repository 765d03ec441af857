/*
 * Masking of secrets in messages, without a server: spotdb__redact on its
 * own, then the whole open path (spotdb_open on malformed or unreachable
 * settings, from the argument and from the environment), where the only
 * thing that matters is that the password never comes back in
 * spotdb_last_errmsg().
 *
 * Every connection string here names a socket directory that does not
 * exist (host=/nonexistent-socket-dir, URI host %2Fnonexistent) and
 * connect_timeout=1, so nothing waits on the network.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

#define M "Mark3rPw"                /* the marker password */
#define M_ENC "Mark%33rPw"          /* the same, percent-encoded */
#define KVHOST "host=/nonexistent-socket-dir"
#define OUTSZ 4096

/* ---- helpers ------------------------------------------------------------ */

static char out[OUTSZ];

/* Redact into the static buffer and return it. */
static const char *red(const char *msg, const char *raw,
                       const char *const *secrets)
{
    memset(out, 'Z', sizeof out);
    spotdb__redact(out, sizeof out, msg, raw, secrets);
    ck_assert_msg(memchr(out, '\0', sizeof out) != NULL, "not NUL-terminated");
    return out;
}

/* The marker, raw or percent-encoded, must not survive. */
static void no_marker_in(const char *what, const char *text)
{
    ck_assert_msg(strstr(text, M) == NULL,
                  "LEAK (%s): the password survived: [%s]", what, text);
    ck_assert_msg(strstr(text, M_ENC) == NULL,
                  "LEAK (%s): the encoded password survived: [%s]", what,
                  text);
}

static void expect_masked(const char *msg, const char *raw)
{
    const char *r = red(msg, raw, NULL);

    ck_assert_msg(strstr(r, M) == NULL && strstr(r, M_ENC) == NULL,
                  "LEAK: msg [%s] raw [%s] -> [%s]", msg, raw ? raw : "(null)",
                  r);
}

static void expect_same(const char *msg, const char *raw,
                        const char *const *secrets)
{
    const char *r = red(msg, raw, secrets);

    ck_assert_msg(strcmp(r, msg) == 0, "changed: [%s] -> [%s]", msg, r);
}

static void expect_result(const char *msg, const char *raw,
                          const char *const *secrets, const char *want)
{
    const char *r = red(msg, raw, secrets);

    ck_assert_msg(strcmp(r, want) == 0, "[%s] -> [%s], want [%s]", msg, r,
                  want);
}

/* Environment variables that steer libpq or spotdb_open; saved, cleared
 * for the open tests, restored afterwards (Check may run without fork). */
static const char *const env_names[] = {
    "DATABASE_URL", "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER",
    "POSTGRES_PASSWORD", "POSTGRES_DB", "PGHOST", "PGHOSTADDR", "PGPORT",
    "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSERVICE", "PGCONNECT_TIMEOUT",
    "PGOPTIONS", "PGAPPNAME",
};
#define N_ENV (sizeof env_names / sizeof env_names[0])
static char *env_saved[N_ENV];
static bool env_was_set[N_ENV];

static void env_isolate(void)
{
    for (size_t i = 0; i < N_ENV; i++) {
        const char *v = getenv(env_names[i]);

        env_was_set[i] = v != NULL;
        env_saved[i] = v ? strdup(v) : NULL;
        unsetenv(env_names[i]);
    }
}

static void env_restore(void)
{
    for (size_t i = 0; i < N_ENV; i++) {
        if (env_was_set[i] && env_saved[i])
            setenv(env_names[i], env_saved[i], 1);
        else
            unsetenv(env_names[i]);
        free(env_saved[i]);
        env_saved[i] = NULL;
        env_was_set[i] = false;
    }
}

/* spotdb_open must fail with EINVAL or ECONN, leave *out NULL, and say
 * something without the password.  Returns the code. */
static int open_fails_clean(const char *conninfo, char *why, size_t whysz)
{
    static int sentinel;
    spotdb_db *db = (spotdb_db *)(void *)&sentinel;
    int rc = th_open_unchecked(&db, conninfo);
    const char *msg = spotdb_last_errmsg();

    why[0] = '\0';
    if (rc != SPOTDB_EINVAL && rc != SPOTDB_ECONN)
        snprintf(why, whysz, "rc %d (want EINVAL or ECONN): %s", rc, msg);
    else if (db != NULL)
        snprintf(why, whysz, "rc %d but db is not NULL", rc);
    else if (!*msg)
        snprintf(why, whysz, "rc %d with an empty message", rc);
    else if (strstr(msg, M) || strstr(msg, M_ENC))
        snprintf(why, whysz, "LEAK: %s", msg);
    if (db != NULL && db != (spotdb_db *)(void *)&sentinel)
        spotdb_close(db);
    return rc;
}

static void expect_open_clean(const char *conninfo)
{
    char why[2 * SPOTDB__ERRMSG_MAX];

    open_fails_clean(conninfo, why, sizeof why);
    ck_assert_msg(why[0] == '\0', "spotdb_open(\"%s\"): %s", conninfo, why);
}

/* ---- keyword/value strings ------------------------------------------------ */

START_TEST(kv_plain)
{
    expect_result("invalid settings: \"host=h password=" M " dbname=d\"",
                  NULL, NULL,
                  "invalid settings: \"host=h password=*** dbname=d\"");
    expect_result("password=" M, NULL, NULL, "password=***");
    expect_result("x password=" M "\nnext line", NULL, NULL,
                  "x password=***\nnext line");
    /* Not only in the message: the raw string's value is masked where it
     * appears alone. */
    expect_result("token \"" M "\" is bad", "host=h password=" M " port=1",
                  NULL, "token \"***\" is bad");
}
END_TEST

START_TEST(kv_case_and_spacing)
{
    expect_masked("PASSWORD=" M, NULL);
    expect_masked("Password=" M, NULL);
    expect_masked("password = " M, NULL);
    expect_masked("password\t=\t" M, NULL);
    expect_masked("password =   '" M "'", NULL);
    expect_masked("hashed_password=" M, NULL);
    expect_result("PASSWORD=" M " and Password = " M " and password='" M "'",
                  NULL, NULL, "PASSWORD=*** and Password = *** and password='***'");
}
END_TEST

START_TEST(kv_quoted_values)
{
    /* libpq's own quoting: single quotes, backslash escapes. */
    expect_masked("bad: \"host=h password='" M "' dbname=d\"", NULL);
    expect_masked("bad: \"password='it\\'s " M " \\\\ x' dbname=d\"", NULL);
    expect_masked("bad: \"password='\\'" M "\\'' dbname=d\"", NULL);
    expect_masked("bad: \"password='a b " M " c' dbname=d\"", NULL);
    /* Unterminated: everything to the end is the value. */
    expect_masked("bad: password='x " M, NULL);
    expect_masked("bad: password='x\\' " M, NULL);
    /* Useful text after a quoted value is kept. */
    expect_result("password='a b " M "' dbname=d", NULL, NULL,
                  "password='***' dbname=d");
}
END_TEST

START_TEST(kv_special_characters)
{
    expect_masked("password='x/" M "@y:z w'", NULL);
    expect_masked("password=x/" M "@y:z", NULL);
    expect_masked("password='" M " with spaces'", NULL);
    expect_masked("password=\\" M, NULL);
    expect_masked("token " M, "password=" M);
    expect_masked("token x/" M "@y:z w", "password='x/" M "@y:z w'");
    /* The raw string's percent-decoded value is masked too. */
    expect_masked("token " M, "password=" M_ENC);
    expect_masked("token " M_ENC, "password=" M_ENC);
}
END_TEST

START_TEST(kv_multiple_occurrences)
{
    const char *r = red("password=" M " password=" M " a=1 password='" M "' "
                        "x " M " y " M,
                        "password=" M, NULL);

    no_marker_in("several", r);
    ck_assert_str_eq(r, "password=*** password=*** a=1 password='***' x *** y ***");
}
END_TEST

/* DEFECT (redact.c, find_keyword_values): a quoted value ends at the first
 * quote, so SQL-style doubling ('') or text glued to the closing quote
 * leaves the rest of the password visible. */
START_TEST(defect_kv_doubled_quote)
{
    expect_masked("bad: \"host=h password='it''s " M " \\' x' dbname=d\"", NULL);
    expect_masked("bad: \"password='it''" M "'\"", NULL);
    expect_masked("bad: \"password=''" M "\"", NULL);
}
END_TEST

/* DEFECT: password="..." (double quotes are no quoting for libpq, so the
 * password holds them): the value is empty to the redactor. */
START_TEST(defect_kv_double_quoted)
{
    expect_masked("bad: host=h password=\"" M "\" dbname=d", NULL);
    expect_masked("token " M, "host=h password=\"" M "\"");
}
END_TEST

/* ---- URIs ------------------------------------------------------------------ */

START_TEST(uri_userinfo)
{
    expect_result("bad URI: \"postgresql://u:" M "@h/db\"", NULL, NULL,
                  "bad URI: \"postgresql://u:***@h/db\"");
    expect_result("bad URI: \"postgres://u:" M "@h:5432/db\"", NULL, NULL,
                  "bad URI: \"postgres://u:***@h:5432/db\"");
    expect_masked("postgresql://:" M "@h/db", NULL);
    expect_masked("postgresql://u:" M "@[::1]:5432/db?sslmode=disable", NULL);
    expect_masked("x postgresql://u:" M "@h and postgres://v:" M "@h2 y", NULL);
    expect_masked("postgresql://u:" M "@h1:1,h2:2/db", NULL);
}
END_TEST

START_TEST(uri_query_password)
{
    expect_result("\"postgresql://h/db?password=" M "&sslmode=disable\"", NULL,
                  NULL, "\"postgresql://h/db?password=***&sslmode=disable\"");
    expect_result("\"postgresql://h/db?sslmode=disable&password=" M "\"", NULL,
                  NULL, "\"postgresql://h/db?sslmode=disable&password=***\"");
    expect_masked("postgresql://h/db?password=" M "#frag", NULL);
    expect_masked("postgresql:///db?host=%2Ftmp&PASSWORD=" M "&x=1", NULL);
    expect_masked("postgresql://h/db?password=" M M "&password=" M, NULL);
    expect_masked("token " M, "postgresql://h/db?password=" M "&sslmode=x");
    expect_masked("token " M, "postgresql://h/db?password=" M "#f");
}
END_TEST

START_TEST(uri_percent_encoded)
{
    const char *raw = "postgresql://u:" M_ENC "@h/db";

    /* The URI quoted in the message, and the decoded password anywhere. */
    expect_masked("bad: \"postgresql://u:" M_ENC "@h/db\"", NULL);
    expect_result("bad: \"postgresql://u:" M_ENC "@h/db\", decoded " M, raw,
                  NULL, "bad: \"postgresql://u:***@h/db\", decoded ***");
    expect_masked("token \"" M_ENC "\"", raw);
    expect_masked("value " M, raw);
    /* Lower-case hex, an encoded first letter, and query parameters. */
    expect_masked("value " M, "postgresql://u:Mark%33rP%77@h/db");
    expect_masked("value " M, "postgresql://u:%4dark3rPw@h/db");
    expect_masked("value " M, "postgresql://h/db?password=" M_ENC "&a=b");
    expect_masked("value " M_ENC " and " M,
                  "postgresql://h/db?password=" M_ENC "&a=b");
}
END_TEST

START_TEST(uri_special_characters)
{
    /* Unencoded '/', '@' and ':' in the password of a quoted URI. */
    expect_masked("bad: \"postgresql://u:x/" M "@h/db\"", NULL);
    expect_masked("bad: \"postgresql://u:x@" M "@h/db\"", NULL);
    expect_masked("bad: \"postgresql://u:x:" M "@h/db\"", NULL);
    expect_masked("bad: \"postgresql://u:" M "/x@h/db\"", NULL);
    /* Encoded ones, found through raw and decoded. */
    expect_masked("value x/" M "@y:z w",
                  "postgresql://u:x%2F" M "%40y%3Az%20w@h/db");
    expect_masked("value x/" M "@y:z w",
                  "postgresql://h/db?password=x%2F" M "%40y%3Az%20w");
}
END_TEST

START_TEST(uri_token_only)
{
    /* libpq quotes just the token holding a bad percent escape. */
    expect_result("invalid percent-encoded token: \"Mark3r%zzPw\"",
                  "postgresql://u:Mark3r%zzPw@h/db", NULL,
                  "invalid percent-encoded token: \"***\"");
    expect_masked("invalid percent-encoded token: \"" M "%zz\"",
                  "postgresql://u:" M "%zz@h/db");
    expect_masked("forbidden value %00 in percent-encoded value: \"" M "%00\"",
                  "postgresql://u:" M "%00@h/db");
    expect_masked("invalid percent-encoded token: \"" M "%zz\"",
                  "postgresql://h/db?password=" M "%zz&x=y");
    expect_masked("invalid percent-encoded token: \"" M "%\"",
                  "postgres://u:" M "%@h/db");
}
END_TEST

START_TEST(uri_truncated)
{
    /* No '@': whatever follows the first ':' is masked unless a port. */
    expect_masked("bad: \"postgresql://u:" M "\"", NULL);
    expect_masked("bad: \"postgresql://u:" M "/db\"", NULL);
    expect_masked("bad: \"postgres://:" M "\"", NULL);
    expect_masked("bad: postgresql://u:" M, NULL);
    expect_masked("token " M, "postgresql://u:" M);
    expect_masked("token " M, "postgresql://u:" M_ENC);
    /* A port is a port. */
    expect_same("bad: \"postgresql://h:5432/db\"", NULL, NULL);
    expect_same("bad: \"postgresql://h:5432\"", NULL, NULL);
}
END_TEST

/* DEFECT (redact.c, find_uri_userinfo): the user info scan stops at blanks,
 * '?', '#' and '"', which libpq accepts in a URI password (it looks only
 * for '@' and '/'); libpq then quotes the whole URI in its syntax errors. */
START_TEST(defect_uri_blank_in_password)
{
    expect_masked("bad: \"postgresql://u:x " M "@h/db\"", NULL);
    expect_masked("bad: \"postgresql://u:x?" M "@h/db\"", NULL);
    expect_masked("bad: \"postgresql://u:x#" M "@h/db\"", NULL);
    expect_masked("bad: \"postgresql://u:x " M "@[::1/db\"",
                  "postgresql://u:x " M "@[::1/db");
    expect_masked("bad: \"postgresql://u:x\"" M "@[::1/db\"",
                  "postgresql://u:x\"" M "@[::1/db");
}
END_TEST

/* DEFECT: a raw '@' in a URI password.  The redactor takes the last '@'
 * (password "x@Mark3rPw") and masks only that whole literal; libpq splits at
 * the first '@' and names the rest as the host in its message. */
START_TEST(defect_uri_at_in_password_echoed_as_host)
{
    expect_masked("could not translate host name \"" M "@h\" to address",
                  "postgresql://u:x@" M "@h/db");
}
END_TEST

/* DEFECT: a truncated URI without '@' followed by a path: libpq reads the
 * password as the port and quotes it; the raw rule masks "Mark3rPw/db" as
 * one literal, which the message never contains. */
START_TEST(defect_uri_truncated_password_as_port)
{
    expect_masked("cannot connect to PostgreSQL at host \"/x\" port " M
                  ": invalid integer value \"" M "\" for connection option "
                  "\"port\"",
                  "postgresql://u:" M "/db?host=%2Fx");
}
END_TEST

/* DEFECT: an unencoded '/' in a URI password.  libpq's user info ends at
 * the first '/', so it reads "u:x" as host and port and the rest as the
 * database name, which it quotes whole when its percent escapes are bad;
 * the redactor masks only the literal "x/Mark3rPw". */
START_TEST(defect_uri_slash_in_password_echoed_as_dbname)
{
    expect_masked("invalid percent-encoded token: \"" M "@h/db%\"",
                  "postgresql://u:x/" M "@h/db%");
}
END_TEST

/* DEFECT: libpq skips blanks after '=', so in "port= password='a b'" the
 * word "password='a" is the port and "b'" the next keyword, which libpq
 * quotes; the redactor took 'a b' as the password and masks only that
 * whole literal. */
START_TEST(defect_kv_value_swallows_next_keyword)
{
    expect_masked("missing \"=\" after \"" M "\" in connection info string",
                  "port= password='it\\'s " M " \\\\ x' host=/x");
    expect_masked("missing \"=\" after \"b/" M "@:c\" in connection info string",
                  "dbname= password='a b/" M "@:c d' host=/x");
    expect_masked("missing \"=\" after \"" M "\" in connection info string",
                  "sslmode= password " M " host=/x");
}
END_TEST

/* DEFECT (low): "password" without '=' in a URI query (a typo for
 * password=...): libpq quotes the whole parameter. */
START_TEST(defect_uri_query_password_without_equals)
{
    expect_masked("missing key/value separator \"=\" in URI query parameter: "
                  "\"password" M "\"",
                  "postgresql:///db?host=%2Fx&password" M);
}
END_TEST

/* DEFECT (found by tests/fuzz): a truncated URI whose "port" (the
 * password) holds a ','.  libpq starts another host there and quotes the
 * list of ports, "secret%zz,", which neither masked span matched. */
START_TEST(defect_uri_truncated_password_with_comma)
{
    expect_masked("invalid percent-encoded token: \"" M "%zz,\"",
                  "postgresql://u:" M "%zz,x");
    expect_masked("invalid percent-encoded token: \"" M "%zz,\"",
                  "postgres://:" M "%zz,");
}
END_TEST

/* DEFECT (found by tests/fuzz): text glued to a closing quote was taken
 * whole as value, and the scan went on after it, so a second
 * "password=''secret" in that text went unseen; libpq reads "secret" as a
 * keyword and quotes it. */
START_TEST(defect_kv_second_password_in_glued_text)
{
    expect_masked("missing \"=\" after \"" M "\" in connection info string",
                  "password=''password=''" M " host=/x");
    expect_masked("missing \"=\" after \"" M "\" in connection info string",
                  "host=/x password='a'password=''" M);
}
END_TEST

/* DEFECT (found by tests/fuzz): libpq ends a token at any isspace(),
 * \f and \v included, which did not cut the raw value into pieces. */
START_TEST(defect_kv_formfeed_ends_token)
{
    expect_masked("missing \"=\" after \"'" M "\" in connection info string",
                  "password='x''" M "\fhost=/x");
    expect_masked("missing \"=\" after \"'" M "\" in connection info string",
                  "password='x''" M "\vhost=/x");
}
END_TEST

/* DEFECT (found by tests/fuzz): libpq's user info runs over a newline;
 * the rule stopped there, so a URI whose user name holds one, quoted
 * whole by libpq, kept its password. */
START_TEST(defect_uri_newline_in_user)
{
    expect_masked("end of string reached when looking for matching \"]\" in "
                  "IPv6 host address in URI: \"postgresql://us\ner:" M
                  "@[::1/db\"",
                  "postgresql://us\ner:" M "@[::1/db");
}
END_TEST

/* ---- secrets list ------------------------------------------------------ */

START_TEST(secrets_anywhere)
{
    const char *const s1[] = { M, NULL };
    const char *const s2[] = { "other-secret", M, NULL };

    expect_result(M, NULL, s1, "***");
    expect_result(M " at start", NULL, s1, "*** at start");
    expect_result("at end " M, NULL, s1, "at end ***");
    expect_result("in" M "side", NULL, s1, "in***side");
    expect_result(M M " twice glued", NULL, s1, "*** twice glued");
    expect_result("two: " M ", " M ".", NULL, s2, "two: ***, ***.");
    expect_result("a other-secret b " M, NULL, s2, "a *** b ***");
    expect_result("\"" M "\"\n'" M "'", NULL, s1, "\"***\"\n'***'");
    /* A secret overlapping a password= value. */
    expect_result("password=" M "x " M, NULL, s1, "password=*** ***");
}
END_TEST

START_TEST(secrets_percent_decoded)
{
    const char *const enc[] = { M_ENC, NULL };
    const char *const odd[] = { "a/b@c:d e" M, NULL };

    expect_result("raw " M_ENC " decoded " M, NULL, enc, "raw *** decoded ***");
    no_marker_in("secret with specials", red("x a/b@c:d e" M " y", NULL, odd));
}
END_TEST

START_TEST(secrets_edge_cases)
{
    const char *const empty[] = { "", NULL };
    const char *const none[] = { NULL };
    const char *msg = "connection refused: nothing secret here";

    expect_same(msg, NULL, empty);
    expect_same(msg, NULL, none);
    expect_same(msg, NULL, NULL);
    expect_same("", NULL, NULL);
    /* A NULL message is an empty one. */
    memset(out, 'Z', sizeof out);
    spotdb__redact(out, sizeof out, NULL, NULL, NULL);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(secrets_from_pgpassword_in_errors)
{
    /* Every stored message passes the redactor with PGPASSWORD. */
    char *saved = getenv("PGPASSWORD") ? strdup(getenv("PGPASSWORD")) : NULL;

    setenv("PGPASSWORD", M, 1);
    ck_assert_int_eq(spotdb__fail(NULL, SPOTDB_ECONN, "oops %s here", M),
                     SPOTDB_ECONN);
    no_marker_in("spotdb__fail", spotdb_last_errmsg());
    ck_assert_str_eq(spotdb_last_errmsg(), "oops *** here");
    if (saved)
        setenv("PGPASSWORD", saved, 1);
    else
        unsetenv("PGPASSWORD");
    free(saved);
}
END_TEST

/* ---- output size ---------------------------------------------------------- */

static void check_sizes(const char *msg, const char *raw,
                        const char *const *secrets)
{
    char full[OUTSZ], buf[OUTSZ];
    size_t flen;

    spotdb__redact(full, sizeof full, msg, raw, secrets);
    flen = strlen(full);
    no_marker_in("full", full);
    for (size_t sz = 0; sz <= flen + 2 && sz + 1 < sizeof buf; sz++) {
        memset(buf, 'Z', sizeof buf);
        spotdb__redact(buf, sz, msg, raw, secrets);
        {
            /* One assertion per size: Check's are slow in a loop. */
            size_t k = sz;

            while (k < sizeof buf && buf[k] == 'Z')
                k++;
            ck_assert_msg(k == sizeof buf, "outsz %zu: byte %zu written", sz,
                          k);
        }
        if (sz == 0)
            continue;
        ck_assert_msg(memchr(buf, '\0', sz) != NULL,
                      "outsz %zu: not NUL-terminated", sz);
        ck_assert_uint_eq(strlen(buf), sz - 1 < flen ? sz - 1 : flen);
        /* A truncated result is a prefix of the full one. */
        ck_assert_msg(strncmp(buf, full, strlen(buf)) == 0,
                      "outsz %zu: [%s] is no prefix of [%s]", sz, buf, full);
        no_marker_in("truncated", buf);
    }
}

START_TEST(tiny_outsz)
{
    const char *const s1[] = { M, NULL };
    const size_t tiny[] = { 1, 2, 5 };

    check_sizes("password=" M, NULL, NULL);
    check_sizes(M, NULL, s1);
    check_sizes(M "x" M, NULL, s1);
    check_sizes("a postgresql://u:" M "@h/db b", NULL, NULL);
    check_sizes("token " M_ENC " " M, "postgresql://u:" M_ENC "@h/db", NULL);
    check_sizes("no secret at all", NULL, s1);
    for (size_t k = 0; k < sizeof tiny / sizeof tiny[0]; k++) {
        char buf[16];

        memset(buf, 'Z', sizeof buf);
        spotdb__redact(buf, tiny[k], M "tail", NULL, s1);
        ck_assert_uint_eq(strlen(buf), tiny[k] - 1);
        ck_assert_uint_eq(buf[tiny[k]], 'Z');
        ck_assert_msg(strncmp(buf, "***tail", tiny[k] - 1) == 0,
                      "outsz %zu: [%s]", tiny[k], buf);
    }
    /* outsz 0 writes nothing at all. */
    {
        char buf[4] = { 'Z', 'Z', 'Z', 'Z' };

        spotdb__redact(buf, 0, "password=" M, NULL, NULL);
        ck_assert(buf[0] == 'Z' && buf[3] == 'Z');
    }
}
END_TEST

START_TEST(too_many_spans)
{
    /* More secrets than the redactor tracks: nothing may leak. */
    char msg[3000] = "";

    for (int k = 0; k < 150; k++)
        strcat(msg, "password=" M " ");
    no_marker_in("150 occurrences", red(msg, NULL, NULL));
    check_sizes(msg, NULL, NULL);
}
END_TEST

/* ---- useful text is kept ---------------------------------------------- */

START_TEST(messages_without_secrets_unchanged)
{
    const char *const s1[] = { M, NULL };
    static const char *const msgs[] = {
        "connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: "
        "No such file or directory",
        "password authentication failed for user \"app\"",
        "invalid connection option \"passwd\"",
        "missing \"=\" after \"password\" in connection info string",
        "could not translate host name \"db.example.com\" to address",
        "cannot connect to PostgreSQL at host \"db.example.com\" port 5433 "
        "(settings from DATABASE_URL): connection refused",
        "bad URI: \"postgresql://app@db.example.com:5433/spot?sslmode=require\"",
        "relation \"users\" does not exist (SQLSTATE 42P01)",
        "",
    };

    for (size_t k = 0; k < sizeof msgs / sizeof msgs[0]; k++) {
        expect_same(msgs[k], NULL, NULL);
        expect_same(msgs[k], NULL, s1);
        expect_same(msgs[k], "postgresql://app:" M "@db.example.com:5433/spot",
                    s1);
        expect_same(msgs[k], "host=db.example.com port=5433 password=" M, s1);
    }
}
END_TEST

START_TEST(host_and_port_kept)
{
    const char *const s1[] = { M, NULL };
    const char *msg = "cannot connect to PostgreSQL at host \"db.example.com\" "
                      "port 5433 (settings from the conninfo argument): "
                      "password authentication failed for user \"u\"";

    expect_same(msg, "postgresql://u:" M "@db.example.com:5433/db", s1);
    expect_same(msg, "postgres://u:" M_ENC "@db.example.com:5433/db", s1);
    expect_same(msg, "host=db.example.com port=5433 user=u password='" M "'",
                s1);
}
END_TEST

START_TEST(host_and_port_kept_by_open)
{
    static const char *const cis[] = {
        KVHOST " port=5433 user=u password=" M " connect_timeout=1",
        "postgresql://u:" M "@%2Fnonexistent-socket-dir:5433/db?connect_timeout=1",
        "postgres://u:" M_ENC "@%2Fnonexistent-socket-dir:5433/db?connect_timeout=1",
    };

    for (size_t k = 0; k < sizeof cis / sizeof cis[0]; k++) {
        const char *msg;

        expect_open_clean(cis[k]);
        msg = spotdb_last_errmsg();
        ck_assert_msg(strstr(msg, "host \"/nonexistent-socket-dir\" port 5433"),
                      "host/port lost: %s", msg);
        ck_assert_msg(strstr(msg, "/nonexistent-socket-dir/.s.PGSQL.5433"),
                      "libpq's reason lost: %s", msg);
        ck_assert_msg(strstr(msg, "the conninfo argument"), "source lost: %s",
                      msg);
    }
}
END_TEST

/* ---- the open path ------------------------------------------------------ */

/* Keyword/value strings: a password form, a malformation, an order. */
static const char *const kv_pw[] = {
    "password=" M,
    "password='" M "'",
    "PASSWORD=" M,
    "Password = " M,
    "password='x y " M "'",
    "password='it\\'s " M " \\\\ x'",
    "password='it''s " M " \\' x'",
    "password='it''" M "'",
    "password=''" M,
    "password='" M,
    "password=" M "'",
    "password=\"" M "\"",
    "password " M,
    "password=a/" M "@b:c",
    "password='a b/" M "@:c d'",
    "password=" M "%zz",
    "password=" M_ENC,
    "password=\\" M,
    "password='" M "\\'",
    "password=" M " password=" M,
};

static const char *const kv_frag[] = {
    "", "foo=bar", "port=99999", "port=abc", "port=-1", "port=", "=x", "'",
    "novalue", "dbname='unterminated", "sslmode=bogus", "x=\"", "\\",
    "options='-c a=b", "port=5432 port=5433", "target_session_attrs=bogus",
    "dbname=", "user='a b'", "service=spotdb_no_such_service", "keepalives=x",
    "==", "sslmode=",
};

static const char *const kv_layout[] = {
    KVHOST " %s %s connect_timeout=1",            /* pw, frag */
    "%2$s %1$s " KVHOST " connect_timeout=1",     /* frag, pw */
    "connect_timeout=1 %s " KVHOST " %s",         /* pw, frag */
};

/* URIs: scheme, user info, host, path, query. */
static const char *const uri_scheme[] = { "postgresql://", "postgres://" };

static const char *const uri_user[] = {
    "u:" M "@", ":" M "@", "u:" M_ENC "@", "u:%4Dark3rPw@", "u:" M "%zz@",
    "u:" M "%@", "u:" M "%4@", "u:" M "%00@", "u:x%2F" M "%40y@",
    "u:x/" M "@", "u:x@" M "@", "u:x:" M "@", "u:x%20" M "@", "u:x " M "@",
    "u:x?" M "@", "u:x#" M "@",
};

static const char *const uri_host[] = {
    "%2Fnonexistent", "%2Fnonexistent:5432", "%2Fnonexistent:99999",
    "%2Fnonexistent:abc", "[%2Fnonexistent", "[%2Fnonexistent]x",
    "%2Fnonexistent%zz", "%2Fnonexistent%", "%2Fnonexistent,%2Fnonexistent2:1",
    "%2Fnonexistent:",
};

static const char *const uri_path[] = { "/db", "", "/d%zzb", "/db%" };

static const char *const uri_query[] = {
    "?connect_timeout=1",
    "?connect_timeout=1&password=" M,
    "?password=" M "&connect_timeout=1",
    "?connect_timeout=1&sslmode=bogus",
    "?connect_timeout=1&foo=bar",
    "?connect_timeout=1&&",
    "?connect_timeout=1&password",
    "?connect_timeout=1&password=" M "=x",
    "?connect_timeout=1&password=" M "%zz",
    "?connect_timeout=1&password" M,
    "?connect_timeout=1&PASSWORD=" M,
};

/* Truncated URIs (no '@'): the host comes from the query. */
static const char *const uri_short[] = {
    "postgresql://u:" M "?host=%2Fnonexistent&connect_timeout=1",
    "postgresql://u:" M "/db?host=%2Fnonexistent&connect_timeout=1",
    "postgres://:" M "/db?host=%2Fnonexistent&connect_timeout=1",
    "postgresql://u:" M_ENC "?host=%2Fnonexistent&connect_timeout=1",
    "postgresql://u:" M "%zz?host=%2Fnonexistent&connect_timeout=1",
    "postgresql://u:" M "[?host=%2Fnonexistent&connect_timeout=1",
    "postgresql://[u:" M "?host=%2Fnonexistent&connect_timeout=1",
    "postgresql://u:" M,
};

#define MAX_REPORTED 12

typedef struct corpus {
    int total, failed, einval, econn, named;
    char report[6000];
    double slowest;
    char slowest_ci[512];
} corpus;

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void corpus_try(corpus *c, const char *ci)
{
    char why[2 * SPOTDB__ERRMSG_MAX];
    double t0 = now_s(), dt;
    int rc = open_fails_clean(ci, why, sizeof why);

    dt = now_s() - t0;
    c->total++;
    c->einval += rc == SPOTDB_EINVAL;
    c->econn += rc == SPOTDB_ECONN;
    if (dt > c->slowest) {
        c->slowest = dt;
        snprintf(c->slowest_ci, sizeof c->slowest_ci, "%s", ci);
    }
    if (!why[0])
        return;
    c->failed++;
    if (c->failed <= MAX_REPORTED) {
        size_t n = strlen(c->report);

        snprintf(c->report + n, sizeof c->report - n, "\n  [%s] -> %.300s", ci,
                 why);
    }
    if (c->failed <= 60)
        fprintf(stderr, "corpus: [%s] -> %s\n", ci, why);
}

START_TEST(open_corpus)
{
    corpus c;
    char ci[1024];
    double t0 = now_s();

    memset(&c, 0, sizeof c);
    for (size_t l = 0; l < sizeof kv_layout / sizeof kv_layout[0]; l++)
        for (size_t p = 0; p < sizeof kv_pw / sizeof kv_pw[0]; p++)
            for (size_t f = 0; f < sizeof kv_frag / sizeof kv_frag[0]; f++) {
#if defined(__GNUC__)
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wformat-nonliteral"
#endif
                snprintf(ci, sizeof ci, kv_layout[l], kv_pw[p], kv_frag[f]);
#if defined(__GNUC__)
#  pragma GCC diagnostic pop
#endif
                corpus_try(&c, ci);
            }
    {
        size_t k = 0;

        for (size_t u = 0; u < sizeof uri_user / sizeof uri_user[0]; u++)
            for (size_t h = 0; h < sizeof uri_host / sizeof uri_host[0]; h++)
                for (size_t q = 0; q < sizeof uri_query / sizeof uri_query[0];
                     q++, k++) {
                    snprintf(ci, sizeof ci, "%s%s%s%s%s",
                             uri_scheme[k % 2], uri_user[u], uri_host[h],
                             uri_path[(k / 2) % 4], uri_query[q]);
                    corpus_try(&c, ci);
                }
    }
    for (size_t k = 0; k < sizeof uri_short / sizeof uri_short[0]; k++)
        corpus_try(&c, uri_short[k]);

    fprintf(stderr, "corpus: %d strings, %d EINVAL, %d ECONN, %d failed, "
            "%.2f s, slowest %.3f s [%s]\n", c.total, c.einval, c.econn,
            c.failed, now_s() - t0, c.slowest, c.slowest_ci);
    ck_assert_int_ge(c.total, 1000);
    /* Both failure paths are exercised. */
    ck_assert_int_ge(c.einval, 200);
    ck_assert_int_ge(c.econn, 200);
    ck_assert_msg(c.failed == 0, "%d of %d strings failed (first %d):%s",
                  c.failed, c.total, MAX_REPORTED, c.report);
    ck_assert_msg(c.slowest < 5.0, "an open took %.1f s: %s", c.slowest,
                  c.slowest_ci);
}
END_TEST

/* The leaks of the defect tests above, through spotdb_open itself. */
START_TEST(defect_open_leaks)
{
    static const char *const cis[] = {
        /* '' doubling: libpq quotes the token after it. */
        KVHOST " password='it''" M "' connect_timeout=1",
        KVHOST " password=''" M " connect_timeout=1",
        /* blank / '?' / '#' / '"' in a URI password, whole URI quoted. */
        "postgresql://u:x " M "@[%2Fnonexistent/db?connect_timeout=1",
        "postgresql://u:x?" M "@[%2Fnonexistent/db?connect_timeout=1",
        "postgresql://u:x#" M "@[%2Fnonexistent/db?connect_timeout=1",
        "postgresql://u:x\"" M "@[%2Fnonexistent/db?connect_timeout=1",
        /* raw '@': the tail of the password becomes the host. */
        "postgresql://u:x@" M "@%2Fnonexistent/db?connect_timeout=1",
        /* truncated URI: the password becomes the port. */
        "postgresql://u:" M "/db?host=%2Fnonexistent&connect_timeout=1",
        /* raw '/': the tail of the password becomes the database name. */
        "postgresql://u:x/" M "@%2Fnonexistent/db%?connect_timeout=1",
        /* an empty value swallows "password", the password is a keyword. */
        "port= password='it\\'s " M " \\\\ x' " KVHOST " connect_timeout=1",
        "dbname= password " M " " KVHOST " connect_timeout=1",
        /* "password" without '=' in the query. */
        "postgresql://%2Fnonexistent/db?connect_timeout=1&password" M,
        /* a ',' in the "port" of a truncated URI (tests/fuzz). */
        "postgresql://u:" M "%zz,x",
        /* a second password='' glued to the first (tests/fuzz). */
        "password=''password=''" M " " KVHOST " connect_timeout=1",
    };
    char report[8000] = "";
    int failed = 0;

    for (size_t k = 0; k < sizeof cis / sizeof cis[0]; k++) {
        char why[2 * SPOTDB__ERRMSG_MAX];

        open_fails_clean(cis[k], why, sizeof why);
        if (why[0]) {
            size_t n = strlen(report);

            failed++;
            snprintf(report + n, sizeof report - n, "\n  [%s] -> %.300s",
                     cis[k], why);
        }
    }
    ck_assert_msg(failed == 0, "%d leaking strings:%s", failed, report);
}
END_TEST

START_TEST(open_from_database_url)
{
    static const char *const urls[] = {
        "postgresql://u:" M "@%2Fnonexistent-socket-dir/db?connect_timeout=1",
        "postgres://u:" M_ENC "@%2Fnonexistent-socket-dir/db?connect_timeout=1",
        "postgresql://u:" M "@[%2Fnonexistent-socket-dir/db?connect_timeout=1",
        "postgresql://u:" M_ENC "@[%2Fnonexistent/db?connect_timeout=1",
        "postgresql://u:" M "%zz@%2Fnonexistent/db?connect_timeout=1",
        "postgresql://%2Fnonexistent/db?password=" M "&connect_timeout=1",
        KVHOST " password=" M " connect_timeout=1",
        KVHOST " password='" M " connect_timeout=1",
    };

    for (size_t k = 0; k < sizeof urls / sizeof urls[0]; k++) {
        setenv("DATABASE_URL", urls[k], 1);
        expect_open_clean(NULL);
        ck_assert_msg(strstr(spotdb_last_errmsg(), "DATABASE_URL"),
                      "source not named: %s", spotdb_last_errmsg());
        expect_open_clean("");
        unsetenv("DATABASE_URL");
    }
}
END_TEST

START_TEST(open_from_postgres_env)
{
    setenv("POSTGRES_HOST", "/nonexistent-socket-dir", 1);
    setenv("POSTGRES_PORT", "5433", 1);
    setenv("POSTGRES_USER", "u", 1);
    setenv("POSTGRES_DB", "db", 1);
    setenv("POSTGRES_PASSWORD", M, 1);
    setenv("PGCONNECT_TIMEOUT", "1", 1);
    ck_assert_int_eq(spotdb_open(&(spotdb_db *){ NULL }, NULL, NULL),
                     SPOTDB_ECONN);
    expect_open_clean(NULL);
    ck_assert_msg(strstr(spotdb_last_errmsg(), "POSTGRES_* variables"),
                  "source not named: %s", spotdb_last_errmsg());
    ck_assert_msg(strstr(spotdb_last_errmsg(),
                         "host \"/nonexistent-socket-dir\" port 5433"),
                  "host/port lost: %s", spotdb_last_errmsg());
    /* A password with specials, and one that is also the database name,
     * which libpq names in some messages. */
    setenv("POSTGRES_PASSWORD", "a b/" M "@:'\"%zz", 1);
    expect_open_clean(NULL);
    setenv("POSTGRES_PASSWORD", M, 1);
    setenv("POSTGRES_DB", M, 1);
    expect_open_clean(NULL);
    setenv("POSTGRES_USER", M, 1);
    expect_open_clean(NULL);
    unsetenv("POSTGRES_HOST");
    unsetenv("POSTGRES_PORT");
    unsetenv("POSTGRES_USER");
    unsetenv("POSTGRES_DB");
    unsetenv("POSTGRES_PASSWORD");
    unsetenv("PGCONNECT_TIMEOUT");
}
END_TEST

START_TEST(open_from_pgpassword)
{
    setenv("PGPASSWORD", M, 1);
    setenv("PGHOST", "/nonexistent-socket-dir", 1);
    setenv("PGCONNECT_TIMEOUT", "1", 1);
    expect_open_clean(NULL);
    ck_assert_msg(strstr(spotdb_last_errmsg(), "libpq defaults"),
                  "source not named: %s", spotdb_last_errmsg());
    /* With settings that name the password elsewhere too. */
    expect_open_clean("postgresql://%2Fnonexistent/" M "?connect_timeout=1");
    expect_open_clean(KVHOST " dbname=" M " application_name=" M
                      " connect_timeout=1");
    expect_open_clean("postgresql://u@[%2Fnonexistent/" M "?connect_timeout=1");
    unsetenv("PGPASSWORD");
    unsetenv("PGHOST");
    unsetenv("PGCONNECT_TIMEOUT");
}
END_TEST

/* Messages are made one line before they are redacted (db.c): a secret
 * holding a newline or a tab must still be found once those became
 * spaces.  (Found by corpus_through_postgres_env: POSTGRES_PASSWORD
 * "Mark3rPw\n" with a socket directory named like it.) */
START_TEST(secret_with_blanks_found_after_one_line)
{
    const char *const nl[] = { M "\n", NULL };
    const char *const tab[] = { "a\t" M "\tb", NULL };

    expect_result("socket \"/" M " /.s.PGSQL.5432\"", NULL, nl,
                  "socket \"/***/.s.PGSQL.5432\"");
    expect_result("x a " M " b y", NULL, tab, "x *** y");
    expect_result("x a\t" M "\tb y", NULL, tab, "x *** y");
    /* blanks match blanks only */
    expect_same("x a_" M "_b y", NULL, tab);
}
END_TEST

/* ---- the corpus through the other entry points -------------------- */

/* Every string of open_corpus, in the same order, to fn. */
typedef void (*corpus_fn)(const char *ci, size_t index, void *ctx);

static size_t for_each_corpus_string(corpus_fn fn, void *ctx)
{
    char ci[1024];
    size_t n = 0, k = 0;

    for (size_t l = 0; l < sizeof kv_layout / sizeof kv_layout[0]; l++)
        for (size_t p = 0; p < sizeof kv_pw / sizeof kv_pw[0]; p++)
            for (size_t f = 0; f < sizeof kv_frag / sizeof kv_frag[0]; f++) {
#if defined(__GNUC__)
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wformat-nonliteral"
#endif
                snprintf(ci, sizeof ci, kv_layout[l], kv_pw[p], kv_frag[f]);
#if defined(__GNUC__)
#  pragma GCC diagnostic pop
#endif
                fn(ci, n++, ctx);
            }
    for (size_t u = 0; u < sizeof uri_user / sizeof uri_user[0]; u++)
        for (size_t h = 0; h < sizeof uri_host / sizeof uri_host[0]; h++)
            for (size_t q = 0; q < sizeof uri_query / sizeof uri_query[0];
                 q++, k++) {
                snprintf(ci, sizeof ci, "%s%s%s%s%s", uri_scheme[k % 2],
                         uri_user[u], uri_host[h], uri_path[(k / 2) % 4],
                         uri_query[q]);
                fn(ci, n++, ctx);
            }
    for (size_t s = 0; s < sizeof uri_short / sizeof uri_short[0]; s++)
        fn(uri_short[s], n++, ctx);
    return n;
}

static void corpus_via_database_url(const char *ci, size_t index, void *ctx)
{
    corpus *c = ctx;
    char why[2 * SPOTDB__ERRMSG_MAX];
    int rc;

    (void)index;
    setenv("DATABASE_URL", ci, 1);
    rc = open_fails_clean(NULL, why, sizeof why);
    unsetenv("DATABASE_URL");
    c->total++;
    c->einval += rc == SPOTDB_EINVAL;
    c->econn += rc == SPOTDB_ECONN;
    /* Masking may take more than the password, never less; a message
     * that still says where the settings came from is counted. */
    c->named += strstr(spotdb_last_errmsg(), "DATABASE_URL") != NULL;
    if (why[0] && ++c->failed <= MAX_REPORTED) {
        size_t n = strlen(c->report);

        snprintf(c->report + n, sizeof c->report - n, "\n  [%s] -> %.300s",
                 ci, why);
    }
}

/* The generated corpus as DATABASE_URL, read by spotdb_open(NULL). */
START_TEST(corpus_through_database_url)
{
    corpus c;

    memset(&c, 0, sizeof c);
    for_each_corpus_string(corpus_via_database_url, &c);
    fprintf(stderr, "DATABASE_URL corpus: %d strings, %d EINVAL, %d ECONN, "
            "%d name DATABASE_URL, %d leaks or failures\n", c.total,
            c.einval, c.econn, c.named, c.failed);
    ck_assert_int_ge(c.total, 1000);
    ck_assert_int_ge(c.einval, 200);
    ck_assert_int_ge(c.econn, 200);
    ck_assert_msg(c.failed == 0, "%d of %d failed:%s", c.failed, c.total,
                  c.report);
}
END_TEST

/* The POSTGRES_* variables hold raw values, not conninfo syntax: the
 * password with every character conninfo and URIs treat specially, next
 * to hosts, ports, users and databases that are wrong in every way that
 * fails before the network (no DNS: hosts are socket paths). */
static const char *const env_pw[] = {
    M, "'" M "'", "it's " M " \\ x", "a b/" M "@:c?d#e", M "%zz", M_ENC,
    "\"" M "\"", "password=" M, " " M " ", "\\" M, "'" M, M "'",
    "x'" M "' y=z", M "\n", "$1" M ";--",
};
#define SAME_AS_PW "(the password)"
static const char *const env_host[] = {
    "/nonexistent-socket-dir", "/nonexistent dir'with\"quotes",
    "/nonexistent-a,/nonexistent-b", "/nonexistent-socket-dir/",
    "/nonexistent=x password=y", "/" SAME_AS_PW, "/nonexistent?%zz",
};
static const char *const env_port[] = {
    "5432", "99999", "abc", "-1", "5432,5433", "", "1 2",
};
static const char *const env_user_db[][2] = {
    { "u", "db" }, { "", "" }, { SAME_AS_PW, SAME_AS_PW },
    { "u'x y", "d=b\\" },
};
#define N_ENV_PW (sizeof env_pw / sizeof env_pw[0])
#define N_ENV_HOST (sizeof env_host / sizeof env_host[0])
#define N_ENV_PORT (sizeof env_port / sizeof env_port[0])
#define N_ENV_UD (sizeof env_user_db / sizeof env_user_db[0])
#define N_ENV_COMBOS (N_ENV_PW * N_ENV_HOST * N_ENV_PORT * N_ENV_UD)

/* Combination i: the five values (pw, host, port, user, db); a host,
 * user or database "(the password)" is named like the password (a
 * message that names it must not show it either). */
static void env_combo(size_t i, const char *v[5])
{
    static char host[128];

    v[0] = env_pw[i % N_ENV_PW];
    i /= N_ENV_PW;
    v[1] = env_host[i % N_ENV_HOST];
    i /= N_ENV_HOST;
    v[2] = env_port[i % N_ENV_PORT];
    i /= N_ENV_PORT;
    v[3] = env_user_db[i % N_ENV_UD][0];
    v[4] = env_user_db[i % N_ENV_UD][1];
    if (strcmp(v[1], "/" SAME_AS_PW) == 0) {
        snprintf(host, sizeof host, "/%s", v[0]);
        v[1] = host;
    }
    for (int k = 3; k < 5; k++)
        if (strcmp(v[k], SAME_AS_PW) == 0)
            v[k] = v[0];
}

static const char *const postgres_vars[5] = {
    "POSTGRES_PASSWORD", "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER",
    "POSTGRES_DB",
};

START_TEST(corpus_through_postgres_env)
{
    corpus c;

    memset(&c, 0, sizeof c);
    setenv("PGCONNECT_TIMEOUT", "1", 1);
    for (size_t i = 0; i < N_ENV_COMBOS; i++) {
        const char *v[5];
        char label[512];

        env_combo(i, v);
        for (int k = 0; k < 5; k++)
            setenv(postgres_vars[k], v[k], 1);
        snprintf(label, sizeof label, "POSTGRES_* [%s|%s|%s|%s|%s]", v[0],
                 v[1], v[2], v[3], v[4]);
        c.total++;
        {
            char why[2 * SPOTDB__ERRMSG_MAX];
            int rc = open_fails_clean(NULL, why, sizeof why);

            c.einval += rc == SPOTDB_EINVAL;
            c.econn += rc == SPOTDB_ECONN;
            if (!why[0] && !strstr(spotdb_last_errmsg(), "POSTGRES_*"))
                snprintf(why, sizeof why, "source not named: %s",
                         spotdb_last_errmsg());
            if (why[0] && ++c.failed <= MAX_REPORTED) {
                size_t n = strlen(c.report);

                snprintf(c.report + n, sizeof c.report - n,
                         "\n  %s -> %.300s", label, why);
            }
        }
    }
    for (int k = 0; k < 5; k++)
        unsetenv(postgres_vars[k]);
    unsetenv("PGCONNECT_TIMEOUT");
    fprintf(stderr, "POSTGRES_* corpus: %d combinations, %d EINVAL, %d "
            "ECONN, %d leaks or failures\n", c.total, c.einval, c.econn,
            c.failed);
    ck_assert_int_ge(c.total, 1000);
    ck_assert_msg(c.failed == 0, "%d of %d failed:%s", c.failed, c.total,
                  c.report);
}
END_TEST

/* ---- the spotdb CLI --------------------------------------------------- */

extern char **environ;

typedef struct cli_run {
    pid_t pid;
    int fd;
    char label[600];
} cli_run;

typedef struct cli_stats {
    int runs, leaks, bad_exit;
    char report[3000];
} cli_stats;

static const char *cli_path(void)
{
    const char *p = getenv("SPOTDB_CLI");

    ck_assert_msg(p != NULL, "SPOTDB_CLI is not set (run through meson "
                  "test)");
    return p;
}

/* Start the CLI with `args`, the environment plus `extra` (NAME=value),
 * stdout and stderr into one pipe. */
static cli_run cli_start(const char *const *args, char *const *extra,
                         const char *label)
{
    posix_spawn_file_actions_t fa;
    char *envp[64];
    const char *argv[12] = { "spotdb" };
    int pipefd[2], n = 0, a = 1;
    cli_run r;

    for (char **e = environ; *e && n < 48; e++)
        envp[n++] = *e;
    for (int i = 0; extra && extra[i] && n < 63; i++)
        envp[n++] = extra[i];
    envp[n] = NULL;
    for (; args[a - 1] && a < 11; a++)
        argv[a] = args[a - 1];
    argv[a] = NULL;
    ck_assert_int_eq(pipe(pipefd), 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
    posix_spawn_file_actions_addclose(&fa, pipefd[1]);
    ck_assert_int_eq(posix_spawn(&r.pid, cli_path(), &fa, NULL,
                                 (char *const *)argv, envp), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    r.fd = pipefd[0];
    snprintf(r.label, sizeof r.label, "%s", label);
    return r;
}

/* Wait for the run: exit status 1, one line, no marker. */
static void cli_finish(cli_run *r, cli_stats *st, const char *must_say)
{
    char text[8192];
    size_t len = 0;
    ssize_t got;
    int status, lines = 0;

    while ((got = read(r->fd, text + len, sizeof text - 1 - len)) > 0 ||
           (got < 0 && errno == EINTR))
        if (got > 0)
            len += (size_t)got;
    text[len] = '\0';
    close(r->fd);
    ck_assert_int_eq(waitpid(r->pid, &status, 0), r->pid);
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n' && !(i + 1 < len && text[i + 1] == '\0');
    st->runs++;
    if (strstr(text, M) || strstr(text, M_ENC)) {
        size_t n = strlen(st->report);

        st->leaks++;
        snprintf(st->report + n, sizeof st->report - n, "\n  LEAK %s -> %.300s",
                 r->label, text);
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 1 ||
               !strstr(text, "spotdb: ") ||
               (must_say && !strstr(text, must_say))) {
        size_t n = strlen(st->report);

        st->bad_exit++;
        snprintf(st->report + n, sizeof st->report - n,
                 "\n  status %d: %s -> %.300s", status, r->label, text);
    }
}

/* Runs go in batches, so the two cores overlap them. */
#define BATCH 8

typedef struct cli_corpus {
    cli_stats st;
    cli_run pending[BATCH];
    char env_store[BATCH][6][1200];
    char *env_ptr[BATCH][7];
    int npending;
    int entry;                      /* 0: -d, 1: DATABASE_URL */
} cli_corpus;

static void cli_drain(cli_corpus *cc)
{
    for (int i = 0; i < cc->npending; i++)
        cli_finish(&cc->pending[i], &cc->st, NULL);
    cc->npending = 0;
}

/* The command and tracing vary with the index: migrate, status, and each
 * with --trace. */
static void cli_args(size_t index, const char *args[6], const char *ci)
{
    int a = 0;

    if (index & 2)
        args[a++] = "--trace";
    if (ci) {
        args[a++] = "-d";
        args[a++] = ci;
    }
    args[a++] = index & 1 ? "status" : "migrate";
    args[a] = NULL;
}

static void cli_corpus_string(const char *ci, size_t index, void *ctx)
{
    cli_corpus *cc = ctx;
    const char *args[6];
    int slot = cc->npending;
    char label[600];

    /* A third of the corpus per entry point keeps the run short. */
    if (index % 3 != (size_t)cc->entry)
        return;
    cli_args(index / 3, args, cc->entry == 0 ? ci : NULL);
    snprintf(cc->env_store[slot][0], sizeof cc->env_store[slot][0],
             "DATABASE_URL=%s", ci);
    cc->env_ptr[slot][0] = cc->env_store[slot][0];
    cc->env_ptr[slot][1] = NULL;
    snprintf(label, sizeof label, "%s [%s] %s",
             cc->entry == 0 ? "-d" : "DATABASE_URL", ci,
             args[index / 3 & 2 ? 1 : 0]);
    cc->pending[cc->npending++] =
        cli_start(args, cc->entry == 1 ? cc->env_ptr[slot] : NULL, label);
    if (cc->npending == BATCH)
        cli_drain(cc);
}

START_TEST(corpus_through_the_cli)
{
    static cli_corpus cc;
    int per_entry[3];

    memset(&cc, 0, sizeof cc);
    setenv("PGCONNECT_TIMEOUT", "1", 1);
    for (cc.entry = 0; cc.entry < 2; cc.entry++) {
        int before = cc.st.runs;

        for_each_corpus_string(cli_corpus_string, &cc);
        cli_drain(&cc);
        per_entry[cc.entry] = cc.st.runs - before;
    }
    /* POSTGRES_*: 5 combinations in 14, spread over the passwords. */
    {
        int before = cc.st.runs;

        for (size_t i = 0; i < N_ENV_COMBOS; i++) {
            const char *v[5], *args[6];
            int slot = cc.npending;
            char label[600];

            if (i % 14 >= 5)
                continue;
            env_combo(i, v);
            for (int k = 0; k < 5; k++) {
                snprintf(cc.env_store[slot][k], sizeof cc.env_store[slot][k],
                         "%s=%s", postgres_vars[k], v[k]);
                cc.env_ptr[slot][k] = cc.env_store[slot][k];
            }
            cc.env_ptr[slot][5] = NULL;
            cli_args(i / 14 * 5 + i % 14, args, NULL);
            snprintf(label, sizeof label, "POSTGRES_* [%s|%s|%s|%s|%s]",
                     v[0], v[1], v[2], v[3], v[4]);
            cc.pending[cc.npending++] = cli_start(args, cc.env_ptr[slot],
                                                  label);
            if (cc.npending == BATCH)
                cli_drain(&cc);
        }
        cli_drain(&cc);
        per_entry[2] = cc.st.runs - before;
    }
    unsetenv("PGCONNECT_TIMEOUT");
    fprintf(stderr, "CLI corpus: %d runs (-d %d, DATABASE_URL %d, "
            "POSTGRES_* %d; migrate/status, half with --trace), %d leaks, "
            "%d bad exits\n", cc.st.runs, per_entry[0], per_entry[1],
            per_entry[2], cc.st.leaks, cc.st.bad_exit);
    for (int e = 0; e < 3; e++)
        ck_assert_int_ge(per_entry[e], 1000);
    ck_assert_msg(cc.st.leaks == 0 && cc.st.bad_exit == 0, "%s",
                  cc.st.report);
}
END_TEST

/* ---- a server that refuses the password ------------------------------ */

/*
 * Just enough of the PostgreSQL protocol on a unix socket: it asks for
 * the password in clear, then refuses it, the way a server with md5 or
 * password authentication in pg_hba.conf does (the private test server
 * trusts everyone, and its pg_hba.conf is not this test's to edit).  A
 * hostile variant quotes the password it received in its message and
 * detail; another hangs up after the startup packet.
 */
enum fake_mode { FAKE_REFUSE, FAKE_ECHO, FAKE_HANG_UP };

typedef struct fake_server {
    char dir[32], path[64];
    int listen_fd;
    enum fake_mode mode;
    atomic_int stop;            /* read by the server thread */
    atomic_int served;          /* read by the test */
    pthread_t thread;
} fake_server;

#define FAKE_PORT "5999"

static bool read_full(int fd, void *buf, size_t n)
{
    char *p = buf;

    while (n > 0) {
        ssize_t got = read(fd, p, n);

        if (got <= 0)
            return false;
        p += got;
        n -= (size_t)got;
    }
    return true;
}

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
           (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static void put32(unsigned char *b, uint32_t v)
{
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

/* One message: type byte, length, body. */
static void send_msg(int fd, char type, const void *body, size_t n)
{
    unsigned char head[5];

    head[0] = (unsigned char)type;
    put32(head + 1, (uint32_t)(n + 4));
    if (write(fd, head, 5) != 5 || (n && write(fd, body, n) != (ssize_t)n))
        return;
}

static void fake_serve(fake_server *fs, int fd)
{
    unsigned char len[4], msg[4096], body[4096];
    char password[1024] = "";
    size_t n = 0;
    uint32_t l;

    /* startup, after any SSL or GSS request (answered 'N') */
    for (;;) {
        if (!read_full(fd, len, 4) || (l = be32(len)) < 8 || l > sizeof msg ||
            !read_full(fd, msg, l - 4))
            return;
        if (be32(msg) != 80877103 && be32(msg) != 80877104)
            break;
        if (write(fd, "N", 1) != 1)
            return;
    }
    if (fs->mode == FAKE_HANG_UP)
        return;
    put32(body, 3);                             /* cleartext password */
    send_msg(fd, 'R', body, 4);
    if (!read_full(fd, msg, 5) || msg[0] != 'p' || (l = be32(msg + 1)) < 5 ||
        l - 4 >= sizeof password || !read_full(fd, password, l - 4))
        return;
    password[l - 4] = '\0';
#define FIELD(code, text)                                                    \
    n += (size_t)snprintf((char *)body + n, sizeof body - n, "%c%s", code,   \
                          text) + 1
    FIELD('S', "FATAL");
    FIELD('V', "FATAL");
    FIELD('C', "28P01");
    if (fs->mode == FAKE_ECHO) {
        char m[1200];

        snprintf(m, sizeof m, "password authentication failed for user "
                 "\"u\": \"%s\" is wrong", password);
        FIELD('M', m);
        snprintf(m, sizeof m, "Connection matched line 1; the password "
                 "given was %s.", password);
        FIELD('D', m);
    } else {
        FIELD('M', "password authentication failed for user \"u\"");
    }
#undef FIELD
    body[n++] = '\0';
    send_msg(fd, 'E', body, n);
}

static void *fake_loop(void *arg)
{
    fake_server *fs = arg;

    while (!fs->stop) {
        struct pollfd p = { fs->listen_fd, POLLIN, 0 };
        int fd;

        if (poll(&p, 1, 50) <= 0)
            continue;
        if ((fd = accept(fs->listen_fd, NULL, NULL)) < 0)
            continue;
        fake_serve(fs, fd);
        fs->served++;
        close(fd);
    }
    return NULL;
}

static void fake_start(fake_server *fs, enum fake_mode mode)
{
    struct sockaddr_un sa;

    memset(fs, 0, sizeof *fs);
    fs->mode = mode;
    snprintf(fs->dir, sizeof fs->dir, "/tmp/spotdb-fake.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(fs->dir));
    snprintf(fs->path, sizeof fs->path, "%s/.s.PGSQL." FAKE_PORT, fs->dir);
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", fs->path);
    fs->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(fs->listen_fd, 0);
    ck_assert_int_eq(bind(fs->listen_fd, (struct sockaddr *)&sa, sizeof sa),
                     0);
    ck_assert_int_eq(listen(fs->listen_fd, 16), 0);
    ck_assert_int_eq(pthread_create(&fs->thread, NULL, fake_loop, fs), 0);
}

static void fake_stop(fake_server *fs)
{
    fs->stop = 1;
    pthread_join(fs->thread, NULL);
    close(fs->listen_fd);
    unlink(fs->path);
    rmdir(fs->dir);
}

/* The password forms of the real-server tests, pointed at the fake. */
static void fake_settings(const fake_server *fs, int form, char *dst,
                          size_t n)
{
    char enc[96];
    size_t k = 0;

    for (const char *p = fs->dir; *p && k + 4 < sizeof enc; p++)
        k += (size_t)(*p == '/' ? snprintf(enc + k, sizeof enc - k, "%%2F")
                                : snprintf(enc + k, sizeof enc - k, "%c",
                                           *p));
    switch (form) {
    case 0:
        snprintf(dst, n, "host=%s port=" FAKE_PORT " user=u dbname=d "
                 "password=" M " connect_timeout=3", fs->dir);
        break;
    case 1:
        snprintf(dst, n, "password='it\\'s " M " \\\\ x' host=%s port="
                 FAKE_PORT " user=u connect_timeout=3", fs->dir);
        break;
    case 2:
        snprintf(dst, n, "postgresql://u:%s@%s:" FAKE_PORT
                 "/d?connect_timeout=3", M_ENC, enc);
        break;
    default:
        snprintf(dst, n, "postgres://u@%s:" FAKE_PORT "/d?password=a%%20b%%2F"
                 M "&connect_timeout=3", enc);
        break;
    }
}

/* Each mode, each password form, through spotdb_open (argument,
 * DATABASE_URL, POSTGRES_*) and the CLI (-d, DATABASE_URL, POSTGRES_*;
 * migrate and status; with --trace). */
START_TEST(refused_password_never_shown)
{
    static const char *const say[] = {
        "password authentication failed", "password authentication failed",
        "server closed the connection",
    };
    static cli_stats st;
    int lib_runs = 0;

    memset(&st, 0, sizeof st);
    for (int mode = FAKE_REFUSE; mode <= FAKE_HANG_UP; mode++) {
        fake_server fs;
        char ci[512];

        fake_start(&fs, (enum fake_mode)mode);
        for (int form = 0; form < 5; form++) {
            char env[6][600], *envp[7] = { NULL };
            const char *args[6];

            if (form < 4) {
                fake_settings(&fs, form, ci, sizeof ci);
                for (int src = 0; src < 2; src++) {
                    char why[2 * SPOTDB__ERRMSG_MAX];
                    int rc;

                    if (src)
                        setenv("DATABASE_URL", ci, 1);
                    rc = open_fails_clean(src ? NULL : ci, why, sizeof why);
                    unsetenv("DATABASE_URL");
                    ck_assert_msg(!why[0], "[%s]: %s", ci, why);
                    ck_assert_int_eq(rc, SPOTDB_ECONN);
                    ck_assert_msg(strstr(spotdb_last_errmsg(), say[mode]),
                                  "mode %d: %s", mode, spotdb_last_errmsg());
                    lib_runs++;
                }
                snprintf(env[0], sizeof env[0], "DATABASE_URL=%s", ci);
                envp[0] = env[0];
            } else {
                /* POSTGRES_*: the raw password, specials and all */
                static const char *const pw = "a b'" M "\\\"%zz";
                char why[2 * SPOTDB__ERRMSG_MAX];

                setenv("POSTGRES_HOST", fs.dir, 1);
                setenv("POSTGRES_PORT", FAKE_PORT, 1);
                setenv("POSTGRES_USER", "u", 1);
                setenv("POSTGRES_PASSWORD", pw, 1);
                ck_assert_int_eq(open_fails_clean(NULL, why, sizeof why),
                                 SPOTDB_ECONN);
                ck_assert_msg(!why[0], "POSTGRES_*: %s", why);
                ck_assert(strstr(spotdb_last_errmsg(), say[mode]));
                lib_runs++;
                for (int k = 0; k < 4; k++)
                    unsetenv(postgres_vars[k + 1]);
                unsetenv("POSTGRES_PASSWORD");
                snprintf(env[0], sizeof env[0], "POSTGRES_HOST=%s", fs.dir);
                snprintf(env[1], sizeof env[1], "POSTGRES_PORT=" FAKE_PORT);
                snprintf(env[2], sizeof env[2], "POSTGRES_USER=u");
                snprintf(env[3], sizeof env[3], "POSTGRES_PASSWORD=%s", pw);
                for (int k = 0; k < 4; k++)
                    envp[k] = env[k];
            }
            for (size_t k = 0; k < 4; k++) {
                cli_run r;
                char label[700];

                cli_args(k, args, form < 4 && k < 2 ? ci : NULL);
                snprintf(label, sizeof label, "mode %d form %d run %zu", mode,
                         form, k);
                r = cli_start(args, form == 4 || k >= 2 ? envp : NULL, label);
                cli_finish(&r, &st, say[mode]);
            }
        }
        ck_assert_int_ge(fs.served, 8);
        fake_stop(&fs);
    }
    fprintf(stderr, "refusing server: %d library opens, %d CLI runs, %d "
            "leaks, %d bad exits\n", lib_runs, st.runs, st.leaks,
            st.bad_exit);
    ck_assert_msg(st.leaks == 0 && st.bad_exit == 0, "%s", st.report);
}
END_TEST

static Suite *redact_suite(void)
{
    Suite *s = suite_create("redact");
    TCase *tc;

    tc = tcase_create("keyword");
    tcase_add_test(tc, kv_plain);
    tcase_add_test(tc, kv_case_and_spacing);
    tcase_add_test(tc, kv_quoted_values);
    tcase_add_test(tc, kv_special_characters);
    tcase_add_test(tc, kv_multiple_occurrences);
    tcase_add_test(tc, defect_kv_doubled_quote);
    tcase_add_test(tc, defect_kv_double_quoted);
    tcase_add_test(tc, defect_kv_value_swallows_next_keyword);
    suite_add_tcase(s, tc);

    tc = tcase_create("uri");
    tcase_add_test(tc, uri_userinfo);
    tcase_add_test(tc, uri_query_password);
    tcase_add_test(tc, uri_percent_encoded);
    tcase_add_test(tc, uri_special_characters);
    tcase_add_test(tc, uri_token_only);
    tcase_add_test(tc, uri_truncated);
    tcase_add_test(tc, defect_uri_blank_in_password);
    tcase_add_test(tc, defect_uri_at_in_password_echoed_as_host);
    tcase_add_test(tc, defect_uri_truncated_password_as_port);
    tcase_add_test(tc, defect_uri_slash_in_password_echoed_as_dbname);
    tcase_add_test(tc, defect_uri_query_password_without_equals);
    tcase_add_test(tc, defect_uri_truncated_password_with_comma);
    tcase_add_test(tc, defect_kv_second_password_in_glued_text);
    tcase_add_test(tc, defect_kv_formfeed_ends_token);
    tcase_add_test(tc, defect_uri_newline_in_user);
    suite_add_tcase(s, tc);

    tc = tcase_create("secrets");
    tcase_add_test(tc, secrets_anywhere);
    tcase_add_test(tc, secrets_percent_decoded);
    tcase_add_test(tc, secrets_edge_cases);
    tcase_add_test(tc, secrets_from_pgpassword_in_errors);
    tcase_add_test(tc, secret_with_blanks_found_after_one_line);
    suite_add_tcase(s, tc);

    tc = tcase_create("size");
    tcase_add_test(tc, tiny_outsz);
    tcase_add_test(tc, too_many_spans);
    suite_add_tcase(s, tc);

    tc = tcase_create("kept");
    tcase_add_test(tc, messages_without_secrets_unchanged);
    tcase_add_test(tc, host_and_port_kept);
    suite_add_tcase(s, tc);

    tc = tcase_create("open");
    tcase_add_checked_fixture(tc, env_isolate, env_restore);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, host_and_port_kept_by_open);
    tcase_add_test(tc, open_corpus);
    tcase_add_test(tc, defect_open_leaks);
    tcase_add_test(tc, open_from_database_url);
    tcase_add_test(tc, open_from_postgres_env);
    tcase_add_test(tc, open_from_pgpassword);
    tcase_add_test(tc, corpus_through_database_url);
    tcase_add_test(tc, corpus_through_postgres_env);
    suite_add_tcase(s, tc);

    /* Thousands of processes: slow under sanitizers and a loaded machine. */
    tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, env_isolate, env_restore);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, corpus_through_the_cli);
    tcase_add_test(tc, refused_password_never_shown);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return th_run(redact_suite());
}
