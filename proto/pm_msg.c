/*  pm_msg.c — encode and decode pm protocol headers (msgpack) and send
    header + raw data frames.  Decoding never trusts its input: every length,
    type and key is checked, and the whole frame must be consumed.          */
#include "pm_msg.h"

#include <errno.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>

#include "pm.h"

static bool
s_key_is_string (int key)
{
    return key == PM_KEY_GROUP || key == PM_KEY_BOOT_ID || key == PM_KEY_HOST
           || key == PM_KEY_TEXT;
}

static char *
s_string_slot (pm_msg_t *msg, int key, size_t *limit)
{
    switch (key) {
    case PM_KEY_GROUP: *limit = PM_GROUP_MAX; return msg->group;
    case PM_KEY_BOOT_ID: *limit = PM_BOOT_ID_MAX; return msg->boot_id;
    case PM_KEY_HOST: *limit = PM_HOST_MAX; return msg->host;
    case PM_KEY_TEXT: *limit = PM_TEXT_MAX; return msg->text;
    default: *limit = 0; return NULL;
    }
}

void
pm_msg_init (pm_msg_t *msg, pm_msg_type_t type, uint64_t seq)
{
    memset (msg, 0, sizeof *msg);
    msg->type = type;
    msg->seq = seq;
}

bool
pm_msg_has (const pm_msg_t *msg, pm_msg_key_t key)
{
    return key > 0 && key < PM_KEY_MAX && (msg->present & ((uint64_t) 1 << key));
}

int64_t
pm_msg_get (const pm_msg_t *msg, pm_msg_key_t key, int64_t fallback)
{
    return pm_msg_has (msg, key) && !s_key_is_string (key) ? msg->num[key] : fallback;
}

void
pm_msg_set (pm_msg_t *msg, pm_msg_key_t key, int64_t value)
{
    if (key <= 0 || key >= PM_KEY_MAX || s_key_is_string (key))
        return;
    msg->num[key] = value;
    msg->present |= (uint64_t) 1 << key;
}

void
pm_msg_set_str (pm_msg_t *msg, pm_msg_key_t key, const char *text)
{
    size_t limit;
    char *slot = s_string_slot (msg, key, &limit);
    if (!slot || !text)
        return;
    snprintf (slot, limit + 1, "%s", text);
    msg->present |= (uint64_t) 1 << key;
}

const char *
pm_msg_type_name (uint32_t type)
{
    static const char *names[] = {"?",          "HELLO",        "WELCOME",     "HEARTBEAT",
                                  "COLLECTIVE", "RESULT",       "ERROR",       "BYE",
                                  "STATUS",     "STATUS_REPLY", "SWEEP_OPEN",  "TASK_REQUEST",
                                  "TASK",       "TASK_DONE",    "SWEEP_GATHER", "SWEEP_RESULTS",
                                  "WORKER_HELLO", "LAUNCH_REQUEST", "LAUNCH",   "LAUNCH_REPLY",
                                  "OUTPUT",     "RANK_EXIT",    "KILL",         "ROWS_DONE",
                                  "RANK_LOST"};
    return type <= PM_MSG_TYPE_MAX ? names[type] : "?";
}

/* A msgpack writer into a fixed buffer: overflow makes the write fail. */
typedef struct {
    char *buf;
    size_t size, used;
} s_fixed_buffer_t;

static int
s_fixed_write (void *data, const char *bytes, size_t len)
{
    s_fixed_buffer_t *out = data;
    if (len > out->size - out->used)
        return -1;
    memcpy (out->buf + out->used, bytes, len);
    out->used += len;
    return 0;
}

size_t
pm_msg_encode (const pm_msg_t *msg, char *buf, size_t size)
{
    s_fixed_buffer_t out = {buf, size, 0};
    msgpack_packer pk;
    msgpack_packer_init (&pk, &out, s_fixed_write);
    int fields = 0;
    for (int key = 1; key < PM_KEY_MAX; key++)
        if (msg->present & ((uint64_t) 1 << key))
            fields++;
    int rc = msgpack_pack_array (&pk, 5);
    rc |= msgpack_pack_uint16 (&pk, PM_PROTO_SIGNATURE);
    rc |= msgpack_pack_uint8 (&pk, PM_PROTO_VERSION);
    rc |= msgpack_pack_uint32 (&pk, msg->type);
    rc |= msgpack_pack_uint64 (&pk, msg->seq);
    rc |= msgpack_pack_map (&pk, (size_t) fields);
    for (int key = 1; key < PM_KEY_MAX && rc == 0; key++) {
        if (!(msg->present & ((uint64_t) 1 << key)))
            continue;
        rc |= msgpack_pack_uint8 (&pk, (uint8_t) key);
        if (s_key_is_string (key)) {
            size_t limit;
            const char *text = s_string_slot ((pm_msg_t *) msg, key, &limit);
            size_t len = strnlen (text, limit);
            rc |= msgpack_pack_str (&pk, len);
            rc |= msgpack_pack_str_body (&pk, text, len);
        } else {
            rc |= msgpack_pack_int64 (&pk, msg->num[key]);
        }
    }
    return rc == 0 ? out.used : 0;
}

#define MSGPACK_DEPTH_MAX 4 /* header array > body map > value: deeper is malformed */

/* Reads a big-endian length of width bytes at data[*offset]. */
static bool
s_read_length (const uint8_t *data, size_t size, size_t *offset, int width, uint64_t *length)
{
    if (size - *offset < (size_t) width)
        return false;
    uint64_t value = 0;
    for (int i = 0; i < width; i++)
        value = (value << 8) | data[(*offset)++];
    *length = value;
    return true;
}

/* Walks one msgpack object without allocating, refusing what msgpack-c
   would otherwise trust: a container that declares more elements than
   there are bytes left (msgpack-c allocates for the declared count before
   reading one), too deep a nesting, and the reserved byte 0xc1.  The walk
   is bounded by the frame size: every element consumes at least one byte. */
static bool
s_msgpack_sane (const uint8_t *data, size_t size, size_t *offset, int depth)
{
    if (depth > MSGPACK_DEPTH_MAX || *offset >= size)
        return false;
    uint8_t byte = data[(*offset)++];
    uint64_t skip = 0, elements = 0;
    if (byte <= 0x7f || byte >= 0xe0 || byte == 0xc0 || byte == 0xc2 || byte == 0xc3)
        return true; /* fixint, nil, bool */
    if (byte >= 0x80 && byte <= 0x8f)
        elements = 2 * (uint64_t) (byte & 0x0f);
    else if (byte >= 0x90 && byte <= 0x9f)
        elements = byte & 0x0f;
    else if (byte >= 0xa0 && byte <= 0xbf)
        skip = byte & 0x1f;
    else {
        switch (byte) {
        case 0xc4: case 0xd9: if (!s_read_length (data, size, offset, 1, &skip)) return false; break;
        case 0xc5: case 0xda: if (!s_read_length (data, size, offset, 2, &skip)) return false; break;
        case 0xc6: case 0xdb: if (!s_read_length (data, size, offset, 4, &skip)) return false; break;
        case 0xc7: if (!s_read_length (data, size, offset, 1, &skip)) return false; skip++; break;
        case 0xc8: if (!s_read_length (data, size, offset, 2, &skip)) return false; skip++; break;
        case 0xc9: if (!s_read_length (data, size, offset, 4, &skip)) return false; skip++; break;
        case 0xca: case 0xce: case 0xd2: skip = 4; break;
        case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
        case 0xcc: case 0xd0: skip = 1; break;
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xd4: skip = 2; break;
        case 0xd5: skip = 3; break;
        case 0xd6: skip = 5; break;
        case 0xd7: skip = 9; break;
        case 0xd8: skip = 17; break;
        case 0xdc: if (!s_read_length (data, size, offset, 2, &elements)) return false; break;
        case 0xdd: if (!s_read_length (data, size, offset, 4, &elements)) return false; break;
        case 0xde:
            if (!s_read_length (data, size, offset, 2, &elements)) return false;
            elements *= 2;
            break;
        case 0xdf:
            if (!s_read_length (data, size, offset, 4, &elements)) return false;
            elements *= 2;
            break;
        default: return false; /* 0xc1: never used */
        }
    }
    if (skip > size - *offset || elements > size - *offset)
        return false;
    *offset += (size_t) skip;
    for (uint64_t i = 0; i < elements; i++)
        if (!s_msgpack_sane (data, size, offset, depth + 1))
            return false;
    return true;
}

static bool
s_as_uint (const msgpack_object *obj, uint64_t *value)
{
    if (obj->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *value = obj->via.u64;
    return true;
}

int
pm_msg_decode (pm_msg_t *msg, const void *data, size_t size, char *why, size_t why_size)
{
    memset (msg, 0, sizeof *msg);
    const char *reason = NULL;
    if (size == 0 || size > PM_HEADER_MAX) {
        snprintf (why, why_size, "header frame of %zu bytes (limit %d)", size,
                  PM_HEADER_MAX);
        return PM_EPROTO;
    }
    size_t scanned = 0;
    if (!s_msgpack_sane (data, size, &scanned, 1) || scanned != size) {
        snprintf (why, why_size, "not one well-formed msgpack object within %zu bytes", size);
        return PM_EPROTO;
    }
    msgpack_unpacked result;
    msgpack_unpacked_init (&result);
    size_t offset = 0;
    msgpack_unpack_return ret = msgpack_unpack_next (&result, data, size, &offset);
    if (ret != MSGPACK_UNPACK_SUCCESS) {
        reason = "not a complete msgpack object";
        goto malformed;
    }
    if (offset != size) {
        reason = "trailing bytes after the header";
        goto malformed;
    }
    const msgpack_object *root = &result.data;
    if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size != 5) {
        reason = "header is not an array of 5";
        goto malformed;
    }
    const msgpack_object *item = root->via.array.ptr;
    uint64_t signature, version, type, seq;
    if (!s_as_uint (&item[0], &signature) || signature != PM_PROTO_SIGNATURE) {
        reason = "bad signature";
        goto malformed;
    }
    if (!s_as_uint (&item[1], &version) || version != PM_PROTO_VERSION) {
        snprintf (why, why_size, "unsupported protocol version %llu (this side speaks %d)",
                  item[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER
                      ? (unsigned long long) item[1].via.u64
                      : 0ULL,
                  PM_PROTO_VERSION);
        msgpack_unpacked_destroy (&result);
        return PM_EPROTO;
    }
    if (!s_as_uint (&item[2], &type) || type < 1 || type > PM_MSG_TYPE_MAX) {
        reason = "unknown message type";
        goto malformed;
    }
    if (!s_as_uint (&item[3], &seq)) {
        reason = "sequence is not an unsigned integer";
        goto malformed;
    }
    msg->type = (uint32_t) type;
    msg->seq = seq;
    const msgpack_object *body = &item[4];
    if (body->type != MSGPACK_OBJECT_MAP) {
        reason = "body is not a map";
        goto malformed;
    }
    for (uint32_t i = 0; i < body->via.map.size; i++) {
        const msgpack_object_kv *kv = &body->via.map.ptr[i];
        uint64_t key;
        if (!s_as_uint (&kv->key, &key)) {
            reason = "body key is not an unsigned integer";
            goto malformed;
        }
        if (key == 0 || key >= PM_KEY_MAX) {
            /* Unknown keys from a newer minor revision are skipped, but only
               scalar ones: nested containers are refused outright.      */
            if (kv->val.type == MSGPACK_OBJECT_ARRAY || kv->val.type == MSGPACK_OBJECT_MAP) {
                reason = "unknown key with a container value";
                goto malformed;
            }
            continue;
        }
        if (msg->present & ((uint64_t) 1 << key)) {
            reason = "duplicate body key";
            goto malformed;
        }
        if (s_key_is_string ((int) key)) {
            size_t limit;
            char *slot = s_string_slot (msg, (int) key, &limit);
            if (kv->val.type != MSGPACK_OBJECT_STR || kv->val.via.str.size > limit) {
                reason = "string field has the wrong type or is too long";
                goto malformed;
            }
            /* Strings die with the zone and are not NUL-terminated: copy out. */
            memcpy (slot, kv->val.via.str.ptr, kv->val.via.str.size);
            slot[kv->val.via.str.size] = '\0';
            if (strlen (slot) != kv->val.via.str.size) {
                reason = "string field holds a NUL byte";
                goto malformed;
            }
        } else if (kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            if (kv->val.via.u64 > INT64_MAX) {
                reason = "integer field out of range";
                goto malformed;
            }
            msg->num[key] = (int64_t) kv->val.via.u64;
        } else if (kv->val.type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
            msg->num[key] = kv->val.via.i64;
        } else {
            reason = "integer field has the wrong type";
            goto malformed;
        }
        msg->present |= (uint64_t) 1 << key;
    }
    msgpack_unpacked_destroy (&result);
    return 0;

malformed:
    snprintf (why, why_size, "%s", reason);
    msgpack_unpacked_destroy (&result);
    return PM_EPROTO;
}

int
pm_msg_send (void *socket, const void *route, size_t route_size, const pm_msg_t *msg,
             zmq_msg_t *frames, size_t nframes, int flags)
{
    char header[PM_HEADER_MAX];
    size_t header_size = pm_msg_encode (msg, header, sizeof header);
    int rc = 0;
    size_t sent = 0;
    if (header_size == 0) {
        rc = -EMSGSIZE;
        goto done;
    }
    if (route && zmq_send (socket, route, route_size, flags | ZMQ_SNDMORE) < 0) {
        rc = -errno;
        goto done;
    }
    /* Once the first part is accepted, the rest of the message is queued
       atomically by libzmq, so later parts cannot fail with EAGAIN.    */
    if (zmq_send (socket, header, header_size, flags | (nframes ? ZMQ_SNDMORE : 0)) < 0) {
        rc = -errno;
        goto done;
    }
    for (; sent < nframes; sent++) {
        int more = sent + 1 < nframes ? ZMQ_SNDMORE : 0;
        if (zmq_msg_send (&frames[sent], socket, flags | more) < 0) {
            rc = -errno;
            break;
        }
    }
done:
    for (size_t i = sent; i < nframes; i++)
        zmq_msg_close (&frames[i]);
    return rc;
}
