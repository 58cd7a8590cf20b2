/* The communication level: host-coordinated copies between devices that may sit in
 * different OpenCL contexts or platforms, so no event crosses between them; only host
 * memory does. Collectives are called by one host thread per rank. They meet through a
 * clpar_sync, which can be aborted when any rank fails, so that no thread waits forever. */
#ifndef CLPAR_COMM_H
#define CLPAR_COMM_H

#include "clpar/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- processes ---- */

/* The processes of a run. Built with MPI (CLPAR_MPI) and started by an MPI launcher
 * (mpirun, mpiexec, srun), a world is MPI's: ranks of a mesh may then live in several
 * processes on several hosts, and what crosses between processes is the host copy the
 * collectives already make. Otherwise it is one process, and every call below is trivial. */
typedef struct clpar_world clpar_world;

/* Whether this build of clpar has MPI support. */
CLPAR_API int clpar_world_has_mpi(void);
/* Joins the run's processes: MPI_Init_thread asking for MPI_THREAD_MULTIPLE (every rank's
 * thread may reduce at once) when built with MPI and a launcher's environment is present
 * (OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_RANK), else a world of one process. Collects the
 * processes' host names. Once per program; the caller owns *out (clpar_world_free, which
 * ends MPI). */
CLPAR_API clpar_status clpar_world_init(clpar_world **out);
CLPAR_API void clpar_world_free(clpar_world *w);
/* This process's number (0 .. size - 1) and the number of processes; NULL is a world of one. */
CLPAR_API int clpar_world_rank(const clpar_world *w);
CLPAR_API int clpar_world_size(const clpar_world *w);
/* Host name of process `proc` (borrowed). */
CLPAR_API const char *clpar_world_host(const clpar_world *w, int proc);
/* Called by every process with its own status and, when it failed, its message (NULL: its
 * clpar_last_error): returns, on every process, the status of the lowest-numbered process
 * that failed (CLPAR_OK when none did). That process keeps its own message; the others get
 * "process Q (HOST): MESSAGE" with its message. For checks that must stop every process
 * alike (a bad option or missing file seen by one, a file one process could not write), so
 * that one of them can say why for all. */
CLPAR_API clpar_status clpar_world_agree(clpar_world *w, clpar_status st, const char *message);
/* Every process's `bytes` bytes at mine, into all (size x bytes), in process order. */
CLPAR_API clpar_status clpar_world_allgather(clpar_world *w, const void *mine, size_t bytes,
                                             void *all);
/* Process root's `bytes` bytes at buf to every process. */
CLPAR_API clpar_status clpar_world_bcast(clpar_world *w, int root, void *buf, size_t bytes);
/* Sums one double over the processes, in process order (the same bits everywhere). */
CLPAR_API clpar_status clpar_world_sum_double(clpar_world *w, double *value);
/* The smallest of one value over the processes. */
CLPAR_API clpar_status clpar_world_min_u64(clpar_world *w, uint64_t *value);
/* The link between processes 0 and 1: the one-way time of a message of `bytes` bytes, half
 * the best of `iters` round trips (ping-pong), the same on every process (collective; the
 * other processes wait). 0 in a world of one process. */
CLPAR_API clpar_status clpar_world_ping_pong(clpar_world *w, size_t bytes, int iters,
                                             double *seconds);

/* ---- host synchronization ---- */

/* One lock and condition shared by the barriers and channels of a group of threads, with an
 * abort flag: after clpar_sync_abort every wait returns CLPAR_EABORTED. */
typedef struct clpar_sync clpar_sync;
CLPAR_API clpar_status clpar_sync_init(clpar_sync **out);
CLPAR_API void clpar_sync_free(clpar_sync *s);
CLPAR_API void clpar_sync_abort(clpar_sync *s);
/* Clears the abort flag; call from one thread while no other waits. */
CLPAR_API void clpar_sync_reset(clpar_sync *s);

/* A reusable barrier for n threads, living on a sync. */
typedef struct {
    clpar_sync *sync;
    int n, arrived;
    long generation;
} clpar_barrier;
CLPAR_API void clpar_barrier_init(clpar_barrier *b, clpar_sync *s, int n);
/* Returns once n threads have arrived, or CLPAR_EABORTED. */
CLPAR_API clpar_status clpar_barrier_wait(clpar_barrier *b);

/* ---- all-reduce ---- */

typedef struct clpar_allreduce clpar_allreduce;

/* Sum-all-reduce of float ranges of one buffer per rank, `count` floats at most, over the
 * n devices devs[] (which may repeat a device or span platforms), meeting through sync.
 * Allocates pinned staging (CL_MEM_ALLOC_HOST_PTR, mapped) per rank. Ranks read their range
 * on their transfer queue into staging, sum their share of it over all ranks in order
 * 0..n-1 (so the result is bit-identical everywhere and independent of timing), and write
 * the whole sum back on their transfer queue. The caller owns *out and keeps devs alive. */
CLPAR_API clpar_status clpar_allreduce_init(clpar_device *const *devs, int n, size_t count,
                                            clpar_sync *sync, clpar_allreduce **out);
/* The same reduction across processes: devs[] are this process's n ranks of the group, the
 * group's ranks in process order. Every process of world calls it, in the same order; one
 * without ranks in the group passes n = 0 and gets NULL. A
 * range's sum is this process's ranks' sum in rank order, then those partial sums summed in
 * process order (one process sums each part, so replicas stay bit-identical): 2 (P - 1) / P
 * of the range's bytes cross processes each way. Every process calls this in the same order
 * (it makes the group's own MPI communicator). */
CLPAR_API clpar_status clpar_allreduce_init_world(clpar_device *const *devs, int n, size_t count,
                                                  clpar_sync *sync, clpar_world *world,
                                                  clpar_allreduce **out);
CLPAR_API void clpar_allreduce_free(clpar_allreduce *ar);

/* Queues, on rank's transfer queue, the read of buf[off, off + len) into staging, to run
 * once `after` (an event of that rank's context, or NULL) has completed. Returns at once;
 * only rank's own thread calls it for rank. Used to start a gradient bucket's reduction
 * while backward goes on. */
CLPAR_API clpar_status clpar_allreduce_begin(clpar_allreduce *ar, int rank, cl_mem buf, size_t off,
                                             size_t len, cl_event after);
/* The collective for a range begun on every rank: waits for this rank's read, meets the
 * others, sums its share, meets again, queues the write of the sum into buf[off, off + len)
 * and makes later work on the compute queue wait for it. Ranges are reduced in the same
 * order on every rank. */
CLPAR_API clpar_status clpar_allreduce_bucket(clpar_allreduce *ar, int rank, cl_mem buf, size_t off,
                                              size_t len);
/* begin + bucket for buf[0, len), then waits until the sum is written: for activations,
 * whose staging is reused by the next call. */
CLPAR_API clpar_status clpar_allreduce_run(clpar_allreduce *ar, int rank, cl_mem buf, size_t len,
                                           cl_event after);
/* From one thread between uses: drops reads that a failed reduction left behind. */
/* The same over buf[off, off + len): the ranks' ranges may sit at different offsets (a
 * tied tensor's two copies in two ranks' layouts). */
CLPAR_API clpar_status clpar_allreduce_run_at(clpar_allreduce *ar, int rank, cl_mem buf, size_t off,
                                              size_t len, cl_event after);
CLPAR_API void clpar_allreduce_reset(clpar_allreduce *ar);
/* ZeRO: splits every later reduction's result among the group's members, member r (in
 * process order, this process's ranks in theirs) keeping [bounds[r], bounds[r + 1]) of each
 * range and writing only that part back (across processes only those parts are summed and
 * sent: a reduce-scatter). bounds has members + 1 rising offsets; bounds[members] is the
 * length that clpar_allreduce_gather_slices shares. Call before any reduction, from one
 * thread. */
CLPAR_API clpar_status clpar_allreduce_set_slices(clpar_allreduce *ar, const size_t *bounds);
/* The all-gather that follows the update of the slices: each rank reads its slice of buf
 * after `after`, and every rank receives every slice into buf[0, bounds[members]); later
 * compute on the rank waits for the write. Returns once it is written. */
CLPAR_API clpar_status clpar_allreduce_gather_slices(clpar_allreduce *ar, int rank, cl_mem buf,
                                                     cl_event after);
/* Bytes this process has sent to the other processes of the group so far. */
CLPAR_API uint64_t clpar_allreduce_bytes_sent(const clpar_allreduce *ar);
/* Timings of the reductions since the last call, from OpenCL profiling: the time their
 * windows (read start to write end) spanned, and how much of it came after
 * compute_end[rank] (device clock, ns), the part not hidden behind compute. Releases their
 * events; call from one thread once the queues have finished. compute_end may be NULL. */
CLPAR_API clpar_status clpar_allreduce_collect(clpar_allreduce *ar, const cl_ulong *compute_end,
                                               double *window_ns, double *exposed_ns);

/* ---- all-gather of column slices ---- */

typedef struct clpar_allgather clpar_allgather;

/* Concatenation of column slices: rank r holds a (rows, cols_r) matrix, all ranks receive
 * the (rows, sum of cols) matrix with rank r's columns at col0_r. At most `count` floats in
 * the whole matrix. The caller owns *out. */
CLPAR_API clpar_status clpar_allgather_init(clpar_device *const *devs, int n, size_t count,
                                            clpar_sync *sync, clpar_allgather **out);
CLPAR_API void clpar_allgather_free(clpar_allgather *ag);
/* Bytes this process has sent to the other processes of the group so far. */
CLPAR_API uint64_t clpar_allgather_bytes_sent(const clpar_allgather *ag);
/* The collective: reads local (rows, cols) after `after` on the transfer queue, places it at
 * columns [col0, col0 + cols) of the shared (rows, total) matrix, meets the others, and
 * writes the whole matrix into full; returns once full is written. */
CLPAR_API clpar_status clpar_allgather_run(clpar_allgather *ag, int rank, cl_mem local, size_t rows,
                                           size_t col0, size_t cols, size_t total, cl_mem full,
                                           cl_event after);

/* ---- point-to-point hand-off ---- */

typedef struct clpar_channel clpar_channel;

/* A one-way channel between two ranks (possibly on different platforms) with `slots`
 * messages of up to `count` floats in flight; messages are numbered by the sender and the
 * receiver asks for them by number (message k uses slot k % slots). Bytes sent and the time
 * copies took are counted. The caller owns *out. */
CLPAR_API clpar_status clpar_channel_init(clpar_device *from, clpar_device *to, int slots,
                                          size_t count, clpar_sync *sync, clpar_channel **out);
CLPAR_API void clpar_channel_free(clpar_channel *c);
/* Sender: queues the read of src[0, len) into slot k % slots on its transfer queue after
 * `after` and returns at once with the read's event in *read (the caller releases it);
 * compute queued on the sender afterwards waits for the read. Waits only while the slot
 * still holds message k - slots that the receiver has not taken yet, then for that
 * message's write to finish reading the host copy. */
CLPAR_API clpar_status clpar_channel_send(clpar_channel *c, long k, cl_mem src, size_t len,
                                          cl_event after, cl_event *read);
/* Receiver: waits until message k has been read into host memory, then queues its write
 * into dst[0, len) (len must match) on its transfer queue, after the compute queued before
 * and before the compute queued after, and returns without waiting for the write.
 * *written, when not NULL, receives the write's event (the caller releases it). */
CLPAR_API clpar_status clpar_channel_recv(clpar_channel *c, long k, cl_mem dst, size_t len,
                                          cl_event *written);
/* From one thread while no other uses it: waits for the copies still queued and empties
 * every slot (after a failed step). */
CLPAR_API void clpar_channel_reset(clpar_channel *c);
/* Bytes moved through the channel so far. */
CLPAR_API uint64_t clpar_channel_bytes(const clpar_channel *c);

#ifdef __cplusplus
}
#endif
#endif
