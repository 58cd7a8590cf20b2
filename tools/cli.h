/* Helpers shared by the command-line tools: option values with one-line errors. */
#ifndef CLPAR_CLI_H
#define CLPAR_CLI_H

#include "clpar/clpar.h"

/* Prints "PROG: error: MESSAGE" from the status and its detail message; returns 1. */
int cli_fail(const char *prog, clpar_status st);
/* The tool's flag for each configuration field the library's messages name (NULL: the
 * field's own name), used by cli_last_error and cli_fail. */
void cli_set_field_flags(clpar_field_name_fn flag_of);
/* The library's last error with the configuration fields it names written as the flags
 * that set them ("--dp 3 is larger than --batch 2"). */
const char *cli_last_error(void);
/* The message of the last error cli_fail or cli_usage_error printed (without "PROG: error: "),
 * for a process of an MPI run to hand to the one that speaks for all. */
const char *cli_printed_error(void);
/* Prints "PROG: error: FORMAT..."; returns 2 (usage errors). */
int cli_usage_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses an integer in [min, max] for option opt; prints the error and returns non-zero. */
int cli_long(const char *prog, const char *opt, const char *s, long min, long max, long *out);
/* Parses a finite real >= min for option opt. */
int cli_double(const char *prog, const char *opt, const char *s, double min, double *out);
/* Sets the library's detail message (as its own errors do) and returns st, for a tool's
 * functions that speak in statuses. */
clpar_status cli_error_status(clpar_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Returns from a clpar_status function when a call fails. */
#define TRY_STATUS(call)                                                                           \
    do {                                                                                           \
        clpar_status st_ = (call);                                                                 \
        if (st_ != CLPAR_OK) return st_;                                                           \
    } while (0)
/* Joins the run's processes (clpar_world_init); on every process but 0, which speaks for all,
 * silences stdout and stderr, keeping a descriptor of the real stderr in *real_stderr when
 * given (-1 on process 0). The caller frees *w. */
clpar_status cli_world_start(clpar_world **w, int *real_stderr);
/* A tool's exit status rc agreed over the processes: non-zero on every one when any failed;
 * process 0 prints the failing process's message when it did not fail itself. */
int cli_agree(const char *prog, clpar_world *w, int rc);
/* Ends every process of an MPI run at once (MPI_Abort) with exit status code, for a tool
 * whose step failed while other processes may wait for it in a collective: the library
 * never ends a process, so the tools do it. Returns when MPI is absent or not running. */
void cli_end_processes(int code);
/* Monotonic seconds. */
double cli_now(void);

#endif
