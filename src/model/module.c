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

/* A class's reserve, state_bytes and scratch_floats speak for its children too (a block
 * passes its children token rows, not its own sequence rows); without them the children's
 * are asked with the same rows. */
size_t clpar_module_scratch_floats(const clpar_module *m, size_t rows) {
    if (m->cls->scratch_floats) return m->cls->scratch_floats(m, rows);
    size_t most = 0;
    for (int i = 0; i < m->nchildren; i++) {
        size_t c = clpar_module_scratch_floats(m->children[i], rows);
        if (c > most) most = c;
    }
    return most;
}

clpar_status clpar_module_reserve(clpar_module *m, clpar_device *d, int slots, size_t rows) {
    if (m->cls->reserve) return m->cls->reserve(m, d, slots, rows);
    for (int i = 0; i < m->nchildren; i++)
        TRY(clpar_module_reserve(m->children[i], d, slots, rows));
    return CLPAR_OK;
}

size_t clpar_module_state_bytes(const clpar_module *m, size_t rows) {
    if (m->cls->state_bytes) return m->cls->state_bytes(m, rows);
    size_t bytes = 0;
    for (int i = 0; i < m->nchildren; i++)
        bytes += clpar_module_state_bytes(m->children[i], rows);
    return bytes;
}

bool clpar_module_has_state(const clpar_module *m) {
    if (m->cls->reserve) return true;
    for (int i = 0; i < m->nchildren; i++)
        if (clpar_module_has_state(m->children[i])) return true;
    return false;
}

void clpar_module_init_params(const clpar_module *m, float *full, clpar_rng *rng) {
    if (m->cls->init) m->cls->init(m, full, rng);
    for (int i = 0; i < m->nchildren; i++)
        clpar_module_init_params(m->children[i], full, rng);
}

uint64_t clpar_module_tp_bytes(const clpar_module *m, size_t rows, bool with_dx) {
    if (m->cls->tp_bytes) return m->cls->tp_bytes(m, rows, with_dx); /* speaks for children */
    uint64_t bytes = 0;
    for (int i = 0; i < m->nchildren; i++)
        bytes += clpar_module_tp_bytes(m->children[i], rows, with_dx);
    return bytes;
}

int clpar_module_gemm_shapes(const clpar_module *m, size_t rows, size_t w_rows, bool with_dx,
                             clpar_gemm_shape *out, int cap) {
    if (m->cls->gemm_shapes) return m->cls->gemm_shapes(m, rows, w_rows, with_dx, out, cap);
    int n = 0;
    for (int i = 0; i < m->nchildren; i++)
        n += clpar_module_gemm_shapes(m->children[i], rows, w_rows, with_dx,
                                      n < cap ? out + n : NULL, n < cap ? cap - n : 0);
    return n;
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
    size_t groups = p->groups > 1 ? p->groups : 1;
    for (size_t q = 0; q < groups * p->rows; q++) {
        size_t g = q / p->rows, r = q % p->rows; /* local row q: row r of group g's block */
        float *f =
            j->full + p->full_offset + (g * p->group_stride + p->row0 + r) * p->shape[1] + p->col0;
        float *l = j->local + p->offset + q * p->cols;
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
