/*  pm_progress.c — the text of pm-sweep's progress line.  See pm_progress.h. */
#include "pm_progress.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define S_BAR_MIN 10
#define S_BAR_MAX 30

char *
pm_progress_duration (char *text, size_t size, double seconds)
{
    if (!isfinite (seconds) || seconds < 0 || seconds >= 99 * 3600.0) {
        snprintf (text, size, "--:--");
        return text;
    }
    long s = (long) (seconds + 0.5);
    if (s >= 3600)
        snprintf (text, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf (text, size, "%ld:%02ld", s / 60, s % 60);
    return text;
}

/* The text after the bar.  done_width pads the count to the total's width. */
static void
s_info (char *info, size_t size, size_t done, size_t total, double rate, const char *eta,
        size_t failed, const char *note)
{
    char digits[32];
    int done_width = snprintf (digits, sizeof digits, "%zu", total);
    snprintf (info, size, "%*zu/%zu  %5.1f%%  %.1f rows/s  ETA %s  %zu failed%s%s%s", done_width,
              done, total, total ? 100.0 * (double) done / (double) total : 100.0, rate, eta,
              failed, note ? "  (" : "", note ? note : "", note ? ")" : "");
}

char *
pm_progress_format (char *text, size_t size, int columns, const pm_progress_state_t *st)
{
    if (!size)
        return text;
    if (columns <= 0)
        columns = 80;
    size_t done = st->done > st->total ? st->total : st->done;
    size_t ran = done > st->base ? done - st->base : 0;
    double rate = st->elapsed > 0 ? (double) ran / st->elapsed : 0;
    char eta[32];
    if (done >= st->total)
        pm_progress_duration (eta, sizeof eta, 0);
    else
        pm_progress_duration (eta, sizeof eta, rate > 0 ? (double) (st->total - done) / rate : -1);
    char info[256];
    s_info (info, sizeof info, done, st->total, rate, eta, st->failed, st->note);
    /* The bar's width depends on the terminal and the sweep only, so that it
       does not jump as the numbers grow: room for the widest text. */
    char widest[256];
    s_info (widest, sizeof widest, st->total, st->total, 99999.9, "00:00:00", st->total, st->note);
    /* Leave the last column free: writing there wraps on some terminals. */
    int room = columns - 1 - (int) strlen (widest) - 4; /* "[", "]", two spaces */
    if (room < S_BAR_MIN) {
        snprintf (text, size, "%.*s", columns > 1 ? columns - 1 : 1, info);
        return text;
    }
    int width = room > S_BAR_MAX ? S_BAR_MAX : room;
    int filled = st->total ? (int) ((double) width * (double) done / (double) st->total) : width;
    char bar[S_BAR_MAX + 1];
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : '-';
    bar[width] = '\0';
    snprintf (text, size, "[%s]  %s", bar, info);
    return text;
}
