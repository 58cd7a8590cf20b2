/* The strategies level: a mesh of dp x pp x tp ranks that combines the three strategies.
 *   data parallelism: dp replicas of the model; the batch is split into dp shards (sizes
 *     differing by at most one) and per-layer gradient buckets are all-reduced across
 *     replicas as soon as backward produces them;
 *   pipeline parallelism: the layers are cut into pp consecutive stages; each replica's shard
 *     is split into micro-batches that flow through the stages (GPipe or 1F1B), activations
 *     handed forward and their gradients backward between stages; a micro-batch's backward
 *     is split into the input gradients (B), which the previous stage waits for, and the
 *     weight gradients (W), computed for several micro-batches in one GEMM;
 *   tensor parallelism: each stage's linear layers are sharded over tp ranks, paired as in
 *     Megatron-LM (column-parallel then row-parallel, one reduction each way per pair; a
 *     layer left over is column-parallel with a concatenation).
 * dp = pp = tp = 1 is plain training on one device, and micro-batches on one rank are
 * gradient accumulation. Every mode computes the update of one device on the whole batch.
 * Rank numbering: rank = (replica * pp + stage) * tp + shard; each rank has its own host
 * thread and may sit on any device (devices may repeat or span platforms). */
#ifndef CLPAR_STRATEGY_H
#define CLPAR_STRATEGY_H

#include "clpar/comm.h"
#include "clpar/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The most ranks a mesh may have: every per-rank table (speeds, device lists) is this long,
 * and larger meshes are refused with an error naming the limit. */
#define CLPAR_MAX_RANKS 256

typedef enum {
    CLPAR_REDUCE_MEAN, /* gradient of the global batch's mean loss (PyTorch DDP) */
    CLPAR_REDUCE_SUM   /* sum of every micro-batch's own mean-loss gradient (the seed's) */
} clpar_reduce_mode;

typedef enum {
    CLPAR_SCHEDULE_GPIPE, /* all forwards, then all backwards, then one weight-gradient GEMM
                           * per layer over the whole batch */
    CLPAR_SCHEDULE_1F1B,  /* after warm-up, one forward then one backward; at most pp
                           * micro-batches held per stage */
    CLPAR_SCHEDULE_AUTO   /* chosen when the mesh is built: clpar_mesh_choose_schedule */
} clpar_schedule;

/* "mean", "sum"; "gpipe", "1f1b", "auto"; and back (CLPAR_EINVAL naming "reduce" or
 * "schedule"). */
CLPAR_API const char *clpar_reduce_mode_name(clpar_reduce_mode mode);
CLPAR_API clpar_status clpar_reduce_mode_parse(const char *text, clpar_reduce_mode *mode);
CLPAR_API const char *clpar_schedule_name(clpar_schedule schedule);
CLPAR_API clpar_status clpar_schedule_parse(const char *text, clpar_schedule *schedule);

typedef struct {
    clpar_mlp_shape shape;
    clpar_gpt_config gpt; /* a GPT when gpt.layers > 0 (shape then unused) */
    clpar_loss_kind loss;
    clpar_optim_config optim;
    clpar_reduce_mode reduce;
    int dp, pp, tp;
    int micro; /* micro-batches per replica and step (>= 1) */
    clpar_schedule schedule;
    int stage_layers[CLPAR_MAX_LAYERS]; /* top-level modules per stage (an MLP's layers; a
                                         * GPT's embeddings, blocks and head) */
    size_t max_batch;                   /* largest global batch a step will be given */
    float clip; /* clip the gradients' global norm to this, as torch.nn.utils.clip_grad_norm_
                 * (once over the whole model, whatever the mesh); 0: no clipping */
    /* 1: ZeRO-1. Each rank's parameters are cut into dp slices (on 128-float boundaries);
     * replica d keeps optimizer state for slice d only, its gradient reduction writes back
     * only that slice (a reduce-scatter), it updates that slice, and the updated slices are
     * all-gathered into every replica's parameters. The same update as without it; optimizer
     * state per rank divided by dp. A pipelined GPT's tied token table is summed between its
     * copies before the reduction (after it without ZeRO). */
    int zero;
    /* Relative throughput of each rank's device (all zero: equal). Faster ranks get more:
     * replicas larger shards of the batch, tensor-parallel shards wider slices, and, through
     * clpar_stages_balance_weighted, stages more layers. The update stays the full batch's. */
    float speed[CLPAR_MAX_RANKS];
} clpar_mesh_config;

typedef struct clpar_mesh clpar_mesh;

/* Cuts layers into pp stages of consecutive layers with the most even forward+backward
 * FLOPs (the largest stage as small as it can be); writes pp counts to layers. */
CLPAR_API clpar_status clpar_stages_balance(const clpar_mlp_shape *shape, int pp, int *layers);
/* The same with stage s running at relative speed speed[s]: the slowest stage's time, its
 * FLOPs over its speed, is made as small as it can be. */
CLPAR_API clpar_status clpar_stages_balance_weighted(const clpar_mlp_shape *shape, int pp,
                                                     const double *speed, int *layers);
/* The same for any model, over its top-level modules. */
CLPAR_API clpar_status clpar_stages_balance_model(const clpar_model_spec *model, int pp,
                                                  const double *speed, int *layers);
/* The speed of each stage of cfg (the sum of its ranks' speeds), 1 each when cfg has none. */
CLPAR_API void clpar_mesh_stage_speeds(const clpar_mesh_config *cfg, double *speed);
/* Replica d's share of a batch of rows: first row and count. */
CLPAR_API void clpar_mesh_replica_rows(const clpar_mesh_config *cfg, size_t rows, int d,
                                       size_t *first, size_t *count);

/* Checks cfg (every error names the option: --dp, --pp, --tp, --stages, --micro-batches). */
CLPAR_API clpar_status clpar_mesh_validate(const clpar_mesh_config *cfg);
/* The schedule cfg runs: its own, or for CLPAR_SCHEDULE_AUTO GPipe (the faster: each stage
 * computes its weight gradients once, over the whole batch) when every rank's parameters,
 * optimizer state and activations of all micro-batches fit in half of its device's memory
 * (memory[r] bytes for rank r), else 1F1B, which holds at most pp micro-batches. */
CLPAR_API clpar_status clpar_mesh_choose_schedule(const clpar_mesh_config *cfg,
                                                  const uint64_t *memory, clpar_schedule *out);

/* Builds the mesh on devs[0 .. dp pp tp), every replica starting from params (the full
 * model, param_count floats, copied and sharded). The caller keeps the devices alive and
 * owns *out (clpar_mesh_free). */
CLPAR_API clpar_status clpar_mesh_init(clpar_device *const *devs, const clpar_mesh_config *cfg,
                                       const float *params, clpar_mesh **out);
/* The same mesh with its ranks spread over the processes of world (NULL: one process): the
 * ranks of process q are [q n / P, (q + 1) n / P) of the n (clpar_mesh_check_processes), so
 * it holds whole replicas when pp tp divides n / P, else pipeline stages cross processes.
 * devs[] holds this process's ranks' devices, in rank order. Every process calls it with the
 * same cfg and params; gradient reductions, the tied token table's sum and stage hand-offs
 * then also cross processes, and a step's loss is the whole batch's on every process.
 * Evaluation, prediction and optimizer state use clpar_mesh_home_replica (all replicas are
 * equal); with whole replicas, calls on a replica another process holds fail (CLPAR_EINVAL),
 * else the parameters of replica 0 are assembled across processes (every process calls). */
CLPAR_API clpar_status clpar_mesh_init_world(clpar_world *world, clpar_device *const *devs,
                                             const clpar_mesh_config *cfg, const float *params,
                                             clpar_mesh **out);
/* The replicas this process holds ranks of: [*first, *first + *count) (the first and last
 * partly when stages cross processes). */
CLPAR_API void clpar_mesh_local_replicas(const clpar_mesh *m, int *first, int *count);
/* The ranks this process holds: [*first, *first + *count). */
CLPAR_API void clpar_mesh_local_ranks(const clpar_mesh *m, int *first, int *count);
/* The replica this process evaluates with and reports (parameters, optimizer state): its
 * first when it holds whole replicas, else replica 0, assembled across processes. */
CLPAR_API int clpar_mesh_home_replica(const clpar_mesh *m);
/* Whether cfg's dp, pp and tp are each at least 1 (the first of clpar_mesh_validate's
 * checks, which the trainer makes of its own fields too). */
CLPAR_API clpar_status clpar_mesh_check_sizes(const clpar_mesh_config *cfg);
/* Whether cfg's ranks can be dealt out to `procs` processes: as many on each (a multiple of
 * procs), tensor-parallel groups whole in one process, and with ZeRO whole replicas. */
CLPAR_API clpar_status clpar_mesh_check_processes(const clpar_mesh_config *cfg, int procs);
CLPAR_API void clpar_mesh_free(clpar_mesh *m);
CLPAR_API const clpar_mesh_config *clpar_mesh_get_config(const clpar_mesh *m);

/* The rows of a step's batch of `rows` that this process reads (those of its replicas):
 * [*first, *first + *count); all of them in one process. clpar_mesh_step reads no others,
 * so a process of several need not fill them. */
CLPAR_API void clpar_mesh_local_rows(const clpar_mesh *m, size_t rows, size_t *first,
                                     size_t *count);
/* One optimizer step on a global batch of rows samples: x (rows, in) as floats, or for a GPT
 * as int token ids (rows, ctx); labels (rows, or rows x ctx next tokens for a GPT) or
 * targets (rows, out). Returns once every rank has updated, with the batch's mean loss (a
 * GPT's: over every position). */
CLPAR_API clpar_status clpar_mesh_step(clpar_mesh *m, const void *x, const int *labels,
                                       const float *targets, size_t rows, double *loss);

/* Mean loss and (for labels) accuracy of replica 0 over rows samples, forward only; loss and
 * accuracy may be NULL. */
CLPAR_API clpar_status clpar_mesh_evaluate(clpar_mesh *m, const void *x, const int *labels,
                                           const float *targets, size_t rows, double *loss,
                                           double *accuracy);

/* The outputs (rows, out) of replica 0 for x (rows, in), forward only. */
CLPAR_API clpar_status clpar_mesh_predict(clpar_mesh *m, const float *x, size_t rows, float *out);

/* The full model of a replica, assembled from its shards (param_count floats). */
CLPAR_API clpar_status clpar_mesh_get_params(clpar_mesh *m, int replica, float *params);
/* The gradients of the last step (after the reduction across replicas), assembled the same
 * way. */
CLPAR_API clpar_status clpar_mesh_get_grads(clpar_mesh *m, int replica, float *grads);

/* Optimizer state i (see clpar_optim_state_name) of replica 0, assembled in the layout of the
 * full model; and setting it (with the parameters, clpar_mesh_set_params) on every replica,
 * as when resuming from a checkpoint taken on any mesh. */
CLPAR_API clpar_status clpar_mesh_get_optim_state(clpar_mesh *m, int i, float *state);
CLPAR_API clpar_status clpar_mesh_set_optim_state(clpar_mesh *m, int i, const float *state);
CLPAR_API clpar_status clpar_mesh_set_params(clpar_mesh *m, const float *params);
CLPAR_API long clpar_mesh_optim_steps(const clpar_mesh *m);
/* The learning rate of the next steps, on every rank. */
CLPAR_API void clpar_mesh_set_lr(clpar_mesh *m, float lr);
CLPAR_API void clpar_mesh_set_optim_steps(clpar_mesh *m, long steps);

/* What one rank holds: its parameter floats (weights and biases of its shard), and the
 * bytes it has allocated for parameters, gradients and optimizer state, and for
 * activations and other working buffers. */
typedef struct {
    int replica, stage, shard;
    int first_layer, layers;
    size_t param_count;
    size_t param_bytes;
    size_t activation_bytes; /* layer inputs and output gradients of every slot, W's
                              * gathering buffers, hand-off and loss buffers */
    int activation_slots;    /* micro-batches whose activations it can hold at once */
    size_t workspace_bytes;  /* its device's GEMM workspace (clpar_mesh_rank_info, once the
                              * mesh has reserved it; clpar_mesh_plan_rank, which knows no
                              * device, leaves 0: clpar_mesh_plan_rank_workspace) */
} clpar_rank_info;
CLPAR_API void clpar_mesh_rank_info(const clpar_mesh *m, int rank, clpar_rank_info *info);
/* The same, worked out from a configuration alone (nothing is allocated): for plans and
 * --dry-run. param_bytes assumes the optimizer of cfg. */
CLPAR_API clpar_status clpar_mesh_plan_rank(const clpar_mesh_config *cfg, int rank,
                                            clpar_rank_info *info);
/* The GEMM products of the rank's modules at its largest micro-batch and W group (what the
 * mesh reserves workspace for, clpar_gemm_reserve; clpar_gemm_workspace_predict gives the
 * bytes): *count of them, the first cap into out. */
CLPAR_API clpar_status clpar_mesh_plan_rank_gemms(const clpar_mesh_config *cfg, int rank,
                                                  clpar_gemm_shape *out, int cap, int *count);
/* The GEMM workspace those products take on a device whose GEMMs follow t (cpu: a CPU
 * device; clpar_gemm_workspace_bytes), in *bytes: --dry-run's and the planner's. */
CLPAR_API clpar_status clpar_mesh_plan_rank_workspace(const clpar_mesh_config *cfg, int rank,
                                                      const clpar_gemm_tuning *t, bool cpu,
                                                      size_t *bytes);

/* One timed piece of work on a device queue, for traces. */
typedef struct {
    int rank;
    int queue;               /* 0 compute, 1 transfer */
    char name[48];           /* "F m3 L2", "B m0 L1", "send m2", "recv m2", "allreduce L1", ... */
    char category[16];       /* forward, backward (input gradients), weights (weight
                              * gradients), copy, reduction, optimizer */
    double start_us, end_us; /* microseconds since the trace began, host clock */
} clpar_trace_event;
/* Whether e is a device computing a layer (forward, backward or weights), the work that
 * pipeline bubbles are measured against. */
CLPAR_API int clpar_trace_event_is_compute(const clpar_trace_event *e);

typedef struct {
    long steps;
    double reduce_window_ns;  /* data-parallel reductions: time spanned, summed over ranks */
    double reduce_exposed_ns; /* of which after that rank's backward had finished */
    uint64_t bytes_tp, bytes_pp, bytes_dp; /* moved between host and devices, per kind */
    uint64_t bytes_sent;      /* sent by this process to the others (the reduction across them) */
    uint64_t bytes_shared;    /* of which through memory shared with processes on its host */
    uint64_t floats_in_place; /* gradients its ranks summed in that memory where their devices
                               * compute in it (CPU devices): neither read nor written back */
    double bubble_measured;   /* mean over stages of idle / span of the last step's pipeline */
    double bubble_ideal;      /* (pp - 1) / (micro + pp - 1) */
    double grad_norm;         /* the last step's global gradient norm (with clipping on) */
    uint64_t launches, waits; /* kernel launches and host waits so far, summed over the
                               * ranks' devices (clpar_device_get_counts) */
} clpar_mesh_stats;
CLPAR_API void clpar_mesh_get_stats(const clpar_mesh *m, clpar_mesh_stats *stats);

/* Bytes that the layout predicts one step moves for tensor parallelism (the Megatron
 * pairing: one reduction forward and one backward per pair, a gather for a layer left
 * over), for a global batch of rows. */
CLPAR_API clpar_status clpar_mesh_predicted_tp_bytes(const clpar_mesh_config *cfg, size_t rows,
                                                     uint64_t *bytes);

/* Turns on recording of trace events (from the next step on); clpar_mesh_trace returns the
 * events recorded so far (borrowed, valid until the next step or free). */
CLPAR_API void clpar_mesh_set_tracing(clpar_mesh *m, bool on);
CLPAR_API const clpar_trace_event *clpar_mesh_trace(const clpar_mesh *m, int *count);

#ifdef __cplusplus
}
#endif
#endif
