/*  pm_fault.c — fault-injection points (see pm_fault.h).  */
#include "pm_fault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
pm_fault (const char *point, int rank)
{
    const char *spec = getenv ("PM_FAULT");
    if (!spec || !*spec)
        return false;
    char expected[128];
    snprintf (expected, sizeof expected, "%s:%d", point, rank);
    return strcmp (spec, expected) == 0;
}
