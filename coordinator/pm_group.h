/*  pm_group.h — a group of ranks and its collective rounds.

    A round is one collective at one step (the group's sequence number).
    Contributions are checked against the first one (kind, dtype, op, root,
    count), combined as they arrive (reductions fold in rank order so float
    results do not depend on arrival order), and when the last rank has
    contributed, every member gets its RESULT.  A failed group answers every
    pending and later contribution with its failure.                        */
#ifndef PM_GROUP_H_INCLUDED
#define PM_GROUP_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#include "pm_msg.h"
#include "pm_session.h"

pm_group_t *pm_group_new (const char *name, int size, int64_t now_ms);
void pm_group_destroy (pm_group_t **self_p);

const char *pm_group_name (const pm_group_t *self);
int pm_group_size (const pm_group_t *self);
int pm_group_live (const pm_group_t *self);      /* members now joined */
bool pm_group_complete_once (const pm_group_t *self); /* every rank joined at some point */
bool pm_group_failed (const pm_group_t *self);
/* Why it failed ("" if it has not). */
const char *pm_group_fail_text (const pm_group_t *self);
int64_t pm_group_created_ms (const pm_group_t *self);
int64_t pm_group_emptied_ms (const pm_group_t *self);   /* when live fell to 0 */
bool pm_group_rank_ever_joined (const pm_group_t *self, int rank);
pm_session_t *pm_group_member (const pm_group_t *self, int rank);
/* The group's sweep scheduler, created on first use (NULL if out of memory). */
struct pm_sched *pm_group_sched (pm_group_t *self);
/* pm_sched_last_done of the group's scheduler; -1 if it has none. */
int64_t pm_group_sweep_progress (const pm_group_t *self);

/* Admit session as its rank; false if the rank is taken by a live member. */
bool pm_group_join (pm_group_t *self, pm_session_t *session);
/* The member leaves (BYE: died false; death, heartbeat loss: true).  If the group had not
   failed yet it fails now with PM_EPEERLOST and text.                   */
void pm_group_leave (pm_group_t *self, void *router, pm_session_t *session, const char *text,
                     bool died, int64_t now_ms);
/* Fail the group: every rank waiting in a round gets code + text now, any
   later contribution gets them at once.  Ignored if already failed.     */
void pm_group_fail (pm_group_t *self, void *router, int code, const char *text);
/* A rank that has not joined yet is known to be dead (its pid exited). */
void pm_group_rank_died (pm_group_t *self, void *router, int rank, const char *text);

/* A COLLECTIVE from a member.  The data frames are taken over (moved into
   the round or closed) whatever happens.                                */
void pm_group_contribute (pm_group_t *self, void *router, pm_session_t *session,
                          const pm_msg_t *msg, zmq_msg_t *frames, size_t nframes);

#endif
