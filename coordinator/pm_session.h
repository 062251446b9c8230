/*  pm_session.h — one registered rank, as the coordinator sees it.
    Shared by pm_coord.c (which owns sessions) and pm_group.c (which sends
    round results to them).                                               */
#ifndef PM_SESSION_H_INCLUDED
#define PM_SESSION_H_INCLUDED

#include <stdint.h>
#include <zmq.h>

#include "pm_msg.h"
#include "pm_proc.h"

typedef struct pm_group pm_group_t;

typedef struct pm_session {
    uint64_t id;                /* coordinator-wide, never reused */
    uint64_t token;             /* secret that heartbeats must carry */
    uint8_t route[256];         /* ZeroMQ routing id of the rank's DEALER */
    size_t route_size;
    char route_key[513];        /* route as hex, the key of the session table */
    pm_group_t *group;          /* the group it joined (never NULL) */
    int rank;                   /* its rank in that group */
    pm_proc_id_t proc;          /* the rank process (pid 0 if not sent) */
    char host[PM_HOST_MAX + 1]; /* host name it reported */
    int pidfd;                  /* pidfd of the rank process, -1 if remote */
    int64_t last_seen_ms;       /* last message or heartbeat from it */
    bool heartbeat_required;    /* false for ranks inside the coordinator's process */
} pm_session_t;

/* Send a message to a session on the coordinator's ROUTER socket.  Frames
   are consumed.  A send failure (peer gone, queue full) is logged and
   counted; liveness checks deal with the peer.                            */
void pm_session_send (void *router, pm_session_t *session, const pm_msg_t *msg,
                      zmq_msg_t *frames, size_t nframes);

#endif
