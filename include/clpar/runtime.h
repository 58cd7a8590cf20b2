/* The OpenCL runtime level: every platform and device found, with stable indices; one
 * context per platform shared by its devices; programs built once per context and device;
 * and the device handle a rank works through (its own in-order compute queue, a separate
 * transfer queue, its kernels, and an account of the bytes it has allocated). */
#ifndef CLPAR_RUNTIME_H
#define CLPAR_RUNTIME_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>
#include <stddef.h>
#include <stdint.h>

#include "clpar/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clpar_runtime clpar_runtime;
typedef struct clpar_device clpar_device;

typedef struct {
    int index;    /* stable index: platforms in ICD order, then devices in platform order */
    int platform; /* platform index */
    char platform_name[128];
    char name[128];
    char vendor[128];
    char version[64]; /* CL_DEVICE_VERSION, e.g. "OpenCL 3.0 PoCL ..." */
    cl_device_type type;
    unsigned compute_units;
    unsigned clock_mhz;
    unsigned float_vector_width; /* preferred float vector width; 0 where the device won't say */
    uint64_t global_mem;
    uint64_t max_alloc;
    cl_platform_id platform_id;
    cl_device_id device_id;
} clpar_device_info;

/* What a runtime takes from outside the program. clpar_runtime_config_from_env fills it
 * from the environment, the only place clpar reads environment variables:
 *   XDG_CACHE_HOME, HOME  cache_dir is $XDG_CACHE_HOME/clpar, else $HOME/.cache/clpar
 *   CLPAR_KERNEL_DIR      kernel_dir: load kernels/NAME.cl from there (kernel development)
 *   CLPAR_GEMM_PATH       gemm_path: "clpar" (clpar's kernels, default parameters),
 *                         "direct", "indirect" or "auto" (CLBlast's) on every device,
 *                         over any tuned configuration
 *   CLPAR_IN_PLACE=off    copy_in_place: CPU devices copy gradients and ZeRO's slices through
 *                         the memory processes share, as GPUs do, instead of computing in it
 * (CLPAR_SHARED_MEMORY=off, which keeps processes on one host to messages, is read where the
 * processes join, each voting.) A program may set the fields itself and call
 * clpar_runtime_init_config. */
typedef struct {
    char cache_dir[1024];  /* device measurements and tuned GEMMs; empty: no cache */
    char kernel_dir[1024]; /* empty: the kernels embedded in the library */
    char gemm_path[16];    /* empty: the tuned configuration, else each device's default */
    int copy_in_place;     /* 1: no buffers in memory shared between processes (as above) */
} clpar_runtime_config;
CLPAR_API void clpar_runtime_config_from_env(clpar_runtime_config *cfg);

/* Enumerates every platform and device. *out is owned by the caller; free it with
 * clpar_runtime_free after every clpar_device made from it has been freed.
 * clpar_runtime_init uses the environment's configuration; cfg is copied. */
CLPAR_API clpar_status clpar_runtime_init(clpar_runtime **out);
CLPAR_API clpar_status clpar_runtime_init_config(const clpar_runtime_config *cfg,
                                                 clpar_runtime **out);
CLPAR_API const clpar_runtime_config *clpar_runtime_get_config(const clpar_runtime *rt);
CLPAR_API void clpar_runtime_free(clpar_runtime *rt);

CLPAR_API int clpar_runtime_device_count(const clpar_runtime *rt);
/* Borrowed pointer, valid while rt lives; NULL for an index out of range. */
CLPAR_API const clpar_device_info *clpar_runtime_device_info(const clpar_runtime *rt, int index);
/* "cpu", "gpu", "accelerator" or "other" */
CLPAR_API const char *clpar_device_type_name(cl_device_type type);

/* Parses a device spec: "all", "cpu", "gpu", or a comma list of indices that may repeat
 * ("0,0,0" puts three ranks on device 0). Writes at most cap indices to indices[] and
 * the number selected to *count. An empty spec, an unknown index or a class that matches
 * nothing is CLPAR_ENODEV with a message naming it. */
CLPAR_API clpar_status clpar_runtime_parse_spec(const clpar_runtime *rt, const char *spec,
                                                int *indices, int cap, int *count);

/* Opens device `index` for one rank: creates (or shares) its platform's context, builds
 * (or reuses) clpar's programs for it, and makes two in-order queues with profiling on,
 * one for compute and one for transfers. Several handles may open the same device; each
 * gets its own queues and kernels. *out is owned by the caller: clpar_device_free. */
CLPAR_API clpar_status clpar_device_init(clpar_runtime *rt, int index, clpar_device **out);
/* Waits for both queues, then releases them; buffers allocated through the device must
 * have been released already. */
CLPAR_API void clpar_device_free(clpar_device *d);

CLPAR_API const clpar_device_info *clpar_device_get_info(const clpar_device *d);
/* Kernel launches made on d so far (a CLBlast GEMM counts as one) and host waits on it
 * (blocking reads, writes and finishes, waits on its events): the round trips of a step. */
CLPAR_API void clpar_device_get_counts(const clpar_device *d, uint64_t *launches, uint64_t *waits);
CLPAR_API clpar_runtime *clpar_device_runtime(const clpar_device *d);
CLPAR_API cl_context clpar_device_context(const clpar_device *d);
CLPAR_API cl_command_queue clpar_device_compute_queue(const clpar_device *d);
CLPAR_API cl_command_queue clpar_device_transfer_queue(const clpar_device *d);

/* Allocates a device buffer of `bytes` (read-write). Fails with CLPAR_EDEVMEM, naming the
 * size and the device, when the request exceeds the device's maximum allocation or its
 * remaining global memory. The caller owns *out and returns it with clpar_device_release. */
CLPAR_API clpar_status clpar_device_alloc(clpar_device *d, size_t bytes, cl_mem *out);
/* The same over the caller's host memory (CL_MEM_USE_HOST_PTR), which must stay valid until
 * the buffer is released: devices that compute in host memory (CPUs) then use it in place,
 * so that mapping the buffer copies nothing; others copy it in and out at map and unmap. */
CLPAR_API clpar_status clpar_device_alloc_at(clpar_device *d, void *host, size_t bytes,
                                             cl_mem *out);
/* Releases a buffer from clpar_device_alloc and takes its bytes off the account; NULL is a
 * no-op. */
CLPAR_API void clpar_device_release(clpar_device *d, cl_mem m);
/* Bytes currently allocated through this handle, and apart from them the GEMM workspace:
 * the copies of a product's operands that clpar's GEMM kernels run on (a buffer at least
 * as large as the largest product's A and B so far, padded to whole blocks, grown by
 * doubling, and the ones it outgrew: at most about twice that; kept until the handle is
 * freed; a mesh grows it once, for its rank's products, when it builds the rank:
 * clpar_gemm_reserve). Allocations fail once both together would pass the device's
 * memory. */
CLPAR_API size_t clpar_device_allocated_bytes(const clpar_device *d);
CLPAR_API size_t clpar_device_workspace_bytes(const clpar_device *d);

/* Blocking copies on the compute queue, ordered after all work queued there before. */
CLPAR_API clpar_status clpar_device_write(clpar_device *d, cl_mem dst, size_t offset, size_t bytes,
                                          const void *src);
CLPAR_API clpar_status clpar_device_read(clpar_device *d, void *dst, cl_mem src, size_t offset,
                                         size_t bytes);
/* Zeroes bytes of buf from offset (multiples of 4) on the compute queue, without waiting. */
CLPAR_API clpar_status clpar_device_zero(clpar_device *d, cl_mem buf, size_t offset, size_t bytes);
/* Waits until both queues are empty. */
CLPAR_API clpar_status clpar_device_finish(clpar_device *d);
/* Makes later work on the compute queue wait for `events` (which must belong to this
 * device's context); the events are not released. */
CLPAR_API clpar_status clpar_device_wait_events(clpar_device *d, cl_uint n, const cl_event *events);

#ifdef __cplusplus
}
#endif
#endif
