/*  pm_journal.h — pm-sweep's journal: the rows of a sweep finished so far,
    kept next to its results file (RESULTS.csv.journal) so that a sweep that
    was interrupted (killed, even with SIGKILL) can be continued with
    --resume, redoing no row the journal holds.

    Text, a header line, then one line per finished row:

        pm-sweep-journal 1 rows=N inputs=a,b outputs=y,z params=HEX16 model=HEX16
        INDEX,OUT1,...,OUTn,SUCCESS

    INDEX is the row's sample index (0-based), the outputs are "%.17g" (nan,
    inf, -inf: they read back as the same doubles), SUCCESS is 0 or 1.
    outputs= is the comma-separated output names when they are known before
    the sweep (a command), "-" when the model names them (a plugin).  params
    is a 64-bit hash of the parameter table (and the input names), model one
    of the model's description (plugin spec and build arguments, or the
    command template, --outputs and --timeout): together with rows and
    inputs they say which sweep the journal belongs to.

    The writer flushes each chunk of rows as one block, so a killed sweep
    leaves at most a torn last line (no '\n'), which the reader ignores.   */
#ifndef PM_JOURNAL_H_INCLUDED
#define PM_JOURNAL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define PM_JOURNAL_VERSION 1
#define PM_JOURNAL_SUFFIX ".journal"

/* 64-bit FNV-1a: start with PM_HASH64_INIT, feed the bytes. */
#define PM_HASH64_INIT 0xcbf29ce484222325ULL
uint64_t pm_hash64 (uint64_t hash, const void *data, size_t size);
/* The same for a C string, its terminating '\0' included (so that "ab","c"
   and "a","bc" differ). */
uint64_t pm_hash64_str (uint64_t hash, const char *text);

/* What identifies a sweep. */
typedef struct {
    unsigned version;
    size_t rows;
    char *inputs;  /* comma-separated input names */
    char *outputs; /* comma-separated output names, or "-" */
    uint64_t params_hash, model_hash;
} pm_journal_header_t;

void pm_journal_header_free (pm_journal_header_t *header);

/* The journal of the results file at output_path (malloc'd). */
char *pm_journal_path (const char *output_path);

/* Is the journal at path held by a running pm-sweep (which keeps an
   exclusive flock on it while it writes)?  1 yes, 0 no, -1 cannot tell
   (errno set). */
int pm_journal_in_use (const char *path);

/* Does want describe the same sweep as have (the journal's)?  true, or
   false with what differs in why ("its parameter rows differ", ...).
   Output names are compared only when both are known.                    */
bool pm_journal_header_match (const pm_journal_header_t *have, const pm_journal_header_t *want,
                              char *why, size_t why_size);

/* A journal, read. */
typedef struct {
    pm_journal_header_t header;
    size_t noutputs;         /* outputs per row (valid once done_count > 0) */
    size_t done_count;       /* distinct rows held */
    size_t failed;           /* of those, rows with success 0 */
    unsigned char *done;     /* header.rows flags: the journal holds the row */
    double *outputs;         /* header.rows x noutputs (rows not held: NaN) */
    unsigned char *success;  /* header.rows flags */
    size_t bad_lines;        /* complete lines that are not a row of this journal (ignored) */
    size_t first_bad_line;   /* line number (1-based) of the first of them */
    size_t duplicates;       /* rows given again (the first one is kept) */
    bool torn;               /* the file ends in a line without '\n' (ignored) */
    off_t keep;              /* bytes up to the end of the last complete line */
} pm_journal_t;

/* Read the journal at path, of the sweep want describes (NULL: any).
   Returns 0 (read), 1 (the file holds no complete header line: empty, or
   killed while writing the header), 2 (the journal of another sweep: what
   differs is in err), or -1 with the reason in err (cannot read it, not a
   pm-sweep journal, a version this build cannot read, out of memory).  */
int pm_journal_read (const char *path, const pm_journal_header_t *want, pm_journal_t *journal,
                     char *err, size_t err_size);
void pm_journal_free (pm_journal_t *journal);

/* A new journal at path (which must not exist), locked (flock, exclusive:
   pm_journal_in_use) until closed, its header written and flushed.  NULL
   with the reason in err.                                                 */
FILE *pm_journal_create (const char *path, const pm_journal_header_t *header, char *err,
                         size_t err_size);
/* An existing journal opened for appending and locked like a new one, cut
   to its first keep bytes first (dropping a torn last line).  NULL with
   the reason in err (one is that another process holds the lock).       */
FILE *pm_journal_open_append (const char *path, off_t keep, char *err, size_t err_size);

/* Append count finished rows, and flush them (with everything before)
   when flush is true: row i has sample index (index_map ?
   index_map[first + i] : first + i), outputs outputs[i * noutputs ...],
   success success[i].  0, or -1 (errno set).                              */
int pm_journal_append (FILE *journal, const size_t *index_map, size_t first, size_t count,
                       size_t noutputs, const double *outputs, const unsigned char *success,
                       bool flush);

#endif
