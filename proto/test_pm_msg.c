/*  test_pm_msg.c — codec tests: round trips, golden frames of protocol
    version 1, and malformed input (every one must be refused cleanly).   */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pm.h"
#include "pm_msg.h"

#ifndef PM_GOLDEN_DIR
#error "PM_GOLDEN_DIR must name proto/golden/v1"
#endif

static size_t
s_read_golden (const char *name, char *buf, size_t size)
{
    char path[512];
    snprintf (path, sizeof path, "%s/%s", PM_GOLDEN_DIR, name);
    FILE *f = fopen (path, "rb");
    cr_assert_not_null (f, "golden frame %s missing", path);
    size_t n = fread (buf, 1, size, f);
    fclose (f);
    return n;
}

static void
s_hello (pm_msg_t *msg)
{
    pm_msg_init (msg, PM_MSG_HELLO, 0);
    pm_msg_set_str (msg, PM_KEY_GROUP, "sweep-42");
    pm_msg_set (msg, PM_KEY_RANK, 3);
    pm_msg_set (msg, PM_KEY_SIZE, 8);
    pm_msg_set (msg, PM_KEY_PID, 4242);
    pm_msg_set (msg, PM_KEY_STARTTIME, 123456789);
    pm_msg_set_str (msg, PM_KEY_BOOT_ID, "0f6a2c1e-3b7d-4e59-9a1c-5d8e7f6a2b3c");
    pm_msg_set_str (msg, PM_KEY_HOST, "node017");
}

static void
s_collective (pm_msg_t *msg)
{
    pm_msg_init (msg, PM_MSG_COLLECTIVE, 17);
    pm_msg_set (msg, PM_KEY_KIND, PM_COLL_ALLREDUCE);
    pm_msg_set (msg, PM_KEY_DTYPE, PM_FLOAT64);
    pm_msg_set (msg, PM_KEY_OP, PM_SUM);
    pm_msg_set (msg, PM_KEY_ROOT, 0);
    pm_msg_set (msg, PM_KEY_COUNT, 1);
}

static void
s_result_error (pm_msg_t *msg)
{
    pm_msg_init (msg, PM_MSG_RESULT, 17);
    pm_msg_set (msg, PM_KEY_CODE, PM_EPEERLOST);
    pm_msg_set_str (msg, PM_KEY_TEXT, "rank 2 of group 'g' (pid 7 on h) died");
}

static void
s_assert_same (const pm_msg_t *a, const pm_msg_t *b)
{
    cr_assert_eq (a->type, b->type);
    cr_assert_eq (a->seq, b->seq);
    cr_assert_eq (a->present, b->present);
    for (int key = 1; key < PM_KEY_MAX; key++)
        cr_assert_eq (a->num[key], b->num[key], "key %d", key);
    cr_assert_str_eq (a->group, b->group);
    cr_assert_str_eq (a->boot_id, b->boot_id);
    cr_assert_str_eq (a->host, b->host);
    cr_assert_str_eq (a->text, b->text);
}

Test (codec, round_trip_every_type, .timeout = 10)
{
    void (*makers[]) (pm_msg_t *) = {s_hello, s_collective, s_result_error};
    for (size_t i = 0; i < 3; i++) {
        pm_msg_t msg, back;
        makers[i](&msg);
        char buf[PM_HEADER_MAX], why[160];
        size_t n = pm_msg_encode (&msg, buf, sizeof buf);
        cr_assert_gt (n, 0);
        cr_assert_eq (pm_msg_decode (&back, buf, n, why, sizeof why), 0, "%s", why);
        s_assert_same (&msg, &back);
    }
}

Test (codec, negative_and_large_integers, .timeout = 10)
{
    pm_msg_t msg, back;
    pm_msg_init (&msg, PM_MSG_RESULT, UINT64_MAX);
    pm_msg_set (&msg, PM_KEY_CODE, -11);
    pm_msg_set (&msg, PM_KEY_COUNT, INT64_MAX);
    char buf[PM_HEADER_MAX], why[160];
    size_t n = pm_msg_encode (&msg, buf, sizeof buf);
    cr_assert_eq (pm_msg_decode (&back, buf, n, why, sizeof why), 0, "%s", why);
    cr_assert_eq (back.seq, UINT64_MAX);
    cr_assert_eq (pm_msg_get (&back, PM_KEY_CODE, 0), -11);
    cr_assert_eq (pm_msg_get (&back, PM_KEY_COUNT, 0), INT64_MAX);
}

Test (codec, golden_frames_v1, .timeout = 10)
{
    struct {
        const char *file;
        void (*make) (pm_msg_t *);
    } cases[] = {{"hello.bin", s_hello},
                 {"collective.bin", s_collective},
                 {"result_error.bin", s_result_error}};
    for (size_t i = 0; i < 3; i++) {
        char golden[PM_HEADER_MAX], buf[PM_HEADER_MAX], why[160];
        size_t golden_size = s_read_golden (cases[i].file, golden, sizeof golden);
        pm_msg_t msg, back;
        cases[i].make (&msg);
        size_t n = pm_msg_encode (&msg, buf, sizeof buf);
        /* Encoding must not drift: a change here is a new protocol version. */
        cr_assert_eq (n, golden_size, "%s: %zu bytes, golden %zu", cases[i].file, n, golden_size);
        cr_assert_eq (memcmp (buf, golden, n), 0, "%s differs from its golden frame",
                      cases[i].file);
        cr_assert_eq (pm_msg_decode (&back, golden, golden_size, why, sizeof why), 0, "%s", why);
        s_assert_same (&msg, &back);
    }
}

/* Every strict prefix of a valid header is refused. */
Test (codec, truncated_frames_are_refused, .timeout = 10)
{
    pm_msg_t msg, back;
    s_hello (&msg);
    char buf[PM_HEADER_MAX], why[160];
    size_t n = pm_msg_encode (&msg, buf, sizeof buf);
    for (size_t len = 0; len < n; len++)
        cr_assert_eq (pm_msg_decode (&back, buf, len, why, sizeof why), PM_EPROTO,
                      "prefix of %zu bytes accepted", len);
    /* and trailing garbage too */
    buf[n] = 0;
    cr_assert_eq (pm_msg_decode (&back, buf, n + 1, why, sizeof why), PM_EPROTO);
}

/* Build [sig, version, type, seq, body] with chosen values. */
static size_t
s_pack_header (char *out, size_t size, uint64_t sig, uint64_t version, uint64_t type,
               void (*body) (msgpack_packer *))
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 5);
    msgpack_pack_uint64 (&pk, sig);
    msgpack_pack_uint64 (&pk, version);
    msgpack_pack_uint64 (&pk, type);
    msgpack_pack_uint64 (&pk, 1);
    if (body)
        body (&pk);
    else
        msgpack_pack_map (&pk, 0);
    size_t n = sbuf.size < size ? sbuf.size : size;
    memcpy (out, sbuf.data, n);
    msgpack_sbuffer_destroy (&sbuf);
    return n;
}

static void
s_body_string_as_int (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    msgpack_pack_uint8 (pk, PM_KEY_RANK);
    msgpack_pack_str (pk, 3);
    msgpack_pack_str_body (pk, "abc", 3);
}

static void
s_body_int_as_string (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    msgpack_pack_uint8 (pk, PM_KEY_GROUP);
    msgpack_pack_int (pk, 5);
}

static void
s_body_long_group (msgpack_packer *pk)
{
    char name[PM_GROUP_MAX + 10];
    memset (name, 'g', sizeof name);
    msgpack_pack_map (pk, 1);
    msgpack_pack_uint8 (pk, PM_KEY_GROUP);
    msgpack_pack_str (pk, sizeof name);
    msgpack_pack_str_body (pk, name, sizeof name);
}

static void
s_body_duplicate (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 2);
    msgpack_pack_uint8 (pk, PM_KEY_RANK);
    msgpack_pack_int (pk, 1);
    msgpack_pack_uint8 (pk, PM_KEY_RANK);
    msgpack_pack_int (pk, 2);
}

static void
s_body_nested_unknown (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    msgpack_pack_uint8 (pk, 200);
    msgpack_pack_array (pk, 1);
    msgpack_pack_int (pk, 1);
}

static void
s_body_nul_in_string (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 1);
    msgpack_pack_uint8 (pk, PM_KEY_GROUP);
    msgpack_pack_str (pk, 3);
    msgpack_pack_str_body (pk, "a\0b", 3);
}

static void
s_body_not_a_map (msgpack_packer *pk)
{
    msgpack_pack_array (pk, 0);
}

static void
s_body_unknown_scalar (msgpack_packer *pk)
{
    msgpack_pack_map (pk, 2);
    msgpack_pack_uint8 (pk, 99);
    msgpack_pack_int (pk, 1);
    msgpack_pack_uint8 (pk, PM_KEY_RANK);
    msgpack_pack_int (pk, 4);
}

Test (codec, malformed_headers_are_refused, .timeout = 10)
{
    struct {
        const char *what;
        uint64_t sig, version, type;
        void (*body) (msgpack_packer *);
    } cases[] = {
        {"wrong signature", 0xBEEF, 1, PM_MSG_HELLO, NULL},
        {"version 99", PM_PROTO_SIGNATURE, 99, PM_MSG_HELLO, NULL},
        {"version 0", PM_PROTO_SIGNATURE, 0, PM_MSG_HELLO, NULL},
        {"type 0", PM_PROTO_SIGNATURE, 1, 0, NULL},
        {"type 77", PM_PROTO_SIGNATURE, 1, 77, NULL},
        {"string where an int belongs", PM_PROTO_SIGNATURE, 1, PM_MSG_HELLO, s_body_string_as_int},
        {"int where a string belongs", PM_PROTO_SIGNATURE, 1, PM_MSG_HELLO, s_body_int_as_string},
        {"group name too long", PM_PROTO_SIGNATURE, 1, PM_MSG_HELLO, s_body_long_group},
        {"duplicate key", PM_PROTO_SIGNATURE, 1, PM_MSG_HELLO, s_body_duplicate},
        {"unknown key with a container", PM_PROTO_SIGNATURE, 1, PM_MSG_HELLO, s_body_nested_unknown},
        {"NUL inside a string", PM_PROTO_SIGNATURE, 1, PM_MSG_HELLO, s_body_nul_in_string},
        {"body not a map", PM_PROTO_SIGNATURE, 1, PM_MSG_HELLO, s_body_not_a_map},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[PM_HEADER_MAX * 2], why[160] = "";
        size_t n = s_pack_header (buf, sizeof buf, cases[i].sig, cases[i].version, cases[i].type,
                                  cases[i].body);
        pm_msg_t back;
        cr_assert_eq (pm_msg_decode (&back, buf, n, why, sizeof why), PM_EPROTO, "%s accepted",
                      cases[i].what);
        cr_assert_neq (why[0], '\0', "%s: no reason given", cases[i].what);
    }
    /* the version is named in the reason, so the peer can be told */
    char buf[256], why[160];
    size_t n = s_pack_header (buf, sizeof buf, PM_PROTO_SIGNATURE, 99, PM_MSG_HELLO, NULL);
    pm_msg_t back;
    pm_msg_decode (&back, buf, n, why, sizeof why);
    cr_assert (strstr (why, "99") != NULL, "reason: %s", why);
}

/* Containers that claim more elements than the frame holds are refused
   before msgpack-c would allocate for them. */
Test (codec, lying_container_counts_are_refused, .timeout = 10)
{
    static const uint8_t huge_map[] = {0x95, 0xcd, 0xa7, 0xb1, 0x01, 0x01, 0x01,
                                       0xdf, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t huge_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t huge_string[] = {0x95, 0xcd, 0xa7, 0xb1, 0x01, 0x01, 0x01,
                                          0x81, 0x01, 0xdb, 0x7f, 0xff, 0xff, 0xff};
    uint8_t deep[64];
    for (size_t i = 0; i < sizeof deep; i++)
        deep[i] = 0x91; /* [[[[...]]]] */
    struct {
        const uint8_t *data;
        size_t size;
    } cases[] = {{huge_map, sizeof huge_map},
                 {huge_array, sizeof huge_array},
                 {huge_string, sizeof huge_string},
                 {deep, sizeof deep}};
    for (size_t i = 0; i < 4; i++) {
        pm_msg_t back;
        char why[160];
        cr_assert_eq (pm_msg_decode (&back, cases[i].data, cases[i].size, why, sizeof why),
                      PM_EPROTO, "case %zu accepted", i);
    }
}

Test (codec, unknown_scalar_keys_are_skipped, .timeout = 10)
{
    char buf[256], why[160];
    size_t n = s_pack_header (buf, sizeof buf, PM_PROTO_SIGNATURE, 1, PM_MSG_HELLO,
                              s_body_unknown_scalar);
    pm_msg_t back;
    cr_assert_eq (pm_msg_decode (&back, buf, n, why, sizeof why), 0, "%s", why);
    cr_assert_eq (pm_msg_get (&back, PM_KEY_RANK, -1), 4);
}

Test (codec, random_bytes_never_crash, .timeout = 30)
{
    /* Fixed seed: the same inputs every run; the sanitizer build checks memory. */
    srand (12345);
    char buf[512], why[160];
    for (int i = 0; i < 20000; i++) {
        size_t n = (size_t) (rand () % (int) sizeof buf);
        for (size_t k = 0; k < n; k++)
            buf[k] = (char) rand ();
        pm_msg_t back;
        int rc = pm_msg_decode (&back, buf, n, why, sizeof why);
        cr_assert (rc == 0 || rc == PM_EPROTO);
    }
}

Test (codec, oversized_header_is_refused, .timeout = 10)
{
    static char big[PM_HEADER_MAX + 1];
    char why[160];
    pm_msg_t back;
    cr_assert_eq (pm_msg_decode (&back, big, sizeof big, why, sizeof why), PM_EPROTO);
}

Test (codec, encode_refuses_a_small_buffer, .timeout = 10)
{
    pm_msg_t msg;
    s_hello (&msg);
    char buf[16];
    cr_assert_eq (pm_msg_encode (&msg, buf, sizeof buf), 0);
}

Test (errors, every_code_has_a_distinct_text, .timeout = 10)
{
    for (int a = 0; a < PM_ERROR_COUNT; a++) {
        cr_assert_neq (strcmp (pm_strerror (-a), pm_strerror (-999)), 0, "code %d", -a);
        for (int b = a + 1; b < PM_ERROR_COUNT; b++)
            cr_assert_neq (strcmp (pm_strerror (-a), pm_strerror (-b)), 0);
    }
}
