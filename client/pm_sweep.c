/*  pm_sweep.c — pm_scatter / pm_gather: run a model over parameter rows.

    Static schedule (the seed's MPI split): root broadcasts the shape, the
    rows are scattered by numpy.array_split (the first rows % n ranks get
    one row more), every rank builds the model once and evaluates its rows,
    and pm_gather brings every rank's LocalResults to root.  Everything is
    built from the collectives, so it runs the same on every backend.      */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pm_dtype.h"
#include "pm_log.h"
#include "pm_manager_internal.h"
#include "pm_model_internal.h"

/* This rank's part of the last sweep. */
struct pm_sweep_local {
    size_t first;          /* sample index of its first row */
    size_t rows, cols, noutputs;
    double *parameters;    /* rows x cols */
    double *outputs;       /* rows x noutputs */
    unsigned char *success;
    char **output_names;   /* noutputs names (every rank keeps them) */
};

/* One LocalResults entry with the arrays it owns. */
typedef struct {
    pm_local_results_t view; /* what callers see; points into the arrays below */
    size_t *sample_index;
    double *parameters, *outputs;
    unsigned char *success;
} s_entry_t;

struct pm_results {
    s_entry_t *entries;
    size_t count;
    size_t noutputs;
    char **output_names;
};

static void
s_free_names (char **names, size_t count)
{
    if (!names)
        return;
    for (size_t i = 0; i < count; i++)
        free (names[i]);
    free (names);
}

void
pm_sweep_free (pm_manager_t *pm)
{
    struct pm_sweep_local *sweep = pm->sweep;
    if (!sweep)
        return;
    free (sweep->parameters);
    free (sweep->outputs);
    free (sweep->success);
    s_free_names (sweep->output_names, sweep->noutputs);
    free (sweep);
    pm->sweep = NULL;
}

int
pm_set_schedule (pm_manager_t *pm, pm_schedule_t schedule)
{
    if (!pm)
        return PM_EINVAL;
    if (schedule == PM_SCHEDULE_STATIC) {
        pm->schedule = schedule;
        return 0;
    }
    if (schedule == PM_SCHEDULE_DYNAMIC)
        return pm_fail (pm, PM_ENOTSUP, "the dynamic schedule is not available yet");
    return pm_fail (pm, PM_EINVAL, "unknown schedule %d", (int) schedule);
}

/* numpy.array_split: rank r gets rows/n rows, plus one if r < rows % n. */
static void
s_split (size_t rows, int n, int rank, size_t *first, size_t *count)
{
    size_t base = rows / (size_t) n, extra = rows % (size_t) n, r = (size_t) rank;
    *count = base + (r < extra ? 1 : 0);
    *first = r * base + (r < extra ? r : extra);
}

/* Builds the model on this rank.  0, or PM_EINVAL with err set. */
static int
s_build (const pm_model_t *model, void **state, size_t *noutputs, const char *const **names,
         char *err, size_t err_size)
{
    pm_model_args_t args;
    pm_model_args_of (model, &args);
    err[0] = '\0';
    *state = model->build (&args, err, err_size);
    if (!*state) {
        if (!err[0])
            snprintf (err, err_size, "the model's build returned NULL");
        return PM_EINVAL;
    }
    *names = NULL;
    *noutputs = model->output_names (*state, names);
    if (*noutputs > 0 && !*names) {
        snprintf (err, err_size, "the model declares %zu outputs but no names", *noutputs);
        if (model->destroy)
            model->destroy (*state);
        *state = NULL;
        return PM_EINVAL;
    }
    return 0;
}

int
pm_scatter (pm_manager_t *pm, const pm_model_t *model, const double *all_parameters,
            size_t rows, size_t cols)
{
    if (!pm)
        return PM_EINVAL;
    if (pm->mode == PM_MODE_THREADS_LAUNCHER)
        return pm_fail (pm, PM_EINVAL,
                        "pm_scatter of a ConcurrentFutures run is called on the rank manager "
                        "that pm_run passes to the rank function");
    bool root = pm->rank == 0;
    int n = pm->size;
    /* Root says what the sweep is; a bad call at root fails every rank. */
    int64_t shape[2] = {-1, -1};
    if (root && model && (rows == 0 || all_parameters) && cols > 0 && rows < ((size_t) 1 << 40)
        && cols < ((size_t) 1 << 20)) {
        shape[0] = (int64_t) rows;
        shape[1] = (int64_t) cols;
    }
    int rc = pm_bcast (pm, shape, 2, PM_INT64, 0);
    if (rc)
        return rc;
    if (shape[0] < 0)
        return pm_fail (pm, PM_EINVAL,
                        "pm_scatter: root passed no model, no parameters for %zu rows, or 0 "
                        "columns",
                        root ? rows : 0);
    rows = (size_t) shape[0];
    cols = (size_t) shape[1];

    /* Build once per rank; every rank learns if any could not. */
    char err[512] = "";
    void *state = NULL;
    size_t noutputs = 0;
    const char *const *names = NULL;
    int built = model ? s_build (model, &state, &noutputs, &names, err, sizeof err)
                      : (snprintf (err, sizeof err, "no model passed"), PM_EINVAL);
    int64_t verdict[3] = {built == 0 ? INT64_MAX : pm->rank, built == 0 ? (int64_t) noutputs : INT64_MAX,
                          built == 0 ? -(int64_t) noutputs : INT64_MAX};
    int64_t agreed[3];
    rc = pm_allreduce (pm, verdict, agreed, 3, PM_INT64, PM_MIN);
    if (rc || agreed[0] != INT64_MAX || agreed[1] != -agreed[2]) {
        if (state && model->destroy)
            model->destroy (state);
        if (rc)
            return rc;
        if (built != 0)
            return pm_fail (pm, PM_EINVAL, "pm_scatter: cannot build the model %s: %s",
                            model ? model->name : "", err);
        if (agreed[0] != INT64_MAX)
            return pm_fail (pm, PM_EINVAL,
                            "pm_scatter: the model could not be built on rank %lld",
                            (long long) agreed[0]);
        return pm_fail (pm, PM_EINVAL,
                        "pm_scatter: ranks disagree on the model's number of outputs");
    }

    /* This rank's rows. */
    size_t *counts = malloc ((size_t) n * sizeof *counts);
    struct pm_sweep_local *local = calloc (1, sizeof *local);
    size_t first = 0, mine = 0;
    s_split (rows, n, pm->rank, &first, &mine);
    if (local) {
        local->first = first;
        local->rows = mine;
        local->cols = cols;
        local->noutputs = noutputs;
        local->parameters = malloc ((mine * cols + 1) * sizeof (double));
        local->outputs = malloc ((mine * noutputs + 1) * sizeof (double));
        local->success = malloc (mine ? mine : 1);
        local->output_names = calloc (noutputs ? noutputs : 1, sizeof (char *));
        for (size_t k = 0; local->output_names && k < noutputs; k++)
            local->output_names[k] = strdup (names[k] ? names[k] : "");
    }
    bool ok = counts && local && local->parameters && local->outputs && local->success
              && local->output_names;
    for (size_t k = 0; ok && k < noutputs; k++)
        ok = local->output_names[k] != NULL;
    if (counts)
        for (int r = 0; r < n; r++) {
            size_t first_r, count_r;
            s_split (rows, n, r, &first_r, &count_r);
            counts[r] = count_r * cols;
        }
    /* Out of memory on one rank still takes part, so nobody hangs. */
    rc = pm_scatterv (pm, root ? all_parameters : NULL, ok ? counts : NULL, PM_FLOAT64,
                      ok ? local->parameters : NULL, ok ? mine * cols : 0, 0);
    free (counts);
    if (rc == 0 && !ok)
        rc = pm_fail (pm, PM_ENOMEM, "pm_scatter: out of memory for %zu rows", mine);
    if (rc) {
        if (local) {
            pm_manager_t fake = {.sweep = local};
            pm_sweep_free (&fake);
        }
        if (model->destroy)
            model->destroy (state);
        return rc;
    }

    /* Evaluate: a failed row gets NaN outputs, never fails the sweep. */
    size_t failed = 0;
    for (size_t i = 0; i < mine; i++) {
        double *out = local->outputs + i * noutputs;
        int status = model->execute (state, local->parameters + i * cols, cols, out, noutputs);
        local->success[i] = status == 0;
        if (status != 0) {
            failed++;
            for (size_t k = 0; k < noutputs; k++)
                out[k] = NAN;
        }
    }
    if (model->destroy)
        model->destroy (state);
    pm_debug ("PM3401", "rank %d evaluated rows %zu..%zu (%zu failed)", pm->rank, first,
              first + mine, failed);
    pm_sweep_free (pm);
    pm->sweep = local;
    return 0;
}

/* ---- pm_gather ------------------------------------------------------------ */

#define BLOB_HEADER 5 /* int64: process_number, first, rows, cols, noutputs */

static size_t
s_blob_size (size_t rows, size_t cols, size_t noutputs)
{
    return BLOB_HEADER * 8 + rows * cols * 8 + rows * noutputs * 8 + rows;
}

static char *
s_pack (const pm_manager_t *pm, const struct pm_sweep_local *local, size_t *size)
{
    *size = s_blob_size (local->rows, local->cols, local->noutputs);
    char *blob = malloc (*size);
    if (!blob)
        return NULL;
    int64_t header[BLOB_HEADER] = {pm->rank, (int64_t) local->first, (int64_t) local->rows,
                                   (int64_t) local->cols, (int64_t) local->noutputs};
    char *at = blob;
    memcpy (at, header, sizeof header);
    at += sizeof header;
    memcpy (at, local->parameters, local->rows * local->cols * 8);
    at += local->rows * local->cols * 8;
    memcpy (at, local->outputs, local->rows * local->noutputs * 8);
    at += local->rows * local->noutputs * 8;
    memcpy (at, local->success, local->rows);
    return blob;
}

static void
s_entry_free (s_entry_t *entry)
{
    free (entry->sample_index);
    free (entry->parameters);
    free (entry->outputs);
    free (entry->success);
}

/* Fills entry from a packed blob; false if it is not one or memory runs out. */
static bool
s_unpack (const char *blob, size_t size, s_entry_t *entry)
{
    memset (entry, 0, sizeof *entry);
    int64_t header[BLOB_HEADER];
    if (size < sizeof header)
        return false;
    memcpy (header, blob, sizeof header);
    if (header[2] < 0 || header[3] < 0 || header[4] < 0 || header[1] < 0)
        return false;
    size_t rows = (size_t) header[2], cols = (size_t) header[3], noutputs = (size_t) header[4];
    if (s_blob_size (rows, cols, noutputs) != size)
        return false;
    entry->sample_index = malloc ((rows ? rows : 1) * sizeof (size_t));
    entry->parameters = malloc (rows * cols * 8 + 1);
    entry->outputs = malloc (rows * noutputs * 8 + 1);
    entry->success = malloc (rows + 1);
    if (!entry->sample_index || !entry->parameters || !entry->outputs || !entry->success) {
        s_entry_free (entry);
        return false;
    }
    const char *at = blob + sizeof header;
    memcpy (entry->parameters, at, rows * cols * 8);
    at += rows * cols * 8;
    memcpy (entry->outputs, at, rows * noutputs * 8);
    at += rows * noutputs * 8;
    memcpy (entry->success, at, rows);
    for (size_t i = 0; i < rows; i++)
        entry->sample_index[i] = (size_t) header[1] + i;
    entry->view = (pm_local_results_t){
        .process_number = (int) header[0],
        .rows = rows,
        .cols = cols,
        .noutputs = noutputs,
        .sample_index = entry->sample_index,
        .parameters = entry->parameters,
        .outputs = entry->outputs,
        .success = entry->success,
    };
    return true;
}

static pm_results_t *
s_results_new (size_t count, const struct pm_sweep_local *local)
{
    pm_results_t *results = calloc (1, sizeof *results);
    if (!results)
        return NULL;
    results->entries = calloc (count ? count : 1, sizeof *results->entries);
    results->output_names = calloc (local->noutputs ? local->noutputs : 1, sizeof (char *));
    results->noutputs = local->noutputs;
    bool ok = results->entries && results->output_names;
    for (size_t k = 0; ok && k < local->noutputs; k++)
        ok = (results->output_names[k] = strdup (local->output_names[k])) != NULL;
    if (!ok)
        pm_results_destroy (&results);
    return results;
}

int
pm_gather (pm_manager_t *pm, pm_results_t **results)
{
    if (!pm || !results)
        return PM_EINVAL;
    *results = NULL;
    /* Every rank must have scattered; a rank that has not still takes part. */
    int64_t have = pm->sweep ? 1 : 0, everyone = 0;
    int rc = pm_allreduce (pm, &have, &everyone, 1, PM_INT64, PM_MIN);
    if (rc)
        return rc;
    if (!everyone)
        return pm_fail (pm, PM_EINVAL, "pm_gather called before pm_scatter on some rank");
    const struct pm_sweep_local *local = pm->sweep;
    size_t blob_size = 0;
    char *blob = s_pack (pm, local, &blob_size);
    bool root = pm->rank == 0;
    int n = pm->size;
    /* Round 1: sizes to root.  A rank out of memory sends -1 and all fail. */
    int64_t my_size = blob ? (int64_t) blob_size : -1;
    int64_t *sizes = root ? calloc ((size_t) n, sizeof *sizes) : NULL;
    size_t *ones = root ? malloc ((size_t) n * sizeof *ones) : NULL;
    for (int r = 0; ones && r < n; r++)
        ones[r] = 1;
    rc = pm_gather_arrays_to_root (pm, &my_size, 1, PM_INT64, sizes, ones);
    /* Round 2: the blobs, each as it is, assembled once at root. */
    size_t *counts = ones;
    char *all = NULL;
    int64_t bad = 0;
    if (rc == 0 && root) {
        size_t total = 0;
        for (int r = 0; r < n; r++) {
            if (sizes[r] < 0)
                bad = 1;
            counts[r] = sizes[r] < 0 ? 0 : (size_t) sizes[r];
            total += counts[r];
        }
        all = bad ? NULL : malloc (total ? total : 1);
        if (!all)
            bad = 1;
    }
    if (rc == 0) {
        int64_t any_bad = 0;
        rc = pm_allreduce (pm, &bad, &any_bad, 1, PM_INT64, PM_MAX);
        if (rc == 0 && (any_bad || !blob))
            rc = pm_fail (pm, PM_ENOMEM, "pm_gather: out of memory on some rank");
    }
    if (rc == 0)
        rc = pm_gatherv (pm, blob, blob_size, PM_BYTE, all, counts, 0);
    free (blob);
    pm_results_t *out = NULL;
    if (rc == 0) {
        out = s_results_new (root ? (size_t) n : 1, local);
        if (!out)
            rc = pm_fail (pm, PM_ENOMEM, "pm_gather: out of memory");
    }
    if (rc == 0 && root) {
        /* Static split: rank order is sample order. */
        size_t offset = 0;
        for (int r = 0; r < n && rc == 0; r++) {
            if (!s_unpack (all + offset, counts[r], &out->entries[out->count]))
                rc = pm_fail (pm, PM_EPROTO, "pm_gather: rank %d sent malformed results", r);
            else
                out->count++;
            offset += counts[r];
        }
    } else if (rc == 0) {
        size_t own_size = 0;
        char *own = s_pack (pm, local, &own_size);
        if (!own || !s_unpack (own, own_size, &out->entries[0]))
            rc = pm_fail (pm, PM_ENOMEM, "pm_gather: out of memory");
        else
            out->count = 1;
        free (own);
    }
    free (all);
    free (sizes);
    free (ones);
    if (rc)
        pm_results_destroy (&out);
    *results = out;
    return rc;
}

size_t
pm_results_count (const pm_results_t *results)
{
    return results ? results->count : 0;
}

const pm_local_results_t *
pm_results_get (const pm_results_t *results, size_t index)
{
    return results && index < results->count ? &results->entries[index].view : NULL;
}

size_t
pm_results_rows (const pm_results_t *results)
{
    size_t rows = 0;
    for (size_t i = 0; results && i < results->count; i++)
        rows += results->entries[i].view.rows;
    return rows;
}

size_t
pm_results_output_count (const pm_results_t *results)
{
    return results ? results->noutputs : 0;
}

const char *
pm_results_output_name (const pm_results_t *results, size_t index)
{
    return results && index < results->noutputs ? results->output_names[index] : NULL;
}

void
pm_results_destroy (pm_results_t **results_p)
{
    if (!results_p || !*results_p)
        return;
    pm_results_t *results = *results_p;
    for (size_t i = 0; results->entries && i < results->count; i++)
        s_entry_free (&results->entries[i]);
    free (results->entries);
    s_free_names (results->output_names, results->noutputs);
    free (results);
    *results_p = NULL;
}
