/*  test_pm_params.c — the parameter space of pm-sweep: every kind, grid
    order, the edge cases and the error messages.                          */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pm_params.h"

static pm_params_t *
s_space (const char *first, ...)
{
    pm_params_t *space = pm_params_new ();
    cr_assert_not_null (space);
    char err[512];
    va_list args;
    va_start (args, first);
    for (const char *spec = first; spec; spec = va_arg (args, const char *))
        cr_assert_eq (pm_params_add (space, spec, err, sizeof err), 0, "%s: %s", spec, err);
    va_end (args);
    return space;
}

/* The whole table of a space (rows checked against expected_rows). */
static double *
s_table (pm_params_t *space, uint64_t samples, uint64_t seed, size_t expected_rows)
{
    char err[512];
    size_t rows = 0;
    cr_assert_eq (pm_params_rows (space, samples, PM_PARAMS_MAX_ROWS, &rows, err, sizeof err), 0,
                  "%s", err);
    cr_assert_eq (rows, expected_rows);
    double *table = pm_params_table (space, rows, seed);
    cr_assert_not_null (table);
    return table;
}

/* pm_params_add must fail with a message containing `needle`. */
static void
s_rejects (const char *spec, const char *needle)
{
    pm_params_t *space = pm_params_new ();
    char err[512] = "";
    cr_expect_eq (pm_params_add (space, spec, err, sizeof err), -1, "'%s' was accepted", spec);
    cr_expect (strstr (err, needle) != NULL, "'%s': message '%s' lacks '%s'", spec, err, needle);
    cr_expect_eq (pm_params_count (space), 0);
    pm_params_destroy (&space);
}

Test (params, linspace_like_numpy)
{
    pm_params_t *space = s_space ("x=linspace(0, 1, 5)", NULL);
    double *t = s_table (space, 0, 0, 5);
    double expect[] = {0, 0.25, 0.5, 0.75, 1};
    for (int i = 0; i < 5; i++)
        cr_expect_eq (t[i], expect[i], "x[%d] = %.17g", i, t[i]);
    free (t);
    pm_params_destroy (&space);

    /* numpy.linspace(0, 1, 11): i * 0.1, the last exactly 1. */
    space = s_space ("x=linspace(0,1,11)", NULL);
    t = s_table (space, 0, 0, 11);
    for (int i = 0; i < 10; i++)
        cr_expect_eq (t[i], i * (1.0 / 10), "x[%d] = %.17g", i, t[i]);
    cr_expect_eq (t[10], 1.0);
    cr_expect_eq (t[3], 0.30000000000000004); /* what numpy gives */
    free (t);
    pm_params_destroy (&space);

    /* decreasing, negative */
    space = s_space ("x=linspace(2, -2, 3)", NULL);
    t = s_table (space, 0, 0, 3);
    cr_expect_eq (t[0], 2);
    cr_expect_eq (t[1], 0);
    cr_expect_eq (t[2], -2);
    free (t);
    pm_params_destroy (&space);
}

Test (params, linspace_count_one_is_start)
{
    pm_params_t *space = s_space ("x=linspace(3.5, 9, 1)", NULL);
    double *t = s_table (space, 0, 0, 1);
    cr_expect_eq (t[0], 3.5);
    free (t);
    pm_params_destroy (&space);
}

Test (params, linspace_equal_ends)
{
    pm_params_t *space = s_space ("x=linspace(4, 4, 3)", NULL);
    double *t = s_table (space, 0, 0, 3);
    for (int i = 0; i < 3; i++)
        cr_expect_eq (t[i], 4);
    free (t);
    pm_params_destroy (&space);
}

Test (params, geomspace_like_numpy)
{
    pm_params_t *space = s_space ("g=geomspace(1, 1000, 4)", NULL);
    double *t = s_table (space, 0, 0, 4);
    cr_expect_eq (t[0], 1);
    cr_expect_float_eq (t[1], 10, 1e-12);
    cr_expect_float_eq (t[2], 100, 1e-10);
    cr_expect_eq (t[3], 1000); /* endpoints exact, as numpy makes them */
    free (t);
    pm_params_destroy (&space);

    space = s_space ("g=geomspace(0.3, 7, 1)", NULL);
    t = s_table (space, 0, 0, 1);
    cr_expect_eq (t[0], 0.3);
    free (t);
    pm_params_destroy (&space);

    /* decreasing; ratios constant */
    space = s_space ("g=geomspace(8, 0.5, 5)", NULL);
    t = s_table (space, 0, 0, 5);
    cr_expect_eq (t[0], 8);
    cr_expect_eq (t[4], 0.5);
    for (int i = 1; i < 5; i++)
        cr_expect_float_eq (t[i] / t[i - 1], 0.5, 1e-12);
    free (t);
    pm_params_destroy (&space);
}

Test (params, geomspace_rejects_non_positive_bounds)
{
    s_rejects ("g=geomspace(0, 10, 3)", "geomspace needs start > 0 and stop > 0");
    s_rejects ("g=geomspace(-1, 10, 3)", "start > 0");
    s_rejects ("g=geomspace(1, -10, 3)", "stop > 0");
    s_rejects ("g=geomspace(-1, -10, 3)", "geomspace");
    s_rejects ("g=geomspace(1, 0, 3)", "geomspace");
}

Test (params, list_keeps_the_values_and_order)
{
    pm_params_t *space = s_space ("v=list(3, -1.5, 1e3, 0.1)", NULL);
    double *t = s_table (space, 0, 0, 4);
    cr_expect_eq (t[0], 3);
    cr_expect_eq (t[1], -1.5);
    cr_expect_eq (t[2], 1000);
    cr_expect_eq (t[3], 0.1);
    free (t);
    pm_params_destroy (&space);

    space = s_space ("v=list(7)", NULL);
    t = s_table (space, 0, 0, 1);
    cr_expect_eq (t[0], 7);
    free (t);
    pm_params_destroy (&space);
}

Test (params, grid_first_parameter_slowest)
{
    /* numpy.meshgrid(a, b, c, indexing="ij") flattened, in column order. */
    pm_params_t *space = s_space ("a=list(1,2)", "b=linspace(10,30,3)", "c=list(-1,-2)", NULL);
    cr_expect_eq (pm_params_count (space), 3);
    cr_expect_str_eq (pm_params_name (space, 0), "a");
    cr_expect_str_eq (pm_params_name (space, 2), "c");
    cr_expect_eq (pm_params_find (space, "b"), 1);
    cr_expect_eq (pm_params_find (space, "z"), -1);
    cr_expect_not (pm_params_is_random (space));
    double *t = s_table (space, 0, 0, 12);
    size_t r = 0;
    for (int ia = 0; ia < 2; ia++)
        for (int ib = 0; ib < 3; ib++)
            for (int ic = 0; ic < 2; ic++, r++) {
                cr_expect_eq (t[r * 3 + 0], 1 + ia, "row %zu", r);
                cr_expect_eq (t[r * 3 + 1], 10 + 10 * ib, "row %zu", r);
                cr_expect_eq (t[r * 3 + 2], -1 - ic, "row %zu", r);
            }
    free (t);
    pm_params_destroy (&space);
}

Test (params, whitespace_is_allowed_around_tokens)
{
    pm_params_t *space = s_space ("  feed_2 =  linspace ( 1 ,\t2 , 3 )  ", " y=list( 4 ,5 ) ",
                                  NULL);
    cr_expect_str_eq (pm_params_name (space, 0), "feed_2");
    cr_expect_str_eq (pm_params_name (space, 1), "y");
    double *t = s_table (space, 0, 0, 6);
    cr_expect_eq (t[0], 1);
    cr_expect_eq (t[1], 4);
    cr_expect_eq (t[10], 2);
    cr_expect_eq (t[11], 5);
    free (t);
    pm_params_destroy (&space);
}

Test (params, malformed_expressions_are_rejected_clearly)
{
    s_rejects ("x=linspace(1,2)", "linspace needs 3 arguments (start, stop, count)");
    s_rejects ("x=linspace(1,2,3,4)", "linspace needs 3 arguments");
    s_rejects ("x=linspace()", "linspace needs 3 arguments");
    s_rejects ("x=uniform(1)", "uniform needs 2 arguments (low, high)");
    s_rejects ("x=normal(0,1,2)", "normal needs 2 arguments (mean, sd)");
    s_rejects ("x=list()", "list needs at least one value");
    s_rejects ("x=list(1,,2)", "argument 2 is empty");
    s_rejects ("x=list(1,2,)", "argument 3 is empty");
    s_rejects ("x=linspace(1,a,3)", "argument 2 'a' is not a finite number");
    s_rejects ("x=list(1, nan)", "'nan' is not a finite number");
    s_rejects ("x=list(inf)", "not a finite number");
    s_rejects ("x=list(1e999)", "not a finite number");
    s_rejects ("x=list(1.5x)", "not a finite number");
    s_rejects ("x=linspace(1,2,0)", "count must be at least 1");
    s_rejects ("x=linspace(1,2,-3)", "count must be at least 1");
    s_rejects ("x=linspace(1,2,2.5)", "count '2.5' is not a whole number");
    s_rejects ("x=linspace(1,2,1000000000)", "exceeds the limit");
    s_rejects ("x=foo(1,2)", "unknown kind 'foo'");
    s_rejects ("x=Linspace(1,2,3)", "unknown kind 'Linspace'");
    s_rejects ("x=linspace 1,2,3", "expected '(' after 'linspace'");
    s_rejects ("x=linspace(1,2,3", "missing ')'");
    s_rejects ("x=linspace(1,2,3) extra", "unexpected text after ')'");
    s_rejects ("x=list((1),2)", "unexpected '('");
    s_rejects ("x=", "no expression after '='");
    s_rejects ("x=(1,2)", "expected a kind");
    s_rejects ("x", "expected name=EXPR");
    s_rejects ("linspace(1,2,3)", "expected name=EXPR");
    s_rejects ("=linspace(1,2,3)", "has no name");
    s_rejects ("1x=list(1)", "'1x' is not a valid name");
    s_rejects ("a-b=list(1)", "'a-b' is not a valid name");
    s_rejects ("x y=list(1)", "not a valid name");
    s_rejects ("x=uniform(2,1)", "uniform needs low < high");
    s_rejects ("x=uniform(1,1)", "low < high");
    s_rejects ("x=lhs(5,5)", "lhs needs low < high");
    s_rejects ("x=normal(0,-1)", "normal needs sd >= 0");
    s_rejects ("x=uniform(-1e308,1e308)", "overflows");
}

Test (params, duplicate_names_are_rejected)
{
    pm_params_t *space = s_space ("x=list(1)", NULL);
    char err[256];
    cr_expect_eq (pm_params_add (space, " x = list(2)", err, sizeof err), -1);
    cr_expect (strstr (err, "parameter 'x' is given twice"), "%s", err);
    cr_expect_eq (pm_params_count (space), 1);
    pm_params_destroy (&space);
}

Test (params, rows_rules)
{
    char err[512];
    size_t rows = 0;
    pm_params_t *space = pm_params_new ();
    cr_expect_eq (pm_params_rows (space, 0, PM_PARAMS_MAX_ROWS, &rows, err, sizeof err), -1);
    cr_expect (strstr (err, "no parameter"), "%s", err);
    pm_params_destroy (&space);

    /* grid + random: refused, naming both */
    space = s_space ("x=linspace(0,1,3)", "y=uniform(0,1)", NULL);
    cr_expect_eq (pm_params_rows (space, 10, PM_PARAMS_MAX_ROWS, &rows, err, sizeof err), -1);
    cr_expect (strstr (err, "cannot mix grid kinds"), "%s", err);
    cr_expect (strstr (err, "'x' is linspace, 'y' is uniform"), "%s", err);
    pm_params_destroy (&space);

    /* random needs --samples */
    space = s_space ("y=normal(0,1)", NULL);
    cr_expect_eq (pm_params_rows (space, 0, PM_PARAMS_MAX_ROWS, &rows, err, sizeof err), -1);
    cr_expect (strstr (err, "need --samples"), "%s", err);
    cr_expect_eq (pm_params_rows (space, 7, PM_PARAMS_MAX_ROWS, &rows, err, sizeof err), 0);
    cr_expect_eq (rows, 7);
    cr_expect_eq (pm_params_rows (space, 101, 100, &rows, err, sizeof err), -1);
    cr_expect (strstr (err, "exceed the limit of 100 rows"), "%s", err);
    pm_params_destroy (&space);

    /* grid refuses --samples */
    space = s_space ("x=list(1,2)", NULL);
    cr_expect_eq (pm_params_rows (space, 5, PM_PARAMS_MAX_ROWS, &rows, err, sizeof err), -1);
    cr_expect (strstr (err, "--samples is for random kinds"), "%s", err);
    pm_params_destroy (&space);

    /* the grid's size is limited, without overflow */
    space = s_space ("a=linspace(0,1,100000)", "b=linspace(0,1,100000)",
                     "c=linspace(0,1,100000)", "d=linspace(0,1,100000)", NULL);
    cr_expect_eq (pm_params_rows (space, 0, PM_PARAMS_MAX_ROWS, &rows, err, sizeof err), -1);
    cr_expect (strstr (err, "more than 100000000 rows"), "%s", err);
    pm_params_destroy (&space);

    space = s_space ("a=linspace(0,1,10)", "b=list(1,2,3)", NULL);
    cr_expect_eq (pm_params_rows (space, 0, 30, &rows, err, sizeof err), 0);
    cr_expect_eq (rows, 30);
    cr_expect_eq (pm_params_rows (space, 0, 29, &rows, err, sizeof err), -1);
    pm_params_destroy (&space);
}

Test (params, random_kinds_stay_in_range)
{
    pm_params_t *space = s_space ("u=uniform(-2, 3)", "n=normal(10, 2)", "l=lhs(100, 200)", NULL);
    cr_expect (pm_params_is_random (space));
    size_t rows = 2000;
    double *t = s_table (space, rows, 42, rows);
    double sum_u = 0, sum_n = 0, sum_n2 = 0;
    for (size_t r = 0; r < rows; r++) {
        double u = t[r * 3], n = t[r * 3 + 1], l = t[r * 3 + 2];
        cr_assert (u >= -2 && u <= 3, "u = %g", u);
        cr_assert (l > 100 && l < 200, "l = %g", l);
        cr_assert (isfinite (n));
        sum_u += u;
        sum_n += n;
        sum_n2 += n * n;
    }
    double mean_n = sum_n / rows, sd_n = sqrt (sum_n2 / rows - mean_n * mean_n);
    cr_expect_float_eq (sum_u / rows, 0.5, 0.15);
    cr_expect_float_eq (mean_n, 10, 0.2);
    cr_expect_float_eq (sd_n, 2, 0.15);
    free (t);
    pm_params_destroy (&space);
}

Test (params, normal_with_zero_sd_is_the_mean)
{
    pm_params_t *space = s_space ("n=normal(3, 0)", NULL);
    double *t = s_table (space, 5, 1, 5);
    for (int i = 0; i < 5; i++)
        cr_expect_eq (t[i], 3);
    free (t);
    pm_params_destroy (&space);
}

Test (params, seeds_are_reproducible)
{
    pm_params_t *space = s_space ("u=uniform(0,1)", "n=normal(0,1)", "l=lhs(0,1)", NULL);
    double *a = s_table (space, 100, 7, 100);
    double *b = s_table (space, 100, 7, 100);
    double *c = s_table (space, 100, 8, 100);
    cr_expect_eq (memcmp (a, b, 300 * sizeof (double)), 0, "same seed, different rows");
    cr_expect_neq (memcmp (a, c, 300 * sizeof (double)), 0, "another seed, same rows");
    /* columns are independent streams */
    cr_expect_neq (a[0], a[2]);
    free (a);
    free (b);
    free (c);
    pm_params_destroy (&space);

    /* Adding a column does not change the earlier ones. */
    pm_params_t *one = s_space ("u=uniform(0,1)", NULL);
    pm_params_t *two = s_space ("u=uniform(0,1)", "v=uniform(5,6)", NULL);
    double *t1 = s_table (one, 50, 99, 50), *t2 = s_table (two, 50, 99, 50);
    for (int r = 0; r < 50; r++)
        cr_expect_eq (t1[r], t2[r * 2], "row %d", r);
    free (t1);
    free (t2);
    pm_params_destroy (&one);
    pm_params_destroy (&two);
}

Test (params, seed_zero_known_values)
{
    /* Pin the generator: old seeds must keep reproducing old sweeps.  The
       values come from an independent Python transcription of splitmix64
       and xoshiro256** (Blackman & Vigna) with this seeding. */
    pm_params_t *space = s_space ("u=uniform(0,1)", "v=uniform(0,1)", NULL);
    double *t = s_table (space, 3, 0, 3);
    double expect[] = {0.92996978156157939, 0.93812533508769047, 0.83927683981355172,
                       0.16871874155916466, 0.16532524975997753, 0.80320152720029792};
    for (int i = 0; i < 6; i++)
        cr_expect_eq (t[i], expect[i], "cell %d: %.17g", i, t[i]);
    free (t);
    pm_params_destroy (&space);
}

Test (params, lhs_has_one_sample_per_stratum_per_dimension)
{
    size_t sizes[] = {1, 2, 7, 100, 1000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        pm_params_t *space = s_space ("a=lhs(0, 1)", "b=lhs(-5, 5)", "c=lhs(1e3, 2e3)", NULL);
        double *t = s_table (space, n, 1234 + s, n);
        double lo[] = {0, -5, 1e3}, hi[] = {1, 5, 2e3};
        for (int d = 0; d < 3; d++) {
            unsigned char *seen = calloc (n, 1);
            for (size_t r = 0; r < n; r++) {
                double v = t[r * 3 + d];
                cr_assert (v > lo[d] && v < hi[d], "dim %d row %zu: %g", d, r, v);
                size_t stratum = (size_t) floor ((v - lo[d]) / (hi[d] - lo[d]) * (double) n);
                cr_assert_lt (stratum, n);
                cr_assert_eq (seen[stratum], 0, "n=%zu dim %d: stratum %zu twice", n, d, stratum);
                seen[stratum] = 1;
            }
            free (seen);
        }
        /* The dimensions are permuted independently. */
        if (n >= 100) {
            size_t same = 0;
            for (size_t r = 0; r < n; r++)
                same += (size_t) floor (t[r * 3] * (double) n)
                        == (size_t) floor ((t[r * 3 + 1] + 5) / 10 * (double) n);
            cr_expect_lt (same, n / 10, "dimensions look correlated");
        }
        free (t);
        pm_params_destroy (&space);
    }
}

Test (params, destroy_is_idempotent)
{
    pm_params_t *space = s_space ("x=list(1,2,3)", NULL);
    pm_params_destroy (&space);
    cr_expect_null (space);
    pm_params_destroy (&space);
    pm_params_destroy (NULL);
}
