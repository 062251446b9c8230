/*  pm_heartbeat.h — a rank process's liveness link with the coordinator.

    A thread with its own DEALER: it heartbeats every interval, and decides
    the coordinator is lost when it answers nothing for the timeout, answers
    that it no longer knows the session, or — on the same host — when the
    coordinator's process exits (pidfd).  It also passes a Ray launcher's
    word on failed ranks on to the coordinator.  The rank's main thread polls
    pm_heartbeat_fd() next to its data socket to learn of the loss at once. */
#ifndef PM_HEARTBEAT_H_INCLUDED
#define PM_HEARTBEAT_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "pm_proc.h"

typedef struct pm_heartbeat pm_heartbeat_t;

typedef struct {
    const char *endpoint;
    uint64_t session, token;
    int64_t interval_ms, timeout_ms;
    pm_proc_id_t coordinator; /* pid 0: unknown */
    /* RayIo against a pmd: the launcher's exit pipe, taken over; a rank that
       ends non-zero is reported to the coordinator (RANK_LOST of group).  */
    bool has_launcher_exits;
    int launcher_exits_fd;
    const char *group;
    int size;
} pm_heartbeat_config_t;

pm_heartbeat_t *pm_heartbeat_new (const pm_heartbeat_config_t *config);
void pm_heartbeat_destroy (pm_heartbeat_t **self_p);
/* Readable (an eventfd) once the coordinator is lost. */
int pm_heartbeat_fd (const pm_heartbeat_t *self);
/* Whether the coordinator is lost, and why. */
bool pm_heartbeat_lost (pm_heartbeat_t *self, char *why, size_t why_size);

#endif
