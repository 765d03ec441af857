/*
 * accounts: the description of the table, the rule that ties role_arn to
 * account_id, and creation for a user found by username.
 */
#include <stdlib.h>
#include <string.h>

#include "table.h"

#define C(field, type, flags, minc, maxc, allowed, rule) \
    SPOTDB__COL(spotdb_account, field, type, flags, minc, maxc, allowed, \
                rule, NULL)
#define NN SPOTDB__NOT_NULL
#define REQ (SPOTDB__NOT_NULL | SPOTDB__REQUIRED)

enum { ID, USER_ID, ACCOUNT_ID, ACCOUNT_NAME, ENVIRONMENT_TYPE, ROLE_ARN,
       EXTERNAL_ID, REGION, IS_ACTIVE, CREATED_AT, UPDATED_AT };

static const spotdb__column columns[] = {
    C(id, SPOTDB__UUID, NN | SPOTDB__KEY, 0, 0, NULL, NULL),
    C(user_id, SPOTDB__UUID, REQ, 0, 0, NULL, NULL),
    C(account_id, SPOTDB__TEXT, REQ, 1, 12, NULL, spotdb__rule_aws_account),
    C(account_name, SPOTDB__TEXT, REQ, 1, 100, NULL, NULL),
    C(environment_type, SPOTDB__TEXT, NN, 1, 20, spotdb__environment_types,
      NULL),
    C(role_arn, SPOTDB__TEXT, REQ, 1, 255, NULL, spotdb__rule_role_arn),
    C(external_id, SPOTDB__TEXT, REQ, 2, 255, NULL,
      spotdb__rule_external_id),
    C(region, SPOTDB__TEXT, NN, 1, 20, NULL, NULL),
    C(is_active, SPOTDB__BOOL, 0, 0, 0, NULL, NULL),
    C(created_at, SPOTDB__TIMESTAMP, NN, 0, 0, NULL, NULL),
    C(updated_at, SPOTDB__TIMESTAMP, SPOTDB__TRIGGER, 0, 0, NULL, NULL),
};

static const spotdb__filter filters[] = {
    { USER_ID, "=", offsetof(spotdb_account_filter, user_id) },
    { ENVIRONMENT_TYPE, "=", offsetof(spotdb_account_filter,
                                      environment_type) },
    { IS_ACTIVE, "=", offsetof(spotdb_account_filter, is_active) },
};

/* The ARN names the account it belongs to; when a call writes both, they
 * must agree.  (An update of role_arn alone is checked for form only.) */
static int check_row(spotdb_db *db, const void *row, uint64_t fields)
{
    const spotdb_account *a = row;
    uint64_t both = SPOTDB_ACCOUNT_ACCOUNT_ID | SPOTDB_ACCOUNT_ROLE_ARN;

    if ((fields & both) != both || !a->account_id || !a->role_arn ||
        (a->nulls & both))
        return 0;
    if (strncmp(a->role_arn + strlen("arn:aws:iam::"), a->account_id, 12))
        return spotdb__fail(db, SPOTDB_EINVAL, "account.role_arn: its "
                            "account number must equal account_id");
    return 0;
}

SPOTDB__TABLE(account, "accounts", columns, filters,
              SPOTDB__NELEMS(filters), SPOTDB_ACCOUNT_FILTER_VERSION,
              CREATED_AT, false, check_row);

SPOTDB__TABLE_FUNCTIONS(account, spotdb__account_table)
SPOTDB__CREATE_FUNCTION(account, spotdb__account_table)

int spotdb_account_get_by_account_id(spotdb_account **out, spotdb_db *db,
                                     const char *account_id)
{
    static const size_t key = ACCOUNT_ID;

    return spotdb__get((void **)out, db, &spotdb__account_table, &key,
                       &account_id, 1);
}

int spotdb_account_create_for_username(spotdb_account **out, spotdb_db *db,
                                       const char *username,
                                       const spotdb_account *in,
                                       uint64_t fields)
{
    spotdb__lookup owner = { USER_ID, &spotdb__user_table,
                             SPOTDB__USER_USERNAME_COLUMN, username };
    spotdb__write w = { in, fields, NULL, 0, &owner };

    return spotdb__insert((void **)out, db, &spotdb__account_table, &w);
}
