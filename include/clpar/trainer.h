/* The trainer level: a training run over a data set with any strategy, epoch by epoch, in
 * the data order the options fix; evaluation; saving. The command-line tool is a thin
 * layer over this. */
#ifndef CLPAR_TRAINER_H
#define CLPAR_TRAINER_H

#include "clpar/data.h"
#include "clpar/strategy.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    clpar_mlp_shape shape;
    clpar_gpt_config gpt; /* a GPT when gpt.layers > 0 (shape then unused) */
    clpar_loss_kind loss;
    clpar_optim_config optim;
    clpar_reduce_mode reduce;
    size_t batch;      /* global batch of one optimizer step, whatever the strategy */
    int dp;            /* data-parallel replicas */
    int pp;            /* pipeline stages (0 counts as 1) */
    int tp;            /* tensor-parallel shards per stage (0 counts as 1) */
    int accum;         /* gradient accumulation: micro-batches per replica and step ... */
    int micro_batches; /* ... times pipeline micro-batches (0 counts as 1) */
    int zero;          /* 1: ZeRO-1 (clpar_mesh_config.zero) */
    clpar_schedule schedule;
    int stage_layers[CLPAR_MAX_LAYERS]; /* layers per stage, or all zero to balance */
    int shuffle;
    uint64_t seed;
    const int *devices; /* device index of each rank (>= dp pp tp entries; may repeat); with
                         * several processes, of this process's ranks (dp pp tp / P) */
    clpar_world *world; /* the processes the ranks are spread over (borrowed; NULL: this one):
                         * see clpar_mesh_init_world. Every process runs the same trainer on the
                         * same data; one writes --save and checkpoints */
    int ndevices;
    const char *init_path; /* model file to start from, or NULL for the seeded init */
    const float *speeds;   /* relative throughput of each rank's device, or NULL: equal */
    const char *data;      /* the data set's name, kept in checkpoints ("fashion-mnist",
                            * "synthetic", a folder; copied), or NULL */
    long total_steps;      /* the run's planned length, kept in checkpoints (0: not said) */
    /* nanoGPT's schedule of the learning rate optim.lr: a linear warm-up over the first
     * warmup_steps (lr (s + 1) / (warmup_steps + 1) at step s), then with lr_decay a cosine
     * decay to lr_min at total_steps; without either the rate stays optim.lr. */
    long warmup_steps;
    bool lr_decay;
    float lr_min;
    float clip; /* clip the gradients' global norm to this (0: no clipping) */
} clpar_trainer_config;

/* The learning rate of step `step` (from 0) of a run of cfg. */
CLPAR_API double clpar_trainer_lr(const clpar_trainer_config *cfg, long step);

typedef struct clpar_trainer clpar_trainer;

/* The mesh a trainer with cfg builds for a data set of nsamples: ranks, micro-batches
 * (accum x micro_batches), stage layers (given, or balanced by FLOPs over the ranks' speeds),
 * and speeds; checked with clpar_mesh_validate. For planning and dry runs. */
CLPAR_API clpar_status clpar_trainer_mesh_config(const clpar_trainer_config *cfg, size_t nsamples,
                                                 clpar_mesh_config *out);

/* Checks the configuration against the data set (sizes, batch, ranks, devices; each error
 * names the option), opens the devices and builds the replicas. train is borrowed and must
 * outlive the trainer. The caller owns *out (clpar_trainer_free). */
CLPAR_API clpar_status clpar_trainer_init(clpar_runtime *rt, const clpar_trainer_config *cfg,
                                          const clpar_dataset *train, clpar_trainer **out);
CLPAR_API void clpar_trainer_free(clpar_trainer *tr);

typedef struct {
    long step;      /* optimizer steps done, this one included */
    long epoch;     /* epoch of this step, from 0 */
    size_t rows;    /* samples in this step's batch */
    double loss;    /* its mean loss */
    int epoch_done; /* this step was the epoch's last */
} clpar_step_info;

/* One optimizer step on the next batch: with shuffling off, batch i of an epoch holds samples
 * [i B, (i + 1) B) and the last, partial batch is used too. */
CLPAR_API clpar_status clpar_trainer_step(clpar_trainer *tr, clpar_step_info *info);
CLPAR_API long clpar_trainer_steps_per_epoch(const clpar_trainer *tr);

CLPAR_API clpar_status clpar_trainer_evaluate(clpar_trainer *tr, const clpar_dataset *ds,
                                              double *loss, double *accuracy);
/* The full model (this process's first replica's; all replicas are equal), param_count floats. */
CLPAR_API clpar_status clpar_trainer_get_params(clpar_trainer *tr, float *params);
/* Rank `rank`'s copy, to check that replicas agree. */
CLPAR_API clpar_status clpar_trainer_get_rank_params(clpar_trainer *tr, int rank, float *params);
CLPAR_API clpar_status clpar_trainer_save(clpar_trainer *tr, const char *path);

/* Writes the whole training state to one safetensors file, atomically, whatever the mesh:
 * the model under its PyTorch names, the optimizer state as optim.NAME.STATE (for example
 * optim.0.weight.exp_avg), and in __metadata__ everything that defines the run (model, data
 * name, loss, optimizer and all its settings, reduction, batch, seed, shuffling, total
 * steps: clpar.model, clpar.lr, ...) and where it stands (clpar.step, clpar.epoch,
 * clpar.position in the epoch's data order, clpar.optim.steps), plus the caller's own
 * key/value pairs (meta, nmeta pairs; may be NULL, 0). */
CLPAR_API clpar_status clpar_trainer_checkpoint(clpar_trainer *tr, const char *path,
                                                const char *const *meta, int nmeta);
/* The configuration of the run a checkpoint belongs to: every setting clpar_trainer_checkpoint
 * keeps is read, checked and written into *cfg (its other fields, such as the mesh and the
 * devices, are left as they were), the data set's name into data (n bytes; cfg->data then
 * points there). A file without them, or with one malformed, is refused (CLPAR_EFORMAT,
 * naming the key). With clpar_trainer_restore this is all a program needs to resume. */
CLPAR_API clpar_status clpar_checkpoint_read_config(const char *path, clpar_trainer_config *cfg,
                                                    char *data, size_t n);
/* Restores a checkpoint's model, optimizer state and data position into a trainer on any
 * mesh. Every setting that defines the run must equal the trainer's (the total steps may
 * differ): a checkpoint of another model, data set, optimizer or batch, one without
 * training state or with optimizer state missing is refused with a message naming the
 * field or tensor; the trainer is then unchanged. */
CLPAR_API clpar_status clpar_trainer_restore(clpar_trainer *tr, const char *path);
/* Optimizer steps taken so far (restored ones included). */
CLPAR_API long clpar_trainer_steps_done(const clpar_trainer *tr);
CLPAR_API void clpar_trainer_get_stats(const clpar_trainer *tr, clpar_mesh_stats *stats);
/* The mesh the trainer runs (borrowed). */
CLPAR_API clpar_mesh *clpar_trainer_mesh(const clpar_trainer *tr);

/* Writes trace events as Chrome trace JSON (one process per rank, one thread per queue),
 * atomically (a temporary file renamed over path). rank_labels names each rank's lane. */
CLPAR_API clpar_status clpar_trace_write_json(const char *path, const clpar_trace_event *events,
                                              int n, const char *const *rank_labels, int nranks);
/* Draws the last `last_steps` steps of the trace as an SVG picture, a lane per rank and
 * queue, idle time left white. */
CLPAR_API clpar_status clpar_trace_write_svg(const char *path, const clpar_trace_event *events,
                                             int n, const char *const *rank_labels, int nranks,
                                             int last_steps);

#ifdef __cplusplus
}
#endif
#endif
