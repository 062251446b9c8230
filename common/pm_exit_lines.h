/*  pm_exit_lines.h — reading a Ray launcher's exit pipe: one line
    "exit RANK STATUS" per rank that ended.  The coordinator, rank 0's
    heartbeat thread and pm-run all read it; they differ only in what
    they do with a rank's end.                                          */
#ifndef PM_EXIT_LINES_H_INCLUDED
#define PM_EXIT_LINES_H_INCLUDED
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char line[64];  /* the unfinished line so far */
    size_t len;     /* past sizeof line: too long, malformed when it ends */
} pm_exit_lines_t;

typedef void (pm_exit_fn) (void *arg, int rank, int status);

/* Reads what the (non-blocking) fd holds and calls on_exit for each
   well-formed line of a group of size; *malformed (if not NULL) counts the
   other lines.  1 if it read something, 0 if there was nothing to read
   now, -1 once the writer is gone (end of file or a read error).       */
int pm_exit_lines_read (pm_exit_lines_t *self, int fd, int size, pm_exit_fn *on_exit, void *arg,
                        int *malformed);
#endif
