/*  ro_cost.c — the reverse-osmosis cost model: equations and build
    arguments.  Pure functions, no I/O; see ro_cost.h for the contract and
    examples/README.md for the model.

    This file is compiled once (the CMake object library ro_cost) and linked
    into both the plugin and ro-sim, with -ffp-contract=off, so the two give
    the same doubles bit for bit.                                          */
#include "ro_cost.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Unit conversions. */
#define S_PA_PER_BAR 1e5          /* Pa = J/m³ per bar */
#define S_J_PER_KWH 3.6e6         /* J per kWh */
#define S_L_PER_M3 1000.0         /* L per m³ */
#define S_HOURS_PER_DAY 24.0      /* h per day */
#define S_DAYS_PER_YEAR 365.0     /* days per year */

/* One build argument: its member of ro_config_t, default and range. */
typedef struct {
    const char *name;   /* key, same as the member's name */
    size_t offset;      /* offsetof the member in ro_config_t */
    double fallback;    /* default value */
    double lo, hi;      /* range ends (hi may be INFINITY: no upper end) */
    bool lo_open;       /* true: value must be > lo; false: ≥ lo */
    bool hi_open;       /* true: value must be < hi; false: ≤ hi */
    const char *help;   /* unit and meaning, for usage texts */
} s_key_t;

#define S_KEY(member, def, lo, lo_open, hi, hi_open, help)                                     \
    { #member, offsetof (ro_config_t, member), (def), (lo), (hi), (lo_open), (hi_open), (help) }

static const s_key_t s_keys[] = {
    S_KEY (temperature_c, 25.0, 0.0, false, 100.0, false, "feed temperature, degC"),
    S_KEY (pump_efficiency, 0.8, 0.0, true, 1.0, false, "high-pressure pump efficiency"),
    S_KEY (erd_efficiency, 0.9, 0.0, false, 1.0, false,
           "energy recovery device efficiency (0 = no ERD)"),
    S_KEY (electricity_price, 0.07, 0.0, false, INFINITY, true, "USD/kWh"),
    S_KEY (flux_lmh, 20.0, 0.0, true, INFINITY, true, "average permeate flux, L/(m2 h)"),
    S_KEY (membrane_cost, 30.0, 0.0, false, INFINITY, true, "USD per m2 of membrane"),
    S_KEY (membrane_replacement_rate, 0.2, 0.0, false, 1.0, false,
           "fraction of membrane area replaced per year"),
    S_KEY (plant_capacity_m3d, 10000.0, 0.0, true, INFINITY, true,
           "permeate capacity, m3/day"),
    S_KEY (capex_per_m3d, 1000.0, 0.0, false, INFINITY, true,
           "plant capital cost, USD per m3/day of capacity"),
    S_KEY (capital_recovery_factor, 0.1, 0.0, false, 1.0, false,
           "annualises the capital cost, 1/year"),
    S_KEY (utilization, 0.9, 0.0, true, 1.0, false, "fraction of the year in production"),
    S_KEY (max_pressure_bar, 82.7, 0.0, true, INFINITY, true,
           "highest allowed operating pressure, bar (82.7 = 1200 psi)"),
    S_KEY (pressure_margin_bar, 5.0, 0.0, false, INFINITY, true,
           "operating pressure above the brine's osmotic pressure, bar"),
};
#define S_NKEYS (sizeof s_keys / sizeof s_keys[0])

static const char *const s_output_names[RO_NOUTPUTS] = {
    "osmotic_pressure_feed_bar", "osmotic_pressure_brine_bar", "operating_pressure_bar",
    "specific_energy_kwh_m3",    "membrane_area_m2",           "lcow_usd_m3",
};

static double *
s_member (ro_config_t *cfg, const s_key_t *key)
{
    return (double *) ((char *) cfg + key->offset);
}

static double
s_member_value (const ro_config_t *cfg, const s_key_t *key)
{
    return *(const double *) ((const char *) cfg + key->offset);
}

static void
s_range_text (const s_key_t *key, char *buf, size_t size)
{
    if (isinf (key->hi))
        snprintf (buf, size, "%s %g", key->lo_open ? ">" : ">=", key->lo);
    else
        snprintf (buf, size, "%c%g, %g%c", key->lo_open ? '(' : '[', key->lo, key->hi,
                  key->hi_open ? ')' : ']');
}

void
ro_config_defaults (ro_config_t *cfg)
{
    memset (cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < S_NKEYS; i++)
        *s_member (cfg, &s_keys[i]) = s_keys[i].fallback;
}

int
ro_config_set (ro_config_t *cfg, const char *key, const char *text, char *err, size_t err_size)
{
    const s_key_t *k = NULL;
    for (size_t i = 0; key && i < S_NKEYS; i++)
        if (strcmp (key, s_keys[i].name) == 0)
            k = &s_keys[i];
    if (!k) {
        char known[512] = "";
        size_t used = 0;
        for (size_t i = 0; i < S_NKEYS && used < sizeof known; i++)
            used += (size_t) snprintf (known + used, sizeof known - used, "%s%s",
                                       i ? ", " : "", s_keys[i].name);
        if (err && err_size > 0)
            snprintf (err, err_size, "unknown build argument '%s' (known: %s)",
                      key ? key : "(null)", known);
        return -1;
    }
    char range[64];
    s_range_text (k, range, sizeof range);
    /* A whole number and nothing else: no empty text, no leading blanks
       (strtod would skip them), no trailing characters, no overflow.       */
    if (!text || !*text || strchr (" \t\n\v\f\r", text[0])) {
        if (err && err_size > 0)
            snprintf (err, err_size, "build argument %s: '%s' is not a number (range %s)",
                      k->name, text ? text : "(null)", range);
        return -1;
    }
    char *end = NULL;
    errno = 0;
    double v = strtod (text, &end);
    if (end == text || *end != '\0' || errno == ERANGE || !isfinite (v)) {
        if (err && err_size > 0)
            snprintf (err, err_size, "build argument %s: '%s' is not a finite number (range %s)",
                      k->name, text, range);
        return -1;
    }
    bool low_ok = k->lo_open ? v > k->lo : v >= k->lo;
    bool high_ok = isinf (k->hi) || (k->hi_open ? v < k->hi : v <= k->hi);
    if (!low_ok || !high_ok) {
        if (err && err_size > 0)
            snprintf (err, err_size, "build argument %s: %s is out of range %s", k->name, text,
                      range);
        return -1;
    }
    *s_member (cfg, k) = v;
    return 0;
}

size_t
ro_config_key_count (void)
{
    return S_NKEYS;
}

const char *
ro_config_key_name (size_t index)
{
    return index < S_NKEYS ? s_keys[index].name : NULL;
}

const char *
ro_config_key_help (size_t index)
{
    return index < S_NKEYS ? s_keys[index].help : NULL;
}

void
ro_config_key_range (size_t index, char *buf, size_t size)
{
    if (index < S_NKEYS)
        s_range_text (&s_keys[index], buf, size);
    else if (size > 0)
        buf[0] = '\0';
}

double
ro_config_key_value (const ro_config_t *cfg, size_t index)
{
    return index < S_NKEYS ? s_member_value (cfg, &s_keys[index]) : NAN;
}

const char *const *
ro_output_names (void)
{
    return s_output_names;
}

double
ro_osmotic_pressure_bar (double salinity_g_l, double temperature_c)
{
    /* van 't Hoff: π = i·c·R·T, with i = 2 for NaCl, c in mol/L, R in
       L·bar/(mol·K), T in K.                                               */
    double molarity = salinity_g_l / RO_NACL_MOLAR_MASS;
    double kelvin = temperature_c + RO_KELVIN_OFFSET;
    return RO_VANT_HOFF_NACL * molarity * RO_GAS_CONSTANT * kelvin;
}

ro_status_t
ro_evaluate (const ro_config_t *cfg, double feed, double recovery, double out[RO_NOUTPUTS])
{
    for (int k = 0; k < RO_NOUTPUTS; k++)
        out[k] = NAN;
    if (!isfinite (feed) || !(feed > 0))
        return RO_EFEED;
    if (!(recovery > 0 && recovery < 1))   /* also refuses NaN */
        return RO_ERECOVERY;

    /* Mass balance with complete salt rejection: all the salt of the feed
       leaves in the brine, so c_brine = c_feed / (1 - r).                  */
    double brine = feed / (1 - recovery);
    double pi_feed = ro_osmotic_pressure_bar (feed, cfg->temperature_c);
    double pi_brine = ro_osmotic_pressure_bar (brine, cfg->temperature_c);
    /* The pump must exceed the highest osmotic pressure along the vessel,
       the brine's at its outlet, by a net driving pressure.                */
    double pressure = pi_brine + cfg->pressure_margin_bar;
    out[RO_OUT_OSMOTIC_PRESSURE_FEED] = pi_feed;
    out[RO_OUT_OSMOTIC_PRESSURE_BRINE] = pi_brine;
    out[RO_OUT_OPERATING_PRESSURE] = pressure;
    if (!isfinite (pressure) || pressure > cfg->max_pressure_bar)
        return RO_EINFEASIBLE;

    /* Specific energy per m³ of permeate, in bar·m³/m³ (1 bar = 1e5 J/m³),
       r = recovery, P = operating pressure:
           pump:  1/r m³ of feed raised to P by a pump of efficiency η_pump
                      E_pump = P / (η_pump · r)
           ERD:   (1 - r)/r m³ of brine leave at P; the device returns the
                  share η_erd of that hydraulic energy
                      E_erd  = η_erd · P · (1 - r) / r
           SEC = (E_pump - E_erd) · 1e5 / 3.6e6  kWh/m³
       SEC > 0 always, since η_pump ≤ 1 and η_erd·(1 - r) < 1.             */
    double e_pump = pressure / (cfg->pump_efficiency * recovery);
    double e_erd = cfg->erd_efficiency * pressure * (1 - recovery) / recovery;
    double sec = (e_pump - e_erd) * S_PA_PER_BAR / S_J_PER_KWH;

    /* Membrane area: the permeate flow over the average flux.  In L/h,
       Q = capacity · 1000 / 24; A = Q / J.                                 */
    double permeate_l_h = cfg->plant_capacity_m3d * S_L_PER_M3 / S_HOURS_PER_DAY;
    double area = permeate_l_h / cfg->flux_lmh;

    /* Levelised cost of water, USD per m³ of permeate:
           annual production  V   = capacity · 365 · utilization
           annualised capital     = capex_per_m3d · capacity · CRF
           membrane replacement   = membrane_cost · A · replacement_rate
           LCOW = (capital + membranes) / V + SEC · electricity_price      */
    double annual_m3 = cfg->plant_capacity_m3d * S_DAYS_PER_YEAR * cfg->utilization;
    double capital = cfg->capex_per_m3d * cfg->plant_capacity_m3d * cfg->capital_recovery_factor;
    double membranes = cfg->membrane_cost * area * cfg->membrane_replacement_rate;
    double lcow = (capital + membranes) / annual_m3 + sec * cfg->electricity_price;

    if (!isfinite (sec) || !isfinite (area) || !isfinite (lcow)) {
        /* Only reachable with extreme (but in-range) build arguments. */
        for (int k = 0; k < RO_NOUTPUTS; k++)
            out[k] = NAN;
        return RO_ENONFINITE;
    }
    out[RO_OUT_SPECIFIC_ENERGY] = sec;
    out[RO_OUT_MEMBRANE_AREA] = area;
    out[RO_OUT_LCOW] = lcow;
    return RO_OK;
}

const char *
ro_status_str (ro_status_t status)
{
    switch (status) {
    case RO_OK: return "ok";
    case RO_EFEED: return "feed salinity must be a finite number > 0 g/L";
    case RO_ERECOVERY: return "recovery must be in the open interval (0, 1)";
    case RO_EINFEASIBLE:
        return "infeasible: the required operating pressure exceeds max_pressure_bar";
    case RO_ENONFINITE: return "a result overflowed (extreme build arguments)";
    default: return "unknown status";
    }
}
