/* Against PyTorch: a model saved by PyTorch (tests/data/model.safetensors, made by
 * make_goldens.py) loads into clpar, and its outputs, both losses, every gradient, and the
 * weights after three steps of SGD (momentum, weight decay), Adam and AdamW match
 * PyTorch's (tests/data/reference.safetensors). */
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
