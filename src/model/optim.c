/* Optimizers with PyTorch's semantics over a flat parameter range on one device. */
#include "clpar/model.h"
#include "../runtime/internal.h"

#include <stdlib.h>
#include <string.h>

struct clpar_optim {
    clpar_device *dev;
    clpar_optim_config cfg;
    size_t n;
    cl_mem s0, s1; /* SGD: momentum buffer; Adam: exp_avg, exp_avg_sq */
    long steps;
    size_t *no_decay; /* pairs [start, end) of parameters without weight decay, in order */
    int nno;
};

clpar_optim_config clpar_optim_defaults(clpar_optim_kind kind) {
    clpar_optim_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.lr = kind == CLPAR_OPTIM_SGD ? 1e-2f : 1e-3f;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    c.weight_decay = kind == CLPAR_OPTIM_ADAMW ? 1e-2f : 0.0f;
    return c;
}

clpar_status clpar_optim_init(clpar_device *d, const clpar_optim_config *cfg, size_t n,
                              clpar_optim **out) {
    *out = NULL;
    clpar_optim *o = calloc(1, sizeof *o);
    if (!o) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    o->dev = d;
    o->cfg = *cfg;
    o->n = n;
    clpar_status st = CLPAR_OK;
    int need = cfg->kind == CLPAR_OPTIM_SGD ? (cfg->momentum != 0.0f) : 2;
    size_t bytes = (n ? n : 1) * sizeof(float); /* n = 0: a ZeRO slice that came out empty */
    if (need >= 1 && (st = clpar_device_alloc(d, bytes, &o->s0)) == CLPAR_OK)
        st = clpar_device_zero(d, o->s0, 0, bytes);
    if (st == CLPAR_OK && need >= 2 && (st = clpar_device_alloc(d, bytes, &o->s1)) == CLPAR_OK)
        st = clpar_device_zero(d, o->s1, 0, bytes);
    if (st != CLPAR_OK) {
        clpar_optim_free(o);
        return st;
    }
    *out = o;
    return CLPAR_OK;
}

void clpar_optim_free(clpar_optim *o) {
    if (!o) return;
    clFinish(o->dev->compute);
    clpar_device_release(o->dev, o->s0);
    clpar_device_release(o->dev, o->s1);
    free(o->no_decay);
    free(o);
}

clpar_status clpar_optim_set_no_decay(clpar_optim *o, const size_t *ranges, int n) {
    size_t *copy = n ? malloc(2 * (size_t)n * sizeof *copy) : NULL;
    if (n && !copy) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    for (int i = 0; i < 2 * n; i++)
        copy[i] = ranges[i];
    for (int i = 0; i < n; i++)
        if (copy[2 * i] > copy[2 * i + 1] || copy[2 * i + 1] > o->n ||
            (i && copy[2 * i] < copy[2 * i - 1])) {
            free(copy);
            return clpar_error(CLPAR_EINVAL, "no-decay range %d is out of order or bounds", i);
        }
    free(o->no_decay);
    o->no_decay = copy;
    o->nno = n;
    return CLPAR_OK;
}

/* One update of elements [a, b) with weight decay wd. */
static clpar_status step_range(clpar_optim *o, cl_mem params, cl_mem grads, size_t a, size_t b,
                               float wd, cl_event *event) {
    const clpar_optim_config *c = &o->cfg;
    if (c->kind == CLPAR_OPTIM_SGD) {
        clpar_sgd_params hp = {c->lr, c->momentum, c->dampening, wd, c->nesterov};
        /* without momentum the buffer is never read; pass grads to keep the argument valid */
        return clpar_op_sgd_step_range(o->dev, params, grads, o->s0 ? o->s0 : grads, a, b - a, &hp,
                                       o->steps == 1, event);
    }
    clpar_adam_params hp = {c->lr, c->beta1, c->beta2, c->eps, wd, c->kind == CLPAR_OPTIM_ADAMW};
    return clpar_op_adam_step_range(o->dev, params, grads, o->s0, o->s1, a, b - a, &hp, o->steps,
                                    event);
}

clpar_status clpar_optim_step(clpar_optim *o, cl_mem params, cl_mem grads, cl_event *event) {
    const clpar_optim_config *c = &o->cfg;
    o->steps++;
    if (o->n == 0) { /* nothing to update; the step still counts (Adam's bias correction) */
        if (event) *event = NULL;
        return CLPAR_OK;
    }
    if (!o->nno || c->weight_decay == 0.0f)
        return step_range(o, params, grads, 0, o->n, c->weight_decay, event);
    size_t at = 0; /* runs with decay and without, in order */
    for (int i = 0; i < o->nno; i++) {
        if (o->no_decay[2 * i] > at)
            TRY(step_range(o, params, grads, at, o->no_decay[2 * i], c->weight_decay, NULL));
        TRY(step_range(o, params, grads, o->no_decay[2 * i], o->no_decay[2 * i + 1], 0.0f, NULL));
        at = o->no_decay[2 * i + 1];
    }
    return step_range(o, params, grads, at, o->n, c->weight_decay, event);
}

void clpar_optim_set_lr(clpar_optim *o, float lr) {
    o->cfg.lr = lr;
}

long clpar_optim_steps_taken(const clpar_optim *o) {
    return o->steps;
}

void clpar_optim_set_steps(clpar_optim *o, long steps) {
    o->steps = steps;
}

int clpar_optim_config_state_count(const clpar_optim_config *cfg) {
    if (cfg->kind == CLPAR_OPTIM_SGD) return cfg->momentum != 0.0f;
    return 2;
}

int clpar_optim_state_count(const clpar_optim *o) {
    return clpar_optim_config_state_count(&o->cfg);
}

cl_mem clpar_optim_state(const clpar_optim *o, int i) {
    return i == 0 ? o->s0 : i == 1 ? o->s1 : NULL;
}

const char *clpar_optim_state_name(const clpar_optim_config *cfg, int i) {
    if (cfg->kind == CLPAR_OPTIM_SGD) return i == 0 ? "momentum_buffer" : NULL;
    return i == 0 ? "exp_avg" : i == 1 ? "exp_avg_sq" : NULL;
}
