/*  pm_command_model.c — run a shell command per sweep row and parse what it
    prints.  See pm_command_model.h for the contract.

    The child is started with posix_spawn (fork + exec in one step, so no
    ZeroMQ context or lock of ours is used in between) in a process group of
    its own; a pidfd tells when it exits, so a background grandchild that
    keeps stdout open cannot hold the row up, and a timeout kills the whole
    group.                                                                  */
#include "pm_command_model.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pm_log.h"

extern char **environ;

/* One piece of the template: literal text, or the value of a parameter. */
typedef struct {
    char *text; /* literal (owned), or NULL for a placeholder */
    size_t param; /* placeholder: column of the parameter */
} s_part_t;

struct pm_command {
    s_part_t *parts;  /* the template, in order */
    size_t nparts;
    size_t nparams;   /* columns of a row */
    char **outputs;   /* expected output names (owned) */
    size_t noutputs;
    int64_t timeout_ms; /* 0: none */
    char **env;       /* environ minus PM_RANK/SIZE/GROUP/ENDPOINT (owned) */
    bool told_ignored; /* logged once that a row printed unexpected names */
};

/* A name=value pair found in a command's output. */
typedef struct {
    char name[PM_COMMAND_NAME_MAX + 1];
    double value;
} s_pair_t;

typedef struct {
    s_pair_t *pairs;
    size_t count, capacity;
} s_pairs_t;

static void
s_say (char *buf, size_t size, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

static void
s_say (char *buf, size_t size, const char *fmt, ...)
{
    if (!buf || !size)
        return;
    va_list args;
    va_start (args, fmt);
    vsnprintf (buf, size, fmt, args);
    va_end (args);
}

bool
pm_command_is_output_name (const char *text, size_t len)
{
    if (!text || len == 0 || len > PM_COMMAND_NAME_MAX)
        return false;
    if (!(isalpha ((unsigned char) text[0]) || text[0] == '_'))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!(isalnum ((unsigned char) text[i]) || text[i] == '_' || text[i] == '.'
              || text[i] == '-'))
            return false;
    return true;
}

void
pm_command_names_free (char **names, size_t count)
{
    if (!names)
        return;
    for (size_t i = 0; i < count; i++)
        free (names[i]);
    free (names);
}

int
pm_command_split_names (const char *list, char ***names_p, size_t *count_p, char *err,
                        size_t err_size)
{
    *names_p = NULL;
    *count_p = 0;
    if (!list) {
        s_say (err, err_size, "no names given");
        return -1;
    }
    size_t n = 1;
    for (const char *c = list; *c; c++)
        n += *c == ',';
    char **names = calloc (n, sizeof *names);
    if (!names) {
        s_say (err, err_size, "out of memory");
        return -1;
    }
    size_t count = 0;
    const char *start = list;
    for (size_t i = 0; i < n; i++) {
        const char *stop = strchr (start, ',');
        if (!stop)
            stop = start + strlen (start);
        const char *b = start, *e = stop;
        while (b < e && isspace ((unsigned char) *b))
            b++;
        while (e > b && isspace ((unsigned char) e[-1]))
            e--;
        size_t len = (size_t) (e - b);
        if (len == 0) {
            s_say (err, err_size, "name %zu of '%s' is empty", i + 1, list);
            goto fail;
        }
        if (!pm_command_is_output_name (b, len)) {
            s_say (err, err_size,
                   "'%.*s' is not a valid output name (a letter or '_', then letters, digits, "
                   "'_', '.', '-'; at most %d bytes)",
                   (int) len, b, PM_COMMAND_NAME_MAX);
            goto fail;
        }
        for (size_t k = 0; k < count; k++)
            if (strlen (names[k]) == len && memcmp (names[k], b, len) == 0) {
                s_say (err, err_size, "output '%.*s' is named twice", (int) len, b);
                goto fail;
            }
        names[count] = strndup (b, len);
        if (!names[count]) {
            s_say (err, err_size, "out of memory");
            goto fail;
        }
        count++;
        start = stop + 1;
    }
    *names_p = names;
    *count_p = count;
    return 0;
fail:
    pm_command_names_free (names, count);
    return -1;
}

/* ---- the template ------------------------------------------------------------ */

static int
s_add_part (pm_command_t *self, char *text, size_t param, size_t *capacity)
{
    if (self->nparts == *capacity) {
        size_t grown = *capacity ? 2 * *capacity : 8;
        s_part_t *parts = realloc (self->parts, grown * sizeof *parts);
        if (!parts) {
            free (text);
            return -1;
        }
        self->parts = parts;
        *capacity = grown;
    }
    self->parts[self->nparts].text = text;
    self->parts[self->nparts].param = param;
    self->nparts++;
    return 0;
}

/* Flush the literal collected in lit[0..*len) as a part. */
static int
s_flush_literal (pm_command_t *self, const char *lit, size_t *len, size_t *capacity)
{
    if (*len == 0)
        return 0;
    char *text = strndup (lit, *len);
    if (!text)
        return -1;
    *len = 0;
    return s_add_part (self, text, 0, capacity);
}

static int
s_parse_template (pm_command_t *self, const char *tpl, const char *const *names, size_t nnames,
                  char *err, size_t err_size)
{
    size_t n = strlen (tpl), len = 0, capacity = 0;
    char *lit = malloc (n + 1);
    if (!lit) {
        s_say (err, err_size, "out of memory");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        char c = tpl[i];
        if ((c == '{' || c == '}') && i + 1 < n && tpl[i + 1] == c) {
            lit[len++] = c; /* {{ or }}: a literal brace */
            i += 2;
            continue;
        }
        if (c == '{' && i + 1 < n && (isalpha ((unsigned char) tpl[i + 1]) || tpl[i + 1] == '_')) {
            size_t j = i + 1;
            while (j < n && (isalnum ((unsigned char) tpl[j]) || tpl[j] == '_'))
                j++;
            if (j < n && tpl[j] == '}') {
                size_t name_len = j - i - 1, k = 0;
                while (k < nnames
                       && !(strlen (names[k]) == name_len
                            && memcmp (names[k], tpl + i + 1, name_len) == 0))
                    k++;
                if (k == nnames) {
                    char known[512] = "";
                    size_t used = 0;
                    for (size_t p = 0; p < nnames && used < sizeof known; p++)
                        used += (size_t) snprintf (known + used, sizeof known - used, "%s{%s}",
                                                   p ? ", " : "", names[p]);
                    s_say (err, err_size,
                           "unknown placeholder {%.*s} in the command (the parameters are %s; "
                           "write {{ and }} for literal braces)",
                           (int) name_len, tpl + i + 1, nnames ? known : "none");
                    rc = -1;
                    break;
                }
                if (s_flush_literal (self, lit, &len, &capacity) != 0
                    || s_add_part (self, NULL, k, &capacity) != 0) {
                    s_say (err, err_size, "out of memory");
                    rc = -1;
                    break;
                }
                i = j + 1;
                continue;
            }
        }
        lit[len++] = c;
        i++;
    }
    if (rc == 0 && s_flush_literal (self, lit, &len, &capacity) != 0) {
        s_say (err, err_size, "out of memory");
        rc = -1;
    }
    free (lit);
    return rc;
}

/* environ without the variables that would make a pm program in the
   command join this run's group. */
static char **
s_child_environment (void)
{
    static const char *drop[] = {"PM_RANK=", "PM_SIZE=", "PM_GROUP=", "PM_ENDPOINT="};
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = calloc (n + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool keep = true;
        for (size_t d = 0; d < sizeof drop / sizeof drop[0]; d++)
            if (strncmp (environ[i], drop[d], strlen (drop[d])) == 0)
                keep = false;
        if (!keep)
            continue;
        env[k] = strdup (environ[i]);
        if (!env[k]) {
            pm_command_names_free (env, k);
            return NULL;
        }
        k++;
    }
    return env;
}

pm_command_t *
pm_command_new (const char *template_text, const char *const *param_names, size_t nparams,
                const char *const *output_names, size_t noutputs, int64_t timeout_ms, char *err,
                size_t err_size)
{
    if (!template_text || !*template_text) {
        s_say (err, err_size, "the command is empty");
        return NULL;
    }
    if (timeout_ms < 0) {
        s_say (err, err_size, "the timeout must not be negative");
        return NULL;
    }
    pm_command_t *self = calloc (1, sizeof *self);
    if (!self) {
        s_say (err, err_size, "out of memory");
        return NULL;
    }
    self->nparams = nparams;
    self->timeout_ms = timeout_ms;
    if (s_parse_template (self, template_text, param_names, nparams, err, err_size) != 0)
        goto fail;
    if (noutputs) {
        self->outputs = calloc (noutputs, sizeof *self->outputs);
        if (!self->outputs)
            goto oom;
        for (size_t i = 0; i < noutputs; i++) {
            self->outputs[i] = strdup (output_names[i]);
            if (!self->outputs[i])
                goto oom;
            self->noutputs = i + 1;
        }
    }
    self->env = s_child_environment ();
    if (!self->env)
        goto oom;
    return self;
oom:
    s_say (err, err_size, "out of memory");
fail:
    pm_command_destroy (&self);
    return NULL;
}

void
pm_command_destroy (pm_command_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_command_t *self = *self_p;
    for (size_t i = 0; i < self->nparts; i++)
        free (self->parts[i].text);
    free (self->parts);
    pm_command_names_free (self->outputs, self->noutputs);
    if (self->env) {
        size_t n = 0;
        while (self->env[n])
            n++;
        pm_command_names_free (self->env, n);
    }
    free (self);
    *self_p = NULL;
}

char *
pm_command_line (const pm_command_t *self, const double *params)
{
    size_t size = 1;
    char number[64];
    for (size_t i = 0; i < self->nparts; i++)
        size += self->parts[i].text ? strlen (self->parts[i].text) : sizeof number;
    char *line = malloc (size), *at = line;
    if (!line)
        return NULL;
    for (size_t i = 0; i < self->nparts; i++) {
        const char *text = self->parts[i].text;
        if (!text) {
            snprintf (number, sizeof number, "%.17g", params[self->parts[i].param]);
            text = number;
        }
        size_t len = strlen (text);
        memcpy (at, text, len);
        at += len;
    }
    *at = '\0';
    return line;
}

/* ---- running the child --------------------------------------------------------- */

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A copy of fd at 3 or above (close-on-exec), so that the child's dup2 onto
   0 or 1 never meets it there; closes fd. */
static int
s_high_fd (int fd)
{
    if (fd >= 3)
        return fd;
    int high = fcntl (fd, F_DUPFD_CLOEXEC, 3);
    close (fd);
    return high;
}

/* Run line with /bin/sh -c; collect stdout into *out (NUL-terminated).
   Returns 0 if the command exited 0, else -1 with why.                    */
static int
s_run_line (pm_command_t *self, const char *line, char **out_p, size_t *out_len, char *why,
            size_t why_size)
{
    *out_p = NULL;
    *out_len = 0;
    int fds[2];
    if (pipe2 (fds, O_CLOEXEC) != 0) {
        s_say (why, why_size, "pipe: %s", strerror (errno));
        return -1;
    }
    fds[0] = s_high_fd (fds[0]);
    fds[1] = s_high_fd (fds[1]);
    if (fds[0] < 0 || fds[1] < 0) {
        s_say (why, why_size, "fcntl: %s", strerror (errno));
        if (fds[0] >= 0)
            close (fds[0]);
        if (fds[1] >= 0)
            close (fds[1]);
        return -1;
    }
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_addopen (&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2 (&actions, fds[1], 1);
    posix_spawnattr_init (&attr);
    sigset_t none, defaults;
    sigemptyset (&none);
    sigemptyset (&defaults);
    int reset[] = {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++)
        sigaddset (&defaults, reset[i]);
    posix_spawnattr_setsigmask (&attr, &none);
    posix_spawnattr_setsigdefault (&attr, &defaults);
    posix_spawnattr_setpgroup (&attr, 0); /* a process group of its own */
    posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK
                                         | POSIX_SPAWN_SETSIGDEF);
    char *argv[] = {"sh", "-c", (char *) line, NULL};
    pid_t pid;
    int spawn_rc = posix_spawn (&pid, "/bin/sh", &actions, &attr, argv, self->env);
    posix_spawn_file_actions_destroy (&actions);
    posix_spawnattr_destroy (&attr);
    close (fds[1]);
    if (spawn_rc != 0) {
        close (fds[0]);
        s_say (why, why_size, "cannot start /bin/sh: %s", strerror (spawn_rc));
        return -1;
    }
    int pidfd = (int) syscall (SYS_pidfd_open, pid, 0); /* -1: fall back to EOF only */
    fcntl (fds[0], F_SETFL, fcntl (fds[0], F_GETFL) | O_NONBLOCK);

    int64_t deadline = self->timeout_ms > 0 ? s_now_ms () + self->timeout_ms : 0;
    size_t cap = 4096, len = 0;
    char *buf = malloc (cap + 1);
    int rc = 0;
    bool eof = false, exited = false, timed_out = false, too_long = false;
    if (!buf) {
        s_say (why, why_size, "out of memory");
        rc = -1;
    }
    /* Read until EOF, or until the child has exited and the pipe is
       drained: what the child wrote is in the pipe before it exits, and a
       background grandchild holding stdout open must not hold the row up. */
    while (rc == 0 && !eof && !exited) {
        int wait_ms = -1;
        if (deadline) {
            int64_t left = deadline - s_now_ms ();
            if (left <= 0) {
                timed_out = true;
                break;
            }
            wait_ms = left > 1000000 ? 1000000 : (int) left;
        }
        struct pollfd items[2] = {{.fd = fds[0], .events = POLLIN},
                                  {.fd = pidfd, .events = POLLIN}};
        int ready = poll (items, pidfd >= 0 ? 2 : 1, wait_ms);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            s_say (why, why_size, "poll: %s", strerror (errno));
            rc = -1;
            break;
        }
        if (ready == 0)
            continue; /* the deadline check above decides */
        if (pidfd >= 0 && items[1].revents)
            exited = true;
        for (;;) { /* drain the pipe */
            if (len == cap) {
                char *grown = realloc (buf, 2 * cap + 1);
                if (!grown) {
                    s_say (why, why_size, "out of memory");
                    rc = -1;
                    break;
                }
                buf = grown;
                cap *= 2;
            }
            ssize_t got = read (fds[0], buf + len, cap - len);
            if (got > 0) {
                len += (size_t) got;
                if (len > PM_COMMAND_MAX_OUTPUT) {
                    too_long = true;
                    break;
                }
                continue;
            }
            if (got == 0)
                eof = true;
            else if (errno == EINTR)
                continue;
            else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                s_say (why, why_size, "read: %s", strerror (errno));
                rc = -1;
            }
            break;
        }
        if (too_long)
            break;
    }
    close (fds[0]);
    if (timed_out || too_long || rc != 0)
        kill (-pid, SIGKILL); /* the whole group: sh and what it started */
    int status = 0;
    if (eof && !exited && deadline && !timed_out && !too_long && rc == 0) {
        /* stdout closed but the child may still run: wait up to the deadline. */
        for (long pause_us = 50; !timed_out;) {
            int64_t left = deadline - s_now_ms ();
            if (pidfd >= 0) {
                struct pollfd item = {.fd = pidfd, .events = POLLIN};
                int ready = left > 0 ? poll (&item, 1, left > 1000000 ? 1000000 : (int) left) : 0;
                if (ready < 0 && errno == EINTR)
                    continue;
                timed_out = ready == 0;
                break;
            }
            /* No pidfd (old kernel): poll waitpid with growing pauses. */
            pid_t done = waitpid (pid, &status, WNOHANG);
            if (done == pid) {
                exited = true;
                break;
            }
            if (done < 0 && errno != EINTR)
                break;
            if (left <= 0)
                timed_out = true;
            else {
                usleep ((useconds_t) pause_us);
                pause_us = pause_us < 10000 ? pause_us * 2 : pause_us;
            }
        }
        if (timed_out)
            kill (-pid, SIGKILL);
    }
    if (!(exited && pidfd < 0)) { /* not reaped above */
        pid_t reaped;
        while ((reaped = waitpid (pid, &status, 0)) < 0 && errno == EINTR)
            ;
        if (reaped < 0 && rc == 0) {
            s_say (why, why_size, "cannot learn the command's exit status: waitpid: %s",
                   strerror (errno));
            rc = -1;
        }
    }
    if (pidfd >= 0)
        close (pidfd);
    if (rc != 0) {
        free (buf);
        return -1;
    }
    if (timed_out) {
        s_say (why, why_size, "timed out after %lld ms (process group killed)",
               (long long) self->timeout_ms);
        free (buf);
        return -1;
    }
    if (too_long) {
        s_say (why, why_size, "printed more than %d bytes", PM_COMMAND_MAX_OUTPUT);
        free (buf);
        return -1;
    }
    if (WIFSIGNALED (status)) {
        s_say (why, why_size, "killed by signal %d (%s)", WTERMSIG (status),
               strsignal (WTERMSIG (status)));
        free (buf);
        return -1;
    }
    if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
        s_say (why, why_size, "exited with status %d", WEXITSTATUS (status));
        free (buf);
        return -1;
    }
    buf[len] = '\0';
    *out_p = buf;
    *out_len = len;
    return 0;
}

/* ---- parsing the output ------------------------------------------------------------ */

static bool
s_expected (const pm_command_t *self, const char *name, size_t len)
{
    for (size_t i = 0; i < self->noutputs; i++)
        if (strlen (self->outputs[i]) == len && memcmp (self->outputs[i], name, len) == 0)
            return true;
    return false;
}

static int
s_pairs_add (s_pairs_t *pairs, const char *name, size_t len, double value)
{
    for (size_t i = 0; i < pairs->count; i++)
        if (strlen (pairs->pairs[i].name) == len && memcmp (pairs->pairs[i].name, name, len) == 0) {
            pairs->pairs[i].value = value; /* the last one wins */
            return 0;
        }
    if (pairs->count == pairs->capacity) {
        size_t grown = pairs->capacity ? 2 * pairs->capacity : 8;
        s_pair_t *more = realloc (pairs->pairs, grown * sizeof *more);
        if (!more)
            return -1;
        pairs->pairs = more;
        pairs->capacity = grown;
    }
    memcpy (pairs->pairs[pairs->count].name, name, len);
    pairs->pairs[pairs->count].name[len] = '\0';
    pairs->pairs[pairs->count].value = value;
    pairs->count++;
    return 0;
}

/* Whole [b, e) as a double (strtod syntax, nan and inf allowed). */
static bool
s_number (const char *b, const char *e, double *value)
{
    char text[128];
    size_t len = (size_t) (e - b);
    if (len == 0 || len >= sizeof text)
        return false;
    memcpy (text, b, len);
    text[len] = '\0';
    char *stop = NULL;
    double parsed = strtod (text, &stop);
    if (stop != text + len)
        return false;
    *value = parsed;
    return true;
}

static int
s_parse_lines (const pm_command_t *self, const char *text, size_t len, s_pairs_t *pairs,
               char *why, size_t why_size)
{
    const char *end = text + len;
    for (const char *line = text; line < end;) {
        const char *eol = memchr (line, '\n', (size_t) (end - line));
        if (!eol)
            eol = end;
        const char *eq = memchr (line, '=', (size_t) (eol - line));
        if (eq) {
            const char *nb = line, *ne = eq, *vb = eq + 1, *ve = eol;
            while (nb < ne && isspace ((unsigned char) *nb))
                nb++;
            while (ne > nb && isspace ((unsigned char) ne[-1]))
                ne--;
            while (vb < ve && isspace ((unsigned char) *vb))
                vb++;
            while (ve > vb && isspace ((unsigned char) ve[-1]))
                ve--;
            size_t nlen = (size_t) (ne - nb);
            double value;
            if (pm_command_is_output_name (nb, nlen)) {
                if (s_number (vb, ve, &value)) {
                    if (s_pairs_add (pairs, nb, nlen, value) != 0) {
                        s_say (why, why_size, "out of memory");
                        return -1;
                    }
                }
                else if (s_expected (self, nb, nlen)) {
                    s_say (why, why_size, "output '%.*s' has the value '%.*s', not a number",
                           (int) nlen, nb, (int) (ve - vb > 40 ? 40 : ve - vb), vb);
                    return -1;
                }
            }
        }
        line = eol + 1;
    }
    return 0;
}

/* A tiny JSON reader: one object; members that are numbers (or null,
   NaN, Infinity as Python writes them) become pairs. */
typedef struct {
    const char *at, *end;
} s_json_t;

static void
s_json_space (s_json_t *j)
{
    while (j->at < j->end && (*j->at == ' ' || *j->at == '\t' || *j->at == '\n' || *j->at == '\r'))
        j->at++;
}

static bool
s_json_literal (s_json_t *j, const char *word)
{
    size_t n = strlen (word);
    if ((size_t) (j->end - j->at) >= n && memcmp (j->at, word, n) == 0) {
        j->at += n;
        return true;
    }
    return false;
}

/* A string into out (at most out_size - 1 bytes kept, the rest counted in
   *len so the caller can tell it was too long). */
static bool
s_json_string (s_json_t *j, char *out, size_t out_size, size_t *len)
{
    *len = 0;
    if (j->at >= j->end || *j->at != '"')
        return false;
    j->at++;
    while (j->at < j->end && *j->at != '"') {
        unsigned char c = (unsigned char) *j->at++;
        unsigned long code = c;
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (j->at >= j->end)
                return false;
            char e = *j->at++;
            switch (e) {
            case '"': case '\\': case '/': code = (unsigned char) e; break;
            case 'b': code = '\b'; break;
            case 'f': code = '\f'; break;
            case 'n': code = '\n'; break;
            case 'r': code = '\r'; break;
            case 't': code = '\t'; break;
            case 'u': {
                if (j->end - j->at < 4)
                    return false;
                char hex[5] = {j->at[0], j->at[1], j->at[2], j->at[3], 0};
                for (int i = 0; i < 4; i++)
                    if (!isxdigit ((unsigned char) hex[i]))
                        return false;
                code = strtoul (hex, NULL, 16);
                j->at += 4;
                break;
            }
            default: return false;
            }
        }
        /* Keys are compared as bytes; a \u escape outside ASCII can never
           match a valid output name, so a placeholder byte is enough. */
        if (*len + 1 < out_size)
            out[*len] = code < 0x80 ? (char) code : '?';
        (*len)++;
    }
    if (j->at >= j->end)
        return false;
    j->at++;
    if (out_size)
        out[*len < out_size ? *len : out_size - 1] = '\0';
    return true;
}

/* A number token (or NaN / Infinity / -Infinity / null); false if the
   value is something else (j->at unchanged then). */
static bool
s_json_number (s_json_t *j, double *value)
{
    if (s_json_literal (j, "null") || s_json_literal (j, "NaN")) {
        *value = NAN;
        return true;
    }
    if (s_json_literal (j, "Infinity")) {
        *value = INFINITY;
        return true;
    }
    if (s_json_literal (j, "-Infinity")) {
        *value = -INFINITY;
        return true;
    }
    const char *b = j->at, *e = b;
    while (e < j->end && (isdigit ((unsigned char) *e) || *e == '-' || *e == '+' || *e == '.'
                          || *e == 'e' || *e == 'E'))
        e++;
    if (e == b || !(isdigit ((unsigned char) *b) || *b == '-'))
        return false;
    if (!s_number (b, e, value))
        return false;
    j->at = e;
    return true;
}

/* Skip any value (depth-limited). */
static bool
s_json_skip (s_json_t *j, int depth)
{
    if (depth > 32)
        return false;
    s_json_space (j);
    if (j->at >= j->end)
        return false;
    char c = *j->at;
    if (c == '"') {
        char scratch[1];
        size_t len;
        return s_json_string (j, scratch, sizeof scratch, &len);
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->at++;
        s_json_space (j);
        if (j->at < j->end && *j->at == close) {
            j->at++;
            return true;
        }
        for (;;) {
            if (c == '{') {
                char scratch[1];
                size_t len;
                s_json_space (j);
                if (!s_json_string (j, scratch, sizeof scratch, &len))
                    return false;
                s_json_space (j);
                if (j->at >= j->end || *j->at != ':')
                    return false;
                j->at++;
            }
            if (!s_json_skip (j, depth + 1))
                return false;
            s_json_space (j);
            if (j->at < j->end && *j->at == ',') {
                j->at++;
                continue;
            }
            if (j->at < j->end && *j->at == close) {
                j->at++;
                return true;
            }
            return false;
        }
    }
    if (s_json_literal (j, "true") || s_json_literal (j, "false"))
        return true;
    double ignored;
    return s_json_number (j, &ignored);
}

static int
s_parse_json (const pm_command_t *self, const char *text, size_t len, s_pairs_t *pairs,
              char *why, size_t why_size)
{
    s_json_t j = {text, text + len};
    s_json_space (&j);
    j.at++; /* the '{' the caller saw */
    s_json_space (&j);
    if (j.at < j.end && *j.at == '}')
        j.at++;
    else
        for (;;) {
            char name[PM_COMMAND_NAME_MAX + 2];
            size_t nlen;
            s_json_space (&j);
            if (!s_json_string (&j, name, sizeof name, &nlen))
                goto malformed;
            s_json_space (&j);
            if (j.at >= j.end || *j.at != ':')
                goto malformed;
            j.at++;
            s_json_space (&j);
            double value;
            bool valid_name = nlen < sizeof name && pm_command_is_output_name (name, nlen);
            if (s_json_number (&j, &value)) {
                if (valid_name && s_pairs_add (pairs, name, nlen, value) != 0) {
                    s_say (why, why_size, "out of memory");
                    return -1;
                }
            }
            else {
                const char *value_at = j.at;
                if (!s_json_skip (&j, 0))
                    goto malformed;
                if (valid_name && s_expected (self, name, nlen)) {
                    s_say (why, why_size, "output '%s' has the value %.*s, not a number", name,
                           (int) (j.at - value_at > 40 ? 40 : j.at - value_at), value_at);
                    return -1;
                }
            }
            s_json_space (&j);
            if (j.at < j.end && *j.at == ',') {
                j.at++;
                continue;
            }
            if (j.at < j.end && *j.at == '}') {
                j.at++;
                break;
            }
            goto malformed;
        }
    s_json_space (&j);
    if (j.at != j.end) {
        s_say (why, why_size, "unexpected text after the JSON object at byte %zu",
               (size_t) (j.at - text));
        return -1;
    }
    return 0;
malformed:
    s_say (why, why_size, "malformed JSON object at byte %zu", (size_t) (j.at - text));
    return -1;
}

/* Run one row and collect its name/value pairs. */
static int
s_run_pairs (pm_command_t *self, const double *params, s_pairs_t *pairs, char *why,
             size_t why_size)
{
    char *line = pm_command_line (self, params);
    if (!line) {
        s_say (why, why_size, "out of memory");
        return -1;
    }
    char *out = NULL;
    size_t len = 0;
    int rc = s_run_line (self, line, &out, &len, why, why_size);
    free (line);
    if (rc != 0)
        return -1;
    if (memchr (out, '\0', len)) {
        s_say (why, why_size, "the output contains a NUL byte");
        free (out);
        return -1;
    }
    const char *first = out;
    while (*first && isspace ((unsigned char) *first))
        first++;
    if (*first == '{')
        rc = s_parse_json (self, out, len, pairs, why, why_size);
    else
        rc = s_parse_lines (self, out, len, pairs, why, why_size);
    if (rc == 0 && pairs->count == 0) {
        s_say (why, why_size,
               len ? "no outputs in what the command printed (expected name=value lines or a "
                     "JSON object of numbers)"
                   : "the command printed nothing");
        rc = -1;
    }
    free (out);
    return rc;
}

int
pm_command_run (pm_command_t *self, const double *params, double *outputs, char *why,
                size_t why_size)
{
    for (size_t i = 0; i < self->noutputs; i++)
        outputs[i] = NAN;
    s_pairs_t pairs = {0};
    int rc = s_run_pairs (self, params, &pairs, why, why_size);
    if (rc == 0) {
        size_t found = 0, ignored = 0;
        for (size_t p = 0; p < pairs.count; p++) {
            size_t i = 0;
            while (i < self->noutputs && strcmp (self->outputs[i], pairs.pairs[p].name) != 0)
                i++;
            if (i < self->noutputs) {
                outputs[i] = pairs.pairs[p].value;
                found++;
            }
            else {
                ignored++;
                if (!self->told_ignored)
                    pm_debug ("PM5002", "command printed output '%s', which is not an expected "
                                        "output: ignored (said once per rank)",
                              pairs.pairs[p].name);
            }
        }
        if (ignored)
            self->told_ignored = true;
        if (found == 0 && self->noutputs > 0) {
            s_say (why, why_size, "none of the expected outputs (%s%s) in what the command printed",
                   self->outputs[0], self->noutputs > 1 ? ", ..." : "");
            rc = -1;
            for (size_t i = 0; i < self->noutputs; i++)
                outputs[i] = NAN;
        }
    }
    free (pairs.pairs);
    return rc == 0 ? 0 : 1;
}

int
pm_command_discover (pm_command_t *self, const double *params, char ***names_p, size_t *count_p,
                     char *why, size_t why_size)
{
    *names_p = NULL;
    *count_p = 0;
    s_pairs_t pairs = {0};
    int rc = s_run_pairs (self, params, &pairs, why, why_size);
    if (rc == 0) {
        char **names = calloc (pairs.count, sizeof *names);
        if (!names)
            rc = -1;
        for (size_t i = 0; names && i < pairs.count; i++) {
            names[i] = strdup (pairs.pairs[i].name);
            if (!names[i]) {
                pm_command_names_free (names, i);
                names = NULL;
                rc = -1;
            }
        }
        if (rc != 0)
            s_say (why, why_size, "out of memory");
        else {
            *names_p = names;
            *count_p = pairs.count;
        }
    }
    free (pairs.pairs);
    return rc;
}

/* ---- the pm_model_t adapter ------------------------------------------------------------- */

typedef struct {
    pm_command_t *command;
    size_t failures; /* rows that failed on this rank */
} s_state_t;

/* Rows whose failure is logged as a warning on each rank; later ones at info. */
#define S_WARN_FAILURES 3

static void *
s_build (const pm_model_args_t *args, char *err, size_t err_size)
{
    const char *command = pm_model_arg (args, "command", NULL);
    const char *params = pm_model_arg (args, "params", NULL);
    const char *outputs = pm_model_arg (args, "outputs", NULL);
    const char *timeout = pm_model_arg (args, "timeout_ms", "0");
    if (!command || !params || !outputs) {
        s_say (err, err_size, "the command model needs the build arguments command, params and "
                              "outputs");
        return NULL;
    }
    char *end = NULL;
    errno = 0;
    long long timeout_ms = strtoll (timeout, &end, 10);
    if (errno || *end || timeout_ms < 0) {
        s_say (err, err_size, "timeout_ms='%s' is not a number of milliseconds", timeout);
        return NULL;
    }
    char **pnames = NULL, **onames = NULL;
    size_t np = 0, no = 0;
    s_state_t *state = NULL;
    if (pm_command_split_names (params, &pnames, &np, err, err_size) != 0)
        goto done;
    if (pm_command_split_names (outputs, &onames, &no, err, err_size) != 0)
        goto done;
    state = calloc (1, sizeof *state);
    if (!state) {
        s_say (err, err_size, "out of memory");
        goto done;
    }
    state->command = pm_command_new (command, (const char *const *) pnames, np,
                                     (const char *const *) onames, no, (int64_t) timeout_ms, err,
                                     err_size);
    if (!state->command) {
        free (state);
        state = NULL;
    }
done:
    pm_command_names_free (pnames, np);
    pm_command_names_free (onames, no);
    return state;
}

static size_t
s_output_names (void *state_, const char *const **names)
{
    s_state_t *state = state_;
    *names = (const char *const *) state->command->outputs;
    return state->command->noutputs;
}

static int
s_execute (void *state_, const double *params, size_t nparams, double *outputs, size_t noutputs)
{
    s_state_t *state = state_;
    if (nparams != state->command->nparams || noutputs != state->command->noutputs)
        return 1;
    char why[512] = "";
    int rc = pm_command_run (state->command, params, outputs, why, sizeof why);
    if (rc != 0) {
        state->failures++;
        char *line = pm_command_line (state->command, params);
        if (state->failures <= S_WARN_FAILURES)
            pm_warn ("PM5001", "row failed: %s: %s%s", line ? line : "?", why,
                     state->failures == S_WARN_FAILURES
                         ? " (further failures on this rank are logged at info level)"
                         : "");
        else
            pm_info ("PM5001", "row failed: %s: %s", line ? line : "?", why);
        free (line);
    }
    return rc;
}

static void
s_destroy (void *state_)
{
    s_state_t *state = state_;
    if (!state)
        return;
    pm_command_destroy (&state->command);
    free (state);
}

pm_model_t *
pm_command_model_new (void)
{
    return pm_model_new (s_build, s_output_names, s_execute, s_destroy);
}
