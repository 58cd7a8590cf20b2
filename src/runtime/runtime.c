/* Enumeration of platforms and devices, per-platform contexts, device specs, and the
 * per-(context, device) program cache. */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *program_names[CLPAR_PROGRAM_COUNT] = {"elementwise", "loss", "optim",
                                                         "transformer"};

static void get_string(cl_device_id d, cl_device_info what, char *buf, size_t n) {
    char tmp[1024] = "";
    if (clGetDeviceInfo(d, what, sizeof tmp, tmp, NULL) != CL_SUCCESS)
        snprintf(tmp, sizeof tmp, "?");
    tmp[sizeof tmp - 1] = 0;
    snprintf(buf, n, "%s", tmp);
}

double clpar_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

clpar_status clpar_runtime_init(clpar_runtime **out) {
    clpar_runtime_config cfg;
    clpar_runtime_config_from_env(&cfg);
    return clpar_runtime_init_config(&cfg, out);
}

clpar_status clpar_runtime_init_config(const clpar_runtime_config *cfg, clpar_runtime **out) {
    *out = NULL;
    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &np);
    if (err == -1001 || np == 0)
        return clpar_error(CLPAR_ENODEV, "no OpenCL platform found (is an ICD such as "
                                         "pocl-opencl-icd installed?)");
    CL_CHECK(err, "clGetPlatformIDs");
    cl_platform_id *plats = calloc(np, sizeof *plats);
    clpar_runtime *rt = calloc(1, sizeof *rt);
    if (!plats || !rt) {
        free(plats);
        free(rt);
        return clpar_error(CLPAR_ENOMEM, "out of host memory enumerating devices");
    }
    err = clGetPlatformIDs(np, plats, NULL);
    if (err != CL_SUCCESS) {
        free(plats);
        free(rt);
        return clpar_cl_error(err, "clGetPlatformIDs");
    }
    rt->cfg = *cfg;
    rt->nplatforms = (int)np;
    rt->platforms = calloc(np, sizeof *rt->platforms);
    for (cl_uint p = 0; p < np && rt->platforms; p++) {
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || !nd)
            continue;
        cl_device_id *ids = calloc(nd, sizeof *ids);
        clpar_device_info *grown =
            realloc(rt->devices, (size_t)(rt->ndevices + nd) * sizeof *rt->devices);
        if (!ids || !grown) {
            free(ids);
            if (grown) rt->devices = grown;
            break;
        }
        rt->devices = grown;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, ids, NULL) != CL_SUCCESS) nd = 0;
        char pname[128] = "?";
        clGetPlatformInfo(plats[p], CL_PLATFORM_NAME, sizeof pname, pname, NULL);
        pname[sizeof pname - 1] = 0;
        for (cl_uint i = 0; i < nd; i++) {
            clpar_device_info *di = &rt->devices[rt->ndevices];
            memset(di, 0, sizeof *di);
            di->index = rt->ndevices;
            di->platform = (int)p;
            di->platform_id = plats[p];
            di->device_id = ids[i];
            snprintf(di->platform_name, sizeof di->platform_name, "%s", pname);
            get_string(ids[i], CL_DEVICE_NAME, di->name, sizeof di->name);
            get_string(ids[i], CL_DEVICE_VENDOR, di->vendor, sizeof di->vendor);
            get_string(ids[i], CL_DEVICE_VERSION, di->version, sizeof di->version);
            cl_uint u = 0;
            cl_ulong ul = 0;
            clGetDeviceInfo(ids[i], CL_DEVICE_TYPE, sizeof di->type, &di->type, NULL);
            if (clGetDeviceInfo(ids[i], CL_DEVICE_MAX_COMPUTE_UNITS, sizeof u, &u, NULL) == 0)
                di->compute_units = u;
            u = 0;
            if (clGetDeviceInfo(ids[i], CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof u, &u, NULL) == 0)
                di->clock_mhz = u;
            u = 0;
            if (clGetDeviceInfo(ids[i], CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT, sizeof u, &u,
                                NULL) == 0)
                di->float_vector_width = u;
            if (clGetDeviceInfo(ids[i], CL_DEVICE_GLOBAL_MEM_SIZE, sizeof ul, &ul, NULL) == 0)
                di->global_mem = ul;
            ul = 0;
            if (clGetDeviceInfo(ids[i], CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof ul, &ul, NULL) == 0)
                di->max_alloc = ul;
            rt->ndevices++;
        }
        free(ids);
    }
    free(plats);
    if (!rt->platforms) {
        clpar_runtime_free(rt);
        return clpar_error(CLPAR_ENOMEM, "out of host memory enumerating devices");
    }
    if (rt->ndevices == 0) {
        clpar_runtime_free(rt);
        return clpar_error(CLPAR_ENODEV, "OpenCL platforms found, but no devices");
    }
    rt->programs = calloc((size_t)rt->ndevices * CLPAR_PROGRAM_COUNT, sizeof *rt->programs);
    if (!rt->programs) {
        clpar_runtime_free(rt);
        return clpar_error(CLPAR_ENOMEM, "out of host memory enumerating devices");
    }
    *out = rt;
    return CLPAR_OK;
}

void clpar_runtime_free(clpar_runtime *rt) {
    if (!rt) return;
    if (rt->programs)
        for (int i = 0; i < rt->ndevices * CLPAR_PROGRAM_COUNT; i++)
            if (rt->programs[i]) clReleaseProgram(rt->programs[i]);
    if (rt->platforms)
        for (int p = 0; p < rt->nplatforms; p++)
            if (rt->platforms[p].context) clReleaseContext(rt->platforms[p].context);
    free(rt->programs);
    free(rt->platforms);
    free(rt->devices);
    free(rt);
}

int clpar_runtime_device_count(const clpar_runtime *rt) {
    return rt->ndevices;
}

const clpar_device_info *clpar_runtime_device_info(const clpar_runtime *rt, int index) {
    if (index < 0 || index >= rt->ndevices) return NULL;
    return &rt->devices[index];
}

const char *clpar_device_type_name(cl_device_type type) {
    if (type & CL_DEVICE_TYPE_GPU) return "gpu";
    if (type & CL_DEVICE_TYPE_CPU) return "cpu";
    if (type & CL_DEVICE_TYPE_ACCELERATOR) return "accelerator";
    return "other";
}

static clpar_status select_type(const clpar_runtime *rt, cl_device_type type, const char *spec,
                                int *indices, int cap, int *count) {
    int n = 0;
    for (int i = 0; i < rt->ndevices; i++) {
        if (!(rt->devices[i].type & type)) continue;
        if (n < cap) indices[n] = i;
        n++;
    }
    if (n == 0)
        return clpar_error(CLPAR_ENODEV, "device spec '%s' selects no device (%d found)", spec,
                           rt->ndevices);
    *count = n < cap ? n : cap;
    return CLPAR_OK;
}

clpar_status clpar_runtime_parse_spec(const clpar_runtime *rt, const char *spec, int *indices,
                                      int cap, int *count) {
    *count = 0;
    if (!spec || !*spec) return clpar_error(CLPAR_ENODEV, "empty device spec");
    if (!strcmp(spec, "all")) return select_type(rt, CL_DEVICE_TYPE_ALL, spec, indices, cap, count);
    if (!strcmp(spec, "gpu")) return select_type(rt, CL_DEVICE_TYPE_GPU, spec, indices, cap, count);
    if (!strcmp(spec, "cpu")) return select_type(rt, CL_DEVICE_TYPE_CPU, spec, indices, cap, count);
    if (!strcmp(spec, "accelerator"))
        return select_type(rt, CL_DEVICE_TYPE_ACCELERATOR, spec, indices, cap, count);
    int n = 0;
    const char *p = spec;
    for (;;) {
        if (!isdigit((unsigned char)*p))
            return clpar_error(CLPAR_ENODEV,
                               "device spec '%s': expected 'all', 'cpu', 'gpu' or a comma "
                               "list of device indices",
                               spec);
        errno = 0;
        char *end;
        long v = strtol(p, &end, 10);
        if (errno || v >= rt->ndevices)
            return clpar_error(CLPAR_ENODEV,
                               "device spec '%s': no device %s%ld (%d found; see clpar-devices)",
                               spec, errno ? ">" : "", v, rt->ndevices);
        if (n >= cap)
            return clpar_error(CLPAR_EINVAL, "device spec '%s': more than %d entries", spec, cap);
        indices[n++] = (int)v;
        p = end;
        if (!*p) break;
        if (*p != ',' || !p[1])
            return clpar_error(CLPAR_ENODEV, "device spec '%s': malformed near '%s'", spec, p);
        p++;
    }
    *count = n;
    return CLPAR_OK;
}

static const char *find_source(const clpar_runtime *rt, const char *name, char **owned) {
    *owned = NULL;
    const char *dir = rt->cfg.kernel_dir;
    if (dir && *dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.cl", dir, name);
        FILE *f = fopen(path, "rb");
        if (f) {
            fseek(f, 0, SEEK_END);
            long len = ftell(f);
            fseek(f, 0, SEEK_SET);
            char *buf = len >= 0 ? malloc((size_t)len + 1) : NULL;
            if (buf && fread(buf, 1, (size_t)len, f) == (size_t)len) {
                buf[len] = 0;
                *owned = buf;
            } else {
                free(buf);
            }
            fclose(f);
            if (*owned) return *owned;
        }
    }
    for (int i = 0; i < clpar_embedded_source_count; i++)
        if (!strcmp(clpar_embedded_sources[i].name, name)) return clpar_embedded_sources[i].source;
    return NULL;
}

clpar_status clpar_runtime_build(clpar_runtime *rt, int dev, cl_context ctx, const char *name,
                                 const char *defines, cl_program *out) {
    char *owned;
    const char *src = find_source(rt, name, &owned);
    if (!src) return clpar_error(CLPAR_EBUILD, "kernel source '%s.cl' not found", name);
    cl_int err;
    cl_program prog = clCreateProgramWithSource(ctx, 1, &src, NULL, &err);
    free(owned);
    CL_CHECK(err, "clCreateProgramWithSource");
    cl_device_id did = rt->devices[dev].device_id;
    /* Exact float math on purpose: results must match the host reference and other devices. */
    cl_device_fp_config fp = 0;
    clGetDeviceInfo(did, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, NULL);
    char opts[512];
    snprintf(opts, sizeof opts, "-cl-std=CL1.2%s %s",
             (fp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) ? " -cl-fp32-correctly-rounded-divide-sqrt"
                                                        : "",
             defines ? defines : "");
    err = clBuildProgram(prog, 1, &did, opts, NULL, NULL);
    if (err != CL_SUCCESS) {
        char log[2048] = "";
        clGetProgramBuildInfo(prog, did, CL_PROGRAM_BUILD_LOG, sizeof log, log, NULL);
        log[sizeof log - 1] = 0;
        for (char *c = log; *c; c++)
            if (*c == '\n') *c = ' ';
        clReleaseProgram(prog);
        return clpar_error(CLPAR_EBUILD, "building %s.cl for device %d (%s): %s", name, dev,
                           rt->devices[dev].name, log);
    }
    *out = prog;
    return CLPAR_OK;
}

clpar_status clpar_runtime_program(clpar_runtime *rt, int dev, cl_context ctx, const char *name,
                                   cl_program *out) {
    int pi = -1;
    for (int i = 0; i < CLPAR_PROGRAM_COUNT; i++)
        if (!strcmp(program_names[i], name)) pi = i;
    if (pi < 0) return clpar_error(CLPAR_EINVAL, "unknown program '%s'", name);
    cl_program *slot = &rt->programs[dev * CLPAR_PROGRAM_COUNT + pi];
    if (!*slot) TRY(clpar_runtime_build(rt, dev, ctx, name, NULL, slot));
    *out = *slot;
    return CLPAR_OK;
}
