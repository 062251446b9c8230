/*  ro_cost.h — a levelised-cost-of-water model of a single-stage reverse-
    osmosis (RO) desalination plant.  Pure functions, no I/O, no allocation.

    One copy of these equations serves two front ends that must agree to the
    last bit: the pm model plugin (ro_model.c → libpm_ro_model.so) and the
    command `ro-sim` (ro_sim.c) for pm-sweep's --command mode.  The equations,
    units and defaults are described in examples/README.md.

    A row is (feed salinity in g/L, recovery as a fraction); a configuration
    (ro_config_t) holds the plant's build arguments.                        */
#ifndef RO_COST_H_INCLUDED
#define RO_COST_H_INCLUDED

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Physical constants of the model. */
#define RO_NACL_MOLAR_MASS 58.44   /* g/mol */
#define RO_VANT_HOFF_NACL 2.0      /* ions per formula unit of NaCl */
#define RO_GAS_CONSTANT 0.083145   /* L·bar/(mol·K) */
#define RO_KELVIN_OFFSET 273.15    /* K at 0 °C */

/* Build arguments of a plant.  Every member is a build argument of the
   same name (key=value for the plugin, --key value for ro-sim).          */
typedef struct {
    double temperature_c;             /* feed temperature, °C */
    double pump_efficiency;           /* high-pressure pump (+ motor) efficiency, (0, 1] */
    double erd_efficiency;            /* energy recovery device efficiency, [0, 1]; 0 = none */
    double electricity_price;         /* USD/kWh */
    double flux_lmh;                  /* average permeate flux, L/(m²·h) */
    double membrane_cost;             /* USD per m² of membrane */
    double membrane_replacement_rate; /* fraction of the membrane area replaced per year */
    double plant_capacity_m3d;        /* permeate (product water) capacity, m³/day */
    double capex_per_m3d;             /* plant capital cost, USD per m³/day of capacity */
    double capital_recovery_factor;   /* annualises capex, 1/year */
    double utilization;               /* fraction of the year the plant produces */
    double max_pressure_bar;          /* highest operating pressure the plant tolerates */
    double pressure_margin_bar;       /* net driving pressure above the brine's osmotic pressure */
} ro_config_t;

/* The outputs of one row, in this order (ro_output_names). */
typedef enum {
    RO_OUT_OSMOTIC_PRESSURE_FEED = 0, /* bar */
    RO_OUT_OSMOTIC_PRESSURE_BRINE,    /* bar */
    RO_OUT_OPERATING_PRESSURE,        /* bar */
    RO_OUT_SPECIFIC_ENERGY,           /* kWh per m³ of permeate */
    RO_OUT_MEMBRANE_AREA,             /* m² */
    RO_OUT_LCOW,                      /* USD per m³ of permeate */
    RO_NOUTPUTS
} ro_output_t;

/* Why a row has no result. */
typedef enum {
    RO_OK = 0,
    RO_EFEED = 1,       /* salinity not finite or ≤ 0 */
    RO_ERECOVERY = 2,   /* recovery not in the open interval (0, 1) */
    RO_EINFEASIBLE = 3, /* operating pressure above max_pressure_bar */
    RO_ENONFINITE = 4,  /* a result overflowed (only with extreme build arguments) */
} ro_status_t;

/* The defaults of every build argument (see README.md). */
void ro_config_defaults (ro_config_t *cfg);

/* Sets build argument key from its text.  Returns 0, or -1 with a message
   in err (when err_size > 0) if key is unknown, the text is not a whole
   finite number, or the value is out of the argument's range; cfg is then
   unchanged.                                                              */
int ro_config_set (ro_config_t *cfg, const char *key, const char *text, char *err,
                   size_t err_size);

/* The build arguments: count, and the name and unit/meaning of the
   index-th one (NULL past the end); its range as text, e.g. "(0, 1]", into
   buf (empty past the end).                                               */
size_t ro_config_key_count (void);
const char *ro_config_key_name (size_t index);
const char *ro_config_key_help (size_t index);
void ro_config_key_range (size_t index, char *buf, size_t size);
/* Value of the index-th build argument in cfg (NaN past the end). */
double ro_config_key_value (const ro_config_t *cfg, size_t index);

/* The names of the outputs: an array of RO_NOUTPUTS static strings. */
const char *const *ro_output_names (void);

/* van 't Hoff osmotic pressure (bar) of a NaCl solution of salinity g/L at
   temperature_c °C: π = i·c·R·T.                                          */
double ro_osmotic_pressure_bar (double salinity_g_l, double temperature_c);

/* Evaluates one row.  On RO_OK every out[k] is finite.  On RO_EINFEASIBLE
   the three pressures are filled (so a caller can say by how much) and the
   rest are NaN; on the other errors every out[k] is NaN.  Never crashes,
   whatever the row.                                                       */
ro_status_t ro_evaluate (const ro_config_t *cfg, double feed_salinity_g_l, double recovery,
                         double out[RO_NOUTPUTS]);

/* Text of a status. */
const char *ro_status_str (ro_status_t status);

#ifdef __cplusplus
}
#endif
#endif
