/* Text data: any bytes, with a context length from the first byte. */
#include "clpar/data.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (n < 1) return 0;
    char path[64];
    int fd = fuzz_file(data + 1, n - 1, path, sizeof path);
    clpar_dataset train, test;
    if (clpar_dataset_load_text(path, (size_t)data[0], &train, &test) == CLPAR_OK) {
        clpar_dataset_free(&train);
        clpar_dataset_free(&test);
    }
    close(fd);
    return 0;
}
