/* An MLP's parameters as a safetensors file with PyTorch nn.Sequential's names, both ways. */
#include "clpar/safetensors.h"
#include "../runtime/internal.h"

#include <stdio.h>
#include <string.h>

clpar_status clpar_model_save(const char *path, const clpar_mlp_shape *shape, const float *params) {
    int L = shape->nlayers;
    clpar_st_entry entries[2 * CLPAR_MAX_LAYERS];
    char names[2 * CLPAR_MAX_LAYERS][32];
    for (int l = 0; l < L; l++) {
        /* nn.Sequential(Linear, ReLU, Linear, ...): Linear l is module 2l */
        snprintf(names[2 * l], sizeof names[0], "%d.weight", 2 * l);
        snprintf(names[2 * l + 1], sizeof names[0], "%d.bias", 2 * l);
        entries[2 * l] = (clpar_st_entry){names[2 * l],
                                          2,
                                          {shape->sizes[l + 1], shape->sizes[l]},
                                          params + clpar_mlp_shape_weight_offset(shape, l)};
        entries[2 * l + 1] = (clpar_st_entry){names[2 * l + 1],
                                              1,
                                              {shape->sizes[l + 1]},
                                              params + clpar_mlp_shape_bias_offset(shape, l)};
    }
    char sizes[512];
    clpar_mlp_shape_format(shape, sizes, sizeof sizes);
    const char *meta[] = {"format", "pt", "clpar.model", sizes};
    return clpar_st_write(path, entries, 2 * L, meta, 2);
}

clpar_status clpar_model_load(const char *path, const clpar_mlp_shape *shape, float *params) {
    clpar_st *st;
    TRY(clpar_st_read(path, &st));
    clpar_status rc = CLPAR_OK;
    for (int l = 0; l < shape->nlayers && rc == CLPAR_OK; l++) {
        for (int b = 0; b < 2 && rc == CLPAR_OK; b++) {
            char name[32];
            snprintf(name, sizeof name, "%d.%s", 2 * l, b ? "bias" : "weight");
            const clpar_st_tensor *t = clpar_st_find(st, name);
            size_t out = shape->sizes[l + 1], in = shape->sizes[l];
            char want[64];
            if (b)
                snprintf(want, sizeof want, "[%zu]", out);
            else
                snprintf(want, sizeof want, "[%zu, %zu]", out, in);
            if (!t) {
                rc = clpar_error(CLPAR_ESHAPE, "%s: no tensor '%s' (model %s expects shape %s)",
                                 path, name, "layer", want);
                break;
            }
            int ok = !strcmp(t->dtype, "F32") && t->ndim == (b ? 1 : 2) && t->shape[0] == out &&
                     (b || t->shape[1] == in);
            if (!ok) {
                char got[128] = "";
                size_t u = 0;
                for (int d = 0; d < t->ndim && u < sizeof got; d++)
                    u += (size_t)snprintf(got + u, sizeof got - u, "%s%zu", d ? ", " : "",
                                          t->shape[d]);
                rc = clpar_error(CLPAR_ESHAPE, "%s: tensor '%s' is %s [%s], the model needs F32 %s",
                                 path, name, t->dtype, got, want);
                break;
            }
            memcpy(params + (b ? clpar_mlp_shape_bias_offset(shape, l)
                               : clpar_mlp_shape_weight_offset(shape, l)),
                   clpar_st_data(st, t), t->end - t->begin);
        }
    }
    if (rc == CLPAR_OK && clpar_st_count(st) != 2 * shape->nlayers)
        rc = clpar_error(CLPAR_ESHAPE, "%s: holds %d tensors, the model has %d", path,
                         clpar_st_count(st), 2 * shape->nlayers);
    clpar_st_free(st);
    return rc;
}
