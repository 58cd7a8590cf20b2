/* The one mechanism behind every enum's parse and name functions: a table of names indexed
 * by value, so that a value and its word cannot drift apart. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

const char *clpar_enum_name(const char *const *names, int n, int value) {
    return value >= 0 && value < n ? names[value] : "unknown";
}

clpar_status clpar_enum_parse(const char *const *names, int n, const char *field, const char *text,
                              int *value) {
    for (int i = 0; text && i < n; i++)
        if (!strcmp(names[i], text)) {
            *value = i;
            return CLPAR_OK;
        }
    char list[256];
    size_t used = 0;
    list[0] = 0;
    for (int i = 0; i < n && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
    return clpar_error(CLPAR_EINVAL, "\x01%s\x02 must be one of %s, got '%s'", field, list,
                       text ? text : "");
}
