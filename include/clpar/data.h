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
    size_t n;           /* samples */
    size_t in;          /* features (or token ids) per sample */
    size_t out;         /* classes (labels) or targets per sample */
    float *x;           /* (n, in), or NULL for token data */
    int *labels;        /* (n, label_width) for classification, else NULL */
    float *targets;     /* (n, out) for regression, else NULL */
    int *tokens;        /* (n, in) token ids of text, instead of x; else NULL */
    size_t label_width; /* labels per sample: 0 or 1, or a sequence's next tokens */
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

/* Text as bytes (a vocabulary of 256): the first floor(0.9 n) bytes train, the rest
 * validate. Sample j of a part holds inputs tokens[j ctx, j ctx + ctx) and labels (the next
 * tokens) tokens[j ctx + 1, j ctx + ctx + 1), j < floor((part's bytes - 1) / ctx). A file
 * that cannot be read is CLPAR_EIO, one too short for a sample of each part CLPAR_EINVAL
 * naming ctx. */
CLPAR_API clpar_status clpar_dataset_load_text(const char *path, size_t ctx, clpar_dataset *train,
                                               clpar_dataset *val);

CLPAR_API void clpar_dataset_free(clpar_dataset *ds);

/* The visiting order of epoch `epoch`: 0..n-1 when shuffle is 0, otherwise a permutation
 * that depends on seed and epoch alone. order holds n entries. */
CLPAR_API void clpar_dataset_order(size_t *order, size_t n, int shuffle, uint64_t seed, long epoch);

/* Copies samples order[first .. first + count) into x (count, in: floats, or token ids for
 * token data) and labels (count, label_width) or targets. */
CLPAR_API void clpar_dataset_gather(const clpar_dataset *ds, const size_t *order, size_t first,
                                    size_t count, void *x, int *labels, float *targets);

#ifdef __cplusplus
}
#endif
#endif
