/*  pm_sweep_internal.h — a rank's sweep state and the results object,
    shared by pm_sweep.c (static schedule, results) and pm_sweep_dynamic.c. */
#ifndef PM_SWEEP_INTERNAL_H_INCLUDED
#define PM_SWEEP_INTERNAL_H_INCLUDED

#include "pm.h"

/* This rank's part of the last sweep. */
struct pm_sweep_local {
    pm_schedule_t schedule;  /* how it was run */
    uint64_t sweep_id;       /* dynamic: the coordinator's sweep id */
    size_t rows, cap, cols, noutputs;
    size_t *sample_index;    /* rows entries */
    double *parameters;      /* rows x cols */
    double *outputs;         /* rows x noutputs */
    unsigned char *success;
    char **output_names;     /* noutputs names (every rank keeps them) */
    double *all_parameters;  /* dynamic, root: a copy of every row, for the gather */
    size_t all_rows;
    int build_error;         /* dynamic: this rank could not build the model */
};

/* One LocalResults entry with the arrays it owns. */
typedef struct {
    pm_local_results_t view; /* what callers see; points into the arrays below */
    size_t *sample_index;
    double *parameters, *outputs;
    unsigned char *success;
} pm_results_entry_t;

struct pm_results {
    pm_results_entry_t *entries;
    size_t count;
    size_t noutputs;
    char **output_names;
    int *lost;               /* ranks lost during a dynamic sweep */
    size_t nlost;
};

/* A sweep_local for rows x cols with noutputs named outputs; NULL if out of memory. */
struct pm_sweep_local *pm_sweep_local_new (size_t rows, size_t cols, size_t noutputs,
                                           const char *const *names);
void pm_sweep_local_destroy (struct pm_sweep_local **local_p);
/* Grow to hold at least rows rows; false if out of memory. */
bool pm_sweep_local_reserve (struct pm_sweep_local *local, size_t rows);
/* Evaluate row i of local with state: NaN outputs and success 0 on failure. */
void pm_sweep_execute_row (const pm_model_t *model, void *state, struct pm_sweep_local *local,
                           size_t i);
/* Build the model on this rank: 0, or PM_EINVAL with err set. */
int pm_sweep_build (const pm_model_t *model, void **state, size_t *noutputs,
                    const char *const **names, char *err, size_t err_size);
/* An empty results object with local's output names; NULL if out of memory. */
pm_results_t *pm_results_new (size_t capacity, const struct pm_sweep_local *local);
/* Entry from rows [begin, end) of local (copied); false if out of memory. */
bool pm_results_add_rows (pm_results_t *results, int process_number,
                          const struct pm_sweep_local *local, size_t begin, size_t end);

int pm_scatter_dynamic (pm_manager_t *pm, const pm_model_t *model, const double *all_parameters,
                        size_t rows, size_t cols);
int pm_gather_dynamic (pm_manager_t *pm, pm_results_t **results);

#endif
