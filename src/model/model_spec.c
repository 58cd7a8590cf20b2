/* Which model a run trains, an MLP or a GPT, and what the strategies and the trainer ask of
 * it whatever its kind: its top-level modules (pipeline cuts fall between them), their
 * parameters under PyTorch's names, widths of a row's input and output, its loss and the
 * FLOPs that balance stages. */
#include "clpar/gpt.h"
#include "clpar/model.h"
#include "../runtime/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool clpar_model_is_gpt(const clpar_model_spec *m) {
    return m->gpt.layers > 0;
}

int clpar_model_modules(const clpar_model_spec *m) {
    return clpar_model_is_gpt(m) ? clpar_gpt_module_count(&m->gpt) : m->mlp.nlayers;
}

size_t clpar_model_param_count(const clpar_model_spec *m) {
    return clpar_model_is_gpt(m) ? clpar_gpt_param_count(&m->gpt)
                                 : clpar_mlp_shape_param_count(&m->mlp);
}

size_t clpar_model_input_width(const clpar_model_spec *m) {
    return clpar_model_is_gpt(m) ? m->gpt.ctx : m->mlp.sizes[0];
}

size_t clpar_model_positions(const clpar_model_spec *m) {
    return clpar_model_is_gpt(m) ? m->gpt.ctx : 1;
}

size_t clpar_model_classes(const clpar_model_spec *m) {
    return clpar_model_is_gpt(m) ? m->gpt.vocab : m->mlp.sizes[m->mlp.nlayers];
}

size_t clpar_model_output_width(const clpar_model_spec *m) {
    return clpar_model_positions(m) * clpar_model_classes(m);
}

clpar_status clpar_model_build(const clpar_model_spec *m, int first, int count, int shard,
                               int shards, const double *weights, clpar_module **mods,
                               size_t *param_count) {
    if (!clpar_model_is_gpt(m))
        return clpar_mlp_build(&m->mlp, first, count, shard, shards, weights, mods, param_count);
    return clpar_gpt_build(&m->gpt, first, count, shard, shards, weights, mods, param_count);
}

clpar_status clpar_model_init_params(const clpar_model_spec *m, float *params, uint64_t seed) {
    return clpar_model_is_gpt(m) ? clpar_gpt_init_params(params, &m->gpt, seed)
                                 : clpar_mlp_init_params(params, &m->mlp, seed);
}

clpar_status clpar_model_each_param(const clpar_model_spec *m, clpar_param_fn fn, void *user) {
    if (clpar_model_is_gpt(m)) return clpar_gpt_each_param(&m->gpt, fn, user);
    for (int l = 0; l < m->mlp.nlayers; l++) {
        clpar_module *block;
        size_t n;
        TRY(clpar_mlp_build(&m->mlp, l, 1, 0, 1, NULL, &block, &n));
        clpar_module_each_param(block, fn, user);
        clpar_module_free(block);
    }
    return CLPAR_OK;
}

clpar_status clpar_model_loss(const clpar_model_spec *m, clpar_loss_kind kind, clpar_module **out) {
    if (clpar_model_is_gpt(m)) {
        if (kind != CLPAR_LOSS_XENT)
            return clpar_error(CLPAR_EINVAL, "a GPT trains with the xent " CLPAR_FIELD("loss"));
        return clpar_sequence_cross_entropy_init(m->gpt.vocab, m->gpt.ctx, out);
    }
    size_t out_w = m->mlp.sizes[m->mlp.nlayers];
    return kind == CLPAR_LOSS_XENT ? clpar_cross_entropy_init(out_w, out)
                                   : clpar_mse_init(out_w, out);
}

double clpar_model_module_flops(const clpar_model_spec *m, int i) {
    if (!clpar_model_is_gpt(m)) {
        /* per row: forward 2 in out, backward 2 in out for dW and 2 in out for dx, which the
         * first layer does not compute */
        return (i == 0 ? 4.0 : 6.0) * (double)m->mlp.sizes[i] * (double)m->mlp.sizes[i + 1];
    }
    double T = (double)m->gpt.ctx, C = (double)m->gpt.embd, V = (double)m->gpt.vocab;
    if (i == 0) return 0;                                                  /* a gather */
    if (i <= m->gpt.layers) return 6.0 * T * (12.0 * C * C + 2.0 * T * C); /* 6 x forward */
    return 6.0 * T * C * V;
}

size_t clpar_model_boundary_width(const clpar_model_spec *m, int i) {
    if (!clpar_model_is_gpt(m)) return m->mlp.sizes[i];
    return i == 0 ? m->gpt.ctx : m->gpt.ctx * m->gpt.embd; /* token ids, or the residual stream */
}

int clpar_model_linears(const clpar_model_spec *m, size_t batch, clpar_model_linear *out, int cap) {
    int n = 0;
    if (!clpar_model_is_gpt(m)) {
        for (int l = 0; l < m->mlp.nlayers; l++, n++)
            if (n < cap)
                out[n] = (clpar_model_linear){
                    NULL, l, batch, m->mlp.sizes[l], m->mlp.sizes[l + 1], 1, l > 0};
        return n;
    }
    size_t rows = batch * m->gpt.ctx, c = m->gpt.embd, v = m->gpt.vocab ? m->gpt.vocab : 256;
    int L = m->gpt.layers;
    const clpar_model_linear gpt[5] = {{"attn.c_attn", -1, rows, c, 3 * c, L, 1},
                                       {"attn.c_proj", -1, rows, c, c, L, 1},
                                       {"mlp.c_fc", -1, rows, c, 4 * c, L, 1},
                                       {"mlp.c_proj", -1, rows, 4 * c, c, L, 1},
                                       {"head (x wte^T)", -1, rows, c, v, 1, 1}};
    for (; n < 5; n++)
        if (n < cap) out[n] = gpt[n];
    return n;
}

clpar_gemm_shape clpar_model_linear_product(const clpar_model_linear *l, int j) {
    if (j == 0) return (clpar_gemm_shape){CLPAR_NO_TRANS, CLPAR_TRANS, l->rows, l->out, l->in};
    if (j == 1) return (clpar_gemm_shape){CLPAR_NO_TRANS, CLPAR_NO_TRANS, l->rows, l->in, l->out};
    return (clpar_gemm_shape){CLPAR_TRANS, CLPAR_NO_TRANS, l->out, l->in, l->rows};
}

int clpar_model_gemm_shapes(const clpar_model_spec *m, size_t batch, clpar_gemm_shape *out, int n,
                            int cap) {
    clpar_model_linear lin[CLPAR_MAX_LAYERS + 5];
    int nl = clpar_model_linears(m, batch, lin, CLPAR_MAX_LAYERS + 5);
    for (int l = 0; l < nl; l++)
        for (int j = 0; j < 3; j++) {
            if (j == 1 && !lin[l].with_dx) continue;
            clpar_gemm_shape g = clpar_model_linear_product(&lin[l], j);
            int known = 0;
            for (int i = 0; i < n && i < cap && !known; i++)
                known = !memcmp(&out[i], &g, sizeof g);
            if (known) continue;
            if (n < cap) out[n] = g;
            n++;
        }
    return n;
}

void clpar_model_format(const clpar_model_spec *m, char *buf, size_t n) {
    if (!clpar_model_is_gpt(m)) {
        clpar_mlp_shape_format(&m->mlp, buf, n);
        return;
    }
    snprintf(buf, n, "gpt:layers=%d,heads=%d,embd=%zu,ctx=%zu,vocab=%zu", m->gpt.layers,
             m->gpt.heads, m->gpt.embd, m->gpt.ctx, m->gpt.vocab);
}

clpar_status clpar_model_parse(const char *text, clpar_model_spec *m) {
    memset(m, 0, sizeof *m);
    if (!text || strncmp(text, "gpt:", 4)) return clpar_mlp_shape_parse(&m->mlp, text);
    long layers = 0, heads = 0, embd = 0, ctx = 0, vocab = 0;
    const char *p = text + 4;
    while (*p) {
        char key[16];
        long v;
        int used = 0;
        if (sscanf(p, "%15[a-z]=%ld%n", key, &v, &used) != 2 || v < 1 || v > (1L << 24))
            return clpar_error(CLPAR_EINVAL,
                               "model '%s': expected gpt:layers=L,heads=H,embd=C,ctx=T with "
                               "positive values",
                               text);
        if (!strcmp(key, "layers"))
            layers = v;
        else if (!strcmp(key, "heads"))
            heads = v;
        else if (!strcmp(key, "embd"))
            embd = v;
        else if (!strcmp(key, "ctx"))
            ctx = v;
        else if (!strcmp(key, "vocab"))
            vocab = v;
        else
            return clpar_error(CLPAR_EINVAL, "model '%s': unknown setting '%s'", text, key);
        p += used;
        if (*p == ',')
            p++;
        else if (*p)
            return clpar_error(CLPAR_EINVAL, "model '%s': malformed near '%s'", text, p);
    }
    if (!layers || !heads || !embd || !ctx)
        return clpar_error(CLPAR_EINVAL, "model '%s': needs layers, heads, embd and ctx", text);
    m->gpt = (clpar_gpt_config){(int)layers, (int)heads, (size_t)embd, (size_t)ctx, (size_t)vocab};
    if (vocab) return clpar_gpt_config_check(&m->gpt);
    return CLPAR_OK; /* the vocabulary comes from the data */
}
