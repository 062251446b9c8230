/*  pm_hdf5.c — pm-sweep's results as HDF5, written atomically.  See pm_hdf5.h. */
#include "pm_hdf5.h"

#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

/* The state of one write: the first error wins. */
typedef struct {
    char *err;
    size_t err_size;
    bool failed;
} s_ctx_t;

static void s_fail (s_ctx_t *ctx, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_fail (s_ctx_t *ctx, const char *fmt, ...)
{
    if (ctx->failed)
        return;
    ctx->failed = true;
    if (ctx->err && ctx->err_size) {
        va_list args;
        va_start (args, fmt);
        vsnprintf (ctx->err, ctx->err_size, fmt, args);
        va_end (args);
    }
}

/* H5Ewalk2 callback: keep the innermost error (the first, walking upward). */
typedef struct {
    bool found;
    char text[256];
} s_h5_why_t;

static herr_t
s_h5_walk (unsigned n, const H5E_error2_t *e, void *arg_)
{
    s_h5_why_t *why = arg_;
    if (n != 0 || why->found)
        return 0;
    why->found = true;
    char minor[128] = "";
    if (H5Eget_msg (e->min_num, NULL, minor, sizeof minor) < 0)
        minor[0] = '\0';
    snprintf (why->text, sizeof why->text, "%s%s%s", e->desc && *e->desc ? e->desc : "",
              e->desc && *e->desc && minor[0] ? ": " : "", minor);
    return 0;
}

/* An HDF5 call failed: say which, with HDF5's innermost reason. */
static void
s_h5_fail (s_ctx_t *ctx, const char *what, const char *path)
{
    s_h5_why_t why = {false, ""};
    if (H5Ewalk2 (H5E_DEFAULT, H5E_WALK_UPWARD, s_h5_walk, &why) < 0 || !why.text[0])
        snprintf (why.text, sizeof why.text, "no reason given");
    H5Eclear2 (H5E_DEFAULT);
    s_fail (ctx, "cannot write '%s': HDF5: %s: %s", path, what, why.text);
}

/* Close an HDF5 object (ignored if id < 0); a failure is an error. */
typedef herr_t (*s_close_fn) (hid_t);

static void
s_close (s_ctx_t *ctx, hid_t id, s_close_fn fn, const char *what, const char *path)
{
    if (id >= 0 && fn (id) < 0)
        s_h5_fail (ctx, what, path);
}

/* A dataset of rank 1 or 2 (dims[1] ignored for rank 1), written from buf. */
static void
s_dataset (s_ctx_t *ctx, hid_t file, const char *path, const char *name, int rank,
           hsize_t d0, hsize_t d1, hid_t file_type, hid_t mem_type, const void *buf)
{
    if (ctx->failed)
        return;
    hsize_t dims[2] = {d0, d1};
    char what[128];
    hid_t space = H5Screate_simple (rank, dims, NULL);
    if (space < 0) {
        snprintf (what, sizeof what, "H5Screate_simple for /%s", name);
        s_h5_fail (ctx, what, path);
        return;
    }
    hid_t set = H5Dcreate2 (file, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (set < 0) {
        snprintf (what, sizeof what, "H5Dcreate2 /%s", name);
        s_h5_fail (ctx, what, path);
    }
    else if (d0 * (rank == 2 ? d1 : 1) > 0
             && H5Dwrite (set, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        snprintf (what, sizeof what, "H5Dwrite /%s", name);
        s_h5_fail (ctx, what, path);
    }
    snprintf (what, sizeof what, "H5Dclose /%s", name);
    s_close (ctx, set, H5Dclose, what, path);
    snprintf (what, sizeof what, "H5Sclose /%s", name);
    s_close (ctx, space, H5Sclose, what, path);
}

/* A variable-length UTF-8 string type, or -1 (reported). */
static hid_t
s_string_type (s_ctx_t *ctx, const char *path)
{
    hid_t type = H5Tcopy (H5T_C_S1);
    if (type < 0) {
        s_h5_fail (ctx, "H5Tcopy", path);
        return -1;
    }
    if (H5Tset_size (type, H5T_VARIABLE) < 0 || H5Tset_cset (type, H5T_CSET_UTF8) < 0) {
        s_h5_fail (ctx, "H5Tset_size/H5Tset_cset (variable-length UTF-8 string)", path);
        H5Tclose (type);
        return -1;
    }
    return type;
}

/* A 1-D dataset of variable-length strings (NULL entries written as ""). */
static void
s_names (s_ctx_t *ctx, hid_t file, const char *path, const char *name,
         const char *const *names, size_t count)
{
    if (ctx->failed)
        return;
    const char **list = calloc (count + 1, sizeof *list);
    if (!list) {
        s_fail (ctx, "out of memory");
        return;
    }
    for (size_t i = 0; i < count; i++)
        list[i] = names && names[i] ? names[i] : "";
    hid_t type = s_string_type (ctx, path);
    if (type >= 0)
        s_dataset (ctx, file, path, name, 1, (hsize_t) count, 0, type, type, list);
    s_close (ctx, type, H5Tclose, "H5Tclose", path);
    free (list);
}

/* A scalar attribute of the root group from value (of mem_type). */
static void
s_attribute (s_ctx_t *ctx, hid_t file, const char *path, const char *name, hid_t file_type,
             hid_t mem_type, const void *value)
{
    if (ctx->failed)
        return;
    char what[128];
    hid_t space = H5Screate (H5S_SCALAR);
    if (space < 0) {
        s_h5_fail (ctx, "H5Screate (scalar)", path);
        return;
    }
    hid_t attr = H5Acreate2 (file, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attr < 0) {
        snprintf (what, sizeof what, "H5Acreate2 attribute '%s'", name);
        s_h5_fail (ctx, what, path);
    }
    else if (H5Awrite (attr, mem_type, value) < 0) {
        snprintf (what, sizeof what, "H5Awrite attribute '%s'", name);
        s_h5_fail (ctx, what, path);
    }
    s_close (ctx, attr, H5Aclose, "H5Aclose", path);
    s_close (ctx, space, H5Sclose, "H5Sclose", path);
}

static void
s_string_attribute (s_ctx_t *ctx, hid_t file, const char *path, const char *name,
                    const char *value)
{
    if (ctx->failed)
        return;
    hid_t type = s_string_type (ctx, path);
    const char *text = value ? value : "";
    if (type >= 0)
        s_attribute (ctx, file, path, name, type, type, &text);
    s_close (ctx, type, H5Tclose, "H5Tclose", path);
}

/* The whole file, into the open (empty) file. */
static void
s_write_file (s_ctx_t *ctx, hid_t file, const char *path, const pm_hdf5_table_t *t)
{
    hsize_t rows = (hsize_t) t->rows;
    s_dataset (ctx, file, path, "inputs", 2, rows, (hsize_t) t->ninputs, H5T_IEEE_F64LE,
               H5T_NATIVE_DOUBLE, t->inputs);
    s_dataset (ctx, file, path, "outputs", 2, rows, (hsize_t) t->noutputs, H5T_IEEE_F64LE,
               H5T_NATIVE_DOUBLE, t->outputs);
    s_dataset (ctx, file, path, "success", 1, rows, 0, H5T_STD_U8LE, H5T_NATIVE_UCHAR,
               t->success);
    s_names (ctx, file, path, "input_names", t->input_names, t->ninputs);
    s_names (ctx, file, path, "output_names", t->output_names, t->noutputs);
    uint64_t nrows = (uint64_t) t->rows;
    s_attribute (ctx, file, path, "rows", H5T_STD_U64LE, H5T_NATIVE_UINT64, &nrows);
    s_string_attribute (ctx, file, path, "model", t->model);
    s_string_attribute (ctx, file, path, "model_kind", t->model_kind);
}

/* The temporary name next to path (malloc'd), or NULL. */
static char *
s_temp_name (const char *path)
{
    char *dir_copy = strdup (path), *base_copy = strdup (path), *tmp = NULL;
    if (dir_copy && base_copy
        && asprintf (&tmp, "%s/.%s.tmp.XXXXXX", dirname (dir_copy), basename (base_copy)) < 0)
        tmp = NULL;
    free (dir_copy);
    free (base_copy);
    return tmp;
}

/* The file's image, built in memory by HDF5's core driver (no backing
   store): HDF5 itself never writes to disk, so a failing disk (ENOSPC,
   EFBIG, EIO) fails our write(2), not an HDF5 close.  (libhdf5 1.10.8
   crashes in H5close, or at exit, after an H5Dclose that failed to write:
   a failed sec2 write cannot be recovered from.)  *image is malloc'd. */
static void
s_build_image (s_ctx_t *ctx, const char *path, const pm_hdf5_table_t *t, void **image,
               size_t *size)
{
    *image = NULL;
    *size = 0;
    /* Grow the in-memory file in steps about the size of the data. */
    size_t values = t->rows * (t->ninputs + t->noutputs);
    size_t increment = values * sizeof (double) + t->rows + ((size_t) 64 << 10);
    if (increment > ((size_t) 256 << 20))
        increment = (size_t) 256 << 20;

    /* Errors are reported here, not printed by the library. */
    if (H5Eset_auto2 (H5E_DEFAULT, NULL, NULL) < 0) {
        s_fail (ctx, "cannot write '%s': HDF5: H5Eset_auto2 failed", path);
        return;
    }
    hid_t fapl = H5Pcreate (H5P_FILE_ACCESS);
    if (fapl < 0) {
        s_h5_fail (ctx, "H5Pcreate (file access)", path);
        return;
    }
    hid_t file = -1;
    if (H5Pset_fapl_core (fapl, increment, 0) < 0)
        s_h5_fail (ctx, "H5Pset_fapl_core", path);
    else {
        file = H5Fcreate (path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        if (file < 0)
            s_h5_fail (ctx, "H5Fcreate (in memory)", path);
    }
    if (file >= 0) {
        s_write_file (ctx, file, path, t);
        if (!ctx->failed && H5Fflush (file, H5F_SCOPE_GLOBAL) < 0)
            s_h5_fail (ctx, "H5Fflush", path);
        ssize_t len = ctx->failed ? -1 : H5Fget_file_image (file, NULL, 0);
        if (!ctx->failed && len <= 0)
            s_h5_fail (ctx, "H5Fget_file_image (size)", path);
        if (!ctx->failed) {
            *image = malloc ((size_t) len);
            if (!*image)
                s_fail (ctx, "cannot write '%s': out of memory for its %zd bytes", path, len);
            else if (H5Fget_file_image (file, *image, (size_t) len) != len)
                s_h5_fail (ctx, "H5Fget_file_image", path);
            else
                *size = (size_t) len;
        }
        s_close (ctx, file, H5Fclose, "H5Fclose", path);
    }
    s_close (ctx, fapl, H5Pclose, "H5Pclose", path);
    /* Free the library's own state (else it shows as leaks at exit). */
    if (H5close () < 0)
        s_fail (ctx, "cannot write '%s': HDF5: H5close failed", path);
    if (ctx->failed) {
        free (*image);
        *image = NULL;
        *size = 0;
    }
}

int
pm_hdf5_write_table (const char *path, const pm_hdf5_table_t *table, char *err,
                     size_t err_size)
{
    s_ctx_t ctx = {err, err_size, false};
    void *image = NULL;
    size_t size = 0;
    s_build_image (&ctx, path, table, &image, &size);
    if (ctx.failed)
        return -1;
    char *tmp = s_temp_name (path);
    if (!tmp) {
        free (image);
        s_fail (&ctx, "out of memory");
        return -1;
    }
    int fd = mkstemp (tmp);
    if (fd < 0) {
        s_fail (&ctx, "cannot create a temporary file next to '%s': %s", path, strerror (errno));
        free (tmp);
        free (image);
        return -1;
    }
    /* mkstemp makes it 0600; give it the mode a plain create would. */
    mode_t mask = umask (0);
    umask (mask);
    if (fchmod (fd, 0666 & ~mask) != 0) {
        /* not fatal: the file is just more private than usual */
    }
    for (size_t done = 0; done < size && !ctx.failed;) {
        ssize_t n = write (fd, (const char *) image + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            s_fail (&ctx, "cannot write '%s': %s", tmp, n < 0 ? strerror (errno) : "no progress");
        else
            done += (size_t) n;
    }
    free (image);
    if (!ctx.failed && fsync (fd) != 0 && errno != EINVAL && errno != EROFS)
        s_fail (&ctx, "cannot flush '%s' to disk: %s", tmp, strerror (errno));
    if (close (fd) != 0 && !ctx.failed)
        s_fail (&ctx, "cannot close '%s': %s", tmp, strerror (errno));
    if (!ctx.failed && rename (tmp, path) != 0)
        s_fail (&ctx, "cannot rename '%s' to '%s': %s", tmp, path, strerror (errno));
    if (ctx.failed)
        unlink (tmp);
    free (tmp);
    return ctx.failed ? -1 : 0;
}
