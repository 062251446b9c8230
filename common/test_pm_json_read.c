/*  test_pm_json_read.c — the strict JSON reader: each kind, Ray's Jobs API
    responses, escapes, nesting, every truncation, depth, numbers and
    malformed documents.  Every document is copied into a malloc'd buffer
    of its exact size with no NUL, so ASan catches any read past len.    */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pm_json_read.h"

/* A document held as the reader gets it off the wire: exactly len bytes. */
typedef struct {
    char *data;
    size_t len;
} doc_t;

static doc_t
s_doc_n (const char *text, size_t len)
{
    doc_t doc = {malloc (len ? len : 1), len};
    cr_assert_not_null (doc.data);
    memcpy (doc.data, text, len);
    return doc;
}

static doc_t
s_doc (const char *text)
{
    return s_doc_n (text, strlen (text));
}

static pm_json_kind_t
s_find (const char *text, const char *key)
{
    doc_t doc = s_doc (text);
    pm_json_kind_t kind = pm_json_find (doc.data, doc.len, key);
    free (doc.data);
    return kind;
}

static char *
s_string (const char *text, const char *key)
{
    doc_t doc = s_doc (text);
    char *value = pm_json_get_string (doc.data, doc.len, key);
    free (doc.data);
    return value;
}

static bool
s_int (const char *text, const char *key, long long *out)
{
    doc_t doc = s_doc (text);
    bool ok = pm_json_get_int (doc.data, doc.len, key, out);
    free (doc.data);
    return ok;
}

static bool
s_bool (const char *text, const char *key, bool *out)
{
    doc_t doc = s_doc (text);
    bool ok = pm_json_get_bool (doc.data, doc.len, key, out);
    free (doc.data);
    return ok;
}

static void
s_assert_string (const char *text, const char *key, const char *want)
{
    char *value = s_string (text, key);
    cr_assert_not_null (value, "no string %s in %s", key, text);
    cr_assert_str_eq (value, want, "key %s of %s", key, text);
    free (value);
}

/* ---- kinds ---------------------------------------------------------------- */

Test (json_read, each_kind)
{
    const char *text = "{\"s\": \"x\", \"n\": 12, \"b\": false, \"z\": null, "
                       "\"o\": {\"k\": 1}, \"a\": [1, 2], \"e\": {}, \"ea\": []}";
    cr_assert_eq (s_find (text, "s"), PM_JSON_STRING);
    cr_assert_eq (s_find (text, "n"), PM_JSON_NUMBER);
    cr_assert_eq (s_find (text, "b"), PM_JSON_BOOL);
    cr_assert_eq (s_find (text, "z"), PM_JSON_NULL);
    cr_assert_eq (s_find (text, "o"), PM_JSON_OTHER);
    cr_assert_eq (s_find (text, "a"), PM_JSON_OTHER);
    cr_assert_eq (s_find (text, "e"), PM_JSON_OTHER);
    cr_assert_eq (s_find (text, "ea"), PM_JSON_OTHER);
    cr_assert_eq (s_find (text, "missing"), PM_JSON_MISSING);
    cr_assert_eq (s_find (text, ""), PM_JSON_MISSING);
    cr_assert_eq (s_find ("{}", "s"), PM_JSON_MISSING);
    cr_assert_eq (s_find (" \t\r\n{ \n} \r\n\t", "s"), PM_JSON_MISSING);
    cr_assert_eq (s_find ("{\"\": 1}", ""), PM_JSON_NUMBER);
}

Test (json_read, getters_check_the_kind)
{
    const char *text = "{\"s\": \"7\", \"n\": 7, \"t\": true, \"f\": false, \"z\": null, \"o\": {}}";
    long long n = 42;
    bool b = false;
    cr_assert (s_int (text, "n", &n));
    cr_assert_eq (n, 7);
    cr_assert (s_bool (text, "t", &b));
    cr_assert (b);
    cr_assert (s_bool (text, "f", &b));
    cr_assert_not (b);
    s_assert_string (text, "s", "7");

    n = 42;
    b = true;
    cr_assert_not (s_int (text, "s", &n));
    cr_assert_not (s_int (text, "t", &n));
    cr_assert_not (s_int (text, "z", &n));
    cr_assert_not (s_int (text, "o", &n));
    cr_assert_not (s_int (text, "missing", &n));
    cr_assert_eq (n, 42);
    cr_assert_not (s_bool (text, "z", &b));
    cr_assert_not (s_bool (text, "s", &b));
    cr_assert_not (s_bool (text, "n", &b));
    cr_assert_not (s_bool (text, "missing", &b));
    cr_assert (b);
    cr_assert_null (s_string (text, "n"));
    cr_assert_null (s_string (text, "t"));
    cr_assert_null (s_string (text, "z"));
    cr_assert_null (s_string (text, "o"));
    cr_assert_null (s_string (text, "missing"));
}

Test (json_read, null_or_empty_text_is_invalid)
{
    long long n = 1;
    bool b = true;
    cr_assert_eq (pm_json_find (NULL, 0, "k"), PM_JSON_INVALID);
    cr_assert_null (pm_json_get_string (NULL, 0, "k"));
    cr_assert_not (pm_json_get_int (NULL, 0, "k", &n));
    cr_assert_not (pm_json_get_bool (NULL, 0, "k", &b));
    cr_assert_eq (s_find ("", "k"), PM_JSON_INVALID);
    cr_assert_eq (s_find ("   \n", "k"), PM_JSON_INVALID);
}

/* ---- Ray's Jobs REST API ------------------------------------------------------ */

Test (json_read, ray_submit)
{
    const char *text = "{\"job_id\": \"raysubmit_1a2B3c\", \"submission_id\": \"raysubmit_1a2B3c\"}";
    s_assert_string (text, "job_id", "raysubmit_1a2B3c");
    s_assert_string (text, "submission_id", "raysubmit_1a2B3c");
    cr_assert_eq (s_find (text, "job"), PM_JSON_MISSING);
    cr_assert_eq (s_find (text, "job_id_"), PM_JSON_MISSING);
}

Test (json_read, ray_job_details)
{
    const char *text =
        "{\"type\": \"SUBMISSION\", \"job_id\": null, \"submission_id\": \"raysubmit_XYZ\", "
        "\"driver_info\": null, \"status\": \"FAILED\", \"entrypoint\": \"python -u run.py --x \\\"y\\\"\", "
        "\"message\": \"Job entrypoint command failed with exit code 7, last available logs:\\n"
        "Traceback (most recent call last):\\n  File \\\"run.py\\\", line 3\\nValueError: bad\\n\", "
        "\"error_type\": \"JOB_ENTRYPOINT_COMMAND_ERROR\", \"start_time\": 1718000000123, "
        "\"end_time\": 1718000004567, \"metadata\": null, "
        "\"runtime_env\": {\"env_vars\": {\"PM_RANK\": \"0\", \"status\": \"nested\"}, \"pip\": [\"a\", \"b]\"]}, "
        "\"driver_agent_http_address\": \"http://127.0.0.1:52365\", "
        "\"driver_node_id\": \"f3e1\", \"driver_exit_code\": 7}";
    s_assert_string (text, "status", "FAILED");
    s_assert_string (text, "message",
                     "Job entrypoint command failed with exit code 7, last available logs:\n"
                     "Traceback (most recent call last):\n  File \"run.py\", line 3\nValueError: bad\n");
    s_assert_string (text, "entrypoint", "python -u run.py --x \"y\"");
    long long code = 0;
    cr_assert (s_int (text, "driver_exit_code", &code));
    cr_assert_eq (code, 7);
    cr_assert (s_int (text, "end_time", &code));
    cr_assert_eq (code, 1718000004567LL);
    cr_assert_eq (s_find (text, "metadata"), PM_JSON_NULL);
    cr_assert_eq (s_find (text, "job_id"), PM_JSON_NULL);
    cr_assert_null (s_string (text, "metadata"));
    cr_assert_eq (s_find (text, "runtime_env"), PM_JSON_OTHER);
    cr_assert_eq (s_find (text, "env_vars"), PM_JSON_MISSING);
    cr_assert_eq (s_find (text, "PM_RANK"), PM_JSON_MISSING);
}

Test (json_read, ray_logs_and_stop)
{
    const char *logs = "{\"logs\": \"rank 0 ready\\ncaf\\u00e9 \\u2713\\r\\n\\tdone\\n\"}";
    s_assert_string (logs, "logs", "rank 0 ready\ncaf\xc3\xa9 \xe2\x9c\x93\r\n\tdone\n");
    s_assert_string ("{\"logs\": \"\"}", "logs", "");

    bool stopped = false;
    cr_assert (s_bool ("{\"stopped\": true}", "stopped", &stopped));
    cr_assert (stopped);
    cr_assert (s_bool ("{\"stopped\":false}", "stopped", &stopped));
    cr_assert_not (stopped);
}

/* ---- strings and escapes -------------------------------------------------------- */

Test (json_read, escapes)
{
    s_assert_string ("{\"k\": \"a\\nb\"}", "k", "a\nb");
    s_assert_string ("{\"k\": \"\\\"q\\\"\"}", "k", "\"q\"");
    s_assert_string ("{\"k\": \"back\\\\slash\"}", "k", "back\\slash");
    s_assert_string ("{\"k\": \"a\\/b\"}", "k", "a/b");
    s_assert_string ("{\"k\": \"\\b\\f\\n\\r\\t\"}", "k", "\b\f\n\r\t");
    s_assert_string ("{\"k\": \"\\u00e9\"}", "k", "\xc3\xa9");
    s_assert_string ("{\"k\": \"\\u00E9\"}", "k", "\xc3\xa9");
    s_assert_string ("{\"k\": \"\\u0041\\u007f\\u0080\\u07ff\\u0800\\uffff\"}", "k",
                     "A\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf");
    s_assert_string ("{\"k\": \"\\ud83d\\ude00\"}", "k", "\xf0\x9f\x98\x80");
    s_assert_string ("{\"k\": \"\\uDBFF\\uDFFF\"}", "k", "\xf4\x8f\xbf\xbf");
    s_assert_string ("{\"k\": \"\\u0001\"}", "k", "\x01");
    /* Raw UTF-8 passes through untouched */
    s_assert_string ("{\"k\": \"caf\xc3\xa9 \xf0\x9f\x98\x80\"}", "k", "caf\xc3\xa9 \xf0\x9f\x98\x80");
}

Test (json_read, bad_escapes_are_invalid)
{
    const char *bad[] = {
        "{\"k\": \"\\x41\"}",         /* no such escape */
        "{\"k\": \"\\U00e9\"}",
        "{\"k\": \"\\'\"}",
        "{\"k\": \"\\u12\"}",         /* short \u */
        "{\"k\": \"\\u12G4\"}",
        "{\"k\": \"\\ud83d\"}",       /* lone high surrogate */
        "{\"k\": \"\\ud83dx\"}",
        "{\"k\": \"\\ud83d\\n\"}",
        "{\"k\": \"\\ud83d\\u0041\"}", /* high surrogate, then no low one */
        "{\"k\": \"\\ud83d\\ud83d\"}",
        "{\"k\": \"\\ude00\"}",       /* lone low surrogate */
        "{\"k\": \"\\ude00\\ud83d\"}",
        "{\"k\": \"a\nb\"}",          /* raw control characters */
        "{\"k\": \"a\tb\"}",
        "{\"k\": \"\x1f\"}",
        "{\"k\": \"\xc3\x28\"}",      /* bad UTF-8: broken sequence */
        "{\"k\": \"\xc0\xaf\"}",      /* overlong */
        "{\"k\": \"\xe0\x80\xaf\"}",
        "{\"k\": \"\xed\xa0\x80\"}",  /* an encoded surrogate */
        "{\"k\": \"\xf4\x90\x80\x80\"}", /* past U+10FFFF */
        "{\"k\": \"\xff\"}",
        "{\"k\": \"\x80\"}",          /* a stray continuation byte */
        "{\"k\": \"\xe2\x9c\"}",      /* cut short by the quote */
        "{\"k\\q\": 1}",              /* in a key too */
        "{\"\\ud800\": 1}",
        "{\"k\": 'single'}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq (s_find (bad[i], "k"), PM_JSON_INVALID, "accepted: %s", bad[i]);
        cr_assert_null (s_string (bad[i], "k"), "read a string from: %s", bad[i]);
    }
}

Test (json_read, escaped_nul_is_refused_by_get_string)
{
    /* Valid JSON, but no C string can hold it */
    const char *text = "{\"k\": \"a\\u0000b\", \"ok\": \"fine\"}";
    cr_assert_eq (s_find (text, "k"), PM_JSON_STRING);
    cr_assert_null (s_string (text, "k"));
    s_assert_string (text, "ok", "fine");
    /* A key holding U+0000 never matches a C string key */
    cr_assert_eq (s_find ("{\"a\\u0000\": 1}", "a"), PM_JSON_MISSING);
}

Test (json_read, keys_compare_unescaped)
{
    const char *text = "{\"k\\u0065y\": 1, \"a\\/b\": true, \"caf\\u00e9\": \"x\", \"t\\\"q\": null, "
                       "\"\\ud83d\\ude00\": 2}";
    long long n = 0;
    cr_assert (s_int (text, "key", &n));
    cr_assert_eq (n, 1);
    cr_assert_eq (s_find (text, "a/b"), PM_JSON_BOOL);
    cr_assert_eq (s_find (text, "a\\/b"), PM_JSON_MISSING);
    cr_assert_eq (s_find (text, "caf\xc3\xa9"), PM_JSON_STRING);
    cr_assert_eq (s_find (text, "t\"q"), PM_JSON_NULL);
    cr_assert_eq (s_find (text, "\xf0\x9f\x98\x80"), PM_JSON_NUMBER);
    cr_assert_eq (s_find (text, "ke"), PM_JSON_MISSING);
    cr_assert_eq (s_find (text, "keys"), PM_JSON_MISSING);
}

/* ---- nesting ---------------------------------------------------------------------- */

Test (json_read, nested_values_are_skipped)
{
    const char *text = "{\"inner\": {\"hidden\": 1, \"deep\": {\"x\": [\"}\", \"]\", {\"y\": \"{\"}]}}, "
                       "\"list\": [[], {}, [1, [2, [3]]], \"\\\"]\", null, true, -1.5e3], "
                       "\"after\": \"seen\"}";
    s_assert_string (text, "after", "seen");
    cr_assert_eq (s_find (text, "inner"), PM_JSON_OTHER);
    cr_assert_eq (s_find (text, "list"), PM_JSON_OTHER);
    cr_assert_eq (s_find (text, "hidden"), PM_JSON_MISSING);
    cr_assert_eq (s_find (text, "deep"), PM_JSON_MISSING);
    cr_assert_eq (s_find (text, "x"), PM_JSON_MISSING);
    cr_assert_eq (s_find (text, "y"), PM_JSON_MISSING);
    long long n = 0;
    cr_assert_not (s_int (text, "hidden", &n));
}

Test (json_read, malformed_nesting_is_invalid)
{
    const char *bad[] = {
        "{\"a\": [1, 2}",
        "{\"a\": {\"b\": 1]}",
        "{\"a\": [1, 2]]}",
        "{\"a\": {1: 2}}",          /* a name must be a string */
        "{\"a\": {\"b\"}}",
        "{\"a\": {\"b\": }}",
        "{\"a\": [1,]}",
        "{\"a\": [,1]}",
        "{\"a\": [1 2]}",
        "{\"a\": {\"b\": 1,}}",
        "{\"a\": {\"b\": 1 \"c\": 2}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq (s_find (bad[i], "a"), PM_JSON_INVALID, "accepted: %s", bad[i]);
}

/* A document LEVELS containers deep in all, the top-level object included:
   {"a":[[...[]...]]} */
static doc_t
s_deep (int levels)
{
    size_t len = 5 + 2 * (size_t) (levels - 1) + 1;
    char *text = malloc (len);
    cr_assert_not_null (text);
    memcpy (text, "{\"a\":", 5);
    size_t at = 5;
    for (int i = 1; i < levels; i++)
        text[at++] = '[';
    for (int i = 1; i < levels; i++)
        text[at++] = ']';
    text[at++] = '}';
    cr_assert_eq (at, len);
    return (doc_t) {text, len};
}

Test (json_read, depth_cap)
{
    doc_t ok = s_deep (PM_JSON_MAX_DEPTH);
    cr_assert_eq (pm_json_find (ok.data, ok.len, "a"), PM_JSON_OTHER);
    free (ok.data);
    doc_t deep = s_deep (PM_JSON_MAX_DEPTH + 1);
    cr_assert_eq (pm_json_find (deep.data, deep.len, "a"), PM_JSON_INVALID);
    free (deep.data);

    /* Objects count too */
    char text[1024];
    size_t at = 0;
    for (int i = 0; i < PM_JSON_MAX_DEPTH + 1; i++)
        at += (size_t) snprintf (text + at, sizeof text - at, "{\"a\":");
    at += (size_t) snprintf (text + at, sizeof text - at, "1");
    for (int i = 0; i < PM_JSON_MAX_DEPTH + 1; i++)
        text[at++] = '}';
    text[at] = '\0';
    cr_assert_eq (s_find (text, "a"), PM_JSON_INVALID);
    doc_t fewer = s_doc_n (text + 5, at - 6); /* one level fewer */
    cr_assert_eq (pm_json_find (fewer.data, fewer.len, "a"), PM_JSON_OTHER);
    free (fewer.data);

    /* Far deeper than any stack would take by recursion: refused at the cap */
    doc_t abyss = {malloc (1000000), 1000000};
    cr_assert_not_null (abyss.data);
    abyss.data[0] = '{';
    memset (abyss.data + 1, '[', abyss.len - 1);
    cr_assert_eq (pm_json_find (abyss.data, abyss.len, "a"), PM_JSON_INVALID);
    free (abyss.data);
}

/* ---- truncation: every proper prefix of a document is invalid ------------------------ */

Test (json_read, every_prefix_is_invalid)
{
    const char *text =
        "{\"status\": \"FAILED\", \"message\": \"a\\n\\\"b\\\" \\u00e9 \\ud83d\\ude00 caf\xc3\xa9\", "
        "\"driver_exit_code\": -12, \"t\": 1.25e-3, \"metadata\": null, \"stopped\": true, \"f\": false, "
        "\"o\": {\"k\": [1, {\"x\": \"y\"}, []]}, \"\\u006Bey\": 0}";
    size_t full = strlen (text);
    doc_t whole = s_doc (text);
    cr_assert_eq (pm_json_find (whole.data, whole.len, "status"), PM_JSON_STRING);
    free (whole.data);

    for (size_t len = 0; len < full; len++) {
        doc_t doc = s_doc_n (text, len);
        cr_assert_eq (pm_json_find (doc.data, doc.len, "status"), PM_JSON_INVALID,
                      "prefix of %zu bytes accepted", len);
        cr_assert_eq (pm_json_find (doc.data, doc.len, "nope"), PM_JSON_INVALID);
        char *value = pm_json_get_string (doc.data, doc.len, "message");
        cr_assert_null (value, "prefix of %zu bytes gave a string", len);
        long long n = 99;
        bool b = false;
        cr_assert_not (pm_json_get_int (doc.data, doc.len, "driver_exit_code", &n));
        cr_assert_eq (n, 99);
        cr_assert_not (pm_json_get_bool (doc.data, doc.len, "stopped", &b));
        free (doc.data);
    }
}

Test (json_read, trailing_text)
{
    cr_assert_eq (s_find ("{\"a\": 1}  \n\t\r", "a"), PM_JSON_NUMBER);
    cr_assert_eq (s_find ("{\"a\": 1} x", "a"), PM_JSON_INVALID);
    cr_assert_eq (s_find ("{\"a\": 1}{}", "a"), PM_JSON_INVALID);
    cr_assert_eq (s_find ("{\"a\": 1},", "a"), PM_JSON_INVALID);
    cr_assert_eq (s_find ("{\"a\": 1}}", "a"), PM_JSON_INVALID);
    cr_assert_eq (s_find ("\xef\xbb\xbf{\"a\": 1}", "a"), PM_JSON_INVALID); /* a BOM */
    /* A NUL inside LEN is not whitespace */
    doc_t doc = s_doc_n ("{\"a\": 1}\0", 9);
    cr_assert_eq (pm_json_find (doc.data, doc.len, "a"), PM_JSON_INVALID);
    free (doc.data);
    /* Only LEN counts: the rest of a bigger buffer is never looked at */
    const char *text = "{\"a\": 1}garbage";
    cr_assert_eq (pm_json_find (text, 8, "a"), PM_JSON_NUMBER);
}

/* ---- duplicates ----------------------------------------------------------------------- */

Test (json_read, duplicate_key_last_wins)
{
    const char *text = "{\"status\": \"PENDING\", \"n\": 1, \"status\": \"RUNNING\", \"n\": 2}";
    s_assert_string (text, "status", "RUNNING");
    long long n = 0;
    cr_assert (s_int (text, "n", &n));
    cr_assert_eq (n, 2);
    const char *mixed = "{\"k\": \"text\", \"k\": 5}";
    cr_assert_eq (s_find (mixed, "k"), PM_JSON_NUMBER);
    cr_assert_null (s_string (mixed, "k"));
    cr_assert_eq (s_find ("{\"k\": 5, \"k\": {\"k\": \"in\"}}", "k"), PM_JSON_OTHER);
    cr_assert_eq (s_find ("{\"k\": 5, \"k\": [1], \"k\": true}", "k"), PM_JSON_BOOL);
    /* A later duplicate does not hide an invalid document */
    cr_assert_eq (s_find ("{\"k\": 5, \"k\": 6, }", "k"), PM_JSON_INVALID);
}

/* ---- numbers ---------------------------------------------------------------------------- */

Test (json_read, numbers)
{
    long long n = 0;
    cr_assert_eq (s_find ("{\"n\": -0}", "n"), PM_JSON_NUMBER);
    n = 5;
    cr_assert (s_int ("{\"n\": -0}", "n", &n));
    cr_assert_eq (n, 0);
    cr_assert (s_int ("{\"n\": 0}", "n", &n));
    cr_assert_eq (n, 0);
    cr_assert (s_int ("{\"n\":-42}", "n", &n));
    cr_assert_eq (n, -42);
    cr_assert (s_int ("{\"n\": 9223372036854775807}", "n", &n));
    cr_assert_eq (n, LLONG_MAX);
    cr_assert (s_int ("{\"n\": -9223372036854775808}", "n", &n));
    cr_assert_eq (n, LLONG_MIN);

    n = 77;
    const char *not_int[] = {
        "{\"n\": 1e5}", "{\"n\": 1E5}", "{\"n\": 1.0}", "{\"n\": 1.5}", "{\"n\": -0.0}",
        "{\"n\": 1e-2}", "{\"n\": 1e+2}", "{\"n\": 9223372036854775808}",
        "{\"n\": -9223372036854775809}", "{\"n\": 18446744073709551616}",
        "{\"n\": 99999999999999999999999999999}",
    };
    for (size_t i = 0; i < sizeof not_int / sizeof not_int[0]; i++) {
        cr_assert_eq (s_find (not_int[i], "n"), PM_JSON_NUMBER, "not a number: %s", not_int[i]);
        cr_assert_not (s_int (not_int[i], "n", &n), "read an int from %s", not_int[i]);
        cr_assert_eq (n, 77);
    }

    const char *bad[] = {
        "{\"n\": 01}", "{\"n\": -01}", "{\"n\": 00}", "{\"n\": -}", "{\"n\": +1}", "{\"n\": .5}",
        "{\"n\": 1.}", "{\"n\": 1.e5}", "{\"n\": 1e}", "{\"n\": 1e+}", "{\"n\": 1e-}", "{\"n\": 0x10}",
        "{\"n\": --1}", "{\"n\": - 1}", "{\"n\": 1 2}", "{\"n\": NaN}", "{\"n\": Infinity}",
        "{\"n\": -Infinity}", "{\"n\": 1_000}", "{\"n\": 1.5.5}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq (s_find (bad[i], "n"), PM_JSON_INVALID, "accepted: %s", bad[i]);
        cr_assert_not (s_int (bad[i], "n", &n));
        cr_assert_eq (n, 77);
    }
}

/* ---- literals and the top level ----------------------------------------------------------- */

Test (json_read, literals)
{
    const char *bad[] = {
        "{\"b\": tru}", "{\"b\": True}", "{\"b\": truex}", "{\"b\": nul}", "{\"b\": NULL}",
        "{\"b\": fals}", "{\"b\": falsey}", "{\"b\": undefined}", "{\"b\": }", "{\"b\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq (s_find (bad[i], "b"), PM_JSON_INVALID, "accepted: %s", bad[i]);
}

Test (json_read, top_level_must_be_one_object)
{
    const char *bad[] = {
        "[]", "[{\"a\": 1}]", "\"a\"", "1", "true", "null", "{", "}", "{\"a\"", "{\"a\":",
        "{\"a\": 1", "{\"a\": 1,", "{a: 1}", "{'a': 1}", "{\"a\" 1}", "{\"a\": 1,}", "{,}",
        "{\"a\": 1 \"b\": 2}", "{\"a\": 1;\"b\": 2}", "{\"a\"\n:\n1\n,\n}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq (s_find (bad[i], "a"), PM_JSON_INVALID, "accepted: %s", bad[i]);
        cr_assert_null (s_string (bad[i], "a"));
    }
    cr_assert_eq (s_find ("{\"a\"\n:\n1\n,\n\"b\"\t:\r[ ]\n}", "b"), PM_JSON_OTHER);
}

/* ---- every byte of a document corrupted: never a crash or an overread --------------------- */

Test (json_read, corrupted_bytes)
{
    const char *text = "{\"status\": \"RUNNING\", \"n\": [1, {\"x\": \"\\u00e9\"}], \"b\": true}";
    const char subst[] = {'\0', '"', '\\', '{', '}', '[', ']', ':', ',', 'u', '0', '-', 'e',
                          ' ', '\n', (char) 0x80, (char) 0xc3, (char) 0xff};
    size_t len = strlen (text);
    for (size_t at = 0; at < len; at++) {
        for (size_t s = 0; s < sizeof subst; s++) {
            doc_t doc = s_doc_n (text, len);
            doc.data[at] = subst[s];
            pm_json_kind_t kind = pm_json_find (doc.data, doc.len, "status");
            cr_assert (kind >= PM_JSON_INVALID && kind <= PM_JSON_OTHER);
            free (pm_json_get_string (doc.data, doc.len, "status"));
            long long n;
            bool b;
            (void) pm_json_get_int (doc.data, doc.len, "n", &n);
            (void) pm_json_get_bool (doc.data, doc.len, "b", &b);
            free (doc.data);
        }
    }
}
