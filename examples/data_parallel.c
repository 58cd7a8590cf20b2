/* The seed document's data-parallel example on OpenCL devices: Linear(10, 5), 100 random
 * samples in four shards of 25, MSE, SGD with lr 0.01, the four shards' gradients summed,
 * 100 epochs, the loss every 10. The four ranks run on the devices found (repeated when
 * there are fewer than four, as the seed simulates four GPUs on one); the same training
 * then runs on one device as gradient accumulation, and both are compared.
 *   usage: example_data_parallel [DEVICE-SPEC]      (default: all) */
#include "clpar/clpar.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int fail(const char *what) {
    fprintf(stderr, "example_data_parallel: %s: %s\n", what, clpar_last_error());
    return 1;
}

/* Trains and returns the weights; prints the loss every 10 epochs when verbose. */
static int train(clpar_runtime *rt, clpar_trainer_config *cfg, const clpar_dataset *ds,
                 float *params, int verbose) {
    clpar_trainer *tr;
    if (clpar_trainer_init(rt, cfg, ds, &tr) != CLPAR_OK) return fail("trainer");
    for (int epoch = 0; epoch < 100; epoch++) {
        clpar_step_info info;
        if (clpar_trainer_step(tr, &info) != CLPAR_OK) return fail("step");
        if (verbose && epoch % 10 == 0) printf("Epoch %d, Loss: %.6f\n", epoch, info.loss);
    }
    int rc = clpar_trainer_get_params(tr, params) != CLPAR_OK ? fail("read weights") : 0;
    clpar_trainer_free(tr);
    return rc;
}

int main(int argc, char **argv) {
    clpar_runtime *rt;
    if (clpar_runtime_init(&rt) != CLPAR_OK) return fail("OpenCL");
    int found[64], nfound, devices[4];
    if (clpar_runtime_parse_spec(rt, argc > 1 ? argv[1] : "all", found, 64, &nfound) != CLPAR_OK)
        return fail("devices");
    for (int r = 0; r < 4; r++)
        devices[r] = found[r % nfound];

    /* inputs = [randn(25, 10) for 4], targets = [randn(25, 5) for 4] */
    clpar_dataset ds = {
        .n = 100, .in = 10, .out = 5, .x = malloc(100 * 10 * 4), .targets = malloc(100 * 5 * 4)};
    clpar_rng rng;
    clpar_rng_seed(&rng, 2024);
    for (int i = 0; i < 100 * 10; i++)
        ds.x[i] = (float)clpar_rng_normal(&rng);
    for (int i = 0; i < 100 * 5; i++)
        ds.targets[i] = (float)clpar_rng_normal(&rng);

    clpar_trainer_config cfg = {0};
    clpar_mlp_shape_parse(&cfg.shape, "10,5");
    cfg.loss = CLPAR_LOSS_MSE;
    cfg.optim = clpar_optim_defaults(CLPAR_OPTIM_SGD);
    cfg.optim.lr = 0.01f;
    cfg.reduce = CLPAR_REDUCE_SUM; /* the seed sums the shards' gradients */
    cfg.batch = 100;               /* one step per epoch: the four shards together */
    cfg.dp = 4;
    cfg.accum = 1;
    cfg.shuffle = 0;
    cfg.seed = 0;
    cfg.devices = devices;
    cfg.ndevices = 4;

    printf("data parallel: 4 ranks of 25 samples on devices %d,%d,%d,%d\n", devices[0], devices[1],
           devices[2], devices[3]);
    float dp_w[55], one_w[55];
    if (train(rt, &cfg, &ds, dp_w, 1)) return 1;
    /* the same on one device: four micro-batches of 25 accumulated, as the seed's loop does */
    cfg.dp = 1;
    cfg.accum = 4;
    printf("one device, 4 accumulated micro-batches of 25:\n");
    if (train(rt, &cfg, &ds, one_w, 1)) return 1;
    double num = 0, den = 0;
    for (int i = 0; i < 55; i++) {
        num += pow((double)dp_w[i] - one_w[i], 2);
        den += (double)one_w[i] * one_w[i];
    }
    double rel = sqrt(num / den);
    printf("weights: relative L2 difference %.3g between 4 ranks and one device: %s\n", rel,
           rel < 1e-5 ? "they agree" : "THEY DIFFER");
    free(ds.x);
    free(ds.targets);
    clpar_runtime_free(rt);
    return rel < 1e-5 ? 0 : 1;
}
