/* Checkpoints through the library alone, as a program without clpar-train's code would use
 * them: a run checkpointed part-way, its configuration read back from the file, a new
 * trainer on another mesh restored from it, ends where the uninterrupted run ends; the
 * settings that define the run are checked. */
#include "train_common.h"

static int devices[4] = {0, 1, 2, 3};

static clpar_trainer_config base(void) {
    clpar_trainer_config c;
    memset(&c, 0, sizeof c);
    clpar_mlp_shape_parse(&c.shape, "9,12,8,4");
    c.loss = CLPAR_LOSS_XENT;
    c.optim = clpar_optim_defaults(CLPAR_OPTIM_ADAMW);
    c.optim.lr = 0.02f;
    c.batch = 16;
    c.dp = c.pp = c.tp = c.accum = c.micro_batches = 1;
    c.shuffle = 1;
    c.seed = 5;
    c.devices = devices;
    c.ndevices = 4;
    c.data = "test-set";
    c.total_steps = 9;
    return c;
}

Test(checkpoint, a_program_resumes_from_the_file_alone_on_another_mesh) {
    clpar_dataset ds = t_dataset(70, 9, 4, 0, 12);
    clpar_trainer_config c = base();
    size_t n = clpar_mlp_shape_param_count(&c.shape);
    float *want = malloc(n * 4), *got = malloc(n * 4);
    t_train(&c, &ds, 9, want, 0);

    clpar_trainer *tr;
    T_OK(clpar_trainer_init(t_runtime(), &c, &ds, &tr));
    clpar_step_info info;
    for (int s = 0; s < 5; s++) /* past the first epoch (5 steps of 16 over 70 samples) */
        T_OK(clpar_trainer_step(tr, &info));
    const char *path = t_tmp("ck.safetensors");
    T_OK(clpar_trainer_checkpoint(tr, path, NULL, 0));
    clpar_trainer_free(tr);

    clpar_trainer_config r;
    memset(&r, 0, sizeof r);
    char data[256];
    T_OK(clpar_checkpoint_read_config(path, &r, data, sizeof data));
    cr_expect_str_eq(data, "test-set");
    cr_expect_eq(r.total_steps, 9);
    cr_expect_eq(r.batch, 16);
    cr_expect_eq(r.seed, 5);
    cr_expect_eq(r.optim.kind, CLPAR_OPTIM_ADAMW);
    cr_expect_eq(r.optim.lr, 0.02f);
    cr_expect_eq(r.optim.weight_decay, c.optim.weight_decay);
    r.dp = 2, r.tp = 2, r.pp = 1, r.accum = r.micro_batches = 1;
    r.devices = devices, r.ndevices = 4;
    T_OK(clpar_trainer_init(t_runtime(), &r, &ds, &tr));
    T_OK(clpar_trainer_restore(tr, path));
    cr_expect_eq(clpar_trainer_steps_done(tr), 5);
    for (long s = clpar_trainer_steps_done(tr); s < r.total_steps; s++)
        T_OK(clpar_trainer_step(tr, &info));
    T_OK(clpar_trainer_get_params(tr, got));
    double e = t_rel_l2(got, want, n);
    cr_expect_lt(e, 1e-5, "resumed on dp 2 x tp 2: %g from the uninterrupted run", e);
    clpar_trainer_free(tr);

    /* a trainer of another run is refused, naming the setting, and left as it was */
    clpar_trainer_config other = base();
    other.batch = 20;
    T_OK(clpar_trainer_init(t_runtime(), &other, &ds, &tr));
    cr_expect_eq(clpar_trainer_restore(tr, path), CLPAR_EINVAL);
    cr_expect(strstr(clpar_last_error(), "batch 20 differs from the batch 16"), "%s",
              clpar_last_error());
    cr_expect_eq(clpar_trainer_steps_done(tr), 0);
    clpar_trainer_free(tr);
    other = base();
    other.optim.lr = 0.03f;
    T_OK(clpar_trainer_init(t_runtime(), &other, &ds, &tr));
    cr_expect_eq(clpar_trainer_restore(tr, path), CLPAR_EINVAL);
    cr_expect(strstr(clpar_last_error(), "optim.lr 0.0299999993 differs"), "%s",
              clpar_last_error());
    clpar_trainer_free(tr);
    free(want);
    free(got);
    clpar_dataset_free(&ds);
}

Test(checkpoint, a_model_file_is_not_a_checkpoint) {
    clpar_mlp_shape s;
    T_OK(clpar_mlp_shape_parse(&s, "3,2"));
    float p[8] = {0};
    const char *path = t_tmp("model.safetensors");
    T_OK(clpar_model_save(path, &s, p));
    clpar_trainer_config r;
    memset(&r, 0, sizeof r);
    char data[64];
    cr_expect_eq(clpar_checkpoint_read_config(path, &r, data, sizeof data), CLPAR_EFORMAT);
    cr_expect(strstr(clpar_last_error(), "not a clpar checkpoint"), "%s", clpar_last_error());
}

/* nanoGPT's learning-rate schedule: linear warm-up, then cosine decay to the minimum at the
 * run's end; without either, the rate stays. */
Test(schedule, warmup_then_cosine_decay) {
    clpar_trainer_config c = base();
    c.optim.lr = 1.0f;
    c.warmup_steps = 10;
    c.total_steps = 110;
    c.lr_decay = true;
    c.lr_min = 0.1f;
    cr_expect_float_eq(clpar_trainer_lr(&c, 0), 1.0 / 11, 1e-12);
    cr_expect_float_eq(clpar_trainer_lr(&c, 9), 10.0 / 11, 1e-12);
    cr_expect_float_eq(clpar_trainer_lr(&c, 10), 1.0, 1e-12);
    cr_expect_float_eq(clpar_trainer_lr(&c, 60), 0.55, 1e-7);
    cr_expect_float_eq(clpar_trainer_lr(&c, 110), 0.1, 1e-7);
    c.lr_decay = false;
    cr_expect_float_eq(clpar_trainer_lr(&c, 60), 1.0, 1e-12);
    c.warmup_steps = 0;
    cr_expect_float_eq(clpar_trainer_lr(&c, 0), 1.0, 1e-12);
}
