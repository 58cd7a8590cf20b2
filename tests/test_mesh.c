/* 3D meshes (dp x pp x tp) with uneven shards and both schedules give the weights of
 * single-device training. */
#include "train_common.h"

Test(mesh, three_d_meshes_equal_single_device) {
    /* 5 layers: stages of 2-3 layers pair column and row shards, and leave one over */
    clpar_dataset ds = t_dataset(77, 11, 6, 0, 31);
    int devices[8] = {0, 1, 2, 3, 0, 1, 2, 3};
    clpar_trainer_config c;
    memset(&c, 0, sizeof c);
    clpar_mlp_shape_parse(&c.shape, "11,10,9,8,7,6");
    c.loss = CLPAR_LOSS_XENT;
    c.optim = clpar_optim_defaults(CLPAR_OPTIM_ADAM);
    c.optim.lr = 0.01f;
    c.batch = 29;
    c.dp = c.pp = c.tp = c.accum = c.micro_batches = 1;
    c.shuffle = 1;
    c.seed = 3;
    c.devices = devices;
    c.ndevices = 8;
    size_t n = clpar_mlp_shape_param_count(&c.shape);
    float *w0 = malloc(n * 4), *w = malloc(n * 4);
    t_train(&c, &ds, 20, w0, 0);
    int meshes[][3] = {{2, 2, 2}, {1, 2, 2}, {2, 1, 3}, {3, 2, 1}};
    for (int i = 0; i < 4; i++)
        for (int s = 0; s < 2; s++) {
            clpar_trainer_config m = c;
            m.dp = meshes[i][0], m.pp = meshes[i][1], m.tp = meshes[i][2];
            m.micro_batches = 3;
            m.schedule = (clpar_schedule)s;
            t_train(&m, &ds, 20, w, m.dp > 1);
            double e = t_rel_l2(w, w0, n);
            cr_expect_lt(e, 1e-5, "mesh %dx%dx%d %s: relative L2 %g", m.dp, m.pp, m.tp,
                         s ? "1f1b" : "gpipe", e);
        }
    free(w0);
    free(w);
    clpar_dataset_free(&ds);
}

/* The plan worked out without devices matches what a built mesh holds, rank by rank. */
Test(mesh, planned_memory_matches_the_built_mesh) {
    clpar_mesh_config c;
    memset(&c, 0, sizeof c);
    clpar_mlp_shape_parse(&c.shape, "11,10,9,8,7,6");
    c.loss = CLPAR_LOSS_XENT;
    c.optim = clpar_optim_defaults(CLPAR_OPTIM_ADAM);
    c.dp = 2, c.pp = 2, c.tp = 2, c.micro = 3;
    c.schedule = CLPAR_SCHEDULE_1F1B;
    c.max_batch = 29;
    T_OK(clpar_stages_balance(&c.shape, 2, c.stage_layers));
    size_t n = clpar_mlp_shape_param_count(&c.shape);
    float *params = calloc(n, sizeof(float));
    clpar_device *devs[8];
    for (int r = 0; r < 8; r++)
        T_OK(clpar_device_init(t_runtime(), r % 4, &devs[r]));
    clpar_mesh *m;
    T_OK(clpar_mesh_init(devs, &c, params, &m));
    for (int r = 0; r < 8; r++) {
        clpar_rank_info built, planned;
        clpar_mesh_rank_info(m, r, &built);
        clpar_mesh_plan_rank(&c, r, &planned);
        cr_expect_eq(planned.param_count, built.param_count, "rank %d", r);
        cr_expect_eq(planned.param_bytes, built.param_bytes, "rank %d", r);
        cr_expect_eq(planned.activation_bytes, built.activation_bytes, "rank %d", r);
        cr_expect_eq(planned.activation_slots, built.activation_slots, "rank %d", r);
    }
    clpar_mesh_free(m);
    for (int r = 0; r < 8; r++)
        clpar_device_free(devs[r]);
    free(params);
}

Test(mesh, planner_ranks_feasible_meshes) {
    clpar_mesh_config c;
    memset(&c, 0, sizeof c);
    clpar_mlp_shape_parse(&c.shape, "64,256,256,10");
    c.optim = clpar_optim_defaults(CLPAR_OPTIM_SGD);
    c.max_batch = 64;
    clpar_device_measure m[4];
    for (int i = 0; i < 4; i++)
        m[i] = (clpar_device_measure){i, 10.0, 5.0, 5.0, 1u << 30, 0};
    clpar_plan plans[64];
    int count;
    T_OK(clpar_planner_plan(&c, m, 4, plans, 64, &count));
    cr_assert_gt(count, 4);
    for (int i = 0; i + 1 < count && i + 1 < 64; i++)
        cr_expect_leq(plans[i].step_s, plans[i + 1].step_s, "plans are not sorted");
    for (int i = 0; i < count && i < 64; i++) {
        cr_expect_leq(plans[i].cfg.dp * plans[i].cfg.pp * plans[i].cfg.tp, 4);
        cr_expect_eq(clpar_mesh_validate(&plans[i].cfg), CLPAR_OK);
    }
    /* a device too small for any layout leaves nothing */
    for (int i = 0; i < 4; i++)
        m[i].memory = 1000;
    cr_expect_eq(clpar_planner_plan(&c, m, 4, plans, 64, &count), CLPAR_EINVAL);
}
