/* safetensors files (the format of Hugging Face's safetensors): reading with the reference
 * implementation's checks, atomic writing, and the model files clpar exchanges with
 * PyTorch (names of an nn.Sequential of Linear and ReLU: 0.weight, 0.bias, 2.weight, ...). */
#ifndef CLPAR_SAFETENSORS_H
#define CLPAR_SAFETENSORS_H

#include "clpar/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CLPAR_ST_MAX_DIMS 8

typedef struct {
    char name[256];
    char dtype[8]; /* "F32", "F64", "I64", ... */
    int ndim;
    size_t shape[CLPAR_ST_MAX_DIMS];
    size_t begin, end; /* byte offsets in the data section */
} clpar_st_tensor;

typedef struct clpar_st clpar_st;

/* Reads and validates a whole file: the 8-byte header size within bounds and the file, a
 * header that is a JSON object starting with '{', known dtypes, shapes whose byte size
 * matches their offsets without overflow, tensors contiguous from 0 in offset order, and the
 * data ending exactly at the end of the file. CLPAR_EIO / CLPAR_EFORMAT name the file and
 * the fault. The caller owns *out (clpar_st_free). */
CLPAR_API clpar_status clpar_st_read(const char *path, clpar_st **out);
CLPAR_API void clpar_st_free(clpar_st *st);
CLPAR_API int clpar_st_count(const clpar_st *st);
CLPAR_API const clpar_st_tensor *clpar_st_get(const clpar_st *st, int i);
CLPAR_API const clpar_st_tensor *clpar_st_find(const clpar_st *st, const char *name);
/* Borrowed pointer to a tensor's bytes (unaligned; copy with memcpy). */
CLPAR_API const void *clpar_st_data(const clpar_st *st, const clpar_st_tensor *t);
/* A __metadata__ string, or NULL. */
CLPAR_API const char *clpar_st_metadata(const clpar_st *st, const char *key);
/* Copies tensor `name`, which must be F32 of the given shape, into dst. A missing tensor is
 * CLPAR_EFORMAT and another dtype or shape CLPAR_ESHAPE, naming the file and the tensor. */
CLPAR_API clpar_status clpar_st_copy_f32(const clpar_st *st, const char *name, int ndim,
                                         const size_t *shape, float *dst);

/* A tensor to write: float32 data of the given shape. */
typedef struct {
    const char *name;
    int ndim;
    size_t shape[CLPAR_ST_MAX_DIMS];
    const float *data;
} clpar_st_entry;

/* Writes path atomically: a temporary file in the same folder, fsync, rename over path,
 * fsync of the folder. On any failure path is left as it was. meta is NULL or a list of
 * nmeta key/value pairs (keys at even indices) for __metadata__. */
CLPAR_API clpar_status clpar_st_write(const char *path, const clpar_st_entry *entries, int n,
                                      const char *const *meta, int nmeta);

/* Any model's parameters (params in its flat layout) under PyTorch's names, with the model
 * described in __metadata__["clpar.model"], written atomically; and read back, each tensor
 * checked against the model's names and shapes (a GPT's file may also hold lm_head.weight
 * equal to transformer.wte.weight, as nanoGPT saves it). */
CLPAR_API clpar_status clpar_model_file_save(const char *path, const clpar_model_spec *model,
                                             const float *params);
CLPAR_API clpar_status clpar_model_file_load(const char *path, const clpar_model_spec *model,
                                             float *params);
/* Saves a model's flat parameters under PyTorch nn.Sequential names, with the size list
 * in __metadata__["clpar.model"]. */
CLPAR_API clpar_status clpar_model_save(const char *path, const clpar_mlp_shape *shape,
                                        const float *params);
/* Loads a model file into flat params (param_count(shape) floats). Every Linear of shape
 * must be present as F32 with the matching shape; CLPAR_ESHAPE says which is not. */
CLPAR_API clpar_status clpar_model_load(const char *path, const clpar_mlp_shape *shape,
                                        float *params);

#ifdef __cplusplus
}
#endif
#endif
