/*  test_slow_plugin.c — a model for the worker tests: y = x*x + 1, after
    busy-waiting "us" microseconds (a build argument), so a sweep lasts long
    enough to lose a worker in the middle of it.                          */
#include <stdlib.h>
#include <time.h>

#include "pm_model.h"

typedef struct {
    long us; /* busy-wait per row */
} s_state_t;

int pm_plugin_abi_version (void);
void *pm_plugin_build (const pm_model_args_t *args, char *err, size_t err_size);
size_t pm_plugin_output_names (void *state, const char *const **names);
int pm_plugin_execute (void *state, const double *params, size_t nparams, double *outputs,
                       size_t noutputs);
void pm_plugin_destroy (void *state);

int
pm_plugin_abi_version (void)
{
    return PM_MODEL_ABI_VERSION;
}

void *
pm_plugin_build (const pm_model_args_t *args, char *err, size_t err_size)
{
    (void) err;
    (void) err_size;
    s_state_t *state = calloc (1, sizeof *state);
    if (state)
        state->us = atol (pm_model_arg (args, "us", "0"));
    return state;
}

size_t
pm_plugin_output_names (void *state, const char *const **names)
{
    (void) state;
    static const char *const outputs[] = {"y"};
    *names = outputs;
    return 1;
}

int
pm_plugin_execute (void *state, const double *params, size_t nparams, double *outputs,
                   size_t noutputs)
{
    s_state_t *self = state;
    if (nparams < 1 || noutputs < 1)
        return 1;
    struct timespec start, now;
    clock_gettime (CLOCK_MONOTONIC, &start);
    do
        clock_gettime (CLOCK_MONOTONIC, &now);
    while ((now.tv_sec - start.tv_sec) * 1000000L + (now.tv_nsec - start.tv_nsec) / 1000 < self->us);
    outputs[0] = params[0] * params[0] + 1;
    return 0;
}

void
pm_plugin_destroy (void *state)
{
    free (state);
}
