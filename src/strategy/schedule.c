/* Pipeline schedules. A micro-batch's backward is split in two: B, the chain of input
 * gradients that the previous stage waits for, and W, the weight gradients, which nothing
 * waits for until the update. Deferring W lets a stage compute the weight gradients of
 * several micro-batches as one GEMM over all their rows, which on small micro-batches is
 * several times cheaper than one GEMM each (a K = 32 product is bound by reading and
 * writing the whole gradient matrix).
 *
 * GPipe runs every forward, then every B (last micro-batch first), then one W over all
 * micro-batches: it holds every micro-batch anyway. 1F1B (PipeDream-flush) runs
 * stages - stage - 1 forwards to warm up, then alternates one forward and one B, then
 * drains; stage s groups the W of s + 1 consecutive micro-batches, using the slack that its
 * shorter warm-up leaves under the bound of `stages` micro-batches held at once. */
#include "mesh_internal.h"

void schedule_shape(clpar_schedule kind, int stage, int stages, int micro, int *slots, int *group) {
    if (kind == CLPAR_SCHEDULE_GPIPE) {
        *slots = *group = micro;
        return;
    }
    int warm = stages - stage - 1 < micro ? stages - stage - 1 : micro;
    *group = stage + 1 < micro ? stage + 1 : micro;
    *slots = warm + *group < micro ? warm + *group : micro;
}

int schedule_ops(clpar_schedule kind, int stage, int stages, int micro, sched_op *ops, int *slots,
                 int *group) {
    schedule_shape(kind, stage, stages, micro, slots, group);
    int n = 0;
    if (kind == CLPAR_SCHEDULE_GPIPE) {
        for (int m = 0; m < micro; m++)
            ops[n++] = (sched_op){SCHED_F, m, 1};
        for (int m = micro - 1; m >= 0; m--)
            ops[n++] = (sched_op){SCHED_B, m, 1};
        ops[n++] = (sched_op){SCHED_W, 0, micro};
        return n;
    }
    int warm = stages - stage - 1 < micro ? stages - stage - 1 : micro, g = *group;
    int f = 0, b = 0, w = 0;
    for (; f < warm; f++)
        ops[n++] = (sched_op){SCHED_F, f, 1};
    while (b < micro) {
        if (f < micro) ops[n++] = (sched_op){SCHED_F, f++, 1};
        ops[n++] = (sched_op){SCHED_B, b++, 1};
        if (b - w == g || b == micro) {
            ops[n++] = (sched_op){SCHED_W, w, b - w};
            w = b;
        }
    }
    return n;
}
