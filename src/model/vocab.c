/* The model level's words: loss and optimizer kinds, as configurations and files spell them. */
#include "clpar/model.h"
#include "../runtime/internal.h"

static const char *const loss_names[] = {"xent", "mse"};
static const char *const optim_names[] = {"sgd", "adam", "adamw"};

CLPAR_ENUM_WORDS(clpar_loss_kind, clpar_loss_kind_name, clpar_loss_kind_parse, "loss", loss_names)
CLPAR_ENUM_WORDS(clpar_optim_kind, clpar_optim_kind_name, clpar_optim_kind_parse, "optim.kind",
                 optim_names)
