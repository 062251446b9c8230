/*  pm_heartbeat.c — heartbeat thread of a rank process (see pm_heartbeat.h). */
#include "pm_heartbeat.h"

#include <czmq.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pm.h"
#include "pm_clock.h"
#include "pm_exit_lines.h"
#include "pm_env.h"
#include "pm_log.h"
#include "pm_msg.h"

struct pm_heartbeat {
    pm_heartbeat_config_t config;
    char endpoint[512];       /* owned copy of config.endpoint */
    char group[PM_GROUP_MAX + 1]; /* owned copy of config.group */
    pm_exit_lines_t exit_lines; /* what was read of the launcher's exit pipe */
    pthread_t thread;
    int lost_fd;              /* eventfd written once when the coordinator is lost */
    int stop_fd;              /* eventfd the owner writes to stop the thread */
    atomic_bool lost;
    pthread_mutex_t lock;     /* guards why */
    char why[256];
};

static void
s_declare_lost (pm_heartbeat_t *self, const char *why)
{
    if (atomic_load (&self->lost))
        return;
    pthread_mutex_lock (&self->lock);
    snprintf (self->why, sizeof self->why, "%s", why);
    pthread_mutex_unlock (&self->lock);
    atomic_store (&self->lost, true);
    uint64_t one = 1;
    if (write (self->lost_fd, &one, sizeof one) < 0)
        pm_debug ("PM3201", "eventfd write failed");
    pm_warn ("PM3202", "coordinator at %s lost: %s", self->endpoint, why);
    /* Ranks hosted for someone else (Ray actors) must not outlive their run. */
    if (pm_env_str ("PM_EXIT_ON_LOST")) {
        pm_warn ("PM3204", "PM_EXIT_ON_LOST is set: exiting");
        _exit (70);
    }
}

/* The launcher's word that a rank ended (its exit pipe): a non-zero status
   is reported to the coordinator (RANK_LOST), so a rank that never
   registered fails the group at once.                                   */
typedef struct {
    pm_heartbeat_t *self;
    void *dealer;
} s_exit_ctx_t;

static void
s_launcher_exit (void *arg, int rank, int status)
{
    s_exit_ctx_t *ctx = arg;
    if (status == 0)
        return;
    pm_msg_t lost;
    pm_msg_init (&lost, PM_MSG_RANK_LOST, 0);
    pm_msg_set_str (&lost, PM_KEY_GROUP, ctx->self->group);
    pm_msg_set (&lost, PM_KEY_SIZE, ctx->self->config.size);
    pm_msg_set (&lost, PM_KEY_RANK, rank);
    char how[64];
    snprintf (how, sizeof how, "exited with status %d (its launcher says)", status);
    pm_msg_set_str (&lost, PM_KEY_TEXT, how);
    pm_msg_send (ctx->dealer, NULL, 0, &lost, NULL, 0, ZMQ_DONTWAIT);
}

static void *
s_thread (void *arg)
{
    pm_heartbeat_t *self = arg;
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer) {
        s_declare_lost (self, "cannot create the heartbeat socket");
        return NULL;
    }
    void *handle = zsock_resolve (dealer);
    if (zmq_connect (handle, self->endpoint) != 0) {
        s_declare_lost (self, "cannot connect the heartbeat socket");
        zsock_destroy (&dealer);
        return NULL;
    }
    int coord_fd = pm_proc_watch (&self->config.coordinator);
    /* -1 entries are skipped by poll: a missing pidfd or exit pipe is fine. */
    zmq_pollitem_t items[4] = {
        {handle, 0, ZMQ_POLLIN, 0},
        {NULL, self->stop_fd, ZMQ_POLLIN, 0},
        {NULL, coord_fd, ZMQ_POLLIN, 0},
        {NULL, self->config.has_launcher_exits ? self->config.launcher_exits_fd : -1, ZMQ_POLLIN,
         0},
    };
    int nitems = 4;
    int64_t last_heard = pm_clock_ms ();
    int64_t next_beat = 0;
    uint64_t seq = 0;
    while (!atomic_load (&self->lost)) {
        int64_t now = pm_clock_ms ();
        if (now >= next_beat) {
            pm_msg_t beat;
            pm_msg_init (&beat, PM_MSG_HEARTBEAT, ++seq);
            pm_msg_set (&beat, PM_KEY_SESSION, (int64_t) self->config.session);
            pm_msg_set (&beat, PM_KEY_TOKEN, (int64_t) self->config.token);
            pm_msg_send (handle, NULL, 0, &beat, NULL, 0, ZMQ_DONTWAIT);
            next_beat = now + self->config.interval_ms;
        }
        if (now - last_heard > self->config.timeout_ms) {
            char why[128];
            snprintf (why, sizeof why, "no answer to heartbeats for %lld ms",
                      (long long) self->config.timeout_ms);
            s_declare_lost (self, why);
            break;
        }
        long timeout = (long) (next_beat - now);
        if (zmq_poll (items, nitems, timeout < 0 ? 0 : timeout) < 0)
            continue;
        if (items[1].revents & ZMQ_POLLIN)
            break; /* stop requested */
        if (coord_fd >= 0 && (items[2].revents & ZMQ_POLLIN)) {
            s_declare_lost (self, "the coordinator's process exited");
            break;
        }
        s_exit_ctx_t exit_ctx = {self, handle};
        if (items[3].fd >= 0 && (items[3].revents & (ZMQ_POLLIN | ZMQ_POLLERR))
            && pm_exit_lines_read (&self->exit_lines, items[3].fd, self->config.size,
                                   s_launcher_exit, &exit_ctx, NULL)
                   < 0)
            items[3].fd = -1; /* the launcher is gone */
        if (items[0].revents & ZMQ_POLLIN) {
            zmsg_t *reply = zmsg_recv (dealer);
            if (!reply)
                continue;
            zframe_t *header = zmsg_first (reply);
            pm_msg_t msg;
            char why[160];
            if (header
                && pm_msg_decode (&msg, zframe_data (header), zframe_size (header), why,
                                  sizeof why)
                       == 0) {
                if (msg.type == PM_MSG_HEARTBEAT)
                    last_heard = pm_clock_ms ();
                else if (msg.type == PM_MSG_ERROR)
                    s_declare_lost (self, msg.text);
            }
            zmsg_destroy (&reply);
        }
    }
    if (coord_fd >= 0)
        close (coord_fd);
    zsock_destroy (&dealer);
    return NULL;
}

pm_heartbeat_t *
pm_heartbeat_new (const pm_heartbeat_config_t *config)
{
    pm_heartbeat_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    snprintf (self->endpoint, sizeof self->endpoint, "%s", config->endpoint);
    self->config.endpoint = self->endpoint;
    snprintf (self->group, sizeof self->group, "%s", config->group ? config->group : "");
    self->config.group = self->group;
    self->lost_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
    self->stop_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_mutex_init (&self->lock, NULL);
    if (self->lost_fd < 0 || self->stop_fd < 0
        || pthread_create (&self->thread, NULL, s_thread, self) != 0) {
        if (self->lost_fd >= 0)
            close (self->lost_fd);
        if (self->stop_fd >= 0)
            close (self->stop_fd);
        pthread_mutex_destroy (&self->lock);
        free (self);
        return NULL;
    }
    return self;
}

void
pm_heartbeat_destroy (pm_heartbeat_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_heartbeat_t *self = *self_p;
    uint64_t one = 1;
    if (write (self->stop_fd, &one, sizeof one) < 0)
        pm_debug ("PM3203", "eventfd write failed");
    pthread_join (self->thread, NULL);
    if (self->config.has_launcher_exits)
        close (self->config.launcher_exits_fd);
    close (self->lost_fd);
    close (self->stop_fd);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

int
pm_heartbeat_fd (const pm_heartbeat_t *self)
{
    return self->lost_fd;
}

bool
pm_heartbeat_lost (pm_heartbeat_t *self, char *why, size_t why_size)
{
    if (!atomic_load (&self->lost))
        return false;
    pthread_mutex_lock (&self->lock);
    snprintf (why, why_size, "%s", self->why);
    pthread_mutex_unlock (&self->lock);
    return true;
}
