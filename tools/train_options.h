/* clpar-train's options: one table gives the flags, their parsing, --help and the
 * configuration field each sets (so the library's messages name the flag). */
#ifndef CLPAR_TRAIN_OPTIONS_H
#define CLPAR_TRAIN_OPTIONS_H

#include "cli.h"

typedef struct {
    const char *data, *model, *init, *save, *log, *devices, *trace, *timeline, *stages;
    const char *checkpoint, *resume;
    long batch, epochs, steps, seed, dp, accum, pp, tp, micro, checkpoint_every, warmup, eval_every;
    long zero;
    double lr, momentum, weight_decay, lr_min, clip;
    clpar_loss_kind loss;
    clpar_optim_kind optim;
    clpar_reduce_mode reduce;
    clpar_schedule schedule;
    int shuffle, balance, mesh_auto, dry_run, quiet, help;
    unsigned char given[64]; /* by the option's index in the table */
} train_options;

/* Parses argv into *o (which holds the defaults). Returns 0, or the exit status after
 * printing the one-line error (2). --help prints the usage and sets o->help. */
int train_options_parse(int argc, char **argv, train_options *o);
/* Whether the option --name was given. */
int train_options_given(const train_options *o, const char *name);
/* The flag that sets a configuration field ("dp" -> "--dp"), or NULL. */
const char *train_options_flag(const char *field, void *user);

#endif
