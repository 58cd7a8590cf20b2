/* The communication level's host sums (src/comm/sum.c), which every reduction runs: each
 * element the one float addition of its two inputs (so that results are bit-identical to
 * the scalar reference whatever the vector width), every length's tail included, and
 * nothing past the range written. Linked against the library's internals. */
#include "comm/sum.h"

#include <criterion/criterion.h>
#include <string.h>

enum { GUARD = 5 };

static float value(unsigned *seed) {
    *seed = *seed * 1664525u + 1013904223u;
    return (float)((int)(*seed >> 8) % 20001 - 10000) / 997.0f;
}

static const size_t lengths[] = {0, 1, 3, 15, 16, 17, 31, 32, 33, 100, 1000, 4099};

Test(sum, into_adds_each_element_once_and_no_further) {
    unsigned seed = 7;
    for (size_t t = 0; t < sizeof lengths / sizeof *lengths; t++) {
        size_t n = lengths[t];
        float dst[4099 + GUARD], src[4099 + GUARD], want[4099 + GUARD];
        for (size_t i = 0; i < n + GUARD; i++)
            dst[i] = value(&seed), src[i] = value(&seed);
        for (size_t i = 0; i < n + GUARD; i++) {
            volatile float s = dst[i] + src[i]; /* the scalar addition, rounded to float */
            want[i] = i < n ? s : dst[i];
        }
        clpar_sum_into(dst, src, n);
        cr_expect(!memcmp(dst, want, (n + GUARD) * sizeof(float)), "length %zu", n);
    }
}

Test(sum, both_leaves_the_same_sum_in_both) {
    unsigned seed = 11;
    for (size_t t = 0; t < sizeof lengths / sizeof *lengths; t++) {
        size_t n = lengths[t];
        float a[4099 + GUARD], b[4099 + GUARD], wa[4099 + GUARD], wb[4099 + GUARD];
        for (size_t i = 0; i < n + GUARD; i++)
            a[i] = value(&seed), b[i] = value(&seed);
        for (size_t i = 0; i < n + GUARD; i++) {
            volatile float s = a[i] + b[i];
            wa[i] = i < n ? s : a[i];
            wb[i] = i < n ? s : b[i];
        }
        clpar_sum_both(a, b, n);
        cr_expect(!memcmp(a, wa, (n + GUARD) * sizeof(float)), "length %zu: first", n);
        cr_expect(!memcmp(b, wb, (n + GUARD) * sizeof(float)), "length %zu: second", n);
    }
}
