/*  pm_journal.c — pm-sweep's journal of finished rows.  See pm_journal.h.  */
#include "pm_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "pm_csv.h"

#define S_TAG "pm-sweep-journal"
/* stdio buffer of a journal being written: rows between two flushes */
#define S_BUFFER (64 * 1024)

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

int
pm_journal_in_use (const char *path)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = 0;
    if (flock (fd, LOCK_SH | LOCK_NB) != 0)
        rc = errno == EWOULDBLOCK ? 1 : -1;
    close (fd); /* drops the lock, if taken */
    return rc;
}

uint64_t
pm_hash64 (uint64_t hash, const void *data, size_t size)
{
    const unsigned char *bytes = data;
    for (size_t i = 0; i < size; i++) {
        hash ^= bytes[i];
        hash *= 0x100000001b3ULL;
    }
    return hash;
}

uint64_t
pm_hash64_str (uint64_t hash, const char *text)
{
    return pm_hash64 (hash, text ? text : "", strlen (text ? text : "") + 1);
}

void
pm_journal_header_free (pm_journal_header_t *header)
{
    free (header->inputs);
    free (header->outputs);
    header->inputs = header->outputs = NULL;
}

char *
pm_journal_path (const char *output_path)
{
    char *path = NULL;
    if (asprintf (&path, "%s%s", output_path, PM_JOURNAL_SUFFIX) < 0)
        return NULL;
    return path;
}

bool
pm_journal_header_match (const pm_journal_header_t *have, const pm_journal_header_t *want,
                         char *why, size_t why_size)
{
    if (have->rows != want->rows)
        s_fail (why, why_size, "it is of a sweep of %zu rows, this one has %zu", have->rows,
                want->rows);
    else if (strcmp (have->inputs, want->inputs) != 0)
        s_fail (why, why_size, "its parameters are %s, this sweep's are %s", have->inputs,
                want->inputs);
    else if (have->params_hash != want->params_hash)
        s_fail (why, why_size, "its parameter rows differ from this sweep's");
    else if (have->model_hash != want->model_hash)
        s_fail (why, why_size,
                "its model differs from this sweep's (the --model spec and --arg values, or "
                "the --command, --outputs and --timeout)");
    else if (strcmp (have->outputs, "-") != 0 && strcmp (want->outputs, "-") != 0
             && strcmp (have->outputs, want->outputs) != 0)
        s_fail (why, why_size, "its outputs are %s, this sweep's are %s", have->outputs,
                want->outputs);
    else
        return true;
    return false;
}

/* ---- reading ------------------------------------------------------------------ */

/* Parse the header line (without its '\n'). */
static int
s_parse_header (char *line, pm_journal_header_t *header, char *err, size_t err_size)
{
    char *save = NULL;
    char *tag = strtok_r (line, " ", &save);
    if (!tag || strcmp (tag, S_TAG) != 0)
        return s_fail (err, err_size, "it is not a pm-sweep journal (its first line does not "
                                      "start with '" S_TAG "')");
    char *version = strtok_r (NULL, " ", &save);
    char *end = NULL;
    unsigned long v = version ? strtoul (version, &end, 10) : 0;
    if (!version || *end || v == 0)
        return s_fail (err, err_size, "it is not a pm-sweep journal (no version in its header)");
    if (v != PM_JOURNAL_VERSION)
        return s_fail (err, err_size,
                       "it is a journal of version %lu; this pm-sweep reads version %d",
                       v, PM_JOURNAL_VERSION);
    header->version = (unsigned) v;
    bool have_rows = false, have_params = false, have_model = false;
    for (char *field; (field = strtok_r (NULL, " ", &save));) {
        char *eq = strchr (field, '=');
        if (!eq)
            continue;
        *eq = '\0';
        const char *key = field, *value = eq + 1;
        if (strcmp (key, "rows") == 0) {
            errno = 0;
            unsigned long long rows = strtoull (value, &end, 10);
            have_rows = *value >= '0' && *value <= '9' && !*end && !errno;
            header->rows = (size_t) rows;
        }
        else if (strcmp (key, "params") == 0 || strcmp (key, "model") == 0) {
            errno = 0;
            uint64_t hash = strtoull (value, &end, 16);
            bool ok = *value && !*end && !errno && strlen (value) == 16;
            if (strcmp (key, "params") == 0)
                header->params_hash = hash, have_params = ok;
            else
                header->model_hash = hash, have_model = ok;
        }
        else if (strcmp (key, "inputs") == 0 || strcmp (key, "outputs") == 0) {
            char **slot = strcmp (key, "inputs") == 0 ? &header->inputs : &header->outputs;
            free (*slot);
            *slot = strdup (value);
            if (!*slot)
                return s_fail (err, err_size, "out of memory");
        }
    }
    if (!have_rows || !have_params || !have_model || !header->inputs || !header->outputs)
        return s_fail (err, err_size,
                       "it is not a pm-sweep journal (its header lacks rows, inputs, outputs, "
                       "params or model)");
    return 0;
}

/* Parse one row line (without '\n') into the journal.  false: not a row. */
static bool
s_parse_row (pm_journal_t *j, char *line, double **values_p, size_t *values_cap)
{
    /* INDEX */
    if (*line < '0' || *line > '9')
        return false;
    size_t fields = 1;
    for (const char *c = line; *c; c++)
        fields += *c == ',';
    if (fields > *values_cap) {
        double *grown = realloc (*values_p, fields * sizeof *grown);
        if (!grown)
            return false;
        *values_p = grown;
        *values_cap = fields;
    }
    double *values = *values_p;
    char *end = NULL;
    errno = 0;
    unsigned long long index = strtoull (line, &end, 10);
    if (errno || *end != ',' || index >= j->header.rows)
        return false;
    /* the values, the last one the success flag */
    size_t n = 0;
    for (char *at = end + 1;; at = end + 1) {
        if (*at == ',' || *at == '\0' || *at == ' ')
            return false;
        values[n++] = strtod (at, &end);
        if (end == at || (*end != ',' && *end != '\0'))
            return false;
        if (*end == '\0')
            break;
    }
    if (values[n - 1] != 0 && values[n - 1] != 1)
        return false;
    size_t noutputs = n - 1;
    if (j->done_count == 0 && !j->outputs) {
        /* the first row says the width, unless the header did */
        j->noutputs = noutputs;
        size_t cells = j->header.rows * noutputs;
        j->outputs = malloc ((cells ? cells : 1) * sizeof (double));
        if (!j->outputs)
            return false;
        for (size_t i = 0; i < cells; i++)
            j->outputs[i] = NAN;
    }
    if (noutputs != j->noutputs)
        return false;
    if (j->done[index]) {
        j->duplicates++;
        return true;
    }
    j->done[index] = 1;
    j->done_count++;
    memcpy (j->outputs + index * noutputs, values, noutputs * sizeof (double));
    j->success[index] = values[n - 1] == 1;
    j->failed += values[n - 1] == 0;
    return true;
}

int
pm_journal_read (const char *path, const pm_journal_header_t *want, pm_journal_t *j, char *err,
                 size_t err_size)
{
    memset (j, 0, sizeof *j);
    FILE *in = fopen (path, "r");
    if (!in)
        return s_fail (err, err_size, "cannot open '%s': %s", path, strerror (errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 1; /* until a complete header line is read */
    size_t lineno = 0, values_cap = 0;
    double *values = NULL;
    off_t offset = 0;
    while ((len = getline (&line, &cap, in)) > 0) {
        lineno++;
        bool complete = line[len - 1] == '\n';
        if (!complete) {
            j->torn = true; /* killed while writing this line: ignored */
            break;
        }
        line[len - 1] = '\0';
        offset += len;
        if (lineno == 1) {
            if (s_parse_header (line, &j->header, err, err_size) != 0) {
                rc = -1;
                break;
            }
            if (want && !pm_journal_header_match (&j->header, want, err, err_size)) {
                rc = 2;
                break;
            }
            j->done = calloc (j->header.rows + 1, 1);
            j->success = calloc (j->header.rows + 1, 1);
            if (!j->done || !j->success) {
                rc = s_fail (err, err_size, "out of memory for a journal of %zu rows",
                             j->header.rows);
                break;
            }
            if (strcmp (j->header.outputs, "-") != 0) {
                /* the header names the outputs: rows must have that many */
                j->noutputs = 1;
                for (const char *c = j->header.outputs; *c; c++)
                    j->noutputs += *c == ',';
                size_t cells = j->header.rows * j->noutputs;
                j->outputs = malloc ((cells ? cells : 1) * sizeof (double));
                if (!j->outputs) {
                    rc = s_fail (err, err_size, "out of memory for a journal of %zu rows",
                                 j->header.rows);
                    break;
                }
                for (size_t i = 0; i < cells; i++)
                    j->outputs[i] = NAN;
            }
            rc = 0;
        }
        else if (!s_parse_row (j, line, &values, &values_cap)) {
            if (j->bad_lines++ == 0)
                j->first_bad_line = lineno;
        }
        j->keep = offset;
    }
    if (rc == 0 && ferror (in))
        rc = s_fail (err, err_size, "cannot read '%s': %s", path, strerror (errno));
    free (values);
    free (line);
    fclose (in);
    if (rc != 0) {
        int kept = rc;
        pm_journal_free (j);
        return kept;
    }
    return 0;
}

void
pm_journal_free (pm_journal_t *j)
{
    pm_journal_header_free (&j->header);
    free (j->done);
    free (j->outputs);
    free (j->success);
    memset (j, 0, sizeof *j);
}

/* ---- writing ------------------------------------------------------------------ */

FILE *
pm_journal_create (const char *path, const pm_journal_header_t *header, char *err,
                   size_t err_size)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        s_fail (err, err_size, "cannot create the journal '%s': %s", path, strerror (errno));
        return NULL;
    }
    if (flock (fd, LOCK_EX | LOCK_NB) != 0) {
        s_fail (err, err_size, "cannot lock the journal '%s': %s", path, strerror (errno));
        close (fd);
        unlink (path);
        return NULL;
    }
    FILE *out = fdopen (fd, "w");
    if (!out) {
        s_fail (err, err_size, "fdopen: %s", strerror (errno));
        close (fd);
        unlink (path);
        return NULL;
    }
    setvbuf (out, NULL, _IOFBF, S_BUFFER);
    fprintf (out, S_TAG " %d rows=%zu inputs=%s outputs=%s params=%016" PRIx64 " model=%016" PRIx64
                  "\n",
             PM_JOURNAL_VERSION, header->rows, header->inputs, header->outputs,
             header->params_hash, header->model_hash);
    if (fflush (out) != 0 || ferror (out)) {
        s_fail (err, err_size, "cannot write the journal '%s': %s", path, strerror (errno));
        fclose (out);
        unlink (path);
        return NULL;
    }
    return out;
}

FILE *
pm_journal_open_append (const char *path, off_t keep, char *err, size_t err_size)
{
    int fd = open (path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        s_fail (err, err_size, "cannot open the journal '%s': %s", path, strerror (errno));
        return NULL;
    }
    if (flock (fd, LOCK_EX | LOCK_NB) != 0) {
        s_fail (err, err_size, "the journal '%s' is in use by a pm-sweep that is running", path);
        close (fd);
        return NULL;
    }
    if (ftruncate (fd, keep) != 0 || lseek (fd, 0, SEEK_END) < 0) {
        s_fail (err, err_size, "cannot cut the torn end off the journal '%s': %s", path,
                strerror (errno));
        close (fd);
        return NULL;
    }
    FILE *out = fdopen (fd, "a");
    if (!out) {
        s_fail (err, err_size, "fdopen: %s", strerror (errno));
        close (fd);
    }
    else
        setvbuf (out, NULL, _IOFBF, S_BUFFER);
    return out;
}

int
pm_journal_append (FILE *journal, const size_t *index_map, size_t first, size_t count,
                   size_t noutputs, const double *outputs, const unsigned char *success,
                   bool flush)
{
    for (size_t i = 0; i < count; i++) {
        size_t index = index_map ? index_map[first + i] : first + i;
        fprintf (journal, "%zu", index);
        for (size_t k = 0; k < noutputs; k++) {
            fputc (',', journal);
            pm_csv_number (journal, outputs[i * noutputs + k]);
        }
        fputs (success[i] ? ",1\n" : ",0\n", journal);
    }
    if ((flush && fflush (journal) != 0) || ferror (journal)) {
        if (!errno)
            errno = EIO;
        return -1;
    }
    return 0;
}
