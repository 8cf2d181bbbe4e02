/* web.c - the HTTP server (web.h): libwebsockets 4.1 on the server's libuv
 * loop as a foreign loop, a JSON API framework on top of it, and the login
 * tokens that authenticate requests.
 *
 * Sockets: onaird binds and listens with libuv itself (the same code path and
 * errors as the c2s listeners) and hands each accepted socket to a
 * non-listening libwebsockets vhost (lws_adopt_descriptor_vhost).  The
 * duplicated descriptor is owned by libwebsockets from then on.
 *
 * Requests: libwebsockets parses the request line and headers (and decodes
 * the path and query); this file reads the body (bounded by
 * http.max_body_bytes, announced by Content-Length), matches the route,
 * checks the bearer token, parses the JSON body with jansson and calls the
 * handler.  A path outside /api/ that no route matches goes to the one
 * fallback handler (web_fallback: the web pages, web_static.c) with its body
 * unparsed.  While a request is handled, reading from its connection pauses
 * (rx flow control); the answer is written in one piece when the socket is
 * writable, then the connection waits for its next request (keep-alive).
 * Cache-Control: no-store goes on every answer whose handler set none.
 *
 * Ownership: a connection (web_conn, the wsi's opaque user data) owns its
 * request in progress (web_response).  When the connection goes, an answered
 * or undeferred request is freed with it; a deferred one that is not yet
 * answered is detached (conn = NULL) and freed by the web_reply_* call that
 * answers it.
 *
 * Tokens: kept in memory only, keyed by the SHA-256 of the token (the token
 * itself is not stored), with a per-account list to bound how many one
 * account may hold.
 *
 * WebSocket: an upgrade is checked in LWS_CALLBACK_HTTP_CONFIRM_UPGRADE
 * (path, subprotocol, the endpoint's capacity; refusals get the JSON error
 * and the connection closes).  libwebsockets then binds the connection to
 * the endpoint's protocol (named after its subprotocol) and does the
 * handshake; at LWS_CALLBACK_ESTABLISHED the connection's web_conn is
 * replaced by a web_ws (the opaque user data: both start with their kind).
 * Output is written with lws_write at once; when libwebsockets still holds
 * part of an earlier message (lws_partial_buffered), messages wait in the
 * web_ws's queue for LWS_CALLBACK_SERVER_WRITEABLE.  The protocol's
 * tx_packet_size lets one send() carry a whole message.  The web_ws is freed
 * at LWS_CALLBACK_WSI_DESTROY, which libwebsockets always sends to the first
 * protocol; the handler hears on_close at LWS_CALLBACK_CLOSED (or then).
 *
 * TLS (http.tls): libwebsockets' own OpenSSL server context with the
 * server's certificate and key files, TLS 1.2 and later; accepted sockets
 * are adopted with LWS_ADOPT_ALLOW_SSL.
 */
#include "web.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>
#include <utlist.h>

#include "server.h"

#define WEB_MAX_SEGMENTS 16
#define WEB_MAX_QUERY 32
#define WEB_MAX_HEADERS 8         /* extra response headers */
#define WEB_MAX_HEADER_BYTES 8192 /* request headers, all together */
#define WEB_HEADER_ROOM 1024      /* status line and the framework's headers */
#define WEB_TIMEOUT_S 10          /* a request's headers and body must arrive within this */
#define WEB_KEEPALIVE_S 10        /* idle keep-alive connections close after this */
#define WEB_ANSWER_TIMEOUT_S 30   /* a handler's answer must come within this */
#define WEB_SWEEP_MS 60000
#define WEB_WS_TX_PACKET 1048576  /* bytes one send() of a WebSocket message may carry */

enum { WEB_KIND_HTTP = 1, WEB_KIND_WS = 2 }; /* first byte of the wsi's opaque user data */

/* -- state ------------------------------------------------------------- */

typedef struct web_route_entry {
    char method[8];
    char *pattern;  /* owned */
    char **segs;    /* owned: the pattern's segments; ":name" captures */
    size_t nsegs;
    unsigned flags;
    web_handler_fn fn;
    void *ud;
    struct web_route_entry *next;
} web_route_entry;

typedef struct web_user web_user;

typedef struct web_token {
    unsigned char key[SHA256_DIGEST_LENGTH]; /* SHA-256 of the token */
    uint64_t expires_ms;
    web_user *owner;
    struct web_token *prev, *next; /* the owner's tokens, oldest first */
    UT_hash_handle hh;             /* web.tokens, by key */
} web_token;

struct web_user {
    char *name; /* owned local part */
    web_token *tokens;
    unsigned ntokens;
    UT_hash_handle hh; /* web.users, by name */
};

struct web_query {
    size_t n;
    char *names[WEB_MAX_QUERY]; /* owned "name\0value" strings */
    const char *values[WEB_MAX_QUERY];
};

typedef struct web_conn web_conn;

typedef struct web_ws_endpoint {
    char *path;        /* owned */
    char *subprotocol; /* owned; also the libwebsockets protocol's name */
    size_t rx_chunk;
    const web_ws_handler *h;
    void *ud;
    struct web_ws_endpoint *next;
} web_ws_endpoint;

/* A message waiting for the socket: LWS_PRE bytes of room, then the payload. */
typedef struct ws_msg {
    struct ws_msg *next;
    size_t len;
    bool is_binary;
    unsigned char data[];
} ws_msg;

/* Kept for the connection's life, so kept small: with the XMPP transport's
 * data it is one 112-byte allocation (specs/websocket.md, "Inside the
 * server"); what only a closing connection needs is allocated then. */
struct web_ws {
    unsigned char kind;        /* WEB_KIND_WS */
    bool closing;              /* close asked for: no more sends; close frame after the queue */
    bool killed;               /* aborted */
    bool is_binary;            /* the message being received */
    bool told_closed;          /* the handler heard on_close */
    bool close_sent;           /* our close frame is out: waiting for the peer's */
    unsigned short close_code;
    struct web *web;
    struct lws *wsi;           /* NULL once closed */
    const web_ws_endpoint *ep;
    void *ud;                  /* the handler's connection data */
    char *close_reason;        /* owned, NULL for none: RFC 6455 section 5.5, at most 123 bytes */
    ws_msg *queue, *queue_tail; /* owned */
    size_t queued;             /* payload bytes in the queue */
    max_align_t data[];        /* the handler's conn_bytes (web_ws_data) */
};

#define WS_CLOSE_REASON_MAX 123

typedef enum txn_state { TXN_READING, TXN_HANDLING, TXN_ANSWERED } txn_state;

struct web_response {
    struct web *web;
    web_conn *conn; /* NULL once the connection has gone */
    web_request req;
    struct web_query query;
    txn_state state;
    char method[8];
    char *path;   /* owned */
    char logpath[96]; /* the path as logged: control bytes replaced, cut short */
    char *segbuf; /* owned: the path cut into segments */
    char *segs[WEB_MAX_SEGMENTS];
    size_t nsegs;
    bool too_many_segs;
    char *user; /* owned; req.user */
    unsigned char token_key[SHA256_DIGEST_LENGTH];
    bool has_bearer; /* Authorization: Bearer <token> given */
    bool bad_auth;   /* an Authorization header that is not a bearer token */
    char *ctype;     /* owned Content-Type, or NULL */
    char *if_none_match; /* owned If-None-Match header, or NULL; req.if_none_match */
    char *body;      /* owned raw body */
    size_t body_len, body_cap;
    json_t *json; /* owned; req.body */
    bool keep_alive, http10, head, close_after;
    bool body_done;  /* libwebsockets reported the end of the body */
    bool deferred, listed, in_handler;
    int status;
    char *out; /* owned body of the answer (JSON unless out_ctype) */
    size_t out_len;
    char *out_ctype; /* owned Content-Type of a body that is not JSON, or NULL */
    char *host;      /* owned; req.host */
    char *hnames[WEB_MAX_HEADERS]; /* owned "Name:" */
    char *hvalues[WEB_MAX_HEADERS];
    size_t nheaders;
    struct web_response *prev, *next; /* web.deferred */
};

struct web_conn {
    unsigned char kind;  /* WEB_KIND_HTTP */
    const web_ws_endpoint *upgrade; /* the endpoint an accepted upgrade is for */
    struct web *web;
    struct lws *wsi;     /* NULL once closed */
    web_response *txn;   /* the request in progress (owned, see conn_detach) */
    web_conn *prev, *next; /* web.conns */
};

typedef struct web_listener {
    uv_tcp_t tcp;
    struct web *web;
    bool is_open;
} web_listener;

struct web {
    server *srv;
    struct lws_context *ctx; /* owned; set to NULL by libwebsockets when finally destroyed */
    struct lws_vhost *vhost;
    struct lws_protocol_vhost_options headers[1];
    web_listener listeners[CONFIG_MAX_LISTEN];
    size_t nlisteners;
    web_route_entry *routes, *routes_tail; /* owned */
    web_ws_endpoint *endpoints;            /* owned */
    size_t nendpoints;
    struct lws_protocols *ws_protocols;    /* owned: the HTTP protocol, one per endpoint, terminator */
    size_t nwebsockets;                    /* open WebSocket connections */
    unsigned char *frame;                  /* owned scratch: LWS_PRE + one outgoing message */
    size_t frame_cap;
    web_token *tokens;                     /* owned */
    web_user *users;                       /* owned */
    web_conn *conns;                       /* live connections (owned) */
    web_response *deferred;                /* deferred, unanswered responses */
    web_handler_fn fallback;               /* paths no route matches (web_fallback) */
    void *fallback_ud;
    size_t nconns;
    uint64_t next_sweep_ms;
    bool stopping;
    char scratch[WEB_MAX_HEADER_BYTES + 1];
};

static int on_upgrade(web_conn *c, struct lws *wsi, const char *what);
static void ws_detach(web_ws *ws);

/* -- utilities ---------------------------------------------------------- */

void web_format_time(uint64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    if (strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0 && cap)
        out[0] = '\0';
}

static void token_hash(const char *token, size_t len, unsigned char key[SHA256_DIGEST_LENGTH])
{
    SHA256((const unsigned char *)token, len, key);
}

/* Copies header `tok` into the scratch buffer; returns it or NULL if absent
 * (or larger than any header may be). */
static const char *hdr(struct web *w, struct lws *wsi, enum lws_token_indexes tok)
{
    int n = lws_hdr_total_length(wsi, tok);
    if (n <= 0 || n > WEB_MAX_HEADER_BYTES)
        return NULL;
    if (lws_hdr_copy(wsi, w->scratch, (int)sizeof w->scratch, tok) < 0)
        return NULL;
    return w->scratch;
}

/* Cuts "/a/b" into "a", "b" (in place); returns the count, or
 * WEB_MAX_SEGMENTS + 1 if there are too many. */
static size_t split_path(char *p, char **segs)
{
    size_t n = 0;
    if (*p == '/')
        p++;
    if (*p == '\0')
        return 0;
    for (;;) {
        if (n == WEB_MAX_SEGMENTS)
            return WEB_MAX_SEGMENTS + 1;
        segs[n++] = p;
        char *slash = strchr(p, '/');
        if (!slash)
            return n;
        *slash = '\0';
        p = slash + 1;
    }
}

/* -- tokens --------------------------------------------------------------- */

static void token_remove(struct web *w, web_token *t)
{
    web_user *u = t->owner;
    HASH_DEL(w->tokens, t);
    DL_DELETE(u->tokens, t);
    if (--u->ntokens == 0) {
        HASH_DEL(w->users, u);
        free(u->name);
        free(u);
    }
    free(t);
}

/* The live token with this key, or NULL (an expired one is dropped). */
static web_token *token_find(struct web *w, const unsigned char key[SHA256_DIGEST_LENGTH])
{
    web_token *t = NULL;
    HASH_FIND(hh, w->tokens, key, SHA256_DIGEST_LENGTH, t);
    if (t && t->expires_ms <= server_now_ms()) {
        token_remove(w, t);
        t = NULL;
    }
    return t;
}

int web_token_issue(server *srv, const char *user, char out[WEB_TOKEN_LEN + 1], uint64_t *expires_ms)
{
    struct web *w = srv->web;
    if (!w || w->stopping)
        return -1;
    web_user *u = NULL;
    HASH_FIND_STR(w->users, user, u);
    if (!u) {
        u = calloc(1, sizeof *u);
        if (!u || !(u->name = strdup(user))) {
            free(u);
            return -1;
        }
        HASH_ADD_KEYPTR(hh, w->users, u->name, strlen(u->name), u);
    }
    web_token *t = calloc(1, sizeof *t);
    if (!t) {
        if (u->ntokens == 0) {
            HASH_DEL(w->users, u);
            free(u->name);
            free(u);
        }
        return -1;
    }
    while (u->ntokens >= WEB_TOKENS_PER_USER)
        token_remove(w, u->tokens); /* the oldest; u keeps at least one */
    web_token *clash;
    do {
        server_random_id(out, WEB_TOKEN_LEN + 1, WEB_TOKEN_LEN);
        token_hash(out, WEB_TOKEN_LEN, t->key);
        clash = NULL;
        HASH_FIND(hh, w->tokens, t->key, SHA256_DIGEST_LENGTH, clash);
    } while (clash);
    t->expires_ms = server_now_ms() + (uint64_t)srv->cfg.http_token_ttl_s * 1000;
    t->owner = u;
    DL_APPEND(u->tokens, t);
    u->ntokens++;
    HASH_ADD(hh, w->tokens, key, SHA256_DIGEST_LENGTH, t);
    *expires_ms = t->expires_ms;
    return 0;
}

static const web_response *txn_of(const web_request *req)
{
    return (const web_response *)((const char *)req - offsetof(web_response, req));
}

void web_token_revoke(server *srv, const web_request *req)
{
    const web_response *t = txn_of(req);
    if (!srv->web || !t->has_bearer)
        return;
    web_token *tok = token_find(srv->web, t->token_key);
    if (tok)
        token_remove(srv->web, tok);
}

void web_token_revoke_user(server *srv, const char *user)
{
    struct web *w = srv->web;
    web_user *u = NULL;
    if (!w || !user)
        return;
    HASH_FIND_STR(w->users, user, u);
    while (u && u->ntokens > 1)
        token_remove(w, u->tokens);
    if (u)
        token_remove(w, u->tokens); /* frees u with its last token */
}

uint64_t web_token_expires(server *srv, const web_request *req)
{
    const web_response *t = txn_of(req);
    if (!srv->web || !t->has_bearer)
        return 0;
    web_token *tok = token_find(srv->web, t->token_key);
    return tok ? tok->expires_ms : 0;
}

void web_sweep(server *srv)
{
    struct web *w = srv->web;
    uint64_t now = server_now_ms();
    if (!w || now < w->next_sweep_ms)
        return;
    w->next_sweep_ms = now + WEB_SWEEP_MS;
    web_token *t, *tmp;
    HASH_ITER(hh, w->tokens, t, tmp)
    {
        if (t->expires_ms <= now)
            token_remove(w, t);
    }
}

/* -- routes ------------------------------------------------------------- */

static void route_free(web_route_entry *r)
{
    for (size_t i = 0; i < r->nsegs; i++)
        free(r->segs[i]);
    free(r->segs);
    free(r->pattern);
    free(r);
}

int web_route(server *srv, const char *method, const char *pattern, unsigned flags, web_handler_fn fn, void *ud)
{
    struct web *w = srv->web;
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
    bool known = false;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        known = known || (method && strcmp(method, methods[i]) == 0);
    if (!w || !known || !fn || !pattern || pattern[0] != '/' || strlen(pattern) > 1024)
        return -1;
    for (web_route_entry *r = w->routes; r; r = r->next)
        if (strcmp(r->method, method) == 0 && strcmp(r->pattern, pattern) == 0)
            return -1;
    web_route_entry *r = calloc(1, sizeof *r);
    char *copy = strdup(pattern);
    char *segs[WEB_MAX_SEGMENTS];
    size_t n = copy ? split_path(copy, segs) : 0;
    size_t nparams = 0;
    bool ok = r && copy && n <= WEB_MAX_SEGMENTS;
    for (size_t i = 0; ok && i < n; i++) {
        if (segs[i][0] == '\0' || (segs[i][0] == ':' && (segs[i][1] == '\0' || ++nparams > WEB_MAX_PARAMS)))
            ok = false;
    }
    if (ok) {
        r->segs = calloc(n ? n : 1, sizeof *r->segs);
        r->pattern = strdup(pattern);
        ok = r->segs && r->pattern;
        for (size_t i = 0; ok && i < n; i++)
            ok = (r->segs[r->nsegs++] = strdup(segs[i])) != NULL;
    }
    free(copy);
    if (!ok) {
        if (r)
            route_free(r);
        return -1;
    }
    snprintf(r->method, sizeof r->method, "%s", method);
    r->flags = flags;
    r->fn = fn;
    r->ud = ud;
    if (w->routes_tail)
        w->routes_tail->next = r;
    else
        w->routes = r;
    w->routes_tail = r;
    return 0;
}

bool web_has_route(server *srv, const char *method, const char *pattern)
{
    struct web *w = srv->web;
    for (web_route_entry *r = w ? w->routes : NULL; r && method && pattern; r = r->next)
        if (strcmp(r->method, method) == 0 && strcmp(r->pattern, pattern) == 0)
            return true;
    return false;
}

int web_unroute(server *srv, const char *method, const char *pattern)
{
    struct web *w = srv->web;
    if (!w || !method || !pattern)
        return -1;
    web_route_entry *prev = NULL;
    for (web_route_entry *r = w->routes; r; prev = r, r = r->next) {
        if (strcmp(r->method, method) != 0 || strcmp(r->pattern, pattern) != 0)
            continue;
        if (prev)
            prev->next = r->next;
        else
            w->routes = r->next;
        if (w->routes_tail == r)
            w->routes_tail = prev;
        route_free(r);
        return 0;
    }
    return -1;
}

/* Whether r matches the request's path; fills params when it does. */
static bool route_match(const web_route_entry *r, const web_response *t, const char **params, size_t *nparams)
{
    if (t->too_many_segs || r->nsegs != t->nsegs)
        return false;
    size_t np = 0;
    for (size_t i = 0; i < r->nsegs; i++) {
        if (r->segs[i][0] == ':') {
            if (t->segs[i][0] == '\0')
                return false;
            if (params)
                params[np] = t->segs[i];
            np++;
        } else if (strcmp(r->segs[i], t->segs[i]) != 0) {
            return false;
        }
    }
    if (nparams)
        *nparams = np;
    return true;
}

/* -- requests and answers ------------------------------------------------ */

const char *web_query(const web_request *req, const char *name)
{
    const struct web_query *q = req->query;
    if (!q || !name)
        return NULL;
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->names[i], name) == 0)
            return q->values[i];
    return NULL;
}

static void txn_free(web_response *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->query.n; i++)
        free(t->query.names[i]);
    for (size_t i = 0; i < t->nheaders; i++) {
        free(t->hnames[i]);
        free(t->hvalues[i]);
    }
    free(t->path);
    free(t->segbuf);
    free(t->user);
    free(t->ctype);
    free(t->if_none_match);
    if (t->body)
        OPENSSL_cleanse(t->body, t->body_len); /* may hold a password */
    free(t->body);
    json_decref(t->json);
    free(t->out);
    free(t->out_ctype);
    free(t->host);
    free(t);
}

/* The connection has gone (or the server stops): releases its request
 * unless a deferred answer is still to come, which then owns it. */
static void conn_detach(web_conn *c)
{
    web_response *t = c->txn;
    c->txn = NULL;
    c->wsi = NULL;
    if (!t)
        return;
    t->conn = NULL;
    if (!t->listed)
        txn_free(t);
}

/* An answer is complete: write it when the socket is writable, or drop it if
 * nobody is listening any more. */
static void answer_ready(web_response *t)
{
    if (t->listed) {
        DL_DELETE(t->web->deferred, t);
        t->listed = false;
    }
    if (!t->conn || !t->conn->wsi) {
        txn_free(t);
        return;
    }
    /* libwebsockets serves no POLLOUT to an h1 connection whose input is
     * paused: resume input first (the request is complete by now). */
    lws_rx_flow_control(t->conn->wsi, 1);
    lws_callback_on_writable(t->conn->wsi);
}

static bool header_value_ok(const char *s)
{
    return s && strpbrk(s, "\r\n") == NULL;
}

int web_add_header(web_response *res, const char *name, const char *value)
{
    static const char *const reserved[] = {"content-type", "content-length", "connection", "transfer-encoding"};
    if (!res || res->state == TXN_ANSWERED || res->nheaders >= WEB_MAX_HEADERS || !name || !*name ||
        !header_value_ok(value) || strpbrk(name, "\r\n:; \t") || strlen(name) + strlen(value) > 512)
        return -1;
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strcasecmp(name, reserved[i]) == 0)
            return -1;
    size_t nlen = strlen(name);
    char *n = malloc(nlen + 2);
    char *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return -1;
    }
    memcpy(n, name, nlen);
    n[nlen] = ':';
    n[nlen + 1] = '\0';
    res->hnames[res->nheaders] = n;
    res->hvalues[res->nheaders++] = v;
    return 0;
}

static bool has_header(const web_response *t, const char *name)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < t->nheaders; i++)
        if (strncasecmp(t->hnames[i], name, nlen) == 0 && t->hnames[i][nlen] == ':')
            return true;
    return false;
}

void web_reply_json(web_response *res, int status, json_t *body)
{
    if (!res || res->state == TXN_ANSWERED) {
        json_decref(body);
        return;
    }
    if (status < 200 || status > 599)
        status = 500;
    res->status = status;
    if (body && status != 204) {
        res->out = json_dumps(body, JSON_COMPACT);
        if (res->out)
            res->out_len = strlen(res->out);
        else
            res->status = 500;
    }
    json_decref(body);
    res->state = TXN_ANSWERED;
    if (!res->in_handler)
        answer_ready(res);
}

int web_reply_body(web_response *res, int status, const char *content_type, const char *body, size_t len)
{
    if (!res || res->state == TXN_ANSWERED || (len && !body))
        return -1;
    if (content_type && (content_type[0] == '\0' || strlen(content_type) > 128 || !header_value_ok(content_type)))
        return -1;
    if (status < 200 || status > 599)
        status = 500;
    res->status = status;
    if (status != 204 && status != 304) {
        res->out = malloc(len ? len : 1);
        res->out_ctype = content_type ? strdup(content_type) : NULL;
        if (!res->out || (content_type && !res->out_ctype)) {
            free(res->out);
            free(res->out_ctype);
            res->out = res->out_ctype = NULL;
            res->status = 500;
        } else {
            if (len)
                memcpy(res->out, body, len);
            res->out_len = len;
        }
    }
    res->state = TXN_ANSWERED;
    if (!res->in_handler)
        answer_ready(res);
    return 0;
}

int web_fallback(server *srv, web_handler_fn fn, void *ud)
{
    struct web *w = srv->web;
    if (!w || !fn || w->fallback)
        return -1;
    w->fallback = fn;
    w->fallback_ud = ud;
    return 0;
}

/* {"error": {"status": ..., "field": ..., "message": ...}} (new reference), or NULL. */
static json_t *error_body(int status, const char *field, const char *message)
{
    json_t *err = json_pack("{s:i}", "status", status);
    if (err && field)
        json_object_set_new(err, "field", json_string(field));
    if (err)
        json_object_set_new(err, "message", json_string(message ? message : ""));
    return err ? json_pack("{s:o}", "error", err) : NULL;
}

void web_reply_error(web_response *res, int status, const char *field, const char *message)
{
    if (!res || res->state == TXN_ANSWERED)
        return;
    if (status == 401 && !has_header(res, "WWW-Authenticate"))
        web_add_header(res, "WWW-Authenticate", "Bearer");
    web_reply_json(res, status, error_body(status, field, message));
}

web_response *web_defer(web_response *res)
{
    if (res && res->state != TXN_ANSWERED && !res->deferred) {
        res->deferred = true;
        res->listed = true;
        DL_APPEND(res->web->deferred, res);
    }
    return res;
}

/* Answers a request the framework refuses before it reaches a handler. */
static void refuse(web_response *t, int status, const char *field, const char *message)
{
    web_reply_error(t, status, field, message);
}

/* Whether a Content-Type names JSON ("application/json", parameters allowed). */
static bool is_json_type(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strlen("application/json");
    if (strncasecmp(ct, "application/json", n) != 0)
        return false;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* The request is complete: route, authenticate, parse the body, call the
 * handler. */
static void dispatch(web_response *t)
{
    struct web *w = t->web;
    server *srv = w->srv;
    t->state = TXN_HANDLING;
    if (t->conn && t->conn->wsi) {
        /* No input (and no busy polling) until this is answered. */
        lws_rx_flow_control(t->conn->wsi, 0);
        lws_set_timeout(t->conn->wsi, PENDING_TIMEOUT_HTTP_CONTENT, WEB_ANSWER_TIMEOUT_S);
    }

    web_route_entry *hit = NULL;
    char allow[64] = "";
    bool path_known = false;
    for (web_route_entry *r = w->routes; r; r = r->next) {
        if (!route_match(r, t, NULL, NULL))
            continue;
        path_known = true;
        if (!hit && strcmp(r->method, t->method) == 0)
            hit = r;
        if (!strstr(allow, r->method)) {
            size_t len = strlen(allow);
            snprintf(allow + len, sizeof allow - len, "%s%s", len ? ", " : "", r->method);
        }
    }
    bool is_api = strncmp(t->path, "/api", 4) == 0 && (t->path[4] == '/' || t->path[4] == '\0');
    if (!path_known && w->fallback && !is_api) {
        t->in_handler = true;
        w->fallback(w->fallback_ud, srv, &t->req, t);
        t->in_handler = false;
        if (t->state == TXN_ANSWERED) {
            answer_ready(t);
        } else if (!t->deferred) {
            log_write(&srv->log, LOG_ERROR, "web", "%s %s: the page handler gave no answer", t->method, t->logpath);
            refuse(t, 500, NULL, "the server gave no answer");
        }
        return;
    }
    if (!path_known) {
        refuse(t, 404, NULL, "no resource at this path");
        return;
    }
    if (!hit) {
        char msg[160];
        snprintf(msg, sizeof msg, "method %s is not allowed here; allowed: %s", t->method, allow);
        web_add_header(t, "Allow", allow);
        refuse(t, 405, NULL, msg);
        return;
    }
    route_match(hit, t, t->req.params, &t->req.nparams);

    web_token *tok = t->has_bearer ? token_find(w, t->token_key) : NULL;
    if (tok) {
        t->user = strdup(tok->owner->name);
        if (!t->user) {
            refuse(t, 500, NULL, "out of memory");
            return;
        }
        t->req.user = t->user;
    }
    if ((hit->flags & WEB_AUTH) && !t->req.user) {
        if (t->has_bearer || t->bad_auth) {
            web_add_header(t, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
            refuse(t, 401, NULL,
                   t->bad_auth ? "the Authorization header must be \"Bearer <token>\""
                               : "the login token is not valid (unknown, expired or ended)");
        } else {
            refuse(t, 401, NULL, "this needs a login token: Authorization: Bearer <token>");
        }
        return;
    }

    if (t->body_len > 0) {
        if (!is_json_type(t->ctype)) {
            refuse(t, 400, NULL, "the request body must be JSON, sent with Content-Type: application/json");
            return;
        }
        json_error_t jerr;
        t->json = json_loadb(t->body, t->body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!t->json) {
            char msg[300];
            snprintf(msg, sizeof msg, "the body is not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                     jerr.column);
            refuse(t, 400, NULL, msg);
            return;
        }
        if (!json_is_object(t->json)) {
            refuse(t, 400, NULL, "the body must be a JSON object");
            return;
        }
        t->req.body = t->json;
    }

    t->in_handler = true;
    hit->fn(hit->ud, srv, &t->req, t);
    t->in_handler = false;
    if (t->state == TXN_ANSWERED) {
        answer_ready(t);
    } else if (!t->deferred) {
        log_write(&srv->log, LOG_ERROR, "web", "%s %s: the handler gave no answer", t->method, t->logpath);
        refuse(t, 500, NULL, "the server gave no answer");
    }
}

/* Strict Content-Length: digits only. */
static bool parse_length(const char *s, size_t *out)
{
    if (!s || !*s)
        return false;
    unsigned long long v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (1ULL << 40))
            return false;
        v = v * 10 + (unsigned)(*s - '0');
    }
    *out = (size_t)v;
    return true;
}

/* Headers of a new request are in: collects what the request needs, then
 * waits for the body or dispatches at once. */
static int on_request(web_conn *c, struct lws *wsi, const char *uri, size_t urilen)
{
    struct web *w = c->web;
    server *srv = w->srv;
    if (c->txn)
        return -1; /* a request while one is open: not something HTTP/1.1 lets happen */
    web_response *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    t->web = w;
    t->conn = c;
    c->txn = t;
    t->req.method = t->method;
    t->req.query = &t->query;

    static const struct {
        enum lws_token_indexes tok;
        const char *name;
    } methods[] = {
        {WSI_TOKEN_GET_URI, "GET"},       {WSI_TOKEN_POST_URI, "POST"},   {WSI_TOKEN_PUT_URI, "PUT"},
        {WSI_TOKEN_PATCH_URI, "PATCH"},   {WSI_TOKEN_DELETE_URI, "DELETE"}, {WSI_TOKEN_HEAD_URI, "HEAD"},
        {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if (lws_hdr_total_length(wsi, methods[i].tok) > 0) {
            snprintf(t->method, sizeof t->method, "%s", methods[i].name);
            break;
        }
    }
    t->head = strcmp(t->method, "HEAD") == 0;
    t->path = strndup(uri ? uri : "/", uri ? urilen : 1);
    t->segbuf = t->path ? strdup(t->path) : NULL;
    if (!t->path || !t->segbuf)
        return -1;
    t->req.path = t->path;
    size_t plen = strlen(t->path), keep = plen < sizeof t->logpath ? plen : sizeof t->logpath - 4;
    for (size_t i = 0; i < keep; i++)
        t->logpath[i] = (unsigned char)t->path[i] < 0x20 || t->path[i] == 0x7f ? '?' : t->path[i];
    memcpy(t->logpath + keep, plen > keep ? "..." : "", plen > keep ? 4 : 1);
    size_t n = split_path(t->segbuf, t->segs);
    t->too_many_segs = n > WEB_MAX_SEGMENTS;
    t->nsegs = t->too_many_segs ? 0 : n;

    /* HTTP/1.1 keeps the connection unless told otherwise; 1.0 only when asked */
    const char *ver = hdr(w, wsi, WSI_TOKEN_HTTP);
    t->http10 = !(ver && strcmp(ver, "HTTP/1.1") == 0);
    const char *conn_hdr = hdr(w, wsi, WSI_TOKEN_CONNECTION);
    if (t->http10)
        t->keep_alive = conn_hdr && strcasecmp(conn_hdr, "keep-alive") == 0;
    else
        t->keep_alive = !(conn_hdr && strcasecmp(conn_hdr, "close") == 0);

    for (int i = 0; t->query.n < WEB_MAX_QUERY; i++) {
        int len = lws_hdr_copy_fragment(wsi, w->scratch, (int)sizeof w->scratch, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (len < 0)
            break;
        char *name = malloc((size_t)len + 1);
        if (!name)
            return -1;
        memcpy(name, w->scratch, (size_t)len + 1);
        char *eq = strchr(name, '=');
        if (eq)
            *eq = '\0';
        t->query.values[t->query.n] = eq ? eq + 1 : name + len;
        t->query.names[t->query.n++] = name;
    }

    const char *auth = hdr(w, wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (auth) {
        while (*auth == ' ')
            auth++;
        if (strncasecmp(auth, "Bearer ", 7) == 0) {
            const char *tok = auth + 7;
            while (*tok == ' ')
                tok++;
            size_t len = strlen(tok);
            while (len && tok[len - 1] == ' ')
                len--;
            if (len > 0 && len <= 256) {
                token_hash(tok, len, t->token_key);
                t->has_bearer = true;
            } else {
                t->bad_auth = true;
            }
        } else {
            t->bad_auth = true;
        }
    }
    const char *ct = hdr(w, wsi, WSI_TOKEN_HTTP_CONTENT_TYPE);
    if (ct && !(t->ctype = strdup(ct)))
        return -1;
    const char *host = hdr(w, wsi, WSI_TOKEN_HOST);
    if (host && !(t->host = strdup(host)))
        return -1;
    const char *inm = hdr(w, wsi, WSI_TOKEN_HTTP_IF_NONE_MATCH);
    if (inm && !(t->if_none_match = strdup(inm)))
        return -1;
    t->req.host = t->host;
    t->req.if_none_match = t->if_none_match;
    t->req.is_tls = lws_is_ssl(wsi) != 0;

    log_write(&srv->log, LOG_DEBUG, "web", "%s %s", t->method, t->logpath);

    /* The body: only with Content-Length, and within the limit. */
    bool wants_body = strcmp(t->method, "POST") == 0 || strcmp(t->method, "PUT") == 0 ||
                      strcmp(t->method, "PATCH") == 0;
    const char *te = hdr(w, wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING);
    const char *cl = hdr(w, wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    size_t length = 0;
    if (te) {
        t->close_after = true;
        refuse(t, 411, NULL, "send the body with Content-Length (transfer codings are not accepted)");
    } else if (cl && !parse_length(cl, &length)) {
        t->close_after = true;
        refuse(t, 400, NULL, "Content-Length is not a number");
    } else if (!cl && wants_body) {
        t->close_after = true;
        refuse(t, 411, NULL, "send the body with Content-Length");
    } else if (length > srv->cfg.http_max_body_bytes) {
        char msg[128];
        snprintf(msg, sizeof msg, "the body is larger than %zu bytes", srv->cfg.http_max_body_bytes);
        t->close_after = true;
        refuse(t, 413, NULL, msg);
    } else if (length > 0) {
        t->body = malloc(length + 1);
        if (!t->body)
            return -1;
        t->body_cap = length;
        t->state = TXN_READING;
        return 0;
    } else {
        dispatch(t);
    }
    return 0;
}

static int on_body(web_conn *c, const void *in, size_t len)
{
    web_response *t = c->txn;
    if (!t || t->state != TXN_READING || len == 0)
        return 0;
    if (len > t->body_cap - t->body_len)
        return -1; /* more than Content-Length said: libwebsockets does not let this happen */
    memcpy(t->body + t->body_len, in, len);
    t->body_len += len;
    return 0;
}

/* The body is complete.  libwebsockets 4.1 reports this again for every
 * read that brings input after the body before the answer is written (a
 * request pipelined behind one with a body): it would spin on that input,
 * so such a connection is closed. */
static int on_body_done(web_conn *c)
{
    web_response *t = c->txn;
    if (!t || t->body_done)
        return -1;
    t->body_done = true; /* once per request: an empty POST body, or one refused unread, is reported too */
    if (t->state == TXN_READING)
        dispatch(t);
    return 0;
}

/* Writes the answer in one piece; returns -1 to close the connection. */
static int on_writeable(web_conn *c, struct lws *wsi)
{
    web_response *t = c->txn;
    if (!t || t->state != TXN_ANSWERED)
        return 0;
    bool has_body = t->status != 204 && t->status != 304 && t->out;
    size_t body_len = has_body && !t->head ? t->out_len : 0;
    size_t extra = 0;
    for (size_t i = 0; i < t->nheaders; i++)
        extra += strlen(t->hnames[i]) + strlen(t->hvalues[i]) + 4;
    size_t cap = LWS_PRE + WEB_HEADER_ROOM + extra + body_len;
    unsigned char *buf = malloc(cap);
    if (!buf)
        return -1;
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + cap - body_len;
    bool closing = t->close_after || !t->keep_alive;
    char num[24];
    int fail = lws_add_http_header_status(wsi, (unsigned)t->status, &p, end);
    if (!fail && t->status != 204 && t->status != 304) {
        const char *ctype = t->out_ctype ? t->out_ctype : "application/json";
        snprintf(num, sizeof num, "%zu", has_body ? t->out_len : 0);
        fail = lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, (const unsigned char *)ctype,
                                            (int)strlen(ctype), &p, end) ||
               lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, (const unsigned char *)num,
                                            (int)strlen(num), &p, end);
    }
    if (!fail && !has_header(t, "Cache-Control")) {
        static const char nostore[] = "no-store";
        fail = lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL, (const unsigned char *)nostore,
                                            (int)strlen(nostore), &p, end);
    }
    for (size_t i = 0; !fail && i < t->nheaders; i++)
        fail = lws_add_http_header_by_name(wsi, (const unsigned char *)t->hnames[i],
                                           (const unsigned char *)t->hvalues[i], (int)strlen(t->hvalues[i]),
                                           &p, end);
    if (!fail && (closing || t->http10)) {
        const char *v = closing ? "close" : "keep-alive";
        fail = lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)v, (int)strlen(v), &p,
                                            end);
    }
    if (!fail)
        fail = lws_finalize_http_header(wsi, &p, end);
    if (fail) {
        free(buf);
        log_write(&c->web->srv->log, LOG_ERROR, "web", "%s %s: the answer's headers do not fit", t->method,
                  t->logpath);
        return -1;
    }
    if (body_len)
        memcpy(p, t->out, body_len);
    size_t total = (size_t)(p - start) + body_len;
    log_write(&c->web->srv->log, LOG_DEBUG, "web", "%s %s -> %d", t->method, t->logpath, t->status);
    int n = lws_write(wsi, start, total, LWS_WRITE_HTTP_FINAL);
    free(buf);
    c->txn = NULL;
    txn_free(t);
    if (n < 0 || closing)
        return -1; /* what is still buffered is flushed before the close */
    if (lws_http_transaction_completed(wsi))
        return -1;
    lws_rx_flow_control(wsi, 1); /* ready for the next request */
    return 0;
}

static int web_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    unsigned char *op = wsi ? lws_get_opaque_user_data(wsi) : NULL;
    web_conn *c = op && *op == WEB_KIND_HTTP ? (web_conn *)op : NULL;
    switch (reason) {
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED: {
        struct web *w = lws_context_user(lws_get_context(wsi));
        if (!w || op)
            return -1;
        c = calloc(1, sizeof *c);
        if (!c)
            return -1;
        c->kind = WEB_KIND_HTTP;
        c->web = w;
        c->wsi = wsi;
        DL_APPEND(w->conns, c);
        w->nconns++;
        lws_set_opaque_user_data(wsi, c);
        return 0;
    }
    case LWS_CALLBACK_HTTP:
        return c && c->wsi ? on_request(c, wsi, in, len) : -1;
    case LWS_CALLBACK_HTTP_BODY:
        return c ? on_body(c, in, len) : -1;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return c ? on_body_done(c) : -1;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return c && c->wsi ? on_writeable(c, wsi) : -1;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return c && c->wsi ? on_upgrade(c, wsi, in) : -1;
    case LWS_CALLBACK_RAW_ADOPT: /* CONNECT */
    case LWS_CALLBACK_RAW_RX:
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: /* a client naming this protocol as its subprotocol */
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_RECEIVE:
        return -1;
    case LWS_CALLBACK_CLOSED_HTTP:
        if (c)
            conn_detach(c);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (c) {
            conn_detach(c);
            DL_DELETE(c->web->conns, c);
            c->web->nconns--;
            free(c);
            lws_set_opaque_user_data(wsi, NULL);
        } else if (op && *op == WEB_KIND_WS) {
            web_ws *ws = (web_ws *)op;
            ws_detach(ws);
            ws->web->nwebsockets--;
            free(ws->close_reason);
            free(ws);
            lws_set_opaque_user_data(wsi, NULL);
        }
        return 0;
    default:
        return 0;
    }
}


/* -- WebSocket ------------------------------------------------------------ */

int web_websocket(server *srv, const char *path, const char *subprotocol, size_t rx_chunk_bytes,
                  const web_ws_handler *h, void *ud)
{
    struct web *w = srv->web;
    if (!w || w->ctx || !path || path[0] != '/' || strlen(path) > 1024 || strpbrk(path, "?# \t\r\n") ||
        !subprotocol || !*subprotocol || strlen(subprotocol) > 63 || strpbrk(subprotocol, ", \t\r\n;") ||
        strcmp(subprotocol, "onair-http") == 0 || !h || !h->on_open || !h->on_data || !h->on_close ||
        rx_chunk_bytes < 64)
        return -1;
    for (web_ws_endpoint *e = w->endpoints; e; e = e->next)
        if (strcmp(e->path, path) == 0 || strcmp(e->subprotocol, subprotocol) == 0)
            return -1;
    web_ws_endpoint *e = calloc(1, sizeof *e);
    if (!e || !(e->path = strdup(path)) || !(e->subprotocol = strdup(subprotocol))) {
        if (e)
            free(e->path);
        free(e);
        return -1;
    }
    e->rx_chunk = rx_chunk_bytes;
    e->h = h;
    e->ud = ud;
    e->next = w->endpoints;
    w->endpoints = e;
    w->nendpoints++;
    return 0;
}

/* Whether the comma-separated token list `list` holds `token` (exactly:
 * subprotocol names are case-sensitive, RFC 6455 section 4.1). */
static bool token_listed(const char *list, const char *token)
{
    size_t tlen = strlen(token);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if ((size_t)(end - start) == tlen && memcmp(start, token, tlen) == 0)
            return true;
    }
    return false;
}

/* Answers a refused upgrade with the JSON error at once; the connection
 * closes after it (returned to libwebsockets as -1).  The status line is
 * written here: libwebsockets has not read the request's HTTP version yet
 * at this point and would answer HTTP/1.0. */
static int refuse_upgrade(web_conn *c, struct lws *wsi, int status, const char *message)
{
    (void)c;
    const char *reason = status == 404 ? "Not Found" : status == 503 ? "Service Unavailable" : "Bad Request";
    json_t *body = error_body(status, NULL, message);
    char *json = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!json)
        return -1;
    size_t json_len = strlen(json);
    size_t cap = LWS_PRE + 512 + json_len;
    unsigned char *buf = malloc(cap);
    if (buf) {
        int n = snprintf((char *)buf + LWS_PRE, cap - LWS_PRE,
                         "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %zu\r\n"
                         "cache-control: no-store\r\nx-content-type-options: nosniff\r\nconnection: close\r\n\r\n%s",
                         status, reason, json_len, json);
        if (n > 0 && (size_t)n < cap - LWS_PRE)
            lws_write(wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_HTTP_FINAL);
        free(buf);
    }
    free(json);
    return -1;
}

static int on_upgrade(web_conn *c, struct lws *wsi, const char *what)
{
    struct web *w = c->web;
    if (w->stopping || c->txn || !what || strcasecmp(what, "websocket") != 0)
        return -1; /* h2c: not on this listener */
    const char *path = hdr(w, wsi, WSI_TOKEN_GET_URI);
    if (!path)
        return refuse_upgrade(c, wsi, 400, "a WebSocket handshake is a GET request");
    const web_ws_endpoint *ep = w->endpoints;
    while (ep && strcmp(ep->path, path) != 0)
        ep = ep->next;
    if (!ep)
        return refuse_upgrade(c, wsi, 404, "no WebSocket endpoint at this path");
    const char *protocols = hdr(w, wsi, WSI_TOKEN_PROTOCOL);
    if (!protocols || !token_listed(protocols, ep->subprotocol)) {
        char msg[160];
        snprintf(msg, sizeof msg, "this endpoint needs the WebSocket subprotocol \"%s\" (Sec-WebSocket-Protocol)",
                 ep->subprotocol);
        return refuse_upgrade(c, wsi, 400, msg);
    }
    if (ep->h->can_open && !ep->h->can_open(ep->ud))
        return refuse_upgrade(c, wsi, 503, "the server takes no more connections now");
    c->upgrade = ep;
    return 0;
}

/* The handshake is done: the connection becomes a web_ws. */
static int ws_established(struct lws *wsi, void *op)
{
    web_conn *c = op;
    const struct lws_protocols *pcol = lws_get_protocol(wsi);
    if (!c || c->kind != WEB_KIND_HTTP || !c->upgrade || !pcol || pcol->user != c->upgrade || c->web->stopping)
        return -1;
    struct web *w = c->web;
    const web_ws_endpoint *ep = c->upgrade;
    web_ws *ws = calloc(1, sizeof *ws + ep->h->conn_bytes);
    if (!ws)
        return -1;
    ws->kind = WEB_KIND_WS;
    ws->web = w;
    ws->wsi = wsi;
    ws->ep = ep;
    /* the HTTP part of this connection is over */
    conn_detach(c);
    DL_DELETE(w->conns, c);
    w->nconns--;
    free(c);
    lws_set_opaque_user_data(wsi, ws);
    w->nwebsockets++;
    ws->ud = ep->h->on_open(ep->ud, ws);
    if (!ws->ud) {
        ws->told_closed = true; /* never opened for the handler */
        return -1;
    }
    return 0;
}

static void ws_queue_free(web_ws *ws)
{
    while (ws->queue) {
        ws_msg *m = ws->queue;
        ws->queue = m->next;
        free(m);
    }
    ws->queue_tail = NULL;
    ws->queued = 0;
}

/* The connection is gone: tells the handler once. */
static void ws_detach(web_ws *ws)
{
    ws->wsi = NULL;
    ws->closing = true;
    ws_queue_free(ws);
    if (!ws->told_closed) {
        ws->told_closed = true;
        ws->ep->h->on_close(ws->ud);
    }
}

static int ws_receive(web_ws *ws, const char *in, size_t len)
{
    if (ws->closing || !ws->wsi)
        return ws->killed ? -1 : 0; /* closing: what still comes is dropped */
    struct lws *wsi = ws->wsi;
    if (lws_is_first_fragment(wsi))
        ws->is_binary = lws_frame_is_binary(wsi) != 0;
    bool is_last = lws_is_final_fragment(wsi) != 0;
    ws->ep->h->on_data(ws->ud, in, len, ws->is_binary, is_last);
    return ws->killed ? -1 : 0;
}

/* Writes one message (payload at data + LWS_PRE, LWS_PRE bytes of room
 * before it).  False when the connection failed. */
static bool ws_write_now(web_ws *ws, unsigned char *data, size_t len, bool is_binary)
{
    int n = lws_write(ws->wsi, data + LWS_PRE, len, is_binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
    return n >= 0;
}

/* Has libwebsockets close the connection from its own service, soon: a
 * zero-second timeout, and a wake-up so that libwebsockets, which re-arms
 * its timer only after servicing something, sees it now even when this is
 * called from outside its callbacks (another connection's input, a timer of
 * ours).  Any reason but the keep-alive one makes the close violent. */
static void ws_close_soon(web_ws *ws, enum pending_timeout reason)
{
    lws_set_timeout(ws->wsi, reason, LWS_TO_KILL_ASYNC);
    lws_cancel_service(ws->web->ctx);
}

static void ws_kill(web_ws *ws)
{
    ws->killed = true;
    ws->closing = true;
    ws_queue_free(ws);
    if (ws->wsi)
        ws_close_soon(ws, PENDING_TIMEOUT_CLOSE_SEND);
}

static void copy_parts(unsigned char *to, const char *const *parts, const size_t *lens, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        memcpy(to, parts[i], lens[i]);
        to += lens[i];
    }
}

static int ws_send(web_ws *ws, const char *const *parts, const size_t *lens, size_t n, bool is_binary)
{
    if (!ws || !ws->wsi || ws->closing)
        return -1;
    struct web *w = ws->web;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += lens[i];
    if (!ws->queue && !lws_partial_buffered(ws->wsi)) {
        /* the common case: straight to the socket, through the scratch
         * buffer that gives lws_write its LWS_PRE bytes of room */
        if (w->frame_cap < LWS_PRE + total) {
            size_t cap = w->frame_cap ? w->frame_cap : 4096;
            while (cap < LWS_PRE + total)
                cap *= 2;
            unsigned char *grown = realloc(w->frame, cap);
            if (!grown) {
                ws_kill(ws);
                return -1;
            }
            w->frame = grown;
            w->frame_cap = cap;
        }
        copy_parts(w->frame + LWS_PRE, parts, lens, n);
        if (!ws_write_now(ws, w->frame, total, is_binary)) {
            ws_kill(ws);
            return -1;
        }
        return 0;
    }
    if (ws->queued + total > w->srv->cfg.max_write_buffer_bytes) {
        log_write(&w->srv->log, LOG_WARN, "web", "%s: WebSocket output over %zu bytes, closing", web_ws_peer(ws),
                  w->srv->cfg.max_write_buffer_bytes);
        ws_kill(ws);
        return -1;
    }
    ws_msg *m = malloc(sizeof *m + LWS_PRE + total);
    if (!m) {
        ws_kill(ws);
        return -1;
    }
    m->next = NULL;
    m->len = total;
    m->is_binary = is_binary;
    copy_parts(m->data + LWS_PRE, parts, lens, n);
    if (ws->queue_tail)
        ws->queue_tail->next = m;
    else
        ws->queue = m;
    ws->queue_tail = m;
    ws->queued += total;
    lws_callback_on_writable(ws->wsi);
    return 0;
}

int web_ws_send(web_ws *ws, const char *const *parts, const size_t *lens, size_t n)
{
    return ws_send(ws, parts, lens, n, false);
}

int web_ws_send_binary(web_ws *ws, const char *const *parts, const size_t *lens, size_t n)
{
    return ws_send(ws, parts, lens, n, true);
}

size_t web_ws_queued(const web_ws *ws)
{
    return ws ? ws->queued : 0;
}

int web_ws_set_send_buffer(web_ws *ws, size_t bytes)
{
    if (!ws || !ws->wsi || bytes > (size_t)1 << 30)
        return -1;
    lws_sockfd_type fd = lws_get_socket_fd(ws->wsi);
    int v = (int)bytes;
    return fd < 0 ? -1 : setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
}

/* Starts libwebsockets' close handshake (RFC 6455 section 7): the close
 * frame with our code, then the peer's answer (bounded by libwebsockets'
 * own 5 s), then the TCP close.  It is started from a zero-second timeout
 * rather than by returning -1 from a callback: libwebsockets 4.1 built with
 * _DEBUG on libuv closes a connection twice in that path, and the second
 * time drops the close frame.  The keep-alive reason is the one timeout
 * that does not mark the socket unusable, so the close stays polite. */
static void ws_send_close(web_ws *ws)
{
    ws->close_sent = true;
    size_t rlen = ws->close_reason ? strlen(ws->close_reason) : 0;
    lws_close_reason(ws->wsi, (enum lws_close_status)ws->close_code, (unsigned char *)ws->close_reason, rlen);
    ws_close_soon(ws, PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE);
}

/* The socket can take more (libwebsockets has written what it held). */
static int ws_writeable(web_ws *ws)
{
    if (ws->killed || !ws->wsi)
        return -1;
    while (ws->queue && !lws_partial_buffered(ws->wsi)) {
        ws_msg *m = ws->queue;
        ws->queue = m->next;
        if (!ws->queue)
            ws->queue_tail = NULL;
        ws->queued -= m->len;
        bool ok = ws_write_now(ws, m->data, m->len, m->is_binary);
        free(m);
        if (!ok)
            return -1;
    }
    if (ws->queue || lws_partial_buffered(ws->wsi)) {
        lws_callback_on_writable(ws->wsi);
        return 0;
    }
    if (ws->closing && !ws->close_sent)
        ws_send_close(ws);
    return 0;
}

void web_ws_close(web_ws *ws, unsigned short code)
{
    web_ws_close_reason(ws, code, NULL);
}

void web_ws_close_reason(web_ws *ws, unsigned short code, const char *reason)
{
    if (!ws || !ws->wsi || ws->closing)
        return;
    if (reason && *reason)
        ws->close_reason = strndup(reason, WS_CLOSE_REASON_MAX); /* without it on failure: the code alone */
    ws->closing = true;
    ws->close_code = code ? code : LWS_CLOSE_STATUS_NORMAL;
    if (!ws->queue && !lws_partial_buffered(ws->wsi)) {
        ws_send_close(ws);
        return;
    }
    lws_callback_on_writable(ws->wsi);
}

void web_ws_abort(web_ws *ws)
{
    if (ws && !ws->killed)
        ws_kill(ws);
}

void *web_ws_data(web_ws *ws)
{
    return ws && ws->ep->h->conn_bytes ? (void *)ws->data : NULL;
}

web_ws *web_ws_of_data(void *data)
{
    return (web_ws *)((char *)data - offsetof(web_ws, data));
}

struct server *web_ws_server(const web_ws *ws)
{
    return ws->web->srv;
}

bool web_ws_is_tls(const web_ws *ws)
{
    return ws && ws->wsi && lws_is_ssl(ws->wsi);
}

static bool ws_peer_address(const web_ws *ws, struct sockaddr_storage *ss)
{
    socklen_t sl = sizeof *ss;
    if (!ws || !ws->wsi)
        return false;
    lws_sockfd_type fd = lws_get_socket_fd(ws->wsi);
    return fd >= 0 && getpeername(fd, (struct sockaddr *)ss, &sl) == 0;
}

bool web_ws_peer_is_loopback(const web_ws *ws)
{
    struct sockaddr_storage ss;
    if (!ws_peer_address(ws, &ss))
        return false;
    if (ss.ss_family == AF_INET)
        return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

const char *web_ws_peer(const web_ws *ws)
{
    /* asked only when logging */
    server *srv = ws->web->srv;
    char *out = srv->peer_buf;
    snprintf(out, sizeof srv->peer_buf, "?");
    struct sockaddr_storage ss;
    if (ws_peer_address(ws, &ss))
        server_format_address(&ss, out, sizeof srv->peer_buf);
    return out;
}

/* The callback of every endpoint's protocol. */
static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    (void)user;
    unsigned char *op = wsi ? lws_get_opaque_user_data(wsi) : NULL;
    web_ws *ws = op && *op == WEB_KIND_WS ? (web_ws *)op : NULL;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        /* libwebsockets picked this protocol from the client's list: it
         * must be the one the path's endpoint speaks */
        web_conn *c = op && *op == WEB_KIND_HTTP ? (web_conn *)op : NULL;
        const struct lws_protocols *pcol = lws_get_protocol(wsi);
        return c && c->upgrade && pcol && pcol->user == c->upgrade ? 0 : 1;
    }
    case LWS_CALLBACK_ESTABLISHED:
        return ws_established(wsi, op);
    case LWS_CALLBACK_RECEIVE:
        return ws ? ws_receive(ws, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return ws ? ws_writeable(ws) : 0;
    case LWS_CALLBACK_CLOSED:
        if (ws)
            ws_detach(ws);
        return 0;
    default:
        return 0;
    }
}

/* -- listeners ----------------------------------------------------------- */

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void on_connection(uv_stream_t *ls, int status)
{
    web_listener *l = ls->data;
    struct web *w = l->web;
    if (status < 0)
        return;
    /* libuv stops the listener until its connection is taken: always accept */
    uv_tcp_t *tcp = malloc(sizeof *tcp);
    if (!tcp)
        return;
    uv_tcp_init(w->srv->loop, tcp);
    int fd = -1;
    if (uv_accept(ls, (uv_stream_t *)tcp) == 0) {
        uv_os_fd_t ofd;
        uv_tcp_nodelay(tcp, 1);
        if (uv_fileno((uv_handle_t *)tcp, &ofd) == 0)
            fd = fcntl(ofd, F_DUPFD_CLOEXEC, 3);
    }
    uv_close((uv_handle_t *)tcp, free_handle); /* the duplicate keeps the socket */
    if (fd < 0)
        return;
    if (w->stopping || !w->vhost || w->nconns >= w->srv->cfg.http_max_connections) {
        close(fd);
        return;
    }
    lws_sock_file_fd_type d;
    d.sockfd = fd;
    lws_adoption_type type = LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP | (w->srv->cfg.http_tls ? LWS_ADOPT_ALLOW_SSL : 0);
    if (!lws_adopt_descriptor_vhost(w->vhost, type, d, NULL, NULL))
        /* the fd is closed by libwebsockets */
        log_write(&w->srv->log, LOG_INFO, "web", "could not take an HTTP connection (gone at once, or out of memory)");
}

static int listen_on(struct web *w, const char *addr, int port, char *err, size_t errlen)
{
    server *srv = w->srv;
    struct sockaddr_storage ss;
    bool is_v6 = strchr(addr, ':') != NULL;
    int rc = is_v6 ? uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&ss)
                   : uv_ip4_addr(addr, port, (struct sockaddr_in *)&ss);
    if (rc != 0) {
        snprintf(err, errlen, "%s:0: http.listen: not an IP address: \"%s\"", srv->cfg.path, addr);
        return -1;
    }
    web_listener *l = &w->listeners[w->nlisteners++];
    uv_tcp_init(srv->loop, &l->tcp);
    l->web = w;
    l->is_open = true;
    l->tcp.data = l;
    rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, is_v6 ? UV_TCP_IPV6ONLY : 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, 1024, on_connection);
    if (rc != 0) {
        if (is_v6 && (rc == UV_EADDRNOTAVAIL || rc == UV_EAFNOSUPPORT)) {
            log_write(&srv->log, LOG_WARN, "web", "no IPv6 here: not listening on [%s]:%d", addr, port);
            return 0;
        }
        snprintf(err, errlen, "cannot listen for HTTP on %s port %d: %s", addr, port, uv_strerror(rc));
        return -1;
    }
    log_write(&srv->log, LOG_INFO, "web", "listening on %s%s%s:%d (%s)", is_v6 ? "[" : "", addr, is_v6 ? "]" : "",
              port, srv->cfg.http_tls ? "HTTPS" : "HTTP");
    return 0;
}

/* libwebsockets' own lines: "[date] E: text\n" -> the server log. */
static void lws_log_line(int level, const char *line)
{
    const char *msg = line;
    if (msg[0] == '[') {
        const char *e = strstr(msg, "] ");
        if (e)
            msg = e + 2;
    }
    if (msg[0] && msg[1] == ':' && msg[2] == ' ')
        msg += 3;
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        n--;
    log_write(NULL, level == LLL_ERR ? LOG_ERROR : LOG_WARN, "lws", "%.*s", (int)n, msg);
}

/* -- lifecycle ------------------------------------------------------------ */

int web_init(server *srv)
{
    struct web *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->srv = srv;
    srv->web = w;
    return 0;
}

int web_start(server *srv, char *err, size_t errlen)
{
    struct web *w = srv->web;
    if (!w || srv->cfg.http_port == 0)
        return 0;
    int mask = srv->log.level >= LOG_NONE ? 0 : srv->log.level >= LOG_ERROR ? LLL_ERR : LLL_ERR | LLL_WARN;
    lws_set_log_level(mask, lws_log_line);

    /* the HTTP protocol first (libwebsockets sends it every connection's
     * WSI_DESTROY), then one per WebSocket endpoint, named after its
     * subprotocol, then the terminator */
    w->ws_protocols = calloc(w->nendpoints + 2, sizeof *w->ws_protocols);
    if (!w->ws_protocols) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    w->ws_protocols[0].name = "onair-http";
    w->ws_protocols[0].callback = web_callback;
    size_t np = 1;
    for (web_ws_endpoint *e = w->endpoints; e; e = e->next, np++) {
        w->ws_protocols[np].name = e->subprotocol;
        w->ws_protocols[np].callback = ws_callback;
        w->ws_protocols[np].rx_buffer_size = e->rx_chunk;
        w->ws_protocols[np].tx_packet_size = WEB_WS_TX_PACKET;
        w->ws_protocols[np].user = e;
    }
    /* every answer, the library's own included (Cache-Control is the
     * framework's, per answer: web pages are cached, JSON is not) */
    w->headers[0] = (struct lws_protocol_vhost_options){NULL, NULL, "x-content-type-options:", "nosniff"};

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    void *loops[1] = {srv->loop};
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    if (srv->cfg.http_tls)
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.foreign_loops = loops;
    info.pcontext = &w->ctx;
    info.user = w;
    info.count_threads = 1;
    info.timeout_secs = WEB_TIMEOUT_S;
    info.max_http_header_data = WEB_MAX_HEADER_BYTES;
    info.pt_serv_buf_size = 16384;
    w->ctx = lws_create_context(&info);
    if (!w->ctx) {
        snprintf(err, errlen, "cannot start the HTTP server (libwebsockets with its libuv event library: is "
                              "libwebsockets-evlib-uv installed?)");
        return -1;
    }
    struct lws_context_creation_info vinfo;
    memset(&vinfo, 0, sizeof vinfo);
    vinfo.vhost_name = "onair";
    vinfo.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    vinfo.protocols = w->ws_protocols;
    vinfo.headers = &w->headers[0];
    vinfo.keepalive_timeout = WEB_KEEPALIVE_S;
    if (srv->cfg.http_tls) {
        /* the server's certificate; TLS 1.2 and later, as on the XMPP ports */
        vinfo.ssl_cert_filepath = srv->cfg.tls_certificate;
        vinfo.ssl_private_key_filepath = srv->cfg.tls_key;
        vinfo.ssl_options_set = SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
        vinfo.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT; /* read per vhost too */
    }
    w->vhost = lws_create_vhost(w->ctx, &vinfo);
    if (!w->vhost) {
        if (srv->cfg.http_tls)
            snprintf(err, errlen, "%s:0: http.tls: cannot set up TLS for HTTP with %s and %s", srv->cfg.path,
                     srv->cfg.tls_certificate, srv->cfg.tls_key);
        else
            snprintf(err, errlen, "cannot start the HTTP server (libwebsockets vhost)");
        return -1;
    }
    for (size_t i = 0; i < srv->cfg.http_nlisten; i++)
        if (listen_on(w, srv->cfg.http_listen[i], srv->cfg.http_port, err, errlen) != 0)
            return -1;
    return 0;
}

/* Reads a whole (small) file; caller frees.  NULL on failure. */
static char *read_small_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            if (cap >= 1 << 20) { /* no certificate chain is this large */
                free(buf);
                fclose(f);
                return NULL;
            }
            cap = cap ? cap * 2 : 8192;
            char *grown = realloc(buf, cap + 1);
            if (!grown) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = grown;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int web_reload_certificate(server *srv, char *err, size_t errlen)
{
    struct web *w = srv->web;
    if (!w || !w->ctx || !srv->cfg.http_tls)
        return 0;
    size_t cert_len = 0, key_len = 0;
    char *cert = read_small_file(srv->cfg.tls_certificate, &cert_len);
    char *key = read_small_file(srv->cfg.tls_key, &key_len);
    int rc = -1;
    if (!cert || !key)
        snprintf(err, errlen, "cannot read %s", !cert ? srv->cfg.tls_certificate : srv->cfg.tls_key);
    else if (lws_tls_cert_updated(w->ctx, srv->cfg.tls_certificate, srv->cfg.tls_key, cert, cert_len, key, key_len))
        snprintf(err, errlen, "libwebsockets refused the certificate or key");
    else
        rc = 0;
    free(cert);
    if (key)
        OPENSSL_cleanse(key, key_len);
    free(key);
    return rc;
}

void web_stop(server *srv)
{
    struct web *w = srv->web;
    if (!w || w->stopping)
        return;
    w->stopping = true;
    for (size_t i = 0; i < w->nlisteners; i++) {
        if (w->listeners[i].is_open) {
            w->listeners[i].is_open = false;
            uv_close((uv_handle_t *)&w->listeners[i].tcp, NULL);
        }
    }
    for (web_conn *c = w->conns; c; c = c->next)
        conn_detach(c);
    /* Starts closing every connection; libwebsockets then closes its own
     * handles on the loop, and web_free finishes the context. */
    if (w->ctx)
        lws_context_destroy(w->ctx);
}

void web_free(server *srv)
{
    struct web *w = srv->web;
    if (!w)
        return;
    if (w->ctx)
        lws_context_destroy(w->ctx); /* the final step, now that the loop has ended */
    web_conn *c, *ctmp;
    DL_FOREACH_SAFE(w->conns, c, ctmp)
    {
        conn_detach(c);
        DL_DELETE(w->conns, c);
        free(c);
    }
    web_response *t, *ttmp;
    DL_FOREACH_SAFE(w->deferred, t, ttmp)
    {
        DL_DELETE(w->deferred, t);
        txn_free(t);
    }
    web_token *tok, *tokt;
    HASH_ITER(hh, w->tokens, tok, tokt)
    {
        token_remove(w, tok);
    }
    web_route_entry *r = w->routes;
    while (r) {
        web_route_entry *next = r->next;
        route_free(r);
        r = next;
    }
    while (w->endpoints) {
        web_ws_endpoint *e = w->endpoints;
        w->endpoints = e->next;
        free(e->path);
        free(e->subprotocol);
        free(e);
    }
    free(w->ws_protocols);
    free(w->frame);
    free(w);
    srv->web = NULL;
}
