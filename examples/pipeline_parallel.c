/* The seed document's assembly line on OpenCL devices: a small MLP cut into two stages on
 * two ranks, each batch split into four micro-batches; rank 0 computes the first layers of a
 * micro-batch, hands the result to rank 1, and goes on with the next micro-batch while rank
 * 1 works. Prints the order in which the stages ran (from the device timestamps) and checks
 * the trained weights against one device.
 *   usage: example_pipeline_parallel [DEVICE-SPEC]      (default: all) */
#include "clpar/clpar.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what) {
    fprintf(stderr, "example_pipeline_parallel: %s: %s\n", what, clpar_last_error());
    return 1;
}

static int by_start(const void *a, const void *b) {
    const clpar_trace_event *x = a, *y = b;
    return x->start_us < y->start_us ? -1 : x->start_us > y->start_us;
}

int main(int argc, char **argv) {
    clpar_runtime *rt;
    if (clpar_runtime_init(&rt) != CLPAR_OK) return fail("OpenCL");
    int found[64], nfound, devices[2];
    if (clpar_runtime_parse_spec(rt, argc > 1 ? argv[1] : "all", found, 64, &nfound) != CLPAR_OK)
        return fail("devices");
    for (int r = 0; r < 2; r++)
        devices[r] = found[r % nfound];

    clpar_dataset train, test;
    if (clpar_dataset_synthetic(1, 256, 64, &train, &test) != CLPAR_OK) return fail("data");
    clpar_trainer_config cfg = {0};
    clpar_mlp_shape_parse(&cfg.shape, "10,32,32,32,5");
    cfg.loss = CLPAR_LOSS_MSE;
    cfg.optim = clpar_optim_defaults(CLPAR_OPTIM_SGD);
    cfg.optim.lr = 0.05f;
    cfg.batch = 64;
    cfg.dp = cfg.tp = cfg.accum = 1;
    cfg.pp = 2;
    cfg.micro_batches = 4;
    cfg.schedule = CLPAR_SCHEDULE_GPIPE;
    cfg.stage_layers[0] = 2, cfg.stage_layers[1] = 2;
    cfg.shuffle = 0;
    cfg.devices = devices;
    cfg.ndevices = 2;

    clpar_trainer *tr;
    if (clpar_trainer_init(rt, &cfg, &train, &tr) != CLPAR_OK) return fail("trainer");
    clpar_mesh *mesh = clpar_trainer_mesh(tr);
    clpar_mesh_set_tracing(mesh, 1);
    clpar_step_info info;
    for (int s = 0; s < 8; s++)
        if (clpar_trainer_step(tr, &info) != CLPAR_OK) return fail("step");
    printf("two stages on devices %d and %d: layers 0-1 on rank 0, layers 2-3 on rank 1; "
           "4 micro-batches of 16 per batch of 64\n",
           devices[0], devices[1]);
    int n;
    const clpar_trace_event *ev = clpar_mesh_trace(mesh, &n);
    /* the last step's forwards and backwards, in the order they started */
    clpar_trace_event *last = malloc((size_t)n * sizeof *last);
    int k = 0;
    /* the last step starts where rank 0's second-to-last optimizer update ended */
    double ends[2] = {0, 0};
    for (int i = 0; i < n; i++)
        if (ev[i].rank == 0 && !strcmp(ev[i].category, "optimizer")) {
            ends[0] = ends[1];
            ends[1] = ev[i].end_us;
        }
    double step_start = ends[0];
    for (int i = 0; i < n; i++) {
        int work = clpar_trace_event_is_compute(&ev[i]);
        /* one entry per micro-batch and stage: the layer that starts the stage's work */
        int first_layer =
            strstr(ev[i].name, ev[i].rank ? (ev[i].name[0] == 'F' ? "L2" : "L3")
                                          : (ev[i].name[0] == 'F' ? "L0" : "L1")) != 0;
        /* B is the chain of input gradients, W the weight gradients of one or more
         * micro-batches (GPipe does all of them at once) */
        if (work && first_layer && ev[i].start_us >= step_start) last[k++] = ev[i];
    }
    qsort(last, (size_t)k, sizeof *last, by_start);
    printf("order in which the stages started work in the last step:\n");
    for (int i = 0; i < k; i++) {
        char c = last[i].name[0];
        const char *micro = strchr(last[i].name, 'm') + 1;
        printf("  %8.3f ms  stage %d  %s of micro-batch%s %.*s\n",
               (last[i].start_us - last[0].start_us) / 1e3, last[i].rank,
               c == 'F'   ? "forward         "
               : c == 'B' ? "input gradients "
                          : "weight gradients",
               strchr(micro, '-') && strchr(micro, '-') < strchr(micro, ' ') ? "es" : "",
               (int)strcspn(micro, " "), micro);
    }
    free(last);
    size_t np = clpar_mlp_shape_param_count(&cfg.shape);
    float *piped = malloc(np * sizeof(float)), *single = malloc(np * sizeof(float));
    if (clpar_trainer_get_params(tr, piped) != CLPAR_OK) return fail("weights");
    clpar_trainer_free(tr);

    cfg.pp = 1;
    cfg.micro_batches = 1;
    memset(cfg.stage_layers, 0, sizeof cfg.stage_layers);
    if (clpar_trainer_init(rt, &cfg, &train, &tr) != CLPAR_OK) return fail("trainer");
    for (int s = 0; s < 8; s++)
        if (clpar_trainer_step(tr, &info) != CLPAR_OK) return fail("step");
    if (clpar_trainer_get_params(tr, single) != CLPAR_OK) return fail("weights");
    clpar_trainer_free(tr);
    double num = 0, den = 0;
    for (size_t i = 0; i < np; i++) {
        num += pow((double)piped[i] - single[i], 2);
        den += (double)single[i] * single[i];
    }
    double rel = sqrt(num / den);
    printf("after 8 steps: relative L2 difference %.3g between the pipeline and one device: %s\n",
           rel, rel < 1e-5 ? "they agree" : "THEY DIFFER");
    free(piped);
    free(single);
    clpar_dataset_free(&train);
    clpar_dataset_free(&test);
    clpar_runtime_free(rt);
    return rel < 1e-5 ? 0 : 1;
}
