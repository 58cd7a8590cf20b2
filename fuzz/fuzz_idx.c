/* IDX files as the Fashion-MNIST loader reads them, plain or gzip: the input is cut into an
 * images file and a labels file (its first two bytes give the images file's length), written
 * as both the train and the test split. */
#include "clpar/data.h"
#include "fuzz_common.h"

static void put(const char *dir, const char *name, const uint8_t *p, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    const char *dir = fuzz_dir("idx");
    if (n < 2) return 0;
    size_t cut = ((size_t)data[0] << 8 | data[1]) % (n - 1);
    const uint8_t *img = data + 2, *lab = data + 2 + cut;
    size_t ilen = cut, llen = n - 2 - cut;
    put(dir, "train-images-idx3-ubyte", img, ilen);
    put(dir, "train-labels-idx1-ubyte", lab, llen);
    put(dir, "t10k-images-idx3-ubyte", img, ilen);
    put(dir, "t10k-labels-idx1-ubyte", lab, llen);
    clpar_dataset train, test;
    if (clpar_dataset_load_fashion_mnist(dir, &train, &test) == CLPAR_OK) {
        clpar_dataset_free(&train);
        clpar_dataset_free(&test);
    }
    return 0;
}
