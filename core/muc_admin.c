/* muc_admin.c - the IQs of the chat service (muc_room.h): XEP-0030
 * discovery of the service and of rooms (muc#roominfo, the participant
 * list as disco#items with XEP-0059 paging), XEP-0199/XEP-0410 pings,
 * moderation through muc#admin (kick, voice, ban, and the lists) and the
 * room configuration through muc#owner (slow mode; the rest is set by the
 * reservation).  Only the room's owner (the broadcaster's account)
 * moderates.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataform.h"
#include "datetime.h"
#include "media.h"
#include "muc_room.h"
#include "server.h"

#define NS_RSM "http://jabber.org/protocol/rsm"
#define FORM_ROOMINFO "http://jabber.org/protocol/muc#roominfo"
#define FORM_ROOMCONFIG "http://jabber.org/protocol/muc#roomconfig"
#define FIELD_SLOW "muc#roomconfig_slow_mode_duration"
#define MAX_ADMIN_ITEMS 50
#define SLOW_MODE_MAX 86400

static void send_result(muc_service *m, xml_node *res)
{
    router_route(m->srv, NULL, res);
}

static bool is_type(const xml_node *iq, const char *type)
{
    const char *t = xml_node_attr(iq, "type");
    return t && strcmp(t, type) == 0;
}

static xml_node *payload_of(const xml_node *iq)
{
    for (xml_node *c = iq->children; c; c = c->next)
        if (c->type == XML_ELEMENT)
            return c;
    return NULL;
}

static void add_feature(xml_node *q, const char *var)
{
    xml_node *f = xml_node_add_child(q, "feature", NS_DISCO_INFO);
    xml_node_set_attr(f, "var", var);
}

/* ---- the service host ---- */

void muc_service_iq(muc_service *m, xml_node *iq, const jid *from)
{
    if (!is_type(iq, "get") && !is_type(iq, "set"))
        return;
    xml_node *q = payload_of(iq);
    bool get = is_type(iq, "get");
    if (get && q && strcmp(q->ns, NS_DISCO_INFO) == 0 && strcmp(q->name, "query") == 0) {
        if (xml_node_attr(q, "node")) {
            router_reply_error(m->srv, iq, "cancel", "item-not-found", NULL);
            return;
        }
        xml_node *res = router_iq_result(iq);
        xml_node *rq = xml_node_add_child(res, "query", NS_DISCO_INFO);
        xml_node *id = xml_node_add_child(rq, "identity", NS_DISCO_INFO);
        xml_node_set_attr(id, "category", "conference");
        xml_node_set_attr(id, "type", "text");
        xml_node_set_attr(id, "name", "Live chat rooms");
        add_feature(rq, NS_DISCO_INFO);
        add_feature(rq, NS_DISCO_ITEMS);
        add_feature(rq, NS_MUC);
        add_feature(rq, "http://jabber.org/protocol/muc#stable_id");
        add_feature(rq, NS_PING);
        send_result(m, res);
        return;
    }
    if (get && q && strcmp(q->ns, NS_DISCO_ITEMS) == 0 && strcmp(q->name, "query") == 0) {
        if (xml_node_attr(q, "node")) {
            router_reply_error(m->srv, iq, "cancel", "item-not-found", NULL);
            return;
        }
        xml_node *res = router_iq_result(iq);
        xml_node *rq = xml_node_add_child(res, "query", NS_DISCO_ITEMS);
        /* Open rooms of public and password lives; secret ones never. */
        for (muc_room *r = m->rooms; r; r = r->hh.next) {
            if (r->level == RES_SECRET)
                continue;
            xml_node *item = xml_node_add_child(rq, "item", NS_DISCO_ITEMS);
            xml_node_set_attr(item, "jid", r->jid);
            xml_node_set_attr(item, "name", r->title);
        }
        send_result(m, res);
        return;
    }
    if (get && q && strcmp(q->ns, NS_PING) == 0) {
        send_result(m, router_iq_result(iq));
        return;
    }
    router_reply_error(m->srv, iq, "cancel", "service-unavailable", NULL);
}

/* ---- room discovery ---- */

static void form_text(dataform *f, const char *var, const char *label, const char *value)
{
    dataform_add_text(f, var, label, value);
}

static void form_time(dataform *f, const char *var, const char *label, int64_t t)
{
    char a[DATETIME_MAX];
    dataform_add_text(f, var, label, datetime_format(t, a));
}

static void add_presencebroadcast(dataform *f, dataform_type type, const muc_room *r)
{
    dataform_field *fl = dataform_add_field(f, DATAFORM_LIST_MULTI, "muc#roomconfig_presencebroadcast",
                                            "Roles for which presence is broadcast");
    if (!fl)
        return;
    if (type == DATAFORM_FORM) {
        dataform_field_add_option(fl, "Moderator", "moderator");
        dataform_field_add_option(fl, "Participant", "participant");
        dataform_field_add_option(fl, "Visitor", "visitor");
    }
    dataform_field_add_value(fl, "moderator");
    if (!r->restricted) {
        dataform_field_add_value(fl, "participant");
        dataform_field_add_value(fl, "visitor");
    }
}

static void room_features(xml_node *q, const muc_room *r)
{
    add_feature(q, NS_MUC);
    add_feature(q, "http://jabber.org/protocol/muc#stable_id");
    add_feature(q, "http://jabber.org/protocol/muc#self-ping-optimization");
    add_feature(q, NS_DISCO_INFO);
    add_feature(q, NS_DISCO_ITEMS);
    add_feature(q, r->level == RES_SECRET ? "muc_hidden" : "muc_public");
    add_feature(q, r->password ? "muc_passwordprotected" : "muc_unsecured");
    add_feature(q, "muc_temporary");
    add_feature(q, "muc_open");
    add_feature(q, "muc_unmoderated");
    add_feature(q, "muc_semianonymous");
}

static void room_info(muc_service *m, muc_room *r, xml_node *iq)
{
    xml_node *res = router_iq_result(iq);
    xml_node *q = xml_node_add_child(res, "query", NS_DISCO_INFO);
    xml_node *id = xml_node_add_child(q, "identity", NS_DISCO_INFO);
    xml_node_set_attr(id, "category", "conference");
    xml_node_set_attr(id, "type", "text");
    xml_node_set_attr(id, "name", r->title);
    room_features(q, r);
    dataform *f = dataform_new(DATAFORM_RESULT, NULL, NULL);
    if (f) {
        char n[32];
        dataform_add_form_type(f, FORM_ROOMINFO);
        form_text(f, "muc#roomconfig_roomname", "Title", r->title);
        form_text(f, "muc#roominfo_description", "Description", r->description);
        form_text(f, "muc#roominfo_subject", "Subject", r->rec.subject);
        snprintf(n, sizeof n, "%zu", r->nocc);
        form_text(f, "muc#roominfo_occupants", "Number of occupants", n);
        snprintf(n, sizeof n, "%u", m->srv->cfg.muc_history_max);
        form_text(f, "muc#maxhistoryfetch", "Messages of history sent on entering", n);
        dataform_add_bool(f, "muc#roomconfig_changesubject", "Occupants may change the subject", false);
        snprintf(n, sizeof n, "%u", r->rec.slow_mode_s);
        form_text(f, "muc#roominfo_slow_mode_duration", "Slow mode (seconds between messages)", n);
        add_presencebroadcast(f, DATAFORM_RESULT, r);
        form_time(f, "x-onair#start", "The live starts", r->start);
        form_time(f, "x-onair#end", "The live ends", r->end);
        form_time(f, "x-onair#close", "The room closes", r->rec.close_at);
        dataform_add_bool(f, "x-onair#on_air", "The live is on air", media_is_on_air(m->srv, r->id));
        snprintf(n, sizeof n, "%zu", media_viewer_count(m->srv, r->id));
        form_text(f, "x-onair#viewers", "Viewers of the stream now", n);
        xml_node_append(q, dataform_to_xml(f));
        dataform_free(f);
    }
    send_result(m, res);
}

static int by_serial(const void *a, const void *b)
{
    const muc_occupant *x = *(muc_occupant *const *)a, *y = *(muc_occupant *const *)b;
    return x->serial < y->serial ? -1 : x->serial > y->serial;
}

/* The participant list: one item per occupant, jid = room/nick, name = the
 * self-introduction (or the nick).  XEP-0059 paging by join order. */
static void room_items(muc_service *m, muc_room *r, xml_node *iq, const char *from)
{
    xml_node *q = xml_node_child(iq, "query", NS_DISCO_ITEMS);
    xml_node *res = router_iq_result(iq);
    xml_node *rq = xml_node_add_child(res, "query", NS_DISCO_ITEMS);
    bool may_see = r->level == RES_PUBLIC || muc_occupant_by_jid(r, from) || muc_is_owner_jid(r, from);
    if (!may_see) {
        send_result(m, res);
        return;
    }
    xml_node *set = xml_node_child(q, "set", NS_RSM);
    long long max = -1;
    unsigned long long after = 0;
    if (set) {
        char *mx = xml_node_child_text(set, "max", NS_RSM);
        char *af = xml_node_child_text(set, "after", NS_RSM);
        char *end = NULL;
        bool bad = false;
        if (mx) {
            max = strtoll(mx, &end, 10);
            bad = !*mx || *end || max < 0;
        }
        if (af && !bad) {
            after = strtoull(af, &end, 10);
            bad = !*af || *end;
        }
        free(mx);
        free(af);
        if (bad) {
            xml_node_free(res);
            router_reply_error(m->srv, iq, "modify", "bad-request", "set: max and after are numbers");
            return;
        }
    }
    muc_occupant **list = malloc((r->nocc ? r->nocc : 1) * sizeof *list);
    if (!list) {
        xml_node_free(res);
        router_reply_error(m->srv, iq, "wait", "resource-constraint", NULL);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < r->nocc; i++)
        if (r->occ[i]->serial > after)
            list[n++] = r->occ[i];
    if (set)
        qsort(list, n, sizeof *list, by_serial);
    size_t shown = max >= 0 && (size_t)max < n ? (size_t)max : n;
    char occ_jid[2048];
    for (size_t i = 0; i < shown; i++) {
        xml_node *item = xml_node_add_child(rq, "item", NS_DISCO_ITEMS);
        snprintf(occ_jid, sizeof occ_jid, "%s/%s", r->jid, list[i]->nick);
        xml_node_set_attr(item, "jid", occ_jid);
        xml_node_set_attr(item, "name", list[i]->intro ? list[i]->intro : list[i]->nick);
    }
    if (set) {
        xml_node *rs = xml_node_add_child(rq, "set", NS_RSM);
        char v[32];
        if (shown > 0) {
            xml_node *first = xml_node_add_child(rs, "first", NS_RSM);
            snprintf(v, sizeof v, "%llu", (unsigned long long)list[0]->serial);
            xml_node_add_text(first, v, strlen(v));
            xml_node *last = xml_node_add_child(rs, "last", NS_RSM);
            snprintf(v, sizeof v, "%llu", (unsigned long long)list[shown - 1]->serial);
            xml_node_add_text(last, v, strlen(v));
        }
        xml_node *count = xml_node_add_child(rs, "count", NS_RSM);
        snprintf(v, sizeof v, "%zu", r->nocc);
        xml_node_add_text(count, v, strlen(v));
    }
    free(list);
    send_result(m, res);
}

/* ---- muc#admin ---- */

static char *bare_of(const char *jid_s)
{
    jid j = {0};
    if (jid_parse(jid_s, &j) != 0)
        return NULL;
    char *b = jid_bare(&j);
    jid_clear(&j);
    return b;
}

static void admin_get(muc_service *m, muc_room *r, xml_node *iq, xml_node *q)
{
    xml_node *want = xml_node_child(q, "item", NS_MUC_ADMIN);
    const char *affil = want ? xml_node_attr(want, "affiliation") : NULL;
    const char *role = want ? xml_node_attr(want, "role") : NULL;
    if (!want || (!affil == !role)) {
        router_reply_error(m->srv, iq, "modify", "bad-request", "ask for one affiliation or one role");
        return;
    }
    xml_node *res = router_iq_result(iq);
    xml_node *rq = xml_node_add_child(res, "query", NS_MUC_ADMIN);
    if (affil) {
        if (strcmp(affil, "outcast") == 0) {
            const char *p = r->rec.bans;
            while (p && *p) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);
                char one[1100];
                snprintf(one, sizeof one, "%.*s", (int)len, p);
                xml_node *item = xml_node_add_child(rq, "item", NS_MUC_ADMIN);
                xml_node_set_attr(item, "affiliation", "outcast");
                xml_node_set_attr(item, "jid", one);
                p = nl ? nl + 1 : p + len;
            }
        } else if (strcmp(affil, "owner") == 0) {
            xml_node *item = xml_node_add_child(rq, "item", NS_MUC_ADMIN);
            xml_node_set_attr(item, "affiliation", "owner");
            xml_node_set_attr(item, "jid", r->owner_bare);
        } else if (strcmp(affil, "admin") != 0 && strcmp(affil, "member") != 0) {
            xml_node_free(res);
            router_reply_error(m->srv, iq, "modify", "bad-request", "no such affiliation");
            return;
        }
    } else {
        muc_role want_role = strcmp(role, "moderator") == 0     ? MUC_ROLE_MODERATOR
                             : strcmp(role, "participant") == 0 ? MUC_ROLE_PARTICIPANT
                             : strcmp(role, "visitor") == 0     ? MUC_ROLE_VISITOR
                                                                : MUC_ROLE_NONE;
        if (want_role == MUC_ROLE_NONE) {
            xml_node_free(res);
            router_reply_error(m->srv, iq, "modify", "bad-request", "no such role");
            return;
        }
        for (size_t i = 0; i < r->nocc; i++) {
            muc_occupant *o = r->occ[i];
            if (o->role != want_role)
                continue;
            xml_node *item = xml_node_add_child(rq, "item", NS_MUC_ADMIN);
            xml_node_set_attr(item, "nick", o->nick);
            xml_node_set_attr(item, "role", muc_role_name((muc_role)o->role));
            xml_node_set_attr(item, "affiliation", muc_affil_name((muc_affil)o->affil));
            xml_node_set_attr(item, "jid", o->jid);
        }
    }
    send_result(m, res);
}

typedef enum admin_op { OP_KICK, OP_VOICE, OP_DEVOICE, OP_BAN, OP_UNBAN } admin_op;

typedef struct admin_change {
    admin_op op;
    char *target; /* nick (role changes) or bare JID (affiliation changes); owned */
    char *reason; /* owned or NULL */
} admin_change;

/* Checks one item; fills c.  Returns NULL or the error (type, condition, text). */
static const char *check_item(muc_room *r, const xml_node *item, const char *from_bare, admin_change *c,
                              const char **etype, const char **text)
{
    const char *role = xml_node_attr(item, "role");
    const char *affil = xml_node_attr(item, "affiliation");
    const char *nick = xml_node_attr(item, "nick");
    const char *jid_s = xml_node_attr(item, "jid");
    *etype = "modify";
    if (!role == !affil) {
        *text = "an item changes either a role or an affiliation";
        return "bad-request";
    }
    c->reason = xml_node_child_text(item, "reason", NS_MUC_ADMIN);
    if (role) {
        if (!nick) {
            *text = "a role change names the occupant by nick";
            return "bad-request";
        }
        muc_occupant *o = muc_occupant_by_nick(r, nick);
        *etype = "cancel";
        if (!o) {
            *text = "nobody has that nickname in this room";
            return "item-not-found";
        }
        if (strcmp(role, "none") == 0)
            c->op = OP_KICK;
        else if (strcmp(role, "participant") == 0)
            c->op = OP_VOICE;
        else if (strcmp(role, "visitor") == 0)
            c->op = OP_DEVOICE;
        else if (strcmp(role, "moderator") == 0) {
            *text = "only the broadcaster moderates this room";
            return "not-allowed";
        } else {
            *etype = "modify";
            *text = "no such role";
            return "bad-request";
        }
        if (o->affil == MUC_AFFIL_OWNER) {
            *text = "the broadcaster's role cannot change";
            return "not-allowed";
        }
        c->target = strdup(nick);
        return c->target ? NULL : "resource-constraint";
    }
    char *bare = NULL;
    if (jid_s) {
        bare = bare_of(jid_s);
        if (!bare) {
            *text = "not a valid JID";
            return "jid-malformed";
        }
    } else if (nick) {
        muc_occupant *o = muc_occupant_by_nick(r, nick);
        if (!o) {
            *etype = "cancel";
            *text = "nobody has that nickname in this room";
            return "item-not-found";
        }
        bare = bare_of(o->jid);
    }
    if (!bare) {
        *text = "an affiliation change names a bare JID";
        return "bad-request";
    }
    *etype = "cancel";
    if (strcmp(affil, "outcast") == 0) {
        c->op = OP_BAN;
    } else if (strcmp(affil, "none") == 0) {
        c->op = OP_UNBAN;
    } else {
        free(bare);
        *text = "affiliations other than outcast are set by the reservation";
        return "not-allowed";
    }
    if (strcmp(bare, r->owner_bare) == 0) {
        bool self = strcmp(from_bare, r->owner_bare) == 0;
        free(bare);
        *text = self ? "you cannot ban yourself" : "the broadcaster cannot be banned";
        return self ? "conflict" : "not-allowed";
    }
    c->target = bare;
    return NULL;
}

static void admin_set(muc_service *m, muc_room *r, xml_node *iq, xml_node *q, const char *from)
{
    admin_change changes[MAX_ADMIN_ITEMS];
    size_t n = 0;
    char *from_bare = bare_of(from);
    const char *err = NULL, *etype = "modify", *text = NULL;
    for (xml_node *item = xml_node_child(q, "item", NS_MUC_ADMIN); item && !err;
         item = xml_node_next(item, "item", NS_MUC_ADMIN)) {
        if (n == MAX_ADMIN_ITEMS) {
            err = "policy-violation";
            text = "at most 50 items at once";
            break;
        }
        admin_change c = {0};
        err = check_item(r, item, from_bare ? from_bare : "", &c, &etype, &text);
        if (err) {
            free(c.reason);
            free(c.target);
        } else {
            changes[n++] = c;
        }
    }
    if (!err && n == 0) {
        err = "bad-request";
        text = "no item";
    }
    /* Persistent changes (bans, voice) first, in one record. */
    char *bans = NULL, *devoiced = NULL;
    if (!err) {
        bans = strdup(r->rec.bans);
        devoiced = strdup(r->rec.devoiced);
        for (size_t i = 0; i < n && bans && devoiced; i++) {
            char *next = NULL;
            if (changes[i].op == OP_BAN || changes[i].op == OP_UNBAN) {
                next = muc_list_with(bans, changes[i].target, changes[i].op == OP_BAN);
                free(bans);
                bans = next;
            } else if (changes[i].op == OP_VOICE || changes[i].op == OP_DEVOICE) {
                muc_occupant *o = muc_occupant_by_nick(r, changes[i].target);
                char *b = o ? bare_of(o->jid) : NULL;
                if (b) {
                    next = muc_list_with(devoiced, b, changes[i].op == OP_DEVOICE);
                    free(devoiced);
                    devoiced = next;
                }
                free(b);
            }
        }
        if (!bans || !devoiced) {
            err = "resource-constraint";
            etype = "wait";
        } else if (strcmp(bans, r->rec.bans) != 0 || strcmp(devoiced, r->rec.devoiced) != 0) {
            char *old_bans = r->rec.bans, *old_dev = r->rec.devoiced;
            r->rec.bans = bans;
            r->rec.devoiced = devoiced;
            if (muc_room_save(m, r) != STORE_OK) {
                r->rec.bans = old_bans;
                r->rec.devoiced = old_dev;
                err = "internal-server-error";
                etype = "wait";
                text = NULL;
            } else {
                free(old_bans);
                free(old_dev);
                bans = devoiced = NULL; /* now the record's */
            }
        }
    }
    free(bans);
    free(devoiced);
    if (err) {
        router_reply_error(m->srv, iq, etype, err, text);
    } else {
        send_result(m, router_iq_result(iq));
        muc_occupant *actor_occ = muc_occupant_by_jid(r, from);
        char *actor = actor_occ ? strdup(actor_occ->nick) : NULL;
        for (size_t i = 0; i < n; i++) {
            admin_change *c = &changes[i];
            muc_pres_extra x = {.actor = actor, .reason = c->reason};
            if (c->op == OP_KICK) {
                muc_occupant *o = muc_occupant_by_nick(r, c->target);
                static const int kicked[] = {307};
                if (o)
                    muc_occupant_leave(m, r, o, kicked, 1, &x);
            } else if (c->op == OP_VOICE || c->op == OP_DEVOICE) {
                muc_occupant *o = muc_occupant_by_nick(r, c->target);
                muc_role role = c->op == OP_VOICE ? MUC_ROLE_PARTICIPANT : MUC_ROLE_VISITOR;
                if (o && o->role != role && muc_occupant_set_role(r, o, role) == 0) {
                    muc_broadcast_presence(m, r, o, NULL, NULL, 0, NULL, 0, &x, true);
                }
            } else if (c->op == OP_BAN) {
                static const int banned[] = {301};
                for (size_t k = 0; k < r->nocc;) {
                    muc_occupant *o = r->occ[k];
                    char *b = bare_of(o->jid);
                    bool hit = b && strcmp(b, c->target) == 0;
                    free(b);
                    if (hit) {
                        o->affil = MUC_AFFIL_OUTCAST;
                        muc_occupant_leave(m, r, o, banned, 1, &x);
                        k = 0; /* the table changed */
                    } else {
                        k++;
                    }
                }
            }
        }
        free(actor);
    }
    for (size_t i = 0; i < n; i++) {
        free(changes[i].target);
        free(changes[i].reason);
    }
    free(from_bare);
}

/* ---- muc#owner ---- */

static dataform *config_form(muc_service *m, muc_room *r)
{
    dataform *f = dataform_new(DATAFORM_FORM, "Room configuration",
                               "Slow mode can change; the rest is set by the reservation.");
    if (!f)
        return NULL;
    char n[32];
    dataform_add_form_type(f, FORM_ROOMCONFIG);
    dataform_add_text(f, "muc#roomconfig_roomname", "Title", r->title);
    dataform_add_text(f, "muc#roomconfig_roomdesc", "Description", r->description);
    dataform_add_bool(f, "muc#roomconfig_persistentroom", "Persistent", false);
    dataform_add_bool(f, "muc#roomconfig_publicroom", "Listed", r->level != RES_SECRET);
    dataform_add_bool(f, "muc#roomconfig_passwordprotectedroom", "Password required", r->password != NULL);
    dataform_add_bool(f, "muc#roomconfig_moderatedroom", "Moderated", false);
    dataform_add_bool(f, "muc#roomconfig_membersonly", "Members only", false);
    dataform_add_bool(f, "muc#roomconfig_changesubject", "Occupants may change the subject", false);
    dataform_add_bool(f, "muc#roomconfig_enablelogging", "Logged", true);
    dataform_field *who = dataform_add_field(f, DATAFORM_LIST_SINGLE, "muc#roomconfig_whois", "Real JIDs are seen by");
    if (who) {
        dataform_field_add_option(who, "Moderators", "moderators");
        dataform_field_add_value(who, "moderators");
    }
    snprintf(n, sizeof n, "%u", r->capacity + 1);
    dataform_add_text(f, "muc#roomconfig_maxusers", "Occupants at most (with the broadcaster)", n);
    add_presencebroadcast(f, DATAFORM_FORM, r);
    snprintf(n, sizeof n, "%u", m->srv->cfg.muc_history_max);
    dataform_add_text(f, "muc#maxhistoryfetch", "Messages of history sent on entering", n);
    snprintf(n, sizeof n, "%u", r->rec.slow_mode_s);
    dataform_field *slow = dataform_add_text(f, FIELD_SLOW, "Slow mode (seconds between messages; 0 = off)", n);
    (void)slow;
    return f;
}

static bool same_bool(const char *a, const char *b)
{
    bool x = false, y = false;
    if (dataform_parse_bool(a ? a : "false", &x) != DATAFORM_OK || dataform_parse_bool(b ? b : "false", &y) != DATAFORM_OK)
        return false;
    return x == y;
}

/* Whether two value lists hold the same set of values. */
static bool same_set(const dataform_field *a, const dataform_field *b)
{
    for (size_t i = 0; i < a->nvalues; i++) {
        bool found = false;
        for (size_t j = 0; j < b->nvalues && !found; j++)
            found = strcmp(a->values[i], b->values[j]) == 0;
        if (!found)
            return false;
    }
    for (size_t j = 0; j < b->nvalues; j++) {
        bool found = false;
        for (size_t i = 0; i < a->nvalues && !found; i++)
            found = strcmp(a->values[i], b->values[j]) == 0;
        if (!found)
            return false;
    }
    return true;
}

static void owner_set(muc_service *m, muc_room *r, xml_node *iq, xml_node *q)
{
    if (xml_node_child(q, "destroy", NS_MUC_OWNER)) {
        char a[DATETIME_MAX], text[128];
        snprintf(text, sizeof text, "this room closes with its live, at %s", datetime_format(r->rec.close_at, a));
        router_reply_error(m->srv, iq, "cancel", "not-allowed", text);
        return;
    }
    xml_node *x = xml_node_child(q, "x", DATAFORM_NS);
    if (!x) {
        router_reply_error(m->srv, iq, "modify", "bad-request", "submit the configuration form");
        return;
    }
    dataform *sub = NULL;
    char perr[256];
    if (dataform_parse(x, &sub, perr, sizeof perr) != DATAFORM_OK) {
        router_reply_error(m->srv, iq, "modify", "bad-request", perr);
        return;
    }
    if (sub->type == DATAFORM_CANCEL) {
        dataform_free(sub);
        send_result(m, router_iq_result(iq));
        return;
    }
    const char *ft = dataform_value(sub, "FORM_TYPE"); /* clients may omit its type when submitting */
    if (sub->type != DATAFORM_SUBMIT || (ft && strcmp(ft, FORM_ROOMCONFIG) != 0)) {
        dataform_free(sub);
        router_reply_error(m->srv, iq, "modify", "bad-request", "not a muc#roomconfig submission");
        return;
    }
    dataform *cur = config_form(m, r);
    char text[256] = "";
    long slow = r->rec.slow_mode_s;
    for (size_t i = 0; cur && i < sub->nfields && !text[0]; i++) {
        const dataform_field *fs = &sub->fields[i];
        if (!fs->var || strcmp(fs->var, "FORM_TYPE") == 0)
            continue;
        const char *v = fs->nvalues ? fs->values[0] : "";
        if (strcmp(fs->var, FIELD_SLOW) == 0) {
            char *end = NULL;
            long s = strtol(v, &end, 10);
            if (!*v || *end || s < 0 || s > SLOW_MODE_MAX)
                snprintf(text, sizeof text, "%s: a number of seconds from 0 to %d", FIELD_SLOW, SLOW_MODE_MAX);
            else
                slow = s;
            continue;
        }
        const dataform_field *fc = dataform_field_get(cur, fs->var);
        if (!fc)
            continue; /* not ours: ignored */
        const char *cv = fc->nvalues ? fc->values[0] : "";
        bool same = fc->type == DATAFORM_BOOLEAN     ? same_bool(v, cv)
                    : fc->type == DATAFORM_LIST_MULTI ? same_set(fs, fc)
                                                      : strcmp(v, cv) == 0;
        if (!same)
            snprintf(text, sizeof text, "%s is set by the reservation and cannot change", fs->var);
    }
    dataform_free(cur);
    dataform_free(sub);
    if (text[0]) {
        router_reply_error(m->srv, iq, "modify", "not-acceptable", text);
        return;
    }
    if ((uint32_t)slow != r->rec.slow_mode_s) {
        uint32_t old = r->rec.slow_mode_s;
        r->rec.slow_mode_s = (uint32_t)slow;
        if (muc_room_save(m, r) != STORE_OK) {
            r->rec.slow_mode_s = old;
            router_reply_error(m->srv, iq, "wait", "internal-server-error", NULL);
            return;
        }
        send_result(m, router_iq_result(iq));
        log_write(&m->srv->log, LOG_INFO, "muc", "%s: slow mode %u s", r->id, r->rec.slow_mode_s);
        muc_config_changed(m, r);
        return;
    }
    send_result(m, router_iq_result(iq));
}

/* ---- dispatch ---- */

void muc_room_iq(muc_service *m, muc_room *r, xml_node *iq, const jid *from, const char *nick)
{
    if (!is_type(iq, "get") && !is_type(iq, "set"))
        return; /* results and errors: the room asks nothing */
    const char *from_s = xml_node_attr(iq, "from");
    xml_node *q = payload_of(iq);
    bool get = is_type(iq, "get");
    if (nick) {
        muc_occupant *o = muc_occupant_by_jid(r, from_s);
        if (!o) {
            router_reply_error(m->srv, iq, "modify", "bad-request", "you are not in this room");
            return;
        }
        if (get && q && strcmp(q->ns, NS_PING) == 0 && strcmp(o->nick, nick) == 0) {
            send_result(m, router_iq_result(iq)); /* XEP-0410 self-ping */
            return;
        }
        router_reply_error(m->srv, iq, "cancel", "service-unavailable", NULL);
        return;
    }
    if (!q) {
        router_reply_error(m->srv, iq, "modify", "bad-request", NULL);
        return;
    }
    if (get && strcmp(q->ns, NS_DISCO_INFO) == 0) {
        if (xml_node_attr(q, "node"))
            router_reply_error(m->srv, iq, "cancel", "item-not-found", NULL);
        else
            room_info(m, r, iq);
        return;
    }
    if (get && strcmp(q->ns, NS_DISCO_ITEMS) == 0) {
        if (xml_node_attr(q, "node"))
            router_reply_error(m->srv, iq, "cancel", "item-not-found", NULL);
        else
            room_items(m, r, iq, from_s);
        return;
    }
    if (get && strcmp(q->ns, NS_PING) == 0) {
        send_result(m, router_iq_result(iq));
        return;
    }
    bool admin = strcmp(q->ns, NS_MUC_ADMIN) == 0, owner = strcmp(q->ns, NS_MUC_OWNER) == 0;
    if (admin || owner) {
        if (!muc_is_owner_jid(r, from_s)) {
            router_reply_error(m->srv, iq, "auth", "forbidden", "only the broadcaster moderates this room");
            return;
        }
        if (admin && get) {
            admin_get(m, r, iq, q);
        } else if (admin) {
            admin_set(m, r, iq, q, from_s);
        } else if (get) {
            dataform *f = config_form(m, r);
            xml_node *res = router_iq_result(iq);
            xml_node *rq = xml_node_add_child(res, "query", NS_MUC_OWNER);
            if (f)
                xml_node_append(rq, dataform_to_xml(f));
            dataform_free(f);
            send_result(m, res);
        } else {
            owner_set(m, r, iq, q);
        }
        return;
    }
    router_reply_error(m->srv, iq, "cancel", "service-unavailable", NULL);
}
