/* What every module shares: dispatch through the class with the common checks, freeing,
 * the parameter walk, and copies between the full model's layout and a shard's. The layer
 * kinds live in linear.c, relu.c, sequential.c and loss.c. */
#include "module_internal.h"

#include <stdlib.h>
#include <string.h>

clpar_status module_alloc(const clpar_module_class *cls, const char *name, size_t size, int nparams,
                          clpar_module **out) {
    *out = NULL;
    clpar_module *m = calloc(1, size);
    clpar_param *p = nparams ? calloc((size_t)nparams, sizeof *p) : NULL;
    if (!m || (nparams && !p)) {
        free(m);
        free(p);
        return clpar_error(CLPAR_ENOMEM, "out of host memory");
    }
    m->cls = cls;
    snprintf(m->name, sizeof m->name, "%s", name ? name : "");
    m->nparams = nparams;
    m->params = p;
    *out = m;
    return CLPAR_OK;
}

void clpar_module_free(clpar_module *m) {
    if (!m) return;
    if (m->cls->free) m->cls->free(m);
    for (int i = 0; i < m->nchildren; i++)
        clpar_module_free(m->children[i]);
    free(m->children);
    free(m->params);
    free(m);
}

clpar_status clpar_module_forward(clpar_module *m, const clpar_module_env *env,
                                  const clpar_module_io *io) {
    if (io->rows == 0) return CLPAR_OK;
    return m->cls->forward(m, env, io);
}

clpar_status clpar_module_backward_input(clpar_module *m, const clpar_module_env *env,
                                         const clpar_module_io *io) {
    if (io->rows == 0) return CLPAR_OK;
    return m->cls->backward_input(m, env, io);
}

clpar_status clpar_module_backward_weights(clpar_module *m, const clpar_module_env *env,
                                           const clpar_module_io *io) {
    if (!m->cls->backward_weights) return CLPAR_OK;
    return m->cls->backward_weights(m, env, io);
}

size_t clpar_module_scratch_floats(const clpar_module *m, size_t rows) {
    size_t most = m->cls->scratch_floats ? m->cls->scratch_floats(m, rows) : 0;
    for (int i = 0; i < m->nchildren; i++) {
        size_t c = clpar_module_scratch_floats(m->children[i], rows);
        if (c > most) most = c;
    }
    return most;
}

void clpar_module_init_params(const clpar_module *m, float *full, clpar_rng *rng) {
    if (m->cls->init) m->cls->init(m, full, rng);
    for (int i = 0; i < m->nchildren; i++)
        clpar_module_init_params(m->children[i], full, rng);
}

uint64_t clpar_module_tp_bytes(const clpar_module *m, size_t rows, bool with_dx) {
    uint64_t bytes = m->cls->tp_bytes ? m->cls->tp_bytes(m, rows, with_dx) : 0;
    for (int i = 0; i < m->nchildren; i++)
        bytes += clpar_module_tp_bytes(m->children[i], rows, with_dx);
    return bytes;
}

void clpar_module_each_param(const clpar_module *m, clpar_param_fn fn, void *user) {
    for (int i = 0; i < m->nparams; i++)
        fn(&m->params[i], user);
    for (int i = 0; i < m->nchildren; i++)
        clpar_module_each_param(m->children[i], fn, user);
}

typedef struct {
    float *full, *local;
    clpar_param_copy direction;
} map_job;

static void map_one(const clpar_param *p, void *user) {
    const map_job *j = user;
    for (size_t r = 0; r < p->rows; r++) {
        float *f = j->full + p->full_offset + (p->row0 + r) * p->shape[1] + p->col0;
        float *l = j->local + p->offset + r * p->cols;
        if (j->direction == CLPAR_FULL_TO_LOCAL)
            memcpy(l, f, p->cols * sizeof(float));
        else
            memcpy(f, l, p->cols * sizeof(float));
    }
}

void clpar_module_map_params(const clpar_module *m, float *full, float *local,
                             clpar_param_copy direction) {
    map_job j = {full, local, direction};
    clpar_module_each_param(m, map_one, &j);
}
