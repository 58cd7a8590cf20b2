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

/* Seconds per call of one GEMM: one untimed call, then calls until 0.2 s or 100 of them. */
static clpar_status time_gemm(clpar_device *d, clpar_transpose ta, clpar_transpose tb, size_t m,
                              size_t n, size_t k, cl_mem a, cl_mem b, cl_mem c, float beta,
                              double *seconds) {
    size_t lda = ta ? m : k, ldb = tb ? k : n;
    TRY_STATUS(clpar_op_gemm(d, ta, tb, m, n, k, 1.0f, a, 0, lda, b, 0, ldb, beta, c, 0, n, NULL));
    TRY_STATUS(clpar_device_finish(d));
    int reps = 0;
    double t0 = cli_now(), t = 0;
    while ((reps < 3 || t < 0.2) && reps < 100) {
        TRY_STATUS(
            clpar_op_gemm(d, ta, tb, m, n, k, 1.0f, a, 0, lda, b, 0, ldb, beta, c, 0, n, NULL));
        TRY_STATUS(clpar_device_finish(d));
        reps++;
        t = cli_now() - t0;
    }
    *seconds = t / reps;
    return CLPAR_OK;
}

clpar_status bench_products(clpar_runtime *rt, int index, const clpar_mlp_shape *shape,
                            size_t batch, bench_product *out, int cap, int *count) {
    *count = 0;
    size_t widest = 0;
    for (int l = 0; l <= shape->nlayers; l++)
        if (shape->sizes[l] > widest) widest = shape->sizes[l];
    clpar_device *d;
    TRY_STATUS(clpar_device_init(rt, index, &d));
    size_t big = (batch > widest ? batch : widest) * widest; /* any operand fits */
    float *zeros = calloc(big, sizeof(float));
    cl_mem bufs[3] = {NULL, NULL, NULL};
    clpar_status st = zeros ? CLPAR_OK : CLPAR_ENOMEM;
    for (int i = 0; i < 3 && st == CLPAR_OK; i++) {
        st = clpar_device_alloc(d, big * sizeof(float), &bufs[i]);
        if (st == CLPAR_OK) st = clpar_device_write(d, bufs[i], 0, big * sizeof(float), zeros);
    }
    for (int l = 0; l < shape->nlayers && st == CLPAR_OK; l++) {
        size_t in = shape->sizes[l], o = shape->sizes[l + 1];
        struct {
            const char *what;
            clpar_transpose ta, tb;
            size_t m, n, k;
            float beta;
        } g[3] = {{"forward", CLPAR_NO_TRANS, CLPAR_TRANS, batch, o, in, 0.0f},
                  {"input grad", CLPAR_NO_TRANS, CLPAR_NO_TRANS, batch, in, o, 0.0f},
                  {"weight grad", CLPAR_TRANS, CLPAR_NO_TRANS, o, in, batch, 1.0f}};
        for (int j = 0; j < 3 && st == CLPAR_OK && *count < cap; j++) {
            if (j == 1 && l == 0) continue; /* the first layer computes no input gradient */
            bench_product *p = &out[(*count)++];
            p->layer = l;
            p->what = g[j].what;
            p->m = g[j].m, p->n = g[j].n, p->k = g[j].k;
            st = time_gemm(d, g[j].ta, g[j].tb, p->m, p->n, p->k, bufs[0], bufs[1], bufs[2],
                           g[j].beta, &p->seconds);
            p->gflops = 2.0 * p->m * p->n * p->k / p->seconds / 1e9;
        }
    }
    for (int i = 0; i < 3; i++)
        clpar_device_release(d, bufs[i]);
    clpar_device_free(d);
    free(zeros);
    return st;
}
