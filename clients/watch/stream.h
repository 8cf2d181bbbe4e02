/* stream.h - onair-watch's stream: a viewer's Jingle session to the live's
 * media endpoint and the ffmpeg that receives it (specs/media.md). */
#ifndef ONAIR_WATCH_STREAM_H
#define ONAIR_WATCH_STREAM_H

#include "jingle.h"
#include "media_proc.h"

typedef struct watch_stream {
    const char *output;     /* a file, or "-" for stdout; NULL with a player */
    const char *player;     /* a shell command that reads the stream on its stdin */
    const char *ffmpeg;
    bool verbose;           /* ffmpeg's errors shown (else only fatal ones: a receiver that
                               joins mid-stream reports the frames before its first keyframe) */
    int stdout_fd;          /* the real stdout, for "-" */
    jingle_session s;
    media_proc ff, play;
    char sdp_path[256];
    bool receiving;         /* ffmpeg started */
    int part;               /* 1, then 2, 3 ... each time the live comes back on air */
    char part_output[512];  /* FILE for part 1, FILE-<part> (before the extension) later */
    bool over;              /* the session ended (either side) */
    bool failed;            /* ffmpeg or the negotiation failed */
    /* before the live's watching window opens: asked again then */
    client *c;
    char endpoint[512], toward[256];
    const char *password;
    int64_t retry_at;
} watch_stream;

/* Asks for the stream of the live whose endpoint is given (as a viewer;
 * password for <watch/> or NULL, borrowed for the stream's life).  A live
 * whose watching window is not open yet is asked again when it opens.
 * EXIT_OK, or the exit code after printing why. */
int watch_stream_start(watch_stream *w, client *c, const char *endpoint, const char *toward_host,
                       const char *password, void (*say)(const char *line), const char *progname);

/* One turn of the client's loop: starts ffmpeg when the server accepted,
 * stops it when the session ended, notices when it failed.  When a live that
 * was received ends, asks for the stream again: the server holds the new
 * session until the broadcaster is back on air (the next part, into
 * FILE-2.ext, FILE-3.ext ..., or the same stdout, or a new player), or ends
 * it when the watching window closes.  say prints a line for the viewer. */
void watch_stream_poll(watch_stream *w, void (*say)(const char *line));

/* Ends the session (if still on) and ffmpeg, removes the SDP file. */
void watch_stream_stop(watch_stream *w);

#endif
