/* Concatenation of column slices across devices of any context, through host memory. */
#include "staging.h"
#include "world.h"

#include <stdlib.h>
#include <string.h>

struct clpar_allgather {
    int n;
    size_t count;
    clpar_device **devs;
    clpar_staging *staging; /* per rank: its slice as read from the device */
    float *full;            /* the assembled matrix, shared */
    clpar_barrier meet;
    world_group *procs;   /* the other processes' ranks of the group, or NULL */
    size_t *col0, *cols;  /* per local rank: its columns in the current call */
    float *pack, *packed; /* this process's block of columns, and every process's */
};

clpar_status allgather_init_group(clpar_device *const *devs, int n, size_t count, clpar_sync *sync,
                                  world_group *procs, clpar_allgather **out) {
    clpar_status st = clpar_allgather_init(devs, n, count, sync, out);
    clpar_allgather *ag = *out;
    if (st == CLPAR_OK && procs) {
        ag->procs = procs;
        ag->col0 = calloc((size_t)n, sizeof *ag->col0);
        ag->cols = calloc((size_t)n, sizeof *ag->cols);
        /* a block's rows and its first column; every process's */
        ag->pack = malloc((count + 1) * sizeof(float));
        ag->packed = malloc((count + CLPAR_MAX_PROCS) * sizeof(float));
        if (!ag->col0 || !ag->cols || !ag->pack || !ag->packed)
            st = clpar_error(CLPAR_ENOMEM, "out of host memory");
        if (st != CLPAR_OK) {
            clpar_allgather_free(ag);
            *out = NULL;
        }
        return st;
    }
    if (st != CLPAR_OK) world_group_free(procs);
    return st;
}

/* This process's ranks hold consecutive shards, so one block of columns: it goes to every
 * process, and theirs come back into the shared matrix. Run by the first rank's thread. */
static clpar_status gather_processes(clpar_allgather *ag, size_t rows, size_t total) {
    size_t a = ag->col0[0], b = ag->col0[0] + ag->cols[0];
    for (int r = 1; r < ag->n; r++) {
        if (ag->col0[r] < a) a = ag->col0[r];
        if (ag->col0[r] + ag->cols[r] > b) b = ag->col0[r] + ag->cols[r];
    }
    size_t w = b - a;
    /* the block's first column, then its rows */
    ag->pack[0] = (float)a;
    for (size_t r = 0; r < rows; r++)
        memcpy(ag->pack + 1 + r * w, ag->full + r * total + a, w * sizeof(float));
    size_t sizes[CLPAR_MAX_PROCS];
    TRY(world_group_allgatherv(ag->procs, ag->pack, (1 + rows * w) * sizeof(float), ag->packed,
                               sizes));
    const float *p = ag->packed;
    for (int j = 0; j < world_group_size(ag->procs); j++) {
        size_t floats = sizes[j] / sizeof(float), jw = rows ? (floats - 1) / rows : 0;
        size_t ja = (size_t)p[0];
        for (size_t r = 0; r < rows && jw; r++)
            memcpy(ag->full + r * total + ja, p + 1 + r * jw, jw * sizeof(float));
        p += floats;
    }
    return CLPAR_OK;
}

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
    world_group_free(ag->procs);
    free(ag->col0);
    free(ag->cols);
    free(ag->pack);
    free(ag->packed);
    free(ag);
}

uint64_t clpar_allgather_bytes_sent(const clpar_allgather *ag) {
    return world_group_bytes_sent(ag->procs);
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
    if (ag->procs) {
        ag->col0[rank] = col0;
        ag->cols[rank] = cols;
    }
    TRY(clpar_barrier_wait(&ag->meet));
    if (ag->procs) { /* the other processes' columns */
        TRY(rank == 0 ? gather_processes(ag, rows, total) : CLPAR_OK);
        TRY(clpar_barrier_wait(&ag->meet));
    }
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
