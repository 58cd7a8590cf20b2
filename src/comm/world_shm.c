/* Processes of a group that share a host sum through shared memory (an MPI-3 shared window)
 * instead of messages: each process's contribution is read in place by the others, and each
 * part's sum is written back into the buffers, where a CPU device may be computing in them
 * (a replica's gradients then never move). Same order of additions as the messages, so the
 * results are bit-identical whichever way a group goes. */
#include "sum.h"
#include "world_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#ifdef CLPAR_HAVE_MPI
struct world_shm {
    MPI_Win win;
    size_t count;
    float **bufs;  /* each process's contribution, count floats, in group order, page-aligned */
    float **extra; /* with a second region: each process's, the same size after it, or NULL */
};

void world_shm_free(world_shm *s) {
    if (!s) return;
    MPI_Win_unlock_all(s->win);
    MPI_Win_free(&s->win);
    free(s->bufs);
    free(s->extra);
    free(s);
}

/* Every process's writes before it are seen by every process after it. */
static clpar_status shm_sync(world_group *g) {
    MPI_TRY(MPI_Win_sync(g->shm->win), "MPI_Win_sync");
    MPI_TRY(MPI_Barrier(g->comm), "MPI_Barrier(shared sum)");
    MPI_TRY(MPI_Win_sync(g->shm->win), "MPI_Win_sync");
    return CLPAR_OK;
}

/* Whether every process of g says yes (collective). */
static clpar_status all_agree(world_group *g, int yes, int *all) {
    MPI_TRY(MPI_Allreduce(&yes, all, 1, MPI_INT, MPI_MIN, g->comm), "MPI_Allreduce(share)");
    return CLPAR_OK;
}

/* Whether /dev/shm, where Open MPI and MPICH back shared windows on Linux, has room for a
 * window of `bytes` beside the processes' own message segments: with too little (a
 * container's 64 MiB, say) Open MPI's MPI_Win_allocate_shared fails in one process while
 * the others wait in it forever, so the group must not try. No /dev/shm: MPI decides. */
static int shm_room(size_t bytes, int procs) {
    struct statvfs v;
    if (statvfs("/dev/shm", &v) != 0) return 1;
    double room = (double)v.f_bavail * (double)v.f_frsize;
    return room >= 1.25 * (double)bytes + (double)procs * (4u << 20); /* Open MPI: 4 MiB each */
}

static clpar_status share(world_group *g, size_t count, int regions) {
    MPI_Comm node;
    MPI_TRY(MPI_Comm_split_type(g->comm, MPI_COMM_TYPE_SHARED, g->rank, MPI_INFO_NULL, &node),
            "MPI_Comm_split_type");
    int nsize = 0, all = 0;
    MPI_Comm_size(node, &nsize);
    /* CLPAR_SHARED_MEMORY=off keeps a group to messages, as between hosts (a vote: a
     * process started without it cannot leave the others waiting) */
    const char *env = getenv("CLPAR_SHARED_MEMORY");
    int wanted = !env || strcmp(env, "off") != 0;
    size_t window = (size_t)g->size * (size_t)regions * (count * sizeof(float) + 4096);
    clpar_status st = all_agree(g, wanted && nsize == g->size && shm_room(window, g->size), &all);
    if (st != CLPAR_OK || !all) {
        MPI_Comm_free(&node);
        return st; /* some process has another host: messages */
    }
    MPI_Comm_set_errhandler(node, MPI_ERRORS_RETURN);
    world_shm *s = calloc(1, sizeof *s);
    if (s) s->bufs = calloc((size_t)g->size, sizeof *s->bufs);
    if (s && regions > 1) s->extra = calloc((size_t)g->size, sizeof *s->extra);
    /* whole pages each, so that every buffer starts on a page (where MPI lays them out one
     * after another), as devices want memory they compute in */
    size_t page = 4096, padded = (count * sizeof(float) + page - 1) / page * page;
    MPI_Aint bytes = (MPI_Aint)(padded * (size_t)regions);
    float *base = NULL;
    int rc = MPI_ERR_NO_MEM;
    if (s && s->bufs && (regions == 1 || s->extra)) {
        s->win = MPI_WIN_NULL;
        rc = MPI_Win_allocate_shared(bytes, sizeof(float), MPI_INFO_NULL, node, &base, &s->win);
    }
    MPI_Comm_free(&node);
    st = all_agree(g, rc == MPI_SUCCESS, &all);
    if (st == CLPAR_OK && all) {
        for (int j = 0; j < g->size && st == CLPAR_OK; j++) {
            MPI_Aint size;
            int unit;
            st = mpi_check(MPI_Win_shared_query(s->win, j, &size, &unit, &s->bufs[j]),
                           "MPI_Win_shared_query");
            if (st == CLPAR_OK && s->extra) s->extra[j] = s->bufs[j] + padded / sizeof(float);
        }
        if (st == CLPAR_OK)
            st = mpi_check(MPI_Win_lock_all(MPI_MODE_NOCHECK, s->win), "MPI_Win_lock_all");
        if (st == CLPAR_OK) {
            s->count = count;
            g->shm = s;
            return CLPAR_OK;
        }
    }
    /* no shared memory to be had (or a query failed): the group keeps to messages */
    if (rc == MPI_SUCCESS) MPI_Win_free(&s->win);
    if (s) free(s->bufs);
    if (s) free(s->extra);
    free(s);
    return st;
}
#endif

clpar_status world_group_share(world_group *g, size_t count, int regions) {
#ifdef CLPAR_HAVE_MPI
    if (!g || g->shm || count == 0) return CLPAR_OK;
    return share(g, count, regions > 1 ? 2 : 1);
#else
    (void)g, (void)count, (void)regions;
    return CLPAR_OK;
#endif
}

float *world_group_shared_extra(const world_group *g, int j) {
#ifdef CLPAR_HAVE_MPI
    return g && g->shm && g->shm->extra && j >= 0 && j < g->size ? g->shm->extra[j] : NULL;
#else
    (void)g, (void)j;
    return NULL;
#endif
}

clpar_status world_group_gather_shared(world_group *g, const size_t *starts) {
#ifdef CLPAR_HAVE_MPI
    if (!g->shm || !g->shm->extra || starts[g->size] > g->shm->count)
        return clpar_error(CLPAR_EINVAL, "no shared region to gather %zu floats in",
                           starts[g->size]);
    uint64_t sent =
        (uint64_t)(g->size - 1) * (starts[g->rank + 1] - starts[g->rank]) * sizeof(float);
    g->sent += sent; /* counted as the all-gather's messages would be */
    g->shared += sent;
    return shm_sync(g);
#else
    (void)g, (void)starts;
    return clpar_error(CLPAR_EINVAL, "no shared memory without MPI");
#endif
}

float *world_group_shared(const world_group *g) {
#ifdef CLPAR_HAVE_MPI
    return g && g->shm ? g->shm->bufs[g->rank] : NULL;
#else
    (void)g;
    return NULL;
#endif
}

clpar_status world_group_sum_shared(world_group *g, size_t off, const size_t *starts, int gather) {
#ifdef CLPAR_HAVE_MPI
    world_shm *s = g->shm;
    if (off + starts[g->size] > s->count)
        return clpar_error(CLPAR_EINVAL, "shared sum of [%zu, %zu) exceeds its %zu floats", off,
                           off + starts[g->size], s->count);
    TRY(shm_sync(g)); /* every contribution is in */
    size_t a = off + starts[g->rank], b = off + starts[g->rank + 1];
    float *first = s->bufs[0]; /* the part's sum gathers in process 0's buffer, in process order */
    int P = g->size, last = gather || P - 1 == g->rank; /* the last buffer receives the sum */
    for (int j = 1; j < P - 1; j++)
        clpar_sum_into(first + a, s->bufs[j] + a, b - a);
    if (P > 1 && last) /* its addition writes the sum there too, in the same pass */
        clpar_sum_both(first + a, s->bufs[P - 1] + a, b - a);
    else if (P > 1)
        clpar_sum_into(first + a, s->bufs[P - 1] + a, b - a);
    for (int j = 1; j < P - 1 && b > a; j++) /* to every buffer, or to this process's own */
        if (gather || j == g->rank) memcpy(s->bufs[j] + a, first + a, (b - a) * sizeof(float));
    /* counted as the messages would be: the same bytes cross between the processes */
    size_t len = starts[g->size], mine = b - a;
    uint64_t sent = (uint64_t)(len - mine) * sizeof(float);
    if (gather) sent += (uint64_t)(g->size - 1) * mine * sizeof(float);
    g->sent += sent;
    g->shared += sent;
    return shm_sync(g); /* every part is summed and where it belongs */
#else
    (void)g, (void)off, (void)starts, (void)gather;
    return clpar_error(CLPAR_EINVAL, "no shared memory without MPI");
#endif
}
