/* clpar-train's option table and what is driven by it: getopt's list, parsing with one-line
 * errors, the --help text, and the flag for each configuration field. */
#include "train_options.h"

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

typedef enum { K_FLAG, K_LONG, K_REAL, K_TEXT, K_WORD, K_ENUM } opt_kind;

typedef struct {
    const char *section; /* starts a group in --help */
    const char *name, *arg, *help;
    opt_kind kind;
    size_t offset;            /* of the value in train_options */
    long min, max;            /* K_LONG (max 0: no upper bound); K_REAL: min */
    const char *auto_word;    /* K_LONG: a word that stands for 0 */
    const char *const *words; /* K_WORD: the words, stored as their index */
    clpar_status (*parse)(const char *, train_options *); /* K_ENUM */
    const char *fields; /* configuration fields it sets, space-separated */
} opt_def;

#define AT(f) offsetof(train_options, f)

static clpar_status parse_loss(const char *s, train_options *o) {
    return clpar_loss_kind_parse(s, &o->loss);
}
static clpar_status parse_optim(const char *s, train_options *o) {
    return clpar_optim_kind_parse(s, &o->optim);
}
static clpar_status parse_reduce(const char *s, train_options *o) {
    return clpar_reduce_mode_parse(s, &o->reduce);
}
static clpar_status parse_schedule(const char *s, train_options *o) {
    return clpar_schedule_parse(s, &o->schedule);
}

static const char *const off_on[] = {"off", "on", NULL};
static const char *const balance_words[] = {"equal", "auto", NULL};
static const char *const mesh_words[] = {"", "auto", NULL};

static const opt_def table[] = {
    {"Data and model:", "data", "SRC",
     "fashion-mnist (default; " CLPAR_FASHION_MNIST_DIR "),\nsynthetic (the seed's 10-input, "
     "5-target regression), a\nfolder holding Fashion-MNIST's IDX files (.gz or plain), or\n"
     "text:FILE (bytes as tokens, for a GPT; 90% train, 10% validate)",
     K_TEXT, AT(data), 0, 0, NULL, NULL, NULL, "data"},
    {NULL, "model", "SIZES|gpt:...",
     "layer sizes, default 784,256,128,10 (synthetic: 10,5), or\n"
     "gpt:layers=L,heads=H,embd=C,ctx=T (text; default 4,4,256,128)",
     K_TEXT, AT(model), 0, 0, NULL, NULL, NULL, "shape"},
    {NULL, "loss", "xent|mse", "default xent (synthetic: mse)", K_ENUM, 0, 0, 0, NULL, NULL,
     parse_loss, "loss"},
    {NULL, "init", "FILE", "start from a safetensors model (PyTorch nn.Sequential names)", K_TEXT,
     AT(init), 0, 0, NULL, NULL, NULL, "init_path"},
    {NULL, "save", "FILE", "write the trained model as safetensors", K_TEXT, AT(save), 0, 0, NULL,
     NULL, NULL, NULL},
    {"Optimization:", "optim", "sgd|adam|adamw", "default adam", K_ENUM, 0, 0, 0, NULL, NULL,
     parse_optim, "optim.kind"},
    {NULL, "lr", "X", "learning rate (default 1e-3; sgd: 0.01)", K_REAL, AT(lr), 0, 0, NULL, NULL,
     NULL, "optim.lr"},
    {NULL, "warmup", "N", "learning rate warm-up: linear over the first N steps", K_LONG,
     AT(warmup), 0, 1L << 40, NULL, NULL, NULL, "warmup_steps"},
    {NULL, "lr-min", "X", "cosine decay of the learning rate to X at the run's end", K_REAL,
     AT(lr_min), 0, 0, NULL, NULL, NULL, "lr_min lr_decay"},
    {NULL, "clip", "X", "clip the gradients' global norm to X (default: no clipping)", K_REAL,
     AT(clip), 0, 0, NULL, NULL, NULL, "clip"},
    {NULL, "momentum", "X", "SGD momentum (default 0)", K_REAL, AT(momentum), 0, 0, NULL, NULL,
     NULL, "optim.momentum"},
    {NULL, "weight-decay", "X", "default 0 (adamw: 0.01; a GPT's on matrices only)", K_REAL,
     AT(weight_decay), 0, 0, NULL, NULL, NULL, "optim.weight_decay"},
    {NULL, "batch", "B", "global batch of one optimizer step (default 128)", K_LONG, AT(batch), 1,
     1L << 24, NULL, NULL, NULL, "batch max_batch"},
    {NULL, "epochs", "E", "epochs (default 3), or", K_LONG, AT(epochs), 1, 1L << 20, NULL, NULL,
     NULL, NULL},
    {NULL, "steps", "S", "optimizer steps in total", K_LONG, AT(steps), 1, 1L << 40, NULL, NULL,
     NULL, "total_steps"},
    {NULL, "seed", "N", "initialization, shuffling and synthetic data (default 0)", K_LONG,
     AT(seed), 0, 1L << 62, NULL, NULL, NULL, "seed"},
    {NULL, "shuffle", "on|off", "default on", K_WORD, AT(shuffle), 0, 0, NULL, off_on, NULL,
     "shuffle"},
    {"Parallelism:", "devices", "SPEC",
     "all (default), cpu, gpu, or indices such as 0,1 or 0,0,0;\nrank i runs on the i-th device "
     "of the spec",
     K_TEXT, AT(devices), 0, 0, NULL, NULL, NULL, "devices"},
    {NULL, "dp", "N|auto", "data-parallel replicas (default 1; auto: one per device)", K_LONG,
     AT(dp), 1, 64, "auto", NULL, NULL, "dp"},
    {NULL, "tp", "N", "tensor-parallel shards of every layer (default 1)", K_LONG, AT(tp), 1,
     CLPAR_MAX_RANKS, NULL, NULL, NULL, "tp"},
    {NULL, "pp", "N", "pipeline stages of consecutive layers (default 1)", K_LONG, AT(pp), 1,
     CLPAR_MAX_LAYERS, NULL, NULL, NULL, "pp"},
    {NULL, "stages", "A,B,...", "layers per stage (default: balanced by FLOPs)", K_TEXT, AT(stages),
     0, 0, NULL, NULL, NULL, "stage_layers"},
    {NULL, "micro-batches", "M", "micro-batches per replica and step (default 1)", K_LONG,
     AT(micro), 1, 1L << 20, NULL, NULL, NULL, "micro_batches micro"},
    {NULL, "schedule", "gpipe|1f1b|auto",
     "pipeline schedule (default auto: gpipe when all M\nmicro-batches fit in half of each "
     "device's memory)",
     K_ENUM, 0, 0, 0, NULL, NULL, parse_schedule, "schedule"},
    {NULL, "accum", "K", "gradient accumulation: K times the micro-batches (default 1)", K_LONG,
     AT(accum), 1, 1L << 20, NULL, NULL, NULL, "accum"},
    {NULL, "zero", "0|1", "1: ZeRO-1, the optimizer state split across the replicas (default 0)",
     K_LONG, AT(zero), 0, 1, NULL, NULL, NULL, "zero"},
    {NULL, "grad-reduce", "mean|sum", "mean of the batch (default) or sum of micro-batch means",
     K_ENUM, 0, 0, 0, NULL, NULL, parse_reduce, "reduce"},
    {NULL, "mesh", "auto", "the mesh the planner predicts fastest on the devices", K_WORD,
     AT(mesh_auto), 0, 0, NULL, mesh_words, NULL, NULL},
    {NULL, "balance", "auto|equal", "auto: work in proportion to each device's measured speed",
     K_WORD, AT(balance), 0, 0, NULL, balance_words, NULL, NULL},
    {NULL, "dry-run", NULL, "print the plan (ranks, devices, memory, bytes) and exit", K_FLAG,
     AT(dry_run), 0, 0, NULL, NULL, NULL, NULL},
    {"Output:", "log", "FILE.csv", "one row per step: step,epoch,loss,samples_per_sec", K_TEXT,
     AT(log), 0, 0, NULL, NULL, NULL, NULL},
    {NULL, "checkpoint", "FILE",
     "write the whole training state (model, optimizer, data position)\nevery --checkpoint-every "
     "N steps (default: every epoch) and at\nthe end, atomically",
     K_TEXT, AT(checkpoint), 0, 0, NULL, NULL, NULL, NULL},
    {NULL, "eval-every", "N", "also evaluate on the held-out data every N steps", K_LONG,
     AT(eval_every), 1, 1L << 40, NULL, NULL, NULL, NULL},
    {NULL, "checkpoint-every", "N", "steps between checkpoints", K_LONG, AT(checkpoint_every), 1,
     1L << 40, NULL, NULL, NULL, NULL},
    {NULL, "resume", "FILE",
     "continue a checkpointed run to its original total, on any mesh\n(its settings are the run's; "
     "options given again must agree)",
     K_TEXT, AT(resume), 0, 0, NULL, NULL, NULL, NULL},
    {NULL, "trace", "FILE.json", "Chrome trace of what ran where (Perfetto, chrome://tracing)",
     K_TEXT, AT(trace), 0, 0, NULL, NULL, NULL, NULL},
    {NULL, "timeline", "FILE.svg", "the last steps as a picture, a lane per device and queue",
     K_TEXT, AT(timeline), 0, 0, NULL, NULL, NULL, NULL},
    {NULL, "quiet", NULL, "only the final summary", K_FLAG, AT(quiet), 0, 0, NULL, NULL, NULL,
     NULL},
    {NULL, "help", NULL, "this text", K_FLAG, AT(help), 0, 0, NULL, NULL, NULL, NULL},
};
#define NOPTS ((int)(sizeof table / sizeof *table))
_Static_assert(NOPTS <= 64, "train_options.given has room for 64 options");

static const char *prog = "clpar-train";

static void usage(void) {
    printf("usage: clpar-train [options]\n"
           "Trains an MLP (Linear layers with ReLU between them) or a GPT (nanoGPT's) on\n"
           "OpenCL devices.\n\n");
    for (int i = 0; i < NOPTS; i++) {
        const opt_def *d = &table[i];
        if (d->section) printf("%s\n", d->section);
        char head[64];
        snprintf(head, sizeof head, "  --%s%s%s", d->name, d->arg ? " " : "", d->arg ? d->arg : "");
        printf("%-22s", head);
        if (strlen(head) >= 22) printf("\n%22s", "");
        for (const char *p = d->help; *p; p++) {
            putchar(*p);
            if (*p == '\n') printf("%22s", "");
        }
        putchar('\n');
    }
    printf("\nSeveral PoCL devices on one CPU: POCL_DEVICES=\"pthread pthread\" "
           "POCL_MAX_PTHREAD_COUNT=1 clpar-train --dp 2\n");
    printf(clpar_world_has_mpi()
               ? "Several processes or machines: mpirun -np P clpar-train ... (the mesh's ranks "
                 "dealt out to them;\n--devices then names each process's own)\n"
               : "MPI support is absent from this build (build with libopenmpi-dev or "
                 "libmpich-dev installed to run under mpirun)\n");
}

/* Stores one option's value; returns 0 or the exit status after the error. */
static int apply(const opt_def *d, const char *arg, train_options *o) {
    char flag[64];
    snprintf(flag, sizeof flag, "--%s", d->name);
    void *at = (char *)o + d->offset;
    switch (d->kind) {
    case K_FLAG:
        *(int *)at = 1;
        return 0;
    case K_TEXT:
        *(const char **)at = arg;
        return 0;
    case K_LONG:
        if (d->auto_word && !strcmp(arg, d->auto_word)) {
            *(long *)at = 0;
            return 0;
        }
        return cli_long(prog, flag, arg, d->min, d->max, (long *)at) ? 2 : 0;
    case K_REAL:
        return cli_double(prog, flag, arg, (double)d->min, (double *)at) ? 2 : 0;
    case K_WORD:
        for (int w = 0; d->words[w]; w++)
            if (!strcmp(arg, d->words[w])) {
                *(int *)at = w;
                return 0;
            }
        char words[64]; /* "auto|equal" -> "auto or equal" */
        snprintf(words, sizeof words, "%s", d->arg);
        char *bar = strchr(words, '|');
        if (bar) memmove(bar + 4, bar + 1, strlen(bar)), memcpy(bar, " or ", 4);
        return cli_usage_error(prog, "%s must be %s, got '%s'", flag, words, arg);
    case K_ENUM:
        if (d->parse(arg, o) != CLPAR_OK) return cli_usage_error(prog, "%s", cli_last_error());
        return 0;
    }
    return 0;
}

int train_options_parse(int argc, char **argv, train_options *o) {
    struct option longs[NOPTS + 1];
    for (int i = 0; i < NOPTS; i++)
        longs[i] = (struct option){table[i].name,
                                   table[i].kind == K_FLAG ? no_argument : required_argument, NULL,
                                   256 + i};
    longs[NOPTS] = (struct option){0, 0, 0, 0};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        if (c < 256 || c >= 256 + NOPTS) {
            if (optopt) return cli_usage_error(prog, "option '%s' needs a value", argv[optind - 1]);
            return cli_usage_error(prog, "unknown option '%s'", argv[optind - 1]);
        }
        int rc = apply(&table[c - 256], optarg, o);
        if (rc) return rc;
        o->given[c - 256] = 1;
        if (o->help) {
            usage();
            return 0;
        }
    }
    if (optind < argc) return cli_usage_error(prog, "unexpected argument '%s'", argv[optind]);
    return 0;
}

int train_options_given(const train_options *o, const char *name) {
    for (int i = 0; i < NOPTS; i++)
        if (!strcmp(table[i].name, name)) return o->given[i];
    return 0;
}

const char *train_options_flag(const char *field, void *user) {
    static char flag[64];
    size_t n = strlen(field);
    for (int i = 0; i < NOPTS; i++)
        for (const char *f = table[i].fields; f && *f;) {
            size_t len = strcspn(f, " ");
            if (len == n && !strncmp(f, field, n)) {
                snprintf(flag, sizeof flag, "--%s", table[i].name);
                return flag;
            }
            f += len + (f[len] == ' ');
        }
    return NULL;
}
