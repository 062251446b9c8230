/*  pm_model.h — what a sweep evaluates: a model built once per rank and
    executed once per parameter row (the seed's do_build / do_execute).

    A model comes either from a shared object (the plugin ABI below), loaded
    with pm_model_load wherever a rank runs, or from function pointers in
    the calling program (pm_model_new).

    Plugin ABI, version 1.  A shared object exports, under a symbol prefix
    (default "pm_plugin_", chosen not to clash with libpm's own pm_model_* calls):

        int   PREFIX_abi_version (void);                       // returns 1
        void *PREFIX_build (const pm_model_args_t *args, char *err, size_t err_size);
        size_t PREFIX_output_names (void *state, const char *const **names);
        int   PREFIX_execute (void *state, const double *params, size_t nparams,
                              double *outputs, size_t noutputs);
        void  PREFIX_destroy (void *state);

    build returns the model's state (NULL on failure, with a message in err);
    output_names gives the names of its outputs (valid while state lives);
    execute evaluates one row and returns 0 on success, non-zero for a row
    that failed (its outputs then become NaN and its success flag false).   */
#ifndef PM_MODEL_H_INCLUDED
#define PM_MODEL_H_INCLUDED

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PM_MODEL_ABI_VERSION 1
#define PM_MODEL_DEFAULT_PREFIX "pm_plugin_"

/* Build arguments: key=value pairs, as given on pm-sweep's command line. */
typedef struct {
    size_t count;
    const char *const *keys;
    const char *const *values;
} pm_model_args_t;

/* Value of key in args, or fallback. */
const char *pm_model_arg (const pm_model_args_t *args, const char *key, const char *fallback);

typedef void *(*pm_model_build_fn) (const pm_model_args_t *args, char *err, size_t err_size);
typedef size_t (*pm_model_output_names_fn) (void *state, const char *const **names);
typedef int (*pm_model_execute_fn) (void *state, const double *params, size_t nparams,
                                    double *outputs, size_t noutputs);
typedef void (*pm_model_destroy_fn) (void *state);

typedef struct pm_model pm_model_t;

/* Load a plugin: spec is "path/to/lib.so" or "path/to/lib.so:prefix".  NULL
   on failure, with the reason (missing file, missing symbol, wrong ABI
   version) in err.                                                         */
pm_model_t *pm_model_load (const char *spec, char *err, size_t err_size);
/* A model from function pointers in this program (destroy may be NULL). */
pm_model_t *pm_model_new (pm_model_build_fn build, pm_model_output_names_fn output_names,
                          pm_model_execute_fn execute, pm_model_destroy_fn destroy);
/* Add a build argument (copied).  0 or PM_EINVAL / PM_ENOMEM. */
int pm_model_set_arg (pm_model_t *model, const char *key, const char *value);
void pm_model_destroy (pm_model_t **model_p);

#ifdef __cplusplus
}
#endif
#endif
