/*  pm_manager.c — the factory (which backend runs this program), the
    manager's lifecycle, pm_run, and the small accessors.                */
#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "pm_coord_actor.h"
#include "pm_env.h"
#include "pm_fault.h"
#include "pm_log.h"
#include "pm_zsys.h"
#include "pm_manager_internal.h"
#include "pm_ray.h"

/* After a failed run, how long forked ranks may take to exit on their own. */
#define PM_ABORT_GRACE_MS 10000
#define VALID_KEYWORDS "ConcurrentFutures (or concurrent.futures), MultiProcessing, MPI, RayIo (or ray)"

/* Why the calling thread's last pm_create_parallel_manager failed. */
static __thread int s_create_code;
static __thread char s_create_error[1024];
static atomic_int s_instance; /* tells embedded coordinators of one process apart */

int
pm_fail (pm_manager_t *pm, int code, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    if (pm) {
        pm->last_code = code;
        vsnprintf (pm->last_error, sizeof pm->last_error, fmt, args);
    } else {
        s_create_code = code;
        vsnprintf (s_create_error, sizeof s_create_error, fmt, args);
    }
    va_end (args);
    return code;
}

const char *
pm_last_error (const pm_manager_t *pm)
{
    if (!pm)
        return s_create_error;
    return pm->last_error;
}

int
pm_last_error_code (const pm_manager_t *pm)
{
    return pm ? pm->last_code : s_create_code;
}

/* Size of the MPI job this process was launched in, or 0. */
static int64_t
s_mpi_launch_size (const char **variable)
{
    static const char *names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int64_t size;
        if (pm_parse_int64 (pm_env_str (names[i]), 1, INT32_MAX, &size)) {
            *variable = names[i];
            return size;
        }
    }
    return 0;
}

static void
s_random_hex (char *out, size_t bytes)
{
    uint8_t raw[16] = {0};
    if (bytes > sizeof raw)
        bytes = sizeof raw;
    if (getrandom (raw, bytes, 0) != (ssize_t) bytes)
        for (size_t i = 0; i < bytes; i++)
            raw[i] = (uint8_t) (getpid () * 31 + (int) i);
    for (size_t i = 0; i < bytes; i++)
        sprintf (out + 2 * i, "%02x", raw[i]);
}

static void
s_lower (const char *in, char *out, size_t size)
{
    size_t i = 0;
    for (; in && in[i] && i + 1 < size; i++)
        out[i] = (char) tolower ((unsigned char) in[i]);
    out[i] = '\0';
}

static pm_manager_t *
s_fail_create (pm_manager_t *pm, int code, const char *text)
{
    s_create_code = code;
    snprintf (s_create_error, sizeof s_create_error, "%s", text);
    pm_debug ("PM3001", "%s", text); /* the caller gets it from pm_last_error */
    if (pm && pm->nchildren) {
        /* The ranks already forked cannot run without this one. */
        for (int k = 0; k < pm->nchildren; k++)
            kill (pm->children[k], SIGKILL);
        pm_launch_reap (pm, -1);
    }
    pm_destroy (&pm);
    return NULL;
}

static int
s_connect (pm_manager_t *pm, const char *endpoint, bool in_coordinator_process)
{
    pm_client_config_t config = {
        .endpoint = endpoint,
        .group = pm->group,
        .rank = pm->rank,
        .size = pm->size,
        .in_coordinator_process = in_coordinator_process,
        .connect_timeout_ms = pm->connect_timeout_ms,
        .has_launcher_exits = pm->has_launcher_exits && !in_coordinator_process,
        .launcher_exits_fd = pm->launcher_exits_fd,
    };
    int code = 0;
    pm->client = pm_client_new (&config, &code, pm->last_error, sizeof pm->last_error);
    if (!pm->client)
        return pm->last_code = code;
    if (!in_coordinator_process)
        pm->has_launcher_exits = false; /* the heartbeat thread has it now */
    return 0;
}

/* Starts the embedded coordinator on endpoint(s); 0 or a PM_E* code. */
static int
s_embed (pm_manager_t *pm, const char **binds, size_t nbind)
{
    pm_coord_config_t config;
    char err[512];
    if (pm_coord_config_defaults (&config, err, sizeof err) != 0)
        return pm_fail (pm, PM_EINVAL, "%s", err);
    for (size_t i = 0; i < nbind; i++)
        config.bind[i] = binds[i];
    config.nbind = nbind;
    char first[512];
    pm->coordinator = pm_coord_actor_new (&config, first, sizeof first, err, sizeof err);
    if (!pm->coordinator)
        return pm_fail (pm, PM_ECONNECT, "%s", err);
    return 0;
}

static pm_manager_t *
s_create_threads (pm_manager_t *pm, const char *endpoint)
{
    pm_zsys_ready (); /* before any rank thread makes a socket */
    pm->mode = PM_MODE_THREADS_LAUNCHER;
    pm->backend = "ConcurrentFutures";
    if (endpoint) {
        snprintf (pm->endpoint, sizeof pm->endpoint, "%s", endpoint);
        return pm;
    }
    snprintf (pm->endpoint, sizeof pm->endpoint, "inproc://pm-coordinator-%d-%d",
              (int) getpid (), atomic_fetch_add (&s_instance, 1));
    const char *binds[] = {pm->endpoint};
    if (s_embed (pm, binds, 1) != 0)
        return s_fail_create (pm, pm->last_code, pm->last_error);
    return pm;
}

static pm_manager_t *
s_create_processes (pm_manager_t *pm, const char *endpoint)
{
    pm->mode = PM_MODE_PROCESS_RANK;
    pm->backend = "MultiProcessing";
    char ipc_path[256] = "";
    if (!endpoint) {
        char nonce[17];
        s_random_hex (nonce, 8);
        snprintf (ipc_path, sizeof ipc_path, "ipc://%s/pm-%d-%s.sock", pm_ipc_dir (), (int) getpid (),
                  nonce);
    }
    int rank = 0;
    if (pm_launch_fork (pm, &rank) != 0)
        return s_fail_create (pm, pm->last_code, pm->last_error);
    pm->rank = rank;
    int rc;
    if (endpoint) {
        snprintf (pm->endpoint, sizeof pm->endpoint, "%s", endpoint);
        rc = s_connect (pm, endpoint, false);
    } else if (rank > 0) {
        snprintf (pm->endpoint, sizeof pm->endpoint, "%s", ipc_path);
        rc = s_connect (pm, ipc_path, false);
    } else {
        char inproc[128];
        snprintf (inproc, sizeof inproc, "inproc://pm-coordinator-%d-%d", (int) getpid (),
                  atomic_fetch_add (&s_instance, 1));
        const char *binds[] = {ipc_path, inproc};
        rc = s_embed (pm, binds, 2);
        if (rc == 0) {
            for (int k = 0; k < pm->nchildren; k++)
                pm_coord_actor_watch (pm->coordinator, pm->group, pm->size, k + 1,
                                      (int) pm->children[k]);
            snprintf (pm->endpoint, sizeof pm->endpoint, "%s", ipc_path);
            rc = s_connect (pm, inproc, true);
        }
    }
    if (rc != 0) {
        if (rank > 0) {
            /* A child that cannot join is of no use: say why and leave. */
            pm_error ("PM3002", "rank %d cannot join: %s", rank, pm->last_error);
        }
        return s_fail_create (pm, pm->last_code, pm->last_error);
    }
    return pm;
}

/* A rank started by pm-run, mpirun-like launchers or by hand against pmd. */
static pm_manager_t *
s_create_from_environment (pm_manager_t *pm, const char *endpoint)
{
    int64_t rank, size;
    const char *rank_text = pm_env_str ("PM_RANK"), *size_text = pm_env_str ("PM_SIZE");
    char text[512];
    if (!pm_parse_int64 (size_text, 1, 1000000, &size)) {
        snprintf (text, sizeof text, "PM_RANK is set but PM_SIZE='%s' is not a size in [1, 1000000]",
                  size_text ? size_text : "");
        return s_fail_create (pm, PM_EINVAL, text);
    }
    if (!pm_parse_int64 (rank_text, 0, size - 1, &rank)) {
        snprintf (text, sizeof text, "PM_RANK='%s' is not a rank in [0, %lld)", rank_text,
                  (long long) size);
        return s_fail_create (pm, PM_EINVAL, text);
    }
    if (!endpoint)
        return s_fail_create (pm, PM_EINVAL,
                              "PM_RANK is set but no coordinator endpoint is: set PM_ENDPOINT "
                              "(pm-run does) or options.endpoint");
    pm->mode = PM_MODE_PROCESS_RANK;
    pm->backend = "pm-run";
    pm->rank = (int) rank;
    pm->size = (int) size;
    snprintf (pm->endpoint, sizeof pm->endpoint, "%s", endpoint);
    if (pm_fault ("join", pm->rank))
        _exit (3); /* a rank that dies before it registers (tests) */
    if (s_connect (pm, endpoint, false) != 0)
        return s_fail_create (pm, pm->last_code, pm->last_error);
    return pm;
}

/* With a coordinator endpoint configured, the ranks of an MPI job also
   register with it as one group (named after the job), so that pmd sees
   the job and marks it failed when a rank dies.  The collectives stay on
   MPI; a dynamic sweep (pm_set_schedule) can then use the coordinator.  */
static pm_manager_t *
s_register_mpi (pm_manager_t *pm, const pm_options_t *options)
{
    const char *endpoint = options && options->endpoint && *options->endpoint
                               ? options->endpoint
                               : pm_env_str ("PM_ENDPOINT");
    if (!endpoint)
        return pm;
    const char *group = options && options->group && *options->group ? options->group
                                                                       : pm_env_str ("PM_GROUP");
    const char *job = pm_env_str ("PMIX_NAMESPACE");
    if (!job)
        job = pm_env_str ("OMPI_MCA_ess_base_jobid");
    if (!job)
        job = pm_env_str ("SLURM_JOB_ID");
    char host[64] = "";
    gethostname (host, sizeof host - 1);
    if (group)
        snprintf (pm->group, sizeof pm->group, "%s", group);
    else if (job)
        snprintf (pm->group, sizeof pm->group, "mpi-%.100s", job);
    else
        snprintf (pm->group, sizeof pm->group, "mpi-%.60s-%d", host, (int) getppid ());
    int64_t timeout = 30000;
    char err[256];
    if (pm_env_int64 ("PM_CONNECT_TIMEOUT_MS", 1, 86400000, 30000, &timeout, err, sizeof err) < 0)
        return s_fail_create (pm, PM_EINVAL, err);
    pm->connect_timeout_ms = options && options->connect_timeout_ms > 0 ? options->connect_timeout_ms
                                                                         : timeout;
    snprintf (pm->endpoint, sizeof pm->endpoint, "%s", endpoint);
    if (s_connect (pm, endpoint, false) != 0) {
        char why[1200];
        snprintf (why, sizeof why, "MPI rank %d cannot register with the coordinator: %s",
                  pm->rank, pm->last_error);
        return s_fail_create (pm, pm->last_code, why);
    }
    return pm;
}

/* A rank of an MPI launch: collectives on native MPI through the module. */
static pm_manager_t *
s_create_mpi (pm_manager_t *pm, int64_t mpi_size, const char *mpi_variable,
              const pm_options_t *options)
{
    char text[512];
    pm->mode = PM_MODE_PROCESS_RANK;
    pm->backend = "MPI";
    pm->schedule = PM_SCHEDULE_STATIC;
    if (pm_mpi_attach (pm) != 0) {
        char why[1400];
        snprintf (why, sizeof why, "this program runs inside an MPI launch of %lld ranks "
                                   "(%s), where MPI wins, but: %s",
                  (long long) mpi_size, mpi_variable, pm->last_error);
        return s_fail_create (pm, pm->last_code, why);
    }
    if (pm->size != mpi_size) {
        snprintf (text, sizeof text,
                  "%s says %lld ranks but MPI_COMM_WORLD has %d: not a real MPI launch?",
                  mpi_variable, (long long) mpi_size, pm->size);
        return s_fail_create (pm, PM_EINVAL, text);
    }
    return s_register_mpi (pm, options);
}

pm_manager_t *
pm_create_parallel_manager (const char *parallel_back_end, int number_of_subprocesses,
                            const pm_options_t *options)
{
    s_create_code = 0;
    s_create_error[0] = '\0';
    pm_manager_t *pm = calloc (1, sizeof *pm);
    if (!pm)
        return s_fail_create (NULL, PM_ENOMEM, "out of memory");
    pm->mode = PM_MODE_SERIAL;
    pm->backend = "Serial";
    pm->size = 1;

    char text[512];
    const char *mpi_variable = NULL;
    int64_t mpi_size = s_mpi_launch_size (&mpi_variable);
    if (mpi_size > 1) /* inside an MPI launch MPI wins, whatever the keyword (as in the seed) */
        return s_create_mpi (pm, mpi_size, mpi_variable, options);
    const char *endpoint = options && options->endpoint && *options->endpoint
                               ? options->endpoint
                               : pm_env_str ("PM_ENDPOINT");
    int64_t timeout = options && options->connect_timeout_ms > 0 ? options->connect_timeout_ms : 0;
    if (!timeout && pm_env_int64 ("PM_CONNECT_TIMEOUT_MS", 1, 86400000, 30000, &timeout, text,
                                  sizeof text)
                        < 0)
        return s_fail_create (pm, PM_EINVAL, text);
    pm->connect_timeout_ms = timeout;
    const char *group = options && options->group && *options->group ? options->group
                                                                       : pm_env_str ("PM_GROUP");
    if (group && strlen (group) > PM_GROUP_MAX) {
        snprintf (text, sizeof text, "group name longer than %d bytes", PM_GROUP_MAX);
        return s_fail_create (pm, PM_EINVAL, text);
    }
    if (group)
        snprintf (pm->group, sizeof pm->group, "%s", group);
    else {
        char host[64] = "", nonce[17];
        gethostname (host, sizeof host - 1);
        s_random_hex (nonce, 8);
        snprintf (pm->group, sizeof pm->group, "%.60s-%d-%s", host, (int) getpid (), nonce);
    }

    /* A rank in the environment wins over the keyword, as an MPI launch does. */
    if (pm_env_str ("PM_RANK")) {
        if (!group)
            snprintf (pm->group, sizeof pm->group, "default");
        pm->schedule = PM_SCHEDULE_DYNAMIC;
        return s_create_from_environment (pm, endpoint);
    }
    if (pm_env_str ("PM_SIZE"))
        return s_fail_create (pm, PM_EINVAL, "PM_SIZE is set but PM_RANK is not");

    if (number_of_subprocesses <= 1)
        return pm; /* serial, whatever the keyword */
    pm->schedule = PM_SCHEDULE_DYNAMIC; /* a coordinator exists from here on */

    char keyword[64];
    s_lower (parallel_back_end, keyword, sizeof keyword);
    pm->size = number_of_subprocesses;
    if (strcmp (keyword, "concurrentfutures") == 0 || strcmp (keyword, "concurrent.futures") == 0)
        return s_create_threads (pm, endpoint);
    if (strcmp (keyword, "multiprocessing") == 0)
        return s_create_processes (pm, endpoint);
    if (strcmp (keyword, "mpi") == 0) {
        /* Asked for by name: fine under mpirun, even with one process. */
        if (mpi_size == 1)
            return s_create_mpi (pm, mpi_size, mpi_variable, options);
        return s_fail_create (pm, PM_ENOTSUP,
                              "the MPI backend runs ranks started by an MPI launcher: "
                              "mpirun -np N ./program (or use MultiProcessing here)");
    }
    if (strcmp (keyword, "rayio") == 0 || strcmp (keyword, "ray") == 0) {
        pm->mode = PM_MODE_PROCESS_RANK;
        pm->backend = "RayIo";
        pm->rank = 0;
        char ray_endpoint[512];
        if (pm_ray_launch (pm, endpoint, ray_endpoint, sizeof ray_endpoint) != 0
            || s_connect (pm, ray_endpoint, pm->coordinator != NULL) != 0)
            return s_fail_create (pm, pm->last_code, pm->last_error);
        snprintf (pm->endpoint, sizeof pm->endpoint, "%s", ray_endpoint);
        return pm;
    }
    if (strcmp (keyword, "serial") != 0)
        pm_warn ("PM3003",
                 "unknown parallel back end '%s': running serially; valid keywords are "
                 VALID_KEYWORDS,
                 parallel_back_end ? parallel_back_end : "(null)");
    pm->size = 1;
    return pm;
}

/* ---- ConcurrentFutures: one thread per rank ------------------------------ */

typedef struct {
    pm_manager_t *launcher;
    char group[PM_GROUP_MAX + 1];
    int rank;
    pm_rank_fn fn;
    void *arg;
    int result;
} s_thread_rank_t;

static void *
s_thread_rank (void *arg)
{
    s_thread_rank_t *job = arg;
    pm_manager_t *launcher = job->launcher;
    pm_manager_t *pm = calloc (1, sizeof *pm);
    if (!pm) {
        job->result = PM_ENOMEM;
        return NULL;
    }
    pm->mode = PM_MODE_THREAD_RANK;
    pm->schedule = launcher->schedule;
    pm->progress = launcher->progress;
    pm->progress_arg = launcher->progress_arg;
    pm->backend = launcher->backend;
    pm->rank = job->rank;
    pm->size = launcher->size;
    pm->connect_timeout_ms = launcher->connect_timeout_ms;
    snprintf (pm->group, sizeof pm->group, "%s", job->group);
    snprintf (pm->endpoint, sizeof pm->endpoint, "%s", launcher->endpoint);
    if (s_connect (pm, launcher->endpoint, launcher->coordinator != NULL) != 0) {
        pm_error ("PM3004", "rank %d cannot join: %s", job->rank, pm->last_error);
        job->result = pm->last_code;
        if (launcher->coordinator)
            pm_coord_actor_lost (launcher->coordinator, job->group, launcher->size, job->rank,
                                 "could not join (its thread failed to connect)");
        free (pm);
        return NULL;
    }
    pm->run_owned = true;
    job->result = job->fn (pm, job->arg);
    pm->run_owned = false;
    pm_destroy (&pm);
    return NULL;
}

int
pm_run (pm_manager_t *pm, pm_rank_fn fn, void *arg)
{
    if (!pm || !fn)
        return PM_EINVAL;
    if (pm->mode != PM_MODE_THREADS_LAUNCHER) {
        if (pm->mode == PM_MODE_THREAD_RANK)
            return pm_fail (pm, PM_EINVAL, "pm_run called from inside a rank thread");
        return fn (pm, arg);
    }
    static atomic_int run_counter;
    s_thread_rank_t *jobs = calloc ((size_t) pm->size, sizeof *jobs);
    pthread_t *threads = calloc ((size_t) pm->size, sizeof *threads);
    if (!jobs || !threads) {
        free (jobs);
        free (threads);
        return pm_fail (pm, PM_ENOMEM, "out of memory");
    }
    int run = atomic_fetch_add (&run_counter, 1);
    int started = 0, rc = 0;
    for (int r = 0; r < pm->size; r++) {
        jobs[r].launcher = pm;
        jobs[r].rank = r;
        jobs[r].fn = fn;
        jobs[r].arg = arg;
        /* Each pm_run is a group of its own: the previous one has ended. */
        snprintf (jobs[r].group, sizeof jobs[r].group, "%.100s-run%d", pm->group, run);
        if (pthread_create (&threads[r], NULL, s_thread_rank, &jobs[r]) != 0) {
            rc = pm_fail (pm, PM_ESYS, "cannot start the thread of rank %d", r);
            if (pm->coordinator)
                pm_coord_actor_lost (pm->coordinator, jobs[r].group, pm->size, r,
                                     "could not be started (no thread)");
            break;
        }
        started++;
    }
    for (int r = 0; r < started; r++)
        pthread_join (threads[r], NULL);
    for (int r = 0; r < started && rc == 0; r++)
        if (jobs[r].result != 0)
            rc = jobs[r].result;
    free (jobs);
    free (threads);
    return rc;
}

void
pm_destroy (pm_manager_t **pm_p)
{
    if (!pm_p || !*pm_p)
        return;
    pm_manager_t *pm = *pm_p;
    if (pm->run_owned) {
        /* The rank function got this manager from pm_run, which frees it. */
        pm_warn ("PM3005", "pm_destroy called on a rank manager inside pm_run: ignored");
        *pm_p = NULL;
        return;
    }
    bool failed = pm->client && pm_client_failed (pm->client);
    pm_sweep_free (pm);
    pm_mpi_detach (pm);
    pm_client_destroy (&pm->client);
    if (pm->nchildren)
        pm_launch_reap (pm, failed ? PM_ABORT_GRACE_MS : -1);
    free (pm->children);
    free (pm->child_fds);
    zactor_destroy (&pm->coordinator);
    if (pm->has_launcher_exits)
        close (pm->launcher_exits_fd);
    free (pm);
    *pm_p = NULL;
}

bool
pm_is_root_process (pm_manager_t *pm)
{
    return pm && pm->rank == 0;
}

int
pm_get_rank (pm_manager_t *pm)
{
    return pm ? pm->rank : PM_EINVAL;
}

int
pm_number_of_worker_processes (pm_manager_t *pm)
{
    return pm ? pm->size : PM_EINVAL;
}

const char *
pm_backend_name (pm_manager_t *pm)
{
    return pm ? pm->backend : "none";
}
