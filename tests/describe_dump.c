/*
 * Print spotdb_schema_describe() for tests/describe-check.py, which
 * reads it from a program rather than loading the library into Python:
 * a sanitized library cannot be loaded into an uninstrumented process.
 */
#include <stdio.h>

#include "spotdb/spotdb.h"

int main(void)
{
    const char *doc = spotdb_schema_describe();

    if (!doc) {
        fputs("describe_dump: out of memory\n", stderr);
        return 1;
    }
    return fputs(doc, stdout) == EOF || fflush(stdout) != 0;
}
