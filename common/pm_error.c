/*  pm_error.c — the text of every PM_E* code.  */
#include "pm.h"

const char *
pm_strerror (int code)
{
    switch (code) {
    case PM_OK: return "success";
    case PM_EINVAL: return "invalid argument";
    case PM_ENOMEM: return "out of memory";
    case PM_EPEERLOST: return "a peer of the group or the coordinator was lost";
    case PM_EMISMATCH: return "ranks called different collectives at the same step";
    case PM_ETIMEDOUT: return "timed out";
    case PM_EPROTO: return "protocol error";
    case PM_ENOTSUP: return "not supported by this build";
    case PM_ECONNECT: return "cannot reach or bind the coordinator endpoint";
    case PM_ESYS: return "system call failed";
    case PM_EREJECTED: return "the coordinator refused this rank";
    case PM_ECLOSED: return "the manager is shut down";
    default: return "unknown error code";
    }
}
