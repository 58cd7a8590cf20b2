/* Internal to the strategies level: how a rank's layers are laid out, its pipeline schedule,
 * and the mesh's state. */
#ifndef CLPAR_MESH_INTERNAL_H
#define CLPAR_MESH_INTERNAL_H

#include "clpar/strategy.h"
#include "../runtime/internal.h"
#include "../runtime/workers.h"

typedef enum {
    LAYER_PLAIN, /* the whole layer on this rank (tp = 1) */
    LAYER_COL,   /* column-parallel (output features split), followed by a ROW layer */
    LAYER_ROW,   /* row-parallel (input features split), partial outputs summed */
    LAYER_COLG   /* column-parallel whose output slices are concatenated */
} layer_kind;

typedef struct {
    int global; /* index of the layer in the model */
    layer_kind kind;
    size_t in, out; /* the full layer */
    size_t a, len;  /* this shard: out features [a, a + len) (COL, COLG), in features (ROW) */
    size_t w_rows, w_cols;     /* local weight (w_rows, w_cols) */
    size_t woff, boff, bcount; /* offsets in the rank's flat parameters; bias floats held */
    size_t in_w, out_w;        /* widths of the layer's input and output as stored */
    int relu;                  /* ReLU after this layer */
} layer_plan;

/* Lays out stage p's layers for shard t (widths weighted by the ranks' speeds); returns the
 * local parameter count. */
size_t plan_layers(const clpar_mesh_config *c, int p, int t, layer_plan *out);
/* Rows of the largest micro-batch any replica will hold. */
size_t plan_micro_cap(const clpar_mesh_config *c);
/* Part i of total split in proportion to w (NULL: equally). */
void split_part(size_t total, int parts, const double *w, int i, size_t *start, size_t *size);
/* Index of the first layer of each stage, stages[pp] = L. */
void plan_stage_starts(const clpar_mesh_config *cfg, int *starts);
/* Split of total into parts: part i's size and start (the first total % parts get one more). */
size_t split_size(size_t total, size_t parts, size_t i);
size_t split_start(size_t total, size_t parts, size_t i);

/* A pipeline schedule: ops[i] = +m + 1 for the forward of micro-batch m, -(m + 1) for its
 * backward. Returns the number of ops (2 micro) and the activation slots it needs. */
int schedule_ops(clpar_schedule kind, int stage, int stages, int micro, int *ops, int *slots);

#endif
