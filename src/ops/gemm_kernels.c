/* clpar's own GEMM kernels (kernels/gemm.cl): building them for a configuration, and
 * launching them in pieces no wider than the warm-up's launch (ops/gemm.c says why). */
#include "launch.h"

#include <stdio.h>
#include <string.h>

/* the widest grid dimension of any launch: the warm-up's (a multiple of every WG) */
#define GEMM_GRID ((size_t)1 << 15)

/* Builds one program, and its three kernels, for c's parameters. */
static clpar_status build(clpar_device *d, const clpar_gemm_config *c,
                          struct clpar_gemm_kernels *out) {
    char defs[256];
    snprintf(defs, sizeof defs, "-DMT=%zu -DNT=%zu -DMX=%zu -DNX=%zu -DVW=%zu -DRD=%zu -DPH=%zu",
             c->v[0], c->v[1], c->v[2], c->v[3], c->v[4], c->v[6], c->v[7]);
    cl_program prog;
    TRY(clpar_runtime_build(d->rt, d->info->index, d->context, "gemm", defs, &prog));
    cl_int e1, e2, e3;
    cl_kernel nt = clCreateKernel(prog, "gemm_nt", &e1);
    cl_kernel xn = clCreateKernel(prog, "gemm_xn", &e2);
    cl_kernel tr = clCreateKernel(prog, "gemm_transpose", &e3);
    if (e1 != CL_SUCCESS || e2 != CL_SUCCESS || e3 != CL_SUCCESS) {
        if (nt) clReleaseKernel(nt);
        if (xn) clReleaseKernel(xn);
        if (tr) clReleaseKernel(tr);
        clReleaseProgram(prog);
        return clpar_cl_error(e1 != CL_SUCCESS   ? e1
                              : e2 != CL_SUCCESS ? e2
                                                 : e3,
                              "clCreateKernel(gemm)");
    }
    *out = (struct clpar_gemm_kernels){*c, prog, nt, xn, tr};
    return CLPAR_OK;
}

clpar_status clpar_gemm_kernels_build(clpar_device *d, const clpar_gemm_config *c, int *set) {
    for (int i = 0; i < d->gemm_nkernels; i++)
        if (!memcmp(d->gemm_kernels[i].config.v, c->v, sizeof c->v)) {
            *set = i;
            return CLPAR_OK;
        }
    if (d->gemm_nkernels == CLPAR_GEMM_MAX_KERNELS)
        return clpar_error(
            CLPAR_EINVAL,
            "GEMM tuning: more than %d parameter sets of clpar's kernels on device %d",
            CLPAR_GEMM_MAX_KERNELS, d->info->index);
    TRY(build(d, c, &d->gemm_kernels[d->gemm_nkernels]));
    *set = d->gemm_nkernels++;
    return CLPAR_OK;
}

void clpar_gemm_kernels_reset(clpar_device *d) {
    for (int i = 0; i < d->gemm_nkernels; i++) {
        clReleaseKernel(d->gemm_kernels[i].nt);
        clReleaseKernel(d->gemm_kernels[i].xn);
        clReleaseKernel(d->gemm_kernels[i].transpose);
        clReleaseProgram(d->gemm_kernels[i].program);
    }
    d->gemm_nkernels = 0;
    d->gemm_nroutes = 0;
}

/* The arguments of gemm_nt (nt = 1, which has no aks) or gemm_xn, in order. */
static clpar_status set_args(cl_kernel kern, int nt, cl_uint m, cl_uint n, cl_uint k, float alpha,
                             cl_mem a, cl_uint a_off, cl_uint ars, cl_uint aks, cl_mem b,
                             cl_uint b_off, cl_uint ldb, float beta, cl_mem c, cl_uint c_off,
                             cl_uint ldc, cl_mem bias, cl_uint bias_off) {
    cl_uint x = nt ? 0 : 1; /* the arguments after ars move by one in gemm_xn */
    cl_int e = ARG(kern, 0, m) | ARG(kern, 1, n) | ARG(kern, 2, k) | ARG(kern, 3, alpha) |
               ARG(kern, 4, a) | ARG(kern, 5, a_off) | ARG(kern, 6, ars) | ARG(kern, 7 + x, b) |
               ARG(kern, 8 + x, b_off) | ARG(kern, 9 + x, ldb) | ARG(kern, 10 + x, beta) |
               ARG(kern, 11 + x, c) | ARG(kern, 12 + x, c_off) | ARG(kern, 13 + x, ldc);
    if (!nt) e |= ARG(kern, 7, aks);
    cl_uint has_bias = bias != NULL;
    /* without a bias, any buffer: the kernel does not read it */
    e |= ARG(kern, 14 + x, *(bias ? &bias : &c)) | ARG(kern, 15 + x, bias_off) |
         ARG(kern, 16 + x, has_bias);
    if (e != CL_SUCCESS) return clpar_cl_error(e, nt ? "gemm_nt arguments" : "gemm_xn arguments");
    return CLPAR_OK;
}

/* One launch over a (m, n) block of C whose blocks fit GEMM_GRID in both dimensions (with
 * panels, PH rows of blocks by all columns of blocks do). */
static clpar_status launch_block(clpar_device *d, const struct clpar_gemm_kernels *ks, int nt,
                                 size_t m, size_t n, size_t k, float alpha, cl_mem a, size_t a_off,
                                 size_t ars, size_t aks, cl_mem b, size_t b_off, size_t ldb,
                                 float beta, cl_mem c, size_t c_off, size_t ldc, cl_mem bias,
                                 size_t bias_off, cl_event *event) {
    const size_t *v = ks->config.v;
    cl_kernel kern = nt ? ks->nt : ks->xn;
    size_t rows = nt ? v[0] : v[2], cols = nt ? v[1] : v[3] * v[4], wg = v[5], rd = v[6];
    size_t tiles[2] = {(m + rows - 1) / rows, (n + cols - 1) / cols};
    size_t global[2] = {tiles[rd ? 1 : 0], tiles[rd ? 0 : 1]}, local[2] = {wg, 1}, ph = v[7];
    if (ph) { /* 1-D: whole panels of ph rows of blocks by every column of blocks */
        global[0] = (tiles[0] + ph - 1) / ph * ph * tiles[1];
        global[1] = 1;
    }
    global[0] = (global[0] + wg - 1) / wg * wg;
    cl_uint um = (cl_uint)m, un = (cl_uint)n, uk = (cl_uint)k, ao = (cl_uint)a_off,
            ar = (cl_uint)ars, ak = (cl_uint)aks, bo = (cl_uint)b_off, lb = (cl_uint)ldb,
            co = (cl_uint)c_off, lc = (cl_uint)ldc;
    TRY(set_args(kern, nt, um, un, uk, alpha, a, ao, ar, ak, b, bo, lb, beta, c, co, lc, bias,
                 (cl_uint)bias_off));
    clpar_count_launch(d);
    CL_CHECK(clEnqueueNDRangeKernel(d->compute, kern, 2, NULL, global, local, 0, NULL, event),
             nt ? "clEnqueueNDRangeKernel(gemm_nt)" : "clEnqueueNDRangeKernel(gemm_xn)");
    return CLPAR_OK;
}

/* TB: scratch (k, n) = B^T of B (n, k) stored from b_off with rows ldb apart, in launches
 * of at most GEMM_GRID tiles of 16 x 16 (the warm-up's width). */
static clpar_status transpose_b(clpar_device *d, const struct clpar_gemm_kernels *ks, size_t n,
                                size_t k, cl_mem b, size_t b_off, size_t ldb) {
    TRY(check_u32(n * k, "GEMM scratch"));
    if (d->gemm_scratch_floats < n * k) {
        /* the new one before the old one goes: a released buffer's memory handed out again
         * at once confuses Oclgrind's uninitialized-value checker (it marks the old range
         * undefined when the release takes effect, over the new buffer's stores) */
        cl_mem grown;
        TRY(clpar_device_alloc(d, n * k * sizeof(float), &grown));
        clpar_device_release(d, d->gemm_scratch); /* freed once the kernels using it are done */
        d->gemm_scratch = grown;
        d->gemm_scratch_floats = n * k;
    }
    size_t k_tiles = (k + 15) / 16, tiles = (n + 15) / 16 * k_tiles, wg = ks->config.v[5];
    cl_uint bo = (cl_uint)b_off, lb = (cl_uint)ldb, un = (cl_uint)n, uk = (cl_uint)k,
            kt = (cl_uint)k_tiles;
    for (size_t t = 0; t < tiles; t += GEMM_GRID) {
        cl_uint base = (cl_uint)t;
        size_t part = tiles - t < GEMM_GRID ? tiles - t : GEMM_GRID;
        size_t global = (part + wg - 1) / wg * wg;
        cl_int e = ARG(ks->transpose, 0, d->gemm_scratch) | ARG(ks->transpose, 1, b) |
                   ARG(ks->transpose, 2, bo) | ARG(ks->transpose, 3, lb) |
                   ARG(ks->transpose, 4, un) | ARG(ks->transpose, 5, uk) |
                   ARG(ks->transpose, 6, kt) | ARG(ks->transpose, 7, base);
        if (e != CL_SUCCESS) return clpar_cl_error(e, "gemm_transpose arguments");
        clpar_count_launch(d);
        CL_CHECK(
            clEnqueueNDRangeKernel(d->compute, ks->transpose, 1, NULL, &global, &wg, 0, NULL, NULL),
            "clEnqueueNDRangeKernel(gemm_transpose)");
    }
    return CLPAR_OK;
}

clpar_status clpar_gemm_kernels_run(clpar_device *d, int set, clpar_transpose trans_a, size_t m,
                                    size_t n, size_t k, float alpha, cl_mem a, size_t a_off,
                                    size_t lda, cl_mem b, size_t b_off, size_t ldb, float beta,
                                    cl_mem c, size_t c_off, size_t ldc, int nt, cl_mem bias,
                                    size_t bias_off, cl_event *event) {
    /* A(i, kk) at a_off + i ars + kk aks; B(kk, j) at b_off + j ldb + kk (NT) or + kk ldb + j */
    size_t ars = trans_a ? 1 : lda, aks = trans_a ? lda : 1;
    TRY(check_u32(a_off + (m - 1) * ars + (k - 1) * aks + 1, "GEMM operand A"));
    TRY(check_u32(b_off + (nt ? (n - 1) * ldb + k : (k - 1) * ldb + n), "GEMM operand B"));
    TRY(check_u32(c_off + (m - 1) * ldc + n, "GEMM result C"));
    if (bias) TRY(check_u32(bias_off + n, "GEMM bias"));
    const struct clpar_gemm_kernels *ks = &d->gemm_kernels[set];
    const size_t *v = ks->config.v;
    if (nt && v[8] && m >= v[8] && n >= v[3] * v[4]) { /* TB: B^T, then gemm_xn (gemm.cl) */
        TRY(transpose_b(d, ks, n, k, b, b_off, ldb));
        b = d->gemm_scratch, b_off = 0, ldb = n, nt = 0;
    }
    size_t block_rows = nt ? v[0] : v[2], block_cols = nt ? v[1] : v[3] * v[4], ph = v[7];
    size_t rows = GEMM_GRID * block_rows, cols = GEMM_GRID * block_cols;
    if (ph) { /* a launch of panels: at most GEMM_GRID blocks in all */
        size_t col_blocks = (n + block_cols - 1) / block_cols;
        if (col_blocks > GEMM_GRID / ph) col_blocks = GEMM_GRID / ph;
        cols = col_blocks * block_cols;
        rows = GEMM_GRID / (ph * col_blocks) * ph * block_rows;
    }
    for (size_t i = 0; i < m; i += rows)
        for (size_t j = 0; j < n; j += cols) {
            size_t mi = m - i < rows ? m - i : rows, nj = n - j < cols ? n - j : cols;
            int last = i + mi == m && j + nj == n;
            TRY(launch_block(d, ks, nt, mi, nj, k, alpha, a, a_off + i * ars, ars, aks, b,
                             b_off + j * (nt ? ldb : 1), ldb, beta, c, c_off + i * ldc + j, ldc,
                             bias, bias_off + j, last ? event : NULL));
        }
    return CLPAR_OK;
}

clpar_status clpar_gemm_kernels_warm(clpar_device *d, cl_mem buf) {
    /* one launch of each kernel GEMM_GRID wide, every work-item past C's single element */
    for (int i = 0; i < d->gemm_nkernels; i++) {
        size_t global[2] = {GEMM_GRID, 1}, local[2] = {d->gemm_kernels[i].config.v[5], 1};
        cl_kernel ks[2] = {d->gemm_kernels[i].nt, d->gemm_kernels[i].xn};
        for (int n = 0; n < 2; n++) {
            TRY(set_args(ks[n], n == 0, 1, 1, 1, 1.0f, buf, 0, 1, 1, buf, 1, 1, 0.0f, buf, 2, 1,
                         NULL, 0));
            CL_CHECK(
                clEnqueueNDRangeKernel(d->compute, ks[n], 2, NULL, global, local, 0, NULL, NULL),
                "clEnqueueNDRangeKernel(gemm warm-up)");
        }
        /* the transpose of one element of buf onto another */
        cl_kernel tr = d->gemm_kernels[i].transpose;
        cl_uint one = 1, zero = 0;
        cl_mem out = buf;
        cl_int e = ARG(tr, 0, out) | ARG(tr, 1, buf) | ARG(tr, 2, one) | ARG(tr, 3, one) |
                   ARG(tr, 4, one) | ARG(tr, 5, one) | ARG(tr, 6, one) | ARG(tr, 7, zero);
        if (e != CL_SUCCESS) return clpar_cl_error(e, "gemm_transpose arguments");
        CL_CHECK(clEnqueueNDRangeKernel(d->compute, tr, 1, NULL, global, local, 0, NULL, NULL),
                 "clEnqueueNDRangeKernel(gemm warm-up)");
    }
    return CLPAR_OK;
}
