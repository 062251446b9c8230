/*  pm_fault.h — fault-injection points for tests (as SQLite has): a call
    site asks whether it should fail now.  $PM_FAULT names one point and a
    rank, "point:rank" (e.g. "sweep_work:1"); unset, nothing ever fails.  */
#ifndef PM_FAULT_H_INCLUDED
#define PM_FAULT_H_INCLUDED
#include <stdbool.h>
bool pm_fault (const char *point, int rank);
#endif
