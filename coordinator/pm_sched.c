/*  pm_sched.c — dynamic sweep scheduling for one group (see pm_sched.h). */
#include "pm_sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pm.h"
#include "pm_clock.h"
#include "pm_group.h"
#include "pm_log.h"

#define CHUNK_TARGET_US 100000 /* a chunk should take about this long */
#define ROWS_MAX ((size_t) 1 << 34)

typedef enum { CHUNK_QUEUED, CHUNK_ASSIGNED, CHUNK_DONE } s_chunk_state_t;

typedef struct {
    size_t first, count;  /* rows [first, first + count) */
    int owner;            /* rank working on it or that did it; -1 while queued */
    s_chunk_state_t state;
    zmq_msg_t outputs;    /* count x noutputs doubles, once done */
    zmq_msg_t success;    /* count bytes, once done */
} s_chunk_t;

/* A request waiting for work, or a root waiting for the results. */
typedef struct {
    pm_session_t *session;
    uint64_t sweep;
} s_waiter_t;

struct pm_sched {
    int size;               /* ranks in the group */
    uint64_t sweep;         /* id of the open (or last) sweep; 0: none yet */
    bool open;
    size_t rows, cols, noutputs;
    zmq_msg_t params;       /* every row, kept to hand out requeued chunks */
    size_t next_row;        /* first row never handed out */
    size_t rows_done;
    s_chunk_t *chunks;      /* every chunk handed out, by id */
    size_t nchunks, chunks_cap;
    size_t *requeued;       /* ids of chunks to hand out again (a stack) */
    size_t nrequeued;
    s_waiter_t *parked;     /* requests with nothing to hand out yet */
    size_t nparked, parked_cap;
    s_waiter_t gather;      /* root's gather, once it asked */
    bool gather_waiting;
    double us_per_row;      /* moving average; 0 until measured */
    pm_session_t *root;     /* rank 0, to stream finished chunks to (NULL: don't) */
    uint64_t refused;       /* id of a sweep whose SWEEP_OPEN was refused; 0: none */
    char refused_text[PM_TEXT_MAX + 1];
    int64_t last_done_ms;   /* pm_clock_ms of the last chunk done; 0: none yet */
    int *lost;              /* ranks that left with work unfinished */
    size_t nlost;
    uint8_t *left;          /* by rank: left the group */
};

pm_sched_t *
pm_sched_new (int size)
{
    pm_sched_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->size = size;
    self->lost = calloc ((size_t) size, sizeof *self->lost);
    self->left = calloc ((size_t) size, 1);
    zmq_msg_init (&self->params);
    if (!self->lost || !self->left)
        pm_sched_destroy (&self);
    return self;
}

static void
s_reset (pm_sched_t *self)
{
    for (size_t i = 0; i < self->nchunks; i++)
        if (self->chunks[i].state == CHUNK_DONE) {
            zmq_msg_close (&self->chunks[i].outputs);
            zmq_msg_close (&self->chunks[i].success);
        }
    self->nchunks = 0;
    self->nrequeued = 0;
    /* Parked requests stay: they may be for the sweep about to open. */
    self->gather_waiting = false;
    self->rows = self->cols = self->noutputs = 0;
    self->next_row = self->rows_done = 0;
    self->nlost = 0;
    self->open = false;
    self->root = NULL;
    zmq_msg_close (&self->params);
    zmq_msg_init (&self->params);
}

void
pm_sched_destroy (pm_sched_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_sched_t *self = *self_p;
    s_reset (self);
    zmq_msg_close (&self->params);
    free (self->chunks);
    free (self->requeued);
    free (self->parked);
    free (self->lost);
    free (self->left);
    free (self);
    *self_p = NULL;
}

static void
s_send_task (void *router, pm_session_t *session, uint64_t sweep, int code, const char *text,
             size_t chunk, size_t first, size_t count, size_t cols, zmq_msg_t *data)
{
    pm_msg_t msg;
    pm_msg_init (&msg, PM_MSG_TASK, sweep);
    pm_msg_set (&msg, PM_KEY_CODE, code);
    if (text)
        pm_msg_set_str (&msg, PM_KEY_TEXT, text);
    pm_msg_set (&msg, PM_KEY_CHUNK, (int64_t) chunk);
    if (cols)
        pm_msg_set (&msg, PM_KEY_COLS, (int64_t) cols);
    pm_msg_set (&msg, PM_KEY_FIRST, (int64_t) first);
    pm_msg_set (&msg, PM_KEY_COUNT, (int64_t) count);
    pm_session_send (router, session, &msg, data, data ? 1 : 0);
}

static bool
s_complete (const pm_sched_t *self)
{
    return self->open && self->rows_done == self->rows;
}

/* Rows for the next fresh chunk: a share of what is left, at most what
   takes CHUNK_TARGET_US at the measured speed, at least one.          */
static size_t
s_chunk_rows (const pm_sched_t *self)
{
    size_t left = self->rows - self->next_row;
    size_t share = (left + 2 * (size_t) self->size - 1) / (2 * (size_t) self->size);
    if (self->us_per_row > 0) {
        double cap = CHUNK_TARGET_US / self->us_per_row;
        if (cap < (double) share)
            share = cap < 1 ? 1 : (size_t) cap;
    } else if (share > 1) {
        share = 1; /* first chunks are single rows: they measure the model */
    }
    return share < 1 ? 1 : share;
}

/* Hands a chunk to session if there is one; false if nothing is left to hand out. */
static bool
s_assign (pm_sched_t *self, void *router, pm_session_t *session)
{
    size_t id;
    if (self->nrequeued > 0) {
        id = self->requeued[--self->nrequeued];
    } else if (self->next_row < self->rows) {
        if (self->nchunks == self->chunks_cap) {
            size_t cap = self->chunks_cap ? self->chunks_cap * 2 : 64;
            s_chunk_t *grown = realloc (self->chunks, cap * sizeof *grown);
            if (!grown)
                return false;
            self->chunks = grown;
            self->chunks_cap = cap;
        }
        id = self->nchunks++;
        s_chunk_t *fresh = &self->chunks[id];
        memset (fresh, 0, sizeof *fresh);
        fresh->first = self->next_row;
        fresh->count = s_chunk_rows (self);
        if (fresh->count > self->rows - self->next_row)
            fresh->count = self->rows - self->next_row;
        self->next_row += fresh->count;
    } else {
        return false;
    }
    s_chunk_t *chunk = &self->chunks[id];
    chunk->owner = session->rank;
    chunk->state = CHUNK_ASSIGNED;
    size_t row_bytes = self->cols * sizeof (double);
    zmq_msg_t data;
    if (zmq_msg_init_size (&data, chunk->count * row_bytes) != 0)
        return false;
    memcpy (zmq_msg_data (&data), (const char *) zmq_msg_data (&self->params) + chunk->first * row_bytes,
            chunk->count * row_bytes);
    s_send_task (router, session, self->sweep, 0, NULL, id, chunk->first, chunk->count, self->cols,
                 &data);
    return true;
}

/* Puts an assigned chunk back in the queue, to be handed out again. */
static void
s_requeue (pm_sched_t *self, size_t id)
{
    s_chunk_t *chunk = &self->chunks[id];
    size_t *grown = realloc (self->requeued, (self->nrequeued + 1) * sizeof *grown);
    if (!grown) {
        pm_error ("PM2207", "out of memory: rows %zu..%zu of sweep %llu cannot be requeued",
                  chunk->first, chunk->first + chunk->count, (unsigned long long) self->sweep);
        return;
    }
    chunk->state = CHUNK_QUEUED;
    chunk->owner = -1;
    self->requeued = grown;
    self->requeued[self->nrequeued++] = id;
}

static void
s_answer_gather (pm_sched_t *self, void *router)
{
    if (!self->gather_waiting || !s_complete (self))
        return;
    self->gather_waiting = false;
    size_t rows = self->rows, width = self->noutputs * sizeof (double);
    zmq_msg_t frames[3];
    bool ok = zmq_msg_init_size (&frames[0], rows * width) == 0;
    ok = ok && zmq_msg_init_size (&frames[1], rows) == 0;
    ok = ok && zmq_msg_init_size (&frames[2], rows * sizeof (int32_t)) == 0;
    pm_msg_t msg;
    pm_msg_init (&msg, PM_MSG_SWEEP_RESULTS, self->sweep);
    if (!ok) {
        pm_msg_set (&msg, PM_KEY_CODE, PM_ENOMEM);
        pm_msg_set_str (&msg, PM_KEY_TEXT, "coordinator out of memory for the sweep's results");
        pm_session_send (router, self->gather.session, &msg, NULL, 0);
        return;
    }
    char *outputs = zmq_msg_data (&frames[0]);
    char *success = zmq_msg_data (&frames[1]);
    char *owners = zmq_msg_data (&frames[2]);
    for (size_t i = 0; i < self->nchunks; i++) {
        s_chunk_t *chunk = &self->chunks[i];
        if (chunk->state != CHUNK_DONE)
            continue; /* an abandoned chunk whose rows another chunk holds */
        memcpy (outputs + chunk->first * width, zmq_msg_data (&chunk->outputs), chunk->count * width);
        memcpy (success + chunk->first, zmq_msg_data (&chunk->success), chunk->count);
        for (size_t r = 0; r < chunk->count; r++) {
            int32_t owner = chunk->owner;
            memcpy (owners + (chunk->first + r) * sizeof owner, &owner, sizeof owner);
        }
    }
    pm_msg_set (&msg, PM_KEY_CODE, 0);
    pm_msg_set (&msg, PM_KEY_COUNT, (int64_t) rows);
    pm_msg_set (&msg, PM_KEY_OUTPUTS, (int64_t) self->noutputs);
    pm_msg_set (&msg, PM_KEY_LOST, (int64_t) self->nlost);
    if (self->nlost) {
        char text[PM_TEXT_MAX] = "rows of lost rank(s) were redone elsewhere:";
        for (size_t i = 0; i < self->nlost; i++) {
            size_t len = strlen (text);
            snprintf (text + len, sizeof text - len, " %d", self->lost[i]);
        }
        pm_msg_set_str (&msg, PM_KEY_TEXT, text);
    }
    pm_session_send (router, self->gather.session, &msg, frames, 3);
}

/* The sweep is complete: everyone still waiting for work stops. */
static void
s_release_parked (pm_sched_t *self, void *router, int code, const char *text)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->nparked; i++) {
        if (self->parked[i].sweep > self->sweep && code == 0)
            self->parked[kept++] = self->parked[i]; /* a later sweep's: keep */
        else
            s_send_task (router, self->parked[i].session, self->parked[i].sweep, code, text, 0,
                         0, 0, self->parked[i].sweep == self->sweep ? self->cols : 0, NULL);
    }
    self->nparked = kept;
}

static void
s_park (pm_sched_t *self, pm_session_t *session, uint64_t sweep)
{
    if (self->nparked == self->parked_cap) {
        size_t cap = self->parked_cap ? self->parked_cap * 2 : 16;
        s_waiter_t *grown = realloc (self->parked, cap * sizeof *grown);
        if (!grown)
            return; /* the rank waits for the sweep's end or its peers' loss */
        self->parked = grown;
        self->parked_cap = cap;
    }
    self->parked[self->nparked++] = (s_waiter_t){session, sweep};
}

/* Serves parked requests, oldest first, while there is work: one pass. */
static void
s_serve_parked (pm_sched_t *self, void *router)
{
    size_t kept = 0, i = 0;
    for (; i < self->nparked; i++) {
        s_waiter_t waiter = self->parked[i];
        bool work = self->nrequeued > 0 || self->next_row < self->rows;
        if (waiter.sweep == self->sweep && self->open && work) {
            if (s_assign (self, router, waiter.session))
                continue;
            /* out of memory: this one and the rest wait for the next chance */
        }
        self->parked[kept++] = waiter;
    }
    self->nparked = kept;
}

static void
s_open (pm_sched_t *self, void *router, pm_session_t *session, const pm_msg_t *msg,
        zmq_msg_t *frames, size_t nframes)
{
    int64_t rows = pm_msg_get (msg, PM_KEY_COUNT, -1), cols = pm_msg_get (msg, PM_KEY_COLS, -1),
            noutputs = pm_msg_get (msg, PM_KEY_OUTPUTS, -1);
    const char *bad = NULL;
    if (session->rank != 0)
        bad = "only rank 0 opens a sweep";
    else if (msg->seq <= self->sweep && self->sweep != 0 && !(msg->seq == self->sweep && !self->open))
        bad = "sweep id out of order";
    else if (rows < 0 || (size_t) rows > ROWS_MAX || cols < 1 || cols > 1 << 20 || noutputs < 0
             || noutputs > 1 << 20)
        bad = "bad sweep shape";
    else if (nframes != 1 || zmq_msg_size (&frames[0]) != (size_t) rows * (size_t) cols * 8)
        bad = "the rows frame does not match the sweep's shape";
    if (bad) {
        /* Every request for this sweep, waiting or to come, gets the refusal. */
        pm_warn ("PM2201", "rejected a sweep from rank %d: %s", session->rank, bad);
        self->refused = msg->seq;
        snprintf (self->refused_text, sizeof self->refused_text, "the coordinator refused the sweep: %s", bad);
        size_t kept = 0;
        for (size_t i = 0; i < self->nparked; i++) {
            if (self->parked[i].sweep == msg->seq)
                s_send_task (router, self->parked[i].session, msg->seq, PM_EPROTO,
                             self->refused_text, 0, 0, 0, 0, NULL);
            else
                self->parked[kept++] = self->parked[i];
        }
        self->nparked = kept;
        return;
    }
    s_reset (self);
    self->sweep = msg->seq;
    self->open = true;
    /* Requests parked for an older sweep are stale: that sweep is over. */
    size_t kept = 0;
    for (size_t i = 0; i < self->nparked; i++) {
        if (self->parked[i].sweep < self->sweep)
            s_send_task (router, self->parked[i].session, self->parked[i].sweep, 0, NULL, 0, 0,
                         0, 0, NULL);
        else
            self->parked[kept++] = self->parked[i];
    }
    self->nparked = kept;
    self->rows = (size_t) rows;
    self->cols = (size_t) cols;
    self->noutputs = (size_t) noutputs;
    zmq_msg_move (&self->params, &frames[0]);
    if (pm_msg_get (msg, PM_KEY_FLAGS, 0) & PM_SWEEP_STREAM)
        self->root = session;
    pm_info ("PM2202", "sweep %llu opened: %zu rows x %zu parameters, %zu outputs",
             (unsigned long long) self->sweep, self->rows, self->cols, self->noutputs);
    /* Requests that arrived before the rows did. */
    s_serve_parked (self, router);
    if (s_complete (self))
        s_release_parked (self, router, 0, NULL);
}

static void
s_done (pm_sched_t *self, void *router, pm_session_t *session, const pm_msg_t *msg,
        zmq_msg_t *frames, size_t nframes)
{
    int64_t id = pm_msg_get (msg, PM_KEY_CHUNK, -1);
    if (msg->seq != self->sweep || !self->open || id < 0 || (size_t) id >= self->nchunks)
        return; /* a stale answer: the chunk was reassigned or the sweep ended */
    s_chunk_t *chunk = &self->chunks[id];
    if (pm_msg_get (msg, PM_KEY_CODE, 0) < 0 && chunk->state == CHUNK_ASSIGNED
        && chunk->owner == session->rank) {
        /* The rank hands the chunk back (it failed locally): someone else does it. */
        pm_warn ("PM2206", "rank %d handed back rows %zu..%zu of sweep %llu", session->rank,
                 chunk->first, chunk->first + chunk->count, (unsigned long long) self->sweep);
        s_requeue (self, (size_t) id);
        s_serve_parked (self, router);
        return;
    }
    if (chunk->state != CHUNK_ASSIGNED || chunk->owner != session->rank || nframes != 2
        || zmq_msg_size (&frames[0]) != chunk->count * self->noutputs * sizeof (double)
        || zmq_msg_size (&frames[1]) != chunk->count) {
        pm_warn ("PM2203", "dropped a malformed TASK_DONE from rank %d", session->rank);
        return;
    }
    zmq_msg_init (&chunk->outputs);
    zmq_msg_move (&chunk->outputs, &frames[0]);
    zmq_msg_init (&chunk->success);
    zmq_msg_move (&chunk->success, &frames[1]);
    chunk->state = CHUNK_DONE;
    self->rows_done += chunk->count;
    self->last_done_ms = pm_clock_ms ();
    if (self->root) {
        /* Root sees each chunk as it lands (progress, journals); shared, not copied. */
        pm_msg_t rows;
        pm_msg_init (&rows, PM_MSG_ROWS_DONE, self->sweep);
        pm_msg_set (&rows, PM_KEY_FIRST, (int64_t) chunk->first);
        pm_msg_set (&rows, PM_KEY_COUNT, (int64_t) chunk->count);
        pm_msg_set (&rows, PM_KEY_OUTPUTS, (int64_t) self->noutputs);
        zmq_msg_t parts[2];
        zmq_msg_init (&parts[0]);
        zmq_msg_copy (&parts[0], &chunk->outputs);
        zmq_msg_init (&parts[1]);
        zmq_msg_copy (&parts[1], &chunk->success);
        pm_session_send (router, self->root, &rows, parts, 2);
    }
    int64_t elapsed = pm_msg_get (msg, PM_KEY_ELAPSED_US, -1);
    if (elapsed >= 0 && chunk->count) {
        double sample = (double) elapsed / (double) chunk->count;
        self->us_per_row = self->us_per_row > 0 ? 0.7 * self->us_per_row + 0.3 * sample
                                                : (sample > 0 ? sample : 0.001);
    }
    if (s_complete (self)) {
        pm_info ("PM2204", "sweep %llu complete: %zu rows in %zu chunks",
                 (unsigned long long) self->sweep, self->rows, self->nchunks);
        s_release_parked (self, router, 0, NULL);
        s_answer_gather (self, router);
    }
}

void
pm_sched_handle (pm_sched_t *self, void *router, pm_session_t *session, const pm_msg_t *msg,
                 zmq_msg_t *frames, size_t nframes)
{
    switch (msg->type) {
    case PM_MSG_SWEEP_OPEN: s_open (self, router, session, msg, frames, nframes); break;
    case PM_MSG_TASK_DONE: s_done (self, router, session, msg, frames, nframes); break;
    case PM_MSG_TASK_REQUEST:
        if (self->refused && msg->seq == self->refused)
            s_send_task (router, session, msg->seq, PM_EPROTO, self->refused_text, 0, 0, 0, 0,
                         NULL);
        else if (msg->seq < self->sweep || (msg->seq == self->sweep && s_complete (self)))
            s_send_task (router, session, msg->seq, 0, NULL, 0, 0, 0,
                         msg->seq == self->sweep ? self->cols : 0, NULL); /* nothing left */
        else if (msg->seq == self->sweep && self->open && s_assign (self, router, session))
            ;
        else if (self->left[0])
            s_send_task (router, session, msg->seq, PM_EPEERLOST,
                         "rank 0 left: nobody will gather this sweep", 0, 0, 0, 0, NULL);
        else
            s_park (self, session, msg->seq); /* the rows are not here yet, or all are out */
        break;
    case PM_MSG_SWEEP_GATHER:
        if (session->rank != 0 || msg->seq != self->sweep) {
            pm_msg_t reply;
            pm_msg_init (&reply, PM_MSG_SWEEP_RESULTS, msg->seq);
            pm_msg_set (&reply, PM_KEY_CODE, PM_EPROTO);
            pm_msg_set_str (&reply, PM_KEY_TEXT, "gather of a sweep that is not open");
            pm_session_send (router, session, &reply, NULL, 0);
            break;
        }
        self->gather = (s_waiter_t){session, msg->seq};
        self->gather_waiting = true;
        s_answer_gather (self, router);
        break;
    default: break;
    }
    for (size_t i = 0; i < nframes; i++)
        zmq_msg_close (&frames[i]);
}

int64_t
pm_sched_last_done (const pm_sched_t *self)
{
    return self->last_done_ms ? self->last_done_ms : -1;
}

void
pm_sched_mark_left (pm_sched_t *self, int rank)
{
    if (rank >= 0 && rank < self->size)
        self->left[rank] = 1;
}

void
pm_sched_member_left (pm_sched_t *self, void *router, int rank, bool died)
{
    if (rank < 0 || rank >= self->size)
        return;
    self->left[rank] = 1;
    /* Its requests are no longer anyone's to answer. */
    size_t kept = 0;
    for (size_t i = 0; i < self->nparked; i++)
        if (self->parked[i].session->rank != rank)
            self->parked[kept++] = self->parked[i];
    self->nparked = kept;
    if (self->gather_waiting && self->gather.session->rank == rank)
        self->gather_waiting = false;
    if (rank == 0)
        self->root = NULL;
    bool had_work = false;
    for (size_t i = 0; i < self->nchunks; i++) {
        s_chunk_t *chunk = &self->chunks[i];
        if (chunk->state == CHUNK_ASSIGNED && chunk->owner == rank) {
            s_requeue (self, i);
            had_work = true;
        }
    }
    if (had_work && self->nlost < (size_t) self->size)
        self->lost[self->nlost++] = rank;
    if (had_work)
        pm_warn ("PM2205", "rank %d %s with unfinished rows of sweep %llu: they are requeued",
                 rank, died ? "died" : "left", (unsigned long long) self->sweep);
    s_serve_parked (self, router);
    /* Without rank 0 nobody opens or gathers: everyone waiting stops. */
    if (rank == 0 && !(self->open && s_complete (self)))
        s_release_parked (self, router, PM_EPEERLOST, "rank 0 left: nobody will gather this sweep");
}
