/* Helpers shared by the command-line tools. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef CLPAR_HAVE_MPI
#include <mpi.h>
#endif

static clpar_field_name_fn field_flag;
static char tool_message[1024]; /* a tool's own error, reported in place of the library's */
static char printed[1024];      /* the last error printed, without the tool's name */

const char *cli_printed_error(void) {
    return printed;
}

void cli_set_field_flags(clpar_field_name_fn flag_of) {
    field_flag = flag_of;
}

const char *cli_last_error(void) {
    return clpar_last_error_renamed(field_flag, NULL);
}

int cli_fail(const char *prog, clpar_status st) {
    const char *detail = tool_message[0] ? tool_message : cli_last_error();
    snprintf(printed, sizeof printed, "%s", *detail ? detail : clpar_status_message(st));
    fprintf(stderr, "%s: error: %s\n", prog, printed);
    return 1;
}

int cli_usage_error(const char *prog, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(printed, sizeof printed - 16, fmt, ap);
    va_end(ap);
    strcat(printed, " (see --help)");
    fprintf(stderr, "%s: error: %s\n", prog, printed);
    return 2;
}

int cli_long(const char *prog, const char *opt, const char *s, long min, long max, long *out) {
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno) {
        cli_usage_error(prog, "%s expects an integer, got '%s'", opt, s);
        return 1;
    }
    if (v < min || v > max) {
        cli_usage_error(prog, "%s %ld is out of range (%ld..%ld)", opt, v, min, max);
        return 1;
    }
    *out = v;
    return 0;
}

int cli_double(const char *prog, const char *opt, const char *s, double min, double *out) {
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v)) {
        cli_usage_error(prog, "%s expects a number, got '%s'", opt, s);
        return 1;
    }
    if (v < min) {
        cli_usage_error(prog, "%s %g must be at least %g", opt, v, min);
        return 1;
    }
    *out = v;
    return 0;
}

clpar_status cli_error_status(clpar_status st, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(tool_message, sizeof tool_message, "%s", msg);
    return st;
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void cli_end_processes(int code) {
#ifdef CLPAR_HAVE_MPI
    int on = 0, done = 0, size = 1;
    if (MPI_Initialized(&on) == MPI_SUCCESS && on && MPI_Finalized(&done) == MPI_SUCCESS && !done &&
        MPI_Comm_size(MPI_COMM_WORLD, &size) == MPI_SUCCESS && size > 1) {
        /* the launcher forwards this process's last words from a pipe; MPICH's Hydra may tear
         * down on the abort before it has read them: a moment for the reading first */
        fflush(NULL);
        usleep(200 * 1000);
        MPI_Abort(MPI_COMM_WORLD, code);
    }
#else
    (void)code;
#endif
}

clpar_status cli_world_start(clpar_world **w, int *real_stderr) {
    if (real_stderr) *real_stderr = -1;
    TRY_STATUS(clpar_world_init(w));
    if (clpar_world_rank(*w) == 0) return CLPAR_OK;
    fflush(NULL);
    if (real_stderr) *real_stderr = dup(STDERR_FILENO);
    if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
        return cli_error_status(CLPAR_EIO, "/dev/null: cannot open for writing");
    return CLPAR_OK;
}

int cli_agree(const char *prog, clpar_world *w, int rc) {
    if (clpar_world_size(w) == 1) return rc;
    clpar_status st =
        clpar_world_agree(w, rc ? CLPAR_EINVAL : CLPAR_OK, rc ? cli_printed_error() : NULL);
    if (st == CLPAR_OK) return 0;
    if (!rc && clpar_world_rank(w) == 0)
        fprintf(stderr, "%s: error: %s\n", prog, clpar_last_error());
    return rc ? rc : 1;
}
