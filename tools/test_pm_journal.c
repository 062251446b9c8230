/*  test_pm_journal.c — pm-sweep's journal (pm_journal) and the text of its
    progress line (pm_progress): round trips, torn and bad lines, headers of
    other sweeps, and the line's layout.                                   */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pm_journal.h"
#include "pm_progress.h"

static char s_path[256];

static void
s_setup (void)
{
    snprintf (s_path, sizeof s_path, "%s/pm-journal-test.%d.journal",
              getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp", (int) getpid ());
    unlink (s_path);
}

static void
s_teardown (void)
{
    unlink (s_path);
}

TestSuite (journal, .init = s_setup, .fini = s_teardown);

static pm_journal_header_t
s_header (size_t rows, const char *outputs)
{
    pm_journal_header_t h = {PM_JOURNAL_VERSION, rows, strdup ("x,y"), strdup (outputs),
                             0x0123456789abcdefULL, 0xfedcba9876543210ULL};
    return h;
}

static void
s_write_file (const char *text)
{
    FILE *f = fopen (s_path, "w");
    cr_assert_not_null (f);
    fputs (text, f);
    fclose (f);
}

static char *
s_slurp (void)
{
    FILE *f = fopen (s_path, "r");
    cr_assert_not_null (f);
    static char text[8192];
    size_t n = fread (text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose (f);
    return text;
}

Test (journal, fnv1a_64)
{
    /* The published FNV-1a 64 values. */
    cr_assert_eq (pm_hash64 (PM_HASH64_INIT, "", 0), 0xcbf29ce484222325ULL);
    cr_assert_eq (pm_hash64 (PM_HASH64_INIT, "a", 1), 0xaf63dc4c8601ec8cULL);
    cr_assert_eq (pm_hash64 (PM_HASH64_INIT, "foobar", 6), 0x85944171f73967e8ULL);
    cr_assert_neq (pm_hash64_str (pm_hash64_str (PM_HASH64_INIT, "ab"), "c"),
                   pm_hash64_str (pm_hash64_str (PM_HASH64_INIT, "a"), "bc"));
}

Test (journal, path)
{
    char *path = pm_journal_path ("dir/out.csv");
    cr_assert_str_eq (path, "dir/out.csv.journal");
    free (path);
}

Test (journal, round_trip)
{
    pm_journal_header_t h = s_header (5, "a,b");
    char err[512];
    FILE *out = pm_journal_create (s_path, &h, err, sizeof err);
    cr_assert_not_null (out, "%s", err);
    /* A second create must not clobber it. */
    cr_assert_null (pm_journal_create (s_path, &h, err, sizeof err));
    cr_assert (strstr (err, "File exists"), "%s", err);
    double outputs[] = {0.1, -2, NAN, INFINITY, -INFINITY, 1e300};
    unsigned char success[] = {1, 0, 1};
    size_t map[] = {4, 0, 2};
    cr_assert_eq (pm_journal_append (out, map, 0, 2, 2, outputs, success, true), 0);
    cr_assert_eq (pm_journal_append (out, map, 2, 1, 2, outputs + 4, success + 2, false), 0);
    /* Locked while open; appending needs the lock too. */
    cr_assert_eq (pm_journal_in_use (s_path), 1);
    cr_assert_null (pm_journal_open_append (s_path, 0, err, sizeof err));
    cr_assert (strstr (err, "in use"), "%s", err);
    fclose (out);
    cr_assert_eq (pm_journal_in_use (s_path), 0);
    cr_assert_str_eq (s_slurp (), "pm-sweep-journal 1 rows=5 inputs=x,y outputs=a,b "
                                  "params=0123456789abcdef model=fedcba9876543210\n"
                                  "4,0.10000000000000001,-2,1\n"
                                  "0,nan,inf,0\n"
                                  "2,-inf,1.0000000000000001e+300,1\n");
    pm_journal_t j;
    cr_assert_eq (pm_journal_read (s_path, &h, &j, err, sizeof err), 0, "%s", err);
    cr_assert_eq (j.done_count, 3);
    cr_assert_eq (j.failed, 1);
    cr_assert_eq (j.noutputs, 2);
    cr_assert_eq (j.bad_lines, 0);
    cr_assert (!j.torn);
    cr_assert (j.done[0] && !j.done[1] && j.done[2] && !j.done[3] && j.done[4]);
    cr_assert_eq (j.outputs[4 * 2 + 0], 0.1);
    cr_assert_eq (j.outputs[4 * 2 + 1], -2.0);
    cr_assert (isnan (j.outputs[0]) && isinf (j.outputs[1]) && j.outputs[1] > 0);
    cr_assert (isinf (j.outputs[4]) && j.outputs[4] < 0);
    cr_assert_eq (j.outputs[5], 1e300);
    cr_assert (j.success[4] && !j.success[0] && j.success[2]);
    cr_assert_str_eq (j.header.outputs, "a,b");
    pm_journal_free (&j);
    pm_journal_header_free (&h);
}

Test (journal, torn_bad_and_duplicate_lines)
{
    s_write_file ("pm-sweep-journal 1 rows=4 inputs=x,y outputs=- params=0123456789abcdef "
                  "model=fedcba9876543210\n"
                  "1,5,6,1\n"
                  "garbage\n"
                  "9,1,2,1\n"      /* index out of range */
                  "2,1,1\n"        /* one output: not the width of the first row */
                  "2,1,2,7\n"      /* success is 0 or 1 */
                  "2,1,,1\n"       /* empty field */
                  "2, 1,2,1\n"     /* space */
                  "-1,1,2,1\n"     /* negative index */
                  "1,7,8,0\n"      /* again: the first one is kept */
                  "3,1,2,0\n"
                  "0,1,2");        /* torn */
    pm_journal_header_t want = s_header (4, "-");
    pm_journal_t j;
    char err[512];
    cr_assert_eq (pm_journal_read (s_path, &want, &j, err, sizeof err), 0, "%s", err);
    cr_assert_eq (j.done_count, 2);
    cr_assert_eq (j.noutputs, 2);
    cr_assert_eq (j.bad_lines, 7);
    cr_assert_eq (j.first_bad_line, 3);
    cr_assert_eq (j.duplicates, 1);
    cr_assert (j.torn);
    cr_assert_eq (j.failed, 1);
    cr_assert_eq (j.outputs[2], 5.0);
    cr_assert (!j.done[0]);
    off_t keep = j.keep;
    pm_journal_free (&j);
    /* Appending cuts the torn end first. */
    FILE *out = pm_journal_open_append (s_path, keep, err, sizeof err);
    cr_assert_not_null (out, "%s", err);
    double outputs[] = {1, 2};
    unsigned char success[] = {1};
    cr_assert_eq (pm_journal_append (out, NULL, 0, 1, 2, outputs, success, true), 0);
    fclose (out);
    cr_assert (strstr (s_slurp (), "3,1,2,0\n0,1,2,1\n"), "%s", s_slurp ());
    cr_assert_eq (pm_journal_read (s_path, &want, &j, err, sizeof err), 0, "%s", err);
    cr_assert (!j.torn);
    cr_assert_eq (j.done_count, 3);
    pm_journal_free (&j);
    pm_journal_header_free (&want);
}

Test (journal, header_fixes_the_width)
{
    s_write_file ("pm-sweep-journal 1 rows=2 inputs=x,y outputs=a,b,c params=0123456789abcdef "
                  "model=fedcba9876543210\n"
                  "0,1,2,1\n"
                  "1,1,2,3,1\n");
    pm_journal_header_t want = s_header (2, "-"); /* outputs not known yet: any */
    pm_journal_t j;
    char err[512];
    cr_assert_eq (pm_journal_read (s_path, &want, &j, err, sizeof err), 0, "%s", err);
    cr_assert_eq (j.noutputs, 3);
    cr_assert_eq (j.done_count, 1);
    cr_assert (j.done[1]);
    cr_assert_eq (j.bad_lines, 1);
    pm_journal_free (&j);
    pm_journal_header_free (&want);
}

Test (journal, other_sweeps)
{
    s_write_file ("pm-sweep-journal 1 rows=2 inputs=x,y outputs=a params=0123456789abcdef "
                  "model=fedcba9876543210\n");
    pm_journal_t j;
    char err[512];
    pm_journal_header_t want = s_header (2, "a");
    cr_assert_eq (pm_journal_read (s_path, &want, &j, err, sizeof err), 0, "%s", err);
    pm_journal_free (&j);
    want.rows = 3;
    cr_assert_eq (pm_journal_read (s_path, &want, &j, err, sizeof err), 2);
    cr_assert (strstr (err, "sweep of 2 rows, this one has 3"), "%s", err);
    want.rows = 2;
    want.params_hash++;
    cr_assert_eq (pm_journal_read (s_path, &want, &j, err, sizeof err), 2);
    cr_assert (strstr (err, "parameter rows differ"), "%s", err);
    want.params_hash--;
    want.model_hash++;
    cr_assert_eq (pm_journal_read (s_path, &want, &j, err, sizeof err), 2);
    cr_assert (strstr (err, "model differs"), "%s", err);
    want.model_hash--;
    free (want.outputs);
    want.outputs = strdup ("b");
    cr_assert_eq (pm_journal_read (s_path, &want, &j, err, sizeof err), 2);
    cr_assert (strstr (err, "outputs are a, this sweep's are b"), "%s", err);
    free (want.inputs);
    want.inputs = strdup ("x");
    cr_assert_eq (pm_journal_read (s_path, &want, &j, err, sizeof err), 2);
    cr_assert (strstr (err, "parameters are x,y, this sweep's are x"), "%s", err);
    pm_journal_header_free (&want);
}

Test (journal, no_header_or_not_a_journal)
{
    pm_journal_t j;
    char err[512];
    s_write_file ("");
    cr_assert_eq (pm_journal_read (s_path, NULL, &j, err, sizeof err), 1);
    s_write_file ("pm-sweep-journal 1 rows=2 inp");
    cr_assert_eq (pm_journal_read (s_path, NULL, &j, err, sizeof err), 1);
    s_write_file ("x,y,success\n");
    cr_assert_eq (pm_journal_read (s_path, NULL, &j, err, sizeof err), -1);
    cr_assert (strstr (err, "not a pm-sweep journal"), "%s", err);
    s_write_file ("pm-sweep-journal 2 rows=2\n");
    cr_assert_eq (pm_journal_read (s_path, NULL, &j, err, sizeof err), -1);
    cr_assert (strstr (err, "version 2"), "%s", err);
    s_write_file ("pm-sweep-journal 1 rows=2 inputs=x outputs=- params=12\n");
    cr_assert_eq (pm_journal_read (s_path, NULL, &j, err, sizeof err), -1);
    cr_assert (strstr (err, "lacks"), "%s", err);
    unlink (s_path);
    cr_assert_eq (pm_journal_read (s_path, NULL, &j, err, sizeof err), -1);
    cr_assert (strstr (err, "No such file"), "%s", err);
}

/* ---- the progress line --------------------------------------------------- */

Test (progress, duration)
{
    char text[32];
    cr_assert_str_eq (pm_progress_duration (text, sizeof text, 0), "0:00");
    cr_assert_str_eq (pm_progress_duration (text, sizeof text, 59.4), "0:59");
    cr_assert_str_eq (pm_progress_duration (text, sizeof text, 61), "1:01");
    cr_assert_str_eq (pm_progress_duration (text, sizeof text, 3600 + 62), "1:01:02");
    cr_assert_str_eq (pm_progress_duration (text, sizeof text, -1), "--:--");
    cr_assert_str_eq (pm_progress_duration (text, sizeof text, NAN), "--:--");
    cr_assert_str_eq (pm_progress_duration (text, sizeof text, 1e9), "--:--");
}

Test (progress, line)
{
    char text[512];
    pm_progress_state_t st = {.done = 500, .total = 2000, .failed = 3, .elapsed = 2.0};
    pm_progress_format (text, sizeof text, 80, &st);
    cr_assert_str_eq (text, "[###------------]   500/2000   25.0%  250.0 rows/s  ETA 0:06  3 failed");
    cr_assert_lt (strlen (text), 80);
    /* Resumed: the journal's rows are done but not in the rate. */
    st.base = 400;
    pm_progress_format (text, sizeof text, 80, &st);
    cr_assert (strstr (text, "  500/2000   25.0%  50.0 rows/s  ETA 0:30  3 failed"), "%s", text);
    /* Wider terminal: a wider bar, capped. */
    pm_progress_format (text, sizeof text, 200, &st);
    cr_assert (strncmp (text, "[#######-----------------------]  ", 34) == 0, "%s", text);
    /* Narrow terminal: no bar, cut to fit. */
    pm_progress_format (text, sizeof text, 40, &st);
    cr_assert_eq (strlen (text), 39);
    cr_assert (text[0] != '[');
    /* Nothing done yet: no rate, no ETA.  All done: 100%. */
    pm_progress_state_t start = {.total = 10};
    pm_progress_format (text, sizeof text, 80, &start);
    cr_assert (strstr (text, " 0/10    0.0%  0.0 rows/s  ETA --:--  0 failed"), "%s", text);
    pm_progress_state_t end = {.done = 10, .total = 10, .elapsed = 1, .note = "rank 0's rows"};
    pm_progress_format (text, sizeof text, 120, &end);
    cr_assert_str_eq (text, "[##############################]  10/10  100.0%  10.0 rows/s  ETA 0:00  "
                            "0 failed  (rank 0's rows)");
}
