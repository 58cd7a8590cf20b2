/* The end of a GPT, a sequence at a time: logits = ln_f(x) wte^T, the output head tied to
 * the token table (nanoGPT's lm_head shares transformer.wte.weight). On the rank of the
 * embeddings it reads their table, and W adds the head's part of the table's gradient first
 * in a step, the embedding its own after it; on a pipeline's last stage it holds a copy of
 * the table, whose gradient the strategy sums with the first stage's before the update. */
#include "module_internal.h"

#include <stdlib.h>

typedef struct {
    clpar_module base;
    size_t T, C, V, wte;
    clpar_device *dev;
    int slots;
    cl_mem *lnf, *dlnf; /* per slot: ln_f's output and its gradient (T C per sequence) */
} head;

static clpar_status forward(clpar_module *m, const clpar_module_env *env,
                            const clpar_module_io *io) {
    const head *h = (const head *)m;
    size_t n = io->rows * h->T;
    clpar_module_io ln = {.rows = n, .x = io->x, .y = h->lnf[io->slot], .slot = io->slot};
    TRY(clpar_module_forward(m->children[0], env, &ln));
    /* logits (n, V) = lnf (n, C) wte^T */
    return clpar_op_gemm(env->dev, CLPAR_NO_TRANS, CLPAR_TRANS, n, h->V, h->C, 1.0f,
                         h->lnf[io->slot], 0, h->C, env->params, h->wte, h->C, 0.0f, io->y, 0, h->V,
                         NULL);
}

static clpar_status backward_input(clpar_module *m, const clpar_module_env *env,
                                   const clpar_module_io *io) {
    const head *h = (const head *)m;
    size_t n = io->rows * h->T;
    /* dlnf (n, C) = dlogits (n, V) wte */
    TRY(clpar_op_gemm(env->dev, CLPAR_NO_TRANS, CLPAR_NO_TRANS, n, h->C, h->V, 1.0f, io->dy, 0,
                      h->V, env->params, h->wte, h->C, 0.0f, h->dlnf[io->slot], 0, h->C, NULL));
    clpar_module_io ln = {
        .rows = n, .x = io->x, .dy = h->dlnf[io->slot], .dx = io->dx, .slot = io->slot};
    return clpar_module_backward_input(m->children[0], env, &ln);
}

static clpar_status backward_weights(clpar_module *m, const clpar_module_env *env,
                                     const clpar_module_io *io) {
    const head *h = (const head *)m;
    size_t n = io->rows * h->T;
    /* dwte (V, C) = beta dwte + dlogits^T (V, n) lnf (n, C) */
    TRY(clpar_op_gemm(env->dev, CLPAR_TRANS, CLPAR_NO_TRANS, h->V, h->C, n, 1.0f, io->dy, 0, h->V,
                      h->lnf[io->slot], 0, h->C, io->beta, env->grads, h->wte, h->C, NULL));
    clpar_module_io ln = {
        .rows = n, .x = io->x, .dy = h->dlnf[io->slot], .slot = io->slot, .beta = io->beta};
    return clpar_module_backward_weights(m->children[0], env, &ln);
}

static clpar_status reserve(clpar_module *m, clpar_device *d, int slots, size_t rows) {
    head *h = (head *)m;
    size_t bytes = (rows ? rows : 1) * h->T * h->C * sizeof(float);
    h->dev = d;
    h->lnf = calloc((size_t)slots, sizeof *h->lnf);
    h->dlnf = calloc((size_t)slots, sizeof *h->dlnf);
    if (!h->lnf || !h->dlnf) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    h->slots = slots;
    for (int s = 0; s < slots; s++) {
        TRY(clpar_device_alloc(d, bytes, &h->lnf[s]));
        TRY(clpar_device_alloc(d, bytes, &h->dlnf[s]));
    }
    return clpar_module_reserve(m->children[0], d, slots, (rows ? rows : 1) * h->T);
}

static size_t state_bytes(const clpar_module *m, size_t rows) {
    const head *h = (const head *)m;
    size_t seqs = rows ? rows : 1;
    return 2 * seqs * h->T * h->C * sizeof(float) +
           clpar_module_state_bytes(m->children[0], seqs * h->T);
}

/* logits = lnf wte^T, dlnf = dlogits wte (needed by ln_f whether or not dx is), dwte =
 * dlogits^T lnf; ln_f has none */
static int gemm_shapes(const clpar_module *m, size_t rows, size_t w_rows, bool with_dx,
                       clpar_gemm_shape *out, int cap) {
    const head *h = (const head *)m;
    (void)with_dx;
    const size_t n = rows * h->T;
    const clpar_gemm_shape all[3] = {{CLPAR_NO_TRANS, CLPAR_TRANS, n, h->V, h->C},
                                     {CLPAR_NO_TRANS, CLPAR_NO_TRANS, n, h->C, h->V},
                                     {CLPAR_TRANS, CLPAR_NO_TRANS, h->V, h->C, w_rows * h->T}};
    for (int i = 0; i < 3 && i < cap; i++)
        out[i] = all[i];
    return 3;
}

static void release(clpar_module *m) {
    head *h = (head *)m;
    for (int s = 0; s < h->slots; s++) {
        if (h->lnf) clpar_device_release(h->dev, h->lnf[s]);
        if (h->dlnf) clpar_device_release(h->dev, h->dlnf[s]);
    }
    free(h->lnf);
    free(h->dlnf);
}

static const clpar_module_class head_class = {.kind = "gpt_head",
                                              .forward = forward,
                                              .backward_input = backward_input,
                                              .backward_weights = backward_weights,
                                              .reserve = reserve,
                                              .state_bytes = state_bytes,
                                              .gemm_shapes = gemm_shapes,
                                              .free = release};

clpar_status clpar_gpt_head_init(const char *ln_name, size_t T, size_t C, size_t V,
                                 size_t wte_offset, bool own_table, size_t wte_full,
                                 size_t param_offset, size_t full_offset, clpar_module **out) {
    *out = NULL;
    clpar_module *ln, *m;
    size_t table = own_table ? V * C : 0; /* the copy comes first */
    TRY(clpar_layernorm_init(ln_name, C, param_offset + table, full_offset, &ln));
    clpar_status rc = module_alloc(&head_class, "lm_head", sizeof(head), own_table ? 1 : 0, &m);
    if (rc == CLPAR_OK && !(m->children = malloc(sizeof *m->children)))
        rc = clpar_error(CLPAR_ENOMEM, "out of host memory");
    if (rc != CLPAR_OK) {
        clpar_module_free(ln);
        clpar_module_free(m);
        return rc;
    }
    head *h = (head *)m;
    h->T = T, h->C = C, h->V = V, h->wte = own_table ? param_offset : wte_offset;
    if (own_table) {
        clpar_param *p = &m->params[0];
        snprintf(p->name, sizeof p->name, "transformer.wte.weight");
        p->ndim = 2, p->shape[0] = V, p->shape[1] = C;
        p->full_offset = wte_full;
        p->rows = V, p->cols = C;
        p->offset = param_offset;
        p->copy = true;
    }
    m->children[0] = ln;
    m->nchildren = 1;
    m->in_width = T * C;
    m->out_width = m->dy_width = T * V;
    m->param_offset = param_offset;
    m->param_count = table + ln->param_count;
    *out = m;
    return CLPAR_OK;
}
