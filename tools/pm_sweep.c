/*  pm_sweep.c — pm-sweep: run a model over a parameter space and write the
    results as CSV.

    An SPMD program like any pm program: pm_create_parallel_manager early in
    main (MultiProcessing forks the other ranks there; under pm-run the rank
    comes from the environment), then every rank runs s_rank_main: root
    makes the table (pm_params), every rank builds the model (a plugin, or
    the command-per-row model of pm_command_model), pm_scatter evaluates the
    rows, pm_gather brings them to root, and root writes the CSV (pm_csv).
    Every argument is checked before the manager is created, so bad input
    exits 2 before any work.                                                 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "pm.h"
#include "pm_command_model.h"
#include "pm_csv.h"
#include "pm_env.h"
#include "pm_log.h"
#include "pm_params.h"

#define S_EXIT_OK 0
#define S_EXIT_RUNTIME 1
#define S_EXIT_USAGE 2

/* Longest --timeout: a year. */
#define S_TIMEOUT_MAX_S (365.0 * 24 * 3600)

/* Everything the command line says; read-only once the ranks run (they may
   be threads sharing it). */
typedef struct {
    const char *backend;       /* keyword for pm_create_parallel_manager */
    int64_t nranks;            /* its number_of_subprocesses */
    const char *endpoint;      /* --connect, or NULL */
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
    const char *output_path;   /* -o */
    int schedule;              /* -1 = the library's default, else pm_schedule_t */
    size_t rows;               /* rows of the table */
    const char **input_names;  /* the parameters' names, in column order */
    char *params_list;         /* the same, comma-separated, for the command model */
    bool print_usage_errors;   /* this process reports argv errors (rank 0 or sole) */
} s_config_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
"Usage: pm-sweep [--backend B -n N | --connect EP] (--model LIB.so[:PREFIX] | --command TEMPLATE)\n"
"                --param 'NAME=EXPR' ... [--samples S --seed X] [--arg KEY=VALUE ...]\n"
"                [--outputs A,B,...] [--timeout SECONDS] -o RESULTS.csv\n"
"\n"
"Run a model at every point of a parameter space, in parallel, and write the results as CSV.\n"
"pm-sweep is an SPMD pm program: it also runs unchanged under `pm-run -n N -- pm-sweep ...`\n"
"(the ranks then come from pm-run and --backend, -n are ignored).\n"
"\n"
"Where the ranks run:\n"
"  -b, --backend B        Serial, ConcurrentFutures, MultiProcessing (default), MPI, RayIo\n"
"                         (case-insensitive; aliases concurrent.futures, ray; MPI and RayIo\n"
"                         are not in this build yet).  With ConcurrentFutures the ranks are\n"
"                         threads: a plugin's build and execute must be thread-safe\n"
"  -n, --np N             number of ranks (default: the number of online CPUs)\n"
"      --connect EP       register the ranks with the standalone pmd at EP (e.g.\n"
"                         tcp://head:5555) instead of an embedded coordinator\n"
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
"  A one-line summary (rows, failures, ranks, backend, seconds, rows/s) goes to stderr.\n"
"  (A live progress bar is not available yet.)\n"
"\n"
"Other:\n"
"  -l, --log-level LEVEL  error|warn|info|debug|trace (default: $PM_LOG_LEVEL, else warn)\n"
"      --resume           not implemented yet (rejected)\n"
"  -h, --help             this text\n"
"  -V, --version          the version\n"
"\n"
"Exit status: 0 the sweep ran (even if some rows failed: the summary says how many);\n"
"1 a runtime error (the parallel manager, the model's build, writing the file);\n"
"2 bad arguments or input (nothing was run).\n"
"\n"
"Example:\n"
"  pm-sweep -n 4 --command 'ro-sim --feed {feed} --recovery {r}' \\\n"
"      --param 'feed=linspace(5, 45, 9)' --param 'r=list(0.4, 0.5, 0.6)' -o ro.csv\n",
             PM_MODEL_DEFAULT_PREFIX, PM_PARAMS_MAX_ROWS);
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
    };
    static const struct option options[] = {
        {"backend", required_argument, NULL, 'b'},
        {"np", required_argument, NULL, 'n'},
        {"connect", required_argument, NULL, OPT_CONNECT},
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
            break;
        case OPT_CONNECT:
            if (!*optarg)
                return s_usage_error (cfg, "--connect needs an endpoint, e.g. tcp://head:5555");
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
    if (resume)
        return s_usage_error (cfg, "--resume is not implemented yet");

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
    if (cfg->print_usage_errors
        && pm_csv_check_target (cfg->output_path, err, sizeof err) != 0)
        return s_usage_error (cfg, "-o: %s", err);

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
   root's own failure (no table, row 0 failed).  Being a collective, it
   also turns a root that died early into PM_EPEERLOST on every rank. */
static int
s_agree (pm_manager_t *pm, const s_config_t *cfg, const double *table, char **outputs)
{
    *outputs = NULL;
    bool root = pm_is_root_process (pm);
    char *message = NULL;
    if (root) {
        char why[1024] = "out of memory for the parameter table";
        char *list = NULL;
        if (table && cfg->command && cfg->outputs) {
            size_t size = 1;
            for (size_t k = 0; k < cfg->noutputs; k++)
                size += strlen (cfg->outputs[k]) + 1;
            list = calloc (1, size);
            for (size_t k = 0; list && k < cfg->noutputs; k++) {
                if (k)
                    strcat (list, ",");
                strcat (list, cfg->outputs[k]);
            }
        }
        else if (table && cfg->command)
            list = s_discover_outputs (cfg, table, why, sizeof why);
        else if (table)
            list = strdup ("");
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

static int
s_rank_main (pm_manager_t *pm, void *arg)
{
    const s_config_t *cfg = arg;
    bool root = pm_is_root_process (pm);
    size_t cols = pm_params_count (cfg->params);
    double started = s_now ();
    double *table = NULL;
    if (root) {
        table = pm_params_table (cfg->params, cfg->rows, cfg->seed);
        if (!table)
            fprintf (stderr, "pm-sweep: out of memory for the table of %zu rows x %zu columns\n",
                     cfg->rows, cols);
    }

    char *outputs = NULL;
    int agreed = s_agree (pm, cfg, table, &outputs);
    if (agreed != 0) {
        free (table);
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

    int rc = pm_scatter (pm, model, root ? table : NULL, root ? cfg->rows : 0, root ? cols : 0);
    free (table);
    pm_model_destroy (&model);
    if (rc != 0)
        return s_runtime_error (pm, "the sweep (pm_scatter)", rc);
    pm_results_t *results = NULL;
    rc = pm_gather (pm, &results);
    if (rc != 0)
        return s_runtime_error (pm, "collecting the results (pm_gather)", rc);
    double seconds = s_now () - started;
    int status = S_EXIT_OK;
    if (root) {
        size_t failed = 0;
        if (pm_csv_write_results (cfg->output_path, cfg->input_names, cols, results, &failed, err,
                                  sizeof err)
            != 0) {
            fprintf (stderr, "pm-sweep: %s\n", err);
            status = S_EXIT_RUNTIME;
        }
        else {
            char lost[256] = "";
            size_t nlost = pm_results_lost_count (results);
            if (nlost) {
                size_t used = (size_t) snprintf (lost, sizeof lost, ", %zu rank%s lost (", nlost,
                                                 nlost > 1 ? "s" : "");
                for (size_t i = 0; i < nlost && used < sizeof lost; i++)
                    used += (size_t) snprintf (lost + used, sizeof lost - used, "%s%d",
                                               i ? " " : "", pm_results_lost_rank (results, i));
                if (used < sizeof lost)
                    snprintf (lost + used, sizeof lost - used, "; their rows were redone)");
            }
            size_t rows = pm_results_rows (results);
            int ranks = pm_number_of_worker_processes (pm);
            /* The same line on a terminal and off it; no live progress yet. */
            fprintf (stderr,
                     "pm-sweep: %zu rows, %zu failed, %d rank%s (%s), %.2f s, %.1f rows/s%s -> "
                     "%s\n",
                     rows, failed, ranks, ranks == 1 ? "" : "s", pm_backend_name (pm), seconds,
                     seconds > 0 ? (double) rows / seconds : 0.0, lost, cfg->output_path);
        }
    }
    pm_results_destroy (&results);
    return status;
}

int
main (int argc, char **argv)
{
    pm_log_set_program ("pm-sweep");
    s_config_t cfg = {.schedule = -1};
    /* Under pm-run every rank parses the same argv; rank 0 reports. */
    const char *rank_env = pm_env_str ("PM_RANK");
    cfg.print_usage_errors = !rank_env || strcmp (rank_env, "0") == 0;
    bool done = false;
    int status = s_parse (&cfg, argc, argv, &done);
    if (status != S_EXIT_OK || done) {
        s_config_free (&cfg);
        return status;
    }

    pm_options_t options = {.endpoint = cfg.endpoint};
    /* MultiProcessing forks the other ranks here: each returns from it. */
    pm_manager_t *pm = pm_create_parallel_manager (cfg.backend, (int) cfg.nranks, &options);
    if (!pm) {
        fprintf (stderr, "pm-sweep: cannot start the parallel manager (%s, %lld ranks): %s (%s)\n",
                 cfg.backend, (long long) cfg.nranks, pm_last_error (NULL),
                 pm_strerror (pm_last_error_code (NULL)));
        s_config_free (&cfg);
        return S_EXIT_RUNTIME;
    }
    int rc = pm_run (pm, s_rank_main, &cfg);
    if (rc < 0) {
        fprintf (stderr, "pm-sweep: cannot run the ranks: %s (%s)\n", pm_last_error (pm),
                 pm_strerror (rc));
        status = S_EXIT_RUNTIME;
    }
    else
        status = rc == 0 ? S_EXIT_OK : S_EXIT_RUNTIME;
    pm_destroy (&pm);
    s_config_free (&cfg);
    return status;
}
