/*
 * model_registry: the description of the table and the lookup by its
 * unique (name, version).
 */
#include <stdlib.h>

#include "table.h"

#define C(field, type, flags, minc, maxc) \
    SPOTDB__COL(spotdb_model, field, type, flags, minc, maxc, NULL, NULL, \
                NULL)
#define NN SPOTDB__NOT_NULL
#define REQ (SPOTDB__NOT_NULL | SPOTDB__REQUIRED)

enum { ID, NAME, VERSION, S3_PATH, LOCAL_PATH, DESCRIPTION, IS_EXPERIMENTAL,
       IS_ACTIVE, FEATURE_VERSION, CREATED_AT, CREATED_BY };

static const spotdb__column columns[] = {
    C(id, SPOTDB__UUID, NN | SPOTDB__KEY, 0, 0),
    C(name, SPOTDB__TEXT, REQ, 1, 50),
    C(version, SPOTDB__TEXT, REQ, 1, 20),
    C(s3_path, SPOTDB__TEXT, 0, 0, 255),
    C(local_path, SPOTDB__TEXT, 0, 0, 255),
    C(description, SPOTDB__TEXT, 0, 0, 0),
    C(is_experimental, SPOTDB__BOOL, 0, 0, 0),
    C(is_active, SPOTDB__BOOL, 0, 0, 0),
    C(feature_version, SPOTDB__TEXT, 0, 0, 20),
    C(created_at, SPOTDB__TIMESTAMP, NN, 0, 0),
    C(created_by, SPOTDB__UUID, 0, 0, 0),
};

static const spotdb__filter filters[] = {
    { NAME, "=", offsetof(spotdb_model_filter, name) },
    { IS_ACTIVE, "=", offsetof(spotdb_model_filter, is_active) },
};

SPOTDB__TABLE(model, "model_registry", columns, filters,
              SPOTDB__NELEMS(filters), SPOTDB_MODEL_FILTER_VERSION,
              CREATED_AT, false, NULL);

SPOTDB__TABLE_FUNCTIONS(model, spotdb__model_table)
SPOTDB__CREATE_FUNCTION(model, spotdb__model_table)

int spotdb_model_get_by_name_version(spotdb_model **out, spotdb_db *db,
                                     const char *name, const char *version)
{
    static const size_t keys[] = { NAME, VERSION };
    const char *values[] = { name, version };

    return spotdb__get((void **)out, db, &spotdb__model_table, keys, values,
                       2);
}
