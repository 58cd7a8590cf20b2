/* Internal to the trainer level: the trainer's state, shared by the training loop
 * (trainer.c) and checkpoints (checkpoint.c). */
#ifndef CLPAR_TRAINER_INTERNAL_H
#define CLPAR_TRAINER_INTERNAL_H

#include "clpar/trainer.h"
#include "../runtime/internal.h"

/* The model a trainer configuration trains. */
static inline clpar_model_spec trainer_model(const clpar_trainer_config *c) {
    clpar_model_spec m;
    m.mlp = c->shape;
    m.gpt = c->gpt;
    return m;
}

struct clpar_trainer {
    clpar_trainer_config cfg; /* devices and init_path dropped; data points at data_name */
    char *data_name;
    const clpar_dataset *train;
    clpar_device *devs[CLPAR_MAX_RANKS];
    int ndevs;
    clpar_mesh *mesh;
    clpar_world *world; /* borrowed from the configuration; NULL: one process */
    size_t *order;
    long step, epoch;
    size_t pos; /* next sample of the epoch */
    float *bx, *btargets;
    int *blabels;
    size_t nparams;
};

/* A measurement as the planner's cache holds it, "gflops h2d_gbs d2h_gbs", into the
 * clpar_device_measure at user; 1 when it is one (every number positive). */
int clpar_planner_parse_measure(const char *value, void *user);

#endif
