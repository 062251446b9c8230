/*  pm_ray.c — RayIo: the ranks of this program as processes hosted by Ray
    actors on a Ray cluster.  Rank 0 is the caller, with the coordinator
    embedded on a tcp endpoint the cluster can reach (or the pmd named by
    PM_ENDPOINT); the Python launcher (ray/pm_ray_launcher.py, installed
    next to libpm.so) asks Ray for one actor per other rank, and each actor
    runs this same program with the rank environment, as pm-run does.      */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pm_coord_actor.h"
#include "pm_env.h"
#include "pm_log.h"
#include "pm_manager_internal.h"
#include "pm_ray.h"

extern char **environ;

/* Runs argv to completion; its exit status, or -1 if it could not start. */
static int
s_run (char *const argv[])
{
    pid_t pid;
    if (posix_spawnp (&pid, argv[0], NULL, NULL, argv, environ) != 0)
        return -1;
    int status = 0;
    while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

/* This program's own command line, from /proc/self/cmdline (NULL-terminated). */
static char **
s_own_argv (void)
{
    FILE *f = fopen ("/proc/self/cmdline", "r");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, len = 0;
    int c;
    while ((c = fgetc (f)) != EOF) {
        if (len + 2 > cap) {
            cap = cap ? cap * 2 : 1024;
            char *grown = realloc (buf, cap);
            if (!grown) {
                free (buf);
                fclose (f);
                return NULL;
            }
            buf = grown;
        }
        buf[len++] = (char) c;
    }
    fclose (f);
    if (!buf)
        return NULL;
    buf[len] = '\0';
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += buf[i] == '\0';
    char **argv = calloc (n + 2, sizeof *argv);
    size_t k = 0;
    for (size_t i = 0; argv && i < len && k < n; k++) {
        argv[k] = strdup (buf + i);
        i += strlen (buf + i) + 1;
    }
    free (buf);
    return argv;
}

static void
s_free_argv (char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++)
        free (argv[i]);
    free (argv);
}

const char *
pm_ray_python (void)
{
    const char *python = pm_env_str ("PM_PYTHON");
    return python ? python : "python3";
}

const char *
pm_ray_jobs_url (void)
{
    const char *url = pm_env_str ("PM_RAY_JOBS_URL");
    if (url)
        return url;
    const char *address = pm_env_str ("RAY_ADDRESS");
    if (address && (strncmp (address, "http://", 7) == 0 || strncmp (address, "https://", 8) == 0))
        return address;
    return NULL;
}

/* The directory libpm.so was loaded from: the launcher sits there, and
   pm-ray-job in ../bin (as the build tree and an install lay them out). */
static void
s_libpm_dir (char *dir, size_t size)
{
    Dl_info info;
    char self[4096] = "./libpm.so";
    if (dladdr ((void *) pm_create_parallel_manager, &info) && info.dli_fname)
        snprintf (self, sizeof self, "%s", info.dli_fname);
    snprintf (dir, size, "%s", dirname (self));
}

/* pm-ray-job, which submits the launcher through the Jobs API. */
static void
s_submitter (char *path, size_t size)
{
    const char *configured = pm_env_str ("PM_RAY_JOB");
    if (configured) {
        snprintf (path, size, "%s", configured);
        return;
    }
    char dir[4000];
    s_libpm_dir (dir, sizeof dir);
    snprintf (path, size, "%.4000s/../bin/pm-ray-job", dir);
}

int
pm_ray_check (char *launcher, size_t launcher_size, char *err, size_t err_size)
{
    const char *configured = pm_env_str ("PM_RAY_LAUNCHER");
    if (configured)
        snprintf (launcher, launcher_size, "%s", configured);
    else {
        char dir[4000];
        s_libpm_dir (dir, sizeof dir);
        snprintf (launcher, launcher_size, "%.4000s/pm_ray_launcher.py", dir);
    }
    /* Through the Jobs API, Ray is needed on the cluster, not here; the
       launcher's path must be valid there too (a shared file system).   */
    if (pm_ray_jobs_url ()) {
        char submitter[4096];
        s_submitter (submitter, sizeof submitter);
        if (access (submitter, X_OK) != 0) {
            snprintf (err, err_size,
                      "RayIo through the Jobs API (PM_RAY_JOBS_URL=%s) needs %s, built where "
                      "libcurl is (apt-get install libcurl4-openssl-dev) (or set PM_RAY_JOB)",
                      pm_ray_jobs_url (), submitter);
            return PM_ENOTSUP;
        }
        return 0;
    }
    const char *python = pm_ray_python ();
    /* Is Ray there at all?  A fast check, before anything starts. */
    char *check[] = {(char *) python, "-c",
                     "import importlib.util,sys; sys.exit(0 if importlib.util.find_spec('ray') else 3)",
                     NULL};
    int found = s_run (check);
    if (found != 0) {
        snprintf (err, err_size,
                  found < 0 ? "RayIo needs Python with the ray package: cannot run %s (set "
                              "PM_PYTHON)"
                            : "RayIo needs the ray Python package for %s: pip install ray (or set "
                              "PM_PYTHON to a Python that has it)",
                  python);
        return PM_ENOTSUP;
    }
    if (access (launcher, R_OK) != 0) {
        snprintf (err, err_size, "RayIo: the launcher %s is missing (set PM_RAY_LAUNCHER)",
                  launcher);
        return PM_ENOTSUP;
    }
    return 0;
}

int
pm_ray_spawn (const char *launcher, const char *ranks, int size, const char *endpoint,
              const char *group, const char *cwd, int64_t abort_timeout_ms, int exit_fd,
              char *const program[], pid_t *pid)
{
    size_t nprog = 0;
    while (program[nprog])
        nprog++;
    char size_text[32];
    snprintf (size_text, sizeof size_text, "%d", size);
    /* At most 23 words before the program (pm-ray-job's 5, the launcher's 18) and NULL. */
    char **argv = calloc (nprog + 24, sizeof *argv);
    if (!argv)
        return ENOMEM;
    size_t k = 0;
    char submitter[4096], exit_text[16];
    snprintf (exit_text, sizeof exit_text, "%d", exit_fd);
    bool jobs = pm_ray_jobs_url () != NULL;
    if (jobs) { /* pm-ray-job stands in for the launcher here */
        s_submitter (submitter, sizeof submitter);
        argv[k++] = submitter;
        argv[k++] = "run";
        if (exit_fd >= 0) { /* it passes on the launcher's exit lines from the log */
            argv[k++] = "--exit-fd";
            argv[k++] = exit_text;
        }
        argv[k++] = "--";
    }
    argv[k++] = (char *) pm_ray_python ();
    argv[k++] = (char *) launcher;
    argv[k++] = "--ranks";
    argv[k++] = (char *) ranks;
    argv[k++] = "--size";
    argv[k++] = size_text;
    argv[k++] = "--endpoint";
    argv[k++] = (char *) endpoint;
    argv[k++] = "--group";
    argv[k++] = (char *) group;
    argv[k++] = "--cwd";
    argv[k++] = (char *) cwd;
    char abort_text[32];
    if (abort_timeout_ms >= 0) {
        snprintf (abort_text, sizeof abort_text, "%.3f", (double) abort_timeout_ms / 1000.0);
        argv[k++] = "--abort-timeout";
        argv[k++] = abort_text;
    }
    if (exit_fd >= 0 && jobs)
        argv[k++] = "--exit-lines";
    else if (exit_fd >= 0) {
        argv[k++] = "--exit-fd";
        argv[k++] = exit_text;
    }
    argv[k++] = "--";
    for (size_t i = 0; i < nprog; i++)
        argv[k++] = program[i];
    argv[k] = NULL;
    /* The exit pipe is close-on-exec; dup2 onto itself clears that in the child. */
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    if (exit_fd >= 0)
        posix_spawn_file_actions_adddup2 (&actions, exit_fd, exit_fd);
    /* posix_spawn is fork+exec in one step: no ZeroMQ context crosses it. */
    int rc = posix_spawnp (pid, argv[0], &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy (&actions);
    free (argv);
    return rc;
}

bool
pm_ray_exit_pipe (int exit_pipe[2])
{
    if (pipe2 (exit_pipe, O_CLOEXEC) != 0) {
        exit_pipe[0] = exit_pipe[1] = -1;
        return false;
    }
    /* The reader polls it; the launcher's writes stay blocking. */
    fcntl (exit_pipe[0], F_SETFL, fcntl (exit_pipe[0], F_GETFL) | O_NONBLOCK);
    return true;
}

int
pm_ray_launch (pm_manager_t *pm, const char *endpoint, char *first_endpoint, size_t size)
{
    char launcher[4096], err[512];
    int checked = pm_ray_check (launcher, sizeof launcher, err, sizeof err);
    if (checked != 0)
        return pm_fail (pm, checked, "%s", err);

    /* Ranks on other nodes connect back: the coordinator listens on tcp. */
    if (!endpoint) {
        const char *host = pm_env_str ("PM_RAY_HOST");
        char bind[300];
        snprintf (bind, sizeof bind, "tcp://%s:*", host ? host : "127.0.0.1");
        pm_coord_config_t config;
        if (pm_coord_config_defaults (&config, err, sizeof err) != 0)
            return pm_fail (pm, PM_EINVAL, "%s", err);
        config.bind[0] = bind;
        config.nbind = 1;
        pm->coordinator = pm_coord_actor_new (&config, first_endpoint, size, err, sizeof err);
        if (!pm->coordinator)
            return pm_fail (pm, PM_ECONNECT, "%s", err);
    } else
        snprintf (first_endpoint, size, "%s", endpoint);

    char **own = s_own_argv ();
    char exe[4096];
    ssize_t len = readlink ("/proc/self/exe", exe, sizeof exe - 1);
    char cwd[4096];
    if (!own || !own[0] || len <= 0 || !getcwd (cwd, sizeof cwd)) {
        s_free_argv (own);
        return pm_fail (pm, PM_ESYS, "RayIo: cannot read this program's command line");
    }
    exe[len] = '\0';
    /* The ranks run this very program: its path, then its own arguments. */
    free (own[0]);
    own[0] = strdup (exe);
    char ranks[64];
    snprintf (ranks, sizeof ranks, "1..%d", pm->size - 1);
    pid_t pid;
    /* No abort timeout: rank 0 (this process) decides when to give up. */
    /* The launcher tells our coordinator of every rank that ends: through
       the embedded one's actor, or (against a pmd) our heartbeat thread.  */
    int exit_pipe[2];
    bool piped = pm_ray_exit_pipe (exit_pipe);
    int rc = own[0] ? pm_ray_spawn (launcher, ranks, pm->size, first_endpoint, pm->group, cwd,
                                    -1, exit_pipe[1], own, &pid)
                    : ENOMEM;
    s_free_argv (own);
    if (piped) {
        close (exit_pipe[1]); /* the launcher has its copy */
        if (rc != 0)
            close (exit_pipe[0]);
        else if (pm->coordinator)
            pm_coord_actor_exits (pm->coordinator, pm->group, pm->size, exit_pipe[0]);
        else {
            pm->has_launcher_exits = true;
            pm->launcher_exits_fd = exit_pipe[0];
        }
    }
    if (rc != 0)
        return pm_fail (pm, PM_ESYS, "RayIo: cannot start %s: %s", launcher, strerror (rc));
    pm->children = calloc (1, sizeof *pm->children);
    pm->child_fds = calloc (1, sizeof *pm->child_fds);
    if (pm->children && pm->child_fds) {
        pm->children[0] = pid;
        pm->child_fds[0] = (int) syscall (SYS_pidfd_open, pid, 0);
        pm->nchildren = 1;
    }
    /* If the launcher ends before the ranks have joined (no Ray cluster,
       no resources), the group fails instead of waiting for them.       */
    if (pm->coordinator)
        pm_coord_actor_watch (pm->coordinator, pm->group, pm->size, 1, (int) pid);
    if (pm_ray_jobs_url ())
        pm_info ("PM3501", "RayIo: pm-ray-job %d submits the launcher of ranks %s to %s",
                 (int) pid, ranks, pm_ray_jobs_url ());
    else
        pm_info ("PM3501", "RayIo: launcher %d starts ranks %s through Ray", (int) pid, ranks);
    return 0;
}
