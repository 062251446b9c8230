/*  pm_client.h — one rank's connection to the coordinator: registration,
    collective contributions and their results, leaving.  Owned by the
    rank's thread; not shared between threads.                           */
#ifndef PM_CLIENT_H_INCLUDED
#define PM_CLIENT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "pm_msg.h"

typedef struct pm_client pm_client_t;

typedef struct {
    const char *endpoint;
    const char *group;
    int rank, size;
    bool in_coordinator_process; /* no heartbeats: the coordinator shares our fate */
    int64_t connect_timeout_ms;
    /* A launcher's exit pipe ("exit RANK STATUS" lines) whose failed ranks the
       heartbeat thread reports to the coordinator (RANK_LOST); it takes the
       fd over once pm_client_new succeeds.                                */
    bool has_launcher_exits;
    int launcher_exits_fd;
} pm_client_config_t;

/* One collective contribution. */
typedef struct {
    int kind, dtype, op, root;
    int64_t count;
    const void *data;      /* sent as one frame if has_data */
    size_t data_size;
    bool has_data;
    const size_t *counts;  /* sent as a counts frame (size entries) if non-NULL */
    int error;             /* < 0: this rank's arguments are bad (error_text says why) */
    const char *error_text;
} pm_coll_args_t;

/* What came back: the data frames of the RESULT. */
typedef struct {
    zmq_msg_t *frames;
    size_t nframes;
} pm_coll_result_t;

/* Connects, registers and waits for WELCOME.  NULL with err set (and *code
   the PM_E* code) on failure.                                            */
pm_client_t *pm_client_new (const pm_client_config_t *config, int *code, char *err,
                            size_t err_size);
/* Says BYE and closes. */
void pm_client_destroy (pm_client_t **self_p);

/* Sends the contribution and waits for the round's result.  0 with result
   filled (free it with pm_coll_result_close), or a PM_E* code with err. */
int pm_client_collective (pm_client_t *self, const pm_coll_args_t *args,
                          pm_coll_result_t *result, char *err, size_t err_size);
void pm_coll_result_close (pm_coll_result_t *result);
/* Send any message (frames consumed).  0 or a PM_E* code with err. */
int pm_client_send (pm_client_t *self, const pm_msg_t *msg, zmq_msg_t *frames, size_t nframes,
                    char *err, size_t err_size);
/* Wait for the next message from the coordinator (any type).  0, or
   PM_EPEERLOST when the coordinator is lost.                           */
int pm_client_receive (pm_client_t *self, pm_msg_t *msg, pm_coll_result_t *frames, char *err,
                       size_t err_size);

/* The coordinator's frame limit (from WELCOME): larger frames are refused. */
int64_t pm_client_max_frame (const pm_client_t *self);

/* Whether the coordinator or the group was lost (a run that failed). */
bool pm_client_failed (const pm_client_t *self);

#endif
