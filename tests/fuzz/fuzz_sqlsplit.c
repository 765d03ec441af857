/*
 * Fuzz target: the migration file splitter (lib/sqlsplit.c).
 *
 * The input is a migration file.  Invariants, beyond not crashing:
 * - counting mode (stmts NULL) agrees with filling mode;
 * - statements are in order, non-overlapping, inside the text, non-empty,
 *   start on a token (not a blank, a comment or ';'), end at a top-level
 *   ';' (or at the end, less trailing blanks, for the last), and carry the
 *   line of their first byte;
 * - what lies between statements splits into nothing;
 * - each statement alone splits into itself (trailing blanks aside);
 * - the statements joined by ";\n" split into the same statements, and a
 *   leading ";\n" shifts every statement by two bytes and one line;
 * - a -1 names an offset inside the text: where the unterminated quote or
 *   comment began, or (max too small) where the extra statement ended;
 * - spotdb__line_col agrees with the line of the last statement.
 */
#include <string.h>

#include "fuzz.h"
#include "internal.h"

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
           c == '\v';
}

/* Line of byte `to`, counting on from byte `from` on line `line`. */
static unsigned line_from(const char *s, size_t from, size_t to,
                          unsigned line)
{
    for (size_t i = from; i < to; i++)
        line += s[i] == '\n';
    return line;
}

/* Split with room for every statement; aborts on a -1 (the caller knows
 * the text splits). */
static long split_ok(const char *s, size_t len, spotdb__stmt **out)
{
    size_t err = (size_t)-1;
    long n = spotdb__sql_split(s, len, NULL, 0, &err);

    FUZZ_CHECK(n >= 0, "a text that split before fails now at %zu", err);
    *out = malloc(((size_t)n + 1) * sizeof **out);
    if (!*out)
        abort();
    FUZZ_CHECK(spotdb__sql_split(s, len, *out, (size_t)n, &err) == n,
               "filling mode disagrees with counting mode (%ld)", n);
    return n;
}

static void check_statement(const char *s, size_t len, const spotdb__stmt *st,
                            long k, long n, size_t prev_end, unsigned line)
{
    size_t end = st->offset + st->length;

    FUZZ_CHECK(st->length > 0, "statement %ld is empty", k);
    FUZZ_CHECK(st->offset >= prev_end && end <= len,
               "statement %ld [%zu, %zu) overlaps or leaves the text "
               "(previous end %zu, length %zu)", k, st->offset, end,
               prev_end, len);
    FUZZ_CHECK(!blank(s[st->offset]) && s[st->offset] != ';',
               "statement %ld starts on a blank or ';'", k);
    FUZZ_CHECK(!(st->offset + 1 < len && ((s[st->offset] == '-' &&
                                           s[st->offset + 1] == '-') ||
                                          (s[st->offset] == '/' &&
                                           s[st->offset + 1] == '*'))),
               "statement %ld starts on a comment", k);
    if (k + 1 < n || (end < len && s[end] == ';')) {
        FUZZ_CHECK(end < len && s[end] == ';',
                   "statement %ld does not end at a ';'", k);
    } else {
        for (size_t i = end; i < len; i++)
            FUZZ_CHECK(blank(s[i]), "the last statement stops before the "
                       "end at a non-blank byte %zu", i);
        FUZZ_CHECK(!blank(s[end - 1]), "the last statement keeps a "
                   "trailing blank");
    }
    FUZZ_CHECK(st->line == line, "statement %ld: line %u, want %u", k,
               st->line, line);
    /* The helper is quadratic over all statements: the last one only. */
    if (k + 1 == n && !memchr(s, '\0', st->offset)) {
        unsigned l, c;

        spotdb__line_col(s, st->offset, &l, &c);
        FUZZ_CHECK(l == st->line && c >= 1 && c <= st->offset + 1,
                   "line_col(%zu) = %u:%u, statement line %u", st->offset,
                   l, c, st->line);
    }
}

/* Each statement alone: one statement, itself less trailing blanks. */
static void check_alone(const char *s, const spotdb__stmt *st, long k)
{
    const char *t = s + st->offset;
    size_t want = st->length;
    spotdb__stmt one[2];
    size_t err;

    while (want > 0 && blank(t[want - 1]))
        want--;
    FUZZ_CHECK(spotdb__sql_split(t, st->length, one, 2, &err) == 1 &&
               one[0].offset == 0 && one[0].length == want &&
               one[0].line == 1,
               "statement %ld does not split alone into itself", k);
}

/* Statements joined by ";\n" (with a leading ";\n"): the same texts. */
static void check_joined(const char *s, const spotdb__stmt *st, long n)
{
    size_t total = 2, pos = 2;
    unsigned line = 2;
    char *j;
    spotdb__stmt *again;
    long m;

    for (long k = 0; k < n; k++)
        total += st[k].length + 2;
    if (!(j = malloc(total)))
        abort();
    memcpy(j, ";\n", 2);
    for (long k = 0; k < n; k++) {
        memcpy(j + pos, s + st[k].offset, st[k].length);
        pos += st[k].length;
        if (k + 1 < n) {
            memcpy(j + pos, ";\n", 2);
            pos += 2;
        }
    }
    m = split_ok(j, pos, &again);
    FUZZ_CHECK(m == n, "joined: %ld statements, want %ld", m, n);
    pos = 2;
    for (long k = 0; k < n; k++) {
        size_t want = st[k].length;

        if (k + 1 == n)
            while (want > 0 && blank(s[st[k].offset + want - 1]))
                want--;
        FUZZ_CHECK(again[k].offset == pos && again[k].length == want &&
                   again[k].line == line,
                   "joined: statement %ld moved or changed", k);
        line = line_from(j, pos, pos + st[k].length + 2, line);
        pos += st[k].length + 2;
    }
    free(again);
    free(j);
}

/* What lies between statements (and around them) holds none. */
static void check_gaps(const char *s, size_t len, const spotdb__stmt *st,
                       long n)
{
    size_t from = 0, err;

    for (long k = 0; k <= n; k++) {
        size_t to = k < n ? st[k].offset : len;
        long g = spotdb__sql_split(s + from, to - from, NULL, 0, &err);

        FUZZ_CHECK(g == 0, "the gap [%zu, %zu) before statement %ld splits "
                   "into %ld", from, to, k, g);
        if (k < n)
            from = st[k].offset + st[k].length;
    }
}

/* With `max` one short: -1 where the statement that did not fit ends. */
static void check_too_small(const char *s, size_t len, long n)
{
    spotdb__stmt *few = malloc((size_t)n * sizeof *few);
    size_t err = (size_t)-1;

    if (!few)
        abort();
    FUZZ_CHECK(spotdb__sql_split(s, len, few, (size_t)n - 1, &err) == -1,
               "max %ld for %ld statements is not refused", n - 1, n);
    FUZZ_CHECK(err <= len, "err_offset %zu past the text (%zu)", err, len);
    free(few);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy: a read past the text is a sanitizer report. */
    char *s = malloc(size ? size : 1);
    spotdb__stmt *st;
    size_t err = (size_t)-1, prev = 0;
    unsigned line = 1;
    long n;

    if (!s)
        abort();
    memcpy(s, data, size);
    n = spotdb__sql_split(s, size, NULL, 0, &err);
    if (n < 0) {
        size_t err2 = (size_t)-1;

        FUZZ_CHECK(n == -1, "returned %ld", n);
        FUZZ_CHECK(err < size, "err_offset %zu outside the text (%zu)", err,
                   size);
        FUZZ_CHECK(spotdb__sql_split(s, size, NULL, 0, NULL) == -1,
                   "a NULL err_offset changes the outcome");
        FUZZ_CHECK(spotdb__sql_split(s, size, NULL, 0, &err2) == -1 &&
                   err2 == err, "not deterministic");
        free(s);
        return 0;
    }
    n = split_ok(s, size, &st);
    for (long k = 0; k < n; k++) {
        line = line_from(s, prev, st[k].offset, line);
        check_statement(s, size, &st[k], k, n, prev, line);
        check_alone(s, &st[k], k);
        line = line_from(s, st[k].offset, st[k].offset + st[k].length, line);
        prev = st[k].offset + st[k].length;
    }
    check_gaps(s, size, st, n);
    check_joined(s, st, n);
    if (n > 0)
        check_too_small(s, size, n);
    free(st);
    free(s);
    return 0;
}
