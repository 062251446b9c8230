/*  pm_json_read.h — a small, strict JSON reader for flat lookups in HTTP
    responses (Ray's Jobs REST API): one top-level object, values looked
    up by key.  Every call validates the whole document (RFC 8259: string
    escapes and UTF-8, the number grammar, literals) and never reads past
    LEN; nothing is kept between calls.  Nesting is allowed inside values
    up to PM_JSON_MAX_DEPTH open objects/arrays, the top-level object
    included; deeper is invalid.  Keys are compared after unescaping, so
    "k\u0065y" matches "key".  If a key appears twice in the top-level
    object, the last occurrence wins.  A string holding \u0000 is valid
    JSON (pm_json_find sees it) but no C string can hold it, so
    pm_json_get_string refuses it and a key holding it never matches.     */
#ifndef PM_JSON_READ_H_INCLUDED
#define PM_JSON_READ_H_INCLUDED
#include <stdbool.h>
#include <stddef.h>

#define PM_JSON_MAX_DEPTH 64

/* Looks up KEY among the members of the top-level JSON object TEXT (LEN bytes, need not be
   NUL-terminated).  Returns PM_JSON_STRING, PM_JSON_NUMBER, PM_JSON_BOOL, PM_JSON_NULL,
   PM_JSON_OTHER (object or array), PM_JSON_MISSING if the object has no such key, or
   PM_JSON_INVALID if TEXT is not one well-formed JSON object (trailing whitespace allowed). */
typedef enum { PM_JSON_INVALID = -1, PM_JSON_MISSING = 0, PM_JSON_STRING, PM_JSON_NUMBER,
               PM_JSON_BOOL, PM_JSON_NULL, PM_JSON_OTHER } pm_json_kind_t;
pm_json_kind_t pm_json_find (const char *text, size_t len, const char *key);
/* The string value of KEY, unescaped into a fresh NUL-terminated malloc'd buffer (\uXXXX and
   surrogate pairs become UTF-8; an embedded \u0000 is refused as invalid); NULL if missing,
   not a string, invalid, or out of memory. */
char *pm_json_get_string (const char *text, size_t len, const char *key);
/* The value of KEY as an integer in *out (JSON number with no fraction/exponent, in range of
   long long): true on success, false otherwise (and *out unchanged). */
bool pm_json_get_int (const char *text, size_t len, const char *key, long long *out);
/* The value of KEY as a boolean: true on success (value in *out). */
bool pm_json_get_bool (const char *text, size_t len, const char *key, bool *out);
#endif
