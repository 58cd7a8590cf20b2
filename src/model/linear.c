/* nn.Linear, y = x W^T + b with W (out, in), whole or split over tensor-parallel shards as
 * in Megatron-LM: by output features (column-parallel: the output stays split, or is
 * gathered) or by input features (row-parallel: partial outputs summed; the bias is added
 * once, by shard 0, before the sum). */
#include "module_internal.h"

#include <math.h>

typedef struct {
    clpar_module base;
    clpar_tp_split split;
    size_t in, out;        /* the full layer */
    size_t groups;         /* output groups split alike (column splits) */
    size_t a, len;         /* this shard's features: output (column, gathered; within each
                            * group) or input (row) */
    size_t w_rows, w_cols; /* the local weight block */
    size_t woff, boff, bcount;
    double init_std; /* 0: nn.Linear's default init; else normal(0, std) weights, zero bias */
} linear;

/* Where a gathered layer's columns of the whole output gradient start. */
static size_t dy_offset(const linear *l) {
    return l->split == CLPAR_TP_GATHERED ? l->a : 0;
}

static clpar_status forward(clpar_module *m, const clpar_module_env *env,
                            const clpar_module_io *io) {
    const linear *l = (const linear *)m;
    clpar_device *d = env->dev;
    size_t rows = io->rows;
    /* y (rows, w_rows) = x (rows, w_cols) W^T; a gathered shard computes its slice apart */
    cl_mem y = l->split == CLPAR_TP_GATHERED ? env->scratch : io->y;
    TRY(clpar_op_linear(d, rows, l->w_rows, l->w_cols, io->x, env->params, l->woff,
                        l->bcount ? env->params : NULL, l->boff, y, NULL));
    if (l->split == CLPAR_TP_ROW) return env->tp->all_reduce(env->tp->ctx, io->y, rows * l->out);
    if (l->split == CLPAR_TP_GATHERED)
        return env->tp->all_gather(env->tp->ctx, y, rows, l->a, l->len, l->out, io->y);
    return CLPAR_OK;
}

/* dx (rows, w_cols) = dy W, summed over the shards where each holds part of the output */
static clpar_status backward_input(clpar_module *m, const clpar_module_env *env,
                                   const clpar_module_io *io) {
    const linear *l = (const linear *)m;
    if (!io->dx) return CLPAR_OK;
    TRY(clpar_op_gemm(env->dev, 0, 0, io->rows, l->w_cols, l->w_rows, 1.0f, io->dy, dy_offset(l),
                      m->dy_width, env->params, l->woff, l->w_cols, 0.0f, io->dx, 0, l->w_cols,
                      NULL));
    if (l->split == CLPAR_TP_COLUMN || l->split == CLPAR_TP_GATHERED)
        return env->tp->all_reduce(env->tp->ctx, io->dx, io->rows * l->in);
    return CLPAR_OK;
}

/* dW (w_rows, w_cols) = beta dW + dy^T x, db = beta db + colsum(dy) */
static clpar_status backward_weights(clpar_module *m, const clpar_module_env *env,
                                     const clpar_module_io *io) {
    const linear *l = (const linear *)m;
    clpar_device *d = env->dev;
    TRY(clpar_op_gemm(d, 1, 0, l->w_rows, l->w_cols, io->rows, 1.0f, io->dy, dy_offset(l),
                      m->dy_width, io->x, 0, l->w_cols, io->beta, env->grads, l->woff, l->w_cols,
                      NULL));
    if (l->bcount)
        TRY(clpar_op_colsum(d, env->grads, l->boff, io->dy, dy_offset(l), m->dy_width, io->rows,
                            l->w_rows, io->beta, NULL));
    return CLPAR_OK;
}

static size_t scratch_floats(const clpar_module *m, size_t rows) {
    const linear *l = (const linear *)m;
    return l->split == CLPAR_TP_GATHERED ? rows * l->len : 0;
}

/* per shard: an all-reduce reads and writes the whole (rows, width) block; a gather reads
 * the shard's slice and writes the whole block */
static uint64_t tp_bytes(const clpar_module *m, size_t rows, bool with_dx) {
    const linear *l = (const linear *)m;
    uint64_t floats = 0;
    if (l->split == CLPAR_TP_ROW) floats += 2 * rows * l->out;
    if (l->split == CLPAR_TP_GATHERED) floats += rows * l->len + rows * l->out;
    if ((l->split == CLPAR_TP_COLUMN || l->split == CLPAR_TP_GATHERED) && with_dx)
        floats += 2 * rows * l->in;
    return floats * sizeof(float);
}

/* forward x W^T, B dy W, W dy^T x, on the shard's block of W */
static int gemm_shapes(const clpar_module *m, size_t rows, size_t w_rows, bool with_dx,
                       clpar_gemm_shape *out, int cap) {
    const linear *l = (const linear *)m;
    const clpar_gemm_shape all[3] = {{CLPAR_NO_TRANS, CLPAR_TRANS, rows, l->w_rows, l->w_cols},
                                     {CLPAR_TRANS, CLPAR_NO_TRANS, l->w_rows, l->w_cols, w_rows},
                                     {CLPAR_NO_TRANS, CLPAR_NO_TRANS, rows, l->w_cols, l->w_rows}};
    int n = with_dx ? 3 : 2;
    for (int i = 0; i < n && i < cap; i++)
        out[i] = all[i];
    return n;
}

/* nn.Linear's default: kaiming_uniform(a = sqrt(5)) for W and its rule for b both give
 * uniform in +-1/sqrt(in); W then b, row after row */
static void init(const clpar_module *m, float *full, clpar_rng *rng) {
    const linear *l = (const linear *)m;
    float *p = full + m->params[0].full_offset;
    if (l->init_std > 0) { /* GPT-2's */
        for (size_t i = 0; i < l->out * l->in; i++)
            p[i] = (float)(l->init_std * clpar_rng_normal(rng));
        for (size_t i = 0; i < l->out; i++)
            p[l->out * l->in + i] = 0.0f;
        return;
    }
    double bound = 1.0 / sqrt((double)l->in);
    for (size_t i = 0; i < l->out * l->in + l->out; i++)
        p[i] = (float)((2.0 * clpar_rng_uniform(rng) - 1.0) * bound);
}

static const clpar_module_class linear_class = {.kind = "linear",
                                                .forward = forward,
                                                .backward_input = backward_input,
                                                .backward_weights = backward_weights,
                                                .scratch_floats = scratch_floats,
                                                .init = init,
                                                .tp_bytes = tp_bytes,
                                                .gemm_shapes = gemm_shapes};

void linear_set_init_std(clpar_module *m, double std) {
    ((linear *)m)->init_std = std;
}

clpar_status clpar_linear_init(const char *name, size_t in, size_t out, clpar_tp_split split,
                               int shard, int shards, const double *weights, size_t param_offset,
                               size_t full_offset, clpar_module **out_module) {
    return clpar_linear_init_grouped(name, in, out, split, 1, 1, shard, shards, weights,
                                     param_offset, full_offset, out_module);
}

clpar_status clpar_linear_init_grouped(const char *name, size_t in, size_t out,
                                       clpar_tp_split split, size_t groups, size_t unit, int shard,
                                       int shards, const double *weights, size_t param_offset,
                                       size_t full_offset, clpar_module **out_module) {
    *out_module = NULL;
    if (split == CLPAR_TP_NONE) shard = 0, shards = 1;
    if (groups < 1 || unit < 1 || (split == CLPAR_TP_ROW && groups > 1) || out % groups ||
        (split == CLPAR_TP_ROW ? in : out / groups) % unit)
        return clpar_error(CLPAR_EINVAL, "%s: %zu groups of units of %zu do not fit %zu x %zu",
                           name, groups, unit, out, in);
    size_t dim = split == CLPAR_TP_ROW ? in : out / groups; /* split features per group */
    if (split != CLPAR_TP_NONE && (size_t)shards > dim / unit)
        return clpar_error(CLPAR_EINVAL,
                           CLPAR_FIELD("tp") " %d is larger than layer %s's %zu %s %s it "
                                             "would split",
                           shards, name, dim / unit, split == CLPAR_TP_ROW ? "input" : "output",
                           unit > 1 ? "heads" : "features");
    clpar_module *m;
    TRY(module_alloc(&linear_class, name, sizeof(linear), 2, &m));
    linear *l = (linear *)m;
    l->split = split;
    l->in = in;
    l->out = out;
    l->groups = groups;
    if (split == CLPAR_TP_NONE) {
        l->a = 0, l->len = dim;
    } else {
        clpar_split_part(dim / unit, shards, weights, shard, &l->a, &l->len);
        l->a *= unit, l->len *= unit;
    }
    int by_input = split == CLPAR_TP_ROW;
    l->w_rows = by_input ? out : groups * l->len;
    l->w_cols = by_input ? l->len : in;
    l->bcount = by_input && shard != 0 ? 0 : l->w_rows;
    l->woff = param_offset;
    l->boff = param_offset + l->w_rows * l->w_cols;
    m->in_width = by_input ? l->len : in;
    m->out_width = split == CLPAR_TP_COLUMN ? l->w_rows : out;
    m->dy_width = split == CLPAR_TP_GATHERED ? out : m->out_width;
    m->param_offset = param_offset;
    m->param_count = l->w_rows * l->w_cols + l->bcount;
    clpar_param *w = &m->params[0], *b = &m->params[1];
    snprintf(w->name, sizeof w->name, "%s.weight", name);
    w->ndim = 2, w->shape[0] = out, w->shape[1] = in;
    w->full_offset = full_offset;
    w->row0 = by_input ? 0 : l->a, w->rows = by_input ? out : l->len;
    w->col0 = by_input ? l->a : 0, w->cols = l->w_cols;
    w->offset = l->woff;
    w->groups = by_input ? 1 : groups, w->group_stride = out / groups;
    snprintf(b->name, sizeof b->name, "%s.bias", name);
    b->ndim = 1, b->shape[0] = out, b->shape[1] = 1;
    b->full_offset = full_offset + out * in;
    b->row0 = by_input ? 0 : l->a, b->rows = by_input ? l->bcount : l->len;
    b->col0 = 0, b->cols = 1;
    b->offset = l->boff;
    b->groups = by_input ? 1 : groups, b->group_stride = out / groups;
    *out_module = m;
    return CLPAR_OK;
}
