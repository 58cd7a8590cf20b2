/* Launching clpar's 1-D kernels: in pieces no wider than the device allows, each from its
 * `base` (every kernel's last argument). */
#include "launch.h"

clpar_status check_u32(size_t v, const char *what) {
    if (v > 0xffffffffu) return clpar_error(CLPAR_EINVAL, "%s of %zu exceeds 2^32", what, v);
    return CLPAR_OK;
}

clpar_status launch(clpar_device *d, clpar_kernel_id id, cl_int argerr, size_t n, const char *name,
                    cl_event *event) {
    return launch_range(d, id, argerr, 0, n, name, event);
}

clpar_status launch_range(clpar_device *d, clpar_kernel_id id, cl_int argerr, size_t first,
                          size_t n, const char *name, cl_event *event) {
    if (argerr != CL_SUCCESS) return clpar_cl_error(argerr, name);
    if (n <= first) {
        /* Nothing to compute, but callers may still wait on the event. */
        if (event) CL_CHECK(clEnqueueMarkerWithWaitList(d->compute, 0, NULL, event), name);
        return CLPAR_OK;
    }
    /* no launch wider than max_grid: larger counts go in pieces, each from its `base`
     * (every kernel's last argument); the warm-up's launch is the widest (ops/gemm.c) */
    for (size_t off = first; off < n; off += d->max_grid) {
        size_t part = n - off < d->max_grid ? n - off : d->max_grid;
        size_t global = (part + d->wg - 1) / d->wg * d->wg;
        if (global < d->warm_grid) global = d->warm_grid;
        cl_uint base = (cl_uint)off;
        CL_CHECK(clSetKernelArg(d->kernels[id], d->base_arg[id], sizeof base, &base), name);
        clpar_count_launch(d);
        CL_CHECK(clEnqueueNDRangeKernel(d->compute, d->kernels[id], 1, NULL, &global, &d->wg, 0,
                                        NULL, off + part == n ? event : NULL),
                 name);
    }
    return CLPAR_OK;
}
