/* The mesh: dp x pp x tp ranks, one host thread each, running a pipeline schedule of
 * micro-batch forwards and backwards through tensor-parallel layers, handing activations
 * between stages, reducing gradients across replicas, and updating. */
#include "mesh_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    cl_event a, b; /* start and end markers (or a copy's own event in a, b = NULL) */
    char name[48];
    char cat[16];
    int queue;
} rank_event;

typedef struct {
    int rank, d, p, t;
    clpar_device *dev;
    int l0, nl;
    layer_plan lp[CLPAR_MAX_LAYERS];
    size_t nparams;
    cl_mem params, grads;
    clpar_optim *opt;
    int nslots;
    int group;      /* most micro-batches whose weight gradients one W op computes */
    cl_mem *act;    /* nslots x (nl + 1): act[s (nl + 1) + j] is layer j's input */
    cl_mem *dys;    /* nslots x nl: dys[s nl + j] is the gradient of layer j's output */
    cl_mem din;     /* the gradient of the stage's input, sent to the previous stage */
    cl_mem wx, wdy; /* a W group's inputs and output gradients, gathered row after row */
    cl_mem tmp, lossbuf;
    cl_mem *labels, *targets; /* per slot, on the last stage */
    size_t act_bytes, param_bytes;
    clpar_allreduce *tp_ar, *dp_ar;
    clpar_allgather *tp_ag;
    clpar_channel *fwd_in, *fwd_out, *bwd_in, *bwd_out;
    sched_op *ops;
    int first_w;
    cl_event bwd_end;
    rank_event *ev;
    int nev, evcap;
    double clock_offset_ns; /* host clock minus this device's profiling clock */
    uint64_t bytes_tp, bytes_pp, bytes_dp;
} mrank;

struct clpar_mesh {
    clpar_mesh_config cfg;
    int n;
    mrank *ranks;
    clpar_sync *sync;
    clpar_workers *workers;
    clpar_allreduce **tp_ars, **dp_ars;
    clpar_allgather **tp_ags;
    clpar_channel **chans; /* forward and backward channels */
    int nchans;
    size_t micro_cap, nparams;
    float *row_loss, *eval_out;
    /* the current step's batch */
    const float *x, *targets;
    const int *labels;
    size_t rows;
    int eval;
    clpar_mesh_stats stats;
    int tracing;
    clpar_trace_event *trace;
    int ntrace, tcap;
    double trace_origin_ns;
};

static double host_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ---- small helpers on a rank ---- */

static clpar_status marker(mrank *k, cl_event *ev) {
    CL_CHECK(clEnqueueMarkerWithWaitList(k->dev->compute, 0, NULL, ev), "clEnqueueMarker");
    return CLPAR_OK;
}

/* items (count used, room for *cap of size bytes) with room for one more, doubling from
 * `first`; NULL when out of host memory, items then left as they were. */
static void *grow(void *items, int count, int *cap, size_t size, int first) {
    if (count < *cap) return items;
    int n = *cap ? 2 * *cap : first;
    void *p = realloc(items, (size_t)n * size);
    if (p) *cap = n;
    return p;
}

static clpar_status record(mrank *k, cl_event a, cl_event b, int queue, const char *cat,
                           const char *fmt, ...) {
    rank_event *grown = grow(k->ev, k->nev, &k->evcap, sizeof *k->ev, 64);
    if (!grown) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    k->ev = grown;
    rank_event *e = &k->ev[k->nev++];
    e->a = a;
    e->b = b;
    e->queue = queue;
    snprintf(e->cat, sizeof e->cat, "%s", cat);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->name, sizeof e->name, fmt, ap);
    va_end(ap);
    return CLPAR_OK;
}

static clpar_status send(mrank *k, clpar_channel *c, long msg, cl_mem src, size_t len,
                         cl_event after, const char *what, int m) {
    cl_event ev;
    TRY(clpar_channel_send(c, msg, src, len, after, &ev));
    k->bytes_pp += len * sizeof(float);
    return record(k, ev, NULL, 1, "copy", what, m, 0);
}

static clpar_status recv(mrank *k, clpar_channel *c, long msg, cl_mem dst, size_t len,
                         const char *what, int m) {
    cl_event ev;
    TRY(clpar_channel_recv(c, msg, dst, len, &ev));
    k->bytes_pp += len * sizeof(float);
    return record(k, ev, NULL, 1, "copy", what, m, 0);
}

static clpar_status tp_allreduce(mrank *k, cl_mem buf, size_t len) {
    cl_event e;
    TRY(marker(k, &e));
    clpar_status st = clpar_allreduce_run(k->tp_ar, k->t, buf, len, e);
    clReleaseEvent(e);
    k->bytes_tp += 2 * len * sizeof(float);
    return st;
}

/* ---- forward and backward of one layer ---- */

static clpar_status layer_forward(mrank *k, const layer_plan *lp, cl_mem x, cl_mem y, size_t rows) {
    clpar_device *d = k->dev;
    switch (lp->kind) {
    case LAYER_PLAIN:
    case LAYER_COL:
        /* y (rows, w_rows) = x (rows, in) W^T + b */
        TRY(clpar_op_gemm(d, 0, 1, rows, lp->w_rows, lp->in, 1.0f, x, 0, lp->in, k->params,
                          lp->woff, lp->in, 0.0f, y, 0, lp->w_rows, NULL));
        TRY(clpar_op_bias_add(d, y, k->params, lp->boff, rows, lp->w_rows, NULL));
        break;
    case LAYER_ROW:
        /* partial y (rows, out) = x (rows, len) W_shard^T, shard 0 adds the bias, then sum */
        TRY(clpar_op_gemm(d, 0, 1, rows, lp->out, lp->len, 1.0f, x, 0, lp->len, k->params, lp->woff,
                          lp->len, 0.0f, y, 0, lp->out, NULL));
        if (lp->bcount) TRY(clpar_op_bias_add(d, y, k->params, lp->boff, rows, lp->out, NULL));
        TRY(tp_allreduce(k, y, rows * lp->out));
        break;
    case LAYER_COLG: {
        TRY(clpar_op_gemm(d, 0, 1, rows, lp->len, lp->in, 1.0f, x, 0, lp->in, k->params, lp->woff,
                          lp->in, 0.0f, k->tmp, 0, lp->len, NULL));
        TRY(clpar_op_bias_add(d, k->tmp, k->params, lp->boff, rows, lp->len, NULL));
        cl_event e;
        TRY(marker(k, &e));
        clpar_status st =
            clpar_allgather_run(k->tp_ag, k->t, k->tmp, rows, lp->a, lp->len, lp->out, y, e);
        clReleaseEvent(e);
        TRY(st);
        k->bytes_tp += (rows * lp->len + rows * lp->out) * sizeof(float);
        break;
    }
    }
    if (lp->relu) TRY(clpar_op_relu_forward(d, y, y, rows * lp->out_w, NULL));
    return CLPAR_OK;
}

/* The gradient of one layer's input from dy: dx (rows, w_cols) = dy W, summed over shards
 * where the layer's input is whole on every shard, and masked by the ReLU that produced x
 * when there is one. */
static clpar_status layer_backward_input(mrank *k, const layer_plan *lp, cl_mem x, cl_mem dy,
                                         cl_mem dx, size_t rows) {
    clpar_device *d = k->dev;
    size_t yoff = lp->kind == LAYER_COLG ? lp->a : 0;
    TRY(clpar_op_gemm(d, 0, 0, rows, lp->w_cols, lp->w_rows, 1.0f, dy, yoff, layer_dy_width(lp),
                      k->params, lp->woff, lp->w_cols, 0.0f, dx, 0, lp->w_cols, NULL));
    if (lp->kind == LAYER_COL || lp->kind == LAYER_COLG) TRY(tp_allreduce(k, dx, rows * lp->in));
    if (lp->global > 0) TRY(clpar_op_relu_backward(d, dx, dx, x, rows * lp->in_w, NULL));
    return CLPAR_OK;
}

/* One layer's weight gradients over rows of (x, dy): dW (w_rows, w_cols) = beta dW + dy^T x,
 * db = beta db + colsum(dy). */
static clpar_status layer_weights(mrank *k, const layer_plan *lp, cl_mem x, cl_mem dy, size_t rows,
                                  float beta) {
    clpar_device *d = k->dev;
    size_t ldy = layer_dy_width(lp), yoff = lp->kind == LAYER_COLG ? lp->a : 0;
    TRY(clpar_op_gemm(d, 1, 0, lp->w_rows, lp->w_cols, rows, 1.0f, dy, yoff, ldy, x, 0, lp->w_cols,
                      beta, k->grads, lp->woff, lp->w_cols, NULL));
    if (lp->bcount)
        TRY(clpar_op_colsum(d, k->grads, lp->boff, dy, yoff, ldy, rows, lp->w_rows, beta, NULL));
    return CLPAR_OK;
}

/* ---- micro-batch ops ---- */

/* Rows and first global row of micro-batch m of this rank's replica. */
static void micro_rows(const clpar_mesh *M, const mrank *k, int m, int nmicro, size_t *rows,
                       size_t *first) {
    if (M->eval) {
        *first = (size_t)m * M->micro_cap;
        *rows = M->rows - *first < M->micro_cap ? M->rows - *first : M->micro_cap;
        return;
    }
    size_t s0, n;
    clpar_mesh_replica_rows(&M->cfg, M->rows, k->d, &s0, &n);
    *rows = split_size(n, (size_t)nmicro, (size_t)m);
    *first = s0 + split_start(n, (size_t)nmicro, (size_t)m);
}

static clpar_status op_forward(clpar_mesh *M, mrank *k, int m, int nmicro) {
    const clpar_mesh_config *c = &M->cfg;
    size_t R, g0;
    micro_rows(M, k, m, nmicro, &R, &g0);
    int s = m % k->nslots, last = k->p == c->pp - 1;
    cl_mem *act = &k->act[s * (k->nl + 1)];
    size_t in = k->lp[0].in, out = c->shape.sizes[c->shape.nlayers];
    cl_command_queue q = k->dev->compute;
    if (k->p == 0)
        CL_CHECK(clEnqueueWriteBuffer(q, act[0], CL_FALSE, 0, R * in * sizeof(float),
                                      M->x + g0 * in, 0, NULL, NULL),
                 "clEnqueueWriteBuffer(input)");
    else
        TRY(recv(k, k->fwd_in, m, act[0], R * in, "recv act m%d", m));
    if (last && M->labels)
        CL_CHECK(clEnqueueWriteBuffer(q, k->labels[s], CL_FALSE, 0, R * sizeof(cl_int),
                                      M->labels + g0, 0, NULL, NULL),
                 "clEnqueueWriteBuffer(labels)");
    if (last && M->targets)
        CL_CHECK(clEnqueueWriteBuffer(q, k->targets[s], CL_FALSE, 0, R * out * sizeof(float),
                                      M->targets + g0 * out, 0, NULL, NULL),
                 "clEnqueueWriteBuffer(targets)");
    cl_event start;
    TRY(marker(k, &start));
    for (int j = 0; j < k->nl; j++) {
        TRY(layer_forward(k, &k->lp[j], act[j], act[j + 1], R));
        cl_event end;
        TRY(marker(k, &end));
        TRY(record(k, start, end, 0, "forward", "F m%d L%d", m, k->lp[j].global));
        clRetainEvent(end);
        start = end;
    }
    if (last) {
        int has_loss = M->labels || M->targets;
        if (has_loss && c->loss == CLPAR_LOSS_XENT)
            TRY(clpar_op_xent_forward(k->dev, k->lossbuf, act[k->nl], k->labels[s], R, out, NULL));
        else if (has_loss)
            TRY(clpar_op_mse_forward(k->dev, k->lossbuf, act[k->nl], k->targets[s], R, out, NULL));
        if (k->t == 0) {
            if (has_loss)
                CL_CHECK(clEnqueueReadBuffer(q, k->lossbuf, CL_FALSE, 0, R * sizeof(float),
                                             M->row_loss + g0, 0, NULL, NULL),
                         "clEnqueueReadBuffer(loss)");
            if (M->eval)
                CL_CHECK(clEnqueueReadBuffer(q, act[k->nl], CL_FALSE, 0, R * out * sizeof(float),
                                             M->eval_out + g0 * out, 0, NULL, NULL),
                         "clEnqueueReadBuffer(output)");
        }
        clReleaseEvent(start);
    } else {
        clpar_status st = send(k, k->fwd_out, m, act[k->nl], R * k->lp[k->nl - 1].out_w, start,
                               "send act m%d", m);
        clReleaseEvent(start);
        TRY(st);
    }
    CL_CHECK(clFlush(q), "clFlush(compute)");
    return CLPAR_OK;
}

/* B: the chain of input gradients of micro-batch m through the stage, each layer's output
 * gradient kept for W; the stage's input gradient goes to the previous stage. */
static clpar_status op_backward(clpar_mesh *M, mrank *k, int m, int nmicro) {
    const clpar_mesh_config *c = &M->cfg;
    size_t R, g0;
    micro_rows(M, k, m, nmicro, &R, &g0);
    int s = m % k->nslots;
    cl_mem *act = &k->act[s * (k->nl + 1)], *dys = &k->dys[s * k->nl];
    size_t out = c->shape.sizes[c->shape.nlayers];
    if (k->p == c->pp - 1) {
        double total = c->reduce == CLPAR_REDUCE_MEAN ? (double)M->rows : (double)R;
        if (c->loss == CLPAR_LOSS_XENT)
            TRY(clpar_op_xent_backward(k->dev, dys[k->nl - 1], act[k->nl], k->labels[s], R, out,
                                       (float)(1.0 / total), NULL));
        else
            TRY(clpar_op_mse_backward(k->dev, dys[k->nl - 1], act[k->nl], k->targets[s], R * out,
                                      (float)(1.0 / (total * (double)out)), NULL));
    } else {
        TRY(recv(k, k->bwd_in, m, dys[k->nl - 1], R * layer_dy_width(&k->lp[k->nl - 1]),
                 "recv grad m%d", m));
    }
    cl_event start;
    TRY(marker(k, &start));
    for (int j = k->nl - 1; j >= 0; j--) {
        cl_mem dx = j > 0 ? dys[j - 1] : k->p > 0 ? k->din : NULL;
        if (!dx) break; /* the model's first layer: no input gradient */
        TRY(layer_backward_input(k, &k->lp[j], act[j], dys[j], dx, R));
        cl_event end;
        TRY(marker(k, &end));
        TRY(record(k, start, end, 0, "backward", "B m%d L%d", m, k->lp[j].global));
        clRetainEvent(end);
        start = end;
    }
    clpar_status st = CLPAR_OK;
    if (k->p > 0) st = send(k, k->bwd_out, m, k->din, R * k->lp[0].in, start, "send grad m%d", m);
    clReleaseEvent(start);
    TRY(st);
    CL_CHECK(clFlush(k->dev->compute), "clFlush(compute)");
    return CLPAR_OK;
}

/* Copies rows [0, rows) of src (width w) to row `row` of dst. */
static clpar_status copy_rows(mrank *k, cl_mem dst, size_t row, cl_mem src, size_t rows, size_t w) {
    CL_CHECK(clEnqueueCopyBuffer(k->dev->compute, src, dst, 0, row * w * sizeof(float),
                                 rows * w * sizeof(float), 0, NULL, NULL),
             "clEnqueueCopyBuffer(W group)");
    return CLPAR_OK;
}

/* W: the weight gradients of micro-batches m .. m + count - 1, one GEMM per layer over all
 * their rows (gathered into one buffer when there are several). The step's last W starts
 * each layer's gradient reduction across replicas as soon as that layer is done. */
static clpar_status op_weights(clpar_mesh *M, mrank *k, int m, int count, int nmicro, int final) {
    const clpar_mesh_config *c = &M->cfg;
    float beta = k->first_w ? 0.0f : 1.0f;
    k->first_w = 0;
    cl_event start;
    TRY(marker(k, &start));
    for (int j = k->nl - 1; j >= 0; j--) {
        const layer_plan *lp = &k->lp[j];
        size_t rows = 0, R, g0;
        cl_mem x, dy;
        if (count == 1) {
            int s = m % k->nslots;
            micro_rows(M, k, m, nmicro, &rows, &g0);
            x = k->act[s * (k->nl + 1) + j];
            dy = k->dys[s * k->nl + j];
        } else {
            for (int i = m; i < m + count; i++) {
                int s = i % k->nslots;
                micro_rows(M, k, i, nmicro, &R, &g0);
                TRY(copy_rows(k, k->wx, rows, k->act[s * (k->nl + 1) + j], R, lp->w_cols));
                TRY(copy_rows(k, k->wdy, rows, k->dys[s * k->nl + j], R, layer_dy_width(lp)));
                rows += R;
            }
            x = k->wx;
            dy = k->wdy;
        }
        TRY(layer_weights(k, lp, x, dy, rows, beta));
        cl_event ready;
        TRY(marker(k, &ready));
        clpar_status st = CLPAR_OK;
        if (final && c->dp > 1)
            st = clpar_allreduce_begin(k->dp_ar, k->d, k->grads, lp->woff,
                                       lp->boff + lp->bcount - lp->woff, ready);
        if (final && j == 0) {
            if (k->bwd_end) clReleaseEvent(k->bwd_end);
            k->bwd_end = ready;
        } else {
            clReleaseEvent(ready);
        }
        TRY(st);
        cl_event end;
        TRY(marker(k, &end));
        if (count == 1)
            TRY(record(k, start, end, 0, "weights", "W m%d L%d", m, lp->global));
        else
            TRY(record(k, start, end, 0, "weights", "W m%d-%d L%d", m, m + count - 1, lp->global));
        clRetainEvent(end);
        start = end;
    }
    clReleaseEvent(start);
    CL_CHECK(clFlush(k->dev->compute), "clFlush(compute)");
    return CLPAR_OK;
}

/* ---- a rank's whole step ---- */

static clpar_status zero_grads(mrank *k, cl_event *ev) {
    float zero = 0.0f;
    CL_CHECK(clEnqueueFillBuffer(k->dev->compute, k->grads, &zero, sizeof zero, 0,
                                 k->nparams * sizeof(float), 0, NULL, ev),
             "clEnqueueFillBuffer(gradients)");
    return CLPAR_OK;
}

static clpar_status run_rank(clpar_mesh *M, mrank *k) {
    const clpar_mesh_config *c = &M->cfg;
    k->first_w = 1;
    int nmicro;
    if (M->eval) {
        if (k->d != 0) return CLPAR_OK;
        nmicro = (int)((M->rows + M->micro_cap - 1) / M->micro_cap);
        for (int m = 0; m < nmicro; m++)
            TRY(op_forward(M, k, m, nmicro));
        return clpar_device_finish(k->dev);
    }
    size_t s0, n;
    clpar_mesh_replica_rows(c, M->rows, k->d, &s0, &n);
    nmicro = n < (size_t)c->micro ? (int)n : c->micro;
    if (nmicro == 0) {
        /* a replica without rows this step still takes part in the reduction */
        cl_event ev;
        TRY(zero_grads(k, &ev));
        clpar_status st = CLPAR_OK;
        for (int j = k->nl - 1; j >= 0 && st == CLPAR_OK && c->dp > 1; j--)
            st = clpar_allreduce_begin(k->dp_ar, k->d, k->grads, k->lp[j].woff,
                                       k->lp[j].boff + k->lp[j].bcount - k->lp[j].woff, ev);
        if (k->bwd_end) clReleaseEvent(k->bwd_end);
        k->bwd_end = ev;
        TRY(st);
    } else {
        int slots, group;
        int nops = schedule_ops(c->schedule, k->p, c->pp, nmicro, k->ops, &slots, &group);
        for (int i = 0; i < nops; i++) {
            const sched_op *op = &k->ops[i];
            if (op->kind == SCHED_F)
                TRY(op_forward(M, k, op->m, nmicro));
            else if (op->kind == SCHED_B)
                TRY(op_backward(M, k, op->m, nmicro));
            else
                TRY(op_weights(M, k, op->m, op->count, nmicro, i == nops - 1));
        }
    }
    if (c->dp > 1) {
        cl_event a;
        TRY(marker(k, &a));
        for (int j = k->nl - 1; j >= 0; j--) {
            const layer_plan *lp = &k->lp[j];
            size_t len = lp->boff + lp->bcount - lp->woff;
            TRY(clpar_allreduce_bucket(k->dp_ar, k->d, k->grads, lp->woff, len));
            k->bytes_dp += 2 * len * sizeof(float);
        }
        cl_event b;
        TRY(marker(k, &b));
        TRY(record(k, a, b, 0, "reduction", "allreduce grads"));
    }
    cl_event a, b;
    TRY(marker(k, &a));
    TRY(clpar_optim_step(k->opt, k->params, k->grads, NULL));
    TRY(marker(k, &b));
    TRY(record(k, a, b, 0, "optimizer", "optimizer"));
    return clpar_device_finish(k->dev);
}

static clpar_status rank_task(void *ctx, int r) {
    clpar_mesh *M = ctx;
    clpar_status st = run_rank(M, &M->ranks[r]);
    if (st != CLPAR_OK) clpar_sync_abort(M->sync);
    return st;
}

/* ---- parameters: full model <-> shards ---- */

/* Copies between the full flat model and a rank's local flat parameters; to_local picks
 * the direction. */
static void map_params(const clpar_mlp_shape *s, const mrank *k, float *full, float *local,
                       int to_local) {
    for (int j = 0; j < k->nl; j++) {
        const layer_plan *lp = &k->lp[j];
        float *fw = full + clpar_mlp_shape_weight_offset(s, lp->global);
        float *fb = full + clpar_mlp_shape_bias_offset(s, lp->global);
        float *lw = local + lp->woff, *lb = local + lp->boff;
        for (size_t r = 0; r < lp->w_rows; r++) {
            /* full W is (out, in); a ROW shard holds columns [a, a + len) of every row, the
             * others hold rows [a, a + len) */
            float *f = lp->kind == LAYER_ROW ? fw + r * lp->in + lp->a : fw + (lp->a + r) * lp->in;
            float *l = lw + r * lp->w_cols;
            if (to_local)
                memcpy(l, f, lp->w_cols * sizeof(float));
            else
                memcpy(f, l, lp->w_cols * sizeof(float));
        }
        size_t b0 = lp->kind == LAYER_ROW ? 0 : lp->a;
        if (to_local)
            memcpy(lb, fb + b0, lp->bcount * sizeof(float));
        else
            memcpy(fb + b0, lb, lp->bcount * sizeof(float));
    }
}

/* ---- building and freeing ---- */

static void free_rank(mrank *k) {
    clpar_device *d = k->dev;
    if (!d) return;
    clFinish(d->compute);
    clFinish(d->transfer);
    for (int i = 0; i < k->nev; i++) {
        if (k->ev[i].a) clReleaseEvent(k->ev[i].a);
        if (k->ev[i].b) clReleaseEvent(k->ev[i].b);
    }
    free(k->ev);
    if (k->bwd_end) clReleaseEvent(k->bwd_end);
    clpar_optim_free(k->opt);
    clpar_device_release(d, k->params);
    clpar_device_release(d, k->grads);
    for (int i = 0; k->act && i < k->nslots * (k->nl + 1); i++)
        clpar_device_release(d, k->act[i]);
    for (int i = 0; k->labels && i < k->nslots; i++)
        clpar_device_release(d, k->labels[i]);
    for (int i = 0; k->targets && i < k->nslots; i++)
        clpar_device_release(d, k->targets[i]);
    for (int i = 0; k->dys && i < k->nslots * k->nl; i++)
        clpar_device_release(d, k->dys[i]);
    clpar_device_release(d, k->din);
    clpar_device_release(d, k->wx);
    clpar_device_release(d, k->wdy);
    clpar_device_release(d, k->tmp);
    clpar_device_release(d, k->lossbuf);
    free(k->act);
    free(k->dys);
    free(k->labels);
    free(k->targets);
    free(k->ops);
}

void clpar_mesh_free(clpar_mesh *M) {
    if (!M) return;
    clpar_workers_free(M->workers);
    for (int r = 0; M->ranks && r < M->n; r++)
        free_rank(&M->ranks[r]);
    for (int i = 0; M->tp_ars && i < M->cfg.dp * M->cfg.pp; i++) {
        clpar_allreduce_free(M->tp_ars[i]);
        clpar_allgather_free(M->tp_ags[i]);
    }
    for (int i = 0; M->dp_ars && i < M->cfg.pp * M->cfg.tp; i++)
        clpar_allreduce_free(M->dp_ars[i]);
    for (int i = 0; M->chans && i < M->nchans; i++)
        clpar_channel_free(M->chans[i]);
    clpar_sync_free(M->sync);
    free(M->tp_ars);
    free(M->tp_ags);
    free(M->dp_ars);
    free(M->chans);
    free(M->ranks);
    free(M->row_loss);
    free(M->eval_out);
    free(M->trace);
    free(M);
}

static clpar_status alloc_counted(mrank *k, size_t bytes, cl_mem *m, size_t *account) {
    TRY(clpar_device_alloc(k->dev, bytes, m));
    *account += bytes < 4 ? 4 : bytes;
    return CLPAR_OK;
}

static clpar_status build_rank(clpar_mesh *M, mrank *k, const int *starts, const float *params) {
    const clpar_mesh_config *c = &M->cfg;
    const size_t f = sizeof(float), cap = M->micro_cap;
    TRY(clpar_op_warmup(k->dev));
    k->l0 = starts[k->p];
    k->nl = c->stage_layers[k->p];
    k->nparams = plan_layers(c, k->p, k->t, k->lp);
    k->ops = malloc(3 * (size_t)c->micro * sizeof *k->ops);
    if (!k->ops) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    schedule_shape(c->schedule, k->p, c->pp, c->micro, &k->nslots, &k->group);
    TRY(alloc_counted(k, k->nparams * f, &k->params, &k->param_bytes));
    TRY(alloc_counted(k, k->nparams * f, &k->grads, &k->param_bytes));
    size_t before = clpar_device_allocated_bytes(k->dev);
    TRY(clpar_optim_init(k->dev, &c->optim, k->nparams, &k->opt));
    k->param_bytes += clpar_device_allocated_bytes(k->dev) - before;
    size_t gather = 1, wx = 0, wdy = 0;
    for (int j = 0; j < k->nl; j++) {
        const layer_plan *lp = &k->lp[j];
        if (lp->kind == LAYER_COLG && lp->len > gather) gather = lp->len;
        if (lp->w_cols > wx) wx = lp->w_cols;
        if (layer_dy_width(lp) > wdy) wdy = layer_dy_width(lp);
    }
    int last = k->p == c->pp - 1;
    k->act = calloc((size_t)(k->nslots * (k->nl + 1)), sizeof *k->act);
    k->dys = calloc((size_t)(k->nslots * k->nl), sizeof *k->dys);
    k->labels = last ? calloc((size_t)k->nslots, sizeof *k->labels) : NULL;
    k->targets = last ? calloc((size_t)k->nslots, sizeof *k->targets) : NULL;
    if (!k->act || !k->dys || (last && (!k->labels || !k->targets)))
        return clpar_error(CLPAR_ENOMEM, "out of host memory");
    size_t outw = c->shape.sizes[c->shape.nlayers];
    for (int s = 0; s < k->nslots; s++) {
        for (int j = 0; j <= k->nl; j++) {
            size_t w = j < k->nl ? k->lp[j].in_w : k->lp[k->nl - 1].out_w;
            TRY(alloc_counted(k, cap * w * f, &k->act[s * (k->nl + 1) + j], &k->act_bytes));
        }
        for (int j = 0; j < k->nl; j++)
            TRY(alloc_counted(k, cap * k->lp[j].out * f, &k->dys[s * k->nl + j], &k->act_bytes));
        if (last) {
            TRY(alloc_counted(k, cap * sizeof(cl_int), &k->labels[s], &k->act_bytes));
            TRY(alloc_counted(k, cap * outw * f, &k->targets[s], &k->act_bytes));
        }
    }
    if (k->p > 0) TRY(alloc_counted(k, cap * k->lp[0].in * f, &k->din, &k->act_bytes));
    if (k->group > 1) {
        TRY(alloc_counted(k, (size_t)k->group * cap * wx * f, &k->wx, &k->act_bytes));
        TRY(alloc_counted(k, (size_t)k->group * cap * wdy * f, &k->wdy, &k->act_bytes));
    }
    TRY(alloc_counted(k, cap * gather * f, &k->tmp, &k->act_bytes));
    TRY(alloc_counted(k, cap * f, &k->lossbuf, &k->act_bytes));
    float *local = malloc((k->nparams ? k->nparams : 1) * f);
    if (!local) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    map_params(&c->shape, k, (float *)params, local, 1);
    clpar_status st = clpar_device_write(k->dev, k->params, 0, k->nparams * f, local);
    free(local);
    TRY(st);
    float zero = 0.0f;
    CL_CHECK(
        clEnqueueFillBuffer(k->dev->compute, k->grads, &zero, f, 0, k->nparams * f, 0, NULL, NULL),
        "clEnqueueFillBuffer");
    /* the device's profiling clock against the host's, for traces */
    cl_event e;
    TRY(marker(k, &e));
    CL_CHECK(clWaitForEvents(1, &e), "clWaitForEvents");
    double now = host_ns();
    cl_ulong end = 0;
    clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL);
    clReleaseEvent(e);
    k->clock_offset_ns = now - (double)end;
    return CLPAR_OK;
}

#define RANK(M, d, p, t) (((d) * (M)->cfg.pp + (p)) * (M)->cfg.tp + (t))

static clpar_status build_links(clpar_mesh *M, const int *starts) {
    const clpar_mesh_config *c = &M->cfg;
    clpar_device *group[256];
    M->tp_ars = calloc((size_t)(c->dp * c->pp), sizeof *M->tp_ars);
    M->tp_ags = calloc((size_t)(c->dp * c->pp), sizeof *M->tp_ags);
    M->dp_ars = calloc((size_t)(c->pp * c->tp), sizeof *M->dp_ars);
    M->chans = calloc((size_t)(2 * c->dp * c->pp * c->tp), sizeof *M->chans);
    if (!M->tp_ars || !M->tp_ags || !M->dp_ars || !M->chans)
        return clpar_error(CLPAR_ENOMEM, "out of host memory");
    for (int d = 0; d < c->dp; d++)
        for (int p = 0; p < c->pp && c->tp > 1; p++) {
            size_t widest = 0;
            for (int l = starts[p]; l <= starts[p + 1]; l++)
                if (c->shape.sizes[l] > widest) widest = c->shape.sizes[l];
            for (int t = 0; t < c->tp; t++)
                group[t] = M->ranks[RANK(M, d, p, t)].dev;
            size_t count = M->micro_cap * widest;
            int g = d * c->pp + p;
            TRY(clpar_allreduce_init(group, c->tp, count, M->sync, &M->tp_ars[g]));
            TRY(clpar_allgather_init(group, c->tp, count, M->sync, &M->tp_ags[g]));
            for (int t = 0; t < c->tp; t++) {
                M->ranks[RANK(M, d, p, t)].tp_ar = M->tp_ars[g];
                M->ranks[RANK(M, d, p, t)].tp_ag = M->tp_ags[g];
            }
        }
    for (int p = 0; p < c->pp && c->dp > 1; p++)
        for (int t = 0; t < c->tp; t++) {
            for (int d = 0; d < c->dp; d++)
                group[d] = M->ranks[RANK(M, d, p, t)].dev;
            int g = p * c->tp + t;
            TRY(clpar_allreduce_init(group, c->dp, M->ranks[RANK(M, 0, p, t)].nparams, M->sync,
                                     &M->dp_ars[g]));
            for (int d = 0; d < c->dp; d++)
                M->ranks[RANK(M, d, p, t)].dp_ar = M->dp_ars[g];
        }
    int slots = c->micro > 2 ? c->micro : 2;
    for (int d = 0; d < c->dp; d++)
        for (int p = 0; p + 1 < c->pp; p++)
            for (int t = 0; t < c->tp; t++) {
                mrank *a = &M->ranks[RANK(M, d, p, t)], *b = &M->ranks[RANK(M, d, p + 1, t)];
                size_t count = M->micro_cap * c->shape.sizes[starts[p + 1]];
                TRY(clpar_channel_init(a->dev, b->dev, slots, count, M->sync,
                                       &M->chans[M->nchans]));
                a->fwd_out = b->fwd_in = M->chans[M->nchans++];
                TRY(clpar_channel_init(b->dev, a->dev, slots, count, M->sync,
                                       &M->chans[M->nchans]));
                b->bwd_out = a->bwd_in = M->chans[M->nchans++];
            }
    return CLPAR_OK;
}

clpar_status clpar_mesh_init(clpar_device *const *devs, const clpar_mesh_config *cfg,
                             const float *params, clpar_mesh **out) {
    *out = NULL;
    TRY(clpar_mesh_validate(cfg));
    clpar_mesh *M = calloc(1, sizeof *M);
    if (!M) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    M->cfg = *cfg;
    const clpar_mesh_config *c = &M->cfg;
    M->n = c->dp * c->pp * c->tp;
    uint64_t memory[256];
    for (int r = 0; r < M->n; r++)
        memory[r] = devs[r]->info->global_mem;
    M->cfg.schedule = clpar_mesh_choose_schedule(c, memory);
    M->nparams = clpar_mlp_shape_param_count(&c->shape);
    M->micro_cap = plan_micro_cap(c);
    M->ranks = calloc((size_t)M->n, sizeof *M->ranks);
    clpar_status st =
        M->ranks ? clpar_sync_init(&M->sync) : clpar_error(CLPAR_ENOMEM, "out of host memory");
    int starts[CLPAR_MAX_LAYERS + 1];
    plan_stage_starts(c, starts);
    for (int r = 0; r < M->n && st == CLPAR_OK; r++) {
        mrank *k = &M->ranks[r];
        k->rank = r;
        k->t = r % c->tp;
        k->p = (r / c->tp) % c->pp;
        k->d = r / (c->tp * c->pp);
        k->dev = devs[r];
        st = build_rank(M, k, starts, params);
    }
    if (st == CLPAR_OK) st = build_links(M, starts);
    if (st == CLPAR_OK && M->n > 1) st = clpar_workers_init(M->n, &M->workers);
    if (st != CLPAR_OK) {
        clpar_mesh_free(M);
        return st;
    }
    M->stats.bubble_ideal = (double)(c->pp - 1) / (double)(c->micro + c->pp - 1);
    *out = M;
    return CLPAR_OK;
}

const clpar_mesh_config *clpar_mesh_get_config(const clpar_mesh *M) {
    return &M->cfg;
}

/* ---- running ---- */

static void reset_after_failure(clpar_mesh *M) {
    for (int r = 0; r < M->n; r++) {
        mrank *k = &M->ranks[r];
        clFinish(k->dev->compute);
        clFinish(k->dev->transfer);
    }
    for (int i = 0; i < M->cfg.dp * M->cfg.pp && M->cfg.tp > 1; i++)
        clpar_allreduce_reset(M->tp_ars[i]);
    for (int i = 0; i < M->cfg.pp * M->cfg.tp && M->cfg.dp > 1; i++)
        clpar_allreduce_reset(M->dp_ars[i]);
    for (int i = 0; i < M->nchans; i++)
        clpar_channel_reset(M->chans[i]);
    clpar_sync_reset(M->sync);
}

static double event_ns(cl_event e, cl_profiling_info what) {
    cl_ulong v = 0;
    if (!e || clGetEventProfilingInfo(e, what, sizeof v, &v, NULL) != CL_SUCCESS) return 0;
    return (double)v;
}

static int is_compute(const char *category) {
    return !strcmp(category, "forward") || !strcmp(category, "backward") ||
           !strcmp(category, "weights");
}

int clpar_trace_event_is_compute(const clpar_trace_event *e) {
    return is_compute(e->category);
}

/* Turns the step's recorded events into trace events and the bubble measurement, and
 * releases them. */
static clpar_status collect_events(clpar_mesh *M) {
    const clpar_mesh_config *c = &M->cfg;
    double busy[CLPAR_MAX_LAYERS] = {0}, lo = INFINITY, hi = -INFINITY;
    if (M->tracing && M->trace_origin_ns == 0) M->trace_origin_ns = host_ns() - 1e9;
    for (int r = 0; r < M->n; r++) {
        mrank *k = &M->ranks[r];
        for (int i = 0; i < k->nev; i++) {
            rank_event *e = &k->ev[i];
            double s, t;
            if (e->b) {
                s = event_ns(e->a, CL_PROFILING_COMMAND_END);
                t = event_ns(e->b, CL_PROFILING_COMMAND_END);
            } else {
                s = event_ns(e->a, CL_PROFILING_COMMAND_START);
                t = event_ns(e->a, CL_PROFILING_COMMAND_END);
            }
            s += k->clock_offset_ns;
            t += k->clock_offset_ns;
            if (is_compute(e->cat) && k->d == 0 && k->t == 0 && t > s) {
                busy[k->p] += t - s;
                if (s < lo) lo = s;
                if (t > hi) hi = t;
            }
            if (M->tracing && M->ntrace < 1000000) {
                clpar_trace_event *grown =
                    grow(M->trace, M->ntrace, &M->tcap, sizeof *M->trace, 1024);
                if (!grown) return clpar_error(CLPAR_ENOMEM, "out of host memory");
                M->trace = grown;
                clpar_trace_event *te = &M->trace[M->ntrace++];
                te->rank = r;
                te->queue = e->queue;
                snprintf(te->name, sizeof te->name, "%s", e->name);
                snprintf(te->category, sizeof te->category, "%s", e->cat);
                te->start_us = (s - M->trace_origin_ns) / 1e3;
                te->end_us = (t - M->trace_origin_ns) / 1e3;
            }
            if (e->a) clReleaseEvent(e->a);
            if (e->b) clReleaseEvent(e->b);
        }
        k->nev = 0;
    }
    if (hi > lo) {
        double sum = 0;
        for (int p = 0; p < c->pp; p++)
            sum += 1.0 - busy[p] / (hi - lo);
        M->stats.bubble_measured = sum / c->pp;
    }
    return CLPAR_OK;
}

static clpar_status run_all(clpar_mesh *M) {
    clpar_status st = M->n == 1 ? rank_task(M, 0) : clpar_workers_run(M->workers, rank_task, M);
    if (st != CLPAR_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", clpar_last_error());
        reset_after_failure(M);
        return clpar_error(st, "%s", msg);
    }
    return CLPAR_OK;
}

static clpar_status ensure_rows(clpar_mesh *M, size_t rows) {
    size_t out = M->cfg.shape.sizes[M->cfg.shape.nlayers];
    float *a = realloc(M->row_loss, rows * sizeof(float));
    if (a) M->row_loss = a;
    float *b = realloc(M->eval_out, rows * out * sizeof(float));
    if (b) M->eval_out = b;
    if (!a || !b) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    return CLPAR_OK;
}

static double mean_loss(const clpar_mesh *M, size_t rows) {
    double sum = 0.0;
    for (size_t i = 0; i < rows; i++)
        sum += M->row_loss[i];
    size_t out = M->cfg.shape.sizes[M->cfg.shape.nlayers];
    return sum / (double)rows / (M->cfg.loss == CLPAR_LOSS_MSE ? (double)out : 1.0);
}

clpar_status clpar_mesh_step(clpar_mesh *M, const float *x, const int *labels, const float *targets,
                             size_t rows, double *loss) {
    const clpar_mesh_config *c = &M->cfg;
    if (rows == 0 || rows > c->max_batch)
        return clpar_error(CLPAR_EINVAL, "batch of %zu rows for a mesh sized for 1..%zu", rows,
                           c->max_batch);
    if (c->loss == CLPAR_LOSS_XENT ? !labels : !targets)
        return clpar_error(CLPAR_EINVAL, "the %s loss needs %s",
                           c->loss == CLPAR_LOSS_XENT ? "xent" : "mse",
                           c->loss == CLPAR_LOSS_XENT ? "labels" : "targets");
    TRY(ensure_rows(M, rows));
    M->x = x, M->labels = labels, M->targets = targets, M->rows = rows, M->eval = 0;
    TRY(run_all(M));
    *loss = mean_loss(M, rows);
    if (c->dp > 1) {
        for (int p = 0; p < c->pp; p++)
            for (int t = 0; t < c->tp; t++) {
                cl_ulong ends[256];
                for (int d = 0; d < c->dp; d++)
                    ends[d] = (cl_ulong)event_ns(M->ranks[RANK(M, d, p, t)].bwd_end,
                                                 CL_PROFILING_COMMAND_END);
                double win, exp;
                TRY(clpar_allreduce_collect(M->dp_ars[p * c->tp + t], ends, &win, &exp));
                M->stats.reduce_window_ns += win;
                M->stats.reduce_exposed_ns += exp;
            }
    }
    TRY(collect_events(M));
    M->stats.steps++;
    return CLPAR_OK;
}

clpar_status clpar_mesh_evaluate(clpar_mesh *M, const float *x, const int *labels,
                                 const float *targets, size_t rows, double *loss,
                                 double *accuracy) {
    const clpar_mesh_config *c = &M->cfg;
    if (rows == 0) return clpar_error(CLPAR_EINVAL, "nothing to evaluate");
    TRY(ensure_rows(M, rows));
    M->x = x, M->labels = labels, M->targets = targets, M->rows = rows, M->eval = 1;
    clpar_status st = run_all(M);
    for (int r = 0; r < M->n; r++) { /* evaluation leaves nothing to trace */
        mrank *k = &M->ranks[r];
        for (int i = 0; i < k->nev; i++) {
            if (k->ev[i].a) clReleaseEvent(k->ev[i].a);
            if (k->ev[i].b) clReleaseEvent(k->ev[i].b);
        }
        k->nev = 0;
    }
    TRY(st);
    if (loss) *loss = (labels || targets) ? mean_loss(M, rows) : 0.0;
    if (accuracy) {
        size_t out = c->shape.sizes[c->shape.nlayers], correct = 0;
        for (size_t i = 0; labels && i < rows; i++) {
            const float *z = M->eval_out + i * out;
            size_t best = 0;
            for (size_t j = 1; j < out; j++)
                if (z[j] > z[best]) best = j;
            correct += (int)best == labels[i];
        }
        *accuracy = labels ? (double)correct / (double)rows : 0.0;
    }
    return CLPAR_OK;
}

clpar_status clpar_mesh_predict(clpar_mesh *M, const float *x, size_t rows, float *out) {
    TRY(clpar_mesh_evaluate(M, x, NULL, NULL, rows, NULL, NULL));
    memcpy(out, M->eval_out, rows * M->cfg.shape.sizes[M->cfg.shape.nlayers] * sizeof(float));
    return CLPAR_OK;
}

/* Which buffer of a rank: -2 parameters, -1 gradients, i >= 0 optimizer state i. */
static cl_mem rank_buffer(const mrank *k, int which) {
    if (which == -2) return k->params;
    if (which == -1) return k->grads;
    return clpar_optim_state(k->opt, which);
}

static clpar_status gather(clpar_mesh *M, int replica, float *full, int which) {
    if (replica < 0 || replica >= M->cfg.dp)
        return clpar_error(CLPAR_EINVAL, "no replica %d of %d", replica, M->cfg.dp);
    for (int r = 0; r < M->n; r++) {
        mrank *k = &M->ranks[r];
        if (k->d != replica) continue;
        float *local = malloc((k->nparams ? k->nparams : 1) * sizeof(float));
        if (!local) return clpar_error(CLPAR_ENOMEM, "out of host memory");
        cl_mem buf = rank_buffer(k, which);
        clpar_status st = buf ? clpar_device_read(k->dev, local, buf, 0, k->nparams * sizeof(float))
                              : clpar_error(CLPAR_EINVAL, "the optimizer has no state %d", which);
        if (st == CLPAR_OK) map_params(&M->cfg.shape, k, full, local, 0);
        free(local);
        TRY(st);
    }
    return CLPAR_OK;
}

clpar_status clpar_mesh_get_params(clpar_mesh *M, int replica, float *params) {
    return gather(M, replica, params, -2);
}

clpar_status clpar_mesh_get_grads(clpar_mesh *M, int replica, float *grads) {
    return gather(M, replica, grads, -1);
}

clpar_status clpar_mesh_get_optim_state(clpar_mesh *M, int i, float *state) {
    return gather(M, 0, state, i);
}

static clpar_status scatter(clpar_mesh *M, const float *full, int which) {
    for (int r = 0; r < M->n; r++) {
        mrank *k = &M->ranks[r];
        cl_mem buf = rank_buffer(k, which);
        if (!buf) return clpar_error(CLPAR_EINVAL, "the optimizer has no state %d", which);
        float *local = malloc((k->nparams ? k->nparams : 1) * sizeof(float));
        if (!local) return clpar_error(CLPAR_ENOMEM, "out of host memory");
        map_params(&M->cfg.shape, k, (float *)full, local, 1);
        clpar_status st = clpar_device_write(k->dev, buf, 0, k->nparams * sizeof(float), local);
        free(local);
        TRY(st);
    }
    return CLPAR_OK;
}

clpar_status clpar_mesh_set_params(clpar_mesh *M, const float *params) {
    return scatter(M, params, -2);
}

clpar_status clpar_mesh_set_optim_state(clpar_mesh *M, int i, const float *state) {
    return scatter(M, state, i);
}

long clpar_mesh_optim_steps(const clpar_mesh *M) {
    return clpar_optim_steps_taken(M->ranks[0].opt);
}

void clpar_mesh_set_optim_steps(clpar_mesh *M, long steps) {
    for (int r = 0; r < M->n; r++)
        clpar_optim_set_steps(M->ranks[r].opt, steps);
}

void clpar_mesh_rank_info(const clpar_mesh *M, int rank, clpar_rank_info *info) {
    const mrank *k = &M->ranks[rank];
    info->replica = k->d;
    info->stage = k->p;
    info->shard = k->t;
    info->first_layer = k->l0;
    info->layers = k->nl;
    info->param_count = k->nparams;
    info->param_bytes = k->param_bytes;
    info->activation_bytes = k->act_bytes;
    info->activation_slots = k->nslots;
}

void clpar_mesh_get_stats(const clpar_mesh *M, clpar_mesh_stats *stats) {
    *stats = M->stats;
    stats->bytes_tp = stats->bytes_pp = stats->bytes_dp = 0;
    for (int r = 0; r < M->n; r++) {
        stats->bytes_tp += M->ranks[r].bytes_tp;
        stats->bytes_pp += M->ranks[r].bytes_pp;
        stats->bytes_dp += M->ranks[r].bytes_dp;
    }
}

void clpar_mesh_set_tracing(clpar_mesh *M, int on) {
    M->tracing = on;
}

const clpar_trace_event *clpar_mesh_trace(const clpar_mesh *M, int *count) {
    *count = M->ntrace;
    return M->trace;
}
