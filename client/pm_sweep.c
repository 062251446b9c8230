/*  pm_sweep.c — pm_scatter / pm_gather: run a model over parameter rows.

    Static schedule (the seed's MPI split): root broadcasts the shape, the
    rows are scattered by numpy.array_split (the first rows % n ranks get
    one row more), every rank builds the model once and evaluates its rows,
    and pm_gather brings every rank's LocalResults to root.  It is built
    from the collectives, so it runs the same on every backend.  The
    dynamic schedule lives in pm_sweep_dynamic.c; the results object and
    what both share live here.                                            */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pm_dtype.h"
#include "pm_log.h"
#include "pm_manager_internal.h"
#include "pm_model_internal.h"
#include "pm_sweep_internal.h"

static void
s_free_names (char **names, size_t count)
{
    if (!names)
        return;
    for (size_t i = 0; i < count; i++)
        free (names[i]);
    free (names);
}

static char **
s_copy_names (const char *const *names, size_t count)
{
    char **copy = calloc (count ? count : 1, sizeof *copy);
    for (size_t k = 0; copy && k < count; k++)
        if (!(copy[k] = strdup (names && names[k] ? names[k] : ""))) {
            s_free_names (copy, k);
            return NULL;
        }
    return copy;
}

struct pm_sweep_local *
pm_sweep_local_new (size_t rows, size_t cols, size_t noutputs, const char *const *names)
{
    struct pm_sweep_local *local = calloc (1, sizeof *local);
    if (!local)
        return NULL;
    local->cols = cols;
    local->noutputs = noutputs;
    local->output_names = s_copy_names (names, noutputs);
    if (!local->output_names || !pm_sweep_local_reserve (local, rows ? rows : 1)) {
        pm_sweep_local_destroy (&local);
        return NULL;
    }
    return local;
}

bool
pm_sweep_local_reserve (struct pm_sweep_local *local, size_t rows)
{
    if (rows <= local->cap)
        return true;
    size_t cap = local->cap * 2 > rows ? local->cap * 2 : rows;
    size_t *index = realloc (local->sample_index, cap * sizeof *index);
    if (!index)
        return false;
    local->sample_index = index;
    double *params = realloc (local->parameters, (cap * local->cols + 1) * sizeof *params);
    if (!params)
        return false;
    local->parameters = params;
    double *outputs = realloc (local->outputs, (cap * local->noutputs + 1) * sizeof *outputs);
    if (!outputs)
        return false;
    local->outputs = outputs;
    unsigned char *success = realloc (local->success, cap);
    if (!success)
        return false;
    local->success = success;
    local->cap = cap;
    return true;
}

void
pm_sweep_local_destroy (struct pm_sweep_local **local_p)
{
    struct pm_sweep_local *local = *local_p;
    if (!local)
        return;
    free (local->sample_index);
    free (local->parameters);
    free (local->outputs);
    free (local->success);
    free (local->all_parameters);
    s_free_names (local->output_names, local->noutputs);
    free (local);
    *local_p = NULL;
}

void
pm_sweep_free (pm_manager_t *pm)
{
    pm_sweep_local_destroy (&pm->sweep);
}

int
pm_set_schedule (pm_manager_t *pm, pm_schedule_t schedule)
{
    if (!pm)
        return PM_EINVAL;
    if (schedule != PM_SCHEDULE_STATIC && schedule != PM_SCHEDULE_DYNAMIC)
        return pm_fail (pm, PM_EINVAL, "unknown schedule %d", (int) schedule);
    pm->schedule = schedule;
    return 0;
}

int
pm_set_progress (pm_manager_t *pm, pm_progress_fn fn, void *arg)
{
    if (!pm)
        return PM_EINVAL;
    pm->progress = fn;
    pm->progress_arg = arg;
    return 0;
}

int
pm_sweep_build (const pm_model_t *model, void **state, size_t *noutputs,
                const char *const **names, char *err, size_t err_size)
{
    *state = NULL;
    *noutputs = 0;
    *names = NULL;
    if (!model) {
        snprintf (err, err_size, "no model passed");
        return PM_EINVAL;
    }
    pm_model_args_t args;
    pm_model_args_of (model, &args);
    err[0] = '\0';
    *state = model->build (&args, err, err_size);
    if (!*state) {
        if (!err[0])
            snprintf (err, err_size, "the model's build returned NULL");
        return PM_EINVAL;
    }
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

void
pm_sweep_execute_row (const pm_model_t *model, void *state, struct pm_sweep_local *local,
                      size_t i)
{
    double *out = local->outputs + i * local->noutputs;
    int status = model->execute (state, local->parameters + i * local->cols, local->cols, out,
                                 local->noutputs);
    local->success[i] = status == 0;
    if (status != 0)
        for (size_t k = 0; k < local->noutputs; k++)
            out[k] = NAN;
}

/* numpy.array_split: rank r gets rows/n rows, plus one if r < rows % n. */
static void
s_split (size_t rows, int n, int rank, size_t *first, size_t *count)
{
    size_t base = rows / (size_t) n, extra = rows % (size_t) n, r = (size_t) rank;
    *count = base + (r < extra ? 1 : 0);
    *first = r * base + (r < extra ? r : extra);
}

static int
s_scatter_static (pm_manager_t *pm, const pm_model_t *model, const double *all_parameters,
                  size_t rows, size_t cols)
{
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
                        "pm_scatter: root passed no model, no parameters for its rows, or 0 "
                        "columns");
    rows = (size_t) shape[0];
    cols = (size_t) shape[1];

    /* Build once per rank; every rank learns if any could not. */
    char err[512] = "";
    void *state = NULL;
    size_t noutputs = 0;
    const char *const *names = NULL;
    int built = pm_sweep_build (model, &state, &noutputs, &names, err, sizeof err);
    int64_t verdict[3] = {built == 0 ? INT64_MAX : pm->rank,
                          built == 0 ? (int64_t) noutputs : INT64_MAX,
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
            return pm_fail (pm, PM_EINVAL, "pm_scatter: the model could not be built on rank %lld",
                            (long long) agreed[0]);
        return pm_fail (pm, PM_EINVAL, "pm_scatter: ranks disagree on the model's number of outputs");
    }

    size_t first = 0, mine = 0;
    s_split (rows, n, pm->rank, &first, &mine);
    size_t *counts = malloc ((size_t) n * sizeof *counts);
    struct pm_sweep_local *local = pm_sweep_local_new (mine, cols, noutputs, names);
    bool ok = counts && local;
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
        pm_sweep_local_destroy (&local);
        if (model->destroy)
            model->destroy (state);
        return rc;
    }
    local->schedule = PM_SCHEDULE_STATIC;
    local->rows = mine;
    for (size_t i = 0; i < mine; i++) {
        local->sample_index[i] = first + i;
        pm_sweep_execute_row (model, state, local, i);
        if (root && pm->progress)
            pm->progress (pm->progress_arg, first + i, 1, noutputs, local->outputs + i * noutputs,
                          local->success + i, i + 1, rows);
    }
    if (model->destroy)
        model->destroy (state);
    pm_debug ("PM3401", "rank %d evaluated rows %zu..%zu", pm->rank, first, first + mine);
    pm_sweep_free (pm);
    pm->sweep = local;
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
    /* The dynamic schedule needs a coordinator; serial runs are static. */
    if (pm->schedule == PM_SCHEDULE_DYNAMIC && pm->client)
        return pm_scatter_dynamic (pm, model, all_parameters, rows, cols);
    return s_scatter_static (pm, model, all_parameters, rows, cols);
}

/* ---- results ------------------------------------------------------------- */

static void
s_entry_free (pm_results_entry_t *entry)
{
    free (entry->sample_index);
    free (entry->parameters);
    free (entry->outputs);
    free (entry->success);
}

pm_results_t *
pm_results_new (size_t capacity, const struct pm_sweep_local *local)
{
    pm_results_t *results = calloc (1, sizeof *results);
    if (!results)
        return NULL;
    results->entries = calloc (capacity ? capacity : 1, sizeof *results->entries);
    results->noutputs = local->noutputs;
    results->output_names = s_copy_names ((const char *const *) local->output_names,
                                          local->noutputs);
    if (!results->entries || !results->output_names)
        pm_results_destroy (&results);
    return results;
}

/* Appends an entry of rows rows; its arrays are allocated, not filled. */
static pm_results_entry_t *
s_entry_add (pm_results_t *results, int process_number, size_t rows, size_t cols,
             size_t noutputs)
{
    pm_results_entry_t *entry = &results->entries[results->count];
    memset (entry, 0, sizeof *entry);
    entry->sample_index = malloc ((rows + 1) * sizeof (size_t));
    entry->parameters = malloc ((rows * cols + 1) * sizeof (double));
    entry->outputs = malloc ((rows * noutputs + 1) * sizeof (double));
    entry->success = malloc (rows + 1);
    if (!entry->sample_index || !entry->parameters || !entry->outputs || !entry->success) {
        s_entry_free (entry);
        return NULL;
    }
    entry->view = (pm_local_results_t){
        .process_number = process_number,
        .rows = rows,
        .cols = cols,
        .noutputs = noutputs,
        .sample_index = entry->sample_index,
        .parameters = entry->parameters,
        .outputs = entry->outputs,
        .success = entry->success,
    };
    results->count++;
    return entry;
}

bool
pm_results_add_rows (pm_results_t *results, int process_number,
                     const struct pm_sweep_local *local, size_t begin, size_t end)
{
    size_t rows = end - begin, cols = local->cols, noutputs = local->noutputs;
    pm_results_entry_t *entry = s_entry_add (results, process_number, rows, cols, noutputs);
    if (!entry)
        return false;
    memcpy (entry->sample_index, local->sample_index + begin, rows * sizeof (size_t));
    memcpy (entry->parameters, local->parameters + begin * cols, rows * cols * sizeof (double));
    memcpy (entry->outputs, local->outputs + begin * noutputs, rows * noutputs * sizeof (double));
    memcpy (entry->success, local->success + begin, rows);
    return true;
}

/* ---- static pm_gather ------------------------------------------------------ */

#define BLOB_HEADER 4 /* int64: process_number, rows, cols, noutputs */

static size_t
s_blob_size (size_t rows, size_t cols, size_t noutputs)
{
    return BLOB_HEADER * 8 + rows * 8 + rows * cols * 8 + rows * noutputs * 8 + rows;
}

static char *
s_pack (const pm_manager_t *pm, const struct pm_sweep_local *local, size_t *size)
{
    size_t rows = local->rows;
    *size = s_blob_size (rows, local->cols, local->noutputs);
    char *blob = malloc (*size);
    if (!blob)
        return NULL;
    int64_t header[BLOB_HEADER] = {pm->rank, (int64_t) rows, (int64_t) local->cols,
                                   (int64_t) local->noutputs};
    char *at = blob;
    memcpy (at, header, sizeof header);
    at += sizeof header;
    for (size_t i = 0; i < rows; i++) {
        uint64_t index = local->sample_index[i];
        memcpy (at, &index, 8);
        at += 8;
    }
    memcpy (at, local->parameters, rows * local->cols * 8);
    at += rows * local->cols * 8;
    memcpy (at, local->outputs, rows * local->noutputs * 8);
    at += rows * local->noutputs * 8;
    memcpy (at, local->success, rows);
    return blob;
}

/* Appends the entry packed in blob; false if malformed or out of memory. */
static bool
s_unpack (pm_results_t *results, const char *blob, size_t size)
{
    int64_t header[BLOB_HEADER];
    if (size < sizeof header)
        return false;
    memcpy (header, blob, sizeof header);
    if (header[1] < 0 || header[2] < 0 || header[3] < 0)
        return false;
    size_t rows = (size_t) header[1], cols = (size_t) header[2], noutputs = (size_t) header[3];
    if (s_blob_size (rows, cols, noutputs) != size || noutputs != results->noutputs)
        return false;
    pm_results_entry_t *entry = s_entry_add (results, (int) header[0], rows, cols, noutputs);
    if (!entry)
        return false;
    const char *at = blob + sizeof header;
    for (size_t i = 0; i < rows; i++) {
        uint64_t index;
        memcpy (&index, at, 8);
        entry->sample_index[i] = (size_t) index;
        at += 8;
    }
    memcpy (entry->parameters, at, rows * cols * 8);
    at += rows * cols * 8;
    memcpy (entry->outputs, at, rows * noutputs * 8);
    at += rows * noutputs * 8;
    memcpy (entry->success, at, rows);
    return true;
}

static int
s_gather_static (pm_manager_t *pm, pm_results_t **results)
{
    const struct pm_sweep_local *local = pm->sweep;
    size_t blob_size = 0;
    char *blob = s_pack (pm, local, &blob_size);
    bool root = pm->rank == 0;
    int n = pm->size;
    /* Round 1: sizes to root.  A rank out of memory sends -1 and all fail. */
    int64_t my_size = blob ? (int64_t) blob_size : -1;
    int64_t *sizes = root ? calloc ((size_t) n, sizeof *sizes) : NULL;
    size_t *counts = root ? malloc ((size_t) n * sizeof *counts) : NULL;
    for (int r = 0; counts && r < n; r++)
        counts[r] = 1;
    int rc = pm_gather_arrays_to_root (pm, &my_size, 1, PM_INT64, sizes, counts);
    char *all = NULL;
    int64_t bad = 0, any_bad = 0;
    if (rc == 0 && root) {
        size_t total = 0;
        for (int r = 0; r < n; r++) {
            if (sizes[r] < 0)
                bad = 1;
            counts[r] = sizes[r] < 0 ? 0 : (size_t) sizes[r];
            total += counts[r];
        }
        all = bad ? NULL : malloc (total ? total : 1);
        bad = bad || !all;
    }
    if (rc == 0)
        rc = pm_allreduce (pm, &bad, &any_bad, 1, PM_INT64, PM_MAX);
    if (rc == 0 && (any_bad || !blob))
        rc = pm_fail (pm, PM_ENOMEM, "pm_gather: out of memory on some rank");
    /* Round 2: the blobs, each as it is, assembled once at root. */
    if (rc == 0)
        rc = pm_gatherv (pm, blob, blob_size, PM_BYTE, all, counts, 0);
    free (blob);
    pm_results_t *out = NULL;
    if (rc == 0 && !(out = pm_results_new (root ? (size_t) n : 1, local)))
        rc = pm_fail (pm, PM_ENOMEM, "pm_gather: out of memory");
    if (rc == 0 && root) {
        /* Static split: rank order is sample order. */
        size_t offset = 0;
        for (int r = 0; r < n && rc == 0; r++) {
            if (!s_unpack (out, all + offset, counts[r]))
                rc = pm_fail (pm, PM_EPROTO, "pm_gather: rank %d sent malformed results", r);
            offset += counts[r];
        }
    } else if (rc == 0 && !pm_results_add_rows (out, pm->rank, local, 0, local->rows)) {
        rc = pm_fail (pm, PM_ENOMEM, "pm_gather: out of memory");
    }
    free (all);
    free (sizes);
    free (counts);
    if (rc)
        pm_results_destroy (&out);
    *results = out;
    return rc;
}

int
pm_gather (pm_manager_t *pm, pm_results_t **results)
{
    if (!pm || !results)
        return PM_EINVAL;
    *results = NULL;
    if (pm->sweep && pm->sweep->schedule == PM_SCHEDULE_DYNAMIC)
        return pm_gather_dynamic (pm, results);
    /* Every rank must have scattered; a rank that has not still takes part. */
    int64_t have = pm->sweep ? 1 : 0, everyone = 0;
    int rc = pm_allreduce (pm, &have, &everyone, 1, PM_INT64, PM_MIN);
    if (rc)
        return rc;
    if (!everyone)
        return pm_fail (pm, PM_EINVAL, "pm_gather called before pm_scatter on some rank");
    return s_gather_static (pm, results);
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

size_t
pm_results_lost_count (const pm_results_t *results)
{
    return results ? results->nlost : 0;
}

int
pm_results_lost_rank (const pm_results_t *results, size_t index)
{
    return results && index < results->nlost ? results->lost[index] : -1;
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
    free (results->lost);
    free (results);
    *results_p = NULL;
}
