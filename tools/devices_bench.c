/* clpar-devices --bench: peak, SGEMM and bandwidth of a device, and a model's GEMMs. */
#include "devices_bench.h"
#include "cli.h"

#include <stdlib.h>
#include <string.h>

clpar_status bench_device(clpar_runtime *rt, int index, size_t n, bench_result *res) {
    clpar_device *d;
    clpar_status st = clpar_device_init(rt, index, &d);
    if (st != CLPAR_OK) return st;
    cl_mem a = NULL, b = NULL, c = NULL, big = NULL;
    size_t bytes = n * n * sizeof(float);
    float *host = calloc(n * n, sizeof(float));
    if (!host) st = CLPAR_ENOMEM;
    if (st == CLPAR_OK) st = clpar_device_alloc(d, bytes, &a);
    if (st == CLPAR_OK) st = clpar_device_alloc(d, bytes, &b);
    if (st == CLPAR_OK) st = clpar_device_alloc(d, bytes, &c);
    for (size_t i = 0; host && i < n * n; i++)
        host[i] = (float)(i % 17) * 0.01f;
    if (st == CLPAR_OK) st = clpar_device_write(d, a, 0, bytes, host);
    if (st == CLPAR_OK) st = clpar_device_write(d, b, 0, bytes, host);
    /* one untimed call compiles CLBlast's kernels for this device */
    if (st == CLPAR_OK)
        st = clpar_op_gemm(d, 0, 0, n, n, n, 1.0f, a, 0, n, b, 0, n, 0.0f, c, 0, n, NULL);
    if (st == CLPAR_OK) st = clpar_device_finish(d);
    int reps = 0;
    double t0 = cli_now(), t = 0;
    while (st == CLPAR_OK && (reps < 3 || t < 1.0) && reps < 100) {
        st = clpar_op_gemm(d, 0, 0, n, n, n, 1.0f, a, 0, n, b, 0, n, 0.0f, c, 0, n, NULL);
        if (st == CLPAR_OK) st = clpar_device_finish(d);
        reps++;
        t = cli_now() - t0;
    }
    if (st == CLPAR_OK) res->gflops = 2.0 * n * n * n * reps / t / 1e9;
    if (st == CLPAR_OK) st = clpar_op_measure_peak(d, &res->peak_gflops);
    size_t tb = 64u << 20;
    float *hb = malloc(tb);
    if (!hb && st == CLPAR_OK) st = CLPAR_ENOMEM;
    if (st == CLPAR_OK) st = clpar_device_alloc(d, tb, &big);
    if (hb) memset(hb, 1, tb);
    if (st == CLPAR_OK) st = clpar_device_write(d, big, 0, tb, hb); /* first touch */
    t0 = cli_now();
    for (int i = 0; i < 3 && st == CLPAR_OK; i++)
        st = clpar_device_write(d, big, 0, tb, hb);
    if (st == CLPAR_OK) res->h2d_gbs = 3.0 * tb / (cli_now() - t0) / 1e9;
    t0 = cli_now();
    for (int i = 0; i < 3 && st == CLPAR_OK; i++)
        st = clpar_device_read(d, hb, big, 0, tb);
    if (st == CLPAR_OK) res->d2h_gbs = 3.0 * tb / (cli_now() - t0) / 1e9;
    free(hb);
    free(host);
    clpar_device_release(d, a);
    clpar_device_release(d, b);
    clpar_device_release(d, c);
    clpar_device_release(d, big);
    clpar_device_free(d);
    return st;
}

/* ---- one call of a step's kernels, timed ---- */

enum {
    OP_GEMM,
    OP_LN_F,
    OP_LN_B,
    OP_LN_W,
    OP_GELU_F,
    OP_GELU_B,
    OP_ATT_F,
    OP_ATT_B,
    OP_XENT_F,
    OP_XENT_B
};
typedef struct {
    int kind;
    clpar_transpose ta, tb;
    size_t m, n, k; /* a GEMM's; else m = rows and n = width, or (B, T) for attention */
    float beta;
} op_call;

/* One call of o on the scratch buffers s[0..4] (each big enough for any operand), labels
 * (rows ints) and a GPT of C features in H heads. */
static clpar_status run_op(clpar_device *d, const op_call *o, cl_mem *s, cl_mem labels, size_t C,
                           size_t H) {
    size_t lda = o->ta ? o->m : o->k, ldb = o->tb ? o->k : o->n;
    switch (o->kind) {
    case OP_GEMM:
        return clpar_op_gemm(d, o->ta, o->tb, o->m, o->n, o->k, 1.0f, s[0], 0, lda, s[1], 0, ldb,
                             o->beta, s[2], 0, o->n, NULL);
    case OP_LN_F:
        return clpar_op_layernorm_forward(d, s[0], s[2], s[3], s[1], s[4], 0, o->n, o->m, o->n,
                                          NULL);
    case OP_LN_B:
        return clpar_op_layernorm_backward(d, s[0], s[1], s[2], s[3], s[3], s[4], 0, o->m, o->n,
                                           true, NULL);
    case OP_LN_W:
        return clpar_op_layernorm_weights(d, s[0], 0, o->n, s[1], s[2], s[3], s[3], o->m, o->n,
                                          1.0f, NULL);
    case OP_GELU_F:
        return clpar_op_gelu_forward(d, s[0], s[1], o->m * o->n, NULL);
    case OP_GELU_B:
        return clpar_op_gelu_backward(d, s[0], s[1], s[2], o->m * o->n, NULL);
    case OP_ATT_F:
        return clpar_op_attention_forward(d, s[0], s[1], s[2], o->m, o->n, H, C / H, NULL);
    case OP_ATT_B:
        return clpar_op_attention_backward(d, s[0], s[1], s[3], s[4], s[2], o->m, o->n, H, C / H,
                                           NULL);
    case OP_XENT_F:
        return clpar_op_xent_forward(d, s[0], s[1], labels, o->m, o->n, NULL);
    default:
        return clpar_op_xent_backward(d, s[0], s[1], labels, o->m, o->n, 1.0f, NULL);
    }
}

/* Seconds per call of o: one untimed call, then calls until 0.2 s or 100 of them. */
static clpar_status time_op(clpar_device *d, const op_call *o, cl_mem *s, cl_mem labels, size_t C,
                            size_t H, double *seconds) {
    TRY_STATUS(run_op(d, o, s, labels, C, H));
    TRY_STATUS(clpar_device_finish(d));
    int reps = 0;
    double t0 = cli_now(), t = 0;
    while ((reps < 3 || t < 0.2) && reps < 100) {
        TRY_STATUS(run_op(d, o, s, labels, C, H));
        TRY_STATUS(clpar_device_finish(d));
        reps++;
        t = cli_now() - t0;
    }
    *seconds = t / reps;
    return CLPAR_OK;
}

/* Appends a row, and the call it times, for each product of the model's linear maps at the
 * batch (clpar_model_linears; an MLP's first layer has no input gradient), up to cap. */
static void add_linear_rows(const clpar_model_spec *m, size_t batch, bench_product *out,
                            op_call *calls, int cap, int *count) {
    static const char *what[3] = {"forward", "input grad", "weight grad"};
    clpar_model_linear lin[CLPAR_MAX_LAYERS + 5];
    int nl = clpar_model_linears(m, batch, lin, CLPAR_MAX_LAYERS + 5);
    for (int l = 0; l < nl; l++)
        for (int j = 0; j < 3 && *count < cap; j++) {
            if (j == 1 && !lin[l].with_dx) continue;
            clpar_gemm_shape g = clpar_model_linear_product(&lin[l], j);
            /* the weight gradient accumulates, as the layers run it */
            calls[*count] =
                (op_call){OP_GEMM, g.trans_a, g.trans_b, g.m, g.n, g.k, j == 2 ? 1.0f : 0.0f};
            out[(*count)++] = (bench_product){lin[l].layer, lin[l].name,     what[j], g.m, g.n,
                                              g.k,          lin[l].per_step, 0,       0};
        }
}

clpar_status bench_products(clpar_runtime *rt, int index, const clpar_model_spec *m, size_t batch,
                            bench_product *out, int cap, int *count) {
    *count = 0;
    op_call calls[3 * CLPAR_MAX_LAYERS];
    if (cap > 3 * CLPAR_MAX_LAYERS) cap = 3 * CLPAR_MAX_LAYERS;
    add_linear_rows(m, batch, out, calls, cap, count);
    size_t big = 0; /* any operand fits */
    for (int i = 0; i < *count; i++) {
        size_t m_ = out[i].m, n_ = out[i].n, k_ = out[i].k;
        size_t most = m_ * k_ > k_ * n_ ? m_ * k_ : k_ * n_;
        if (m_ * n_ > most) most = m_ * n_;
        if (most > big) big = most;
    }
    clpar_device *d;
    TRY_STATUS(clpar_device_init(rt, index, &d));
    float *zeros = calloc(big ? big : 1, sizeof(float));
    cl_mem bufs[3] = {NULL, NULL, NULL};
    clpar_status st = zeros ? CLPAR_OK : CLPAR_ENOMEM;
    for (int i = 0; i < 3 && st == CLPAR_OK; i++) {
        st = clpar_device_alloc(d, big * sizeof(float), &bufs[i]);
        if (st == CLPAR_OK) st = clpar_device_write(d, bufs[i], 0, big * sizeof(float), zeros);
    }
    for (int i = 0; i < *count && st == CLPAR_OK; i++) {
        bench_product *p = &out[i];
        st = time_op(d, &calls[i], bufs, NULL, 0, 1, &p->seconds);
        if (st == CLPAR_OK) p->gflops = 2.0 * p->m * p->n * p->k / p->seconds / 1e9;
    }
    for (int i = 0; i < 3; i++)
        clpar_device_release(d, bufs[i]);
    clpar_device_free(d);
    free(zeros);
    return st;
}

clpar_status bench_gpt(clpar_runtime *rt, int index, const clpar_model_spec *m, size_t batch,
                       bench_product *out, int cap, int *count) {
    *count = 0;
    op_call calls[BENCH_GPT_OPS]; /* what each row of out times */
    if (cap > BENCH_GPT_OPS) cap = BENCH_GPT_OPS;
    const clpar_gpt_config *g = &m->gpt;
    size_t T = g->ctx, C = g->embd, H = g->heads, V = g->vocab ? g->vocab : 256, R = batch * T;
    int L = g->layers;
    size_t big = R * 4 * C; /* the widest operand: an MLP's hidden, logits, probabilities */
    if (R * V > big) big = R * V;
    if (batch * H * T * T > big) big = batch * H * T * T;
    if (4 * C * C > big) big = 4 * C * C;
    clpar_device *d;
    TRY_STATUS(clpar_device_init(rt, index, &d));
    float *fill = malloc(big * sizeof(float));
    cl_mem s[5] = {NULL}, labels = NULL;
    clpar_status st = fill ? CLPAR_OK : CLPAR_ENOMEM;
    for (size_t i = 0; fill && i < big; i++) /* small, varied, finite: no kernel sees NaN */
        fill[i] = (float)(i % 13) * 0.01f - 0.06f;
    for (int i = 0; i < 5 && st == CLPAR_OK; i++) {
        st = clpar_device_alloc(d, big * sizeof(float), &s[i]);
        if (st == CLPAR_OK) st = clpar_device_write(d, s[i], 0, big * sizeof(float), fill);
    }
    if (st == CLPAR_OK) st = clpar_device_alloc(d, R * sizeof(cl_int), &labels);
    if (st == CLPAR_OK) { /* token 0 everywhere: a valid label */
        memset(fill, 0, R * sizeof(cl_int));
        st = clpar_device_write(d, labels, 0, R * sizeof(cl_int), fill);
    }
    add_linear_rows(m, batch, out, calls, cap, count);
    const struct {
        const char *name, *what;
        int kind, per_step;
        size_t m, n;
    } ops[9] = {{"layer norms", "forward", OP_LN_F, 2 * L + 1, R, C},
                {"layer norms", "input grad", OP_LN_B, 2 * L + 1, R, C},
                {"layer norms", "weight grad", OP_LN_W, 2 * L + 1, R, C},
                {"GELU", "forward", OP_GELU_F, L, R, 4 * C},
                {"GELU", "input grad", OP_GELU_B, L, R, 4 * C},
                {"attention", "forward", OP_ATT_F, L, batch, T},
                {"attention", "input grad", OP_ATT_B, L, batch, T},
                {"cross-entropy", "forward", OP_XENT_F, 1, R, V},
                {"cross-entropy", "input grad", OP_XENT_B, 1, R, V}};
    for (int i = 0; i < 9 && *count < cap; i++) {
        calls[*count] =
            (op_call){ops[i].kind, CLPAR_NO_TRANS, CLPAR_NO_TRANS, ops[i].m, ops[i].n, 0, 0.0f};
        out[(*count)++] = (bench_product){-1, ops[i].name,     ops[i].what, ops[i].m, ops[i].n,
                                          0,  ops[i].per_step, 0,           0};
    }
    for (int i = 0; i < *count && st == CLPAR_OK; i++) {
        bench_product *p = &out[i];
        st = time_op(d, &calls[i], s, labels, C, H, &p->seconds);
        if (st == CLPAR_OK && p->k) p->gflops = 2.0 * p->m * p->n * p->k / p->seconds / 1e9;
    }
    for (int i = 0; i < 5; i++)
        clpar_device_release(d, s[i]);
    clpar_device_release(d, labels);
    clpar_device_free(d);
    free(fill);
    return st;
}
