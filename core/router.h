/* router.h - the one place that decides where a stanza goes (RFC 6120
 * section 10): a local user's sessions (or their offline store), the server
 * itself (IQ handlers by namespace), a local service registered for a domain
 * (rooms, reservations, media in later modules), or a remote domain (s2s; until
 * it is registered, remote-server-not-found).
 *
 * Ownership: router_route takes ownership of the stanza.  Handlers borrow the
 * stanza for the call (they clone what they keep) unless said otherwise.
 */
#ifndef ONAIR_ROUTER_H
#define ONAIR_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "jid.h"
#include "xml.h"

struct server;
struct session;

#define ROUTER_MAX_SERVICES 16
#define ROUTER_MAX_IQ 32
#define ROUTER_MAX_FEATURES 48
#define ROUTER_MAX_NODE_HANDLERS 16

/* Result of a handler: HANDLED (done, including errors it sent), PASS (let
 * the next handler or the default try). */
typedef enum router_result { ROUTER_PASS = 0, ROUTER_HANDLED = 1 } router_result;

/* A stanza for a service domain.  from/to are parsed and borrowed; the
 * stanza is borrowed. */
typedef router_result (*router_service_fn)(void *ud, struct server *srv, xml_node *stanza, const jid *from,
                                           const jid *to);
/* An IQ addressed to the server (to = domain or absent) whose first child is
 * in the registered namespace.  `session` is the sender's session when it is
 * local, else NULL. */
typedef router_result (*router_iq_fn)(void *ud, struct server *srv, struct session *session, xml_node *iq,
                                      const jid *from);

/* A XEP-0030 query with a 'node' attribute addressed to the server JID
 * (disco.c asks every registered node handler in turn).  `items` tells
 * disco#items from disco#info; `query` is the result's <query/> element
 * (borrowed; node attribute already set) for the handler to fill.  The
 * handler returns ROUTER_PASS when the node is not its own (nobody owns it:
 * item-not-found), or ROUTER_HANDLED after filling `query`, or after
 * setting *error to a stanza error condition of type cancel (such as
 * "forbidden"), in which case `query` is discarded.  `session` is the
 * sender's session when it is local, else NULL; from is borrowed. */
typedef router_result (*router_node_fn)(void *ud, struct server *srv, struct session *session, const jid *from,
                                        const char *node, bool items, xml_node *query, const char **error);

typedef struct router_service {
    char *domain; /* owned */
    router_service_fn fn;
    void *ud;
} router_service;

typedef struct router_iq {
    char *ns; /* owned */
    router_iq_fn fn;
    void *ud;
} router_iq;

typedef struct router_node_handler {
    router_node_fn fn;
    void *ud;
} router_node_handler;

typedef struct router {
    router_service services[ROUTER_MAX_SERVICES];
    size_t nservices;
    router_iq iqs[ROUTER_MAX_IQ];
    size_t niqs;
    char *features[ROUTER_MAX_FEATURES]; /* owned disco#info feature vars */
    size_t nfeatures;
    router_node_handler nodes[ROUTER_MAX_NODE_HANDLERS]; /* disco node handlers, asked in order */
    size_t nnodes;
    router_service remote; /* s2s, when registered (domain unused) */
} router;

void router_init(router *r);
void router_free(router *r);

/* Registration returns 0, or -1 if the table is full or the key is taken. */
int router_register_service(router *r, const char *domain, router_service_fn fn, void *ud);
int router_register_iq(router *r, const char *ns, router_iq_fn fn, void *ud);
int router_add_feature(router *r, const char *var);
/* Undo the registrations above (for modules that can go away: plugins).
 * Nothing happens when ns or var is not registered. */
void router_unregister_iq(router *r, const char *ns);
void router_remove_feature(router *r, const char *var);
/* Adds a handler for disco queries with a node (see router_node_fn). */
int router_register_node(router *r, router_node_fn fn, void *ud);
void router_set_remote(router *r, router_service_fn fn, void *ud);
bool router_is_local_domain(const struct server *srv, const char *domain);

/* Routes a stanza whose 'from' is already stamped and valid.  Takes
 * ownership of stanza.  `sender` is the local session it came from, if any. */
void router_route(struct server *srv, struct session *sender, xml_node *stanza);

/* Sends the error reply for `stanza` (RFC 6120 section 8.3): swaps to/from,
 * keeps id and type=error, adds <error type=...><condition/><text/></error>.
 * Never answers a stanza of type error.  stanza is borrowed. text may be
 * NULL. */
void router_reply_error(struct server *srv, const xml_node *stanza, const char *type, const char *condition,
                        const char *text);
/* The same error reply without sending it, for a caller that adds an
 * application-specific condition (appended to the <error/> child, after
 * the text, as RFC 6120 8.3.2 orders them) or sends it its own way.
 * Caller owns the result; NULL when no error may be sent (stanza is an
 * error or an IQ result, or has no 'from') or out of memory. */
xml_node *router_error_stanza(struct server *srv, const xml_node *stanza, const char *type, const char *condition,
                              const char *text);
/* A stanza serialized once for many recipients, without its 'to': `head`
 * is its start tag's opening up to and including ` to="` (e.g.
 * `<message to="`), `tail` the rest from the quote that closes the 'to'
 * value.  Both borrowed. */
typedef struct router_splice {
    const char *head;
    size_t head_len;
    const char *tail;
    size_t tail_len;
} router_splice;
/* Delivers a spliced stanza to the full JID `to` (normalised; it is escaped
 * as it is written): head, to, tail.  The fan-out path of services (rooms):
 * no tree, no parse.  Returns true when the address took it, false when
 * nobody is there (a local full JID with no bound session; or a remote
 * domain, until s2s offers a raw path), so that the caller can treat the
 * address as gone.  Nothing is borrowed beyond the call. */
bool router_deliver_spliced(struct server *srv, const char *to, size_t to_len, const router_splice *sp);

/* Builds an IQ result for iq (borrowed); caller owns the result. */
xml_node *router_iq_result(const xml_node *iq);

#endif
