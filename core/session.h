/* session.h - a client's stream and, once bound, its IM session.
 *
 * stream.c drives the RFC 6120 negotiation (stream header, STARTTLS, SASL,
 * resource binding) for a session; session.c owns what a bound session does
 * under RFC 6121: presence broadcast and probes, directed presence, the
 * roster and subscriptions, delivery to a user's resources and the offline
 * store.  The router hands stanzas for local users to session_route_to_user.
 *
 * Lifetime: a session is created when a connection is accepted and freed
 * after its connection has closed; the server's tables hold borrowed
 * pointers that are removed before the free.
 */
#ifndef ONAIR_SESSION_H
#define ONAIR_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <uthash.h>

#include "jid.h"
#include "xml.h"

struct server;
struct transport;
struct sasl_exchange;

typedef enum session_state {
    SESSION_CONNECTED = 0, /* waiting for the stream header */
    SESSION_NEGOTIATING,   /* header seen: STARTTLS / SASL */
    SESSION_AUTHENTICATED, /* SASL done, waiting for bind */
    SESSION_BOUND,         /* resource bound: routes stanzas */
    SESSION_CLOSING
} session_state;

typedef struct session {
    struct server *srv;
    struct transport *tr; /* borrowed from its implementation; NULL once the connection is gone */
    xml_parser *parser;  /* owned */
    struct sasl_exchange *sasl; /* owned while authenticating */
    session_state state;
    bool is_secure;      /* TLS is on */
    bool is_guest;       /* logged in with ANONYMOUS */
    bool header_sent;    /* our stream header is out */
    bool is_framed;      /* RFC 7395 framing (WebSocket): one element per message */
    unsigned char frame_elements; /* framed: top-level elements in the current message */
    char frame_last;     /* framed: last non-whitespace byte of the current message, 0 if none */
    unsigned sasl_failures;
    char stream_domain[64]; /* 'to' of the client's stream header (our domain or guest domain) */
    char stream_id[20];
    char *auth_user;     /* owned; authenticated local part */
    jid jid;             /* bound full JID */
    char *full;          /* owned string forms of jid */
    char *bare;
    uint64_t accepted_ms;

    /* presence (RFC 6121 section 4) */
    bool is_available;       /* sent available presence */
    bool is_interested;      /* requested the roster */
    int priority;
    xml_node *presence;      /* owned: last available broadcast presence */
    char **directed;         /* owned: full JIDs we sent directed presence to */
    size_t ndirected;

    /* server tables */
    UT_hash_handle hh;              /* server.sessions_by_full, key = full */
    struct session *next_resource;  /* same bare JID */
    struct session *preauth_prev, *preauth_next;
    struct session *all_prev, *all_next;
    struct session *idle_prev, *idle_next; /* server.active list, by last input */
    uint64_t last_input_ms;                  /* loop time of the last bytes read */
    bool in_preauth;
    bool in_active;
} session;

typedef struct user_sessions {
    char *bare;          /* owned, key */
    session *head;       /* bound sessions of this account */
    UT_hash_handle hh;
} user_sessions;

/* ---- stream.c ---- */

/* Creates a session for a freshly accepted connection, on its transport
 * (transport.h: TCP or WebSocket; secure from the start when the transport
 * says so).  The session owns itself; it frees itself after the transport
 * reports on_close.  Returns NULL when out of memory (the caller then closes
 * the connection). */
session *stream_accept(struct server *srv, struct transport *tr);
/* Sends a stream error and closes (text may be NULL). */
void stream_error(session *s, const char *condition, const char *text);
/* Closes the stream cleanly with </stream:stream>. */
void stream_close(session *s);
/* Serializes and writes one stanza (borrowed). */
void stream_send(session *s, const xml_node *stanza);
/* Writes already serialized bytes. */
void stream_send_raw(session *s, const char *data, size_t len);
/* Writes one stanza given in n pieces (borrowed), counted once. */
void stream_send_parts(session *s, const char *const *parts, const size_t *lens, size_t n);
/* Times out sessions that have not bound in time (called once a second). */
void stream_sweep(struct server *srv);

/* ---- session.c ---- */

/* A session has bound its resource: enter it in the tables. */
void session_bound(session *s);
/* The session is ending: unavailable presence, leave the tables. */
void session_unbind(session *s);
/* Handles a stanza from a bound session (already stamped with 'from'). Takes
 * ownership of the stanza. */
void session_handle_stanza(session *s, xml_node *stanza);
/* Delivers a stanza addressed to a local account (node@our domain). to is
 * parsed; stanza borrowed. */
void session_route_to_user(struct server *srv, xml_node *stanza, const jid *from, const jid *to);
/* Server-side IQ handlers registered with the router (roster). */
void session_register(struct server *srv);

session *session_find_full(struct server *srv, const char *full);
/* The same for a full JID of len bytes (not necessarily NUL-terminated). */
session *session_find_full_n(struct server *srv, const char *full, size_t len);
user_sessions *session_find_user(struct server *srv, const char *bare);

#endif
