/* One GPT replica on one device (clpar_gpt): the model's modules over flat parameters and
 * gradients, with one activation slot; the single-device use of the modules that the
 * PyTorch comparison and programs without a mesh run. */
#include "clpar/gpt.h"
#include "clpar/model.h"
#include "../runtime/internal.h"

#include <stdlib.h>

struct clpar_gpt {
    clpar_device *dev;
    clpar_gpt_config cfg;
    int n; /* top-level modules */
    size_t max, nparams;
    clpar_module **mods;
    clpar_module *loss;
    cl_mem params, grads, scratch;
    cl_mem *acts; /* n + 1: acts[0] the ids, acts[i + 1] module i's output */
    cl_mem *dys;  /* n: the gradient of module i's output */
    cl_mem targets, losses;
    float *loss_host;
};

void clpar_gpt_free(clpar_gpt *g) {
    if (!g) return;
    clpar_device *d = g->dev;
    clFinish(d->compute);
    for (int i = 0; g->mods && i < g->n; i++)
        clpar_module_free(g->mods[i]);
    clpar_module_free(g->loss);
    for (int i = 0; g->acts && i <= g->n; i++)
        clpar_device_release(d, g->acts[i]);
    for (int i = 0; g->dys && i < g->n; i++)
        clpar_device_release(d, g->dys[i]);
    clpar_device_release(d, g->params);
    clpar_device_release(d, g->grads);
    clpar_device_release(d, g->scratch);
    clpar_device_release(d, g->targets);
    clpar_device_release(d, g->losses);
    free(g->mods);
    free(g->acts);
    free(g->dys);
    free(g->loss_host);
    free(g);
}

clpar_status clpar_gpt_init(clpar_device *d, const clpar_gpt_config *c, size_t max_seqs,
                            clpar_gpt **out) {
    *out = NULL;
    TRY(clpar_gpt_config_check(c));
    if (max_seqs == 0) return clpar_error(CLPAR_EINVAL, "a model needs room for a sequence");
    clpar_gpt *g = calloc(1, sizeof *g);
    if (!g) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    g->dev = d;
    g->cfg = *c;
    g->n = clpar_gpt_module_count(c);
    g->max = max_seqs;
    g->mods = calloc((size_t)g->n, sizeof *g->mods);
    g->acts = calloc((size_t)g->n + 1, sizeof *g->acts);
    g->dys = calloc((size_t)g->n, sizeof *g->dys);
    size_t T = c->ctx, tokens = max_seqs * T;
    g->loss_host = malloc(tokens * sizeof(float));
    clpar_status st = g->mods && g->acts && g->dys && g->loss_host
                          ? CLPAR_OK
                          : clpar_error(CLPAR_ENOMEM, "out of host memory");
    if (st == CLPAR_OK) st = clpar_gpt_build(c, 0, g->n, 0, 1, NULL, g->mods, &g->nparams);
    if (st == CLPAR_OK) st = clpar_sequence_cross_entropy_init(c->vocab, T, &g->loss);
    const size_t f = sizeof(float);
    size_t scratch = 1;
    for (int i = 0; i < g->n && st == CLPAR_OK; i++) {
        size_t s = clpar_module_scratch_floats(g->mods[i], max_seqs);
        if (s > scratch) scratch = s;
    }
#define ALLOC(mem, bytes)                                                                          \
    if (st == CLPAR_OK) st = clpar_device_alloc(d, (bytes), &(mem))
    ALLOC(g->params, g->nparams * f);
    ALLOC(g->grads, g->nparams * f);
    ALLOC(g->scratch, scratch * f);
    ALLOC(g->acts[0], tokens * sizeof(cl_int));
    for (int i = 0; i < g->n && st == CLPAR_OK; i++) {
        ALLOC(g->acts[i + 1], max_seqs * g->mods[i]->out_width * f);
        ALLOC(g->dys[i], max_seqs * g->mods[i]->dy_width * f);
    }
    ALLOC(g->targets, tokens * sizeof(cl_int));
    ALLOC(g->losses, tokens * f);
#undef ALLOC
    for (int i = 0; i < g->n && st == CLPAR_OK; i++)
        st = clpar_module_reserve(g->mods[i], d, 1, max_seqs);
    if (st == CLPAR_OK) st = clpar_device_zero(d, g->params, 0, g->nparams * f);
    if (st == CLPAR_OK) st = clpar_device_zero(d, g->grads, 0, g->nparams * f);
    if (st != CLPAR_OK) {
        clpar_gpt_free(g);
        return st;
    }
    *out = g;
    return CLPAR_OK;
}

cl_mem clpar_gpt_params(const clpar_gpt *g) {
    return g->params;
}
cl_mem clpar_gpt_grads(const clpar_gpt *g) {
    return g->grads;
}
clpar_status clpar_gpt_set_params(clpar_gpt *g, const float *params) {
    return clpar_device_write(g->dev, g->params, 0, g->nparams * sizeof(float), params);
}
clpar_status clpar_gpt_get_params(clpar_gpt *g, float *params) {
    return clpar_device_read(g->dev, params, g->params, 0, g->nparams * sizeof(float));
}
clpar_status clpar_gpt_get_grads(clpar_gpt *g, float *grads) {
    return clpar_device_read(g->dev, grads, g->grads, 0, g->nparams * sizeof(float));
}

static clpar_status check_seqs(const clpar_gpt *g, size_t seqs) {
    if (seqs == 0 || seqs > g->max)
        return clpar_error(CLPAR_EINVAL, "batch of %zu sequences for a model sized for 1..%zu",
                           seqs, g->max);
    return CLPAR_OK;
}

static clpar_module_env env_of(const clpar_gpt *g) {
    return (clpar_module_env){g->dev, g->params, g->grads, NULL, g->scratch};
}

clpar_status clpar_gpt_upload(clpar_gpt *g, const int *idx, const int *targets, size_t seqs) {
    TRY(check_seqs(g, seqs));
    size_t bytes = seqs * g->cfg.ctx * sizeof(cl_int);
    for (size_t i = 0; i < seqs * g->cfg.ctx; i++)
        if (idx[i] < 0 || (size_t)idx[i] >= g->cfg.vocab ||
            (targets && (targets[i] < 0 || (size_t)targets[i] >= g->cfg.vocab)))
            return clpar_error(CLPAR_EINVAL, "token %zu is outside the vocabulary of %zu", i,
                               g->cfg.vocab);
    cl_command_queue q = g->dev->compute;
    CL_CHECK(clEnqueueWriteBuffer(q, g->acts[0], CL_FALSE, 0, bytes, idx, 0, NULL, NULL),
             "clEnqueueWriteBuffer(tokens)");
    if (targets)
        CL_CHECK(clEnqueueWriteBuffer(q, g->targets, CL_FALSE, 0, bytes, targets, 0, NULL, NULL),
                 "clEnqueueWriteBuffer(targets)");
    return CLPAR_OK;
}

clpar_status clpar_gpt_forward(clpar_gpt *g, size_t seqs) {
    TRY(check_seqs(g, seqs));
    clpar_module_env env = env_of(g);
    for (int i = 0; i < g->n; i++) {
        clpar_module_io io = {.rows = seqs, .x = g->acts[i], .y = g->acts[i + 1]};
        TRY(clpar_module_forward(g->mods[i], &env, &io));
    }
    return CLPAR_OK;
}

clpar_status clpar_gpt_loss(clpar_gpt *g, size_t seqs, double total_tokens) {
    TRY(check_seqs(g, seqs));
    clpar_module_env env = env_of(g);
    clpar_module_io io = {.rows = seqs,
                          .x = g->acts[g->n],
                          .y = g->losses,
                          .dx = g->dys[g->n - 1],
                          .target = g->targets};
    TRY(clpar_module_forward(g->loss, &env, &io));
    if (total_tokens <= 0) return CLPAR_OK;
    io.scale = (float)(1.0 / total_tokens);
    return clpar_module_backward_input(g->loss, &env, &io);
}

clpar_status clpar_gpt_backward(clpar_gpt *g, size_t seqs, float beta) {
    TRY(check_seqs(g, seqs));
    clpar_module_env env = env_of(g);
    for (int i = g->n - 1; i >= 0; i--) {
        clpar_module_io io = {.rows = seqs,
                              .x = g->acts[i],
                              .y = g->acts[i + 1],
                              .dy = g->dys[i],
                              .dx = i ? g->dys[i - 1] : NULL,
                              .beta = beta};
        TRY(clpar_module_backward_input(g->mods[i], &env, &io));
        TRY(clpar_module_backward_weights(g->mods[i], &env, &io));
    }
    return CLPAR_OK;
}

clpar_status clpar_gpt_read_loss(clpar_gpt *g, size_t seqs, double *sum) {
    TRY(check_seqs(g, seqs));
    size_t n = seqs * g->cfg.ctx;
    TRY(clpar_device_read(g->dev, g->loss_host, g->losses, 0, n * sizeof(float)));
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += g->loss_host[i];
    *sum = s;
    return CLPAR_OK;
}

clpar_status clpar_gpt_read_logits(clpar_gpt *g, float *logits, size_t seqs) {
    TRY(check_seqs(g, seqs));
    return clpar_device_read(g->dev, logits, g->acts[g->n], 0,
                             seqs * g->cfg.ctx * g->cfg.vocab * sizeof(float));
}
