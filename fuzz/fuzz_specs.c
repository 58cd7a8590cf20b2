/* The short texts a user or a cache file hands clpar: model specs ("784,256,10",
 * "gpt:layers=..."), device specs ("0,2", "cpu", "all") against four devices, GEMM
 * configurations and device measurements as their cache files hold them (whole files of
 * "key<TAB>value" lines, through the cache reader). The first byte picks the parser. */
#include "clpar/gpt.h"
#include "clpar/model.h"
#include "clpar/ops.h"
#include "clpar/planner.h"
#include "fuzz_common.h"

#include "runtime/internal.h"
#include "trainer/trainer_internal.h"

static int accept_gemm(const char *value, void *user) {
    clpar_gemm_tuning t;
    char back[8192];
    if (!clpar_gemm_tuning_parse(value, &t)) return 0;
    clpar_gemm_tuning_format(&t, back, sizeof back); /* what a tuning writes parses again */
    if (!clpar_gemm_tuning_parse(back, &t)) abort();
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (n < 1) return 0;
    char *s = fuzz_string(data + 1, n - 1);
    switch (data[0] % 4) {
    case 0: {
        clpar_model_spec m;
        char back[512];
        if (clpar_model_parse(s, &m) == CLPAR_OK) {
            clpar_model_format(&m, back, sizeof back);
            if (clpar_model_is_gpt(&m) && m.gpt.vocab) (void)clpar_gpt_config_check(&m.gpt);
        }
        break;
    }
    case 1: {
        static clpar_device_info devices[4];
        clpar_runtime rt;
        memset(&rt, 0, sizeof rt);
        for (int i = 0; i < 4; i++)
            devices[i].type = i < 2 ? CL_DEVICE_TYPE_CPU : CL_DEVICE_TYPE_GPU;
        rt.ndevices = 4;
        rt.devices = devices;
        int idx[8], count;
        (void)clpar_runtime_parse_spec(&rt, s, idx, 8, &count);
        break;
    }
    default: { /* a cache file */
        const char *cache_dir = fuzz_dir("cache");
        char path[128];
        snprintf(path, sizeof path, "%s/cache.tsv", cache_dir);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(data + 1, 1, n - 1, f) != n - 1 || fclose(f)) abort();
        clpar_runtime rt;
        memset(&rt, 0, sizeof rt);
        snprintf(rt.cfg.cache_dir, sizeof rt.cfg.cache_dir, "%s", cache_dir);
        char value[256];
        clpar_device_measure m;
        if (data[0] % 4 == 2)
            (void)clpar_cache_lookup(&rt, "cache.tsv", "K", accept_gemm, NULL, value, sizeof value);
        else
            (void)clpar_cache_lookup(&rt, "cache.tsv", "K", clpar_planner_parse_measure, &m, value,
                                     sizeof value);
        break;
    }
    }
    free(s);
    return 0;
}
