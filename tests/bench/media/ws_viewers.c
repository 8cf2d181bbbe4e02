/* ws_viewers.c - onair-media-bench's browsers: viewers on the media
 * WebSocket (specs/media.md, "Browsers: the media WebSocket").
 *
 * Each viewer is one TCP connection to the web listener: an HTTP/1.1
 * upgrade to /media-websocket with Sec-WebSocket-Protocol: onair-media
 * (the answer must be 101 with the right Sec-WebSocket-Accept, RFC 6455
 * section 4.2.2, and that subprotocol), then libwslay's event API in client
 * mode (it masks what the viewer sends with keys from OpenSSL's RAND_bytes,
 * answers pings and the close handshake).  The viewer's first message is
 * its token, as text; the server answers {"type":"playing"} (or "waiting"
 * first) and then sends binary messages: an 8-byte header (kind, flags,
 * 0, 0, RTP timestamp) and one Annex B access unit.  Kind 1 (H.264) is
 * counted, other kinds are ignored.  A viewer counts from its first
 * keyframe: each unit's timestamp against the previous one (gaps are
 * missing units), its length and keyframe flag against the stream's plan,
 * and the delay from the send of the unit's last packet to the receipt of
 * the message's last byte.
 *
 * One thread: the connections are on one epoll set (wsv_fd), which the
 * tool's own epoll loop watches.  Input is read in 64 KiB chunks and handed
 * to wslay through recv_cb; output goes out through send_cb at once (a
 * viewer sends only its token, pongs and a close).
 *
 * Ownership: ws_viewers owns its viewers, their tokens, sockets and wslay
 * contexts; wsv_free releases everything.  The stream plan is the
 * broadcaster's, read only.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "media_bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wslay/wslay.h>

#define WS_PATH "/media-websocket"
#define WS_PROTOCOL "onair-media"
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 section 1.3 */
#define HEAD_MAX 4096                                  /* bytes of the upgrade answer's head */
#define MAX_HANDSHAKES 64                              /* connections being set up at once */
#define READS_PER_EVENT 4                              /* 64 KiB reads before the next connection's turn */
#define KIND_H264 1

typedef enum { W_IDLE, W_CONNECT, W_UPGRADE, W_TOKEN, W_WAITING, W_PLAYING, W_DONE } wstate;

typedef struct wsv {
    struct ws_viewers *w;
    size_t index;
    int fd;
    wstate state;
    bool was_playing; /* reached "playing" at some point */
    bool want_out;    /* EPOLLOUT is being watched */
    bool in_recv;     /* inside wslay_event_recv: its context is freed after it */
    char *token;
    char accept[32];
    char head[HEAD_MAX + 1];
    size_t head_len;
    wslay_event_context_ptr wx;
    const uint8_t *in; /* what wslay_event_recv reads through recv_cb */
    size_t in_len;
    uint64_t t_rx; /* when the bytes being parsed were received */
    bool has_key;
    int64_t first_unit, last_unit;
    uint64_t units, gaps, old, bad, other_kinds;
    char why[200]; /* why it is done, when it is */
} wsv;

struct ws_viewers {
    wsv *v;
    size_t n, next_start, handshaking, playing;
    int ep;
    struct sockaddr_in addr;
    char hostport[96];
    const stream_plan *plan;
    lat_hist lat;
    double connect_s;
    uint8_t rbuf[65536];
};

/* ---- connection ends ------------------------------------------------------------ */

static bool in_handshake(wstate s)
{
    return s == W_CONNECT || s == W_UPGRADE || s == W_TOKEN;
}

static void start_next(ws_viewers *w);

static void set_state(wsv *v, wstate s)
{
    ws_viewers *w = v->w;
    if (in_handshake(v->state) && !in_handshake(s))
        w->handshaking--;
    if (v->state == W_PLAYING)
        w->playing--;
    if (s == W_PLAYING) {
        w->playing++;
        v->was_playing = true;
    }
    v->state = s;
}

/* The viewer is done: its socket is closed (which takes it off the epoll
 * set) and its wslay context freed, or, from inside a wslay callback, once
 * wslay_event_recv has returned (frames). */
static void finish(wsv *v, const char *fmt, ...)
{
    if (v->state == W_DONE)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->why, sizeof v->why, fmt, ap);
    va_end(ap);
    if (v->fd >= 0)
        close(v->fd);
    v->fd = -1;
    if (v->wx && !v->in_recv) {
        wslay_event_context_free(v->wx);
        v->wx = NULL;
    }
    set_state(v, W_DONE);
}

static void watch(wsv *v, bool out)
{
    if (v->fd < 0 || out == v->want_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.u64 = v->index};
    epoll_ctl(v->w->ep, EPOLL_CTL_MOD, v->fd, &ev);
    v->want_out = out;
}

/* ---- wslay callbacks ------------------------------------------------------------ */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
    (void)flags;
    wsv *v = ud;
    if (v->in_len == 0 || v->state == W_DONE) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < v->in_len ? len : v->in_len;
    memcpy(buf, v->in, n);
    v->in += n;
    v->in_len -= n;
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)flags;
    wsv *v = ud;
    ssize_t r = send(v->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r < 0) {
        wslay_event_set_error(ctx, errno == EAGAIN || errno == EWOULDBLOCK ? WSLAY_ERR_WOULDBLOCK
                                                                             : WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return r;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *ud)
{
    (void)ctx;
    (void)ud;
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

static void on_json(wsv *v, const uint8_t *msg, size_t len)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)msg, len, 0, &jerr);
    const char *type = j ? json_string_value(json_object_get(j, "type")) : NULL;
    const char *text = j ? json_string_value(json_object_get(j, "message")) : NULL;
    if (!type)
        finish(v, "a text message that is not the JSON of specs/media.md: %.*s", (int)(len > 80 ? 80 : len), msg);
    else if (strcmp(type, "playing") == 0 && (v->state == W_TOKEN || v->state == W_WAITING))
        set_state(v, W_PLAYING);
    else if (strcmp(type, "waiting") == 0 && v->state == W_TOKEN)
        set_state(v, W_WAITING);
    else if (strcmp(type, "error") == 0 || strcmp(type, "ended") == 0)
        finish(v, "%s: %s", type, text ? text : "(no message)");
    else if (strcmp(type, "clock") == 0 && v->state == W_PLAYING)
        ; /* the broadcaster's sender reports, for lip sync: nothing to check here */
    else
        finish(v, "unexpected {\"type\":\"%s\"} while %s", type,
               v->state == W_PLAYING ? "playing" : v->state == W_WAITING ? "waiting" : "awaiting the answer");
    json_decref(j);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void on_unit(wsv *v, const uint8_t *msg, size_t len)
{
    const stream_plan *plan = v->w->plan;
    if (v->state != W_PLAYING || len < 8) {
        v->bad++;
        return;
    }
    if (msg[0] != KIND_H264) {
        v->other_kinds++;
        return;
    }
    uint32_t d = be32(msg + 4) - plan->ts_base;
    size_t u = d / UNIT_TS_STEP;
    if (d % UNIT_TS_STEP != 0 || u >= plan->nunits || plan->unit_sent_ns[u] == 0) {
        v->bad++; /* not a timestamp the broadcaster sent */
        return;
    }
    bool is_key = msg[1] & 1, want_key = u % plan->gop == 0;
    if (is_key != want_key || len - 8 != (want_key ? plan->key_au_len : plan->au_len)) {
        v->bad++;
        return;
    }
    if (!v->has_key) {
        if (!is_key) {
            v->bad++; /* the server sends nothing before a keyframe */
            return;
        }
        v->has_key = true;
        v->first_unit = (int64_t)u;
        v->last_unit = (int64_t)u - 1;
    }
    if ((int64_t)u <= v->last_unit) {
        v->old++;
        return;
    }
    v->gaps += (uint64_t)((int64_t)u - v->last_unit - 1);
    v->last_unit = (int64_t)u;
    v->units++;
    uint64_t sent = plan->unit_sent_ns[u];
    lat_add(&v->w->lat, v->t_rx > sent ? (v->t_rx - sent) / 1000 : 0);
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *ud)
{
    (void)ctx;
    wsv *v = ud;
    if (v->state == W_DONE)
        return;
    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
        on_json(v, arg->msg, arg->msg_length);
        break;
    case WSLAY_BINARY_FRAME:
        on_unit(v, arg->msg, arg->msg_length);
        break;
    case WSLAY_CONNECTION_CLOSE:
        finish(v, "the server closed the WebSocket (code %u: %.*s)", (unsigned)arg->status_code,
               (int)(arg->msg_length > 2 ? arg->msg_length - 2 : 0), arg->msg_length > 2 ? (const char *)arg->msg + 2 : "");
        break;
    default: /* ping (wslay answers it), pong */
        break;
    }
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .genmask_callback = genmask_cb,
    .on_msg_recv_callback = on_msg,
};

/* Sends what wslay has queued; watches for room when the socket is full. */
static void flush(wsv *v)
{
    if (v->state == W_DONE || !v->wx)
        return;
    if (wslay_event_want_write(v->wx) && wslay_event_send(v->wx) != 0) {
        finish(v, "WebSocket: sending failed (the connection broke)");
        return;
    }
    watch(v, wslay_event_want_write(v->wx));
}

static void frames(wsv *v, const uint8_t *p, size_t n)
{
    v->in = p;
    v->in_len = n;
    v->in_recv = true;
    int rc = wslay_event_recv(v->wx);
    v->in_recv = false;
    v->in = NULL;
    v->in_len = 0;
    if (v->state == W_DONE) {
        wslay_event_context_free(v->wx);
        v->wx = NULL;
        return;
    }
    if (rc != 0) {
        finish(v, "WebSocket: bad frames from the server (wslay error %d)", rc);
        return;
    }
    flush(v);
}

/* ---- the upgrade ---------------------------------------------------------------- */

static void send_upgrade(wsv *v)
{
    unsigned char raw[16], digest[SHA_DIGEST_LENGTH];
    char key[32], both[sizeof key + sizeof WS_GUID], req[512];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        finish(v, "no random bytes for the WebSocket key");
        return;
    }
    EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw);
    int bl = snprintf(both, sizeof both, "%s%s", key, WS_GUID);
    SHA1((const unsigned char *)both, (size_t)bl, digest);
    EVP_EncodeBlock((unsigned char *)v->accept, digest, sizeof digest);
    int n = snprintf(req, sizeof req,
                     "GET " WS_PATH " HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Protocol: " WS_PROTOCOL "\r\n\r\n",
                     v->w->hostport, key);
    /* a fresh connection's send buffer takes these few hundred bytes at once */
    if (send(v->fd, req, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
        finish(v, "sending the upgrade request: %s", strerror(errno));
        return;
    }
    set_state(v, W_UPGRADE);
    watch(v, false);
}

/* Whether header `name` of the head (the lines after the status line) has
 * the value `want` (compared with cmp, surrounding blanks ignored). */
static bool header_is(const char *head, const char *name, const char *want, int (*cmp)(const char *, const char *, size_t))
{
    size_t nl = strlen(name), wl = strlen(want);
    for (const char *line = strstr(head, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
        const char *l = line + 2;
        if (strncasecmp(l, name, nl) != 0 || l[nl] != ':')
            continue;
        const char *val = l + nl + 1, *end = strstr(val, "\r\n");
        while (*val == ' ' || *val == '\t')
            val++;
        if (!end)
            end = val + strlen(val);
        while (end > val && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        return (size_t)(end - val) == wl && cmp(val, want, wl) == 0;
    }
    return false;
}

/* Reads the upgrade's answer; once its head is complete, checks it and
 * sends the token. */
static void upgrade_input(wsv *v, const uint8_t *p, size_t n)
{
    size_t take = n < HEAD_MAX - v->head_len ? n : HEAD_MAX - v->head_len;
    memcpy(v->head + v->head_len, p, take);
    v->head_len += take;
    v->head[v->head_len] = '\0';
    char *blank = strstr(v->head, "\r\n\r\n");
    if (!blank) {
        if (v->head_len == HEAD_MAX)
            finish(v, "upgrade: an answer head over %d bytes", HEAD_MAX);
        return;
    }
    size_t head_end = (size_t)(blank + 4 - v->head);
    size_t rest_off = take - (v->head_len - head_end); /* where the frames begin in p */
    blank[2] = '\0';
    int status = 0;
    if (sscanf(v->head, "HTTP/1.%*d %d", &status) != 1) {
        finish(v, "upgrade: not an HTTP answer");
        return;
    }
    if (status != 101) {
        char *eol = strstr(v->head, "\r\n");
        finish(v, "upgrade refused: %.*s", eol ? (int)(eol - v->head) : 60, v->head);
        return;
    }
    if (!header_is(v->head, "Upgrade", "websocket", strncasecmp)) {
        finish(v, "upgrade: 101 without Upgrade: websocket");
        return;
    }
    if (!header_is(v->head, "Sec-WebSocket-Accept", v->accept, strncmp)) {
        finish(v, "upgrade: wrong Sec-WebSocket-Accept");
        return;
    }
    if (!header_is(v->head, "Sec-WebSocket-Protocol", WS_PROTOCOL, strncmp)) {
        finish(v, "upgrade: the server did not accept the subprotocol " WS_PROTOCOL);
        return;
    }
    if (wslay_event_context_client_init(&v->wx, &callbacks, v) != 0) {
        v->wx = NULL;
        finish(v, "out of memory");
        return;
    }
    wslay_event_config_set_max_recv_msg_length(v->wx, 64u << 20);
    struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)v->token, strlen(v->token)};
    if (wslay_event_queue_msg(v->wx, &m) != 0) {
        finish(v, "WebSocket: cannot queue the token");
        return;
    }
    set_state(v, W_TOKEN);
    flush(v);
    if (v->state != W_DONE && rest_off < n)
        frames(v, p + rest_off, n - rest_off);
}

/* ---- events --------------------------------------------------------------------- */

static void start(wsv *v)
{
    ws_viewers *w = v->w;
    v->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (v->fd < 0) {
        finish(v, "socket: %s", strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(v->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(v->fd, (struct sockaddr *)&w->addr, sizeof w->addr) != 0 && errno != EINPROGRESS) {
        finish(v, "connect: %s", strerror(errno));
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u64 = v->index};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, v->fd, &ev) != 0) {
        finish(v, "epoll: %s", strerror(errno));
        return;
    }
    v->want_out = true;
    w->handshaking++;
    v->state = W_CONNECT;
}

static void start_next(ws_viewers *w)
{
    while (w->handshaking < MAX_HANDSHAKES && w->next_start < w->n)
        start(&w->v[w->next_start++]);
}

static void on_event(wsv *v, uint32_t events)
{
    ws_viewers *w = v->w;
    if (v->state == W_CONNECT) {
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(v->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
            err = errno;
        if (err) {
            finish(v, "connect to %s: %s", w->hostport, strerror(err));
            return;
        }
        if (events & EPOLLOUT)
            send_upgrade(v);
        return;
    }
    if ((events & EPOLLOUT) && v->wx)
        flush(v);
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    for (int i = 0; i < READS_PER_EVENT && v->state != W_DONE; i++) {
        ssize_t r = recv(v->fd, w->rbuf, sizeof w->rbuf, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) {
            finish(v, "the server closed the connection%s%s", r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
            return;
        }
        v->t_rx = now_ns();
        if (v->state == W_UPGRADE)
            upgrade_input(v, w->rbuf, (size_t)r);
        else
            frames(v, w->rbuf, (size_t)r);
        if ((size_t)r < sizeof w->rbuf)
            return;
    }
}

static void dispatch(ws_viewers *w, int timeout_ms)
{
    struct epoll_event evs[256];
    int n = epoll_wait(w->ep, evs, 256, timeout_ms);
    for (int i = 0; i < n; i++) {
        wsv *v = &w->v[evs[i].data.u64];
        if (v->state != W_DONE)
            on_event(v, evs[i].events);
    }
    start_next(w);
}

/* ---- the interface -------------------------------------------------------------- */

ws_viewers *wsv_new(const char *tokens_file, const char *hostport, const stream_plan *plan, char *err,
                    size_t errcap)
{
    char host[64];
    int port;
    struct sockaddr_in a = {.sin_family = AF_INET};
    if (sscanf(hostport, "%63[^:]:%d", host, &port) != 2 || port <= 0 || port > 65535 ||
        inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        snprintf(err, errcap, "--http wants IPv4:PORT, not %s", hostport);
        return NULL;
    }
    a.sin_port = htons((uint16_t)port);
    FILE *f = fopen(tokens_file, "r");
    if (!f) {
        snprintf(err, errcap, "%s: %s", tokens_file, strerror(errno));
        return NULL;
    }
    ws_viewers *w = calloc(1, sizeof *w);
    if (!w) {
        fclose(f);
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    w->addr = a;
    w->plan = plan;
    snprintf(w->hostport, sizeof w->hostport, "%s", hostport);
    size_t cap = 0;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        if (w->n == cap) {
            cap = cap ? cap * 2 : 256;
            wsv *nv = realloc(w->v, cap * sizeof *nv);
            if (!nv)
                break;
            w->v = nv;
        }
        wsv *v = &w->v[w->n];
        memset(v, 0, sizeof *v);
        v->w = w;
        v->index = w->n;
        v->fd = -1;
        v->token = strdup(line);
        if (!v->token)
            break;
        w->n++;
    }
    bool bad = ferror(f) || !feof(f);
    fclose(f);
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    if (bad || w->ep < 0) {
        snprintf(err, errcap, "%s: %s", tokens_file, bad ? "unreadable or out of memory" : strerror(errno));
        wsv_free(w);
        return NULL;
    }
    return w;
}

int wsv_fd(const ws_viewers *w)
{
    return w->ep;
}

void wsv_connect_all(ws_viewers *w, double seconds)
{
    uint64_t t0 = now_ns(), end = t0 + (uint64_t)(seconds * 1e9);
    start_next(w);
    for (;;) {
        bool settled = w->next_start == w->n && w->handshaking == 0;
        uint64_t now = now_ns();
        if (settled || now >= end)
            break;
        dispatch(w, (int)((end - now) / 1000000) + 1);
    }
    w->connect_s = (double)(now_ns() - t0) / 1e9;
    size_t shown = 0, refused = 0;
    for (size_t i = 0; i < w->n; i++) {
        wsv *v = &w->v[i];
        if (v->state == W_PLAYING || v->state == W_WAITING)
            continue;
        if (v->state != W_DONE)
            finish(v, v->state == W_IDLE ? "not connected within %.0f s" : "no answer within %.0f s", seconds);
        refused++;
        if (shown++ < 5)
            fprintf(stderr, "onair-media-bench: WebSocket viewer %zu refused: %s\n", i, v->why);
    }
    if (refused)
        fprintf(stderr, "onair-media-bench: %zu of %zu WebSocket viewers refused\n", refused, w->n);
}

void wsv_poll(ws_viewers *w)
{
    dispatch(w, 0);
}

void wsv_report(ws_viewers *w, size_t units_sent, ws_report *r)
{
    memset(r, 0, sizeof *r);
    r->viewers = w->n;
    r->connect_s = w->connect_s;
    r->min_per_viewer = UINT64_MAX;
    size_t shown = 0;
    for (size_t i = 0; i < w->n; i++) {
        wsv *v = &w->v[i];
        if (!v->was_playing && v->state != W_WAITING) {
            r->refused++;
            continue;
        }
        /* from its first keyframe on; one that never had one lost everything */
        uint64_t expected = units_sent - (v->has_key ? (uint64_t)v->first_unit : 0);
        r->playing++;
        r->units += v->units;
        r->expected += expected;
        r->gaps += v->gaps;
        r->old += v->old;
        r->bad += v->bad;
        r->other_kinds += v->other_kinds;
        if (v->units < r->min_per_viewer)
            r->min_per_viewer = v->units;
        if (v->state == W_PLAYING && v->has_key && v->units == expected && v->bad == 0)
            r->ok++;
        else if (v->state == W_DONE && shown++ < 5)
            fprintf(stderr, "onair-media-bench: WebSocket viewer %zu stopped: %s\n", i, v->why);
    }
    if (r->playing == 0)
        r->min_per_viewer = 0;
}

const lat_hist *wsv_latency(const ws_viewers *w)
{
    return &w->lat;
}

void wsv_free(ws_viewers *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++) {
        wsv *v = &w->v[i];
        if (v->fd >= 0)
            close(v->fd);
        if (v->wx)
            wslay_event_context_free(v->wx);
        free(v->token);
    }
    free(w->v);
    if (w->ep >= 0)
        close(w->ep);
    free(w);
}
