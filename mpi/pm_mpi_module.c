/*  pm_mpi_module.c — libpm's MPI backend (see client/pm_mpi.h): pm's
    collectives on native MPI collectives over MPI_COMM_WORLD.

    Data moves as MPI_BYTE with byte counts; integer reductions use MPI's
    own ops; floating-point reductions gather every rank's values and fold
    them in rank order, so that results are the same numbers as on every
    other backend (MPI's reduction order is the implementation's choice). */
#include <limits.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pm.h"
#include "pm_dtype.h"
#include "pm_mpi.h"

static bool s_we_initialised; /* MPI_Init was ours, so MPI_Finalize is too */
static int s_size, s_rank;
static char s_error[MPI_MAX_ERROR_STRING + 64];

static int
s_check (int mpi_rc, const char *what)
{
    if (mpi_rc == MPI_SUCCESS)
        return 0;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string (mpi_rc, text, &len);
    snprintf (s_error, sizeof s_error, "%s: %.*s", what, len, text);
    return PM_EPEERLOST; /* with MPI_ERRORS_RETURN, a failed collective means a lost peer */
}

static bool
s_fits (size_t bytes)
{
    return bytes <= (size_t) INT_MAX;
}

static int *
s_int_counts (const size_t *counts, int **displs)
{
    int *out = malloc ((size_t) s_size * sizeof *out);
    *displs = malloc ((size_t) s_size * sizeof **displs);
    if (!out || !*displs) {
        free (out);
        free (*displs);
        return NULL;
    }
    size_t offset = 0;
    for (int r = 0; r < s_size; r++) {
        if (!s_fits (counts[r]) || !s_fits (offset)) {
            free (out);
            free (*displs);
            return NULL;
        }
        out[r] = (int) counts[r];
        (*displs)[r] = (int) offset;
        offset += counts[r];
    }
    return out;
}

static int
s_init (int *rank, int *size, char *err, size_t err_size)
{
    int initialised = 0;
    MPI_Initialized (&initialised);
    if (!initialised) {
        if (MPI_Init (NULL, NULL) != MPI_SUCCESS) {
            snprintf (err, err_size, "MPI_Init failed");
            return PM_ESYS;
        }
        s_we_initialised = true;
    }
    /* Errors come back as codes (a lost peer), never abort the job here. */
    MPI_Comm_set_errhandler (MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank (MPI_COMM_WORLD, &s_rank);
    MPI_Comm_size (MPI_COMM_WORLD, &s_size);
    *rank = s_rank;
    *size = s_size;
    return 0;
}

static void
s_finalize (void)
{
    int finalised = 0;
    MPI_Finalized (&finalised);
    if (s_we_initialised && !finalised)
        MPI_Finalize ();
}

static int
s_barrier (void)
{
    return s_check (MPI_Barrier (MPI_COMM_WORLD), "MPI_Barrier");
}

static int
s_bcast (void *buf, size_t bytes, int root)
{
    if (!s_fits (bytes))
        return PM_EINVAL;
    return s_check (MPI_Bcast (buf, (int) bytes, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
}

static int
s_scatterv (const void *send, const size_t *counts, void *recv, size_t recv_bytes, int root)
{
    if (!s_fits (recv_bytes))
        return PM_EINVAL;
    int *displs = NULL, *ints = NULL;
    if (s_rank == root && !(ints = s_int_counts (counts, &displs)))
        return PM_EINVAL;
    int rc = s_check (MPI_Scatterv (send, ints, displs, MPI_BYTE, recv, (int) recv_bytes,
                                    MPI_BYTE, root, MPI_COMM_WORLD),
                      "MPI_Scatterv");
    free (ints);
    free (displs);
    return rc;
}

static int
s_gatherv (const void *send, size_t bytes, void *recv, const size_t *counts, int root)
{
    if (!s_fits (bytes))
        return PM_EINVAL;
    int *displs = NULL, *ints = NULL;
    if (s_rank == root && !(ints = s_int_counts (counts, &displs)))
        return PM_EINVAL;
    int rc = s_check (MPI_Gatherv (send, (int) bytes, MPI_BYTE, recv, ints, displs, MPI_BYTE,
                                   root, MPI_COMM_WORLD),
                      "MPI_Gatherv");
    free (ints);
    free (displs);
    return rc;
}

static int
s_allgatherv (const void *send, size_t bytes, void *recv, const size_t *counts)
{
    int *displs = NULL, *ints = s_int_counts (counts, &displs);
    if (!ints || !s_fits (bytes))
        return PM_EINVAL;
    int rc = s_check (MPI_Allgatherv (send, (int) bytes, MPI_BYTE, recv, ints, displs, MPI_BYTE,
                                      MPI_COMM_WORLD),
                      "MPI_Allgatherv");
    free (ints);
    free (displs);
    return rc;
}

static int
s_allgather_sizes (size_t mine, size_t *sizes)
{
    uint64_t value = mine;
    uint64_t *all = malloc ((size_t) s_size * sizeof *all);
    if (!all)
        return PM_ENOMEM;
    int rc = s_check (MPI_Allgather (&value, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T,
                                     MPI_COMM_WORLD),
                      "MPI_Allgather");
    for (int r = 0; rc == 0 && r < s_size; r++)
        sizes[r] = (size_t) all[r];
    free (all);
    return rc;
}

static MPI_Datatype
s_mpi_type (int dtype)
{
    switch (dtype) {
    case PM_INT32: return MPI_INT32_T;
    case PM_INT64: return MPI_INT64_T;
    case PM_FLOAT32: return MPI_FLOAT;
    case PM_FLOAT64: return MPI_DOUBLE;
    default: return MPI_UINT8_T;
    }
}

static MPI_Op
s_mpi_op (int op)
{
    switch (op) {
    case PM_MIN: return MPI_MIN;
    case PM_MAX: return MPI_MAX;
    case PM_PROD: return MPI_PROD;
    default: return MPI_SUM;
    }
}

static int
s_reduce (const void *send, void *recv, size_t count, int dtype, int op, int root, bool all)
{
    size_t dsize = pm_dtype_size ((pm_dtype_t) dtype), bytes;
    if (!pm_size_mul (count, dsize, &bytes) || !s_fits (count) || !s_fits (bytes))
        return PM_EINVAL;
    bool floating = dtype == PM_FLOAT32 || dtype == PM_FLOAT64;
    if (!floating) {
        /* Integer results do not depend on the order: MPI's own reduction. */
        if (all)
            return s_check (MPI_Allreduce (send, recv, (int) count, s_mpi_type (dtype),
                                           s_mpi_op (op), MPI_COMM_WORLD),
                            "MPI_Allreduce");
        return s_check (MPI_Reduce (send, s_rank == root ? recv : NULL, (int) count,
                                    s_mpi_type (dtype), s_mpi_op (op), root, MPI_COMM_WORLD),
                        "MPI_Reduce");
    }
    /* Floats: every contribution, folded in rank order. */
    size_t total;
    if (!pm_size_mul (bytes, (size_t) s_size, &total) || !s_fits (total))
        return PM_EINVAL;
    bool receives = all || s_rank == root;
    char *every = receives ? malloc (total ? total : 1) : NULL;
    if (receives && !every)
        return PM_ENOMEM;
    int rc = all ? s_check (MPI_Allgather (send, (int) bytes, MPI_BYTE, every, (int) bytes,
                                           MPI_BYTE, MPI_COMM_WORLD),
                            "MPI_Allgather")
                 : s_check (MPI_Gather (send, (int) bytes, MPI_BYTE, every, (int) bytes,
                                        MPI_BYTE, root, MPI_COMM_WORLD),
                            "MPI_Gather");
    if (rc == 0 && receives) {
        memmove (recv, every, bytes);
        for (int r = 1; r < s_size; r++)
            pm_reduce_into (recv, every + (size_t) r * bytes, count, (pm_dtype_t) dtype,
                            (pm_op_t) op);
    }
    free (every);
    return rc;
}

static const char *
s_error_text (void)
{
    return s_error;
}

static const pm_mpi_ops_t s_ops = {
    .abi = PM_MPI_ABI,
    .init = s_init,
    .finalize = s_finalize,
    .barrier = s_barrier,
    .bcast = s_bcast,
    .scatterv = s_scatterv,
    .gatherv = s_gatherv,
    .allgatherv = s_allgatherv,
    .allgather_sizes = s_allgather_sizes,
    .reduce = s_reduce,
    .error_text = s_error_text,
};

const pm_mpi_ops_t *pm_mpi_module (void);

const pm_mpi_ops_t *
pm_mpi_module (void)
{
    return &s_ops;
}
