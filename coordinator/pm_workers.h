/*  pm_workers.h — pm-worker daemons and the ranks pm-run places on them.

    A pm-worker registers its slots (WORKER_HELLO) and heartbeats.  pm-run
    --connect asks for N ranks (LAUNCH_REQUEST); they are spread round-robin
    over the workers' free slots and each worker is told to start its ranks
    (LAUNCH).  Workers stream the ranks' output (OUTPUT) and exit statuses
    (RANK_EXIT) back, which are forwarded to the pm-run that asked.  A rank
    that exits abnormally, or whose worker is lost, is reported to the
    coordinator as lost so that its group fails instead of hanging.      */
#ifndef PM_WORKERS_H_INCLUDED
#define PM_WORKERS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#include "pm_msg.h"
#include "pm_json.h"
#include "pm_proc.h"

typedef struct pm_workers pm_workers_t;

/* Called when a placed rank is gone: group, size, rank, how ("exited with status 3"). */
typedef void (*pm_workers_lost_fn) (void *arg, const char *group, int size, int rank,
                                    const char *how);

typedef struct {
    void *router;                 /* the coordinator's ROUTER */
    int64_t heartbeat_ivl_ms, heartbeat_timeout_ms, max_frame;
    const pm_proc_id_t *coordinator; /* for WELCOME */
    pm_workers_lost_fn lost;
    void *lost_arg;
    uint64_t (*next_id) (void *arg); /* session ids shared with ranks */
    void *next_id_arg;
} pm_workers_config_t;

pm_workers_t *pm_workers_new (const pm_workers_config_t *config);
void pm_workers_destroy (pm_workers_t **self_p);

/* Handles a message of the worker/launch family, or a HEARTBEAT/BYE from a
   worker.  Returns false if the message is not one of ours (then the
   caller handles it).  Frames are taken over only when true is returned. */
bool pm_workers_handle (pm_workers_t *self, const uint8_t *route, size_t route_size,
                        const char *route_key, const pm_msg_t *msg, zmq_msg_t *frames,
                        size_t nframes);
/* Heartbeat silence of workers, at most every cron tick. */
void pm_workers_cron (pm_workers_t *self, int64_t now_ms);
size_t pm_workers_count (const pm_workers_t *self);
/* Appends a JSON array of the workers to json. */
void pm_workers_json (pm_workers_t *self, pm_json_t *json);

#endif
