/* A training run: validation of the configuration, devices, data order, steps, evaluation
 * and saving. */
#include "clpar/trainer.h"
#include "clpar/safetensors.h"
#include "../runtime/internal.h"

#include <errno.h>
#include <stdio.h>
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

clpar_status clpar_trainer_mesh_config(const clpar_trainer_config *cfg, size_t nsamples,
                                       clpar_mesh_config *mc) {
    memset(mc, 0, sizeof *mc);
    mc->shape = cfg->shape;
    mc->loss = cfg->loss;
    mc->optim = cfg->optim;
    mc->reduce = cfg->reduce;
    mc->dp = cfg->dp;
    mc->pp = cfg->pp ? cfg->pp : 1;
    mc->tp = cfg->tp ? cfg->tp : 1;
    mc->micro = cfg->accum * (cfg->micro_batches ? cfg->micro_batches : 1);
    mc->schedule = cfg->schedule;
    mc->max_batch = cfg->batch < nsamples ? cfg->batch : nsamples;
    for (int r = 0; cfg->speeds && r < mc->dp * mc->pp * mc->tp && r < 256; r++)
        mc->speed[r] = cfg->speeds[r];
    int given = 0;
    for (int p = 0; p < CLPAR_MAX_LAYERS; p++)
        given |= cfg->stage_layers[p];
    if (given) {
        memcpy(mc->stage_layers, cfg->stage_layers, sizeof mc->stage_layers);
    } else {
        double speed[CLPAR_MAX_LAYERS];
        clpar_mesh_stage_speeds(mc, speed);
        TRY(clpar_stages_balance_weighted(&cfg->shape, mc->pp, speed, mc->stage_layers));
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
    tr->train = train;
    tr->nparams = clpar_mlp_shape_param_count(&cfg->shape);
    clpar_mesh_config mc;
    clpar_status st = clpar_trainer_mesh_config(cfg, train->n, &mc);
    size_t b = mc.max_batch;
    tr->order = malloc(train->n * sizeof *tr->order);
    tr->bx = malloc(b * train->in * sizeof(float));
    tr->blabels = train->labels ? malloc(b * sizeof(int)) : NULL;
    tr->btargets = train->targets ? malloc(b * train->out * sizeof(float)) : NULL;
    int ranks = cfg->dp * cfg->pp * cfg->tp;
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

long clpar_trainer_steps_done(const clpar_trainer *tr) {
    return tr->step;
}

/* "optim.<module>.<weight|bias>.<state>" */
static void state_name(char *buf, size_t n, int layer, int bias, const char *state) {
    snprintf(buf, n, "optim.%d.%s.%s", 2 * layer, bias ? "bias" : "weight", state);
}

clpar_status clpar_trainer_checkpoint(clpar_trainer *tr, const char *path, const char *const *meta,
                                      int nmeta) {
    const clpar_mlp_shape *s = &tr->cfg.shape;
    int L = s->nlayers, ns = clpar_optim_config_state_count(&tr->cfg.optim);
    float *buf = malloc((size_t)(1 + ns) * tr->nparams * sizeof(float));
    clpar_st_entry *e = calloc((size_t)(2 * L * (1 + ns)), sizeof *e);
    char(*names)[64] = calloc((size_t)(2 * L * (1 + ns)), sizeof *names);
    const char **m = calloc((size_t)(2 * nmeta + 14), sizeof *m);
    clpar_status st = CLPAR_OK;
    if (!buf || !e || !names || !m) st = clpar_error(CLPAR_ENOMEM, "out of host memory");
    if (st == CLPAR_OK) st = clpar_mesh_get_params(tr->mesh, 0, buf);
    for (int i = 0; i < ns && st == CLPAR_OK; i++)
        st = clpar_mesh_get_optim_state(tr->mesh, i, buf + (size_t)(1 + i) * tr->nparams);
    int n = 0;
    for (int i = 0; i <= ns && st == CLPAR_OK; i++)
        for (int l = 0; l < L; l++)
            for (int b = 0; b < 2; b++) {
                const float *base = buf + (size_t)i * tr->nparams;
                if (i == 0)
                    snprintf(names[n], sizeof names[n], "%d.%s", 2 * l, b ? "bias" : "weight");
                else
                    state_name(names[n], sizeof names[n], l, b,
                               clpar_optim_state_name(&tr->cfg.optim, i - 1));
                e[n].name = names[n];
                e[n].ndim = b ? 1 : 2;
                e[n].shape[0] = s->sizes[l + 1];
                e[n].shape[1] = s->sizes[l];
                e[n].data = base + (b ? clpar_mlp_shape_bias_offset(s, l)
                                      : clpar_mlp_shape_weight_offset(s, l));
                n++;
            }
    char model[512], step[32], epoch[32], pos[32], osteps[32];
    clpar_mlp_shape_format(s, model, sizeof model);
    snprintf(step, sizeof step, "%ld", tr->step);
    snprintf(epoch, sizeof epoch, "%ld", tr->epoch);
    snprintf(pos, sizeof pos, "%zu", tr->pos);
    snprintf(osteps, sizeof osteps, "%ld", clpar_mesh_optim_steps(tr->mesh));
    int k = 0;
    if (m) {
        const char *fixed[] = {"format",         "pt", "clpar.model",       model,
                               "clpar.step",     step, "clpar.epoch",       epoch,
                               "clpar.position", pos,  "clpar.optim.steps", osteps};
        for (int i = 0; i < 12; i++)
            m[k++] = fixed[i];
        for (int i = 0; i < 2 * nmeta; i++)
            m[k++] = meta[i];
    }
    if (st == CLPAR_OK) st = clpar_st_write(path, e, n, m, k / 2);
    free(buf);
    free(e);
    free(names);
    free(m);
    return st;
}

static clpar_status meta_long(const clpar_st *st, const char *path, const char *key, long lo,
                              long hi, long *out) {
    const char *v = clpar_st_metadata(st, key);
    if (!v)
        return clpar_error(CLPAR_EFORMAT, "%s: not a clpar checkpoint (no %s in __metadata__)",
                           path, key);
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return clpar_error(CLPAR_EFORMAT, "%s: %s '%s' is out of range (%ld..%ld)", path, key, v,
                           lo, hi);
    *out = x;
    return CLPAR_OK;
}

clpar_status clpar_trainer_restore(clpar_trainer *tr, const char *path) {
    const clpar_mlp_shape *s = &tr->cfg.shape;
    clpar_st *st;
    TRY(clpar_st_read(path, &st));
    char model[512];
    clpar_mlp_shape_format(s, model, sizeof model);
    const char *theirs = clpar_st_metadata(st, "clpar.model");
    clpar_status rc = CLPAR_OK;
    if (!theirs)
        rc = clpar_error(CLPAR_EFORMAT, "%s: not a clpar checkpoint (no clpar.model)", path);
    else if (strcmp(theirs, model))
        rc = clpar_error(CLPAR_ESHAPE, "%s: checkpoint of model %s, this run trains %s", path,
                         theirs, model);
    long step = 0, epoch = 0, pos = 0, osteps = 0;
    if (rc == CLPAR_OK) rc = meta_long(st, path, "clpar.step", 0, 1L << 50, &step);
    if (rc == CLPAR_OK) rc = meta_long(st, path, "clpar.epoch", 0, 1L << 40, &epoch);
    if (rc == CLPAR_OK) rc = meta_long(st, path, "clpar.position", 0, (long)tr->train->n - 1, &pos);
    if (rc == CLPAR_OK) rc = meta_long(st, path, "clpar.optim.steps", 0, 1L << 50, &osteps);
    int L = s->nlayers, ns = clpar_optim_config_state_count(&tr->cfg.optim);
    float *buf = malloc((size_t)(1 + ns) * tr->nparams * sizeof(float));
    if (!buf && rc == CLPAR_OK) rc = clpar_error(CLPAR_ENOMEM, "out of host memory");
    /* everything is read and checked before anything on the devices changes */
    for (int i = 0; i <= ns && rc == CLPAR_OK; i++)
        for (int l = 0; l < L && rc == CLPAR_OK; l++)
            for (int b = 0; b < 2 && rc == CLPAR_OK; b++) {
                char name[96];
                if (i == 0)
                    snprintf(name, sizeof name, "%d.%s", 2 * l, b ? "bias" : "weight");
                else
                    state_name(name, sizeof name, l, b,
                               clpar_optim_state_name(&tr->cfg.optim, i - 1));
                size_t shape[2] = {s->sizes[l + 1], s->sizes[l]};
                float *dst =
                    buf + (size_t)i * tr->nparams +
                    (b ? clpar_mlp_shape_bias_offset(s, l) : clpar_mlp_shape_weight_offset(s, l));
                rc = clpar_st_copy_f32(st, name, b ? 1 : 2, shape, dst);
                if (rc == CLPAR_EFORMAT && i > 0)
                    rc = clpar_error(CLPAR_EFORMAT,
                                     "%s: optimizer state '%s' is missing (a model file, or a "
                                     "checkpoint of another optimizer?)",
                                     path, name);
            }
    clpar_st_free(st);
    if (rc == CLPAR_OK) rc = clpar_mesh_set_params(tr->mesh, buf);
    for (int i = 0; i < ns && rc == CLPAR_OK; i++)
        rc = clpar_mesh_set_optim_state(tr->mesh, i, buf + (size_t)(1 + i) * tr->nparams);
    free(buf);
    TRY(rc);
    clpar_mesh_set_optim_steps(tr->mesh, osteps);
    tr->step = step;
    tr->epoch = epoch;
    tr->pos = (size_t)pos;
    clpar_dataset_order(tr->order, tr->train->n, tr->cfg.shuffle, tr->cfg.seed, tr->epoch);
    return CLPAR_OK;
}
