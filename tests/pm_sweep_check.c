/*  pm_sweep_check.c — sweep tests: pm_scatter / pm_gather, the static and
    dynamic schedules, lost ranks, bad calls and model plugins.  SPMD.

    usage: pm-sweep-check SCENARIO BACKEND N
           pm-sweep-check --pm-run PM_RUN SCENARIO N [PM-RUN OPTION...]

    The first form creates the manager with BACKEND and N and runs SCENARIO.
    The second is a driver: it launches `PM_RUN -n N [options] --
    pm-sweep-check SCENARIO pm-run N`, waits for pm-run (with a deadline),
    checks its exit status, every rank's outcome and that no process is
    left behind (as tests/pm_failure.c does).

    Scenarios:
      static   pm_set_schedule (STATIC) on the manager pm_create_parallel_manager
               returned (the launcher for ConcurrentFutures), then sweeps of
               0, 1, n-1, n, n+1, 2n, 3n+2, 37 and 100 rows (3 columns) and of
               1 and 2 columns: root gets exactly n entries in rank order,
               rank r holding numpy.array_split's rows; the others get theirs.
      dynamic  the default schedule (dynamic wherever a coordinator exists),
               the same kind of sweeps plus a slow one (rows take 2 ms), then
               a static sweep and dynamic ones again on the same manager:
               root's entries are maximal runs of consecutive rows of one
               rank, every row exactly once, in sample order.
      kill     (process backends, N >= 3) dynamic sweep of 90 rows of 3 ms;
               rank 2's execute raise(SIGKILL)s on its 3rd row.  Root's
               pm_gather returns 0 with every row once and right, lost count
               1, lost rank 2; the survivors' own results are right; no
               process is left behind.
      errors   pm_gather before pm_scatter, bad arguments, a model that
               cannot be built on rank N-1 (static: PM_EINVAL everywhere),
               NULL parameters at root (static: PM_EINVAL everywhere;
               dynamic: at root, nobody hangs), then good sweeps again.
      plugin   pm_model_load: by path, "path:toy_", missing file, missing
               symbol, ABI version 2; pm_model_set_arg values reach build;
               sweeps with the loaded models.

    Every sweep's results are checked row by row against the model's formula
    (outputs bitwise, failed rows NaN with success 0, parameters echoed),
    every rank's executed rows are gathered to root to check that each row
    was evaluated once and credited to the rank that did it, and root prints
    an FNV-1a checksum of its results (sample_index, parameters, outputs,
    success in sample order).  The checksum must equal the one of the
    formula and, when this process is not a launched rank, the one of the
    same sweeps run first on a Serial manager in this process (a Serial
    manager has no ZeroMQ context, so it is safe before MultiProcessing
    forks).  So results are bitwise the same on every backend.

    Outcomes go to files in a directory (PM_SWEEP_CHECK_OUTDIR, else a fresh
    temporary one): rank-R with the rank's outcome.  The checking process
    (the parent for MultiProcessing, the caller for threads and Serial, the
    driver for pm-run) reads them.  A watchdog (alarm, PM_SWEEP_CHECK_MAX_S,
    default 45 s) turns a hang into a failure naming each rank's step.   */
#include "pm.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PLUGIN_DEFAULT
#define PLUGIN_DEFAULT "libpm_sweep_check_plugin.so"
#endif
#ifndef PLUGIN_TOY
#define PLUGIN_TOY "libpm_sweep_check_plugin_toy.so"
#endif
#ifndef PLUGIN_ABI2
#define PLUGIN_ABI2 "libpm_sweep_check_plugin_abi2.so"
#endif
#ifndef PLUGIN_NODESTROY
#define PLUGIN_NODESTROY "libpm_sweep_check_plugin_nodestroy.so"
#endif

#define NOUT 2
#define MAX_RANKS 64
#define MAX_PLAN 32
#define KILL_VICTIM 2
#define KILL_AFTER 2

typedef enum { S_STATIC, S_DYNAMIC, S_KILL, S_ERRORS, S_PLUGIN } scenario_t;
static const char *SCENARIOS[] = {"static", "dynamic", "kill", "errors", "plugin"};
#define NSCENARIOS ((int) (sizeof SCENARIOS / sizeof SCENARIOS[0]))

static scenario_t g_scenario;
static char g_outdir[512];
static const char *g_backend;
static int g_n;

/* ---- small helpers ------------------------------------------------------ */

static long now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_us (long us)
{
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000L};
    while (nanosleep (&ts, &ts) != 0 && errno == EINTR)
        ;
}

static const char *last_error (pm_manager_t *pm)
{
    const char *m = pm_last_error (pm);
    return m ? m : "(null)";
}

/* what each rank is doing, for the watchdog */
static const char *volatile g_step[MAX_RANKS];
static volatile int g_watch_ranks = 1;
static int g_max_s = 45;

static void set_step (int rank, const char *step)
{
    if (rank >= 0 && rank < MAX_RANKS)
        g_step[rank] = step;
}

static void put (const char *s)
{
    ssize_t w = write (2, s, strlen (s));
    (void) w;
}

static void on_alarm (int sig)
{
    (void) sig;
    put ("pm-sweep-check: FAIL: watchdog: still running after PM_SWEEP_CHECK_MAX_S seconds (hang?)\n");
    for (int r = 0; r < g_watch_ranks && r < MAX_RANKS; r++) {
        const char *s = g_step[r];
        if (!s)
            continue;
        char num[16];
        int k = 0, v = r;
        char rev[16];
        do {
            rev[k++] = (char) ('0' + v % 10);
            v /= 10;
        } while (v && k < 15);
        int j = 0;
        while (k)
            num[j++] = rev[--k];
        num[j] = '\0';
        put ("pm-sweep-check:   rank ");
        put (num);
        put (" was in: ");
        put (s);
        put ("\n");
    }
    _exit (124);
}

static void arm_watchdog (void)
{
    signal (SIGALRM, on_alarm);
    alarm ((unsigned) g_max_s);
}

/* ---- outcome files (as in pm_failure.c) ---------------------------------- */

static void write_file (const char *name, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static void write_file (const char *name, const char *fmt, ...)
{
    char path[700], tmp[760];
    snprintf (path, sizeof path, "%s/%s", g_outdir, name);
    snprintf (tmp, sizeof tmp, "%s/.tmp.%d.%d", g_outdir, (int) getpid (), (int) gettid ());
    FILE *f = fopen (tmp, "w");
    if (!f) {
        fprintf (stderr, "pm-sweep-check: cannot write %s: %s\n", tmp, strerror (errno));
        return;
    }
    va_list ap;
    va_start (ap, fmt);
    vfprintf (f, fmt, ap);
    va_end (ap);
    if (fclose (f) != 0 || rename (tmp, path) != 0)
        fprintf (stderr, "pm-sweep-check: cannot write %s: %s\n", path, strerror (errno));
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

static bool file_exists (const char *name)
{
    char path[700];
    snprintf (path, sizeof path, "%s/%s", g_outdir, name);
    return access (path, F_OK) == 0;
}

/* ---- a rank's checking context ------------------------------------------- */

typedef struct {
    int rank, n;
    bool serial;           /* the Serial backend: always the static layout */
    pm_schedule_t sched;   /* schedule of the next pm_scatter, as this rank set it */
    int fails;
    int sweeps;
    char first[700];
} ctx_t;

static void fail (ctx_t *c, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static void fail (ctx_t *c, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (msg, sizeof msg, fmt, ap);
    va_end (ap);
    c->fails++;
    if (c->fails <= 25)
        printf ("pm-sweep-check %s: rank %d: FAIL: %s\n", SCENARIOS[g_scenario], c->rank, msg);
    if (c->fails == 1)
        snprintf (c->first, sizeof c->first, "%s", msg);
}

#define CHECK(c, cond, ...)        \
    do {                           \
        if (!(cond))               \
            fail ((c), __VA_ARGS__); \
    } while (0)

static void report (ctx_t *c, const char *summary)
{
    char name[32];
    snprintf (name, sizeof name, "rank-%d", c->rank);
    if (c->fails)
        write_file (name, "FAIL %d check(s) failed, the first: %s\n", c->fails, c->first);
    else
        write_file (name, "OK %s\n", summary);
}

/* ---- the model: a formula of the parameters ------------------------------ */

/* Row i, column j.  Column 0 is the row number itself, so the model knows
   which row it is evaluating.                                            */
static double param (size_t i, size_t j)
{
    if (j == 0)
        return (double) i;
    return (double) i * 0.001 * (double) (j + 1) + 1.0 / (double) (i + j + 3);
}

static bool row_fails (const double *p)
{
    return ((long) p[0]) % 7 == 3;
}

/* One compiled copy, so the expected values are computed exactly as the
   model computes them.                                                  */
__attribute__ ((noinline)) static void formula (const double *p, size_t np, double *out)
{
    double s = 0;
    for (size_t j = 0; j < np; j++)
        s += p[j] * (double) (j + 1);
    double q = np > 1 ? p[1] : p[0];
    out[0] = s;
    out[1] = sin (0.37 * p[0]) * cos (p[np - 1]) + sqrt (fabs (s)) / (1.0 + q * q);
}

static const char *const OUT_NAMES[NOUT] = {"weighted_sum", "trig"};

/* Per rank (thread-local: ConcurrentFutures ranks share the process). */
static _Thread_local int t_rank = -1;
static _Thread_local long t_builds, t_destroys, t_execs, t_bad_shape;
static _Thread_local size_t t_cols;
static _Thread_local int64_t *t_done; /* p[0] of every row executed, in order */
static _Thread_local size_t t_ndone, t_done_cap;

static void reset_model_counters (size_t cols)
{
    t_builds = t_destroys = t_bad_shape = 0;
    t_ndone = 0;
    t_cols = cols;
}

typedef struct {
    long sleep_us;
    int kill_rank;
    long kill_after;
} model_state_t;

static void *m_build (const pm_model_args_t *args, char *err, size_t err_size)
{
    t_builds++;
    int fail_rank = atoi (pm_model_arg (args, "fail_on_rank", "-1"));
    if (fail_rank == t_rank) {
        snprintf (err, err_size, "deliberate build failure on rank %d", t_rank);
        return NULL;
    }
    model_state_t *s = calloc (1, sizeof *s);
    if (!s) {
        snprintf (err, err_size, "out of memory");
        return NULL;
    }
    s->sleep_us = atol (pm_model_arg (args, "sleep_us", "0"));
    s->kill_rank = atoi (pm_model_arg (args, "kill_rank", "-1"));
    s->kill_after = atol (pm_model_arg (args, "kill_after", "0"));
    if (s->kill_rank >= 0) {
        /* The victim must take part: the others start once it has built. */
        if (t_rank == s->kill_rank) {
            write_file ("victim-built", "%d\n", (int) getpid ());
        } else {
            long deadline = now_ms () + 15000;
            while (!file_exists ("victim-built") && now_ms () < deadline)
                sleep_us (2000);
            if (!file_exists ("victim-built")) {
                snprintf (err, err_size, "rank %d never built the model within 15 s",
                          s->kill_rank);
                free (s);
                return NULL;
            }
        }
    }
    return s;
}

static size_t m_output_names (void *state, const char *const **names)
{
    (void) state;
    *names = OUT_NAMES;
    return NOUT;
}

static int m_execute (void *state, const double *p, size_t np, double *out, size_t no)
{
    model_state_t *s = state;
    t_execs++;
    if (np != t_cols || np < 1 || no != NOUT) {
        t_bad_shape++;
        return 2;
    }
    if (t_rank == s->kill_rank && t_execs > s->kill_after)
        raise (SIGKILL);
    if (s->sleep_us > 0)
        sleep_us (s->sleep_us);
    if (t_ndone == t_done_cap) {
        size_t cap = t_done_cap ? 2 * t_done_cap : 64;
        int64_t *grown = realloc (t_done, cap * sizeof *grown);
        if (!grown)
            abort ();
        t_done = grown;
        t_done_cap = cap;
    }
    t_done[t_ndone++] = (int64_t) p[0];
    out[0] = out[1] = 12345.0; /* garbage the library must replace by NaN */
    if (row_fails (p))
        return 1;
    formula (p, np, out);
    return 0;
}

static void m_destroy (void *state)
{
    t_destroys++;
    free (state);
}

static pm_model_t *new_model (void)
{
    return pm_model_new (m_build, m_output_names, m_execute, m_destroy);
}

static double *make_params (size_t rows, size_t cols)
{
    double *p = malloc ((rows * cols + 1) * sizeof *p);
    if (!p)
        abort ();
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++)
            p[i * cols + j] = param (i, j);
    return p;
}

/* ---- checksums ------------------------------------------------------------ */

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t fnv (uint64_t h, const void *data, size_t len)
{
    const unsigned char *b = data;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= FNV_PRIME;
    }
    return h;
}

static uint64_t fnv_row (uint64_t h, size_t index, const double *params, size_t cols,
                         const double *outputs, size_t noutputs, unsigned char success)
{
    uint64_t index64 = index;
    h = fnv (h, &index64, sizeof index64);
    h = fnv (h, params, cols * sizeof *params);
    h = fnv (h, outputs, noutputs * sizeof *outputs);
    return fnv (h, &success, 1);
}

/* What every row should be, from the formula. */
static void expected_row (size_t i, size_t cols, double *params, double *outputs,
                          unsigned char *success)
{
    for (size_t j = 0; j < cols; j++)
        params[j] = param (i, j);
    if (row_fails (params)) {
        outputs[0] = outputs[1] = NAN;
        *success = 0;
    } else {
        formula (params, cols, outputs);
        *success = 1;
    }
}

static uint64_t formula_checksum (size_t rows, size_t cols)
{
    uint64_t h = FNV_OFFSET;
    double *p = malloc ((cols + 1) * sizeof *p), out[NOUT];
    for (size_t i = 0; i < rows; i++) {
        unsigned char ok;
        expected_row (i, cols, p, out, &ok);
        h = fnv_row (h, i, p, cols, out, NOUT, ok);
    }
    free (p);
    return h;
}

/* Checksum of root's results in entry order. */
static uint64_t results_checksum (const pm_results_t *res)
{
    uint64_t h = FNV_OFFSET;
    for (size_t e = 0; e < pm_results_count (res); e++) {
        const pm_local_results_t *l = pm_results_get (res, e);
        for (size_t k = 0; l && k < l->rows; k++)
            h = fnv_row (h, l->sample_index[k], l->parameters + k * l->cols, l->cols,
                         l->outputs + k * l->noutputs, l->noutputs, l->success[k]);
    }
    return h;
}

/* ---- the plan: which sweeps a scenario runs -------------------------------- */

typedef struct {
    size_t rows, cols;
    long sleep_us;        /* per row */
    int schedule;         /* -1: leave as is; else pm_set_schedule before it */
} sweep_spec_t;

static int g_nplan;
static sweep_spec_t g_plan[MAX_PLAN];
static uint64_t g_formula_sum[MAX_PLAN];
static uint64_t g_serial_sum[MAX_PLAN];
static bool g_have_serial;
static bool g_nonroot_cols; /* PM_SWEEP_CHECK_NONROOT_COLS=1: see run_sweep */

/* What a non-root rank passes as cols to pm_scatter: 0 (ignored). */
static size_t nonroot_cols (size_t cols)
{
    return g_nonroot_cols ? cols : 0;
}

static void plan_add (size_t rows, size_t cols, long sleep, int schedule)
{
    if (g_nplan < MAX_PLAN)
        g_plan[g_nplan++] = (sweep_spec_t){rows, cols, sleep, schedule};
}

static void make_plan (int n)
{
    size_t un = (size_t) n;
    g_nplan = 0;
    switch (g_scenario) {
    case S_STATIC:
        plan_add (0, 3, 0, -1);
        plan_add (1, 3, 0, -1);
        plan_add (un > 1 ? un - 1 : 2, 3, 0, -1); /* rows < n */
        plan_add (un, 3, 0, -1);
        plan_add (un + 1, 3, 0, -1);
        plan_add (2 * un, 3, 0, -1); /* rows % n == 0 */
        plan_add (3 * un + 2, 3, 0, -1);
        plan_add (37, 3, 0, -1);
        plan_add (100, 3, 0, -1);
        plan_add (5, 1, 0, -1);
        plan_add (9, 2, 0, -1);
        break;
    case S_DYNAMIC:
        plan_add (0, 3, 0, -1);
        plan_add (1, 3, 0, -1);
        plan_add (un > 1 ? un - 1 : 2, 3, 0, -1);
        plan_add (un, 3, 0, -1);
        plan_add (3 * un + 2, 3, 0, -1);
        plan_add (100, 3, 0, -1);
        plan_add (30, 3, 2000, -1); /* slow rows: work spreads over ranks */
        plan_add (2 * un + 1, 3, 0, PM_SCHEDULE_STATIC);
        plan_add (17, 3, 0, PM_SCHEDULE_DYNAMIC);
        plan_add (5, 1, 0, -1);
        plan_add (9, 2, 0, -1);
        break;
    case S_KILL:
        plan_add (90, 3, 3000, -1);
        break;
    case S_ERRORS: /* the good sweeps between the bad calls */
        plan_add (2 * un + 1, 3, 0, -1);
        plan_add (23, 3, 0, PM_SCHEDULE_DYNAMIC);
        plan_add (23, 3, 0, PM_SCHEDULE_DYNAMIC);
        break;
    default: break;
    }
    for (int k = 0; k < g_nplan; k++)
        g_formula_sum[k] = formula_checksum (g_plan[k].rows, g_plan[k].cols);
}

/* The plan's sweeps on a Serial manager in this process; false on failure. */
static bool serial_reference (void)
{
    pm_manager_t *pm = pm_create_parallel_manager ("Serial", 1, NULL);
    if (!pm) {
        printf ("pm-sweep-check: FAIL: Serial reference: pm_create_parallel_manager returned NULL: %s\n",
                last_error (NULL));
        return false;
    }
    bool ok = strcmp (pm_backend_name (pm), "Serial") == 0;
    if (!ok)
        printf ("pm-sweep-check: FAIL: Serial reference: backend is %s\n", pm_backend_name (pm));
    pm_model_t *model = new_model ();
    t_rank = 0;
    for (int k = 0; ok && k < g_nplan; k++) {
        double *params = make_params (g_plan[k].rows, g_plan[k].cols);
        reset_model_counters (g_plan[k].cols);
        int rc = pm_scatter (pm, model, params, g_plan[k].rows, g_plan[k].cols);
        pm_results_t *res = NULL;
        if (rc == 0)
            rc = pm_gather (pm, &res);
        if (rc != 0) {
            printf ("pm-sweep-check: FAIL: Serial reference sweep %d: %d (%s): %s\n", k, rc,
                    pm_strerror (rc), last_error (pm));
            ok = false;
        } else {
            g_serial_sum[k] = results_checksum (res);
            if (g_serial_sum[k] != g_formula_sum[k]) {
                printf ("pm-sweep-check: FAIL: Serial reference sweep %d (%zu rows x %zu): checksum %016llx, the formula's %016llx\n",
                        k, g_plan[k].rows, g_plan[k].cols, (unsigned long long) g_serial_sum[k],
                        (unsigned long long) g_formula_sum[k]);
                ok = false;
            }
        }
        pm_results_destroy (&res);
        free (params);
    }
    t_rank = -1;
    free (t_done);
    t_done = NULL;
    t_ndone = t_done_cap = 0;
    pm_model_destroy (&model);
    pm_destroy (&pm);
    return ok;
}

/* ---- checking results ------------------------------------------------------ */

static void split (size_t rows, int n, int r, size_t *first, size_t *count)
{
    size_t base = rows / (size_t) n, extra = rows % (size_t) n, ur = (size_t) r;
    *count = base + (ur < extra ? 1 : 0);
    *first = ur * base + (ur < extra ? ur : extra);
}

/* One row of an entry against the formula. */
static void check_row (ctx_t *c, const char *what, size_t i, size_t cols, const double *params,
                       const double *outputs, unsigned char success)
{
    double ep[8], eo[NOUT];
    unsigned char eok;
    if (cols > 8) {
        fail (c, "%s: row %zu has %zu columns", what, i, cols);
        return;
    }
    expected_row (i, cols, ep, eo, &eok);
    if (memcmp (ep, params, cols * sizeof *ep) != 0)
        fail (c, "%s: row %zu: parameters not echoed (p[0] = %.17g, expected %.17g)", what, i,
              params[0], ep[0]);
    if (success != eok)
        fail (c, "%s: row %zu: success %d, expected %d", what, i, success, eok);
    for (int k = 0; k < NOUT; k++) {
        if (!eok) {
            if (!isnan (outputs[k]))
                fail (c, "%s: row %zu failed in execute, but output %d is %.17g, expected NaN",
                      what, i, k, outputs[k]);
        } else if (memcmp (&eo[k], &outputs[k], sizeof eo[k]) != 0) {
            fail (c, "%s: row %zu: output %d is %.17g, expected %.17g (bitwise)", what, i, k,
                  outputs[k], eo[k]);
        }
    }
}

static void check_names (ctx_t *c, const char *what, const pm_results_t *res)
{
    CHECK (c, pm_results_output_count (res) == NOUT, "%s: pm_results_output_count %zu, expected %d",
           what, pm_results_output_count (res), NOUT);
    for (size_t k = 0; k < NOUT; k++) {
        const char *name = pm_results_output_name (res, k);
        CHECK (c, name && strcmp (name, OUT_NAMES[k]) == 0, "%s: output %zu is named '%s', expected '%s'",
               what, k, name ? name : "(null)", OUT_NAMES[k]);
    }
    CHECK (c, pm_results_output_name (res, NOUT) == NULL, "%s: pm_results_output_name past the end is not NULL", what);
}

/* Root: every row once, in sample order, laid out as the schedule says. */
static uint64_t check_root (ctx_t *c, const char *what, const pm_results_t *res, size_t rows,
                            size_t cols, bool static_layout, const int *owner)
{
    size_t count = pm_results_count (res);
    if (static_layout)
        CHECK (c, count == (size_t) c->n, "%s: root got %zu entries, expected exactly %d (one per rank, empty ones included)",
               what, count, c->n);
    CHECK (c, pm_results_rows (res) == rows, "%s: pm_results_rows %zu, expected %zu", what,
           pm_results_rows (res), rows);
    CHECK (c, pm_results_get (res, count) == NULL, "%s: pm_results_get past the end is not NULL", what);
    size_t next = 0;
    int prev_rank = -1;
    for (size_t e = 0; e < count; e++) {
        const pm_local_results_t *l = pm_results_get (res, e);
        if (!l) {
            fail (c, "%s: pm_results_get (%zu) is NULL", what, e);
            continue;
        }
        if (l->process_number < 0 || l->process_number >= c->n)
            fail (c, "%s: entry %zu has process_number %d", what, e, l->process_number);
        CHECK (c, l->cols == cols && l->noutputs == NOUT, "%s: entry %zu is %zu x %zu/%zu, expected cols %zu and %d outputs",
               what, e, l->rows, l->cols, l->noutputs, cols, NOUT);
        if (l->cols != cols || l->noutputs != NOUT)
            continue;
        if (static_layout) {
            size_t first, mine;
            split (rows, c->n, (int) e, &first, &mine);
            CHECK (c, l->process_number == (int) e, "%s: entry %zu has process_number %d, expected %zu (rank order)",
                   what, e, l->process_number, e);
            CHECK (c, l->rows == mine, "%s: entry %zu (rank %d) has %zu rows, numpy.array_split gives %zu",
                   what, e, l->process_number, l->rows, mine);
        } else {
            CHECK (c, l->rows > 0, "%s: entry %zu (rank %d) is empty; dynamic entries are runs of rows",
                   what, e, l->process_number);
            CHECK (c, l->process_number != prev_rank, "%s: entries %zu and %zu are both rank %d's: not maximal runs",
                   what, e - 1, e, l->process_number);
        }
        prev_rank = l->process_number;
        for (size_t k = 0; k < l->rows; k++, next++) {
            size_t i = l->sample_index[k];
            if (i != next) {
                fail (c, "%s: entry %zu row %zu has sample_index %zu, expected %zu (sample order)",
                      what, e, k, i, next);
                if (i >= rows)
                    continue;
            }
            if (owner && owner[i] != l->process_number)
                fail (c, "%s: row %zu is credited to rank %d, but rank %d evaluated it", what, i,
                      l->process_number, owner[i]);
            check_row (c, what, i, cols, l->parameters + k * cols, l->outputs + k * NOUT,
                       l->success[k]);
        }
    }
    CHECK (c, next == rows, "%s: root's entries hold %zu rows, expected %zu", what, next, rows);
    return results_checksum (res);
}

/* Non-root: one entry, this rank's rows as it evaluated them. */
static void check_own (ctx_t *c, const char *what, const pm_results_t *res, size_t rows,
                       size_t cols, bool static_layout)
{
    size_t count = pm_results_count (res);
    CHECK (c, count == 1, "%s: rank %d got %zu entries, expected 1 (its own)", what, c->rank, count);
    const pm_local_results_t *l = pm_results_get (res, 0);
    if (!l)
        return;
    CHECK (c, l->process_number == c->rank, "%s: own entry has process_number %d", what,
           l->process_number);
    /* A rank that got no chunk of a dynamic sweep never learnt its width:
       its empty entry's cols is not checked.                            */
    bool width_known = static_layout || l->rows > 0;
    CHECK (c, (l->cols == cols || !width_known) && l->noutputs == NOUT,
           "%s: own entry is %zu x %zu/%zu, expected cols %zu and %d outputs", what, l->rows,
           l->cols, l->noutputs, cols, NOUT);
    CHECK (c, l->rows == t_ndone, "%s: own entry has %zu rows, this rank's model evaluated %zu",
           what, l->rows, t_ndone);
    if (static_layout) {
        size_t first, mine;
        split (rows, c->n, c->rank, &first, &mine);
        CHECK (c, l->rows == mine, "%s: own entry has %zu rows, numpy.array_split gives %zu", what,
               l->rows, mine);
        for (size_t k = 0; k < t_ndone; k++)
            CHECK (c, t_done[k] == (int64_t) (first + k), "%s: the model evaluated row %lld as its %zu-th, expected row %zu",
                   what, (long long) t_done[k], k, first + k);
    }
    if ((l->cols != cols && l->rows > 0) || l->noutputs != NOUT)
        return;
    for (size_t k = 0; k < l->rows; k++) {
        size_t i = l->sample_index[k];
        if (k < t_ndone && (int64_t) i != t_done[k])
            fail (c, "%s: own row %zu has sample_index %zu, the model evaluated row %lld", what,
                  k, i, (long long) t_done[k]);
        if (i >= rows) {
            fail (c, "%s: own row %zu has sample_index %zu >= %zu", what, k, i, rows);
            continue;
        }
        check_row (c, what, i, cols, l->parameters + k * cols, l->outputs + k * NOUT,
                   l->success[k]);
    }
}

/* Collective: root learns which rank evaluated each row (every row exactly
   once).  Returns owner[rows] on root (free it), NULL elsewhere.        */
static int *gather_owners (ctx_t *c, pm_manager_t *pm, const char *what, size_t rows, bool *ok)
{
    int n = c->n;
    bool root = c->rank == 0;
    int64_t mine = (int64_t) t_ndone;
    int64_t *cnt = calloc ((size_t) n, sizeof *cnt);
    size_t *ones = calloc ((size_t) n, sizeof *ones), *counts = calloc ((size_t) n, sizeof *counts);
    for (int r = 0; r < n; r++)
        ones[r] = 1;
    *ok = false;
    int *owner = NULL;
    int rc = pm_allgather (pm, &mine, 1, PM_INT64, cnt, ones);
    if (rc != 0) {
        fail (c, "%s: pm_allgather of row counts: %d (%s): %s", what, rc, pm_strerror (rc),
              last_error (pm));
        goto out;
    }
    size_t total = 0;
    for (int r = 0; r < n; r++) {
        counts[r] = (size_t) cnt[r];
        total += counts[r];
    }
    int64_t *all = root ? malloc ((total + 1) * sizeof *all) : NULL;
    int64_t dummy = 0;
    rc = pm_gather_arrays_to_root (pm, t_ndone ? (const void *) t_done : &dummy, t_ndone,
                                   PM_INT64, all, root ? counts : NULL);
    if (rc != 0) {
        fail (c, "%s: pm_gather_arrays_to_root of evaluated rows: %d (%s): %s", what, rc,
              pm_strerror (rc), last_error (pm));
        free (all);
        goto out;
    }
    *ok = true;
    if (root) {
        owner = malloc ((rows + 1) * sizeof *owner);
        for (size_t i = 0; i < rows; i++)
            owner[i] = -1;
        size_t at = 0;
        for (int r = 0; r < n; r++)
            for (size_t k = 0; k < counts[r]; k++, at++) {
                int64_t i = all[at];
                if (i < 0 || (size_t) i >= rows)
                    fail (c, "%s: rank %d evaluated row %lld of a %zu-row sweep", what, r,
                          (long long) i, rows);
                else if (owner[i] != -1)
                    fail (c, "%s: row %lld was evaluated twice, by ranks %d and %d", what,
                          (long long) i, owner[i], r);
                else
                    owner[i] = r;
            }
        for (size_t i = 0; i < rows; i++)
            CHECK (c, owner[i] != -1, "%s: row %zu was evaluated by no rank", what, i);
        free (all);
    }
out:
    free (cnt);
    free (ones);
    free (counts);
    return owner;
}

/* One sweep of the plan, checked.  False if the ranks may be out of step. */
static bool run_sweep (ctx_t *c, pm_manager_t *pm, int k, bool verify_owners)
{
    const sweep_spec_t *sp = &g_plan[k];
    bool root = c->rank == 0;
    if (sp->schedule >= 0) {
        int rc = pm_set_schedule (pm, (pm_schedule_t) sp->schedule);
        CHECK (c, rc == 0, "pm_set_schedule (%d): %d", sp->schedule, rc);
        c->sched = (pm_schedule_t) sp->schedule;
    }
    bool static_layout = c->serial || c->sched == PM_SCHEDULE_STATIC;
    char what[160];
    snprintf (what, sizeof what, "sweep %d (%zu rows x %zu cols, %s, %s %d)", k, sp->rows,
              sp->cols, static_layout ? "static" : "dynamic", g_backend, c->n);
    pm_model_t *model = new_model ();
    char value[64];
    if (sp->sleep_us) {
        snprintf (value, sizeof value, "%ld", sp->sleep_us);
        pm_model_set_arg (model, "sleep_us", value);
    }
    if (g_scenario == S_KILL) {
        snprintf (value, sizeof value, "%d", KILL_VICTIM);
        pm_model_set_arg (model, "kill_rank", value);
        snprintf (value, sizeof value, "%d", KILL_AFTER);
        pm_model_set_arg (model, "kill_after", value);
        pm_model_set_arg (model, "victim_dir", g_outdir);
    }
    double *params = root ? make_params (sp->rows, sp->cols) : NULL;
    reset_model_counters (sp->cols);
    t_execs = 0;
    set_step (c->rank, "pm_scatter");
    /* The others' arguments are ignored: they pass NULL, 0, 0 (or, with
       PM_SWEEP_CHECK_NONROOT_COLS=1, the real column count: a diagnostic
       knob to tell a failure of that rule from others).                 */
    int rc = root ? pm_scatter (pm, model, params, sp->rows, sp->cols)
                  : pm_scatter (pm, model, NULL, 0, nonroot_cols (sp->cols));
    free (params);
    bool in_step = true;
    if (rc != 0) {
        fail (c, "%s: pm_scatter returned %d (%s): %s", what, rc, pm_strerror (rc), last_error (pm));
        in_step = false;
    }
    CHECK (c, t_builds == 1, "%s: the model was built %ld times on rank %d, expected once", what,
           t_builds, c->rank);
    CHECK (c, t_destroys == t_builds, "%s: the model was built %ld times and destroyed %ld times",
           what, t_builds, t_destroys);
    CHECK (c, t_bad_shape == 0, "%s: execute got a wrong number of parameters/outputs %ld times",
           what, t_bad_shape);
    pm_results_t *res = NULL;
    set_step (c->rank, "pm_gather");
    if (in_step) {
        rc = pm_gather (pm, &res);
        if (rc != 0 || !res) {
            fail (c, "%s: pm_gather returned %d (%s), results %p: %s", what, rc, pm_strerror (rc),
                  (void *) res, last_error (pm));
            in_step = rc == 0;
        }
    }
    if (res)
        check_names (c, what, res);
    int *owner = NULL;
    bool owners_ok = false;
    if (in_step && verify_owners) {
        set_step (c->rank, "gathering the evaluated rows");
        owner = gather_owners (c, pm, what, sp->rows, &owners_ok);
        in_step = owners_ok;
    }
    if (res && root) {
        uint64_t sum = check_root (c, what, res, sp->rows, sp->cols, static_layout, owner);
        CHECK (c, sum == g_formula_sum[k], "%s: checksum %016llx, the formula's is %016llx", what,
               (unsigned long long) sum, (unsigned long long) g_formula_sum[k]);
        if (g_have_serial)
            CHECK (c, sum == g_serial_sum[k], "%s: checksum %016llx, the Serial run's is %016llx",
                   what, (unsigned long long) sum, (unsigned long long) g_serial_sum[k]);
        if (g_scenario == S_KILL) {
            CHECK (c, pm_results_lost_count (res) == 1, "%s: pm_results_lost_count %zu, expected 1",
                   what, pm_results_lost_count (res));
            CHECK (c, pm_results_lost_rank (res, 0) == KILL_VICTIM, "%s: pm_results_lost_rank (0) = %d, expected %d",
                   what, pm_results_lost_rank (res, 0), KILL_VICTIM);
        } else {
            CHECK (c, pm_results_lost_count (res) == 0, "%s: pm_results_lost_count %zu, expected 0 (no rank was lost)",
                   what, pm_results_lost_count (res));
        }
        CHECK (c, pm_results_lost_rank (res, pm_results_lost_count (res)) == -1,
               "%s: pm_results_lost_rank past the end is not -1", what);
        printf ("pm-sweep-check %s: %s: checksum %016llx in %zu entries%s\n", SCENARIOS[g_scenario],
                what, (unsigned long long) sum, pm_results_count (res),
                g_have_serial ? " (= Serial run)" : " (= formula)");
    } else if (res) {
        check_own (c, what, res, sp->rows, sp->cols, static_layout);
    }
    free (owner);
    pm_results_destroy (&res);
    pm_model_destroy (&model);
    c->sweeps++;
    set_step (c->rank, "between sweeps");
    return in_step;
}

/* ---- scenarios ----------------------------------------------------------- */

static int scenario_plan (ctx_t *c, pm_manager_t *pm)
{
    bool verify = g_scenario != S_KILL;
    for (int k = 0; k < g_nplan; k++)
        if (!run_sweep (c, pm, k, verify))
            break;
    if (g_scenario == S_KILL && c->rank == KILL_VICTIM)
        fail (c, "rank %d was to raise SIGKILL on its row %d but evaluated only %ld rows", c->rank,
              KILL_AFTER + 1, t_execs);
    return 0;
}

/* A static sweep whose result is a bad call: expected rc on every rank. */
static void expect_scatter (ctx_t *c, pm_manager_t *pm, const char *what, int expected,
                            bool every_rank, const pm_model_t *model, const double *params,
                            size_t rows, size_t cols)
{
    set_step (c->rank, what);
    int rc = c->rank == 0 ? pm_scatter (pm, model, params, rows, cols)
                          : pm_scatter (pm, model, NULL, 0, nonroot_cols (cols));
    if (c->rank == 0 || every_rank)
        CHECK (c, rc == expected, "%s: pm_scatter returned %d (%s), expected %d (%s); last error: %s",
               what, rc, pm_strerror (rc), expected, pm_strerror (expected),
               rc ? last_error (pm) : "-");
    else
        printf ("pm-sweep-check errors: rank %d: %s: pm_scatter returned %d (%s)\n", c->rank, what,
                rc, pm_strerror (rc));
    if (rc != 0 && rc == expected)
        CHECK (c, pm_last_error (pm) && *pm_last_error (pm), "%s: PM_E* returned but no pm_last_error text",
               what);
}

static void expect_gather_einval (ctx_t *c, pm_manager_t *pm, const char *what)
{
    set_step (c->rank, what);
    pm_results_t *res = (pm_results_t *) (uintptr_t) 1;
    int rc = pm_gather (pm, &res);
    CHECK (c, rc == PM_EINVAL, "%s: pm_gather returned %d (%s), expected PM_EINVAL", what, rc,
           pm_strerror (rc));
    CHECK (c, res == NULL, "%s: pm_gather failed but left *results non-NULL", what);
    if (rc == 0)
        pm_results_destroy (&res);
}

static bool barrier_ok (ctx_t *c, pm_manager_t *pm, const char *after)
{
    set_step (c->rank, "pm_barrier");
    int rc = pm_barrier (pm);
    CHECK (c, rc == 0, "pm_barrier after %s: %d (%s): %s", after, rc, pm_strerror (rc),
           last_error (pm));
    return rc == 0;
}

static int scenario_errors (ctx_t *c, pm_manager_t *pm)
{
    int n = c->n, victim = n - 1;
    char what[200];
    /* local argument checks */
    CHECK (c, pm_set_schedule (pm, (pm_schedule_t) 7) == PM_EINVAL, "pm_set_schedule (7) is not PM_EINVAL");
    CHECK (c, pm_set_schedule (NULL, PM_SCHEDULE_STATIC) == PM_EINVAL, "pm_set_schedule (NULL) is not PM_EINVAL");
    CHECK (c, pm_gather (pm, NULL) == PM_EINVAL, "pm_gather (pm, NULL) is not PM_EINVAL");
    pm_results_t *dummy = NULL;
    CHECK (c, pm_gather (NULL, &dummy) == PM_EINVAL, "pm_gather (NULL, &r) is not PM_EINVAL");
    CHECK (c, pm_scatter (NULL, NULL, NULL, 0, 0) == PM_EINVAL, "pm_scatter (NULL, ...) is not PM_EINVAL");
    CHECK (c, pm_results_count (NULL) == 0 && pm_results_get (NULL, 0) == NULL
                  && pm_results_rows (NULL) == 0 && pm_results_lost_count (NULL) == 0
                  && pm_results_lost_rank (NULL, 0) == -1 && pm_results_output_name (NULL, 0) == NULL,
           "the pm_results_* accessors do not accept NULL");
    pm_results_destroy (NULL);
    pm_results_destroy (&dummy);

    /* 1. pm_gather before any pm_scatter (default schedule) */
    expect_gather_einval (c, pm, "pm_gather before any pm_scatter");

    /* 2. static: the model cannot be built on rank n-1 */
    pm_set_schedule (pm, PM_SCHEDULE_STATIC);
    c->sched = PM_SCHEDULE_STATIC;
    pm_model_t *model = new_model (), *failing = new_model ();
    char value[32];
    snprintf (value, sizeof value, "%d", victim);
    pm_model_set_arg (failing, "fail_on_rank", value);
    double *params = make_params (50, 3);
    reset_model_counters (3);
    snprintf (what, sizeof what, "static pm_scatter, model build fails on rank %d", victim);
    expect_scatter (c, pm, what, PM_EINVAL, true, failing, params, 50, 3);
    CHECK (c, t_builds == 1 && t_destroys == (c->rank == victim ? 0 : 1),
           "%s: built %ld and destroyed %ld times on rank %d", what, t_builds, t_destroys, c->rank);
    if (c->rank == victim)
        CHECK (c, strstr (last_error (pm), "deliberate build failure on rank") != NULL,
               "%s: the failing rank's pm_last_error does not carry the model's message: \"%s\"",
               what, last_error (pm));

    /* 3. pm_gather after a failed pm_scatter, with no sweep before it */
    expect_gather_einval (c, pm, "pm_gather after a pm_scatter that failed");

    /* 4. static: bad calls at root */
    expect_scatter (c, pm, "static pm_scatter, root passes NULL parameters for 5 rows", PM_EINVAL,
                    true, model, NULL, 5, 3);
    expect_scatter (c, pm, "static pm_scatter, root passes 0 columns", PM_EINVAL, true, model,
                    params, 5, 0);
    set_step (c->rank, "static pm_scatter, root passes no model");
    {
        int rc = c->rank == 0 ? pm_scatter (pm, NULL, params, 5, 3)
                              : pm_scatter (pm, model, NULL, 0, nonroot_cols (3));
        CHECK (c, rc == PM_EINVAL, "static pm_scatter, root passes no model: %d (%s), expected PM_EINVAL",
               rc, pm_strerror (rc));
    }
    /* rows == 0 needs no parameters */
    reset_model_counters (3);
    expect_scatter (c, pm, "static pm_scatter, 0 rows and NULL parameters", 0, true, model, NULL,
                    0, 3);
    if (!barrier_ok (c, pm, "the bad static calls"))
        goto done;
    {
        pm_results_t *res = NULL;
        set_step (c->rank, "pm_gather of 0 rows");
        int rc = pm_gather (pm, &res);
        CHECK (c, rc == 0, "pm_gather after a 0-row static sweep: %d (%s)", rc, pm_strerror (rc));
        if (rc == 0 && c->rank == 0)
            check_root (c, "0-row static sweep with NULL parameters", res, 0, 3, true, NULL);
        else if (rc == 0)
            check_own (c, "0-row static sweep with NULL parameters", res, 0, 3, true);
        pm_results_destroy (&res);
    }

    /* 5. a good static sweep still works (the plan: make_plan) */
    if (!run_sweep (c, pm, 0, true))
        goto done;

    /* 6. dynamic (where there is a coordinator) */
    if (!c->serial) {
        pm_set_schedule (pm, PM_SCHEDULE_DYNAMIC);
        c->sched = PM_SCHEDULE_DYNAMIC;
        long t0 = now_ms ();
        expect_scatter (c, pm, "dynamic pm_scatter, root passes NULL parameters for 5 rows",
                        PM_EINVAL, false, model, NULL, 5, 3);
        printf ("pm-sweep-check errors: rank %d: returned after %ld ms\n", c->rank, now_ms () - t0);
        if (!barrier_ok (c, pm, "a dynamic pm_scatter with NULL parameters at root"))
            goto done;
        if (!run_sweep (c, pm, 1, true))
            goto done;
        if (n > 1) {
            snprintf (what, sizeof what, "dynamic pm_scatter, model build fails on rank %d", victim);
            reset_model_counters (3);
            set_step (c->rank, what);
            int rc = c->rank == 0 ? pm_scatter (pm, failing, params, 50, 3)
                                  : pm_scatter (pm, failing, NULL, 0, nonroot_cols (3));
            if (c->rank == victim) {
                CHECK (c, rc == PM_EINVAL, "%s: the failing rank got %d (%s), expected PM_EINVAL",
                       what, rc, pm_strerror (rc));
                CHECK (c, strstr (last_error (pm), "deliberate build failure on rank") != NULL,
                       "%s: the failing rank's pm_last_error does not carry the model's message: \"%s\"",
                       what, last_error (pm));
            } else {
                /* pm.h says PM_EINVAL on every rank; the brief asks it of static only */
                printf ("pm-sweep-check errors: rank %d: %s: pm_scatter returned %d (%s)\n",
                        c->rank, what, rc, pm_strerror (rc));
            }
            if (!barrier_ok (c, pm, what))
                goto done;
            if (!run_sweep (c, pm, 2, true))
                goto done;
        }
    }
done:
    free (params);
    pm_model_destroy (&model);
    pm_model_destroy (&failing);
    return 0;
}

/* ---- plugins ------------------------------------------------------------- */

/* err holds the numbers a and b as whole numbers, outside path. */
static bool names_numbers (const char *err, const char *path, int a, int b)
{
    char buf[1024];
    snprintf (buf, sizeof buf, "%s", err);
    char *at;
    while (*path && (at = strstr (buf, path)) != NULL)
        memset (at, ' ', strlen (path));
    bool seen_a = false, seen_b = false;
    for (char *p = buf; *p;) {
        if (*p >= '0' && *p <= '9') {
            char *end;
            long v = strtol (p, &end, 10);
            seen_a = seen_a || v == a;
            seen_b = seen_b || v == b;
            p = end;
        } else {
            p++;
        }
    }
    return seen_a && seen_b;
}

static void expect_load_fails (ctx_t *c, const char *spec, const char *must_contain,
                               const char *must_contain2)
{
    char err[1024] = "";
    pm_model_t *m = pm_model_load (spec, err, sizeof err);
    if (m) {
        fail (c, "pm_model_load (\"%s\") succeeded, expected NULL", spec);
        pm_model_destroy (&m);
        return;
    }
    CHECK (c, err[0], "pm_model_load (\"%s\"): NULL with an empty error", spec);
    CHECK (c, !must_contain || strstr (err, must_contain), "pm_model_load (\"%s\"): error \"%s\" does not name \"%s\"",
           spec, err, must_contain);
    CHECK (c, !must_contain2 || strstr (err, must_contain2), "pm_model_load (\"%s\"): error \"%s\" does not name \"%s\"",
           spec, err, must_contain2);
    if (c->rank == 0)
        printf ("pm-sweep-check plugin: pm_model_load (\"%s\") → NULL: %s\n", spec, err);
}

/* A sweep with a plugin model; checks root's results. */
static bool plugin_sweep (ctx_t *c, pm_manager_t *pm, const char *what, pm_model_t *model,
                          size_t rows, double scale, double offset, double nargs, double marker,
                          const char *name0)
{
    size_t cols = 3;
    double *params = NULL;
    if (c->rank == 0) {
        params = malloc ((rows * cols + 1) * sizeof *params);
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++)
                params[i * cols + j] = (double) i + 0.5 * (double) j;
    }
    set_step (c->rank, what);
    int rc = pm_scatter (pm, model, params, c->rank == 0 ? rows : 0,
                         c->rank == 0 ? cols : nonroot_cols (cols));
    free (params);
    if (rc != 0) {
        fail (c, "%s: pm_scatter: %d (%s): %s", what, rc, pm_strerror (rc), last_error (pm));
        return false;
    }
    pm_results_t *res = NULL;
    rc = pm_gather (pm, &res);
    if (rc != 0) {
        fail (c, "%s: pm_gather: %d (%s): %s", what, rc, pm_strerror (rc), last_error (pm));
        return false;
    }
    const char *names[3] = {name0, "nargs", "marker"};
    CHECK (c, pm_results_output_count (res) == 3, "%s: %zu outputs, expected 3", what,
           pm_results_output_count (res));
    for (size_t k = 0; k < 3; k++) {
        const char *got = pm_results_output_name (res, k);
        CHECK (c, got && strcmp (got, names[k]) == 0, "%s: output %zu is named '%s', expected '%s' (set with pm_model_set_arg)",
               what, k, got ? got : "(null)", names[k]);
    }
    if (c->rank == 0) {
        size_t next = 0;
        for (size_t e = 0; e < pm_results_count (res); e++) {
            const pm_local_results_t *l = pm_results_get (res, e);
            if (l->noutputs != 3 || l->cols != cols) {
                fail (c, "%s: entry %zu is %zu x %zu/%zu", what, e, l->rows, l->cols, l->noutputs);
                continue;
            }
            for (size_t k = 0; k < l->rows; k++, next++) {
                size_t i = l->sample_index[k];
                CHECK (c, i == next, "%s: sample_index %zu, expected %zu", what, i, next);
                double sum = 0;
                for (size_t j = 0; j < cols; j++)
                    sum += (double) i + 0.5 * (double) j;
                const double *o = l->outputs + k * 3;
                if (i == 13) {
                    CHECK (c, !l->success[k] && isnan (o[0]) && isnan (o[1]) && isnan (o[2]),
                           "%s: row 13 fails in the plugin, got success %d and %g %g %g", what,
                           l->success[k], o[0], o[1], o[2]);
                    continue;
                }
                double y = scale * sum + offset;
                CHECK (c, l->success[k] && o[0] == y && o[1] == nargs && o[2] == marker,
                       "%s: row %zu: success %d, outputs %.17g %g %g, expected %.17g %g %g", what,
                       i, l->success[k], o[0], o[1], o[2], y, nargs, marker);
            }
        }
        CHECK (c, next == rows, "%s: root got %zu rows, expected %zu", what, next, rows);
    }
    pm_results_destroy (&res);
    return true;
}

static int scenario_plugin (ctx_t *c, pm_manager_t *pm)
{
    char err[1024], spec[4200];
    /* the error paths (every rank: concurrent dlopen on threads) */
    expect_load_fails (c, "/nonexistent-pm-dir/libnope.so", "/nonexistent-pm-dir/libnope.so", NULL);
    expect_load_fails (c, "/nonexistent-pm-dir/libnope.so:toy_", "/nonexistent-pm-dir/libnope.so", NULL);
    expect_load_fails (c, "libnope-pm-sweep-check.so", "libnope-pm-sweep-check.so", NULL);
    expect_load_fails (c, PLUGIN_TOY, "pm_plugin_abi_version", PLUGIN_TOY); /* default prefix */
    snprintf (spec, sizeof spec, "%s:other_", PLUGIN_DEFAULT);
    expect_load_fails (c, spec, "other_abi_version", PLUGIN_DEFAULT);
    expect_load_fails (c, PLUGIN_NODESTROY, "pm_plugin_destroy", PLUGIN_NODESTROY);
    {
        err[0] = '\0';
        pm_model_t *m = pm_model_load (PLUGIN_ABI2, err, sizeof err);
        CHECK (c, m == NULL, "pm_model_load of an ABI-2 plugin succeeded");
        pm_model_destroy (&m);
        CHECK (c, strstr (err, PLUGIN_ABI2) && names_numbers (err, PLUGIN_ABI2, 2, 1),
               "pm_model_load of an ABI-2 plugin: error \"%s\" does not name the path and both versions (2 and 1)",
               err);
        if (c->rank == 0)
            printf ("pm-sweep-check plugin: ABI 2 → NULL: %s\n", err);
    }
    expect_load_fails (c, "", NULL, NULL);
    {
        pm_model_t *m = pm_model_load (NULL, err, sizeof err);
        CHECK (c, m == NULL && err[0], "pm_model_load (NULL) did not fail with a message");
        pm_model_destroy (&m);
        char small[8];
        memset (small, 'x', sizeof small);
        m = pm_model_load ("/nonexistent-pm-dir/libnope-with-a-long-name.so", small, sizeof small);
        CHECK (c, m == NULL && memchr (small, '\0', sizeof small) != NULL,
               "pm_model_load with an 8-byte error buffer: no NUL-terminated message");
        pm_model_destroy (&m);
    }
    CHECK (c, pm_model_new (m_build, m_output_names, NULL, NULL) == NULL,
           "pm_model_new without execute is not NULL");
    CHECK (c, pm_model_arg (NULL, "k", "fallback") != NULL
                  && strcmp (pm_model_arg (NULL, "k", "fallback"), "fallback") == 0,
           "pm_model_arg (NULL args) does not give the fallback");

    /* by path, with arguments */
    err[0] = '\0';
    pm_model_t *model = pm_model_load (PLUGIN_DEFAULT, err, sizeof err);
    if (!model) {
        fail (c, "pm_model_load (\"%s\"): NULL: %s", PLUGIN_DEFAULT, err);
        return 0;
    }
    CHECK (c, pm_model_set_arg (model, NULL, "1") == PM_EINVAL, "pm_model_set_arg with a NULL key is not PM_EINVAL");
    CHECK (c, pm_model_set_arg (model, "", "1") == PM_EINVAL, "pm_model_set_arg with an empty key is not PM_EINVAL");
    CHECK (c, pm_model_set_arg (model, "scale", NULL) == PM_EINVAL, "pm_model_set_arg with a NULL value is not PM_EINVAL");
    CHECK (c, pm_model_set_arg (NULL, "scale", "1") == PM_EINVAL, "pm_model_set_arg (NULL model) is not PM_EINVAL");
    CHECK (c, pm_model_set_arg (model, "scale", "7") == 0, "pm_model_set_arg (scale=7) failed");
    CHECK (c, pm_model_set_arg (model, "offset", "-1") == 0, "pm_model_set_arg (offset=-1) failed");
    CHECK (c, pm_model_set_arg (model, "name", "alpha") == 0, "pm_model_set_arg (name) failed");
    CHECK (c, pm_model_set_arg (model, "scale", "2.5") == 0, "pm_model_set_arg (scale=2.5 again) failed");
    size_t rows = (size_t) (2 * c->n + 17); /* > 13: row 13 fails */
    if (!plugin_sweep (c, pm, "sweep with the plugin loaded by path", model, rows, 2.5, -1.0, 3.0, 1.0, "alpha"))
        goto out;

    /* "path:toy_", no arguments */
    pm_model_t *toy = NULL;
    snprintf (spec, sizeof spec, "%s:toy_", PLUGIN_TOY);
    err[0] = '\0';
    toy = pm_model_load (spec, err, sizeof err);
    if (!toy) {
        fail (c, "pm_model_load (\"%s\"): NULL: %s", spec, err);
        goto out;
    }
    bool ok = plugin_sweep (c, pm, "sweep with the \"toy_\" plugin", toy, 15, 1.0, 0.0, 0.0, 7.0, "y");
    pm_model_destroy (&toy);
    if (!ok)
        goto out;

    /* the plugin's build fails on every rank: PM_EINVAL everywhere (static) */
    pm_set_schedule (pm, PM_SCHEDULE_STATIC);
    pm_model_set_arg (model, "fail", "yes");
    {
        double params[6] = {0, 1, 2, 3, 4, 5};
        set_step (c->rank, "static sweep with a plugin whose build fails");
        int rc = pm_scatter (pm, model, c->rank == 0 ? params : NULL, c->rank == 0 ? 2 : 0,
                             c->rank == 0 ? 3 : nonroot_cols (3));
        CHECK (c, rc == PM_EINVAL && strstr (last_error (pm), "plugin build refused: fail=yes"),
               "a plugin build that fails: pm_scatter %d (%s), expected PM_EINVAL with the plugin's message; last error: %s",
               rc, pm_strerror (rc), last_error (pm));
    }
    if (!c->serial)
        pm_set_schedule (pm, PM_SCHEDULE_DYNAMIC);
    barrier_ok (c, pm, "the failed plugin build");
out:
    pm_model_destroy (&model);
    return 0;
}

/* ---- the rank function ------------------------------------------------------ */

static int rank_fn (pm_manager_t *pm, void *arg)
{
    pm_schedule_t initial = arg ? *(pm_schedule_t *) arg : PM_SCHEDULE_DYNAMIC;
    ctx_t c = {0};
    c.rank = pm_get_rank (pm);
    c.n = pm_number_of_worker_processes (pm);
    c.serial = strcmp (pm_backend_name (pm), "Serial") == 0;
    c.sched = c.serial ? PM_SCHEDULE_STATIC : initial;
    t_rank = c.rank;
    set_step (c.rank, "starting");
    if (c.n != g_n)
        fail (&c, "pm_number_of_worker_processes is %d, the command line says %d", c.n, g_n);
    else if (g_scenario == S_KILL && c.n < 3)
        fail (&c, "the kill scenario needs at least 3 ranks, got %d", c.n);
    else if (c.n > MAX_RANKS)
        fail (&c, "more than %d ranks", MAX_RANKS);
    else if (g_scenario == S_ERRORS)
        scenario_errors (&c, pm);
    else if (g_scenario == S_PLUGIN)
        scenario_plugin (&c, pm);
    else
        scenario_plan (&c, pm);
    set_step (c.rank, "done");
    char summary[200];
    snprintf (summary, sizeof summary, "%d sweep(s) checked on %s (rank %d of %d)", c.sweeps,
              pm_backend_name (pm), c.rank, c.n);
    report (&c, summary);
    free (t_done);
    t_done = NULL;
    t_ndone = t_done_cap = 0;
    return c.fails ? 1 : 0;
}

/* ---- checking (as in pm_failure.c) ---------------------------------------- */

static int check_outcomes (int n)
{
    int bad = 0;
    for (int r = 0; r < n; r++) {
        char name[32], buf[1024];
        snprintf (name, sizeof name, "rank-%d", r);
        if (!read_file (name, buf, sizeof buf)) {
            if (g_scenario == S_KILL && r == KILL_VICTIM) {
                printf ("pm-sweep-check %s: rank %d: (victim, killed)\n", SCENARIOS[g_scenario], r);
                continue;
            }
            printf ("pm-sweep-check %s: rank %d: FAIL: no outcome reported (crashed, killed or hung?)\n",
                    SCENARIOS[g_scenario], r);
            bad++;
            continue;
        }
        printf ("pm-sweep-check %s: rank %d: %s\n", SCENARIOS[g_scenario], r, buf);
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

/* SIGKILL whatever of ours is left (children only) */
static void kill_our_children (void)
{
    DIR *d = opendir ("/proc");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir (d)) != NULL) {
        pid_t pid = (pid_t) atoi (e->d_name);
        if (pid > 1 && pid != getpid () && parent_of (pid) == getpid ())
            kill (pid, SIGKILL);
    }
    closedir (d);
}

/* No child may be left: running or unreaped. */
static int check_no_children (const char *after)
{
    int bad = 0, st;
    for (;;) {
        pid_t w = waitpid (-1, &st, WNOHANG);
        if (w == -1 && errno == ECHILD)
            break;
        if (w > 0) {
            printf ("pm-sweep-check %s: FAIL: process %d was left unreaped after %s\n",
                    SCENARIOS[g_scenario], (int) w, after);
            bad++;
            continue;
        }
        if (w == 0) {
            printf ("pm-sweep-check %s: FAIL: a child process is still running after %s; killing it\n",
                    SCENARIOS[g_scenario], after);
            bad++;
            kill_our_children ();
            long deadline = now_ms () + 5000;
            while (now_ms () < deadline) {
                pid_t x = waitpid (-1, &st, WNOHANG);
                if (x == -1)
                    break;
                if (x == 0)
                    sleep_us (10000);
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
    snprintf (g_outdir, sizeof g_outdir, "%s/pm-sweep-check.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp (g_outdir)) {
        fprintf (stderr, "pm-sweep-check: mkdtemp %s: %s\n", g_outdir, strerror (errno));
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

static int usage (const char *argv0)
{
    fprintf (stderr, "usage: %s SCENARIO BACKEND N\n       %s --pm-run PM_RUN SCENARIO N [PM-RUN OPTION...]\nscenarios:",
             argv0, argv0);
    for (int i = 0; i < NSCENARIOS; i++)
        fprintf (stderr, " %s", SCENARIOS[i]);
    fprintf (stderr, "\n");
    return 2;
}

/* ---- driver: pm-run --------------------------------------------------------- */

static int drive_pm_run (int argc, char **argv)
{
    if (argc < 5)
        return usage (argv[0]);
    const char *pm_run = argv[2];
    int s = parse_scenario (argv[3]);
    int n = atoi (argv[4]);
    if (s < 0 || n < 1)
        return usage (argv[0]);
    g_scenario = (scenario_t) s;
    /* orphans of pm-run are re-parented to us, so leftovers are visible */
    prctl (PR_SET_CHILD_SUBREAPER, 1);
    if (!make_outdir ())
        return 2;
    setenv ("PM_SWEEP_CHECK_OUTDIR", g_outdir, 1);
    char self[PATH_MAX];
    ssize_t l = readlink ("/proc/self/exe", self, sizeof self - 1);
    if (l <= 0) {
        perror ("pm-sweep-check: readlink /proc/self/exe");
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
        perror ("pm-sweep-check: fork");
        return 2;
    }
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != parent)
            _exit (127);
        execv (pm_run, args);
        perror ("pm-sweep-check: execv pm-run");
        _exit (127);
    }
    free (args);

    int bad = 0, st = 0;
    long deadline = now_ms () + (long) g_max_s * 1000 + 5000;
    for (;;) {
        pid_t w = waitpid (pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            perror ("pm-sweep-check: waitpid");
            return 2;
        }
        if (now_ms () > deadline) {
            printf ("pm-sweep-check %s: FAIL: pm-run did not exit before the deadline; killing everything\n",
                    SCENARIOS[g_scenario]);
            bad++;
            kill (pid, SIGKILL);
            kill_our_children ();
            waitpid (pid, &st, 0);
            break;
        }
        sleep_us (10000);
    }
    int code = WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st);
    int expected = g_scenario == S_KILL ? 128 + SIGKILL : 0;
    if (code != expected) {
        printf ("pm-sweep-check %s: FAIL: pm-run exited with %d, expected %d\n", SCENARIOS[g_scenario],
                code, expected);
        bad++;
    } else {
        printf ("pm-sweep-check %s: pm-run exited with %d as expected\n", SCENARIOS[g_scenario], code);
    }
    bad += check_outcomes (n);
    bad += check_no_children ("pm-run exited");
    remove_outdir ();
    printf ("pm-sweep-check %s under pm-run -n %d: %s\n", SCENARIOS[g_scenario], n, bad ? "FAIL" : "PASS");
    return bad ? 1 : 0;
}

/* ---- SPMD ------------------------------------------------------------------- */

int main (int argc, char **argv)
{
    setvbuf (stdout, NULL, _IOLBF, 0);
    const char *max = getenv ("PM_SWEEP_CHECK_MAX_S");
    if (max && atoi (max) > 0)
        g_max_s = atoi (max);
    const char *nonroot = getenv ("PM_SWEEP_CHECK_NONROOT_COLS");
    g_nonroot_cols = nonroot && strcmp (nonroot, "1") == 0;
    if (argc >= 2 && strcmp (argv[1], "--pm-run") == 0)
        return drive_pm_run (argc, argv);
    if (argc != 4)
        return usage (argv[0]);
    int s = parse_scenario (argv[1]);
    if (s < 0)
        return usage (argv[0]);
    g_scenario = (scenario_t) s;
    g_backend = argv[2];
    int n = atoi (argv[3]);
    g_n = n < 1 ? 1 : n;
    g_watch_ranks = g_n < MAX_RANKS ? g_n : MAX_RANKS;
    arm_watchdog ();

    bool launched = getenv ("PM_RANK") != NULL;
    bool own_outdir = false;
    const char *od = getenv ("PM_SWEEP_CHECK_OUTDIR");
    if (od && *od) {
        snprintf (g_outdir, sizeof g_outdir, "%s", od);
    } else {
        if (!make_outdir ())
            return 2;
        own_outdir = true;
    }

    int bad = 0;
    make_plan (g_n);
    /* The reference: the same sweeps on a Serial manager, in this process,
       before any parallel manager exists (and so before any fork).        */
    if (!launched && g_nplan > 0) {
        if (serial_reference ())
            g_have_serial = true;
        else
            bad++;
    }

    pid_t parent = getpid ();
    fflush (stdout);
    fflush (stderr);
    pm_manager_t *pm = pm_create_parallel_manager (g_backend, n, NULL);
    if (!pm) {
        printf ("pm-sweep-check %s: FAIL: pm_create_parallel_manager (\"%s\", %d) returned NULL: %d (%s): %s\n",
                SCENARIOS[g_scenario], g_backend, n, pm_last_error_code (NULL),
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
    if (child)
        arm_watchdog (); /* alarms do not survive fork */

    pm_schedule_t initial = PM_SCHEDULE_DYNAMIC;
    bool serial = strcmp (pm_backend_name (pm), "Serial") == 0;
    if (g_scenario == S_STATIC) {
        /* on the launcher for ConcurrentFutures: its ranks inherit it */
        int rc = pm_set_schedule (pm, PM_SCHEDULE_STATIC);
        if (rc != 0) {
            printf ("pm-sweep-check: FAIL: pm_set_schedule (STATIC): %d\n", rc);
            bad++;
        }
        initial = PM_SCHEDULE_STATIC;
    }
    if (g_scenario == S_ERRORS && !child && !launched && !serial
        && strcmp (pm_backend_name (pm), "ConcurrentFutures") == 0) {
        double p[3] = {0, 1, 2};
        pm_model_t *m = new_model ();
        int rc = pm_scatter (pm, m, p, 1, 3);
        if (rc != PM_EINVAL) {
            printf ("pm-sweep-check errors: FAIL: pm_scatter on the ConcurrentFutures launcher returned %d, expected PM_EINVAL\n",
                    rc);
            bad++;
        } else {
            printf ("pm-sweep-check errors: pm_scatter on the launcher → PM_EINVAL: %s\n", last_error (pm));
        }
        pm_model_destroy (&m);
    }
    int rc = pm_run (pm, rank_fn, &initial);
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
                printf ("pm-sweep-check %s: rank %d: %s\n", SCENARIOS[g_scenario], rank, buf);
            else
                printf ("pm-sweep-check %s: rank %d: FAIL: no outcome\n", SCENARIOS[g_scenario], rank);
            remove_outdir ();
        }
        return rc ? 1 : 0;
    }

    /* the checking process: MultiProcessing parent, threads, serial */
    bad += check_outcomes (size);
    if (forked)
        bad += check_no_children ("pm_destroy in the parent");
    if (own_outdir)
        remove_outdir ();
    printf ("pm-sweep-check %s on %s %d: %s\n", SCENARIOS[g_scenario], g_backend, n, bad ? "FAIL" : "PASS");
    return bad ? 1 : 0;
}
