/*  pm_mpi_loader.c — find and load the MPI module (libpm_mpi.so) when a
    program runs under mpirun.  It sits next to libpm.so; $PM_MPI_MODULE
    names another path.  Loaded RTLD_GLOBAL: Open MPI's own plugins need
    libmpi's symbols visible.                                            */
#include <dlfcn.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pm_env.h"
#include "pm_manager_internal.h"
#include "pm_mpi.h"

static int s_open_managers; /* MPI is finalised when the last one goes */

int
pm_mpi_attach (pm_manager_t *pm)
{
    char path[4096];
    const char *configured = pm_env_str ("PM_MPI_MODULE");
    if (configured)
        snprintf (path, sizeof path, "%s", configured);
    else {
        Dl_info info;
        if (!dladdr ((void *) pm_create_parallel_manager, &info) || !info.dli_fname)
            return pm_fail (pm, PM_ENOTSUP, "cannot tell where libpm is, to find %s",
                            PM_MPI_MODULE_NAME);
        char self[4096];
        snprintf (self, sizeof self, "%s", info.dli_fname);
        snprintf (path, sizeof path, "%s/%s", dirname (self), PM_MPI_MODULE_NAME);
    }
    void *handle = dlopen (path, RTLD_NOW | RTLD_GLOBAL);
    if (!handle) {
        const char *why = dlerror ();
        return pm_fail (pm, PM_ENOTSUP,
                        "this program runs under an MPI launcher, but the MPI backend %s cannot "
                        "be loaded (%s): build libpm where libopenmpi-dev is installed",
                        path, why ? why : "unknown");
    }
    pm_mpi_module_fn module = (pm_mpi_module_fn) dlsym (handle, PM_MPI_SYMBOL);
    const pm_mpi_ops_t *ops = module ? module () : NULL;
    if (!ops || ops->abi != PM_MPI_ABI) {
        dlclose (handle);
        return pm_fail (pm, PM_ENOTSUP, "%s is not an MPI module of this libpm", path);
    }
    char err[256] = "";
    int rank = 0, size = 0;
    int rc = ops->init (&rank, &size, err, sizeof err);
    if (rc)
        return pm_fail (pm, rc, "%s", err);
    pm->mpi = ops;
    pm->rank = rank;
    pm->size = size;
    s_open_managers++;
    return 0;
}

void
pm_mpi_detach (pm_manager_t *pm)
{
    if (!pm->mpi)
        return;
    if (--s_open_managers == 0)
        pm->mpi->finalize (); /* the module stays loaded: MPI is not re-initialisable */
    pm->mpi = NULL;
}
