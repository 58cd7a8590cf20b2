/* The losses as modules: forward gives each row's loss of the input against its target,
 * B the input gradient times io->scale (the row's weight in the loss being minimized). */
#include "module_internal.h"

/* A cross-entropy module's rows hold `positions` predictions (out_width) of
 * in_width / positions classes each. */
static clpar_status xent_forward(clpar_module *m, const clpar_module_env *env,
                                 const clpar_module_io *io) {
    size_t positions = m->out_width;
    return clpar_op_xent_forward(env->dev, io->y, io->x, io->target, io->rows * positions,
                                 m->in_width / positions, NULL);
}

static clpar_status xent_backward(clpar_module *m, const clpar_module_env *env,
                                  const clpar_module_io *io) {
    size_t positions = m->out_width;
    return clpar_op_xent_backward(env->dev, io->dx, io->x, io->target, io->rows * positions,
                                  m->in_width / positions, io->scale, NULL);
}

static clpar_status mse_forward(clpar_module *m, const clpar_module_env *env,
                                const clpar_module_io *io) {
    return clpar_op_mse_forward(env->dev, io->y, io->x, io->target, io->rows, m->in_width, NULL);
}

static clpar_status mse_backward(clpar_module *m, const clpar_module_env *env,
                                 const clpar_module_io *io) {
    return clpar_op_mse_backward(env->dev, io->dx, io->x, io->target, io->rows * m->in_width,
                                 io->scale, NULL);
}

static const clpar_module_class xent_class = {
    .kind = "cross_entropy", .forward = xent_forward, .backward_input = xent_backward};
static const clpar_module_class mse_class = {
    .kind = "mse", .forward = mse_forward, .backward_input = mse_backward};

static clpar_status loss_init(const clpar_module_class *cls, size_t width, clpar_module **out) {
    TRY(module_alloc(cls, cls->kind, sizeof(clpar_module), 0, out));
    (*out)->in_width = (*out)->dy_width = width;
    (*out)->out_width = 1;
    return CLPAR_OK;
}

clpar_status clpar_cross_entropy_init(size_t classes, clpar_module **out) {
    return loss_init(&xent_class, classes, out);
}

clpar_status clpar_sequence_cross_entropy_init(size_t classes, size_t positions,
                                               clpar_module **out) {
    TRY(loss_init(&xent_class, classes * positions, out));
    (*out)->out_width = positions;
    return CLPAR_OK;
}

clpar_status clpar_mse_init(size_t width, clpar_module **out) {
    return loss_init(&mse_class, width, out);
}
