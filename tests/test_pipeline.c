/* Pipeline parallelism equals single-device training for pp 2..4, both schedules and
 * M in {1, 3, 8} with uneven micro-batches; 1F1B holds at most pp micro-batches per stage,
 * and the automatic choice takes GPipe only where its memory fits; a two-device trace
 * shows the devices working at the same time. */
#include "train_common.h"

static const char *SIZES = "12,9,8,7,6,5";

static clpar_trainer_config config(int pp, int micro, clpar_schedule sched, const int *devices) {
    clpar_trainer_config c;
    memset(&c, 0, sizeof c);
    clpar_mlp_shape_parse(&c.shape, SIZES);
    c.loss = CLPAR_LOSS_XENT;
    c.optim = clpar_optim_defaults(CLPAR_OPTIM_SGD);
    c.optim.lr = 0.05f;
    c.optim.momentum = 0.9f;
    c.batch = 30; /* 8 micro-batches: 4, 4, 4, 4, 4, 4, 3, 3 */
    c.dp = 1;
    c.pp = pp;
    c.tp = 1;
    c.accum = 1;
    c.micro_batches = micro;
    c.schedule = sched;
    c.shuffle = 1;
    c.seed = 8;
    c.devices = devices;
    c.ndevices = 4;
    return c;
}

Test(pipeline, equals_single_device) {
    clpar_dataset ds = t_dataset(85, 12, 5, 0, 23);
    int devices[4] = {0, 1, 2, 3};
    clpar_trainer_config ref = config(1, 1, CLPAR_SCHEDULE_GPIPE, devices);
    size_t n = clpar_mlp_shape_param_count(&ref.shape);
    float *w0 = malloc(n * 4), *w = malloc(n * 4);
    t_train(&ref, &ds, 20, w0, 0);
    int micro[3] = {1, 3, 8};
    for (int pp = 2; pp <= 4; pp++)
        for (int s = 0; s < 2; s++)
            for (int i = 0; i < 3; i++) {
                clpar_trainer_config c = config(pp, micro[i], (clpar_schedule)s, devices);
                t_train(&c, &ds, 20, w, 0);
                double e = t_rel_l2(w, w0, n);
                cr_expect_lt(e, 1e-5, "pp %d %s M %d: relative L2 %g", pp, s ? "1f1b" : "gpipe",
                             micro[i], e);
            }
    /* stages set by hand, and the MSE loss */
    clpar_trainer_config c = config(3, 5, CLPAR_SCHEDULE_1F1B, devices);
    c.stage_layers[0] = 1, c.stage_layers[1] = 3, c.stage_layers[2] = 1;
    t_train(&c, &ds, 20, w, 0);
    cr_expect_lt(t_rel_l2(w, w0, n), 1e-5, "--stages 1,3,1");
    free(w0);
    free(w);
    clpar_dataset_free(&ds);
}

Test(pipeline, activation_slots_follow_the_schedule) {
    clpar_dataset ds = t_dataset(40, 12, 5, 0, 2);
    int devices[4] = {0, 1, 2, 3};
    for (int s = 0; s < 2; s++) {
        clpar_trainer_config c = config(4, 8, (clpar_schedule)s, devices);
        clpar_trainer *tr;
        T_OK(clpar_trainer_init(t_runtime(), &c, &ds, &tr));
        for (int p = 0; p < 4; p++) {
            clpar_rank_info ri;
            clpar_mesh_rank_info(clpar_trainer_mesh(tr), p, &ri);
            int want = s == CLPAR_SCHEDULE_GPIPE ? 8 : 4; /* 1F1B: at most pp */
            cr_expect_eq(ri.activation_slots, want, "%s stage %d holds %d micro-batches",
                         s ? "1f1b" : "gpipe", p, ri.activation_slots);
        }
        clpar_trainer_free(tr);
    }
    clpar_dataset_free(&ds);
}

Test(pipeline, auto_schedule_is_gpipe_where_memory_allows) {
    clpar_dataset ds = t_dataset(40, 12, 5, 0, 2);
    int devices[4] = {0, 1, 2, 3};
    clpar_trainer_config c = config(4, 8, CLPAR_SCHEDULE_AUTO, devices);
    clpar_mesh_config mc;
    T_OK(clpar_trainer_mesh_config(&c, ds.n, &mc));
    /* what each rank needs under either schedule, from the same plan the mesh allocates */
    uint64_t gpipe[4], f1b[4], plenty[4], tight[4];
    for (int s = 0; s < 2; s++) {
        clpar_mesh_config x = mc;
        x.schedule = s ? CLPAR_SCHEDULE_1F1B : CLPAR_SCHEDULE_GPIPE;
        for (int r = 0; r < 4; r++) {
            clpar_rank_info ri;
            T_OK(clpar_mesh_plan_rank(&x, r, &ri));
            (s ? f1b : gpipe)[r] = ri.param_bytes + ri.activation_bytes;
        }
    }
    for (int r = 0; r < 4; r++) {
        cr_assert_gt(gpipe[r], f1b[r], "rank %d: GPipe holds more than 1F1B", r);
        plenty[r] = 2 * gpipe[r];
        tight[r] = 2 * gpipe[r];
    }
    clpar_schedule chosen;
    T_OK(clpar_mesh_choose_schedule(&mc, plenty, &chosen));
    cr_expect_eq(chosen, CLPAR_SCHEDULE_GPIPE);
    tight[2] = 2 * gpipe[2] - 1; /* one rank short */
    T_OK(clpar_mesh_choose_schedule(&mc, tight, &chosen));
    cr_expect_eq(chosen, CLPAR_SCHEDULE_1F1B);
    mc.schedule = CLPAR_SCHEDULE_1F1B; /* a schedule given is kept */
    T_OK(clpar_mesh_choose_schedule(&mc, plenty, &chosen));
    cr_expect_eq(chosen, CLPAR_SCHEDULE_1F1B);
    /* a mesh built with auto on these (ample) devices runs GPipe */
    clpar_trainer *tr;
    T_OK(clpar_trainer_init(t_runtime(), &c, &ds, &tr));
    cr_expect_eq(clpar_mesh_get_config(clpar_trainer_mesh(tr))->schedule, CLPAR_SCHEDULE_GPIPE);
    clpar_trainer_free(tr);
    clpar_dataset_free(&ds);
}

Test(pipeline, two_devices_overlap_in_the_trace) {
    /* layers large enough that a micro-batch's work outlasts a hand-off */
    clpar_dataset ds = t_dataset(256, 64, 5, 0, 2);
    int devices[4] = {0, 1, 2, 3};
    clpar_trainer_config c = config(2, 8, CLPAR_SCHEDULE_GPIPE, devices);
    clpar_mlp_shape_parse(&c.shape, "64,512,512,512,512,5");
    c.batch = 256;
    clpar_trainer *tr;
    T_OK(clpar_trainer_init(t_runtime(), &c, &ds, &tr));
    clpar_mesh *m = clpar_trainer_mesh(tr);
    clpar_mesh_set_tracing(m, 1);
    clpar_step_info info;
    for (int s = 0; s < 3; s++)
        T_OK(clpar_trainer_step(tr, &info));
    int n;
    const clpar_trace_event *ev = clpar_mesh_trace(m, &n);
    int overlaps = 0, computes[2] = {0, 0};
    for (int i = 0; i < n; i++) {
        int ci = clpar_trace_event_is_compute(&ev[i]);
        if (ci) computes[ev[i].rank]++;
        for (int j = 0; ci && j < n; j++) {
            int cj = clpar_trace_event_is_compute(&ev[j]);
            if (cj && ev[i].rank == 0 && ev[j].rank == 1 && ev[i].start_us < ev[j].end_us &&
                ev[j].start_us < ev[i].end_us)
                overlaps++;
        }
    }
    cr_expect_gt(computes[0], 0);
    cr_expect_gt(computes[1], 0);
    cr_expect_gt(overlaps, 0, "no forward/backward of the two devices overlapped in time");
    const char *labels[2] = {"rank 0", "rank 1"};
    T_OK(clpar_trace_write_json(t_tmp("trace.json"), ev, n, labels, 2));
    T_OK(clpar_trace_write_svg(t_tmp("timeline.svg"), ev, n, labels, 2, 1));
    clpar_trainer_free(tr);
    clpar_dataset_free(&ds);
}

static const char *flag_of(const char *field, void *user) {
    if (!strcmp(field, "micro_batches")) return "--micro-batches";
    if (!strcmp(field, "batch")) return "--batch";
    return NULL;
}

Test(pipeline, bad_configurations_are_named) {
    clpar_dataset ds = t_dataset(40, 12, 5, 0, 2);
    int devices[8] = {0, 1, 2, 3, 0, 1, 2, 3};
    clpar_trainer *tr = NULL;
    clpar_trainer_config c = config(6, 1, CLPAR_SCHEDULE_GPIPE, devices);
    c.ndevices = 8;
    cr_expect_eq(clpar_trainer_init(t_runtime(), &c, &ds, &tr), CLPAR_EINVAL);
    cr_expect(strstr(clpar_last_error(), "pp 6"), "%s", clpar_last_error());
    c = config(2, 1, CLPAR_SCHEDULE_GPIPE, devices);
    c.stage_layers[0] = 2, c.stage_layers[1] = 2;
    cr_expect_eq(clpar_trainer_init(t_runtime(), &c, &ds, &tr), CLPAR_EINVAL);
    cr_expect(strstr(clpar_last_error(), "stage_layers"), "%s", clpar_last_error());
    c = config(2, 31, CLPAR_SCHEDULE_GPIPE, devices);
    cr_expect_eq(clpar_trainer_init(t_runtime(), &c, &ds, &tr), CLPAR_EINVAL);
    cr_expect(strstr(clpar_last_error(), "micro_batches 31"), "%s", clpar_last_error());
    /* a tool names its flags instead of the fields */
    const char *flagged = clpar_last_error_renamed(flag_of, NULL);
    cr_expect(strstr(flagged, "--micro-batches 31 is larger than --batch 30"), "%s", flagged);
    cr_expect_null(tr);
    clpar_dataset_free(&ds);
}

Test(pipeline, stages_balance_flops) {
    clpar_mlp_shape s;
    clpar_mlp_shape_parse(&s, "784,784,784,784,784,10");
    int layers[4];
    T_OK(clpar_stages_balance(&s, 2, layers));
    cr_expect(layers[0] == 2 && layers[1] == 3, "got %d,%d", layers[0], layers[1]);
    /* equal speeds, whatever their scale, cut where no speeds do; a faster second stage
     * takes more layers */
    double equal[2] = {3.5, 3.5}, faster[2] = {1.0, 3.0};
    T_OK(clpar_stages_balance_weighted(&s, 2, equal, layers));
    cr_expect(layers[0] == 2 && layers[1] == 3, "equal speeds: got %d,%d", layers[0], layers[1]);
    T_OK(clpar_stages_balance_weighted(&s, 2, faster, layers));
    cr_expect(layers[0] == 1 && layers[1] == 4, "faster: got %d,%d", layers[0], layers[1]);
    clpar_mlp_shape_parse(&s, "100,1000,10,10,10");
    T_OK(clpar_stages_balance(&s, 2, layers));
    cr_expect(layers[0] == 1 && layers[1] == 3, "got %d,%d", layers[0], layers[1]);
}
