/* Transformer kernels (nanoGPT's GPT): layer norm, GELU, causal self-attention and the token
 * and position embeddings, each with its backward. One work-item per row, element, column
 * or (sequence, head, position); every sum runs in a fixed order, so results do not depend
 * on scheduling and the embedding gradient is deterministic. Counts above a launch go in
 * pieces from `base`, every kernel's last argument (ops/kernels.c). */
#pragma OPENCL FP_CONTRACT OFF

#define LN_EPS 1e-5f

/* out (rows, C) = (x - mean) rstd w + b per row, w and b at p[woff], p[boff]; saves each
 * row's mean and rstd = 1 / sqrt(var + eps) (biased variance, as PyTorch) */
__kernel void layernorm_forward(__global float *out, __global float *mean, __global float *rstd,
                                __global const float *x, __global const float *p,
                                const uint woff, const uint boff, const uint rows, const uint C,
                                const uint base) {
    const size_t r = (size_t)base + get_global_id(0);
    if (r >= rows) return;
    __global const float *xr = x + r * C;
    float m = 0.0f;
    for (uint c = 0; c < C; c++)
        m += xr[c];
    m /= (float)C;
    float v = 0.0f;
    for (uint c = 0; c < C; c++) {
        const float d = xr[c] - m;
        v += d * d;
    }
    v /= (float)C;
    const float s = 1.0f / sqrt(v + LN_EPS);
    __global float *o = out + r * C;
    for (uint c = 0; c < C; c++)
        o[c] = (xr[c] - m) * s * p[woff + c] + p[boff + c];
    mean[r] = m;
    rstd[r] = s;
}

/* dx (rows, C) = keep dx + the gradient of the layer norm's input from dout; keep = 1 adds
 * to dx (a residual stream's gradient), 0 overwrites it */
__kernel void layernorm_backward(__global float *dx, __global const float *dout,
                                 __global const float *x, __global const float *mean,
                                 __global const float *rstd, __global const float *p,
                                 const uint woff, const uint rows, const uint C, const uint keep,
                                 const uint base) {
    const size_t r = (size_t)base + get_global_id(0);
    if (r >= rows) return;
    __global const float *xr = x + r * C, *dr = dout + r * C;
    const float m = mean[r], s = rstd[r];
    float dn_mean = 0.0f, dn_xhat_mean = 0.0f;
    for (uint c = 0; c < C; c++) {
        const float dn = dr[c] * p[woff + c];
        dn_mean += dn;
        dn_xhat_mean += dn * (xr[c] - m) * s;
    }
    dn_mean /= (float)C;
    dn_xhat_mean /= (float)C;
    __global float *g = dx + r * C;
    for (uint c = 0; c < C; c++) {
        const float xhat = (xr[c] - m) * s;
        const float v = (dr[c] * p[woff + c] - dn_mean - xhat * dn_xhat_mean) * s;
        g[c] = keep ? g[c] + v : v;
    }
}

/* The layer norm's weight and bias gradients, column c: g[woff + c] = beta g + sum_r dout
 * xhat, g[boff + c] = beta g + sum_r dout, rows in order */
__kernel void layernorm_weights(__global float *g, const uint woff, const uint boff,
                                __global const float *dout, __global const float *x,
                                __global const float *mean, __global const float *rstd,
                                const uint rows, const uint C, const float beta,
                                const uint base) {
    const size_t c = (size_t)base + get_global_id(0);
    if (c >= C) return;
    float dw = 0.0f, db = 0.0f;
    for (uint r = 0; r < rows; r++) {
        const float d = dout[(size_t)r * C + c];
        dw += d * (x[(size_t)r * C + c] - mean[r]) * rstd[r];
        db += d;
    }
    g[woff + c] = beta * g[woff + c] + dw;
    g[boff + c] = beta * g[boff + c] + db;
}

/* y = x Phi(x), the exact (erf) GELU; y may be x */
__kernel void gelu_forward(__global float *y, __global const float *x, const uint n,
                           const uint base) {
    const size_t i = (size_t)base + get_global_id(0);
    if (i >= n) return;
    const float v = x[i];
    y[i] = 0.5f * v * (1.0f + erf(v * M_SQRT1_2_F));
}

/* dx = dy (Phi(x) + x phi(x)) from the GELU's input x; dx may be dy */
__kernel void gelu_backward(__global float *dx, __global const float *dy, __global const float *x,
                            const uint n, const uint base) {
    const size_t i = (size_t)base + get_global_id(0);
    if (i >= n) return;
    const float v = x[i];
    const float cdf = 0.5f * (1.0f + erf(v * M_SQRT1_2_F));
    const float pdf = exp(-0.5f * v * v) * 0.3989422804014327f;
    dx[i] = dy[i] * (cdf + v * pdf);
}

/* Causal self-attention of nh heads of hs features over sequences of T positions. qkv
 * (B T, 3 nh hs) holds each position's q, k and v, head h at columns h hs of each; out
 * (B T, nh hs) the heads' results side by side; att (B, nh, T, T) the softmax
 * probabilities, zero above the diagonal. One work-item per (sequence, head, position). */
__kernel void attention_forward(__global float *out, __global float *att,
                                __global const float *qkv, const uint B, const uint T,
                                const uint nh, const uint hs, const uint base) {
    const size_t i = (size_t)base + get_global_id(0);
    if (i >= (size_t)B * nh * T) return;
    const uint t = i % T, h = (i / T) % nh, b = i / ((size_t)T * nh);
    const uint Ch = nh * hs, ld = 3 * Ch;
    const float scale = 1.0f / sqrt((float)hs);
    __global const float *q = qkv + ((size_t)b * T + t) * ld + h * hs;
    __global float *a = att + i * T;
    float mx = -INFINITY;
    for (uint u = 0; u <= t; u++) {
        __global const float *k = qkv + ((size_t)b * T + u) * ld + Ch + h * hs;
        float s = 0.0f;
        for (uint j = 0; j < hs; j++)
            s += q[j] * k[j];
        s *= scale;
        a[u] = s;
        mx = fmax(mx, s);
    }
    float sum = 0.0f;
    for (uint u = 0; u <= t; u++) {
        const float e = exp(a[u] - mx);
        a[u] = e;
        sum += e;
    }
    for (uint u = 0; u <= t; u++)
        a[u] /= sum;
    for (uint u = t + 1; u < T; u++)
        a[u] = 0.0f;
    /* out = a v, a row of v at a time (each o[j] sums over u in order, as a dot product
     * would, but reading v's rows whole rather than one column at a time) */
    __global float *o = out + ((size_t)b * T + t) * Ch + h * hs;
    for (uint j = 0; j < hs; j++)
        o[j] = 0.0f;
    for (uint u = 0; u <= t; u++) {
        const float w = a[u];
        __global const float *v = qkv + ((size_t)b * T + u) * ld + 2 * Ch + h * hs;
        for (uint j = 0; j < hs; j++)
            o[j] += w * v[j];
    }
}

/* Backward, first half, per (sequence, head, query position t): the gradient of the
 * pre-softmax scores dpre (B, nh, T, T), row t, and the query's gradient into dqkv */
__kernel void attention_backward_query(__global float *dqkv, __global float *dpre,
                                       __global const float *dout, __global const float *att,
                                       __global const float *qkv, const uint B, const uint T,
                                       const uint nh, const uint hs, const uint base) {
    const size_t i = (size_t)base + get_global_id(0);
    if (i >= (size_t)B * nh * T) return;
    const uint t = i % T, h = (i / T) % nh, b = i / ((size_t)T * nh);
    const uint Ch = nh * hs, ld = 3 * Ch;
    const float scale = 1.0f / sqrt((float)hs);
    __global const float *a = att + i * T, *d = dout + ((size_t)b * T + t) * Ch + h * hs;
    __global float *g = dpre + i * T;
    float dot = 0.0f;
    for (uint u = 0; u <= t; u++) { /* g[u] = d(out) / d(att[u]) */
        __global const float *v = qkv + ((size_t)b * T + u) * ld + 2 * Ch + h * hs;
        float s = 0.0f;
        for (uint j = 0; j < hs; j++)
            s += d[j] * v[j];
        g[u] = s;
        dot += a[u] * s;
    }
    for (uint u = 0; u < T; u++)
        g[u] = u <= t ? a[u] * (g[u] - dot) : 0.0f;
    /* dq = scale g k, k's rows whole, each dq[j] summed over u in order */
    __global float *dq = dqkv + ((size_t)b * T + t) * ld + h * hs;
    for (uint j = 0; j < hs; j++)
        dq[j] = 0.0f;
    for (uint u = 0; u <= t; u++) {
        const float w = g[u];
        __global const float *k = qkv + ((size_t)b * T + u) * ld + Ch + h * hs;
        for (uint j = 0; j < hs; j++)
            dq[j] += w * k[j];
    }
    for (uint j = 0; j < hs; j++)
        dq[j] *= scale;
}

/* Backward, second half, per (sequence, head, key position u): the key's and value's
 * gradients into dqkv, summed over the query positions t >= u in order */
__kernel void attention_backward_keys(__global float *dqkv, __global const float *dpre,
                                      __global const float *dout, __global const float *att,
                                      __global const float *qkv, const uint B, const uint T,
                                      const uint nh, const uint hs, const uint base) {
    const size_t i = (size_t)base + get_global_id(0);
    if (i >= (size_t)B * nh * T) return;
    const uint u = i % T, h = (i / T) % nh, b = i / ((size_t)T * nh);
    const uint Ch = nh * hs, ld = 3 * Ch;
    const float scale = 1.0f / sqrt((float)hs);
    const size_t row0 = ((size_t)b * nh + h) * T; /* (b, h, t = 0) */
    __global float *dk = dqkv + ((size_t)b * T + u) * ld + Ch + h * hs;
    __global float *dv = dqkv + ((size_t)b * T + u) * ld + 2 * Ch + h * hs;
    /* rows of q and dout whole, each dk[j] and dv[j] summed over t in order */
    for (uint j = 0; j < hs; j++)
        dk[j] = dv[j] = 0.0f;
    for (uint t = u; t < T; t++) {
        const size_t at = (row0 + t) * T + u;
        const float wk = dpre[at], wv = att[at];
        __global const float *q = qkv + ((size_t)b * T + t) * ld + h * hs;
        __global const float *d = dout + ((size_t)b * T + t) * Ch + h * hs;
        for (uint j = 0; j < hs; j++) {
            dk[j] += wk * q[j];
            dv[j] += wv * d[j];
        }
    }
    for (uint j = 0; j < hs; j++)
        dk[j] *= scale;
}

/* out (B T, C) = wte[idx] + wpe[position], the tables at p[wte], p[wpe] */
__kernel void embedding_forward(__global float *out, __global const int *idx,
                                __global const float *p, const uint wte, const uint wpe,
                                const uint rows, const uint T, const uint C, const uint base) {
    const size_t e = (size_t)base + get_global_id(0);
    if (e >= (size_t)rows * C) return;
    const size_t r = e / C, c = e % C;
    out[e] = p[wte + (size_t)idx[r] * C + c] + p[wpe + (r % T) * C + c];
}

/* The token table's gradient, entry (v, c): g[wte + v C + c] = beta g + the sum of dout's
 * rows of the tokens equal to v, in position order: order[start[v] .. start[v + 1]) lists
 * them (made on the host from the batch) */
__kernel void embedding_backward_tokens(__global float *g, const uint wte,
                                        __global const float *dout, __global const int *order,
                                        __global const int *start, const uint V, const uint C,
                                        const float beta, const uint base) {
    const size_t e = (size_t)base + get_global_id(0);
    if (e >= (size_t)V * C) return;
    const size_t v = e / C, c = e % C;
    float s = 0.0f;
    for (int k = start[v]; k < start[v + 1]; k++)
        s += dout[(size_t)order[k] * C + c];
    g[wte + e] = beta * g[wte + e] + s;
}

/* The position table's gradient, entry (t, c): the sum over the batch's sequences */
__kernel void embedding_backward_positions(__global float *g, const uint wpe,
                                           __global const float *dout, const uint B,
                                           const uint T, const uint C, const float beta,
                                           const uint base) {
    const size_t e = (size_t)base + get_global_id(0);
    if (e >= (size_t)T * C) return;
    float s = 0.0f;
    for (uint b = 0; b < B; b++)
        s += dout[(size_t)b * T * C + e];
    g[wpe + e] = beta * g[wpe + e] + s;
}
