/* Data sets held in host memory: Fashion-MNIST from its IDX files, and the synthetic
 * regression set of the seed document's data-parallel example; plus the order in which an
 * epoch visits them and the gathering of a batch. */
#ifndef CLPAR_DATA_H
#define CLPAR_DATA_H

#include "clpar/status.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    size_t n;       /* samples */
    size_t in;      /* features per sample */
    size_t out;     /* classes (labels) or targets per sample */
    float *x;       /* (n, in) */
    int *labels;    /* (n) for classification, else NULL */
    float *targets; /* (n, out) for regression, else NULL */
} clpar_dataset;

#define CLPAR_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* Loads train-{images-idx3,labels-idx1}-ubyte and t10k-... from dir, each either gzip'd
 * (".gz") or plain. Pixels become x / 255. A missing file, wrong magic, counts that disagree,
 * images that are not 28x28, labels over 9 or truncated data are CLPAR_EIO / CLPAR_EFORMAT
 * naming the file. The caller frees both sets with clpar_dataset_free. */
CLPAR_API clpar_status clpar_dataset_load_fashion_mnist(const char *dir, clpar_dataset *train,
                                                        clpar_dataset *test);

/* The seed document's regression problem: 10 inputs, 5 targets, x ~ N(0, 1), and targets
 * from a fixed random linear teacher plus noise, all from seed; n_train and n_test samples. */
CLPAR_API clpar_status clpar_dataset_synthetic(uint64_t seed, size_t n_train, size_t n_test,
                                               clpar_dataset *train, clpar_dataset *test);

CLPAR_API void clpar_dataset_free(clpar_dataset *ds);

/* The visiting order of epoch `epoch`: 0..n-1 when shuffle is 0, otherwise a permutation
 * that depends on seed and epoch alone. order holds n entries. */
CLPAR_API void clpar_dataset_order(size_t *order, size_t n, int shuffle, uint64_t seed, long epoch);

/* Copies samples order[first .. first + count) into x (count, in) and labels or targets. */
CLPAR_API void clpar_dataset_gather(const clpar_dataset *ds, const size_t *order, size_t first,
                                    size_t count, float *x, int *labels, float *targets);

#ifdef __cplusplus
}
#endif
#endif
