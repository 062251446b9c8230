/*  pm_params.h — the parameter space of a pm-sweep run: named parameters,
    each a grid axis (linspace, geomspace, list) or a random distribution
    (uniform, normal, lhs), turned into a row-major table of doubles.

    Grid parameters form a full grid: the cartesian product of their values,
    first parameter varying slowest (numpy meshgrid "ij" order, flattened).
    Random parameters draw `samples` rows from a self-contained PRNG
    (xoshiro256**, each column its own stream seeded by splitmix64 from the
    seed and the column's index), so a seed gives the same table on every
    machine.  A space is either all grid or all random; mixing is an error.

        pm_params_t *space = pm_params_new ();
        pm_params_add (space, "x=linspace(0, 1, 11)", err, sizeof err);
        pm_params_add (space, "y=list(1, 2, 5)", err, sizeof err);
        size_t rows;
        pm_params_rows (space, 0, PM_PARAMS_MAX_ROWS, &rows, err, sizeof err);  // 33
        double *table = pm_params_table (space, rows, 0);   // 33 x 2, malloc'd
        ...
        free (table);
        pm_params_destroy (&space);                                         */
#ifndef PM_PARAMS_H_INCLUDED
#define PM_PARAMS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Default limit on the number of rows of a sweep. */
#define PM_PARAMS_MAX_ROWS 100000000u
/* Longest parameter name, in bytes. */
#define PM_PARAMS_NAME_MAX 64

typedef enum {
    PM_PARAM_LINSPACE,
    PM_PARAM_GEOMSPACE,
    PM_PARAM_LIST,
    PM_PARAM_UNIFORM,
    PM_PARAM_NORMAL,
    PM_PARAM_LHS,
} pm_param_kind_t;

typedef struct pm_params pm_params_t;

pm_params_t *pm_params_new (void);
/* Idempotent; nulls *self_p. */
void pm_params_destroy (pm_params_t **self_p);

/* Add one parameter from "name=EXPR", e.g. "x = linspace(1, 2, 5)".
   Whitespace around tokens is allowed.  The name must be an identifier
   (letter or underscore, then letters, digits, underscores) not used
   before.  Returns 0, or -1 with the problem in err (without the spec:
   the caller says where it came from, e.g. "--param 'x=...': ").          */
int pm_params_add (pm_params_t *self, const char *spec, char *err, size_t err_size);

size_t pm_params_count (const pm_params_t *self);
const char *pm_params_name (const pm_params_t *self, size_t index);
/* Index of the parameter called name, or -1. */
int pm_params_find (const pm_params_t *self, const char *name);
pm_param_kind_t pm_params_kind (const pm_params_t *self, size_t index);
/* True if the space is random (its parameters are random kinds). */
bool pm_params_is_random (const pm_params_t *self);

/* Number of rows of the table.  samples is 0 when --samples was not given;
   random spaces need it (>= 1), grid spaces refuse it.  More than max_rows
   rows, zero rows, no parameter, or a mix of grid and random kinds: -1
   with a message in err.                                                   */
int pm_params_rows (const pm_params_t *self, uint64_t samples, uint64_t max_rows, size_t *rows,
                    char *err, size_t err_size);

/* The table: rows x count doubles, row-major, malloc'd (free it with free).
   rows must be what pm_params_rows returned.  NULL if out of memory.      */
double *pm_params_table (const pm_params_t *self, size_t rows, uint64_t seed);

#endif
