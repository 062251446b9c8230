/*  pm_collectives.c — the collectives of pm.h.  Each checks its arguments,
    runs locally on a serial manager, and otherwise sends one contribution
    to the coordinator and unpacks the round's result.  A rank whose own
    arguments are bad still takes part (with an error contribution), so
    every rank of the group gets the error instead of waiting forever.    */
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pm_blobs.h"
#include "pm_collectives_mpi.h"
#include "pm_dtype.h"
#include "pm_log.h"
#include "pm_texts.h"
#include "pm_manager_internal.h"


/* 0 if pm can run collectives, else a PM_E* code. */
static int
s_usable (pm_manager_t *pm)
{
    if (!pm)
        return PM_EINVAL;
    if (pm->mode == PM_MODE_THREADS_LAUNCHER)
        return pm_fail (pm, PM_EINVAL,
                        "collectives of a ConcurrentFutures run are called on the rank manager "
                        "that pm_run passes to the rank function");
    return 0;
}

static bool
s_serial (pm_manager_t *pm)
{
    return pm->mode == PM_MODE_SERIAL;
}

/* Sends args (or an error contribution if bad_text is set) and waits. */
static int
s_round (pm_manager_t *pm, pm_coll_args_t *args, pm_coll_result_t *result, const char *bad_text)
{
    result->frames = NULL;
    result->nframes = 0;
    if (bad_text) {
        args->error = PM_EINVAL;
        args->error_text = bad_text;
        args->has_data = false;
        args->counts = NULL;
    }
    if (!pm->client)
        return pm_fail (pm, PM_ECLOSED, "the manager has no coordinator connection");
    char err[PM_TEXT_MAX + 1];
    int rc = pm_client_collective (pm->client, args, result, err, sizeof err);
    if (rc != 0)
        return pm_fail (pm, rc, "%s", err);
    return 0;
}

/* Copies frame into dst if it holds exactly bytes; else PM_EPROTO. */
static int
s_copy_frame (pm_manager_t *pm, const pm_coll_result_t *result, size_t index, void *dst,
              size_t bytes)
{
    if (index >= result->nframes || zmq_msg_size (&result->frames[index]) != bytes)
        return pm_fail (pm, PM_EPROTO, "the coordinator sent a result of the wrong size");
    if (bytes)
        memcpy (dst, zmq_msg_data (&result->frames[index]), bytes);
    return 0;
}

/* Sum of counts[0..n) times dsize, or false on overflow. */
static bool
s_total_bytes (const size_t *counts, int n, size_t dsize, size_t *total)
{
    size_t sum = 0;
    for (int r = 0; r < n; r++) {
        if (counts[r] > SIZE_MAX - sum)
            return false;
        sum += counts[r];
    }
    return pm_size_mul (sum, dsize, total);
}

int
pm_barrier (pm_manager_t *pm)
{
    int rc = s_usable (pm);
    if (rc || s_serial (pm))
        return rc;
    if (pm->mpi)
        return pm_mpi_barrier (pm);
    pm_coll_args_t args = {.kind = PM_COLL_BARRIER};
    pm_coll_result_t result;
    rc = s_round (pm, &args, &result, NULL);
    pm_coll_result_close (&result);
    return rc;
}

int
pm_sync_with_peers (pm_manager_t *pm)
{
    return pm_barrier (pm);
}

int
pm_bcast (pm_manager_t *pm, void *buf, size_t count, pm_dtype_t t, int root)
{
    int rc = s_usable (pm);
    if (rc)
        return rc;
    const char *bad = NULL;
    size_t bytes = 0;
    if (!pm_dtype_valid ((int) t))
        bad = "unknown dtype";
    else if (root < 0 || root >= pm->size)
        bad = "root is not a rank of the group";
    else if (!pm_size_mul (count, pm_dtype_size (t), &bytes))
        bad = "count too large";
    else if (count && !buf)
        bad = "NULL buffer";
    if (s_serial (pm) || (pm->mpi && bad))
        return bad ? pm_fail (pm, PM_EINVAL, "bcast: %s", bad) : 0;
    if (pm->mpi)
        return pm_mpi_bcast (pm, buf, bytes, root);
    pm_coll_args_t args = {.kind = PM_COLL_BCAST, .dtype = t, .root = root,
                           .count = (int64_t) count, .data = buf, .data_size = bytes,
                           .has_data = pm->rank == root};
    pm_coll_result_t result;
    rc = s_round (pm, &args, &result, bad);
    if (rc == 0 && pm->rank != root)
        rc = s_copy_frame (pm, &result, 0, buf, bytes);
    pm_coll_result_close (&result);
    return rc;
}

int
pm_sync_array_with_peers (pm_manager_t *pm, void *buf, size_t count, pm_dtype_t t)
{
    return pm_bcast (pm, buf, count, t, 0);
}

int
pm_sync_bytes_with_peers (pm_manager_t *pm, void **data, size_t *size)
{
    int rc = s_usable (pm);
    if (rc)
        return rc;
    const char *bad = NULL;
    if (!data || !size)
        bad = "data and size must not be NULL";
    else if (pm->rank == 0 && *size && !*data)
        bad = "NULL data with a non-zero size at root";
    if (s_serial (pm) || (pm->mpi && bad))
        return bad ? pm_fail (pm, PM_EINVAL, "sync bytes: %s", bad) : 0;
    if (pm->mpi)
        return pm_mpi_bcast_blob (pm, data, size);
    pm_coll_args_t args = {.kind = PM_COLL_BCAST_BLOB, .dtype = PM_BYTE, .root = 0};
    if (!bad && pm->rank == 0) {
        args.data = *data;
        args.data_size = *size;
        args.count = (int64_t) *size;
        args.has_data = true;
    }
    pm_coll_result_t result;
    rc = s_round (pm, &args, &result, bad);
    if (rc == 0 && pm->rank != 0) {
        if (result.nframes != 1)
            rc = pm_fail (pm, PM_EPROTO, "the coordinator sent no data");
        else {
            size_t n = zmq_msg_size (&result.frames[0]);
            void *copy = malloc (n ? n : 1);
            if (!copy)
                rc = pm_fail (pm, PM_ENOMEM, "out of memory for %zu bytes", n);
            else {
                memcpy (copy, zmq_msg_data (&result.frames[0]), n);
                *data = copy;
                *size = n;
            }
        }
    }
    pm_coll_result_close (&result);
    return rc;
}

int
pm_scatterv (pm_manager_t *pm, const void *send, const size_t *counts, pm_dtype_t t, void *recv,
             size_t recv_count, int root)
{
    int rc = s_usable (pm);
    if (rc)
        return rc;
    const char *bad = NULL;
    size_t dsize = pm_dtype_size (t), total = 0, recv_bytes = 0;
    bool is_root = pm->rank == root;
    if (!pm_dtype_valid ((int) t))
        bad = "unknown dtype";
    else if (root < 0 || root >= pm->size)
        bad = "root is not a rank of the group";
    else if (!pm_size_mul (recv_count, dsize, &recv_bytes))
        bad = "receive count too large";
    else if (recv_count && !recv)
        bad = "NULL receive buffer";
    else if (is_root && !counts)
        bad = "root passed NULL counts";
    else if (is_root && !s_total_bytes (counts, pm->size, dsize, &total))
        bad = "counts too large";
    else if (is_root && total && !send)
        bad = "root passed a NULL send buffer";
    if (s_serial (pm)) {
        if (bad)
            return pm_fail (pm, PM_EINVAL, "scatterv: %s", bad);
        if (counts[0] != recv_count)
            return pm_fail (pm, PM_EINVAL,
                            "Scattering arrays cannot be done with mismatched sizes (root sends "
                            "%zu elements to rank 0, it expects %zu)",
                            counts[0], recv_count);
        if (recv_bytes)
            memmove (recv, send, recv_bytes);
        return 0;
    }
    if (pm->mpi)
        return bad ? pm_fail (pm, PM_EINVAL, "scatterv: %s", bad)
                   : pm_mpi_scatterv (pm, send, counts, dsize, recv, recv_count, root);
    pm_coll_args_t args = {.kind = PM_COLL_SCATTERV, .dtype = t, .root = root,
                           .count = (int64_t) recv_count};
    if (is_root) {
        args.data = send;
        args.data_size = total;
        args.has_data = true;
        args.counts = counts;
    }
    pm_coll_result_t result;
    rc = s_round (pm, &args, &result, bad);
    if (rc == 0)
        rc = s_copy_frame (pm, &result, 0, recv, recv_bytes);
    pm_coll_result_close (&result);
    return rc;
}

/* Copies frame r of result to recv at the offset counts say, for every r. */
static int
s_unpack_ranks (pm_manager_t *pm, const pm_coll_result_t *result, const size_t *counts,
                size_t dsize, void *recv)
{
    if (result->nframes != (size_t) pm->size)
        return pm_fail (pm, PM_EPROTO, "the coordinator sent %zu parts for %d ranks",
                        result->nframes, pm->size);
    size_t offset = 0;
    for (int r = 0; r < pm->size; r++) {
        size_t bytes = counts[r] * dsize;
        int rc = s_copy_frame (pm, result, (size_t) r, (char *) recv + offset, bytes);
        if (rc)
            return rc;
        offset += bytes;
    }
    return 0;
}

int
pm_gatherv (pm_manager_t *pm, const void *send, size_t count, pm_dtype_t t, void *recv,
            const size_t *counts, int root)
{
    int rc = s_usable (pm);
    if (rc)
        return rc;
    const char *bad = NULL;
    size_t dsize = pm_dtype_size (t), bytes = 0, total = 0;
    bool is_root = pm->rank == root;
    if (!pm_dtype_valid ((int) t))
        bad = "unknown dtype";
    else if (root < 0 || root >= pm->size)
        bad = "root is not a rank of the group";
    else if (!pm_size_mul (count, dsize, &bytes))
        bad = "count too large";
    else if (count && !send)
        bad = "NULL send buffer";
    else if (is_root && !counts)
        bad = "root passed NULL counts";
    else if (is_root && !s_total_bytes (counts, pm->size, dsize, &total))
        bad = "counts too large";
    else if (is_root && total && !recv)
        bad = "root passed a NULL receive buffer";
    if (s_serial (pm)) {
        if (bad)
            return pm_fail (pm, PM_EINVAL, "gather: %s", bad);
        if (counts[0] != count)
            return pm_fail (pm, PM_EINVAL, PM_GATHER_MISMATCH_TEXT
                            " (root expects %zu elements from rank 0, it sent %zu)",
                            counts[0], count);
        if (bytes)
            memmove (recv, send, bytes);
        return 0;
    }
    if (pm->mpi)
        return bad ? pm_fail (pm, PM_EINVAL, "gather: %s", bad)
                   : pm_mpi_gatherv (pm, send, count, dsize, recv, counts, root);
    pm_coll_args_t args = {.kind = PM_COLL_GATHERV, .dtype = t, .root = root,
                           .count = (int64_t) count, .data = send, .data_size = bytes,
                           .has_data = true, .counts = is_root ? counts : NULL};
    pm_coll_result_t result;
    rc = s_round (pm, &args, &result, bad);
    if (rc == 0 && is_root)
        rc = s_unpack_ranks (pm, &result, counts, dsize, recv);
    pm_coll_result_close (&result);
    return rc;
}

int
pm_gather_arrays_to_root (pm_manager_t *pm, const void *send, size_t count, pm_dtype_t t,
                          void *recv, const size_t *counts)
{
    return pm_gatherv (pm, send, count, t, recv, counts, 0);
}

int
pm_allgather (pm_manager_t *pm, const void *send, size_t count, pm_dtype_t t, void *recv,
              const size_t *counts)
{
    int rc = s_usable (pm);
    if (rc)
        return rc;
    const char *bad = NULL;
    size_t dsize = pm_dtype_size (t), bytes = 0, total = 0;
    if (!pm_dtype_valid ((int) t))
        bad = "unknown dtype";
    else if (!pm_size_mul (count, dsize, &bytes))
        bad = "count too large";
    else if (count && !send)
        bad = "NULL send buffer";
    else if (!counts)
        bad = "NULL counts";
    else if (!s_total_bytes (counts, pm->size, dsize, &total))
        bad = "counts too large";
    else if (total && !recv)
        bad = "NULL receive buffer";
    if (s_serial (pm)) {
        if (bad)
            return pm_fail (pm, PM_EINVAL, "allgather: %s", bad);
        if (counts[0] != count)
            return pm_fail (pm, PM_EINVAL,
                            "Gathering arrays to all ranks cannot be done with mismatched sizes "
                            "(counts say %zu elements from rank 0, it sent %zu)",
                            counts[0], count);
        if (bytes)
            memmove (recv, send, bytes);
        return 0;
    }
    if (pm->mpi)
        return bad ? pm_fail (pm, PM_EINVAL, "allgather: %s", bad)
                   : pm_mpi_allgather (pm, send, count, dsize, recv, counts);
    pm_coll_args_t args = {.kind = PM_COLL_ALLGATHERV, .dtype = t, .count = (int64_t) count,
                           .data = send, .data_size = bytes, .has_data = true,
                           .counts = counts};
    pm_coll_result_t result;
    rc = s_round (pm, &args, &result, bad);
    if (rc == 0)
        rc = s_unpack_ranks (pm, &result, counts, dsize, recv);
    pm_coll_result_close (&result);
    return rc;
}

int
pm_combine_data_with_peers (pm_manager_t *pm, const void *data, size_t size, pm_blobs_t **all)
{
    int rc = s_usable (pm);
    if (rc)
        return rc;
    const char *bad = NULL;
    if (!all)
        bad = "NULL result pointer";
    else if (size && !data)
        bad = "NULL data with a non-zero size";
    if (all)
        *all = NULL;
    if (s_serial (pm)) {
        if (bad)
            return pm_fail (pm, PM_EINVAL, "combine: %s", bad);
        pm_blobs_t *blobs = pm_blobs_new (1);
        if (!blobs || !pm_blobs_set (blobs, 0, data, size)) {
            pm_blobs_destroy (&blobs);
            return pm_fail (pm, PM_ENOMEM, "out of memory");
        }
        *all = blobs;
        return 0;
    }
    if (pm->mpi)
        return bad ? pm_fail (pm, PM_EINVAL, "combine: %s", bad)
                   : pm_mpi_combine (pm, data, size, all);
    pm_coll_args_t args = {.kind = PM_COLL_ALLGATHERV, .dtype = PM_BYTE,
                           .count = (int64_t) size, .data = data, .data_size = size,
                           .has_data = true};
    pm_coll_result_t result;
    rc = s_round (pm, &args, &result, bad);
    if (rc == 0) {
        pm_blobs_t *blobs = pm_blobs_new (result.nframes);
        for (size_t r = 0; blobs && r < result.nframes; r++)
            if (!pm_blobs_set (blobs, r, zmq_msg_data (&result.frames[r]),
                               zmq_msg_size (&result.frames[r])))
                pm_blobs_destroy (&blobs);
        if (!blobs)
            rc = pm_fail (pm, PM_ENOMEM, "out of memory");
        *all = blobs;
    }
    pm_coll_result_close (&result);
    return rc;
}

static int
s_reduce (pm_manager_t *pm, const void *send, void *recv, size_t count, pm_dtype_t t,
          pm_op_t op, int root, bool to_all)
{
    int rc = s_usable (pm);
    if (rc)
        return rc;
    const char *bad = NULL;
    size_t bytes = 0;
    bool receives = to_all || pm->rank == root;
    if (!pm_dtype_valid ((int) t))
        bad = "unknown dtype";
    else if (!pm_op_valid ((int) op))
        bad = "unknown op";
    else if (root < 0 || root >= pm->size)
        bad = "root is not a rank of the group";
    else if (!pm_size_mul (count, pm_dtype_size (t), &bytes))
        bad = "count too large";
    else if (count && !send)
        bad = "NULL send buffer";
    else if (count && receives && !recv)
        bad = "NULL receive buffer";
    if (s_serial (pm)) {
        if (bad)
            return pm_fail (pm, PM_EINVAL, "reduce: %s", bad);
        if (bytes)
            memmove (recv, send, bytes);
        return 0;
    }
    if (pm->mpi)
        return bad ? pm_fail (pm, PM_EINVAL, "reduce: %s", bad)
                   : pm_mpi_reduce (pm, send, recv, count, t, op, root, to_all);
    pm_coll_args_t args = {.kind = to_all ? PM_COLL_ALLREDUCE : PM_COLL_REDUCE, .dtype = t,
                           .op = op, .root = to_all ? 0 : root, .count = (int64_t) count,
                           .data = send, .data_size = bytes, .has_data = true};
    pm_coll_result_t result;
    rc = s_round (pm, &args, &result, bad);
    if (rc == 0 && receives)
        rc = s_copy_frame (pm, &result, 0, recv, bytes);
    pm_coll_result_close (&result);
    return rc;
}

int
pm_reduce (pm_manager_t *pm, const void *send, void *recv, size_t count, pm_dtype_t t,
           pm_op_t op, int root)
{
    return s_reduce (pm, send, recv, count, t, op, root, false);
}

int
pm_allreduce (pm_manager_t *pm, const void *send, void *recv, size_t count, pm_dtype_t t,
              pm_op_t op)
{
    return s_reduce (pm, send, recv, count, t, op, 0, true);
}

int
pm_sum_values_and_sync (pm_manager_t *pm, const void *send, void *recv, size_t count,
                        pm_dtype_t t)
{
    return s_reduce (pm, send, recv, count, t, PM_SUM, 0, true);
}
