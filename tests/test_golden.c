/* Against PyTorch: a model saved by PyTorch (tests/data/model.safetensors, made by
 * make_goldens.py) loads into clpar, and its outputs, both losses, every gradient, and the
 * weights after three steps of SGD (momentum, weight decay), Adam and AdamW match
 * PyTorch's (tests/data/reference.safetensors); and clpar's trainer, the code clpar-train
 * runs, on one device and on dp 2 x pp 2 and tp 2 meshes, reproduces PyTorch's losses and
 * weights over three steps on three batches (tests/data/training.safetensors). */
#include "common.h"

#include <string.h>

#define B 8

static clpar_st *ref;
static clpar_mlp_shape shape;
static float *init;

static const float *tensor(const char *name, size_t n) {
    const clpar_st_tensor *t = clpar_st_find(ref, name);
    cr_assert(t, "reference lacks %s", name);
    cr_assert_eq(t->end - t->begin, n * sizeof(float), "%s has the wrong size", name);
    float *copy = malloc(n * sizeof(float));
    memcpy(copy, clpar_st_data(ref, t), n * sizeof(float));
    return copy;
}

static void setup(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/reference.safetensors", t_source_dir());
    T_OK(clpar_st_read(path, &ref));
    T_OK(clpar_mlp_shape_parse(&shape, "6,9,7,4"));
    init = malloc(clpar_mlp_shape_param_count(&shape) * sizeof(float));
    snprintf(path, sizeof path, "%s/tests/data/model.safetensors", t_source_dir());
    T_OK(clpar_model_load(path, &shape, init));
}

/* Compares the flat params/grads against PyTorch's per-tensor values under prefix. */
static void compare_params(const float *flat, const char *prefix, double tol) {
    for (int l = 0; l < shape.nlayers; l++) {
        size_t out = shape.sizes[l + 1], in = shape.sizes[l];
        char name[128];
        snprintf(name, sizeof name, "%s%d.weight", prefix, 2 * l);
        const float *w = tensor(name, out * in);
        double e = t_rel_l2(flat + clpar_mlp_shape_weight_offset(&shape, l), w, out * in);
        cr_expect_lt(e, tol, "%s differs from PyTorch by %g", name, e);
        snprintf(name, sizeof name, "%s%d.bias", prefix, 2 * l);
        const float *b = tensor(name, out);
        e = t_rel_l2(flat + clpar_mlp_shape_bias_offset(&shape, l), b, out);
        cr_expect_lt(e, tol, "%s differs from PyTorch by %g", name, e);
        free((void *)w);
        free((void *)b);
    }
}

static clpar_mlp *model_with_batch(void) {
    clpar_mlp *m;
    T_OK(clpar_mlp_init(t_device(0), &shape, B, &m));
    T_OK(clpar_mlp_set_params(m, init));
    const float *x = tensor("x", B * 6), *lf = tensor("labels", B), *t = tensor("targets", B * 4);
    static int labels[B];
    static float xs[B * 6], ts[B * 4];
    for (int i = 0; i < B; i++)
        labels[i] = (int)lf[i];
    memcpy(xs, x, sizeof xs);
    memcpy(ts, t, sizeof ts);
    T_OK(clpar_mlp_upload(m, xs, labels, ts, B));
    T_OK(clpar_device_finish(t_device(0)));
    free((void *)x);
    free((void *)lf);
    free((void *)t);
    return m;
}

static void check_loss(clpar_loss_kind kind, const char *name) {
    clpar_mlp *m = model_with_batch();
    T_OK(clpar_mlp_forward(m, B));
    T_OK(clpar_mlp_loss(m, kind, B, B));
    double loss;
    T_OK(clpar_mlp_read_loss(m, B, &loss));
    loss /= kind == CLPAR_LOSS_MSE ? B * 4 : B;
    char key[64];
    snprintf(key, sizeof key, "%s.loss", name);
    const float *want = tensor(key, 1);
    cr_expect_float_eq(loss, want[0], 1e-5 * (1 + want[0]), "%s loss %g vs PyTorch %g", name, loss,
                       want[0]);
    float out[B * 4];
    T_OK(clpar_mlp_read_output(m, out, B));
    snprintf(key, sizeof key, "%s.out", name);
    const float *wout = tensor(key, B * 4);
    cr_expect_lt(t_rel_l2(out, wout, B * 4), 1e-5);
    T_OK(clpar_mlp_backward(m, B, 0.0f, NULL, NULL));
    size_t n = clpar_mlp_shape_param_count(&shape);
    float *g = malloc(n * sizeof(float));
    T_OK(clpar_mlp_get_grads(m, g));
    snprintf(key, sizeof key, "%s.grad.", name);
    compare_params(g, key, 1e-5);
    free(g);
    free((void *)want);
    free((void *)wout);
    clpar_mlp_free(m);
}

Test(golden, cross_entropy_outputs_and_gradients, .init = setup) {
    check_loss(CLPAR_LOSS_XENT, "xent");
}

Test(golden, mse_outputs_and_gradients, .init = setup) {
    check_loss(CLPAR_LOSS_MSE, "mse");
}

static void check_optim(clpar_optim_config cfg, const char *name) {
    clpar_mlp *m = model_with_batch();
    size_t n = clpar_mlp_shape_param_count(&shape);
    clpar_optim *o;
    T_OK(clpar_optim_init(t_device(0), &cfg, n, &o));
    for (int s = 0; s < 3; s++) {
        T_OK(clpar_mlp_forward(m, B));
        T_OK(clpar_mlp_loss(m, CLPAR_LOSS_XENT, B, B));
        T_OK(clpar_mlp_backward(m, B, 0.0f, NULL, NULL));
        T_OK(clpar_optim_step(o, clpar_mlp_params(m), clpar_mlp_grads(m), NULL));
    }
    float *p = malloc(n * sizeof(float));
    T_OK(clpar_mlp_get_params(m, p));
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%s.", name);
    compare_params(p, prefix, 1e-5);
    free(p);
    clpar_optim_free(o);
    clpar_mlp_free(m);
}

Test(golden, sgd_momentum_weight_decay, .init = setup) {
    clpar_optim_config c = clpar_optim_defaults(CLPAR_OPTIM_SGD);
    c.lr = 0.1f;
    c.momentum = 0.9f;
    c.weight_decay = 0.01f;
    check_optim(c, "sgd");
}

Test(golden, adam, .init = setup) {
    clpar_optim_config c = clpar_optim_defaults(CLPAR_OPTIM_ADAM);
    c.lr = 0.01f;
    check_optim(c, "adam");
}

Test(golden, adamw, .init = setup) {
    clpar_optim_config c = clpar_optim_defaults(CLPAR_OPTIM_ADAMW);
    c.lr = 0.01f;
    c.weight_decay = 0.1f;
    check_optim(c, "adamw");
}

/* ---- the path that trains: the trainer itself, on any mesh ---- */

/* PyTorch's three steps on batches 0, 1 and 2 of a 24-sample set visited in order
 * (tests/data/training.safetensors), trained by clpar's trainer from PyTorch's initial
 * model on a dp x pp x tp mesh. */
static void check_trainer(clpar_optim_config optim, const char *name, int dp, int pp, int tp) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/training.safetensors", t_source_dir());
    clpar_st *train;
    T_OK(clpar_st_read(path, &train));
    clpar_dataset ds = {
        .n = 24, .in = 6, .out = 4, .x = malloc(24 * 6 * 4), .labels = malloc(24 * sizeof(int))};
    const clpar_st_tensor *tx = clpar_st_find(train, "x"), *tl = clpar_st_find(train, "labels");
    cr_assert(tx && tl, "training.safetensors lacks x or labels");
    memcpy(ds.x, clpar_st_data(train, tx), 24 * 6 * 4);
    const float *lf = clpar_st_data(train, tl);
    for (int i = 0; i < 24; i++)
        ds.labels[i] = (int)lf[i];
    snprintf(path, sizeof path, "%s/tests/data/model.safetensors", t_source_dir());
    int devices[4] = {0, 1, 2, 3};
    clpar_trainer_config c = {.shape = shape,
                              .loss = CLPAR_LOSS_XENT,
                              .optim = optim,
                              .batch = 8,
                              .dp = dp,
                              .pp = pp,
                              .tp = tp,
                              .accum = 1,
                              .micro_batches = pp > 1 ? 2 : 1,
                              .shuffle = 0,
                              .devices = devices,
                              .ndevices = 4,
                              .init_path = path};
    clpar_trainer *tr;
    T_OK(clpar_trainer_init(t_runtime(), &c, &ds, &tr));
    for (int s = 0; s < 3; s++) {
        clpar_step_info info;
        T_OK(clpar_trainer_step(tr, &info));
        char key[64];
        snprintf(key, sizeof key, "%s.loss%d", name, s);
        const clpar_st_tensor *lt = clpar_st_find(train, key);
        cr_assert(lt, "training.safetensors lacks %s", key);
        float want = *(const float *)clpar_st_data(train, lt);
        cr_expect_float_eq(info.loss, want, 1e-5 * (1 + want), "%s step %d loss %g vs PyTorch %g",
                           name, s, info.loss, want);
    }
    size_t n = clpar_mlp_shape_param_count(&shape);
    float *p = malloc(n * sizeof(float));
    T_OK(clpar_trainer_get_params(tr, p));
    for (int l = 0; l < shape.nlayers; l++)
        for (int b = 0; b < 2; b++) {
            char key[64];
            snprintf(key, sizeof key, "%s.%d.%s", name, 2 * l, b ? "bias" : "weight");
            const clpar_st_tensor *t = clpar_st_find(train, key);
            cr_assert(t, "training.safetensors lacks %s", key);
            size_t count = b ? shape.sizes[l + 1] : shape.sizes[l + 1] * shape.sizes[l];
            size_t off = b ? clpar_mlp_shape_bias_offset(&shape, l)
                           : clpar_mlp_shape_weight_offset(&shape, l);
            double e = t_rel_l2(p + off, clpar_st_data(train, t), count);
            cr_expect_lt(e, 1e-5, "%s on dp %d x pp %d x tp %d differs from PyTorch by %g", key, dp,
                         pp, tp, e);
        }
    free(p);
    clpar_trainer_free(tr);
    clpar_dataset_free(&ds);
    clpar_st_free(train);
}

static clpar_optim_config sgd_config(void) {
    clpar_optim_config c = clpar_optim_defaults(CLPAR_OPTIM_SGD);
    c.lr = 0.1f;
    c.momentum = 0.9f;
    c.weight_decay = 0.01f;
    return c;
}

static clpar_optim_config adam_config(clpar_optim_kind kind) {
    clpar_optim_config c = clpar_optim_defaults(kind);
    c.lr = 0.01f;
    if (kind == CLPAR_OPTIM_ADAMW) c.weight_decay = 0.1f;
    return c;
}

Test(golden_trainer, sgd_momentum_one_device, .init = setup) {
    check_trainer(sgd_config(), "sgd", 1, 1, 1);
}

Test(golden_trainer, adam_one_device, .init = setup) {
    check_trainer(adam_config(CLPAR_OPTIM_ADAM), "adam", 1, 1, 1);
}

Test(golden_trainer, adamw_one_device, .init = setup) {
    check_trainer(adam_config(CLPAR_OPTIM_ADAMW), "adamw", 1, 1, 1);
}

Test(golden_trainer, every_optimizer_on_dp2_pp2, .init = setup) {
    check_trainer(sgd_config(), "sgd", 2, 2, 1);
    check_trainer(adam_config(CLPAR_OPTIM_ADAM), "adam", 2, 2, 1);
    check_trainer(adam_config(CLPAR_OPTIM_ADAMW), "adamw", 2, 2, 1);
}

Test(golden_trainer, every_optimizer_on_tp2, .init = setup) {
    check_trainer(sgd_config(), "sgd", 1, 1, 2);
    check_trainer(adam_config(CLPAR_OPTIM_ADAM), "adam", 1, 1, 2);
    check_trainer(adam_config(CLPAR_OPTIM_ADAMW), "adamw", 1, 1, 2);
}
