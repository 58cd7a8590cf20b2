/* Files and devices given by the user: safetensors round trip and every malformed file,
 * Fashion-MNIST IDX files (good, gzip'd, plain, and broken), device specs, allocations the
 * device cannot hold. Each error must name the problem. */
#include "common.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static unsigned char *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    cr_assert(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n + 1);
    cr_assert_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

Test(safetensors, model_round_trip) {
    clpar_mlp_shape s;
    T_OK(clpar_mlp_shape_parse(&s, "7,5,3"));
    size_t n = clpar_mlp_shape_param_count(&s);
    float *p = malloc(n * 4), *q = malloc(n * 4);
    clpar_mlp_init_params(p, &s, 3);
    const char *path = t_tmp("rt.safetensors");
    T_OK(clpar_model_save(path, &s, p));
    T_OK(clpar_model_load(path, &s, q));
    cr_assert(!memcmp(p, q, n * 4));
    clpar_st *st;
    T_OK(clpar_st_read(path, &st));
    cr_assert_eq(clpar_st_count(st), 4);
    const clpar_st_tensor *w2 = clpar_st_find(st, "2.weight");
    cr_assert(w2 && w2->ndim == 2 && w2->shape[0] == 3 && w2->shape[1] == 5);
    cr_assert_str_eq(w2->dtype, "F32");
    cr_assert_str_eq(clpar_st_metadata(st, "clpar.model"), "7,5,3");
    clpar_st_free(st);
    /* the header is padded so the data is 8-byte aligned, as the reference writer does */
    size_t len;
    unsigned char *b = read_bytes(path, &len);
    uint64_t h = 0;
    memcpy(&h, b, 8);
    cr_assert_eq(h % 8, 0);
    cr_assert_eq(len, 8 + h + n * 4);
    free(b);
    unlink(path);
    free(p);
    free(q);
}

/* Writes a file with the given header text and data size, then expects CLPAR_EFORMAT. */
static void expect_bad(const char *header, size_t data_bytes, const char *why) {
    size_t hl = strlen(header);
    unsigned char *buf = calloc(1, 8 + hl + data_bytes);
    uint64_t h = hl;
    memcpy(buf, &h, 8);
    memcpy(buf + 8, header, hl);
    const char *path = t_tmp("bad.safetensors");
    write_bytes(path, buf, 8 + hl + data_bytes);
    clpar_st *st = NULL;
    clpar_status rc = clpar_st_read(path, &st);
    cr_expect_eq(rc, CLPAR_EFORMAT, "%s: accepted (status %d)", why, rc);
    cr_expect(strstr(clpar_last_error(), path) != NULL, "%s: message '%s' lacks the path", why,
              clpar_last_error());
    cr_expect_null(st);
    unlink(path);
    free(buf);
}

Test(safetensors, rejects_malformed_files) {
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    expect_bad(ok, 4, "truncated data");
    expect_bad(ok, 12, "trailing bytes after the data");
    expect_bad("[1,2]", 0, "header not an object");
    expect_bad(" {\"a\":1}", 0, "header not starting with {");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", 8, "broken JSON");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
               "shape does not match offsets");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
               "gap at the start");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8,
               "end before begin");
    expect_bad("{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
               "unknown dtype");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
               "\"data_offsets\":[0,8]}}",
               8, "overflowing shape");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
               12, "overlapping tensors");
    expect_bad("{\"__metadata__\":{\"k\":3}}", 0, "non-string metadata");
    expect_bad("{\"__metadata__\":{\"a\":\"1\"},\"__metadata__\":{\"b\":\"2\"}}", 0,
               "__metadata__ twice");
    /* header size larger than the file, and larger than the 100 MB limit */
    unsigned char small[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
    const char *path = t_tmp("huge.safetensors");
    write_bytes(path, small, 10);
    clpar_st *st;
    cr_expect_eq(clpar_st_read(path, &st), CLPAR_EFORMAT);
    small[4] = 1;
    write_bytes(path, small, 10);
    cr_expect_eq(clpar_st_read(path, &st), CLPAR_EFORMAT);
    write_bytes(path, small, 5);
    cr_expect_eq(clpar_st_read(path, &st), CLPAR_EFORMAT);
    unlink(path);
    cr_expect_eq(clpar_st_read(t_tmp("does-not-exist"), &st), CLPAR_EIO);
}

Test(safetensors, model_shape_mismatch_is_named) {
    clpar_mlp_shape s, other;
    T_OK(clpar_mlp_shape_parse(&s, "7,5,3"));
    T_OK(clpar_mlp_shape_parse(&other, "7,6,3"));
    float p[64];
    clpar_mlp_init_params(p, &s, 1);
    const char *path = t_tmp("shape.safetensors");
    T_OK(clpar_model_save(path, &s, p));
    float q[128];
    cr_expect_eq(clpar_model_load(path, &other, q), CLPAR_ESHAPE);
    cr_expect(strstr(clpar_last_error(), "0.weight"), "message: %s", clpar_last_error());
    T_OK(clpar_mlp_shape_parse(&other, "7,5,3,2"));
    cr_expect_eq(clpar_model_load(path, &other, q), CLPAR_ESHAPE);
    unlink(path);
}

Test(safetensors, failed_write_leaves_existing_file) {
    clpar_mlp_shape s;
    T_OK(clpar_mlp_shape_parse(&s, "3,2"));
    float p[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const char *path = t_tmp("keep.safetensors");
    T_OK(clpar_model_save(path, &s, p));
    cr_expect_neq(clpar_model_save("/nonexistent-dir/x.safetensors", &s, p), CLPAR_OK);
    float q[8];
    T_OK(clpar_model_load(path, &s, q));
    cr_expect(!memcmp(p, q, sizeof p));
    unlink(path);
}

/* ---- Fashion-MNIST IDX files ---- */

static void be32(unsigned char *p, uint32_t v) {
    p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v;
}

/* Writes a small IDX data set (n images) into dir, gzip'd or plain, with optional faults. */
static void write_idx(const char *dir, const char *split, uint32_t n, int gz, uint32_t magic,
                      uint32_t rows, uint32_t label_count, size_t cut) {
    size_t ilen = 16 + (size_t)n * rows * 28, llen = 8 + label_count;
    unsigned char *img = calloc(1, ilen), *lab = calloc(1, llen);
    be32(img, magic);
    be32(img + 4, n);
    be32(img + 8, rows);
    be32(img + 12, 28);
    for (size_t i = 16; i < ilen; i++)
        img[i] = (unsigned char)(i * 7);
    be32(lab, 0x801);
    be32(lab + 4, label_count);
    for (size_t i = 8; i < llen; i++)
        lab[i] = (unsigned char)(i % 10);
    char path[1024];
    const char *kinds[2] = {"images-idx3-ubyte", "labels-idx1-ubyte"};
    unsigned char *data[2] = {img, lab};
    size_t lens[2] = {ilen - cut, llen};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s-%s%s", dir, split, kinds[k], gz ? ".gz" : "");
        if (gz) {
            gzFile f = gzopen(path, "wb");
            gzwrite(f, data[k], (unsigned)lens[k]);
            gzclose(f);
        } else {
            write_bytes(path, data[k], lens[k]);
        }
    }
    free(img);
    free(lab);
}

static const char *fresh_dir(const char *name) {
    const char *dir = t_tmp(name);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    cr_assert_eq(system(cmd), 0);
    return dir;
}

static void remove_dir(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0, "%s", cmd);
}

Test(data, idx_gzip_and_plain_load) {
    const char *dir = fresh_dir("idx-ok");
    write_idx(dir, "train", 5, 1, 0x803, 28, 5, 0);
    write_idx(dir, "t10k", 3, 0, 0x803, 28, 3, 0);
    clpar_dataset tr, te;
    T_OK(clpar_dataset_load_fashion_mnist(dir, &tr, &te));
    cr_assert_eq(tr.n, 5);
    cr_assert_eq(te.n, 3);
    cr_assert_eq(tr.in, 784);
    cr_assert_float_eq(tr.x[0], (unsigned char)(16 * 7) / 255.0f, 1e-7);
    cr_assert_eq(tr.labels[2], 0);
    clpar_dataset_free(&tr);
    clpar_dataset_free(&te);
    remove_dir(dir);
}

static void expect_bad_idx(const char *dir, const char *needle) {
    clpar_dataset tr, te;
    clpar_status rc = clpar_dataset_load_fashion_mnist(dir, &tr, &te);
    cr_expect(rc == CLPAR_EFORMAT || rc == CLPAR_EIO, "accepted a broken data set in %s", dir);
    cr_expect(strstr(clpar_last_error(), needle), "message '%s' lacks '%s'", clpar_last_error(),
              needle);
    remove_dir(dir);
}

Test(data, idx_faults_are_named) {
    const char *dir = fresh_dir("idx-magic");
    write_idx(dir, "train", 5, 1, 0x1234, 28, 5, 0);
    write_idx(dir, "t10k", 3, 1, 0x803, 28, 3, 0);
    expect_bad_idx(dir, "bad magic");
    dir = fresh_dir("idx-count");
    write_idx(dir, "train", 5, 1, 0x803, 28, 4, 0);
    write_idx(dir, "t10k", 3, 1, 0x803, 28, 3, 0);
    expect_bad_idx(dir, "labels");
    dir = fresh_dir("idx-size");
    write_idx(dir, "train", 5, 0, 0x803, 27, 5, 0);
    write_idx(dir, "t10k", 3, 0, 0x803, 28, 3, 0);
    expect_bad_idx(dir, "28x28");
    dir = fresh_dir("idx-trunc");
    write_idx(dir, "train", 5, 1, 0x803, 28, 5, 100);
    write_idx(dir, "t10k", 3, 1, 0x803, 28, 3, 0);
    expect_bad_idx(dir, "train-images");
    dir = fresh_dir("idx-missing");
    write_idx(dir, "train", 5, 1, 0x803, 28, 5, 0);
    expect_bad_idx(dir, "t10k-images");
    /* a gzip stream cut short */
    dir = fresh_dir("idx-cutgz");
    write_idx(dir, "train", 50, 1, 0x803, 28, 50, 0);
    write_idx(dir, "t10k", 3, 1, 0x803, 28, 3, 0);
    char path[1024];
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    size_t n;
    unsigned char *b = read_bytes(path, &n);
    write_bytes(path, b, n / 2);
    free(b);
    expect_bad_idx(dir, "train-images");
}

Test(data, order_is_sequential_or_seeded) {
    size_t a[100], b[100], c[100];
    clpar_dataset_order(a, 100, 0, 5, 3);
    for (size_t i = 0; i < 100; i++)
        cr_assert_eq(a[i], i);
    clpar_dataset_order(a, 100, 1, 5, 1);
    clpar_dataset_order(b, 100, 1, 5, 1);
    clpar_dataset_order(c, 100, 1, 5, 2);
    cr_assert(!memcmp(a, b, sizeof a), "same seed and epoch, different order");
    cr_assert(memcmp(a, c, sizeof a), "epochs share an order");
    int seen[100] = {0};
    for (size_t i = 0; i < 100; i++)
        seen[a[i]]++;
    for (size_t i = 0; i < 100; i++)
        cr_assert_eq(seen[i], 1, "not a permutation");
}

Test(data, synthetic_is_seeded) {
    clpar_dataset a, at, b, bt;
    T_OK(clpar_dataset_synthetic(3, 50, 10, &a, &at));
    T_OK(clpar_dataset_synthetic(3, 50, 10, &b, &bt));
    cr_assert_eq(a.in, 10);
    cr_assert_eq(a.out, 5);
    cr_assert(!memcmp(a.x, b.x, 50 * 10 * 4));
    cr_assert(!memcmp(a.targets, b.targets, 50 * 5 * 4));
    clpar_dataset_free(&a);
    clpar_dataset_free(&at);
    clpar_dataset_free(&b);
    clpar_dataset_free(&bt);
}

/* ---- devices ---- */

Test(devices, specs) {
    clpar_runtime *rt = t_runtime();
    int idx[16], n;
    T_OK(clpar_runtime_parse_spec(rt, "0,0,0", idx, 16, &n));
    cr_assert_eq(n, 3);
    cr_assert(idx[0] == 0 && idx[2] == 0);
    T_OK(clpar_runtime_parse_spec(rt, "all", idx, 16, &n));
    cr_assert_eq(n, clpar_runtime_device_count(rt));
    /* a type selects exactly the devices of that type, and none is an error (CI has PoCL's
     * CPU devices only; a GPU machine may have no CPU device) */
    const char *types[2] = {"cpu", "gpu"};
    const cl_device_type bits[2] = {CL_DEVICE_TYPE_CPU, CL_DEVICE_TYPE_GPU};
    for (int t = 0; t < 2; t++) {
        int want = 0;
        for (int i = 0; i < clpar_runtime_device_count(rt); i++)
            want += (clpar_runtime_device_info(rt, i)->type & bits[t]) != 0;
        clpar_status st = clpar_runtime_parse_spec(rt, types[t], idx, 16, &n);
        if (want == 0) {
            cr_expect_eq(st, CLPAR_ENODEV, "'%s' with no such device", types[t]);
            cr_expect(strstr(clpar_last_error(), types[t]), "%s", clpar_last_error());
        } else {
            cr_expect_eq(st, CLPAR_OK, "'%s': %s", types[t], clpar_last_error());
            cr_expect_eq(n, want, "'%s' selects %d devices, there are %d", types[t], n, want);
        }
    }
    cr_expect_eq(clpar_runtime_parse_spec(rt, "", idx, 16, &n), CLPAR_ENODEV);
    cr_expect_eq(clpar_runtime_parse_spec(rt, "99", idx, 16, &n), CLPAR_ENODEV);
    cr_expect(strstr(clpar_last_error(), "99"), "%s", clpar_last_error());
    cr_expect_eq(clpar_runtime_parse_spec(rt, "0,,1", idx, 16, &n), CLPAR_ENODEV);
    cr_expect_eq(clpar_runtime_parse_spec(rt, "0,", idx, 16, &n), CLPAR_ENODEV);
    cr_expect_eq(clpar_runtime_parse_spec(rt, "-1", idx, 16, &n), CLPAR_ENODEV);
}

Test(devices, allocation_too_large_is_named) {
    clpar_device *d = t_device(0);
    const clpar_device_info *info = clpar_device_get_info(d);
    cl_mem m = NULL;
    size_t before = clpar_device_allocated_bytes(d);
    clpar_status rc = clpar_device_alloc(d, (size_t)info->max_alloc + 4096, &m);
    cr_expect_eq(rc, CLPAR_EDEVMEM);
    cr_expect_null(m);
    char want[64];
    snprintf(want, sizeof want, "%zu bytes", (size_t)info->max_alloc + 4096);
    cr_expect(strstr(clpar_last_error(), want), "message '%s' lacks the size", clpar_last_error());
    cr_expect(strstr(clpar_last_error(), info->name), "message lacks the device");
    T_OK(clpar_device_alloc(d, 1000, &m));
    cr_expect_eq(clpar_device_allocated_bytes(d), before + 1000);
    clpar_device_release(d, m);
    cr_expect_eq(clpar_device_allocated_bytes(d), before);
}

Test(status, table) {
    cr_expect_str_eq(clpar_status_name(CLPAR_EFORMAT), "CLPAR_EFORMAT");
    cr_expect_str_eq(clpar_status_name(CL_OUT_OF_RESOURCES), "CL_OUT_OF_RESOURCES");
    cr_expect_str_eq(clpar_status_message(CLPAR_OK), "success");
    cr_expect_str_eq(clpar_status_name(-2046), "CLBLAST_INVALID_LOCAL_MEM_USAGE");
    cr_expect_str_eq(clpar_status_name(-1024), "CLBLAST_NOT_IMPLEMENTED");
    cr_expect_str_eq(clpar_status_message(-1024),
                     "CLBlast: routine or functionality not implemented yet");
    for (int code = -2038; code <= -2036; code++) /* inside CLBlast's range, not in 1.5 */
        cr_expect_str_eq(clpar_status_name(code), "CLBLAST_ERROR", "%d", code);
    cr_expect_str_eq(clpar_status_name(-99999), "CLPAR_UNKNOWN");
}

/* Every enum's words: each value's name parses back to it, and a wrong word is refused
 * with a message naming the configuration field and the words it takes. */
Test(vocabulary, names_parse_back_and_bad_words_name_the_field) {
    for (int v = 0; v < 2; v++) {
        clpar_loss_kind l;
        T_OK(clpar_loss_kind_parse(clpar_loss_kind_name((clpar_loss_kind)v), &l));
        cr_expect_eq((int)l, v);
        clpar_reduce_mode r;
        T_OK(clpar_reduce_mode_parse(clpar_reduce_mode_name((clpar_reduce_mode)v), &r));
        cr_expect_eq((int)r, v);
    }
    for (int v = 0; v < 4; v++) {
        clpar_gemm_path g;
        T_OK(clpar_gemm_path_parse(clpar_gemm_path_name((clpar_gemm_path)v), &g));
        cr_expect_eq((int)g, v);
        if (v == 3) break;
        clpar_optim_kind o;
        T_OK(clpar_optim_kind_parse(clpar_optim_kind_name((clpar_optim_kind)v), &o));
        cr_expect_eq((int)o, v);
        clpar_schedule s;
        T_OK(clpar_schedule_parse(clpar_schedule_name((clpar_schedule)v), &s));
        cr_expect_eq((int)s, v);
    }
    cr_expect_str_eq(clpar_schedule_name((clpar_schedule)9), "unknown");
    clpar_schedule s;
    cr_expect_eq(clpar_schedule_parse("zigzag", &s), CLPAR_EINVAL);
    cr_expect_str_eq(clpar_last_error(), "schedule must be one of gpipe, 1f1b, auto, got 'zigzag'");
    clpar_optim_kind o;
    cr_expect_eq(clpar_optim_kind_parse("lbfgs", &o), CLPAR_EINVAL);
    cr_expect(strstr(clpar_last_error(), "optim.kind must be one of sgd, adam, adamw"), "%s",
              clpar_last_error());
}

/* The library version the program was built against is the one it runs with. */
Test(version, macros_match_the_library) {
    const char *text;
    cr_expect_eq(clpar_version(&text), CLPAR_VERSION);
    cr_expect_str_eq(text, CLPAR_VERSION_STRING);
    cr_expect_eq(CLPAR_VERSION,
                 CLPAR_VERSION_MAJOR * 10000 + CLPAR_VERSION_MINOR * 100 + CLPAR_VERSION_PATCH);
}

/* The GEMM tuning cache's text form: every candidate survives format and parse; damaged
 * lines are refused rather than applied. */
Test(gemm_cache, configurations_round_trip_and_damage_is_refused) {
    clpar_gemm_config cand[64], back;
    int n = clpar_gemm_candidates(t_device(0), cand, 64);
    cr_assert_gt(n, 10, "the default, CLBlast's choice and a grid of both kernels");
    int direct = 0, indirect = 0, own = 0;
    for (int i = 0; i < n; i++) {
        char text[512];
        clpar_gemm_config_format(&cand[i], text, sizeof text);
        cr_assert(clpar_gemm_config_parse(text, &back), "%s", text);
        cr_expect_eq(back.path, cand[i].path, "%s", text);
        cr_expect_arr_eq(back.v, cand[i].v, sizeof back.v, "%s", text);
        direct += cand[i].path == CLPAR_GEMM_DIRECT;
        indirect += cand[i].path == CLPAR_GEMM_INDIRECT;
        own += cand[i].path == CLPAR_GEMM_CLPAR;
    }
    cr_expect(direct > 1 && indirect > 1 && own > 1,
              "CLBlast's two kernels and clpar's are tried (%d, %d, %d)", direct, indirect, own);
    cr_expect(clpar_gemm_config_parse("auto", &back) && back.path == CLPAR_GEMM_AUTO);
    const char *bad[] = {
        "",
        "fastest",
        "direct WGD=0 MDIMCD=4 NDIMCD=4 MDIMAD=4 NDIMBD=4 KWID=2 VWMD=2 VWND=2 PADA=1 PADB=1",
        "direct MDIMCD=4 WGD=16 NDIMCD=4 MDIMAD=4 NDIMBD=4 KWID=2 VWMD=2 VWND=2 PADA=1 PADB=1",
        "direct WGD=16 MDIMCD=4",
        "indirect GEMMK=0 KREG=1 KWG=16",
        "clpar MT=4 NT=4 MX=6 NX=2 VW=6 WG=8 RD=0 PH=0",
        "clpar MT=4 NT=4 MX=6 NX=2 VW=8 WG=12 RD=0 PH=0",
        "clpar MT=4 NT=4 MX=6 NX=2 VW=8 WG=8 RD=2 PH=0",
        "clpar MT=400 NT=4 MX=6 NX=2 VW=8 WG=8 RD=0 PH=0",
        "clpar MT=4 NT=4 MX=6 NX=2 VW=8 WG=8 RD=0 PH=300",
        "clpar MT=4 NT=4 MX=6 NX=2 VW=8 WG=8 RD=0"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect(!clpar_gemm_config_parse(bad[i], &back), "'%s' was accepted", bad[i]);
}

/* A tuning's cache line: the base, then its routes; written lines parse back to the same
 * tuning, a line from before routes is a tuning without any, and a route that breaks a limit
 * (clpar's kernels on TT, too many parameter sets, an empty or unknown shape) refuses the line. */
Test(gemm_cache, tunings_round_trip_and_limits_hold) {
    const char *good =
        "clpar MT=4 NT=4 MX=6 NX=2 VW=8 WG=8 RD=0 PH=0 TB=64 | NT 1024x768x256 clpar MT=3 NT=4 "
        "MX=4 NX=2 VW=8 WG=8 RD=1 PH=0 TB=0 | TN 256x256x1024 clblast | NN 16x24x16 clpar MT=4 "
        "NT=4 MX=4 NX=2 VW=16 WG=1 RD=0 PH=16 TB=1";
    clpar_gemm_tuning t, back;
    cr_assert(clpar_gemm_tuning_parse(good, &t));
    cr_expect_eq(t.base.path, CLPAR_GEMM_CLPAR);
    cr_assert_eq(t.nroutes, 3);
    cr_expect(t.routes[0].shape.trans_a == 0 && t.routes[0].shape.trans_b == 1 &&
              t.routes[0].shape.m == 1024 && t.routes[0].shape.n == 768 &&
              t.routes[0].shape.k == 256);
    cr_expect_eq(t.routes[0].config.v[0], 3u);
    cr_expect(t.routes[1].shape.trans_a == 1 && t.routes[1].shape.trans_b == 0);
    cr_expect_neq(t.routes[1].config.path, CLPAR_GEMM_CLPAR, "clblast");
    cr_expect_eq(t.routes[2].config.v[7], 16u);
    cr_expect(t.base.v[8] == 64 && t.routes[0].config.v[8] == 0 && t.routes[2].config.v[8] == 1);
    char text[8192];
    clpar_gemm_tuning_format(&t, text, sizeof text);
    cr_expect_str_eq(text, good);
    cr_assert(clpar_gemm_tuning_parse(text, &back));
    char again[8192];
    clpar_gemm_tuning_format(&back, again, sizeof again);
    cr_expect_str_eq(again, text, "parsed twice, the same tuning");
    /* a line of an older cache, before TB: TB 0 throughout */
    cr_assert(clpar_gemm_tuning_parse("clpar MT=4 NT=4 MX=6 NX=2 VW=8 WG=8 RD=0 PH=0 | NT 8x8x8 "
                                      "clpar MT=3 NT=4 MX=4 NX=2 VW=8 WG=8 RD=1 PH=0",
                                      &t));
    cr_expect(t.nroutes == 1 && t.base.v[8] == 0 && t.routes[0].config.v[8] == 0);
    cr_assert(clpar_gemm_tuning_parse("direct WGD=16 MDIMCD=4 NDIMCD=4 MDIMAD=4 NDIMBD=4 KWID=2 "
                                      "VWMD=2 VWND=2 PADA=1 PADB=1",
                                      &t));
    cr_expect_eq(t.nroutes, 0);
    char many[4096] = "clpar MT=4 NT=4 MX=6 NX=2 VW=8 WG=8 RD=0 PH=0";
    for (int i = 0; i < CLPAR_GEMM_MAX_KERNELS; i++) {
        cr_expect(clpar_gemm_tuning_parse(many, &t), "%d parameter sets fit", i + 1);
        size_t used = strlen(many);
        snprintf(many + used, sizeof many - used,
                 " | NT %dx8x8 clpar MT=%d NT=1 MX=6 NX=2 VW=8 WG=8 RD=0 PH=0", i + 1, i + 1);
    }
    cr_expect(!clpar_gemm_tuning_parse(many, &t), "a parameter set past the limit");
    /* the same limit on a tuning built in memory: a set past it, then that route sharing a set */
    clpar_gemm_tuning built;
    memset(&built, 0, sizeof built);
    built.base = (clpar_gemm_config){CLPAR_GEMM_CLPAR, {4, 4, 6, 2, 8, 8, 0, 0}};
    for (int i = 0; i < CLPAR_GEMM_MAX_KERNELS; i++) {
        cr_expect(clpar_gemm_tuning_fits(&built), "%d parameter sets fit", i + 1);
        built.routes[built.nroutes++] =
            (clpar_gemm_route){{CLPAR_NO_TRANS, CLPAR_TRANS, (size_t)i + 1, 8, 8},
                               {CLPAR_GEMM_CLPAR, {(size_t)i + 1, 1, 6, 2, 8, 8, 0, 0}}};
    }
    cr_expect(!clpar_gemm_tuning_fits(&built), "a parameter set past the limit");
    built.routes[built.nroutes - 1].config = built.routes[0].config;
    cr_expect(clpar_gemm_tuning_fits(&built), "two routes to one set count once");
    char routes[8192] = "auto";
    for (int i = 0; i < CLPAR_GEMM_MAX_ROUTES + 1; i++) {
        cr_expect_eq(clpar_gemm_tuning_parse(routes, &t), 1, "%d routes fit", i);
        size_t used = strlen(routes);
        snprintf(routes + used, sizeof routes - used, " | NN %dx2x3 clblast", i + 1);
    }
    cr_expect(!clpar_gemm_tuning_parse(routes, &t), "more routes than a tuning holds");
    const char *bad[] = {
        "auto | TT 4x4x4 clpar MT=4 NT=4 MX=6 NX=2 VW=8 WG=8 RD=0 PH=0",
        "auto | NT 0x4x4 clblast",
        "auto | XT 4x4x4 clblast",
        "auto | NT 4x4 clblast",
        "auto | NT 4x4x4",
        "auto | NT 4x4x4 fastest",
        "auto | NT 4x4x4 direct WGD=16 MDIMCD=4 NDIMCD=4 MDIMAD=4 NDIMBD=4 KWID=2 VWMD=2 VWND=2 "
        "PADA=1 PADB=1",
        "auto | NT 4x4x4 clpar MT=4 NT=4 MX=6 NX=2 VW=6 WG=8 RD=0 PH=0",
        "auto | ",
        "auto extra",
        "clpar MT=4 NT=4 MX=6 NX=2 VW=8 WG=8 RD=0 PH=0 PH=1",
        "clpar MT=4 NT=4 MX=6 NX=2 VW=8 WG=8 RD=0 PH=0 TB=65537",
        "clpar MT=4 NT=4 MX=6 NX=2 VW=8 WG=8 RD=0 TB=1 PH=0"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect(!clpar_gemm_tuning_parse(bad[i], &t), "'%s' was accepted", bad[i]);
}

static int same(const clpar_gemm_config *a, const clpar_gemm_config *b) {
    return a->path == b->path && !memcmp(a->v, b->v, sizeof a->v);
}

/* --tune's choice from measured times (seconds per candidate and shape, made up here): the
 * least total is the base; a shape moves to another of clpar's parameter sets, or to CLBlast
 * under clpar's kernels, only when that is 5% faster; at most CLPAR_GEMM_MAX_KERNELS sets,
 * keeping those that save most; a failed candidate is never chosen. */
Test(gemm_tune, the_choice_follows_the_times) {
    enum { K = CLPAR_GEMM_MAX_KERNELS, NC = 4 + K, NS = 2 + K };
    clpar_gemm_config fb = {CLPAR_GEMM_DIRECT, {32, 4, 4, 4, 4, 1, 8, 8, 1, 1}};
    /* 0: the base; 1: CLBlast's choice; 2: CLBlast under clpar's; 3 .. 3 + K - 1: K sets of
     * clpar's, set 3 + j faster on shape 2 + j only; NC - 1: one that fails */
    clpar_gemm_config cand[NC] = {
        {CLPAR_GEMM_CLPAR, {4, 4, 6, 2, 8, 8, 0, 0}}, {CLPAR_GEMM_AUTO, {0}}, fb};
    for (int j = 0; j < K + 1; j++)
        cand[3 + j] = (clpar_gemm_config){CLPAR_GEMM_CLPAR, {(size_t)j + 1, 1, 6, 2, 8, 8, 0, 0}};
    clpar_gemm_shape s[NS];
    for (int i = 0; i < NS; i++)
        s[i] = (clpar_gemm_shape){CLPAR_NO_TRANS, i % 2 ? CLPAR_TRANS : CLPAR_NO_TRANS,
                                  (size_t)(i + 1) * 8, 16, 32};
    double t[NC][NS];
    for (int c = 0; c < NC; c++)
        for (int i = 0; i < NS; i++)
            t[c][i] = c == 0 ? 5.0 : 10.0; /* the base 5 everywhere, the others 10 */
    t[1][0] = 1.0;                         /* CLBlast's own choice: fastest once, but not in all */
    t[2][1] = 3.0; /* CLBlast under clpar's kernels: 40% faster on shape 1 */
    for (int j = 0; j < K; j++)
        t[3 + j][2 + j] = 4.0 - 0.1 * j; /* set 3 saves least */
    t[NC - 1][0] = 4.9;                  /* 2% faster: not worth a route */
    t[NC - 1][1] = INFINITY;             /* and it failed on another shape */
    clpar_gemm_tuning out;
    int picks[NS];
    int b = clpar_gemm_choose(cand, NC, &fb, s, NS, &t[0][0], &out, picks);
    cr_assert_eq(b, 0);
    cr_expect(same(&out.base, &cand[0]));
    /* shape 1 to CLBlast; shapes 3 .. to sets 4 ..: K - 1 sets beside the base, set 3 (the
     * least saving) dropped, its shape 2 left on the base */
    cr_assert_eq(out.nroutes, K);
    cr_expect(!memcmp(&out.routes[0].shape, &s[1], sizeof s[0]));
    cr_expect(same(&out.routes[0].config, &fb));
    for (int r = 1; r < K; r++) {
        cr_expect(!memcmp(&out.routes[r].shape, &s[2 + r], sizeof s[0]), "route %d", r);
        cr_expect(same(&out.routes[r].config, &cand[3 + r]), "route %d", r);
    }
    /* each shape's candidate, as the routes say */
    int want[NS] = {0, 2, 0};
    for (int i = 3; i < NS; i++)
        want[i] = i + 1;
    for (int i = 0; i < NS; i++)
        cr_expect_eq(picks[i], want[i], "shape %d", i);
    /* CLBlast's own choice as the base once it is fastest in all: CLBlast is no route then,
     * and all K sets of clpar's kernels fit beside it */
    for (int i = 1; i < NS; i++)
        t[1][i] = 4.6;
    b = clpar_gemm_choose(cand, NC, &fb, s, NS, &t[0][0], &out, NULL);
    cr_assert_eq(b, 1);
    cr_expect_eq(out.base.path, CLPAR_GEMM_AUTO);
    cr_expect_eq(out.nroutes, K, "each set on its shape (4.0 - 0.1 j beats 4.6 by 5%%)");
    for (int r = 0; r < out.nroutes; r++)
        cr_expect_eq(out.routes[r].config.path, CLPAR_GEMM_CLPAR, "route %d", r);
    /* nothing measured: no choice */
    for (int c = 0; c < NC; c++)
        t[c][2] = INFINITY;
    cr_expect_eq(clpar_gemm_choose(cand, NC, &fb, s, NS, &t[0][0], &out, picks), -1);
}
