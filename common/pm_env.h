/*  pm_env.h — strict parsing of numbers from the environment and argv.  */
#ifndef PM_ENV_H_INCLUDED
#define PM_ENV_H_INCLUDED
#include <stdbool.h>
#include <stdint.h>

/* Parse a whole decimal integer in [min, max]; false on anything else. */
bool pm_parse_int64 (const char *text, int64_t min, int64_t max, int64_t *value);
/* Read $name as an integer in [min, max].  Unset → *value = fallback, 0.
   Set but malformed → -1 and a message in err (the caller reports it).   */
int pm_env_int64 (const char *name, int64_t min, int64_t max, int64_t fallback, int64_t *value,
                  char *err, size_t err_size);
/* $name if set and non-empty, else NULL. */
const char *pm_env_str (const char *name);
/* Directory for ipc socket files: $TMPDIR, or /tmp when unset or too long
   (an ipc path must fit in sun_path, 108 bytes).                        */
const char *pm_ipc_dir (void);

#endif
