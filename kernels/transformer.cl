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
                                __global const float *x, __global const float *p, const uint woff,
                                const uint boff, const uint rows, const uint C, const uint base) {
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
                                const uint rows, const uint C, const float beta, const uint base) {
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

/* The exact GELU's gate Phi(x) = (1 + erf(x / sqrt 2)) / 2 and its slope, eight values at a
 * time: PoCL calls a scalar erf per value, while this vectorizes (a work-item's float8 ops
 * are SIMD ops, its exp a vector exp). erf as Arm's optimized-routines erff computes it (the
 * same minimax coefficients, about 1 ulp): for |v| < 0.875 v + v P(v^2), else
 * 1 - exp(-(a + a Q(a))) with a = |v|; so 1 - Phi for negative x comes straight from the exp,
 * without the cancellation of 1 + erf. Past |v| = 4, Phi is 0 or 1 (1 - erf(4) < 2e-8). */
#define F8(c) ((float8)(c))
float8 gelu_gate8(const float8 x) {
    const float8 v = x * F8(M_SQRT1_2_F), a = fabs(v), v2 = v * v;
    float8 p = fma(F8(-0x1.3a1a82p-11f), v2, F8(0x1.473f48p-08f));
    p = fma(p, v2, F8(-0x1.b68bd2p-06f));
    p = fma(p, v2, F8(0x1.ce1a46p-04f));
    p = fma(p, v2, F8(-0x1.8126e0p-02f));
    p = fma(p, v2, F8(0x1.06eba6p-03f));
    const float8 erf_near = fma(p, v, v);
    float8 q = fma(fma(F8(0x1.222900p-16f), a, F8(-0x1.91d2ccp-12f)), v2,
                   fma(F8(0x1.fd1336p-9f), a, F8(-0x1.8d6300p-6f)));
    q = fma(q, a, F8(0x1.b55cb0p-4f));
    q = fma(q, a, F8(0x1.450aa0p-1f));
    q = fma(q, a, F8(0x1.079d0cp-3f));
    q = fma(q, a, a);
    const float8 tail = select(F8(0.5f) * exp(-fmin(q, F8(80.0f))), F8(0.0f), a >= F8(4.0f));
    const float8 far = select(F8(1.0f) - tail, tail, x < F8(0.0f));
    return select(far, fma(F8(0.5f), erf_near, F8(0.5f)), a < F8(0.875f));
}

/* Values i .. i + 7 of p (those below n; the others read as 0). */
float8 load8(__global const float *p, const size_t i, const uint n) {
    if (i + 8 <= n) return vload8(0, p + i);
    float t[8] = {0};
    for (uint k = 0; k < 8 && i + k < n; k++)
        t[k] = p[i + k];
    return vload8(0, t);
}

void store8(__global float *p, const size_t i, const uint n, const float8 v) {
    if (i + 8 <= n) {
        vstore8(v, 0, p + i);
        return;
    }
    float t[8];
    vstore8(v, 0, t);
    for (uint k = 0; k < 8 && i + k < n; k++)
        p[i + k] = t[k];
}

/* y = x Phi(x), the exact (erf) GELU, values 8 g .. 8 g + 7 for work-item g; y may be x */
__kernel void gelu_forward(__global float *y, __global const float *x, const uint n,
                           const uint base) {
    const size_t i = ((size_t)base + get_global_id(0)) * 8;
    if (i >= n) return;
    const float8 v = load8(x, i, n);
    store8(y, i, n, v * gelu_gate8(v));
}

/* dx = dy (Phi(x) + x phi(x)) from the GELU's input x, 8 values per work-item; dx may be dy */
__kernel void gelu_backward(__global float *dx, __global const float *dy, __global const float *x,
                            const uint n, const uint base) {
    const size_t i = ((size_t)base + get_global_id(0)) * 8;
    if (i >= n) return;
    const float8 v = load8(x, i, n);
    const float8 pdf = exp(F8(-0.5f) * v * v) * F8(0.3989422804014327f);
    store8(dx, i, n, load8(dy, i, n) * (gelu_gate8(v) + v * pdf));
}

/* Heads of up to 8 HS_VECTORS features keep a row of the output in registers. */
#define HS_VECTORS 16

/* sum_j q[j] k[j] over a head's hs features, eight at a time when hs allows */
float dot_hs(__global const float *q, __global const float *k, const uint hs) {
    if ((hs & 7) == 0) {
        float8 acc = (float8)(0.0f);
        for (uint j = 0; j < hs; j += 8)
            acc = fma(vload8(0, q + j), vload8(0, k + j), acc);
        const float4 h4 = acc.lo + acc.hi;
        const float2 h2 = h4.lo + h4.hi;
        return h2.x + h2.y;
    }
    float s = 0.0f;
    for (uint j = 0; j < hs; j++)
        s += q[j] * k[j];
    return s;
}

/* o[j] = scale sum_{u < count} w[u] rows[u ld + j], j < hs, each summed over u in order
 * (reading the rows whole, not a column at a time), in registers when hs allows */
void weighted_rows(__global float *o, __global const float *w, __global const float *rows,
                   const uint ld, const uint count, const uint hs, const float scale) {
    if ((hs & 7) == 0 && hs <= 8 * HS_VECTORS) {
        float8 acc[HS_VECTORS];
        const uint nv = hs / 8;
        for (uint c = 0; c < nv; c++)
            acc[c] = (float8)(0.0f);
        for (uint u = 0; u < count; u++) {
            const float8 wu = (float8)(w[u]);
            __global const float *r = rows + (size_t)u * ld;
            for (uint c = 0; c < nv; c++)
                acc[c] = fma(wu, vload8(c, r), acc[c]);
        }
        for (uint c = 0; c < nv; c++)
            vstore8(acc[c] * scale, c, o);
        return;
    }
    for (uint j = 0; j < hs; j++)
        o[j] = 0.0f;
    for (uint u = 0; u < count; u++) {
        const float wu = w[u];
        __global const float *r = rows + (size_t)u * ld;
        for (uint j = 0; j < hs; j++)
            o[j] += wu * r[j];
    }
    for (uint j = 0; j < hs; j++)
        o[j] *= scale;
}

/* Causal self-attention of nh heads of hs features over sequences of T positions. qkv
 * (B T, 3 nh hs) holds each position's q, k and v, head h at columns h hs of each; out
 * (B T, nh hs) the heads' results side by side; att (B, nh, T, T) the softmax
 * probabilities, zero above the diagonal. One work-item per (sequence, head, position). */
__kernel void attention_forward(__global float *out, __global float *att, __global const float *qkv,
                                const uint B, const uint T, const uint nh, const uint hs,
                                const uint base) {
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
        const float s = dot_hs(q, k, hs) * scale;
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
    /* out = a v */
    weighted_rows(out + ((size_t)b * T + t) * Ch + h * hs, a,
                  qkv + (size_t)b * T * ld + 2 * Ch + h * hs, ld, t + 1, hs, 1.0f);
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
        const float s = dot_hs(d, v, hs);
        g[u] = s;
        dot += a[u] * s;
    }
    for (uint u = 0; u < T; u++)
        g[u] = u <= t ? a[u] * (g[u] - dot) : 0.0f;
    /* dq = scale g k */
    weighted_rows(dqkv + ((size_t)b * T + t) * ld + h * hs, g,
                  qkv + (size_t)b * T * ld + Ch + h * hs, ld, t + 1, hs, scale);
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
                                           __global const float *dout, const uint B, const uint T,
                                           const uint C, const float beta, const uint base) {
    const size_t e = (size_t)base + get_global_id(0);
    if (e >= (size_t)T * C) return;
    float s = 0.0f;
    for (uint b = 0; b < B; b++)
        s += dout[(size_t)b * T * C + e];
    g[wpe + e] = beta * g[wpe + e] + s;
}
