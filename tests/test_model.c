/* The Linear module against a double-precision reference, whole and under every
 * tensor-parallel split, and a finite-difference check of every gradient of a whole MLP
 * with both losses. */
#include "common.h"

#include <math.h>
#include <string.h>

Test(linear, forward_backward_against_reference) {
    clpar_device *d = t_device(0);
    enum { R = 13, IN = 21, OUT = 9, OFF = 5 };
    float x[R * IN], w[OFF + OUT * IN + OUT], dy[R * OUT], g0[OFF + OUT * IN + OUT];
    t_fill(x, R * IN, 1, -1, 1);
    t_fill(w, OFF + OUT * IN + OUT, 2, -0.5, 0.5);
    t_fill(dy, R * OUT, 3, -1, 1);
    t_fill(g0, OFF + OUT * IN + OUT, 4, -1, 1);
    const size_t np = OFF + OUT * IN + OUT, woff = OFF, boff = OFF + OUT * IN;
    cl_mem mx = t_upload(d, x, R * IN), mw = t_upload(d, w, np), mdy = t_upload(d, dy, R * OUT);
    cl_mem mg = t_upload(d, g0, np), my, mdx;
    T_OK(clpar_device_alloc(d, R * OUT * 4, &my));
    T_OK(clpar_device_alloc(d, R * IN * 4, &mdx));
    clpar_module *lin;
    T_OK(clpar_linear_init("0", IN, OUT, CLPAR_TP_NONE, 0, 1, NULL, woff, 0, &lin));
    cr_expect_eq(lin->param_count, OUT * IN + OUT);
    clpar_module_env env = {d, mw, mg, NULL, NULL};
    /* beta = 1: gradients accumulate onto g0 */
    clpar_module_io io = {.rows = R, .x = mx, .y = my, .dy = mdy, .dx = mdx, .beta = 1.0f};
    T_OK(clpar_module_forward(lin, &env, &io));
    T_OK(clpar_module_backward_input(lin, &env, &io));
    T_OK(clpar_module_backward_weights(lin, &env, &io));
    clpar_module_free(lin);
    float *y = t_download(d, my, R * OUT), *dx = t_download(d, mdx, R * IN),
          *g = t_download(d, mg, np);
    double ry[R * OUT], rdx[R * IN], rg[OFF + OUT * IN + OUT];
    for (int r = 0; r < R; r++)
        for (int o = 0; o < OUT; o++) {
            double s = w[boff + o];
            for (int i = 0; i < IN; i++)
                s += (double)x[r * IN + i] * w[woff + o * IN + i];
            ry[r * OUT + o] = s;
        }
    for (int r = 0; r < R; r++)
        for (int i = 0; i < IN; i++) {
            double s = 0;
            for (int o = 0; o < OUT; o++)
                s += (double)dy[r * OUT + o] * w[woff + o * IN + i];
            rdx[r * IN + i] = s;
        }
    for (size_t k = 0; k < np; k++)
        rg[k] = g0[k];
    for (int o = 0; o < OUT; o++) {
        for (int i = 0; i < IN; i++)
            for (int r = 0; r < R; r++)
                rg[woff + o * IN + i] += (double)dy[r * OUT + o] * x[r * IN + i];
        for (int r = 0; r < R; r++)
            rg[boff + o] += dy[r * OUT + o];
    }
    cr_expect_lt(t_rel_l2_d(y, ry, R * OUT), 1e-6);
    cr_expect_lt(t_rel_l2_d(dx, rdx, R * IN), 1e-6);
    cr_expect_lt(t_rel_l2_d(g, rg, np), 1e-6);
    for (int k = 0; k < OFF; k++)
        cr_expect_eq(g[k], g0[k], "wrote before its offset");
    free(y);
    free(dx);
    free(g);
    clpar_device_release(d, mx);
    clpar_device_release(d, mw);
    clpar_device_release(d, mdy);
    clpar_device_release(d, mg);
    clpar_device_release(d, my);
    clpar_device_release(d, mdx);
}

/* A tensor-parallel shard's collectives run by the test itself: it keeps the shard's
 * partial sums (all-reduce) and slice (all-gather) for the test to combine on the host. */
typedef struct {
    clpar_device *d;
    float *reduced; /* what the last all-reduce was given, rows x width */
    size_t count;
    float *gathered;
    size_t first, len, width, rows;
} fake_comm;

static clpar_status fake_all_reduce(void *ctx, cl_mem buf, size_t count) {
    fake_comm *f = ctx;
    free(f->reduced);
    f->reduced = t_download(f->d, buf, count);
    f->count = count;
    return CLPAR_OK;
}

static clpar_status fake_all_gather(void *ctx, cl_mem part, size_t rows, size_t first, size_t len,
                                    size_t width, cl_mem out) {
    fake_comm *f = ctx;
    free(f->gathered);
    f->gathered = t_download(f->d, part, rows * len);
    f->first = first, f->len = len, f->width = width, f->rows = rows;
    return CLPAR_OK;
}

/* Each split of a Linear layer over three shards: the shards' parameter blocks tile the
 * full tensors, and their outputs, combined as the split's collective combines them, are
 * the whole layer's output. */
Test(linear, every_tensor_parallel_split_combines_to_the_whole_layer) {
    clpar_device *d = t_device(0);
    enum { R = 4, IN = 7, OUT = 5, S = 3 };
    float x[R * IN], full[OUT * IN + OUT];
    t_fill(x, R * IN, 5, -1, 1);
    t_fill(full, OUT * IN + OUT, 6, -1, 1);
    double ref[R * OUT];
    for (int r = 0; r < R; r++)
        for (int o = 0; o < OUT; o++) {
            double v = full[OUT * IN + o];
            for (int i = 0; i < IN; i++)
                v += (double)x[r * IN + i] * full[o * IN + i];
            ref[r * OUT + o] = v;
        }
    clpar_tp_split splits[3] = {CLPAR_TP_COLUMN, CLPAR_TP_ROW, CLPAR_TP_GATHERED};
    for (int k = 0; k < 3; k++) {
        float y[R * OUT] = {0}, covered[OUT * IN + OUT] = {0};
        for (int t = 0; t < S; t++) {
            clpar_module *lin;
            T_OK(clpar_linear_init("0", IN, OUT, splits[k], t, S, NULL, 0, 0, &lin));
            float local[OUT * IN + OUT], ones[OUT * IN + OUT];
            clpar_module_map_params(lin, full, local, CLPAR_FULL_TO_LOCAL);
            for (int i = 0; i < OUT * IN + OUT; i++)
                ones[i] = 1;
            clpar_module_map_params(lin, covered, ones, CLPAR_LOCAL_TO_FULL);
            fake_comm f = {.d = d};
            clpar_tp_comm comm = {t, S, fake_all_reduce, fake_all_gather, &f};
            cl_mem mx = splits[k] == CLPAR_TP_ROW ? NULL : t_upload(d, x, R * IN), my, scratch;
            if (!mx) { /* a row shard reads its columns of x */
                float part[R * IN];
                for (int r = 0; r < R; r++)
                    for (size_t i = 0; i < lin->in_width; i++)
                        part[r * lin->in_width + i] = x[r * IN + lin->params[0].col0 + i];
                mx = t_upload(d, part, R * lin->in_width);
            }
            cl_mem mp = t_upload(d, local, lin->param_count);
            T_OK(clpar_device_alloc(d, R * OUT * 4, &my));
            T_OK(clpar_device_alloc(d, (clpar_module_scratch_floats(lin, R) + 1) * 4, &scratch));
            clpar_module_env env = {d, mp, NULL, &comm, scratch};
            clpar_module_io io = {.rows = R, .x = mx, .y = my};
            T_OK(clpar_module_forward(lin, &env, &io));
            T_OK(clpar_device_finish(d));
            const clpar_param *w = &lin->params[0];
            if (splits[k] == CLPAR_TP_ROW) { /* partial sums add up */
                cr_assert_eq(f.count, (size_t)R * OUT);
                for (int i = 0; i < R * OUT; i++)
                    y[i] += f.reduced[i];
            } else if (splits[k] == CLPAR_TP_GATHERED) { /* slices land in their columns */
                cr_assert_eq(f.width, (size_t)OUT);
                for (int r = 0; r < R; r++)
                    for (size_t c = 0; c < f.len; c++)
                        y[r * OUT + f.first + c] = f.gathered[r * f.len + c];
            } else { /* the output stays split: rows [row0, row0 + rows) of W */
                float *part = t_download(d, my, R * lin->out_width);
                for (int r = 0; r < R; r++)
                    for (size_t c = 0; c < lin->out_width; c++)
                        y[r * OUT + w->row0 + c] = part[r * lin->out_width + c];
                free(part);
            }
            free(f.reduced);
            free(f.gathered);
            clpar_device_release(d, mx);
            clpar_device_release(d, mp);
            clpar_device_release(d, my);
            clpar_device_release(d, scratch);
            clpar_module_free(lin);
        }
        for (int i = 0; i < OUT * IN + OUT; i++)
            cr_expect_eq(covered[i], 1.0f, "split %d leaves parameter float %d unheld", k, i);
        cr_expect_lt(t_rel_l2_d(y, ref, R * OUT), 1e-6, "split %d", k);
    }
    clpar_module *lin;
    cr_expect_eq(clpar_linear_init("0", IN, OUT, CLPAR_TP_ROW, 0, 8, NULL, 0, 0, &lin),
                 CLPAR_EINVAL, "8 shards of 7 input features");
    cr_expect_null(lin);
}

/* Mean loss of the MLP in double on the host. */
static double host_loss(const clpar_mlp_shape *s, const double *p, const float *x,
                        const int *labels, const float *t, int rows, clpar_loss_kind kind) {
    double act[64], next[64], total = 0;
    for (int r = 0; r < rows; r++) {
        for (size_t i = 0; i < s->sizes[0]; i++)
            act[i] = x[r * s->sizes[0] + i];
        for (int l = 0; l < s->nlayers; l++) {
            size_t in = s->sizes[l], out = s->sizes[l + 1];
            const double *w = p + clpar_mlp_shape_weight_offset(s, l);
            const double *b = p + clpar_mlp_shape_bias_offset(s, l);
            for (size_t o = 0; o < out; o++) {
                double v = b[o];
                for (size_t i = 0; i < in; i++)
                    v += w[o * in + i] * act[i];
                next[o] = (l + 1 < s->nlayers && v < 0) ? 0 : v;
            }
            memcpy(act, next, out * sizeof(double));
        }
        size_t C = s->sizes[s->nlayers];
        if (kind == CLPAR_LOSS_XENT) {
            double m = act[0], z = 0;
            for (size_t c = 1; c < C; c++)
                m = fmax(m, act[c]);
            for (size_t c = 0; c < C; c++)
                z += exp(act[c] - m);
            total += m + log(z) - act[labels[r]];
        } else {
            for (size_t c = 0; c < C; c++)
                total += pow(act[c] - t[r * C + c], 2) / (double)C;
        }
    }
    return total / rows;
}

static void gradcheck(clpar_loss_kind kind) {
    clpar_mlp_shape s;
    T_OK(clpar_mlp_shape_parse(&s, "5,8,6,3"));
    enum { R = 7 };
    size_t n = clpar_mlp_shape_param_count(&s);
    float *p = malloc(n * 4), *g = malloc(n * 4), x[R * 5], t[R * 3];
    int labels[R] = {0, 2, 1, 1, 0, 2, 2};
    clpar_mlp_init_params(p, &s, 42);
    t_fill(x, R * 5, 43, -2, 2);
    t_fill(t, R * 3, 44, -1, 1);
    clpar_mlp *m;
    T_OK(clpar_mlp_init(t_device(0), &s, R, &m));
    T_OK(clpar_mlp_set_params(m, p));
    T_OK(clpar_mlp_upload(m, x, labels, t, R));
    T_OK(clpar_mlp_forward(m, R));
    T_OK(clpar_mlp_loss(m, kind, R, R));
    T_OK(clpar_mlp_backward(m, R, 0.0f, NULL, NULL));
    T_OK(clpar_mlp_get_grads(m, g));
    double *pd = malloc(n * sizeof(double)), *num = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++)
        pd[i] = p[i];
    const double h = 1e-6;
    for (size_t i = 0; i < n; i++) {
        double keep = pd[i];
        pd[i] = keep + h;
        double up = host_loss(&s, pd, x, labels, t, R, kind);
        pd[i] = keep - h;
        double down = host_loss(&s, pd, x, labels, t, R, kind);
        pd[i] = keep;
        num[i] = (up - down) / (2 * h);
    }
    double e = t_rel_l2_d(g, num, n);
    cr_expect_lt(e, 1e-4, "gradient differs from finite differences by %g", e);
    for (int l = 0; l < s.nlayers; l++) {
        size_t off = clpar_mlp_shape_weight_offset(&s, l), cnt = clpar_mlp_shape_layer_count(&s, l);
        double el = t_rel_l2_d(g + off, num + off, cnt);
        cr_expect_lt(el, 1e-4, "layer %d gradient differs by %g", l, el);
    }
    free(p);
    free(g);
    free(pd);
    free(num);
    clpar_mlp_free(m);
}

Test(gradcheck, mlp_cross_entropy) {
    gradcheck(CLPAR_LOSS_XENT);
}

Test(gradcheck, mlp_mse) {
    gradcheck(CLPAR_LOSS_MSE);
}

/* SGD with nesterov and dampening, against the PyTorch formulas in double. */
Test(optim, sgd_nesterov_dampening_against_reference) {
    clpar_device *d = t_device(0);
    enum { N = 77 };
    float p[N], g[N];
    t_fill(p, N, 5, -1, 1);
    double rp[N], buf[N];
    for (int i = 0; i < N; i++)
        rp[i] = p[i];
    cl_mem mp = t_upload(d, p, N), mg;
    T_OK(clpar_device_alloc(d, N * 4, &mg));
    clpar_optim_config c = clpar_optim_defaults(CLPAR_OPTIM_SGD);
    c.lr = 0.05f;
    c.momentum = 0.8f;
    c.dampening = 0.3f;
    c.nesterov = 1;
    c.weight_decay = 0.02f;
    clpar_optim *o;
    T_OK(clpar_optim_init(d, &c, N, &o));
    for (int s = 0; s < 4; s++) {
        t_fill(g, N, 100 + s, -1, 1);
        T_OK(clpar_device_write(d, mg, 0, sizeof g, g));
        T_OK(clpar_optim_step(o, mp, mg, NULL));
        for (int i = 0; i < N; i++) {
            double dp = g[i] + (double)c.weight_decay * rp[i];
            buf[i] = s == 0 ? dp : c.momentum * buf[i] + (1 - (double)c.dampening) * dp;
            dp = dp + c.momentum * buf[i];
            rp[i] -= c.lr * dp;
        }
    }
    float *got = t_download(d, mp, N);
    cr_expect_lt(t_rel_l2_d(got, rp, N), 1e-6);
    cr_expect_eq(clpar_optim_steps_taken(o), 4);
    free(got);
    clpar_optim_free(o);
    clpar_device_release(d, mp);
    clpar_device_release(d, mg);
}

Test(model, init_follows_nn_linear_bounds_and_seed) {
    clpar_mlp_shape s;
    T_OK(clpar_mlp_shape_parse(&s, "100,30,4"));
    size_t n = clpar_mlp_shape_param_count(&s);
    cr_assert_eq(n, 100 * 30 + 30 + 30 * 4 + 4);
    float *a = malloc(n * 4), *b = malloc(n * 4), *c = malloc(n * 4);
    clpar_mlp_init_params(a, &s, 7);
    clpar_mlp_init_params(b, &s, 7);
    clpar_mlp_init_params(c, &s, 8);
    cr_assert(!memcmp(a, b, n * 4), "same seed, different weights");
    cr_assert(memcmp(a, c, n * 4), "different seeds, same weights");
    double max0 = 0, max1 = 0;
    for (size_t i = 0; i < clpar_mlp_shape_layer_count(&s, 0); i++)
        max0 = fmax(max0, fabs(a[i]));
    for (size_t i = clpar_mlp_shape_weight_offset(&s, 1); i < n; i++)
        max1 = fmax(max1, fabs(a[i]));
    cr_expect(max0 <= 0.1 && max0 > 0.09, "layer 0 bound 1/sqrt(100), max %g", max0);
    cr_expect(max1 <= 1 / sqrt(30.0) && max1 > 0.8 / sqrt(30.0), "layer 1 max %g", max1);
    free(a);
    free(b);
    free(c);
}

Test(model, size_list_parsing) {
    clpar_mlp_shape s;
    T_OK(clpar_mlp_shape_parse(&s, "784,256,128,10"));
    cr_assert_eq(s.nlayers, 3);
    cr_assert_eq(s.sizes[3], 10);
    const char *bad[] = {"", "784", "784,,10", "784,0,10", "784,-5,10", "a,b", "784,10,", "10,5x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_eq(clpar_mlp_shape_parse(&s, bad[i]), CLPAR_EINVAL, "'%s' accepted", bad[i]);
        cr_expect(strlen(clpar_last_error()) > 0);
    }
}

/* The products --tune measures are those the layers run (linear.c: x W^T, dy W except for an
 * MLP's first layer, dy^T x; gpt_head.c: x wte^T, dy wte, dy^T x), each shape once. */
/* The linear maps a step runs, named for a GPT (with their calls per step), by layer for an
 * MLP; their three products as the layers call clpar_op_gemm. */
Test(model, linears_name_a_steps_linear_maps) {
    clpar_model_spec m;
    clpar_model_linear l[8];
    T_OK(clpar_model_parse("784,256,10", &m));
    cr_assert_eq(clpar_model_linears(&m, 128, l, 8), 2);
    cr_expect(l[0].name == NULL && l[0].layer == 0 && l[0].rows == 128 && l[0].in == 784 &&
              l[0].out == 256 && l[0].per_step == 1 && !l[0].with_dx);
    cr_expect(l[1].layer == 1 && l[1].in == 256 && l[1].out == 10 && l[1].with_dx);
    clpar_gemm_shape f = clpar_model_linear_product(&l[1], 0),
                     x = clpar_model_linear_product(&l[1], 1),
                     w = clpar_model_linear_product(&l[1], 2);
    cr_expect(f.trans_a == CLPAR_NO_TRANS && f.trans_b == CLPAR_TRANS && f.m == 128 && f.n == 10 &&
                  f.k == 256,
              "forward: x (128, 256) W^T");
    cr_expect(x.trans_a == CLPAR_NO_TRANS && x.trans_b == CLPAR_NO_TRANS && x.m == 128 &&
                  x.n == 256 && x.k == 10,
              "input gradient: dy (128, 10) W");
    cr_expect(w.trans_a == CLPAR_TRANS && w.trans_b == CLPAR_NO_TRANS && w.m == 10 && w.n == 256 &&
                  w.k == 128,
              "weight gradient: dy^T x");
    T_OK(clpar_model_parse("gpt:layers=3,heads=2,embd=8,ctx=4,vocab=50", &m));
    const char *names[5] = {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj",
                            "head (x wte^T)"};
    const size_t io[5][2] = {{8, 24}, {8, 8}, {8, 32}, {32, 8}, {8, 50}};
    cr_assert_eq(clpar_model_linears(&m, 2, l, 8), 5);
    for (int i = 0; i < 5; i++) {
        cr_expect_str_eq(l[i].name, names[i]);
        cr_expect(l[i].layer == -1 && l[i].rows == 8 && l[i].in == io[i][0] &&
                      l[i].out == io[i][1] && l[i].with_dx,
                  "%s", names[i]);
        cr_expect_eq(l[i].per_step, i < 4 ? 3 : 1, "%s: once per block, the head once", names[i]);
    }
    cr_expect_eq(clpar_model_linears(&m, 2, l, 1), 5, "the count, past cap");
    cr_expect_str_eq(l[1].name, "attn.c_proj", "nothing written past cap");
}

Test(model, gemm_shapes_are_the_layers_products) {
    clpar_model_spec m;
    T_OK(clpar_model_parse("784,256,10", &m));
    clpar_gemm_shape s[32];
    const clpar_gemm_shape mlp[5] = {{0, 1, 128, 256, 784},
                                     {1, 0, 256, 784, 128},
                                     {0, 1, 128, 10, 256},
                                     {0, 0, 128, 256, 10},
                                     {1, 0, 10, 256, 128}};
    cr_assert_eq(clpar_model_gemm_shapes(&m, 128, s, 0, 32), 5);
    cr_expect(!memcmp(s, mlp, sizeof mlp));
    /* another batch's products after them, and a batch again adds nothing */
    cr_assert_eq(clpar_model_gemm_shapes(&m, 64, s, 5, 32), 10);
    cr_expect(!memcmp(s, mlp, sizeof mlp), "the first batch's stay");
    cr_expect(s[5].m == 64 && s[5].n == 256 && s[5].k == 784);
    cr_expect_eq(clpar_model_gemm_shapes(&m, 128, s, 10, 32), 10);
    T_OK(clpar_model_parse("gpt:layers=2,heads=2,embd=8,ctx=4", &m));
    /* 12 rows (3 sequences of 4); c_attn, attn.c_proj, c_fc, mlp.c_proj, the head (vocab 256) */
    const size_t lin[5][2] = {{8, 24}, {8, 8}, {8, 32}, {32, 8}, {8, 256}};
    cr_assert_eq(clpar_model_gemm_shapes(&m, 3, s, 0, 32), 15);
    for (int l = 0; l < 5; l++) {
        size_t in = lin[l][0], out = lin[l][1];
        const clpar_gemm_shape want[3] = {
            {0, 1, 12, out, in}, {0, 0, 12, in, out}, {1, 0, out, in, 12}};
        cr_expect(!memcmp(&s[3 * l], want, sizeof want), "linear %d", l);
    }
    cr_expect_eq(clpar_model_gemm_shapes(&m, 3, s, 0, 2), 15, "the count, past cap");
    /* equal shapes count once: embd 256 makes attn.c_proj's and the head's the same */
    T_OK(clpar_model_parse("gpt:layers=1,heads=4,embd=256,ctx=128", &m));
    cr_expect_eq(clpar_model_gemm_shapes(&m, 8, s, 0, 32), 12);
}
