/* Internal to the strategies level: what one rank holds (its layout, worked out from the
 * configuration alone), the mesh's state, the pipeline schedules, and the helpers the mesh's
 * files share (mesh_build.c, mesh_step.c, mesh_params.c, mesh_trace.c). */
#ifndef CLPAR_MESH_INTERNAL_H
#define CLPAR_MESH_INTERNAL_H

#include "clpar/strategy.h"
#include "../runtime/internal.h"
#include "../runtime/workers.h"

#define RANK_OF(c, d, p, t) (((d) * (c)->pp + (p)) * (c)->tp + (t))

/* The model a mesh configuration trains. */
static inline clpar_model_spec mesh_model(const clpar_mesh_config *c) {
    clpar_model_spec m;
    m.mlp = c->shape;
    m.gpt = c->gpt;
    return m;
}

/* One rank's stage as modules and the size of every buffer it needs: built by
 * layout_rank from the configuration alone, so that building a mesh and planning one
 * (clpar_mesh_plan_rank, --dry-run, the planner) count the same bytes. */
typedef struct {
    int d, p, t; /* replica, stage, shard */
    int l0, nl;  /* the stage's first top-level module and how many */
    clpar_module *mods[CLPAR_MAX_LAYERS];
    size_t nparams;                     /* the rank's parameter floats */
    int nslots, group;                  /* micro-batches held at once; largest W group */
    size_t cap;                         /* rows of the largest micro-batch */
    size_t act_w[CLPAR_MAX_LAYERS + 1]; /* act_w[j]: module j's input; [nl]: the stage's output */
    size_t in_w;                        /* the stage's input gradient (0 on the first stage) */
    size_t wx_w, wdy_w;                 /* widest input and output gradient a W group gathers */
    size_t scratch;                     /* floats of scratch the modules need */
    size_t out_w;                       /* last stage: the model's output width; else 0 */
    size_t labels_w, targets_w;         /* last stage: labels (int) and targets per row */
    size_t loss_w;                      /* last stage: losses per row (a GPT's positions) */
} rank_layout;

clpar_status layout_rank(const clpar_mesh_config *c, int rank, rank_layout *out);
void layout_free(rank_layout *l);
/* Bytes of every activation and working buffer of the layout, each as allocated. */
size_t layout_activation_bytes(const rank_layout *l);
/* The GEMM products of the layout's modules (clpar_mesh_plan_rank_gemms): the first cap into
 * out, and how many in all. */
int layout_gemms(const rank_layout *l, clpar_gemm_shape *out, int cap);
/* The same in a new array (*out, the caller frees it; never NULL on success) of *n. */
clpar_status layout_gemm_list(const rank_layout *l, clpar_gemm_shape **out, int *n);

/* ZeRO-1's slices of a rank's n parameters among dp replicas: replica d's is
 * [bounds[d], bounds[d + 1]), cut on ZERO_ALIGN floats (512 bytes: a sub-buffer's origin must
 * meet every device's base address alignment). */
#define ZERO_ALIGN 128
void plan_zero_bounds(size_t n, int dp, size_t *bounds);
/* Floats of optimizer state the rank of layout l holds. */
size_t plan_optim_floats(const clpar_mesh_config *c, const rank_layout *l);

/* Rows of the largest micro-batch any replica will hold. */
size_t plan_micro_cap(const clpar_mesh_config *c);
/* Index of the first layer of each stage, stages[pp] = L. */
void plan_stage_starts(const clpar_mesh_config *cfg, int *starts);

/* One op of a pipeline schedule: the forward (F) or input-gradient backward (B) of
 * micro-batch m, or the weight gradients (W) of micro-batches m .. m + count - 1. */
typedef enum { SCHED_F, SCHED_B, SCHED_W } sched_kind;
typedef struct {
    sched_kind kind;
    int m, count;
} sched_op;

/* Stage `stage`'s schedule of `micro` micro-batches into ops (room for 3 micro); returns the
 * number of ops, the activation slots it needs (micro-batches held at once) and the largest
 * W group. */
int schedule_ops(clpar_schedule kind, int stage, int stages, int micro, sched_op *ops, int *slots,
                 int *group);
/* The slots and largest W group alone. */
void schedule_shape(clpar_schedule kind, int stage, int stages, int micro, int *slots, int *group);

/* A span of device work recorded for traces: start and end markers (or a copy's own event
 * in a, b = NULL). */
typedef struct {
    cl_event a, b;
    char name[48];
    char cat[16];
    int queue;
} rank_event;

typedef struct {
    int rank;
    rank_layout lay;
    clpar_device *dev;
    clpar_module *loss; /* on the last stage */
    clpar_tp_comm tp;   /* the collectives lent to the modules */
    clpar_module_env env;
    cl_mem params, grads;
    clpar_optim *opt;
    cl_mem *act;    /* nslots x (nl + 1): act[s (nl + 1) + j] is module j's input */
    cl_mem *dys;    /* nslots x nl: dys[s nl + j] is the gradient of module j's output */
    cl_mem din;     /* the gradient of the stage's input, sent to the previous stage */
    cl_mem wx, wdy; /* a W group's inputs and output gradients, gathered row after row */
    cl_mem scratch, lossbuf;
    cl_mem *labels, *targets; /* per slot, on the last stage */
    size_t act_bytes, param_bytes;
    clpar_allreduce *tp_ar, *dp_ar;
    int dp_slot;             /* the rank's place in dp_ar: its replica among this process's */
    int tp_slot;             /* and in tp_ar and tp_ag: its shard among this process's */
    clpar_allreduce *tie_ar; /* a tied tensor's copies: first and last stage (a GPT's table) */
    int tie_index;
    size_t tie_off, tie_len;
    clpar_allgather *tp_ag;
    clpar_channel *fwd_in, *fwd_out, *bwd_in, *bwd_out;
    sched_op *ops;
    int first_w;
    cl_event bwd_end;
    rank_event *ev;
    int nev, evcap;
    double clock_offset_ns; /* host clock minus this device's profiling clock */
    uint64_t bytes_tp, bytes_pp, bytes_dp;
    float *host_grads;      /* with clipping: the gradients read back for their norm */
    size_t zlo, zhi;        /* the parameters this rank updates: its ZeRO slice, or all */
    cl_mem zparams, zgrads; /* ZeRO: sub-buffers of the slice (NULL: the whole buffers) */
} mrank;

struct clpar_mesh {
    clpar_mesh_config cfg;
    int n;      /* ranks in the whole mesh: ranks[] has an entry for each */
    int lo, hi; /* the ranks this process holds (built and run); all of them in one process */
    int d0, d1; /* the replicas they belong to (the first and last may be partial) */
    int whole;  /* every process holds whole replicas (else stages cross processes) */
    int home;   /* the replica this process evaluates and reads: its first when whole,
                 * else replica 0 (assembled across processes) */
    struct world_p2p *p2p; /* channels between processes; NULL: one process */
    /* the processes of each data-parallel group and tied pair, joined before anything local
     * is built (taken by their all-reduces) */
    struct world_group **dp_procs, **tie_procs;
    struct world_group **tp_procs; /* two per tensor-parallel group */
    clpar_world *world;            /* borrowed; NULL: one process */
    struct world_group *procs;     /* the processes, for gathering ZeRO's optimizer state */
    mrank *ranks;
    clpar_sync *sync;
    clpar_workers *workers;
    clpar_allreduce **tp_ars, **dp_ars;
    clpar_allgather **tp_ags;
    clpar_allreduce **tie_ars; /* one per (replica, shard) of a pipelined GPT */
    int ntie;
    clpar_channel **chans; /* forward and backward channels */
    int nchans;
    size_t micro_cap, nparams;
    float *row_loss, *eval_out;
    /* the current step's batch */
    const char *x; /* rows of in_w 4-byte elements: floats, or a GPT's token ids */
    const float *targets;
    const int *labels;
    size_t rows;
    int eval;
    clpar_mesh_stats stats;
    int tracing;
    clpar_trace_event *trace;
    int ntrace, tcap;
    double trace_origin_ns;
    clpar_barrier clip_meet; /* every rank, around the global gradient norm */
    double *norm_parts;      /* each rank's sum of squares */
    double norm_total;       /* ZeRO: their sum over every process */
};

/* Whether rank r lives in this process. */
static inline int mesh_local(const clpar_mesh *M, int r) {
    return r >= M->lo && r < M->hi;
}

/* Copies a rank's flat parameters (or anything in their layout) to or from the full
 * model's (mesh_params.c). */
void mesh_map_params(const mrank *k, float *full, float *local, clpar_param_copy direction);
/* The collectives a rank lends its modules (clpar_tp_comm, ctx = the mrank). */
clpar_status mesh_tp_all_reduce(void *ctx, cl_mem buf, size_t count);
clpar_status mesh_tp_all_gather(void *ctx, cl_mem part, size_t rows, size_t first, size_t len,
                                size_t width, cl_mem out);
/* Runs one step's (or evaluation's) work on every rank (mesh_step.c). */
clpar_status mesh_run(clpar_mesh *M);

/* Monotonic host clock in nanoseconds. */
double host_ns(void);
/* A marker on the rank's compute queue. */
clpar_status rank_marker(mrank *k, cl_event *ev);
/* Records a span for the trace; takes a and b (released on failure too). */
clpar_status rank_record(mrank *k, cl_event a, cl_event b, int queue, const char *cat,
                         const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Releases the rank's recorded spans without tracing them. */
void rank_drop_events(mrank *k);
/* Turns the step's spans of every rank into trace events and the bubble measurement, and
 * releases them (all of them, also when out of memory). */
clpar_status mesh_collect_events(clpar_mesh *M);
/* items (count used, room for *cap of size bytes) with room for one more, doubling from
 * `first`; NULL when out of host memory, items then left as they were. */
void *grow_array(void *items, int count, int *cap, size_t size, int first);

#endif
