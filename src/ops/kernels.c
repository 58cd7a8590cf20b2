/* Host wrappers of the kernels in kernels/ (.cl files): argument setting and launch. */
#include "launch.h"

#include <math.h>

clpar_status clpar_op_bias_add(clpar_device *d, cl_mem y, cl_mem b, size_t boff, size_t rows,
                               size_t cols, cl_event *event) {
    TRY(check_u32(rows * cols, "bias_add size"));
    cl_kernel k = d->kernels[CLPAR_K_bias_add];
    cl_uint bo = (cl_uint)boff, r = (cl_uint)rows, c = (cl_uint)cols;
    cl_int e = ARG(k, 0, y) | ARG(k, 1, b) | ARG(k, 2, bo) | ARG(k, 3, r) | ARG(k, 4, c);
    return launch(d, CLPAR_K_bias_add, e, rows * cols, "bias_add", event);
}

clpar_status clpar_op_relu_forward(clpar_device *d, cl_mem y, cl_mem x, size_t n, cl_event *event) {
    TRY(check_u32(n, "relu size"));
    cl_kernel k = d->kernels[CLPAR_K_relu_forward];
    cl_uint nn = (cl_uint)n;
    cl_int e = ARG(k, 0, y) | ARG(k, 1, x) | ARG(k, 2, nn);
    return launch(d, CLPAR_K_relu_forward, e, n, "relu_forward", event);
}

clpar_status clpar_op_relu_backward(clpar_device *d, cl_mem dx, cl_mem dy, cl_mem y, size_t n,
                                    cl_event *event) {
    TRY(check_u32(n, "relu size"));
    cl_kernel k = d->kernels[CLPAR_K_relu_backward];
    cl_uint nn = (cl_uint)n;
    cl_int e = ARG(k, 0, dx) | ARG(k, 1, dy) | ARG(k, 2, y) | ARG(k, 3, nn);
    return launch(d, CLPAR_K_relu_backward, e, n, "relu_backward", event);
}

clpar_status clpar_op_colsum(clpar_device *d, cl_mem out, size_t ooff, cl_mem x, size_t xoff,
                             size_t ldx, size_t rows, size_t cols, float beta, cl_event *event) {
    TRY(check_u32(xoff + rows * ldx, "colsum size"));
    cl_kernel k = d->kernels[CLPAR_K_colsum];
    cl_uint oo = (cl_uint)ooff, xo = (cl_uint)xoff, ld = (cl_uint)ldx, r = (cl_uint)rows,
            c = (cl_uint)cols;
    cl_int e = ARG(k, 0, out) | ARG(k, 1, oo) | ARG(k, 2, x) | ARG(k, 3, xo) | ARG(k, 4, ld) |
               ARG(k, 5, r) | ARG(k, 6, c) | ARG(k, 7, beta);
    return launch(d, CLPAR_K_colsum, e, (cols + 15) / 16, "colsum", event);
}

clpar_status clpar_op_scale(clpar_device *d, cl_mem x, size_t off, float a, size_t n,
                            cl_event *event) {
    TRY(check_u32(off + n, "scale range"));
    cl_kernel k = d->kernels[CLPAR_K_scale];
    cl_uint o = (cl_uint)off, nn = (cl_uint)n;
    cl_int e = ARG(k, 0, x) | ARG(k, 1, o) | ARG(k, 2, a) | ARG(k, 3, nn);
    return launch(d, CLPAR_K_scale, e, n, "scale", event);
}

clpar_status clpar_op_axpy(clpar_device *d, cl_mem y, size_t yoff, float a, cl_mem x, size_t xoff,
                           size_t n, cl_event *event) {
    TRY(check_u32(yoff + n, "axpy range"));
    TRY(check_u32(xoff + n, "axpy range"));
    cl_kernel k = d->kernels[CLPAR_K_axpy];
    cl_uint yo = (cl_uint)yoff, xo = (cl_uint)xoff, nn = (cl_uint)n;
    cl_int e =
        ARG(k, 0, y) | ARG(k, 1, yo) | ARG(k, 2, a) | ARG(k, 3, x) | ARG(k, 4, xo) | ARG(k, 5, nn);
    return launch(d, CLPAR_K_axpy, e, n, "axpy", event);
}

clpar_status clpar_op_xent_forward(clpar_device *d, cl_mem loss, cl_mem z, cl_mem labels,
                                   size_t rows, size_t classes, cl_event *event) {
    TRY(check_u32(rows * classes, "xent size"));
    cl_kernel k = d->kernels[CLPAR_K_xent_forward];
    cl_uint r = (cl_uint)rows, c = (cl_uint)classes;
    cl_int e = ARG(k, 0, loss) | ARG(k, 1, z) | ARG(k, 2, labels) | ARG(k, 3, r) | ARG(k, 4, c);
    return launch(d, CLPAR_K_xent_forward, e, rows, "xent_forward", event);
}

clpar_status clpar_op_xent_backward(clpar_device *d, cl_mem dz, cl_mem z, cl_mem labels,
                                    size_t rows, size_t classes, float scale, cl_event *event) {
    TRY(check_u32(rows * classes, "xent size"));
    cl_kernel k = d->kernels[CLPAR_K_xent_backward];
    cl_uint r = (cl_uint)rows, c = (cl_uint)classes;
    cl_int e = ARG(k, 0, dz) | ARG(k, 1, z) | ARG(k, 2, labels) | ARG(k, 3, r) | ARG(k, 4, c) |
               ARG(k, 5, scale);
    return launch(d, CLPAR_K_xent_backward, e, rows, "xent_backward", event);
}

clpar_status clpar_op_mse_forward(clpar_device *d, cl_mem loss, cl_mem y, cl_mem t, size_t rows,
                                  size_t cols, cl_event *event) {
    TRY(check_u32(rows * cols, "mse size"));
    cl_kernel k = d->kernels[CLPAR_K_mse_forward];
    cl_uint r = (cl_uint)rows, c = (cl_uint)cols;
    cl_int e = ARG(k, 0, loss) | ARG(k, 1, y) | ARG(k, 2, t) | ARG(k, 3, r) | ARG(k, 4, c);
    return launch(d, CLPAR_K_mse_forward, e, rows, "mse_forward", event);
}

clpar_status clpar_op_mse_backward(clpar_device *d, cl_mem dy, cl_mem y, cl_mem t, size_t n,
                                   float scale, cl_event *event) {
    TRY(check_u32(n, "mse size"));
    cl_kernel k = d->kernels[CLPAR_K_mse_backward];
    cl_uint nn = (cl_uint)n;
    cl_int e = ARG(k, 0, dy) | ARG(k, 1, y) | ARG(k, 2, t) | ARG(k, 3, nn) | ARG(k, 4, scale);
    return launch(d, CLPAR_K_mse_backward, e, n, "mse_backward", event);
}

clpar_status clpar_op_sgd_step(clpar_device *d, cl_mem p, cl_mem g, cl_mem buf, size_t n,
                               const clpar_sgd_params *hp, bool first, cl_event *event) {
    return clpar_op_sgd_step_range(d, p, g, buf, 0, n, hp, first, event);
}

clpar_status clpar_op_sgd_step_range(clpar_device *d, cl_mem p, cl_mem g, cl_mem buf, size_t start,
                                     size_t count, const clpar_sgd_params *hp, bool first,
                                     cl_event *event) {
    size_t n = start + count;
    TRY(check_u32(n, "sgd size"));
    cl_kernel k = d->kernels[CLPAR_K_sgd_step];
    cl_uint nn = (cl_uint)n;
    cl_int nest = hp->nesterov, fst = first;
    cl_int e = ARG(k, 0, p) | ARG(k, 1, g) | ARG(k, 2, buf) | ARG(k, 3, nn) | ARG(k, 4, hp->lr) |
               ARG(k, 5, hp->momentum) | ARG(k, 6, hp->dampening) | ARG(k, 7, hp->weight_decay) |
               ARG(k, 8, nest) | ARG(k, 9, fst);
    return launch_range(d, CLPAR_K_sgd_step, e, start, n, "sgd_step", event);
}

clpar_status clpar_op_adam_step(clpar_device *d, cl_mem p, cl_mem g, cl_mem m, cl_mem v, size_t n,
                                const clpar_adam_params *hp, long step, cl_event *event) {
    return clpar_op_adam_step_range(d, p, g, m, v, 0, n, hp, step, event);
}

clpar_status clpar_op_adam_step_range(clpar_device *d, cl_mem p, cl_mem g, cl_mem m, cl_mem v,
                                      size_t start, size_t count, const clpar_adam_params *hp,
                                      long step, cl_event *event) {
    size_t n = start + count;
    TRY(check_u32(n, "adam size"));
    if (step < 1) return clpar_error(CLPAR_EINVAL, "adam step %ld must count from 1", step);
    cl_kernel k = d->kernels[CLPAR_K_adam_step];
    cl_uint nn = (cl_uint)n;
    cl_int dec = hp->decoupled;
    /* As torch.optim.Adam (single-tensor path): bias corrections in double on the host. */
    double bc1 = 1.0 - pow((double)hp->beta1, (double)step);
    double bc2 = 1.0 - pow((double)hp->beta2, (double)step);
    float step_size = (float)(hp->lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    cl_uint first = (cl_uint)start;
    cl_int e = ARG(k, 0, p) | ARG(k, 1, g) | ARG(k, 2, m) | ARG(k, 3, v) | ARG(k, 4, nn) |
               ARG(k, 5, hp->lr) | ARG(k, 6, hp->beta1) | ARG(k, 7, hp->beta2) |
               ARG(k, 8, hp->eps) | ARG(k, 9, hp->weight_decay) | ARG(k, 10, dec) |
               ARG(k, 11, step_size) | ARG(k, 12, bc2_sqrt) | ARG(k, 13, first);
    /* a work-item per 16 elements (kernels/optim.cl), counted from start */
    return launch_range(d, CLPAR_K_adam_step, e, start, start + (count + 15) / 16, "adam_step",
                        event);
}

clpar_status clpar_op_fma_peak(clpar_device *d, cl_mem out, float a, float b, unsigned iters,
                               size_t n, cl_event *event) {
    TRY(check_u32(n, "fma_peak size"));
    cl_kernel k = d->kernels[CLPAR_K_fma_peak];
    cl_uint it = iters, nn = (cl_uint)n;
    cl_int e = ARG(k, 0, out) | ARG(k, 1, a) | ARG(k, 2, b) | ARG(k, 3, it) | ARG(k, 4, nn);
    return launch(d, CLPAR_K_fma_peak, e, n, "fma_peak", event);
}
