/* Tensor parallelism equals single-device training: forward outputs, every gradient and the
 * weights after 20 steps with each optimizer, for tp 2..4 on sizes that do not divide
 * evenly; each rank holds only its shard. */
#include "train_common.h"

static const char *SIZES = "13,10,7,6"; /* col (10 out), row (10 in), col+gather (6 out) */

static clpar_trainer_config config(int tp, clpar_optim_kind kind, const int *devices, int n) {
    clpar_trainer_config c;
    memset(&c, 0, sizeof c);
    clpar_mlp_shape_parse(&c.shape, SIZES);
    c.loss = CLPAR_LOSS_XENT;
    c.optim = clpar_optim_defaults(kind);
    c.optim.lr = kind == CLPAR_OPTIM_SGD ? 0.05f : 0.01f;
    c.optim.momentum = kind == CLPAR_OPTIM_SGD ? 0.9f : 0.0f;
    if (kind == CLPAR_OPTIM_ADAMW) c.optim.weight_decay = 0.1f;
    c.batch = 25;
    c.dp = 1;
    c.tp = tp;
    c.accum = 1;
    c.shuffle = 1;
    c.seed = 5;
    c.devices = devices;
    c.ndevices = n;
    return c;
}

/* Trains 20 steps; returns weights, the last step's gradients and outputs on probe. */
static void run(const clpar_trainer_config *c, const clpar_dataset *ds, float *w, float *g,
                const float *probe, float *out) {
    clpar_trainer *tr;
    T_OK(clpar_trainer_init(t_runtime(), c, ds, &tr));
    for (int s = 0; s < 20; s++) {
        clpar_step_info info;
        T_OK(clpar_trainer_step(tr, &info));
    }
    clpar_mesh *m = clpar_trainer_mesh(tr);
    T_OK(clpar_mesh_get_params(m, 0, w));
    T_OK(clpar_mesh_get_grads(m, 0, g));
    T_OK(clpar_mesh_predict(m, probe, 9, out));
    clpar_trainer_free(tr);
}

Test(tensor_parallel, equals_single_device_for_every_optimizer) {
    clpar_dataset ds = t_dataset(70, 13, 6, 0, 17);
    int devices[4] = {0, 1, 2, 3};
    clpar_mlp_shape s;
    clpar_mlp_shape_parse(&s, SIZES);
    size_t n = clpar_mlp_shape_param_count(&s);
    float *w0 = malloc(n * 4), *g0 = malloc(n * 4), *w = malloc(n * 4), *g = malloc(n * 4);
    float probe[9 * 13], out0[9 * 6], out[9 * 6];
    t_fill(probe, 9 * 13, 99, -1, 1);
    clpar_optim_kind kinds[3] = {CLPAR_OPTIM_SGD, CLPAR_OPTIM_ADAM, CLPAR_OPTIM_ADAMW};
    for (int k = 0; k < 3; k++) {
        clpar_trainer_config ref = config(1, kinds[k], devices, 4);
        run(&ref, &ds, w0, g0, probe, out0);
        for (int tp = 2; tp <= 4; tp++) {
            clpar_trainer_config c = config(tp, kinds[k], devices, 4);
            run(&c, &ds, w, g, probe, out);
            cr_expect_lt(t_rel_l2(w, w0, n), 1e-5, "optim %d tp %d: weights differ by %g", k, tp,
                         t_rel_l2(w, w0, n));
            cr_expect_lt(t_rel_l2(g, g0, n), 1e-5, "optim %d tp %d: gradients differ by %g", k, tp,
                         t_rel_l2(g, g0, n));
            for (int l = 0; l < s.nlayers; l++) {
                size_t off = clpar_mlp_shape_weight_offset(&s, l);
                size_t cnt = clpar_mlp_shape_layer_count(&s, l);
                cr_expect_lt(t_rel_l2(g + off, g0 + off, cnt), 1e-5, "tp %d layer %d gradient", tp,
                             l);
            }
            cr_expect_lt(t_rel_l2(out, out0, 9 * 6), 1e-5, "optim %d tp %d: outputs differ", k, tp);
        }
    }
    free(w0);
    free(g0);
    free(w);
    free(g);
    clpar_dataset_free(&ds);
}

Test(tensor_parallel, three_ranks_on_one_device_and_mse) {
    clpar_dataset ds = t_dataset(40, 13, 6, 1, 3);
    int one[3] = {0, 0, 0}, devices[1] = {0};
    clpar_trainer_config a = config(1, CLPAR_OPTIM_SGD, devices, 1);
    clpar_trainer_config b = config(3, CLPAR_OPTIM_SGD, one, 3);
    a.loss = b.loss = CLPAR_LOSS_MSE;
    cr_expect_lt(t_train_compare(&a, &b, &ds, 20, 0), 1e-5);
    clpar_dataset_free(&ds);
}

/* The shard sizes worked out by hand from the split rule (the first total % tp ranks get
 * one more): column layers split output features, the row layer its input features and
 * only shard 0 holds the row layer's bias. */
static size_t expected_shard(int tp, int t) {
    size_t h = 10 / tp + (t < 10 % tp), o = 6 / tp + (t < 6 % tp);
    return h * 13 + h + 7 * h + (t == 0 ? 7 : 0) + o * 7 + o;
}

Test(tensor_parallel, each_rank_holds_only_its_shard) {
    clpar_mlp_shape s;
    clpar_mlp_shape_parse(&s, SIZES);
    size_t n = clpar_mlp_shape_param_count(&s);
    float *params = malloc(n * 4);
    clpar_mlp_init_params(params, &s, 1);
    for (int tp = 2; tp <= 4; tp++) {
        clpar_device *devs[4];
        for (int r = 0; r < tp; r++)
            T_OK(clpar_device_init(t_runtime(), r, &devs[r]));
        clpar_mesh_config c;
        memset(&c, 0, sizeof c);
        c.shape = s;
        c.loss = CLPAR_LOSS_XENT;
        c.optim = clpar_optim_defaults(CLPAR_OPTIM_ADAM);
        c.dp = c.pp = 1;
        c.tp = tp;
        c.micro = 1;
        c.stage_layers[0] = 3;
        c.max_batch = 16;
        clpar_mesh *m;
        T_OK(clpar_mesh_init(devs, &c, params, &m));
        size_t total = 0;
        for (int r = 0; r < tp; r++) {
            clpar_rank_info ri;
            clpar_mesh_rank_info(m, r, &ri);
            cr_expect_eq(ri.param_count, expected_shard(tp, r), "tp %d rank %d holds %zu floats",
                         tp, r, ri.param_count);
            /* Adam: parameters, gradients and two moments, each of the shard's size */
            cr_expect_eq(ri.param_bytes, 4 * ri.param_count * sizeof(float));
            cr_expect_eq(clpar_device_allocated_bytes(devs[r]),
                         ri.param_bytes + ri.activation_bytes,
                         "rank %d allocated more than its shard and activations", r);
            total += ri.param_count;
        }
        cr_expect_eq(total, n, "the shards must add up to the model exactly once");
        clpar_mesh_free(m);
        for (int r = 0; r < tp; r++)
            clpar_device_free(devs[r]);
    }
    free(params);
}

Test(tensor_parallel, tp_larger_than_a_split_dimension_is_refused) {
    clpar_dataset ds = t_dataset(30, 13, 6, 0, 3);
    int devices[8] = {0, 1, 2, 3, 0, 1, 2, 3};
    clpar_trainer_config c = config(7, CLPAR_OPTIM_SGD, devices, 8);
    clpar_trainer *tr = NULL;
    cr_expect_eq(clpar_trainer_init(t_runtime(), &c, &ds, &tr), CLPAR_EINVAL);
    cr_expect(strstr(clpar_last_error(), "tp 7"), "%s", clpar_last_error());
    cr_expect(strstr(clpar_last_error(), "layer 2"), "%s", clpar_last_error());
    cr_expect_null(tr);
    clpar_dataset_free(&ds);
}
