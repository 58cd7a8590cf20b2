/* ZeRO-1: the optimizer state split across data-parallel replicas gives the update of
 * unsharded training (with every strategy beside it, slices that come out empty, AdamW with
 * weight decay and clipping), holds 1/dp of the state per rank as the plan predicts, and its
 * checkpoints are whole: they resume without ZeRO. */
#include "train_common.h"

static clpar_trainer_config config(const char *sizes, int dp, int pp, int tp, int zero,
                                   const int *devices) {
    clpar_trainer_config c;
    memset(&c, 0, sizeof c);
    clpar_mlp_shape_parse(&c.shape, sizes);
    c.loss = CLPAR_LOSS_XENT;
    c.optim = clpar_optim_defaults(CLPAR_OPTIM_ADAMW);
    c.optim.lr = 0.01f;
    c.optim.weight_decay = 0.1f;
    c.clip = 0.5f;
    c.reduce = CLPAR_REDUCE_MEAN;
    c.batch = 30;
    c.dp = dp;
    c.pp = pp;
    c.tp = tp;
    c.accum = 1;
    c.zero = zero;
    c.seed = 5;
    c.devices = devices;
    c.ndevices = 8;
    return c;
}

static const int devices[8] = {0, 1, 2, 3, 0, 1, 2, 3};

/* Trains a and b `steps` steps; returns the relative L2 distance of b's weights and of each
 * optimizer state from a's (the larger). b's replicas are checked after every step. */
static double compare(const clpar_trainer_config *a, const clpar_trainer_config *b,
                      const clpar_dataset *ds, long steps) {
    size_t n = clpar_mlp_shape_param_count(&a->shape);
    float *sa = malloc(n * 4), *sb = malloc(n * 4);
    double worst = t_train_compare(a, b, ds, steps, 1);
    clpar_trainer *ta, *tb;
    T_OK(clpar_trainer_init(t_runtime(), a, ds, &ta));
    T_OK(clpar_trainer_init(t_runtime(), b, ds, &tb));
    for (long s = 0; s < steps; s++) {
        clpar_step_info info;
        T_OK(clpar_trainer_step(ta, &info));
        T_OK(clpar_trainer_step(tb, &info));
    }
    for (int i = 0; i < clpar_optim_config_state_count(&a->optim); i++) {
        T_OK(clpar_mesh_get_optim_state(clpar_trainer_mesh(ta), i, sa));
        T_OK(clpar_mesh_get_optim_state(clpar_trainer_mesh(tb), i, sb));
        double e = t_rel_l2(sb, sa, n);
        if (e > worst) worst = e;
    }
    clpar_trainer_free(ta);
    clpar_trainer_free(tb);
    free(sa);
    free(sb);
    return worst;
}

Test(zero, equals_unsharded_with_every_strategy) {
    clpar_dataset ds = t_dataset(90, 12, 6, 0, 3);
    /* 1,936 parameters: slices of 384, 512, 512 and 528 floats for dp 4 */
    struct {
        int dp, pp, tp;
    } meshes[] = {{2, 1, 1}, {3, 1, 1}, {4, 1, 1}, {2, 2, 1}, {2, 1, 2}, {2, 2, 2}};
    for (size_t i = 0; i < sizeof meshes / sizeof *meshes; i++) {
        clpar_trainer_config a =
            config("12,40,30,6", meshes[i].dp, meshes[i].pp, meshes[i].tp, 0, devices);
        clpar_trainer_config b = a;
        b.zero = 1;
        double e = compare(&a, &b, &ds, 6);
        cr_expect_lt(e, 1e-5, "dp %d pp %d tp %d: ZeRO-1 is %g from unsharded", meshes[i].dp,
                     meshes[i].pp, meshes[i].tp, e);
    }
    clpar_dataset_free(&ds);
}

Test(zero, empty_slices_and_sgd) {
    /* 12,10,6: 196 parameters over 4 replicas: slices [0,0), [0,0), [0,128), [128,196) */
    clpar_dataset ds = t_dataset(60, 12, 6, 0, 4);
    clpar_trainer_config a = config("12,10,6", 4, 1, 1, 0, devices), b;
    b = a;
    b.zero = 1;
    cr_expect_lt(compare(&a, &b, &ds, 5), 1e-5);
    a.optim = clpar_optim_defaults(CLPAR_OPTIM_SGD);
    a.optim.lr = 0.05f;
    a.optim.momentum = 0.9f;
    a.clip = 0;
    b = a;
    b.zero = 1;
    cr_expect_lt(compare(&a, &b, &ds, 5), 1e-5);
    clpar_dataset_free(&ds);
}

Test(zero, state_per_rank_is_a_slice_as_planned) {
    clpar_dataset ds = t_dataset(60, 12, 6, 0, 4);
    clpar_trainer_config c = config("12,40,30,6", 4, 1, 1, 1, devices);
    clpar_trainer *tr;
    T_OK(clpar_trainer_init(t_runtime(), &c, &ds, &tr));
    clpar_mesh *m = clpar_trainer_mesh(tr);
    clpar_mesh_config mc = *clpar_mesh_get_config(m), whole = mc;
    whole.zero = 0;
    size_t n = clpar_mlp_shape_param_count(&c.shape), state = 0;
    for (int r = 0; r < 4; r++) {
        clpar_rank_info got, planned, unsharded;
        clpar_mesh_rank_info(m, r, &got);
        T_OK(clpar_mesh_plan_rank(&mc, r, &planned));
        T_OK(clpar_mesh_plan_rank(&whole, r, &unsharded));
        cr_expect_eq(got.param_bytes, planned.param_bytes, "rank %d: %zu bytes, planned %zu", r,
                     got.param_bytes, planned.param_bytes);
        cr_expect_lt(got.param_bytes, unsharded.param_bytes);
        state += got.param_bytes - 2 * n * sizeof(float); /* Adam: two floats per slice float */
    }
    cr_expect_eq(state, 2 * n * sizeof(float), "the slices' state must cover the model once");
    clpar_trainer_free(tr);
    clpar_dataset_free(&ds);
}

Test(zero, checkpoints_resume_without_zero) {
    clpar_dataset ds = t_dataset(90, 12, 6, 0, 3);
    clpar_trainer_config plain = config("12,40,30,6", 1, 1, 1, 0, devices);
    clpar_trainer_config zero = config("12,40,30,6", 3, 1, 1, 1, devices);
    size_t n = clpar_mlp_shape_param_count(&plain.shape);
    float *ref = malloc(n * 4), *got = malloc(n * 4);
    t_train(&plain, &ds, 8, ref, 0);
    clpar_trainer *tr;
    T_OK(clpar_trainer_init(t_runtime(), &zero, &ds, &tr));
    clpar_step_info info;
    for (int s = 0; s < 4; s++)
        T_OK(clpar_trainer_step(tr, &info));
    const char *path = t_tmp("zero.safetensors");
    T_OK(clpar_trainer_checkpoint(tr, path, NULL, 0));
    clpar_trainer_free(tr);
    T_OK(clpar_trainer_init(t_runtime(), &plain, &ds, &tr));
    T_OK(clpar_trainer_restore(tr, path));
    for (int s = 4; s < 8; s++)
        T_OK(clpar_trainer_step(tr, &info));
    T_OK(clpar_trainer_get_params(tr, got));
    double e = t_rel_l2(got, ref, n);
    cr_expect_lt(e, 1e-5, "resumed without ZeRO: %g from uninterrupted", e);
    clpar_trainer_free(tr);
    free(ref);
    free(got);
    clpar_dataset_free(&ds);
}

Test(zero, bad_settings_are_named) {
    clpar_dataset ds = t_dataset(60, 12, 6, 0, 4);
    clpar_trainer *tr = NULL;
    clpar_trainer_config c = config("12,10,6", 2, 1, 1, 2, devices);
    cr_expect_eq(clpar_trainer_init(t_runtime(), &c, &ds, &tr), CLPAR_EINVAL);
    cr_expect(strstr(clpar_last_error(), "zero must be 0 or 1"), "%s", clpar_last_error());
    cr_expect_null(tr);
    /* across processes: as many ranks on each (3 x 2 over 2 cuts a replica, which ZeRO takes) */
    clpar_mesh_config mc = {.dp = 3, .pp = 2, .tp = 1, .zero = 1};
    T_OK(clpar_mesh_check_processes(&mc, 2));
    cr_expect_eq(clpar_mesh_check_processes(&mc, 4), CLPAR_EINVAL);
    cr_expect(strstr(clpar_last_error(), "6 ranks"), "%s", clpar_last_error());
    clpar_dataset_free(&ds);
}
