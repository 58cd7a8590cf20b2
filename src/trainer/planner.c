/* Device measurement on the model's shapes, its cache, and the mesh cost model. */
#include "clpar/planner.h"
#include "clpar/gpt.h"
#include "trainer_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

/* Forward and backward FLOPs of top-level modules [first, first + count) per row. */
static double modules_flops(const clpar_model_spec *s, int first, int count) {
    double f = 0;
    for (int l = first; l < first + count; l++)
        f += clpar_model_module_flops(s, l);
    return f;
}

/* One line per device, model and batch: "platform|device|version|sizes|batch|gemm=PATH|
 * tuning=HASH" and "gflops h2d d2h". */
static void cache_key(const clpar_runtime *rt, const clpar_device_info *di,
                      const clpar_model_spec *s, size_t batch, char *key, size_t n) {
    char sizes[512];
    clpar_model_format(s, sizes, sizeof sizes);
    /* the GEMM kernels chosen (see ops/gemm.c) change the speed, so they are part of the key:
     * the path forced, and the device's tuning (FNV-1a of its cache line), which a new
     * `clpar-devices --tune` replaces */
    const char *gemm = clpar_runtime_get_config(rt)->gemm_path;
    clpar_gemm_tuning t;
    char text[8192] = "none";
    if (clpar_gemm_cache_lookup(rt, di, &t)) clpar_gemm_tuning_format(&t, text, sizeof text);
    uint64_t h = 1469598103934665603ull;
    for (const char *p = text; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    snprintf(key, n, "%s|%s|%s|%s|%zu|gemm=%s|tuning=%016llx", di->platform_name, di->name,
             di->version, sizes, batch, *gemm ? gemm : "default-v2", (unsigned long long)h);
    clpar_cache_key_clean(key);
}

int clpar_planner_parse_measure(const char *value, void *user) {
    clpar_device_measure *m = user;
    return sscanf(value, "%lf %lf %lf", &m->gflops, &m->h2d_gbs, &m->d2h_gbs) == 3 &&
           isfinite(m->gflops + m->h2d_gbs + m->d2h_gbs) && m->gflops > 0 && m->h2d_gbs > 0 &&
           m->d2h_gbs > 0;
}

static int cache_lookup(const clpar_runtime *rt, const char *key, clpar_device_measure *m) {
    char value[256];
    if (!clpar_cache_lookup(rt, "measurements.tsv", key, clpar_planner_parse_measure, m, value,
                            sizeof value))
        return 0;
    return clpar_planner_parse_measure(value, m);
}

static void cache_store(const clpar_runtime *rt, const char *key, const clpar_device_measure *m) {
    char value[256];
    snprintf(value, sizeof value, "%.4f %.4f %.4f", m->gflops, m->h2d_gbs, m->d2h_gbs);
    /* a cache: failing to write it only costs a remeasure next time */
    (void)clpar_cache_append(rt, "measurements.tsv", key, value);
}

/* One forward and backward of an MLP at batch rows, queued. */
static clpar_status mlp_pass(clpar_mlp *mlp, const float *x, const int *labels,
                             const float *targets, size_t batch) {
    TRY(clpar_mlp_upload(mlp, x, labels, targets, batch));
    TRY(clpar_mlp_forward(mlp, batch));
    TRY(clpar_mlp_loss(mlp, CLPAR_LOSS_MSE, batch, (double)batch));
    return clpar_mlp_backward(mlp, batch, 0.0f, NULL, NULL);
}

/* The same for a GPT at batch sequences (token ids 0: the speed does not depend on them). */
static clpar_status gpt_pass(clpar_gpt *g, const int *ids, size_t batch) {
    TRY(clpar_gpt_upload(g, ids, ids, batch));
    TRY(clpar_gpt_forward(g, batch));
    TRY(clpar_gpt_loss(g, batch, (double)batch));
    return clpar_gpt_backward(g, batch, 0.0f);
}

/* The best of two timed passes after one that also compiles. */
static clpar_status measure_compute(clpar_device *d, const clpar_model_spec *s, size_t batch,
                                    double *seconds) {
    int gpt = clpar_model_is_gpt(s);
    clpar_mlp *mlp = NULL;
    clpar_gpt *g = NULL;
    if (gpt)
        TRY(clpar_gpt_init(d, &s->gpt, batch, &g));
    else
        TRY(clpar_mlp_init(d, &s->mlp, batch, &mlp));
    size_t in = clpar_model_input_width(s), out = clpar_model_output_width(s);
    float *x = calloc(batch * in, sizeof(float));
    int *ids = calloc(batch * (in > 1 ? in : 1), sizeof(int));
    float *targets = calloc(batch * out, sizeof(float));
    clpar_status st =
        x && ids && targets ? CLPAR_OK : clpar_error(CLPAR_ENOMEM, "out of host memory");
    *seconds = INFINITY;
    for (int rep = 0; rep < 3 && st == CLPAR_OK; rep++) {
        double t0 = clpar_now_s();
        st = gpt ? gpt_pass(g, ids, batch) : mlp_pass(mlp, x, ids, targets, batch);
        if (st == CLPAR_OK) st = clpar_device_finish(d);
        double t = clpar_now_s() - t0;
        if (rep > 0 && t < *seconds) *seconds = t;
    }
    clpar_mlp_free(mlp);
    clpar_gpt_free(g);
    free(x);
    free(ids);
    free(targets);
    return st;
}

static clpar_status measure(clpar_device *d, const clpar_model_spec *s, size_t batch,
                            clpar_device_measure *m) {
    TRY(clpar_op_warmup(d));
    double best;
    clpar_status st = measure_compute(d, s, batch, &best);
    if (st == CLPAR_OK)
        m->gflops = modules_flops(s, 0, clpar_model_modules(s)) * (double)batch / best / 1e9;
    TRY(st);
    size_t bytes = 16u << 20;
    char *host = calloc(bytes, 1);
    cl_mem buf = NULL;
    if (!host) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    st = clpar_device_alloc(d, bytes, &buf);
    if (st == CLPAR_OK) st = clpar_device_write(d, buf, 0, bytes, host);
    double t0 = clpar_now_s();
    for (int i = 0; i < 3 && st == CLPAR_OK; i++)
        st = clpar_device_write(d, buf, 0, bytes, host);
    m->h2d_gbs = 3.0 * bytes / (clpar_now_s() - t0) / 1e9;
    t0 = clpar_now_s();
    for (int i = 0; i < 3 && st == CLPAR_OK; i++)
        st = clpar_device_read(d, host, buf, 0, bytes);
    m->d2h_gbs = 3.0 * bytes / (clpar_now_s() - t0) / 1e9;
    clpar_device_release(d, buf); /* also when a copy failed */
    free(host);
    return st;
}

clpar_status clpar_planner_measure(clpar_runtime *rt, int device, const clpar_model_spec *model,
                                   size_t batch, bool remeasure, clpar_device_measure *out) {
    const clpar_device_info *di = clpar_runtime_device_info(rt, device);
    if (!di) return clpar_error(CLPAR_ENODEV, "no device %d", device);
    memset(out, 0, sizeof *out);
    out->device = device;
    out->memory = di->global_mem;
    out->host_cores = di->type & CL_DEVICE_TYPE_CPU ? di->compute_units : 0;
    TRY(clpar_gemm_tuning_of(rt, device, &out->gemm));
    char key[2048];
    cache_key(rt, di, model, batch, key, sizeof key);
    if (!remeasure && cache_lookup(rt, key, out)) {
        out->cached = 1;
        return CLPAR_OK;
    }
    clpar_device *d;
    TRY(clpar_device_init(rt, device, &d));
    clpar_status st = measure(d, model, batch, out);
    clpar_device_free(d);
    TRY(st);
    cache_store(rt, key, out);
    return CLPAR_OK;
}

/* How many times slower ranks compute together than each measured alone: ranks that share
 * a device take turns on it, and CPU devices share the host's cores (PoCL's `basic` devices
 * use one each; its `pthread` devices of one process share one pool, each counting it) with
 * the devices of the other per_host - 1 processes on the host, which are like these. */
static double contention(const clpar_device_measure *m, int n, int per_host) {
    double worst = 1.0, cpu_cores = 0;
    for (int r = 0; r < n; r++) {
        int first = 1, same = 0;
        for (int q = 0; q < n; q++) {
            if (m[q].device != m[r].device) continue;
            same++;
            if (q < r) first = 0;
        }
        worst = fmax(worst, same);
        if (first) cpu_cores += m[r].host_cores;
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online > 0) worst = fmax(worst, cpu_cores * per_host / (double)online);
    return worst;
}

/* Predicts one process's mesh, one of procs alike with per_host of them on each host;
 * returns 0 when it cannot run (memory, splits). */
static int predict(const clpar_mesh_config *c, const clpar_device_measure *m, int procs,
                   int per_host, clpar_plan *p) {
    if (clpar_mesh_validate(c) != CLPAR_OK) return 0;
    memset(p, 0, sizeof *p);
    p->cfg = *c;
    int n = c->dp * c->pp * c->tp;
    uint64_t memory[CLPAR_MAX_RANKS];
    for (int r = 0; r < n; r++)
        memory[r] = m[r].memory;
    /* what the mesh will run */
    if (clpar_mesh_choose_schedule(c, memory, &p->cfg.schedule) != CLPAR_OK) return 0;
    c = &p->cfg;
    clpar_model_spec model = {c->shape, c->gpt};
    double stage_time[CLPAR_MAX_LAYERS] = {0}, comm = 0, slowest_bw = INFINITY;
    size_t rows = (c->max_batch + (size_t)c->dp - 1) / (size_t)c->dp;
    double micro_rows = (double)rows / c->micro;
    for (int r = 0; r < n; r++) {
        clpar_rank_info ri;
        size_t workspace;
        if (clpar_mesh_plan_rank(c, r, &ri) != CLPAR_OK ||
            clpar_mesh_plan_rank_workspace(c, r, &m[r].gemm, m[r].host_cores > 0, &workspace) !=
                CLPAR_OK)
            return 0;
        size_t bytes = ri.param_bytes + ri.activation_bytes + workspace;
        if (bytes > m[r].memory) return 0;
        if (bytes > p->max_device_bytes) p->max_device_bytes = bytes;
        double flops = modules_flops(&model, ri.first_layer, ri.layers) * micro_rows / c->tp;
        double t = flops / (m[r].gflops * 1e9);
        if (t > stage_time[ri.stage]) stage_time[ri.stage] = t;
        double bw = fmin(m[r].h2d_gbs, m[r].d2h_gbs) * 1e9;
        if (bw < slowest_bw) slowest_bw = bw;
        /* gradients summed on the host: read from the device, the sum written back; but a
         * replica alone in its process on a CPU device, its processes on one host, keeps
         * them in the memory the processes sum in, and nothing is copied */
        int in_place = procs > 1 && per_host >= procs && c->dp == 1 && m[r].host_cores > 0;
        if ((c->dp > 1 || procs > 1) && !in_place)
            p->bytes_per_step += 2 * ri.param_count * sizeof(float);
    }
    double worst = 0;
    for (int s = 0; s < c->pp; s++)
        worst = fmax(worst, stage_time[s]);
    p->compute_s = (c->micro + c->pp - 1) * worst * contention(m, n, per_host);
    uint64_t tp_bytes;
    if (clpar_mesh_predicted_tp_bytes(c, c->max_batch, &tp_bytes) != CLPAR_OK) return 0;
    uint64_t pp_bytes = 0;
    int starts = 0;
    for (int s = 0; s + 1 < c->pp; s++) {
        starts += c->stage_layers[s];
        /* forward and backward, each read on one side and written on the other */
        pp_bytes += 4 * (uint64_t)c->max_batch * clpar_model_boundary_width(&model, starts) *
                    sizeof(float) * c->tp;
    }
    p->bytes_per_step += tp_bytes + pp_bytes;
    /* per rank: its share of the copies, through the slowest link, none of it hidden */
    comm = (double)p->bytes_per_step / n / slowest_bw;
    p->comm_s = comm;
    p->step_s = p->compute_s + p->comm_s;
    p->bubble = (double)(c->pp - 1) / (double)(c->micro + c->pp - 1);
    return 1;
}

static int by_time(const void *a, const void *b) {
    const clpar_plan *x = a, *y = b;
    return x->step_s < y->step_s ? -1 : x->step_s > y->step_s;
}

/* The reduction across processes of a mesh whose process-local part p predicts: each process
 * sends 2 (P - 1) / P of its gradient bytes, and each bucket (a rank's module) waits for two
 * exchanges. The process's mesh becomes the whole one (dp times P). */
static void add_link(clpar_plan *p, const clpar_link *link) {
    clpar_mesh_config *c = &p->cfg;
    int P = link->procs;
    double grad = 0, buckets = 0;
    for (int r = 0; r < c->pp * c->tp; r++) { /* one replica: the process sums its own first */
        clpar_rank_info ri;
        if (clpar_mesh_plan_rank(c, r, &ri) != CLPAR_OK) continue;
        grad += 4.0 * (double)ri.param_count;
        buckets = fmax(buckets, ri.layers);
    }
    p->link_bytes = (uint64_t)(2.0 * (P - 1) / P * grad);
    p->link_s = (double)p->link_bytes / (link->gbs * 1e9) + 2.0 * buckets * link->latency_s;
    p->comm_s += p->link_s;
    p->step_s = p->compute_s + p->comm_s;
    c->dp *= P;
    c->max_batch *= (size_t)P;
}

clpar_status clpar_planner_measure_link(clpar_world *w, clpar_link *out) {
    *out = (clpar_link){clpar_world_size(w), 0, 0, 1};
    if (out->procs == 1) return CLPAR_OK;
    for (int i = 0; i < out->procs; i++) {
        int same = 0;
        for (int j = 0; j < out->procs; j++)
            same += !strcmp(clpar_world_host(w, i), clpar_world_host(w, j));
        if (same > out->per_host) out->per_host = same;
    }
    const size_t big = 4u << 20;
    double small, large;
    TRY(clpar_world_ping_pong(w, 8, 50, &small));
    TRY(clpar_world_ping_pong(w, big, 10, &large));
    out->latency_s = small;
    out->gbs = (double)big / fmax(large - small, 1e-9) / 1e9;
    return CLPAR_OK;
}

clpar_status clpar_planner_plan(const clpar_mesh_config *base, const clpar_device_measure *m, int n,
                                clpar_plan *plans, int cap, int *count) {
    return clpar_planner_plan_link(base, m, n, NULL, plans, cap, count);
}

clpar_status clpar_planner_plan_link(const clpar_mesh_config *base, const clpar_device_measure *m,
                                     int n, const clpar_link *link, clpar_plan *plans, int cap,
                                     int *count) {
    int P = link && link->procs > 1 ? link->procs : 1;
    int per_host = P > 1 && link->per_host > 1 ? link->per_host : 1;
    if (P > 1 && !(link->gbs > 0))
        return clpar_error(CLPAR_EINVAL, "the link between processes needs a bandwidth");
    if (per_host > P) return clpar_error(CLPAR_EINVAL, "%d processes per host of %d", per_host, P);
    clpar_mesh_config whole = *base;
    /* each process plans its share of the batch on its own devices */
    whole.max_batch = base->max_batch / (size_t)P;
    if (whole.max_batch == 0)
        return clpar_error(CLPAR_EINVAL, "a batch of %zu over %d processes", base->max_batch, P);
    base = &whole;
    int total = 0, room = 4096;
    clpar_plan *all = malloc((size_t)room * sizeof *all);
    if (!all) return clpar_error(CLPAR_ENOMEM, "out of host memory");
    clpar_model_spec model = {base->shape, base->gpt};
    for (int tp = 1; tp <= n; tp++)
        for (int pp = 1; pp * tp <= n && pp <= clpar_model_modules(&model); pp++)
            for (int dp = 1; dp * pp * tp <= n && total < room; dp++) {
                clpar_mesh_config c = *base;
                c.dp = dp, c.pp = pp, c.tp = tp;
                /* enough micro-batches to keep the bubble near 20%, within the batch */
                c.micro = pp > 1 ? 4 * pp : 1;
                size_t per_replica = base->max_batch / (size_t)dp;
                if ((size_t)c.micro > per_replica) c.micro = per_replica ? (int)per_replica : 1;
                memset(c.stage_layers, 0, sizeof c.stage_layers);
                if (clpar_stages_balance_model(&model, pp, NULL, c.stage_layers) != CLPAR_OK)
                    continue;
                if (!predict(&c, m, P, per_host, &all[total])) continue;
                if (P > 1) add_link(&all[total], link);
                total++;
            }
    qsort(all, (size_t)total, sizeof *all, by_time);
    for (int i = 0; i < total && i < cap; i++)
        plans[i] = all[i];
    *count = total;
    free(all);
    if (!total) return clpar_error(CLPAR_EINVAL, "no mesh of these devices can hold the model");
    return CLPAR_OK;
}
