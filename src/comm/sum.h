/* The host's float sums that every reduction of the communication level runs (ranks'
 * copies in one process, parts between processes, the shared-memory sum in place). */
#ifndef CLPAR_SUM_H
#define CLPAR_SUM_H

#include <stddef.h>

/* dst[i] += src[i] for i in [0, n): one addition per element, so that the order of
 * additions (and so the bits) is the caller's. The ranges must not overlap. */
void clpar_sum_into(float *restrict dst, const float *restrict src, size_t n);

/* a[i] = b[i] = a[i] + b[i] for i in [0, n): a sum that both buffers receive, in one pass
 * over the memory. The ranges must not overlap. */
void clpar_sum_both(float *restrict a, float *restrict b, size_t n);

#endif
