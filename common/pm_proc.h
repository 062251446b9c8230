/*  pm_proc.h — who a process is (pid + start time + boot id) and watching
    a local process die through a pidfd.  A rank and the coordinator swap
    identities at registration; when both run on one host each watches the
    other, so a local death is seen in microseconds, not a heartbeat timeout. */
#ifndef PM_PROC_H_INCLUDED
#define PM_PROC_H_INCLUDED
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct {
    int64_t pid;        /* process id in the sender's pid namespace */
    uint64_t starttime; /* field 22 of /proc/PID/stat: tells pid reuse apart */
    char boot_id[40];   /* /proc/sys/kernel/random/boot_id: tells hosts apart */
} pm_proc_id_t;

/* Identity of the calling process. */
void pm_proc_self (pm_proc_id_t *id);
/* A pidfd for the process named by id if it is a live process on this host
   (same boot id, pid with the same start time), else -1.                  */
int pm_proc_watch (const pm_proc_id_t *id);
/* Start time of pid, 0 if unknown. */
uint64_t pm_proc_starttime (pid_t pid);

#endif
