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
/* A communicator of the processes that pass member = 1, in process order (collective: every
 * process calls it, in the same order). NULL in *out for the others, and when only one
 * process is a member. */
clpar_status world_group_split(clpar_world *w, int member, world_group **out);

/* Point-to-point messages between two processes, on a communicator of their own; a tag names
 * a channel's message. */
typedef struct world_p2p world_p2p;
typedef struct world_request world_request;
clpar_status world_p2p_init(clpar_world *w, world_p2p **out); /* collective */
void world_p2p_free(world_p2p *p);
/* The largest tag the MPI library allows. */
long world_p2p_max_tag(const world_p2p *p);
/* Starts sending bytes at buf to process peer; *req completes it (world_request_wait). */
clpar_status world_p2p_isend(world_p2p *p, int peer, long tag, const void *buf, size_t bytes,
                             world_request **req);
/* Waits for a started send and frees it (NULL: nothing). */
clpar_status world_request_wait(world_request *req);
/* Receives exactly bytes from process peer into buf. */
clpar_status world_p2p_recv(world_p2p *p, int peer, long tag, void *buf, size_t bytes);
void world_group_free(world_group *g);
/* Replaces data[0, len) on every process by its sum over the processes: process j sums part
 * j (data split in P near-equal parts) over the processes in order, then every process
 * receives every summed part. */
clpar_status world_group_sum(world_group *g, float *data, size_t len);
/* The same with process j's part data[starts[j], starts[j + 1]) (starts: size + 1 offsets,
 * rising, from 0 to the length); with gather 0 each process keeps only its own part summed
 * (a reduce-scatter). */
clpar_status world_group_sum_parts(world_group *g, float *data, const size_t *starts, int gather);
/* Joins the group's processes in shared memory when they all run on one host (collective
 * over the group's processes): each gets a buffer of count floats, page-aligned, that the
 * others read and write in place, and with regions 2 a second one (world_group_shared_extra).
 * Otherwise, or when the memory cannot be had, the group keeps to messages; either way
 * CLPAR_OK unless MPI fails. */
clpar_status world_group_share(world_group *g, size_t count, int regions);
/* Process j's second shared buffer (count floats, page-aligned), or NULL without one. */
float *world_group_shared_extra(const world_group *g, int j);
/* An all-gather through the second buffers: once every process has put its part
 * [starts[j], starts[j + 1]) into its own (at those offsets), this returns in all of them
 * (collective), and each copies the others' parts from theirs. Counted as the messages. */
clpar_status world_group_gather_shared(world_group *g, const size_t *starts);
/* This process's shared buffer (count floats, its contribution to world_group_sum_shared), or
 * NULL when the group does not share memory. */
float *world_group_shared(const world_group *g);
/* Sums [off, off + starts[P]) of every process's shared buffer over the processes, in order
 * (the order of the messages: the results are bit-identical either way), in place: process j
 * sums part [off + starts[j], off + starts[j + 1]) and writes it into every buffer (gather, an
 * all-reduce), or into its own only (a reduce-scatter). Collective; on return every buffer
 * holds the sums it was to receive. */
clpar_status world_group_sum_shared(world_group *g, size_t off, const size_t *starts, int gather);
/* Every process's part data[starts[j], starts[j + 1]) to every process (an all-gather). */
clpar_status world_group_gather_parts(world_group *g, float *data, const size_t *starts);
/* This process's number in the group and the group's size (0 and 1 for NULL). */
int world_group_rank(const world_group *g);
int world_group_size(const world_group *g);
/* Bytes this process has sent through the group, and of them through shared memory. */
uint64_t world_group_bytes_sent(const world_group *g);
uint64_t world_group_bytes_shared(const world_group *g);

/* One end of a channel whose other end is in process peer: the sending end (sending = 1) or
 * the receiving one on local, with the same semantics (sends go out with MPI_Isend once read;
 * a receive waits for the message). id numbers the channel among all of the run's, the same
 * in both processes; p2p is the communication level's point-to-point context. */
/* Every process's `bytes` bytes (which may differ) at mine, into all, in process order;
 * sizes (room for size() entries) receives each process's count. all has room for the sum. */
clpar_status world_group_allgatherv(world_group *g, const void *mine, size_t bytes, void *all,
                                    size_t *sizes);
/* The all-gather of column slices with the group's processes already joined (procs taken). */
clpar_status allgather_init_group(clpar_device *const *devs, int n, size_t count, clpar_sync *sync,
                                  world_group *procs, clpar_allgather **out);

/* clpar_allreduce_init_world with the group's processes already joined (procs from
 * world_group_split, or NULL): no collective, so a local failure here cannot leave other
 * processes waiting. Takes procs (freed on failure too). */
clpar_status allreduce_init_group(clpar_device *const *devs, int n, size_t count, clpar_sync *sync,
                                  world_group *procs, clpar_allreduce **out);

/* Of clpar_allreduce_bytes_sent, what went through shared memory. */
uint64_t allreduce_bytes_shared(const clpar_allreduce *ar);

/* The members each of the group's processes holds, when they differ: process j holds members
 * first[j] .. first[j + 1] - 1 (first: the group's size + 1 entries). Before set_slices. */
clpar_status allreduce_set_owners(clpar_allreduce *ar, const int *first);
/* Where the group's only local rank may keep the buffer it reduces so that the processes sum
 * it in place, without copies (world_group_sum_shared): this process's shared memory, of the
 * group's count floats, page-aligned; NULL where the group has no shared memory, more than
 * one local rank, or slices (ZeRO). Each process decides for itself: the others' copies and
 * this one's mapping meet in the same memory. */
float *allreduce_in_place_memory(const clpar_allreduce *ar);
/* Tells the group that buf (a buffer over allreduce_in_place_memory, not owned; it must
 * outlive the group's reductions) is reduced in place: begin maps its range instead of
 * reading it, the reduction sums it there and unmaps it. Other buffers go as before. */
clpar_status allreduce_set_in_place(clpar_allreduce *ar, cl_mem buf);
/* ZeRO, where every process of the group holds one member and the group has a second shared
 * region: this process's part of it, where its rank may keep the buffer whose slices
 * clpar_allreduce_gather_slices gathers (count floats, page-aligned), else NULL. */
float *allreduce_params_memory(const clpar_allreduce *ar);
/* Tells the group that buf lives there: its slice is then gathered without being read, and
 * the others' slices are copied into it mapped. */
clpar_status allreduce_set_params_in_place(clpar_allreduce *ar, cl_mem buf);
/* Floats of that buffer summed in place so far. */
uint64_t allreduce_floats_in_place(const clpar_allreduce *ar);

/* Whether c is one end of a channel between processes. */
int clpar_channel_remote(const clpar_channel *c);
clpar_status clpar_channel_init_remote(clpar_device *local, int sending, int peer, long id,
                                       int slots, size_t count, world_p2p *p2p,
                                       clpar_channel **out);

#endif
