/*  pm_sweep_check_plugin.c — a tiny model plugin for pm_sweep_check.c.

    Built several times with different definitions:
      PLUGIN_PREFIX        symbol prefix (default pm_plugin_)
      PLUGIN_ABI           what abi_version returns (default 1)
      PLUGIN_MARKER        value of the "marker" output (default 1)
      PLUGIN_OMIT_DESTROY  leave out PREFIX_destroy (a missing symbol)

    Build arguments: scale (default 1), offset (default 0), name (name of
    the first output, default "y"), fail (any value: build fails with
    "plugin build refused: fail=VALUE").
    Outputs: NAME = scale * (p[0] + ... + p[n-1]) + offset, "nargs" = the
    number of build arguments, "marker" = PLUGIN_MARKER.  A row whose p[0]
    is 13 fails (execute returns 1).                                     */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pm_model.h"

#ifndef PLUGIN_PREFIX
#define PLUGIN_PREFIX pm_plugin_
#endif
#ifndef PLUGIN_ABI
#define PLUGIN_ABI 1
#endif
#ifndef PLUGIN_MARKER
#define PLUGIN_MARKER 1
#endif

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_ (a, b)
#define SYM(name) CAT (PLUGIN_PREFIX, name)

#define EXPORT __attribute__ ((visibility ("default")))

typedef struct {
    double scale, offset;
    size_t nargs;
    char *name;
    const char *names[3];
} plugin_state_t;

EXPORT int SYM (abi_version) (void);
EXPORT void *SYM (build) (const pm_model_args_t *args, char *err, size_t err_size);
EXPORT size_t SYM (output_names) (void *state, const char *const **names);
EXPORT int SYM (execute) (void *state, const double *params, size_t nparams, double *outputs,
                          size_t noutputs);
#ifndef PLUGIN_OMIT_DESTROY
EXPORT void SYM (destroy) (void *state);
#endif

int SYM (abi_version) (void)
{
    return PLUGIN_ABI;
}

void *SYM (build) (const pm_model_args_t *args, char *err, size_t err_size)
{
    const char *fail = pm_model_arg (args, "fail", NULL);
    if (fail) {
        snprintf (err, err_size, "plugin build refused: fail=%s", fail);
        return NULL;
    }
    plugin_state_t *s = calloc (1, sizeof *s);
    if (!s) {
        snprintf (err, err_size, "out of memory");
        return NULL;
    }
    s->scale = strtod (pm_model_arg (args, "scale", "1"), NULL);
    s->offset = strtod (pm_model_arg (args, "offset", "0"), NULL);
    s->nargs = args ? args->count : 0;
    s->name = strdup (pm_model_arg (args, "name", "y"));
    if (!s->name) {
        free (s);
        snprintf (err, err_size, "out of memory");
        return NULL;
    }
    s->names[0] = s->name;
    s->names[1] = "nargs";
    s->names[2] = "marker";
    return s;
}

size_t SYM (output_names) (void *state, const char *const **names)
{
    plugin_state_t *s = state;
    *names = s->names;
    return 3;
}

int SYM (execute) (void *state, const double *params, size_t nparams, double *outputs,
                   size_t noutputs)
{
    plugin_state_t *s = state;
    if (noutputs != 3 || nparams < 1)
        return 2;
    if (params[0] == 13.0)
        return 1;
    double sum = 0;
    for (size_t j = 0; j < nparams; j++)
        sum += params[j];
    outputs[0] = s->scale * sum + s->offset;
    outputs[1] = (double) s->nargs;
    outputs[2] = PLUGIN_MARKER;
    return 0;
}

#ifndef PLUGIN_OMIT_DESTROY
void SYM (destroy) (void *state)
{
    plugin_state_t *s = state;
    if (!s)
        return;
    free (s->name);
    free (s);
}
#endif
