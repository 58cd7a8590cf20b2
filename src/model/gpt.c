/* nanoGPT's GPT as modules: the configuration, the layout of its parameters under PyTorch's
 * names, building any run of its top-level modules, and initialization. */
#include "clpar/gpt.h"
#include "module_internal.h"

#include <stdlib.h>

clpar_status clpar_gpt_config_check(const clpar_gpt_config *c) {
    if (c->layers < 1) return clpar_error(CLPAR_EINVAL, CLPAR_FIELD("layers") " must be >= 1");
    if (c->heads < 1) return clpar_error(CLPAR_EINVAL, CLPAR_FIELD("heads") " must be >= 1");
    if (!c->embd || !c->ctx || !c->vocab)
        return clpar_error(CLPAR_EINVAL, CLPAR_FIELD("embd") ", " CLPAR_FIELD(
                                             "ctx") " and " CLPAR_FIELD("vocab") " must be >= 1");
    if (c->embd % (size_t)c->heads)
        return clpar_error(
            CLPAR_EINVAL,
            CLPAR_FIELD("embd") " %zu is not a multiple of " CLPAR_FIELD("heads") " %d", c->embd,
            c->heads);
    return CLPAR_OK;
}

int clpar_gpt_module_count(const clpar_gpt_config *c) {
    return c->layers + 2;
}

/* Floats of top-level module i in the full model (the head's tied table is the
 * embeddings'). */
static size_t module_floats(const clpar_gpt_config *c, int i) {
    size_t C = c->embd;
    if (i == 0) return (c->vocab + c->ctx) * C;
    if (i <= c->layers)
        return 2 * C + (3 * C * C + 3 * C) + (C * C + C) + 2 * C + (4 * C * C + 4 * C) +
               (4 * C * C + C);
    return 2 * C;
}

size_t clpar_gpt_param_count(const clpar_gpt_config *c) {
    size_t n = 0;
    for (int i = 0; i < clpar_gpt_module_count(c); i++)
        n += module_floats(c, i);
    return n;
}

clpar_status clpar_gpt_build(const clpar_gpt_config *c, int first, int count, int shard, int shards,
                             const double *weights, clpar_module **mods, size_t *param_count) {
    TRY(clpar_gpt_config_check(c));
    int last = clpar_gpt_module_count(c) - 1;
    if (first < 0 || count < 1 || first + count - 1 > last)
        return clpar_error(CLPAR_EINVAL, "modules [%d, %d) of a GPT of %d", first, first + count,
                           last + 1);
    size_t full = 0, off = 0;
    for (int i = 0; i < first; i++)
        full += module_floats(c, i);
    clpar_status rc = CLPAR_OK;
    int built = 0;
    for (int j = 0; j < count && rc == CLPAR_OK; j++) {
        int i = first + j;
        char name[64];
        if (i == 0) {
            rc = clpar_embedding_init("transformer.wte", "transformer.wpe", c->vocab, c->ctx,
                                      c->embd, first + count - 1 == last, off, full, &mods[j]);
        } else if (i <= c->layers) {
            snprintf(name, sizeof name, "transformer.h.%d", i - 1);
            rc = clpar_gpt_block_init(name, c->ctx, c->embd, (size_t)c->heads, c->layers, shard,
                                      shards, weights, off, full, &mods[j]);
        } else {
            /* away from the embeddings the head keeps a copy of the tied table */
            rc = clpar_gpt_head_init("transformer.ln_f", c->ctx, c->embd, c->vocab, 0, first != 0,
                                     0, off, full, &mods[j]);
        }
        if (rc != CLPAR_OK) break;
        built++;
        off += mods[j]->param_count;
        full += module_floats(c, i);
    }
    if (rc != CLPAR_OK) {
        for (int j = 0; j < built; j++)
            clpar_module_free(mods[j]), mods[j] = NULL;
        return rc;
    }
    *param_count = off;
    return CLPAR_OK;
}

/* Builds each top-level module alone and hands it to fn. */
static clpar_status each_module(const clpar_gpt_config *c, void (*fn)(clpar_module *m, void *user),
                                void *user) {
    clpar_gpt_config whole = *c;
    for (int i = 0; i < clpar_gpt_module_count(c); i++) {
        clpar_module *m;
        size_t n;
        /* the head alone would lack its table: build from 0 and use the last */
        if (i == clpar_gpt_module_count(c) - 1) {
            clpar_module **all = calloc((size_t)(i + 1), sizeof *all);
            if (!all) return clpar_error(CLPAR_ENOMEM, "out of host memory");
            clpar_status rc = clpar_gpt_build(&whole, 0, i + 1, 0, 1, NULL, all, &n);
            if (rc == CLPAR_OK) fn(all[i], user);
            for (int k = 0; rc == CLPAR_OK && k <= i; k++)
                clpar_module_free(all[k]);
            free(all);
            TRY(rc);
            continue;
        }
        TRY(clpar_gpt_build(&whole, i, 1, 0, 1, NULL, &m, &n));
        fn(m, user);
        clpar_module_free(m);
    }
    return CLPAR_OK;
}

typedef struct {
    float *params;
    clpar_rng rng;
} init_job;

static void init_one(clpar_module *m, void *user) {
    init_job *j = user;
    clpar_module_init_params(m, j->params, &j->rng);
}

clpar_status clpar_gpt_init_params(float *params, const clpar_gpt_config *c, uint64_t seed) {
    init_job j = {.params = params};
    clpar_rng_seed(&j.rng, seed);
    return each_module(c, init_one, &j);
}

typedef struct {
    clpar_param_fn fn;
    void *user;
} param_job;

static void params_of(clpar_module *m, void *user) {
    param_job *j = user;
    clpar_module_each_param(m, j->fn, j->user);
}

clpar_status clpar_gpt_each_param(const clpar_gpt_config *c, clpar_param_fn fn, void *user) {
    param_job j = {fn, user};
    return each_module(c, params_of, &j);
}
