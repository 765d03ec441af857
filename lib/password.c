/*
 * bcrypt through libxcrypt's reentrant calls.  libxcrypt is permissive
 * where a password store must not be: asked for a salt without a cost it
 * picks a weak one, it silently ignores bytes after the 72nd, and it
 * treats any stored string it does not recognise as some older scheme (a
 * "hash" of "garbage" is a DES setting).  So the cost is always explicit,
 * long passwords are refused, and a stored hash must look like bcrypt
 * before it is used.
 */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "password.h"

int spotdb__bcrypt_cost = 12;

void spotdb__wipe(void *p, size_t n)
{
    /* volatile: the compiler may not drop a wipe of memory about to be
     * freed. */
    volatile unsigned char *v = p;

    while (n--)
        *v++ = 0;
}

int spotdb__password_check(spotdb_db *db, const char *password)
{
    if (!password)
        return spotdb__fail(db, SPOTDB_EINVAL, "password: must not be NULL");
    if (!*password)
        return spotdb__fail(db, SPOTDB_EINVAL, "password: must not be empty");
    if (strlen(password) > SPOTDB__PASSWORD_MAX)
        return spotdb__fail(db, SPOTDB_EINVAL, "password: must be at most "
                            "%d bytes (bcrypt ignores the rest)",
                            SPOTDB__PASSWORD_MAX);
    return 0;
}

static bool b64_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '/';
}

/* "$2b$12$" and 53 characters of bcrypt's base64; also $2a$ and $2y$.
 * Returns the cost, or -1 for anything else. */
int spotdb__bcrypt_cost_of(const char *hash)
{
    int cost;

    if (strlen(hash) != SPOTDB__HASH_LEN || hash[0] != '$' ||
        hash[1] != '2' || !strchr("aby", hash[2]) || hash[2] == '\0' ||
        hash[3] != '$' || hash[4] < '0' || hash[4] > '3' || hash[5] < '0' ||
        hash[5] > '9' || hash[6] != '$')
        return -1;
    cost = (hash[4] - '0') * 10 + (hash[5] - '0');
    if (cost < 4 || cost > 31)
        return -1;
    for (const char *p = hash + 7; *p; p++)
        if (!b64_char(*p))
            return -1;
    return cost;
}

/* crypt_rn into `out`; the work area holds password-derived state and is
 * wiped.  Returns 0, SPOTDB_ENOMEM when the work area (32 KiB, too much
 * for a thread's stack) cannot be allocated, or SPOTDB_ERROR when
 * libxcrypt fails (NULL or a "*" result).  Nothing is recorded. */
static int bcrypt(const char *password, const char *setting,
                  char out[SPOTDB__HASH_LEN + 1])
{
    struct crypt_data *data = spotdb__calloc(1, sizeof *data);
    const char *h;
    bool ok;

    if (!data)
        return SPOTDB_ENOMEM;
    h = crypt_rn(password, setting, data, (int)sizeof *data);
    ok = h && h[0] != '*' && strlen(h) == SPOTDB__HASH_LEN;
    if (ok)
        memcpy(out, h, SPOTDB__HASH_LEN + 1);
    spotdb__wipe(data, sizeof *data);
    free(data);
    return ok ? 0 : SPOTDB_ERROR;
}

int spotdb__password_hash(spotdb_db *db, const char *password,
                          char out[SPOTDB__HASH_LEN + 1])
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    int rc;

    /* NULL random bytes: libxcrypt reads them from the OS. */
    if (!crypt_gensalt_rn("$2b$", (unsigned long)spotdb__bcrypt_cost, NULL, 0,
                          setting, (int)sizeof setting) ||
        setting[0] == '*')
        return spotdb__fail(db, SPOTDB_ERROR, "password: cannot make a "
                            "bcrypt salt");
    if ((rc = bcrypt(password, setting, out)) == SPOTDB_ENOMEM)
        return spotdb__fail(db, rc, "password: out of memory");
    if (rc != 0)
        return spotdb__fail(db, rc, "password: bcrypt failed");
    return 0;
}

static bool equal_ct(const char *a, const char *b, size_t n)
{
    unsigned char d = 0;

    for (size_t i = 0; i < n; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

/* Each step of cost doubles bcrypt's work: 12 takes a quarter of a second,
 * 31 would take days.  A stored cost above this one was not made by the
 * library, and verifying it would let one edited row stall every login
 * attempt on it: it is treated as not bcrypt. */
#define SPOTDB__BCRYPT_COST_MAX 16

/* Out of memory is a failure of the call, never a mismatch: a right
 * password must not read as a wrong one (nor the doctor's check of the
 * seeded password as passed). */
int spotdb__password_verify(spotdb_db *db, const char *password,
                            const char *hash, bool *match, bool *weak)
{
    char dummy[32], out[SPOTDB__HASH_LEN + 1];
    int cost = hash ? spotdb__bcrypt_cost_of(hash) : -1;
    int rc;

    *match = false;
    *weak = false;
    if (cost < 0 || cost > SPOTDB__BCRYPT_COST_MAX) {
        /* Unknown login or a stored value that is not bcrypt: spend the
         * same work on a fixed setting, so the time does not tell. */
        snprintf(dummy, sizeof dummy, "$2b$%02d$abcdefghijklmnopqrstuu",
                 spotdb__bcrypt_cost);
        rc = bcrypt(password, dummy, out);
    } else {
        rc = bcrypt(password, hash, out);
        *match = rc == 0 && equal_ct(out, hash, SPOTDB__HASH_LEN);
        *weak = cost < spotdb__bcrypt_cost || hash[2] != 'b';
    }
    spotdb__wipe(out, sizeof out);
    if (rc == SPOTDB_ENOMEM) {
        *match = false;
        return spotdb__fail(db, rc, "password: out of memory");
    }
    return 0;
}
