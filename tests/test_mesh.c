/* 3D meshes (dp x pp x tp) with uneven shards and both schedules give the weights of
 * single-device training. */
#include "train_common.h"

#include <unistd.h>

static int devices[8] = {0, 1, 2, 3, 0, 1, 2, 3};

/* One device, 5 layers (stages of 2-3 layers pair column and row shards and leave one over),
 * batches of 29 over 77 samples. */
static clpar_trainer_config single_device(clpar_optim_kind kind) {
    clpar_trainer_config c;
    memset(&c, 0, sizeof c);
    clpar_mlp_shape_parse(&c.shape, "11,10,9,8,7,6");
    c.loss = CLPAR_LOSS_XENT;
    c.optim = clpar_optim_defaults(kind);
    c.optim.lr = kind == CLPAR_OPTIM_SGD ? 0.05f : 0.01f;
    c.optim.momentum = kind == CLPAR_OPTIM_SGD ? 0.9f : 0.0f;
    c.batch = 29;
    c.dp = c.pp = c.tp = c.accum = c.micro_batches = 1;
    c.shuffle = 1;
    c.seed = 3;
    c.devices = devices;
    c.ndevices = 8;
    return c;
}

/* An MLP of these sizes with cross-entropy and Adam, for a mesh sized for batch rows (one of
 * everything else: the caller sets the mesh). */
static clpar_mesh_config adam_mlp(const char *sizes, size_t batch) {
    clpar_mesh_config c;
    memset(&c, 0, sizeof c);
    clpar_mlp_shape_parse(&c.shape, sizes);
    c.loss = CLPAR_LOSS_XENT;
    c.optim = clpar_optim_defaults(CLPAR_OPTIM_ADAM);
    c.max_batch = batch;
    return c;
}

Test(mesh, three_d_meshes_equal_single_device) {
    clpar_dataset ds = t_dataset(77, 11, 6, 0, 31);
    clpar_trainer_config c = single_device(CLPAR_OPTIM_ADAM);
    size_t n = clpar_mlp_shape_param_count(&c.shape);
    float *w0 = malloc(n * 4), *w = malloc(n * 4);
    t_train(&c, &ds, 20, w0, 0);
    int meshes[][3] = {{2, 2, 2}, {1, 2, 2}, {2, 1, 3}, {3, 2, 1}};
    for (int i = 0; i < 4; i++)
        for (int s = 0; s < 2; s++) {
            clpar_trainer_config m = c;
            m.dp = meshes[i][0], m.pp = meshes[i][1], m.tp = meshes[i][2];
            m.micro_batches = 3;
            m.schedule = (clpar_schedule)s;
            t_train(&m, &ds, 20, w, m.dp > 1);
            double e = t_rel_l2(w, w0, n);
            cr_expect_lt(e, 1e-5, "mesh %dx%dx%d %s: relative L2 %g", m.dp, m.pp, m.tp,
                         s ? "1f1b" : "gpipe", e);
        }
    free(w0);
    free(w);
    clpar_dataset_free(&ds);
}

/* A mesh of no replicas, stages or shards is refused by name, by the trainer (where pp and
 * tp 0 mean 1: off) and by the mesh. */
Test(mesh, sizes_below_one_are_refused) {
    clpar_dataset ds = t_dataset(77, 11, 6, 0, 31);
    const char *names[3] = {"dp", "pp", "tp"};
    for (int i = 0; i < 3; i++)
        for (int v = -1; v <= 0; v++) {
            char want[48];
            snprintf(want, sizeof want, "%s must be at least 1 (got %d)", names[i], v);
            clpar_trainer_config c = single_device(CLPAR_OPTIM_SGD);
            *(i == 0 ? &c.dp : i == 1 ? &c.pp : &c.tp) = v;
            clpar_trainer *tr = NULL;
            clpar_status st = clpar_trainer_init(t_runtime(), &c, &ds, &tr);
            if (i == 0 || v < 0) {
                cr_expect_eq(st, CLPAR_EINVAL, "%s %d", names[i], v);
                cr_expect(strstr(clpar_last_error(), want), "%s", clpar_last_error());
            } else {
                cr_expect_eq(st, CLPAR_OK, "%s 0 is off", names[i]);
            }
            clpar_trainer_free(tr);
            clpar_mesh_config m = {.dp = 1, .pp = 1, .tp = 1, .micro = 1, .max_batch = 4};
            clpar_mlp_shape_parse(&m.shape, "4,3");
            m.stage_layers[0] = 1;
            *(i == 0 ? &m.dp : i == 1 ? &m.pp : &m.tp) = v;
            cr_expect_eq(clpar_mesh_validate(&m), CLPAR_EINVAL, "mesh %s %d", names[i], v);
            cr_expect(strstr(clpar_last_error(), want), "%s", clpar_last_error());
        }
    clpar_dataset_free(&ds);
}

/* The plan worked out without devices matches what a built mesh holds, rank by rank. */
Test(mesh, planned_memory_matches_the_built_mesh) {
    clpar_mesh_config c = adam_mlp("11,10,9,8,7,6", 29);
    c.dp = 2, c.pp = 2, c.tp = 2, c.micro = 3;
    c.schedule = CLPAR_SCHEDULE_1F1B;
    T_OK(clpar_stages_balance(&c.shape, 2, c.stage_layers));
    size_t n = clpar_mlp_shape_param_count(&c.shape);
    float *params = calloc(n, sizeof(float));
    clpar_device *devs[8];
    for (int r = 0; r < 8; r++)
        T_OK(clpar_device_init(t_runtime(), r % 4, &devs[r]));
    clpar_mesh *m;
    T_OK(clpar_mesh_init(devs, &c, params, &m));
    for (int r = 0; r < 8; r++) {
        clpar_rank_info built, planned;
        clpar_mesh_rank_info(m, r, &built);
        T_OK(clpar_mesh_plan_rank(&c, r, &planned));
        cr_expect_eq(planned.param_count, built.param_count, "rank %d", r);
        cr_expect_eq(planned.param_bytes, built.param_bytes, "rank %d", r);
        cr_expect_eq(planned.activation_bytes, built.activation_bytes, "rank %d", r);
        cr_expect_eq(planned.activation_slots, built.activation_slots, "rank %d", r);
    }
    clpar_mesh_free(m);
    for (int r = 0; r < 8; r++)
        clpar_device_free(devs[r]);
    free(params);
}

/* Mesh c on fresh devices: two steps of the whole batch, one of fewer rows and an
 * evaluation, then each rank's GEMM workspace as clpar_gemm_workspace_predict says,
 * unchanged since the mesh was built. */
static void check_workspace(clpar_runtime *rt, const clpar_mesh_config *c) {
    int n = c->dp * c->pp * c->tp, gpt = c->gpt.layers > 0;
    clpar_model_spec model = {c->shape, c->gpt};
    size_t np = clpar_model_param_count(&model), rows = c->max_batch;
    size_t in = gpt ? c->gpt.ctx : c->shape.sizes[0], per = gpt ? c->gpt.ctx : 1;
    size_t classes = gpt ? c->gpt.vocab : c->shape.sizes[c->shape.nlayers];
    float *params = calloc(np, sizeof(float)), *x = calloc(rows * in, sizeof(float));
    int *labels = calloc(rows * per, sizeof(int)), *tokens = calloc(rows * in, sizeof(int));
    t_fill(params, np, 5, -0.1, 0.1);
    t_fill(x, rows * in, 6, -1, 1);
    for (size_t i = 0; i < rows * per; i++)
        labels[i] = (int)(i * 7 % classes);
    for (size_t i = 0; i < rows * in; i++)
        tokens[i] = (int)(i * 13 % classes);
    clpar_device *devs[8];
    for (int r = 0; r < n; r++)
        T_OK(clpar_device_init(rt, r % 4, &devs[r]));
    clpar_mesh *m;
    T_OK(clpar_mesh_init(devs, c, params, &m));
    size_t built[8];
    for (int r = 0; r < n; r++)
        built[r] = clpar_device_workspace_bytes(devs[r]);
    const void *data = gpt ? (const void *)tokens : (const void *)x;
    double loss, acc;
    for (int s = 0; s < 2; s++)
        T_OK(clpar_mesh_step(m, data, labels, NULL, rows, &loss));
    T_OK(clpar_mesh_step(m, data, labels, NULL, rows - 3, &loss));
    T_OK(clpar_mesh_evaluate(m, data, labels, NULL, rows, &loss, &acc));
    for (int r = 0; r < n; r++) {
        int count;
        T_OK(clpar_mesh_plan_rank_gemms(c, r, NULL, 0, &count));
        clpar_gemm_shape *shapes = malloc((size_t)count * sizeof *shapes);
        T_OK(clpar_mesh_plan_rank_gemms(c, r, shapes, count, &count));
        size_t predicted;
        T_OK(clpar_gemm_workspace_predict(rt, r % 4, shapes, count, &predicted));
        size_t now = clpar_device_workspace_bytes(devs[r]);
        cr_expect_eq(now, predicted, "%s dp %d pp %d tp %d rank %d: workspace %zu, predicted %zu",
                     gpt ? "GPT" : "MLP", c->dp, c->pp, c->tp, r, now, predicted);
        cr_expect_eq(now, built[r], "rank %d: the workspace grew from %zu to %zu in training", r,
                     built[r], now);
        cr_expect_gt(now, 0u);
        clpar_rank_info ri;
        clpar_mesh_rank_info(m, r, &ri);
        cr_expect_eq(ri.workspace_bytes, now, "rank %d: the rank's info says %zu", r,
                     ri.workspace_bytes);
        free(shapes);
    }
    clpar_mesh_free(m);
    for (int r = 0; r < n; r++)
        clpar_device_free(devs[r]);
    free(params);
    free(x);
    free(labels);
    free(tokens);
}

/* The GEMM workspace --dry-run predicts is what the devices hold once the mesh trains: an
 * MLP whose first product outgrows the warm-up's workspace (and its last batch, smaller), on
 * data, tensor and pipeline meshes with W groups, and a GPT split by heads and stages. */
Test(mesh, predicted_gemm_workspace_is_what_the_devices_hold) {
    clpar_mesh_config c;
    /* dp, pp, tp, micro-batches, batch; the narrow MLP's largest products are W's of groups
     * of 4 micro-batches */
    const int meshes[][5] = {
        {1, 1, 1, 1, 64}, {2, 1, 2, 1, 64}, {2, 2, 1, 3, 64}, {1, 2, 2, 4, 512}};
    for (int i = 0; i < 4; i++) {
        c = adam_mlp(i < 3 ? "600,400,200,10" : "96,96,96,10", (size_t)meshes[i][4]);
        c.dp = meshes[i][0], c.pp = meshes[i][1], c.tp = meshes[i][2], c.micro = meshes[i][3];
        c.schedule = i == 2 ? CLPAR_SCHEDULE_1F1B : CLPAR_SCHEDULE_GPIPE;
        T_OK(clpar_stages_balance(&c.shape, c.pp, c.stage_layers));
        check_workspace(t_runtime(), &c);
    }
    /* a tuning whose route for the first layer's forward takes wider panels than the base */
    clpar_runtime_config rc;
    clpar_runtime_config_from_env(&rc);
    snprintf(rc.cache_dir, sizeof rc.cache_dir, "%s", t_tmp("cache"));
    rc.gemm_path[0] = 0;
    clpar_runtime *rt;
    T_OK(clpar_runtime_init_config(&rc, &rt));
    clpar_gemm_tuning t;
    memset(&t, 0, sizeof t);
    t.base = (clpar_gemm_config){CLPAR_GEMM_CLPAR, {4, 4, 4, 4, 16, 8, 0, 0, 1}};
    t.nroutes = 1;
    t.routes[0] = (clpar_gemm_route){{CLPAR_NO_TRANS, CLPAR_TRANS, 64, 400, 600},
                                     {CLPAR_GEMM_CLPAR, {4, 4, 4, 8, 16, 8, 0, 0, 1}}};
    T_OK(clpar_gemm_cache_store(rt, clpar_runtime_device_info(rt, 0), &t));
    c = adam_mlp("600,400,200,10", 64);
    c.dp = c.pp = c.tp = c.micro = 1;
    c.stage_layers[0] = 3;
    check_workspace(rt, &c);
    clpar_runtime_free(rt);
    memset(&c, 0, sizeof c);
    c.gpt = (clpar_gpt_config){.layers = 2, .heads = 4, .embd = 64, .ctx = 32, .vocab = 96};
    c.loss = CLPAR_LOSS_XENT;
    c.optim = clpar_optim_defaults(CLPAR_OPTIM_ADAMW);
    c.max_batch = 32;
    c.dp = 1, c.pp = 2, c.tp = 2, c.micro = 2;
    clpar_model_spec model = {c.shape, c.gpt};
    T_OK(clpar_stages_balance_model(&model, c.pp, NULL, c.stage_layers));
    check_workspace(t_runtime(), &c);
}

/* The planner counts the same workspace in the memory of the fullest device. */
Test(mesh, planner_counts_the_gemm_workspace) {
    clpar_mesh_config c = adam_mlp("600,400,200,10", 64);
    clpar_device_measure m = {.device = 0,
                              .gflops = 10.0,
                              .h2d_gbs = 5.0,
                              .d2h_gbs = 5.0,
                              .memory = 1u << 30,
                              .host_cores = 1};
    T_OK(clpar_gemm_tuning_of(t_runtime(), 0, &m.gemm));
    clpar_plan plan;
    int count;
    T_OK(clpar_planner_plan(&c, &m, 1, &plan, 1, &count));
    cr_assert_eq(count, 1);
    clpar_rank_info ri;
    T_OK(clpar_mesh_plan_rank(&plan.cfg, 0, &ri));
    clpar_gemm_shape shapes[16];
    T_OK(clpar_mesh_plan_rank_gemms(&plan.cfg, 0, shapes, 16, &count));
    size_t workspace;
    T_OK(clpar_gemm_workspace_predict(t_runtime(), 0, shapes, count, &workspace));
    cr_expect_gt(workspace, 1u << 20, "the first layer's panels: %zu bytes", workspace);
    cr_expect_eq(plan.max_device_bytes, ri.param_bytes + ri.activation_bytes + workspace);
}

/* The plan for mesh c among those the planner makes of devices m[0 .. n). */
static const clpar_plan *find_plan(const clpar_mesh_config *c, const clpar_device_measure *m,
                                   int n) {
    static clpar_plan plans[64];
    int count;
    T_OK(clpar_planner_plan(c, m, n, plans, 64, &count));
    for (int i = 0; i < count && i < 64; i++)
        if (plans[i].cfg.dp == c->dp && plans[i].cfg.pp == c->pp && plans[i].cfg.tp == c->tp)
            return &plans[i];
    cr_assert_fail("no plan for %dx%dx%d", c->dp, c->pp, c->tp);
    return NULL;
}

Test(mesh, planner_ranks_feasible_meshes) {
    clpar_mesh_config c;
    memset(&c, 0, sizeof c);
    clpar_mlp_shape_parse(&c.shape, "64,256,256,10");
    c.optim = clpar_optim_defaults(CLPAR_OPTIM_SGD);
    c.max_batch = 64;
    clpar_device_measure m[4];
    for (int i = 0; i < 4; i++)
        m[i] = (clpar_device_measure){
            .device = i, .gflops = 10.0, .h2d_gbs = 5.0, .d2h_gbs = 5.0, .memory = 1u << 30};
    clpar_plan plans[64];
    int count;
    T_OK(clpar_planner_plan(&c, m, 4, plans, 64, &count));
    cr_assert_gt(count, 4);
    for (int i = 0; i + 1 < count && i + 1 < 64; i++)
        cr_expect_leq(plans[i].step_s, plans[i + 1].step_s, "plans are not sorted");
    for (int i = 0; i < count && i < 64; i++) {
        cr_expect_leq(plans[i].cfg.dp * plans[i].cfg.pp * plans[i].cfg.tp, 4);
        cr_expect_eq(clpar_mesh_validate(&plans[i].cfg), CLPAR_OK);
    }
    /* ranks that share a device, or CPU devices that need more cores than the host has,
     * compute more slowly together: the same mesh is predicted slower */
    clpar_mesh_config four = plans[0].cfg;
    int n4 = four.dp * four.pp * four.tp;
    cr_assert_gt(n4, 1, "the best of four equal devices uses several");
    double own = find_plan(&four, m, n4)->compute_s;
    for (int i = 0; i < 4; i++)
        m[i].device = 0;
    double shared = find_plan(&four, m, n4)->compute_s;
    cr_expect_float_eq(shared, own * n4, 1e-9 * own, "%d ranks on one device: %g s, alone %g s", n4,
                       shared, own);
    for (int i = 0; i < 4; i++)
        m[i].device = i, m[i].host_cores = 1u << 20; /* more cores than any host has */
    cr_expect_gt(find_plan(&four, m, n4)->compute_s, own * 1000,
                 "CPU devices share the host's cores");
    for (int i = 0; i < 4; i++)
        m[i].host_cores = 0;
    /* a device too small for any layout leaves nothing */
    for (int i = 0; i < 4; i++)
        m[i].memory = 1000;
    cr_expect_eq(clpar_planner_plan(&c, m, 4, plans, 64, &count), CLPAR_EINVAL);
}

/* Several processes: meshes whose replicas divide among them, each process's share of the
 * batch on its own devices, and the link's time as its bandwidth and latency predict. */
Test(mesh, planner_weighs_the_link_between_processes) {
    clpar_mesh_config c;
    memset(&c, 0, sizeof c);
    clpar_mlp_shape_parse(&c.shape, "64,256,256,10"); /* 85,002 parameters */
    c.optim = clpar_optim_defaults(CLPAR_OPTIM_SGD);
    c.max_batch = 64;
    clpar_device_measure m[2];
    for (int i = 0; i < 2; i++)
        m[i] = (clpar_device_measure){
            .device = i, .gflops = 10.0, .h2d_gbs = 5.0, .d2h_gbs = 5.0, .memory = 1u << 30};
    clpar_plan fast[64], slow[64], local[64];
    int nf, ns, nl;
    clpar_link link = {3, 10.0, 1e-6, 1};
    T_OK(clpar_planner_plan_link(&c, m, 2, &link, fast, 64, &nf));
    link.gbs = 0.01;
    link.latency_s = 1e-3;
    T_OK(clpar_planner_plan_link(&c, m, 2, &link, slow, 64, &ns));
    clpar_mesh_config share = c;
    share.max_batch = 64 / 3; /* what each process runs alone */
    T_OK(clpar_planner_plan(&share, m, 2, local, 64, &nl));
    cr_expect_eq(nf, nl, "one mesh per process-local mesh");
    double grad = 4.0 * 85002;
    for (int i = 0; i < nf; i++) {
        cr_expect_eq(fast[i].cfg.dp % 3, 0, "dp %d does not divide among 3 processes",
                     fast[i].cfg.dp);
        if (fast[i].cfg.tp == 1) /* (shards may repeat a bias) */
            cr_expect_eq(fast[i].link_bytes, (uint64_t)(2.0 * 2 / 3 * grad), "%llu bytes",
                         (unsigned long long)fast[i].link_bytes);
        const clpar_plan *same = NULL;
        for (int j = 0; j < ns; j++)
            if (slow[j].cfg.dp == fast[i].cfg.dp && slow[j].cfg.pp == fast[i].cfg.pp &&
                slow[j].cfg.tp == fast[i].cfg.tp)
                same = &slow[j];
        cr_assert_not_null(same);
        double buckets = 2.0 * same->cfg.shape.nlayers / same->cfg.pp; /* at least */
        cr_expect_geq(same->link_s - fast[i].link_s,
                      fast[i].link_bytes / 0.01e9 - fast[i].link_bytes / 10e9 + buckets * 0.9e-3,
                      "a slower link must cost its bytes and latencies");
        cr_expect_float_eq(same->step_s, same->compute_s + same->comm_s, 1e-12);
        /* one replica per process sums its gradients on the host all the same: read from
         * the device, the sum written back */
        for (int j = 0; j < nl && fast[i].cfg.tp == 1; j++)
            if (local[j].cfg.dp * 3 == fast[i].cfg.dp && local[j].cfg.pp == fast[i].cfg.pp &&
                local[j].cfg.tp == 1) {
                uint64_t extra = fast[i].cfg.dp == 3 ? (uint64_t)(2 * grad) : 0;
                cr_expect_eq(fast[i].bytes_per_step, local[j].bytes_per_step + extra,
                             "dp %d pp %d: %llu bytes against %llu", fast[i].cfg.dp, fast[i].cfg.pp,
                             (unsigned long long)fast[i].bytes_per_step,
                             (unsigned long long)local[j].bytes_per_step);
                cr_expect_float_eq(fast[i].compute_s, local[j].compute_s, 1e-12);
            }
    }
    /* CPU devices each on every core of the host: two processes on one host share them */
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 0; i < 2; i++)
        m[i].host_cores = online > 0 ? (unsigned)online : 1;
    link = (clpar_link){3, 10.0, 1e-6, 1};
    T_OK(clpar_planner_plan_link(&c, m, 1, &link, fast, 64, &nf));
    link.per_host = 3;
    T_OK(clpar_planner_plan_link(&c, m, 1, &link, slow, 64, &ns));
    cr_assert_eq(nf, 1);
    cr_assert_eq(ns, 1);
    cr_expect_float_eq(slow[0].compute_s, 3 * fast[0].compute_s, 1e-9,
                       "three processes on one host's cores: %g against %g s", slow[0].compute_s,
                       fast[0].compute_s);
    /* and there a replica per process on a CPU device is summed in the memory the processes
     * share, where it lies: its gradients are neither read nor written back */
    cr_expect_eq(fast[0].bytes_per_step, (uint64_t)(2 * grad), "%llu bytes on three hosts",
                 (unsigned long long)fast[0].bytes_per_step);
    cr_expect_eq(slow[0].bytes_per_step, 0, "%llu bytes on one host",
                 (unsigned long long)slow[0].bytes_per_step);
    link.per_host = 4;
    cr_expect_eq(clpar_planner_plan_link(&c, m, 1, &link, slow, 64, &ns), CLPAR_EINVAL,
                 "more processes on a host than in all");
}

/* Faster ranks get more work, and the weights stay those of one device. */
Test(mesh, uneven_balance_keeps_equivalence) {
    clpar_dataset ds = t_dataset(77, 11, 6, 0, 31);
    float speeds[8] = {1, 3, 2, 1, 1, 2, 3, 1};
    clpar_trainer_config c = single_device(CLPAR_OPTIM_SGD);
    size_t n = clpar_mlp_shape_param_count(&c.shape);
    float *w0 = malloc(n * 4), *w = malloc(n * 4);
    t_train(&c, &ds, 20, w0, 0);
    clpar_trainer_config m = c;
    m.dp = m.pp = m.tp = 2;
    m.micro_batches = 3;
    m.speeds = speeds;
    clpar_trainer *tr;
    T_OK(clpar_trainer_init(t_runtime(), &m, &ds, &tr));
    clpar_mesh *mesh = clpar_trainer_mesh(tr);
    const clpar_mesh_config *mc = clpar_mesh_get_config(mesh);
    size_t f0, n0, f1, n1;
    clpar_mesh_replica_rows(mc, 29, 0, &f0, &n0);
    clpar_mesh_replica_rows(mc, 29, 1, &f1, &n1);
    /* replica 0's ranks sum to 7, replica 1's to 7: equal; shard 1 (3 + 2 + 2 + 3 = 10 against
     * 1 + 1 + 1 + 1 = 4) is wider than shard 0 */
    cr_expect_eq(n0 + n1, 29);
    clpar_rank_info r0, r1;
    clpar_mesh_rank_info(mesh, 0, &r0);
    clpar_mesh_rank_info(mesh, 1, &r1);
    cr_expect_gt(r1.param_count, r0.param_count, "the faster shard holds %zu <= %zu",
                 r1.param_count, r0.param_count);
    clpar_trainer_free(tr);
    t_train(&m, &ds, 20, w, 1);
    cr_expect_lt(t_rel_l2(w, w0, n), 1e-5, "balanced mesh differs by %g", t_rel_l2(w, w0, n));
    /* uneven replicas */
    float fast_first[2] = {3, 1};
    clpar_trainer_config d = c;
    d.dp = 2;
    d.speeds = fast_first;
    T_OK(clpar_trainer_init(t_runtime(), &d, &ds, &tr));
    clpar_mesh_replica_rows(clpar_mesh_get_config(clpar_trainer_mesh(tr)), 29, 0, &f0, &n0);
    cr_expect(n0 >= 20 && n0 <= 22, "the 3x faster replica got %zu of 29 rows", n0);
    clpar_trainer_free(tr);
    t_train(&d, &ds, 20, w, 1);
    cr_expect_lt(t_rel_l2(w, w0, n), 1e-5, "uneven replicas differ by %g", t_rel_l2(w, w0, n));
    free(w0);
    free(w);
    clpar_dataset_free(&ds);
}

Test(mesh, weighted_stage_balance) {
    clpar_mlp_shape s;
    clpar_mlp_shape_parse(&s, "100,100,100,100,100");
    int layers[2];
    double equal[2] = {1, 1}, fast_second[2] = {1, 3};
    T_OK(clpar_stages_balance_weighted(&s, 2, equal, layers));
    cr_expect(layers[0] == 2 && layers[1] == 2, "got %d,%d", layers[0], layers[1]);
    T_OK(clpar_stages_balance_weighted(&s, 2, fast_second, layers));
    cr_expect(layers[0] == 1 && layers[1] == 3, "got %d,%d", layers[0], layers[1]);
}
