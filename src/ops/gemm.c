/* GEMMs through clpar's kernels or CLBlast, the choice between them, and the warm-up that
 * compiles and first runs every kernel. */
#include "launch.h"

#include <clblast_c.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* CLBlast 1.5 is not safe when two threads compile its kernels at once (seen as
 * std::bad_alloc and crashes), and on some drivers its calls run the GEMM before they
 * return, so a lock on every call would serialize the devices. Calls are locked until the
 * device handle has been warmed up (clpar_op_warmup), which compiles everything once. */
static pthread_mutex_t clblast_lock =
    PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP; /* warm-up calls gemm */

static clpar_status choose_gemm_path(clpar_device *d);
static clpar_status gemm_prepare(clpar_device *d);

clpar_status clpar_op_linear(clpar_device *d, size_t rows, size_t out, size_t in, cl_mem x,
                             cl_mem w, size_t w_off, cl_mem bias, size_t bias_off, cl_mem y,
                             cl_event *event) {
    if (rows == 0 || out == 0) return CLPAR_OK;
    if (!d->gemm_ready) TRY(gemm_prepare(d));
    int set = in > 0 ? clpar_gemm_set_of(d, CLPAR_NO_TRANS, CLPAR_TRANS, rows, out, in) : -1;
    if (set >= 0)
        return clpar_gemm_kernels_run(d, set, CLPAR_NO_TRANS, rows, out, in, 1.0f, x, 0, in, w,
                                      w_off, in, 0.0f, y, 0, out, 1, bias, bias_off, event);
    TRY(clpar_op_gemm(d, CLPAR_NO_TRANS, CLPAR_TRANS, rows, out, in, 1.0f, x, 0, in, w, w_off, in,
                      0.0f, y, 0, out, bias ? NULL : event));
    return bias ? clpar_op_bias_add(d, y, bias, bias_off, rows, out, event) : CLPAR_OK;
}

/* The device's configuration, chosen once (under the lock: it may build kernels). */
static clpar_status gemm_prepare(clpar_device *d) {
    pthread_mutex_lock(&clblast_lock);
    clpar_status st = d->gemm_ready ? CLPAR_OK : choose_gemm_path(d);
    pthread_mutex_unlock(&clblast_lock);
    return st;
}

int clpar_gemm_set_of(const clpar_device *d, clpar_transpose ta, clpar_transpose tb, size_t m,
                      size_t n, size_t k) {
    if (ta && tb) return -1;
    for (int i = 0; i < d->gemm_nroutes; i++) {
        const clpar_gemm_shape *s = &d->gemm_routes[i].shape;
        if (s->trans_a == ta && s->trans_b == tb && s->m == m && s->n == n && s->k == k)
            return d->gemm_route_kernels[i];
    }
    return d->gemm.path == CLPAR_GEMM_CLPAR ? 0 : -1;
}

clpar_status clpar_gemm_route_of(clpar_device *d, const clpar_gemm_shape *s, clpar_gemm_config *c) {
    if (!d->gemm_ready) TRY(gemm_prepare(d));
    int set = !s ? (d->gemm.path == CLPAR_GEMM_CLPAR ? 0 : -1)
                 : clpar_gemm_set_of(d, s->trans_a, s->trans_b, s->m, s->n, s->k);
    if (set >= 0)
        *c = d->gemm_kernels[set].config;
    else if (d->gemm.path == CLPAR_GEMM_CLPAR)
        clpar_gemm_fallback(d, c);
    else
        *c = d->gemm;
    return CLPAR_OK;
}

/* CLBlast's SGEMM, locked until the device is warm (see above). */
static clpar_status clblast_gemm(clpar_device *d, clpar_transpose trans_a, clpar_transpose trans_b,
                                 size_t m, size_t n, size_t k, float alpha, cl_mem a, size_t a_off,
                                 size_t lda, cl_mem b, size_t b_off, size_t ldb, float beta,
                                 cl_mem c, size_t c_off, size_t ldc, cl_event *event) {
    cl_event ev = NULL;
    clpar_count_launch(d);
    int locked = !d->clblast_warm;
    if (locked) pthread_mutex_lock(&clblast_lock);
    CLBlastStatusCode s =
        CLBlastSgemm(CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                     trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a, a_off,
                     lda, b, b_off, ldb, beta, c, c_off, ldc, &d->compute, event ? &ev : NULL);
    if (locked) pthread_mutex_unlock(&clblast_lock);
    if (s != CLBlastSuccess)
        return clpar_error((clpar_status)s,
                           "CLBlastSgemm(%zux%zux%zu) on device %d (%s) failed: %s (%d)", m, n, k,
                           d->info->index, d->info->name, clpar_status_name(s), (int)s);
    if (event) *event = ev;
    return CLPAR_OK;
}

clpar_status clpar_op_gemm(clpar_device *d, clpar_transpose trans_a, clpar_transpose trans_b,
                           size_t m, size_t n, size_t k, float alpha, cl_mem a, size_t a_off,
                           size_t lda, cl_mem b, size_t b_off, size_t ldb, float beta, cl_mem c,
                           size_t c_off, size_t ldc, cl_event *event) {
    if (m == 0 || n == 0) return CLPAR_OK;
    if (k == 0) /* CLBlast rejects k = 0; C = beta C is all that is left */
        return beta == 1.0f ? CLPAR_OK : clpar_op_scale(d, c, c_off, beta, m * n, event);
    if (!d->gemm_ready) TRY(gemm_prepare(d));
    int set = clpar_gemm_set_of(d, trans_a, trans_b, m, n, k);
    if (set >= 0)
        return clpar_gemm_kernels_run(d, set, trans_a, m, n, k, alpha, a, a_off, lda, b, b_off, ldb,
                                      beta, c, c_off, ldc, trans_b == CLPAR_TRANS, NULL, 0, event);
    return clblast_gemm(d, trans_a, trans_b, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta, c,
                        c_off, ldc, event);
}

/* CLBlast picks its direct GEMM kernel for small products and the indirect one (pad,
 * transpose, then a tiled kernel) for large ones, with parameters tuned per device; PoCL's
 * CPU devices are not in its database, and on them both run at a few percent of the device's
 * peak (clpar-devices --bench). There clpar uses its own kernels (kernels/gemm.cl) with
 * parameters measured on PoCL: for the outer-product kernel, which every product runs (TB 1:
 * NT products too, on copies of A and B^T, but for C narrower than half a panel), blocks of 4 rows
 * by 4 vectors of 16 on devices that prefer 16-wide floats (PoCL on AVX-512) and of 6 rows by 2
 * vectors of 8 elsewhere (12 of AVX2's 16 registers); work-groups of 8 along C's rows; no panels
 * (panels of 8 block rows gained 10-20% on a GPT's 1024-row products but lost half on the default
 * MLP's 128-row ones; clpar-devices --tune tries them). On this project's AVX-512 machine a step's
 * GEMMs of bench/gpt.sh's GPT ran 3.5x and the default MLP's 1.2-1.7x faster than with the kernels
 * before the copies (NT products as dot products), clpar-devices --bench; several times CLBlast's
 * speed on every product of a layer (bench/gemm.sh). CLBlast, for what clpar's kernels do not cover
 * (both operands transposed), runs its direct kernel at every size with 32x32 tiles, 4x4 threads
 * and 8-wide vectors, measured 2-2.5x faster than its defaults on PoCL. A configuration tuned for
 * the device (`clpar-devices --tune`, ops/gemm_tune.c), with the shapes it routes to other kernels
 * (clpar_gemm_set_of), takes precedence; CLPAR_GEMM_PATH=clpar (default parameters), direct,
 * indirect or auto (CLBlast's own choice and parameters) over both. Must run before CLBlast first
 * compiles for the device. */
static const clpar_gemm_config clpar_kernels_wide = {CLPAR_GEMM_CLPAR,
                                                     {4, 4, 4, 4, 16, 8, 0, 0, 1}},
                               clpar_kernels_narrow = {CLPAR_GEMM_CLPAR,
                                                       {4, 4, 6, 2, 8, 8, 0, 0, 1}};

/* clpar's default parameters for d: by its preferred float vector width (narrow where the
 * device does not say) */
static clpar_gemm_config clpar_kernels_default(const clpar_device_info *info) {
    return info->float_vector_width >= 16 ? clpar_kernels_wide : clpar_kernels_narrow;
}

static clpar_gemm_config default_of(const clpar_device_info *info) {
    if (info->type & CL_DEVICE_TYPE_CPU) return clpar_kernels_default(info);
    return (clpar_gemm_config){CLPAR_GEMM_AUTO, {0}};
}

void clpar_gemm_default(const clpar_device *d, clpar_gemm_config *c) {
    *c = default_of(d->info);
}

clpar_status gemm_plan_tuning(const clpar_runtime *rt, const clpar_device_info *info,
                              clpar_gemm_tuning *t) {
    const char *env = rt->cfg.gemm_path;
    memset(t, 0, sizeof *t);
    if (!env || !*env) {
        if (!clpar_gemm_cache_lookup(rt, info, t)) t->base = default_of(info);
    } else if (!strcmp(env, "clpar")) {
        t->base = clpar_kernels_default(info);
    } else if (!strcmp(env, "direct") || !strcmp(env, "indirect") || !strcmp(env, "auto")) {
        t->base = (clpar_gemm_config){CLPAR_GEMM_AUTO, {0}}; /* CLBlast's, with its thresholds */
    } else {
        return clpar_error(CLPAR_EINVAL,
                           "CLPAR_GEMM_PATH=%s: expected clpar, direct, indirect or auto", env);
    }
    return CLPAR_OK;
}

/* The runtime's gemm_path (CLPAR_GEMM_PATH), else the tuned configuration in the cache,
 * else the default. */
static clpar_status choose_gemm_path(clpar_device *d) {
    const char *env = d->rt->cfg.gemm_path;
    clpar_gemm_tuning t;
    TRY(gemm_plan_tuning(d->rt, d->info, &t));
    if (env && (!strcmp(env, "direct") || !strcmp(env, "indirect"))) {
        /* CLBlast's path with its own parameters: only the threshold moves */
        const char *threshold_name[] = {"XGEMM_MIN_INDIRECT_SIZE"};
        size_t threshold = env[0] == 'i' ? 1 : 65536; /* indirect from m n k >= threshold^3 */
        TRY(clpar_gemm_override(d, "GemmRoutine", 1, threshold_name, &threshold));
        d->gemm = t.base;
        d->gemm_ready = true;
        return CLPAR_OK;
    }
    return clpar_gemm_apply_tuning(d, &t, 0);
}

/* Runs every kernel once, with the lock held: besides CLBlast's compiles, PoCL 3.1 creates a
 * work-group function the first time a kernel runs, and two threads doing that at once for
 * the same kernel leave its cache inconsistent.
 *
 * PoCL's CPU drivers also keep one loaded work-group function per kernel and grid width,
 * adding one whenever a launch is wider than any before, but release them by kernel alone,
 * so two threads running one kernel through two such entries decrement the wrong count
 * (the assertion in pocl_release_dlhandle_cache that aborts the process). On CPU devices
 * every kernel's first launch is therefore the widest the process will make: clpar's
 * kernels at their device's max_grid (larger counts go in several launches, all without a
 * global offset, which PoCL would specialize on as well), and GEMMs of
 * 2^15 rows (CLBlast's grid is at most as wide as C's rows or columns, so this covers
 * products up to 2^15 rows and columns and stays below PoCL's 65535-wide small-grid
 * limit). */
#define WARM_ROWS ((size_t)1 << 15)
int gemm_warm_shapes(int cpu, clpar_gemm_shape *out) {
    int n = 0;
    for (int t = 0; t < 4 && cpu; t++) /* the widest launches */
        out[n++] = (clpar_gemm_shape){t & 1, t >> 1, WARM_ROWS, 1, 1};
    /* every transpose pair the layers use, at sizes that need padding and that do not */
    const size_t sizes[3] = {4, 33, 64};
    for (int i = 0; i < 3; i++)
        for (int t = 0; t < 4; t++)
            out[n++] = (clpar_gemm_shape){t & 1, t >> 1, sizes[i], sizes[i], sizes[i]};
    return n;
}

static clpar_status run_every_kernel(clpar_device *d, cl_mem buf, cl_mem ints, cl_mem wide) {
    clpar_sgd_params sgd = {0.1f, 0.9f, 0.0f, 0.0f, 0};
    clpar_adam_params adam = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 0};
    /* CLBlast runs every transpose pair too when a route sends a shape to it */
    int clblast_too = 0;
    for (int i = 0; i < d->gemm_nroutes; i++)
        clblast_too |= d->gemm_route_kernels[i] < 0;
    for (int pass = 0; pass < 1 + clblast_too; pass++) {
        clpar_status (*gemm)(clpar_device *, clpar_transpose, clpar_transpose, size_t, size_t,
                             size_t, float, cl_mem, size_t, size_t, cl_mem, size_t, size_t, float,
                             cl_mem, size_t, size_t, cl_event *) =
            pass ? clblast_gemm : clpar_op_gemm;
        if (wide) d->warm_grid = d->max_grid;
        clpar_gemm_shape s[GEMM_WARM_SHAPES];
        int ns = gemm_warm_shapes(wide != NULL, s);
        for (int i = 0; i < ns; i++) {
            clpar_transpose ta = s[i].trans_a, tb = s[i].trans_b;
            size_t n = s[i].m;
            if (n == WARM_ROWS) /* (WARM_ROWS, 1) = (WARM_ROWS, 1) (1, 1) */
                TRY(gemm(d, ta, tb, WARM_ROWS, 1, 1, 1.0f, wide, 0, ta ? WARM_ROWS : 1, wide,
                         WARM_ROWS, 1, 0.0f, wide, WARM_ROWS + 1, 1, NULL));
            else
                TRY(gemm(d, ta, tb, n, n, n, 1.0f, buf, 0, n, buf, n * n, n, 0.0f, buf, 2 * n * n,
                         n, NULL));
        }
    }
    TRY(clpar_op_bias_add(d, buf, buf, 0, 2, 4, NULL));
    TRY(clpar_op_relu_forward(d, buf, buf, 8, NULL));
    TRY(clpar_op_relu_backward(d, buf, buf, buf, 8, NULL));
    TRY(clpar_op_colsum(d, buf, 48, buf, 0, 4, 2, 4, 1.0f, NULL));
    TRY(clpar_op_scale(d, buf, 0, 1.0f, 8, NULL));
    TRY(clpar_op_axpy(d, buf, 0, 0.0f, buf, 8, 8, NULL));
    TRY(clpar_op_xent_forward(d, buf, buf, ints, 2, 4, NULL));
    TRY(clpar_op_xent_backward(d, buf, buf, ints, 2, 4, 1.0f, NULL));
    TRY(clpar_op_mse_forward(d, buf, buf, buf, 2, 4, NULL));
    TRY(clpar_op_mse_backward(d, buf, buf, buf, 8, 1.0f, NULL));
    TRY(clpar_op_sgd_step(d, buf, buf, buf, 8, &sgd, 1, NULL));
    TRY(clpar_op_adam_step(d, buf, buf, buf, buf, 8, &adam, 1, NULL));
    /* the transformer's kernels; their data (zeros, aliased) does not matter */
    TRY(clpar_op_layernorm_forward(d, buf, buf, buf, buf, buf, 0, 0, 2, 4, NULL));
    TRY(clpar_op_layernorm_backward(d, buf, buf, buf, buf, buf, buf, 0, 2, 4, false, NULL));
    TRY(clpar_op_layernorm_weights(d, buf, 0, 4, buf, buf, buf, buf, 2, 4, 1.0f, NULL));
    TRY(clpar_op_gelu_forward(d, buf, buf, 8, NULL));
    TRY(clpar_op_gelu_backward(d, buf, buf, buf, 8, NULL));
    TRY(clpar_op_attention_forward(d, buf, buf, buf, 1, 2, 1, 2, NULL));
    TRY(clpar_op_attention_backward(d, buf, buf, buf, buf, buf, 1, 2, 1, 2, NULL));
    TRY(clpar_op_embedding_forward(d, buf, ints, buf, 0, 0, 2, 2, 4, NULL));
    TRY(clpar_op_embedding_backward(d, buf, 0, 0, buf, ints, ints, 1, 2, 2, 4, 1.0f, 1.0f, NULL));
    d->warm_grid = 0;
    return clpar_device_finish(d);
}

clpar_status clpar_op_warmup(clpar_device *d) {
    if (d->clblast_warm) return CLPAR_OK;
    cl_mem buf = NULL, ints = NULL, wide = NULL;
    float zero = 0.0f;
    pthread_mutex_lock(&clblast_lock);
    clpar_status st = CLPAR_OK;
    /* on the indirect path the wide product is padded: up to 2^15 x 128 floats for C */
    int cpu = (d->info->type & CL_DEVICE_TYPE_CPU) != 0;
    if (st == CLPAR_OK && cpu)
        st = clpar_device_alloc(d, (2 * WARM_ROWS + 2) * sizeof(float), &wide);
    if (st == CLPAR_OK) st = clpar_device_alloc(d, 3 * 64 * 64 * sizeof(float), &buf);
    if (st == CLPAR_OK) st = clpar_device_alloc(d, 8 * sizeof(cl_int), &ints);
    if (st == CLPAR_OK) {
        cl_int err = clEnqueueFillBuffer(d->compute, buf, &zero, sizeof zero, 0,
                                         3 * 64 * 64 * sizeof(float), 0, NULL, NULL);
        if (err == CL_SUCCESS)
            err = clEnqueueFillBuffer(d->compute, ints, &zero, sizeof zero, 0, 8 * sizeof(cl_int),
                                      0, NULL, NULL);
        if (err != CL_SUCCESS) st = clpar_cl_error(err, "clEnqueueFillBuffer");
    }
    if (st == CLPAR_OK && wide) {
        cl_int err = clEnqueueFillBuffer(d->compute, wide, &zero, sizeof zero, 0,
                                         (2 * WARM_ROWS + 2) * sizeof(float), 0, NULL, NULL);
        if (err != CL_SUCCESS) st = clpar_cl_error(err, "clEnqueueFillBuffer");
    }
    if (st == CLPAR_OK && !d->gemm_ready) st = choose_gemm_path(d);
    if (st == CLPAR_OK && cpu) st = clpar_gemm_kernels_warm(d, buf);
    if (st == CLPAR_OK) st = run_every_kernel(d, buf, ints, wide);
    d->warm_grid = 0;
    pthread_mutex_unlock(&clblast_lock);
    clpar_device_release(d, wide);
    clpar_device_release(d, buf);
    clpar_device_release(d, ints);
    if (st == CLPAR_OK) d->clblast_warm = true;
    return st;
}
