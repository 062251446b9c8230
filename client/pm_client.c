/*  pm_client.c — a rank's connection to the coordinator (see pm_client.h). */
#include "pm_client.h"

#include <czmq.h>
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "pm.h"
#include "pm_clock.h"
#include "pm_heartbeat.h"
#include "pm_log.h"
#include "pm_msg.h"
#include "pm_proc.h"
#include "pm_zsys.h"

struct pm_client {
    zsock_t *dealer;          /* data socket: HELLO, COLLECTIVE, BYE */
    void *handle;             /* its libzmq handle */
    pm_heartbeat_t *heartbeat; /* NULL for ranks inside the coordinator's process */
    uint64_t step;            /* sequence number of the next collective */
    int size;                 /* ranks in the group (entries of a counts frame) */
    int64_t max_frame;        /* the coordinator's frame limit (it drops larger ones) */
    bool lost;                /* the coordinator is gone for good */
    bool group_failed;        /* the group failed (a peer left or died) */
    char lost_why[256];
};

/* Receives one whole message: header decoded into msg, data frames into
   result.  Returns 0, or PM_EPROTO for a malformed one (dropped).      */
static int
s_recv (pm_client_t *self, pm_msg_t *msg, pm_coll_result_t *result)
{
    zmq_msg_t header;
    zmq_msg_init (&header);
    if (zmq_msg_recv (&header, self->handle, 0) < 0) {
        zmq_msg_close (&header);
        return PM_ESYS;
    }
    char why[160];
    int rc = pm_msg_decode (msg, zmq_msg_data (&header), zmq_msg_size (&header), why,
                            sizeof why);
    bool more = zmq_msg_more (&header);
    zmq_msg_close (&header);
    size_t cap = 0;
    result->frames = NULL;
    result->nframes = 0;
    while (more) {
        if (result->nframes == cap) {
            cap = cap ? cap * 2 : 4;
            zmq_msg_t *grown = realloc (result->frames, cap * sizeof *grown);
            if (!grown) {
                rc = PM_ENOMEM;
                cap = result->nframes;
                /* keep draining into a scratch frame */
                zmq_msg_t scratch;
                zmq_msg_init (&scratch);
                zmq_msg_recv (&scratch, self->handle, 0);
                more = zmq_msg_more (&scratch);
                zmq_msg_close (&scratch);
                continue;
            }
            result->frames = grown;
        }
        zmq_msg_t *frame = &result->frames[result->nframes];
        zmq_msg_init (frame);
        if (zmq_msg_recv (frame, self->handle, 0) < 0) {
            zmq_msg_close (frame);
            rc = PM_ESYS;
            break;
        }
        result->nframes++;
        more = zmq_msg_more (frame);
    }
    if (rc != 0) {
        pm_warn ("PM3101", "dropped a malformed message from the coordinator: %s",
                 rc == PM_EPROTO ? why : pm_strerror (rc));
        pm_coll_result_close (result);
    }
    return rc;
}

void
pm_coll_result_close (pm_coll_result_t *result)
{
    for (size_t i = 0; i < result->nframes; i++)
        zmq_msg_close (&result->frames[i]);
    free (result->frames);
    result->frames = NULL;
    result->nframes = 0;
}

/* Waits for a message, or for the heartbeat thread to declare the
   coordinator lost, or until deadline_ms (-1: none).  1 if a message is
   waiting, 0 on timeout, PM_EPEERLOST if the coordinator is lost.        */
static int
s_wait (pm_client_t *self, int64_t deadline_ms)
{
    zmq_pollitem_t items[2] = {{self->handle, 0, ZMQ_POLLIN, 0}, {NULL, -1, ZMQ_POLLIN, 0}};
    int nitems = 1;
    if (self->heartbeat) {
        items[1].fd = pm_heartbeat_fd (self->heartbeat);
        nitems = 2;
    }
    while (true) {
        if (self->heartbeat && pm_heartbeat_lost (self->heartbeat, self->lost_why,
                                                  sizeof self->lost_why)) {
            self->lost = true;
            return PM_EPEERLOST;
        }
        long timeout = -1;
        if (deadline_ms >= 0) {
            int64_t left = deadline_ms - pm_clock_ms ();
            if (left <= 0)
                return 0;
            timeout = (long) left;
        }
        int rc = zmq_poll (items, nitems, timeout);
        if (rc < 0 && errno != EINTR)
            return PM_ESYS;
        if (rc > 0 && (items[0].revents & ZMQ_POLLIN))
            return 1;
    }
}

pm_client_t *
pm_client_new (const pm_client_config_t *config, int *code, char *err, size_t err_size)
{
    pm_zsys_ready ();
    pm_client_t *self = calloc (1, sizeof *self);
    if (!self) {
        *code = PM_ENOMEM;
        snprintf (err, err_size, "out of memory");
        return NULL;
    }
    self->step = 1;
    self->size = config->size;
    self->dealer = zsock_new (ZMQ_DEALER);
    if (!self->dealer) {
        *code = PM_ESYS;
        snprintf (err, err_size, "cannot create a ZeroMQ socket: %s", zmq_strerror (errno));
        free (self);
        return NULL;
    }
    self->handle = zsock_resolve (self->dealer);
    int linger = 1000; /* let BYE reach the coordinator when we close */
    int hwm = 0;
    zmq_setsockopt (self->handle, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (self->handle, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (self->handle, ZMQ_RCVHWM, &hwm, sizeof hwm);
    /* A routing id of our own survives a reconnect (the ROUTER hands the
       session over to the new connection); ids starting with 0 are libzmq's. */
    uint8_t routing_id[16];
    if (getrandom (routing_id, sizeof routing_id, 0) != (ssize_t) sizeof routing_id)
        for (size_t i = 0; i < sizeof routing_id; i++)
            routing_id[i] = (uint8_t) (pm_clock_us () >> (i % 8));
    routing_id[0] = 'r';
    zmq_setsockopt (self->handle, ZMQ_ROUTING_ID, routing_id, sizeof routing_id);
    int reconnect_ms = 10; /* ranks often start before their coordinator binds */
    zmq_setsockopt (self->handle, ZMQ_RECONNECT_IVL, &reconnect_ms, sizeof reconnect_ms);
    if (zmq_connect (self->handle, config->endpoint) != 0) {
        *code = PM_ECONNECT;
        snprintf (err, err_size, "cannot connect to %s: %s", config->endpoint,
                  zmq_strerror (errno));
        pm_client_destroy (&self);
        return NULL;
    }
    pm_proc_id_t me;
    pm_proc_self (&me);
    char host[PM_HOST_MAX + 1] = "";
    gethostname (host, sizeof host - 1);
    pm_msg_t hello;
    pm_msg_init (&hello, PM_MSG_HELLO, 0);
    pm_msg_set_str (&hello, PM_KEY_GROUP, config->group);
    pm_msg_set (&hello, PM_KEY_RANK, config->rank);
    pm_msg_set (&hello, PM_KEY_SIZE, config->size);
    pm_msg_set (&hello, PM_KEY_PID, me.pid);
    pm_msg_set (&hello, PM_KEY_STARTTIME, (int64_t) me.starttime);
    pm_msg_set_str (&hello, PM_KEY_BOOT_ID, me.boot_id);
    pm_msg_set_str (&hello, PM_KEY_HOST, host);
    if (config->in_coordinator_process)
        pm_msg_set (&hello, PM_KEY_FLAGS, PM_HELLO_NO_HEARTBEAT);
    if (pm_msg_send (self->handle, NULL, 0, &hello, NULL, 0, 0) != 0) {
        *code = PM_ECONNECT;
        snprintf (err, err_size, "cannot send HELLO to %s", config->endpoint);
        pm_client_destroy (&self);
        return NULL;
    }
    int64_t timeout = config->connect_timeout_ms > 0 ? config->connect_timeout_ms : 30000;
    int ready = s_wait (self, pm_clock_ms () + timeout);
    if (ready <= 0) {
        *code = PM_ETIMEDOUT;
        snprintf (err, err_size, "no coordinator answered at %s within %lld ms",
                  config->endpoint, (long long) timeout);
        pm_client_destroy (&self);
        return NULL;
    }
    pm_msg_t welcome;
    pm_coll_result_t extra;
    int rc = s_recv (self, &welcome, &extra);
    pm_coll_result_close (&extra);
    if (rc != 0 || welcome.type != PM_MSG_WELCOME) {
        *code = rc != 0 ? rc
                        : (welcome.type == PM_MSG_ERROR
                               ? (int) pm_msg_get (&welcome, PM_KEY_CODE, PM_EREJECTED)
                               : PM_EPROTO);
        snprintf (err, err_size, "coordinator at %s refused rank %d of group '%s': %s",
                  config->endpoint, config->rank, config->group,
                  rc == 0 && welcome.text[0] ? welcome.text : pm_strerror (*code));
        pm_client_destroy (&self);
        return NULL;
    }
    self->max_frame = pm_msg_get (&welcome, PM_KEY_MAX_FRAME, INT64_MAX);
    if (!config->in_coordinator_process) {
        pm_heartbeat_config_t hb = {
            .endpoint = config->endpoint,
            .session = (uint64_t) pm_msg_get (&welcome, PM_KEY_SESSION, 0),
            .token = (uint64_t) pm_msg_get (&welcome, PM_KEY_TOKEN, 0),
            .interval_ms = pm_msg_get (&welcome, PM_KEY_HB_IVL, 1000),
            .timeout_ms = pm_msg_get (&welcome, PM_KEY_HB_TIMEOUT, 3000),
            .has_launcher_exits = config->has_launcher_exits,
            .launcher_exits_fd = config->launcher_exits_fd,
            .group = config->group,
            .size = config->size,
        };
        hb.coordinator.pid = pm_msg_get (&welcome, PM_KEY_PID, 0);
        hb.coordinator.starttime = (uint64_t) pm_msg_get (&welcome, PM_KEY_STARTTIME, 0);
        snprintf (hb.coordinator.boot_id, sizeof hb.coordinator.boot_id, "%s",
                  welcome.boot_id);
        self->heartbeat = pm_heartbeat_new (&hb);
        if (!self->heartbeat) {
            *code = PM_ESYS;
            snprintf (err, err_size, "cannot start the heartbeat thread");
            pm_client_destroy (&self);
            return NULL;
        }
    }
    pm_debug ("PM3102", "rank %d/%d of group '%s' registered at %s", config->rank,
              config->size, config->group, config->endpoint);
    return self;
}

void
pm_client_destroy (pm_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_client_t *self = *self_p;
    pm_heartbeat_destroy (&self->heartbeat);
    if (self->handle && !self->lost) {
        pm_msg_t bye;
        pm_msg_init (&bye, PM_MSG_BYE, self->step);
        pm_msg_send (self->handle, NULL, 0, &bye, NULL, 0, ZMQ_DONTWAIT);
    }
    if (self->lost) {
        int linger = 0; /* nobody to deliver to */
        zmq_setsockopt (self->handle, ZMQ_LINGER, &linger, sizeof linger);
    }
    zsock_destroy (&self->dealer);
    free (self);
    *self_p = NULL;
}

int
pm_client_collective (pm_client_t *self, const pm_coll_args_t *args, pm_coll_result_t *result,
                      char *err, size_t err_size)
{
    result->frames = NULL;
    result->nframes = 0;
    if (self->lost || self->group_failed) {
        snprintf (err, err_size, "%s", self->lost_why);
        return PM_EPEERLOST;
    }
    uint64_t step = self->step++;
    pm_msg_t msg;
    pm_msg_init (&msg, PM_MSG_COLLECTIVE, step);
    pm_msg_set (&msg, PM_KEY_KIND, args->kind);
    pm_msg_set (&msg, PM_KEY_DTYPE, args->dtype);
    pm_msg_set (&msg, PM_KEY_OP, args->op);
    pm_msg_set (&msg, PM_KEY_ROOT, args->root);
    pm_msg_set (&msg, PM_KEY_COUNT, args->count);
    zmq_msg_t frames[2];
    size_t nframes = 0;
    char too_big[160];
    size_t counts_bytes = args->counts ? (size_t) self->size * 8 : 0;
    size_t largest = args->has_data && args->data_size > counts_bytes ? args->data_size
                                                                      : counts_bytes;
    if (args->error == 0 && (int64_t) largest > self->max_frame) {
        /* libzmq would drop the connection, and the round would never end:
           tell every rank instead.                                        */
        snprintf (too_big, sizeof too_big,
                  "a frame of %zu bytes exceeds the coordinator's frame limit of %lld bytes",
                  largest, (long long) self->max_frame);
        pm_msg_set (&msg, PM_KEY_CODE, PM_EINVAL);
        pm_msg_set_str (&msg, PM_KEY_TEXT, too_big);
    } else if (args->error < 0) {
        pm_msg_set (&msg, PM_KEY_CODE, args->error);
        pm_msg_set_str (&msg, PM_KEY_TEXT, args->error_text ? args->error_text : "");
    } else {
        /* Copied: libzmq may still hold a frame after we return. */
        if (args->has_data) {
            if (zmq_msg_init_size (&frames[nframes], args->data_size) != 0) {
                snprintf (err, err_size, "out of memory for %zu bytes", args->data_size);
                return PM_ENOMEM;
            }
            if (args->data_size)
                memcpy (zmq_msg_data (&frames[nframes]), args->data, args->data_size);
            nframes++;
        }
        if (args->counts) {
            size_t n = (size_t) self->size;
            if (zmq_msg_init_size (&frames[nframes], n * 8) != 0) {
                for (size_t i = 0; i < nframes; i++)
                    zmq_msg_close (&frames[i]);
                snprintf (err, err_size, "out of memory");
                return PM_ENOMEM;
            }
            uint64_t *wire = zmq_msg_data (&frames[nframes]);
            for (size_t r = 0; r < n; r++) {
                uint64_t value = htole64 ((uint64_t) args->counts[r]);
                memcpy (&wire[r], &value, 8);
            }
            nframes++;
        }
    }
    int rc = pm_msg_send (self->handle, NULL, 0, &msg, frames, nframes, 0);
    if (rc != 0) {
        snprintf (err, err_size, "cannot send to the coordinator: %s", zmq_strerror (-rc));
        return PM_ESYS;
    }
    while (true) {
        int ready = s_wait (self, -1);
        if (ready == PM_EPEERLOST) {
            snprintf (err, err_size, "%s", self->lost_why);
            return PM_EPEERLOST;
        }
        if (ready < 0) {
            snprintf (err, err_size, "waiting for the coordinator failed");
            return ready;
        }
        pm_msg_t reply;
        if (s_recv (self, &reply, result) != 0)
            continue;
        if ((reply.type == PM_MSG_RESULT && reply.seq == step) || reply.type == PM_MSG_ERROR) {
            int code = (int) pm_msg_get (&reply, PM_KEY_CODE, PM_EPROTO);
            if (code == 0)
                return 0;
            pm_coll_result_close (result);
            snprintf (err, err_size, "%s", reply.text[0] ? reply.text : pm_strerror (code));
            if (code == PM_EPEERLOST) {
                /* The group is over: later collectives fail at once. */
                self->group_failed = true;
                snprintf (self->lost_why, sizeof self->lost_why, "%s", err);
            }
            return code;
        }
        pm_debug ("PM3103", "ignored %s for step %llu while waiting for step %llu",
                  pm_msg_type_name (reply.type), (unsigned long long) reply.seq,
                  (unsigned long long) step);
        pm_coll_result_close (result);
    }
}

bool
pm_client_failed (const pm_client_t *self)
{
    return self->lost || self->group_failed;
}

int
pm_client_send (pm_client_t *self, const pm_msg_t *msg, zmq_msg_t *frames, size_t nframes,
                char *err, size_t err_size)
{
    if (self->lost) {
        for (size_t i = 0; i < nframes; i++)
            zmq_msg_close (&frames[i]);
        snprintf (err, err_size, "%s", self->lost_why);
        return PM_EPEERLOST;
    }
    int rc = pm_msg_send (self->handle, NULL, 0, msg, frames, nframes, 0);
    if (rc != 0) {
        snprintf (err, err_size, "cannot send to the coordinator: %s", zmq_strerror (-rc));
        return PM_ESYS;
    }
    return 0;
}

int
pm_client_receive (pm_client_t *self, pm_msg_t *msg, pm_coll_result_t *frames, char *err,
                   size_t err_size)
{
    frames->frames = NULL;
    frames->nframes = 0;
    while (true) {
        int ready = s_wait (self, -1);
        if (ready == PM_EPEERLOST) {
            snprintf (err, err_size, "%s", self->lost_why);
            return PM_EPEERLOST;
        }
        if (ready < 0) {
            snprintf (err, err_size, "waiting for the coordinator failed");
            return ready;
        }
        if (s_recv (self, msg, frames) == 0)
            return 0;
    }
}

int64_t
pm_client_max_frame (const pm_client_t *self)
{
    return self->max_frame;
}
