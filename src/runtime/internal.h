/* Internal to the library: struct layouts of the runtime level, kernel ids, and the
 * error helpers every level uses. Not installed. */
#ifndef CLPAR_INTERNAL_H
#define CLPAR_INTERNAL_H

#include "clpar/runtime.h"
#include "clpar/status.h"

#include <stdbool.h>

/* The kernels of kernels/ (.cl files), in one list so the device can create them all at once. */
#define CLPAR_KERNELS(X)                                                                           \
    X(bias_add, "elementwise")                                                                     \
    X(relu_forward, "elementwise")                                                                 \
    X(relu_backward, "elementwise")                                                                \
    X(colsum, "elementwise")                                                                       \
    X(scale, "elementwise")                                                                        \
    X(axpy, "elementwise")                                                                         \
    X(xent_forward, "loss")                                                                        \
    X(xent_backward, "loss")                                                                       \
    X(mse_forward, "loss")                                                                         \
    X(mse_backward, "loss")                                                                        \
    X(sgd_step, "optim")                                                                           \
    X(adam_step, "optim")

typedef enum {
#define X(name, prog) CLPAR_K_##name,
    CLPAR_KERNELS(X)
#undef X
        CLPAR_K_COUNT
} clpar_kernel_id;

#define CLPAR_PROGRAM_COUNT 3 /* elementwise, loss, optim */

typedef struct {
    cl_context context; /* shared by all devices of the platform; NULL until first use */
} clpar_platform_ctx;

struct clpar_runtime {
    int ndevices;
    clpar_device_info *devices;
    int nplatforms;
    clpar_platform_ctx *platforms;
    cl_program *programs; /* [ndevices * CLPAR_PROGRAM_COUNT], built on first use */
};

struct clpar_device {
    clpar_runtime *rt;
    const clpar_device_info *info;
    cl_context context;
    cl_command_queue compute;
    cl_command_queue transfer;
    cl_kernel kernels[CLPAR_K_COUNT];
    cl_uint base_arg[CLPAR_K_COUNT]; /* index of each kernel's last argument, `base` */
    size_t allocated;
    size_t wg;         /* work-group size used for 1-D kernels */
    size_t max_grid;   /* widest global size of a 1-D launch (a multiple of wg) */
    size_t warm_grid;  /* while warming up: the least global size of 1-D launches (ops/gemm.c) */
    bool clblast_warm; /* CLBlast's kernels compiled for this device (see ops/gemm.c) */
};

/* Sets the thread's detail message and returns status, so errors read
 * `return clpar_error(CLPAR_EIO, "%s: %s", path, strerror(errno));` */
clpar_status clpar_error(clpar_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Same for an OpenCL call that failed: "clEnqueueNDRangeKernel(relu) failed: ..." */
clpar_status clpar_cl_error(cl_int err, const char *what);

#define CL_CHECK(call, what)                                                                       \
    do {                                                                                           \
        cl_int err_ = (call);                                                                      \
        if (err_ != CL_SUCCESS) return clpar_cl_error(err_, what);                                 \
    } while (0)

#define TRY(call)                                                                                  \
    do {                                                                                           \
        clpar_status st_ = (call);                                                                 \
        if (st_ != CLPAR_OK) return st_;                                                           \
    } while (0)

/* The embedded kernel sources (generated at build time from kernels/ (.cl files)). */
typedef struct {
    const char *name;
    const char *source;
} clpar_embedded_source;
extern const clpar_embedded_source clpar_embedded_sources[];
extern const int clpar_embedded_source_count;

/* Builds or returns the cached program `name` for device index `dev` in `ctx`. */
clpar_status clpar_runtime_program(clpar_runtime *rt, int dev, cl_context ctx, const char *name,
                                   cl_program *out);

/* CLBlastOverrideParameters for the device's single precision (ops/gemm_tune.c). */
clpar_status clpar_gemm_override(clpar_device *d, const char *kernel, size_t n, const char **names,
                                 const size_t *values);

#endif
