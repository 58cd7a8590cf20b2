/* Concatenation of column slices across devices of any context, through host memory. */
#include "staging.h"

#include <stdlib.h>
#include <string.h>

struct clpar_allgather {
    int n;
    size_t count;
    clpar_device **devs;
    clpar_staging *staging; /* per rank: its slice as read from the device */
    float *full;            /* the assembled matrix, shared */
    clpar_barrier meet;
};

clpar_status clpar_allgather_init(clpar_device *const *devs, int n, size_t count, clpar_sync *sync,
                                  clpar_allgather **out) {
    *out = NULL;
    clpar_allgather *ag = calloc(1, sizeof *ag);
    if (!ag) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    ag->n = n;
    ag->count = count;
    clpar_barrier_init(&ag->meet, sync, n);
    ag->devs = calloc((size_t)n, sizeof *ag->devs);
    ag->staging = calloc((size_t)n, sizeof *ag->staging);
    ag->full = malloc((count ? count : 1) * sizeof(float));
    if (!ag->devs || !ag->staging || !ag->full) {
        clpar_allgather_free(ag);
        return clpar_error(CLPAR_ENOMEM, "out of host memory");
    }
    for (int r = 0; r < n; r++) {
        ag->devs[r] = devs[r];
        clpar_status st = clpar_staging_init(&ag->staging[r], devs[r], count);
        if (st != CLPAR_OK) {
            clpar_allgather_free(ag);
            return st;
        }
    }
    *out = ag;
    return CLPAR_OK;
}

void clpar_allgather_free(clpar_allgather *ag) {
    if (!ag) return;
    for (int r = 0; ag->staging && r < ag->n; r++)
        if (ag->staging[r].dev) clpar_staging_free(&ag->staging[r]);
    free(ag->staging);
    free(ag->devs);
    free(ag->full);
    free(ag);
}

clpar_status clpar_allgather_run(clpar_allgather *ag, int rank, cl_mem local, size_t rows,
                                 size_t col0, size_t cols, size_t total, cl_mem full,
                                 cl_event after) {
    if (rows * total > ag->count || col0 + cols > total)
        return clpar_error(CLPAR_EINVAL, "allgather of %zu x %zu exceeds its %zu floats", rows,
                           total, ag->count);
    clpar_device *d = ag->devs[rank];
    if (cols) TRY(clpar_staging_read(&ag->staging[rank], 0, local, 0, rows * cols, after, NULL));
    const float *st = ag->staging[rank].host;
    /* columns of different ranks are disjoint, so all ranks place theirs at once */
    for (size_t r = 0; r < rows; r++)
        memcpy(ag->full + r * total + col0, st + r * cols, cols * sizeof(float));
    TRY(clpar_barrier_wait(&ag->meet));
    cl_event write;
    TRY(clpar_staging_write(d, full, 0, ag->full, rows * total, 0, NULL, &write));
    cl_int err = clpar_wait_event(d, write);
    clpar_status s = err == CL_SUCCESS ? clpar_device_wait_events(d, 1, &write)
                                       : clpar_cl_error(err, "clWaitForEvents(allgather)");
    clReleaseEvent(write);
    TRY(s);
    /* nobody overwrites the shared matrix before every rank has written it */
    return clpar_barrier_wait(&ag->meet);
}
