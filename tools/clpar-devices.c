/* clpar-devices: lists every OpenCL device with the index clpar's device specs use, and with
 * --bench measures SGEMM throughput and host<->device bandwidth per device. */
#include "cli.h"
#include "devices_bench.h"
#include "clpar/gpt.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *prog = "clpar-devices";
/* Under mpirun, --plan also measures the link between processes and plans for all of them;
 * process 0 prints. */
static clpar_world *world;

static void usage(void) {
    printf("usage: clpar-devices [--json] [--bench [--model MODEL --batch B]] [--devices SPEC] "
           "[--size N]\n"
           "       clpar-devices --tune [--model MODEL] [--batch B[,B...]] [--devices SPEC] "
           "[--candidates N]\n"
           "       clpar-devices --plan --model MODEL --batch B [--devices SPEC] [--remeasure] "
           "[--json]\n"
           "Lists the OpenCL devices clpar can use, with the indices that --devices takes.\n"
           "  --json          print JSON instead of a table\n"
           "  --bench         also measure each device's fp32 peak (FMA chains), CLBlast SGEMM\n"
           "                  GFLOP/s (N x N x N) and host-to-device and device-to-host\n"
           "                  bandwidth; with --model SIZES --batch B, also every GEMM of\n"
           "                  that MLP's training step (forward, input and weight gradient of\n"
           "                  each layer) with its GFLOP/s and share of the peak; with\n"
           "                  --model gpt:..., a GPT's products and other kernels, each with\n"
           "                  its calls per step (batch in sequences, default 8)\n"
           "  --devices SPEC  only these devices: all (default), cpu, gpu, or indices like 0,2\n"
           "  --size N        SGEMM size for --bench (default 1024)\n"
           "  --plan          measure the devices on the model (sizes like 784,256,10, or\n"
           "                  gpt:layers=L,heads=H,embd=C,ctx=T[,vocab=V], vocab 256 unless\n"
           "                  given, batch in sequences; cached on disk) and predict, for\n"
           "                  every mesh of data, pipeline and tensor parallelism, the step time,\n"
           "                  memory, bytes moved and bubble; print the best with their\n"
           "                  clpar-train command lines\n"
           "                  (under mpirun: also the link between the processes, measured\n"
           "                  by ping-pong, for meshes spread over them)\n"
           "  --remeasure     ignore the measurement cache\n"
           "  --top N         how many meshes --plan prints (default 5)\n"
           "  --tune          find the fastest GEMM configuration (clpar's kernels or\n"
           "                  CLBlast's) for each device on the products of --model (an MLP\n"
           "                  or a GPT, as for --plan) at --batch (default 784,256,128,10 at\n"
           "                  128), and the products another runs faster still, checked\n"
           "                  against the host; later runs use them ($XDG_CACHE_HOME or\n"
           "                  ~/.cache, clpar/gemm.tsv; routes of other shapes are kept);\n"
           "                  several batches (128,256: the rows of dp 2 and of one device)\n"
           "                  are tuned together\n"
           "  --candidates N  configurations --tune tries (default 32)\n"
           "Several PoCL devices on one CPU: POCL_DEVICES=\"pthread pthread\" "
           "POCL_MAX_PTHREAD_COUNT=1\n");
}

static int plan(clpar_runtime *rt, const int *idx, int n, const char *model, long batch,
                int remeasure, int json, int top) {
    clpar_mesh_config base;
    memset(&base, 0, sizeof base);
    clpar_model_spec spec;
    clpar_status st = clpar_model_parse(model, &spec);
    if (st == CLPAR_OK && clpar_model_is_gpt(&spec) && !spec.gpt.vocab)
        spec.gpt.vocab = 256; /* text data's bytes, as clpar-train's text: data gives it */
    if (st == CLPAR_OK && clpar_model_is_gpt(&spec)) st = clpar_gpt_config_check(&spec.gpt);
    if (st != CLPAR_OK) return cli_fail(prog, st);
    base.shape = spec.mlp;
    base.gpt = spec.gpt;
    base.loss = CLPAR_LOSS_XENT;
    base.optim = clpar_optim_defaults(CLPAR_OPTIM_ADAM);
    base.max_batch = (size_t)batch;
    base.schedule = CLPAR_SCHEDULE_AUTO; /* as clpar-train runs the plans it prints */
    clpar_device_measure m[64];
    if (n > 64) n = 64;
    /* the link first: a collective, before any process can fail alone */
    clpar_link link;
    if ((st = clpar_planner_measure_link(world, &link)) != CLPAR_OK) return cli_fail(prog, st);
    if (link.procs > 1) {
        if (!json)
            printf("link between processes 0 (%s) and 1 (%s): %.2f GB/s, %.1f us latency "
                   "(ping-pong); planning for %d processes with these devices each, %d on a "
                   "host at most (sharing its cores)\n",
                   clpar_world_host(world, 0), clpar_world_host(world, 1), link.gbs,
                   link.latency_s * 1e6, link.procs, link.per_host);
    }
    for (int i = 0; i < n; i++) {
        if (!json) {
            printf("measuring device %d on %s at batch %ld...", idx[i], model, batch);
            fflush(stdout);
        }
        st = clpar_planner_measure(rt, idx[i], &spec, (size_t)batch, remeasure, &m[i]);
        if (st != CLPAR_OK) {
            if (!json) printf("\n");
            return cli_fail(prog, st);
        }
        if (!json)
            printf(" %.2f GFLOP/s, %.2f GB/s to, %.2f GB/s from the device%s\n", m[i].gflops,
                   m[i].h2d_gbs, m[i].d2h_gbs, m[i].cached ? " (cached)" : "");
    }
    clpar_plan plans[256];
    int count;
    st = clpar_planner_plan_link(&base, m, n, &link, plans, 256, &count);
    if (st != CLPAR_OK) return cli_fail(prog, st);
    int shown = count < top ? count : top;
    if (json)
        printf("{\"model\": \"%s\", \"batch\": %ld, \"plans\": [\n", model, batch);
    else
        printf("%d feasible meshes; the best %d:\n", count, shown);
    for (int i = 0; i < shown; i++) {
        const clpar_plan *p = &plans[i];
        char devs[512] = "", stages[128] = "";
        size_t u = 0;
        for (int r = 0; r < p->cfg.dp / link.procs * p->cfg.pp * p->cfg.tp; r++)
            u += (size_t)snprintf(devs + u, sizeof devs - u, "%s%d", r ? "," : "", idx[r]);
        u = 0;
        for (int s = 0; s < p->cfg.pp; s++)
            u += (size_t)snprintf(stages + u, sizeof stages - u, "%s%d", s ? "," : "",
                                  p->cfg.stage_layers[s]);
        char cmd[1024], launch[32] = "";
        if (link.procs > 1) snprintf(launch, sizeof launch, "mpirun -np %d ", link.procs);
        snprintf(cmd, sizeof cmd,
                 "%sclpar-train --model %s --batch %ld --devices %s --dp %d --pp %d --tp %d%s%s%s",
                 launch, model, batch, devs, p->cfg.dp, p->cfg.pp, p->cfg.tp,
                 p->cfg.pp > 1 ? " --stages " : "", p->cfg.pp > 1 ? stages : "", "");
        char micro[32] = "";
        if (p->cfg.micro > 1) snprintf(micro, sizeof micro, " --micro-batches %d", p->cfg.micro);
        if (json) {
            printf("  {\"dp\": %d, \"pp\": %d, \"tp\": %d, \"micro_batches\": %d, "
                   "\"step_ms\": %.3f, \"compute_ms\": %.3f, \"comm_ms\": %.3f, \"bubble\": %.4f, "
                   "\"bytes_per_step\": %llu, \"max_device_bytes\": %zu, \"processes\": %d, "
                   "\"link_ms\": %.3f, \"link_bytes\": %llu, \"command\": \"%s%s\"}%s\n",
                   p->cfg.dp, p->cfg.pp, p->cfg.tp, p->cfg.micro, p->step_s * 1e3,
                   p->compute_s * 1e3, p->comm_s * 1e3, p->bubble,
                   (unsigned long long)p->bytes_per_step, p->max_device_bytes, link.procs,
                   p->link_s * 1e3, (unsigned long long)p->link_bytes, cmd, micro,
                   i + 1 < shown ? "," : "");
        } else {
            printf("%d. dp %d x pp %d x tp %d: %.2f ms per step (%.2f compute, %.2f copies), "
                   "%.0f samples/s, bubble %.1f%%, %.2f MiB on the fullest device, %.2f MB moved "
                   "per step\n   %s%s\n",
                   i + 1, p->cfg.dp, p->cfg.pp, p->cfg.tp, p->step_s * 1e3, p->compute_s * 1e3,
                   p->comm_s * 1e3, (double)batch / p->step_s, 100 * p->bubble,
                   p->max_device_bytes / 1048576.0, p->bytes_per_step / 1e6, cmd, micro);
            if (link.procs > 1)
                printf("   between processes: %.2f MB sent per process and step, %.2f ms on the "
                       "link (part of the copies)\n",
                       p->link_bytes / 1e6, p->link_s * 1e3);
        }
    }
    if (json) printf("]}\n");
    return 0;
}

/* Keeps the routes of an earlier tuning (another model's) whose shapes this one did not
 * measure, while they fit the limits. */
static void keep_routes(const clpar_gemm_tuning *old, const clpar_gemm_shape *s, int ns,
                        clpar_gemm_tuning *t) {
    for (int i = 0; i < old->nroutes && t->nroutes < CLPAR_GEMM_MAX_ROUTES; i++) {
        int measured = 0;
        for (int j = 0; j < ns && !measured; j++)
            measured = !memcmp(&s[j], &old->routes[i].shape, sizeof s[j]);
        if (measured) continue;
        t->routes[t->nroutes++] = old->routes[i];
        if (!clpar_gemm_tuning_fits(t)) t->nroutes--; /* one kernel set too many */
    }
}

static void shape_text(const clpar_gemm_shape *s, char *buf, size_t n) {
    snprintf(buf, n, "%c%c %zux%zux%zu", s->trans_a ? 'T' : 'N', s->trans_b ? 'T' : 'N', s->m, s->n,
             s->k);
}

/* Times again, after all the others, the untuned configuration (cand[0]) and those within
 * 25% of the fastest, keeping each product's faster time of the two: single timings on a
 * shared machine mislead (one process timed the untuned at 1.1 ms, the next at 1.9, the
 * first candidate running right after start-up), and these decide the choice and the
 * reported gain. */
static void retime_finalists(clpar_device *d, const clpar_gemm_config *cand, int nc,
                             const clpar_gemm_shape *s, int ns, double *times) {
    double fastest = INFINITY, *again = malloc((size_t)ns * sizeof *again);
    if (!again) return; /* the first timings stand */
    for (int c = 0; c < nc; c++) {
        double t = 0;
        for (int j = 0; j < ns; j++)
            t += times[(size_t)c * ns + j];
        if (t < fastest) fastest = t;
    }
    for (int c = 0; c < nc && isfinite(fastest); c++) {
        double t = 0, t2;
        for (int j = 0; j < ns; j++)
            t += times[(size_t)c * ns + j];
        if (!isfinite(t) || (c > 0 && t > 1.25 * fastest)) continue;
        if (clpar_gemm_apply(d, &cand[c], 1) != CLPAR_OK ||
            clpar_gemm_time(d, s, ns, &t2, again) != CLPAR_OK)
            continue; /* it ran once: keep that */
        for (int j = 0; j < ns; j++)
            times[(size_t)c * ns + j] = fmin(times[(size_t)c * ns + j], again[j]);
        char text[512];
        clpar_gemm_config_format(&cand[c], text, sizeof text);
        printf("  again %.3f ms: %s\n", t2 * 1e3, text);
    }
    free(again);
}

/* --tune: per device, the GEMM configuration that runs the model's products fastest, and the
 * shapes that another runs faster still, checked against the host and kept in the cache that
 * every later run applies. */
static int tune(clpar_runtime *rt, const int *idx, int n, const char *model, const long *batches,
                int nbatches, const char *batch, int candidates) {
    clpar_model_spec spec;
    clpar_status st = clpar_model_parse(model, &spec);
    if (st != CLPAR_OK) return cli_fail(prog, st);
    enum { MAXS = 3 * CLPAR_MAX_LAYERS + 3 }; /* an MLP's three per layer, or a GPT's */
    clpar_gemm_shape s[MAXS];
    int ns = 0;
    for (int b = 0; b < nbatches; b++) /* every batch's products, each shape once */
        ns = clpar_model_gemm_shapes(&spec, (size_t)batches[b], s, ns, MAXS);
    if (ns > MAXS) ns = MAXS;
    for (int i = 0; i < n; i++) {
        clpar_device *d;
        st = clpar_device_init(rt, idx[i], &d);
        if (st != CLPAR_OK) return cli_fail(prog, st);
        clpar_gemm_config cand[256], fallback;
        int nc = clpar_gemm_candidates(d, cand, candidates);
        double *times = malloc((size_t)nc * (size_t)ns * sizeof *times);
        if (!times) {
            clpar_device_free(d);
            fprintf(stderr, "%s: error: out of memory\n", prog);
            return 1;
        }
        printf("device %d (%s): %d GEMM configurations on %s at batch %s (%d products)\n", idx[i],
               clpar_device_get_info(d)->name, nc, model, batch, ns);
        for (int c = 0; c < nc; c++) {
            char text[512];
            clpar_gemm_config_format(&cand[c], text, sizeof text);
            double t = INFINITY;
            st = clpar_gemm_apply(d, &cand[c], 1);
            if (st == CLPAR_OK) st = clpar_gemm_time(d, s, ns, &t, times + (size_t)c * ns);
            if (st == CLPAR_OK)
                printf("  %7.3f ms  %s%s\n", t * 1e3, text, c == 0 ? "  (untuned)" : "");
            else
                printf("  skipped   %s: %s\n", text, clpar_last_error());
            fflush(stdout);
            if (st != CLPAR_OK)
                for (int j = 0; j < ns; j++)
                    times[(size_t)c * ns + j] = INFINITY;
        }
        retime_finalists(d, cand, nc, s, ns, times);
        clpar_gemm_tuning best, old;
        clpar_gemm_fallback(d, &fallback);
        int picks[MAXS];
        int b = clpar_gemm_choose(cand, nc, &fallback, s, ns, times, &best, picks);
        double first_t = 0, base_t = 0, routed_t = 0;
        for (int j = 0; j < ns && b >= 0; j++) {
            first_t += times[j];
            base_t += times[(size_t)b * ns + j];
            routed_t += times[(size_t)picks[j] * ns + j];
        }
        const clpar_device_info *info = clpar_device_get_info(d);
        if (b >= 0) {
            int had = clpar_gemm_cache_lookup(rt, info, &old);
            int measured = best.nroutes;
            if (had) keep_routes(&old, s, ns, &best);
            char text[512];
            clpar_gemm_config_format(&best.base, text, sizeof text);
            printf("device %d: best %.3f ms (%.2fx the untuned %.3f ms): %s\n", idx[i],
                   base_t * 1e3, first_t / base_t, first_t * 1e3, text);
            for (int r = 0; r < measured; r++) {
                char shape[128], how[512];
                shape_text(&best.routes[r].shape, shape, sizeof shape);
                if (best.routes[r].config.path == CLPAR_GEMM_CLPAR)
                    clpar_gemm_config_format(&best.routes[r].config, how, sizeof how);
                else
                    snprintf(how, sizeof how, "CLBlast");
                printf("  %s runs faster on %s\n", shape, how);
            }
            if (measured)
                printf("device %d: with %d product%s routed: %.3f ms (%.2fx the untuned)\n", idx[i],
                       measured, measured == 1 ? "" : "s", routed_t * 1e3, first_t / routed_t);
            if (best.nroutes > measured)
                printf("device %d: %d route%s of an earlier tuning kept (other shapes)\n", idx[i],
                       best.nroutes - measured, best.nroutes - measured == 1 ? "" : "s");
            st = clpar_gemm_cache_store(rt, info, &best);
        }
        free(times);
        clpar_device_free(d);
        if (b < 0) {
            fprintf(stderr, "%s: error: no GEMM configuration worked on device %d\n", prog, idx[i]);
            return 1;
        }
        if (st != CLPAR_OK) return cli_fail(prog, st);
        printf("device %d: saved for later runs\n", idx[i]);
    }
    return 0;
}

static void json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static int session(int argc, char **argv) {
    int json = 0, bench = 0, do_plan = 0, remeasure = 0, do_tune = 0;
    long candidates = 32;
    const char *model = NULL;
    long batch = 0, top = 5, batches[8] = {128};
    int nbatches = 1;
    const char *batch_text = NULL;
    const char *spec = "all";
    long size = 1024;
    static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                         {"bench", no_argument, 0, 'b'},
                                         {"devices", required_argument, 0, 'd'},
                                         {"size", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},
                                         {"plan", no_argument, 0, 'p'},
                                         {"remeasure", no_argument, 0, 'r'},
                                         {"model", required_argument, 0, 'm'},
                                         {"batch", required_argument, 0, 'B'},
                                         {"top", required_argument, 0, 't'},
                                         {"tune", no_argument, 0, 'T'},
                                         {"candidates", required_argument, 0, 'C'},
                                         {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = 1;
            break;
        case 'b':
            bench = 1;
            break;
        case 'd':
            spec = optarg;
            break;
        case 's':
            if (cli_long(prog, "--size", optarg, 16, 8192, &size)) return 2;
            break;
        case 'h':
            usage();
            return 0;
        case 'p':
            do_plan = 1;
            break;
        case 'r':
            remeasure = 1;
            break;
        case 'm':
            model = optarg;
            break;
        case 'B':
            batch_text = optarg; /* --tune takes a list: parsed below */
            break;
        case 't':
            if (cli_long(prog, "--top", optarg, 1, 256, &top)) return 2;
            break;
        case 'T':
            do_tune = 1;
            break;
        case 'C':
            if (cli_long(prog, "--candidates", optarg, 1, 256, &candidates)) return 2;
            break;
        default:
            return cli_usage_error(prog, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error(prog, "unexpected argument '%s'", argv[optind]);
    if (batch_text && do_tune) { /* "128" or "128,256": the rows each run's replicas see */
        char one[32];
        const char *p = batch_text;
        for (nbatches = 0;; nbatches++) {
            size_t len = strcspn(p, ",");
            if (nbatches == 8 || len >= sizeof one)
                return cli_usage_error(prog, "--batch %s: at most 8 batch sizes", batch_text);
            memcpy(one, p, len);
            one[len] = 0;
            if (cli_long(prog, "--batch", one, 1, 1L << 24, &batches[nbatches])) return 2;
            if (!p[len]) break;
            p += len + 1;
        }
        nbatches++;
    } else if (batch_text && cli_long(prog, "--batch", batch_text, 1, 1L << 24, &batch)) {
        return 2;
    }
    if (do_plan && (!model || !batch))
        return cli_usage_error(prog, "--plan needs --model MODEL and --batch B");
    clpar_runtime *rt;
    clpar_status st = clpar_runtime_init(&rt);
    if (st != CLPAR_OK) return cli_fail(prog, st);
    int idx[CLPAR_MAX_RANKS], n;
    st = clpar_runtime_parse_spec(rt, spec, idx, CLPAR_MAX_RANKS, &n);
    if (st != CLPAR_OK) {
        clpar_runtime_free(rt);
        return cli_fail(prog, st);
    }
    if (do_tune) {
        int rc = tune(rt, idx, n, model ? model : "784,256,128,10", batches, nbatches,
                      batch_text ? batch_text : "128", (int)candidates);
        clpar_runtime_free(rt);
        return rc;
    }
    if (do_plan) {
        int rc = plan(rt, idx, n, model, batch, remeasure, json, (int)top);
        clpar_runtime_free(rt);
        return rc;
    }
    clpar_model_spec mspec;
    if (bench && model) st = clpar_model_parse(model, &mspec);
    if (bench && model && st == CLPAR_OK && clpar_model_is_gpt(&mspec)) {
        if (!mspec.gpt.vocab) mspec.gpt.vocab = 256; /* text data's bytes */
        st = clpar_gpt_config_check(&mspec.gpt);
    }
    if (bench && model && st != CLPAR_OK) {
        clpar_runtime_free(rt);
        return cli_fail(prog, st);
    }
    int gpt = bench && model && clpar_model_is_gpt(&mspec);
    if (bench && model && !batch) batch = gpt ? 8 : 128;
    enum { MAXP = 3 * CLPAR_MAX_LAYERS > BENCH_GPT_OPS ? 3 * CLPAR_MAX_LAYERS : BENCH_GPT_OPS };
    bench_result *res = calloc((size_t)n, sizeof *res);
    bench_product *prods = calloc((size_t)n * MAXP, sizeof *prods);
    int *nprods = calloc((size_t)n, sizeof *nprods);
    if (!res || !prods || !nprods) st = CLPAR_ENOMEM;
    for (int i = 0; i < n && bench && st == CLPAR_OK; i++) {
        st = bench_device(rt, idx[i], (size_t)size, &res[i]);
        if (st == CLPAR_OK && model && gpt)
            st = bench_gpt(rt, idx[i], &mspec, (size_t)batch, prods + (size_t)i * MAXP, MAXP,
                           &nprods[i]);
        else if (st == CLPAR_OK && model)
            st = bench_products(rt, idx[i], &mspec, (size_t)batch, prods + (size_t)i * MAXP, MAXP,
                                &nprods[i]);
    }
    if (st != CLPAR_OK) {
        free(res);
        free(prods);
        free(nprods);
        clpar_runtime_free(rt);
        return cli_fail(prog, st);
    }
    if (json)
        printf("[\n");
    else {
        printf("%-5s %-28s %-40s %-5s %-24s %-14s %4s %6s %10s %10s", "index", "platform", "device",
               "type", "vendor", "opencl", "cus", "mhz", "mem_mib", "maxalloc");
        if (bench) printf(" %8s %9s %8s %8s", "peak_gf", "sgemm_gf", "h2d_gbs", "d2h_gbs");
        printf("\n");
    }
    for (int i = 0; i < n; i++) {
        const clpar_device_info *d = clpar_runtime_device_info(rt, idx[i]);
        char ver[64];
        /* "OpenCL 3.0 PoCL ..." -> "3.0" for the table */
        if (sscanf(d->version, "OpenCL %63s", ver) != 1)
            snprintf(ver, sizeof ver, "%s", d->version);
        if (json) {
            printf("  {\"index\": %d, \"platform\": ", d->index);
            json_string(d->platform_name);
            printf(", \"platform_index\": %d, \"name\": ", d->platform);
            json_string(d->name);
            printf(", \"type\": \"%s\", \"vendor\": ", clpar_device_type_name(d->type));
            json_string(d->vendor);
            printf(", \"opencl_version\": ");
            json_string(d->version);
            printf(", \"compute_units\": %u, \"clock_mhz\": %u, \"global_mem_bytes\": %llu, "
                   "\"max_alloc_bytes\": %llu",
                   d->compute_units, d->clock_mhz, (unsigned long long)d->global_mem,
                   (unsigned long long)d->max_alloc);
            if (bench)
                printf(", \"peak_gflops\": %.2f, \"sgemm_size\": %ld, \"sgemm_gflops\": %.2f, "
                       "\"h2d_gbs\": %.3f, \"d2h_gbs\": %.3f",
                       res[i].peak_gflops, size, res[i].gflops, res[i].h2d_gbs, res[i].d2h_gbs);
            for (int j = 0; j < nprods[i]; j++) {
                const bench_product *p = &prods[(size_t)i * MAXP + j];
                printf("%s{", j ? ", " : ", \"products\": [");
                if (p->name)
                    printf("\"module\": \"%s\", \"per_step\": %d, ", p->name, p->per_step);
                else
                    printf("\"layer\": %d, ", p->layer);
                printf("\"gemm\": \"%s\", \"m\": %zu, \"n\": %zu, \"k\": %zu, \"ms\": %.4f, "
                       "\"gflops\": %.2f, \"share_of_peak\": %.4f}%s",
                       p->what, p->m, p->n, p->k, p->seconds * 1e3, p->gflops,
                       p->gflops / res[i].peak_gflops, j + 1 < nprods[i] ? "" : "]");
            }
            printf("}%s\n", i + 1 < n ? "," : "");
        } else {
            printf("%-5d %-28.28s %-40.40s %-5s %-24.24s %-14.14s %4u %6u %10llu %10llu", d->index,
                   d->platform_name, d->name, clpar_device_type_name(d->type), d->vendor, ver,
                   d->compute_units, d->clock_mhz, (unsigned long long)(d->global_mem >> 20),
                   (unsigned long long)(d->max_alloc >> 20));
            if (bench)
                printf(" %8.2f %9.2f %8.3f %8.3f", res[i].peak_gflops, res[i].gflops,
                       res[i].h2d_gbs, res[i].d2h_gbs);
            printf("\n");
            double gemm_s = 0, other_s = 0; /* one step's, from the calls timed alone */
            for (int j = 0; j < nprods[i]; j++) {
                const bench_product *p = &prods[(size_t)i * MAXP + j];
                if (!j) printf("      %s at batch %ld:\n", model, batch);
                if (!p->name)
                    printf(
                        "      layer %d %-11s %5zu x %5zu x %5zu: %9.3f ms %8.2f GFLOP/s %5.1f%% "
                        "of peak\n",
                        p->layer, p->what, p->m, p->n, p->k, p->seconds * 1e3, p->gflops,
                        100.0 * p->gflops / res[i].peak_gflops);
                else if (p->k)
                    printf("      %-14s %-11s %5zu x %5zu x %5zu: %9.3f ms %8.2f GFLOP/s %5.1f%% "
                           "of peak, %d per step\n",
                           p->name, p->what, p->m, p->n, p->k, p->seconds * 1e3, p->gflops,
                           100.0 * p->gflops / res[i].peak_gflops, p->per_step);
                else
                    printf("      %-14s %-11s %5zu x %5zu        : %9.3f ms %37s %d per step\n",
                           p->name, p->what, p->m, p->n, p->seconds * 1e3, "", p->per_step);
                *(p->k ? &gemm_s : &other_s) += p->seconds * p->per_step;
            }
            if (gpt && nprods[i])
                printf("      one step, from these calls alone: GEMMs %.1f ms, other kernels "
                       "%.1f ms (not timed: embeddings, residual adds, the optimizer)\n",
                       gemm_s * 1e3, other_s * 1e3);
        }
    }
    if (json) printf("]\n");
    free(res);
    free(prods);
    free(nprods);
    clpar_runtime_free(rt);
    return 0;
}

int main(int argc, char **argv) {
    clpar_status st = cli_world_start(&world, NULL);
    if (st != CLPAR_OK) return cli_fail(prog, st);
    /* one exit status for all: a process that failed alone fails the run */
    int rc = cli_agree(prog, world, session(argc, argv));
    clpar_world_free(world);
    return rc;
}
