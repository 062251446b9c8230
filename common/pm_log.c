/*  pm_log.c — levelled log lines with stable ids, to a replaceable handler. */
#include "pm_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_int s_level = -1; /* -1: not read from the environment yet */
static pm_log_fn s_handler;      /* NULL: the default stderr handler */
static void *s_handler_arg;
static char s_program[32] = "libpm";
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *s_level_letter = "EWIDT";

int
pm_log_level_parse (const char *text)
{
    static const char *names[] = {"error", "warn", "info", "debug", "trace"};
    if (!text)
        return -1;
    for (int i = 0; i < 5; i++)
        if (strcasecmp (text, names[i]) == 0)
            return i;
    if (strcasecmp (text, "warning") == 0)
        return PM_LOG_WARN;
    return -1;
}

static int
s_current_level (void)
{
    int level = atomic_load (&s_level);
    if (level < 0) {
        level = pm_log_level_parse (getenv ("PM_LOG_LEVEL"));
        if (level < 0)
            level = PM_LOG_WARN;
        atomic_store (&s_level, level);
    }
    return level;
}

void
pm_log_set_level (pm_log_level_t level)
{
    if ((int) level >= PM_LOG_ERROR && level <= PM_LOG_TRACE)
        atomic_store (&s_level, (int) level);
}

void
pm_log_set_handler (pm_log_fn fn, void *arg)
{
    pthread_mutex_lock (&s_lock);
    s_handler = fn;
    s_handler_arg = arg;
    pthread_mutex_unlock (&s_lock);
}

void
pm_log_set_program (const char *name)
{
    pthread_mutex_lock (&s_lock);
    snprintf (s_program, sizeof s_program, "%s", name ? name : "libpm");
    pthread_mutex_unlock (&s_lock);
}

bool
pm_log_enabled (pm_log_level_t level)
{
    return (int) level <= s_current_level ();
}

void
pm_log_write (pm_log_level_t level, const char *id, const char *fmt, ...)
{
    if (!pm_log_enabled (level))
        return;
    char text[1024];
    va_list args;
    va_start (args, fmt);
    vsnprintf (text, sizeof text, fmt, args);
    va_end (args);

    pthread_mutex_lock (&s_lock);
    if (s_handler) {
        pm_log_fn fn = s_handler;
        void *arg = s_handler_arg;
        pthread_mutex_unlock (&s_lock);
        fn (level, id, text, arg);
        return;
    }
    struct timeval now;
    gettimeofday (&now, NULL);
    struct tm tm;
    gmtime_r (&now.tv_sec, &tm);
    char stamp[32];
    strftime (stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    /* One fprintf per line so lines of concurrent ranks do not interleave. */
    fprintf (stderr, "%s.%03ldZ %s[%d] %c %s %s\n", stamp, (long) now.tv_usec / 1000, s_program,
             (int) getpid (), s_level_letter[level], id, text);
    pthread_mutex_unlock (&s_lock);
}
