/* The topology planner: measures each device on the model's own shapes (cached on disk),
 * then predicts, for every feasible mesh of data, pipeline and tensor parallelism over the
 * devices, the step time, per-device memory, bytes moved and pipeline bubble. */
#ifndef CLPAR_PLANNER_H
#define CLPAR_PLANNER_H

#include "clpar/model.h"
#include "clpar/strategy.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int device;
    double gflops;           /* forward + backward of the model at the batch, measured */
    double h2d_gbs, d2h_gbs; /* host<->device bandwidth, GB/s */
    uint64_t memory;         /* global memory, bytes */
    unsigned host_cores;     /* CPU devices: the host cores it computes on (compute units);
                              * 0 for devices with processors of their own */
    int cached;              /* taken from the cache file rather than measured now */
    clpar_gemm_tuning gemm;  /* the GEMMs it will run (clpar_gemm_tuning_of), for the
                              * workspace; zeros: CLBlast's, none */
} clpar_device_measure;

/* Measures device `device` on the model (an MLP or a GPT) at batch rows (sequences), or reads the
 * cache
 * ($XDG_CACHE_HOME or ~/.cache, clpar/measurements.tsv) unless remeasure is set; new
 * measurements are added to the cache. */
CLPAR_API clpar_status clpar_planner_measure(clpar_runtime *rt, int device,
                                             const clpar_model_spec *model, size_t batch,
                                             bool remeasure, clpar_device_measure *out);

typedef struct {
    clpar_mesh_config cfg;    /* dp, pp, tp, micro, stage layers filled in */
    double step_s;            /* predicted seconds per optimizer step */
    double compute_s, comm_s; /* its parts */
    double bubble;            /* (pp - 1) / (micro + pp - 1) */
    uint64_t bytes_per_step;  /* between host and devices, all ranks */
    size_t max_device_bytes;  /* the largest rank's parameters, state, activations and GEMM
                               * workspace */
    uint64_t link_bytes;      /* sent by each process to the others per step (several) */
    double link_s;            /* their time on the link, part of comm_s */
} clpar_plan;

/* The processes a mesh may be spread over (clpar_mesh_init_world) and the link between them,
 * as clpar_world_ping_pong measures it. */
typedef struct {
    int procs;        /* processes, each with devices like the measured ones */
    double gbs;       /* bandwidth between two processes, GB/s */
    double latency_s; /* one-way time of a small message */
    int per_host;     /* the most processes on one host, whose CPU devices share its cores
                         (0 reads as 1) */
} clpar_link;

/* Every feasible mesh over the first dp pp tp of the n measured devices (rank i on
 * measures[i].device), best first; at most cap written, *count says how many there were.
 * base supplies the model, loss, optimizer and batch. */
CLPAR_API clpar_status clpar_planner_plan(const clpar_mesh_config *base,
                                          const clpar_device_measure *m, int n, clpar_plan *plans,
                                          int cap, int *count);
/* Measures the link between processes 0 and 1 of w into *out (procs: the world's size):
 * the latency of an 8-byte message and the bandwidth of 4 MiB ones, by ping-pong
 * (clpar_world_ping_pong), and counts the processes on each host (their host names). A
 * collective; a world of one gives procs 1, per_host 1 and nothing else. */
CLPAR_API clpar_status clpar_planner_measure_link(clpar_world *w, clpar_link *out);
/* The same for link->procs processes that each have the n measured devices: every mesh whose
 * replicas divide among the processes (dp a multiple of procs; each process runs dp / procs
 * replicas on its devices), with the reduction across processes on the link: 2 (P - 1) / P
 * of each process's gradient bytes, plus two latencies per gradient bucket, and every rank's
 * gradients read from its device and written back. CPU devices of processes on one host
 * share its cores (link->per_host). link NULL or one process: clpar_planner_plan. */
CLPAR_API clpar_status clpar_planner_plan_link(const clpar_mesh_config *base,
                                               const clpar_device_measure *m, int n,
                                               const clpar_link *link, clpar_plan *plans, int cap,
                                               int *count);

#ifdef __cplusplus
}
#endif
#endif
