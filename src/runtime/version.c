/* The library's version, compiled in from the same header the programs see. */
#include "clpar/version.h"

#include <stddef.h>

int clpar_version(const char **text) {
    if (text) *text = CLPAR_VERSION_STRING;
    return CLPAR_VERSION;
}
