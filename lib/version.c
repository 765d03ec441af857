#include "internal.h"

const char *spotdb_version(void)
{
    return SPOTDB_VERSION;
}
