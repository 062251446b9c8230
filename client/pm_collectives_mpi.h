/*  pm_collectives_mpi.h — the collectives of a rank launched by mpirun, on
    the MPI module (pm_mpi.h).  Arguments are already checked by
    pm_collectives.c; a bad call on a rank returns PM_EINVAL on that rank
    (as in MPI, the others would wait: symmetric mistakes are caught
    before any communication).  Size mismatches between ranks are checked
    with one extra small collective, so every rank gets PM_EINVAL.       */
#ifndef PM_COLLECTIVES_MPI_H_INCLUDED
#define PM_COLLECTIVES_MPI_H_INCLUDED

#include "pm_manager_internal.h"

int pm_mpi_barrier (pm_manager_t *pm);
int pm_mpi_bcast (pm_manager_t *pm, void *buf, size_t bytes, int root);
int pm_mpi_bcast_blob (pm_manager_t *pm, void **data, size_t *size);
int pm_mpi_scatterv (pm_manager_t *pm, const void *send, const size_t *counts, size_t dsize,
                     void *recv, size_t recv_count, int root);
int pm_mpi_gatherv (pm_manager_t *pm, const void *send, size_t count, size_t dsize, void *recv,
                    const size_t *counts, int root);
int pm_mpi_allgather (pm_manager_t *pm, const void *send, size_t count, size_t dsize,
                      void *recv, const size_t *counts);
int pm_mpi_combine (pm_manager_t *pm, const void *data, size_t size, pm_blobs_t **all);
int pm_mpi_reduce (pm_manager_t *pm, const void *send, void *recv, size_t count, pm_dtype_t t,
                   pm_op_t op, int root, bool all);

#endif
