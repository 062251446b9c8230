/*  test_pm_command_model.c — the command-per-row model: substitution,
    name=value and JSON outputs, failures (exit status, signal, timeout,
    unparsable output), discovery, and the pm_model_t adapter.             */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pm.h"
#include "pm_command_model.h"

static const char *const s_xy[] = {"x", "y"};

static pm_command_t *
s_command (const char *tpl, const char *outputs, int64_t timeout_ms)
{
    char **names = NULL;
    size_t count = 0;
    char err[512] = "";
    if (outputs)
        cr_assert_eq (pm_command_split_names (outputs, &names, &count, err, sizeof err), 0, "%s",
                      err);
    pm_command_t *command = pm_command_new (tpl, s_xy, 2, (const char *const *) names, count,
                                            timeout_ms, err, sizeof err);
    cr_assert_not_null (command, "%s: %s", tpl, err);
    pm_command_names_free (names, count);
    return command;
}

static double
s_seconds (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- substitution ---------------------------------------------------------- */

Test (command, substitutes_placeholders_with_full_precision)
{
    pm_command_t *c = s_command ("sim --x {x} --y={y} --again {x}", "a", 0);
    double row[] = {0.1, -3};
    char *line = pm_command_line (c, row);
    cr_expect_str_eq (line, "sim --x 0.10000000000000001 --y=-3 --again 0.10000000000000001");
    free (line);
    double row2[] = {1e300, 2.5};
    line = pm_command_line (c, row2);
    cr_expect_str_eq (line,
                      "sim --x 1.0000000000000001e+300 --y=2.5 --again 1.0000000000000001e+300");
    free (line);
    pm_command_destroy (&c);
    cr_expect_null (c);
    pm_command_destroy (&c);
}

Test (command, braces_that_are_not_placeholders_pass_through)
{
    pm_command_t *c = s_command ("awk '{print $1}' {{x}} }} {{ {} { x} {x", "a", 0);
    double row[] = {1, 2};
    char *line = pm_command_line (c, row);
    cr_expect_str_eq (line, "awk '{print $1}' {x} } { {} { x} {x");
    free (line);
    pm_command_destroy (&c);
}

Test (command, unknown_placeholder_is_an_error)
{
    char err[512] = "";
    pm_command_t *c = pm_command_new ("sim {x} {feed}", s_xy, 2, NULL, 0, 0, err, sizeof err);
    cr_expect_null (c);
    cr_expect (strstr (err, "unknown placeholder {feed}"), "%s", err);
    cr_expect (strstr (err, "{x}, {y}"), "%s", err);
    c = pm_command_new ("echo ${HOME}", s_xy, 2, NULL, 0, 0, err, sizeof err);
    cr_expect_null (c);
    cr_expect (strstr (err, "{HOME}"), "%s", err);
    c = pm_command_new ("", s_xy, 2, NULL, 0, 0, err, sizeof err);
    cr_expect_null (c);
    cr_expect (strstr (err, "empty"), "%s", err);
}

Test (command, split_names)
{
    char **names;
    size_t count;
    char err[256];
    cr_assert_eq (pm_command_split_names (" a, b.c ,lcow-usd", &names, &count, err, sizeof err), 0,
                  "%s", err);
    cr_expect_eq (count, 3);
    cr_expect_str_eq (names[0], "a");
    cr_expect_str_eq (names[1], "b.c");
    cr_expect_str_eq (names[2], "lcow-usd");
    pm_command_names_free (names, count);
    cr_expect_eq (pm_command_split_names ("a,,b", &names, &count, err, sizeof err), -1);
    cr_expect (strstr (err, "empty"), "%s", err);
    cr_expect_eq (pm_command_split_names ("a,a", &names, &count, err, sizeof err), -1);
    cr_expect (strstr (err, "named twice"), "%s", err);
    cr_expect_eq (pm_command_split_names ("a,1b", &names, &count, err, sizeof err), -1);
    cr_expect (strstr (err, "'1b' is not a valid output name"), "%s", err);
    cr_expect_eq (pm_command_split_names ("", &names, &count, err, sizeof err), -1);
}

/* ---- outputs --------------------------------------------------------------------- */

Test (command, name_value_lines)
{
    pm_command_t *c = s_command (
        "echo starting model; echo 'a=1'; echo ' b = {y} '; echo 'note: x=abc'; echo extra=5",
        "a,b,missing", 0);
    double row[] = {0, 2.5}, out[3];
    char why[512] = "";
    cr_expect_eq (pm_command_run (c, row, out, why, sizeof why), 0, "%s", why);
    cr_expect_eq (out[0], 1);
    cr_expect_eq (out[1], 2.5);
    cr_expect (isnan (out[2]), "a missing output is NaN");
    pm_command_destroy (&c);
}

Test (command, value_round_trips_exactly)
{
    const char *const names[] = {"x"};
    char err[256];
    const char *const outs[] = {"echo"};
    pm_command_t *d = pm_command_new ("echo echo={x}", names, 1, outs, 1, 0, err, sizeof err);
    cr_assert_not_null (d, "%s", err);
    double row[] = {0.1 + 0.2}, out[1];
    char why[256];
    cr_expect_eq (pm_command_run (d, row, out, why, sizeof why), 0, "%s", why);
    cr_expect_eq (out[0], 0.1 + 0.2);
    pm_command_destroy (&d);
}

Test (command, json_object)
{
    pm_command_t *c = s_command (
        "printf '%s' '  {\"a\": 1.5, \"b\" : -2e3, \"c\": null, \"s\": \"text\","
        " \"arr\": [1, {\"z\": 2}], \"t\": true, \"bad key\": 3, \"esc\\u0061pe\": 4}\n'",
        "a,b,c,escape,d", 0);
    double row[] = {0, 0}, out[5];
    char why[512] = "";
    cr_expect_eq (pm_command_run (c, row, out, why, sizeof why), 0, "%s", why);
    cr_expect_eq (out[0], 1.5);
    cr_expect_eq (out[1], -2000);
    cr_expect (isnan (out[2]));
    cr_expect_eq (out[3], 4);
    cr_expect (isnan (out[4]));
    pm_command_destroy (&c);
}

Test (command, json_as_python_writes_it)
{
    pm_command_t *c = s_command ("echo '{\"a\": NaN, \"b\": Infinity, \"c\": -Infinity, \"d\": 0}'",
                                 "a,b,c,d", 0);
    double row[] = {0, 0}, out[4];
    char why[512] = "";
    cr_expect_eq (pm_command_run (c, row, out, why, sizeof why), 0, "%s", why);
    cr_expect (isnan (out[0]));
    cr_expect (isinf (out[1]) && out[1] > 0);
    cr_expect (isinf (out[2]) && out[2] < 0);
    cr_expect_eq (out[3], 0);
    pm_command_destroy (&c);
}

static void
s_fails (const char *tpl, const char *outputs, int64_t timeout_ms, const char *needle)
{
    pm_command_t *c = s_command (tpl, outputs, timeout_ms);
    double row[] = {1, 2}, out[4] = {7, 7, 7, 7};
    char why[512] = "";
    cr_expect_neq (pm_command_run (c, row, out, why, sizeof why), 0, "'%s' succeeded", tpl);
    cr_expect (strstr (why, needle), "'%s': reason '%s' lacks '%s'", tpl, why, needle);
    cr_expect (isnan (out[0]), "a failed row's outputs are NaN");
    pm_command_destroy (&c);
}

Test (command, failures)
{
    s_fails ("echo a=1; exit 3", "a", 0, "exited with status 3");
    s_fails ("kill -9 $$", "a", 0, "killed by signal 9");
    s_fails ("echo hello world", "a", 0, "no outputs in what the command printed");
    s_fails ("true", "a", 0, "printed nothing");
    s_fails ("echo a=abc", "a", 0, "output 'a' has the value 'abc', not a number");
    s_fails ("echo other=1", "a,b", 0, "none of the expected outputs");
    s_fails ("echo '{\"a\": 1'", "a", 0, "malformed JSON");
    s_fails ("echo '{\"a\": 1} trailing'", "a", 0, "after the JSON object");
    s_fails ("echo '{\"a\": \"1\"}'", "a", 0, "output 'a' has the value \"1\", not a number");
    s_fails ("echo '{\"a\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
             "]]]]}'",
             "b", 0, "malformed JSON");
    s_fails ("printf 'a=1\\0\\n'", "a", 0, "NUL");
    s_fails ("head -c 3000000 /dev/zero | tr '\\0' x", "a", 0, "more than");
    s_fails ("/nonexistent/program 2>/dev/null", "a", 0, "exited with status 127");
}

Test (command, timeout_kills_the_process_group)
{
    char pidfile[] = "/tmp/pm-command-test-XXXXXX";
    int fd = mkstemp (pidfile);
    cr_assert_geq (fd, 0);
    close (fd);
    char tpl[512];
    /* sh starts a grandchild, records its pid, and waits: both must die. */
    snprintf (tpl, sizeof tpl, "sleep 30 & echo $! > %s; echo a=1; wait", pidfile);
    pm_command_t *c = s_command (tpl, "a", 300);
    double row[] = {0, 0}, out[1];
    char why[512] = "";
    double t0 = s_seconds ();
    cr_expect_neq (pm_command_run (c, row, out, why, sizeof why), 0);
    double took = s_seconds () - t0;
    cr_expect (strstr (why, "timed out after 300 ms"), "%s", why);
    cr_expect (took >= 0.29 && took < 3, "took %.3f s", took);
    FILE *f = fopen (pidfile, "r");
    cr_assert_not_null (f);
    int pid = 0;
    cr_assert_eq (fscanf (f, "%d", &pid), 1);
    fclose (f);
    unlink (pidfile);
    /* Gone, or a zombie waiting for init to reap it. */
    bool dead = false;
    for (int i = 0; i < 200 && !dead; i++) {
        char path[64], stat[256] = "";
        snprintf (path, sizeof path, "/proc/%d/stat", pid);
        FILE *s = fopen (path, "r");
        if (!s)
            dead = true;
        else {
            if (fgets (stat, sizeof stat, s)) {
                char *paren = strrchr (stat, ')');
                dead = paren && paren[1] == ' ' && paren[2] == 'Z';
            }
            fclose (s);
        }
        if (!dead)
            usleep (10000);
    }
    cr_expect (dead, "the grandchild %d survived the timeout", pid);
    if (!dead)
        kill (pid, SIGKILL);
    pm_command_destroy (&c);
}

Test (command, timeout_while_silent_and_after_closing_stdout)
{
    s_fails ("sleep 5", "a", 200, "timed out");
    s_fails ("echo a=1; exec >&-; sleep 5", "a", 200, "timed out");
}

Test (command, fast_row_within_timeout_succeeds)
{
    pm_command_t *c = s_command ("echo a={x}", "a", 5000);
    double row[] = {4, 0}, out[1];
    char why[256] = "";
    cr_expect_eq (pm_command_run (c, row, out, why, sizeof why), 0, "%s", why);
    cr_expect_eq (out[0], 4);
    pm_command_destroy (&c);
}

Test (command, background_grandchild_does_not_hold_the_row)
{
    pm_command_t *c = s_command ("sleep 3 & echo a=2", "a", 0);
    double row[] = {0, 0}, out[1];
    char why[256] = "";
    double t0 = s_seconds ();
    cr_expect_eq (pm_command_run (c, row, out, why, sizeof why), 0, "%s", why);
    cr_expect_lt (s_seconds () - t0, 2.0);
    cr_expect_eq (out[0], 2);
    pm_command_destroy (&c);
}

Test (command, child_environment_has_no_pm_rank)
{
    setenv ("PM_RANK", "3", 1);
    setenv ("PM_ENDPOINT", "tcp://nowhere:1", 1);
    setenv ("PM_SWEEP_TEST_KEEP", "5", 1);
    pm_command_t *c = s_command ("echo a=${PM_RANK:-7}; echo b=${PM_SWEEP_TEST_KEEP:-0};"
                                 " test -z \"$PM_ENDPOINT\" && echo c=1",
                                 "a,b,c", 0);
    double row[] = {0, 0}, out[3];
    char why[256] = "";
    cr_expect_eq (pm_command_run (c, row, out, why, sizeof why), 0, "%s", why);
    cr_expect_eq (out[0], 7);
    cr_expect_eq (out[1], 5);
    cr_expect_eq (out[2], 1);
    pm_command_destroy (&c);
}

Test (command, stdin_is_dev_null)
{
    pm_command_t *c = s_command ("n=$(wc -c); echo a=$n", "a", 2000);
    double row[] = {0, 0}, out[1];
    char why[256] = "";
    cr_expect_eq (pm_command_run (c, row, out, why, sizeof why), 0, "%s", why);
    cr_expect_eq (out[0], 0);
    pm_command_destroy (&c);
}

Test (command, discover_names_in_order_of_appearance)
{
    pm_command_t *c = s_command ("echo zeta=1; echo chatter; echo alpha=2; echo zeta=3; "
                                 "echo mid.v=4; echo word=abc",
                                 NULL, 0);
    double row[] = {0, 0};
    char **names = NULL;
    size_t count = 0;
    char why[256] = "";
    cr_assert_eq (pm_command_discover (c, row, &names, &count, why, sizeof why), 0, "%s", why);
    cr_expect_eq (count, 3);
    cr_expect_str_eq (names[0], "zeta");
    cr_expect_str_eq (names[1], "alpha");
    cr_expect_str_eq (names[2], "mid.v");
    pm_command_names_free (names, count);
    pm_command_destroy (&c);

    c = s_command ("exit 1", NULL, 0);
    cr_expect_eq (pm_command_discover (c, row, &names, &count, why, sizeof why), -1);
    cr_expect (strstr (why, "exited with status 1"), "%s", why);
    cr_expect_null (names);
    pm_command_destroy (&c);
}

/* ---- through libpm: a serial sweep with the model adapter --------------------------- */

Test (command, model_adapter_in_a_serial_sweep)
{
    pm_log_set_level (PM_LOG_ERROR); /* the failing row's PM5001 warning */
    pm_manager_t *pm = pm_create_parallel_manager ("Serial", 1, NULL);
    cr_assert_not_null (pm);
    pm_model_t *model = pm_command_model_new ();
    cr_assert_not_null (model);
    cr_assert_eq (pm_model_set_arg (model, "command",
                                    "test {x} -ge 0 && echo sum=$(({x} + {y})) || exit 4"),
                  0);
    cr_assert_eq (pm_model_set_arg (model, "params", "x,y"), 0);
    cr_assert_eq (pm_model_set_arg (model, "outputs", "sum"), 0);
    cr_assert_eq (pm_model_set_arg (model, "timeout_ms", "10000"), 0);
    double table[] = {1, 2, -1, 5, 10, 20};
    int rc = pm_scatter (pm, model, table, 3, 2);
    cr_assert_eq (rc, 0, "%s", pm_last_error (pm));
    pm_results_t *results = NULL;
    cr_assert_eq (pm_gather (pm, &results), 0, "%s", pm_last_error (pm));
    cr_expect_eq (pm_results_rows (results), 3);
    cr_assert_eq (pm_results_output_count (results), 1);
    cr_expect_str_eq (pm_results_output_name (results, 0), "sum");
    const pm_local_results_t *e = pm_results_get (results, 0);
    cr_assert_eq (e->rows, 3);
    cr_expect_eq (e->outputs[0], 3);
    cr_expect (isnan (e->outputs[1]));
    cr_expect_eq (e->success[1], 0);
    cr_expect_eq (e->outputs[2], 30);
    cr_expect_eq (e->success[2], 1);
    pm_results_destroy (&results);

    /* A bad template fails the build, so the sweep, on every rank. */
    pm_model_t *bad = pm_command_model_new ();
    pm_model_set_arg (bad, "command", "echo {nope}");
    pm_model_set_arg (bad, "params", "x,y");
    pm_model_set_arg (bad, "outputs", "a");
    cr_expect_eq (pm_scatter (pm, bad, table, 3, 2), PM_EINVAL);
    cr_expect (strstr (pm_last_error (pm), "unknown placeholder {nope}"), "%s", pm_last_error (pm));
    pm_model_destroy (&bad);
    pm_model_destroy (&model);
    pm_destroy (&pm);
}
