/*  pm_launch.c — MultiProcessing: fork the ranks of this host.
    Runs before any ZeroMQ context exists in the process: a context never
    crosses fork().                                                        */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pm_log.h"
#include "pm_manager_internal.h"

int
pm_launch_fork (pm_manager_t *pm, int *rank)
{
    pm->children = calloc ((size_t) pm->size, sizeof *pm->children);
    if (!pm->children)
        return pm_fail (pm, PM_ENOMEM, "out of memory");
    /* Buffered output would otherwise be written once per rank. */
    fflush (NULL);
    for (int r = 1; r < pm->size; r++) {
        pid_t pid = fork ();
        if (pid < 0) {
            int saved = errno;
            for (int k = 0; k < pm->nchildren; k++)
                kill (pm->children[k], SIGKILL);
            pm_launch_reap (pm);
            return pm_fail (pm, PM_ESYS, "cannot fork rank %d: %s", r, strerror (saved));
        }
        if (pid == 0) {
            free (pm->children);
            pm->children = NULL;
            pm->nchildren = 0;
            *rank = r;
            return 0;
        }
        pm->children[pm->nchildren++] = pid;
    }
    *rank = 0;
    return 0;
}

void
pm_launch_reap (pm_manager_t *pm)
{
    for (int k = 0; k < pm->nchildren; k++) {
        int status = 0;
        pid_t pid;
        do
            pid = waitpid (pm->children[k], &status, 0);
        while (pid < 0 && errno == EINTR);
        if (pid < 0)
            continue;
        if (WIFSIGNALED (status))
            pm_warn ("PM3301", "rank %d (pid %d) was killed by signal %d", k + 1,
                     (int) pid, WTERMSIG (status));
        else if (WIFEXITED (status) && WEXITSTATUS (status) != 0)
            pm_warn ("PM3302", "rank %d (pid %d) exited with status %d", k + 1, (int) pid,
                     WEXITSTATUS (status));
    }
    free (pm->children);
    pm->children = NULL;
    pm->nchildren = 0;
}
