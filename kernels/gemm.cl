/* clpar's GEMMs, row-major C (m, n) = alpha op(A) op(B) + beta C, for the three products a
 * layer needs: NT (the forward x W^T) and NN / TN (the input gradient dy W, the weight
 * gradient dy^T x). Each work-item keeps a block of C in registers and reads A and B straight
 * from global memory: on CPU devices the caches do what local memory does on GPUs, and
 * barriers would split PoCL's work-item loops. Built once per device and configuration
 * (ops/gemm_kernels.c) with the parameters as macros:
 *   MT, NT  rows and columns of C per work-item in gemm_nt (dot products along k)
 *   MX, NX  rows, and vectors of VW columns, per work-item in gemm_xn (outer products)
 *   VW      vector width: 4, 8 or 16
 *   RD      the grid dimension that walks C's rows (0 or 1); the other walks its columns
 *   PH      0, or a 1-D grid that walks C in panels of PH blocks' rows: down a panel's
 *           column of blocks, then the next column, then the next panel. The panel's rows
 *           of A stay in the cache while every column of B passes, once per panel (RD unused)
 *   TB      (on the host, ops/gemm_kernels.c) 0, or an NT product of at least TB rows and
 *           NX VW columns copies B^T into scratch (gemm_transpose) and runs gemm_xn, whose
 *           outer products load a vector of B per MX FMAs where gemm_nt's dot products load
 *           one per NT: worth the copy of B once A has rows enough
 * Blocks at the edges of C read clamped rows and columns, so the inner loops never test
 * bounds; only the stores do. */
#pragma OPENCL FP_CONTRACT OFF

/* The block of C (row block *it, column block *jt) of this work-item, of col_blocks per row */
static void block_of(uint col_blocks, uint *it, uint *jt) {
#if PH > 0
    const uint g = get_global_id(0), per_panel = PH * col_blocks, w = g % per_panel;
    *it = g / per_panel * PH + w % PH;
    *jt = w / PH;
#else
    *it = get_global_id(RD);
    *jt = get_global_id(1 - RD);
#endif
}

#if VW == 4
#define floatV float4
#define vloadV vload4
#define vstoreV vstore4
#elif VW == 8
#define floatV float8
#define vloadV vload8
#define vstoreV vstore8
#elif VW == 16
#define floatV float16
#define vloadV vload16
#define vstoreV vstore16
#else
#error VW must be 4, 8 or 16
#endif

/* The sum of v's lanes, pairwise. Through private memory rather than swizzles (.lo, .hi),
 * which Oclgrind's uninitialized-value checker takes for reads of undefined lanes. */
static float hsum(floatV v) {
    float t[VW];
    vstoreV(v, 0, t);
    for (int w = VW / 2; w > 0; w /= 2)
        for (int i = 0; i < w; i++)
            t[i] += t[i + w];
    return t[0];
}

/* B stored (n, k): C[i, j] = sum over k of A[i, kk] B[j, kk], VW terms at a time; then, when
 * has_bias, C[i, j] += bias[bias_off + j] (a layer's x W^T + b in one launch, rounded as the
 * product followed by bias_add) */
__kernel void gemm_nt(const uint m, const uint n, const uint k, const float alpha,
                      __global const float *a, const uint a_off, const uint lda,
                      __global const float *b, const uint b_off, const uint ldb, const float beta,
                      __global float *c, const uint c_off, const uint ldc,
                      __global const float *bias, const uint bias_off, const uint has_bias) {
    uint it, jt;
    block_of((n + NT - 1) / NT, &it, &jt);
    const uint i0 = it * MT, j0 = jt * NT;
    if (i0 >= m || j0 >= n) return;
    uint ao[MT], bo[NT];
#pragma unroll
    for (int r = 0; r < MT; r++)
        ao[r] = a_off + min(i0 + r, m - 1) * lda;
#pragma unroll
    for (int s = 0; s < NT; s++)
        bo[s] = b_off + min(j0 + s, n - 1) * ldb;
    floatV acc[MT][NT];
#pragma unroll
    for (int r = 0; r < MT; r++)
#pragma unroll
        for (int s = 0; s < NT; s++)
            acc[r][s] = 0.0f;
    uint kk = 0;
    for (; kk + VW <= k; kk += VW) {
        floatV av[MT], bv[NT];
#pragma unroll
        for (int r = 0; r < MT; r++)
            av[r] = vloadV(0, a + ao[r] + kk);
#pragma unroll
        for (int s = 0; s < NT; s++)
            bv[s] = vloadV(0, b + bo[s] + kk);
#pragma unroll
        for (int r = 0; r < MT; r++)
#pragma unroll
            for (int s = 0; s < NT; s++)
                acc[r][s] = fma(av[r], bv[s], acc[r][s]);
    }
    float sum[MT][NT];
#pragma unroll
    for (int r = 0; r < MT; r++)
#pragma unroll
        for (int s = 0; s < NT; s++)
            sum[r][s] = hsum(acc[r][s]);
    for (; kk < k; kk++)
#pragma unroll
        for (int r = 0; r < MT; r++)
#pragma unroll
            for (int s = 0; s < NT; s++)
                sum[r][s] = fma(a[ao[r] + kk], b[bo[s] + kk], sum[r][s]);
#pragma unroll
    for (int r = 0; r < MT; r++)
#pragma unroll
        for (int s = 0; s < NT; s++)
            if (i0 + r < m && j0 + s < n) {
                __global float *p = c + c_off + (i0 + r) * ldc + j0 + s;
                float v = beta == 0.0f ? alpha * sum[r][s] : alpha * sum[r][s] + beta * *p;
                *p = has_bias ? v + bias[bias_off + j0 + s] : v;
            }
}

/* B stored (k, n), A(i, kk) at a[a_off + i ars + kk aks] (NN: ars = lda, aks = 1; TN: the
 * reverse): C[i, j..j + NX VW) += A[i, kk] B[kk, j..j + NX VW) for every kk; then, when
 * has_bias, the bias as gemm_nt adds it */
__kernel void gemm_xn(const uint m, const uint n, const uint k, const float alpha,
                      __global const float *a, const uint a_off, const uint ars, const uint aks,
                      __global const float *b, const uint b_off, const uint ldb, const float beta,
                      __global float *c, const uint c_off, const uint ldc,
                      __global const float *bias, const uint bias_off, const uint has_bias) {
    uint it, jt;
    block_of((n + NX * VW - 1) / (NX * VW), &it, &jt);
    const uint i0 = it * MX, j0 = jt * (NX * VW);
    if (i0 >= m || j0 >= n) return;
    uint ao[MX];
#pragma unroll
    for (int r = 0; r < MX; r++)
        ao[r] = a_off + min(i0 + r, m - 1) * ars;
    if (j0 + NX * VW <= n) {
        floatV acc[MX][NX];
#pragma unroll
        for (int r = 0; r < MX; r++)
#pragma unroll
            for (int s = 0; s < NX; s++)
                acc[r][s] = 0.0f;
        for (uint kk = 0; kk < k; kk++) {
            __global const float *bp = b + b_off + kk * ldb + j0;
            floatV bv[NX];
#pragma unroll
            for (int s = 0; s < NX; s++)
                bv[s] = vloadV(s, bp);
#pragma unroll
            for (int r = 0; r < MX; r++) {
                const floatV av = (floatV)(a[ao[r] + kk * aks]);
#pragma unroll
                for (int s = 0; s < NX; s++)
                    acc[r][s] = fma(av, bv[s], acc[r][s]);
            }
        }
#pragma unroll
        for (int r = 0; r < MX; r++)
            if (i0 + r < m) {
                __global float *p = c + c_off + (i0 + r) * ldc + j0;
#pragma unroll
                for (int s = 0; s < NX; s++) {
                    floatV v =
                        beta == 0.0f ? alpha * acc[r][s] : alpha * acc[r][s] + beta * vloadV(s, p);
                    vstoreV(has_bias ? v + vloadV(s, bias + bias_off + j0) : v, s, p);
                }
            }
        return;
    }
    /* the last block of columns, narrower than NX VW: one column at a time */
    for (uint j = j0; j < n; j++) {
        float sum[MX];
#pragma unroll
        for (int r = 0; r < MX; r++)
            sum[r] = 0.0f;
        for (uint kk = 0; kk < k; kk++) {
            const float bv = b[b_off + kk * ldb + j];
#pragma unroll
            for (int r = 0; r < MX; r++)
                sum[r] = fma(a[ao[r] + kk * aks], bv, sum[r]);
        }
#pragma unroll
        for (int r = 0; r < MX; r++)
            if (i0 + r < m) {
                __global float *p = c + c_off + (i0 + r) * ldc + j;
                float v = beta == 0.0f ? alpha * sum[r] : alpha * sum[r] + beta * *p;
                *p = has_bias ? v + bias[bias_off + j] : v;
            }
    }
}

/* out (k, n) = B^T of B (n, k), stored from b_off with rows ldb apart: a work-item per tile
 * of 16 x 16 (tiles [base, base + the launch) of k_tiles per row of tiles), read as 16 runs
 * of B's rows and written as 16 runs of out's, so neither side strides through memory */
__kernel void gemm_transpose(__global float *out, __global const float *b, const uint b_off,
                             const uint ldb, const uint n, const uint k, const uint k_tiles,
                             const uint base) {
    const uint g = base + get_global_id(0), j0 = g / k_tiles * 16, k0 = g % k_tiles * 16;
    if (j0 >= n) return;
    if (j0 + 16 <= n && k0 + 16 <= k) {
        float t[16][16];
#pragma unroll
        for (int s = 0; s < 16; s++)
            vstore16(vload16(0, b + b_off + (j0 + s) * ldb + k0), 0, t[s]);
#pragma unroll
        for (int c = 0; c < 16; c++) {
            float col[16];
#pragma unroll
            for (int s = 0; s < 16; s++)
                col[s] = t[s][c];
            vstore16(vload16(0, col), 0, out + (k0 + c) * n + j0);
        }
        return;
    }
    for (uint j = j0; j < min(j0 + 16, n); j++) /* an edge tile */
        for (uint kk = k0; kk < min(k0 + 16, k); kk++)
            out[kk * n + j] = b[b_off + j * ldb + kk];
}
