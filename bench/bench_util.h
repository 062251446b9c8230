/*  bench_util.h — what the benchmarks in bench/ share: a monotonic clock,
    one-line result output for child processes, and the driver side that
    re-executes a configuration in a fresh process (so that no ZeroMQ
    context ever crosses a fork), reads its stdout from a pipe and kills its
    process group at a deadline or on SIGINT/SIGTERM/SIGHUP.

    Only libc: the driver never touches ZeroMQ or libpm.                  */
#ifndef PM_BENCH_UTIL_H_INCLUDED
#define PM_BENCH_UTIL_H_INCLUDED

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns (void);

/* snprintf that truncates quietly (all our texts are for people). */
void bench_format (char *dst, size_t size, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

/* One line to stdout with a single write(2), so lines of concurrent ranks
   sharing the pipe never interleave (lines stay far below PIPE_BUF).       */
void bench_emit (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

/* Decimal text in [min, max] to *value; false (value untouched) otherwise. */
bool bench_parse_long (const char *text, long min, long max, long *value);

/* Waits for pid up to timeout_ms and SIGKILLs it after.  The wait status,
   or -1 when it had to be killed.                                         */
int bench_reap (pid_t pid, int timeout_ms);

/* A private directory $TMPDIR/pm-bench-XXXXXX; "" on failure. */
void bench_make_temp_dir (char *dir, size_t size);
/* Removes path and what it holds, `depth` directory levels deep. */
void bench_remove_tree (const char *path, int depth);

/* The next line of text at *cursor into buf (truncated to size - 1),
   advancing *cursor; false at the end.                                     */
bool bench_next_line (const char **cursor, char *buf, size_t size);

/* "exited with status 3", "killed by signal 9 (Killed)", ... */
void bench_describe_status (int status, char *buf, size_t size);

/* "  running <text>" on stderr when it is a terminal; bench_progress_clear
   erases it.                                                               */
void bench_progress (const char *format, ...) __attribute__ ((format (printf, 1, 2)));
void bench_progress_clear (void);

/* ---- the driver --------------------------------------------------------- */

/* CPU time of the whole machine (/proc/stat) and of this process and its
   reaped descendants (getrusage), to tell how much of a configuration's
   time other processes took: a benchmark on a shared machine can then say
   which numbers were disturbed.                                           */
typedef struct {
    uint64_t wall_ns;
    double machine_s; /* busy CPU seconds, all CPUs (steal counted as busy); <0 unknown */
    double ours_s;    /* user + system seconds of this process and its reaped children */
} bench_cpu_t;
void bench_cpu_sample (bench_cpu_t *sample);
/* Average number of CPUs kept busy by others between two samples (1.0 =
   one whole CPU), or -1 when /proc/stat cannot be read.  Take `after`
   once the configuration's processes have all been reaped.                */
double bench_cpu_others (const bench_cpu_t *before, const bench_cpu_t *after);

/* The signal that interrupted the run (SIGINT, SIGTERM, SIGHUP), 0 if none. */
extern volatile sig_atomic_t bench_interrupted;

/* Sets up the driving process: PM_ENDPOINT/PM_GROUP/PM_RANK/PM_SIZE unset
   (the children measure the embedded coordinator whatever the shell says),
   child subreaper (ranks orphaned by a kill are reaped, no zombies), and
   handlers for SIGINT/SIGTERM/SIGHUP that kill the running configuration
   and set bench_interrupted.  Then a private run directory becomes TMPDIR
   (libpm's ipc sockets go there; a TMPDIR longer than 40 characters is not
   used, ipc paths must fit in sun_path).  run_dir gets its path; false
   with the reason on stderr when it cannot be made.                      */
bool bench_driver_setup (const char *program, char *run_dir, size_t run_dir_size);

/* This binary's path (readlink /proc/self/exe); false on failure. */
bool bench_self_path (char *buf, size_t size);

/* Runs path (searched on PATH when it holds no '/') with args in a process
   group of its own, stdout on a pipe, up to timeout_s seconds.  Returns its
   stdout (malloc'd, NUL-terminated, at most 1 MiB kept; NULL if it could not
   start) and sets *status to the wait status, or -1 when it was killed at
   the deadline, interrupted or could not start; err then says why (also
   when processes forked by it kept the pipe open after it exited).  stderr
   is inherited.                                                           */
char *bench_run_child (const char *path, char *const args[], int timeout_s, int *status, char *err,
                       size_t err_size);

/* Like bench_run_child, for a process the caller manages (a daemon):
   posix_spawn in its own process group, stdout and stderr inherited.
   The pid, or -1 with the reason in err.                                  */
pid_t bench_spawn (const char *path, char *const args[], char *err, size_t err_size);

#endif
