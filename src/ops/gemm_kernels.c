/* clpar's own GEMM kernels (kernels/gemm.cl): building them for a configuration, copying
 * the operands of the outer-product kernel into its panels, and launching them in pieces no
 * wider than the warm-up's launch (ops/gemm.c says why). */
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
    const char *names[4] = {"gemm_nt", "gemm_xn", "gemm_pack_a", "gemm_pack_b"};
    cl_kernel ks[4] = {NULL};
    cl_int err = CL_SUCCESS;
    for (int i = 0; i < 4 && err == CL_SUCCESS; i++)
        ks[i] = clCreateKernel(prog, names[i], &err);
    if (err != CL_SUCCESS) {
        for (int i = 0; i < 4; i++)
            if (ks[i]) clReleaseKernel(ks[i]);
        clReleaseProgram(prog);
        return clpar_cl_error(err, "clCreateKernel(gemm)");
    }
    *out = (struct clpar_gemm_kernels){*c, prog, ks[0], ks[1], ks[2], ks[3]};
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
        clReleaseKernel(d->gemm_kernels[i].pack_a);
        clReleaseKernel(d->gemm_kernels[i].pack_b);
        clReleaseProgram(d->gemm_kernels[i].program);
    }
    d->gemm_nkernels = 0;
    d->gemm_nroutes = 0;
}

/* The arguments of gemm_nt. */
static clpar_status set_nt_args(cl_kernel kern, cl_uint m, cl_uint n, cl_uint k, float alpha,
                                cl_mem a, cl_uint a_off, cl_uint lda, cl_mem b, cl_uint b_off,
                                cl_uint ldb, float beta, cl_mem c, cl_uint c_off, cl_uint ldc,
                                cl_mem bias, cl_uint bias_off) {
    cl_uint has_bias = bias != NULL;
    /* without a bias, any buffer: the kernel does not read it */
    cl_int e = ARG(kern, 0, m) | ARG(kern, 1, n) | ARG(kern, 2, k) | ARG(kern, 3, alpha) |
               ARG(kern, 4, a) | ARG(kern, 5, a_off) | ARG(kern, 6, lda) | ARG(kern, 7, b) |
               ARG(kern, 8, b_off) | ARG(kern, 9, ldb) | ARG(kern, 10, beta) | ARG(kern, 11, c) |
               ARG(kern, 12, c_off) | ARG(kern, 13, ldc) | ARG(kern, 14, *(bias ? &bias : &c)) |
               ARG(kern, 15, bias_off) | ARG(kern, 16, has_bias);
    if (e != CL_SUCCESS) return clpar_cl_error(e, "gemm_nt arguments");
    return CLPAR_OK;
}

/* The arguments of gemm_xn: the panels in p at pa_off and pb_off. */
static clpar_status set_xn_args(cl_kernel kern, cl_uint m, cl_uint n, cl_uint k, float alpha,
                                cl_mem p, cl_uint pa_off, cl_uint pb_off, float beta, cl_mem c,
                                cl_uint c_off, cl_uint ldc, cl_mem bias, cl_uint bias_off) {
    cl_uint has_bias = bias != NULL;
    cl_int e = ARG(kern, 0, m) | ARG(kern, 1, n) | ARG(kern, 2, k) | ARG(kern, 3, alpha) |
               ARG(kern, 4, p) | ARG(kern, 5, pa_off) | ARG(kern, 6, pb_off) | ARG(kern, 7, beta) |
               ARG(kern, 8, c) | ARG(kern, 9, c_off) | ARG(kern, 10, ldc) |
               ARG(kern, 11, *(bias ? &bias : &c)) | ARG(kern, 12, bias_off) |
               ARG(kern, 13, has_bias);
    if (e != CL_SUCCESS) return clpar_cl_error(e, "gemm_xn arguments");
    return CLPAR_OK;
}

/* One launch of gemm_nt (nt) or gemm_xn, its arguments set, over a (m, n) block of C whose
 * blocks fit GEMM_GRID in both dimensions (with panels, PH rows of blocks by all columns of
 * blocks do). */
static clpar_status launch_grid(clpar_device *d, const struct clpar_gemm_kernels *ks, int nt,
                                size_t m, size_t n, cl_event *event) {
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
    clpar_count_launch(d);
    CL_CHECK(clEnqueueNDRangeKernel(d->compute, kern, 2, NULL, global, local, 0, NULL, event),
             nt ? "clEnqueueNDRangeKernel(gemm_nt)" : "clEnqueueNDRangeKernel(gemm_xn)");
    return CLPAR_OK;
}

/* The scratch buffer of d holding at least floats: grown to at least twice its size (from
 * 64 Ki floats; gemm_workspace.c's rule, which predicts it), the buffers it outgrew kept until the
 * device is freed. All of them are the device's workspace (clpar_device_workspace_bytes), not its
 * allocation; by the doubling the outgrown ones together are smaller than the one in use. Not
 * released at once because Oclgrind's uninitialized-value checker marks a released buffer's range
 * undefined when the release takes effect, later than the call, over the stores of whatever was
 * allocated there meanwhile (the next scratch buffer, as kernels read it). */
clpar_status gemm_scratch_reserve(clpar_device *d, size_t floats) {
    TRY(check_u32(floats, "GEMM scratch"));
    if (d->gemm_scratch_floats >= floats) return CLPAR_OK;
    floats = gemm_scratch_grown(d->gemm_scratch_floats, floats);
    cl_mem grown;
    size_t bytes = floats * sizeof(float);
    TRY(clpar_device_alloc(d, bytes, &grown));
    d->allocated -= bytes;
    d->workspace += bytes;
    if (d->gemm_scratch && d->gemm_nretired < CLPAR_GEMM_MAX_RETIRED) {
        d->gemm_retired[d->gemm_nretired++] = d->gemm_scratch; /* by doubling: 17 at most */
    } else if (d->gemm_scratch) { /* past 2^31 floats, where growing no longer doubles */
        clReleaseMemObject(d->gemm_scratch);
        d->workspace -= d->gemm_scratch_floats * sizeof(float);
    }
    d->gemm_scratch = grown;
    d->gemm_scratch_floats = floats;
    return CLPAR_OK;
}

/* The arguments of gemm_pack_a or gemm_pack_b, in their order. */
static cl_int set_pack_args(cl_kernel kern, cl_mem out, cl_uint out_off, cl_mem x, cl_uint x_off,
                            cl_uint s1, cl_uint s2, cl_uint extent, cl_uint k, cl_uint k_tiles,
                            cl_uint base) {
    return ARG(kern, 0, out) | ARG(kern, 1, out_off) | ARG(kern, 2, x) | ARG(kern, 3, x_off) |
           ARG(kern, 4, s1) | ARG(kern, 5, s2) | ARG(kern, 6, extent) | ARG(kern, 7, k) |
           ARG(kern, 8, k_tiles) | ARG(kern, 9, base);
}

/* gemm_pack_a (a = 1) or gemm_pack_b over panels of blocks (rows or columns) of the
 * operand x into the scratch at out_off, x(i, kk) at x_off + i s1 + kk s2 for pack_a and
 * x(kk, j) at x_off + kk s1 + j s2 for pack_b; in launches of at most GEMM_GRID tiles of
 * 16 k's (the warm-up's width). */
static clpar_status pack(clpar_device *d, const struct clpar_gemm_kernels *ks, int a, size_t panels,
                         size_t k, size_t extent, cl_mem x, size_t x_off, size_t s1, size_t s2,
                         size_t out_off) {
    cl_kernel kern = a ? ks->pack_a : ks->pack_b;
    size_t k_tiles = (k + 15) / 16, tiles = panels * k_tiles, wg = ks->config.v[5];
    for (size_t t = 0; t < tiles; t += GEMM_GRID) {
        size_t part = tiles - t < GEMM_GRID ? tiles - t : GEMM_GRID;
        size_t global = (part + wg - 1) / wg * wg;
        cl_int e =
            set_pack_args(kern, d->gemm_scratch, (cl_uint)out_off, x, (cl_uint)x_off, (cl_uint)s1,
                          (cl_uint)s2, (cl_uint)extent, (cl_uint)k, (cl_uint)k_tiles, (cl_uint)t);
        if (e != CL_SUCCESS)
            return clpar_cl_error(e, a ? "gemm_pack_a arguments" : "gemm_pack_b arguments");
        clpar_count_launch(d);
        CL_CHECK(clEnqueueNDRangeKernel(d->compute, kern, 1, NULL, &global, &wg, 0, NULL, NULL),
                 a ? "clEnqueueNDRangeKernel(gemm_pack_a)" : "clEnqueueNDRangeKernel(gemm_pack_b)");
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
    size_t block_rows = v[2], block_cols = v[3] * v[4], ph = v[7];
    size_t pa_off = 0, pb_off = 0; /* the panels' places in the scratch: B's, then A's */
    /* NT: dot products on A and B in place, unless TB says panels pay; never for C narrower
     * than half a block of gemm_xn's columns (a classifier's 10 outputs: 84% of each of its
     * outer products on the panel's padding, 5x slower on PoCL than the dot products).
     * clpar_gemm_panel_floats holds the rule: no panels, or how many floats they take. */
    clpar_gemm_shape s = {trans_a, nt ? CLPAR_TRANS : CLPAR_NO_TRANS, m, n, k};
    size_t panels = clpar_gemm_panel_floats(&ks->config, &s);
    if (!panels) {
        block_rows = v[0], block_cols = v[1];
    } else { /* TB, or NN / TN: A's and B's panels, then gemm_xn (gemm.cl) */
        size_t row_panels = (m + block_rows - 1) / block_rows;
        size_t col_panels = (n + block_cols - 1) / block_cols;
        pa_off = col_panels * block_cols * k;
        TRY(check_u32(pa_off, "GEMM scratch"));
        TRY(gemm_scratch_reserve(d, panels));
        TRY(pack(d, ks, 0, col_panels, k, n, b, b_off, nt ? 1 : ldb, nt ? ldb : 1, pb_off));
        TRY(pack(d, ks, 1, row_panels, k, m, a, a_off, ars, aks, pa_off));
        nt = 0;
    }
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
            cl_uint um = (cl_uint)mi, un = (cl_uint)nj, co = (cl_uint)(c_off + i * ldc + j),
                    bo = (cl_uint)(bias_off + j);
            if (nt)
                TRY(set_nt_args(ks->nt, um, un, (cl_uint)k, alpha, a, (cl_uint)(a_off + i * lda),
                                (cl_uint)lda, b, (cl_uint)(b_off + j * ldb), (cl_uint)ldb, beta, c,
                                co, (cl_uint)ldc, bias, bo));
            else /* a piece's panels: its rows and columns are whole blocks from the start */
                TRY(set_xn_args(ks->xn, um, un, (cl_uint)k, alpha, d->gemm_scratch,
                                (cl_uint)(pa_off + i * k), (cl_uint)(pb_off + j * k), beta, c, co,
                                (cl_uint)ldc, bias, bo));
            TRY(launch_grid(d, ks, nt, mi, nj, last ? event : NULL));
        }
    return CLPAR_OK;
}

clpar_status clpar_gemm_kernels_warm(clpar_device *d, cl_mem buf) {
    /* one launch of each kernel GEMM_GRID wide, every work-item but the first past the
     * product's single element: gemm_nt's operands at 0, 1, 2; gemm_xn's panels at 0 (at most
     * 16 + 128 floats read) and C at 200; the copies' one panel each onto 300 and 400 */
    enum { C_AT = 200, A_AT = 300, B_AT = 400 };
    for (int i = 0; i < d->gemm_nkernels; i++) {
        const struct clpar_gemm_kernels *ks = &d->gemm_kernels[i];
        size_t global[2] = {GEMM_GRID, 1}, local[2] = {ks->config.v[5], 1};
        TRY(set_nt_args(ks->nt, 1, 1, 1, 1.0f, buf, 0, 1, buf, 1, 1, 0.0f, buf, 2, 1, NULL, 0));
        TRY(set_xn_args(ks->xn, 1, 1, 1, 1.0f, buf, 0, 0, 0.0f, buf, C_AT, 1, NULL, 0));
        cl_int e = set_pack_args(ks->pack_a, buf, A_AT, buf, 0, 1, 1, 1, 1, 1, 0) |
                   set_pack_args(ks->pack_b, buf, B_AT, buf, 0, 1, 1, 1, 1, 1, 0);
        if (e != CL_SUCCESS) return clpar_cl_error(e, "gemm_pack arguments");
        cl_kernel all[4] = {ks->nt, ks->xn, ks->pack_a, ks->pack_b};
        for (int n = 0; n < 4; n++)
            CL_CHECK(clEnqueueNDRangeKernel(d->compute, all[n], n < 2 ? 2 : 1, NULL, global, local,
                                            0, NULL, NULL),
                     "clEnqueueNDRangeKernel(gemm warm-up)");
    }
    return CLPAR_OK;
}
