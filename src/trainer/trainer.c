/* A training run: validation of the configuration, devices, data order, steps, evaluation
 * and saving (checkpoints: checkpoint.c). */
#include "trainer_internal.h"
#include "clpar/safetensors.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static clpar_status validate(const clpar_trainer_config *c, const clpar_dataset *ds) {
    clpar_model_spec m = trainer_model(c);
    if (c->batch < 1) return clpar_error(CLPAR_EINVAL, CLPAR_FIELD("batch") " must be at least 1");
    clpar_mesh_config spread = {.dp = c->dp, .pp = c->pp, .tp = c->tp, .zero = c->zero};
    TRY(clpar_mesh_check_sizes(&spread));
    if (c->accum < 1)
        return clpar_error(CLPAR_EINVAL, CLPAR_FIELD("accum") " must be at least 1 (got %d)",
                           c->accum);
    if (c->micro_batches < 1)
        return clpar_error(CLPAR_EINVAL,
                           CLPAR_FIELD("micro_batches") " must be at least 1 (got %d)",
                           c->micro_batches);
    long ranks = (long)c->dp * c->pp * c->tp;
    if (ranks > CLPAR_MAX_RANKS)
        return clpar_error(CLPAR_EINVAL, "a mesh of %ld ranks exceeds the limit of %d", ranks,
                           CLPAR_MAX_RANKS);
    if ((size_t)c->dp > c->batch)
        return clpar_error(CLPAR_EINVAL,
                           CLPAR_FIELD("dp") " %d is larger than " CLPAR_FIELD("batch") " %zu",
                           c->dp, c->batch);
    if ((size_t)c->accum * (size_t)c->micro_batches > c->batch)
        return clpar_error(CLPAR_EINVAL, "%s %d is larger than " CLPAR_FIELD("batch") " %zu",
                           c->micro_batches > 1 ? CLPAR_FIELD("micro_batches")
                                                : CLPAR_FIELD("accum"),
                           c->accum * c->micro_batches, c->batch);
    int P = clpar_world_size(c->world);
    TRY(clpar_mesh_check_processes(&spread, P));
    if (c->ndevices < ranks / P)
        return clpar_error(CLPAR_EINVAL,
                           "%ld ranks (dp %d x pp %d x tp %d)%s need %ld devices, but the device "
                           "spec names %d (repeat indices, as in 0,0, to put several ranks on "
                           "one device)",
                           ranks, c->dp, c->pp, c->tp, P > 1 ? " over the processes" : "",
                           ranks / P, c->ndevices);
    if (clpar_model_is_gpt(&m)) TRY(clpar_gpt_config_check(&c->gpt));
    if (clpar_model_is_gpt(&m) && !ds->tokens)
        return clpar_error(CLPAR_EINVAL, "a GPT trains on text (token data)");
    if (!clpar_model_is_gpt(&m) && ds->tokens)
        return clpar_error(CLPAR_EINVAL, "text data trains a GPT, not an MLP");
    if (clpar_model_input_width(&m) != ds->in)
        return clpar_error(CLPAR_ESHAPE,
                           CLPAR_FIELD("shape") " takes %zu inputs but the data has %zu",
                           clpar_model_input_width(&m), ds->in);
    if (clpar_model_classes(&m) != ds->out)
        return clpar_error(CLPAR_ESHAPE,
                           CLPAR_FIELD("shape") " gives %zu outputs but the data has %zu %s",
                           clpar_model_classes(&m), ds->out, ds->labels ? "classes" : "targets");
    if (c->loss == CLPAR_LOSS_XENT && !ds->labels)
        return clpar_error(CLPAR_EINVAL,
                           CLPAR_FIELD("loss") " xent needs class labels; this data is "
                                               "regression (use " CLPAR_FIELD("loss") " mse)");
    if (c->loss == CLPAR_LOSS_MSE && !ds->targets)
        return clpar_error(CLPAR_EINVAL,
                           CLPAR_FIELD("loss") " mse needs regression targets; this data has class "
                                               "labels (use " CLPAR_FIELD("loss") " xent)");
    if (c->optim.lr < 0 || c->optim.momentum < 0 || c->optim.weight_decay < 0)
        return clpar_error(
            CLPAR_EINVAL,
            CLPAR_FIELD("optim.lr") ", " CLPAR_FIELD("optim.momentum") " and " CLPAR_FIELD(
                "optim.weight_decay") " must be >= 0");
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
    free(tr->data_name);
    free(tr);
}

clpar_status clpar_trainer_mesh_config(const clpar_trainer_config *cfg, size_t nsamples,
                                       clpar_mesh_config *mc) {
    memset(mc, 0, sizeof *mc);
    if (cfg->batch > nsamples) /* every step would repeat samples, or run short: say so */
        return clpar_error(CLPAR_EINVAL,
                           CLPAR_FIELD("batch") " %zu is larger than the %zu training samples",
                           cfg->batch, nsamples);
    mc->shape = cfg->shape;
    mc->gpt = cfg->gpt;
    mc->clip = cfg->clip;
    mc->loss = cfg->loss;
    mc->optim = cfg->optim;
    mc->reduce = cfg->reduce;
    mc->dp = cfg->dp;
    mc->pp = cfg->pp ? cfg->pp : 1;
    mc->tp = cfg->tp ? cfg->tp : 1;
    mc->micro = cfg->accum * (cfg->micro_batches ? cfg->micro_batches : 1);
    mc->zero = cfg->zero;
    mc->schedule = cfg->schedule;
    mc->max_batch = cfg->batch;
    for (int r = 0; cfg->speeds && r < mc->dp * mc->pp * mc->tp && r < CLPAR_MAX_RANKS; r++)
        mc->speed[r] = cfg->speeds[r];
    int given = 0;
    for (int p = 0; p < CLPAR_MAX_LAYERS; p++)
        given |= cfg->stage_layers[p];
    if (given) {
        memcpy(mc->stage_layers, cfg->stage_layers, sizeof mc->stage_layers);
    } else {
        double speed[CLPAR_MAX_LAYERS];
        clpar_mesh_stage_speeds(mc, speed);
        clpar_model_spec m = trainer_model(cfg);
        TRY(clpar_stages_balance_model(&m, mc->pp, speed, mc->stage_layers));
    }
    return clpar_mesh_validate(mc);
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
    tr->cfg.init_path = NULL;
    tr->data_name = strdup(cfg->data ? cfg->data : "");
    tr->cfg.data = tr->data_name;
    tr->train = train;
    tr->world = cfg->world;
    clpar_model_spec model = trainer_model(cfg);
    tr->nparams = clpar_model_param_count(&model);
    clpar_mesh_config mc;
    clpar_status st = clpar_trainer_mesh_config(cfg, train->n, &mc);
    size_t b = mc.max_batch;
    tr->order = malloc(train->n * sizeof *tr->order);
    tr->bx = malloc(b * train->in * sizeof(float));
    size_t lw = train->label_width ? train->label_width : 1;
    tr->blabels = train->labels ? malloc(b * lw * sizeof(int)) : NULL;
    tr->btargets = train->targets ? malloc(b * train->out * sizeof(float)) : NULL;
    int ranks = cfg->dp * cfg->pp * cfg->tp / clpar_world_size(cfg->world); /* this process's */
    /* fail on the device's limits before touching host memory of the same size */
    for (int r = 0; r < ranks && st == CLPAR_OK; r++) {
        const clpar_device_info *di = clpar_runtime_device_info(rt, cfg->devices[r]);
        if (!di)
            st = clpar_error(CLPAR_ENODEV, "no device %d", cfg->devices[r]);
        else if (tr->nparams * sizeof(float) / (size_t)(cfg->tp * cfg->pp) > di->max_alloc)
            st = clpar_error(CLPAR_EDEVMEM,
                             "device %d (%s): cannot allocate %zu bytes for the parameters "
                             "(max allocation %llu)",
                             di->index, di->name,
                             tr->nparams * sizeof(float) / (size_t)(cfg->tp * cfg->pp),
                             (unsigned long long)di->max_alloc);
    }
    float *params = st == CLPAR_OK ? malloc(tr->nparams * sizeof(float)) : NULL;
    if (st == CLPAR_OK && (!tr->order || !tr->bx || !params || !tr->data_name ||
                           (train->labels && !tr->blabels) || (train->targets && !tr->btargets)))
        st = clpar_error(CLPAR_ENOMEM, "out of host memory");
    if (st == CLPAR_OK) {
        if (cfg->init_path)
            st = clpar_model_file_load(cfg->init_path, &model, params);
        else
            st = clpar_model_init_params(&model, params, cfg->seed);
    }
    for (int r = 0; r < ranks && st == CLPAR_OK; r++) {
        st = clpar_device_init(rt, cfg->devices[r], &tr->devs[r]);
        if (st == CLPAR_OK) tr->ndevs++;
    }
    /* building the mesh is collective across processes: all go on, or none */
    if (clpar_world_size(cfg->world) > 1) st = clpar_world_agree(cfg->world, st, NULL);
    if (st == CLPAR_OK) st = clpar_mesh_init_world(cfg->world, tr->devs, &mc, params, &tr->mesh);
    free(params);
    if (st != CLPAR_OK) {
        clpar_trainer_free(tr);
        return st;
    }
    clpar_dataset_order(tr->order, train->n, cfg->shuffle, cfg->seed, 0);
    *out = tr;
    return CLPAR_OK;
}

double clpar_trainer_lr(const clpar_trainer_config *c, long step) {
    double lr = c->optim.lr, lo = c->lr_min;
    if (step < c->warmup_steps) return lr * (double)(step + 1) / (double)(c->warmup_steps + 1);
    if (!c->lr_decay) return lr;
    if (step >= c->total_steps || c->total_steps <= c->warmup_steps) return lo;
    double ratio = (double)(step - c->warmup_steps) / (double)(c->total_steps - c->warmup_steps);
    return lo + 0.5 * (1.0 + cos(M_PI * ratio)) * (lr - lo);
}

long clpar_trainer_steps_per_epoch(const clpar_trainer *tr) {
    return (long)((tr->train->n + tr->cfg.batch - 1) / tr->cfg.batch);
}

clpar_status clpar_trainer_step(clpar_trainer *tr, clpar_step_info *info) {
    const clpar_dataset *ds = tr->train;
    size_t rows = ds->n - tr->pos < tr->cfg.batch ? ds->n - tr->pos : tr->cfg.batch;
    size_t a, n, lw = ds->label_width ? ds->label_width : 1;
    clpar_mesh_local_rows(tr->mesh, rows, &a, &n); /* a process gathers only the rows it reads */
    clpar_dataset_gather(ds, tr->order, tr->pos + a, n, (float *)tr->bx + a * ds->in,
                         tr->blabels ? tr->blabels + a * lw : NULL,
                         tr->btargets ? tr->btargets + a * ds->out : NULL);
    double loss;
    if (tr->cfg.warmup_steps || tr->cfg.lr_decay)
        clpar_mesh_set_lr(tr->mesh, (float)clpar_trainer_lr(&tr->cfg, tr->step));
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
    clpar_model_spec m = trainer_model(&tr->cfg);
    if (ds->in != clpar_model_input_width(&m) || ds->out != clpar_model_classes(&m) ||
        !ds->tokens != !clpar_model_is_gpt(&m))
        return clpar_error(CLPAR_ESHAPE, "evaluation data does not fit the model");
    const void *x = ds->tokens ? (const void *)ds->tokens : (const void *)ds->x;
    return clpar_mesh_evaluate(tr->mesh, x, ds->labels, ds->targets, ds->n, loss, accuracy);
}

clpar_status clpar_trainer_get_params(clpar_trainer *tr, float *params) {
    return clpar_mesh_get_params(tr->mesh, clpar_mesh_home_replica(tr->mesh), params);
}

clpar_status clpar_trainer_get_rank_params(clpar_trainer *tr, int rank, float *params) {
    return clpar_mesh_get_params(tr->mesh, rank, params);
}

clpar_status clpar_trainer_save(clpar_trainer *tr, const char *path) {
    float *params = malloc(tr->nparams * sizeof(float));
    if (!params) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    clpar_status st = clpar_trainer_get_params(tr, params);
    clpar_model_spec model = trainer_model(&tr->cfg);
    /* one process writes (all hold the same model); every one learns whether it could */
    if (st == CLPAR_OK && clpar_world_rank(tr->world) == 0)
        st = clpar_model_file_save(path, &model, params);
    st = clpar_world_agree(tr->world, st, NULL);
    free(params);
    return st;
}

void clpar_trainer_get_stats(const clpar_trainer *tr, clpar_mesh_stats *stats) {
    clpar_mesh_get_stats(tr->mesh, stats);
}

clpar_mesh *clpar_trainer_mesh(const clpar_trainer *tr) {
    return tr->mesh;
}

long clpar_trainer_steps_done(const clpar_trainer *tr) {
    return tr->step;
}
