/*  ro_sim.c — the reverse-osmosis cost model (ro_cost.c) as a command, for
    pm-sweep's --command mode:

        ro-sim --feed 35 --recovery 0.5 [--KEY VALUE]... [--json]

    prints one name=value line per output ("%.17g", so the values read back
    as the very doubles the plugin computes), or with --json one JSON object.
    Exit status: 0 evaluated; 1 the row failed (infeasible or out of range;
    reason on stderr); 2 bad arguments (usage on stderr).                  */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ro_cost.h"

#define S_EXIT_OK 0
#define S_EXIT_ROW_FAILED 1
#define S_EXIT_USAGE 2

#define S_SYNOPSIS "usage: ro-sim --feed G_PER_L --recovery FRACTION [--KEY VALUE]... [--json]\n"

static void
s_usage (FILE *out)
{
    ro_config_t defaults;
    ro_config_defaults (&defaults);
    fprintf (out,
             S_SYNOPSIS
             "\n"
             "Levelised cost of water of a single-stage reverse-osmosis plant.\n"
             "  --feed, --feed_salinity G_PER_L  feed salinity, g/L of TDS taken as NaCl (> 0)\n"
             "  --recovery FRACTION              permeate / feed, in (0, 1)\n"
             "  --json                           print one JSON object, not name=value lines\n"
             "  --help                           print this and exit\n"
             "Build arguments (--KEY VALUE or --KEY=VALUE):\n");
    for (size_t k = 0; k < ro_config_key_count (); k++) {
        char range[64];
        ro_config_key_range (k, range, sizeof range);
        fprintf (out, "  --%-26s %s; %s, default %g\n", ro_config_key_name (k),
                 ro_config_key_help (k), range, ro_config_key_value (&defaults, k));
    }
    fprintf (out, "Outputs:");
    for (size_t k = 0; k < RO_NOUTPUTS; k++)
        fprintf (out, " %s", ro_output_names ()[k]);
    fprintf (out,
             "\nExit status: 0 evaluated, 1 the row failed (infeasible or out of range), "
             "2 bad arguments.\n");
}

static int
s_bad_usage (const char *message, const char *what)
{
    fprintf (stderr, "ro-sim: %s%s%s\n" S_SYNOPSIS "(ro-sim --help lists the build arguments)\n",
             message, what ? ": " : "", what ? what : "");
    return S_EXIT_USAGE;
}

/* A row value: the whole text must be a number (strtod syntax, so "nan" and
   "inf" are numbers too, and make the row fail as they would in a sweep).  */
static bool
s_parse_row_value (const char *text, double *value)
{
    if (!text || !*text || strchr (" \t\n\v\f\r", text[0]))
        return false;
    char *end = NULL;
    errno = 0;
    *value = strtod (text, &end);
    return end != text && *end == '\0';
}

int
main (int argc, char **argv)
{
    ro_config_t cfg;
    ro_config_defaults (&cfg);
    bool json = false, have_feed = false, have_recovery = false;
    double feed = 0, recovery = 0;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0) {
            s_usage (stdout);
            return S_EXIT_OK;
        }
        if (strcmp (arg, "--json") == 0) {
            json = true;
            continue;
        }
        if (strncmp (arg, "--", 2) != 0 || arg[2] == '\0')
            return s_bad_usage ("unexpected argument", arg);
        /* --name value, or --name=value */
        char name[128];
        const char *value;
        const char *eq = strchr (arg, '=');
        size_t len = eq ? (size_t) (eq - arg - 2) : strlen (arg + 2);
        if (len >= sizeof name)
            return s_bad_usage ("unknown option", arg);
        memcpy (name, arg + 2, len);
        name[len] = '\0';
        if (eq)
            value = eq + 1;
        else if (i + 1 < argc)
            value = argv[++i];
        else
            return s_bad_usage ("missing value after", arg);

        if (strcmp (name, "feed") == 0 || strcmp (name, "feed_salinity") == 0) {
            if (!s_parse_row_value (value, &feed))
                return s_bad_usage ("--feed needs a number, not", value);
            have_feed = true;
        }
        else if (strcmp (name, "recovery") == 0) {
            if (!s_parse_row_value (value, &recovery))
                return s_bad_usage ("--recovery needs a number, not", value);
            have_recovery = true;
        }
        else {
            char err[640];
            if (ro_config_set (&cfg, name, value, err, sizeof err) != 0)
                return s_bad_usage (err, NULL);
        }
    }
    if (!have_feed || !have_recovery)
        return s_bad_usage (have_feed ? "--recovery is required" : "--feed is required", NULL);

    double out[RO_NOUTPUTS];
    ro_status_t status = ro_evaluate (&cfg, feed, recovery, out);
    if (status == RO_EINFEASIBLE && !isnan (out[RO_OUT_OPERATING_PRESSURE])) {
        fprintf (stderr,
                 "ro-sim: feed %g g/L at recovery %g is infeasible: it needs %.1f bar "
                 "(brine osmotic pressure %.1f bar + margin %g bar), max_pressure_bar is %g\n",
                 feed, recovery, out[RO_OUT_OPERATING_PRESSURE],
                 out[RO_OUT_OSMOTIC_PRESSURE_BRINE], cfg.pressure_margin_bar,
                 cfg.max_pressure_bar);
        return S_EXIT_ROW_FAILED;
    }
    if (status != RO_OK) {
        fprintf (stderr, "ro-sim: feed %g g/L at recovery %g: %s\n", feed, recovery,
                 ro_status_str (status));
        return S_EXIT_ROW_FAILED;
    }

    const char *const *names = ro_output_names ();
    if (json) {
        printf ("{");
        for (size_t k = 0; k < RO_NOUTPUTS; k++)
            printf ("%s\"%s\": %.17g", k ? ", " : "", names[k], out[k]);
        printf ("}\n");
    }
    else
        for (size_t k = 0; k < RO_NOUTPUTS; k++)
            printf ("%s=%.17g\n", names[k], out[k]);
    if (fflush (stdout) != 0 || ferror (stdout)) {
        fprintf (stderr, "ro-sim: cannot write the results: %s\n", strerror (errno));
        return S_EXIT_ROW_FAILED;
    }
    return S_EXIT_OK;
}
