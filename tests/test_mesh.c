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
