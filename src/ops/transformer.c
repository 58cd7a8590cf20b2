/* Host wrappers of the transformer kernels (kernels/transformer.cl). */
#include "launch.h"

#define U(v) ((cl_uint)(v))

clpar_status clpar_op_layernorm_forward(clpar_device *d, cl_mem out, cl_mem mean, cl_mem rstd,
                                        cl_mem x, cl_mem p, size_t woff, size_t boff, size_t rows,
                                        size_t C, cl_event *event) {
    TRY(check_u32(rows * C, "layernorm size"));
    cl_kernel k = d->kernels[CLPAR_K_layernorm_forward];
    cl_uint wo = U(woff), bo = U(boff), r = U(rows), c = U(C);
    cl_int e = ARG(k, 0, out) | ARG(k, 1, mean) | ARG(k, 2, rstd) | ARG(k, 3, x) | ARG(k, 4, p) |
               ARG(k, 5, wo) | ARG(k, 6, bo) | ARG(k, 7, r) | ARG(k, 8, c);
    return launch(d, CLPAR_K_layernorm_forward, e, rows, "layernorm_forward", event);
}

clpar_status clpar_op_layernorm_backward(clpar_device *d, cl_mem dx, cl_mem dout, cl_mem x,
                                         cl_mem mean, cl_mem rstd, cl_mem p, size_t woff,
                                         size_t rows, size_t C, bool keep, cl_event *event) {
    TRY(check_u32(rows * C, "layernorm size"));
    cl_kernel k = d->kernels[CLPAR_K_layernorm_backward];
    cl_uint wo = U(woff), r = U(rows), c = U(C), kp = keep;
    cl_int e = ARG(k, 0, dx) | ARG(k, 1, dout) | ARG(k, 2, x) | ARG(k, 3, mean) | ARG(k, 4, rstd) |
               ARG(k, 5, p) | ARG(k, 6, wo) | ARG(k, 7, r) | ARG(k, 8, c) | ARG(k, 9, kp);
    return launch(d, CLPAR_K_layernorm_backward, e, rows, "layernorm_backward", event);
}

clpar_status clpar_op_layernorm_weights(clpar_device *d, cl_mem g, size_t woff, size_t boff,
                                        cl_mem dout, cl_mem x, cl_mem mean, cl_mem rstd,
                                        size_t rows, size_t C, float beta, cl_event *event) {
    TRY(check_u32(rows * C, "layernorm size"));
    cl_kernel k = d->kernels[CLPAR_K_layernorm_weights];
    cl_uint wo = U(woff), bo = U(boff), r = U(rows), c = U(C);
    cl_int e = ARG(k, 0, g) | ARG(k, 1, wo) | ARG(k, 2, bo) | ARG(k, 3, dout) | ARG(k, 4, x) |
               ARG(k, 5, mean) | ARG(k, 6, rstd) | ARG(k, 7, r) | ARG(k, 8, c) | ARG(k, 9, beta);
    return launch(d, CLPAR_K_layernorm_weights, e, C, "layernorm_weights", event);
}

clpar_status clpar_op_gelu_forward(clpar_device *d, cl_mem y, cl_mem x, size_t n, cl_event *event) {
    TRY(check_u32(n, "gelu size"));
    cl_kernel k = d->kernels[CLPAR_K_gelu_forward];
    cl_uint nn = U(n);
    cl_int e = ARG(k, 0, y) | ARG(k, 1, x) | ARG(k, 2, nn);
    return launch(d, CLPAR_K_gelu_forward, e, (n + 7) / 8, "gelu_forward", event); /* 8 each */
}

clpar_status clpar_op_gelu_backward(clpar_device *d, cl_mem dx, cl_mem dy, cl_mem x, size_t n,
                                    cl_event *event) {
    TRY(check_u32(n, "gelu size"));
    cl_kernel k = d->kernels[CLPAR_K_gelu_backward];
    cl_uint nn = U(n);
    cl_int e = ARG(k, 0, dx) | ARG(k, 1, dy) | ARG(k, 2, x) | ARG(k, 3, nn);
    return launch(d, CLPAR_K_gelu_backward, e, (n + 7) / 8, "gelu_backward", event);
}

static clpar_status attention_sizes(size_t B, size_t T, size_t nh, size_t hs) {
    TRY(check_u32(B * T * 3 * nh * hs, "attention activations"));
    return check_u32(B * nh * T * T, "attention probabilities");
}

clpar_status clpar_op_attention_forward(clpar_device *d, cl_mem out, cl_mem att, cl_mem qkv,
                                        size_t B, size_t T, size_t nh, size_t hs, cl_event *event) {
    TRY(attention_sizes(B, T, nh, hs));
    cl_kernel k = d->kernels[CLPAR_K_attention_forward];
    cl_uint b = U(B), t = U(T), h = U(nh), s = U(hs);
    cl_int e = ARG(k, 0, out) | ARG(k, 1, att) | ARG(k, 2, qkv) | ARG(k, 3, b) | ARG(k, 4, t) |
               ARG(k, 5, h) | ARG(k, 6, s);
    return launch(d, CLPAR_K_attention_forward, e, B * nh * T, "attention_forward", event);
}

clpar_status clpar_op_attention_backward(clpar_device *d, cl_mem dqkv, cl_mem dpre, cl_mem dout,
                                         cl_mem att, cl_mem qkv, size_t B, size_t T, size_t nh,
                                         size_t hs, cl_event *event) {
    TRY(attention_sizes(B, T, nh, hs));
    cl_uint b = U(B), t = U(T), h = U(nh), s = U(hs);
    cl_kernel k = d->kernels[CLPAR_K_attention_backward_query];
    cl_int e = ARG(k, 0, dqkv) | ARG(k, 1, dpre) | ARG(k, 2, dout) | ARG(k, 3, att) |
               ARG(k, 4, qkv) | ARG(k, 5, b) | ARG(k, 6, t) | ARG(k, 7, h) | ARG(k, 8, s);
    TRY(launch(d, CLPAR_K_attention_backward_query, e, B * nh * T, "attention_backward_query",
               NULL));
    k = d->kernels[CLPAR_K_attention_backward_keys];
    e = ARG(k, 0, dqkv) | ARG(k, 1, dpre) | ARG(k, 2, dout) | ARG(k, 3, att) | ARG(k, 4, qkv) |
        ARG(k, 5, b) | ARG(k, 6, t) | ARG(k, 7, h) | ARG(k, 8, s);
    return launch(d, CLPAR_K_attention_backward_keys, e, B * nh * T, "attention_backward_keys",
                  event);
}

clpar_status clpar_op_embedding_forward(clpar_device *d, cl_mem out, cl_mem idx, cl_mem p,
                                        size_t wte, size_t wpe, size_t rows, size_t T, size_t C,
                                        cl_event *event) {
    TRY(check_u32(rows * C, "embedding size"));
    cl_kernel k = d->kernels[CLPAR_K_embedding_forward];
    cl_uint te = U(wte), pe = U(wpe), r = U(rows), t = U(T), c = U(C);
    cl_int e = ARG(k, 0, out) | ARG(k, 1, idx) | ARG(k, 2, p) | ARG(k, 3, te) | ARG(k, 4, pe) |
               ARG(k, 5, r) | ARG(k, 6, t) | ARG(k, 7, c);
    return launch(d, CLPAR_K_embedding_forward, e, rows * C, "embedding_forward", event);
}

clpar_status clpar_op_embedding_backward(clpar_device *d, cl_mem g, size_t wte, size_t wpe,
                                         cl_mem dout, cl_mem order, cl_mem start, size_t B,
                                         size_t T, size_t V, size_t C, float beta_tokens,
                                         float beta_positions, cl_event *event) {
    TRY(check_u32(V * C, "embedding table"));
    TRY(check_u32(B * T * C, "embedding gradient"));
    cl_uint te = U(wte), pe = U(wpe), b = U(B), t = U(T), v = U(V), c = U(C);
    cl_kernel k = d->kernels[CLPAR_K_embedding_backward_tokens];
    cl_int e = ARG(k, 0, g) | ARG(k, 1, te) | ARG(k, 2, dout) | ARG(k, 3, order) |
               ARG(k, 4, start) | ARG(k, 5, v) | ARG(k, 6, c) | ARG(k, 7, beta_tokens);
    TRY(launch(d, CLPAR_K_embedding_backward_tokens, e, V * C, "embedding_backward_tokens", NULL));
    k = d->kernels[CLPAR_K_embedding_backward_positions];
    e = ARG(k, 0, g) | ARG(k, 1, pe) | ARG(k, 2, dout) | ARG(k, 3, b) | ARG(k, 4, t) |
        ARG(k, 5, c) | ARG(k, 6, beta_positions);
    return launch(d, CLPAR_K_embedding_backward_positions, e, T * C, "embedding_backward_positions",
                  event);
}

void clpar_embedding_order(const int *idx, size_t rows, size_t V, int *order, int *start) {
    for (size_t v = 0; v <= V; v++)
        start[v] = 0;
    for (size_t r = 0; r < rows; r++)
        start[idx[r] + 1]++;
    for (size_t v = 0; v < V; v++)
        start[v + 1] += start[v];
    int *next = start; /* fill in position order, then shift the starts back */
    for (size_t r = 0; r < rows; r++)
        order[next[idx[r]]++] = (int)r;
    for (size_t v = V; v > 0; v--)
        start[v] = start[v - 1];
    start[0] = 0;
}
