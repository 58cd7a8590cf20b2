/* Host-staged sum-all-reduce across devices of any context, in a fixed order, run as a
 * collective by one host thread per rank. */
#include "staging.h"
#include "sum.h"
#include "world.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    cl_event read, write; /* one finished reduction of one range on one rank */
} copy_pair;

typedef struct {
    cl_event read; /* queued by begin, not yet reduced: a read, or the in-place buffer's map */
    size_t off, len;
    void *mapped; /* the mapped range of the in-place buffer, else NULL */
} pending_read;

typedef struct {
    clpar_device *dev;
    clpar_staging stage; /* the rank's copy of the whole range */
    copy_pair *pairs;
    int npairs, cap;
    pending_read *pending; /* one per range begun and not reduced (a bucket each) */
    int npending, pcap;
} rank_state;

struct clpar_allreduce {
    int n;
    size_t count;
    rank_state *ranks;
    float *sum;
    clpar_barrier meet;
    world_group *procs; /* the other processes' ranks of the group, or NULL */
    size_t *bounds;     /* ZeRO slices: member r of the group (over all processes) keeps
                         * [bounds[r], bounds[r + 1]) of every reduction; NULL: all of it */
    int *first;         /* the group's process j holds members first[j] .. first[j + 1] - 1 (NULL: n
                         * each) */
    float *shared;      /* this process's contribution when the group's processes share memory: the
                         * only rank's reads land in it, or the ranks' sum does; else NULL */
    cl_mem in_place;    /* the only rank's buffer when it lives in `shared` (not owned), or NULL */
    cl_mem params_in_place;   /* ZeRO: the buffer of gathered slices when it lives in the
                               * group's second shared region (not owned), or NULL */
    uint64_t floats_in_place; /* summed in place so far */
};

clpar_status clpar_allreduce_init(clpar_device *const *devs, int n, size_t count, clpar_sync *sync,
                                  clpar_allreduce **out) {
    *out = NULL;
    clpar_allreduce *ar = calloc(1, sizeof *ar);
    if (!ar) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    ar->n = n;
    ar->count = count;
    clpar_barrier_init(&ar->meet, sync, n);
    ar->ranks = calloc((size_t)n, sizeof *ar->ranks);
    ar->sum = malloc((count ? count : 1) * sizeof(float));
    if (!ar->ranks || !ar->sum) {
        clpar_allreduce_free(ar);
        return clpar_error(CLPAR_ENOMEM, "out of host memory");
    }
    for (int r = 0; r < n; r++) {
        rank_state *rs = &ar->ranks[r];
        rs->dev = devs[r];
        clpar_status st = clpar_staging_init(&rs->stage, devs[r], count);
        if (st != CLPAR_OK) {
            clpar_allreduce_free(ar);
            return st;
        }
    }
    *out = ar;
    return CLPAR_OK;
}

clpar_status clpar_allreduce_init_world(clpar_device *const *devs, int n, size_t count,
                                        clpar_sync *sync, clpar_world *world,
                                        clpar_allreduce **out) {
    *out = NULL;
    world_group *procs;
    TRY(world_group_split(world, n > 0, &procs)); /* collective: every process takes part */
    if (n == 0) return CLPAR_OK;
    return allreduce_init_group(devs, n, count, sync, procs, out);
}

clpar_status allreduce_init_group(clpar_device *const *devs, int n, size_t count, clpar_sync *sync,
                                  world_group *procs, clpar_allreduce **out) {
    clpar_status st = clpar_allreduce_init(devs, n, count, sync, out);
    if (st != CLPAR_OK) {
        world_group_free(procs);
        return st;
    }
    (*out)->procs = procs;
    (*out)->shared = world_group_shared(procs);
    return CLPAR_OK;
}

/* The first member of the group's process j (j = size: the number of members). */
static int first_member(const clpar_allreduce *ar, int j) {
    return ar->first ? ar->first[j] : j * ar->n;
}

/* Where a rank's copy is read: a process's only rank reads straight into its shared
 * contribution when the group shares memory. */
static float *reads_into(const clpar_allreduce *ar, const rank_state *rs) {
    return ar->n == 1 && ar->shared ? ar->shared : rs->stage.host;
}

float *allreduce_in_place_memory(const clpar_allreduce *ar) {
    return ar->n == 1 && ar->shared ? ar->shared : NULL;
}

/* Whether every process of the group holds one member: then (with a second shared region)
 * ZeRO's slices are gathered through shared memory. The same answer in every process. */
static int one_each(const clpar_allreduce *ar) {
    for (int j = 0; j < world_group_size(ar->procs); j++)
        if (first_member(ar, j + 1) - first_member(ar, j) != 1) return 0;
    return 1;
}

static int gathers_shared(const clpar_allreduce *ar) {
    return ar->bounds && ar->procs && world_group_shared_extra(ar->procs, 0) && one_each(ar);
}

float *allreduce_params_memory(const clpar_allreduce *ar) {
    return gathers_shared(ar) ? world_group_shared_extra(ar->procs, world_group_rank(ar->procs))
                              : NULL;
}

clpar_status allreduce_set_params_in_place(clpar_allreduce *ar, cl_mem buf) {
    if (!allreduce_params_memory(ar))
        return clpar_error(CLPAR_EINVAL, "allreduce: this group gathers no slices in place");
    ar->params_in_place = buf;
    return CLPAR_OK;
}

clpar_status allreduce_set_in_place(clpar_allreduce *ar, cl_mem buf) {
    if (!allreduce_in_place_memory(ar))
        return clpar_error(CLPAR_EINVAL, "allreduce: this group cannot sum in place");
    ar->in_place = buf;
    return CLPAR_OK;
}

/* Local rank `rank`'s share of the sum of this process's ranks' copies of [off, off + len),
 * into mine (indexed as the copies), the ranks in order. */
static void sum_ranks(const clpar_allreduce *ar, int rank, float *mine, size_t off, size_t len) {
    size_t a = off + len * (size_t)rank / (size_t)ar->n;
    size_t b = off + len * (size_t)(rank + 1) / (size_t)ar->n;
    memcpy(mine + a, ar->ranks[0].stage.host + a, (b - a) * sizeof(float));
    for (int r = 1; r < ar->n; r++)
        clpar_sum_into(mine + a, ar->ranks[r].stage.host + a, b - a);
}

clpar_status allreduce_set_owners(clpar_allreduce *ar, const int *first) {
    int P = world_group_size(ar->procs);
    int *f = malloc(((size_t)P + 1) * sizeof *f);
    if (!f) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    memcpy(f, first, ((size_t)P + 1) * sizeof *f);
    free(ar->first);
    ar->first = f;
    return CLPAR_OK;
}

clpar_status clpar_allreduce_set_slices(clpar_allreduce *ar, const size_t *bounds) {
    int members = first_member(ar, world_group_size(ar->procs));
    size_t *b = malloc(((size_t)members + 1) * sizeof *b);
    if (!b) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    for (int r = 0; r <= members; r++) {
        b[r] = bounds[r];
        if (r > 0 && b[r] < b[r - 1]) {
            free(b);
            return clpar_error(CLPAR_EINVAL, "slice bounds must not fall");
        }
    }
    free(ar->bounds);
    ar->bounds = b;
    return CLPAR_OK;
}

/* Local rank r's slice, [*lo, *hi), clipped to [off, off + len). */
static void slice_of(const clpar_allreduce *ar, int rank, size_t off, size_t len, size_t *lo,
                     size_t *hi) {
    int member = first_member(ar, world_group_rank(ar->procs)) + rank;
    *lo = ar->bounds ? ar->bounds[member] : off;
    *hi = ar->bounds ? ar->bounds[member + 1] : off + len;
    if (*lo < off) *lo = off;
    if (*hi > off + len) *hi = off + len;
    if (*hi < *lo) *hi = *lo;
}

/* Between the meetings that follow the sum of this process's ranks: its first rank's thread
 * sums the range across processes while the others wait. `range` holds this process's
 * contribution to [off, off + len) (in the shared buffer when the group shares memory);
 * *result receives where the sum of that range is (indexed from off, as range), which with
 * ZeRO slices holds only this process's ranks' part. */
static clpar_status sum_processes(clpar_allreduce *ar, int rank, float *range, size_t off,
                                  size_t len, const float **result) {
    *result = range;
    if (!ar->procs) return CLPAR_OK;
    int P = world_group_size(ar->procs);
    size_t starts[CLPAR_MAX_PROCS + 1];
    for (int j = 0; j <= P; j++) {
        size_t b = ar->bounds ? ar->bounds[first_member(ar, j)] : off + len * (size_t)j / (size_t)P;
        starts[j] = b < off ? 0 : b > off + len ? len : b - off;
    }
    starts[0] = 0, starts[P] = len;
    clpar_status st = CLPAR_OK;
    if (rank == 0 && ar->shared)
        st = world_group_sum_shared(ar->procs, off, starts, !ar->bounds);
    else if (rank == 0 && !ar->bounds)
        st = world_group_sum(ar->procs, range, len);
    else if (rank == 0)
        st = world_group_sum_parts(ar->procs, range, starts, 0);
    if (st != CLPAR_OK) return st;        /* the others then stop at the abort this rank causes */
    return clpar_barrier_wait(&ar->meet); /* shared: the sum is in place, in `range` */
}

static void release_pairs(rank_state *rs) {
    for (int i = 0; i < rs->npairs; i++) {
        if (rs->pairs[i].read) clReleaseEvent(rs->pairs[i].read);
        if (rs->pairs[i].write) clReleaseEvent(rs->pairs[i].write);
    }
    rs->npairs = 0;
}

void clpar_allreduce_reset(clpar_allreduce *ar) {
    for (int r = 0; r < ar->n; r++) {
        rank_state *rs = &ar->ranks[r];
        for (int i = 0; i < rs->npending; i++) {
            clWaitForEvents(1, &rs->pending[i].read);
            clReleaseEvent(rs->pending[i].read);
            if (rs->pending[i].mapped) {
                clEnqueueUnmapMemObject(rs->dev->transfer, ar->in_place, rs->pending[i].mapped, 0,
                                        NULL, NULL);
                clFinish(rs->dev->transfer);
            }
        }
        rs->npending = 0;
    }
}

void clpar_allreduce_free(clpar_allreduce *ar) {
    if (!ar) return;
    if (ar->ranks) clpar_allreduce_reset(ar);
    for (int r = 0; ar->ranks && r < ar->n; r++) {
        rank_state *rs = &ar->ranks[r];
        if (rs->dev) clFinish(rs->dev->transfer);
        release_pairs(rs);
        free(rs->pairs);
        free(rs->pending);
        clpar_staging_free(&rs->stage);
    }
    free(ar->ranks);
    free(ar->sum);
    world_group_free(ar->procs);
    free(ar->bounds);
    free(ar->first);
    free(ar);
}

clpar_status clpar_allreduce_begin(clpar_allreduce *ar, int rank, cl_mem buf, size_t off,
                                   size_t len, cl_event after) {
    if (rank < 0 || rank >= ar->n || off + len > ar->count)
        return clpar_error(CLPAR_EINVAL, "allreduce range [%zu, %zu) of rank %d out of bounds", off,
                           off + len, rank);
    rank_state *rs = &ar->ranks[rank];
    for (int i = 0; i < rs->npending; i++)
        if (rs->pending[i].off < off + len && off < rs->pending[i].off + rs->pending[i].len)
            return clpar_error(CLPAR_EINVAL, "allreduce: rank %d began overlapping ranges", rank);
    if (rs->npending == rs->pcap) {
        int cap = rs->pcap ? 2 * rs->pcap : 16;
        pending_read *p = realloc(rs->pending, (size_t)cap * sizeof *p);
        if (!p) return clpar_error(CLPAR_ENOMEM, "out of host memory");
        rs->pending = p;
        rs->pcap = cap;
    }
    pending_read *pr = &rs->pending[rs->npending];
    pr->off = off;
    pr->len = len;
    pr->mapped = NULL;
    if (buf && buf == ar->in_place) {
        /* nothing to copy: the range is mapped where the other processes read it (on the
         * transfer queue, so that the compute queue goes on with the rest of backward).
         * OpenCL leaves a buffer's use by kernels while a range of it is mapped for writing
         * undefined; the mesh keeps buffers in place only on CPU devices, which compute in
         * that host memory itself, and the kernels that run meanwhile touch other ranges. */
        cl_int err;
        pr->mapped = clEnqueueMapBuffer(
            rs->dev->transfer, buf, CL_FALSE, CL_MAP_READ | CL_MAP_WRITE, off * sizeof(float),
            len * sizeof(float), after ? 1 : 0, after ? &after : NULL, &pr->read, &err);
        CL_CHECK(err, "clEnqueueMapBuffer(allreduce in place)");
        rs->npending++; /* from here on, reset unmaps it */
        if (pr->mapped != (void *)(ar->shared + off))
            return clpar_error(CLPAR_EINVAL,
                               "allreduce: the buffer was mapped away from its memory");
        CL_CHECK(clFlush(rs->dev->transfer), "clFlush(transfer)");
        return CLPAR_OK;
    }
    TRY(clpar_host_read(rs->dev, reads_into(ar, rs) + off, buf, off, len, after, &pr->read));
    rs->npending++;
    return CLPAR_OK;
}

static clpar_status push_pair(rank_state *rs, cl_event read, cl_event write) {
    if (rs->npairs == rs->cap) {
        int cap = rs->cap ? 2 * rs->cap : 16;
        copy_pair *p = realloc(rs->pairs, (size_t)cap * sizeof *p);
        if (!p) return clpar_error(CLPAR_ENOMEM, "out of host memory");
        rs->pairs = p;
        rs->cap = cap;
    }
    rs->pairs[rs->npairs++] = (copy_pair){read, write};
    return CLPAR_OK;
}

/* The end of a range's reduction, its pending entry already removed: the pair of its read
 * (or map) and its write (or unmap; NULL for none) kept for the overlap statistics (record)
 * or released, and *write_out (may be NULL) given a reference to the write. Takes over the
 * caller's references to both; with st failed (or failing to keep them) releases them. */
static clpar_status settle(rank_state *rs, clpar_status st, cl_event read, cl_event write,
                           cl_event *write_out, int record) {
    if (st == CLPAR_OK && record) st = push_pair(rs, read, write);
    if (st != CLPAR_OK || !record) { /* no pair kept: the caller gets the write's reference */
        if (read) clReleaseEvent(read);
        if (st == CLPAR_OK && write_out) {
            *write_out = write;
            return CLPAR_OK;
        }
        if (write) clReleaseEvent(write);
        return st;
    }
    if (write_out) {
        if (write) clRetainEvent(write);
        *write_out = write;
    }
    return CLPAR_OK;
}

/* Reduces a begun range of the in-place buffer: the processes sum it where it lies, then it
 * is unmapped, and the compute queue waits for that. */
static clpar_status reduce_in_place(clpar_allreduce *ar, rank_state *rs, int slot,
                                    cl_event *write_out, int record) {
    pending_read *pr = &rs->pending[slot];
    const float *sum; /* in place: the mapped range itself */
    clpar_status st = sum_processes(ar, 0, pr->mapped, pr->off, pr->len, &sum);
    ar->floats_in_place += pr->len;
    cl_event write = NULL;
    cl_int err =
        clEnqueueUnmapMemObject(rs->dev->transfer, ar->in_place, pr->mapped, 0, NULL, &write);
    cl_event read = pr->read;
    rs->pending[slot] = rs->pending[--rs->npending]; /* unmapped, or past mending */
    if (err == CL_SUCCESS) err = clFlush(rs->dev->transfer);
    if (st == CLPAR_OK && err != CL_SUCCESS)
        st = clpar_cl_error(err, "clEnqueueUnmapMemObject(allreduce in place)");
    if (st == CLPAR_OK) st = clpar_device_wait_events(rs->dev, 1, &write);
    return settle(rs, st, read, write, write_out, record);
}

/* Reduces a begun range; *write receives the write's event (retained for the caller). */
static clpar_status reduce(clpar_allreduce *ar, int rank, cl_mem buf, size_t off, size_t len,
                           cl_event *write_out, int record) {
    rank_state *rs = &ar->ranks[rank];
    int slot = -1;
    for (int i = 0; i < rs->npending; i++)
        if (rs->pending[i].off == off && rs->pending[i].len == len) slot = i;
    if (slot < 0)
        return clpar_error(CLPAR_EINVAL, "allreduce: rank %d has not begun range [%zu, %zu)", rank,
                           off, off + len);
    /* waiting on the rank's own thread also lets drivers that execute commands in the
     * waiting thread run this device's work */
    CL_CHECK(clpar_wait_event(rs->dev, rs->pending[slot].read), "clWaitForEvents(allreduce read)");
    if (rs->pending[slot].mapped) return reduce_in_place(ar, rs, slot, write_out, record);
    /* this process's contribution: its only rank's copy as read, or the sum of its ranks' */
    float *mine = ar->n > 1 ? (ar->shared ? ar->shared : ar->sum) : reads_into(ar, rs);
    if (ar->n > 1) {
        TRY(clpar_barrier_wait(&ar->meet));
        sum_ranks(ar, rank, mine, off, len);
        TRY(clpar_barrier_wait(&ar->meet));
    }
    const float *total;
    TRY(sum_processes(ar, rank, mine + off, off, len, &total));
    size_t lo, hi; /* what this rank keeps of the sum: all of it, or its ZeRO slice */
    slice_of(ar, rank, off, len, &lo, &hi);
    cl_event read = rs->pending[slot].read, write = NULL;
    if (hi > lo) /* else nothing of this range is this rank's */
        TRY(clpar_staging_write(rs->dev, buf, lo, total + (lo - off), hi - lo, 0, NULL, &write));
    rs->pending[slot] = rs->pending[--rs->npending];
    clpar_status st = write ? clpar_device_wait_events(rs->dev, 1, &write) : CLPAR_OK;
    return settle(rs, st, read, write, write_out, record);
}

clpar_status clpar_allreduce_bucket(clpar_allreduce *ar, int rank, cl_mem buf, size_t off,
                                    size_t len) {
    return reduce(ar, rank, buf, off, len, NULL, 1);
}

clpar_status clpar_allreduce_run(clpar_allreduce *ar, int rank, cl_mem buf, size_t len,
                                 cl_event after) {
    TRY(clpar_allreduce_begin(ar, rank, buf, 0, len, after));
    cl_event write;
    TRY(reduce(ar, rank, buf, 0, len, &write, 0));
    cl_int err = clpar_wait_event(ar->ranks[rank].dev, write);
    clReleaseEvent(write);
    CL_CHECK(err, "clWaitForEvents(allreduce write)");
    /* the staging is reused by the next call: nobody may sum before all have written */
    return clpar_barrier_wait(&ar->meet);
}

clpar_status clpar_allreduce_run_at(clpar_allreduce *ar, int rank, cl_mem buf, size_t off,
                                    size_t len, cl_event after) {
    if (rank < 0 || rank >= ar->n || len > ar->count)
        return clpar_error(CLPAR_EINVAL, "allreduce of %zu floats exceeds its %zu", len, ar->count);
    rank_state *rs = &ar->ranks[rank];
    cl_event read, write;
    TRY(clpar_staging_read(&rs->stage, 0, buf, off, len, after, &read));
    cl_int err = clpar_wait_event(rs->dev, read);
    clReleaseEvent(read);
    CL_CHECK(err, "clWaitForEvents(allreduce read)");
    TRY(clpar_barrier_wait(&ar->meet));
    float *mine = ar->shared ? ar->shared : ar->sum;
    sum_ranks(ar, rank, mine, 0, len);
    TRY(clpar_barrier_wait(&ar->meet));
    const float *total;
    TRY(sum_processes(ar, rank, mine, 0, len, &total));
    TRY(clpar_staging_write(rs->dev, buf, off, total, len, 0, NULL, &write));
    clpar_status st = clpar_device_wait_events(rs->dev, 1, &write);
    err = clpar_wait_event(rs->dev, write);
    clReleaseEvent(write);
    TRY(st);
    CL_CHECK(err, "clWaitForEvents(allreduce write)");
    return clpar_barrier_wait(&ar->meet);
}

/* ZeRO's all-gather through the group's second shared regions (one member per process):
 * this process's slice goes into its region (a read, or nothing where buf lives there), and
 * the others' slices come from theirs (writes, or copies into buf mapped). */
static clpar_status gather_shared(clpar_allreduce *ar, cl_mem buf, cl_event after) {
    rank_state *rs = &ar->ranks[0];
    world_group *g = ar->procs;
    int P = world_group_size(g), me = world_group_rank(g);
    size_t starts[CLPAR_MAX_PROCS + 1];
    for (int j = 0; j <= P; j++)
        starts[j] = ar->bounds[first_member(ar, j)];
    float *mine = world_group_shared_extra(g, me);
    void *mapped = NULL;
    cl_int err = CL_SUCCESS;
    if (buf == ar->params_in_place) { /* its slice already lies where the others read it */
        mapped = clEnqueueMapBuffer(rs->dev->transfer, buf, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0,
                                    starts[P] * sizeof(float), after ? 1 : 0, after ? &after : NULL,
                                    NULL, &err);
        CL_CHECK(err, "clEnqueueMapBuffer(slices in place)");
        if (mapped != (void *)mine) {
            clEnqueueUnmapMemObject(rs->dev->transfer, buf, mapped, 0, NULL, NULL);
            clFinish(rs->dev->transfer);
            return clpar_error(CLPAR_EINVAL, "allreduce: the slices were mapped away from memory");
        }
    } else if (starts[me + 1] > starts[me]) {
        TRY(clpar_host_read(rs->dev, mine + starts[me], buf, starts[me],
                            starts[me + 1] - starts[me], after, NULL));
    }
    clpar_status st = world_group_gather_shared(g, starts);
    cl_event writes[CLPAR_MAX_PROCS];
    int nw = 0;
    for (int j = 0; j < P && st == CLPAR_OK; j++) {
        size_t a = starts[j], n = starts[j + 1] - a;
        const float *from = world_group_shared_extra(g, j) + a;
        if (j == me || n == 0) continue;
        if (mapped)
            memcpy((float *)mapped + a, from, n * sizeof(float));
        else if ((st = clpar_staging_write(rs->dev, buf, a, from, n, 0, NULL, &writes[nw])) ==
                 CLPAR_OK)
            nw++;
    }
    if (mapped) {
        err = clEnqueueUnmapMemObject(rs->dev->transfer, buf, mapped, 0, NULL, &writes[nw]);
        if (err == CL_SUCCESS) nw++;
        if (err == CL_SUCCESS) err = clFlush(rs->dev->transfer);
        if (st == CLPAR_OK && err != CL_SUCCESS)
            st = clpar_cl_error(err, "clEnqueueUnmapMemObject(slices in place)");
    }
    if (st == CLPAR_OK && nw) st = clpar_device_wait_events(rs->dev, (cl_uint)nw, writes);
    for (int i = 0; i < nw; i++) { /* the others' regions are theirs again once read */
        err = clpar_wait_event(rs->dev, writes[i]);
        if (st == CLPAR_OK && err != CL_SUCCESS)
            st = clpar_cl_error(err, "clWaitForEvents(slices write)");
        clReleaseEvent(writes[i]);
    }
    return st;
}

clpar_status clpar_allreduce_gather_slices(clpar_allreduce *ar, int rank, cl_mem buf,
                                           cl_event after) {
    if (!ar->bounds) return clpar_error(CLPAR_EINVAL, "allreduce: no slices to gather");
    if (gathers_shared(ar)) return gather_shared(ar, buf, after);
    rank_state *rs = &ar->ranks[rank];
    size_t lo, hi;
    slice_of(ar, rank, 0, ar->count, &lo, &hi);
    if (hi > lo) {
        cl_event read;
        TRY(clpar_staging_read(&rs->stage, lo, buf, lo, hi - lo, after, &read));
        cl_int err = clpar_wait_event(rs->dev, read);
        clReleaseEvent(read);
        CL_CHECK(err, "clWaitForEvents(slice read)");
        memcpy(ar->sum + lo, rs->stage.host + lo, (hi - lo) * sizeof(float)); /* disjoint */
    }
    TRY(clpar_barrier_wait(&ar->meet));
    if (ar->procs) {
        int P = world_group_size(ar->procs);
        size_t starts[CLPAR_MAX_PROCS + 1];
        for (int j = 0; j <= P; j++)
            starts[j] = ar->bounds[first_member(ar, j)];
        clpar_status st =
            rank == 0 ? world_group_gather_parts(ar->procs, ar->sum, starts) : CLPAR_OK;
        TRY(st);
        TRY(clpar_barrier_wait(&ar->meet));
    }
    cl_event write;
    size_t total = ar->bounds[first_member(ar, world_group_size(ar->procs))];
    TRY(clpar_staging_write(rs->dev, buf, 0, ar->sum, total, 0, NULL, &write));
    clpar_status st = clpar_device_wait_events(rs->dev, 1, &write);
    cl_int err = clpar_wait_event(rs->dev, write);
    clReleaseEvent(write);
    TRY(st);
    CL_CHECK(err, "clWaitForEvents(slices write)");
    return clpar_barrier_wait(&ar->meet); /* the sum is rewritten by the next reduction */
}

uint64_t clpar_allreduce_bytes_sent(const clpar_allreduce *ar) {
    return world_group_bytes_sent(ar->procs);
}

uint64_t allreduce_floats_in_place(const clpar_allreduce *ar) {
    return ar->floats_in_place;
}

uint64_t allreduce_bytes_shared(const clpar_allreduce *ar) {
    return world_group_bytes_shared(ar->procs);
}

clpar_status clpar_allreduce_collect(clpar_allreduce *ar, const cl_ulong *compute_end,
                                     double *window_ns, double *exposed_ns) {
    double window = 0, exposed = 0;
    for (int r = 0; r < ar->n; r++) {
        rank_state *rs = &ar->ranks[r];
        for (int i = 0; i < rs->npairs; i++) {
            cl_ulong start = 0, end = 0;
            CL_CHECK(clGetEventProfilingInfo(rs->pairs[i].read, CL_PROFILING_COMMAND_START,
                                             sizeof start, &start, NULL),
                     "clGetEventProfilingInfo");
            cl_event last = rs->pairs[i].write ? rs->pairs[i].write : rs->pairs[i].read;
            CL_CHECK(
                clGetEventProfilingInfo(last, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL),
                "clGetEventProfilingInfo");
            if (end < start) continue;
            window += (double)(end - start);
            cl_ulong ce = compute_end ? compute_end[r] : 0;
            if (end > ce) exposed += (double)(end - (start > ce ? start : ce));
        }
        release_pairs(rs);
    }
    if (window_ns) *window_ns = window;
    if (exposed_ns) *exposed_ns = exposed;
    return CLPAR_OK;
}
