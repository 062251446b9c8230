/*  pmctl.c — control of a running pmd.
        pmctl status [--connect EP] [--compact] [--timeout MS]
            its groups (with their ranks, pids and hosts) and its workers, as JSON
        pmctl kill GROUP [--signal SIG] [--connect EP] [--timeout MS]
            a signal to the ranks of a launch on its workers (pm-run --connect) */
#include <czmq.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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
             "       pmctl kill GROUP [--signal SIG] [--connect EP] [--timeout MS]\n\n"
             "status: ask a pmd for its status: groups with their ranks (pid, host) and whether\n"
             "        they failed, registered pm-workers with their slots, message counters.\n"
             "        JSON on stdout.\n"
             "kill:   send SIG (default TERM) to the ranks of the launch GROUP that pmd placed\n"
             "        on its workers (pm-run --connect; its pm-run then exits with their\n"
             "        status). Prints how many ranks got it.\n\n"
             "  -c, --connect EP   the pmd (default: $PM_ENDPOINT)\n"
             "      --compact      status: one line instead of indented JSON\n"
             "  -s, --signal SIG   kill: TERM, INT, HUP, KILL, USR1, USR2 or a number 1-64\n"
             "  -t, --timeout MS   how long to wait for the answer (default 5000)\n"
             "  -h, --help         this text\n\n"
             "Exit status: 0; 1 if pmd did not answer, or (kill) no launch of GROUP runs\n"
             "there; 2 on bad arguments.\n");
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

/* A signal by name (TERM, SIGTERM) or number; 0 if it is neither. */
static int
s_signal_number (const char *text)
{
    static const struct {
        const char *name;
        int number;
    } names[] = {{"TERM", SIGTERM}, {"INT", SIGINT},   {"HUP", SIGHUP},
                 {"KILL", SIGKILL}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}};
    if (strncasecmp (text, "SIG", 3) == 0)
        text += 3;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcasecmp (text, names[i].name) == 0)
            return names[i].number;
    int64_t number;
    return pm_parse_int64 (text, 1, 64, &number) ? (int) number : 0;
}

/* Sends request to pmd and waits for a reply of type want (or ERROR);
   NULL when none came in time.  The reply's header is decoded into *msg. */
static zmsg_t *
s_ask (zsock_t *dealer, const pm_msg_t *request, uint32_t want, int64_t timeout, pm_msg_t *msg)
{
    void *handle = zsock_resolve (dealer);
    pm_msg_send (handle, NULL, 0, request, NULL, 0, 0);
    zmq_pollitem_t item = {handle, 0, ZMQ_POLLIN, 0};
    int64_t deadline = pm_clock_ms () + timeout;
    while (pm_clock_ms () < deadline) {
        if (zmq_poll (&item, 1, (long) (deadline - pm_clock_ms ())) <= 0)
            continue;
        zmsg_t *reply = zmsg_recv (dealer);
        zframe_t *header = reply ? zmsg_pop (reply) : NULL;
        char why[160];
        bool ok = header && pm_msg_decode (msg, zframe_data (header), zframe_size (header), why,
                                           sizeof why) == 0
                  && (msg->type == want || msg->type == PM_MSG_ERROR);
        zframe_destroy (&header);
        if (ok)
            return reply;
        zmsg_destroy (&reply);
    }
    return NULL;
}

int
main (int argc, char **argv)
{
    const char *endpoint = pm_env_str ("PM_ENDPOINT");
    bool compact = false;
    int64_t timeout = 5000;
    int signal_number = SIGTERM;
    enum { OPT_COMPACT = 256 };
    static const struct option options[] = {
        {"connect", required_argument, NULL, 'c'},
        {"compact", no_argument, NULL, OPT_COMPACT},
        {"signal", required_argument, NULL, 's'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool kill_command = argc >= 2 && strcmp (argv[1], "kill") == 0;
    if (argc < 2 || (strcmp (argv[1], "status") != 0 && !kill_command)) {
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
    while ((opt = getopt_long (argc, argv, "c:s:t:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c': endpoint = optarg; break;
        case OPT_COMPACT: compact = true; break;
        case 's':
            signal_number = s_signal_number (optarg);
            if (!signal_number) {
                fprintf (stderr, "pmctl: --signal needs a signal name or number, got '%s'\n",
                         optarg);
                return 2;
            }
            break;
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
    const char *group = NULL;
    if (kill_command) {
        if (optind + 1 != argc || !argv[optind][0] || strlen (argv[optind]) > PM_GROUP_MAX) {
            fprintf (stderr, "pmctl: kill takes one group name (see pmctl status)\n");
            return 2;
        }
        group = argv[optind];
    } else if (optind != argc) {
        fprintf (stderr, "pmctl: status takes no arguments, got '%s'\n", argv[optind]);
        return 2;
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
    pm_msg_t request, msg;
    int status = 1;
    if (kill_command) {
        pm_msg_init (&request, PM_MSG_KILL, 1);
        pm_msg_set_str (&request, PM_KEY_GROUP, group);
        pm_msg_set (&request, PM_KEY_SIGNAL, signal_number);
        zmsg_t *reply = s_ask (dealer, &request, PM_MSG_RESULT, timeout, &msg);
        if (!reply)
            fprintf (stderr, "pmctl: no answer from %s within %lld ms\n", endpoint,
                     (long long) timeout);
        else if (msg.type == PM_MSG_RESULT && pm_msg_get (&msg, PM_KEY_CODE, -1) == 0) {
            printf ("group '%s': %s\n", group, msg.text);
            status = 0;
        } else
            fprintf (stderr, "pmctl: group '%s': %s\n", group, msg.text[0] ? msg.text : "refused");
        zmsg_destroy (&reply);
        zsock_destroy (&dealer);
        return status;
    }
    pm_msg_init (&request, PM_MSG_STATUS, 1);
    pm_msg_set (&request, PM_KEY_FLAGS, PM_STATUS_DETAIL);
    zmsg_t *reply = s_ask (dealer, &request, PM_MSG_STATUS_REPLY, timeout, &msg);
    zframe_t *detail = reply && msg.type == PM_MSG_STATUS_REPLY ? zmsg_first (reply) : NULL;
    if (detail) {
        if (compact)
            printf ("%.*s\n", (int) zframe_size (detail), (const char *) zframe_data (detail));
        else
            s_pretty ((const char *) zframe_data (detail), zframe_size (detail));
        status = 0;
    }
    zmsg_destroy (&reply);
    if (status != 0)
        fprintf (stderr, "pmctl: no status from %s within %lld ms\n", endpoint, (long long) timeout);
    zsock_destroy (&dealer);
    return status;
}
