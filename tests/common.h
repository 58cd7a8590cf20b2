/* Shared by the tests: a runtime and devices opened once per test binary, random inputs,
 * and the relative L2 distance used for every tolerance. */
#ifndef CLPAR_TEST_COMMON_H
#define CLPAR_TEST_COMMON_H

#include "clpar/clpar.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

/* The runtime of this test process (made on first use). */
clpar_runtime *t_runtime(void);
/* A device handle on device index i (made on first use, shared by the tests of a binary). */
clpar_device *t_device(int i);
/* Fills x[0..n) with uniform values in [lo, hi) from a generator seeded with seed. */
/* The source tree (CLPAR_SOURCE_DIR, or the one the tests were built from). */
const char *t_source_dir(void);
void t_fill(float *x, size_t n, uint64_t seed, double lo, double hi);
/* ||a - b|| / ||b|| in double (||a - b|| when b is zero). */
double t_rel_l2(const float *a, const float *b, size_t n);
double t_rel_l2_d(const float *a, const double *b, size_t n);
/* A buffer on d holding host data (n floats). */
cl_mem t_upload(clpar_device *d, const float *x, size_t n);
/* Reads n floats of m into a new host array (caller frees). */
float *t_download(clpar_device *d, cl_mem m, size_t n);
/* Asserts st == CLPAR_OK, printing the detail message when not. */
#define T_OK(call)                                                                                 \
    do {                                                                                           \
        clpar_status st__ = (call);                                                                \
        cr_assert_eq(st__, CLPAR_OK, "%s -> %s: %s", #call, clpar_status_name(st__),               \
                     clpar_last_error());                                                          \
    } while (0)
/* A path under the test's temporary folder. */
const char *t_tmp(const char *name);

#endif
