/* nn.LayerNorm(C) over rows of C features, eps 1e-5, weight and bias; keeps each row's mean
 * and 1/std per micro-batch for backward. B honours io->add (a residual stream). */
#include "module_internal.h"

#include <stdlib.h>

typedef struct {
    clpar_module base;
    size_t C;
    clpar_device *dev;
    int slots;
    cl_mem *mean, *rstd; /* per slot, rows floats each */
} layernorm;

static clpar_status forward(clpar_module *m, const clpar_module_env *env,
                            const clpar_module_io *io) {
    layernorm *l = (layernorm *)m;
    return clpar_op_layernorm_forward(env->dev, io->y, l->mean[io->slot], l->rstd[io->slot], io->x,
                                      env->params, m->params[0].offset, m->params[1].offset,
                                      io->rows, l->C, NULL);
}

static clpar_status backward_input(clpar_module *m, const clpar_module_env *env,
                                   const clpar_module_io *io) {
    layernorm *l = (layernorm *)m;
    if (!io->dx) return CLPAR_OK;
    return clpar_op_layernorm_backward(env->dev, io->dx, io->dy, io->x, l->mean[io->slot],
                                       l->rstd[io->slot], env->params, m->params[0].offset,
                                       io->rows, l->C, io->add, NULL);
}

static clpar_status backward_weights(clpar_module *m, const clpar_module_env *env,
                                     const clpar_module_io *io) {
    layernorm *l = (layernorm *)m;
    return clpar_op_layernorm_weights(env->dev, env->grads, m->params[0].offset,
                                      m->params[1].offset, io->dy, io->x, l->mean[io->slot],
                                      l->rstd[io->slot], io->rows, l->C, io->beta, NULL);
}

static clpar_status reserve(clpar_module *m, clpar_device *d, int slots, size_t rows) {
    layernorm *l = (layernorm *)m;
    l->dev = d;
    l->mean = calloc((size_t)slots, sizeof *l->mean);
    l->rstd = calloc((size_t)slots, sizeof *l->rstd);
    if (!l->mean || !l->rstd) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    l->slots = slots;
    for (int s = 0; s < slots; s++) {
        TRY(clpar_device_alloc(d, (rows ? rows : 1) * sizeof(float), &l->mean[s]));
        TRY(clpar_device_alloc(d, (rows ? rows : 1) * sizeof(float), &l->rstd[s]));
    }
    return CLPAR_OK;
}

static size_t state_bytes(const clpar_module *m, size_t rows) {
    return 2 * (rows ? rows : 1) * sizeof(float);
}

/* PyTorch's: weight 1, bias 0 (no draws) */
static void init(const clpar_module *m, float *full, clpar_rng *rng) {
    const layernorm *l = (const layernorm *)m;
    for (size_t c = 0; c < l->C; c++) {
        full[m->params[0].full_offset + c] = 1.0f;
        full[m->params[1].full_offset + c] = 0.0f;
    }
}

static void release(clpar_module *m) {
    layernorm *l = (layernorm *)m;
    for (int s = 0; s < l->slots; s++) {
        if (l->mean) clpar_device_release(l->dev, l->mean[s]);
        if (l->rstd) clpar_device_release(l->dev, l->rstd[s]);
    }
    free(l->mean);
    free(l->rstd);
}

static const clpar_module_class layernorm_class = {.kind = "layernorm",
                                                   .forward = forward,
                                                   .backward_input = backward_input,
                                                   .backward_weights = backward_weights,
                                                   .reserve = reserve,
                                                   .state_bytes = state_bytes,
                                                   .init = init,
                                                   .free = release};

clpar_status clpar_layernorm_init(const char *name, size_t C, size_t param_offset,
                                  size_t full_offset, clpar_module **out) {
    TRY(module_alloc(&layernorm_class, name, sizeof(layernorm), 2, out));
    clpar_module *m = *out;
    ((layernorm *)m)->C = C;
    m->in_width = m->out_width = m->dy_width = C;
    m->param_offset = param_offset;
    m->param_count = 2 * C;
    const char *what[2] = {"weight", "bias"};
    for (int i = 0; i < 2; i++) {
        clpar_param *p = &m->params[i];
        snprintf(p->name, sizeof p->name, "%s.%s", name, what[i]);
        p->ndim = 1, p->shape[0] = C, p->shape[1] = 1;
        p->full_offset = full_offset + (size_t)i * C;
        p->rows = C, p->cols = 1;
        p->offset = param_offset + (size_t)i * C;
    }
    return CLPAR_OK;
}
