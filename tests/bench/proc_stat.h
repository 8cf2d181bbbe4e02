/* proc_stat.h - a process's CPU time from /proc/PID/stat (proc_stat.c),
 * shared by the benchmark tools. */
#ifndef ONAIR_BENCH_PROC_STAT_H
#define ONAIR_BENCH_PROC_STAT_H

long read_cpu_ticks(long pid); /* utime+stime of a process in clock ticks, -1 if unknown */

#endif
