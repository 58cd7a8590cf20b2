/* A rank's handle on a device: the shared platform context, two in-order queues, the
 * kernels, buffer allocation with a per-handle byte account, and blocking copies. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *kernel_names[CLPAR_K_COUNT] = {
#define X(name, prog) #name,
    CLPAR_KERNELS(X)
#undef X
};
static const char *kernel_programs[CLPAR_K_COUNT] = {
#define X(name, prog) prog,
    CLPAR_KERNELS(X)
#undef X
};

static clpar_status platform_context(clpar_runtime *rt, int platform, cl_context *out) {
    clpar_platform_ctx *pc = &rt->platforms[platform];
    if (!pc->context) {
        cl_device_id ids[64];
        cl_uint n = 0;
        for (int i = 0; i < rt->ndevices && n < 64; i++)
            if (rt->devices[i].platform == platform) ids[n++] = rt->devices[i].device_id;
        cl_context_properties props[] = {CL_CONTEXT_PLATFORM, 0, 0};
        for (int i = 0; i < rt->ndevices; i++)
            if (rt->devices[i].platform == platform)
                props[1] = (cl_context_properties)rt->devices[i].platform_id;
        cl_int err;
        pc->context = clCreateContext(props, n, ids, NULL, NULL, &err);
        CL_CHECK(err, "clCreateContext");
    }
    *out = pc->context;
    return CLPAR_OK;
}

static clpar_status device_setup(clpar_device *d, int index) {
    clpar_runtime *rt = d->rt;
    TRY(platform_context(rt, d->info->platform, &d->context));
    cl_int err;
    cl_device_id did = d->info->device_id;
    d->compute = clCreateCommandQueue(d->context, did, CL_QUEUE_PROFILING_ENABLE, &err);
    CL_CHECK(err, "clCreateCommandQueue(compute)");
    d->transfer = clCreateCommandQueue(d->context, did, CL_QUEUE_PROFILING_ENABLE, &err);
    CL_CHECK(err, "clCreateCommandQueue(transfer)");
    for (int k = 0; k < CLPAR_K_COUNT; k++) {
        cl_program prog;
        TRY(clpar_runtime_program(rt, index, d->context, kernel_programs[k], &prog));
        d->kernels[k] = clCreateKernel(prog, kernel_names[k], &err);
        if (err != CL_SUCCESS) return clpar_cl_error(err, kernel_names[k]);
        cl_uint nargs = 0;
        CL_CHECK(clGetKernelInfo(d->kernels[k], CL_KERNEL_NUM_ARGS, sizeof nargs, &nargs, NULL),
                 "clGetKernelInfo(CL_KERNEL_NUM_ARGS)");
        if (nargs == 0)
            return clpar_error(CLPAR_EINVAL, "kernel %s has no arguments", kernel_names[k]);
        d->base_arg[k] = nargs - 1;
    }
    size_t maxwg = 64;
    clGetDeviceInfo(did, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof maxwg, &maxwg, NULL);
    d->wg = maxwg < 64 ? maxwg : 64;
    if (d->wg == 0) d->wg = 1;
    /* larger counts go in several launches (ops/kernels.c). On CPU devices the cap stays
     * under PoCL's 65535-wide "small grid" specialization, the faster code (see ops/gemm.c
     * for why no launch may be wider than the first) */
    size_t cap = d->info->type & CL_DEVICE_TYPE_CPU ? 65535 : (size_t)1 << 22;
    d->max_grid = cap / d->wg * d->wg;
    return CLPAR_OK;
}

clpar_status clpar_device_init(clpar_runtime *rt, int index, clpar_device **out) {
    *out = NULL;
    if (index < 0 || index >= rt->ndevices)
        return clpar_error(CLPAR_ENODEV, "no device %d (%d found)", index, rt->ndevices);
    clpar_device *d = calloc(1, sizeof *d);
    if (!d) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    d->rt = rt;
    d->info = &rt->devices[index];
    clpar_status st = device_setup(d, index);
    if (st != CLPAR_OK) {
        clpar_device_free(d);
        return st;
    }
    *out = d;
    return CLPAR_OK;
}

void clpar_device_free(clpar_device *d) {
    if (!d) return;
    if (d->compute) clFinish(d->compute);
    if (d->transfer) clFinish(d->transfer);
    for (int k = 0; k < CLPAR_K_COUNT; k++)
        if (d->kernels[k]) clReleaseKernel(d->kernels[k]);
    for (int i = 0; i < d->gemm_nkernels; i++) {
        if (d->gemm_kernels[i].nt) clReleaseKernel(d->gemm_kernels[i].nt);
        if (d->gemm_kernels[i].xn) clReleaseKernel(d->gemm_kernels[i].xn);
        if (d->gemm_kernels[i].pack_a) clReleaseKernel(d->gemm_kernels[i].pack_a);
        if (d->gemm_kernels[i].pack_b) clReleaseKernel(d->gemm_kernels[i].pack_b);
        if (d->gemm_kernels[i].program) clReleaseProgram(d->gemm_kernels[i].program);
    }
    if (d->gemm_scratch) clReleaseMemObject(d->gemm_scratch);
    for (int i = 0; i < d->gemm_nretired; i++)
        clReleaseMemObject(d->gemm_retired[i]);
    if (d->compute) clReleaseCommandQueue(d->compute);
    if (d->transfer) clReleaseCommandQueue(d->transfer);
    free(d);
}

void clpar_device_get_counts(const clpar_device *d, uint64_t *launches, uint64_t *waits) {
    *launches = __atomic_load_n(&d->launches, __ATOMIC_RELAXED);
    *waits = __atomic_load_n(&d->waits, __ATOMIC_RELAXED);
}

const clpar_device_info *clpar_device_get_info(const clpar_device *d) {
    return d->info;
}
clpar_runtime *clpar_device_runtime(const clpar_device *d) {
    return d->rt;
}
cl_context clpar_device_context(const clpar_device *d) {
    return d->context;
}
cl_command_queue clpar_device_compute_queue(const clpar_device *d) {
    return d->compute;
}
cl_command_queue clpar_device_transfer_queue(const clpar_device *d) {
    return d->transfer;
}

clpar_status clpar_device_alloc(clpar_device *d, size_t bytes, cl_mem *out) {
    return clpar_device_alloc_at(d, NULL, bytes, out);
}

clpar_status clpar_device_alloc_at(clpar_device *d, void *host, size_t bytes, cl_mem *out) {
    *out = NULL;
    if (bytes == 0) bytes = 4; /* OpenCL forbids empty buffers; keep one float */
    size_t used = d->allocated + d->workspace;
    if (bytes > d->info->max_alloc || used > d->info->global_mem ||
        bytes > d->info->global_mem - used)
        return clpar_error(CLPAR_EDEVMEM,
                           "device %d (%s): cannot allocate %zu bytes (max allocation %llu, "
                           "%zu of %llu bytes already in use)",
                           d->info->index, d->info->name, bytes,
                           (unsigned long long)d->info->max_alloc, used,
                           (unsigned long long)d->info->global_mem);
    cl_int err;
    cl_mem m = clCreateBuffer(d->context, CL_MEM_READ_WRITE | (host ? CL_MEM_USE_HOST_PTR : 0),
                              bytes, host, &err);
    if (err != CL_SUCCESS)
        return clpar_error(err == CL_INVALID_BUFFER_SIZE ? CLPAR_EDEVMEM : err,
                           "device %d (%s): allocating %zu bytes failed: %s", d->info->index,
                           d->info->name, bytes, clpar_status_name(err));
    d->allocated += bytes;
    *out = m;
    return CLPAR_OK;
}

void clpar_device_release(clpar_device *d, cl_mem m) {
    if (!m) return;
    size_t sz = 0;
    if (clGetMemObjectInfo(m, CL_MEM_SIZE, sizeof sz, &sz, NULL) == CL_SUCCESS &&
        sz <= d->allocated)
        d->allocated -= sz;
    clReleaseMemObject(m);
}

size_t clpar_device_allocated_bytes(const clpar_device *d) {
    return d->allocated;
}

size_t clpar_device_workspace_bytes(const clpar_device *d) {
    return d->workspace;
}

clpar_status clpar_device_write(clpar_device *d, cl_mem dst, size_t offset, size_t bytes,
                                const void *src) {
    if (!bytes) return CLPAR_OK;
    clpar_count_wait(d);
    CL_CHECK(clEnqueueWriteBuffer(d->compute, dst, CL_TRUE, offset, bytes, src, 0, NULL, NULL),
             "clEnqueueWriteBuffer");
    return CLPAR_OK;
}

clpar_status clpar_device_read(clpar_device *d, void *dst, cl_mem src, size_t offset,
                               size_t bytes) {
    if (!bytes) return CLPAR_OK;
    clpar_count_wait(d);
    CL_CHECK(clEnqueueReadBuffer(d->compute, src, CL_TRUE, offset, bytes, dst, 0, NULL, NULL),
             "clEnqueueReadBuffer");
    return CLPAR_OK;
}

clpar_status clpar_device_zero(clpar_device *d, cl_mem buf, size_t offset, size_t bytes) {
    if (!bytes) return CLPAR_OK;
    const float zero = 0.0f;
    CL_CHECK(clEnqueueFillBuffer(d->compute, buf, &zero, sizeof zero, offset, bytes, 0, NULL, NULL),
             "clEnqueueFillBuffer");
    return CLPAR_OK;
}

clpar_status clpar_device_finish(clpar_device *d) {
    clpar_count_wait(d);
    CL_CHECK(clFinish(d->compute), "clFinish(compute)");
    CL_CHECK(clFinish(d->transfer), "clFinish(transfer)");
    return CLPAR_OK;
}

clpar_status clpar_device_wait_events(clpar_device *d, cl_uint n, const cl_event *events) {
    if (!n) return CLPAR_OK;
    CL_CHECK(clEnqueueBarrierWithWaitList(d->compute, n, events, NULL),
             "clEnqueueBarrierWithWaitList");
    return CLPAR_OK;
}
