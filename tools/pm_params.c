/*  pm_params.c — parse --param expressions and generate the sweep table.
    See pm_params.h for the contract.  Grid values follow numpy (linspace,
    geomspace: endpoints exact); random values come from xoshiro256**.     */
#include "pm_params.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char name[PM_PARAMS_NAME_MAX + 1]; /* column name, an identifier */
    pm_param_kind_t kind;
    double a, b;     /* linspace/geomspace start, stop; uniform/lhs low, high;
                        normal mean, sd */
    size_t count;    /* grid: number of values on the axis */
    double *values;  /* list: its count values (owned); else NULL */
} s_param_t;

struct pm_params {
    s_param_t *params; /* in the order added: the table's columns */
    size_t count;      /* used entries of params */
    size_t capacity;   /* allocated entries of params */
};

static const struct {
    const char *name;
    pm_param_kind_t kind;
    bool random;
    int nargs;         /* fixed argument count; -1: one or more */
    const char *usage; /* what the arguments are, for messages */
} s_kinds[] = {
    {"linspace", PM_PARAM_LINSPACE, false, 3, "start, stop, count"},
    {"geomspace", PM_PARAM_GEOMSPACE, false, 3, "start, stop, count"},
    {"list", PM_PARAM_LIST, false, -1, "v1, v2, ..."},
    {"uniform", PM_PARAM_UNIFORM, true, 2, "low, high"},
    {"normal", PM_PARAM_NORMAL, true, 2, "mean, sd"},
    {"lhs", PM_PARAM_LHS, true, 2, "low, high"},
};
#define S_KIND_COUNT (sizeof s_kinds / sizeof s_kinds[0])

static int
s_fail (char *err, size_t err_size, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

static int
s_fail (char *err, size_t err_size, const char *fmt, ...)
{
    if (err && err_size) {
        va_list args;
        va_start (args, fmt);
        vsnprintf (err, err_size, fmt, args);
        va_end (args);
    }
    return -1;
}

static bool
s_is_random (pm_param_kind_t kind)
{
    return kind == PM_PARAM_UNIFORM || kind == PM_PARAM_NORMAL || kind == PM_PARAM_LHS;
}

static const char *
s_kind_name (pm_param_kind_t kind)
{
    for (size_t k = 0; k < S_KIND_COUNT; k++)
        if (s_kinds[k].kind == kind)
            return s_kinds[k].name;
    return "?";
}

pm_params_t *
pm_params_new (void)
{
    return calloc (1, sizeof (pm_params_t));
}

void
pm_params_destroy (pm_params_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_params_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        free (self->params[i].values);
    free (self->params);
    free (self);
    *self_p = NULL;
}

/* ---- parsing --------------------------------------------------------------- */

/* [begin, end) without surrounding whitespace. */
static void
s_trim (const char **begin, const char **end)
{
    while (*begin < *end && isspace ((unsigned char) **begin))
        (*begin)++;
    while (*end > *begin && isspace ((unsigned char) (*end)[-1]))
        (*end)--;
}

static bool
s_is_identifier (const char *begin, const char *end)
{
    if (begin == end || !(isalpha ((unsigned char) *begin) || *begin == '_'))
        return false;
    for (const char *c = begin; c < end; c++)
        if (!(isalnum ((unsigned char) *c) || *c == '_'))
            return false;
    return true;
}

/* The whole token [begin, end) as a finite double. */
static bool
s_parse_number (const char *begin, const char *end, double *value)
{
    char text[128];
    size_t len = (size_t) (end - begin);
    if (len == 0 || len >= sizeof text)
        return false;
    memcpy (text, begin, len);
    text[len] = '\0';
    char *stop = NULL;
    errno = 0;
    double parsed = strtod (text, &stop);
    /* ERANGE on underflow still gives a usable (tiny) number; on overflow
       the result is inf, refused below. */
    if (stop != text + len || !isfinite (parsed))
        return false;
    *value = parsed;
    return true;
}

/* The whole token as a count in [1, max]. */
static int
s_parse_count (const char *kind, const char *begin, const char *end, size_t *count, char *err,
               size_t err_size)
{
    int len = (int) (end - begin);
    size_t value = 0;
    const char *c = begin;
    if (c < end && *c == '+')
        c++;
    if (c == end)
        return s_fail (err, err_size, "%s: count '%.*s' is not a whole number", kind, len, begin);
    for (; c < end; c++) {
        if (!isdigit ((unsigned char) *c)) {
            if (*c == '-' && c == begin)
                return s_fail (err, err_size, "%s: count must be at least 1, got '%.*s'", kind,
                               len, begin);
            return s_fail (err, err_size, "%s: count '%.*s' is not a whole number", kind, len,
                           begin);
        }
        value = value * 10 + (size_t) (*c - '0');
        if (value > PM_PARAMS_MAX_ROWS)
            return s_fail (err, err_size, "%s: count '%.*s' exceeds the limit of %u rows", kind,
                           len, begin, PM_PARAMS_MAX_ROWS);
    }
    if (value < 1)
        return s_fail (err, err_size, "%s: count must be at least 1, got '%.*s'", kind, len,
                       begin);
    *count = value;
    return 0;
}

typedef struct {
    const char *begin, *end; /* trimmed argument text */
} s_token_t;

int
pm_params_add (pm_params_t *self, const char *spec, char *err, size_t err_size)
{
    if (!self || !spec)
        return s_fail (err, err_size, "no parameter given");
    const char *eq = strchr (spec, '=');
    if (!eq)
        return s_fail (err, err_size,
                       "expected name=EXPR, e.g. 'x=linspace(0, 1, 11)' or 'y=list(1, 2, 5)'");
    const char *name_begin = spec, *name_end = eq;
    s_trim (&name_begin, &name_end);
    if (name_begin == name_end)
        return s_fail (err, err_size, "the parameter has no name (expected name=EXPR)");
    int name_len = (int) (name_end - name_begin);
    if (!s_is_identifier (name_begin, name_end))
        return s_fail (err, err_size,
                       "'%.*s' is not a valid name (letters, digits and underscores, not "
                       "starting with a digit)",
                       name_len, name_begin);
    if (name_len > PM_PARAMS_NAME_MAX)
        return s_fail (err, err_size, "the name is longer than %d bytes", PM_PARAMS_NAME_MAX);
    for (size_t i = 0; i < self->count; i++)
        if ((int) strlen (self->params[i].name) == name_len
            && memcmp (self->params[i].name, name_begin, (size_t) name_len) == 0)
            return s_fail (err, err_size, "parameter '%.*s' is given twice", name_len,
                           name_begin);

    /* kind ( args ) */
    const char *expr = eq + 1, *expr_end = expr + strlen (expr);
    s_trim (&expr, &expr_end);
    if (expr == expr_end)
        return s_fail (err, err_size,
                       "no expression after '=' (expected one of linspace, geomspace, list, "
                       "uniform, normal, lhs)");
    const char *kind_end = expr;
    while (kind_end < expr_end && (isalnum ((unsigned char) *kind_end) || *kind_end == '_'))
        kind_end++;
    int kind_len = (int) (kind_end - expr);
    size_t k = 0;
    while (k < S_KIND_COUNT
           && !((int) strlen (s_kinds[k].name) == kind_len
                && memcmp (s_kinds[k].name, expr, (size_t) kind_len) == 0))
        k++;
    if (k == S_KIND_COUNT) {
        if (kind_len == 0)
            return s_fail (err, err_size,
                           "expected a kind before '%.1s' (linspace, geomspace, list, uniform, "
                           "normal, lhs)",
                           expr);
        return s_fail (err, err_size,
                       "unknown kind '%.*s' (expected linspace, geomspace, list, uniform, "
                       "normal or lhs)",
                       kind_len, expr);
    }
    const char *kind = s_kinds[k].name;
    const char *open = kind_end;
    while (open < expr_end && isspace ((unsigned char) *open))
        open++;
    if (open == expr_end || *open != '(')
        return s_fail (err, err_size, "expected '(' after '%s', e.g. %s(%s)", kind, kind,
                       s_kinds[k].usage);
    if (memchr (open + 1, '(', (size_t) (expr_end - open - 1)))
        return s_fail (err, err_size, "%s: unexpected '(' inside the arguments", kind);
    const char *close = memchr (open, ')', (size_t) (expr_end - open));
    if (!close)
        return s_fail (err, err_size, "%s: missing ')'", kind);
    if (close + 1 != expr_end)
        return s_fail (err, err_size, "%s: unexpected text after ')': '%.*s'", kind,
                       (int) (expr_end - close - 1), close + 1);

    /* Split the arguments at commas. */
    size_t nargs = 1;
    for (const char *c = open + 1; c < close; c++)
        nargs += *c == ',';
    const char *inside = open + 1, *inside_end = close;
    s_trim (&inside, &inside_end);
    if (inside == inside_end)
        nargs = 0;
    if (s_kinds[k].nargs >= 0 && (int) nargs != s_kinds[k].nargs)
        return s_fail (err, err_size, "%s needs %d arguments (%s), got %zu", kind,
                       s_kinds[k].nargs, s_kinds[k].usage, nargs);
    if (nargs == 0)
        return s_fail (err, err_size, "%s needs at least one value (%s)", kind,
                       s_kinds[k].usage);
    s_token_t *tokens = calloc (nargs, sizeof *tokens);
    double *numbers = calloc (nargs, sizeof *numbers);
    if (!tokens || !numbers) {
        free (tokens);
        free (numbers);
        return s_fail (err, err_size, "out of memory");
    }
    const char *start = open + 1;
    for (size_t i = 0; i < nargs; i++) {
        const char *stop = memchr (start, ',', (size_t) (close - start));
        if (!stop)
            stop = close;
        tokens[i].begin = start;
        tokens[i].end = stop;
        s_trim (&tokens[i].begin, &tokens[i].end);
        start = stop + 1;
    }
    int rc = 0;
    s_param_t param = {.kind = s_kinds[k].kind};
    memcpy (param.name, name_begin, (size_t) name_len);
    param.name[name_len] = '\0';
    bool has_count = param.kind == PM_PARAM_LINSPACE || param.kind == PM_PARAM_GEOMSPACE;
    for (size_t i = 0; i < nargs && rc == 0; i++) {
        int len = (int) (tokens[i].end - tokens[i].begin);
        if (len == 0)
            rc = s_fail (err, err_size, "%s: argument %zu is empty", kind, i + 1);
        else if (has_count && i == 2)
            rc = s_parse_count (kind, tokens[i].begin, tokens[i].end, &param.count, err,
                                err_size);
        else if (!s_parse_number (tokens[i].begin, tokens[i].end, &numbers[i]))
            rc = s_fail (err, err_size, "%s: argument %zu '%.*s' is not a finite number", kind,
                         i + 1, len, tokens[i].begin);
    }
    free (tokens);
    if (rc == 0) {
        switch (param.kind) {
        case PM_PARAM_GEOMSPACE:
            if (!(numbers[0] > 0 && numbers[1] > 0))
                rc = s_fail (err, err_size,
                             "geomspace needs start > 0 and stop > 0, got start %.17g, stop "
                             "%.17g",
                             numbers[0], numbers[1]);
            /* fall through */
        case PM_PARAM_LINSPACE:
            param.a = numbers[0];
            param.b = numbers[1];
            break;
        case PM_PARAM_LIST:
            param.count = nargs;
            param.values = numbers;
            numbers = NULL;
            break;
        case PM_PARAM_UNIFORM:
        case PM_PARAM_LHS:
            param.a = numbers[0];
            param.b = numbers[1];
            if (!(param.a < param.b))
                rc = s_fail (err, err_size, "%s needs low < high, got low %.17g, high %.17g",
                             kind, param.a, param.b);
            else if (!isfinite (param.b - param.a))
                rc = s_fail (err, err_size, "%s: the range high - low overflows", kind);
            break;
        case PM_PARAM_NORMAL:
            param.a = numbers[0];
            param.b = numbers[1];
            if (param.b < 0)
                rc = s_fail (err, err_size, "normal needs sd >= 0, got %.17g", param.b);
            break;
        }
    }
    free (numbers);
    if (rc != 0) {
        free (param.values);
        return rc;
    }
    if (self->count == self->capacity) {
        size_t capacity = self->capacity ? 2 * self->capacity : 8;
        s_param_t *grown = realloc (self->params, capacity * sizeof *grown);
        if (!grown) {
            free (param.values);
            return s_fail (err, err_size, "out of memory");
        }
        self->params = grown;
        self->capacity = capacity;
    }
    self->params[self->count++] = param;
    return 0;
}

size_t
pm_params_count (const pm_params_t *self)
{
    return self ? self->count : 0;
}

const char *
pm_params_name (const pm_params_t *self, size_t index)
{
    return self && index < self->count ? self->params[index].name : NULL;
}

int
pm_params_find (const pm_params_t *self, const char *name)
{
    for (size_t i = 0; self && name && i < self->count; i++)
        if (strcmp (self->params[i].name, name) == 0)
            return (int) i;
    return -1;
}

pm_param_kind_t
pm_params_kind (const pm_params_t *self, size_t index)
{
    return self && index < self->count ? self->params[index].kind : PM_PARAM_LIST;
}

bool
pm_params_is_random (const pm_params_t *self)
{
    return self && self->count > 0 && s_is_random (self->params[0].kind);
}

int
pm_params_rows (const pm_params_t *self, uint64_t samples, uint64_t max_rows, size_t *rows,
                char *err, size_t err_size)
{
    if (!self || self->count == 0)
        return s_fail (err, err_size, "no parameter given (use --param name=EXPR)");
    size_t first_grid = self->count, first_random = self->count;
    for (size_t i = 0; i < self->count; i++) {
        if (s_is_random (self->params[i].kind)) {
            if (first_random == self->count)
                first_random = i;
        }
        else if (first_grid == self->count)
            first_grid = i;
    }
    if (first_grid < self->count && first_random < self->count)
        return s_fail (err, err_size,
                       "cannot mix grid kinds (linspace, geomspace, list) with random kinds "
                       "(uniform, normal, lhs): '%s' is %s, '%s' is %s",
                       self->params[first_grid].name,
                       s_kind_name (self->params[first_grid].kind),
                       self->params[first_random].name,
                       s_kind_name (self->params[first_random].kind));
    if (first_random < self->count) {
        if (samples == 0)
            return s_fail (err, err_size,
                           "random parameters ('%s' is %s) need --samples S (S >= 1)",
                           self->params[first_random].name,
                           s_kind_name (self->params[first_random].kind));
        if (samples > max_rows)
            return s_fail (err, err_size, "%llu samples exceed the limit of %llu rows",
                           (unsigned long long) samples, (unsigned long long) max_rows);
        *rows = (size_t) samples;
        return 0;
    }
    if (samples != 0)
        return s_fail (err, err_size,
                       "--samples is for random kinds (uniform, normal, lhs); grid parameters "
                       "define the rows themselves");
    uint64_t product = 1;
    for (size_t i = 0; i < self->count; i++) {
        if (__builtin_mul_overflow (product, (uint64_t) self->params[i].count, &product)
            || product > max_rows)
            return s_fail (err, err_size,
                           "the grid has more than %llu rows (the limit); reduce the counts",
                           (unsigned long long) max_rows);
    }
    if (product == 0)
        return s_fail (err, err_size, "the parameter space has no rows");
    *rows = (size_t) product;
    return 0;
}

/* ---- grid values ------------------------------------------------------------ */

/* numpy.linspace (start, stop, count)[i]: i * step + start, the last value
   exactly stop. */
static double
s_linspace (double start, double stop, size_t count, size_t i)
{
    if (count <= 1)
        return start;
    if (i == count - 1)
        return stop;
    double div = (double) (count - 1), delta = stop - start, step = delta / div;
    if (step == 0) /* numpy's branch for a zero (or underflowing) step */
        return (double) i / div * delta + start;
    return (double) i * step + start;
}

/* numpy.geomspace: 10 ** linspace (log10 start, log10 stop), endpoints exact. */
static double
s_geomspace (double start, double stop, size_t count, size_t i)
{
    if (i == 0)
        return start;
    if (i == count - 1)
        return stop;
    return pow (10.0, s_linspace (log10 (start), log10 (stop), count, i));
}

static double
s_grid_value (const s_param_t *param, size_t i)
{
    switch (param->kind) {
    case PM_PARAM_LINSPACE: return s_linspace (param->a, param->b, param->count, i);
    case PM_PARAM_GEOMSPACE: return s_geomspace (param->a, param->b, param->count, i);
    case PM_PARAM_LIST: return param->values[i];
    default: return NAN;
    }
}

/* ---- random values: splitmix64 seeds xoshiro256** ----------------------------- */

typedef struct {
    uint64_t s[4];
} s_rng_t;

static uint64_t
s_splitmix64 (uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t
s_rotl (uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* Column `column`'s own stream: splitmix64 from the seed mixed with the
   column index, so columns are independent and adding a column does not
   change the others. */
static void
s_rng_seed (s_rng_t *rng, uint64_t seed, size_t column)
{
    uint64_t x = seed;
    uint64_t salt = (uint64_t) column + 1;
    x ^= s_splitmix64 (&salt);
    for (int i = 0; i < 4; i++)
        rng->s[i] = s_splitmix64 (&x);
}

static uint64_t
s_rng_next (s_rng_t *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = s_rotl (s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s_rotl (s[3], 45);
    return result;
}

/* Uniform in [0, 1), 53 random bits. */
static double
s_rng_unit (s_rng_t *rng)
{
    return (double) (s_rng_next (rng) >> 11) * 0x1.0p-53;
}

/* Uniform in the open interval (0, 1). */
static double
s_rng_open_unit (s_rng_t *rng)
{
    return ((double) (s_rng_next (rng) >> 11) + 0.5) * 0x1.0p-53;
}

/* Unbiased integer in [0, n), n >= 1 (Lemire's multiply-and-reject). */
static uint64_t
s_rng_below (s_rng_t *rng, uint64_t n)
{
    unsigned __int128 m = (unsigned __int128) s_rng_next (rng) * n;
    uint64_t low = (uint64_t) m;
    if (low < n) {
        uint64_t threshold = -n % n;
        while (low < threshold) {
            m = (unsigned __int128) s_rng_next (rng) * n;
            low = (uint64_t) m;
        }
    }
    return (uint64_t) (m >> 64);
}

/* Fill column c of table (rows x cols) from its random distribution. */
static int
s_random_column (const s_param_t *param, size_t c, double *table, size_t rows, size_t cols,
                 uint64_t seed)
{
    s_rng_t rng;
    s_rng_seed (&rng, seed, c);
    double width = param->b - param->a;
    switch (param->kind) {
    case PM_PARAM_UNIFORM:
        for (size_t r = 0; r < rows; r++)
            table[r * cols + c] = param->a + width * s_rng_unit (&rng);
        break;
    case PM_PARAM_NORMAL:
        /* Box-Muller, one value per pair of draws. */
        for (size_t r = 0; r < rows; r++) {
            double u1 = 1.0 - s_rng_unit (&rng); /* (0, 1] */
            double u2 = s_rng_unit (&rng);
            double z = sqrt (-2.0 * log (u1)) * cos (2.0 * M_PI * u2);
            table[r * cols + c] = param->a + param->b * z;
        }
        break;
    case PM_PARAM_LHS: {
        /* One sample in each of `rows` equal strata; the strata are visited
           in a random order (Fisher-Yates), a uniform point inside each. */
        size_t *stratum = malloc (rows * sizeof *stratum);
        if (!stratum)
            return -1;
        for (size_t r = 0; r < rows; r++)
            stratum[r] = r;
        for (size_t r = rows; r > 1; r--) {
            size_t j = (size_t) s_rng_below (&rng, r);
            size_t tmp = stratum[r - 1];
            stratum[r - 1] = stratum[j];
            stratum[j] = tmp;
        }
        for (size_t r = 0; r < rows; r++)
            table[r * cols + c] = param->a
                                  + width * (((double) stratum[r] + s_rng_open_unit (&rng))
                                             / (double) rows);
        free (stratum);
        break;
    }
    default: break;
    }
    return 0;
}

double *
pm_params_table (const pm_params_t *self, size_t rows, uint64_t seed)
{
    if (!self || self->count == 0 || rows == 0)
        return NULL;
    size_t cols = self->count, cells, bytes;
    if (__builtin_mul_overflow (rows, cols, &cells)
        || __builtin_mul_overflow (cells, sizeof (double), &bytes))
        return NULL;
    double *table = malloc (bytes);
    if (!table)
        return NULL;
    if (pm_params_is_random (self)) {
        for (size_t c = 0; c < cols; c++)
            if (s_random_column (&self->params[c], c, table, rows, cols, seed) != 0) {
                free (table);
                return NULL;
            }
        return table;
    }
    /* Full grid, first parameter slowest: row r's index on axis c is a
       digit of r in the mixed radix of the axis counts. */
    for (size_t r = 0; r < rows; r++) {
        size_t rest = r;
        for (size_t c = cols; c-- > 0;) {
            const s_param_t *param = &self->params[c];
            table[r * cols + c] = s_grid_value (param, rest % param->count);
            rest /= param->count;
        }
    }
    return table;
}
