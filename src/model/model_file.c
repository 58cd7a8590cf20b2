/* A model's parameters as a safetensors file under PyTorch's names (nn.Sequential's for an
 * MLP, nanoGPT's for a GPT), both ways; the model's description in __metadata__. */
#include "clpar/safetensors.h"
#include "../runtime/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    clpar_st_entry *entries;
    char (*names)[96]; /* the parameters' names outlive the modules that gave them */
    int n;
    const float *params;
} save_job;

static void add_entry(const clpar_param *p, void *user) {
    save_job *j = user;
    snprintf(j->names[j->n], sizeof j->names[0], "%s", p->name);
    j->entries[j->n] = (clpar_st_entry){
        j->names[j->n], p->ndim, {p->shape[0], p->shape[1]}, j->params + p->full_offset};
    j->n++;
}

static void count_one(const clpar_param *p, void *user) {
    (*(int *)user)++;
}

clpar_status clpar_model_file_save(const char *path, const clpar_model_spec *m,
                                   const float *params) {
    int n = 0;
    TRY(clpar_model_each_param(m, count_one, &n));
    save_job j = {calloc((size_t)n, sizeof(clpar_st_entry)), calloc((size_t)n, sizeof *j.names), 0,
                  params};
    clpar_status rc = j.entries && j.names ? clpar_model_each_param(m, add_entry, &j)
                                           : clpar_error(CLPAR_ENOMEM, "out of host memory");
    char text[512];
    clpar_model_format(m, text, sizeof text);
    const char *meta[] = {"format", "pt", "clpar.model", text};
    if (rc == CLPAR_OK) rc = clpar_st_write(path, j.entries, j.n, meta, 2);
    free(j.entries);
    free(j.names);
    return rc;
}

typedef struct {
    const clpar_st *st;
    const char *path;
    float *params;
    clpar_status rc;
    int n;
} load_job;

static void load_one(const clpar_param *p, void *user) {
    load_job *j = user;
    if (j->rc != CLPAR_OK) return;
    j->n++;
    const clpar_st_tensor *t = clpar_st_find(j->st, p->name);
    char want[64];
    if (p->ndim == 1)
        snprintf(want, sizeof want, "[%zu]", p->shape[0]);
    else
        snprintf(want, sizeof want, "[%zu, %zu]", p->shape[0], p->shape[1]);
    if (!t) {
        j->rc = clpar_error(CLPAR_ESHAPE, "%s: no tensor '%s' (model %s expects shape %s)", j->path,
                            p->name, "layer", want);
        return;
    }
    int ok = !strcmp(t->dtype, "F32") && t->ndim == p->ndim && t->shape[0] == p->shape[0] &&
             (p->ndim == 1 || t->shape[1] == p->shape[1]);
    if (!ok) {
        char got[128] = "";
        size_t u = 0;
        for (int d = 0; d < t->ndim && u < sizeof got; d++)
            u += (size_t)snprintf(got + u, sizeof got - u, "%s%zu", d ? ", " : "", t->shape[d]);
        j->rc = clpar_error(CLPAR_ESHAPE, "%s: tensor '%s' is %s [%s], the model needs F32 %s",
                            j->path, p->name, t->dtype, got, want);
        return;
    }
    memcpy(j->params + p->full_offset, clpar_st_data(j->st, t), t->end - t->begin);
}

clpar_status clpar_model_file_load(const char *path, const clpar_model_spec *m, float *params) {
    clpar_st *st;
    TRY(clpar_st_read(path, &st));
    load_job j = {st, path, params, CLPAR_OK, 0};
    clpar_status rc = clpar_model_each_param(m, load_one, &j);
    if (rc == CLPAR_OK) rc = j.rc;
    int extra = clpar_st_count(st) - j.n;
    if (rc == CLPAR_OK && extra == 1 && clpar_model_is_gpt(m)) {
        /* nanoGPT's state_dict also holds the tied head: it must be the token table */
        const clpar_st_tensor *head = clpar_st_find(st, "lm_head.weight"),
                              *wte = clpar_st_find(st, "transformer.wte.weight");
        if (!head || head->end - head->begin != wte->end - wte->begin ||
            memcmp(clpar_st_data(st, head), clpar_st_data(st, wte), head->end - head->begin))
            rc = clpar_error(CLPAR_ESHAPE,
                             "%s: lm_head.weight must equal transformer.wte.weight (tied)", path);
        extra = 0;
    }
    if (rc == CLPAR_OK && extra != 0)
        rc = clpar_error(CLPAR_ESHAPE, "%s: holds %d tensors, the model has %d", path,
                         clpar_st_count(st), j.n);
    clpar_st_free(st);
    return rc;
}

static clpar_model_spec mlp_spec(const clpar_mlp_shape *shape) {
    clpar_model_spec m;
    memset(&m, 0, sizeof m);
    m.mlp = *shape;
    return m;
}

clpar_status clpar_model_save(const char *path, const clpar_mlp_shape *shape, const float *params) {
    clpar_model_spec m = mlp_spec(shape);
    return clpar_model_file_save(path, &m, params);
}

clpar_status clpar_model_load(const char *path, const clpar_mlp_shape *shape, float *params) {
    clpar_model_spec m = mlp_spec(shape);
    return clpar_model_file_load(path, &m, params);
}
