/* muc_room.c - occupant tables of a room, the presence stanzas the room
 * sends, and the serialize-once fan-out (muc_room.h).
 */
#include "muc_room.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

muc_room *muc_room_find(muc_service *m, const char *id)
{
    muc_room *r = NULL;
    HASH_FIND_STR(m->rooms, id, r);
    return r;
}

static void occupant_free(muc_occupant *o)
{
    free(o->jid);
    free(o->nick);
    free(o->intro);
    free(o);
}

void muc_room_free(muc_room *r)
{
    if (!r)
        return;
    HASH_CLEAR(hh_jid, r->by_jid);
    HASH_CLEAR(hh_nick, r->by_nick);
    for (size_t i = 0; i < r->nocc; i++)
        occupant_free(r->occ[i]);
    free(r->occ);
    free(r->mods);
    free(r->jid);
    free(r->owner_bare);
    free(r->title);
    free(r->description);
    if (r->password) {
        OPENSSL_cleanse(r->password, strlen(r->password));
        free(r->password);
    }
    muc_room_record_clear(&r->rec);
    muc_history_free(&r->history);
    free(r);
}

muc_occupant *muc_occupant_by_jid(muc_room *r, const char *full)
{
    muc_occupant *o = NULL;
    HASH_FIND(hh_jid, r->by_jid, full, strlen(full), o);
    return o;
}

muc_occupant *muc_occupant_by_nick(muc_room *r, const char *nick)
{
    muc_occupant *o = NULL;
    HASH_FIND(hh_nick, r->by_nick, nick, strlen(nick), o);
    return o;
}

bool muc_is_owner_jid(const muc_room *r, const char *addr)
{
    size_t n = strlen(r->owner_bare);
    return strncmp(addr, r->owner_bare, n) == 0 && (addr[n] == '\0' || addr[n] == '/');
}

/* Appends o to an index array; *at receives its place. */
static int index_add(muc_occupant ***arr, size_t *n, size_t *cap, muc_occupant *o, uint32_t *at)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        muc_occupant **grown = realloc(*arr, c * sizeof *grown);
        if (!grown)
            return -1;
        *arr = grown;
        *cap = c;
    }
    *at = (uint32_t)*n;
    (*arr)[(*n)++] = o;
    return 0;
}

static void mod_del(muc_room *r, muc_occupant *o)
{
    if (o->mod_index == MUC_NOWHERE)
        return;
    size_t i = o->mod_index;
    r->mods[i] = r->mods[--r->nmods];
    r->mods[i]->mod_index = (uint32_t)i;
    o->mod_index = MUC_NOWHERE;
}

muc_occupant *muc_occupant_add(muc_room *r, const char *full, const char *nick, muc_role role, muc_affil affil,
                               bool broadcast, int64_t now_ms, uint32_t burst)
{
    if (r->nocc == r->occ_cap) {
        size_t cap = r->occ_cap ? r->occ_cap * 2 : 16;
        muc_occupant **grown = realloc(r->occ, cap * sizeof *grown);
        if (!grown)
            return NULL;
        r->occ = grown;
        r->occ_cap = cap;
    }
    muc_occupant *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->jid = strdup(full);
    o->nick = strdup(nick);
    o->mod_index = MUC_NOWHERE;
    if (!o->jid || !o->nick ||
        (role == MUC_ROLE_MODERATOR && index_add(&r->mods, &r->nmods, &r->mods_cap, o, &o->mod_index) != 0)) {
        occupant_free(o);
        return NULL;
    }
    o->jid_len = (uint32_t)strlen(full);
    o->role = (uint8_t)role;
    o->affil = (uint8_t)affil;
    o->broadcast = broadcast;
    o->serial = ++r->next_serial;
    muc_rate_init(&o->rate, now_ms, burst);
    o->index = (uint32_t)r->nocc;
    r->occ[r->nocc++] = o;
    HASH_ADD_KEYPTR(hh_jid, r->by_jid, o->jid, o->jid_len, o);
    HASH_ADD_KEYPTR(hh_nick, r->by_nick, o->nick, strlen(o->nick), o);
    if (affil != MUC_AFFIL_OWNER)
        r->nviewers++;
    return o;
}

int muc_occupant_rename(muc_room *r, muc_occupant *o, const char *nick)
{
    char *copy = strdup(nick);
    if (!copy)
        return -1;
    HASH_DELETE(hh_nick, r->by_nick, o);
    free(o->nick);
    o->nick = copy;
    HASH_ADD_KEYPTR(hh_nick, r->by_nick, o->nick, strlen(o->nick), o);
    return 0;
}

void muc_occupant_remove(muc_room *r, muc_occupant *o)
{
    HASH_DELETE(hh_jid, r->by_jid, o);
    HASH_DELETE(hh_nick, r->by_nick, o);
    size_t i = o->index;
    r->occ[i] = r->occ[--r->nocc];
    r->occ[i]->index = (uint32_t)i;
    mod_del(r, o);
    if (o->affil != MUC_AFFIL_OWNER)
        r->nviewers--;
    occupant_free(o);
}

int muc_occupant_set_role(muc_room *r, muc_occupant *o, muc_role role)
{
    if (role == MUC_ROLE_MODERATOR && o->mod_index == MUC_NOWHERE &&
        index_add(&r->mods, &r->nmods, &r->mods_cap, o, &o->mod_index) != 0)
        return -1;
    if (role != MUC_ROLE_MODERATOR)
        mod_del(r, o);
    o->role = (uint8_t)role;
    return 0;
}

const char *muc_role_name(muc_role role)
{
    switch (role) {
    case MUC_ROLE_VISITOR:
        return "visitor";
    case MUC_ROLE_PARTICIPANT:
        return "participant";
    case MUC_ROLE_MODERATOR:
        return "moderator";
    case MUC_ROLE_NONE:
        break;
    }
    return "none";
}

const char *muc_affil_name(muc_affil a)
{
    switch (a) {
    case MUC_AFFIL_OWNER:
        return "owner";
    case MUC_AFFIL_OUTCAST:
        return "outcast";
    case MUC_AFFIL_NONE:
        break;
    }
    return "none";
}

/* ---- the wire ---- */

int muc_wire(muc_service *m, const xml_node *n, xml_buf *out, size_t *head_len)
{
    xml_buf *tmp = &m->tmp;
    xml_buf_reset(tmp);
    xml_serialize(n, XML_NS_CLIENT, tmp);
    size_t skip = 1 + strlen(n->name); /* "<message" */
    if (tmp->failed || tmp->len < skip)
        return -1;
    xml_buf_reset(out);
    xml_buf_append_str(out, "<");
    xml_buf_append_str(out, n->name);
    xml_buf_append_str(out, " to=\"");
    *head_len = out->len;
    xml_buf_append_str(out, "\"");
    xml_buf_append(out, tmp->data + skip, tmp->len - skip);
    return out->failed ? -1 : 0;
}

void muc_send_wire(muc_service *m, muc_room *r, const xml_buf *wire, size_t head_len, muc_occupant *o)
{
    router_splice sp = {wire->data, head_len, wire->data + head_len, wire->len - head_len};
    m->deliveries++;
    if (!router_deliver_spliced(m->srv, o->jid, o->jid_len, &sp)) {
        o->gone = true;
        r->has_ghosts = true;
    }
}

void muc_send_to(muc_service *m, const xml_node *n, const char *to)
{
    xml_node *copy = xml_node_clone(n);
    if (!copy)
        return;
    xml_node_set_attr(copy, "to", to);
    router_route(m->srv, NULL, copy);
}

void muc_fanout(muc_service *m, muc_room *r, const xml_buf *wire, size_t head_len, bool mods_only)
{
    router_splice sp = {wire->data, head_len, wire->data + head_len, wire->len - head_len};
    muc_occupant **list = mods_only ? r->mods : r->occ;
    size_t n = mods_only ? r->nmods : r->nocc;
    for (size_t i = 0; i < n; i++) {
        muc_occupant *o = list[i];
        if (o->gone)
            continue;
        m->deliveries++;
        if (!router_deliver_spliced(m->srv, o->jid, o->jid_len, &sp)) {
            o->gone = true;
            r->has_ghosts = true;
        }
    }
}

void muc_remove_ghosts(muc_service *m, muc_room *r)
{
    if (r->sweeping || !r->has_ghosts)
        return; /* the outer call goes on until none is left */
    r->sweeping = true;
    for (;;) {
        muc_occupant *ghost = NULL;
        for (size_t i = 0; i < r->nocc && !ghost; i++)
            if (r->occ[i]->gone)
                ghost = r->occ[i];
        if (!ghost)
            break;
        log_write(&m->srv->log, LOG_DEBUG, "muc", "%s: %s is gone, removed", r->id, ghost->jid);
        static const int codes[] = {333};
        muc_occupant_leave(m, r, ghost, codes, 1, NULL);
    }
    r->has_ghosts = false;
    r->sweeping = false;
}

/* ---- presence ---- */

static const char *show_name(muc_show s)
{
    switch (s) {
    case MUC_SHOW_AWAY:
        return "away";
    case MUC_SHOW_CHAT:
        return "chat";
    case MUC_SHOW_DND:
        return "dnd";
    case MUC_SHOW_XA:
        return "xa";
    case MUC_SHOW_NONE:
        break;
    }
    return NULL;
}

static void add_text_child(xml_node *parent, const char *name, const char *ns, const char *text)
{
    xml_node *c = xml_node_add_child(parent, name, ns);
    if (c && text && *text)
        xml_node_add_text(c, text, strlen(text));
}

xml_node *muc_presence_node(muc_room *r, const muc_occupant *o, const char *type, bool with_jid, const int *codes,
                            size_t ncodes, const muc_pres_extra *x)
{
    xml_node *p = xml_node_new("presence", XML_NS_CLIENT);
    if (!p)
        return NULL;
    char from[2048];
    snprintf(from, sizeof from, "%s/%s", r->jid, o->nick);
    xml_node_set_attr(p, "from", from);
    bool unavailable = type && strcmp(type, "unavailable") == 0;
    if (type)
        xml_node_set_attr(p, "type", type);
    if (!unavailable) {
        const char *show = show_name((muc_show)o->show);
        if (show)
            add_text_child(p, "show", XML_NS_CLIENT, show);
        if (o->intro)
            add_text_child(p, "status", XML_NS_CLIENT, o->intro);
    } else if (x && x->status && *x->status) {
        add_text_child(p, "status", XML_NS_CLIENT, x->status);
    }
    xml_node *ux = xml_node_add_child(p, "x", NS_MUC_USER);
    xml_node *item = xml_node_add_child(ux, "item", NS_MUC_USER);
    xml_node_set_attr(item, "affiliation", muc_affil_name((muc_affil)o->affil));
    xml_node_set_attr(item, "role", unavailable ? "none" : muc_role_name((muc_role)o->role));
    if (with_jid)
        xml_node_set_attr(item, "jid", o->jid);
    if (x && x->new_nick)
        xml_node_set_attr(item, "nick", x->new_nick);
    if (x && x->actor) {
        xml_node *a = xml_node_add_child(item, "actor", NS_MUC_USER);
        xml_node_set_attr(a, "nick", x->actor);
    }
    if (x && x->reason && *x->reason)
        add_text_child(item, "reason", NS_MUC_USER, x->reason);
    for (size_t i = 0; i < ncodes; i++) {
        xml_node *s = xml_node_add_child(ux, "status", NS_MUC_USER);
        char code[16];
        snprintf(code, sizeof code, "%d", codes[i]);
        xml_node_set_attr(s, "code", code);
    }
    if (x && x->destroy_reason) {
        xml_node *d = xml_node_add_child(ux, "destroy", NS_MUC_USER);
        add_text_child(d, "reason", NS_MUC_USER, x->destroy_reason);
    }
    return p;
}

/* Serializes the presence variant into buf (NULL on failure). */
static xml_buf *variant(muc_service *m, muc_room *r, muc_occupant *o, const char *type, bool with_jid,
                        const int *codes, size_t ncodes, const muc_pres_extra *x, xml_buf *buf, size_t *head)
{
    xml_node *p = muc_presence_node(r, o, type, with_jid, codes, ncodes, x);
    int rc = p ? muc_wire(m, p, buf, head) : -1;
    xml_node_free(p);
    return rc == 0 ? buf : NULL;
}

void muc_broadcast_presence(muc_service *m, muc_room *r, muc_occupant *o, const char *type, const int *codes,
                            size_t ncodes, const int *self_codes, size_t nself, const muc_pres_extra *x,
                            bool to_others)
{
    /* Self: 110 first, then the codes for everyone, then self-only ones. */
    int all[16];
    size_t n = 0;
    all[n++] = 110;
    for (size_t i = 0; i < ncodes && n < 16; i++)
        all[n++] = codes[i];
    for (size_t i = 0; i < nself && n < 16; i++)
        all[n++] = self_codes[i];
    xml_buf self = {0};
    size_t self_head = 0;
    if (!o->gone && variant(m, r, o, type, true, all, n, x, &self, &self_head))
        muc_send_wire(m, r, &self, self_head, o);
    xml_buf_free(&self);
    if (!to_others)
        return;
    /* Everyone, or (its presence not broadcast) the moderators only. */
    muc_occupant **list = o->broadcast ? r->occ : r->mods;
    size_t n_list = o->broadcast ? r->nocc : r->nmods;
    xml_buf plain = {0}, full = {0};
    size_t plain_head = 0, full_head = 0;
    bool have_plain = false, have_full = false, failed = false;
    for (size_t i = 0; i < n_list && !failed; i++) {
        muc_occupant *to = list[i];
        if (to == o || to->gone)
            continue;
        bool mod = to->role == MUC_ROLE_MODERATOR;
        if (mod && !have_full) {
            failed = !variant(m, r, o, type, true, codes, ncodes, x, &full, &full_head);
            have_full = true;
        } else if (!mod && !have_plain) {
            failed = !variant(m, r, o, type, false, codes, ncodes, x, &plain, &plain_head);
            have_plain = true;
        }
        if (failed)
            break;
        muc_send_wire(m, r, mod ? &full : &plain, mod ? full_head : plain_head, to);
    }
    xml_buf_free(&plain);
    xml_buf_free(&full);
}

void muc_occupant_leave(muc_service *m, muc_room *r, muc_occupant *o, const int *codes, size_t ncodes,
                        const muc_pres_extra *x)
{
    /* Its own unavailable (unless it is a ghost), then the others'. */
    muc_broadcast_presence(m, r, o, "unavailable", codes, ncodes, NULL, 0, x, true);
    muc_occupant_remove(r, o);
}

void muc_room_broadcast(muc_service *m, muc_room *r, const char *body, xml_node *payload)
{
    xml_node *msg = xml_node_new("message", XML_NS_CLIENT);
    if (!msg)
        return;
    xml_node_set_attr(msg, "from", r->jid);
    xml_node_set_attr(msg, "type", "groupchat");
    char id[24];
    server_random_id(id, sizeof id, 16);
    xml_node_set_attr(msg, "id", id);
    if (body)
        add_text_child(msg, "body", XML_NS_CLIENT, body);
    if (payload)
        xml_node_append(msg, xml_node_clone(payload));
    size_t head = 0;
    if (muc_wire(m, msg, &m->wire, &head) == 0)
        muc_fanout(m, r, &m->wire, head, false);
    xml_node_free(msg);
}

int muc_room_save(muc_service *m, muc_room *r)
{
    store_txn *t;
    int rc = store_txn_begin(m->srv->store, true, &t);
    if (rc != STORE_OK)
        return rc;
    rc = muc_room_record_put(t, &r->rec);
    if (rc == STORE_OK)
        rc = store_txn_commit(t);
    else
        store_txn_abort(t);
    if (rc != STORE_OK)
        log_write(&m->srv->log, LOG_ERROR, "muc", "%s: saving the room failed: %s", r->id,
                  store_last_error(m->srv->store));
    return rc;
}
