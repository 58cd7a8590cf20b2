/* The strategies level. Data parallelism: N replicas of the whole model, one per rank, each
 * on the device the caller names (ranks may share a device or span platforms). A global
 * batch is split into N shards (sizes differing by at most one), each shard into `accum`
 * micro-batches processed one after another with gradients accumulated; per-layer gradient
 * buckets are all-reduced as soon as backward produces them, while backward continues on
 * earlier layers; then every replica applies the same update. */
#ifndef CLPAR_STRATEGY_H
#define CLPAR_STRATEGY_H

#include "clpar/comm.h"
#include "clpar/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CLPAR_REDUCE_MEAN, /* gradient of the global batch's mean loss (PyTorch DDP) */
    CLPAR_REDUCE_SUM   /* sum of every micro-batch's own mean-loss gradient (the seed's) */
} clpar_reduce_mode;

typedef struct {
    clpar_mlp_shape shape;
    clpar_loss_kind loss;
    clpar_optim_config optim;
    clpar_reduce_mode reduce;
    int ranks;        /* replicas, >= 1 */
    int accum;        /* micro-batches per shard, >= 1 */
    size_t max_batch; /* largest global batch a step will be given */
} clpar_dp_config;

typedef struct clpar_dp clpar_dp;

/* Builds cfg->ranks replicas on devs[0 .. ranks), all starting from params (param_count
 * floats, copied). The caller keeps the devices alive and owns *out (clpar_dp_free). */
clpar_status clpar_dp_init(clpar_device *const *devs, const clpar_dp_config *cfg,
                           const float *params, clpar_dp **out);
void clpar_dp_free(clpar_dp *dp);

/* One optimizer step on a global batch of rows samples: x (rows, in), and labels (rows) or
 * targets (rows, out) for the loss in use. Returns once every replica has updated, with
 * the batch's mean loss in *loss. Rows may be fewer than cfg->ranks x accum: ranks and
 * micro-batches left without rows contribute zero gradient. */
clpar_status clpar_dp_step(clpar_dp *dp, const float *x, const int *labels, const float *targets,
                           size_t rows, double *loss);

/* Mean loss and (for cross-entropy) accuracy of rank 0's model over rows samples. */
clpar_status clpar_dp_evaluate(clpar_dp *dp, const float *x, const int *labels,
                               const float *targets, size_t rows, double *loss, double *accuracy);

/* Blocking copy of rank's parameters (param_count floats). */
clpar_status clpar_dp_get_params(clpar_dp *dp, int rank, float *params);
int clpar_dp_ranks(const clpar_dp *dp);

typedef struct {
    long steps;
    double reduce_window_ns;  /* time the gradient reductions spanned, summed over ranks */
    double reduce_exposed_ns; /* of which after backward had finished on that rank */
} clpar_dp_stats;
void clpar_dp_get_stats(const clpar_dp *dp, clpar_dp_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
