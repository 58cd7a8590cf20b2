/* clpar-devices --bench: a device's FMA peak, SGEMM throughput and host<->device bandwidth,
 * and each GEMM of a model's training step read against the peak (issue: per-GEMM
 * accounting; the --trace of clpar-train shows the same products per step). */
#ifndef CLPAR_DEVICES_BENCH_H
#define CLPAR_DEVICES_BENCH_H

#include "clpar/clpar.h"

typedef struct {
    double peak_gflops; /* fp32 FMA chains (clpar_op_measure_peak) */
    double gflops;      /* CLBlast SGEMM, N x N x N */
    double h2d_gbs, d2h_gbs;
} bench_result;

/* Measures device `index` with SGEMMs of size n. */
clpar_status bench_device(clpar_runtime *rt, int index, size_t n, bench_result *res);

/* One GEMM of a layer's step at the batch: C (m, n) = op(A) (m, k) op(B) (k, n); or, for a
 * GPT, one of its other kernels (k = 0, no GFLOP/s). */
typedef struct {
    int layer;        /* an MLP's layer; -1 for a GPT's (name says) */
    const char *name; /* a GPT's module ("attn.c_attn", "head", "ln_1/ln_2/ln_f", ...) */
    const char *what; /* "forward", "input grad", "weight grad" */
    size_t m, n, k;
    int per_step; /* calls in one step of one device */
    double seconds, gflops;
} bench_product;

/* Times every GEMM of an MLP's training step at batch rows on device `index`, as its Linear
 * layers run them (clpar_model_linears and their products: forward x W^T, input gradient
 * dy W except the first layer's, weight gradient dy^T x accumulated): at most cap into out,
 * *count of them. */
clpar_status bench_products(clpar_runtime *rt, int index, const clpar_model_spec *m, size_t batch,
                            bench_product *out, int cap, int *count);

/* The same for a GPT at batch sequences: the products of its linear maps and head, then its
 * other kernels (layer norms, GELU, attention, the loss), each with its calls per step. */
#define BENCH_GPT_OPS 25
clpar_status bench_gpt(clpar_runtime *rt, int index, const clpar_model_spec *m, size_t batch,
                       bench_product *out, int cap, int *count);

#endif
