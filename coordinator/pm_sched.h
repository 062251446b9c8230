/*  pm_sched.h — the dynamic sweep scheduler of one group.

    Root opens a sweep with all its rows; every rank pulls chunks (a rank
    keeps two requests in flight, so the next chunk is there when it
    finishes one), evaluates them and sends the outputs back, which the
    scheduler keeps.  Chunk sizes follow guided self-scheduling (a share of
    what is left) capped so that a chunk takes about CHUNK_TARGET_MS at the
    measured speed.  When a rank leaves or dies, its unfinished chunks go
    back to the queue: every row is done exactly once.  Root's gather is
    answered when the last row is in, with every row in sample order.  */
#ifndef PM_SCHED_H_INCLUDED
#define PM_SCHED_H_INCLUDED

#include <stdint.h>
#include <zmq.h>

#include "pm_msg.h"
#include "pm_session.h"

typedef struct pm_sched pm_sched_t;

pm_sched_t *pm_sched_new (int size);
void pm_sched_destroy (pm_sched_t **self_p);

/* Messages of the sweep family (SWEEP_OPEN, TASK_REQUEST, TASK_DONE,
   SWEEP_GATHER) from a member.  Frames are taken over.                   */
void pm_sched_handle (pm_sched_t *self, void *router, pm_session_t *session, const pm_msg_t *msg,
                      zmq_msg_t *frames, size_t nframes);
/* When (pm_clock_ms) a chunk of this group's sweeps last came back done;
   -1 if none has: a launcher's sign that the survivors of a lost rank
   still make progress.                                                 */
int64_t pm_sched_last_done (const pm_sched_t *self);
/* A rank that left before the scheduler existed (no messages sent). */
void pm_sched_mark_left (pm_sched_t *self, int rank);
/* A member left or died: requeue its chunks; note it if it had work. */
void pm_sched_member_left (pm_sched_t *self, void *router, int rank, bool died);

#endif
