/* safetensors as clpar reads it: the header, every tensor's dtype, shape and offsets, the
 * metadata, a checkpoint's settings and a model file's parameters. */
#include "clpar/safetensors.h"
#include "clpar/trainer.h"
#include "fuzz_common.h"

static volatile unsigned sink; /* keeps the reads of tensor bytes */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    char path[64];
    int fd = fuzz_file(data, n, path, sizeof path);
    clpar_st *st;
    if (clpar_st_read(path, &st) == CLPAR_OK) {
        for (int i = 0; i < clpar_st_count(st); i++) {
            const clpar_st_tensor *t = clpar_st_get(st, i);
            const unsigned char *p = clpar_st_data(st, t);
            size_t bytes = t->end - t->begin;
            for (size_t b = 0; b < bytes; b += 64) /* every byte a tensor claims is readable */
                sink += p[b];
            if (bytes) sink += p[bytes - 1];
        }
        (void)clpar_st_metadata(st, "clpar.model");
        clpar_st_free(st);
    }
    clpar_trainer_config cfg;
    char name[256];
    memset(&cfg, 0, sizeof cfg);
    (void)clpar_checkpoint_read_config(path, &cfg, name, sizeof name);
    /* a model file for an MLP and for a GPT (whose head may come as lm_head.weight) */
    static const char *models[] = {"10,3,5", "gpt:layers=1,heads=1,embd=2,ctx=2,vocab=256"};
    for (int i = 0; i < 2; i++) {
        clpar_model_spec model;
        if (clpar_model_parse(models[i], &model) != CLPAR_OK) abort();
        float *params = malloc(clpar_model_param_count(&model) * sizeof(float));
        if (!params) abort();
        (void)clpar_model_file_load(path, &model, params);
        free(params);
    }
    close(fd);
    return 0;
}
