/*  pm_dtype.c — element sizes and the element-wise reduction kernels.  */
#include "pm_dtype.h"

#include <stdint.h>
#include <string.h>

bool
pm_dtype_valid (int t)
{
    return t >= 0 && t < PM_DTYPE_COUNT;
}

bool
pm_op_valid (int op)
{
    return op >= 0 && op < PM_OP_COUNT;
}

size_t
pm_dtype_size (pm_dtype_t t)
{
    switch (t) {
    case PM_INT32: return 4;
    case PM_INT64: return 8;
    case PM_FLOAT32: return 4;
    case PM_FLOAT64: return 8;
    case PM_BYTE: return 1;
    }
    return 0;
}

const char *
pm_dtype_name (pm_dtype_t t)
{
    static const char *names[] = {"int32", "int64", "float32", "float64", "byte"};
    return pm_dtype_valid ((int) t) ? names[t] : "unknown";
}

const char *
pm_op_name (pm_op_t op)
{
    static const char *names[] = {"sum", "min", "max", "prod"};
    return pm_op_valid ((int) op) ? names[op] : "unknown";
}

bool
pm_size_mul (size_t count, size_t size, size_t *bytes)
{
    if (size && count > SIZE_MAX / size)
        return false;
    *bytes = count * size;
    return true;
}

/* Integer sums and products wrap like unsigned arithmetic (no UB on overflow).
   Elements are moved with memcpy: frames received from ZeroMQ carry no
   alignment promise.                                                     */
#define PM_KERNEL(NAME, T, UT)                                                             \
    static void NAME (void *acc_v, const void *in_v, size_t n, pm_op_t op)                 \
    {                                                                                      \
        char *acc = acc_v;                                                                 \
        const char *in = in_v;                                                             \
        for (size_t i = 0; i < n; i++) {                                                   \
            T a, b;                                                                        \
            memcpy (&a, acc + i * sizeof (T), sizeof (T));                                 \
            memcpy (&b, in + i * sizeof (T), sizeof (T));                                  \
            switch (op) {                                                                  \
            case PM_SUM: a = (T) ((UT) a + (UT) b); break;                                 \
            case PM_PROD: a = (T) ((UT) a * (UT) b); break;                                \
            case PM_MIN: a = b < a ? b : a; break;                                         \
            case PM_MAX: a = b > a ? b : a; break;                                         \
            }                                                                              \
            memcpy (acc + i * sizeof (T), &a, sizeof (T));                                 \
        }                                                                                  \
    }

PM_KERNEL (s_reduce_i32, int32_t, uint32_t)
PM_KERNEL (s_reduce_i64, int64_t, uint64_t)
PM_KERNEL (s_reduce_f32, float, float)
PM_KERNEL (s_reduce_f64, double, double)
PM_KERNEL (s_reduce_u8, uint8_t, uint8_t)

void
pm_reduce_into (void *acc, const void *in, size_t count, pm_dtype_t t, pm_op_t op)
{
    switch (t) {
    case PM_INT32: s_reduce_i32 (acc, in, count, op); break;
    case PM_INT64: s_reduce_i64 (acc, in, count, op); break;
    case PM_FLOAT32: s_reduce_f32 (acc, in, count, op); break;
    case PM_FLOAT64: s_reduce_f64 (acc, in, count, op); break;
    case PM_BYTE: s_reduce_u8 (acc, in, count, op); break;
    }
}
