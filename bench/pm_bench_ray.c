/*  pm_bench_ray.c — pm's RayIo backend next to "the seed's way" of using
    Ray (Python Ray actors, ray.util.ActorPool.map_unordered), measured in
    the same run against the same Ray cluster.  A benchmark, not a test: it
    prints numbers and never fails on them (see bench/README.md).

      1. join: from the request to all n ranks ready.  pm: the wall time of
         pm_create_parallel_manager ("RayIo", n) and one pm_sync_with_peers
         on rank 0 (the caller; the launcher starts n-1 Ray actors, which
         run ranks 1..n-1).  Peer: a fresh `python3 py_ray_peers.py join`
         that imports ray, calls ray.init and creates n-1 actors that each
         answer one ping (the driver is the peer's "rank 0"); its total
         from spawn to the last answer, and the part after ray.init.
      2. sweep: rows/s of an empty model (it copies its 2 inputs) through
         pm_scatter / pm_gather with the dynamic schedule on n ranks, next
         to ActorPool(n actors).map_unordered with one row per call and
         with chunks of rows per call.

    Process layout, as in pm-bench-sweep: the driver (this program without
    --child) never touches libpm; it re-executes its own binary once per pm
    configuration and runs the Python peer once per peer configuration, each
    in a process group of its own with a deadline (bench_util.h).  RayIo
    starts ranks 1..n-1 by running this same program, with the same
    arguments, in Ray actors with PM_RANK etc. set, so the child is SPMD:

      driver ──spawn──▶ --child join N | --child sweep N ROWS     (rank 0)
                         └─ libpm ─▶ pm_ray_launcher.py ─▶ Ray actors
                                      └─▶ --child ... again        (ranks 1..N-1)
             ──spawn──▶ python py_ray_peers.py join|sweep ...    (ray.init, actors)

    Child → driver protocol, one line each on stdout (times in ns); lines
    of ranks 1..N-1 reach the pipe through Ray's log forwarding, prefixed
    "(pm-rank-R pid=P) ":
      RESULT <what> <count> <ns>
      TIMES <t...>                  absolute CLOCK_MONOTONIC stamps
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
#ifndef PM_BENCH_VENV_PYTHON
#define PM_BENCH_VENV_PYTHON "" /* the source tree's .venv/bin/python */
#endif
#define S_SCRIPT "py_ray_peers.py"
#define S_COLS 2          /* parameters per row, and outputs (the model copies) */
#define S_MAX_RANKS 64
#define S_MAX_SIZES 8     /* group sizes in one run                              */
#define S_MAX_ROWS 64     /* rows of the final table                             */
#define S_MAX_REPEAT 99

/* ---- the model: an empty one, it copies its inputs ----------------------- */

static void *
s_model_build (const pm_model_args_t *args, char *err, size_t err_size)
{
    (void) args;
    (void) err;
    (void) err_size;
    static int s_state; /* no state; non-NULL means built */
    return &s_state;
}

static size_t
s_model_output_names (void *state, const char *const **names)
{
    (void) state;
    static const char *const s_names[S_COLS] = { "x", "y" };
    *names = s_names;
    return S_COLS;
}

static int
s_model_execute (void *state, const double *params, size_t nparams, double *outputs,
                 size_t noutputs)
{
    (void) state;
    for (size_t k = 0; k < noutputs; k++)
        outputs[k] = k < nparams ? params[k] : 0;
    return 0;
}

static void
s_model_destroy (void *state)
{
    (void) state;
}

static double
s_param (size_t row, size_t col)
{
    return (double) row + 0.5 * (double) col;
}

/* ---- child: SPMD, every rank runs this ------------------------------------ */

/* Root: every row is in, once, evaluated, with its inputs copied; per_rank
   gets the rows each rank did.  An error text in why, or NULL.            */
static const char *
s_check (const pm_results_t *results, size_t rows, int ranks, long *per_rank, char *why,
         size_t why_size)
{
    if (pm_results_rows (results) != rows || pm_results_output_count (results) != S_COLS) {
        bench_format (why, why_size,
                      "pm_gather returned %zu rows of %zu outputs, expected %zu of %d",
                      pm_results_rows (results), pm_results_output_count (results), rows, S_COLS);
        return why;
    }
    unsigned char *seen = calloc (rows + 1, 1);
    if (!seen) {
        bench_format (why, why_size, "out of memory");
        return why;
    }
    const char *bad = NULL;
    for (size_t e = 0; e < pm_results_count (results) && !bad; e++) {
        const pm_local_results_t *local = pm_results_get (results, e);
        if (local->process_number >= 0 && local->process_number < ranks)
            per_rank[local->process_number] += (long) local->rows;
        for (size_t i = 0; i < local->rows && !bad; i++) {
            size_t row = local->sample_index[i];
            if (row >= rows || seen[row] || !local->success[i]) {
                bench_format (why, why_size, "row %zu returned twice, out of range or failed", row);
                bad = why;
                break;
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

/* The sweep of a child: every rank scatters (root with the rows) and
   gathers; root checks and reports.  0 or a PM_E* code.                   */
static int
s_child_sweep (pm_manager_t *pm, int ranks, long rows)
{
    int rank = pm_get_rank (pm);
    bool root = rank == 0;
    int rc = 0;
    pm_model_t *model =
        pm_model_new (s_model_build, s_model_output_names, s_model_execute, s_model_destroy);
    if (!model) {
        bench_emit ("ERROR rank %d: pm_model_new failed", rank);
        rc = PM_ENOMEM;
    }
    if (rc == 0 && (rc = pm_set_schedule (pm, PM_SCHEDULE_DYNAMIC)) != 0)
        bench_emit ("ERROR rank %d: pm_set_schedule: %s", rank, pm_strerror (rc));
    /* Root's rows, built before the clock starts (as the Python peer does). */
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
    /* Every rank passes the number of columns (the dynamic schedule sizes a
       non-root rank's chunks from its own cols; see pm-bench-sweep).       */
    if (rc == 0 && (rc = pm_scatter (pm, model, params, root ? (size_t) rows : 0, S_COLS)) != 0)
        bench_emit ("ERROR rank %d: pm_scatter: %s (%s)", rank, pm_strerror (rc),
                    pm_last_error (pm) ? pm_last_error (pm) : "");
    if (rc == 0 && (rc = pm_gather (pm, &results)) != 0)
        bench_emit ("ERROR rank %d: pm_gather: %s (%s)", rank, pm_strerror (rc),
                    pm_last_error (pm) ? pm_last_error (pm) : "");
    uint64_t wall = bench_now_ns () - start;
    if (rc == 0 && root) {
        long per_rank[S_MAX_RANKS] = { 0 };
        char why[256];
        const char *bad = s_check (results, (size_t) rows, ranks, per_rank, why, sizeof why);
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
            bench_emit ("RESULT sweep %ld %" PRIu64, rows, wall);
        }
    }
    pm_results_destroy (&results);
    pm_model_destroy (&model);
    free (params);
    return rc;
}

/* --child join N | --child sweep N ROWS: create the RayIo group, one
   barrier (root times both), then the sweep if asked.                     */
static int
s_child (const char *mode, int ranks, long rows)
{
    uint64_t t0 = bench_now_ns ();
    pm_manager_t *pm = pm_create_parallel_manager ("RayIo", ranks, NULL);
    uint64_t t1 = bench_now_ns ();
    if (!pm) {
        const char *why = pm_last_error (NULL);
        bench_emit ("ERROR pm_create_parallel_manager (\"RayIo\", %d): %s: %s", ranks,
                    pm_strerror (pm_last_error_code (NULL)), why ? why : "");
        return 1;
    }
    int rank = pm_get_rank (pm);
    bool root = rank == 0;
    int rc = pm_sync_with_peers (pm);
    uint64_t t2 = bench_now_ns ();
    if (rc != 0)
        bench_emit ("ERROR rank %d: pm_sync_with_peers: %s (%s)", rank, pm_strerror (rc),
                    pm_last_error (pm) ? pm_last_error (pm) : "");
    if (rc == 0 && pm_number_of_worker_processes (pm) != ranks) {
        if (root)
            bench_emit ("ERROR asked for %d ranks, the manager has %d", ranks,
                        pm_number_of_worker_processes (pm));
        rc = PM_EINVAL;
    }
    if (root) {
        const char *backend = pm_backend_name (pm);
        bench_emit ("INFO backend %s", backend ? backend : "?");
        bench_emit ("INFO create_us %" PRIu64, (t1 - t0) / 1000);
        bench_emit ("TIMES %" PRIu64, t2);
        if (rc == 0 && strcmp (mode, "join") == 0)
            bench_emit ("RESULT join %d %" PRIu64, ranks, t2 - t0);
    }
    if (rc == 0 && strcmp (mode, "sweep") == 0)
        rc = s_child_sweep (pm, ranks, rows);
    uint64_t t3 = bench_now_ns ();
    pm_destroy (&pm);
    if (root)
        bench_emit ("INFO destroy_us %" PRIu64, (bench_now_ns () - t3) / 1000);
    return rc == 0 ? 0 : 1;
}

/* ---- driver ------------------------------------------------------------- */

typedef enum {
    S_PM_JOIN,     /* pm create + barrier                                  */
    S_PEER_JOIN,   /* python: fresh interpreter, ray.init, actors + ping   */
    S_PM_SWEEP,    /* pm_scatter + pm_gather, dynamic                      */
    S_PEER_ROWS,   /* ActorPool.map_unordered, one row per call            */
    S_PEER_CHUNKS, /* ActorPool.map_unordered, chunks of rows per call     */
} s_runner_t;

/* One run of a configuration. */
typedef struct {
    bool measured;          /* a number came back                              */
    bool ok;                /* measured, and no error reported                 */
    char error[512];        /* why not                                         */
    uint64_t ns;            /* join: pm create+barrier / peer spawn->ready;
                               sweep: wall                                     */
    uint64_t post_init_ns;  /* peer join: after ray.init                       */
    uint64_t import_ns;     /* peer join: spawn -> import ray done             */
    uint64_t init_ns;       /* peer join: ray.init                             */
    uint64_t spawn_ns;      /* pm join: spawn -> all joined                    */
    long create_us, destroy_us; /* pm, rank 0; -1 n/a                          */
    char backend[32];
    char split[256];        /* pm sweep: rows per rank                         */
    char python[256];       /* peer: version and path                          */
    char ray[32];           /* peer: Ray's version                             */
    double busy;            /* CPUs the whole machine kept busy meanwhile      */
} s_run_t;

typedef struct {
    int section;            /* 1 join, 2 sweep                                 */
    s_runner_t runner;
    int ranks;              /* n                                               */
    int actors;             /* Ray actors started for it                       */
    long rows, chunk;       /* sweep                                           */
    s_run_t run;            /* the median run's details                        */
    int repeats;
    uint64_t min_ns, max_ns;
    uint64_t post_init_ns;  /* peer join: median of its own                    */
} s_row_t;

typedef struct {
    bool quick;
    int only;               /* 0 both sections, else 1 or 2                    */
    int sizes[S_MAX_SIZES];
    int nsizes;
    long rows;              /* pm sweep and the chunked peer                   */
    long peer_rows;         /* the per-row peer                                */
    long chunk;
    int repeat;
    int timeout_s;          /* per configuration; 0 = from the work            */
    long settle_ms;         /* pause before each configuration                 */
    char python[PATH_MAX];
    char script[PATH_MAX];
    char self[PATH_MAX];
} s_config_t;

static s_row_t s_rows[S_MAX_ROWS];
static int s_nrows;

static int
s_timeout (const s_config_t *cfg, const s_row_t *row)
{
    if (cfg->timeout_s > 0)
        return cfg->timeout_s;
    int base = cfg->quick ? 60 : 120; /* the launcher waits 60 s for resources */
    if (row->runner == S_PEER_ROWS)
        return base + (int) (row->rows / 200);   /* ~1,000 rows/s on 2 CPUs */
    return base + (int) (row->rows / 10000);
}

/* Lines of ranks 1..N-1 come through Ray's log forwarding as
   "(pm-rank-R pid=P) text": the text.                                     */
static const char *
s_strip_prefix (const char *line)
{
    if (line[0] == '(') {
        const char *end = strstr (line, ") ");
        if (end)
            return end + 2;
    }
    return line;
}

static void
s_parse_child (const s_row_t *row, const char *text, int status, const char *err,
               uint64_t spawned, s_run_t *run)
{
    char error[512] = "";
    char buf[1024];
    uint64_t t[4];
    for (const char *cursor = text; bench_next_line (&cursor, buf, sizeof buf);) {
        const char *line = s_strip_prefix (buf);
        char what[32];
        long count;
        uint64_t ns;
        if (line == buf && sscanf (line, "RESULT %31s %ld %" SCNu64, what, &count, &ns) == 3) {
            long expected = row->section == 2            ? row->rows
                            : row->runner == S_PM_JOIN ? row->ranks
                                                       : row->actors;
            if (count != expected) {
                if (!error[0])
                    bench_format (error, sizeof error, "reported %ld, expected %ld", count,
                                  expected);
            } else if (row->runner == S_PEER_JOIN)
                run->post_init_ns = ns;
            else {
                run->ns = ns;
                run->measured = true;
            }
        } else if (line == buf && row->runner == S_PEER_JOIN
                   && sscanf (line, "TIMES %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64, &t[0],
                              &t[1], &t[2], &t[3])
                          == 4) {
            if (t[0] >= spawned && t[3] >= t[2] && t[2] >= t[1] && t[1] >= t[0]) {
                run->ns = t[3] - spawned;
                run->import_ns = t[1] - spawned;
                run->init_ns = t[2] - t[1];
                run->measured = true;
            } else if (!error[0])
                bench_format (error, sizeof error, "timestamps out of order");
        } else if (line == buf && row->runner != S_PEER_JOIN
                   && sscanf (line, "TIMES %" SCNu64, &t[0]) == 1) {
            if (t[0] >= spawned)
                run->spawn_ns = t[0] - spawned;
        } else if (strncmp (line, "INFO backend ", 13) == 0)
            bench_format (run->backend, sizeof run->backend, "%s", line + 13);
        else if (strncmp (line, "INFO split ", 11) == 0)
            bench_format (run->split, sizeof run->split, "%s", line + 11);
        else if (strncmp (line, "INFO python ", 12) == 0)
            bench_format (run->python, sizeof run->python, "%s", line + 12);
        else if (strncmp (line, "INFO ray ", 9) == 0)
            bench_format (run->ray, sizeof run->ray, "%s", line + 9);
        else if (sscanf (line, "INFO create_us %ld", &run->create_us) == 1
                 || sscanf (line, "INFO destroy_us %ld", &run->destroy_us) == 1)
            ;
        else if (strncmp (line, "ERROR ", 6) == 0 && !error[0])
            bench_format (error, sizeof error, "%s%s", line == buf ? "" : "other rank: ",
                          line + 6);
    }
    if (run->measured && row->runner == S_PEER_JOIN && !run->post_init_ns && !error[0])
        bench_format (error, sizeof error, "no RESULT line");
    if (!error[0] && err && err[0])
        bench_format (error, sizeof error, "%s", err);
    if (!error[0] && status != 0)
        bench_describe_status (status, error, sizeof error);
    /* Measured but with an error (a rank failed, the results were wrong,
       the process did not end well): the number is suspect, the row fails. */
    run->ok = run->measured && !error[0];
    if (!run->ok)
        bench_format (run->error, sizeof run->error, "%s",
                      error[0] ? error : "no result reported");
}

static int
s_cmp_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

/* Runs a configuration cfg->repeat times (path args...) and keeps the
   median; the first failed run ends the row.                              */
static void
s_run_repeated (const s_config_t *cfg, s_row_t *row, const char *path, char *const args[],
                const char *what)
{
    s_run_t runs[S_MAX_REPEAT];
    uint64_t post[S_MAX_REPEAT];
    int n = 0;
    for (int k = 0; k < cfg->repeat && !bench_interrupted; k++) {
        if (cfg->repeat > 1)
            bench_progress ("%s (run %d of %d) ...", what, k + 1, cfg->repeat);
        else
            bench_progress ("%s ...", what);
        /* Let the previous configuration's actors and workers go away. */
        if (cfg->settle_ms > 0)
            usleep ((useconds_t) cfg->settle_ms * 1000u);
        s_run_t *run = &runs[n];
        memset (run, 0, sizeof *run);
        run->create_us = run->destroy_us = -1;
        char err[512];
        int status;
        bench_cpu_t before, after;
        bench_cpu_sample (&before);
        uint64_t spawned = bench_now_ns ();
        char *text = bench_run_child (path, args, s_timeout (cfg, row), &status, err, sizeof err);
        bench_cpu_sample (&after);
        run->busy = before.machine_s >= 0 && after.machine_s >= 0
                        ? (after.machine_s - before.machine_s)
                              / ((double) (after.wall_ns - before.wall_ns) / 1e9)
                        : -1;
        s_parse_child (row, text, status, err, spawned, run);
        free (text);
        if (!run->ok) {
            row->run = *run;
            return;
        }
        post[n] = run->post_init_ns;
        n++;
    }
    if (n == 0)
        return; /* interrupted */
    /* Insertion sort by time; n is small. */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && runs[j].ns < runs[j - 1].ns; j--) {
            s_run_t tmp = runs[j];
            runs[j] = runs[j - 1];
            runs[j - 1] = tmp;
        }
    qsort (post, (size_t) n, sizeof *post, s_cmp_u64);
    row->run = runs[(n - 1) / 2];
    row->repeats = n;
    row->min_ns = runs[0].ns;
    row->max_ns = runs[n - 1].ns;
    row->post_init_ns = post[(n - 1) / 2];
}

static s_row_t *
s_new_row (int section, s_runner_t runner, int ranks, int actors, long rows, long chunk)
{
    if (s_nrows >= S_MAX_ROWS)
        return NULL;
    s_row_t *row = &s_rows[s_nrows++];
    memset (row, 0, sizeof *row);
    row->section = section;
    row->runner = runner;
    row->ranks = ranks;
    row->actors = actors;
    row->rows = rows;
    row->chunk = chunk;
    row->run.create_us = row->run.destroy_us = -1;
    return row;
}

static void
s_measure_pm (const s_config_t *cfg, int section, int ranks, long rows)
{
    s_row_t *row = s_new_row (section, section == 1 ? S_PM_JOIN : S_PM_SWEEP, ranks, ranks - 1,
                              section == 1 ? 0 : rows, 0);
    if (!row)
        return;
    char what[128], n[16], r[32];
    bench_format (n, sizeof n, "%d", ranks);
    bench_format (r, sizeof r, "%ld", rows);
    if (section == 1) {
        bench_format (what, sizeof what, "pm RayIo join, n=%d", ranks);
        char *const args[] = { (char *) cfg->self, "--child", "join", n, NULL };
        s_run_repeated (cfg, row, cfg->self, args, what);
    } else {
        bench_format (what, sizeof what, "pm RayIo sweep, n=%d, %ld rows", ranks, rows);
        char *const args[] = { (char *) cfg->self, "--child", "sweep", n, r, NULL };
        s_run_repeated (cfg, row, cfg->self, args, what);
    }
}

static void
s_measure_peer (const s_config_t *cfg, s_runner_t runner, int ranks, long rows, long chunk)
{
    /* join: the driver is the peer's rank 0, as pm's caller is; the sweep:
       n actors do the work, as pm's n ranks do (rank 0 pulls rows too).  */
    int actors = runner == S_PEER_JOIN ? ranks - 1 : ranks;
    s_row_t *row =
        s_new_row (runner == S_PEER_JOIN ? 1 : 2, runner, ranks, actors, rows, chunk);
    if (!row)
        return;
    char what[128], a[16], r[32], c[32];
    bench_format (a, sizeof a, "%d", actors);
    bench_format (r, sizeof r, "%ld", rows);
    bench_format (c, sizeof c, "%ld", chunk);
    char *python = (char *) cfg->python, *script = (char *) cfg->script;
    if (runner == S_PEER_JOIN) {
        bench_format (what, sizeof what, "python ray join, %d actor%s", actors,
                      actors == 1 ? "" : "s");
        char *const args[] = { python, script, "join", "--actors", a, NULL };
        s_run_repeated (cfg, row, python, args, what);
    } else {
        bench_format (what, sizeof what, "python ray ActorPool, %d actors, %ld rows%s", actors,
                      rows, chunk ? " in chunks" : "");
        char *const args[] = { python, script, "sweep", "--actors", a, "--rows", r, "--chunk", c,
                               NULL };
        s_run_repeated (cfg, row, python, args, what);
    }
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

static double
s_rate (const s_row_t *row)
{
    return row->run.ns ? (double) row->rows / ((double) row->run.ns / 1e9) : 0;
}

static const s_row_t *
s_find (s_runner_t runner, int ranks)
{
    for (int i = 0; i < s_nrows; i++)
        if (s_rows[i].runner == runner && s_rows[i].ranks == ranks && s_rows[i].run.ok)
            return &s_rows[i];
    return NULL;
}

#define S_LABEL_WIDTH 54

static void
s_label (const s_row_t *row, char *buf, size_t size)
{
    char num[32];
    switch (row->runner) {
    case S_PM_JOIN:
        bench_format (buf, size, "pm: pm_create_parallel_manager + 1 barrier");
        break;
    case S_PEER_JOIN:
        bench_format (buf, size, "ray: fresh python, start -> actors answered");
        break;
    case S_PM_SWEEP:
        bench_format (buf, size, "pm: pm_scatter+pm_gather, dynamic schedule");
        break;
    case S_PEER_ROWS:
        bench_format (buf, size, "ray: ActorPool.map_unordered, 1 row per call");
        break;
    case S_PEER_CHUNKS:
        bench_format (buf, size, "ray: ActorPool.map_unordered, %s rows per call",
                      s_thousands ((double) row->chunk, num, sizeof num));
        break;
    }
}

/* Prints the rows of a section; returns how many failed. */
static int
s_print_section (int section)
{
    int failures = 0;
    if (section == 1)
        printf ("%-*s %5s %6s %8s %8s\n", S_LABEL_WIDTH, "runner", "ranks", "actors", "time s",
                "pm/this");
    else
        printf ("%-*s %5s %6s %9s %8s %11s %8s\n", S_LABEL_WIDTH, "runner", "ranks", "actors",
                "rows", "wall s", "rows/s", "pm/this");
    int last_ranks = 0;
    for (int i = 0; i < s_nrows; i++) {
        const s_row_t *row = &s_rows[i];
        if (row->section != section)
            continue;
        if (last_ranks && row->ranks != last_ranks)
            printf ("\n");
        last_ranks = row->ranks;
        char label[128], num[64], ranks[16];
        s_label (row, label, sizeof label);
        bench_format (ranks, sizeof ranks, "n=%d", row->ranks);
        printf ("%-*s %5s %6d ", S_LABEL_WIDTH, label, ranks, row->actors);
        if (section == 2)
            printf ("%9s ", s_thousands ((double) row->rows, num, sizeof num));
        if (!row->run.ok)
            failures++;
        if (!row->run.measured) {
            printf ("FAILED: %s\n", row->run.error);
            continue;
        }
        if (section == 1) {
            const s_row_t *pm = s_find (S_PM_JOIN, row->ranks);
            printf ("%8.3f", (double) row->run.ns / 1e9);
            if (row->runner != S_PM_JOIN && pm && row->run.ns)
                printf (" %7.2fx", (double) pm->run.ns / (double) row->run.ns);
            if (!row->run.ok)
                printf ("  FAILED: %s", row->run.error);
            printf ("\n");
            if (row->runner == S_PEER_JOIN && row->run.ok) {
                printf ("%-*s %5s %6d %8.3f", S_LABEL_WIDTH,
                        "  of which after ray.init (actors + ping)", ranks, row->actors,
                        (double) row->post_init_ns / 1e9);
                if (pm && row->post_init_ns)
                    printf (" %7.2fx", (double) pm->run.ns / (double) row->post_init_ns);
                printf ("\n");
            }
        } else {
            const s_row_t *pm = s_find (S_PM_SWEEP, row->ranks);
            double rate = s_rate (row);
            printf ("%8.3f %11s", (double) row->run.ns / 1e9, s_thousands (rate, num, sizeof num));
            if (row->runner != S_PM_SWEEP && pm && rate > 0)
                printf (" %7.1fx", s_rate (pm) / rate);
            if (!row->run.ok)
                printf ("  FAILED: %s", row->run.error);
            printf ("\n");
        }
    }
    return failures;
}

static int
s_print_table (const s_config_t *cfg)
{
    long cpus = sysconf (_SC_NPROCESSORS_ONLN);
    const char *ray = NULL, *python = NULL;
    for (int i = 0; i < s_nrows && !ray; i++)
        if (s_rows[i].run.ray[0]) {
            ray = s_rows[i].run.ray;
            python = s_rows[i].run.python;
        }
    const char *address = getenv ("RAY_ADDRESS");
    const char *jobs = getenv ("PM_RAY_JOBS_URL");
    printf ("pm Ray benchmark (%ld CPU%s online; Ray %s at %s%s; python %s)\n", cpus,
            cpus == 1 ? "" : "s", ray ? ray : "?", address && *address ? address : "auto",
            getenv ("RAY_AUTH_TOKEN") ? ", token auth" : "", python ? python : cfg->python);
    printf ("pm: RayIo, coordinator embedded in rank 0 on tcp, launcher %s | "
            "ray: \"the seed's way\", Python Ray actors (num_cpus=1) and ActorPool.map_unordered"
            "%s\n",
            jobs && *jobs ? "submitted through the Jobs API" : "run here by PM_PYTHON",
            cfg->quick ? "  [--quick: numbers are rough]" : "");
    const char *median = cfg->repeat > 1 ? "; median of runs" : "";
    int failures = 0;
    if (cfg->only != 2) {
        printf ("\n1. join: from the request to all n ranks ready; rank 0 is pm's caller / the "
                "Python driver, so both start n-1 actors; pm/this = pm time / this time (< 1: pm "
                "faster)%s\n",
                median);
        printf ("   pm: create + barrier on rank 0 (includes the launcher's python start, import "
                "ray, ray.init, placement group, actors, ranks' start)\n");
        printf ("   ray: spawn of `python %s join` -> every actor answered a ping (includes "
                "interpreter start, import ray, ray.init)\n",
                S_SCRIPT);
        failures += s_print_section (1);
    }
    if (cfg->only != 1) {
        printf ("\n2. sweep: an empty model (copies its %d inputs), rows/s from the first row "
                "handed out until every result is back (start-up not timed); n workers: pm's n "
                "ranks (rank 0 pulls rows too), n actors; pm/this = pm rows/s / this rows/s "
                "(> 1: pm faster)%s\n",
                S_COLS, median);
        failures += s_print_section (2);
    }

    bool any = false;
    for (int i = 0; i < s_nrows; i++)
        any = any || s_rows[i].run.measured;
    if (any)
        printf ("\ndetails:\n");
    for (int i = 0; i < s_nrows; i++) {
        const s_row_t *row = &s_rows[i];
        const s_run_t *run = &row->run;
        if (!run->measured)
            continue;
        char name[64];
        static const char *const s_names[] = { "pm join", "ray join", "pm sweep", "ray rows",
                                               "ray chunks" };
        bench_format (name, sizeof name, "%d. %s n=%d", row->section, s_names[row->runner],
                      row->ranks);
        printf ("  %-18s", name);
        switch (row->runner) {
        case S_PM_JOIN:
        case S_PM_SWEEP:
            printf (" create %.3f s, destroy %.3f s", run->create_us / 1e6, run->destroy_us / 1e6);
            if (run->spawn_ns)
                printf (", spawn -> joined %.3f s", (double) run->spawn_ns / 1e9);
            if (run->split[0])
                printf ("; rows per rank %s", run->split);
            if (run->backend[0] && strcmp (run->backend, "RayIo") != 0)
                printf ("; backend %s", run->backend);
            break;
        case S_PEER_JOIN:
            printf (" python start + import ray %.3f s, ray.init %.3f s, actors + ping %.3f s",
                    (double) run->import_ns / 1e9, (double) run->init_ns / 1e9,
                    (double) run->post_init_ns / 1e9);
            break;
        case S_PEER_ROWS:
        case S_PEER_CHUNKS:
            printf (" %.1f us per row per worker", (double) run->ns * row->ranks / 1e3
                                                       / (double) row->rows);
            break;
        }
        if (row->repeats > 1)
            printf ("; %d runs, %.3f..%.3f s", row->repeats, (double) row->min_ns / 1e9,
                    (double) row->max_ns / 1e9);
        if (run->busy >= 0)
            printf ("; machine busy %.2f CPU", run->busy);
        printf ("\n");
        if (run->error[0])
            printf ("  %-18s FAILED: %s\n", "", run->error);
    }
    for (int k = 0; k < cfg->nsizes; k++)
        if (cpus > 0 && cfg->sizes[k] > cpus) {
            printf ("note: n=%d runs %d workers (and Ray's own daemons) on %ld CPUs: "
                    "oversubscribed\n",
                    cfg->sizes[k], cfg->sizes[k], cpus);
            break;
        }
    printf ("note: \"machine busy\" counts every process (Ray's raylet, GCS and workers belong "
            "to the head, not to this benchmark)\n");
    fflush (stdout);
    return failures;
}

static void
s_usage (FILE *out)
{
    fprintf (out,
             "usage: pm-bench-ray [--quick] [--ranks LIST] [--rows R] [--peer-rows R]\n"
             "                    [--chunk C] [--only join|sweep] [--repeat K] [--settle-ms MS]\n"
             "                    [--python PATH] [--python-script PATH] [--timeout S]\n"
             "\n"
             "pm's RayIo backend next to Python Ray actors and ActorPool.map_unordered (the\n"
             "seed's way), measured in the same run against the Ray cluster at RAY_ADDRESS\n"
             "(RAY_AUTH_MODE / RAY_AUTH_TOKEN as the cluster needs):\n"
             "  1. join: pm_create_parallel_manager (\"RayIo\", n) + one barrier, next to a\n"
             "     fresh Python driver starting n-1 actors that answer one ping\n"
             "  2. sweep: rows/s of an empty model through pm_scatter/pm_gather (dynamic), next\n"
             "     to ActorPool(n actors).map_unordered, one row and C rows per call\n"
             "Never fails on the numbers.\n"
             "\n"
             "  --quick               1 run each, small sweeps (smoke test; rough numbers)\n"
             "  --ranks LIST          group sizes, comma-separated (default 2,4; 2..%d)\n"
             "  --rows R              rows for pm and the chunked peer (default 1,000,000;\n"
             "                        100,000 with --quick)\n"
             "  --peer-rows R         rows for the one-row-per-call peer (default 5,000;\n"
             "                        500 with --quick)\n"
             "  --chunk C             rows per call of the chunked peer (default 1,000)\n"
             "  --only SECTION        join or sweep\n"
             "  --repeat K            runs per configuration, median shown (default 3;\n"
             "                        1 with --quick)\n"
             "  --settle-ms MS        pause before each run, so the previous run's actors\n"
             "                        are gone (default 500)\n"
             "  --python PATH         the Python with ray, for the peers and as PM_PYTHON\n"
             "                        (default $PM_PYTHON, else %s, else python3)\n"
             "  --python-script PATH  py_ray_peers.py (default: next to this binary, then\n"
             "                        the source tree)\n"
             "  --timeout S           seconds allowed per run (default 120 + the work;\n"
             "                        60 + the work with --quick)\n"
             "  --help                this text\n"
             "\n"
             "Exit status: 0 when every row was measured, 1 when a configuration failed\n"
             "(the table says which and why), 2 on a usage error.\n",
             S_MAX_RANKS, PM_BENCH_VENV_PYTHON[0] ? PM_BENCH_VENV_PYTHON : "(no .venv)");
}

/* "2,4" into cfg->sizes; false on a bad list. */
static bool
s_parse_sizes (const char *text, s_config_t *cfg)
{
    char buf[256];
    bench_format (buf, sizeof buf, "%s", text);
    cfg->nsizes = 0;
    for (char *save = NULL, *tok = strtok_r (buf, ",", &save); tok;
         tok = strtok_r (NULL, ",", &save)) {
        long n;
        if (cfg->nsizes >= S_MAX_SIZES || !bench_parse_long (tok, 2, S_MAX_RANKS, &n))
            return false;
        cfg->sizes[cfg->nsizes++] = (int) n;
    }
    return cfg->nsizes > 0;
}

/* The interpreter (--python, $PM_PYTHON, the source tree's .venv, python3)
   and py_ray_peers.py (next to this binary, then the source tree).        */
static void
s_find_python (s_config_t *cfg, const char *python_arg, const char *script_arg)
{
    const char *env = getenv ("PM_PYTHON");
    const char *python = python_arg                                       ? python_arg
                         : env && *env                                    ? env
                         : PM_BENCH_VENV_PYTHON[0] && access (PM_BENCH_VENV_PYTHON, X_OK) == 0
                             ? PM_BENCH_VENV_PYTHON
                             : "python3";
    bench_format (cfg->python, sizeof cfg->python, "%s", python);
    if (script_arg) {
        bench_format (cfg->script, sizeof cfg->script, "%s", script_arg);
        return;
    }
    bench_format (cfg->script, sizeof cfg->script, "%s", cfg->self);
    char *slash = strrchr (cfg->script, '/');
    if (slash)
        bench_format (slash + 1, sizeof cfg->script - (size_t) (slash + 1 - cfg->script), "%s",
                      S_SCRIPT);
    if (access (cfg->script, R_OK) != 0)
        bench_format (cfg->script, sizeof cfg->script, "%s/%s", PM_BENCH_SOURCE_DIR, S_SCRIPT);
}

int
main (int argc, char *argv[])
{
    /* Internal entry point: rank 0 re-executed by the driver, and ranks
       1..N-1 started by Ray actors with the same arguments.               */
    if (argc >= 2 && strcmp (argv[1], "--child") == 0) {
        long n = 0, rows = 0;
        if (argc == 4 && strcmp (argv[2], "join") == 0
            && bench_parse_long (argv[3], 2, S_MAX_RANKS, &n))
            return s_child ("join", (int) n, 0);
        if (argc == 5 && strcmp (argv[2], "sweep") == 0
            && bench_parse_long (argv[3], 2, S_MAX_RANKS, &n)
            && bench_parse_long (argv[4], 1, 1000000000, &rows))
            return s_child ("sweep", (int) n, rows);
        fprintf (stderr, "pm-bench-ray: bad --child arguments\n");
        return 2;
    }

    s_config_t cfg;
    memset (&cfg, 0, sizeof cfg);
    long rows = 0, peer_rows = 0, chunk = 1000, timeout = 0, repeat = 0, settle = 500;
    const char *python_arg = NULL, *script_arg = NULL, *sizes = "2,4";
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0) {
            s_usage (stdout);
            return 0;
        } else if (strcmp (arg, "--quick") == 0)
            cfg.quick = true;
        else if (strcmp (arg, "--ranks") == 0 && value)
            sizes = argv[++i];
        else if (strcmp (arg, "--rows") == 0 && value
                 && bench_parse_long (value, 1, 100000000, &rows))
            i++;
        else if (strcmp (arg, "--peer-rows") == 0 && value
                 && bench_parse_long (value, 1, 100000000, &peer_rows))
            i++;
        else if (strcmp (arg, "--chunk") == 0 && value
                 && bench_parse_long (value, 1, 100000000, &chunk))
            i++;
        else if (strcmp (arg, "--repeat") == 0 && value
                 && bench_parse_long (value, 1, S_MAX_REPEAT, &repeat))
            i++;
        else if (strcmp (arg, "--settle-ms") == 0 && value
                 && bench_parse_long (value, 0, 60000, &settle))
            i++;
        else if (strcmp (arg, "--timeout") == 0 && value
                 && bench_parse_long (value, 1, 86400, &timeout))
            i++;
        else if (strcmp (arg, "--only") == 0 && value
                 && (strcmp (value, "join") == 0 || strcmp (value, "sweep") == 0)) {
            cfg.only = strcmp (value, "join") == 0 ? 1 : 2;
            i++;
        } else if (strcmp (arg, "--python") == 0 && value)
            python_arg = argv[++i];
        else if (strcmp (arg, "--python-script") == 0 && value)
            script_arg = argv[++i];
        else {
            fprintf (stderr, "pm-bench-ray: bad argument '%s'\n\n", arg);
            s_usage (stderr);
            return 2;
        }
    }
    if (!s_parse_sizes (sizes, &cfg)) {
        fprintf (stderr, "pm-bench-ray: --ranks '%s': sizes in 2..%d, at most %d of them\n", sizes,
                 S_MAX_RANKS, S_MAX_SIZES);
        return 2;
    }
    cfg.rows = rows > 0 ? rows : cfg.quick ? 100000 : 1000000;
    cfg.peer_rows = peer_rows > 0 ? peer_rows : cfg.quick ? 500 : 5000;
    cfg.chunk = chunk;
    cfg.repeat = repeat > 0 ? (int) repeat : cfg.quick ? 1 : 3;
    cfg.timeout_s = (int) timeout;
    cfg.settle_ms = settle;
    if (!bench_self_path (cfg.self, sizeof cfg.self)) {
        fprintf (stderr, "pm-bench-ray: readlink /proc/self/exe: %s\n", strerror (errno));
        return 1;
    }
    s_find_python (&cfg, python_arg, script_arg);
    /* One interpreter for both sides: pm's launcher runs under PM_PYTHON. */
    setenv ("PM_PYTHON", cfg.python, 1);
    /* bench_driver_setup makes a private TMPDIR; Ray finds the cluster of
       RAY_ADDRESS=auto under $RAY_TMPDIR, else $TMPDIR: keep it where it was. */
    if (!getenv ("RAY_TMPDIR")) {
        const char *tmp = getenv ("TMPDIR");
        setenv ("RAY_TMPDIR", tmp && *tmp ? tmp : "/tmp", 1);
    }
    char run_dir[PATH_MAX];
    if (!bench_driver_setup ("pm-bench-ray", run_dir, sizeof run_dir))
        return 1;

    for (int k = 0; k < cfg.nsizes && cfg.only != 2 && !bench_interrupted; k++) {
        s_measure_pm (&cfg, 1, cfg.sizes[k], 0);
        if (!bench_interrupted)
            s_measure_peer (&cfg, S_PEER_JOIN, cfg.sizes[k], 0, 0);
    }
    for (int k = 0; k < cfg.nsizes && cfg.only != 1 && !bench_interrupted; k++) {
        s_measure_pm (&cfg, 2, cfg.sizes[k], cfg.rows);
        if (!bench_interrupted)
            s_measure_peer (&cfg, S_PEER_ROWS, cfg.sizes[k], cfg.peer_rows, 0);
        if (!bench_interrupted)
            s_measure_peer (&cfg, S_PEER_CHUNKS, cfg.sizes[k], cfg.rows, cfg.chunk);
    }
    bench_remove_tree (run_dir, 3);
    bench_progress_clear ();
    if (bench_interrupted) {
        fprintf (stderr, "pm-bench-ray: interrupted (signal %d)\n", (int) bench_interrupted);
        return 128 + (int) bench_interrupted;
    }
    return s_print_table (&cfg) ? 1 : 0;
}
