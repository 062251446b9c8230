/*  pm_csv.h — pm-sweep's results file: one CSV, written whole or not at all.

    The file is written to a temporary file in the same directory, flushed
    to disk, and renamed over the target, so a reader never sees a half
    written results file and an old one survives a failed run.

    Header: the input names, the output names, "success".  One line per row,
    in sample order; numbers as "%.17g" (so they read back as the same
    doubles), nan / inf / -inf for non-finite values.  Fields that need it
    are quoted (RFC 4180).                                                   */
#ifndef PM_CSV_H_INCLUDED
#define PM_CSV_H_INCLUDED

#include <stdio.h>

#include "pm.h"

/* Write text as one CSV field (quoted when it holds ',', '"', CR or LF). */
void pm_csv_field (FILE *out, const char *text);
/* Write a double as one CSV field: "%.17g", or nan, inf, -inf. */
void pm_csv_number (FILE *out, double value);

/* Writes the body of a file; returns 0, or -1 with a message in err. */
typedef int (*pm_csv_body_fn) (FILE *out, void *arg, char *err, size_t err_size);
/* Write path atomically (temporary file + fsync + rename).  0, or -1 with
   the reason in err (and path untouched).                                  */
int pm_csv_write_atomic (const char *path, pm_csv_body_fn body, void *arg, char *err,
                         size_t err_size);

/* Can a file be created at path (its directory exists and is writable, and
   path is not a directory)?  0, or -1 with the reason in err.              */
int pm_csv_check_target (const char *path, char *err, size_t err_size);

/* The results of a sweep as CSV at path.  input_names are the columns of
   the parameter rows.  Rows are placed by their sample index, so entries
   may come in any order; a row missing or given twice is an error.  On
   success *failed is the number of rows whose success flag is 0.           */
int pm_csv_write_results (const char *path, const char *const *input_names, size_t ninputs,
                          const pm_results_t *results, size_t *failed, char *err,
                          size_t err_size);

/* The same file from whole arrays, rows in sample order: parameters (rows x
   ninputs), outputs (rows x noutputs), success (rows).  Used when a resumed
   sweep merges its journal's rows with the rows it ran.                    */
int pm_csv_write_table (const char *path, const char *const *input_names, size_t ninputs,
                        const char *const *output_names, size_t noutputs,
                        const double *parameters, const double *outputs,
                        const unsigned char *success, size_t rows, size_t *failed, char *err,
                        size_t err_size);

/* The results of a sweep as whole arrays in sample order (for the HDF5
   file): what pm_csv_write_table takes.  Free with pm_csv_table_free. */
typedef struct {
    size_t rows, ninputs, noutputs;
    double *parameters;        /* rows x ninputs */
    double *outputs;           /* rows x noutputs */
    unsigned char *success;    /* rows */
    const char **output_names; /* noutputs, pointing into the results */
} pm_csv_table_t;

/* Rows are placed by their sample index, as pm_csv_write_results does; a
   row missing or given twice, or an entry of another shape, is an error.
   0, or -1 with the reason in err.                                          */
int pm_csv_results_table (const pm_results_t *results, size_t ninputs, pm_csv_table_t *table,
                          char *err, size_t err_size);
void pm_csv_table_free (pm_csv_table_t *table);

#endif
