/* Helpers shared by the tests. */
#include "common.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

static clpar_runtime *rt;
static clpar_device *devs[16];

clpar_runtime *t_runtime(void) {
    if (!rt) {
        clpar_status st = clpar_runtime_init(&rt);
        cr_assert_eq(st, CLPAR_OK, "no OpenCL runtime: %s", clpar_last_error());
    }
    return rt;
}

clpar_device *t_device(int i) {
    cr_assert(i >= 0 && i < 16);
    if (!devs[i]) {
        clpar_status st = clpar_device_init(t_runtime(), i, &devs[i]);
        cr_assert_eq(st, CLPAR_OK, "device %d: %s", i, clpar_last_error());
    }
    return devs[i];
}

void t_fill(float *x, size_t n, uint64_t seed, double lo, double hi) {
    clpar_rng r;
    clpar_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(lo + (hi - lo) * clpar_rng_uniform(&r));
}

double t_rel_l2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

double t_rel_l2_d(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

cl_mem t_upload(clpar_device *d, const float *x, size_t n) {
    cl_mem m;
    T_OK(clpar_device_alloc(d, n * sizeof(float), &m));
    T_OK(clpar_device_write(d, m, 0, n * sizeof(float), x));
    return m;
}

float *t_download(clpar_device *d, cl_mem m, size_t n) {
    float *x = malloc(n * sizeof(float));
    cr_assert(x);
    T_OK(clpar_device_read(d, x, m, 0, n * sizeof(float)));
    return x;
}

const char *t_tmp(const char *name) {
    static char buf[8][512];
    static int k;
    const char *base = getenv("TMPDIR");
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/clpar-test-%ld-%s", base && *base ? base : "/tmp", (long)getpid(), name);
    return p;
}

const char *t_source_dir(void) {
    const char *dir = getenv("CLPAR_SOURCE_DIR");
    return dir && *dir ? dir : CLPAR_TEST_SOURCE_DIR;
}
