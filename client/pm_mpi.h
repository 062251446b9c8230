/*  pm_mpi.h — the MPI backend's interface.  The MPI code lives in a module
    (mpi/pm_mpi_module.c → libpm_mpi.so) that libpm loads with dlopen only
    when a program runs under mpirun, so libpm builds and runs where MPI is
    not installed.  All sizes here are in bytes unless named count.        */
#ifndef PM_MPI_H_INCLUDED
#define PM_MPI_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#define PM_MPI_ABI 1
#define PM_MPI_MODULE_NAME "libpm_mpi.so"
#define PM_MPI_SYMBOL "pm_mpi_module"

typedef struct {
    int abi; /* PM_MPI_ABI */
    /* MPI_Init (unless already initialised); rank and size of MPI_COMM_WORLD. */
    int (*init) (int *rank, int *size, char *err, size_t err_size);
    /* MPI_Finalize (unless the program initialised MPI itself). */
    void (*finalize) (void);
    int (*barrier) (void);
    int (*bcast) (void *buf, size_t bytes, int root);
    /* counts[r]: bytes for rank r (root only for scatter/gather). */
    int (*scatterv) (const void *send, const size_t *counts, void *recv, size_t recv_bytes,
                     int root);
    int (*gatherv) (const void *send, size_t bytes, void *recv, const size_t *counts, int root);
    int (*allgatherv) (const void *send, size_t bytes, void *recv, const size_t *counts);
    /* sizes[r] = what rank r passes as mine (an allgather of one size_t each). */
    int (*allgather_sizes) (size_t mine, size_t *sizes);
    /* Element-wise reduction (pm dtype and op codes); all: every rank gets it. */
    int (*reduce) (const void *send, void *recv, size_t count, int dtype, int op, int root,
                   bool all);
    const char *(*error_text) (void); /* the last MPI error, for messages */
} pm_mpi_ops_t;

/* Exported by the module under PM_MPI_SYMBOL. */
typedef const pm_mpi_ops_t *(*pm_mpi_module_fn) (void);

#endif
