/* Losses. Forward writes one loss per row (the host sums them in a fixed order, in double);
 * backward writes the gradient of sum(row losses) * scale, where the caller picks scale so
 * that shards and micro-batches add up to the full batch's mean (scale = 1 / global batch). */
#pragma OPENCL FP_CONTRACT OFF

/* The row's max and sum of exp(z - max), so that large logits do not overflow. */
static void softmax_parts(__global const float *zr, const uint classes, float *max, float *sum) {
    float m = zr[0];
    for (uint c = 1; c < classes; c++)
        m = fmax(m, zr[c]);
    float s = 0.0f;
    for (uint c = 0; c < classes; c++)
        s += exp(zr[c] - m);
    *max = m;
    *sum = s;
}

/* loss[r] = logsumexp(z[r, :]) - z[r, label[r]], z of shape (rows, classes). */
__kernel void xent_forward(__global float *loss, __global const float *z,
                           __global const int *labels, const uint rows, const uint classes,
                           const uint base) {
    const size_t r = (size_t)base + get_global_id(0);
    if (r >= rows) return;
    __global const float *zr = z + r * classes;
    float m, s;
    softmax_parts(zr, classes, &m, &s);
    loss[r] = m + log(s) - zr[labels[r]];
}

/* dz[r, c] = scale * (softmax(z[r, :])[c] - (c == label[r])) */
__kernel void xent_backward(__global float *dz, __global const float *z, __global const int *labels,
                            const uint rows, const uint classes, const float scale,
                            const uint base) {
    const size_t r = (size_t)base + get_global_id(0);
    if (r >= rows) return;
    __global const float *zr = z + r * classes;
    __global float *dr = dz + r * classes;
    float m, s;
    softmax_parts(zr, classes, &m, &s);
    const int label = labels[r];
    for (uint c = 0; c < classes; c++) {
        const float p = exp(zr[c] - m) / s;
        dr[c] = scale * (p - (c == (uint)label ? 1.0f : 0.0f));
    }
}

/* loss[r] = sum_c (y[r, c] - t[r, c])^2; the caller divides the total by rows * cols */
__kernel void mse_forward(__global float *loss, __global const float *y, __global const float *t,
                          const uint rows, const uint cols, const uint base) {
    const size_t r = (size_t)base + get_global_id(0);
    if (r >= rows) return;
    float s = 0.0f;
    for (uint c = 0; c < cols; c++) {
        const float d = y[r * cols + c] - t[r * cols + c];
        s += d * d;
    }
    loss[r] = s;
}

/* dy = scale * 2 (y - t), element-wise over rows * cols values; scale = 1 / (batch * cols) */
__kernel void mse_backward(__global float *dy, __global const float *y, __global const float *t,
                           const uint n, const float scale, const uint base) {
    const size_t i = (size_t)base + get_global_id(0);
    if (i >= n) return;
    dy[i] = scale * 2.0f * (y[i] - t[i]);
}
