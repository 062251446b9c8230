/*  pm_collectives_mpi.c — collectives on native MPI (see pm_collectives_mpi.h). */
#include "pm_collectives_mpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pm_blobs.h"
#include "pm_mpi.h"
#include "pm_texts.h"


static int
s_mpi_failed (pm_manager_t *pm, int rc, const char *what)
{
    if (rc == 0)
        return 0;
    if (rc == PM_EPEERLOST)
        return pm_fail (pm, rc, "%s", pm->mpi->error_text ());
    return pm_fail (pm, rc, "%s: %s", what, pm_strerror (rc));
}

/* Every rank learns whether all ranks said ok (an allreduce of one flag). */
static int
s_all_ok (pm_manager_t *pm, bool ok, bool *all_ok)
{
    int64_t mine = ok ? 1 : 0, every = 0;
    int rc = pm->mpi->reduce (&mine, &every, 1, PM_INT64, PM_MIN, 0, true);
    *all_ok = every == 1;
    return s_mpi_failed (pm, rc, "agreeing on sizes");
}

int
pm_mpi_barrier (pm_manager_t *pm)
{
    return s_mpi_failed (pm, pm->mpi->barrier (), "barrier");
}

int
pm_mpi_bcast (pm_manager_t *pm, void *buf, size_t bytes, int root)
{
    return s_mpi_failed (pm, pm->mpi->bcast (buf, bytes, root), "bcast");
}

int
pm_mpi_bcast_blob (pm_manager_t *pm, void **data, size_t *size)
{
    uint64_t bytes = pm->rank == 0 ? *size : 0;
    int rc = pm->mpi->bcast (&bytes, sizeof bytes, 0);
    if (rc)
        return s_mpi_failed (pm, rc, "bcast");
    void *buf = pm->rank == 0 ? *data : malloc (bytes ? bytes : 1);
    /* A rank out of memory still takes part, into a scratch buffer of one byte per round. */
    if (!buf)
        return pm_fail (pm, PM_ENOMEM, "out of memory for %llu bytes", (unsigned long long) bytes);
    rc = pm->mpi->bcast (buf, bytes, 0);
    if (rc) {
        if (pm->rank != 0)
            free (buf);
        return s_mpi_failed (pm, rc, "bcast");
    }
    if (pm->rank != 0) {
        *data = buf;
        *size = bytes;
    }
    return 0;
}

int
pm_mpi_scatterv (pm_manager_t *pm, const void *send, const size_t *counts, size_t dsize,
                 void *recv, size_t recv_count, int root)
{
    int n = pm->size;
    /* Each rank checks what root will send it against what it expects. */
    size_t *bytes = pm->rank == root ? malloc ((size_t) n * sizeof *bytes) : NULL;
    uint64_t *expect = pm->rank == root ? malloc ((size_t) n * sizeof *expect) : NULL;
    if (pm->rank == root && (!bytes || !expect)) {
        free (bytes);
        free (expect);
        return pm_fail (pm, PM_ENOMEM, "out of memory");
    }
    for (int r = 0; bytes && r < n; r++) {
        expect[r] = counts[r];
        bytes[r] = counts[r] * dsize;
    }
    uint64_t mine = 0;
    size_t eight[1] = {sizeof (uint64_t)};
    size_t *eights = pm->rank == root ? malloc ((size_t) n * sizeof *eights) : eight;
    if (!eights) {
        free (bytes);
        free (expect);
        return pm_fail (pm, PM_ENOMEM, "out of memory");
    }
    for (int r = 0; pm->rank == root && r < n; r++)
        eights[r] = sizeof (uint64_t);
    int rc = pm->mpi->scatterv (expect, eights, &mine, sizeof mine, root);
    if (eights != eight)
        free (eights);
    bool all_ok = false;
    if (rc == 0)
        rc = s_all_ok (pm, mine == recv_count, &all_ok);
    else
        rc = s_mpi_failed (pm, rc, "scatterv");
    if (rc == 0 && !all_ok)
        rc = pm_fail (pm, PM_EINVAL,
                      "Scattering arrays cannot be done with mismatched sizes (some rank "
                      "expects another count than root sends it)");
    if (rc == 0)
        rc = s_mpi_failed (pm, pm->mpi->scatterv (send, bytes, recv, recv_count * dsize, root),
                           "scatterv");
    free (bytes);
    free (expect);
    return rc;
}

int
pm_mpi_gatherv (pm_manager_t *pm, const void *send, size_t count, size_t dsize, void *recv,
                const size_t *counts, int root)
{
    int n = pm->size;
    bool is_root = pm->rank == root;
    /* Root checks every rank's count against its counts, then tells all. */
    size_t *sizes = malloc ((size_t) n * sizeof *sizes);
    size_t *bytes = is_root ? malloc ((size_t) n * sizeof *bytes) : NULL;
    if (!sizes || (is_root && !bytes)) {
        free (sizes);
        free (bytes);
        return pm_fail (pm, PM_ENOMEM, "out of memory");
    }
    int rc = pm->mpi->allgather_sizes (count, sizes);
    bool ok = true;
    int bad_rank = -1;
    for (int r = 0; rc == 0 && is_root && r < n; r++) {
        bytes[r] = counts[r] * dsize;
        if (sizes[r] != counts[r] && bad_rank < 0) {
            ok = false;
            bad_rank = r;
        }
    }
    bool all_ok = false;
    if (rc == 0)
        rc = s_all_ok (pm, ok, &all_ok);
    else
        rc = s_mpi_failed (pm, rc, "gatherv");
    if (rc == 0 && !all_ok)
        rc = is_root ? pm_fail (pm, PM_EINVAL, PM_GATHER_MISMATCH_TEXT
                                " (root expects %zu elements from rank %d, it sent %zu)",
                                counts[bad_rank], bad_rank, sizes[bad_rank])
                     : pm_fail (pm, PM_EINVAL, PM_GATHER_MISMATCH_TEXT);
    if (rc == 0)
        rc = s_mpi_failed (pm, pm->mpi->gatherv (send, count * dsize, recv, bytes, root),
                           "gatherv");
    free (sizes);
    free (bytes);
    return rc;
}

int
pm_mpi_allgather (pm_manager_t *pm, const void *send, size_t count, size_t dsize, void *recv,
                  const size_t *counts)
{
    int n = pm->size;
    size_t *sizes = malloc ((size_t) n * sizeof *sizes);
    size_t *bytes = malloc ((size_t) n * sizeof *bytes);
    if (!sizes || !bytes) {
        free (sizes);
        free (bytes);
        return pm_fail (pm, PM_ENOMEM, "out of memory");
    }
    int rc = pm->mpi->allgather_sizes (count, sizes);
    bool ok = true;
    for (int r = 0; rc == 0 && r < n; r++) {
        bytes[r] = counts[r] * dsize;
        ok = ok && sizes[r] == counts[r];
    }
    bool all_ok = false;
    if (rc == 0)
        rc = s_all_ok (pm, ok, &all_ok);
    else
        rc = s_mpi_failed (pm, rc, "allgather");
    if (rc == 0 && !all_ok)
        rc = pm_fail (pm, PM_EINVAL,
                      "Gathering arrays to all ranks cannot be done with mismatched sizes");
    if (rc == 0)
        rc = s_mpi_failed (pm, pm->mpi->allgatherv (send, count * dsize, recv, bytes),
                           "allgather");
    free (sizes);
    free (bytes);
    return rc;
}

int
pm_mpi_combine (pm_manager_t *pm, const void *data, size_t size, pm_blobs_t **all)
{
    int n = pm->size;
    size_t *sizes = malloc ((size_t) n * sizeof *sizes);
    if (!sizes)
        return pm_fail (pm, PM_ENOMEM, "out of memory");
    int rc = s_mpi_failed (pm, pm->mpi->allgather_sizes (size, sizes), "allgather");
    size_t total = 0;
    for (int r = 0; rc == 0 && r < n; r++)
        total += sizes[r];
    char *buf = rc == 0 ? malloc (total ? total : 1) : NULL;
    if (rc == 0 && !buf)
        rc = pm_fail (pm, PM_ENOMEM, "out of memory for %zu bytes", total);
    if (rc == 0)
        rc = s_mpi_failed (pm, pm->mpi->allgatherv (data, size, buf, sizes), "allgather");
    pm_blobs_t *blobs = rc == 0 ? pm_blobs_new ((size_t) n) : NULL;
    if (rc == 0 && !blobs)
        rc = pm_fail (pm, PM_ENOMEM, "out of memory");
    size_t offset = 0;
    for (int r = 0; rc == 0 && r < n; r++) {
        if (!pm_blobs_set (blobs, (size_t) r, buf + offset, sizes[r]))
            rc = pm_fail (pm, PM_ENOMEM, "out of memory");
        offset += sizes[r];
    }
    if (rc)
        pm_blobs_destroy (&blobs);
    *all = blobs;
    free (buf);
    free (sizes);
    return rc;
}

int
pm_mpi_reduce (pm_manager_t *pm, const void *send, void *recv, size_t count, pm_dtype_t t,
               pm_op_t op, int root, bool all)
{
    return s_mpi_failed (pm, pm->mpi->reduce (send, recv, count, (int) t, (int) op, root, all),
                         all ? "allreduce" : "reduce");
}
