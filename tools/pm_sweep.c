/*  pm_sweep.c — pm-sweep: run a model over a parameter space and write the
    results as CSV (and/or HDF5, pm_hdf5, when built with it).

    An SPMD program like any pm program: pm_create_parallel_manager early in
    main (MultiProcessing forks the other ranks there; under pm-run the rank
    comes from the environment), then every rank runs s_rank_main: root
    makes the table (pm_params), every rank builds the model (a plugin, or
    the command-per-row model of pm_command_model), pm_scatter evaluates the
    rows, pm_gather brings them to root, and root writes the CSV (pm_csv).
    Every argument is checked before the manager is created, so bad input
    exits 2 before any work.

    Root also follows the sweep as it runs, through pm_set_progress: each
    finished chunk goes to the journal OUTPUT.journal (pm_journal), which
    --resume reads to run only the rows still to do, and on a terminal a
    progress line (pm_progress) is redrawn on stderr.  The process meant to
    be root makes the table and checks the journal before the manager
    exists (s_prepare_root), so a journal in the way exits 2 too.          */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "pm.h"
#include "pm_command_model.h"
#include "pm_csv.h"
#include "pm_env.h"
#ifdef PM_HAVE_HDF5
#include "pm_hdf5.h"
#endif
#include "pm_journal.h"
#include "pm_log.h"
#include "pm_params.h"
#include "pm_progress.h"

#define S_EXIT_OK 0
#define S_EXIT_RUNTIME 1
#define S_EXIT_USAGE 2

/* Shortest time between two flushes of the journal, in seconds. */
#define S_JOURNAL_FLUSH_S 0.05

/* Longest --timeout: a year. */
#define S_TIMEOUT_MAX_S (365.0 * 24 * 3600)

/* Everything the command line says; read-only once the ranks run (they may
   be threads sharing it). */
typedef struct {
    const char *backend;       /* keyword for pm_create_parallel_manager */
    int64_t nranks;            /* its number_of_subprocesses */
    const char *endpoint;      /* --endpoint: local ranks registered with that pmd, or NULL */
    const char *cluster;       /* --connect: run the ranks on that pmd's workers, or NULL */
    bool nranks_given;         /* -n was on the command line */
    const char *model_spec;    /* --model, or NULL */
    const char *command;       /* --command, or NULL */
    pm_params_t *params;       /* --param, in order */
    uint64_t samples;          /* --samples, 0 if not given */
    uint64_t seed;             /* --seed */
    const char **arg_keys;     /* --arg key=value, split (keys owned) */
    const char **arg_values;   /* values point into argv */
    size_t nargs;
    char **outputs;            /* --outputs, split; NULL if not given */
    size_t noutputs;
    int64_t timeout_ms;        /* --timeout in ms, 0 = none */
    const char *output_path;   /* -o (names the journal) */
    const char *csv_path;      /* the CSV: -o unless it is .h5/.hdf5, else NULL */
    const char *hdf5_path;     /* the HDF5 file: --hdf5, or -o FILE.h5; NULL: none */
    int schedule;              /* -1 = the library's default, else pm_schedule_t */
    size_t rows;               /* rows of the table */
    const char **input_names;  /* the parameters' names, in column order */
    char *params_list;         /* the same, comma-separated, for the command model */
    bool print_usage_errors;   /* this process reports argv errors (rank 0 or sole) */
    bool resume;               /* --resume */
    struct s_root *root;       /* root's state, made before the manager (NULL elsewhere) */
} s_config_t;

/* Root's side of a sweep: the parameter table, the journal and the progress
   line.  Made by s_prepare_root on the process that will be rank 0, before
   the manager exists (so that a journal of another sweep is a usage error,
   exit 2, before any work); then used by root's rank only (on
   ConcurrentFutures, by root's thread; forked ranks never touch it).   */
typedef struct s_root {
    double *table;              /* rows x cols, all rows, sample order */
    pm_journal_header_t header; /* this sweep's identity (outputs "-" until known) */
    char *journal_path;         /* OUTPUT.journal */
    /* --resume with a usable journal: what it holds (done_count 0 otherwise) */
    pm_journal_t journal;
    bool resuming;              /* the journal was read: append to it */
    bool replace_journal;       /* the journal holds no header: start it again */
    char *interrupted_note;     /* for SIGINT/SIGTERM: where the rows are kept */
    /* the sweep as it runs */
    double *subset;             /* the rows still to do (resuming), or NULL: table */
    size_t *map;                /* subset row -> sample index, or NULL */
    size_t sweep_rows;          /* rows given to pm_scatter */
    FILE *journal_out;          /* appended to as chunks finish, or NULL */
    bool journal_created;       /* by this run (removed again when it holds no row) */
    bool journal_broken;        /* a write failed: no more journaling */
    size_t journaled;           /* rows appended by this run */
    double last_flush;          /* when the journal was last flushed (s_now) */
    bool journal_batched;       /* root alone reports its own rows: flushes may wait */
    /* the progress line (a terminal only) */
    bool bar;
    pthread_mutex_t bar_lock;   /* the line vs. log lines from other threads */
    pm_progress_state_t progress;
    double started, last_draw;
    bool drawn;                 /* a line is on the screen (no '\n' after it yet) */
    char line[512];
} s_root_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
"Usage: pm-sweep [--backend B -n N | --connect EP -n N] (--model LIB.so[:PREFIX] | --command TEMPLATE)\n"
"                --param 'NAME=EXPR' ... [--samples S --seed X] [--arg KEY=VALUE ...]\n"
"                [--outputs A,B,...] [--timeout SECONDS] -o RESULTS.csv|RESULTS.h5\n"
"                [--hdf5 RESULTS.h5] [--resume]\n"
"\n"
"Run a model at every point of a parameter space, in parallel, and write the results as CSV\n"
"(or HDF5).\n"
"pm-sweep is an SPMD pm program: it also runs unchanged under `pm-run -n N -- pm-sweep ...`\n"
"(the ranks then come from pm-run and --backend, -n are ignored).\n"
"\n"
"Where the ranks run:\n"
"  -b, --backend B        Serial, ConcurrentFutures, MultiProcessing (default), MPI, RayIo\n"
"                         (case-insensitive; aliases concurrent.futures, ray).  With\n"
"                         ConcurrentFutures the ranks are threads: a plugin's build and\n"
"                         execute must be thread-safe.  MPI: run pm-sweep under mpirun.\n"
"                         RayIo: ranks 1..N-1 on the Ray cluster at $RAY_ADDRESS (or\n"
"                         submitted through $PM_RAY_JOBS_URL), $PM_PYTHON the Python with\n"
"                         ray (see ray/README.md)\n"
"  -n, --np N             number of ranks (default: the number of online CPUs)\n"
"      --connect EP       run the N ranks (-n, required) on the pm-workers of the pmd at EP\n"
"                         (e.g. tcp://head:5555): pm-sweep hands itself to\n"
"                         `pm-run -n N --connect EP`; rank 0 writes the results, so -o must\n"
"                         be a path the workers share with this host\n"
"      --endpoint EP      run the ranks here but join them through the pmd at EP instead\n"
"                         of an embedded coordinator\n"
"      --schedule KIND    static (numpy.array_split of the rows by rank) or dynamic (ranks\n"
"                         pull chunks; survives lost ranks); default: libpm's (dynamic\n"
"                         wherever there is a coordinator, static for Serial)\n"
"\n"
"The model (exactly one):\n"
"      --model LIB.so[:PREFIX]\n"
"                         a plugin (include/pm_model.h; symbol prefix default \"%s\"),\n"
"                         loaded on every rank\n"
"      --arg KEY=VALUE    a build argument for the plugin (repeatable)\n"
"      --command TEMPLATE a shell command per row, run with /bin/sh -c; {NAME} is replaced\n"
"                         by the row's value of parameter NAME (\"%%.17g\"); {{ and }} are\n"
"                         literal braces; an unknown {NAME} is an error\n"
"      --outputs A,B,...  the command's outputs (the CSV's output columns).  Without it,\n"
"                         root runs row 0 once before the sweep and takes the names it\n"
"                         prints, in order of appearance (row 0 then runs again in the sweep)\n"
"      --timeout SECONDS  per-row limit for a command (default none); on expiry the row's\n"
"                         whole process group is killed and the row fails\n"
"  The command prints its outputs on stdout as NAME=VALUE lines (other lines are ignored)\n"
"  or as one JSON object of numbers (null, NaN, Infinity allowed).  A row fails (NaN\n"
"  outputs, success 0) when the command exits non-zero, is killed, times out, prints\n"
"  none of the outputs, gives an output a value that is not a number, or prints more\n"
"  than 1 MiB.  An output it does not print is NaN; a name that is not an output is\n"
"  ignored.  A failing row never fails the sweep.  The command's stdin is /dev/null, its\n"
"  stderr is pm-sweep's, and PM_RANK, PM_SIZE, PM_GROUP, PM_ENDPOINT are removed from\n"
"  its environment.\n"
"\n"
"The parameter space (one --param per column, in order):\n"
"  -p, --param 'NAME=EXPR'  EXPR is one of\n"
"                         linspace(START, STOP, COUNT)   COUNT evenly spaced values (numpy)\n"
"                         geomspace(START, STOP, COUNT)  evenly spaced on a log scale; > 0\n"
"                         list(V1, V2, ...)              the values given\n"
"                         uniform(LOW, HIGH)             random, uniform\n"
"                         normal(MEAN, SD)               random, normal\n"
"                         lhs(LOW, HIGH)                 random, Latin hypercube: one sample\n"
"                                                        in each of S equal strata\n"
"                         Grid kinds (the first three) form the full grid, first parameter\n"
"                         varying slowest.  Random kinds need --samples and cannot be mixed\n"
"                         with grid kinds.  At most %u rows.\n"
"      --samples S        number of rows of a random space\n"
"      --seed X           seed of the random kinds (default 0; xoshiro256**, the same\n"
"                         rows on every machine)\n"
"\n"
"Output:\n"
"  -o, --output FILE      the results: a header (inputs, outputs, success), then one line\n"
"                         per row in sample order, numbers as %%.17g, nan for failed rows.\n"
"                         Written to a temporary file and renamed: never half written.\n"
"                         FILE ending in .h5 or .hdf5: an HDF5 file instead of the CSV,\n"
"                         float64 datasets /inputs (rows x inputs), /outputs (rows x\n"
"                         outputs, NaN for failed rows), uint8 /success (rows), string\n"
"                         datasets /input_names, /output_names, root attributes rows,\n"
"                         model, model_kind (%s)\n"
"      --hdf5 FILE        also write the results as HDF5 to FILE (same layout), next to\n"
"                         the CSV of -o\n"
"  A one-line summary (rows, failures, ranks, backend, seconds, rows/s) goes to stderr.\n"
"  On a terminal, a live progress line comes first (rows done/total, bar, rows/s, ETA,\n"
"  failures; redrawn at most 10 times a second); off a terminal, only the summary.\n"
"  With --schedule static and more than one rank the line counts rank 0's own rows\n"
"  only (the other ranks report at the end).\n"
"\n"
"Interrupted sweeps:\n"
"  While it runs, pm-sweep journals the finished rows in FILE.journal next to FILE: rank 0\n"
"  appends and flushes each chunk of rows as it finishes (with one rank, at most every\n"
"  0.05 s), and deletes the journal once FILE is written.  After an interruption (Ctrl-C,\n"
"  kill -9, a crash):\n"
"      --resume           run the same command again with --resume: the rows in the journal\n"
"                         are kept, only the others run, and FILE comes out as an\n"
"                         uninterrupted run would have written it.  The journal of another\n"
"                         sweep (other rows, model, or outputs) is refused (exit 2); with\n"
"                         no journal the whole sweep runs.  Needs the dynamic schedule (the\n"
"                         default, except Serial, which journals every row anyway):\n"
"                         --resume with --schedule static is an error.  (A run with\n"
"                         --schedule static and several ranks journals rank 0's rows only.)\n"
"  Without --resume, an existing FILE.journal is an error (exit 2): resume it or delete it.\n"
"\n"
"Other:\n"
"  -l, --log-level LEVEL  error|warn|info|debug|trace (default: $PM_LOG_LEVEL, else warn)\n"
"  -h, --help             this text\n"
"  -V, --version          the version\n"
"\n"
"Exit status: 0 the sweep ran (even if some rows failed: the summary says how many);\n"
"1 a runtime error (the parallel manager, the model's build, writing the file);\n"
"2 bad arguments or input (nothing was run), a journal in the way or of another sweep.\n"
"\n"
"Example:\n"
"  pm-sweep -n 4 --command 'ro-sim --feed {feed} --recovery {r}' \\\n"
"      --param 'feed=linspace(5, 45, 9)' --param 'r=list(0.4, 0.5, 0.6)' -o ro.csv\n",
             PM_MODEL_DEFAULT_PREFIX, PM_PARAMS_MAX_ROWS,
#ifdef PM_HAVE_HDF5
             "this build has HDF5"
#else
             "not in this build: it was built without HDF5"
#endif
    );
}

static int
s_usage_error (const s_config_t *cfg, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

/* Report a problem with the command line and return exit status 2.  Under
   pm-run every rank sees the same argv; only rank 0 says it. */
static int
s_usage_error (const s_config_t *cfg, const char *fmt, ...)
{
    if (cfg->print_usage_errors) {
        char text[1200];
        va_list args;
        va_start (args, fmt);
        vsnprintf (text, sizeof text, fmt, args);
        va_end (args);
        fprintf (stderr, "pm-sweep: %s\n", text);
    }
    return S_EXIT_USAGE;
}

static void
s_config_free (s_config_t *cfg)
{
    pm_params_destroy (&cfg->params);
    for (size_t i = 0; i < cfg->nargs; i++)
        free ((char *) cfg->arg_keys[i]);
    free (cfg->arg_keys);
    free (cfg->arg_values);
    pm_command_names_free (cfg->outputs, cfg->noutputs);
    free (cfg->input_names);
    free (cfg->params_list);
}

static bool
s_known_backend (const char *name)
{
    static const char *known[] = {"Serial", "ConcurrentFutures", "concurrent.futures",
                                  "MultiProcessing", "MPI", "RayIo", "ray"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcasecmp (name, known[i]) == 0)
            return true;
    return false;
}

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- parsing and checking the command line -------------------------------- */

/* Does path name an HDF5 file: .h5 or .hdf5 (any case)? */
static bool
s_is_hdf5_name (const char *path)
{
    size_t len = strlen (path);
    return (len > 3 && strcasecmp (path + len - 3, ".h5") == 0)
           || (len > 5 && strcasecmp (path + len - 5, ".hdf5") == 0);
}

/* Do a and b name the same file (the same string, or the same existing
   file)? */
static bool
s_same_file (const char *a, const char *b)
{
    struct stat sa, sb;
    if (strcmp (a, b) == 0)
        return true;
    return stat (a, &sa) == 0 && stat (b, &sb) == 0 && sa.st_dev == sb.st_dev
           && sa.st_ino == sb.st_ino;
}

static int
s_parse (s_config_t *cfg, int argc, char **argv, bool *done)
{
    enum {
        OPT_CONNECT = 256,
        OPT_MODEL,
        OPT_COMMAND,
        OPT_SAMPLES,
        OPT_SEED,
        OPT_ARG,
        OPT_OUTPUTS,
        OPT_TIMEOUT,
        OPT_SCHEDULE,
        OPT_RESUME,
        OPT_HDF5,
        OPT_ENDPOINT,
    };
    static const struct option options[] = {
        {"backend", required_argument, NULL, 'b'},
        {"np", required_argument, NULL, 'n'},
        {"connect", required_argument, NULL, OPT_CONNECT},
        {"endpoint", required_argument, NULL, OPT_ENDPOINT},
        {"schedule", required_argument, NULL, OPT_SCHEDULE},
        {"model", required_argument, NULL, OPT_MODEL},
        {"command", required_argument, NULL, OPT_COMMAND},
        {"param", required_argument, NULL, 'p'},
        {"samples", required_argument, NULL, OPT_SAMPLES},
        {"seed", required_argument, NULL, OPT_SEED},
        {"arg", required_argument, NULL, OPT_ARG},
        {"outputs", required_argument, NULL, OPT_OUTPUTS},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"output", required_argument, NULL, 'o'},
        {"hdf5", required_argument, NULL, OPT_HDF5},
        {"log-level", required_argument, NULL, 'l'},
        {"resume", no_argument, NULL, OPT_RESUME},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    *done = false;
    cfg->params = pm_params_new ();
    cfg->arg_keys = calloc ((size_t) argc, sizeof *cfg->arg_keys);
    cfg->arg_values = calloc ((size_t) argc, sizeof *cfg->arg_values);
    if (!cfg->params || !cfg->arg_keys || !cfg->arg_values) {
        fprintf (stderr, "pm-sweep: out of memory\n");
        return S_EXIT_RUNTIME;
    }
    const char *samples_text = NULL, *outputs_text = NULL, *timeout_text = NULL;
    bool resume = false;
    char err[1024];
    int opt;
    /* getopt's own messages (unknown option, missing value) only from the
       process that reports usage errors. */
    opterr = cfg->print_usage_errors;
    while ((opt = getopt_long (argc, argv, "b:n:p:o:l:hV", options, NULL)) != -1) {
        switch (opt) {
        case 'b': cfg->backend = optarg; break;
        case 'n':
            if (!pm_parse_int64 (optarg, 1, 100000, &cfg->nranks))
                return s_usage_error (cfg, "-n needs a number of ranks in [1, 100000], got '%s'",
                                      optarg);
            cfg->nranks_given = true;
            break;
        case OPT_CONNECT:
            if (!*optarg)
                return s_usage_error (cfg, "--connect needs an endpoint, e.g. tcp://head:5555");
            cfg->cluster = optarg;
            break;
        case OPT_ENDPOINT:
            if (!*optarg)
                return s_usage_error (cfg, "--endpoint needs an endpoint, e.g. tcp://head:5555");
            cfg->endpoint = optarg;
            break;
        case OPT_SCHEDULE:
            if (strcasecmp (optarg, "static") == 0)
                cfg->schedule = PM_SCHEDULE_STATIC;
            else if (strcasecmp (optarg, "dynamic") == 0)
                cfg->schedule = PM_SCHEDULE_DYNAMIC;
            else
                return s_usage_error (cfg, "--schedule must be static or dynamic, got '%s'",
                                      optarg);
            break;
        case OPT_MODEL:
            if (!*optarg)
                return s_usage_error (cfg, "--model needs LIB.so[:PREFIX]");
            cfg->model_spec = optarg;
            break;
        case OPT_COMMAND: cfg->command = optarg; break;
        case 'p':
            if (pm_params_add (cfg->params, optarg, err, sizeof err) != 0)
                return s_usage_error (cfg, "--param '%s': %s", optarg, err);
            break;
        case OPT_SAMPLES: samples_text = optarg; break;
        case OPT_SEED: {
            int64_t seed;
            if (!pm_parse_int64 (optarg, 0, INT64_MAX, &seed))
                return s_usage_error (cfg, "--seed needs a whole number >= 0, got '%s'", optarg);
            cfg->seed = (uint64_t) seed;
            break;
        }
        case OPT_ARG: {
            const char *eq = strchr (optarg, '=');
            if (!eq || eq == optarg)
                return s_usage_error (cfg, "--arg '%s': expected KEY=VALUE", optarg);
            char *key = strndup (optarg, (size_t) (eq - optarg));
            if (!key) {
                fprintf (stderr, "pm-sweep: out of memory\n");
                return S_EXIT_RUNTIME;
            }
            cfg->arg_keys[cfg->nargs] = key;
            cfg->arg_values[cfg->nargs] = eq + 1;
            cfg->nargs++;
            break;
        }
        case OPT_OUTPUTS: outputs_text = optarg; break;
        case OPT_TIMEOUT: timeout_text = optarg; break;
        case 'o': cfg->output_path = optarg; break;
        case OPT_HDF5: cfg->hdf5_path = optarg; break;
        case 'l': {
            int level = pm_log_level_parse (optarg);
            if (level < 0)
                return s_usage_error (cfg,
                                      "--log-level must be error, warn, info, debug or trace, "
                                      "got '%s'",
                                      optarg);
            pm_log_set_level ((pm_log_level_t) level);
            break;
        }
        case OPT_RESUME: resume = true; break;
        case 'h':
            s_usage (stdout);
            *done = true;
            return S_EXIT_OK;
        case 'V':
            printf ("pm-sweep (pm) %d.%d.%d\n", PM_VERSION_MAJOR, PM_VERSION_MINOR,
                    PM_VERSION_PATCH);
            *done = true;
            return S_EXIT_OK;
        default:
            if (cfg->print_usage_errors)
                fprintf (stderr, "Try 'pm-sweep --help' for the options.\n");
            return S_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return s_usage_error (cfg, "unexpected argument '%s' (options take the form --name "
                                   "value; see --help)",
                              argv[optind]);
    cfg->resume = resume;
    if (resume && cfg->schedule == PM_SCHEDULE_STATIC)
        return s_usage_error (cfg, "--resume needs the dynamic schedule: with --schedule static "
                                   "rank 0 learns of its own rows only, so the journal would miss "
                                   "the others'; drop --schedule static");

    /* The model. */
    if (!cfg->model_spec && !cfg->command)
        return s_usage_error (cfg, "no model: give --model LIB.so[:PREFIX] or --command "
                                   "TEMPLATE (see --help)");
    if (cfg->model_spec && cfg->command)
        return s_usage_error (cfg, "--model and --command exclude each other: give one");
    if (cfg->model_spec && outputs_text)
        return s_usage_error (cfg, "--outputs is for --command; a plugin names its own outputs");
    if (cfg->model_spec && timeout_text)
        return s_usage_error (cfg, "--timeout is for --command; a plugin's rows cannot be "
                                   "interrupted");
    if (cfg->command && cfg->nargs)
        return s_usage_error (cfg, "--arg is for --model plugins; put the values in the "
                                   "--command template");

    /* The parameter space. */
    if (pm_params_count (cfg->params) == 0)
        return s_usage_error (cfg, "no parameters: give at least one --param 'NAME=EXPR', e.g. "
                                   "--param 'x=linspace(0, 1, 11)'");
    if (samples_text) {
        int64_t samples;
        if (!pm_parse_int64 (samples_text, 1, PM_PARAMS_MAX_ROWS, &samples))
            return s_usage_error (cfg, "--samples needs a whole number in [1, %u], got '%s'",
                                  PM_PARAMS_MAX_ROWS, samples_text);
        cfg->samples = (uint64_t) samples;
    }
    if (pm_params_rows (cfg->params, cfg->samples, PM_PARAMS_MAX_ROWS, &cfg->rows, err,
                        sizeof err)
        != 0)
        return s_usage_error (cfg, "%s", err);
    size_t ninputs = pm_params_count (cfg->params);
    cfg->input_names = calloc (ninputs, sizeof *cfg->input_names);
    size_t list_size = 1;
    for (size_t i = 0; i < ninputs; i++)
        list_size += strlen (pm_params_name (cfg->params, i)) + 1;
    cfg->params_list = calloc (1, list_size);
    if (!cfg->input_names || !cfg->params_list) {
        fprintf (stderr, "pm-sweep: out of memory\n");
        return S_EXIT_RUNTIME;
    }
    for (size_t i = 0; i < ninputs; i++) {
        cfg->input_names[i] = pm_params_name (cfg->params, i);
        if (strcmp (cfg->input_names[i], "success") == 0)
            return s_usage_error (cfg, "--param: 'success' is the name of the CSV's status "
                                       "column; choose another name");
        if (i)
            strcat (cfg->params_list, ",");
        strcat (cfg->params_list, cfg->input_names[i]);
    }

    /* Command options. */
    if (outputs_text) {
        if (pm_command_split_names (outputs_text, &cfg->outputs, &cfg->noutputs, err, sizeof err)
            != 0)
            return s_usage_error (cfg, "--outputs '%s': %s", outputs_text, err);
        for (size_t k = 0; k < cfg->noutputs; k++) {
            if (strcmp (cfg->outputs[k], "success") == 0)
                return s_usage_error (cfg, "--outputs: 'success' is the name of the CSV's "
                                           "status column");
            if (pm_params_find (cfg->params, cfg->outputs[k]) >= 0)
                return s_usage_error (cfg, "--outputs: '%s' is also a parameter; the CSV "
                                           "columns must differ",
                                      cfg->outputs[k]);
        }
    }
    if (timeout_text) {
        char *end = NULL;
        errno = 0;
        double seconds = strtod (timeout_text, &end);
        if (end == timeout_text || *end || errno || !isfinite (seconds) || seconds <= 0
            || seconds > S_TIMEOUT_MAX_S)
            return s_usage_error (cfg, "--timeout needs a number of seconds > 0 (e.g. 2.5), "
                                       "got '%s'",
                                  timeout_text);
        cfg->timeout_ms = (int64_t) ceil (seconds * 1000.0);
    }
    if (cfg->command) {
        pm_command_t *check = pm_command_new (cfg->command, cfg->input_names, ninputs, NULL, 0,
                                              cfg->timeout_ms, err, sizeof err);
        if (!check)
            return s_usage_error (cfg, "--command: %s", err);
        pm_command_destroy (&check);
    }

    /* Where the ranks run. */
    if (cfg->backend && !s_known_backend (cfg->backend))
        return s_usage_error (cfg,
                              "--backend '%s' is not a backend (Serial, ConcurrentFutures, "
                              "MultiProcessing, MPI, RayIo; aliases concurrent.futures, ray)",
                              cfg->backend);
    if (!cfg->backend)
        cfg->backend = "MultiProcessing";
    if (cfg->nranks == 0) {
        long cpus = sysconf (_SC_NPROCESSORS_ONLN);
        cfg->nranks = cpus > 0 ? (cpus > 100000 ? 100000 : cpus) : 1;
    }

    /* The output file (only root writes it). */
    if (!cfg->output_path)
        return s_usage_error (cfg, "no output file: give -o RESULTS.csv");
    if (s_is_hdf5_name (cfg->output_path)) {
        if (cfg->hdf5_path)
            return s_usage_error (cfg, "-o '%s' is already an HDF5 file; --hdf5 FILE is for an "
                                       "HDF5 file next to -o RESULTS.csv: give one of them",
                                  cfg->output_path);
        cfg->hdf5_path = cfg->output_path;
    }
    else
        cfg->csv_path = cfg->output_path;
    if (cfg->hdf5_path) {
#ifndef PM_HAVE_HDF5
        return s_usage_error (cfg, "%s %s: this pm-sweep was built without HDF5 (install "
                                   "libhdf5-dev and rebuild)",
                              cfg->csv_path ? "--hdf5" : "-o", cfg->hdf5_path);
#endif
        if (cfg->csv_path && s_same_file (cfg->csv_path, cfg->hdf5_path))
            return s_usage_error (cfg, "--hdf5 '%s' and -o '%s' are the same file", cfg->hdf5_path,
                                  cfg->csv_path);
    }
    if (cfg->print_usage_errors
        && pm_csv_check_target (cfg->output_path, err, sizeof err) != 0)
        return s_usage_error (cfg, "-o: %s", err);
    if (cfg->print_usage_errors && cfg->csv_path && cfg->hdf5_path
        && pm_csv_check_target (cfg->hdf5_path, err, sizeof err) != 0)
        return s_usage_error (cfg, "--hdf5: %s", err);

    /* A plugin that cannot be loaded here will not load on the ranks either. */
    if (cfg->model_spec) {
        pm_model_t *check = pm_model_load (cfg->model_spec, err, sizeof err);
        if (!check) {
            fprintf (stderr, "pm-sweep: --model '%s': %s\n", cfg->model_spec, err);
            return S_EXIT_USAGE;
        }
        pm_model_destroy (&check);
    }
    return S_EXIT_OK;
}

/* ---- root: the table, the journal, the progress line -------------------------- */

/* names comma-separated (malloc'd). */
static char *
s_join (char *const *names, size_t count)
{
    size_t size = 1;
    for (size_t i = 0; i < count; i++)
        size += strlen (names[i]) + 1;
    char *list = calloc (1, size);
    for (size_t i = 0; list && i < count; i++) {
        if (i)
            strcat (list, ",");
        strcat (list, names[i]);
    }
    return list;
}

static void
s_root_free (s_root_t *rs)
{
    if (rs->journal_out)
        fclose (rs->journal_out);
    free (rs->table);
    free (rs->subset);
    free (rs->map);
    free (rs->journal_path);
    free (rs->interrupted_note);
    pm_journal_header_free (&rs->header);
    pm_journal_free (&rs->journal);
    pthread_mutex_destroy (&rs->bar_lock);
    memset (rs, 0, sizeof *rs);
    pthread_mutex_init (&rs->bar_lock, NULL);
}

/* What identifies this sweep in its journal: a hash of the parameter rows
   (with their shape and names), and one of the model's description. */
static void
s_hash_sweep (const s_config_t *cfg, s_root_t *rs)
{
    size_t cols = pm_params_count (cfg->params);
    uint64_t shape[2] = {cfg->rows, cols};
    uint64_t h = pm_hash64 (PM_HASH64_INIT, shape, sizeof shape);
    for (size_t c = 0; c < cols; c++)
        h = pm_hash64_str (h, cfg->input_names[c]);
    rs->header.params_hash = pm_hash64 (h, rs->table, cfg->rows * cols * sizeof (double));

    if (cfg->model_spec) {
        h = pm_hash64_str (PM_HASH64_INIT, "plugin");
        h = pm_hash64_str (h, cfg->model_spec);
        for (size_t i = 0; i < cfg->nargs; i++) {
            h = pm_hash64_str (h, cfg->arg_keys[i]);
            h = pm_hash64_str (h, cfg->arg_values[i]);
        }
    }
    else {
        h = pm_hash64_str (PM_HASH64_INIT, "command");
        h = pm_hash64_str (h, cfg->command);
        h = pm_hash64_str (h, cfg->outputs ? rs->header.outputs : "");
        int64_t timeout = cfg->timeout_ms;
        h = pm_hash64 (h, &timeout, sizeof timeout);
    }
    rs->header.model_hash = h;
}

/* On the process that will be rank 0, before the manager: make the table,
   and deal with OUTPUT.journal (an error when it is there without
   --resume; with --resume, read it and keep the rows still to do).  */
static int
s_prepare_root (s_config_t *cfg, s_root_t *rs)
{
    size_t cols = pm_params_count (cfg->params);
    rs->table = pm_params_table (cfg->params, cfg->rows, cfg->seed);
    if (!rs->table) {
        fprintf (stderr, "pm-sweep: out of memory for the table of %zu rows x %zu columns\n",
                 cfg->rows, cols);
        return S_EXIT_RUNTIME;
    }
    rs->sweep_rows = cfg->rows;
    rs->header.version = PM_JOURNAL_VERSION;
    rs->header.rows = cfg->rows;
    rs->header.inputs = strdup (cfg->params_list);
    rs->header.outputs = cfg->command && cfg->outputs ? s_join (cfg->outputs, cfg->noutputs)
                                                      : strdup ("-");
    rs->journal_path = pm_journal_path (cfg->output_path);
    if (!rs->header.inputs || !rs->header.outputs || !rs->journal_path) {
        fprintf (stderr, "pm-sweep: out of memory\n");
        return S_EXIT_RUNTIME;
    }
    s_hash_sweep (cfg, rs);

    const char *path = rs->journal_path;
    struct stat st;
    bool exists = lstat (path, &st) == 0;
    if (exists && !S_ISREG (st.st_mode))
        return s_usage_error (cfg, "%s is in the way: pm-sweep keeps the journal of a sweep "
                                   "writing %s there, and it is not a regular file",
                              path, cfg->output_path);
    if (exists && pm_journal_in_use (path) == 1)
        return s_usage_error (cfg, "%s is in use: a pm-sweep writing %s is running", path,
                              cfg->output_path);
    if (!cfg->resume) {
        if (exists)
            return s_usage_error (cfg,
                                  "%s exists: a sweep writing %s was interrupted. Run the same "
                                  "command with --resume to continue it, or delete %s to "
                                  "start over",
                                  path, cfg->output_path, path);
        return S_EXIT_OK;
    }
    if (!exists) {
        fprintf (stderr, "pm-sweep: --resume: there is no journal %s: running the whole sweep\n",
                 path);
        return S_EXIT_OK;
    }
    char err[1024];
    int rc = pm_journal_read (path, &rs->header, &rs->journal, err, sizeof err);
    if (rc == 1) {
        fprintf (stderr,
                 "pm-sweep: --resume: %s holds no complete header line (it was cut short as it "
                 "was created): running the whole sweep\n",
                 path);
        rs->replace_journal = true;
        return S_EXIT_OK;
    }
    if (rc == 2)
        return s_usage_error (cfg,
                              "--resume: %s is the journal of another sweep: %s.  Resume that "
                              "sweep with its own command line, or delete %s to run this one",
                              path, err, path);
    if (rc != 0)
        return s_usage_error (cfg, "--resume: %s: %s.  Delete it to run this sweep", path, err);
    rs->resuming = true;
    pm_journal_t *j = &rs->journal;
    if (j->bad_lines)
        fprintf (stderr,
                 "pm-sweep: warning: %s: %zu line%s (the first: line %zu) %s not a row of this "
                 "sweep; ignored\n",
                 path, j->bad_lines, j->bad_lines == 1 ? "" : "s", j->first_bad_line,
                 j->bad_lines == 1 ? "is" : "are");
    if (j->torn)
        fprintf (stderr,
                 "pm-sweep: warning: %s: its last line was cut short (the sweep was stopped as "
                 "it was written); ignored, that row runs again\n",
                 path);
    if (j->duplicates)
        fprintf (stderr, "pm-sweep: warning: %s: %zu row%s given twice; the first kept\n", path,
                 j->duplicates, j->duplicates == 1 ? "" : "s");
    /* The rows still to do, and where each one sits in the sweep. */
    size_t left = cfg->rows - j->done_count;
    if (j->done_count) {
        rs->subset = malloc ((left * cols + 1) * sizeof *rs->subset);
        rs->map = malloc ((left + 1) * sizeof *rs->map);
        if (!rs->subset || !rs->map) {
            fprintf (stderr, "pm-sweep: out of memory for the %zu rows still to do\n", left);
            return S_EXIT_RUNTIME;
        }
        for (size_t i = 0, k = 0; i < cfg->rows; i++)
            if (!j->done[i]) {
                memcpy (rs->subset + k * cols, rs->table + i * cols, cols * sizeof (double));
                rs->map[k++] = i;
            }
        rs->sweep_rows = left;
    }
    fprintf (stderr, "pm-sweep: resuming from %s: %zu of %zu rows done (%zu failed), %zu to run\n",
             path, j->done_count, cfg->rows, j->failed, left);
    return S_EXIT_OK;
}

/* Root, once the outputs are known: open the journal (create it, or append
   to the one being resumed).  0, or -1 with why. */
static int
s_journal_start (const s_config_t *cfg, s_root_t *rs, const char *outputs, char *why,
                 size_t why_size)
{
    if (cfg->command) {
        char *copy = strdup (outputs);
        if (!copy) {
            snprintf (why, why_size, "out of memory");
            return -1;
        }
        free (rs->header.outputs);
        rs->header.outputs = copy;
    }
    if (rs->resuming)
        rs->journal_out = pm_journal_open_append (rs->journal_path, rs->journal.keep, why,
                                                  why_size);
    else {
        if (rs->replace_journal)
            unlink (rs->journal_path);
        rs->journal_out = pm_journal_create (rs->journal_path, &rs->header, why, why_size);
        rs->journal_created = rs->journal_out != NULL;
    }
    if (!rs->journal_out)
        return -1;
    if (asprintf (&rs->interrupted_note,
                  "%spm-sweep: interrupted; the finished rows are kept in %s: run the same "
                  "command with --resume to go on\n",
                  isatty (STDERR_FILENO) == 1 ? "\n" : "", rs->journal_path)
        < 0)
        rs->interrupted_note = NULL;
    return 0;
}

/* Root, when the sweep is over (or failed): close the journal; remove it
   when the results file is written (done), or when it holds no row. */
static void
s_journal_finish (s_root_t *rs, bool done)
{
    if (!rs->journal_out)
        return;
    fclose (rs->journal_out);
    rs->journal_out = NULL;
    size_t held = rs->journal.done_count + rs->journaled;
    if (done || (held == 0 && rs->journal_created))
        unlink (rs->journal_path);
    else if (held)
        fprintf (stderr,
                 "pm-sweep: %zu finished row%s %s kept in %s: run the same command with --resume "
                 "to go on\n",
                 held, held == 1 ? "" : "s", held == 1 ? "is" : "are", rs->journal_path);
}

/* SIGINT / SIGTERM on root while a journal is open: say where the rows
   are, then die of the signal as before. */
static const char *volatile s_interrupt_note;
static volatile size_t s_interrupt_note_len;

static void
s_on_interrupt (int sig)
{
    const char *note = s_interrupt_note;
    if (note) {
        ssize_t ignored = write (STDERR_FILENO, note, s_interrupt_note_len);
        (void) ignored;
    }
    raise (sig); /* SA_RESETHAND: the default action, once this returns */
}

static void
s_interrupt_notes (const char *note, struct sigaction *saved)
{
    s_interrupt_note_len = note ? strlen (note) : 0;
    s_interrupt_note = note;
    struct sigaction action;
    memset (&action, 0, sizeof action);
    action.sa_handler = s_on_interrupt;
    action.sa_flags = SA_RESETHAND;
    sigemptyset (&action.sa_mask);
    sigaction (SIGINT, &action, &saved[0]);
    sigaction (SIGTERM, &action, &saved[1]);
}

static void
s_interrupt_notes_off (const struct sigaction *saved)
{
    sigaction (SIGINT, &saved[0], NULL);
    sigaction (SIGTERM, &saved[1], NULL);
    s_interrupt_note = NULL;
}

/* Draw the progress line (bar_lock held). */
static void
s_bar_draw_locked (s_root_t *rs, double now)
{
    rs->progress.elapsed = now - rs->started;
    struct winsize ws;
    int columns = ioctl (STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
    char text[sizeof rs->line - 8];
    pm_progress_format (text, sizeof text, columns, &rs->progress);
    snprintf (rs->line, sizeof rs->line, "\r%s\033[K", text);
    fputs (rs->line, stderr);
    fflush (stderr);
    rs->drawn = true;
    rs->last_draw = now;
}

static void
s_bar_draw (s_root_t *rs, bool force)
{
    double now = s_now ();
    if (!force && now - rs->last_draw < PM_PROGRESS_MIN_INTERVAL_S)
        return;
    pthread_mutex_lock (&rs->bar_lock);
    s_bar_draw_locked (rs, now);
    pthread_mutex_unlock (&rs->bar_lock);
}

/* End the progress line: the last state, then a newline. */
static void
s_bar_end (s_root_t *rs)
{
    pthread_mutex_lock (&rs->bar_lock);
    if (rs->drawn) {
        s_bar_draw_locked (rs, s_now ());
        fputc ('\n', stderr);
        rs->drawn = false;
    }
    pthread_mutex_unlock (&rs->bar_lock);
}

/* One log line in the default handler's format (common/pm_log.c), between
   before and after, in one write. */
static void
s_log_line (const char *before, pm_log_level_t level, const char *id, const char *text,
            const char *after)
{
    struct timeval now;
    gettimeofday (&now, NULL);
    struct tm tm;
    gmtime_r (&now.tv_sec, &tm);
    char stamp[32];
    strftime (stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf (stderr, "%s%s.%03ldZ pm-sweep[%d] %c %s %s\n%s", before, stamp,
             (long) now.tv_usec / 1000, (int) getpid (), "EWIDT"[level], id, text, after);
    fflush (stderr);
}

/* libpm's log lines on a terminal, in every process: each clears the line
   it starts on first, so that one printed while root's progress line is up
   replaces it (root redraws it) instead of being glued to its end. */
static void
s_log_on_tty (pm_log_level_t level, const char *id, const char *text, void *arg)
{
    (void) arg;
    s_log_line ("\r\033[K", level, id, text, "");
}

/* libpm's log lines in root's process while the line is up: above it. */
static void
s_log_over_bar (pm_log_level_t level, const char *id, const char *text, void *arg)
{
    s_root_t *rs = arg;
    pthread_mutex_lock (&rs->bar_lock);
    s_log_line ("\r\033[K", level, id, text, rs->drawn ? rs->line : "");
    pthread_mutex_unlock (&rs->bar_lock);
}

/* Warn about the journal on root, above the progress line. */
static void
s_root_warn (s_root_t *rs, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_root_warn (s_root_t *rs, const char *fmt, ...)
{
    char text[1024];
    va_list args;
    va_start (args, fmt);
    vsnprintf (text, sizeof text, fmt, args);
    va_end (args);
    pthread_mutex_lock (&rs->bar_lock);
    fprintf (stderr, "%spm-sweep: warning: %s\n%s", rs->drawn ? "\r\033[K" : "", text,
             rs->drawn ? rs->line : "");
    pthread_mutex_unlock (&rs->bar_lock);
}

/* Flush the journal with this chunk?  Yes, but when root alone reports its
   own rows one after the other (one rank, or the static schedule, where
   they come row by row and a write per row of a fast model would cost more
   than the row), at most every S_JOURNAL_FLUSH_S: a row left in the buffer
   then finished within S_JOURNAL_FLUSH_S of the last flush, so a kill
   redoes at most that much work besides the row in flight.  (With several
   ranks, a chunk that waits could have taken any time: never wait.)   */
static bool
s_journal_flush_due (s_root_t *rs, size_t count)
{
    double now = s_now ();
    if (rs->journal_batched && now - rs->last_flush < S_JOURNAL_FLUSH_S
        && rs->journal.done_count + rs->journaled + count < rs->header.rows)
        return false;
    rs->last_flush = now;
    return true;
}

/* pm_set_progress's callback, on root: chunk [first, first + count) of the
   rows given to pm_scatter is done.  Journal it, then maybe redraw. */
static void
s_on_progress (void *arg, size_t first, size_t count, size_t noutputs, const double *outputs,
               const unsigned char *success, size_t rows_done, size_t rows_total)
{
    (void) rows_done;
    (void) rows_total;
    s_root_t *rs = arg;
    if (first > rs->sweep_rows || count > rs->sweep_rows - first)
        return; /* not this sweep's (cannot happen) */
    if (rs->journal_out && !rs->journal_broken) {
        if (rs->journal.done_count && noutputs != rs->journal.noutputs) {
            rs->journal_broken = true;
            s_root_warn (rs,
                         "the model has %zu outputs, the rows in %s have %zu: it is not this "
                         "sweep's journal; no more rows are added to it",
                         noutputs, rs->journal_path, rs->journal.noutputs);
        }
        else if (pm_journal_append (rs->journal_out, rs->map, first, count, noutputs, outputs,
                                    success, s_journal_flush_due (rs, count))
                 != 0) {
            rs->journal_broken = true;
            s_root_warn (rs,
                         "cannot write the journal %s: %s; the sweep goes on, but rows finished "
                         "from now on are not kept for --resume",
                         rs->journal_path, strerror (errno));
        }
        else
            rs->journaled += count;
    }
    for (size_t i = 0; i < count; i++)
        rs->progress.failed += !success[i];
    rs->progress.done += count;
    if (rs->bar)
        s_bar_draw (rs, rs->progress.done >= rs->progress.total);
}

/* ---- one rank ------------------------------------------------------------------ */

/* Report a failed pm call.  Every rank of a collective gets the error;
   root says it, the others only when a peer was lost (root may be it). */
static int
s_runtime_error (pm_manager_t *pm, const char *what, int rc)
{
    if (pm_is_root_process (pm) || rc == PM_EPEERLOST)
        fprintf (stderr, "pm-sweep: rank %d: %s failed: %s (%s)\n", pm_get_rank (pm), what,
                 pm_last_error (pm) ? pm_last_error (pm) : "", pm_strerror (rc));
    else
        pm_debug ("PM5004", "%s failed: %s", what, pm_last_error (pm));
    return S_EXIT_RUNTIME;
}

/* This rank's model. */
static pm_model_t *
s_make_model (const s_config_t *cfg, const char *outputs, char *err, size_t err_size)
{
    if (cfg->model_spec) {
        pm_model_t *model = pm_model_load (cfg->model_spec, err, err_size);
        for (size_t i = 0; model && i < cfg->nargs; i++)
            if (pm_model_set_arg (model, cfg->arg_keys[i], cfg->arg_values[i]) != 0) {
                snprintf (err, err_size, "cannot set build argument '%s'", cfg->arg_keys[i]);
                pm_model_destroy (&model);
            }
        return model;
    }
    char timeout[32];
    snprintf (timeout, sizeof timeout, "%lld", (long long) cfg->timeout_ms);
    pm_model_t *model = pm_command_model_new ();
    if (!model || pm_model_set_arg (model, "command", cfg->command) != 0
        || pm_model_set_arg (model, "params", cfg->params_list) != 0
        || pm_model_set_arg (model, "outputs", outputs) != 0
        || pm_model_set_arg (model, "timeout_ms", timeout) != 0) {
        snprintf (err, err_size, "out of memory");
        pm_model_destroy (&model);
    }
    return model;
}

/* Root: run row 0 and choose the output columns from what it prints.
   Returns the names comma-separated (malloc'd), or NULL with why. */
static char *
s_discover_outputs (const s_config_t *cfg, const double *row0, char *why, size_t why_size)
{
    pm_command_t *command = pm_command_new (cfg->command, cfg->input_names,
                                            pm_params_count (cfg->params), NULL, 0,
                                            cfg->timeout_ms, why, why_size);
    if (!command)
        return NULL;
    char **names = NULL;
    size_t count = 0;
    char reason[512];
    int rc = pm_command_discover (command, row0, &names, &count, reason, sizeof reason);
    char *line = pm_command_line (command, row0);
    pm_command_destroy (&command);
    if (rc != 0) {
        snprintf (why, why_size,
                  "cannot discover the command's outputs: row 0 (%s) failed: %s; name them "
                  "with --outputs A,B,...",
                  line ? line : "?", reason);
        free (line);
        return NULL;
    }
    free (line);
    size_t size = 1;
    for (size_t i = 0; i < count; i++)
        size += strlen (names[i]) + 1;
    char *list = calloc (1, size);
    size_t kept = 0;
    for (size_t i = 0; list && i < count; i++) {
        if (strcmp (names[i], "success") == 0 || pm_params_find (cfg->params, names[i]) >= 0) {
            pm_warn ("PM5003",
                     "the command prints '%s', which is the name of %s column: not taken as "
                     "an output (use --outputs to choose)",
                     names[i], strcmp (names[i], "success") == 0 ? "the status" : "an input");
            continue;
        }
        if (kept++)
            strcat (list, ",");
        strcat (list, names[i]);
    }
    pm_command_names_free (names, count);
    if (!list)
        snprintf (why, why_size, "out of memory");
    else if (kept == 0) {
        snprintf (why, why_size,
                  "cannot discover the command's outputs: row 0 printed no output besides the "
                  "input columns; name them with --outputs A,B,...");
        free (list);
        list = NULL;
    }
    return list;
}

/* Before the sweep, root tells every rank whether to go on, and the
   command's outputs: "+a,b" (or "+" without a command), or "-why" after
   root's own failure (no table, row 0 failed, no journal).  Being a
   collective, it also turns a root that died early into PM_EPEERLOST on
   every rank.  Root also opens the journal here, once the outputs are
   known (rs NULL: no journal). */
static int
s_agree (pm_manager_t *pm, const s_config_t *cfg, s_root_t *rs, const double *table,
         char **outputs)
{
    *outputs = NULL;
    bool root = pm_is_root_process (pm);
    char *message = NULL;
    if (root) {
        char why[1024] = "out of memory for the parameter table";
        char *list = NULL;
        if (table && cfg->command && cfg->outputs)
            list = s_join (cfg->outputs, cfg->noutputs);
        else if (table && cfg->command && rs && rs->resuming
                 && strcmp (rs->journal.header.outputs, "-") != 0)
            /* Resuming: the outputs found the first time, not row 0 again. */
            list = strdup (rs->journal.header.outputs);
        else if (table && cfg->command)
            list = s_discover_outputs (cfg, table, why, sizeof why);
        else if (table)
            list = strdup ("");
        if (list && rs && s_journal_start (cfg, rs, list, why, sizeof why) != 0) {
            free (list);
            list = NULL;
        }
        if (asprintf (&message, "%c%s", list ? '+' : '-', list ? list : why) < 0)
            message = NULL;
        free (list);
        if (!message) {
            fprintf (stderr, "pm-sweep: out of memory\n");
            message = strdup ("-");
        }
    }
    void *data = message;
    size_t size = message ? strlen (message) + 1 : 0;
    int rc = pm_sync_bytes_with_peers (pm, &data, &size);
    if (rc != 0) {
        free (message);
        return s_runtime_error (pm, "starting the sweep", rc);
    }
    if (!root) {
        free (message);
        message = data; /* a new copy from root */
        if (!message || size == 0 || message[size - 1] != '\0') {
            free (message);
            return S_EXIT_RUNTIME;
        }
    }
    if (message[0] != '+') {
        if (root && message[1])
            fprintf (stderr, "pm-sweep: %s\n", message + 1);
        free (message);
        return S_EXIT_RUNTIME;
    }
    *outputs = strdup (message + 1);
    free (message);
    return *outputs ? S_EXIT_OK : S_EXIT_RUNTIME;
}

/* Root: the results files (the CSV, the HDF5 file, or both) from whole
   arrays in sample order.  0, or -1 with why in err. */
static int
s_write_table (const s_config_t *cfg, const char *const *output_names, size_t noutputs,
               const double *parameters, const double *outputs, const unsigned char *success,
               size_t *failed, char *err, size_t err_size)
{
    size_t rows = cfg->rows, cols = pm_params_count (cfg->params);
    *failed = 0;
    for (size_t i = 0; i < rows; i++)
        if (!success[i])
            (*failed)++;
    if (cfg->csv_path
        && pm_csv_write_table (cfg->csv_path, cfg->input_names, cols, output_names, noutputs,
                               parameters, outputs, success, rows, NULL, err, err_size)
               != 0)
        return -1;
#ifdef PM_HAVE_HDF5
    if (cfg->hdf5_path) {
        pm_hdf5_table_t table = {
            .input_names = cfg->input_names,
            .ninputs = cols,
            .output_names = output_names,
            .noutputs = noutputs,
            .inputs = parameters,
            .outputs = outputs,
            .success = success,
            .rows = rows,
            .model = cfg->model_spec ? cfg->model_spec : cfg->command,
            .model_kind = cfg->model_spec ? "plugin" : "command",
        };
        if (pm_hdf5_write_table (cfg->hdf5_path, &table, err, err_size) != 0)
            return -1;
    }
#endif
    return 0;
}

/* Root, not resuming: the results files from results. */
static int
s_write_results (const s_config_t *cfg, const pm_results_t *results, size_t *failed, char *err,
                 size_t err_size)
{
    size_t cols = pm_params_count (cfg->params);
    if (!cfg->hdf5_path) /* the CSV alone: streamed from the results */
        return pm_csv_write_results (cfg->csv_path, cfg->input_names, cols, results, failed,
                                     err, err_size);
    pm_csv_table_t table;
    if (pm_csv_results_table (results, cols, &table, err, err_size) != 0)
        return -1;
    int rc = -1;
    if (table.rows != cfg->rows)
        snprintf (err, err_size, "the results hold %zu rows, expected %zu", table.rows,
                  cfg->rows);
    else
        rc = s_write_table (cfg, table.output_names, table.noutputs, table.parameters,
                            table.outputs, table.success, failed, err, err_size);
    pm_csv_table_free (&table);
    return rc;
}

/* Root, resuming: the results file from the journal's rows and the rows
   run now (results, whose sample indexes are rows of rs->subset). */
static int
s_write_merged (const s_config_t *cfg, s_root_t *rs, const pm_results_t *results,
                size_t *failed, char *err, size_t err_size)
{
    size_t rows = cfg->rows;
    size_t noutputs = pm_results_output_count (results);
    const pm_journal_t *j = &rs->journal;
    if (j->done_count && j->noutputs != noutputs) {
        snprintf (err, err_size,
                  "the rows in %s have %zu outputs, the model has %zu: it is another sweep's "
                  "journal; delete it and run again",
                  rs->journal_path, j->noutputs, noutputs);
        return -1;
    }
    double *outputs = malloc ((rows * noutputs + 1) * sizeof *outputs);
    unsigned char *success = malloc (rows + 1);
    unsigned char *have = calloc (rows + 1, 1);
    const char **names = calloc (noutputs + 1, sizeof *names);
    int rc = 0;
    if (!outputs || !success || !have || !names) {
        snprintf (err, err_size, "out of memory for the results of %zu rows", rows);
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < rows; i++)
        if (j->done_count && j->done[i]) {
            memcpy (outputs + i * noutputs, j->outputs + i * noutputs, noutputs * sizeof (double));
            success[i] = j->success[i];
            have[i] = 1;
        }
    for (size_t e = 0; rc == 0 && e < pm_results_count (results); e++) {
        const pm_local_results_t *entry = pm_results_get (results, e);
        for (size_t r = 0; rc == 0 && r < entry->rows; r++) {
            size_t k = entry->sample_index[r];
            size_t i = rs->map ? (k < rs->sweep_rows ? rs->map[k] : rows) : k;
            if (i >= rows || have[i]) {
                snprintf (err, err_size, "row %zu came back %s", k,
                          i >= rows ? "out of range" : "twice");
                rc = -1;
                break;
            }
            memcpy (outputs + i * noutputs, entry->outputs + r * noutputs,
                    noutputs * sizeof (double));
            success[i] = entry->success[r];
            have[i] = 1;
        }
    }
    for (size_t i = 0; rc == 0 && i < rows; i++)
        if (!have[i]) {
            snprintf (err, err_size, "row %zu is missing from the results", i);
            rc = -1;
        }
    for (size_t k = 0; rc == 0 && k < noutputs; k++)
        names[k] = pm_results_output_name (results, k);
    if (rc == 0)
        rc = s_write_table (cfg, names, noutputs, rs->table, outputs, success, failed, err,
                            err_size);
    free (outputs);
    free (success);
    free (have);
    free (names);
    return rc;
}

/* Root: the summary line. */
static void
s_summary (pm_manager_t *pm, const s_config_t *cfg, const s_root_t *rs,
           const pm_results_t *results, size_t failed, double seconds)
{
    char lost[256] = "";
    size_t nlost = pm_results_lost_count (results);
    if (nlost) {
        size_t used = (size_t) snprintf (lost, sizeof lost, ", %zu rank%s lost (", nlost,
                                         nlost > 1 ? "s" : "");
        for (size_t i = 0; i < nlost && used < sizeof lost; i++)
            used += (size_t) snprintf (lost + used, sizeof lost - used, "%s%d", i ? " " : "",
                                       pm_results_lost_rank (results, i));
        if (used < sizeof lost)
            snprintf (lost + used, sizeof lost - used, "; their rows were redone)");
    }
    size_t ran = pm_results_rows (results);
    size_t kept = rs && rs->resuming ? rs->journal.done_count : 0;
    char resumed[128] = "";
    if (kept)
        snprintf (resumed, sizeof resumed, " (%zu from the journal, %zu run now)", kept, ran);
    int ranks = pm_number_of_worker_processes (pm);
    fprintf (stderr,
             "pm-sweep: %zu rows%s, %zu failed, %d rank%s (%s), %.2f s, %.1f rows/s%s -> %s%s%s\n",
             ran + kept, resumed, failed, ranks, ranks == 1 ? "" : "s", pm_backend_name (pm),
             seconds, seconds > 0 ? (double) ran / seconds : 0.0, lost, cfg->output_path,
             cfg->csv_path && cfg->hdf5_path ? ", " : "",
             cfg->csv_path && cfg->hdf5_path ? cfg->hdf5_path : "");
}

/* Root, before the sweep: the progress state (and the line, on a
   terminal), and how the journal is flushed. */
static void
s_progress_start (pm_manager_t *pm, const s_config_t *cfg, s_root_t *rs)
{
    rs->progress = (pm_progress_state_t) {0};
    rs->progress.total = rs->sweep_rows;
    if (rs->resuming) {
        rs->progress.base = rs->progress.done = rs->journal.done_count;
        rs->progress.failed = rs->journal.failed;
        rs->progress.total = cfg->rows;
    }
    int ranks = pm_number_of_worker_processes (pm);
    rs->journal_batched = ranks == 1 || cfg->schedule == PM_SCHEDULE_STATIC;
    rs->last_flush = s_now ();
    if (ranks > 1 && cfg->schedule == PM_SCHEDULE_STATIC) {
        /* Rank 0 hears of its own rows only: numpy.array_split's first share. */
        rs->progress.total = rs->sweep_rows / (size_t) ranks
                             + (rs->sweep_rows % (size_t) ranks ? 1 : 0);
        rs->progress.note = "rank 0's rows, static schedule";
    }
    rs->started = s_now ();
    rs->last_draw = 0;
    rs->bar = isatty (STDERR_FILENO) == 1;
    if (rs->bar) {
        pm_log_set_handler (s_log_over_bar, rs);
        s_bar_draw (rs, true);
    }
}

static void
s_bar_stop (s_root_t *rs, bool finished)
{
    if (!rs->bar)
        return;
    if (finished)
        rs->progress.done = rs->progress.total; /* the last chunks may not have been reported */
    s_bar_end (rs);
    pm_log_set_handler (s_log_on_tty, NULL);
    rs->bar = false;
}

static int
s_rank_main (pm_manager_t *pm, void *arg)
{
    const s_config_t *cfg = arg;
    bool root = pm_is_root_process (pm);
    size_t cols = pm_params_count (cfg->params);
    double started = s_now ();
    /* Root's state was made before the manager, on the process meant to be
       rank 0.  Should root be another (a launcher that sets the rank some
       other way), it runs without journal or progress line. */
    s_root_t local_root = {.bar_lock = PTHREAD_MUTEX_INITIALIZER};
    s_root_t *rs = root ? cfg->root : NULL;
    const double *table = NULL;
    if (root && rs)
        table = rs->subset ? rs->subset : rs->table;
    else if (root) {
        pm_warn ("PM5005", "rank 0 is not the process that read the command line: no journal, "
                           "no progress line");
        local_root.table = pm_params_table (cfg->params, cfg->rows, cfg->seed);
        local_root.sweep_rows = cfg->rows;
        table = local_root.table;
        if (!table)
            fprintf (stderr, "pm-sweep: out of memory for the table of %zu rows x %zu columns\n",
                     cfg->rows, cols);
    }

    char *outputs = NULL;
    int agreed = s_agree (pm, cfg, rs, table, &outputs);
    if (agreed != 0) {
        if (rs)
            s_journal_finish (rs, false);
        s_root_free (&local_root);
        return agreed;
    }

    char err[1024] = "";
    pm_model_t *model = s_make_model (cfg, outputs, err, sizeof err);
    free (outputs);
    /* No model here still takes part: pm_scatter fails on every rank. */
    if (!model)
        fprintf (stderr, "pm-sweep: rank %d: %s\n", pm_get_rank (pm),
                 err[0] ? err : "out of memory");
    if (cfg->schedule >= 0)
        pm_set_schedule (pm, (pm_schedule_t) cfg->schedule);

    struct sigaction saved[2];
    if (rs) {
        s_progress_start (pm, cfg, rs);
        if (rs->journal_out)
            s_interrupt_notes (rs->interrupted_note, saved);
    }
    size_t sweep_rows = rs ? rs->sweep_rows : local_root.sweep_rows;
    int rc = pm_scatter (pm, model, root ? table : NULL, root ? sweep_rows : 0, root ? cols : 0);
    pm_model_destroy (&model);
    if (rs && !rs->resuming) {
        /* The results hold the parameters: the table is not needed any more. */
        free (rs->table);
        rs->table = NULL;
    }
    pm_results_t *results = NULL;
    const char *failed_step = "the sweep (pm_scatter)";
    if (rc == 0) {
        rc = pm_gather (pm, &results);
        failed_step = "collecting the results (pm_gather)";
    }
    if (rs)
        pm_debug ("PM5006", "the progress callback saw %zu of the %zu rows run (%zu journaled)",
                  rs->progress.done - rs->progress.base, rs->sweep_rows, rs->journaled);
    if (rs)
        s_bar_stop (rs, rc == 0);
    if (rc != 0)
        s_runtime_error (pm, failed_step, rc);
    double seconds = s_now () - started;
    int status = rc == 0 ? S_EXIT_OK : S_EXIT_RUNTIME;
    if (root && rc == 0) {
        size_t failed = 0;
        int written = rs && rs->resuming
                          ? s_write_merged (cfg, rs, results, &failed, err, sizeof err)
                          : s_write_results (cfg, results, &failed, err, sizeof err);
        if (written != 0) {
            fprintf (stderr, "pm-sweep: %s\n", err);
            status = S_EXIT_RUNTIME;
        }
        else
            s_summary (pm, cfg, rs, results, failed, seconds);
    }
    if (rs) {
        if (rs->journal_out)
            s_interrupt_notes_off (saved);
        s_journal_finish (rs, status == S_EXIT_OK);
    }
    pm_results_destroy (&results);
    s_root_free (&local_root);
    return status;
}

/* Is this process meant to be rank 0?  pm-run's PM_RANK or an MPI
   launcher's rank variable say which rank it is; without them it is the
   process that forks the ranks, or runs them as threads, and so root.  */
static bool
s_meant_to_be_root (void)
{
    static const char *names[] = {"PM_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK",
                                  "MV2_COMM_WORLD_RANK"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *rank = pm_env_str (names[i]);
        if (rank && strcmp (rank, "0") != 0)
            return false;
    }
    return true;
}

/* pm-sweep --connect EP -n N: hand this very command line (less --connect)
   to `pm-run -n N --connect EP`, which has pmd place the ranks on its
   workers; they find their rank in the environment.  Returns only on error. */
static int
s_run_on_cluster (s_config_t *cfg, int argc, char **argv)
{
    if (!cfg->nranks_given) {
        fprintf (stderr, "pm-sweep: --connect needs -n N, the number of ranks to place on the "
                         "workers\n");
        return S_EXIT_USAGE;
    }
    if (cfg->endpoint) {
        fprintf (stderr, "pm-sweep: --connect and --endpoint exclude each other\n");
        return S_EXIT_USAGE;
    }
    char self[4096], pm_run[4200];
    ssize_t len = readlink ("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        fprintf (stderr, "pm-sweep: cannot find my own executable: %s\n", strerror (errno));
        return S_EXIT_RUNTIME;
    }
    self[len] = '\0';
    char dir[4096];
    snprintf (dir, sizeof dir, "%s", self);
    char *slash = strrchr (dir, '/');
    if (slash)
        *slash = '\0';
    snprintf (pm_run, sizeof pm_run, "%s/pm-run", dir);
    bool beside = access (pm_run, X_OK) == 0;
    char count[32];
    snprintf (count, sizeof count, "%lld", (long long) cfg->nranks);
    char **args = calloc ((size_t) argc + 8, sizeof *args);
    if (!args)
        return S_EXIT_RUNTIME;
    int k = 0;
    args[k++] = beside ? pm_run : "pm-run";
    args[k++] = "-n";
    args[k++] = count;
    args[k++] = "--connect";
    args[k++] = (char *) cfg->cluster;
    args[k++] = "--";
    args[k++] = self;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--connect") == 0) {
            i++; /* and its value */
            continue;
        }
        if (strncmp (argv[i], "--connect=", 10) == 0)
            continue;
        args[k++] = argv[i];
    }
    args[k] = NULL;
    fflush (NULL);
    if (beside)
        execv (pm_run, args);
    else
        execvp ("pm-run", args);
    fprintf (stderr, "pm-sweep: cannot run pm-run (%s): %s\n", beside ? pm_run : "pm-run on PATH",
             strerror (errno));
    free (args);
    return S_EXIT_RUNTIME;
}

int
main (int argc, char **argv)
{
    pm_log_set_program ("pm-sweep");
    s_config_t cfg = {.schedule = -1};
    /* Under pm-run (or an MPI launcher) every rank parses the same argv;
       rank 0 reports, and prepares root's side. */
    cfg.print_usage_errors = s_meant_to_be_root ();
    bool done = false;
    int status = s_parse (&cfg, argc, argv, &done);
    if (status != S_EXIT_OK || done) {
        s_config_free (&cfg);
        return status;
    }
    /* --connect: every argument is checked; the ranks run on the workers. */
    if (cfg.cluster && !getenv ("PM_RANK")) {
        status = s_run_on_cluster (&cfg, argc, argv);
        s_config_free (&cfg);
        return status;
    }

    /* The process meant to be rank 0 makes the table and checks the journal
       now, before any rank exists. */
    s_root_t root_state = {.bar_lock = PTHREAD_MUTEX_INITIALIZER};
    if (cfg.print_usage_errors) {
        status = s_prepare_root (&cfg, &root_state);
        if (status != S_EXIT_OK) {
            s_root_free (&root_state);
            s_config_free (&cfg);
            return status;
        }
        cfg.root = &root_state;
    }

    /* On a terminal, log lines clear the line they start on (a progress
       line); forked ranks inherit this. */
    if (isatty (STDERR_FILENO) == 1)
        pm_log_set_handler (s_log_on_tty, NULL);

    pm_options_t options = {.endpoint = cfg.endpoint};
    /* MultiProcessing forks the other ranks here: each returns from it. */
    pm_manager_t *pm = pm_create_parallel_manager (cfg.backend, (int) cfg.nranks, &options);
    if (!pm) {
        fprintf (stderr, "pm-sweep: cannot start the parallel manager (%s, %lld ranks): %s (%s)\n",
                 cfg.backend, (long long) cfg.nranks, pm_last_error (NULL),
                 pm_strerror (pm_last_error_code (NULL)));
        s_root_free (&root_state);
        s_config_free (&cfg);
        return S_EXIT_RUNTIME;
    }
    /* Root sees each chunk as it finishes: the journal and the progress line. */
    if (cfg.root)
        pm_set_progress (pm, s_on_progress, cfg.root);
    int rc = pm_run (pm, s_rank_main, &cfg);
    if (rc < 0) {
        fprintf (stderr, "pm-sweep: cannot run the ranks: %s (%s)\n", pm_last_error (pm),
                 pm_strerror (rc));
        status = S_EXIT_RUNTIME;
    }
    else
        status = rc == 0 ? S_EXIT_OK : S_EXIT_RUNTIME;
    pm_destroy (&pm);
    s_root_free (&root_state);
    s_config_free (&cfg);
    return status;
}
