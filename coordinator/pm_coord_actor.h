/*  pm_coord_actor.h — the coordinator in a background thread (a CZMQ
    actor), for libpm's embedded default and for pm-run.                 */
#ifndef PM_COORD_ACTOR_H_INCLUDED
#define PM_COORD_ACTOR_H_INCLUDED

#include <czmq.h>

#include "pm_coord.h"

/* Starts the coordinator and binds config's endpoints.  On failure NULL
   with err set.  The first bound endpoint is copied to first_endpoint.   */
zactor_t *pm_coord_actor_new (const pm_coord_config_t *config, char *first_endpoint,
                              size_t endpoint_size, char *err, size_t err_size);
/* Ask the coordinator to watch a local process that is (or will be) a rank. */
void pm_coord_actor_watch (zactor_t *actor, const char *group, int size, int rank, int pid);
/* Hand the coordinator a launcher's exit pipe (the read end, taken over):
   "exit RANK STATUS" lines, a non-zero status making that rank lost.    */
void pm_coord_actor_exits (zactor_t *actor, const char *group, int size, int fd);
/* When (pm_clock_ms) a chunk of group's dynamic sweeps last came back
   done; -1 if none has.                                                 */
int64_t pm_coord_actor_progress (zactor_t *actor, const char *group);
/* Tell the coordinator a rank is gone (its launcher saw it exit). */
void pm_coord_actor_lost (zactor_t *actor, const char *group, int size, int rank,
                          const char *how);

#endif
