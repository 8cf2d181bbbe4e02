/* proc_stat.c - a process's CPU time from /proc/PID/stat, for the
 * benchmark tools (onair-bench, onair-media-bench). */
#include "proc_stat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long read_cpu_ticks(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name, which is in parentheses and may hold
     * spaces: state is field 3, utime 14, stime 15. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p++;
    long utime = -1, stime = -1;
    for (int field = 3; field <= 15 && *p; field++) {
        while (*p == ' ')
            p++;
        if (field == 14)
            utime = strtol(p, NULL, 10);
        if (field == 15)
            stime = strtol(p, NULL, 10);
        while (*p && *p != ' ')
            p++;
    }
    return utime >= 0 && stime >= 0 ? utime + stime : -1;
}
