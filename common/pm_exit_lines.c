/*  pm_exit_lines.c — a Ray launcher's exit pipe (see pm_exit_lines.h).  */
#include "pm_exit_lines.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

static bool
s_parse (const char *line, int size, int *rank, int *status)
{
    int used = 0;
    return sscanf (line, "exit %d %d%n", rank, status, &used) == 2 && line[used] == '\0'
           && *rank >= 0 && *rank < size;
}

int
pm_exit_lines_read (pm_exit_lines_t *self, int fd, int size, pm_exit_fn *on_exit, void *arg,
                    int *malformed)
{
    char chunk[256];
    ssize_t got = read (fd, chunk, sizeof chunk);
    if (got < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (got <= 0)
        return -1;
    for (ssize_t i = 0; i < got; i++) {
        if (chunk[i] != '\n') {
            if (self->len < sizeof self->line - 1)
                self->line[self->len] = chunk[i];
            self->len++;
            continue;
        }
        int rank, status;
        bool whole = self->len < sizeof self->line;
        if (whole)
            self->line[self->len] = '\0';
        self->len = 0;
        if (whole && s_parse (self->line, size, &rank, &status))
            on_exit (arg, rank, status);
        else if (malformed)
            (*malformed)++;
    }
    return 1;
}
