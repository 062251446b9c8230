/*  pm_worker.c — pm-worker: the daemon of a compute node.  It registers
    its slots with pmd, heartbeats, starts the ranks pmd places on it
    (fork + exec, with the rank environment), streams their output back,
    reports their exits, and reconnects when pmd goes away.  SIGTERM stops
    its ranks and exits cleanly.

    One thread, one poll loop: the DEALER to pmd, a signalfd (SIGCHLD,
    SIGTERM, SIGINT) and the ranks' stdout/stderr pipes.               */
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pm.h"
#include "pm_clock.h"
#include "pm_env.h"
#include "pm_log.h"
#include "pm_msg.h"
#include "pm_proc.h"
#include "pm_zsys.h"

#define OUTPUT_CHUNK 65536
#define STOP_GRACE_MS 5000

typedef struct {
    pid_t pid;                     /* 0: free entry */
    char group[PM_GROUP_MAX + 1];
    int rank, size;
    int out_fd, err_fd;            /* -1 once at EOF */
    bool reaped;
    int status;                    /* exit code or 128+signal, once reaped */
} s_rank_t;

typedef struct {
    const char *endpoint;
    int slots;
    zsock_t *dealer;
    void *handle;
    uint64_t session, token;
    int64_t hb_ivl, hb_timeout;
    int64_t last_heard, next_beat;
    bool registered;
    s_rank_t *ranks;               /* slots entries */
    int signal_fd;
    bool stopping;
    int64_t stop_deadline;
    char mpi_job[PM_GROUP_MAX + 1]; /* started by mpirun: its job id ("" if not) */
    int64_t mpi_rank, mpi_size;     /* this worker's place in that job */
    bool mpi_used;                  /* a rank took over the MPI identity already */
} s_worker_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
             "Usage: pm-worker --connect EP [OPTIONS]\n"
             "Register this node's slots with pmd and run the ranks it places here.\n\n"
             "  -c, --connect EP        pmd endpoint, e.g. tcp://head:5555 (required)\n"
             "  -s, --slots N           ranks this node runs at once (default: online CPUs; 1\n"
             "                          when started by mpirun, one worker per MPI process)\n"
             "  -l, --log-level LEVEL   error|warn|info|debug|trace (default info)\n"
             "  -h, --help              this text\n\n"
             "Ranks start in the working directory pm-run was started in, with this worker's\n"
             "environment plus PM_RANK, PM_SIZE, PM_GROUP and PM_ENDPOINT.  They die with\n"
             "the worker.  SIGTERM/SIGINT stop the ranks (SIGTERM, then SIGKILL after 5 s)\n"
             "and exit 0.\n");
}

static void
s_send (s_worker_t *self, pm_msg_t *msg, zmq_msg_t *frames, size_t nframes)
{
    if (pm_msg_send (self->handle, NULL, 0, msg, frames, nframes, ZMQ_DONTWAIT) != 0)
        pm_debug ("PM6001", "cannot send %s to pmd", pm_msg_type_name (msg->type));
}

static void
s_connect (s_worker_t *self)
{
    zsock_destroy (&self->dealer);
    self->dealer = zsock_new (ZMQ_DEALER);
    self->handle = zsock_resolve (self->dealer);
    int linger = 500, reconnect = 100;
    zmq_setsockopt (self->handle, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (self->handle, ZMQ_RECONNECT_IVL, &reconnect, sizeof reconnect);
    if (zmq_connect (self->handle, self->endpoint) != 0)
        pm_error ("PM6002", "cannot connect to %s: %s", self->endpoint, zmq_strerror (errno));
    pm_proc_id_t me;
    pm_proc_self (&me);
    char host[PM_HOST_MAX + 1] = "";
    gethostname (host, sizeof host - 1);
    pm_msg_t hello;
    pm_msg_init (&hello, PM_MSG_WORKER_HELLO, 0);
    pm_msg_set (&hello, PM_KEY_SLOTS, self->slots);
    pm_msg_set (&hello, PM_KEY_PID, me.pid);
    pm_msg_set (&hello, PM_KEY_STARTTIME, (int64_t) me.starttime);
    pm_msg_set_str (&hello, PM_KEY_BOOT_ID, me.boot_id);
    pm_msg_set_str (&hello, PM_KEY_HOST, host);
    if (self->mpi_job[0] && !self->mpi_used) {
        /* An MPI identity never used: one launch over the whole job can run on
           native MPI, each rank being the MPI process its worker stands for. */
        pm_msg_set (&hello, PM_KEY_FLAGS, PM_WORKER_MPI);
        pm_msg_set_str (&hello, PM_KEY_GROUP, self->mpi_job);
        pm_msg_set (&hello, PM_KEY_RANK, self->mpi_rank);
        pm_msg_set (&hello, PM_KEY_SIZE, self->mpi_size);
    }
    s_send (self, &hello, NULL, 0);
    self->registered = false;
    self->last_heard = pm_clock_ms ();
    self->next_beat = self->last_heard + 1000;
}

static int
s_running (const s_worker_t *self)
{
    int n = 0;
    for (int i = 0; i < self->slots; i++)
        n += self->ranks[i].pid != 0;
    return n;
}

/* Splits a NUL-separated frame into argv (NULL-terminated); NULL on error. */
static char **
s_split_argv (const char *data, size_t size)
{
    size_t count = 0;
    for (size_t i = 0; i < size; i++)
        count += data[i] == '\0';
    char **argv = calloc (count + 1, sizeof *argv);
    if (!argv)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < size && k < count; k++) {
        argv[k] = strdup (data + i);
        i += strlen (data + i) + 1;
    }
    return argv;
}

static void
s_free_argv (char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++)
        free (argv[i]);
    free (argv);
}

/* Resolves a program name on PATH before fork (execve does not search). */
static bool
s_resolve (const char *program, const char *cwd, char *out, size_t size)
{
    if (strchr (program, '/')) {
        if (program[0] == '/')
            snprintf (out, size, "%s", program);
        else
            snprintf (out, size, "%s/%s", cwd, program);
        return access (out, X_OK) == 0;
    }
    const char *path = getenv ("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    char dirs[4096];
    snprintf (dirs, sizeof dirs, "%s", path);
    char *save = NULL;
    for (char *dir = strtok_r (dirs, ":", &save); dir; dir = strtok_r (NULL, ":", &save)) {
        snprintf (out, size, "%s/%s", *dir ? dir : ".", program);
        if (access (out, X_OK) == 0)
            return true;
    }
    return false;
}

static void
s_report_exit (s_worker_t *self, s_rank_t *rank)
{
    pm_msg_t msg;
    pm_msg_init (&msg, PM_MSG_RANK_EXIT, 0);
    pm_msg_set_str (&msg, PM_KEY_GROUP, rank->group);
    pm_msg_set (&msg, PM_KEY_RANK, rank->rank);
    pm_msg_set (&msg, PM_KEY_CODE, rank->status);
    s_send (self, &msg, NULL, 0);
    pm_info ("PM6003", "rank %d of group '%s' (pid %d) ended with status %d", rank->rank,
             rank->group, (int) rank->pid, rank->status);
    memset (rank, 0, sizeof *rank);
}

static void
s_launch (s_worker_t *self, const pm_msg_t *msg, zmq_msg_t *frames, size_t nframes)
{
    int rank = (int) pm_msg_get (msg, PM_KEY_RANK, -1), size = (int) pm_msg_get (msg, PM_KEY_SIZE, 0);
    s_rank_t *slot = NULL;
    for (int i = 0; i < self->slots && !slot; i++)
        if (self->ranks[i].pid == 0)
            slot = &self->ranks[i];
    char **argv = nframes == 2 ? s_split_argv (zmq_msg_data (&frames[0]), zmq_msg_size (&frames[0]))
                               : NULL;
    char cwd[PATH_MAX] = "/";
    if (nframes == 2 && zmq_msg_size (&frames[1]) > 0 && zmq_msg_size (&frames[1]) < sizeof cwd)
        memcpy (cwd, zmq_msg_data (&frames[1]), zmq_msg_size (&frames[1]));
    cwd[sizeof cwd - 1] = '\0';
    char program[PATH_MAX + 256];
    const char *why = NULL;
    if (!slot)
        why = "no free slot";
    else if (!argv || !argv[0] || rank < 0 || size < 1)
        why = "malformed LAUNCH";
    else if (!s_resolve (argv[0], cwd, program, sizeof program))
        why = "program not found or not executable";
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    if (!why && (pipe2 (out_pipe, O_CLOEXEC) != 0 || pipe2 (err_pipe, O_CLOEXEC) != 0))
        why = "cannot create pipes";
    /* The environment is built before fork: the child only calls exec. */
    char **env = NULL;
    if (!why) {
        extern char **environ;
        size_t n = 0;
        while (environ[n])
            n++;
        env = calloc (n + 5, sizeof *env);
        size_t k = 0;
        /* A worker started by mpirun hands its MPI identity on only to a rank
           of a launch that pmd placed over its whole MPI job (once: an MPI
           process initialises once); otherwise a rank would take itself for
           a process of the worker's MPI job.                               */
        bool as_mpi = (pm_msg_get (msg, PM_KEY_FLAGS, 0) & PM_LAUNCH_MPI) && self->mpi_job[0]
                      && !self->mpi_used;
        if (as_mpi)
            self->mpi_used = true;
        static const char *const drop[] = {"PM_RANK=", "PM_SIZE=",  "PM_GROUP=", "PM_ENDPOINT=",
                                           "OMPI_",    "PMIX_",     "PMI_",      "MV2_"};
        size_t ndrop = as_mpi ? 4 : sizeof drop / sizeof drop[0];
        for (size_t i = 0; env && i < n; i++) {
            bool keep = true;
            for (size_t d = 0; keep && d < ndrop; d++)
                keep = strncmp (environ[i], drop[d], strlen (drop[d])) != 0;
            if (keep)
                env[k++] = environ[i];
        }
        if (env) {
            char *extra[4];
            extra[0] = zsys_sprintf ("PM_RANK=%d", rank);
            extra[1] = zsys_sprintf ("PM_SIZE=%d", size);
            extra[2] = zsys_sprintf ("PM_GROUP=%s", msg->group);
            extra[3] = zsys_sprintf ("PM_ENDPOINT=%s", self->endpoint);
            for (int i = 0; i < 4; i++)
                env[k++] = extra[i];
        } else
            why = "out of memory";
    }
    pid_t pid = -1;
    if (!why) {
        pid = fork ();
        if (pid == 0) {
            /* Only async-signal-safe calls until exec. */
            prctl (PR_SET_PDEATHSIG, SIGKILL); /* ranks die with their worker */
            setpgid (0, 0);
            sigset_t none;
            sigemptyset (&none);
            sigprocmask (SIG_SETMASK, &none, NULL);
            dup2 (out_pipe[1], 1);
            dup2 (err_pipe[1], 2);
            if (chdir (cwd) != 0)
                _exit (126);
            execve (program, argv, env);
            _exit (127);
        }
        if (pid < 0)
            why = "fork failed";
    }
    if (env) {
        size_t n = 0;
        while (env[n])
            n++;
        for (size_t i = n >= 4 ? n - 4 : 0; i < n; i++)
            zstr_free (&env[i]);
        free (env);
    }
    if (out_pipe[1] >= 0)
        close (out_pipe[1]);
    if (err_pipe[1] >= 0)
        close (err_pipe[1]);
    if (why) {
        pm_error ("PM6004", "cannot start rank %d of group '%s': %s", rank, msg->group, why);
        if (out_pipe[0] >= 0)
            close (out_pipe[0]);
        if (err_pipe[0] >= 0)
            close (err_pipe[0]);
        s_rank_t failed = {.rank = rank, .status = 127};
        snprintf (failed.group, sizeof failed.group, "%s", msg->group);
        s_report_exit (self, &failed);
    } else {
        slot->pid = pid;
        snprintf (slot->group, sizeof slot->group, "%s", msg->group);
        slot->rank = rank;
        slot->size = size;
        slot->out_fd = out_pipe[0];
        slot->err_fd = err_pipe[0];
        slot->reaped = false;
        fcntl (slot->out_fd, F_SETFL, O_NONBLOCK);
        fcntl (slot->err_fd, F_SETFL, O_NONBLOCK);
        pm_info ("PM6005", "started rank %d/%d of group '%s' (pid %d): %s", rank, size,
                 msg->group, (int) pid, program);
    }
    s_free_argv (argv);
}

/* Forwards what a rank wrote; closes the pipe at EOF. */
static void
s_pump (s_worker_t *self, s_rank_t *rank, int *fd, int stream)
{
    char buf[OUTPUT_CHUNK];
    ssize_t n = read (*fd, buf, sizeof buf);
    if (n > 0) {
        pm_msg_t msg;
        pm_msg_init (&msg, PM_MSG_OUTPUT, 0);
        pm_msg_set_str (&msg, PM_KEY_GROUP, rank->group);
        pm_msg_set (&msg, PM_KEY_RANK, rank->rank);
        pm_msg_set (&msg, PM_KEY_STREAM, stream);
        zmq_msg_t data;
        zmq_msg_init_size (&data, (size_t) n);
        memcpy (zmq_msg_data (&data), buf, (size_t) n);
        s_send (self, &msg, &data, 1);
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        close (*fd);
        *fd = -1;
    }
}

static void
s_signal_ranks (s_worker_t *self, const char *group, int sig)
{
    for (int i = 0; i < self->slots; i++)
        if (self->ranks[i].pid && !self->ranks[i].reaped
            && (!group || strcmp (group, self->ranks[i].group) == 0))
            kill (-self->ranks[i].pid, sig);
}

static void
s_handle_pmd (s_worker_t *self)
{
    zmsg_t *raw = zmsg_recv (self->dealer);
    if (!raw)
        return;
    zframe_t *header = zmsg_pop (raw);
    pm_msg_t msg;
    char why[160];
    if (!header || pm_msg_decode (&msg, zframe_data (header), zframe_size (header), why, sizeof why) != 0) {
        pm_warn ("PM6006", "dropped a malformed message from pmd");
        zframe_destroy (&header);
        zmsg_destroy (&raw);
        return;
    }
    zframe_destroy (&header);
    self->last_heard = pm_clock_ms ();
    size_t nframes = zmsg_size (raw);
    zmq_msg_t frames[2];
    size_t k = 0;
    for (zframe_t *f = zmsg_first (raw); f && k < 2; f = zmsg_next (raw), k++) {
        zmq_msg_init_size (&frames[k], zframe_size (f));
        memcpy (zmq_msg_data (&frames[k]), zframe_data (f), zframe_size (f));
    }
    switch (msg.type) {
    case PM_MSG_WELCOME:
        self->session = (uint64_t) pm_msg_get (&msg, PM_KEY_SESSION, 0);
        self->token = (uint64_t) pm_msg_get (&msg, PM_KEY_TOKEN, 0);
        self->hb_ivl = pm_msg_get (&msg, PM_KEY_HB_IVL, 1000);
        self->hb_timeout = pm_msg_get (&msg, PM_KEY_HB_TIMEOUT, 3000);
        self->registered = true;
        pm_info ("PM6007", "registered %d slot(s) with %s as worker %llu", self->slots,
                 self->endpoint, (unsigned long long) self->session);
        break;
    case PM_MSG_LAUNCH:
        if (!self->stopping)
            s_launch (self, &msg, frames, nframes < 2 ? nframes : 2);
        break;
    case PM_MSG_KILL:
        s_signal_ranks (self, msg.group, (int) pm_msg_get (&msg, PM_KEY_SIGNAL, SIGTERM));
        break;
    case PM_MSG_ERROR:
        if (self->registered && !self->stopping) {
            /* pmd restarted (or dropped us): register again at once. */
            pm_warn ("PM6012", "pmd no longer knows this worker (%s): registering again",
                     msg.text);
            /* The launches of the ranks running here died with the old pmd:
               nobody would ever see their output or exit; stop them.      */
            if (s_running (self) > 0) {
                pm_warn ("PM6013", "stopping %d rank(s) of launches the old pmd held",
                         s_running (self));
                s_signal_ranks (self, NULL, SIGTERM);
            }
            s_connect (self);
            break;
        }
        pm_error ("PM6008", "pmd refused: %s", msg.text);
        self->last_heard = 0; /* retry after the timeout */
        break;
    default: break;
    }
    for (size_t i = 0; i < k; i++)
        zmq_msg_close (&frames[i]);
    zmsg_destroy (&raw);
}

int
main (int argc, char **argv)
{
    pm_log_set_program ("pm-worker");
    if (!getenv ("PM_LOG_LEVEL"))
        pm_log_set_level (PM_LOG_INFO);
    s_worker_t self = {.slots = (int) sysconf (_SC_NPROCESSORS_ONLN)};
    /* Started by mpirun (one worker per MPI process of an allocation), a
       worker offers one slot: the allocation decides how many run here. */
    int64_t mpi_size = 0, mpi_rank = 0;
    if (pm_parse_int64 (getenv ("OMPI_COMM_WORLD_SIZE"), 1, INT32_MAX, &mpi_size)
        && pm_parse_int64 (getenv ("OMPI_COMM_WORLD_RANK"), 0, mpi_size - 1, &mpi_rank)) {
        self.slots = 1;
        const char *job = getenv ("PMIX_NAMESPACE");
        if (!job)
            job = getenv ("OMPI_MCA_ess_base_jobid");
        if (job && *job) {
            snprintf (self.mpi_job, sizeof self.mpi_job, "%s", job);
            self.mpi_rank = mpi_rank;
            self.mpi_size = mpi_size;
        }
    } else if (pm_parse_int64 (getenv ("PMI_SIZE"), 1, INT32_MAX, &mpi_size))
        self.slots = 1;
    static const struct option options[] = {
        {"connect", required_argument, NULL, 'c'},
        {"slots", required_argument, NULL, 's'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    int64_t slots;
    while ((opt = getopt_long (argc, argv, "c:s:l:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c': self.endpoint = optarg; break;
        case 's':
            if (!pm_parse_int64 (optarg, 1, 100000, &slots)) {
                fprintf (stderr, "pm-worker: --slots needs a count in [1, 100000], got '%s'\n", optarg);
                return 2;
            }
            self.slots = (int) slots;
            break;
        case 'l': {
            int level = pm_log_level_parse (optarg);
            if (level < 0) {
                fprintf (stderr, "pm-worker: unknown log level '%s'\n", optarg);
                return 2;
            }
            pm_log_set_level ((pm_log_level_t) level);
            break;
        }
        case 'h': s_usage (stdout); return 0;
        default: s_usage (stderr); return 2;
        }
    }
    if (!self.endpoint || optind < argc) {
        fprintf (stderr, "pm-worker: %s\n", self.endpoint ? "unexpected argument" : "--connect EP is required");
        s_usage (stderr);
        return 2;
    }
    if (self.slots < 1)
        self.slots = 1;
    self.ranks = calloc ((size_t) self.slots, sizeof *self.ranks);
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGCHLD);
    sigaddset (&signals, SIGTERM);
    sigaddset (&signals, SIGINT);
    sigprocmask (SIG_BLOCK, &signals, NULL);
    signal (SIGPIPE, SIG_IGN);
    self.signal_fd = signalfd (-1, &signals, SFD_CLOEXEC);
    if (!self.ranks || self.signal_fd < 0) {
        fprintf (stderr, "pm-worker: cannot start: %s\n", strerror (errno));
        return 1;
    }
    pm_zsys_ready ();
    self.hb_ivl = 1000;
    self.hb_timeout = 3000;
    s_connect (&self);

    while (true) {
        int64_t now = pm_clock_ms ();
        if (self.stopping && s_running (&self) == 0)
            break;
        if (self.stopping && now >= self.stop_deadline) {
            s_signal_ranks (&self, NULL, SIGKILL);
            self.stop_deadline = now + 1000;
        }
        /* pmd silent: register again (it may have restarted). */
        if (!self.stopping && now - self.last_heard > self.hb_timeout + (self.registered ? 0 : 2000)) {
            pm_warn ("PM6009", "no answer from %s: registering again", self.endpoint);
            s_connect (&self);
        }
        if (self.registered && now >= self.next_beat) {
            pm_msg_t beat;
            pm_msg_init (&beat, PM_MSG_HEARTBEAT, 0);
            pm_msg_set (&beat, PM_KEY_SESSION, (int64_t) self.session);
            pm_msg_set (&beat, PM_KEY_TOKEN, (int64_t) self.token);
            s_send (&self, &beat, NULL, 0);
            self.next_beat = now + self.hb_ivl;
        }
        zmq_pollitem_t items[2 + 2 * self.slots];
        s_rank_t *owner[2 + 2 * self.slots];
        int *fds[2 + 2 * self.slots];
        int n = 0;
        items[n++] = (zmq_pollitem_t){self.handle, 0, ZMQ_POLLIN, 0};
        items[n++] = (zmq_pollitem_t){NULL, self.signal_fd, ZMQ_POLLIN, 0};
        for (int i = 0; i < self.slots; i++) {
            s_rank_t *rank = &self.ranks[i];
            if (!rank->pid)
                continue;
            if (rank->out_fd >= 0) {
                owner[n] = rank;
                fds[n] = &rank->out_fd;
                items[n++] = (zmq_pollitem_t){NULL, rank->out_fd, ZMQ_POLLIN, 0};
            }
            if (rank->err_fd >= 0) {
                owner[n] = rank;
                fds[n] = &rank->err_fd;
                items[n++] = (zmq_pollitem_t){NULL, rank->err_fd, ZMQ_POLLIN, 0};
            }
        }
        long timeout = (long) (self.next_beat - now);
        if (timeout < 0 || !self.registered)
            timeout = 100;
        if (zmq_poll (items, n, timeout) < 0 && errno != EINTR)
            break;
        if (items[0].revents & ZMQ_POLLIN)
            s_handle_pmd (&self);
        for (int i = 2; i < n; i++)
            if (items[i].revents & (ZMQ_POLLIN | ZMQ_POLLERR))
                s_pump (&self, owner[i], fds[i], fds[i] == &owner[i]->out_fd ? 1 : 2);
        if (items[1].revents & ZMQ_POLLIN) {
            struct signalfd_siginfo info;
            if (read (self.signal_fd, &info, sizeof info) == (ssize_t) sizeof info
                && (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT) && !self.stopping) {
                pm_info ("PM6010", "signal %d: stopping %d rank(s)", (int) info.ssi_signo,
                         s_running (&self));
                self.stopping = true;
                self.stop_deadline = pm_clock_ms () + STOP_GRACE_MS;
                s_signal_ranks (&self, NULL, SIGTERM);
            }
            int status;
            pid_t pid;
            while ((pid = waitpid (-1, &status, WNOHANG)) > 0)
                for (int i = 0; i < self.slots; i++)
                    if (self.ranks[i].pid == pid) {
                        self.ranks[i].reaped = true;
                        self.ranks[i].status = WIFEXITED (status) ? WEXITSTATUS (status)
                                                                  : 128 + WTERMSIG (status);
                    }
        }
        /* A rank is over once reaped and its output drained. */
        for (int i = 0; i < self.slots; i++) {
            s_rank_t *rank = &self.ranks[i];
            if (rank->pid && rank->reaped && rank->out_fd < 0 && rank->err_fd < 0)
                s_report_exit (&self, rank);
        }
    }
    if (self.registered) {
        pm_msg_t bye;
        pm_msg_init (&bye, PM_MSG_BYE, 0);
        s_send (&self, &bye, NULL, 0);
    }
    zsock_destroy (&self.dealer);
    free (self.ranks);
    close (self.signal_fd);
    pm_info ("PM6011", "stopped");
    return 0;
}
