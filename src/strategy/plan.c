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

/* Sizes of a split of total into parts proportional to w (NULL: equal parts, the first
 * total % parts one larger): each part gets at least one when total >= parts, the rest by
 * largest remainder, ties to the lower index, so every rank computes the same split. */
static void weighted_sizes(size_t total, int parts, const double *w, size_t *sizes) {
    double sum = 0;
    int use = w != NULL;
    for (int i = 0; use && i < parts; i++) {
        if (!(w[i] > 0)) use = 0;
        sum += w[i];
    }
    if (!use) {
        for (int i = 0; i < parts; i++)
            sizes[i] = split_size(total, (size_t)parts, (size_t)i);
        return;
    }
    size_t base = total >= (size_t)parts ? 1 : 0, rest = total - base * (size_t)parts, given = 0;
    double rem[256];
    for (int i = 0; i < parts; i++) {
        double exact = (double)rest * w[i] / sum;
        size_t whole = (size_t)exact;
        sizes[i] = base + whole;
        rem[i] = exact - (double)whole;
        given += whole;
    }
    for (size_t left = rest - given; left > 0; left--) {
        int best = 0;
        for (int i = 1; i < parts; i++)
            if (rem[i] > rem[best]) best = i;
        sizes[best]++;
        rem[best] = -1;
    }
}

void split_part(size_t total, int parts, const double *w, int i, size_t *start, size_t *size) {
    size_t sizes[256];
    weighted_sizes(total, parts, w, sizes);
    *start = 0;
    for (int j = 0; j < i; j++)
        *start += sizes[j];
    *size = sizes[i];
}

static int has_speeds(const clpar_mesh_config *c) {
    for (int r = 0; r < c->dp * c->pp * c->tp && r < 256; r++)
        if (c->speed[r] > 0) return 1;
    return 0;
}

#define RANK_OF(c, d, p, t) (((d) * (c)->pp + (p)) * (c)->tp + (t))

/* Shard t's weight in stage p: its ranks' speeds summed over replicas. */
static void shard_weights(const clpar_mesh_config *c, int p, double *w) {
    for (int t = 0; t < c->tp; t++) {
        w[t] = 0;
        for (int d = 0; d < c->dp; d++)
            w[t] += c->speed[RANK_OF(c, d, p, t)];
    }
}

void clpar_mesh_stage_speeds(const clpar_mesh_config *c, double *speed) {
    for (int p = 0; p < c->pp; p++) {
        speed[p] = has_speeds(c) ? 0 : 1;
        for (int d = 0; d < c->dp && has_speeds(c); d++)
            for (int t = 0; t < c->tp; t++)
                speed[p] += c->speed[RANK_OF(c, d, p, t)];
    }
}

void clpar_mesh_replica_rows(const clpar_mesh_config *c, size_t rows, int d, size_t *first,
                             size_t *count) {
    double w[256];
    for (int i = 0; i < c->dp; i++) {
        w[i] = 0;
        for (int p = 0; p < c->pp; p++)
            for (int t = 0; t < c->tp; t++)
                w[i] += c->speed[RANK_OF(c, i, p, t)];
    }
    split_part(rows, c->dp, has_speeds(c) ? w : NULL, d, first, count);
}

static double layer_flops(const clpar_mlp_shape *s, int l) {
    /* per row: forward 2 in out, backward 2 in out for dW and 2 in out for dx, which the
     * first layer does not compute */
    return (l == 0 ? 4.0 : 6.0) * (double)s->sizes[l] * (double)s->sizes[l + 1];
}

clpar_status clpar_stages_balance(const clpar_mlp_shape *shape, int pp, int *layers) {
    return clpar_stages_balance_weighted(shape, pp, NULL, layers);
}

clpar_status clpar_stages_balance_weighted(const clpar_mlp_shape *shape, int pp,
                                           const double *speed, int *layers) {
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
                double stage = (prefix[i] - prefix[j]) / (speed ? speed[k - 1] : 1.0);
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

size_t plan_layers(const clpar_mesh_config *c, int p, int t, layer_plan *out) {
    const clpar_mlp_shape *shape = &c->shape;
    int starts[CLPAR_MAX_LAYERS + 1], tp = c->tp;
    plan_stage_starts(c, starts);
    int l0 = starts[p], n = c->stage_layers[p];
    double w[256];
    shard_weights(c, p, w);
    const double *weights = has_speeds(c) ? w : NULL;
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
        if (lp->kind == LAYER_PLAIN)
            lp->a = 0, lp->len = split;
        else
            split_part(split, tp, weights, t, &lp->a, &lp->len);
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
    if (c->schedule < CLPAR_SCHEDULE_GPIPE || c->schedule > CLPAR_SCHEDULE_AUTO)
        return clpar_error(CLPAR_EINVAL, "unknown pipeline schedule %d", (int)c->schedule);
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
            plan_layers(c, p, 0, lp);
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
        plan_layers(c, p, 0, lp);
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

size_t plan_micro_cap(const clpar_mesh_config *c) {
    size_t largest = 0;
    for (int d = 0; d < c->dp; d++) {
        size_t first, count;
        clpar_mesh_replica_rows(c, c->max_batch, d, &first, &count);
        if (count > largest) largest = count;
    }
    return (largest + (size_t)c->micro - 1) / (size_t)c->micro;
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
    info->param_count = plan_layers(c, info->stage, info->shard, lp);
    info->param_bytes =
        (size_t)(2 + clpar_optim_config_state_count(&c->optim)) * info->param_count * sizeof(float);
    int slots, group;
    schedule_shape(c->schedule, info->stage, c->pp, c->micro, &slots, &group);
    info->activation_slots = slots;
    /* as build_rank allocates: per slot, each layer's input and output and the gradient of
     * each layer's output (labels and targets on the last stage); the stage's input
     * gradient, the gather buffer and the losses; the W group's gathered rows */
    size_t cap = plan_micro_cap(c), gather = 1, per_slot = 0, wx = 0, wdy = 0;
    for (int j = 0; j < info->layers; j++) {
        per_slot += lp[j].in_w + lp[j].out;
        if (lp[j].kind == LAYER_COLG && lp[j].len > gather) gather = lp[j].len;
        if (lp[j].w_cols > wx) wx = lp[j].w_cols;
        if (layer_dy_width(&lp[j]) > wdy) wdy = layer_dy_width(&lp[j]);
    }
    per_slot += lp[info->layers - 1].out_w;
    if (info->stage == c->pp - 1) per_slot += 1 + c->shape.sizes[c->shape.nlayers];
    size_t other = (info->stage > 0 ? lp[0].in : 0) + gather + 1;
    if (group > 1) other += (size_t)group * (wx + wdy);
    info->activation_bytes = cap * (per_slot * (size_t)slots + other) * sizeof(float);
}

clpar_schedule clpar_mesh_choose_schedule(const clpar_mesh_config *cfg, const uint64_t *memory) {
    if (cfg->schedule != CLPAR_SCHEDULE_AUTO) return cfg->schedule;
    clpar_mesh_config g = *cfg;
    g.schedule = CLPAR_SCHEDULE_GPIPE;
    for (int r = 0; r < g.dp * g.pp * g.tp; r++) {
        clpar_rank_info ri;
        clpar_mesh_plan_rank(&g, r, &ri);
        if (ri.param_bytes + ri.activation_bytes > memory[r] / 2) return CLPAR_SCHEDULE_1F1B;
    }
    return CLPAR_SCHEDULE_GPIPE;
}
