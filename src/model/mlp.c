/* The MLP: its shape (layer sizes), the full model's flat layout and initialization, and
 * its layers as modules: block l is Linear "2l" followed by ReLU "2l+1" (none after the
 * last), nn.Sequential's names. */
#include "clpar/model.h"
#include "clpar/rng.h"
#include "../runtime/internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

clpar_status clpar_mlp_shape_parse(clpar_mlp_shape *shape, const char *text) {
    memset(shape, 0, sizeof *shape);
    if (!text || !*text) return clpar_error(CLPAR_EINVAL, "empty model size list");
    int n = 0;
    const char *p = text;
    for (;;) {
        if (*p < '0' || *p > '9')
            return clpar_error(CLPAR_EINVAL,
                               "model size list '%s': expected positive integers separated by "
                               "commas, like 784,256,10",
                               text);
        errno = 0;
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno || v == 0 || v > (1ull << 30))
            return clpar_error(CLPAR_EINVAL,
                               "model size list '%s': size %.*s out of range (1..2^30)", text,
                               (int)(end - p), p);
        if (n > CLPAR_MAX_LAYERS)
            return clpar_error(CLPAR_EINVAL, "model size list '%s': more than %d layers", text,
                               CLPAR_MAX_LAYERS);
        shape->sizes[n++] = (size_t)v;
        p = end;
        if (!*p) break;
        if (*p != ',' || !p[1])
            return clpar_error(CLPAR_EINVAL, "model size list '%s': malformed near '%s'", text, p);
        p++;
    }
    if (n < 2)
        return clpar_error(
            CLPAR_EINVAL, "model size list '%s': needs at least an input and an output size", text);
    shape->nlayers = n - 1;
    if (clpar_mlp_shape_param_count(shape) > 0xffffffffu)
        return clpar_error(CLPAR_EINVAL, "model size list '%s': more than 2^32 parameters", text);
    return CLPAR_OK;
}

void clpar_mlp_shape_format(const clpar_mlp_shape *shape, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i <= shape->nlayers && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%zu", i ? "," : "", shape->sizes[i]);
}

size_t clpar_mlp_shape_layer_count(const clpar_mlp_shape *shape, int l) {
    return shape->sizes[l + 1] * shape->sizes[l] + shape->sizes[l + 1];
}

size_t clpar_mlp_shape_weight_offset(const clpar_mlp_shape *shape, int l) {
    size_t off = 0;
    for (int i = 0; i < l; i++)
        off += clpar_mlp_shape_layer_count(shape, i);
    return off;
}

size_t clpar_mlp_shape_bias_offset(const clpar_mlp_shape *shape, int l) {
    return clpar_mlp_shape_weight_offset(shape, l) + shape->sizes[l + 1] * shape->sizes[l];
}

size_t clpar_mlp_shape_param_count(const clpar_mlp_shape *shape) {
    return clpar_mlp_shape_weight_offset(shape, shape->nlayers);
}

clpar_status clpar_mlp_init_params(float *params, const clpar_mlp_shape *shape, uint64_t seed) {
    clpar_rng rng;
    clpar_rng_seed(&rng, seed);
    for (int l = 0; l < shape->nlayers; l++) { /* each layer's module draws in turn */
        clpar_module *block;
        size_t count;
        TRY(clpar_mlp_build(shape, l, 1, 0, 1, NULL, &block, &count));
        clpar_module_init_params(block, params, &rng);
        clpar_module_free(block);
    }
    return CLPAR_OK;
}

clpar_status clpar_mlp_build(const clpar_mlp_shape *s, int first, int count, int shard, int shards,
                             const double *weights, clpar_module **blocks, size_t *param_count) {
    size_t off = 0;
    int built = 0;
    clpar_status st = CLPAR_OK;
    for (int j = 0; j < count && st == CLPAR_OK; j++) {
        int l = first + j;
        size_t in = s->sizes[l], out = s->sizes[l + 1];
        /* Megatron's pairing from the stage's first layer: column-parallel then row-parallel,
         * a layer left over column-parallel with its output gathered */
        clpar_tp_split split = shards == 1     ? CLPAR_TP_NONE
                               : j % 2         ? CLPAR_TP_ROW
                               : j + 1 < count ? CLPAR_TP_COLUMN
                                               : CLPAR_TP_GATHERED;
        size_t dim = split == CLPAR_TP_ROW ? in : out;
        if (split != CLPAR_TP_NONE && (size_t)shards > dim) {
            st = clpar_error(CLPAR_EINVAL,
                             CLPAR_FIELD("tp") " %d is larger than layer %d's %zu %s features it "
                                               "would split",
                             shards, l, dim, split == CLPAR_TP_ROW ? "input" : "output");
            break;
        }
        char name[32];
        snprintf(name, sizeof name, "%d", 2 * l);
        clpar_module *kids[2] = {NULL, NULL};
        st = clpar_linear_init(name, in, out, split, shard, shards, weights, off,
                               clpar_mlp_shape_weight_offset(s, l), &kids[0]);
        if (st == CLPAR_OK && l + 1 < s->nlayers) {
            snprintf(name, sizeof name, "%d", 2 * l + 1);
            st = clpar_relu_init(name, kids[0]->out_width, &kids[1]);
            if (st == CLPAR_OK)
                st = clpar_sequential_init(name, kids, 2, &blocks[j]);
            else
                clpar_module_free(kids[0]);
        } else {
            blocks[j] = kids[0];
        }
        if (st == CLPAR_OK) {
            off += blocks[j]->param_count;
            built++;
        }
    }
    if (st != CLPAR_OK) {
        for (int j = 0; j < built; j++)
            clpar_module_free(blocks[j]), blocks[j] = NULL;
        return st;
    }
    *param_count = off;
    return CLPAR_OK;
}
