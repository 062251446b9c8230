/*  pm_ray_job.c — pm-ray-job: Ray jobs through the Jobs REST API, from C.

    `pm-ray-job run -- COMMAND...` is how RayIo and `pm-run --backend ray`
    start their Ray launcher when PM_RAY_JOBS_URL (or an http:// RAY_ADDRESS)
    names a cluster's dashboard: it stands in for the launcher process here,
    so the coordinator's watch on it, the signals and the exit status work as
    for a launcher started directly.  The other commands are for operators. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "pm_json.h"
#include "pm_ray.h"
#include "pm_ray_jobs_api.h"

extern char **environ;

#define POLL_MS 200
#define STOP_WAIT_MS 20000
/* Exit statuses of `run` besides the job's own, as the launcher's. */
#define EXIT_USAGE 2
#define EXIT_NO_CLUSTER 3

static volatile sig_atomic_t s_signal = 0;
/* run --exit-fd: where the launcher's "PM_RAY_EXIT ..." log lines go (-1: printed) */
static int s_exit_fd = -1;
#define EXIT_MARK "PM_RAY_EXIT "

static void
s_on_signal (int signum)
{
    if (!s_signal)
        s_signal = signum;
}

static int
s_usage (FILE *out, int code)
{
    fprintf (out,
             "usage: pm-ray-job [--address URL] COMMAND ...\n"
             "Ray jobs through the cluster's Jobs REST API (the dashboard).\n\n"
             "commands:\n"
             "  run [--id ID] [--exit-fd FD] -- PROGRAM ARGS...\n"
             "        submit PROGRAM as a job, print its logs as they come, and exit with its\n"
             "        exit status; SIGINT, SIGTERM or the end of our parent stops the job\n"
             "        (exit 130, 143, 129); 3 when the job cannot be submitted; log lines\n"
             "        'PM_RAY_EXIT exit RANK STATUS' go to FD instead (the launcher's\n"
             "        --exit-lines, for the coordinator)\n"
             "  submit [--id ID] -- PROGRAM ARGS...   submit, print the job id, return\n"
             "  status ID      print the job's status (and exit code, message)\n"
             "  stop ID        stop the job (exit 1 if it was not running)\n"
             "  logs ID        print the job's logs\n\n"
             "options:\n"
             "  -a, --address URL  the Jobs API (default $PM_RAY_JOBS_URL, else $RAY_ADDRESS\n"
             "                     when it is an http:// URL)\n"
             "  -h, --help         this text\n\n"
             "The job runs with this environment's PM_* variables (not PM_RANK, PM_SIZE,\n"
             "PM_GROUP, PM_ENDPOINT) and those named in PM_RAY_ENV=A,B.  Requests carry\n"
             "'Authorization: Bearer' with the token of RAY_AUTH_TOKEN, else the file\n"
             "RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token when RAY_AUTH_MODE=token.\n");
    return code;
}

/* argv as one shell command line, each word single-quoted. */
static char *
s_shell_line (char **argv)
{
    pm_json_t line = {0}; /* used as a growable text buffer */
    pm_json_raw (&line, "exec");
    for (size_t i = 0; argv[i]; i++) {
        pm_json_raw (&line, " '");
        for (const char *c = argv[i]; *c; c++) {
            if (*c == '\'')
                pm_json_raw (&line, "'\\''");
            else
                pm_json_raw (&line, "%c", *c);
        }
        pm_json_raw (&line, "'");
    }
    if (line.failed) {
        pm_json_free (&line);
        return NULL;
    }
    return line.data;
}

/* Whether name (len bytes) is one of the comma-separated names in list. */
static bool
s_listed (const char *list, const char *name, size_t len)
{
    for (const char *item = list; item && *item;) {
        while (*item == ' ' || *item == ',')
            item++;
        size_t n = strcspn (item, ", ");
        if (n == len && n > 0 && strncmp (item, name, n) == 0)
            return true;
        item += n;
    }
    return false;
}

/* The variables the ranks should see, as a JSON object (malloc'd): PM_*
   and those named in PM_RAY_ENV (as the launcher forwards them).       */
static char *
s_forwarded_env (void)
{
    const char *extra = getenv ("PM_RAY_ENV");
    static const char *own[] = {"PM_RANK=", "PM_SIZE=", "PM_GROUP=", "PM_ENDPOINT=",
                                "PM_RAY_JOBS_URL="};
    pm_json_t json = {0};
    pm_json_raw (&json, "{");
    int n = 0;
    for (char **e = environ; *e; e++) {
        const char *eq = strchr (*e, '=');
        if (!eq || (strncmp (*e, "PM_", 3) != 0 && !s_listed (extra, *e, (size_t) (eq - *e))))
            continue;
        bool skip = false;
        for (size_t i = 0; i < sizeof own / sizeof *own; i++)
            skip = skip || strncmp (*e, own[i], strlen (own[i])) == 0;
        if (skip)
            continue;
        char name[256];
        snprintf (name, sizeof name, "%.*s", (int) (eq - *e), *e);
        pm_json_raw (&json, n++ ? ", " : "");
        pm_json_string (&json, name);
        pm_json_raw (&json, ": ");
        pm_json_string (&json, eq + 1);
    }
    pm_json_raw (&json, "}");
    if (json.failed) {
        pm_json_free (&json);
        return NULL;
    }
    return json.data;
}

static void
s_default_id (char *id, size_t size)
{
    char host[64] = "";
    gethostname (host, sizeof host - 1);
    for (char *c = host; *c; c++)
        if (!strchr ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *c))
            *c = '-';
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    snprintf (id, size, "pm-%.40s-%d-%lx", host, (int) getpid (),
              (unsigned long) (now.tv_nsec ^ (now.tv_sec << 20)));
}

static void
s_sleep_ms (long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep (&t, NULL); /* a signal cuts it short, which is what we want */
}

static long
s_now_ms (void)
{
    struct timespec t;
    clock_gettime (CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

/* How much of a log line is the entrypoint's: Ray's own lines (its job
   manager's "Runtime env is setting up." and "Running entrypoint for job
   ID: ...") are not.  Ray writes the latter whenever it gets to it, even
   after an unfinished line of the entrypoint's: that part is kept.      */
static size_t
s_own_part (const char *line, size_t len, const char *id)
{
    char entry[200];
    int n = snprintf (entry, sizeof entry, "Running entrypoint for job %s: ", id);
    const char *found = n > 0 && (size_t) n < sizeof entry ? memmem (line, len, entry, (size_t) n)
                                                           : NULL;
    if (found)
        return (size_t) (found - line);
    /* "2026-11-22 23:10:29,979\tINFO job_manager.py:581 -- ..." */
    const char *tab = memchr (line, '\t', len < 40 ? len : 40);
    bool ray_log = tab && line[0] >= '0' && line[0] <= '9' && len - (size_t) (tab - line) > 16
                   && memmem (tab, len - (size_t) (tab - line), " job_manager.py:", 16) != NULL;
    return ray_log ? 0 : len + 1; /* len + 1: the whole line, with its newline */
}

/* Writes the whole lines that are new in the job's log since *printed,
   leaving Ray's own lines out (and, when final, a last unfinished line). */
static void
s_print_new_logs (pm_ray_jobs_t *jobs, const char *id, size_t *printed, bool final)
{
    char *logs = NULL, err[512];
    if (pm_ray_jobs_logs (jobs, id, &logs, err, sizeof err) != 0)
        return; /* the next poll tries again */
    size_t len = strlen (logs);
    while (*printed < len) {
        const char *line = logs + *printed;
        const char *eol = memchr (line, '\n', len - *printed);
        if (!eol && !final)
            break; /* the rest of this line comes with a later poll */
        size_t line_len = eol ? (size_t) (eol - line) : len - *printed;
        size_t own = s_own_part (line, line_len, id);
        if (own > line_len) /* all of it, and its newline if it has one */
            own = line_len + (eol ? 1 : 0);
        size_t mark = strlen (EXIT_MARK);
        if (s_exit_fd >= 0 && eol && line_len > mark && memcmp (line, EXIT_MARK, mark) == 0) {
            /* The launcher's word on a rank's end: for the coordinator, not for people. */
            if (write (s_exit_fd, line + mark, line_len + 1 - mark) < 0)
                s_exit_fd = -1; /* nobody reads it any more */
            own = 0;
        }
        fwrite (line, 1, own, stdout);
        *printed += line_len + (eol ? 1 : 0);
    }
    fflush (stdout);
    free (logs);
}

static int
s_submit (pm_ray_jobs_t *jobs, const char *id, char **program)
{
    char *line = s_shell_line (program);
    char *env = s_forwarded_env ();
    char err[1024];
    int rc = line && env ? pm_ray_jobs_submit (jobs, id, line, env, err, sizeof err) : -1;
    if (rc != 0)
        fprintf (stderr, "pm-ray-job: cannot submit: %s\n", line && env ? err : "out of memory");
    free (line);
    free (env);
    return rc;
}

static int
s_run (pm_ray_jobs_t *jobs, const char *id, char **program)
{
    pid_t parent = getppid ();
    prctl (PR_SET_PDEATHSIG, SIGHUP); /* our parent's end stops the job */
    struct sigaction action = {.sa_handler = s_on_signal};
    sigemptyset (&action.sa_mask);
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);
    sigaction (SIGHUP, &action, NULL);
    signal (SIGPIPE, SIG_IGN); /* the exit pipe's reader may go first */
    if (getppid () != parent)
        s_signal = SIGHUP;
    if (s_signal)
        return 128 + s_signal;
    if (s_submit (jobs, id, program) != 0)
        return EXIT_NO_CLUSTER;

    char err[1024];
    size_t printed = 0;
    int64_t next_logs = 0; /* when to fetch the log again */
    bool stop_sent = false;
    long stop_deadline = 0;
    int failures = 0;
    pm_ray_job_info_t info;
    for (;;) {
        if (s_signal && !stop_sent) {
            bool stopped;
            if (pm_ray_jobs_stop (jobs, id, &stopped, err, sizeof err) != 0)
                fprintf (stderr, "pm-ray-job: stopping job %s: %s\n", id, err);
            stop_sent = true;
            stop_deadline = s_now_ms () + STOP_WAIT_MS;
        }
        if (pm_ray_jobs_info (jobs, id, &info, err, sizeof err) != 0) {
            /* The dashboard may restart or hiccup: give it a few polls. */
            if (++failures >= 25) {
                fprintf (stderr, "pm-ray-job: lost track of job %s: %s\n", id, err);
                return stop_sent ? 128 + s_signal : 1;
            }
        } else {
            failures = 0;
            bool finished = pm_ray_job_finished (info.status);
            /* Each fetch returns the whole log: a long one is fetched less often
               (200 ms more per MiB, at most every 5 s), the last time always.  */
            if (finished || s_now_ms () >= next_logs) {
                s_print_new_logs (jobs, id, &printed, finished);
                int64_t every = POLL_MS + (int64_t) (printed >> 20) * 200;
                next_logs = s_now_ms () + (every < 5000 ? every : 5000);
            }
            if (finished)
                break;
        }
        if (stop_sent && s_now_ms () > stop_deadline) {
            fprintf (stderr, "pm-ray-job: job %s still %s %d s after the stop request\n", id,
                     info.status, STOP_WAIT_MS / 1000);
            return 128 + s_signal;
        }
        s_sleep_ms (POLL_MS);
    }
    if (stop_sent)
        return 128 + s_signal;
    if (strcmp (info.status, "SUCCEEDED") == 0)
        return 0;
    if (strcmp (info.status, "STOPPED") == 0) {
        fprintf (stderr, "pm-ray-job: job %s was stopped by someone else\n", id);
        return 128 + SIGTERM;
    }
    if (info.has_exit_code && info.exit_code > 0)
        return info.exit_code;
    fprintf (stderr, "pm-ray-job: job %s failed: %s\n", id, info.message);
    return 1;
}

int
main (int argc, char **argv)
{
    const char *address = NULL, *id_arg = NULL;
    enum { OPT_EXIT_FD = 256 };
    static const struct option options[] = {{"address", required_argument, NULL, 'a'},
                                            {"id", required_argument, NULL, 'i'},
                                            {"exit-fd", required_argument, NULL, OPT_EXIT_FD},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int c;
    /* '+': options stop at the command (its own options follow it). */
    while ((c = getopt_long (argc, argv, "+a:h", options, NULL)) != -1) {
        if (c == 'a')
            address = optarg;
        else if (c == 'h')
            return s_usage (stdout, 0);
        else
            return s_usage (stderr, EXIT_USAGE);
    }
    if (optind >= argc)
        return s_usage (stderr, EXIT_USAGE);
    const char *command = argv[optind++];
    bool submits = strcmp (command, "run") == 0 || strcmp (command, "submit") == 0;
    bool takes_id = strcmp (command, "status") == 0 || strcmp (command, "stop") == 0
                    || strcmp (command, "logs") == 0;
    if (!submits && !takes_id) {
        fprintf (stderr, "pm-ray-job: unknown command '%s' (run, submit, status, stop, logs)\n",
                 command);
        return EXIT_USAGE;
    }
    char **program = NULL;
    if (submits) {
        optind--; /* getopt_long sees the command as argv[0] */
        argv[optind] = (char *) command;
        int sub_argc = argc - optind;
        char **sub_argv = argv + optind;
        optind = 1;
        while ((c = getopt_long (sub_argc, sub_argv, "+i:h", options, NULL)) != -1) {
            if (c == 'i')
                id_arg = optarg;
            else if (c == OPT_EXIT_FD) {
                char *end;
                long fd = strtol (optarg, &end, 10);
                if (*end || end == optarg || fd < 0 || fd > 65535 || fcntl ((int) fd, F_GETFD) < 0) {
                    fprintf (stderr, "pm-ray-job: --exit-fd needs an open file descriptor, got "
                                     "'%s'\n",
                             optarg);
                    return EXIT_USAGE;
                }
                s_exit_fd = (int) fd;
            } else if (c == 'h')
                return s_usage (stdout, 0);
            else
                return s_usage (stderr, EXIT_USAGE);
        }
        if (optind >= sub_argc) {
            fprintf (stderr, "pm-ray-job: %s: no program given (pm-ray-job %s -- PROGRAM ...)\n",
                     command, command);
            return EXIT_USAGE;
        }
        program = sub_argv + optind;
    } else {
        if (optind + 1 != argc) {
            fprintf (stderr, "pm-ray-job: %s takes one job id\n", command);
            return EXIT_USAGE;
        }
        id_arg = argv[optind];
    }
    if (!address)
        address = pm_ray_jobs_url ();
    if (!address) {
        fprintf (stderr, "pm-ray-job: no Jobs API address: give --address http://HEAD:8265 or "
                         "set PM_RAY_JOBS_URL\n");
        return EXIT_USAGE;
    }
    char err[1024];
    pm_ray_jobs_t *jobs = pm_ray_jobs_new (address, err, sizeof err);
    if (!jobs) {
        fprintf (stderr, "pm-ray-job: %s\n", err);
        return EXIT_USAGE;
    }
    char id[128];
    if (id_arg)
        snprintf (id, sizeof id, "%s", id_arg);
    else
        s_default_id (id, sizeof id);
    if (strlen (id_arg ? id_arg : id) >= sizeof id) {
        fprintf (stderr, "pm-ray-job: job id '%s' is too long\n", id_arg);
        pm_ray_jobs_destroy (&jobs);
        return EXIT_USAGE;
    }

    int code = 0;
    if (strcmp (command, "run") == 0)
        code = s_run (jobs, id, program);
    else if (strcmp (command, "submit") == 0) {
        code = s_submit (jobs, id, program) == 0 ? 0 : EXIT_NO_CLUSTER;
        if (code == 0)
            printf ("%s\n", id);
    } else if (strcmp (command, "status") == 0) {
        pm_ray_job_info_t info;
        if (pm_ray_jobs_info (jobs, id, &info, err, sizeof err) != 0) {
            fprintf (stderr, "pm-ray-job: %s\n", err);
            code = 1;
        } else if (info.has_exit_code)
            printf ("%s exit=%d %s\n", info.status, info.exit_code, info.message);
        else
            printf ("%s %s\n", info.status, info.message);
    } else if (strcmp (command, "stop") == 0) {
        bool stopped = false;
        if (pm_ray_jobs_stop (jobs, id, &stopped, err, sizeof err) != 0) {
            fprintf (stderr, "pm-ray-job: %s\n", err);
            code = 1;
        } else {
            printf ("%s\n", stopped ? "stopped" : "not running");
            code = stopped ? 0 : 1;
        }
    } else {
        char *logs = NULL;
        if (pm_ray_jobs_logs (jobs, id, &logs, err, sizeof err) != 0) {
            fprintf (stderr, "pm-ray-job: %s\n", err);
            code = 1;
        } else
            fputs (logs, stdout);
        free (logs);
    }
    pm_ray_jobs_destroy (&jobs);
    return code;
}
