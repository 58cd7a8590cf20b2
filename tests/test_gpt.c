/* The GPT against PyTorch (tests/data/make_gpt_goldens.py, a tiny nanoGPT): a model saved by
 * PyTorch loads under its names into clpar's layout; logits, loss and every parameter's
 * gradient (the tied token table's two parts included) match, and so do the weights after
 * three Adam steps. */
#include "common.h"

#include <string.h>

static const clpar_gpt_config cfg = {.layers = 2, .heads = 2, .embd = 16, .ctx = 8, .vocab = 32};
enum { B = 3 };

static clpar_st *ref, *model;

static void setup(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/gpt_reference.safetensors", t_source_dir());
    T_OK(clpar_st_read(path, &ref));
    snprintf(path, sizeof path, "%s/tests/data/gpt_model.safetensors", t_source_dir());
    T_OK(clpar_st_read(path, &model));
}

static void teardown(void) {
    clpar_st_free(ref);
    clpar_st_free(model);
}

typedef struct {
    const clpar_st *st;
    const char *prefix; /* "" for the model file, "grad." or "adam." in the reference */
    float *flat;        /* load: into the flat layout */
    const float *have;  /* compare: clpar's values in the flat layout */
    double worst;
    int count;
} param_job;

static void load_one(const clpar_param *p, void *user) {
    param_job *j = user;
    char name[160];
    snprintf(name, sizeof name, "%s%s", j->prefix, p->name);
    T_OK(clpar_st_copy_f32(j->st, name, p->ndim, p->shape, j->flat + p->full_offset));
    j->count++;
}

static void compare_one(const clpar_param *p, void *user) {
    param_job *j = user;
    char name[160];
    snprintf(name, sizeof name, "%s%s", j->prefix, p->name);
    size_t n = p->shape[0] * p->shape[1];
    float *want = malloc(n * sizeof(float));
    T_OK(clpar_st_copy_f32(j->st, name, p->ndim, p->shape, want));
    double e = t_rel_l2(j->have + p->full_offset, want, n);
    cr_expect_lt(e, 1e-4, "%s differs from PyTorch by %g", name, e);
    if (e > j->worst) j->worst = e;
    j->count++;
    free(want);
}

static clpar_gpt *loaded_model(float **params, int **idx, int **targets) {
    size_t n = clpar_gpt_param_count(&cfg);
    *params = malloc(n * sizeof(float));
    param_job j = {.st = model, .prefix = "", .flat = *params};
    T_OK(clpar_gpt_each_param(&cfg, load_one, &j));
    cr_assert_eq(j.count, 2 + 12 * cfg.layers + 2, "every tensor of nanoGPT's state_dict");
    clpar_gpt *g;
    T_OK(clpar_gpt_init(t_device(0), &cfg, B, &g));
    T_OK(clpar_gpt_set_params(g, *params));
    const clpar_st_tensor *ti = clpar_st_find(ref, "idx"), *tt = clpar_st_find(ref, "targets");
    cr_assert(ti && tt);
    const float *fi = clpar_st_data(ref, ti), *ft = clpar_st_data(ref, tt);
    *idx = malloc(B * cfg.ctx * sizeof(int));
    *targets = malloc(B * cfg.ctx * sizeof(int));
    for (size_t i = 0; i < B * cfg.ctx; i++)
        (*idx)[i] = (int)fi[i], (*targets)[i] = (int)ft[i];
    T_OK(clpar_gpt_upload(g, *idx, *targets, B));
    return g;
}

Test(gpt, logits_loss_and_every_gradient_match_pytorch, .init = setup, .fini = teardown) {
    float *params;
    int *idx, *targets;
    clpar_gpt *g = loaded_model(&params, &idx, &targets);
    size_t tokens = B * cfg.ctx;
    T_OK(clpar_gpt_forward(g, B));
    T_OK(clpar_gpt_loss(g, B, (double)tokens));
    double sum;
    T_OK(clpar_gpt_read_loss(g, B, &sum));
    float want = *(const float *)clpar_st_data(ref, clpar_st_find(ref, "loss"));
    cr_expect_float_eq(sum / tokens, want, 1e-5 * want, "loss %g vs PyTorch %g", sum / tokens,
                       want);
    float *logits = malloc(tokens * cfg.vocab * sizeof(float));
    T_OK(clpar_gpt_read_logits(g, logits, B));
    double e =
        t_rel_l2(logits, clpar_st_data(ref, clpar_st_find(ref, "logits")), tokens * cfg.vocab);
    cr_expect_lt(e, 1e-5, "logits differ by %g", e);
    T_OK(clpar_gpt_backward(g, B, 0.0f));
    size_t n = clpar_gpt_param_count(&cfg);
    float *grads = malloc(n * sizeof(float));
    T_OK(clpar_gpt_get_grads(g, grads));
    param_job j = {.st = ref, .prefix = "grad.", .have = grads};
    T_OK(clpar_gpt_each_param(&cfg, compare_one, &j));
    cr_expect_eq(j.count, 2 + 12 * cfg.layers + 2);
    free(grads);
    free(logits);
    free(params);
    free(idx);
    free(targets);
    clpar_gpt_free(g);
}

Test(gpt, three_adam_steps_match_pytorch, .init = setup, .fini = teardown) {
    float *params;
    int *idx, *targets;
    clpar_gpt *g = loaded_model(&params, &idx, &targets);
    size_t n = clpar_gpt_param_count(&cfg);
    clpar_optim_config oc = clpar_optim_defaults(CLPAR_OPTIM_ADAM);
    oc.lr = 1e-2f;
    clpar_optim *o;
    T_OK(clpar_optim_init(t_device(0), &oc, n, &o));
    for (int s = 0; s < 3; s++) {
        T_OK(clpar_gpt_forward(g, B));
        T_OK(clpar_gpt_loss(g, B, (double)(B * cfg.ctx)));
        T_OK(clpar_gpt_backward(g, B, 0.0f));
        T_OK(clpar_optim_step(o, clpar_gpt_params(g), clpar_gpt_grads(g), NULL));
    }
    T_OK(clpar_gpt_get_params(g, params));
    param_job j = {.st = ref, .prefix = "adam.", .have = params};
    T_OK(clpar_gpt_each_param(&cfg, compare_one, &j));
    clpar_optim_free(o);
    free(params);
    free(idx);
    free(targets);
    clpar_gpt_free(g);
}

Test(gpt, bad_configurations_are_named) {
    clpar_gpt_config c = cfg;
    c.heads = 3;
    cr_expect_eq(clpar_gpt_config_check(&c), CLPAR_EINVAL);
    cr_expect(strstr(clpar_last_error(), "embd 16 is not a multiple of heads 3"), "%s",
              clpar_last_error());
    c = cfg;
    c.layers = 0;
    cr_expect_eq(clpar_gpt_config_check(&c), CLPAR_EINVAL);
    clpar_module *m[4];
    size_t count;
    /* a pipeline's last stage: its head keeps a copy of the tied table */
    T_OK(clpar_gpt_build(&cfg, 1, 3, 0, 1, NULL, m, &count));
    cr_expect(m[2]->nparams == 1 && m[2]->params[0].copy, "the head holds the table's copy");
    cr_expect_str_eq(m[2]->params[0].name, "transformer.wte.weight");
    for (int i = 0; i < 3; i++)
        clpar_module_free(m[i]);
}

/* ---- a GPT through the trainer, on text ---- */

/* A small text file of the test's own, and its data sets at context ctx. */
static void text_sets(size_t ctx, clpar_dataset *train, clpar_dataset *val) {
    const char *path = t_tmp("corpus.txt");
    FILE *f = fopen(path, "w");
    cr_assert(f);
    for (int i = 0; i < 60; i++)
        fprintf(f, "the %s fox %d jumps over the lazy dog. ", i % 3 ? "quick" : "brown", i % 7);
    fclose(f);
    T_OK(clpar_dataset_load_text(path, ctx, train, val));
}

static clpar_trainer_config gpt_trainer(int *devices) {
    clpar_trainer_config c;
    memset(&c, 0, sizeof c);
    c.gpt = (clpar_gpt_config){.layers = 2, .heads = 4, .embd = 16, .ctx = 8, .vocab = 256};
    c.loss = CLPAR_LOSS_XENT;
    c.optim = clpar_optim_defaults(CLPAR_OPTIM_ADAMW);
    c.optim.lr = 3e-3f;
    c.batch = 12;
    c.dp = c.pp = c.tp = c.accum = c.micro_batches = 1;
    c.shuffle = 1;
    c.seed = 11;
    c.devices = devices;
    c.ndevices = 4;
    return c;
}

static void gpt_train(const clpar_trainer_config *c, const clpar_dataset *ds, int steps,
                      float *params, double *first_loss) {
    clpar_trainer *tr;
    T_OK(clpar_trainer_init(t_runtime(), c, ds, &tr));
    for (int s = 0; s < steps; s++) {
        clpar_step_info info;
        T_OK(clpar_trainer_step(tr, &info));
        if (s == 0 && first_loss) *first_loss = info.loss;
    }
    T_OK(clpar_trainer_get_params(tr, params));
    clpar_trainer_free(tr);
}

Test(gpt, text_data_holds_next_tokens) {
    clpar_dataset train, val;
    text_sets(8, &train, &val);
    cr_expect_eq(train.in, 8);
    cr_expect_eq(train.out, 256);
    cr_expect_eq(train.label_width, 8);
    for (size_t j = 0; j < train.n; j++)
        for (size_t t = 0; t + 1 < 8; t++) /* labels are the inputs shifted by one */
            cr_assert_eq(train.labels[j * 8 + t], train.tokens[j * 8 + t + 1]);
    cr_expect_gt(val.n, 0);
    clpar_dataset_free(&train);
    clpar_dataset_free(&val);
    clpar_dataset a, b;
    FILE *f = fopen(t_tmp("short.txt"), "w");
    fputs("tiny", f);
    fclose(f);
    cr_expect_eq(clpar_dataset_load_text(t_tmp("short.txt"), 8, &a, &b), CLPAR_EINVAL);
    cr_expect(strstr(clpar_last_error(), "ctx 8"), "%s", clpar_last_error());
}

/* Data and tensor parallelism (heads split, unevenly too) and accumulation train a GPT to
 * one device's weights. */
Test(gpt, replicas_shards_and_accumulation_equal_one_device) {
    clpar_dataset train, val;
    text_sets(8, &train, &val);
    int devices[4] = {0, 1, 2, 3};
    clpar_trainer_config one = gpt_trainer(devices);
    clpar_model_spec m = {.gpt = one.gpt};
    size_t n = clpar_model_param_count(&m);
    float *w0 = malloc(n * 4), *w = malloc(n * 4);
    double loss0;
    gpt_train(&one, &train, 6, w0, &loss0);
    /* a fresh nanoGPT predicts nearly uniformly: the loss starts near ln(256) */
    cr_expect(loss0 > 5.3 && loss0 < 5.8, "first loss %g", loss0);
    /* dp, tp, pp, micro-batches (accumulation without pp), schedule; tp 3 splits 4 heads as
     * 2, 1, 1; a pipeline's last stage holds a copy of the tied table */
    int meshes[][5] = {{2, 1, 1, 1, 0}, {1, 1, 1, 3, 0}, {3, 1, 1, 2, 0}, {1, 2, 1, 1, 0},
                       {1, 3, 1, 1, 0}, {2, 2, 1, 1, 0}, {1, 1, 2, 3, 0}, {1, 1, 2, 4, 1},
                       {1, 1, 3, 3, 1}, {2, 1, 2, 2, 0}, {1, 2, 2, 2, 1}};
    for (int i = 0; i < 11; i++) {
        clpar_trainer_config c = one;
        c.dp = meshes[i][0], c.tp = meshes[i][1], c.pp = meshes[i][2];
        if (c.pp > 1)
            c.micro_batches = meshes[i][3];
        else
            c.accum = meshes[i][3];
        c.schedule = meshes[i][4] ? CLPAR_SCHEDULE_1F1B : CLPAR_SCHEDULE_GPIPE;
        gpt_train(&c, &train, 6, w, NULL);
        double e = t_rel_l2(w, w0, n);
        cr_expect_lt(e, 1e-5, "dp %d tp %d pp %d micro %d: %g from one device", c.dp, c.tp, c.pp,
                     meshes[i][3], e);
    }
    clpar_trainer_config bad = one;
    bad.tp = 5;
    clpar_trainer *tr = NULL;
    int many[8] = {0, 1, 2, 3, 0, 1, 2, 3};
    bad.devices = many, bad.ndevices = 8;
    cr_expect_eq(clpar_trainer_init(t_runtime(), &bad, &train, &tr), CLPAR_EINVAL);
    cr_expect(strstr(clpar_last_error(), "tp 5 is larger than the 4 heads"), "%s",
              clpar_last_error());
    free(w0);
    free(w);
    clpar_dataset_free(&train);
    clpar_dataset_free(&val);
}

/* Generation: greedy is the most likely token at each step (checked against the logits);
 * top-k 1 is greedy whatever the temperature; a seed fixes a sample. */
Test(gpt, generation_is_greedy_top_k_and_seeded, .init = setup, .fini = teardown) {
    float *params;
    int *idx, *targets;
    clpar_gpt *g = loaded_model(&params, &idx, &targets);
    clpar_gpt *one;
    T_OK(clpar_gpt_init(t_device(0), &cfg, 1, &one));
    T_OK(clpar_gpt_set_params(one, params));
    int prompt[3] = {5, 17, 2}, greedy[12], topk1[12], a[12], b[12];
    T_OK(clpar_gpt_generate(one, &cfg, prompt, 3, 12, 0.0f, 0, 1, greedy));
    T_OK(clpar_gpt_generate(one, &cfg, prompt, 3, 12, 1.5f, 1, 99, topk1));
    cr_expect_arr_eq(greedy, topk1, sizeof greedy);
    /* the first greedy token is the argmax of the logits after the prompt */
    int ctx[8] = {5, 17, 2};
    float logits[8 * 32];
    T_OK(clpar_gpt_upload(one, ctx, NULL, 1));
    T_OK(clpar_gpt_forward(one, 1));
    T_OK(clpar_gpt_read_logits(one, logits, 1));
    int best = 0;
    for (int v = 1; v < 32; v++)
        if (logits[2 * 32 + v] > logits[2 * 32 + best]) best = v;
    cr_expect_eq(greedy[0], best);
    T_OK(clpar_gpt_generate(one, &cfg, prompt, 3, 12, 1.0f, 8, 7, a));
    T_OK(clpar_gpt_generate(one, &cfg, prompt, 3, 12, 1.0f, 8, 7, b));
    cr_expect_arr_eq(a, b, sizeof a, "the same seed draws the same tokens");
    int bad = 40;
    cr_expect_eq(clpar_gpt_generate(one, &cfg, &bad, 1, 1, 1.0f, 0, 0, a), CLPAR_EINVAL);
    clpar_gpt_free(one);
    free(params);
    free(idx);
    free(targets);
    clpar_gpt_free(g);
}

/* The trainer, from PyTorch's weights on the fixture's batch (three sequences, in order),
 * with AdamW as nanoGPT configures it (no decay on biases and layer norms) and the global
 * gradient norm clipped, reproduces PyTorch's three steps on one device, on three replicas
 * and on two tensor-parallel shards (the norm counted once over the whole mesh). */
Test(gpt, adamw_with_clipping_through_the_trainer_on_meshes, .init = setup, .fini = teardown) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/gpt_model.safetensors", t_source_dir());
    size_t T = cfg.ctx;
    clpar_dataset ds = {.n = B, .in = T, .out = cfg.vocab, .label_width = T};
    ds.tokens = malloc(B * T * sizeof(int));
    ds.labels = malloc(B * T * sizeof(int));
    const float *fi = clpar_st_data(ref, clpar_st_find(ref, "idx")),
                *ft = clpar_st_data(ref, clpar_st_find(ref, "targets"));
    for (size_t i = 0; i < B * T; i++)
        ds.tokens[i] = (int)fi[i], ds.labels[i] = (int)ft[i];
    float clip = *(const float *)clpar_st_data(ref, clpar_st_find(ref, "clip"));
    int devices[4] = {0, 1, 2, 3};
    int meshes[][2] = {{1, 1}, {3, 1}, {1, 2}}; /* dp, tp */
    size_t n = clpar_gpt_param_count(&cfg);
    float *params = malloc(n * sizeof(float));
    for (int i = 0; i < 3; i++) {
        clpar_trainer_config c;
        memset(&c, 0, sizeof c);
        c.gpt = cfg;
        c.loss = CLPAR_LOSS_XENT;
        c.optim = clpar_optim_defaults(CLPAR_OPTIM_ADAMW);
        c.optim.lr = 1e-2f;
        c.optim.weight_decay = 0.1f;
        c.optim.decay_matrices_only = true;
        c.clip = clip;
        c.batch = B;
        c.dp = meshes[i][0], c.tp = meshes[i][1], c.pp = c.accum = c.micro_batches = 1;
        c.devices = devices, c.ndevices = 4;
        c.init_path = path;
        clpar_trainer *tr;
        T_OK(clpar_trainer_init(t_runtime(), &c, &ds, &tr));
        for (int s = 0; s < 3; s++) {
            clpar_step_info info;
            T_OK(clpar_trainer_step(tr, &info));
        }
        clpar_mesh_stats stats;
        clpar_trainer_get_stats(tr, &stats);
        cr_expect_gt(stats.grad_norm, clip, "the norm %g is clipped", stats.grad_norm);
        T_OK(clpar_trainer_get_params(tr, params));
        param_job j = {.st = ref, .prefix = "adamw_clip.", .have = params};
        T_OK(clpar_gpt_each_param(&cfg, compare_one, &j));
        cr_expect_eq(j.count, 2 + 12 * cfg.layers + 2, "dp %d tp %d", c.dp, c.tp);
        clpar_trainer_free(tr);
    }
    free(params);
    clpar_dataset_free(&ds);
}
