/*  pm_blobs.h — building the result of pm_combine_data_with_peers.  */
#ifndef PM_BLOBS_H_INCLUDED
#define PM_BLOBS_H_INCLUDED
#include "pm.h"
/* A set of count empty blobs; NULL if out of memory. */
pm_blobs_t *pm_blobs_new (size_t count);
/* Copy size bytes into blob index; false if out of memory. */
bool pm_blobs_set (pm_blobs_t *blobs, size_t index, const void *data, size_t size);
#endif
