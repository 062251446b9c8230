/*  pm_coord.h — the coordinator: the state machine behind pmd, also
    embedded by libpm (pm_coord_actor.h) when no endpoint is configured.

    One ROUTER socket, one single-threaded loop: registration (HELLO /
    WELCOME), heartbeats, groups and their collective rounds, status.
    Local ranks are watched through pidfds, remote ones by heartbeats.    */
#ifndef PM_COORD_H_INCLUDED
#define PM_COORD_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define PM_COORD_BIND_MAX 8

typedef struct {
    const char *bind[PM_COORD_BIND_MAX]; /* endpoints to bind (e.g. tcp://host:5555, ipc://path) */
    size_t nbind;
    int64_t heartbeat_ivl_ms;     /* how often ranks heartbeat (default 1000) */
    int64_t heartbeat_timeout_ms; /* silence after which a rank is dead (default 3000) */
    int64_t join_timeout_ms;      /* an incomplete group fails after this (default 60000) */
    int64_t max_frame;            /* largest frame accepted, bytes (default 1 GiB) */
    int64_t max_groups;           /* groups at once (default 10000) */
    int64_t max_ranks;            /* ranks over all groups at once (default 1000000) */
} pm_coord_config_t;

typedef struct pm_coord pm_coord_t;

/* Defaults, then PM_HEARTBEAT_IVL_MS / PM_HEARTBEAT_TIMEOUT_MS /
   PM_JOIN_TIMEOUT_MS from the environment.  -1 with err set if one of
   those is malformed.                                                   */
int pm_coord_config_defaults (pm_coord_config_t *config, char *err, size_t err_size);

/* Creates the ROUTER and binds every endpoint; NULL with err set on failure. */
pm_coord_t *pm_coord_new (const pm_coord_config_t *config, char *err, size_t err_size);
void pm_coord_destroy (pm_coord_t **self_p);

/* Endpoints as bound (wildcard ports resolved). */
size_t pm_coord_endpoint_count (const pm_coord_t *self);
const char *pm_coord_endpoint (const pm_coord_t *self, size_t index);

/* Watch a local process that will be (or is) rank `rank` of `group`; if
   it exits before leaving cleanly the group fails with PM_EPEERLOST.     */
int pm_coord_watch_pid (pm_coord_t *self, const char *group, int size, int rank, int pid);
/* Reads a launcher's exit pipe fd (non-blocking; taken over): lines
   "exit RANK STATUS", one per rank that ended; a non-zero status makes
   the rank lost, as pm_coord_rank_lost does.  0 or a PM_E* code.        */
int pm_coord_watch_exits (pm_coord_t *self, const char *group, int size, int fd);
/* When (pm_clock_ms) a chunk of the group's dynamic sweeps last came back
   done; -1 if none has or there is no such group.                       */
int64_t pm_coord_sweep_progress (const pm_coord_t *self, const char *group);
/* Declare a rank dead (e.g. its launcher saw it exit); how completes
   "rank R of group G ...", e.g. "was killed by signal 9".              */
void pm_coord_rank_lost (pm_coord_t *self, const char *group, int size, int rank,
                         const char *how);

/* Called when the extra poll item is readable; return false to stop. */
typedef bool (*pm_coord_extra_fn) (pm_coord_t *self, void *arg);

/* Runs the loop until extra_fn returns false.  extra may be NULL.       */
int pm_coord_run (pm_coord_t *self, zmq_pollitem_t *extra, pm_coord_extra_fn extra_fn,
                  void *arg);

typedef struct {
    uint64_t groups, sessions, messages, dropped;
} pm_coord_stats_t;
void pm_coord_stats (const pm_coord_t *self, pm_coord_stats_t *stats);

#endif
