/* One MLP replica on one device (clpar_mlp): the whole model's modules (mlp.c) over flat
 * parameters and gradients, with the buffers a single device needs. A thin use of the
 * modules for tests, the planner's measurement and programs that want one device without a
 * mesh; the mesh runs the same modules. */
#include "clpar/model.h"
#include "../runtime/internal.h"

#include <stdlib.h>

struct clpar_mlp {
    clpar_device *dev;
    clpar_mlp_shape shape;
    size_t max_rows;
    size_t nparams;
    cl_mem params, grads;
    clpar_module *blocks[CLPAR_MAX_LAYERS];
    clpar_module *losses[2];           /* by clpar_loss_kind */
    cl_mem acts[CLPAR_MAX_LAYERS + 1]; /* acts[0] input, acts[l + 1] block l's output */
    cl_mem dbuf[2];                    /* ping-pong gradients of the blocks' outputs */
    cl_mem labels, targets, loss;
    float *loss_host;
};

clpar_status clpar_mlp_init(clpar_device *d, const clpar_mlp_shape *shape, size_t max_rows,
                            clpar_mlp **out) {
    *out = NULL;
    if (max_rows == 0) return clpar_error(CLPAR_EINVAL, "a model needs room for at least one row");
    clpar_mlp *m = calloc(1, sizeof *m);
    if (!m) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    m->dev = d;
    m->shape = *shape;
    m->max_rows = max_rows;
    int L = shape->nlayers;
    size_t widest = 0;
    for (int l = 1; l <= L; l++)
        if (shape->sizes[l] > widest) widest = shape->sizes[l];
    clpar_status st = clpar_mlp_build(shape, 0, L, 0, 1, NULL, m->blocks, &m->nparams);
    if (st == CLPAR_OK) st = clpar_cross_entropy_init(shape->sizes[L], &m->losses[CLPAR_LOSS_XENT]);
    if (st == CLPAR_OK) st = clpar_mse_init(shape->sizes[L], &m->losses[CLPAR_LOSS_MSE]);
    const size_t f = sizeof(float);
#define ALLOC(mem, bytes)                                                                          \
    if (st == CLPAR_OK) st = clpar_device_alloc(d, (bytes), &(mem))
    ALLOC(m->params, m->nparams * f);
    ALLOC(m->grads, m->nparams * f);
    for (int l = 0; l <= L; l++)
        ALLOC(m->acts[l], max_rows * shape->sizes[l] * f);
    ALLOC(m->dbuf[0], max_rows * widest * f);
    ALLOC(m->dbuf[1], max_rows * widest * f);
    ALLOC(m->labels, max_rows * sizeof(cl_int));
    ALLOC(m->targets, max_rows * shape->sizes[L] * f);
    ALLOC(m->loss, max_rows * f);
#undef ALLOC
    if (st == CLPAR_OK && !(m->loss_host = malloc(max_rows * f)))
        st = clpar_error(CLPAR_ENOMEM, "out of host memory");
    if (st == CLPAR_OK) st = clpar_device_zero(d, m->params, 0, m->nparams * f);
    if (st == CLPAR_OK) st = clpar_device_zero(d, m->grads, 0, m->nparams * f);
    if (st != CLPAR_OK) {
        clpar_mlp_free(m);
        return st;
    }
    *out = m;
    return CLPAR_OK;
}

void clpar_mlp_free(clpar_mlp *m) {
    if (!m) return;
    clpar_device *d = m->dev;
    clFinish(d->compute);
    clpar_device_release(d, m->params);
    clpar_device_release(d, m->grads);
    for (int l = 0; l < m->shape.nlayers; l++)
        clpar_module_free(m->blocks[l]);
    clpar_module_free(m->losses[0]);
    clpar_module_free(m->losses[1]);
    for (int l = 0; l <= m->shape.nlayers; l++)
        clpar_device_release(d, m->acts[l]);
    clpar_device_release(d, m->dbuf[0]);
    clpar_device_release(d, m->dbuf[1]);
    clpar_device_release(d, m->labels);
    clpar_device_release(d, m->targets);
    clpar_device_release(d, m->loss);
    free(m->loss_host);
    free(m);
}

const clpar_mlp_shape *clpar_mlp_get_shape(const clpar_mlp *m) {
    return &m->shape;
}
clpar_device *clpar_mlp_device(const clpar_mlp *m) {
    return m->dev;
}
cl_mem clpar_mlp_params(const clpar_mlp *m) {
    return m->params;
}
cl_mem clpar_mlp_grads(const clpar_mlp *m) {
    return m->grads;
}
cl_mem clpar_mlp_output(const clpar_mlp *m) {
    return m->acts[m->shape.nlayers];
}

clpar_status clpar_mlp_set_params(clpar_mlp *m, const float *params) {
    return clpar_device_write(m->dev, m->params, 0, m->nparams * sizeof(float), params);
}
clpar_status clpar_mlp_get_params(clpar_mlp *m, float *params) {
    return clpar_device_read(m->dev, params, m->params, 0, m->nparams * sizeof(float));
}
clpar_status clpar_mlp_get_grads(clpar_mlp *m, float *grads) {
    return clpar_device_read(m->dev, grads, m->grads, 0, m->nparams * sizeof(float));
}

static clpar_status check_rows(const clpar_mlp *m, size_t rows) {
    if (rows == 0 || rows > m->max_rows)
        return clpar_error(CLPAR_EINVAL, "batch of %zu rows for a model sized for 1..%zu", rows,
                           m->max_rows);
    return CLPAR_OK;
}

static clpar_module_env env_of(const clpar_mlp *m) {
    return (clpar_module_env){m->dev, m->params, m->grads, NULL, NULL};
}

clpar_status clpar_mlp_upload(clpar_mlp *m, const float *x, const int *labels, const float *targets,
                              size_t rows) {
    TRY(check_rows(m, rows));
    cl_command_queue q = m->dev->compute;
    const size_t f = sizeof(float);
    if (x)
        CL_CHECK(clEnqueueWriteBuffer(q, m->acts[0], CL_FALSE, 0, rows * m->shape.sizes[0] * f, x,
                                      0, NULL, NULL),
                 "clEnqueueWriteBuffer(input)");
    if (labels)
        CL_CHECK(clEnqueueWriteBuffer(q, m->labels, CL_FALSE, 0, rows * sizeof(cl_int), labels, 0,
                                      NULL, NULL),
                 "clEnqueueWriteBuffer(labels)");
    if (targets)
        CL_CHECK(clEnqueueWriteBuffer(q, m->targets, CL_FALSE, 0,
                                      rows * m->shape.sizes[m->shape.nlayers] * f, targets, 0, NULL,
                                      NULL),
                 "clEnqueueWriteBuffer(targets)");
    return CLPAR_OK;
}

clpar_status clpar_mlp_forward(clpar_mlp *m, size_t rows) {
    TRY(check_rows(m, rows));
    clpar_module_env env = env_of(m);
    for (int l = 0; l < m->shape.nlayers; l++) {
        clpar_module_io io = {.rows = rows, .x = m->acts[l], .y = m->acts[l + 1]};
        TRY(clpar_module_forward(m->blocks[l], &env, &io));
    }
    return CLPAR_OK;
}

clpar_status clpar_mlp_loss(clpar_mlp *m, clpar_loss_kind kind, size_t rows, double total_rows) {
    TRY(check_rows(m, rows));
    if (kind != CLPAR_LOSS_XENT && kind != CLPAR_LOSS_MSE)
        return clpar_error(CLPAR_EINVAL, "unknown loss %d", (int)kind);
    size_t out = m->shape.sizes[m->shape.nlayers];
    clpar_module_env env = env_of(m);
    clpar_module_io io = {.rows = rows,
                          .x = m->acts[m->shape.nlayers],
                          .y = m->loss,
                          .dx = m->dbuf[0],
                          .target = kind == CLPAR_LOSS_XENT ? m->labels : m->targets};
    TRY(clpar_module_forward(m->losses[kind], &env, &io));
    if (total_rows <= 0) return CLPAR_OK;
    io.scale = (float)(1.0 / (kind == CLPAR_LOSS_XENT ? total_rows : total_rows * (double)out));
    return clpar_module_backward_input(m->losses[kind], &env, &io);
}

clpar_status clpar_mlp_backward(clpar_mlp *m, size_t rows, float beta, clpar_grad_ready_fn ready,
                                void *user) {
    TRY(check_rows(m, rows));
    clpar_module_env env = env_of(m);
    int cur = 0;
    for (int l = m->shape.nlayers - 1; l >= 0; l--) {
        clpar_module_io io = {.rows = rows,
                              .x = m->acts[l],
                              .y = m->acts[l + 1],
                              .dy = m->dbuf[cur],
                              .dx = l ? m->dbuf[1 - cur] : NULL,
                              .beta = beta};
        TRY(clpar_module_backward_input(m->blocks[l], &env, &io));
        TRY(clpar_module_backward_weights(m->blocks[l], &env, &io));
        if (ready) {
            cl_event ev;
            CL_CHECK(clEnqueueMarkerWithWaitList(m->dev->compute, 0, NULL, &ev), "clEnqueueMarker");
            clpar_status st = ready(user, l, ev);
            clReleaseEvent(ev);
            TRY(st);
        }
        cur = 1 - cur;
    }
    return CLPAR_OK;
}

clpar_status clpar_mlp_read_loss(clpar_mlp *m, size_t rows, double *sum) {
    TRY(check_rows(m, rows));
    TRY(clpar_device_read(m->dev, m->loss_host, m->loss, 0, rows * sizeof(float)));
    double s = 0.0;
    for (size_t i = 0; i < rows; i++)
        s += m->loss_host[i];
    *sum = s;
    return CLPAR_OK;
}

clpar_status clpar_mlp_read_output(clpar_mlp *m, float *out, size_t rows) {
    TRY(check_rows(m, rows));
    return clpar_device_read(m->dev, out, m->acts[m->shape.nlayers], 0,
                             rows * m->shape.sizes[m->shape.nlayers] * sizeof(float));
}
