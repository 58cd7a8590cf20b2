/* Internal to the library: struct layouts of the runtime level, kernel ids, and the
 * error helpers every level uses. Not installed. */
#ifndef CLPAR_INTERNAL_H
#define CLPAR_INTERNAL_H

#include "clpar/runtime.h"
#include "clpar/status.h"
#include "clpar/ops.h"

#include <stdbool.h>
#include <stdint.h>

/* The kernels of kernels/ (.cl files), in one list so the device can create them all at once. */
#define CLPAR_KERNELS(X)                                                                           \
    X(bias_add, "elementwise")                                                                     \
    X(relu_forward, "elementwise")                                                                 \
    X(relu_backward, "elementwise")                                                                \
    X(colsum, "elementwise")                                                                       \
    X(scale, "elementwise")                                                                        \
    X(axpy, "elementwise")                                                                         \
    X(fma_peak, "elementwise")                                                                     \
    X(xent_forward, "loss")                                                                        \
    X(xent_backward, "loss")                                                                       \
    X(mse_forward, "loss")                                                                         \
    X(mse_backward, "loss")                                                                        \
    X(sgd_step, "optim")                                                                           \
    X(adam_step, "optim")                                                                          \
    X(layernorm_forward, "transformer")                                                            \
    X(layernorm_backward, "transformer")                                                           \
    X(layernorm_weights, "transformer")                                                            \
    X(gelu_forward, "transformer")                                                                 \
    X(gelu_backward, "transformer")                                                                \
    X(attention_forward, "transformer")                                                            \
    X(attention_backward_query, "transformer")                                                     \
    X(attention_backward_keys, "transformer")                                                      \
    X(embedding_forward, "transformer")                                                            \
    X(embedding_backward_tokens, "transformer")                                                    \
    X(embedding_backward_positions, "transformer")

typedef enum {
#define X(name, prog) CLPAR_K_##name,
    CLPAR_KERNELS(X)
#undef X
        CLPAR_K_COUNT
} clpar_kernel_id;

#define CLPAR_PROGRAM_COUNT 4 /* elementwise, loss, optim, transformer */

typedef struct {
    cl_context context; /* shared by all devices of the platform; NULL until first use */
} clpar_platform_ctx;

struct clpar_runtime {
    clpar_runtime_config cfg;
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
    size_t workspace;  /* bytes of gemm_scratch and gemm_retired, apart from allocated */
    size_t wg;         /* work-group size used for 1-D kernels */
    size_t max_grid;   /* widest global size of a 1-D launch (a multiple of wg) */
    size_t warm_grid;  /* while warming up: the least global size of 1-D launches (ops/gemm.c) */
    bool clblast_warm; /* CLBlast's kernels compiled for this device (see ops/gemm.c) */
    /* the GEMM configuration in use (ops/gemm.c); clpar's GEMM kernels built for it (set 0,
     * when it is clpar's) and for the routes; the routes, each with its set (-1: CLBlast) */
    clpar_gemm_config gemm;
    bool gemm_ready;
    struct clpar_gemm_kernels {
        clpar_gemm_config config;
        cl_program program;
        cl_kernel nt, xn, pack_a, pack_b;
    } gemm_kernels[CLPAR_GEMM_MAX_KERNELS];
    cl_mem gemm_scratch; /* gemm_xn's panels of A and B (ops/gemm_kernels.c), grown as needed */
    size_t gemm_scratch_floats;
#define CLPAR_GEMM_MAX_RETIRED 32
    cl_mem gemm_retired[CLPAR_GEMM_MAX_RETIRED]; /* scratch buffers it outgrew, kept */
    int gemm_nretired;
    int gemm_nkernels;
    clpar_gemm_route gemm_routes[CLPAR_GEMM_MAX_ROUTES];
    int gemm_route_kernels[CLPAR_GEMM_MAX_ROUTES];
    int gemm_nroutes;
    /* kernel launches and host waits on this device so far (clpar_device_get_counts);
     * atomic: ranks' threads wait on each other's devices */
    uint64_t launches, waits;
};

/* Seconds on a monotonic clock, for the measurements (peak, tuning, planning). */
double clpar_now_s(void);

/* Counts one kernel launch (a CLBlast call counts as one) or one host wait on d. */
static inline void clpar_count_launch(clpar_device *d) {
    __atomic_fetch_add(&d->launches, 1, __ATOMIC_RELAXED);
}
static inline void clpar_count_wait(clpar_device *d) {
    __atomic_fetch_add(&d->waits, 1, __ATOMIC_RELAXED);
}
/* clWaitForEvents on one event, counted as a host wait on d. */
static inline cl_int clpar_wait_event(clpar_device *d, cl_event e) {
    clpar_count_wait(d);
    return clWaitForEvents(1, &e);
}

/* Sets the thread's detail message and returns status, so errors read
 * `return clpar_error(CLPAR_EIO, "%s: %s", path, strerror(errno));` */
clpar_status clpar_error(clpar_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A configuration field named in a message, for clpar_last_error_renamed:
 * clpar_error(CLPAR_EINVAL, CLPAR_FIELD("dp") " %d is larger than " CLPAR_FIELD("batch") ...) */
#define CLPAR_FIELD(name) "\x01" name "\x02"
/* The last detail message with its field marks, to raise again on another thread:
 * clpar_error(st, "%s", clpar_last_error_raw()). */
const char *clpar_last_error_raw(void);
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

/* Split of total into parts: part i's size and start (the first total % parts get one
 * more); and part i of total in proportion to w (NULL: the even split; each part gets at
 * least one when total >= parts, the rest by largest remainder, ties to the lower index).
 * parts <= CLPAR_SPLIT_MAX. */
#define CLPAR_SPLIT_MAX 256
size_t clpar_split_size(size_t total, size_t parts, size_t i);
size_t clpar_split_start(size_t total, size_t parts, size_t i);
void clpar_split_part(size_t total, int parts, const double *w, int i, size_t *start, size_t *size);

/* The cache (cache.c): the last value stored for key in the runtime's cache file `file`
 * that accept (NULL: any) takes, into value (n bytes); 1 when found. append adds a line
 * (nothing without a cache folder). key_clean makes a key one field of one line. */
int clpar_cache_lookup(const clpar_runtime *rt, const char *file, const char *key,
                       int (*accept)(const char *value, void *user), void *user, char *value,
                       size_t n);
clpar_status clpar_cache_append(const clpar_runtime *rt, const char *file, const char *key,
                                const char *value);
void clpar_cache_key_clean(char *key);

/* An enum's word from a table indexed by value ("unknown" out of range), and back: parse
 * fails with CLPAR_EINVAL naming the configuration field and the words it takes. */
const char *clpar_enum_name(const char *const *names, int n, int value);
clpar_status clpar_enum_parse(const char *const *names, int n, const char *field, const char *text,
                              int *value);
/* Defines TYPE's name and parse functions from the word list WORDS (indexed by value), its
 * errors naming FIELD. */
#define CLPAR_ENUM_WORDS(TYPE, NAME_FN, PARSE_FN, FIELD, WORDS)                                    \
    const char *NAME_FN(TYPE value) {                                                              \
        return clpar_enum_name(WORDS, (int)(sizeof WORDS / sizeof *WORDS), (int)value);            \
    }                                                                                              \
    clpar_status PARSE_FN(const char *text, TYPE *value) {                                         \
        int v;                                                                                     \
        TRY(clpar_enum_parse(WORDS, (int)(sizeof WORDS / sizeof *WORDS), FIELD, text, &v));        \
        *value = (TYPE)v;                                                                          \
        return CLPAR_OK;                                                                           \
    }

/* The embedded kernel sources (generated at build time from kernels/ (.cl files)). */
typedef struct {
    const char *name;
    const char *source;
} clpar_embedded_source;
extern const clpar_embedded_source clpar_embedded_sources[];
extern const int clpar_embedded_source_count;

/* Builds program `name` (kernels/NAME.cl) for device index `dev` in `ctx` with `defines` (may
 * be NULL) added to the options; the caller releases *out. */
clpar_status clpar_runtime_build(clpar_runtime *rt, int dev, cl_context ctx, const char *name,
                                 const char *defines, cl_program *out);
/* Builds or returns the cached program `name` for device index `dev` in `ctx`. */
clpar_status clpar_runtime_program(clpar_runtime *rt, int dev, cl_context ctx, const char *name,
                                   cl_program *out);

/* CLBlastOverrideParameters for the device's single precision (ops/gemm_tune.c). */
clpar_status clpar_gemm_override(clpar_device *d, const char *kernel, size_t n, const char **names,
                                 const size_t *values);

#endif
