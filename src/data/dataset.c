/* The synthetic regression set, epoch order, and batch gathering. */
#include "clpar/data.h"
#include "clpar/rng.h"
#include "../runtime/internal.h"

#include <stdlib.h>
#include <string.h>

void clpar_dataset_free(clpar_dataset *ds) {
    free(ds->tokens);
    free(ds->x);
    free(ds->labels);
    free(ds->targets);
    memset(ds, 0, sizeof *ds);
}

static clpar_status make_split(clpar_rng *rng, const double *teacher, size_t n, clpar_dataset *ds) {
    const size_t in = 10, out = 5;
    ds->n = n;
    ds->in = in;
    ds->out = out;
    ds->labels = NULL;
    ds->x = malloc(n * in * sizeof(float));
    ds->targets = malloc(n * out * sizeof(float));
    if (!ds->x || !ds->targets) {
        clpar_dataset_free(ds);
        return clpar_error(CLPAR_ENOMEM, "out of host memory");
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < in; j++)
            ds->x[i * in + j] = (float)clpar_rng_normal(rng);
        for (size_t k = 0; k < out; k++) {
            double t = teacher[out * in + k];
            for (size_t j = 0; j < in; j++)
                t += teacher[k * in + j] * ds->x[i * in + j];
            ds->targets[i * out + k] = (float)(t + 0.1 * clpar_rng_normal(rng));
        }
    }
    return CLPAR_OK;
}

clpar_status clpar_dataset_synthetic(uint64_t seed, size_t n_train, size_t n_test,
                                     clpar_dataset *train, clpar_dataset *test) {
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (n_train == 0 || n_test == 0)
        return clpar_error(CLPAR_EINVAL, "synthetic data needs at least one sample per split");
    clpar_rng rng;
    clpar_rng_seed(&rng, seed ^ 0x5eedda7aull);
    double teacher[5 * 10 + 5]; /* W (5, 10) then b (5) */
    for (int i = 0; i < 55; i++)
        teacher[i] = clpar_rng_normal(&rng) / 3.0;
    TRY(make_split(&rng, teacher, n_train, train));
    clpar_status rc = make_split(&rng, teacher, n_test, test);
    if (rc != CLPAR_OK) clpar_dataset_free(train);
    return rc;
}

void clpar_dataset_order(size_t *order, size_t n, int shuffle, uint64_t seed, long epoch) {
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    if (!shuffle || n < 2) return;
    clpar_rng rng;
    clpar_rng_seed(&rng, seed * 0x9e3779b97f4a7c15ull + (uint64_t)epoch + 1);
    for (size_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        size_t j = (size_t)clpar_rng_below(&rng, i + 1);
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

void clpar_dataset_gather(const clpar_dataset *ds, const size_t *order, size_t first, size_t count,
                          void *x, int *labels, float *targets) {
    size_t lw = ds->label_width ? ds->label_width : 1;
    for (size_t r = 0; r < count; r++) {
        size_t s = order[first + r];
        if (ds->tokens)
            memcpy((int *)x + r * ds->in, ds->tokens + s * ds->in, ds->in * sizeof(int));
        else
            memcpy((float *)x + r * ds->in, ds->x + s * ds->in, ds->in * sizeof(float));
        if (labels && ds->labels) memcpy(labels + r * lw, ds->labels + s * lw, lw * sizeof(int));
        if (targets && ds->targets)
            memcpy(targets + r * ds->out, ds->targets + s * ds->out, ds->out * sizeof(float));
    }
}
