/* Internal to the ops level: setting kernel arguments and launching clpar's kernels. */
#ifndef CLPAR_LAUNCH_H
#define CLPAR_LAUNCH_H

#include "clpar/ops.h"
#include "../runtime/internal.h"

/* Sets argument i of kernel k from a value; returns the OpenCL status. */
#define ARG(k, i, v) clSetKernelArg((k), (i), sizeof(v), &(v))

/* CLPAR_EINVAL naming `what` when v does not fit the kernels' 32-bit counts. */
clpar_status check_u32(size_t v, const char *what);
/* Runs kernel id over n work-items (argerr: the status of setting its arguments, reported
 * under name); event (may be NULL) receives the last piece's event. */
clpar_status launch(clpar_device *d, clpar_kernel_id id, cl_int argerr, size_t n, const char *name,
                    cl_event *event);

/* The same over work-items [first, n) only (kernels whose bound is n). */
clpar_status launch_range(clpar_device *d, clpar_kernel_id id, cl_int argerr, size_t first,
                          size_t n, const char *name, cl_event *event);

/* clpar's GEMM kernels (gemm_kernels.c): the set of d built for c's parameters in *set (an
 * existing one, else built anew; CLPAR_EINVAL past CLPAR_GEMM_MAX_KERNELS); every set and
 * route of d released; one product with a set, op(B) = B^T when nt (trans_a must then be 0;
 * bias, when not NULL, added to every row from bias_off), else B (bias must be NULL); every
 * set warmed up with the widest launch the process will make (buf: 600 floats at least). */
clpar_status clpar_gemm_kernels_build(clpar_device *d, const clpar_gemm_config *c, int *set);
void clpar_gemm_kernels_reset(clpar_device *d);
clpar_status clpar_gemm_kernels_run(clpar_device *d, int set, clpar_transpose trans_a, size_t m,
                                    size_t n, size_t k, float alpha, cl_mem a, size_t a_off,
                                    size_t lda, cl_mem b, size_t b_off, size_t ldb, float beta,
                                    cl_mem c, size_t c_off, size_t ldc, int nt, cl_mem bias,
                                    size_t bias_off, cl_event *event);
clpar_status clpar_gemm_kernels_warm(clpar_device *d, cl_mem buf);

/* The set of clpar's kernels that runs a product of this shape on d, -1 for CLBlast (the
 * routes of the device's tuning, else its configuration; both transposed: CLBlast). */
int clpar_gemm_set_of(const clpar_device *d, clpar_transpose ta, clpar_transpose tb, size_t m,
                      size_t n, size_t k);

/* The GEMM workspace (gemm_workspace.c): the scratch's size after growing from have floats
 * for need (gemm_kernels.c's rule: doubling, from 64 Ki floats); d's scratch grown to hold
 * floats; the tuning a device of rt with this info takes when it first runs a product
 * (CLPAR_GEMM_PATH, else the cache's, else the default; CLPAR_EINVAL for a path it does not
 * know); and the products of the warm-up in order (clpar_op_warmup; cpu: with the widest,
 * as on CPU devices), at most GEMM_WARM_SHAPES, returning how many. */
size_t gemm_scratch_grown(size_t have, size_t need);
clpar_status gemm_scratch_reserve(clpar_device *d, size_t floats);
clpar_status gemm_plan_tuning(const clpar_runtime *rt, const clpar_device_info *info,
                              clpar_gemm_tuning *t);
#define GEMM_WARM_SHAPES 16
int gemm_warm_shapes(int cpu, clpar_gemm_shape *out);

#endif
