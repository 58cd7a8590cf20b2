/* Layouts: stages of consecutive layers balanced by FLOPs, each rank's modules and buffers
 * (layout_rank), checks of a mesh configuration, and the bytes tensor parallelism is
 * predicted to move. */
#include "mesh_internal.h"

#include <stdio.h>
#include <string.h>

static int has_speeds(const clpar_mesh_config *c) {
    for (int r = 0; r < c->dp * c->pp * c->tp && r < CLPAR_MAX_RANKS; r++)
        if (c->speed[r] > 0) return 1;
    return 0;
}

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
    double w[CLPAR_MAX_RANKS];
    for (int i = 0; i < c->dp; i++) {
        w[i] = 0;
        for (int p = 0; p < c->pp; p++)
            for (int t = 0; t < c->tp; t++)
                w[i] += c->speed[RANK_OF(c, i, p, t)];
    }
    clpar_split_part(rows, c->dp, has_speeds(c) ? w : NULL, d, first, count);
}

clpar_status clpar_stages_balance(const clpar_mlp_shape *shape, int pp, int *layers) {
    return clpar_stages_balance_weighted(shape, pp, NULL, layers);
}

clpar_status clpar_stages_balance_weighted(const clpar_mlp_shape *shape, int pp,
                                           const double *speed, int *layers) {
    clpar_model_spec m;
    memset(&m, 0, sizeof m);
    m.mlp = *shape;
    return clpar_stages_balance_model(&m, pp, speed, layers);
}

clpar_status clpar_stages_balance_model(const clpar_model_spec *model, int pp, const double *speed,
                                        int *layers) {
    int L = clpar_model_modules(model);
    if (pp < 1 || pp > L)
        return clpar_error(CLPAR_EINVAL,
                           CLPAR_FIELD("pp") " %d is larger than the model's %d layers", pp, L);
    /* best[k][i]: the smallest possible largest stage when layers [0, i) form k stages */
    double best[CLPAR_MAX_LAYERS + 1][CLPAR_MAX_LAYERS + 1];
    int cut[CLPAR_MAX_LAYERS + 1][CLPAR_MAX_LAYERS + 1];
    double prefix[CLPAR_MAX_LAYERS + 1] = {0};
    for (int l = 0; l < L; l++)
        prefix[l + 1] = prefix[l] + clpar_model_module_flops(model, l);
    for (int i = 0; i <= L; i++)
        best[1][i] = i ? prefix[i] / (speed ? speed[0] : 1.0) : 1e300;
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

clpar_status layout_rank(const clpar_mesh_config *c, int rank, rank_layout *l) {
    memset(l, 0, sizeof *l);
    l->t = rank % c->tp;
    l->p = (rank / c->tp) % c->pp;
    l->d = rank / (c->tp * c->pp);
    int starts[CLPAR_MAX_LAYERS + 1];
    plan_stage_starts(c, starts);
    l->l0 = starts[l->p];
    l->nl = c->stage_layers[l->p];
    double w[CLPAR_MAX_RANKS];
    shard_weights(c, l->p, w);
    clpar_model_spec model = mesh_model(c);
    TRY(clpar_model_build(&model, l->l0, l->nl, l->t, c->tp, has_speeds(c) ? w : NULL, l->mods,
                          &l->nparams));
    schedule_shape(c->schedule, l->p, c->pp, c->micro, &l->nslots, &l->group);
    l->cap = plan_micro_cap(c);
    for (int j = 0; j < l->nl; j++) {
        const clpar_module *m = l->mods[j];
        l->act_w[j] = m->in_width;
        if (m->in_width > l->wx_w) l->wx_w = m->in_width;
        if (m->dy_width > l->wdy_w) l->wdy_w = m->dy_width;
        size_t s = clpar_module_scratch_floats(m, l->cap);
        if (s > l->scratch) l->scratch = s;
    }
    l->act_w[l->nl] = l->mods[l->nl - 1]->out_width;
    l->in_w = l->p > 0 ? l->mods[0]->in_width : 0;
    if (l->p == c->pp - 1) {
        l->out_w = clpar_model_output_width(&model);
        l->labels_w = clpar_model_positions(&model);
        l->targets_w = clpar_model_is_gpt(&model) ? 0 : l->out_w;
        l->loss_w = clpar_model_positions(&model);
    }
    return CLPAR_OK;
}

void layout_free(rank_layout *l) {
    for (int j = 0; j < l->nl; j++)
        clpar_module_free(l->mods[j]), l->mods[j] = NULL;
}

/* Each buffer as build_rank allocates it (an empty one still takes a float). */
static size_t floats(size_t n) {
    return (n ? n : 1) * sizeof(float);
}

size_t layout_activation_bytes(const rank_layout *l) {
    size_t per_slot = 0, cap = l->cap, total = 0;
    for (int j = 0; j <= l->nl; j++)
        per_slot += floats(cap * l->act_w[j]);
    for (int j = 0; j < l->nl; j++)
        per_slot += floats(cap * l->mods[j]->dy_width);
    if (l->out_w) per_slot += cap * l->labels_w * sizeof(cl_int) + floats(cap * l->targets_w);
    total = per_slot * (size_t)l->nslots;
    for (int j = 0; j < l->nl; j++) /* what the modules keep themselves */
        total += clpar_module_state_bytes(l->mods[j], cap) * (size_t)l->nslots;
    if (l->in_w) total += floats(cap * l->in_w);
    if (l->group > 1) total += floats((size_t)l->group * cap * l->wx_w);
    if (l->group > 1) total += floats((size_t)l->group * cap * l->wdy_w);
    return total + floats(l->scratch) + floats(cap * (l->loss_w ? l->loss_w : 1));
}

int layout_gemms(const rank_layout *l, clpar_gemm_shape *out, int cap) {
    int n = 0;
    for (int j = 0; j < l->nl; j++) {
        const clpar_module *m = l->mods[j];
        /* W of a module without state runs over a group's rows at once (mesh_step.c) */
        size_t group = clpar_module_has_state(m) || l->group < 1 ? 1 : (size_t)l->group;
        n += clpar_module_gemm_shapes(m, l->cap, group * l->cap, j > 0 || l->p > 0,
                                      n < cap ? out + n : NULL, n < cap ? cap - n : 0);
    }
    return n;
}

clpar_status layout_gemm_list(const rank_layout *l, clpar_gemm_shape **out, int *n) {
    *n = layout_gemms(l, NULL, 0);
    *out = malloc((*n ? (size_t)*n : 1) * sizeof **out);
    if (!*out) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    layout_gemms(l, *out, *n);
    return CLPAR_OK;
}

clpar_status clpar_mesh_validate(const clpar_mesh_config *c) {
    clpar_model_spec model = mesh_model(c);
    int L = clpar_model_modules(&model);
    if (clpar_model_is_gpt(&model)) TRY(clpar_gpt_config_check(&c->gpt));
    TRY(clpar_mesh_check_sizes(c));
    if (c->micro < 1)
        return clpar_error(CLPAR_EINVAL, CLPAR_FIELD("micro") " must be at least 1 (got %d)",
                           c->micro);
    if (c->schedule < CLPAR_SCHEDULE_GPIPE || c->schedule > CLPAR_SCHEDULE_AUTO)
        return clpar_error(CLPAR_EINVAL, CLPAR_FIELD("schedule") ": unknown pipeline schedule %d",
                           (int)c->schedule);
    if (c->pp > L)
        return clpar_error(CLPAR_EINVAL,
                           CLPAR_FIELD("pp") " %d is larger than the model's %d layers", c->pp, L);
    if ((long)c->dp * c->pp * c->tp > CLPAR_MAX_RANKS)
        return clpar_error(CLPAR_EINVAL,
                           "a mesh of %d x %d x %d exceeds CLPAR_MAX_RANKS (%d ranks)", c->dp,
                           c->pp, c->tp, CLPAR_MAX_RANKS);
    if ((size_t)c->dp > c->max_batch)
        return clpar_error(CLPAR_EINVAL,
                           CLPAR_FIELD("dp") " %d is larger than " CLPAR_FIELD("max_batch") " %zu",
                           c->dp, c->max_batch);
    if ((size_t)c->micro > c->max_batch)
        return clpar_error(
            CLPAR_EINVAL,
            CLPAR_FIELD("micro") " %d is larger than " CLPAR_FIELD("max_batch") " %zu", c->micro,
            c->max_batch);
    if (c->zero != 0 && c->zero != 1)
        return clpar_error(CLPAR_EINVAL, CLPAR_FIELD("zero") " must be 0 or 1 (got %d)", c->zero);
    int sum = 0;
    for (int p = 0; p < c->pp; p++) {
        if (c->stage_layers[p] < 1)
            return clpar_error(CLPAR_EINVAL, CLPAR_FIELD("stage_layers") ": stage %d has no layers",
                               p);
        sum += c->stage_layers[p];
    }
    if (sum != L)
        return clpar_error(CLPAR_EINVAL,
                           CLPAR_FIELD("stage_layers") " adds up to %d layers, the model has %d",
                           sum, L);
    for (int p = 0; p < c->pp && c->tp > 1; p++) { /* every layer has features to split */
        rank_layout l;
        TRY(layout_rank(c, RANK_OF(c, 0, p, 0), &l));
        layout_free(&l);
    }
    return CLPAR_OK;
}

clpar_status clpar_mesh_check_sizes(const clpar_mesh_config *c) {
    if (c->dp < 1)
        return clpar_error(CLPAR_EINVAL, CLPAR_FIELD("dp") " must be at least 1 (got %d)", c->dp);
    if (c->pp < 1)
        return clpar_error(CLPAR_EINVAL, CLPAR_FIELD("pp") " must be at least 1 (got %d)", c->pp);
    if (c->tp < 1)
        return clpar_error(CLPAR_EINVAL, CLPAR_FIELD("tp") " must be at least 1 (got %d)", c->tp);
    return CLPAR_OK;
}

clpar_status clpar_mesh_check_processes(const clpar_mesh_config *c, int procs) {
    int n = c->dp * c->pp * c->tp;
    if (procs < 1 || n % procs != 0)
        return clpar_error(CLPAR_EINVAL,
                           "the mesh's %d ranks (" CLPAR_FIELD("dp") " %d x " CLPAR_FIELD(
                               "pp") " %d x " CLPAR_FIELD("tp") " %d) do not divide among %d "
                                                                "processes",
                           n, c->dp, c->pp, c->tp, procs);
    return CLPAR_OK;
}

clpar_status clpar_mesh_predicted_tp_bytes(const clpar_mesh_config *c, size_t rows,
                                           uint64_t *bytes) {
    *bytes = 0;
    if (c->tp == 1) return CLPAR_OK;
    for (int p = 0; p < c->pp; p++)
        for (int t = 0; t < c->tp; t++) {
            rank_layout l;
            TRY(layout_rank(c, RANK_OF(c, 0, p, t), &l));
            for (int j = 0; j < l.nl; j++) /* the model's first layer has no input gradient */
                *bytes += clpar_module_tp_bytes(l.mods[j], rows, l.l0 + j > 0);
            layout_free(&l);
        }
    return CLPAR_OK;
}

void plan_zero_bounds(size_t n, int dp, size_t *bounds) {
    for (int d = 0; d < dp; d++)
        bounds[d] = n * (size_t)d / (size_t)dp / ZERO_ALIGN * ZERO_ALIGN;
    bounds[dp] = n;
}

size_t plan_optim_floats(const clpar_mesh_config *c, const rank_layout *l) {
    size_t per = (size_t)clpar_optim_config_state_count(&c->optim);
    if (!c->zero || c->dp == 1) return per * l->nparams;
    size_t bounds[CLPAR_MAX_RANKS + 1];
    plan_zero_bounds(l->nparams, c->dp, bounds);
    return per * (bounds[l->d + 1] - bounds[l->d]);
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

clpar_status clpar_mesh_plan_rank(const clpar_mesh_config *c, int rank, clpar_rank_info *info) {
    memset(info, 0, sizeof *info);
    rank_layout l;
    TRY(layout_rank(c, rank, &l));
    info->replica = l.d;
    info->stage = l.p;
    info->shard = l.t;
    info->first_layer = l.l0;
    info->layers = l.nl;
    info->param_count = l.nparams;
    info->param_bytes = 2 * floats(l.nparams) + plan_optim_floats(c, &l) * sizeof(float);
    info->activation_slots = l.nslots;
    info->activation_bytes = layout_activation_bytes(&l);
    layout_free(&l);
    return CLPAR_OK;
}

clpar_status clpar_mesh_plan_rank_gemms(const clpar_mesh_config *c, int rank, clpar_gemm_shape *out,
                                        int cap, int *count) {
    rank_layout l;
    TRY(layout_rank(c, rank, &l));
    *count = layout_gemms(&l, out, cap);
    layout_free(&l);
    return CLPAR_OK;
}

clpar_status clpar_mesh_plan_rank_workspace(const clpar_mesh_config *c, int rank,
                                            const clpar_gemm_tuning *t, bool cpu, size_t *bytes) {
    rank_layout l;
    TRY(layout_rank(c, rank, &l));
    clpar_gemm_shape *s;
    int n;
    clpar_status st = layout_gemm_list(&l, &s, &n);
    if (st == CLPAR_OK) *bytes = clpar_gemm_workspace_bytes(t, cpu, s, n);
    if (st == CLPAR_OK) free(s);
    layout_free(&l);
    return st;
}

clpar_status clpar_mesh_choose_schedule(const clpar_mesh_config *cfg, const uint64_t *memory,
                                        clpar_schedule *out) {
    *out = cfg->schedule;
    if (cfg->schedule != CLPAR_SCHEDULE_AUTO) return CLPAR_OK;
    clpar_mesh_config g = *cfg;
    g.schedule = CLPAR_SCHEDULE_GPIPE;
    *out = CLPAR_SCHEDULE_GPIPE;
    for (int r = 0; r < g.dp * g.pp * g.tp; r++) {
        clpar_rank_info ri;
        TRY(clpar_mesh_plan_rank(&g, r, &ri));
        if (ri.param_bytes + ri.activation_bytes > memory[r] / 2) {
            *out = CLPAR_SCHEDULE_1F1B;
            break;
        }
    }
    return CLPAR_OK;
}
