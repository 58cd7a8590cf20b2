/* The step: each rank's host thread runs its stage's pipeline schedule of micro-batch ops
 * (F, B, W) through its modules, hands activations and gradients to the neighbouring
 * stages, lends the modules the tensor-parallel collectives, reduces gradients across
 * replicas bucket by bucket as W finishes them, and updates. Evaluation runs forwards only,
 * on replica 0. */
#include "mesh_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the collectives lent to the modules ---- */

clpar_status mesh_tp_all_reduce(void *ctx, cl_mem buf, size_t count) {
    mrank *k = ctx;
    cl_event e;
    TRY(rank_marker(k, &e));
    clpar_status st = clpar_allreduce_run(k->tp_ar, k->tp_slot, buf, count, e);
    clReleaseEvent(e);
    k->bytes_tp += 2 * count * sizeof(float);
    return st;
}

clpar_status mesh_tp_all_gather(void *ctx, cl_mem part, size_t rows, size_t first, size_t len,
                                size_t width, cl_mem out) {
    mrank *k = ctx;
    cl_event e;
    TRY(rank_marker(k, &e));
    clpar_status st =
        clpar_allgather_run(k->tp_ag, k->tp_slot, part, rows, first, len, width, out, e);
    clReleaseEvent(e);
    k->bytes_tp += (rows * len + rows * width) * sizeof(float);
    return st;
}

/* ---- spans, hand-offs ---- */

/* Ends the span that began at *start as `name` and begins the next one there. On failure
 * *start is still the caller's to release. */
static clpar_status span_close(mrank *k, cl_event *start, const char *cat, const char *name) {
    cl_event end;
    TRY(rank_marker(k, &end));
    clRetainEvent(end);
    cl_event a = *start;
    *start = end;
    return rank_record(k, a, end, 0, cat, "%s", name);
}

static clpar_status send(mrank *k, clpar_channel *c, long msg, cl_mem src, size_t len,
                         cl_event after, const char *what) {
    cl_event ev;
    TRY(clpar_channel_send(c, msg, src, len, after, &ev));
    k->bytes_pp += len * sizeof(float);
    return rank_record(k, ev, NULL, 1, "copy", "%s m%ld", what, msg);
}

static clpar_status recv(mrank *k, clpar_channel *c, long msg, cl_mem dst, size_t len,
                         const char *what) {
    cl_event ev;
    TRY(clpar_channel_recv(c, msg, dst, len, &ev));
    k->bytes_pp += len * sizeof(float);
    return rank_record(k, ev, NULL, 1, "copy", "%s m%ld", what, msg);
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
    clpar_mesh_replica_rows(&M->cfg, M->rows, k->lay.d, &s0, &n);
    *rows = clpar_split_size(n, (size_t)nmicro, (size_t)m);
    *first = s0 + clpar_split_start(n, (size_t)nmicro, (size_t)m);
}

/* A GPT's outputs are not kept for evaluation: its loss is what is asked. */
static size_t kept_outputs(const clpar_mesh *M) {
    clpar_model_spec model = mesh_model(&M->cfg);
    return clpar_model_is_gpt(&model) ? 0 : clpar_model_output_width(&model);
}

static cl_mem loss_target(const clpar_mesh *M, const mrank *k, int s) {
    return M->cfg.loss == CLPAR_LOSS_XENT ? k->labels[s] : k->targets[s];
}

/* F: micro-batch m through the stage's modules: its input from the data or the previous
 * stage, its output to the next stage or, on the last, into the loss. */
static clpar_status op_forward(clpar_mesh *M, mrank *k, int m, int nmicro) {
    const clpar_mesh_config *c = &M->cfg;
    const rank_layout *l = &k->lay;
    size_t R, g0;
    micro_rows(M, k, m, nmicro, &R, &g0);
    int s = m % l->nslots, last = l->p == c->pp - 1;
    cl_mem *act = &k->act[s * (l->nl + 1)];
    size_t in = l->act_w[0], out = kept_outputs(M);
    cl_command_queue q = k->dev->compute;
    if (l->p == 0) /* 4-byte elements: floats or token ids */
        CL_CHECK(clEnqueueWriteBuffer(q, act[0], CL_FALSE, 0, R * in * 4, M->x + g0 * in * 4, 0,
                                      NULL, NULL),
                 "clEnqueueWriteBuffer(input)");
    else
        TRY(recv(k, k->fwd_in, m, act[0], R * in, "recv act"));
    if (last && M->labels)
        CL_CHECK(clEnqueueWriteBuffer(q, k->labels[s], CL_FALSE, 0,
                                      R * l->labels_w * sizeof(cl_int),
                                      M->labels + g0 * l->labels_w, 0, NULL, NULL),
                 "clEnqueueWriteBuffer(labels)");
    if (last && M->targets)
        CL_CHECK(clEnqueueWriteBuffer(q, k->targets[s], CL_FALSE, 0,
                                      R * l->targets_w * sizeof(float),
                                      M->targets + g0 * l->targets_w, 0, NULL, NULL),
                 "clEnqueueWriteBuffer(targets)");
    cl_event start;
    TRY(rank_marker(k, &start));
    clpar_status st = CLPAR_OK;
    for (int j = 0; j < l->nl && st == CLPAR_OK; j++) {
        clpar_module_io io = {.rows = R, .x = act[j], .y = act[j + 1], .slot = s};
        st = clpar_module_forward(l->mods[j], &k->env, &io);
        char name[48];
        snprintf(name, sizeof name, "F m%d L%d", m, l->l0 + j);
        if (st == CLPAR_OK) st = span_close(k, &start, "forward", name);
    }
    if (st == CLPAR_OK && last) {
        int has_loss = M->labels || M->targets;
        clpar_module_io io = {
            .rows = R, .x = act[l->nl], .y = k->lossbuf, .target = loss_target(M, k, s)};
        if (has_loss) st = clpar_module_forward(k->loss, &k->env, &io);
        if (st == CLPAR_OK && l->t == 0 && has_loss) {
            cl_int err =
                clEnqueueReadBuffer(q, k->lossbuf, CL_FALSE, 0, R * l->loss_w * sizeof(float),
                                    M->row_loss + g0 * l->loss_w, 0, NULL, NULL);
            if (err != CL_SUCCESS) st = clpar_cl_error(err, "clEnqueueReadBuffer(loss)");
        }
        if (st == CLPAR_OK && l->t == 0 && M->eval && out) {
            cl_int err = clEnqueueReadBuffer(q, act[l->nl], CL_FALSE, 0, R * out * sizeof(float),
                                             M->eval_out + g0 * out, 0, NULL, NULL);
            if (err != CL_SUCCESS) st = clpar_cl_error(err, "clEnqueueReadBuffer(output)");
        }
    } else if (st == CLPAR_OK) {
        st = send(k, k->fwd_out, m, act[l->nl], R * l->act_w[l->nl], start, "send act");
    }
    clReleaseEvent(start);
    TRY(st);
    CL_CHECK(clFlush(q), "clFlush(compute)");
    return CLPAR_OK;
}

/* B: the chain of input gradients of micro-batch m through the stage, each module's output
 * gradient kept for W; the stage's input gradient goes to the previous stage. */
static clpar_status op_backward(clpar_mesh *M, mrank *k, int m, int nmicro) {
    const clpar_mesh_config *c = &M->cfg;
    const rank_layout *l = &k->lay;
    size_t R, g0;
    micro_rows(M, k, m, nmicro, &R, &g0);
    int s = m % l->nslots;
    cl_mem *act = &k->act[s * (l->nl + 1)], *dys = &k->dys[s * l->nl];
    if (l->p == c->pp - 1) {
        double total = (c->reduce == CLPAR_REDUCE_MEAN ? (double)M->rows : (double)R) *
                       (double)l->loss_w; /* a GPT's mean is over every position */
        double outputs = c->loss == CLPAR_LOSS_MSE ? (double)l->targets_w : 1;
        clpar_module_io io = {.rows = R,
                              .x = act[l->nl],
                              .dx = dys[l->nl - 1],
                              .target = loss_target(M, k, s),
                              .scale = (float)(1.0 / (total * outputs))};
        TRY(clpar_module_backward_input(k->loss, &k->env, &io));
    } else {
        TRY(recv(k, k->bwd_in, m, dys[l->nl - 1], R * l->mods[l->nl - 1]->dy_width, "recv grad"));
    }
    cl_event start;
    TRY(rank_marker(k, &start));
    clpar_status st = CLPAR_OK;
    for (int j = l->nl - 1; j >= 0 && st == CLPAR_OK; j--) {
        /* the model's first module computes no input gradient (only what W needs) */
        clpar_module_io io = {.rows = R,
                              .x = act[j],
                              .y = act[j + 1],
                              .dy = dys[j],
                              .dx = j > 0      ? dys[j - 1]
                                    : l->p > 0 ? k->din
                                               : NULL,
                              .slot = s};
        st = clpar_module_backward_input(l->mods[j], &k->env, &io);
        char name[48];
        snprintf(name, sizeof name, "B m%d L%d", m, l->l0 + j);
        if (st == CLPAR_OK) st = span_close(k, &start, "backward", name);
    }
    if (st == CLPAR_OK && l->p > 0)
        st = send(k, k->bwd_out, m, k->din, R * l->in_w, start, "send grad");
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

/* With ZeRO the tied table's copies are summed before the reduction across replicas (each
 * replica keeps a different slice of each stage, so after it the copies would not line up):
 * the module holding this rank's copy, whose bucket starts only then; -1 for none. */
static int tied_first(const clpar_mesh *M, const mrank *k) {
    if (!k->tie_ar || !M->cfg.zero || M->cfg.dp == 1) return -1;
    return k->lay.p == 0 ? 0 : k->lay.nl - 1;
}

/* Sums the two copies of the tied table (the first and the last stage's) on both. */
static clpar_status sum_tied(mrank *k) {
    cl_event e;
    TRY(rank_marker(k, &e));
    clpar_status st =
        clpar_allreduce_run_at(k->tie_ar, k->tie_index, k->grads, k->tie_off, k->tie_len, e);
    clReleaseEvent(e);
    k->bytes_pp += 2 * k->tie_len * sizeof(float);
    return st;
}

/* Starts reducing module j's gradient bucket across replicas once `ready` has passed. */
static clpar_status begin_reduction(mrank *k, int j, cl_event ready) {
    const clpar_module *mod = k->lay.mods[j];
    return clpar_allreduce_begin(k->dp_ar, k->dp_slot, k->grads, mod->param_offset,
                                 mod->param_count, ready);
}

/* W: the weight gradients of micro-batches m .. m + count - 1, one call per module over all
 * their rows (gathered into one buffer when there are several). The step's last W starts
 * each module's gradient reduction across replicas as soon as that module is done. */
static clpar_status op_weights(clpar_mesh *M, mrank *k, int m, int count, int nmicro, int final) {
    const clpar_mesh_config *c = &M->cfg;
    const rank_layout *l = &k->lay;
    float beta = k->first_w ? 0.0f : 1.0f;
    k->first_w = 0;
    cl_event start;
    TRY(rank_marker(k, &start));
    clpar_status st = CLPAR_OK;
    for (int j = l->nl - 1; j >= 0 && st == CLPAR_OK; j--) {
        clpar_module *mod = l->mods[j];
        clpar_module_io io = {.beta = beta};
        size_t R, g0;
        if (count > 1 && clpar_module_has_state(mod)) {
            /* it keeps its inner activations per micro-batch: one W each */
            for (int i = m; i < m + count && st == CLPAR_OK; i++) {
                int s = i % l->nslots;
                micro_rows(M, k, i, nmicro, &io.rows, &g0);
                io.x = k->act[s * (l->nl + 1) + j];
                io.dy = k->dys[s * l->nl + j];
                io.slot = s;
                io.beta = i == m ? beta : 1.0f;
                st = clpar_module_backward_weights(mod, &k->env, &io);
            }
            io.rows = 0; /* done */
        } else if (count == 1) {
            io.slot = m % l->nslots;
            int s = m % l->nslots;
            micro_rows(M, k, m, nmicro, &io.rows, &g0);
            io.x = k->act[s * (l->nl + 1) + j];
            io.dy = k->dys[s * l->nl + j];
        } else {
            for (int i = m; i < m + count && st == CLPAR_OK; i++) {
                int s = i % l->nslots;
                micro_rows(M, k, i, nmicro, &R, &g0);
                st = copy_rows(k, k->wx, io.rows, k->act[s * (l->nl + 1) + j], R, mod->in_width);
                if (st == CLPAR_OK)
                    st = copy_rows(k, k->wdy, io.rows, k->dys[s * l->nl + j], R, mod->dy_width);
                io.rows += R;
            }
            io.x = k->wx;
            io.dy = k->wdy;
        }
        if (st == CLPAR_OK && io.rows) st = clpar_module_backward_weights(mod, &k->env, &io);
        cl_event ready = NULL;
        if (st == CLPAR_OK) st = rank_marker(k, &ready);
        if (st == CLPAR_OK && final && c->dp > 1 && j != tied_first(M, k))
            st = begin_reduction(k, j, ready);
        if (ready && final && j == 0) {
            if (k->bwd_end) clReleaseEvent(k->bwd_end);
            k->bwd_end = ready;
        } else if (ready) {
            clReleaseEvent(ready);
        }
        char name[48];
        if (count == 1)
            snprintf(name, sizeof name, "W m%d L%d", m, l->l0 + j);
        else
            snprintf(name, sizeof name, "W m%d-%d L%d", m, m + count - 1, l->l0 + j);
        if (st == CLPAR_OK) st = span_close(k, &start, "weights", name);
    }
    clReleaseEvent(start);
    TRY(st);
    CL_CHECK(clFlush(k->dev->compute), "clFlush(compute)");
    return CLPAR_OK;
}

/* ---- a rank's whole step ---- */

static clpar_status zero_grads(mrank *k, cl_event *ev) {
    float zero = 0.0f;
    CL_CHECK(clEnqueueFillBuffer(k->dev->compute, k->grads, &zero, sizeof zero, 0,
                                 k->lay.nparams * sizeof(float), 0, NULL, ev),
             "clEnqueueFillBuffer(gradients)");
    return CLPAR_OK;
}

typedef struct {
    const mrank *k;
    int d0;   /* the process's first replica: every process counts its own (they are equal) */
    int zero; /* ZeRO: every rank counts its own slice instead */
    double sum;
} norm_job;

/* A parameter's share of the global norm, counted once in the process: on its first replica
 * (all replicas hold the same reduced gradients, so every process finds the same norm), and for a
 * tensor every shard holds whole (a layer norm, an embedding) on shard 0 only. */
static void add_squares(const clpar_param *p, void *user) {
    norm_job *j = user;
    size_t groups = p->groups > 1 ? p->groups : 1, count = p->rows * p->cols * groups;
    bool whole = count == p->shape[0] * p->shape[1];
    if (!count || p->copy || (!j->zero && j->k->lay.d != j->d0) || (whole && j->k->lay.t != 0))
        return;
    size_t a = p->offset, b = p->offset + count; /* with ZeRO only the slice is reduced */
    if (a < j->k->zlo) a = j->k->zlo;
    if (b > j->k->zhi) b = j->k->zhi;
    for (size_t i = a; i < b; i++) {
        double g = j->k->host_grads[i];
        j->sum += g * g;
    }
}

/* torch.nn.utils.clip_grad_norm_ over the whole model: every rank adds its share of the
 * squared norm, all meet, each sums the shares in rank order (the same on every rank) and
 * scales its gradients by clip / (norm + 1e-6) when that is below 1. */
static clpar_status clip_gradients(clpar_mesh *M, mrank *k) {
    size_t lo = k->zlo, n = k->zhi - k->zlo;
    if (n)
        TRY(clpar_device_read(k->dev, k->host_grads + lo, k->grads, lo * sizeof(float),
                              n * sizeof(float)));
    int zero = M->cfg.zero && M->cfg.dp > 1;
    norm_job j = {k, M->home, zero, 0.0};
    for (int m = 0; m < k->lay.nl; m++)
        clpar_module_each_param(k->lay.mods[m], add_squares, &j);
    M->norm_parts[k->rank] = j.sum;
    TRY(clpar_barrier_wait(&M->clip_meet));
    double total = 0;
    for (int r = M->lo; r < M->hi; r++)
        total += M->norm_parts[r];
    /* with ZeRO the slices of every process make up the norm (the first rank's thread asks
     * the others while the rest wait) */
    int across = zero || !M->whole; /* the parts that make the norm are in several processes */
    if (across && k->rank == M->lo) TRY(clpar_world_sum_double(M->world, &total));
    if (across && k->rank == M->lo) M->norm_total = total;
    TRY(clpar_barrier_wait(&M->clip_meet)); /* the parts are rewritten next step */
    if (across) total = M->norm_total;
    double norm = sqrt(total), coef = M->cfg.clip / (norm + 1e-6);
    if (k->rank == M->lo) M->stats.grad_norm = norm;
    if (coef >= 1.0 || n == 0) return CLPAR_OK;
    return clpar_op_scale(k->dev, k->grads, lo, (float)coef, n, NULL);
}

static clpar_status run_rank(clpar_mesh *M, mrank *k) {
    const clpar_mesh_config *c = &M->cfg;
    const rank_layout *l = &k->lay;
    k->first_w = 1;
    int nmicro;
    if (M->eval) {
        if (l->d != M->home) return CLPAR_OK; /* one replica evaluates */
        nmicro = (int)((M->rows + M->micro_cap - 1) / M->micro_cap);
        for (int m = 0; m < nmicro; m++)
            TRY(op_forward(M, k, m, nmicro));
        return clpar_device_finish(k->dev);
    }
    size_t s0, n;
    clpar_mesh_replica_rows(c, M->rows, l->d, &s0, &n);
    nmicro = n < (size_t)c->micro ? (int)n : c->micro;
    if (nmicro == 0) {
        /* a replica without rows this step still takes part in the reduction */
        cl_event ev;
        TRY(zero_grads(k, &ev));
        if (k->bwd_end) clReleaseEvent(k->bwd_end);
        k->bwd_end = ev;
        for (int j = l->nl - 1; j >= 0 && c->dp > 1; j--)
            if (j != tied_first(M, k)) TRY(begin_reduction(k, j, ev));
    } else {
        int slots, group;
        int nops = schedule_ops(c->schedule, l->p, c->pp, nmicro, k->ops, &slots, &group);
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
    int tied = tied_first(M, k);
    if (tied >= 0) { /* ZeRO: the copies summed first, then their bucket joins the others */
        TRY(sum_tied(k));
        cl_event ev;
        TRY(rank_marker(k, &ev));
        clpar_status st = begin_reduction(k, tied, ev);
        clReleaseEvent(ev);
        TRY(st);
    }
    if (c->dp > 1) {
        cl_event a, b;
        TRY(rank_marker(k, &a));
        clpar_status st = CLPAR_OK;
        for (int j = l->nl - 1; j >= 0 && st == CLPAR_OK; j--) {
            const clpar_module *mod = l->mods[j];
            st = clpar_allreduce_bucket(k->dp_ar, k->dp_slot, k->grads, mod->param_offset,
                                        mod->param_count);
            size_t a0 = mod->param_offset > k->zlo ? mod->param_offset : k->zlo;
            size_t b0 = mod->param_offset + mod->param_count;
            if (b0 > k->zhi) b0 = k->zhi; /* with ZeRO only the slice comes back */
            k->bytes_dp += (mod->param_count + (b0 > a0 ? b0 - a0 : 0)) * sizeof(float);
        }
        if (st == CLPAR_OK) st = rank_marker(k, &b);
        if (st != CLPAR_OK) {
            clReleaseEvent(a);
            return st;
        }
        TRY(rank_record(k, a, b, 0, "reduction", "allreduce grads"));
    }
    if (k->tie_ar && tied_first(M, k) < 0) TRY(sum_tied(k)); /* replicas' already reduced */
    if (c->clip > 0) TRY(clip_gradients(M, k));
    cl_event a, b;
    TRY(rank_marker(k, &a));
    clpar_status st = clpar_optim_step(k->opt, k->zparams ? k->zparams : k->params,
                                       k->zgrads ? k->zgrads : k->grads, NULL);
    if (st == CLPAR_OK) st = rank_marker(k, &b);
    if (st != CLPAR_OK) {
        clReleaseEvent(a);
        return st;
    }
    TRY(rank_record(k, a, b, 0, "optimizer", "optimizer"));
    if (c->zero && c->dp > 1) { /* every replica's updated slice to every replica */
        TRY(rank_marker(k, &a));
        st = clpar_allreduce_gather_slices(k->dp_ar, k->dp_slot, k->params, a);
        if (st == CLPAR_OK) st = rank_marker(k, &b);
        if (st != CLPAR_OK) {
            clReleaseEvent(a);
            return st;
        }
        k->bytes_dp += (k->lay.nparams + k->zhi - k->zlo) * sizeof(float);
        TRY(rank_record(k, a, b, 0, "reduction", "gather params"));
    }
    return clpar_device_finish(k->dev);
}

static clpar_status rank_task(void *ctx, int r) {
    clpar_mesh *M = ctx;
    clpar_status st = run_rank(M, &M->ranks[M->lo + r]);
    if (st != CLPAR_OK) clpar_sync_abort(M->sync);
    return st;
}

static void reset_after_failure(clpar_mesh *M) {
    for (int r = M->lo; r < M->hi; r++) {
        mrank *k = &M->ranks[r];
        clFinish(k->dev->compute);
        clFinish(k->dev->transfer);
    }
    for (int i = 0; i < M->cfg.dp * M->cfg.pp && M->cfg.tp > 1; i++)
        if (M->tp_ars[i]) clpar_allreduce_reset(M->tp_ars[i]); /* NULL: another process's */
    for (int i = 0; i < M->cfg.pp * M->cfg.tp && M->cfg.dp > 1; i++)
        if (M->dp_ars[i]) clpar_allreduce_reset(M->dp_ars[i]);
    for (int i = 0; i < M->nchans; i++)
        clpar_channel_reset(M->chans[i]);
    for (int i = 0; i < M->ntie; i++)
        if (M->tie_ars[i]) clpar_allreduce_reset(M->tie_ars[i]);
    clpar_sync_reset(M->sync);
    for (int r = M->lo; r < M->hi; r++) /* a failed step traces nothing */
        rank_drop_events(&M->ranks[r]);
}

clpar_status mesh_run(clpar_mesh *M) {
    clpar_status st =
        M->hi - M->lo == 1 ? rank_task(M, 0) : clpar_workers_run(M->workers, rank_task, M);
    if (st != CLPAR_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", clpar_last_error_raw());
        reset_after_failure(M);
        return clpar_error(st, "%s", msg);
    }
    return CLPAR_OK;
}

/* ---- the public step ---- */

static clpar_status ensure_rows(clpar_mesh *M, size_t rows) {
    clpar_model_spec model = mesh_model(&M->cfg);
    float *a = realloc(M->row_loss, rows * clpar_model_positions(&model) * sizeof(float));
    if (a) M->row_loss = a;
    float *b = realloc(M->eval_out, (rows * kept_outputs(M) + 1) * sizeof(float));
    if (b) M->eval_out = b;
    if (!a || !b) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    return CLPAR_OK;
}

/* The mean loss of rows [0, rows): a step's over every replica (this process's rows summed,
 * then the processes' sums in process order), an evaluation's from the one replica that ran. */
static clpar_status mean_loss(const clpar_mesh *M, size_t rows, int eval, double *loss) {
    clpar_model_spec model = mesh_model(&M->cfg);
    size_t per = clpar_model_positions(&model);
    double sum = 0.0;
    for (int d = eval ? 0 : M->d0; d < (eval ? 1 : M->d1); d++) {
        size_t a = 0, n = rows; /* the replica's rows, where its last stage is this process's */
        if (!eval && !mesh_local(M, RANK_OF(&M->cfg, d, M->cfg.pp - 1, 0))) continue;
        if (!eval) clpar_mesh_replica_rows(&M->cfg, rows, d, &a, &n);
        for (size_t i = a * per; i < (a + n) * per; i++)
            sum += M->row_loss[i];
    }
    if (!eval) TRY(clpar_world_sum_double(M->world, &sum));
    size_t out = clpar_model_output_width(&model);
    *loss = sum / (double)(rows * per) / (M->cfg.loss == CLPAR_LOSS_MSE ? (double)out : 1.0);
    return CLPAR_OK;
}

void clpar_mesh_local_rows(const clpar_mesh *M, size_t rows, size_t *first, size_t *count) {
    size_t a, n, b, m; /* the process's replicas are consecutive, and so are their rows */
    clpar_mesh_replica_rows(&M->cfg, rows, M->d0, &a, &n);
    clpar_mesh_replica_rows(&M->cfg, rows, M->d1 - 1, &b, &m);
    *first = a;
    *count = b + m - a;
}

clpar_status clpar_mesh_step(clpar_mesh *M, const void *x, const int *labels, const float *targets,
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
    TRY(mesh_run(M));
    TRY(mean_loss(M, rows, 0, loss));
    if (c->dp > 1) {
        for (int p = 0; p < c->pp; p++)
            for (int t = 0; t < c->tp; t++) {
                cl_ulong ends[CLPAR_MAX_RANKS];
                if (!M->dp_ars[p * c->tp + t]) continue; /* no member here */
                for (int d = M->d0; d < M->d1; d++) {
                    if (!mesh_local(M, RANK_OF(c, d, p, t))) continue;
                    cl_event e = M->ranks[RANK_OF(c, d, p, t)].bwd_end;
                    cl_ulong *end = &ends[M->ranks[RANK_OF(c, d, p, t)].dp_slot];
                    *end = 0;
                    if (e)
                        CL_CHECK(clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_END, sizeof *end,
                                                         end, NULL),
                                 "clGetEventProfilingInfo(backward's end)");
                }
                double win, exp;
                TRY(clpar_allreduce_collect(M->dp_ars[p * c->tp + t], ends, &win, &exp));
                M->stats.reduce_window_ns += win;
                M->stats.reduce_exposed_ns += exp;
            }
    }
    TRY(mesh_collect_events(M));
    M->stats.steps++;
    return CLPAR_OK;
}

clpar_status clpar_mesh_evaluate(clpar_mesh *M, const void *x, const int *labels,
                                 const float *targets, size_t rows, double *loss,
                                 double *accuracy) {
    if (rows == 0) return clpar_error(CLPAR_EINVAL, "nothing to evaluate");
    TRY(ensure_rows(M, rows));
    M->x = x, M->labels = labels, M->targets = targets, M->rows = rows, M->eval = 1;
    clpar_status st = mesh_run(M);
    for (int r = M->lo; r < M->hi; r++) /* evaluation leaves nothing to trace */
        rank_drop_events(&M->ranks[r]);
    TRY(st);
    if (!M->whole) { /* the evaluating replica's last stage has the results: to every process */
        clpar_model_spec model = mesh_model(&M->cfg);
        int n = M->n / clpar_world_size(M->world);
        int root = RANK_OF(&M->cfg, M->home, M->cfg.pp - 1, 0) / n;
        TRY(clpar_world_bcast(M->world, root, M->row_loss,
                              rows * clpar_model_positions(&model) * sizeof(float)));
        TRY(clpar_world_bcast(M->world, root, M->eval_out, rows * kept_outputs(M) * sizeof(float)));
    }
    if (loss) *loss = 0.0;
    if (loss && (labels || targets)) TRY(mean_loss(M, rows, 1, loss));
    if (accuracy) { /* an MLP's: the most likely class is the label */
        size_t out = kept_outputs(M), correct = 0;
        for (size_t i = 0; labels && out && i < rows; i++) {
            const float *z = M->eval_out + i * out;
            size_t best = 0;
            for (size_t j = 1; j < out; j++)
                if (z[j] > z[best]) best = j;
            correct += (int)best == labels[i];
        }
        *accuracy = labels && out ? (double)correct / (double)rows : 0.0;
    }
    return CLPAR_OK;
}

clpar_status clpar_mesh_predict(clpar_mesh *M, const float *x, size_t rows, float *out) {
    TRY(clpar_mesh_evaluate(M, x, NULL, NULL, rows, NULL, NULL));
    memcpy(out, M->eval_out, rows * kept_outputs(M) * sizeof(float));
    return CLPAR_OK;
}
