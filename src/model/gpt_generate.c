/* Sampling text from a GPT replica: each new token from the logits at the last position of
 * the context (the last ctx tokens; a shorter context is padded after its end, which causal
 * attention never sees), scaled by the temperature, cut to the top k, drawn with clpar's
 * seeded generator. */
#include "clpar/gpt.h"
#include "clpar/rng.h"
#include "../runtime/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The token drawn from logits (V) at temperature t (0: the most likely) among the top k. */
static int draw(const float *logits, size_t V, float t, int top_k, clpar_rng *rng, double *p) {
    size_t best = 0;
    for (size_t v = 1; v < V; v++)
        if (logits[v] > logits[best]) best = v;
    if (t <= 0) return (int)best;
    /* the cut is the k-th largest logit: the smallest one with fewer than k above it */
    float cut = -INFINITY;
    if (top_k > 0 && (size_t)top_k < V) {
        cut = INFINITY;
        for (size_t v = 0; v < V; v++) {
            size_t above = 0;
            for (size_t u = 0; u < V; u++)
                above += logits[u] > logits[v];
            if (above < (size_t)top_k && logits[v] < cut) cut = logits[v];
        }
    }
    double sum = 0;
    for (size_t v = 0; v < V; v++) {
        p[v] = logits[v] >= cut ? exp(((double)logits[v] - logits[best]) / t) : 0.0;
        sum += p[v];
    }
    double u = clpar_rng_uniform(rng) * sum, acc = 0;
    for (size_t v = 0; v < V; v++) {
        acc += p[v];
        if (p[v] > 0 && u < acc) return (int)v;
    }
    return (int)best;
}

clpar_status clpar_gpt_generate(clpar_gpt *g, const clpar_gpt_config *c, const int *prompt,
                                size_t len, size_t n, float temperature, int top_k, uint64_t seed,
                                int *out) {
    size_t T = c->ctx, V = c->vocab;
    if (len == 0) return clpar_error(CLPAR_EINVAL, "generation needs a prompt of a token or more");
    for (size_t i = 0; i < len; i++)
        if (prompt[i] < 0 || (size_t)prompt[i] >= V)
            return clpar_error(CLPAR_EINVAL, "prompt token %d is outside the vocabulary of %zu",
                               prompt[i], V);
    int *seq = malloc((len + n) * sizeof(int)), *ctx = calloc(T, sizeof(int));
    float *logits = malloc(T * V * sizeof(float));
    double *p = malloc(V * sizeof(double));
    clpar_status st =
        seq && ctx && logits && p ? CLPAR_OK : clpar_error(CLPAR_ENOMEM, "out of host memory");
    clpar_rng rng;
    clpar_rng_seed(&rng, seed);
    if (st == CLPAR_OK) memcpy(seq, prompt, len * sizeof(int));
    for (size_t k = 0; k < n && st == CLPAR_OK; k++) {
        size_t have = len + k, used = have < T ? have : T;
        memset(ctx, 0, T * sizeof(int));
        memcpy(ctx, seq + have - used, used * sizeof(int));
        st = clpar_gpt_upload(g, ctx, NULL, 1);
        if (st == CLPAR_OK) st = clpar_gpt_forward(g, 1);
        if (st == CLPAR_OK) st = clpar_gpt_read_logits(g, logits, 1);
        if (st == CLPAR_OK) {
            seq[have] = draw(logits + (used - 1) * V, V, temperature, top_k, &rng, p);
            out[k] = seq[have];
        }
    }
    free(seq);
    free(ctx);
    free(logits);
    free(p);
    return st;
}
