/* The communication level: host-coordinated copies between devices that may sit in
 * different OpenCL contexts or platforms (so no events cross between them). Gradients are
 * read on each device's transfer queue into pinned host staging memory, summed on the host
 * in rank order (so the result does not depend on timing), and written back to every rank. */
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
 * once `after` (an event of that rank's context, or NULL) has completed. Returns at once. */
clpar_status clpar_allreduce_begin(clpar_allreduce *ar, int rank, cl_mem buf, size_t off,
                                   size_t len, cl_event after);

/* Waits for every rank's read of [off, off + len), sums them in rank order 0..n-1, and queues
 * the sum's write back into bufs[rank] on each transfer queue; later work on each rank's
 * compute queue is made to wait for it. Returns once the writes are queued. */
clpar_status clpar_allreduce_finish(clpar_allreduce *ar, cl_mem const *bufs, size_t off,
                                    size_t len);

/* Timings of the copies since the last reset, from OpenCL profiling: the time the reduction
 * windows (read start to write end) spanned in all, and how much of it came after
 * `compute_end[rank]` (device clock, ns) — the part not hidden behind compute. Collects and
 * releases the events of finished reductions; call after the compute queues have finished. */
clpar_status clpar_allreduce_collect(clpar_allreduce *ar, const cl_ulong *compute_end,
                                     double *window_ns, double *exposed_ns);

#ifdef __cplusplus
}
#endif
#endif
