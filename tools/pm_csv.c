/*  pm_csv.c — the results CSV of pm-sweep, written atomically.  See pm_csv.h. */
#include "pm_csv.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int
s_fail (char *err, size_t err_size, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

static int
s_fail (char *err, size_t err_size, const char *fmt, ...)
{
    if (err && err_size) {
        va_list args;
        va_start (args, fmt);
        vsnprintf (err, err_size, fmt, args);
        va_end (args);
    }
    return -1;
}

void
pm_csv_field (FILE *out, const char *text)
{
    if (!strpbrk (text, ",\"\r\n")) {
        fputs (text, out);
        return;
    }
    fputc ('"', out);
    for (const char *c = text; *c; c++) {
        if (*c == '"')
            fputc ('"', out);
        fputc (*c, out);
    }
    fputc ('"', out);
}

void
pm_csv_number (FILE *out, double value)
{
    if (isnan (value))
        fputs ("nan", out); /* never "-nan" */
    else if (isinf (value))
        fputs (value > 0 ? "inf" : "-inf", out);
    else
        fprintf (out, "%.17g", value);
}

/* The directory part of path (malloc'd). */
static char *
s_dirname (const char *path)
{
    char *copy = strdup (path);
    if (!copy)
        return NULL;
    char *dir = strdup (dirname (copy));
    free (copy);
    return dir;
}

int
pm_csv_check_target (const char *path, char *err, size_t err_size)
{
    if (!path || !*path)
        return s_fail (err, err_size, "the output file name is empty");
    if (path[strlen (path) - 1] == '/')
        return s_fail (err, err_size, "'%s' names a directory, not a file", path);
    struct stat st;
    if (stat (path, &st) == 0 && S_ISDIR (st.st_mode))
        return s_fail (err, err_size, "'%s' is a directory", path);
    char *dir = s_dirname (path);
    if (!dir)
        return s_fail (err, err_size, "out of memory");
    int rc = 0;
    if (stat (dir, &st) != 0)
        rc = s_fail (err, err_size, "cannot write '%s': directory '%s': %s", path, dir,
                     strerror (errno));
    else if (!S_ISDIR (st.st_mode))
        rc = s_fail (err, err_size, "cannot write '%s': '%s' is not a directory", path, dir);
    else if (access (dir, W_OK | X_OK) != 0)
        rc = s_fail (err, err_size, "cannot write '%s': directory '%s': %s", path, dir,
                     strerror (errno));
    free (dir);
    return rc;
}

int
pm_csv_write_atomic (const char *path, pm_csv_body_fn body, void *arg, char *err,
                     size_t err_size)
{
    char *dir = s_dirname (path);
    char *copy = strdup (path);
    char *tmp = NULL;
    if (!dir || !copy || asprintf (&tmp, "%s/.%s.tmp.XXXXXX", dir, basename (copy)) < 0) {
        free (dir);
        free (copy);
        return s_fail (err, err_size, "out of memory");
    }
    free (dir);
    free (copy);
    int fd = mkstemp (tmp);
    if (fd < 0) {
        int rc = s_fail (err, err_size, "cannot create a temporary file next to '%s': %s", path,
                         strerror (errno));
        free (tmp);
        return rc;
    }
    /* mkstemp makes it 0600; give it the mode a plain create would. */
    mode_t mask = umask (0);
    umask (mask);
    if (fchmod (fd, 0666 & ~mask) != 0) {
        /* not fatal: the file is just more private than usual */
    }
    FILE *out = fdopen (fd, "w");
    if (!out) {
        int rc = s_fail (err, err_size, "fdopen: %s", strerror (errno));
        close (fd);
        unlink (tmp);
        free (tmp);
        return rc;
    }
    int rc = body (out, arg, err, err_size);
    if (rc == 0 && (fflush (out) != 0 || ferror (out)))
        rc = s_fail (err, err_size, "cannot write '%s': %s", tmp, strerror (errno));
    if (rc == 0 && fsync (fileno (out)) != 0 && errno != EINVAL && errno != EROFS)
        rc = s_fail (err, err_size, "cannot flush '%s' to disk: %s", tmp, strerror (errno));
    if (fclose (out) != 0 && rc == 0)
        rc = s_fail (err, err_size, "cannot close '%s': %s", tmp, strerror (errno));
    if (rc == 0 && rename (tmp, path) != 0)
        rc = s_fail (err, err_size, "cannot rename '%s' to '%s': %s", tmp, path,
                     strerror (errno));
    if (rc != 0)
        unlink (tmp);
    free (tmp);
    return rc;
}

/* ---- results ------------------------------------------------------------------ */

typedef struct {
    const pm_local_results_t *entry; /* NULL: no row yet */
    size_t row;                      /* row within entry */
} s_slot_t;

typedef struct {
    const char *const *input_names;
    size_t ninputs;
    const pm_results_t *results;
    size_t failed;
} s_results_arg_t;

/* One row: its parameters, outputs and success flag. */
static void
s_write_values (FILE *out, const double *parameters, size_t cols, const double *outputs,
                size_t noutputs, unsigned char success, size_t *failed)
{
    for (size_t c = 0; c < cols; c++) {
        if (c)
            fputc (',', out);
        pm_csv_number (out, parameters[c]);
    }
    for (size_t k = 0; k < noutputs; k++) {
        fputc (',', out);
        pm_csv_number (out, outputs[k]);
    }
    fputs (success ? ",1\n" : ",0\n", out);
    if (!success)
        (*failed)++;
}

static void
s_write_row (FILE *out, const pm_local_results_t *e, size_t i, size_t *failed)
{
    s_write_values (out, e->parameters + i * e->cols, e->cols, e->outputs + i * e->noutputs,
                    e->noutputs, e->success[i], failed);
}

/* The header line: inputs, outputs, success. */
static void
s_write_header (FILE *out, const char *const *input_names, size_t ninputs,
                const char *const *output_names, size_t noutputs)
{
    for (size_t c = 0; c < ninputs; c++) {
        if (c)
            fputc (',', out);
        pm_csv_field (out, input_names[c]);
    }
    for (size_t k = 0; k < noutputs; k++) {
        fputc (',', out);
        pm_csv_field (out, output_names[k] ? output_names[k] : "");
    }
    fputs (",success\n", out);
}

static int
s_results_body (FILE *out, void *arg_, char *err, size_t err_size)
{
    s_results_arg_t *arg = arg_;
    const pm_results_t *results = arg->results;
    size_t total = pm_results_rows (results), entries = pm_results_count (results);
    size_t noutputs = pm_results_output_count (results);

    /* Check the shape of every entry, and whether they are in sample order. */
    bool in_order = true;
    size_t next = 0;
    for (size_t k = 0; k < entries; k++) {
        const pm_local_results_t *e = pm_results_get (results, k);
        if (!e)
            return s_fail (err, err_size, "results entry %zu is missing", k);
        if (e->rows && (e->cols != arg->ninputs || e->noutputs != noutputs))
            return s_fail (err, err_size,
                           "results of rank %d have %zu inputs and %zu outputs, expected %zu "
                           "and %zu",
                           e->process_number, e->cols, e->noutputs, arg->ninputs, noutputs);
        for (size_t i = 0; i < e->rows; i++, next++)
            if (e->sample_index[i] != next)
                in_order = false;
    }

    const char **names = calloc (noutputs + 1, sizeof *names);
    if (!names)
        return s_fail (err, err_size, "out of memory");
    for (size_t k = 0; k < noutputs; k++)
        names[k] = pm_results_output_name (results, k);
    s_write_header (out, arg->input_names, arg->ninputs, names, noutputs);
    free (names);

    arg->failed = 0;
    if (in_order && next != total)
        return s_fail (err, err_size, "the results hold %zu rows, expected %zu", next, total);
    if (in_order) { /* the usual case: stream the entries as they are */
        for (size_t k = 0; k < entries; k++) {
            const pm_local_results_t *e = pm_results_get (results, k);
            for (size_t i = 0; i < e->rows; i++)
                s_write_row (out, e, i, &arg->failed);
        }
        return 0;
    }
    /* Otherwise place every row by its sample index. */
    s_slot_t *slots = calloc (total ? total : 1, sizeof *slots);
    if (!slots)
        return s_fail (err, err_size, "out of memory for %zu rows", total);
    int rc = 0;
    for (size_t k = 0; k < entries && rc == 0; k++) {
        const pm_local_results_t *e = pm_results_get (results, k);
        for (size_t i = 0; i < e->rows && rc == 0; i++) {
            size_t s = e->sample_index[i];
            if (s >= total)
                rc = s_fail (err, err_size, "rank %d returned row %zu of a %zu-row sweep",
                             e->process_number, s, total);
            else if (slots[s].entry)
                rc = s_fail (err, err_size, "row %zu came back twice (ranks %d and %d)", s,
                             slots[s].entry->process_number, e->process_number);
            else {
                slots[s].entry = e;
                slots[s].row = i;
            }
        }
    }
    for (size_t s = 0; s < total && rc == 0; s++) {
        if (!slots[s].entry)
            rc = s_fail (err, err_size, "row %zu is missing from the results", s);
        else
            s_write_row (out, slots[s].entry, slots[s].row, &arg->failed);
    }
    free (slots);
    return rc;
}

int
pm_csv_write_results (const char *path, const char *const *input_names, size_t ninputs,
                      const pm_results_t *results, size_t *failed, char *err, size_t err_size)
{
    if (!results)
        return s_fail (err, err_size, "no results");
    s_results_arg_t arg = {input_names, ninputs, results, 0};
    int rc = pm_csv_write_atomic (path, s_results_body, &arg, err, err_size);
    if (rc == 0 && failed)
        *failed = arg.failed;
    return rc;
}

/* ---- whole arrays ------------------------------------------------------------- */

typedef struct {
    const char *const *input_names, *const *output_names;
    size_t ninputs, noutputs, rows;
    const double *parameters, *outputs;
    const unsigned char *success;
    size_t failed;
} s_table_arg_t;

static int
s_table_body (FILE *out, void *arg_, char *err, size_t err_size)
{
    (void) err;
    (void) err_size;
    s_table_arg_t *arg = arg_;
    s_write_header (out, arg->input_names, arg->ninputs, arg->output_names, arg->noutputs);
    arg->failed = 0;
    for (size_t i = 0; i < arg->rows; i++)
        s_write_values (out, arg->parameters + i * arg->ninputs, arg->ninputs,
                        arg->outputs + i * arg->noutputs, arg->noutputs, arg->success[i],
                        &arg->failed);
    return 0;
}

int
pm_csv_write_table (const char *path, const char *const *input_names, size_t ninputs,
                    const char *const *output_names, size_t noutputs, const double *parameters,
                    const double *outputs, const unsigned char *success, size_t rows,
                    size_t *failed, char *err, size_t err_size)
{
    s_table_arg_t arg = {input_names, output_names, ninputs, noutputs, rows, parameters,
                         outputs, success, 0};
    int rc = pm_csv_write_atomic (path, s_table_body, &arg, err, err_size);
    if (rc == 0 && failed)
        *failed = arg.failed;
    return rc;
}

/* ---- results as whole arrays -------------------------------------------------- */

void
pm_csv_table_free (pm_csv_table_t *table)
{
    free (table->parameters);
    free (table->outputs);
    free (table->success);
    free (table->output_names);
    memset (table, 0, sizeof *table);
}

int
pm_csv_results_table (const pm_results_t *results, size_t ninputs, pm_csv_table_t *table,
                      char *err, size_t err_size)
{
    memset (table, 0, sizeof *table);
    if (!results)
        return s_fail (err, err_size, "no results");
    size_t rows = pm_results_rows (results), entries = pm_results_count (results);
    size_t noutputs = pm_results_output_count (results);
    table->rows = rows;
    table->ninputs = ninputs;
    table->noutputs = noutputs;
    table->parameters = malloc ((rows * ninputs + 1) * sizeof *table->parameters);
    table->outputs = malloc ((rows * noutputs + 1) * sizeof *table->outputs);
    table->success = malloc (rows + 1);
    table->output_names = calloc (noutputs + 1, sizeof *table->output_names);
    unsigned char *have = calloc (rows + 1, 1);
    int rc = 0;
    if (!table->parameters || !table->outputs || !table->success || !table->output_names
        || !have)
        rc = s_fail (err, err_size, "out of memory for the results of %zu rows", rows);
    for (size_t k = 0; rc == 0 && k < noutputs; k++)
        table->output_names[k] = pm_results_output_name (results, k);
    for (size_t k = 0; rc == 0 && k < entries; k++) {
        const pm_local_results_t *e = pm_results_get (results, k);
        if (!e) {
            rc = s_fail (err, err_size, "results entry %zu is missing", k);
            break;
        }
        if (e->rows && (e->cols != ninputs || e->noutputs != noutputs)) {
            rc = s_fail (err, err_size,
                         "results of rank %d have %zu inputs and %zu outputs, expected %zu "
                         "and %zu",
                         e->process_number, e->cols, e->noutputs, ninputs, noutputs);
            break;
        }
        for (size_t i = 0; rc == 0 && i < e->rows; i++) {
            size_t s = e->sample_index[i];
            if (s >= rows)
                rc = s_fail (err, err_size, "rank %d returned row %zu of a %zu-row sweep",
                             e->process_number, s, rows);
            else if (have[s])
                rc = s_fail (err, err_size, "row %zu came back twice", s);
            else {
                if (ninputs)
                    memcpy (table->parameters + s * ninputs, e->parameters + i * e->cols,
                            ninputs * sizeof (double));
                if (noutputs)
                    memcpy (table->outputs + s * noutputs, e->outputs + i * e->noutputs,
                            noutputs * sizeof (double));
                table->success[s] = e->success[i];
                have[s] = 1;
            }
        }
    }
    for (size_t s = 0; rc == 0 && s < rows; s++)
        if (!have[s])
            rc = s_fail (err, err_size, "row %zu is missing from the results", s);
    free (have);
    if (rc != 0)
        pm_csv_table_free (table);
    return rc;
}
