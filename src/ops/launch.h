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

#endif
