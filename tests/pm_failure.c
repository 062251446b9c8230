/*  pm_failure.c — failure-semantics scenarios, SPMD.

    usage: pm-failure SCENARIO BACKEND N
           pm-failure --pm-run PM_RUN SCENARIO N [PM-RUN OPTION...]

    The first form creates the manager with BACKEND and N and runs SCENARIO.
    The second form is a driver: it launches `PM_RUN -n N [options] --
    pm-failure SCENARIO pm-run N`, waits for pm-run (with a deadline), checks
    its exit status, the ranks' outcomes and that no process is left behind.

    Scenarios (every non-victim rank checks its own outcome):
      kill      rank 2 raise(SIGKILL)s while the others enter pm_allreduce →
                PM_EPEERLOST, within PM_FAILURE_MAX_MS (default 2000 ms).
      stop      rank N-1 raise(SIGSTOP)s; the others' pm_allreduce →
                PM_EPEERLOST once the heartbeat timeout passes (bound:
                PM_FAILURE_MAX_MS, default 8000 ms); rank 0 then SIGKILLs and
                SIGCONTs the stopped rank so nothing is left.
      early     (ConcurrentFutures) rank N-1's function returns after a
                barrier; the others' pm_allreduce → PM_EPEERLOST.
      mismatch  even ranks pm_barrier, odd ranks pm_bcast at the same step →
                PM_EMISMATCH on all; then pm_barrier, pm_allreduce and
                pm_bcast work again.
      gather-arrays | gatherv | scatterv | allgather
                rank 1's count differs from counts[1] → PM_EINVAL on every
                rank (gather-arrays: with the seed's message).
      join      (ranks started by hand against a pmd, with fewer processes
                than PM_SIZE) the first collective → PM_ETIMEDOUT once the
                coordinator's join timeout passes (bound: PM_FAILURE_MAX_MS,
                default 10000 ms).

    Outcomes go to files in a directory (PM_FAILURE_OUTDIR, else a fresh
    temporary one): pid-R when rank R starts, rank-R with its outcome.  The
    checking process (the parent for MultiProcessing, the caller for threads
    and Serial, the driver for pm-run) reads them and decides the exit
    status.  Ranks that are child processes get PR_SET_PDEATHSIG, so nothing
    outlives a test killed on timeout.                                        */
#include "pm.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SEED_GATHER_MSG "Gathering arrays to root cannot be done with mismatched sizes"

typedef enum {
    S_KILL,
    S_STOP,
    S_EARLY,
    S_MISMATCH,
    S_GATHER_ARRAYS,
    S_GATHERV,
    S_SCATTERV,
    S_ALLGATHER,
    S_JOIN
} scenario_t;

static const char *SCENARIOS[] = {"kill",          "stop",    "early",    "mismatch",
                                  "gather-arrays", "gatherv", "scatterv", "allgather",
                                  "join"};
#define NSCENARIOS ((int) (sizeof SCENARIOS / sizeof SCENARIOS[0]))

static scenario_t g_scenario;
static char g_outdir[512];
static long g_max_ms;

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

static int victim_of (scenario_t s, int n)
{
    switch (s) {
    case S_KILL: return n > 2 ? 2 : n - 1;
    case S_STOP: return n - 1;
    case S_EARLY: return n - 1;
    default: return -1;
    }
}

static bool expects_failed_rank (scenario_t s)
{
    return s == S_KILL || s == S_STOP;
}

/* write g_outdir/name atomically (temporary file + rename) */
static void write_file (const char *name, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static void write_file (const char *name, const char *fmt, ...)
{
    char path[700], tmp[760];
    snprintf (path, sizeof path, "%s/%s", g_outdir, name);
    snprintf (tmp, sizeof tmp, "%s/.tmp.%d.%d", g_outdir, (int) getpid (), (int) gettid ());
    FILE *f = fopen (tmp, "w");
    if (!f) {
        fprintf (stderr, "pm-failure: cannot write %s: %s\n", tmp, strerror (errno));
        return;
    }
    va_list ap;
    va_start (ap, fmt);
    vfprintf (f, fmt, ap);
    va_end (ap);
    if (fclose (f) != 0 || rename (tmp, path) != 0)
        fprintf (stderr, "pm-failure: cannot write %s: %s\n", path, strerror (errno));
}

static bool read_file (const char *name, char *buf, size_t size)
{
    char path[700];
    snprintf (path, sizeof path, "%s/%s", g_outdir, name);
    FILE *f = fopen (path, "r");
    if (!f)
        return false;
    size_t got = fread (buf, 1, size - 1, f);
    buf[got] = '\0';
    fclose (f);
    char *nl = strchr (buf, '\n');
    if (nl)
        *nl = '\0';
    return true;
}

static void outcome (int rank, bool ok, int rc, long ms, const char *fmt, ...)
    __attribute__ ((format (printf, 5, 6)));
static void outcome (int rank, bool ok, int rc, long ms, const char *fmt, ...)
{
    char note[400];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (note, sizeof note, fmt, ap);
    va_end (ap);
    char name[32];
    snprintf (name, sizeof name, "rank-%d", rank);
    write_file (name, "%s rc=%d (%s) after %ld ms: %s\n", ok ? "OK" : "FAIL", rc,
                pm_strerror (rc), ms, note);
}

static const char *last_error (pm_manager_t *pm)
{
    const char *m = pm_last_error (pm);
    return m ? m : "(null)";
}

/* ---- the scenarios ------------------------------------------------------ */

static int scenario_death (pm_manager_t *pm, int rank, int n)
{
    int victim = victim_of (g_scenario, n);
    int64_t mine = (int64_t) getpid ();
    int64_t *pids = calloc ((size_t) n, sizeof *pids);
    size_t *counts = calloc ((size_t) n, sizeof *counts);
    for (int r = 0; r < n; r++)
        counts[r] = 1;
    int rc = pm_allgather (pm, &mine, 1, PM_INT64, pids, counts);
    pid_t victim_pid = rc == PM_OK ? (pid_t) pids[victim] : -1;
    free (pids);
    free (counts);
    if (rc != PM_OK) {
        outcome (rank, false, rc, 0, "the pm_allgather of pids before the failure failed: %s",
                 last_error (pm));
        if (rank != victim)
            return 1;
    }
    if (rank == victim) {
        /* A short pause only makes it likely that the others are already
           blocked in pm_allreduce; either interleaving must give them
           PM_EPEERLOST (pending or next collective).                        */
        sleep_ms (50);
        raise (g_scenario == S_KILL ? SIGKILL : SIGSTOP);
        /* not reached for SIGKILL; after SIGSTOP rank 0 sends SIGKILL first */
        _exit (99);
    }
    long t0 = now_ms ();
    int64_t one = 1, sum = 0;
    rc = pm_allreduce (pm, &one, &sum, 1, PM_INT64, PM_SUM);
    long ms = now_ms () - t0;
    if (g_scenario == S_STOP && rank == 0 && victim_pid > 0) {
        kill (victim_pid, SIGKILL);
        kill (victim_pid, SIGCONT);
    }
    bool ok = rc == PM_EPEERLOST && ms <= g_max_ms;
    outcome (rank, ok, rc, ms, "pm_allreduce with rank %d %s: expected PM_EPEERLOST within %ld ms; last error: %s",
             victim, g_scenario == S_KILL ? "SIGKILLed" : "SIGSTOPped", g_max_ms,
             rc == PM_OK ? "-" : last_error (pm));
    return ok ? 0 : 1;
}

static int scenario_early (pm_manager_t *pm, int rank, int n)
{
    int victim = victim_of (g_scenario, n);
    int rc = pm_barrier (pm);
    if (rc != PM_OK) {
        outcome (rank, false, rc, 0, "the pm_barrier before the early return failed: %s",
                 last_error (pm));
        return 1;
    }
    if (rank == victim) {
        outcome (rank, true, 0, 0, "returned early from the rank function");
        return 0;
    }
    long t0 = now_ms ();
    int64_t one = 1, sum = 0;
    rc = pm_allreduce (pm, &one, &sum, 1, PM_INT64, PM_SUM);
    long ms = now_ms () - t0;
    bool ok = rc == PM_EPEERLOST && ms <= g_max_ms;
    outcome (rank, ok, rc, ms, "pm_allreduce after rank %d returned: expected PM_EPEERLOST within %ld ms; last error: %s",
             victim, g_max_ms, rc == PM_OK ? "-" : last_error (pm));
    return ok ? 0 : 1;
}

static int scenario_mismatch (pm_manager_t *pm, int rank, int n)
{
    int32_t buf[4] = {0, 0, 0, 0};
    if (rank == 0)
        for (int i = 0; i < 4; i++)
            buf[i] = i + 1;
    long t0 = now_ms ();
    int rc = rank % 2 == 0 ? pm_barrier (pm) : pm_bcast (pm, buf, 4, PM_INT32, 0);
    long ms = now_ms () - t0;
    if (rc != PM_EMISMATCH) {
        outcome (rank, false, rc, ms, "%s against %s: expected PM_EMISMATCH; last error: %s",
                 rank % 2 == 0 ? "pm_barrier" : "pm_bcast",
                 rank % 2 == 0 ? "pm_bcast" : "pm_barrier", rc == PM_OK ? "-" : last_error (pm));
        return 1;
    }
    char msg[200];
    snprintf (msg, sizeof msg, "%s", last_error (pm));
    rc = pm_barrier (pm);
    if (rc != PM_OK) {
        outcome (rank, false, rc, ms, "got PM_EMISMATCH, but the next pm_barrier failed: %s",
                 last_error (pm));
        return 1;
    }
    int32_t mine = rank + 1, sum = 0;
    rc = pm_allreduce (pm, &mine, &sum, 1, PM_INT32, PM_SUM);
    if (rc != PM_OK || sum != n * (n + 1) / 2) {
        outcome (rank, false, rc, ms, "after PM_EMISMATCH: pm_allreduce gave %d, expected %d (%s)",
                 (int) sum, n * (n + 1) / 2, rc == PM_OK ? "-" : last_error (pm));
        return 1;
    }
    for (int i = 0; i < 4; i++)
        buf[i] = rank == 0 ? i + 1 : -1;
    rc = pm_bcast (pm, buf, 4, PM_INT32, 0);
    if (rc != PM_OK || buf[0] != 1 || buf[1] != 2 || buf[2] != 3 || buf[3] != 4) {
        outcome (rank, false, rc, ms, "after PM_EMISMATCH: pm_bcast gave {%d,%d,%d,%d} (%s)",
                 (int) buf[0], (int) buf[1], (int) buf[2], (int) buf[3],
                 rc == PM_OK ? "-" : last_error (pm));
        return 1;
    }
    outcome (rank, true, PM_EMISMATCH, ms, "PM_EMISMATCH (\"%s\"), then barrier, allreduce and bcast worked", msg);
    return 0;
}

/* rank 1's count differs from counts[1] (counts[r] = r + 1) */
static int scenario_sizes (pm_manager_t *pm, int rank, int n)
{
    size_t *counts = calloc ((size_t) n, sizeof *counts);
    size_t total = 0;
    for (int r = 0; r < n; r++) {
        counts[r] = (size_t) r + 1;
        total += counts[r];
    }
    int32_t send[16], recv[64];
    for (int i = 0; i < 16; i++)
        send[i] = rank * 100 + i;
    memset (recv, 0, sizeof recv);
    size_t mine = counts[rank];
    const char *what = SCENARIOS[g_scenario];
    int root = n - 1;
    int rc = PM_OK;
    long t0 = now_ms ();
    switch (g_scenario) {
    case S_GATHER_ARRAYS:
        if (rank == 1)
            mine = 1; /* counts[1] says 2 */
        rc = pm_gather_arrays_to_root (pm, send, mine, PM_INT32, rank == 0 ? recv : NULL,
                                       rank == 0 ? counts : NULL);
        break;
    case S_GATHERV:
        if (rank == 1)
            mine = 3; /* counts[1] says 2 */
        rc = pm_gatherv (pm, send, mine, PM_INT32, rank == root ? recv : NULL,
                         rank == root ? counts : NULL, root);
        break;
    case S_SCATTERV:
        if (rank == 1)
            mine = 3; /* counts[1] says 2 */
        rc = pm_scatterv (pm, rank == root ? send : NULL, counts, PM_INT32, recv, mine, root);
        break;
    case S_ALLGATHER:
        if (rank == 1)
            mine = 1; /* counts[1] says 2 */
        (void) total;
        rc = pm_allgather (pm, send, mine, PM_INT32, recv, counts);
        break;
    default: break;
    }
    long ms = now_ms () - t0;
    free (counts);
    const char *msg = last_error (pm);
    bool ok = rc == PM_EINVAL;
    if (g_scenario == S_GATHER_ARRAYS)
        ok = ok && strstr (msg, SEED_GATHER_MSG) != NULL;
    outcome (rank, ok, rc, ms, "%s with a mismatched count on rank 1: expected PM_EINVAL%s; last error: \"%s\"",
             what, g_scenario == S_GATHER_ARRAYS ? " and the seed's message" : "",
             rc == PM_OK ? "-" : msg);
    return ok ? 0 : 1;
}

/* the group never completes: the first collective must fail, not hang */
static int scenario_join (pm_manager_t *pm, int rank, int n)
{
    long t0 = now_ms ();
    int rc = pm_barrier (pm);
    long ms = now_ms () - t0;
    bool ok = rc == PM_ETIMEDOUT && ms <= g_max_ms;
    outcome (rank, ok, rc, ms, "pm_barrier in a group of %d that never completes: expected PM_ETIMEDOUT within %ld ms; last error: %s",
             n, g_max_ms, rc == PM_OK ? "-" : last_error (pm));
    return ok ? 0 : 1;
}

static int rank_fn (pm_manager_t *pm, void *arg)
{
    (void) arg;
    int rank = pm_get_rank (pm);
    int n = pm_number_of_worker_processes (pm);
    char name[32];
    snprintf (name, sizeof name, "pid-%d", rank);
    write_file (name, "%d\n", (int) getpid ());
    if (n < 2) {
        outcome (rank, false, 0, 0, "group of %d rank(s); the scenario needs at least 2", n);
        return 1;
    }
    switch (g_scenario) {
    case S_KILL:
    case S_STOP: return scenario_death (pm, rank, n);
    case S_EARLY: return scenario_early (pm, rank, n);
    case S_MISMATCH: return scenario_mismatch (pm, rank, n);
    case S_JOIN: return scenario_join (pm, rank, n);
    default: return scenario_sizes (pm, rank, n);
    }
}

/* ---- checking ----------------------------------------------------------- */

static int check_outcomes (int n)
{
    int bad = 0;
    int victim = victim_of (g_scenario, n);
    for (int r = 0; r < n; r++) {
        char name[32], buf[1024];
        snprintf (name, sizeof name, "rank-%d", r);
        if (!read_file (name, buf, sizeof buf)) {
            if (r == victim && expects_failed_rank (g_scenario)) {
                printf ("pm-failure %s: rank %d: (victim)\n", SCENARIOS[g_scenario], r);
                continue;
            }
            printf ("pm-failure %s: rank %d: FAIL: no outcome reported (crashed, killed or hung?)\n",
                    SCENARIOS[g_scenario], r);
            bad++;
            continue;
        }
        printf ("pm-failure %s: rank %d: %s\n", SCENARIOS[g_scenario], r, buf);
        if (strncmp (buf, "OK ", 3) != 0)
            bad++;
    }
    fflush (stdout);
    return bad;
}

static pid_t parent_of (pid_t pid)
{
    char path[64], buf[1024];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return -1;
    size_t got = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf[got] = '\0';
    char *p = strrchr (buf, ')');
    int ppid = -1;
    if (!p || sscanf (p + 1, " %*c %d", &ppid) != 1)
        return -1;
    return (pid_t) ppid;
}

/* SIGKILL (+SIGCONT) the ranks named in pid files that are our children */
static void kill_our_children (int n)
{
    for (int r = 0; r < n; r++) {
        char name[32], buf[64];
        snprintf (name, sizeof name, "pid-%d", r);
        if (!read_file (name, buf, sizeof buf))
            continue;
        pid_t pid = (pid_t) atoi (buf);
        if (pid > 1 && pid != getpid () && parent_of (pid) == getpid ()) {
            kill (pid, SIGKILL);
            kill (pid, SIGCONT);
        }
    }
}

/* No child may be left: running or unreaped.  Reaps/kills what is left. */
static int check_no_children (const char *after, int n)
{
    int bad = 0, st;
    for (;;) {
        pid_t w = waitpid (-1, &st, WNOHANG);
        if (w == -1 && errno == ECHILD)
            break;
        if (w > 0) {
            printf ("pm-failure %s: FAIL: process %d was left unreaped after %s\n",
                    SCENARIOS[g_scenario], (int) w, after);
            bad++;
            continue;
        }
        if (w == 0) {
            printf ("pm-failure %s: FAIL: a child process is still running after %s; killing it\n",
                    SCENARIOS[g_scenario], after);
            bad++;
            kill_our_children (n);
            long deadline = now_ms () + 5000;
            while (now_ms () < deadline) {
                pid_t x = waitpid (-1, &st, WNOHANG);
                if (x == -1)
                    break;
                if (x == 0)
                    sleep_ms (10);
            }
            break;
        }
        if (w == -1 && errno != EINTR)
            break;
    }
    fflush (stdout);
    return bad;
}

static void remove_outdir (void)
{
    DIR *d = opendir (g_outdir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir (d)) != NULL) {
        if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
            continue;
        char path[800];
        snprintf (path, sizeof path, "%s/%s", g_outdir, e->d_name);
        unlink (path);
    }
    closedir (d);
    rmdir (g_outdir);
}

static bool make_outdir (void)
{
    const char *tmp = getenv ("TMPDIR");
    snprintf (g_outdir, sizeof g_outdir, "%s/pm-failure.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp (g_outdir)) {
        fprintf (stderr, "pm-failure: mkdtemp %s: %s\n", g_outdir, strerror (errno));
        return false;
    }
    return true;
}

static int parse_scenario (const char *s)
{
    for (int i = 0; i < NSCENARIOS; i++)
        if (strcmp (s, SCENARIOS[i]) == 0)
            return i;
    return -1;
}

static void set_max_ms (void)
{
    const char *e = getenv ("PM_FAILURE_MAX_MS");
    if (e && *e)
        g_max_ms = atol (e);
    else
        g_max_ms = g_scenario == S_STOP || g_scenario == S_JOIN ? 8000
                   : g_scenario == S_KILL || g_scenario == S_EARLY ? 2000
                                                                  : 20000;
}

static int usage (const char *argv0)
{
    fprintf (stderr, "usage: %s SCENARIO BACKEND N\n       %s --pm-run PM_RUN SCENARIO N [PM-RUN OPTION...]\nscenarios:",
             argv0, argv0);
    for (int i = 0; i < NSCENARIOS; i++)
        fprintf (stderr, " %s", SCENARIOS[i]);
    fprintf (stderr, "\n");
    return 2;
}

/* ---- driver: pm-run --------------------------------------------------- */

static int drive_pm_run (int argc, char **argv)
{
    if (argc < 5)
        return usage (argv[0]);
    const char *pm_run = argv[2];
    int s = parse_scenario (argv[3]);
    int n = atoi (argv[4]);
    if (s < 0 || n < 2)
        return usage (argv[0]);
    g_scenario = (scenario_t) s;
    /* orphans of pm-run are re-parented to us, so leftovers are visible */
    prctl (PR_SET_CHILD_SUBREAPER, 1);
    if (!make_outdir ())
        return 2;
    setenv ("PM_FAILURE_OUTDIR", g_outdir, 1);
    char self[PATH_MAX];
    ssize_t l = readlink ("/proc/self/exe", self, sizeof self - 1);
    if (l <= 0) {
        perror ("pm-failure: readlink /proc/self/exe");
        return 2;
    }
    self[l] = '\0';

    int extra = argc - 5;
    char **args = calloc ((size_t) extra + 12, sizeof *args);
    int k = 0;
    args[k++] = (char *) pm_run;
    args[k++] = (char *) "-n";
    args[k++] = argv[4];
    for (int i = 0; i < extra; i++)
        args[k++] = argv[5 + i];
    args[k++] = (char *) "--";
    args[k++] = self;
    args[k++] = argv[3];
    args[k++] = (char *) "pm-run";
    args[k++] = argv[4];
    args[k] = NULL;

    fflush (stdout);
    fflush (stderr);
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid < 0) {
        perror ("pm-failure: fork");
        return 2;
    }
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != parent)
            _exit (127);
        execv (pm_run, args);
        perror ("pm-failure: execv pm-run");
        _exit (127);
    }
    free (args);

    int bad = 0, st = 0;
    const char *e = getenv ("PM_FAILURE_DRIVER_TIMEOUT_MS");
    long deadline = now_ms () + (e && *e ? atol (e) : 45000);
    for (;;) {
        pid_t w = waitpid (pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            perror ("pm-failure: waitpid");
            return 2;
        }
        if (now_ms () > deadline) {
            printf ("pm-failure %s: FAIL: pm-run did not exit before the deadline; killing everything\n",
                    SCENARIOS[g_scenario]);
            bad++;
            kill (pid, SIGKILL);
            kill_our_children (n);
            waitpid (pid, &st, 0);
            break;
        }
        sleep_ms (10);
    }
    int code = WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st);
    if (expects_failed_rank (g_scenario)) {
        /* the victim is the only failing rank; it died of SIGKILL */
        if (code != 128 + SIGKILL) {
            printf ("pm-failure %s: FAIL: pm-run exited with %d, expected %d (the killed rank's 128+SIGKILL)\n",
                    SCENARIOS[g_scenario], code, 128 + SIGKILL);
            bad++;
        } else {
            printf ("pm-failure %s: pm-run exited with %d as expected\n", SCENARIOS[g_scenario], code);
        }
    } else if (code != 0) {
        printf ("pm-failure %s: FAIL: pm-run exited with %d, expected 0\n", SCENARIOS[g_scenario], code);
        bad++;
    }
    bad += check_outcomes (n);
    bad += check_no_children ("pm-run exited", n);
    remove_outdir ();
    printf ("pm-failure %s under pm-run -n %d: %s\n", SCENARIOS[g_scenario], n, bad ? "FAIL" : "PASS");
    return bad ? 1 : 0;
}

/* ---- SPMD --------------------------------------------------------------- */

int main (int argc, char **argv)
{
    setvbuf (stdout, NULL, _IOLBF, 0);
    if (argc >= 2 && strcmp (argv[1], "--pm-run") == 0)
        return drive_pm_run (argc, argv);
    if (argc != 4)
        return usage (argv[0]);
    int s = parse_scenario (argv[1]);
    if (s < 0)
        return usage (argv[0]);
    g_scenario = (scenario_t) s;
    const char *backend = argv[2];
    int n = atoi (argv[3]);
    set_max_ms ();

    bool launched = getenv ("PM_RANK") != NULL;
    bool own_outdir = false;
    const char *od = getenv ("PM_FAILURE_OUTDIR");
    if (od && *od) {
        snprintf (g_outdir, sizeof g_outdir, "%s", od);
    } else {
        if (!make_outdir ())
            return 2;
        own_outdir = true;
    }

    pid_t parent = getpid ();
    fflush (stdout);
    fflush (stderr);
    pm_manager_t *pm = pm_create_parallel_manager (backend, n, NULL);
    if (!pm) {
        printf ("pm-failure %s: FAIL: pm_create_parallel_manager (\"%s\", %d) returned NULL: %d (%s): %s\n",
                SCENARIOS[g_scenario], backend, n, pm_last_error_code (NULL),
                pm_strerror (pm_last_error_code (NULL)), last_error (NULL));
        if (own_outdir)
            remove_outdir ();
        return 2;
    }
    bool child = getpid () != parent;
    if (child || launched) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (child && getppid () != parent)
            _exit (3);
    }
    int rc = pm_run (pm, rank_fn, NULL);
    int size = pm_number_of_worker_processes (pm);
    bool forked = !child && !launched && strcasecmp (pm_backend_name (pm), "MultiProcessing") == 0;
    int rank = pm_get_rank (pm);
    pm_destroy (&pm);
    if (child)
        return rc ? 1 : 0;
    if (launched) {
        if (own_outdir) {
            /* started by hand, not by the driver: report this rank alone */
            char name[32], buf[1024];
            snprintf (name, sizeof name, "rank-%d", rank);
            if (read_file (name, buf, sizeof buf))
                printf ("pm-failure %s: rank %d: %s\n", SCENARIOS[g_scenario], rank, buf);
            else
                printf ("pm-failure %s: rank %d: FAIL: no outcome\n", SCENARIOS[g_scenario], rank);
            remove_outdir ();
        }
        return rc ? 1 : 0;
    }

    /* the checking process: MultiProcessing parent, threads, serial */
    int bad = check_outcomes (size);
    if (forked)
        bad += check_no_children ("pm_destroy in the parent", size);
    if (own_outdir)
        remove_outdir ();
    printf ("pm-failure %s on %s %d: %s\n", SCENARIOS[g_scenario], backend, n, bad ? "FAIL" : "PASS");
    return bad ? 1 : 0;
}
