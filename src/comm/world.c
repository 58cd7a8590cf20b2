/* The run's processes: MPI when built with it and started by a launcher, else one process.
 * Everything that crosses a process boundary goes through here. */
#include "world.h"
#include "sum.h"
#include "world_internal.h"

#include "clpar/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef CLPAR_HAVE_MPI
#include <mpi.h>
#endif

#define HOST_LEN 64

struct clpar_world {
    int rank, size;
    int mpi; /* this world called MPI_Init_thread */
    char (*hosts)[HOST_LEN];
};

int clpar_world_has_mpi(void) {
#ifdef CLPAR_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

/* The number of processes a launcher started, from its environment (1: none). */
static long launched_size(void) {
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i])) return atol(getenv(vars[i]));
    return 1;
}

#ifdef CLPAR_HAVE_MPI
clpar_status mpi_check(int rc, const char *what) {
    if (rc == MPI_SUCCESS) return CLPAR_OK;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "code %d", rc);
    return clpar_error(CLPAR_EPROCESS, "%s failed: %s", what, text);
}
static int launched_by_mpi(void) {
    return launched_size() > 1 || getenv("PMIX_RANK") || getenv("PMI_RANK");
}
#endif

clpar_status clpar_world_init(clpar_world **out) {
    *out = NULL;
    clpar_world *w = calloc(1, sizeof *w);
    if (!w) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    w->size = 1;
#ifndef CLPAR_HAVE_MPI
    if (launched_size() > 1) { /* each process would train alone, on the whole batch */
        free(w);
        return clpar_error(CLPAR_EPROCESS,
                           "started as one of %ld processes, but this clpar was built without MPI "
                           "(install libopenmpi-dev or libmpich-dev and build again)",
                           launched_size());
    }
#else
    int inited = 0;
    if (launched_by_mpi() && MPI_Initialized(&inited) == MPI_SUCCESS && !inited) {
        int provided = 0;
        clpar_status st = mpi_check(MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided),
                                    "MPI_Init_thread");
        if (st != CLPAR_OK) {
            free(w);
            return st;
        }
        w->mpi = 1;
        /* errors come back as codes, so that a failing call is reported, not fatal */
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        if (provided < MPI_THREAD_MULTIPLE) {
            clpar_world_free(w);
            return clpar_error(
                CLPAR_EPROCESS,
                "this MPI library does not support MPI_THREAD_MULTIPLE (every rank's "
                "thread reduces on its own)");
        }
        MPI_Comm_rank(MPI_COMM_WORLD, &w->rank);
        MPI_Comm_size(MPI_COMM_WORLD, &w->size);
    }
#endif
    w->hosts = calloc((size_t)w->size, sizeof *w->hosts);
    if (!w->hosts) {
        clpar_world_free(w);
        return clpar_error(CLPAR_ENOMEM, "out of host memory");
    }
    char me[HOST_LEN] = "?";
    if (gethostname(me, sizeof me - 1) != 0) strcpy(me, "?");
    memcpy(w->hosts[w->rank], me, HOST_LEN);
#ifdef CLPAR_HAVE_MPI
    if (w->size > 1) {
        clpar_status st = mpi_check(
            MPI_Allgather(me, HOST_LEN, MPI_CHAR, w->hosts, HOST_LEN, MPI_CHAR, MPI_COMM_WORLD),
            "MPI_Allgather(host names)");
        if (st != CLPAR_OK) {
            clpar_world_free(w);
            return st;
        }
    }
#endif
    *out = w;
    return CLPAR_OK;
}

void clpar_world_free(clpar_world *w) {
    if (!w) return;
#ifdef CLPAR_HAVE_MPI
    if (w->mpi) MPI_Finalize();
#endif
    free(w->hosts);
    free(w);
}

int clpar_world_rank(const clpar_world *w) {
    return w ? w->rank : 0;
}

int clpar_world_size(const clpar_world *w) {
    return w ? w->size : 1;
}

const char *clpar_world_host(const clpar_world *w, int proc) {
    if (!w || proc < 0 || proc >= w->size) return "?";
    return w->hosts[proc];
}

clpar_status clpar_world_agree(clpar_world *w, clpar_status st, const char *message) {
    if (!w || w->size == 1) return st;
#ifdef CLPAR_HAVE_MPI
    /* the lowest failing process: each offers its number when failed, else size */
    int mine = st != CLPAR_OK ? w->rank : w->size, first = w->size;
    MPI_TRY(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD),
            "MPI_Allreduce(status)");
    if (first == w->size) return CLPAR_OK;
    struct {
        int code;
        char text[1000];
    } what = {st, ""};
    if (first == w->rank)
        snprintf(what.text, sizeof what.text, "%s", message ? message : clpar_last_error());
    MPI_TRY(MPI_Bcast(&what, (int)sizeof what, MPI_BYTE, first, MPI_COMM_WORLD),
            "MPI_Bcast(status)");
    if (first == w->rank) return st;
    return clpar_error(what.code, "process %d (%s): %s", first, w->hosts[first], what.text);
#else
    return st;
#endif
}

clpar_status clpar_world_allgather(clpar_world *w, const void *mine, size_t bytes, void *all) {
    if (!w || w->size == 1) {
        memmove(all, mine, bytes);
        return CLPAR_OK;
    }
#ifdef CLPAR_HAVE_MPI
    if (bytes > (size_t)1 << 30)
        return clpar_error(CLPAR_EINVAL, "an all-gather of %zu bytes exceeds 2^30", bytes);
    MPI_TRY(MPI_Allgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD),
            "MPI_Allgather");
#endif
    return CLPAR_OK;
}

clpar_status clpar_world_bcast(clpar_world *w, int root, void *buf, size_t bytes) {
    if (!w || w->size == 1) return CLPAR_OK;
#ifdef CLPAR_HAVE_MPI
    if (bytes > (size_t)1 << 30)
        return clpar_error(CLPAR_EINVAL, "a broadcast of %zu bytes exceeds 2^30", bytes);
    MPI_TRY(MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
#endif
    return CLPAR_OK;
}

clpar_status clpar_world_sum_double(clpar_world *w, double *value) {
    if (!w || w->size == 1) return CLPAR_OK;
#ifdef CLPAR_HAVE_MPI
    double *all = malloc((size_t)w->size * sizeof *all);
    if (!all) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    clpar_status st = mpi_check(
        MPI_Allgather(value, 1, MPI_DOUBLE, all, 1, MPI_DOUBLE, MPI_COMM_WORLD), "MPI_Allgather");
    if (st == CLPAR_OK) {
        double sum = 0;
        for (int i = 0; i < w->size; i++)
            sum += all[i];
        *value = sum;
    }
    free(all);
    return st;
#else
    return CLPAR_OK;
#endif
}

clpar_status clpar_world_min_u64(clpar_world *w, uint64_t *value) {
    if (!w || w->size == 1) return CLPAR_OK;
#ifdef CLPAR_HAVE_MPI
    unsigned long long mine = *value, least = mine;
    MPI_TRY(MPI_Allreduce(&mine, &least, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, MPI_COMM_WORLD),
            "MPI_Allreduce(min)");
    *value = least;
#endif
    return CLPAR_OK;
}

clpar_status clpar_world_ping_pong(clpar_world *w, size_t bytes, int iters, double *seconds) {
    *seconds = 0;
    if (!w || w->size == 1) return CLPAR_OK;
#ifdef CLPAR_HAVE_MPI
    if (bytes > (size_t)1 << 30 || iters < 1)
        return clpar_error(CLPAR_EINVAL, "ping-pong of %zu bytes, %d times", bytes, iters);
    char *buf = calloc(bytes ? bytes : 1, 1);
    if (!buf) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    double best = INFINITY;
    clpar_status st = mpi_check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
    for (int i = 0; i < iters && st == CLPAR_OK && w->rank < 2; i++) {
        double t0 = MPI_Wtime();
        int peer = 1 - w->rank, n = (int)bytes;
        if (w->rank == 0) {
            st = mpi_check(MPI_Send(buf, n, MPI_BYTE, peer, 7, MPI_COMM_WORLD), "MPI_Send");
            if (st == CLPAR_OK)
                st = mpi_check(
                    MPI_Recv(buf, n, MPI_BYTE, peer, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
                    "MPI_Recv");
        } else {
            st = mpi_check(MPI_Recv(buf, n, MPI_BYTE, peer, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
                           "MPI_Recv");
            if (st == CLPAR_OK)
                st = mpi_check(MPI_Send(buf, n, MPI_BYTE, peer, 7, MPI_COMM_WORLD), "MPI_Send");
        }
        double t = (MPI_Wtime() - t0) / 2;
        if (t < best) best = t;
    }
    free(buf);
    TRY(st);
    MPI_TRY(MPI_Bcast(&best, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD), "MPI_Bcast(ping-pong)");
    *seconds = best;
#endif
    return CLPAR_OK;
}

/* ---- groups ---- */

uint64_t world_group_bytes_sent(const world_group *g) {
    return g ? g->sent : 0;
}

uint64_t world_group_bytes_shared(const world_group *g) {
#ifdef CLPAR_HAVE_MPI
    return g ? g->shared : 0;
#else
    (void)g;
    return 0;
#endif
}

clpar_status world_group_init(clpar_world *w, world_group **out) {
    return world_group_split(w, 1, out);
}

clpar_status world_group_split(clpar_world *w, int member, world_group **out) {
    *out = NULL;
    if (!w || w->size == 1) return CLPAR_OK;
#ifdef CLPAR_HAVE_MPI
    MPI_Comm comm = MPI_COMM_NULL;
    MPI_TRY(MPI_Comm_split(MPI_COMM_WORLD, member ? 0 : MPI_UNDEFINED, w->rank, &comm),
            "MPI_Comm_split");
    if (comm == MPI_COMM_NULL) return CLPAR_OK;
    int size = 1, rank = 0;
    MPI_Comm_size(comm, &size);
    MPI_Comm_rank(comm, &rank);
    if (size == 1) {
        MPI_Comm_free(&comm);
        return CLPAR_OK;
    }
    world_group *g = calloc(1, sizeof *g);
    if (g) g->counts = calloc((size_t)size, sizeof *g->counts);
    if (g) g->displs = calloc((size_t)size, sizeof *g->displs);
    if (!g || !g->counts || !g->displs) {
        MPI_Comm_free(&comm);
        if (g) g->comm = MPI_COMM_NULL;
        world_group_free(g);
        return clpar_error(CLPAR_ENOMEM, "out of host memory");
    }
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    g->comm = comm;
    g->rank = rank;
    g->size = size;
    *out = g;
#endif
    return CLPAR_OK;
}

void world_group_free(world_group *g) {
    if (!g) return;
#ifdef CLPAR_HAVE_MPI
    world_shm_free(g->shm);
    if (g->comm != MPI_COMM_NULL) MPI_Comm_free(&g->comm);
#endif
    free(g->part);
    free(g->counts);
    free(g->displs);
    free(g);
}

int world_group_rank(const world_group *g) {
    return g ? g->rank : 0;
}

int world_group_size(const world_group *g) {
    return g ? g->size : 1;
}

#ifdef CLPAR_HAVE_MPI
/* counts and displacements of the parts, as MPI's int */
static clpar_status part_layout(world_group *g, const size_t *starts) {
    if (starts[g->size] > (size_t)1 << 30)
        return clpar_error(CLPAR_EINVAL, "a collective across processes of %zu floats exceeds 2^30",
                           starts[g->size]);
    for (int j = 0; j < g->size; j++) {
        g->counts[j] = (int)(starts[j + 1] - starts[j]);
        g->displs[j] = (int)starts[j];
    }
    return CLPAR_OK;
}
#endif

clpar_status world_group_sum(world_group *g, float *data, size_t len) {
    if (!g || len == 0) return CLPAR_OK;
    size_t starts[CLPAR_MAX_PROCS + 1];
    if (g->size > CLPAR_MAX_PROCS)
        return clpar_error(CLPAR_EINVAL, "more than %d processes", CLPAR_MAX_PROCS);
    for (int j = 0; j <= g->size; j++)
        starts[j] = len * (size_t)j / (size_t)g->size;
#ifdef CLPAR_HAVE_MPI
    if (g->size == 2) { /* the same bytes as a reduce-scatter and all-gather, in one round */
        TRY(part_layout(g, starts));
        if (len > g->cap) {
            float *p = realloc(g->part, len * sizeof *p);
            if (!p) return clpar_error(CLPAR_ENOMEM, "out of host memory");
            g->part = p;
            g->cap = len;
        }
        int other = 1 - g->rank;
        MPI_TRY(MPI_Sendrecv(data, (int)len, MPI_FLOAT, other, 0, g->part, (int)len, MPI_FLOAT,
                             other, 0, g->comm, MPI_STATUS_IGNORE),
                "MPI_Sendrecv(reduction)");
        /* a + b == b + a in IEEE arithmetic: both processes hold the same sum */
        clpar_sum_into(data, g->part, len);
        g->sent += (uint64_t)len * sizeof(float);
        return CLPAR_OK;
    }
#endif
    return world_group_sum_parts(g, data, starts, 1);
}

clpar_status world_group_sum_parts(world_group *g, float *data, const size_t *starts, int gather) {
    if (!g || starts[g->size] == 0) return CLPAR_OK;
#ifdef CLPAR_HAVE_MPI
    int P = g->size;
    TRY(part_layout(g, starts));
    size_t a = starts[g->rank], mine = starts[g->rank + 1] - a;
    if ((size_t)P * mine > g->cap) {
        float *p = realloc(g->part, ((size_t)P * mine + 1) * sizeof *p);
        if (!p) return clpar_error(CLPAR_ENOMEM, "out of host memory");
        g->part = p;
        g->cap = (size_t)P * mine;
    }
    int *rc = malloc(2 * (size_t)P * sizeof *rc);
    if (!rc) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    int *rd = rc + P;
    for (int j = 0; j < P; j++) {
        rc[j] = (int)mine;
        rd[j] = (int)((size_t)j * mine);
    }
    /* every process sends part j of its data to process j ... */
    clpar_status st = mpi_check(
        MPI_Alltoallv(data, g->counts, g->displs, MPI_FLOAT, g->part, rc, rd, MPI_FLOAT, g->comm),
        "MPI_Alltoallv(reduction)");
    free(rc);
    if (st != CLPAR_OK) return st;
    /* ... which sums it over the processes in order ... */
    float *sum = data + a;
    if (mine) memcpy(sum, g->part, mine * sizeof *sum); /* (an empty part: no buffer yet) */
    for (int j = 1; j < P; j++)
        clpar_sum_into(sum, g->part + (size_t)j * mine, mine);
    g->sent += (uint64_t)(starts[P] - mine) * sizeof(float);
    /* ... and, for an all-reduce, every process receives every summed part */
    return gather ? world_group_gather_parts(g, data, starts) : CLPAR_OK;
#else
    return CLPAR_OK;
#endif
}

clpar_status world_group_gather_parts(world_group *g, float *data, const size_t *starts) {
    if (!g || starts[g->size] == 0) return CLPAR_OK;
#ifdef CLPAR_HAVE_MPI
    TRY(part_layout(g, starts));
    size_t mine = starts[g->rank + 1] - starts[g->rank];
    MPI_TRY(
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, data, g->counts, g->displs, MPI_FLOAT, g->comm),
        "MPI_Allgatherv");
    g->sent += (uint64_t)(g->size - 1) * mine * sizeof(float);
#endif
    return CLPAR_OK;
}

clpar_status world_group_allgatherv(world_group *g, const void *mine, size_t bytes, void *all,
                                    size_t *sizes) {
    if (!g) {
        memmove(all, mine, bytes);
        sizes[0] = bytes;
        return CLPAR_OK;
    }
#ifdef CLPAR_HAVE_MPI
    long long my = (long long)bytes, *each = malloc((size_t)g->size * sizeof *each);
    if (!each) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    clpar_status st = mpi_check(
        MPI_Allgather(&my, 1, MPI_LONG_LONG, each, 1, MPI_LONG_LONG, g->comm), "MPI_Allgather");
    size_t at = 0;
    for (int j = 0; j < g->size && st == CLPAR_OK; j++) {
        sizes[j] = (size_t)each[j];
        if (at + sizes[j] > (size_t)1 << 30)
            st = clpar_error(CLPAR_EINVAL, "an all-gather of more than 2^30 bytes");
        g->counts[j] = (int)sizes[j];
        g->displs[j] = (int)at;
        at += sizes[j];
    }
    free(each);
    TRY(st);
    MPI_TRY(
        MPI_Allgatherv(mine, (int)bytes, MPI_BYTE, all, g->counts, g->displs, MPI_BYTE, g->comm),
        "MPI_Allgatherv");
    g->sent += (uint64_t)(g->size - 1) * bytes;
#endif
    return CLPAR_OK;
}

/* ---- point to point ---- */

struct world_p2p {
#ifdef CLPAR_HAVE_MPI
    MPI_Comm comm;
#endif
    long max_tag;
};

struct world_request {
#ifdef CLPAR_HAVE_MPI
    MPI_Request req;
#endif
    int unused;
};

clpar_status world_p2p_init(clpar_world *w, world_p2p **out) {
    *out = NULL;
    if (!w || w->size == 1) return CLPAR_OK;
#ifdef CLPAR_HAVE_MPI
    world_p2p *p = calloc(1, sizeof *p);
    if (!p) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    clpar_status st = mpi_check(MPI_Comm_dup(MPI_COMM_WORLD, &p->comm), "MPI_Comm_dup");
    if (st != CLPAR_OK) {
        free(p);
        return st;
    }
    MPI_Comm_set_errhandler(p->comm, MPI_ERRORS_RETURN);
    int *ub = NULL, flag = 0;
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &ub, &flag);
    p->max_tag = flag && ub ? *ub : 32767;
    *out = p;
#endif
    return CLPAR_OK;
}

void world_p2p_free(world_p2p *p) {
    if (!p) return;
#ifdef CLPAR_HAVE_MPI
    MPI_Comm_free(&p->comm);
#endif
    free(p);
}

long world_p2p_max_tag(const world_p2p *p) {
    return p ? p->max_tag : 0;
}

clpar_status world_p2p_isend(world_p2p *p, int peer, long tag, const void *buf, size_t bytes,
                             world_request **req) {
    *req = NULL;
#ifdef CLPAR_HAVE_MPI
    if (bytes > (size_t)1 << 30 || tag > p->max_tag)
        return clpar_error(CLPAR_EINVAL, "a message of %zu bytes with tag %ld", bytes, tag);
    world_request *r = calloc(1, sizeof *r);
    if (!r) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    clpar_status st = mpi_check(
        MPI_Isend(buf, (int)bytes, MPI_BYTE, peer, (int)tag, p->comm, &r->req), "MPI_Isend");
    if (st != CLPAR_OK) {
        free(r);
        return st;
    }
    *req = r;
    return CLPAR_OK;
#else
    return clpar_error(CLPAR_EPROCESS, "no MPI in this build");
#endif
}

clpar_status world_request_wait(world_request *req) {
    if (!req) return CLPAR_OK;
    clpar_status st = CLPAR_OK;
#ifdef CLPAR_HAVE_MPI
    st = mpi_check(MPI_Wait(&req->req, MPI_STATUS_IGNORE), "MPI_Wait(send)");
#endif
    free(req);
    return st;
}

clpar_status world_p2p_recv(world_p2p *p, int peer, long tag, void *buf, size_t bytes) {
#ifdef CLPAR_HAVE_MPI
    if (bytes > (size_t)1 << 30 || tag > p->max_tag)
        return clpar_error(CLPAR_EINVAL, "a message of %zu bytes with tag %ld", bytes, tag);
    MPI_Status status;
    MPI_TRY(MPI_Recv(buf, (int)bytes, MPI_BYTE, peer, (int)tag, p->comm, &status), "MPI_Recv");
    int got = 0;
    MPI_Get_count(&status, MPI_BYTE, &got);
    if ((size_t)got != bytes)
        return clpar_error(CLPAR_EPROCESS, "process %d sent %d bytes, expected %zu", peer, got,
                           bytes);
    return CLPAR_OK;
#else
    return clpar_error(CLPAR_EPROCESS, "no MPI in this build");
#endif
}
