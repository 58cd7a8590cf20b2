/* The strategies level's words: pipeline schedules and gradient reductions. */
#include "clpar/strategy.h"
#include "../runtime/internal.h"

static const char *const schedule_names[] = {"gpipe", "1f1b", "auto"};
static const char *const reduce_names[] = {"mean", "sum"};

CLPAR_ENUM_WORDS(clpar_schedule, clpar_schedule_name, clpar_schedule_parse, "schedule",
                 schedule_names)
CLPAR_ENUM_WORDS(clpar_reduce_mode, clpar_reduce_mode_name, clpar_reduce_mode_parse, "reduce",
                 reduce_names)
