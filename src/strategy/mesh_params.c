/* Parameters, gradients and optimizer state between the ranks' shards and the full model's
 * flat layout: each module says which block of each full tensor its shard holds. */
#include "mesh_internal.h"
#include "../comm/world.h"

#include <stdlib.h>
#include <string.h>

void mesh_map_params(const mrank *k, float *full, float *local, clpar_param_copy direction) {
    for (int j = 0; j < k->lay.nl; j++)
        clpar_module_map_params(k->lay.mods[j], full, local, direction);
}

/* Which buffer of a rank: -2 parameters, -1 gradients, i >= 0 optimizer state i. */
static cl_mem rank_buffer(const mrank *k, int which) {
    if (which == -2) return k->params;
    if (which == -1) return k->grads;
    return clpar_optim_state(k->opt, which);
}

/* A replica whose stages live in several processes: each rank's buffer, in rank order, from
 * the process that holds it to every process, mapped into the full layout as in one process
 * (a tied tensor's copies overwrite each other the same way). Collective. */
static clpar_status gather_across(clpar_mesh *M, int replica, float *full, int which) {
    const clpar_mesh_config *c = &M->cfg;
    int per = M->n / clpar_world_size(M->world);
    for (int p = 0; p < c->pp; p++)
        for (int t = 0; t < c->tp; t++) {
            int r = RANK_OF(c, replica, p, t), here = mesh_local(M, r);
            mrank other;
            memset(&other, 0, sizeof other);
            mrank *k = here ? &M->ranks[r] : &other;
            if (!here) TRY(layout_rank(c, r, &other.lay));
            size_t n = k->lay.nparams;
            float *local = malloc((n ? n : 1) * sizeof(float));
            clpar_status st = local ? CLPAR_OK : clpar_error(CLPAR_ENOMEM, "out of host memory");
            cl_mem buf = here ? rank_buffer(k, which) : NULL;
            if (st == CLPAR_OK && here && !buf)
                st = clpar_error(CLPAR_EINVAL, "the optimizer has no state %d", which);
            if (st == CLPAR_OK && here)
                st = clpar_device_read(k->dev, local, buf, 0, n * sizeof(float));
            /* a failure here leaves the others waiting: the step's caller ends the run */
            if (st == CLPAR_OK) st = clpar_world_bcast(M->world, r / per, local, n * sizeof(float));
            if (st == CLPAR_OK) mesh_map_params(k, full, local, CLPAR_LOCAL_TO_FULL);
            free(local);
            if (!here) layout_free(&other.lay);
            TRY(st);
        }
    return CLPAR_OK;
}

static clpar_status gather(clpar_mesh *M, int replica, float *full, int which) {
    if (replica < 0 || replica >= M->cfg.dp)
        return clpar_error(CLPAR_EINVAL, "no replica %d of %d", replica, M->cfg.dp);
    if (M->whole && (replica < M->d0 || replica >= M->d1))
        return clpar_error(CLPAR_EINVAL,
                           "replica %d lives in another process (this one holds %d..%d)", replica,
                           M->d0, M->d1 - 1);
    if (!M->whole) return gather_across(M, replica, full, which);
    for (int r = M->lo; r < M->hi; r++) {
        mrank *k = &M->ranks[r];
        if (k->lay.d != replica) continue;
        size_t n = k->lay.nparams;
        float *local = malloc((n ? n : 1) * sizeof(float));
        if (!local) return clpar_error(CLPAR_ENOMEM, "out of host memory");
        cl_mem buf = rank_buffer(k, which);
        clpar_status st = buf ? clpar_device_read(k->dev, local, buf, 0, n * sizeof(float))
                              : clpar_error(CLPAR_EINVAL, "the optimizer has no state %d", which);
        if (st == CLPAR_OK) mesh_map_params(k, full, local, CLPAR_LOCAL_TO_FULL);
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

static int zero_on(const clpar_mesh *M) {
    return M->cfg.zero && M->cfg.dp > 1;
}

/* The first replica whose rank (d, p, t) process j or a later one holds (dp: none). */
static int first_held(const clpar_mesh_config *c, int p, int t, int j, int per) {
    int d = 0;
    while (d < c->dp && RANK_OF(c, d, p, t) / per < j)
        d++;
    return d;
}

/* ZeRO: optimizer state i assembled from every replica's slice, this process's and the
 * others' (a collective: every process calls it). */
static clpar_status gather_slices(clpar_mesh *M, int i, float *full) {
    const clpar_mesh_config *c = &M->cfg;
    int P = clpar_world_size(M->world), per = M->n / P;
    for (int p = 0; p < c->pp; p++)
        for (int t = 0; t < c->tp; t++) {
            /* the stage's layout: a rank of it here, or worked out (none of its ranks here) */
            mrank other, *k0 = NULL;
            memset(&other, 0, sizeof other);
            for (int d = 0; d < c->dp && !k0; d++)
                if (mesh_local(M, RANK_OF(c, d, p, t))) k0 = &M->ranks[RANK_OF(c, d, p, t)];
            if (!k0) {
                TRY(layout_rank(c, RANK_OF(c, 0, p, t), &other.lay));
                k0 = &other;
            }
            size_t n = k0->lay.nparams, bounds[CLPAR_MAX_RANKS + 1], starts[CLPAR_MAX_RANKS + 1];
            float *local = malloc((n ? n : 1) * sizeof(float));
            clpar_status st = local ? CLPAR_OK : clpar_error(CLPAR_ENOMEM, "out of host memory");
            for (int d = 0; d < c->dp && st == CLPAR_OK; d++) {
                mrank *k = &M->ranks[RANK_OF(c, d, p, t)];
                if (!mesh_local(M, k->rank)) continue;
                cl_mem buf = clpar_optim_state(k->opt, i);
                if (!buf) st = clpar_error(CLPAR_EINVAL, "the optimizer has no state %d", i);
                if (st == CLPAR_OK && k->zhi > k->zlo)
                    st = clpar_device_read(k->dev, local + k->zlo, buf, 0,
                                           (k->zhi - k->zlo) * sizeof(float));
            }
            plan_zero_bounds(n, c->dp, bounds);
            for (int j = 0; j <= P; j++)
                starts[j] = bounds[first_held(c, p, t, j, per)];
            if (st == CLPAR_OK) st = world_group_gather_parts(M->procs, local, starts);
            if (st == CLPAR_OK) mesh_map_params(k0, full, local, CLPAR_LOCAL_TO_FULL);
            free(local);
            if (k0 == &other) layout_free(&other.lay);
            TRY(st);
        }
    return CLPAR_OK;
}

clpar_status clpar_mesh_get_optim_state(clpar_mesh *M, int i, float *state) {
    if (zero_on(M)) return gather_slices(M, i, state);
    return gather(M, M->home, state, i);
}

static clpar_status scatter(clpar_mesh *M, const float *full, int which) {
    for (int r = M->lo; r < M->hi; r++) {
        mrank *k = &M->ranks[r];
        cl_mem buf = rank_buffer(k, which);
        if (!buf) return clpar_error(CLPAR_EINVAL, "the optimizer has no state %d", which);
        size_t n = k->lay.nparams;
        float *local = malloc((n ? n : 1) * sizeof(float));
        if (!local) return clpar_error(CLPAR_ENOMEM, "out of host memory");
        mesh_map_params(k, (float *)full, local, CLPAR_FULL_TO_LOCAL);
        /* the optimizer holds the rank's slice only (all of it without ZeRO) */
        size_t a = which >= 0 ? k->zlo : 0, b = which >= 0 ? k->zhi : n;
        clpar_status st =
            b > a ? clpar_device_write(k->dev, buf, 0, (b - a) * sizeof(float), local + a)
                  : CLPAR_OK;
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
    return clpar_optim_steps_taken(M->ranks[M->lo].opt);
}

void clpar_mesh_set_lr(clpar_mesh *M, float lr) {
    for (int r = M->lo; r < M->hi; r++)
        clpar_optim_set_lr(M->ranks[r].opt, lr);
}

void clpar_mesh_set_optim_steps(clpar_mesh *M, long steps) {
    for (int r = M->lo; r < M->hi; r++)
        clpar_optim_set_steps(M->ranks[r].opt, steps);
}
