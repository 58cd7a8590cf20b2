/* Test-only LD_PRELOAD library: SIGKILLs the process at an exact point without a hook in the
 * shipped tools.
 *   CLPAR_TEST_KILL_AT_RENAME=N:PATH  right after the Nth successful rename() onto PATH, that
 *                                     is right after the Nth checkpoint has been committed
 *                                     (renames elsewhere, such as PoCL's cache, not counted)
 *   CLPAR_TEST_KILL_AT_WRITE=N:TEXT   in the middle of the Nth write() to a file whose path
 *                                     contains TEXT: half of it written, then killed */
#include <dlfcn.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

int rename(const char *from, const char *to) {
    static int (*real)(const char *, const char *);
    static int count;
    if (!real) real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    int rc = real(from, to);
    const char *at = getenv("CLPAR_TEST_KILL_AT_RENAME");
    const char *path = at ? strchr(at, ':') : NULL;
    if (rc == 0 && path && !strcmp(to, path + 1) && ++count == atoi(at)) raise(SIGKILL);
    return rc;
}

ssize_t write(int fd, const void *buf, size_t n) {
    static ssize_t (*real)(int, const void *, size_t);
    static atomic_int count;
    if (!real) real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    const char *at = getenv("CLPAR_TEST_KILL_AT_WRITE");
    const char *text = at ? strchr(at, ':') : NULL;
    char link[64], path[4096];
    ssize_t len = -1;
    if (text && fd > 2) {
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        len = readlink(link, path, sizeof path - 1);
    }
    if (len > 0 && (path[len] = 0, strstr(path, text + 1)) &&
        atomic_fetch_add(&count, 1) + 1 == atoi(at)) {
        if (n > 1) real(fd, buf, n / 2);
        raise(SIGKILL);
    }
    return real(fd, buf, n);
}
