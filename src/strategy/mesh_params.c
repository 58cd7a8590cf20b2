/* Parameters, gradients and optimizer state between the ranks' shards and the full model's
 * flat layout: each module says which block of each full tensor its shard holds. */
#include "mesh_internal.h"

#include <stdlib.h>

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

static clpar_status gather(clpar_mesh *M, int replica, float *full, int which) {
    if (replica < 0 || replica >= M->cfg.dp)
        return clpar_error(CLPAR_EINVAL, "no replica %d of %d", replica, M->cfg.dp);
    if (replica < M->d0 || replica >= M->d1)
        return clpar_error(CLPAR_EINVAL,
                           "replica %d lives in another process (this one holds %d..%d)", replica,
                           M->d0, M->d1 - 1);
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

clpar_status clpar_mesh_get_optim_state(clpar_mesh *M, int i, float *state) {
    return gather(M, M->d0, state, i);
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
        clpar_status st = clpar_device_write(k->dev, buf, 0, n * sizeof(float), local);
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
