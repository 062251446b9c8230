/*  pm.h — the public API of libpm, the parallel manager.

    One SPMD program runs unchanged serially, on a thread pool, on forked local
    processes, under pm-run, or against a standalone pmd.  Names follow the
    seed's ParallelManager method for method (see README.md).

    Every int-returning call returns 0 or a negative PM_E* code; the manager
    keeps a human-readable message for the last failure (pm_last_error).      */
#ifndef PM_H_INCLUDED
#define PM_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PM_VERSION_MAJOR 0
#define PM_VERSION_MINOR 1
#define PM_VERSION_PATCH 0

/* ---- errors ------------------------------------------------------------ */
typedef enum {
    PM_OK = 0,
    PM_EINVAL = -1,       /* bad argument (or mismatched sizes across ranks)   */
    PM_ENOMEM = -2,       /* out of memory                                     */
    PM_EPEERLOST = -3,    /* a member of the group (or the coordinator) died   */
    PM_EMISMATCH = -4,    /* ranks called different collectives at one step    */
    PM_ETIMEDOUT = -5,    /* a deadline passed (connect, join)                 */
    PM_EPROTO = -6,       /* malformed or unsupported protocol message         */
    PM_ENOTSUP = -7,      /* backend or feature not available in this build   */
    PM_ECONNECT = -8,     /* cannot reach or bind the coordinator endpoint     */
    PM_ESYS = -9,         /* an operating-system call failed (errno in message)*/
    PM_EREJECTED = -10,   /* the coordinator refused to admit this rank        */
    PM_ECLOSED = -11,     /* the manager was already shut down                 */
} pm_error_t;
#define PM_ERROR_COUNT 12 /* number of codes, PM_OK included                  */

/* Static English text for a code; never NULL (unknown codes get a text too). */
const char *pm_strerror (int code);

/* ---- data types and reduction ops -------------------------------------- */
typedef enum {
    PM_INT32 = 0,
    PM_INT64 = 1,
    PM_FLOAT32 = 2,
    PM_FLOAT64 = 3,
    PM_BYTE = 4, /* opaque bytes; reduced as uint8 with wrap-around */
} pm_dtype_t;
#define PM_DTYPE_COUNT 5

typedef enum { PM_SUM = 0, PM_MIN = 1, PM_MAX = 2, PM_PROD = 3 } pm_op_t;
#define PM_OP_COUNT 4

size_t pm_dtype_size (pm_dtype_t t); /* 0 for an unknown dtype */
const char *pm_dtype_name (pm_dtype_t t);
const char *pm_op_name (pm_op_t op);

/* ---- the manager -------------------------------------------------------- */
typedef struct pm_manager pm_manager_t;

typedef struct {
    /* Coordinator endpoint, e.g. "tcp://head:5555".  NULL = $PM_ENDPOINT, and
       when that is unset too the coordinator is embedded (no daemon needed). */
    const char *endpoint;
    /* Group name shared by the ranks of one run on a standalone pmd.
       NULL = $PM_GROUP, else a unique generated name.                        */
    const char *group;
    /* Milliseconds to wait for the coordinator's WELCOME
       (0 = $PM_CONNECT_TIMEOUT_MS, else 30000).                             */
    int connect_timeout_ms;
} pm_options_t;

/* Rank function run by pm_run on every rank. */
typedef int (*pm_rank_fn) (pm_manager_t *pm, void *arg);

/* Create the manager, like MPI_Init: call it early in main.
   parallel_back_end: "Serial", "ConcurrentFutures" (alias
   "concurrent.futures"), "MultiProcessing", "MPI", "RayIo" (alias "ray"),
   case-insensitive.  number_of_subprocesses <= 1 → serial.  An unknown
   keyword runs serially with a logged warning.  A rank in the environment
   (PM_RANK/PM_SIZE from pm-run) wins over the keyword; an MPI launch wins
   over both.  For MultiProcessing the forked children return from here too,
   each with its own rank.  Returns NULL on failure: pm_last_error (NULL)
   tells why, pm_last_error_code (NULL) gives the PM_E* code.               */
pm_manager_t *pm_create_parallel_manager (const char *parallel_back_end,
                                          int number_of_subprocesses,
                                          const pm_options_t *options);

/* Run fn (rank_pm, arg) on every rank: in place on process backends (the
   return value is this rank's), on a pool of threads for ConcurrentFutures
   (the return value is 0 if every rank returned 0, else the first non-zero
   value in rank order).  Negative PM_E* if the run could not start.        */
int pm_run (pm_manager_t *pm, pm_rank_fn fn, void *arg);

/* Leave the group and free the manager; nulls *pm_p.  In the parent of a
   MultiProcessing run it also waits for the forked ranks to exit.          */
void pm_destroy (pm_manager_t **pm_p);

bool pm_is_root_process (pm_manager_t *pm);
int pm_get_rank (pm_manager_t *pm);
int pm_number_of_worker_processes (pm_manager_t *pm);
/* Name of the backend actually in use: "Serial", "ConcurrentFutures",
   "MultiProcessing", or "pm-run" (a rank that found its rank in the
   environment).                                                            */
const char *pm_backend_name (pm_manager_t *pm);

/* Human-readable text for the last failure on this manager (NULL manager:
   the calling thread's last pm_create_parallel_manager failure).          */
const char *pm_last_error (const pm_manager_t *pm);
int pm_last_error_code (const pm_manager_t *pm);

/* ---- the seed's collectives (root is rank 0) ---------------------------- */
int pm_sync_with_peers (pm_manager_t *pm); /* barrier */
/* Broadcast count elements of buf from root, in place. */
int pm_sync_array_with_peers (pm_manager_t *pm, void *buf, size_t count, pm_dtype_t t);
/* Broadcast an opaque blob from root.  On root *data and *size are read; on the
   other ranks they receive a new malloc'd copy (free it with free); what
   *data held before is not touched.                                        */
int pm_sync_bytes_with_peers (pm_manager_t *pm, void **data, size_t *size);
/* Allgather of blobs of any size, in rank order. */
typedef struct pm_blobs pm_blobs_t;
int pm_combine_data_with_peers (pm_manager_t *pm, const void *data, size_t size,
                                pm_blobs_t **all);
size_t pm_blobs_count (const pm_blobs_t *blobs);
const void *pm_blobs_data (const pm_blobs_t *blobs, size_t index, size_t *size);
void pm_blobs_destroy (pm_blobs_t **blobs_p);
/* Gatherv to root.  Root passes recv and counts (one per rank, in elements);
   other ranks may pass NULL for both.  If counts[r] differs from what rank r
   sent, every rank gets PM_EINVAL with the message "Gathering arrays to root
   cannot be done with mismatched sizes".                                    */
int pm_gather_arrays_to_root (pm_manager_t *pm, const void *send, size_t count, pm_dtype_t t,
                              void *recv, const size_t *counts);
/* Allreduce with PM_SUM. */
int pm_sum_values_and_sync (pm_manager_t *pm, const void *send, void *recv, size_t count,
                            pm_dtype_t t);

/* ---- general forms: any root, every op and dtype ------------------------ */
int pm_barrier (pm_manager_t *pm);
int pm_bcast (pm_manager_t *pm, void *buf, size_t count, pm_dtype_t t, int root);
/* Root sends counts[r] elements to rank r, in rank order from send; every
   rank receives recv_count elements into recv (must equal counts[rank]).   */
int pm_scatterv (pm_manager_t *pm, const void *send, const size_t *counts, pm_dtype_t t,
                 void *recv, size_t recv_count, int root);
/* Root receives counts[r] elements from rank r into recv, in rank order.   */
int pm_gatherv (pm_manager_t *pm, const void *send, size_t count, pm_dtype_t t, void *recv,
                const size_t *counts, int root);
/* Every rank receives counts[r] elements from every rank r (allgatherv);
   every rank passes the same counts.                                        */
int pm_allgather (pm_manager_t *pm, const void *send, size_t count, pm_dtype_t t, void *recv,
                  const size_t *counts);
/* Element-wise reduction of count elements; recv matters on root only.
   Floating-point results are combined in rank order, so they are the same
   on every backend and every run.                                           */
int pm_reduce (pm_manager_t *pm, const void *send, void *recv, size_t count, pm_dtype_t t,
               pm_op_t op, int root);
int pm_allreduce (pm_manager_t *pm, const void *send, void *recv, size_t count, pm_dtype_t t,
                  pm_op_t op);

/* ---- sweeps: run a model over parameter rows ---------------------------- */
#include "pm_model.h"

typedef enum {
    PM_SCHEDULE_STATIC = 0,  /* numpy.array_split of the rows by rank (the seed's MPI split) */
    PM_SCHEDULE_DYNAMIC = 1, /* ranks pull chunks from the coordinator; survives lost ranks */
} pm_schedule_t;
/* Schedule of later pm_scatter calls on this manager.  Default: dynamic
   where a coordinator exists (every backend but Serial), static otherwise. */
int pm_set_schedule (pm_manager_t *pm, pm_schedule_t schedule);

/* Root passes all_parameters (rows x cols doubles, row-major); the other
   ranks' arguments are ignored (pass NULL, 0, 0).  Every rank builds the
   model once, evaluates its share of the rows (static: numpy.array_split;
   dynamic: chunks it pulls until none are left), and keeps its LocalResults
   for pm_gather.  A row whose execute fails gets NaN outputs
   and success 0; it never fails the sweep.  Static schedule: PM_EINVAL on
   every rank if the model cannot be built on some rank, or if root passed
   no parameters with rows > 0.  Dynamic schedule: a rank that cannot build
   the model (or fails later) returns PM_EINVAL (or the failure) itself and
   hands back its rows; the others finish the sweep without it.  If root's
   call is bad, every rank's pm_scatter returns with no rows.             */
int pm_scatter (pm_manager_t *pm, const pm_model_t *model, const double *all_parameters,
                size_t rows, size_t cols);

/* Progress of a sweep, on root: called with each chunk of rows [first,
   first + count) as it is finished, with its outputs (count x noutputs) and
   success flags; rows_done of rows_total are finished so far.  Dynamic
   schedule: every rank's chunks, in the order they finish, while root's
   pm_scatter runs.  Static schedule: root's own rows only.               */
typedef void (*pm_progress_fn) (void *arg, size_t first, size_t count, size_t noutputs,
                                const double *outputs, const unsigned char *success,
                                size_t rows_done, size_t rows_total);
/* Set on the manager before pm_run (ConcurrentFutures: on the launcher).
   NULL fn: none. */
int pm_set_progress (pm_manager_t *pm, pm_progress_fn fn, void *arg);

/* One rank's results: the seed's LocalResults, plus each row's position in
   the sweep and its success flag.                                        */
typedef struct {
    int process_number;          /* rank that evaluated these rows */
    size_t rows, cols, noutputs;
    const size_t *sample_index;  /* rows entries: row numbers in all_parameters */
    const double *parameters;    /* rows x cols */
    const double *outputs;       /* rows x noutputs; NaN where a row failed */
    const unsigned char *success; /* rows entries: 1 evaluated, 0 failed */
} pm_local_results_t;

typedef struct pm_results pm_results_t;
/* Root gets every rank's LocalResults, sorted so that their concatenation
   is sample order; the other ranks get their own.  Static schedule: a
   collective.  Dynamic schedule: root waits until every row is in (rows of
   a rank that died were redone by others; pm_results_lost_* name it) and
   the others return at once; entries are runs of consecutive rows done by
   one rank.                                                              */
int pm_gather (pm_manager_t *pm, pm_results_t **results);
size_t pm_results_count (const pm_results_t *results);
const pm_local_results_t *pm_results_get (const pm_results_t *results, size_t index);
/* Rows over all entries. */
size_t pm_results_rows (const pm_results_t *results);
size_t pm_results_output_count (const pm_results_t *results);
const char *pm_results_output_name (const pm_results_t *results, size_t index);
/* Ranks that were lost with unfinished rows during a dynamic sweep. */
size_t pm_results_lost_count (const pm_results_t *results);
int pm_results_lost_rank (const pm_results_t *results, size_t index);
void pm_results_destroy (pm_results_t **results_p);

/* ---- logging ------------------------------------------------------------ */
typedef enum {
    PM_LOG_ERROR = 0,
    PM_LOG_WARN = 1,
    PM_LOG_INFO = 2,
    PM_LOG_DEBUG = 3,
    PM_LOG_TRACE = 4
} pm_log_level_t;
/* Where libpm's log lines go.  Default: stderr at the level named by
   $PM_LOG_LEVEL (error|warn|info|debug|trace; default warn).               */
typedef void (*pm_log_fn) (pm_log_level_t level, const char *id, const char *line, void *arg);
void pm_log_set_handler (pm_log_fn fn, void *arg);
void pm_log_set_level (pm_log_level_t level);

#ifdef __cplusplus
}
#endif
#endif
