/*  test_pm_sweep_plugin.c — a tiny model plugin for pm-sweep's end-to-end
    tests: outputs y = a * x + b and z = x * x, where x is the row's first
    column and a, b are build arguments (default 1 and 0); a row with x < 0
    fails.  Build argument fail_build=1 makes build fail.

    For the --resume tests: spin_us=N makes each row busy-wait N
    microseconds, and counter=FILE appends the row's x ("%.17g\n", one
    write) to FILE at each execution, so a test can tell which rows ran.  */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pm_model.h"

#define S_EXPORT __attribute__ ((visibility ("default")))

typedef struct {
    double a, b;
    long spin_us;
    int counter; /* fd, or -1 */
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
    state->spin_us = atol (pm_model_arg (args, "spin_us", "0"));
    state->counter = -1;
    const char *counter = pm_model_arg (args, "counter", NULL);
    if (counter) {
        state->counter = open (counter, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (state->counter < 0) {
            snprintf (err, err_size, "cannot open counter file %s", counter);
            free (state);
            return NULL;
        }
    }
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
    if (state->counter >= 0 && nparams >= 1) {
        char line[40];
        int len = snprintf (line, sizeof line, "%.17g\n", params[0]);
        if (write (state->counter, line, (size_t) len) != len)
            return 1;
    }
    if (state->spin_us > 0) {
        struct timespec start, now;
        clock_gettime (CLOCK_MONOTONIC, &start);
        do
            clock_gettime (CLOCK_MONOTONIC, &now);
        while ((now.tv_sec - start.tv_sec) * 1000000L + (now.tv_nsec - start.tv_nsec) / 1000
               < state->spin_us);
    }
    if (nparams < 1 || noutputs != 2 || params[0] < 0)
        return 1;
    outputs[0] = state->a * params[0] + state->b;
    outputs[1] = params[0] * params[0];
    return 0;
}

S_EXPORT void
pm_plugin_destroy (void *state_)
{
    s_state_t *state = state_;
    if (state && state->counter >= 0)
        close (state->counter);
    free (state);
}
