/*  pmctl.c — status of a running pmd: its groups (with their ranks, pids
    and hosts) and its workers, as JSON.
        pmctl status [--connect EP] [--compact] [--timeout MS]           */
#include <czmq.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "pm.h"
#include "pm_clock.h"
#include "pm_env.h"
#include "pm_msg.h"
#include "pm_zsys.h"

static void
s_usage (FILE *out)
{
    fprintf (out,
             "Usage: pmctl status [--connect EP] [--compact] [--timeout MS]\n"
             "Ask a pmd for its status: groups with their ranks (pid, host) and whether they\n"
             "failed, registered pm-workers with their slots, message counters. JSON on stdout.\n\n"
             "  -c, --connect EP   the pmd (default: $PM_ENDPOINT)\n"
             "      --compact      one line instead of indented JSON\n"
             "  -t, --timeout MS   how long to wait for the answer (default 5000)\n"
             "  -h, --help         this text\n\n"
             "Exit status: 0, 1 if pmd did not answer, 2 on bad arguments.\n");
}

/* Indents JSON text (strings are copied as they are). */
static void
s_pretty (const char *text, size_t size)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < size; i++) {
        char c = text[i];
        if (in_string) {
            putchar (c);
            if (c == '\\' && i + 1 < size)
                putchar (text[++i]);
            else if (c == '"')
                in_string = false;
            continue;
        }
        switch (c) {
        case '"': in_string = true; putchar (c); break;
        case '{':
        case '[':
            putchar (c);
            if (i + 1 < size && (text[i + 1] == '}' || text[i + 1] == ']')) {
                putchar (text[++i]);
                break;
            }
            depth++;
            printf ("\n%*s", depth * 2, "");
            break;
        case '}':
        case ']': depth--; printf ("\n%*s%c", depth * 2, "", c); break;
        case ',': printf (",\n%*s", depth * 2, ""); break;
        case ':': printf (": "); break;
        default: putchar (c);
        }
    }
    putchar ('\n');
}

int
main (int argc, char **argv)
{
    const char *endpoint = pm_env_str ("PM_ENDPOINT");
    bool compact = false;
    int64_t timeout = 5000;
    enum { OPT_COMPACT = 256 };
    static const struct option options[] = {
        {"connect", required_argument, NULL, 'c'},
        {"compact", no_argument, NULL, OPT_COMPACT},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2 || strcmp (argv[1], "status") != 0) {
        if (argc >= 2 && (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)) {
            s_usage (stdout);
            return 0;
        }
        fprintf (stderr, "pmctl: unknown command '%s'\n", argc >= 2 ? argv[1] : "");
        s_usage (stderr);
        return 2;
    }
    optind = 2;
    int opt;
    while ((opt = getopt_long (argc, argv, "c:t:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c': endpoint = optarg; break;
        case OPT_COMPACT: compact = true; break;
        case 't':
            if (!pm_parse_int64 (optarg, 1, 3600000, &timeout)) {
                fprintf (stderr, "pmctl: --timeout needs milliseconds, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': s_usage (stdout); return 0;
        default: s_usage (stderr); return 2;
        }
    }
    if (!endpoint) {
        fprintf (stderr, "pmctl: no pmd given: --connect EP or PM_ENDPOINT\n");
        return 2;
    }
    pm_zsys_ready ();
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    void *handle = zsock_resolve (dealer);
    if (zmq_connect (handle, endpoint) != 0) {
        fprintf (stderr, "pmctl: cannot connect to %s: %s\n", endpoint, zmq_strerror (errno));
        zsock_destroy (&dealer);
        return 2;
    }
    pm_msg_t request;
    pm_msg_init (&request, PM_MSG_STATUS, 1);
    pm_msg_set (&request, PM_KEY_FLAGS, PM_STATUS_DETAIL);
    pm_msg_send (handle, NULL, 0, &request, NULL, 0, 0);
    int status = 1;
    zmq_pollitem_t item = {handle, 0, ZMQ_POLLIN, 0};
    int64_t deadline = pm_clock_ms () + timeout;
    while (pm_clock_ms () < deadline) {
        if (zmq_poll (&item, 1, (long) (deadline - pm_clock_ms ())) <= 0)
            continue;
        zmsg_t *reply = zmsg_recv (dealer);
        zframe_t *header = reply ? zmsg_pop (reply) : NULL;
        pm_msg_t msg;
        char why[160];
        bool ok = header && pm_msg_decode (&msg, zframe_data (header), zframe_size (header), why,
                                           sizeof why) == 0
                  && msg.type == PM_MSG_STATUS_REPLY;
        zframe_t *detail = ok ? zmsg_first (reply) : NULL;
        if (detail) {
            if (compact)
                printf ("%.*s\n", (int) zframe_size (detail), (const char *) zframe_data (detail));
            else
                s_pretty ((const char *) zframe_data (detail), zframe_size (detail));
            status = 0;
        }
        zframe_destroy (&header);
        zmsg_destroy (&reply);
        if (ok)
            break;
    }
    if (status != 0)
        fprintf (stderr, "pmctl: no status from %s within %lld ms\n", endpoint, (long long) timeout);
    zsock_destroy (&dealer);
    return status;
}
