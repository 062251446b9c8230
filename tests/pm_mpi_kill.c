/*  pm_mpi_kill.c — an MPI job in which rank 1 is killed with SIGKILL after
    a first barrier (run by tests/mpi-launch.sh kill).  Every rank prints
    "joined" once the barrier is done, so the driver knows the job runs.  */
#include <signal.h>
#include <stdio.h>

#include "pm.h"

int
main (void)
{
    pm_manager_t *pm = pm_create_parallel_manager ("MPI", 2, NULL);
    if (!pm) {
        fprintf (stderr, "pm-mpi-kill: %s\n", pm_last_error (NULL));
        return 2;
    }
    int rc = pm_sync_with_peers (pm);
    printf ("rank %d joined (%d)\n", pm_get_rank (pm), rc);
    fflush (stdout);
    if (pm_get_rank (pm) == 1)
        raise (SIGKILL);
    rc = pm_sync_with_peers (pm); /* never completes: mpirun ends the job */
    printf ("rank %d: second barrier returned %d (%s)\n", pm_get_rank (pm), rc, pm_strerror (rc));
    pm_destroy (&pm);
    return rc == 0 ? 0 : 1;
}
