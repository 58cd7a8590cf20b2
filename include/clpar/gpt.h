/* The model level's GPT: nanoGPT's model (token and position embeddings, blocks of causal
 * self-attention and a GELU MLP with pre-layer-norms and residuals, a final layer norm and
 * an output head tied to the token table), built from the layer modules, with PyTorch's
 * parameter names, and one replica of it on one device. Rows are sequences of ctx tokens. */
#ifndef CLPAR_GPT_H
#define CLPAR_GPT_H

#include "clpar/module.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int layers, heads;
    size_t embd, ctx, vocab;
} clpar_gpt_config;

/* CLPAR_EINVAL naming the field: layers, heads, embd, ctx and vocab at least 1, embd a
 * multiple of heads. */
CLPAR_API clpar_status clpar_gpt_config_check(const clpar_gpt_config *c);
/* Top-level modules: the embeddings, one per block, the head (layers + 2). */
CLPAR_API int clpar_gpt_module_count(const clpar_gpt_config *c);
/* Floats of the whole model, in nanoGPT's state_dict order (wte, wpe, each block's ln_1,
 * attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj, then ln_f; the head is wte). */
CLPAR_API size_t clpar_gpt_param_count(const clpar_gpt_config *c);
/* The top-level modules [first, first + count) of the model for tensor-parallel shard
 * `shard` of `shards` (blocks split by heads, embeddings and head whole on every shard),
 * their parameters laid out from 0 in order (*param_count floats). A head built without
 * the embeddings (first > 0) holds a copy of the tied token table (clpar_param.copy). The
 * caller frees each module. */
CLPAR_API clpar_status clpar_gpt_build(const clpar_gpt_config *c, int first, int count, int shard,
                                       int shards, const double *weights, clpar_module **mods,
                                       size_t *param_count);
/* nanoGPT's initialization from a generator seeded with seed: Linear and embedding weights
 * normal(0, 0.02), residual projections normal(0, 0.02 / sqrt(2 layers)), biases 0, layer
 * norms 1 and 0. */
CLPAR_API clpar_status clpar_gpt_init_params(float *params, const clpar_gpt_config *c,
                                             uint64_t seed);
/* Calls fn for every parameter of the model in order (names, shapes, full offsets). */
CLPAR_API clpar_status clpar_gpt_each_param(const clpar_gpt_config *c, clpar_param_fn fn,
                                            void *user);

typedef struct clpar_gpt clpar_gpt;

/* One replica on d for batches of up to max_seqs sequences; parameters start at zero. */
CLPAR_API clpar_status clpar_gpt_init(clpar_device *d, const clpar_gpt_config *c, size_t max_seqs,
                                      clpar_gpt **out);
CLPAR_API void clpar_gpt_free(clpar_gpt *g);
CLPAR_API cl_mem clpar_gpt_params(const clpar_gpt *g);
CLPAR_API cl_mem clpar_gpt_grads(const clpar_gpt *g);
CLPAR_API clpar_status clpar_gpt_set_params(clpar_gpt *g, const float *params);
CLPAR_API clpar_status clpar_gpt_get_params(clpar_gpt *g, float *params);
CLPAR_API clpar_status clpar_gpt_get_grads(clpar_gpt *g, float *grads);
/* Queues a batch: idx and targets (seqs x ctx token ids each; targets may be NULL for
 * forward only). The arrays must stay unchanged until the next read or finish. */
CLPAR_API clpar_status clpar_gpt_upload(clpar_gpt *g, const int *idx, const int *targets,
                                        size_t seqs);
CLPAR_API clpar_status clpar_gpt_forward(clpar_gpt *g, size_t seqs);
/* Per-token cross-entropy of the last forward, and with total_tokens > 0 the gradient of
 * sum(token losses) / total_tokens. */
CLPAR_API clpar_status clpar_gpt_loss(clpar_gpt *g, size_t seqs, double total_tokens);
/* B and W through every module, last first; beta 1 adds to the gradients. */
CLPAR_API clpar_status clpar_gpt_backward(clpar_gpt *g, size_t seqs, float beta);
/* Waits and sums the last loss's token losses in order, in double. */
CLPAR_API clpar_status clpar_gpt_read_loss(clpar_gpt *g, size_t seqs, double *sum);
/* Waits and reads the logits (seqs x ctx x vocab) of the last forward. */
CLPAR_API clpar_status clpar_gpt_read_logits(clpar_gpt *g, float *logits, size_t seqs);

/* Continues prompt (len token ids) by n tokens sampled from g (a replica of the model c,
 * made for at least one sequence) into out: each from the logits at the last position of
 * the last ctx tokens, divided by temperature (0: the most likely token), among the top_k
 * most likely (0: all), drawn from a generator seeded with seed alone. */
CLPAR_API clpar_status clpar_gpt_generate(clpar_gpt *g, const clpar_gpt_config *c,
                                          const int *prompt, size_t len, size_t n,
                                          float temperature, int top_k, uint64_t seed, int *out);

#ifdef __cplusplus
}
#endif
#endif
