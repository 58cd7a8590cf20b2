/* Test-only LD_PRELOAD library: SIGKILLs the process right after the Nth successful
 * rename() onto PATH (CLPAR_TEST_KILL_AT_RENAME=N:PATH), that is right after the Nth
 * checkpoint has been committed, so crash tests kill at an exact point without a hook in
 * the shipped tools. Renames elsewhere (PoCL's kernel cache) are not counted. */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
