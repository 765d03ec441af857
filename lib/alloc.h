/*
 * The library's allocator: every allocation in lib/ goes through these,
 * so a test can make the Nth one fail (tests/test_alloc.c) and check that
 * each path turns it into SPOTDB_ENOMEM, frees what it had, and leaves the
 * handle usable.  Memory they return is released with plain free().
 *
 * Allocations made inside libpq, json-c and libxcrypt do not come here.
 */
#ifndef SPOTDB_ALLOC_H
#define SPOTDB_ALLOC_H

#include <stddef.h>

void *spotdb__malloc(size_t size);
void *spotdb__calloc(size_t n, size_t size);
void *spotdb__realloc(void *p, size_t size);
char *spotdb__strdup(const char *s);

/* Test hooks.  spotdb__alloc_fail_at(k) makes the k-th allocation from
 * now fail, once; 0 disarms.  spotdb__alloc_count() is the number of
 * allocations made through these functions so far, spotdb__alloc_failed()
 * the number they refused on purpose. */
void spotdb__alloc_fail_at(long n);
long spotdb__alloc_count(void);
long spotdb__alloc_failed(void);

#endif
