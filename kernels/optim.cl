/* Optimizer updates with PyTorch's semantics (torch.optim.SGD, Adam, AdamW), element-wise
 * over a flat parameter range. Scalars that depend on the step (bias corrections) are
 * computed on the host in double and passed in. Contraction into fma is off so that every
 * device, of any vendor, rounds the update the same way and replicas stay bit-identical. */
#pragma OPENCL FP_CONTRACT OFF

/* SGD: d = g + wd p; with momentum, buf = first ? d : momentum buf + (1 - dampening) d and
 * d = nesterov ? d + momentum buf : buf; then p -= lr d. */
__kernel void sgd_step(__global float *p, __global const float *g, __global float *buf,
                       const uint n, const float lr, const float momentum, const float dampening,
                       const float weight_decay, const int nesterov, const int first,
                       const uint base) {
    const size_t i = (size_t)base + get_global_id(0);
    if (i >= n) return;
    float d = g[i];
    if (weight_decay != 0.0f) d = d + weight_decay * p[i];
    if (momentum != 0.0f) {
        float b = first ? d : momentum * buf[i] + (1.0f - dampening) * d;
        buf[i] = b;
        d = nesterov ? d + momentum * b : b;
    }
    p[i] = p[i] - lr * d;
}

/* Adam / AdamW. decoupled = 0: g += wd p (Adam's L2); decoupled = 1: p *= 1 - lr wd (AdamW).
 * m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 * p -= step_size * m / (sqrt(v) / bc2_sqrt + eps), step_size = lr / (1 - b1^t),
 * bc2_sqrt = sqrt(1 - b2^t). One formula for a float and for a float16 (element-wise, so the
 * same rounding in every lane). */
#define ADAM(T, P, G, M, V)                                                                       \
    do {                                                                                          \
        T grad = (G), param = (P), m0 = (M);                                                      \
        if (weight_decay != 0.0f) {                                                               \
            if (decoupled)                                                                        \
                param = param * (1.0f - lr * weight_decay);                                       \
            else                                                                                  \
                grad = grad + weight_decay * param;                                               \
        }                                                                                         \
        const T mi = m0 + (1.0f - beta1) * (grad - m0);                                           \
        const T vi = beta2 * (V) + (1.0f - beta2) * grad * grad;                                  \
        (M) = mi;                                                                                 \
        (V) = vi;                                                                                 \
        (P) = param - step_size * (mi / (sqrt(vi) / bc2_sqrt + eps));                             \
    } while (0)

/* A work-item updates 16 consecutive elements from start + (its index - start) 16: whole
 * vectors where they fit, the last elements one by one. (A work-item per element: on PoCL's
 * CPU devices every load and store masked, and a launch per 64Ki elements; the 784,512,512,10
 * MLP's update took 400-415 us in 11 launches against 355 in one.) */
__kernel void adam_step(__global float *p, __global const float *g, __global float *m,
                        __global float *v, const uint n, const float lr, const float beta1,
                        const float beta2, const float eps, const float weight_decay,
                        const int decoupled, const float step_size, const float bc2_sqrt,
                        const uint start, const uint base) {
    const size_t i0 = start + ((size_t)base + get_global_id(0) - start) * 16;
    if (i0 >= n) return;
    if (i0 + 16 <= n) {
        float16 pv = vload16(0, p + i0), mv = vload16(0, m + i0), vv = vload16(0, v + i0);
        ADAM(float16, pv, vload16(0, g + i0), mv, vv);
        vstore16(pv, 0, p + i0);
        vstore16(mv, 0, m + i0);
        vstore16(vv, 0, v + i0);
        return;
    }
    for (size_t i = i0; i < n; i++)
        ADAM(float, p[i], g[i], m[i], v[i]);
}
