/* Layer modules: the one place where a layer's math lives. Every layer kind (Linear, ReLU,
 * the losses; the sequence that chains them) implements clpar_module_class, and every
 * strategy, the single-device model, the planner's measurement and the examples drive the
 * same modules. A model is a list of top-level modules; a pipeline stage boundary falls
 * between two of them, and each one's parameters form one contiguous range of its rank's
 * flat parameters (a gradient-reduction bucket).
 *
 * A module instance belongs to one rank: for tensor parallelism it is built for one shard
 * and holds that shard's part of every parameter (clpar_param says which block of the full
 * tensor), and it calls the collectives its split needs through the clpar_tp_comm the
 * strategy supplies. Calls enqueue on the rank's compute queue and return at once.
 *
 * Backward is two calls, as pipelines need: backward_input (B), the gradient of the input,
 * which the previous stage waits for, and backward_weights (W), which adds the weight
 * gradients of any number of rows at once, so that a schedule can group several
 * micro-batches into one GEMM. W reads the module's input and the output gradient left by
 * B (which may change it in place: a ReLU masks it), both row-major (rows, width), so a
 * strategy may concatenate the rows of several micro-batches before calling it.
 *
 * A module whose B or W needs more than its input, output and output gradient (a
 * transformer block's inner activations, a layer norm's statistics) keeps that itself, per
 * micro-batch: `reserve` allocates room for the slots a schedule holds, and every call names
 * its micro-batch's slot. Such a module's W runs once per micro-batch (a strategy does not
 * concatenate its rows). A transformer block runs its children (layer norms, the attention's
 * and the MLP's Linears) and adds the residuals itself; an embedding's input is token ids. */
#ifndef CLPAR_MODULE_H
#define CLPAR_MODULE_H

#include "clpar/ops.h"
#include "clpar/rng.h"
#include "clpar/runtime.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How a module's weights are split over tensor-parallel shards (Megatron-LM's names). */
typedef enum {
    CLPAR_TP_NONE,    /* the whole layer on every rank (no tensor parallelism) */
    CLPAR_TP_COLUMN,  /* output features split; the output stays sharded for a ROW layer */
    CLPAR_TP_ROW,     /* input features split; partial outputs summed by an all-reduce */
    CLPAR_TP_GATHERED /* output features split; the output slices gathered on every rank */
} clpar_tp_split;

/* The collectives a strategy lends a tensor-parallel module, over the shards of one layer.
 * Each runs after everything already queued on the caller's compute queue and leaves its
 * result there for what is queued next. */
typedef struct {
    int shard, shards;
    /* buf[0, count) = the sum of every shard's buf[0, count) */
    clpar_status (*all_reduce)(void *ctx, cl_mem buf, size_t count);
    /* out (rows, width) = every shard's part (rows, len) put at columns [first, first + len) */
    clpar_status (*all_gather)(void *ctx, cl_mem part, size_t rows, size_t first, size_t len,
                               size_t width, cl_mem out);
    void *ctx;
} clpar_tp_comm;

/* One parameter tensor as the full model names and shapes it, and the block of it that a
 * shard holds: rows [row0, row0 + rows) and columns [col0, col0 + cols) of the full
 * (shape[0], shape[1]) tensor (1-D tensors have shape[1] = 1), stored row-major at `offset`
 * of the rank's flat parameters. rows = 0: this shard holds none of it. With groups > 1 the
 * row block repeats every group_stride rows (a fused q, k, v projection split by heads: the
 * shard's rows of q, then of k, then of v), stored one group after the other. */
typedef struct {
    char name[96]; /* PyTorch's name: "2.weight" */
    int ndim;
    size_t shape[2];
    size_t full_offset; /* in the full model's flat layout */
    size_t row0, rows, col0, cols;
    size_t offset;
    size_t groups, group_stride; /* 0 or 1 group: one block */
    bool copy; /* a second copy of a tied tensor on another rank (a GPT's token table on its
                * last pipeline stage): its gradient is summed with the first's */
} clpar_param;

/* What one call of a module works on. Widths are those of this shard's module. */
typedef struct {
    size_t rows;
    cl_mem x;      /* input (rows, in_width) */
    cl_mem y;      /* forward: output (rows, out_width); may be x for in-place modules */
    cl_mem dy;     /* backward: output gradient (rows, dy_width); B may change it in place */
    cl_mem dx;     /* B: input gradient (rows, in_width); NULL when nothing needs it */
    cl_mem target; /* losses: labels (rows) as int, or targets (rows, in_width) */
    float scale;   /* losses' B: the weight of each row's loss in the loss being minimized */
    float beta;    /* W: 0 overwrites the gradients, 1 adds to them */
    int slot;      /* the micro-batch's slot, for modules that keep state (reserve) */
    bool add;      /* B: add the input gradient to dx (a residual stream's) instead of
                    * writing it; modules that cannot say so in their kind's comment */
} clpar_module_io;

/* The rank a module runs on: its device, its flat parameters and gradients, its collectives
 * (NULL without tensor parallelism) and a scratch buffer of at least the largest
 * scratch_floats of its modules. */
typedef struct {
    clpar_device *dev;
    cl_mem params, grads;
    const clpar_tp_comm *tp;
    cl_mem scratch;
} clpar_module_env;

typedef struct clpar_module clpar_module;

typedef struct {
    const char *kind; /* "linear", "relu", "sequential", "cross_entropy", "mse" */
    /* y = f(x). Losses: y (rows) = each row's loss of x against target. */
    clpar_status (*forward)(clpar_module *m, const clpar_module_env *env,
                            const clpar_module_io *io);
    /* B: dx from dy (and x, y of the same rows' forward). Losses: dx = scale d(row loss)/dx,
     * dy unused. */
    clpar_status (*backward_input)(clpar_module *m, const clpar_module_env *env,
                                   const clpar_module_io *io);
    /* W: gradients = beta gradients + their contribution over io->rows rows of (x, dy as B
     * left it). NULL for modules without parameters. */
    clpar_status (*backward_weights)(clpar_module *m, const clpar_module_env *env,
                                     const clpar_module_io *io);
    /* Allocates on d what the module (and its children: this speaks for them) keeps
     * between forward and backward for `slots` micro-batches of up to `rows` rows each
     * (NULL: nothing beyond x, y and dy, the children asked alike); free releases it. */
    clpar_status (*reserve)(clpar_module *m, clpar_device *d, int slots, size_t rows);
    /* Bytes reserve allocates per slot for `rows` rows, children included (NULL: the
     * children's). */
    size_t (*state_bytes)(const clpar_module *m, size_t rows);
    /* Floats of scratch the calls need for `rows` rows, children included (NULL: the
     * children's largest). */
    size_t (*scratch_floats)(const clpar_module *m, size_t rows);
    /* Initializes the module's parameters in the full model's flat layout (full), drawing
     * from rng in parameter order, as PyTorch's module of the kind initializes them (NULL:
     * no parameters). Shards draw the same numbers: they hold blocks of the same tensors. */
    void (*init)(const clpar_module *m, float *full, clpar_rng *rng);
    /* Bytes one forward and one B over `rows` rows move through the collectives, per shard,
     * children included (NULL: the children's). with_dx: whether B computes the input
     * gradient. */
    uint64_t (*tp_bytes)(const clpar_module *m, size_t rows, bool with_dx);
    /* The GEMM products a forward and a B over `rows` rows and a W over w_rows run, children
     * included (NULL: the children's, with the same rows): the first cap into out, and how
     * many in all. with_dx as for tp_bytes. */
    int (*gemm_shapes)(const clpar_module *m, size_t rows, size_t w_rows, bool with_dx,
                       clpar_gemm_shape *out, int cap);
    void (*free)(clpar_module *m); /* the class's own part (NULL: nothing) */
} clpar_module_class;

struct clpar_module {
    const clpar_module_class *cls;
    char name[64];       /* PyTorch's prefix of its parameters: "2" */
    size_t in_width;     /* row width of its input as this shard holds it */
    size_t out_width;    /* row width of its output as this shard holds it */
    size_t dy_width;     /* row stride of the output gradient B and W read (a gathered
                          * layer reads its columns of the whole gradient) */
    size_t param_offset; /* its range in the rank's flat parameters ... */
    size_t param_count;  /* ... (a reduction bucket) */
    int nparams;
    clpar_param *params;
    int nchildren; /* a sequence's modules, in order */
    clpar_module **children;
};

/* ---- the layer kinds ---- */

/* nn.Linear(in, out) named `name`, y = x W^T + b, W (out, in), for shard `shard` of
 * `shards` under split (weights: relative widths of the shards, NULL: even). Its parameters
 * start at param_offset of the rank's flat parameters and at full_offset of the full
 * model's. CLPAR_EINVAL when the split dimension has fewer features than shards. */
CLPAR_API clpar_status clpar_linear_init(const char *name, size_t in, size_t out,
                                         clpar_tp_split split, int shard, int shards,
                                         const double *weights, size_t param_offset,
                                         size_t full_offset, clpar_module **out_module);
/* The same, the split features counted in units of `unit` (a head's features), and for a
 * column split the output made of `groups` equal parts split alike (q, k and v: 3); the
 * shard's output holds its part of each group, group after group. */
CLPAR_API clpar_status clpar_linear_init_grouped(const char *name, size_t in, size_t out,
                                                 clpar_tp_split split, size_t groups, size_t unit,
                                                 int shard, int shards, const double *weights,
                                                 size_t param_offset, size_t full_offset,
                                                 clpar_module **out_module);
/* nn.ReLU over rows of `width` features, in place (y may be x; B masks dy in place). */
CLPAR_API clpar_status clpar_relu_init(const char *name, size_t width, clpar_module **out);
/* Modules applied one after another, all but the first in place (element-wise ones): so
 * the sequence's input is the first one's and its gradient flows back through them in
 * reverse. Takes ownership of children (freed with the sequence, also on failure). */
CLPAR_API clpar_status clpar_sequential_init(const char *name, clpar_module **children, int n,
                                             clpar_module **out);
/* Softmax cross-entropy over `classes` logits per row against int labels, and the sum of
 * squared errors against (rows, width) targets: per-row losses forward, scale times the
 * gradient backward (the mean of MSE over outputs is the caller's scale). */
CLPAR_API clpar_status clpar_cross_entropy_init(size_t classes, clpar_module **out);
/* The same over `positions` rows of `classes` logits per row (a sequence's next-token
 * predictions): per-position losses forward, positions per row. */
CLPAR_API clpar_status clpar_sequence_cross_entropy_init(size_t classes, size_t positions,
                                                         clpar_module **out);
/* nn.LayerNorm(C) named `name` (eps 1e-5) over rows of C features; B honours io->add. */
CLPAR_API clpar_status clpar_layernorm_init(const char *name, size_t C, size_t param_offset,
                                            size_t full_offset, clpar_module **out);
/* nanoGPT's token and position embeddings, `wte` (V, C) and `wpe` (T, C) by name: rows of T
 * token ids (int) in, rows of T x C out. tied: the token table's gradient is always added
 * to (a tied head on this rank writes it first). */
CLPAR_API clpar_status clpar_embedding_init(const char *wte, const char *wpe, size_t V, size_t T,
                                            size_t C, bool tied, size_t param_offset,
                                            size_t full_offset, clpar_module **out);
/* nanoGPT's Block named `prefix` ("transformer.h.0"): ln_1, attn (c_attn, causal attention
 * of H heads, c_proj), ln_2, mlp (c_fc, GELU, c_proj), with residuals, over rows of T x C;
 * its residual projections initialize with std 0.02 / sqrt(2 layers). For tensor-parallel
 * shard `shard` of `shards` (weights: relative widths, NULL: even) it holds whole heads
 * (uneven counts work: 4 heads over 3 shards are 2, 1, 1) and a slice of the MLP. */
CLPAR_API clpar_status clpar_gpt_block_init(const char *prefix, size_t T, size_t C, size_t H,
                                            int layers, int shard, int shards,
                                            const double *weights, size_t param_offset,
                                            size_t full_offset, clpar_module **out);
/* ln_f (named ln_name, at full_offset) then the output head tied to the token table: at
 * wte_offset of the same rank's parameters, or with own_table (a pipeline's last stage,
 * away from the embeddings) a copy of the table (full offset wte_full) held first among
 * the head's parameters. Rows of T x C in, T x V logits out. */
CLPAR_API clpar_status clpar_gpt_head_init(const char *ln_name, size_t T, size_t C, size_t V,
                                           size_t wte_offset, bool own_table, size_t wte_full,
                                           size_t param_offset, size_t full_offset,
                                           clpar_module **out);
CLPAR_API clpar_status clpar_mse_init(size_t width, clpar_module **out);
CLPAR_API void clpar_module_free(clpar_module *m);

/* Calls through the class, with the checks every module shares. */
CLPAR_API clpar_status clpar_module_forward(clpar_module *m, const clpar_module_env *env,
                                            const clpar_module_io *io);
CLPAR_API clpar_status clpar_module_backward_input(clpar_module *m, const clpar_module_env *env,
                                                   const clpar_module_io *io);
CLPAR_API clpar_status clpar_module_backward_weights(clpar_module *m, const clpar_module_env *env,
                                                     const clpar_module_io *io);
CLPAR_API size_t clpar_module_scratch_floats(const clpar_module *m, size_t rows);
/* reserve and state_bytes of m and its children. */
CLPAR_API clpar_status clpar_module_reserve(clpar_module *m, clpar_device *d, int slots,
                                            size_t rows);
CLPAR_API size_t clpar_module_state_bytes(const clpar_module *m, size_t rows);
/* Whether m or a child keeps state per micro-batch (its W then runs per micro-batch). */
CLPAR_API bool clpar_module_has_state(const clpar_module *m);
/* Initializes m's and its children's parameters in the full layout, in order. */
CLPAR_API void clpar_module_init_params(const clpar_module *m, float *full, clpar_rng *rng);
CLPAR_API uint64_t clpar_module_tp_bytes(const clpar_module *m, size_t rows, bool with_dx);
/* The GEMM products of m and its children (the class's gemm_shapes): for workspace. */
CLPAR_API int clpar_module_gemm_shapes(const clpar_module *m, size_t rows, size_t w_rows,
                                       bool with_dx, clpar_gemm_shape *out, int cap);

/* Every parameter of m and its children, in flat-layout order: calls fn for each. */
typedef void (*clpar_param_fn)(const clpar_param *p, void *user);
CLPAR_API void clpar_module_each_param(const clpar_module *m, clpar_param_fn fn, void *user);
/* Copies m's parameters between the full model's flat layout and the rank's (only the
 * blocks this shard holds). */
typedef enum { CLPAR_FULL_TO_LOCAL, CLPAR_LOCAL_TO_FULL } clpar_param_copy;
CLPAR_API void clpar_module_map_params(const clpar_module *m, float *full, float *local,
                                       clpar_param_copy direction);

#ifdef __cplusplus
}
#endif
#endif
