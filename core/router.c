/* router.c - where every stanza goes (RFC 6120 section 10 "Server Rules for
 * Processing XML Stanzas").  Local user JIDs go to session.c, which applies
 * RFC 6121's delivery rules; the server's own JID to the IQ handlers
 * registered by namespace; a registered service domain to its handler; any
 * other domain to the remote handler (s2s) or back as
 * remote-server-not-found.
 */
#include "router.h"

#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "session.h"

#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

void router_init(router *r)
{
    memset(r, 0, sizeof *r);
}

void router_free(router *r)
{
    for (size_t i = 0; i < r->nservices; i++)
        free(r->services[i].domain);
    for (size_t i = 0; i < r->niqs; i++)
        free(r->iqs[i].ns);
    for (size_t i = 0; i < r->nfeatures; i++)
        free(r->features[i]);
    memset(r, 0, sizeof *r);
}

int router_register_service(router *r, const char *domain, router_service_fn fn, void *ud)
{
    if (r->nservices >= ROUTER_MAX_SERVICES)
        return -1;
    for (size_t i = 0; i < r->nservices; i++)
        if (strcmp(r->services[i].domain, domain) == 0)
            return -1;
    r->services[r->nservices++] = (router_service){strdup(domain), fn, ud};
    return 0;
}

int router_register_iq(router *r, const char *ns, router_iq_fn fn, void *ud)
{
    if (r->niqs >= ROUTER_MAX_IQ)
        return -1;
    for (size_t i = 0; i < r->niqs; i++)
        if (strcmp(r->iqs[i].ns, ns) == 0)
            return -1;
    r->iqs[r->niqs++] = (router_iq){strdup(ns), fn, ud};
    return 0;
}

int router_add_feature(router *r, const char *var)
{
    for (size_t i = 0; i < r->nfeatures; i++)
        if (strcmp(r->features[i], var) == 0)
            return 0;
    if (r->nfeatures >= ROUTER_MAX_FEATURES)
        return -1;
    r->features[r->nfeatures++] = strdup(var);
    return 0;
}

void router_unregister_iq(router *r, const char *ns)
{
    for (size_t i = 0; i < r->niqs; i++) {
        if (strcmp(r->iqs[i].ns, ns) == 0) {
            free(r->iqs[i].ns);
            memmove(&r->iqs[i], &r->iqs[i + 1], (r->niqs - i - 1) * sizeof r->iqs[0]);
            r->niqs--;
            return;
        }
    }
}

void router_remove_feature(router *r, const char *var)
{
    for (size_t i = 0; i < r->nfeatures; i++) {
        if (strcmp(r->features[i], var) == 0) {
            free(r->features[i]);
            memmove(&r->features[i], &r->features[i + 1], (r->nfeatures - i - 1) * sizeof r->features[0]);
            r->nfeatures--;
            return;
        }
    }
}

int router_register_node(router *r, router_node_fn fn, void *ud)
{
    if (r->nnodes >= ROUTER_MAX_NODE_HANDLERS)
        return -1;
    r->nodes[r->nnodes++] = (router_node_handler){fn, ud};
    return 0;
}

void router_set_remote(router *r, router_service_fn fn, void *ud)
{
    r->remote.fn = fn;
    r->remote.ud = ud;
}

bool router_is_local_domain(const server *srv, const char *domain)
{
    return strcmp(domain, srv->cfg.domain) == 0 ||
           (srv->cfg.guest_domain && strcmp(domain, srv->cfg.guest_domain) == 0);
}

xml_node *router_iq_result(const xml_node *iq)
{
    xml_node *res = xml_node_new("iq", XML_NS_CLIENT);
    if (!res)
        return NULL;
    xml_node_set_attr(res, "type", "result");
    const char *id = xml_node_attr(iq, "id");
    xml_node_set_attr(res, "id", id ? id : "");
    const char *from = xml_node_attr(iq, "from");
    const char *to = xml_node_attr(iq, "to");
    if (from)
        xml_node_set_attr(res, "to", from);
    if (to)
        xml_node_set_attr(res, "from", to);
    return res;
}

xml_node *router_error_stanza(server *srv, const xml_node *stanza, const char *type, const char *condition,
                              const char *text)
{
    const char *stype = xml_node_attr(stanza, "type");
    if (stype && strcmp(stype, "error") == 0)
        return NULL;
    if (strcmp(stanza->name, "iq") == 0 && stype && (strcmp(stype, "result") == 0))
        return NULL;
    xml_node *err = xml_node_new(stanza->name, XML_NS_CLIENT);
    if (!err)
        return NULL;
    xml_node_set_attr(err, "type", "error");
    const char *id = xml_node_attr(stanza, "id");
    if (id)
        xml_node_set_attr(err, "id", id);
    const char *from = xml_node_attr(stanza, "from");
    const char *to = xml_node_attr(stanza, "to");
    if (!from) {
        xml_node_free(err);
        return NULL;
    }
    xml_node_set_attr(err, "to", from);
    /* A malformed 'to' cannot be the error's sender: the server answers. */
    char *norm_to = to ? jid_normalize(to) : NULL;
    xml_node_set_attr(err, "from", norm_to ? norm_to : srv->cfg.domain);
    free(norm_to);
    /* RFC 6120 8.3.1: include the original payload (an IQ's request, a
     * message's body and the rest) so the sender recognises what bounced. */
    bool is_iq = strcmp(stanza->name, "iq") == 0;
    if (is_iq || strcmp(stanza->name, "message") == 0) {
        for (xml_node *c = stanza->children; c; c = c->next) {
            if (c->type != XML_ELEMENT)
                continue;
            xml_node_append(err, xml_node_clone(c));
            if (is_iq)
                break;
        }
    }
    xml_node *e = xml_node_add_child(err, "error", XML_NS_CLIENT);
    xml_node_set_attr(e, "type", type);
    xml_node_add_child(e, condition, NS_STANZAS);
    if (text) {
        xml_node *t = xml_node_add_child(e, "text", NS_STANZAS);
        xml_node_set_attr(t, "xml:lang", "en");
        xml_node_add_text(t, text, strlen(text));
    }
    return err;
}

void router_reply_error(server *srv, const xml_node *stanza, const char *type, const char *condition,
                        const char *text)
{
    xml_node *err = router_error_stanza(srv, stanza, type, condition, text);
    if (err)
        router_route(srv, NULL, err);
}

bool router_deliver_spliced(server *srv, const char *to, size_t to_len, const router_splice *sp)
{
    session *s = session_find_full_n(srv, to, to_len);
    if (!s)
        return false; /* local and gone; remote: no raw path yet */
    /* The attribute value is written escaped; JIDs rarely need it. */
    const char *esc = NULL;
    for (size_t i = 0; i < to_len; i++) {
        char c = to[i];
        if (c == '&' || c == '<' || c == '>' || c == '"' || c == '\'') {
            esc = to;
            break;
        }
    }
    const char *parts[3] = {sp->head, to, sp->tail};
    size_t lens[3] = {sp->head_len, to_len, sp->tail_len};
    char *escaped = NULL;
    if (esc) {
        escaped = xml_escape(to, to_len);
        if (!escaped)
            return false;
        parts[1] = escaped;
        lens[1] = strlen(escaped);
    }
    stream_send_parts(s, parts, lens, 3);
    free(escaped);
    return true;
}

/* An IQ for the server itself: dispatch on the payload's namespace. */
static void route_to_server(server *srv, session *sender, xml_node *stanza, const jid *from)
{
    if (strcmp(stanza->name, "iq") != 0)
        return; /* messages and presence to the server are dropped (RFC 6120 10.3.1) */
    const char *type = xml_node_attr(stanza, "type");
    if (!type || strcmp(type, "result") == 0 || strcmp(type, "error") == 0)
        return;
    xml_node *payload = NULL;
    for (xml_node *c = stanza->children; c; c = c->next)
        if (c->type == XML_ELEMENT) {
            payload = c;
            break;
        }
    if (payload) {
        for (size_t i = 0; i < srv->router.niqs; i++) {
            if (strcmp(srv->router.iqs[i].ns, payload->ns) == 0 &&
                srv->router.iqs[i].fn(srv->router.iqs[i].ud, srv, sender, stanza, from) == ROUTER_HANDLED)
                return;
        }
    }
    router_reply_error(srv, stanza, "cancel", "service-unavailable", NULL);
}

void router_route(server *srv, session *sender, xml_node *stanza)
{
    const char *from_s = xml_node_attr(stanza, "from");
    const char *to_s = xml_node_attr(stanza, "to");
    jid parsed_from = {0}, to = {0};
    const jid *from = &parsed_from;
    if (!from_s)
        goto out; /* only internal code routes; it always stamps 'from' */
    if (sender && sender->full && strcmp(from_s, sender->full) == 0)
        from = &sender->jid; /* stamped by the stream: already prepared */
    else if (jid_parse(from_s, &parsed_from) != 0)
        goto out;
    if (!to_s) {
        /* No 'to': the sender's own account (RFC 6120 10.3). IQs go to the
         * server acting on behalf of the account. */
        if (strcmp(stanza->name, "iq") == 0) {
            route_to_server(srv, sender, stanza, from);
            goto out;
        }
        if (jid_from_parts(&to, from->node, from->domain, NULL) != 0)
            goto out;
    } else if (jid_parse(to_s, &to) != 0) {
        router_reply_error(srv, stanza, "modify", "jid-malformed", NULL);
        goto out;
    }

    if (router_is_local_domain(srv, to.domain)) {
        if (!to.node && !to.resource) {
            route_to_server(srv, sender, stanza, from);
        } else if (!to.node) {
            router_reply_error(srv, stanza, "cancel", "service-unavailable", NULL);
        } else if (strcmp(stanza->name, "iq") == 0 && !to.resource &&
                   (!from->node || strcmp(from->node, to.node) != 0 || strcmp(from->domain, to.domain) != 0)) {
            /* An IQ to someone else's bare JID: the server answers for the
             * account (RFC 6120 10.5.4); it handles no such payloads yet. */
            router_reply_error(srv, stanza, "cancel", "service-unavailable", NULL);
        } else if (strcmp(stanza->name, "iq") == 0 && !to.resource) {
            route_to_server(srv, sender, stanza, from);
        } else {
            session_route_to_user(srv, stanza, from, &to);
        }
        goto out;
    }
    for (size_t i = 0; i < srv->router.nservices; i++) {
        if (strcmp(srv->router.services[i].domain, to.domain) == 0) {
            if (srv->router.services[i].fn(srv->router.services[i].ud, srv, stanza, from, &to) != ROUTER_HANDLED)
                router_reply_error(srv, stanza, "cancel", "service-unavailable", NULL);
            goto out;
        }
    }
    if (srv->router.remote.fn &&
        srv->router.remote.fn(srv->router.remote.ud, srv, stanza, from, &to) == ROUTER_HANDLED)
        goto out;
    router_reply_error(srv, stanza, "cancel", "remote-server-not-found", NULL);
out:
    jid_clear(&parsed_from);
    jid_clear(&to);
    xml_node_free(stanza);
}
