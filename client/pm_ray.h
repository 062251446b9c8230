/*  pm_ray.h — the RayIo backend's launch (pm_ray.c).  */
#ifndef PM_RAY_H_INCLUDED
#define PM_RAY_H_INCLUDED
#include <stddef.h>
#include "pm_manager_internal.h"
/* Checks Ray is installed, embeds the coordinator on tcp (unless endpoint
   names a pmd), and starts the launcher for ranks 1..size-1.  The endpoint
   the ranks use is copied to first_endpoint.  0 or a PM_E* code.      */
int pm_ray_launch (pm_manager_t *pm, const char *endpoint, char *first_endpoint, size_t size);
#endif
