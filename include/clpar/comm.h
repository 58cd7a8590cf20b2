/* The communication level: host-coordinated copies between devices that may sit in
 * different OpenCL contexts or platforms (so no events cross between them). A reduction is
 * a collective: each rank's host thread reads its gradients on its transfer queue into
 * pinned host staging memory, the ranks sum their slices of the range in rank order (so the
 * result does not depend on timing and is bit-identical everywhere), and each writes the
 * sum back on its transfer queue. */
#ifndef CLPAR_COMM_H
#define CLPAR_COMM_H

#include "clpar/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clpar_allreduce clpar_allreduce;

/* Sum-all-reduce of float ranges of one buffer per rank, `count` floats at most, over the
 * n devices devs[] (which may repeat a device or span platforms). Allocates pinned staging
 * (CL_MEM_ALLOC_HOST_PTR, mapped) per rank. The caller owns *out and keeps devs alive. */
clpar_status clpar_allreduce_init(clpar_device *const *devs, int n, size_t count,
                                  clpar_allreduce **out);
void clpar_allreduce_free(clpar_allreduce *ar);

/* Queues, on rank's transfer queue, the read of buf[off, off + len) into staging, to run
 * once `after` (an event of that rank's context, or NULL) has completed. Returns at once.
 * Only rank's own thread may call this for rank. */
clpar_status clpar_allreduce_begin(clpar_allreduce *ar, int rank, cl_mem buf, size_t off,
                                   size_t len, cl_event after);

/* The collective: every rank's thread calls it with the same range, after its begin. Waits
 * for this rank's read, meets the other ranks, sums its share of the range over all ranks
 * in order 0..n-1, meets them again, then queues the write of the whole sum into buf on the
 * transfer queue and makes later work on the compute queue wait for it. ok = 0 tells the
 * others this rank has failed: it still meets them, so none waits forever, and they return
 * CLPAR_EABORTED. */
clpar_status clpar_allreduce_bucket(clpar_allreduce *ar, int rank, cl_mem buf, size_t off,
                                    size_t len, int ok);

/* Before a step, from one thread: forgets a failure and drops reads left by one. */
void clpar_allreduce_reset(clpar_allreduce *ar);

/* Timings of the copies since the last call, from OpenCL profiling: the time the reduction
 * windows (read start to write end) spanned in all, and how much of it came after
 * `compute_end[rank]` (device clock, ns) — the part not hidden behind compute. Releases the
 * events of finished reductions; call from one thread once the queues have finished. */
clpar_status clpar_allreduce_collect(clpar_allreduce *ar, const cl_ulong *compute_end,
                                     double *window_ns, double *exposed_ns);

#ifdef __cplusplus
}
#endif
#endif
