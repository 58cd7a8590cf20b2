/* The status table (name and message per code) and the per-thread detail message. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[1024];

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
    if (status <= -1007 && status >= -1024) return "CLBLAST_CLBLAS_ERROR";
    if (status <= -2039 && status >= -2050) return "CLBLAST_ERROR";
    return "CLPAR_UNKNOWN";
}

const char *clpar_status_message(clpar_status status) {
    const status_entry *e = find_status(status);
    if (e) return e->message;
    if (status <= -1007 && status >= -1024) return "CLBlast: invalid matrix, dimension or size";
    if (status <= -2039 && status >= -2050) return "CLBlast: internal error";
    return "unknown status";
}

const char *clpar_last_error(void) {
    return last_error;
}

clpar_status clpar_error(clpar_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

clpar_status clpar_cl_error(cl_int err, const char *what) {
    return clpar_error(err, "%s failed: %s (%d)", what, clpar_status_name(err), err);
}
