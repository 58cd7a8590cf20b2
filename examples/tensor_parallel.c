/* The seed document's tensor-parallel example on OpenCL devices: an input of 2 x 4, a linear
 * layer whose 4 x 3 weight is split into its three columns, one per rank, each rank
 * computing its slice of the output, and the slices concatenated; printed beside the
 * unsplit product. (The seed multiplies x by the 4 x 3 matrix; in PyTorch's Linear(4, 3)
 * that matrix is W^T, so the split columns are the layer's output features.)
 *   usage: example_tensor_parallel [DEVICE-SPEC]      (default: all) */
#include "clpar/clpar.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int fail(const char *what) {
    fprintf(stderr, "example_tensor_parallel: %s: %s\n", what, clpar_last_error());
    return 1;
}

static void print_matrix(const char *title, const float *m, int rows, int cols) {
    printf("%s\n", title);
    for (int r = 0; r < rows; r++) {
        printf("  [");
        for (int c = 0; c < cols; c++)
            printf(" %9.5f", m[r * cols + c]);
        printf(" ]\n");
    }
}

int main(int argc, char **argv) {
    clpar_runtime *rt;
    if (clpar_runtime_init(&rt) != CLPAR_OK) return fail("OpenCL");
    int found[64], nfound;
    if (clpar_runtime_parse_spec(rt, argc > 1 ? argv[1] : "all", found, 64, &nfound) != CLPAR_OK)
        return fail("devices");
    clpar_device *devs[3];
    for (int r = 0; r < 3; r++)
        if (clpar_device_init(rt, found[r % nfound], &devs[r]) != CLPAR_OK) return fail("device");

    clpar_mlp_shape shape;
    clpar_mlp_shape_parse(&shape, "4,3");
    float params[4 * 3 + 3] = {0}; /* W (3, 4) then a zero bias: the seed uses no bias */
    clpar_rng rng;
    clpar_rng_seed(&rng, 7);
    for (int i = 0; i < 12; i++)
        params[i] = (float)(2 * clpar_rng_uniform(&rng) - 1) / 2;
    float x[2 * 4];
    for (int i = 0; i < 8; i++)
        x[i] = (float)clpar_rng_normal(&rng);

    clpar_mesh_config cfg = {0};
    cfg.shape = shape;
    cfg.loss = CLPAR_LOSS_MSE;
    cfg.optim = clpar_optim_defaults(CLPAR_OPTIM_SGD);
    cfg.dp = cfg.pp = 1;
    cfg.tp = 3; /* three ranks, one column each */
    cfg.micro = 1;
    cfg.stage_layers[0] = 1;
    cfg.max_batch = 2;
    clpar_mesh *mesh;
    if (clpar_mesh_init(devs, &cfg, params, &mesh) != CLPAR_OK) return fail("mesh");
    float split[2 * 3];
    if (clpar_mesh_predict(mesh, x, 2, split) != CLPAR_OK) return fail("forward");

    /* the unsplit product, once on one device (the same Linear module, whole) and once on the
     * host in double */
    float whole[2 * 3];
    clpar_mlp *one;
    if (clpar_mlp_init(devs[0], &shape, 2, &one) || clpar_mlp_set_params(one, params) ||
        clpar_mlp_upload(one, x, NULL, NULL, 2) || clpar_mlp_forward(one, 2) ||
        clpar_mlp_read_output(one, whole, 2))
        return fail("unsplit layer");
    double worst = 0;
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 3; c++) {
            double ref = 0;
            for (int k = 0; k < 4; k++)
                ref += (double)x[r * 4 + k] * params[c * 4 + k];
            worst = fmax(worst, fabs(split[r * 3 + c] - ref));
            worst = fmax(worst, fabs(whole[r * 3 + c] - ref));
        }

    printf("input data shape: (2, 4); weight W^T shape: (4, 3), split into 3 columns on 3 ranks "
           "(devices %d, %d, %d)\n",
           found[0 % nfound], found[1 % nfound], found[2 % nfound]);
    for (int r = 0; r < 3; r++) {
        float col[4];
        for (int k = 0; k < 4; k++)
            col[k] = params[r * 4 + k];
        char title[64];
        snprintf(title, sizeof title, "rank %d holds column %d of W^T:", r, r);
        print_matrix(title, col, 1, 4);
    }
    print_matrix("tensor-parallel result (slices concatenated), shape (2, 3):", split, 2, 3);
    print_matrix("unsplit result, shape (2, 3):", whole, 2, 3);
    printf("largest difference from the double-precision product: %.3g: %s\n", worst,
           worst < 1e-5 ? "they agree" : "THEY DIFFER");
    clpar_mlp_free(one);
    clpar_mesh_free(mesh);
    for (int r = 0; r < 3; r++)
        clpar_device_free(devs[r]);
    clpar_runtime_free(rt);
    return worst < 1e-5 ? 0 : 1;
}
