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
 * The transformer layers to come fit the same interface: a block is a module whose calls
 * run its children (layer norms, attention, the MLP's Linears) and add the residuals; heads
 * split over shards are a column-split c_attn (a shard's heads' q, k and v columns) feeding a
 * row-split c_proj, one all-reduce each way, as for an MLP pair; an embedding is a module
 * whose input is token ids. A module whose W needs more than its input and output gradient
 * (a block's inner activations) will keep those per micro-batch itself, and this interface
 * will then pass the micro-batch's slot; nothing today needs it. */
#ifndef CLPAR_MODULE_H
#define CLPAR_MODULE_H

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
 * of the rank's flat parameters. rows = 0: this shard holds none of it. */
typedef struct {
    char name[96]; /* PyTorch's name: "2.weight" */
    int ndim;
    size_t shape[2];
    size_t full_offset; /* in the full model's flat layout */
    size_t row0, rows, col0, cols;
    size_t offset;
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
    /* Floats of scratch the calls need for `rows` rows (NULL: none). */
    size_t (*scratch_floats)(const clpar_module *m, size_t rows);
    /* Initializes the module's parameters in the full model's flat layout (full), drawing
     * from rng in parameter order, as PyTorch's module of the kind initializes them (NULL:
     * no parameters). Shards draw the same numbers: they hold blocks of the same tensors. */
    void (*init)(const clpar_module *m, float *full, clpar_rng *rng);
    /* Bytes one forward and one B over `rows` rows move through the collectives, per shard
     * (NULL: none). with_dx: whether B computes the input gradient. */
    uint64_t (*tp_bytes)(const clpar_module *m, size_t rows, bool with_dx);
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
/* Initializes m's and its children's parameters in the full layout, in order. */
CLPAR_API void clpar_module_init_params(const clpar_module *m, float *full, clpar_rng *rng);
CLPAR_API uint64_t clpar_module_tp_bytes(const clpar_module *m, size_t rows, bool with_dx);

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
