/* A small deterministic generator (xoshiro256**, seeded through splitmix64), so weights,
 * synthetic data and shuffles are a function of the seed alone, on every platform. */
#ifndef CLPAR_RNG_H
#define CLPAR_RNG_H

#include <stdint.h>

#include "clpar/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint64_t s[4];
} clpar_rng;

CLPAR_API void clpar_rng_seed(clpar_rng *r, uint64_t seed);
CLPAR_API uint64_t clpar_rng_next(clpar_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
CLPAR_API double clpar_rng_uniform(clpar_rng *r);
/* Standard normal (Box-Muller). */
CLPAR_API double clpar_rng_normal(clpar_rng *r);
/* Uniform integer in [0, n), unbiased. */
CLPAR_API uint64_t clpar_rng_below(clpar_rng *r, uint64_t n);

#ifdef __cplusplus
}
#endif
#endif
