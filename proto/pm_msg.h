/*  pm_msg.h — the codec of the pm wire protocol, version 1 (proto/PROTOCOL.md).

    A message is one msgpack header frame
        [signature 0xA7B1, version, type, seq, {small-uint key: value}]
    followed by zero or more raw data frames (array payloads, never msgpack).
    The header body is decoded into a flat pm_msg_t: integers in num[],
    strings in their own buffers, and a presence bit per key.             */
#ifndef PM_MSG_H_INCLUDED
#define PM_MSG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define PM_PROTO_SIGNATURE 0xA7B1
#define PM_PROTO_VERSION 1
#define PM_HEADER_MAX 4096  /* a header frame larger than this is malformed */
#define PM_GROUP_MAX 128    /* bytes of a group name */
#define PM_TEXT_MAX 512     /* bytes of an error text */
#define PM_HOST_MAX 64
#define PM_BOOT_ID_MAX 39
#define PM_DATA_FRAMES_MAX 3 /* data frames after a header, at most */

typedef enum {
    PM_MSG_HELLO = 1,
    PM_MSG_WELCOME = 2,
    PM_MSG_HEARTBEAT = 3,
    PM_MSG_COLLECTIVE = 4,
    PM_MSG_RESULT = 5,
    PM_MSG_ERROR = 6,
    PM_MSG_BYE = 7,
    PM_MSG_STATUS = 8,
    PM_MSG_STATUS_REPLY = 9,
    PM_MSG_SWEEP_OPEN = 10,    /* root → coord: the rows of a dynamic sweep */
    PM_MSG_TASK_REQUEST = 11,  /* rank → coord: give me a chunk */
    PM_MSG_TASK = 12,          /* coord → rank: a chunk (COUNT 0: the sweep is complete) */
    PM_MSG_TASK_DONE = 13,     /* rank → coord: a chunk's outputs */
    PM_MSG_SWEEP_GATHER = 14,  /* root → coord: every row's outputs, once complete */
    PM_MSG_SWEEP_RESULTS = 15, /* coord → root: the answer */
    PM_MSG_WORKER_HELLO = 16,  /* pm-worker → coord: register slots */
    PM_MSG_LAUNCH_REQUEST = 17, /* pm-run → coord: place and start ranks on workers */
    PM_MSG_LAUNCH = 18,        /* coord → pm-worker: start one rank */
    PM_MSG_LAUNCH_REPLY = 19,  /* coord → pm-run: placed, or why not */
    PM_MSG_OUTPUT = 20,        /* pm-worker → coord → pm-run: a rank's stdout/stderr bytes */
    PM_MSG_RANK_EXIT = 21,     /* pm-worker → coord → pm-run: a rank's exit status */
    PM_MSG_KILL = 22,          /* pm-run → coord → pm-worker: signal a group's ranks */
    PM_MSG_ROWS_DONE = 23,     /* coord → root: a chunk's outputs, as soon as they are in */
    PM_MSG_RANK_LOST = 24,     /* launcher → coord: a rank it started has ended badly */
    PM_MSG_TYPE_MAX = 24
} pm_msg_type_t;

/* Body keys.  Strings: GROUP, BOOT_ID, HOST, TEXT; all others integers. */
typedef enum {
    PM_KEY_GROUP = 1,
    PM_KEY_RANK = 2,
    PM_KEY_SIZE = 3,
    PM_KEY_PID = 4,
    PM_KEY_STARTTIME = 5,
    PM_KEY_BOOT_ID = 6,
    PM_KEY_HOST = 7,
    PM_KEY_SESSION = 8,
    PM_KEY_TOKEN = 9,
    PM_KEY_HB_IVL = 10,
    PM_KEY_HB_TIMEOUT = 11,
    PM_KEY_KIND = 12,
    PM_KEY_DTYPE = 13,
    PM_KEY_OP = 14,
    PM_KEY_ROOT = 15,
    PM_KEY_COUNT = 16,
    PM_KEY_CODE = 17,
    PM_KEY_TEXT = 18,
    PM_KEY_FLAGS = 19,
    PM_KEY_GROUPS = 20,
    PM_KEY_SESSIONS = 21,
    PM_KEY_DROPPED = 22,
    PM_KEY_MAX_FRAME = 23,
    PM_KEY_COLS = 24,
    PM_KEY_OUTPUTS = 25,
    PM_KEY_FIRST = 26,
    PM_KEY_ELAPSED_US = 27,
    PM_KEY_CHUNK = 28,
    PM_KEY_LOST = 29,
    PM_KEY_SLOTS = 30,
    PM_KEY_STREAM = 31,
    PM_KEY_SIGNAL = 32,
    PM_KEY_PROGRESS_MS = 33,
    PM_KEY_MAX = 34
} pm_msg_key_t;

/* HELLO flags */
#define PM_HELLO_NO_HEARTBEAT 1 /* a rank inside the coordinator's process */
/* WORKER_HELLO flags */
#define PM_WORKER_MPI 1 /* the worker is an unused process of an MPI job (GROUP, RANK, SIZE) */
/* LAUNCH flags */
#define PM_LAUNCH_MPI 1 /* the rank takes over its worker's MPI identity */
/* STATUS flags */
#define PM_STATUS_DETAIL 1 /* the reply carries a JSON frame: groups, ranks, workers */
/* SWEEP_OPEN flags */
#define PM_SWEEP_STREAM 1 /* forward every finished chunk to root (ROWS_DONE) */

/* Collective kinds (COLLECTIVE.kind). */
typedef enum {
    PM_COLL_BARRIER = 1,
    PM_COLL_BCAST = 2,      /* count elements from root */
    PM_COLL_BCAST_BLOB = 3, /* bytes from root; others do not know the size */
    PM_COLL_SCATTERV = 4,   /* root: data + counts frame; count = my recv count */
    PM_COLL_GATHERV = 5,    /* root: counts frame */
    PM_COLL_ALLGATHERV = 6, /* every rank: counts frame (may be absent for blobs) */
    PM_COLL_REDUCE = 7,
    PM_COLL_ALLREDUCE = 8,
    PM_COLL_KIND_MAX = 8
} pm_coll_kind_t;

typedef struct {
    uint32_t type;
    uint64_t seq;
    uint64_t present;            /* bit (1 << key) for each key present */
    int64_t num[PM_KEY_MAX];     /* integer values by key */
    char group[PM_GROUP_MAX + 1];
    char boot_id[PM_BOOT_ID_MAX + 1];
    char host[PM_HOST_MAX + 1];
    char text[PM_TEXT_MAX + 1];
} pm_msg_t;

void pm_msg_init (pm_msg_t *msg, pm_msg_type_t type, uint64_t seq);
bool pm_msg_has (const pm_msg_t *msg, pm_msg_key_t key);
int64_t pm_msg_get (const pm_msg_t *msg, pm_msg_key_t key, int64_t fallback);
void pm_msg_set (pm_msg_t *msg, pm_msg_key_t key, int64_t value);
/* Copies text (truncated to the key's limit). */
void pm_msg_set_str (pm_msg_t *msg, pm_msg_key_t key, const char *text);
const char *pm_msg_type_name (uint32_t type);

/* Encode the header into buf; returns its length, or 0 if it does not fit. */
size_t pm_msg_encode (const pm_msg_t *msg, char *buf, size_t size);
/* Decode a header frame.  0 on success; else PM_EPROTO and a reason in
   why (for the log).  Checks signature, then version, then everything else. */
int pm_msg_decode (pm_msg_t *msg, const void *data, size_t size, char *why, size_t why_size);

/* Send header + data frames on a ZeroMQ socket.  If route is non-NULL it is
   sent first (the peer's routing id, ROUTER side).  Data frames are always
   consumed (sent or closed): zmq_msg_copy any you keep.  flags is 0 or
   ZMQ_DONTWAIT.  0, or -errno of the failed zmq_msg_send.                 */
int pm_msg_send (void *socket, const void *route, size_t route_size, const pm_msg_t *msg,
                 zmq_msg_t *frames, size_t nframes, int flags);

#endif
