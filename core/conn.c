/* conn.c - client sockets on the libuv loop, with TLS through OpenSSL
 * memory BIOs (RFC 6120 section 5 STARTTLS, XEP-0368 direct TLS).
 *
 * Encrypted bytes read from the socket are pushed into the SSL's read BIO;
 * plaintext comes out of SSL_read and goes to the owner's on_data.  Output
 * goes through SSL_write into the write BIO, which is drained to the socket.
 * Writes try uv_try_write first so that an idle or keeping-up connection
 * never holds a buffer; only the unwritten remainder is queued.
 */
#include "conn.h"

#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

struct conn {
    uv_tcp_t tcp; /* first: handle pointers cast back to the conn */
    transport tr; /* what the stream sees (transport.h) */
    struct server *srv;
    SSL *ssl;     /* owned; NULL while plaintext */
    const transport_callbacks *cb;
    void *ud;
    char *early;  /* owned: plaintext written before the TLS handshake finished */
    size_t early_len;
    size_t pending; /* bytes in queued write requests */
    unsigned nreqs;
    bool closing;        /* no more input is delivered; output drains, then FIN */
    bool handle_closing;
    bool shutdown_started;
    uv_timer_t *linger;  /* owned while closing: bounds the wait for the peer's FIN */
    char *out;           /* owned: plaintext written during this loop turn, not yet flushed */
    size_t out_len, out_cap;
    bool is_dirty;       /* on the server's dirty list */
    struct conn *dirty_next;
};

#define CONN_LINGER_MS 2000
#define CONN_FLUSH_BYTES 32768 /* gathered output written at once beyond this */

typedef struct write_req {
    uv_write_t req;
    conn *c;
    size_t len;
    char data[];
} write_req;

static void do_close(conn *c);
static const transport_ops conn_ops;
static const char *conn_peer(const conn *c);

static conn *conn_of(const transport *t)
{
    return (conn *)((char *)t - offsetof(conn, tr));
}

static void on_closed(uv_handle_t *h)
{
    conn *c = (conn *)h;
    if (c->is_dirty) {
        /* still listed: unlink (rare, the flusher normally ran first) */
        for (conn **pp = &c->srv->dirty_head; *pp; pp = &(*pp)->dirty_next) {
            if (*pp == c) {
                *pp = c->dirty_next;
                break;
            }
        }
    }
    free(c->out);
    c->srv->nconnections--;
    if (c->cb && c->cb->on_close)
        c->cb->on_close(c->ud);
    if (c->ssl)
        SSL_free(c->ssl);
    free(c->early);
    free(c);
}

static void do_close(conn *c)
{
    if (c->handle_closing)
        return;
    c->handle_closing = true;
    c->closing = true;
    if (c->linger) {
        uv_close((uv_handle_t *)c->linger, (uv_close_cb)free);
        c->linger = NULL;
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_linger_timeout(uv_timer_t *t)
{
    do_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    conn *c = req->data;
    free(req);
    if (status < 0 && status != UV_ECANCELED)
        do_close(c);
}

/* Output has drained: send FIN and wait (bounded) for the peer's, reading
 * and discarding what it still sends.  Closing with unread input would make
 * the kernel answer with a reset that can destroy our last words (a stream
 * error) before the peer reads them. */
static void begin_shutdown(conn *c)
{
    if (c->shutdown_started || c->handle_closing)
        return;
    c->shutdown_started = true;
    c->linger = malloc(sizeof *c->linger);
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!c->linger || !req) {
        free(req);
        free(c->linger);
        c->linger = NULL;
        do_close(c);
        return;
    }
    uv_timer_init(c->tcp.loop, c->linger);
    c->linger->data = c;
    uv_timer_start(c->linger, on_linger_timeout, CONN_LINGER_MS, 0);
    req->data = c;
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(req);
        do_close(c);
    }
}

static void on_written(uv_write_t *req, int status)
{
    write_req *wr = (write_req *)req;
    conn *c = wr->c;
    c->pending -= wr->len;
    c->nreqs--;
    free(wr);
    if (status < 0) {
        do_close(c);
        return;
    }
    if (c->closing && c->nreqs == 0)
        begin_shutdown(c);
}

/* A slow reader: closes c if `more` bytes on top of what is queued would
 * pass limits.max_write_buffer_bytes.  Returns true when it did. */
static bool over_output_limit(conn *c, size_t more)
{
    if (c->pending + more <= c->srv->cfg.max_write_buffer_bytes)
        return false;
    log_write(&c->srv->log, LOG_WARN, "conn", "%s: output over %zu bytes, closing", conn_peer(c),
              c->srv->cfg.max_write_buffer_bytes);
    do_close(c);
    return true;
}

/* Writes bytes to the socket: synchronously if nothing is queued, the rest
 * (or all) as a queued request holding its own copy. */
static int raw_write(conn *c, const char *data, size_t len)
{
    if (c->handle_closing)
        return -1;
    size_t off = 0;
    if (c->nreqs == 0) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n >= 0)
            off = (size_t)n;
        else if (n != UV_EAGAIN && n != UV_ENOSYS) {
            do_close(c);
            return -1;
        }
        if (off == len)
            return 0;
    }
    size_t rest = len - off;
    if (over_output_limit(c, rest))
        return -1;
    write_req *wr = malloc(sizeof *wr + rest);
    if (!wr) {
        do_close(c);
        return -1;
    }
    wr->c = c;
    wr->len = rest;
    memcpy(wr->data, data + off, rest);
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)rest);
    if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
        free(wr);
        do_close(c);
        return -1;
    }
    c->pending += rest;
    c->nreqs++;
    return 0;
}

/* Moves whatever TLS produced (records, alerts) to the socket. */
static int flush_tls(conn *c)
{
    BIO *wbio = SSL_get_wbio(c->ssl);
    char buf[16384];
    int n;
    while ((n = BIO_read(wbio, buf, sizeof buf)) > 0) {
        if (raw_write(c, buf, (size_t)n) != 0)
            return -1;
    }
    return 0;
}

static int tls_write(conn *c, const char *data, size_t len)
{
    if (!SSL_is_init_finished(c->ssl)) {
        char *grown = realloc(c->early, c->early_len + len);
        if (!grown)
            return -1;
        memcpy(grown + c->early_len, data, len);
        c->early = grown;
        c->early_len += len;
        return 0;
    }
    while (len > 0) {
        int chunk = len > 1 << 20 ? 1 << 20 : (int)len;
        int n = SSL_write(c->ssl, data, chunk);
        if (n <= 0) {
            ERR_clear_error();
            do_close(c);
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return flush_tls(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn *c = (conn *)h;
    *buf = uv_buf_init(c->srv->read_buf, sizeof c->srv->read_buf);
}

static void deliver(conn *c, const char *data, size_t len)
{
    if (!c->closing && c->cb && c->cb->on_data)
        c->cb->on_data(c->ud, data, len);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = (conn *)s;
    if (nread == 0)
        return;
    if (nread < 0) {
        do_close(c);
        return;
    }
    if (c->closing)
        return; /* draining until the peer's FIN */
    if (!c->ssl) {
        deliver(c, buf->base, (size_t)nread);
        return;
    }
    if (BIO_write(SSL_get_rbio(c->ssl), buf->base, (int)nread) != (int)nread) {
        do_close(c);
        return;
    }
    bool was_finished = SSL_is_init_finished(c->ssl);
    for (;;) {
        int n = SSL_read(c->ssl, c->srv->tls_buf, sizeof c->srv->tls_buf);
        if (!was_finished && SSL_is_init_finished(c->ssl)) {
            was_finished = true;
            if (c->early) {
                char *early = c->early;
                size_t early_len = c->early_len;
                c->early = NULL;
                c->early_len = 0;
                tls_write(c, early, early_len);
                free(early);
            }
        }
        if (n > 0) {
            deliver(c, c->srv->tls_buf, (size_t)n);
            if (c->handle_closing || !c->ssl)
                return;
            continue;
        }
        int err = SSL_get_error(c->ssl, n);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
            break;
        if (err != SSL_ERROR_ZERO_RETURN) {
            unsigned long e = ERR_peek_error();
            if (log_enabled(&c->srv->log, LOG_INFO))
                log_write(&c->srv->log, LOG_INFO, "conn", "%s: TLS error: %s", conn_peer(c),
                          e ? ERR_reason_error_string(e) : "protocol error");
        }
        ERR_clear_error();
        flush_tls(c);
        c->closing = true;
        if (c->nreqs == 0)
            begin_shutdown(c);
        return;
    }
    flush_tls(c);
}

static int start_tls(conn *c)
{
    if (!c->srv->tls)
        return -1;
    SSL *ssl = SSL_new(c->srv->tls);
    if (!ssl)
        return -1;
    BIO *rbio = BIO_new(BIO_s_mem());
    BIO *wbio = BIO_new(BIO_s_mem());
    if (!rbio || !wbio) {
        BIO_free(rbio);
        BIO_free(wbio);
        SSL_free(ssl);
        return -1;
    }
    BIO_set_mem_eof_return(rbio, -1);
    SSL_set_bio(ssl, rbio, wbio); /* ssl owns both BIOs now */
    SSL_set_accept_state(ssl);
    c->ssl = ssl;
    return 0;
}

conn *conn_accept(struct server *srv, uv_stream_t *server_handle, bool direct_tls)
{
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->srv = srv;
    c->tr.ops = &conn_ops;
    if (uv_tcp_init(srv->loop, &c->tcp) != 0) {
        free(c);
        return NULL;
    }
    srv->nconnections++;
    if (uv_accept(server_handle, (uv_stream_t *)&c->tcp) != 0 || (direct_tls && start_tls(c) != 0)) {
        do_close(c);
        return NULL;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        do_close(c);
        return NULL;
    }
    return c;
}


/* Hands the turn's buffered plaintext to TLS or the socket. */
static void flush_out(conn *c)
{
    if (c->out_len == 0 || c->handle_closing) {
        c->out_len = 0;
        return;
    }
    char *data = c->out;
    size_t len = c->out_len;
    c->out = NULL;
    c->out_len = c->out_cap = 0;
    if (c->ssl)
        tls_write(c, data, len);
    else
        raw_write(c, data, len);
    free(data); /* an idle connection keeps no buffer */
}

static void flush_dirty(server *srv)
{
    while (srv->dirty_head) {
        conn *c = srv->dirty_head;
        srv->dirty_head = c->dirty_next;
        c->dirty_next = NULL;
        c->is_dirty = false;
        flush_out(c);
    }
}

static void on_prepare(uv_prepare_t *h)
{
    flush_dirty(h->data);
}

static void on_check(uv_check_t *h)
{
    flush_dirty(h->data);
}

void conn_flusher_start(server *srv)
{
    uv_prepare_init(srv->loop, &srv->flush_prepare);
    uv_check_init(srv->loop, &srv->flush_check);
    srv->flush_prepare.data = srv->flush_check.data = srv;
    uv_prepare_start(&srv->flush_prepare, on_prepare);
    uv_check_start(&srv->flush_check, on_check);
    uv_unref((uv_handle_t *)&srv->flush_prepare);
    uv_unref((uv_handle_t *)&srv->flush_check);
}

void conn_flusher_stop(server *srv)
{
    flush_dirty(srv);
    if (srv->flush_prepare.loop) {
        uv_close((uv_handle_t *)&srv->flush_prepare, NULL);
        uv_close((uv_handle_t *)&srv->flush_check, NULL);
    }
}

static int conn_write(conn *c, const char *data, size_t len)
{
    if (c->closing || len == 0)
        return c->closing ? -1 : 0;
    if (over_output_limit(c, c->out_len + len))
        return -1;
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 512;
        while (cap < c->out_len + len)
            cap *= 2;
        char *grown = realloc(c->out, cap);
        if (!grown) {
            do_close(c);
            return -1;
        }
        c->out = grown;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    if (c->out_len >= CONN_FLUSH_BYTES) {
        flush_out(c); /* a burst: let the kernel take it now */
        return c->handle_closing ? -1 : 0;
    }
    if (!c->is_dirty) {
        /* Flushed once per loop turn (prepare/check): many stanzas for one
         * client become one write, and one TLS record. */
        c->is_dirty = true;
        c->dirty_next = c->srv->dirty_head;
        c->srv->dirty_head = c;
    }
    return 0;
}

static int conn_start_tls(conn *c)
{
    if (c->ssl || c->closing)
        return -1;
    flush_out(c); /* what was written before (<proceed/>) goes out in the clear */
    return start_tls(c);
}

static void conn_release_idle_memory(conn *c)
{
    if (!c->ssl || c->handle_closing || !SSL_is_init_finished(c->ssl))
        return;
    BIO *rbio = SSL_get_rbio(c->ssl);
    BIO *wbio = SSL_get_wbio(c->ssl);
    if (BIO_ctrl_pending(rbio) != 0 || BIO_ctrl_pending(wbio) != 0)
        return;
    /* Memory BIOs keep the capacity of the largest flight they carried
     * (the handshake, a burst); fresh ones hold nothing. */
    BIO *new_rbio = BIO_new(BIO_s_mem());
    BIO *new_wbio = BIO_new(BIO_s_mem());
    if (!new_rbio || !new_wbio) {
        BIO_free(new_rbio);
        BIO_free(new_wbio);
        return;
    }
    BIO_set_mem_eof_return(new_rbio, -1);
    SSL_set_bio(c->ssl, new_rbio, new_wbio); /* frees the old pair */
}

static bool conn_is_tls(const conn *c)
{
    return c->ssl != NULL;
}

static void conn_close(conn *c)
{
    if (c->closing)
        return;
    flush_out(c);
    c->closing = true;
    if (c->ssl && SSL_is_init_finished(c->ssl)) {
        SSL_shutdown(c->ssl);
        ERR_clear_error();
        flush_tls(c);
    }
    if (c->nreqs == 0)
        begin_shutdown(c);
}

void conn_abort(conn *c)
{
    do_close(c);
}

static const char *conn_peer(const conn *c)
{
    /* Asked only when logging: no syscall or bytes per connection otherwise. */
    char *out = c->srv->peer_buf;
    snprintf(out, sizeof c->srv->peer_buf, "?");
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    if (c->handle_closing || uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) != 0)
        return out;
    server_format_address(&ss, out, sizeof c->srv->peer_buf);
    return out;
}


/* ---- the transport interface (transport.h) ---- */

transport *conn_transport(conn *c)
{
    return &c->tr;
}

static void tr_set_callbacks(transport *t, const transport_callbacks *cb, void *ud)
{
    conn *c = conn_of(t);
    c->cb = cb;
    c->ud = ud;
}

static int tr_write(transport *t, const char *const *parts, const size_t *lens, size_t n)
{
    conn *c = conn_of(t);
    for (size_t i = 0; i < n; i++)
        if (conn_write(c, parts[i], lens[i]) != 0)
            return -1;
    return 0;
}

static int tr_start_tls(transport *t)
{
    return conn_start_tls(conn_of(t));
}

static bool tr_is_secure(const transport *t)
{
    return conn_is_tls(conn_of(t));
}

static void tr_release_idle_memory(transport *t)
{
    conn_release_idle_memory(conn_of(t));
}

static void tr_close(transport *t)
{
    conn_close(conn_of(t));
}

static void tr_abort(transport *t)
{
    conn_abort(conn_of(t));
}

static const char *tr_peer(const transport *t)
{
    return conn_peer(conn_of(t));
}

static const transport_ops conn_ops = {
    .name = "tcp",
    .is_framed = false,
    .set_callbacks = tr_set_callbacks,
    .write = tr_write,
    .start_tls = tr_start_tls,
    .is_secure = tr_is_secure,
    .release_idle_memory = tr_release_idle_memory,
    .close = tr_close,
    .abort = tr_abort,
    .peer = tr_peer,
};
