/* Shared by the training tests: small data sets and a run of N steps with a given
 * strategy, returning the final weights. */
#ifndef CLPAR_TEST_TRAIN_COMMON_H
#define CLPAR_TEST_TRAIN_COMMON_H

#include "common.h"

#include <string.h>

/* A classification set (in features, out classes) or, with out_targets, regression. */
static inline clpar_dataset t_dataset(size_t n, size_t in, size_t out, int regression,
                                      uint64_t seed) {
    clpar_dataset ds = {.n = n, .in = in, .out = out, .x = malloc(n * in * 4)};
    t_fill(ds.x, n * in, seed, -1, 1);
    if (regression) {
        ds.targets = malloc(n * out * 4);
        t_fill(ds.targets, n * out, seed + 1, -1, 1);
    } else {
        ds.labels = malloc(n * sizeof(int));
        for (size_t i = 0; i < n; i++)
            ds.labels[i] = (int)((i * 7 + seed) % out);
    }
    return ds;
}

/* Trains `steps` steps and writes rank 0's weights to params. When check_replicas is set,
 * asserts after every step that every rank holds bit-identical weights. */
static inline void t_train(const clpar_trainer_config *cfg, const clpar_dataset *ds, long steps,
                           float *params, int check_replicas) {
    clpar_trainer *tr;
    T_OK(clpar_trainer_init(t_runtime(), cfg, ds, &tr));
    size_t n = clpar_mlp_shape_param_count(&cfg->shape);
    float *other = malloc(n * 4);
    for (long s = 0; s < steps; s++) {
        clpar_step_info info;
        T_OK(clpar_trainer_step(tr, &info));
        cr_assert(info.loss == info.loss, "loss is NaN at step %ld", s);
        if (!check_replicas) continue;
        T_OK(clpar_trainer_get_rank_params(tr, 0, params));
        for (int r = 1; r < cfg->dp; r++) {
            T_OK(clpar_trainer_get_rank_params(tr, r, other));
            cr_assert(!memcmp(params, other, n * 4), "rank %d differs from rank 0 after step %ld",
                      r, s + 1);
        }
    }
    T_OK(clpar_trainer_get_params(tr, params));
    free(other);
    clpar_trainer_free(tr);
}

/* Trains a and b for `steps` steps each and returns the relative L2 distance of b's weights
 * from a's; b's replicas are checked after every step when check_b is set. */
static inline double t_train_compare(const clpar_trainer_config *a, const clpar_trainer_config *b,
                                     const clpar_dataset *ds, long steps, int check_b) {
    size_t n = clpar_mlp_shape_param_count(&a->shape);
    float *ra = malloc(n * 4), *rb = malloc(n * 4);
    t_train(a, ds, steps, ra, 0);
    t_train(b, ds, steps, rb, check_b);
    double e = t_rel_l2(rb, ra, n);
    free(ra);
    free(rb);
    return e;
}

#endif
