/*
 * Password hashing for users.c (bcrypt $2b$ through libxcrypt).
 */
#ifndef SPOTDB_PASSWORD_H
#define SPOTDB_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#include "internal.h"

#define SPOTDB__PASSWORD_MAX 72     /* bcrypt reads no further */
#define SPOTDB__HASH_LEN 60         /* "$2b$12$" + 53 characters */

/* Zero memory in a way the compiler keeps. */
void spotdb__wipe(void *p, size_t n);
/* 1 to 72 bytes; EINVAL naming the rule otherwise (never the value). */
int spotdb__password_check(spotdb_db *db, const char *password);
/* A new $2b$ hash at spotdb__bcrypt_cost. */
int spotdb__password_hash(spotdb_db *db, const char *password,
                          char out[SPOTDB__HASH_LEN + 1]);
/* Cost of a well-formed bcrypt hash, else -1. */
int spotdb__bcrypt_cost_of(const char *hash);
/* Whether `password` matches `hash` (NULL: unknown user), in *match;
 * always does one bcrypt at least at the current cost.  *weak tells a
 * match that should be re-hashed.  Returns 0, or SPOTDB_ENOMEM (recorded
 * on db, *match false) when bcrypt's work area cannot be allocated. */
int spotdb__password_verify(spotdb_db *db, const char *password,
                            const char *hash, bool *match, bool *weak);

#endif /* SPOTDB_PASSWORD_H */
