/*  pm_blobs.c — a rank-ordered list of byte blobs (allgather of blobs).  */
#include "pm_blobs.h"

#include <stdlib.h>
#include <string.h>

struct pm_blobs {
    size_t count;  /* one blob per rank */
    void **data;   /* malloc'd copies (a 0-byte blob still has a 1-byte buffer) */
    size_t *sizes;
};

pm_blobs_t *
pm_blobs_new (size_t count)
{
    pm_blobs_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->count = count;
    self->data = calloc (count ? count : 1, sizeof *self->data);
    self->sizes = calloc (count ? count : 1, sizeof *self->sizes);
    if (!self->data || !self->sizes) {
        pm_blobs_destroy (&self);
        return NULL;
    }
    return self;
}

bool
pm_blobs_set (pm_blobs_t *self, size_t index, const void *data, size_t size)
{
    if (index >= self->count)
        return false;
    void *copy = malloc (size ? size : 1);
    if (!copy)
        return false;
    if (size)
        memcpy (copy, data, size);
    free (self->data[index]);
    self->data[index] = copy;
    self->sizes[index] = size;
    return true;
}

size_t
pm_blobs_count (const pm_blobs_t *self)
{
    return self ? self->count : 0;
}

const void *
pm_blobs_data (const pm_blobs_t *self, size_t index, size_t *size)
{
    if (!self || index >= self->count) {
        if (size)
            *size = 0;
        return NULL;
    }
    if (size)
        *size = self->sizes[index];
    return self->data[index];
}

void
pm_blobs_destroy (pm_blobs_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_blobs_t *self = *self_p;
    if (self->data)
        for (size_t i = 0; i < self->count; i++)
            free (self->data[i]);
    free (self->data);
    free (self->sizes);
    free (self);
    *self_p = NULL;
}
