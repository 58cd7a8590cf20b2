/* A sequence of modules whose first one may change the width and the rest work in place
 * (element-wise): Linear then ReLU, one top-level module of an MLP. Its input, output and
 * gradients are the first module's input and the last one's output, so the sequence needs
 * no buffers of its own; W runs each child's W over the same input and the gradient that B
 * left (masked in place by the element-wise children). */
#include "module_internal.h"

#include <stdlib.h>

static clpar_status forward(clpar_module *m, const clpar_module_env *env,
                            const clpar_module_io *io) {
    clpar_module_io c = *io;
    for (int i = 0; i < m->nchildren; i++) {
        TRY(clpar_module_forward(m->children[i], env, &c));
        c.x = io->y;
    }
    return CLPAR_OK;
}

static clpar_status backward_input(clpar_module *m, const clpar_module_env *env,
                                   const clpar_module_io *io) {
    clpar_module_io c = *io;
    for (int i = m->nchildren - 1; i >= 0; i--) {
        c.x = i ? io->y : io->x;
        c.dx = i ? io->dy : io->dx;
        TRY(clpar_module_backward_input(m->children[i], env, &c));
    }
    return CLPAR_OK;
}

static clpar_status backward_weights(clpar_module *m, const clpar_module_env *env,
                                     const clpar_module_io *io) {
    for (int i = m->nchildren - 1; i >= 0; i--)
        TRY(clpar_module_backward_weights(m->children[i], env, io));
    return CLPAR_OK;
}

static const clpar_module_class sequential_class = {.kind = "sequential",
                                                    .forward = forward,
                                                    .backward_input = backward_input,
                                                    .backward_weights = backward_weights};

clpar_status clpar_sequential_init(const char *name, clpar_module **children, int n,
                                   clpar_module **out) {
    *out = NULL;
    clpar_status st = n < 1 ? clpar_error(CLPAR_EINVAL, "a sequence needs a module") : CLPAR_OK;
    for (int i = 1; i < n && st == CLPAR_OK; i++)
        if (children[i]->in_width != children[0]->out_width ||
            children[i]->out_width != children[i]->in_width || children[i]->param_count)
            st = clpar_error(CLPAR_EINVAL, "%s: module %s is not element-wise on %zu features",
                             name, children[i]->name, children[0]->out_width);
    clpar_module *m = NULL;
    if (st == CLPAR_OK) st = module_alloc(&sequential_class, name, sizeof *m, 0, &m);
    clpar_module **kids = st == CLPAR_OK ? malloc((size_t)n * sizeof *kids) : NULL;
    if (st == CLPAR_OK && !kids) st = clpar_error(CLPAR_ENOMEM, "out of host memory");
    if (st != CLPAR_OK) {
        for (int i = 0; i < n; i++)
            clpar_module_free(children[i]);
        clpar_module_free(m);
        return st;
    }
    for (int i = 0; i < n; i++)
        kids[i] = children[i];
    m->children = kids;
    m->nchildren = n;
    m->in_width = kids[0]->in_width;
    m->out_width = kids[n - 1]->out_width;
    m->dy_width = kids[0]->dy_width;
    m->param_offset = kids[0]->param_offset;
    m->param_count = kids[0]->param_count;
    *out = m;
    return CLPAR_OK;
}
