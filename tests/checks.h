/*
 * Assertions shared by the suites that test rows: a call succeeds or
 * fails with a code and a message naming a field, values compare equal,
 * NULL bits are set or not, and queries through the suite's raw libpq
 * connection `pg` return what they should.  A suite includes this after
 * declaring `db` (the handle under test) and `pg`; it may define
 * FAILS_CONTEXT (a string) to be printed with every FAILS.
 */
#ifndef SPOTDB_TEST_CHECKS_H
#define SPOTDB_TEST_CHECKS_H

#include <stdint.h>
#include <string.h>

#include "harness.h"

#ifndef FAILS_CONTEXT
#define FAILS_CONTEXT ""
#endif

#define OK_ON(h, call)                                                       \
    do {                                                                     \
        int rc_ = (call);                                                    \
        ck_assert_msg(rc_ == 0, "%s -> %d (%s): %s", #call, rc_,             \
                      spotdb_strerror(rc_), spotdb_errmsg(h));               \
    } while (0)
#define OK(call) OK_ON(db, call)

/* The call fails with `code`, and the message names `needle` (if not
 * NULL). */
#define FAILS(code, needle, call)                                            \
    do {                                                                     \
        int rc_ = (call);                                                    \
        const char *n_ = (needle);                                           \
        ck_assert_msg(rc_ == (code),                                         \
                      "%s -> %d (%s), expected %d (%s); message: %s [%s]",   \
                      #call, rc_, spotdb_strerror(rc_), (int)(code),         \
                      spotdb_strerror(code), spotdb_errmsg(db),              \
                      FAILS_CONTEXT);                                        \
        if (n_ != NULL)                                                      \
            ck_assert_msg(strstr(spotdb_errmsg(db), n_) != NULL,             \
                          "%s: message \"%s\" does not name \"%s\"", #call,  \
                          spotdb_errmsg(db), n_);                            \
    } while (0)

#define EQS(a, b)                                                            \
    do {                                                                     \
        const char *a_ = (a), *b_ = (b);                                     \
        ck_assert_msg((a_ == NULL && b_ == NULL) ||                          \
                      (a_ && b_ && strcmp(a_, b_) == 0),                     \
                      "%s == %s: \"%s\" vs \"%s\"", #a, #b,                  \
                      a_ ? a_ : "(null)", b_ ? b_ : "(null)");               \
    } while (0)
#define EQI(a, b)                                                            \
    ck_assert_msg((int64_t)(a) == (int64_t)(b), "%s == %s: %lld vs %lld",    \
                  #a, #b, (long long)(a), (long long)(b))
#define EQD(a, b)                                                            \
    ck_assert_msg((a) == (b), "%s == %s: %.17g vs %.17g", #a, #b,            \
                  (double)(a), (double)(b))
#define ISNULL(r, bit)                                                       \
    ck_assert_msg(((r)->nulls & (bit)) != 0, "%s: NULL bit %s not set",      \
                  #r, #bit)
#define NOTNULL(r, bit)                                                      \
    ck_assert_msg(((r)->nulls & (bit)) == 0, "%s: NULL bit %s set", #r, #bit)

/* Formatted queries through the raw connection `pg` (harness.h). */
#define qf(...) th_qf(pg, __VA_ARGS__)
#define qn(...) th_qn(pg, __VA_ARGS__)
#define qeq(...) th_qeq(pg, __VA_ARGS__)
#define rows_in(table) th_qn(pg, "SELECT count(*) FROM %s", (table))

#endif
