/*
 * Splitting a migration file into statements, so that each runs on its
 * own and a failure can name the statement and its line.  The lexer knows
 * just enough of PostgreSQL's to find top-level semicolons: '...' (with ''
 * doubling), E'...' (with backslash escapes), "..." identifiers,
 * $tag$...$tag$ bodies, -- comments and nested block comments.  SQL-body
 * functions (BEGIN ATOMIC ... END) are not understood; migrations write
 * function bodies in dollar quotes (docs/migrations.md).
 */
#include <string.h>

#include "internal.h"

static bool ident_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '$' || c >= 0x80;
}

static bool tag_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           c >= 0x80;
}

/* Length of a dollar-quote opener at s[i] ("$$", "$body$"), or 0. */
static size_t dollar_tag(const char *s, size_t len, size_t i)
{
    size_t j = i + 1;

    if (i > 0 && ident_char((unsigned char)s[i - 1]))
        return 0;
    if (j < len && tag_start((unsigned char)s[j]))
        while (j < len && ident_char((unsigned char)s[j]) && s[j] != '$')
            j++;
    return j < len && s[j] == '$' ? j - i + 1 : 0;
}

/* Index just past the construct opening at s[i], or len + 1 when the text
 * ends inside it; i itself when nothing opens there. */
static size_t skip_construct(const char *s, size_t len, size_t i)
{
    size_t j, tag;

    if (s[i] == '-' && i + 1 < len && s[i + 1] == '-') {
        for (j = i + 2; j < len && s[j] != '\n'; j++)
            ;
        return j;
    }
    if (s[i] == '/' && i + 1 < len && s[i + 1] == '*') {
        unsigned depth = 1;
        for (j = i + 2; j < len && depth > 0; j++) {
            if (s[j] == '/' && j + 1 < len && s[j + 1] == '*')
                depth++, j++;
            else if (s[j] == '*' && j + 1 < len && s[j + 1] == '/')
                depth--, j++;
        }
        return depth == 0 ? j : len + 1;
    }
    if (s[i] == '\'' || s[i] == '"') {
        char q = s[i];
        bool backslash = q == '\'' && i > 0 && (s[i - 1] == 'E' || s[i - 1] == 'e') &&
                         (i < 2 || !ident_char((unsigned char)s[i - 2]));
        for (j = i + 1; j < len; j++) {
            if (backslash && s[j] == '\\')
                j++;
            else if (s[j] == q && j + 1 < len && s[j + 1] == q)
                j++;
            else if (s[j] == q)
                return j + 1;
        }
        return len + 1;
    }
    if (s[i] == '$' && (tag = dollar_tag(s, len, i)) > 0) {
        for (j = i + tag; j + tag <= len; j++)
            if (memcmp(s + j, s + i, tag) == 0)
                return j + tag;
        return len + 1;
    }
    return i;
}

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
           c == '\v';
}

static bool is_comment(const char *s, size_t len, size_t i)
{
    return i + 1 < len && ((s[i] == '-' && s[i + 1] == '-') ||
                           (s[i] == '/' && s[i + 1] == '*'));
}

long spotdb__sql_split(const char *sql, size_t len, spotdb__stmt *stmts,
                       size_t max, size_t *err_offset)
{
    size_t n = 0, i = 0, start = 0;
    bool in_stmt = false;
    unsigned line = 1, start_line = 1;

    while (i < len) {
        size_t next;

        if (!in_stmt && !blank(sql[i]) && !is_comment(sql, len, i) &&
            sql[i] != ';') {
            in_stmt = true;
            start = i;
            start_line = line;
        }
        if (sql[i] == ';') {
            if (in_stmt) {
                if (stmts && n == max)
                    goto too_many;
                if (stmts)
                    stmts[n] = (spotdb__stmt){ start, i - start, start_line };
                n++;
                in_stmt = false;
            }
            i++;
            continue;
        }
        next = skip_construct(sql, len, i);
        if (next > len) {
            if (err_offset)
                *err_offset = i;
            return -1;
        }
        if (next == i)
            next = i + 1;
        for (; i < next; i++)
            if (sql[i] == '\n')
                line++;
    }
    if (in_stmt) {
        size_t end = len;
        if (stmts && n == max)
            goto too_many;
        /* A last statement without ';' still ends at trailing blanks. */
        while (end > start && blank(sql[end - 1]))
            end--;
        if (stmts)
            stmts[n] = (spotdb__stmt){ start, end - start, start_line };
        n++;
    }
    return (long)n;

too_many:
    if (err_offset)
        *err_offset = i;
    return -1;
}

void spotdb__line_col(const char *text, size_t offset, unsigned *line,
                      unsigned *col)
{
    unsigned l = 1, c = 1;

    for (size_t i = 0; i < offset && text[i]; i++) {
        if (text[i] == '\n') {
            l++;
            c = 1;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            c++;                    /* count characters, not UTF-8 bytes */
        }
    }
    *line = l;
    *col = c;
}
