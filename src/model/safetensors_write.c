/* safetensors writing: atomically (a temporary file, fsynced, renamed over the path, the
 * folder fsynced), so a crash leaves the old file or the new one. */
#include "clpar/safetensors.h"
#include "../runtime/internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static clpar_status write_all(int fd, const void *buf, size_t n, const char *path) {
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return clpar_error(CLPAR_EIO, "%s: write failed: %s", path, strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    return CLPAR_OK;
}

clpar_status clpar_st_write(const char *path, const clpar_st_entry *entries, int n,
                            const char *const *meta, int nmeta) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    if (nmeta > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; i + 1 < 2 * nmeta; i += 2)
            cJSON_AddStringToObject(m, meta[i], meta[i + 1]);
    }
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        cJSON *t = cJSON_AddObjectToObject(root, entries[i].name);
        cJSON_AddStringToObject(t, "dtype", "F32");
        cJSON *sh = cJSON_AddArrayToObject(t, "shape");
        size_t count = 1;
        for (int d = 0; d < entries[i].ndim; d++) {
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)entries[i].shape[d]));
            count *= entries[i].shape[d];
        }
        cJSON *off = cJSON_AddArrayToObject(t, "data_offsets");
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)pos));
        pos += count * sizeof(float);
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)pos));
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    size_t jlen = strlen(json);
    size_t hlen = (jlen + 7) / 8 * 8; /* pad with spaces so the data is 8-byte aligned */
    char *header = malloc(8 + hlen);
    if (!header) {
        free(json);
        return clpar_error(CLPAR_ENOMEM, "out of host memory");
    }
    for (int i = 0; i < 8; i++)
        header[i] = (char)((uint64_t)hlen >> (8 * i));
    memcpy(header + 8, json, jlen);
    memset(header + 8 + jlen, ' ', hlen - jlen);
    free(json);

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp) {
        free(header);
        return clpar_error(CLPAR_ENOMEM, "out of host memory");
    }
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    clpar_status rc = CLPAR_OK;
    if (fd < 0) rc = clpar_error(CLPAR_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    if (rc == CLPAR_OK) rc = write_all(fd, header, 8 + hlen, tmp);
    for (int i = 0; i < n && rc == CLPAR_OK; i++) {
        size_t count = 1;
        for (int d = 0; d < entries[i].ndim; d++)
            count *= entries[i].shape[d];
        rc = write_all(fd, entries[i].data, count * sizeof(float), tmp);
    }
    if (rc == CLPAR_OK && fsync(fd) != 0)
        rc = clpar_error(CLPAR_EIO, "%s: fsync failed: %s", tmp, strerror(errno));
    if (fd >= 0 && close(fd) != 0 && rc == CLPAR_OK)
        rc = clpar_error(CLPAR_EIO, "%s: close failed: %s", tmp, strerror(errno));
    if (rc == CLPAR_OK && rename(tmp, path) != 0)
        rc = clpar_error(CLPAR_EIO, "%s: rename failed: %s", path, strerror(errno));
    if (rc != CLPAR_OK) {
        unlink(tmp);
    } else {
        /* make the rename itself durable */
        char *dcopy = strdup(path);
        int dfd = dcopy ? open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        if (dfd >= 0) {
            /* the new file is in place whatever this says; a failed folder sync only weakens
             * its durability across a power cut, so it is no error */
            (void)fsync(dfd);
            close(dfd);
        }
        free(dcopy);
    }
    free(tmp);
    free(header);
    return rc;
}
