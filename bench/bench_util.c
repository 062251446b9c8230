/*  bench_util.c — helpers shared by the benchmarks (see bench_util.h). */
#include "bench_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define S_OUT_LIMIT (1 << 20) /* bytes of child output kept */

volatile sig_atomic_t bench_interrupted;
static volatile pid_t s_running_group; /* child group to kill on a signal */

uint64_t
bench_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

void
bench_format (char *dst, size_t size, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (dst, size, format, args);
    va_end (args);
}

void
bench_emit (const char *format, ...)
{
    char line[1024];
    va_list args;
    va_start (args, format);
    int len = vsnprintf (line, sizeof line - 1, format, args);
    va_end (args);
    if (len < 0)
        return;
    if ((size_t) len > sizeof line - 2)
        len = (int) sizeof line - 2;
    line[len++] = '\n';
    ssize_t rc;
    do
        rc = write (STDOUT_FILENO, line, (size_t) len);
    while (rc < 0 && errno == EINTR);
}

bool
bench_parse_long (const char *text, long min, long max, long *value)
{
    char *end;
    errno = 0;
    long v = strtol (text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return false;
    *value = v;
    return true;
}

int
bench_reap (pid_t pid, int timeout_ms)
{
    uint64_t deadline = bench_now_ns () + (uint64_t) timeout_ms * 1000000u;
    int status = 0;
    while (true) {
        pid_t rc = waitpid (pid, &status, WNOHANG);
        if (rc == pid)
            return status;
        if (rc < 0 && errno != EINTR)
            return -1;
        if (bench_now_ns () > deadline) {
            kill (pid, SIGKILL);
            while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
                ;
            return -1;
        }
        usleep (2000);
    }
}

void
bench_make_temp_dir (char *dir, size_t size)
{
    const char *tmp = getenv ("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    bench_format (dir, size, "%s/pm-bench-XXXXXX", tmp);
    if (!mkdtemp (dir))
        dir[0] = '\0';
}

void
bench_remove_tree (const char *path, int depth)
{
    DIR *dir = depth > 0 ? opendir (path) : NULL;
    if (dir) {
        struct dirent *entry;
        while ((entry = readdir (dir)) != NULL) {
            if (strcmp (entry->d_name, ".") == 0 || strcmp (entry->d_name, "..") == 0)
                continue;
            char child[PATH_MAX];
            bench_format (child, sizeof child, "%s/%s", path, entry->d_name);
            if (entry->d_type == DT_DIR)
                bench_remove_tree (child, depth - 1);
            else
                unlink (child);
        }
        closedir (dir);
    }
    rmdir (path);
}

bool
bench_next_line (const char **cursor, char *buf, size_t size)
{
    const char *line = *cursor;
    if (!line || !*line || size == 0)
        return false;
    const char *end = strchr (line, '\n');
    size_t len = end ? (size_t) (end - line) : strlen (line);
    *cursor = end ? end + 1 : line + len;
    if (len >= size)
        len = size - 1;
    memcpy (buf, line, len);
    buf[len] = '\0';
    return true;
}

void
bench_describe_status (int status, char *buf, size_t size)
{
    if (status == -1)
        bench_format (buf, size, "child failed");
    else if (WIFSIGNALED (status))
        bench_format (buf, size, "child killed by signal %d (%s)", WTERMSIG (status),
                      strsignal (WTERMSIG (status)));
    else if (WIFEXITED (status))
        bench_format (buf, size, "child exited with status %d", WEXITSTATUS (status));
    else
        bench_format (buf, size, "child ended with wait status 0x%x", (unsigned) status);
}

void
bench_progress (const char *format, ...)
{
    if (!isatty (STDERR_FILENO))
        return;
    va_list args;
    va_start (args, format);
    fprintf (stderr, "\r\033[K  running ");
    vfprintf (stderr, format, args);
    fflush (stderr);
    va_end (args);
}

void
bench_progress_clear (void)
{
    if (isatty (STDERR_FILENO))
        fprintf (stderr, "\r\033[K");
}

void
bench_cpu_sample (bench_cpu_t *sample)
{
    sample->wall_ns = bench_now_ns ();
    sample->machine_s = -1;
    FILE *f = fopen ("/proc/stat", "r");
    if (f) {
        unsigned long long v[8] = { 0 }; /* user nice system idle iowait irq softirq steal */
        if (fscanf (f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                    &v[4], &v[5], &v[6], &v[7])
            >= 7) {
            long ticks = sysconf (_SC_CLK_TCK);
            sample->machine_s = (double) (v[0] + v[1] + v[2] + v[5] + v[6] + v[7])
                                / (double) (ticks > 0 ? ticks : 100);
        }
        fclose (f);
    }
    struct rusage self, children;
    getrusage (RUSAGE_SELF, &self);
    getrusage (RUSAGE_CHILDREN, &children);
    sample->ours_s = (double) (self.ru_utime.tv_sec + self.ru_stime.tv_sec
                               + children.ru_utime.tv_sec + children.ru_stime.tv_sec)
                     + (double) (self.ru_utime.tv_usec + self.ru_stime.tv_usec
                                 + children.ru_utime.tv_usec + children.ru_stime.tv_usec)
                           / 1e6;
}

double
bench_cpu_others (const bench_cpu_t *before, const bench_cpu_t *after)
{
    if (before->machine_s < 0 || after->machine_s < 0 || after->wall_ns <= before->wall_ns)
        return -1;
    double others = (after->machine_s - before->machine_s) - (after->ours_s - before->ours_s);
    double wall = (double) (after->wall_ns - before->wall_ns) / 1e9;
    return others > 0 ? others / wall : 0;
}

/* Kills the configuration running now; the driver notices
   bench_interrupted, cleans up and exits 128+sig.                          */
static void
s_on_signal (int sig)
{
    bench_interrupted = sig;
    if (s_running_group > 0)
        kill (-s_running_group, SIGKILL);
}

bool
bench_driver_setup (const char *program, char *run_dir, size_t run_dir_size)
{
    unsetenv ("PM_ENDPOINT");
    unsetenv ("PM_GROUP");
    unsetenv ("PM_RANK");
    unsetenv ("PM_SIZE");
    prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
    sigaction (SIGHUP, &sa, NULL);

    const char *tmp = getenv ("TMPDIR");
    if (tmp && strlen (tmp) > 40)
        unsetenv ("TMPDIR");
    bench_make_temp_dir (run_dir, run_dir_size);
    if (!run_dir[0]) {
        fprintf (stderr, "%s: mkdtemp: %s\n", program, strerror (errno));
        return false;
    }
    setenv ("TMPDIR", run_dir, 1);
    return true;
}

bool
bench_self_path (char *buf, size_t size)
{
    ssize_t len = readlink ("/proc/self/exe", buf, size - 1);
    if (len <= 0)
        return false;
    buf[len] = '\0';
    return true;
}

/* posix_spawn(p) in a new process group; stdout to out_fd unless -1. */
static int
s_spawn (pid_t *pid, const char *path, char *const args[], int out_fd)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init (&fa);
    if (out_fd >= 0) {
        posix_spawn_file_actions_adddup2 (&fa, out_fd, STDOUT_FILENO);
        posix_spawn_file_actions_addclose (&fa, out_fd);
    }
    posix_spawnattr_init (&attr);
    posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup (&attr, 0);
    int rc = strchr (path, '/') ? posix_spawn (pid, path, &fa, &attr, args, environ)
                                : posix_spawnp (pid, path, &fa, &attr, args, environ);
    posix_spawn_file_actions_destroy (&fa);
    posix_spawnattr_destroy (&attr);
    return rc;
}

pid_t
bench_spawn (const char *path, char *const args[], char *err, size_t err_size)
{
    pid_t pid = -1;
    int rc = s_spawn (&pid, path, args, -1);
    if (rc != 0) {
        bench_format (err, err_size, "posix_spawn %s: %s", path, strerror (rc));
        return -1;
    }
    return pid;
}

char *
bench_run_child (const char *path, char *const args[], int timeout_s, int *status, char *err,
                 size_t err_size)
{
    *status = -1;
    err[0] = '\0';
    int out[2];
    if (pipe (out) != 0) {
        bench_format (err, err_size, "pipe: %s", strerror (errno));
        return NULL;
    }
    fcntl (out[0], F_SETFD, FD_CLOEXEC);
    pid_t pid = -1;
    int rc = s_spawn (&pid, path, args, out[1]);
    close (out[1]);
    if (rc != 0) {
        close (out[0]);
        bench_format (err, err_size, "posix_spawn %s: %s", path, strerror (rc));
        return NULL;
    }
    s_running_group = pid;

    size_t cap = 4096, len = 0;
    char *text = malloc (cap);
    if (!text) {
        kill (-pid, SIGKILL);
        bench_reap (pid, 1000);
        close (out[0]);
        s_running_group = 0;
        bench_format (err, err_size, "out of memory");
        return NULL;
    }
    text[0] = '\0';
    uint64_t deadline = bench_now_ns () + (uint64_t) timeout_s * 1000000000u;
    uint64_t exited_at = 0; /* when the spawned process itself exited */
    bool eof = false, timed_out = false, strays = false;
    while (!eof || !exited_at) {
        uint64_t now = bench_now_ns ();
        if (bench_interrupted) {
            kill (-pid, SIGKILL);
            timed_out = true;
            break;
        }
        if (now > deadline) {
            timed_out = true;
            break;
        }
        /* Processes still holding the pipe 3 s after the one they were
           forked from has gone: strays, not worth waiting for.             */
        if (exited_at && now > exited_at + 3000000000u) {
            strays = true;
            break;
        }
        if (!exited_at) {
            pid_t w = waitpid (pid, status, WNOHANG);
            if (w == pid)
                exited_at = bench_now_ns ();
        }
        if (eof) {
            usleep (2000);
            continue;
        }
        struct pollfd pfd = { .fd = out[0], .events = POLLIN };
        if (poll (&pfd, 1, 50) <= 0)
            continue;
        if (len + 1024 > cap && cap < S_OUT_LIMIT) {
            char *bigger = realloc (text, cap * 2);
            if (bigger) {
                text = bigger;
                cap *= 2;
            }
        }
        char sink[1024];
        bool keep = len + 1024 <= cap;
        ssize_t n = read (out[0], keep ? text + len : sink, keep ? cap - len - 1 : sizeof sink);
        if (n == 0)
            eof = true;
        else if (n > 0 && keep) {
            len += (size_t) n;
            text[len] = '\0';
        }
    }
    close (out[0]);
    kill (-pid, SIGKILL); /* whatever is left of the group */
    if (!exited_at) {
        int st = bench_reap (pid, 1000);
        if (!timed_out)
            *status = st;
    }
    /* Processes orphaned by the kill were reparented to us (subreaper):
       reap them so no zombie outlives the run.                            */
    uint64_t reap_deadline = bench_now_ns () + 2000000000u;
    while (bench_now_ns () < reap_deadline) {
        int st;
        pid_t w = waitpid (-pid, &st, WNOHANG);
        if (w < 0 && errno != EINTR)
            break; /* ECHILD: none left */
        if (w == 0)
            usleep (2000);
    }
    s_running_group = 0;
    if (timed_out) {
        *status = -1;
        if (bench_interrupted)
            bench_format (err, err_size, "interrupted");
        else
            bench_format (err, err_size, "no result within %d s (killed)", timeout_s);
    } else if (strays)
        bench_format (err, err_size, "processes it forked kept running after it exited");
    return text;
}
