/*  pm_bench_mpi.c — latency of pm's barrier and 8-byte allreduce on the MPI
    backend, next to the raw MPI calls measured in the same processes, and
    next to pm's own coordinator for the same number of ranks.  A benchmark,
    not a test: it prints numbers and never fails on them (see
    bench/README.md for how to read the table).

    Three ways to run it:

      pm-bench-mpi [--driver] [...]     the driver (the default outside an
                                        MPI launch): runs everything below
                                        for n = 2 and 4 and prints one table
      mpirun -np N pm-bench-mpi [...]   one MPI job: raw MPI and pm on MPI in
                                        the same processes, interleaved in
                                        blocks; rank 0 prints a table for N
      pm-bench-mpi --child coord N ITERATIONS WARMUP
                                        pm's coordinator: MultiProcessing
                                        with an embedded coordinator (or,
                                        started by pm-run -n N, pm-run's)

      driver ──spawn──▶ mpirun -np N pm-bench-mpi --machine ...
             ──spawn──▶ pm-bench-mpi --child coord N ...
             ──spawn──▶ pm-run -n N pm-bench-mpi --child coord N ...

    MPI initialisation: the MPI job calls MPI_Init itself, before
    pm_create_parallel_manager, because it makes raw MPI calls before and
    after pm's.  pm's MPI module (mpi/pm_mpi_module.c) then sees MPI already
    initialised and leaves MPI_Finalize to the program, which calls it after
    pm_destroy.  The module switches MPI_COMM_WORLD to MPI_ERRORS_RETURN,
    which the raw calls share: they check their return codes.

    The driver never initialises MPI and never touches libpm's collectives:
    the coordinator child forks inside pm_create_parallel_manager, and an
    MPI library must not be initialised in a process that forks.

    Child → driver protocol, one line each on stdout (times in nanoseconds):
      RESULT <op> <path> <count> <p50> <p99> <mean> <min> <max>
      INFO <key> <value>
      ERROR <text>                                                           */

#include <mpi.h>
#include <pm.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"

#define S_MAX_CONFIGS 8  /* rank counts accepted by --ranks               */
#define S_MAX_ROWS 128   /* rows of the final table                       */
#define S_BLOCKS 10      /* interleaved blocks of the raw / pm MPI rows   */
#define S_INT_SHIFT 40   /* int64 contributions use the high bits too     */
#define S_MAX_MPI_RANKS 64 /* largest MPI job (the raw allgather's buffer) */

/* ---- what is measured ---------------------------------------------------- */

typedef enum { S_BARRIER, S_ALLREDUCE_F64, S_ALLREDUCE_I64, S_NOPS } s_op_t;
static const char *s_op_names[S_NOPS] = { "barrier", "allreduce_f64", "allreduce_i64" };
static const char *s_op_labels[S_NOPS] = { "barrier", "allreduce 1 double, sum",
                                           "allreduce 1 int64, sum" };

/* Paths, in table order.  raw, pm and allgather run in one MPI job; coord
   and pm-run are pm's coordinator, each in a launch of its own.           */
typedef enum { S_RAW, S_PM, S_ALLGATHER, S_COORD, S_PMRUN, S_NPATHS } s_path_t;
static const char *s_path_names[S_NPATHS] = { "raw", "pm", "allgather", "coord", "pm-run" };

static const char *
s_label (s_op_t op, s_path_t path)
{
    switch (path) {
    case S_RAW: return op == S_BARRIER ? "raw MPI_Barrier" : "raw MPI_Allreduce";
    case S_PM:
        return op == S_BARRIER         ? "pm on MPI (MPI_Barrier)"
               : op == S_ALLREDUCE_F64 ? "pm on MPI (allgather + fold)"
                                       : "pm on MPI (MPI_Allreduce)";
    case S_ALLGATHER: return "  raw MPI_Allgather 8 B/rank";
    case S_COORD: return "pm coordinator, MultiProcessing";
    case S_PMRUN: return "pm coordinator, pm-run -n N";
    default: return "?";
    }
}

/* ---- statistics ---------------------------------------------------------- */

typedef struct {
    uint64_t count; /* samples                        */
    uint64_t p50;   /* nearest-rank percentiles, ns   */
    uint64_t p99;
    uint64_t mean;
    uint64_t min;
    uint64_t max;
} s_stats_t;

static int
s_cmp_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return (x > y) - (x < y);
}

/* Sorts samples in place. */
static s_stats_t
s_stats (uint64_t *samples, size_t count)
{
    s_stats_t st = { 0 };
    if (count == 0)
        return st;
    qsort (samples, count, sizeof *samples, s_cmp_u64);
    long double sum = 0;
    for (size_t i = 0; i < count; i++)
        sum += samples[i];
    st.count = count;
    st.p50 = samples[(50 * count + 99) / 100 - 1];
    st.p99 = samples[(99 * count + 99) / 100 - 1];
    st.mean = (uint64_t) (sum / count);
    st.min = samples[0];
    st.max = samples[count - 1];
    return st;
}

/* ---- the table (driver, and rank 0 of a direct mpirun) -------------------- */

typedef struct {
    s_op_t op;
    s_path_t path;
    int ranks;
    bool ok;            /* measured                                        */
    bool skipped;       /* not run; error says why                         */
    char error[512];    /* why not, or what went wrong after measuring     */
    s_stats_t st;       /* ns                                              */
    long create_us;     /* pm_create_parallel_manager on rank 0, -1 = n/a  */
    long destroy_us;    /* pm_destroy on rank 0, -1 = n/a                  */
    char backend[32];   /* pm_backend_name on rank 0                       */
    double others;      /* CPUs other processes kept busy meanwhile, <0 = ? */
} s_row_t;

static s_row_t s_rows[S_MAX_ROWS];
static int s_nrows;
static uint64_t s_clock_ns; /* one clock read on the MPI job's rank 0, ns */

static s_row_t *
s_row (s_op_t op, s_path_t path, int ranks)
{
    for (int i = 0; i < s_nrows; i++)
        if (s_rows[i].op == op && s_rows[i].path == path && s_rows[i].ranks == ranks)
            return &s_rows[i];
    if (s_nrows >= S_MAX_ROWS)
        return NULL;
    s_row_t *row = &s_rows[s_nrows++];
    memset (row, 0, sizeof *row);
    row->op = op;
    row->path = path;
    row->ranks = ranks;
    row->create_us = row->destroy_us = -1;
    row->others = -1;
    return row;
}

static double
s_us (uint64_t ns)
{
    return (double) ns / 1000.0;
}

#define S_GOAL 1.2 /* pm on MPI / raw MPI, p50: the goal */

static void
s_print_rows (const int *ranks, int nranks)
{
    printf ("%-24s %5s  %-32s %9s %9s %10s %10s  %s\n", "operation", "ranks", "path", "p50", "p99",
            "p50 ratio", "p99 ratio", "goal (p50 ratio)");
    for (int k = 0; k < nranks; k++) {
        if (k > 0)
            printf ("\n");
        for (int op = 0; op < S_NOPS; op++) {
            const s_row_t *raw = NULL;
            bool first = true;
            for (int path = 0; path < S_NPATHS; path++) {
                const s_row_t *row = NULL;
                for (int i = 0; i < s_nrows; i++)
                    if (s_rows[i].op == (s_op_t) op && s_rows[i].path == (s_path_t) path
                        && s_rows[i].ranks == ranks[k])
                        row = &s_rows[i];
                if (!row)
                    continue;
                if (path == S_RAW)
                    raw = row;
                char n[16];
                bench_format (n, sizeof n, "n=%d", row->ranks);
                printf ("%-24s %5s  %-32s ", first ? s_op_labels[op] : "", n,
                        s_label ((s_op_t) op, (s_path_t) path));
                first = false;
                if (!row->ok) {
                    printf ("%s: %s\n", row->skipped ? "skipped" : "FAILED", row->error);
                    continue;
                }
                printf ("%9.2f %9.2f", s_us (row->st.p50), s_us (row->st.p99));
                if (path == S_RAW || !raw || !raw->ok || !raw->st.p50 || !raw->st.p99) {
                    printf ("\n");
                    continue;
                }
                double r50 = (double) row->st.p50 / (double) raw->st.p50;
                double r99 = (double) row->st.p99 / (double) raw->st.p99;
                printf (" %9.2fx %9.2fx", r50, r99);
                if (path == S_PM)
                    printf ("  <= %.1fx %s", S_GOAL, r50 <= S_GOAL ? "met" : "MISSED");
                printf ("\n");
            }
        }
    }
}

/* The notes every table ends with. */
static void
s_print_notes (const int *ranks, int nranks)
{
    long cpus = sysconf (_SC_NPROCESSORS_ONLN);
    for (int i = 0; i < nranks; i++)
        if (ranks[i] > cpus && cpus > 0) {
            printf ("note: n=%d runs %d ranks on %ld CPUs (oversubscribed): every collective waits "
                    "for the scheduler to run each rank; that, not pm, dominates the n=%d numbers\n",
                    ranks[i], ranks[i], cpus, ranks[i]);
            break;
        }
    printf ("note: pm's floating-point allreduce on MPI is an MPI_Allgather of every rank's "
            "values, folded in rank order on each rank (the same result as on every other "
            "backend); its int64 allreduce is MPI_Allreduce itself\n");
    if (s_clock_ns)
        printf ("note: every sample includes one clock read (%" PRIu64 " ns here), raw and pm "
                "alike; at sub-microsecond latencies that pulls the MPI ratios towards 1\n",
                s_clock_ns);
}

static int
s_print_details (const int *ranks, int nranks)
{
    int failures = 0;
    printf ("\ndetails (µs):\n");
    for (int k = 0; k < nranks; k++)
        for (int path = 0; path < S_NPATHS; path++)
            for (int op = 0; op < S_NOPS; op++)
                for (int i = 0; i < s_nrows; i++) {
                    const s_row_t *row = &s_rows[i];
                    if (row->op != (s_op_t) op || row->path != (s_path_t) path
                        || row->ranks != ranks[k])
                        continue;
                    if (!row->ok) {
                        failures += !row->skipped;
                        continue;
                    }
                    char name[64];
                    bench_format (name, sizeof name, "%s %s n=%d", s_path_names[path],
                                  s_op_names[op], row->ranks);
                    printf ("  %-28s min %8.2f  mean %8.2f  max %9.1f", name, s_us (row->st.min),
                            s_us (row->st.mean), s_us (row->st.max));
                    bool pm_path = path == S_PM || path == S_COORD || path == S_PMRUN;
                    if (op == S_BARRIER && pm_path && row->create_us >= 0)
                        printf ("   create %.1f ms, destroy %.1f ms, backend %s",
                                row->create_us / 1000.0, row->destroy_us / 1000.0,
                                row->backend[0] ? row->backend : "?");
                    if (op == S_BARRIER && path != S_PM && row->others >= 0)
                        printf ("   others kept %.2f CPU busy", row->others);
                    printf ("\n");
                    if (row->error[0])
                        printf ("  %-28s note: %s\n", "", row->error);
                }
    return failures;
}

/* Median cost of one bench_now_ns, in ns: every sample carries one. */
static uint64_t
s_clock_cost_ns (void)
{
    enum { N = 2001 };
    static uint64_t cost[N];
    for (int i = 0; i < N; i++) {
        uint64_t a = bench_now_ns ();
        uint64_t b = bench_now_ns ();
        cost[i] = b - a;
    }
    return s_stats (cost, N).p50;
}

/* ---- the MPI job: raw MPI and pm on MPI in the same processes ------------- */

typedef struct {
    long iterations; /* per row                   */
    long warmup;     /* per row, before the first block */
    bool machine;    /* RESULT lines for the driver, no table */
} s_mpi_config_t;

static int s_mpi_rank, s_mpi_size;

/* A failed call on one rank would leave the others waiting in the next
   collective: report it and end the job.                                 */
static void
s_mpi_die (const char *format, ...) __attribute__ ((format (printf, 1, 2), noreturn));
static void
s_mpi_die (const char *format, ...)
{
    char text[768];
    va_list ap;
    va_start (ap, format);
    vsnprintf (text, sizeof text, format, ap);
    va_end (ap);
    bench_emit ("ERROR rank %d: %s", s_mpi_rank, text);
    MPI_Abort (MPI_COMM_WORLD, 1);
    exit (1);
}

static void
s_mpi_check (int rc, const char *what, long i)
{
    if (rc == MPI_SUCCESS)
        return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string (rc, text, &len);
    s_mpi_die ("%s iteration %ld: %.*s", what, i, len, text);
}

static void
s_pm_check (pm_manager_t *pm, int rc, const char *what, long i)
{
    if (rc != 0)
        s_mpi_die ("%s iteration %ld: %s (%s)", what, i, pm_strerror (rc),
                   pm_last_error (pm) ? pm_last_error (pm) : "");
}

/* One call of op on path; checks the result. */
static void
s_mpi_once (pm_manager_t *pm, s_op_t op, s_path_t path, long i)
{
    double mine = s_mpi_rank + 1, sum = 0;
    double expected = (double) s_mpi_size * (s_mpi_size + 1) / 2; /* exact in a double */
    int64_t imine = (int64_t) (s_mpi_rank + 1) << S_INT_SHIFT, isum = 0;
    int64_t iexpected = ((int64_t) s_mpi_size * (s_mpi_size + 1) / 2) << S_INT_SHIFT;
    double every[S_MAX_MPI_RANKS];
    switch (op) {
    case S_BARRIER:
        if (path == S_RAW)
            s_mpi_check (MPI_Barrier (MPI_COMM_WORLD), "MPI_Barrier", i);
        else
            s_pm_check (pm, pm_sync_with_peers (pm), "pm_sync_with_peers", i);
        return;
    case S_ALLREDUCE_F64:
        if (path == S_RAW)
            s_mpi_check (MPI_Allreduce (&mine, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
                         "MPI_Allreduce (double)", i);
        else if (path == S_ALLGATHER) {
            s_mpi_check (MPI_Allgather (&mine, 1, MPI_DOUBLE, every, 1, MPI_DOUBLE,
                                        MPI_COMM_WORLD),
                         "MPI_Allgather", i);
            for (int r = 0; r < s_mpi_size; r++)
                sum += every[r];
        } else
            s_pm_check (pm, pm_sum_values_and_sync (pm, &mine, &sum, 1, PM_FLOAT64),
                        "pm_sum_values_and_sync (double)", i);
        if (sum != expected)
            s_mpi_die ("%s %s iteration %ld gave %g, expected %g", s_path_names[path],
                       s_op_names[op], i, sum, expected);
        return;
    case S_ALLREDUCE_I64:
        if (path == S_RAW)
            s_mpi_check (MPI_Allreduce (&imine, &isum, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD),
                         "MPI_Allreduce (int64)", i);
        else
            s_pm_check (pm, pm_sum_values_and_sync (pm, &imine, &isum, 1, PM_INT64),
                        "pm_sum_values_and_sync (int64)", i);
        if (isum != iexpected)
            s_mpi_die ("%s %s iteration %ld gave %" PRId64 ", expected %" PRId64,
                       s_path_names[path], s_op_names[op], i, isum, iexpected);
        return;
    default: return;
    }
}

/* count calls of op on path; rank 0 stores their latencies at samples. */
static void
s_mpi_loop (pm_manager_t *pm, s_op_t op, s_path_t path, long first, long count,
            uint64_t *samples)
{
    for (long i = first; i < first + count; i++) {
        uint64_t t0 = bench_now_ns ();
        s_mpi_once (pm, op, path, i);
        uint64_t t1 = bench_now_ns ();
        if (samples)
            samples[i - first] = t1 - t0;
    }
}

typedef struct {
    s_op_t op;
    s_path_t path;
} s_pair_t;

/* What the MPI job measures, in pairs (raw, pm) per op, plus the raw
   allgather that pm's float allreduce rests on.                           */
static const s_pair_t s_mpi_rows[] = {
    { S_BARRIER, S_RAW },        { S_BARRIER, S_PM },
    { S_ALLREDUCE_F64, S_RAW },  { S_ALLREDUCE_F64, S_PM }, { S_ALLREDUCE_F64, S_ALLGATHER },
    { S_ALLREDUCE_I64, S_RAW },  { S_ALLREDUCE_I64, S_PM },
};
#define S_NMPI_ROWS ((int) (sizeof s_mpi_rows / sizeof s_mpi_rows[0]))

static void
s_emit_result (s_op_t op, s_path_t path, uint64_t *samples, size_t count)
{
    s_stats_t st = s_stats (samples, count);
    bench_emit ("RESULT %s %s %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
                " %" PRIu64,
                s_op_names[op], s_path_names[path], st.count, st.p50, st.p99, st.mean, st.min,
                st.max);
}

static int
s_mpi_main (int argc, char **argv, const s_mpi_config_t *cfg)
{
    if (MPI_Init (&argc, &argv) != MPI_SUCCESS) {
        bench_emit ("ERROR MPI_Init failed");
        return 1;
    }
    MPI_Comm_rank (MPI_COMM_WORLD, &s_mpi_rank);
    MPI_Comm_size (MPI_COMM_WORLD, &s_mpi_size);
    bool root = s_mpi_rank == 0;
    if (root && cfg->machine) {
        char version[MPI_MAX_LIBRARY_VERSION_STRING];
        int len = 0;
        MPI_Get_library_version (version, &len);
        version[strcspn (version, ",\n")] = '\0';
        bench_emit ("INFO mpi %s", version);
    }

    /* Every rank creates its manager; they agree it worked before any
       collective, so a rank that failed cannot leave the others waiting. */
    char why[512] = "";
    uint64_t t0 = bench_now_ns ();
    pm_manager_t *pm = pm_create_parallel_manager ("MPI", s_mpi_size, NULL);
    uint64_t t1 = bench_now_ns ();
    if (!pm)
        bench_format (why, sizeof why, "pm_create_parallel_manager (\"MPI\", %d): %s: %s",
                      s_mpi_size, pm_strerror (pm_last_error_code (NULL)),
                      pm_last_error (NULL) ? pm_last_error (NULL) : "");
    else if (strcmp (pm_backend_name (pm), "MPI") != 0)
        bench_format (why, sizeof why, "the manager's backend is %s, not MPI",
                      pm_backend_name (pm));
    else if (pm_get_rank (pm) != s_mpi_rank || pm_number_of_worker_processes (pm) != s_mpi_size)
        bench_format (why, sizeof why, "the manager is rank %d of %d, MPI says %d of %d",
                      pm_get_rank (pm), pm_number_of_worker_processes (pm), s_mpi_rank,
                      s_mpi_size);
    if (s_mpi_size > S_MAX_MPI_RANKS)
        bench_format (why, sizeof why, "at most %d ranks, not %d", S_MAX_MPI_RANKS, s_mpi_size);
    int ok = !why[0], all_ok = 0;
    if (MPI_Allreduce (&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS)
        all_ok = 0;
    if (!all_ok) {
        if (why[0])
            bench_emit ("ERROR rank %d: %s", s_mpi_rank, why);
        pm_destroy (&pm);
        MPI_Finalize ();
        return 1;
    }
    if (root)
        s_clock_ns = s_clock_cost_ns ();
    if (root && cfg->machine) {
        bench_emit ("INFO clock_ns %" PRIu64, s_clock_ns);
        bench_emit ("INFO backend %s", pm_backend_name (pm));
        bench_emit ("INFO create_us %" PRIu64, (t1 - t0) / 1000);
    }

    uint64_t *samples[S_NMPI_ROWS] = { 0 };
    long filled[S_NMPI_ROWS] = { 0 };
    if (root)
        for (int r = 0; r < S_NMPI_ROWS; r++)
            if (!(samples[r] = calloc ((size_t) cfg->iterations, sizeof **samples)))
                s_mpi_die ("out of memory");

    /* Warm-up, then S_BLOCKS blocks.  In each block every row runs a
       share of its iterations, raw then pm in even blocks and pm then raw
       in odd ones, an untimed barrier between rows: a drift of the machine
       during the run touches raw and pm alike.                             */
    for (int r = 0; r < S_NMPI_ROWS; r++) {
        s_mpi_loop (pm, s_mpi_rows[r].op, s_mpi_rows[r].path, 0, cfg->warmup, NULL);
        s_mpi_check (MPI_Barrier (MPI_COMM_WORLD), "MPI_Barrier between rows", 0);
    }
    long blocks = cfg->iterations < S_BLOCKS ? cfg->iterations : S_BLOCKS;
    for (long b = 0; b < blocks; b++) {
        long share = cfg->iterations / blocks + (b < cfg->iterations % blocks ? 1 : 0);
        for (int k = 0; k < S_NMPI_ROWS; k++) {
            int r = b % 2 == 0 ? k : S_NMPI_ROWS - 1 - k;
            s_mpi_loop (pm, s_mpi_rows[r].op, s_mpi_rows[r].path, filled[r], share,
                        root ? samples[r] + filled[r] : NULL);
            filled[r] += share;
            s_mpi_check (MPI_Barrier (MPI_COMM_WORLD), "MPI_Barrier between rows", 0);
        }
    }

    int rc = 0;
    if (root) {
        for (int r = 0; r < S_NMPI_ROWS; r++) {
            if (cfg->machine)
                s_emit_result (s_mpi_rows[r].op, s_mpi_rows[r].path, samples[r],
                               (size_t) filled[r]);
            else {
                s_row_t *row = s_row (s_mpi_rows[r].op, s_mpi_rows[r].path, s_mpi_size);
                if (row) {
                    row->st = s_stats (samples[r], (size_t) filled[r]);
                    row->ok = true;
                    if (s_mpi_rows[r].path == S_PM) {
                        row->create_us = (long) ((t1 - t0) / 1000);
                        bench_format (row->backend, sizeof row->backend, "%s",
                                      pm_backend_name (pm));
                    }
                }
            }
        }
    }
    for (int r = 0; r < S_NMPI_ROWS; r++)
        free (samples[r]);

    uint64_t t2 = bench_now_ns ();
    pm_destroy (&pm); /* MPI stays initialised: the program, not pm, called MPI_Init */
    long destroy_us = (long) ((bench_now_ns () - t2) / 1000);
    if (root && cfg->machine)
        bench_emit ("INFO destroy_us %ld", destroy_us);
    if (root && !cfg->machine) {
        for (int i = 0; i < s_nrows; i++)
            if (s_rows[i].path == S_PM)
                s_rows[i].destroy_us = destroy_us;
        char version[MPI_MAX_LIBRARY_VERSION_STRING];
        int len = 0;
        MPI_Get_library_version (version, &len);
        version[strcspn (version, ",\n")] = '\0';
        long cpus = sysconf (_SC_NPROCESSORS_ONLN);
        printf ("pm MPI benchmark, one job of %d ranks (%ld CPU%s online; %s; latency per "
                "operation on rank 0, p50 / p99 in µs)\n",
                s_mpi_size, cpus, cpus == 1 ? "" : "s", version);
        printf ("ratio = this row / the raw MPI call of the same operation, same processes, "
                "interleaved in %ld blocks\n",
                blocks);
        printf ("iterations: %ld per row (+%ld warm-up)\n\n", cfg->iterations, cfg->warmup);
        int ranks[1] = { s_mpi_size };
        s_print_rows (ranks, 1);
        s_print_details (ranks, 1);
        s_print_notes (ranks, 1);
        printf ("note: pm-bench-mpi without mpirun runs n=2 and 4 and adds pm's coordinator rows\n");
        fflush (stdout);
    }
    if (MPI_Finalize () != MPI_SUCCESS)
        rc = 1;
    return rc;
}

/* ---- child: pm's coordinator (SPMD, every rank runs this) ----------------- */

static int
s_child_coord (int ranks, long iterations, long warmup)
{
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
    int size = pm_number_of_worker_processes (pm);
    bool root = rank == 0;
    const char *backend = pm_backend_name (pm);
    s_path_t path = strcmp (backend, "pm-run") == 0 ? S_PMRUN : S_COORD;
    int rc = 0;
    uint64_t *samples = NULL;
    if (root) {
        bench_emit ("INFO backend %s", backend);
        bench_emit ("INFO create_us %" PRIu64, (t1 - t0) / 1000);
        samples = calloc ((size_t) iterations, sizeof *samples);
        if (!samples) {
            bench_emit ("ERROR out of memory");
            rc = PM_ENOMEM; /* the peers will see this rank leave */
        }
    }
    if (size != ranks) {
        if (root)
            bench_emit ("ERROR asked for %d ranks, the manager has %d", ranks, size);
        rc = PM_EINVAL;
    }
    double mine = rank + 1, sum = 0;
    double expected = (double) size * (size + 1) / 2;
    int64_t imine = (int64_t) (rank + 1) << S_INT_SHIFT, isum = 0;
    int64_t iexpected = ((int64_t) size * (size + 1) / 2) << S_INT_SHIFT;
    for (int op = 0; op < S_NOPS && rc == 0; op++) {
        for (long i = 0; i < warmup + iterations && rc == 0; i++) {
            uint64_t a = bench_now_ns ();
            rc = op == S_BARRIER         ? pm_sync_with_peers (pm)
                 : op == S_ALLREDUCE_F64 ? pm_sum_values_and_sync (pm, &mine, &sum, 1, PM_FLOAT64)
                                         : pm_sum_values_and_sync (pm, &imine, &isum, 1, PM_INT64);
            uint64_t b = bench_now_ns ();
            if (rc != 0)
                bench_emit ("ERROR rank %d: %s iteration %ld: %s (%s)", rank, s_op_names[op], i,
                            pm_strerror (rc), pm_last_error (pm) ? pm_last_error (pm) : "");
            else if ((op == S_ALLREDUCE_F64 && sum != expected)
                     || (op == S_ALLREDUCE_I64 && isum != iexpected)) {
                bench_emit ("ERROR rank %d: %s iteration %ld gave a wrong sum", rank,
                            s_op_names[op], i);
                rc = PM_EPROTO;
            }
            if (samples && i >= warmup)
                samples[i - warmup] = b - a;
        }
        if (rc == 0 && root)
            s_emit_result ((s_op_t) op, path, samples, (size_t) iterations);
    }
    free (samples);
    uint64_t t2 = bench_now_ns ();
    pm_destroy (&pm);
    if (root)
        bench_emit ("INFO destroy_us %" PRIu64, (bench_now_ns () - t2) / 1000);
    return rc == 0 ? 0 : 1;
}

/* ---- driver ---------------------------------------------------------------- */

typedef struct {
    long iterations;       /* MPI rows, per row                       */
    long warmup;
    long coord_iterations; /* coordinator rows, 0 = by group size     */
    bool quick;
    bool no_coord;
    bool no_pm_run;
    const char *mpirun;
    int timeout_s;         /* per configuration                       */
    int ranks[S_MAX_CONFIGS];
    int nranks;
    char self[PATH_MAX];
    char pm_run[PATH_MAX]; /* "" = not found                          */
} s_config_t;

static char s_mpi_version[256];

static long
s_coord_iterations (const s_config_t *cfg, int ranks)
{
    if (cfg->coord_iterations > 0)
        return cfg->coord_iterations;
    if (cfg->quick)
        return ranks <= 2 ? 200 : 100;
    return ranks <= 2 ? 5000 : 2000;
}

static long
s_coord_warmup (const s_config_t *cfg, long iterations)
{
    if (cfg->quick)
        return 20;
    long w = iterations / 10;
    return w < 10 ? 10 : w > 500 ? 500 : w;
}

/* Fills the rows of (ranks, paths) from a child's output; rows the child
   did not report get its error.                                           */
static void
s_parse_child (const char *text, int status, const char *err, int ranks, const s_path_t *paths,
               int npaths, double others)
{
    char error[512] = "", backend[32] = "";
    long create_us = -1, destroy_us = -1;
    char buf[1024];
    for (const char *cursor = text ? text : ""; bench_next_line (&cursor, buf, sizeof buf);) {
        char op[32], path[32];
        s_stats_t st;
        if (sscanf (buf,
                    "RESULT %31s %31s %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                    " %" SCNu64,
                    op, path, &st.count, &st.p50, &st.p99, &st.mean, &st.min, &st.max)
            == 8) {
            for (int o = 0; o < S_NOPS; o++)
                for (int p = 0; p < S_NPATHS; p++)
                    if (strcmp (op, s_op_names[o]) == 0 && strcmp (path, s_path_names[p]) == 0) {
                        s_row_t *row = s_row ((s_op_t) o, (s_path_t) p, ranks);
                        if (row) {
                            row->st = st;
                            row->ok = true;
                        }
                    }
        } else if (strncmp (buf, "INFO backend ", 13) == 0)
            bench_format (backend, sizeof backend, "%s", buf + 13);
        else if (strncmp (buf, "INFO mpi ", 9) == 0)
            bench_format (s_mpi_version, sizeof s_mpi_version, "%s", buf + 9);
        else if (sscanf (buf, "INFO clock_ns %" SCNu64, &s_clock_ns) == 1)
            ;
        else if (sscanf (buf, "INFO create_us %ld", &create_us) == 1)
            ;
        else if (sscanf (buf, "INFO destroy_us %ld", &destroy_us) == 1)
            ;
        else if (strncmp (buf, "ERROR ", 6) == 0 && !error[0])
            bench_format (error, sizeof error, "%s", buf + 6);
    }
    if (!error[0] && err && err[0])
        bench_format (error, sizeof error, "%s", err);
    if (!error[0] && status != 0)
        bench_describe_status (status, error, sizeof error);
    for (int p = 0; p < npaths; p++)
        for (int o = 0; o < S_NOPS; o++) {
            if (paths[p] == S_ALLGATHER && o != S_ALLREDUCE_F64)
                continue;
            s_row_t *row = s_row ((s_op_t) o, paths[p], ranks);
            if (!row)
                continue;
            if (paths[p] != S_RAW && paths[p] != S_ALLGATHER) {
                bench_format (row->backend, sizeof row->backend, "%s", backend);
                row->create_us = create_us;
                row->destroy_us = destroy_us;
            }
            row->others = others;
            if (!row->ok)
                bench_format (row->error, sizeof row->error, "%s",
                              error[0] ? error : "no result reported");
            else if (error[0]) /* measured, but something went wrong after */
                bench_format (row->error, sizeof row->error, "%s", error);
        }
}

static void
s_skip (int ranks, const s_path_t *paths, int npaths, const char *why)
{
    for (int p = 0; p < npaths; p++)
        for (int o = 0; o < S_NOPS; o++) {
            if (paths[p] == S_ALLGATHER && o != S_ALLREDUCE_F64)
                continue;
            s_row_t *row = s_row ((s_op_t) o, paths[p], ranks);
            if (row) {
                row->skipped = true;
                bench_format (row->error, sizeof row->error, "%s", why);
            }
        }
}

/* Runs args, parses what it printed into the rows of (ranks, paths). */
static void
s_run (const s_config_t *cfg, char *const args[], int ranks, const s_path_t *paths, int npaths)
{
    bench_cpu_t before, after;
    bench_cpu_sample (&before);
    int status;
    char err[256];
    char *text = bench_run_child (args[0], args, cfg->timeout_s, &status, err, sizeof err);
    bench_cpu_sample (&after);
    s_parse_child (text, status, err, ranks, paths, npaths, bench_cpu_others (&before, &after));
    free (text);
}

static void
s_measure_mpi (const s_config_t *cfg, int ranks)
{
    static const s_path_t paths[] = { S_RAW, S_PM, S_ALLGATHER };
    bench_progress ("mpirun -np %d ...", ranks);
    char np[16], iters[32], warm[32];
    bench_format (np, sizeof np, "%d", ranks);
    bench_format (iters, sizeof iters, "%ld", cfg->iterations);
    bench_format (warm, sizeof warm, "%ld", cfg->warmup);
    char *const args[] = { (char *) cfg->mpirun, "-np",        np,    (char *) cfg->self,
                           "--machine",          "--iterations", iters, "--warmup",
                           warm,                 NULL };
    /* Open MPI leaks at MPI_Finalize from components it has unloaded
       (stacks LeakSanitizer cannot name): no leak check in the MPI job of
       a sanitizer build.  Harmless elsewhere.                             */
    const char *asan = getenv ("ASAN_OPTIONS");
    char *saved = asan ? strdup (asan) : NULL;
    char options[1024];
    bench_format (options, sizeof options, "%s%sdetect_leaks=0", asan ? asan : "",
                  asan && *asan ? ":" : "");
    setenv ("ASAN_OPTIONS", options, 1);
    s_run (cfg, args, ranks, paths, 3);
    if (saved)
        setenv ("ASAN_OPTIONS", saved, 1);
    else
        unsetenv ("ASAN_OPTIONS");
    free (saved);
}

static void
s_measure_coord (const s_config_t *cfg, int ranks, bool pm_run)
{
    s_path_t path = pm_run ? S_PMRUN : S_COORD;
    if (pm_run && !cfg->pm_run[0]) {
        s_skip (ranks, &path, 1, "no pm-run next to this binary");
        return;
    }
    bench_progress ("pm coordinator n=%d%s ...", ranks, pm_run ? " under pm-run" : "");
    long iterations = s_coord_iterations (cfg, ranks);
    char n[16], iters[32], warm[32];
    bench_format (n, sizeof n, "%d", ranks);
    bench_format (iters, sizeof iters, "%ld", iterations);
    bench_format (warm, sizeof warm, "%ld", s_coord_warmup (cfg, iterations));
    if (pm_run) {
        char *const args[] = { (char *) cfg->pm_run, "-n", n,     (char *) cfg->self, "--child",
                               "coord",              n,    iters, warm,               NULL };
        s_run (cfg, args, ranks, &path, 1);
    } else {
        char *const args[] = { (char *) cfg->self, "--child", "coord", n, iters, warm, NULL };
        s_run (cfg, args, ranks, &path, 1);
    }
}

static int
s_print_table (const s_config_t *cfg)
{
    long cpus = sysconf (_SC_NPROCESSORS_ONLN);
    printf ("pm MPI benchmark (%ld CPU%s online; %s via %s; latency per operation on rank 0, "
            "p50 / p99 in µs)\n",
            cpus, cpus == 1 ? "" : "s", s_mpi_version[0] ? s_mpi_version : "MPI", cfg->mpirun);
    printf ("ratio = this row / the raw MPI call of the same operation and ranks; raw MPI and pm "
            "on MPI: same processes, interleaved in %d blocks\n",
            S_BLOCKS);
    printf ("iterations: MPI %ld per row (+%ld warm-up)", cfg->iterations, cfg->warmup);
    if (!cfg->no_coord)
        for (int i = 0; i < cfg->nranks; i++) {
            long it = s_coord_iterations (cfg, cfg->ranks[i]);
            printf (", coordinator n=%d %ld (+%ld)", cfg->ranks[i], it, s_coord_warmup (cfg, it));
        }
    printf ("%s\n\n", cfg->quick ? "  [--quick: numbers are rough]" : "");
    s_print_rows (cfg->ranks, cfg->nranks);
    int failures = s_print_details (cfg->ranks, cfg->nranks);
    s_print_notes (cfg->ranks, cfg->nranks);
    fflush (stdout);
    return failures;
}

/* PATH lookup of name; "" when not found. */
static void
s_which (const char *name, char *out, size_t size)
{
    out[0] = '\0';
    if (strchr (name, '/')) {
        if (access (name, X_OK) == 0)
            bench_format (out, size, "%s", name);
        return;
    }
    const char *path = getenv ("PATH");
    while (path && *path) {
        size_t len = strcspn (path, ":");
        char candidate[PATH_MAX];
        bench_format (candidate, sizeof candidate, "%.*s/%s", (int) len, len ? path : ".", name);
        if (access (candidate, X_OK) == 0) {
            bench_format (out, size, "%s", candidate);
            return;
        }
        path += len;
        if (*path == ':')
            path++;
    }
}

/* Size of the MPI launch this process is in (pm's test), 0 if none. */
static long
s_mpi_launch_size (void)
{
    static const char *names[] = { "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        long size;
        const char *value = getenv (names[i]);
        if (value && bench_parse_long (value, 1, INT_MAX, &size))
            return size;
    }
    return 0;
}

static void
s_usage (FILE *out)
{
    fprintf (out,
             "usage: pm-bench-mpi [--driver] [--quick] [--iterations K] [--warmup K]\n"
             "                    [--coord-iterations K] [--ranks N[,N...]] [--mpirun PATH]\n"
             "                    [--no-coordinator] [--no-pm-run] [--timeout S]\n"
             "       mpirun -np N pm-bench-mpi [--quick] [--iterations K] [--warmup K]\n"
             "\n"
             "Latency of pm's barrier (pm_sync_with_peers) and 8-byte allreduce\n"
             "(pm_sum_values_and_sync of one double and of one int64) on the MPI backend,\n"
             "next to the raw MPI_Barrier / MPI_Allreduce in the same processes, and next\n"
             "to pm's own coordinator (MultiProcessing; pm-run -n N) for the same ranks.\n"
             "Prints p50/p99 in microseconds and ratios to raw MPI (goal for pm on MPI:\n"
             "<= 1.2x); never fails on the numbers.\n"
             "\n"
             "Outside an MPI launch this is the driver: it runs mpirun -np N itself\n"
             "(Open MPI's root / oversubscription settings and a private TMPDIR are set)\n"
             "and the coordinator runs, then prints one table.  Under mpirun it measures\n"
             "that one job; rank 0 prints its table.\n"
             "\n"
             "  --driver              be the driver (the default outside an MPI launch)\n"
             "  --quick               few iterations (smoke test; rough numbers)\n"
             "  --iterations K        MPI iterations per row (default 20000; 1000 with --quick)\n"
             "  --warmup K            MPI warm-up per row (default 1000; 100 with --quick)\n"
             "  --coord-iterations K  coordinator iterations (default 5000 for n=2, 2000\n"
             "                        for larger groups; 200/100 with --quick)\n"
             "  --ranks LIST          group sizes, comma-separated (default 2,4)\n"
             "  --mpirun PATH         the launcher (default: mpirun on PATH)\n"
             "  --no-coordinator      skip the coordinator rows\n"
             "  --no-pm-run           skip the rows under pm-run\n"
             "  --timeout S           seconds allowed per configuration (default 300;\n"
             "                        60 with --quick)\n"
             "  --help                this text\n"
             "\n"
             "Exit status: 0 when every row was measured, 1 when a configuration failed\n"
             "(the table says which and why), 2 on a usage error.\n");
}

static bool
s_parse_ranks (const char *text, s_config_t *cfg)
{
    cfg->nranks = 0;
    for (const char *p = text; *p;) {
        char *end;
        long n = strtol (p, &end, 10);
        if (end == p || n < 2 || n > 64 || cfg->nranks == S_MAX_CONFIGS
            || (*end && *end != ','))
            return false;
        cfg->ranks[cfg->nranks++] = (int) n;
        p = *end ? end + 1 : end;
    }
    return cfg->nranks > 0;
}

int
main (int argc, char *argv[])
{
    /* Internal entry point, re-executed by the driver (alone or under pm-run). */
    if (argc >= 2 && strcmp (argv[1], "--child") == 0) {
        long n = 0, it = 0, warm = 0;
        if (argc == 6 && strcmp (argv[2], "coord") == 0 && bench_parse_long (argv[3], 1, 1024, &n)
            && bench_parse_long (argv[4], 1, 100000000, &it)
            && bench_parse_long (argv[5], 0, 100000000, &warm))
            return s_child_coord ((int) n, it, warm);
        fprintf (stderr, "pm-bench-mpi: bad --child arguments\n");
        return 2;
    }

    s_config_t cfg = { .iterations = 0 };
    s_mpi_config_t mcfg = { .iterations = 0 };
    long timeout = 0, iterations = 0, warmup = -1;
    bool driver = false;
    const char *ranks_text = "2,4";
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0) {
            s_usage (stdout);
            return 0;
        } else if (strcmp (arg, "--driver") == 0)
            driver = true;
        else if (strcmp (arg, "--quick") == 0)
            cfg.quick = true;
        else if (strcmp (arg, "--machine") == 0)
            mcfg.machine = true;
        else if (strcmp (arg, "--no-coordinator") == 0)
            cfg.no_coord = true;
        else if (strcmp (arg, "--no-pm-run") == 0)
            cfg.no_pm_run = true;
        else if (strcmp (arg, "--iterations") == 0 && value
                 && bench_parse_long (value, 1, 100000000, &iterations))
            i++;
        else if (strcmp (arg, "--warmup") == 0 && value
                 && bench_parse_long (value, 0, 100000000, &warmup))
            i++;
        else if (strcmp (arg, "--coord-iterations") == 0 && value
                 && bench_parse_long (value, 1, 100000000, &cfg.coord_iterations))
            i++;
        else if (strcmp (arg, "--timeout") == 0 && value
                 && bench_parse_long (value, 1, 86400, &timeout))
            i++;
        else if (strcmp (arg, "--mpirun") == 0 && value)
            cfg.mpirun = argv[++i];
        else if (strcmp (arg, "--ranks") == 0 && value) {
            ranks_text = value;
            i++;
        } else {
            fprintf (stderr, "pm-bench-mpi: bad argument '%s'\n\n", arg);
            s_usage (stderr);
            return 2;
        }
    }
    cfg.iterations = iterations > 0 ? iterations : cfg.quick ? 1000 : 20000;
    cfg.warmup = warmup >= 0 ? warmup : cfg.quick ? 100 : 1000;

    /* Under mpirun: measure this job. */
    long launched = s_mpi_launch_size ();
    if (!driver && launched == 1) {
        fprintf (stderr, "pm-bench-mpi: an MPI job of 1 rank: run mpirun -np N with N >= 2, "
                         "or pm-bench-mpi alone for the driver\n");
        return 2;
    }
    if (!driver && launched > 1) {
        mcfg.iterations = cfg.iterations;
        mcfg.warmup = cfg.warmup;
        return s_mpi_main (argc, argv, &mcfg);
    }
    if (mcfg.machine) {
        fprintf (stderr, "pm-bench-mpi: --machine is for the MPI job the driver starts "
                         "(mpirun -np N, N >= 2)\n");
        return 2;
    }

    if (!s_parse_ranks (ranks_text, &cfg)) {
        fprintf (stderr, "pm-bench-mpi: bad --ranks '%s' (sizes 2..64, up to %d)\n", ranks_text,
                 S_MAX_CONFIGS);
        return 2;
    }
    cfg.timeout_s = timeout > 0 ? (int) timeout : cfg.quick ? 60 : 300;
    if (!bench_self_path (cfg.self, sizeof cfg.self)) {
        fprintf (stderr, "pm-bench-mpi: readlink /proc/self/exe: %s\n", strerror (errno));
        return 1;
    }
    static char mpirun[PATH_MAX];
    s_which (cfg.mpirun ? cfg.mpirun : "mpirun", mpirun, sizeof mpirun);
    if (!cfg.no_pm_run) {
        bench_format (cfg.pm_run, sizeof cfg.pm_run, "%s", cfg.self);
        char *slash = strrchr (cfg.pm_run, '/');
        if (slash)
            bench_format (slash + 1, sizeof cfg.pm_run - (size_t) (slash + 1 - cfg.pm_run),
                          "pm-run");
        if (access (cfg.pm_run, X_OK) != 0)
            cfg.pm_run[0] = '\0';
    }

    /* A private directory is TMPDIR for everything below (Open MPI's session
       directories, libpm's ipc sockets), removed at the end.  Open MPI may
       run as root and oversubscribe (4 ranks on 2 CPUs), and uses no
       single-copy mechanism (containers refuse the ptrace it needs); each
       setting only where the caller's environment has none.  mpirun ends
       the job itself a little before our own deadline (MPIEXEC_TIMEOUT).  */
    char run_dir[PATH_MAX];
    if (!bench_driver_setup ("pm-bench-mpi", run_dir, sizeof run_dir))
        return 1;
    setenv ("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
    setenv ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
    setenv ("OMPI_MCA_rmaps_base_oversubscribe", "1", 0);
    setenv ("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 0);
    char mpi_timeout[32];
    bench_format (mpi_timeout, sizeof mpi_timeout, "%d",
                  cfg.timeout_s > 10 ? cfg.timeout_s - 5 : cfg.timeout_s);
    setenv ("MPIEXEC_TIMEOUT", mpi_timeout, 0);

    cfg.mpirun = mpirun[0] ? mpirun : (cfg.mpirun ? cfg.mpirun : "mpirun");
    for (int i = 0; i < cfg.nranks && !bench_interrupted; i++) {
        int n = cfg.ranks[i];
        static const s_path_t mpi_paths[] = { S_RAW, S_PM, S_ALLGATHER };
        if (!mpirun[0]) {
            char why[PATH_MAX + 64];
            bench_format (why, sizeof why, "no %s found (install openmpi-bin, or --mpirun PATH)",
                          cfg.mpirun);
            for (int p = 0; p < 3; p++)
                for (int o = 0; o < S_NOPS; o++) {
                    if (mpi_paths[p] == S_ALLGATHER && o != S_ALLREDUCE_F64)
                        continue;
                    s_row_t *row = s_row ((s_op_t) o, mpi_paths[p], n);
                    if (row)
                        bench_format (row->error, sizeof row->error, "%s", why);
                }
        } else
            s_measure_mpi (&cfg, n);
        if (!cfg.no_coord && !bench_interrupted)
            s_measure_coord (&cfg, n, false);
        if (!cfg.no_coord && !cfg.no_pm_run && !bench_interrupted)
            s_measure_coord (&cfg, n, true);
    }
    bench_remove_tree (run_dir, 8);
    bench_progress_clear ();
    if (bench_interrupted) {
        fprintf (stderr, "pm-bench-mpi: interrupted (signal %d)\n", (int) bench_interrupted);
        return 128 + (int) bench_interrupted;
    }
    return s_print_table (&cfg) ? 1 : 0;
}
