/*  ro_model.c — the reverse-osmosis cost model (ro_cost.c) as a pm model
    plugin, ABI version 1, under the default symbol prefix "pm_plugin_"
    (PM_MODEL_DEFAULT_PREFIX in include/pm_model.h), so the spec needs no
    ":prefix".

        pm-sweep --model build/lib/libpm_ro_model.so \
                 --param 'feed_salinity=linspace(5,45,9)' \
                 --param 'recovery=linspace(0.3,0.7,5)' -o ro.csv

    Parameters of a row, in order: feed_salinity (g/L), recovery (0..1).
    Build arguments: those of ro_config_t (see examples/README.md); an
    unknown or repeated key, a malformed number or an out-of-range value
    fails build, with the reason in err.
    A row fails (execute returns non-zero) for a salinity that is not a
    finite number > 0, a recovery outside (0, 1), or an operating pressure
    above max_pressure_bar.

    Only the five ABI symbols are exported (the build hides the rest).  The
    plugin links libpm for pm_model_arg.                                   */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pm_model.h"
#include "ro_cost.h"

#define RO_EXPORT __attribute__ ((visibility ("default")))

/* Parameters per row. */
#define S_NPARAMS 2

RO_EXPORT int pm_plugin_abi_version (void);
RO_EXPORT void *pm_plugin_build (const pm_model_args_t *args, char *err, size_t err_size);
RO_EXPORT size_t pm_plugin_output_names (void *state, const char *const **names);
RO_EXPORT int pm_plugin_execute (void *state, const double *params, size_t nparams,
                                 double *outputs, size_t noutputs);
RO_EXPORT void pm_plugin_destroy (void *state);

int
pm_plugin_abi_version (void)
{
    return PM_MODEL_ABI_VERSION;
}

void *
pm_plugin_build (const pm_model_args_t *args, char *err, size_t err_size)
{
    ro_config_t cfg;
    ro_config_defaults (&cfg);
    if (args && args->count > 0) {
        /* Every key given must be one of ours: a misspelt key would
           otherwise be ignored silently and the sweep run on a default.    */
        for (size_t i = 0; i < args->count; i++) {
            const char *key = args->keys ? args->keys[i] : NULL;
            size_t k = 0;
            while (key && k < ro_config_key_count ()
                   && strcmp (key, ro_config_key_name (k)) != 0)
                k++;
            if (!key || k == ro_config_key_count ()) {
                /* ro_config_set writes the message that lists the keys. */
                ro_config_set (&cfg, key, NULL, err, err_size);
                return NULL;
            }
            /* pm_model_arg would take the first of two; refuse instead. */
            for (size_t j = 0; j < i; j++)
                if (strcmp (key, args->keys[j]) == 0) {
                    if (err && err_size > 0)
                        snprintf (err, err_size, "build argument %s given twice", key);
                    return NULL;
                }
        }
        for (size_t k = 0; k < ro_config_key_count (); k++) {
            const char *text = pm_model_arg (args, ro_config_key_name (k), NULL);
            if (text && ro_config_set (&cfg, ro_config_key_name (k), text, err, err_size) != 0)
                return NULL;
        }
    }
    ro_config_t *state = malloc (sizeof *state);
    if (!state) {
        if (err && err_size > 0)
            snprintf (err, err_size, "ro model: out of memory");
        return NULL;
    }
    *state = cfg;
    return state;
}

size_t
pm_plugin_output_names (void *state, const char *const **names)
{
    (void) state;
    if (names)
        *names = ro_output_names ();
    return RO_NOUTPUTS;
}

int
pm_plugin_execute (void *state, const double *params, size_t nparams, double *outputs,
                   size_t noutputs)
{
    if (!state || !params || nparams != S_NPARAMS || !outputs || noutputs != RO_NOUTPUTS)
        return -1;
    double out[RO_NOUTPUTS];
    ro_status_t status = ro_evaluate (state, params[0], params[1], out);
    for (size_t k = 0; k < RO_NOUTPUTS; k++)
        outputs[k] = status == RO_OK ? out[k] : NAN;
    return status == RO_OK ? 0 : (int) status;
}

void
pm_plugin_destroy (void *state)
{
    free (state);
}
