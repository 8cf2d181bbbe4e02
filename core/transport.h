/* transport.h - what a client stream needs from the connection under it.
 *
 * One stream implementation (stream.c: RFC 6120 negotiation, SASL, binding,
 * limits, routing) runs over two transports:
 *   - conn.c: a TCP socket, optionally TLS (STARTTLS or direct TLS); a byte
 *     stream carrying one XML document (<stream:stream> ... </stream:stream>);
 *   - xmpp_ws.c: XMPP over WebSocket (RFC 7395) on the HTTP listener; framed:
 *     every message is one complete top-level element, the stream is opened
 *     and closed with <open/> and <close/> in urn:ietf:params:xml:ns:xmpp-framing.
 * The stream knows which kind it runs on (transport_is_framed) and writes
 * the stream header, stream end and each element accordingly; a transport
 * only moves bytes (or messages) and reports what arrived.
 *
 * A transport is embedded in its implementation's connection object; the
 * implementation owns it and frees it right after calling on_close.  After
 * on_close the stream must drop its pointer.  All calls happen on the server
 * loop.
 */
#ifndef ONAIR_TRANSPORT_H
#define ONAIR_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct transport transport;

typedef struct transport_callbacks {
    /* Bytes of the stream arrived (borrowed for the call).  On a framed
     * transport they are (part of) the current message. */
    void (*on_data)(void *ud, const char *data, size_t len);
    /* Framed transports: the current message is complete. */
    void (*on_message_end)(void *ud);
    /* The transport refused what the peer sent below the XML (e.g. a binary
     * WebSocket message): the stream ends with this stream error condition
     * (static strings; text may be NULL). */
    void (*on_error)(void *ud, const char *condition, const char *text);
    /* The connection is gone (peer closed, error, or after close/abort). */
    void (*on_close)(void *ud);
} transport_callbacks;

typedef struct transport_ops {
    const char *name; /* "tcp", "websocket": for logs */
    bool is_framed;   /* one element per message (RFC 7395), else a byte stream */
    void (*set_callbacks)(transport *t, const transport_callbacks *cb, void *ud);
    /* Queues n pieces (borrowed) that together are one unit: on a framed
     * transport exactly one message, on a byte stream just bytes.  Returns
     * 0, or -1 when closing or over the output limit (then being aborted). */
    int (*write)(transport *t, const char *const *parts, const size_t *lens, size_t n);
    /* Switches to TLS (STARTTLS): everything after this call is TLS.  NULL
     * where STARTTLS does not exist (WebSocket).  Returns 0 or -1. */
    int (*start_tls)(transport *t);
    /* Encrypted (TLS, or a trusted TLS proxy: see xmpp_ws.h). */
    bool (*is_secure)(const transport *t);
    /* The stream went idle: give back buffers kept from busier moments. */
    void (*release_idle_memory)(transport *t);
    /* Closes after queued output has been written. */
    void (*close)(transport *t);
    /* Closes now, dropping queued output. */
    void (*abort)(transport *t);
    /* The peer's address for logs: a buffer of the server's, valid until
     * the next call. */
    const char *(*peer)(const transport *t);
} transport_ops;

struct transport {
    const transport_ops *ops;
};

static inline void transport_set_callbacks(transport *t, const transport_callbacks *cb, void *ud)
{
    t->ops->set_callbacks(t, cb, ud);
}

static inline int transport_write_parts(transport *t, const char *const *parts, const size_t *lens, size_t n)
{
    return t->ops->write(t, parts, lens, n);
}

static inline int transport_write(transport *t, const char *data, size_t len)
{
    return t->ops->write(t, &data, &len, 1);
}

static inline bool transport_is_framed(const transport *t)
{
    return t->ops->is_framed;
}

static inline bool transport_can_start_tls(const transport *t)
{
    return t->ops->start_tls != NULL;
}

static inline int transport_start_tls(transport *t)
{
    return t->ops->start_tls ? t->ops->start_tls(t) : -1;
}

static inline bool transport_is_secure(const transport *t)
{
    return t->ops->is_secure(t);
}

static inline void transport_release_idle_memory(transport *t)
{
    if (t->ops->release_idle_memory)
        t->ops->release_idle_memory(t);
}

static inline void transport_close(transport *t)
{
    t->ops->close(t);
}

static inline void transport_abort(transport *t)
{
    t->ops->abort(t);
}

static inline const char *transport_peer(const transport *t)
{
    return t->ops->peer(t);
}

#endif
