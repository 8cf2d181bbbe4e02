/* media_proc.c - child processes and SDP for the clients' streams
 * (media_proc.h). */
#include "media_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void argv_push(argv_list *a, const char *s)
{
    if (a->n + 2 > a->cap) {
        int cap = a->cap ? a->cap * 2 : 32;
        char **v = realloc(a->v, (size_t)cap * sizeof *v);
        if (!v) {
            a->failed = true;
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    if (!(a->v[a->n] = strdup(s))) {
        a->failed = true;
        return;
    }
    a->v[++a->n] = NULL;
}

void argv_pushf(argv_list *a, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    argv_push(a, buf);
}

void argv_free(argv_list *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    memset(a, 0, sizeof *a);
}

int media_proc_start(media_proc *p, char *const argv[], int stdin_fd, int stdout_fd, const char *progname)
{
    memset(p, 0, sizeof *p);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "%s: cannot start %s: %s\n", progname, argv[0], strerror(errno));
        if (devnull >= 0)
            close(devnull);
        return -1;
    }
    if (pid == 0) {
        /* the child: its own process group, so a terminal's Ctrl-C reaches
         * the client, which stops it in order */
        setpgid(0, 0);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        if (stdin_fd >= 0)
            dup2(stdin_fd, STDIN_FILENO);
        else if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        if (stdout_fd >= 0)
            dup2(stdout_fd, STDOUT_FILENO);
        execvp(argv[0], argv);
        fprintf(stderr, "%s: cannot run %s: %s\n", progname, argv[0], strerror(errno));
        _exit(127);
    }
    if (devnull >= 0)
        close(devnull);
    p->pid = pid;
    return 0;
}

bool media_proc_poll(media_proc *p)
{
    if (!p->pid || p->exited)
        return p->exited;
    int st;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid) {
        p->exited = true;
        p->status = st;
    }
    return p->exited;
}

void media_proc_stop(media_proc *p, int timeout_ms)
{
    if (!p->pid || media_proc_poll(p))
        return;
    p->stopped = true;
    /* ffmpeg, once running, takes the first SIGINT between two packets; a
     * receiver whose input went quiet needs the second one to leave its read
     * (it still writes the end of its output); a third would make it quit
     * on the spot */
    kill(p->pid, SIGINT);
    struct timespec step = {0, 20 * 1000000L};
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        if (media_proc_poll(p))
            return;
        if (waited == 300)
            kill(p->pid, SIGINT);
        nanosleep(&step, NULL);
    }
    kill(p->pid, SIGKILL);
    int st;
    if (waitpid(p->pid, &st, 0) == p->pid) {
        p->exited = true;
        p->status = st;
    }
}

bool media_proc_ok(const media_proc *p)
{
    if (!p->pid)
        return true;
    if (p->stopped)
        return true;
    return p->exited && WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0;
}

const char *media_proc_describe(const media_proc *p, char *buf, size_t len)
{
    if (!p->exited)
        snprintf(buf, len, "still running");
    else if (WIFEXITED(p->status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(p->status));
    else if (WIFSIGNALED(p->status))
        snprintf(buf, len, "killed by signal %d", WTERMSIG(p->status));
    else
        snprintf(buf, len, "ended");
    return buf;
}

int media_sdp_write(const jingle_session *s, int fd)
{
    const char *ipv = strchr(s->local_ip, ':') ? "IP6" : "IP4";
    FILE *f = fdopen(dup(fd), "w");
    if (!f)
        return -1;
    fprintf(f, "v=0\r\no=- 0 0 IN %s %s\r\ns=onair\r\nc=IN %s %s\r\nt=0 0\r\n", ipv, s->local_ip, ipv, s->local_ip);
    for (int i = 0; i < s->ncontent; i++) {
        const jingle_content *ct = &s->content[i];
        if (!ct->accepted)
            continue;
        fprintf(f, "m=%s %d RTP/SAVP %d\r\n", ct->media, ct->local_port, ct->chosen.pt);
        if (ct->chosen.channels > 1)
            fprintf(f, "a=rtpmap:%d %s/%d/%d\r\n", ct->chosen.pt, ct->chosen.name, ct->chosen.clockrate,
                    ct->chosen.channels);
        else
            fprintf(f, "a=rtpmap:%d %s/%d\r\n", ct->chosen.pt, ct->chosen.name, ct->chosen.clockrate);
        if (ct->chosen.fmtp)
            fprintf(f, "a=fmtp:%d %s\r\n", ct->chosen.pt, ct->chosen.fmtp);
        fprintf(f, "a=crypto:1 " JINGLE_SUITE " inline:%s\r\n", ct->remote_key);
        fprintf(f, "a=recvonly\r\n");
    }
    return fclose(f) == 0 ? 0 : -1;
}
