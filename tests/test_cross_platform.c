/* Ranks on two OpenCL platforms (PoCL and Oclgrind: separate contexts, no shared events)
 * train together and match single-device training; replicas stay identical. */
#include "train_common.h"

/* The first device whose platform name contains `name`, or -1. */
static int find_device(const char *name) {
    clpar_runtime *rt = t_runtime();
    for (int i = 0; i < clpar_runtime_device_count(rt); i++)
        if (strstr(clpar_runtime_device_info(rt, i)->platform_name, name)) return i;
    return -1;
}

Test(cross_platform, data_parallel_equals_single_device) {
    int pocl = find_device("Portable Computing Language"), grind = find_device("Oclgrind");
    cr_assert(pocl >= 0 && grind >= 0, "needs two platforms: set OCL_ICD_VENDORS to a folder "
                                       "with PoCL's and Oclgrind's .icd files (ctest does)");
    clpar_dataset ds = t_dataset(24, 6, 3, 0, 21);
    /* two ranks share the PoCL device; Oclgrind's simulator runs one kernel at a time per
     * process, so it gets one rank */
    int devices[3] = {pocl, grind, pocl};
    clpar_trainer_config c;
    memset(&c, 0, sizeof c);
    clpar_mlp_shape_parse(&c.shape, "6,5,3");
    c.loss = CLPAR_LOSS_XENT;
    c.optim = clpar_optim_defaults(CLPAR_OPTIM_ADAM);
    c.optim.lr = 0.01f;
    c.batch = 11; /* shards of 4, 4, 3 */
    c.dp = 1;
    c.accum = 1;
    c.seed = 4;
    c.devices = devices;
    c.ndevices = 3;
    size_t n = clpar_mlp_shape_param_count(&c.shape);
    float *ref = malloc(n * 4), *got = malloc(n * 4);
    t_train(&c, &ds, 4, ref, 0);
    c.dp = 3;
    t_train(&c, &ds, 4, got, 1);
    double e = t_rel_l2(got, ref, n);
    cr_expect_lt(e, 1e-5, "relative L2 %g from single-device", e);
    free(ref);
    free(got);
    clpar_dataset_free(&ds);
}
