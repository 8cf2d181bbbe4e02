/* live.c - onair-cast live: going on air with one command (specs/media.md).
 *
 * Reads the live's settings (its media endpoint and ingest window), offers a
 * Jingle session with its own SDES key for each content (H.264 video, Opus
 * audio), presenting the broadcast password in <broadcast/>, and on the
 * server's session-accept runs ffmpeg: it encodes the input (a file, a
 * capture device, or an ffmpeg test source) and sends SRTP protected with
 * those keys from the ports named in the offer.  The live ends when ffmpeg
 * ends (end of file, --duration), on Ctrl-C or SIGTERM (session-terminate
 * either way), or when the server terminates it (the window closed, the
 * live was cancelled, no media arrived, the server stops).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "cast.h"
#include "datetime.h"
#include "jingle.h"
#include "media_proc.h"
#include "prompt.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

typedef struct live_opts {
    const char *input;
    const char *audio_input;
    bool no_audio;
    const char *duration;
    const char *ffmpeg;
    const char *broadcast_file;
    bool wait_open;
    int video_kbps;
} live_opts;

enum { OPT_INPUT = 400, OPT_AUDIO_INPUT, OPT_NO_AUDIO, OPT_DURATION, OPT_FFMPEG, OPT_BCAST, OPT_WAIT, OPT_KBPS };

static void live_help(FILE *out)
{
    fputs("usage: " PROG " live [options] --input INPUT ID\n\n"
          "Goes on air for the reconfirmed live ID: negotiates the stream with the server (Jingle,\n"
          "SRTP with keys of its own) and runs ffmpeg to encode INPUT as H.264 (and Opus) and send\n"
          "it. Ends when the input ends, on Ctrl-C, or when the server ends the live (the ingest\n"
          "window closed). Streaming is allowed from 'ingest_open' to 'ingest_close' of the\n"
          "settings.\n\n"
          "  -i, --input INPUT     a media file, or FORMAT:SOURCE for an ffmpeg input device or\n"
          "                        source: lavfi:testsrc2 (a test pattern with a 440 Hz tone),\n"
          "                        v4l2:/dev/video0 (a camera), x11grab::0.0 (the screen)\n"
          "  --audio-input INPUT   the sound, when INPUT is a device (e.g. alsa:default,\n"
          "                        pulse:default); a file's own sound is used when it has some\n"
          "  --no-audio            video only\n"
          "  --duration SECONDS    stop after this long\n"
          "  --video-kbps N        the video bit rate (default: 70% of the channel's bandwidth,\n"
          "                        at most 2500)\n"
          "  --wait                if the ingest window is not open yet, wait for it\n"
          "  --broadcast-password-file FILE   the live's broadcast password (first line; else\n"
          "                        ONAIR_BROADCAST_PASSWORD; else asked on the terminal)\n"
          "  --ffmpeg PATH         the ffmpeg to run (default: ffmpeg from PATH)\n",
          out);
}

static int live_option(int opt, const char *arg, void *ud)
{
    live_opts *l = ud;
    switch (opt) {
    case 'i':
    case OPT_INPUT:
        l->input = arg;
        return EXIT_OK;
    case OPT_AUDIO_INPUT:
        l->audio_input = arg;
        return EXIT_OK;
    case OPT_NO_AUDIO:
        l->no_audio = true;
        return EXIT_OK;
    case OPT_DURATION: {
        char *end;
        double d = strtod(arg, &end);
        if (!*arg || *end || d <= 0) {
            fprintf(stderr, PROG " live: --duration: a number of seconds, not '%s'\n", arg);
            return EXIT_USAGE;
        }
        l->duration = arg;
        return EXIT_OK;
    }
    case OPT_FFMPEG:
        l->ffmpeg = arg;
        return EXIT_OK;
    case OPT_BCAST:
        l->broadcast_file = arg;
        return EXIT_OK;
    case OPT_WAIT:
        l->wait_open = true;
        return EXIT_OK;
    case OPT_KBPS: {
        char *end;
        long v = strtol(arg, &end, 10);
        if (!*arg || *end || v < 50 || v > 100000) {
            fprintf(stderr, PROG " live: --video-kbps: from 50 to 100000, not '%s'\n", arg);
            return EXIT_USAGE;
        }
        l->video_kbps = (int)v;
        return EXIT_OK;
    }
    default:
        return EXIT_USAGE;
    }
}

/* ffmpeg input devices and sources that are "FORMAT:SOURCE"; anything else
 * is a file. */
static bool is_device(const char *input, size_t *fmt_len)
{
    static const char *const formats[] = {"lavfi", "v4l2", "video4linux2", "alsa", "pulse", "x11grab",
                                          "kmsgrab", "fbdev", "jack", "oss", "avfoundation", "dshow", NULL};
    const char *colon = strchr(input, ':');
    if (!colon)
        return false;
    for (size_t i = 0; formats[i]; i++)
        if (strlen(formats[i]) == (size_t)(colon - input) && strncmp(input, formats[i], (size_t)(colon - input)) == 0) {
            *fmt_len = (size_t)(colon - input);
            return true;
        }
    return false;
}

static void push_input(argv_list *a, const char *input, const char *duration)
{
    size_t n;
    if (is_device(input, &n)) {
        if (strncmp(input, "lavfi", n) == 0)
            argv_push(a, "-re"); /* a source runs as fast as it can otherwise */
        argv_pushf(a, "-f");
        argv_pushf(a, "%.*s", (int)n, input);
        if (duration) {
            argv_push(a, "-t");
            argv_push(a, duration);
        }
        argv_push(a, "-i");
        argv_push(a, input + n + 1);
    } else {
        argv_push(a, "-re");
        if (duration) {
            argv_push(a, "-t");
            argv_push(a, duration);
        }
        argv_push(a, "-i");
        argv_push(a, input);
    }
}

/* Whether a file has a sound stream (ffprobe, next to the ffmpeg used). */
static bool file_has_audio(const char *ffmpeg, const char *file)
{
    char probe[512];
    const char *slash = strrchr(ffmpeg, '/');
    if (slash)
        snprintf(probe, sizeof probe, "%.*sffprobe", (int)(slash - ffmpeg + 1), ffmpeg);
    else
        snprintf(probe, sizeof probe, "ffprobe");
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return false;
    char *const argv[] = {probe, "-v", "error", "-select_streams", "a", "-show_entries", "stream=index", "-of",
                          "csv=p=0", (char *)file, NULL};
    media_proc p;
    bool found = false;
    if (media_proc_start(&p, argv, -1, fds[1], PROG) == 0) {
        close(fds[1]);
        char buf[64];
        found = read(fds[0], buf, sizeof buf) > 0;
        while (!media_proc_poll(&p))
            usleep(10000);
    } else {
        close(fds[1]);
    }
    close(fds[0]);
    return found;
}

static void srtp_url(argv_list *a, const jingle_content *ct)
{
    bool v6 = strchr(ct->remote_ip, ':') != NULL;
    argv_pushf(a, "srtp://%s%s%s:%d?localrtpport=%d&localrtcpport=%d&rtcpport=%d&pkt_size=1200", v6 ? "[" : "",
               ct->remote_ip, v6 ? "]" : "", ct->remote_port, ct->local_port, ct->local_port + 1, ct->remote_rtcp_port);
}

static void build_ffmpeg(argv_list *a, const live_opts *l, const jingle_session *s, const char *audio_in,
                         int video_kbps)
{
    argv_push(a, l->ffmpeg);
    argv_push(a, "-hide_banner");
    argv_push(a, "-nostdin");
    argv_push(a, "-loglevel");
    argv_push(a, "error");
    /* the SDP of an RTP output would go to stdout, keys and all */
    argv_push(a, "-sdp_file");
    argv_push(a, "/dev/null");
    push_input(a, l->input, l->duration);
    int audio_index = 0;
    if (audio_in && audio_in != l->input) {
        push_input(a, audio_in, l->duration);
        audio_index = 1;
    }
    for (int i = 0; i < s->ncontent; i++) {
        const jingle_content *ct = &s->content[i];
        if (!ct->accepted)
            continue;
        if (strcmp(ct->media, "video") == 0) {
            argv_push(a, "-map");
            argv_push(a, "0:v:0");
            argv_push(a, "-c:v");
            argv_push(a, "libx264");
            argv_push(a, "-preset");
            argv_push(a, "veryfast");
            argv_push(a, "-tune");
            argv_push(a, "zerolatency");
            argv_push(a, "-profile:v");
            argv_push(a, "baseline");
            argv_push(a, "-pix_fmt");
            argv_push(a, "yuv420p");
            /* a keyframe every second: viewers who join start within one */
            argv_push(a, "-force_key_frames");
            argv_push(a, "expr:gte(t,n_forced*1)");
            argv_push(a, "-b:v");
            argv_pushf(a, "%dk", video_kbps);
            argv_push(a, "-maxrate");
            argv_pushf(a, "%dk", video_kbps);
            argv_push(a, "-bufsize");
            argv_pushf(a, "%dk", video_kbps);
        } else {
            argv_push(a, "-map");
            argv_pushf(a, "%d:a:0", audio_index);
            argv_push(a, "-c:a");
            argv_push(a, "libopus");
            argv_push(a, "-b:a");
            argv_push(a, "64k");
            argv_push(a, "-ar");
            argv_push(a, "48000");
            argv_push(a, "-ac");
            argv_push(a, "2");
        }
        argv_push(a, "-payload_type");
        argv_pushf(a, "%d", ct->chosen.pt);
        argv_push(a, "-f");
        argv_push(a, "rtp");
        argv_push(a, "-srtp_out_suite");
        argv_push(a, JINGLE_SUITE);
        argv_push(a, "-srtp_out_params");
        argv_push(a, ct->local_key);
        srtp_url(a, ct);
    }
}

static const char *const live_fields[] = {"id", "ID", NULL};

/* The settings of the live: endpoint, window, bandwidth. */
static int read_settings(client *c, const char *id, char *endpoint, size_t elen, int64_t *open_at,
                         int64_t *close_at, int *kbps)
{
    form *f = form_new("submit");
    adhoc_answer a;
    int rc = f && form_set(f, "id", id) ? adhoc_execute(c, "settings", NULL, NULL, f, &a, PROG) : EXIT_USAGE;
    form_free(f);
    if (rc != EXIT_OK)
        return rc;
    if (a.is_error) {
        rc = cast_refused("live", &a.error, live_fields);
        adhoc_answer_clear(&a);
        return rc;
    }
    const char *ingest = form_value(a.form, "ingest_jid");
    const char *o = form_value(a.form, "ingest_open"), *cl = form_value(a.form, "ingest_close");
    const char *bw = form_value(a.form, "bandwidth_kbps");
    if (!ingest || !o || !cl || datetime_parse(o, open_at, NULL) != 0 || datetime_parse(cl, close_at, NULL) != 0) {
        fputs(PROG " live: the live's settings have no media endpoint or ingest window\n", stderr);
        adhoc_answer_clear(&a);
        return EXIT_PROTOCOL;
    }
    snprintf(endpoint, elen, "%s", ingest);
    *kbps = bw ? atoi(bw) : 0;
    adhoc_answer_clear(&a);
    return EXIT_OK;
}

static void describe_end(const jingle_session *s, int *rc)
{
    const char *r = s->reason;
    printf("Off air: the server ended the live: %s (%s)\n", s->reason_text[0] ? s->reason_text : r, r);
    if (strcmp(r, "success") == 0 || strcmp(r, "expired") == 0)
        *rc = EXIT_OK;
    else if (strcmp(r, "timeout") == 0 || strcmp(r, "media-error") == 0 || strcmp(r, "failed-application") == 0)
        *rc = EXIT_MEDIA;
    else if (strcmp(r, "gone") == 0 || strcmp(r, "connectivity-error") == 0)
        *rc = EXIT_CONNECT;
    else
        *rc = EXIT_REFUSED;
}

static int live_run(const cast_command *self, int argc, char **argv, client_options *o)
{
    static const struct option extra[] = {
        {"input", required_argument, NULL, OPT_INPUT},
        {"audio-input", required_argument, NULL, OPT_AUDIO_INPUT},
        {"no-audio", no_argument, NULL, OPT_NO_AUDIO},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"ffmpeg", required_argument, NULL, OPT_FFMPEG},
        {"broadcast-password-file", required_argument, NULL, OPT_BCAST},
        {"wait", no_argument, NULL, OPT_WAIT},
        {"video-kbps", required_argument, NULL, OPT_KBPS},
    };
    live_opts l = {.ffmpeg = "ffmpeg"};
    int first;
    int rc = cast_parse(argc, argv, extra, sizeof extra / sizeof extra[0], "i:", o, self, live_option, &l, &first);
    if (rc != EXIT_OK)
        return rc < 0 ? EXIT_OK : rc;
    if (argc - first != 1) {
        fputs(PROG " live: give one reservation ID ('" PROG " live --help')\n", stderr);
        return EXIT_USAGE;
    }
    if (!l.input) {
        fputs(PROG " live: nothing to send: give --input FILE or FORMAT:SOURCE (e.g. lavfi:testsrc2)\n", stderr);
        return EXIT_USAGE;
    }
    const char *id = argv[first];
    size_t n;
    const char *audio_in = NULL;
    if (!l.no_audio) {
        if (l.audio_input)
            audio_in = l.audio_input;
        else if (is_device(l.input, &n) && strncmp(l.input, "lavfi", n) == 0)
            audio_in = "lavfi:sine=frequency=440:sample_rate=48000";
        else if (!is_device(l.input, &n) && file_has_audio(l.ffmpeg, l.input))
            audio_in = l.input;
    }
    if ((rc = client_options_check(o)) != EXIT_OK)
        return rc;
    char *bpw = secret_read(l.broadcast_file, "ONAIR_BROADCAST_PASSWORD", "the live's broadcast password", false,
                            "--broadcast-password-file");
    if (!bpw)
        return EXIT_USAGE;

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);

    client *c = NULL;
    jingle_session s = {0};
    media_proc ff = {0};
    argv_list args = {0};
    char endpoint[512];
    int64_t open_at = 0, close_at = 0;
    int kbps = 0;
    rc = cast_login(o, &c);
    if (rc == EXIT_OK)
        rc = read_settings(c, id, endpoint, sizeof endpoint, &open_at, &close_at, &kbps);
    char when[DATETIME_MAX];
    if (rc == EXIT_OK && time(NULL) < open_at) {
        if (!l.wait_open) {
            fprintf(stderr, PROG " live: the ingest window of %s opens at %s (--wait waits for it)\n", id,
                    datetime_format(open_at, when));
            rc = EXIT_REFUSED;
        } else {
            printf("Waiting for the ingest window: it opens at %s\n", datetime_format(open_at, when));
            while (!stop_signal && client_is_connected(c) && time(NULL) < open_at)
                client_run_once(c, 100);
            if (stop_signal)
                rc = EXIT_OK;
            else if (!client_is_connected(c))
                rc = EXIT_CONNECT;
        }
    }
    if (rc == EXIT_OK && !stop_signal) {
        static const jingle_codec h264 = {96, "H264", 90000, 0, "packetization-mode=1"};
        static const jingle_codec opus = {111, "opus", 48000, 2, NULL};
        s.content[0] = (jingle_content){.media = "video", .offer = {h264}, .noffer = 1};
        s.ncontent = 1;
        if (audio_in)
            s.content[s.ncontent++] = (jingle_content){.media = "audio", .offer = {opus}, .noffer = 1};
        rc = jingle_prepare(&s, c, endpoint, true, client_server_host(c), PROG);
        if (rc == EXIT_OK && (rc = jingle_initiate(&s, "broadcast", bpw, PROG)) == EXIT_REFUSED)
            jingle_print_refusal(&s, PROG);
    }
    secret_free(bpw);
    bpw = NULL;
    /* the session-accept comes right after the acknowledgement */
    long waited = 0;
    while (rc == EXIT_OK && !s.accepted && !s.terminated && !stop_signal && client_is_connected(c) &&
           waited < client_timeout_ms(c)) {
        client_run_once(c, 50);
        waited += 50;
    }
    if (rc == EXIT_OK && !stop_signal && !s.accepted) {
        fprintf(stderr, PROG " live: %s\n", s.terminated ? "the server ended the session before accepting it"
                                           : client_is_connected(c) ? "no session-accept in time"
                                                                   : "the connection closed");
        rc = client_is_connected(c) ? EXIT_PROTOCOL : EXIT_CONNECT;
    }
    if (rc == EXIT_OK && s.accepted && !stop_signal) {
        for (int i = 0; i < s.ncontent && rc == EXIT_OK; i++)
            if (!s.content[i].accepted) {
                fprintf(stderr, PROG " live: the server's answer for the %s stream is unusable\n", s.content[i].media);
                rc = EXIT_MEDIA;
            }
        int video_kbps = l.video_kbps ? l.video_kbps : kbps > 0 ? kbps * 7 / 10 - (audio_in ? 64 : 0) : 1000;
        if (video_kbps > 2500 && !l.video_kbps)
            video_kbps = 2500;
        if (video_kbps < 50)
            video_kbps = 50;
        if (rc == EXIT_OK) {
            build_ffmpeg(&args, &l, &s, audio_in, video_kbps);
            if (args.failed || media_proc_start(&ff, args.v, -1, -1, PROG) != 0)
                rc = EXIT_MEDIA;
        }
        if (rc == EXIT_OK)
            printf("On air: %s (H.264 video %d kbps%s) until %s at the latest\n", id, video_kbps,
                   audio_in ? ", Opus audio" : "", datetime_format(close_at, when));
        while (rc == EXIT_OK && !stop_signal && !s.terminated && client_is_connected(c) && !media_proc_poll(&ff))
            client_run_once(c, 50);
        if (rc == EXIT_OK) {
            char d[64];
            if (s.terminated) {
                media_proc_stop(&ff, 3000);
                describe_end(&s, &rc);
            } else if (stop_signal) {
                media_proc_stop(&ff, 3000);
                jingle_terminate(&s, "success", "the broadcaster stopped");
                printf("Off air: stopped\n");
            } else if (!client_is_connected(c)) {
                media_proc_stop(&ff, 3000);
                fputs(PROG " live: the connection to the server was lost\n", stderr);
                rc = EXIT_CONNECT;
            } else if (media_proc_ok(&ff)) {
                jingle_terminate(&s, "success", "the broadcast is over");
                printf("Off air: the input ended\n");
            } else {
                jingle_terminate(&s, "failed-application", "the encoder failed");
                fprintf(stderr, PROG " live: ffmpeg %s\n", media_proc_describe(&ff, d, sizeof d));
                rc = EXIT_MEDIA;
            }
        }
    }
    if (ff.pid && !ff.exited)
        media_proc_stop(&ff, 3000);
    if (s.c)
        jingle_terminate(&s, "success", NULL);
    argv_free(&args);
    if (c)
        cast_logout(c);
    return rc;
}

const cast_command cast_live_command = {"live", "go on air: stream a file, a device or a test pattern", live_help,
                                        live_run};
