/*  test_pm_sweep_plugin.c — a tiny model plugin for pm-sweep's end-to-end
    tests: outputs y = a * x + b and z = x * x, where x is the row's first
    column and a, b are build arguments (default 1 and 0); a row with x < 0
    fails.  Build argument fail_build=1 makes build fail.                  */
#include <stdio.h>
#include <stdlib.h>

#include "pm_model.h"

#define S_EXPORT __attribute__ ((visibility ("default")))

typedef struct {
    double a, b;
} s_state_t;

static const char *const s_names[] = {"y", "z"};

S_EXPORT int
pm_plugin_abi_version (void)
{
    return PM_MODEL_ABI_VERSION;
}

S_EXPORT void *
pm_plugin_build (const pm_model_args_t *args, char *err, size_t err_size)
{
    if (atoi (pm_model_arg (args, "fail_build", "0"))) {
        snprintf (err, err_size, "asked to fail (fail_build=1)");
        return NULL;
    }
    s_state_t *state = calloc (1, sizeof *state);
    if (!state) {
        snprintf (err, err_size, "out of memory");
        return NULL;
    }
    state->a = atof (pm_model_arg (args, "a", "1"));
    state->b = atof (pm_model_arg (args, "b", "0"));
    return state;
}

S_EXPORT size_t
pm_plugin_output_names (void *state, const char *const **names)
{
    (void) state;
    *names = s_names;
    return 2;
}

S_EXPORT int
pm_plugin_execute (void *state_, const double *params, size_t nparams, double *outputs,
                   size_t noutputs)
{
    s_state_t *state = state_;
    if (nparams < 1 || noutputs != 2 || params[0] < 0)
        return 1;
    outputs[0] = state->a * params[0] + state->b;
    outputs[1] = params[0] * params[0];
    return 0;
}

S_EXPORT void
pm_plugin_destroy (void *state)
{
    free (state);
}
