/*  pm_model_internal.h — the model struct, for pm_model.c and pm_sweep.c. */
#ifndef PM_MODEL_INTERNAL_H_INCLUDED
#define PM_MODEL_INTERNAL_H_INCLUDED

#include "pm_model.h"

struct pm_model {
    void *dl;                             /* dlopen handle, NULL for in-process models */
    pm_model_build_fn build;
    pm_model_output_names_fn output_names;
    pm_model_execute_fn execute;
    pm_model_destroy_fn destroy;          /* may be NULL for in-process models */
    char **keys, **values;                /* build arguments */
    size_t nargs, cap;
    char name[256];                       /* spec, for messages */
};

/* The build arguments as the ABI passes them (valid while model lives). */
void pm_model_args_of (const pm_model_t *model, pm_model_args_t *args);

#endif
