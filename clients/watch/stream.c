/* stream.c - the viewer's stream for onair-watch (stream.h).
 *
 * Offers H.264 and VP8 video and Opus audio (the server answers with the
 * live's codec, or waits until the live is on air), each content with its
 * own SDES key and a local port pair.  On session-accept it writes an SDP
 * (RTP/SAVP with the server's keys in a=crypto, so ffmpeg's RTP demuxer
 * authenticates and decrypts with libavformat's SRTP) into a private file,
 * and runs ffmpeg on it: copying the stream into the output file, to stdout
 * as MPEG-TS, or into a player's stdin.  A session-terminate (the live
 * ended) makes ffmpeg finish its output; the stream is then asked for again,
 * and the server accepts it if the broadcaster comes back on air within the
 * watching window (the next part of the output).
 */
#include "stream.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "datetime.h"

/* The start of "this live can be watched from <time> to <time>", or 0. */
static int64_t window_opens(const stanza_error *e)
{
    const char *at = strstr(e->text, "watched from ");
    char buf[DATETIME_MAX];
    int64_t t;
    if (strcmp(e->condition, "not-allowed") != 0 || !at || sscanf(at + 13, "%31s", buf) != 1 ||
        datetime_parse(buf, &t, NULL) != 0)
        return 0;
    return t;
}

static int initiate(watch_stream *w, const char *progname)
{
    static const jingle_codec h264 = {96, "H264", 90000, 0, "packetization-mode=1"};
    static const jingle_codec vp8 = {97, "VP8", 90000, 0, NULL};
    static const jingle_codec opus = {111, "opus", 48000, 2, NULL};
    jingle_session *s = &w->s;
    memset(s, 0, sizeof *s);
    s->content[0] = (jingle_content){.media = "video", .offer = {h264, vp8}, .noffer = 2};
    s->content[1] = (jingle_content){.media = "audio", .offer = {opus}, .noffer = 1};
    s->ncontent = 2;
    int rc = jingle_prepare(s, w->c, w->endpoint, false, w->toward, progname);
    if (rc == EXIT_OK)
        rc = jingle_initiate(s, "watch", w->password, progname);
    return rc;
}

int watch_stream_start(watch_stream *w, client *c, const char *endpoint, const char *toward_host,
                       const char *password, void (*say)(const char *line), const char *progname)
{
    w->c = c;
    snprintf(w->endpoint, sizeof w->endpoint, "%s", endpoint);
    snprintf(w->toward, sizeof w->toward, "%s", toward_host);
    w->password = password;
    int rc = initiate(w, progname);
    if (rc == EXIT_REFUSED && (w->retry_at = window_opens(&w->s.error)) > time(NULL)) {
        char when[DATETIME_MAX], line[128];
        snprintf(line, sizeof line, "*** The stream can be watched from %s: asking again then",
                 datetime_format(w->retry_at, when));
        say(line);
        w->s.c = NULL;
        return EXIT_OK;
    }
    w->retry_at = 0;
    if (rc == EXIT_REFUSED)
        jingle_print_refusal(&w->s, progname);
    return rc;
}

/* The SDP, in a private file: it holds the server's keys of this session. */
static int write_sdp(watch_stream *w)
{
    const char *dir = getenv("TMPDIR");
    snprintf(w->sdp_path, sizeof w->sdp_path, "%s/onair-watch-XXXXXX.sdp", dir && *dir ? dir : "/tmp");
    int fd = mkstemps(w->sdp_path, 4);
    if (fd < 0) {
        w->sdp_path[0] = '\0';
        return -1;
    }
    int rc = media_sdp_write(&w->s, fd);
    close(fd);
    return rc;
}

/* Where part w->part goes: FILE, then FILE-2.ext, FILE-3.ext ... */
static const char *part_output(watch_stream *w)
{
    if (w->part <= 1 || strcmp(w->output, "-") == 0)
        return w->output;
    const char *slash = strrchr(w->output, '/');
    const char *dot = strrchr(w->output, '.');
    if (!dot || (slash && dot < slash) || dot == (slash ? slash + 1 : w->output))
        dot = w->output + strlen(w->output);
    snprintf(w->part_output, sizeof w->part_output, "%.*s-%d%s", (int)(dot - w->output), w->output, w->part, dot);
    return w->part_output;
}

static void start_receiving(watch_stream *w, void (*say)(const char *line))
{
    char line[512];
    if (w->part < 1)
        w->part = 1;
    if (write_sdp(w) != 0) {
        say("!!! the stream cannot be received: no temporary file for its description");
        w->failed = true;
        return;
    }
    argv_list a = {0};
    argv_push(&a, w->ffmpeg);
    argv_push(&a, "-hide_banner");
    argv_push(&a, "-nostdin");
    argv_push(&a, "-loglevel");
    argv_push(&a, w->verbose ? "error" : "fatal");
    argv_push(&a, "-protocol_whitelist");
    argv_push(&a, "file,udp,rtp,srtp,crypto");
    argv_push(&a, "-i");
    argv_push(&a, w->sdp_path);
    argv_push(&a, "-map");
    argv_push(&a, "0");
    argv_push(&a, "-c");
    argv_push(&a, "copy");
    int out_fd = -1, pipefd[2] = {-1, -1};
    if (w->player) {
        if (pipe2(pipefd, O_CLOEXEC) != 0) {
            say("!!! the stream cannot be received: no pipe to the player");
            w->failed = true;
            argv_free(&a);
            return;
        }
        char *const sh[] = {"/bin/sh", "-c", (char *)w->player, NULL};
        if (media_proc_start(&w->play, sh, pipefd[0], -1, "onair-watch") != 0)
            w->failed = true;
        out_fd = pipefd[1];
    } else if (strcmp(w->output, "-") == 0) {
        out_fd = w->stdout_fd;
    }
    if (out_fd >= 0) {
        argv_push(&a, "-f");
        argv_push(&a, "mpegts");
        argv_push(&a, "pipe:1");
    } else {
        argv_push(&a, "-y");
        argv_push(&a, part_output(w));
    }
    if (!w->failed && !a.failed && media_proc_start(&w->ff, a.v, -1, out_fd, "onair-watch") == 0) {
        w->receiving = true;
        const jingle_content *v = &w->s.content[0], *au = &w->s.content[1];
        snprintf(line, sizeof line, "*** Receiving the stream (%s%s%s) into %s", v->accepted ? v->chosen.name : "",
                 v->accepted && au->accepted ? ", " : "", au->accepted ? au->chosen.name : "",
                 w->player ? w->player : strcmp(w->output, "-") == 0 ? "stdout" : part_output(w));
        say(line);
    } else {
        w->failed = true;
    }
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    argv_free(&a);
}

/* ffmpeg finishes its output, the player reads to its end; the SDP goes. */
static void stop_receiving(watch_stream *w)
{
    if (w->ff.pid) {
        media_proc_stop(&w->ff, 5000);
        if (!media_proc_ok(&w->ff))
            w->failed = true;
    }
    if (w->play.pid) {
        /* the player reads to the end of what ffmpeg wrote, then ends */
        for (int i = 0; i < 250 && !media_proc_poll(&w->play); i++)
            usleep(20000);
        media_proc_stop(&w->play, 2000);
    }
    w->ff = (media_proc){0};
    w->play = (media_proc){0};
    if (w->sdp_path[0])
        unlink(w->sdp_path);
    w->sdp_path[0] = '\0';
    w->receiving = false;
}

void watch_stream_poll(watch_stream *w, void (*say)(const char *line))
{
    char line[512], d[64];
    if (w->over || w->failed)
        return;
    if (w->retry_at) {
        if (time(NULL) < w->retry_at)
            return;
        w->retry_at = 0;
        int rc = initiate(w, "onair-watch");
        if (rc != EXIT_OK) {
            snprintf(line, sizeof line, "!!! the stream was refused: %.400s (%s)",
                     w->s.error.text[0] ? w->s.error.text : w->s.error.condition, w->s.error.condition);
            say(line);
            w->failed = true;
            w->s.c = NULL;
            return;
        }
    }
    if (w->s.accepted && !w->receiving && !w->s.terminated) {
        bool any = false;
        for (int i = 0; i < w->s.ncontent; i++)
            any = any || w->s.content[i].accepted;
        if (!any) {
            say("!!! the server's answer for the stream is unusable");
            w->failed = true;
            jingle_terminate(&w->s, "failed-application", "no usable content");
            return;
        }
        start_receiving(w, say);
    }
    if (w->s.terminated) {
        bool was_received = w->receiving;
        stop_receiving(w);
        snprintf(line, sizeof line, "*** The stream ended: %s", w->s.reason_text[0] ? w->s.reason_text : w->s.reason);
        say(line);
        if (!was_received || w->failed || strcmp(w->s.reason, "success") != 0) {
            w->over = true;
            return;
        }
        /* Held by the server until the broadcaster is back on air; refused
         * (or ended again, never received) once the window has closed. */
        if (initiate(w, "onair-watch") != EXIT_OK) {
            snprintf(line, sizeof line, "*** The stream is over: %.400s",
                     w->s.error.text[0] ? w->s.error.text : w->s.error.condition);
            say(line);
            w->over = true;
            w->s.c = NULL;
            return;
        }
        w->part++;
        say("*** Waiting for the live to come back on air");
        return;
    }
    if (w->receiving && media_proc_poll(&w->ff)) {
        snprintf(line, sizeof line, "!!! the stream's receiver (ffmpeg) %s", media_proc_describe(&w->ff, d, sizeof d));
        say(line);
        w->failed = !media_proc_ok(&w->ff);
        jingle_terminate(&w->s, "failed-application", "the receiver stopped");
        w->over = true;
    }
}

void watch_stream_stop(watch_stream *w)
{
    if (w->s.c && !w->s.terminated)
        jingle_terminate(&w->s, "success", NULL);
    stop_receiving(w);
}
