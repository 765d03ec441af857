/*
 * The statement splitter and the line/column helper, without a server:
 * quotes, dollar quotes, comments, line numbers, limits, errors, and the
 * real migration file of sql/.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

#define MAXST 32

/* Split `sql` (NUL-terminated) into the static array; returns the count. */
static spotdb__stmt st[MAXST];

static long split(const char *sql)
{
    size_t err = (size_t)-1;
    long n;

    memset(st, 0xA5, sizeof st);
    n = spotdb__sql_split(sql, strlen(sql), st, MAXST, &err);
    ck_assert_msg(n >= 0, "split failed at offset %zu for: %s", err, sql);
    /* Counting mode agrees with the filling mode. */
    ck_assert_int_eq(spotdb__sql_split(sql, strlen(sql), NULL, 0, NULL), n);
    return n;
}

/* Statement k must be exactly `want` (bytes), starting on line `line`. */
static void expect_stmt(const char *sql, long k, const char *want,
                        unsigned line)
{
    size_t wl = strlen(want);

    ck_assert_msg(st[k].length == wl &&
                      memcmp(sql + st[k].offset, want, wl) == 0,
                  "statement %ld is [%.*s], want [%s]", k,
                  (int)st[k].length, sql + st[k].offset, want);
    ck_assert_msg(st[k].line == line, "statement %ld [%s] on line %u, want %u",
                  k, want, st[k].line, line);
}

/* Statement k, with trailing blanks ignored, must be `want`. */
static void expect_stmt_trim(const char *sql, long k, const char *want,
                             unsigned line)
{
    size_t len = st[k].length, wl = strlen(want);

    while (len > 0 && strchr(" \t\r\n", sql[st[k].offset + len - 1]))
        len--;
    ck_assert_msg(len == wl && memcmp(sql + st[k].offset, want, wl) == 0,
                  "statement %ld is [%.*s], want [%s]", k, (int)len,
                  sql + st[k].offset, want);
    ck_assert_msg(st[k].line == line, "statement %ld [%s] on line %u, want %u",
                  k, want, st[k].line, line);
}

/* The script must fail with err_offset `off`, in both modes. */
static void expect_error_at(const char *sql, size_t off)
{
    size_t err = (size_t)-1, err2 = (size_t)-1;

    ck_assert_int_eq(spotdb__sql_split(sql, strlen(sql), st, MAXST, &err), -1);
    ck_assert_msg(err == off, "err_offset %zu, want %zu for: %s", err, off,
                  sql);
    ck_assert_int_eq(spotdb__sql_split(sql, strlen(sql), NULL, 0, &err2), -1);
    ck_assert_uint_eq(err2, off);
    /* A NULL err_offset is allowed. */
    ck_assert_int_eq(spotdb__sql_split(sql, strlen(sql), NULL, 0, NULL), -1);
}

/* ---- plain statements -------------------------------------------------- */

START_TEST(plain_statements)
{
    const char *sql = "SELECT 1;\nSELECT 2;\nCREATE TABLE t (a int);\n";

    ck_assert_int_eq(split(sql), 3);
    expect_stmt(sql, 0, "SELECT 1", 1);
    expect_stmt(sql, 1, "SELECT 2", 2);
    expect_stmt(sql, 2, "CREATE TABLE t (a int)", 3);
    ck_assert_uint_eq(st[1].offset, 10);
}
END_TEST

START_TEST(several_on_one_line)
{
    const char *sql = "SELECT 1;SELECT 2;  SELECT 3;";

    ck_assert_int_eq(split(sql), 3);
    expect_stmt(sql, 0, "SELECT 1", 1);
    expect_stmt(sql, 1, "SELECT 2", 1);
    expect_stmt(sql, 2, "SELECT 3", 1);
}
END_TEST

START_TEST(trailing_statement_without_semicolon)
{
    const char *sql = "SELECT 1;\nSELECT 2\n\n  \t\n";

    ck_assert_int_eq(split(sql), 2);
    expect_stmt(sql, 0, "SELECT 1", 1);
    /* Trailing blanks are not part of the last statement. */
    expect_stmt(sql, 1, "SELECT 2", 2);

    sql = "SELECT 42";
    ck_assert_int_eq(split(sql), 1);
    expect_stmt(sql, 0, "SELECT 42", 1);
}
END_TEST

START_TEST(empty_statements_dropped)
{
    const char *sql = ";;\n ; SELECT 1;;; ;\n;SELECT 2;\n;";

    ck_assert_int_eq(split(sql), 2);
    expect_stmt(sql, 0, "SELECT 1", 2);
    expect_stmt(sql, 1, "SELECT 2", 3);

    ck_assert_int_eq(split(""), 0);
    ck_assert_int_eq(split(";"), 0);
    ck_assert_int_eq(split(" \n\t\r\n "), 0);
    ck_assert_int_eq(split(";\n;\n;"), 0);
}
END_TEST

START_TEST(comment_only_dropped)
{
    ck_assert_int_eq(split("-- nothing here\n"), 0);
    ck_assert_int_eq(split("-- nothing here"), 0);
    ck_assert_int_eq(split("/* a block */"), 0);
    ck_assert_int_eq(split("/* a; b */ ; -- c; d\n;\n/* e */;"), 0);
    ck_assert_int_eq(split("  -- one\n  /* two\n three */\n-- four;\n"), 0);
}
END_TEST

START_TEST(length_without_semicolon)
{
    const char *sql = "SELECT 1 ;";

    ck_assert_int_eq(split(sql), 1);
    ck_assert_uint_eq(st[0].offset, 0);
    /* Bytes up to the ';', without it (a blank before it may count). */
    ck_assert_msg(st[0].length == 8 || st[0].length == 9, "length %zu",
                  st[0].length);
    ck_assert_ptr_null(memchr(sql, ';', st[0].length));
    expect_stmt_trim(sql, 0, "SELECT 1", 1);
}
END_TEST

/* ---- quotes ------------------------------------------------------------ */

START_TEST(semicolon_in_single_quotes)
{
    const char *sql = "INSERT INTO t VALUES ('a;b');SELECT ';';";

    ck_assert_int_eq(split(sql), 2);
    expect_stmt(sql, 0, "INSERT INTO t VALUES ('a;b')", 1);
    expect_stmt(sql, 1, "SELECT ';'", 1);
}
END_TEST

START_TEST(doubled_quotes)
{
    const char *sql = "SELECT 'it''s; fine';\nSELECT '''';\nSELECT '';";

    ck_assert_int_eq(split(sql), 3);
    expect_stmt(sql, 0, "SELECT 'it''s; fine'", 1);
    expect_stmt(sql, 1, "SELECT ''''", 2);
    expect_stmt(sql, 2, "SELECT ''", 3);
}
END_TEST

START_TEST(backslash_in_standard_string)
{
    /* In a plain '...' a backslash is an ordinary character. */
    const char *sql = "SELECT 'C:\\';SELECT 2;";

    ck_assert_int_eq(split(sql), 2);
    expect_stmt(sql, 0, "SELECT 'C:\\'", 1);
    expect_stmt(sql, 1, "SELECT 2", 1);
}
END_TEST

START_TEST(e_strings)
{
    const char *sql =
        "SELECT E'\\'';\n"              /* E'\''       */
        "SELECT e'a\\';b';\n"           /* e'a\';b'    */
        "SELECT E'\\\\';\n"             /* E'\\'       */
        "SELECT E'x''y;z';\n"           /* '' in E''   */
        "SELECT (E'\\';');\n";

    ck_assert_int_eq(split(sql), 5);
    expect_stmt(sql, 0, "SELECT E'\\''", 1);
    expect_stmt(sql, 1, "SELECT e'a\\';b'", 2);
    expect_stmt(sql, 2, "SELECT E'\\\\'", 3);
    expect_stmt(sql, 3, "SELECT E'x''y;z'", 4);
    expect_stmt(sql, 4, "SELECT (E'\\';')", 5);
}
END_TEST

START_TEST(constructs_at_offset_zero)
{
    /* Nothing before the opener: no look-behind past the start. */
    const char *sql = "E'\\';';SELECT 1;";

    ck_assert_int_eq(split(sql), 2);
    expect_stmt(sql, 0, "E'\\';'", 1);
    expect_stmt(sql, 1, "SELECT 1", 1);
    sql = "$$;$$;SELECT 1;";
    ck_assert_int_eq(split(sql), 2);
    expect_stmt(sql, 0, "$$;$$", 1);
    sql = "'a;b';\"c;d\";";
    ck_assert_int_eq(split(sql), 2);
    expect_stmt(sql, 0, "'a;b'", 1);
    expect_stmt(sql, 1, "\"c;d\"", 1);
}
END_TEST

START_TEST(identifier_ending_in_e_is_no_e_string)
{
    /* "some'..." is the identifier "some" then a standard string, in which
     * the backslash does not escape. */
    const char *sql = "SELECT some'\\';SELECT 2;";

    ck_assert_int_eq(split(sql), 2);
    expect_stmt(sql, 0, "SELECT some'\\'", 1);
    expect_stmt(sql, 1, "SELECT 2", 1);
}
END_TEST

START_TEST(quoted_identifiers)
{
    const char *sql = "CREATE TABLE \"ident;\" (\"a\"\"b;\" int);\nSELECT 1;";

    ck_assert_int_eq(split(sql), 2);
    expect_stmt(sql, 0, "CREATE TABLE \"ident;\" (\"a\"\"b;\" int)", 1);
    expect_stmt(sql, 1, "SELECT 1", 2);

    /* A single quote inside an identifier opens nothing. */
    sql = "SELECT \"it's\";SELECT 2;";
    ck_assert_int_eq(split(sql), 2);
    expect_stmt(sql, 0, "SELECT \"it's\"", 1);
}
END_TEST

/* ---- dollar quotes ------------------------------------------------------ */

START_TEST(dollar_quotes)
{
    const char *sql =
        "CREATE FUNCTION f() RETURNS int AS $$\n"
        "BEGIN\n"
        "  RETURN 1; -- ;\n"
        "END;\n"
        "$$ LANGUAGE plpgsql;\n"
        "SELECT $$;$$, $$'$$;\n";

    ck_assert_int_eq(split(sql), 2);
    expect_stmt(sql, 0,
                "CREATE FUNCTION f() RETURNS int AS $$\nBEGIN\n"
                "  RETURN 1; -- ;\nEND;\n$$ LANGUAGE plpgsql",
                1);
    expect_stmt(sql, 1, "SELECT $$;$$, $$'$$", 6);
}
END_TEST

START_TEST(tagged_dollar_quotes)
{
    const char *sql =
        "DO $body$\n"
        "BEGIN\n"
        "  EXECUTE $$SELECT ';'$$;\n"
        "  PERFORM $x$ $$ ; $x$;\n"
        "END\n"
        "$body$;\n"
        "SELECT $_a1$;$_a1$;\n"
        "SELECT $Tag$ $tag$; $Tag$;\n";   /* tags are case-sensitive */

    ck_assert_int_eq(split(sql), 3);
    expect_stmt(sql, 0,
                "DO $body$\nBEGIN\n  EXECUTE $$SELECT ';'$$;\n"
                "  PERFORM $x$ $$ ; $x$;\nEND\n$body$",
                1);
    expect_stmt(sql, 1, "SELECT $_a1$;$_a1$", 7);
    expect_stmt(sql, 2, "SELECT $Tag$ $tag$; $Tag$", 8);
}
END_TEST

START_TEST(dollar_in_identifiers_and_parameters)
{
    /* a$b is an identifier, $1 a parameter: neither opens a quote. */
    const char *sql =
        "SELECT a$b FROM t$ WHERE x = $1;\n"
        "SELECT $2, $10;\n"
        "SELECT a$$b;\n"               /* an identifier, not a $$ */
        "SELECT x$tag$;\n";

    ck_assert_int_eq(split(sql), 4);
    expect_stmt(sql, 0, "SELECT a$b FROM t$ WHERE x = $1", 1);
    expect_stmt(sql, 1, "SELECT $2, $10", 2);
    expect_stmt(sql, 2, "SELECT a$$b", 3);
    expect_stmt(sql, 3, "SELECT x$tag$", 4);
}
END_TEST

START_TEST(quotes_inside_dollar_quotes)
{
    const char *sql = "SELECT $q$ it's \"odd /* -- $q$;\nSELECT 2;";

    ck_assert_int_eq(split(sql), 2);
    expect_stmt(sql, 0, "SELECT $q$ it's \"odd /* -- $q$", 1);
    expect_stmt(sql, 1, "SELECT 2", 2);
}
END_TEST

/* ---- comments ------------------------------------------------------------ */

START_TEST(nested_block_comments)
{
    const char *sql =
        "SELECT 1 /* outer ; /* inner ; */ still ; comment */ + 1;\n"
        "SELECT /**/ 2;\n"
        "SELECT 3 /* a **/;\n";

    ck_assert_int_eq(split(sql), 3);
    expect_stmt(sql, 0,
                "SELECT 1 /* outer ; /* inner ; */ still ; comment */ + 1", 1);
    expect_stmt(sql, 1, "SELECT /**/ 2", 2);
    expect_stmt(sql, 2, "SELECT 3 /* a **/", 3);
}
END_TEST

START_TEST(line_comments)
{
    const char *sql =
        "SELECT 1 -- a ; here\n"
        "  + 1;\n"
        "-- ; SELECT 'nope';\n"
        "SELECT '--';\n"
        "SELECT 2 -- trailing ' quote\n;";

    ck_assert_int_eq(split(sql), 3);
    expect_stmt(sql, 0, "SELECT 1 -- a ; here\n  + 1", 1);
    expect_stmt(sql, 1, "SELECT '--'", 4);
    expect_stmt_trim(sql, 2, "SELECT 2 -- trailing ' quote", 5);
}
END_TEST

START_TEST(quotes_inside_comments)
{
    const char *sql =
        "/* it's */ SELECT 1; -- don't\n"
        "SELECT /* \"x */ 2;";

    ck_assert_int_eq(split(sql), 2);
    expect_stmt(sql, 0, "SELECT 1", 1);
    expect_stmt(sql, 1, "SELECT /* \"x */ 2", 2);
}
END_TEST

/* ---- line numbers ------------------------------------------------------ */

START_TEST(line_of_first_token)
{
    const char *sql =
        "\n"                                  /* 1 */
        "-- header\n"                         /* 2 */
        "\n"                                  /* 3 */
        "/* block\n"                          /* 4 */
        "   comment ; */\n"                   /* 5 */
        "   CREATE TABLE a (\n"               /* 6 */
        "  x int\n"                           /* 7 */
        ");\n"                                /* 8 */
        "\n"                                  /* 9 */
        "-- next\n"                           /* 10 */
        "  /* c */ SELECT 'multi\n"           /* 11 */
        "line';   SELECT $$\n"                /* 12 */
        "$$;\n"                               /* 13 */
        "\r\n"                                /* 14 */
        "\tSELECT 3";                         /* 15 */

    ck_assert_int_eq(split(sql), 4);
    expect_stmt(sql, 0, "CREATE TABLE a (\n  x int\n)", 6);
    expect_stmt(sql, 1, "SELECT 'multi\nline'", 11);
    expect_stmt(sql, 2, "SELECT $$\n$$", 12);
    expect_stmt(sql, 3, "SELECT 3", 15);
    ck_assert_uint_eq(st[0].offset, (size_t)(strstr(sql, "CREATE") - sql));
}
END_TEST

/* ---- limits and errors --------------------------------------------------- */

START_TEST(counting_mode)
{
    const char *sql = "SELECT 1; SELECT ';'; -- x;\n/* ; */ SELECT 3";

    ck_assert_int_eq(spotdb__sql_split(sql, strlen(sql), NULL, 0, NULL), 3);
    /* max is ignored without an array. */
    ck_assert_int_eq(spotdb__sql_split(sql, strlen(sql), NULL, 1, NULL), 3);
    ck_assert_int_eq(spotdb__sql_split("", 0, NULL, 0, NULL), 0);
}
END_TEST

START_TEST(length_bounds_the_text)
{
    /* Only `len` bytes are read: the rest may be anything. */
    const char *sql = "SELECT 1; SELECT 'unterminated";

    ck_assert_int_eq(spotdb__sql_split(sql, 9, st, MAXST, NULL), 1);
    ck_assert_int_eq(spotdb__sql_split(sql, 16, st, MAXST, NULL), 2);
    ck_assert_uint_eq(st[1].offset, 10);
    ck_assert_uint_eq(st[1].length, 6);
}
END_TEST

START_TEST(max_too_small)
{
    const char *sql = "SELECT 1; SELECT 2; SELECT 3";
    spotdb__stmt two[2], three[3];
    size_t err = 12345;

    ck_assert_int_eq(spotdb__sql_split(sql, strlen(sql), two, 2, &err), -1);
    ck_assert_int_eq(spotdb__sql_split(sql, strlen(sql), two, 0, NULL), -1);
    ck_assert_int_eq(spotdb__sql_split("SELECT 1;", 9, two, 0, NULL), -1);
    /* Exactly enough room. */
    ck_assert_int_eq(spotdb__sql_split(sql, strlen(sql), three, 3, NULL), 3);
    ck_assert_uint_eq(three[2].offset, 20);
    ck_assert_uint_eq(three[2].length, 8);
    sql = "SELECT 1; SELECT 2;";
    ck_assert_int_eq(spotdb__sql_split(sql, strlen(sql), two, 2, NULL), 2);
}
END_TEST

START_TEST(unterminated_quote)
{
    expect_error_at("SELECT 'abc", 7);
    expect_error_at("SELECT 1;\nSELECT 'it''s", 17);
    expect_error_at("SELECT \"ident", 7);
    expect_error_at("SELECT 'ends with doubled ''", 7);
    /* The backslash escapes the quote in an E'' string ... */
    {
        const char *sql = "SELECT E'abc\\'";
        size_t err = 0;

        ck_assert_int_eq(spotdb__sql_split(sql, strlen(sql), st, MAXST, &err),
                         -1);
        /* ... and the error is at the E or at its quote. */
        ck_assert_msg(err == 7 || err == 8, "err_offset %zu", err);
    }
    /* ... but not in a standard string. */
    ck_assert_int_eq(split("SELECT 'abc\\'"), 1);
}
END_TEST

START_TEST(unterminated_dollar_quote)
{
    expect_error_at("SELECT 1; DO $$ BEGIN END;", 13);
    expect_error_at("DO $body$ BEGIN END $$;", 3);
    expect_error_at("SELECT $a$ x $A$;", 7);
    expect_error_at("SELECT $a$", 7);
}
END_TEST

START_TEST(unterminated_block_comment)
{
    expect_error_at("SELECT 1; /* never closed", 10);
    expect_error_at("/* outer /* inner */ still open", 0);
    expect_error_at("SELECT 1 /*/", 9);
    /* A line comment may end the file. */
    ck_assert_int_eq(split("SELECT 1; -- the end"), 1);
}
END_TEST

/* ---- spotdb__line_col ---------------------------------------------------- */

static void expect_lc(const char *text, size_t off, unsigned l, unsigned c)
{
    unsigned line = 0, col = 0;

    spotdb__line_col(text, off, &line, &col);
    ck_assert_msg(line == l && col == c, "offset %zu: %u:%u, want %u:%u", off,
                  line, col, l, c);
}

START_TEST(line_col_ascii)
{
    const char *t = "ab\ncd\n\nefg";

    expect_lc(t, 0, 1, 1);
    expect_lc(t, 1, 1, 2);
    expect_lc(t, 2, 1, 3);      /* the '\n' itself */
    expect_lc(t, 3, 2, 1);
    expect_lc(t, 4, 2, 2);
    expect_lc(t, 6, 3, 1);
    expect_lc(t, 7, 4, 1);
    expect_lc(t, 9, 4, 3);
    expect_lc(t, 10, 4, 4);     /* end of text */
    expect_lc(t, 1000, 4, 4);   /* beyond: stops at the NUL */
    expect_lc("\tx", 1, 1, 2);  /* a tab is one column */
}
END_TEST

START_TEST(line_col_utf8)
{
    /* "é" is 2 bytes, "€" 3, "😀" 4: each one column. */
    const char *t = "\xc3\xa9x\n\xe2\x82\xac\xf0\x9f\x98\x80y 'z'";

    expect_lc(t, 2, 1, 2);      /* x */
    expect_lc(t, 4, 2, 1);      /* € */
    expect_lc(t, 7, 2, 2);      /* 😀 */
    expect_lc(t, 11, 2, 3);     /* y */
    expect_lc(t, 13, 2, 5);     /* the quote */

    /* Together with the splitter: where an error begins. */
    {
        const char *sql = "SELECT 1;\n-- d\xc3\xa9j\xc3\xa0 vu\nSELECT '\xc3\xa9t\xc3\xa9', 'open";
        size_t err = 0;
        unsigned line, col;

        ck_assert_int_eq(spotdb__sql_split(sql, strlen(sql), st, MAXST, &err),
                         -1);
        spotdb__line_col(sql, err, &line, &col);
        ck_assert_uint_eq(line, 3);
        ck_assert_uint_eq(col, 15);
    }
}
END_TEST

/* ---- the real migration ------------------------------------------------ */

static bool starts_with(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);

    return len >= n && memcmp(s, prefix, n) == 0;
}

START_TEST(initial_migration)
{
    char *sql = th_read_file(th_source_path("../sql/0001_initial.sql"));
    size_t len = strlen(sql);
    long n = spotdb__sql_split(sql, len, NULL, 0, NULL);
    spotdb__stmt *all;
    long creates = 0, comments = 0, do_blocks = 0;

    /* Counted by hand: 1 extension, 5 tables, 17 indexes, 32 comments on
     * tables and columns, 1 function, 3 triggers, 2 views and their 2
     * comments, 1 insert, 1 DO block. */
    ck_assert_int_eq(n, 65);
    all = calloc((size_t)n, sizeof *all);
    ck_assert_ptr_nonnull(all);
    ck_assert_int_eq(spotdb__sql_split(sql, len, all, (size_t)n, NULL), n);
    ck_assert_int_eq(spotdb__sql_split(sql, len, all, (size_t)n - 1, NULL), -1);

    for (long k = 0; k < n; k++) {
        const char *s = sql + all[k].offset;
        size_t l = all[k].length;

        ck_assert_msg(starts_with(s, l, "CREATE ") ||
                          starts_with(s, l, "COMMENT ON ") ||
                          starts_with(s, l, "INSERT ") ||
                          starts_with(s, l, "DO "),
                      "statement %ld (line %u) starts oddly: %.40s", k,
                      all[k].line, s);
        creates += starts_with(s, l, "CREATE ");
        comments += starts_with(s, l, "COMMENT ON ");
        do_blocks += starts_with(s, l, "DO ");
        /* Each statement starts at a token on its recorded line. */
        {
            unsigned line, col;

            spotdb__line_col(sql, all[k].offset, &line, &col);
            ck_assert_uint_eq(line, all[k].line);
            ck_assert_uint_eq(col, 1);
        }
    }
    ck_assert_int_eq(creates, 1 + 5 + 17 + 1 + 3 + 2);
    ck_assert_int_eq(comments, 32 + 2);
    ck_assert_int_eq(do_blocks, 1);

    /* First and a few known statements, by line. */
    ck_assert_uint_eq(all[0].line, 14);
    ck_assert(starts_with(sql + all[0].offset, all[0].length,
                          "CREATE EXTENSION IF NOT EXISTS \"uuid-ossp\""));
    ck_assert_uint_eq(all[1].line, 18);
    ck_assert_uint_eq(all[55].line, 169);
    ck_assert(starts_with(sql + all[55].offset, all[55].length,
                          "CREATE OR REPLACE FUNCTION update_updated_at_column()"));
    /* The function body's inner ';' do not split it. */
    ck_assert_ptr_nonnull(strstr(sql + all[55].offset, "END;\n$$ LANGUAGE plpgsql"));
    ck_assert_uint_eq(all[55].length,
                      (size_t)(strstr(sql + all[55].offset, "$$ LANGUAGE plpgsql") -
                               (sql + all[55].offset)) +
                          strlen("$$ LANGUAGE plpgsql"));
    ck_assert_uint_eq(all[63].line, 250);   /* INSERT, '$2b$12$...' inside */
    ck_assert(starts_with(sql + all[63].offset, all[63].length, "INSERT INTO users"));

    /* The DO block is the last statement, whole: from DO $$ to $$. */
    {
        const spotdb__stmt *d = &all[n - 1];
        const char *s = sql + d->offset;

        ck_assert_uint_eq(d->line, 258);
        ck_assert(starts_with(s, d->length, "DO $$\nBEGIN\n"));
        ck_assert_msg(memcmp(s + d->length - 3, "\n$$", 3) == 0,
                      "DO block ends with [%.10s]", s + d->length - 10);
        ck_assert_ptr_nonnull(memchr(s, ';', d->length));
        ck_assert_uint_eq(d->offset + d->length + 1 + 1, len); /* ";\n" */
    }
    free(all);
    free(sql);
}
END_TEST

static Suite *sqlsplit_suite(void)
{
    Suite *s = suite_create("sqlsplit");
    TCase *tc;

    tc = tcase_create("basics");
    tcase_add_test(tc, plain_statements);
    tcase_add_test(tc, several_on_one_line);
    tcase_add_test(tc, trailing_statement_without_semicolon);
    tcase_add_test(tc, empty_statements_dropped);
    tcase_add_test(tc, comment_only_dropped);
    tcase_add_test(tc, length_without_semicolon);
    suite_add_tcase(s, tc);

    tc = tcase_create("quotes");
    tcase_add_test(tc, semicolon_in_single_quotes);
    tcase_add_test(tc, doubled_quotes);
    tcase_add_test(tc, backslash_in_standard_string);
    tcase_add_test(tc, e_strings);
    tcase_add_test(tc, constructs_at_offset_zero);
    tcase_add_test(tc, identifier_ending_in_e_is_no_e_string);
    tcase_add_test(tc, quoted_identifiers);
    tcase_add_test(tc, dollar_quotes);
    tcase_add_test(tc, tagged_dollar_quotes);
    tcase_add_test(tc, dollar_in_identifiers_and_parameters);
    tcase_add_test(tc, quotes_inside_dollar_quotes);
    suite_add_tcase(s, tc);

    tc = tcase_create("comments");
    tcase_add_test(tc, nested_block_comments);
    tcase_add_test(tc, line_comments);
    tcase_add_test(tc, quotes_inside_comments);
    suite_add_tcase(s, tc);

    tc = tcase_create("lines");
    tcase_add_test(tc, line_of_first_token);
    tcase_add_test(tc, line_col_ascii);
    tcase_add_test(tc, line_col_utf8);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_test(tc, counting_mode);
    tcase_add_test(tc, length_bounds_the_text);
    tcase_add_test(tc, max_too_small);
    tcase_add_test(tc, unterminated_quote);
    tcase_add_test(tc, unterminated_dollar_quote);
    tcase_add_test(tc, unterminated_block_comment);
    suite_add_tcase(s, tc);

    tc = tcase_create("migration");
    tcase_add_test(tc, initial_migration);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return th_run(sqlsplit_suite());
}
