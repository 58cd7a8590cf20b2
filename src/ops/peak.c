/* The device's arithmetic peak, measured with clpar_op_fma_peak: the yardstick that
 * clpar-devices --bench reads every GEMM against. */
#include "launch.h"

#include <math.h>

static clpar_status timed(clpar_device *d, cl_mem out, unsigned iters, size_t n, double *s) {
    double t0 = clpar_now_s();
    TRY(clpar_op_fma_peak(d, out, 0.999f, 0.001f, iters, n, NULL));
    TRY(clpar_device_finish(d));
    *s = clpar_now_s() - t0;
    return CLPAR_OK;
}

clpar_status clpar_op_measure_peak(clpar_device *d, double *gflops) {
    /* enough work-items for every compute unit's lanes and for latency hiding on GPUs */
    size_t n = (size_t)(d->info->compute_units ? d->info->compute_units : 1) * 4096;
    cl_mem out;
    TRY(clpar_device_alloc(d, n * sizeof(float), &out));
    unsigned iters = 64;
    double s = 0;
    clpar_status st = timed(d, out, iters, n, &s); /* the first launch also compiles */
    while (st == CLPAR_OK && (st = timed(d, out, iters, n, &s)) == CLPAR_OK && s < 0.05 &&
           iters < (1u << 24))
        iters *= 2;
    double best = INFINITY;
    for (int rep = 0; rep < 3 && st == CLPAR_OK; rep++) {
        st = timed(d, out, iters, n, &s);
        if (st == CLPAR_OK && s < best) best = s;
    }
    clpar_device_release(d, out);
    TRY(st);
    *gflops = 256.0 * iters * (double)n / best / 1e9;
    return CLPAR_OK;
}
