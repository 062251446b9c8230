/*  pm_ray.h — the RayIo backend's launch (pm_ray.c).  */
#ifndef PM_RAY_H_INCLUDED
#define PM_RAY_H_INCLUDED
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <czmq.h>

#include "pm_manager_internal.h"
/* Checks Ray is installed, embeds the coordinator on tcp (unless endpoint
   names a pmd), and starts the launcher for ranks 1..size-1.  The endpoint
   the ranks use is copied to first_endpoint.  0 or a PM_E* code.      */
int pm_ray_launch (pm_manager_t *pm, const char *endpoint, char *first_endpoint, size_t size);

/* The pieces, for pm-run --backend ray as well: */
/* The Python that runs the launcher ($PM_PYTHON, else python3). */
const char *pm_ray_python (void);
/* The Jobs API (dashboard) URL the launcher is submitted to: PM_RAY_JOBS_URL,
   else RAY_ADDRESS when it is an http(s):// URL; NULL: run it here.     */
const char *pm_ray_jobs_url (void);
/* Ray importable (or pm-ray-job there, for the Jobs API) and the launcher found (its path into launcher)?  0, or
   PM_ENOTSUP with err saying what to install.                         */
int pm_ray_check (char *launcher, size_t launcher_size, char *err, size_t err_size);
/* Starts the launcher (through pm-ray-job for the Jobs API) for ranks
   ("A..B") of a group of size; after a rank fails, the launcher stops the
   others abort_timeout_ms later (-1: it waits for them).  exit_fd >= 0:
   the launcher writes "exit RANK STATUS" there as each rank ends.  0 or
   errno.                                                                */
int pm_ray_spawn (const char *launcher, const char *ranks, int size, const char *endpoint,
                  const char *group, const char *cwd, int64_t abort_timeout_ms, int exit_fd,
                  char *const program[], pid_t *pid);
/* A pipe for pm_ray_spawn's exit_fd (exit_pipe[1]): close-on-exec, its
   read end non-blocking.  False (and -1s) if it cannot be made.        */
bool pm_ray_exit_pipe (int exit_pipe[2]);
#endif
