/*
 * The smallest outside program: built against an installed libspotdb with
 * nothing but cc and pkg-config (tools/install-check does exactly that).
 */
#include <stdio.h>
#include <string.h>

#include <spotdb/spotdb.h>

int main(void)
{
    printf("libspotdb %s (built against %s)\n", spotdb_version(), SPOTDB_VERSION);
    return strcmp(spotdb_version(), SPOTDB_VERSION) == 0 ? 0 : 1;
}
