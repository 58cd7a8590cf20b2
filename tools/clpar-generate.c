/* clpar-generate: text from a GPT saved by clpar-train (or any safetensors file with
 * nanoGPT's names), continuing a prompt, on any device. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *prog = "clpar-generate";

static void usage(void) {
    printf("usage: clpar-generate --init FILE [options]\n"
           "Continues a prompt with text sampled from a GPT (bytes as tokens).\n"
           "  --init FILE         the model (safetensors, nanoGPT's names); its metadata names\n"
           "                      its size, else --model does\n"
           "  --model gpt:layers=L,heads=H,embd=C,ctx=T[,vocab=V]\n"
           "  --prompt TEXT       what to continue (default: a newline)\n"
           "  --tokens N          how many to add (default 200)\n"
           "  --temperature X     0 picks the most likely token (default 0.8)\n"
           "  --top-k K           sample among the K most likely (default 40; 0: all)\n"
           "  --seed N            the sampling's seed (default 0)\n"
           "  --devices SPEC      the device, as clpar-train takes it (default: the first)\n");
}

/* The model a file holds: its __metadata__["clpar.model"], else the one given. */
static clpar_status model_of(const char *path, const char *given, clpar_model_spec *m) {
    clpar_st *st;
    TRY_STATUS(clpar_st_read(path, &st));
    const char *text = clpar_st_metadata(st, "clpar.model");
    char copy[512];
    snprintf(copy, sizeof copy, "%s", given ? given : text ? text : "");
    clpar_st_free(st);
    if (!copy[0])
        return cli_error_status(CLPAR_EFORMAT, "%s names no model (give --model gpt:...)", path);
    TRY_STATUS(clpar_model_parse(copy, m));
    if (!clpar_model_is_gpt(m))
        return cli_error_status(CLPAR_EINVAL, "%s holds an MLP, not a GPT", path);
    if (!m->gpt.vocab) m->gpt.vocab = 256;
    return clpar_gpt_config_check(&m->gpt);
}

int main(int argc, char **argv) {
    const char *init = NULL, *model = NULL, *prompt = "\n", *devices = "all";
    long tokens = 200, top_k = 40, seed = 0;
    double temperature = 0.8;
    static const struct option opts[] = {{"init", required_argument, 0, 'i'},
                                         {"model", required_argument, 0, 'm'},
                                         {"prompt", required_argument, 0, 'p'},
                                         {"tokens", required_argument, 0, 'n'},
                                         {"temperature", required_argument, 0, 't'},
                                         {"top-k", required_argument, 0, 'k'},
                                         {"seed", required_argument, 0, 's'},
                                         {"devices", required_argument, 0, 'd'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            init = optarg;
            break;
        case 'm':
            model = optarg;
            break;
        case 'p':
            prompt = optarg;
            break;
        case 'd':
            devices = optarg;
            break;
        case 'n':
            if (cli_long(prog, "--tokens", optarg, 1, 1L << 20, &tokens)) return 2;
            break;
        case 'k':
            if (cli_long(prog, "--top-k", optarg, 0, 1L << 20, &top_k)) return 2;
            break;
        case 's':
            if (cli_long(prog, "--seed", optarg, 0, 1L << 62, &seed)) return 2;
            break;
        case 't':
            if (cli_double(prog, "--temperature", optarg, 0, &temperature)) return 2;
            break;
        case 'h':
            usage();
            return 0;
        default:
            if (optopt) return cli_usage_error(prog, "option '%s' needs a value", argv[optind - 1]);
            return cli_usage_error(prog, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error(prog, "unexpected argument '%s'", argv[optind]);
    if (!init) return cli_usage_error(prog, "--init FILE names the model");
    if (!*prompt) return cli_usage_error(prog, "--prompt is empty");
    clpar_model_spec m;
    clpar_status st = model_of(init, model, &m);
    if (st != CLPAR_OK) return cli_fail(prog, st);
    size_t n = clpar_model_param_count(&m), len = strlen(prompt);
    float *params = malloc(n * sizeof(float));
    int *ids = malloc(len * sizeof(int)), *out = malloc((size_t)tokens * sizeof(int));
    if (!params || !ids || !out) st = cli_error_status(CLPAR_ENOMEM, "out of host memory");
    for (size_t i = 0; ids && i < len; i++)
        ids[i] = (unsigned char)prompt[i];
    if (st == CLPAR_OK) st = clpar_model_file_load(init, &m, params);
    clpar_runtime *rt = NULL;
    clpar_device *d = NULL;
    clpar_gpt *g = NULL;
    int dev[CLPAR_MAX_RANKS], ndev = 0;
    if (st == CLPAR_OK) st = clpar_runtime_init(&rt);
    if (st == CLPAR_OK) st = clpar_runtime_parse_spec(rt, devices, dev, CLPAR_MAX_RANKS, &ndev);
    if (st == CLPAR_OK) st = clpar_device_init(rt, dev[0], &d);
    if (st == CLPAR_OK) st = clpar_op_warmup(d);
    if (st == CLPAR_OK) st = clpar_gpt_init(d, &m.gpt, 1, &g);
    if (st == CLPAR_OK) st = clpar_gpt_set_params(g, params);
    if (st == CLPAR_OK)
        st = clpar_gpt_generate(g, &m.gpt, ids, len, (size_t)tokens, (float)temperature, (int)top_k,
                                (uint64_t)seed, out);
    int rc = 0;
    if (st == CLPAR_OK) {
        fwrite(prompt, 1, len, stdout);
        for (long i = 0; i < tokens; i++)
            putchar(out[i]);
        putchar('\n');
    } else {
        rc = cli_fail(prog, st);
    }
    clpar_gpt_free(g);
    clpar_device_free(d);
    clpar_runtime_free(rt);
    free(params);
    free(ids);
    free(out);
    return rc;
}
