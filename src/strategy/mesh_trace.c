/* What ran where: each rank records spans of device work (marker events around each
 * micro-batch op, the copies' own events) during a step; after it they become trace events
 * on the host clock, the pipeline bubble is measured, and the events are released. */
#include "mesh_internal.h"
#include "../comm/world.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double host_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

void *grow_array(void *items, int count, int *cap, size_t size, int first) {
    if (count < *cap) return items;
    int n = *cap ? 2 * *cap : first;
    void *p = realloc(items, (size_t)n * size);
    if (p) *cap = n;
    return p;
}

clpar_status rank_marker(mrank *k, cl_event *ev) {
    CL_CHECK(clEnqueueMarkerWithWaitList(k->dev->compute, 0, NULL, ev), "clEnqueueMarker");
    return CLPAR_OK;
}

clpar_status rank_record(mrank *k, cl_event a, cl_event b, int queue, const char *cat,
                         const char *fmt, ...) {
    rank_event *grown = grow_array(k->ev, k->nev, &k->evcap, sizeof *k->ev, 64);
    if (!grown) {
        if (a) clReleaseEvent(a);
        if (b) clReleaseEvent(b);
        return clpar_error(CLPAR_ENOMEM, "out of host memory");
    }
    k->ev = grown;
    rank_event *e = &k->ev[k->nev++];
    e->a = a;
    e->b = b;
    e->queue = queue;
    snprintf(e->cat, sizeof e->cat, "%s", cat);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->name, sizeof e->name, fmt, ap);
    va_end(ap);
    return CLPAR_OK;
}

void rank_drop_events(mrank *k) {
    for (int i = 0; i < k->nev; i++) {
        if (k->ev[i].a) clReleaseEvent(k->ev[i].a);
        if (k->ev[i].b) clReleaseEvent(k->ev[i].b);
    }
    k->nev = 0;
}

/* The event's time stamp (0 without an event); the first failure goes to *st, and the
 * caller goes on releasing events. */
static double event_ns(cl_event e, cl_profiling_info what, clpar_status *st) {
    cl_ulong v = 0;
    if (!e) return 0;
    cl_int err = clGetEventProfilingInfo(e, what, sizeof v, &v, NULL);
    if (err != CL_SUCCESS && *st == CLPAR_OK) *st = clpar_cl_error(err, "clGetEventProfilingInfo");
    return (double)v;
}

static int is_compute(const char *category) {
    return !strcmp(category, "forward") || !strcmp(category, "backward") ||
           !strcmp(category, "weights");
}

int clpar_trace_event_is_compute(const clpar_trace_event *e) {
    return is_compute(e->category);
}

clpar_status mesh_collect_events(clpar_mesh *M) {
    const clpar_mesh_config *c = &M->cfg;
    double busy[CLPAR_MAX_LAYERS] = {0}, lo = INFINITY, hi = -INFINITY;
    clpar_status st = CLPAR_OK;
    if (M->tracing && M->trace_origin_ns == 0) M->trace_origin_ns = host_ns() - 1e9;
    for (int r = M->lo; r < M->hi; r++) {
        mrank *k = &M->ranks[r];
        for (int i = 0; i < k->nev; i++) {
            rank_event *e = &k->ev[i];
            double s, t;
            if (e->b) {
                s = event_ns(e->a, CL_PROFILING_COMMAND_END, &st);
                t = event_ns(e->b, CL_PROFILING_COMMAND_END, &st);
            } else {
                s = event_ns(e->a, CL_PROFILING_COMMAND_START, &st);
                t = event_ns(e->a, CL_PROFILING_COMMAND_END, &st);
            }
            s += k->clock_offset_ns;
            t += k->clock_offset_ns;
            if (is_compute(e->cat) && k->lay.d == M->home && k->lay.t == 0 && t > s) {
                busy[k->lay.p] += t - s;
                if (s < lo) lo = s;
                if (t > hi) hi = t;
            }
            if (M->tracing && M->ntrace < 1000000 && st == CLPAR_OK) {
                clpar_trace_event *grown =
                    grow_array(M->trace, M->ntrace, &M->tcap, sizeof *M->trace, 1024);
                if (grown) {
                    M->trace = grown;
                    clpar_trace_event *te = &M->trace[M->ntrace++];
                    te->rank = r;
                    te->queue = e->queue;
                    snprintf(te->name, sizeof te->name, "%s", e->name);
                    snprintf(te->category, sizeof te->category, "%s", e->cat);
                    te->start_us = (s - M->trace_origin_ns) / 1e3;
                    te->end_us = (t - M->trace_origin_ns) / 1e3;
                } else {
                    st = clpar_error(CLPAR_ENOMEM, "out of host memory"); /* go on releasing */
                }
            }
        }
        rank_drop_events(k);
    }
    if (hi > lo) {
        double sum = 0;
        for (int p = 0; p < c->pp; p++)
            sum += 1.0 - busy[p] / (hi - lo);
        M->stats.bubble_measured = sum / c->pp;
    }
    return st;
}

void clpar_mesh_get_stats(const clpar_mesh *M, clpar_mesh_stats *stats) {
    *stats = M->stats;
    stats->bytes_tp = stats->bytes_pp = stats->bytes_dp = 0;
    stats->launches = stats->waits = 0;
    for (int r = M->lo; r < M->hi; r++) {
        uint64_t launches = 0, waits = 0;
        if (M->ranks[r].dev) clpar_device_get_counts(M->ranks[r].dev, &launches, &waits);
        stats->launches += launches;
        stats->waits += waits;
        stats->bytes_tp += M->ranks[r].bytes_tp;
        stats->bytes_pp += M->ranks[r].bytes_pp;
        stats->bytes_dp += M->ranks[r].bytes_dp;
    }
    stats->bytes_sent = stats->bytes_shared = stats->floats_in_place = 0;
    for (int i = 0; M->dp_ars && i < M->cfg.pp * M->cfg.tp; i++)
        if (M->dp_ars[i]) {
            stats->bytes_sent += clpar_allreduce_bytes_sent(M->dp_ars[i]);
            stats->bytes_shared += allreduce_bytes_shared(M->dp_ars[i]);
            stats->floats_in_place += allreduce_floats_in_place(M->dp_ars[i]);
        }
    for (int i = 0; i < M->ntie; i++)
        if (M->tie_ars[i]) stats->bytes_sent += clpar_allreduce_bytes_sent(M->tie_ars[i]);
    for (int i = 0; M->tp_ars && i < M->cfg.dp * M->cfg.pp; i++) {
        if (M->tp_ars[i]) stats->bytes_sent += clpar_allreduce_bytes_sent(M->tp_ars[i]);
        if (M->tp_ags[i]) stats->bytes_sent += clpar_allgather_bytes_sent(M->tp_ags[i]);
    }
    for (int i = 0; i < M->nchans; i++) /* a remote channel's sending end counts what it sent */
        if (clpar_channel_remote(M->chans[i]))
            stats->bytes_sent += clpar_channel_bytes(M->chans[i]);
}

void clpar_mesh_set_tracing(clpar_mesh *M, bool on) {
    M->tracing = on;
}

const clpar_trace_event *clpar_mesh_trace(const clpar_mesh *M, int *count) {
    *count = M->ntrace;
    return M->trace;
}
