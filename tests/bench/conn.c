/* conn.c - onair-bench: one XMPP client connection.
 *
 * TCP through libuv (optionally bound to a 127.0.0.x source address with
 * IP_BIND_ADDRESS_NO_PORT so that many addresses multiply the ephemeral
 * ports), TLS through OpenSSL memory BIOs after STARTTLS, and an expat
 * parser per stream (reset at each stream restart).  The negotiation is a
 * small state machine:
 *
 *   CONNECTING -> STREAM -> [STARTTLS -> HANDSHAKE -> STREAM] ->
 *   SASL -> STREAM -> BIND -> [SESSION] -> READY -> CLOSING -> DONE
 *
 * A WebSocket connection (c->ws, ws.c) goes CONNECTING -> [HANDSHAKE: TLS
 * at once, wss] -> UPGRADE -> STREAM -> SASL ... with RFC 7395's framing:
 * the stream opens with <open/> and ends with <close/> (urn:ietf:params:
 * xml:ns:xmpp-framing), every conn_send is one text message, and each
 * message received is one element.  Its parser is primed with a stream
 * root of its own (stream_root), so that the elements parse at depth 2 as
 * on TCP and the same handlers serve both.
 *
 * A register-mode connection (want_auth false) stops at READY without SASL.
 * Output is appended to c->out and written once per loop iteration (a
 * uv_check handle calls conn_flush_pending), so a burst of stanzas costs
 * one write.  Reads use the bench's shared buffers; conn_read_pause/resume
 * stop and restart reading (what arrives meanwhile waits in the socket).
 * Messages (body, or the error condition), presences (type, from, the
 * muc#user status codes 110 and 201, the error condition) and answers to
 * the modes' iqs are handed to the mode.  Whatever happens, a
 * conn ends in conn_kill() and is freed in on_close(), after the
 * mode has been told (mode_conn_closed).
 */
#include "bench.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define NS_STREAM "http://etherx.jabber.org/streams"
#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"
#define NS_CLIENT "jabber:client"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"
#define NS_FRAMING "urn:ietf:params:xml:ns:xmpp-framing"
#define SEP " " /* expat namespace separator */

#define TEXT_MAX (1u << 20) /* bytes of character data kept for one element */
#define CLOSE_WAIT_NS 2000000000ull

enum { TOP_OTHER, TOP_FEATURES, TOP_PROCEED, TOP_TLS_FAILURE, TOP_CHALLENGE, TOP_SUCCESS,
       TOP_SASL_FAILURE, TOP_IQ, TOP_MESSAGE, TOP_PRESENCE, TOP_STREAM_ERROR, TOP_OPEN, TOP_CLOSE };
enum { SUB_NONE, SUB_MECHS, SUB_MECH, SUB_BIND, SUB_JID, SUB_SESSION, SUB_ERROR, SUB_BODY, SUB_MUCX, SUB_OTHER };
enum { FEAT_STARTTLS = 1, FEAT_BIND = 2, FEAT_SESSION = 4, FEAT_SESSION_OPT = 8, FEAT_MECH = 16 };
enum { IQ_OTHER, IQ_RESULT, IQ_ERROR, IQ_GET, IQ_SET };

static void parser_release(bench *b, XML_Parser p);

/* ---- output ---------------------------------------------------------------- */

static int obuf_append(obuf *o, const char *p, size_t n)
{
    if (o->len + n > o->cap) {
        size_t ncap = o->cap ? o->cap : 512;
        while (ncap < o->len + n)
            ncap *= 2;
        char *np = realloc(o->p, ncap);
        if (!np)
            return -1;
        o->p = np;
        o->cap = ncap;
    }
    memcpy(o->p + o->len, p, n);
    o->len += n;
    return 0;
}

static void mark_dirty(conn *c)
{
    if (!c->in_flush) {
        c->in_flush = true;
        c->flush_next = c->b->flush_head;
        c->b->flush_head = c;
    }
}

/* Moves TLS records produced by OpenSSL into the output buffer. */
static void drain_wbio(conn *c)
{
    char tmp[16384];
    int n;
    while ((n = BIO_read(c->wbio, tmp, sizeof tmp)) > 0) {
        if (obuf_append(&c->out, tmp, (size_t)n) < 0) {
            conn_abort(c, false, "out of memory");
            return;
        }
    }
    if (c->out.len > c->out.off)
        mark_dirty(c);
}

void conn_trace(conn *c, char dir, const char *data, size_t len)
{
    if (c->b->o->trace)
        fprintf(stderr, "%.3f [%s%lu] %c %.*s\n", (double)(uv_hrtime() - c->t_start) / 1e6, c->b->o->prefix, c->user,
                dir, (int)len, data);
}

/* Over WebSocket every message is a document of its own (RFC 7395 section
 * 3.3.3): a stanza declares its namespace, which on TCP it inherits from
 * the stream header.  The tool writes its stanzas without one, so
 * xmlns='jabber:client' goes into the start tag of an iq, message or
 * presence that has none; other elements carry their own already. */
static void ws_send_element(conn *c, const char *data, size_t len)
{
    static const char *const stanzas[] = {"<iq", "<message", "<presence"};
    static const char ns[] = " xmlns='" NS_CLIENT "'";
    for (size_t i = 0; i < sizeof stanzas / sizeof stanzas[0]; i++) {
        size_t nl = strlen(stanzas[i]);
        if (len <= nl || memcmp(data, stanzas[i], nl) != 0 || !strchr(" />", data[nl]))
            continue;
        const char *gt = memchr(data, '>', len);
        size_t tag = gt ? (size_t)(gt - data) : len;
        if (memmem(data, tag, " xmlns=", 7))
            break;
        char buf[20480]; /* the largest stanza the modes write is about 18,100 bytes */
        if (len + sizeof ns > sizeof buf) {
            conn_abort(c, false, "stanza too long");
            return;
        }
        memcpy(buf, data, nl);
        memcpy(buf + nl, ns, sizeof ns - 1);
        memcpy(buf + nl + sizeof ns - 1, data + nl, len - nl);
        ws_send_text(c, buf, len + sizeof ns - 1);
        return;
    }
    ws_send_text(c, data, len);
}

void conn_send(conn *c, const char *data, size_t len)
{
    if (c->state == CS_DONE || len == 0)
        return;
    if (c->ws) {
        ws_send_element(c, data, len);
        return;
    }
    conn_trace(c, '>', data, len);
    conn_send_raw(c, data, len);
}

void conn_send_raw(conn *c, const char *data, size_t len)
{
    if (c->state == CS_DONE || len == 0)
        return;
    if (c->tls_on) {
        if (c->state == CS_HANDSHAKE)
            return; /* nothing is sent before the handshake ends */
        int w = SSL_write(c->ssl, data, (int)len);
        if (w <= 0) {
            conn_abort(c, false, "TLS write failed");
            return;
        }
        drain_wbio(c);
        return;
    }
    if (obuf_append(&c->out, data, len) < 0) {
        conn_abort(c, false, "out of memory");
        return;
    }
    mark_dirty(c);
}

void conn_sendf(conn *c, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf) {
        conn_abort(c, false, "stanza too long");
        return;
    }
    conn_send(c, buf, (size_t)n);
}

static void conn_flush(conn *c);

static void on_write(uv_write_t *req, int status)
{
    conn *c = req->data;
    c->writing = false;
    c->wbuf.len = c->wbuf.off = 0;
    if (status < 0) {
        if (status != UV_ECANCELED)
            conn_abort(c, false, "write: %s", uv_strerror(status));
        return;
    }
    if (c->state != CS_DONE && c->out.len > c->out.off)
        conn_flush(c);
}

static void conn_flush(conn *c)
{
    if (c->writing || c->state == CS_DONE || c->out.len == c->out.off)
        return;
    uv_buf_t ub = uv_buf_init(c->out.p + c->out.off, (unsigned)(c->out.len - c->out.off));
    int r = uv_try_write((uv_stream_t *)&c->tcp, &ub, 1);
    if (r == UV_EAGAIN || r == UV_ENOSYS)
        r = 0;
    if (r < 0) {
        conn_abort(c, false, "write: %s", uv_strerror(r));
        return;
    }
    c->out.off += (size_t)r;
    if (c->out.off == c->out.len) {
        c->out.len = c->out.off = 0;
        return;
    }
    /* The rest goes through uv_write from wbuf; out starts empty again. */
    obuf t = c->wbuf;
    c->wbuf = c->out;
    c->out = t;
    c->out.len = c->out.off = 0;
    ub = uv_buf_init(c->wbuf.p + c->wbuf.off, (unsigned)(c->wbuf.len - c->wbuf.off));
    c->writing = true;
    c->wreq.data = c;
    r = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &ub, 1, on_write);
    if (r < 0) {
        c->writing = false;
        conn_abort(c, false, "write: %s", uv_strerror(r));
    }
}

void conn_flush_pending(bench *b)
{
    /* Bounded: each conn is on the list at most once; flushing may put it
     * back only through on_write, which runs later. */
    conn *c = b->flush_head;
    b->flush_head = NULL;
    while (c) {
        conn *next = c->flush_next;
        c->in_flush = false;
        c->flush_next = NULL;
        conn_flush(c);
        c = next;
    }
}

size_t xml_escape(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    for (; *src && n + 7 < cap; src++) {
        const char *rep = NULL;
        switch (*src) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '\'': rep = "&apos;"; break;
        case '"': rep = "&quot;"; break;
        default: break;
        }
        if (rep) {
            size_t l = strlen(rep);
            memcpy(dst + n, rep, l);
            n += l;
        } else {
            dst[n++] = *src;
        }
    }
    dst[n] = '\0';
    return n;
}

/* The root a WebSocket connection's parser starts each stream with: RFC
 * 7395 has no stream element, and the framed elements carry their own
 * namespace declarations. */
static const char stream_root[] = "<stream:stream xmlns='" NS_CLIENT "' xmlns:stream='" NS_STREAM "'>";

static void send_stream_header(conn *c)
{
    char dom[512];
    xml_escape(dom, sizeof dom, c->b->o->domain);
    c->state = CS_STREAM;
    if (c->ws) {
        if (XML_Parse(c->xp, stream_root, (int)sizeof stream_root - 1, XML_FALSE) != XML_STATUS_OK) {
            conn_abort(c, false, "XML: %s", XML_ErrorString(XML_GetErrorCode(c->xp)));
            return;
        }
        conn_sendf(c, "<open xmlns='" NS_FRAMING "' to='%s' version='1.0'/>", dom);
        return;
    }
    conn_sendf(c,
               "<?xml version='1.0'?><stream:stream xmlns='" NS_CLIENT "' xmlns:stream='" NS_STREAM
               "' to='%s' version='1.0'>",
               dom);
}

/* ---- failure and closing --------------------------------------------------- */

void conn_abort(conn *c, bool timed_out, const char *fmt, ...)
{
    if (c->state == CS_DONE)
        return;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char full[320];
    snprintf(full, sizeof full, "%s%lu: %s", c->b->o->prefix, c->user, msg);
    result_note_error(&c->b->res, full);
    c->timed_out = timed_out;
    if (c->in_parse)
        XML_StopParser(c->xp, XML_FALSE);
    conn_kill(c);
}

static void on_close(uv_handle_t *h)
{
    conn *c = h->data;
    bench *b = c->b;
    if (c->prev)
        c->prev->next = c->next;
    else
        b->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    b->nconns--;
    /* Unlink from the flush list (rare: closed with output pending). */
    if (c->in_flush) {
        conn **pp = &b->flush_head;
        while (*pp && *pp != c)
            pp = &(*pp)->flush_next;
        if (*pp)
            *pp = c->flush_next;
    }
    mode_conn_closed(c); /* unlinked already: b->nconns excludes c */
    if (c->ssl)
        SSL_free(c->ssl); /* frees both BIOs */
    if (c->xp)
        parser_release(b, c->xp);
    if (c->sasl)
        gsasl_finish(c->sasl);
    ws_free(c);
    free(c->out.p);
    free(c->wbuf.p);
    free(c->text);
    free(c->jid);
    free(c);
}

void conn_kill(conn *c)
{
    if (c->state == CS_DONE)
        return;
    c->state = CS_DONE;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

void conn_close_graceful(conn *c)
{
    if (c->state == CS_DONE || c->state == CS_CLOSING)
        return;
    if (c->state == CS_CONNECTING || c->state == CS_HANDSHAKE || c->state == CS_UPGRADE) {
        conn_kill(c);
        return;
    }
    conn_read_resume(c); /* to see the server's end of the stream */
    if (c->state == CS_DONE)
        return;
    if (c->ws) {
        /* RFC 7395 section 3.6: <close/>; the server answers with its own
         * and the WebSocket closing handshake (no TLS close_notify before
         * it: the close frame still has to go out) */
        static const char close_el[] = "<close xmlns='" NS_FRAMING "'/>";
        conn_send(c, close_el, sizeof close_el - 1);
        if (c->state == CS_DONE)
            return;
        c->state = CS_CLOSING;
        c->deadline = uv_hrtime() + CLOSE_WAIT_NS;
        return;
    }
    conn_send(c, "</stream:stream>", 16);
    if (c->state == CS_DONE)
        return;
    if (c->tls_on) {
        SSL_shutdown(c->ssl); /* queues close_notify */
        drain_wbio(c);
    }
    c->state = CS_CLOSING;
    c->deadline = uv_hrtime() + CLOSE_WAIT_NS;
}

void conn_sweep(bench *b, uint64_t now)
{
    /* Closing unlinks nothing synchronously (that happens in on_close), so
     * the walk is safe; it is bounded by the list length. */
    unsigned long n = 0;
    for (conn *c = b->conns; c && n <= b->nconns; c = c->next, n++) {
        if (c->deadline == 0 || now < c->deadline || c->state == CS_DONE)
            continue;
        if (c->state == CS_CLOSING)
            conn_kill(c);
        else
            conn_abort(c, true, "timed out (state %d)", (int)c->state);
    }
}

/* ---- XMPP negotiation ------------------------------------------------------- */

static void become_ready(conn *c)
{
    c->state = CS_READY;
    c->deadline = 0;
    c->was_ready = true;
    if (c->want_auth && c->b->o->presence)
        conn_send(c, "<presence/>", 11);
    mode_conn_ready(c);
}

static void on_features(conn *c)
{
    bench *b = c->b;
    if (b->o->tls && !c->tls_on) {
        if (!(c->feat & FEAT_STARTTLS)) {
            conn_abort(c, false, "server offers no STARTTLS");
            return;
        }
        conn_send(c, "<starttls xmlns='" NS_TLS "'/>", sizeof("<starttls xmlns='" NS_TLS "'/>") - 1);
        c->state = CS_STARTTLS;
        return;
    }
    if (!c->want_auth) {
        become_ready(c);
        return;
    }
    if (!c->sasl_done) {
        if (!(c->feat & FEAT_MECH)) {
            conn_abort(c, false, "server does not offer %s", b->o->mech);
            return;
        }
        char *out = NULL;
        bool complete = false;
        int rc = sasl_begin(c, &out, &complete);
        if (rc != GSASL_OK) {
            gsasl_free(out);
            conn_abort(c, false, "SASL start: %s", gsasl_strerror(rc));
            return;
        }
        conn_sendf(c, "<auth xmlns='" NS_SASL "' mechanism='%s'>%s</auth>", b->o->mech,
                   out && *out ? out : "=");
        gsasl_free(out);
        c->sasl_done = complete;
        c->state = CS_SASL;
        return;
    }
    if (!(c->feat & FEAT_BIND)) {
        conn_abort(c, false, "no resource binding offered after SASL");
        return;
    }
    c->session_required = (c->feat & FEAT_SESSION) && !(c->feat & FEAT_SESSION_OPT);
    conn_send(c, "<iq type='set' id='bind'><bind xmlns='" NS_BIND "'/></iq>",
              sizeof("<iq type='set' id='bind'><bind xmlns='" NS_BIND "'/></iq>") - 1);
    c->state = CS_BIND;
}

static void on_sasl_data(conn *c, bool success)
{
    const char *in = c->text_len ? c->text : "";
    if (strcmp(in, "=") == 0)
        in = "";
    if (success && c->sasl_done) {
        c->restart_stream = true;
        XML_StopParser(c->xp, XML_FALSE);
        return;
    }
    char *out = NULL;
    int rc = sasl_step(c, in, &out);
    if (success) {
        gsasl_free(out);
        if (rc != GSASL_OK) {
            conn_abort(c, false, "SASL success not verified: %s", gsasl_strerror(rc));
            return;
        }
        c->sasl_done = true;
        gsasl_finish(c->sasl);
        c->sasl = NULL;
        c->restart_stream = true;
        XML_StopParser(c->xp, XML_FALSE);
        return;
    }
    if (rc != GSASL_OK && rc != GSASL_NEEDS_MORE) {
        gsasl_free(out);
        conn_abort(c, false, "SASL step: %s", gsasl_strerror(rc));
        return;
    }
    if (rc == GSASL_OK)
        c->sasl_done = true; /* the next success carries nothing to check */
    conn_sendf(c, "<response xmlns='" NS_SASL "'>%s</response>", out && *out ? out : "=");
    gsasl_free(out);
}

static void on_iq(conn *c)
{
    if (c->state == CS_BIND && strcmp(c->iq_id, "bind") == 0) {
        if (c->iq_type != IQ_RESULT || !c->jid) {
            conn_abort(c, false, "bind failed: %s", c->cond[0] ? c->cond : "no jid");
            return;
        }
        if (c->session_required) {
            conn_send(c, "<iq type='set' id='sess'><session xmlns='" NS_SESSION "'/></iq>",
                      sizeof("<iq type='set' id='sess'><session xmlns='" NS_SESSION "'/></iq>") - 1);
            c->state = CS_SESSION;
            return;
        }
        become_ready(c);
        return;
    }
    if (c->state == CS_SESSION && strcmp(c->iq_id, "sess") == 0) {
        if (c->iq_type != IQ_RESULT) {
            conn_abort(c, false, "session failed: %s", c->cond);
            return;
        }
        become_ready(c);
        return;
    }
    if (c->state == CS_READY && c->reg_pending && c->iq_id[0] == 'r' &&
        (c->iq_type == IQ_RESULT || c->iq_type == IQ_ERROR)) {
        c->reg_pending = false;
        mode_conn_iq(c, c->iq_type == IQ_RESULT, c->cond);
        return;
    }
    if (c->state == CS_READY && strncmp(c->iq_id, "muc", 3) == 0 &&
        (c->iq_type == IQ_RESULT || c->iq_type == IQ_ERROR)) {
        mode_conn_iq(c, c->iq_type == IQ_RESULT, c->cond);
        return;
    }
    if (c->iq_type == IQ_GET || c->iq_type == IQ_SET) {
        /* Answer server requests (pings, roster pushes) so the server sees a
         * live client; the payload is not interpreted. */
        char id[80];
        xml_escape(id, sizeof id, c->iq_id);
        conn_sendf(c, "<iq type='result' id='%s'/>", id);
    }
}

static void dispatch_top(conn *c)
{
    switch (c->top) {
    case TOP_FEATURES:
        if (c->state == CS_STREAM)
            on_features(c);
        break;
    case TOP_PROCEED:
        if (c->state == CS_STARTTLS) {
            c->restart_tls = true;
            XML_StopParser(c->xp, XML_FALSE);
        }
        break;
    case TOP_TLS_FAILURE:
        conn_abort(c, false, "STARTTLS refused");
        break;
    case TOP_CHALLENGE:
    case TOP_SUCCESS:
        if (c->state == CS_SASL)
            on_sasl_data(c, c->top == TOP_SUCCESS);
        break;
    case TOP_SASL_FAILURE:
        conn_abort(c, false, "SASL failure: %s", c->cond[0] ? c->cond : "?");
        break;
    case TOP_IQ:
        on_iq(c);
        break;
    case TOP_MESSAGE:
        if (c->state != CS_READY)
            break;
        if (c->iq_type == IQ_ERROR)
            mode_conn_message_error(c, c->cond);
        else if (c->text_len > 0)
            mode_conn_message(c, c->text, c->text_len);
        break;
    case TOP_PRESENCE:
        if (c->state == CS_READY)
            mode_conn_presence(c);
        break;
    case TOP_STREAM_ERROR:
        conn_abort(c, false, "stream error: %s", c->cond[0] ? c->cond : "?");
        break;
    case TOP_CLOSE:
        conn_server_end(c);
        break;
    default: /* TOP_OPEN: the server's <open/> (its attributes are not needed) */
        break;
    }
}

/* ---- expat handlers ---------------------------------------------------------- */

static const char *local_name(const char *name)
{
    const char *s = strchr(name, ' ');
    return s ? s + 1 : name;
}

static const char *attr(const char **attrs, const char *name)
{
    for (int i = 0; attrs[i] && i < 128; i += 2)
        if (strcmp(attrs[i], name) == 0)
            return attrs[i + 1];
    return NULL;
}

static int classify(const char *name)
{
    if (strcmp(name, NS_CLIENT SEP "message") == 0)
        return TOP_MESSAGE;
    if (strcmp(name, NS_CLIENT SEP "iq") == 0)
        return TOP_IQ;
    if (strcmp(name, NS_CLIENT SEP "presence") == 0)
        return TOP_PRESENCE;
    if (strcmp(name, NS_STREAM SEP "features") == 0)
        return TOP_FEATURES;
    if (strcmp(name, NS_TLS SEP "proceed") == 0)
        return TOP_PROCEED;
    if (strcmp(name, NS_TLS SEP "failure") == 0)
        return TOP_TLS_FAILURE;
    if (strcmp(name, NS_SASL SEP "challenge") == 0)
        return TOP_CHALLENGE;
    if (strcmp(name, NS_SASL SEP "success") == 0)
        return TOP_SUCCESS;
    if (strcmp(name, NS_SASL SEP "failure") == 0)
        return TOP_SASL_FAILURE;
    if (strcmp(name, NS_STREAM SEP "error") == 0)
        return TOP_STREAM_ERROR;
    if (strcmp(name, NS_FRAMING SEP "open") == 0)
        return TOP_OPEN;
    if (strcmp(name, NS_FRAMING SEP "close") == 0)
        return TOP_CLOSE;
    return TOP_OTHER;
}

static void set_cond(conn *c, const char *name)
{
    if (c->cond[0] == '\0' && strcmp(local_name(name), "text") != 0)
        snprintf(c->cond, sizeof c->cond, "%s", local_name(name));
}

static void xml_start(void *ud, const char *name, const char **attrs)
{
    conn *c = ud;
    c->depth++;
    if (c->state == CS_DONE)
        return;
    if (c->depth == 1) {
        if (strcmp(name, NS_STREAM SEP "stream") != 0)
            conn_abort(c, false, "not an XMPP stream: <%s>", name);
        return;
    }
    if (c->depth == 2) {
        c->top = classify(name);
        c->sub = SUB_NONE;
        c->text_len = 0;
        c->collect = false;
        c->cond[0] = '\0';
        switch (c->top) {
        case TOP_FEATURES:
            c->feat = 0;
            break;
        case TOP_CHALLENGE:
        case TOP_SUCCESS:
            c->collect = true;
            break;
        case TOP_IQ: {
            const char *id = attr(attrs, "id");
            const char *type = attr(attrs, "type");
            snprintf(c->iq_id, sizeof c->iq_id, "%s", id ? id : "");
            c->iq_type = !type                        ? IQ_OTHER
                         : strcmp(type, "result") == 0 ? IQ_RESULT
                         : strcmp(type, "error") == 0  ? IQ_ERROR
                         : strcmp(type, "get") == 0    ? IQ_GET
                         : strcmp(type, "set") == 0    ? IQ_SET
                                                       : IQ_OTHER;
            break;
        }
        case TOP_MESSAGE: {
            const char *type = attr(attrs, "type");
            c->iq_type = type && strcmp(type, "error") == 0 ? IQ_ERROR : IQ_OTHER;
            break;
        }
        case TOP_PRESENCE: {
            const char *type = attr(attrs, "type");
            const char *from = attr(attrs, "from");
            c->pres_type = !type                            ? PRES_AVAILABLE
                           : strcmp(type, "unavailable") == 0 ? PRES_UNAVAILABLE
                           : strcmp(type, "error") == 0       ? PRES_ERROR
                                                              : PRES_OTHER;
            c->muc_status = 0;
            /* A longer address than the buffer is kept empty: it cannot be
             * one of the benchmark's rooms (their names are short). */
            size_t fl = from ? strlen(from) : 0;
            if (fl < sizeof c->from)
                memcpy(c->from, from ? from : "", fl + 1);
            else
                c->from[0] = '\0';
            break;
        }
        default:
            break;
        }
        return;
    }
    if (c->depth == 3) {
        c->sub = SUB_OTHER;
        switch (c->top) {
        case TOP_FEATURES:
            if (strcmp(name, NS_TLS SEP "starttls") == 0)
                c->feat |= FEAT_STARTTLS;
            else if (strcmp(name, NS_SASL SEP "mechanisms") == 0)
                c->sub = SUB_MECHS;
            else if (strcmp(name, NS_BIND SEP "bind") == 0)
                c->feat |= FEAT_BIND;
            else if (strcmp(name, NS_SESSION SEP "session") == 0) {
                c->feat |= FEAT_SESSION;
                c->sub = SUB_SESSION;
            }
            break;
        case TOP_IQ:
            if (strcmp(name, NS_BIND SEP "bind") == 0)
                c->sub = SUB_BIND;
            else if (strcmp(name, NS_CLIENT SEP "error") == 0)
                c->sub = SUB_ERROR;
            break;
        case TOP_MESSAGE:
            if (strcmp(name, NS_CLIENT SEP "body") == 0 && c->text_len == 0) {
                c->sub = SUB_BODY;
                c->collect = true;
            } else if (strcmp(name, NS_CLIENT SEP "error") == 0) {
                c->sub = SUB_ERROR;
            }
            break;
        case TOP_PRESENCE:
            if (strcmp(name, NS_MUC_USER SEP "x") == 0)
                c->sub = SUB_MUCX;
            else if (strcmp(name, NS_CLIENT SEP "error") == 0)
                c->sub = SUB_ERROR;
            break;
        case TOP_SASL_FAILURE:
        case TOP_STREAM_ERROR:
            set_cond(c, name);
            break;
        default:
            break;
        }
        return;
    }
    if (c->depth == 4) {
        if (c->sub == SUB_MECHS && strcmp(local_name(name), "mechanism") == 0) {
            c->sub = SUB_MECH;
            c->text_len = 0;
            c->collect = true;
        } else if (c->sub == SUB_SESSION && strcmp(local_name(name), "optional") == 0) {
            c->feat |= FEAT_SESSION_OPT;
        } else if (c->sub == SUB_BIND && strcmp(name, NS_BIND SEP "jid") == 0) {
            c->sub = SUB_JID;
            c->text_len = 0;
            c->collect = true;
        } else if (c->sub == SUB_ERROR) {
            set_cond(c, name);
        } else if (c->sub == SUB_MUCX && strcmp(name, NS_MUC_USER SEP "status") == 0) {
            const char *code = attr(attrs, "code");
            if (code && strcmp(code, "110") == 0)
                c->muc_status |= MUC_STATUS_SELF;
            else if (code && strcmp(code, "201") == 0)
                c->muc_status |= MUC_STATUS_CREATED;
        }
    }
}

static void xml_end(void *ud, const char *name)
{
    conn *c = ud;
    int d = c->depth--;
    if (c->state == CS_DONE)
        return;
    if (d == 4) {
        if (c->sub == SUB_MECH) {
            if (c->text_len && strcmp(c->text, c->b->o->mech) == 0)
                c->feat |= FEAT_MECH;
            c->sub = SUB_MECHS;
            c->collect = false;
        } else if (c->sub == SUB_JID) {
            free(c->jid);
            c->jid = strndup(c->text, c->text_len);
            c->sub = SUB_BIND;
            c->collect = false;
        }
        return;
    }
    if (d == 3) {
        if (c->sub == SUB_BODY) {
            c->collect = false; /* keep the text for dispatch */
        }
        c->sub = SUB_NONE;
        return;
    }
    if (d == 2) {
        c->collect = false;
        dispatch_top(c);
        return;
    }
    if (d == 1)
        conn_server_end(c); /* </stream:stream> */
}

void conn_server_end(conn *c)
{
    if (c->state != CS_CLOSING) {
        conn_abort(c, false, "server closed the stream");
        return;
    }
    if (c->ws)
        ws_send_close(c, 1000); /* unless the server's close frame came first */
    if (c->deadline > uv_hrtime() + 200000000ull)
        c->deadline = uv_hrtime() + 200000000ull;
}

static void xml_text(void *ud, const char *s, int len)
{
    conn *c = ud;
    if (!c->collect || len <= 0)
        return;
    size_t need = c->text_len + (size_t)len + 1;
    if (need > TEXT_MAX) {
        conn_abort(c, false, "element text too long");
        return;
    }
    if (need > c->text_cap) {
        size_t ncap = c->text_cap ? c->text_cap : 256;
        while (ncap < need)
            ncap *= 2;
        char *np = realloc(c->text, ncap);
        if (!np) {
            conn_abort(c, false, "out of memory");
            return;
        }
        c->text = np;
        c->text_cap = ncap;
    }
    memcpy(c->text + c->text_len, s, (size_t)len);
    c->text_len += (size_t)len;
    c->text[c->text_len] = '\0';
}

static void parser_setup(conn *c)
{
    XML_SetUserData(c->xp, c);
    XML_SetElementHandler(c->xp, xml_start, xml_end);
    XML_SetCharacterDataHandler(c->xp, xml_text);
    c->depth = 0;
    c->top = TOP_OTHER;
    c->sub = SUB_NONE;
    c->collect = false;
    c->text_len = 0;
}

static void parser_reset(conn *c)
{
    XML_ParserReset(c->xp, NULL);
    XML_SetHashSalt(c->xp, c->b->xml_salt);
    parser_setup(c);
}

/* Parsers are kept in a small pool: creating one per connection (and the
 * entropy expat gathers for each new document unless given a salt) showed
 * up in login profiles.  The salt is random per process. */
static XML_Parser parser_acquire(bench *b)
{
    XML_Parser p;
    if (b->npool > 0) {
        p = b->xml_pool[--b->npool];
        XML_ParserReset(p, NULL);
    } else {
        p = XML_ParserCreateNS(NULL, ' ');
        if (!p)
            return NULL;
    }
    XML_SetHashSalt(p, b->xml_salt);
    return p;
}

static void parser_release(bench *b, XML_Parser p)
{
    if (b->npool < XML_POOL_MAX)
        b->xml_pool[b->npool++] = p;
    else
        XML_ParserFree(p);
}

void conn_pool_free(bench *b)
{
    while (b->npool > 0)
        XML_ParserFree(b->xml_pool[--b->npool]);
}

/* ---- TLS --------------------------------------------------------------------- */

static void tls_fail(conn *c, const char *what)
{
    char err[120] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, err, sizeof err);
    ERR_clear_error();
    conn_abort(c, false, "%s: %s", what, err[0] ? err : "failed");
}

static void tls_start(conn *c)
{
    c->ssl = SSL_new(c->b->ssl_ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rbio || !c->wbio) {
        if (c->ssl) {
            SSL_free(c->ssl);
            c->ssl = NULL;
        }
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        c->rbio = c->wbio = NULL;
        tls_fail(c, "TLS setup");
        return;
    }
    SSL_set_bio(c->ssl, c->rbio, c->wbio); /* the SSL owns both now */
    SSL_set_connect_state(c->ssl);
    SSL_set_tlsext_host_name(c->ssl, c->b->o->domain);
    c->tls_on = true;
    c->state = CS_HANDSHAKE;
    parser_reset(c);
    int r = SSL_do_handshake(c->ssl);
    if (r <= 0 && SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ) {
        tls_fail(c, "TLS handshake");
        return;
    }
    drain_wbio(c);
}

static void tls_input(conn *c, const char *p, size_t n)
{
    if (BIO_write(c->rbio, p, (int)n) != (int)n) {
        conn_abort(c, false, "TLS buffer");
        return;
    }
    if (c->state == CS_HANDSHAKE) {
        int r = SSL_do_handshake(c->ssl);
        drain_wbio(c);
        if (c->state == CS_DONE)
            return;
        if (r != 1) {
            if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ)
                tls_fail(c, "TLS handshake");
            return;
        }
        if (c->ws)
            ws_begin(c); /* wss: TLS first, then the upgrade */
        else
            send_stream_header(c);
        if (c->state == CS_DONE)
            return;
    }
    /* Bounded by the bytes just written into rbio. */
    for (;;) {
        int r = SSL_read(c->ssl, c->b->plain, (int)sizeof c->b->plain);
        if (r > 0) {
            if (c->ws)
                ws_input(c, c->b->plain, (size_t)r);
            else
                conn_feed(c, c->b->plain, (size_t)r);
            if (c->state == CS_DONE)
                return;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            if (c->state == CS_CLOSING)
                conn_kill(c);
            else
                conn_abort(c, false, "server sent TLS close_notify");
            return;
        }
        tls_fail(c, "TLS read");
        return;
    }
    drain_wbio(c);
}

/* ---- reading ------------------------------------------------------------------ */

void conn_feed(conn *c, const char *p, size_t n)
{
    conn_trace(c, '<', p, n);
    c->in_parse = true;
    enum XML_Status st = XML_Parse(c->xp, p, (int)n, XML_FALSE);
    c->in_parse = false;
    if (c->state == CS_DONE)
        return;
    if (st == XML_STATUS_OK)
        return;
    if (XML_GetErrorCode(c->xp) != XML_ERROR_ABORTED) {
        conn_abort(c, false, "XML: %s", XML_ErrorString(XML_GetErrorCode(c->xp)));
        return;
    }
    /* Stopped for a restart.  Whatever followed in this buffer is dropped:
     * a server sends nothing after <proceed/> or <success/> until the
     * client's next move. */
    if (c->restart_tls) {
        c->restart_tls = false;
        tls_start(c);
    } else if (c->restart_stream) {
        c->restart_stream = false;
        parser_reset(c);
        send_stream_header(c);
    } else {
        conn_abort(c, false, "parser stopped");
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn *c = h->data;
    *buf = uv_buf_init(c->b->rbuf, sizeof c->b->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn *c = s->data;
    if (n == 0 || c->state == CS_DONE)
        return;
    if (n < 0) {
        if (c->state == CS_CLOSING)
            conn_kill(c);
        else if (n == UV_EOF)
            conn_abort(c, false, "server closed the connection");
        else
            conn_abort(c, false, "read: %s", uv_strerror((int)n));
        return;
    }
    if (c->tls_on)
        tls_input(c, buf->base, (size_t)n);
    else if (c->ws)
        ws_input(c, buf->base, (size_t)n);
    else
        conn_feed(c, buf->base, (size_t)n);
}

void conn_ws_open(conn *c)
{
    send_stream_header(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    conn *c = req->data;
    if (c->state == CS_DONE)
        return;
    if (status < 0) {
        conn_abort(c, false, "connect: %s", uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    int r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (r < 0) {
        conn_abort(c, false, "read start: %s", uv_strerror(r));
        return;
    }
    if (c->ws && c->b->o->tls)
        tls_start(c); /* wss: the handshake first (tls_input goes on) */
    else if (c->ws)
        ws_begin(c);
    else
        send_stream_header(c);
}

void conn_read_pause(conn *c)
{
    if (c->state == CS_DONE || c->read_paused)
        return;
    c->read_paused = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
}

void conn_read_resume(conn *c)
{
    if (c->state == CS_DONE || !c->read_paused)
        return;
    c->read_paused = false;
    int r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (r < 0)
        conn_abort(c, false, "read start: %s", uv_strerror(r));
}

int conn_start(bench *b, unsigned long user, bool want_auth, int phase, bool ws, conn **out)
{
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return UV_ENOMEM;
    c->b = b;
    c->user = user;
    c->want_auth = want_auth;
    c->phase = phase;
    c->ws = ws;
    c->state = CS_CONNECTING;
    c->t_start = uv_hrtime();
    c->deadline = c->t_start + (uint64_t)(b->o->timeout * 1e9);
    c->xp = parser_acquire(b);
    if (!c->xp) {
        free(c);
        return UV_ENOMEM;
    }
    parser_setup(c);
    int r = uv_tcp_init_ex(&b->loop, &c->tcp, b->dst.ss_family);
    if (r < 0) {
        parser_release(b, c->xp);
        free(c);
        return r;
    }
    c->tcp.data = c;
    c->creq.data = c;
    /* Linked now: from here on the close callback frees it. */
    c->next = b->conns;
    if (b->conns)
        b->conns->prev = c;
    b->conns = c;
    b->nconns++;
    if (out)
        *out = c;

    if (b->src_loopback && b->src_count > 0) {
        struct sockaddr_in src;
        memset(&src, 0, sizeof src);
        src.sin_family = AF_INET;
        unsigned k = b->o->src_first + b->src_next++ % b->src_count;
        src.sin_addr.s_addr = htonl(0x7f000002u + k % 250u); /* 127.0.0.2.. */
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        }
        r = uv_tcp_bind(&c->tcp, (const struct sockaddr *)&src, 0);
        if (r < 0) {
            conn_abort(c, false, "bind source address: %s", uv_strerror(r));
            return 0;
        }
    }
    if (b->o->rcvbuf > 0) {
        /* Room for what a paused reader (--sample) is sent meanwhile. */
        uv_os_fd_t fd;
        int v = (int)b->o->rcvbuf;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v) != 0) {
            conn_abort(c, false, "SO_RCVBUF: %s", strerror(errno));
            return 0;
        }
    }
    r = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)(ws ? &b->dst_ws : &b->dst), on_connect);
    if (r < 0)
        conn_abort(c, false, "connect: %s", uv_strerror(r));
    return 0;
}
