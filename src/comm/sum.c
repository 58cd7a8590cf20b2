/* The reductions' host sums, in explicit vectors: at the -O2 the project builds with, GCC
 * leaves these loops scalar (it does not version loops for unknown counts there), and a
 * two-process step's in-place sum then took 0.2 ms of a core for 1.3 MB. Element by element
 * the same single addition, so results do not depend on the vector width. */
#include "sum.h"

#include <string.h>

#if defined(__GNUC__) /* GCC and Clang: generic vectors, lowered to the target's own */
typedef float vec4 __attribute__((vector_size(16))); /* every target's own width or a part */

/* unaligned loads and stores through memcpy, which the compilers turn into vector moves */
static inline vec4 load4(const float *p) {
    vec4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store4(float *p, vec4 v) {
    memcpy(p, &v, sizeof v);
}
#define VECTORS 1
#else
#define VECTORS 0
#endif

void clpar_sum_into(float *restrict dst, const float *restrict src, size_t n) {
    size_t i = 0;
#if VECTORS
    for (; i + 16 <= n; i += 16)
        for (int q = 0; q < 16; q += 4)
            store4(dst + i + q, load4(dst + i + q) + load4(src + i + q));
#endif
    for (; i < n; i++)
        dst[i] += src[i];
}

void clpar_sum_both(float *restrict a, float *restrict b, size_t n) {
    size_t i = 0;
#if VECTORS
    for (; i + 16 <= n; i += 16)
        for (int q = 0; q < 16; q += 4) {
            vec4 s = load4(a + i + q) + load4(b + i + q);
            store4(a + i + q, s);
            store4(b + i + q, s);
        }
#endif
    for (; i < n; i++)
        b[i] = a[i] += b[i];
}
