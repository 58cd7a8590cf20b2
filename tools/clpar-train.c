/* clpar-train: trains an MLP on Fashion-MNIST or the synthetic regression set across the
 * OpenCL devices of --devices, with data parallelism and gradient accumulation. */
#include "cli.h"

#include <getopt.h>
#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *prog = "clpar-train";

static void usage(void) {
    printf(
        "usage: clpar-train [options]\n"
        "Trains an MLP (Linear layers with ReLU between them) on OpenCL devices.\n"
        "\n"
        "Data and model:\n"
        "  --data SRC          fashion-mnist (default; " CLPAR_FASHION_MNIST_DIR "),\n"
        "                      synthetic (the seed's 10-input, 5-target regression), or a\n"
        "                      folder holding Fashion-MNIST's IDX files (.gz or plain)\n"
        "  --model SIZES       layer sizes, default 784,256,128,10 (synthetic: 10,5)\n"
        "  --loss xent|mse     default xent (synthetic: mse)\n"
        "  --init FILE         start from a safetensors model (PyTorch nn.Sequential names)\n"
        "  --save FILE         write the trained model as safetensors\n"
        "Optimization:\n"
        "  --optim sgd|adam|adamw   default adam\n"
        "  --lr X              learning rate (default 1e-3; sgd: 0.01)\n"
        "  --momentum X        SGD momentum (default 0)\n"
        "  --weight-decay X    default 0 (adamw: 0.01)\n"
        "  --batch B           global batch of one optimizer step (default 128)\n"
        "  --epochs E          epochs (default 3), or\n"
        "  --steps S           optimizer steps in total\n"
        "  --seed N            initialization, shuffling and synthetic data (default 0)\n"
        "  --shuffle on|off    default on\n"
        "Parallelism:\n"
        "  --devices SPEC      all (default), cpu, gpu, or indices such as 0,1 or 0,0,0;\n"
        "                      rank i runs on the i-th device of the spec\n"
        "  --dp N|auto         data-parallel replicas (default 1; auto: one per device)\n"
        "  --tp N              tensor-parallel shards of every layer (default 1)\n"
        "  --pp N              pipeline stages of consecutive layers (default 1)\n"
        "  --stages A,B,...    layers per stage (default: balanced by FLOPs)\n"
        "  --micro-batches M   micro-batches per replica and step (default 1)\n"
        "  --schedule gpipe|1f1b|auto  pipeline schedule (default auto: gpipe when all M\n"
        "                      micro-batches fit in half of each device's memory)\n"
        "  --accum K           gradient accumulation: K times the micro-batches (default 1)\n"
        "  --grad-reduce mean|sum  mean of the batch (default) or sum of micro-batch means\n"
        "  --mesh auto         the mesh the planner predicts fastest on the devices\n"
        "  --balance auto|equal  auto: work in proportion to each device's measured speed\n"
        "  --dry-run           print the plan (ranks, devices, memory, bytes) and exit\n"
        "Output:\n"
        "  --log FILE.csv      one row per step: step,epoch,loss,samples_per_sec\n"
        "  --checkpoint FILE   write the whole training state (model, optimizer, data position)\n"
        "                      every --checkpoint-every N steps (default: every epoch) and at\n"
        "                      the end, atomically\n"
        "  --resume FILE       continue a checkpointed run to its original total, on any mesh\n"
        "  --trace FILE.json   Chrome trace of what ran where (Perfetto, chrome://tracing)\n"
        "  --timeline FILE.svg the last steps as a picture, a lane per device and queue\n"
        "  --quiet             only the final summary\n"
        "  --help\n"
        "\n"
        "Several PoCL devices on one CPU: POCL_DEVICES=\"pthread pthread\" "
        "POCL_MAX_PTHREAD_COUNT=1 clpar-train --dp 2\n");
}

typedef struct {
    const char *data, *model, *init, *save, *log, *devices, *trace, *timeline, *stages;
    const char *checkpoint, *resume;
    long checkpoint_every;
    int batch_set, optim_set, data_set, mesh_auto, dry_run, balance;
    clpar_optim_kind optim;
    double lr, momentum, weight_decay;
    int lr_set, wd_set, loss_set;
    clpar_loss_kind loss;
    long batch, epochs, steps, seed, dp, accum, pp, tp, micro;
    clpar_schedule schedule;
    int shuffle, quiet;
    clpar_reduce_mode reduce;
} options;

enum {
    O_DATA = 256,
    O_MODEL,
    O_LOSS,
    O_OPTIM,
    O_LR,
    O_MOM,
    O_WD,
    O_BATCH,
    O_EPOCHS,
    O_STEPS,
    O_SEED,
    O_SHUFFLE,
    O_DEVICES,
    O_INIT,
    O_SAVE,
    O_LOG,
    O_DP,
    O_ACCUM,
    O_REDUCE,
    O_QUIET,
    O_HELP,
    O_PP,
    O_TP,
    O_MICRO,
    O_SCHEDULE,
    O_STAGES,
    O_TRACE,
    O_TIMELINE,
    O_CHECKPOINT,
    O_CHECKPOINT_EVERY,
    O_RESUME,
    O_MESH,
    O_DRY_RUN,
    O_BALANCE
};

static int parse_options(int argc, char **argv, options *o) {
    static const struct option opts[] = {
        {"data", required_argument, 0, O_DATA},
        {"model", required_argument, 0, O_MODEL},
        {"loss", required_argument, 0, O_LOSS},
        {"optim", required_argument, 0, O_OPTIM},
        {"lr", required_argument, 0, O_LR},
        {"momentum", required_argument, 0, O_MOM},
        {"weight-decay", required_argument, 0, O_WD},
        {"batch", required_argument, 0, O_BATCH},
        {"epochs", required_argument, 0, O_EPOCHS},
        {"steps", required_argument, 0, O_STEPS},
        {"seed", required_argument, 0, O_SEED},
        {"shuffle", required_argument, 0, O_SHUFFLE},
        {"devices", required_argument, 0, O_DEVICES},
        {"init", required_argument, 0, O_INIT},
        {"save", required_argument, 0, O_SAVE},
        {"log", required_argument, 0, O_LOG},
        {"dp", required_argument, 0, O_DP},
        {"accum", required_argument, 0, O_ACCUM},
        {"grad-reduce", required_argument, 0, O_REDUCE},
        {"quiet", no_argument, 0, O_QUIET},
        {"help", no_argument, 0, O_HELP},
        {"pp", required_argument, 0, O_PP},
        {"tp", required_argument, 0, O_TP},
        {"micro-batches", required_argument, 0, O_MICRO},
        {"schedule", required_argument, 0, O_SCHEDULE},
        {"stages", required_argument, 0, O_STAGES},
        {"trace", required_argument, 0, O_TRACE},
        {"timeline", required_argument, 0, O_TIMELINE},
        {"checkpoint", required_argument, 0, O_CHECKPOINT},
        {"checkpoint-every", required_argument, 0, O_CHECKPOINT_EVERY},
        {"resume", required_argument, 0, O_RESUME},
        {"mesh", required_argument, 0, O_MESH},
        {"dry-run", no_argument, 0, O_DRY_RUN},
        {"balance", required_argument, 0, O_BALANCE},
        {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_DATA:
            o->data = optarg;
            o->data_set = 1;
            break;
        case O_MODEL:
            o->model = optarg;
            break;
        case O_LOSS:
            if (!strcmp(optarg, "xent"))
                o->loss = CLPAR_LOSS_XENT;
            else if (!strcmp(optarg, "mse"))
                o->loss = CLPAR_LOSS_MSE;
            else
                return cli_usage_error(prog, "--loss must be xent or mse, got '%s'", optarg);
            o->loss_set = 1;
            break;
        case O_OPTIM:
            o->optim_set = 1;
            if (clpar_optim_kind_parse(optarg, &o->optim) != CLPAR_OK)
                return cli_usage_error(prog, "--optim must be sgd, adam or adamw, got '%s'",
                                       optarg);
            break;
        case O_LR:
            if (cli_double(prog, "--lr", optarg, 0, &o->lr)) return 2;
            o->lr_set = 1;
            break;
        case O_MOM:
            if (cli_double(prog, "--momentum", optarg, 0, &o->momentum)) return 2;
            break;
        case O_WD:
            if (cli_double(prog, "--weight-decay", optarg, 0, &o->weight_decay)) return 2;
            o->wd_set = 1;
            break;
        case O_BATCH:
            if (cli_long(prog, "--batch", optarg, 1, 1L << 24, &o->batch)) return 2;
            o->batch_set = 1;
            break;
        case O_EPOCHS:
            if (cli_long(prog, "--epochs", optarg, 1, 1L << 20, &o->epochs)) return 2;
            break;
        case O_STEPS:
            if (cli_long(prog, "--steps", optarg, 1, 1L << 40, &o->steps)) return 2;
            break;
        case O_SEED:
            if (cli_long(prog, "--seed", optarg, 0, 1L << 62, &o->seed)) return 2;
            break;
        case O_SHUFFLE:
            if (!strcmp(optarg, "on"))
                o->shuffle = 1;
            else if (!strcmp(optarg, "off"))
                o->shuffle = 0;
            else
                return cli_usage_error(prog, "--shuffle must be on or off, got '%s'", optarg);
            break;
        case O_DEVICES:
            o->devices = optarg;
            break;
        case O_INIT:
            o->init = optarg;
            break;
        case O_SAVE:
            o->save = optarg;
            break;
        case O_LOG:
            o->log = optarg;
            break;
        case O_DP:
            if (!strcmp(optarg, "auto"))
                o->dp = 0; /* one replica per device of the spec */
            else if (cli_long(prog, "--dp", optarg, 1, 64, &o->dp))
                return 2;
            break;
        case O_ACCUM:
            if (cli_long(prog, "--accum", optarg, 1, 1L << 20, &o->accum)) return 2;
            break;
        case O_REDUCE:
            if (!strcmp(optarg, "mean"))
                o->reduce = CLPAR_REDUCE_MEAN;
            else if (!strcmp(optarg, "sum"))
                o->reduce = CLPAR_REDUCE_SUM;
            else
                return cli_usage_error(prog, "--grad-reduce must be mean or sum, got '%s'", optarg);
            break;
        case O_QUIET:
            o->quiet = 1;
            break;
        case O_PP:
            if (cli_long(prog, "--pp", optarg, 1, CLPAR_MAX_LAYERS, &o->pp)) return 2;
            break;
        case O_TP:
            if (cli_long(prog, "--tp", optarg, 1, 256, &o->tp)) return 2;
            break;
        case O_MICRO:
            if (cli_long(prog, "--micro-batches", optarg, 1, 1L << 20, &o->micro)) return 2;
            break;
        case O_SCHEDULE:
            if (!strcmp(optarg, "gpipe"))
                o->schedule = CLPAR_SCHEDULE_GPIPE;
            else if (!strcmp(optarg, "1f1b"))
                o->schedule = CLPAR_SCHEDULE_1F1B;
            else if (!strcmp(optarg, "auto"))
                o->schedule = CLPAR_SCHEDULE_AUTO;
            else
                return cli_usage_error(prog, "--schedule must be gpipe, 1f1b or auto, got '%s'",
                                       optarg);
            break;
        case O_STAGES:
            o->stages = optarg;
            break;
        case O_TRACE:
            o->trace = optarg;
            break;
        case O_TIMELINE:
            o->timeline = optarg;
            break;
        case O_CHECKPOINT:
            o->checkpoint = optarg;
            break;
        case O_CHECKPOINT_EVERY:
            if (cli_long(prog, "--checkpoint-every", optarg, 1, 1L << 40, &o->checkpoint_every))
                return 2;
            break;
        case O_RESUME:
            o->resume = optarg;
            break;
        case O_MESH:
            if (strcmp(optarg, "auto"))
                return cli_usage_error(prog, "--mesh takes 'auto', got '%s'", optarg);
            o->mesh_auto = 1;
            break;
        case O_DRY_RUN:
            o->dry_run = 1;
            break;
        case O_BALANCE:
            if (!strcmp(optarg, "auto"))
                o->balance = 1;
            else if (!strcmp(optarg, "equal"))
                o->balance = 0;
            else
                return cli_usage_error(prog, "--balance must be auto or equal, got '%s'", optarg);
            break;
        case O_HELP:
            usage();
            exit(0);
        default:
            if (optopt) return cli_usage_error(prog, "option '%s' needs a value", argv[optind - 1]);
            return cli_usage_error(prog, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error(prog, "unexpected argument '%s'", argv[optind]);
    return 0;
}

static clpar_status load_data(const options *o, clpar_dataset *train, clpar_dataset *test) {
    if (!strcmp(o->data, "synthetic"))
        return clpar_dataset_synthetic((uint64_t)o->seed, 1000, 200, train, test);
    const char *dir = strcmp(o->data, "fashion-mnist") ? o->data : CLPAR_FASHION_MNIST_DIR;
    return clpar_dataset_load_fashion_mnist(dir, train, test);
}

/* The options a checkpoint fixes: the model, the data and its order, the optimizer, the total
 * length. Given again on the command line they must agree with it. */
static int apply_checkpoint_options(options *o, clpar_st **keep) {
    clpar_st *st;
    if (clpar_st_read(o->resume, &st) != CLPAR_OK) return cli_fail(prog, CLPAR_EFORMAT);
    *keep = st; /* its strings are used as option values */
    const char *keys[] = {"clpar.model",        "clpar.data",        "clpar.loss",
                          "clpar.optim",        "clpar.lr",          "clpar.momentum",
                          "clpar.weight_decay", "clpar.batch",       "clpar.seed",
                          "clpar.shuffle",      "clpar.grad_reduce", "clpar.total_steps"};
    const char *v[12];
    for (int i = 0; i < 12; i++)
        if (!(v[i] = clpar_st_metadata(st, keys[i]))) {
            fprintf(stderr, "%s: error: %s: not a clpar checkpoint (no %s in __metadata__)\n", prog,
                    o->resume, keys[i]);
            return 1;
        }
    if (o->model && strcmp(o->model, v[0])) {
        fprintf(stderr, "%s: error: --model %s differs from the model %s of checkpoint %s\n", prog,
                o->model, v[0], o->resume);
        return 1;
    }
    if ((o->data_set && strcmp(o->data, v[1])) || (o->batch_set && o->batch != atol(v[7]))) {
        fprintf(stderr, "%s: error: --data and --batch must match checkpoint %s (%s, batch %s)\n",
                prog, o->resume, v[1], v[7]);
        return 1;
    }
    o->model = v[0];
    o->data = v[1];
    o->loss = strcmp(v[2], "mse") ? CLPAR_LOSS_XENT : CLPAR_LOSS_MSE;
    o->loss_set = 1;
    if (clpar_optim_kind_parse(v[3], &o->optim) != CLPAR_OK) return cli_fail(prog, CLPAR_EFORMAT);
    o->lr = strtod(v[4], NULL), o->lr_set = 1;
    o->momentum = strtod(v[5], NULL);
    o->weight_decay = strtod(v[6], NULL), o->wd_set = 1;
    o->batch = atol(v[7]);
    o->seed = atol(v[8]);
    o->shuffle = atoi(v[9]);
    o->reduce = strcmp(v[10], "sum") ? CLPAR_REDUCE_MEAN : CLPAR_REDUCE_SUM;
    o->steps = atol(v[11]);
    o->epochs = 0;
    return 0;
}

/* --mesh auto: the planner's best mesh for the devices of the spec. */
static clpar_status choose_mesh(clpar_runtime *rt, clpar_trainer_config *cfg, size_t nsamples,
                                int quiet) {
    int n = cfg->ndevices < 64 ? cfg->ndevices : 64;
    clpar_device_measure m[64];
    clpar_status st = CLPAR_OK;
    for (int i = 0; i < n && st == CLPAR_OK; i++)
        st = clpar_planner_measure(rt, cfg->devices[i], &cfg->shape, cfg->batch, 0, &m[i]);
    clpar_mesh_config base;
    cfg->dp = cfg->pp = cfg->tp = 1;
    if (st == CLPAR_OK) st = clpar_trainer_mesh_config(cfg, nsamples, &base);
    clpar_plan best;
    int count;
    if (st == CLPAR_OK) st = clpar_planner_plan(&base, m, n, &best, 1, &count);
    if (st != CLPAR_OK) return st;
    cfg->dp = best.cfg.dp, cfg->pp = best.cfg.pp, cfg->tp = best.cfg.tp;
    cfg->accum = 1;
    cfg->micro_batches = best.cfg.micro;
    memcpy(cfg->stage_layers, best.cfg.stage_layers, sizeof cfg->stage_layers);
    if (!quiet)
        printf("mesh auto: dp %d x pp %d x tp %d, %d micro-batches (predicted %.1f ms per step, "
               "best of %d meshes)\n",
               cfg->dp, cfg->pp, cfg->tp, best.cfg.micro, best.step_s * 1e3, count);
    return CLPAR_OK;
}

/* --balance auto: each rank's speed is its device's measured throughput on the model. */
static clpar_status measure_speeds(clpar_runtime *rt, clpar_trainer_config *cfg, float *speeds,
                                   int quiet) {
    int n = cfg->dp * cfg->pp * cfg->tp;
    if (n > cfg->ndevices || n > 256) return CLPAR_OK; /* the trainer says what is wrong */
    for (int r = 0; r < n; r++) {
        clpar_device_measure m;
        clpar_status st =
            clpar_planner_measure(rt, cfg->devices[r], &cfg->shape, cfg->batch, 0, &m);
        if (st != CLPAR_OK) return st;
        speeds[r] = (float)m.gflops;
        if (!quiet)
            printf("balance: rank %d on device %d runs %.2f GFLOP/s\n", r, cfg->devices[r],
                   m.gflops);
    }
    cfg->speeds = speeds;
    return CLPAR_OK;
}

/* --dry-run: the plan, without training. */
static int dry_run(clpar_runtime *rt, const clpar_trainer_config *cfg, const clpar_dataset *ds) {
    clpar_mesh_config mc;
    clpar_status st = clpar_trainer_mesh_config(cfg, ds->n, &mc);
    if (st != CLPAR_OK) return cli_fail(prog, st);
    int n = mc.dp * mc.pp * mc.tp;
    if (n > cfg->ndevices) {
        fprintf(stderr, "%s: error: %d ranks need %d devices, but the device spec names %d\n", prog,
                n, n, cfg->ndevices);
        return 1;
    }
    uint64_t memory[256];
    for (int r = 0; r < n; r++)
        memory[r] = clpar_runtime_device_info(rt, cfg->devices[r])->global_mem;
    int chosen = mc.schedule == CLPAR_SCHEDULE_AUTO;
    mc.schedule = clpar_mesh_choose_schedule(&mc, memory);
    char sizes[512];
    clpar_mlp_shape_format(&mc.shape, sizes, sizeof sizes);
    printf("plan: model %s, batch %zu, mesh dp %d x pp %d x tp %d, %d micro-batches per replica, "
           "%s%s\n",
           sizes, mc.max_batch, mc.dp, mc.pp, mc.tp, mc.micro,
           mc.schedule == CLPAR_SCHEDULE_GPIPE ? "gpipe" : "1f1b", chosen ? " (auto)" : "");
    printf("data-parallel shards:");
    for (int d = 0; d < mc.dp; d++) {
        size_t first, count;
        clpar_mesh_replica_rows(&mc, mc.max_batch, d, &first, &count);
        printf(" %zu", count);
    }
    printf(" rows\n");
    size_t worst = 0;
    for (int r = 0; r < n; r++) {
        clpar_rank_info ri;
        clpar_mesh_plan_rank(&mc, r, &ri);
        const clpar_device_info *di = clpar_runtime_device_info(rt, cfg->devices[r]);
        size_t bytes = ri.param_bytes + ri.activation_bytes;
        if (bytes > worst) worst = bytes;
        printf("  rank %d -> device %d (%s): replica %d, stage %d (layers %d-%d), shard %d: %zu "
               "parameters, %.2f MiB predicted (%.2f parameters and state, %.2f activations, "
               "%d micro-batch slots)\n",
               r, di->index, di->name, ri.replica, ri.stage, ri.first_layer,
               ri.first_layer + ri.layers - 1, ri.shard, ri.param_count, bytes / 1048576.0,
               ri.param_bytes / 1048576.0, ri.activation_bytes / 1048576.0, ri.activation_slots);
    }
    printf("bytes moved per step: tensor parallel %llu (predicted), pipeline bubble %.1f%% "
           "(ideal (p-1)/(m+p-1)), largest rank %.2f MiB\n",
           (unsigned long long)clpar_mesh_predicted_tp_bytes(&mc, mc.max_batch),
           100.0 * (mc.pp - 1) / (mc.micro + mc.pp - 1), worst / 1048576.0);
    return 0;
}

static void format_time(double s, char *buf, size_t n) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

int main(int argc, char **argv) {
    options o = {.data = "fashion-mnist",
                 .devices = "all",
                 .optim = CLPAR_OPTIM_ADAM,
                 .batch = 128,
                 .epochs = 0,
                 .dp = 1,
                 .accum = 1,
                 .shuffle = 1,
                 .reduce = CLPAR_REDUCE_MEAN,
                 .tp = 1,
                 .micro = 1,
                 .schedule = CLPAR_SCHEDULE_AUTO};
    int rc = parse_options(argc, argv, &o);
    if (rc) return rc;
    clpar_st *resume_st = NULL;
    if (o.resume && (rc = apply_checkpoint_options(&o, &resume_st))) return rc;
    if (o.steps && o.epochs) return cli_usage_error(prog, "give --epochs or --steps, not both");
    if (!o.steps && !o.epochs) o.epochs = 3;
    int synthetic = !strcmp(o.data, "synthetic");
    if (!o.model) o.model = synthetic ? "10,5" : "784,256,128,10";
    if (!o.loss_set) o.loss = synthetic ? CLPAR_LOSS_MSE : CLPAR_LOSS_XENT;

    clpar_trainer_config cfg;
    memset(&cfg, 0, sizeof cfg);
    clpar_status st = clpar_mlp_shape_parse(&cfg.shape, o.model);
    if (st != CLPAR_OK) return cli_usage_error(prog, "--model: %s", clpar_last_error());
    cfg.loss = o.loss;
    cfg.optim = clpar_optim_defaults(o.optim);
    cfg.optim.lr = o.lr_set ? (float)o.lr : (o.optim == CLPAR_OPTIM_SGD ? 0.01f : 1e-3f);
    cfg.optim.momentum = (float)o.momentum;
    if (o.wd_set) cfg.optim.weight_decay = (float)o.weight_decay;
    cfg.reduce = o.reduce;
    cfg.batch = (size_t)o.batch;
    cfg.dp = (int)o.dp;
    cfg.accum = (int)o.accum;
    cfg.tp = (int)o.tp;
    cfg.micro_batches = (int)o.micro;
    cfg.schedule = o.schedule;
    if (o.stages) {
        clpar_mlp_shape st_list; /* the same syntax as a size list: positive integers */
        char buf[512];
        snprintf(buf, sizeof buf, "1,%s", o.stages);
        if (clpar_mlp_shape_parse(&st_list, buf) != CLPAR_OK)
            return cli_usage_error(prog, "--stages '%s': expected layer counts like 2,1,1",
                                   o.stages);
        if (o.pp && o.pp != st_list.nlayers)
            return cli_usage_error(prog, "--stages lists %d stages but --pp is %ld",
                                   st_list.nlayers, o.pp);
        o.pp = st_list.nlayers;
        for (int p = 0; p < st_list.nlayers; p++)
            cfg.stage_layers[p] = (int)st_list.sizes[p + 1];
    }
    cfg.pp = o.pp ? (int)o.pp : 1;
    cfg.shuffle = o.shuffle;
    cfg.seed = (uint64_t)o.seed;
    cfg.init_path = o.init;

    clpar_dataset train, test;
    st = load_data(&o, &train, &test);
    if (st != CLPAR_OK) return cli_fail(prog, st);
    clpar_runtime *rt = NULL;
    clpar_trainer *tr = NULL;
    FILE *log = NULL;
    int devices[256], ndev = 0;
    float speeds[256];
    st = clpar_runtime_init(&rt);
    if (st == CLPAR_OK) st = clpar_runtime_parse_spec(rt, o.devices, devices, 256, &ndev);
    if (st == CLPAR_OK) {
        if (cfg.dp == 0) cfg.dp = ndev / (cfg.pp * cfg.tp) > 0 ? ndev / (cfg.pp * cfg.tp) : 1;
        cfg.devices = devices;
        cfg.ndevices = ndev;
        if (o.mesh_auto) st = choose_mesh(rt, &cfg, train.n, o.quiet);
        if (st == CLPAR_OK && o.balance) st = measure_speeds(rt, &cfg, speeds, o.quiet);
        if (st == CLPAR_OK && o.dry_run) {
            rc = dry_run(rt, &cfg, &train);
            goto done;
        }
        if (st == CLPAR_OK) st = clpar_trainer_init(rt, &cfg, &train, &tr);
    }
    if (st != CLPAR_OK) {
        rc = cli_fail(prog, st);
        goto done;
    }
    if (o.log && !(log = fopen(o.log, "w"))) {
        fprintf(stderr, "%s: error: %s: cannot open for writing\n", prog, o.log);
        rc = 1;
        goto done;
    }
    if (log) fprintf(log, "step,epoch,loss,samples_per_sec\n");
    if (o.resume && (st = clpar_trainer_restore(tr, o.resume)) != CLPAR_OK) {
        rc = cli_fail(prog, st);
        goto done;
    }

    long per_epoch = clpar_trainer_steps_per_epoch(tr);
    long total = o.steps ? o.steps : o.epochs * per_epoch;
    int tty = isatty(STDOUT_FILENO) && !o.quiet;
    if (!o.quiet) {
        printf("clpar-train: %s, model %s, %zu train / %zu test samples, batch %ld, %ld steps "
               "(%ld per epoch)\n",
               synthetic ? "synthetic" : "fashion-mnist", o.model, train.n, test.n, o.batch, total,
               per_epoch);
        clpar_mesh *mesh = clpar_trainer_mesh(tr);
        for (int r = 0; r < cfg.dp * cfg.pp * cfg.tp; r++) {
            const clpar_device_info *di = clpar_runtime_device_info(rt, devices[r]);
            clpar_rank_info ri;
            clpar_mesh_rank_info(mesh, r, &ri);
            printf("  rank %d (replica %d, stage %d layers %d-%d, shard %d): device %d, %s (%s)\n",
                   r, ri.replica, ri.stage, ri.first_layer, ri.first_layer + ri.layers - 1,
                   ri.shard, di->index, di->name, di->platform_name);
        }
    }
    clpar_mesh *mesh = clpar_trainer_mesh(tr);
    if (o.trace || o.timeline) clpar_mesh_set_tracing(mesh, 1);
    uint64_t tp_bytes = 0, tp_predicted = 0, pp_bytes = 0;
    double t_start = cli_now(), t_train = 0;
    size_t samples = 0, epoch_samples = 0;
    double epoch_loss = 0, t_epoch = cli_now();
    if (o.resume && !o.quiet)
        printf("resuming %s at step %ld of %ld\n", o.resume, clpar_trainer_steps_done(tr), total);
    long every = o.checkpoint_every ? o.checkpoint_every : per_epoch;
    const char *kill_after = getenv("CLPAR_KILL_AFTER_STEP"); /* for the crash test */
    for (long s = clpar_trainer_steps_done(tr); s < total; s++) {
        clpar_step_info info;
        clpar_mesh_stats before, after;
        clpar_mesh_get_stats(mesh, &before);
        double t0 = cli_now();
        st = clpar_trainer_step(tr, &info);
        double dt = cli_now() - t0;
        clpar_mesh_get_stats(mesh, &after);
        tp_bytes += after.bytes_tp - before.bytes_tp;
        pp_bytes += after.bytes_pp - before.bytes_pp;
        tp_predicted += clpar_mesh_predicted_tp_bytes(clpar_mesh_get_config(mesh), info.rows);
        if (st != CLPAR_OK) {
            if (tty) printf("\n");
            rc = cli_fail(prog, st);
            goto done;
        }
        t_train += dt;
        samples += info.rows;
        epoch_samples += info.rows;
        epoch_loss += info.loss * (double)info.rows;
        double sps = (double)info.rows / dt;
        if (log) fprintf(log, "%ld,%ld,%.6f,%.1f\n", info.step, info.epoch, info.loss, sps);
        if (o.checkpoint && (info.step % every == 0 || info.step == total)) {
            char lr[32], mom[32], wd[32], batch[32], seed[32], shuffle[8], steps[32];
            snprintf(lr, sizeof lr, "%.9g", (double)cfg.optim.lr);
            snprintf(mom, sizeof mom, "%.9g", (double)cfg.optim.momentum);
            snprintf(wd, sizeof wd, "%.9g", (double)cfg.optim.weight_decay);
            snprintf(batch, sizeof batch, "%ld", o.batch);
            snprintf(seed, sizeof seed, "%ld", o.seed);
            snprintf(shuffle, sizeof shuffle, "%d", o.shuffle);
            snprintf(steps, sizeof steps, "%ld", total);
            const char *optims[] = {"sgd", "adam", "adamw"};
            const char *meta[] = {
                "clpar.data",         o.data,
                "clpar.loss",         cfg.loss == CLPAR_LOSS_MSE ? "mse" : "xent",
                "clpar.optim",        optims[cfg.optim.kind],
                "clpar.lr",           lr,
                "clpar.momentum",     mom,
                "clpar.weight_decay", wd,
                "clpar.batch",        batch,
                "clpar.seed",         seed,
                "clpar.shuffle",      shuffle,
                "clpar.grad_reduce",  cfg.reduce == CLPAR_REDUCE_SUM ? "sum" : "mean",
                "clpar.total_steps",  steps};
            st = clpar_trainer_checkpoint(tr, o.checkpoint, meta, 11);
            if (st != CLPAR_OK) {
                if (tty) printf("\n");
                rc = cli_fail(prog, st);
                goto done;
            }
        }
        if (kill_after && info.step == atol(kill_after)) raise(SIGKILL);
        if (tty) {
            char left[32];
            format_time((double)(total - info.step) * t_train / (double)info.step, left,
                        sizeof left);
            printf("\repoch %ld  step %ld/%ld  loss %.4f  %.0f samples/s  %s left   ",
                   info.epoch + 1, info.step, total, info.loss, (double)samples / t_train, left);
            fflush(stdout);
        } else if (!o.quiet && (info.step % 100 == 0 || info.step == total)) {
            printf("step %ld/%ld epoch %ld loss %.4f %.0f samples/s\n", info.step, total,
                   info.epoch + 1, info.loss, (double)samples / t_train);
        }
        if (info.epoch_done || info.step == total) {
            double tl, ta;
            st = clpar_trainer_evaluate(tr, &test, &tl, &ta);
            if (st != CLPAR_OK) {
                rc = cli_fail(prog, st);
                goto done;
            }
            if (!o.quiet) {
                if (tty) printf("\r\033[K");
                printf("epoch %ld: train loss %.4f, test loss %.4f", info.epoch + 1,
                       epoch_loss / (double)epoch_samples, tl);
                if (cfg.loss == CLPAR_LOSS_XENT) printf(", test accuracy %.4f", ta);
                printf(", %.1f s\n", cli_now() - t_epoch);
            }
            epoch_samples = 0;
            epoch_loss = 0;
            t_epoch = cli_now();
        }
    }
    double tl, ta;
    st = clpar_trainer_evaluate(tr, &test, &tl, &ta);
    if (st == CLPAR_OK && o.save) st = clpar_trainer_save(tr, o.save);
    if (st != CLPAR_OK) {
        rc = cli_fail(prog, st);
        goto done;
    }
    printf("done: %ld steps in %.1f s (%.0f samples/s), test loss %.4f", total, cli_now() - t_start,
           (double)samples / t_train, tl);
    if (cfg.loss == CLPAR_LOSS_XENT) printf(", test accuracy %.4f", ta);
    printf("\n");
    clpar_mesh_stats ds;
    clpar_trainer_get_stats(tr, &ds);
    int nranks = cfg.dp * cfg.pp * cfg.tp;
    if (cfg.dp > 1 && ds.reduce_window_ns > 0)
        printf("gradient reduction: %.1f ms per step per rank, %.0f%% hidden behind backward\n",
               ds.reduce_window_ns / 1e6 / (double)ds.steps / nranks,
               100.0 * (1.0 - ds.reduce_exposed_ns / ds.reduce_window_ns));
    if (cfg.tp > 1)
        printf("tensor parallel: %.0f bytes moved per step (the Megatron pairing predicts %.0f)\n",
               (double)tp_bytes / (double)total, (double)tp_predicted / (double)total);
    if (cfg.pp > 1) {
        printf("pipeline: %s, %d micro-batches, bubble %.1f%% measured in the last step, ideal "
               "(p-1)/(m+p-1) = %.1f%%; %.0f bytes handed between stages per step\n",
               clpar_mesh_get_config(mesh)->schedule == CLPAR_SCHEDULE_GPIPE ? "gpipe" : "1f1b",
               cfg.accum * cfg.micro_batches, 100.0 * ds.bubble_measured, 100.0 * ds.bubble_ideal,
               (double)pp_bytes / (double)total);
        for (int r = 0; r < cfg.pp * cfg.tp; r += cfg.tp) {
            clpar_rank_info ri;
            clpar_mesh_rank_info(mesh, r, &ri);
            printf("  stage %d: layers %d-%d, peak activation memory %.1f KiB (%d micro-batch%s)\n",
                   ri.stage, ri.first_layer, ri.first_layer + ri.layers - 1,
                   ri.activation_bytes / 1024.0, ri.activation_slots,
                   ri.activation_slots == 1 ? "" : "es");
        }
    }
    if (o.trace || o.timeline) {
        int nev;
        const clpar_trace_event *ev = clpar_mesh_trace(mesh, &nev);
        char labels[256][96];
        const char *lp[256];
        for (int r = 0; r < nranks && r < 256; r++) {
            clpar_rank_info ri;
            clpar_mesh_rank_info(mesh, r, &ri);
            snprintf(labels[r], sizeof labels[r], "rank %d dev %d (d%d p%d t%d)", r, devices[r],
                     ri.replica, ri.stage, ri.shard);
            lp[r] = labels[r];
        }
        if (o.trace) st = clpar_trace_write_json(o.trace, ev, nev, lp, nranks);
        if (st == CLPAR_OK && o.timeline)
            st = clpar_trace_write_svg(o.timeline, ev, nev, lp, nranks, 2);
        if (st != CLPAR_OK) {
            rc = cli_fail(prog, st);
            goto done;
        }
        if (!o.quiet)
            printf("wrote%s%s%s%s\n", o.trace ? " " : "", o.trace ? o.trace : "",
                   o.timeline ? " " : "", o.timeline ? o.timeline : "");
    }
    if (o.save && !o.quiet) printf("saved %s\n", o.save);
done:
    if (log && fclose(log) != 0 && rc == 0) {
        fprintf(stderr, "%s: error: %s: write failed\n", prog, o.log);
        rc = 1;
    }
    clpar_trainer_free(tr);
    clpar_runtime_free(rt);
    clpar_dataset_free(&train);
    clpar_dataset_free(&test);
    clpar_st_free(resume_st);
    return rc;
}
