/*  pm_coord_actor.c — the coordinator loop in a CZMQ actor thread.
    Pipe commands: $TERM; WATCH group size rank pid; LOST group size rank how;
    EXITS group size fd (a launcher's exit pipe, taken over); PROGRESS group,
    answered with pm_coord_sweep_progress as text.                         */
#include "pm_coord_actor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pm_log.h"
#include "pm_zsys.h"

typedef struct {
    pm_coord_config_t config;
    char *bind[PM_COORD_BIND_MAX]; /* owned copies of config.bind */
} s_args_t;

static bool
s_handle_pipe (pm_coord_t *coord, void *arg)
{
    zsock_t *pipe = arg;
    zmsg_t *msg = zmsg_recv (pipe);
    if (!msg)
        return false;
    char *command = zmsg_popstr (msg);
    bool keep_running = true;
    if (!command || streq (command, "$TERM"))
        keep_running = false;
    else if (streq (command, "WATCH")) {
        char *group = zmsg_popstr (msg), *size = zmsg_popstr (msg), *rank = zmsg_popstr (msg),
             *pid = zmsg_popstr (msg);
        if (group && size && rank && pid)
            pm_coord_watch_pid (coord, group, atoi (size), atoi (rank), atoi (pid));
        zstr_free (&group);
        zstr_free (&size);
        zstr_free (&rank);
        zstr_free (&pid);
    } else if (streq (command, "EXITS")) {
        char *group = zmsg_popstr (msg), *size = zmsg_popstr (msg), *fd = zmsg_popstr (msg);
        if (group && size && fd)
            pm_coord_watch_exits (coord, group, atoi (size), atoi (fd));
        else if (fd)
            close (atoi (fd));
        zstr_free (&group);
        zstr_free (&size);
        zstr_free (&fd);
    } else if (streq (command, "PROGRESS")) {
        char *group = zmsg_popstr (msg);
        zstr_sendf (pipe, "%lld",
                    group ? (long long) pm_coord_sweep_progress (coord, group) : -1LL);
        zstr_free (&group);
    } else if (streq (command, "LOST")) {
        char *group = zmsg_popstr (msg), *size = zmsg_popstr (msg), *rank = zmsg_popstr (msg),
             *text = zmsg_popstr (msg);
        if (group && size && rank && text)
            pm_coord_rank_lost (coord, group, atoi (size), atoi (rank), text);
        zstr_free (&group);
        zstr_free (&size);
        zstr_free (&rank);
        zstr_free (&text);
    }
    zstr_free (&command);
    zmsg_destroy (&msg);
    return keep_running;
}

static void
s_actor (zsock_t *pipe, void *arg)
{
    s_args_t *args = arg;
    char err[512] = "";
    pm_coord_t *coord = pm_coord_new (&args->config, err, sizeof err);
    zsock_signal (pipe, 0);
    if (!coord) {
        zstr_sendx (pipe, "ERR", err, NULL);
        return;
    }
    zstr_sendx (pipe, "OK", pm_coord_endpoint (coord, 0), NULL);
    zmq_pollitem_t item = {zsock_resolve (pipe), 0, ZMQ_POLLIN, 0};
    pm_coord_run (coord, &item, s_handle_pipe, pipe);
    pm_coord_destroy (&coord);
}

zactor_t *
pm_coord_actor_new (const pm_coord_config_t *config, char *first_endpoint, size_t endpoint_size,
                    char *err, size_t err_size)
{
    pm_zsys_ready ();
    s_args_t args;
    memset (&args, 0, sizeof args);
    args.config = *config;
    for (size_t i = 0; i < config->nbind; i++) {
        args.bind[i] = strdup (config->bind[i]);
        args.config.bind[i] = args.bind[i];
    }
    zactor_t *actor = zactor_new (s_actor, &args);
    char *status = NULL, *detail = NULL;
    if (actor)
        zstr_recvx (actor, &status, &detail, NULL);
    for (size_t i = 0; i < config->nbind; i++)
        free (args.bind[i]);
    if (!actor || !status || !streq (status, "OK")) {
        snprintf (err, err_size, "cannot start the embedded coordinator: %s",
                  detail ? detail : "actor did not start");
        zactor_destroy (&actor);
        zstr_free (&status);
        zstr_free (&detail);
        return NULL;
    }
    snprintf (first_endpoint, endpoint_size, "%s", detail ? detail : "");
    zstr_free (&status);
    zstr_free (&detail);
    return actor;
}

void
pm_coord_actor_watch (zactor_t *actor, const char *group, int size, int rank, int pid)
{
    char size_text[16], rank_text[16], pid_text[16];
    snprintf (size_text, sizeof size_text, "%d", size);
    snprintf (rank_text, sizeof rank_text, "%d", rank);
    snprintf (pid_text, sizeof pid_text, "%d", pid);
    zstr_sendx (actor, "WATCH", group, size_text, rank_text, pid_text, NULL);
}

void
pm_coord_actor_lost (zactor_t *actor, const char *group, int size, int rank, const char *how)
{
    char size_text[16], rank_text[16];
    snprintf (size_text, sizeof size_text, "%d", size);
    snprintf (rank_text, sizeof rank_text, "%d", rank);
    zstr_sendx (actor, "LOST", group, size_text, rank_text, how, NULL);
}

int64_t
pm_coord_actor_progress (zactor_t *actor, const char *group)
{
    zstr_sendx (actor, "PROGRESS", group, NULL);
    char *answer = zstr_recv (actor);
    int64_t last = answer ? strtoll (answer, NULL, 10) : -1;
    zstr_free (&answer);
    return last;
}

void
pm_coord_actor_exits (zactor_t *actor, const char *group, int size, int fd)
{
    char size_text[16], fd_text[16];
    snprintf (size_text, sizeof size_text, "%d", size);
    snprintf (fd_text, sizeof fd_text, "%d", fd);
    zstr_sendx (actor, "EXITS", group, size_text, fd_text, NULL);
}
