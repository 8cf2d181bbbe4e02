/* media_proc.h - ffmpeg (or a player) as a child process of a client, and
 * the SDP that tells ffmpeg how to receive a negotiated SRTP session.
 */
#ifndef ONAIR_MEDIA_PROC_H
#define ONAIR_MEDIA_PROC_H

#include <stdbool.h>
#include <sys/types.h>

#include "jingle.h"

/* A growing argv (strings owned by it). */
typedef struct argv_list {
    char **v;
    int n, cap;
    bool failed; /* out of memory at some push */
} argv_list;

void argv_push(argv_list *a, const char *s);
void argv_pushf(argv_list *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void argv_free(argv_list *a);

typedef struct media_proc {
    pid_t pid;     /* 0: none */
    bool exited;
    bool stopped;  /* we asked it to stop */
    int status;    /* waitpid status once exited */
} media_proc;

/* Starts argv (searched in PATH); stdin from stdin_fd (-1: /dev/null),
 * stdout to stdout_fd (-1: inherited), stderr inherited.  Returns 0, or -1
 * after printing why. */
int media_proc_start(media_proc *p, char *const argv[], int stdin_fd, int stdout_fd, const char *progname);
/* True once the process has exited (reaped). */
bool media_proc_poll(media_proc *p);
/* Asks it to finish (SIGINT: ffmpeg closes its output properly), waits up to
 * timeout_ms, then kills it. */
void media_proc_stop(media_proc *p, int timeout_ms);
/* It ended by itself with status 0, or on our request. */
bool media_proc_ok(const media_proc *p);
/* "exited with status N" / "killed by signal N". */
const char *media_proc_describe(const media_proc *p, char *buf, size_t len);

/* Writes an SDP describing the accepted contents of a viewer session
 * (RTP/SAVP on the local ports, a=crypto with the server's keys) to fd.
 * Returns 0 or -1. */
int media_sdp_write(const jingle_session *s, int fd);

#endif
