/* Text as a data set of byte sequences for a GPT: inputs and their next tokens. */
#include "clpar/data.h"
#include "../runtime/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Samples of ctx tokens from bytes [0, n) of text. */
static clpar_status make_part(const unsigned char *text, size_t n, size_t ctx, const char *what,
                              const char *path, clpar_dataset *ds) {
    memset(ds, 0, sizeof *ds);
    size_t samples = n > 1 ? (n - 1) / ctx : 0;
    if (samples == 0)
        return clpar_error(CLPAR_EINVAL,
                           "%s: its %s part of %zu bytes holds no sample of " CLPAR_FIELD(
                               "ctx") " %zu tokens (and the next one)",
                           path, what, n, ctx);
    ds->n = samples;
    ds->in = ctx;
    ds->out = 256;
    ds->label_width = ctx;
    ds->tokens = malloc(samples * ctx * sizeof(int));
    ds->labels = malloc(samples * ctx * sizeof(int));
    if (!ds->tokens || !ds->labels) {
        clpar_dataset_free(ds);
        return clpar_error(CLPAR_ENOMEM, "out of host memory");
    }
    for (size_t i = 0; i < samples * ctx; i++) {
        ds->tokens[i] = text[i];
        ds->labels[i] = text[i + 1];
    }
    return CLPAR_OK;
}

clpar_status clpar_dataset_load_text(const char *path, size_t ctx, clpar_dataset *train,
                                     clpar_dataset *val) {
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    if (ctx == 0) return clpar_error(CLPAR_EINVAL, CLPAR_FIELD("ctx") " must be at least 1");
    FILE *f = fopen(path, "rb");
    if (!f) return clpar_error(CLPAR_EIO, "%s: %s", path, strerror(errno));
    unsigned char *text = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            unsigned char *grown = realloc(text, cap);
            if (!grown) {
                free(text);
                fclose(f);
                return clpar_error(CLPAR_ENOMEM, "out of host memory reading %s", path);
            }
            text = grown;
        }
        size_t got = fread(text + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(text);
        return clpar_error(CLPAR_EIO, "%s: read failed", path);
    }
    size_t split = n / 10 * 9 + n % 10 * 9 / 10; /* floor(0.9 n) without overflow */
    clpar_status st = make_part(text, split, ctx, "training", path, train);
    if (st == CLPAR_OK) st = make_part(text + split, n - split, ctx, "validation", path, val);
    free(text);
    if (st != CLPAR_OK) {
        clpar_dataset_free(train);
        clpar_dataset_free(val);
    }
    return st;
}
