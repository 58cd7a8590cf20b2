/* Tuning CLBlast's GEMM kernels for a device: candidate parameter sets are checked against
 * a double-precision host product and timed on the products a model needs; the fastest is
 * kept in ~/.cache/clpar/gemm.tsv, which every later process applies when it warms the device
 * up (ops/gemm.c). CLBlast's database does not know most devices clpar meets (PoCL's CPU
 * devices, recent GPUs), and its own tuners need a build from source. */
#include "launch.h"

#include <clblast_c.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *direct_names[10] = {"WGD",  "MDIMCD", "NDIMCD", "MDIMAD", "NDIMBD",
                                       "KWID", "VWMD",   "VWND",   "PADA",   "PADB"};
static const char *indirect_names[16] = {"GEMMK", "KREG",  "KWG",   "KWI", "MDIMA", "MDIMC",
                                         "MWG",   "NDIMB", "NDIMC", "NWG", "SA",    "SB",
                                         "STRM",  "STRN",  "VWM",   "VWN"};
static const char *clpar_names[9] = {"MT", "NT", "MX", "NX", "VW", "WG", "RD", "PH", "TB"};

static size_t nvalues(clpar_gemm_path p) {
    return p == CLPAR_GEMM_DIRECT     ? 10
           : p == CLPAR_GEMM_INDIRECT ? 16
           : p == CLPAR_GEMM_CLPAR    ? 9
                                      : 0;
}

static const char **value_names(clpar_gemm_path p) {
    return p == CLPAR_GEMM_DIRECT  ? direct_names
           : p == CLPAR_GEMM_CLPAR ? clpar_names
                                   : indirect_names;
}

/* clpar's kernels unroll blocks of MT x NT and MX x NX vectors: keep them within registers'
 * reach, and the launch rules of gemm_kernels.c (WG divides 2^15). */
static int clpar_values_ok(const size_t *v) {
    return v[0] >= 1 && v[0] <= 16 && v[1] >= 1 && v[1] <= 16 && v[2] >= 1 && v[2] <= 16 &&
           v[3] >= 1 && v[3] <= 8 && (v[4] == 4 || v[4] == 8 || v[4] == 16) && v[5] >= 1 &&
           v[5] <= 256 && (v[5] & (v[5] - 1)) == 0 && v[6] <= 1 && v[7] <= 256 && v[8] <= 65536;
}

/* ---- candidates ---- */

static int device_limits(const clpar_device *d, size_t *max_wg, size_t *local_bytes) {
    cl_ulong local = 0;
    *max_wg = 0;
    if (clGetDeviceInfo(d->info->device_id, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof *max_wg, max_wg,
                        NULL) != CL_SUCCESS ||
        clGetDeviceInfo(d->info->device_id, CL_DEVICE_LOCAL_MEM_SIZE, sizeof local, &local, NULL) !=
            CL_SUCCESS)
        return 0;
    *local_bytes = (size_t)local;
    return 1;
}

/* Every valid set of the grid, in a fixed order: clpar's kernels, then CLBlast's. The grids
 * keep CLBlast's divisibility rules by construction: tiles are multiples of threads times
 * vector widths. */
static int grid(const clpar_device *d, clpar_gemm_config *out, int cap) {
    size_t max_wg, local;
    if (!device_limits(d, &max_wg, &local)) return 0;
    int n = 0;
    const size_t ntb[4][2] = {{2, 4}, {3, 4}, {4, 4}, {6, 4}},
                 xnb[4][2] = {{4, 2}, {6, 2}, {4, 4}, {6, 4}};
    const size_t cvw[2] = {8, 16}, cwg[3] = {1, 8, 64};
    for (size_t tb = 0; tb <= 64; tb += 64) /* outermost: a spread sample takes both */
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++)
                for (int c = 0; c < 2; c++)
                    for (int w = 0; w < 3; w++)
                        for (int order = 0; order < 3; order++) { /* RD 0, RD 1, panels */
                            if (cwg[w] > max_wg) continue;
                            if (n < cap)
                                out[n] = (clpar_gemm_config){CLPAR_GEMM_CLPAR,
                                                             {ntb[a][0], ntb[a][1], xnb[b][0],
                                                              xnb[b][1], cvw[c], cwg[w], order == 1,
                                                              order == 2 ? 16u : 0u, tb}};
                            n++;
                        }
    const size_t tiles[3] = {16, 32, 64}, threads[3] = {4, 8, 16}, vw[4] = {1, 2, 4, 8};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 4; c++) {
                size_t wgd = tiles[a], t = threads[b], v = vw[c];
                if (wgd % (t * v) || t * t > max_wg || 2 * wgd * (wgd + 1) * 4 > local) continue;
                if (n < cap)
                    out[n] =
                        (clpar_gemm_config){CLPAR_GEMM_DIRECT, {wgd, t, t, t, t, 2, v, v, 1, 1}};
                n++;
            }
    const size_t mwg[2] = {64, 128}, kwg[2] = {16, 32}, dim[2] = {8, 16}, vw2[2] = {2, 4};
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int c = 0; c < 2; c++)
                for (int e = 0; e < 2; e++)
                    for (int f = 0; f < 2; f++) {
                        size_t m = mwg[a], nw = mwg[b], k = kwg[c], t = dim[e], v = vw2[f];
                        if (m % (t * v) || nw % (t * v) || k % t || t * t > max_wg ||
                            k * (m + nw) * 4 > local)
                            continue;
                        if (n < cap)
                            out[n] = (clpar_gemm_config){
                                CLPAR_GEMM_INDIRECT,
                                {0, 1, k, 2, t, t, m, t, t, nw, 1, 1, 0, 0, v, v}};
                        n++;
                    }
    return n;
}

/* CLBlast's direct kernel on CPU devices, with the parameters measured on PoCL */
static const clpar_gemm_config cpu_direct = {CLPAR_GEMM_DIRECT, {32, 4, 4, 4, 4, 1, 8, 8, 1, 1}};

void clpar_gemm_fallback(const clpar_device *d, clpar_gemm_config *c) {
    if (d->info->type & CL_DEVICE_TYPE_CPU)
        *c = cpu_direct;
    else
        *c = (clpar_gemm_config){CLPAR_GEMM_AUTO, {0}};
}

static int same_config(const clpar_gemm_config *a, const clpar_gemm_config *b) {
    return a->path == b->path && !memcmp(a->v, b->v, sizeof a->v);
}

int clpar_gemm_candidates(const clpar_device *d, clpar_gemm_config *out, int cap) {
    int n = 0;
    /* what clpar uses without a tuning (ops/gemm.c), CLBlast's own choice, and CLBlast as it
     * runs under clpar's kernels (what a shape routed to CLBlast gets) */
    clpar_gemm_config first, fallback;
    clpar_gemm_default(d, &first);
    clpar_gemm_fallback(d, &fallback);
    if (n < cap) out[n++] = first;
    if (n < cap && first.path != CLPAR_GEMM_AUTO)
        out[n++] = (clpar_gemm_config){CLPAR_GEMM_AUTO, {0}};
    if (n < cap && !same_config(&fallback, &first) && fallback.path != CLPAR_GEMM_AUTO)
        out[n++] = fallback;
    enum { MAX_GRID = 1024 };
    clpar_gemm_config *all = malloc(MAX_GRID * sizeof *all);
    if (!all) return n; /* the three above are still candidates */
    int total = grid(d, all, MAX_GRID);
    if (total > MAX_GRID) total = MAX_GRID;
    int want = cap - n < total ? cap - n : total;
    /* spread evenly over the grid, so a small budget still tries both kernels */
    for (int i = 0; i < want; i++)
        out[n + i] = all[(size_t)i * (size_t)total / (size_t)want];
    free(all);
    return n + (want > 0 ? want : 0);
}

/* ---- applying one ---- */

clpar_status clpar_gemm_override(clpar_device *d, const char *kernel, size_t n, const char **names,
                                 const size_t *values) {
    CLBlastStatusCode s = CLBlastOverrideParameters(d->info->device_id, kernel,
                                                    CLBlastPrecisionSingle, n, names, values);
    if (s != CLBlastSuccess)
        return clpar_error((clpar_status)s,
                           "CLBlastOverrideParameters(%s) on device %d failed (%d)", kernel,
                           d->info->index, (int)s);
    return CLPAR_OK;
}

/* CLBlast's direct kernel at every size, with parameters v (XgemmDirect's 10). */
static clpar_status use_direct(clpar_device *d, const size_t *v) {
    const char *threshold_name[] = {"XGEMM_MIN_INDIRECT_SIZE"};
    size_t never = 65536; /* the indirect path from m n k >= 65536^3 */
    TRY(clpar_gemm_override(d, "GemmRoutine", 1, threshold_name, &never));
    return clpar_gemm_override(d, "XgemmDirect", 10, direct_names, v);
}

clpar_status clpar_gemm_apply(clpar_device *d, const clpar_gemm_config *c, bool recompile) {
    const char *threshold_name[] = {"XGEMM_MIN_INDIRECT_SIZE"};
    d->gemm_ready = false;
    clpar_gemm_kernels_reset(d);
    if (c->path == CLPAR_GEMM_CLPAR) {
        if (!clpar_values_ok(c->v))
            return clpar_error(CLPAR_EINVAL, "GEMM configuration: clpar parameters out of range");
        int set;
        TRY(clpar_gemm_kernels_build(d, c, &set));
        /* CLBlast still runs what clpar's kernels do not cover (both operands transposed)
         * and the shapes routed to it, as clpar_gemm_fallback says */
        clpar_gemm_config fallback;
        clpar_gemm_fallback(d, &fallback);
        if (fallback.path == CLPAR_GEMM_DIRECT) TRY(use_direct(d, fallback.v));
    } else if (c->path == CLPAR_GEMM_DIRECT) {
        TRY(use_direct(d, c->v));
    } else if (c->path == CLPAR_GEMM_INDIRECT) {
        size_t always = 1;
        TRY(clpar_gemm_override(d, "GemmRoutine", 1, threshold_name, &always));
        TRY(clpar_gemm_override(d, "Xgemm", 16, indirect_names, c->v));
    }
    d->gemm = *c;
    d->gemm_ready = true;
    if (!recompile) return CLPAR_OK;
    /* CLBlast keeps compiled kernels (of every device); the next call compiles anew */
    CLBlastStatusCode s = CLBlastClearCache();
    if (s != CLBlastSuccess) return clpar_error((clpar_status)s, "CLBlastClearCache failed");
    return CLPAR_OK;
}

clpar_status clpar_gemm_apply_tuning(clpar_device *d, const clpar_gemm_tuning *t, bool recompile) {
    if (t->nroutes < 0 || t->nroutes > CLPAR_GEMM_MAX_ROUTES)
        return clpar_error(CLPAR_EINVAL, "GEMM tuning: %d routes (at most %d)", t->nroutes,
                           CLPAR_GEMM_MAX_ROUTES);
    TRY(clpar_gemm_apply(d, &t->base, recompile));
    for (int i = 0; i < t->nroutes; i++) {
        const clpar_gemm_route *r = &t->routes[i];
        int set = -1;
        clpar_status st = CLPAR_OK;
        if (r->config.path == CLPAR_GEMM_CLPAR) {
            if (!clpar_values_ok(r->config.v))
                st = clpar_error(CLPAR_EINVAL, "GEMM route: clpar parameters out of range");
            else if (r->shape.trans_a && r->shape.trans_b)
                st = clpar_error(CLPAR_EINVAL, "GEMM route: clpar's kernels do not run TT");
            else
                st = clpar_gemm_kernels_build(d, &r->config, &set);
        }
        if (st != CLPAR_OK) {
            d->gemm_nroutes = 0;
            return st;
        }
        d->gemm_routes[d->gemm_nroutes] = *r;
        d->gemm_route_kernels[d->gemm_nroutes++] = set;
    }
    return CLPAR_OK;
}

/* ---- checking and timing ---- */

/* The transpose pairs the layers use (x W^T, dy W, dy^T x) on a small product whose sizes fit
 * no tile evenly, against the host. */
static clpar_status check(clpar_device *d) {
    enum { M = 37, N = 29, K = 23 };
    float a[M * K], b[K * N], c[M * N];
    for (int i = 0; i < M * K; i++)
        a[i] = (float)((i * 7 % 13) - 6) * 0.125f;
    for (int i = 0; i < K * N; i++)
        b[i] = (float)((i * 5 % 11) - 5) * 0.25f;
    cl_mem ma = NULL, mb = NULL, mc = NULL;
    clpar_status st = clpar_device_alloc(d, sizeof a, &ma);
    if (st == CLPAR_OK) st = clpar_device_alloc(d, sizeof b, &mb);
    if (st == CLPAR_OK) st = clpar_device_alloc(d, sizeof c, &mc);
    if (st == CLPAR_OK) st = clpar_device_write(d, ma, 0, sizeof a, a);
    if (st == CLPAR_OK) st = clpar_device_write(d, mb, 0, sizeof b, b);
    for (int t = 0; t < 3 && st == CLPAR_OK; t++) {
        /* t = 0: NN, 1: TN, 2: NT */
        int ta = t & 1, tb = t >> 1;
        /* A is (M, K) or stored (K, M); B is (K, N) or stored (N, K) */
        st = clpar_op_gemm(d, ta, tb, M, N, K, 1.0f, ma, 0, ta ? M : K, mb, 0, tb ? K : N, 0.0f, mc,
                           0, N, NULL);
        if (st == CLPAR_OK) st = clpar_device_read(d, c, mc, 0, sizeof c);
        double err = 0, ref2 = 0;
        for (int i = 0; st == CLPAR_OK && i < M; i++)
            for (int j = 0; j < N; j++) {
                double r = 0;
                for (int k = 0; k < K; k++)
                    r += (double)a[ta ? k * M + i : i * K + k] * b[tb ? j * K + k : k * N + j];
                err += (c[i * N + j] - r) * (c[i * N + j] - r);
                ref2 += r * r;
            }
        if (st == CLPAR_OK && !(sqrt(err) <= 1e-5 * sqrt(ref2) + 1e-6))
            st = clpar_error(CLPAR_EINVAL,
                             "GEMM (transposes %d, %d) is wrong with these parameters", ta, tb);
    }
    clpar_device_release(d, ma);
    clpar_device_release(d, mb);
    clpar_device_release(d, mc);
    return st;
}

clpar_status clpar_gemm_time(clpar_device *d, const clpar_gemm_shape *s, int n, double *seconds,
                             double *each) {
    TRY(check(d));
    size_t most_a = 1, most_b = 1, most_c = 1;
    for (int i = 0; i < n; i++) {
        if (s[i].m * s[i].k > most_a) most_a = s[i].m * s[i].k;
        if (s[i].k * s[i].n > most_b) most_b = s[i].k * s[i].n;
        if (s[i].m * s[i].n > most_c) most_c = s[i].m * s[i].n;
    }
    cl_mem a = NULL, b = NULL, c = NULL;
    float zero = 0.0f;
    clpar_status st = clpar_device_alloc(d, most_a * sizeof(float), &a);
    if (st == CLPAR_OK) st = clpar_device_alloc(d, most_b * sizeof(float), &b);
    if (st == CLPAR_OK) st = clpar_device_alloc(d, most_c * sizeof(float), &c);
    cl_mem bufs[3] = {a, b, c};
    size_t sizes[3] = {most_a, most_b, most_c};
    for (int i = 0; i < 3 && st == CLPAR_OK; i++) {
        cl_int err = clEnqueueFillBuffer(d->compute, bufs[i], &zero, sizeof zero, 0,
                                         sizes[i] * sizeof(float), 0, NULL, NULL);
        if (err != CL_SUCCESS) st = clpar_cl_error(err, "clEnqueueFillBuffer");
    }
    double best = INFINITY;
    for (int i = 0; each && i < n; i++)
        each[i] = INFINITY;
    for (int rep = 0; rep < 4 && st == CLPAR_OK; rep++) { /* the first also compiles */
        double total = 0;
        for (int i = 0; i < n && st == CLPAR_OK; i++) {
            double t0 = clpar_now_s();
            st = clpar_op_gemm(d, s[i].trans_a, s[i].trans_b, s[i].m, s[i].n, s[i].k, 1.0f, a, 0,
                               s[i].trans_a ? s[i].m : s[i].k, b, 0, s[i].trans_b ? s[i].k : s[i].n,
                               0.0f, c, 0, s[i].n, NULL);
            if (st == CLPAR_OK) st = clpar_device_finish(d);
            double t = clpar_now_s() - t0;
            total += t;
            if (rep > 0 && each && t < each[i]) each[i] = t;
        }
        if (rep > 0 && st == CLPAR_OK && total < best) best = total;
    }
    clpar_device_release(d, a);
    clpar_device_release(d, b);
    clpar_device_release(d, c);
    *seconds = best;
    return st;
}

/* ---- choosing ---- */

/* Per shape, the fastest allowed candidate when it beats the base by 5%, else the base. */
static void pick(const clpar_gemm_config *cand, int nc, int base, int fb, const char *dropped,
                 int ns, const double *times, int *best) {
    for (int s = 0; s < ns; s++) {
        best[s] = base;
        for (int c = 0; c < nc; c++)
            if ((c == fb || (cand[c].path == CLPAR_GEMM_CLPAR && !dropped[c])) &&
                times[(size_t)c * ns + s] < times[(size_t)best[s] * ns + s])
                best[s] = c;
        if (!(times[(size_t)best[s] * ns + s] < 0.95 * times[(size_t)base * ns + s]) ||
            same_config(&cand[best[s]], &cand[base]))
            best[s] = base;
    }
}

int clpar_gemm_choose(const clpar_gemm_config *cand, int nc, const clpar_gemm_config *fallback,
                      const clpar_gemm_shape *s, int ns, const double *times,
                      clpar_gemm_tuning *out, int *picks) {
    int base = -1;
    double least = INFINITY;
    for (int c = 0; c < nc; c++) {
        double total = 0;
        for (int i = 0; i < ns; i++)
            total += times[(size_t)c * ns + i];
        if (total < least) least = total, base = c;
    }
    if (base < 0) return -1;
    for (int i = 0; picks && i < ns; i++)
        picks[i] = base;
    memset(out, 0, sizeof *out);
    out->base = cand[base];
    /* CLBlast as a route: the base's fallback, measured as a candidate of its own */
    int fb = -1;
    for (int c = 0; c < nc && cand[base].path == CLPAR_GEMM_CLPAR; c++)
        if (same_config(&cand[c], fallback)) fb = c;
    int cap = CLPAR_GEMM_MAX_KERNELS - (cand[base].path == CLPAR_GEMM_CLPAR);
    char *dropped = calloc((size_t)nc, 1);
    int *best = malloc((size_t)(ns > 0 ? ns : 1) * sizeof *best);
    double *saved = malloc((size_t)nc * sizeof *saved);
    if (!dropped || !best || !saved) {
        free(dropped), free(best), free(saved);
        return base; /* the base alone is still a choice */
    }
    for (;;) { /* drop the parameter set that saves least until the rest fit */
        pick(cand, nc, base, fb, dropped, ns, times, best);
        int used = 0, worst = -1;
        for (int c = 0; c < nc; c++)
            saved[c] = 0;
        for (int i = 0; i < ns; i++)
            saved[best[i]] += times[(size_t)base * ns + i] - times[(size_t)best[i] * ns + i];
        for (int c = 0; c < nc; c++) {
            int routed = 0;
            for (int i = 0; i < ns && !routed; i++)
                routed = best[i] == c;
            if (!routed || c == base || c == fb) continue;
            used++;
            if (worst < 0 || saved[c] < saved[worst]) worst = c;
        }
        if (used <= cap) break;
        dropped[worst] = 1;
    }
    for (int i = 0; i < ns && out->nroutes < CLPAR_GEMM_MAX_ROUTES; i++) {
        int dup = 0;
        for (int r = 0; r < out->nroutes; r++)
            dup |= !memcmp(&out->routes[r].shape, &s[i], sizeof s[i]);
        if (best[i] != base && !dup) {
            out->routes[out->nroutes++] = (clpar_gemm_route){s[i], cand[best[i]]};
            if (picks) picks[i] = best[i];
        }
    }
    free(dropped), free(best), free(saved);
    return base;
}

/* ---- text form and the cache ---- */

static const char *const path_names[] = {"auto", "direct", "indirect", "clpar"};

CLPAR_ENUM_WORDS(clpar_gemm_path, clpar_gemm_path_name, clpar_gemm_path_parse, "gemm.path",
                 path_names)

void clpar_gemm_config_format(const clpar_gemm_config *c, char *buf, size_t n) {
    const char **names = value_names(c->path);
    int used = snprintf(buf, n, "%s", clpar_gemm_path_name(c->path));
    for (size_t i = 0; i < nvalues(c->path) && used > 0 && (size_t)used < n; i++)
        used += snprintf(buf + used, n - (size_t)used, " %s=%zu", names[i], c->v[i]);
}

/* Switches and paddings may be 0; sizes and widths divide, so they may not. */
static int may_be_zero(const char *name) {
    const char *z[] = {"PADA", "PADB", "GEMMK", "SA", "SB", "STRM", "STRN", "RD", "PH", "TB"};
    for (size_t i = 0; i < sizeof z / sizeof *z; i++)
        if (!strcmp(name, z[i])) return 1;
    return 0;
}

int clpar_gemm_config_parse(const char *s, clpar_gemm_config *c) {
    memset(c, 0, sizeof *c);
    char word[16];
    int off = 0;
    if (sscanf(s, "%15s%n", word, &off) != 1) return 0;
    int v = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(word, path_names[i])) v = i;
    if (v < 0) return 0;
    c->path = (clpar_gemm_path)v;
    const char **names = value_names(c->path);
    for (size_t i = 0; i < nvalues(c->path); i++) {
        char name[16];
        unsigned long v;
        int used = 0;
        /* clpar's TB came later: a line without it (an older cache's) means 0 */
        if (c->path == CLPAR_GEMM_CLPAR && i == 8 && (!s[off] || !strncmp(s + off, " |", 2))) break;
        if (sscanf(s + off, " %15[A-Z]=%lu%n", name, &v, &used) != 2 || strcmp(name, names[i]) ||
            (v == 0 && !may_be_zero(name)))
            return 0;
        c->v[i] = v;
        off += used;
    }
    while (s[off] == ' ')
        off++;
    return !s[off] && (c->path != CLPAR_GEMM_CLPAR || clpar_values_ok(c->v));
}

int clpar_gemm_tuning_fits(const clpar_gemm_tuning *t) {
    if (t->nroutes < 0 || t->nroutes > CLPAR_GEMM_MAX_ROUTES) return 0;
    clpar_gemm_config sets[CLPAR_GEMM_MAX_KERNELS];
    int nsets = 0;
    if (t->base.path == CLPAR_GEMM_CLPAR) sets[nsets++] = t->base;
    for (int i = 0; i < t->nroutes; i++) {
        if (t->routes[i].config.path != CLPAR_GEMM_CLPAR) continue;
        int known = 0;
        for (int j = 0; j < nsets; j++)
            known |= same_config(&sets[j], &t->routes[i].config);
        if (known) continue;
        if (nsets == CLPAR_GEMM_MAX_KERNELS) return 0;
        sets[nsets++] = t->routes[i].config;
    }
    return 1;
}

void clpar_gemm_tuning_format(const clpar_gemm_tuning *t, char *buf, size_t n) {
    clpar_gemm_config_format(&t->base, buf, n);
    for (int i = 0; i < t->nroutes; i++) {
        const clpar_gemm_route *r = &t->routes[i];
        size_t used = strlen(buf);
        if (used + 1 >= n) return;
        snprintf(buf + used, n - used, " | %c%c %zux%zux%zu ", r->shape.trans_a ? 'T' : 'N',
                 r->shape.trans_b ? 'T' : 'N', r->shape.m, r->shape.n, r->shape.k);
        used = strlen(buf);
        if (r->config.path == CLPAR_GEMM_CLPAR)
            clpar_gemm_config_format(&r->config, buf + used, n - used);
        else
            snprintf(buf + used, n - used, "clblast");
    }
}

/* One " | " part of a tuning line: a route (the base is parsed by the caller). */
static int route_parse(const char *s, clpar_gemm_route *r) {
    char ta, tb;
    unsigned long m, n, k;
    int off = 0;
    if (sscanf(s, " %c%c %lux%lux%lu %n", &ta, &tb, &m, &n, &k, &off) != 5 || !off ||
        (ta != 'N' && ta != 'T') || (tb != 'N' && tb != 'T') || !m || !n || !k)
        return 0;
    r->shape = (clpar_gemm_shape){ta == 'T', tb == 'T', m, n, k};
    if (!strcmp(s + off, "clblast") || !strcmp(s + off, "clblast ")) {
        r->config = (clpar_gemm_config){CLPAR_GEMM_AUTO, {0}};
        return 1;
    }
    return clpar_gemm_config_parse(s + off, &r->config) && r->config.path == CLPAR_GEMM_CLPAR &&
           !(ta == 'T' && tb == 'T');
}

int clpar_gemm_tuning_parse(const char *s, clpar_gemm_tuning *t) {
    memset(t, 0, sizeof *t);
    char part[512];
    for (int i = 0;; i++) {
        const char *bar = strstr(s, " | ");
        size_t len = bar ? (size_t)(bar - s) : strlen(s);
        if (len >= sizeof part) return 0;
        memcpy(part, s, len);
        part[len] = 0;
        if (i == 0 ? !clpar_gemm_config_parse(part, &t->base)
                   : t->nroutes == CLPAR_GEMM_MAX_ROUTES ||
                         !route_parse(part, &t->routes[t->nroutes++]))
            return 0;
        if (!bar) break;
        s = bar + 3;
    }
    return clpar_gemm_tuning_fits(t);
}

/* The device as the cache names it: platform, device and driver. */
static void device_key(const clpar_device_info *info, char *buf, size_t n) {
    snprintf(buf, n, "%s|%s|%s", info->platform_name, info->name, info->version);
    clpar_cache_key_clean(buf);
}

static int valid_tuning(const char *value, void *user) {
    return clpar_gemm_tuning_parse(value, (clpar_gemm_tuning *)user);
}

int clpar_gemm_cache_lookup(const clpar_runtime *rt, const clpar_device_info *info,
                            clpar_gemm_tuning *t) {
    char key[512], value[8192];
    device_key(info, key, sizeof key);
    if (!clpar_cache_lookup(rt, "gemm.tsv", key, valid_tuning, t, value, sizeof value)) return 0;
    return clpar_gemm_tuning_parse(value, t);
}

clpar_status clpar_gemm_cache_store(const clpar_runtime *rt, const clpar_device_info *info,
                                    const clpar_gemm_tuning *t) {
    char key[512], text[8192];
    device_key(info, key, sizeof key);
    clpar_gemm_tuning_format(t, text, sizeof text);
    return clpar_cache_append(rt, "gemm.tsv", key, text);
}
