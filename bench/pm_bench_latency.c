/*  pm_bench_latency.c — latency of pm's barrier and 8-byte allreduce, side by
    side with the raw ZeroMQ DEALER<->ROUTER round trip measured in the same
    run on the same transport.  A benchmark, not a test: it prints numbers and
    never fails on them (see bench/README.md for how to read the table).

    Process layout.  pm_create_parallel_manager ("MultiProcessing", n) forks
    n-1 ranks inside the call, and a ZeroMQ context must never cross a fork, so
    every measurement runs in a fresh process: the driver (this program without
    --child) never touches ZeroMQ or libpm's collectives; it re-executes its own
    binary once per configuration with posix_spawn, in a process group of its
    own, reads the result lines from a pipe, kills the group if a deadline
    passes, and prints one table at the end.

      driver ──spawn──▶ --child raw ipc|tcp   forks an echo ROUTER before any
                                              context exists, then times a
                                              DEALER round trip
             ──spawn──▶ --child pm N          SPMD: every rank runs the loop,
                                              rank 0 times and reports
             ──spawn──▶ pmd --bind tcp://127.0.0.1:* (optional rows, with
                        PM_ENDPOINT set for the pm children)

    Child → driver protocol, one line each on stdout (times in nanoseconds):
      RESULT <what> <count> <p50> <p99> <mean> <min> <max>
      INFO <key> <value>
      ERROR <text>                                                           */

#include <pm.h>
#include <zmq.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"

#define S_RAW_PAYLOAD 8      /* bytes per raw round trip (= one double)      */
#define S_MAX_CONFIGS 16     /* rank counts accepted by --ranks              */
#define S_MAX_ROWS 64        /* rows of the final table                      */

/* ---- statistics --------------------------------------------------------- */

static int
s_cmp_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return (x > y) - (x < y);
}

typedef struct {
    uint64_t count; /* samples                        */
    uint64_t p50;   /* nearest-rank percentiles, ns   */
    uint64_t p99;
    uint64_t mean;
    uint64_t min;
    uint64_t max;
} s_stats_t;

/* Sorts samples in place. */
static s_stats_t
s_stats (uint64_t *samples, size_t count)
{
    s_stats_t st = { 0 };
    if (count == 0)
        return st;
    qsort (samples, count, sizeof *samples, s_cmp_u64);
    long double sum = 0;
    for (size_t i = 0; i < count; i++)
        sum += samples[i];
    st.count = count;
    st.p50 = samples[(50 * count + 99) / 100 - 1];
    st.p99 = samples[(99 * count + 99) / 100 - 1];
    st.mean = (uint64_t) (sum / count);
    st.min = samples[0];
    st.max = samples[count - 1];
    return st;
}

static void
s_emit_result (const char *what, uint64_t *samples, size_t count)
{
    s_stats_t st = s_stats (samples, count);
    bench_emit ("RESULT %s %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64,
                what, st.count, st.p50, st.p99, st.mean, st.min, st.max);
}

/* ---- child: raw ZeroMQ DEALER<->ROUTER round trip ----------------------- */

/* Forked before any ZeroMQ context exists in the process.  Binds a ROUTER,
   tells the parent its endpoint through ready_fd, echoes every message back
   to its sender until an empty payload (or 30 s of silence).              */
static int
s_echo_server (const char *transport, const char *dir, int ready_fd)
{
    void *ctx = zmq_ctx_new ();
    void *router = ctx ? zmq_socket (ctx, ZMQ_ROUTER) : NULL;
    if (!router)
        return 1;
    int linger = 0, timeout = 30000;
    zmq_setsockopt (router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (router, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    char endpoint[512];
    if (strcmp (transport, "ipc") == 0)
        bench_format (endpoint, sizeof endpoint, "ipc://%s/raw.sock", dir);
    else
        bench_format (endpoint, sizeof endpoint, "tcp://127.0.0.1:*");
    int rc = 1;
    if (zmq_bind (router, endpoint) == 0) {
        size_t len = sizeof endpoint - 1;
        if (zmq_getsockopt (router, ZMQ_LAST_ENDPOINT, endpoint, &len) == 0) {
            endpoint[sizeof endpoint - 2] = '\0';
            strcat (endpoint, "\n");
            if (write (ready_fd, endpoint, strlen (endpoint)) > 0)
                rc = 0;
        }
    }
    close (ready_fd);
    while (rc == 0) {
        unsigned char id[256], payload[64];
        int id_len = zmq_recv (router, id, sizeof id, 0);
        if (id_len < 0)
            break;
        int len = zmq_recv (router, payload, sizeof payload, 0);
        if (len <= 0)
            break; /* error, or the empty stop message */
        if (zmq_send (router, id, (size_t) id_len, ZMQ_SNDMORE) < 0
            || zmq_send (router, payload, (size_t) len, 0) < 0)
            break;
    }
    zmq_close (router);
    zmq_ctx_term (ctx);
    return rc;
}

/* Binds this process (and what it forks) to the first CPU it may run on. */
static int
s_pin_to_one_cpu (void)
{
    cpu_set_t set;
    if (sched_getaffinity (0, sizeof set, &set) != 0)
        return -1;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET (cpu, &set)) {
            CPU_ZERO (&set);
            CPU_SET (cpu, &set);
            return sched_setaffinity (0, sizeof set, &set);
        }
    return -1;
}

static int
s_child_raw (const char *transport, long iterations, long warmup, bool pin)
{
    if (strcmp (transport, "ipc") != 0 && strcmp (transport, "tcp") != 0) {
        bench_emit ("ERROR unknown raw transport '%s'", transport);
        return 1;
    }
    if (pin && s_pin_to_one_cpu () != 0) {
        bench_emit ("ERROR sched_setaffinity: %s", strerror (errno));
        return 1;
    }
    char dir[PATH_MAX];
    bench_make_temp_dir (dir, sizeof dir);
    if (!dir[0]) {
        bench_emit ("ERROR mkdtemp: %s", strerror (errno));
        return 1;
    }
    int ready[2];
    if (pipe (ready) != 0) {
        bench_emit ("ERROR pipe: %s", strerror (errno));
        rmdir (dir);
        return 1;
    }
    pid_t server = fork ();
    if (server < 0) {
        bench_emit ("ERROR fork: %s", strerror (errno));
        rmdir (dir);
        return 1;
    }
    if (server == 0) {
        close (ready[0]);
        _exit (s_echo_server (transport, dir, ready[1]));
    }
    close (ready[1]);

    /* The server's endpoint, or EOF if it failed to bind. */
    char endpoint[512] = "";
    size_t got = 0;
    struct pollfd pfd = { .fd = ready[0], .events = POLLIN };
    uint64_t deadline = bench_now_ns () + 10000000000u;
    while (got < sizeof endpoint - 1 && !strchr (endpoint, '\n') && bench_now_ns () < deadline) {
        if (poll (&pfd, 1, 100) <= 0)
            continue;
        ssize_t n = read (ready[0], endpoint + got, sizeof endpoint - 1 - got);
        if (n <= 0)
            break;
        got += (size_t) n;
        endpoint[got] = '\0';
    }
    close (ready[0]);
    char *nl = strchr (endpoint, '\n');
    int rc = 1;
    uint64_t *samples = calloc ((size_t) iterations, sizeof *samples);
    void *ctx = NULL, *dealer = NULL;
    if (!nl) {
        bench_emit ("ERROR the echo server did not start on %s", transport);
        goto done;
    }
    *nl = '\0';
    if (!samples) {
        bench_emit ("ERROR out of memory");
        goto done;
    }
    ctx = zmq_ctx_new ();
    dealer = ctx ? zmq_socket (ctx, ZMQ_DEALER) : NULL;
    if (!dealer) {
        bench_emit ("ERROR zmq_socket: %s", zmq_strerror (zmq_errno ()));
        goto done;
    }
    int linger = 2000, timeout = 5000;
    zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (dealer, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    if (zmq_connect (dealer, endpoint) != 0) {
        bench_emit ("ERROR zmq_connect %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        goto done;
    }
    unsigned char out[S_RAW_PAYLOAD] = { 1, 2, 3, 4, 5, 6, 7, 8 }, in[64];
    for (long i = 0; i < warmup + iterations; i++) {
        uint64_t t0 = bench_now_ns ();
        if (zmq_send (dealer, out, sizeof out, 0) != (int) sizeof out
            || zmq_recv (dealer, in, sizeof in, 0) != (int) sizeof out) {
            bench_emit ("ERROR raw round trip %ld on %s: %s", i, endpoint,
                        zmq_strerror (zmq_errno ()));
            goto done;
        }
        uint64_t t1 = bench_now_ns ();
        if (i >= warmup)
            samples[i - warmup] = t1 - t0;
    }
    bench_emit ("INFO endpoint %s", endpoint);
    s_emit_result (pin ? "raw1cpu" : "raw", samples, (size_t) iterations);
    rc = 0;
done:
    if (dealer) {
        zmq_send (dealer, "", 0, 0); /* stop the echo server */
        zmq_close (dealer);
    }
    if (ctx)
        zmq_ctx_term (ctx);
    int status = bench_reap (server, 5000);
    if (status != 0 && rc == 0) {
        if (status == -1)
            bench_emit ("ERROR the echo server did not exit within 5 s");
        else if (WIFSIGNALED (status))
            bench_emit ("ERROR the echo server died of signal %d", WTERMSIG (status));
        else
            bench_emit ("ERROR the echo server exited with status %d", WEXITSTATUS (status));
        rc = 1;
    }
    free (samples);
    char sock[PATH_MAX + 16];
    bench_format (sock, sizeof sock, "%s/raw.sock", dir);
    unlink (sock);
    rmdir (dir);
    return rc;
}

/* ---- child: pm collectives (SPMD, every rank runs this) ----------------- */

typedef enum { S_BARRIER, S_ALLREDUCE } s_op_t;

/* Runs warmup + iterations of op on this rank; rank 0 stores the latency of
   each measured iteration in samples.  0, or the failing PM_E* code.      */
static int
s_pm_loop (pm_manager_t *pm, s_op_t op, long iterations, long warmup, uint64_t *samples)
{
    int rank = pm_get_rank (pm);
    int size = pm_number_of_worker_processes (pm);
    double mine = rank + 1, sum = 0;
    double expected = (double) size * (size + 1) / 2; /* exact in a double */
    for (long i = 0; i < warmup + iterations; i++) {
        uint64_t t0 = bench_now_ns ();
        int rc = op == S_BARRIER ? pm_sync_with_peers (pm)
                                 : pm_sum_values_and_sync (pm, &mine, &sum, 1, PM_FLOAT64);
        uint64_t t1 = bench_now_ns ();
        if (rc != 0) {
            bench_emit ("ERROR rank %d: %s iteration %ld: %s (%s)", rank,
                        op == S_BARRIER ? "pm_sync_with_peers" : "pm_sum_values_and_sync", i,
                        pm_strerror (rc), pm_last_error (pm) ? pm_last_error (pm) : "");
            return rc;
        }
        if (op == S_ALLREDUCE && sum != expected) {
            bench_emit ("ERROR rank %d: pm_sum_values_and_sync iteration %ld gave %g, expected %g",
                        rank, i, sum, expected);
            return PM_EPROTO;
        }
        if (samples && i >= warmup)
            samples[i - warmup] = t1 - t0;
    }
    return 0;
}

static int
s_child_pm (int ranks, long iterations, long warmup)
{
    fflush (NULL); /* nothing buffered may be duplicated by the fork */
    uint64_t t0 = bench_now_ns ();
    pm_manager_t *pm = pm_create_parallel_manager ("MultiProcessing", ranks, NULL);
    uint64_t t1 = bench_now_ns ();
    if (!pm) {
        const char *why = pm_last_error (NULL);
        bench_emit ("ERROR pm_create_parallel_manager (\"MultiProcessing\", %d): %s: %s", ranks,
                    pm_strerror (pm_last_error_code (NULL)), why ? why : "");
        return 1;
    }
    int rank = pm_get_rank (pm);
    int size = pm_number_of_worker_processes (pm);
    bool root = rank == 0;
    int rc = 0;
    uint64_t *samples = NULL;
    if (root) {
        const char *backend = pm_backend_name (pm);
        bench_emit ("INFO backend %s", backend ? backend : "?");
        bench_emit ("INFO create_us %" PRIu64, (t1 - t0) / 1000);
        samples = calloc ((size_t) iterations, sizeof *samples);
        if (!samples) {
            bench_emit ("ERROR out of memory");
            rc = PM_ENOMEM; /* the peers will see this rank leave */
        }
    }
    if (size != ranks) {
        if (root)
            bench_emit ("ERROR asked for %d ranks, the manager has %d", ranks, size);
        rc = PM_EINVAL;
    }
    if (rc == 0)
        rc = s_pm_loop (pm, S_BARRIER, iterations, warmup, samples);
    if (rc == 0 && root)
        s_emit_result ("barrier", samples, (size_t) iterations);
    if (rc == 0)
        rc = s_pm_loop (pm, S_ALLREDUCE, iterations, warmup, samples);
    if (rc == 0 && root)
        s_emit_result ("allreduce", samples, (size_t) iterations);
    free (samples);
    uint64_t t2 = bench_now_ns ();
    pm_destroy (&pm);
    if (root)
        bench_emit ("INFO destroy_us %" PRIu64, (bench_now_ns () - t2) / 1000);
    return rc == 0 ? 0 : 1;
}

/* ---- driver ------------------------------------------------------------- */

typedef struct {
    char what[16];       /* "raw", "barrier", "allreduce"                  */
    int ranks;           /* group size (2 for raw: two processes)         */
    char transport[8];   /* "ipc" or "tcp"                                 */
    char via[16];        /* "", "embedded", "pmd"                          */
    char backend[32];    /* pm_backend_name reported by rank 0             */
    bool ok;             /* measured                                       */
    bool skipped;        /* not run (e.g. no pmd binary)                   */
    char error[512];     /* why not, when !ok && !skipped                  */
    s_stats_t st;        /* ns                                             */
    long create_us;      /* pm_create_parallel_manager on rank 0, -1 = n/a */
    long destroy_us;     /* pm_destroy on rank 0, -1 = n/a                 */
} s_row_t;

typedef struct {
    long raw_iterations;
    long raw_warmup;
    long iterations;     /* pm iterations for every rank count, 0 = default */
    bool quick;
    bool no_pmd;
    const char *pmd_path;
    int timeout_s;       /* per configuration                               */
    int ranks[S_MAX_CONFIGS];
    int nranks;
    char self[PATH_MAX]; /* this binary                                     */
} s_config_t;

static s_row_t s_rows[S_MAX_ROWS];
static int s_nrows;

static long
s_pm_iterations (const s_config_t *cfg, int ranks)
{
    if (cfg->iterations > 0)
        return cfg->iterations;
    if (cfg->quick)
        return ranks <= 2 ? 200 : 100;
    return ranks <= 2 ? 5000 : 2000;
}

static long
s_pm_warmup (const s_config_t *cfg, long iterations)
{
    if (cfg->quick)
        return 20;
    long w = iterations / 10;
    return w < 10 ? 10 : w > 500 ? 500 : w;
}

static s_row_t *
s_new_row (const char *what, int ranks, const char *transport, const char *via)
{
    if (s_nrows >= S_MAX_ROWS)
        return NULL;
    s_row_t *row = &s_rows[s_nrows++];
    memset (row, 0, sizeof *row);
    bench_format (row->what, sizeof row->what, "%s", what);
    bench_format (row->transport, sizeof row->transport, "%s", transport);
    bench_format (row->via, sizeof row->via, "%s", via);
    row->ranks = ranks;
    row->create_us = row->destroy_us = -1;
    return row;
}

/* Fills rows (whose `what` the child reports) from a child's output. */
static void
s_parse_child (const char *text, int status, const char *err, s_row_t **rows, int nrows)
{
    char error[512] = "";
    char backend[32] = "";
    long create_us = -1, destroy_us = -1;
    char buf[1024];
    for (const char *cursor = text; bench_next_line (&cursor, buf, sizeof buf);) {
        char what[32];
        s_stats_t st;
        if (sscanf (buf, "RESULT %31s %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                         " %" SCNu64,
                    what, &st.count, &st.p50, &st.p99, &st.mean, &st.min, &st.max)
            == 7) {
            for (int i = 0; i < nrows; i++)
                if (strcmp (rows[i]->what, what) == 0) {
                    rows[i]->st = st;
                    rows[i]->ok = true;
                }
        } else if (strncmp (buf, "INFO backend ", 13) == 0)
            bench_format (backend, sizeof backend, "%s", buf + 13);
        else if (sscanf (buf, "INFO create_us %ld", &create_us) == 1)
            ;
        else if (sscanf (buf, "INFO destroy_us %ld", &destroy_us) == 1)
            ;
        else if (strncmp (buf, "ERROR ", 6) == 0 && !error[0])
            bench_format (error, sizeof error, "%s", buf + 6);
    }
    if (!error[0] && err && err[0])
        bench_format (error, sizeof error, "%s", err);
    if (!error[0] && status != 0)
        bench_describe_status (status, error, sizeof error);
    for (int i = 0; i < nrows; i++) {
        bench_format (rows[i]->backend, sizeof rows[i]->backend, "%s", backend);
        rows[i]->create_us = create_us;
        rows[i]->destroy_us = destroy_us;
        if (!rows[i]->ok)
            bench_format (rows[i]->error, sizeof rows[i]->error, "%s",
                          error[0] ? error : "no result reported");
        else if (error[0]) /* measured, but something went wrong after */
            bench_format (rows[i]->error, sizeof rows[i]->error, "%s", error);
    }
}

/* pin: both ends bound to one CPU (the "raw1cpu" row, for reference). */
static void
s_measure_raw (const s_config_t *cfg, const char *transport, bool pin)
{
    s_row_t *row = s_new_row (pin ? "raw1cpu" : "raw", 2, transport, "");
    if (!row)
        return;
    bench_progress ("raw zmq round trip over %s%s ...", transport, pin ? " on one CPU" : "");
    char iters[32], warm[32], err[256];
    bench_format (iters, sizeof iters, "%ld", cfg->raw_iterations);
    bench_format (warm, sizeof warm, "%ld", cfg->raw_warmup);
    char *const args[] = { (char *) cfg->self, "--child", "raw", (char *) transport,
                           iters, warm, pin ? "pin" : NULL, NULL };
    int status;
    char *text = bench_run_child (cfg->self, args, cfg->timeout_s, &status, err, sizeof err);
    s_parse_child (text, status, err, &row, 1);
    free (text);
}

static void
s_measure_pm (const s_config_t *cfg, int ranks, const char *transport, const char *via)
{
    s_row_t *rows[2] = { s_new_row ("barrier", ranks, transport, via),
                         s_new_row ("allreduce", ranks, transport, via) };
    if (!rows[0] || !rows[1])
        return;
    bench_progress ("pm n=%d via %s ...", ranks, via);
    long iterations = s_pm_iterations (cfg, ranks);
    char n[16], iters[32], warm[32], err[256];
    bench_format (n, sizeof n, "%d", ranks);
    bench_format (iters, sizeof iters, "%ld", iterations);
    bench_format (warm, sizeof warm, "%ld", s_pm_warmup (cfg, iterations));
    char *const args[] = { (char *) cfg->self, "--child", "pm", n, iters, warm, NULL };
    int status;
    char *text = bench_run_child (cfg->self, args, cfg->timeout_s, &status, err, sizeof err);
    s_parse_child (text, status, err, rows, 2);
    free (text);
}

/* Starts pmd on an ephemeral tcp port; returns its pid and fills endpoint,
   or -1 with the reason in err.                                           */
static pid_t
s_start_pmd (const s_config_t *cfg, const char *pmd, const char *dir, char *endpoint,
             size_t endpoint_size, char *err, size_t err_size)
{
    char ready[PATH_MAX + 16];
    bench_format (ready, sizeof ready, "%s/pmd.ready", dir);
    char *const args[] = { (char *) pmd,  "--bind",      "tcp://127.0.0.1:*", "--ready-file",
                           ready,        "--log-level", "warn",             NULL };
    pid_t pid = bench_spawn (pmd, args, err, err_size);
    if (pid < 0)
        return -1;
    uint64_t deadline = bench_now_ns () + (uint64_t) (cfg->quick ? 15 : 30) * 1000000000u;
    while (bench_now_ns () < deadline && !bench_interrupted) {
        int status;
        if (waitpid (pid, &status, WNOHANG) == pid) {
            if (WIFSIGNALED (status))
                bench_format (err, err_size, "pmd died of signal %d before it was ready",
                              WTERMSIG (status));
            else
                bench_format (err, err_size, "pmd exited with status %d before it was ready",
                              WEXITSTATUS (status));
            return -1;
        }
        FILE *f = fopen (ready, "r");
        if (f) {
            char line[512] = "";
            bool have = fgets (line, sizeof line, f) != NULL;
            fclose (f);
            /* The ready file's first line is the endpoint pmd listens on. */
            char *nl = have ? strchr (line, '\n') : NULL;
            if (nl) {
                *nl = '\0';
                bench_format (endpoint, endpoint_size, "%s", line);
                unlink (ready);
                return pid;
            }
        }
        usleep (10000);
    }
    kill (pid, SIGKILL);
    bench_reap (pid, 1000);
    unlink (ready);
    bench_format (err, err_size, "pmd did not write %s in time", ready);
    return -1;
}

static void
s_stop_pmd (pid_t pid, char *note, size_t note_size)
{
    kill (pid, SIGTERM);
    int status = bench_reap (pid, 5000);
    if (status == -1)
        bench_format (note, note_size, "pmd ignored SIGTERM for 5 s and was killed");
    else if (WIFSIGNALED (status) && WTERMSIG (status) != SIGTERM)
        bench_format (note, note_size, "pmd died of signal %d on SIGTERM", WTERMSIG (status));
    else if (WIFEXITED (status) && WEXITSTATUS (status) != 0)
        bench_format (note, note_size, "pmd exited with status %d on SIGTERM",
                      WEXITSTATUS (status));
}

/* pm rows through a standalone pmd over tcp.  Returns a note for the table
   footer ("" if none).                                                     */
static void
s_measure_pmd (const s_config_t *cfg, char *note, size_t note_size)
{
    char pmd[PATH_MAX];
    if (cfg->pmd_path)
        bench_format (pmd, sizeof pmd, "%s", cfg->pmd_path);
    else {
        bench_format (pmd, sizeof pmd, "%s", cfg->self);
        char *slash = strrchr (pmd, '/');
        if (slash)
            bench_format (slash + 1, sizeof pmd - (size_t) (slash + 1 - pmd), "pmd");
    }
    if (access (pmd, X_OK) != 0) {
        bench_format (note, note_size, "pmd rows skipped: no executable %s", pmd);
        return;
    }
    char dir[PATH_MAX];
    bench_make_temp_dir (dir, sizeof dir);
    if (!dir[0]) {
        bench_format (note, note_size, "pmd rows skipped: mkdtemp: %s", strerror (errno));
        return;
    }
    bench_progress ("starting pmd ...");
    char endpoint[512], err[512];
    pid_t pid = s_start_pmd (cfg, pmd, dir, endpoint, sizeof endpoint, err, sizeof err);
    if (pid < 0) {
        for (int i = 0; i < cfg->nranks; i++) {
            s_row_t *rows[2] = { s_new_row ("barrier", cfg->ranks[i], "tcp", "pmd"),
                                 s_new_row ("allreduce", cfg->ranks[i], "tcp", "pmd") };
            for (int j = 0; j < 2; j++)
                if (rows[j])
                    bench_format (rows[j]->error, sizeof rows[j]->error, "%s", err);
        }
        rmdir (dir);
        return;
    }
    setenv ("PM_ENDPOINT", endpoint, 1);
    for (int i = 0; i < cfg->nranks && !bench_interrupted; i++)
        s_measure_pm (cfg, cfg->ranks[i], "tcp", "pmd");
    unsetenv ("PM_ENDPOINT");
    s_stop_pmd (pid, note, note_size);
    rmdir (dir);
}

static double
s_us (uint64_t ns)
{
    return (double) ns / 1000.0;
}

/* The goal for a row (p50 ratio to raw), 0 if none. */
static double
s_goal (const s_row_t *row)
{
    if (strcmp (row->what, "barrier") != 0)
        return 0;
    if (row->ranks == 2)
        return 1.5;
    if (row->ranks == 16)
        return 5.0;
    return 0;
}

static const s_row_t *
s_raw_for (const char *transport)
{
    for (int i = 0; i < s_nrows; i++)
        if (strcmp (s_rows[i].what, "raw") == 0 && strcmp (s_rows[i].transport, transport) == 0)
            return &s_rows[i];
    return NULL;
}

static int
s_print_table (const s_config_t *cfg, const char *pmd_note)
{
    long cpus = sysconf (_SC_NPROCESSORS_ONLN);
    int failures = 0;
    printf ("pm latency benchmark (%ld CPU%s online; latency per operation, p50 / p99 in µs)\n",
            cpus, cpus == 1 ? "" : "s");
    printf ("ratio = pm / raw zmq DEALER<->ROUTER round trip (8-byte payload) on the same "
            "transport, same run\n");
    printf ("iterations: raw %ld (+%ld warm-up)", cfg->raw_iterations, cfg->raw_warmup);
    for (int i = 0; i < cfg->nranks; i++) {
        long it = s_pm_iterations (cfg, cfg->ranks[i]);
        printf (", pm n=%d %ld (+%ld)", cfg->ranks[i], it, s_pm_warmup (cfg, it));
    }
    printf ("%s\n\n", cfg->quick ? "  [--quick: numbers are rough]" : "");

    printf ("%-27s %5s  %-14s %9s %9s %10s %10s  %s\n", "operation", "ranks", "transport", "p50",
            "p99", "p50 ratio", "p99 ratio", "goal (p50 ratio)");
    const char *last_transport = "";
    for (int i = 0; i < s_nrows; i++) {
        const s_row_t *row = &s_rows[i];
        if (strcmp (row->transport, last_transport) != 0 && i > 0)
            printf ("\n");
        last_transport = row->transport;
        const char *label = strcmp (row->what, "raw") == 0       ? "raw zmq DEALER<->ROUTER rtt"
                            : strcmp (row->what, "raw1cpu") == 0 ? "  same, both ends on 1 CPU"
                            : strcmp (row->what, "barrier") == 0 ? "barrier"
                                                                 : "allreduce 1 double, sum";
        char transport[32];
        bench_format (transport, sizeof transport, "%s%s%s", row->transport, row->via[0] ? " " : "",
                      row->via);
        char ranks[16];
        bench_format (ranks, sizeof ranks, "n=%d", row->ranks);
        bool raw_row = strncmp (row->what, "raw", 3) == 0;
        printf ("%-27s %5s  %-14s ", label, raw_row ? "" : ranks, transport);
        if (!row->ok) {
            failures++;
            printf ("FAILED: %s\n", row->error);
            continue;
        }
        printf ("%9.1f %9.1f", s_us (row->st.p50), s_us (row->st.p99));
        const s_row_t *raw = s_raw_for (row->transport);
        if (raw_row || !raw || !raw->ok || !raw->st.p50 || !raw->st.p99) {
            printf ("\n");
            continue;
        }
        double r50 = (double) row->st.p50 / (double) raw->st.p50;
        double r99 = (double) row->st.p99 / (double) raw->st.p99;
        printf (" %9.2fx %9.2fx", r50, r99);
        double goal = s_goal (row);
        if (goal > 0)
            printf ("  <= %.1fx %s", goal, r50 <= goal ? "met" : "MISSED");
        printf ("\n");
    }

    /* Details: the rest of each distribution and the cost of setting up. */
    printf ("\ndetails (µs):\n");
    for (int i = 0; i < s_nrows; i++) {
        const s_row_t *row = &s_rows[i];
        if (!row->ok)
            continue;
        char name[64];
        bench_format (name, sizeof name, "%s n=%d %s%s%s", row->what, row->ranks, row->transport,
                      row->via[0] ? " " : "", row->via);
        printf ("  %-28s min %8.1f  mean %8.1f  max %9.1f", name, s_us (row->st.min),
                s_us (row->st.mean), s_us (row->st.max));
        if (row->create_us >= 0 && strcmp (row->what, "barrier") == 0)
            printf ("   create %.1f ms, destroy %.1f ms, backend %s", row->create_us / 1000.0,
                    row->destroy_us / 1000.0, row->backend[0] ? row->backend : "?");
        printf ("\n");
        if (row->error[0])
            printf ("  %-28s note: %s\n", "", row->error);
    }
    for (int i = 0; i < cfg->nranks; i++)
        if (cfg->ranks[i] > cpus && cpus > 0) {
            printf ("note: n=%d runs %d ranks on %ld CPUs (oversubscribed %.0fx): ranks are "
                    "descheduled while waiting, which dominates the n=%d numbers\n",
                    cfg->ranks[i], cfg->ranks[i], cpus, (double) cfg->ranks[i] / cpus,
                    cfg->ranks[i]);
            break;
        }
    const s_row_t *raw = s_raw_for ("ipc"), *one = NULL;
    for (int i = 0; i < s_nrows; i++)
        if (strcmp (s_rows[i].what, "raw1cpu") == 0)
            one = &s_rows[i];
    if (raw && one && raw->ok && one->ok && one->st.p50 * 4 < raw->st.p50 * 3)
        printf ("note: here a round trip between two CPUs costs %.1fx one on a single CPU: waking "
                "an idle CPU is expensive (typical of VMs).  A pm group keeps more threads busy, so "
                "ratios can come out below 1x; the 1-CPU row is the tighter floor\n",
                (double) raw->st.p50 / (double) one->st.p50);
    if (pmd_note && pmd_note[0])
        printf ("note: %s\n", pmd_note);
    fflush (stdout);
    return failures;
}

static void
s_usage (FILE *out)
{
    fprintf (out,
             "usage: pm-bench-latency [--quick] [--iterations K] [--raw-iterations K]\n"
             "                        [--ranks N[,N...]] [--no-pmd] [--pmd PATH] [--timeout S]\n"
             "\n"
             "Latency of pm's barrier (pm_sync_with_peers) and 8-byte allreduce\n"
             "(pm_sum_values_and_sync of one double) through the embedded coordinator\n"
             "(MultiProcessing, ipc) and through a standalone pmd (tcp), next to the raw\n"
             "ZeroMQ DEALER<->ROUTER round trip on the same transport.  Prints p50/p99 in\n"
             "microseconds and the ratio pm/raw; never fails on the numbers.\n"
             "\n"
             "  --quick             few iterations (smoke test; rough numbers)\n"
             "  --iterations K      pm iterations per configuration (default 5000 for n=2,\n"
             "                      2000 for larger groups; warm-up is K/10, 10..500)\n"
             "  --raw-iterations K  raw round trips (default 20000, +1000 warm-up)\n"
             "  --ranks LIST        group sizes, comma-separated (default 2,16)\n"
             "  --no-pmd            skip the rows through a standalone pmd\n"
             "  --pmd PATH          the pmd binary (default: next to this one)\n"
             "  --timeout S         seconds allowed per configuration (default 300;\n"
             "                      15 with --quick)\n"
             "  --help              this text\n"
             "\n"
             "Exit status: 0 when every row was measured, 1 when a configuration failed\n"
             "(the table says which and why), 2 on a usage error.\n");
}

int
main (int argc, char *argv[])
{
    /* Internal entry points, re-executed by the driver. */
    if (argc >= 2 && strcmp (argv[1], "--child") == 0) {
        long a = 0, b = 0, c = 0;
        if ((argc == 6 || (argc == 7 && strcmp (argv[6], "pin") == 0))
            && strcmp (argv[2], "raw") == 0 && bench_parse_long (argv[4], 1, 100000000, &a)
            && bench_parse_long (argv[5], 0, 100000000, &b))
            return s_child_raw (argv[3], a, b, argc == 7);
        if (argc == 6 && strcmp (argv[2], "pm") == 0 && bench_parse_long (argv[3], 1, 100000, &a)
            && bench_parse_long (argv[4], 1, 100000000, &b)
            && bench_parse_long (argv[5], 0, 100000000, &c))
            return s_child_pm ((int) a, b, c);
        fprintf (stderr, "pm-bench-latency: bad --child arguments\n");
        return 2;
    }

    s_config_t cfg = { .raw_iterations = 0, .timeout_s = 0 };
    long raw_iterations = 0, timeout = 0;
    const char *ranks_text = "2,16";
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0) {
            s_usage (stdout);
            return 0;
        } else if (strcmp (arg, "--quick") == 0)
            cfg.quick = true;
        else if (strcmp (arg, "--no-pmd") == 0)
            cfg.no_pmd = true;
        else if (strcmp (arg, "--iterations") == 0 && value
                 && bench_parse_long (value, 1, 100000000, &cfg.iterations))
            i++;
        else if (strcmp (arg, "--raw-iterations") == 0 && value
                 && bench_parse_long (value, 1, 100000000, &raw_iterations))
            i++;
        else if (strcmp (arg, "--timeout") == 0 && value
                 && bench_parse_long (value, 1, 86400, &timeout))
            i++;
        else if (strcmp (arg, "--pmd") == 0 && value)
            cfg.pmd_path = argv[++i];
        else if (strcmp (arg, "--ranks") == 0 && value) {
            ranks_text = value;
            i++;
        } else {
            fprintf (stderr, "pm-bench-latency: bad argument '%s'\n\n", arg);
            s_usage (stderr);
            return 2;
        }
    }
    for (const char *p = ranks_text; *p;) {
        char *end;
        long n = strtol (p, &end, 10);
        if (end == p || n < 2 || n > 1024 || cfg.nranks == S_MAX_CONFIGS
            || (*end && *end != ',')) {
            fprintf (stderr, "pm-bench-latency: bad --ranks '%s' (sizes 2..1024, up to %d)\n",
                     ranks_text, S_MAX_CONFIGS);
            return 2;
        }
        cfg.ranks[cfg.nranks++] = (int) n;
        p = *end ? end + 1 : end;
    }
    if (cfg.nranks == 0) {
        fprintf (stderr, "pm-bench-latency: --ranks is empty\n");
        return 2;
    }
    cfg.raw_iterations = raw_iterations > 0 ? raw_iterations : cfg.quick ? 2000 : 20000;
    cfg.raw_warmup = cfg.quick ? 100 : 1000;
    cfg.timeout_s = timeout > 0 ? (int) timeout : cfg.quick ? 15 : 300;
    if (!bench_self_path (cfg.self, sizeof cfg.self)) {
        fprintf (stderr, "pm-bench-latency: readlink /proc/self/exe: %s\n", strerror (errno));
        return 1;
    }

    /* The embedded rows measure the embedded coordinator whatever the
       caller's environment says; a killed configuration leaves no zombies;
       one private directory holds everything this run puts on disk (the
       raw ipc sockets, pmd's ready file and, through TMPDIR, libpm's own
       ipc sockets), removed at the end, interrupted or not.               */
    char run_dir[PATH_MAX];
    if (!bench_driver_setup ("pm-bench-latency", run_dir, sizeof run_dir))
        return 1;

    char pmd_note[512] = "";
    s_measure_raw (&cfg, "ipc", false);
    if (sysconf (_SC_NPROCESSORS_ONLN) > 1 && !bench_interrupted)
        s_measure_raw (&cfg, "ipc", true);
    for (int i = 0; i < cfg.nranks && !bench_interrupted; i++)
        s_measure_pm (&cfg, cfg.ranks[i], "ipc", "embedded");
    if (!bench_interrupted)
        s_measure_raw (&cfg, "tcp", false);
    if (!cfg.no_pmd && !bench_interrupted)
        s_measure_pmd (&cfg, pmd_note, sizeof pmd_note);
    bench_remove_tree (run_dir, 3);
    bench_progress_clear ();
    if (bench_interrupted) {
        fprintf (stderr, "pm-bench-latency: interrupted (signal %d)\n", (int) bench_interrupted);
        return 128 + (int) bench_interrupted;
    }
    int failures = s_print_table (&cfg, pmd_note);
    return failures ? 1 : 0;
}
