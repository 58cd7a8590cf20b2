/* safetensors reading, validated as the reference implementation does. */
#include "clpar/safetensors.h"
#include "../runtime/internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The reference implementation refuses headers over 100 MB. */
#define MAX_HEADER (100u * 1000u * 1000u)

struct clpar_st {
    char *path;
    unsigned char *bytes; /* the whole file */
    size_t size;
    size_t data_start;
    int n;
    clpar_st_tensor *tensors;
    cJSON *meta;
};

static int dtype_size(const char *dt) {
    static const struct {
        const char *name;
        int size;
    } table[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
                 {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U64", 8},  {"U32", 4},
                 {"U16", 2}, {"U8", 1},  {"BOOL", 1}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(table[i].name, dt)) return table[i].size;
    return 0;
}

void clpar_st_free(clpar_st *st) {
    if (!st) return;
    free(st->path);
    free(st->bytes);
    free(st->tensors);
    cJSON_Delete(st->meta);
    free(st);
}

static int cmp_begin(const void *a, const void *b) {
    const clpar_st_tensor *x = *(clpar_st_tensor *const *)a, *y = *(clpar_st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static clpar_status parse_tensor(const char *path, const cJSON *item, clpar_st_tensor *t) {
    if (strlen(item->string) >= sizeof t->name)
        return clpar_error(CLPAR_EFORMAT, "%s: tensor name too long", path);
    snprintf(t->name, sizeof t->name, "%s", item->string);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsObject(item) || !cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off))
        return clpar_error(CLPAR_EFORMAT, "%s: tensor '%s' lacks dtype, shape or data_offsets",
                           path, t->name);
    int es = dtype_size(dt->valuestring);
    if (!es)
        return clpar_error(CLPAR_EFORMAT, "%s: tensor '%s' has unknown dtype '%s'", path, t->name,
                           dt->valuestring);
    snprintf(t->dtype, sizeof t->dtype, "%s", dt->valuestring);
    t->ndim = cJSON_GetArraySize(sh);
    if (t->ndim > CLPAR_ST_MAX_DIMS)
        return clpar_error(CLPAR_EFORMAT, "%s: tensor '%s' has %d dimensions (max %d)", path,
                           t->name, t->ndim, CLPAR_ST_MAX_DIMS);
    size_t bytes = (size_t)es;
    int i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, sh) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9.0e15 ||
            v->valuedouble != (double)(uint64_t)v->valuedouble)
            return clpar_error(CLPAR_EFORMAT, "%s: tensor '%s' has a bad shape", path, t->name);
        t->shape[i] = (size_t)v->valuedouble;
        if (t->shape[i] && bytes > SIZE_MAX / t->shape[i])
            return clpar_error(CLPAR_EFORMAT, "%s: tensor '%s' size overflows", path, t->name);
        bytes *= t->shape[i];
        i++;
    }
    if (cJSON_GetArraySize(off) != 2)
        return clpar_error(CLPAR_EFORMAT, "%s: tensor '%s' data_offsets is not [begin, end]", path,
                           t->name);
    double b = cJSON_GetArrayItem(off, 0)->valuedouble, e = cJSON_GetArrayItem(off, 1)->valuedouble;
    if (!cJSON_IsNumber(cJSON_GetArrayItem(off, 0)) ||
        !cJSON_IsNumber(cJSON_GetArrayItem(off, 1)) || b < 0 || e < b || e > 9.0e15 ||
        b != (double)(uint64_t)b || e != (double)(uint64_t)e)
        return clpar_error(CLPAR_EFORMAT, "%s: tensor '%s' has invalid data_offsets", path,
                           t->name);
    t->begin = (size_t)b;
    t->end = (size_t)e;
    if (t->end - t->begin != bytes)
        return clpar_error(CLPAR_EFORMAT,
                           "%s: tensor '%s' spans %zu bytes but its dtype and shape need %zu", path,
                           t->name, t->end - t->begin, bytes);
    return CLPAR_OK;
}

static clpar_status parse(const char *path, clpar_st *st) {
    if (st->size < 8)
        return clpar_error(CLPAR_EFORMAT, "%s: truncated (%zu bytes, no header size)", path,
                           st->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | st->bytes[i];
    if (hlen > MAX_HEADER)
        return clpar_error(CLPAR_EFORMAT, "%s: header size %llu exceeds the 100 MB limit", path,
                           (unsigned long long)hlen);
    if (hlen > st->size - 8)
        return clpar_error(CLPAR_EFORMAT, "%s: truncated (header of %llu bytes, file of %zu bytes)",
                           path, (unsigned long long)hlen, st->size);
    if (hlen < 2 || st->bytes[8] != '{')
        return clpar_error(CLPAR_EFORMAT, "%s: header does not start with '{'", path);
    st->data_start = 8 + (size_t)hlen;
    cJSON *root = cJSON_ParseWithLength((const char *)st->bytes + 8, (size_t)hlen);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return clpar_error(CLPAR_EFORMAT, "%s: header is not a valid JSON object", path);
    }
    int count = cJSON_GetArraySize(root);
    st->tensors = calloc((size_t)count + 1, sizeof *st->tensors);
    clpar_st_tensor **order = calloc((size_t)count + 1, sizeof *order);
    clpar_status rc = CLPAR_OK;
    if (!st->tensors || !order) rc = clpar_error(CLPAR_ENOMEM, "out of host memory");
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (rc != CLPAR_OK) break;
        if (!strcmp(item->string, "__metadata__")) {
            if (!cJSON_IsObject(item)) {
                rc = clpar_error(CLPAR_EFORMAT, "%s: __metadata__ is not an object", path);
                break;
            }
            if (st->meta) { /* cJSON keeps duplicate keys; which one wins would be a guess */
                rc = clpar_error(CLPAR_EFORMAT, "%s: __metadata__ appears twice", path);
                break;
            }
            const cJSON *kv;
            cJSON_ArrayForEach(kv, item) if (!cJSON_IsString(kv)) {
                rc = clpar_error(CLPAR_EFORMAT, "%s: __metadata__ value '%s' is not a string", path,
                                 kv->string);
                break;
            }
            if (rc == CLPAR_OK) st->meta = cJSON_Duplicate(item, 1);
            continue;
        }
        for (int j = 0; j < st->n && rc == CLPAR_OK; j++)
            if (!strcmp(st->tensors[j].name, item->string))
                rc =
                    clpar_error(CLPAR_EFORMAT, "%s: tensor '%s' appears twice", path, item->string);
        if (rc == CLPAR_OK) rc = parse_tensor(path, item, &st->tensors[st->n]);
        if (rc == CLPAR_OK) {
            order[st->n] = &st->tensors[st->n];
            st->n++;
        }
    }
    cJSON_Delete(root);
    if (rc == CLPAR_OK) {
        /* Contiguous, non-overlapping, and covering the data section exactly. */
        qsort(order, (size_t)st->n, sizeof *order, cmp_begin);
        size_t pos = 0;
        for (int i = 0; i < st->n && rc == CLPAR_OK; i++) {
            if (order[i]->begin != pos)
                rc = clpar_error(CLPAR_EFORMAT,
                                 "%s: tensor '%s' starts at byte %zu, expected %zu (data must be "
                                 "contiguous)",
                                 path, order[i]->name, order[i]->begin, pos);
            pos = order[i]->end;
        }
        if (rc == CLPAR_OK && pos != st->size - st->data_start)
            rc = clpar_error(CLPAR_EFORMAT,
                             "%s: data section is %zu bytes but the tensors cover %zu%s", path,
                             st->size - st->data_start, pos,
                             pos > st->size - st->data_start ? " (truncated file)" : "");
    }
    free(order);
    return rc;
}

clpar_status clpar_st_read(const char *path, clpar_st **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return clpar_error(CLPAR_EIO, "%s: %s", path, strerror(errno));
    clpar_st *st = calloc(1, sizeof *st);
    struct stat sb;
    if (!st || fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        free(st);
        return clpar_error(CLPAR_EIO, "%s: not a regular file", path);
    }
    st->size = (size_t)sb.st_size;
    st->bytes = malloc(st->size ? st->size : 1);
    if (!st->bytes || fread(st->bytes, 1, st->size, f) != st->size) {
        fclose(f);
        clpar_st_free(st);
        return clpar_error(CLPAR_EIO, "%s: read failed", path);
    }
    fclose(f);
    clpar_status rc = parse(path, st);
    if (rc == CLPAR_OK && !(st->path = strdup(path)))
        rc = clpar_error(CLPAR_ENOMEM, "out of host memory");
    if (rc != CLPAR_OK) {
        clpar_st_free(st);
        return rc;
    }
    *out = st;
    return CLPAR_OK;
}

int clpar_st_count(const clpar_st *st) {
    return st->n;
}
const clpar_st_tensor *clpar_st_get(const clpar_st *st, int i) {
    return i >= 0 && i < st->n ? &st->tensors[i] : NULL;
}
const clpar_st_tensor *clpar_st_find(const clpar_st *st, const char *name) {
    for (int i = 0; i < st->n; i++)
        if (!strcmp(st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}
const void *clpar_st_data(const clpar_st *st, const clpar_st_tensor *t) {
    return st->bytes + st->data_start + t->begin;
}
const char *clpar_st_metadata(const clpar_st *st, const char *key) {
    const cJSON *v = st->meta ? cJSON_GetObjectItemCaseSensitive(st->meta, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

clpar_status clpar_st_copy_f32(const clpar_st *st, const char *name, int ndim, const size_t *shape,
                               float *dst) {
    const clpar_st_tensor *t = clpar_st_find(st, name);
    char want[96] = "", got[96] = "";
    size_t u = 0;
    for (int d = 0; d < ndim && u < sizeof want; d++)
        u += (size_t)snprintf(want + u, sizeof want - u, "%s%zu", d ? ", " : "", shape[d]);
    if (!t)
        return clpar_error(CLPAR_EFORMAT, "%s: no tensor '%s' (expected F32 [%s])", st->path, name,
                           want);
    int ok = !strcmp(t->dtype, "F32") && t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++)
        ok = t->shape[d] == shape[d];
    if (!ok) {
        u = 0;
        for (int d = 0; d < t->ndim && u < sizeof got; d++)
            u += (size_t)snprintf(got + u, sizeof got - u, "%s%zu", d ? ", " : "", t->shape[d]);
        return clpar_error(CLPAR_ESHAPE, "%s: tensor '%s' is %s [%s], expected F32 [%s]", st->path,
                           name, t->dtype, got, want);
    }
    memcpy(dst, clpar_st_data(st, t), t->end - t->begin);
    return CLPAR_OK;
}
