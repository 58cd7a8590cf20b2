/* Shared by the libFuzzer harnesses: the input as a file, since clpar's parsers read paths
 * (a memfd: no disk, no leftovers), and a NUL-terminated copy for text parsers. */
#ifndef CLPAR_FUZZ_COMMON_H
#define CLPAR_FUZZ_COMMON_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

static inline char *fuzz_string(const uint8_t *data, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, data, n);
    s[n] = 0;
    return s;
}
#endif
