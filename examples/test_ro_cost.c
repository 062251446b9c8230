/*  test_ro_cost.c — unit tests of the reverse-osmosis cost model: the
    physics of ro_cost.c, the plugin (libpm_ro_model.so, opened with dlopen
    as pm_model_load would, and in a serial sweep through libpm), and
    ro-sim, whose printed values must be the plugin's doubles bit for bit.
    RO_SIM_PATH and RO_MODEL_PATH come from examples/CMakeLists.txt.       */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "pm.h"
#include "ro_cost.h"

/* ---- helpers ----------------------------------------------------------- */

static ro_config_t
s_defaults (void)
{
    ro_config_t cfg;
    ro_config_defaults (&cfg);
    return cfg;
}

static void
s_set (ro_config_t *cfg, const char *key, const char *text)
{
    char err[256] = "";
    int rc = ro_config_set (cfg, key, text, err, sizeof err);
    cr_assert_eq (rc, 0, "%s=%s refused: %s", key, text, err);
}

/* Relative closeness, for values computed by hand. */
static void
s_assert_close (double actual, double expected, double rel, const char *what)
{
    cr_assert (fabs (actual - expected) <= rel * fabs (expected),
               "%s: %.17g, expected %.17g (rel. tol. %g)", what, actual, expected, rel);
}

static bool
s_same_bits (double a, double b)
{
    return memcmp (&a, &b, sizeof a) == 0;
}

/* ---- physics ----------------------------------------------------------- */

Test (physics, seawater_osmotic_pressure)
{
    /* By hand: 35 g/L / 58.44 g/mol = 0.598905 mol/L of NaCl; i = 2 gives
       1.197810 osmol/L; R·T = 0.083145 × 298.15 = 24.78968 L·bar/mol;
       π = 1.197810 × 24.78968 = 29.6933 bar.                               */
    s_assert_close (ro_osmotic_pressure_bar (35, 25), 29.6933, 1e-5, "pi(35 g/L, 25 C)");
    /* van 't Hoff is linear in salinity and in absolute temperature. */
    s_assert_close (ro_osmotic_pressure_bar (70, 25), 2 * ro_osmotic_pressure_bar (35, 25),
                    1e-15, "pi linear in c");
    s_assert_close (ro_osmotic_pressure_bar (35, 50) / ro_osmotic_pressure_bar (35, 25),
                    323.15 / 298.15, 1e-14, "pi linear in T");
    cr_assert_eq (ro_osmotic_pressure_bar (0, 25), 0.0);
}

Test (physics, brine_concentrates_by_one_over_one_minus_recovery)
{
    ro_config_t cfg = s_defaults ();
    double out[RO_NOUTPUTS];
    cr_assert_eq (ro_evaluate (&cfg, 35, 0.5, out), RO_OK);
    /* 1/(1 - 0.5) = 2 exactly, and doubling is exact in binary. */
    cr_assert_eq (out[RO_OUT_OSMOTIC_PRESSURE_BRINE], 2 * out[RO_OUT_OSMOTIC_PRESSURE_FEED]);
    cr_assert_eq (ro_evaluate (&cfg, 10, 0.75, out), RO_OK);
    cr_assert_eq (out[RO_OUT_OSMOTIC_PRESSURE_BRINE], 4 * out[RO_OUT_OSMOTIC_PRESSURE_FEED]);
    /* operating pressure = brine osmotic pressure + margin */
    cr_assert_eq (out[RO_OUT_OPERATING_PRESSURE],
                  out[RO_OUT_OSMOTIC_PRESSURE_BRINE] + cfg.pressure_margin_bar);
}

Test (physics, seawater_row_by_hand)
{
    /* 35 g/L at recovery 0.5, defaults:
         π_feed  = 29.693322 bar, π_brine = 59.386643 bar, P = 64.386643 bar
         SEC = (P/(0.8·0.5) − 0.9·P·0.5/0.5) / 36 = P·1.6/36 = 2.861629 kWh/m³
         A = 10000·1000/24/20 = 20833.33 m²
         capital = 1000·10000·0.1 = 1e6 USD/y; membranes = 30·20833.33·0.2
         = 125000 USD/y; V = 10000·365·0.9 = 3.285e6 m³/y
         LCOW = 1.125e6/3.285e6 + 2.861629·0.07 = 0.342466 + 0.200314
              = 0.542780 USD/m³                                            */
    ro_config_t cfg = s_defaults ();
    double out[RO_NOUTPUTS];
    cr_assert_eq (ro_evaluate (&cfg, 35, 0.5, out), RO_OK);
    s_assert_close (out[RO_OUT_OSMOTIC_PRESSURE_FEED], 29.693321740246404, 1e-13, "pi_feed");
    s_assert_close (out[RO_OUT_OSMOTIC_PRESSURE_BRINE], 59.38664348049281, 1e-13, "pi_brine");
    s_assert_close (out[RO_OUT_OPERATING_PRESSURE], 64.38664348049281, 1e-13, "pressure");
    s_assert_close (out[RO_OUT_SPECIFIC_ENERGY], 64.38664348049281 * 1.6 / 36, 1e-13, "sec");
    s_assert_close (out[RO_OUT_SPECIFIC_ENERGY], 2.861628599133014, 1e-13, "sec");
    s_assert_close (out[RO_OUT_MEMBRANE_AREA], 1e7 / 24 / 20, 1e-15, "area");
    s_assert_close (out[RO_OUT_LCOW], 0.5427797553639685, 1e-13, "lcow");
}

Test (physics, energy_rises_with_recovery_for_seawater)
{
    /* With the default ERD, seawater's specific energy has its minimum near
       r = 0.36 and rises from there to the pressure limit (r ≈ 0.61).      */
    ro_config_t cfg = s_defaults ();
    double prev = 0, out[RO_NOUTPUTS];
    for (int i = 0; i <= 21; i++) {
        double r = 0.40 + 0.01 * i;
        cr_assert_eq (ro_evaluate (&cfg, 35, r, out), RO_OK, "r = %g", r);
        cr_assert_gt (out[RO_OUT_SPECIFIC_ENERGY], prev, "r = %g", r);
        cr_assert_gt (out[RO_OUT_LCOW], 0);
        prev = out[RO_OUT_SPECIFIC_ENERGY];
    }
}

Test (physics, ideal_plant_needs_the_brine_osmotic_pressure)
{
    /* Perfect pump and ERD, no margin: SEC = P·(1 − (1 − r))/r = P = π_brine
       (in bar·m³/m³ = 1/36 kWh/m³), the thermodynamic least work of a single
       stage, which rises monotonically with recovery.                      */
    ro_config_t cfg = s_defaults ();
    s_set (&cfg, "pump_efficiency", "1");
    s_set (&cfg, "erd_efficiency", "1");
    s_set (&cfg, "pressure_margin_bar", "0");
    s_set (&cfg, "max_pressure_bar", "1e6");
    double prev = 0, out[RO_NOUTPUTS];
    for (int i = 1; i <= 19; i++) {
        double r = 0.05 * i;
        cr_assert_eq (ro_evaluate (&cfg, 1, r, out), RO_OK, "r = %g", r);
        s_assert_close (out[RO_OUT_SPECIFIC_ENERGY] * 36, out[RO_OUT_OSMOTIC_PRESSURE_BRINE],
                        1e-12, "ideal SEC");
        cr_assert_gt (out[RO_OUT_SPECIFIC_ENERGY], prev, "r = %g", r);
        prev = out[RO_OUT_SPECIFIC_ENERGY];
    }
}

Test (physics, without_erd_the_optimum_recovery_is_one_half)
{
    /* No ERD, perfect pump, no margin: SEC ∝ π_feed / (r (1 − r)), symmetric
       about r = 1/2 where it is least (4 π_feed).                           */
    ro_config_t cfg = s_defaults ();
    s_set (&cfg, "pump_efficiency", "1");
    s_set (&cfg, "erd_efficiency", "0");
    s_set (&cfg, "pressure_margin_bar", "0");
    s_set (&cfg, "max_pressure_bar", "1e6");
    double half[RO_NOUTPUTS], lo[RO_NOUTPUTS], hi[RO_NOUTPUTS];
    cr_assert_eq (ro_evaluate (&cfg, 10, 0.5, half), RO_OK);
    s_assert_close (half[RO_OUT_SPECIFIC_ENERGY] * 36, 4 * half[RO_OUT_OSMOTIC_PRESSURE_FEED],
                    1e-12, "SEC at r = 1/2");
    for (int i = 1; i <= 8; i++) {
        double d = 0.05 * i;
        cr_assert_eq (ro_evaluate (&cfg, 10, 0.5 - d, lo), RO_OK);
        cr_assert_eq (ro_evaluate (&cfg, 10, 0.5 + d, hi), RO_OK);
        s_assert_close (lo[RO_OUT_SPECIFIC_ENERGY], hi[RO_OUT_SPECIFIC_ENERGY], 1e-12,
                        "symmetry");
        cr_assert_gt (lo[RO_OUT_SPECIFIC_ENERGY], half[RO_OUT_SPECIFIC_ENERGY]);
    }
}

Test (physics, erd_and_pump_efficiency_save_energy)
{
    ro_config_t with = s_defaults (), without = s_defaults (), better_pump = s_defaults ();
    s_set (&without, "erd_efficiency", "0");
    s_set (&better_pump, "pump_efficiency", "0.9");
    double a[RO_NOUTPUTS], b[RO_NOUTPUTS], c[RO_NOUTPUTS];
    cr_assert_eq (ro_evaluate (&with, 35, 0.45, a), RO_OK);
    cr_assert_eq (ro_evaluate (&without, 35, 0.45, b), RO_OK);
    cr_assert_eq (ro_evaluate (&better_pump, 35, 0.45, c), RO_OK);
    cr_assert_lt (a[RO_OUT_SPECIFIC_ENERGY], b[RO_OUT_SPECIFIC_ENERGY]);
    cr_assert_lt (a[RO_OUT_LCOW], b[RO_OUT_LCOW]);
    cr_assert_lt (c[RO_OUT_SPECIFIC_ENERGY], a[RO_OUT_SPECIFIC_ENERGY]);
    /* no ERD: SEC = P / (η r) / 36 */
    s_assert_close (b[RO_OUT_SPECIFIC_ENERGY],
                    b[RO_OUT_OPERATING_PRESSURE] / (0.8 * 0.45) / 36, 1e-14, "SEC without ERD");
    /* pressures do not depend on the machines */
    cr_assert_eq (a[RO_OUT_OPERATING_PRESSURE], b[RO_OUT_OPERATING_PRESSURE]);
}

Test (physics, area_and_cost_terms)
{
    ro_config_t cfg = s_defaults ();
    double out[RO_NOUTPUTS];
    s_set (&cfg, "flux_lmh", "10");
    cr_assert_eq (ro_evaluate (&cfg, 35, 0.5, out), RO_OK);
    s_assert_close (out[RO_OUT_MEMBRANE_AREA], 2 * 1e7 / 24 / 20, 1e-15, "area at half flux");
    /* free electricity: LCOW is the capital and membrane terms alone */
    cfg = s_defaults ();
    s_set (&cfg, "electricity_price", "0");
    cr_assert_eq (ro_evaluate (&cfg, 35, 0.5, out), RO_OK);
    s_assert_close (out[RO_OUT_LCOW], (1e6 + 30 * (1e7 / 24 / 20) * 0.2) / 3.285e6, 1e-14,
                    "LCOW without energy");
    /* free plant: LCOW is the energy cost alone */
    cfg = s_defaults ();
    s_set (&cfg, "capex_per_m3d", "0");
    s_set (&cfg, "membrane_cost", "0");
    cr_assert_eq (ro_evaluate (&cfg, 35, 0.5, out), RO_OK);
    s_assert_close (out[RO_OUT_LCOW], out[RO_OUT_SPECIFIC_ENERGY] * 0.07, 1e-15,
                    "LCOW = energy cost");
    /* salt raises the cost */
    double fresh[RO_NOUTPUTS];
    cfg = s_defaults ();
    cr_assert_eq (ro_evaluate (&cfg, 5, 0.5, fresh), RO_OK);
    cr_assert_eq (ro_evaluate (&cfg, 35, 0.5, out), RO_OK);
    cr_assert_lt (fresh[RO_OUT_LCOW], out[RO_OUT_LCOW]);
}

/* ---- rows that fail ---------------------------------------------------- */

Test (rows, infeasible_rows_fail)
{
    ro_config_t cfg = s_defaults ();
    double out[RO_NOUTPUTS];
    /* 45 g/L at 0.7: π_brine = 127.3 bar, P = 132.3 > 82.7 bar */
    cr_assert_eq (ro_evaluate (&cfg, 45, 0.7, out), RO_EINFEASIBLE);
    s_assert_close (out[RO_OUT_OPERATING_PRESSURE], 132.2570931724846, 1e-13, "pressure");
    cr_assert (isnan (out[RO_OUT_SPECIFIC_ENERGY]) && isnan (out[RO_OUT_LCOW]));
    /* seawater: feasible at 0.61, not at 0.62 (P = 29.69/0.38 + 5 = 83.1 bar) */
    cr_assert_eq (ro_evaluate (&cfg, 35, 0.61, out), RO_OK);
    cr_assert_eq (ro_evaluate (&cfg, 35, 0.62, out), RO_EINFEASIBLE);
    /* a stronger plant makes it feasible */
    s_set (&cfg, "max_pressure_bar", "150");
    cr_assert_eq (ro_evaluate (&cfg, 45, 0.7, out), RO_OK);
}

Test (rows, out_of_range_rows_fail_without_crashing)
{
    ro_config_t cfg = s_defaults ();
    double out[RO_NOUTPUTS];
    const double bad_feed[] = {0, -0.0, -1, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad_feed / sizeof bad_feed[0]; i++) {
        cr_assert_eq (ro_evaluate (&cfg, bad_feed[i], 0.5, out), RO_EFEED, "feed %g", bad_feed[i]);
        for (int k = 0; k < RO_NOUTPUTS; k++)
            cr_assert (isnan (out[k]));
    }
    const double bad_recovery[] = {0, 1, -0.1, 1.1, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad_recovery / sizeof bad_recovery[0]; i++)
        cr_assert_eq (ro_evaluate (&cfg, 35, bad_recovery[i], out), RO_ERECOVERY, "recovery %g",
                      bad_recovery[i]);
    /* tiny and huge but legal rows */
    cr_assert_eq (ro_evaluate (&cfg, 1e-300, 1e-300, out), RO_OK);
    cr_assert_eq (ro_evaluate (&cfg, 1e300, 0.5, out), RO_EINFEASIBLE);
    cr_assert_eq (ro_evaluate (&cfg, 35, 0.9999999999, out), RO_EINFEASIBLE);
    cr_assert_str_neq (ro_status_str (RO_EINFEASIBLE), ro_status_str (RO_OK));
}

/* ---- build arguments --------------------------------------------------- */

Test (config, defaults)
{
    ro_config_t cfg = s_defaults ();
    cr_assert_eq (cfg.temperature_c, 25);
    cr_assert_eq (cfg.pump_efficiency, 0.8);
    cr_assert_eq (cfg.erd_efficiency, 0.9);
    cr_assert_eq (cfg.electricity_price, 0.07);
    cr_assert_eq (cfg.flux_lmh, 20);
    cr_assert_eq (cfg.membrane_cost, 30);
    cr_assert_eq (cfg.membrane_replacement_rate, 0.2);
    cr_assert_eq (cfg.plant_capacity_m3d, 10000);
    cr_assert_eq (cfg.capex_per_m3d, 1000);
    cr_assert_eq (cfg.capital_recovery_factor, 0.1);
    cr_assert_eq (cfg.utilization, 0.9);
    cr_assert_eq (cfg.max_pressure_bar, 82.7);
    cr_assert_eq (cfg.pressure_margin_bar, 5);
    cr_assert_eq (ro_config_key_count (), 13);
    cr_assert_null (ro_config_key_name (13));
    for (size_t k = 0; k < ro_config_key_count (); k++) {
        cr_assert_not_null (ro_config_key_name (k));
        cr_assert_not_null (ro_config_key_help (k));
    }
}

static const struct {
    const char *key, *text;
} s_bad_args[] = {
    {"pump_efficiency", "1.5"},
    {"pump_efficiency", "0"},
    {"erd_efficiency", "-0.1"},
    {"erd_efficiency", "1.01"},
    {"temperature_c", "nan"},
    {"temperature_c", "150"},
    {"flux_lmh", "abc"},
    {"flux_lmh", ""},
    {"flux_lmh", "20x"},
    {"flux_lmh", " 20"},
    {"flux_lmh", "0"},
    {"flux_lmh", "inf"},
    {"membrane_cost", "-1"},
    {"plant_capacity_m3d", "1e999"},
    {"utilization", "0"},
    {"utilization", "1.0001"},
    {"capital_recovery_factor", "2"},
    {"max_pressure_bar", "-5"},
    {"pressure_margin_bar", "-1"},
    {"electricity_price", "-0.01"},
    {"membrane_replacement_rate", "3"},
};

Test (config, bad_values_refused_with_a_message)
{
    for (size_t i = 0; i < sizeof s_bad_args / sizeof s_bad_args[0]; i++) {
        ro_config_t cfg = s_defaults (), before = cfg;
        char err[256] = "";
        cr_assert_neq (ro_config_set (&cfg, s_bad_args[i].key, s_bad_args[i].text, err, sizeof err),
                       0, "%s=%s accepted", s_bad_args[i].key, s_bad_args[i].text);
        cr_assert (strstr (err, s_bad_args[i].key), "message '%s' does not name %s", err,
                   s_bad_args[i].key);
        cr_assert_eq (memcmp (&cfg, &before, sizeof cfg), 0, "cfg changed by a refused value");
    }
    ro_config_t cfg = s_defaults ();
    char err[512] = "";
    cr_assert_neq (ro_config_set (&cfg, "eletricity_price", "0.1", err, sizeof err), 0);
    cr_assert (strstr (err, "unknown") && strstr (err, "electricity_price"), "%s", err);
    cr_assert_neq (ro_config_set (&cfg, NULL, "1", NULL, 0), 0);
    cr_assert_neq (ro_config_set (&cfg, "flux_lmh", NULL, err, sizeof err), 0);
    cr_assert_neq (ro_config_set (&cfg, "flux_lmh", "x", err, 1), 0); /* tiny buffer */
    cr_assert_eq (err[0], '\0');
}

Test (config, edge_values_accepted)
{
    ro_config_t cfg = s_defaults ();
    s_set (&cfg, "erd_efficiency", "0");
    s_set (&cfg, "erd_efficiency", "1");
    s_set (&cfg, "pump_efficiency", "1");
    s_set (&cfg, "temperature_c", "0");
    s_set (&cfg, "temperature_c", "1e1");
    s_set (&cfg, "capital_recovery_factor", "0");
    s_set (&cfg, "electricity_price", "0.0");
    s_set (&cfg, "max_pressure_bar", "120");
    cr_assert_eq (cfg.temperature_c, 10);
    cr_assert_eq (cfg.max_pressure_bar, 120);
}

/* ---- the plugin, through dlopen ------------------------------------------ */

typedef struct {
    void *dl;
    int (*abi_version) (void);
    pm_model_build_fn build;
    pm_model_output_names_fn output_names;
    pm_model_execute_fn execute;
    pm_model_destroy_fn destroy;
} s_plugin_t;

/* The plugin's symbol for name under the ABI's default prefix. */
static void *
s_sym (void *dl, const char *name)
{
    char symbol[128];
    snprintf (symbol, sizeof symbol, "%s%s", PM_MODEL_DEFAULT_PREFIX, name);
    void *p = dlsym (dl, symbol);
    cr_assert_not_null (p, "%s: %s", symbol, dlerror ());
    return p;
}

static s_plugin_t
s_plugin_open (void)
{
    s_plugin_t p;
    p.dl = dlopen (RO_MODEL_PATH, RTLD_NOW | RTLD_LOCAL);
    cr_assert_not_null (p.dl, "dlopen %s: %s", RO_MODEL_PATH, dlerror ());
    /* POSIX casts from void * to function pointers, through memcpy. */
    void *sym = s_sym (p.dl, "abi_version");
    memcpy (&p.abi_version, &sym, sizeof sym);
    sym = s_sym (p.dl, "build");
    memcpy (&p.build, &sym, sizeof sym);
    sym = s_sym (p.dl, "output_names");
    memcpy (&p.output_names, &sym, sizeof sym);
    sym = s_sym (p.dl, "execute");
    memcpy (&p.execute, &sym, sizeof sym);
    sym = s_sym (p.dl, "destroy");
    memcpy (&p.destroy, &sym, sizeof sym);
    return p;
}

static void
s_plugin_close (s_plugin_t *p)
{
    dlclose (p->dl);
}

/* Builds the plugin from "key=value" strings (NULL-terminated list). */
static void *
s_plugin_build (s_plugin_t *p, const char *const *kv, char *err, size_t err_size)
{
    const char *keys[16], *values[16];
    char copies[16][64];
    size_t n = 0;
    for (; kv && kv[n]; n++) {
        cr_assert_lt (n, 16);
        snprintf (copies[n], sizeof copies[n], "%s", kv[n]);
        char *eq = strchr (copies[n], '=');
        cr_assert_not_null (eq);
        *eq = '\0';
        keys[n] = copies[n];
        values[n] = eq + 1;
    }
    pm_model_args_t args = {n, keys, values};
    return p->build (&args, err, err_size);
}

Test (plugin, abi_names_and_default_rows)
{
    s_plugin_t p = s_plugin_open ();
    cr_assert_eq (p.abi_version (), PM_MODEL_ABI_VERSION);
    char err[256] = "";
    void *state = p.build (NULL, err, sizeof err);
    cr_assert_not_null (state, "%s", err);
    const char *const *names = NULL;
    cr_assert_eq (p.output_names (state, &names), RO_NOUTPUTS);
    const char *expect[] = {"osmotic_pressure_feed_bar", "osmotic_pressure_brine_bar",
                            "operating_pressure_bar",    "specific_energy_kwh_m3",
                            "membrane_area_m2",          "lcow_usd_m3"};
    for (int k = 0; k < RO_NOUTPUTS; k++)
        cr_assert_str_eq (names[k], expect[k]);

    ro_config_t cfg = s_defaults ();
    for (int i = 0; i < 9; i++)
        for (int j = 0; j < 5; j++) {
            double row[2] = {5 + 5 * i, 0.3 + 0.1 * j}, got[RO_NOUTPUTS], want[RO_NOUTPUTS];
            int rc = p.execute (state, row, 2, got, RO_NOUTPUTS);
            ro_status_t status = ro_evaluate (&cfg, row[0], row[1], want);
            cr_assert_eq (rc, (int) status, "row %g %g", row[0], row[1]);
            for (int k = 0; k < RO_NOUTPUTS; k++)
                cr_assert (rc != 0 ? isnan (got[k]) : s_same_bits (got[k], want[k]),
                           "row %g %g output %d", row[0], row[1], k);
        }
    p.destroy (state);
    s_plugin_close (&p);
}

Test (plugin, build_arguments_apply)
{
    s_plugin_t p = s_plugin_open ();
    char err[256] = "";
    const char *kv[] = {"temperature_c=35", "erd_efficiency=0", "max_pressure_bar=120", NULL};
    void *state = s_plugin_build (&p, kv, err, sizeof err);
    cr_assert_not_null (state, "%s", err);
    ro_config_t cfg = s_defaults ();
    s_set (&cfg, "temperature_c", "35");
    s_set (&cfg, "erd_efficiency", "0");
    s_set (&cfg, "max_pressure_bar", "120");
    double row[2] = {45, 0.6}, got[RO_NOUTPUTS], want[RO_NOUTPUTS];
    cr_assert_eq (p.execute (state, row, 2, got, RO_NOUTPUTS), 0);
    cr_assert_eq (ro_evaluate (&cfg, 45, 0.6, want), RO_OK);
    for (int k = 0; k < RO_NOUTPUTS; k++)
        cr_assert (s_same_bits (got[k], want[k]), "output %d", k);
    s_assert_close (got[RO_OUT_OSMOTIC_PRESSURE_FEED],
                    ro_osmotic_pressure_bar (45, 25) * 308.15 / 298.15, 1e-14, "pi at 35 C");
    p.destroy (state);
    s_plugin_close (&p);
}

Test (plugin, build_refuses_bad_arguments)
{
    s_plugin_t p = s_plugin_open ();
    for (size_t i = 0; i < sizeof s_bad_args / sizeof s_bad_args[0]; i++) {
        char kv0[128], err[256] = "";
        snprintf (kv0, sizeof kv0, "%s=%s", s_bad_args[i].key, s_bad_args[i].text);
        const char *kv[] = {"capex_per_m3d=900", kv0, NULL};
        cr_assert_null (s_plugin_build (&p, kv, err, sizeof err), "%s accepted", kv0);
        cr_assert (strstr (err, s_bad_args[i].key), "message '%s' for %s", err, kv0);
    }
    char err[512] = "";
    const char *typo[] = {"flux_lmh=15", "pump_eficiency=0.9", NULL};
    cr_assert_null (s_plugin_build (&p, typo, err, sizeof err));
    cr_assert (strstr (err, "pump_eficiency") && strstr (err, "unknown"), "%s", err);
    const char *twice[] = {"flux_lmh=15", "temperature_c=20", "flux_lmh=16", NULL};
    cr_assert_null (s_plugin_build (&p, twice, err, sizeof err));
    cr_assert (strstr (err, "flux_lmh") && strstr (err, "twice"), "%s", err);
    /* a NULL key, and no room for a message, still fail cleanly */
    const char *keys[] = {NULL}, *values[] = {"1"};
    pm_model_args_t args = {1, keys, values};
    cr_assert_null (p.build (&args, NULL, 0));
    s_plugin_close (&p);
}

Test (plugin, bad_rows_fail_with_nan_outputs)
{
    s_plugin_t p = s_plugin_open ();
    void *state = p.build (NULL, NULL, 0);
    cr_assert_not_null (state);
    double out[RO_NOUTPUTS + 1];
    const double rows[][2] = {{45, 0.7}, {35, 0}, {35, 1}, {0, 0.5}, {-3, 0.5},
                              {NAN, 0.5}, {35, NAN}, {INFINITY, 0.5}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        cr_assert_neq (p.execute (state, rows[i], 2, out, RO_NOUTPUTS), 0, "row %zu", i);
        for (int k = 0; k < RO_NOUTPUTS; k++)
            cr_assert (isnan (out[k]), "row %zu output %d", i, k);
    }
    const double good[3] = {35, 0.5, 1};
    cr_assert_eq (p.execute (state, good, 2, out, RO_NOUTPUTS), 0);
    cr_assert_neq (p.execute (state, good, 1, out, RO_NOUTPUTS), 0, "too few parameters");
    cr_assert_neq (p.execute (state, good, 3, out, RO_NOUTPUTS), 0, "too many parameters");
    cr_assert_neq (p.execute (state, good, 2, out, RO_NOUTPUTS - 1), 0, "too few outputs");
    cr_assert_neq (p.execute (state, good, 2, out, RO_NOUTPUTS + 1), 0, "too many outputs");
    cr_assert_neq (p.execute (state, NULL, 2, out, RO_NOUTPUTS), 0);
    cr_assert_neq (p.execute (state, good, 2, NULL, RO_NOUTPUTS), 0);
    cr_assert_neq (p.execute (NULL, good, 2, out, RO_NOUTPUTS), 0);
    p.destroy (state);
    p.destroy (NULL);
    s_plugin_close (&p);
}

/* ---- ro-sim ------------------------------------------------------------- */

/* Runs ro-sim with args (shell words, already quoted), stderr discarded;
   its stdout into out.  Returns its exit status, or -1.                    */
static int
s_ro_sim (const char *args, char *out, size_t out_size)
{
    char command[1024];
    snprintf (command, sizeof command, "'%s' %s 2>/dev/null", RO_SIM_PATH, args);
    FILE *pipe = popen (command, "r");
    cr_assert_not_null (pipe, "popen %s", command);
    size_t used = fread (out, 1, out_size - 1, pipe);
    out[used] = '\0';
    int status = pclose (pipe);
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

/* Value of name in ro-sim's output (name=value lines, or JSON "name": value). */
static bool
s_find_value (const char *text, const char *name, bool json, double *value)
{
    char key[128];
    snprintf (key, sizeof key, json ? "\"%s\": " : "%s=", name);
    const char *at = strstr (text, key);
    if (!at || (!json && at != text && at[-1] != '\n'))
        return false;
    char *end = NULL;
    *value = strtod (at + strlen (key), &end);
    return end != at + strlen (key) && (json ? (*end == ',' || *end == '}') : *end == '\n');
}

/* Every row of the README's sweep, plus some outside it, under each set of
   build arguments: ro-sim and the plugin must agree on success and on every
   bit of every output.                                                    */
Test (ro_sim, bit_identical_to_the_plugin, .timeout = 50)
{
    s_plugin_t p = s_plugin_open ();
    const char *configs[][5] = {
        {NULL},
        {"temperature_c=31.7", "erd_efficiency=0", "flux_lmh=13.3", "electricity_price=0.123",
         NULL},
        {"pump_efficiency=0.85", "max_pressure_bar=120", "pressure_margin_bar=7.5",
         "utilization=0.95", NULL},
    };
    for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
        char err[256] = "";
        void *state = s_plugin_build (&p, configs[c], err, sizeof err);
        cr_assert_not_null (state, "%s", err);
        char build_args[512] = "";
        for (size_t a = 0; configs[c][a]; a++) {
            size_t used = strlen (build_args);
            const char *eq = strchr (configs[c][a], '=');
            snprintf (build_args + used, sizeof build_args - used, " --%.*s %s",
                      (int) (eq - configs[c][a]), configs[c][a], eq + 1);
        }
        int evaluated = 0;
        for (int i = 0; i < 10; i++)
            for (int j = 0; j < 6; j++) {
                /* linspace(5, 45, 9) x linspace(0.3, 0.7, 5), and then a
                   column and a row of awkward values (0.1 is inexact). */
                double row[2] = {i < 9 ? 5 + (45.0 - 5) * i / 8 : 0.1 * 377,
                                 j < 5 ? 0.3 + (0.7 - 0.3) * j / 4 : 0.1 * 3};
                double got[RO_NOUTPUTS];
                int rc = p.execute (state, row, 2, got, RO_NOUTPUTS);
                char args[768], out[2048];
                snprintf (args, sizeof args, "--feed %.17g --recovery %.17g%s", row[0], row[1],
                          build_args);
                int code = s_ro_sim (args, out, sizeof out);
                cr_assert_eq (code, rc == 0 ? 0 : 1, "ro-sim %s: exit %d, plugin %d", args, code,
                              rc);
                if (rc != 0)
                    continue;
                evaluated++;
                const char *const *names = NULL;
                p.output_names (state, &names);
                for (int k = 0; k < RO_NOUTPUTS; k++) {
                    double v;
                    cr_assert (s_find_value (out, names[k], false, &v), "%s missing in:\n%s",
                               names[k], out);
                    cr_assert (s_same_bits (v, got[k]), "ro-sim %s: %s = %.17g, plugin %.17g",
                               args, names[k], v, got[k]);
                }
            }
        cr_assert_gt (evaluated, 20, "config %zu: too few feasible rows", c);
        p.destroy (state);
    }
    s_plugin_close (&p);
}

Test (ro_sim, json_output)
{
    char out[2048];
    cr_assert_eq (s_ro_sim ("--feed 35 --recovery 0.5 --json", out, sizeof out), 0);
    cr_assert_eq (out[0], '{', "%s", out);
    cr_assert_not_null (strstr (out, "}\n"), "%s", out);
    ro_config_t cfg = s_defaults ();
    double want[RO_NOUTPUTS];
    cr_assert_eq (ro_evaluate (&cfg, 35, 0.5, want), RO_OK);
    for (int k = 0; k < RO_NOUTPUTS; k++) {
        double v;
        cr_assert (s_find_value (out, ro_output_names ()[k], true, &v), "%s", out);
        cr_assert (s_same_bits (v, want[k]), "%s", ro_output_names ()[k]);
    }
    /* --KEY=VALUE works like --KEY VALUE */
    char other[2048];
    cr_assert_eq (s_ro_sim ("--feed=35 --recovery=0.5 --json --erd_efficiency=0", out, sizeof out),
                  0);
    cr_assert_eq (s_ro_sim ("--json --feed_salinity 35 --recovery 0.5 --erd_efficiency 0", other,
                            sizeof other),
                  0);
    cr_assert_str_eq (out, other);
}

Test (ro_sim, exit_status)
{
    char out[8192];
    cr_assert_eq (s_ro_sim ("--feed 35 --recovery 0.5", out, sizeof out), 0);
    /* rows that fail: 1, nothing on stdout */
    const char *failing[] = {"--feed 45 --recovery 0.7", "--feed 35 --recovery 1",
                             "--feed -35 --recovery 0.5", "--feed nan --recovery 0.5",
                             "--feed 35 --recovery 0"};
    for (size_t i = 0; i < sizeof failing / sizeof failing[0]; i++) {
        cr_assert_eq (s_ro_sim (failing[i], out, sizeof out), 1, "%s", failing[i]);
        cr_assert_str_eq (out, "", "%s", failing[i]);
    }
    cr_assert_eq (s_ro_sim ("--feed 45 --recovery 0.7 --max_pressure_bar 150", out, sizeof out), 0);
    /* bad arguments: 2 */
    const char *bad[] = {"",
                         "--feed 35",
                         "--recovery 0.5",
                         "--feed abc --recovery 0.5",
                         "--feed 35 --recovery 0.5x",
                         "--feed 35 --recovery",
                         "--feed 35 --recovery 0.5 --pump_efficiency 2",
                         "--feed 35 --recovery 0.5 --pump_eficiency 0.9",
                         "--feed 35 --recovery 0.5 --flux_lmh ''",
                         "--feed 35 --recovery 0.5 extra",
                         "--feed 35 --recovery 0.5 --"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq (s_ro_sim (bad[i], out, sizeof out), 2, "'%s'", bad[i]);
        cr_assert_str_eq (out, "", "%s", bad[i]);
    }
    /* --help: usage on stdout, naming every build argument */
    cr_assert_eq (s_ro_sim ("--help", out, sizeof out), 0);
    cr_assert_not_null (strstr (out, "usage: ro-sim"));
    for (size_t k = 0; k < ro_config_key_count (); k++)
        cr_assert_not_null (strstr (out, ro_config_key_name (k)), "%s", ro_config_key_name (k));
}

/* ---- the plugin in a sweep, through libpm --------------------------------- */

typedef struct {
    pm_model_t *model;
    double params[2 * 45];
    int checked;
} s_sweep_t;

static int
s_sweep_rank (pm_manager_t *pm, void *arg)
{
    s_sweep_t *sweep = arg;
    int rc = pm_scatter (pm, sweep->model, sweep->params, 45, 2);
    cr_assert_eq (rc, 0, "pm_scatter: %s: %s", pm_strerror (rc), pm_last_error (pm));
    pm_results_t *results = NULL;
    rc = pm_gather (pm, &results);
    cr_assert_eq (rc, 0, "pm_gather: %s: %s", pm_strerror (rc), pm_last_error (pm));
    cr_assert_eq (pm_results_rows (results), 45);
    cr_assert_eq (pm_results_output_count (results), RO_NOUTPUTS);
    for (size_t k = 0; k < RO_NOUTPUTS; k++)
        cr_assert_str_eq (pm_results_output_name (results, k), ro_output_names ()[k]);
    ro_config_t cfg = s_defaults ();
    s_set (&cfg, "temperature_c", "20");
    for (size_t e = 0; e < pm_results_count (results); e++) {
        const pm_local_results_t *local = pm_results_get (results, e);
        for (size_t i = 0; i < local->rows; i++) {
            const double *row = local->parameters + 2 * i;
            const double *got = local->outputs + RO_NOUTPUTS * i;
            double want[RO_NOUTPUTS];
            ro_status_t status = ro_evaluate (&cfg, row[0], row[1], want);
            cr_assert_eq (local->success[i], status == RO_OK, "row %g %g", row[0], row[1]);
            for (int k = 0; k < RO_NOUTPUTS; k++)
                cr_assert (status != RO_OK ? isnan (got[k]) : s_same_bits (got[k], want[k]),
                           "row %g %g output %d", row[0], row[1], k);
            sweep->checked++;
        }
    }
    pm_results_destroy (&results);
    return 0;
}

Test (sweep, serial_sweep_through_pm_model_load)
{
    char err[512] = "";
    s_sweep_t sweep = {0};
    /* the spec without ":prefix": the plugin uses the default prefix */
    sweep.model = pm_model_load (RO_MODEL_PATH, err, sizeof err);
    cr_assert_not_null (sweep.model, "pm_model_load: %s", err);
    cr_assert_eq (pm_model_set_arg (sweep.model, "temperature_c", "20"), 0);
    for (int i = 0; i < 9; i++)
        for (int j = 0; j < 5; j++) {
            sweep.params[2 * (5 * i + j)] = 5 + 5 * i;
            sweep.params[2 * (5 * i + j) + 1] = 0.3 + 0.1 * j;
        }
    pm_manager_t *pm = pm_create_parallel_manager ("Serial", 1, NULL);
    cr_assert_not_null (pm, "%s", pm_last_error (NULL));
    cr_assert_eq (pm_run (pm, s_sweep_rank, &sweep), 0);
    pm_destroy (&pm);
    cr_assert_eq (sweep.checked, 45);

    /* a bad build argument makes the sweep fail, not crash */
    cr_assert_eq (pm_model_set_arg (sweep.model, "pump_efficiency", "7"), 0);
    pm = pm_create_parallel_manager ("Serial", 1, NULL);
    cr_assert_not_null (pm);
    cr_assert_eq (pm_scatter (pm, sweep.model, sweep.params, 45, 2), PM_EINVAL);
    pm_destroy (&pm);
    pm_model_destroy (&sweep.model);
}
