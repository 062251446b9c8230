/*  pm_json.h — a small growable text buffer that writes JSON, for status
    reports.  Strings are escaped; nothing here parses JSON.             */
#ifndef PM_JSON_H_INCLUDED
#define PM_JSON_H_INCLUDED
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *data;    /* NUL-terminated text so far (NULL until the first write) */
    size_t size, cap;
    bool failed;   /* out of memory at some point: the text is incomplete */
} pm_json_t;

void pm_json_raw (pm_json_t *json, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* A JSON string literal of text, quoted and escaped. */
void pm_json_string (pm_json_t *json, const char *text);
void pm_json_free (pm_json_t *json);
#endif
