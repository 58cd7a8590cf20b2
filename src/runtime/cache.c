/* The on-disk cache (device measurements, tuned GEMMs): text files of "key<TAB>value"
 * lines in the runtime's cache folder. Lines are only appended, so concurrent runs at worst
 * add duplicates; a lookup takes the last line for the key that its check accepts, so a
 * damaged line is ignored. Without a cache folder nothing is read or written. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int path_of(const clpar_runtime *rt, const char *file, char *buf, size_t n) {
    if (!rt->cfg.cache_dir[0]) return 0;
    return (size_t)snprintf(buf, n, "%s/%s", rt->cfg.cache_dir, file) < n;
}

int clpar_cache_lookup(const clpar_runtime *rt, const char *file, const char *key,
                       int (*accept)(const char *value, void *user), void *user, char *value,
                       size_t n) {
    char path[2048], line[8192];
    if (!path_of(rt, file, path, sizeof path)) return 0;
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int found = 0;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (strncmp(line, key, kl) || line[kl] != '\t') continue;
        const char *v = line + kl + 1;
        if (accept && !accept(v, user)) continue;
        snprintf(value, n, "%s", v);
        found = 1;
    }
    fclose(f);
    return found;
}

clpar_status clpar_cache_append(const clpar_runtime *rt, const char *file, const char *key,
                                const char *value) {
    char path[2048];
    if (!path_of(rt, file, path, sizeof path)) return CLPAR_OK;
    char parent[2048];
    snprintf(parent, sizeof parent, "%s", rt->cfg.cache_dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) *slash = 0, mkdir(parent, 0755);
    mkdir(rt->cfg.cache_dir, 0755);
    FILE *f = fopen(path, "a");
    if (!f) return clpar_error(CLPAR_EIO, "%s: %s", path, strerror(errno));
    int ok = fprintf(f, "%s\t%s\n", key, value) > 0;
    ok = fclose(f) == 0 && ok;
    return ok ? CLPAR_OK : clpar_error(CLPAR_EIO, "%s: write failed", path);
}

void clpar_cache_key_clean(char *key) {
    for (char *p = key; *p; p++)
        if (*p == '\t' || *p == '\n') *p = ' ';
}
