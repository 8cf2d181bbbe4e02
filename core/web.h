/* web.h - the HTTP server: libwebsockets on the server's own libuv loop, a
 * small JSON API framework (routes, parsed requests, JSON replies, one error
 * format) and the login tokens that authenticate requests
 * (Authorization: Bearer).  What clients see is specified in
 * specs/http-api.md.
 *
 * Lifecycle (server.c): web_init right after the store opens; from then on
 * modules register routes with web_route (from their register functions);
 * web_start opens the listeners (http.listen, http.port; port 0 = no HTTP);
 * web_stop on shutdown; web_free after the loop has ended.  The state
 * belongs to the server context (srv->web).
 *
 * Threading: every function here is called on the server loop.  Handlers are
 * synchronous: they run on the loop and reply before they return, or take
 * the response with web_defer and reply later, still from the loop (e.g. in
 * the completion callback of uv_queue_work).
 *
 * Ownership: a handler borrows the request, everything it points to and the
 * response.  They stay valid until the handler returns, or, for a deferred
 * response, until the web_reply_* call that answers it.  JSON bodies passed
 * to web_reply_json are stolen.
 *
 * WebSocket: modules register endpoints (a path and a subprotocol) with
 * web_websocket before web_start; libwebsockets does the handshake and the
 * framing (RFC 6455), this file checks the path and the subprotocol, queues
 * output beyond what the socket takes, and hands each message's payload to
 * the endpoint's handler.  A connection that upgrades stops being an HTTP
 * connection (it no longer counts against http.max_connections).
 */
#ifndef ONAIR_WEB_H
#define ONAIR_WEB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server;
struct web_query;

#define WEB_MAX_PARAMS 4

typedef struct web_request {
    const char *method;        /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *path;          /* decoded path, no query */
    const char *params[WEB_MAX_PARAMS]; /* values captured by ":name" segments of the route pattern, in order */
    size_t nparams;
    const char *user;          /* authenticated account's local part (bearer token valid), else NULL */
    json_t *body;              /* parsed JSON body (object) or NULL when there was none; borrowed */
    const struct web_query *query; /* the framework's; read it with web_query() */
    const char *host;          /* the Host header, or NULL */
    const char *if_none_match; /* the If-None-Match header, or NULL */
    bool is_tls;               /* the request came over TLS (http.tls) */
} web_request;

/* Value of the query parameter `name` (first one if repeated; "" for a bare
 * "?name"), decoded, or NULL when absent.  Borrowed like the request. */
const char *web_query(const web_request *req, const char *name);

typedef struct web_response web_response; /* opaque */

typedef void (*web_handler_fn)(void *ud, struct server *srv, const web_request *req, web_response *res);

/* Route flags. */
#define WEB_AUTH 1u /* an authenticated account is required (else 401 before the handler runs) */

/* Registers fn for method ("GET", "POST", "PUT", "PATCH" or "DELETE") on a
 * path pattern such as "/api/v1/reservations/:id": segments separated by
 * '/', each either literal or ":name", which matches one non-empty segment
 * and is captured into req->params (at most WEB_MAX_PARAMS).  Paths match
 * exactly (no trailing-slash folding); the first registered route that
 * matches wins.  ud is borrowed until web_free.  Returns 0, or -1 for a bad
 * method or pattern, a duplicate, or no web state (srv->web is NULL). */
int web_route(struct server *srv, const char *method, const char *pattern, unsigned flags, web_handler_fn fn,
              void *ud);

/* Removes the route registered for method and pattern (plugins unloading).
 * Returns 0, or -1 when there is none. */
int web_unroute(struct server *srv, const char *method, const char *pattern);
/* Whether a route is registered for exactly this method and pattern. */
bool web_has_route(struct server *srv, const char *method, const char *pattern);

/* Answers with `status` (200..599; anything else becomes 500) and body
 * (reference stolen; NULL = no body, the right thing for 204, whose body is
 * never sent).  Responses carry Content-Type: application/json,
 * Content-Length and Cache-Control: no-store.  A response is answered once;
 * later calls are ignored (and release their body). */
void web_reply_json(web_response *res, int status, json_t *body);
/* Answers with `status` and body[0..len) (copied) as content_type, e.g.
 * "application/xrd+xml; charset=utf-8" (NULL: "application/json").
 * Otherwise like web_reply_json: Content-Length is the framework's, a 204 or
 * 304 sends no body, and Cache-Control is no-store unless the handler added
 * its own.  Returns 0, or -1 for a bad content type (empty, control
 * characters, over 128 bytes), a NULL body with a length, or an answered
 * response (nothing sent then). */
int web_reply_body(web_response *res, int status, const char *content_type, const char *body, size_t len);
/* Answers with the error format of every error:
 *   {"error": {"status": 400, "field": "start", "message": "..."}}
 * field may be NULL (then omitted).  A 401 also carries
 * WWW-Authenticate: Bearer. */
void web_reply_error(web_response *res, int status, const char *field, const char *message);
/* Adds a response header (e.g. Location for a 201) before the reply.  name
 * and value are copied; Content-Type, Content-Length and Connection are the
 * framework's.  Returns 0, or -1 for a refused name or value (CR, LF, NUL, or
 * a header the framework sets). */
int web_add_header(web_response *res, const char *name, const char *value);

/* The handler of requests whose path no route matches, outside /api/: the
 * web pages (web_static.c).  It gets any method (the body, if any, is not
 * parsed: req->body is NULL) and answers like a route handler.  One at most;
 * ud is borrowed until web_free.  Returns 0, or -1 if one is set already or
 * there is no web state.  Without it such paths get the JSON 404. */
int web_fallback(struct server *srv, web_handler_fn fn, void *ud);

/* Keeps the response open after the handler returns, for an answer that
 * comes later from the loop.  Returns res, which stays valid until it is
 * answered with web_reply_json or web_reply_error; every deferred response
 * must be answered exactly once.  If the client went away meanwhile, or the
 * server is stopping, the answer is dropped and the response released then.
 * A handler that returns without replying or deferring gets a 500. */
web_response *web_defer(web_response *res);

/* Login tokens: 32 random URL-safe characters, held in memory only (a
 * restart logs everyone out) for http.token_ttl_s; at most WEB_TOKENS_PER_USER
 * live tokens per account (a new one ends the oldest). */
#define WEB_TOKEN_LEN 32
#define WEB_TOKENS_PER_USER 64

/* Issues a token for the account `user` (local part, already normalised and
 * known to exist).  Writes it to out (NUL-terminated) and its expiry (Unix
 * time in ms) to *expires_ms.  Returns 0, or -1 (out of memory, or the
 * server is stopping). */
int web_token_issue(struct server *srv, const char *user, char out[WEB_TOKEN_LEN + 1], uint64_t *expires_ms);
/* Ends the token that authenticated req (no-op if there was none). */
void web_token_revoke(struct server *srv, const web_request *req);
/* Ends every token of the account `user` (normalised local part): its
 * deletion or a new password. */
void web_token_revoke_user(struct server *srv, const char *user);
/* Expiry (Unix time in ms) of the token that authenticated req, 0 if none. */
uint64_t web_token_expires(struct server *srv, const web_request *req);

/* "2024-05-01T12:00:00Z" (RFC 3339, UTC, whole seconds) for a Unix time in
 * ms; out needs 21 bytes or more. */
void web_format_time(uint64_t ms, char *out, size_t cap);

/* ---- WebSocket endpoints ---- */

typedef struct web_ws web_ws; /* one WebSocket connection (web.c's) */

typedef struct web_ws_handler {
    /* Before the handshake is answered: may one more connection be taken?
     * NULL means always; false answers 503. */
    bool (*can_open)(void *ud);
    /* The handshake is done: returns the connection's own data (conn_ud
     * below), or NULL to close it at once.  ws stays valid until on_close
     * returns. */
    void *(*on_open)(void *ud, web_ws *ws);
    /* A piece of the current message (borrowed for the call); is_binary for
     * a binary message, is_last on its final piece (len may be 0).  Pieces
     * are at most the endpoint's rx_chunk_bytes. */
    void (*on_data)(void *conn_ud, const char *data, size_t len, bool is_binary, bool is_last);
    /* The connection is gone (either side closed it, or the server stops). */
    void (*on_close)(void *conn_ud);
    /* Bytes of the handler's own per-connection data that web.c allocates
     * with the connection (zeroed, aligned for any type; web_ws_data), so
     * that an idle connection costs one allocation less; 0 for none. */
    size_t conn_bytes;
} web_ws_handler;

/* Offers WebSocket on `path` (exact match) for clients that name
 * `subprotocol` among theirs (Sec-WebSocket-Protocol); a handshake without
 * it is answered 400, one on another path 404.  rx_chunk_bytes (64 or more)
 * is the size of the connection's receive buffer, kept for its lifetime:
 * larger messages arrive in pieces.  h and ud are borrowed until web_free.
 * Before web_start only.  Returns 0, or -1 for a bad path or subprotocol, a
 * duplicate, or no web state. */
int web_websocket(struct server *srv, const char *path, const char *subprotocol, size_t rx_chunk_bytes,
                  const web_ws_handler *h, void *ud);
/* Sends one text message made of n pieces (borrowed).  Written at once when
 * the socket takes it; otherwise copied into the connection's queue, which
 * may hold at most limits.max_write_buffer_bytes (beyond, the connection is
 * aborted).  Returns 0, or -1 when the connection is closing or was
 * aborted. */
int web_ws_send(web_ws *ws, const char *const *parts, const size_t *lens, size_t n);
/* The same for one binary message. */
int web_ws_send_binary(web_ws *ws, const char *const *parts, const size_t *lens, size_t n);
/* Payload bytes waiting in the connection's queue (what the socket has not
 * taken yet): a sender that must not fall behind drops before it grows. */
size_t web_ws_queued(const web_ws *ws);
/* Sets the connection's TCP send buffer (SO_SNDBUF; the system's automatic
 * sizing, which may hold seconds of a stream, then stops).  Returns 0 or -1. */
int web_ws_set_send_buffer(web_ws *ws, size_t bytes);
/* Closes once the queue is out, with a close frame carrying code (RFC 6455
 * section 7.4: 1000 normal, 1003 unacceptable data, 1009 too big); later
 * sends are refused.  on_close follows when the connection is gone. */
void web_ws_close(web_ws *ws, unsigned short code);
/* The same with a reason (UTF-8, cut to 123 bytes) in the close frame. */
void web_ws_close_reason(web_ws *ws, unsigned short code, const char *reason);
/* Closes now, dropping the queue; on_close follows from the loop. */
void web_ws_abort(web_ws *ws);
bool web_ws_is_tls(const web_ws *ws);
/* The handler's conn_bytes of data for this connection (NULL when it asked
 * for none): owned by web.c, valid from on_open until on_close returns. */
void *web_ws_data(web_ws *ws);
/* The connection of data that web_ws_data returned (its handler's data
 * need not keep a pointer back); valid as long as the data is. */
web_ws *web_ws_of_data(void *data);
/* The server the connection belongs to. */
struct server *web_ws_server(const web_ws *ws);
/* Whether the peer's address is a loopback one (127.0.0.0/8, ::1). */
bool web_ws_peer_is_loopback(const web_ws *ws);
/* "ip:port" of the peer, for logs: a buffer of the server's, valid until the
 * next call. */
const char *web_ws_peer(const web_ws *ws);

/* Creates the web state in srv->web (routes, tokens; no sockets yet).
 * Returns 0 or -1 (out of memory). */
int web_init(struct server *srv);
/* Creates the libwebsockets context on srv->loop and opens the listeners
 * when http.port is not 0.  Returns 0, or -1 with a message in err (an
 * address that cannot be bound is a start-up error, like c2s). */
int web_start(struct server *srv, char *err, size_t errlen);
/* Once a second from the server's sweep timer: drops expired tokens (every
 * minute or so). */
void web_sweep(struct server *srv);
/* After a reload (SIGHUP) with http.tls: the HTTP listener takes the
 * certificate and key files as they are now for new handshakes.  Returns 0,
 * or -1 with a message in err (the old ones stay). */
int web_reload_certificate(struct server *srv, char *err, size_t errlen);
/* Stops accepting, closes every HTTP connection and begins taking the
 * libwebsockets context down; the loop ends by itself afterwards.  Deferred
 * responses still pending are answered into the void. */
void web_stop(struct server *srv);
/* Frees everything once the loop has ended (finishes the libwebsockets
 * context). Safe when web_init never ran. */
void web_free(struct server *srv);

#endif
