/* The transformer's kernels against double-precision host references: each forward against
 * the formula, each backward against central finite differences of the host formula, of
 * the loss sum(out * r) for a random r. Small odd sizes. */
#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* host references, in double */

static void ln_ref(double *out, const double *x, const double *w, const double *b, int rows,
                   int C) {
    for (int r = 0; r < rows; r++) {
        double m = 0, v = 0;
        for (int c = 0; c < C; c++)
            m += x[r * C + c];
        m /= C;
        for (int c = 0; c < C; c++)
            v += (x[r * C + c] - m) * (x[r * C + c] - m);
        v /= C;
        for (int c = 0; c < C; c++)
            out[r * C + c] = (x[r * C + c] - m) / sqrt(v + 1e-5) * w[c] + b[c];
    }
}

static double gelu_ref(double x) {
    return 0.5 * x * (1 + erf(x / sqrt(2.0)));
}

static void attention_ref(double *out, const double *qkv, int B, int T, int nh, int hs) {
    int Ch = nh * hs, ld = 3 * Ch;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < nh; h++)
            for (int t = 0; t < T; t++) {
                double s[64], mx = -INFINITY, sum = 0;
                for (int u = 0; u <= t; u++) {
                    s[u] = 0;
                    for (int j = 0; j < hs; j++)
                        s[u] += qkv[(b * T + t) * ld + h * hs + j] *
                                qkv[(b * T + u) * ld + Ch + h * hs + j];
                    s[u] /= sqrt((double)hs);
                    mx = fmax(mx, s[u]);
                }
                for (int u = 0; u <= t; u++)
                    sum += s[u] = exp(s[u] - mx);
                for (int j = 0; j < hs; j++) {
                    double o = 0;
                    for (int u = 0; u <= t; u++)
                        o += s[u] / sum * qkv[(b * T + u) * ld + 2 * Ch + h * hs + j];
                    out[(b * T + t) * Ch + h * hs + j] = o;
                }
            }
}

static double dot(const double *a, const float *r, int n) {
    double s = 0;
    for (int i = 0; i < n; i++)
        s += a[i] * r[i];
    return s;
}

static void to_double(double *d, const float *f, int n) {
    for (int i = 0; i < n; i++)
        d[i] = f[i];
}

/* d/dv[i] of sum(f(v) * r) by central differences, for every i < n */
#define FD(grad, v, n, out, nout, r, call)                                                         \
    for (int i_ = 0; i_ < (n); i_++) {                                                             \
        double keep_ = (v)[i_], h_ = 1e-4 * fmax(1.0, fabs(keep_));                                \
        (v)[i_] = keep_ + h_;                                                                      \
        call;                                                                                      \
        double up_ = dot(out, r, nout);                                                            \
        (v)[i_] = keep_ - h_;                                                                      \
        call;                                                                                      \
        double down_ = dot(out, r, nout);                                                          \
        (v)[i_] = keep_;                                                                           \
        (grad)[i_] = (up_ - down_) / (2 * h_);                                                     \
    }

Test(transformer_ops, layernorm_forward_backward_and_weights) {
    clpar_device *d = t_device(0);
    enum { R = 5, C = 7 };
    float x[R * C], p[2 * C + 3], r[R * C], g0[R * C];
    t_fill(x, R * C, 1, -2, 2);
    t_fill(p, 2 * C + 3, 2, 0.5, 1.5);
    t_fill(r, R * C, 3, -1, 1);
    t_fill(g0, R * C, 4, -1, 1);
    double xd[R * C], w[C], b[C], out[R * C];
    to_double(xd, x, R * C);
    to_double(w, p + 3, C);
    to_double(b, p + 3 + C, C);
    ln_ref(out, xd, w, b, R, C);
    cl_mem mx = t_upload(d, x, R * C), mp = t_upload(d, p, 2 * C + 3), mr = t_upload(d, r, R * C);
    cl_mem mo, mm, ms, mdx = t_upload(d, g0, R * C), mg;
    float zero[2 * C + 3] = {0};
    mg = t_upload(d, zero, 2 * C + 3);
    T_OK(clpar_device_alloc(d, R * C * 4, &mo));
    T_OK(clpar_device_alloc(d, R * 4, &mm));
    T_OK(clpar_device_alloc(d, R * 4, &ms));
    T_OK(clpar_op_layernorm_forward(d, mo, mm, ms, mx, mp, 3, 3 + C, R, C, NULL));
    T_OK(clpar_op_layernorm_backward(d, mdx, mr, mx, mm, ms, mp, 3, R, C, true, NULL));
    T_OK(clpar_op_layernorm_weights(d, mg, 3, 3 + C, mr, mx, mm, ms, R, C, 0.0f, NULL));
    float *o = t_download(d, mo, R * C), *dx = t_download(d, mdx, R * C),
          *g = t_download(d, mg, 2 * C + 3);
    cr_expect_lt(t_rel_l2_d(o, out, R * C), 1e-6, "forward");
    double want[R * C], gw[C], gb[C];
    FD(want, xd, R * C, out, R * C, r, ln_ref(out, xd, w, b, R, C));
    for (int i = 0; i < R * C; i++)
        want[i] += g0[i]; /* keep: added to what dx held */
    cr_expect_lt(t_rel_l2_d(dx, want, R * C), 1e-4, "input gradient");
    FD(gw, w, C, out, R * C, r, ln_ref(out, xd, w, b, R, C));
    FD(gb, b, C, out, R * C, r, ln_ref(out, xd, w, b, R, C));
    cr_expect_lt(t_rel_l2_d(g + 3, gw, C), 1e-4, "weight gradient");
    cr_expect_lt(t_rel_l2_d(g + 3 + C, gb, C), 1e-4, "bias gradient");
    cr_expect(g[0] == 0 && g[1] == 0 && g[2] == 0, "wrote before its range");
    free(o);
    free(dx);
    free(g);
    cl_mem all[] = {mx, mp, mr, mo, mm, ms, mdx, mg};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        clpar_device_release(d, all[i]);
}

Test(transformer_ops, gelu_forward_backward) {
    clpar_device *d = t_device(0);
    /* every branch of the kernels' erf (|x| below 1.24, up to 5.66, beyond), and a last
     * work-item with 5 of its 8 values */
    enum { N = 61 };
    float x[N], r[N];
    t_fill(x, N, 5, -7, 7);
    t_fill(r, N, 6, -1, 1);
    double xd[N], out[N], want[N];
    to_double(xd, x, N);
    for (int i = 0; i < N; i++)
        out[i] = gelu_ref(xd[i]);
    cl_mem mx = t_upload(d, x, N), mr = t_upload(d, r, N), my;
    T_OK(clpar_device_alloc(d, N * 4, &my));
    T_OK(clpar_op_gelu_forward(d, my, mx, N, NULL));
    T_OK(clpar_op_gelu_backward(d, mr, mr, mx, N, NULL)); /* in place, as the MLP runs it */
    float *y = t_download(d, my, N), *dx = t_download(d, mr, N);
    cr_expect_lt(t_rel_l2_d(y, out, N), 1e-6, "forward");
    for (int i = 0; i < N; i++) /* each value, the tiny ones of large negative x too */
        cr_expect_leq(fabs(y[i] - out[i]), 3e-7 * fmax(1.0, fabs(xd[i])),
                      "gelu(%.9g) = %.9g, not %.9g", xd[i], y[i], out[i]);
    FD(want, xd, N, out, N, r, for (int k = 0; k < N; k++) out[k] = gelu_ref(xd[k]));
    cr_expect_lt(t_rel_l2_d(dx, want, N), 1e-5, "backward");
    free(y);
    free(dx);
    clpar_device_release(d, mx);
    clpar_device_release(d, mr);
    clpar_device_release(d, my);
}

/* One shape of attention against the double reference: forward, the probabilities, and the
 * gradient of <out, r> by finite differences. */
static void check_attention(int B, int T, int NH, int HS) {
    clpar_device *d = t_device(0);
    const int CH = NH * HS, N = B * T * 3 * CH, NO = B * T * CH;
    float *qkv = malloc(N * sizeof *qkv), *r = malloc(NO * sizeof *r);
    double *qd = malloc(N * sizeof *qd), *out = malloc(NO * sizeof *out),
           *want = malloc(N * sizeof *want);
    t_fill(qkv, N, 7, -1.5, 1.5);
    t_fill(r, NO, 8, -1, 1);
    to_double(qd, qkv, N);
    attention_ref(out, qd, B, T, NH, HS);
    cl_mem mq = t_upload(d, qkv, N), mr = t_upload(d, r, NO), mo, ma, mdq, mp;
    T_OK(clpar_device_alloc(d, NO * 4, &mo));
    T_OK(clpar_device_alloc(d, B * NH * T * T * 4, &ma));
    T_OK(clpar_device_alloc(d, B * NH * T * T * 4, &mp));
    T_OK(clpar_device_alloc(d, N * 4, &mdq));
    T_OK(clpar_op_attention_forward(d, mo, ma, mq, B, T, NH, HS, NULL));
    T_OK(clpar_op_attention_backward(d, mdq, mp, mr, ma, mq, B, T, NH, HS, NULL));
    float *o = t_download(d, mo, NO), *a = t_download(d, ma, B * NH * T * T),
          *dq = t_download(d, mdq, N);
    cr_expect_lt(t_rel_l2_d(o, out, NO), 1e-6, "forward, head size %d", HS);
    for (int i = 0; i < B * NH * T; i++) { /* each row a distribution over the past */
        double s = 0;
        for (int u = 0; u < T; u++) {
            s += a[i * T + u];
            if (u > i % T) cr_expect_eq(a[i * T + u], 0.0f, "attends to the future");
        }
        cr_expect_float_eq(s, 1.0, 1e-6);
    }
    FD(want, qd, N, out, NO, r, attention_ref(out, qd, B, T, NH, HS));
    cr_expect_lt(t_rel_l2_d(dq, want, N), 1e-4, "backward, head size %d", HS);
    free(o);
    free(a);
    free(dq);
    free(qkv);
    free(r);
    free(qd);
    free(out);
    free(want);
    cl_mem all[] = {mq, mr, mo, ma, mdq, mp};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        clpar_device_release(d, all[i]);
}

/* Heads of 3 features (the kernels' scalar loops), 16 (eight at a time, a row in
 * registers) and 136 (eight at a time, too wide for the registers). A test each: under
 * Oclgrind's uninitialized-value checker a second shape in one process (the old kernels
 * too) reports the query gradient's inputs as uninitialized, though every value checks. */
Test(transformer_ops, causal_attention_forward_backward) {
    check_attention(2, 5, 2, 3);
}

Test(transformer_ops, causal_attention_heads_of_16) {
    check_attention(2, 5, 2, 16);
}

Test(transformer_ops, causal_attention_heads_of_136) {
    check_attention(1, 4, 2, 136);
}

Test(transformer_ops, embeddings_forward_and_deterministic_gradients) {
    clpar_device *d = t_device(0);
    enum { B = 3, T = 4, V = 6, C = 5, R = B * T, NP = 2 + V * C + T * C };
    int idx[R] = {1, 3, 3, 0, 5, 1, 1, 2, 3, 0, 1, 4};
    float p[NP], r[R * C], g[NP];
    t_fill(p, NP, 9, -1, 1);
    t_fill(r, R * C, 10, -1, 1);
    t_fill(g, NP, 11, -1, 1);
    const size_t wte = 2, wpe = 2 + V * C;
    int order[R], start[V + 1];
    clpar_embedding_order(idx, R, V, order, start);
    for (int v = 0; v < V; v++) /* each token's rows, in position order */
        for (int k = start[v]; k < start[v + 1]; k++) {
            cr_expect_eq(idx[order[k]], v);
            if (k > start[v]) cr_expect_lt(order[k - 1], order[k]);
        }
    cr_expect_eq(start[V], R);
    cl_mem mi = t_upload(d, (const float *)idx, R), mp = t_upload(d, p, NP),
           mr = t_upload(d, r, R * C), mg = t_upload(d, g, NP);
    cl_mem mo_, mord = t_upload(d, (const float *)order, R),
                mst = t_upload(d, (const float *)start, V + 1);
    T_OK(clpar_device_alloc(d, R * C * 4, &mo_));
    T_OK(clpar_op_embedding_forward(d, mo_, mi, mp, wte, wpe, R, T, C, NULL));
    T_OK(clpar_op_embedding_backward(d, mg, wte, wpe, mr, mord, mst, B, T, V, C, 1.0f, 1.0f, NULL));
    float *o = t_download(d, mo_, R * C), *gd = t_download(d, mg, NP);
    double out[R * C], want[NP];
    for (int i = 0; i < R * C; i++) {
        int row = i / C, c = i % C;
        out[i] = (double)p[wte + idx[row] * C + c] + p[wpe + (row % T) * C + c];
    }
    cr_expect_lt(t_rel_l2_d(o, out, R * C), 1e-7, "forward");
    for (int k = 0; k < NP; k++)
        want[k] = g[k]; /* beta = 1 adds, e.g. to the tied head's gradient */
    for (int i = 0; i < R * C; i++) {
        int row = i / C, c = i % C;
        want[wte + idx[row] * C + c] += r[i];
        want[wpe + (row % T) * C + c] += r[i];
    }
    cr_expect_lt(t_rel_l2_d(gd, want, NP), 1e-6, "gradients");
    cr_expect_eq(gd[0], g[0], "wrote before its tables");
    free(o);
    free(gd);
    cl_mem all[] = {mi, mp, mr, mg, mo_, mord, mst};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        clpar_device_release(d, all[i]);
}
