/* The status table (name and message per code) and the per-thread detail message. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The detail message as raised, configuration fields marked (CLPAR_FIELD), and as shown. */
static _Thread_local char last_raw[1024], last_error[1024], last_renamed[1024];

typedef struct {
    clpar_status code;
    const char *name;
    const char *message;
} status_entry;

#define E(code, msg)                                                                               \
    { code, #code, msg }
static const status_entry status_table[] = {
    E(CLPAR_OK, "success"),
    E(CLPAR_EINVAL, "invalid argument"),
    E(CLPAR_ENOMEM, "out of host memory"),
    E(CLPAR_EIO, "input/output error"),
    E(CLPAR_EFORMAT, "malformed or truncated file"),
    E(CLPAR_ENODEV, "no such device"),
    E(CLPAR_ESHAPE, "tensor shape mismatch"),
    E(CLPAR_EBUILD, "OpenCL program build failed"),
    E(CLPAR_EDEVMEM, "allocation too large for the device"),
    E(CLPAR_EABORTED, "stopped because another rank failed"),
    E(CLPAR_EPROCESS, "an MPI call failed, or another process of the run did"),
    E(CL_DEVICE_NOT_FOUND, "OpenCL: device not found"),
    E(CL_DEVICE_NOT_AVAILABLE, "OpenCL: device not available"),
    E(CL_COMPILER_NOT_AVAILABLE, "OpenCL: compiler not available"),
    E(CL_MEM_OBJECT_ALLOCATION_FAILURE, "OpenCL: memory object allocation failure"),
    E(CL_OUT_OF_RESOURCES, "OpenCL: out of resources"),
    E(CL_OUT_OF_HOST_MEMORY, "OpenCL: out of host memory"),
    E(CL_PROFILING_INFO_NOT_AVAILABLE, "OpenCL: profiling info not available"),
    E(CL_MEM_COPY_OVERLAP, "OpenCL: memory copy overlap"),
    E(CL_BUILD_PROGRAM_FAILURE, "OpenCL: build program failure"),
    E(CL_MAP_FAILURE, "OpenCL: map failure"),
    E(CL_MISALIGNED_SUB_BUFFER_OFFSET, "OpenCL: misaligned sub-buffer offset"),
    E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST, "OpenCL: a waited-on event failed"),
    E(CL_INVALID_VALUE, "OpenCL: invalid value"),
    E(CL_INVALID_DEVICE_TYPE, "OpenCL: invalid device type"),
    E(CL_INVALID_PLATFORM, "OpenCL: invalid platform"),
    E(CL_INVALID_DEVICE, "OpenCL: invalid device"),
    E(CL_INVALID_CONTEXT, "OpenCL: invalid context"),
    E(CL_INVALID_QUEUE_PROPERTIES, "OpenCL: invalid queue properties"),
    E(CL_INVALID_COMMAND_QUEUE, "OpenCL: invalid command queue"),
    E(CL_INVALID_HOST_PTR, "OpenCL: invalid host pointer"),
    E(CL_INVALID_MEM_OBJECT, "OpenCL: invalid memory object"),
    E(CL_INVALID_BINARY, "OpenCL: invalid binary"),
    E(CL_INVALID_BUILD_OPTIONS, "OpenCL: invalid build options"),
    E(CL_INVALID_PROGRAM, "OpenCL: invalid program"),
    E(CL_INVALID_PROGRAM_EXECUTABLE, "OpenCL: invalid program executable"),
    E(CL_INVALID_KERNEL_NAME, "OpenCL: invalid kernel name"),
    E(CL_INVALID_KERNEL, "OpenCL: invalid kernel"),
    E(CL_INVALID_ARG_INDEX, "OpenCL: invalid kernel argument index"),
    E(CL_INVALID_ARG_VALUE, "OpenCL: invalid kernel argument value"),
    E(CL_INVALID_ARG_SIZE, "OpenCL: invalid kernel argument size"),
    E(CL_INVALID_KERNEL_ARGS, "OpenCL: kernel arguments not set"),
    E(CL_INVALID_WORK_DIMENSION, "OpenCL: invalid work dimension"),
    E(CL_INVALID_WORK_GROUP_SIZE, "OpenCL: invalid work-group size"),
    E(CL_INVALID_WORK_ITEM_SIZE, "OpenCL: invalid work-item size"),
    E(CL_INVALID_GLOBAL_OFFSET, "OpenCL: invalid global offset"),
    E(CL_INVALID_EVENT_WAIT_LIST, "OpenCL: invalid event wait list"),
    E(CL_INVALID_EVENT, "OpenCL: invalid event"),
    E(CL_INVALID_OPERATION, "OpenCL: invalid operation"),
    E(CL_INVALID_BUFFER_SIZE, "OpenCL: invalid buffer size"),
    E(CL_INVALID_GLOBAL_WORK_SIZE, "OpenCL: invalid global work size"),
    E(-1001, "OpenCL: no ICD platform found (CL_PLATFORM_NOT_FOUND_KHR)"),
    /* CLBlast's own codes (clblast_c.h), named as CLBlast names them */
    {-1024, "CLBLAST_NOT_IMPLEMENTED", "CLBlast: routine or functionality not implemented yet"},
    {-1022, "CLBLAST_INVALID_MATRIX_A", "CLBlast: matrix A is not a valid OpenCL buffer"},
    {-1021, "CLBLAST_INVALID_MATRIX_B", "CLBlast: matrix B is not a valid OpenCL buffer"},
    {-1020, "CLBLAST_INVALID_MATRIX_C", "CLBlast: matrix C is not a valid OpenCL buffer"},
    {-1019, "CLBLAST_INVALID_VECTOR_X", "CLBlast: vector X is not a valid OpenCL buffer"},
    {-1018, "CLBLAST_INVALID_VECTOR_Y", "CLBlast: vector Y is not a valid OpenCL buffer"},
    {-1017, "CLBLAST_INVALID_DIMENSION",
     "CLBlast: dimensions M, N, and K have to be larger than zero"},
    {-1016, "CLBLAST_INVALID_LEAD_DIM_A",
     "CLBlast: leading dimension of A is smaller than the matrix's first dimension"},
    {-1015, "CLBLAST_INVALID_LEAD_DIM_B",
     "CLBlast: leading dimension of B is smaller than the matrix's first dimension"},
    {-1014, "CLBLAST_INVALID_LEAD_DIM_C",
     "CLBlast: leading dimension of C is smaller than the matrix's first dimension"},
    {-1013, "CLBLAST_INVALID_INCREMENT_X", "CLBlast: increment of vector X cannot be zero"},
    {-1012, "CLBLAST_INVALID_INCREMENT_Y", "CLBlast: increment of vector Y cannot be zero"},
    {-1011, "CLBLAST_INSUFFICIENT_MEMORY_A", "CLBlast: matrix A's OpenCL buffer is too small"},
    {-1010, "CLBLAST_INSUFFICIENT_MEMORY_B", "CLBlast: matrix B's OpenCL buffer is too small"},
    {-1009, "CLBLAST_INSUFFICIENT_MEMORY_C", "CLBlast: matrix C's OpenCL buffer is too small"},
    {-1008, "CLBLAST_INSUFFICIENT_MEMORY_X", "CLBlast: vector X's OpenCL buffer is too small"},
    {-1007, "CLBLAST_INSUFFICIENT_MEMORY_Y", "CLBlast: vector Y's OpenCL buffer is too small"},
    {-2050, "CLBLAST_INSUFFICIENT_MEMORY_TEMP",
     "CLBlast: temporary buffer provided to GEMM routine is too small"},
    {-2049, "CLBLAST_INVALID_BATCH_COUNT", "CLBlast: the batch count needs to be positive"},
    {-2048, "CLBLAST_INVALID_OVERRIDE_KERNEL",
     "CLBlast: trying to override parameters for an invalid kernel"},
    {-2047, "CLBLAST_MISSING_OVERRIDE_PARAMETER",
     "CLBlast: missing override parameter(s) for the target kernel"},
    {-2046, "CLBLAST_INVALID_LOCAL_MEM_USAGE",
     "CLBlast: not enough local memory available on this device"},
    {-2045, "CLBLAST_NO_HALF_PRECISION",
     "CLBlast: half precision (16-bits) not supported by the device"},
    {-2044, "CLBLAST_NO_DOUBLE_PRECISION",
     "CLBlast: double precision (64-bits) not supported by the device"},
    {-2043, "CLBLAST_INVALID_VECTOR_SCALAR",
     "CLBlast: the unit-sized vector is not a valid OpenCL buffer"},
    {-2042, "CLBLAST_INSUFFICIENT_MEMORY_SCALAR",
     "CLBlast: the unit-sized vector's OpenCL buffer is too small"},
    {-2041, "CLBLAST_DATABASE_ERROR",
     "CLBlast: entry for the device was not found in the database"},
    {-2040, "CLBLAST_UNKNOWN_ERROR",
     "CLBlast: a catch-all error code representing an unspecified error"},
    {-2039, "CLBLAST_UNEXPECTED_ERROR",
     "CLBlast: a catch-all error code representing an unexpected exception"},
};
#undef E

static const status_entry *find_status(clpar_status status) {
    for (size_t i = 0; i < sizeof status_table / sizeof status_table[0]; i++)
        if (status_table[i].code == status) return &status_table[i];
    return NULL;
}

const char *clpar_status_name(clpar_status status) {
    const status_entry *e = find_status(status);
    if (e) return e->name;
    if (status <= -1000 && status >= -1024) return "CLBLAST_ERROR";
    if (status <= -2000 && status >= -2099) return "CLBLAST_ERROR";
    return "CLPAR_UNKNOWN";
}

const char *clpar_status_message(clpar_status status) {
    const status_entry *e = find_status(status);
    if (e) return e->message;
    /* codes a later CLBlast may add inside its two ranges */
    if (status <= -1000 && status >= -1024) return "CLBlast: invalid argument";
    if (status <= -2000 && status >= -2099) return "CLBlast: error";
    return "unknown status";
}

const char *clpar_last_error(void) {
    return last_error;
}

/* Writes raw into out (n bytes) with each marked field replaced by rename's word for it. */
static void expand_fields(char *out, size_t n, const char *raw, clpar_field_name_fn rename,
                          void *user) {
    size_t used = 0;
    for (const char *p = raw; *p && used + 1 < n;) {
        const char *end = *p == '\x01' ? strchr(p, '\x02') : NULL;
        if (!end) {
            out[used++] = *p++;
            continue;
        }
        char field[64];
        snprintf(field, sizeof field, "%.*s", (int)(end - p - 1), p + 1);
        const char *word = rename ? rename(field, user) : NULL;
        used += (size_t)snprintf(out + used, n - used, "%s", word ? word : field);
        if (used >= n) used = n - 1;
        p = end + 1;
    }
    out[used] = 0;
}

const char *clpar_last_error_raw(void) {
    return last_raw;
}

const char *clpar_last_error_renamed(clpar_field_name_fn rename, void *user) {
    expand_fields(last_renamed, sizeof last_renamed, last_raw, rename, user);
    return last_renamed;
}

clpar_status clpar_error(clpar_status status, const char *fmt, ...) {
    char raw[sizeof last_raw];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap); /* fmt's arguments may be the last message itself */
    va_end(ap);
    memcpy(last_raw, raw, sizeof raw);
    expand_fields(last_error, sizeof last_error, last_raw, NULL, NULL);
    return status;
}

clpar_status clpar_cl_error(cl_int err, const char *what) {
    return clpar_error(err, "%s failed: %s (%d)", what, clpar_status_name(err), err);
}
