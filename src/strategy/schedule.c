/* Pipeline schedules. GPipe runs every forward, then every backward (last micro-batch
 * first), holding all micro-batches' activations. 1F1B (PipeDream-flush) runs
 * stages - stage - 1 forwards to warm up, then alternates one forward and one backward, then
 * drains, so a stage holds at most stages - stage micro-batches at once. */
#include "mesh_internal.h"

int schedule_ops(clpar_schedule kind, int stage, int stages, int micro, int *ops, int *slots) {
    int n = 0;
    if (kind == CLPAR_SCHEDULE_GPIPE) {
        for (int m = 0; m < micro; m++)
            ops[n++] = m + 1;
        for (int m = micro - 1; m >= 0; m--)
            ops[n++] = -(m + 1);
        *slots = micro;
        return n;
    }
    int warm = stages - stage - 1;
    if (warm > micro) warm = micro;
    int f = 0, b = 0;
    for (; f < warm; f++)
        ops[n++] = f + 1;
    while (f < micro) {
        ops[n++] = ++f;
        ops[n++] = -(++b);
    }
    while (b < micro)
        ops[n++] = -(++b);
    *slots = warm + 1 < micro ? warm + 1 : micro;
    return n;
}
