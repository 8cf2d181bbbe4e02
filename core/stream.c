/* stream.c - the client stream state machine of RFC 6120: stream headers
 * and features (section 4), STARTTLS (section 5), SASL (section 6), resource
 * binding (section 7) and stream errors (section 4.9).  A stream that breaks
 * any rule ends with the matching stream error; no other session notices.
 *
 * Once bound, stanzas are checked (RFC 6120 section 8: 'from' stamped by us,
 * 'to' must be a valid JID) and handed to session.c.
 *
 * The same state machine serves both transports (transport.h): a TCP byte
 * stream, and XMPP over WebSocket (RFC 7395), which is framed.  Framed, the
 * stream opens and closes with <open/> and <close/> in the framing namespace
 * instead of <stream:stream>, every message must be exactly one complete
 * element, every element written is one message that declares its own
 * namespaces (section 3.3.3), a stream restart needs no new parser (the
 * client sends a new <open/>), a stream error is followed by <close/>
 * (section 3.6), and STARTTLS is never offered (section 3.8: TLS belongs
 * to the WebSocket connection).
 */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "plugin.h"
#include "router.h"
#include "sasl.h"
#include "server.h"
#include "session.h"
#include "transport.h"

#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"
#define NS_STREAMS "urn:ietf:params:xml:ns:xmpp-streams"
#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define NS_FRAMING "urn:ietf:params:xml:ns:xmpp-framing"
#define MAX_SASL_FAILURES 3

static void on_stream_open(void *ud, const char **attrs, const char *default_ns);
static void on_stanza(void *ud, xml_node *stanza);
static void on_stream_close(void *ud);
static void on_data(void *ud, const char *data, size_t len);
static void on_message_end(void *ud);
static void on_transport_error(void *ud, const char *condition, const char *text);
static void on_conn_close(void *ud);

static const xml_parser_callbacks parser_cb = {on_stream_open, on_stanza, on_stream_close};
static const transport_callbacks transport_cb = {on_data, on_message_end, on_transport_error, on_conn_close};

static void preauth_remove(session *s)
{
    server *srv = s->srv;
    if (!s->in_preauth)
        return;
    if (s->preauth_prev)
        s->preauth_prev->preauth_next = s->preauth_next;
    else
        srv->preauth_head = s->preauth_next;
    if (s->preauth_next)
        s->preauth_next->preauth_prev = s->preauth_prev;
    else
        srv->preauth_tail = s->preauth_prev;
    s->preauth_prev = s->preauth_next = NULL;
    s->in_preauth = false;
}

session *stream_accept(server *srv, transport *tr)
{
    session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->srv = srv;
    s->tr = tr;
    s->is_secure = transport_is_secure(tr);
    s->is_framed = transport_is_framed(tr);
    s->state = SESSION_CONNECTED;
    s->accepted_ms = server_now_ms();
    s->parser = s->is_framed ? xml_parser_new_framed(&srv->limits, &parser_cb, s)
                             : xml_parser_new(&srv->limits, &parser_cb, s);
    if (!s->parser) {
        free(s);
        return NULL;
    }
    /* oldest first: the sweep only looks at the head */
    s->in_preauth = true;
    s->preauth_prev = srv->preauth_tail;
    if (srv->preauth_tail)
        srv->preauth_tail->preauth_next = s;
    else
        srv->preauth_head = s;
    srv->preauth_tail = s;
    DL_APPEND2(srv->all_head, s, all_prev, all_next);
    transport_set_callbacks(tr, &transport_cb, s);
    return s;
}

static bool starts_with(const char *text, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(text, prefix, n) == 0;
}

static bool is_xml_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* End of the element name that starts at text[1] ("<name ..."). */
static size_t element_name_end(const char *text, size_t len)
{
    size_t i = 1;
    while (i < len && !is_xml_space(text[i]) && text[i] != '/' && text[i] != '>')
        i++;
    return i;
}

/* Writes one top-level element given in n pieces (n <= 6).  Over a framed
 * transport it is one message, which must stand alone (RFC 7395 section
 * 3.3.3): the declarations a TCP stream's root provides are added to its
 * start tag when it lacks them, xmlns='jabber:client' on an unprefixed
 * element and xmlns:stream on a stream: one.  Every element written here
 * starts "<name", with xmlns (if any) right after the name, as the
 * serializer and this file write them. */
static int emit(session *s, const char *const *parts, const size_t *lens, size_t n)
{
    if (!s->tr)
        return -1;
    if (!s->is_framed || n == 0 || n > 6 || lens[0] < 2 || parts[0][0] != '<')
        return transport_write_parts(s->tr, parts, lens, n);
    const char *head = parts[0];
    size_t name_end = element_name_end(head, lens[0]);
    const char *after = head + name_end;
    size_t after_len = lens[0] - name_end;
    const char *decl = NULL;
    if (!memchr(head + 1, ':', name_end - 1)) {
        if (!starts_with(after, after_len, " xmlns="))
            decl = " xmlns='" XML_NS_CLIENT "'";
    } else if (starts_with(head + 1, name_end - 1, "stream:")) {
        if (!starts_with(after, after_len, " xmlns:stream="))
            decl = " xmlns:stream='" XML_NS_STREAM "'";
    }
    if (!decl)
        return transport_write_parts(s->tr, parts, lens, n);
    const char *p2[8] = {head, decl, after};
    size_t l2[8] = {name_end, strlen(decl), after_len};
    for (size_t i = 1; i < n; i++) {
        p2[i + 2] = parts[i];
        l2[i + 2] = lens[i];
    }
    return transport_write_parts(s->tr, p2, l2, n + 2);
}

/* One whole element (or, on a byte stream, any bytes). */
static int emit_one(session *s, const char *data, size_t len)
{
    return emit(s, &data, &len, 1);
}

void stream_send_raw(session *s, const char *data, size_t len)
{
    if (s->tr && s->state != SESSION_CLOSING) {
        s->srv->stats.stanzas_out++;
        emit_one(s, data, len);
    }
}

static void serialize_and_send(session *s, const xml_node *stanza)
{
    xml_buf *out = &s->srv->out;
    xml_buf_reset(out);
    xml_serialize(stanza, XML_NS_CLIENT, out);
    if (!out->failed)
        stream_send_raw(s, out->data, out->len);
}

void stream_send(session *s, const xml_node *stanza)
{
    if (!s->tr || s->state == SESSION_CLOSING)
        return;
    if (s->state == SESSION_BOUND && plugins_hook_stanza_out(s->srv)) {
        /* The hooks see (and may change or drop) a copy: the caller's
         * stanza may go to other sessions too. */
        xml_node *copy = xml_node_clone(stanza);
        if (!copy)
            return;
        if (plugins_stanza_out(s->srv, s, copy) && s->tr && s->state == SESSION_BOUND)
            serialize_and_send(s, copy);
        xml_node_free(copy);
        return;
    }
    serialize_and_send(s, stanza);
}

void stream_send_parts(session *s, const char *const *parts, const size_t *lens, size_t n)
{
    if (!s->tr || s->state == SESSION_CLOSING)
        return;
    if (s->state == SESSION_BOUND && plugins_hook_stanza_out(s->srv)) {
        /* Stanza-out hooks see every stanza: rebuild the tree they work on. */
        xml_buf joined = {0};
        for (size_t i = 0; i < n; i++)
            xml_buf_append(&joined, parts[i], lens[i]);
        xml_node *stanza = NULL;
        if (!joined.failed && xml_parse_element(joined.data, joined.len, &s->srv->limits, &stanza) == 0) {
            stream_send(s, stanza);
            xml_node_free(stanza);
        }
        xml_buf_free(&joined);
        return;
    }
    s->srv->stats.stanzas_out++;
    emit(s, parts, lens, n);
}

/* One element written by this file (not counted as a stanza). */
static void send_str(session *s, const char *str)
{
    emit_one(s, str, strlen(str));
}

static void send_header(session *s)
{
    char buf[512];
    const char *from = s->stream_domain[0] ? s->stream_domain : s->srv->cfg.domain;
    if (s->is_framed)
        snprintf(buf, sizeof buf, "<open xmlns='" NS_FRAMING "' id='%s' from='%s' version='1.0' xml:lang='en'/>",
                 s->stream_id, from);
    else
        snprintf(buf, sizeof buf,
                 "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                 "xmlns:stream='http://etherx.jabber.org/streams' id='%s' from='%s' version='1.0' xml:lang='en'>",
                 s->stream_id, from);
    if (s->tr)
        transport_write(s->tr, buf, strlen(buf));
    s->header_sent = true;
}

/* Our end of the stream: </stream:stream>, or <close/> when framed. */
static void send_stream_end(session *s)
{
    static const char tcp_end[] = "</stream:stream>";
    static const char framed_end[] = "<close xmlns='" NS_FRAMING "'/>";
    if (s->tr)
        transport_write(s->tr, s->is_framed ? framed_end : tcp_end,
                        s->is_framed ? sizeof framed_end - 1 : sizeof tcp_end - 1);
}

/* Ends the stream from our side after what was written: no more input is
 * read, the connection closes once its output is out. */
static void finish(session *s)
{
    send_stream_end(s);
    s->state = SESSION_CLOSING;
    xml_parser_stop(s->parser);
    if (s->tr)
        transport_close(s->tr);
}

static void new_stream_id(session *s)
{
    server_random_id(s->stream_id, sizeof s->stream_id, 16);
}

void stream_error(session *s, const char *condition, const char *text)
{
    if (s->state == SESSION_CLOSING || !s->tr)
        return;
    s->srv->stats.stream_errors++;
    if (!s->header_sent) {
        new_stream_id(s);
        send_header(s);
    }
    xml_buf *out = &s->srv->out;
    xml_buf_reset(out);
    xml_buf_append_str(out, "<stream:error><");
    xml_buf_append_str(out, condition);
    xml_buf_append_str(out, " xmlns='" NS_STREAMS "'/>");
    if (text) {
        xml_buf_append_str(out, "<text xmlns='" NS_STREAMS "' xml:lang='en'>");
        xml_buf_append_escaped(out, text, strlen(text));
        xml_buf_append_str(out, "</text>");
    }
    xml_buf_append_str(out, "</stream:error>");
    if (!out->failed)
        emit_one(s, out->data, out->len);
    if (log_enabled(&s->srv->log, LOG_INFO))
        log_write(&s->srv->log, LOG_INFO, "stream", "%s %s: stream error %s", transport_peer(s->tr),
                  s->full ? s->full : "-", condition);
    if (s->state == SESSION_BOUND)
        session_unbind(s);
    finish(s);
}

void stream_close(session *s)
{
    if (s->state == SESSION_CLOSING || !s->tr)
        return;
    if (s->state == SESSION_BOUND)
        session_unbind(s);
    if (!s->header_sent) {
        new_stream_id(s);
        send_header(s);
    }
    finish(s);
}

static void release_idle(server *srv);

void stream_sweep(server *srv)
{
    release_idle(srv);
    uint64_t now = server_now_ms();
    uint64_t limit = (uint64_t)srv->cfg.auth_timeout_s * 1000;
    while (srv->preauth_head && now - srv->preauth_head->accepted_ms > limit) {
        session *s = srv->preauth_head;
        preauth_remove(s);
        stream_error(s, "connection-timeout", "authentication took too long");
    }
}

/* ---- stream header and features ---- */

static bool is_guest_domain(const server *srv, const char *domain)
{
    return srv->cfg.guest_domain && strcmp(domain, srv->cfg.guest_domain) == 0;
}

static void send_features(session *s)
{
    server *srv = s->srv;
    xml_buf *out = &srv->out;
    xml_buf_reset(out);
    xml_buf_append_str(out, "<stream:features>");
    if (s->state == SESSION_AUTHENTICATED) {
        xml_buf_append_str(out, "<bind xmlns='" NS_BIND "'/>"
                                "<session xmlns='" NS_SESSION "'><optional/></session>");
    } else {
        if (!s->is_secure && srv->tls && s->tr && transport_can_start_tls(s->tr)) {
            xml_buf_append_str(out, "<starttls xmlns='" NS_TLS "'>");
            if (srv->cfg.require_tls)
                xml_buf_append_str(out, "<required/>");
            xml_buf_append_str(out, "</starttls>");
        }
        sasl_policy pol = {s->is_secure, is_guest_domain(srv, s->stream_domain), srv->cfg.allow_plain,
                           srv->cfg.require_tls};
        const char *mechs[4];
        size_t n = sasl_mechanisms(&pol, mechs, 4);
        if (n > 0) {
            xml_buf_append_str(out, "<mechanisms xmlns='" NS_SASL "'>");
            for (size_t i = 0; i < n; i++) {
                xml_buf_append_str(out, "<mechanism>");
                xml_buf_append_str(out, mechs[i]);
                xml_buf_append_str(out, "</mechanism>");
            }
            xml_buf_append_str(out, "</mechanisms>");
        }
    }
    xml_buf_append_str(out, "</stream:features>");
    if (!out->failed)
        emit_one(s, out->data, out->len);
}

/* The client opened a stream (its header on TCP, <open/> when framed). */
static void open_stream(session *s, const char *to, const char *version)
{
    server *srv = s->srv;
    new_stream_id(s);
    char *domain = to ? jid_nameprep(to) : strdup(srv->cfg.domain);
    if (!domain || (strcmp(domain, srv->cfg.domain) != 0 && !is_guest_domain(srv, domain))) {
        free(domain);
        stream_error(s, "host-unknown", "this server does not serve that domain");
        return;
    }
    if (s->state == SESSION_AUTHENTICATED && strcmp(domain, s->stream_domain) != 0) {
        free(domain);
        stream_error(s, "host-unknown", "the domain changed after authentication");
        return;
    }
    snprintf(s->stream_domain, sizeof s->stream_domain, "%s", domain);
    free(domain);
    send_header(s);
    if (!version || strncmp(version, "1.", 2) != 0) {
        stream_error(s, "unsupported-version", "XMPP 1.0 streams only");
        return;
    }
    if (s->state == SESSION_CONNECTED)
        s->state = SESSION_NEGOTIATING;
    send_features(s);
}

static void on_stream_open(void *ud, const char **attrs, const char *default_ns)
{
    session *s = ud;
    const char *to = NULL, *version = NULL;
    for (size_t i = 0; attrs && attrs[i]; i += 2) {
        if (strcmp(attrs[i], "to") == 0)
            to = attrs[i + 1];
        else if (strcmp(attrs[i], "version") == 0)
            version = attrs[i + 1];
    }
    if (strcmp(default_ns, XML_NS_CLIENT) != 0) {
        new_stream_id(s);
        stream_error(s, "invalid-namespace", "this port serves jabber:client streams");
        return;
    }
    open_stream(s, to, version);
}

static void on_stream_close(void *ud)
{
    stream_close(ud);
}

/* Framed: an element of the framing namespace (RFC 7395 section 3.3). */
static void handle_framing(session *s, xml_node *el)
{
    if (strcmp(el->name, "open") == 0) {
        if (s->header_sent) {
            stream_error(s, "invalid-xml", "the stream is open already");
            return;
        }
        open_stream(s, xml_node_attr(el, "to"), xml_node_attr(el, "version"));
    } else if (strcmp(el->name, "close") == 0) {
        stream_close(s);
    } else {
        stream_error(s, "unsupported-stanza-type", NULL);
    }
}

/* Marks input: the session moves to the tail of the active list. */
static void touch_active(session *s)
{
    server *srv = s->srv;
    if (s->in_active)
        DL_DELETE2(srv->active_head, s, idle_prev, idle_next);
    s->last_input_ms = uv_now(srv->loop);
    DL_APPEND2(srv->active_head, s, idle_prev, idle_next);
    s->in_active = true;
}

static void leave_active(session *s)
{
    if (s->in_active) {
        DL_DELETE2(s->srv->active_head, s, idle_prev, idle_next);
        s->in_active = false;
    }
}

/* Streams that sent nothing for c2s.idle_release_s give back their parser's
 * memory (xml_parser_release); it is rebuilt on their next input.  Holding
 * many idle viewers is what this server is for. */
static void release_idle(server *srv)
{
    if (srv->cfg.idle_release_s == 0)
        return;
    uint64_t now = uv_now(srv->loop);
    uint64_t limit = (uint64_t)srv->cfg.idle_release_s * 1000;
    /* Bounded per sweep; the list is ordered, so the rest is younger. */
    unsigned released = 0;
    for (unsigned n = 0; n < 100000 && srv->active_head; n++) {
        session *s = srv->active_head;
        if (now - s->last_input_ms < limit)
            break;
        if (xml_parser_release(s->parser)) {
            released++;
            if (s->tr)
                transport_release_idle_memory(s->tr);
            leave_active(s);
        } else {
            touch_active(s); /* mid-stanza: try again later */
        }
    }
    srv->stats.parsers_released += released;
    /* Many parsers just went back to the allocator: have it return the
     * pages now rather than on some later allocation. */
    if (released >= 64)
        server_return_free_memory();
}

static void on_data(void *ud, const char *data, size_t len)
{
    session *s = ud;
    if (s->state == SESSION_CLOSING)
        return;
    touch_active(s);
    if (s->is_framed) {
        size_t n = len;
        while (n > 0 && is_xml_space(data[n - 1]))
            n--;
        if (n > 0)
            s->frame_last = data[n - 1];
    }
    xml_error err = xml_parser_feed(s->parser, data, len);
    if (err != XML_OK && err != XML_ERR_STOPPED)
        stream_error(s, xml_error_condition(err), NULL);
}

/* Framed: a message has ended.  It must have been exactly one complete
 * element (RFC 7395 section 3.3.3), whose last byte is the '>' that
 * completed it; a message of whitespace only is ignored. */
static void on_message_end(void *ud)
{
    session *s = ud;
    unsigned elements = s->frame_elements;
    char last = s->frame_last;
    s->frame_elements = 0;
    s->frame_last = 0;
    if (s->state == SESSION_CLOSING || (elements == 0 && last == 0))
        return;
    if (elements != 1 || last != '>' || !xml_parser_is_between_elements(s->parser))
        stream_error(s, "not-well-formed", "a WebSocket message must hold exactly one complete element");
}

static void on_transport_error(void *ud, const char *condition, const char *text)
{
    stream_error(ud, condition, text);
}

static void on_conn_close(void *ud)
{
    session *s = ud;
    server *srv = s->srv;
    if (s->state == SESSION_BOUND)
        session_unbind(s);
    s->tr = NULL;
    preauth_remove(s);
    leave_active(s);
    DL_DELETE2(srv->all_head, s, all_prev, all_next);
    if (s->sasl) {
        sasl_exchange_clear(s->sasl);
        free(s->sasl);
    }
    xml_parser_free(s->parser);
    free(s->auth_user);
    jid_clear(&s->jid);
    free(s->full);
    free(s->bare);
    xml_node_free(s->presence);
    for (size_t i = 0; i < s->ndirected; i++)
        free(s->directed[i]);
    free(s->directed);
    free(s);
    server_session_gone(srv);
}

/* ---- STARTTLS and SASL ---- */

static void handle_starttls(session *s)
{
    if (s->is_secure || !s->srv->tls || !transport_can_start_tls(s->tr)) {
        /* RFC 6120 5.4.2.2: failure, then the stream ends */
        send_str(s, "<failure xmlns='" NS_TLS "'/>");
        finish(s);
        return;
    }
    send_str(s, "<proceed xmlns='" NS_TLS "'/>");
    if (transport_start_tls(s->tr) != 0) {
        s->state = SESSION_CLOSING;
        xml_parser_stop(s->parser);
        transport_abort(s->tr);
        return;
    }
    s->is_secure = true;
    s->state = SESSION_CONNECTED;
    s->header_sent = false;
    xml_parser_reset(s->parser);
}

static void sasl_failure(session *s, const char *condition)
{
    char buf[160];
    snprintf(buf, sizeof buf, "<failure xmlns='" NS_SASL "'><%s/></failure>", condition);
    send_str(s, buf);
    if (s->sasl) {
        sasl_exchange_clear(s->sasl);
        free(s->sasl);
        s->sasl = NULL;
    }
    s->srv->stats.logins_failed++;
    if (log_enabled(&s->srv->log, LOG_INFO))
        log_write(&s->srv->log, LOG_INFO, "sasl", "%s: authentication failed (%s)", transport_peer(s->tr),
                  condition);
    if (++s->sasl_failures >= MAX_SASL_FAILURES)
        stream_error(s, "policy-violation", "too many failed authentication attempts");
}

static void sasl_reply(session *s, sasl_status st, char *b64, const char *condition)
{
    if (st == SASL_FAILURE) {
        sasl_failure(s, condition);
        return;
    }
    xml_buf *out = &s->srv->out;
    xml_buf_reset(out);
    xml_buf_append_str(out, st == SASL_CONTINUE ? "<challenge xmlns='" NS_SASL "'>" : "<success xmlns='" NS_SASL "'>");
    xml_buf_append_str(out, b64 ? b64 : "");
    xml_buf_append_str(out, st == SASL_CONTINUE ? "</challenge>" : "</success>");
    if (!out->failed)
        emit_one(s, out->data, out->len);
    if (st == SASL_SUCCESS) {
        s->auth_user = s->sasl->user;
        s->sasl->user = NULL;
        s->is_guest = s->sasl->is_guest;
        sasl_exchange_clear(s->sasl);
        free(s->sasl);
        s->sasl = NULL;
        s->state = SESSION_AUTHENTICATED;
        s->header_sent = false;
        s->srv->stats.logins_ok++;
        /* RFC 6120 6.4.6: a new stream; framed, the parser stays (the
         * client sends a new <open/>, RFC 7395 section 3.3.2) */
        if (!s->is_framed)
            xml_parser_reset(s->parser);
    }
}

static void handle_sasl(session *s, xml_node *el)
{
    char *text = xml_node_text(el);
    const char *in = (text && text[0]) ? text : NULL;
    char *b64 = NULL;
    const char *condition = "not-authorized";
    sasl_status st;
    if (strcmp(el->name, "auth") == 0) {
        if (s->sasl) {
            sasl_exchange_clear(s->sasl);
            free(s->sasl);
            s->sasl = NULL;
        }
        server *srv = s->srv;
        sasl_policy pol = {s->is_secure, is_guest_domain(srv, s->stream_domain), srv->cfg.allow_plain,
                           srv->cfg.require_tls};
        s->sasl = calloc(1, sizeof *s->sasl);
        if (!s->sasl) {
            free(text);
            stream_error(s, "internal-server-error", NULL);
            return;
        }
        st = sasl_start(s->sasl, srv->gsasl, srv->store, &pol, xml_node_attr(el, "mechanism"), in, &b64,
                        &condition);
    } else if (strcmp(el->name, "response") == 0) {
        if (!s->sasl) {
            free(text);
            sasl_failure(s, "malformed-request");
            return;
        }
        st = sasl_step(s->sasl, in ? in : "", &b64, &condition);
    } else if (strcmp(el->name, "abort") == 0) {
        free(text);
        sasl_failure(s, "aborted");
        return;
    } else {
        free(text);
        stream_error(s, "unsupported-stanza-type", NULL);
        return;
    }
    free(text);
    sasl_reply(s, st, b64, condition);
    free(b64);
}

/* ---- resource binding ---- */

static void send_iq_error(session *s, const xml_node *iq, const char *type, const char *condition)
{
    xml_buf *out = &s->srv->out;
    xml_buf_reset(out);
    const char *id = xml_node_attr(iq, "id");
    xml_buf_append_str(out, "<iq type='error' id='");
    xml_buf_append_escaped(out, id ? id : "", id ? strlen(id) : 0);
    xml_buf_append_str(out, "'><error type='");
    xml_buf_append_str(out, type);
    xml_buf_append_str(out, "'><");
    xml_buf_append_str(out, condition);
    xml_buf_append_str(out, " xmlns='" NS_STANZAS "'/></error></iq>");
    if (!out->failed)
        stream_send_raw(s, out->data, out->len);
}

static void handle_bind(session *s, xml_node *iq)
{
    server *srv = s->srv;
    xml_node *bind = xml_node_child(iq, "bind", NS_BIND);
    const char *type = xml_node_attr(iq, "type");
    if (!bind || !type || strcmp(type, "set") != 0) {
        stream_error(s, "not-authorized", "bind a resource first");
        return;
    }
    char *want = xml_node_child_text(bind, "resource", NS_BIND);
    char generated[20];
    if (!want || !want[0]) {
        free(want);
        server_random_id(generated, sizeof generated, 12);
        want = strdup(generated);
    }
    jid j = {0};
    int rc = jid_from_parts(&j, s->auth_user, s->stream_domain, want);
    free(want);
    if (rc != 0) {
        send_iq_error(s, iq, "modify", "bad-request");
        return;
    }
    s->jid = j;
    s->full = jid_full(&s->jid);
    s->bare = jid_bare(&s->jid);
    session *old = session_find_full(srv, s->full);
    if (old && old != s) {
        /* RFC 6120 7.7.2.2: the new session takes over; the old one ends. */
        stream_error(old, "conflict", "replaced by a new session with the same resource");
    }
    preauth_remove(s);
    s->state = SESSION_BOUND;
    session_bound(s);
    xml_buf *out = &srv->out;
    xml_buf_reset(out);
    const char *id = xml_node_attr(iq, "id");
    xml_buf_append_str(out, "<iq type='result' id='");
    xml_buf_append_escaped(out, id ? id : "", id ? strlen(id) : 0);
    xml_buf_append_str(out, "'><bind xmlns='" NS_BIND "'><jid>");
    xml_buf_append_escaped(out, s->full, strlen(s->full));
    xml_buf_append_str(out, "</jid></bind></iq>");
    if (!out->failed)
        stream_send_raw(s, out->data, out->len);
    if (log_enabled(&srv->log, LOG_INFO))
        log_write(&srv->log, LOG_INFO, "stream", "%s bound %s%s%s%s", transport_peer(s->tr), s->full,
                  s->is_secure ? " (TLS)" : "", s->is_guest ? " (guest)" : "",
                  s->is_framed ? " (WebSocket)" : "");
}

/* ---- stanzas of a bound session ---- */

static bool is_stanza_name(const char *name)
{
    return strcmp(name, "message") == 0 || strcmp(name, "presence") == 0 || strcmp(name, "iq") == 0;
}

static void handle_bound(session *s, xml_node *stanza)
{
    if (strcmp(stanza->ns, XML_NS_CLIENT) != 0 || !is_stanza_name(stanza->name)) {
        xml_node_free(stanza);
        stream_error(s, "unsupported-stanza-type", NULL);
        return;
    }
    /* RFC 6120 8.1.2.1: the server stamps 'from'; a client may only claim
     * its own full or bare JID. */
    const char *from = xml_node_attr(stanza, "from");
    if (from) {
        char *norm = jid_normalize(from);
        bool ok = norm && (strcmp(norm, s->full) == 0 || strcmp(norm, s->bare) == 0);
        free(norm);
        if (!ok) {
            xml_node_free(stanza);
            stream_error(s, "invalid-from", NULL);
            return;
        }
    }
    xml_node_set_attr(stanza, "from", s->full);
    if (strcmp(stanza->name, "iq") == 0) {
        const char *type = xml_node_attr(stanza, "type");
        const char *id = xml_node_attr(stanza, "id");
        bool request = type && (strcmp(type, "get") == 0 || strcmp(type, "set") == 0);
        bool response = type && (strcmp(type, "result") == 0 || strcmp(type, "error") == 0);
        size_t nchildren = 0;
        for (xml_node *c = stanza->children; c; c = c->next)
            if (c->type == XML_ELEMENT)
                nchildren++;
        if (!id || (!request && !response) || (request && nchildren != 1)) {
            if (!response)
                router_reply_error(s->srv, stanza, "modify", "bad-request", NULL);
            xml_node_free(stanza);
            return;
        }
        /* Session establishment (RFC 3921, kept for older clients). */
        xml_node *sess = xml_node_child(stanza, "session", NS_SESSION);
        const char *to = xml_node_attr(stanza, "to");
        if (sess && request && (!to || strcmp(to, s->stream_domain) == 0)) {
            xml_node *res = router_iq_result(stanza);
            stream_send(s, res);
            xml_node_free(res);
            xml_node_free(stanza);
            return;
        }
    }
    /* Plugins see the stamped stanza before it is routed; they may change
     * it or drop it, but not its sender. */
    if (plugins_hook_stanza_in(s->srv)) {
        if (!plugins_stanza_in(s->srv, s, stanza) || s->state != SESSION_BOUND) {
            xml_node_free(stanza);
            return;
        }
        xml_node_set_attr(stanza, "from", s->full);
    }
    session_handle_stanza(s, stanza);
}

static void on_stanza(void *ud, xml_node *stanza)
{
    session *s = ud;
    s->srv->stats.stanzas_in++;
    if (s->is_framed) {
        if (++s->frame_elements > 1) {
            xml_node_free(stanza);
            stream_error(s, "not-well-formed", "a WebSocket message must hold exactly one complete element");
            return;
        }
        if (strcmp(stanza->ns, NS_FRAMING) == 0) {
            handle_framing(s, stanza);
            xml_node_free(stanza);
            return;
        }
        if (!s->header_sent) {
            xml_node_free(stanza);
            stream_error(s, "invalid-namespace", "open the stream first with <open xmlns='" NS_FRAMING "'/>");
            return;
        }
    }
    switch (s->state) {
    case SESSION_NEGOTIATING:
        if (strcmp(stanza->name, "starttls") == 0 && strcmp(stanza->ns, NS_TLS) == 0) {
            handle_starttls(s);
        } else if (strcmp(stanza->ns, NS_SASL) == 0) {
            if (s->srv->cfg.require_tls && !s->is_secure) {
                sasl_failure(s, "encryption-required");
            } else {
                handle_sasl(s, stanza);
            }
        } else {
            stream_error(s, "not-authorized", "authenticate first");
        }
        xml_node_free(stanza);
        return;
    case SESSION_AUTHENTICATED:
        if (strcmp(stanza->name, "iq") == 0 && strcmp(stanza->ns, XML_NS_CLIENT) == 0)
            handle_bind(s, stanza);
        else
            stream_error(s, "not-authorized", "bind a resource first");
        xml_node_free(stanza);
        return;
    case SESSION_BOUND:
        handle_bound(s, stanza);
        return;
    default:
        xml_node_free(stanza);
        return;
    }
}
