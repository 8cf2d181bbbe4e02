/* xmpp_ws.h - XMPP over WebSocket (RFC 7395) on the HTTP listener, and its
 * discovery (XEP-0156).
 *
 * A WebSocket connection on http.xmpp_websocket_path with the subprotocol
 * "xmpp" becomes a stream transport (transport.h) driving the same client
 * stream as TCP connections do (stream.c): the same SASL, limits, router and
 * idle handling.  The stream counts as encrypted when the HTTP listener
 * speaks TLS (http.tls), or, with http.loopback_is_secure, when the peer is a
 * loopback address (a TLS-terminating proxy on the same host, or a browser
 * on it).  WebSocket streams count against c2s.max_connections like TCP
 * ones.
 *
 * Discovery: GET /.well-known/host-meta (XRD) and /.well-known/host-meta.json
 * name the WebSocket URL, built from http.public_url or the request's Host.
 *
 * specs/websocket.md is what clients see.
 */
#ifndef ONAIR_XMPP_WS_H
#define ONAIR_XMPP_WS_H

#include <stdbool.h>
#include <stddef.h>

struct server;
struct web_request;

/* Registers the endpoint and the host-meta routes with web.c (after
 * web_init, before web_start); nothing when http.xmpp_websocket_path is
 * empty.  Returns 0, or -1 when web.c refused a registration. */
int xmpp_ws_register(struct server *srv);

/* The WebSocket URL for a request (ws:// or wss://, from http.public_url or
 * else the request's Host header and whether it came over TLS), written to
 * out.  Returns false when there is none: the endpoint is off, or there is
 * no public URL and no usable Host header. */
bool xmpp_ws_url(const struct server *srv, const struct web_request *req, char *out, size_t cap);

#endif
