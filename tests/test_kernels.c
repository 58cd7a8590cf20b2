/* Every kernel of kernels/ against a double-precision host reference, on fresh random
 * inputs and sizes that are not multiples of any work-group size. */
#include "common.h"

#include <math.h>
#include <string.h>

#define ROWS 37
#define COLS 13

Test(kernels, bias_add) {
    clpar_device *d = t_device(0);
    float y[ROWS * COLS], b[COLS + 3];
    double ref[ROWS * COLS];
    t_fill(y, ROWS * COLS, 1, -2, 2);
    t_fill(b, COLS + 3, 2, -1, 1);
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < COLS; c++)
            ref[r * COLS + c] = (double)y[r * COLS + c] + b[3 + c];
    cl_mem my = t_upload(d, y, ROWS * COLS), mb = t_upload(d, b, COLS + 3);
    T_OK(clpar_op_bias_add(d, my, mb, 3, ROWS, COLS, NULL));
    float *got = t_download(d, my, ROWS * COLS);
    cr_assert_lt(t_rel_l2_d(got, ref, ROWS * COLS), 1e-6);
    free(got);
    clpar_device_release(d, my);
    clpar_device_release(d, mb);
}

/* clpar_device_zero clears its range and nothing else (a fill, not a kernel). */
Test(kernels, device_zero_clears_a_range) {
    clpar_device *d = t_device(0);
    float x[ROWS * COLS];
    t_fill(x, ROWS * COLS, 7, 1, 2); /* never 0 */
    cl_mem mx = t_upload(d, x, ROWS * COLS);
    T_OK(clpar_device_zero(d, mx, 5 * sizeof(float), 100 * sizeof(float)));
    T_OK(clpar_device_zero(d, mx, 0, 0));
    float *got = t_download(d, mx, ROWS * COLS);
    for (int i = 0; i < ROWS * COLS; i++)
        cr_assert_eq(got[i], i >= 5 && i < 105 ? 0.0f : x[i], "element %d", i);
    free(got);
    clpar_device_release(d, mx);
}

Test(kernels, relu_forward_backward) {
    clpar_device *d = t_device(0);
    const size_t n = 1001;
    float x[1001], dy[1001];
    t_fill(x, n, 3, -1, 1);
    t_fill(dy, n, 4, -1, 1);
    cl_mem mx = t_upload(d, x, n), my, mdy = t_upload(d, dy, n), mdx;
    T_OK(clpar_device_alloc(d, n * 4, &my));
    T_OK(clpar_device_alloc(d, n * 4, &mdx));
    T_OK(clpar_op_relu_forward(d, my, mx, n, NULL));
    T_OK(clpar_op_relu_backward(d, mdx, mdy, my, n, NULL));
    float *y = t_download(d, my, n), *dx = t_download(d, mdx, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(y[i], x[i] > 0 ? x[i] : 0.0f);
        cr_assert_eq(dx[i], x[i] > 0 ? dy[i] : 0.0f);
    }
    free(y);
    free(dx);
    clpar_device_release(d, mx);
    clpar_device_release(d, my);
    clpar_device_release(d, mdy);
    clpar_device_release(d, mdx);
}

Test(kernels, colsum_overwrite_and_accumulate) {
    clpar_device *d = t_device(0);
    float x[ROWS * COLS], out[COLS + 5];
    t_fill(x, ROWS * COLS, 5, -1, 1);
    t_fill(out, COLS + 5, 6, -1, 1);
    cl_mem mx = t_upload(d, x, ROWS * COLS), mo = t_upload(d, out, COLS + 5);
    T_OK(clpar_op_colsum(d, mo, 5, mx, 0, COLS, ROWS, COLS, 1.0f, NULL));
    float *got = t_download(d, mo, COLS + 5);
    double ref[COLS + 5];
    for (int c = 0; c < COLS + 5; c++)
        ref[c] = out[c];
    for (int c = 0; c < COLS; c++)
        for (int r = 0; r < ROWS; r++)
            ref[5 + c] += x[r * COLS + c];
    cr_assert_lt(t_rel_l2_d(got, ref, COLS + 5), 1e-6);
    for (int c = 0; c < 5; c++)
        cr_assert_eq(got[c], out[c], "colsum wrote outside its range");
    free(got);
    T_OK(clpar_op_colsum(d, mo, 5, mx, 0, COLS, ROWS, COLS, 0.0f, NULL));
    got = t_download(d, mo, COLS + 5);
    for (int c = 0; c < COLS; c++)
        ref[5 + c] -= out[5 + c];
    cr_assert_lt(t_rel_l2_d(got + 5, ref + 5, COLS), 1e-6);
    free(got);
    clpar_device_release(d, mx);
    clpar_device_release(d, mo);
}

/* 37 columns: two groups of 16 summed as vectors, then 5 one by one */
Test(kernels, colsum_of_a_strided_block) {
    clpar_device *d = t_device(0);
    enum { LD = 45, C0 = 3, W = 37 };
    float x[ROWS * LD], out[W];
    t_fill(x, ROWS * LD, 15, -1, 1);
    cl_mem mx = t_upload(d, x, ROWS * LD), mo;
    T_OK(clpar_device_alloc(d, sizeof out, &mo));
    T_OK(clpar_op_colsum(d, mo, 0, mx, C0, LD, ROWS, W, 0.0f, NULL));
    float *got = t_download(d, mo, W);
    double ref[W] = {0};
    for (int c = 0; c < W; c++)
        for (int r = 0; r < ROWS; r++)
            ref[c] += x[r * LD + C0 + c];
    cr_assert_lt(t_rel_l2_d(got, ref, W), 1e-6);
    free(got);
    T_OK(clpar_op_colsum(d, mo, 0, mx, C0, LD, ROWS, W, 1.0f, NULL)); /* accumulates: twice */
    got = t_download(d, mo, W);
    for (int c = 0; c < W; c++)
        ref[c] *= 2.0;
    cr_assert_lt(t_rel_l2_d(got, ref, W), 1e-6);
    free(got);
    clpar_device_release(d, mx);
    clpar_device_release(d, mo);
}

Test(kernels, scale_and_axpy) {
    clpar_device *d = t_device(0);
    const size_t n = 333;
    float x[340], y[340];
    t_fill(x, 340, 7, -1, 1);
    t_fill(y, 340, 8, -1, 1);
    cl_mem mx = t_upload(d, x, 340), my = t_upload(d, y, 340);
    T_OK(clpar_op_axpy(d, my, 4, 0.75f, mx, 2, n, NULL));
    T_OK(clpar_op_scale(d, mx, 1, -3.0f, n, NULL));
    float *gx = t_download(d, mx, 340), *gy = t_download(d, my, 340);
    double rx[340], ry[340];
    for (int i = 0; i < 340; i++)
        rx[i] = x[i], ry[i] = y[i];
    for (size_t i = 0; i < n; i++)
        ry[4 + i] += 0.75 * x[2 + i];
    for (size_t i = 0; i < n; i++)
        rx[1 + i] *= -3.0;
    cr_assert_lt(t_rel_l2_d(gx, rx, 340), 1e-7);
    cr_assert_lt(t_rel_l2_d(gy, ry, 340), 1e-6);
    free(gx);
    free(gy);
    clpar_device_release(d, mx);
    clpar_device_release(d, my);
}

/* The peak kernel computes what its comment says (in exact float arithmetic: fmaf, the same
 * order of sums); clpar-devices --bench, which times it, is checked in cli_plan. */
Test(kernels, fma_peak_chains) {
    clpar_device *d = t_device(0);
    enum { N = 37, ITERS = 21 };
    const float a = 0.999f, b = 0.001f;
    float zero[N] = {0};
    cl_mem out = t_upload(d, zero, N);
    T_OK(clpar_op_fma_peak(d, out, a, b, ITERS, N, NULL));
    float *got = t_download(d, out, N);
    const float step[8] = {0, 0.125f, 0.25f, 0.375f, 0.5f, 0.625f, 0.75f, 0.875f};
    for (int i = 0; i < N; i++) {
        float lane_sum[16];
        for (int l = 0; l < 16; l++) {
            float s = 0;
            for (int c = 0; c < 8; c++) {
                float x = ((float)i + (float)l) * 1e-3f + step[c];
                for (int t = 0; t < ITERS; t++)
                    x = fmaf(x, a, b);
                s = c ? s + x : x;
            }
            lane_sum[l] = s;
        }
        float want = lane_sum[0];
        for (int l = 1; l < 16; l++)
            want += lane_sum[l];
        cr_expect(fabsf(got[i] - want) <= 1e-6f * fabsf(want), "i %d: %g vs %g", i, got[i], want);
    }
    free(got);
    clpar_device_release(d, out);
}

/* Counts larger than one launch (a CPU device's is under 65535 work-items) go in several
 * launches; every element must be done exactly once. */
Test(kernels, counts_beyond_one_launch) {
    clpar_device *d = t_device(0);
    const size_t rows = 1531, cols = 131, n = rows * cols; /* 200561 */
    float *y = malloc(n * sizeof(float)), *b = malloc(cols * sizeof(float));
    double *ref = malloc(n * sizeof(double));
    t_fill(y, n, 11, -2, 2);
    t_fill(b, cols, 12, -1, 1);
    for (size_t i = 0; i < n; i++)
        ref[i] = fmax((double)y[i] + b[i % cols], 0.0) * 0.5;
    cl_mem my = t_upload(d, y, n), mb = t_upload(d, b, cols);
    T_OK(clpar_op_bias_add(d, my, mb, 0, rows, cols, NULL));
    T_OK(clpar_op_relu_forward(d, my, my, n, NULL));
    T_OK(clpar_op_scale(d, my, 0, 0.5f, n, NULL));
    float *got = t_download(d, my, n);
    cr_assert_lt(t_rel_l2_d(got, ref, n), 1e-6);
    free(got);
    free(y);
    free(b);
    free(ref);
    clpar_device_release(d, my);
    clpar_device_release(d, mb);
}

/* Adam and AdamW over ranges with every kind of edge (a work-item updates 16 elements: whole
 * vectors, then the last ones singly; ranges that start anywhere, as ZeRO's slices do; more
 * elements than one launch), against the same formula in floats on the host, bit for bit,
 * and nothing outside the range written. */
Test(kernels, adam_ranges_match_the_host_formula) {
    clpar_device *d = t_device(0);
    const size_t ranges[][2] = {{0, 1}, {0, 16}, {3, 15}, {5, 33}, {17, 100}, {2, 1100007}};
    for (int w = 0; w < 2; w++)
        for (size_t t = 0; t < sizeof ranges / sizeof *ranges; t++) {
            size_t start = ranges[t][0], count = ranges[t][1], n = start + count + 9;
            clpar_adam_params hp = {1e-2f, 0.9f, 0.999f, 1e-8f, w ? 0.05f : 0.01f, w == 1};
            const long step = 3;
            float *h[4], *want[4];
            for (int a = 0; a < 4; a++) {
                h[a] = malloc(n * sizeof(float));
                want[a] = malloc(n * sizeof(float));
                t_fill(h[a], n, 60 + 4 * t + a, a == 3 ? 0 : -1, 1); /* v >= 0 */
                memcpy(want[a], h[a], n * sizeof(float));
            }
            const float step_size = (float)(hp.lr / (1.0 - pow(hp.beta1, (double)step)));
            const float bc2_sqrt = (float)sqrt(1.0 - pow(hp.beta2, (double)step));
            float *p = want[0], *g = want[1], *m = want[2], *v = want[3];
            for (size_t i = start; i < start + count; i++) {
                float grad = g[i], param = p[i];
                if (hp.decoupled)
                    param = param * (1.0f - hp.lr * hp.weight_decay);
                else
                    grad = grad + hp.weight_decay * param;
                float mi = m[i] + (1.0f - hp.beta1) * (grad - m[i]);
                float vi = hp.beta2 * v[i] + (1.0f - hp.beta2) * grad * grad;
                m[i] = mi;
                v[i] = vi;
                p[i] = param - step_size * (mi / (sqrtf(vi) / bc2_sqrt + hp.eps));
            }
            cl_mem buf[4];
            for (int a = 0; a < 4; a++)
                buf[a] = t_upload(d, h[a], n);
            T_OK(clpar_op_adam_step_range(d, buf[0], buf[1], buf[2], buf[3], start, count, &hp,
                                          step, NULL));
            for (int a = 0; a < 4; a++) {
                float *got = t_download(d, buf[a], n);
                cr_assert(!memcmp(got, want[a], n * sizeof(float)),
                          "%s, range [%zu, %zu): array %d differs", w ? "AdamW" : "Adam", start,
                          start + count, a);
                free(got);
                clpar_device_release(d, buf[a]);
                free(h[a]);
                free(want[a]);
            }
        }
}

Test(kernels, softmax_cross_entropy) {
    clpar_device *d = t_device(0);
    enum { R = 29, C = 11 };
    float z[R * C];
    int labels[R];
    t_fill(z, R * C, 9, -30, 30); /* large logits: the max must be subtracted */
    z[0] = 90.0f;                 /* exp(90) overflows float without it */
    for (int r = 0; r < R; r++)
        labels[r] = (r * 7) % C;
    cl_mem mz = t_upload(d, z, R * C), ml, mloss, mdz;
    T_OK(clpar_device_alloc(d, sizeof labels, &ml));
    T_OK(clpar_device_write(d, ml, 0, sizeof labels, labels));
    T_OK(clpar_device_alloc(d, R * 4, &mloss));
    T_OK(clpar_device_alloc(d, R * C * 4, &mdz));
    const float scale = 1.0f / 50;
    T_OK(clpar_op_xent_forward(d, mloss, mz, ml, R, C, NULL));
    T_OK(clpar_op_xent_backward(d, mdz, mz, ml, R, C, scale, NULL));
    float *loss = t_download(d, mloss, R), *dz = t_download(d, mdz, R * C);
    double rl[R], rdz[R * C];
    for (int r = 0; r < R; r++) {
        double m = -INFINITY, s = 0;
        for (int c = 0; c < C; c++)
            m = fmax(m, z[r * C + c]);
        for (int c = 0; c < C; c++)
            s += exp((double)z[r * C + c] - m);
        rl[r] = m + log(s) - z[r * C + labels[r]];
        for (int c = 0; c < C; c++)
            rdz[r * C + c] = scale * (exp((double)z[r * C + c] - m) / s - (c == labels[r]));
    }
    for (int r = 0; r < R; r++)
        cr_assert(isfinite(loss[r]));
    cr_assert_lt(t_rel_l2_d(loss, rl, R), 1e-5);
    cr_assert_lt(t_rel_l2_d(dz, rdz, R * C), 1e-5);
    free(loss);
    free(dz);
    clpar_device_release(d, mz);
    clpar_device_release(d, ml);
    clpar_device_release(d, mloss);
    clpar_device_release(d, mdz);
}

Test(kernels, mse) {
    clpar_device *d = t_device(0);
    enum { R = 23, C = 5 };
    float y[R * C], t[R * C];
    t_fill(y, R * C, 10, -2, 2);
    t_fill(t, R * C, 11, -2, 2);
    cl_mem my = t_upload(d, y, R * C), mt = t_upload(d, t, R * C), mloss, mdy;
    T_OK(clpar_device_alloc(d, R * 4, &mloss));
    T_OK(clpar_device_alloc(d, R * C * 4, &mdy));
    const float scale = 1.0f / (R * C);
    T_OK(clpar_op_mse_forward(d, mloss, my, mt, R, C, NULL));
    T_OK(clpar_op_mse_backward(d, mdy, my, mt, R * C, scale, NULL));
    float *loss = t_download(d, mloss, R), *dy = t_download(d, mdy, R * C);
    double rl[R] = {0}, rdy[R * C];
    for (int i = 0; i < R * C; i++) {
        double e = (double)y[i] - t[i];
        rl[i / C] += e * e;
        rdy[i] = scale * 2.0 * e;
    }
    cr_assert_lt(t_rel_l2_d(loss, rl, R), 1e-6);
    cr_assert_lt(t_rel_l2_d(dy, rdy, R * C), 1e-6);
    free(loss);
    free(dy);
    clpar_device_release(d, my);
    clpar_device_release(d, mt);
    clpar_device_release(d, mloss);
    clpar_device_release(d, mdy);
}

Test(kernels, gemm_all_transposes) {
    clpar_device *d = t_device(0);
    enum { M = 19, N = 23, K = 17 };
    float a[M * K], b[K * N], c[M * N];
    t_fill(a, M * K, 12, -1, 1);
    t_fill(b, K * N, 13, -1, 1);
    t_fill(c, M * N, 14, -1, 1);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            /* op(A) (M, K): stored (K, M) when transposed; likewise B */
            cl_mem ma = t_upload(d, a, M * K), mb = t_upload(d, b, K * N),
                   mc = t_upload(d, c, M * N);
            T_OK(clpar_op_gemm(d, ta, tb, M, N, K, 0.5f, ma, 0, ta ? M : K, mb, 0, tb ? K : N, 2.0f,
                               mc, 0, N, NULL));
            float *got = t_download(d, mc, M * N);
            double ref[M * N];
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double s = 0;
                    for (int k = 0; k < K; k++)
                        s += (double)(ta ? a[k * M + i] : a[i * K + k]) *
                             (tb ? b[j * K + k] : b[k * N + j]);
                    ref[i * N + j] = 0.5 * s + 2.0 * c[i * N + j];
                }
            cr_assert_lt(t_rel_l2_d(got, ref, M * N), 1e-5, "transposes %d %d", ta, tb);
            free(got);
            clpar_device_release(d, ma);
            clpar_device_release(d, mb);
            clpar_device_release(d, mc);
        }
}
