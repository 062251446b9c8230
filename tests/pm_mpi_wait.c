/*  pm_mpi_wait.c — an MPI job that stays registered with pmd until the file
    named by $PM_TEST_RELEASE exists (at most 60 s), so that a test can look
    at pmd's status meanwhile (tests/mpi-launch.sh status).              */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "pm.h"

int
main (void)
{
    pm_manager_t *pm = pm_create_parallel_manager ("MPI", 2, NULL);
    if (!pm) {
        fprintf (stderr, "pm-mpi-wait: %s\n", pm_last_error (NULL));
        return 2;
    }
    int rc = pm_sync_with_peers (pm);
    const char *release = getenv ("PM_TEST_RELEASE");
    struct timespec tick = {0, 20 * 1000 * 1000};
    for (int i = 0; release && i < 3000 && access (release, F_OK) != 0; i++)
        nanosleep (&tick, NULL); /* polling a condition, with a deadline */
    if (rc == 0)
        rc = pm_sync_with_peers (pm);
    pm_destroy (&pm);
    return rc == 0 ? 0 : 1;
}
