/* Data parallelism and gradient accumulation: shards, micro-batches, bucketed all-reduce
 * overlapped with backward, identical updates on every replica. */
#include "clpar/strategy.h"
#include "../runtime/internal.h"
#include "../runtime/workers.h"

#include <stdlib.h>
#include <string.h>

struct clpar_dp {
    clpar_dp_config cfg;
    size_t nparams;
    size_t micro_cap; /* rows a replica holds at once */
    clpar_device **devs;
    clpar_mlp **models;
    clpar_optim **optims;
    cl_mem *grads; /* models[r]'s gradient buffer, for the all-reduce */
    clpar_allreduce *ar;
    clpar_workers *workers; /* one host thread per rank */
    cl_event *bwd_end;      /* per rank: the event that ends its last backward */
    float *row_loss;        /* per-row losses of the current step */
    float *eval_out;
    clpar_dp_stats stats;
};

static size_t split(size_t total, size_t parts, size_t i) {
    return total / parts + (i < total % parts ? 1 : 0);
}
static size_t split_start(size_t total, size_t parts, size_t i) {
    return i * (total / parts) + (i < total % parts ? i : total % parts);
}

void clpar_dp_free(clpar_dp *dp) {
    if (!dp) return;
    clpar_workers_free(dp->workers);
    clpar_allreduce_free(dp->ar);
    for (int r = 0; r < dp->cfg.ranks; r++) {
        if (dp->optims) clpar_optim_free(dp->optims[r]);
        if (dp->models) clpar_mlp_free(dp->models[r]);
        if (dp->bwd_end && dp->bwd_end[r]) clReleaseEvent(dp->bwd_end[r]);
    }
    free(dp->devs);
    free(dp->models);
    free(dp->optims);
    free(dp->grads);
    free(dp->bwd_end);
    free(dp->row_loss);
    free(dp->eval_out);
    free(dp);
}

clpar_status clpar_dp_init(clpar_device *const *devs, const clpar_dp_config *cfg,
                           const float *params, clpar_dp **out) {
    *out = NULL;
    if (cfg->ranks < 1 || cfg->accum < 1 || cfg->max_batch < 1)
        return clpar_error(CLPAR_EINVAL, "data parallel: ranks, accum and batch must be >= 1");
    clpar_dp *dp = calloc(1, sizeof *dp);
    if (!dp) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    dp->cfg = *cfg;
    int n = cfg->ranks;
    dp->nparams = clpar_mlp_shape_param_count(&cfg->shape);
    size_t shard = (cfg->max_batch + (size_t)n - 1) / (size_t)n;
    dp->micro_cap = (shard + (size_t)cfg->accum - 1) / (size_t)cfg->accum;
    dp->devs = calloc((size_t)n, sizeof *dp->devs);
    dp->models = calloc((size_t)n, sizeof *dp->models);
    dp->optims = calloc((size_t)n, sizeof *dp->optims);
    dp->grads = calloc((size_t)n, sizeof *dp->grads);
    dp->bwd_end = calloc((size_t)n, sizeof *dp->bwd_end);
    dp->row_loss = malloc(cfg->max_batch * sizeof(float));
    size_t outw = cfg->shape.sizes[cfg->shape.nlayers];
    dp->eval_out = malloc(dp->micro_cap * outw * sizeof(float));
    clpar_status st = CLPAR_OK;
    if (!dp->devs || !dp->models || !dp->optims || !dp->grads || !dp->bwd_end || !dp->row_loss ||
        !dp->eval_out)
        st = clpar_error(CLPAR_ENOMEM, "out of host memory");
    for (int r = 0; r < n && st == CLPAR_OK; r++) {
        dp->devs[r] = devs[r];
        st = clpar_op_gemm_warmup(devs[r]);
        if (st == CLPAR_OK)
            st = clpar_mlp_init(devs[r], &cfg->shape, dp->micro_cap, &dp->models[r]);
        if (st == CLPAR_OK) st = clpar_mlp_set_params(dp->models[r], params);
        if (st == CLPAR_OK)
            st = clpar_optim_init(devs[r], &cfg->optim, dp->nparams, &dp->optims[r]);
        if (st == CLPAR_OK) dp->grads[r] = clpar_mlp_grads(dp->models[r]);
    }
    if (st == CLPAR_OK && n > 1) st = clpar_allreduce_init(dp->devs, n, dp->nparams, &dp->ar);
    if (st == CLPAR_OK && n > 1) st = clpar_workers_init(n, &dp->workers);
    if (st != CLPAR_OK) {
        clpar_dp_free(dp);
        return st;
    }
    *out = dp;
    return CLPAR_OK;
}

typedef struct {
    clpar_dp *dp;
    int rank;
    int reduce; /* start the bucket's reduction (last micro-batch of a multi-rank step) */
} hook_ctx;

static clpar_status on_grad_ready(void *user, int layer, cl_event ev) {
    hook_ctx *h = user;
    clpar_dp *dp = h->dp;
    if (layer == 0) {
        if (dp->bwd_end[h->rank]) clReleaseEvent(dp->bwd_end[h->rank]);
        clRetainEvent(ev);
        dp->bwd_end[h->rank] = ev;
    }
    if (!h->reduce) return CLPAR_OK;
    const clpar_mlp_shape *s = &dp->cfg.shape;
    return clpar_allreduce_begin(dp->ar, h->rank, dp->grads[h->rank],
                                 clpar_mlp_shape_weight_offset(s, layer),
                                 clpar_mlp_shape_layer_count(s, layer), ev);
}

/* A rank with no rows this step: zero gradients, and still take part in the reduction. */
static clpar_status idle_rank(clpar_dp *dp, int r) {
    clpar_device *d = dp->devs[r];
    float zero = 0.0f;
    cl_event ev;
    CL_CHECK(clEnqueueFillBuffer(d->compute, dp->grads[r], &zero, sizeof zero, 0,
                                 dp->nparams * sizeof(float), 0, NULL, &ev),
             "clEnqueueFillBuffer(gradients)");
    hook_ctx h = {dp, r, dp->cfg.ranks > 1};
    clpar_status st = CLPAR_OK;
    for (int l = dp->cfg.shape.nlayers - 1; l >= 0 && st == CLPAR_OK; l--)
        st = on_grad_ready(&h, l, ev);
    clReleaseEvent(ev);
    return st;
}

static clpar_status enqueue_rank(clpar_dp *dp, int r, const float *x, const int *labels,
                                 const float *targets, size_t rows, size_t first) {
    const clpar_dp_config *c = &dp->cfg;
    size_t shard = split(rows, (size_t)c->ranks, (size_t)r);
    size_t in = c->shape.sizes[0], out = c->shape.sizes[c->shape.nlayers];
    if (shard == 0) return idle_rank(dp, r);
    size_t micro = (size_t)c->accum < shard ? (size_t)c->accum : shard;
    clpar_mlp *m = dp->models[r];
    for (size_t k = 0; k < micro; k++) {
        size_t mrows = split(shard, micro, k);
        size_t row0 = first + split_start(shard, micro, k);
        TRY(clpar_mlp_upload(m, x + row0 * in, labels ? labels + row0 : NULL,
                             targets ? targets + row0 * out : NULL, mrows));
        TRY(clpar_mlp_forward(m, mrows));
        double total = c->reduce == CLPAR_REDUCE_MEAN ? (double)rows : (double)mrows;
        TRY(clpar_mlp_loss(m, c->loss, mrows, total));
        TRY(clpar_mlp_read_loss_async(m, mrows, dp->row_loss + row0));
        hook_ctx h = {dp, r, c->ranks > 1 && k + 1 == micro};
        TRY(clpar_mlp_backward(m, mrows, k == 0 ? 0.0f : 1.0f, on_grad_ready, &h));
    }
    return CLPAR_OK;
}

typedef struct {
    clpar_dp *dp;
    const float *x, *targets;
    const int *labels;
    size_t rows;
} step_args;

/* One rank's whole step, on its own host thread: forward and backward of its shard, the
 * bucket reductions as collectives with the other ranks, the update, and a wait. */
static clpar_status rank_step(void *ctx, int r) {
    const step_args *a = ctx;
    clpar_dp *dp = a->dp;
    const clpar_dp_config *c = &dp->cfg;
    clpar_device *d = dp->devs[r];
    clpar_status st = enqueue_rank(dp, r, a->x, a->labels, a->targets, a->rows,
                                   split_start(a->rows, (size_t)c->ranks, (size_t)r));
    if (st == CLPAR_OK && clFlush(d->compute) != CL_SUCCESS)
        st = clpar_error(CLPAR_EINVAL, "clFlush(compute) failed on rank %d", r);
    if (c->ranks > 1) {
        const clpar_mlp_shape *s = &c->shape;
        /* buckets in the order backward produces them, last layer first; every rank takes
         * part in every bucket even after a failure, so none is left waiting */
        for (int l = s->nlayers - 1; l >= 0; l--) {
            clpar_status b =
                clpar_allreduce_bucket(dp->ar, r, dp->grads[r], clpar_mlp_shape_weight_offset(s, l),
                                       clpar_mlp_shape_layer_count(s, l), st == CLPAR_OK);
            if (st == CLPAR_OK) st = b;
        }
    }
    if (st == CLPAR_OK)
        st = clpar_optim_step(dp->optims[r], clpar_mlp_params(dp->models[r]), dp->grads[r], NULL);
    if (st == CLPAR_OK) st = clpar_device_finish(d);
    return st;
}

clpar_status clpar_dp_step(clpar_dp *dp, const float *x, const int *labels, const float *targets,
                           size_t rows, double *loss) {
    const clpar_dp_config *c = &dp->cfg;
    int n = c->ranks;
    if (rows == 0 || rows > c->max_batch)
        return clpar_error(CLPAR_EINVAL, "batch of %zu rows for a trainer sized for 1..%zu", rows,
                           c->max_batch);
    if (c->loss == CLPAR_LOSS_XENT ? !labels : !targets)
        return clpar_error(CLPAR_EINVAL, "the %s loss needs %s", c->loss ? "mse" : "xent",
                           c->loss ? "targets" : "labels");
    step_args args = {dp, x, targets, labels, rows};
    if (n == 1) {
        TRY(rank_step(&args, 0));
    } else {
        clpar_allreduce_reset(dp->ar);
        TRY(clpar_workers_run(dp->workers, rank_step, &args));
    }
    double sum = 0.0;
    for (size_t i = 0; i < rows; i++)
        sum += dp->row_loss[i];
    size_t outw = c->shape.sizes[c->shape.nlayers];
    *loss = sum / (double)rows / (c->loss == CLPAR_LOSS_MSE ? (double)outw : 1.0);
    if (n > 1) {
        cl_ulong ends[64] = {0};
        for (int r = 0; r < n && r < 64; r++)
            if (dp->bwd_end[r])
                clGetEventProfilingInfo(dp->bwd_end[r], CL_PROFILING_COMMAND_END, sizeof ends[r],
                                        &ends[r], NULL);
        double win, exp;
        TRY(clpar_allreduce_collect(dp->ar, ends, &win, &exp));
        dp->stats.reduce_window_ns += win;
        dp->stats.reduce_exposed_ns += exp;
    }
    dp->stats.steps++;
    return CLPAR_OK;
}

clpar_status clpar_dp_evaluate(clpar_dp *dp, const float *x, const int *labels,
                               const float *targets, size_t rows, double *loss, double *accuracy) {
    const clpar_dp_config *c = &dp->cfg;
    clpar_mlp *m = dp->models[0];
    size_t in = c->shape.sizes[0], outw = c->shape.sizes[c->shape.nlayers];
    double sum = 0.0;
    size_t correct = 0;
    for (size_t first = 0; first < rows; first += dp->micro_cap) {
        size_t k = rows - first < dp->micro_cap ? rows - first : dp->micro_cap;
        TRY(clpar_mlp_upload(m, x + first * in, labels ? labels + first : NULL,
                             targets ? targets + first * outw : NULL, k));
        TRY(clpar_mlp_forward(m, k));
        TRY(clpar_mlp_loss(m, c->loss, k, 0));
        double part;
        TRY(clpar_mlp_read_loss(m, k, &part));
        sum += part;
        if (labels) {
            TRY(clpar_mlp_read_output(m, dp->eval_out, k));
            for (size_t i = 0; i < k; i++) {
                const float *z = dp->eval_out + i * outw;
                size_t best = 0;
                for (size_t j = 1; j < outw; j++)
                    if (z[j] > z[best]) best = j;
                correct += (int)best == labels[first + i];
            }
        }
    }
    *loss = sum / (double)rows / (c->loss == CLPAR_LOSS_MSE ? (double)outw : 1.0);
    if (accuracy) *accuracy = labels ? (double)correct / (double)rows : 0.0;
    return CLPAR_OK;
}

clpar_status clpar_dp_get_params(clpar_dp *dp, int rank, float *params) {
    if (rank < 0 || rank >= dp->cfg.ranks)
        return clpar_error(CLPAR_EINVAL, "no rank %d of %d", rank, dp->cfg.ranks);
    return clpar_mlp_get_params(dp->models[rank], params);
}

int clpar_dp_ranks(const clpar_dp *dp) {
    return dp->cfg.ranks;
}

void clpar_dp_get_stats(const clpar_dp *dp, clpar_dp_stats *stats) {
    *stats = dp->stats;
}
