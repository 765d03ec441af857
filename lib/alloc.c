/*
 * Allocation with a failure switch for tests (alloc.h).  The cost when
 * disarmed is one relaxed atomic load per allocation.  The countdown is
 * process-wide: a test arms it around one call on one thread.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

static atomic_long countdown;       /* 0: off; k: the k-th from now fails */
static atomic_long made;
static atomic_long refused;

/* Whether this allocation is the one to fail. */
static int
must_fail(void)
{
    long left;

    atomic_fetch_add_explicit(&made, 1, memory_order_relaxed);
    left = atomic_load_explicit(&countdown, memory_order_relaxed);
    while (left > 0) {
        /* Count down; the allocation that takes it from 1 to 0 fails. */
        if (atomic_compare_exchange_weak_explicit(&countdown, &left,
                                                  left - 1,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed)) {
            if (left == 1) {
                atomic_fetch_add_explicit(&refused, 1, memory_order_relaxed);
                return 1;
            }
            return 0;
        }
    }
    return 0;
}

void *
spotdb__malloc(size_t size)
{
    return must_fail() ? NULL : malloc(size);
}

void *
spotdb__calloc(size_t n, size_t size)
{
    return must_fail() ? NULL : calloc(n, size);
}

void *
spotdb__realloc(void *p, size_t size)
{
    /* A failed realloc leaves p allocated, as the real one does. */
    return must_fail() ? NULL : realloc(p, size);
}

char *
spotdb__strdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = spotdb__malloc(len);

    if (copy)
        memcpy(copy, s, len);
    return copy;
}

void
spotdb__alloc_fail_at(long n)
{
    atomic_store_explicit(&countdown, n > 0 ? n : 0, memory_order_relaxed);
}

long
spotdb__alloc_count(void)
{
    return atomic_load_explicit(&made, memory_order_relaxed);
}

long
spotdb__alloc_failed(void)
{
    return atomic_load_explicit(&refused, memory_order_relaxed);
}
