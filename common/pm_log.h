/*  pm_log.h — one logging macro set with levels and stable message ids.
    Library code never prints: every line goes through the handler set by
    pm_log_set_handler (default: stderr, level from $PM_LOG_LEVEL).        */
#ifndef PM_LOG_H_INCLUDED
#define PM_LOG_H_INCLUDED

#include "pm.h"

/* Process name put in each default-handler line ("pmd", "pm-run", "libpm"). */
void pm_log_set_program (const char *name);
/* Parse "error|warn|info|debug|trace"; returns -1 if unknown. */
int pm_log_level_parse (const char *text);
bool pm_log_enabled (pm_log_level_t level);
void pm_log_write (pm_log_level_t level, const char *id, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

#define pm_error(id, ...) pm_log_write (PM_LOG_ERROR, id, __VA_ARGS__)
#define pm_warn(id, ...) pm_log_write (PM_LOG_WARN, id, __VA_ARGS__)
#define pm_info(id, ...) pm_log_write (PM_LOG_INFO, id, __VA_ARGS__)
#define pm_debug(id, ...)                                                                  \
    do {                                                                                   \
        if (pm_log_enabled (PM_LOG_DEBUG))                                                 \
            pm_log_write (PM_LOG_DEBUG, id, __VA_ARGS__);                                  \
    } while (0)
#define pm_trace(id, ...)                                                                  \
    do {                                                                                   \
        if (pm_log_enabled (PM_LOG_TRACE))                                                 \
            pm_log_write (PM_LOG_TRACE, id, __VA_ARGS__);                                  \
    } while (0)

#endif
