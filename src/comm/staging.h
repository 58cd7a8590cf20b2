/* Host staging, the one way data leaves and enters a device in the communication level: a
 * pinned host buffer per device (CL_MEM_ALLOC_HOST_PTR, mapped for its lifetime: page-locked
 * memory that DMA reaches directly on GPUs, plain memory on CPU devices), made once and
 * reused, with reads into it and writes from host memory on the device's transfer queue.
 * All-reduce, all-gather and the stage channel are built on it. */
#ifndef CLPAR_STAGING_H
#define CLPAR_STAGING_H

#include "clpar/comm.h"
#include "../runtime/internal.h"

typedef struct {
    clpar_device *dev;
    cl_mem mem;
    float *host; /* count floats, valid while the staging lives */
    size_t count;
} clpar_staging;

/* A staging of count floats (at least one) for d. On failure *s is left freeable. */
clpar_status clpar_staging_init(clpar_staging *s, clpar_device *d, size_t count);
void clpar_staging_free(clpar_staging *s);
/* Queues host[at, at + len) = src[off, off + len) after `after` (may be NULL); *done
 * (NULL: blocking) receives the read's event. */
clpar_status clpar_staging_read(clpar_staging *s, size_t at, cl_mem src, size_t off, size_t len,
                                cl_event after, cl_event *done);
/* The same read into other host memory (to[0, len)), such as memory shared with other
 * processes: slower than the staging on devices that copy through pinned memory. */
clpar_status clpar_host_read(clpar_device *d, float *to, cl_mem src, size_t off, size_t len,
                             cl_event after, cl_event *done);
/* Queues, on d's transfer queue, dst[off, off + len) = from[0, len) (staged host memory:
 * this rank's, another rank's, or a sum made from them) after the nwait events; *done
 * receives the write's event. */
clpar_status clpar_staging_write(clpar_device *d, cl_mem dst, size_t off, const float *from,
                                 size_t len, cl_uint nwait, const cl_event *wait, cl_event *done);

#endif
