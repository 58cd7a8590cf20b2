/* A training run: validation of the configuration, devices, data order, steps, evaluation
 * and saving. */
#include "clpar/trainer.h"
#include "clpar/safetensors.h"
#include "../runtime/internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_RANKS 256

struct clpar_trainer {
    clpar_trainer_config cfg;
    const clpar_dataset *train;
    clpar_device *devs[MAX_RANKS];
    int ndevs;
    clpar_mesh *mesh;
    size_t *order;
    long step, epoch;
    size_t pos; /* next sample of the epoch */
    float *bx, *btargets;
    int *blabels;
    size_t nparams;
};

static clpar_status validate(const clpar_trainer_config *c, const clpar_dataset *ds) {
    const clpar_mlp_shape *s = &c->shape;
    if (c->batch < 1) return clpar_error(CLPAR_EINVAL, "--batch must be at least 1");
    if (c->dp < 1) return clpar_error(CLPAR_EINVAL, "--dp must be at least 1 (got %d)", c->dp);
    if (c->pp < 1) return clpar_error(CLPAR_EINVAL, "--pp must be at least 1 (got %d)", c->pp);
    if (c->tp < 1) return clpar_error(CLPAR_EINVAL, "--tp must be at least 1 (got %d)", c->tp);
    if (c->accum < 1)
        return clpar_error(CLPAR_EINVAL, "--accum must be at least 1 (got %d)", c->accum);
    if (c->micro_batches < 1)
        return clpar_error(CLPAR_EINVAL, "--micro-batches must be at least 1 (got %d)",
                           c->micro_batches);
    long ranks = (long)c->dp * c->pp * c->tp;
    if (ranks > MAX_RANKS)
        return clpar_error(CLPAR_EINVAL, "a mesh of %ld ranks exceeds the limit of %d", ranks,
                           MAX_RANKS);
    if ((size_t)c->dp > c->batch)
        return clpar_error(CLPAR_EINVAL, "--dp %d is larger than --batch %zu", c->dp, c->batch);
    if ((size_t)c->accum * (size_t)c->micro_batches > c->batch)
        return clpar_error(CLPAR_EINVAL, "%s %d is larger than --batch %zu",
                           c->micro_batches > 1 ? "--micro-batches" : "--accum",
                           c->accum * c->micro_batches, c->batch);
    if (c->ndevices < ranks)
        return clpar_error(CLPAR_EINVAL,
                           "%ld ranks (dp %d x pp %d x tp %d) need %ld devices, but the device "
                           "spec names %d (repeat indices, as in 0,0, to put several ranks on "
                           "one device)",
                           ranks, c->dp, c->pp, c->tp, ranks, c->ndevices);
    if (s->sizes[0] != ds->in)
        return clpar_error(CLPAR_ESHAPE, "--model takes %zu inputs but the data has %zu",
                           s->sizes[0], ds->in);
    if (s->sizes[s->nlayers] != ds->out)
        return clpar_error(CLPAR_ESHAPE, "--model gives %zu outputs but the data has %zu %s",
                           s->sizes[s->nlayers], ds->out, ds->labels ? "classes" : "targets");
    if (c->loss == CLPAR_LOSS_XENT && !ds->labels)
        return clpar_error(CLPAR_EINVAL, "--loss xent needs class labels; this data is "
                                         "regression (use --loss mse)");
    if (c->loss == CLPAR_LOSS_MSE && !ds->targets)
        return clpar_error(CLPAR_EINVAL,
                           "--loss mse needs regression targets; this data has class labels "
                           "(use --loss xent)");
    if (c->optim.lr < 0 || c->optim.momentum < 0 || c->optim.weight_decay < 0)
        return clpar_error(CLPAR_EINVAL, "--lr, --momentum and --weight-decay must be >= 0");
    return CLPAR_OK;
}

void clpar_trainer_free(clpar_trainer *tr) {
    if (!tr) return;
    clpar_mesh_free(tr->mesh);
    for (int i = 0; i < tr->ndevs; i++)
        clpar_device_free(tr->devs[i]);
    free(tr->order);
    free(tr->bx);
    free(tr->btargets);
    free(tr->blabels);
    free(tr);
}

clpar_status clpar_trainer_init(clpar_runtime *rt, const clpar_trainer_config *user,
                                const clpar_dataset *train, clpar_trainer **out) {
    *out = NULL;
    clpar_trainer_config normalized = *user, *cfg = &normalized;
    /* pipeline and tensor parallelism are off unless asked for */
    if (!cfg->pp) cfg->pp = 1;
    if (!cfg->tp) cfg->tp = 1;
    if (!cfg->micro_batches) cfg->micro_batches = 1;
    TRY(validate(cfg, train));
    clpar_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    tr->cfg = *cfg;
    tr->cfg.devices = NULL;
    tr->train = train;
    tr->nparams = clpar_mlp_shape_param_count(&cfg->shape);
    size_t b = cfg->batch < train->n ? cfg->batch : train->n;
    tr->cfg.batch = cfg->batch;
    tr->order = malloc(train->n * sizeof *tr->order);
    tr->bx = malloc(b * train->in * sizeof(float));
    tr->blabels = train->labels ? malloc(b * sizeof(int)) : NULL;
    tr->btargets = train->targets ? malloc(b * train->out * sizeof(float)) : NULL;
    clpar_status st = CLPAR_OK;
    int ranks = cfg->dp * cfg->pp * cfg->tp;
    clpar_mesh_config mc;
    memset(&mc, 0, sizeof mc);
    mc.shape = cfg->shape;
    mc.loss = cfg->loss;
    mc.optim = cfg->optim;
    mc.reduce = cfg->reduce;
    mc.dp = cfg->dp;
    mc.pp = cfg->pp;
    mc.tp = cfg->tp;
    mc.micro = cfg->accum * cfg->micro_batches;
    mc.schedule = cfg->schedule;
    mc.max_batch = cfg->batch < train->n ? cfg->batch : train->n;
    int given = 0;
    for (int p = 0; p < CLPAR_MAX_LAYERS; p++)
        given |= cfg->stage_layers[p];
    if (given)
        memcpy(mc.stage_layers, cfg->stage_layers, sizeof mc.stage_layers);
    else
        st = clpar_stages_balance(&cfg->shape, cfg->pp, mc.stage_layers);
    if (st == CLPAR_OK) st = clpar_mesh_validate(&mc);
    /* fail on the device's limits before touching host memory of the same size */
    for (int r = 0; r < ranks && st == CLPAR_OK; r++) {
        const clpar_device_info *di = clpar_runtime_device_info(rt, cfg->devices[r]);
        if (!di)
            st = clpar_error(CLPAR_ENODEV, "no device %d", cfg->devices[r]);
        else if ((uint64_t)tr->nparams * sizeof(float) / (uint64_t)(cfg->tp * cfg->pp) >
                 di->max_alloc)
            st = clpar_error(CLPAR_EDEVMEM,
                             "device %d (%s): cannot allocate %zu bytes for the parameters "
                             "(max allocation %llu)",
                             di->index, di->name, tr->nparams * sizeof(float) / (size_t)cfg->tp,
                             (unsigned long long)di->max_alloc);
    }
    float *params = st == CLPAR_OK ? malloc(tr->nparams * sizeof(float)) : NULL;
    if (st == CLPAR_OK && (!tr->order || !tr->bx || !params || (train->labels && !tr->blabels) ||
                           (train->targets && !tr->btargets)))
        st = clpar_error(CLPAR_ENOMEM, "out of host memory");
    if (st == CLPAR_OK) {
        if (cfg->init_path)
            st = clpar_model_load(cfg->init_path, &cfg->shape, params);
        else
            clpar_mlp_init_params(params, &cfg->shape, cfg->seed);
    }
    for (int r = 0; r < ranks && st == CLPAR_OK; r++) {
        st = clpar_device_init(rt, cfg->devices[r], &tr->devs[r]);
        if (st == CLPAR_OK) tr->ndevs++;
    }
    if (st == CLPAR_OK) st = clpar_mesh_init(tr->devs, &mc, params, &tr->mesh);
    free(params);
    if (st != CLPAR_OK) {
        clpar_trainer_free(tr);
        return st;
    }
    clpar_dataset_order(tr->order, train->n, cfg->shuffle, cfg->seed, 0);
    *out = tr;
    return CLPAR_OK;
}

long clpar_trainer_steps_per_epoch(const clpar_trainer *tr) {
    return (long)((tr->train->n + tr->cfg.batch - 1) / tr->cfg.batch);
}

clpar_status clpar_trainer_step(clpar_trainer *tr, clpar_step_info *info) {
    const clpar_dataset *ds = tr->train;
    size_t rows = ds->n - tr->pos < tr->cfg.batch ? ds->n - tr->pos : tr->cfg.batch;
    clpar_dataset_gather(ds, tr->order, tr->pos, rows, tr->bx, tr->blabels, tr->btargets);
    double loss;
    TRY(clpar_mesh_step(tr->mesh, tr->bx, tr->blabels, tr->btargets, rows, &loss));
    info->step = ++tr->step;
    info->epoch = tr->epoch;
    info->rows = rows;
    info->loss = loss;
    tr->pos += rows;
    info->epoch_done = tr->pos >= ds->n;
    if (info->epoch_done) {
        tr->pos = 0;
        tr->epoch++;
        clpar_dataset_order(tr->order, ds->n, tr->cfg.shuffle, tr->cfg.seed, tr->epoch);
    }
    return CLPAR_OK;
}

clpar_status clpar_trainer_evaluate(clpar_trainer *tr, const clpar_dataset *ds, double *loss,
                                    double *accuracy) {
    const clpar_mlp_shape *s = &tr->cfg.shape;
    if (ds->in != s->sizes[0] || ds->out != s->sizes[s->nlayers])
        return clpar_error(CLPAR_ESHAPE, "evaluation data does not fit the model");
    return clpar_mesh_evaluate(tr->mesh, ds->x, ds->labels, ds->targets, ds->n, loss, accuracy);
}

clpar_status clpar_trainer_get_params(clpar_trainer *tr, float *params) {
    return clpar_mesh_get_params(tr->mesh, 0, params);
}

clpar_status clpar_trainer_get_rank_params(clpar_trainer *tr, int rank, float *params) {
    return clpar_mesh_get_params(tr->mesh, rank, params);
}

clpar_status clpar_trainer_save(clpar_trainer *tr, const char *path) {
    float *params = malloc(tr->nparams * sizeof(float));
    if (!params) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    clpar_status st = clpar_trainer_get_params(tr, params);
    if (st == CLPAR_OK) st = clpar_model_save(path, &tr->cfg.shape, params);
    free(params);
    return st;
}

void clpar_trainer_get_stats(const clpar_trainer *tr, clpar_mesh_stats *stats) {
    clpar_mesh_get_stats(tr->mesh, stats);
}

clpar_mesh *clpar_trainer_mesh(const clpar_trainer *tr) {
    return tr->mesh;
}
