/*  test_factory.c — unit tests (Criterion) of the manager factory, errors,
    dtypes, logging and the trivial (Serial) collectives.

    Every Test runs in its own process (Criterion forks), so setenv inside a
    test only affects that test; the fixture clears the PM_* and MPI
    variables first.                                                        */
#include "pm.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SEED_GATHER_MSG "Gathering arrays to root cannot be done with mismatched sizes"

static void clean_env (void)
{
    static const char *vars[] = {"PM_RANK",
                                 "PM_SIZE",
                                 "PM_ENDPOINT",
                                 "PM_GROUP",
                                 "OMPI_COMM_WORLD_SIZE",
                                 "PMI_SIZE",
                                 "PM_MPI_MODULE",
                                 "MV2_COMM_WORLD_SIZE",
                                 "PM_LOG_LEVEL",
                                 "PM_CONNECT_TIMEOUT_MS",
                                 "PM_JOIN_TIMEOUT_MS",
                                 "PM_HEARTBEAT_IVL_MS",
                                 "PM_HEARTBEAT_TIMEOUT_MS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv (vars[i]);
}

TestSuite (factory, .init = clean_env);
TestSuite (errors, .init = clean_env);
TestSuite (dtypes, .init = clean_env);
TestSuite (logging, .init = clean_env);
TestSuite (serial, .init = clean_env);
TestSuite (threads, .init = clean_env);
TestSuite (processes, .init = clean_env);

static long now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *err0 (void)
{
    const char *m = pm_last_error (NULL);
    return m ? m : "(null)";
}

static bool contains_ci (const char *hay, const char *needle)
{
    return hay && strcasestr (hay, needle) != NULL;
}

/* ---- log capture ---------------------------------------------------------- */

#define MAX_LINES 64
static struct {
    pthread_mutex_t lock;
    int count;
    pm_log_level_t level[MAX_LINES];
    char line[MAX_LINES][512];
} g_log = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void capture (pm_log_level_t level, const char *id, const char *line, void *arg)
{
    (void) id;
    atomic_int *calls = arg;
    if (calls)
        atomic_fetch_add (calls, 1);
    pthread_mutex_lock (&g_log.lock);
    if (g_log.count < MAX_LINES) {
        g_log.level[g_log.count] = level;
        snprintf (g_log.line[g_log.count], sizeof g_log.line[0], "%s", line ? line : "");
        g_log.count++;
    }
    pthread_mutex_unlock (&g_log.lock);
}

/* index of the first captured line at `level` containing needle, or -1 */
static int find_line (pm_log_level_t level, const char *needle)
{
    int found = -1;
    pthread_mutex_lock (&g_log.lock);
    for (int i = 0; i < g_log.count && found < 0; i++)
        if (g_log.level[i] == level && contains_ci (g_log.line[i], needle))
            found = i;
    pthread_mutex_unlock (&g_log.lock);
    return found;
}

/* ---- factory --------------------------------------------------------------- */

static void expect_serial (pm_manager_t *pm, const char *kw, int n)
{
    cr_assert_not_null (pm, "pm_create_parallel_manager(\"%s\", %d) returned NULL: %s", kw, n,
                        err0 ());
    cr_expect_str_eq (pm_backend_name (pm), "Serial", "backend of (\"%s\", %d) is %s", kw, n,
                      pm_backend_name (pm));
    cr_expect_eq (pm_get_rank (pm), 0, "rank of (\"%s\", %d)", kw, n);
    cr_expect_eq (pm_number_of_worker_processes (pm), 1, "size of (\"%s\", %d)", kw, n);
    cr_expect (pm_is_root_process (pm), "(\"%s\", %d) is not root", kw, n);
}

Test (factory, n_le_1_is_serial_whatever_the_keyword, .timeout = 20)
{
    static const char *kws[] = {"Serial",  "serial", "ConcurrentFutures", "concurrent.futures",
                                "MultiProcessing", "MPI", "RayIo", "ray", "no-such-backend", ""};
    static const int ns[] = {1, 0, -1, -100};
    for (size_t k = 0; k < sizeof kws / sizeof kws[0]; k++) {
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
            pm_manager_t *pm = pm_create_parallel_manager (kws[k], ns[i], NULL);
            expect_serial (pm, kws[k], ns[i]);
            pm_destroy (&pm);
            cr_assert_null (pm, "pm_destroy did not null the pointer");
        }
    }
}

Test (factory, serial_keyword_with_n_gt_1_is_serial, .timeout = 10)
{
    pm_manager_t *pm = pm_create_parallel_manager ("Serial", 4, NULL);
    expect_serial (pm, "Serial", 4);
    pm_destroy (&pm);
}

Test (factory, destroy_of_null_is_harmless, .timeout = 10)
{
    pm_manager_t *pm = NULL;
    pm_destroy (&pm);
    cr_assert_null (pm);
}

Test (factory, mpi_and_ray_are_not_supported, .timeout = 10)
{
    static const char *kws[] = {"MPI", "mpi", "Mpi", "RayIo", "rayio", "RAYIO", "ray", "Ray"};
    for (size_t k = 0; k < sizeof kws / sizeof kws[0]; k++) {
        pm_manager_t *pm = pm_create_parallel_manager (kws[k], 2, NULL);
        cr_expect_null (pm, "pm_create_parallel_manager(\"%s\", 2) should fail", kws[k]);
        if (pm) {
            pm_destroy (&pm);
            continue;
        }
        cr_expect_eq (pm_last_error_code (NULL), PM_ENOTSUP, "\"%s\": code %d (%s), expected PM_ENOTSUP",
                      kws[k], pm_last_error_code (NULL), pm_strerror (pm_last_error_code (NULL)));
        cr_expect (pm_last_error (NULL) && *pm_last_error (NULL), "\"%s\": empty pm_last_error (NULL)",
                   kws[k]);
    }
}

Test (factory, unknown_keyword_is_serial_with_a_warning, .timeout = 10)
{
    atomic_int calls = 0;
    pm_log_set_handler (capture, &calls);
    pm_manager_t *pm = pm_create_parallel_manager ("Dask", 3, NULL);
    expect_serial (pm, "Dask", 3);
    pm_destroy (&pm);
    cr_assert_gt (atomic_load (&calls), 0, "no log line reached the handler");
    /* the warning names the valid keywords */
    static const char *valid[] = {"ConcurrentFutures", "MultiProcessing", "MPI", "RayIo"};
    int line = -1;
    pthread_mutex_lock (&g_log.lock);
    for (int i = 0; i < g_log.count && line < 0; i++) {
        bool all = g_log.level[i] == PM_LOG_WARN;
        for (size_t v = 0; v < sizeof valid / sizeof valid[0]; v++)
            all = all && contains_ci (g_log.line[i], valid[v]);
        if (all)
            line = i;
    }
    int count = g_log.count;
    pthread_mutex_unlock (&g_log.lock);
    for (int i = 0; i < count; i++)
        cr_log_info ("captured log line %d (level %d): %s", i, (int) g_log.level[i], g_log.line[i]);
    cr_expect_geq (line, 0, "no PM_LOG_WARN line names ConcurrentFutures, MultiProcessing, MPI and RayIo");
}

Test (factory, keywords_are_case_insensitive_threads, .timeout = 20)
{
    static const char *kws[] = {"ConcurrentFutures", "concurrentfutures", "CONCURRENTFUTURES",
                                "concurrent.futures", "Concurrent.Futures"};
    for (size_t k = 0; k < sizeof kws / sizeof kws[0]; k++) {
        pm_manager_t *pm = pm_create_parallel_manager (kws[k], 3, NULL);
        cr_assert_not_null (pm, "pm_create_parallel_manager(\"%s\", 3): %s", kws[k], err0 ());
        cr_expect_str_eq (pm_backend_name (pm), "ConcurrentFutures", "backend of \"%s\"", kws[k]);
        cr_expect_eq (pm_number_of_worker_processes (pm), 3, "size of \"%s\"", kws[k]);
        pm_destroy (&pm);
    }
}

/* ---- environment ------------------------------------------------------------ */

/* An MPI launch wins over the keyword and over a pm-run rank.  The MPI
   module is pointed at a missing file, so creation must fail clearly
   (PM_ENOTSUP naming the module) — the real MPI path runs under mpirun in
   tests/mpi-launch.sh. */
Test (factory, mpi_launch_in_env_wins, .timeout = 10)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (size_t v = 0; v < 2; v++) {
        clean_env ();
        setenv (vars[v], "4", 1);
        setenv ("PM_MPI_MODULE", "/nonexistent/libpm_mpi.so", 1);
        pm_manager_t *pm = pm_create_parallel_manager ("ConcurrentFutures", 2, NULL);
        cr_expect_null (pm, "%s=4: expected NULL (MPI wins, its module is missing)", vars[v]);
        if (pm)
            pm_destroy (&pm);
        else {
            cr_expect_eq (pm_last_error_code (NULL), PM_ENOTSUP, "%s=4: code %d (%s)", vars[v],
                          pm_last_error_code (NULL), pm_strerror (pm_last_error_code (NULL)));
            cr_expect (strstr (pm_last_error (NULL), "/nonexistent/libpm_mpi.so") != NULL,
                       "the message names the module: %s", pm_last_error (NULL));
        }
    }
    /* MPI wins over a pm-run rank too */
    clean_env ();
    setenv ("OMPI_COMM_WORLD_SIZE", "2", 1);
    setenv ("PM_MPI_MODULE", "/nonexistent/libpm_mpi.so", 1);
    setenv ("PM_RANK", "0", 1);
    setenv ("PM_SIZE", "2", 1);
    setenv ("PM_ENDPOINT", "tcp://127.0.0.1:9", 1);
    pm_manager_t *pm = pm_create_parallel_manager ("ConcurrentFutures", 2, NULL);
    cr_expect_null (pm, "MPI environment + PM_RANK: expected NULL (MPI wins)");
    if (pm)
        pm_destroy (&pm);
    else
        cr_expect_eq (pm_last_error_code (NULL), PM_ENOTSUP, "MPI + PM_RANK: code %d (%s)",
                      pm_last_error_code (NULL), pm_strerror (pm_last_error_code (NULL)));
}

Test (factory, mpi_size_1_in_env_is_not_an_mpi_launch, .timeout = 10)
{
    setenv ("OMPI_COMM_WORLD_SIZE", "1", 1);
    setenv ("PMI_SIZE", "1", 1);
    pm_manager_t *pm = pm_create_parallel_manager ("ConcurrentFutures", 2, NULL);
    cr_assert_not_null (pm, "OMPI_COMM_WORLD_SIZE=1: %s", err0 ());
    cr_expect_str_eq (pm_backend_name (pm), "ConcurrentFutures");
    pm_destroy (&pm);
}

Test (factory, pm_rank_without_endpoint_is_einval, .timeout = 10)
{
    setenv ("PM_RANK", "1", 1);
    setenv ("PM_SIZE", "2", 1);
    pm_manager_t *pm = pm_create_parallel_manager ("ConcurrentFutures", 2, NULL);
    cr_expect_null (pm, "PM_RANK without PM_ENDPOINT should fail");
    if (pm)
        pm_destroy (&pm);
    else
        cr_expect_eq (pm_last_error_code (NULL), PM_EINVAL, "code %d (%s): %s",
                      pm_last_error_code (NULL), pm_strerror (pm_last_error_code (NULL)), err0 ());
}

/* a TCP port on 127.0.0.1 that is bound but not listening: connects are refused */
static int reserve_dead_port (int *port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    cr_assert_geq (fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    cr_assert_eq (bind (fd, (struct sockaddr *) &a, sizeof a), 0, "bind: %s", strerror (errno));
    socklen_t len = sizeof a;
    cr_assert_eq (getsockname (fd, (struct sockaddr *) &a, &len), 0);
    *port = ntohs (a.sin_port);
    return fd;
}

Test (factory, unreachable_endpoint_times_out, .timeout = 20)
{
    int port;
    int fd = reserve_dead_port (&port);
    char ep[64];
    snprintf (ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    setenv ("PM_RANK", "1", 1);
    setenv ("PM_SIZE", "2", 1);
    setenv ("PM_ENDPOINT", ep, 1);
    setenv ("PM_CONNECT_TIMEOUT_MS", "300", 1);
    setenv ("PM_JOIN_TIMEOUT_MS", "300", 1);
    long t0 = now_ms ();
    pm_manager_t *pm = pm_create_parallel_manager ("MultiProcessing", 2, NULL);
    long ms = now_ms () - t0;
    close (fd);
    cr_expect_null (pm, "joining a dead endpoint %s should fail", ep);
    if (pm) {
        pm_destroy (&pm);
        return;
    }
    int code = pm_last_error_code (NULL);
    cr_expect (code == PM_ETIMEDOUT || code == PM_ECONNECT,
               "code %d (%s), expected PM_ETIMEDOUT or PM_ECONNECT: %s", code, pm_strerror (code),
               err0 ());
    cr_expect_leq (ms, 5000, "took %ld ms with PM_CONNECT_TIMEOUT_MS=300", ms);
}

Test (factory, options_connect_timeout, .timeout = 20)
{
    int port;
    int fd = reserve_dead_port (&port);
    char ep[64];
    snprintf (ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    setenv ("PM_RANK", "1", 1);
    setenv ("PM_SIZE", "2", 1);
    setenv ("PM_ENDPOINT", ep, 1);
    pm_options_t opt = {.endpoint = ep, .group = "factory-test", .connect_timeout_ms = 300};
    long t0 = now_ms ();
    pm_manager_t *pm = pm_create_parallel_manager ("MultiProcessing", 2, &opt);
    long ms = now_ms () - t0;
    close (fd);
    cr_expect_null (pm, "joining a dead endpoint %s should fail", ep);
    if (pm) {
        pm_destroy (&pm);
        return;
    }
    int code = pm_last_error_code (NULL);
    cr_expect (code == PM_ETIMEDOUT || code == PM_ECONNECT, "code %d (%s): %s", code,
               pm_strerror (code), err0 ());
    cr_expect_leq (ms, 5000, "took %ld ms with options.connect_timeout_ms=300", ms);
}

/* ---- errors ------------------------------------------------------------------ */

Test (errors, strerror_texts_are_distinct, .timeout = 10)
{
    const char *texts[PM_ERROR_COUNT + 1];
    for (int i = 0; i < PM_ERROR_COUNT; i++) {
        texts[i] = pm_strerror (-i);
        cr_assert_not_null (texts[i], "pm_strerror(%d) is NULL", -i);
        cr_assert (*texts[i], "pm_strerror(%d) is empty", -i);
    }
    static const int unknown[] = {-PM_ERROR_COUNT, 1, 42, -1000, -2147483647 - 1, 2147483647};
    for (size_t u = 0; u < sizeof unknown / sizeof unknown[0]; u++) {
        const char *t = pm_strerror (unknown[u]);
        cr_assert_not_null (t, "pm_strerror(%d) is NULL", unknown[u]);
        cr_assert (*t, "pm_strerror(%d) is empty", unknown[u]);
        for (int i = 0; i < PM_ERROR_COUNT; i++)
            cr_expect_str_neq (t, texts[i], "unknown code %d has the text of code %d", unknown[u],
                               -i);
    }
    texts[PM_ERROR_COUNT] = pm_strerror (-PM_ERROR_COUNT);
    for (int i = 0; i <= PM_ERROR_COUNT; i++)
        for (int j = i + 1; j <= PM_ERROR_COUNT; j++)
            cr_expect_str_neq (texts[i], texts[j], "codes %d and %d share the text \"%s\"", -i, -j,
                               texts[i]);
    cr_expect_eq (PM_ECLOSED, -(PM_ERROR_COUNT - 1));
}

/* ---- dtypes ------------------------------------------------------------------ */

Test (dtypes, sizes_and_names, .timeout = 10)
{
    cr_expect_eq (pm_dtype_size (PM_INT32), 4);
    cr_expect_eq (pm_dtype_size (PM_INT64), 8);
    cr_expect_eq (pm_dtype_size (PM_FLOAT32), 4);
    cr_expect_eq (pm_dtype_size (PM_FLOAT64), 8);
    cr_expect_eq (pm_dtype_size (PM_BYTE), 1);
    cr_expect_eq (pm_dtype_size ((pm_dtype_t) PM_DTYPE_COUNT), 0);
    cr_expect_eq (pm_dtype_size ((pm_dtype_t) 99), 0);
    cr_expect_eq (pm_dtype_size ((pm_dtype_t) -1), 0);
    for (int i = 0; i < PM_DTYPE_COUNT; i++) {
        const char *a = pm_dtype_name ((pm_dtype_t) i);
        cr_assert (a && *a, "pm_dtype_name(%d) is NULL or empty", i);
        for (int j = 0; j < i; j++)
            cr_expect_str_neq (a, pm_dtype_name ((pm_dtype_t) j), "dtypes %d and %d share a name",
                               i, j);
    }
    for (int i = 0; i < PM_OP_COUNT; i++) {
        const char *a = pm_op_name ((pm_op_t) i);
        cr_assert (a && *a, "pm_op_name(%d) is NULL or empty", i);
        for (int j = 0; j < i; j++)
            cr_expect_str_neq (a, pm_op_name ((pm_op_t) j), "ops %d and %d share a name", i, j);
    }
}

/* ---- logging ------------------------------------------------------------------ */

Test (logging, level_error_filters_the_warning, .timeout = 10)
{
    atomic_int calls = 0;
    pm_log_set_handler (capture, &calls);
    pm_log_set_level (PM_LOG_ERROR);
    pm_manager_t *pm = pm_create_parallel_manager ("Dask", 2, NULL);
    expect_serial (pm, "Dask", 2);
    pm_destroy (&pm);
    cr_expect_lt (find_line (PM_LOG_WARN, ""), 0,
                  "a warning reached the handler at level PM_LOG_ERROR");
    pm_log_set_level (PM_LOG_WARN);
    pm = pm_create_parallel_manager ("Dask", 2, NULL);
    expect_serial (pm, "Dask", 2);
    pm_destroy (&pm);
    cr_expect_geq (find_line (PM_LOG_WARN, "MultiProcessing"), 0,
                   "no warning after pm_log_set_level (PM_LOG_WARN)");
}

Test (logging, env_log_level_error_filters_the_warning, .timeout = 10)
{
    setenv ("PM_LOG_LEVEL", "error", 1);
    atomic_int calls = 0;
    pm_log_set_handler (capture, &calls);
    pm_manager_t *pm = pm_create_parallel_manager ("Dask", 2, NULL);
    expect_serial (pm, "Dask", 2);
    pm_destroy (&pm);
    int warn = -1;
    pthread_mutex_lock (&g_log.lock);
    for (int i = 0; i < g_log.count; i++)
        if (g_log.level[i] >= PM_LOG_WARN)
            warn = i;
    pthread_mutex_unlock (&g_log.lock);
    cr_expect_lt (warn, 0, "PM_LOG_LEVEL=error, yet a line of level %d reached the handler: %s",
                  warn >= 0 ? (int) g_log.level[warn] : -1, warn >= 0 ? g_log.line[warn] : "");
}

/* ---- serial collectives --------------------------------------------------------- */

static int serial_fn (pm_manager_t *pm, void *arg)
{
    int *state = arg;
    state[0]++;
    state[1] = pm_get_rank (pm);
    state[2] = pm_number_of_worker_processes (pm);
    return state[3];
}

Test (serial, pm_run_runs_fn_once_and_returns_its_value, .timeout = 10)
{
    pm_manager_t *pm = pm_create_parallel_manager ("Serial", 1, NULL);
    cr_assert_not_null (pm);
    int state[4] = {0, -1, -1, 0};
    cr_expect_eq (pm_run (pm, serial_fn, state), 0);
    cr_expect_eq (state[0], 1, "fn ran %d times", state[0]);
    cr_expect_eq (state[1], 0);
    cr_expect_eq (state[2], 1);
    state[3] = 3;
    cr_expect_eq (pm_run (pm, serial_fn, state), 3, "pm_run should return the rank's value");
    cr_expect_eq (state[0], 2);
    pm_destroy (&pm);
}

Test (serial, collectives_are_identity, .timeout = 10)
{
    pm_manager_t *pm = pm_create_parallel_manager ("Serial", 1, NULL);
    cr_assert_not_null (pm);
    cr_expect_eq (pm_sync_with_peers (pm), 0);
    cr_expect_eq (pm_barrier (pm), 0);

    int32_t a[3] = {5, -7, 9}, b[3] = {0, 0, 0};
    cr_expect_eq (pm_sync_array_with_peers (pm, a, 3, PM_INT32), 0);
    cr_expect (a[0] == 5 && a[1] == -7 && a[2] == 9);
    for (int op = 0; op < PM_OP_COUNT; op++) {
        memset (b, 0, sizeof b);
        cr_expect_eq (pm_allreduce (pm, a, b, 3, PM_INT32, (pm_op_t) op), 0, "allreduce op %d", op);
        cr_expect (memcmp (a, b, sizeof a) == 0, "allreduce op %d of one rank is not the identity", op);
        memset (b, 0, sizeof b);
        cr_expect_eq (pm_reduce (pm, a, b, 3, PM_INT32, (pm_op_t) op, 0), 0, "reduce op %d", op);
        cr_expect (memcmp (a, b, sizeof a) == 0, "reduce op %d of one rank is not the identity", op);
    }
    double d[2] = {1.5, -2.25}, e[2] = {0, 0};
    cr_expect_eq (pm_sum_values_and_sync (pm, d, e, 2, PM_FLOAT64), 0);
    cr_expect (e[0] == 1.5 && e[1] == -2.25);

    size_t counts[1] = {3};
    memset (b, 0, sizeof b);
    cr_expect_eq (pm_gather_arrays_to_root (pm, a, 3, PM_INT32, b, counts), 0);
    cr_expect (memcmp (a, b, sizeof a) == 0);
    memset (b, 0, sizeof b);
    cr_expect_eq (pm_gatherv (pm, a, 3, PM_INT32, b, counts, 0), 0);
    cr_expect (memcmp (a, b, sizeof a) == 0);
    memset (b, 0, sizeof b);
    cr_expect_eq (pm_scatterv (pm, a, counts, PM_INT32, b, 3, 0), 0);
    cr_expect (memcmp (a, b, sizeof a) == 0);
    memset (b, 0, sizeof b);
    cr_expect_eq (pm_allgather (pm, a, 3, PM_INT32, b, counts), 0);
    cr_expect (memcmp (a, b, sizeof a) == 0);
    cr_expect_eq (pm_bcast (pm, a, 3, PM_INT32, 0), 0);
    cr_expect (a[0] == 5 && a[1] == -7 && a[2] == 9);

    char blob[] = "hello";
    void *data = blob;
    size_t size = sizeof blob;
    cr_expect_eq (pm_sync_bytes_with_peers (pm, &data, &size), 0);
    cr_expect (data == blob && size == sizeof blob, "root's data/size changed");

    pm_blobs_t *all = NULL;
    cr_expect_eq (pm_combine_data_with_peers (pm, blob, sizeof blob, &all), 0);
    cr_assert_not_null (all);
    cr_expect_eq (pm_blobs_count (all), 1);
    size_t got = 0;
    const void *p = pm_blobs_data (all, 0, &got);
    cr_expect_eq (got, sizeof blob);
    cr_expect (p && memcmp (p, blob, sizeof blob) == 0);
    pm_blobs_destroy (&all);
    cr_expect_null (all);
    pm_destroy (&pm);
}

Test (serial, mismatched_sizes_are_einval, .timeout = 10)
{
    pm_manager_t *pm = pm_create_parallel_manager ("Serial", 1, NULL);
    cr_assert_not_null (pm);
    int32_t a[4] = {1, 2, 3, 4}, b[8];
    size_t counts[1] = {3};
    int rc = pm_gather_arrays_to_root (pm, a, 2, PM_INT32, b, counts);
    cr_expect_eq (rc, PM_EINVAL, "pm_gather_arrays_to_root: %d (%s)", rc, pm_strerror (rc));
    cr_expect (contains_ci (pm_last_error (pm), SEED_GATHER_MSG), "message is \"%s\"",
               pm_last_error (pm) ? pm_last_error (pm) : "(null)");
    cr_expect_eq (pm_last_error_code (pm), PM_EINVAL);
    rc = pm_gatherv (pm, a, 2, PM_INT32, b, counts, 0);
    cr_expect_eq (rc, PM_EINVAL, "pm_gatherv: %d (%s)", rc, pm_strerror (rc));
    rc = pm_scatterv (pm, a, counts, PM_INT32, b, 2, 0);
    cr_expect_eq (rc, PM_EINVAL, "pm_scatterv: %d (%s)", rc, pm_strerror (rc));
    rc = pm_allgather (pm, a, 2, PM_INT32, b, counts);
    cr_expect_eq (rc, PM_EINVAL, "pm_allgather: %d (%s)", rc, pm_strerror (rc));
    cr_expect_eq (pm_barrier (pm), 0, "a barrier after PM_EINVAL failed");
    pm_destroy (&pm);
}

Test (serial, bad_arguments_are_einval, .timeout = 10)
{
    pm_manager_t *pm = pm_create_parallel_manager ("Serial", 1, NULL);
    cr_assert_not_null (pm);
    int32_t a[2] = {1, 2}, b[2];
    int rc = pm_bcast (pm, a, 2, PM_INT32, 1);
    cr_expect_eq (rc, PM_EINVAL, "pm_bcast root=1 of 1: %d", rc);
    rc = pm_bcast (pm, a, 2, PM_INT32, -1);
    cr_expect_eq (rc, PM_EINVAL, "pm_bcast root=-1: %d", rc);
    rc = pm_reduce (pm, a, b, 2, PM_INT32, PM_SUM, 1);
    cr_expect_eq (rc, PM_EINVAL, "pm_reduce root=1 of 1: %d", rc);
    rc = pm_allreduce (pm, a, b, 2, (pm_dtype_t) 99, PM_SUM);
    cr_expect_eq (rc, PM_EINVAL, "pm_allreduce dtype 99: %d", rc);
    rc = pm_allreduce (pm, a, b, 2, PM_INT32, (pm_op_t) 99);
    cr_expect_eq (rc, PM_EINVAL, "pm_allreduce op 99: %d", rc);
    cr_expect_eq (pm_last_error_code (pm), PM_EINVAL);
    cr_expect (pm_last_error (pm) && *pm_last_error (pm), "empty pm_last_error after PM_EINVAL");
    rc = pm_sync_bytes_with_peers (pm, NULL, NULL);
    cr_expect_eq (rc, PM_EINVAL, "pm_sync_bytes_with_peers (NULL, NULL): %d", rc);
    rc = pm_combine_data_with_peers (pm, a, sizeof a, NULL);
    cr_expect_eq (rc, PM_EINVAL, "pm_combine_data_with_peers (all=NULL): %d", rc);
    cr_expect_eq (pm_barrier (pm), 0);
    pm_destroy (&pm);

    /* a NULL manager: a negative PM_E* code, never a crash */
    rc = pm_barrier (NULL);
    cr_expect (rc < 0 && rc > -PM_ERROR_COUNT, "pm_barrier (NULL) returned %d", rc);
    rc = pm_allreduce (NULL, a, b, 2, PM_INT32, PM_SUM);
    cr_expect (rc < 0 && rc > -PM_ERROR_COUNT, "pm_allreduce (NULL, ...) returned %d", rc);
}

/* ---- threads ------------------------------------------------------------------------ */

typedef struct {
    atomic_int mask;
    atomic_int calls;
    atomic_int bad;
} threads_state_t;

static int threads_fn (pm_manager_t *pm, void *arg)
{
    threads_state_t *s = arg;
    int r = pm_get_rank (pm);
    atomic_fetch_add (&s->calls, 1);
    if (r >= 0 && r < 30)
        atomic_fetch_or (&s->mask, 1 << r);
    if (pm_number_of_worker_processes (pm) != 4 || pm_is_root_process (pm) != (r == 0) ||
        strcmp (pm_backend_name (pm), "ConcurrentFutures") != 0)
        atomic_fetch_add (&s->bad, 1);
    return r == 1 ? 5 : r == 3 ? 7 : 0;
}

Test (threads, pm_run_runs_every_rank_and_returns_first_nonzero, .timeout = 20)
{
    pm_manager_t *pm = pm_create_parallel_manager ("ConcurrentFutures", 4, NULL);
    cr_assert_not_null (pm, "%s", err0 ());
    threads_state_t s;
    atomic_init (&s.mask, 0);
    atomic_init (&s.calls, 0);
    atomic_init (&s.bad, 0);
    int rc = pm_run (pm, threads_fn, &s);
    cr_expect_eq (rc, 5, "pm_run returned %d, expected 5 (rank 1's value, first non-zero)", rc);
    cr_expect_eq (atomic_load (&s.calls), 4);
    cr_expect_eq (atomic_load (&s.mask), 0xf, "ranks seen: mask 0x%x", atomic_load (&s.mask));
    cr_expect_eq (atomic_load (&s.bad), 0, "rank managers with wrong size/root/backend");
    pm_destroy (&pm);
}

Test (threads, collectives_on_the_outer_manager_fail, .timeout = 20)
{
    pm_manager_t *pm = pm_create_parallel_manager ("ConcurrentFutures", 2, NULL);
    cr_assert_not_null (pm, "%s", err0 ());
    int rc = pm_barrier (pm);
    cr_expect (rc < 0 && rc > -PM_ERROR_COUNT,
               "pm_barrier on the outer ConcurrentFutures manager returned %d", rc);
    pm_destroy (&pm);
}

/* ---- processes ---------------------------------------------------------------------- */

Test (processes, multiprocessing_keyword_forks_and_destroy_waits, .timeout = 30)
{
    int fds[2];
    cr_assert_eq (pipe (fds), 0);
    pid_t parent = getpid ();
    pm_manager_t *pm = pm_create_parallel_manager ("multiprocessing", 3, NULL);
    if (getpid () != parent) {
        /* a forked rank: report and leave without returning into Criterion */
        char rep[2] = {'?', '?'};
        if (pm) {
            rep[0] = (char) ('0' + pm_get_rank (pm));
            rep[1] = pm_number_of_worker_processes (pm) == 3 &&
                             strcmp (pm_backend_name (pm), "MultiProcessing") == 0 &&
                             !pm_is_root_process (pm)
                         ? 'y'
                         : 'n';
            pm_destroy (&pm);
        }
        if (write (fds[1], rep, 2) != 2)
            _exit (2);
        _exit (0);
    }
    close (fds[1]);
    cr_assert_not_null (pm, "%s", err0 ());
    cr_expect_str_eq (pm_backend_name (pm), "MultiProcessing");
    cr_expect_eq (pm_get_rank (pm), 0, "the parent should be rank 0");
    cr_expect_eq (pm_number_of_worker_processes (pm), 3);
    cr_expect (pm_is_root_process (pm));
    pm_destroy (&pm);
    /* pm_destroy waited for the forked ranks: no child is left */
    int st;
    pid_t w = waitpid (-1, &st, WNOHANG);
    cr_expect (w == -1 && errno == ECHILD, "a forked rank is left after pm_destroy (waitpid: %d)",
               (int) w);
    char rep[8] = {0};
    size_t have = 0;
    while (have < 4) {
        ssize_t r = read (fds[0], rep + have, 4 - have);
        if (r <= 0)
            break;
        have += (size_t) r;
    }
    close (fds[0]);
    cr_assert_eq (have, 4, "got %zu report bytes from the forked ranks, expected 4", have);
    bool seen1 = false, seen2 = false;
    for (int i = 0; i < 4; i += 2) {
        cr_expect_eq (rep[i + 1], 'y', "forked rank %c saw a wrong size/backend/root", rep[i]);
        seen1 = seen1 || rep[i] == '1';
        seen2 = seen2 || rep[i] == '2';
    }
    cr_expect (seen1 && seen2, "forked ranks reported %c and %c, expected 1 and 2", rep[0], rep[2]);
}
