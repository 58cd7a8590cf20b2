/* Ranks on two OpenCL platforms (PoCL and Oclgrind: separate contexts, no shared events)
 * train together and match single-device training: replicas of data parallelism, pipeline
 * stages handing activations and gradients across the platforms under both schedules, and
 * tensor-parallel shards reducing and gathering across them. */
#include "train_common.h"

/* The first device whose platform name contains `name`, or -1. */
static int find_device(const char *name) {
    clpar_runtime *rt = t_runtime();
    for (int i = 0; i < clpar_runtime_device_count(rt); i++)
        if (strstr(clpar_runtime_device_info(rt, i)->platform_name, name)) return i;
    return -1;
}

/* Trains a small MLP for 4 steps on a dp x pp x tp mesh over PoCL, Oclgrind, PoCL (ranks
 * in that order) and compares the weights with one PoCL device's. */
static void expect_equal(const char *what, int dp, int pp, int tp, int micro,
                         clpar_schedule schedule) {
    int pocl = find_device("Portable Computing Language"), grind = find_device("Oclgrind");
    cr_assert(pocl >= 0 && grind >= 0, "needs two platforms: set OCL_ICD_VENDORS to a folder "
                                       "with PoCL's and Oclgrind's .icd files (ctest does)");
    clpar_dataset ds = t_dataset(24, 6, 3, 0, 21);
    /* Oclgrind's simulator runs one kernel at a time per process, so it gets one rank */
    int devices[3] = {pocl, grind, pocl};
    clpar_trainer_config c;
    memset(&c, 0, sizeof c);
    clpar_mlp_shape_parse(&c.shape, "6,5,4,3");
    c.loss = CLPAR_LOSS_XENT;
    c.optim = clpar_optim_defaults(CLPAR_OPTIM_ADAM);
    c.optim.lr = 0.01f;
    c.batch = 11;
    c.dp = c.pp = c.tp = c.accum = c.micro_batches = 1;
    c.seed = 4;
    c.devices = devices;
    c.ndevices = 3;
    clpar_trainer_config m = c;
    m.dp = dp, m.pp = pp, m.tp = tp, m.micro_batches = micro, m.schedule = schedule;
    double e = t_train_compare(&c, &m, &ds, 4, 1);
    cr_expect_lt(e, 1e-5, "%s: relative L2 %g from single-device", what, e);
    clpar_dataset_free(&ds);
}

Test(cross_platform, pipeline_stages_on_two_platforms) {
    /* stage 0 on PoCL, stage 1 on Oclgrind, stage 2 on PoCL; 3 uneven micro-batches */
    expect_equal("pp 2 gpipe", 1, 2, 1, 3, CLPAR_SCHEDULE_GPIPE);
    expect_equal("pp 2 1f1b", 1, 2, 1, 3, CLPAR_SCHEDULE_1F1B);
    expect_equal("pp 3 1f1b", 1, 3, 1, 3, CLPAR_SCHEDULE_1F1B);
}

Test(cross_platform, tensor_shards_on_two_platforms) {
    expect_equal("tp 3", 1, 1, 3, 1, CLPAR_SCHEDULE_GPIPE);
}

Test(cross_platform, data_parallel_equals_single_device) {
    expect_equal("dp 3", 3, 1, 1, 1, CLPAR_SCHEDULE_GPIPE); /* shards of 4, 4, 3 rows */
}
