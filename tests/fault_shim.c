/* Test-only fault injection (LD_PRELOAD, never linked into clpar): fails the Nth OpenCL or
 * CLBlast call, the Nth allocation or the Nth file write that clpar's library or the tool
 * itself makes (calls from inside PoCL, CLBlast or libc are passed through: their handling
 * of failures is not clpar's).
 *   CLPAR_FAULT=KIND:N      KIND cl, alloc or write; N counts from 1 over that kind
 *   CLPAR_FAULT=KIND:N@FN   ... counting only calls made in FN, an exported function of
 *                           libclpar (stable under code changes elsewhere: regressions)
 *   CLPAR_FAULT_REPORT=FILE at exit, "KIND COUNT" per kind, and "injected KIND N FUNCTION"
 *   CLPAR_FAULT_BACKTRACE=1 the injected call's stack on stderr (finding a fault's caller)
 * The report also counts the OpenCL events and buffers clpar's code created (enqueues with an
 * event, CLBlast's GEMM event, clCreateBuffer, retains) and did not release by exit:
 * "live_events N", "live_buffers N", 0 unless an error path leaks one (or releases twice:
 * negative). LeakSanitizer cannot see those: the OpenCL runtime keeps them reachable.
 * A failed OpenCL call returns CL_OUT_OF_RESOURCES, CLBlast's CLBlastOpenCLOutOfResources,
 * an allocation NULL, a write -1 (or EOF, NULL) with errno ENOSPC: a full disk. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <dlfcn.h>
#include <execinfo.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { K_CL, K_ALLOC, K_WRITE, NKINDS };
static const char *kind_names[NKINDS] = {"cl", "alloc", "write"};
static atomic_long counts[NKINDS];
static long target = -1;
static int target_kind = -1;
static char target_fn[128]; /* empty: calls from anywhere in clpar count */
static atomic_long fn_count;
static const char *injected_fn;
static atomic_long live_events, live_buffers, made_events; /* made: for the report */

/* ---- which code is clpar's: the main program's and libclpar's loaded segments ---- */

static struct { uintptr_t lo, hi; } ranges[32];
static int nranges, have_lib;

static int add_object(struct dl_phdr_info *info, size_t size, void *data) {
    const char *name = info->dlpi_name;
    int main_prog = !name || !*name;
    int lib = name && strstr(name, "libclpar.so") != NULL;
    if (!main_prog && !lib) return 0;
    if (lib) have_lib = 1;
    for (int i = 0; i < info->dlpi_phnum && nranges < 32; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        ranges[nranges].lo = info->dlpi_addr + ph->p_vaddr;
        ranges[nranges].hi = ranges[nranges].lo + ph->p_memsz;
        nranges++;
    }
    return 0;
}

static int from_clpar(void *ret) {
    if (!have_lib) { /* until libclpar is loaded, look again */
        nranges = 0;
        dl_iterate_phdr(add_object, NULL);
    }
    uintptr_t a = (uintptr_t)ret;
    for (int i = 0; i < nranges; i++)
        if (a >= ranges[i].lo && a < ranges[i].hi) return 1;
    return 0;
}

static void configure(void) {
    static int done;
    if (done) return;
    done = 1;
    const char *f = getenv("CLPAR_FAULT");
    if (!f) return;
    for (int k = 0; k < NKINDS; k++) {
        size_t n = strlen(kind_names[k]);
        if (!strncmp(f, kind_names[k], n) && f[n] == ':') {
            target_kind = k;
            target = atol(f + n + 1);
            const char *at = strchr(f, '@');
            if (at) snprintf(target_fn, sizeof target_fn, "%s", at + 1);
        }
    }
}

/* Counts a call of kind k made from ret; 1 when it is the one to fail. */
static int hit(int k, void *ret, const char *fn) {
    int fail = 0; /* nothing below allocates: malloc comes here too */
    if (from_clpar(ret)) {
        configure();
        long n = atomic_fetch_add(&counts[k], 1) + 1;
        if (k == target_kind && target_fn[0]) { /* only calls made in target_fn count */
            Dl_info info;
            n = -1;
            if (dladdr(ret, &info) && info.dli_sname && !strcmp(info.dli_sname, target_fn))
                n = atomic_fetch_add(&fn_count, 1) + 1;
        }
        if (k == target_kind && n == target) {
            fail = 1;
            injected_fn = fn;
            if (getenv("CLPAR_FAULT_BACKTRACE")) {
                void *frames[32];
                backtrace_symbols_fd(frames, backtrace(frames, 32), 2);
            }
        }
    }
    return fail;
}

#define RET __builtin_return_address(0)
#define REAL(name) real_##name
#define RESOLVE(type, name, params)                                                                \
    static type(*real_##name) params;                                                              \
    if (!real_##name) real_##name = (type(*) params)dlsym(RTLD_NEXT, #name)

__attribute__((destructor)) static void report(void) {
    const char *path = getenv("CLPAR_FAULT_REPORT");
    if (!path) return;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return;
    char line[256];
    for (int k = 0; k < NKINDS; k++) {
        int n = snprintf(line, sizeof line, "%s %ld\n", kind_names[k], (long)counts[k]);
        if (write(fd, line, (size_t)n) < 0) break;
    }
    int n = snprintf(line, sizeof line, "events %ld\nlive_events %ld\nlive_buffers %ld\n",
                     (long)made_events, (long)live_events, (long)live_buffers);
    if (target_fn[0] && write(fd, line, (size_t)n) >= 0)
        n = snprintf(line, sizeof line, "in %s %ld\n", target_fn, (long)fn_count);
    if (write(fd, line, (size_t)n) < 0) n = 0;
    if (injected_fn) {
        int n = snprintf(line, sizeof line, "injected %s %ld %s\n", kind_names[target_kind], target,
                         injected_fn);
        if (write(fd, line, (size_t)n) < 0) n = 0;
    }
    close(fd);
}

/* ---- OpenCL: calls that return a status ---- */

#define CL_STATUS(name, params, args)                                                              \
    CL_API_ENTRY cl_int CL_API_CALL name params {                                                  \
        RESOLVE(cl_int, name, params);                                                             \
        if (hit(K_CL, RET, #name)) return CL_OUT_OF_RESOURCES;                                     \
        return REAL(name) args;                                                                    \
    }
/* ... that may return an event (counted when clpar's code asked for one) */
#define CL_ENQUEUE(name, params, args)                                                             \
    CL_API_ENTRY cl_int CL_API_CALL name params {                                                  \
        RESOLVE(cl_int, name, params);                                                             \
        void *ret = RET;                                                                           \
        if (hit(K_CL, ret, #name)) return CL_OUT_OF_RESOURCES;                                     \
        cl_int rc = REAL(name) args;                                                               \
        if (rc == CL_SUCCESS && event && from_clpar(ret))                                          \
            atomic_fetch_add(&live_events, 1), atomic_fetch_add(&made_events, 1);                  \
        return rc;                                                                                 \
    }
/* ... and calls that return an object and report through errcode_ret */
#define CL_OBJECT(type, name, params, args)                                                        \
    CL_API_ENTRY type CL_API_CALL name params {                                                    \
        RESOLVE(type, name, params);                                                               \
        if (hit(K_CL, RET, #name)) {                                                               \
            if (errcode_ret) *errcode_ret = CL_OUT_OF_RESOURCES;                                   \
            return NULL;                                                                           \
        }                                                                                          \
        return REAL(name) args;                                                                    \
    }

typedef void(CL_CALLBACK *build_notify)(cl_program, void *);
typedef void(CL_CALLBACK *context_notify)(const char *, const void *, size_t, void *);

CL_STATUS(clBuildProgram,
          (cl_program program, cl_uint num_devices, const cl_device_id *device_list,
           const char *options, build_notify pfn_notify, void *user_data),
          (program, num_devices, device_list, options, pfn_notify, user_data))
CL_API_ENTRY cl_mem CL_API_CALL clCreateBuffer(cl_context context, cl_mem_flags flags, size_t size,
                                               void *host_ptr, cl_int *errcode_ret) {
    RESOLVE(cl_mem, clCreateBuffer, (cl_context, cl_mem_flags, size_t, void *, cl_int *));
    void *ret = RET;
    if (hit(K_CL, ret, "clCreateBuffer")) {
        if (errcode_ret) *errcode_ret = CL_OUT_OF_RESOURCES;
        return NULL;
    }
    cl_mem m = real_clCreateBuffer(context, flags, size, host_ptr, errcode_ret);
    if (m && from_clpar(ret)) atomic_fetch_add(&live_buffers, 1);
    return m;
}

/* Releases and retains are never failed, only counted. */
#define CL_COUNTED(name, type, counter, delta)                                                     \
    CL_API_ENTRY cl_int CL_API_CALL name(type object) {                                            \
        RESOLVE(cl_int, name, (type));                                                             \
        void *ret = RET;                                                                           \
        cl_int rc = REAL(name)(object);                                                            \
        if (rc == CL_SUCCESS && from_clpar(ret)) atomic_fetch_add(&counter, delta);                \
        return rc;                                                                                 \
    }
CL_COUNTED(clReleaseEvent, cl_event, live_events, -1)
CL_COUNTED(clRetainEvent, cl_event, live_events, 1)
CL_COUNTED(clReleaseMemObject, cl_mem, live_buffers, -1)
CL_OBJECT(cl_command_queue, clCreateCommandQueue,
          (cl_context context, cl_device_id device, cl_command_queue_properties properties,
           cl_int *errcode_ret),
          (context, device, properties, errcode_ret))
CL_OBJECT(cl_context, clCreateContext,
          (const cl_context_properties *properties, cl_uint num_devices,
           const cl_device_id *devices, context_notify pfn_notify, void *user_data,
           cl_int *errcode_ret),
          (properties, num_devices, devices, pfn_notify, user_data, errcode_ret))
CL_OBJECT(cl_kernel, clCreateKernel,
          (cl_program program, const char *kernel_name, cl_int *errcode_ret),
          (program, kernel_name, errcode_ret))
CL_OBJECT(cl_program, clCreateProgramWithSource,
          (cl_context context, cl_uint count, const char **strings, const size_t *lengths,
           cl_int *errcode_ret),
          (context, count, strings, lengths, errcode_ret))
CL_ENQUEUE(clEnqueueBarrierWithWaitList,
           (cl_command_queue q, cl_uint n, const cl_event *wait, cl_event *event),
           (q, n, wait, event))
CL_ENQUEUE(clEnqueueMarkerWithWaitList,
           (cl_command_queue q, cl_uint n, const cl_event *wait, cl_event *event),
           (q, n, wait, event))
CL_ENQUEUE(clEnqueueCopyBuffer,
           (cl_command_queue q, cl_mem src, cl_mem dst, size_t src_offset, size_t dst_offset,
            size_t size, cl_uint n, const cl_event *wait, cl_event *event),
           (q, src, dst, src_offset, dst_offset, size, n, wait, event))
CL_ENQUEUE(clEnqueueFillBuffer,
           (cl_command_queue q, cl_mem buffer, const void *pattern, size_t pattern_size,
            size_t offset, size_t size, cl_uint n, const cl_event *wait, cl_event *event),
           (q, buffer, pattern, pattern_size, offset, size, n, wait, event))
CL_API_ENTRY void *CL_API_CALL clEnqueueMapBuffer(cl_command_queue q, cl_mem buffer,
                                                  cl_bool blocking, cl_map_flags flags,
                                                  size_t offset, size_t size, cl_uint n,
                                                  const cl_event *wait, cl_event *event,
                                                  cl_int *errcode_ret) {
    RESOLVE(void *, clEnqueueMapBuffer,
            (cl_command_queue, cl_mem, cl_bool, cl_map_flags, size_t, size_t, cl_uint,
             const cl_event *, cl_event *, cl_int *));
    void *ret = RET;
    if (hit(K_CL, ret, "clEnqueueMapBuffer")) {
        if (errcode_ret) *errcode_ret = CL_OUT_OF_RESOURCES;
        return NULL;
    }
    void *p = real_clEnqueueMapBuffer(q, buffer, blocking, flags, offset, size, n, wait, event,
                                      errcode_ret);
    if (p && event && from_clpar(ret))
        atomic_fetch_add(&live_events, 1), atomic_fetch_add(&made_events, 1);
    return p;
}
CL_ENQUEUE(clEnqueueNDRangeKernel,
           (cl_command_queue q, cl_kernel kernel, cl_uint dim, const size_t *offset,
            const size_t *global, const size_t *local, cl_uint n, const cl_event *wait,
            cl_event *event),
           (q, kernel, dim, offset, global, local, n, wait, event))
CL_ENQUEUE(clEnqueueReadBuffer,
           (cl_command_queue q, cl_mem buffer, cl_bool blocking, size_t offset, size_t size,
            void *ptr, cl_uint n, const cl_event *wait, cl_event *event),
           (q, buffer, blocking, offset, size, ptr, n, wait, event))
CL_ENQUEUE(clEnqueueWriteBuffer,
           (cl_command_queue q, cl_mem buffer, cl_bool blocking, size_t offset, size_t size,
            const void *ptr, cl_uint n, const cl_event *wait, cl_event *event),
           (q, buffer, blocking, offset, size, ptr, n, wait, event))
CL_ENQUEUE(clEnqueueUnmapMemObject,
           (cl_command_queue q, cl_mem mem, void *mapped, cl_uint n, const cl_event *wait,
            cl_event *event),
           (q, mem, mapped, n, wait, event))
CL_STATUS(clFinish, (cl_command_queue q), (q))
CL_STATUS(clFlush, (cl_command_queue q), (q))
CL_STATUS(clWaitForEvents, (cl_uint n, const cl_event *events), (n, events))
CL_STATUS(clGetDeviceIDs,
          (cl_platform_id platform, cl_device_type type, cl_uint entries, cl_device_id *devices,
           cl_uint *num),
          (platform, type, entries, devices, num))
CL_STATUS(clGetPlatformIDs, (cl_uint entries, cl_platform_id *platforms, cl_uint *num),
          (entries, platforms, num))
#define CL_INFO(name, object_type, info_type)                                                      \
    CL_STATUS(name, (object_type o, info_type what, size_t size, void *value, size_t *size_ret),   \
              (o, what, size, value, size_ret))
CL_INFO(clGetDeviceInfo, cl_device_id, cl_device_info)
CL_INFO(clGetPlatformInfo, cl_platform_id, cl_platform_info)
CL_INFO(clGetEventProfilingInfo, cl_event, cl_profiling_info)
CL_INFO(clGetKernelInfo, cl_kernel, cl_kernel_info)
CL_INFO(clGetMemObjectInfo, cl_mem, cl_mem_info)
CL_STATUS(clGetProgramBuildInfo,
          (cl_program program, cl_device_id device, cl_program_build_info what, size_t size,
           void *value, size_t *size_ret),
          (program, device, what, size, value, size_ret))

/* CLBlast's single-precision GEMM (its C API: clblast_c.h; the enums passed as ints) */
int CLBlastSgemm(int layout, int a_transpose, int b_transpose, size_t m, size_t n, size_t k,
                 float alpha, cl_mem a, size_t a_offset, size_t a_ld, cl_mem b, size_t b_offset,
                 size_t b_ld, float beta, cl_mem c, size_t c_offset, size_t c_ld,
                 cl_command_queue *queue, cl_event *event) {
    RESOLVE(int, CLBlastSgemm,
            (int, int, int, size_t, size_t, size_t, float, cl_mem, size_t, size_t, cl_mem, size_t,
             size_t, float, cl_mem, size_t, size_t, cl_command_queue *, cl_event *));
    if (hit(K_CL, RET, "CLBlastSgemm")) return -5; /* CLBlastOpenCLOutOfResources */
    return real_CLBlastSgemm(layout, a_transpose, b_transpose, m, n, k, alpha, a, a_offset, a_ld, b,
                             b_offset, b_ld, beta, c, c_offset, c_ld, queue, event);
}

/* ---- allocations ---- */

/* dlsym may allocate before the real functions are known: serve it from a static arena */
static char arena[65536];
static size_t arena_used;
static int in_arena(void *p) {
    return (char *)p >= arena && (char *)p < arena + sizeof arena;
}
static void *arena_alloc(size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (arena_used + n > sizeof arena) return NULL;
    void *p = arena + arena_used;
    arena_used += n;
    return p;
}

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int resolving;

static void resolve_alloc(void) {
    if (real_malloc || resolving) return;
    resolving = 1;
    real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    resolving = 0;
}

void *malloc(size_t n) {
    resolve_alloc();
    if (!real_malloc) return arena_alloc(n);
    if (hit(K_ALLOC, RET, "malloc")) {
        errno = ENOMEM;
        return NULL;
    }
    return real_malloc(n);
}

void *calloc(size_t n, size_t size) {
    resolve_alloc();
    if (!real_calloc) return arena_alloc(n * size); /* the arena is zero */
    if (hit(K_ALLOC, RET, "calloc")) {
        errno = ENOMEM;
        return NULL;
    }
    return real_calloc(n, size);
}

void *realloc(void *p, size_t n) {
    resolve_alloc();
    if (in_arena(p)) { /* out of the arena for good */
        void *q = real_malloc ? real_malloc(n) : arena_alloc(n);
        if (q && p) memcpy(q, p, n < sizeof arena ? n : sizeof arena);
        return q;
    }
    if (!real_realloc) return arena_alloc(n);
    if (hit(K_ALLOC, RET, "realloc")) {
        errno = ENOMEM;
        return NULL;
    }
    return real_realloc(p, n);
}

void free(void *p) {
    if (!p || in_arena(p)) return;
    resolve_alloc();
    if (real_free) real_free(p);
}

char *strdup(const char *s) {
    if (hit(K_ALLOC, RET, "strdup")) {
        errno = ENOMEM;
        return NULL;
    }
    size_t n = strlen(s) + 1;
    resolve_alloc();
    char *d = real_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* ---- file writes ---- */

FILE *fopen(const char *path, const char *mode) {
    RESOLVE(FILE *, fopen, (const char *, const char *));
    if (strpbrk(mode, "wa+") && hit(K_WRITE, RET, "fopen")) {
        errno = ENOSPC;
        return NULL;
    }
    return real_fopen(path, mode);
}

size_t fwrite(const void *p, size_t size, size_t n, FILE *f) {
    RESOLVE(size_t, fwrite, (const void *, size_t, size_t, FILE *));
    if (hit(K_WRITE, RET, "fwrite")) {
        errno = ENOSPC;
        /* half of it reaches the file, as when a disk fills in the middle */
        size_t part = real_fwrite(p, size, n / 2, f);
        return part < n ? part : 0;
    }
    return real_fwrite(p, size, n, f);
}

int fprintf(FILE *f, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int r;
    if (f != stderr && f != stdout && hit(K_WRITE, RET, "fprintf")) {
        errno = ENOSPC;
        r = -1;
    } else {
        r = vfprintf(f, fmt, ap);
    }
    va_end(ap);
    return r;
}

int fclose(FILE *f) {
    RESOLVE(int, fclose, (FILE *));
    int fd = fileno(f);
    int writing = fd >= 0 && (fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDONLY;
    if (writing && hit(K_WRITE, RET, "fclose")) {
        real_fclose(f); /* closed, but reported as a full disk's last flush would be */
        errno = ENOSPC;
        return EOF;
    }
    return real_fclose(f);
}

int fsync(int fd) {
    RESOLVE(int, fsync, (int));
    if (hit(K_WRITE, RET, "fsync")) {
        errno = EIO;
        return -1;
    }
    return real_fsync(fd);
}

ssize_t write(int fd, const void *p, size_t n) {
    RESOLVE(ssize_t, write, (int, const void *, size_t));
    if (fd > 2 && hit(K_WRITE, RET, "write")) {
        errno = ENOSPC;
        return -1;
    }
    return real_write(fd, p, n);
}

int rename(const char *from, const char *to) {
    RESOLVE(int, rename, (const char *, const char *));
    if (hit(K_WRITE, RET, "rename")) {
        errno = EIO;
        return -1;
    }
    return real_rename(from, to);
}
