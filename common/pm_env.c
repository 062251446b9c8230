/*  pm_env.c — strict number parsing for the environment and argv.  */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pm_env.h"

bool
pm_parse_int64 (const char *text, int64_t min, int64_t max, int64_t *value)
{
    if (!text || !*text)
        return false;
    char *end = NULL;
    errno = 0;
    long long parsed = strtoll (text, &end, 10);
    if (errno || *end != '\0' || parsed < min || parsed > max)
        return false;
    *value = parsed;
    return true;
}

const char *
pm_env_str (const char *name)
{
    const char *text = getenv (name);
    return text && *text ? text : NULL;
}

const char *
pm_ipc_dir (void)
{
    const char *tmp = pm_env_str ("TMPDIR");
    return tmp && strlen (tmp) <= 60 ? tmp : "/tmp";
}

int
pm_env_int64 (const char *name, int64_t min, int64_t max, int64_t fallback, int64_t *value,
              char *err, size_t err_size)
{
    const char *text = pm_env_str (name);
    if (!text) {
        *value = fallback;
        return 0;
    }
    if (!pm_parse_int64 (text, min, max, value)) {
        snprintf (err, err_size, "%s='%s' is not an integer in [%lld, %lld]", name, text,
                  (long long) min, (long long) max);
        return -1;
    }
    return 0;
}
