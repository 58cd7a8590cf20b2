/* nn.ReLU, in place: forward y = max(x, 0); B masks the output gradient by y > 0. */
#include "module_internal.h"

static clpar_status forward(clpar_module *m, const clpar_module_env *env,
                            const clpar_module_io *io) {
    return clpar_op_relu_forward(env->dev, io->y, io->x, io->rows * m->in_width, NULL);
}

static clpar_status backward_input(clpar_module *m, const clpar_module_env *env,
                                   const clpar_module_io *io) {
    cl_mem dx = io->dx ? io->dx : io->dy; /* W of the layer before reads the masked dy */
    return clpar_op_relu_backward(env->dev, dx, io->dy, io->y, io->rows * m->in_width, NULL);
}

static const clpar_module_class relu_class = {
    .kind = "relu", .forward = forward, .backward_input = backward_input};

clpar_status clpar_relu_init(const char *name, size_t width, clpar_module **out) {
    TRY(module_alloc(&relu_class, name, sizeof(clpar_module), 0, out));
    (*out)->in_width = (*out)->out_width = (*out)->dy_width = width;
    return CLPAR_OK;
}
