/* clpar's GEMMs, row-major C (m, n) = alpha op(A) op(B) + beta C, for the three products a
 * layer needs: NT (the forward x W^T) and NN / TN (the input gradient dy W, the weight
 * gradient dy^T x). Each work-item keeps a block of C in registers. gemm_nt reads A and B in
 * place; gemm_xn reads copies of them in panels (gemm_pack_a, gemm_pack_b), each block's
 * operands one contiguous run, so that they stream from the cache in whole lines. No local
 * memory: on CPU devices the caches do its work, and barriers would split PoCL's work-item
 * loops. Built once per device and configuration (ops/gemm_kernels.c) with the parameters as
 * macros:
 *   MT, NT  rows and columns of C per work-item in gemm_nt (dot products along k)
 *   MX, NX  rows, and vectors of VW columns, per work-item in gemm_xn (outer products)
 *   VW      vector width: 4, 8 or 16
 *   RD      the grid dimension that walks C's rows (0 or 1); the other walks its columns
 *   PH      0, or a 1-D grid that walks C in panels of PH blocks' rows: down a panel's
 *           column of blocks, then the next column, then the next panel. The panel's rows
 *           of A stay in the cache while every column of B passes, once per panel (RD unused)
 *   TB      (on the host, ops/gemm_kernels.c) 0, or an NT product of at least TB rows (and
 *           of at least NX VW / 2 columns) runs gemm_xn on panels of A and of B^T, whose
 *           outer products load a vector of B per MX FMAs where gemm_nt's dot products load
 *           one per NT and end in NT MT sums across a vector's lanes: worth the copies once A
 *           has rows enough
 * Blocks at the edges of C read clamped rows of A in gemm_nt and gemm_pack_a, and columns
 * of B (gemm_nt) or zeros (gemm_pack_b) past C's, so the inner loops never test bounds; only
 * the stores do. */
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

/* The panels gemm_xn reads, each a contiguous run in the order its inner loop walks, so
 * that a work-item's operands stream from the cache in whole lines rather than in MX rows of
 * A and NX VW columns of B ldb apart (on PoCL's CPU devices 1.2-4x faster than reading them
 * in place, the copies included). Both copy tiles of 16 k's, a work-item per tile: tiles
 * [base, base + the launch), k_tiles of them per panel. */

/* A's panels of MX rows: out[out_off + (it k + kk) MX + r] = A(min(it MX + r, m - 1), kk),
 * A(i, kk) at a[a_off + i ars + kk aks] (NN: ars = lda, aks = 1; TN: the reverse) */
__kernel void gemm_pack_a(__global float *out, const uint out_off, __global const float *a,
                          const uint a_off, const uint ars, const uint aks, const uint m,
                          const uint k, const uint k_tiles, const uint base) {
    const uint g = base + get_global_id(0), it = g / k_tiles, k0 = g % k_tiles * 16;
    if (it * MX >= m) return;
    const uint k1 = min(k0 + 16, k);
    if (ars == 1 && it * MX + MX <= m) { /* TN: A's rows are dy's columns, MX side by side */
        for (uint kk = k0; kk < k1; kk++) {
            __global const float *src = a + a_off + kk * aks + it * MX;
            __global float *dst = out + out_off + it * k * MX + kk * MX;
#pragma unroll
            for (int r = 0; r < MX; r++)
                dst[r] = src[r];
        }
        return;
    }
#pragma unroll
    for (int r = 0; r < MX; r++) {
        __global const float *src = a + a_off + min(it * MX + r, m - 1) * ars;
        __global float *dst = out + out_off + it * k * MX + r;
        for (uint kk = k0; kk < k1; kk++)
            dst[kk * MX] = src[kk * aks];
    }
}

/* B's panels of NX VW columns, zeros past n: out[out_off + (jt k + kk) NX VW + s] =
 * B(kk, jt NX VW + s), B(kk, j) at b[b_off + kk bks + j bjs] (NN and TN: bks = ldb, bjs = 1;
 * NT, B^T of a layer's W: the reverse) */
__kernel void gemm_pack_b(__global float *out, const uint out_off, __global const float *b,
                          const uint b_off, const uint bks, const uint bjs, const uint n,
                          const uint k, const uint k_tiles, const uint base) {
    const uint g = base + get_global_id(0), jt = g / k_tiles, k0 = g % k_tiles * 16;
    const uint j0 = jt * (NX * VW);
    if (j0 >= n) return;
    const uint k1 = min(k0 + 16, k), width = min((uint)(NX * VW), n - j0);
    __global float *dst = out + out_off + jt * k * (NX * VW);
    if (width == NX * VW && bjs == 1) { /* NN, TN: a whole panel's rows, in vectors */
        for (uint kk = k0; kk < k1; kk++) {
            __global const float *src = b + b_off + kk * bks + j0;
#pragma unroll
            for (int v = 0; v < NX; v++)
                vstoreV(vloadV(v, src), v, dst + kk * (NX * VW));
        }
        return;
    }
    if (width == NX * VW && bks == 1 && k1 - k0 == 16) { /* NT: 16 k's of each row of W */
        for (uint s = 0; s < NX * VW; s++) {
            float r[16]; /* one vector load, through private memory as hsum does */
            vstore16(vload16(0, b + b_off + (j0 + s) * bjs + k0), 0, r);
            __global float *d = dst + k0 * (NX * VW) + s;
#pragma unroll
            for (int q = 0; q < 16; q++)
                d[q * NX * VW] = r[q];
        }
        return;
    }
    for (uint kk = k0; kk < k1; kk++) {
        __global const float *src = b + b_off + kk * bks + j0 * bjs;
        for (uint s = 0; s < width; s++)
            dst[kk * (NX * VW) + s] = src[s * bjs];
        for (uint s = width; s < NX * VW; s++)
            dst[kk * (NX * VW) + s] = 0.0f;
    }
}

/* C (m, n) = alpha A B + beta C from A's and B's panels in p (gemm_pack_a at pa_off,
 * gemm_pack_b at pb_off): C[i, j..j + NX VW) += A[i, kk] B[kk, j..j + NX VW) for every kk,
 * then, when has_bias, the bias as gemm_nt adds it. Panels padded to whole blocks, so only
 * the stores test bounds. */
__kernel void gemm_xn(const uint m, const uint n, const uint k, const float alpha,
                      __global const float *p, const uint pa_off, const uint pb_off,
                      const float beta, __global float *c, const uint c_off, const uint ldc,
                      __global const float *bias, const uint bias_off, const uint has_bias) {
    uint it, jt;
    block_of((n + NX * VW - 1) / (NX * VW), &it, &jt);
    const uint i0 = it * MX, j0 = jt * (NX * VW);
    if (i0 >= m || j0 >= n) return;
    __global const float *ap = p + pa_off + (ulong)it * k * MX;
    __global const float *bp = p + pb_off + (ulong)jt * k * (NX * VW);
    floatV acc[MX][NX];
#pragma unroll
    for (int r = 0; r < MX; r++)
#pragma unroll
        for (int s = 0; s < NX; s++)
            acc[r][s] = 0.0f;
    for (uint kk = 0; kk < k; kk++, ap += MX, bp += NX * VW) {
        floatV bv[NX];
#pragma unroll
        for (int s = 0; s < NX; s++)
            bv[s] = vloadV(s, bp);
#pragma unroll
        for (int r = 0; r < MX; r++) {
            const floatV av = (floatV)(ap[r]);
#pragma unroll
            for (int s = 0; s < NX; s++)
                acc[r][s] = fma(av, bv[s], acc[r][s]);
        }
    }
    const int whole = j0 + NX * VW <= n;
#pragma unroll
    for (int r = 0; r < MX; r++)
        if (i0 + r < m) {
            __global float *q = c + c_off + (i0 + r) * ldc + j0;
#pragma unroll
            for (int s = 0; s < NX; s++) {
                if (whole) {
                    floatV v =
                        beta == 0.0f ? alpha * acc[r][s] : alpha * acc[r][s] + beta * vloadV(s, q);
                    vstoreV(has_bias ? v + vloadV(s, bias + bias_off + j0) : v, s, q);
                } else { /* the last block of columns, narrower than NX VW */
                    float t[VW];
                    vstoreV(acc[r][s], 0, t);
                    for (uint w = 0; w < VW && j0 + s * VW + w < n; w++) {
                        const uint j = j0 + s * VW + w;
                        float v = beta == 0.0f ? alpha * t[w] : alpha * t[w] + beta * q[s * VW + w];
                        q[s * VW + w] = has_bias ? v + bias[bias_off + j] : v;
                    }
                }
            }
        }
}
