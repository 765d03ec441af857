/*
 * What every fuzz target shares: libFuzzer's two entry points, and a check
 * that aborts (so that libFuzzer saves the input, and the replay driver
 * under meson test fails) when an invariant breaks, saying which.
 */
#ifndef SPOTDB_FUZZ_H
#define SPOTDB_FUZZ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Called once before the first input (libFuzzer, and tests/fuzz/replay.c,
 * which requires every target to define it). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
/* One input; returns 0 (libFuzzer reserves other values). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4), noreturn))
#endif
static inline void fuzz_fail(const char *file, int line, const char *fmt,
                             ...)
{
    va_list ap;

    fprintf(stderr, "%s:%d: invariant broken: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* FUZZ_CHECK(cond, "printf format", ...): abort unless cond holds. */
#define FUZZ_CHECK(cond, ...)                                               \
    do {                                                                    \
        if (!(cond))                                                        \
            fuzz_fail(__FILE__, __LINE__, __VA_ARGS__);                     \
    } while (0)

/* The input as a NUL-terminated string (malloc'd; aborts when out of
 * memory).  Bytes after an embedded NUL are then invisible to C string
 * functions, as they would be to the library. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (!s)
        abort();
    for (size_t i = 0; i < size; i++)
        s[i] = (char)data[i];
    s[size] = '\0';
    return s;
}

#endif /* SPOTDB_FUZZ_H */
