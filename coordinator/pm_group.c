/*  pm_group.c — a group of ranks and its collective rounds (see pm_group.h). */
#include "pm_group.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pm.h"
#include "pm_dtype.h"
#include "pm_log.h"
#include "pm_texts.h"
#include "pm_sched.h"


/* The collective in progress at the group's current step. */
typedef struct {
    int arrived;             /* ranks that contributed */
    uint8_t *contributed;    /* per rank: contributed at this step */
    int kind, dtype, op, root; /* signature, from the first contribution */
    int64_t count;           /* count of the first contribution */
    int first_rank;          /* who set the signature */
    int error;               /* first error found in this round, 0 if none */
    char error_text[PM_TEXT_MAX + 1];
    zmq_msg_t *data;         /* per rank: its data frame (gather, bcast root, scatter root) */
    uint8_t *has_data;
    uint64_t *counts;        /* the counts frame (root's, or the first rank's for allgather) */
    bool has_counts;
    int64_t *recv_count;     /* per rank: count it passed (scatterv) */
    char *acc;               /* reduction accumulator (malloc'd: aligned) */
    size_t acc_size;
    int next_fold;           /* next rank to fold into acc, in rank order */
} pm_round_t;

struct pm_group {
    char name[PM_GROUP_MAX + 1];
    int size;                /* ranks in the group */
    pm_session_t **members;  /* by rank; NULL until joined and after leaving */
    uint8_t *ever_joined;    /* by rank */
    int live;                /* members now joined */
    int ever;                /* ranks that joined at some point */
    int64_t created_ms, emptied_ms;
    bool failed;
    int fail_code;
    char fail_text[PM_TEXT_MAX + 1];
    uint64_t seq;            /* step of the current round (first is 1) */
    pm_round_t round;
    pm_sched_t *sched;       /* dynamic sweeps, NULL until the first one */
};

static const char *
s_kind_name (int kind)
{
    static const char *names[] = {"?",       "barrier", "bcast",      "bcast_bytes",
                                  "scatterv", "gatherv", "allgather", "reduce", "allreduce"};
    return kind >= 0 && kind <= PM_COLL_KIND_MAX ? names[kind] : "?";
}

static bool
s_kind_rooted (int kind)
{
    return kind == PM_COLL_BCAST || kind == PM_COLL_BCAST_BLOB || kind == PM_COLL_SCATTERV
           || kind == PM_COLL_GATHERV || kind == PM_COLL_REDUCE;
}

static bool
s_kind_reduces (int kind)
{
    return kind == PM_COLL_REDUCE || kind == PM_COLL_ALLREDUCE;
}

pm_group_t *
pm_group_new (const char *name, int size, int64_t now_ms)
{
    pm_group_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->name, sizeof self->name, "%s", name);
    self->size = size;
    self->created_ms = now_ms;
    self->emptied_ms = now_ms; /* empty from birth until someone joins */
    self->seq = 1;
    size_t n = (size_t) size;
    self->members = calloc (n, sizeof *self->members);
    self->ever_joined = calloc (n, 1);
    self->round.contributed = calloc (n, 1);
    self->round.data = calloc (n, sizeof (zmq_msg_t));
    self->round.has_data = calloc (n, 1);
    self->round.recv_count = calloc (n, sizeof (int64_t));
    if (!self->members || !self->ever_joined || !self->round.contributed || !self->round.data
        || !self->round.has_data || !self->round.recv_count) {
        pm_group_destroy (&self);
        return NULL;
    }
    return self;
}

static void
s_round_reset (pm_group_t *self)
{
    pm_round_t *round = &self->round;
    for (int r = 0; r < self->size; r++) {
        if (round->has_data[r])
            zmq_msg_close (&round->data[r]);
        round->has_data[r] = 0;
        round->contributed[r] = 0;
        round->recv_count[r] = 0;
    }
    free (round->counts);
    round->counts = NULL;
    round->has_counts = false;
    free (round->acc);
    round->acc = NULL;
    round->acc_size = 0;
    round->arrived = 0;
    round->error = 0;
    round->error_text[0] = '\0';
    round->next_fold = 0;
    round->kind = 0;
}

void
pm_group_destroy (pm_group_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_group_t *self = *self_p;
    if (self->round.contributed && self->round.has_data && self->round.data
        && self->round.recv_count)
        s_round_reset (self);
    pm_sched_destroy (&self->sched);
    free (self->members);
    free (self->ever_joined);
    free (self->round.contributed);
    free (self->round.data);
    free (self->round.has_data);
    free (self->round.recv_count);
    free (self);
    *self_p = NULL;
}

const char *pm_group_name (const pm_group_t *self) { return self->name; }
int pm_group_size (const pm_group_t *self) { return self->size; }
int pm_group_live (const pm_group_t *self) { return self->live; }
bool pm_group_complete_once (const pm_group_t *self) { return self->ever == self->size; }
bool pm_group_failed (const pm_group_t *self) { return self->failed; }
const char *pm_group_fail_text (const pm_group_t *self) { return self->failed ? self->fail_text : ""; }
int64_t pm_group_created_ms (const pm_group_t *self) { return self->created_ms; }
int64_t pm_group_emptied_ms (const pm_group_t *self) { return self->emptied_ms; }

bool
pm_group_rank_ever_joined (const pm_group_t *self, int rank)
{
    return rank >= 0 && rank < self->size && self->ever_joined[rank];
}

pm_session_t *
pm_group_member (const pm_group_t *self, int rank)
{
    return rank >= 0 && rank < self->size ? self->members[rank] : NULL;
}

pm_sched_t *
pm_group_sched (pm_group_t *self)
{
    if (!self->sched) {
        self->sched = pm_sched_new (self->size);
        /* Ranks gone before the first sweep message: rank 0's absence
           matters, nobody would ever gather.                          */
        for (int r = 0; self->sched && r < self->size; r++)
            if (self->ever_joined[r] && !self->members[r])
                pm_sched_mark_left (self->sched, r);
    }
    return self->sched;
}

int64_t
pm_group_sweep_progress (const pm_group_t *self)
{
    return self->sched ? pm_sched_last_done (self->sched) : -1;
}

bool
pm_group_join (pm_group_t *self, pm_session_t *session)
{
    int rank = session->rank;
    if (rank < 0 || rank >= self->size || self->members[rank])
        return false;
    self->members[rank] = session;
    self->live++;
    if (!self->ever_joined[rank]) {
        self->ever_joined[rank] = 1;
        self->ever++;
    }
    session->group = self;
    return true;
}

static void
s_send_status (void *router, pm_session_t *session, uint64_t seq, int code, const char *text)
{
    pm_msg_t reply;
    pm_msg_init (&reply, PM_MSG_RESULT, seq);
    pm_msg_set (&reply, PM_KEY_CODE, code);
    if (text && *text)
        pm_msg_set_str (&reply, PM_KEY_TEXT, text);
    pm_session_send (router, session, &reply, NULL, 0);
}

/* quiet: the failure is how a run ends (a member left between rounds). */
static void
s_fail (pm_group_t *self, void *router, int code, const char *text, bool quiet)
{
    if (self->failed)
        return;
    self->failed = true;
    self->fail_code = code;
    snprintf (self->fail_text, sizeof self->fail_text, "%s", text);
    if (quiet)
        pm_debug ("PM2104", "group '%s' ended: %s", self->name, self->fail_text);
    else
        pm_warn ("PM2101", "group '%s' failed: %s", self->name, self->fail_text);
    /* Everyone blocked in the current round learns now. */
    for (int r = 0; r < self->size; r++)
        if (self->round.contributed[r] && self->members[r])
            s_send_status (router, self->members[r], self->seq, code, self->fail_text);
    s_round_reset (self);
}

void
pm_group_fail (pm_group_t *self, void *router, int code, const char *text)
{
    s_fail (self, router, code, text, false);
}

void
pm_group_leave (pm_group_t *self, void *router, pm_session_t *session, const char *text,
                bool died, int64_t now_ms)
{
    int rank = session->rank;
    if (rank < 0 || rank >= self->size || self->members[rank] != session)
        return;
    self->members[rank] = NULL;
    self->live--;
    if (self->sched)
        pm_sched_member_left (self->sched, router, rank, died);
    if (self->live == 0)
        self->emptied_ms = now_ms;
    /* A member that leaves can never contribute again, so a round can never
       complete for the others: the group fails.  After a clean run every
       rank leaves once its last collective is done, so nobody is waiting:
       then it is not worth a warning. */
    s_fail (self, router, PM_EPEERLOST, text, !died && self->round.arrived == 0);
}

void
pm_group_rank_died (pm_group_t *self, void *router, int rank, const char *text)
{
    if (rank < 0 || rank >= self->size)
        return;
    if (!self->ever_joined[rank]) {
        self->ever_joined[rank] = 1; /* it will never join: count it as done */
        self->ever++;
    }
    pm_group_fail (self, router, PM_EPEERLOST, text);
}

static void
s_round_error (pm_round_t *round, int code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_round_error (pm_round_t *round, int code, const char *fmt, ...)
{
    if (round->error)
        return; /* the first error found is the one reported */
    round->error = code;
    va_list args;
    va_start (args, fmt);
    vsnprintf (round->error_text, sizeof round->error_text, fmt, args);
    va_end (args);
}

/* What a contribution says it is. */
typedef struct {
    int kind, dtype, op, root;
    int64_t count;
} s_signature_t;

static s_signature_t
s_signature_of (const pm_msg_t *msg)
{
    s_signature_t sig = {
        .kind = (int) pm_msg_get (msg, PM_KEY_KIND, 0),
        .dtype = (int) pm_msg_get (msg, PM_KEY_DTYPE, PM_BYTE),
        .op = (int) pm_msg_get (msg, PM_KEY_OP, 0),
        .root = (int) pm_msg_get (msg, PM_KEY_ROOT, 0),
        .count = pm_msg_get (msg, PM_KEY_COUNT, 0),
    };
    return sig;
}

/* Checks one contribution's shape; returns false with the round error set. */
static bool
s_validate (pm_group_t *self, int rank, const pm_msg_t *msg, zmq_msg_t *frames,
            size_t nframes)
{
    pm_round_t *round = &self->round;
    s_signature_t sig = s_signature_of (msg);
    int kind = sig.kind, dtype = sig.dtype, op = sig.op, root = sig.root;
    int64_t count = sig.count;
    if (kind < 1 || kind > PM_COLL_KIND_MAX || !pm_dtype_valid (dtype) || !pm_op_valid (op)
        || count < 0 || (s_kind_rooted (kind) && (root < 0 || root >= self->size))) {
        s_round_error (round, PM_EPROTO, "rank %d sent a malformed collective", rank);
        return false;
    }
    size_t dsize = pm_dtype_size ((pm_dtype_t) dtype), bytes;
    if (!pm_size_mul ((size_t) count, dsize, &bytes)) {
        s_round_error (round, PM_EPROTO, "rank %d sent an impossible count", rank);
        return false;
    }
    size_t want_frames = 0;
    bool is_root = rank == root;
    bool sends_data = false, sends_counts = false;
    switch (kind) {
    case PM_COLL_BARRIER: break;
    case PM_COLL_BCAST:
    case PM_COLL_BCAST_BLOB: sends_data = is_root; break;
    case PM_COLL_SCATTERV: sends_data = sends_counts = is_root; break;
    case PM_COLL_GATHERV: sends_data = true; sends_counts = is_root; break;
    case PM_COLL_ALLGATHERV: sends_data = true; sends_counts = nframes == 2; break;
    case PM_COLL_REDUCE:
    case PM_COLL_ALLREDUCE: sends_data = true; break;
    }
    want_frames = (size_t) sends_data + (size_t) sends_counts;
    if (nframes != want_frames) {
        s_round_error (round, PM_EPROTO, "rank %d sent %zu data frames to %s, expected %zu",
                       rank, nframes, s_kind_name (kind), want_frames);
        return false;
    }
    if (sends_counts && zmq_msg_size (&frames[1]) != (size_t) self->size * 8) {
        s_round_error (round, PM_EPROTO, "rank %d sent a counts frame of the wrong size", rank);
        return false;
    }
    bool data_sized_by_count = kind == PM_COLL_BCAST || kind == PM_COLL_GATHERV
                               || kind == PM_COLL_ALLGATHERV || s_kind_reduces (kind);
    if (sends_data && data_sized_by_count && zmq_msg_size (&frames[0]) != bytes) {
        s_round_error (round, PM_EPROTO, "rank %d sent %zu bytes for %lld elements", rank,
                       zmq_msg_size (&frames[0]), (long long) count);
        return false;
    }
    return true;
}

/* Compares a contribution with the round's signature. */
static void
s_check_signature (pm_group_t *self, int rank, const pm_msg_t *msg)
{
    pm_round_t *round = &self->round;
    s_signature_t sig = s_signature_of (msg);
    int kind = sig.kind, dtype = sig.dtype, op = sig.op, root = sig.root;
    int64_t count = sig.count;
    if (round->arrived == 0) {
        round->kind = kind;
        round->dtype = dtype;
        round->op = op;
        round->root = root;
        round->count = count;
        round->first_rank = rank;
        return;
    }
    bool same = kind == round->kind
                && (kind == PM_COLL_BARRIER || dtype == round->dtype)
                && (!s_kind_reduces (kind) || op == round->op)
                && (!s_kind_rooted (kind) || root == round->root);
    if (!same) {
        s_round_error (round, PM_EMISMATCH,
                       "mismatched collectives at step %llu: rank %d called %s (%s, root %d) "
                       "but rank %d called %s (%s, root %d)",
                       (unsigned long long) self->seq, round->first_rank,
                       s_kind_name (round->kind), pm_dtype_name (round->dtype), round->root,
                       rank, s_kind_name (kind), pm_dtype_name (dtype), root);
        return;
    }
    if ((kind == PM_COLL_BCAST || s_kind_reduces (kind)) && count != round->count)
        s_round_error (round, PM_EINVAL,
                       "%s with mismatched sizes: rank %d passed %lld elements, rank %d passed "
                       "%lld",
                       s_kind_name (kind), round->first_rank, (long long) round->count, rank,
                       (long long) count);
}

static void
s_take_counts (pm_group_t *self, int rank, zmq_msg_t *frame)
{
    pm_round_t *round = &self->round;
    size_t bytes = (size_t) self->size * 8;
    if (!round->has_counts) {
        round->counts = malloc (bytes);
        if (!round->counts) {
            s_round_error (round, PM_ENOMEM, "coordinator out of memory");
            return;
        }
        memcpy (round->counts, zmq_msg_data (frame), bytes);
        round->has_counts = true;
    } else if (memcmp (round->counts, zmq_msg_data (frame), bytes) != 0) {
        s_round_error (round, PM_EINVAL,
                       "%s with mismatched sizes: rank %d passed counts that differ from rank "
                       "%d's",
                       s_kind_name (round->kind), rank, round->first_rank);
    }
}

/* Folds every contribution that is next in rank order into the accumulator. */
static void
s_fold (pm_group_t *self)
{
    pm_round_t *round = &self->round;
    while (round->next_fold < self->size && round->has_data[round->next_fold]) {
        zmq_msg_t *frame = &round->data[round->next_fold];
        size_t size = zmq_msg_size (frame);
        if (!round->acc) {
            round->acc = malloc (size ? size : 1);
            if (!round->acc) {
                s_round_error (round, PM_ENOMEM, "coordinator out of memory");
                return;
            }
            memcpy (round->acc, zmq_msg_data (frame), size);
            round->acc_size = size;
        } else if (!round->error) {
            pm_reduce_into (round->acc, zmq_msg_data (frame), round->acc_size / pm_dtype_size (round->dtype),
                            (pm_dtype_t) round->dtype, (pm_op_t) round->op);
        }
        zmq_msg_close (frame);
        round->has_data[round->next_fold] = 0;
        round->next_fold++;
    }
}

static void
s_free_buffer (void *data, void *hint)
{
    free (data);
}

/* The last contribution arrived: answer everyone. */
static void
s_complete (pm_group_t *self, void *router)
{
    pm_round_t *round = &self->round;
    uint64_t seq = self->seq;
    int n = self->size;
    size_t dsize = pm_dtype_size ((pm_dtype_t) round->dtype);

    /* Size checks that need every contribution. */
    if (!round->error && round->kind == PM_COLL_GATHERV) {
        for (int r = 0; r < n; r++)
            if (round->counts[r] * dsize != zmq_msg_size (&round->data[r])) {
                s_round_error (round, PM_EINVAL, PM_GATHER_MISMATCH_TEXT
                               " (root expects %llu elements from rank %d, it sent %zu)",
                               (unsigned long long) round->counts[r], r,
                               zmq_msg_size (&round->data[r]) / dsize);
                break;
            }
    }
    if (!round->error && round->kind == PM_COLL_ALLGATHERV && round->has_counts) {
        for (int r = 0; r < n; r++)
            if (round->counts[r] * dsize != zmq_msg_size (&round->data[r])) {
                s_round_error (round, PM_EINVAL,
                               "Gathering arrays to all ranks cannot be done with mismatched "
                               "sizes (counts say %llu elements from rank %d, it sent %zu)",
                               (unsigned long long) round->counts[r], r,
                               zmq_msg_size (&round->data[r]) / dsize);
                break;
            }
    }
    if (!round->error && round->kind == PM_COLL_SCATTERV) {
        uint64_t total = 0;
        for (int r = 0; r < n; r++) {
            total += round->counts[r];
            if (round->counts[r] != (uint64_t) round->recv_count[r]) {
                s_round_error (round, PM_EINVAL,
                               "Scattering arrays cannot be done with mismatched sizes (root "
                               "sends %llu elements to rank %d, it expects %lld)",
                               (unsigned long long) round->counts[r], r,
                               (long long) round->recv_count[r]);
                break;
            }
        }
        if (!round->error && total * dsize != zmq_msg_size (&round->data[round->root]))
            s_round_error (round, PM_EINVAL,
                           "Scattering arrays cannot be done with mismatched sizes (counts sum "
                           "to %llu elements, root sent %zu)",
                           (unsigned long long) total,
                           zmq_msg_size (&round->data[round->root]) / dsize);
    }

    if (round->error) {
        pm_debug ("PM2102", "group '%s' step %llu: %s", self->name, (unsigned long long) seq,
                  round->error_text);
        for (int r = 0; r < n; r++)
            if (self->members[r])
                s_send_status (router, self->members[r], seq, round->error, round->error_text);
        s_round_reset (self);
        self->seq++;
        return;
    }

    pm_msg_t ok;
    pm_msg_init (&ok, PM_MSG_RESULT, seq);
    pm_msg_set (&ok, PM_KEY_CODE, 0);
    switch (round->kind) {
    case PM_COLL_BARRIER:
        for (int r = 0; r < n; r++)
            pm_session_send (router, self->members[r], &ok, NULL, 0);
        break;
    case PM_COLL_BCAST:
    case PM_COLL_BCAST_BLOB:
        /* One buffer, shared by reference with every peer. */
        for (int r = 0; r < n; r++) {
            if (r == round->root) {
                pm_session_send (router, self->members[r], &ok, NULL, 0);
                continue;
            }
            zmq_msg_t copy;
            zmq_msg_init (&copy);
            zmq_msg_copy (&copy, &round->data[round->root]);
            pm_session_send (router, self->members[r], &ok, &copy, 1);
        }
        break;
    case PM_COLL_SCATTERV: {
        const char *base = zmq_msg_data (&round->data[round->root]);
        size_t offset = 0;
        for (int r = 0; r < n; r++) {
            size_t bytes = (size_t) round->counts[r] * dsize;
            zmq_msg_t part;
            if (zmq_msg_init_size (&part, bytes) != 0) {
                pm_session_send (router, self->members[r], &ok, NULL, 0);
                continue;
            }
            memcpy (zmq_msg_data (&part), base + offset, bytes);
            offset += bytes;
            pm_session_send (router, self->members[r], &ok, &part, 1);
        }
        break;
    }
    case PM_COLL_GATHERV:
        for (int r = 0; r < n; r++) {
            if (r != round->root)
                pm_session_send (router, self->members[r], &ok, NULL, 0);
        }
        /* The root gets each rank's frame as it came: assembled once, at the root. */
        pm_session_send (router, self->members[round->root], &ok, round->data, (size_t) n);
        memset (round->has_data, 0, (size_t) n);
        break;
    case PM_COLL_ALLGATHERV: {
        zmq_msg_t *parts = calloc ((size_t) n, sizeof *parts);
        if (!parts) {
            for (int r = 0; r < n; r++)
                s_send_status (router, self->members[r], seq, PM_ENOMEM,
                               "coordinator out of memory");
            break;
        }
        for (int r = 0; r < n; r++) {
            for (int q = 0; q < n; q++) {
                zmq_msg_init (&parts[q]);
                zmq_msg_copy (&parts[q], &round->data[q]);
            }
            pm_session_send (router, self->members[r], &ok, parts, (size_t) n);
        }
        free (parts);
        break;
    }
    case PM_COLL_REDUCE:
    case PM_COLL_ALLREDUCE: {
        zmq_msg_t result;
        size_t size = round->acc_size;
        if (zmq_msg_init_data (&result, round->acc, size, s_free_buffer, NULL) != 0) {
            for (int r = 0; r < n; r++)
                s_send_status (router, self->members[r], seq, PM_ENOMEM,
                               "coordinator out of memory");
            break;
        }
        round->acc = NULL; /* owned by the message now */
        for (int r = 0; r < n; r++) {
            if (round->kind == PM_COLL_REDUCE && r != round->root) {
                pm_session_send (router, self->members[r], &ok, NULL, 0);
                continue;
            }
            zmq_msg_t copy;
            zmq_msg_init (&copy);
            zmq_msg_copy (&copy, &result);
            pm_session_send (router, self->members[r], &ok, &copy, 1);
        }
        zmq_msg_close (&result);
        break;
    }
    }
    s_round_reset (self);
    self->seq++;
}

void
pm_group_contribute (pm_group_t *self, void *router, pm_session_t *session,
                     const pm_msg_t *msg, zmq_msg_t *frames, size_t nframes)
{
    pm_round_t *round = &self->round;
    int rank = session->rank;
    size_t taken = 0; /* frames moved into the round */

    if (self->failed) {
        s_send_status (router, session, msg->seq, self->fail_code, self->fail_text);
        goto done;
    }
    if (msg->seq != self->seq || round->contributed[rank]) {
        /* Out of step: a client bug, answered to that rank alone. */
        char text[PM_TEXT_MAX];
        snprintf (text, sizeof text, "collective out of step: group '%s' is at step %llu, rank %d sent step %llu%s",
                  self->name, (unsigned long long) self->seq, rank,
                  (unsigned long long) msg->seq, round->contributed[rank] ? " twice" : "");
        pm_warn ("PM2103", "%s", text);
        s_send_status (router, session, msg->seq, PM_EPROTO, text);
        goto done;
    }
    bool valid;
    if (pm_msg_get (msg, PM_KEY_CODE, 0) < 0) {
        /* The rank found its own arguments bad; it still takes part in the
           round so that every rank gets the error instead of hanging.  */
        s_round_error (round, (int) pm_msg_get (msg, PM_KEY_CODE, 0), "rank %d: %s", rank,
                       msg->text[0] ? msg->text : "invalid arguments");
        valid = false;
        if (round->arrived == 0)
            s_check_signature (self, rank, msg);
    } else {
        valid = s_validate (self, rank, msg, frames, nframes);
        s_check_signature (self, rank, msg);
    }
    round->contributed[rank] = 1;
    round->arrived++;
    if (valid && !round->error) {
        int kind = (int) pm_msg_get (msg, PM_KEY_KIND, 0);
        bool sends_counts = (kind == PM_COLL_SCATTERV || kind == PM_COLL_GATHERV
                             || kind == PM_COLL_ALLGATHERV)
                            && nframes == 2;
        if (kind == PM_COLL_ALLGATHERV && round->arrived > 1 && sends_counts != round->has_counts)
            s_round_error (round, PM_EINVAL, "allgather: some ranks passed counts, others not");
        if (sends_counts)
            s_take_counts (self, rank, &frames[1]);
        if (kind == PM_COLL_SCATTERV)
            round->recv_count[rank] = pm_msg_get (msg, PM_KEY_COUNT, 0);
        if (nframes >= 1) {
            zmq_msg_init (&round->data[rank]);
            zmq_msg_move (&round->data[rank], &frames[0]);
            round->has_data[rank] = 1;
            taken = 1;
            if (s_kind_reduces (kind))
                s_fold (self);
        }
    }
    if (round->arrived == self->size)
        s_complete (self, router);
done:
    for (size_t i = taken; i < nframes; i++)
        zmq_msg_close (&frames[i]);
}
