/* Internal to the layer modules: allocation of a module with its class's extra fields. */
#ifndef CLPAR_MODULE_INTERNAL_H
#define CLPAR_MODULE_INTERNAL_H

#include "clpar/module.h"
#include "clpar/ops.h"
#include "../runtime/internal.h"

#include <stdio.h>

/* A zeroed module of `size` bytes (a class's struct that starts with clpar_module) with
 * room for nparams parameter descriptions. */
clpar_status module_alloc(const clpar_module_class *cls, const char *name, size_t size, int nparams,
                          clpar_module **out);

/* Makes a Linear module initialize as GPT-2 does: weights normal(0, std), biases zero. */
void linear_set_init_std(clpar_module *m, double std);

#endif
