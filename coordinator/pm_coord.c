/*  pm_coord.c — the coordinator loop: sessions, groups, liveness.
    Round logic lives in pm_group.c; this file routes messages to it.     */
#include "pm_coord.h"

#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pm.h"
#include "pm_clock.h"
#include "pm_exit_lines.h"
#include "pm_env.h"
#include "pm_group.h"
#include "pm_json.h"
#include "pm_log.h"
#include "pm_msg.h"
#include "pm_proc.h"
#include "pm_zsys.h"
#include "pm_sched.h"
#include "pm_session.h"
#include "pm_workers.h"

#define RECV_BATCH 256        /* messages handled per wake-up before polling again */
#define CRON_MS 100           /* liveness and timeout checks, at most this often */
/* A process that exits right after its BYE may be seen dead before the BYE
   is read from its socket: its death is confirmed this much later.       */
#define EXIT_GRACE_MS 20
#define FRAMES_MAX (2 + PM_DATA_FRAMES_MAX) /* route + header + data */

/* A pidfd being watched: a joined session's process, or a process that a
   launcher announced before it registered.  Or a launcher's exit pipe,
   which says "exit RANK STATUS" when one of its ranks ends.              */
typedef struct pm_watch {
    int fd;
    char group[PM_GROUP_MAX + 1];
    int size, rank, pid;
    struct pm_watch *prev, *next; /* in the orphan list while no session owns it */
    bool orphan;
    bool exit_pipe;               /* the fd is a launcher's exit pipe */
    pm_exit_lines_t lines;        /* exit pipe: what was read of it */
} pm_watch_t;

struct pm_coord {
    pm_coord_config_t config;
    zsock_t *router;       /* the one socket every rank talks to */
    void *router_handle;   /* its libzmq handle, for the hot path */
    char *endpoints[PM_COORD_BIND_MAX];
    size_t nendpoints;
    zhashx_t *sessions_by_route; /* route hex → pm_session_t */
    zhashx_t *sessions_by_id;    /* decimal id → pm_session_t (same objects) */
    zhashx_t *groups;            /* name → pm_group_t */
    zhashx_t *ended;             /* name → int64_t ms when a group was removed, for one
                                    join timeout: a late LOST report does not revive it */
    pm_watch_t *orphans;         /* watches with no session yet */
    int epoll_fd;                /* every pidfd, so one poll item covers them all */
    pm_watch_t **watch_by_fd;    /* live watches by pidfd: an event whose watch went
                                    away earlier in the same batch finds NULL here */
    size_t watch_table_size;
    pm_proc_id_t self_proc;
    uint64_t next_session_id;
    int64_t next_cron_ms;
    pm_coord_stats_t stats;
    zlistx_t *exiting;           /* s_exit_t: sessions whose process exited */
    size_t ranks_in_groups;      /* sum of the sizes of the groups (for max_ranks) */
    pm_workers_t *workers;       /* pm-worker daemons and remote launches */
    uint64_t dropped_unlogged;   /* malformed frames since the last log line */
    int64_t dropped_logged_ms;
};

static int64_t
s_now (void)
{
    return pm_clock_ms ();
}

int
pm_coord_config_defaults (pm_coord_config_t *config, char *err, size_t err_size)
{
    memset (config, 0, sizeof *config);
    config->max_frame = (int64_t) 1 << 30;
    config->max_groups = 10000;
    config->max_ranks = 1000000;
    if (pm_env_int64 ("PM_HEARTBEAT_TIMEOUT_MS", 20, 36000000, 3000,
                      &config->heartbeat_timeout_ms, err, err_size)
            < 0
        || pm_env_int64 ("PM_JOIN_TIMEOUT_MS", 100, 86400000, 60000, &config->join_timeout_ms,
                         err, err_size)
               < 0)
        return -1;
    /* Three heartbeats per timeout unless told otherwise. */
    int64_t ivl_default = config->heartbeat_timeout_ms / 3 < 1000 ? config->heartbeat_timeout_ms / 3
                                                                  : 1000;
    if (pm_env_int64 ("PM_HEARTBEAT_IVL_MS", 5, 3600000, ivl_default, &config->heartbeat_ivl_ms,
                      err, err_size)
        < 0)
        return -1;
    if (config->heartbeat_ivl_ms >= config->heartbeat_timeout_ms) {
        snprintf (err, err_size,
                  "PM_HEARTBEAT_IVL_MS (%lld) must be below PM_HEARTBEAT_TIMEOUT_MS (%lld)",
                  (long long) config->heartbeat_ivl_ms, (long long) config->heartbeat_timeout_ms);
        return -1;
    }
    return 0;
}

void
pm_session_send (void *router, pm_session_t *session, const pm_msg_t *msg, zmq_msg_t *frames,
                 size_t nframes)
{
    int rc = pm_msg_send (router, session->route, session->route_size, msg, frames, nframes,
                          ZMQ_DONTWAIT);
    if (rc < 0)
        pm_warn ("PM2001", "cannot send %s to rank %d (pid %lld on %s): %s",
                 pm_msg_type_name (msg->type), session->rank, (long long) session->proc.pid,
                 session->host[0] ? session->host : "?", zmq_strerror (-rc));
}

static void
s_reply (pm_coord_t *self, const void *route, size_t route_size, pm_msg_t *msg)
{
    pm_msg_send (self->router_handle, route, route_size, msg, NULL, 0, ZMQ_DONTWAIT);
}

static void
s_reply_error (pm_coord_t *self, const void *route, size_t route_size, uint64_t seq, int code,
               const char *text)
{
    pm_msg_t msg;
    pm_msg_init (&msg, PM_MSG_ERROR, seq);
    pm_msg_set (&msg, PM_KEY_CODE, code);
    pm_msg_set_str (&msg, PM_KEY_TEXT, text);
    s_reply (self, route, route_size, &msg);
}

static void
s_route_key (const void *route, size_t size, char *key)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *bytes = route;
    for (size_t i = 0; i < size; i++) {
        key[2 * i] = hex[bytes[i] >> 4];
        key[2 * i + 1] = hex[bytes[i] & 15];
    }
    key[2 * size] = '\0';
}

/* ---- pidfd watches ------------------------------------------------------ */

static pm_watch_t *
s_watch_new (pm_coord_t *self, int fd, const char *group, int size, int rank, int pid)
{
    pm_watch_t *watch = calloc (1, sizeof *watch);
    if (!watch) {
        close (fd);
        return NULL;
    }
    watch->fd = fd;
    snprintf (watch->group, sizeof watch->group, "%s", group);
    watch->size = size;
    watch->rank = rank;
    watch->pid = pid;
    if ((size_t) fd >= self->watch_table_size) {
        size_t grown = (size_t) fd * 2 + 16;
        pm_watch_t **table = realloc (self->watch_by_fd, grown * sizeof *table);
        if (!table) {
            close (fd);
            free (watch);
            return NULL;
        }
        memset (table + self->watch_table_size, 0,
                (grown - self->watch_table_size) * sizeof *table);
        self->watch_by_fd = table;
        self->watch_table_size = grown;
    }
    struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl (self->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
        pm_warn ("PM2002", "cannot watch pid %d: %s", pid, strerror (errno));
        close (fd);
        free (watch);
        return NULL;
    }
    self->watch_by_fd[fd] = watch;
    return watch;
}

/* Takes a watch off the orphan list (a session adopts it, or it goes). */
static void
s_orphan_remove (pm_coord_t *self, pm_watch_t *watch)
{
    if (!watch->orphan)
        return;
    if (watch->prev)
        watch->prev->next = watch->next;
    else
        self->orphans = watch->next;
    if (watch->next)
        watch->next->prev = watch->prev;
    watch->orphan = false;
}

static void
s_watch_destroy (pm_coord_t *self, pm_watch_t **watch_p)
{
    pm_watch_t *watch = *watch_p;
    if (!watch)
        return;
    s_orphan_remove (self, watch);
    epoll_ctl (self->epoll_fd, EPOLL_CTL_DEL, watch->fd, NULL);
    self->watch_by_fd[watch->fd] = NULL;
    close (watch->fd);
    free (watch);
    *watch_p = NULL;
}

static void
s_orphan_add (pm_coord_t *self, pm_watch_t *watch)
{
    watch->orphan = true;
    watch->prev = NULL;
    watch->next = self->orphans;
    if (self->orphans)
        self->orphans->prev = watch;
    self->orphans = watch;
}

/* A session's watch, kept beside the session in the same allocation. */
typedef struct {
    pm_session_t session;
    pm_watch_t *watch;
} s_session_box_t;

static pm_watch_t **
s_session_watch (pm_session_t *session)
{
    return &((s_session_box_t *) session)->watch;
}

/* ---- groups -------------------------------------------------------------- */

static void
s_group_forget (pm_coord_t *self, pm_group_t *group)
{
    /* Orphan watches of this group die with it. */
    for (pm_watch_t *watch = self->orphans, *next; watch; watch = next) {
        next = watch->next;
        if (strcmp (watch->group, pm_group_name (group)) == 0)
            s_watch_destroy (self, &watch);
    }
    pm_debug ("PM2003", "group '%s' removed", pm_group_name (group));
    int64_t *ended_ms = zhashx_size (self->ended) < (size_t) self->config.max_groups
                            ? malloc (sizeof *ended_ms)
                            : NULL; /* bounded; past that, a late report revives a group */
    if (ended_ms) {
        *ended_ms = s_now ();
        zhashx_update (self->ended, pm_group_name (group), ended_ms);
    }
    self->ranks_in_groups -= (size_t) pm_group_size (group);
    zhashx_delete (self->groups, pm_group_name (group));
    pm_group_destroy (&group);
}

/* A group with nobody left is removed at once after a run in which every
   rank joined; otherwise it is kept (failed) until the join timeout, so a
   rank that arrives late still learns what happened.                    */
static void
s_free_item (void **item)
{
    free (*item);
    *item = NULL;
}

static void
s_group_maybe_forget (pm_coord_t *self, pm_group_t *group)
{
    if (pm_group_live (group) == 0 && pm_group_complete_once (group))
        s_group_forget (self, group);
}

static pm_group_t *
s_group_get (pm_coord_t *self, const char *name, int size, char *err, size_t err_size)
{
    pm_group_t *group = zhashx_lookup (self->groups, name);
    if (group && pm_group_size (group) != size) {
        snprintf (err, err_size, "group '%s' has %d ranks, this rank says %d", name,
                  pm_group_size (group), size);
        return NULL;
    }
    if (!group) {
        /* Bounded: a flood of HELLOs for new groups cannot exhaust memory. */
        size_t ranks_after = self->ranks_in_groups + (size_t) size;
        if (zhashx_size (self->groups) >= (size_t) self->config.max_groups
            || ranks_after > (size_t) self->config.max_ranks) {
            snprintf (err, err_size,
                      "the coordinator is full: %zu groups (limit %lld), %zu ranks in groups "
                      "(limit %lld)",
                      zhashx_size (self->groups), (long long) self->config.max_groups,
                      self->ranks_in_groups, (long long) self->config.max_ranks);
            return NULL;
        }
        group = pm_group_new (name, size, s_now ());
        if (!group) {
            snprintf (err, err_size, "coordinator out of memory");
            return NULL;
        }
        zhashx_insert (self->groups, name, group);
        zhashx_delete (self->ended, name); /* a new run of that name */
        self->ranks_in_groups += (size_t) size;
        pm_info ("PM2004", "group '%s' created with %d ranks", name, size);
    }
    return group;
}

/* ---- sessions ------------------------------------------------------------ */

static void
s_session_remove (pm_coord_t *self, pm_session_t *session, const char *why, bool died)
{
    pm_group_t *group = session->group;
    char id[24];
    snprintf (id, sizeof id, "%llu", (unsigned long long) session->id);
    zhashx_delete (self->sessions_by_id, id);
    zhashx_delete (self->sessions_by_route, session->route_key);
    s_watch_destroy (self, s_session_watch (session));
    pm_group_leave (group, self->router_handle, session, why, died, s_now ());
    free ((s_session_box_t *) session);
    s_group_maybe_forget (self, group);
}

static void
s_session_dead (pm_coord_t *self, pm_session_t *session, const char *how)
{
    char text[PM_TEXT_MAX];
    snprintf (text, sizeof text, "rank %d of group '%s' (pid %lld on %s) %s", session->rank,
              pm_group_name (session->group), (long long) session->proc.pid,
              session->host[0] ? session->host : "?", how);
    pm_warn ("PM2005", "%s", text);
    s_session_remove (self, session, text, true);
}

static void
s_handle_hello (pm_coord_t *self, const uint8_t *route, size_t route_size, const char *key,
                const pm_msg_t *msg)
{
    char err[PM_TEXT_MAX];
    if (zhashx_lookup (self->sessions_by_route, key)) {
        s_reply_error (self, route, route_size, msg->seq, PM_EPROTO,
                       "this connection already registered a rank");
        return;
    }
    int64_t size = pm_msg_get (msg, PM_KEY_SIZE, 0);
    int64_t rank = pm_msg_get (msg, PM_KEY_RANK, -1);
    if (!msg->group[0] || size < 1 || size > 1000000 || rank < 0 || rank >= size) {
        s_reply_error (self, route, route_size, msg->seq, PM_EINVAL,
                       "HELLO needs a group name, a size in [1, 1000000] and a rank in [0, size)");
        return;
    }
    pm_group_t *group = zhashx_lookup (self->groups, msg->group);
    if (group && pm_group_live (group) == 0 && pm_group_failed (group)
        && pm_group_rank_ever_joined (group, (int) rank)) {
        /* A rank already seen in an ended run: this is a new run of that name. */
        s_group_forget (self, group);
    }
    group = s_group_get (self, msg->group, (int) size, err, sizeof err);
    if (!group) {
        s_reply_error (self, route, route_size, msg->seq, PM_EREJECTED, err);
        return;
    }
    pm_session_t *taken = pm_group_member (group, (int) rank);
    if (taken) {
        snprintf (err, sizeof err, "rank %lld of group '%s' is already taken by pid %lld on %s",
                  (long long) rank, msg->group, (long long) taken->proc.pid, taken->host);
        s_reply_error (self, route, route_size, msg->seq, PM_EREJECTED, err);
        return;
    }
    s_session_box_t *box = calloc (1, sizeof *box);
    if (!box) {
        s_reply_error (self, route, route_size, msg->seq, PM_ENOMEM, "coordinator out of memory");
        return;
    }
    pm_session_t *session = &box->session;
    session->id = ++self->next_session_id;
    if (getrandom (&session->token, sizeof session->token, 0) != sizeof session->token)
        session->token = (uint64_t) pm_clock_us () * 2654435761u;
    memcpy (session->route, route, route_size);
    session->route_size = route_size;
    snprintf (session->route_key, sizeof session->route_key, "%s", key);
    session->rank = (int) rank;
    session->proc.pid = pm_msg_get (msg, PM_KEY_PID, 0);
    session->proc.starttime = (uint64_t) pm_msg_get (msg, PM_KEY_STARTTIME, 0);
    snprintf (session->proc.boot_id, sizeof session->proc.boot_id, "%s", msg->boot_id);
    snprintf (session->host, sizeof session->host, "%s", msg->host);
    session->last_seen_ms = s_now ();
    session->heartbeat_required = !(pm_msg_get (msg, PM_KEY_FLAGS, 0) & PM_HELLO_NO_HEARTBEAT);
    pm_group_join (group, session);
    char id[24];
    snprintf (id, sizeof id, "%llu", (unsigned long long) session->id);
    zhashx_insert (self->sessions_by_route, key, session);
    zhashx_insert (self->sessions_by_id, id, session);

    /* Adopt a launcher's watch of this process, or watch it ourselves. */
    for (pm_watch_t *watch = self->orphans; watch; watch = watch->next) {
        if (watch->rank == rank && watch->pid == session->proc.pid
            && strcmp (watch->group, msg->group) == 0) {
            s_orphan_remove (self, watch);
            box->watch = watch;
            break;
        }
    }
    if (!box->watch && session->proc.pid > 0 && session->proc.pid != self->self_proc.pid) {
        int fd = pm_proc_watch (&session->proc);
        if (fd >= 0)
            box->watch = s_watch_new (self, fd, msg->group, (int) size, (int) rank,
                                      (int) session->proc.pid);
    }
    pm_info ("PM2006", "rank %lld/%lld of group '%s' joined (pid %lld on %s%s)",
             (long long) rank, (long long) size, msg->group, (long long) session->proc.pid,
             session->host[0] ? session->host : "?", box->watch ? ", watched" : "");

    pm_msg_t welcome;
    pm_msg_init (&welcome, PM_MSG_WELCOME, msg->seq);
    pm_msg_set (&welcome, PM_KEY_SESSION, (int64_t) session->id);
    pm_msg_set (&welcome, PM_KEY_TOKEN, (int64_t) (session->token >> 1));
    session->token >>= 1; /* keep it in int64 range on the wire */
    pm_msg_set (&welcome, PM_KEY_HB_IVL, self->config.heartbeat_ivl_ms);
    pm_msg_set (&welcome, PM_KEY_HB_TIMEOUT, self->config.heartbeat_timeout_ms);
    pm_msg_set (&welcome, PM_KEY_MAX_FRAME, self->config.max_frame);
    pm_msg_set (&welcome, PM_KEY_PID, self->self_proc.pid);
    pm_msg_set (&welcome, PM_KEY_STARTTIME, (int64_t) self->self_proc.starttime);
    pm_msg_set_str (&welcome, PM_KEY_BOOT_ID, self->self_proc.boot_id);
    pm_session_send (self->router_handle, session, &welcome, NULL, 0);
}

static void
s_handle_heartbeat (pm_coord_t *self, const uint8_t *route, size_t route_size,
                    const pm_msg_t *msg)
{
    char id[24];
    snprintf (id, sizeof id, "%llu", (unsigned long long) pm_msg_get (msg, PM_KEY_SESSION, 0));
    pm_session_t *session = zhashx_lookup (self->sessions_by_id, id);
    if (!session || (uint64_t) pm_msg_get (msg, PM_KEY_TOKEN, 0) != session->token) {
        s_reply_error (self, route, route_size, msg->seq, PM_EPEERLOST,
                       "unknown session (the coordinator restarted or declared it dead)");
        return;
    }
    session->last_seen_ms = s_now ();
    pm_msg_t reply;
    pm_msg_init (&reply, PM_MSG_HEARTBEAT, msg->seq);
    s_reply (self, route, route_size, &reply);
}

static void
s_handle_status (pm_coord_t *self, const uint8_t *route, size_t route_size,
                 const pm_msg_t *msg)
{
    pm_msg_t reply;
    pm_msg_init (&reply, PM_MSG_STATUS_REPLY, msg->seq);
    pm_msg_set (&reply, PM_KEY_GROUPS, (int64_t) zhashx_size (self->groups));
    pm_msg_set (&reply, PM_KEY_SESSIONS, (int64_t) zhashx_size (self->sessions_by_id));
    pm_msg_set (&reply, PM_KEY_DROPPED, (int64_t) self->stats.dropped);
    /* Who answers: a peer can tell a restarted coordinator from the same one. */
    pm_msg_set (&reply, PM_KEY_PID, self->self_proc.pid);
    pm_msg_set (&reply, PM_KEY_STARTTIME, (int64_t) self->self_proc.starttime);
    if (pm_msg_has (msg, PM_KEY_GROUP)) {
        /* A launcher deciding whether a group's survivors still make progress. */
        int64_t last_done = pm_coord_sweep_progress (self, msg->group);
        pm_msg_set (&reply, PM_KEY_PROGRESS_MS, last_done >= 0 ? pm_clock_ms () - last_done : -1);
    }
    if (!(pm_msg_get (msg, PM_KEY_FLAGS, 0) & PM_STATUS_DETAIL)) {
        s_reply (self, route, route_size, &reply);
        return;
    }
    /* The detail, for pmctl: every group with its ranks, and the workers. */
    pm_json_t json = {0};
    pm_json_raw (&json, "{\"coordinator\":{\"pid\":%lld,\"endpoints\":[",
                 (long long) self->self_proc.pid);
    for (size_t i = 0; i < self->nendpoints; i++) {
        pm_json_raw (&json, i ? "," : "");
        pm_json_string (&json, self->endpoints[i]);
    }
    pm_json_raw (&json, "],\"messages\":%llu,\"dropped\":%llu},\"groups\":[",
                 (unsigned long long) self->stats.messages, (unsigned long long) self->stats.dropped);
    bool first = true;
    for (pm_group_t *group = zhashx_first (self->groups); group;
         group = zhashx_next (self->groups)) {
        pm_json_raw (&json, "%s{\"name\":", first ? "" : ",");
        first = false;
        pm_json_string (&json, pm_group_name (group));
        pm_json_raw (&json, ",\"size\":%d,\"live\":%d,\"failed\":%s,\"reason\":",
                     pm_group_size (group), pm_group_live (group),
                     pm_group_failed (group) ? "true" : "false");
        pm_json_string (&json, pm_group_fail_text (group));
        pm_json_raw (&json, ",\"ranks\":[");
        bool first_rank = true;
        for (int r = 0; r < pm_group_size (group); r++) {
            pm_session_t *member = pm_group_member (group, r);
            if (!member)
                continue;
            pm_json_raw (&json, "%s{\"rank\":%d,\"pid\":%lld,\"host\":", first_rank ? "" : ",",
                         r, (long long) member->proc.pid);
            pm_json_string (&json, member->host);
            pm_json_raw (&json, "}");
            first_rank = false;
        }
        pm_json_raw (&json, "]}");
    }
    pm_json_raw (&json, "],\"workers\":");
    pm_workers_json (self->workers, &json);
    pm_json_raw (&json, "}");
    zmq_msg_t detail;
    if (json.failed || zmq_msg_init_size (&detail, json.size) != 0) {
        pm_json_free (&json);
        s_reply (self, route, route_size, &reply);
        return;
    }
    memcpy (zmq_msg_data (&detail), json.data, json.size);
    pm_json_free (&json);
    pm_msg_send (self->router_handle, route, route_size, &reply, &detail, 1, ZMQ_DONTWAIT);
}

static void
s_dropped (pm_coord_t *self, const char *why, const char *key)
{
    self->stats.dropped++;
    self->dropped_unlogged++;
    int64_t now = s_now ();
    /* A flood of garbage must not become a flood of log lines: one a second. */
    if (now - self->dropped_logged_ms >= 1000) {
        pm_warn ("PM2007", "dropped %llu malformed message(s); last from peer %.16s: %s",
                 (unsigned long long) self->dropped_unlogged, key, why);
        self->dropped_unlogged = 0;
        self->dropped_logged_ms = now;
    }
}

static void
s_handle_message (pm_coord_t *self, zmq_msg_t *frames, size_t nframes)
{
    const uint8_t *route = zmq_msg_data (&frames[0]);
    size_t route_size = zmq_msg_size (&frames[0]);
    char key[513];
    if (route_size == 0 || route_size > 255) {
        s_dropped (self, "bad routing id", "?");
        return;
    }
    s_route_key (route, route_size, key);
    if (nframes < 2) {
        s_dropped (self, "no header frame", key);
        return;
    }
    pm_msg_t msg;
    char why[160];
    if (pm_msg_decode (&msg, zmq_msg_data (&frames[1]), zmq_msg_size (&frames[1]), why,
                       sizeof why)
        != 0) {
        s_dropped (self, why, key);
        if (strncmp (why, "unsupported protocol version", 28) == 0)
            s_reply_error (self, route, route_size, 0, PM_EPROTO, why);
        return;
    }
    self->stats.messages++;
    pm_trace ("PM2008", "%s seq %llu from %.16s", pm_msg_type_name (msg.type),
              (unsigned long long) msg.seq, key);
    pm_session_t *session = zhashx_lookup (self->sessions_by_route, key);
    if (session)
        session->last_seen_ms = s_now ();
    size_t ndata = nframes - 2;
    bool maybe_worker = msg.type >= PM_MSG_WORKER_HELLO || msg.type == PM_MSG_HEARTBEAT
                        || (msg.type == PM_MSG_BYE && !session);
    if (maybe_worker
        && pm_workers_handle (self->workers, route, route_size, key, &msg, &frames[2], ndata)) {
        for (size_t i = 2; i < nframes; i++)
            zmq_msg_init (&frames[i]); /* taken over */
        return;
    }
    switch (msg.type) {
    case PM_MSG_HELLO:
        if (ndata)
            s_dropped (self, "HELLO with data frames", key);
        else
            s_handle_hello (self, route, route_size, key, &msg);
        return;
    case PM_MSG_HEARTBEAT: s_handle_heartbeat (self, route, route_size, &msg); return;
    case PM_MSG_RANK_LOST: {
        int64_t size = pm_msg_get (&msg, PM_KEY_SIZE, 0), rank = pm_msg_get (&msg, PM_KEY_RANK, -1);
        if (ndata || !msg.group[0] || size < 1 || size > 1000000 || rank < 0 || rank >= size) {
            s_dropped (self, "RANK_LOST needs a group, a size and a rank in [0, size)", key);
            return;
        }
        pm_coord_rank_lost (self, msg.group, (int) size, (int) rank,
                            msg.text[0] ? msg.text : "was lost (its launcher says)");
        return;
    }
    case PM_MSG_STATUS: s_handle_status (self, route, route_size, &msg); return;
    case PM_MSG_COLLECTIVE:
        if (!session) {
            s_reply_error (self, route, route_size, msg.seq, PM_EPROTO,
                           "not registered: send HELLO first");
            return;
        }
        pm_group_contribute (session->group, self->router_handle, session, &msg, &frames[2],
                             ndata);
        /* The group took the data frames over; mark them empty for the caller. */
        for (size_t i = 2; i < nframes; i++)
            zmq_msg_init (&frames[i]);
        return;
    case PM_MSG_SWEEP_OPEN:
    case PM_MSG_TASK_REQUEST:
    case PM_MSG_TASK_DONE:
    case PM_MSG_SWEEP_GATHER: {
        if (!session) {
            s_reply_error (self, route, route_size, msg.seq, PM_EPROTO,
                           "not registered: send HELLO first");
            return;
        }
        pm_sched_t *sched = pm_group_sched (session->group);
        if (!sched) {
            s_reply_error (self, route, route_size, msg.seq, PM_ENOMEM,
                           "coordinator out of memory");
            return;
        }
        pm_sched_handle (sched, self->router_handle, session, &msg, &frames[2], ndata);
        for (size_t i = 2; i < nframes; i++)
            zmq_msg_init (&frames[i]);
        return;
    }
    case PM_MSG_BYE:
        if (session) {
            char text[PM_TEXT_MAX];
            snprintf (text, sizeof text, "rank %d of group '%s' left the group", session->rank,
                      pm_group_name (session->group));
            pm_info ("PM2009", "%s", text);
            s_session_remove (self, session, text, false);
        }
        return;
    default:
        s_dropped (self, "message type not accepted by the coordinator", key);
        return;
    }
}

/* Reads up to RECV_BATCH whole messages without blocking. */
static void
s_drain_router (pm_coord_t *self)
{
    for (int handled = 0; handled < RECV_BATCH; handled++) {
        zmq_msg_t frames[FRAMES_MAX];
        size_t nframes = 0;
        bool too_many = false;
        int more = 1;
        while (more) {
            zmq_msg_t *frame = &frames[nframes < FRAMES_MAX ? nframes : FRAMES_MAX - 1];
            if (nframes >= FRAMES_MAX) {
                too_many = true;
                zmq_msg_close (frame); /* overwrite the last slot, keep draining */
            }
            zmq_msg_init (frame);
            if (zmq_msg_recv (frame, self->router_handle, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close (frame);
                if (nframes == 0)
                    return; /* nothing more queued */
                break;      /* cannot happen mid-message; be safe */
            }
            if (nframes < FRAMES_MAX)
                nframes++;
            more = zmq_msg_more (frame);
        }
        if (too_many) {
            char key[513] = "?";
            if (zmq_msg_size (&frames[0]) <= 255)
                s_route_key (zmq_msg_data (&frames[0]), zmq_msg_size (&frames[0]), key);
            s_dropped (self, "too many frames", key);
        } else {
            s_handle_message (self, frames, nframes);
        }
        for (size_t i = 0; i < nframes; i++)
            zmq_msg_close (&frames[i]);
    }
}

/* A session whose process exited, waiting for EXIT_GRACE_MS. */
typedef struct {
    uint64_t session_id;
    int64_t deadline_ms;
} s_exit_t;

static void
s_confirm_exits (pm_coord_t *self, int64_t now)
{
    s_exit_t *exit = zlistx_first (self->exiting);
    while (exit && exit->deadline_ms <= now) {
        char id[24];
        snprintf (id, sizeof id, "%llu", (unsigned long long) exit->session_id);
        pm_session_t *session = zhashx_lookup (self->sessions_by_id, id);
        if (session)
            s_session_dead (self, session, "died");
        free (zlistx_detach_cur (self->exiting));
        exit = zlistx_first (self->exiting);
    }
}

/* A launcher's line "exit RANK STATUS": a rank that ended non-zero is lost,
   as pm-run reports its own; before it joined, that spares the others the
   join timeout.                                                          */
/* A launcher's word that a rank ended: non-zero, it is lost, as pm-run
   reports its own; before it joined, that spares the others the join
   timeout.                                                              */
typedef struct {
    pm_coord_t *self;
    const pm_watch_t *watch;
} s_exit_ctx_t;

static void
s_launcher_exit (void *arg, int rank, int status)
{
    s_exit_ctx_t *ctx = arg;
    if (status == 0)
        return;
    char how[64];
    snprintf (how, sizeof how, "exited with status %d (its launcher says)", status);
    pm_coord_rank_lost (ctx->self, ctx->watch->group, ctx->watch->size, rank, how);
}

static void
s_handle_exit_pipe (pm_coord_t *self, pm_watch_t *watch)
{
    s_exit_ctx_t ctx = {self, watch};
    int malformed = 0;
    int rc = pm_exit_lines_read (&watch->lines, watch->fd, watch->size, s_launcher_exit, &ctx,
                                 &malformed);
    if (malformed)
        pm_warn ("PM2011", "ignored a malformed line from the launcher of group '%s'",
                 watch->group);
    if (rc < 0) /* the launcher is gone (or closed it) */
        s_watch_destroy (self, &watch);
}

static void
s_handle_watch (pm_coord_t *self, pm_watch_t *watch)
{
    if (watch->exit_pipe) {
        s_handle_exit_pipe (self, watch);
        return;
    }
    pm_group_t *group = zhashx_lookup (self->groups, watch->group);
    pm_session_t *session = group ? pm_group_member (group, watch->rank) : NULL;
    if (session && session->proc.pid == watch->pid) {
        /* Fire once: drop this watch, and the session's if it is another. */
        if (watch != *s_session_watch (session))
            s_watch_destroy (self, &watch);
        s_watch_destroy (self, s_session_watch (session));
        s_exit_t *exit = calloc (1, sizeof *exit);
        if (!exit) {
            s_session_dead (self, session, "died");
            return;
        }
        exit->session_id = session->id;
        exit->deadline_ms = s_now () + EXIT_GRACE_MS;
        zlistx_add_end (self->exiting, exit);
        return;
    }
    int rank = watch->rank, size = watch->size, pid = watch->pid;
    char name[PM_GROUP_MAX + 1];
    snprintf (name, sizeof name, "%s", watch->group);
    bool orphan = watch->orphan;
    s_watch_destroy (self, &watch);
    if (!orphan)
        return;
    /* A process that a launcher announced died before registering. */
    char err[PM_TEXT_MAX];
    if (!group)
        group = s_group_get (self, name, size, err, sizeof err);
    if (group && !pm_group_rank_ever_joined (group, rank)) {
        char text[PM_TEXT_MAX];
        snprintf (text, sizeof text, "rank %d of group '%s' (pid %d) died before joining",
                  rank, name, pid);
        pm_group_rank_died (group, self->router_handle, rank, text);
        s_group_maybe_forget (self, group);
    }
}

static void
s_drain_watches (pm_coord_t *self)
{
    struct epoll_event events[64];
    int n = epoll_wait (self->epoll_fd, events, 64, 0);
    for (int i = 0; i < n; i++) {
        int fd = events[i].data.fd;
        /* Handling one event may destroy the watch of a later one. */
        pm_watch_t *watch = (size_t) fd < self->watch_table_size ? self->watch_by_fd[fd] : NULL;
        if (watch)
            s_handle_watch (self, watch);
    }
}

static void
s_cron (pm_coord_t *self)
{
    int64_t now = s_now ();
    if (self->dropped_unlogged && now - self->dropped_logged_ms >= 1000) {
        pm_warn ("PM2007", "dropped %llu more malformed message(s)",
                 (unsigned long long) self->dropped_unlogged);
        self->dropped_unlogged = 0;
        self->dropped_logged_ms = now;
    }
    /* Heartbeat silence: collect first, the table changes as sessions go. */
    zlistx_t *dead = zlistx_new ();
    for (pm_session_t *session = zhashx_first (self->sessions_by_id); session;
         session = zhashx_next (self->sessions_by_id))
        if (session->heartbeat_required
            && now - session->last_seen_ms > self->config.heartbeat_timeout_ms)
            zlistx_add_end (dead, session);
    char how[96];
    snprintf (how, sizeof how, "sent nothing for %lld ms (heartbeat timeout)",
              (long long) self->config.heartbeat_timeout_ms);
    for (pm_session_t *session = zlistx_first (dead); session; session = zlistx_next (dead))
        s_session_dead (self, session, how);
    zlistx_purge (dead);
    /* Groups: incomplete past the join timeout; empty failed groups expire. */
    for (pm_group_t *group = zhashx_first (self->groups); group;
         group = zhashx_next (self->groups))
        zlistx_add_end (dead, group);
    for (pm_group_t *group = zlistx_first (dead); group; group = zlistx_next (dead)) {
        if (!pm_group_complete_once (group) && !pm_group_failed (group)
            && now - pm_group_created_ms (group) > self->config.join_timeout_ms) {
            char text[PM_TEXT_MAX];
            snprintf (text, sizeof text,
                      "group '%s': not every one of its %d ranks joined within %lld ms",
                      pm_group_name (group), pm_group_size (group),
                      (long long) self->config.join_timeout_ms);
            pm_group_fail (group, self->router_handle, PM_ETIMEDOUT, text);
        }
        if (pm_group_live (group) == 0 && pm_group_failed (group)
            && now - pm_group_emptied_ms (group) > self->config.join_timeout_ms)
            s_group_forget (self, group);
    }
    zlistx_purge (dead);
    for (int64_t *ended_ms = zhashx_first (self->ended); ended_ms;
         ended_ms = zhashx_next (self->ended))
        if (now - *ended_ms > self->config.join_timeout_ms)
            zlistx_add_end (dead, (void *) zhashx_cursor (self->ended));
    for (const char *name = zlistx_first (dead); name; name = zlistx_next (dead))
        zhashx_delete (self->ended, name);
    zlistx_destroy (&dead);
    pm_workers_cron (self->workers, now);
    self->stats.groups = zhashx_size (self->groups);
    self->stats.sessions = zhashx_size (self->sessions_by_id);
}

static void
s_workers_lost (void *arg, const char *group, int size, int rank, const char *how)
{
    pm_coord_rank_lost (arg, group, size, rank, how);
}

static uint64_t
s_next_id (void *arg)
{
    pm_coord_t *self = arg;
    return ++self->next_session_id;
}

pm_coord_t *
pm_coord_new (const pm_coord_config_t *config, char *err, size_t err_size)
{
    pm_zsys_ready ();
    pm_coord_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, err_size, "out of memory");
        return NULL;
    }
    self->config = *config;
    self->epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
    self->sessions_by_route = zhashx_new ();
    self->sessions_by_id = zhashx_new ();
    self->groups = zhashx_new ();
    self->ended = zhashx_new ();
    if (self->ended)
        zhashx_set_destructor (self->ended, s_free_item);
    self->exiting = zlistx_new ();
    self->router = zsock_new (ZMQ_ROUTER);
    if (self->epoll_fd < 0 || !self->ended || !self->sessions_by_route || !self->sessions_by_id
        || !self->groups || !self->exiting || !self->router) {
        snprintf (err, err_size, "cannot create the coordinator: %s", strerror (errno));
        pm_coord_destroy (&self);
        return NULL;
    }
    pm_proc_self (&self->self_proc);
    self->router_handle = zsock_resolve (self->router);
    int on = 1;
    int64_t max_frame = config->max_frame;
    /* Bounded queues per peer: a rank has at most one round in flight, so
       only a peer that floods (or never reads) ever reaches these; libzmq
       then stops reading from it, and replies to it fail and are logged. */
    int hwm = 10000;
    zmq_setsockopt (self->router_handle, ZMQ_ROUTER_MANDATORY, &on, sizeof on);
    zmq_setsockopt (self->router_handle, ZMQ_ROUTER_HANDOVER, &on, sizeof on);
    zmq_setsockopt (self->router_handle, ZMQ_MAXMSGSIZE, &max_frame, sizeof max_frame);
    zmq_setsockopt (self->router_handle, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (self->router_handle, ZMQ_RCVHWM, &hwm, sizeof hwm);
    for (size_t i = 0; i < config->nbind; i++) {
        if (zmq_bind (self->router_handle, config->bind[i]) != 0) {
            snprintf (err, err_size, "cannot bind %s: %s", config->bind[i],
                      zmq_strerror (errno));
            pm_coord_destroy (&self);
            return NULL;
        }
        char resolved[512];
        size_t len = sizeof resolved;
        if (zmq_getsockopt (self->router_handle, ZMQ_LAST_ENDPOINT, resolved, &len) != 0)
            snprintf (resolved, sizeof resolved, "%s", config->bind[i]);
        self->endpoints[self->nendpoints++] = strdup (resolved);
    }
    pm_workers_config_t workers_config = {
        .router = self->router_handle,
        .heartbeat_ivl_ms = config->heartbeat_ivl_ms,
        .heartbeat_timeout_ms = config->heartbeat_timeout_ms,
        .max_frame = config->max_frame,
        .coordinator = &self->self_proc,
        .lost = s_workers_lost,
        .lost_arg = self,
        .next_id = s_next_id,
        .next_id_arg = self,
    };
    self->workers = pm_workers_new (&workers_config);
    if (!self->workers) {
        snprintf (err, err_size, "out of memory");
        pm_coord_destroy (&self);
        return NULL;
    }
    self->next_cron_ms = s_now () + CRON_MS;
    return self;
}

void
pm_coord_destroy (pm_coord_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_coord_t *self = *self_p;
    if (self->sessions_by_id) {
        zlistx_t *all = zlistx_new ();
        for (pm_session_t *s = zhashx_first (self->sessions_by_id); s;
             s = zhashx_next (self->sessions_by_id))
            zlistx_add_end (all, s);
        for (pm_session_t *s = zlistx_first (all); s; s = zlistx_next (all)) {
            s_watch_destroy (self, s_session_watch (s));
            free ((s_session_box_t *) s);
        }
        zlistx_destroy (&all);
    }
    pm_workers_destroy (&self->workers);
    while (self->orphans) {
        pm_watch_t *watch = self->orphans;
        s_watch_destroy (self, &watch);
    }
    /* What no session or orphan list holds: launchers' exit pipes. */
    for (size_t fd = 0; fd < self->watch_table_size; fd++)
        if (self->watch_by_fd[fd])
            s_watch_destroy (self, &self->watch_by_fd[fd]);
    if (self->groups) {
        for (pm_group_t *g = zhashx_first (self->groups); g; g = zhashx_next (self->groups))
            pm_group_destroy (&g);
    }
    zhashx_destroy (&self->groups);
    zhashx_destroy (&self->ended);
    if (self->exiting) {
        for (void *exit = zlistx_first (self->exiting); exit; exit = zlistx_next (self->exiting))
            free (exit);
        zlistx_destroy (&self->exiting);
    }
    zhashx_destroy (&self->sessions_by_id);
    zhashx_destroy (&self->sessions_by_route);
    zsock_destroy (&self->router);
    for (size_t i = 0; i < self->nendpoints; i++) {
        /* libzmq leaves ipc socket files behind; they are ours to remove. */
        if (strncmp (self->endpoints[i], "ipc://", 6) == 0 && self->endpoints[i][6] != '@')
            unlink (self->endpoints[i] + 6);
        free (self->endpoints[i]);
    }
    if (self->epoll_fd >= 0)
        close (self->epoll_fd);
    free (self->watch_by_fd);
    free (self);
    *self_p = NULL;
}

size_t
pm_coord_endpoint_count (const pm_coord_t *self)
{
    return self->nendpoints;
}

const char *
pm_coord_endpoint (const pm_coord_t *self, size_t index)
{
    return index < self->nendpoints ? self->endpoints[index] : NULL;
}

int
pm_coord_watch_pid (pm_coord_t *self, const char *group, int size, int rank, int pid)
{
    /* Already registered and watched through its HELLO: one watch is enough. */
    pm_group_t *known = zhashx_lookup (self->groups, group);
    pm_session_t *member = known ? pm_group_member (known, rank) : NULL;
    if (member && member->proc.pid == pid && *s_session_watch (member))
        return 0;
    int fd = (int) syscall (SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return PM_ESYS;
    pm_watch_t *watch = s_watch_new (self, fd, group, size, rank, pid);
    if (!watch)
        return PM_ESYS;
    s_orphan_add (self, watch);
    return 0;
}

int
pm_coord_watch_exits (pm_coord_t *self, const char *group, int size, int fd)
{
    if (size < 1) {
        close (fd);
        return PM_EINVAL;
    }
    pm_watch_t *watch = s_watch_new (self, fd, group, size, -1, 0);
    if (!watch)
        return PM_ESYS;
    watch->exit_pipe = true;
    return 0;
}

int64_t
pm_coord_sweep_progress (const pm_coord_t *self, const char *group_name)
{
    pm_group_t *group = zhashx_lookup (self->groups, group_name);
    return group ? pm_group_sweep_progress (group) : -1;
}

void
pm_coord_rank_lost (pm_coord_t *self, const char *group_name, int size, int rank,
                    const char *how)
{
    char err[PM_TEXT_MAX];
    pm_group_t *group = zhashx_lookup (self->groups, group_name);
    if (!group) {
        if (zhashx_lookup (self->ended, group_name)) {
            /* The run is over (its ranks left): a report that comes after it
               must not make a new, failed group of that name.            */
            pm_debug ("PM2012", "rank %d of ended group '%s' %s: ignored", rank, group_name,
                      how);
            return;
        }
        /* Nobody joined yet: keep a failed group so that those who come
           learn of the loss instead of waiting for the join timeout.   */
        if (size < 1 || rank < 0 || rank >= size)
            return;
        group = s_group_get (self, group_name, size, err, sizeof err);
        if (!group)
            return;
    }
    pm_session_t *session = pm_group_member (group, rank);
    if (session)
        s_session_dead (self, session, how);
    else {
        char text[PM_TEXT_MAX];
        snprintf (text, sizeof text, "rank %d of group '%s' %s", rank, group_name, how);
        pm_group_rank_died (group, self->router_handle, rank, text);
        s_group_maybe_forget (self, group);
    }
}

void
pm_coord_stats (const pm_coord_t *self, pm_coord_stats_t *stats)
{
    *stats = self->stats;
    stats->groups = zhashx_size (self->groups);
    stats->sessions = zhashx_size (self->sessions_by_id);
}

int
pm_coord_run (pm_coord_t *self, zmq_pollitem_t *extra, pm_coord_extra_fn extra_fn, void *arg)
{
    zmq_pollitem_t items[3] = {
        {self->router_handle, 0, ZMQ_POLLIN, 0},
        {NULL, self->epoll_fd, ZMQ_POLLIN, 0},
    };
    int nitems = 2;
    if (extra) {
        items[2] = *extra;
        items[2].events = ZMQ_POLLIN;
        nitems = 3;
    }
    while (true) {
        int64_t now = s_now ();
        int64_t wake = self->next_cron_ms;
        s_exit_t *exit = zlistx_first (self->exiting);
        if (exit && exit->deadline_ms < wake)
            wake = exit->deadline_ms;
        long timeout = (long) (wake > now ? wake - now : 0);
        int rc = zmq_poll (items, nitems, timeout);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ETERM)
                return 0;
            pm_error ("PM2010", "poll failed: %s", zmq_strerror (errno));
            return PM_ESYS;
        }
        if (items[0].revents & ZMQ_POLLIN)
            s_drain_router (self);
        if (items[1].revents & ZMQ_POLLIN)
            s_drain_watches (self);
        if (nitems == 3 && (items[2].revents & ZMQ_POLLIN) && !extra_fn (self, arg))
            return 0;
        now = s_now ();
        s_confirm_exits (self, now);
        if (now >= self->next_cron_ms) {
            s_cron (self);
            self->next_cron_ms = now + CRON_MS;
        }
    }
}
