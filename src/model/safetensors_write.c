/* safetensors writing: atomically (a temporary file, fsynced, renamed over the path, the
 * folder fsynced), so a crash leaves the old file or the new one; the temporary files of
 * writers killed on this host are removed by the next write of the path. */
#include "clpar/safetensors.h"
#include "../runtime/internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
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

/* This host's name as temporary files carry it (no '/'; "host" when unknown). */
static void host_name(char *buf, size_t n) {
    if (gethostname(buf, n) != 0 || !*buf) snprintf(buf, n, "host");
    buf[n - 1] = 0;
    for (char *p = buf; *p; p++)
        if (*p == '/') *p = '_';
}

/* Removes path's temporary files ("PATH.tmp.HOST.PID") that writers on this host left when
 * they were killed before their rename: those whose process is gone. Another host's, which
 * a shared folder may hold, are left alone; so is anything that merely looks alike. */
static void remove_stale(const char *path, const char *host) {
    char *dcopy = strdup(path), *bcopy = strdup(path);
    DIR *dir = dcopy && bcopy ? opendir(dirname(dcopy)) : NULL;
    char prefix[1024];
    if (dir) snprintf(prefix, sizeof prefix, "%s.tmp.%s.", basename(bcopy), host);
    size_t plen = dir ? strlen(prefix) : 0;
    for (struct dirent *e; dir && (e = readdir(dir));) {
        if (strncmp(e->d_name, prefix, plen)) continue;
        char *end;
        errno = 0;
        long pid = strtol(e->d_name + plen, &end, 10);
        if (*end || end == e->d_name + plen || errno || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) (void)unlinkat(dirfd(dir), e->d_name, 0);
    }
    if (dir) closedir(dir);
    free(dcopy);
    free(bcopy);
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

    char host[256];
    host_name(host, sizeof host);
    remove_stale(path, host);
    size_t tlen = strlen(path) + strlen(host) + 32;
    char *tmp = malloc(tlen);
    if (!tmp) {
        free(header);
        return clpar_error(CLPAR_ENOMEM, "out of host memory");
    }
    snprintf(tmp, tlen, "%s.tmp.%s.%ld", path, host, (long)getpid());
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
