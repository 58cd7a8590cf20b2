/* The ops level: clpar's OpenCL kernels and CLBlast's GEMMs, as plain functions (the layers
 * built from them are modules, module.h). Outputs come first, then inputs, then sizes; shapes are
 * row-major and noted beside each call. Every call enqueues on the device's compute queue (in
 * order, so it runs after everything queued there before) and returns at once; when `event` is not
 * NULL it receives an event for the last command enqueued, which the caller releases. Every cl_mem
 * belongs to the caller. Offsets and counts are in floats. */
#ifndef CLPAR_OPS_H
#define CLPAR_OPS_H

#include "clpar/runtime.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* y (rows, cols) += b[boff .. boff + cols) broadcast over rows */
CLPAR_API clpar_status clpar_op_bias_add(clpar_device *d, cl_mem y, cl_mem b, size_t boff,
                                         size_t rows, size_t cols, cl_event *event);
/* y (n) = max(x, 0); y may be x */
CLPAR_API clpar_status clpar_op_relu_forward(clpar_device *d, cl_mem y, cl_mem x, size_t n,
                                             cl_event *event);
/* dx (n) = dy * (y > 0) where y is relu_forward's output; dx may be dy */
CLPAR_API clpar_status clpar_op_relu_backward(clpar_device *d, cl_mem dx, cl_mem dy, cl_mem y,
                                              size_t n, cl_event *event);
/* out[ooff + c] = beta out[ooff + c] + sum_r x[xoff + r ldx + c]: column sums of a
 * (rows, cols) block with row stride ldx (ldx = cols for a whole matrix) */
CLPAR_API clpar_status clpar_op_colsum(clpar_device *d, cl_mem out, size_t ooff, cl_mem x,
                                       size_t xoff, size_t ldx, size_t rows, size_t cols,
                                       float beta, cl_event *event);
/* x[off + i] *= a, i < n */
CLPAR_API clpar_status clpar_op_scale(clpar_device *d, cl_mem x, size_t off, float a, size_t n,
                                      cl_event *event);
/* y[yoff + i] += a x[xoff + i], i < n */
CLPAR_API clpar_status clpar_op_axpy(clpar_device *d, cl_mem y, size_t yoff, float a, cl_mem x,
                                     size_t xoff, size_t n, cl_event *event);

/* loss (rows) = per-row softmax cross-entropy of logits z (rows, classes), labels (rows) int */
CLPAR_API clpar_status clpar_op_xent_forward(clpar_device *d, cl_mem loss, cl_mem z, cl_mem labels,
                                             size_t rows, size_t classes, cl_event *event);
/* dz (rows, classes) = scale (softmax(z) - onehot(labels)) */
CLPAR_API clpar_status clpar_op_xent_backward(clpar_device *d, cl_mem dz, cl_mem z, cl_mem labels,
                                              size_t rows, size_t classes, float scale,
                                              cl_event *event);
/* loss (rows) = per-row sum of squared errors of y against t, both (rows, cols) */
CLPAR_API clpar_status clpar_op_mse_forward(clpar_device *d, cl_mem loss, cl_mem y, cl_mem t,
                                            size_t rows, size_t cols, cl_event *event);
/* dy (n) = scale 2 (y - t) */
CLPAR_API clpar_status clpar_op_mse_backward(clpar_device *d, cl_mem dy, cl_mem y, cl_mem t,
                                             size_t n, float scale, cl_event *event);

/* ---- transformer layers (kernels/transformer.cl) ---- */

/* out (rows, C) = LayerNorm(x) with weight p[woff ..] and bias p[boff ..], eps 1e-5; mean
 * and rstd (rows) receive what backward needs */
CLPAR_API clpar_status clpar_op_layernorm_forward(clpar_device *d, cl_mem out, cl_mem mean,
                                                  cl_mem rstd, cl_mem x, cl_mem p, size_t woff,
                                                  size_t boff, size_t rows, size_t C,
                                                  cl_event *event);
/* dx (rows, C) = (keep ? dx : 0) + the input gradient from dout */
CLPAR_API clpar_status clpar_op_layernorm_backward(clpar_device *d, cl_mem dx, cl_mem dout,
                                                   cl_mem x, cl_mem mean, cl_mem rstd, cl_mem p,
                                                   size_t woff, size_t rows, size_t C, bool keep,
                                                   cl_event *event);
/* g[woff ..] = beta g + sum_rows dout xhat, g[boff ..] = beta g + sum_rows dout (C each) */
CLPAR_API clpar_status clpar_op_layernorm_weights(clpar_device *d, cl_mem g, size_t woff,
                                                  size_t boff, cl_mem dout, cl_mem x, cl_mem mean,
                                                  cl_mem rstd, size_t rows, size_t C, float beta,
                                                  cl_event *event);
/* y (n) = GELU(x), the exact erf form (PyTorch's nn.GELU()); y may be x */
CLPAR_API clpar_status clpar_op_gelu_forward(clpar_device *d, cl_mem y, cl_mem x, size_t n,
                                             cl_event *event);
/* dx (n) = dy GELU'(x) from the GELU's input x; dx may be dy */
CLPAR_API clpar_status clpar_op_gelu_backward(clpar_device *d, cl_mem dx, cl_mem dy, cl_mem x,
                                              size_t n, cl_event *event);
/* Causal self-attention: qkv (B T, 3 nh hs) holds q, k, v of nh heads of hs features (head h
 * at column h hs of each third); out (B T, nh hs) = softmax(q k^T / sqrt(hs), causal) v per
 * head; att (B, nh, T, T) receives the probabilities backward needs */
CLPAR_API clpar_status clpar_op_attention_forward(clpar_device *d, cl_mem out, cl_mem att,
                                                  cl_mem qkv, size_t B, size_t T, size_t nh,
                                                  size_t hs, cl_event *event);
/* dqkv (B T, 3 nh hs) = the gradient of qkv from dout (B T, nh hs); dpre (B, nh, T, T) is
 * scratch */
CLPAR_API clpar_status clpar_op_attention_backward(clpar_device *d, cl_mem dqkv, cl_mem dpre,
                                                   cl_mem dout, cl_mem att, cl_mem qkv, size_t B,
                                                   size_t T, size_t nh, size_t hs, cl_event *event);
/* out (rows, C) = p[wte + idx[r] C ..] + p[wpe + (r % T) C ..]: token plus position
 * embedding of rows = B T token ids idx (int) */
CLPAR_API clpar_status clpar_op_embedding_forward(clpar_device *d, cl_mem out, cl_mem idx, cl_mem p,
                                                  size_t wte, size_t wpe, size_t rows, size_t T,
                                                  size_t C, cl_event *event);
/* The embeddings' gradients from dout (B T, C): g[wte ..] (V, C) = beta_tokens g + each
 * token's rows summed in position order (order and start from clpar_embedding_order, on
 * the device), g[wpe ..] (T, C) = beta_positions g + the sum over sequences.
 * Deterministic. */
CLPAR_API clpar_status clpar_op_embedding_backward(clpar_device *d, cl_mem g, size_t wte,
                                                   size_t wpe, cl_mem dout, cl_mem order,
                                                   cl_mem start, size_t B, size_t T, size_t V,
                                                   size_t C, float beta_tokens,
                                                   float beta_positions, cl_event *event);
/* The rows of each token id of idx (rows ids < V), in position order: order (rows) lists
 * them token after token, start (V + 1) where each token's list begins. */
CLPAR_API void clpar_embedding_order(const int *idx, size_t rows, size_t V, int *order, int *start);

/* torch.optim.SGD's hyper-parameters (defaults: all zero, nesterov off) */
typedef struct {
    float lr, momentum, dampening, weight_decay;
    bool nesterov;
} clpar_sgd_params;

/* torch.optim.Adam / AdamW's hyper-parameters; decoupled = 1 is AdamW */
typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
    bool decoupled; /* AdamW */
} clpar_adam_params;

/* One SGD step over p, g, buf (n each). `first` marks the first step, which copies the
 * gradient into the momentum buffer as PyTorch does. */
CLPAR_API clpar_status clpar_op_sgd_step(clpar_device *d, cl_mem p, cl_mem g, cl_mem buf, size_t n,
                                         const clpar_sgd_params *hp, bool first, cl_event *event);
/* The same over elements [start, start + count) only. */
CLPAR_API clpar_status clpar_op_sgd_step_range(clpar_device *d, cl_mem p, cl_mem g, cl_mem buf,
                                               size_t start, size_t count,
                                               const clpar_sgd_params *hp, bool first,
                                               cl_event *event);
/* One Adam/AdamW step over p, g, m, v (n each); step counts from 1. */
CLPAR_API clpar_status clpar_op_adam_step_range(clpar_device *d, cl_mem p, cl_mem g, cl_mem m,
                                                cl_mem v, size_t start, size_t count,
                                                const clpar_adam_params *hp, long step,
                                                cl_event *event);
CLPAR_API clpar_status clpar_op_adam_step(clpar_device *d, cl_mem p, cl_mem g, cl_mem m, cl_mem v,
                                          size_t n, const clpar_adam_params *hp, long step,
                                          cl_event *event);

/* out[i] for i < n: eight chains of iters fused multiply-adds x = fma(x, a, b) on float16s,
 * summed (kernels/elementwise.cl gives the exact formula): 256 iters n FLOPs. */
CLPAR_API clpar_status clpar_op_fma_peak(clpar_device *d, cl_mem out, float a, float b,
                                         unsigned iters, size_t n, cl_event *event);
/* The device's fp32 FMA throughput in GFLOP/s: clpar_op_fma_peak over enough work-items to
 * fill it and enough iterations for a launch of some 50 ms, the best of three. */
CLPAR_API clpar_status clpar_op_measure_peak(clpar_device *d, double *gflops);

/* Whether a GEMM operand is used as stored or transposed. */
typedef enum { CLPAR_NO_TRANS = 0, CLPAR_TRANS = 1 } clpar_transpose;

/* C (m, n) = alpha op(A) op(B) + beta C, row-major; op(A) is (m, k), op(B) is (k, n). Runs
 * clpar's GEMM kernels (kernels/gemm.cl) or CLBlast's SGEMM as the device's configuration
 * says (clpar_gemm_default, the tuned one, CLPAR_GEMM_PATH); A and B both transposed always
 * go to CLBlast. A CLBlast failure returns its own code. */
CLPAR_API clpar_status clpar_op_gemm(clpar_device *d, clpar_transpose trans_a,
                                     clpar_transpose trans_b, size_t m, size_t n, size_t k,
                                     float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b,
                                     size_t b_off, size_t ldb, float beta, cl_mem c, size_t c_off,
                                     size_t ldc, cl_event *event);

/* A linear layer's forward, y (rows, out) = x (rows, in) W^T + b: W (out, in) from w_off,
 * b from bias_off (bias NULL: none), x and y contiguous. Where the device runs clpar's GEMM
 * kernels the bias is their epilogue, added after the product as bias_add would (one launch,
 * or three when x and W^T are first copied into panels: TB); else a GEMM and bias_add. */
CLPAR_API clpar_status clpar_op_linear(clpar_device *d, size_t rows, size_t out, size_t in,
                                       cl_mem x, cl_mem w, size_t w_off, cl_mem bias,
                                       size_t bias_off, cl_mem y, cl_event *event);

/* ---- GEMM tuning (clpar-devices --tune) ---- */

typedef enum {
    CLPAR_GEMM_AUTO,     /* CLBlast's own choice of kernel and parameters */
    CLPAR_GEMM_DIRECT,   /* its direct kernel at every size, v = XgemmDirect's 10 parameters */
    CLPAR_GEMM_INDIRECT, /* its indirect kernel at every size, v = Xgemm's 16 parameters */
    CLPAR_GEMM_CLPAR     /* clpar's kernels (kernels/gemm.cl), v = MT NT MX NX VW WG RD PH TB */
} clpar_gemm_path;
/* "auto", "direct", "indirect", "clpar", and back (CLPAR_EINVAL naming "gemm.path"). */
CLPAR_API const char *clpar_gemm_path_name(clpar_gemm_path path);
CLPAR_API clpar_status clpar_gemm_path_parse(const char *text, clpar_gemm_path *path);
typedef struct {
    clpar_gemm_path path;
    size_t v[16]; /* in CLBlast's order: WGD MDIMCD NDIMCD MDIMAD NDIMBD KWID VWMD VWND PADA PADB,
                   * or GEMMK KREG KWG KWI MDIMA MDIMC MWG NDIMB NDIMC NWG SA SB STRM STRN VWM
                   * VWN, or clpar's: rows and columns of C per work-item of the NT kernel
                   * (MT NT), rows and VW-wide vectors of the NN/TN kernel (MX NX), vector
                   * width VW (4, 8, 16), work-group width WG (a power of 2 up to 256), the
                   * grid dimension along C's rows RD (0 or 1), panels PH, and TB (NT products
                   * of TB rows or more, and of at least half NX VW columns, run the NN/TN
                   * kernel on copies of A and B^T; 0 never); kernels/gemm.cl says more */
} clpar_gemm_config;
typedef struct {
    clpar_transpose trans_a, trans_b;
    size_t m, n, k;
} clpar_gemm_shape;

/* One shape's own kernel: products of exactly this shape run clpar's kernels with
 * config's parameters (path CLPAR_GEMM_CLPAR) or, any other path, CLBlast as the device's
 * configuration sets it up ("clblast" in the cache). */
typedef struct {
    clpar_gemm_shape shape;
    clpar_gemm_config config;
} clpar_gemm_route;
#define CLPAR_GEMM_MAX_ROUTES 32
#define CLPAR_GEMM_MAX_KERNELS 8 /* parameter sets of clpar's kernels on one device */
/* A device's whole GEMM choice: its configuration, and the shapes that run otherwise (at
 * most CLPAR_GEMM_MAX_KERNELS parameter sets of clpar's kernels among them and the
 * configuration). */
typedef struct {
    clpar_gemm_config base;
    int nroutes;
    clpar_gemm_route routes[CLPAR_GEMM_MAX_ROUTES];
} clpar_gemm_tuning;

/* What d uses when nothing was tuned: on CPU devices clpar's kernels with parameters
 * measured on PoCL, elsewhere CLBlast's choice. */
CLPAR_API void clpar_gemm_default(const clpar_device *d, clpar_gemm_config *c);
/* The CLBlast configuration d runs under clpar's kernels (for what they do not cover, and
 * for shapes routed to CLBlast): its direct kernel with parameters measured on PoCL on CPU
 * devices, CLBlast's own choice elsewhere. */
CLPAR_API void clpar_gemm_fallback(const clpar_device *d, clpar_gemm_config *c);
/* Up to cap configurations worth trying on d: the default, CLBlast's choice, CLBlast as it
 * runs under clpar's kernels (clpar_gemm_fallback, where not its own choice), then sets of
 * clpar's kernels and of both CLBlast kernels spread over grids that keep the kernels'
 * divisibility rules and d's limits; returns how many. */
CLPAR_API int clpar_gemm_candidates(const clpar_device *d, clpar_gemm_config *out, int cap);
/* Makes c d's GEMM configuration (clpar's kernels are built for it at once). recompile = 1
 * drops CLBlast's compiled kernels (of every device: call it only while no other thread uses
 * CLBlast) so the next call compiles with c; otherwise c applies from CLBlast's first compile
 * for d on. */
CLPAR_API clpar_status clpar_gemm_apply(clpar_device *d, const clpar_gemm_config *c,
                                        bool recompile);
/* clpar_gemm_apply of t->base, then t's routes (building the kernels they name); CLPAR_EINVAL
 * when they need more than CLPAR_GEMM_MAX_KERNELS parameter sets or one is out of range. */
CLPAR_API clpar_status clpar_gemm_apply_tuning(clpar_device *d, const clpar_gemm_tuning *t,
                                               bool recompile);
/* What runs products of shape s on d (choosing d's configuration first if no GEMM has
 * yet): clpar's kernels (path CLPAR_GEMM_CLPAR, with their parameters) or CLBlast (*c = d's
 * CLBlast configuration; path AUTO when CLBlast's own choice). s NULL: d's configuration,
 * what runs every product no route names. */
CLPAR_API clpar_status clpar_gemm_route_of(clpar_device *d, const clpar_gemm_shape *s,
                                           clpar_gemm_config *c);
/* Checks the transpose pairs layers use (NN, TN, NT) against a double-precision host
 * product (CLPAR_EINVAL when the current configuration computes wrongly), then times the n products
 * once each: the best of three rounds after one that compiles, in *seconds, and each
 * product's best of the three in each[i] (each may be NULL). */
CLPAR_API clpar_status clpar_gemm_time(clpar_device *d, const clpar_gemm_shape *shapes, int n,
                                       double *seconds, double *each);
/* The choice of --tune from times[c * ns + s], candidate c's seconds on shape s (INFINITY:
 * it failed): the base is the candidate of the least total; a shape is routed elsewhere when
 * another candidate runs it at least 5% faster than the base does: one of clpar's parameter
 * sets (the ones saving the most, up to CLPAR_GEMM_MAX_KERNELS with the base's), or CLBlast
 * when the base is clpar's and fallback (clpar_gemm_fallback) is among the candidates.
 * Returns the base's index, -1 when every candidate failed; picks (ns entries, or NULL)
 * gets the candidate that runs each shape under that choice. */
CLPAR_API int clpar_gemm_choose(const clpar_gemm_config *cand, int nc,
                                const clpar_gemm_config *fallback, const clpar_gemm_shape *s,
                                int ns, const double *times, clpar_gemm_tuning *out, int *picks);
/* "direct WGD=32 MDIMCD=4 ..." and back (0 when s is not such a line). */
CLPAR_API void clpar_gemm_config_format(const clpar_gemm_config *c, char *buf, size_t n);
CLPAR_API int clpar_gemm_config_parse(const char *s, clpar_gemm_config *c);
/* A tuning as the cache line holds it: the base's text, then " | NT 1024x768x256 clpar
 * MT=..." or " | TN 768x256x1024 clblast" per route; and back (0 when s is not such a line,
 * or breaks the limits of clpar_gemm_tuning). */
CLPAR_API void clpar_gemm_tuning_format(const clpar_gemm_tuning *t, char *buf, size_t n);
CLPAR_API int clpar_gemm_tuning_parse(const char *s, clpar_gemm_tuning *t);
/* 1 when t keeps the limits above: routes, and parameter sets of clpar's kernels. */
CLPAR_API int clpar_gemm_tuning_fits(const clpar_gemm_tuning *t);
/* The tuning of a device's platform, name and driver (its info) in $XDG_CACHE_HOME (or ~/.cache)
 * /clpar/gemm.tsv: look up (1 when found; the last entry wins) and add. */
CLPAR_API int clpar_gemm_cache_lookup(const clpar_runtime *rt, const clpar_device_info *info,
                                      clpar_gemm_tuning *t);
CLPAR_API clpar_status clpar_gemm_cache_store(const clpar_runtime *rt,
                                              const clpar_device_info *info,
                                              const clpar_gemm_tuning *t);

/* ---- GEMM workspace: the panels clpar's kernels copy operands into ---- */

/* Floats of panels a product of shape s takes under c (0: clpar's kernels read it in place,
 * or c is CLBlast's, which keeps its own buffers). */
CLPAR_API size_t clpar_gemm_panel_floats(const clpar_gemm_config *c, const clpar_gemm_shape *s);
/* Floats of workspace products of these shapes take under t, and products with fewer rows,
 * columns or k (which no route names: t's base runs them). */
CLPAR_API size_t clpar_gemm_workspace_floats(const clpar_gemm_tuning *t,
                                             const clpar_gemm_shape *shapes, int n);
/* Warms d up (clpar_op_warmup), then grows its workspace once to what products of these
 * shapes, or smaller, take (clpar_gemm_workspace_floats), so that running them never grows
 * it: a mesh reserves its rank's products when it builds the rank. */
CLPAR_API clpar_status clpar_gemm_reserve(clpar_device *d, const clpar_gemm_shape *shapes, int n);
/* The tuning device `index` of rt takes when it first runs a product: CLPAR_GEMM_PATH's
 * (clpar: the default parameters; direct, indirect, auto: CLBlast's), else the tuning
 * cache's, else the default (clpar_gemm_default). Opens nothing. */
CLPAR_API clpar_status clpar_gemm_tuning_of(const clpar_runtime *rt, int index,
                                            clpar_gemm_tuning *t);
/* The bytes of workspace a device whose GEMMs follow t holds once warmed up
 * (clpar_op_warmup; cpu: a CPU device, whose warm-up runs the widest products) and reserved
 * for these shapes (clpar_gemm_reserve). */
CLPAR_API size_t clpar_gemm_workspace_bytes(const clpar_gemm_tuning *t, bool cpu,
                                            const clpar_gemm_shape *shapes, int n);
/* The bytes clpar_device_workspace_bytes will give for device `index` of rt opened afresh,
 * warmed up and reserved for these shapes: worked out without opening it, from the tuning
 * it would take (CLPAR_GEMM_PATH, else the tuning cache, else the default). For --dry-run
 * and plans. */
CLPAR_API clpar_status clpar_gemm_workspace_predict(const clpar_runtime *rt, int index,
                                                    const clpar_gemm_shape *shapes, int n,
                                                    size_t *bytes);

/* Compiles and runs every kernel (clpar's and CLBlast's GEMMs) once on d, one device at a
 * time across the process (later calls return at once). CLBlast is not safe when two
 * threads compile at once, nor is PoCL when two threads first run the same kernel, so call
 * this before driving devices from several host threads; until then GEMM calls on d are
 * serialized. */
CLPAR_API clpar_status clpar_op_warmup(clpar_device *d);

#ifdef __cplusplus
}
#endif
#endif
