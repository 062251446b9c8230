/*  pm_demo.c — one SPMD program that exercises every collective and prints
    what it computed.  Run it unchanged on any backend:
        pm-demo [BACKEND [N]]            (default: MultiProcessing 4)
        pm-run -n 4 -- pm-demo
        PM_ENDPOINT=tcp://127.0.0.1:5555 pm-demo MultiProcessing 4       */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pm.h"

#define CHECK(call)                                                                        \
    do {                                                                                   \
        int rc_ = (call);                                                                  \
        if (rc_ != 0) {                                                                    \
            fprintf (stderr, "rank %d: %s failed: %s (%s)\n", rank, #call, pm_strerror (rc_), \
                     pm_last_error (pm));                                                  \
            return 1;                                                                      \
        }                                                                                  \
    } while (0)

static int
s_rank_main (pm_manager_t *pm, void *arg)
{
    (void) arg;
    int rank = pm_get_rank (pm), n = pm_number_of_worker_processes (pm);
    bool root = pm_is_root_process (pm);
    if (root)
        printf ("pm-demo: backend %s with %d rank(s)\n", pm_backend_name (pm), n);

    /* barrier */
    CHECK (pm_sync_with_peers (pm));

    /* broadcast an array from root: a feed-salinity grid (g/L) */
    double grid[4] = {0};
    if (root)
        for (int i = 0; i < 4; i++)
            grid[i] = 35.0 + 5.0 * i;
    CHECK (pm_sync_array_with_peers (pm, grid, 4, PM_FLOAT64));

    /* broadcast a blob */
    void *blob = root ? (void *) "reverse osmosis" : NULL;
    size_t blob_size = root ? strlen ("reverse osmosis") + 1 : 0;
    CHECK (pm_sync_bytes_with_peers (pm, &blob, &blob_size));

    /* each rank evaluates its share; sum across ranks */
    double local = 0;
    for (int i = rank; i < 4; i += n)
        local += grid[i];
    double total = 0;
    CHECK (pm_sum_values_and_sync (pm, &local, &total, 1, PM_FLOAT64));

    /* gather one value per rank to root */
    int64_t mine = (int64_t) (rank + 1) * (rank + 1);
    int64_t *squares = calloc ((size_t) n, sizeof *squares);
    size_t *counts = calloc ((size_t) n, sizeof *counts);
    for (int r = 0; r < n; r++)
        counts[r] = 1;
    CHECK (pm_gather_arrays_to_root (pm, &mine, 1, PM_INT64, squares, counts));

    /* combine blobs of different sizes from every rank */
    char hello[32];
    snprintf (hello, sizeof hello, "rank %d", rank);
    pm_blobs_t *all = NULL;
    CHECK (pm_combine_data_with_peers (pm, hello, strlen (hello) + 1, &all));

    /* general forms: scatter from the last rank, max-reduce to it */
    int last = n - 1;
    int32_t *parts = NULL;
    if (rank == last) {
        parts = malloc ((size_t) n * sizeof *parts);
        for (int r = 0; r < n; r++)
            parts[r] = 100 + r;
    }
    int32_t part = 0, biggest = 0;
    CHECK (pm_scatterv (pm, parts, counts, PM_INT32, &part, 1, last));
    CHECK (pm_reduce (pm, &part, &biggest, 1, PM_INT32, PM_MAX, last));
    int32_t product_in = rank + 1, product = 0;
    CHECK (pm_allreduce (pm, &product_in, &product, 1, PM_INT32, PM_PROD));

    if (root) {
        printf ("  bcast grid:        %.1f %.1f %.1f %.1f\n", grid[0], grid[1], grid[2], grid[3]);
        printf ("  bcast bytes:       \"%s\"\n", (const char *) blob);
        printf ("  sum over ranks:    %.1f (expected %.1f)\n", total, 35.0 + 40 + 45 + 50);
        printf ("  gather to root:   ");
        for (int r = 0; r < n; r++)
            printf (" %lld", (long long) squares[r]);
        printf ("\n  combine data:     ");
        for (size_t r = 0; r < pm_blobs_count (all); r++)
            printf (" [%s]", (const char *) pm_blobs_data (all, r, NULL));
        printf ("\n  allreduce prod:    %d (= %d!)\n", product, n);
    }
    if (rank == last && n > 1)
        printf ("  rank %d: scatter gave %d, max-reduce gave %d\n", rank, part, biggest);
    if (!root)
        free (blob);
    free (parts);
    free (squares);
    free (counts);
    pm_blobs_destroy (&all);
    CHECK (pm_sync_with_peers (pm));
    return 0;
}

int
main (int argc, char **argv)
{
    const char *backend = argc > 1 ? argv[1] : "MultiProcessing";
    int n = argc > 2 ? atoi (argv[2]) : 4;
    pm_manager_t *pm = pm_create_parallel_manager (backend, n, NULL);
    if (!pm) {
        fprintf (stderr, "pm-demo: %s\n", pm_last_error (NULL));
        return 1;
    }
    int rc = pm_run (pm, s_rank_main, NULL);
    bool root = pm_is_root_process (pm);
    pm_destroy (&pm);
    if (root && rc == 0)
        printf ("pm-demo: ok\n");
    return rc == 0 ? 0 : 1;
}
