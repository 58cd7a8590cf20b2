/* One MLP replica on one device: flat parameters and gradients, saved activations,
 * forward, losses and backward. */
#include "clpar/model.h"
#include "clpar/rng.h"
#include "../runtime/internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct clpar_mlp {
    clpar_device *dev;
    clpar_mlp_shape shape;
    size_t max_rows;
    size_t nparams;
    cl_mem params, grads;
    cl_mem acts[CLPAR_MAX_LAYERS + 1]; /* acts[0] input, acts[l] layer l's output (after ReLU) */
    cl_mem dbuf[2];                    /* ping-pong activation gradients */
    cl_mem labels, targets, loss;
    float *loss_host;
};

clpar_status clpar_mlp_shape_parse(clpar_mlp_shape *shape, const char *text) {
    memset(shape, 0, sizeof *shape);
    if (!text || !*text) return clpar_error(CLPAR_EINVAL, "empty model size list");
    int n = 0;
    const char *p = text;
    for (;;) {
        if (*p < '0' || *p > '9')
            return clpar_error(CLPAR_EINVAL,
                               "model size list '%s': expected positive integers separated by "
                               "commas, like 784,256,10",
                               text);
        errno = 0;
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno || v == 0 || v > (1ull << 30))
            return clpar_error(CLPAR_EINVAL,
                               "model size list '%s': size %.*s out of range (1..2^30)", text,
                               (int)(end - p), p);
        if (n > CLPAR_MAX_LAYERS)
            return clpar_error(CLPAR_EINVAL, "model size list '%s': more than %d layers", text,
                               CLPAR_MAX_LAYERS);
        shape->sizes[n++] = (size_t)v;
        p = end;
        if (!*p) break;
        if (*p != ',' || !p[1])
            return clpar_error(CLPAR_EINVAL, "model size list '%s': malformed near '%s'", text, p);
        p++;
    }
    if (n < 2)
        return clpar_error(
            CLPAR_EINVAL, "model size list '%s': needs at least an input and an output size", text);
    shape->nlayers = n - 1;
    if (clpar_mlp_shape_param_count(shape) > 0xffffffffu)
        return clpar_error(CLPAR_EINVAL, "model size list '%s': more than 2^32 parameters", text);
    return CLPAR_OK;
}

void clpar_mlp_shape_format(const clpar_mlp_shape *shape, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i <= shape->nlayers && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%zu", i ? "," : "", shape->sizes[i]);
}

size_t clpar_mlp_shape_layer_count(const clpar_mlp_shape *shape, int l) {
    return shape->sizes[l + 1] * shape->sizes[l] + shape->sizes[l + 1];
}

size_t clpar_mlp_shape_weight_offset(const clpar_mlp_shape *shape, int l) {
    size_t off = 0;
    for (int i = 0; i < l; i++)
        off += clpar_mlp_shape_layer_count(shape, i);
    return off;
}

size_t clpar_mlp_shape_bias_offset(const clpar_mlp_shape *shape, int l) {
    return clpar_mlp_shape_weight_offset(shape, l) + shape->sizes[l + 1] * shape->sizes[l];
}

size_t clpar_mlp_shape_param_count(const clpar_mlp_shape *shape) {
    return clpar_mlp_shape_weight_offset(shape, shape->nlayers);
}

void clpar_mlp_init_params(float *params, const clpar_mlp_shape *shape, uint64_t seed) {
    clpar_rng rng;
    clpar_rng_seed(&rng, seed);
    for (int l = 0; l < shape->nlayers; l++) {
        /* kaiming_uniform(a=sqrt(5)) and the bias rule of nn.Linear both give 1/sqrt(in) */
        double bound = 1.0 / sqrt((double)shape->sizes[l]);
        size_t n = clpar_mlp_shape_layer_count(shape, l);
        float *p = params + clpar_mlp_shape_weight_offset(shape, l);
        for (size_t i = 0; i < n; i++)
            p[i] = (float)((2.0 * clpar_rng_uniform(&rng) - 1.0) * bound);
    }
}

clpar_status clpar_mlp_init(clpar_device *d, const clpar_mlp_shape *shape, size_t max_rows,
                            clpar_mlp **out) {
    *out = NULL;
    if (max_rows == 0) return clpar_error(CLPAR_EINVAL, "a model needs room for at least one row");
    clpar_mlp *m = calloc(1, sizeof *m);
    if (!m) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    m->dev = d;
    m->shape = *shape;
    m->max_rows = max_rows;
    m->nparams = clpar_mlp_shape_param_count(shape);
    int L = shape->nlayers;
    size_t widest = 0;
    for (int l = 1; l <= L; l++)
        if (shape->sizes[l] > widest) widest = shape->sizes[l];
    clpar_status st;
    const size_t f = sizeof(float);
#define ALLOC(mem, bytes)                                                                          \
    if ((st = clpar_device_alloc(d, (bytes), &(mem))) != CLPAR_OK) goto fail
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
    m->loss_host = malloc(max_rows * f);
    if (!m->loss_host) {
        st = clpar_error(CLPAR_ENOMEM, "out of host memory");
        goto fail;
    }
    float zero = 0.0f;
    cl_int err =
        clEnqueueFillBuffer(d->compute, m->params, &zero, f, 0, m->nparams * f, 0, NULL, NULL);
    if (err == CL_SUCCESS)
        err = clEnqueueFillBuffer(d->compute, m->grads, &zero, f, 0, m->nparams * f, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
        st = clpar_cl_error(err, "clEnqueueFillBuffer");
        goto fail;
    }
    *out = m;
    return CLPAR_OK;
fail:
    clpar_mlp_free(m);
    return st;
}

void clpar_mlp_free(clpar_mlp *m) {
    if (!m) return;
    clpar_device *d = m->dev;
    clFinish(d->compute);
    clpar_device_release(d, m->params);
    clpar_device_release(d, m->grads);
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
    const clpar_mlp_shape *s = &m->shape;
    for (int l = 0; l < s->nlayers; l++) {
        size_t in = s->sizes[l], out = s->sizes[l + 1];
        TRY(clpar_op_linear_forward(m->dev, m->acts[l + 1], m->acts[l], m->params,
                                    clpar_mlp_shape_weight_offset(s, l), m->params,
                                    clpar_mlp_shape_bias_offset(s, l), rows, in, out, NULL));
        if (l + 1 < s->nlayers)
            TRY(clpar_op_relu_forward(m->dev, m->acts[l + 1], m->acts[l + 1], rows * out, NULL));
    }
    return CLPAR_OK;
}

clpar_status clpar_mlp_loss(clpar_mlp *m, clpar_loss_kind kind, size_t rows, double total_rows) {
    TRY(check_rows(m, rows));
    size_t out = m->shape.sizes[m->shape.nlayers];
    cl_mem z = m->acts[m->shape.nlayers];
    if (kind == CLPAR_LOSS_XENT) {
        TRY(clpar_op_xent_forward(m->dev, m->loss, z, m->labels, rows, out, NULL));
        if (total_rows <= 0) return CLPAR_OK;
        return clpar_op_xent_backward(m->dev, m->dbuf[0], z, m->labels, rows, out,
                                      (float)(1.0 / total_rows), NULL);
    }
    TRY(clpar_op_mse_forward(m->dev, m->loss, z, m->targets, rows, out, NULL));
    if (total_rows <= 0) return CLPAR_OK;
    return clpar_op_mse_backward(m->dev, m->dbuf[0], z, m->targets, rows * out,
                                 (float)(1.0 / (total_rows * (double)out)), NULL);
}

clpar_status clpar_mlp_backward(clpar_mlp *m, size_t rows, float beta, clpar_grad_ready_fn ready,
                                void *user) {
    TRY(check_rows(m, rows));
    const clpar_mlp_shape *s = &m->shape;
    int cur = 0;
    for (int l = s->nlayers - 1; l >= 0; l--) {
        size_t in = s->sizes[l], out = s->sizes[l + 1];
        size_t woff = clpar_mlp_shape_weight_offset(s, l);
        cl_mem dy = m->dbuf[cur];
        /* dW, db first and signalled, so a reduction can start while dx is computed */
        TRY(clpar_op_gemm(m->dev, 1, 0, out, in, rows, 1.0f, dy, 0, out, m->acts[l], 0, in, beta,
                          m->grads, woff, in, NULL));
        cl_event ev = NULL;
        TRY(clpar_op_colsum(m->dev, m->grads, clpar_mlp_shape_bias_offset(s, l), dy, 0, out, rows,
                            out, beta, ready ? &ev : NULL));
        if (ready) {
            clpar_status st = ready(user, l, ev);
            clReleaseEvent(ev);
            TRY(st);
        }
        if (l == 0) break;
        cl_mem dx = m->dbuf[1 - cur];
        TRY(clpar_op_gemm(m->dev, 0, 0, rows, in, out, 1.0f, dy, 0, out, m->params, woff, in, 0.0f,
                          dx, 0, in, NULL));
        TRY(clpar_op_relu_backward(m->dev, dx, dx, m->acts[l], rows * in, NULL));
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
