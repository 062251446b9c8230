/*  pm_progress.h — the text of pm-sweep's live progress line:

        [##########----------]  812/2000  40.6%  401.2 rows/s  ETA 0:03  1 failed

    pm-sweep redraws it on stderr (a terminal only) as chunks of rows
    finish, at most PM_PROGRESS_MIN_INTERVAL_S apart.                      */
#ifndef PM_PROGRESS_H_INCLUDED
#define PM_PROGRESS_H_INCLUDED

#include <stddef.h>

/* Shortest time between two redraws, in seconds. */
#define PM_PROGRESS_MIN_INTERVAL_S 0.1

typedef struct {
    size_t done;     /* rows finished, those of an earlier run (base) included */
    size_t total;    /* rows the bar counts to */
    size_t base;     /* of done, rows finished before this run started (not in the rate) */
    size_t failed;   /* rows that failed */
    double elapsed;  /* seconds since this run's sweep started */
    const char *note; /* appended in parentheses, or NULL */
} pm_progress_state_t;

/* The line for state, fitting in columns characters (a terminal's width;
   <= 0: 80), without '\r' or '\n'.  The bar is dropped on a narrow
   terminal; the text is cut to fit.  Returns text.                        */
char *pm_progress_format (char *text, size_t size, int columns, const pm_progress_state_t *state);

/* Seconds as "M:SS", or "H:MM:SS" from an hour on; "--:--" when unknown
   (negative, not finite, or longer than 99 hours).  Returns text.         */
char *pm_progress_duration (char *text, size_t size, double seconds);

#endif
