/*  pm_bench_sweep.c — what a parameter sweep costs through pm_scatter /
    pm_gather, side by side with Python's process pools measured in the same
    run.  A benchmark, not a test: it prints numbers and never fails on them
    (see bench/README.md for how to read the table).

      1. efficiency: R rows of a model that busy-waits 1 ms on
         CLOCK_MONOTONIC (it uses a core, like a real model) on 2 workers;
         efficiency = ideal (R x 1 ms / 2) / wall time, for pm's dynamic and
         static schedules, ProcessPoolExecutor.submit per row and
         multiprocessing.Pool.map (default and ~100 ms chunks).
      2. throughput: rows/s of a model that copies its input, through pm's
         dynamic scheduler on 2 and 4 ranks, next to the same pools.

    Process layout, as in pm-bench-latency: pm_create_parallel_manager
    ("MultiProcessing", n) forks n-1 ranks inside the call and a ZeroMQ
    context must never cross a fork, so the driver (this program without
    --child) never touches libpm; it re-executes its own binary once per pm
    configuration, and python3 bench/py_sweep_peers.py once per Python
    configuration, each in a process group of its own with a deadline, and
    reads the result lines from a pipe (bench_util.h).

      driver ──spawn──▶ --child pm SCHEDULE N ROWS WORK_US
                        SPMD: every rank calls pm_scatter and pm_gather;
                        rank 0 times scatter through gather and checks rows
             ──spawn──▶ python3 py_sweep_peers.py KIND --rows ... (stdlib only)

    Child → driver protocol, one line each on stdout (times in nanoseconds):
      RESULT <what> <rows> <wall_ns>
      INFO <key> <value...>
      ERROR <text>                                                          */

#include <pm.h>
#include <pm_model.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"

#ifndef PM_BENCH_SOURCE_DIR
#define PM_BENCH_SOURCE_DIR "bench"
#endif
#define S_SCRIPT "py_sweep_peers.py"
#define S_COLS 2          /* parameters per row, and outputs (the model copies) */
#define S_MAX_RANKS 1024
#define S_MAX_ROWS 16     /* rows of the final table                            */
#define S_CHUNK_MS 100    /* the tuned Pool.map chunk: ~ pm's scheduler target  */
#define S_GOAL_EFFICIENCY 0.90
#define S_GOAL_ROWS_PER_S 100000.0
#define S_MAX_REPEAT 99
#define S_NOISY_SHARE 0.10 /* others took this share of the CPUs: a disturbed row */

/* ---- the model: busy-wait work_us, then copy the inputs ------------------ */

typedef struct {
    uint64_t work_ns;
} s_model_state_t;

static void *
s_model_build (const pm_model_args_t *args, char *err, size_t err_size)
{
    const char *text = pm_model_arg (args, "work_us", "0");
    long us = 0;
    if (!bench_parse_long (text, 0, 60000000, &us)) {
        bench_format (err, err_size, "work_us='%s' is not 0..60000000", text);
        return NULL;
    }
    s_model_state_t *state = malloc (sizeof *state);
    if (!state) {
        bench_format (err, err_size, "out of memory");
        return NULL;
    }
    state->work_ns = (uint64_t) us * 1000u;
    return state;
}

static size_t
s_model_output_names (void *state, const char *const **names)
{
    static const char *const s_names[S_COLS] = { "x", "y" };
    *names = s_names;
    return S_COLS;
}

static int
s_model_execute (void *state, const double *params, size_t nparams, double *outputs,
                 size_t noutputs)
{
    const s_model_state_t *self = state;
    if (self->work_ns) {
        uint64_t end = bench_now_ns () + self->work_ns;
        while (bench_now_ns () < end)
            ; /* a core busy, like a real model; not a sleep */
    }
    for (size_t k = 0; k < noutputs; k++)
        outputs[k] = k < nparams ? params[k] : 0;
    return 0;
}

static void
s_model_destroy (void *state)
{
    free (state);
}

/* ---- child: one sweep through pm (SPMD, every rank runs this) ----------- */

static double
s_param (size_t row, size_t col)
{
    return (double) row + 0.5 * (double) col;
}

/* Root: every row is in, once, evaluated, with its inputs copied.  Fills
   per_rank with the rows each rank did and *runs with the number of entries
   (runs of consecutive rows done by one rank).  An error text, or NULL.   */
static const char *
s_check (const pm_results_t *results, size_t rows, int ranks, long *per_rank, size_t *runs,
         char *why, size_t why_size)
{
    *runs = pm_results_count (results);
    if (pm_results_rows (results) != rows) {
        bench_format (why, why_size, "pm_gather returned %zu rows, expected %zu",
                      pm_results_rows (results), rows);
        return why;
    }
    if (pm_results_output_count (results) != S_COLS) {
        bench_format (why, why_size, "pm_gather returned %zu outputs per row, expected %d",
                      pm_results_output_count (results), S_COLS);
        return why;
    }
    unsigned char *seen = calloc (rows + 1, 1);
    if (!seen) {
        bench_format (why, why_size, "out of memory");
        return why;
    }
    const char *bad = NULL;
    for (size_t e = 0; e < *runs && !bad; e++) {
        const pm_local_results_t *local = pm_results_get (results, e);
        if (local->process_number >= 0 && local->process_number < ranks)
            per_rank[local->process_number] += (long) local->rows;
        for (size_t i = 0; i < local->rows && !bad; i++) {
            size_t row = local->sample_index[i];
            if (row >= rows || seen[row]) {
                bench_format (why, why_size, "row %zu returned twice or out of range", row);
                bad = why;
            } else if (!local->success[i]) {
                bench_format (why, why_size, "row %zu failed", row);
                bad = why;
            }
            seen[row] = 1;
            for (size_t k = 0; k < S_COLS && !bad; k++)
                if (local->outputs[i * local->noutputs + k] != s_param (row, k)
                    || local->parameters[i * local->cols + k] != s_param (row, k)) {
                    bench_format (why, why_size, "row %zu came back with other values", row);
                    bad = why;
                }
        }
    }
    free (seen);
    return bad;
}

static int
s_child_pm (const char *schedule_name, int ranks, long rows, long work_us)
{
    pm_schedule_t schedule;
    if (strcmp (schedule_name, "dynamic") == 0)
        schedule = PM_SCHEDULE_DYNAMIC;
    else if (strcmp (schedule_name, "static") == 0)
        schedule = PM_SCHEDULE_STATIC;
    else {
        bench_emit ("ERROR unknown schedule '%s'", schedule_name);
        return 1;
    }
    fflush (NULL); /* nothing buffered may be duplicated by the fork */
    uint64_t t0 = bench_now_ns ();
    pm_manager_t *pm = pm_create_parallel_manager ("MultiProcessing", ranks, NULL);
    uint64_t t1 = bench_now_ns ();
    if (!pm) {
        const char *why = pm_last_error (NULL);
        bench_emit ("ERROR pm_create_parallel_manager (\"MultiProcessing\", %d): %s: %s", ranks,
                    pm_strerror (pm_last_error_code (NULL)), why ? why : "");
        return 1;
    }
    int rank = pm_get_rank (pm);
    bool root = rank == 0;
    int rc = 0;
    if (root) {
        const char *backend = pm_backend_name (pm);
        bench_emit ("INFO backend %s", backend ? backend : "?");
        bench_emit ("INFO create_us %" PRIu64, (t1 - t0) / 1000);
    }
    if (pm_number_of_worker_processes (pm) != ranks) {
        if (root)
            bench_emit ("ERROR asked for %d ranks, the manager has %d", ranks,
                        pm_number_of_worker_processes (pm));
        rc = PM_EINVAL;
    }
    char work[32];
    bench_format (work, sizeof work, "%ld", work_us);
    pm_model_t *model =
        pm_model_new (s_model_build, s_model_output_names, s_model_execute, s_model_destroy);
    if (!model || pm_model_set_arg (model, "work_us", work) != 0) {
        bench_emit ("ERROR rank %d: pm_model_new / pm_model_set_arg failed", rank);
        rc = PM_ENOMEM;
    }
    if (rc == 0 && (rc = pm_set_schedule (pm, schedule)) != 0)
        bench_emit ("ERROR rank %d: pm_set_schedule (%s): %s", rank, schedule_name,
                    pm_strerror (rc));
    /* Root's rows, built before the clock starts (as the Python peers do). */
    double *params = NULL;
    if (root && rc == 0) {
        params = malloc ((size_t) rows * S_COLS * sizeof *params);
        if (!params) {
            bench_emit ("ERROR out of memory for %ld rows", rows);
            rc = PM_ENOMEM;
        }
        for (size_t i = 0; params && i < (size_t) rows; i++)
            for (size_t k = 0; k < S_COLS; k++)
                params[i * S_COLS + k] = s_param (i, k);
    }
    /* Start together: the clock measures the sweep, not the ranks' start. */
    if (rc == 0 && (rc = pm_sync_with_peers (pm)) != 0)
        bench_emit ("ERROR rank %d: pm_sync_with_peers: %s", rank, pm_strerror (rc));

    pm_results_t *results = NULL;
    uint64_t start = bench_now_ns ();
    if (rc == 0) {
        /* Every rank passes the number of columns although pm.h says the
           other ranks' arguments are ignored: the dynamic schedule sizes a
           non-root rank's chunks from its own cols (client/pm_sweep_dynamic.c),
           so (NULL, 0, 0) there fails with "malformed chunk" when cols != 1. */
        rc = pm_scatter (pm, model, params, root ? (size_t) rows : 0, S_COLS);
        if (rc != 0)
            bench_emit ("ERROR rank %d: pm_scatter: %s (%s)", rank, pm_strerror (rc),
                        pm_last_error (pm) ? pm_last_error (pm) : "");
    }
    if (rc == 0) {
        rc = pm_gather (pm, &results);
        if (rc != 0)
            bench_emit ("ERROR rank %d: pm_gather: %s (%s)", rank, pm_strerror (rc),
                        pm_last_error (pm) ? pm_last_error (pm) : "");
    }
    uint64_t wall = bench_now_ns () - start;

    if (rc == 0 && root) {
        long per_rank[S_MAX_RANKS] = { 0 };
        size_t runs = 0;
        char why[256];
        const char *bad = s_check (results, (size_t) rows, ranks, per_rank, &runs, why, sizeof why);
        if (bad) {
            bench_emit ("ERROR %s", bad);
            rc = PM_EPROTO;
        } else {
            char split[512] = "";
            for (int r = 0; r < ranks; r++) {
                size_t len = strlen (split);
                bench_format (split + len, sizeof split - len, "%s%ld", r ? " " : "",
                              per_rank[r]);
            }
            bench_emit ("INFO split %s", split);
            bench_emit ("INFO runs %zu", runs);
            bench_emit ("RESULT pm %ld %" PRIu64, rows, wall);
        }
    }
    pm_results_destroy (&results);
    pm_model_destroy (&model);
    free (params);
    uint64_t t2 = bench_now_ns ();
    pm_destroy (&pm);
    if (root)
        bench_emit ("INFO destroy_us %" PRIu64, (bench_now_ns () - t2) / 1000);
    return rc == 0 ? 0 : 1;
}

/* ---- driver ------------------------------------------------------------- */

typedef enum { S_PM, S_EXECUTOR_SUBMIT, S_POOL_MAP } s_runner_t;

typedef struct {
    int section;           /* 1 efficiency, 2 throughput                      */
    s_runner_t runner;
    const char *schedule;  /* pm: "dynamic" or "static"                       */
    bool reference;        /* shown for reference, no goal                    */
    int workers;
    long rows;
    long work_us;
    long chunksize;        /* pool-map: asked for (0 = Pool.map's default)    */
    bool measured;         /* a wall time came back                           */
    bool ok;               /* measured, and no error reported                 */
    char error[512];       /* why not                                         */
    uint64_t wall_ns;      /* the median run's                                */
    int repeats;           /* runs measured                                   */
    uint64_t wall_min_ns, wall_max_ns;
    /* details (of the median run) */
    long create_us, destroy_us; /* pm, rank 0; -1 = n/a                       */
    char backend[32];
    char split[256];       /* pm: rows per rank                               */
    long runs;             /* pm: runs of consecutive rows by one rank        */
    long chunksize_used;   /* pool-map                                        */
    char python[256];      /* version and path                                */
    char start_method[32];
    double others;         /* CPUs kept busy by other processes meanwhile     */
} s_row_t;

typedef struct {
    bool quick, full, no_python;
    long rows;             /* section 1                                       */
    long work_us;          /* section 1 model cost                            */
    int workers;
    long tput_rows;        /* section 2: pm and Pool.map                      */
    long submit_rows;      /* section 2: ProcessPoolExecutor.submit           */
    long chunksize;        /* section 1 tuned Pool.map chunksize              */
    int only;              /* 0 both sections, else 1 or 2                    */
    int repeat[3];         /* runs per configuration, by section (1, 2)       */
    int timeout_s;         /* per configuration; 0 = from the work            */
    const char *python;    /* interpreter asked for                           */
    const char *script_arg;
    char python_path[PATH_MAX]; /* resolved; "" = skip the Python peers      */
    char script[PATH_MAX];
    char python_skip[PATH_MAX + 128]; /* why they are skipped                */
    char self[PATH_MAX];
} s_config_t;

static s_row_t s_rows[S_MAX_ROWS];
static int s_nrows;

static s_row_t *
s_new_row (int section, s_runner_t runner, int workers, long rows, long work_us)
{
    if (s_nrows >= S_MAX_ROWS)
        return NULL;
    s_row_t *row = &s_rows[s_nrows++];
    memset (row, 0, sizeof *row);
    row->section = section;
    row->runner = runner;
    row->workers = workers;
    row->rows = rows;
    row->work_us = work_us;
    row->create_us = row->destroy_us = row->runs = row->chunksize_used = -1;
    return row;
}

/* Seconds a configuration may take: generous, from its ideal time. */
static int
s_timeout (const s_config_t *cfg, const s_row_t *row)
{
    if (cfg->timeout_s > 0)
        return cfg->timeout_s;
    double ideal = (double) row->rows * (double) row->work_us / 1e6 / row->workers;
    if (cfg->quick)
        return 30 + (int) (4 * ideal);
    return 120 + (int) (4 * ideal);
}

static void
s_parse_child (const char *text, int status, const char *err, s_row_t *row)
{
    char error[512] = "";
    char buf[1024];
    for (const char *cursor = text; bench_next_line (&cursor, buf, sizeof buf);) {
        char what[32];
        long rows;
        uint64_t wall;
        if (sscanf (buf, "RESULT %31s %ld %" SCNu64, what, &rows, &wall) == 3) {
            if (rows == row->rows) {
                row->wall_ns = wall;
                row->measured = true;
            } else if (!error[0])
                bench_format (error, sizeof error, "reported %ld rows, expected %ld", rows,
                              row->rows);
        } else if (strncmp (buf, "INFO backend ", 13) == 0)
            bench_format (row->backend, sizeof row->backend, "%s", buf + 13);
        else if (strncmp (buf, "INFO split ", 11) == 0)
            bench_format (row->split, sizeof row->split, "%s", buf + 11);
        else if (strncmp (buf, "INFO python ", 12) == 0)
            bench_format (row->python, sizeof row->python, "%s", buf + 12);
        else if (strncmp (buf, "INFO start_method ", 18) == 0)
            bench_format (row->start_method, sizeof row->start_method, "%s", buf + 18);
        else if (sscanf (buf, "INFO create_us %ld", &row->create_us) == 1
                 || sscanf (buf, "INFO destroy_us %ld", &row->destroy_us) == 1
                 || sscanf (buf, "INFO runs %ld", &row->runs) == 1
                 || sscanf (buf, "INFO chunksize %ld", &row->chunksize_used) == 1)
            ;
        else if (strncmp (buf, "ERROR ", 6) == 0 && !error[0])
            bench_format (error, sizeof error, "%s", buf + 6);
    }
    if (!error[0] && err && err[0])
        bench_format (error, sizeof error, "%s", err);
    if (!error[0] && status != 0)
        bench_describe_status (status, error, sizeof error);
    /* Measured but with an error (a rank failed, the results were wrong,
       the process did not end well): the number is suspect, the row fails. */
    row->ok = row->measured && !error[0];
    if (!row->ok)
        bench_format (row->error, sizeof row->error, "%s",
                      error[0] ? error : "no result reported");
}

/* Runs a configuration cfg->repeat[section] times (path args...) and keeps
   the median wall time, with the details of that run; the first failed
   run ends the row.                                                       */
static void
s_run_repeated (const s_config_t *cfg, s_row_t *row, const char *path, char *const args[],
                const char *what)
{
    int repeat = cfg->repeat[row->section];
    s_row_t runs[S_MAX_REPEAT];
    int n = 0;
    for (int k = 0; k < repeat && !bench_interrupted; k++) {
        if (repeat > 1)
            bench_progress ("%s (run %d of %d) ...", what, k + 1, repeat);
        else
            bench_progress ("%s ...", what);
        s_row_t *run = &runs[n];
        *run = *row;
        char err[512];
        int status;
        bench_cpu_t before, after;
        bench_cpu_sample (&before);
        char *text = bench_run_child (path, args, s_timeout (cfg, row), &status, err, sizeof err);
        bench_cpu_sample (&after);
        run->others = bench_cpu_others (&before, &after);
        s_parse_child (text, status, err, run);
        free (text);
        if (!run->ok) {
            *row = *run;
            return;
        }
        n++;
    }
    if (n == 0)
        return; /* interrupted */
    /* Insertion sort by wall time; n is small. */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && runs[j].wall_ns < runs[j - 1].wall_ns; j--) {
            s_row_t tmp = runs[j];
            runs[j] = runs[j - 1];
            runs[j - 1] = tmp;
        }
    *row = runs[(n - 1) / 2];
    row->repeats = n;
    row->wall_min_ns = runs[0].wall_ns;
    row->wall_max_ns = runs[n - 1].wall_ns;
}

static void
s_measure_pm (const s_config_t *cfg, int section, const char *schedule, int workers, long rows,
              long work_us, bool reference)
{
    s_row_t *row = s_new_row (section, S_PM, workers, rows, work_us);
    if (!row)
        return;
    row->schedule = schedule;
    row->reference = reference;
    char what[128];
    bench_format (what, sizeof what, "pm %s schedule, n=%d, %ld rows of a %ld us model", schedule,
                  workers, rows, work_us);
    char n[16], r[32], w[32];
    bench_format (n, sizeof n, "%d", workers);
    bench_format (r, sizeof r, "%ld", rows);
    bench_format (w, sizeof w, "%ld", work_us);
    char *const args[] = { (char *) cfg->self, "--child", "pm", (char *) schedule, n, r, w, NULL };
    s_run_repeated (cfg, row, cfg->self, args, what);
}

static void
s_measure_python (const s_config_t *cfg, int section, s_runner_t runner, int workers, long rows,
                  long work_us, long chunksize)
{
    if (!cfg->python_path[0])
        return;
    s_row_t *row = s_new_row (section, runner, workers, rows, work_us);
    if (!row)
        return;
    row->chunksize = chunksize;
    const char *kind = runner == S_EXECUTOR_SUBMIT ? "executor-submit" : "pool-map";
    char what[128];
    bench_format (what, sizeof what, "python %s, %d workers, %ld rows of a %ld us model", kind,
                  workers, rows, work_us);
    char n[16], r[32], w[32], c[32], cols[16];
    bench_format (n, sizeof n, "%d", workers);
    bench_format (r, sizeof r, "%ld", rows);
    bench_format (w, sizeof w, "%ld", work_us);
    bench_format (c, sizeof c, "%ld", chunksize);
    bench_format (cols, sizeof cols, "%d", S_COLS);
    char *const args[] = { (char *) cfg->python_path,
                           (char *) cfg->script,
                           (char *) kind,
                           "--rows",
                           r,
                           "--workers",
                           n,
                           "--work-us",
                           w,
                           "--cols",
                           cols,
                           "--chunksize",
                           c,
                           NULL };
    s_run_repeated (cfg, row, cfg->python_path, args, what);
}

/* name on PATH (or a path) that we may execute, into out; false if none. */
static bool
s_find_program (const char *name, char *out, size_t size)
{
    if (strchr (name, '/')) {
        bench_format (out, size, "%s", name);
        return access (out, X_OK) == 0;
    }
    const char *path = getenv ("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path; *p;) {
        const char *end = strchr (p, ':');
        size_t len = end ? (size_t) (end - p) : strlen (p);
        if (len > 0 && len < size - strlen (name) - 2) {
            bench_format (out, size, "%.*s/%s", (int) len, p, name);
            if (access (out, X_OK) == 0)
                return true;
        }
        p = end ? end + 1 : p + len;
    }
    out[0] = '\0';
    return false;
}

/* The interpreter and py_sweep_peers.py, or why the Python peers are skipped. */
static void
s_find_python (s_config_t *cfg)
{
    cfg->python_path[0] = '\0';
    if (cfg->no_python) {
        bench_format (cfg->python_skip, sizeof cfg->python_skip, "--no-python");
        return;
    }
    const char *python = cfg->python ? cfg->python : "python3";
    char found[PATH_MAX];
    if (!s_find_program (python, found, sizeof found)) {
        bench_format (cfg->python_skip, sizeof cfg->python_skip, "%s not found", python);
        return;
    }
    if (cfg->script_arg)
        bench_format (cfg->script, sizeof cfg->script, "%s", cfg->script_arg);
    else {
        bench_format (cfg->script, sizeof cfg->script, "%s", cfg->self);
        char *slash = strrchr (cfg->script, '/');
        if (slash)
            bench_format (slash + 1, sizeof cfg->script - (size_t) (slash + 1 - cfg->script),
                          "%s", S_SCRIPT);
        if (access (cfg->script, R_OK) != 0)
            bench_format (cfg->script, sizeof cfg->script, "%s/%s", PM_BENCH_SOURCE_DIR,
                          S_SCRIPT);
    }
    if (access (cfg->script, R_OK) != 0) {
        bench_format (cfg->python_skip, sizeof cfg->python_skip,
                      "%s not found (next to pm-bench-sweep, nor in %s; see --python-script)",
                      S_SCRIPT, PM_BENCH_SOURCE_DIR);
        return;
    }
    bench_format (cfg->python_path, sizeof cfg->python_path, "%s", found);
}

/* 1234567 -> "1,234,567" */
static const char *
s_thousands (double value, char *buf, size_t size)
{
    char digits[64];
    bench_format (digits, sizeof digits, "%.0f", value < 0 ? 0 : value);
    size_t len = strlen (digits), out = 0;
    for (size_t i = 0; i < len && out + 2 < size; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            buf[out++] = ',';
        buf[out++] = digits[i];
    }
    buf[out] = '\0';
    return buf;
}

static void
s_label (const s_row_t *row, char *buf, size_t size)
{
    switch (row->runner) {
    case S_PM:
        bench_format (buf, size, "pm_scatter+pm_gather, %s schedule%s", row->schedule,
                      strcmp (row->schedule, "dynamic") == 0 ? " (default)"
                      : row->reference                      ? " (reference)"
                                                            : "");
        break;
    case S_EXECUTOR_SUBMIT:
        bench_format (buf, size, "python ProcessPoolExecutor.submit per row");
        break;
    case S_POOL_MAP:
        if (row->chunksize > 0)
            bench_format (buf, size, "python Pool.map, chunksize %ld", row->chunksize);
        else if (row->chunksize_used > 0)
            bench_format (buf, size, "python Pool.map, chunksize default (%ld)",
                          row->chunksize_used);
        else
            bench_format (buf, size, "python Pool.map, chunksize default");
        break;
    }
}

static double
s_seconds (const s_row_t *row)
{
    return (double) row->wall_ns / 1e9;
}

static double
s_rows_per_s (const s_row_t *row)
{
    return row->wall_ns ? (double) row->rows / s_seconds (row) : 0;
}

#define S_LABEL_WIDTH 50

/* Other processes took a noticeable share of the machine during the row. */
static bool
s_disturbed (const s_row_t *row)
{
    long cpus = sysconf (_SC_NPROCESSORS_ONLN);
    return row->measured && row->others >= S_NOISY_SHARE * (double) (cpus > 0 ? cpus : 1);
}

/* Prints the rows of a section; returns how many failed. */
static int
s_print_section (const s_config_t *cfg, int section)
{
    int failures = 0;
    const s_row_t *pm_ref = NULL; /* section 2: ratio numerator */
    for (int i = 0; i < s_nrows; i++)
        if (s_rows[i].section == section && s_rows[i].runner == S_PM && s_rows[i].ok
            && strcmp (s_rows[i].schedule, "dynamic") == 0 && s_rows[i].workers == cfg->workers) {
            pm_ref = &s_rows[i];
            break;
        }
    if (section == 1)
        printf ("%-*s %7s %8s %9s %11s  %s\n", S_LABEL_WIDTH, "runner", "workers", "rows",
                "wall s", "efficiency", "goal");
    else
        printf ("%-*s %7s %8s %9s %11s %9s  %s\n", S_LABEL_WIDTH, "runner", "workers", "rows",
                "wall s", "rows/s", "pm/this", "goal");
    for (int i = 0; i < s_nrows; i++) {
        const s_row_t *row = &s_rows[i];
        if (row->section != section)
            continue;
        char label[128], num[64];
        s_label (row, label, sizeof label);
        printf ("%-*s %7d %8ld ", S_LABEL_WIDTH, label, row->workers, row->rows);
        if (!row->ok)
            failures++;
        if (!row->measured) {
            printf ("FAILED: %s\n", row->error);
            continue;
        }
        printf ("%9.3f ", s_seconds (row));
        bool goal = row->runner == S_PM && !row->reference && row->ok;
        if (section == 1) {
            double ideal = (double) row->rows * (double) row->work_us / 1e6 / row->workers;
            double efficiency = ideal / s_seconds (row);
            printf ("%9.1f %%", 100 * efficiency);
            if (goal)
                printf ("  >= %.0f %% %s", 100 * S_GOAL_EFFICIENCY,
                        efficiency >= S_GOAL_EFFICIENCY ? "met" : "MISSED");
        } else {
            double rate = s_rows_per_s (row);
            printf ("%11s", s_thousands (rate, num, sizeof num));
            if (row->runner != S_PM && pm_ref && rate > 0)
                printf (" %8.1fx", s_rows_per_s (pm_ref) / rate);
            else
                printf (" %9s", "");
            if (goal)
                printf ("  >= %s rows/s %s", s_thousands (S_GOAL_ROWS_PER_S, num, sizeof num),
                        rate >= S_GOAL_ROWS_PER_S ? "met" : "MISSED");
        }
        if (!row->ok)
            printf ("  FAILED: %s", row->error);
        if (s_disturbed (row))
            printf ("  [disturbed: others kept %.1f CPU busy]", row->others);
        printf ("\n");
    }
    if (!cfg->python_path[0])
        printf ("python peers: skipped (%s)\n", cfg->python_skip);
    return failures;
}

static void
s_print_repeat (int repeat)
{
    if (repeat > 1)
        printf ("; wall = median of %d runs", repeat);
    printf ("\n");
}

static int
s_print_table (const s_config_t *cfg)
{
    long cpus = sysconf (_SC_NPROCESSORS_ONLN);
    const s_row_t *py = NULL;
    for (int i = 0; i < s_nrows && !py; i++)
        if (s_rows[i].python[0])
            py = &s_rows[i];
    printf ("pm sweep benchmark (%ld CPU%s online; pm: MultiProcessing, embedded coordinator",
            cpus, cpus == 1 ? "" : "s");
    if (py)
        printf ("; python %s, start method %s", py->python, py->start_method);
    printf (")\n");
    printf ("wall = pm_scatter through pm_gather on rank 0 | python: first row handed to the pool "
            "until every result is back (pool start not timed)%s\n",
            cfg->quick ? "  [--quick: numbers are rough]" : "");

    int failures = 0;
    if (cfg->only != 2) {
        double ideal = (double) cfg->rows * (double) cfg->work_us / 1e6 / cfg->workers;
        printf ("\n1. efficiency: %ld rows of a %g ms busy-wait model on %d workers; "
                "efficiency = ideal / wall, ideal = %ld x %g ms / %d = %.3f s",
                cfg->rows, (double) cfg->work_us / 1000, cfg->workers, cfg->rows,
                (double) cfg->work_us / 1000, cfg->workers, ideal);
        s_print_repeat (cfg->repeat[1]);
        failures += s_print_section (cfg, 1);
    }
    if (cfg->only != 1) {
        printf ("\n2. throughput: an empty model (copies its %d inputs) through the scheduler; "
                "pm/this = pm dynamic n=%d rows/s / this runner's",
                S_COLS, cfg->workers);
        s_print_repeat (cfg->repeat[2]);
        failures += s_print_section (cfg, 2);
    }

    /* Per row: the cost each worker paid for one row, and beyond the model
       the overhead; for pm how the rows were shared and the set-up cost.  */
    bool any = false;
    for (int i = 0; i < s_nrows; i++)
        any = any || s_rows[i].measured;
    if (any)
        printf ("\ndetails (per row per worker = wall x workers / rows):\n");
    for (int i = 0; i < s_nrows; i++) {
        const s_row_t *row = &s_rows[i];
        if (!row->measured)
            continue;
        char name[64];
        if (row->runner == S_PM)
            bench_format (name, sizeof name, "%d. pm %s n=%d", row->section, row->schedule,
                          row->workers);
        else if (row->runner == S_POOL_MAP)
            bench_format (name, sizeof name, "%d. python pool-map/%ld", row->section,
                          row->chunksize_used);
        else
            bench_format (name, sizeof name, "%d. python submit", row->section);
        double per_row_us = (double) row->wall_ns * row->workers / 1000.0 / (double) row->rows;
        printf ("  %-24s %9.2f us per row per worker", name, per_row_us);
        if (row->work_us > 0)
            printf (" (overhead %.2f)", per_row_us - (double) row->work_us);
        if (row->runner == S_PM) {
            printf ("; rows per rank %s", row->split[0] ? row->split : "?");
            if (row->runs >= 0)
                printf (" in %ld run%s", row->runs, row->runs == 1 ? "" : "s");
            printf ("; create %.1f ms, destroy %.1f ms", row->create_us / 1000.0,
                    row->destroy_us / 1000.0);
            if (row->backend[0] && strcmp (row->backend, "MultiProcessing") != 0)
                printf ("; backend %s", row->backend);
        }
        if (row->repeats > 1)
            printf ("; median of %d runs, wall %.3f..%.3f s", row->repeats,
                    (double) row->wall_min_ns / 1e9, (double) row->wall_max_ns / 1e9);
        if (row->others >= 0)
            printf ("; others %.2f CPU", row->others);
        printf ("\n");
        if (row->error[0])
            printf ("  %-24s FAILED: %s\n", "", row->error);
    }
    for (int i = 0; i < s_nrows; i++)
        if (s_rows[i].runner == S_PM && s_rows[i].workers > cpus && cpus > 0) {
            printf ("note: n=%d runs %d ranks on %ld CPUs (oversubscribed): with an empty model "
                    "that only adds context switches\n",
                    s_rows[i].workers, s_rows[i].workers, cpus);
            break;
        }
    for (int i = 0; i < s_nrows; i++)
        if (s_disturbed (&s_rows[i])) {
            printf ("note: rows marked 'disturbed' ran while other processes on this machine took "
                    ">= %.0f %% of its CPU time (/proc/stat minus this benchmark's own CPU time, "
                    "children included): their numbers are low; run again on a quiet machine\n",
                    100 * S_NOISY_SHARE);
            break;
        }
    if (cfg->only != 2 && cpus > 0 && cpus <= cfg->workers)
        printf ("note: %d busy workers on %ld CPUs: every other thread (pm's coordinator and "
                "ZeroMQ I/O threads, Python's feeder and result threads, the parent itself) "
                "takes its CPU time from the workers, which lowers every runner's efficiency\n",
                cfg->workers, cpus);
    fflush (stdout);
    return failures;
}

static void
s_usage (FILE *out)
{
    fprintf (out,
             "usage: pm-bench-sweep [--quick | --full] [--rows R] [--work-us US] [--workers N]\n"
             "                      [--throughput-rows R] [--submit-rows R] [--chunksize C]\n"
             "                      [--only efficiency|throughput] [--repeat K] [--no-python]\n"
             "                      [--python PATH] [--python-script PATH] [--timeout S]\n"
             "\n"
             "A parameter sweep through pm_scatter / pm_gather (MultiProcessing, embedded\n"
             "coordinator) next to Python's ProcessPoolExecutor and multiprocessing.Pool,\n"
             "measured in the same run:\n"
             "  1. efficiency of a 1 ms busy-wait model on 2 workers (ideal / wall time),\n"
             "     dynamic and static schedules; goal >= 90 %%\n"
             "  2. rows/s of an empty model through the dynamic scheduler, n=2 and n=4;\n"
             "     goal >= 100,000 rows/s; ratio pm / each Python peer\n"
             "Never fails on the numbers.\n"
             "\n"
             "  --quick               small counts, ~10 s (smoke test; rough numbers)\n"
             "  --full                section 1 with 100,000 rows (the issue's size)\n"
             "  --rows R              section 1 rows (default 10,000; 1,000 with --quick)\n"
             "  --work-us US          section 1 model cost in microseconds (default 1000)\n"
             "  --workers N           workers (pm ranks, pool processes; default 2);\n"
             "                        section 2 also runs pm with 2N ranks\n"
             "  --throughput-rows R   section 2 rows for pm and Pool.map (default 1,000,000;\n"
             "                        100,000 with --quick)\n"
             "  --submit-rows R       section 2 rows for ProcessPoolExecutor.submit\n"
             "                        (default 20,000; 2,000 with --quick)\n"
             "  --chunksize C         section 1 tuned Pool.map chunksize (default: rows\n"
             "                        per ~100 ms, like pm's scheduler target)\n"
             "  --only SECTION        efficiency or throughput\n"
             "  --repeat K            run every configuration K times, show the median\n"
             "                        (default 1 in section 1, 3 in section 2; 1 with --quick)\n"
             "  --no-python           skip the Python peers\n"
             "  --python PATH         interpreter (default python3 on PATH)\n"
             "  --python-script PATH  py_sweep_peers.py (default: next to this binary, then\n"
             "                        the source tree)\n"
             "  --timeout S           seconds allowed per configuration (default from its\n"
             "                        ideal time: 120 + 4 x ideal; 30 + 4 x ideal with --quick)\n"
             "  --help                this text\n"
             "\n"
             "Exit status: 0 when every row was measured (skipped Python peers included),\n"
             "1 when a configuration failed (the table says which and why), 2 on a usage\n"
             "error.\n");
}

int
main (int argc, char *argv[])
{
    /* Internal entry point, re-executed by the driver. */
    if (argc >= 2 && strcmp (argv[1], "--child") == 0) {
        long n = 0, rows = 0, work = 0;
        if (argc == 7 && strcmp (argv[2], "pm") == 0
            && bench_parse_long (argv[4], 1, S_MAX_RANKS, &n)
            && bench_parse_long (argv[5], 1, 1000000000, &rows)
            && bench_parse_long (argv[6], 0, 60000000, &work))
            return s_child_pm (argv[3], (int) n, rows, work);
        fprintf (stderr, "pm-bench-sweep: bad --child arguments\n");
        return 2;
    }

    s_config_t cfg;
    memset (&cfg, 0, sizeof cfg);
    long rows = 0, work = 1000, workers = 2, tput = 0, submit = 0, chunk = 0, timeout = 0,
         repeat = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0) {
            s_usage (stdout);
            return 0;
        } else if (strcmp (arg, "--quick") == 0)
            cfg.quick = true;
        else if (strcmp (arg, "--full") == 0)
            cfg.full = true;
        else if (strcmp (arg, "--no-python") == 0)
            cfg.no_python = true;
        else if (strcmp (arg, "--rows") == 0 && value
                 && bench_parse_long (value, 1, 100000000, &rows))
            i++;
        else if (strcmp (arg, "--work-us") == 0 && value
                 && bench_parse_long (value, 1, 1000000, &work))
            i++;
        else if (strcmp (arg, "--workers") == 0 && value
                 && bench_parse_long (value, 1, S_MAX_RANKS / 2, &workers))
            i++;
        else if (strcmp (arg, "--throughput-rows") == 0 && value
                 && bench_parse_long (value, 1, 100000000, &tput))
            i++;
        else if (strcmp (arg, "--submit-rows") == 0 && value
                 && bench_parse_long (value, 1, 100000000, &submit))
            i++;
        else if (strcmp (arg, "--chunksize") == 0 && value
                 && bench_parse_long (value, 1, 100000000, &chunk))
            i++;
        else if (strcmp (arg, "--repeat") == 0 && value
                 && bench_parse_long (value, 1, S_MAX_REPEAT, &repeat))
            i++;
        else if (strcmp (arg, "--timeout") == 0 && value
                 && bench_parse_long (value, 1, 86400, &timeout))
            i++;
        else if (strcmp (arg, "--only") == 0 && value
                 && (strcmp (value, "efficiency") == 0 || strcmp (value, "throughput") == 0)) {
            cfg.only = strcmp (value, "efficiency") == 0 ? 1 : 2;
            i++;
        } else if (strcmp (arg, "--python") == 0 && value)
            cfg.python = argv[++i];
        else if (strcmp (arg, "--python-script") == 0 && value)
            cfg.script_arg = argv[++i];
        else {
            fprintf (stderr, "pm-bench-sweep: bad argument '%s'\n\n", arg);
            s_usage (stderr);
            return 2;
        }
    }
    if (cfg.quick && cfg.full) {
        fprintf (stderr, "pm-bench-sweep: --quick and --full do not go together\n");
        return 2;
    }
    cfg.work_us = work;
    cfg.workers = (int) workers;
    cfg.rows = rows > 0 ? rows : cfg.full ? 100000 : cfg.quick ? 1000 : 10000;
    cfg.tput_rows = tput > 0 ? tput : cfg.quick ? 100000 : 1000000;
    cfg.submit_rows = submit > 0 ? submit : cfg.quick ? 2000 : 20000;
    cfg.chunksize = chunk > 0 ? chunk : (S_CHUNK_MS * 1000 + work - 1) / work;
    cfg.timeout_s = (int) timeout;
    /* Section 2's runs are short and noisy: the median of 3 by default. */
    cfg.repeat[1] = repeat > 0 ? (int) repeat : 1;
    cfg.repeat[2] = repeat > 0 ? (int) repeat : cfg.quick ? 1 : 3;
    if (!bench_self_path (cfg.self, sizeof cfg.self)) {
        fprintf (stderr, "pm-bench-sweep: readlink /proc/self/exe: %s\n", strerror (errno));
        return 1;
    }
    s_find_python (&cfg);

    /* Children measure the embedded coordinator whatever the shell says;
       a killed configuration leaves no zombies; libpm's ipc sockets go to
       a private directory removed at the end, interrupted or not.        */
    char run_dir[PATH_MAX];
    if (!bench_driver_setup ("pm-bench-sweep", run_dir, sizeof run_dir))
        return 1;

    int w = cfg.workers;
    if (cfg.only != 2) {
        s_measure_pm (&cfg, 1, "dynamic", w, cfg.rows, cfg.work_us, false);
        if (!bench_interrupted)
            s_measure_pm (&cfg, 1, "static", w, cfg.rows, cfg.work_us, false);
        if (!bench_interrupted)
            s_measure_python (&cfg, 1, S_EXECUTOR_SUBMIT, w, cfg.rows, cfg.work_us, 0);
        if (!bench_interrupted)
            s_measure_python (&cfg, 1, S_POOL_MAP, w, cfg.rows, cfg.work_us, 0);
        if (!bench_interrupted)
            s_measure_python (&cfg, 1, S_POOL_MAP, w, cfg.rows, cfg.work_us, cfg.chunksize);
    }
    if (cfg.only != 1 && !bench_interrupted) {
        s_measure_pm (&cfg, 2, "dynamic", w, cfg.tput_rows, 0, false);
        if (!bench_interrupted)
            s_measure_pm (&cfg, 2, "dynamic", 2 * w, cfg.tput_rows, 0, false);
        if (!bench_interrupted)
            s_measure_pm (&cfg, 2, "static", w, cfg.tput_rows, 0, true);
        if (!bench_interrupted)
            s_measure_python (&cfg, 2, S_EXECUTOR_SUBMIT, w, cfg.submit_rows, 0, 0);
        if (!bench_interrupted)
            s_measure_python (&cfg, 2, S_POOL_MAP, w, cfg.tput_rows, 0, 0);
    }
    bench_remove_tree (run_dir, 3);
    bench_progress_clear ();
    if (bench_interrupted) {
        fprintf (stderr, "pm-bench-sweep: interrupted (signal %d)\n", (int) bench_interrupted);
        return 128 + (int) bench_interrupted;
    }
    return s_print_table (&cfg) ? 1 : 0;
}
