/* The GEMM workspace of a device: the panels clpar's kernels copy a product's operands into,
 * how the scratch grows, and what a device holds once a mesh has reserved its products,
 * worked out on the device (clpar_gemm_reserve) or without it (clpar-train --dry-run) by the
 * same rules, so that the two agree. */
#include "launch.h"

#include <string.h>

size_t clpar_gemm_panel_floats(const clpar_gemm_config *c, const clpar_gemm_shape *s) {
    if (c->path != CLPAR_GEMM_CLPAR || (s->trans_a && s->trans_b) || !s->m || !s->n || !s->k)
        return 0; /* CLBlast's, or nothing to multiply */
    const size_t *v = c->v, rows = v[2], cols = v[3] * v[4];
    /* NT as dot products reads A and B in place (the rule of clpar_gemm_kernels_run) */
    if (s->trans_b && !(v[8] && s->m >= v[8] && 2 * s->n > cols)) return 0;
    return ((s->n + cols - 1) / cols * cols + (s->m + rows - 1) / rows * rows) * s->k;
}

size_t gemm_scratch_grown(size_t have, size_t need) {
    if (have >= need) return have;
    size_t grow = have ? 2 * have : (size_t)1 << 16;
    return need < grow && grow <= UINT32_MAX ? grow : need;
}

/* The configuration t runs products of shape s with: their route's, else the base. */
static const clpar_gemm_config *config_of(const clpar_gemm_tuning *t, const clpar_gemm_shape *s) {
    for (int i = 0; i < t->nroutes; i++) {
        const clpar_gemm_shape *r = &t->routes[i].shape;
        if (r->trans_a == s->trans_a && r->trans_b == s->trans_b && r->m == s->m && r->n == s->n &&
            r->k == s->k)
            return &t->routes[i].config;
    }
    return &t->base;
}

size_t clpar_gemm_workspace_floats(const clpar_gemm_tuning *t, const clpar_gemm_shape *shapes,
                                   int n) {
    size_t most = 0;
    for (int i = 0; i < n; i++) {
        /* a smaller product (an epoch's last batch) is no route's: the base runs it */
        size_t a = clpar_gemm_panel_floats(config_of(t, &shapes[i]), &shapes[i]);
        size_t b = clpar_gemm_panel_floats(&t->base, &shapes[i]);
        if (a > most) most = a;
        if (b > most) most = b;
    }
    return most;
}

/* Scratch of *have floats, *total of them allocated in all, grown for need as
 * gemm_kernels.c grows it (keeping what it outgrew). */
static void grow(size_t *have, size_t *total, size_t need) {
    size_t g = gemm_scratch_grown(*have, need);
    if (g != *have) *total += g;
    *have = g;
}

clpar_status clpar_gemm_tuning_of(const clpar_runtime *rt, int index, clpar_gemm_tuning *t) {
    const clpar_device_info *info = clpar_runtime_device_info(rt, index);
    if (!info) return clpar_error(CLPAR_ENODEV, "no device %d", index);
    return gemm_plan_tuning(rt, info, t);
}

size_t clpar_gemm_workspace_bytes(const clpar_gemm_tuning *t, bool cpu,
                                  const clpar_gemm_shape *shapes, int n) {
    clpar_gemm_shape warm[GEMM_WARM_SHAPES];
    int nw = gemm_warm_shapes(cpu, warm);
    size_t have = 0, total = 0;
    for (int i = 0; i < nw; i++) /* the warm-up's products, each as its route runs it */
        grow(&have, &total, clpar_gemm_panel_floats(config_of(t, &warm[i]), &warm[i]));
    grow(&have, &total, clpar_gemm_workspace_floats(t, shapes, n));
    return total * sizeof(float);
}

clpar_status clpar_gemm_workspace_predict(const clpar_runtime *rt, int index,
                                          const clpar_gemm_shape *shapes, int n, size_t *bytes) {
    clpar_gemm_tuning t;
    TRY(clpar_gemm_tuning_of(rt, index, &t));
    int cpu = (clpar_runtime_device_info(rt, index)->type & CL_DEVICE_TYPE_CPU) != 0;
    *bytes = clpar_gemm_workspace_bytes(&t, cpu, shapes, n);
    return CLPAR_OK;
}

clpar_status clpar_gemm_reserve(clpar_device *d, const clpar_gemm_shape *shapes, int n) {
    TRY(clpar_op_warmup(d)); /* first, as clpar_gemm_workspace_predict counts */
    clpar_gemm_tuning t;
    memset(&t, 0, sizeof t);
    t.base = d->gemm;
    t.nroutes = d->gemm_nroutes;
    memcpy(t.routes, d->gemm_routes, (size_t)d->gemm_nroutes * sizeof *t.routes);
    return gemm_scratch_reserve(d, clpar_gemm_workspace_floats(&t, shapes, n));
}
