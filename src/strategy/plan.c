/* Layouts: stages of consecutive layers balanced by FLOPs, the Megatron pairing of sharded
 * layers, the sizes of uneven splits, checks of a mesh configuration, and the bytes tensor
 * parallelism is predicted to move. */
#include "mesh_internal.h"

#include <stdio.h>
#include <string.h>

size_t split_size(size_t total, size_t parts, size_t i) {
    return total / parts + (i < total % parts ? 1 : 0);
}

size_t split_start(size_t total, size_t parts, size_t i) {
    return i * (total / parts) + (i < total % parts ? i : total % parts);
}

static double layer_flops(const clpar_mlp_shape *s, int l) {
    /* per row: forward 2 in out, backward 2 in out for dW and 2 in out for dx, which the
     * first layer does not compute */
    return (l == 0 ? 4.0 : 6.0) * (double)s->sizes[l] * (double)s->sizes[l + 1];
}

clpar_status clpar_stages_balance(const clpar_mlp_shape *shape, int pp, int *layers) {
    int L = shape->nlayers;
    if (pp < 1 || pp > L)
        return clpar_error(CLPAR_EINVAL, "--pp %d is larger than the model's %d layers", pp, L);
    /* best[k][i]: the smallest possible largest stage when layers [0, i) form k stages */
    double best[CLPAR_MAX_LAYERS + 1][CLPAR_MAX_LAYERS + 1];
    int cut[CLPAR_MAX_LAYERS + 1][CLPAR_MAX_LAYERS + 1];
    double prefix[CLPAR_MAX_LAYERS + 1] = {0};
    for (int l = 0; l < L; l++)
        prefix[l + 1] = prefix[l] + layer_flops(shape, l);
    for (int i = 0; i <= L; i++)
        best[1][i] = i ? prefix[i] : 1e300;
    for (int k = 2; k <= pp; k++)
        for (int i = 0; i <= L; i++) {
            best[k][i] = 1e300;
            for (int j = k - 1; j < i; j++) {
                double stage = prefix[i] - prefix[j];
                double worst = best[k - 1][j] > stage ? best[k - 1][j] : stage;
                if (worst < best[k][i]) {
                    best[k][i] = worst;
                    cut[k][i] = j;
                }
            }
        }
    int end = L;
    for (int k = pp; k >= 2; k--) {
        layers[k - 1] = end - cut[k][end];
        end = cut[k][end];
    }
    layers[0] = end;
    return CLPAR_OK;
}

void plan_stage_starts(const clpar_mesh_config *cfg, int *starts) {
    starts[0] = 0;
    for (int p = 0; p < cfg->pp; p++)
        starts[p + 1] = starts[p] + cfg->stage_layers[p];
}

size_t plan_layers(const clpar_mlp_shape *shape, int l0, int n, int t, int tp, layer_plan *out) {
    size_t off = 0;
    for (int j = 0; j < n; j++) {
        layer_plan *lp = &out[j];
        memset(lp, 0, sizeof *lp);
        int l = l0 + j;
        lp->global = l;
        lp->in = shape->sizes[l];
        lp->out = shape->sizes[l + 1];
        lp->relu = l + 1 < shape->nlayers;
        if (tp == 1)
            lp->kind = LAYER_PLAIN;
        else if (j % 2 == 1)
            lp->kind = LAYER_ROW; /* pairs (col, row) from the stage start */
        else
            lp->kind = j + 1 < n ? LAYER_COL : LAYER_COLG;
        size_t split = lp->kind == LAYER_ROW ? lp->in : lp->out;
        lp->a = lp->kind == LAYER_PLAIN ? 0 : split_start(split, (size_t)tp, (size_t)t);
        lp->len = lp->kind == LAYER_PLAIN ? split : split_size(split, (size_t)tp, (size_t)t);
        switch (lp->kind) {
        case LAYER_PLAIN:
            lp->w_rows = lp->out, lp->w_cols = lp->in, lp->bcount = lp->out;
            lp->in_w = lp->in, lp->out_w = lp->out;
            break;
        case LAYER_COL:
            lp->w_rows = lp->len, lp->w_cols = lp->in, lp->bcount = lp->len;
            lp->in_w = lp->in, lp->out_w = lp->len;
            break;
        case LAYER_COLG:
            lp->w_rows = lp->len, lp->w_cols = lp->in, lp->bcount = lp->len;
            lp->in_w = lp->in, lp->out_w = lp->out;
            break;
        case LAYER_ROW:
            /* the bias is added once, by shard 0, before the partial outputs are summed */
            lp->w_rows = lp->out, lp->w_cols = lp->len, lp->bcount = t == 0 ? lp->out : 0;
            lp->in_w = lp->len, lp->out_w = lp->out;
            break;
        }
        lp->woff = off;
        lp->boff = off + lp->w_rows * lp->w_cols;
        off = lp->boff + lp->bcount;
    }
    return off;
}

clpar_status clpar_mesh_validate(const clpar_mesh_config *c) {
    const clpar_mlp_shape *s = &c->shape;
    if (c->dp < 1) return clpar_error(CLPAR_EINVAL, "--dp must be at least 1 (got %d)", c->dp);
    if (c->pp < 1) return clpar_error(CLPAR_EINVAL, "--pp must be at least 1 (got %d)", c->pp);
    if (c->tp < 1) return clpar_error(CLPAR_EINVAL, "--tp must be at least 1 (got %d)", c->tp);
    if (c->micro < 1)
        return clpar_error(CLPAR_EINVAL, "--micro-batches must be at least 1 (got %d)", c->micro);
    if (c->pp > s->nlayers)
        return clpar_error(CLPAR_EINVAL, "--pp %d is larger than the model's %d layers", c->pp,
                           s->nlayers);
    if ((long)c->dp * c->pp * c->tp > 256)
        return clpar_error(CLPAR_EINVAL, "a mesh of %d x %d x %d exceeds 256 ranks", c->dp, c->pp,
                           c->tp);
    if ((size_t)c->dp > c->max_batch)
        return clpar_error(CLPAR_EINVAL, "--dp %d is larger than --batch %zu", c->dp, c->max_batch);
    if ((size_t)c->micro > c->max_batch)
        return clpar_error(CLPAR_EINVAL, "--micro-batches %d is larger than --batch %zu", c->micro,
                           c->max_batch);
    int sum = 0;
    for (int p = 0; p < c->pp; p++) {
        if (c->stage_layers[p] < 1)
            return clpar_error(CLPAR_EINVAL, "--stages: stage %d has no layers", p);
        sum += c->stage_layers[p];
    }
    if (sum != s->nlayers)
        return clpar_error(CLPAR_EINVAL, "--stages adds up to %d layers, the model has %d", sum,
                           s->nlayers);
    if (c->tp > 1) {
        int starts[CLPAR_MAX_LAYERS + 1];
        plan_stage_starts(c, starts);
        for (int p = 0; p < c->pp; p++) {
            layer_plan lp[CLPAR_MAX_LAYERS];
            plan_layers(s, starts[p], c->stage_layers[p], 0, c->tp, lp);
            for (int j = 0; j < c->stage_layers[p]; j++) {
                size_t split = lp[j].kind == LAYER_ROW ? lp[j].in : lp[j].out;
                if ((size_t)c->tp > split)
                    return clpar_error(CLPAR_EINVAL,
                                       "--tp %d is larger than layer %d's %zu %s features it "
                                       "would split",
                                       c->tp, lp[j].global, split,
                                       lp[j].kind == LAYER_ROW ? "input" : "output");
            }
        }
    }
    return CLPAR_OK;
}

uint64_t clpar_mesh_predicted_tp_bytes(const clpar_mesh_config *c, size_t rows) {
    if (c->tp == 1) return 0;
    int starts[CLPAR_MAX_LAYERS + 1];
    plan_stage_starts(c, starts);
    uint64_t floats = 0, tp = (uint64_t)c->tp;
    for (int p = 0; p < c->pp; p++) {
        layer_plan lp[CLPAR_MAX_LAYERS];
        plan_layers(&c->shape, starts[p], c->stage_layers[p], 0, c->tp, lp);
        for (int j = 0; j < c->stage_layers[p]; j++) {
            /* per rank: an all-reduce reads and writes the whole (rows, width) block; a gather
             * reads the rank's slice and writes the whole block */
            if (lp[j].kind == LAYER_ROW) floats += tp * 2 * rows * lp[j].out;
            if (lp[j].kind == LAYER_COLG) floats += (tp + 1) * rows * lp[j].out;
            int needs_dx = lp[j].global > 0;
            if ((lp[j].kind == LAYER_COL || lp[j].kind == LAYER_COLG) && needs_dx)
                floats += tp * 2 * rows * lp[j].in;
        }
    }
    return floats * sizeof(float);
}

void clpar_mesh_plan_rank(const clpar_mesh_config *c, int rank, clpar_rank_info *info) {
    int starts[CLPAR_MAX_LAYERS + 1];
    plan_stage_starts(c, starts);
    memset(info, 0, sizeof *info);
    info->shard = rank % c->tp;
    info->stage = (rank / c->tp) % c->pp;
    info->replica = rank / (c->tp * c->pp);
    info->first_layer = starts[info->stage];
    info->layers = c->stage_layers[info->stage];
    layer_plan lp[CLPAR_MAX_LAYERS];
    info->param_count =
        plan_layers(&c->shape, info->first_layer, info->layers, info->shard, c->tp, lp);
    info->param_bytes =
        (size_t)(2 + clpar_optim_config_state_count(&c->optim)) * info->param_count * sizeof(float);
    int ops[2 * 4096], slots = 1;
    schedule_ops(c->schedule, info->stage, c->pp, c->micro < 4096 ? c->micro : 4096, ops, &slots);
    info->activation_slots = slots;
    /* as build_rank allocates: each slot's layer inputs and output, two gradient buffers of
     * the widest layer, the gather buffer, the losses, and labels and targets on the last stage */
    size_t shard = (c->max_batch + (size_t)c->dp - 1) / (size_t)c->dp;
    size_t cap = (shard + (size_t)c->micro - 1) / (size_t)c->micro, widest = 0, gather = 1,
           per_slot = 0;
    for (int j = 0; j < info->layers; j++) {
        per_slot += lp[j].in_w;
        if (lp[j].in > widest) widest = lp[j].in;
        if (lp[j].out > widest) widest = lp[j].out;
        if (lp[j].kind == LAYER_COLG && lp[j].len > gather) gather = lp[j].len;
    }
    per_slot += lp[info->layers - 1].out_w;
    if (info->stage == c->pp - 1) per_slot += 1 + c->shape.sizes[c->shape.nlayers];
    info->activation_bytes = (cap * per_slot * (size_t)slots + cap * (2 * widest + gather + 1)) * 4;
}
