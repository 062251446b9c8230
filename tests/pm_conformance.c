/*  pm_conformance.c — SPMD conformance test of every collective of libpm.

    usage: pm-conformance BACKEND N [quick]

    Creates the manager like a user program would (pm_create_parallel_manager
    early in main), pm_run's a rank function that exercises every collective
    for every dtype, every op, every root, with counts including 0 and
    uneven counts, and compares each result with an exact expected value
    computed locally (values are small integers, so every result is exact;
    one section checks that floating-point reductions are combined in rank
    order with values where the order matters).

    Runs unchanged on every backend: Serial, ConcurrentFutures (threads),
    MultiProcessing (forked ranks), under pm-run or with PM_RANK/PM_SIZE/
    PM_ENDPOINT set by hand, and against a standalone pmd (PM_ENDPOINT).

    Every failing check prints one line "pm-conformance FAIL rank R/N ...".
    A final pm_sum_values_and_sync of the failure counts decides every rank's
    exit status; for MultiProcessing each forked rank also reports its
    outcome to the parent through a pipe created before the fork, so a rank
    that crashes is noticed too.  Exit status 0 = all ranks passed.          */
#include "pm.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GUARD 16 /* bytes after every receive buffer that must stay untouched */
#define GUARD_BYTE 0xA5
#define POISON_BYTE 0x5A
#define MAX_FAIL_LINES 40
#define LARGE_COUNT 100000

typedef struct {
    const char *keyword;
    int n_arg;
    int expect_size;
    int expect_rank; /* -1 when not known in advance */
    const char *expect_backend;
    bool quick;
    bool threads;
    atomic_int calls;
} config_t;

typedef struct {
    pm_manager_t *pm;
    const config_t *cfg;
    int rank, n;
    long fails, checks;
} ctx_t;

static const pm_dtype_t DTYPES[] = {PM_INT32, PM_INT64, PM_FLOAT32, PM_FLOAT64, PM_BYTE};
static const pm_op_t OPS[] = {PM_SUM, PM_MIN, PM_MAX, PM_PROD};
#define NDTYPES (sizeof DTYPES / sizeof DTYPES[0])
#define NOPS (sizeof OPS / sizeof OPS[0])

/* ---- reporting ---------------------------------------------------------- */

static void emit (const char *line)
{
    /* one write per line so lines of concurrent ranks do not interleave */
    size_t len = strlen (line);
    while (len > 0) {
        ssize_t w = write (STDERR_FILENO, line, len);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return;
        }
        line += w;
        len -= (size_t) w;
    }
}

static void fail (ctx_t *c, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static void fail (ctx_t *c, const char *fmt, ...)
{
    c->fails++;
    if (c->fails > MAX_FAIL_LINES) {
        if (c->fails == MAX_FAIL_LINES + 1) {
            char line[256];
            snprintf (line, sizeof line,
                      "pm-conformance FAIL rank %d/%d [%s]: (further failures not printed)\n",
                      c->rank, c->n, c->cfg->keyword);
            emit (line);
        }
        return;
    }
    char line[1024];
    int len = snprintf (line, sizeof line, "pm-conformance FAIL rank %d/%d [%s]: ", c->rank,
                        c->n, c->cfg->keyword);
    if (len < 0)
        len = 0;
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (line + len, sizeof line - (size_t) len - 1, fmt, ap);
    va_end (ap);
    size_t l = strlen (line);
    line[l] = '\n';
    line[l + 1] = '\0';
    emit (line);
}

#define CHECK(c, cond, ...)                                                                   \
    do {                                                                                      \
        (c)->checks++;                                                                        \
        if (!(cond))                                                                          \
            fail ((c), __VA_ARGS__);                                                          \
    } while (0)

/* true when rc is PM_OK; otherwise records a failure naming the call */
static bool rc_ok (ctx_t *c, int rc, const char *what)
{
    c->checks++;
    if (rc == PM_OK)
        return true;
    const char *msg = pm_last_error (c->pm);
    fail (c, "%s returned %d (%s), last error: %s", what, rc, pm_strerror (rc),
          msg ? msg : "(null)");
    return false;
}

/* ---- typed helpers (independent of the library) ------------------------ */

static size_t dsize (pm_dtype_t t)
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

static const char *dname (pm_dtype_t t)
{
    switch (t) {
    case PM_INT32: return "int32";
    case PM_INT64: return "int64";
    case PM_FLOAT32: return "float32";
    case PM_FLOAT64: return "float64";
    case PM_BYTE: return "byte";
    }
    return "?";
}

static const char *oname (pm_op_t op)
{
    switch (op) {
    case PM_SUM: return "sum";
    case PM_MIN: return "min";
    case PM_MAX: return "max";
    case PM_PROD: return "prod";
    }
    return "?";
}

static void put_i (void *buf, pm_dtype_t t, size_t i, int64_t v)
{
    switch (t) {
    case PM_INT32: ((int32_t *) buf)[i] = (int32_t) v; break;
    case PM_INT64: ((int64_t *) buf)[i] = v; break;
    case PM_FLOAT32: ((float *) buf)[i] = (float) v; break;
    case PM_FLOAT64: ((double *) buf)[i] = (double) v; break;
    case PM_BYTE: ((uint8_t *) buf)[i] = (uint8_t) (v & 0xff); break;
    }
}

static void put_d (void *buf, pm_dtype_t t, size_t i, double v)
{
    if (t == PM_FLOAT32)
        ((float *) buf)[i] = (float) v;
    else if (t == PM_FLOAT64)
        ((double *) buf)[i] = v;
    else
        put_i (buf, t, i, (int64_t) v);
}

static void fmt_elem (char *out, size_t outsz, const void *buf, pm_dtype_t t, size_t i)
{
    switch (t) {
    case PM_INT32: snprintf (out, outsz, "%d", (int) ((const int32_t *) buf)[i]); break;
    case PM_INT64: snprintf (out, outsz, "%lld", (long long) ((const int64_t *) buf)[i]); break;
    case PM_FLOAT32: snprintf (out, outsz, "%.9g", (double) ((const float *) buf)[i]); break;
    case PM_FLOAT64: snprintf (out, outsz, "%.17g", ((const double *) buf)[i]); break;
    case PM_BYTE: snprintf (out, outsz, "%u", (unsigned) ((const uint8_t *) buf)[i]); break;
    }
}

/* index of the first element that differs, or -1 (floats compared with ==) */
static long first_diff (const void *a, const void *b, size_t count, pm_dtype_t t)
{
    for (size_t i = 0; i < count; i++) {
        bool eq = false;
        switch (t) {
        case PM_INT32: eq = ((const int32_t *) a)[i] == ((const int32_t *) b)[i]; break;
        case PM_INT64: eq = ((const int64_t *) a)[i] == ((const int64_t *) b)[i]; break;
        case PM_FLOAT32: eq = ((const float *) a)[i] == ((const float *) b)[i]; break;
        case PM_FLOAT64: eq = ((const double *) a)[i] == ((const double *) b)[i]; break;
        case PM_BYTE: eq = ((const uint8_t *) a)[i] == ((const uint8_t *) b)[i]; break;
        }
        if (!eq)
            return (long) i;
    }
    return -1;
}

#define REF_REDUCE(T)                                                                         \
    do {                                                                                      \
        T *a_ = (T *) acc;                                                                    \
        const T *s_ = (const T *) src;                                                        \
        for (size_t i_ = 0; i_ < count; i_++) {                                               \
            switch (op) {                                                                     \
            case PM_SUM: a_[i_] = (T) (a_[i_] + s_[i_]); break;                               \
            case PM_MIN: a_[i_] = s_[i_] < a_[i_] ? s_[i_] : a_[i_]; break;                   \
            case PM_MAX: a_[i_] = s_[i_] > a_[i_] ? s_[i_] : a_[i_]; break;                   \
            case PM_PROD: a_[i_] = (T) (a_[i_] * s_[i_]); break;                              \
            }                                                                                 \
        }                                                                                     \
    } while (0)

/* acc = acc op src, element-wise, in the dtype's own arithmetic */
static void ref_reduce (void *acc, const void *src, size_t count, pm_dtype_t t, pm_op_t op)
{
    switch (t) {
    case PM_INT32: REF_REDUCE (int32_t); break;
    case PM_INT64: REF_REDUCE (int64_t); break;
    case PM_FLOAT32: REF_REDUCE (float); break;
    case PM_FLOAT64: REF_REDUCE (double); break;
    case PM_BYTE: REF_REDUCE (uint8_t); break;
    }
}

enum { GEN_ANY = 0, GEN_PROD = 1 };

/* Value of element i contributed by rank, exact in every dtype; sums over
   up to 8 ranks stay exact (int32 < 2^31, float32 < 2^24, float64 < 2^53). */
static int64_t gen (pm_dtype_t t, int kind, int rank, size_t i, int salt)
{
    if (kind == GEN_PROD)
        return 1 + (int64_t) (((size_t) rank * 5 + i + (size_t) salt) % 3);
    uint64_t h = (uint64_t) rank * 131u + (uint64_t) i * 7u + (uint64_t) salt * 13u;
    if (t == PM_BYTE)
        return (int64_t) ((h * 37u + 200u) & 0xffu);
    int64_t v = (int64_t) (h % 2001u) - 1000;
    if (i % 5 == 3) {
        switch (t) {
        case PM_INT32: v *= 100000; break;              /* |v| <= 1e8     */
        case PM_INT64: v *= 10000000000LL; break;       /* beyond 32 bits */
        case PM_FLOAT32: v *= 1024; break;              /* exact in float */
        case PM_FLOAT64: v *= (int64_t) 1 << 30; break; /* exact in double */
        case PM_BYTE: break;
        }
    }
    return v;
}

static void fill (void *buf, pm_dtype_t t, size_t count, int kind, int rank, int salt)
{
    for (size_t i = 0; i < count; i++)
        put_i (buf, t, i, gen (t, kind, rank, i, salt));
}

/* buffer of count elements + GUARD guard bytes; elements poisoned */
static void *alloc_recv (size_t count, pm_dtype_t t)
{
    size_t bytes = count * dsize (t);
    unsigned char *p = malloc (bytes + GUARD);
    if (!p) {
        fprintf (stderr, "pm-conformance: out of memory\n");
        exit (2);
    }
    memset (p, POISON_BYTE, bytes);
    memset (p + bytes, GUARD_BYTE, GUARD);
    return p;
}

static bool guard_ok (const void *buf, size_t count, pm_dtype_t t)
{
    const unsigned char *g = (const unsigned char *) buf + count * dsize (t);
    for (size_t i = 0; i < GUARD; i++)
        if (g[i] != GUARD_BYTE)
            return false;
    return true;
}

/* compare count elements with the expected ones and check the guard */
static void expect_array (ctx_t *c, const char *what, const void *got, const void *want,
                          size_t count, pm_dtype_t t)
{
    c->checks++;
    long d = first_diff (got, want, count, t);
    if (d >= 0) {
        char g[64], w[64];
        fmt_elem (g, sizeof g, got, t, (size_t) d);
        fmt_elem (w, sizeof w, want, t, (size_t) d);
        fail (c, "%s: element %ld of %zu is %s, expected %s", what, d, count, g, w);
    }
    CHECK (c, guard_ok (got, count, t), "%s: wrote past the end of the %zu-element buffer",
           what, count);
}

static size_t sum_counts (const size_t *counts, int n)
{
    size_t s = 0;
    for (int r = 0; r < n; r++)
        s += counts[r];
    return s;
}

/* uneven per-rank counts, some of them 0 (pattern depends on salt) */
static void make_counts (size_t *counts, int n, int salt)
{
    for (int r = 0; r < n; r++)
        counts[r] = (size_t) ((r * 3 + salt) % 4) + (salt == 2 && r == n - 1 ? 5 : 0);
}

/* ---- sections ----------------------------------------------------------- */

static void check_identity (ctx_t *c)
{
    const config_t *cfg = c->cfg;
    CHECK (c, c->n == cfg->expect_size, "pm_number_of_worker_processes is %d, expected %d", c->n,
           cfg->expect_size);
    CHECK (c, c->rank >= 0 && c->rank < cfg->expect_size, "pm_get_rank is %d, not in [0, %d)",
           c->rank, cfg->expect_size);
    if (cfg->expect_rank >= 0)
        CHECK (c, c->rank == cfg->expect_rank, "pm_get_rank is %d, expected %d (PM_RANK)",
               c->rank, cfg->expect_rank);
    CHECK (c, pm_is_root_process (c->pm) == (c->rank == 0),
           "pm_is_root_process is %d for rank %d", (int) pm_is_root_process (c->pm), c->rank);
    const char *b = pm_backend_name (c->pm);
    CHECK (c, b && strcmp (b, cfg->expect_backend) == 0, "pm_backend_name is \"%s\", expected \"%s\"",
           b ? b : "(null)", cfg->expect_backend);

    /* every rank exists exactly once, in order */
    int32_t mine = c->rank;
    size_t *counts = calloc ((size_t) c->n, sizeof *counts);
    int32_t *ranks = alloc_recv ((size_t) c->n, PM_INT32);
    for (int r = 0; r < c->n; r++)
        counts[r] = 1;
    if (rc_ok (c, pm_allgather (c->pm, &mine, 1, PM_INT32, ranks, counts),
               "pm_allgather(ranks)")) {
        for (int r = 0; r < c->n; r++)
            CHECK (c, ranks[r] == r, "allgather of ranks: slot %d holds rank %d", r,
                   (int) ranks[r]);
    }
    free (ranks);
    free (counts);
}

static void check_barriers (ctx_t *c)
{
    for (int i = 0; i < 3; i++) {
        rc_ok (c, pm_sync_with_peers (c->pm), "pm_sync_with_peers");
        rc_ok (c, pm_barrier (c->pm), "pm_barrier");
    }
}

static void check_sync_array (ctx_t *c)
{
    static const size_t counts[] = {0, 1, 7, 1000};
    for (size_t ti = 0; ti < NDTYPES; ti++) {
        pm_dtype_t t = DTYPES[ti];
        for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
            size_t count = counts[ci];
            void *buf = alloc_recv (count, t);
            void *want = alloc_recv (count, t);
            fill (want, t, count, GEN_ANY, 0, (int) ci);
            if (c->rank == 0)
                memcpy (buf, want, count * dsize (t));
            char what[128];
            snprintf (what, sizeof what, "pm_sync_array_with_peers(%s, count=%zu)", dname (t),
                      count);
            if (rc_ok (c, pm_sync_array_with_peers (c->pm, buf, count, t), what))
                expect_array (c, what, buf, want, count, t);
            free (buf);
            free (want);
        }
    }
}

static unsigned char blob_byte (int rank, size_t j, int salt)
{
    return (unsigned char) ((size_t) rank * 29 + j * 13 + (size_t) salt * 7 + 1);
}

static void check_sync_bytes (ctx_t *c)
{
    static const size_t sizes[] = {0, 1, 13, 65536 + 3};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t size = sizes[si];
        char what[96];
        snprintf (what, sizeof what, "pm_sync_bytes_with_peers(size=%zu)", size);
        unsigned char *src = malloc (size + 1);
        for (size_t j = 0; j < size; j++)
            src[j] = blob_byte (0, j, (int) si);
        if (c->rank == 0) {
            void *data = src;
            size_t sz = size;
            if (rc_ok (c, pm_sync_bytes_with_peers (c->pm, &data, &sz), what)) {
                CHECK (c, data == src && sz == size,
                       "%s on root changed *data/*size (%p/%zu -> %p/%zu)", what, (void *) src,
                       size, data, sz);
                bool intact = true;
                for (size_t j = 0; j < size; j++)
                    intact = intact && src[j] == blob_byte (0, j, (int) si);
                CHECK (c, intact, "%s modified the root's data", what);
            }
        } else {
            unsigned char before[4] = {1, 2, 3, 4};
            void *data = before;
            size_t sz = 12345;
            if (rc_ok (c, pm_sync_bytes_with_peers (c->pm, &data, &sz), what)) {
                CHECK (c, sz == size, "%s: received size %zu, expected %zu", what, sz, size);
                CHECK (c, before[0] == 1 && before[1] == 2 && before[2] == 3 && before[3] == 4,
                       "%s touched the caller's previous buffer", what);
                if (size > 0)
                    CHECK (c, data != before && data != NULL,
                           "%s: *data does not point to a new copy", what);
                if (sz == size && data && data != before) {
                    size_t bad = size;
                    for (size_t j = 0; j < size && bad == size; j++)
                        if (((unsigned char *) data)[j] != blob_byte (0, j, (int) si))
                            bad = j;
                    CHECK (c, bad == size, "%s: byte %zu differs", what, bad);
                }
                if (data != before)
                    free (data);
            }
        }
        free (src);
    }
}

static size_t blob_size (int rank, int pattern)
{
    switch (pattern) {
    case 0: return rank % 3 == 1 ? 0 : (size_t) rank * 100 + 5;
    case 1: return (size_t) (rank % 2) * 4096 + (size_t) rank;
    default: return 0;
    }
}

static void check_combine (ctx_t *c)
{
    for (int pattern = 0; pattern < 3; pattern++) {
        char what[96];
        snprintf (what, sizeof what, "pm_combine_data_with_peers(pattern %d)", pattern);
        size_t size = blob_size (c->rank, pattern);
        unsigned char *mine = malloc (size + 1);
        for (size_t j = 0; j < size; j++)
            mine[j] = blob_byte (c->rank, j, pattern);
        pm_blobs_t *all = NULL;
        if (rc_ok (c, pm_combine_data_with_peers (c->pm, mine, size, &all), what)) {
            CHECK (c, all != NULL, "%s: *all is NULL", what);
            if (all) {
                size_t cnt = pm_blobs_count (all);
                CHECK (c, cnt == (size_t) c->n, "%s: %zu blobs, expected %d", what, cnt, c->n);
                for (int r = 0; r < c->n && r < (int) cnt; r++) {
                    size_t got = 99999;
                    const unsigned char *d = pm_blobs_data (all, (size_t) r, &got);
                    size_t want = blob_size (r, pattern);
                    CHECK (c, got == want, "%s: blob %d has %zu bytes, expected %zu", what, r,
                           got, want);
                    if (got == want && want > 0) {
                        CHECK (c, d != NULL, "%s: blob %d data is NULL", what, r);
                        size_t bad = want;
                        for (size_t j = 0; d && j < want && bad == want; j++)
                            if (d[j] != blob_byte (r, j, pattern))
                                bad = j;
                        CHECK (c, bad == want, "%s: blob %d byte %zu differs", what, r, bad);
                    }
                }
                pm_blobs_destroy (&all);
                CHECK (c, all == NULL, "pm_blobs_destroy did not null the pointer");
            }
        }
        free (mine);
    }
}

static void check_gather_to_root (ctx_t *c)
{
    size_t *counts = calloc ((size_t) c->n, sizeof *counts);
    for (size_t ti = 0; ti < NDTYPES; ti++) {
        pm_dtype_t t = DTYPES[ti];
        for (int salt = 0; salt < 4; salt++) {
            if (salt == 3)
                memset (counts, 0, (size_t) c->n * sizeof *counts); /* all empty */
            else
                make_counts (counts, c->n, salt);
            size_t mine = counts[c->rank];
            void *send = alloc_recv (mine, t);
            fill (send, t, mine, GEN_ANY, c->rank, salt);
            size_t total = sum_counts (counts, c->n);
            void *recv = c->rank == 0 ? alloc_recv (total, t) : NULL;
            char what[128];
            snprintf (what, sizeof what, "pm_gather_arrays_to_root(%s, counts pattern %d)",
                      dname (t), salt);
            int rc = pm_gather_arrays_to_root (c->pm, send, mine, t, recv,
                                               c->rank == 0 ? counts : NULL);
            if (rc_ok (c, rc, what) && c->rank == 0) {
                void *want = alloc_recv (total, t);
                size_t off = 0;
                for (int r = 0; r < c->n; r++) {
                    fill ((char *) want + off * dsize (t), t, counts[r], GEN_ANY, r, salt);
                    off += counts[r];
                }
                expect_array (c, what, recv, want, total, t);
                free (want);
            }
            void *send_want = alloc_recv (mine, t);
            fill (send_want, t, mine, GEN_ANY, c->rank, salt);
            CHECK (c, first_diff (send, send_want, mine, t) < 0, "%s modified the send buffer",
                   what);
            free (send_want);
            free (send);
            free (recv);
        }
    }
    free (counts);
}

static void expected_reduction (void *want, pm_dtype_t t, size_t count, pm_op_t op, int n,
                                int salt)
{
    int kind = op == PM_PROD ? GEN_PROD : GEN_ANY;
    fill (want, t, count, kind, 0, salt);
    void *tmp = alloc_recv (count, t);
    for (int r = 1; r < n; r++) {
        fill (tmp, t, count, kind, r, salt);
        ref_reduce (want, tmp, count, t, op);
    }
    free (tmp);
}

static void check_sum_values (ctx_t *c)
{
    static const size_t counts[] = {0, 1, 9};
    for (size_t ti = 0; ti < NDTYPES; ti++) {
        pm_dtype_t t = DTYPES[ti];
        for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
            size_t count = counts[ci];
            void *send = alloc_recv (count, t);
            void *recv = alloc_recv (count, t);
            void *want = alloc_recv (count, t);
            fill (send, t, count, GEN_ANY, c->rank, (int) ci);
            expected_reduction (want, t, count, PM_SUM, c->n, (int) ci);
            char what[128];
            snprintf (what, sizeof what, "pm_sum_values_and_sync(%s, count=%zu)", dname (t),
                      count);
            if (rc_ok (c, pm_sum_values_and_sync (c->pm, send, recv, count, t), what))
                expect_array (c, what, recv, want, count, t);
            fill (want, t, count, GEN_ANY, c->rank, (int) ci);
            CHECK (c, first_diff (send, want, count, t) < 0, "%s modified the send buffer", what);
            free (send);
            free (recv);
            free (want);
        }
    }
}

static void check_bcast (ctx_t *c)
{
    static const size_t counts[] = {0, 1, 17};
    for (size_t ti = 0; ti < NDTYPES; ti++) {
        pm_dtype_t t = DTYPES[ti];
        for (int root = 0; root < c->n; root++) {
            for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
                size_t count = counts[ci];
                void *buf = alloc_recv (count, t);
                void *want = alloc_recv (count, t);
                fill (want, t, count, GEN_ANY, root, (int) ci + 3);
                if (c->rank == root)
                    memcpy (buf, want, count * dsize (t));
                char what[128];
                snprintf (what, sizeof what, "pm_bcast(%s, count=%zu, root=%d)", dname (t), count,
                          root);
                if (rc_ok (c, pm_bcast (c->pm, buf, count, t, root), what))
                    expect_array (c, what, buf, want, count, t);
                free (buf);
                free (want);
            }
        }
    }
}

static void check_scatterv (ctx_t *c)
{
    size_t *counts = calloc ((size_t) c->n, sizeof *counts);
    for (size_t ti = 0; ti < NDTYPES; ti++) {
        pm_dtype_t t = DTYPES[ti];
        for (int root = 0; root < c->n; root++) {
            for (int salt = 0; salt < 2; salt++) {
                make_counts (counts, c->n, salt + root);
                size_t total = sum_counts (counts, c->n);
                void *send = NULL;
                if (c->rank == root) {
                    send = alloc_recv (total, t);
                    size_t off = 0;
                    for (int r = 0; r < c->n; r++) {
                        fill ((char *) send + off * dsize (t), t, counts[r], GEN_ANY, r, salt);
                        off += counts[r];
                    }
                }
                size_t mine = counts[c->rank];
                void *recv = alloc_recv (mine, t);
                void *want = alloc_recv (mine, t);
                fill (want, t, mine, GEN_ANY, c->rank, salt);
                char what[128];
                snprintf (what, sizeof what, "pm_scatterv(%s, root=%d, counts pattern %d)",
                          dname (t), root, salt + root);
                if (rc_ok (c, pm_scatterv (c->pm, send, counts, t, recv, mine, root), what))
                    expect_array (c, what, recv, want, mine, t);
                free (send);
                free (recv);
                free (want);
            }
        }
    }
    free (counts);
}

static void check_gatherv (ctx_t *c)
{
    size_t *counts = calloc ((size_t) c->n, sizeof *counts);
    for (size_t ti = 0; ti < NDTYPES; ti++) {
        pm_dtype_t t = DTYPES[ti];
        for (int root = 0; root < c->n; root++) {
            for (int salt = 0; salt < 2; salt++) {
                make_counts (counts, c->n, salt + root + 1);
                size_t total = sum_counts (counts, c->n);
                size_t mine = counts[c->rank];
                void *send = alloc_recv (mine, t);
                fill (send, t, mine, GEN_ANY, c->rank, salt + 10);
                void *recv = c->rank == root ? alloc_recv (total, t) : NULL;
                char what[128];
                snprintf (what, sizeof what, "pm_gatherv(%s, root=%d, counts pattern %d)",
                          dname (t), root, salt + root + 1);
                int rc = pm_gatherv (c->pm, send, mine, t, recv, c->rank == root ? counts : NULL,
                                     root);
                if (rc_ok (c, rc, what) && c->rank == root) {
                    void *want = alloc_recv (total, t);
                    size_t off = 0;
                    for (int r = 0; r < c->n; r++) {
                        fill ((char *) want + off * dsize (t), t, counts[r], GEN_ANY, r,
                              salt + 10);
                        off += counts[r];
                    }
                    expect_array (c, what, recv, want, total, t);
                    free (want);
                }
                free (send);
                free (recv);
            }
        }
    }
    free (counts);
}

static void check_allgather (ctx_t *c)
{
    size_t *counts = calloc ((size_t) c->n, sizeof *counts);
    for (size_t ti = 0; ti < NDTYPES; ti++) {
        pm_dtype_t t = DTYPES[ti];
        for (int salt = 0; salt < 4; salt++) {
            if (salt == 3)
                memset (counts, 0, (size_t) c->n * sizeof *counts);
            else
                make_counts (counts, c->n, salt);
            size_t total = sum_counts (counts, c->n);
            size_t mine = counts[c->rank];
            void *send = alloc_recv (mine, t);
            fill (send, t, mine, GEN_ANY, c->rank, salt + 20);
            void *recv = alloc_recv (total, t);
            void *want = alloc_recv (total, t);
            size_t off = 0;
            for (int r = 0; r < c->n; r++) {
                fill ((char *) want + off * dsize (t), t, counts[r], GEN_ANY, r, salt + 20);
                off += counts[r];
            }
            char what[128];
            snprintf (what, sizeof what, "pm_allgather(%s, counts pattern %d)", dname (t), salt);
            if (rc_ok (c, pm_allgather (c->pm, send, mine, t, recv, counts), what))
                expect_array (c, what, recv, want, total, t);
            free (send);
            free (recv);
            free (want);
        }
    }
    free (counts);
}

static void check_reduce (ctx_t *c)
{
    static const size_t counts[] = {0, 1, 9};
    for (size_t ti = 0; ti < NDTYPES; ti++) {
        pm_dtype_t t = DTYPES[ti];
        for (size_t oi = 0; oi < NOPS; oi++) {
            pm_op_t op = OPS[oi];
            int kind = op == PM_PROD ? GEN_PROD : GEN_ANY;
            for (int root = 0; root < c->n; root++) {
                for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
                    size_t count = counts[ci];
                    int salt = (int) ci + root;
                    void *send = alloc_recv (count, t);
                    fill (send, t, count, kind, c->rank, salt);
                    /* recv matters on root only: non-roots pass NULL or a buffer */
                    void *recv = (c->rank == root || (root + (int) ci) % 2 == 0)
                                     ? alloc_recv (count, t)
                                     : NULL;
                    char what[128];
                    snprintf (what, sizeof what, "pm_reduce(%s, %s, count=%zu, root=%d)",
                              dname (t), oname (op), count, root);
                    if (rc_ok (c, pm_reduce (c->pm, send, recv, count, t, op, root), what) &&
                        c->rank == root) {
                        void *want = alloc_recv (count, t);
                        expected_reduction (want, t, count, op, c->n, salt);
                        expect_array (c, what, recv, want, count, t);
                        free (want);
                    }
                    free (send);
                    free (recv);
                }
            }
        }
    }
}

static void check_allreduce (ctx_t *c)
{
    static const size_t counts[] = {0, 1, 9};
    for (size_t ti = 0; ti < NDTYPES; ti++) {
        pm_dtype_t t = DTYPES[ti];
        for (size_t oi = 0; oi < NOPS; oi++) {
            pm_op_t op = OPS[oi];
            int kind = op == PM_PROD ? GEN_PROD : GEN_ANY;
            for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
                size_t count = counts[ci];
                int salt = (int) ci + 5;
                void *send = alloc_recv (count, t);
                void *recv = alloc_recv (count, t);
                void *want = alloc_recv (count, t);
                fill (send, t, count, kind, c->rank, salt);
                expected_reduction (want, t, count, op, c->n, salt);
                char what[128];
                snprintf (what, sizeof what, "pm_allreduce(%s, %s, count=%zu)", dname (t),
                          oname (op), count);
                if (rc_ok (c, pm_allreduce (c->pm, send, recv, count, t, op), what))
                    expect_array (c, what, recv, want, count, t);
                fill (want, t, count, kind, c->rank, salt);
                CHECK (c, first_diff (send, want, count, t) < 0, "%s modified the send buffer",
                       what);
                free (send);
                free (recv);
                free (want);
            }
        }
    }
}

/* Values whose sum/product depends on the order of combination (full
   53-bit mantissas, magnitudes over 24 binades, mixed signs): the result
   must be the left fold in rank order, ((x0 op x1) op x2) ...             */
static double order_val (pm_op_t op, int rank, size_t i)
{
    uint64_t h = (uint64_t) (rank + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t) (i + 1) * 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    double frac = (double) (h >> 11) / 9007199254740992.0; /* [0, 1), 53 bits */
    if (op == PM_PROD)
        return 1.0 + frac;
    return (1.0 + frac) * (double) (1u << ((h >> 3) % 24)) * ((h & 1) ? -1.0 : 1.0);
}

static void check_rank_order (ctx_t *c)
{
    const size_t count = 64;
    const pm_dtype_t ts[] = {PM_FLOAT32, PM_FLOAT64};
    const pm_op_t ops[] = {PM_SUM, PM_PROD};
    for (size_t ti = 0; ti < 2; ti++) {
        pm_dtype_t t = ts[ti];
        for (size_t oi = 0; oi < 2; oi++) {
            pm_op_t op = ops[oi];
            void *send = alloc_recv (count, t);
            void *recv = alloc_recv (count, t);
            void *want = alloc_recv (count, t);
            void *tmp = alloc_recv (count, t);
            for (size_t i = 0; i < count; i++) {
                put_d (send, t, i, order_val (op, c->rank, i));
                put_d (want, t, i, order_val (op, 0, i));
            }
            for (int r = 1; r < c->n; r++) {
                for (size_t i = 0; i < count; i++)
                    put_d (tmp, t, i, order_val (op, r, i));
                ref_reduce (want, tmp, count, t, op);
            }
            char what[128];
            snprintf (what, sizeof what, "pm_allreduce(%s, %s) combined in rank order", dname (t),
                      oname (op));
            if (rc_ok (c, pm_allreduce (c->pm, send, recv, count, t, op), what))
                expect_array (c, what, recv, want, count, t);
            int root = c->n - 1;
            memset (recv, POISON_BYTE, count * dsize (t));
            snprintf (what, sizeof what, "pm_reduce(%s, %s, root=%d) combined in rank order",
                      dname (t), oname (op), root);
            if (rc_ok (c, pm_reduce (c->pm, send, recv, count, t, op, root), what) &&
                c->rank == root)
                expect_array (c, what, recv, want, count, t);
            free (send);
            free (recv);
            free (want);
            free (tmp);
        }
    }
}

static void check_large (ctx_t *c)
{
    const size_t count = LARGE_COUNT;
    const pm_dtype_t t = PM_FLOAT64;
    double *send = alloc_recv (count, t);
    double *recv = alloc_recv (count, t);
    double *want = alloc_recv (count, t);
    fill (send, t, count, GEN_ANY, c->rank, 7);
    expected_reduction (want, t, count, PM_SUM, c->n, 7);
    if (rc_ok (c, pm_allreduce (c->pm, send, recv, count, t, PM_SUM), "pm_allreduce(100k doubles)"))
        expect_array (c, "pm_allreduce(100k doubles)", recv, want, count, t);

    int root = c->n - 1;
    fill (want, t, count, GEN_ANY, root, 8);
    memset (recv, POISON_BYTE, count * sizeof (double));
    if (c->rank == root)
        memcpy (recv, want, count * sizeof (double));
    if (rc_ok (c, pm_bcast (c->pm, recv, count, t, root), "pm_bcast(100k doubles)"))
        expect_array (c, "pm_bcast(100k doubles)", recv, want, count, t);

    size_t *counts = calloc ((size_t) c->n, sizeof *counts);
    for (int r = 0; r < c->n; r++)
        counts[r] = count / (size_t) c->n + (r == c->n - 1 ? count % (size_t) c->n : 0);
    fill (send, t, counts[c->rank], GEN_ANY, c->rank, 9);
    memset (recv, POISON_BYTE, count * sizeof (double));
    if (rc_ok (c,
               pm_gather_arrays_to_root (c->pm, send, counts[c->rank], t,
                                         c->rank == 0 ? recv : NULL,
                                         c->rank == 0 ? counts : NULL),
               "pm_gather_arrays_to_root(100k doubles)") &&
        c->rank == 0) {
        size_t off = 0;
        for (int r = 0; r < c->n; r++) {
            fill (want + off, t, counts[r], GEN_ANY, r, 9);
            off += counts[r];
        }
        expect_array (c, "pm_gather_arrays_to_root(100k doubles)", recv, want, count, t);
    }
    free (counts);
    free (send);
    free (recv);
    free (want);
}

/* Invalid arguments passed identically by every rank → PM_EINVAL on every
   rank; the group stays usable afterwards.                                 */
static void check_bad_args (ctx_t *c)
{
    int32_t a[2] = {1, 2}, b[2] = {0, 0};
    struct {
        const char *what;
        int rc;
    } cases[5];
    cases[0].what = "pm_bcast(root=n)";
    cases[0].rc = pm_bcast (c->pm, a, 1, PM_INT32, c->n);
    cases[1].what = "pm_bcast(root=-1)";
    cases[1].rc = pm_bcast (c->pm, a, 1, PM_INT32, -1);
    cases[2].what = "pm_allreduce(dtype=99)";
    cases[2].rc = pm_allreduce (c->pm, a, b, 1, (pm_dtype_t) 99, PM_SUM);
    cases[3].what = "pm_allreduce(op=99)";
    cases[3].rc = pm_allreduce (c->pm, a, b, 1, PM_INT32, (pm_op_t) 99);
    cases[4].what = "pm_reduce(root=n)";
    cases[4].rc = pm_reduce (c->pm, a, b, 1, PM_INT32, PM_SUM, c->n);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK (c, cases[i].rc == PM_EINVAL, "%s returned %d (%s), expected PM_EINVAL",
               cases[i].what, cases[i].rc, pm_strerror (cases[i].rc));
    CHECK (c, pm_last_error_code (c->pm) == PM_EINVAL,
           "pm_last_error_code after a PM_EINVAL call is %d", pm_last_error_code (c->pm));
    const char *msg = pm_last_error (c->pm);
    CHECK (c, msg && *msg, "pm_last_error is empty after a failed call");
    rc_ok (c, pm_barrier (c->pm), "pm_barrier after invalid-argument calls");
    int32_t one = 1, sum = 0;
    if (rc_ok (c, pm_allreduce (c->pm, &one, &sum, 1, PM_INT32, PM_SUM),
               "pm_allreduce after invalid-argument calls"))
        CHECK (c, sum == c->n, "pm_allreduce after invalid-argument calls gave %d, expected %d",
               (int) sum, c->n);
}

static void check_quick (ctx_t *c)
{
    rc_ok (c, pm_barrier (c->pm), "pm_barrier");
    for (size_t oi = 0; oi < NOPS; oi++) {
        pm_dtype_t ts[] = {PM_INT64, PM_FLOAT64};
        for (size_t ti = 0; ti < 2; ti++) {
            pm_dtype_t t = ts[ti];
            pm_op_t op = OPS[oi];
            size_t count = 9;
            void *send = alloc_recv (count, t);
            void *recv = alloc_recv (count, t);
            void *want = alloc_recv (count, t);
            fill (send, t, count, op == PM_PROD ? GEN_PROD : GEN_ANY, c->rank, 1);
            expected_reduction (want, t, count, op, c->n, 1);
            char what[128];
            snprintf (what, sizeof what, "pm_allreduce(%s, %s)", dname (t), oname (op));
            if (rc_ok (c, pm_allreduce (c->pm, send, recv, count, t, op), what))
                expect_array (c, what, recv, want, count, t);
            free (send);
            free (recv);
            free (want);
        }
    }
}

static int rank_fn (pm_manager_t *pm, void *arg)
{
    config_t *cfg = arg;
    atomic_fetch_add (&cfg->calls, 1);
    ctx_t ctx = {.pm = pm, .cfg = cfg, .rank = pm_get_rank (pm),
                 .n = pm_number_of_worker_processes (pm)};
    ctx_t *c = &ctx;
    if (c->n < 1 || c->rank < 0 || c->rank >= c->n) {
        fail (c, "nonsensical rank %d / size %d, not running the collectives", c->rank, c->n);
        return 1;
    }
    check_identity (c);
    if (cfg->quick) {
        check_quick (c);
        check_combine (c);
        check_gather_to_root (c);
    } else {
        check_barriers (c);
        check_sync_array (c);
        check_sync_bytes (c);
        check_combine (c);
        check_gather_to_root (c);
        check_sum_values (c);
        check_bcast (c);
        check_scatterv (c);
        check_gatherv (c);
        check_allgather (c);
        check_reduce (c);
        check_allreduce (c);
        check_rank_order (c);
        check_large (c);
        check_bad_args (c);
    }

    int64_t mine = ctx.fails, total = -1;
    int rc = pm_sum_values_and_sync (pm, &mine, &total, 1, PM_INT64);
    if (rc != PM_OK) {
        fail (c, "final pm_sum_values_and_sync of failure counts returned %d (%s)", rc,
              pm_strerror (rc));
        return 1;
    }
    if (ctx.rank == 0) {
        char line[256];
        snprintf (line, sizeof line, "pm-conformance %s %d (%s, %d ranks): %s, %ld checks on rank 0, %lld failures in all\n",
                  cfg->keyword, cfg->n_arg, cfg->expect_backend, ctx.n,
                  total == 0 ? "PASS" : "FAIL", ctx.checks, (long long) total);
        emit (line);
    }
    return total == 0 && ctx.fails == 0 ? 0 : 1;
}

/* ---- main --------------------------------------------------------------- */

typedef struct {
    int32_t rank;
    int32_t rc;
} child_record_t;

static long now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Parent of a MultiProcessing run: collect the forked ranks' records. */
static int collect_children (int fd, int n)
{
    int bad = 0;
    int seen[256] = {0};
    child_record_t rec;
    size_t have = 0;
    char *p = (char *) &rec;
    long deadline = now_ms () + 30000;
    for (;;) {
        long left = deadline - now_ms ();
        if (left <= 0) {
            fprintf (stderr, "pm-conformance FAIL: timed out reading the forked ranks' reports\n");
            bad++;
            break;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll (&pfd, 1, (int) left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        ssize_t r = read (fd, p + have, sizeof rec - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break; /* EOF: every writer is gone */
        have += (size_t) r;
        if (have == sizeof rec) {
            have = 0;
            if (rec.rank <= 0 || rec.rank >= n || rec.rank >= 256 || seen[rec.rank]) {
                fprintf (stderr, "pm-conformance FAIL: bogus report from a forked rank (%d)\n",
                         (int) rec.rank);
                bad++;
                continue;
            }
            seen[rec.rank] = 1;
            if (rec.rc != 0) {
                fprintf (stderr, "pm-conformance FAIL: forked rank %d finished with %d\n",
                         (int) rec.rank, (int) rec.rc);
                bad++;
            }
        }
    }
    for (int r = 1; r < n && r < 256; r++)
        if (!seen[r]) {
            fprintf (stderr,
                     "pm-conformance FAIL: forked rank %d never reported (crashed or killed?)\n",
                     r);
            bad++;
        }
    return bad;
}

int main (int argc, char **argv)
{
    if (argc < 3 || argc > 4 || (argc == 4 && strcmp (argv[3], "quick") != 0)) {
        fprintf (stderr, "usage: %s BACKEND N [quick]\n", argv[0]);
        return 2;
    }
    static config_t cfg;
    cfg.keyword = argv[1];
    cfg.n_arg = atoi (argv[2]);
    cfg.quick = argc == 4;
    atomic_init (&cfg.calls, 0);

    const char *env_rank = getenv ("PM_RANK");
    const char *env_size = getenv ("PM_SIZE");
    bool launched = env_rank && *env_rank && env_size && *env_size;
    /* Under mpirun (more than one MPI process) MPI wins, whatever the keyword. */
    const char *mpi_size = getenv ("OMPI_COMM_WORLD_SIZE");
    const char *mpi_rank = getenv ("OMPI_COMM_WORLD_RANK");
    if (mpi_size && mpi_rank && (atoi (mpi_size) > 1 || strcasecmp (cfg.keyword, "MPI") == 0)) {
        launched = true;
        cfg.expect_size = atoi (mpi_size);
        cfg.expect_rank = atoi (mpi_rank);
        cfg.expect_backend = "MPI";
    } else if (launched) {
        cfg.expect_size = atoi (env_size);
        cfg.expect_rank = atoi (env_rank);
        cfg.expect_backend = "pm-run";
    } else if (cfg.n_arg <= 1) {
        cfg.expect_size = 1;
        cfg.expect_rank = 0;
        cfg.expect_backend = "Serial";
    } else {
        cfg.expect_size = cfg.n_arg;
        cfg.expect_rank = -1;
        if (strcasecmp (cfg.keyword, "ConcurrentFutures") == 0 ||
            strcasecmp (cfg.keyword, "concurrent.futures") == 0) {
            cfg.expect_backend = "ConcurrentFutures";
            cfg.threads = true;
        } else if (strcasecmp (cfg.keyword, "MultiProcessing") == 0) {
            cfg.expect_backend = "MultiProcessing";
        } else if (strcasecmp (cfg.keyword, "RayIo") == 0 || strcasecmp (cfg.keyword, "ray") == 0) {
            /* the caller is rank 0; Ray actors start the others with PM_RANK */
            cfg.expect_backend = "RayIo";
            cfg.expect_rank = 0;
        } else {
            cfg.expect_backend = "Serial";
            cfg.expect_size = 1;
            cfg.expect_rank = 0;
        }
    }
    bool forked = !launched && cfg.n_arg > 1 && strcmp (cfg.expect_backend, "MultiProcessing") == 0;

    int pipefd[2] = {-1, -1};
    if (forked && pipe (pipefd) != 0) {
        perror ("pm-conformance: pipe");
        return 2;
    }
    pid_t parent = getpid ();
    fflush (stdout);
    fflush (stderr);

    pm_manager_t *pm = pm_create_parallel_manager (cfg.keyword, cfg.n_arg, NULL);
    if (!pm) {
        const char *msg = pm_last_error (NULL);
        fprintf (stderr, "pm-conformance FAIL: pm_create_parallel_manager (\"%s\", %d) returned NULL: %d (%s): %s\n",
                 cfg.keyword, cfg.n_arg, pm_last_error_code (NULL),
                 pm_strerror (pm_last_error_code (NULL)), msg ? msg : "(null)");
        return 2;
    }
    bool child = getpid () != parent;
    if (child) {
        /* never outlive the parent (e.g. when ctest kills it on a timeout) */
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != parent)
            _exit (3);
        close (pipefd[0]);
    }
    int bad = 0;
    int rank = pm_get_rank (pm);
    if (forked && !child && rank != 0) {
        fprintf (stderr, "pm-conformance FAIL: the parent process of a MultiProcessing run is rank %d, expected 0\n", rank);
        bad++;
    }

    int rc = pm_run (pm, rank_fn, &cfg);
    if (rc != 0) {
        fprintf (stderr, "pm-conformance FAIL rank %d: pm_run returned %d%s%s\n", rank, rc,
                 rc < 0 ? ": " : "", rc < 0 ? pm_strerror (rc) : "");
        bad++;
    }
    int calls = atomic_load (&cfg.calls);
    int want_calls = cfg.threads ? cfg.expect_size : 1;
    if (calls != want_calls) {
        fprintf (stderr, "pm-conformance FAIL rank %d: the rank function ran %d times in this process, expected %d\n",
                 rank, calls, want_calls);
        bad++;
    }
    pm_destroy (&pm);
    if (pm != NULL) {
        fprintf (stderr, "pm-conformance FAIL rank %d: pm_destroy did not null the pointer\n", rank);
        bad++;
    }

    if (child) {
        child_record_t rec = {.rank = rank, .rc = bad};
        if (write (pipefd[1], &rec, sizeof rec) != (ssize_t) sizeof rec)
            bad++;
        close (pipefd[1]);
        return bad ? 1 : 0;
    }
    if (forked) {
        close (pipefd[1]);
        bad += collect_children (pipefd[0], cfg.expect_size);
        close (pipefd[0]);
        /* pm_destroy in the parent waits for the forked ranks: none may be
           left, neither running nor unreaped                               */
        int st;
        pid_t w = waitpid (-1, &st, WNOHANG);
        if (w != -1 || errno != ECHILD) {
            fprintf (stderr, "pm-conformance FAIL: child process %d still %s after pm_destroy\n",
                     (int) w, w > 0 ? "unreaped" : "running");
            bad++;
        }
    }
    return bad ? 1 : 0;
}
