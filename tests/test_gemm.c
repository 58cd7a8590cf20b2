/* clpar's GEMM kernels (kernels/gemm.cl) in many configurations, against a double-precision
 * host product and against CLBlast on the same data: the three products of a layer, edges
 * that fit no block, offsets and padded rows, alpha and beta (beta 0 ignores C, NaN and all),
 * products wider than one launch, and the bias epilogue of a layer's forward. */
#include "common.h"

#include <math.h>
#include <string.h>

/* Configurations that together take every branch of the kernels' macros; the last two
 * run NT products of 1 and of 30 rows or more as the outer-product kernel on panels of A and
 * of B^T (TB). */
static const clpar_gemm_config configs[] = {{CLPAR_GEMM_CLPAR, {4, 4, 6, 2, 8, 8, 0, 0}},
                                            {CLPAR_GEMM_CLPAR, {1, 1, 1, 1, 4, 1, 1, 0}},
                                            {CLPAR_GEMM_CLPAR, {3, 2, 4, 3, 16, 64, 0, 3}},
                                            {CLPAR_GEMM_CLPAR, {6, 4, 8, 1, 4, 8, 1, 0}},
                                            {CLPAR_GEMM_CLPAR, {2, 5, 3, 2, 8, 2, 1, 16}},
                                            {CLPAR_GEMM_CLPAR, {4, 4, 6, 2, 8, 8, 0, 0, 1}},
                                            {CLPAR_GEMM_CLPAR, {2, 5, 3, 1, 4, 2, 1, 16, 30}}};
static const clpar_gemm_config clblast = {CLPAR_GEMM_DIRECT, {32, 4, 4, 4, 4, 1, 8, 8, 1, 1}};

typedef struct {
    int ta, tb;
    size_t m, n, k;
} shape;

/* C = alpha op(A) op(B) + beta C with padded rows and offsets, on device d; the result in
 * got (m * n). */
static void run(clpar_device *d, const shape *s, float alpha, float beta, const float *a,
                const float *b, const float *c, float *got) {
    size_t lda = (s->ta ? s->m : s->k) + 3, ldb = (s->tb ? s->k : s->n) + 2, ldc = s->n + 5;
    size_t arows = s->ta ? s->k : s->m, brows = s->tb ? s->n : s->k;
    enum { AO = 3, BO = 5, CO = 7 };
    size_t na = AO + arows * lda, nb = BO + brows * ldb, nc = CO + s->m * ldc;
    float *ha = calloc(na, sizeof *ha), *hb = calloc(nb, sizeof *hb), *hc = malloc(nc * 4);
    for (size_t i = 0; i < nc; i++)
        hc[i] = NAN; /* padding and, with beta 0, C itself: never to be read into results */
    for (size_t r = 0; r < arows; r++)
        memcpy(ha + AO + r * lda, a + r * (s->ta ? s->m : s->k), (s->ta ? s->m : s->k) * 4);
    for (size_t r = 0; r < brows; r++)
        memcpy(hb + BO + r * ldb, b + r * (s->tb ? s->k : s->n), (s->tb ? s->k : s->n) * 4);
    if (beta != 0.0f)
        for (size_t r = 0; r < s->m; r++)
            memcpy(hc + CO + r * ldc, c + r * s->n, s->n * 4);
    cl_mem ma = t_upload(d, ha, na), mb = t_upload(d, hb, nb), mc = t_upload(d, hc, nc);
    T_OK(clpar_op_gemm(d, s->ta, s->tb, s->m, s->n, s->k, alpha, ma, AO, lda, mb, BO, ldb, beta, mc,
                       CO, ldc, NULL));
    float *out = t_download(d, mc, nc);
    for (size_t r = 0; r < s->m; r++) {
        memcpy(got + r * s->n, out + CO + r * ldc, s->n * 4);
        for (size_t j = s->n; j < ldc && CO + r * ldc + j < nc; j++)
            cr_assert(isnan(out[CO + r * ldc + j]), "padding of C written at row %zu", r);
    }
    free(out);
    free(ha);
    free(hb);
    free(hc);
    clpar_device_release(d, ma);
    clpar_device_release(d, mb);
    clpar_device_release(d, mc);
}

static void reference(const shape *s, float alpha, float beta, const float *a, const float *b,
                      const float *c, double *ref) {
    for (size_t i = 0; i < s->m; i++)
        for (size_t j = 0; j < s->n; j++) {
            double sum = 0;
            for (size_t k = 0; k < s->k; k++)
                sum += (double)(s->ta ? a[k * s->m + i] : a[i * s->k + k]) *
                       (s->tb ? b[j * s->k + k] : b[k * s->n + j]);
            ref[i * s->n + j] = alpha * sum + (beta != 0.0f ? beta * (double)c[i * s->n + j] : 0);
        }
}

/* CLPAR_TEST_GEMM_QUICK=1 (the Oclgrind run, a simulator): the five smaller sizes, and the
 * host reference only. */
Test(gemm, clpar_kernels_match_the_host_and_clblast) {
    const char *quick_env = getenv("CLPAR_TEST_GEMM_QUICK");
    int quick = quick_env && *quick_env == '1';
    /* CLBlast on a second device, or on a second handle of the only one (Oclgrind) */
    clpar_device *d = t_device(0), *blas;
    T_OK(clpar_device_init(t_runtime(), clpar_runtime_device_count(t_runtime()) > 1, &blas));
    clpar_gemm_config auto_path = {CLPAR_GEMM_AUTO, {0}};
    int cpu = (clpar_device_get_info(blas)->type & CL_DEVICE_TYPE_CPU) != 0;
    T_OK(clpar_gemm_apply(blas, cpu ? &clblast : &auto_path, false));
    /* NT, NN, TN (what the layers run) and TT (which goes to CLBlast) */
    const int tr[4][2] = {{0, 1}, {0, 0}, {1, 0}, {1, 1}};
    const size_t sizes[][3] = {{1, 1, 1},   {5, 3, 2},    {37, 29, 23}, {12, 100, 7},
                               {3, 17, 64}, {64, 48, 40}, {70, 130, 33}};
    const float ab[][2] = {{1.0f, 0.0f}, {0.5f, 2.0f}, {-1.5f, 1.0f}};
    for (size_t ci = 0; ci < sizeof configs / sizeof *configs; ci++) {
        T_OK(clpar_gemm_apply(d, &configs[ci], false));
        for (size_t si = 0; si < (quick ? 5 : sizeof sizes / sizeof *sizes); si++)
            for (int t = 0; t < 4; t++) {
                shape s = {tr[t][0], tr[t][1], sizes[si][0], sizes[si][1], sizes[si][2]};
                const float *x = ab[(ci + si + t) % 3];
                size_t mk = s.m * s.k, kn = s.k * s.n, mn = s.m * s.n;
                float *a = malloc(mk * 4), *b = malloc(kn * 4), *c = malloc(mn * 4);
                float *got = malloc(mn * 4), *want = malloc(mn * 4);
                double *ref = malloc(mn * 8);
                t_fill(a, mk, 100 + si, -1, 1);
                t_fill(b, kn, 200 + si, -1, 1);
                t_fill(c, mn, 300 + si, -1, 1);
                reference(&s, x[0], x[1], a, b, c, ref);
                run(d, &s, x[0], x[1], a, b, c, got);
                if (!quick) run(blas, &s, x[0], x[1], a, b, c, want);
                char text[256];
                clpar_gemm_config_format(&configs[ci], text, sizeof text);
                cr_assert_lt(t_rel_l2_d(got, ref, mn), 1e-6, "%s: %s%s %zux%zux%zu", text,
                             s.ta ? "T" : "N", s.tb ? "T" : "N", s.m, s.n, s.k);
                cr_assert(quick || t_rel_l2(got, want, mn) < 1e-6,
                          "%s against CLBlast: %s%s %zux%zux%zu", text, s.ta ? "T" : "N",
                          s.tb ? "T" : "N", s.m, s.n, s.k);
                free(a);
                free(b);
                free(c);
                free(got);
                free(want);
                free(ref);
            }
    }
    clpar_device_free(blas);
}

/* More rows (or columns) of blocks than one launch may have (2^15): the product goes in
 * pieces, each with its own offsets. */
Test(gemm, products_wider_than_one_launch) {
    clpar_device *d = t_device(0);
    /* one block per work-item, on a 2-D grid and in panels of 5 rows of blocks; NN and TN
     * copy A's 40,000 rows into more tiles than one launch takes, then NT under TB copies
     * B^T's 20,000 columns into 80,000 tiles */
    const clpar_gemm_config small[3] = {{CLPAR_GEMM_CLPAR, {1, 1, 1, 1, 4, 8, 0, 0}},
                                        {CLPAR_GEMM_CLPAR, {1, 1, 1, 1, 4, 8, 0, 5}},
                                        {CLPAR_GEMM_CLPAR, {1, 1, 1, 1, 4, 8, 0, 0, 1}}};
    const shape shapes[] = {{0, 1, 40000, 3, 5}, {0, 1, 3, 40000, 5},  {0, 0, 40000, 6, 3},
                            {1, 0, 40000, 6, 3}, {0, 0, 2, 140000, 3}, {0, 1, 2, 20000, 256}};
    for (size_t i = 0; i < 2 * sizeof shapes / sizeof *shapes; i++) {
        const shape *s = &shapes[i / 2];
        T_OK(clpar_gemm_apply(d, &small[i / 2 == 5 ? 2 : i % 2], false));
        size_t mk = s->m * s->k, kn = s->k * s->n, mn = s->m * s->n;
        float *a = malloc(mk * 4), *b = malloc(kn * 4), *c = malloc(mn * 4), *got = malloc(mn * 4);
        double *ref = malloc(mn * 8);
        t_fill(a, mk, 7, -1, 1);
        t_fill(b, kn, 8, -1, 1);
        t_fill(c, mn, 9, -1, 1);
        reference(s, 1.0f, 0.5f, a, b, c, ref);
        run(d, s, 1.0f, 0.5f, a, b, c, got);
        cr_assert_lt(t_rel_l2_d(got, ref, mn), 1e-6, "shape %zu, panels %zu", i / 2, i % 2);
        free(a);
        free(b);
        free(c);
        free(got);
        free(ref);
    }
}

/* A layer's x W^T + b in one launch (clpar's kernels: the bias is the NT kernel's epilogue),
 * in three when x and W^T are copied into panels first (TB: the outer-product kernel's
 * epilogue, also for layers narrower than one block of vectors) or as a GEMM and bias_add
 * (CLBlast): the host's result every way. */
Test(gemm, linear_forward_with_its_bias) {
    clpar_device *own = t_device(0), *blas;
    T_OK(clpar_device_init(t_runtime(), clpar_runtime_device_count(t_runtime()) > 1, &blas));
    T_OK(clpar_gemm_apply(blas, &clblast, false));
    const clpar_gemm_config wide = {CLPAR_GEMM_CLPAR, {3, 1, 6, 2, 8, 8, 1, 0}};
    /* rows, out, in; the last has more columns of blocks than one launch takes (NT = 1) */
    const size_t sizes[][3] = {{1, 1, 1}, {37, 29, 23}, {128, 10, 128}, {3, 40000, 9}};
    for (int variant = 0; variant < 4; variant++) /* without and with a bias, then with TB */
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
            size_t rows = sizes[si][0], out = sizes[si][1], in = sizes[si][2];
            int bias_on = variant & 1, tb = variant >= 2 && si != 3;
            T_OK(clpar_gemm_apply(own, si == 3 ? &wide : &configs[tb ? 5 : 0], false));
            enum { WO = 5, BO = 3 }; /* offsets of W and b in the parameter buffer */
            size_t np = WO + out * in + BO + out;
            float *x = malloc(rows * in * 4), *p = malloc(np * 4);
            double *ref = malloc(rows * out * 8);
            t_fill(x, rows * in, 40 + si, -1, 1);
            t_fill(p, np, 50 + si, -1, 1);
            size_t boff = WO + out * in + BO;
            for (size_t i = 0; i < rows; i++)
                for (size_t j = 0; j < out; j++) {
                    double sum = 0;
                    for (size_t k = 0; k < in; k++)
                        sum += (double)x[i * in + k] * p[WO + j * in + k];
                    ref[i * out + j] = sum + (bias_on ? p[boff + j] : 0.0);
                }
            float *got[2];
            clpar_device *devs[2] = {own, blas};
            for (int dv = 0; dv < 2; dv++) {
                cl_mem mx = t_upload(devs[dv], x, rows * in), mp = t_upload(devs[dv], p, np), my;
                T_OK(clpar_device_alloc(devs[dv], rows * out * 4, &my));
                uint64_t l0, l1, w;
                clpar_device_get_counts(devs[dv], &l0, &w);
                T_OK(clpar_op_linear(devs[dv], rows, out, in, mx, mp, WO, bias_on ? mp : NULL, boff,
                                     my, NULL));
                clpar_device_get_counts(devs[dv], &l1, &w);
                /* size 3: pieces; size 0, narrower than half a panel (16): dot products */
                if (dv == 0 && si != 3)
                    cr_expect_eq(l1 - l0, tb && 2 * out > 16 ? 3u : 1u, "launches, size %zu tb %d",
                                 si, tb);
                got[dv] = t_download(devs[dv], my, rows * out);
                clpar_device_release(devs[dv], mx);
                clpar_device_release(devs[dv], mp);
                clpar_device_release(devs[dv], my);
            }
            cr_assert_lt(t_rel_l2_d(got[0], ref, rows * out), 1e-6, "clpar, size %zu bias %d", si,
                         bias_on);
            cr_assert_lt(t_rel_l2_d(got[1], ref, rows * out), 1e-6, "CLBlast, size %zu bias %d", si,
                         bias_on);
            free(x);
            free(p);
            free(ref);
            free(got[0]);
            free(got[1]);
        }
    clpar_device_free(blas);
}

/* A tuning's routes on a device: products of a routed shape run what the route names (another
 * parameter set of clpar's kernels, or CLBlast under them), other shapes the base; all give
 * the host's product. A layer's forward on a shape routed to clpar's kernels is one launch,
 * on one routed to CLBlast two (GEMM, bias_add). */
Test(gemm, routes_run_their_kernels) {
    clpar_device *d = t_device(0);
    const clpar_gemm_config to_clblast = {CLPAR_GEMM_AUTO, {0}};
    clpar_gemm_tuning t = {configs[0],
                           3,
                           {{{0, 1, 37, 29, 23}, configs[2]},
                            {{1, 0, 37, 29, 23}, to_clblast},
                            {{0, 0, 37, 29, 23}, configs[4]}}};
    T_OK(clpar_gemm_apply_tuning(d, &t, false));
    clpar_gemm_config fallback, got_config;
    clpar_gemm_fallback(d, &fallback);
    const int tr[4][2] = {{0, 1}, {1, 0}, {0, 0}, {1, 1}};
    const clpar_gemm_config *want_config[4] = {&configs[2], &fallback, &configs[4], &fallback};
    const size_t sizes[2][3] = {{37, 29, 23}, {12, 100, 7}};
    for (int si = 0; si < 2; si++)
        for (int ti = 0; ti < 4; ti++) {
            shape s = {tr[ti][0], tr[ti][1], sizes[si][0], sizes[si][1], sizes[si][2]};
            clpar_gemm_shape gs = {s.ta, s.tb, s.m, s.n, s.k};
            T_OK(clpar_gemm_route_of(d, &gs, &got_config));
            /* the other size is not routed: the base, CLBlast for TT */
            const clpar_gemm_config *want = si == 0   ? want_config[ti]
                                            : ti == 3 ? &fallback
                                                      : &configs[0];
            cr_expect(got_config.path == want->path &&
                          !memcmp(got_config.v, want->v, sizeof want->v),
                      "route of shape %d, transposes %d", si, ti);
            size_t mn = s.m * s.n;
            float *a = malloc(s.m * s.k * 4), *b = malloc(s.k * s.n * 4), *c = malloc(mn * 4);
            float *got = malloc(mn * 4);
            double *ref = malloc(mn * 8);
            t_fill(a, s.m * s.k, 11 + ti, -1, 1);
            t_fill(b, s.k * s.n, 12 + ti, -1, 1);
            t_fill(c, mn, 13 + ti, -1, 1);
            reference(&s, 0.5f, 2.0f, a, b, c, ref);
            run(d, &s, 0.5f, 2.0f, a, b, c, got);
            cr_expect_lt(t_rel_l2_d(got, ref, mn), 1e-6, "shape %d, transposes %d", si, ti);
            free(a);
            free(b);
            free(c);
            free(got);
            free(ref);
        }
    float p[29 * 23 + 29], x[37 * 23];
    t_fill(p, 29 * 23 + 29, 3, -1, 1);
    t_fill(x, 37 * 23, 4, -1, 1);
    cl_mem mp = t_upload(d, p, 29 * 23 + 29), mx = t_upload(d, x, 37 * 23), my;
    T_OK(clpar_device_alloc(d, 37 * 29 * 4, &my));
    for (int to_blas = 0; to_blas < 2; to_blas++) {
        t.routes[0].config = to_blas ? to_clblast : configs[2];
        T_OK(clpar_gemm_apply_tuning(d, &t, false));
        uint64_t l0, w0, l1, w1;
        clpar_device_get_counts(d, &l0, &w0);
        T_OK(clpar_op_linear(d, 37, 29, 23, mx, mp, 0, mp, 29 * 23, my, NULL));
        clpar_device_get_counts(d, &l1, &w1);
        cr_expect_eq(l1 - l0, to_blas ? 2u : 1u, "launches of a layer forward routed to %s",
                     to_blas ? "CLBlast" : "clpar's kernels");
        float *y = t_download(d, my, 37 * 29);
        for (int i = 0; i < 37; i++)
            for (int j = 0; j < 29; j++) {
                double r = p[29 * 23 + j];
                for (int k = 0; k < 23; k++)
                    r += (double)x[i * 23 + k] * p[j * 23 + k];
                cr_expect_float_eq(y[i * 29 + j], r, 1e-5, "(%d, %d)", i, j);
            }
        free(y);
    }
    clpar_device_release(d, mp);
    clpar_device_release(d, mx);
    clpar_device_release(d, my);
    /* one parameter set of clpar's kernels past the limit is refused, naming it */
    clpar_gemm_tuning many;
    memset(&many, 0, sizeof many);
    many.base = configs[0];
    many.nroutes = CLPAR_GEMM_MAX_KERNELS;
    for (int i = 0; i < CLPAR_GEMM_MAX_KERNELS; i++)
        many.routes[i] = (clpar_gemm_route){
            {0, 1, (size_t)i + 1, 1, 1}, {CLPAR_GEMM_CLPAR, {(size_t)i + 1, 1, 1, 1, 4, 1, 0, 0}}};
    cr_expect_eq(clpar_gemm_apply_tuning(d, &many, false), CLPAR_EINVAL);
    char limit[64];
    snprintf(limit, sizeof limit, "more than %d parameter sets", CLPAR_GEMM_MAX_KERNELS);
    cr_expect(strstr(clpar_last_error(), limit), "%s", clpar_last_error());
}

/* The outer-product kernel's copies of A and B (panels of MX rows and of NX VW columns,
 * padded) live in the device's workspace: 64 Ki floats at first, then at least twice the
 * buffer in use whenever a product needs more, the outgrown ones kept; the device's
 * allocation does not change. The copies are two launches before the product's own: NT
 * products under TB make them, unless C is narrower than half a panel (dot products). */
Test(gemm, workspace_holds_the_panels) {
    clpar_device *d;
    T_OK(clpar_device_init(t_runtime(), 0, &d));
    const clpar_gemm_config c = {CLPAR_GEMM_CLPAR, {4, 4, 6, 2, 8, 8, 0, 0, 30}}; /* 16 wide */
    T_OK(clpar_gemm_apply(d, &c, false));
    /* NN (panels of 42 + 32 rows of 23), NN (300 + 304 of 300: 181,200 floats), NT under TB
     * (102 + 64 of 40), NT as dot products (29 rows), NN (330 + 304 of 300: 190,200), NT
     * under TB but 7 wide (dot products) */
    const shape shapes[] = {{0, 0, 37, 29, 23},   {0, 0, 300, 300, 300}, {0, 1, 100, 50, 40},
                            {0, 1, 29, 300, 300}, {0, 0, 330, 300, 300}, {0, 1, 100, 7, 40}};
    const size_t k64 = 65536, workspace[] = {k64,
                                             k64 + 181200,
                                             k64 + 181200,
                                             k64 + 181200,
                                             k64 + 181200 + 2 * 181200,
                                             k64 + 181200 + 2 * 181200};
    const uint64_t launches[] = {3, 3, 3, 1, 3, 1};
    cr_expect_eq(clpar_device_workspace_bytes(d), 0u, "workspace before any product");
    for (int i = 0; i < 6; i++) {
        const shape *s = &shapes[i];
        size_t na = s->m * s->k, nb = s->k * s->n;
        float *x = calloc(na + nb, sizeof *x);
        cl_mem a = t_upload(d, x, na), b = t_upload(d, x, nb), out;
        T_OK(clpar_device_alloc(d, s->m * s->n * 4, &out));
        size_t before = clpar_device_allocated_bytes(d);
        uint64_t l0, l1, waits;
        clpar_device_get_counts(d, &l0, &waits);
        T_OK(clpar_op_gemm(d, s->ta, s->tb, s->m, s->n, s->k, 1.0f, a, 0, s->k, b, 0,
                           s->tb ? s->k : s->n, 0.0f, out, 0, s->n, NULL));
        clpar_device_get_counts(d, &l1, &waits);
        cr_expect_eq(l1 - l0, launches[i], "launches of product %d", i);
        T_OK(clpar_device_finish(d));
        cr_expect_eq(clpar_device_workspace_bytes(d), workspace[i] * 4,
                     "workspace after product %d", i);
        cr_expect_eq(clpar_device_allocated_bytes(d), before, "allocation after product %d", i);
        clpar_device_release(d, a);
        clpar_device_release(d, b);
        clpar_device_release(d, out);
        free(x);
    }
    clpar_device_free(d);
}

/* The round-trip counters: a fused layer forward is one launch on clpar's kernels and two
 * (GEMM, bias_add) on CLBlast's; a blocking read is one host wait, an enqueued kernel none. */
Test(gemm, launches_and_waits_are_counted) {
    clpar_device *own = t_device(0), *blas;
    T_OK(clpar_device_init(t_runtime(), clpar_runtime_device_count(t_runtime()) > 1, &blas));
    T_OK(clpar_gemm_apply(blas, &clblast, false));
    T_OK(clpar_gemm_apply(own, &configs[0], false));
    clpar_device *devs[2] = {own, blas};
    for (int dv = 0; dv < 2; dv++) {
        float p[4 * 3 + 4], x[2 * 3], y[2 * 4];
        t_fill(p, 16, 1, -1, 1);
        t_fill(x, 6, 2, -1, 1);
        cl_mem mp = t_upload(devs[dv], p, 16), mx = t_upload(devs[dv], x, 6), my;
        T_OK(clpar_device_alloc(devs[dv], sizeof y, &my));
        uint64_t l0, w0, l1, w1, l2, w2;
        clpar_device_get_counts(devs[dv], &l0, &w0);
        T_OK(clpar_op_linear(devs[dv], 2, 4, 3, mx, mp, 0, mp, 12, my, NULL));
        clpar_device_get_counts(devs[dv], &l1, &w1);
        T_OK(clpar_device_read(devs[dv], y, my, 0, sizeof y));
        clpar_device_get_counts(devs[dv], &l2, &w2);
        cr_expect_eq(l1 - l0, dv == 0 ? 1u : 2u, "launches of a layer forward (device %d)", dv);
        cr_expect_eq(w1 - w0, 0u, "a launch is no host wait");
        cr_expect_eq(l2 - l1, 0u);
        cr_expect_eq(w2 - w1, 1u, "a blocking read is one host wait");
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 4; j++) {
                double r = p[12 + j];
                for (int k = 0; k < 3; k++)
                    r += (double)x[i * 3 + k] * p[j * 3 + k];
                cr_expect_float_eq(y[i * 4 + j], r, 1e-5);
            }
        clpar_device_release(devs[dv], mp);
        clpar_device_release(devs[dv], mx);
        clpar_device_release(devs[dv], my);
    }
    clpar_device_free(blas);
}
