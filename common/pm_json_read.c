/*  pm_json_read.c — strict JSON lookups in one top-level object (see
    pm_json_read.h).  One pass over the whole text validates it and notes
    where the wanted value starts; the getters then read that value again.
    Nesting is walked with an explicit stack, never by recursion, so a
    hostile document cannot exhaust the C stack.                          */
#include "pm_json_read.h"

#include <assert.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A position in the text; every read checks pos against len first. */
typedef struct {
    const char *text;
    size_t len;
    size_t pos;
} reader_t;

/* Where the bytes of a string go as it is unescaped: nowhere (a NULL
   sink only validates), compared against a key, or copied out. */
typedef struct {
    const char *key;    /* compare against this NUL-terminated key, or NULL */
    size_t matched;     /* bytes of key matched so far */
    bool differs;       /* some byte did not match key */
    char *out;          /* copy here (room for the raw length), or NULL */
    size_t size;        /* bytes copied so far */
    bool has_nul;       /* an escaped U+0000 was seen */
} sink_t;

/* The byte at the cursor, or -1 at the end of the text. */
static int
s_peek (reader_t *r)
{
    return r->pos < r->len ? (unsigned char) r->text[r->pos] : -1;
}

static void
s_skip_ws (reader_t *r)
{
    while (r->pos < r->len) {
        char c = r->text[r->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        r->pos++;
    }
}

static void
s_emit (sink_t *sink, unsigned char byte)
{
    if (!sink)
        return;
    if (byte == 0)
        sink->has_nul = true;
    if (sink->key && !sink->differs) {
        /* Stops advancing at the key's NUL, so the key is never overread */
        if (byte != 0 && (unsigned char) sink->key[sink->matched] == byte)
            sink->matched++;
        else
            sink->differs = true;
    }
    if (sink->out)
        sink->out[sink->size++] = (char) byte;
}

/* Four hex digits at the cursor, as a code unit. */
static bool
s_hex4 (reader_t *r, uint32_t *unit)
{
    if (r->len - r->pos < 4)
        return false;
    uint32_t value = 0;
    for (size_t i = 0; i < 4; i++) {
        char c = r->text[r->pos + i];
        uint32_t digit;
        if (c >= '0' && c <= '9')
            digit = (uint32_t) (c - '0');
        else if (c >= 'a' && c <= 'f')
            digit = (uint32_t) (c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            digit = (uint32_t) (c - 'A' + 10);
        else
            return false;
        value = value * 16 + digit;
    }
    r->pos += 4;
    *unit = value;
    return true;
}

/* A \u escape after the "\u": one code unit, or a surrogate pair.  A lone
   surrogate has no UTF-8 form, so it is refused rather than mangled. */
static bool
s_unicode_escape (reader_t *r, sink_t *sink)
{
    uint32_t code;
    if (!s_hex4 (r, &code))
        return false;
    if (code >= 0xDC00 && code <= 0xDFFF)
        return false;
    if (code >= 0xD800 && code <= 0xDBFF) {
        uint32_t low;
        if (r->len - r->pos < 2 || r->text[r->pos] != '\\' || r->text[r->pos + 1] != 'u')
            return false;
        r->pos += 2;
        if (!s_hex4 (r, &low) || low < 0xDC00 || low > 0xDFFF)
            return false;
        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
    }
    if (code < 0x80)
        s_emit (sink, (unsigned char) code);
    else if (code < 0x800) {
        s_emit (sink, (unsigned char) (0xC0 | (code >> 6)));
        s_emit (sink, (unsigned char) (0x80 | (code & 0x3F)));
    } else if (code < 0x10000) {
        s_emit (sink, (unsigned char) (0xE0 | (code >> 12)));
        s_emit (sink, (unsigned char) (0x80 | ((code >> 6) & 0x3F)));
        s_emit (sink, (unsigned char) (0x80 | (code & 0x3F)));
    } else {
        s_emit (sink, (unsigned char) (0xF0 | (code >> 18)));
        s_emit (sink, (unsigned char) (0x80 | ((code >> 12) & 0x3F)));
        s_emit (sink, (unsigned char) (0x80 | ((code >> 6) & 0x3F)));
        s_emit (sink, (unsigned char) (0x80 | (code & 0x3F)));
    }
    return true;
}

/* An escape sequence at the cursor (on the backslash). */
static bool
s_escape (reader_t *r, sink_t *sink)
{
    r->pos++;
    int c = s_peek (r);
    unsigned char byte;
    switch (c) {
    case '"':  byte = '"'; break;
    case '\\': byte = '\\'; break;
    case '/':  byte = '/'; break;
    case 'b':  byte = '\b'; break;
    case 'f':  byte = '\f'; break;
    case 'n':  byte = '\n'; break;
    case 'r':  byte = '\r'; break;
    case 't':  byte = '\t'; break;
    case 'u':
        r->pos++;
        return s_unicode_escape (r, sink);
    default:
        return false;
    }
    r->pos++;
    s_emit (sink, byte);
    return true;
}

/* One raw UTF-8 sequence of two or more bytes at the cursor.  Overlong
   forms, encoded surrogates and code points past U+10FFFF are refused
   (RFC 3629), so what pm_json_get_string returns is always valid UTF-8. */
static bool
s_utf8 (reader_t *r, sink_t *sink)
{
    unsigned char lead = (unsigned char) r->text[r->pos];
    unsigned char low = 0x80, high = 0xBF; /* range of the second byte */
    size_t more;
    if (lead >= 0xC2 && lead <= 0xDF)
        more = 1;
    else if (lead == 0xE0) {
        more = 2;
        low = 0xA0;
    } else if (lead == 0xED) {
        more = 2;
        high = 0x9F;
    } else if (lead >= 0xE1 && lead <= 0xEF)
        more = 2;
    else if (lead == 0xF0) {
        more = 3;
        low = 0x90;
    } else if (lead == 0xF4) {
        more = 3;
        high = 0x8F;
    } else if (lead >= 0xF1 && lead <= 0xF3)
        more = 3;
    else
        return false;
    if (r->len - r->pos <= more)
        return false;
    for (size_t i = 1; i <= more; i++) {
        unsigned char byte = (unsigned char) r->text[r->pos + i];
        if (byte < low || byte > high)
            return false;
        low = 0x80;
        high = 0xBF;
    }
    for (size_t i = 0; i <= more; i++)
        s_emit (sink, (unsigned char) r->text[r->pos + i]);
    r->pos += more + 1;
    return true;
}

/* A string at the cursor, quotes included; its unescaped bytes go to SINK. */
static bool
s_string (reader_t *r, sink_t *sink)
{
    if (s_peek (r) != '"')
        return false;
    r->pos++;
    while (r->pos < r->len) {
        unsigned char c = (unsigned char) r->text[r->pos];
        if (c == '"') {
            r->pos++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (!s_escape (r, sink))
                return false;
        } else if (c < 0x80) {
            s_emit (sink, c);
            r->pos++;
        } else if (!s_utf8 (r, sink))
            return false;
    }
    return false; /* no closing quote before the end */
}

static bool
s_digits (reader_t *r)
{
    size_t start = r->pos;
    while (r->pos < r->len && r->text[r->pos] >= '0' && r->text[r->pos] <= '9')
        r->pos++;
    return r->pos > start;
}

/* A number at the cursor: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
   A leading zero followed by a digit ends the number at the zero; the
   caller then finds a digit where a separator belongs and refuses it. */
static bool
s_number (reader_t *r)
{
    if (s_peek (r) == '-')
        r->pos++;
    int c = s_peek (r);
    if (c == '0')
        r->pos++;
    else if (c >= '1' && c <= '9')
        s_digits (r);
    else
        return false;
    if (s_peek (r) == '.') {
        r->pos++;
        if (!s_digits (r))
            return false;
    }
    c = s_peek (r);
    if (c == 'e' || c == 'E') {
        r->pos++;
        c = s_peek (r);
        if (c == '+' || c == '-')
            r->pos++;
        if (!s_digits (r))
            return false;
    }
    return true;
}

static bool
s_literal (reader_t *r, const char *word)
{
    size_t size = strlen (word);
    if (r->len - r->pos < size || memcmp (r->text + r->pos, word, size) != 0)
        return false;
    r->pos += size;
    return true;
}

/* Any value but an object or array. */
static bool
s_scalar (reader_t *r)
{
    switch (s_peek (r)) {
    case '"': return s_string (r, NULL);
    case 't': return s_literal (r, "true");
    case 'f': return s_literal (r, "false");
    case 'n': return s_literal (r, "null");
    default:  return s_number (r);
    }
}

/* What kind of value starts with byte C (checked when it is read). */
static pm_json_kind_t
s_kind_of (int c)
{
    switch (c) {
    case '"': return PM_JSON_STRING;
    case '{':
    case '[': return PM_JSON_OTHER;
    case 't':
    case 'f': return PM_JSON_BOOL;
    case 'n': return PM_JSON_NULL;
    default:  return PM_JSON_NUMBER;
    }
}

/* Walks the whole text, which must be one object.  For the last top-level
   member named KEY, sets [*start, *end) to its value (for a container,
   *end is *start: nobody reads it) and returns its kind. */
static pm_json_kind_t
s_scan (const char *text, size_t len, const char *key, size_t *start, size_t *end)
{
    reader_t r = {text, len, 0};
    char closer[PM_JSON_MAX_DEPTH]; /* '}' or ']' for each open container */
    int top = 0;                    /* containers open */
    bool want_value = true;         /* a member or element comes next */
    pm_json_kind_t found = PM_JSON_MISSING;

    s_skip_ws (&r);
    if (s_peek (&r) != '{')
        return PM_JSON_INVALID;
    do {                            /* the first round opens that object */
        if (want_value) {
            bool matched = false;
            if (top > 0 && closer[top - 1] == '}') {
                /* Only a top-level name is compared; nested ones just pass */
                sink_t sink = {.key = key};
                if (!s_string (&r, top == 1 && key ? &sink : NULL))
                    return PM_JSON_INVALID;
                matched = top == 1 && key && !sink.differs && key[sink.matched] == '\0';
                s_skip_ws (&r);
                if (s_peek (&r) != ':')
                    return PM_JSON_INVALID;
                r.pos++;
                s_skip_ws (&r);
            }
            int c = s_peek (&r);
            if (matched) {
                found = s_kind_of (c);
                *start = *end = r.pos;
            }
            if (c == '{' || c == '[') {
                if (top == PM_JSON_MAX_DEPTH)
                    return PM_JSON_INVALID;
                closer[top++] = c == '{' ? '}' : ']';
                r.pos++;
                s_skip_ws (&r);
                if (s_peek (&r) == closer[top - 1]) {
                    r.pos++;        /* empty: the container is a whole value */
                    top--;
                    want_value = false;
                }
                continue;
            }
            if (!s_scalar (&r))
                return PM_JSON_INVALID;
            if (matched)
                *end = r.pos;
            want_value = false;
        } else {
            s_skip_ws (&r);
            int c = s_peek (&r);
            if (c == ',') {
                r.pos++;
                s_skip_ws (&r);
                want_value = true;
            } else if (c == closer[top - 1]) {
                r.pos++;
                top--;
            } else
                return PM_JSON_INVALID;
        }
    } while (top > 0);

    s_skip_ws (&r);
    return r.pos == r.len ? found : PM_JSON_INVALID;
}

pm_json_kind_t
pm_json_find (const char *text, size_t len, const char *key)
{
    assert (key);
    if (!text)
        return PM_JSON_INVALID; /* an empty HTTP body may come as NULL */
    size_t start, end;
    return s_scan (text, len, key, &start, &end);
}

char *
pm_json_get_string (const char *text, size_t len, const char *key)
{
    assert (key);
    if (!text)
        return NULL;
    size_t start, end;
    if (s_scan (text, len, key, &start, &end) != PM_JSON_STRING)
        return NULL;
    /* Unescaping never lengthens: the raw length between quotes is room
       enough, plus one for the NUL */
    sink_t sink = {.out = malloc (end - start - 1)};
    if (!sink.out)
        return NULL;
    reader_t r = {text, end, start};
    if (!s_string (&r, &sink) || sink.has_nul) {
        free (sink.out);
        return NULL;
    }
    sink.out[sink.size] = '\0';
    return sink.out;
}

bool
pm_json_get_int (const char *text, size_t len, const char *key, long long *out)
{
    assert (key);
    assert (out);
    if (!text)
        return false;
    size_t start, end;
    if (s_scan (text, len, key, &start, &end) != PM_JSON_NUMBER)
        return false;
    /* The scan checked the grammar: an optional '-', then digits, then
       perhaps a fraction or exponent, which we refuse */
    size_t pos = start;
    bool negative = text[pos] == '-';
    if (negative)
        pos++;
    unsigned long long limit = negative ? (unsigned long long) LLONG_MAX + 1 : LLONG_MAX;
    unsigned long long magnitude = 0;
    for (; pos < end; pos++) {
        char c = text[pos];
        if (c < '0' || c > '9')
            return false;
        unsigned digit = (unsigned) (c - '0');
        if (magnitude > (limit - digit) / 10)
            return false;
        magnitude = magnitude * 10 + digit;
    }
    /* -(LLONG_MAX + 1) cannot be negated as a long long; go around it */
    *out = negative && magnitude > 0 ? -(long long) (magnitude - 1) - 1 : (long long) magnitude;
    return true;
}

bool
pm_json_get_bool (const char *text, size_t len, const char *key, bool *out)
{
    assert (key);
    assert (out);
    if (!text)
        return false;
    size_t start, end;
    if (s_scan (text, len, key, &start, &end) != PM_JSON_BOOL)
        return false;
    *out = text[start] == 't';
    return true;
}
