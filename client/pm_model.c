/*  pm_model.c — models: plugins loaded with dlopen, or function pointers,
    plus their build arguments.                                          */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pm.h"
#include "pm_model_internal.h"

const char *
pm_model_arg (const pm_model_args_t *args, const char *key, const char *fallback)
{
    if (!args || !key)
        return fallback;
    for (size_t i = 0; i < args->count; i++)
        if (strcmp (args->keys[i], key) == 0)
            return args->values[i];
    return fallback;
}

static pm_model_t *
s_model_alloc (void)
{
    return calloc (1, sizeof (pm_model_t));
}

pm_model_t *
pm_model_new (pm_model_build_fn build, pm_model_output_names_fn output_names,
              pm_model_execute_fn execute, pm_model_destroy_fn destroy)
{
    if (!build || !output_names || !execute)
        return NULL;
    pm_model_t *self = s_model_alloc ();
    if (!self)
        return NULL;
    self->build = build;
    self->output_names = output_names;
    self->execute = execute;
    self->destroy = destroy;
    snprintf (self->name, sizeof self->name, "(in-process model)");
    return self;
}

/* dlsym of prefix + name, with a message naming the missing symbol. */
static void *
s_symbol (void *handle, const char *path, const char *prefix, const char *name, char *err,
          size_t err_size)
{
    char symbol[256];
    snprintf (symbol, sizeof symbol, "%s%s", prefix, name);
    dlerror ();
    void *address = dlsym (handle, symbol);
    if (!address)
        snprintf (err, err_size, "model %s has no symbol %s (is the prefix right? spec is "
                                 "path.so[:prefix], default prefix %s)",
                  path, symbol, PM_MODEL_DEFAULT_PREFIX);
    return address;
}

pm_model_t *
pm_model_load (const char *spec, char *err, size_t err_size)
{
    if (!spec || !*spec) {
        snprintf (err, err_size, "empty model spec (expected path.so[:prefix])");
        return NULL;
    }
    char path[4096], prefix[128];
    snprintf (path, sizeof path, "%s", spec);
    snprintf (prefix, sizeof prefix, "%s", PM_MODEL_DEFAULT_PREFIX);
    /* "lib.so:prefix": a suffix after the last ':' that holds no '/' is a prefix. */
    char *colon = strrchr (path, ':');
    if (colon && !strchr (colon + 1, '/')) {
        *colon = '\0';
        if (strlen (colon + 1) >= sizeof prefix) {
            snprintf (err, err_size, "model symbol prefix too long in '%s'", spec);
            return NULL;
        }
        snprintf (prefix, sizeof prefix, "%s", colon + 1);
    }
    /* A bare name would be looked up on the library path: mean the file. */
    char resolved[4200];
    if (!strchr (path, '/'))
        snprintf (resolved, sizeof resolved, "./%s", path);
    else
        snprintf (resolved, sizeof resolved, "%s", path);
    void *handle = dlopen (resolved, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *why = dlerror ();
        snprintf (err, err_size, "cannot load model %s: %s", resolved, why ? why : "unknown");
        return NULL;
    }
    int (*abi_version) (void) = (int (*) (void)) s_symbol (handle, resolved, prefix,
                                                             "abi_version", err, err_size);
    pm_model_t *self = NULL;
    if (!abi_version)
        goto failed;
    if (abi_version () != PM_MODEL_ABI_VERSION) {
        snprintf (err, err_size, "model %s speaks ABI version %d, this libpm speaks %d", resolved,
                  abi_version (), PM_MODEL_ABI_VERSION);
        goto failed;
    }
    self = s_model_alloc ();
    if (!self) {
        snprintf (err, err_size, "out of memory");
        goto failed;
    }
    self->dl = handle;
    if (!(self->build = (pm_model_build_fn) s_symbol (handle, resolved, prefix, "build", err,
                                                      err_size))
        || !(self->output_names = (pm_model_output_names_fn) s_symbol (
                 handle, resolved, prefix, "output_names", err, err_size))
        || !(self->execute = (pm_model_execute_fn) s_symbol (handle, resolved, prefix,
                                                             "execute", err, err_size))
        || !(self->destroy = (pm_model_destroy_fn) s_symbol (handle, resolved, prefix,
                                                             "destroy", err, err_size)))
        goto failed;
    snprintf (self->name, sizeof self->name, "%s", spec);
    return self;
failed:
    free (self);
    dlclose (handle);
    return NULL;
}

int
pm_model_set_arg (pm_model_t *self, const char *key, const char *value)
{
    if (!self || !key || !*key || !value)
        return PM_EINVAL;
    for (size_t i = 0; i < self->nargs; i++)
        if (strcmp (self->keys[i], key) == 0) {
            char *copy = strdup (value);
            if (!copy)
                return PM_ENOMEM;
            free (self->values[i]);
            self->values[i] = copy;
            return 0;
        }
    if (self->nargs == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 8;
        char **keys = realloc (self->keys, cap * sizeof *keys);
        if (!keys)
            return PM_ENOMEM;
        self->keys = keys;
        char **values = realloc (self->values, cap * sizeof *values);
        if (!values)
            return PM_ENOMEM;
        self->values = values;
        self->cap = cap;
    }
    char *key_copy = strdup (key), *value_copy = strdup (value);
    if (!key_copy || !value_copy) {
        free (key_copy);
        free (value_copy);
        return PM_ENOMEM;
    }
    self->keys[self->nargs] = key_copy;
    self->values[self->nargs] = value_copy;
    self->nargs++;
    return 0;
}

void
pm_model_destroy (pm_model_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_model_t *self = *self_p;
    for (size_t i = 0; i < self->nargs; i++) {
        free (self->keys[i]);
        free (self->values[i]);
    }
    free (self->keys);
    free (self->values);
    if (self->dl)
        dlclose (self->dl);
    free (self);
    *self_p = NULL;
}

void
pm_model_args_of (const pm_model_t *self, pm_model_args_t *args)
{
    args->count = self->nargs;
    args->keys = (const char *const *) self->keys;
    args->values = (const char *const *) self->values;
}
