/*  pm_hdf5.h — pm-sweep's results as one HDF5 file, written whole or not at
    all (built only when CMake finds HDF5: PM_HAVE_HDF5).

    Like the CSV (pm_csv.h), the file is written to a temporary file in the
    same directory (.NAME.tmp.XXXXXX), flushed to disk, and renamed over the
    target, so a reader never sees a half written file and an old one
    survives a failed run.

    Layout (rows in sample order, the same values as the CSV's):
      /inputs        float64 [rows][ninputs]   the parameter rows
      /outputs       float64 [rows][noutputs]  NaN where the row failed
      /success       uint8   [rows]            1 the row ran, 0 it failed
      /input_names   variable-length UTF-8 strings [ninputs]
      /output_names  variable-length UTF-8 strings [noutputs]
    and on the root group the attributes
      rows           uint64 scalar
      model          string scalar: the plugin (LIB.so[:PREFIX]) or the command template
      model_kind     string scalar: "plugin" or "command"
    HDF5's own error printing is turned off; errors come back in err.      */
#ifndef PM_HDF5_H_INCLUDED
#define PM_HDF5_H_INCLUDED

#include <stddef.h>

/* A results table, rows in sample order. */
typedef struct {
    const char *const *input_names;  /* ninputs */
    size_t ninputs;
    const char *const *output_names; /* noutputs (NULL entries: "") */
    size_t noutputs;
    const double *inputs;            /* rows x ninputs */
    const double *outputs;           /* rows x noutputs */
    const unsigned char *success;    /* rows */
    size_t rows;
    const char *model;               /* LIB.so[:PREFIX] or the command template */
    const char *model_kind;          /* "plugin" or "command" */
} pm_hdf5_table_t;

/* Write table to path atomically.  0, or -1 with the reason in err (and
   path untouched).  Calls H5close() before it returns. */
int pm_hdf5_write_table (const char *path, const pm_hdf5_table_t *table, char *err,
                         size_t err_size);

#endif
