/* One host thread per rank. Drivers such as PoCL's run a device's commands in the thread
 * that waits for them, and enqueuing itself costs host time, so a single host thread would
 * serialize devices that could run at once. Internal to the library. */
#ifndef CLPAR_WORKERS_H
#define CLPAR_WORKERS_H

#include "clpar/status.h"

typedef struct clpar_workers clpar_workers;

/* A task run once per rank, on that rank's thread. */
typedef clpar_status (*clpar_worker_fn)(void *ctx, int rank);

/* Starts n threads (n >= 1). The caller owns *out (clpar_workers_free). */
clpar_status clpar_workers_init(int n, clpar_workers **out);
/* Joins the threads; no task may be running. */
void clpar_workers_free(clpar_workers *w);
/* Runs fn(ctx, r) for every rank r on its thread and waits for all of them. Returns the
 * first failing rank's status, with its detail message carried over to the calling thread. */
clpar_status clpar_workers_run(clpar_workers *w, clpar_worker_fn fn, void *ctx);

#endif
