/*  pm_workers.c — worker registry and remote launches (see pm_workers.h). */
#include "pm_workers.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "pm.h"
#include "pm_clock.h"
#include "pm_log.h"

typedef struct {
    uint64_t id, token;
    uint8_t route[256];
    size_t route_size;
    char route_key[513];
    char host[PM_HOST_MAX + 1];
    int64_t pid;
    int slots, used;
    int64_t last_seen_ms;
    char mpi_job[PM_GROUP_MAX + 1]; /* an unused MPI process of this job ("" if not) */
    int64_t mpi_rank, mpi_size;
} s_worker_t;

/* One pm-run --connect launch. */
typedef struct {
    char group[PM_GROUP_MAX + 1];
    int size;
    uint8_t route[256];          /* the pm-run that asked */
    size_t route_size;
    uint64_t *worker;            /* by rank: id of the worker hosting it */
    uint8_t *exited;             /* by rank */
    int running;
} s_launch_t;

struct pm_workers {
    pm_workers_config_t config;
    zlistx_t *workers;           /* s_worker_t, in registration order (placement order) */
    zhashx_t *by_route;          /* route key → s_worker_t */
    zhashx_t *launches;          /* group → s_launch_t */
    size_t next_placement;       /* round-robin cursor */
};

static void
s_send (pm_workers_t *self, const void *route, size_t route_size, const pm_msg_t *msg,
        zmq_msg_t *frames, size_t nframes)
{
    int rc = pm_msg_send (self->config.router, route, route_size, msg, frames, nframes,
                          ZMQ_DONTWAIT);
    if (rc)
        pm_debug ("PM2301", "cannot send %s: %s", pm_msg_type_name (msg->type), zmq_strerror (-rc));
}

static void
s_launch_destroy (s_launch_t **launch_p)
{
    s_launch_t *launch = *launch_p;
    if (!launch)
        return;
    free (launch->worker);
    free (launch->exited);
    free (launch);
    *launch_p = NULL;
}

pm_workers_t *
pm_workers_new (const pm_workers_config_t *config)
{
    pm_workers_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    self->workers = zlistx_new ();
    self->by_route = zhashx_new ();
    self->launches = zhashx_new ();
    if (!self->workers || !self->by_route || !self->launches)
        pm_workers_destroy (&self);
    return self;
}

void
pm_workers_destroy (pm_workers_t **self_p)
{
    pm_workers_t *self = *self_p;
    if (!self)
        return;
    if (self->workers)
        for (s_worker_t *w = zlistx_first (self->workers); w; w = zlistx_next (self->workers))
            free (w);
    if (self->launches)
        for (s_launch_t *l = zhashx_first (self->launches); l; l = zhashx_next (self->launches))
            s_launch_destroy (&l);
    zlistx_destroy (&self->workers);
    zhashx_destroy (&self->by_route);
    zhashx_destroy (&self->launches);
    free (self);
    *self_p = NULL;
}

size_t
pm_workers_count (const pm_workers_t *self)
{
    return zlistx_size (self->workers);
}

static s_worker_t *
s_worker_by_id (pm_workers_t *self, uint64_t id)
{
    for (s_worker_t *w = zlistx_first (self->workers); w; w = zlistx_next (self->workers))
        if (w->id == id)
            return w;
    return NULL;
}

static void
s_to_launcher (pm_workers_t *self, s_launch_t *launch, const pm_msg_t *msg, zmq_msg_t *frames,
               size_t nframes)
{
    s_send (self, launch->route, launch->route_size, msg, frames, nframes);
}

/* A rank of launch is over (exited, or its worker is gone). */
static void
s_rank_over (pm_workers_t *self, s_launch_t *launch, int rank, int status, const char *how)
{
    if (rank < 0 || rank >= launch->size || launch->exited[rank])
        return;
    launch->exited[rank] = 1;
    launch->running--;
    s_worker_t *worker = s_worker_by_id (self, launch->worker[rank]);
    if (worker && worker->used > 0)
        worker->used--;
    pm_msg_t msg;
    pm_msg_init (&msg, PM_MSG_RANK_EXIT, 0);
    pm_msg_set_str (&msg, PM_KEY_GROUP, launch->group);
    pm_msg_set (&msg, PM_KEY_RANK, rank);
    pm_msg_set (&msg, PM_KEY_CODE, status);
    if (how)
        pm_msg_set_str (&msg, PM_KEY_TEXT, how);
    s_to_launcher (self, launch, &msg, NULL, 0);
    if (status != 0)
        self->config.lost (self->config.lost_arg, launch->group, launch->size, rank,
                           how ? how : "exited abnormally");
    if (launch->running == 0) {
        pm_info ("PM2302", "launch of group '%s' is over", launch->group);
        zhashx_delete (self->launches, launch->group);
        s_launch_destroy (&launch);
    }
}

static void
s_worker_gone (pm_workers_t *self, s_worker_t *worker, const char *why)
{
    pm_log_write (strcmp (why, "left") == 0 ? PM_LOG_INFO : PM_LOG_WARN, "PM2303",
                  "worker %llu on %s (%d slots) %s", (unsigned long long) worker->id,
             worker->host, worker->slots, why);
    /* Its ranks die with it (they have PR_SET_PDEATHSIG); tell their pm-runs. */
    zlistx_t *affected = zlistx_new ();
    for (s_launch_t *l = zhashx_first (self->launches); l; l = zhashx_next (self->launches))
        zlistx_add_end (affected, l);
    for (s_launch_t *l = zlistx_first (affected); l; l = zlistx_next (affected)) {
        /* s_rank_over may free l once its last rank is over: take what we need first. */
        int size = l->size;
        for (int r = 0; r < size; r++) {
            if (l->worker[r] == worker->id && !l->exited[r]) {
                bool last = l->running == 1;
                s_rank_over (self, l, r, 255, "was lost with its pm-worker");
                if (last)
                    break;
            }
        }
    }
    zlistx_destroy (&affected);
    zhashx_delete (self->by_route, worker->route_key);
    void *handle = zlistx_find (self->workers, worker);
    if (handle)
        zlistx_delete (self->workers, handle);
    free (worker);
}

static void
s_hello (pm_workers_t *self, const uint8_t *route, size_t route_size, const char *key,
         const pm_msg_t *msg)
{
    int64_t slots = pm_msg_get (msg, PM_KEY_SLOTS, 0);
    pm_msg_t reply;
    if (slots < 1 || slots > 100000 || zhashx_lookup (self->by_route, key)) {
        pm_msg_init (&reply, PM_MSG_ERROR, msg->seq);
        pm_msg_set (&reply, PM_KEY_CODE, PM_EINVAL);
        pm_msg_set_str (&reply, PM_KEY_TEXT, slots < 1 || slots > 100000
                                                 ? "WORKER_HELLO needs SLOTS in [1, 100000]"
                                                 : "this connection already registered");
        s_send (self, route, route_size, &reply, NULL, 0);
        return;
    }
    s_worker_t *worker = calloc (1, sizeof *worker);
    if (!worker)
        return;
    worker->id = self->config.next_id (self->config.next_id_arg);
    if (getrandom (&worker->token, sizeof worker->token, 0) != sizeof worker->token)
        worker->token = (uint64_t) pm_clock_us ();
    worker->token >>= 1;
    memcpy (worker->route, route, route_size);
    worker->route_size = route_size;
    snprintf (worker->route_key, sizeof worker->route_key, "%s", key);
    snprintf (worker->host, sizeof worker->host, "%s", msg->host[0] ? msg->host : "?");
    worker->pid = pm_msg_get (msg, PM_KEY_PID, 0);
    worker->slots = (int) slots;
    worker->last_seen_ms = pm_clock_ms ();
    if (pm_msg_get (msg, PM_KEY_FLAGS, 0) & PM_WORKER_MPI) {
        snprintf (worker->mpi_job, sizeof worker->mpi_job, "%s", msg->group);
        worker->mpi_rank = pm_msg_get (msg, PM_KEY_RANK, -1);
        worker->mpi_size = pm_msg_get (msg, PM_KEY_SIZE, 0);
    }
    zlistx_add_end (self->workers, worker);
    zhashx_insert (self->by_route, key, worker);
    pm_info ("PM2304", "worker %llu registered %d slot(s) on %s (pid %lld)",
             (unsigned long long) worker->id, worker->slots, worker->host,
             (long long) worker->pid);
    pm_msg_init (&reply, PM_MSG_WELCOME, msg->seq);
    pm_msg_set (&reply, PM_KEY_SESSION, (int64_t) worker->id);
    pm_msg_set (&reply, PM_KEY_TOKEN, (int64_t) worker->token);
    pm_msg_set (&reply, PM_KEY_HB_IVL, self->config.heartbeat_ivl_ms);
    pm_msg_set (&reply, PM_KEY_HB_TIMEOUT, self->config.heartbeat_timeout_ms);
    pm_msg_set (&reply, PM_KEY_MAX_FRAME, self->config.max_frame);
    pm_msg_set (&reply, PM_KEY_PID, self->config.coordinator->pid);
    pm_msg_set (&reply, PM_KEY_STARTTIME, (int64_t) self->config.coordinator->starttime);
    pm_msg_set_str (&reply, PM_KEY_BOOT_ID, self->config.coordinator->boot_id);
    s_send (self, route, route_size, &reply, NULL, 0);
}

static void
s_launch_reply (pm_workers_t *self, const uint8_t *route, size_t route_size, uint64_t seq,
                int code, const char *text)
{
    pm_msg_t reply;
    pm_msg_init (&reply, PM_MSG_LAUNCH_REPLY, seq);
    pm_msg_set (&reply, PM_KEY_CODE, code);
    pm_msg_set (&reply, PM_KEY_PID, self->config.coordinator->pid);
    pm_msg_set (&reply, PM_KEY_STARTTIME, (int64_t) self->config.coordinator->starttime);
    pm_msg_set_str (&reply, PM_KEY_TEXT, text);
    s_send (self, route, route_size, &reply, NULL, 0);
}

/* Tells worker w to start rank r of launch (argv and cwd frames shared). */
static void
s_start_rank (pm_workers_t *self, s_launch_t *launch, s_worker_t *w, int r, int flags,
              zmq_msg_t *frames)
{
    w->used++;
    launch->worker[r] = w->id;
    launch->running++;
    pm_msg_t start;
    pm_msg_init (&start, PM_MSG_LAUNCH, 0);
    pm_msg_set_str (&start, PM_KEY_GROUP, launch->group);
    pm_msg_set (&start, PM_KEY_SIZE, launch->size);
    pm_msg_set (&start, PM_KEY_RANK, r);
    if (flags)
        pm_msg_set (&start, PM_KEY_FLAGS, flags);
    zmq_msg_t parts[2];
    zmq_msg_init (&parts[0]);
    zmq_msg_copy (&parts[0], &frames[0]);
    zmq_msg_init (&parts[1]);
    zmq_msg_copy (&parts[1], &frames[1]);
    s_send (self, w->route, w->route_size, &start, parts, 2);
}

static void
s_launch_request (pm_workers_t *self, const uint8_t *route, size_t route_size,
                  const pm_msg_t *msg, zmq_msg_t *frames, size_t nframes)
{
    int64_t size = pm_msg_get (msg, PM_KEY_SIZE, 0);
    char text[PM_TEXT_MAX];
    if (!msg->group[0] || size < 1 || size > 100000 || nframes != 2
        || zmq_msg_size (&frames[0]) == 0
        || ((const char *) zmq_msg_data (&frames[0]))[zmq_msg_size (&frames[0]) - 1] != '\0') {
        s_launch_reply (self, route, route_size, msg->seq, PM_EINVAL,
                        "LAUNCH_REQUEST needs GROUP, SIZE in [1, 100000], and argv and cwd "
                        "frames (NUL-terminated)");
        return;
    }
    if (zhashx_lookup (self->launches, msg->group)) {
        snprintf (text, sizeof text, "group '%s' is already running", msg->group);
        s_launch_reply (self, route, route_size, msg->seq, PM_EREJECTED, text);
        return;
    }
    int64_t free_slots = 0;
    for (s_worker_t *w = zlistx_first (self->workers); w; w = zlistx_next (self->workers))
        free_slots += w->slots - w->used;
    if (free_slots < size) {
        snprintf (text, sizeof text, "not enough slots: %lld ranks asked, %lld free on %zu worker(s)",
                  (long long) size, (long long) free_slots, zlistx_size (self->workers));
        s_launch_reply (self, route, route_size, msg->seq, PM_EREJECTED, text);
        return;
    }
    s_launch_t *launch = calloc (1, sizeof *launch);
    if (launch) {
        launch->worker = calloc ((size_t) size, sizeof *launch->worker);
        launch->exited = calloc ((size_t) size, 1);
    }
    if (!launch || !launch->worker || !launch->exited) {
        s_launch_destroy (&launch);
        s_launch_reply (self, route, route_size, msg->seq, PM_ENOMEM, "coordinator out of memory");
        return;
    }
    snprintf (launch->group, sizeof launch->group, "%s", msg->group);
    launch->size = (int) size;
    memcpy (launch->route, route, route_size);
    launch->route_size = route_size;
    /* A launch that covers a whole MPI job of idle workers runs on native
       MPI: rank r goes to the worker that is MPI rank r, and takes over its
       MPI identity (once: an MPI process initialises once).               */
    s_worker_t **by_mpi_rank = calloc ((size_t) size, sizeof *by_mpi_rank);
    const char *job = NULL;
    for (s_worker_t *w = zlistx_first (self->workers); w && by_mpi_rank; w = zlistx_next (self->workers)) {
        if (!w->mpi_job[0] || w->mpi_size != size || w->used > 0 || w->mpi_rank < 0
            || w->mpi_rank >= size || (job && strcmp (job, w->mpi_job) != 0))
            continue;
        job = w->mpi_job;
        by_mpi_rank[w->mpi_rank] = w;
    }
    bool native_mpi = by_mpi_rank != NULL && job != NULL;
    for (int r = 0; native_mpi && r < size; r++)
        native_mpi = by_mpi_rank[r] != NULL;
    if (native_mpi) {
        char job_name[PM_GROUP_MAX + 1];
        snprintf (job_name, sizeof job_name, "%s", job);
        for (int r = 0; r < size; r++) {
            s_start_rank (self, launch, by_mpi_rank[r], r, PM_LAUNCH_MPI, frames);
        }
        for (int r = 0; r < size; r++)
            by_mpi_rank[r]->mpi_job[0] = '\0'; /* used up */
        free (by_mpi_rank);
        zhashx_insert (self->launches, launch->group, launch);
        snprintf (text, sizeof text,
                  "%lld rank(s) of group '%s' placed on the %lld workers of MPI job %s: they run "
                  "on native MPI",
                  (long long) size, launch->group, (long long) size, job_name);
        pm_info ("PM2306", "%s", text);
        s_launch_reply (self, route, route_size, msg->seq, 0, text);
        return;
    }
    free (by_mpi_rank);
    /* Spread round-robin over the workers' free slots, as hosts would be. */
    size_t nworkers = zlistx_size (self->workers);
    s_worker_t **ring = calloc (nworkers, sizeof *ring);
    if (!ring) {
        s_launch_destroy (&launch);
        s_launch_reply (self, route, route_size, msg->seq, PM_ENOMEM, "coordinator out of memory");
        return;
    }
    size_t k = 0;
    for (s_worker_t *w = zlistx_first (self->workers); w; w = zlistx_next (self->workers))
        ring[k++] = w;
    size_t cursor = self->next_placement % nworkers;
    for (int r = 0; r < size; r++) {
        while (ring[cursor]->used >= ring[cursor]->slots)
            cursor = (cursor + 1) % nworkers;
        s_start_rank (self, launch, ring[cursor], r, 0, frames);
        cursor = (cursor + 1) % nworkers;
    }
    self->next_placement = cursor;
    free (ring);
    zhashx_insert (self->launches, launch->group, launch);
    snprintf (text, sizeof text, "%lld rank(s) of group '%s' placed on %zu worker(s)",
              (long long) size, launch->group, nworkers);
    pm_info ("PM2305", "%s", text);
    s_launch_reply (self, route, route_size, msg->seq, 0, text);
}

bool
pm_workers_handle (pm_workers_t *self, const uint8_t *route, size_t route_size,
                   const char *route_key, const pm_msg_t *msg, zmq_msg_t *frames,
                   size_t nframes)
{
    s_worker_t *worker = zhashx_lookup (self->by_route, route_key);
    if (worker)
        worker->last_seen_ms = pm_clock_ms ();
    switch (msg->type) {
    case PM_MSG_WORKER_HELLO: s_hello (self, route, route_size, route_key, msg); break;
    case PM_MSG_LAUNCH_REQUEST: s_launch_request (self, route, route_size, msg, frames, nframes); break;
    case PM_MSG_HEARTBEAT: {
        uint64_t id = (uint64_t) pm_msg_get (msg, PM_KEY_SESSION, 0);
        s_worker_t *beating = s_worker_by_id (self, id);
        if (!beating)
            return false; /* a rank's heartbeat */
        if ((uint64_t) pm_msg_get (msg, PM_KEY_TOKEN, 0) == beating->token) {
            beating->last_seen_ms = pm_clock_ms ();
            pm_msg_t reply;
            pm_msg_init (&reply, PM_MSG_HEARTBEAT, msg->seq);
            s_send (self, route, route_size, &reply, NULL, 0);
        }
        break;
    }
    case PM_MSG_OUTPUT:
    case PM_MSG_RANK_EXIT: {
        s_launch_t *launch = worker ? zhashx_lookup (self->launches, msg->group) : NULL;
        int rank = (int) pm_msg_get (msg, PM_KEY_RANK, -1);
        if (!launch || rank < 0 || rank >= launch->size || launch->worker[rank] != worker->id)
            break; /* not ours, or the launch is over */
        if (msg->type == PM_MSG_OUTPUT) {
            if (nframes == 1) {
                pm_msg_t out = *msg;
                s_to_launcher (self, launch, &out, frames, 1);
                zmq_msg_init (&frames[0]); /* sent */
            }
        } else {
            int status = (int) pm_msg_get (msg, PM_KEY_CODE, 1);
            char how[128];
            snprintf (how, sizeof how, status > 128 ? "was killed by signal %d" : "exited with status %d",
                      status > 128 ? status - 128 : status);
            s_rank_over (self, launch, rank, status, how);
        }
        break;
    }
    case PM_MSG_KILL: {
        /* Relayed to the workers that still run ranks of the launch; the
           sender (pm-run, pmctl kill) hears how many got it.            */
        s_launch_t *launch = zhashx_lookup (self->launches, msg->group);
        int64_t signal = pm_msg_get (msg, PM_KEY_SIGNAL, SIGTERM);
        pm_msg_t reply;
        pm_msg_init (&reply, PM_MSG_RESULT, msg->seq);
        if (!launch || signal < 1 || signal > 64) {
            pm_msg_set (&reply, PM_KEY_CODE, PM_EINVAL);
            pm_msg_set_str (&reply, PM_KEY_TEXT,
                            launch ? "KILL needs a signal number in [1, 64]"
                                   : "no launch of that group runs on this pmd's workers");
            s_send (self, route, route_size, &reply, NULL, 0);
            break;
        }
        int ranks = 0, workers = 0;
        for (s_worker_t *w = zlistx_first (self->workers); w; w = zlistx_next (self->workers)) {
            int here = 0;
            for (int r = 0; r < launch->size; r++)
                here += launch->worker[r] == w->id && !launch->exited[r];
            if (here) {
                s_send (self, w->route, w->route_size, msg, NULL, 0);
                ranks += here;
                workers++;
            }
        }
        char text[160];
        snprintf (text, sizeof text, "signal %d sent to %d rank(s) on %d worker(s)", (int) signal,
                  ranks, workers);
        pm_info ("PM2307", "group '%s': %s", msg->group, text);
        pm_msg_set (&reply, PM_KEY_CODE, 0);
        pm_msg_set_str (&reply, PM_KEY_TEXT, text);
        s_send (self, route, route_size, &reply, NULL, 0);
        break;
    }
    case PM_MSG_BYE:
        if (!worker)
            return false;
        s_worker_gone (self, worker, "left");
        break;
    default: return false;
    }
    for (size_t i = 0; i < nframes; i++)
        zmq_msg_close (&frames[i]);
    return true;
}

void
pm_workers_cron (pm_workers_t *self, int64_t now_ms)
{
    zlistx_t *dead = zlistx_new ();
    for (s_worker_t *w = zlistx_first (self->workers); w; w = zlistx_next (self->workers))
        if (now_ms - w->last_seen_ms > self->config.heartbeat_timeout_ms)
            zlistx_add_end (dead, w);
    for (s_worker_t *w = zlistx_first (dead); w; w = zlistx_next (dead))
        s_worker_gone (self, w, "sent nothing within the heartbeat timeout");
    zlistx_destroy (&dead);
}

void
pm_workers_json (pm_workers_t *self, pm_json_t *json)
{
    pm_json_raw (json, "[");
    bool first = true;
    for (s_worker_t *w = zlistx_first (self->workers); w; w = zlistx_next (self->workers)) {
        pm_json_raw (json, "%s{\"id\":%llu,\"host\":", first ? "" : ",",
                     (unsigned long long) w->id);
        pm_json_string (json, w->host);
        pm_json_raw (json, ",\"pid\":%lld,\"slots\":%d,\"used\":%d}", (long long) w->pid,
                     w->slots, w->used);
        first = false;
    }
    pm_json_raw (json, "]");
}
