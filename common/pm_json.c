/*  pm_json.c — JSON text building (see pm_json.h).  */
#include "pm_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool
s_reserve (pm_json_t *json, size_t more)
{
    if (json->failed)
        return false;
    if (json->size + more + 1 <= json->cap)
        return true;
    size_t cap = json->cap ? json->cap * 2 : 256;
    while (cap < json->size + more + 1)
        cap *= 2;
    char *grown = realloc (json->data, cap);
    if (!grown) {
        json->failed = true;
        return false;
    }
    json->data = grown;
    json->cap = cap;
    return true;
}

void
pm_json_raw (pm_json_t *json, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    int needed = vsnprintf (NULL, 0, fmt, args);
    va_end (args);
    if (needed < 0 || !s_reserve (json, (size_t) needed))
        return;
    va_start (args, fmt);
    vsnprintf (json->data + json->size, (size_t) needed + 1, fmt, args);
    va_end (args);
    json->size += (size_t) needed;
}

void
pm_json_string (pm_json_t *json, const char *text)
{
    pm_json_raw (json, "\"");
    for (const unsigned char *c = (const unsigned char *) text; c && *c; c++) {
        if (*c == '"' || *c == '\\')
            pm_json_raw (json, "\\%c", *c);
        else if (*c < 0x20)
            pm_json_raw (json, "\\u%04x", *c);
        else
            pm_json_raw (json, "%c", *c);
    }
    pm_json_raw (json, "\"");
}

void
pm_json_free (pm_json_t *json)
{
    free (json->data);
    memset (json, 0, sizeof *json);
}
