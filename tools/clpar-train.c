/* clpar-train: trains an MLP on Fashion-MNIST or the synthetic regression set across the
 * OpenCL devices of --devices, with any mesh of data, tensor and pipeline parallelism. The
 * options are in train_options.c; everything else is the library's. */
#include "train_options.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *prog = "clpar-train";

/* Under MPI (mpirun -np P clpar-train ...) every process runs this program on the same options
 * and its own copy of the data, and process 0 speaks for all: the others print nothing, and
 * wherever one process may fail alone (its data, its devices, a checkpoint it reads) all agree
 * to stop, process 0 printing the failing one's message. A step that fails ends them all. */
static clpar_world *world;
static int real_stderr = -1; /* a process other than 0: where its own failures still go */

static int procs(void) {
    return clpar_world_size(world);
}

/* This process's exit status, agreed: non-zero on every process when any failed. */
static int agree(int rc) {
    return cli_agree(prog, world, rc);
}

/* synthetic, fashion-mnist, text:FILE (a GPT's, at context ctx) or a folder of IDX files */
static clpar_status load_data(const char *data, uint64_t seed, size_t ctx, clpar_dataset *train,
                              clpar_dataset *test) {
    if (!strcmp(data, "synthetic")) return clpar_dataset_synthetic(seed, 1000, 200, train, test);
    if (!strncmp(data, "text:", 5)) return clpar_dataset_load_text(data + 5, ctx, train, test);
    const char *dir = strcmp(data, "fashion-mnist") ? data : CLPAR_FASHION_MNIST_DIR;
    return clpar_dataset_load_fashion_mnist(dir, train, test);
}

/* The trainer's configuration from the options: a checkpoint's settings when resuming
 * (options given again override them, and the library refuses what disagrees), else the
 * options over the defaults. Returns 0 or the exit status after the error. */
static int configure(train_options *o, clpar_trainer_config *cfg, char *data, size_t n) {
    memset(cfg, 0, sizeof *cfg);
    if (o->resume) {
        if (clpar_checkpoint_read_config(o->resume, cfg, data, n) != CLPAR_OK)
            return cli_fail(prog, CLPAR_EFORMAT);
        if (!train_options_given(o, "data")) o->data = data;
    }
    if (o->steps && o->epochs) return cli_usage_error(prog, "give --epochs or --steps, not both");
    int synthetic = !strcmp(o->data, "synthetic"), text = !strncmp(o->data, "text:", 5);
    if (!o->resume || o->model) {
        const char *model = o->model    ? o->model
                            : synthetic ? "10,5"
                            : text      ? "gpt:layers=4,heads=4,embd=256,ctx=128"
                                        : "784,256,128,10";
        clpar_model_spec spec;
        if (clpar_model_parse(model, &spec) != CLPAR_OK)
            return cli_usage_error(prog, "--model: %s", clpar_last_error());
        if (clpar_model_is_gpt(&spec) && !text)
            return cli_usage_error(prog, "--model %s trains on text: give --data text:FILE", model);
        if (!clpar_model_is_gpt(&spec) && text)
            return cli_usage_error(prog, "--data %s is text: give --model gpt:...", o->data);
        if (clpar_model_is_gpt(&spec) && !spec.gpt.vocab) spec.gpt.vocab = 256; /* bytes */
        if (clpar_model_is_gpt(&spec) && clpar_gpt_config_check(&spec.gpt) != CLPAR_OK)
            return cli_usage_error(prog, "--model: %s", clpar_last_error());
        cfg->shape = spec.mlp;
        cfg->gpt = spec.gpt;
    }
    int given_optim = train_options_given(o, "optim");
    if (!o->resume || given_optim) {
        cfg->optim = clpar_optim_defaults(o->optim);
        cfg->optim.decay_matrices_only = cfg->gpt.layers > 0; /* as nanoGPT configures it */
    }
    if (!o->resume || train_options_given(o, "clip")) cfg->clip = (float)o->clip;
    if (!o->resume || train_options_given(o, "loss"))
        cfg->loss = train_options_given(o, "loss") ? o->loss
                    : synthetic                    ? CLPAR_LOSS_MSE
                                                   : CLPAR_LOSS_XENT;
    if (!o->resume || train_options_given(o, "lr")) {
        if (train_options_given(o, "lr")) cfg->optim.lr = (float)o->lr;
    }
    if (!o->resume || train_options_given(o, "momentum")) cfg->optim.momentum = (float)o->momentum;
    if (!o->resume || train_options_given(o, "warmup")) cfg->warmup_steps = o->warmup;
    if (!o->resume || train_options_given(o, "lr-min")) {
        cfg->lr_decay = train_options_given(o, "lr-min");
        cfg->lr_min = (float)o->lr_min;
    }
    if (train_options_given(o, "weight-decay")) cfg->optim.weight_decay = (float)o->weight_decay;
    if (!o->resume || train_options_given(o, "grad-reduce")) cfg->reduce = o->reduce;
    if (!o->resume || train_options_given(o, "batch")) cfg->batch = (size_t)o->batch;
    if (!o->resume || train_options_given(o, "seed")) cfg->seed = (uint64_t)o->seed;
    if (!o->resume || train_options_given(o, "shuffle")) cfg->shuffle = o->shuffle;
    cfg->data = o->data;
    cfg->dp = (int)o->dp;
    cfg->accum = (int)o->accum;
    cfg->tp = (int)o->tp;
    cfg->micro_batches = (int)o->micro;
    cfg->zero = (int)o->zero;
    cfg->schedule = o->schedule;
    cfg->init_path = o->init;
    if (o->stages) {
        clpar_mlp_shape counts; /* the same syntax as a size list: positive integers */
        char buf[512];
        snprintf(buf, sizeof buf, "1,%s", o->stages);
        if (clpar_mlp_shape_parse(&counts, buf) != CLPAR_OK)
            return cli_usage_error(prog, "--stages '%s': expected layer counts like 2,1,1",
                                   o->stages);
        if (o->pp && o->pp != counts.nlayers)
            return cli_usage_error(prog, "--stages lists %d stages but --pp is %ld", counts.nlayers,
                                   o->pp);
        o->pp = counts.nlayers;
        for (int p = 0; p < counts.nlayers; p++)
            cfg->stage_layers[p] = (int)counts.sizes[p + 1];
    }
    cfg->pp = o->pp ? (int)o->pp : 1;
    return 0;
}

/* --mesh auto: the planner's best mesh for the devices of the spec; under MPI for every
 * process with process 0's devices (each measures its own, and all must run the same mesh)
 * and the link between them measured. */
static clpar_status choose_mesh(clpar_runtime *rt, clpar_trainer_config *cfg, size_t nsamples,
                                int quiet) {
    int n = cfg->ndevices < 64 ? cfg->ndevices : 64, P = procs();
    clpar_device_measure m[64], *all = calloc((size_t)P * 64, sizeof *all);
    if (!all) return cli_error_status(CLPAR_ENOMEM, "out of host memory");
    clpar_model_spec model = {cfg->shape, cfg->gpt};
    clpar_link link; /* a collective first, before any process can fail alone */
    clpar_status st = clpar_planner_measure_link(world, &link);
    for (int i = 0; i < n && st == CLPAR_OK; i++)
        st = clpar_planner_measure(rt, cfg->devices[i], &model, cfg->batch, 0, &m[i]);
    st = clpar_world_agree(world, st, NULL);
    if (st == CLPAR_OK) st = clpar_world_allgather(world, m, sizeof m, all);
    if (st == CLPAR_OK) memcpy(m, all, sizeof m); /* process 0's */
    free(all);
    clpar_mesh_config base;
    cfg->dp = cfg->pp = cfg->tp = 1;
    if (st == CLPAR_OK) st = clpar_trainer_mesh_config(cfg, nsamples, &base);
    clpar_plan best;
    int count;
    if (st == CLPAR_OK) st = clpar_planner_plan_link(&base, m, n, &link, &best, 1, &count);
    if (st != CLPAR_OK) return st;
    cfg->dp = best.cfg.dp, cfg->pp = best.cfg.pp, cfg->tp = best.cfg.tp;
    cfg->accum = 1;
    cfg->micro_batches = best.cfg.micro;
    memcpy(cfg->stage_layers, best.cfg.stage_layers, sizeof cfg->stage_layers);
    if (!quiet)
        printf("mesh auto: dp %d x pp %d x tp %d, %d micro-batches (predicted %.1f ms per step, "
               "best of %d meshes%s)\n",
               cfg->dp, cfg->pp, cfg->tp, best.cfg.micro, best.step_s * 1e3, count,
               P > 1 ? ", replicas divided among the processes" : "");
    return CLPAR_OK;
}

/* --balance auto: each rank's speed is its device's measured throughput on the model. */
static clpar_status measure_speeds(clpar_runtime *rt, clpar_trainer_config *cfg, float *speeds,
                                   int quiet) {
    int n = cfg->dp * cfg->pp * cfg->tp, P = procs();
    if (n % P || n / P > cfg->ndevices || n > CLPAR_MAX_RANKS)
        return CLPAR_OK; /* the trainer says what is wrong */
    /* each process measures its own ranks' devices; all learn every rank's speed */
    int local = n / P;
    float mine[CLPAR_MAX_RANKS];
    clpar_model_spec model = {cfg->shape, cfg->gpt};
    clpar_status st = CLPAR_OK;
    for (int r = 0; r < local && st == CLPAR_OK; r++) {
        clpar_device_measure m;
        st = clpar_planner_measure(rt, cfg->devices[r], &model, cfg->batch, 0, &m);
        mine[r] = st == CLPAR_OK ? (float)m.gflops : 0;
    }
    st = clpar_world_agree(world, st, NULL);
    if (st == CLPAR_OK)
        st = clpar_world_allgather(world, mine, (size_t)local * sizeof *mine, speeds);
    if (st != CLPAR_OK) return st;
    for (int r = 0; r < n && !quiet; r++) {
        if (P > 1)
            printf("balance: rank %d (process %d) runs %.2f GFLOP/s\n", r, r / local, speeds[r]);
        else
            printf("balance: rank %d on device %d runs %.2f GFLOP/s\n", r, cfg->devices[r],
                   speeds[r]);
    }
    cfg->speeds = speeds;
    return CLPAR_OK;
}

/* --dry-run's plan of mc (n ranks, local of them in each process) on cfg's devices, whose
 * GEMM tunings gemm holds (one per local rank) and memory their global memory (per rank). */
static int dry_run_print(clpar_runtime *rt, const clpar_trainer_config *cfg,
                         const clpar_mesh_config *mc_in, int n, int local,
                         const clpar_gemm_tuning *gemm, const uint64_t *memory) {
    clpar_mesh_config mc = *mc_in;
    clpar_status st;
    int chosen = mc.schedule == CLPAR_SCHEDULE_AUTO;
    if ((st = clpar_mesh_choose_schedule(&mc, memory, &mc.schedule)) != CLPAR_OK)
        return cli_fail(prog, st);
    char sizes[512];
    clpar_model_spec spec = {mc.shape, mc.gpt};
    clpar_model_format(&spec, sizes, sizeof sizes);
    printf("plan: model %s, batch %zu, mesh dp %d x pp %d x tp %d, %d micro-batches per replica, "
           "%s%s\n",
           sizes, mc.max_batch, mc.dp, mc.pp, mc.tp, mc.micro, clpar_schedule_name(mc.schedule),
           chosen ? " (auto)" : "");
    printf("data-parallel shards:");
    for (int d = 0; d < mc.dp; d++) {
        size_t first, count;
        clpar_mesh_replica_rows(&mc, mc.max_batch, d, &first, &count);
        printf(" %zu", count);
    }
    printf(" rows\n");
    size_t worst = 0;
    for (int r = 0; r < n; r++) {
        clpar_rank_info ri, whole;
        clpar_mesh_config unsharded = mc;
        unsharded.zero = 0;
        if ((st = clpar_mesh_plan_rank(&mc, r, &ri)) != CLPAR_OK ||
            (st = clpar_mesh_plan_rank(&unsharded, r, &whole)) != CLPAR_OK)
            return cli_fail(prog, st);
        const clpar_device_info *di = clpar_runtime_device_info(rt, cfg->devices[r % local]);
        size_t workspace;
        if ((st = clpar_mesh_plan_rank_workspace(
                 &mc, r, &gemm[r % local], di->type & CL_DEVICE_TYPE_CPU, &workspace)) != CLPAR_OK)
            return cli_fail(prog, st);
        char zero[64] = "";
        if (mc.zero)
            snprintf(zero, sizeof zero, "; %.2f without ZeRO", whole.param_bytes / 1048576.0);
        size_t bytes = ri.param_bytes + ri.activation_bytes + workspace;
        if (bytes > worst) worst = bytes;
        printf("  rank %d -> device %d (%s): replica %d, stage %d (layers %d-%d), shard %d: %zu "
               "parameters, %.2f MiB predicted (%.2f parameters and state%s, %.2f activations, "
               "%.2f GEMM workspace, %d micro-batch slots)\n",
               r, di->index, di->name, ri.replica, ri.stage, ri.first_layer,
               ri.first_layer + ri.layers - 1, ri.shard, ri.param_count, bytes / 1048576.0,
               ri.param_bytes / 1048576.0, zero, ri.activation_bytes / 1048576.0,
               workspace / 1048576.0, ri.activation_slots);
    }
    uint64_t tp_bytes;
    if ((st = clpar_mesh_predicted_tp_bytes(&mc, mc.max_batch, &tp_bytes)) != CLPAR_OK)
        return cli_fail(prog, st);
    printf("bytes moved per step: tensor parallel %llu (predicted), pipeline bubble %.1f%% "
           "(ideal (p-1)/(m+p-1)), largest rank %.2f MiB\n",
           (unsigned long long)tp_bytes, 100.0 * (mc.pp - 1) / (mc.micro + mc.pp - 1),
           worst / 1048576.0);
    return 0;
}

/* --dry-run: the plan, without training. */
static int dry_run(clpar_runtime *rt, const clpar_trainer_config *cfg, const clpar_dataset *ds) {
    clpar_mesh_config mc;
    clpar_status st = clpar_trainer_mesh_config(cfg, ds->n, &mc);
    if (st != CLPAR_OK) return cli_fail(prog, st);
    int n = mc.dp * mc.pp * mc.tp, local = n / procs(); /* every process's ranks alike */
    if (local > cfg->ndevices) {
        fprintf(stderr, "%s: error: %d ranks need %d devices, but the device spec names %d\n", prog,
                n, local, cfg->ndevices);
        return 1;
    }
    uint64_t memory[CLPAR_MAX_RANKS];
    for (int r = 0; r < n; r++)
        memory[r] = clpar_runtime_device_info(rt, cfg->devices[r % local])->global_mem;
    /* each device's GEMM tuning, once (and a bad CLPAR_GEMM_PATH before any line of the plan) */
    clpar_gemm_tuning *gemm = malloc((size_t)local * sizeof *gemm);
    if (!gemm) return cli_fail(prog, cli_error_status(CLPAR_ENOMEM, "out of host memory"));
    for (int r = 0; r < local; r++)
        if ((st = clpar_gemm_tuning_of(rt, cfg->devices[r], &gemm[r])) != CLPAR_OK) {
            free(gemm);
            return cli_fail(prog, st);
        }
    int rc = dry_run_print(rt, cfg, &mc, n, local, gemm, memory);
    free(gemm);
    return rc;
}

static void format_time(double s, char *buf, size_t n) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

/* Writes the checkpoint when it is due. */
static clpar_status maybe_checkpoint(clpar_trainer *tr, const train_options *o,
                                     const clpar_step_info *info, long every, long total) {
    if (!o->checkpoint || (info->step % every != 0 && info->step != total)) return CLPAR_OK;
    return clpar_trainer_checkpoint(tr, o->checkpoint, NULL, 0);
}

typedef struct {
    uint64_t tp_bytes, tp_predicted, pp_bytes;
    uint64_t launches, waits; /* over the steps this process ran */
    uint64_t bytes_sent;      /* to other processes */
    uint64_t bytes_shared;    /* of which through shared memory (processes on one host) */
    uint64_t floats_in_place; /* gradients summed where the devices keep them */
    long steps_run;
    size_t predicted_rows; /* the batch size tp_step was predicted for (0: none yet) */
    uint64_t tp_step;      /* the prediction for a step of that size */
    size_t samples;
    double t_start, t_train;
    bool evaluated;             /* the last step was evaluated: ... */
    double eval_loss, eval_acc; /* ... with these results */
} run_totals;

/* The training loop from the trainer's position to step `total`: progress, the log, the
 * checkpoints and an evaluation after every epoch. */
static clpar_status train(clpar_trainer *tr, const train_options *o, const clpar_dataset *test,
                          long total, FILE *log, run_totals *rt) {
    clpar_mesh *mesh = clpar_trainer_mesh(tr);
    int tty = isatty(STDOUT_FILENO) && !o->quiet;
    long per_epoch = clpar_trainer_steps_per_epoch(tr);
    long every = o->checkpoint_every ? o->checkpoint_every : per_epoch;
    size_t epoch_samples = 0;
    double epoch_loss = 0, t_epoch = cli_now();
    int xent = clpar_mesh_get_config(mesh)->loss == CLPAR_LOSS_XENT;
    int gpt = clpar_mesh_get_config(mesh)->gpt.layers > 0;
    for (long s = clpar_trainer_steps_done(tr); s < total; s++) {
        clpar_step_info info;
        clpar_mesh_stats before, after;
        clpar_mesh_get_stats(mesh, &before);
        double t0 = cli_now();
        clpar_status st = clpar_trainer_step(tr, &info);
        double dt = cli_now() - t0;
        clpar_mesh_get_stats(mesh, &after);
        rt->tp_bytes += after.bytes_tp - before.bytes_tp;
        rt->pp_bytes += after.bytes_pp - before.bytes_pp;
        rt->launches += after.launches - before.launches;
        rt->waits += after.waits - before.waits;
        rt->bytes_sent += after.bytes_sent - before.bytes_sent;
        rt->bytes_shared += after.bytes_shared - before.bytes_shared;
        rt->floats_in_place += after.floats_in_place - before.floats_in_place;
        rt->steps_run++;
        if (st == CLPAR_OK && info.rows != rt->predicted_rows) { /* it builds the layout */
            st =
                clpar_mesh_predicted_tp_bytes(clpar_mesh_get_config(mesh), info.rows, &rt->tp_step);
            rt->predicted_rows = info.rows;
        }
        rt->tp_predicted += rt->tp_step;
        if (st == CLPAR_OK) st = maybe_checkpoint(tr, o, &info, every, total);
        if (st != CLPAR_OK) {
            if (tty) printf("\n");
            return st;
        }
        rt->t_train += dt;
        rt->samples += info.rows;
        epoch_samples += info.rows;
        epoch_loss += info.loss * (double)info.rows;
        if (log) {
            fprintf(log, "%ld,%ld,%.6f,%.1f\n", info.step, info.epoch, info.loss,
                    (double)info.rows / dt);
            fflush(log); /* a run can be followed, and what was written survives a kill */
        }
        double sps = (double)rt->samples / rt->t_train;
        if (tty) {
            char left[32];
            format_time((double)(total - info.step) * rt->t_train / (double)info.step, left,
                        sizeof left);
            printf("\repoch %ld  step %ld/%ld  loss %.4f  %.0f samples/s  %s left   ",
                   info.epoch + 1, info.step, total, info.loss, sps, left);
            fflush(stdout);
        } else if (!o->quiet && (info.step % 100 == 0 || info.step == total)) {
            printf("step %ld/%ld epoch %ld loss %.4f %.0f samples/s\n", info.step, total,
                   info.epoch + 1, info.loss, sps);
        }
        if (o->eval_every && info.step % o->eval_every == 0 && !info.epoch_done &&
            info.step != total) {
            double vl, va;
            TRY_STATUS(clpar_trainer_evaluate(tr, test, &vl, &va));
            if (!o->quiet) {
                if (tty) printf("\r\033[K");
                printf("step %ld: test loss %.4f", info.step, vl);
                if (xent && !gpt) printf(", test accuracy %.4f", va);
                printf("\n");
            }
        }
        if (info.epoch_done || info.step == total) {
            double tl, ta;
            TRY_STATUS(clpar_trainer_evaluate(tr, test, &tl, &ta));
            rt->evaluated = info.step == total, rt->eval_loss = tl, rt->eval_acc = ta;
            if (!o->quiet) {
                if (tty) printf("\r\033[K");
                printf("epoch %ld: train loss %.4f, test loss %.4f", info.epoch + 1,
                       epoch_loss / (double)epoch_samples, tl);
                if (xent && !gpt) printf(", test accuracy %.4f", ta);
                printf(", %.1f s\n", cli_now() - t_epoch);
            }
            epoch_samples = 0;
            epoch_loss = 0;
            t_epoch = cli_now();
        }
    }
    return CLPAR_OK;
}

/* The ranks this process holds (all of them in a run of one process). */
static int local_ranks(clpar_mesh *mesh, int *first) {
    int count;
    clpar_mesh_local_ranks(mesh, first, &count);
    return count;
}

/* The rank -> process -> host -> device map: each process describes its own ranks and
 * process 0 prints them all. */
static clpar_status print_ranks(clpar_runtime *rt, clpar_mesh *mesh, const int *devices) {
    enum { LINE = 512 };
    int first, n = local_ranks(mesh, &first), P = procs();
    char *mine = calloc((size_t)n, LINE), *all = calloc((size_t)(n * P), LINE);
    if (!mine || !all) {
        free(mine);
        free(all);
        return cli_error_status(CLPAR_ENOMEM, "out of host memory");
    }
    for (int i = 0; i < n; i++) {
        const clpar_device_info *di = clpar_runtime_device_info(rt, devices[i]);
        clpar_rank_info ri;
        clpar_mesh_rank_info(mesh, first + i, &ri);
        char where[96] = "";
        if (P > 1)
            snprintf(where, sizeof where, "process %d on %s, ", clpar_world_rank(world),
                     clpar_world_host(world, clpar_world_rank(world)));
        size_t bytes = ri.param_bytes + ri.activation_bytes + ri.workspace_bytes;
        snprintf(mine + (size_t)i * LINE, LINE,
                 "  rank %d (replica %d, stage %d layers %d-%d, shard %d): %sdevice %d, %s (%s), "
                 "%.2f MiB (%.2f parameters and state, %.2f activations, %.2f GEMM workspace)",
                 first + i, ri.replica, ri.stage, ri.first_layer, ri.first_layer + ri.layers - 1,
                 ri.shard, where, di->index, di->name, di->platform_name, bytes / 1048576.0,
                 ri.param_bytes / 1048576.0, ri.activation_bytes / 1048576.0,
                 ri.workspace_bytes / 1048576.0);
    }
    clpar_status st = clpar_world_allgather(world, mine, (size_t)n * LINE, all);
    for (int i = 0; i < n * P && st == CLPAR_OK; i++)
        printf("%s\n", all + (size_t)i * LINE);
    free(mine);
    free(all);
    return st;
}

/* How the bytes between processes went, when some went through shared memory (into buf). */
static const char *shared_note(const run_totals *t, char *buf, size_t n) {
    if (t->bytes_shared == 0) return "";
    snprintf(buf, n, ", %s through shared memory (one host)%s",
             t->bytes_shared == t->bytes_sent ? "all" : "some",
             /* process 0's CPU device computes in the shared memory */
             t->floats_in_place ? ", summed in place (no copies)" : "");
    return buf;
}

/* What the parallel parts did: hidden reduction, bytes moved, bubbles, memory. */

static void print_parallel_report(clpar_trainer *tr, const run_totals *t, long steps) {
    clpar_mesh *mesh = clpar_trainer_mesh(tr);
    const clpar_mesh_config *c = clpar_mesh_get_config(mesh);
    clpar_mesh_stats ds;
    clpar_trainer_get_stats(tr, &ds);
    int first, nranks = local_ranks(mesh, &first), P = procs(); /* statistics: this process's */
    char note[96];
    if (t->steps_run > 0)
        printf("round trips: %.1f kernel launches and %.1f host waits per step, %s (a CLBlast "
               "GEMM counts as one launch)\n",
               (double)t->launches / (double)t->steps_run, (double)t->waits / (double)t->steps_run,
               P > 1 ? "process 0's ranks together" : "all ranks together");
    if (P > 1 && t->steps_run > 0 && nranks % (c->pp * c->tp) == 0) {
        /* whole replicas: each process sends the others their parts of its sums, then its
         * summed part */
        clpar_model_spec model = {c->shape, c->gpt};
        double grad = 4.0 * (double)clpar_model_param_count(&model);
        printf("between processes: %.0f bytes sent per step by process 0 (predicted 2 (P-1)/P of "
               "the %.0f gradient bytes = %.0f)%s\n",
               (double)t->bytes_sent / (double)t->steps_run, grad, 2.0 * (P - 1) / P * grad,
               shared_note(t, note, sizeof note));
    } else if (P > 1 && t->steps_run > 0) {
        printf("between processes: %.0f bytes sent per step by process 0 (its share of the "
               "stage hand-offs and reductions)%s\n",
               (double)t->bytes_sent / (double)t->steps_run, shared_note(t, note, sizeof note));
    }
    if (c->dp > 1 && ds.reduce_window_ns > 0)
        printf("gradient reduction: %.1f ms per step per rank, %.0f%% hidden behind backward\n",
               ds.reduce_window_ns / 1e6 / (double)ds.steps / nranks,
               100.0 * (1.0 - ds.reduce_exposed_ns / ds.reduce_window_ns));
    if (c->tp > 1)
        printf(
            "tensor parallel: %.0f bytes moved per step%s (the Megatron pairing predicts %.0f%s)\n",
            (double)t->tp_bytes / (double)steps, P > 1 ? " by process 0's ranks" : "",
            (double)t->tp_predicted / (double)steps, P > 1 ? " for all ranks" : "");
    if (c->pp > 1) {
        printf("pipeline: %s, %d micro-batches, bubble %.1f%% measured in the last step, ideal "
               "(p-1)/(m+p-1) = %.1f%%; %.0f bytes handed between stages per step\n",
               clpar_schedule_name(c->schedule), c->micro, 100.0 * ds.bubble_measured,
               100.0 * ds.bubble_ideal, (double)t->pp_bytes / (double)steps);
        for (int r = 0; r < c->pp * c->tp; r += c->tp) {
            clpar_rank_info ri;
            clpar_mesh_rank_info(mesh, r, &ri);
            if (ri.layers == 0) continue; /* a stage another process holds */
            printf("  stage %d: layers %d-%d, peak activation memory %.1f KiB (%d micro-batch%s)\n",
                   ri.stage, ri.first_layer, ri.first_layer + ri.layers - 1,
                   ri.activation_bytes / 1024.0, ri.activation_slots,
                   ri.activation_slots == 1 ? "" : "es");
        }
    }
}

/* --trace and --timeline. */
static clpar_status write_trace(clpar_mesh *mesh, const train_options *o, const int *devices) {
    const clpar_mesh_config *c = clpar_mesh_get_config(mesh);
    int nranks = c->dp * c->pp * c->tp, nev;
    const clpar_trace_event *ev = clpar_mesh_trace(mesh, &nev);
    char labels[CLPAR_MAX_RANKS][96];
    const char *lp[CLPAR_MAX_RANKS];
    int first, count = local_ranks(mesh, &first); /* a trace holds this process's ranks */
    for (int r = 0; r < nranks; r++) {
        clpar_rank_info ri;
        clpar_mesh_rank_info(mesh, r, &ri);
        int here = r >= first && r < first + count;
        snprintf(labels[r], sizeof labels[r], "rank %d dev %d (d%d p%d t%d)", r,
                 here ? devices[r - first] : -1, ri.replica, ri.stage, ri.shard);
        lp[r] = labels[r];
    }
    if (o->trace) TRY_STATUS(clpar_trace_write_json(o->trace, ev, nev, lp, nranks));
    if (o->timeline) TRY_STATUS(clpar_trace_write_svg(o->timeline, ev, nev, lp, nranks, 2));
    if (!o->quiet)
        printf("wrote%s%s%s%s\n", o->trace ? " " : "", o->trace ? o->trace : "",
               o->timeline ? " " : "", o->timeline ? o->timeline : "");
    return CLPAR_OK;
}

/* The devices and the mesh: --devices, --dp auto, --mesh auto, --balance auto. Returns 0,
 * or the exit status after the error. */
static int place_ranks(clpar_runtime *rt, const train_options *o, clpar_trainer_config *cfg,
                       const clpar_dataset *train_set, int *devices, float *speeds) {
    int ndev = 0;
    clpar_status st = clpar_runtime_parse_spec(rt, o->devices, devices, CLPAR_MAX_RANKS, &ndev);
    if (st != CLPAR_OK) return cli_fail(prog, st);

    if (cfg->dp == 0) /* every process holds replicas of the same size */
        cfg->dp = procs() * (ndev / (cfg->pp * cfg->tp) > 0 ? ndev / (cfg->pp * cfg->tp) : 1);
    cfg->devices = devices;
    cfg->ndevices = ndev;
    if (o->mesh_auto) st = choose_mesh(rt, cfg, train_set->n, o->quiet);
    if (st == CLPAR_OK && o->balance) st = measure_speeds(rt, cfg, speeds, o->quiet);
    return st == CLPAR_OK ? 0 : cli_fail(prog, st);
}

static clpar_status print_header(clpar_runtime *rt, const train_options *o,
                                 const clpar_trainer_config *cfg, clpar_trainer *tr,
                                 const clpar_dataset *train_set, const clpar_dataset *test_set,
                                 const int *devices, long total) {
    char model[512];
    clpar_model_spec spec = {cfg->shape, cfg->gpt};
    clpar_model_format(&spec, model, sizeof model);
    printf("clpar-train: %s, model %s, %zu train / %zu test samples, batch %zu, %ld steps (%ld "
           "per epoch)\n",
           cfg->data, model, train_set->n, test_set->n, cfg->batch, total,
           clpar_trainer_steps_per_epoch(tr));
    clpar_status st = print_ranks(rt, clpar_trainer_mesh(tr), devices);
    if (st != CLPAR_OK) return st;
    if (o->resume)
        printf("resuming %s at step %ld of %ld\n", o->resume, clpar_trainer_steps_done(tr), total);
    return CLPAR_OK;
}

/* With --trace, for an MLP without tensor parallelism: each layer's products per step from
 * the recorded work (forward, input gradient, weight gradient: the GEMM, with the bias,
 * activation or bias gradient that goes with it), their GFLOP/s on the rank's device and
 * the share of that device's peak (measured now, as clpar-devices --bench does). */
static void print_gemm_report(clpar_runtime *rt, clpar_mesh *mesh, size_t batch,
                              const int *devices) {
    const clpar_mesh_config *c = clpar_mesh_get_config(mesh);
    if (c->gpt.layers || c->tp > 1) return;
    int first, nranks = local_ranks(mesh, &first) / c->tp, nev, nopt = 0;
    const clpar_trace_event *ev = clpar_mesh_trace(mesh, &nev);
    double us[CLPAR_MAX_LAYERS][3] = {{0}}; /* F, B, W */
    for (int i = 0; i < nev; i++) {
        /* "F m0 L2", "B m3 L1", "W m0-3 L2" (weight gradients of several micro-batches) */
        const char *l = strrchr(ev[i].name, 'L');
        char ph = ev[i].name[0];
        int layer = -1;
        if (l && sscanf(l, "L%d", &layer) != 1) layer = -1;
        nopt += !strcmp(ev[i].name, "optimizer");
        if (strncmp(ev[i].name + 1, " m", 2) || layer < 0 || layer >= c->shape.nlayers ||
            !strchr("FBW", ph))
            continue;
        us[layer][ph == 'F' ? 0 : ph == 'B' ? 1 : 2] += ev[i].end_us - ev[i].start_us;
    }
    /* under mpirun the events are this process's replicas', which see their share of rows */
    int d0, nrep;
    clpar_mesh_local_replicas(mesh, &d0, &nrep);
    batch = batch * (size_t)nrep / (size_t)c->dp;
    double steps = (double)nopt / nranks, peak = 0;
    if (steps < 1) return;
    clpar_device *d = NULL;
    if (clpar_device_init(rt, devices[0], &d) == CLPAR_OK &&
        clpar_op_measure_peak(d, &peak) != CLPAR_OK)
        peak = 0;
    /* the kernels: the device's configuration, and any product a tuning routes elsewhere */
    clpar_gemm_config base = {CLPAR_GEMM_AUTO, {0}}, route;
    char text[512] = "?";
    if (d && clpar_gemm_route_of(d, NULL, &base) == CLPAR_OK)
        clpar_gemm_config_format(&base, text, sizeof text);
    printf("GEMMs per step, from the trace (%.0f steps; device %d's peak %.1f GFLOP/s; "
           "kernels: %s):\n",
           steps, devices[0], peak, text);
    const char *what[3] = {"forward", "input grad", "weight grad"};
    for (int l = 0; l < c->shape.nlayers; l++)
        for (int p = 0; p < 3; p++) {
            if (p == 1 && l == 0) continue; /* no input gradient for the data */
            double ms = us[l][p] / 1e3 / steps;
            if (ms <= 0) continue; /* nothing recorded */
            double gf = 2.0 * (double)batch * (double)c->shape.sizes[l] *
                        (double)c->shape.sizes[l + 1] / (ms * 1e6);
            printf("  layer %d %-11s %6zu x %5zu x %5zu: %8.3f ms %8.2f GFLOP/s", l, what[p],
                   p == 2 ? c->shape.sizes[l + 1] : batch,
                   p == 1   ? c->shape.sizes[l]
                   : p == 2 ? c->shape.sizes[l]
                            : c->shape.sizes[l + 1],
                   p == 0   ? c->shape.sizes[l]
                   : p == 1 ? c->shape.sizes[l + 1]
                            : batch,
                   ms, gf);
            if (peak > 0) printf(" %5.1f%% of peak", 100.0 * gf / peak);
            size_t in = c->shape.sizes[l], out = c->shape.sizes[l + 1];
            const clpar_gemm_shape sh[3] = {{CLPAR_NO_TRANS, CLPAR_TRANS, batch, out, in},
                                            {CLPAR_NO_TRANS, CLPAR_NO_TRANS, batch, in, out},
                                            {CLPAR_TRANS, CLPAR_NO_TRANS, out, in, batch}};
            if (d && clpar_gemm_route_of(d, &sh[p], &route) == CLPAR_OK &&
                (route.path != base.path || memcmp(route.v, base.v, sizeof route.v))) {
                if (route.path == CLPAR_GEMM_CLPAR)
                    clpar_gemm_config_format(&route, text, sizeof text);
                else
                    snprintf(text, sizeof text, "CLBlast");
                printf("  routed: %s", text);
            }
            printf("\n");
        }
    clpar_device_free(d);
}

/* Trains to the end, evaluates, saves and reports; returns the exit status. */
static int run(clpar_runtime *rt, clpar_trainer *tr, const train_options *o,
               const clpar_trainer_config *cfg, const clpar_dataset *test_set, const int *devices,
               long total, FILE *log) {
    clpar_mesh *mesh = clpar_trainer_mesh(tr);
    if (o->trace || o->timeline) clpar_mesh_set_tracing(mesh, 1);
    run_totals t = {.t_start = cli_now()};
    double tl = 0, ta = 0;
    clpar_status st = train(tr, o, test_set, total, log, &t);
    if (st == CLPAR_OK && t.evaluated) /* the last step's evaluation is the final one */
        tl = t.eval_loss, ta = t.eval_acc;
    else if (st == CLPAR_OK)
        st = clpar_trainer_evaluate(tr, test_set, &tl, &ta);
    if (st == CLPAR_OK && o->save) st = clpar_trainer_save(tr, o->save);
    if (st != CLPAR_OK) return cli_fail(prog, st);
    printf("done: %ld steps in %.1f s", total, cli_now() - t.t_start);
    if (t.samples && t.t_train > 0) { /* a resumed run that was already at its end trained none */
        double sps = (double)t.samples / t.t_train;
        printf(" (%.*f samples/s)", sps < 100 ? 2 : 0, sps);
    }
    printf(", test loss %.4f", tl);
    if (cfg->loss == CLPAR_LOSS_XENT && !cfg->gpt.layers) printf(", test accuracy %.4f", ta);
    printf("\n");
    print_parallel_report(tr, &t, total);
    /* process 0 writes its own ranks' trace */
    if ((o->trace || o->timeline) && clpar_world_rank(world) == 0 &&
        (st = write_trace(mesh, o, devices)) != CLPAR_OK)
        return cli_fail(prog, st);
    if (o->trace && !o->quiet) print_gemm_report(rt, mesh, cfg->batch, devices);
    if (o->save && !o->quiet) printf("saved %s\n", o->save);
    return 0;
}

static int session(int argc, char **argv) {
    train_options o = {.data = "fashion-mnist",
                       .devices = "all",
                       .optim = CLPAR_OPTIM_ADAM,
                       .batch = 128,
                       .dp = 1,
                       .accum = 1,
                       .shuffle = 1,
                       .reduce = CLPAR_REDUCE_MEAN,
                       .tp = 1,
                       .micro = 1,
                       .schedule = CLPAR_SCHEDULE_AUTO};
    cli_set_field_flags(train_options_flag);
    int rc = agree(train_options_parse(argc, argv, &o));
    if (rc || o.help) return rc;
    clpar_trainer_config cfg;
    char data_name[1024];
    if ((rc = agree(configure(&o, &cfg, data_name, sizeof data_name)))) return rc;
    cfg.world = world;
    clpar_dataset train_set, test_set;
    clpar_status st = load_data(cfg.data, cfg.seed, cfg.gpt.ctx, &train_set, &test_set);
    if ((rc = agree(st != CLPAR_OK ? cli_fail(prog, st) : 0))) {
        if (st == CLPAR_OK) { /* another process's data failed */
            clpar_dataset_free(&train_set);
            clpar_dataset_free(&test_set);
        }
        return rc;
    }
    long per_epoch = (long)((train_set.n + cfg.batch - 1) / (cfg.batch ? cfg.batch : 1));
    cfg.total_steps = o.steps    ? o.steps
                      : o.epochs ? o.epochs * per_epoch
                      : o.resume ? cfg.total_steps
                                 : 3 * per_epoch;
    clpar_runtime *rt = NULL;
    clpar_trainer *tr = NULL;
    FILE *log = NULL;
    int devices[CLPAR_MAX_RANKS];
    float speeds[CLPAR_MAX_RANKS];
    int speaker = clpar_world_rank(world) == 0; /* writes the log */
    st = clpar_runtime_init(&rt);
    rc = agree(st != CLPAR_OK ? cli_fail(prog, st) : 0);
    if (!rc) rc = agree(place_ranks(rt, &o, &cfg, &train_set, devices, speeds));
    if (!rc && o.dry_run)
        rc = dry_run(rt, &cfg, &train_set);
    else if (!rc && (st = clpar_trainer_init(rt, &cfg, &train_set, &tr)) != CLPAR_OK)
        rc = agree(cli_fail(prog, st));
    else if (!rc) {
        if (speaker && o.log && !(log = fopen(o.log, "w")))
            rc = fprintf(stderr, "%s: error: %s: cannot open for writing\n", prog, o.log) ? 1 : 1;
        if (!rc && o.resume && (st = clpar_trainer_restore(tr, o.resume)) != CLPAR_OK)
            rc = cli_fail(prog, st);
        rc = agree(rc);
    }
    if (!rc && !o.dry_run) {
        if (log) fprintf(log, "step,epoch,loss,samples_per_sec\n");
        if (!o.quiet &&
            (st = print_header(rt, &o, &cfg, tr, &train_set, &test_set, devices, cfg.total_steps)))
            rc = cli_fail(prog, st);
        if (!rc) rc = run(rt, tr, &o, &cfg, &test_set, devices, cfg.total_steps, log);
        /* a failed step may leave the other processes waiting in a reduction: this one says
         * why (unless all agreed on a failure process 0 reports) and ends them all */
        if (rc && procs() > 1) {
            const char *why = cli_printed_error();
            if (real_stderr >= 0 && strncmp(why, "process ", 8))
                dprintf(real_stderr, "%s: error: process %d (%s): %s\n", prog,
                        clpar_world_rank(world), clpar_world_host(world, clpar_world_rank(world)),
                        why);
            cli_end_processes(rc);
        }
    }
    if (log && fclose(log) != 0 && rc == 0) {
        fprintf(stderr, "%s: error: %s: write failed\n", prog, o.log);
        rc = 1;
    }
    clpar_trainer_free(tr);
    clpar_runtime_free(rt);
    clpar_dataset_free(&train_set);
    clpar_dataset_free(&test_set);
    return rc;
}

int main(int argc, char **argv) {
    clpar_status st = cli_world_start(&world, &real_stderr);
    if (st != CLPAR_OK) return cli_fail(prog, st);
    int rc = session(argc, argv);
    if (real_stderr >= 0) close(real_stderr);
    clpar_world_free(world);
    return rc;
}
