/* Checkpoints: the whole training state in one safetensors file, written atomically, with
 * everything that defines the run in its __metadata__ (model, data, loss, optimizer and its
 * settings, reduction, batch, seed, data order, length) and where it stands (step, epoch,
 * position in the epoch's order, optimizer steps). The library writes, reads and checks all
 * of it, so any program can checkpoint and resume, on any mesh. */
#include "trainer_internal.h"
#include "clpar/safetensors.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The run's fixed settings and their keys, in one table: written, read and compared alike. */
typedef enum { V_LONG, V_FLOAT, V_TEXT } value_kind;
typedef struct {
    const char *key, *field;
    value_kind kind;
} setting;

static const setting settings[] = {
    {"clpar.model", "shape", V_TEXT},
    {"clpar.data", "data", V_TEXT},
    {"clpar.loss", "loss", V_TEXT},
    {"clpar.optim", "optim.kind", V_TEXT},
    {"clpar.lr", "optim.lr", V_FLOAT},
    {"clpar.momentum", "optim.momentum", V_FLOAT},
    {"clpar.dampening", "optim.dampening", V_FLOAT},
    {"clpar.nesterov", "optim.nesterov", V_LONG},
    {"clpar.weight_decay", "optim.weight_decay", V_FLOAT},
    {"clpar.beta1", "optim.beta1", V_FLOAT},
    {"clpar.beta2", "optim.beta2", V_FLOAT},
    {"clpar.eps", "optim.eps", V_FLOAT},
    {"clpar.grad_reduce", "reduce", V_TEXT},
    {"clpar.batch", "batch", V_LONG},
    {"clpar.seed", "seed", V_LONG},
    {"clpar.shuffle", "shuffle", V_LONG},
    {"clpar.total_steps", "total_steps", V_LONG},
    {"clpar.warmup", "warmup_steps", V_LONG},
    {"clpar.lr_decay", "lr_decay", V_LONG},
    {"clpar.lr_min", "lr_min", V_FLOAT},
    {"clpar.clip", "clip", V_FLOAT},
    {"clpar.decay_matrices_only", "optim.decay_matrices_only", V_LONG},
};
#define NSETTINGS ((int)(sizeof settings / sizeof *settings))

/* Setting i of cfg as text. */
static void format_setting(const clpar_trainer_config *c, int i, char *buf, size_t n) {
    const clpar_optim_config *o = &c->optim;
    const float floats[] = {o->lr,           o->momentum, o->dampening, 0,
                            o->weight_decay, o->beta1,    o->beta2,     o->eps};
    switch (i) {
    case 0: {
        clpar_model_spec m = trainer_model(c);
        clpar_model_format(&m, buf, n);
        return;
    }
    case 1:
        snprintf(buf, n, "%s", c->data ? c->data : "");
        return;
    case 2:
        snprintf(buf, n, "%s", clpar_loss_kind_name(c->loss));
        return;
    case 3:
        snprintf(buf, n, "%s", clpar_optim_kind_name(o->kind));
        return;
    case 7:
        snprintf(buf, n, "%d", o->nesterov);
        return;
    case 12:
        snprintf(buf, n, "%s", clpar_reduce_mode_name(c->reduce));
        return;
    case 13:
        snprintf(buf, n, "%zu", c->batch);
        return;
    case 14:
        snprintf(buf, n, "%llu", (unsigned long long)c->seed);
        return;
    case 15:
        snprintf(buf, n, "%d", c->shuffle);
        return;
    case 16:
        snprintf(buf, n, "%ld", c->total_steps);
        return;
    case 17:
        snprintf(buf, n, "%ld", c->warmup_steps);
        return;
    case 18:
        snprintf(buf, n, "%d", c->lr_decay);
        return;
    case 19:
        snprintf(buf, n, "%.9g", (double)c->lr_min);
        return;
    case 20:
        snprintf(buf, n, "%.9g", (double)c->clip);
        return;
    case 21:
        snprintf(buf, n, "%d", c->optim.decay_matrices_only);
        return;
    default:
        snprintf(buf, n, "%.9g", (double)floats[i - 4]);
        return;
    }
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

static clpar_status meta_float(const clpar_st *st, const char *path, const char *key, float *out) {
    const char *v = clpar_st_metadata(st, key);
    if (!v)
        return clpar_error(CLPAR_EFORMAT, "%s: not a clpar checkpoint (no %s in __metadata__)",
                           path, key);
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x) || x < 0)
        return clpar_error(CLPAR_EFORMAT, "%s: %s '%s' is not a number >= 0", path, key, v);
    *out = (float)x;
    return CLPAR_OK;
}

/* Reads and checks every setting into *c (data into data, n bytes). */
static clpar_status read_settings(const clpar_st *st, const char *path, clpar_trainer_config *c,
                                  char *data, size_t n) {
    clpar_optim_config *o = &c->optim;
    float *floats[] = {&o->lr,           &o->momentum, &o->dampening, NULL,
                       &o->weight_decay, &o->beta1,    &o->beta2,     &o->eps};
    for (int i = 0; i < NSETTINGS; i++) {
        const char *key = settings[i].key, *v = clpar_st_metadata(st, key);
        if (!v)
            return clpar_error(CLPAR_EFORMAT, "%s: not a clpar checkpoint (no %s in __metadata__)",
                               path, key);
        long x = 0;
        clpar_status rc = CLPAR_OK;
        switch (i) {
        case 0: {
            clpar_model_spec m;
            rc = clpar_model_parse(v, &m);
            c->shape = m.mlp, c->gpt = m.gpt;
            break;
        }
        case 1:
            snprintf(data, n, "%s", v);
            break;
        case 2:
            rc = clpar_loss_kind_parse(v, &c->loss);
            break;
        case 3:
            rc = clpar_optim_kind_parse(v, &o->kind);
            break;
        case 7:
            rc = meta_long(st, path, key, 0, 1, &x), o->nesterov = (int)x;
            break;
        case 12:
            rc = clpar_reduce_mode_parse(v, &c->reduce);
            break;
        case 13:
            rc = meta_long(st, path, key, 1, 1L << 40, &x), c->batch = (size_t)x;
            break;
        case 14:
            rc = meta_long(st, path, key, 0, 1L << 62, &x), c->seed = (uint64_t)x;
            break;
        case 15:
            rc = meta_long(st, path, key, 0, 1, &x), c->shuffle = (int)x;
            break;
        case 16:
            rc = meta_long(st, path, key, 0, 1L << 50, &c->total_steps);
            break;
        case 17:
            rc = meta_long(st, path, key, 0, 1L << 50, &c->warmup_steps);
            break;
        case 18:
            rc = meta_long(st, path, key, 0, 1, &x), c->lr_decay = x != 0;
            break;
        case 19:
            rc = meta_float(st, path, key, &c->lr_min);
            break;
        case 20:
            rc = meta_float(st, path, key, &c->clip);
            break;
        case 21:
            rc = meta_long(st, path, key, 0, 1, &x), o->decay_matrices_only = x != 0;
            break;
        default:
            rc = meta_float(st, path, key, floats[i - 4]);
            break;
        }
        if (rc != CLPAR_OK && rc != CLPAR_EFORMAT)
            return clpar_error(CLPAR_EFORMAT, "%s: %s '%s': %s", path, key, v, clpar_last_error());
        TRY(rc);
    }
    return CLPAR_OK;
}

clpar_status clpar_checkpoint_read_config(const char *path, clpar_trainer_config *cfg, char *data,
                                          size_t n) {
    clpar_st *st;
    TRY(clpar_st_read(path, &st));
    clpar_trainer_config c = *cfg;
    clpar_status rc = read_settings(st, path, &c, data, n);
    clpar_st_free(st);
    TRY(rc);
    c.data = data;
    *cfg = c;
    return CLPAR_OK;
}

/* The model's parameters in the flat layout's order. */
typedef struct {
    clpar_param *p;
    int n, cap;
} param_list;

static void collect(const clpar_param *p, void *user) {
    param_list *l = user;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        clpar_param *grown = realloc(l->p, (size_t)cap * sizeof *grown);
        if (!grown) {
            l->cap = -1; /* out of memory: the caller sees n < the real count */
            return;
        }
        l->p = grown, l->cap = cap;
    }
    if (l->cap > 0) l->p[l->n++] = *p;
}

static clpar_status params_of(const clpar_trainer_config *c, param_list *l) {
    memset(l, 0, sizeof *l);
    clpar_model_spec m = trainer_model(c);
    clpar_status st = clpar_model_each_param(&m, collect, l);
    if (st == CLPAR_OK && l->cap < 0) st = clpar_error(CLPAR_ENOMEM, "out of host memory");
    if (st != CLPAR_OK) free(l->p);
    return st;
}

/* A tensor's name in the file: the parameter's, or "optim.<parameter>.<state>". */
static void tensor_name(char *buf, size_t n, const clpar_param *p, const char *state) {
    if (state)
        snprintf(buf, n, "optim.%s.%s", p->name, state);
    else
        snprintf(buf, n, "%s", p->name);
}

clpar_status clpar_trainer_checkpoint(clpar_trainer *tr, const char *path, const char *const *meta,
                                      int nmeta) {
    param_list pl;
    TRY(params_of(&tr->cfg, &pl));
    int ns = clpar_optim_config_state_count(&tr->cfg.optim), total = pl.n * (1 + ns);
    float *buf = malloc((size_t)(1 + ns) * tr->nparams * sizeof(float));
    clpar_st_entry *e = calloc((size_t)total, sizeof *e);
    char(*names)[160] = calloc((size_t)total, sizeof *names);
    const char **m = calloc((size_t)(2 * nmeta + 2 * NSETTINGS + 10), sizeof *m);
    char(*values)[1024] = calloc(NSETTINGS + 4, sizeof *values);
    clpar_status st = CLPAR_OK;
    if (!buf || !e || !names || !m || !values) st = clpar_error(CLPAR_ENOMEM, "out of host memory");
    if (st == CLPAR_OK) st = clpar_trainer_get_params(tr, buf);
    for (int i = 0; i < ns && st == CLPAR_OK; i++)
        st = clpar_mesh_get_optim_state(tr->mesh, i, buf + (size_t)(1 + i) * tr->nparams);
    int n = 0;
    for (int i = 0; i <= ns && st == CLPAR_OK; i++)
        for (int q = 0; q < pl.n; q++) {
            const clpar_param *p = &pl.p[q];
            tensor_name(names[n], sizeof names[n], p,
                        i ? clpar_optim_state_name(&tr->cfg.optim, i - 1) : NULL);
            e[n] = (clpar_st_entry){names[n],
                                    p->ndim,
                                    {p->shape[0], p->shape[1]},
                                    buf + (size_t)i * tr->nparams + p->full_offset};
            n++;
        }
    int k = 0;
    if (st == CLPAR_OK) {
        m[k++] = "format", m[k++] = "pt";
        for (int i = 0; i < NSETTINGS; i++) {
            format_setting(&tr->cfg, i, values[i], sizeof values[i]);
            m[k++] = settings[i].key, m[k++] = values[i];
        }
        const char *where[] = {"clpar.step", "clpar.epoch", "clpar.position", "clpar.optim.steps"};
        snprintf(values[NSETTINGS], sizeof values[0], "%ld", tr->step);
        snprintf(values[NSETTINGS + 1], sizeof values[0], "%ld", tr->epoch);
        snprintf(values[NSETTINGS + 2], sizeof values[0], "%zu", tr->pos);
        snprintf(values[NSETTINGS + 3], sizeof values[0], "%ld", clpar_mesh_optim_steps(tr->mesh));
        for (int i = 0; i < 4; i++)
            m[k++] = where[i], m[k++] = values[NSETTINGS + i];
        for (int i = 0; i < 2 * nmeta; i++)
            m[k++] = meta[i];
    }
    /* one process writes (all hold the same state); every one learns whether it could */
    if (st == CLPAR_OK && clpar_world_rank(tr->world) == 0)
        st = clpar_st_write(path, e, n, m, k / 2);
    st = clpar_world_agree(tr->world, st, NULL);
    free(buf);
    free(e);
    free(names);
    free(m);
    free(values);
    free(pl.p);
    return st;
}

/* Every fixed setting of the checkpoint (read into theirs) equals the trainer's. */
static clpar_status same_run(const clpar_trainer *tr, const clpar_trainer_config *theirs,
                             const char *path) {
    for (int i = 0; i < NSETTINGS; i++) {
        if (i == 16) continue; /* the length may be extended */
        char mine[1024], ck[1024];
        format_setting(&tr->cfg, i, mine, sizeof mine);
        format_setting(theirs, i, ck, sizeof ck);
        if (strcmp(mine, ck))
            return clpar_error(i == 0 ? CLPAR_ESHAPE : CLPAR_EINVAL,
                               "\x01%s\x02 %s differs from the %s %s of checkpoint %s",
                               settings[i].field, mine, i == 0 ? "model" : settings[i].field, ck,
                               path);
    }
    return CLPAR_OK;
}

clpar_status clpar_trainer_restore(clpar_trainer *tr, const char *path) {
    param_list pl;
    TRY(params_of(&tr->cfg, &pl));
    clpar_st *st;
    clpar_status rd = clpar_st_read(path, &st);
    if (rd != CLPAR_OK) {
        free(pl.p);
        return rd;
    }
    clpar_trainer_config theirs = tr->cfg;
    char data[1024];
    clpar_status rc = read_settings(st, path, &theirs, data, sizeof data);
    theirs.data = data;
    if (rc == CLPAR_OK) rc = same_run(tr, &theirs, path);
    long step = 0, epoch = 0, pos = 0, osteps = 0;
    if (rc == CLPAR_OK) rc = meta_long(st, path, "clpar.step", 0, 1L << 50, &step);
    if (rc == CLPAR_OK) rc = meta_long(st, path, "clpar.epoch", 0, 1L << 40, &epoch);
    if (rc == CLPAR_OK) rc = meta_long(st, path, "clpar.position", 0, (long)tr->train->n - 1, &pos);
    if (rc == CLPAR_OK) rc = meta_long(st, path, "clpar.optim.steps", 0, 1L << 50, &osteps);
    int ns = clpar_optim_config_state_count(&tr->cfg.optim);
    float *buf = rc == CLPAR_OK ? malloc((size_t)(1 + ns) * tr->nparams * sizeof(float)) : NULL;
    if (!buf && rc == CLPAR_OK) rc = clpar_error(CLPAR_ENOMEM, "out of host memory");
    /* everything is read and checked before anything on the devices changes */
    for (int i = 0; i <= ns && rc == CLPAR_OK; i++)
        for (int q = 0; q < pl.n && rc == CLPAR_OK; q++) {
            const clpar_param *p = &pl.p[q];
            char name[160];
            tensor_name(name, sizeof name, p,
                        i ? clpar_optim_state_name(&tr->cfg.optim, i - 1) : NULL);
            rc = clpar_st_copy_f32(st, name, p->ndim, p->shape,
                                   buf + (size_t)i * tr->nparams + p->full_offset);
            if (rc == CLPAR_EFORMAT && i > 0)
                rc = clpar_error(CLPAR_EFORMAT,
                                 "%s: optimizer state '%s' is missing (a model file, or a "
                                 "checkpoint of another optimizer?)",
                                 path, name);
        }
    free(pl.p);
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
