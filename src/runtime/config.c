/* The one place clpar reads the environment: a runtime's configuration. Everything else in
 * the library takes these values from the runtime it runs under. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void clpar_runtime_config_from_env(clpar_runtime_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(cfg->cache_dir, sizeof cfg->cache_dir, "%s/clpar", xdg);
    else if (home && *home)
        snprintf(cfg->cache_dir, sizeof cfg->cache_dir, "%s/.cache/clpar", home);
    const char *kernels = getenv("CLPAR_KERNEL_DIR");
    if (kernels) snprintf(cfg->kernel_dir, sizeof cfg->kernel_dir, "%s", kernels);
    const char *gemm = getenv("CLPAR_GEMM_PATH");
    if (gemm) snprintf(cfg->gemm_path, sizeof cfg->gemm_path, "%s", gemm);
    const char *in_place = getenv("CLPAR_IN_PLACE");
    cfg->copy_in_place = in_place && strcmp(in_place, "off") == 0;
}

const clpar_runtime_config *clpar_runtime_get_config(const clpar_runtime *rt) {
    return &rt->cfg;
}
