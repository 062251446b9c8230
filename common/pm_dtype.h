/*  pm_dtype.h — element sizes and the reduction kernels.  */
#ifndef PM_DTYPE_H_INCLUDED
#define PM_DTYPE_H_INCLUDED

#include "pm.h"

bool pm_dtype_valid (int t);
bool pm_op_valid (int op);
/* acc[i] = acc[i] OP in[i] for count elements of dtype t. */
void pm_reduce_into (void *acc, const void *in, size_t count, pm_dtype_t t, pm_op_t op);
/* count * size without overflow; false if it would overflow. */
bool pm_size_mul (size_t count, size_t size, size_t *bytes);

#endif
