/* nanoGPT's token and position embeddings, a sequence at a time: the input is T token ids
 * (int) per row, the output their T x C embeddings, wte[id] + wpe[position]. W finds each
 * token's positions on the host (the ids are read back) so that the token table's gradient
 * is summed in a fixed order. With a tied head on the same rank, whose W runs first in a
 * step, the token table's gradient is always added to. */
#include "module_internal.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    clpar_module base;
    size_t V, T, C;
    bool tied;
    clpar_device *dev;
    size_t rows;
    int *ids, *order, *start; /* host: a batch's ids, and their positions by token */
    cl_mem dorder, dstart;
} embedding;

static clpar_status forward(clpar_module *m, const clpar_module_env *env,
                            const clpar_module_io *io) {
    const embedding *e = (const embedding *)m;
    return clpar_op_embedding_forward(env->dev, io->y, io->x, env->params, m->params[0].offset,
                                      m->params[1].offset, io->rows * e->T, e->T, e->C, NULL);
}

static clpar_status backward_input(clpar_module *m, const clpar_module_env *env,
                                   const clpar_module_io *io) {
    return CLPAR_OK; /* token ids have no gradient */
}

static clpar_status backward_weights(clpar_module *m, const clpar_module_env *env,
                                     const clpar_module_io *io) {
    embedding *e = (embedding *)m;
    size_t n = io->rows * e->T;
    if (io->rows > e->rows)
        return clpar_error(CLPAR_EINVAL, "embedding: %zu sequences, room for %zu", io->rows,
                           e->rows);
    TRY(clpar_device_read(env->dev, e->ids, io->x, 0, n * sizeof(int)));
    for (size_t i = 0; i < n; i++)
        if (e->ids[i] < 0 || (size_t)e->ids[i] >= e->V)
            return clpar_error(CLPAR_EINVAL, "token %d outside the vocabulary of %zu", e->ids[i],
                               e->V);
    clpar_embedding_order(e->ids, n, e->V, e->order, e->start);
    cl_command_queue q = env->dev->compute;
    CL_CHECK(
        clEnqueueWriteBuffer(q, e->dorder, CL_FALSE, 0, n * sizeof(int), e->order, 0, NULL, NULL),
        "clEnqueueWriteBuffer(embedding order)");
    clpar_count_wait(env->dev);
    CL_CHECK(clEnqueueWriteBuffer(q, e->dstart, CL_TRUE, 0, (e->V + 1) * sizeof(int), e->start, 0,
                                  NULL, NULL),
             "clEnqueueWriteBuffer(embedding starts)");
    return clpar_op_embedding_backward(env->dev, env->grads, m->params[0].offset,
                                       m->params[1].offset, io->dy, e->dorder, e->dstart, io->rows,
                                       e->T, e->V, e->C, e->tied ? 1.0f : io->beta, io->beta, NULL);
}

static clpar_status reserve(clpar_module *m, clpar_device *d, int slots, size_t rows) {
    embedding *e = (embedding *)m;
    size_t n = (rows ? rows : 1) * e->T;
    e->dev = d;
    e->rows = rows;
    e->ids = malloc(n * sizeof(int));
    e->order = malloc(n * sizeof(int));
    e->start = malloc((e->V + 1) * sizeof(int));
    if (!e->ids || !e->order || !e->start) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    TRY(clpar_device_alloc(d, n * sizeof(int), &e->dorder));
    return clpar_device_alloc(d, (e->V + 1) * sizeof(int), &e->dstart);
}

/* nanoGPT's: both tables normal(0, 0.02) */
static void init(const clpar_module *m, float *full, clpar_rng *rng) {
    for (int i = 0; i < 2; i++) {
        const clpar_param *p = &m->params[i];
        for (size_t k = 0; k < p->shape[0] * p->shape[1]; k++)
            full[p->full_offset + k] = (float)(0.02 * clpar_rng_normal(rng));
    }
}

static void release(clpar_module *m) {
    embedding *e = (embedding *)m;
    if (e->dev) {
        clpar_device_release(e->dev, e->dorder);
        clpar_device_release(e->dev, e->dstart);
    }
    free(e->ids);
    free(e->order);
    free(e->start);
}

static const clpar_module_class embedding_class = {.kind = "embedding",
                                                   .forward = forward,
                                                   .backward_input = backward_input,
                                                   .backward_weights = backward_weights,
                                                   .reserve = reserve,
                                                   .init = init,
                                                   .free = release};

clpar_status clpar_embedding_init(const char *wte, const char *wpe, size_t V, size_t T, size_t C,
                                  bool tied, size_t param_offset, size_t full_offset,
                                  clpar_module **out) {
    TRY(module_alloc(&embedding_class, wte, sizeof(embedding), 2, out));
    clpar_module *m = *out;
    embedding *e = (embedding *)m;
    e->V = V, e->T = T, e->C = C, e->tied = tied;
    m->in_width = T;
    m->out_width = m->dy_width = T * C;
    m->param_offset = param_offset;
    m->param_count = (V + T) * C;
    const char *names[2] = {wte, wpe};
    size_t rows[2] = {V, T};
    for (int i = 0; i < 2; i++) {
        clpar_param *p = &m->params[i];
        snprintf(p->name, sizeof p->name, "%s.weight", names[i]);
        p->ndim = 2, p->shape[0] = rows[i], p->shape[1] = C;
        p->full_offset = full_offset + (i ? V * C : 0);
        p->rows = rows[i], p->cols = C;
        p->offset = param_offset + (i ? V * C : 0);
    }
    return CLPAR_OK;
}
