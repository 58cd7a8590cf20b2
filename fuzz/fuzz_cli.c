/* clpar-train's command line: the input's NUL-separated words as argv, through the option
 * table (every number, enum and list option, with their ranges). */
#include "fuzz_common.h"
#include "train_options.h"

#include <getopt.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    char *s = fuzz_string(data, n);
    char *argv[65] = {"clpar-train"};
    int argc = 1;
    for (size_t i = 0; i < n && argc < 64;) {
        argv[argc++] = s + i;
        i += strlen(s + i) + 1;
    }
    argv[argc] = NULL;
    train_options o = {.data = "fashion-mnist", .devices = "all", .batch = 128, .dp = 1};
    optind = 0; /* getopt starts over */
    (void)train_options_parse(argc, argv, &o);
    free(s);
    return 0;
}
