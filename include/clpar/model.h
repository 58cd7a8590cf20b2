/* The model level: MLPs of linear layers with ReLU between them, built from the layer
 * modules (module.h), a single-device replica of one, losses and optimizers. Parameters of a model
 * sit in one flat buffer, layer after layer, weight (out, in) then bias (out), so that gradient
 * reduction and the optimizer see one contiguous range per layer (a bucket) and one for the whole
 * model. */
#ifndef CLPAR_MODEL_H
#define CLPAR_MODEL_H

#include "clpar/gpt.h"
#include "clpar/module.h"
#include "clpar/ops.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CLPAR_MAX_LAYERS 32

/* Layer sizes, e.g. 784,256,128,10: nlayers linear layers, sizes[0] inputs,
 * sizes[nlayers] outputs. */
typedef struct {
    int nlayers;
    size_t sizes[CLPAR_MAX_LAYERS + 1];
} clpar_mlp_shape;

/* Parses "784,256,128,10" (at least two positive sizes). CLPAR_EINVAL names the problem. */
CLPAR_API clpar_status clpar_mlp_shape_parse(clpar_mlp_shape *shape, const char *text);
/* Writes "784,256,128,10" into buf. */
CLPAR_API void clpar_mlp_shape_format(const clpar_mlp_shape *shape, char *buf, size_t n);
CLPAR_API size_t clpar_mlp_shape_param_count(const clpar_mlp_shape *shape);
/* Offset (in floats) of layer l's weight in the flat layout; its bias follows the weight. */
CLPAR_API size_t clpar_mlp_shape_weight_offset(const clpar_mlp_shape *shape, int l);
CLPAR_API size_t clpar_mlp_shape_bias_offset(const clpar_mlp_shape *shape, int l);
/* Floats in layer l's range (weight and bias). */
CLPAR_API size_t clpar_mlp_shape_layer_count(const clpar_mlp_shape *shape, int l);

/* Fills params (param_count floats) through each layer's module as PyTorch's nn.Linear
 * default does, weights and biases uniform in +-1/sqrt(fan_in), from a generator seeded with
 * `seed` alone. Fails only when out of host memory. */
CLPAR_API clpar_status clpar_mlp_init_params(float *params, const clpar_mlp_shape *shape,
                                             uint64_t seed);

/* The modules of layers [first, first + count) for tensor-parallel shard `shard` of
 * `shards` (1: whole layers; weights: relative widths of the shards, NULL: even), paired as
 * Megatron-LM pairs them from the first: column-parallel then row-parallel, a layer left
 * over column-parallel with its output gathered. Block j is Linear "2l" then ReLU "2l+1"
 * (l = first + j; no ReLU after the model's last layer), its parameters laid out from 0 in
 * order; *param_count receives their floats. The caller frees each block
 * (clpar_module_free). CLPAR_EINVAL, naming "tp", when a layer has fewer features to split
 * than shards. */
CLPAR_API clpar_status clpar_mlp_build(const clpar_mlp_shape *shape, int first, int count,
                                       int shard, int shards, const double *weights,
                                       clpar_module **blocks, size_t *param_count);

typedef enum { CLPAR_LOSS_XENT, CLPAR_LOSS_MSE } clpar_loss_kind;
/* "xent", "mse" ("unknown" for other values), and back (CLPAR_EINVAL naming "loss"). */
CLPAR_API const char *clpar_loss_kind_name(clpar_loss_kind kind);
CLPAR_API clpar_status clpar_loss_kind_parse(const char *text, clpar_loss_kind *kind);

typedef struct clpar_mlp clpar_mlp;

/* Allocates one replica on d for batches of up to max_rows rows: parameters, gradients,
 * saved activations and loss buffers, all on d. Parameters start at zero. The caller
 * owns *out (clpar_mlp_free) and must keep d alive longer. */
CLPAR_API clpar_status clpar_mlp_init(clpar_device *d, const clpar_mlp_shape *shape,
                                      size_t max_rows, clpar_mlp **out);
CLPAR_API void clpar_mlp_free(clpar_mlp *m);

CLPAR_API const clpar_mlp_shape *clpar_mlp_get_shape(const clpar_mlp *m);
CLPAR_API clpar_device *clpar_mlp_device(const clpar_mlp *m);
CLPAR_API cl_mem clpar_mlp_params(const clpar_mlp *m); /* flat parameters, borrowed */
CLPAR_API cl_mem clpar_mlp_grads(const clpar_mlp *m);  /* flat gradients, same layout, borrowed */
CLPAR_API cl_mem clpar_mlp_output(const clpar_mlp *m); /* last forward's output (rows, sizes[L]) */

/* Blocking copies of all parameters (or gradients) between host and device. */
CLPAR_API clpar_status clpar_mlp_set_params(clpar_mlp *m, const float *params);
CLPAR_API clpar_status clpar_mlp_get_params(clpar_mlp *m, float *params);
CLPAR_API clpar_status clpar_mlp_get_grads(clpar_mlp *m, float *grads);

/* Queues a copy of a batch to the device: x (rows, in), and labels (rows) for the
 * cross-entropy loss or targets (rows, out) for MSE; either may be NULL. The copies do not
 * block, so the host arrays must stay unchanged until the device has run them (after the
 * next clpar_mlp_read_loss or clpar_device_finish). */
CLPAR_API clpar_status clpar_mlp_upload(clpar_mlp *m, const float *x, const int *labels,
                                        const float *targets, size_t rows);

/* Forward over the uploaded rows; saves each layer's input for backward. */
CLPAR_API clpar_status clpar_mlp_forward(clpar_mlp *m, size_t rows);

/* Per-row losses of the last forward, and the output gradient of
 * sum(row losses) / (total_rows [x outputs, for MSE]): with total_rows the global batch,
 * gradients of shards and micro-batches add up to the full batch's mean-loss gradient.
 * total_rows <= 0 computes the losses only (evaluation). */
CLPAR_API clpar_status clpar_mlp_loss(clpar_mlp *m, clpar_loss_kind kind, size_t rows,
                                      double total_rows);

/* Called by backward after it has queued layer l's weight and bias gradients; `event`
 * completes when they are written (borrowed, valid during the call). */
typedef clpar_status (*clpar_grad_ready_fn)(void *user, int layer, cl_event event);

/* Backward from the loss gradient through every layer, last to first. beta = 0 overwrites
 * the gradients, beta = 1 adds to them (gradient accumulation). */
CLPAR_API clpar_status clpar_mlp_backward(clpar_mlp *m, size_t rows, float beta,
                                          clpar_grad_ready_fn ready, void *user);

/* Waits for the device and returns the sum of the last clpar_mlp_loss's row losses in
 * double, summed in row order. */
CLPAR_API clpar_status clpar_mlp_read_loss(clpar_mlp *m, size_t rows, double *sum);

/* Waits and reads the output (rows, sizes[L]) of the last forward. */
CLPAR_API clpar_status clpar_mlp_read_output(clpar_mlp *m, float *out, size_t rows);

/* ---- the model a run trains, whatever its kind ---- */

/* An MLP (mlp) or, when gpt.layers > 0, a GPT (gpt.h). */
typedef struct {
    clpar_mlp_shape mlp;
    clpar_gpt_config gpt;
} clpar_model_spec;

CLPAR_API bool clpar_model_is_gpt(const clpar_model_spec *m);
/* Top-level modules: an MLP's layers, a GPT's embeddings, blocks and head. */
CLPAR_API int clpar_model_modules(const clpar_model_spec *m);
CLPAR_API size_t clpar_model_param_count(const clpar_model_spec *m);
/* A row's input (features, or a sequence's token ids), its predictions (1, or a sequence's
 * positions), their classes or outputs, and the output width (positions x classes). */
CLPAR_API size_t clpar_model_input_width(const clpar_model_spec *m);
CLPAR_API size_t clpar_model_positions(const clpar_model_spec *m);
CLPAR_API size_t clpar_model_classes(const clpar_model_spec *m);
CLPAR_API size_t clpar_model_output_width(const clpar_model_spec *m);
/* Top-level modules [first, first + count) for tensor-parallel shard `shard` of `shards`,
 * parameters laid out from 0 (see clpar_mlp_build, clpar_gpt_build). */
CLPAR_API clpar_status clpar_model_build(const clpar_model_spec *m, int first, int count, int shard,
                                         int shards, const double *weights, clpar_module **mods,
                                         size_t *param_count);
CLPAR_API clpar_status clpar_model_init_params(const clpar_model_spec *m, float *params,
                                               uint64_t seed);
/* Every parameter of the whole model in the flat layout's order. */
CLPAR_API clpar_status clpar_model_each_param(const clpar_model_spec *m, clpar_param_fn fn,
                                              void *user);
/* The loss module for the model's output (a GPT: cross-entropy at every position). */
CLPAR_API clpar_status clpar_model_loss(const clpar_model_spec *m, clpar_loss_kind kind,
                                        clpar_module **out);
/* Forward and backward FLOPs per row of top-level module i (stage balance, planning). */
CLPAR_API double clpar_model_module_flops(const clpar_model_spec *m, int i);
/* Floats per row entering top-level module i: what a pipeline hands over at a cut there. */
CLPAR_API size_t clpar_model_boundary_width(const clpar_model_spec *m, int i);
/* A linear map of one device's training step: (rows, in) -> (rows, out), per_step times per
 * step, whose three products are clpar_model_linear_product's. */
typedef struct {
    const char *name; /* a GPT's ("attn.c_attn", ..., "head (x wte^T)"); NULL for an MLP's */
    int layer;        /* an MLP's layer, else -1 */
    size_t rows, in, out;
    int per_step; /* a GPT's block maps: once per layer */
    int with_dx;  /* it computes an input gradient (not an MLP's first layer) */
} clpar_model_linear;
/* The model's linear maps at batch rows (sequences for a GPT, vocab 256 when not given), in
 * the order the forward pass meets them (a GPT's blocks' four once each, then the head):
 * up to cap written; returns how many there are. */
CLPAR_API int clpar_model_linears(const clpar_model_spec *m, size_t batch, clpar_model_linear *out,
                                  int cap);
/* Product j of a linear map, as the layers call clpar_op_gemm: 0 the forward x W^T (NT),
 * 1 the input gradient dy W (NN), 2 the weight gradient dy^T x (TN, accumulated). */
CLPAR_API clpar_gemm_shape clpar_model_linear_product(const clpar_model_linear *l, int j);
/* The distinct GEMM products of one device's training step at batch rows (sequences for a
 * GPT, vocab 256 when not given), as the layers call clpar_op_gemm: each linear layer's
 * forward x W^T (NT), input gradient dy W (NN; not an MLP's first layer) and weight gradient
 * dy^T x (TN), a GPT's head likewise. Adds them to the n in out that are not already there
 * (several batches' products into one list), writing up to cap; returns how many there are. */
CLPAR_API int clpar_model_gemm_shapes(const clpar_model_spec *m, size_t batch,
                                      clpar_gemm_shape *out, int n, int cap);
/* "784,256,10" or "gpt:layers=L,heads=H,embd=C,ctx=T,vocab=V", and back (a GPT's vocab may
 * be left out, to come from the data; gpt.vocab is then 0). */
CLPAR_API void clpar_model_format(const clpar_model_spec *m, char *buf, size_t n);
CLPAR_API clpar_status clpar_model_parse(const char *text, clpar_model_spec *m);

/* ---- optimizers ---- */

typedef enum { CLPAR_OPTIM_SGD, CLPAR_OPTIM_ADAM, CLPAR_OPTIM_ADAMW } clpar_optim_kind;

typedef struct {
    clpar_optim_kind kind;
    float lr;
    float momentum, dampening; /* SGD */
    bool nesterov;             /* SGD */
    float weight_decay;
    float beta1, beta2, eps;  /* Adam, AdamW */
    bool decay_matrices_only; /* weight decay on 2-D tensors only, as nanoGPT configures
                               * AdamW (not biases and layer norms); else on all */
} clpar_optim_config;

/* clpar's defaults for kind, the only ones (the tools take theirs from here): SGD lr 1e-2
 * (PyTorch 2's is 1e-3, slow for these models), momentum 0; Adam lr 1e-3, betas (0.9,
 * 0.999), eps 1e-8, weight decay 0 (PyTorch's); AdamW the same with weight decay 1e-2. */
CLPAR_API clpar_optim_config clpar_optim_defaults(clpar_optim_kind kind);
/* "sgd", "adam", "adamw", and back (CLPAR_EINVAL naming "optim.kind"). */
CLPAR_API const char *clpar_optim_kind_name(clpar_optim_kind kind);
CLPAR_API clpar_status clpar_optim_kind_parse(const char *text, clpar_optim_kind *kind);

typedef struct clpar_optim clpar_optim;

/* Optimizer state (momentum or Adam moments) for n parameters on d, zeroed. The caller
 * owns *out (clpar_optim_free). */
CLPAR_API clpar_status clpar_optim_init(clpar_device *d, const clpar_optim_config *cfg, size_t n,
                                        clpar_optim **out);
CLPAR_API void clpar_optim_free(clpar_optim *o);
/* Parameters that take no weight decay: n ranges [start, end) (pairs in ranges, in order),
 * such as a GPT's biases and layer norms (nanoGPT decays matrices and embeddings only). */
CLPAR_API clpar_status clpar_optim_set_no_decay(clpar_optim *o, const size_t *ranges, int n);
/* Queues one update of params from grads (n floats each) on the compute queue. */
CLPAR_API clpar_status clpar_optim_step(clpar_optim *o, cl_mem params, cl_mem grads,
                                        cl_event *event);
CLPAR_API long clpar_optim_steps_taken(const clpar_optim *o);
/* The learning rate of the next steps (a schedule's). */
CLPAR_API void clpar_optim_set_lr(clpar_optim *o, float lr);
/* Sets the step count, as when resuming (Adam's bias correction and SGD's first step). */
CLPAR_API void clpar_optim_set_steps(clpar_optim *o, long steps);
/* The state buffers, named as PyTorch names them: SGD with momentum has one
 * ("momentum_buffer"), Adam and AdamW two ("exp_avg", "exp_avg_sq"), plain SGD none. The
 * buffers are borrowed, n floats each, in the layout of the parameters. */
CLPAR_API int clpar_optim_state_count(const clpar_optim *o);
CLPAR_API cl_mem clpar_optim_state(const clpar_optim *o, int i);
CLPAR_API const char *clpar_optim_state_name(const clpar_optim_config *cfg, int i);
CLPAR_API int clpar_optim_config_state_count(const clpar_optim_config *cfg);

#ifdef __cplusplus
}
#endif
#endif
