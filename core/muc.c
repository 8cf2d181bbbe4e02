/* muc.c - the live chat rooms (muc.h, specs/muc.md): the service on the
 * router, room lifecycle from the schedule, entering and leaving, presence
 * updates and nickname changes, groupchat messages (logged, then fanned
 * out once serialized), private messages, notices and the occupant count of
 * large rooms.  IQs are in muc_admin.c, tables and fan-out in muc_room.c.
 */
#include "muc.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "datetime.h"
#include "event.h"
#include "media.h"
#include "muc_room.h"
#include "schedule.h"
#include "server.h"

#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

static int64_t now_ms(void)
{
    return schedule_now_ms();
}


/* Code points of a UTF-8 string (the parser gives valid UTF-8). */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            n++;
    return n;
}

/* s cut to at most max code points (in place). */
static void utf8_cut(char *s, size_t max)
{
    size_t n = 0;
    for (char *p = s; *p; p++) {
        if (((unsigned char)*p & 0xc0) != 0x80 && n++ == max) {
            *p = '\0';
            return;
        }
    }
}

static void room_jid_nick(const muc_room *r, const char *nick, char *out, size_t cap)
{
    if (nick && *nick)
        snprintf(out, cap, "%s/%s", r->jid, nick);
    else
        snprintf(out, cap, "%s", r->jid);
}

/* An error reply from the room (from = the stanza's 'to').  A presence
 * error carries <x xmlns='http://jabber.org/protocol/muc'/>, as XEP-0045's
 * examples do (clients match their join errors on it). */
static void reply_error(muc_service *m, const xml_node *stanza, const char *type, const char *condition,
                        const char *text)
{
    if (strcmp(stanza->name, "presence") != 0) {
        router_reply_error(m->srv, stanza, type, condition, text);
        return;
    }
    xml_node *err = router_error_stanza(m->srv, stanza, type, condition, text);
    if (!err)
        return;
    xml_node *x = xml_node_new("x", NS_MUC);
    if (x) {
        /* before <error/>, as in the examples */
        x->next = err->children;
        x->parent = err;
        err->children = x;
        if (!err->last)
            err->last = x;
    }
    router_route(m->srv, NULL, err);
}

/* ---- rooms from reservations ---- */

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

/* A room in memory for a reservation and its record (copied). */
static muc_room *room_new(muc_service *m, const reservation *res, const muc_room_record *rec)
{
    server *srv = m->srv;
    muc_room *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    memcpy(r->id, res->id, sizeof r->id);
    size_t n = strlen(res->id) + 1 + strlen(srv->muc_domain) + 1;
    r->jid = malloc(n);
    if (r->jid) {
        snprintf(r->jid, n, "%s@%s", res->id, srv->muc_domain);
        r->jid_len = n - 1;
    }
    n = strlen(res->owner) + 1 + strlen(srv->cfg.domain) + 1;
    r->owner_bare = malloc(n);
    if (r->owner_bare)
        snprintf(r->owner_bare, n, "%s@%s", res->owner, srv->cfg.domain);
    r->title = dup_or_empty(res->title);
    r->description = dup_or_empty(res->detail && *res->detail ? res->detail : res->summary);
    r->level = res->level;
    if (res->level != RES_PUBLIC)
        r->password = dup_or_empty(res->shared_password);
    r->capacity = res->capacity;
    r->start = res->start;
    r->end = res->end;
    r->rec = *rec;
    r->rec.subject = dup_or_empty(rec->subject);
    r->rec.subject_nick = dup_or_empty(rec->subject_nick);
    r->rec.bans = dup_or_empty(rec->bans);
    r->rec.devoiced = dup_or_empty(rec->devoiced);
    r->rec.close_reason = dup_or_empty(rec->close_reason);
    r->next_seq = 1;
    bool failed = muc_history_init(&r->history, srv->cfg.muc_history_max) != 0;
    if (failed || !r->jid || !r->owner_bare || !r->title || !r->description || (res->level != RES_PUBLIC && !r->password) ||
        !r->rec.subject || !r->rec.subject_nick || !r->rec.bans || !r->rec.devoiced || !r->rec.close_reason) {
        muc_room_free(r);
        return NULL;
    }
    if (srv->cfg.muc_presence_broadcast_limit == 0)
        r->restricted = true;
    return r;
}

/* The stanza of a logged message as the room sends it (caller frees); with
 * the XEP-0203 delay when for history. */
static xml_node *logged_message(muc_room *r, const muc_log_entry *e, bool history)
{
    xml_node *msg = xml_node_new("message", XML_NS_CLIENT);
    if (!msg)
        return NULL;
    char from[2048];
    room_jid_nick(r, e->notice ? NULL : e->nick, from, sizeof from);
    xml_node_set_attr(msg, "from", from);
    xml_node_set_attr(msg, "type", "groupchat");
    if (e->id && *e->id)
        xml_node_set_attr(msg, "id", e->id);
    xml_node *b = xml_node_add_child(msg, "body", XML_NS_CLIENT);
    xml_node_add_text(b, e->body, strlen(e->body));
    if (history) {
        char stamp[DATETIME_MAX];
        datetime_format_stamp_ms(e->time_ms, stamp);
        xml_node *d = xml_node_add_child(msg, "delay", NS_DELAY);
        xml_node_set_attr(d, "from", r->jid);
        xml_node_set_attr(d, "stamp", stamp);
    }
    return msg;
}

/* Keeps e in the room's history ring. */
static void history_keep(muc_service *m, muc_room *r, const muc_log_entry *e)
{
    if (r->history.cap == 0)
        return;
    xml_node *msg = logged_message(r, e, true);
    xml_buf buf = {0};
    size_t head = 0;
    if (msg && muc_wire(m, msg, &buf, &head) == 0) {
        muc_history_push(&r->history, e->time_ms, buf.data, (uint32_t)head, (uint32_t)buf.len);
        buf.data = NULL;
    }
    xml_buf_free(&buf);
    xml_node_free(msg);
}

/* A committed message: to every occupant, into history, and the event. */
static void deliver_logged(muc_service *m, muc_room *r, const muc_log_entry *e)
{
    xml_node *msg = logged_message(r, e, false);
    size_t head = 0;
    if (msg && muc_wire(m, msg, &m->wire, &head) == 0)
        muc_fanout(m, r, &m->wire, head, false);
    xml_node_free(msg);
    history_keep(m, r, e);
    r->logged++;
    muc_room_message ev = {r->id, r->jid, e};
    event_fire(m->srv, &m->srv->events, EVENT_ROOM_MESSAGE, &ev);
}

static void pending_free(muc_pending *p)
{
    free(p->strs);
    free(p);
}

void muc_flush(muc_service *m)
{
    if (!m->pend_head)
        return;
    muc_pending *list = m->pend_head;
    m->pend_head = m->pend_tail = NULL;
    server *srv = m->srv;
    store_txn *t;
    int rc = store_txn_begin(srv->store, true, &t);
    size_t n = 0;
    if (rc == STORE_OK) {
        for (muc_pending *p = list; p && rc == STORE_OK; p = p->next, n++) {
            p->e.seq = p->room->next_seq++;
            rc = muc_log_append(t, p->room->id, &p->e);
        }
        if (rc == STORE_OK)
            rc = store_txn_commit(t);
        else
            store_txn_abort(t);
    }
    if (rc != STORE_OK) {
        log_write(&srv->log, LOG_ERROR, "muc", "the log commit of %zu messages failed: %s", n,
                  store_last_error(srv->store));
        /* Nothing was logged, so nothing is sent: each sender hears why. */
        for (muc_pending *p = list; p; p = p->next) {
            if (p->e.seq)
                p->room->next_seq--;
        }
        while (list) {
            muc_pending *p = list;
            list = p->next;
            xml_node *orig = xml_node_new("message", XML_NS_CLIENT);
            xml_node_set_attr(orig, "from", p->e.jid);
            xml_node_set_attr(orig, "to", p->room->jid);
            xml_node_set_attr(orig, "type", "groupchat");
            if (*p->e.id)
                xml_node_set_attr(orig, "id", p->e.id);
            xml_node *b = xml_node_add_child(orig, "body", XML_NS_CLIENT);
            xml_node_add_text(b, p->e.body, strlen(p->e.body));
            reply_error(m, orig, "wait", "internal-server-error", "the message could not be stored; try again");
            xml_node_free(orig);
            pending_free(p);
        }
        return;
    }
    while (list) {
        muc_pending *p = list;
        list = p->next;
        deliver_logged(m, p->room, &p->e);
        pending_free(p);
    }
    /* Ghosts found by this fan-out: every room may have some. */
    for (muc_room *r = m->rooms; r; r = r->hh.next)
        muc_remove_ghosts(m, r);
}

static void on_check(uv_check_t *h)
{
    muc_flush(h->data);
}

/* Whether body starts with name followed by ':' or ','. */
static bool starts_with_name(const char *body, const char *name)
{
    size_t n = strlen(name);
    return n > 0 && strncmp(body, name, n) == 0 && (body[n] == ':' || body[n] == ',');
}

/* Whether a message of occupant `from` is addressed to the broadcaster:
 * its body starts with the nickname of an occupant who is the broadcaster
 * (their account JID), or -- when none is in the room -- with the owner's
 * account name, followed by ':' or ',' (as clients write a reply).  The
 * broadcaster's own messages are not "addressed to" them. */
static bool addressed_to_owner(const muc_room *r, const muc_occupant *from, const char *body)
{
    size_t blen = strlen(r->owner_bare);
    if (strncmp(from->jid, r->owner_bare, blen) == 0 && (from->jid[blen] == '/' || from->jid[blen] == '\0'))
        return false;
    bool present = false;
    for (size_t i = 0; i < r->nocc; i++) {
        const muc_occupant *o = r->occ[i];
        if (strncmp(o->jid, r->owner_bare, blen) != 0 || (o->jid[blen] != '/' && o->jid[blen] != '\0'))
            continue;
        present = true;
        if (starts_with_name(body, o->nick))
            return true;
    }
    if (present)
        return false;
    const char *at = strchr(r->owner_bare, '@');
    char local[RES_OWNER_MAX + 1];
    size_t ln = at ? (size_t)(at - r->owner_bare) : 0;
    if (ln == 0 || ln > RES_OWNER_MAX)
        return false;
    memcpy(local, r->owner_bare, ln);
    local[ln] = '\0';
    return starts_with_name(body, local);
}

/* Queues an accepted groupchat message for the end-of-turn commit. */
static int pending_add(muc_service *m, muc_room *r, const char *nick, const char *real_jid, const char *body,
                       const char *id, bool addressed)
{
    muc_pending *p = calloc(1, sizeof *p);
    if (!p)
        return -1;
    size_t ln = strlen(nick) + 1, lj = strlen(real_jid) + 1, lb = strlen(body) + 1, li = strlen(id) + 1;
    p->strs = malloc(ln + lj + lb + li);
    if (!p->strs) {
        free(p);
        return -1;
    }
    char *s = p->strs;
    memcpy(s, nick, ln);
    memcpy(s + ln, real_jid, lj);
    memcpy(s + ln + lj, body, lb);
    memcpy(s + ln + lj + lb, id, li);
    p->room = r;
    p->e.time_ms = now_ms();
    p->e.nick = s;
    p->e.jid = s + ln;
    p->e.body = s + ln + lj;
    p->e.id = s + ln + lj + lb;
    p->e.addressed = addressed;
    if (m->pend_tail)
        m->pend_tail->next = p;
    else
        m->pend_head = p;
    m->pend_tail = p;
    return 0;
}

/* A notice from the room, logged with its bit in the room's record in one
 * transaction (so it is sent once, even across a crash). */
static void room_notice_bits(muc_service *m, muc_room *r, const char *text, uint32_t bit, uint32_t clear)
{
    muc_flush(m); /* keep the log in order */
    server *srv = m->srv;
    char id[24];
    server_random_id(id, sizeof id, 16);
    muc_log_entry e = {r->next_seq, now_ms(), "", "", text, id, true, false};
    store_txn *t;
    int rc = store_txn_begin(srv->store, true, &t);
    if (rc == STORE_OK) {
        muc_room_record rec = r->rec;
        rec.notices = (rec.notices & ~clear) | bit;
        rc = muc_log_append(t, r->id, &e);
        if (rc == STORE_OK)
            rc = muc_room_record_put(t, &rec);
        if (rc == STORE_OK)
            rc = store_txn_commit(t);
        else
            store_txn_abort(t);
    }
    if (rc != STORE_OK) {
        log_write(&srv->log, LOG_ERROR, "muc", "%s: logging a notice failed: %s", r->id, store_last_error(srv->store));
        return;
    }
    r->next_seq++;
    r->rec.notices = (r->rec.notices & ~clear) | bit;
    deliver_logged(m, r, &e);
    muc_remove_ghosts(m, r);
}

static void room_notice(muc_service *m, muc_room *r, const char *text, uint32_t bit)
{
    room_notice_bits(m, r, text, bit, 0);
}

void muc_send_count(muc_service *m, muc_room *r, const char *to)
{
    xml_node *c = xml_node_new("occupants", NS_ONAIR_MUC);
    if (!c)
        return;
    char n[24];
    snprintf(n, sizeof n, "%zu", r->nocc);
    xml_node_set_attr(c, "count", n);
    if (to) {
        xml_node *msg = xml_node_new("message", XML_NS_CLIENT);
        xml_node_set_attr(msg, "from", r->jid);
        xml_node_set_attr(msg, "type", "groupchat");
        xml_node_append(msg, c);
        muc_send_to(m, msg, to);
        xml_node_free(msg);
        return;
    }
    muc_room_broadcast(m, r, NULL, c);
    xml_node_free(c);
    r->count_sent = r->nocc;
    r->count_sent_ms = now_ms();
}

void muc_config_changed(muc_service *m, muc_room *r)
{
    xml_node *x = xml_node_new("x", NS_MUC_USER);
    xml_node *s = xml_node_add_child(x, "status", NS_MUC_USER);
    xml_node_set_attr(s, "code", "104");
    muc_room_broadcast(m, r, NULL, x);
    xml_node_free(x);
}

/* The subject message (from the room or the setter), to one occupant or,
 * with to NULL, to all. */
static void send_subject(muc_service *m, muc_room *r, muc_occupant *to, bool delayed)
{
    xml_node *msg = xml_node_new("message", XML_NS_CLIENT);
    if (!msg)
        return;
    char from[2048];
    room_jid_nick(r, r->rec.subject_nick, from, sizeof from);
    xml_node_set_attr(msg, "from", from);
    xml_node_set_attr(msg, "type", "groupchat");
    char id[24];
    server_random_id(id, sizeof id, 16);
    xml_node_set_attr(msg, "id", id);
    xml_node *s = xml_node_add_child(msg, "subject", XML_NS_CLIENT);
    if (*r->rec.subject)
        xml_node_add_text(s, r->rec.subject, strlen(r->rec.subject));
    if (delayed && r->rec.subject_ms > 0) {
        char stamp[DATETIME_MAX];
        datetime_format_stamp_ms(r->rec.subject_ms, stamp);
        xml_node *d = xml_node_add_child(msg, "delay", NS_DELAY);
        xml_node_set_attr(d, "from", r->jid);
        xml_node_set_attr(d, "stamp", stamp);
    }
    size_t head = 0;
    if (muc_wire(m, msg, &m->wire, &head) == 0) {
        if (to)
            muc_send_wire(m, r, &m->wire, head, to);
        else
            muc_fanout(m, r, &m->wire, head, false);
    }
    xml_node_free(msg);
}

/* ---- lifecycle ---- */

static void fire_opened(muc_service *m, muc_room *r, const reservation *res, bool reopened)
{
    muc_room_opened ev = {r->id, r->jid, res, r->rec.close_at, reopened};
    event_fire(m->srv, &m->srv->events, EVENT_ROOM_OPENED, &ev);
}

typedef struct log_copy {
    muc_log_entry *entries;
    size_t n, cap;
    unsigned notices;
} log_copy;

static int copy_one(void *ud, const muc_log_entry *e)
{
    log_copy *c = ud;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        muc_log_entry *grown = realloc(c->entries, cap * sizeof *grown);
        if (!grown)
            return STORE_ERROR;
        c->entries = grown;
        c->cap = cap;
    }
    size_t ln = strlen(e->nick) + 1, lj = strlen(e->jid) + 1, lb = strlen(e->body) + 1, li = strlen(e->id) + 1;
    char *s = malloc(ln + lj + lb + li);
    if (!s)
        return STORE_ERROR;
    memcpy(s, e->nick, ln);
    memcpy(s + ln, e->jid, lj);
    memcpy(s + ln + lj, e->body, lb);
    memcpy(s + ln + lj + lb, e->id, li);
    muc_log_entry *d = &c->entries[c->n++];
    *d = *e;
    d->nick = s;
    d->jid = s + ln;
    d->body = s + ln + lj;
    d->id = s + ln + lj + lb;
    if (e->notice)
        c->notices++;
    return 0;
}

static void log_copy_free(log_copy *c)
{
    for (size_t i = 0; i < c->n; i++)
        free((char *)c->entries[i].nick); /* the block starts with the nick */
    free(c->entries);
}

/* Raises "room closed" with the whole log of id read from the store. */
static void fire_closed(muc_service *m, const char *id, const char *room_jid, const char *reason, int64_t closed_at)
{
    server *srv = m->srv;
    log_copy c = {0};
    store_txn *t;
    int rc = store_txn_begin(srv->store, false, &t);
    if (rc == STORE_OK) {
        rc = muc_log_read(t, id, 1, copy_one, &c);
        store_txn_abort(t);
    }
    if (rc != STORE_OK)
        log_write(&srv->log, LOG_ERROR, "muc", "%s: reading the log for the close event failed (%d)", id, rc);
    log_write(&srv->log, LOG_INFO, "muc", "room closed: %s (%s), %zu messages (%u notices)", id, reason, c.n,
              c.notices);
    for (size_t i = 0; i < c.n; i++) {
        const muc_log_entry *e = &c.entries[i];
        log_write(&srv->log, LOG_DEBUG, "muc", "room log %s #%llu %s <%s> %zu bytes", id, (unsigned long long)e->seq,
                  e->notice ? "(notice)" : e->nick, e->jid, strlen(e->body));
    }
    muc_room_closed ev = {id, room_jid, reason, closed_at, c.entries, c.n};
    event_fire(srv, &srv->events, EVENT_ROOM_CLOSED, &ev);
    log_copy_free(&c);
}

/* A room closed at closed_ms: its log is due for removal then plus the
 * keep time; the next pass is no later. */
static void prune_after(muc_service *m, int64_t closed_ms)
{
    int64_t keep_ms = m->srv->cfg.muc_closed_log_keep_s * 1000;
    if (keep_ms > 0 && closed_ms + keep_ms < m->prune_at_ms)
        m->prune_at_ms = closed_ms + keep_ms;
}

/* Destroys an open room: XEP-0045 destroy presence to each occupant, the
 * event with the whole log, the record marked closed. */
static void room_close(muc_service *m, muc_room *r, const char *reason)
{
    muc_flush(m);
    const char *text = strcmp(reason, "cancelled") == 0 ? "The live was cancelled: this room is closed."
                                                          : "The live is over: this room is closed.";
    muc_pres_extra x = {.destroy_reason = text};
    for (size_t i = 0; i < r->nocc; i++) {
        muc_occupant *o = r->occ[i];
        xml_node *p = muc_presence_node(r, o, "unavailable", false, NULL, 0, &x);
        size_t head = 0;
        if (p && muc_wire(m, p, &m->wire, &head) == 0)
            muc_send_wire(m, r, &m->wire, head, o);
        xml_node_free(p);
    }
    int64_t now = now_ms();
    fire_closed(m, r->id, r->jid, reason, now / 1000);
    free(r->rec.close_reason);
    r->rec.close_reason = strdup(reason);
    r->rec.state = MUC_ROOM_CLOSED;
    r->rec.closed_ms = now;
    muc_room_save(m, r);
    prune_after(m, now);
    HASH_DEL(m->rooms, r);
    muc_room_free(r);
}

static void schedule_room_timers(server *srv, store_txn *t, const muc_room *r, int64_t *earliest, int *rc)
{
    const config *cfg = &srv->cfg;
    struct {
        bool on;
        int64_t at;
        schedule_kind kind;
    } timers[4] = {
        {cfg->notice_before_s > 0, r->start - cfg->notice_before_s, SCHEDULE_ROOM_NOTICE},
        {true, r->start, SCHEDULE_LIVE_START},
        {cfg->close_warning_before_s > 0, r->rec.close_at - cfg->close_warning_before_s, SCHEDULE_ROOM_CLOSE_WARNING},
        {true, r->rec.close_at, SCHEDULE_ROOM_CLOSE},
    };
    /* The live's end has no timer of the room's: the stream's end is
     * noticed from the media service's "live ended". */
    *earliest = -1;
    for (size_t i = 0; i < 4 && *rc == STORE_OK; i++) {
        if (!timers[i].on)
            continue;
        *rc = schedule_put_txn(t, timers[i].at * 1000, timers[i].kind, r->id);
        if (*earliest < 0 || timers[i].at * 1000 < *earliest)
            *earliest = timers[i].at * 1000;
    }
}

static void on_room_open(void *ud, server *srv, schedule_kind kind, const char *id, int64_t due_ms)
{
    muc_service *m = srv->muc;
    if (!m || m->stopping || muc_room_find(m, id))
        return;
    reservation res;
    if (reservation_get(&srv->res, id, &res) != RES_OK)
        return;
    int64_t now = now_ms();
    int64_t close_at = res.end + srv->cfg.room_close_after_s;
    if (res.state != RES_RECONFIRMED && res.state != RES_LIVE) {
        reservation_clear(&res);
        return;
    }
    if (now / 1000 >= close_at) {
        log_write(&srv->log, LOG_WARN, "muc", "room %s: its time had passed when its timer ran; not opened", id);
        reservation_clear(&res);
        return;
    }
    muc_room_record rec = {0};
    memcpy(rec.id, res.id, sizeof rec.id);
    rec.state = MUC_ROOM_OPEN;
    rec.opened_ms = now;
    rec.close_at = close_at;
    rec.subject = res.title;
    rec.subject_nick = "";
    rec.subject_ms = now;
    rec.bans = rec.devoiced = rec.close_reason = "";
    muc_room *r = room_new(m, &res, &rec);
    if (!r) {
        log_write(&srv->log, LOG_ERROR, "muc", "room %s: out of memory", id);
        reservation_clear(&res);
        return;
    }
    store_txn *t;
    int rc = store_txn_begin(srv->store, true, &t);
    int64_t earliest = -1;
    if (rc == STORE_OK) {
        muc_room_record old;
        int got = muc_room_record_get(t, id, &old);
        if (got == STORE_OK) {
            /* Opened before (the timer ran again after a crash): nothing to do. */
            muc_room_record_clear(&old);
            store_txn_abort(t);
            muc_room_free(r);
            reservation_clear(&res);
            return;
        }
        rc = muc_room_record_put(t, &r->rec);
        if (rc == STORE_OK)
            schedule_room_timers(srv, t, r, &earliest, &rc);
        if (rc == STORE_OK)
            rc = store_txn_commit(t);
        else
            store_txn_abort(t);
    }
    if (rc != STORE_OK) {
        log_write(&srv->log, LOG_ERROR, "muc", "room %s: opening failed: %s", id, store_last_error(srv->store));
        muc_room_free(r);
        reservation_clear(&res);
        return;
    }
    HASH_ADD_STR(m->rooms, id, r);
    if (earliest >= 0)
        schedule_changed(srv, earliest);
    char a[DATETIME_MAX];
    log_write(&srv->log, LOG_INFO, "muc", "room opened: %s (%s), closes at %s", r->jid, res_level_name(r->level),
              datetime_format(close_at, a));
    fire_opened(m, r, &res, false);
    reservation_clear(&res);
}

static void on_room_close(void *ud, server *srv, schedule_kind kind, const char *id, int64_t due_ms)
{
    muc_service *m = srv->muc;
    if (!m || m->stopping)
        return;
    muc_room *r = muc_room_find(m, id);
    if (r && now_ms() / 1000 >= r->rec.close_at)
        room_close(m, r, "ended");
}

static void on_notice(void *ud, server *srv, schedule_kind kind, const char *id, int64_t due_ms)
{
    muc_service *m = srv->muc;
    if (!m || m->stopping)
        return;
    muc_room *r = muc_room_find(m, id);
    if (!r)
        return;
    int64_t now = now_ms() / 1000;
    char text[512], at[DATETIME_MAX];
    uint32_t bit = 0;
    switch (kind) {
    case SCHEDULE_ROOM_NOTICE: {
        bit = MUC_NOTICE_SOON;
        if (now >= r->start)
            return;
        int64_t minutes = (r->start - now + 59) / 60;
        snprintf(text, sizeof text, "The live \"%s\" starts in %lld minute%s, at %s.", r->title, (long long)minutes,
                 minutes == 1 ? "" : "s", datetime_format(r->start, at));
        break;
    }
    case SCHEDULE_LIVE_START:
        /* The stream's start is noticed from "live started"; at the
         * scheduled start the room says only when nobody is on air. */
        bit = MUC_NOTICE_DUE;
        if (now >= r->end || media_is_on_air(srv, r->id) || (r->rec.notices & MUC_NOTICE_START))
            return;
        snprintf(text, sizeof text, "The live \"%s\" is due to start now; the broadcaster is not on air yet.",
                 r->title);
        break;
    case SCHEDULE_ROOM_CLOSE_WARNING: {
        bit = MUC_NOTICE_WARNING;
        if (now >= r->rec.close_at)
            return;
        int64_t minutes = (r->rec.close_at - now + 59) / 60;
        snprintf(text, sizeof text, "This room closes in %lld minute%s, at %s.", (long long)minutes,
                 minutes == 1 ? "" : "s", datetime_format(r->rec.close_at, at));
        break;
    }
    default:
        return;
    }
    if (r->rec.notices & bit)
        return;
    room_notice(m, r, text, bit);
}

/* "live started" / "live ended" from the media service: the room's
 * notices.  The bits in the room's record make each said once per start and
 * end, even when an event comes again after a restart (a broadcaster going
 * back on air after a crash does not make the room say "started" twice). */
static int on_live(void *ud, server *srv, event_type type, const void *payload)
{
    muc_service *m = ud;
    const event_live *ev = payload;
    if (!m || m->stopping || !ev->reservation_id)
        return EVENT_CONTINUE;
    muc_room *r = muc_room_find(m, ev->reservation_id);
    if (!r)
        return EVENT_CONTINUE;
    char text[512], at[DATETIME_MAX];
    uint32_t n = r->rec.notices;
    if (type == EVENT_LIVE_STARTED) {
        if ((n & MUC_NOTICE_START) && !(n & MUC_NOTICE_END))
            return EVENT_CONTINUE;
        snprintf(text, sizeof text, (n & MUC_NOTICE_END) ? "The live \"%s\" is back on air." : "The live \"%s\" has started.",
                 r->title);
        room_notice_bits(m, r, text, MUC_NOTICE_START, MUC_NOTICE_END);
    } else if (type == EVENT_LIVE_ENDED) {
        if (n & MUC_NOTICE_END)
            return EVENT_CONTINUE;
        snprintf(text, sizeof text, "The live \"%s\" has ended. This room closes at %s.", r->title,
                 datetime_format(r->rec.close_at, at));
        room_notice(m, r, text, MUC_NOTICE_END);
    }
    (void)srv;
    return EVENT_CONTINUE;
}

bool muc_has_occupant(const server *srv, const char *room_id, const char *full_jid)
{
    muc_service *m = srv->muc;
    if (!m || m->stopping)
        return false;
    muc_room *r = muc_room_find(m, room_id);
    return r && muc_occupant_by_jid(r, full_jid) != NULL;
}

static int on_reservation_cancelled(void *ud, server *srv, event_type type, const void *payload)
{
    const reservation *res = payload;
    muc_service *m = srv->muc;
    if (!m || m->stopping)
        return EVENT_CONTINUE;
    muc_room *r = muc_room_find(m, res->id);
    if (r)
        room_close(m, r, "cancelled");
    return EVENT_CONTINUE;
}

/* ---- start-up: reopen what the store has open ---- */

typedef struct open_ids {
    char (*ids)[RES_ID_LEN + 1];
    size_t n, cap;
} open_ids;

static int collect_open(void *ud, const muc_room_record *rec)
{
    open_ids *o = ud;
    if (rec->state != MUC_ROOM_OPEN)
        return 0;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 16;
        void *grown = realloc(o->ids, cap * sizeof *o->ids);
        if (!grown)
            return STORE_ERROR;
        o->ids = grown;
        o->cap = cap;
    }
    memcpy(o->ids[o->n++], rec->id, RES_ID_LEN + 1);
    return 0;
}

typedef struct history_load {
    muc_service *m;
    muc_room *r;
} history_load;

static int history_one(void *ud, const muc_log_entry *e)
{
    history_load *h = ud;
    history_keep(h->m, h->r, e);
    return 0;
}

static void reopen(muc_service *m, const char *id)
{
    server *srv = m->srv;
    store_txn *t;
    if (store_txn_begin(srv->store, false, &t) != STORE_OK)
        return;
    muc_room_record rec;
    uint64_t last = 0;
    int rc = muc_room_record_get(t, id, &rec);
    if (rc == STORE_OK)
        rc = muc_log_last_seq(t, id, &last);
    store_txn_abort(t);
    if (rc != STORE_OK) {
        log_write(&srv->log, LOG_ERROR, "muc", "room %s: cannot read its record (%d)", id, rc);
        muc_room_record_clear(&rec);
        return;
    }
    reservation res;
    bool have = reservation_get(&srv->res, id, &res) == RES_OK;
    if (!have || res.state == RES_CANCELLED) {
        /* Cancelled while the server was down (or between the commit and
         * the close): close it now, with its event. */
        char room_jid[512];
        snprintf(room_jid, sizeof room_jid, "%s@%s", id, srv->muc_domain);
        fire_closed(m, id, room_jid, "cancelled", now_ms() / 1000);
        free(rec.close_reason);
        rec.close_reason = strdup("cancelled");
        rec.state = MUC_ROOM_CLOSED;
        rec.closed_ms = now_ms();
        if (store_txn_begin(srv->store, true, &t) == STORE_OK) {
            if (muc_room_record_put(t, &rec) == STORE_OK)
                store_txn_commit(t);
            else
                store_txn_abort(t);
        }
        prune_after(m, rec.closed_ms);
        muc_room_record_clear(&rec);
        if (have)
            reservation_clear(&res);
        return;
    }
    muc_room *r = room_new(m, &res, &rec);
    muc_room_record_clear(&rec);
    if (!r) {
        reservation_clear(&res);
        return;
    }
    r->next_seq = last + 1;
    r->logged = last;
    if (r->history.cap > 0 && last > 0 && store_txn_begin(srv->store, false, &t) == STORE_OK) {
        uint64_t from = last > r->history.cap ? last - r->history.cap + 1 : 1;
        history_load h = {m, r};
        muc_log_read(t, id, from, history_one, &h);
        store_txn_abort(t);
    }
    HASH_ADD_STR(m->rooms, id, r);
    char a[DATETIME_MAX];
    log_write(&srv->log, LOG_INFO, "muc", "room reopened: %s with %llu logged messages, closes at %s", r->jid,
              (unsigned long long)last, datetime_format(r->rec.close_at, a));
    fire_opened(m, r, &res, true);
    reservation_clear(&res);
}

/* ---- entering, presence, leaving ---- */

static muc_show parse_show(const xml_node *p)
{
    char *s = xml_node_child_text(p, "show", XML_NS_CLIENT);
    muc_show v = MUC_SHOW_NONE;
    if (s) {
        if (strcmp(s, "away") == 0)
            v = MUC_SHOW_AWAY;
        else if (strcmp(s, "chat") == 0)
            v = MUC_SHOW_CHAT;
        else if (strcmp(s, "dnd") == 0)
            v = MUC_SHOW_DND;
        else if (strcmp(s, "xa") == 0)
            v = MUC_SHOW_XA;
    }
    free(s);
    return v;
}

/* Takes show and the self-introduction (<status/>, cut to MUC_INTRO_MAX
 * characters) from a presence.  Returns true if either changed. */
static bool take_presence(muc_occupant *o, const xml_node *p)
{
    muc_show show = parse_show(p);
    char *status = xml_node_child_text(p, "status", XML_NS_CLIENT);
    if (status && !*status) {
        free(status);
        status = NULL;
    }
    if (status)
        utf8_cut(status, MUC_INTRO_MAX);
    bool changed = show != o->show || (!status != !o->intro) || (status && strcmp(status, o->intro) != 0);
    o->show = (uint8_t)show;
    free(o->intro);
    o->intro = status;
    return changed;
}

/* A nickname a room accepts: not only spaces, at most MUC_NICK_MAX characters. */
static const char *nick_problem(const char *nick)
{
    bool visible = false;
    for (const char *p = nick; *p && !visible; p++)
        visible = *p != ' ';
    if (!visible)
        return "the nickname must not be empty or only spaces";
    if (utf8_chars(nick) > MUC_NICK_MAX)
        return "the nickname is too long (at most 64 characters)";
    return NULL;
}

static bool password_ok(const muc_room *r, const xml_node *x)
{
    char *pw = x ? xml_node_child_text(x, "password", NS_MUC) : NULL;
    bool ok = pw && strlen(pw) == strlen(r->password) && CRYPTO_memcmp(pw, r->password, strlen(pw)) == 0;
    if (pw) {
        OPENSSL_cleanse(pw, strlen(pw));
        free(pw);
    }
    return ok;
}

/* Presence of p as o sees it, from p's cached wire when o is not a
 * moderator. */
static void send_presence_of(muc_service *m, muc_room *r, muc_occupant *p, muc_occupant *to)
{
    bool with_jid = to->role == MUC_ROLE_MODERATOR;
    xml_node *n = muc_presence_node(r, p, NULL, with_jid, NULL, 0, NULL);
    size_t head = 0;
    if (n && muc_wire(m, n, &m->wire, &head) == 0)
        muc_send_wire(m, r, &m->wire, head, to);
    xml_node_free(n);
}

/* What a joiner gets after the presences: history (within its limits),
 * the subject, and the count in restricted rooms. */
static void send_room_state(muc_service *m, muc_room *r, muc_occupant *o, const muc_history_request *rq)
{
    size_t first = muc_history_select(&r->history, rq, now_ms(), o->jid_len);
    for (size_t i = first; i < r->history.n && !o->gone; i++) {
        const muc_history_item *it = muc_history_at(&r->history, i);
        router_splice sp = {it->wire, it->head_len, it->wire + it->head_len, it->len - it->head_len};
        m->deliveries++;
        if (!router_deliver_spliced(m->srv, o->jid, o->jid_len, &sp)) {
            o->gone = true;
            r->has_ghosts = true;
        }
    }
    send_subject(m, r, o, true);
    if (r->restricted)
        muc_send_count(m, r, o->jid);
}

/* The presences o may see: everyone's, or in a restricted room (unless o
 * moderates) the moderators' only. */
static void send_occupants(muc_service *m, muc_room *r, muc_occupant *o)
{
    bool all = !r->restricted || o->role == MUC_ROLE_MODERATOR;
    muc_occupant **list = all ? r->occ : r->mods;
    size_t n = all ? r->nocc : r->nmods;
    for (size_t i = 0; i < n && !o->gone; i++) {
        muc_occupant *p = list[i];
        if (p == o || p->gone)
            continue;
        send_presence_of(m, r, p, o);
    }
}

static const int SELF_JOIN_CODES[] = {170}; /* the room is logged */

static void join(muc_service *m, muc_room *r, xml_node *p, const char *from, const jid *fromj, const char *nick)
{
    server *srv = m->srv;
    xml_node *x = xml_node_child(p, "x", NS_MUC);
    const char *problem = nick_problem(nick);
    if (problem) {
        reply_error(m, p, "modify", "not-acceptable", problem);
        return;
    }
    char bare[2100];
    snprintf(bare, sizeof bare, "%s%s%s", fromj->node ? fromj->node : "", fromj->node ? "@" : "", fromj->domain);
    bool owner = strcmp(bare, r->owner_bare) == 0;
    if (!owner && muc_list_has(r->rec.bans, bare)) {
        reply_error(m, p, "auth", "forbidden", "you are banned from this room");
        return;
    }
    if (r->password && !owner && !password_ok(r, x)) {
        reply_error(m, p, "auth", "not-authorized", "this room needs the live's password");
        return;
    }
    muc_history_request rq;
    const char *bad = NULL;
    if (muc_history_request_parse(x ? xml_node_child(x, "history", NS_MUC) : NULL, &rq, &bad) != 0) {
        char text[96];
        snprintf(text, sizeof text, "history: %s must be %s", bad,
                 strcmp(bad, "since") == 0 ? "a date-time" : "a non-negative integer");
        reply_error(m, p, "modify", "bad-request", text);
        return;
    }
    if (muc_occupant_by_nick(r, nick)) {
        reply_error(m, p, "cancel", "conflict", "that nickname is taken in this room");
        return;
    }
    if (!owner && r->nviewers >= r->capacity) {
        reply_error(m, p, "wait", "service-unavailable", "the room is full");
        return;
    }
    muc_role role = owner ? MUC_ROLE_MODERATOR
                          : muc_list_has(r->rec.devoiced, bare) ? MUC_ROLE_VISITOR : MUC_ROLE_PARTICIPANT;
    if (!r->restricted && r->nocc + 1 > srv->cfg.muc_presence_broadcast_limit) {
        r->restricted = true;
        log_write(&srv->log, LOG_INFO, "muc", "%s: over %u occupants, presence broadcast restricted to moderators",
                  r->id, srv->cfg.muc_presence_broadcast_limit);
        muc_config_changed(m, r);
    }
    bool broadcast = !r->restricted || role == MUC_ROLE_MODERATOR;
    muc_occupant *o = muc_occupant_add(r, from, nick, role, owner ? MUC_AFFIL_OWNER : MUC_AFFIL_NONE, broadcast,
                                       now_ms(), srv->cfg.muc_rate_burst);
    if (!o) {
        reply_error(m, p, "wait", "resource-constraint", NULL);
        return;
    }
    take_presence(o, p);
    send_occupants(m, r, o);
    muc_broadcast_presence(m, r, o, NULL, NULL, 0, SELF_JOIN_CODES, 1, NULL, true);
    send_room_state(m, r, o, &rq);
}

/* A join presence from someone already in: they lost track; send them the
 * room again (XEP-0045 7.2.1). */
static void resync(muc_service *m, muc_room *r, muc_occupant *o, xml_node *p)
{
    xml_node *x = xml_node_child(p, "x", NS_MUC);
    muc_history_request rq;
    const char *bad = NULL;
    if (muc_history_request_parse(x ? xml_node_child(x, "history", NS_MUC) : NULL, &rq, &bad) != 0)
        muc_history_request_parse(NULL, &rq, &bad);
    bool changed = take_presence(o, p);
    send_occupants(m, r, o);
    muc_broadcast_presence(m, r, o, NULL, NULL, 0, SELF_JOIN_CODES, 1, NULL, changed);
    send_room_state(m, r, o, &rq);
}

static bool rate_ok(muc_service *m, muc_occupant *o)
{
    const config *cfg = &m->srv->cfg;
    return muc_rate_take(&o->rate, now_ms(), cfg->muc_rate_per_s, cfg->muc_rate_burst);
}

static void change_nick(muc_service *m, muc_room *r, muc_occupant *o, xml_node *p, const char *nick)
{
    const char *problem = nick_problem(nick);
    if (problem) {
        reply_error(m, p, "modify", "not-acceptable", problem);
        return;
    }
    if (muc_occupant_by_nick(r, nick)) {
        reply_error(m, p, "cancel", "conflict", "that nickname is taken in this room");
        return;
    }
    if (!rate_ok(m, o)) {
        reply_error(m, p, "wait", "policy-violation", "too many changes; wait a moment");
        return;
    }
    static const int codes[] = {303};
    muc_pres_extra x = {.new_nick = nick};
    muc_broadcast_presence(m, r, o, "unavailable", codes, 1, NULL, 0, &x, true);
    if (muc_occupant_rename(r, o, nick) != 0)
        return;
    take_presence(o, p);
    muc_broadcast_presence(m, r, o, NULL, NULL, 0, NULL, 0, NULL, true);
}

/* Whether an error stanza from an occupant's address says that our stanza
 * found nobody there (XEP-0045 18.1.4 "Ghost Users"; service-unavailable is
 * what a server answers for a full JID without a session). */
static bool is_delivery_error(const xml_node *stanza)
{
    static const char *const conditions[] = {"gone", "item-not-found", "recipient-unavailable", "redirect",
                                             "remote-server-not-found", "remote-server-timeout",
                                             "service-unavailable"};
    xml_node *e = xml_node_child(stanza, "error", NULL);
    for (xml_node *c = e ? e->children : NULL; c; c = c->next) {
        if (c->type != XML_ELEMENT || strcmp(c->ns, NS_STANZAS) != 0)
            continue;
        for (size_t i = 0; i < sizeof conditions / sizeof conditions[0]; i++)
            if (strcmp(c->name, conditions[i]) == 0)
                return true;
    }
    return false;
}

static void handle_presence(muc_service *m, muc_room *r, xml_node *p, const char *from, const jid *fromj,
                            const char *nick)
{
    const char *type = xml_node_attr(p, "type");
    muc_occupant *o = muc_occupant_by_jid(r, from);
    if (!type) {
        if (!nick) {
            reply_error(m, p, "modify", "jid-malformed", "join the room as <room>/<nickname>");
            return;
        }
        bool has_x = xml_node_child(p, "x", NS_MUC) != NULL;
        if (!o) {
            if (has_x) {
                join(m, r, p, from, fromj, nick);
                return;
            }
            /* Presence without <x/> from a non-occupant (XEP-0045 7.2.19):
             * a client that lost the room; tell it it is not in. */
            xml_node *k = xml_node_new("presence", XML_NS_CLIENT);
            char occ_jid[2048];
            room_jid_nick(r, nick, occ_jid, sizeof occ_jid);
            xml_node_set_attr(k, "from", occ_jid);
            xml_node_set_attr(k, "to", from);
            xml_node_set_attr(k, "type", "unavailable");
            xml_node *ux = xml_node_add_child(k, "x", NS_MUC_USER);
            xml_node *item = xml_node_add_child(ux, "item", NS_MUC_USER);
            xml_node_set_attr(item, "affiliation", "none");
            xml_node_set_attr(item, "role", "none");
            xml_node *reason = xml_node_add_child(item, "reason", NS_MUC_USER);
            xml_node_add_text(reason, "You are not in the room.", 24);
            static const char *const codes[] = {"110", "307", "333"};
            for (size_t i = 0; i < 3; i++)
                xml_node_set_attr(xml_node_add_child(ux, "status", NS_MUC_USER), "code", codes[i]);
            router_route(m->srv, NULL, k);
            return;
        }
        if (strcmp(o->nick, nick) != 0) {
            change_nick(m, r, o, p, nick);
        } else if (has_x) {
            resync(m, r, o, p);
        } else if (rate_ok(m, o)) {
            if (take_presence(o, p))
                muc_broadcast_presence(m, r, o, NULL, NULL, 0, NULL, 0, NULL, true);
        } /* over the rate: a presence update is dropped */
    } else if (strcmp(type, "unavailable") == 0) {
        if (!o)
            return; /* XEP-0045 15.3: ignored */
        char *status = xml_node_child_text(p, "status", XML_NS_CLIENT);
        if (status)
            utf8_cut(status, MUC_INTRO_MAX);
        muc_pres_extra x = {.status = status};
        muc_occupant_leave(m, r, o, NULL, 0, &x);
        free(status);
    } else if (strcmp(type, "error") == 0) {
        if (o && is_delivery_error(p)) {
            /* A bounce: the occupant is gone (ghost). */
            o->gone = true;
            r->has_ghosts = true;
        }
    }
    /* probes and subscriptions to a room: ignored */
}

/* ---- messages ---- */

static void change_subject(muc_service *m, muc_room *r, muc_occupant *o, xml_node *msg)
{
    if (o->role != MUC_ROLE_MODERATOR) {
        reply_error(m, msg, "auth", "forbidden", "only moderators change the subject");
        return;
    }
    char *subject = xml_node_child_text(msg, "subject", NULL);
    if (!subject)
        return;
    if (utf8_chars(subject) > MUC_SUBJECT_MAX) {
        free(subject);
        reply_error(m, msg, "modify", "not-acceptable", "the subject is too long (at most 200 characters)");
        return;
    }
    char *nick = strdup(o->nick);
    if (!nick) {
        free(subject);
        return;
    }
    char *old_subject = r->rec.subject, *old_nick = r->rec.subject_nick;
    int64_t old_ms = r->rec.subject_ms;
    r->rec.subject = subject;
    r->rec.subject_nick = nick;
    r->rec.subject_ms = now_ms();
    if (muc_room_save(m, r) != STORE_OK) {
        r->rec.subject = old_subject;
        r->rec.subject_nick = old_nick;
        r->rec.subject_ms = old_ms;
        free(subject);
        free(nick);
        reply_error(m, msg, "wait", "internal-server-error", NULL);
        return;
    }
    free(old_subject);
    free(old_nick);
    send_subject(m, r, NULL, false);
}

static void groupchat(muc_service *m, muc_room *r, xml_node *msg, const char *from)
{
    const config *cfg = &m->srv->cfg;
    muc_occupant *o = muc_occupant_by_jid(r, from);
    if (!o) {
        reply_error(m, msg, "cancel", "not-acceptable", "you are not in this room");
        return;
    }
    xml_node *body = xml_node_child(msg, "body", XML_NS_CLIENT);
    if (!body) {
        if (xml_node_child(msg, "subject", XML_NS_CLIENT) && !xml_node_child(msg, "thread", XML_NS_CLIENT))
            change_subject(m, r, o, msg);
        return; /* chat states and other bodiless messages are not relayed */
    }
    if (o->role == MUC_ROLE_VISITOR) {
        reply_error(m, msg, "auth", "forbidden", "you have no voice in this room");
        return;
    }
    char *text = xml_node_text(body);
    if (!text)
        return;
    char limit[96];
    if (strlen(text) > cfg->muc_max_message_bytes) {
        snprintf(limit, sizeof limit, "the message is too long (at most %zu bytes)", cfg->muc_max_message_bytes);
        reply_error(m, msg, "modify", "not-acceptable", limit);
        free(text);
        return;
    }
    int64_t now = now_ms();
    if (r->rec.slow_mode_s > 0 && o->role != MUC_ROLE_MODERATOR && o->last_msg_ms > 0 &&
        now - o->last_msg_ms < (int64_t)r->rec.slow_mode_s * 1000) {
        snprintf(limit, sizeof limit, "slow mode: one message every %u seconds", r->rec.slow_mode_s);
        reply_error(m, msg, "wait", "policy-violation", limit);
        free(text);
        return;
    }
    if (!rate_ok(m, o)) {
        reply_error(m, msg, "wait", "policy-violation", "too many messages; wait a moment");
        free(text);
        return;
    }
    o->last_msg_ms = now;
    const char *id = xml_node_attr(msg, "id");
    char gen[24];
    if (!id || !*id || strlen(id) > 256) {
        server_random_id(gen, sizeof gen, 16);
        id = gen;
    }
    if (pending_add(m, r, o->nick, o->jid, text, id, addressed_to_owner(r, o, text)) != 0)
        reply_error(m, msg, "wait", "resource-constraint", NULL);
    free(text);
}

static void private_message(muc_service *m, muc_room *r, xml_node *msg, const char *from, const char *nick)
{
    const char *type = xml_node_attr(msg, "type");
    if (type && strcmp(type, "groupchat") == 0) {
        reply_error(m, msg, "modify", "bad-request", "a private message is not of type groupchat");
        return;
    }
    muc_occupant *o = muc_occupant_by_jid(r, from);
    if (!o) {
        reply_error(m, msg, "cancel", "not-acceptable", "you are not in this room");
        return;
    }
    muc_occupant *to = muc_occupant_by_nick(r, nick);
    if (!to) {
        reply_error(m, msg, "cancel", "item-not-found", "nobody has that nickname in this room");
        return;
    }
    xml_node *body = xml_node_child(msg, "body", XML_NS_CLIENT);
    if (!rate_ok(m, o)) {
        if (body)
            reply_error(m, msg, "wait", "policy-violation", "too many messages; wait a moment");
        return;
    }
    if (body) {
        char *text = xml_node_text(body);
        size_t len = text ? strlen(text) : 0;
        free(text);
        if (len > m->srv->cfg.muc_max_message_bytes) {
            char limit[96];
            snprintf(limit, sizeof limit, "the message is too long (at most %zu bytes)",
                     m->srv->cfg.muc_max_message_bytes);
            reply_error(m, msg, "modify", "not-acceptable", limit);
            return;
        }
    }
    xml_node *out = xml_node_new("message", XML_NS_CLIENT);
    char occ_jid[2048];
    room_jid_nick(r, o->nick, occ_jid, sizeof occ_jid);
    xml_node_set_attr(out, "from", occ_jid);
    xml_node_set_attr(out, "to", to->jid);
    xml_node_set_attr(out, "type", type ? type : "normal");
    const char *id = xml_node_attr(msg, "id");
    if (id)
        xml_node_set_attr(out, "id", id);
    const char *lang = xml_node_attr(msg, "xml:lang");
    if (lang)
        xml_node_set_attr(out, "xml:lang", lang);
    bool has_x = false;
    for (xml_node *c = msg->children; c; c = c->next) {
        if (c->type != XML_ELEMENT)
            continue;
        if (strcmp(c->ns, NS_MUC_USER) == 0) {
            if (!has_x)
                xml_node_add_child(out, "x", NS_MUC_USER); /* never a sender's muc#user payload */
            has_x = true;
            continue;
        }
        xml_node_append(out, xml_node_clone(c));
    }
    if (!has_x)
        xml_node_add_child(out, "x", NS_MUC_USER);
    router_route(m->srv, NULL, out);
}

static void handle_message(muc_service *m, muc_room *r, xml_node *msg, const char *from, const char *nick)
{
    const char *type = xml_node_attr(msg, "type");
    if (type && strcmp(type, "error") == 0) {
        muc_occupant *o = muc_occupant_by_jid(r, from);
        if (o && is_delivery_error(msg)) {
            o->gone = true; /* a bounce of what the room sent: a ghost */
            r->has_ghosts = true;
        }
        return;
    }
    if (nick) {
        private_message(m, r, msg, from, nick);
        return;
    }
    if (!type || strcmp(type, "groupchat") != 0) {
        reply_error(m, msg, "modify", "bad-request",
                    "send groupchat messages to the room, private messages to <room>/<nickname>");
        return;
    }
    groupchat(m, r, msg, from);
}

/* ---- the router's entry ---- */

void muc_chat_status_of(server *srv, const reservation *res, int64_t now, muc_chat_status *out)
{
    muc_room *r = srv->muc ? muc_room_find(srv->muc, res->id) : NULL;
    if (r && r->rec.state == MUC_ROOM_OPEN) {
        out->state = MUC_CHAT_OPEN;
        out->opens_at = r->rec.opened_ms / 1000;
        out->closes_at = r->rec.close_at;
        return;
    }
    out->opens_at = res->start - srv->cfg.room_open_before_s;
    out->closes_at = res->end + srv->cfg.room_close_after_s;
    out->state = res->state == RES_CANCELLED || now >= out->closes_at ? MUC_CHAT_CLOSED : MUC_CHAT_NOT_OPEN;
}

/* Why a room that is not open cannot be entered, for the error text. */
static void not_open_text(muc_service *m, const char *id, char *out, size_t cap)
{
    server *srv = m->srv;
    reservation res;
    if (!reservation_id_valid(id) || reservation_get(&srv->res, id, &res) != RES_OK) {
        snprintf(out, cap, "no such room");
        return;
    }
    char a[DATETIME_MAX];
    int64_t now = now_ms() / 1000;
    muc_chat_status st;
    muc_chat_status_of(srv, &res, now, &st);
    int64_t opens = st.opens_at;
    if (res.state == RES_CANCELLED)
        snprintf(out, cap, "this live was cancelled");
    else if (st.state == MUC_CHAT_CLOSED)
        snprintf(out, cap, "this room closed at %s", datetime_format(st.closes_at, a));
    else if (res.state == RES_AWAITING)
        snprintf(out, cap, "this room opens at %s, once the live is reconfirmed", datetime_format(opens, a));
    else
        snprintf(out, cap, "this room opens at %s", datetime_format(opens > now ? opens : now, a));
    reservation_clear(&res);
}

static router_result muc_route(void *ud, server *srv, xml_node *stanza, const jid *from, const jid *to)
{
    muc_service *m = srv->muc;
    if (!m || m->stopping)
        return ROUTER_HANDLED;
    const char *from_s = xml_node_attr(stanza, "from");
    const char *type = xml_node_attr(stanza, "type");
    bool is_iq = strcmp(stanza->name, "iq") == 0;
    if (!to->node) {
        if (is_iq)
            muc_service_iq(m, stanza, from);
        else if (strcmp(stanza->name, "message") == 0 && !(type && strcmp(type, "error") == 0))
            reply_error(m, stanza, "cancel", "service-unavailable", NULL);
        return ROUTER_HANDLED;
    }
    muc_room *r = muc_room_find(m, to->node);
    if (!r) {
        bool is_presence = strcmp(stanza->name, "presence") == 0;
        if ((is_presence && !type) || (!is_presence && !(type && (strcmp(type, "error") == 0 ||
                                                                   strcmp(type, "result") == 0)))) {
            char text[160];
            not_open_text(m, to->node, text, sizeof text);
            reply_error(m, stanza, "cancel", "item-not-found", text);
        }
        return ROUTER_HANDLED;
    }
    if (is_iq)
        muc_room_iq(m, r, stanza, from, to->resource);
    else if (strcmp(stanza->name, "presence") == 0)
        handle_presence(m, r, stanza, from_s, from, to->resource);
    else
        handle_message(m, r, stanza, from_s, to->resource);
    /* the room may have closed meanwhile (never from a stanza today) */
    if (muc_room_find(m, to->node) == r)
        muc_remove_ghosts(m, r);
    return ROUTER_HANDLED;
}

/* ---- module ---- */

int muc_start(server *srv, char *err, size_t errlen)
{
    muc_service *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    m->srv = srv;
    srv->muc = m;
    if (router_register_service(&srv->router, srv->muc_domain, muc_route, m) != 0) {
        snprintf(err, errlen, "%s:0: muc.domain: \"%s\" cannot be registered (taken, or too many services)",
                 srv->cfg.path, srv->muc_domain);
        return -1;
    }
    schedule_handle(&srv->schedule, SCHEDULE_ROOM_OPEN, on_room_open, m);
    schedule_handle(&srv->schedule, SCHEDULE_ROOM_NOTICE, on_notice, m);
    schedule_handle(&srv->schedule, SCHEDULE_LIVE_START, on_notice, m);
    schedule_handle(&srv->schedule, SCHEDULE_LIVE_END, on_notice, m);
    schedule_handle(&srv->schedule, SCHEDULE_ROOM_CLOSE_WARNING, on_notice, m);
    schedule_handle(&srv->schedule, SCHEDULE_ROOM_CLOSE, on_room_close, m);
    if (event_hook_add(&srv->events, EVENT_RESERVATION_CANCELLED, 0, on_reservation_cancelled, m) != 0 ||
        event_hook_add(&srv->events, EVENT_LIVE_STARTED, 0, on_live, m) != 0 ||
        event_hook_add(&srv->events, EVENT_LIVE_ENDED, 0, on_live, m) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    uv_check_init(srv->loop, &m->check);
    m->check.data = m;
    uv_check_start(&m->check, on_check);
    uv_unref((uv_handle_t *)&m->check);
    m->check_on = true;

    open_ids ids = {0};
    store_txn *t;
    if (store_txn_begin(srv->store, false, &t) == STORE_OK) {
        muc_room_record_list(t, collect_open, &ids);
        store_txn_abort(t);
    }
    for (size_t i = 0; i < ids.n; i++)
        reopen(m, ids.ids[i]);
    free(ids.ids);
    return 0;
}

void muc_stop(server *srv)
{
    muc_service *m = srv->muc;
    if (!m || m->stopping)
        return;
    muc_flush(m);
    /* XEP-0045 9.2: each occupant hears that the service goes (332). */
    static const int codes[] = {110, 332};
    for (muc_room *r = m->rooms; r; r = r->hh.next) {
        for (size_t i = 0; i < r->nocc; i++) {
            muc_occupant *o = r->occ[i];
            xml_node *p = muc_presence_node(r, o, "unavailable", true, codes, 2, NULL);
            size_t head = 0;
            if (p && muc_wire(m, p, &m->wire, &head) == 0)
                muc_send_wire(m, r, &m->wire, head, o);
            xml_node_free(p);
        }
    }
    m->stopping = true;
    if (m->check_on) {
        m->check_on = false;
        uv_check_stop(&m->check);
        uv_close((uv_handle_t *)&m->check, NULL);
    }
}

void muc_free(server *srv)
{
    muc_service *m = srv->muc;
    if (!m)
        return;
    while (m->pend_head) {
        muc_pending *p = m->pend_head;
        m->pend_head = p->next;
        pending_free(p);
    }
    muc_room *r, *tmp;
    HASH_ITER(hh, m->rooms, r, tmp)
    {
        HASH_DEL(m->rooms, r);
        muc_room_free(r);
    }
    xml_buf_free(&m->tmp);
    xml_buf_free(&m->wire);
    free(m);
    srv->muc = NULL;
}

/* ---- the logs of closed rooms ---- */

#define PRUNE_EVERY_MS 60000 /* a pass over the room records at least this often */
#define PRUNE_ROOMS_MAX 32   /* logs removed in one pass; the next pass follows a second later */

typedef struct prune_scan {
    int64_t now, keep_ms, next;
    char ids[PRUNE_ROOMS_MAX][RES_ID_LEN + 1];
    size_t n;
} prune_scan;

static int prune_scan_one(void *ud, const muc_room_record *rec)
{
    prune_scan *p = ud;
    if (rec->state != MUC_ROOM_CLOSED || rec->log_removed_ms != 0)
        return 0;
    int64_t due = rec->closed_ms + p->keep_ms;
    if (due > p->now) {
        if (due < p->next)
            p->next = due;
    } else if (p->n < PRUNE_ROOMS_MAX) {
        memcpy(p->ids[p->n++], rec->id, RES_ID_LEN + 1);
    } else if (p->now + 1000 < p->next) {
        p->next = p->now + 1000; /* more are due: the next pass goes on */
    }
    return 0;
}

/* Removes the log of closed room id, and marks its record, in one
 * transaction: after a crash either both happened or neither. */
static void remove_log(muc_service *m, const char *id, int64_t now)
{
    server *srv = m->srv;
    store_txn *t;
    if (store_txn_begin(srv->store, true, &t) != STORE_OK)
        return;
    muc_room_record rec;
    uint64_t last = 0;
    int rc = muc_room_record_get(t, id, &rec);
    if (rc == STORE_OK && (rec.state != MUC_ROOM_CLOSED || rec.log_removed_ms != 0)) {
        store_txn_abort(t);
        muc_room_record_clear(&rec);
        return;
    }
    if (rc == STORE_OK)
        rc = muc_log_last_seq(t, id, &last);
    if (rc == STORE_OK)
        rc = muc_log_remove(t, id);
    if (rc == STORE_OK) {
        rec.log_removed_ms = now;
        rc = muc_room_record_put(t, &rec);
    }
    if (rc == STORE_OK)
        rc = store_txn_commit(t);
    else
        store_txn_abort(t);
    if (rc == STORE_OK) {
        m->logs_removed++;
        log_write(&srv->log, LOG_INFO, "muc", "room %s: its log of %llu messages removed (closed %lld s ago)", id,
                  (unsigned long long)last, (long long)((now - rec.closed_ms) / 1000));
    } else {
        log_write(&srv->log, LOG_ERROR, "muc", "room %s: cannot remove its log (%d)", id, rc);
    }
    muc_room_record_clear(&rec);
}

/* One pass: the logs of rooms closed at least muc.closed_log_keep_s ago
 * (PRUNE_ROOMS_MAX at most), and when the next pass is due. */
static void prune_logs(muc_service *m, int64_t now)
{
    server *srv = m->srv;
    m->prune_at_ms = now + PRUNE_EVERY_MS;
    if (srv->cfg.muc_closed_log_keep_s == 0)
        return;
    prune_scan *p = calloc(1, sizeof *p);
    if (!p)
        return;
    p->now = now;
    p->keep_ms = srv->cfg.muc_closed_log_keep_s * 1000;
    p->next = m->prune_at_ms;
    store_txn *t;
    int rc = store_txn_begin(srv->store, false, &t);
    if (rc == STORE_OK) {
        rc = muc_room_record_list(t, prune_scan_one, p);
        store_txn_abort(t);
    }
    if (rc != STORE_OK) {
        log_write(&srv->log, LOG_ERROR, "muc", "cannot read the room records to remove old logs (%d)", rc);
        free(p);
        return;
    }
    m->prune_at_ms = p->next;
    for (size_t i = 0; i < p->n; i++)
        remove_log(m, p->ids[i], now);
    free(p);
}

void muc_log_figures(server *srv, size_t *entries, uint64_t *removed)
{
    *entries = 0;
    *removed = srv->muc ? srv->muc->logs_removed : 0;
    store_txn *t;
    if (store_txn_begin(srv->store, false, &t) == STORE_OK) {
        if (muc_log_count(t, entries) != STORE_OK)
            *entries = 0;
        store_txn_abort(t);
    }
}

void muc_sweep(server *srv)
{
    muc_service *m = srv->muc;
    if (!m || m->stopping)
        return;
    int64_t now = now_ms();
    if (now >= m->prune_at_ms)
        prune_logs(m, now);
    int64_t every = (int64_t)srv->cfg.muc_count_interval_s * 1000;
    for (muc_room *r = m->rooms; r; r = r->hh.next) {
        if (r->restricted && r->count_sent != r->nocc && now - r->count_sent_ms >= every) {
            muc_send_count(m, r, NULL);
            muc_remove_ghosts(m, r);
        }
    }
}

void muc_reload(server *srv, const config *next)
{
    srv->cfg.muc_history_max = next->muc_history_max;
    srv->cfg.muc_presence_broadcast_limit = next->muc_presence_broadcast_limit;
    srv->cfg.muc_rate_per_s = next->muc_rate_per_s;
    srv->cfg.muc_rate_burst = next->muc_rate_burst;
    srv->cfg.muc_max_message_bytes = next->muc_max_message_bytes;
    srv->cfg.muc_count_interval_s = next->muc_count_interval_s;
    srv->cfg.muc_closed_log_keep_s = next->muc_closed_log_keep_s;
    if (srv->muc)
        srv->muc->prune_at_ms = 0; /* a pass under the new keep time at the next sweep */
}
