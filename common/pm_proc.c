/*  pm_proc.c — process identity and pidfd watching (Linux).  */
#include "pm_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void
s_read_boot_id (char *out, size_t size)
{
    out[0] = '\0';
    FILE *f = fopen ("/proc/sys/kernel/random/boot_id", "r");
    if (!f)
        return;
    if (fgets (out, (int) size, f))
        out[strcspn (out, "\n")] = '\0';
    fclose (f);
}

uint64_t
pm_proc_starttime (pid_t pid)
{
    char path[64], buf[1024];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return 0;
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf[n] = '\0';
    /* The command name may hold spaces and parens: fields start after the last ')'. */
    char *p = strrchr (buf, ')');
    if (!p)
        return 0;
    p++;
    /* After ')' come fields 3.. ; starttime is field 22, i.e. the 20th token here. */
    unsigned long long value = 0;
    char *save = NULL;
    char *tok = strtok_r (p, " ", &save);
    for (int field = 3; tok; field++, tok = strtok_r (NULL, " ", &save)) {
        if (field == 22) {
            value = strtoull (tok, NULL, 10);
            break;
        }
    }
    return value;
}

void
pm_proc_self (pm_proc_id_t *id)
{
    memset (id, 0, sizeof *id);
    id->pid = getpid ();
    id->starttime = pm_proc_starttime (getpid ());
    s_read_boot_id (id->boot_id, sizeof id->boot_id);
}

int
pm_proc_watch (const pm_proc_id_t *id)
{
    char boot_id[40];
    s_read_boot_id (boot_id, sizeof boot_id);
    if (!boot_id[0] || strcmp (boot_id, id->boot_id) != 0 || id->pid <= 0 || id->pid > INT32_MAX)
        return -1;
    int fd = (int) syscall (SYS_pidfd_open, (pid_t) id->pid, 0);
    if (fd < 0)
        return -1;
    /* Check after opening, so a pid reused in between cannot slip through. */
    if (id->starttime == 0 || pm_proc_starttime ((pid_t) id->pid) != id->starttime) {
        close (fd);
        return -1;
    }
    fcntl (fd, F_SETFD, FD_CLOEXEC);
    return fd;
}
