/*  test_pm_sweep_hdf5_check.c — for the sweep-hdf5 test: does an HDF5 file
    of pm-sweep hold the same table as a CSV of it?

      test-pm-sweep-hdf5-check FILE.h5 FILE.csv NINPUTS [MODEL_KIND MODEL]

    Reads /inputs, /outputs, /success, /input_names, /output_names and the
    attributes rows, model, model_kind back with the HDF5 library, and
    compares them with the CSV (its numbers parsed with strtod): the names,
    the shapes and types, every double bit for bit (NaN where the CSV says
    nan, and on every failed row), every success flag.  Exit 0 when all
    agree, 1 (with the differences on stderr) otherwise, 2 on bad use.    */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

static int s_errors;

static void s_bad (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

static void
s_bad (const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    fputs ("hdf5-check: ", stderr);
    vfprintf (stderr, fmt, args);
    fputc ('\n', stderr);
    va_end (args);
    s_errors++;
}

/* ---- the CSV: plain fields (no quoting in these tests) ---------------------- */

typedef struct {
    char **names; /* header fields, success last */
    size_t ncols;
    double *values; /* rows x (ncols - 1) */
    unsigned char *success;
    size_t rows;
} s_csv_t;

static size_t
s_split (char *line, char ***fields)
{
    size_t n = 1;
    for (char *c = line; *c; c++)
        n += *c == ',';
    *fields = calloc (n, sizeof **fields);
    if (!*fields)
        return 0;
    size_t k = 0;
    for (char *save = NULL, *f = strtok_r (line, ",", &save); f && k < n;
         f = strtok_r (NULL, ",", &save))
        (*fields)[k++] = f;
    return k;
}

static bool
s_read_csv (const char *path, s_csv_t *csv)
{
    memset (csv, 0, sizeof *csv);
    FILE *in = fopen (path, "r");
    if (!in) {
        s_bad ("cannot open %s", path);
        return false;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    bool ok = true;
    while (ok && (len = getline (&line, &cap, in)) > 0) {
        if (line[len - 1] == '\n')
            line[len - 1] = '\0';
        char **fields = NULL;
        size_t n = s_split (line, &fields);
        if (!csv->names) {
            csv->ncols = n;
            csv->names = calloc (n + 1, sizeof *csv->names);
            for (size_t i = 0; csv->names && i < n; i++)
                csv->names[i] = strdup (fields[i]);
        }
        else if (n != csv->ncols) {
            s_bad ("%s: row %zu has %zu fields, the header %zu", path, csv->rows, n, csv->ncols);
            ok = false;
        }
        else {
            size_t w = csv->ncols - 1;
            csv->values = realloc (csv->values, (csv->rows + 1) * w * sizeof (double));
            csv->success = realloc (csv->success, csv->rows + 1);
            for (size_t i = 0; i < w; i++) {
                char *end;
                csv->values[csv->rows * w + i] = strtod (fields[i], &end);
                if (*end || end == fields[i]) {
                    s_bad ("%s: '%s' is not a number", path, fields[i]);
                    ok = false;
                }
            }
            csv->success[csv->rows] = (unsigned char) atoi (fields[w]);
            csv->rows++;
        }
        free (fields);
    }
    free (line);
    fclose (in);
    if (!csv->names || csv->ncols < 2) {
        s_bad ("%s: no header", path);
        ok = false;
    }
    return ok;
}

static void
s_free_csv (s_csv_t *csv)
{
    for (size_t i = 0; csv->names && i < csv->ncols; i++)
        free (csv->names[i]);
    free (csv->names);
    free (csv->values);
    free (csv->success);
}

/* ---- the HDF5 file ------------------------------------------------------------ */

/* A dataset's dims (rank must be want_rank) and class/size; -1 on error. */
static hid_t
s_open (hid_t file, const char *name, int want_rank, hsize_t dims[2], H5T_class_t cls,
        size_t size)
{
    hid_t set = H5Dopen2 (file, name, H5P_DEFAULT);
    if (set < 0) {
        s_bad ("no dataset %s", name);
        return -1;
    }
    hid_t space = H5Dget_space (set), type = H5Dget_type (set);
    int rank = space >= 0 ? H5Sget_simple_extent_ndims (space) : -1;
    if (rank != want_rank || H5Sget_simple_extent_dims (space, dims, NULL) < 0)
        s_bad ("%s: rank %d, expected %d", name, rank, want_rank);
    else if (type < 0 || H5Tget_class (type) != cls
             || (size && H5Tget_size (type) != size))
        s_bad ("%s: wrong type (class %d, size %zu)", name, (int) H5Tget_class (type),
               H5Tget_size (type));
    if (type >= 0)
        H5Tclose (type);
    if (space >= 0)
        H5Sclose (space);
    return set;
}

/* The names dataset: count strings (malloc'd, each malloc'd by HDF5). */
static char **
s_read_names (hid_t file, const char *name, size_t *count)
{
    hsize_t dims[2] = {0, 0};
    *count = 0;
    hid_t set = s_open (file, name, 1, dims, H5T_STRING, 0);
    if (set < 0)
        return NULL;
    hid_t type = H5Tcopy (H5T_C_S1);
    H5Tset_size (type, H5T_VARIABLE);
    H5Tset_cset (type, H5T_CSET_UTF8);
    char **names = calloc (dims[0] + 1, sizeof *names);
    if (dims[0] && H5Dread (set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, names) < 0)
        s_bad ("cannot read %s", name);
    H5Tclose (type);
    H5Dclose (set);
    *count = (size_t) dims[0];
    return names;
}

static void
s_free_names (char **names, size_t count)
{
    for (size_t i = 0; names && i < count; i++)
        H5free_memory (names[i]);
    free (names);
}

static char *
s_string_attribute (hid_t file, const char *name)
{
    hid_t attr = H5Aopen (file, name, H5P_DEFAULT);
    if (attr < 0) {
        s_bad ("no attribute %s", name);
        return NULL;
    }
    hid_t type = H5Tcopy (H5T_C_S1);
    H5Tset_size (type, H5T_VARIABLE);
    H5Tset_cset (type, H5T_CSET_UTF8);
    char *value = NULL;
    if (H5Aread (attr, type, &value) < 0)
        s_bad ("cannot read attribute %s", name);
    char *copy = value ? strdup (value) : NULL;
    H5free_memory (value);
    H5Tclose (type);
    H5Aclose (attr);
    return copy;
}

/* Do a (from HDF5) and b (from the CSV) agree: both NaN, or the same bits? */
static bool
s_same (double a, double b)
{
    if (isnan (b))
        return isnan (a);
    return memcmp (&a, &b, sizeof a) == 0;
}

int
main (int argc, char **argv)
{
    if (argc != 4 && argc != 6) {
        fprintf (stderr, "usage: %s FILE.h5 FILE.csv NINPUTS [MODEL_KIND MODEL]\n", argv[0]);
        return 2;
    }
    const char *h5 = argv[1], *csv_path = argv[2];
    size_t ninputs = (size_t) strtoul (argv[3], NULL, 10);
    H5Eset_auto2 (H5E_DEFAULT, NULL, NULL);
    s_csv_t csv;
    if (!s_read_csv (csv_path, &csv) || csv.ncols < ninputs + 1) {
        s_free_csv (&csv);
        return 1;
    }
    size_t noutputs = csv.ncols - 1 - ninputs, rows = csv.rows, w = csv.ncols - 1;
    hid_t file = H5Fopen (h5, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        s_bad ("cannot open %s as HDF5", h5);
        s_free_csv (&csv);
        return 1;
    }

    /* Names. */
    size_t nin = 0, nout = 0;
    char **in_names = s_read_names (file, "input_names", &nin);
    char **out_names = s_read_names (file, "output_names", &nout);
    if (nin != ninputs || nout != noutputs)
        s_bad ("%zu input and %zu output names, the CSV has %zu and %zu", nin, nout, ninputs,
               noutputs);
    for (size_t i = 0; i < nin && i < ninputs; i++)
        if (!in_names[i] || strcmp (in_names[i], csv.names[i]) != 0)
            s_bad ("input name %zu: '%s', CSV '%s'", i, in_names[i] ? in_names[i] : "(null)",
                   csv.names[i]);
    for (size_t k = 0; k < nout && k < noutputs; k++)
        if (!out_names[k] || strcmp (out_names[k], csv.names[ninputs + k]) != 0)
            s_bad ("output name %zu: '%s', CSV '%s'", k, out_names[k] ? out_names[k] : "(null)",
                   csv.names[ninputs + k]);
    s_free_names (in_names, nin);
    s_free_names (out_names, nout);

    /* Attributes. */
    hid_t attr = H5Aopen (file, "rows", H5P_DEFAULT);
    uint64_t nrows = 0;
    if (attr < 0 || H5Aread (attr, H5T_NATIVE_UINT64, &nrows) < 0 || nrows != rows)
        s_bad ("attribute rows: %llu, the CSV has %zu rows", (unsigned long long) nrows, rows);
    if (attr >= 0)
        H5Aclose (attr);
    char *model = s_string_attribute (file, "model");
    char *kind = s_string_attribute (file, "model_kind");
    if (argc == 6) {
        if (!kind || strcmp (kind, argv[4]) != 0)
            s_bad ("attribute model_kind '%s', expected '%s'", kind ? kind : "(none)", argv[4]);
        if (!model || strcmp (model, argv[5]) != 0)
            s_bad ("attribute model '%s', expected '%s'", model ? model : "(none)", argv[5]);
    }
    free (model);
    free (kind);

    /* Values. */
    hsize_t di[2] = {0, 0}, dout[2] = {0, 0}, ds[2] = {0, 0};
    hid_t inputs = s_open (file, "inputs", 2, di, H5T_FLOAT, 8);
    hid_t outputs = s_open (file, "outputs", 2, dout, H5T_FLOAT, 8);
    hid_t success = s_open (file, "success", 1, ds, H5T_INTEGER, 1);
    if (di[0] != rows || di[1] != ninputs || dout[0] != rows || dout[1] != noutputs
        || ds[0] != rows)
        s_bad ("shapes: inputs %llux%llu, outputs %llux%llu, success %llu; the CSV: %zu rows, "
               "%zu inputs, %zu outputs",
               (unsigned long long) di[0], (unsigned long long) di[1],
               (unsigned long long) dout[0], (unsigned long long) dout[1],
               (unsigned long long) ds[0], rows, ninputs, noutputs);
    else {
        double *vin = malloc ((rows * ninputs + 1) * sizeof *vin);
        double *vout = malloc ((rows * noutputs + 1) * sizeof *vout);
        unsigned char *vs = malloc (rows + 1);
        if ((rows && ninputs
             && H5Dread (inputs, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, vin) < 0)
            || (rows && noutputs
                && H5Dread (outputs, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, vout)
                       < 0)
            || (rows && H5Dread (success, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, vs) < 0))
            s_bad ("cannot read the datasets");
        else {
            size_t compared = 0;
            for (size_t r = 0; r < rows; r++) {
                for (size_t c = 0; c < ninputs; c++, compared++)
                    if (!s_same (vin[r * ninputs + c], csv.values[r * w + c]))
                        s_bad ("/inputs[%zu][%zu] = %.17g, CSV %.17g", r, c, vin[r * ninputs + c],
                               csv.values[r * w + c]);
                for (size_t k = 0; k < noutputs; k++, compared++) {
                    double v = vout[r * noutputs + k];
                    if (!s_same (v, csv.values[r * w + ninputs + k]))
                        s_bad ("/outputs[%zu][%zu] = %.17g, CSV %.17g", r, k, v,
                               csv.values[r * w + ninputs + k]);
                    if (!vs[r] && !isnan (v))
                        s_bad ("/outputs[%zu][%zu] = %.17g on a failed row, expected NaN", r, k,
                               v);
                }
                if (vs[r] != csv.success[r])
                    s_bad ("/success[%zu] = %u, CSV %u", r, vs[r], csv.success[r]);
                compared++;
            }
            if (!s_errors)
                printf ("hdf5-check: %s = %s: %zu rows, %zu inputs, %zu outputs, %zu values\n",
                        h5, csv_path, rows, ninputs, noutputs, compared);
        }
        free (vin);
        free (vout);
        free (vs);
    }
    if (inputs >= 0)
        H5Dclose (inputs);
    if (outputs >= 0)
        H5Dclose (outputs);
    if (success >= 0)
        H5Dclose (success);
    if (H5Fclose (file) < 0)
        s_bad ("H5Fclose failed");
    H5close ();
    s_free_csv (&csv);
    return s_errors ? 1 : 0;
}
