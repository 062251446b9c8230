/*  pm_command_model.h — the command-per-row model of pm-sweep.

    A command template such as "ro-sim --feed {feed} --recovery {recovery}"
    is run once per row with /bin/sh -c, every {name} replaced by the row's
    value of parameter `name` ("%.17g").  {{ and }} stand for literal braces;
    a brace not followed by an identifier and '}' is literal too, so awk's
    '{print $1}' passes through, while an unknown {name} is an error.

    The command's stdout is parsed for outputs, either
      - lines "name=value" (spaces around '=' allowed; other lines, and
        lines whose value is not a number and whose name is not an expected
        output, are ignored as chatter), or
      - one JSON object whose members are numbers (null = NaN), when the
        first non-blank character is '{'.
    A row fails (execute returns non-zero, outputs NaN) when the command
    exits non-zero or on a signal, runs past the timeout (its whole process
    group is killed), prints more than PM_COMMAND_MAX_OUTPUT bytes, prints
    nothing parsable, or gives an expected output a value that is not a
    number.  An expected output the command does not print is NaN; a name
    not expected is ignored.  The child's stdin is /dev/null, its stderr is
    pm-sweep's, and PM_RANK, PM_SIZE, PM_GROUP, PM_ENDPOINT are removed from
    its environment (so a command that is itself a pm program runs alone).

    As a pm_model_t (pm_command_model_new), the configuration travels as
    build arguments so that every rank builds the same model:
        command     the template
        params      parameter names, comma-separated, in column order
        outputs     output names, comma-separated
        timeout_ms  per-row timeout in milliseconds (absent or 0: none)   */
#ifndef PM_COMMAND_MODEL_H_INCLUDED
#define PM_COMMAND_MODEL_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "pm.h"

/* Largest stdout accepted from one row's command. */
#define PM_COMMAND_MAX_OUTPUT (1024 * 1024)
/* Longest output name, in bytes. */
#define PM_COMMAND_NAME_MAX 64

typedef struct pm_command pm_command_t;

/* Parse the template against the parameter names (the columns of a row).
   output_names (noutputs of them) are the outputs execute reports; pass
   NULL, 0 for a command used only to discover its outputs.  timeout_ms 0
   means no timeout.  NULL on a bad template (unknown placeholder, empty),
   with the reason in err.                                                  */
pm_command_t *pm_command_new (const char *template_text, const char *const *param_names,
                              size_t nparams, const char *const *output_names, size_t noutputs,
                              int64_t timeout_ms, char *err, size_t err_size);
void pm_command_destroy (pm_command_t **self_p);

/* The command line of one row, after substitution (malloc'd). */
char *pm_command_line (const pm_command_t *self, const double *params);

/* Run one row.  outputs (noutputs entries) get the values, NaN where
   missing.  Returns 0 on success; non-zero when the row failed (outputs
   all NaN), with the reason in why.                                        */
int pm_command_run (pm_command_t *self, const double *params, double *outputs, char *why,
                    size_t why_size);

/* Run one row and report the output names it printed, in order of first
   appearance (a malloc'd array of malloc'd strings; free with
   pm_command_names_free).  0, or -1 with the reason in why (the row
   failed, or printed no outputs).                                         */
int pm_command_discover (pm_command_t *self, const double *params, char ***names, size_t *count,
                         char *why, size_t why_size);
void pm_command_names_free (char **names, size_t count);

/* Is text a valid output name: [A-Za-z_][A-Za-z0-9_.]*, at most
   PM_COMMAND_NAME_MAX bytes. */
bool pm_command_is_output_name (const char *text, size_t len);

/* Split "a,b,c" into names (each trimmed and checked with
   pm_command_is_output_name; no duplicates).  0 or -1 with err.            */
int pm_command_split_names (const char *list, char ***names, size_t *count, char *err,
                            size_t err_size);

/* A pm_model_t whose build reads the arguments above; the caller sets them
   with pm_model_set_arg.  NULL if out of memory.                          */
pm_model_t *pm_command_model_new (void);

#endif
