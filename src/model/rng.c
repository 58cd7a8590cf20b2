/* xoshiro256** seeded by splitmix64 (public-domain algorithms by Blackman and Vigna). */
#include "clpar/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void clpar_rng_seed(clpar_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

uint64_t clpar_rng_next(clpar_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double clpar_rng_uniform(clpar_rng *r) {
    return (double)(clpar_rng_next(r) >> 11) * 0x1.0p-53;
}

double clpar_rng_normal(clpar_rng *r) {
    double u1 = 1.0 - clpar_rng_uniform(r); /* (0, 1], keeps log finite */
    double u2 = clpar_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t clpar_rng_below(clpar_rng *r, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do
        v = clpar_rng_next(r);
    while (v >= limit);
    return v % n;
}
