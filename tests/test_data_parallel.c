/* Data parallelism and gradient accumulation give the weights of single-device
 * full-batch training: dp 1..4 x accum {1, 4}, uneven shards, both losses, SGD with
 * momentum; replicas identical after every step; --save writes the full model. */
#include "train_common.h"

static clpar_trainer_config config(clpar_loss_kind loss, const char *sizes, int dp, int accum,
                                   const int *devices) {
    clpar_trainer_config c;
    memset(&c, 0, sizeof c);
    clpar_mlp_shape_parse(&c.shape, sizes);
    c.loss = loss;
    c.optim = clpar_optim_defaults(CLPAR_OPTIM_SGD);
    c.optim.lr = 0.05f;
    c.optim.momentum = 0.9f;
    c.reduce = CLPAR_REDUCE_MEAN;
    c.batch = 30; /* 30 over 4 ranks: 8, 8, 7, 7; then 4 micro-batches of 7: 2, 2, 2, 1 */
    c.dp = dp;
    c.accum = accum;
    c.shuffle = 1;
    c.seed = 11;
    c.devices = devices;
    c.ndevices = 4;
    return c;
}

static void equivalence(clpar_loss_kind loss) {
    /* 95 samples, batch 30: every epoch ends with a partial batch of 5 */
    int regression = loss == CLPAR_LOSS_MSE;
    const char *sizes = regression ? "12,17,9,5" : "12,17,9,6";
    clpar_dataset ds = t_dataset(95, 12, regression ? 5 : 6, regression, 3);
    int devices[4] = {0, 1, 2, 3};
    clpar_trainer_config ref_cfg = config(loss, sizes, 1, 1, devices);
    size_t n = clpar_mlp_shape_param_count(&ref_cfg.shape);
    float *ref = malloc(n * 4), *got = malloc(n * 4), *init = malloc(n * 4);
    clpar_mlp_init_params(init, &ref_cfg.shape, ref_cfg.seed);
    t_train(&ref_cfg, &ds, 20, ref, 0);
    cr_assert_gt(t_rel_l2(ref, init, n), 1e-3, "training did not move the weights");
    for (int dp = 1; dp <= 4; dp++)
        for (int accum = 1; accum <= 4; accum += 3) {
            if (dp == 1 && accum == 1) continue;
            clpar_trainer_config c = config(loss, sizes, dp, accum, devices);
            t_train(&c, &ds, 20, got, 1);
            double e = t_rel_l2(got, ref, n);
            cr_expect_lt(e, 1e-5, "dp %d accum %d: relative L2 %g from single-device", dp, accum,
                         e);
        }
    free(ref);
    free(got);
    free(init);
    clpar_dataset_free(&ds);
}

Test(data_parallel, equals_single_device_cross_entropy) {
    equivalence(CLPAR_LOSS_XENT);
}

Test(data_parallel, equals_single_device_mse) {
    equivalence(CLPAR_LOSS_MSE);
}

Test(data_parallel, ranks_sharing_one_device) {
    clpar_dataset ds = t_dataset(64, 12, 6, 0, 5);
    int one[4] = {0, 0, 0, 0}, devices[4] = {0, 1, 2, 3};
    clpar_trainer_config a = config(CLPAR_LOSS_XENT, "12,10,6", 1, 1, devices);
    clpar_trainer_config b = config(CLPAR_LOSS_XENT, "12,10,6", 3, 2, one);
    cr_expect_lt(t_train_compare(&a, &b, &ds, 10, 1), 1e-5);
    clpar_dataset_free(&ds);
}

/* The seed's reduction: every micro-batch's own mean gradient, summed. With equal shards
 * this is (ranks x accum) times the mean gradient, so SGD without momentum with lr / k
 * matches single-device training with lr. */
Test(data_parallel, sum_reduction_is_the_seeds) {
    clpar_dataset ds = t_dataset(40, 12, 5, 1, 9);
    int devices[4] = {0, 1, 2, 3};
    clpar_trainer_config a = config(CLPAR_LOSS_MSE, "12,5", 1, 1, devices);
    a.batch = 40;
    a.optim.momentum = 0;
    clpar_trainer_config b = a;
    b.dp = 2;
    b.accum = 2;
    b.reduce = CLPAR_REDUCE_SUM;
    b.optim.lr = a.optim.lr / 4;
    cr_expect_lt(t_train_compare(&a, &b, &ds, 10, 1), 1e-5);
    clpar_dataset_free(&ds);
}

Test(data_parallel, save_writes_the_full_model) {
    clpar_dataset ds = t_dataset(50, 12, 6, 0, 7);
    int devices[4] = {0, 1, 2, 3};
    clpar_trainer_config c = config(CLPAR_LOSS_XENT, "12,10,6", 3, 1, devices);
    clpar_trainer *tr;
    T_OK(clpar_trainer_init(t_runtime(), &c, &ds, &tr));
    clpar_step_info info;
    T_OK(clpar_trainer_step(tr, &info));
    size_t n = clpar_mlp_shape_param_count(&c.shape);
    float *p = malloc(n * 4), *q = malloc(n * 4);
    T_OK(clpar_trainer_get_params(tr, p));
    const char *path = t_tmp("dp.safetensors");
    T_OK(clpar_trainer_save(tr, path));
    T_OK(clpar_model_load(path, &c.shape, q));
    cr_expect(!memcmp(p, q, n * 4));
    clpar_st *st;
    T_OK(clpar_st_read(path, &st));
    cr_expect_eq(clpar_st_count(st), 4, "the file must hold the whole model, not a shard");
    clpar_st_free(st);
    clpar_trainer_free(tr);
    free(p);
    free(q);
    clpar_dataset_free(&ds);
}

Test(data_parallel, bad_configurations_are_named) {
    clpar_dataset ds = t_dataset(50, 12, 6, 0, 7);
    int devices[4] = {0, 1, 2, 3};
    clpar_trainer *tr = NULL;
    clpar_trainer_config c = config(CLPAR_LOSS_XENT, "12,10,6", 3, 1, devices);
    c.batch = 2;
    cr_expect_eq(clpar_trainer_init(t_runtime(), &c, &ds, &tr), CLPAR_EINVAL);
    cr_expect(strstr(clpar_last_error(), "dp 3 is larger than batch 2"), "%s", clpar_last_error());
    c = config(CLPAR_LOSS_XENT, "12,10,6", 0, 1, devices);
    cr_expect_eq(clpar_trainer_init(t_runtime(), &c, &ds, &tr), CLPAR_EINVAL);
    c = config(CLPAR_LOSS_XENT, "12,10,6", 2, 0, devices);
    cr_expect_eq(clpar_trainer_init(t_runtime(), &c, &ds, &tr), CLPAR_EINVAL);
    c = config(CLPAR_LOSS_XENT, "12,10,6", 4, 1, devices);
    c.ndevices = 2;
    cr_expect_eq(clpar_trainer_init(t_runtime(), &c, &ds, &tr), CLPAR_EINVAL);
    cr_expect(strstr(clpar_last_error(), "device spec"), "%s", clpar_last_error());
    c = config(CLPAR_LOSS_XENT, "13,10,6", 1, 1, devices);
    cr_expect_eq(clpar_trainer_init(t_runtime(), &c, &ds, &tr), CLPAR_ESHAPE);
    cr_expect_null(tr);
    clpar_dataset_free(&ds);
}

Test(training, loss_falls) {
    clpar_dataset tr_ds, te_ds;
    T_OK(clpar_dataset_synthetic(1, 400, 100, &tr_ds, &te_ds));
    int devices[1] = {0};
    clpar_trainer_config c = config(CLPAR_LOSS_MSE, "10,16,5", 1, 1, devices);
    c.ndevices = 1;
    c.batch = 40;
    c.optim = clpar_optim_defaults(CLPAR_OPTIM_ADAM);
    c.optim.lr = 0.01f;
    clpar_trainer *tr;
    T_OK(clpar_trainer_init(t_runtime(), &c, &tr_ds, &tr));
    double before, after, acc;
    T_OK(clpar_trainer_evaluate(tr, &te_ds, &before, &acc));
    for (int s = 0; s < 60; s++) {
        clpar_step_info info;
        T_OK(clpar_trainer_step(tr, &info));
    }
    T_OK(clpar_trainer_evaluate(tr, &te_ds, &after, &acc));
    cr_expect_lt(after, 0.5 * before, "test loss %g -> %g", before, after);
    clpar_trainer_free(tr);
    clpar_dataset_free(&tr_ds);
    clpar_dataset_free(&te_ds);
}
