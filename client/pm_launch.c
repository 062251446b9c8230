/*  pm_launch.c — MultiProcessing: fork the ranks of this host.
    Runs before any ZeroMQ context exists in the process: a context never
    crosses fork().                                                        */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pm_clock.h"
#include "pm_log.h"
#include "pm_manager_internal.h"

int
pm_launch_fork (pm_manager_t *pm, int *rank)
{
    pm->children = calloc ((size_t) pm->size, sizeof *pm->children);
    pm->child_fds = calloc ((size_t) pm->size, sizeof *pm->child_fds);
    if (!pm->children || !pm->child_fds)
        return pm_fail (pm, PM_ENOMEM, "out of memory");
    /* Buffered output would otherwise be written once per rank. */
    fflush (NULL);
    for (int r = 1; r < pm->size; r++) {
        pid_t pid = fork ();
        if (pid < 0) {
            int saved = errno;
            for (int k = 0; k < pm->nchildren; k++)
                kill (pm->children[k], SIGKILL);
            pm_launch_reap (pm, -1);
            return pm_fail (pm, PM_ESYS, "cannot fork rank %d: %s", r, strerror (saved));
        }
        if (pid == 0) {
            for (int k = 0; k < pm->nchildren; k++)
                if (pm->child_fds[k] >= 0)
                    close (pm->child_fds[k]);
            free (pm->children);
            free (pm->child_fds);
            pm->children = NULL;
            pm->child_fds = NULL;
            pm->nchildren = 0;
            *rank = r;
            return 0;
        }
        pm->child_fds[pm->nchildren] = (int) syscall (SYS_pidfd_open, pid, 0);
        pm->children[pm->nchildren++] = pid;
    }
    *rank = 0;
    return 0;
}

/* Waits until every child has exited or deadline_ms passes (-1: none). */
static void
s_wait_children (pm_manager_t *pm, int64_t deadline_ms)
{
    while (true) {
        struct pollfd fds[pm->nchildren > 0 ? pm->nchildren : 1];
        int n = 0;
        for (int k = 0; k < pm->nchildren; k++) {
            if (pm->child_fds[k] < 0)
                continue;
            siginfo_t info = {0};
            if (waitid (P_PID, (id_t) pm->children[k], &info, WEXITED | WNOHANG | WNOWAIT) == 0
                && info.si_pid == 0) {
                fds[n].fd = pm->child_fds[k];
                fds[n].events = POLLIN;
                n++;
            }
        }
        if (n == 0)
            return;
        int timeout = -1;
        if (deadline_ms >= 0) {
            int64_t left = deadline_ms - pm_clock_ms ();
            if (left <= 0)
                return;
            timeout = (int) left;
        }
        if (poll (fds, (nfds_t) n, timeout) == 0)
            return;
    }
}

/* How long RayIo's launcher gets to stop its ranks after SIGTERM: more
   than pm-ray-job's wait for a stopped job (20 s).                      */
#define RAY_STOP_GRACE_MS 30000

/* What child k is, for the log: a rank, or RayIo's launcher of all of them. */
static void
s_child_name (const pm_manager_t *pm, int k, char *name, size_t size)
{
    if (strcmp (pm->backend, "RayIo") == 0)
        snprintf (name, size, "the Ray launcher");
    else
        snprintf (name, size, "rank %d", k + 1);
}

void
pm_launch_reap (pm_manager_t *pm, int64_t grace_ms)
{
    char name[32];
    bool ray = strcmp (pm->backend, "RayIo") == 0;
    if (grace_ms >= 0 && pm->child_fds) {
        s_wait_children (pm, pm_clock_ms () + grace_ms);
        for (int k = 0; k < pm->nchildren; k++) {
            siginfo_t info = {0};
            if (waitid (P_PID, (id_t) pm->children[k], &info, WEXITED | WNOHANG | WNOWAIT) == 0
                && info.si_pid == 0) {
                s_child_name (pm, k, name, sizeof name);
                pm_warn ("PM3303", "%s (pid %d) still runs after the run failed: killing it",
                         name, (int) pm->children[k]);
                /* RayIo's launcher (or pm-ray-job) stops its ranks on SIGTERM;
                   a SIGKILLed pm-ray-job would leave its Ray job running. */
                kill (pm->children[k], ray ? SIGTERM : SIGKILL);
            }
        }
        if (ray) {
            s_wait_children (pm, pm_clock_ms () + RAY_STOP_GRACE_MS);
            for (int k = 0; k < pm->nchildren; k++)
                kill (pm->children[k], SIGKILL); /* a no-op on an unreaped zombie */
        }
    }
    for (int k = 0; k < pm->nchildren; k++) {
        int status = 0;
        pid_t pid;
        do
            pid = waitpid (pm->children[k], &status, 0);
        while (pid < 0 && errno == EINTR);
        if (pm->child_fds && pm->child_fds[k] >= 0)
            close (pm->child_fds[k]);
        if (pid < 0)
            continue;
        s_child_name (pm, k, name, sizeof name);
        if (WIFSIGNALED (status))
            pm_warn ("PM3301", "%s (pid %d) was killed by signal %d", name, (int) pid,
                     WTERMSIG (status));
        else if (WIFEXITED (status) && WEXITSTATUS (status) != 0)
            pm_warn ("PM3302", "%s (pid %d) exited with status %d", name, (int) pid,
                     WEXITSTATUS (status));
    }
    free (pm->children);
    free (pm->child_fds);
    pm->children = NULL;
    pm->child_fds = NULL;
    pm->nchildren = 0;
}
