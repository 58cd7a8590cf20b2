/* Internal to world.c and world_shm.c: what a group of processes holds. */
#ifndef CLPAR_WORLD_INTERNAL_H
#define CLPAR_WORLD_INTERNAL_H

#include "world.h"

#ifdef CLPAR_HAVE_MPI
#include <mpi.h>

typedef struct world_shm world_shm;

struct world_group {
    MPI_Comm comm;
    int rank, size;
    float *part; /* P copies of this process's part, then the sum of them */
    size_t cap;
    int *counts, *displs;
    uint64_t sent, shared; /* bytes sent, and of them through shared memory */
    world_shm *shm; /* the group's shared memory when all its processes share a host, or NULL */
};

/* An MPI return code as a status naming the call. */
clpar_status mpi_check(int rc, const char *what);
#define MPI_TRY(call, what)                                                                        \
    do {                                                                                           \
        clpar_status mpi_st_ = mpi_check((call), what);                                            \
        if (mpi_st_ != CLPAR_OK) return mpi_st_;                                                   \
    } while (0)

void world_shm_free(world_shm *s);
#else
struct world_group {
    int rank, size;
    float *part;
    size_t cap;
    int *counts, *displs;
    uint64_t sent;
};
#endif

#endif
