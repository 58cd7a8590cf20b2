/* A GPT block (nanoGPT's Block), a sequence at a time:
 *   x1 = x + attn.c_proj(attention(attn.c_attn(ln_1(x))))
 *   y  = x1 + mlp.c_proj(gelu(mlp.c_fc(ln_2(x1))))
 * Its children (the two layer norms and four Linears) do their own math on token rows; the
 * block runs them, the attention and GELU ops and the residual adds, and keeps per
 * micro-batch the inner activations and gradients that B and W need.
 *
 * Over tensor-parallel shards (Megatron-LM's layout): each shard holds whole heads, the q, k
 * and v columns of c_attn for its heads and the matching input rows of attn.c_proj, its
 * slice of mlp.c_fc's outputs and of mlp.c_proj's inputs; the two projections' outputs are
 * summed by an all-reduce (one each way per half-block, in the Linears). Layer norms and
 * the residual stream are whole on every shard. */
#include "module_internal.h"

#include <math.h>
#include <stdlib.h>

enum { LN1, ATTN, PROJ, LN2, FC, MPROJ, NKIDS };

/* per micro-batch: the inner activations, and the inner gradients W reads */
enum { S_LN1, S_QKV, S_ATT, S_Y, S_X1, S_LN2, S_H, S_G, S_DQKV, S_DX1, S_DLN1, S_DLN2, S_DH, NS };
/* scratch of one call: the attention output's and the GELU output's gradients, dpre */
enum { X_DY, X_DG, X_DPRE, NX };

typedef struct {
    clpar_module base;
    size_t T, C, H; /* H: this shard's heads */
    size_t Cl, Fl;  /* this shard's attention features (H head size) and MLP features */
    clpar_device *dev;
    int slots;
    cl_mem *state; /* slots x NS */
    cl_mem scratch[NX];
} block;

/* floats per sequence of each state and scratch buffer */
static size_t state_floats(const block *b, int i) {
    size_t T = b->T;
    switch (i) {
    case S_QKV:
    case S_DQKV:
        return T * 3 * b->Cl;
    case S_ATT:
        return b->H * T * T;
    case S_Y:
        return T * b->Cl;
    case S_H:
    case S_G:
    case S_DH:
        return T * b->Fl;
    default:
        return T * b->C;
    }
}

static size_t scratch_floats_of(const block *b, int i) {
    return i == X_DY ? b->T * b->Cl : i == X_DG ? b->T * b->Fl : b->H * b->T * b->T;
}

static cl_mem st(const block *b, int slot, int i) {
    return b->state[slot * NS + i];
}

/* Runs child k over n token rows. */
static clpar_status kid_forward(clpar_module *m, int k, const clpar_module_env *env, size_t n,
                                int slot, cl_mem x, cl_mem y) {
    clpar_module_io io = {.rows = n, .x = x, .y = y, .slot = slot};
    return clpar_module_forward(m->children[k], env, &io);
}

static clpar_status kid_backward(clpar_module *m, int k, const clpar_module_env *env, size_t n,
                                 int slot, cl_mem x, cl_mem dy, cl_mem dx, bool add) {
    clpar_module_io io = {.rows = n, .x = x, .dy = dy, .dx = dx, .slot = slot, .add = add};
    return clpar_module_backward_input(m->children[k], env, &io);
}

static clpar_status kid_weights(clpar_module *m, int k, const clpar_module_env *env, size_t n,
                                int slot, cl_mem x, cl_mem dy, float beta) {
    clpar_module_io io = {.rows = n, .x = x, .dy = dy, .slot = slot, .beta = beta};
    return clpar_module_backward_weights(m->children[k], env, &io);
}

static clpar_status forward(clpar_module *m, const clpar_module_env *env,
                            const clpar_module_io *io) {
    const block *b = (const block *)m;
    clpar_device *d = env->dev;
    size_t n = io->rows * b->T, C = b->C;
    int s = io->slot;
    TRY(kid_forward(m, LN1, env, n, s, io->x, st(b, s, S_LN1)));
    TRY(kid_forward(m, ATTN, env, n, s, st(b, s, S_LN1), st(b, s, S_QKV)));
    TRY(clpar_op_attention_forward(d, st(b, s, S_Y), st(b, s, S_ATT), st(b, s, S_QKV), io->rows,
                                   b->T, b->H, b->Cl / b->H, NULL));
    TRY(kid_forward(m, PROJ, env, n, s, st(b, s, S_Y), st(b, s, S_X1)));
    TRY(clpar_op_axpy(d, st(b, s, S_X1), 0, 1.0f, io->x, 0, n * C, NULL));
    TRY(kid_forward(m, LN2, env, n, s, st(b, s, S_X1), st(b, s, S_LN2)));
    TRY(kid_forward(m, FC, env, n, s, st(b, s, S_LN2), st(b, s, S_H)));
    TRY(clpar_op_gelu_forward(d, st(b, s, S_G), st(b, s, S_H), n * b->Fl, NULL));
    TRY(kid_forward(m, MPROJ, env, n, s, st(b, s, S_G), io->y));
    return clpar_op_axpy(d, io->y, 0, 1.0f, st(b, s, S_X1), 0, n * C, NULL);
}

static clpar_status copy(clpar_device *d, cl_mem dst, cl_mem src, size_t n) {
    CL_CHECK(clEnqueueCopyBuffer(d->compute, src, dst, 0, 0, n * sizeof(float), 0, NULL, NULL),
             "clEnqueueCopyBuffer(residual gradient)");
    return CLPAR_OK;
}

static clpar_status backward_input(clpar_module *m, const clpar_module_env *env,
                                   const clpar_module_io *io) {
    const block *b = (const block *)m;
    clpar_device *d = env->dev;
    size_t n = io->rows * b->T, C = b->C;
    int s = io->slot;
    cl_mem dg = b->scratch[X_DG], dy_att = b->scratch[X_DY];
    /* the MLP branch, then the residual: dx1 = dy + its gradient through ln_2 */
    TRY(kid_backward(m, MPROJ, env, n, s, st(b, s, S_G), io->dy, dg, false));
    TRY(clpar_op_gelu_backward(d, st(b, s, S_DH), dg, st(b, s, S_H), n * b->Fl, NULL));
    TRY(kid_backward(m, FC, env, n, s, st(b, s, S_LN2), st(b, s, S_DH), st(b, s, S_DLN2), false));
    TRY(copy(d, st(b, s, S_DX1), io->dy, n * C));
    TRY(kid_backward(m, LN2, env, n, s, st(b, s, S_X1), st(b, s, S_DLN2), st(b, s, S_DX1), true));
    /* the attention branch, then dx = dx1 + its gradient through ln_1 */
    TRY(kid_backward(m, PROJ, env, n, s, st(b, s, S_Y), st(b, s, S_DX1), dy_att, false));
    TRY(clpar_op_attention_backward(d, st(b, s, S_DQKV), b->scratch[X_DPRE], dy_att,
                                    st(b, s, S_ATT), st(b, s, S_QKV), io->rows, b->T, b->H,
                                    b->Cl / b->H, NULL));
    TRY(kid_backward(m, ATTN, env, n, s, st(b, s, S_LN1), st(b, s, S_DQKV), st(b, s, S_DLN1),
                     false));
    if (!io->dx) return CLPAR_OK;
    TRY(copy(d, io->dx, st(b, s, S_DX1), n * C));
    return kid_backward(m, LN1, env, n, s, io->x, st(b, s, S_DLN1), io->dx, true);
}

static clpar_status backward_weights(clpar_module *m, const clpar_module_env *env,
                                     const clpar_module_io *io) {
    const block *b = (const block *)m;
    size_t n = io->rows * b->T;
    int s = io->slot;
    float beta = io->beta;
    TRY(kid_weights(m, MPROJ, env, n, s, st(b, s, S_G), io->dy, beta));
    TRY(kid_weights(m, FC, env, n, s, st(b, s, S_LN2), st(b, s, S_DH), beta));
    TRY(kid_weights(m, LN2, env, n, s, st(b, s, S_X1), st(b, s, S_DLN2), beta));
    TRY(kid_weights(m, PROJ, env, n, s, st(b, s, S_Y), st(b, s, S_DX1), beta));
    TRY(kid_weights(m, ATTN, env, n, s, st(b, s, S_LN1), st(b, s, S_DQKV), beta));
    return kid_weights(m, LN1, env, n, s, io->x, st(b, s, S_DLN1), beta);
}

static clpar_status reserve(clpar_module *m, clpar_device *d, int slots, size_t rows) {
    block *b = (block *)m;
    size_t seqs = rows ? rows : 1;
    b->dev = d;
    b->state = calloc((size_t)slots * NS, sizeof *b->state);
    if (!b->state) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    b->slots = slots;
    for (int s = 0; s < slots; s++)
        for (int i = 0; i < NS; i++)
            TRY(clpar_device_alloc(d, seqs * state_floats(b, i) * sizeof(float),
                                   &b->state[s * NS + i]));
    for (int i = 0; i < NX; i++)
        TRY(clpar_device_alloc(d, seqs * scratch_floats_of(b, i) * sizeof(float), &b->scratch[i]));
    for (int k = 0; k < NKIDS; k++) /* the children work on token rows */
        TRY(clpar_module_reserve(m->children[k], d, slots, seqs * b->T));
    return CLPAR_OK;
}

static size_t state_bytes(const clpar_module *m, size_t rows) {
    const block *b = (const block *)m;
    size_t seqs = rows ? rows : 1, floats = 0;
    for (int i = 0; i < NS; i++)
        floats += seqs * state_floats(b, i);
    size_t bytes = floats * sizeof(float);
    for (int k = 0; k < NKIDS; k++)
        bytes += clpar_module_state_bytes(m->children[k], seqs * b->T);
    return bytes;
}

/* the children's collectives, over token rows */
static uint64_t tp_bytes(const clpar_module *m, size_t rows, bool with_dx) {
    const block *b = (const block *)m;
    uint64_t bytes = 0;
    for (int k = 0; k < NKIDS; k++)
        bytes += clpar_module_tp_bytes(m->children[k], rows * b->T, with_dx);
    return bytes;
}

/* the children's products, over token rows; every one of them computes its input gradient */
static int gemm_shapes(const clpar_module *m, size_t rows, size_t w_rows, bool with_dx,
                       clpar_gemm_shape *out, int cap) {
    const block *b = (const block *)m;
    (void)with_dx;
    int n = 0;
    for (int k = 0; k < NKIDS; k++)
        n += clpar_module_gemm_shapes(m->children[k], rows * b->T, w_rows * b->T, true,
                                      n < cap ? out + n : NULL, n < cap ? cap - n : 0);
    return n;
}

static void release(clpar_module *m) {
    block *b = (block *)m;
    for (int i = 0; b->state && i < b->slots * NS; i++)
        clpar_device_release(b->dev, b->state[i]);
    for (int i = 0; i < NX && b->dev; i++)
        clpar_device_release(b->dev, b->scratch[i]);
    free(b->state);
}

static const clpar_module_class block_class = {.kind = "gpt_block",
                                               .forward = forward,
                                               .backward_input = backward_input,
                                               .backward_weights = backward_weights,
                                               .reserve = reserve,
                                               .state_bytes = state_bytes,
                                               .tp_bytes = tp_bytes,
                                               .gemm_shapes = gemm_shapes,
                                               .free = release};

clpar_status clpar_gpt_block_init(const char *prefix, size_t T, size_t C, size_t H, int layers,
                                  int shard, int shards, const double *weights, size_t param_offset,
                                  size_t full_offset, clpar_module **out) {
    *out = NULL;
    if (H == 0 || C % H)
        return clpar_error(CLPAR_EINVAL, "%s: %zu features do not split into %zu heads", prefix, C,
                           H);
    if ((size_t)shards > H)
        return clpar_error(CLPAR_EINVAL, CLPAR_FIELD("tp") " %d is larger than the %zu heads of %s",
                           shards, H, prefix);
    clpar_module *kids[NKIDS] = {NULL};
    const char *names[NKIDS] = {"ln_1", "attn.c_attn", "attn.c_proj",
                                "ln_2", "mlp.c_fc",    "mlp.c_proj"};
    const size_t in[NKIDS] = {C, C, C, C, C, 4 * C}, outs[NKIDS] = {C, 3 * C, C, C, 4 * C, C};
    /* q, k, v split by heads (3 groups of head-sized units); the MLP by features */
    const clpar_tp_split split[NKIDS] = {CLPAR_TP_NONE, CLPAR_TP_COLUMN, CLPAR_TP_ROW,
                                         CLPAR_TP_NONE, CLPAR_TP_COLUMN, CLPAR_TP_ROW};
    const size_t groups[NKIDS] = {1, 3, 1, 1, 1, 1}, unit[NKIDS] = {1, C / H, C / H, 1, 1, 1};
    size_t off = 0;
    clpar_status rc = CLPAR_OK;
    for (int k = 0; k < NKIDS && rc == CLPAR_OK; k++) {
        char name[96];
        snprintf(name, sizeof name, "%s.%s", prefix, names[k]);
        if (k == LN1 || k == LN2)
            rc = clpar_layernorm_init(name, C, param_offset + off, full_offset, &kids[k]);
        else
            rc = clpar_linear_init_grouped(
                name, in[k], outs[k], shards > 1 ? split[k] : CLPAR_TP_NONE, groups[k], unit[k],
                shard, shards, weights, param_offset + off, full_offset, &kids[k]);
        if (rc != CLPAR_OK) break;
        if (k != LN1 && k != LN2) /* GPT-2 scales the residual projections by 1/sqrt(2 L) */
            linear_set_init_std(kids[k],
                                k == PROJ || k == MPROJ ? 0.02 / sqrt(2.0 * layers) : 0.02);
        off += kids[k]->param_count;
        full_offset += k == LN1 || k == LN2 ? 2 * C : outs[k] * in[k] + outs[k];
    }
    clpar_module *m = NULL;
    if (rc == CLPAR_OK) rc = module_alloc(&block_class, prefix, sizeof(block), 0, &m);
    if (rc == CLPAR_OK && !(m->children = malloc(NKIDS * sizeof *m->children)))
        rc = clpar_error(CLPAR_ENOMEM, "out of host memory");
    if (rc != CLPAR_OK) {
        for (int k = 0; k < NKIDS; k++)
            clpar_module_free(kids[k]);
        clpar_module_free(m);
        return rc;
    }
    block *b = (block *)m;
    b->T = T, b->C = C;
    b->Cl = kids[PROJ]->in_width; /* this shard's heads' features */
    b->H = b->Cl / (C / H);
    b->Fl = kids[MPROJ]->in_width;
    for (int k = 0; k < NKIDS; k++)
        m->children[k] = kids[k];
    m->nchildren = NKIDS;
    m->in_width = m->out_width = m->dy_width = T * C;
    m->param_offset = param_offset;
    m->param_count = off;
    *out = m;
    return CLPAR_OK;
}
