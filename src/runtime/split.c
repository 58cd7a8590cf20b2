/* Splits of a count into parts (batch rows over replicas and micro-batches, features over
 * tensor-parallel shards), even or in proportion to weights, the same on every rank. */
#include "internal.h"

size_t clpar_split_size(size_t total, size_t parts, size_t i) {
    return total / parts + (i < total % parts ? 1 : 0);
}

size_t clpar_split_start(size_t total, size_t parts, size_t i) {
    return i * (total / parts) + (i < total % parts ? i : total % parts);
}

/* Sizes of a split of total into parts proportional to w (NULL: equal parts, the first
 * total % parts one larger): each part gets at least one when total >= parts, the rest by
 * largest remainder, ties to the lower index, so every rank computes the same split. */
static void weighted_sizes(size_t total, int parts, const double *w, size_t *sizes) {
    double sum = 0;
    int use = w != NULL;
    for (int i = 0; use && i < parts; i++) {
        if (!(w[i] > 0)) use = 0;
        sum += w[i];
    }
    if (!use) {
        for (int i = 0; i < parts; i++)
            sizes[i] = clpar_split_size(total, (size_t)parts, (size_t)i);
        return;
    }
    size_t base = total >= (size_t)parts ? 1 : 0, rest = total - base * (size_t)parts, given = 0;
    double rem[CLPAR_SPLIT_MAX];
    for (int i = 0; i < parts; i++) {
        double exact = (double)rest * w[i] / sum;
        size_t whole = (size_t)exact;
        sizes[i] = base + whole;
        rem[i] = exact - (double)whole;
        given += whole;
    }
    for (size_t left = rest - given; left > 0; left--) {
        int best = 0;
        for (int i = 1; i < parts; i++)
            if (rem[i] > rem[best]) best = i;
        sizes[best]++;
        rem[best] = -1;
    }
}

void clpar_split_part(size_t total, int parts, const double *w, int i, size_t *start,
                      size_t *size) {
    size_t sizes[CLPAR_SPLIT_MAX];
    weighted_sizes(total, parts, w, sizes);
    *start = 0;
    for (int j = 0; j < i; j++)
        *start += sizes[j];
    *size = sizes[i];
}
