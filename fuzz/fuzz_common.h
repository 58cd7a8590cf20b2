/* Shared by the libFuzzer harnesses: the input as a file, since clpar's parsers read paths
 * (a memfd: no disk, no leftovers), a folder for parsers that read several named files, and a
 * NUL-terminated copy for text parsers. */
#ifndef CLPAR_FUZZ_COMMON_H
#define CLPAR_FUZZ_COMMON_H
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes data to a fresh memory file and puts its path in path; returns the fd (close it). */
static inline int fuzz_file(const uint8_t *data, size_t n, char *path, size_t cap) {
    int fd = memfd_create("clpar-fuzz", 0);
    if (fd < 0) abort();
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, data + done, n - done);
        if (w <= 0) abort();
        done += (size_t)w;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

/* This process's scratch folder, /dev/shm/clpar-fuzz-NAME-PID (memory, not disk), made on
 * the first call and removed with the files in it when the process exits (libFuzzer's runs
 * and the replays end with exit). */
static char fuzz_dir_path[64];
static inline void fuzz_dir_remove(void) {
    DIR *d = opendir(fuzz_dir_path);
    for (struct dirent *e; d && (e = readdir(d));) {
        char path[4096];
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", fuzz_dir_path, e->d_name);
        unlink(path);
    }
    if (d) closedir(d);
    rmdir(fuzz_dir_path);
}
static inline const char *fuzz_dir(const char *name) {
    if (!*fuzz_dir_path) {
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "/dev/shm/clpar-fuzz-%s-%d", name,
                 (int)getpid());
        if (mkdir(fuzz_dir_path, 0700) != 0 && errno != EEXIST) abort(); /* a dead namesake's */
        atexit(fuzz_dir_remove);
    }
    return fuzz_dir_path;
}

static inline char *fuzz_string(const uint8_t *data, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, data, n);
    s[n] = 0;
    return s;
}
#endif
