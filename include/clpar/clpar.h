/* clpar: training neural networks across several OpenCL devices with data,
 * tensor and pipeline parallelism. Include this for the whole public API. */
#ifndef CLPAR_H
#define CLPAR_H

#include "clpar/version.h"
#include "clpar/status.h"
#include "clpar/runtime.h"
#include "clpar/ops.h"
#include "clpar/rng.h"
#include "clpar/model.h"
#include "clpar/safetensors.h"
#include "clpar/data.h"
#include "clpar/comm.h"
#include "clpar/strategy.h"
#include "clpar/gpt.h"
#include "clpar/trainer.h"
#include "clpar/planner.h"

#endif
