/*  pm_run.c — pm-run: launch N ranks of a program on this host, like
    mpirun.  Each rank gets PM_RANK, PM_SIZE, PM_ENDPOINT and PM_GROUP; the
    coordinator is embedded here unless --endpoint (or PM_ENDPOINT) names a
    pmd.  Exits 0 if every rank did, else with the first failure's code.  */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pm.h"
#include "pm_clock.h"
#include "pm_coord_actor.h"
#include "pm_env.h"
#include "pm_exit_lines.h"
#include "pm_log.h"
#include "pm_msg.h"
#include "pm_ray.h"
#include "pm_zsys.h"
#include <czmq.h>

extern char **environ;

static void
s_usage (FILE *out)
{
    fprintf (out,
             "Usage: pm-run -n N [OPTIONS] [--] PROGRAM [ARGS...]\n"
             "Start N ranks of PROGRAM on this host, each with PM_RANK, PM_SIZE, PM_ENDPOINT\n"
             "and PM_GROUP set, and wait for them.\n\n"
             "  -n, --np N                number of ranks (required)\n"
             "  -e, --endpoint EP         start the ranks here, joined through the pmd at EP\n"
             "                            (default: $PM_ENDPOINT, else an embedded coordinator)\n"
             "  -c, --connect EP          ask the pmd at EP to place the ranks on the slots of\n"
             "                            its pm-workers; their output is streamed back here\n"
             "  -b, --backend local|ray   ray: start the ranks as processes of Ray actors on the\n"
             "                            cluster at $RAY_ADDRESS (coordinator embedded here on\n"
             "                            tcp at $PM_RAY_HOST, default 127.0.0.1; $PM_PYTHON\n"
             "                            names the Python that has ray)\n"
             "  -g, --group NAME          group name (default: unique per run)\n"
             "      --abort-timeout MS    after a rank fails, how long the others may take to\n"
             "                            finish before they are terminated (default 10000);\n"
             "                            in a dynamic sweep, counted from the last rows done\n"
             "                            (as the coordinator, or pmd, reports them)\n"
             "  -l, --log-level LEVEL     error|warn|info|debug|trace (default warn)\n"
             "  -h, --help                this text\n\n"
             "Exit status: 0 if every rank exited 0; else the first failing rank's status\n"
             "(128+N for a rank killed by signal N); 127 if PROGRAM cannot be started.\n");
}

typedef struct {
    pid_t pid;
    bool running;
    int status; /* exit code, or 128+signal */
} s_rank_t;

static int
s_exit_code (int status)
{
    if (WIFEXITED (status))
        return WEXITSTATUS (status);
    if (WIFSIGNALED (status))
        return 128 + WTERMSIG (status);
    return 1;
}

/* environ with PM_* replaced by this rank's values. */
static char **
s_rank_environment (int rank, int size, const char *endpoint, const char *group)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc (n + 5, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp (environ[i], "PM_RANK=", 8) && strncmp (environ[i], "PM_SIZE=", 8)
            && strncmp (environ[i], "PM_ENDPOINT=", 12) && strncmp (environ[i], "PM_GROUP=", 9))
            env[k++] = environ[i];
    char buf[700];
    snprintf (buf, sizeof buf, "PM_RANK=%d", rank);
    env[k++] = strdup (buf);
    snprintf (buf, sizeof buf, "PM_SIZE=%d", size);
    env[k++] = strdup (buf);
    snprintf (buf, sizeof buf, "PM_ENDPOINT=%s", endpoint);
    env[k++] = strdup (buf);
    snprintf (buf, sizeof buf, "PM_GROUP=%s", group);
    env[k++] = strdup (buf);
    env[k] = NULL;
    return env;
}

static void
s_free_environment (char **env)
{
    if (!env)
        return;
    size_t i = 0;
    while (env[i])
        i++;
    for (size_t k = i >= 4 ? i - 4 : 0; k < i; k++)
        free (env[k]);
    free (env);
}

static void
s_signal_all (s_rank_t *ranks, int n, int sig)
{
    for (int r = 0; r < n; r++)
        if (ranks[r].running)
            kill (-ranks[r].pid, sig);
}

/* After a failure, the others get abort_timeout from their group's last
   finished sweep chunk (last_done, pm_clock_ms; -1: none), not from the
   failure: a dynamic sweep goes on without a lost rank.  True (and the
   deadline moved) while that is still ahead.                           */
static bool
s_still_progressing (int64_t last_done, int64_t abort_timeout, int running, int64_t *deadline,
                     bool *told)
{
    if (last_done < 0 || last_done + abort_timeout <= pm_clock_ms ())
        return false;
    if (!*told)
        pm_info ("PM4006", "the %d remaining rank(s) still finish sweep rows: not terminating "
                           "them while they do",
                 running);
    *told = true;
    *deadline = last_done + abort_timeout;
    return true;
}

/* When the pmd at endpoint last saw a chunk of group's sweeps come back
   done, on our clock; -1 if never, or if it does not answer within 1 s. */
static int64_t
s_pmd_progress (const char *endpoint, const char *group)
{
    pm_zsys_ready ();
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer)
        return -1;
    int64_t last_done = -1;
    void *handle = zsock_resolve (dealer);
    zsock_set_linger (dealer, 0);
    pm_msg_t ask;
    pm_msg_init (&ask, PM_MSG_STATUS, 0);
    pm_msg_set_str (&ask, PM_KEY_GROUP, group);
    zmq_pollitem_t item = {handle, 0, ZMQ_POLLIN, 0};
    if (zmq_connect (handle, endpoint) == 0 && pm_msg_send (handle, NULL, 0, &ask, NULL, 0, 0) == 0
        && zmq_poll (&item, 1, 1000) == 1) {
        int64_t now = pm_clock_ms ();
        zmsg_t *raw = zmsg_recv (dealer);
        zframe_t *header = raw ? zmsg_first (raw) : NULL;
        pm_msg_t reply;
        char why[160];
        if (header
            && pm_msg_decode (&reply, zframe_data (header), zframe_size (header), why, sizeof why)
                   == 0
            && reply.type == PM_MSG_STATUS_REPLY && pm_msg_get (&reply, PM_KEY_PROGRESS_MS, -1) >= 0)
            last_done = now - pm_msg_get (&reply, PM_KEY_PROGRESS_MS, -1);
        zmsg_destroy (&raw);
    }
    zsock_destroy (&dealer);
    return last_done;
}

/* Tells the pmd at endpoint (which pm-run does not embed) that a rank it
   started is lost, so a rank that never registered fails its group at
   once instead of at the join timeout.  No answer is expected.          */
static void
s_pmd_report_lost (const char *endpoint, const char *group, int size, int rank, const char *how)
{
    pm_zsys_ready ();
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer)
        return;
    zsock_set_linger (dealer, 2000); /* the message goes out after the close */
    zsock_set_sndtimeo (dealer, 1000);
    pm_msg_t lost;
    pm_msg_init (&lost, PM_MSG_RANK_LOST, 0);
    pm_msg_set_str (&lost, PM_KEY_GROUP, group);
    pm_msg_set (&lost, PM_KEY_SIZE, size);
    pm_msg_set (&lost, PM_KEY_RANK, rank);
    pm_msg_set_str (&lost, PM_KEY_TEXT, how);
    void *handle = zsock_resolve (dealer);
    if (zmq_connect (handle, endpoint) != 0 || pm_msg_send (handle, NULL, 0, &lost, NULL, 0, 0) != 0)
        pm_warn ("PM4007", "cannot tell %s that rank %d is lost: %s", endpoint, rank,
                 zmq_strerror (errno));
    zsock_destroy (&dealer);
}

/* A rank pm-run started has ended badly: its coordinator must know. */
static void
s_report_lost (zactor_t *coordinator, const char *endpoint, const char *group, int size,
               int rank, const char *how)
{
    if (coordinator)
        pm_coord_actor_lost (coordinator, group, size, rank, how);
    else if (endpoint)
        s_pmd_report_lost (endpoint, group, size, rank, how);
}

/* pm-run --connect: pmd places the ranks on pm-workers, which stream
   their output and exit statuses back through it.                      */
static int
s_run_remote (const char *endpoint, const char *group, int n, char **program,
              int64_t abort_timeout)
{
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    sigprocmask (SIG_BLOCK, &signals, NULL);
    int signal_fd = signalfd (-1, &signals, SFD_CLOEXEC);
    pm_zsys_ready ();
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    void *handle = zsock_resolve (dealer);
    if (signal_fd < 0 || zmq_connect (handle, endpoint) != 0) {
        fprintf (stderr, "pm-run: cannot connect to %s: %s\n", endpoint, zmq_strerror (errno));
        zsock_destroy (&dealer);
        return 1;
    }
    /* argv as NUL-separated strings, and where to run. */
    size_t argv_size = 0;
    for (char **arg = program; *arg; arg++)
        argv_size += strlen (*arg) + 1;
    zmq_msg_t frames[2];
    zmq_msg_init_size (&frames[0], argv_size);
    char *at = zmq_msg_data (&frames[0]);
    for (char **arg = program; *arg; arg++) {
        size_t len = strlen (*arg) + 1;
        memcpy (at, *arg, len);
        at += len;
    }
    char cwd[4096] = "/";
    if (!getcwd (cwd, sizeof cwd))
        snprintf (cwd, sizeof cwd, "/");
    zmq_msg_init_size (&frames[1], strlen (cwd) + 1);
    memcpy (zmq_msg_data (&frames[1]), cwd, strlen (cwd) + 1);
    pm_msg_t request;
    pm_msg_init (&request, PM_MSG_LAUNCH_REQUEST, 1);
    pm_msg_set_str (&request, PM_KEY_GROUP, group);
    pm_msg_set (&request, PM_KEY_SIZE, n);
    pm_msg_send (handle, NULL, 0, &request, frames, 2, 0);

    int *status = calloc ((size_t) n, sizeof *status);
    uint8_t *done = calloc ((size_t) n, 1);
    int left = n, first_failure = 0, first_failed_rank = -1, escalation = 0;
    bool placed = false;
    int64_t deadline = pm_clock_ms () + 30000; /* for the placement answer */
    int64_t last_heard = pm_clock_ms (), next_ping = last_heard + 1000;
    int64_t pmd_pid = 0, pmd_start = 0; /* who placed the ranks */
    int64_t last_done = -1; /* when pmd last saw the group's sweep finish a chunk (our clock) */
    bool told_progress = false;
    while (left > 0 && status && done) {
        int64_t now = pm_clock_ms ();
        if (deadline >= 0 && now >= deadline && placed && first_failure && escalation == 0
            && s_still_progressing (last_done, abort_timeout, left, &deadline, &told_progress))
            continue;
        if (deadline >= 0 && now >= deadline) {
            if (!placed) {
                fprintf (stderr, "pm-run: no answer from %s within 30 s\n", endpoint);
                first_failure = 1;
                break;
            }
            /* A rank failed and the others did not finish: stop them. */
            pm_msg_t kill_msg;
            pm_msg_init (&kill_msg, PM_MSG_KILL, 0);
            pm_msg_set_str (&kill_msg, PM_KEY_GROUP, group);
            pm_msg_set (&kill_msg, PM_KEY_SIGNAL, escalation++ ? SIGKILL : SIGTERM);
            pm_msg_send (handle, NULL, 0, &kill_msg, NULL, 0, 0);
            pm_warn ("PM4004", "terminating %d remaining rank(s)", left);
            deadline = now + 2000;
            continue;
        }
        if (placed && now >= next_ping) {
            /* pmd's liveness: any answer will do. */
            pm_msg_t ping;
            pm_msg_init (&ping, PM_MSG_STATUS, 0);
            pm_msg_set_str (&ping, PM_KEY_GROUP, group); /* and the sweep's progress */
            pm_msg_send (handle, NULL, 0, &ping, NULL, 0, ZMQ_DONTWAIT);
            next_ping = now + 1000;
        }
        if (placed && now - last_heard > 5000) {
            fprintf (stderr, "pm-run: lost the coordinator at %s\n", endpoint);
            first_failure = first_failure ? first_failure : 1;
            break;
        }
        zmq_pollitem_t items[2] = {{handle, 0, ZMQ_POLLIN, 0}, {NULL, signal_fd, ZMQ_POLLIN, 0}};
        long timeout = 200;
        if (zmq_poll (items, 2, timeout) < 0)
            continue;
        if (items[1].revents & ZMQ_POLLIN) {
            struct signalfd_siginfo info;
            if (read (signal_fd, &info, sizeof info) == (ssize_t) sizeof info) {
                pm_msg_t kill_msg;
                pm_msg_init (&kill_msg, PM_MSG_KILL, 0);
                pm_msg_set_str (&kill_msg, PM_KEY_GROUP, group);
                pm_msg_set (&kill_msg, PM_KEY_SIGNAL, escalation++ ? SIGKILL : SIGTERM);
                pm_msg_send (handle, NULL, 0, &kill_msg, NULL, 0, 0);
                if (!first_failure)
                    first_failure = 128 + (int) info.ssi_signo;
                deadline = pm_clock_ms () + 2000;
            }
        }
        if (!(items[0].revents & ZMQ_POLLIN))
            continue;
        zmsg_t *raw = zmsg_recv (dealer);
        zframe_t *header = raw ? zmsg_pop (raw) : NULL;
        pm_msg_t msg;
        char why[160];
        if (!header || pm_msg_decode (&msg, zframe_data (header), zframe_size (header), why, sizeof why) != 0) {
            zframe_destroy (&header);
            zmsg_destroy (&raw);
            continue;
        }
        zframe_destroy (&header);
        last_heard = pm_clock_ms ();
        int rank = (int) pm_msg_get (&msg, PM_KEY_RANK, -1);
        if (msg.type == PM_MSG_LAUNCH_REPLY) {
            int code = (int) pm_msg_get (&msg, PM_KEY_CODE, PM_EPROTO);
            if (code != 0) {
                fprintf (stderr, "pm-run: %s refused the launch: %s\n", endpoint, msg.text);
                first_failure = 1;
                zmsg_destroy (&raw);
                break;
            }
            pm_info ("PM4005", "%s", msg.text);
            placed = true;
            deadline = -1;
            pmd_pid = pm_msg_get (&msg, PM_KEY_PID, 0);
            pmd_start = pm_msg_get (&msg, PM_KEY_STARTTIME, 0);
        } else if (msg.type == PM_MSG_STATUS_REPLY && placed
                   && (pm_msg_get (&msg, PM_KEY_PID, 0) != pmd_pid
                       || pm_msg_get (&msg, PM_KEY_STARTTIME, 0) != pmd_start)) {
            /* Another pmd answers: the one that placed the ranks is gone, and
               their exits will never reach us.                             */
            fprintf (stderr, "pm-run: the coordinator at %s restarted: this launch is lost "
                             "(its ranks may still run on the workers)\n", endpoint);
            first_failure = first_failure ? first_failure : 1;
            zmsg_destroy (&raw);
            break;
        } else if (msg.type == PM_MSG_STATUS_REPLY && placed) {
            int64_t ago = pm_msg_get (&msg, PM_KEY_PROGRESS_MS, -1);
            if (ago >= 0)
                last_done = last_heard - ago;
        } else if (msg.type == PM_MSG_OUTPUT && rank >= 0 && rank < n) {
            zframe_t *data = zmsg_first (raw);
            if (data) {
                FILE *out = pm_msg_get (&msg, PM_KEY_STREAM, 1) == 2 ? stderr : stdout;
                fwrite (zframe_data (data), 1, zframe_size (data), out);
                fflush (out);
            }
        } else if (msg.type == PM_MSG_RANK_EXIT && rank >= 0 && rank < n && !done[rank]) {
            done[rank] = 1;
            left--;
            status[rank] = (int) pm_msg_get (&msg, PM_KEY_CODE, 1);
            if (status[rank] != 0) {
                pm_warn ("PM4003", "rank %d %s", rank, msg.text[0] ? msg.text : "failed");
                if (!first_failure) {
                    first_failure = status[rank];
                    first_failed_rank = rank;
                    if (left > 0)
                        deadline = pm_clock_ms () + abort_timeout;
                }
            }
        }
        zmsg_destroy (&raw);
    }
    if (first_failure && first_failed_rank >= 0)
        fprintf (stderr, "pm-run: rank %d failed (exit status %d)\n", first_failed_rank, first_failure);
    free (status);
    free (done);
    zsock_destroy (&dealer);
    close (signal_fd);
    return first_failure;
}

/* What the Ray launcher's exit pipe has told pm-run so far. */
typedef struct {
    int fd;                 /* -1 once the launcher has closed it */
    pm_exit_lines_t lines;
    zactor_t *coordinator;  /* where a failed rank is reported: the embedded one, */
    const char *endpoint;   /* else the pmd at endpoint                           */
    const char *group;
    int size;
    int ended;              /* ranks that ended */
    int first_failure, first_failed_rank;
    bool failed_now;        /* the read that found the first failure */
} s_ray_exits_t;

/* A rank's end, as the launcher tells it: a failed one is logged and
   reported to the coordinator.                                        */
static void
s_ray_exit (void *arg, int rank, int status)
{
    s_ray_exits_t *exits = arg;
    exits->ended++;
    if (status == 0)
        return;
    char how[64];
    snprintf (how, sizeof how, "exited with status %d", status);
    pm_warn ("PM4003", "rank %d %s", rank, how);
    s_report_lost (exits->coordinator, exits->endpoint, exits->group, exits->size, rank, how);
    if (!exits->first_failure) {
        exits->first_failure = status;
        exits->first_failed_rank = rank;
        exits->failed_now = true;
    }
}

/* Reads what the pipe holds; false when there was nothing to read. */
static bool
s_read_ray_exits (s_ray_exits_t *exits)
{
    int rc = pm_exit_lines_read (&exits->lines, exits->fd, exits->size, s_ray_exit, exits, NULL);
    if (rc < 0) {
        close (exits->fd); /* the launcher is gone */
        exits->fd = -1;
    }
    return rc > 0;
}

/* pm-run --backend ray: every rank is a process of a Ray actor; the
   coordinator stays here (or is the pmd at endpoint).  pm-run's status is
   the launcher's: the first failing rank's.                            */
static int
s_run_on_ray (const char *endpoint, const char *group, int n, char **program,
              int64_t abort_timeout)
{
    char launcher[4096], err[512];
    if (pm_ray_check (launcher, sizeof launcher, err, sizeof err) != 0) {
        fprintf (stderr, "pm-run: %s\n", err);
        return 1;
    }
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    sigaddset (&signals, SIGCHLD);
    sigprocmask (SIG_BLOCK, &signals, NULL);
    int signal_fd = signalfd (-1, &signals, SFD_CLOEXEC);
    zactor_t *coordinator = NULL;
    char own_endpoint[512];
    if (!endpoint) {
        const char *host = pm_env_str ("PM_RAY_HOST");
        char bind[300];
        snprintf (bind, sizeof bind, "tcp://%s:*", host ? host : "127.0.0.1");
        pm_coord_config_t config;
        if (pm_coord_config_defaults (&config, err, sizeof err) != 0) {
            fprintf (stderr, "pm-run: %s\n", err);
            return 2;
        }
        config.bind[0] = bind;
        config.nbind = 1;
        coordinator = pm_coord_actor_new (&config, own_endpoint, sizeof own_endpoint, err,
                                          sizeof err);
        if (!coordinator) {
            fprintf (stderr, "pm-run: %s\n", err);
            return 1;
        }
        endpoint = own_endpoint;
    }
    char cwd[4096] = "/";
    if (!getcwd (cwd, sizeof cwd))
        snprintf (cwd, sizeof cwd, "/");
    char ranks[64];
    snprintf (ranks, sizeof ranks, "0..%d", n - 1);
    /* The launcher runs with a clean signal mask (pm-run blocks its own). */
    sigset_t old;
    sigset_t none;
    sigemptyset (&none);
    sigprocmask (SIG_SETMASK, &none, &old);
    pid_t pid;
    /* The launcher tells us of every rank's end: pm-run reports failures to
       its coordinator and applies the abort timeout itself, as for local
       ranks (the timeout then follows a dynamic sweep's progress).      */
    int exit_pipe[2];
    pm_ray_exit_pipe (exit_pipe);
    int rc = pm_ray_spawn (launcher, ranks, n, endpoint, group, cwd,
                           exit_pipe[0] >= 0 ? -1 : abort_timeout, exit_pipe[1], program, &pid);
    if (exit_pipe[1] >= 0)
        close (exit_pipe[1]);
    sigprocmask (SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        fprintf (stderr, "pm-run: cannot start the Ray launcher: %s\n", strerror (rc));
        if (exit_pipe[0] >= 0)
            close (exit_pipe[0]);
        zactor_destroy (&coordinator);
        return 1;
    }
    s_ray_exits_t exits = {.fd = exit_pipe[0],
                           .coordinator = coordinator,
                           .endpoint = endpoint,
                           .group = group,
                           .size = n,
                           .first_failed_rank = -1};
    int status = 0, code = 1, signalled = 0;
    int escalation = 0;     /* 0 none yet, 1 SIGTERM sent to the launcher, 2 SIGKILL */
    int64_t deadline = -1;  /* when to stop waiting for the others */
    bool told_progress = false;
    while (true) {
        int64_t now = pm_clock_ms ();
        if (deadline >= 0 && now >= deadline) {
            if (escalation == 0
                && s_still_progressing (coordinator ? pm_coord_actor_progress (coordinator, group)
                                                    : s_pmd_progress (endpoint, group),
                                        abort_timeout, n - exits.ended, &deadline,
                                        &told_progress))
                continue;
            if (escalation++ == 0) {
                pm_warn ("PM4001", "terminating %d remaining rank(s)", n - exits.ended);
                kill (pid, SIGTERM); /* the launcher stops its actors and their ranks */
                deadline = now + 30000;
            } else {
                kill (pid, SIGKILL); /* Ray ends a dead driver's actors */
                deadline = -1;
            }
            continue;
        }
        zmq_pollitem_t items[2] = {{NULL, signal_fd, ZMQ_POLLIN, 0},
                                   {NULL, exits.fd, ZMQ_POLLIN, 0}};
        if (zmq_poll (items, exits.fd >= 0 ? 2 : 1,
                      deadline >= 0 ? (long) (deadline - now) : -1)
            <= 0)
            continue;
        if (exits.fd >= 0 && (items[1].revents & (ZMQ_POLLIN | ZMQ_POLLERR))) {
            s_read_ray_exits (&exits);
            if (exits.failed_now && !signalled && exits.ended < n)
                deadline = pm_clock_ms () + abort_timeout;
            exits.failed_now = false;
        }
        if (!(items[0].revents & ZMQ_POLLIN))
            continue;
        struct signalfd_siginfo info;
        if (read (signal_fd, &info, sizeof info) != (ssize_t) sizeof info)
            continue;
        if (info.ssi_signo == SIGINT || info.ssi_signo == SIGTERM) {
            kill (pid, escalation++ ? SIGKILL : SIGTERM);
            if (!signalled)
                signalled = 128 + (int) info.ssi_signo;
            deadline = pm_clock_ms () + 30000;
            continue;
        }
        if (waitpid (pid, &status, WNOHANG) == pid) {
            code = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
            break;
        }
    }
    while (exits.fd >= 0 && s_read_ray_exits (&exits))
        ; /* what the launcher wrote before it exited */
    if (exits.fd >= 0)
        close (exits.fd);
    zactor_destroy (&coordinator);
    close (signal_fd);
    if (exits.first_failure) {
        fprintf (stderr, "pm-run: rank %d failed (exit status %d)\n", exits.first_failed_rank,
                 exits.first_failure);
        return exits.first_failure;
    }
    if (signalled)
        return signalled;
    if (code != 0)
        fprintf (stderr, "pm-run: the ranks on Ray failed (exit status %d)\n", code);
    return code;
}

int
main (int argc, char **argv)
{
    pm_log_set_program ("pm-run");
    int64_t np = 0, abort_timeout = 10000;
    const char *endpoint = pm_env_str ("PM_ENDPOINT"), *group_arg = NULL;
    enum { OPT_ABORT = 256 };
    static const struct option options[] = {
        {"np", required_argument, NULL, 'n'},
        {"endpoint", required_argument, NULL, 'e'},
        {"connect", required_argument, NULL, 'c'},
        {"backend", required_argument, NULL, 'b'},
        {"group", required_argument, NULL, 'g'},
        {"abort-timeout", required_argument, NULL, OPT_ABORT},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    /* '+': stop at the program name, its options are its own. */
    const char *connect_to = NULL;
    bool on_ray = false;
    while ((opt = getopt_long (argc, argv, "+n:e:c:b:g:l:h", options, NULL)) != -1) {
        switch (opt) {
        case 'n':
            if (!pm_parse_int64 (optarg, 1, 100000, &np)) {
                fprintf (stderr, "pm-run: -n needs a rank count in [1, 100000], got '%s'\n",
                         optarg);
                return 2;
            }
            break;
        case 'e': endpoint = optarg; break;
        case 'c': connect_to = optarg; break;
        case 'b':
            if (strcasecmp (optarg, "ray") == 0 || strcasecmp (optarg, "rayio") == 0)
                on_ray = true;
            else if (strcasecmp (optarg, "local") != 0) {
                fprintf (stderr, "pm-run: --backend is local or ray, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'g':
            if (strlen (optarg) == 0 || strlen (optarg) > PM_GROUP_MAX) {
                fprintf (stderr, "pm-run: --group needs 1 to %d bytes\n", PM_GROUP_MAX);
                return 2;
            }
            group_arg = optarg;
            break;
        case OPT_ABORT:
            if (!pm_parse_int64 (optarg, 0, 86400000, &abort_timeout)) {
                fprintf (stderr, "pm-run: --abort-timeout needs milliseconds, got '%s'\n",
                         optarg);
                return 2;
            }
            break;
        case 'l': {
            int level = pm_log_level_parse (optarg);
            if (level < 0) {
                fprintf (stderr, "pm-run: unknown log level '%s'\n", optarg);
                return 2;
            }
            pm_log_set_level ((pm_log_level_t) level);
            break;
        }
        case 'h': s_usage (stdout); return 0;
        default: s_usage (stderr); return 2;
        }
    }
    if (np == 0 || optind >= argc) {
        fprintf (stderr, "pm-run: %s\n", np == 0 ? "-n N is required" : "no program given");
        s_usage (stderr);
        return 2;
    }
    char **program = &argv[optind];
    int n = (int) np;

    char nonce[9];
    uint32_t raw = 0;
    if (getrandom (&raw, sizeof raw, 0) != sizeof raw)
        raw = (uint32_t) getpid ();
    snprintf (nonce, sizeof nonce, "%08x", raw);
    char group[PM_GROUP_MAX + 1];
    if (group_arg)
        snprintf (group, sizeof group, "%s", group_arg);
    else
        snprintf (group, sizeof group, "pm-run-%d-%s", (int) getpid (), nonce);

    if (connect_to)
        return s_run_remote (connect_to, group, n, program, abort_timeout);
    if (on_ray)
        return s_run_on_ray (endpoint, group, n, program, abort_timeout);

    /* Signals are read from a signalfd; children get a clean mask back. */
    sigset_t signals, empty;
    sigemptyset (&signals);
    sigemptyset (&empty);
    sigaddset (&signals, SIGCHLD);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    sigprocmask (SIG_BLOCK, &signals, NULL);
    int signal_fd = signalfd (-1, &signals, SFD_CLOEXEC);
    if (signal_fd < 0) {
        fprintf (stderr, "pm-run: signalfd: %s\n", strerror (errno));
        return 1;
    }

    zactor_t *coordinator = NULL;
    char own_endpoint[512];
    if (!endpoint) {
        char bind[256];
        snprintf (bind, sizeof bind, "ipc://%s/pm-run-%d-%s.sock", pm_ipc_dir (), (int) getpid (),
                  nonce);
        pm_coord_config_t config;
        char err[512];
        if (pm_coord_config_defaults (&config, err, sizeof err) != 0) {
            fprintf (stderr, "pm-run: %s\n", err);
            return 2;
        }
        config.bind[0] = bind;
        config.nbind = 1;
        coordinator = pm_coord_actor_new (&config, own_endpoint, sizeof own_endpoint, err,
                                          sizeof err);
        if (!coordinator) {
            fprintf (stderr, "pm-run: %s\n", err);
            return 1;
        }
        endpoint = own_endpoint;
    }

    s_rank_t *ranks = calloc ((size_t) n, sizeof *ranks);
    if (!ranks) {
        fprintf (stderr, "pm-run: out of memory\n");
        return 1;
    }
    posix_spawnattr_t attr;
    posix_spawnattr_init (&attr);
    posix_spawnattr_setsigmask (&attr, &empty);
    sigset_t defaults;
    sigemptyset (&defaults);
    sigaddset (&defaults, SIGPIPE);
    sigaddset (&defaults, SIGINT);
    sigaddset (&defaults, SIGTERM);
    posix_spawnattr_setsigdefault (&attr, &defaults);
    /* Each rank leads a process group, so what a rank starts is signalled with it. */
    posix_spawnattr_setpgroup (&attr, 0);
    posix_spawnattr_setflags (&attr,
                              POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    int running = 0, first_failure = 0, first_failed_rank = -1;
    int64_t deadline = -1;  /* when to stop waiting for the others */
    int escalation = 0;     /* 0 none yet, 1 SIGTERM sent, 2 SIGKILL sent */
    for (int r = 0; r < n; r++) {
        char **env = s_rank_environment (r, n, endpoint, group);
        int rc = env ? posix_spawnp (&ranks[r].pid, program[0], NULL, &attr, program, env)
                     : ENOMEM;
        s_free_environment (env);
        if (rc != 0) {
            fprintf (stderr, "pm-run: cannot start '%s' for rank %d: %s\n", program[0], r,
                     strerror (rc));
            first_failure = 127;
            first_failed_rank = r;
            s_report_lost (coordinator, endpoint, group, n, r, "could not be started");
            deadline = pm_clock_ms () + abort_timeout;
            break;
        }
        ranks[r].running = true;
        running++;
    }
    posix_spawnattr_destroy (&attr);

    bool told_progress = false;
    while (running > 0) {
        int64_t now = pm_clock_ms ();
        if (deadline >= 0 && now >= deadline && escalation == 0
            && s_still_progressing (coordinator ? pm_coord_actor_progress (coordinator, group)
                                                : s_pmd_progress (endpoint, group),
                                    abort_timeout, running, &deadline, &told_progress))
            continue;
        if (deadline >= 0 && now >= deadline) {
            escalation++;
            if (escalation == 1) {
                pm_warn ("PM4001", "terminating %d remaining rank(s)", running);
                s_signal_all (ranks, n, SIGTERM);
                deadline = now + 2000;
            } else {
                s_signal_all (ranks, n, SIGKILL);
                deadline = -1;
            }
            continue;
        }
        zmq_pollitem_t item = {NULL, signal_fd, ZMQ_POLLIN, 0};
        long timeout = deadline >= 0 ? (long) (deadline - now) : -1;
        if (zmq_poll (&item, 1, timeout) <= 0)
            continue;
        struct signalfd_siginfo info;
        if (read (signal_fd, &info, sizeof info) != (ssize_t) sizeof info)
            continue;
        if (info.ssi_signo == SIGINT || info.ssi_signo == SIGTERM) {
            pm_warn ("PM4002", "received signal %d: forwarding SIGTERM to the ranks",
                     (int) info.ssi_signo);
            if (escalation >= 1)
                s_signal_all (ranks, n, SIGKILL);
            else
                s_signal_all (ranks, n, SIGTERM);
            escalation++;
            if (!first_failure) {
                first_failure = 128 + (int) info.ssi_signo;
                first_failed_rank = -1;
            }
            deadline = pm_clock_ms () + 2000;
            continue;
        }
        /* SIGCHLD: reap every rank that exited. */
        int status;
        pid_t pid;
        while ((pid = waitpid (-1, &status, WNOHANG)) > 0) {
            for (int r = 0; r < n; r++) {
                if (ranks[r].pid != pid || !ranks[r].running)
                    continue;
                ranks[r].running = false;
                ranks[r].status = s_exit_code (status);
                running--;
                if (ranks[r].status != 0) {
                    char how[128];
                    if (WIFSIGNALED (status))
                        snprintf (how, sizeof how, "was killed by signal %d", WTERMSIG (status));
                    else
                        snprintf (how, sizeof how, "exited with status %d", ranks[r].status);
                    pm_warn ("PM4003", "rank %d (pid %d) %s", r, (int) pid, how);
                    s_report_lost (coordinator, endpoint, group, n, r, how);
                    if (!first_failure) {
                        first_failure = ranks[r].status;
                        first_failed_rank = r;
                        if (running > 0)
                            deadline = pm_clock_ms () + abort_timeout;
                    }
                }
            }
        }
    }
    if (first_failure && first_failed_rank >= 0)
        fprintf (stderr, "pm-run: rank %d failed (exit status %d)\n", first_failed_rank,
                 first_failure);
    free (ranks);
    zactor_destroy (&coordinator);
    close (signal_fd);
    return first_failure;
}
