/*  pm_manager_internal.h — the manager struct, shared by the files of libpm
    that implement it: pm_manager.c (factory, lifecycle, pm_run),
    pm_launch.c (forking ranks), pm_collectives.c (the collectives).     */
#ifndef PM_MANAGER_INTERNAL_H_INCLUDED
#define PM_MANAGER_INTERNAL_H_INCLUDED

#include <czmq.h>
#include <sys/types.h>

#include "pm.h"
#include "pm_client.h"
#include "pm_mpi.h"
#include "pm_msg.h"

typedef enum {
    PM_MODE_SERIAL,          /* one rank, collectives are local */
    PM_MODE_THREADS_LAUNCHER,/* ConcurrentFutures handle: pm_run starts the rank threads */
    PM_MODE_THREAD_RANK,     /* one rank thread of a ConcurrentFutures run */
    PM_MODE_PROCESS_RANK,    /* a rank process (forked, pm-run, or by hand against pmd) */
} pm_mode_t;

struct pm_manager {
    pm_mode_t mode;
    const char *backend;       /* static name for pm_backend_name */
    int rank, size;
    pm_client_t *client;       /* connection to the coordinator (rank modes) */
    zactor_t *coordinator;     /* embedded coordinator owned by this manager, or NULL */
    char endpoint[512];        /* where ranks reach the coordinator */
    char group[PM_GROUP_MAX + 1];
    int64_t connect_timeout_ms;
    pid_t *children;           /* forked ranks (MultiProcessing parent only) */
    int *child_fds;            /* their pidfds (-1 if none) */
    int nchildren;
    bool run_owned;            /* a rank thread's manager: pm_run destroys it */
    bool has_launcher_exits;   /* RayIo against a pmd: the launcher's exit pipe (read end) */
    int launcher_exits_fd;     /*   until the heartbeat thread takes it over           */
    pm_schedule_t schedule;    /* of later pm_scatter calls */
    uint64_t sweep_seq;        /* dynamic sweeps started by this rank (every rank counts alike) */
    pm_progress_fn progress;   /* root: called as chunks finish */
    void *progress_arg;
    struct pm_sweep_local *sweep; /* this rank's results of the last pm_scatter */
    const pm_mpi_ops_t *mpi;   /* MPI backend: collectives go to native MPI */
    int last_code;
    char last_error[1024];
};

/* Load the MPI module and initialise MPI (pm_mpi_loader.c). */
int pm_mpi_attach (pm_manager_t *pm);
void pm_mpi_detach (pm_manager_t *pm);

/* Record a failure on pm (code + printf text) and return code. */
int pm_fail (pm_manager_t *pm, int code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/* Free pm->sweep (pm_sweep.c). */
void pm_sweep_free (pm_manager_t *pm);

/* Fork size-1 child ranks (see pm_launch.c).  In the parent returns 0 with
   *rank = 0 and the children recorded in pm; in a child returns 0 with its
   rank.  On failure no child is left running.                           */
int pm_launch_fork (pm_manager_t *pm, int *rank);
/* Wait for the forked children (parent), logging abnormal exits.  With
   grace_ms >= 0, children still running after that long are killed (the
   run failed; they would wait forever).                                 */
void pm_launch_reap (pm_manager_t *pm, int64_t grace_ms);

#endif
