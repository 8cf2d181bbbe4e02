/* disco.c - XEP-0030 service discovery for the server JID (identity
 * server/im, the features every module registered with the router, and the
 * service domains as items), XEP-0199 ping and XEP-0092 version.  A query
 * with a node is answered by the node handlers modules registered with the
 * router (router_register_node), asked in turn; a node nobody owns, or any
 * node on an account's JID, gets item-not-found.
 */
#include "disco.h"

#include <string.h>

#include "router.h"
#include "server.h"
#include "session.h"

#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_PING "urn:xmpp:ping"
#define NS_VERSION "jabber:iq:version"

static void reply(server *srv, session *s, xml_node *res)
{
    if (s)
        stream_send(s, res);
    else
        router_route(srv, NULL, xml_node_clone(res));
    xml_node_free(res);
}

static bool is_get(const xml_node *iq)
{
    const char *type = xml_node_attr(iq, "type");
    return type && strcmp(type, "get") == 0;
}

/* A query with a node: the first node handler that owns it answers. */
static void node_query(server *srv, session *s, xml_node *iq, const jid *from, const char *ns, const char *node)
{
    const char *to = xml_node_attr(iq, "to");
    if (!(to && strchr(to, '@'))) {
        for (size_t i = 0; i < srv->router.nnodes; i++) {
            xml_node *res = router_iq_result(iq);
            if (!res)
                return;
            xml_node *rq = xml_node_add_child(res, "query", ns);
            xml_node_set_attr(rq, "node", node);
            const char *error = NULL;
            router_node_handler *h = &srv->router.nodes[i];
            if (h->fn(h->ud, srv, s, from, node, strcmp(ns, NS_DISCO_ITEMS) == 0, rq, &error) == ROUTER_HANDLED) {
                if (error) {
                    xml_node_free(res);
                    router_reply_error(srv, iq, "cancel", error, NULL);
                } else {
                    reply(srv, s, res);
                }
                return;
            }
            xml_node_free(res);
        }
    }
    router_reply_error(srv, iq, "cancel", "item-not-found", NULL);
}

/* Only the server's own JID (or the account's bare JID for disco#info). */
static router_result disco_info(void *ud, server *srv, session *s, xml_node *iq, const jid *from)
{
    if (!is_get(iq))
        return ROUTER_PASS;
    xml_node *q = xml_node_child(iq, "query", NS_DISCO_INFO);
    const char *node = xml_node_attr(q, "node");
    if (node) {
        node_query(srv, s, iq, from, NS_DISCO_INFO, node);
        return ROUTER_HANDLED;
    }
    xml_node *res = router_iq_result(iq);
    xml_node *rq = xml_node_add_child(res, "query", NS_DISCO_INFO);
    const char *to = xml_node_attr(iq, "to");
    bool for_account = to && strchr(to, '@');
    xml_node *id = xml_node_add_child(rq, "identity", NS_DISCO_INFO);
    if (for_account) {
        xml_node_set_attr(id, "category", "account");
        xml_node_set_attr(id, "type", "registered");
    } else {
        xml_node_set_attr(id, "category", "server");
        xml_node_set_attr(id, "type", "im");
        xml_node_set_attr(id, "name", "onair");
    }
    for (size_t i = 0; i < srv->router.nfeatures; i++) {
        xml_node *f = xml_node_add_child(rq, "feature", NS_DISCO_INFO);
        xml_node_set_attr(f, "var", srv->router.features[i]);
    }
    reply(srv, s, res);
    return ROUTER_HANDLED;
}

static router_result disco_items(void *ud, server *srv, session *s, xml_node *iq, const jid *from)
{
    if (!is_get(iq))
        return ROUTER_PASS;
    xml_node *q = xml_node_child(iq, "query", NS_DISCO_ITEMS);
    const char *node = xml_node_attr(q, "node");
    if (node) {
        node_query(srv, s, iq, from, NS_DISCO_ITEMS, node);
        return ROUTER_HANDLED;
    }
    xml_node *res = router_iq_result(iq);
    xml_node *rq = xml_node_add_child(res, "query", NS_DISCO_ITEMS);
    const char *to = xml_node_attr(iq, "to");
    if (!to || !strchr(to, '@')) {
        for (size_t i = 0; i < srv->router.nservices; i++) {
            xml_node *item = xml_node_add_child(rq, "item", NS_DISCO_ITEMS);
            xml_node_set_attr(item, "jid", srv->router.services[i].domain);
        }
    }
    reply(srv, s, res);
    return ROUTER_HANDLED;
}

static router_result ping(void *ud, server *srv, session *s, xml_node *iq, const jid *from)
{
    if (!is_get(iq))
        return ROUTER_PASS;
    reply(srv, s, router_iq_result(iq));
    return ROUTER_HANDLED;
}

static router_result version(void *ud, server *srv, session *s, xml_node *iq, const jid *from)
{
    if (!is_get(iq))
        return ROUTER_PASS;
    xml_node *res = router_iq_result(iq);
    xml_node *q = xml_node_add_child(res, "query", NS_VERSION);
    xml_node *name = xml_node_add_child(q, "name", NS_VERSION);
    xml_node_add_text(name, "onair", 5);
    xml_node *ver = xml_node_add_child(q, "version", NS_VERSION);
    xml_node_add_text(ver, ONAIR_VERSION, strlen(ONAIR_VERSION));
    reply(srv, s, res);
    return ROUTER_HANDLED;
}

void disco_register(server *srv)
{
    router *r = &srv->router;
    router_register_iq(r, NS_DISCO_INFO, disco_info, NULL);
    router_register_iq(r, NS_DISCO_ITEMS, disco_items, NULL);
    router_register_iq(r, NS_PING, ping, NULL);
    router_register_iq(r, NS_VERSION, version, NULL);
    router_add_feature(r, NS_DISCO_INFO);
    router_add_feature(r, NS_DISCO_ITEMS);
    router_add_feature(r, NS_PING);
    router_add_feature(r, NS_VERSION);
    router_add_feature(r, "jabber:iq:roster");
    router_add_feature(r, "urn:xmpp:delay");
    router_add_feature(r, "msgoffline");
}
