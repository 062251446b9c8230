/*  pmd.c — the coordinator daemon: a thin main over the coordinator library.
    Signals arrive through a signalfd polled by the coordinator loop, so
    SIGINT/SIGTERM end it cleanly between two messages.                   */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <czmq.h>

#include "pm.h"
#include "pm_coord.h"
#include "pm_env.h"
#include "pm_log.h"

static void
s_usage (FILE *out)
{
    fprintf (out,
             "Usage: pmd [OPTIONS]\n"
             "The pm coordinator daemon: ranks register here, and their collectives run\n"
             "as message rounds through it.\n\n"
             "  -b, --bind EP               endpoint to bind (repeatable; default tcp://*:5555);\n"
             "                              tcp://HOST:* picks a free port\n"
             "  -l, --log-level LEVEL       error|warn|info|debug|trace (default info)\n"
             "      --heartbeat-interval MS how often ranks heartbeat (default: timeout/3, at most 1000)\n"
             "      --heartbeat-timeout MS  silence after which a rank is dead (default 3000)\n"
             "      --join-timeout MS       an incomplete group fails after this (default 60000)\n"
             "      --max-frame BYTES       largest frame accepted (default 1073741824)\n"
             "      --max-groups N          groups at once (default 10000)\n"
             "      --max-ranks N           ranks over all groups at once (default 1000000)\n"
             "      --ready-file PATH       write the bound endpoints there once listening\n"
             "  -h, --help                  this text\n"
             "  -V, --version               print the version\n\n"
             "Environment: PM_LOG_LEVEL, PM_HEARTBEAT_IVL_MS, PM_HEARTBEAT_TIMEOUT_MS,\n"
             "PM_JOIN_TIMEOUT_MS give defaults that the options override.\n");
}

static bool
s_parse_ms (const char *flag, const char *text, int64_t min, int64_t max, int64_t *value)
{
    if (pm_parse_int64 (text, min, max, value))
        return true;
    fprintf (stderr, "pmd: %s needs an integer in [%lld, %lld], got '%s'\n", flag,
             (long long) min, (long long) max, text);
    return false;
}

/* Write endpoints to path atomically: readers never see half a file. */
static int
s_write_ready_file (const char *path, pm_coord_t *coord)
{
    char tmp[4096];
    snprintf (tmp, sizeof tmp, "%s.tmp.%d", path, (int) getpid ());
    FILE *f = fopen (tmp, "w");
    if (!f)
        return -1;
    for (size_t i = 0; i < pm_coord_endpoint_count (coord); i++)
        fprintf (f, "%s\n", pm_coord_endpoint (coord, i));
    if (fclose (f) != 0 || rename (tmp, path) != 0) {
        unlink (tmp);
        return -1;
    }
    return 0;
}

static bool
s_on_signal (pm_coord_t *coord, void *arg)
{
    int fd = *(int *) arg;
    struct signalfd_siginfo info;
    if (read (fd, &info, sizeof info) != (ssize_t) sizeof info)
        return true;
    pm_info ("PM1003", "received signal %d, shutting down", (int) info.ssi_signo);
    return false;
}

int
main (int argc, char **argv)
{
    pm_log_set_program ("pmd");
    if (!getenv ("PM_LOG_LEVEL"))
        pm_log_set_level (PM_LOG_INFO);
    char err[512];
    pm_coord_config_t config;
    if (pm_coord_config_defaults (&config, err, sizeof err) != 0) {
        fprintf (stderr, "pmd: %s\n", err);
        return 2;
    }
    const char *ready_file = NULL;
    enum { OPT_HB_IVL = 256, OPT_HB_TIMEOUT, OPT_JOIN_TIMEOUT, OPT_MAX_FRAME, OPT_READY,
           OPT_MAX_GROUPS, OPT_MAX_RANKS };
    static const struct option options[] = {
        {"bind", required_argument, NULL, 'b'},
        {"log-level", required_argument, NULL, 'l'},
        {"heartbeat-interval", required_argument, NULL, OPT_HB_IVL},
        {"heartbeat-timeout", required_argument, NULL, OPT_HB_TIMEOUT},
        {"join-timeout", required_argument, NULL, OPT_JOIN_TIMEOUT},
        {"max-frame", required_argument, NULL, OPT_MAX_FRAME},
        {"ready-file", required_argument, NULL, OPT_READY},
        {"max-groups", required_argument, NULL, OPT_MAX_GROUPS},
        {"max-ranks", required_argument, NULL, OPT_MAX_RANKS},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    bool interval_given = pm_env_str ("PM_HEARTBEAT_IVL_MS") != NULL;
    while ((opt = getopt_long (argc, argv, "b:l:hV", options, NULL)) != -1) {
        switch (opt) {
        case 'b':
            if (config.nbind == PM_COORD_BIND_MAX) {
                fprintf (stderr, "pmd: at most %d --bind endpoints\n", PM_COORD_BIND_MAX);
                return 2;
            }
            config.bind[config.nbind++] = optarg;
            break;
        case 'l': {
            int level = pm_log_level_parse (optarg);
            if (level < 0) {
                fprintf (stderr, "pmd: unknown log level '%s' (error|warn|info|debug|trace)\n",
                         optarg);
                return 2;
            }
            pm_log_set_level ((pm_log_level_t) level);
            break;
        }
        case OPT_HB_IVL:
            if (!s_parse_ms ("--heartbeat-interval", optarg, 5, 3600000, &config.heartbeat_ivl_ms))
                return 2;
            interval_given = true;
            break;
        case OPT_HB_TIMEOUT:
            if (!s_parse_ms ("--heartbeat-timeout", optarg, 20, 36000000,
                             &config.heartbeat_timeout_ms))
                return 2;
            break;
        case OPT_JOIN_TIMEOUT:
            if (!s_parse_ms ("--join-timeout", optarg, 100, 86400000, &config.join_timeout_ms))
                return 2;
            break;
        case OPT_MAX_FRAME:
            if (!s_parse_ms ("--max-frame", optarg, 4096, INT64_MAX, &config.max_frame))
                return 2;
            break;
        case OPT_READY: ready_file = optarg; break;
        case OPT_MAX_GROUPS:
            if (!s_parse_ms ("--max-groups", optarg, 1, 100000000, &config.max_groups))
                return 2;
            break;
        case OPT_MAX_RANKS:
            if (!s_parse_ms ("--max-ranks", optarg, 1, 1000000000, &config.max_ranks))
                return 2;
            break;
        case 'h': s_usage (stdout); return 0;
        case 'V': printf ("pmd %d.%d.%d (protocol 1)\n", PM_VERSION_MAJOR, PM_VERSION_MINOR, PM_VERSION_PATCH); return 0;
        default: s_usage (stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "pmd: unexpected argument '%s'\n", argv[optind]);
        s_usage (stderr);
        return 2;
    }
    if (!interval_given) /* three heartbeats per timeout, at most one a second */
        config.heartbeat_ivl_ms = config.heartbeat_timeout_ms / 3 < 1000
                                      ? config.heartbeat_timeout_ms / 3
                                      : 1000;
    if (config.heartbeat_timeout_ms <= config.heartbeat_ivl_ms) {
        fprintf (stderr, "pmd: --heartbeat-timeout (%lld) must exceed --heartbeat-interval (%lld)\n",
                 (long long) config.heartbeat_timeout_ms, (long long) config.heartbeat_ivl_ms);
        return 2;
    }
    if (config.nbind == 0)
        config.bind[config.nbind++] = "tcp://*:5555";

    /* Block the signals before any thread exists so that every thread
       inherits the mask and they arrive only through the signalfd.    */
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    sigprocmask (SIG_BLOCK, &signals, NULL);
    signal (SIGPIPE, SIG_IGN);
    int signal_fd = signalfd (-1, &signals, SFD_CLOEXEC);
    if (signal_fd < 0) {
        fprintf (stderr, "pmd: signalfd: %s\n", strerror (errno));
        return 1;
    }
    zsys_handler_set (NULL);

    pm_coord_t *coord = pm_coord_new (&config, err, sizeof err);
    if (!coord) {
        pm_error ("PM1001", "%s", err);
        close (signal_fd);
        return 1;
    }
    for (size_t i = 0; i < pm_coord_endpoint_count (coord); i++)
        pm_info ("PM1002", "listening on %s (heartbeat %lld/%lld ms, join timeout %lld ms)",
                 pm_coord_endpoint (coord, i), (long long) config.heartbeat_ivl_ms,
                 (long long) config.heartbeat_timeout_ms, (long long) config.join_timeout_ms);
    if (ready_file && s_write_ready_file (ready_file, coord) != 0) {
        pm_error ("PM1004", "cannot write the ready file %s: %s", ready_file, strerror (errno));
        pm_coord_destroy (&coord);
        close (signal_fd);
        return 1;
    }
    zmq_pollitem_t item = {NULL, signal_fd, ZMQ_POLLIN, 0};
    int rc = pm_coord_run (coord, &item, s_on_signal, &signal_fd);
    pm_coord_stats_t stats;
    pm_coord_stats (coord, &stats);
    pm_info ("PM1005", "stopped: %llu messages handled, %llu dropped, %llu groups open",
             (unsigned long long) stats.messages, (unsigned long long) stats.dropped,
             (unsigned long long) stats.groups);
    pm_coord_destroy (&coord);
    if (ready_file)
        unlink (ready_file);
    close (signal_fd);
    zsys_shutdown ();
    return rc == 0 ? 0 : 1;
}
