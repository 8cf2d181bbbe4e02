/* session.c - what a bound client session does under RFC 6121: presence
 * (initial, updates, unavailable, directed, probes; section 4), the roster
 * and subscriptions (sections 2 and 3), and delivery of messages to a
 * user's resources or to the offline store (section 8.5, with XEP-0160
 * delivery on the next available presence and XEP-0203 delay stamps).
 *
 * Everything here is local delivery.  Stanzas for other domains leave
 * through router_route, so federation plugs in there without this file
 * changing.  Guests (ANONYMOUS) have no stored roster and no offline store.
 */
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "account.h"
#include "adhoc.h"
#include "media.h"
#include "datetime.h"
#include "offline.h"
#include "plugin.h"
#include "roster.h"
#include "router.h"
#include "server.h"

#define NS_ROSTER "jabber:iq:roster"
#define NS_DELAY "urn:xmpp:delay"
#define MAX_DIRECTED 128
#define MAX_GROUPS 32

/* ---- tables ---- */

/* The session bound to full JID j, looked up without allocating. */
static session *find_full_jid(server *srv, const jid *j)
{
    char key[3 * 1024 + 4];
    int n = snprintf(key, sizeof key, "%s%s%s/%s", j->node ? j->node : "", j->node ? "@" : "", j->domain,
                     j->resource ? j->resource : "");
    if (n < 0 || (size_t)n >= sizeof key)
        return NULL;
    session *s = NULL;
    HASH_FIND(hh, srv->sessions_by_full, key, (size_t)n, s);
    return s;
}

session *session_find_full(server *srv, const char *full)
{
    session *s = NULL;
    HASH_FIND_STR(srv->sessions_by_full, full, s);
    return s;
}

session *session_find_full_n(server *srv, const char *full, size_t len)
{
    session *s = NULL;
    HASH_FIND(hh, srv->sessions_by_full, full, len, s);
    return s;
}

user_sessions *session_find_user(server *srv, const char *bare)
{
    user_sessions *u = NULL;
    HASH_FIND_STR(srv->users, bare, u);
    return u;
}

void session_bound(session *s)
{
    server *srv = s->srv;
    HASH_ADD_KEYPTR(hh, srv->sessions_by_full, s->full, strlen(s->full), s);
    user_sessions *u = session_find_user(srv, s->bare);
    if (!u) {
        u = calloc(1, sizeof *u);
        u->bare = strdup(s->bare);
        HASH_ADD_KEYPTR(hh, srv->users, u->bare, strlen(u->bare), u);
    }
    s->next_resource = u->head;
    u->head = s;
    srv->nsessions++;
}

static void broadcast_presence(session *s, xml_node *presence);
static void unavailable_to_directed(session *s, const xml_node *unavailable);

void session_unbind(session *s)
{
    server *srv = s->srv;
    if (s->is_available || s->ndirected > 0) {
        /* RFC 6121 4.6 / 4.5.2: those who saw us get unavailable presence,
         * including receivers of directed presence sent before initial presence. */
        xml_node *p = xml_node_new("presence", XML_NS_CLIENT);
        xml_node_set_attr(p, "type", "unavailable");
        xml_node_set_attr(p, "from", s->full);
        if (s->is_available)
            broadcast_presence(s, p);
        else
            unavailable_to_directed(s, p);
        xml_node_free(p);
    }
    HASH_DELETE(hh, srv->sessions_by_full, s);
    adhoc_requester_gone(srv, s->full);
    media_peer_gone(srv, s->full);
    user_sessions *u = session_find_user(srv, s->bare);
    if (u) {
        for (session **pp = &u->head; *pp; pp = &(*pp)->next_resource) {
            if (*pp == s) {
                *pp = s->next_resource;
                break;
            }
        }
        if (!u->head) {
            HASH_DELETE(hh, srv->users, u);
            free(u->bare);
            free(u);
        }
    }
    s->next_resource = NULL;
    srv->nsessions--;
}

/* ---- helpers ---- */


static bool account_is_known(server *srv, const jid *to)
{
    if (srv->cfg.guest_domain && strcmp(to->domain, srv->cfg.guest_domain) == 0) {
        char *bare = jid_bare(to);
        bool found = session_find_user(srv, bare) != NULL;
        free(bare);
        return found;
    }
    return strcmp(to->domain, srv->cfg.domain) == 0 && account_exists(srv->store, to->node);
}

static bool is_guest_jid(server *srv, const jid *j)
{
    return srv->cfg.guest_domain && strcmp(j->domain, srv->cfg.guest_domain) == 0;
}

/* Sends a copy of stanza with 'to' set. */
static void send_copy_to(session *target, const xml_node *stanza, const char *to)
{
    xml_node *copy = xml_node_clone(stanza);
    if (!copy)
        return;
    if (to)
        xml_node_set_attr(copy, "to", to);
    stream_send(target, copy);
    xml_node_free(copy);
}

/* Routes a copy of stanza to `to` through the router (local or remote). */
static void route_copy(server *srv, const xml_node *stanza, const char *from, const char *to)
{
    xml_node *copy = xml_node_clone(stanza);
    if (!copy)
        return;
    xml_node_set_attr(copy, "to", to);
    if (from)
        xml_node_set_attr(copy, "from", from);
    router_route(srv, NULL, copy);
}

/* Sends unavailable presence (borrowed) to everyone who got directed
 * presence from s, and forgets them. */
static void unavailable_to_directed(session *s, const xml_node *unavailable)
{
    for (size_t i = 0; i < s->ndirected; i++) {
        route_copy(s->srv, unavailable, s->full, s->directed[i]);
        free(s->directed[i]);
    }
    s->ndirected = 0;
}

static void send_unavailable_from_all(server *srv, const char *user_bare, const char *contact);

/* ---- roster pushes ---- */

static xml_node *item_node(const roster_item *it, bool removed)
{
    xml_node *item = xml_node_new("item", NS_ROSTER);
    xml_node_set_attr(item, "jid", it->jid);
    if (removed) {
        xml_node_set_attr(item, "subscription", "remove");
        return item;
    }
    if (it->name)
        xml_node_set_attr(item, "name", it->name);
    xml_node_set_attr(item, "subscription", roster_sub_name(it->sub));
    if (it->ask_out)
        xml_node_set_attr(item, "ask", "subscribe");
    for (size_t i = 0; i < it->ngroups; i++) {
        xml_node *g = xml_node_add_child(item, "group", NS_ROSTER);
        xml_node_add_text(g, it->groups[i], strlen(it->groups[i]));
    }
    return item;
}

static void roster_push(server *srv, const char *bare, const roster_item *it, bool removed)
{
    user_sessions *u = session_find_user(srv, bare);
    if (!u)
        return;
    for (session *s = u->head; s; s = s->next_resource) {
        if (!s->is_interested)
            continue;
        xml_node *iq = xml_node_new("iq", XML_NS_CLIENT);
        char id[20];
        server_random_id(id, sizeof id, 12);
        xml_node_set_attr(iq, "type", "set");
        xml_node_set_attr(iq, "id", id);
        xml_node_set_attr(iq, "to", s->full);
        xml_node *q = xml_node_add_child(iq, "query", NS_ROSTER);
        xml_node_append(q, item_node(it, removed));
        stream_send(s, iq);
        xml_node_free(iq);
    }
}

static bool item_is_hidden(const roster_item *it)
{
    /* Only a pending inbound request: not a roster item yet (RFC 6121 3.1.3). */
    return it->sub == ROSTER_SUB_NONE && !it->ask_out && it->pending_in && !it->name && it->ngroups == 0;
}

static void save_and_push(server *srv, const char *user, const char *bare, roster_item *it)
{
    if (roster_put(srv->store, user, it, srv->cfg.max_roster_items) == STORE_OK && !item_is_hidden(it))
        roster_push(srv, bare, it, false);
}

/* ---- presence ---- */

static bool sub_has_from(roster_sub s)
{
    return s == ROSTER_SUB_FROM || s == ROSTER_SUB_BOTH;
}

static bool sub_has_to(roster_sub s)
{
    return s == ROSTER_SUB_TO || s == ROSTER_SUB_BOTH;
}

typedef struct contact_walk {
    server *srv;
    session *s;
    const xml_node *presence;
    bool probe;
} contact_walk;

static int broadcast_cb(void *ud, const roster_item *it)
{
    contact_walk *w = ud;
    if (w->probe) {
        if (!sub_has_to(it->sub))
            return 0;
        /* Probe: answer locally with the contact's available resources. */
        user_sessions *u = session_find_user(w->srv, it->jid);
        for (session *c = u ? u->head : NULL; c; c = c->next_resource)
            if (c->is_available && c->presence)
                send_copy_to(w->s, c->presence, w->s->full);
        return 0;
    }
    if (sub_has_from(it->sub))
        route_copy(w->srv, w->presence, w->s->full, it->jid);
    return 0;
}

/* Sends presence (borrowed, 'from' = s->full) to the user's subscribers, the
 * user's other available resources and, for unavailable, everyone that got
 * directed presence. */
static void broadcast_presence(session *s, xml_node *presence)
{
    server *srv = s->srv;
    if (!s->is_guest && !is_guest_jid(srv, &s->jid)) {
        contact_walk w = {srv, s, presence, false};
        roster_list(srv->store, s->auth_user, broadcast_cb, &w);
    }
    user_sessions *u = session_find_user(srv, s->bare);
    for (session *o = u ? u->head : NULL; o; o = o->next_resource)
        if (o->is_available && o != s)
            send_copy_to(o, presence, o->full);
    const char *type = xml_node_attr(presence, "type");
    if (type && strcmp(type, "unavailable") == 0)
        unavailable_to_directed(s, presence);
}

typedef struct offline_ctx {
    session *s;
} offline_ctx;

static int offline_deliver_cb(void *ud, const char *xml, size_t len, int64_t stamp_ms)
{
    offline_ctx *oc = ud;
    xml_node *st = NULL;
    if (plugins_hook_stanza_out(oc->s->srv) && xml_parse_element(xml, len, &oc->s->srv->limits, &st) == XML_OK) {
        stream_send(oc->s, st); /* through the plugins' stanza-out hooks */
        xml_node_free(st);
        return 0;
    }
    stream_send_raw(oc->s, xml, len);
    return 0;
}

static int pending_in_cb(void *ud, const roster_item *it)
{
    session *s = ud;
    if (!it->pending_in)
        return 0;
    xml_node *p = xml_node_new("presence", XML_NS_CLIENT);
    xml_node_set_attr(p, "type", "subscribe");
    xml_node_set_attr(p, "from", it->jid);
    xml_node_set_attr(p, "to", s->bare);
    stream_send(s, p);
    xml_node_free(p);
    return 0;
}

static void directed_add(session *s, const char *to)
{
    for (size_t i = 0; i < s->ndirected; i++)
        if (strcmp(s->directed[i], to) == 0)
            return;
    if (s->ndirected >= MAX_DIRECTED)
        return;
    char **grown = realloc(s->directed, (s->ndirected + 1) * sizeof *grown);
    if (!grown)
        return;
    s->directed = grown;
    s->directed[s->ndirected++] = strdup(to);
}

static void directed_remove(session *s, const char *to)
{
    for (size_t i = 0; i < s->ndirected; i++) {
        if (strcmp(s->directed[i], to) == 0) {
            free(s->directed[i]);
            s->directed[i] = s->directed[--s->ndirected];
            return;
        }
    }
}

static void handle_presence_broadcast(session *s, xml_node *p)
{
    server *srv = s->srv;
    const char *type = xml_node_attr(p, "type");
    if (!type) {
        bool initial = !s->is_available;
        char *prio = xml_node_child_text(p, "priority", NULL);
        long v = prio ? strtol(prio, NULL, 10) : 0;
        free(prio);
        s->priority = v < -128 ? -128 : v > 127 ? 127 : (int)v;
        xml_node_free(s->presence);
        s->presence = xml_node_clone(p);
        s->is_available = true;
        broadcast_presence(s, p);
        if (initial) {
            /* Probe our contacts and our own other resources (RFC 6121 4.2.2). */
            user_sessions *u = session_find_user(srv, s->bare);
            for (session *o = u ? u->head : NULL; o; o = o->next_resource)
                if (o != s && o->is_available && o->presence)
                    send_copy_to(s, o->presence, s->full);
            if (!s->is_guest) {
                contact_walk w = {srv, s, NULL, true};
                roster_list(srv->store, s->auth_user, broadcast_cb, &w);
                roster_list(srv->store, s->auth_user, pending_in_cb, s);
                if (s->priority >= 0) {
                    offline_ctx oc = {s};
                    offline_take(srv->store, s->auth_user, offline_deliver_cb, &oc);
                }
            }
        }
    } else if (strcmp(type, "unavailable") == 0) {
        if (s->is_available) {
            broadcast_presence(s, p);
            s->is_available = false;
            xml_node_free(s->presence);
            s->presence = NULL;
        }
    }
    /* probe/error/subscription types without 'to' are meaningless: dropped */
}

/* Outbound subscription stanza from s (RFC 6121 3.1.2, 3.1.5, 3.2.2, 3.3.2). */
static void handle_outbound_subscription(session *s, xml_node *p, const char *type, const jid *to)
{
    server *srv = s->srv;
    if (s->is_guest || !to->node)
        return;
    char *contact = jid_bare(to);
    roster_item it = {0};
    bool found = roster_get(srv->store, s->auth_user, contact, &it) == STORE_OK;
    if (!found) {
        it.jid = strdup(contact);
        it.sub = ROSTER_SUB_NONE;
    }
    bool route = true;
    if (strcmp(type, "subscribe") == 0) {
        if (!sub_has_to(it.sub)) {
            it.ask_out = true;
            save_and_push(srv, s->auth_user, s->bare, &it);
        }
    } else if (strcmp(type, "subscribed") == 0) {
        if (found && it.pending_in) {
            it.pending_in = false;
            it.sub = it.sub == ROSTER_SUB_TO ? ROSTER_SUB_BOTH : ROSTER_SUB_FROM;
            save_and_push(srv, s->auth_user, s->bare, &it);
        } else {
            route = false; /* nothing pending: no pre-approval support */
        }
    } else if (strcmp(type, "unsubscribe") == 0) {
        if (found) {
            it.ask_out = false;
            it.sub = it.sub == ROSTER_SUB_BOTH ? ROSTER_SUB_FROM : it.sub == ROSTER_SUB_TO ? ROSTER_SUB_NONE : it.sub;
            save_and_push(srv, s->auth_user, s->bare, &it);
        }
    } else { /* unsubscribed */
        if (found) {
            it.pending_in = false;
            it.sub = it.sub == ROSTER_SUB_BOTH ? ROSTER_SUB_TO : it.sub == ROSTER_SUB_FROM ? ROSTER_SUB_NONE : it.sub;
            save_and_push(srv, s->auth_user, s->bare, &it);
        }
    }
    if (route) {
        xml_node *out = xml_node_clone(p);
        xml_node_set_attr(out, "to", contact);
        xml_node_set_attr(out, "from", s->bare);
        router_route(srv, s, out);
        if (strcmp(type, "subscribed") == 0) {
            /* The new subscriber gets our current presence. */
            user_sessions *u = session_find_user(srv, s->bare);
            for (session *o = u ? u->head : NULL; o; o = o->next_resource)
                if (o->is_available && o->presence)
                    route_copy(srv, o->presence, o->full, contact);
        } else if (strcmp(type, "unsubscribed") == 0) {
            send_unavailable_from_all(srv, s->bare, contact);
        }
    }
    roster_item_clear(&it);
    free(contact);
}

/* Unavailable presence from each available resource of user_bare to contact
 * (RFC 6121 3.2.2, 3.3.3: a contact who lost the subscription stops seeing us). */
static void send_unavailable_from_all(server *srv, const char *user_bare, const char *contact)
{
    xml_node *un = xml_node_new("presence", XML_NS_CLIENT);
    xml_node_set_attr(un, "type", "unavailable");
    user_sessions *u = session_find_user(srv, user_bare);
    for (session *o = u ? u->head : NULL; o; o = o->next_resource)
        if (o->is_available)
            route_copy(srv, un, o->full, contact);
    xml_node_free(un);
}

static void deliver_to_available(server *srv, const char *bare, const xml_node *stanza)
{
    user_sessions *u = session_find_user(srv, bare);
    for (session *o = u ? u->head : NULL; o; o = o->next_resource)
        if (o->is_available)
            stream_send(o, stanza);
}

/* Inbound subscription stanza for local account `to` (RFC 6121 3.1.3,
 * 3.1.6, 3.2.3, 3.3.3). */
static void handle_inbound_subscription(server *srv, xml_node *p, const char *type, const jid *from, const jid *to)
{
    if (is_guest_jid(srv, to) || !account_exists(srv->store, to->node))
        return;
    char *contact = jid_bare(from);
    char *user_bare = jid_bare(to);
    roster_item it = {0};
    bool found = roster_get(srv->store, to->node, contact, &it) == STORE_OK;
    xml_node_set_attr(p, "from", contact);
    if (strcmp(type, "subscribe") == 0) {
        if (found && sub_has_from(it.sub)) {
            /* Already approved: answer for the user. */
            xml_node *ok = xml_node_new("presence", XML_NS_CLIENT);
            xml_node_set_attr(ok, "type", "subscribed");
            xml_node_set_attr(ok, "from", user_bare);
            xml_node_set_attr(ok, "to", contact);
            router_route(srv, NULL, ok);
        } else {
            if (!found) {
                it.jid = strdup(contact);
                it.sub = ROSTER_SUB_NONE;
            }
            if (!it.pending_in) {
                it.pending_in = true;
                roster_put(srv->store, to->node, &it, srv->cfg.max_roster_items);
            }
            deliver_to_available(srv, user_bare, p);
        }
    } else if (strcmp(type, "subscribed") == 0) {
        if (found && it.ask_out) {
            it.ask_out = false;
            it.sub = it.sub == ROSTER_SUB_FROM ? ROSTER_SUB_BOTH : ROSTER_SUB_TO;
            save_and_push(srv, to->node, user_bare, &it);
            deliver_to_available(srv, user_bare, p);
        }
    } else if (strcmp(type, "unsubscribe") == 0) {
        if (found && (sub_has_from(it.sub) || it.pending_in)) {
            it.pending_in = false;
            it.sub = it.sub == ROSTER_SUB_BOTH ? ROSTER_SUB_TO : it.sub == ROSTER_SUB_FROM ? ROSTER_SUB_NONE : it.sub;
            save_and_push(srv, to->node, user_bare, &it);
            deliver_to_available(srv, user_bare, p);
            send_unavailable_from_all(srv, user_bare, contact);
        }
    } else { /* unsubscribed */
        if (found && (sub_has_to(it.sub) || it.ask_out)) {
            it.ask_out = false;
            it.sub = it.sub == ROSTER_SUB_BOTH ? ROSTER_SUB_FROM : it.sub == ROSTER_SUB_TO ? ROSTER_SUB_NONE : it.sub;
            save_and_push(srv, to->node, user_bare, &it);
            deliver_to_available(srv, user_bare, p);
        }
    }
    roster_item_clear(&it);
    free(contact);
    free(user_bare);
}

static bool is_subscription_type(const char *type)
{
    return type && (strcmp(type, "subscribe") == 0 || strcmp(type, "subscribed") == 0 ||
                    strcmp(type, "unsubscribe") == 0 || strcmp(type, "unsubscribed") == 0);
}

/* ---- stanzas from a bound session ---- */

void session_handle_stanza(session *s, xml_node *stanza)
{
    if (strcmp(stanza->name, "presence") == 0) {
        const char *to_s = xml_node_attr(stanza, "to");
        const char *type = xml_node_attr(stanza, "type");
        if (!to_s) {
            handle_presence_broadcast(s, stanza);
            xml_node_free(stanza);
            return;
        }
        jid to = {0};
        if (jid_parse(to_s, &to) != 0) {
            router_reply_error(s->srv, stanza, "modify", "jid-malformed", NULL);
            xml_node_free(stanza);
            return;
        }
        if (is_subscription_type(type)) {
            handle_outbound_subscription(s, stanza, type, &to);
            jid_clear(&to);
            xml_node_free(stanza);
            return;
        }
        char *norm = jid_full(&to);
        if (!type)
            directed_add(s, norm);
        else if (strcmp(type, "unavailable") == 0)
            directed_remove(s, norm);
        xml_node_set_attr(stanza, "to", norm);
        free(norm);
        jid_clear(&to);
    }
    router_route(s->srv, s, stanza);
}

/* ---- delivery to a local account ---- */

/* The highest non-negative priority among the user's available resources,
 * or -1 if none can take a message to the bare JID. */
static int top_priority(const user_sessions *u)
{
    int top = -1;
    for (session *o = u ? u->head : NULL; o; o = o->next_resource)
        if (o->is_available && o->priority > top)
            top = o->priority;
    return top;
}

/* Sends stanza (serialized once) to every available resource of u with
 * exactly `priority`.  Returns how many got it. */
static size_t send_to_priority(server *srv, const user_sessions *u, int priority, const xml_node *stanza)
{
    size_t n = 0;
    xml_buf buf = {0};
    bool hooked = plugins_hook_stanza_out(srv); /* then each copy goes through the hooks */
    for (session *o = u ? u->head : NULL; o; o = o->next_resource) {
        if (!o->is_available || o->priority != priority)
            continue;
        if (hooked) {
            stream_send(o, stanza);
            n++;
            continue;
        }
        if (buf.len == 0) {
            xml_serialize(stanza, XML_NS_CLIENT, &buf);
            if (buf.failed)
                break;
        }
        stream_send_raw(o, buf.data, buf.len);
        n++;
    }
    xml_buf_free(&buf);
    return n;
}

static void store_offline(server *srv, xml_node *stanza, const jid *to)
{
    if (is_guest_jid(srv, to)) {
        router_reply_error(srv, stanza, "cancel", "service-unavailable", NULL);
        return;
    }
    int64_t now = (int64_t)server_now_ms();
    xml_node *copy = xml_node_clone(stanza);
    char stamp[DATETIME_MAX];
    datetime_format_stamp_ms(now, stamp);
    xml_node *delay = xml_node_add_child(copy, "delay", NS_DELAY);
    xml_node_set_attr(delay, "from", srv->cfg.domain);
    xml_node_set_attr(delay, "stamp", stamp);
    xml_buf buf = {0};
    xml_serialize(copy, XML_NS_CLIENT, &buf);
    xml_node_free(copy);
    int rc = buf.failed ? STORE_ERROR
                        : offline_push(srv->store, to->node, buf.data, buf.len, now, srv->cfg.max_offline_per_user);
    xml_buf_free(&buf);
    if (rc == STORE_OK) {
        srv->stats.offline_stored++;
    } else {
        log_write(&srv->log, LOG_WARN, "session", "offline store for %s@%s refused (%d)", to->node, to->domain, rc);
        router_reply_error(srv, stanza, "cancel", "service-unavailable",
                           rc == STORE_FULL ? "the recipient's offline storage is full" : NULL);
    }
}

static void route_message(server *srv, xml_node *stanza, const jid *to, const char *bare)
{
    const char *type = xml_node_attr(stanza, "type");
    if (!type)
        type = "normal";
    if (to->resource) {
        session *s = find_full_jid(srv, to);
        if (s) {
            stream_send(s, stanza);
            return;
        }
        if (strcmp(type, "groupchat") == 0) {
            router_reply_error(srv, stanza, "cancel", "service-unavailable", NULL);
            return;
        }
        if (strcmp(type, "headline") == 0 || strcmp(type, "error") == 0)
            return;
    }
    if (strcmp(type, "groupchat") == 0) {
        router_reply_error(srv, stanza, "cancel", "service-unavailable", NULL);
        return;
    }
    user_sessions *u = session_find_user(srv, bare);
    int top = top_priority(u);
    if (top >= 0 && send_to_priority(srv, u, top, stanza) > 0)
        return;
    if (strcmp(type, "headline") == 0)
        return;
    if (strcmp(type, "error") == 0)
        return;
    if (!account_is_known(srv, to)) {
        router_reply_error(srv, stanza, "cancel", "service-unavailable", NULL);
        return;
    }
    /* Only messages with something to read are worth storing (XEP-0160). */
    if (!xml_node_child(stanza, "body", NULL) && !xml_node_child(stanza, "subject", NULL))
        return;
    store_offline(srv, stanza, to);
}

void session_route_to_user(server *srv, xml_node *stanza, const jid *from, const jid *to)
{
    char *bare = jid_bare(to);
    const char *type = xml_node_attr(stanza, "type");
    if (strcmp(stanza->name, "message") == 0) {
        route_message(srv, stanza, to, bare);
    } else if (strcmp(stanza->name, "presence") == 0) {
        if (is_subscription_type(type)) {
            handle_inbound_subscription(srv, stanza, type, from, to);
        } else if (type && strcmp(type, "probe") == 0) {
            /* Answer for a local contact that the prober is subscribed to. */
            roster_item it = {0};
            char *prober = jid_bare(from);
            bool allowed = strcmp(prober, bare) == 0 ||
                           (!is_guest_jid(srv, to) && roster_get(srv->store, to->node, prober, &it) == STORE_OK &&
                            sub_has_from(it.sub));
            roster_item_clear(&it);
            if (allowed) {
                user_sessions *u = session_find_user(srv, bare);
                for (session *o = u ? u->head : NULL; o; o = o->next_resource)
                    if (o->is_available && o->presence)
                        route_copy(srv, o->presence, o->full, xml_node_attr(stanza, "from"));
            }
            free(prober);
        } else if (to->resource) {
            session *s = find_full_jid(srv, to);
            if (s)
                stream_send(s, stanza);
        } else if (!type || strcmp(type, "unavailable") == 0 || strcmp(type, "error") == 0) {
            deliver_to_available(srv, bare, stanza);
        }
    } else { /* iq to a full JID */
        session *s = find_full_jid(srv, to);
        if (s)
            stream_send(s, stanza);
        else if (type && (strcmp(type, "get") == 0 || strcmp(type, "set") == 0))
            router_reply_error(srv, stanza, "cancel", "service-unavailable", NULL);
    }
    free(bare);
}

/* ---- roster IQ (RFC 6121 section 2) ---- */

typedef struct roster_get_ctx {
    xml_node *query;
} roster_get_ctx;

static int roster_get_cb(void *ud, const roster_item *it)
{
    roster_get_ctx *c = ud;
    if (!item_is_hidden(it))
        xml_node_append(c->query, item_node(it, false));
    return 0;
}

static router_result roster_iq(void *ud, server *srv, session *s, xml_node *iq, const jid *from)
{
    const char *to = xml_node_attr(iq, "to");
    if (!s || (to && strcmp(to, s->bare) != 0)) {
        router_reply_error(srv, iq, "auth", "forbidden", NULL);
        return ROUTER_HANDLED;
    }
    const char *type = xml_node_attr(iq, "type");
    xml_node *query = xml_node_child(iq, "query", NS_ROSTER);
    if (strcmp(type, "get") == 0) {
        s->is_interested = true;
        xml_node *res = router_iq_result(iq);
        xml_node_set_attr(res, "to", s->full);
        xml_node *q = xml_node_add_child(res, "query", NS_ROSTER);
        if (!s->is_guest) {
            roster_get_ctx c = {q};
            roster_list(srv->store, s->auth_user, roster_get_cb, &c);
        }
        stream_send(s, res);
        xml_node_free(res);
        return ROUTER_HANDLED;
    }
    if (s->is_guest) {
        router_reply_error(srv, iq, "cancel", "not-allowed", "guests have no roster");
        return ROUTER_HANDLED;
    }
    xml_node *item = xml_node_child(query, "item", NS_ROSTER);
    if (!item || xml_node_next(item, "item", NS_ROSTER)) {
        router_reply_error(srv, iq, "modify", "bad-request", "exactly one item per roster set");
        return ROUTER_HANDLED;
    }
    const char *jid_s = xml_node_attr(item, "jid");
    jid contact = {0};
    if (!jid_s || jid_parse(jid_s, &contact) != 0 || contact.resource) {
        jid_clear(&contact);
        router_reply_error(srv, iq, "modify", "bad-request", "the item needs a valid bare jid");
        return ROUTER_HANDLED;
    }
    char *cbare = jid_bare(&contact);
    roster_item it = {0};
    bool found = roster_get(srv->store, s->auth_user, cbare, &it) == STORE_OK;
    const char *sub = xml_node_attr(item, "subscription");
    if (sub && strcmp(sub, "remove") == 0) {
        if (!found) {
            router_reply_error(srv, iq, "modify", "item-not-found", NULL);
        } else {
            /* Cancel both directions first (RFC 6121 2.5.2). */
            if (sub_has_to(it.sub) || it.ask_out) {
                xml_node *p = xml_node_new("presence", XML_NS_CLIENT);
                xml_node_set_attr(p, "type", "unsubscribe");
                xml_node_set_attr(p, "from", s->bare);
                xml_node_set_attr(p, "to", cbare);
                router_route(srv, s, p);
            }
            if (sub_has_from(it.sub) || it.pending_in) {
                xml_node *p = xml_node_new("presence", XML_NS_CLIENT);
                xml_node_set_attr(p, "type", "unsubscribed");
                xml_node_set_attr(p, "from", s->bare);
                xml_node_set_attr(p, "to", cbare);
                router_route(srv, s, p);
                send_unavailable_from_all(srv, s->bare, cbare);
            }
            roster_remove(srv->store, s->auth_user, cbare);
            roster_push(srv, s->bare, &it, true);
            xml_node *res = router_iq_result(iq);
            xml_node_set_attr(res, "to", s->full);
            stream_send(s, res);
            xml_node_free(res);
        }
    } else {
        if (!found) {
            it.jid = strdup(cbare);
            it.sub = ROSTER_SUB_NONE;
        }
        free(it.name);
        const char *name = xml_node_attr(item, "name");
        it.name = name && name[0] ? strdup(name) : NULL;
        for (size_t i = 0; i < it.ngroups; i++)
            free(it.groups[i]);
        free(it.groups);
        it.groups = NULL;
        it.ngroups = 0;
        size_t ng = 0;
        for (xml_node *g = xml_node_child(item, "group", NS_ROSTER); g; g = xml_node_next(g, "group", NS_ROSTER))
            ng++;
        bool bad = ng > MAX_GROUPS;
        if (!bad && ng) {
            it.groups = calloc(ng, sizeof *it.groups);
            for (xml_node *g = xml_node_child(item, "group", NS_ROSTER); g; g = xml_node_next(g, "group", NS_ROSTER)) {
                char *t = xml_node_text(g);
                if (!t || !t[0]) {
                    free(t);
                    bad = true;
                    break;
                }
                it.groups[it.ngroups++] = t;
            }
        }
        if (bad) {
            router_reply_error(srv, iq, "modify", "bad-request", "invalid group");
        } else {
            int rc = roster_put(srv->store, s->auth_user, &it, srv->cfg.max_roster_items);
            if (rc == STORE_OK) {
                /* push first, then the result (as in RFC 6121 2.3.2) */
                roster_push(srv, s->bare, &it, false);
                xml_node *res = router_iq_result(iq);
                xml_node_set_attr(res, "to", s->full);
                stream_send(s, res);
                xml_node_free(res);
            } else if (rc == STORE_FULL) {
                router_reply_error(srv, iq, "modify", "not-allowed", "the roster is full");
            } else {
                router_reply_error(srv, iq, "wait", "internal-server-error", NULL);
            }
        }
    }
    roster_item_clear(&it);
    free(cbare);
    jid_clear(&contact);
    return ROUTER_HANDLED;
}

void session_register(server *srv)
{
    router_register_iq(&srv->router, NS_ROSTER, roster_iq, NULL);
}
