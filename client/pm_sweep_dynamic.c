/*  pm_sweep_dynamic.c — the dynamic schedule: ranks pull chunks of rows
    from the coordinator (coordinator/pm_sched.c) until none are left.

    Each rank keeps two requests in flight, so a chunk is waiting when it
    finishes one.  Outputs go back to the coordinator with each chunk, so
    the rows a rank finished survive its death; the rows it had not
    finished are handed to others.  Root's gather asks the coordinator for
    every row once the last is in.  Nothing here is a collective round, so
    a lost rank does not stop the others.                                */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pm_clock.h"
#include "pm_fault.h"
#include "pm_log.h"
#include "pm_manager_internal.h"
#include "pm_model_internal.h"
#include "pm_msg.h"
#include "pm_sweep_internal.h"

#define REQUESTS_IN_FLIGHT 2

static int
s_request (pm_manager_t *pm, uint64_t sweep)
{
    pm_msg_t msg;
    pm_msg_init (&msg, PM_MSG_TASK_REQUEST, sweep);
    char err[256];
    int rc = pm_client_send (pm->client, &msg, NULL, 0, err, sizeof err);
    return rc ? pm_fail (pm, rc, "%s", err) : 0;
}

/* Root: hand every row to the coordinator. */
static int
s_open (pm_manager_t *pm, uint64_t sweep, const double *rows_data, size_t rows, size_t cols,
        size_t noutputs)
{
    pm_msg_t msg;
    pm_msg_init (&msg, PM_MSG_SWEEP_OPEN, sweep);
    pm_msg_set (&msg, PM_KEY_COUNT, (int64_t) rows);
    pm_msg_set (&msg, PM_KEY_COLS, (int64_t) cols);
    pm_msg_set (&msg, PM_KEY_OUTPUTS, (int64_t) noutputs);
    if (pm->progress)
        pm_msg_set (&msg, PM_KEY_FLAGS, PM_SWEEP_STREAM);
    zmq_msg_t frame;
    size_t bytes = rows * cols * sizeof (double);
    if (zmq_msg_init_size (&frame, bytes) != 0)
        return pm_fail (pm, PM_ENOMEM, "pm_scatter: out of memory for %zu rows", rows);
    if (bytes)
        memcpy (zmq_msg_data (&frame), rows_data, bytes);
    char err[256];
    int rc = pm_client_send (pm->client, &msg, &frame, 1, err, sizeof err);
    return rc ? pm_fail (pm, rc, "%s", err) : 0;
}

/* Only root knows the sweep's width up front; the others learn it from the
   coordinator's TASKs (before their first row).                         */
static int
s_learn_cols (pm_manager_t *pm, struct pm_sweep_local *local, const pm_msg_t *task, size_t rows)
{
    int64_t cols = pm_msg_get (task, PM_KEY_COLS, 0);
    if (local->rows > 0 || cols <= 0 || (size_t) cols == local->cols)
        return 0;
    struct pm_sweep_local *sized = pm_sweep_local_new (rows, (size_t) cols, local->noutputs,
                                                        (const char *const *) local->output_names);
    if (!sized)
        return pm_fail (pm, PM_ENOMEM, "pm_scatter: out of memory");
    sized->schedule = local->schedule;
    sized->sweep_id = local->sweep_id;
    /* Swap the contents: the caller keeps its pointer. */
    struct pm_sweep_local old = *local;
    *local = *sized;
    *sized = old;
    pm_sweep_local_destroy (&sized);
    return 0;
}

/* Evaluates the chunk in a TASK, appends it to local, sends TASK_DONE. */
static int
s_work (pm_manager_t *pm, const pm_model_t *model, void *state, struct pm_sweep_local *local,
        uint64_t sweep, const pm_msg_t *task, const pm_coll_result_t *frames)
{
    size_t first = (size_t) pm_msg_get (task, PM_KEY_FIRST, 0);
    size_t count = (size_t) pm_msg_get (task, PM_KEY_COUNT, 0);
    int rc = s_learn_cols (pm, local, task, count);
    if (rc)
        return rc;
    if (pm_fault ("sweep_work", pm->rank))
        return pm_fail (pm, PM_ENOMEM, "pm_scatter: injected fault (PM_FAULT=sweep_work)");
    size_t cols = local->cols, noutputs = local->noutputs;
    if (frames->nframes != 1 || zmq_msg_size (&frames->frames[0]) != count * cols * sizeof (double))
        return pm_fail (pm, PM_EPROTO, "the coordinator sent a malformed chunk");
    if (!pm_sweep_local_reserve (local, local->rows + count))
        return pm_fail (pm, PM_ENOMEM, "pm_scatter: out of memory for %zu rows", count);
    size_t base = local->rows;
    memcpy (local->parameters + base * cols, zmq_msg_data (&frames->frames[0]),
            count * cols * sizeof (double));
    int64_t started = pm_clock_us ();
    for (size_t i = 0; i < count; i++) {
        local->sample_index[base + i] = first + i;
        pm_sweep_execute_row (model, state, local, base + i);
    }
    int64_t elapsed = pm_clock_us () - started;
    local->rows += count;

    pm_msg_t done;
    pm_msg_init (&done, PM_MSG_TASK_DONE, sweep);
    pm_msg_set (&done, PM_KEY_CHUNK, pm_msg_get (task, PM_KEY_CHUNK, 0));
    pm_msg_set (&done, PM_KEY_FIRST, (int64_t) first);
    pm_msg_set (&done, PM_KEY_COUNT, (int64_t) count);
    pm_msg_set (&done, PM_KEY_ELAPSED_US, elapsed);
    zmq_msg_t parts[2];
    if (zmq_msg_init_size (&parts[0], count * noutputs * sizeof (double)) != 0)
        return pm_fail (pm, PM_ENOMEM, "out of memory");
    if (zmq_msg_init_size (&parts[1], count) != 0) {
        zmq_msg_close (&parts[0]);
        return pm_fail (pm, PM_ENOMEM, "out of memory");
    }
    memcpy (zmq_msg_data (&parts[0]), local->outputs + base * noutputs,
            count * noutputs * sizeof (double));
    memcpy (zmq_msg_data (&parts[1]), local->success + base, count);
    char err[256];
    rc = pm_client_send (pm->client, &done, parts, 2, err, sizeof err);
    return rc ? pm_fail (pm, rc, "%s", err) : 0;
}

/* Hands a chunk back to the coordinator: this rank cannot do it. */
static void
s_abandon (pm_manager_t *pm, uint64_t sweep, const pm_msg_t *task, int code)
{
    pm_msg_t back;
    pm_msg_init (&back, PM_MSG_TASK_DONE, sweep);
    pm_msg_set (&back, PM_KEY_CHUNK, pm_msg_get (task, PM_KEY_CHUNK, 0));
    pm_msg_set (&back, PM_KEY_CODE, code);
    char err[256];
    if (pm_client_send (pm->client, &back, NULL, 0, err, sizeof err) != 0)
        pm_debug ("PM3406", "cannot hand a chunk back: %s", err);
}

/* Root: a chunk finished somewhere; tell the caller's progress function. */
static void
s_progress (pm_manager_t *pm, const struct pm_sweep_local *local, const pm_msg_t *msg,
            const pm_coll_result_t *frames, size_t *rows_done)
{
    size_t first = (size_t) pm_msg_get (msg, PM_KEY_FIRST, 0);
    size_t count = (size_t) pm_msg_get (msg, PM_KEY_COUNT, 0);
    size_t noutputs = local->noutputs;
    if (frames->nframes != 2 || first + count > local->all_rows
        || zmq_msg_size (&frames->frames[0]) != count * noutputs * sizeof (double)
        || zmq_msg_size (&frames->frames[1]) != count) {
        pm_warn ("PM3405", "dropped a malformed ROWS_DONE");
        return;
    }
    /* Frames carry no alignment promise: copy the outputs out. */
    double *outputs = malloc (count * noutputs * sizeof (double) + 1);
    if (!outputs)
        return;
    memcpy (outputs, zmq_msg_data (&frames->frames[0]), count * noutputs * sizeof (double));
    *rows_done += count;
    pm->progress (pm->progress_arg, first, count, noutputs, outputs,
                  zmq_msg_data (&frames->frames[1]), *rows_done, local->all_rows);
    free (outputs);
}

int
pm_scatter_dynamic (pm_manager_t *pm, const pm_model_t *model, const double *all_parameters,
                    size_t rows, size_t cols)
{
    bool root = pm->rank == 0;
    uint64_t sweep = ++pm->sweep_seq;
    char err[512] = "";
    void *state = NULL;
    size_t noutputs = 0;
    const char *const *names = NULL;
    int built = pm_sweep_build (model, &state, &noutputs, &names, err, sizeof err);
    bool bad_call = root && ((rows && !all_parameters) || cols == 0);
    struct pm_sweep_local *local =
        pm_sweep_local_new (0, cols ? cols : 1, noutputs, names);
    int rc = 0;
    if (!local)
        rc = pm_fail (pm, PM_ENOMEM, "pm_scatter: out of memory");
    else if (built != 0)
        rc = pm_fail (pm, PM_EINVAL, "pm_scatter: cannot build the model %s: %s",
                      model ? model->name : "", err);
    else if (bad_call)
        rc = pm_fail (pm, PM_EINVAL, "pm_scatter: root passed no parameters for %zu rows, or "
                                     "0 columns", rows);
    else if (root && (int64_t) (rows * cols * sizeof (double)) > pm_client_max_frame (pm->client))
        /* libzmq would drop the frame and the connection: refuse it here. */
        rc = pm_fail (pm, PM_EINVAL,
                      "pm_scatter: %zu rows x %zu columns (%zu bytes) exceed the coordinator's "
                      "frame limit of %lld bytes: split the sweep or raise pmd --max-frame",
                      rows, cols, rows * cols * sizeof (double),
                      (long long) pm_client_max_frame (pm->client));
    if (root) {
        /* Root opens the sweep even when it cannot take part in it, with no
           rows then, so that nobody waits for rows that never come.   */
        bool usable = rc == 0;
        if (usable) {
            local->all_parameters = malloc ((rows * cols + 1) * sizeof (double));
            if (!local->all_parameters)
                usable = false, rc = pm_fail (pm, PM_ENOMEM, "pm_scatter: out of memory");
            else {
                memcpy (local->all_parameters, all_parameters, rows * cols * sizeof (double));
                local->all_rows = rows;
            }
        }
        int open_rc = s_open (pm, sweep, usable ? all_parameters : NULL, usable ? rows : 0,
                              usable ? cols : 1, usable ? noutputs : 0);
        if (rc == 0)
            rc = open_rc;
    }
    if (rc != 0) {
        if (state && model->destroy)
            model->destroy (state);
        pm_sweep_local_destroy (&local);
        return rc;
    }
    local->schedule = PM_SCHEDULE_DYNAMIC;
    local->sweep_id = sweep;

    /* Pull until the coordinator says the sweep is complete. */
    size_t rows_done = 0;
    int in_flight = 0;
    for (; in_flight < REQUESTS_IN_FLIGHT && rc == 0; in_flight++)
        rc = s_request (pm, sweep);
    bool complete = false;
    /* After a local failure the rank keeps answering until its requests are
       in, handing back every chunk it gets, so that no row waits on it. */
    while (in_flight > 0) {
        pm_msg_t msg;
        pm_coll_result_t frames;
        int received = pm_client_receive (pm->client, &msg, &frames, err, sizeof err);
        if (received) {
            rc = pm_fail (pm, received, "%s", err);
            break; /* the coordinator is gone: nobody to hand anything back to */
        }
        if (msg.type == PM_MSG_ROWS_DONE && msg.seq == sweep && pm->progress) {
            s_progress (pm, local, &msg, &frames, &rows_done);
            pm_coll_result_close (&frames);
            continue;
        }
        if (msg.type != PM_MSG_TASK || msg.seq != sweep) {
            pm_debug ("PM3402", "ignored %s while pulling sweep %llu", pm_msg_type_name (msg.type),
                      (unsigned long long) sweep);
            pm_coll_result_close (&frames);
            continue;
        }
        in_flight--;
        int code = (int) pm_msg_get (&msg, PM_KEY_CODE, 0);
        if (code < 0) {
            rc = pm_fail (pm, code, "pm_scatter: %s", msg.text[0] ? msg.text : pm_strerror (code));
        } else if (pm_msg_get (&msg, PM_KEY_COUNT, 0) == 0) {
            complete = true; /* nothing left: the other request is answered the same way */
            if (rc == 0)
                rc = s_learn_cols (pm, local, &msg, 0);
        } else if (rc != 0) {
            s_abandon (pm, sweep, &msg, rc);
        } else {
            rc = s_work (pm, model, state, local, sweep, &msg, &frames);
            if (rc != 0)
                s_abandon (pm, sweep, &msg, rc);
            if (rc == 0 && !complete) {
                rc = s_request (pm, sweep);
                in_flight += rc == 0;
            }
        }
        pm_coll_result_close (&frames);
    }
    if (model->destroy)
        model->destroy (state);
    pm_debug ("PM3403", "rank %d evaluated %zu rows of sweep %llu", pm->rank, local->rows,
              (unsigned long long) sweep);
    pm_sweep_free (pm);
    pm->sweep = local;
    return rc;
}

int
pm_gather_dynamic (pm_manager_t *pm, pm_results_t **results)
{
    struct pm_sweep_local *local = pm->sweep;
    pm_results_t *out = NULL;
    if (pm->rank != 0) {
        /* Its own rows, in the order it did them. */
        out = pm_results_new (1, local);
        if (!out || !pm_results_add_rows (out, pm->rank, local, 0, local->rows)) {
            pm_results_destroy (&out);
            return pm_fail (pm, PM_ENOMEM, "pm_gather: out of memory");
        }
        *results = out;
        return 0;
    }
    pm_msg_t msg;
    pm_msg_init (&msg, PM_MSG_SWEEP_GATHER, local->sweep_id);
    char err[PM_TEXT_MAX + 1];
    int rc = pm_client_send (pm->client, &msg, NULL, 0, err, sizeof err);
    if (rc)
        return pm_fail (pm, rc, "%s", err);
    pm_msg_t reply;
    pm_coll_result_t frames = {0};
    do {
        pm_coll_result_close (&frames);
        rc = pm_client_receive (pm->client, &reply, &frames, err, sizeof err);
        if (rc)
            return pm_fail (pm, rc, "%s", err);
    } while (reply.type != PM_MSG_SWEEP_RESULTS || reply.seq != local->sweep_id);
    int code = (int) pm_msg_get (&reply, PM_KEY_CODE, 0);
    size_t rows = local->all_rows, cols = local->cols, noutputs = local->noutputs;
    if (code < 0)
        rc = pm_fail (pm, code, "pm_gather: %s", reply.text[0] ? reply.text : pm_strerror (code));
    else if (frames.nframes != 3 || (size_t) pm_msg_get (&reply, PM_KEY_COUNT, -1) != rows
             || zmq_msg_size (&frames.frames[0]) != rows * noutputs * sizeof (double)
             || zmq_msg_size (&frames.frames[1]) != rows
             || zmq_msg_size (&frames.frames[2]) != rows * sizeof (int32_t))
        rc = pm_fail (pm, PM_EPROTO, "pm_gather: the coordinator sent malformed results");
    /* Every row in sample order, as a sweep_local, then cut into runs of
       consecutive rows done by one rank.                                  */
    struct pm_sweep_local *all = rc ? NULL : pm_sweep_local_new (rows, cols, noutputs,
                                                                 (const char *const *) local->output_names);
    int32_t *owners = rc ? NULL : malloc ((rows + 1) * sizeof *owners);
    if (rc == 0 && (!all || !owners))
        rc = pm_fail (pm, PM_ENOMEM, "pm_gather: out of memory");
    size_t runs = 0;
    if (rc == 0) {
        all->rows = rows;
        memcpy (all->parameters, local->all_parameters, rows * cols * sizeof (double));
        memcpy (all->outputs, zmq_msg_data (&frames.frames[0]), rows * noutputs * sizeof (double));
        memcpy (all->success, zmq_msg_data (&frames.frames[1]), rows);
        memcpy (owners, zmq_msg_data (&frames.frames[2]), rows * sizeof *owners);
        for (size_t i = 0; i < rows; i++) {
            all->sample_index[i] = i;
            runs += i == 0 || owners[i] != owners[i - 1];
        }
        out = pm_results_new (runs, local);
        if (!out)
            rc = pm_fail (pm, PM_ENOMEM, "pm_gather: out of memory");
    }
    for (size_t begin = 0, end; rc == 0 && begin < rows; begin = end) {
        for (end = begin + 1; end < rows && owners[end] == owners[begin]; end++)
            ;
        if (!pm_results_add_rows (out, owners[begin], all, begin, end))
            rc = pm_fail (pm, PM_ENOMEM, "pm_gather: out of memory");
    }
    int64_t nlost = pm_msg_get (&reply, PM_KEY_LOST, 0);
    if (rc == 0 && nlost > 0) {
        /* The text lists the ranks: "...: 2 5". */
        out->lost = calloc ((size_t) nlost, sizeof *out->lost);
        const char *at = strchr (reply.text, ':');
        for (int64_t i = 0; out->lost && at && i < nlost; i++) {
            char *end = NULL;
            long rank = strtol (at + 1, &end, 10);
            if (end == at + 1)
                break;
            out->lost[out->nlost++] = (int) rank;
            at = end;
        }
        pm_warn ("PM3404", "sweep %llu: %s", (unsigned long long) local->sweep_id, reply.text);
    }
    pm_sweep_local_destroy (&all);
    free (owners);
    pm_coll_result_close (&frames);
    if (rc)
        pm_results_destroy (&out);
    *results = out;
    return rc;
}
