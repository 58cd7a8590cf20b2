/* Internal to the communication level: a group of the world's processes with its own MPI
 * communicator, so that reductions of different rank groups, run from different threads at
 * once, never match each other's messages. */
#ifndef CLPAR_WORLD_H
#define CLPAR_WORLD_H

#include "clpar/comm.h"
#include "../runtime/internal.h"

/* A mesh has at most 256 ranks (CLPAR_MAX_RANKS), and every process holds one at least. */
#define CLPAR_MAX_PROCS 256

typedef struct world_group world_group;

/* A communicator of every process of w (collective: every process calls it in the same
 * order). NULL in *out for a world of one process. */
clpar_status world_group_init(clpar_world *w, world_group **out);
void world_group_free(world_group *g);
/* Replaces data[0, len) on every process by its sum over the processes: process j sums part
 * j (data split in P near-equal parts) over the processes in order, then every process
 * receives every summed part. */
clpar_status world_group_sum(world_group *g, float *data, size_t len);
/* The same with process j's part data[starts[j], starts[j + 1]) (starts: size + 1 offsets,
 * rising, from 0 to the length); with gather 0 each process keeps only its own part summed
 * (a reduce-scatter). */
clpar_status world_group_sum_parts(world_group *g, float *data, const size_t *starts, int gather);
/* Every process's part data[starts[j], starts[j + 1]) to every process (an all-gather). */
clpar_status world_group_gather_parts(world_group *g, float *data, const size_t *starts);
/* This process's number in the group and the group's size (0 and 1 for NULL). */
int world_group_rank(const world_group *g);
int world_group_size(const world_group *g);
/* Bytes this process has sent through the group. */
uint64_t world_group_bytes_sent(const world_group *g);

#endif
