/* Element-wise kernels of the linear layers and of gradient bookkeeping. One work-item per
 * element (or per 16 columns for colsum); global sizes are rounded up to the work-group size,
 * so every kernel checks its bound. Counts above a device's widest launch are done in
 * several launches (ops/kernels.c), each starting at element `base`, every kernel's last
 * argument. */
#pragma OPENCL FP_CONTRACT OFF

/* y[r, c] += b[boff + c] for y of shape (rows, cols) */
__kernel void bias_add(__global float *y, __global const float *b, const uint boff, const uint rows,
                       const uint cols, const uint base) {
    const size_t i = (size_t)base + get_global_id(0);
    if (i >= (size_t)rows * cols) return;
    y[i] += b[boff + i % cols];
}

/* y = max(x, 0); y may be x */
__kernel void relu_forward(__global float *y, __global const float *x, const uint n,
                           const uint base) {
    const size_t i = (size_t)base + get_global_id(0);
    if (i >= n) return;
    const float v = x[i];
    y[i] = v > 0.0f ? v : 0.0f;
}

/* dx = dy * (y > 0), from the saved output y of relu_forward; dx may be dy */
__kernel void relu_backward(__global float *dx, __global const float *dy, __global const float *y,
                            const uint n, const uint base) {
    const size_t i = (size_t)base + get_global_id(0);
    if (i >= n) return;
    dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

/* out[ooff + c] = beta * out[ooff + c] + sum_r x[xoff + r * ldx + c], c < cols: the bias
 * gradient of a (rows, cols) block of a matrix with row stride ldx; beta = 1 accumulates over
 * micro-batches. Rows are summed in order, so the result is the same on every device. A
 * work-item per 16 columns, summed as one vector: 16 chains of additions side by side (one
 * column's chain alone waits on each addition's latency, and CPU devices did not vectorize
 * the work-items' loops). */
__kernel void colsum(__global float *out, const uint ooff, __global const float *x, const uint xoff,
                     const uint ldx, const uint rows, const uint cols, const float beta,
                     const uint base) {
    const size_t c0 = ((size_t)base + get_global_id(0)) * 16;
    if (c0 >= cols) return;
    __global const float *col = x + xoff + c0;
    if (c0 + 16 <= cols) {
        float16 s = 0.0f;
        for (uint r = 0; r < rows; r++)
            s += vload16(0, col + (size_t)r * ldx);
        vstore16(beta == 0.0f ? s : beta * vload16(0, out + ooff + c0) + s, 0, out + ooff + c0);
        return;
    }
    for (size_t c = c0; c < cols; c++) { /* the last, narrower group */
        float s = 0.0f;
        for (uint r = 0; r < rows; r++)
            s += col[(size_t)r * ldx + (c - c0)];
        out[ooff + c] = beta == 0.0f ? s : beta * out[ooff + c] + s;
    }
}

/* x[off + i] *= a */
__kernel void scale(__global float *x, const uint off, const float a, const uint n,
                    const uint base) {
    const size_t i = (size_t)base + get_global_id(0);
    if (i >= n) return;
    x[off + i] *= a;
}

/* y[yoff + i] += a * x[xoff + i] */
__kernel void axpy(__global float *y, const uint yoff, const float a, __global const float *x,
                   const uint xoff, const uint n, const uint base) {
    const size_t i = (size_t)base + get_global_id(0);
    if (i >= n) return;
    y[yoff + i] += a * x[xoff + i];
}

/* The device's arithmetic peak (clpar-devices --bench), as clpeak measures it: eight
 * independent chains of `iters` fused multiply-adds on float16s per work-item, so that every
 * FMA unit stays busy at its widest (float4 chains left three quarters of an AVX-512 CPU's
 * lanes idle); 256 FLOPs per chain step. The sum keeps the compiler from dropping them and
 * lets a test check the result. */
__kernel void fma_peak(__global float *out, const float a, const float b, const uint iters,
                       const uint n, const uint base) {
    const size_t i = (size_t)base + get_global_id(0);
    if (i >= n) return;
    const float16 lane = (float16)(0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f, 8.0f, 9.0f,
                                   10.0f, 11.0f, 12.0f, 13.0f, 14.0f, 15.0f);
    float16 x0 = ((float16)((float)i) + lane) * 1e-3f;
    float16 x1 = x0 + 0.125f, x2 = x0 + 0.25f, x3 = x0 + 0.375f, x4 = x0 + 0.5f;
    float16 x5 = x0 + 0.625f, x6 = x0 + 0.75f, x7 = x0 + 0.875f;
    for (uint t = 0; t < iters; t++) {
        x0 = fma(x0, a, b);
        x1 = fma(x1, a, b);
        x2 = fma(x2, a, b);
        x3 = fma(x3, a, b);
        x4 = fma(x4, a, b);
        x5 = fma(x5, a, b);
        x6 = fma(x6, a, b);
        x7 = fma(x7, a, b);
    }
    float t[16];
    vstore16(((((((x0 + x1) + x2) + x3) + x4) + x5) + x6) + x7, 0, t);
    float s = t[0];
    for (int l = 1; l < 16; l++)
        s += t[l];
    out[i] = s;
}
