/* Writes recorded device work as Chrome trace events (JSON, for Perfetto or
 * chrome://tracing) and as a self-contained SVG timeline with a lane per rank and queue. */
#include "clpar/trainer.h"
#include "../runtime/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *queue_name(int q) {
    return q ? "transfer" : "compute";
}

/* Opens path.tmp for writing; the caller renames it over path once complete, so a failure
 * never leaves a half-written file under the real name. */
static clpar_status open_tmp(const char *path, char *tmp, size_t n, FILE **f) {
    snprintf(tmp, n, "%s.tmp", path);
    *f = fopen(tmp, "w");
    if (!*f) return clpar_error(CLPAR_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    return CLPAR_OK;
}

static clpar_status close_tmp(FILE *f, const char *tmp, const char *path) {
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        remove(tmp);
        return clpar_error(CLPAR_EIO, "%s: write failed", path);
    }
    if (rename(tmp, path) != 0) {
        remove(tmp);
        return clpar_error(CLPAR_EIO, "%s: rename failed: %s", path, strerror(errno));
    }
    return CLPAR_OK;
}

clpar_status clpar_trace_write_json(const char *path, const clpar_trace_event *ev, int n,
                                    const char *const *rank_labels, int nranks) {
    char tmp[4096];
    FILE *f;
    TRY(open_tmp(path, tmp, sizeof tmp, &f));
    fprintf(f, "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n");
    for (int r = 0; r < nranks; r++) {
        fprintf(f,
                "{\"ph\": \"M\", \"name\": \"process_name\", \"pid\": %d, \"args\": {\"name\": "
                "\"%s\"}},\n",
                r, rank_labels[r]);
        for (int q = 0; q < 2; q++)
            fprintf(f,
                    "{\"ph\": \"M\", \"name\": \"thread_name\", \"pid\": %d, \"tid\": %d, "
                    "\"args\": {\"name\": \"%s queue\"}},\n",
                    r, q, queue_name(q));
    }
    for (int i = 0; i < n; i++) {
        const clpar_trace_event *e = &ev[i];
        double dur = e->end_us > e->start_us ? e->end_us - e->start_us : 0;
        fprintf(f,
                "{\"ph\": \"X\", \"name\": \"%s\", \"cat\": \"%s\", \"pid\": %d, \"tid\": %d, "
                "\"ts\": %.3f, \"dur\": %.3f}%s\n",
                e->name, e->category, e->rank, e->queue, e->start_us, dur, i + 1 < n ? "," : "");
    }
    fprintf(f, "]}\n");
    return close_tmp(f, tmp, path);
}

static const char *colour(const char *cat) {
    if (!strcmp(cat, "forward")) return "#4e79a7";
    if (!strcmp(cat, "backward")) return "#f28e2b";
    if (!strcmp(cat, "weights")) return "#edc948";
    if (!strcmp(cat, "copy")) return "#59a14f";
    if (!strcmp(cat, "reduction")) return "#b07aa1";
    return "#e15759"; /* optimizer */
}

clpar_status clpar_trace_write_svg(const char *path, const clpar_trace_event *ev, int n,
                                   const char *const *rank_labels, int nranks, int last_steps) {
    /* the window: from the end of the optimizer step last_steps + 1 steps before the end */
    double t1 = 0, t0 = 0;
    double ends[4096];
    int nends = 0;
    for (int i = 0; i < n; i++) {
        if (ev[i].end_us > t1) t1 = ev[i].end_us;
        if (ev[i].rank == 0 && !strcmp(ev[i].category, "optimizer") && nends < 4096)
            ends[nends++] = ev[i].end_us;
    }
    t0 = nends > last_steps ? ends[nends - last_steps - 1] : (n ? ev[0].start_us : 0);
    for (int i = 0; i < n && nends <= last_steps; i++)
        if (ev[i].start_us < t0) t0 = ev[i].start_us;
    if (t1 <= t0) t1 = t0 + 1;
    const int lane = 22, left = 190, width = 1200, top = 40;
    int height = top + 2 * nranks * lane + 60;
    char tmp[4096];
    FILE *f;
    TRY(open_tmp(path, tmp, sizeof tmp, &f));
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "font-family=\"sans-serif\" font-size=\"11\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"10\" y=\"20\" font-size=\"14\">clpar timeline: last %d step(s), %.1f ms; "
            "white is idle (the pipeline bubble)</text>\n",
            left + width + 20, height, last_steps, (t1 - t0) / 1e3);
    for (int r = 0; r < nranks; r++)
        for (int q = 0; q < 2; q++) {
            int y = top + (2 * r + q) * lane;
            fprintf(f,
                    "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>\n"
                    "<text x=\"5\" y=\"%d\">%s %s</text>\n",
                    left, y, width, lane - 2, q ? "#f7f7f7" : "#eeeeee", y + 15, rank_labels[r],
                    queue_name(q));
        }
    for (int i = 0; i < n; i++) {
        const clpar_trace_event *e = &ev[i];
        if (e->end_us < t0 || e->start_us > t1) continue;
        double a = e->start_us < t0 ? t0 : e->start_us;
        double x = left + (a - t0) / (t1 - t0) * width;
        double w = (e->end_us - a) / (t1 - t0) * width;
        int y = top + (2 * e->rank + e->queue) * lane;
        fprintf(f,
                "<rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" fill=\"%s\" "
                "stroke=\"white\" stroke-width=\"0.3\"><title>%s (%.3f ms)</title></rect>\n",
                x, y, w > 0.3 ? w : 0.3, lane - 2, colour(e->category), e->name,
                (e->end_us - e->start_us) / 1e3);
    }
    const char *cats[] = {"forward", "backward", "weights", "copy", "reduction", "optimizer"};
    for (int c = 0; c < 6; c++) {
        int x = left + c * 120, y = height - 30;
        fprintf(f,
                "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"14\" fill=\"%s\"/>"
                "<text x=\"%d\" y=\"%d\">%s</text>\n",
                x, y, colour(cats[c]), x + 18, y + 11, cats[c]);
    }
    fprintf(f, "</svg>\n");
    return close_tmp(f, tmp, path);
}
