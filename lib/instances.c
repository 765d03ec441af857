/*
 * instances: the description of the table and registration for an
 * account found by its AWS number.
 */
#include <stdlib.h>

#include "table.h"

#define C(field, type, flags, minc, maxc, allowed, rule) \
    SPOTDB__COL(spotdb_instance, field, type, flags, minc, maxc, allowed, \
                rule, NULL)
#define NN SPOTDB__NOT_NULL
#define REQ (SPOTDB__NOT_NULL | SPOTDB__REQUIRED)

enum { ID, ACCOUNT_ID, INSTANCE_ID, INSTANCE_TYPE, AVAILABILITY_ZONE,
       ASSIGNED_MODEL_VERSION, PIPELINE_MODE, IS_SHADOW_MODE, IS_ACTIVE,
       LAST_EVALUATION, METADATA, CREATED_AT, UPDATED_AT };

static const spotdb__column columns[] = {
    C(id, SPOTDB__UUID, NN | SPOTDB__KEY, 0, 0, NULL, NULL),
    C(account_id, SPOTDB__UUID, REQ, 0, 0, NULL, NULL),
    C(instance_id, SPOTDB__TEXT, REQ, 1, 50, NULL, spotdb__rule_ec2_id),
    C(instance_type, SPOTDB__TEXT, REQ, 1, 20, NULL, NULL),
    C(availability_zone, SPOTDB__TEXT, REQ, 1, 20, NULL, NULL),
    C(assigned_model_version, SPOTDB__TEXT, 0, 1, 50, NULL, NULL),
    C(pipeline_mode, SPOTDB__TEXT, NN, 1, 20, spotdb__pipeline_modes, NULL),
    C(is_shadow_mode, SPOTDB__BOOL, 0, 0, 0, NULL, NULL),
    C(is_active, SPOTDB__BOOL, 0, 0, 0, NULL, NULL),
    C(last_evaluation, SPOTDB__TIMESTAMP, 0, 0, 0, NULL, NULL),
    C(metadata, SPOTDB__JSON, 0, 0, 0, NULL, spotdb__rule_json),
    C(created_at, SPOTDB__TIMESTAMP, NN, 0, 0, NULL, NULL),
    C(updated_at, SPOTDB__TIMESTAMP, SPOTDB__TRIGGER, 0, 0, NULL, NULL),
};

static const spotdb__filter filters[] = {
    { ACCOUNT_ID, "=", offsetof(spotdb_instance_filter, account_id) },
    { PIPELINE_MODE, "=", offsetof(spotdb_instance_filter, pipeline_mode) },
    { IS_ACTIVE, "=", offsetof(spotdb_instance_filter, is_active) },
};

SPOTDB__TABLE(instance, "instances", columns, filters,
              SPOTDB__NELEMS(filters), SPOTDB_INSTANCE_FILTER_VERSION,
              CREATED_AT, false, NULL);

SPOTDB__TABLE_FUNCTIONS(instance, spotdb__instance_table)
SPOTDB__CREATE_FUNCTION(instance, spotdb__instance_table)
SPOTDB__INSERT_MANY_FUNCTION(instance, spotdb__instance_table)

int spotdb_instance_get_by_instance_id(spotdb_instance **out, spotdb_db *db,
                                       const char *instance_id)
{
    static const size_t key = INSTANCE_ID;

    return spotdb__get((void **)out, db, &spotdb__instance_table, &key,
                       &instance_id, 1);
}

int spotdb_instance_create_for_aws_account(spotdb_instance **out,
                                           spotdb_db *db,
                                           const char *aws_account_id,
                                           const spotdb_instance *in,
                                           uint64_t fields)
{
    spotdb__lookup account = { ACCOUNT_ID, &spotdb__account_table,
                               SPOTDB__ACCOUNT_ACCOUNT_ID_COLUMN,
                               aws_account_id };
    spotdb__write w = { in, fields, NULL, 0, &account };

    return spotdb__insert((void **)out, db, &spotdb__instance_table, &w);
}
