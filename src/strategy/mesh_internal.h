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

/* Row stride of the gradient of a layer's output as its backward reads it: a COLG shard
 * reads its columns of the gathered (rows, out) gradient. */
static inline size_t layer_dy_width(const layer_plan *lp) {
    return lp->kind == LAYER_COLG ? lp->out : lp->out_w;
}

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

/* One op of a pipeline schedule: the forward (F) or input-gradient backward (B) of
 * micro-batch m, or the weight gradients (W) of micro-batches m .. m + count - 1. */
typedef enum { SCHED_F, SCHED_B, SCHED_W } sched_kind;
typedef struct {
    sched_kind kind;
    int m, count;
} sched_op;

/* Stage `stage`'s schedule of `micro` micro-batches into ops (room for 3 micro); returns the
 * number of ops, the activation slots it needs (micro-batches held at once) and the largest
 * W group. */
int schedule_ops(clpar_schedule kind, int stage, int stages, int micro, sched_op *ops, int *slots,
                 int *group);
/* The slots and largest W group alone. */
void schedule_shape(clpar_schedule kind, int stage, int stages, int micro, int *slots, int *group);

#endif
