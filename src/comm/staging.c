/* Pinned, reused host staging buffers and the copies through them (staging.h). */
#include "staging.h"

#include <string.h>

clpar_status clpar_staging_init(clpar_staging *s, clpar_device *d, size_t count) {
    memset(s, 0, sizeof *s);
    s->dev = d;
    s->count = count ? count : 1;
    size_t bytes = s->count * sizeof(float);
    cl_int err;
    s->mem =
        clCreateBuffer(d->context, CL_MEM_ALLOC_HOST_PTR | CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err == CL_SUCCESS)
        s->host = clEnqueueMapBuffer(d->transfer, s->mem, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0,
                                     bytes, 0, NULL, NULL, &err);
    if (err != CL_SUCCESS) {
        s->host = NULL;
        return clpar_error(err, "device %d (%s): pinned staging of %zu bytes failed: %s",
                           d->info->index, d->info->name, bytes, clpar_status_name(err));
    }
    return CLPAR_OK;
}

void clpar_staging_free(clpar_staging *s) {
    if (s->host) {
        clEnqueueUnmapMemObject(s->dev->transfer, s->mem, s->host, 0, NULL, NULL);
        clFinish(s->dev->transfer);
    }
    if (s->mem) clReleaseMemObject(s->mem);
    memset(s, 0, sizeof *s);
}

clpar_status clpar_staging_read(clpar_staging *s, size_t at, cl_mem src, size_t off, size_t len,
                                cl_event after, cl_event *done) {
    if (at + len > s->count)
        return clpar_error(CLPAR_EINVAL, "staging read of %zu floats at %zu exceeds its %zu", len,
                           at, s->count);
    return clpar_host_read(s->dev, s->host + at, src, off, len, after, done);
}

clpar_status clpar_host_read(clpar_device *d, float *to, cl_mem src, size_t off, size_t len,
                             cl_event after, cl_event *done) {
    if (!done) clpar_count_wait(d);
    CL_CHECK(clEnqueueReadBuffer(d->transfer, src, done ? CL_FALSE : CL_TRUE, off * sizeof(float),
                                 len * sizeof(float), to, after ? 1 : 0, after ? &after : NULL,
                                 done),
             "clEnqueueReadBuffer(staging)");
    if (!done) return CLPAR_OK;
    cl_int err = clFlush(d->transfer);
    if (err != CL_SUCCESS) {
        clReleaseEvent(*done);
        return clpar_cl_error(err, "clFlush(transfer)");
    }
    return CLPAR_OK;
}

clpar_status clpar_staging_write(clpar_device *d, cl_mem dst, size_t off, const float *from,
                                 size_t len, cl_uint nwait, const cl_event *wait, cl_event *done) {
    CL_CHECK(clEnqueueWriteBuffer(d->transfer, dst, CL_FALSE, off * sizeof(float),
                                  len * sizeof(float), from, nwait, nwait ? wait : NULL, done),
             "clEnqueueWriteBuffer(staging)");
    cl_int err = clFlush(d->transfer);
    if (err != CL_SUCCESS) {
        clReleaseEvent(*done);
        return clpar_cl_error(err, "clFlush(transfer)");
    }
    return CLPAR_OK;
}
