/*  pm_clock.h — monotonic milliseconds for deadlines and heartbeats.  */
#ifndef PM_CLOCK_H_INCLUDED
#define PM_CLOCK_H_INCLUDED
#include <stdint.h>
int64_t pm_clock_ms (void);
int64_t pm_clock_us (void);
#endif
