/* xmpp_ws.c - the WebSocket transport of client streams (RFC 7395) and
 * XEP-0156 discovery.
 *
 * web.c does the HTTP upgrade and the WebSocket framing (libwebsockets);
 * this file turns one WebSocket connection into a transport (transport.h)
 * for stream.c, which knows the XMPP framing (<open/>, <close/>, one element
 * per message).  What is checked here, below the XML: messages are text
 * (a binary one ends the stream with bad-format and close code 1003), and a
 * message may not be larger than limits.max_stanza_bytes (policy-violation,
 * close code 1009), counted before any of it reaches the parser.
 *
 * Memory: per connection this object (32 bytes, kept by web.c in its
 * web_ws's allocation: conn_bytes; the server and the web_ws are found from
 * there, not kept), and libwebsockets' own connection with its receive
 * buffer of XMPP_WS_RX_CHUNK bytes; nothing else is kept between messages
 * (the stream's parser is released when idle, as on TCP).  Where each byte
 * of an idle session goes: specs/websocket.md, "Inside the server".
 */
#include "xmpp_ws.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "session.h"
#include "transport.h"
#include "web.h"

/* libwebsockets' receive buffer per connection, kept for its lifetime:
 * messages arrive in pieces of at most this size, each fed to the stream's
 * parser as it comes.  Small, because an idle viewer's memory is what
 * counts: with the library's LWS_PRE and 4 bytes it is a 148-byte
 * allocation, in a size class that the short-lived buffers of a login do
 * not use, whereas 1024 (1044 bytes) shared its class with them and left
 * about 5 KiB of partly used pages per connection (tests/bench/README.md,
 * "XMPP over WebSocket").  At least 125: a control frame's payload (RFC
 * 6455 section 5.5) must fit in one piece. */
#define XMPP_WS_RX_CHUNK 128
#define XMPP_WS_SUBPROTOCOL "xmpp"

/* RFC 6455 section 7.4.1 */
#define CLOSE_NORMAL 1000
#define CLOSE_UNSUPPORTED_DATA 1003
#define CLOSE_TOO_BIG 1009

/* Lives in web.c's web_ws (web_ws_data), which outlives our on_close. */
typedef struct xmpp_ws {
    transport tr;
    const transport_callbacks *cb;
    void *ud;
    uint32_t msg_bytes;        /* of the message being received (limits.max_stanza_bytes is at most 64 MiB) */
    unsigned short close_code; /* for the close frame; 0 = normal */
    bool is_secure;
    bool closed;               /* web.c's connection has gone: nothing more to it */
} xmpp_ws;
_Static_assert(sizeof(xmpp_ws) <= 32, "an idle WebSocket session keeps this: web_ws and it fit 112 bytes");

static const transport_ops ws_ops;

static xmpp_ws *ws_of(const transport *t)
{
    return (xmpp_ws *)((char *)t - offsetof(xmpp_ws, tr));
}

static web_ws *web_of(xmpp_ws *x)
{
    return web_ws_of_data(x);
}

static server *srv_of(xmpp_ws *x)
{
    return web_ws_server(web_of(x));
}

/* ---- web.c's handler ---- */

static bool on_can_open(void *ud)
{
    server *srv = ud;
    return !srv->stopping && srv->nconnections < srv->cfg.max_connections;
}

static void *on_open(void *ud, web_ws *ws)
{
    server *srv = ud;
    xmpp_ws *x = web_ws_data(ws); /* zeroed; web.c's until on_ws_close */
    if (!x)
        return NULL;
    x->tr.ops = &ws_ops;
    x->is_secure = web_ws_is_tls(ws) || (srv->cfg.http_loopback_is_secure && web_ws_peer_is_loopback(ws));
    srv->nconnections++;
    srv->stats.connections_accepted++;
    if (!stream_accept(srv, &x->tr)) {
        srv->nconnections--;
        return NULL; /* web.c closes the connection */
    }
    return x;
}

static void on_ws_data(void *conn_ud, const char *data, size_t len, bool is_binary, bool is_last)
{
    xmpp_ws *x = conn_ud;
    if (!x->cb)
        return;
    if (is_binary) {
        /* RFC 7395 section 3.2: text messages only */
        x->close_code = CLOSE_UNSUPPORTED_DATA;
        x->cb->on_error(x->ud, "bad-format", "XMPP over WebSocket uses text messages only");
        return;
    }
    if (len > srv_of(x)->cfg.max_stanza_bytes - x->msg_bytes) {
        x->close_code = CLOSE_TOO_BIG;
        x->cb->on_error(x->ud, "policy-violation", "a WebSocket message larger than the server accepts");
        return;
    }
    x->msg_bytes += (uint32_t)len;
    if (len > 0)
        x->cb->on_data(x->ud, data, len);
    if (is_last) {
        x->msg_bytes = 0;
        x->cb->on_message_end(x->ud);
    }
}

static void on_ws_close(void *conn_ud)
{
    xmpp_ws *x = conn_ud;
    x->closed = true;
    srv_of(x)->nconnections--;
    if (x->cb && x->cb->on_close)
        x->cb->on_close(x->ud);
    /* x goes with web.c's connection */
}

static const web_ws_handler handler = {on_can_open, on_open, on_ws_data, on_ws_close, sizeof(xmpp_ws)};

/* ---- the transport (transport.h) ---- */

static void tr_set_callbacks(transport *t, const transport_callbacks *cb, void *ud)
{
    xmpp_ws *x = ws_of(t);
    x->cb = cb;
    x->ud = ud;
}

static int tr_write(transport *t, const char *const *parts, const size_t *lens, size_t n)
{
    xmpp_ws *x = ws_of(t);
    return x->closed ? -1 : web_ws_send(web_of(x), parts, lens, n);
}

static bool tr_is_secure(const transport *t)
{
    return ws_of(t)->is_secure;
}

static void tr_close(transport *t)
{
    xmpp_ws *x = ws_of(t);
    if (!x->closed)
        web_ws_close(web_of(x), x->close_code ? x->close_code : CLOSE_NORMAL);
}

static void tr_abort(transport *t)
{
    xmpp_ws *x = ws_of(t);
    if (!x->closed)
        web_ws_abort(web_of(x));
}

static const char *tr_peer(const transport *t)
{
    return web_ws_peer(web_of(ws_of(t))); /* "?" once the connection has gone */
}

static const transport_ops ws_ops = {
    .name = "websocket",
    .is_framed = true,
    .set_callbacks = tr_set_callbacks,
    .write = tr_write,
    .start_tls = NULL, /* RFC 7395 section 3.8: TLS is the WebSocket's (wss://) */
    .is_secure = tr_is_secure,
    .release_idle_memory = NULL,
    .close = tr_close,
    .abort = tr_abort,
    .peer = tr_peer,
};

/* ---- XEP-0156 discovery ---- */

#define NS_XRD "http://docs.oasis-open.org/ns/xri/xrd-1.0"
#define REL_WEBSOCKET "urn:xmpp:alt-connections:websocket"

/* A Host header value we are willing to put into a URL: a name or an
 * address, optionally with a port. */
static bool host_usable(const char *host)
{
    size_t n = host ? strlen(host) : 0;
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]", host[i]))
            return false;
    return true;
}

bool xmpp_ws_url(const server *srv, const web_request *req, char *out, size_t cap)
{
    const char *path = srv->cfg.http_xmpp_websocket_path;
    const char *base = srv->cfg.http_public_url;
    if (!path || cap == 0)
        return false;
    int n;
    if (base) {
        bool https = strncmp(base, "https://", 8) == 0;
        const char *rest = base + (https ? 8 : 7);
        size_t len = strlen(rest);
        while (len > 0 && rest[len - 1] == '/')
            len--;
        n = snprintf(out, cap, "%s://%.*s%s", https ? "wss" : "ws", (int)len, rest, path);
    } else {
        if (!req || !host_usable(req->host))
            return false;
        n = snprintf(out, cap, "%s://%s%s", req->is_tls ? "wss" : "ws", req->host, path);
    }
    return n > 0 && (size_t)n < cap;
}

static void host_meta(void *ud, server *srv, const web_request *req, web_response *res)
{
    bool as_json = ud != NULL;
    char url[1024];
    if (!xmpp_ws_url(srv, req, url, sizeof url)) {
        web_reply_error(res, 400, NULL, "the request has no usable Host header (or set http.public_url)");
        return;
    }
    /* XEP-0156 section 3: browsers on other origins read this too */
    web_add_header(res, "Access-Control-Allow-Origin", "*");
    if (as_json) {
        web_reply_json(res, 200, json_pack("{s:[{s:s,s:s}]}", "links", "rel", REL_WEBSOCKET, "href", url));
        return;
    }
    char *href = xml_escape(url, strlen(url));
    if (!href) {
        web_reply_error(res, 500, NULL, "out of memory");
        return;
    }
    char body[2048];
    int n = snprintf(body, sizeof body,
                     "<?xml version='1.0' encoding='utf-8'?>\n"
                     "<XRD xmlns='" NS_XRD "'>\n"
                     "  <Link rel='" REL_WEBSOCKET "' href='%s'/>\n"
                     "</XRD>\n",
                     href);
    free(href);
    if (n <= 0 || (size_t)n >= sizeof body) {
        web_reply_error(res, 500, NULL, "the answer does not fit");
        return;
    }
    web_reply_body(res, 200, "application/xrd+xml; charset=utf-8", body, (size_t)n);
}

int xmpp_ws_register(server *srv)
{
    const char *path = srv->cfg.http_xmpp_websocket_path;
    if (!path)
        return 0;
    static const char as_json = 1;
    if (web_websocket(srv, path, XMPP_WS_SUBPROTOCOL, XMPP_WS_RX_CHUNK, &handler, srv) != 0 ||
        web_route(srv, "GET", "/.well-known/host-meta", 0, host_meta, NULL) != 0 ||
        web_route(srv, "GET", "/.well-known/host-meta.json", 0, host_meta, (void *)&as_json) != 0)
        return -1;
    return 0;
}
