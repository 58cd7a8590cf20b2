/* Building a mesh: each rank's layout (its modules and buffers, plan.c) allocated on its
 * device, the collectives and channels between ranks, and freeing it all again. */
#include "mesh_internal.h"
#include "../comm/world.h"

#include <stdlib.h>
#include <string.h>

static void free_rank(mrank *k) {
    clpar_device *d = k->dev;
    if (!d) return;
    clFinish(d->compute);
    clFinish(d->transfer);
    rank_drop_events(k);
    free(k->ev);
    if (k->bwd_end) clReleaseEvent(k->bwd_end);
    clpar_optim_free(k->opt);
    if (k->zparams) clReleaseMemObject(k->zparams);
    if (k->zgrads) clReleaseMemObject(k->zgrads);
    clpar_device_release(d, k->params);
    clpar_device_release(d, k->grads);
    for (int i = 0; k->act && i < k->lay.nslots * (k->lay.nl + 1); i++)
        clpar_device_release(d, k->act[i]);
    for (int i = 0; k->labels && i < k->lay.nslots; i++)
        clpar_device_release(d, k->labels[i]);
    for (int i = 0; k->targets && i < k->lay.nslots; i++)
        clpar_device_release(d, k->targets[i]);
    for (int i = 0; k->dys && i < k->lay.nslots * k->lay.nl; i++)
        clpar_device_release(d, k->dys[i]);
    clpar_device_release(d, k->din);
    clpar_device_release(d, k->wx);
    clpar_device_release(d, k->wdy);
    clpar_device_release(d, k->scratch);
    clpar_device_release(d, k->lossbuf);
    free(k->act);
    free(k->dys);
    free(k->labels);
    free(k->targets);
    free(k->ops);
    free(k->host_grads);
    clpar_module_free(k->loss);
    layout_free(&k->lay);
}

void clpar_mesh_free(clpar_mesh *M) {
    if (!M) return;
    clpar_workers_free(M->workers);
    for (int r = M->lo; M->ranks && r < M->hi; r++)
        free_rank(&M->ranks[r]);
    for (int i = 0; M->tp_ars && i < M->cfg.dp * M->cfg.pp; i++)
        clpar_allreduce_free(M->tp_ars[i]);
    for (int i = 0; M->tp_ags && i < M->cfg.dp * M->cfg.pp; i++) /* either may have failed */
        clpar_allgather_free(M->tp_ags[i]);
    for (int i = 0; M->dp_ars && i < M->cfg.pp * M->cfg.tp; i++)
        clpar_allreduce_free(M->dp_ars[i]);
    for (int i = 0; M->chans && i < M->nchans; i++)
        clpar_channel_free(M->chans[i]);
    for (int i = 0; M->tie_ars && i < M->ntie; i++)
        clpar_allreduce_free(M->tie_ars[i]);
    free(M->tie_ars);
    clpar_sync_free(M->sync);
    free(M->tp_ars);
    free(M->tp_ags);
    free(M->dp_ars);
    free(M->chans);
    free(M->ranks);
    free(M->row_loss);
    free(M->eval_out);
    free(M->trace);
    free(M->norm_parts);
    world_group_free(M->procs);
    world_p2p_free(M->p2p);
    for (int i = 0; M->dp_procs && i < M->cfg.pp * M->cfg.tp; i++)
        world_group_free(M->dp_procs[i]);
    for (int i = 0; M->tie_procs && i < M->cfg.dp * M->cfg.tp; i++)
        world_group_free(M->tie_procs[i]);
    for (int i = 0; M->tp_procs && i < 2 * M->cfg.dp * M->cfg.pp; i++)
        world_group_free(M->tp_procs[i]);
    free(M->tp_procs);
    free(M->dp_procs);
    free(M->tie_procs);
    free(M);
}

/* A buffer of `floats` floats (at least one), counted in *account. */
static clpar_status alloc_counted(mrank *k, size_t floats, cl_mem *m, size_t *account) {
    size_t bytes = (floats ? floats : 1) * sizeof(float);
    TRY(clpar_device_alloc(k->dev, bytes, m));
    *account += bytes;
    return CLPAR_OK;
}

typedef struct {
    size_t *ranges;
    int n;
} range_list;

static void add_vector(const clpar_param *p, void *user) {
    range_list *r = user;
    size_t count = p->rows * p->cols * (p->groups > 1 ? p->groups : 1);
    if (p->ndim != 1 || !count) return;
    r->ranges[2 * r->n] = p->offset;
    r->ranges[2 * r->n + 1] = p->offset + count;
    r->n++;
}

static void count_param(const clpar_param *p, void *user) {
    (*(int *)user)++;
}

/* nanoGPT's AdamW: no weight decay on the 1-D tensors (biases, layer norms); in the
 * optimizer's own numbering, from the start of the rank's ZeRO slice */
static clpar_status set_no_decay(mrank *k) {
    int n = 0;
    for (int j = 0; j < k->lay.nl; j++)
        clpar_module_each_param(k->lay.mods[j], count_param, &n);
    range_list r = {malloc((size_t)(2 * n + 2) * sizeof(size_t)), 0};
    if (!r.ranges) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    for (int j = 0; j < k->lay.nl; j++)
        clpar_module_each_param(k->lay.mods[j], add_vector, &r);
    int kept = 0;
    for (int i = 0; i < r.n; i++) {
        size_t a = r.ranges[2 * i] > k->zlo ? r.ranges[2 * i] : k->zlo;
        size_t b = r.ranges[2 * i + 1] < k->zhi ? r.ranges[2 * i + 1] : k->zhi;
        if (a >= b) continue;
        r.ranges[2 * kept] = a - k->zlo;
        r.ranges[2 * kept + 1] = b - k->zlo;
        kept++;
    }
    r.n = kept;
    clpar_status st = clpar_optim_set_no_decay(k->opt, r.ranges, r.n);
    free(r.ranges);
    return st;
}

/* (Re)makes the sub-buffers of a ZeRO slice over the rank's parameters and gradients. */
static clpar_status slice_views(mrank *k) {
    if (k->zparams) clReleaseMemObject(k->zparams);
    if (k->zgrads) clReleaseMemObject(k->zgrads);
    k->zparams = k->zgrads = NULL;
    if (k->zhi == k->zlo) return CLPAR_OK; /* a model too small to give every replica a slice */
    cl_buffer_region region = {k->zlo * sizeof(float), (k->zhi - k->zlo) * sizeof(float)};
    cl_int err;
    k->zparams = clCreateSubBuffer(k->params, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION,
                                   &region, &err);
    CL_CHECK(err, "clCreateSubBuffer(parameters)");
    k->zgrads =
        clCreateSubBuffer(k->grads, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &region, &err);
    CL_CHECK(err, "clCreateSubBuffer(gradients)");
    return CLPAR_OK;
}

/* The parameters the rank updates: with ZeRO its replica's slice, as sub-buffers of its
 * parameters and gradients, else all of them. */
static clpar_status zero_slice(clpar_mesh *M, mrank *k) {
    const clpar_mesh_config *c = &M->cfg;
    k->zlo = 0;
    k->zhi = k->lay.nparams;
    if (!c->zero || c->dp == 1) return CLPAR_OK;
    size_t bounds[CLPAR_MAX_RANKS + 1];
    plan_zero_bounds(k->lay.nparams, c->dp, bounds);
    k->zlo = bounds[k->lay.d];
    k->zhi = bounds[k->lay.d + 1];
    return slice_views(k);
}

/* The device's GEMM workspace for the rank's products, at once: training then never grows
 * it, and it is what --dry-run predicts. */
static clpar_status reserve_gemms(mrank *k) {
    clpar_gemm_shape *s;
    int n;
    TRY(layout_gemm_list(&k->lay, &s, &n));
    clpar_status st = clpar_gemm_reserve(k->dev, s, n);
    free(s);
    return st;
}

static clpar_status build_rank(clpar_mesh *M, mrank *k, const float *params) {
    const clpar_mesh_config *c = &M->cfg;
    TRY(clpar_op_warmup(k->dev));
    TRY(layout_rank(c, k->rank, &k->lay));
    const rank_layout *l = &k->lay;
    const size_t f = sizeof(float), cap = l->cap;
    int last = l->p == c->pp - 1;
    clpar_model_spec model = mesh_model(c);
    if (last) TRY(clpar_model_loss(&model, c->loss, &k->loss));
    k->ops = malloc(3 * (size_t)c->micro * sizeof *k->ops);
    if (!k->ops) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    TRY(alloc_counted(k, l->nparams, &k->params, &k->param_bytes));
    TRY(alloc_counted(k, l->nparams, &k->grads, &k->param_bytes));
    TRY(zero_slice(M, k));
    size_t before = clpar_device_allocated_bytes(k->dev);
    TRY(clpar_optim_init(k->dev, &c->optim, k->zhi - k->zlo, &k->opt));
    k->param_bytes += clpar_device_allocated_bytes(k->dev) - before;
    k->act = calloc((size_t)(l->nslots * (l->nl + 1)), sizeof *k->act);
    k->dys = calloc((size_t)(l->nslots * l->nl), sizeof *k->dys);
    k->labels = last ? calloc((size_t)l->nslots, sizeof *k->labels) : NULL;
    k->targets = last ? calloc((size_t)l->nslots, sizeof *k->targets) : NULL;
    if (!k->act || !k->dys || (last && (!k->labels || !k->targets)))
        return clpar_error(CLPAR_ENOMEM, "out of host memory");
    for (int s = 0; s < l->nslots; s++) {
        for (int j = 0; j <= l->nl; j++)
            TRY(alloc_counted(k, cap * l->act_w[j], &k->act[s * (l->nl + 1) + j], &k->act_bytes));
        for (int j = 0; j < l->nl; j++)
            TRY(alloc_counted(k, cap * l->mods[j]->dy_width, &k->dys[s * l->nl + j],
                              &k->act_bytes));
        if (last) {
            TRY(clpar_device_alloc(k->dev, cap * l->labels_w * sizeof(cl_int), &k->labels[s]));
            k->act_bytes += cap * l->labels_w * sizeof(cl_int);
            TRY(alloc_counted(k, cap * l->targets_w, &k->targets[s], &k->act_bytes));
        }
    }
    for (int j = 0; j < l->nl; j++) {
        TRY(clpar_module_reserve(l->mods[j], k->dev, l->nslots, cap));
        k->act_bytes += clpar_module_state_bytes(l->mods[j], cap) * (size_t)l->nslots;
    }
    if (l->in_w) TRY(alloc_counted(k, cap * l->in_w, &k->din, &k->act_bytes));
    if (l->group > 1) {
        TRY(alloc_counted(k, (size_t)l->group * cap * l->wx_w, &k->wx, &k->act_bytes));
        TRY(alloc_counted(k, (size_t)l->group * cap * l->wdy_w, &k->wdy, &k->act_bytes));
    }
    TRY(alloc_counted(k, l->scratch, &k->scratch, &k->act_bytes));
    TRY(reserve_gemms(k));
    TRY(alloc_counted(k, cap * (l->loss_w ? l->loss_w : 1), &k->lossbuf, &k->act_bytes));
    if (c->optim.decay_matrices_only) TRY(set_no_decay(k));
    if (c->clip > 0 && !(k->host_grads = malloc((l->nparams ? l->nparams : 1) * f)))
        return clpar_error(CLPAR_ENOMEM, "out of host memory");
    k->tp = (clpar_tp_comm){l->t, c->tp, mesh_tp_all_reduce, mesh_tp_all_gather, k};
    k->env = (clpar_module_env){k->dev, k->params, k->grads, c->tp > 1 ? &k->tp : NULL, k->scratch};
    float *local = malloc((l->nparams ? l->nparams : 1) * f);
    if (!local) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    mesh_map_params(k, (float *)params, local, CLPAR_FULL_TO_LOCAL);
    clpar_status st = clpar_device_write(k->dev, k->params, 0, l->nparams * f, local);
    free(local);
    TRY(st);
    float zero = 0.0f;
    CL_CHECK(
        clEnqueueFillBuffer(k->dev->compute, k->grads, &zero, f, 0, l->nparams * f, 0, NULL, NULL),
        "clEnqueueFillBuffer");
    /* the device's profiling clock against the host's, for traces */
    cl_event e;
    TRY(rank_marker(k, &e));
    cl_int err = clWaitForEvents(1, &e);
    double now = host_ns();
    cl_ulong end = 0;
    if (err == CL_SUCCESS)
        err = clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL);
    clReleaseEvent(e);
    CL_CHECK(err, "clWaitForEvents");
    k->clock_offset_ns = now - (double)end;
    return CLPAR_OK;
}

/* Every communicator between processes the mesh needs, in the same order on every process:
 * the collectives of building come first, so that a local failure later cannot leave another
 * process waiting in one. */
static clpar_status join_processes(clpar_mesh *M) {
    const clpar_mesh_config *c = &M->cfg;
    if (clpar_world_size(M->world) == 1) return CLPAR_OK;
    M->dp_procs = calloc((size_t)(c->pp * c->tp), sizeof *M->dp_procs);
    M->tie_procs = calloc((size_t)(c->dp * c->tp), sizeof *M->tie_procs);
    M->tp_procs = calloc((size_t)(2 * c->dp * c->pp), sizeof *M->tp_procs);
    if (!M->dp_procs || !M->tie_procs || !M->tp_procs)
        return clpar_error(CLPAR_ENOMEM, "out of host memory");
    for (int d = 0; d < c->dp && c->tp > 1; d++) /* an all-reduce and an all-gather each */
        for (int p = 0; p < c->pp; p++) {
            int members = 0;
            for (int t = 0; t < c->tp; t++)
                members += mesh_local(M, RANK_OF(c, d, p, t));
            for (int i = 0; i < 2; i++)
                TRY(world_group_split(M->world, members > 0,
                                      &M->tp_procs[2 * (d * c->pp + p) + i]));
        }
    for (int p = 0; p < c->pp && c->dp > 1; p++)
        for (int t = 0; t < c->tp; t++) {
            int members = 0;
            for (int d = 0; d < c->dp; d++)
                members += mesh_local(M, RANK_OF(c, d, p, t));
            TRY(world_group_split(M->world, members > 0, &M->dp_procs[p * c->tp + t]));
            size_t nparams = 0; /* the same in every replica */
            for (int d = M->d0; d < M->d1; d++)
                if (mesh_local(M, RANK_OF(c, d, p, t)))
                    nparams = M->ranks[RANK_OF(c, d, p, t)].lay.nparams;
            /* ZeRO's updated slices travel through a second region */
            TRY(world_group_share(M->dp_procs[p * c->tp + t], nparams, c->zero ? 2 : 1));
        }
    for (int d = 0; d < c->dp && c->pp > 1 && c->gpt.layers > 0; d++)
        for (int t = 0; t < c->tp; t++) {
            int here =
                mesh_local(M, RANK_OF(c, d, 0, t)) + mesh_local(M, RANK_OF(c, d, c->pp - 1, t));
            TRY(world_group_split(M->world, here > 0, &M->tie_procs[d * c->tp + t]));
        }
    if (!M->whole) TRY(world_p2p_init(M->world, &M->p2p));
    if (c->zero || !M->whole) TRY(world_group_init(M->world, &M->procs));
    return CLPAR_OK;
}

/* *buf's contents moved into a buffer over mem (which then replaces it). */
static clpar_status move_into(mrank *k, float *mem, cl_mem *buf) {
    size_t bytes = (k->lay.nparams ? k->lay.nparams : 1) * sizeof(float);
    cl_mem moved;
    TRY(clpar_device_alloc_at(k->dev, mem, bytes, &moved));
    cl_int err = clEnqueueCopyBuffer(k->dev->compute, *buf, moved, 0, 0, bytes, 0, NULL, NULL);
    clpar_status st = err == CL_SUCCESS ? clpar_device_finish(k->dev)
                                        : clpar_cl_error(err, "clEnqueueCopyBuffer(in place)");
    if (st != CLPAR_OK) {
        clpar_device_release(k->dev, moved);
        return st;
    }
    clpar_device_release(k->dev, *buf); /* nothing uses it any more */
    *buf = moved;
    return CLPAR_OK;
}

/* A replica alone in its process, on a CPU device, among processes that share a host: its
 * gradients move into the memory the processes sum in, so that reducing them copies nothing
 * (allreduce_set_in_place), and with ZeRO its parameters into the memory the updated slices
 * are gathered through (allreduce_set_params_in_place). Devices with memory of their own
 * would compute in host memory: they keep theirs and the copies. */
static clpar_status buffers_in_place(mrank *k, clpar_allreduce *ar) {
    /* CLPAR_IN_PLACE=off keeps the copies, as devices with memory of their own make them */
    if (!(k->dev->info->type & CL_DEVICE_TYPE_CPU) ||
        clpar_runtime_get_config(clpar_device_runtime(k->dev))->copy_in_place)
        return CLPAR_OK;
    float *mem = allreduce_in_place_memory(ar), *pmem = allreduce_params_memory(ar);
    if (mem) {
        TRY(move_into(k, mem, &k->grads));
        k->env.grads = k->grads;
        TRY(allreduce_set_in_place(ar, k->grads));
    }
    if (pmem) {
        TRY(move_into(k, pmem, &k->params));
        k->env.params = k->params;
        TRY(allreduce_set_params_in_place(ar, k->params));
    }
    return (mem || pmem) && k->zparams ? slice_views(k) : CLPAR_OK; /* ZeRO's, over them */
}

static clpar_status build_links(clpar_mesh *M) {
    const clpar_mesh_config *c = &M->cfg;
    clpar_device *group[CLPAR_MAX_RANKS];
    M->tp_ars = calloc((size_t)(c->dp * c->pp), sizeof *M->tp_ars);
    M->tp_ags = calloc((size_t)(c->dp * c->pp), sizeof *M->tp_ags);
    M->dp_ars = calloc((size_t)(c->pp * c->tp), sizeof *M->dp_ars);
    M->chans = calloc((size_t)(2 * c->dp * c->pp * c->tp), sizeof *M->chans);
    if (!M->tp_ars || !M->tp_ags || !M->dp_ars || !M->chans)
        return clpar_error(CLPAR_ENOMEM, "out of host memory");
    int starts[CLPAR_MAX_LAYERS + 1];
    plan_stage_starts(c, starts);
    for (int d = M->d0; d < M->d1; d++)
        for (int p = 0; p < c->pp && c->tp > 1; p++) {
            int members = 0; /* this process's shards of the group (consecutive) */
            for (int t = 0; t < c->tp; t++) {
                mrank *k = &M->ranks[RANK_OF(c, d, p, t)];
                if (!mesh_local(M, k->rank)) continue;
                k->tp_slot = members;
                group[members++] = k->dev;
            }
            if (!members) continue;
            /* the widest activation the stage's collectives carry, from shard 0's layout */
            rank_layout l0;
            TRY(layout_rank(c, RANK_OF(c, d, p, 0), &l0));
            size_t widest = 0;
            for (int j = 0; j <= l0.nl; j++)
                if (l0.act_w[j] > widest) widest = l0.act_w[j];
            for (int j = 0; j < l0.nl; j++)
                if (l0.mods[j]->dy_width > widest) widest = l0.mods[j]->dy_width;
            layout_free(&l0);
            size_t count = M->micro_cap * widest;
            int g = d * c->pp + p;
            world_group *procs = M->tp_procs ? M->tp_procs[2 * g] : NULL;
            if (M->tp_procs) M->tp_procs[2 * g] = NULL;
            TRY(allreduce_init_group(group, members, count, M->sync, procs, &M->tp_ars[g]));
            procs = M->tp_procs ? M->tp_procs[2 * g + 1] : NULL;
            if (M->tp_procs) M->tp_procs[2 * g + 1] = NULL;
            TRY(allgather_init_group(group, members, count, M->sync, procs, &M->tp_ags[g]));
            for (int t = 0; t < c->tp; t++)
                if (mesh_local(M, RANK_OF(c, d, p, t))) {
                    M->ranks[RANK_OF(c, d, p, t)].tp_ar = M->tp_ars[g];
                    M->ranks[RANK_OF(c, d, p, t)].tp_ag = M->tp_ags[g];
                }
        }
    for (int p = 0; p < c->pp && c->dp > 1; p++)
        for (int t = 0; t < c->tp; t++) {
            /* this process's members of the group (every process takes part in making it) */
            int members = 0;
            size_t nparams = 0;
            mrank *only = NULL;
            for (int d = M->d0; d < M->d1; d++) {
                mrank *k = &M->ranks[RANK_OF(c, d, p, t)];
                if (!mesh_local(M, k->rank)) continue;
                k->dp_slot = members;
                group[members++] = k->dev;
                nparams = k->lay.nparams;
                only = k;
            }
            int g = p * c->tp + t;
            if (members) {
                world_group *procs = M->dp_procs ? M->dp_procs[g] : NULL;
                if (M->dp_procs) M->dp_procs[g] = NULL;
                TRY(allreduce_init_group(group, members, nparams, M->sync, procs, &M->dp_ars[g]));
            }
            for (int d = M->d0; d < M->d1; d++)
                if (mesh_local(M, RANK_OF(c, d, p, t)))
                    M->ranks[RANK_OF(c, d, p, t)].dp_ar = M->dp_ars[g];
            if (c->zero && members) {
                size_t bounds[CLPAR_MAX_RANKS + 1];
                plan_zero_bounds(nparams, c->dp, bounds);
                /* the group's processes (those holding members, in order) and their members,
                 * consecutive replicas, uneven when replicas are cut between processes */
                int first[CLPAR_MAX_RANKS + 1], procs = 0, per = M->n / clpar_world_size(M->world);
                for (int d = 0; d < c->dp; d++) {
                    int q = RANK_OF(c, d, p, t) / per;
                    if (d == 0 || q != RANK_OF(c, d - 1, p, t) / per) first[procs++] = d;
                }
                first[procs] = c->dp;
                if (procs > 1) TRY(allreduce_set_owners(M->dp_ars[g], first));
                TRY(clpar_allreduce_set_slices(M->dp_ars[g], bounds));
            }
            if (members == 1) TRY(buffers_in_place(only, M->dp_ars[g]));
        }
    /* a tensor held by two stages (a GPT's token table: the embeddings' and the head's copy)
     * has its gradients summed between them */
    if (c->pp > 1 && c->gpt.layers > 0) {
        M->tie_ars = calloc((size_t)(c->dp * c->tp), sizeof *M->tie_ars);
        if (!M->tie_ars) return clpar_error(CLPAR_ENOMEM, "out of host memory");
        for (int d = 0; d < c->dp; d++) /* every process takes part in making each */
            for (int t = 0; t < c->tp; t++) {
                mrank *ends[2] = {&M->ranks[RANK_OF(c, d, 0, t)],
                                  &M->ranks[RANK_OF(c, d, c->pp - 1, t)]};
                clpar_device *pair[2];
                int here = 0;
                for (int e = 0; e < 2; e++)
                    if (mesh_local(M, ends[e]->rank)) pair[here++] = ends[e]->dev;
                size_t len = c->gpt.vocab * c->gpt.embd;
                if (!here) continue;
                world_group *procs = M->tie_procs ? M->tie_procs[d * c->tp + t] : NULL;
                if (M->tie_procs) M->tie_procs[d * c->tp + t] = NULL;
                TRY(allreduce_init_group(pair, here, len, M->sync, procs, &M->tie_ars[M->ntie]));
                for (int e = 0, i = 0; e < 2; e++) {
                    mrank *k = ends[e];
                    if (!mesh_local(M, k->rank)) continue;
                    k->tie_ar = M->tie_ars[M->ntie];
                    k->tie_index = i++; /* the first stage's copy first, as in one process */
                    k->tie_len = len;
                    k->tie_off = e ? k->lay.mods[k->lay.nl - 1]->params[0].offset
                                   : k->lay.mods[0]->params[0].offset;
                }
                M->ntie++;
            }
    }
    int slots = c->micro > 2 ? c->micro : 2;
    for (int d = M->d0; d < M->d1; d++)
        for (int p = 0; p + 1 < c->pp; p++)
            for (int t = 0; t < c->tp; t++) {
                mrank *a = &M->ranks[RANK_OF(c, d, p, t)], *b = &M->ranks[RANK_OF(c, d, p + 1, t)];
                int la = mesh_local(M, a->rank), lb = mesh_local(M, b->rank);
                if (!la && !lb) continue;
                /* the boundary: a's output, b's input */
                size_t count = M->micro_cap * (la ? a->lay.act_w[a->lay.nl] : b->lay.act_w[0]);
                if (la && lb) {
                    TRY(clpar_channel_init(a->dev, b->dev, slots, count, M->sync,
                                           &M->chans[M->nchans]));
                    a->fwd_out = b->fwd_in = M->chans[M->nchans++];
                    TRY(clpar_channel_init(b->dev, a->dev, slots, count, M->sync,
                                           &M->chans[M->nchans]));
                    b->bwd_out = a->bwd_in = M->chans[M->nchans++];
                    continue;
                }
                /* the stage boundary crosses processes: this process holds one end of each */
                long id = 2L * ((d * (c->pp - 1) + p) * c->tp + t);
                mrank *k = la ? a : b;
                int peer = (la ? b->rank : a->rank) / (M->n / clpar_world_size(M->world));
                TRY(clpar_channel_init_remote(k->dev, la, peer, id, slots, count, M->p2p,
                                              &M->chans[M->nchans]));
                if (la)
                    a->fwd_out = M->chans[M->nchans++];
                else
                    b->fwd_in = M->chans[M->nchans++];
                TRY(clpar_channel_init_remote(k->dev, lb, peer, id + 1, slots, count, M->p2p,
                                              &M->chans[M->nchans]));
                if (la)
                    a->bwd_in = M->chans[M->nchans++];
                else
                    b->bwd_out = M->chans[M->nchans++];
            }
    return CLPAR_OK;
}

clpar_status clpar_mesh_init(clpar_device *const *devs, const clpar_mesh_config *cfg,
                             const float *params, clpar_mesh **out) {
    return clpar_mesh_init_world(NULL, devs, cfg, params, out);
}

/* This process's ranks: P processes hold n / P consecutive ranks each, whole tensor-parallel
 * groups; whole replicas when pp tp divides that, else stages cross processes. */
static clpar_status place_process(clpar_mesh *M) {
    const clpar_mesh_config *c = &M->cfg;
    int P = clpar_world_size(M->world), me = clpar_world_rank(M->world);
    TRY(clpar_mesh_check_processes(c, P));
    int per = M->n / P, replica = c->pp * c->tp;
    M->lo = me * per;
    M->hi = M->lo + per;
    M->d0 = M->lo / replica;
    M->d1 = (M->hi - 1) / replica + 1;
    M->whole = per % replica == 0;
    M->home = M->whole ? M->d0 : 0;
    return CLPAR_OK;
}

clpar_status clpar_mesh_init_world(clpar_world *world, clpar_device *const *devs,
                                   const clpar_mesh_config *cfg, const float *params,
                                   clpar_mesh **out) {
    *out = NULL;
    /* allocating first keeps the whole body in this function (no partial inlining of an
     * early return), where the fault sweep counts its allocations by name */
    clpar_mesh *M = calloc(1, sizeof *M);
    if (!M) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    clpar_status st = clpar_mesh_validate(cfg);
    M->cfg = *cfg;
    M->world = world;
    const clpar_mesh_config *c = &M->cfg;
    M->n = c->dp * c->pp * c->tp;
    if (st == CLPAR_OK) st = place_process(M);
    if (st != CLPAR_OK) {
        free(M);
        return st;
    }
    /* every process must choose the same schedule: it sees its own devices only, so all
     * decide on the smallest memory of any rank's device */
    uint64_t memory[CLPAR_MAX_RANKS], least = UINT64_MAX;
    for (int r = M->lo; r < M->hi; r++)
        if (devs[r - M->lo]->info->global_mem < least) least = devs[r - M->lo]->info->global_mem;
    if (clpar_world_size(world) > 1) st = clpar_world_min_u64(world, &least);
    for (int r = 0; r < M->n; r++)
        memory[r] = r >= M->lo && r < M->hi && clpar_world_size(world) == 1
                        ? devs[r - M->lo]->info->global_mem
                        : least;
    clpar_schedule schedule;
    if (st == CLPAR_OK) st = clpar_mesh_choose_schedule(c, memory, &schedule);
    if (st != CLPAR_OK) {
        free(M);
        return st;
    }
    M->cfg.schedule = schedule;
    clpar_model_spec model = mesh_model(c);
    M->nparams = clpar_model_param_count(&model);
    M->micro_cap = plan_micro_cap(c);
    M->ranks = calloc((size_t)M->n, sizeof *M->ranks);
    M->norm_parts = calloc((size_t)M->n, sizeof *M->norm_parts);
    st = M->ranks && M->norm_parts ? clpar_sync_init(&M->sync)
                                   : clpar_error(CLPAR_ENOMEM, "out of host memory");
    for (int r = 0; M->ranks && r < M->n; r++)
        M->ranks[r].rank = r; /* other processes' too: their numbers place the links */
    if (st == CLPAR_OK) clpar_barrier_init(&M->clip_meet, M->sync, M->hi - M->lo);
    for (int r = M->lo; r < M->hi && st == CLPAR_OK; r++) {
        mrank *k = &M->ranks[r];
        k->rank = r;
        k->dev = devs[r - M->lo];
        st = build_rank(M, k, params);
    }
    /* the links below are collective across processes: all go on, or none */
    if (clpar_world_size(world) > 1) st = clpar_world_agree(world, st, NULL);
    if (st == CLPAR_OK) st = join_processes(M);
    if (st == CLPAR_OK) st = build_links(M); /* nothing collective: all agree after */
    if (clpar_world_size(world) > 1) st = clpar_world_agree(world, st, NULL);
    if (st == CLPAR_OK && M->hi - M->lo > 1) st = clpar_workers_init(M->hi - M->lo, &M->workers);
    if (st != CLPAR_OK) {
        clpar_mesh_free(M);
        return st;
    }
    M->stats.bubble_ideal = (double)(c->pp - 1) / (double)(c->micro + c->pp - 1);
    *out = M;
    return CLPAR_OK;
}

void clpar_mesh_local_replicas(const clpar_mesh *M, int *first, int *count) {
    *first = M->d0;
    *count = M->d1 - M->d0;
}

void clpar_mesh_local_ranks(const clpar_mesh *M, int *first, int *count) {
    *first = M->lo;
    *count = M->hi - M->lo;
}

int clpar_mesh_home_replica(const clpar_mesh *M) {
    return M->home;
}

const clpar_mesh_config *clpar_mesh_get_config(const clpar_mesh *M) {
    return &M->cfg;
}

void clpar_mesh_rank_info(const clpar_mesh *M, int rank, clpar_rank_info *info) {
    const mrank *k = &M->ranks[rank];
    info->replica = k->lay.d;
    info->stage = k->lay.p;
    info->shard = k->lay.t;
    info->first_layer = k->lay.l0;
    info->layers = k->lay.nl;
    info->param_count = k->lay.nparams;
    info->param_bytes = k->param_bytes;
    info->activation_bytes = k->act_bytes;
    info->activation_slots = k->lay.nslots;
    info->workspace_bytes = k->dev ? clpar_device_workspace_bytes(k->dev) : 0;
}
