/* ws.c - onair-bench: the WebSocket transport of a connection (RFC 6455
 * client side, RFC 7395 for XMPP).
 *
 * After the TCP connect (and, with --tls, the TLS handshake: wss), the
 * connection sends an HTTP/1.1 upgrade request for --ws PATH with
 * Sec-WebSocket-Protocol: xmpp and waits (CS_UPGRADE) for the answer, which
 * must be 101 with the Sec-WebSocket-Accept derived from its key (RFC 6455
 * section 4.2.2: SHA-1 of key and GUID, base64) and the subprotocol xmpp.
 * Whatever follows the answer's headers is already WebSocket frames.
 *
 * The framing is libwslay's event API in client mode: it parses frames
 * (answering pings and the close handshake itself), masks what the client
 * sends with keys from OpenSSL's RAND_bytes, and hands complete messages to
 * on_msg; each text message is one XML element (RFC 7395 section 3.3.3) and
 * goes to conn_feed.  wslay pulls input through recv_cb from the bytes
 * ws_input was given and pushes output through send_cb to conn_send_raw
 * (TLS or the socket); both never block.  A message queued while wslay is
 * receiving (a stream restart answered from inside on_msg) is sent when
 * wslay_event_recv has returned.
 *
 * Ownership: the conn owns its wslay context (c->wsx, from the 101 answer
 * on) and the upgrade answer's buffer (c->http, until the answer is
 * complete); ws_free releases both, from the conn's close callback.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <wslay/wslay.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 section 1.3 */
#define WS_SUBPROTOCOL "xmpp"                          /* RFC 7395 section 3.1 */
#define HTTP_ANSWER_MAX 8192                           /* bytes of the upgrade answer's head */

static void ws_pump(conn *c);

/* ---- wslay callbacks ------------------------------------------------------------ */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
    (void)flags;
    conn *c = ud;
    if (c->ws_in_len == 0 || c->state == CS_DONE) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < c->ws_in_len ? len : c->ws_in_len;
    memcpy(buf, c->ws_in, n);
    c->ws_in += n;
    c->ws_in_len -= n;
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)flags;
    conn *c = ud;
    conn_send_raw(c, (const char *)data, len);
    if (c->state == CS_DONE) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len; /* buffered: written once per loop turn */
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *ud)
{
    (void)ctx;
    (void)ud;
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *ud)
{
    (void)ctx;
    conn *c = ud;
    if (c->state == CS_DONE)
        return;
    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
        if (arg->msg_length > 0)
            conn_feed(c, (const char *)arg->msg, arg->msg_length);
        break;
    case WSLAY_BINARY_FRAME:
        conn_abort(c, false, "the server sent a binary WebSocket message");
        break;
    case WSLAY_CONNECTION_CLOSE:
        /* wslay answers with its own close frame */
        if (c->state != CS_CLOSING)
            conn_abort(c, false, "the server closed the WebSocket (code %u)", (unsigned)arg->status_code);
        break;
    default: /* ping (answered by wslay), pong */
        break;
    }
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .genmask_callback = genmask_cb,
    .on_msg_recv_callback = on_msg,
};

/* ---- the HTTP upgrade ------------------------------------------------------------- */

void ws_begin(conn *c)
{
    const bench_opts *o = c->b->o;
    unsigned char raw[16], digest[SHA_DIGEST_LENGTH];
    char key[32];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        conn_abort(c, false, "no random bytes for the WebSocket key");
        return;
    }
    EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw); /* 24 characters */
    char both[sizeof key + sizeof WS_GUID];
    int bl = snprintf(both, sizeof both, "%s%s", key, WS_GUID);
    SHA1((const unsigned char *)both, (size_t)bl, digest);
    EVP_EncodeBlock((unsigned char *)c->ws_accept, digest, sizeof digest); /* 28 characters */
    c->state = CS_UPGRADE;
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s:%d\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Protocol: " WS_SUBPROTOCOL "\r\n"
                     "\r\n",
                     o->ws_path, o->host, o->ws_port, key);
    if (n < 0 || (size_t)n >= sizeof req) {
        conn_abort(c, false, "WebSocket upgrade request too long");
        return;
    }
    conn_send_raw(c, req, (size_t)n);
}

/* The value of header `name` in the answer's head (lines after the status
 * line, each "Name: value\r\n"), copied to out; false when absent. */
static bool header(const char *head, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *line = strstr(head, "\r\n");
    while (line && line[2] != '\r' && line[2] != '\0') {
        line += 2;
        const char *end = strstr(line, "\r\n");
        if (!end)
            break;
        if ((size_t)(end - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            size_t vl = (size_t)(end - v);
            while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            if (vl >= cap)
                vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return true;
        }
        line = end;
    }
    return false;
}

/* Checks the complete head of the answer (NUL-terminated at its blank line);
 * returns NULL or what is wrong. */
static const char *check_answer(conn *c, const char *head, char *why, size_t cap)
{
    int status = 0;
    if (sscanf(head, "HTTP/1.%*d %d", &status) != 1)
        return "WebSocket upgrade: not an HTTP answer";
    if (status != 101) {
        const char *body = head + strlen(head) + 2; /* what came after the blank line, if any */
        size_t have = c->http_len - (size_t)(body - c->http);
        snprintf(why, cap, "WebSocket upgrade refused: HTTP %d %.*s", status, (int)(have > 120 ? 120 : have), body);
        return why;
    }
    char v[128];
    if (!header(head, "Upgrade", v, sizeof v) || strcasecmp(v, "websocket") != 0)
        return "WebSocket upgrade: 101 without Upgrade: websocket";
    if (!header(head, "Sec-WebSocket-Accept", v, sizeof v) || strcmp(v, c->ws_accept) != 0)
        return "WebSocket upgrade: wrong Sec-WebSocket-Accept";
    if (!header(head, "Sec-WebSocket-Protocol", v, sizeof v) || strcmp(v, WS_SUBPROTOCOL) != 0)
        return "WebSocket upgrade: the server did not accept the subprotocol " WS_SUBPROTOCOL;
    return NULL;
}

static void http_input(conn *c, const char *p, size_t n)
{
    if (c->http_len + n > HTTP_ANSWER_MAX) {
        conn_abort(c, false, "WebSocket upgrade: answer head over %d bytes", HTTP_ANSWER_MAX);
        return;
    }
    char *nb = realloc(c->http, c->http_len + n + 1);
    if (!nb) {
        conn_abort(c, false, "out of memory");
        return;
    }
    c->http = nb;
    memcpy(c->http + c->http_len, p, n);
    c->http_len += n;
    c->http[c->http_len] = '\0';
    char *blank = strstr(c->http, "\r\n\r\n");
    if (!blank)
        return; /* more to come (bounded by HTTP_ANSWER_MAX and --timeout) */
    blank[2] = '\0'; /* the head, with its last line's CRLF */
    char why[200];
    const char *err = check_answer(c, c->http, why, sizeof why);
    if (err) {
        conn_abort(c, false, "%s", err);
        return;
    }
    if (wslay_event_context_client_init(&c->wsx, &callbacks, c) != 0) {
        c->wsx = NULL;
        conn_abort(c, false, "out of memory");
        return;
    }
    /* Frames that came with the answer wait until the stream is open: a
     * server sends none before the client's <open/>. */
    size_t rest_off = (size_t)(blank + 4 - c->http), rest = c->http_len - rest_off;
    char *buf = c->http;
    c->http = NULL;
    c->http_len = 0;
    conn_ws_open(c);
    if (rest > 0 && c->state != CS_DONE)
        ws_input(c, buf + rest_off, rest);
    free(buf);
}

/* ---- frames --------------------------------------------------------------------- */

void ws_input(conn *c, const char *p, size_t n)
{
    if (c->state == CS_DONE)
        return;
    if (c->state == CS_UPGRADE) {
        http_input(c, p, n);
        return;
    }
    if (!c->wsx)
        return;
    c->ws_in = (const unsigned char *)p;
    c->ws_in_len = n;
    c->in_ws_recv = true;
    int rc = wslay_event_recv(c->wsx);
    c->in_ws_recv = false;
    c->ws_in = NULL;
    c->ws_in_len = 0;
    if (c->state == CS_DONE)
        return;
    if (rc != 0) {
        conn_abort(c, false, "WebSocket: bad frame from the server (wslay error %d)", rc);
        return;
    }
    ws_pump(c);
}

/* Hands what wslay has queued to the output buffer. */
static void ws_pump(conn *c)
{
    if (c->in_ws_recv || !c->wsx || c->state == CS_DONE || !wslay_event_want_write(c->wsx))
        return;
    int rc = wslay_event_send(c->wsx);
    if (rc != 0 && c->state != CS_DONE)
        conn_abort(c, false, "WebSocket: send failed (wslay error %d)", rc);
}

void ws_send_text(conn *c, const char *p, size_t n)
{
    if (!c->wsx) {
        conn_abort(c, false, "WebSocket: a message before the upgrade");
        return;
    }
    conn_trace(c, '>', p, n);
    struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)p, n};
    int rc = wslay_event_queue_msg(c->wsx, &m);
    if (rc == WSLAY_ERR_NO_MORE_MSG)
        return; /* the close frame is queued or sent: nothing more goes out */
    if (rc != 0) {
        conn_abort(c, false, "WebSocket: cannot queue a message (wslay error %d)", rc);
        return;
    }
    ws_pump(c);
}

void ws_send_close(conn *c, unsigned short code)
{
    if (!c->wsx || wslay_event_get_close_sent(c->wsx))
        return;
    if (wslay_event_queue_close(c->wsx, code, NULL, 0) == 0)
        ws_pump(c);
}

void ws_free(conn *c)
{
    if (c->wsx)
        wslay_event_context_free(c->wsx);
    c->wsx = NULL;
    free(c->http);
    c->http = NULL;
}
