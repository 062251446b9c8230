/*  test_pmd_input.c — pmd must survive hostile input (Criterion).

    Each Test starts its own pmd (fork + exec of PMD_PATH with
    --bind tcp://127.0.0.1:* --ready-file F --max-frame 65536), finds its
    port in F, connects raw ZeroMQ DEALER sockets and sends garbage: random
    frames, empty frames, truncated headers, wrong signatures, unsupported
    versions, oversized frames, floods, valid-looking messages from a peer
    that never said HELLO, deeply nested msgpack.  After each burst pmd must
    still be alive and still serve a real group (`pm-conformance
    MultiProcessing 2 quick` with PM_ENDPOINT set must exit 0); any reply
    pmd sends must be a well-formed header; finally SIGTERM → exit 0.

    Header wire format (proto/PROTOCOL.md): frame 1 is a msgpack array
    [signature 0xA7B1, version 1, type, seq, body map with small-uint keys];
    types 1 HELLO, 2 WELCOME, 3 HEARTBEAT, 4 COLLECTIVE, 5 RESULT, 6 ERROR,
    7 BYE.                                                                   */
#include "pm.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <msgpack.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#ifndef PMD_PATH
#error "PMD_PATH must be defined (path of the pmd binary)"
#endif
#ifndef CONFORMANCE_PATH
#error "CONFORMANCE_PATH must be defined (path of pm-conformance)"
#endif

#define SIGNATURE 0xA7B1u
#define VERSION 1u
#define MAX_FRAME 65536

/* ---- helpers: time, rng ------------------------------------------------- */

static long now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms (long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep (&ts, &ts) != 0 && errno == EINTR)
        ;
}

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd (void)
{
    /* xorshift64*: deterministic, so a failure is reproducible */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 0x2545F4914F6CDD1Dull;
}

static void rnd_bytes (unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char) rnd ();
}

/* ---- pmd process ---------------------------------------------------------- */

typedef struct {
    pid_t pid;
    char dir[256];
    char ready[300];
    char endpoint[256];
    char endpoint2[256];
} pmd_t;

static pmd_t g_pmd;
static void *g_zctx;
/* sockets still open: closed by the fixture even when an assertion ends
   the test early (zmq_ctx_term would wait for them forever) */
#define MAX_SOCKS 16
static void *g_socks[MAX_SOCKS];

static void *sock_open (int type)
{
    void *s = zmq_socket (g_zctx, type);
    cr_assert_not_null (s, "zmq_socket: %s", zmq_strerror (zmq_errno ()));
    int linger = 0;
    zmq_setsockopt (s, ZMQ_LINGER, &linger, sizeof linger);
    for (int i = 0; i < MAX_SOCKS; i++)
        if (!g_socks[i]) {
            g_socks[i] = s;
            return s;
        }
    cr_assert_fail ("too many sockets");
    return NULL;
}

static void sock_close (void *s)
{
    for (int i = 0; i < MAX_SOCKS; i++)
        if (g_socks[i] == s)
            g_socks[i] = NULL;
    zmq_close (s);
}

static bool pmd_alive (pmd_t *d)
{
    if (d->pid <= 0)
        return false;
    int st;
    pid_t w = waitpid (d->pid, &st, WNOHANG);
    if (w == 0)
        return true;
    if (w == d->pid) {
        cr_log_error ("pmd (pid %d) %s %d", (int) d->pid,
                      WIFEXITED (st) ? "exited with status" : "was killed by signal",
                      WIFEXITED (st) ? WEXITSTATUS (st) : WTERMSIG (st));
        d->pid = -1;
    }
    return false;
}

/* with_ipc: also --bind ipc://<dir>/pmd.sock */
static void pmd_start (pmd_t *d, bool with_ipc)
{
    memset (d, 0, sizeof *d);
    const char *tmp = getenv ("TMPDIR");
    snprintf (d->dir, sizeof d->dir, "%s/pmd-input.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert_not_null (mkdtemp (d->dir), "mkdtemp: %s", strerror (errno));
    snprintf (d->ready, sizeof d->ready, "%s/ready", d->dir);
    char ipc[300] = "";
    if (with_ipc)
        snprintf (ipc, sizeof ipc, "ipc://%s/pmd.sock", d->dir);
    fflush (stdout);
    fflush (stderr);
    pid_t parent = getpid ();
    pid_t pid = fork ();
    cr_assert_geq (pid, 0, "fork: %s", strerror (errno));
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != parent)
            _exit (127);
        char *argv[16];
        int k = 0;
        argv[k++] = (char *) PMD_PATH;
        argv[k++] = (char *) "--bind";
        argv[k++] = (char *) "tcp://127.0.0.1:*";
        if (with_ipc) {
            argv[k++] = (char *) "--bind";
            argv[k++] = ipc;
        }
        argv[k++] = (char *) "--ready-file";
        argv[k++] = d->ready;
        argv[k++] = (char *) "--max-frame";
        argv[k++] = (char *) "65536";
        argv[k++] = (char *) "--log-level";
        argv[k++] = (char *) "error";
        argv[k] = NULL;
        execv (PMD_PATH, argv);
        _exit (127);
    }
    d->pid = pid;
    long deadline = now_ms () + 15000;
    for (;;) {
        FILE *f = fopen (d->ready, "r");
        if (f) {
            char line[256];
            int nlines = 0;
            while (fgets (line, sizeof line, f)) {
                line[strcspn (line, "\r\n")] = '\0';
                if (nlines == 0)
                    snprintf (d->endpoint, sizeof d->endpoint, "%s", line);
                else if (nlines == 1)
                    snprintf (d->endpoint2, sizeof d->endpoint2, "%s", line);
                nlines++;
            }
            fclose (f);
            if (nlines > 0)
                break;
        }
        cr_assert (pmd_alive (d), "pmd exited before writing its ready file");
        cr_assert_lt (now_ms (), deadline, "pmd wrote no ready file %s within 15 s", d->ready);
        sleep_ms (10);
    }
    cr_assert (strncmp (d->endpoint, "tcp://127.0.0.1:", 16) == 0 && d->endpoint[16] != '*',
               "ready file's first line is \"%s\", expected tcp://127.0.0.1:PORT", d->endpoint);
}

/* SIGTERM (or sig) → pmd must exit with status 0 within 10 s */
static void pmd_stop (pmd_t *d, int sig)
{
    cr_assert (pmd_alive (d), "pmd is not running at the end of the test");
    kill (d->pid, sig);
    long deadline = now_ms () + 10000;
    int st = 0;
    for (;;) {
        pid_t w = waitpid (d->pid, &st, WNOHANG);
        if (w == d->pid)
            break;
        if (now_ms () > deadline) {
            kill (d->pid, SIGKILL);
            waitpid (d->pid, &st, 0);
            d->pid = -1;
            cr_assert_fail ("pmd did not exit within 10 s of signal %d", sig);
        }
        sleep_ms (10);
    }
    d->pid = -1;
    cr_assert (WIFEXITED (st), "pmd was killed by signal %d after signal %d", WTERMSIG (st), sig);
    cr_assert_eq (WEXITSTATUS (st), 0, "pmd exited with status %d after signal %d",
                  WEXITSTATUS (st), sig);
}

static void remove_dir (const char *dir)
{
    char p[400];
    snprintf (p, sizeof p, "%s/ready", dir);
    unlink (p);
    snprintf (p, sizeof p, "%s/pmd.sock", dir);
    unlink (p);
    rmdir (dir);
}

static void setup (void)
{
    unsetenv ("PM_RANK");
    unsetenv ("PM_SIZE");
    unsetenv ("PM_GROUP");
    unsetenv ("PM_ENDPOINT");
    g_zctx = zmq_ctx_new ();
    cr_assert_not_null (g_zctx);
}

static void teardown (void)
{
    if (g_pmd.pid > 0) {
        kill (g_pmd.pid, SIGKILL);
        waitpid (g_pmd.pid, NULL, 0);
        g_pmd.pid = -1;
    }
    if (g_pmd.dir[0])
        remove_dir (g_pmd.dir);
    for (int i = 0; i < MAX_SOCKS; i++)
        if (g_socks[i]) {
            zmq_close (g_socks[i]);
            g_socks[i] = NULL;
        }
    if (g_zctx) {
        zmq_ctx_term (g_zctx);
        g_zctx = NULL;
    }
}

TestSuite (pmd_input, .init = setup, .fini = teardown);

/* Run a real 2-rank group against endpoint: pm-conformance MultiProcessing 2
   quick, with PM_ENDPOINT set.  Returns its exit status (or -1). */
extern char **environ;

static pid_t group_spawn (const char *endpoint)
{
    /* the environment is built before fork: the child only execs (this
       process may have other threads, so no malloc after fork) */
    size_t n = 0;
    while (environ[n])
        n++;
    char **envp = calloc (n + 3, sizeof *envp);
    cr_assert_not_null (envp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp (environ[i], "PM_ENDPOINT=", 12) != 0 &&
            strncmp (environ[i], "PM_CONNECT_TIMEOUT_MS=", 22) != 0)
            envp[k++] = environ[i];
    char ep[300];
    snprintf (ep, sizeof ep, "PM_ENDPOINT=%s", endpoint);
    envp[k++] = ep;
    /* fail in seconds, not 30 s, when pmd has died under the garbage */
    envp[k++] = (char *) "PM_CONNECT_TIMEOUT_MS=10000";
    envp[k] = NULL;
    char *argv[] = {(char *) CONFORMANCE_PATH, (char *) "MultiProcessing", (char *) "2",
                    (char *) "quick", NULL};
    fflush (stdout);
    fflush (stderr);
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != parent)
            _exit (127);
        execve (CONFORMANCE_PATH, argv, envp);
        _exit (127);
    }
    free (envp);
    cr_assert_geq (pid, 0, "fork: %s", strerror (errno));
    return pid;
}

static int group_wait (pid_t pid, long timeout_ms)
{
    long deadline = now_ms () + timeout_ms;
    int st;
    for (;;) {
        pid_t w = waitpid (pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (now_ms () > deadline) {
            kill (pid, SIGKILL);
            waitpid (pid, &st, 0);
            cr_log_error ("the group did not finish within %ld ms", timeout_ms);
            return -1;
        }
        sleep_ms (10);
    }
    return WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st);
}

static void expect_serves (pmd_t *d, const char *endpoint, const char *after)
{
    cr_assert (pmd_alive (d), "pmd died after %s", after);
    int code = group_wait (group_spawn (endpoint), 60000);
    cr_assert (pmd_alive (d), "pmd died while serving a group after %s", after);
    cr_assert_eq (code, 0, "a 2-rank group against pmd failed (exit %d) after %s", code, after);
}

/* ---- raw DEALER ----------------------------------------------------------------- */

static void *dealer (const char *endpoint)
{
    void *s = sock_open (ZMQ_DEALER);
    int sndtimeo = 2000;
    zmq_setsockopt (s, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
    cr_assert_eq (zmq_connect (s, endpoint), 0, "zmq_connect %s: %s", endpoint,
                  zmq_strerror (zmq_errno ()));
    return s;
}

typedef struct {
    const void *data;
    size_t size;
} frame_t;

static long g_sent, g_dropped;

/* send one multipart message; a send timeout (pmd pushing back) stops it */
static bool send_frames (void *s, const frame_t *frames, int count)
{
    for (int i = 0; i < count; i++) {
        int flags = i + 1 < count ? ZMQ_SNDMORE : 0;
        if (zmq_send (s, frames[i].data, frames[i].size, flags) < 0) {
            g_dropped++;
            return false;
        }
    }
    g_sent++;
    return true;
}

static bool send1 (void *s, const void *data, size_t size)
{
    frame_t f = {data, size};
    return send_frames (s, &f, 1);
}

/* Any reply pmd sends must start with a well-formed header frame. */
static void drain_replies (void *s, const char *what)
{
    int replies = 0;
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init (&m);
        if (zmq_msg_recv (&m, s, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&m);
            break;
        }
        bool first = true;
        for (;;) {
            if (first) {
                replies++;
                msgpack_unpacked u;
                msgpack_unpacked_init (&u);
                size_t off = 0;
                int r = msgpack_unpack_next (&u, zmq_msg_data (&m), zmq_msg_size (&m), &off);
                bool ok = r == MSGPACK_UNPACK_SUCCESS && u.data.type == MSGPACK_OBJECT_ARRAY &&
                          u.data.via.array.size == 5 &&
                          u.data.via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
                          u.data.via.array.ptr[0].via.u64 == SIGNATURE;
                msgpack_unpacked_destroy (&u);
                cr_expect (ok, "pmd replied to %s with a malformed header frame (%zu bytes)", what,
                           zmq_msg_size (&m));
                first = false;
            }
            int more = zmq_msg_more (&m);
            zmq_msg_close (&m);
            if (!more)
                break;
            zmq_msg_init (&m);
            if (zmq_msg_recv (&m, s, 0) < 0) {
                zmq_msg_close (&m);
                break;
            }
        }
    }
    if (replies)
        cr_log_info ("pmd sent %d replies to %s", replies, what);
}

/* ---- crafted headers ---------------------------------------------------------- */

enum {
    BODY_EMPTY_MAP,
    BODY_SMALL_MAP,
    BODY_NIL,
    BODY_ARRAY,
    BODY_STRING_KEYS,
    BODY_WEIRD_VALUES,
    BODY_BIG_BIN,
    BODY_KINDS
};

static void pack_body (msgpack_packer *pk, int kind)
{
    switch (kind) {
    case BODY_EMPTY_MAP: msgpack_pack_map (pk, 0); break;
    case BODY_SMALL_MAP:
        msgpack_pack_map (pk, 4);
        for (unsigned k = 0; k < 4; k++) {
            msgpack_pack_uint32 (pk, k + 1);
            msgpack_pack_uint64 (pk, rnd () % 1000);
        }
        break;
    case BODY_NIL: msgpack_pack_nil (pk); break;
    case BODY_ARRAY:
        msgpack_pack_array (pk, 3);
        msgpack_pack_int64 (pk, -1);
        msgpack_pack_double (pk, 1e308);
        msgpack_pack_str (pk, 3);
        msgpack_pack_str_body (pk, "abc", 3);
        break;
    case BODY_STRING_KEYS:
        msgpack_pack_map (pk, 2);
        msgpack_pack_str (pk, 5);
        msgpack_pack_str_body (pk, "group", 5);
        msgpack_pack_str (pk, 1);
        msgpack_pack_str_body (pk, "g", 1);
        msgpack_pack_str (pk, 4);
        msgpack_pack_str_body (pk, "rank", 4);
        msgpack_pack_int64 (pk, -5);
        break;
    case BODY_WEIRD_VALUES:
        /* small-uint keys 0..15 with values of every wrong type */
        msgpack_pack_map (pk, 16);
        for (unsigned k = 0; k < 16; k++) {
            msgpack_pack_uint32 (pk, k);
            switch (k % 8) {
            case 0: msgpack_pack_uint64 (pk, UINT64_MAX); break;
            case 1: msgpack_pack_int64 (pk, INT64_MIN); break;
            case 2: msgpack_pack_nil (pk); break;
            case 3: msgpack_pack_double (pk, -0.0); break;
            case 4:
                msgpack_pack_str (pk, 0);
                break;
            case 5:
                msgpack_pack_array (pk, 1);
                msgpack_pack_map (pk, 0);
                break;
            case 6: msgpack_pack_true (pk); break;
            case 7:
                msgpack_pack_bin (pk, 4);
                msgpack_pack_bin_body (pk, "\xff\x00\xff\x00", 4);
                break;
            }
        }
        break;
    case BODY_BIG_BIN: {
        msgpack_pack_map (pk, 1);
        msgpack_pack_uint32 (pk, 1);
        static unsigned char junk[8192];
        rnd_bytes (junk, sizeof junk);
        msgpack_pack_bin (pk, sizeof junk);
        msgpack_pack_bin_body (pk, junk, sizeof junk);
        break;
    }
    }
}

/* header into sbuf (caller destroys) */
static void make_header (msgpack_sbuffer *sb, uint64_t sig, uint64_t ver, uint64_t type,
                         uint64_t seq, int body)
{
    msgpack_sbuffer_init (sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 5);
    msgpack_pack_uint64 (&pk, sig);
    msgpack_pack_uint64 (&pk, ver);
    msgpack_pack_uint64 (&pk, type);
    msgpack_pack_uint64 (&pk, seq);
    pack_body (&pk, body);
}

/* ---- bursts ------------------------------------------------------------------- */

static void burst_random (void *s)
{
    unsigned char buf[4][512];
    for (int m = 0; m < 2000; m++) {
        int nf = 1 + (int) (rnd () % 4);
        frame_t f[4];
        for (int i = 0; i < nf; i++) {
            size_t len = rnd () % 300;
            rnd_bytes (buf[i], len);
            if (i == 0 && len > 0 && m % 2 == 0)
                buf[i][0] = 0x95; /* fixarray of 5: get past the first byte */
            f[i].data = buf[i];
            f[i].size = len;
        }
        if (!send_frames (s, f, nf))
            return;
    }
}

static void burst_empty (void *s)
{
    frame_t f[5] = {{"", 0}, {"", 0}, {"", 0}, {"", 0}, {"", 0}};
    for (int m = 0; m < 500; m++)
        if (!send_frames (s, f, 1 + m % 5))
            return;
    for (uint64_t type = 0; type <= 8; type++) {
        msgpack_sbuffer sb;
        make_header (&sb, SIGNATURE, VERSION, type, type, BODY_EMPTY_MAP);
        frame_t g[4] = {{sb.data, sb.size}, {"", 0}, {"", 0}, {"", 0}};
        send_frames (s, g, 1 + (int) (type % 4));
        msgpack_sbuffer_destroy (&sb);
    }
}

static void burst_truncated (void *s)
{
    for (uint64_t type = 1; type <= 7; type++) {
        for (int body = 0; body < BODY_KINDS; body++) {
            msgpack_sbuffer sb;
            make_header (&sb, SIGNATURE, VERSION, type, 1000 + type, body);
            size_t step = sb.size > 400 ? sb.size / 97 : 1;
            for (size_t len = 0; len < sb.size; len += step) {
                send1 (s, sb.data, len);
                frame_t f[2] = {{sb.data, len}, {"payload", 7}};
                send_frames (s, f, 2);
            }
            msgpack_sbuffer_destroy (&sb);
        }
    }
    /* declared lengths far beyond the frame: str32 / bin32 / array32 / map32 */
    static const unsigned char liars[][16] = {
        {0x95, 0xcd, 0xa7, 0xb1, 0x01, 0x01, 0x01, 0xdb, 0xff, 0xff, 0xff, 0xff, 'x'},
        {0x95, 0xcd, 0xa7, 0xb1, 0x01, 0x04, 0x01, 0xc6, 0x7f, 0xff, 0xff, 0xff, 'x'},
        {0x95, 0xcd, 0xa7, 0xb1, 0x01, 0x04, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01},
        {0x95, 0xcd, 0xa7, 0xb1, 0x01, 0x01, 0x01, 0xdf, 0xff, 0xff, 0xff, 0xff, 0x01},
        {0xdd, 0xff, 0xff, 0xff, 0xff, 0xcd, 0xa7, 0xb1},
    };
    for (size_t i = 0; i < sizeof liars / sizeof liars[0]; i++)
        send1 (s, liars[i], 13);
}

static void burst_signature (void *s)
{
    static const uint64_t sigs[] = {0, 1, 0xA7B0, 0xA7B2, 0xB1A7, 0xFFFF, 0xFFFFFFFFull, UINT64_MAX};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        for (uint64_t type = 0; type <= 8; type++)
            for (int body = 0; body < BODY_KINDS; body += 3) {
                msgpack_sbuffer sb;
                make_header (&sb, sigs[i], VERSION, type, type, body);
                send1 (s, sb.data, sb.size);
                msgpack_sbuffer_destroy (&sb);
            }
    /* signature of the wrong msgpack type */
    for (int k = 0; k < 4; k++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init (&sb);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array (&pk, 5);
        switch (k) {
        case 0: msgpack_pack_int64 (&pk, -0xA7B1); break;
        case 1: msgpack_pack_str (&pk, 4); msgpack_pack_str_body (&pk, "A7B1", 4); break;
        case 2: msgpack_pack_nil (&pk); break;
        default: msgpack_pack_double (&pk, 42929.0); break;
        }
        msgpack_pack_uint32 (&pk, VERSION);
        msgpack_pack_uint32 (&pk, 1);
        msgpack_pack_uint32 (&pk, 1);
        msgpack_pack_map (&pk, 0);
        send1 (s, sb.data, sb.size);
        msgpack_sbuffer_destroy (&sb);
    }
}

static void burst_version (void *s)
{
    static const uint64_t vers[] = {99, 0, 2, 0xFFFFFFFFull, UINT64_MAX};
    for (size_t i = 0; i < sizeof vers / sizeof vers[0]; i++)
        for (uint64_t type = 0; type <= 8; type++)
            for (int body = 0; body < BODY_KINDS; body += 2) {
                msgpack_sbuffer sb;
                make_header (&sb, SIGNATURE, vers[i], type, 7, body);
                frame_t f[2] = {{sb.data, sb.size}, {"\x01\x02\x03\x04", 4}};
                send_frames (s, f, 1 + (int) (type % 2));
                msgpack_sbuffer_destroy (&sb);
            }
    /* version as a negative number and as a string */
    for (int k = 0; k < 2; k++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init (&sb);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array (&pk, 5);
        msgpack_pack_uint32 (&pk, SIGNATURE);
        if (k == 0)
            msgpack_pack_int64 (&pk, -1);
        else {
            msgpack_pack_str (&pk, 2);
            msgpack_pack_str_body (&pk, "99", 2);
        }
        msgpack_pack_uint32 (&pk, 1);
        msgpack_pack_uint32 (&pk, 1);
        msgpack_pack_map (&pk, 0);
        send1 (s, sb.data, sb.size);
        msgpack_sbuffer_destroy (&sb);
    }
}

static void burst_oversized (void *s)
{
    size_t big = 4u << 20;
    unsigned char *p = malloc (big);
    cr_assert_not_null (p);
    rnd_bytes (p, big);
    send1 (s, p, MAX_FRAME + 1);         /* just over the limit, raw */
    send1 (s, p, 1u << 20);              /* 1 MiB of garbage         */
    msgpack_sbuffer sb;
    make_header (&sb, SIGNATURE, VERSION, 4, 1, BODY_SMALL_MAP);
    frame_t f[3] = {{sb.data, sb.size}, {p, 1u << 20}, {p, MAX_FRAME + 1}};
    send_frames (s, f, 2);               /* valid header + 1 MiB data */
    send_frames (s, f, 3);
    msgpack_sbuffer_destroy (&sb);
    /* a header frame over the limit: valid start, then a huge bin body */
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 5);
    msgpack_pack_uint32 (&pk, SIGNATURE);
    msgpack_pack_uint32 (&pk, VERSION);
    msgpack_pack_uint32 (&pk, 1);
    msgpack_pack_uint32 (&pk, 1);
    msgpack_pack_map (&pk, 1);
    msgpack_pack_uint32 (&pk, 1);
    msgpack_pack_bin (&pk, 2u << 20);
    msgpack_pack_bin_body (&pk, p, 2u << 20);
    send1 (s, sb.data, sb.size);
    msgpack_sbuffer_destroy (&sb);
    send1 (s, p, big); /* 4 MiB once */
    free (p);
}

static void burst_valid_looking (void *s)
{
    static const uint64_t seqs[] = {0, 1, 2, 0xFFFFFFFFull, UINT64_MAX};
    unsigned char data[3][256];
    for (uint64_t type = 0; type <= 9; type++)
        for (int body = 0; body < BODY_KINDS; body++)
            for (size_t q = 0; q < sizeof seqs / sizeof seqs[0]; q++) {
                msgpack_sbuffer sb;
                make_header (&sb, SIGNATURE, VERSION, type == 9 ? 255 : type, seqs[q], body);
                frame_t f[4] = {{sb.data, sb.size}};
                int nd = (int) (rnd () % 4);
                for (int i = 0; i < nd; i++) {
                    size_t len = rnd () % 256;
                    rnd_bytes (data[i], len);
                    f[1 + i].data = data[i];
                    f[1 + i].size = len;
                }
                send_frames (s, f, 1 + nd);
                msgpack_sbuffer_destroy (&sb);
            }
    /* arrays of the wrong length, and a map instead of the array */
    for (unsigned len = 0; len < 9; len++) {
        if (len == 5)
            continue;
        msgpack_sbuffer sb;
        msgpack_sbuffer_init (&sb);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array (&pk, len);
        for (unsigned i = 0; i < len; i++)
            msgpack_pack_uint32 (&pk, i == 0 ? SIGNATURE : i == 1 ? VERSION : 1);
        send1 (s, sb.data, sb.size);
        msgpack_sbuffer_destroy (&sb);
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    msgpack_pack_uint32 (&pk, SIGNATURE);
    msgpack_pack_uint32 (&pk, VERSION);
    send1 (s, sb.data, sb.size);
    msgpack_sbuffer_destroy (&sb);
    /* two headers back to back in one frame, and trailing garbage */
    make_header (&sb, SIGNATURE, VERSION, 3, 1, BODY_EMPTY_MAP);
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 5);
    msgpack_pack_uint32 (&pk, SIGNATURE);
    msgpack_pack_uint32 (&pk, VERSION);
    msgpack_pack_uint32 (&pk, 3);
    msgpack_pack_uint32 (&pk, 2);
    msgpack_pack_map (&pk, 0);
    msgpack_sbuffer_write (&sb, "\xc1\xc1\xc1", 3); /* 0xc1 is never used */
    send1 (s, sb.data, sb.size);
    msgpack_sbuffer_destroy (&sb);
}

static void burst_deep (void *s)
{
    size_t depth = 100000;
    unsigned char *p = malloc (depth + 64);
    cr_assert_not_null (p);
    /* nested arrays as the whole frame */
    memset (p, 0x91, depth);
    p[depth] = 0xc0;
    send1 (s, p, depth + 1);
    /* ... and as the body of a valid-looking header (within --max-frame) */
    size_t k = 0;
    const unsigned char head[] = {0x95, 0xcd, 0xa7, 0xb1, 0x01, 0x01, 0x01};
    memcpy (p, head, sizeof head);
    k = sizeof head;
    for (size_t i = 0; i < 60000; i++)
        p[k++] = (i % 2) ? 0x91 : 0x81; /* fixmap 1 / fixarray 1, alternating */
    p[k++] = 0xc0;
    send1 (s, p, k);
    /* nested maps whose keys are maps */
    memcpy (p, head, sizeof head);
    k = sizeof head;
    for (size_t i = 0; i < 30000; i++)
        p[k++] = 0x81;
    p[k++] = 0xc0;
    send1 (s, p, k);
    free (p);
}

/* 10,000 messages, from 4 DEALERs, as fast as pmd takes them */
static void burst_flood (const char *endpoint)
{
    void *socks[4];
    for (int i = 0; i < 4; i++)
        socks[i] = dealer (endpoint);
    msgpack_sbuffer hb;
    make_header (&hb, SIGNATURE, VERSION, 3, 1, BODY_EMPTY_MAP);
    unsigned char junk[64];
    for (int m = 0; m < 10000; m++) {
        void *s = socks[m % 4];
        if (m % 3 == 0) {
            rnd_bytes (junk, sizeof junk);
            if (!send1 (s, junk, 1 + rnd () % sizeof junk))
                break;
        } else if (!send1 (s, hb.data, hb.size))
            break;
    }
    msgpack_sbuffer_destroy (&hb);
    for (int i = 0; i < 4; i++) {
        drain_replies (socks[i], "the flood");
        sock_close (socks[i]);
    }
}

/* ---- tests ---------------------------------------------------------------------- */

typedef void (*burst_fn) (void *s);

static void run_burst (const char *name, burst_fn fn)
{
    pmd_start (&g_pmd, false);
    expect_serves (&g_pmd, g_pmd.endpoint, "start-up");
    void *s = dealer (g_pmd.endpoint);
    g_sent = g_dropped = 0;
    fn (s);
    cr_log_info ("%s: %ld messages sent, %ld sends timed out", name, g_sent, g_dropped);
    expect_serves (&g_pmd, g_pmd.endpoint, name);
    drain_replies (s, name);
    sock_close (s);
    pmd_stop (&g_pmd, SIGTERM);
}

Test (pmd_input, random_frames, .timeout = 90)
{
    run_burst ("random frames", burst_random);
}

Test (pmd_input, empty_frames, .timeout = 90)
{
    run_burst ("empty frames", burst_empty);
}

Test (pmd_input, truncated_headers, .timeout = 90)
{
    run_burst ("truncated headers", burst_truncated);
}

Test (pmd_input, wrong_signature, .timeout = 90)
{
    run_burst ("wrong signatures", burst_signature);
}

Test (pmd_input, unsupported_version, .timeout = 90)
{
    run_burst ("versions 99 etc.", burst_version);
}

Test (pmd_input, oversized_frames, .timeout = 90)
{
    run_burst ("frames over --max-frame", burst_oversized);
}

Test (pmd_input, valid_looking_messages_from_a_stranger, .timeout = 90)
{
    run_burst ("valid-looking messages without HELLO", burst_valid_looking);
}

Test (pmd_input, deeply_nested_msgpack, .timeout = 90)
{
    run_burst ("deeply nested msgpack", burst_deep);
}

Test (pmd_input, flood_of_10000_messages, .timeout = 90)
{
    pmd_start (&g_pmd, false);
    g_sent = g_dropped = 0;
    burst_flood (g_pmd.endpoint);
    cr_log_info ("flood: %ld messages sent, %ld sends timed out", g_sent, g_dropped);
    expect_serves (&g_pmd, g_pmd.endpoint, "a flood of 10,000 messages");
    pmd_stop (&g_pmd, SIGTERM);
}

typedef struct {
    const char *endpoint;
    atomic_bool stop;
    long sent;
} flooder_t;

static void *flooder (void *arg)
{
    flooder_t *f = arg;
    void *s = zmq_socket (g_zctx, ZMQ_DEALER);
    int linger = 0, sndtimeo = 100;
    zmq_setsockopt (s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (s, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
    if (zmq_connect (s, f->endpoint) != 0) {
        zmq_close (s);
        return NULL;
    }
    uint64_t rng = 12345;
    unsigned char junk[128];
    while (!atomic_load (&f->stop) && f->sent < 200000) {
        for (size_t i = 0; i < sizeof junk; i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            junk[i] = (unsigned char) (rng >> 56);
        }
        junk[0] = 0x95;
        if (zmq_send (s, junk, 1 + (size_t) (rng % sizeof junk), 0) >= 0)
            f->sent++;
    }
    zmq_close (s);
    return NULL;
}

Test (pmd_input, garbage_while_a_group_runs, .timeout = 90)
{
    pmd_start (&g_pmd, false);
    flooder_t f = {.endpoint = g_pmd.endpoint, .sent = 0};
    atomic_init (&f.stop, false);
    pthread_t th;
    cr_assert_eq (pthread_create (&th, NULL, flooder, &f), 0);
    pid_t g = group_spawn (g_pmd.endpoint);
    int code = group_wait (g, 60000);
    atomic_store (&f.stop, true);
    pthread_join (th, NULL);
    cr_log_info ("%ld garbage messages sent while the group ran", f.sent);
    cr_assert (pmd_alive (&g_pmd), "pmd died under garbage while serving a group");
    cr_assert_eq (code, 0, "the group failed (exit %d) while garbage was flooding pmd", code);
    pmd_stop (&g_pmd, SIGTERM);
}

Test (pmd_input, everything_then_two_groups, .timeout = 120)
{
    pmd_start (&g_pmd, false);
    void *s = dealer (g_pmd.endpoint);
    burst_fn all[] = {burst_random, burst_empty, burst_truncated, burst_signature,
                      burst_version, burst_oversized, burst_valid_looking, burst_deep};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        all[i] (s);
    expect_serves (&g_pmd, g_pmd.endpoint, "every kind of garbage");
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        all[i] (s);
    expect_serves (&g_pmd, g_pmd.endpoint, "every kind of garbage, twice");
    drain_replies (s, "every kind of garbage");
    sock_close (s);
    pmd_stop (&g_pmd, SIGTERM);
}

Test (pmd_input, sigint_exits_cleanly, .timeout = 60)
{
    pmd_start (&g_pmd, false);
    expect_serves (&g_pmd, g_pmd.endpoint, "start-up");
    pmd_stop (&g_pmd, SIGINT);
}

Test (pmd_input, two_binds_in_the_ready_file, .timeout = 60)
{
    pmd_start (&g_pmd, true);
    char want[300];
    snprintf (want, sizeof want, "ipc://%s/pmd.sock", g_pmd.dir);
    cr_assert_str_eq (g_pmd.endpoint2, want, "second line of the ready file is \"%s\", expected \"%s\"",
                      g_pmd.endpoint2, want);
    expect_serves (&g_pmd, g_pmd.endpoint2, "start-up (ipc endpoint)");
    expect_serves (&g_pmd, g_pmd.endpoint, "start-up (tcp endpoint)");
    pmd_stop (&g_pmd, SIGTERM);
}

/* options.endpoint / options.group (no PM_ENDPOINT in the environment): the
   thread ranks connect to this pmd; the backend keeps the keyword's name. */
typedef struct {
    atomic_int bad;
    atomic_int calls;
} opt_state_t;

static int opt_rank_fn (pm_manager_t *pm, void *arg)
{
    opt_state_t *st = arg;
    atomic_fetch_add (&st->calls, 1);
    int n = pm_number_of_worker_processes (pm);
    int64_t mine = pm_get_rank (pm) + 1, sum = 0;
    int rc = pm_allreduce (pm, &mine, &sum, 1, PM_INT64, PM_SUM);
    if (rc != 0 || sum != (int64_t) n * (n + 1) / 2 || n != 3 ||
        strcmp (pm_backend_name (pm), "ConcurrentFutures") != 0)
        atomic_fetch_add (&st->bad, 1);
    return rc;
}

Test (pmd_input, options_endpoint_threads, .timeout = 60)
{
    pmd_start (&g_pmd, false);
    pm_options_t opt = {.endpoint = g_pmd.endpoint, .group = "options-endpoint-test",
                        .connect_timeout_ms = 10000};
    pm_manager_t *pm = pm_create_parallel_manager ("ConcurrentFutures", 3, &opt);
    cr_assert_not_null (pm, "pm_create_parallel_manager with options.endpoint: %s",
                        pm_last_error (NULL) ? pm_last_error (NULL) : "(null)");
    cr_expect_str_eq (pm_backend_name (pm), "ConcurrentFutures");
    opt_state_t st;
    atomic_init (&st.bad, 0);
    atomic_init (&st.calls, 0);
    int rc = pm_run (pm, opt_rank_fn, &st);
    pm_destroy (&pm);
    cr_expect_eq (rc, 0, "pm_run against options.endpoint returned %d (%s)", rc, pm_strerror (rc));
    cr_expect_eq (atomic_load (&st.calls), 3);
    cr_expect_eq (atomic_load (&st.bad), 0, "wrong sum/size/backend on some rank");
    pmd_stop (&g_pmd, SIGTERM);
}
