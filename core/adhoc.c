/* adhoc.c - XEP-0050 ad-hoc commands: the registry, the IQ handler, the
 * disco node handler and the sessions.
 *
 * Sessions live in a hash by id and in a list per requester (by full JID),
 * and in one of two lists ordered by time: live sessions by last use (the
 * sweep looks at the head only) and expired ones by the time they expired.
 * An expired session keeps only its id and owner (its state is freed at
 * once) so that the requester hears session-expired rather than
 * bad-sessionid; it is forgotten after a while, and the number kept is
 * bounded like the live ones.
 */
#include "adhoc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uthash.h>
#include <utlist.h>

#include "log.h"
#include "router.h"
#include "server.h"
#include "session.h"

#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
/* Expired sessions are remembered this long at least (or the timeout, if longer). */
#define ADHOC_EXPIRED_KEEP_MS 60000u

typedef struct adhoc_command {
    char *node; /* owned */
    char *name; /* owned */
    adhoc_visible_fn visible;
    adhoc_handler_fn fn;
    void (*free_state)(void *);
    void *ud;
} adhoc_command;

struct adhoc_owner;

typedef struct adhoc_session {
    char id[ADHOC_SESSIONID_LEN + 1];
    struct adhoc_owner *owner; /* NULL once unlinked */
    adhoc_command *cmd;        /* into the registry's fixed table */
    void *state;               /* the command's; freed with cmd->free_state */
    unsigned stage;
    unsigned allowed;
    adhoc_action default_action;
    uint64_t time_ms; /* live: last use; expired: when it expired */
    bool expired;
    bool linked;
    UT_hash_handle hh;                    /* registry.by_id */
    struct adhoc_session *prev, *next;    /* registry.live or registry.expired */
    struct adhoc_session *oprev, *onext;  /* owner's sessions */
} adhoc_session;

typedef struct adhoc_owner {
    char *full; /* owned, key */
    adhoc_session *sessions;
    unsigned nlive, nexpired;
    UT_hash_handle hh;
} adhoc_owner;

typedef struct adhoc_registry {
    adhoc_command cmds[ADHOC_MAX_COMMANDS];
    size_t ncmds;
    adhoc_session *by_id;
    adhoc_owner *owners;
    adhoc_session *live;    /* least recently used first */
    adhoc_session *expired; /* oldest first */
    size_t nlive, nexpired;
    adhoc_session *running; /* the session whose handler is being called */
    bool running_gone;      /* its requester went away during the call */
} adhoc_registry;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t timeout_ms(const server *srv)
{
    return (uint64_t)srv->cfg.adhoc_session_timeout_s * 1000;
}

static uint64_t expired_keep_ms(const server *srv)
{
    uint64_t t = timeout_ms(srv);
    return t > ADHOC_EXPIRED_KEEP_MS ? t : ADHOC_EXPIRED_KEEP_MS;
}

bool adhoc_visible_accounts(void *ud, const adhoc_requester *who)
{
    return who->kind == ADHOC_ACCOUNT;
}

/* ---- replies ---- */

void adhoc_reply_clear(adhoc_reply *r)
{
    dataform_free(r->form);
    for (size_t i = 0; i < r->nnotes; i++)
        free(r->notes[i].text);
    free(r->error_text);
    memset(r, 0, sizeof *r);
}

static void drop_payload(adhoc_reply *r)
{
    dataform_free(r->form);
    r->form = NULL;
    for (size_t i = 0; i < r->nnotes; i++)
        free(r->notes[i].text);
    r->nnotes = 0;
}

void adhoc_reply_executing(adhoc_reply *r, unsigned next_stage, unsigned allowed, adhoc_action default_action)
{
    allowed &= ADHOC_ALLOW(ADHOC_NEXT) | ADHOC_ALLOW(ADHOC_PREV) | ADHOC_ALLOW(ADHOC_COMPLETE);
    if (!allowed)
        allowed = ADHOC_ALLOW(ADHOC_COMPLETE);
    if (!(allowed & ADHOC_ALLOW(default_action))) {
        if (allowed & ADHOC_ALLOW(ADHOC_NEXT))
            default_action = ADHOC_NEXT;
        else if (allowed & ADHOC_ALLOW(ADHOC_COMPLETE))
            default_action = ADHOC_COMPLETE;
        else
            default_action = ADHOC_PREV;
    }
    r->status = ADHOC_EXECUTING;
    r->next_stage = next_stage;
    r->allowed = allowed;
    r->default_action = default_action;
}

void adhoc_reply_completed(adhoc_reply *r)
{
    r->status = ADHOC_COMPLETED;
}

void adhoc_reply_canceled(adhoc_reply *r)
{
    r->status = ADHOC_CANCELED;
}

void adhoc_reply_form(adhoc_reply *r, dataform *form)
{
    if (r->form != form)
        dataform_free(r->form);
    r->form = form;
}

static char *vformat(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        return NULL;
    return s;
}

void adhoc_reply_note(adhoc_reply *r, adhoc_note_type type, const char *fmt, ...)
{
    if (r->nnotes >= ADHOC_MAX_NOTES)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *text = vformat(fmt, ap);
    va_end(ap);
    if (!text)
        return;
    r->notes[r->nnotes++] = (adhoc_note){type, text};
}

static void set_error(adhoc_reply *r, const char *type, const char *condition, const char *specific,
                      bool keep_session, char *text)
{
    drop_payload(r);
    free(r->error_text);
    r->is_error = true;
    snprintf(r->error_type, sizeof r->error_type, "%s", type ? type : "cancel");
    snprintf(r->error_condition, sizeof r->error_condition, "%s", condition ? condition : "undefined-condition");
    snprintf(r->error_specific, sizeof r->error_specific, "%s", specific ? specific : "");
    r->error_text = text;
    r->keep_session = keep_session;
}

void adhoc_reply_error(adhoc_reply *r, const char *type, const char *condition, const char *specific,
                       bool keep_session, const char *fmt, ...)
{
    char *text = NULL;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        text = vformat(fmt, ap);
        va_end(ap);
    }
    set_error(r, type, condition, specific, keep_session, text);
}

void adhoc_reply_bad_field(adhoc_reply *r, const char *var, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *reason = vformat(fmt, ap);
    va_end(ap);
    char *text = NULL;
    if (asprintf(&text, "%s: %s", var ? var : "form", reason ? reason : "invalid") < 0)
        text = NULL;
    free(reason);
    set_error(r, "modify", "bad-request", "bad-payload", true, text);
}

/* ---- sessions ---- */

static adhoc_owner *owner_find(adhoc_registry *reg, const char *full)
{
    adhoc_owner *o = NULL;
    HASH_FIND_STR(reg->owners, full, o);
    return o;
}

/* Removes s from every table (its memory and state stay with the caller). */
static void session_unlink(adhoc_registry *reg, adhoc_session *s)
{
    if (!s->linked)
        return;
    s->linked = false;
    HASH_DELETE(hh, reg->by_id, s);
    if (s->expired) {
        DL_DELETE(reg->expired, s);
        reg->nexpired--;
    } else {
        DL_DELETE(reg->live, s);
        reg->nlive--;
    }
    adhoc_owner *o = s->owner;
    if (o) {
        DL_DELETE2(o->sessions, s, oprev, onext);
        if (s->expired)
            o->nexpired--;
        else
            o->nlive--;
        if (!o->sessions) {
            HASH_DELETE(hh, reg->owners, o);
            free(o->full);
            free(o);
        }
        s->owner = NULL;
    }
}

static void session_free_state(adhoc_session *s)
{
    if (s->state && s->cmd->free_state)
        s->cmd->free_state(s->state);
    s->state = NULL;
}

static void session_destroy(adhoc_registry *reg, adhoc_session *s)
{
    session_unlink(reg, s);
    session_free_state(s);
    free(s);
}

/* Moves a live session to the expired list, freeing its state. */
static void session_expire(adhoc_registry *reg, adhoc_session *s, uint64_t now)
{
    session_free_state(s);
    DL_DELETE(reg->live, s);
    reg->nlive--;
    s->owner->nlive--;
    s->expired = true;
    s->time_ms = now;
    DL_APPEND(reg->expired, s);
    reg->nexpired++;
    s->owner->nexpired++;
    /* Bounded like the live ones: forget the owner's oldest, then the server's. */
    if (s->owner->nexpired > ADHOC_MAX_SESSIONS_PER_REQUESTER) {
        adhoc_session *old = NULL;
        for (adhoc_session *k = s->owner->sessions; k; k = k->onext)
            if (k->expired && k != s && (!old || k->time_ms < old->time_ms))
                old = k;
        if (old)
            session_destroy(reg, old);
    }
    if (reg->nexpired > ADHOC_MAX_SESSIONS && reg->expired != s)
        session_destroy(reg, reg->expired);
}

/* A new live session for `full`; NULL when out of memory. */
static adhoc_session *session_new(adhoc_registry *reg, const char *full, adhoc_command *cmd)
{
    adhoc_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    adhoc_owner *o = owner_find(reg, full);
    if (!o) {
        o = calloc(1, sizeof *o);
        if (!o || !(o->full = strdup(full))) {
            free(o);
            free(s);
            return NULL;
        }
        HASH_ADD_KEYPTR(hh, reg->owners, o->full, strlen(o->full), o);
    }
    adhoc_session *dup;
    do { /* ids are random: a clash is as good as impossible, but costs nothing to rule out */
        server_random_id(s->id, sizeof s->id, ADHOC_SESSIONID_LEN);
        HASH_FIND_STR(reg->by_id, s->id, dup);
    } while (dup);
    s->owner = o;
    s->cmd = cmd;
    s->time_ms = now_ms();
    s->linked = true;
    HASH_ADD_STR(reg->by_id, id, s);
    DL_APPEND(reg->live, s);
    DL_APPEND2(o->sessions, s, oprev, onext);
    reg->nlive++;
    o->nlive++;
    return s;
}

static void touch(adhoc_registry *reg, adhoc_session *s)
{
    s->time_ms = now_ms();
    DL_DELETE(reg->live, s);
    DL_APPEND(reg->live, s);
}

void adhoc_sweep(server *srv)
{
    adhoc_registry *reg = srv->adhoc;
    if (!reg)
        return;
    uint64_t now = now_ms();
    uint64_t limit = timeout_ms(srv);
    while (reg->live && now - reg->live->time_ms >= limit && reg->live != reg->running)
        session_expire(reg, reg->live, now);
    uint64_t keep = expired_keep_ms(srv);
    while (reg->expired && now - reg->expired->time_ms >= keep)
        session_destroy(reg, reg->expired);
}

void adhoc_requester_gone(server *srv, const char *full)
{
    adhoc_registry *reg = srv->adhoc;
    if (!reg || !full)
        return;
    adhoc_owner *o = owner_find(reg, full);
    while (o) {
        adhoc_session *s = o->sessions;
        bool last = s->onext == NULL; /* the owner goes with its last session */
        if (s == reg->running) {
            session_unlink(reg, s); /* freed when its handler returns */
            reg->running_gone = true;
        } else {
            session_destroy(reg, s);
        }
        if (last)
            break;
    }
}

size_t adhoc_session_count(const server *srv)
{
    return srv->adhoc ? srv->adhoc->nlive : 0;
}

/* ---- registry ---- */

static adhoc_command *find_command(adhoc_registry *reg, const char *node)
{
    for (size_t i = 0; i < reg->ncmds; i++)
        if (strcmp(reg->cmds[i].node, node) == 0)
            return &reg->cmds[i];
    return NULL;
}

static bool visible(const adhoc_command *c, const adhoc_requester *who)
{
    return !c->visible || c->visible(c->ud, who);
}

int adhoc_register(server *srv, const char *node, const char *name, adhoc_visible_fn vis, adhoc_handler_fn fn,
                   void (*free_state)(void *), void *ud)
{
    adhoc_registry *reg = srv->adhoc;
    if (!reg || !node || !node[0] || strlen(node) > ADHOC_MAX_NODE_LEN || !name || !fn ||
        strcmp(node, ADHOC_NS) == 0 || reg->ncmds >= ADHOC_MAX_COMMANDS || find_command(reg, node))
        return -1;
    adhoc_command c = {strdup(node), strdup(name), vis, fn, free_state, ud};
    if (!c.node || !c.name) {
        free(c.node);
        free(c.name);
        return -1;
    }
    reg->cmds[reg->ncmds++] = c;
    return 0;
}

int adhoc_unregister(server *srv, const char *node)
{
    adhoc_registry *reg = srv->adhoc;
    adhoc_command *c = reg && node ? find_command(reg, node) : NULL;
    if (!c)
        return -1;
    /* Its sessions end (their states freed by the command's free_state)... */
    adhoc_session *s, *tmp;
    HASH_ITER(hh, reg->by_id, s, tmp)
    {
        if (s->cmd != c)
            continue;
        if (s == reg->running) {
            session_unlink(reg, s); /* freed when its handler returns */
            reg->running_gone = true;
        } else {
            session_destroy(reg, s);
        }
    }
    /* ...then the table closes the gap; sessions point into it. */
    free(c->node);
    free(c->name);
    size_t at = (size_t)(c - reg->cmds);
    memmove(&reg->cmds[at], &reg->cmds[at + 1], (reg->ncmds - at - 1) * sizeof reg->cmds[0]);
    reg->ncmds--;
    HASH_ITER(hh, reg->by_id, s, tmp)
    {
        if (s->cmd > c)
            s->cmd--;
    }
    return 0;
}

/* ---- building answers ---- */

static const char *const action_names[] = {"execute", "next", "prev", "complete", "cancel"};
static const char *const status_names[] = {"completed", "executing", "canceled"};
static const char *const note_names[] = {"info", "warn", "error"};

/* An error answer to iq: the <command/> it carried is echoed without its
 * payload (a submitted form may hold passwords), and `specific` (a
 * XEP-0050 condition) is added after the text. */
static xml_node *error_answer(server *srv, const xml_node *iq, const char *type, const char *condition,
                              const char *specific, const char *text)
{
    xml_node *err = router_error_stanza(srv, iq, type, condition, text);
    if (!err)
        return NULL;
    xml_node *echoed = xml_node_child(err, "command", ADHOC_NS);
    if (echoed) {
        while (echoed->children) {
            xml_node *k = echoed->children;
            xml_node_remove(echoed, k);
            xml_node_free(k);
        }
    }
    xml_node *e = xml_node_child(err, "error", XML_NS_CLIENT);
    if (e && specific && specific[0])
        xml_node_add_child(e, specific, ADHOC_NS);
    return err;
}

static xml_node *result_answer(const xml_node *iq, const char *node, const char *sessionid, adhoc_status status,
                               const adhoc_reply *r, unsigned allowed, adhoc_action default_action)
{
    xml_node *res = router_iq_result(iq);
    if (!res)
        return NULL;
    xml_node *cmd = xml_node_add_child(res, "command", ADHOC_NS);
    if (!cmd) {
        xml_node_free(res);
        return NULL;
    }
    xml_node_set_attr(cmd, "node", node);
    xml_node_set_attr(cmd, "sessionid", sessionid);
    xml_node_set_attr(cmd, "status", status_names[status]);
    if (status == ADHOC_EXECUTING) {
        xml_node *acts = xml_node_add_child(cmd, "actions", ADHOC_NS);
        if (acts) {
            xml_node_set_attr(acts, "execute", action_names[default_action]);
            /* XEP-0050 lists them as prev, next, complete */
            static const adhoc_action order[] = {ADHOC_PREV, ADHOC_NEXT, ADHOC_COMPLETE};
            for (size_t i = 0; i < 3; i++)
                if (allowed & ADHOC_ALLOW(order[i]))
                    xml_node_add_child(acts, action_names[order[i]], ADHOC_NS);
        }
    }
    if (r) {
        for (size_t i = 0; i < r->nnotes; i++) {
            xml_node *n = xml_node_add_child(cmd, "note", ADHOC_NS);
            if (n) {
                xml_node_set_attr(n, "type", note_names[r->notes[i].type]);
                xml_node_add_text(n, r->notes[i].text, strlen(r->notes[i].text));
            }
        }
        if (r->form) {
            xml_node *x = dataform_to_xml(r->form);
            if (!x) {
                xml_node_free(res);
                return NULL;
            }
            xml_node_append(cmd, x);
        }
    }
    return res;
}

/* ---- execution ---- */

static int parse_action(const char *s, adhoc_action *out)
{
    if (!s) {
        *out = ADHOC_EXECUTE;
        return 0;
    }
    for (size_t i = 0; i < sizeof action_names / sizeof action_names[0]; i++) {
        if (strcmp(s, action_names[i]) == 0) {
            *out = (adhoc_action)i;
            return 0;
        }
    }
    return -1;
}

/* Calls the handler for session s and builds the answer; ends the session
 * when the reply says so. */
static xml_node *run(server *srv, adhoc_registry *reg, adhoc_session *s, const adhoc_requester *who,
                     const xml_node *iq, adhoc_action action, const dataform *form)
{
    adhoc_command *cmd = s->cmd;
    adhoc_reply reply;
    memset(&reply, 0, sizeof reply);
    adhoc_request req = {srv, who, cmd->node, s->id, action, form, s->stage, &s->state};
    reg->running = s;
    reg->running_gone = false;
    cmd->fn(cmd->ud, &req, &reply);
    reg->running = NULL;
    if (reg->running_gone) {
        /* The requester's stream ended during the call: nobody to answer. */
        session_free_state(s);
        free(s);
        adhoc_reply_clear(&reply);
        return NULL;
    }
    xml_node *ans;
    bool first = s->stage == 0 && action == ADHOC_EXECUTE;
    if (reply.is_error) {
        ans = error_answer(srv, iq, reply.error_type, reply.error_condition, reply.error_specific,
                           reply.error_text);
        if (reply.keep_session && !first)
            touch(reg, s);
        else
            session_destroy(reg, s);
    } else {
        ans = result_answer(iq, cmd->node, s->id, reply.status, &reply, reply.allowed, reply.default_action);
        if (reply.status == ADHOC_EXECUTING) {
            s->stage = reply.next_stage;
            s->allowed = reply.allowed;
            s->default_action = reply.default_action;
            touch(reg, s);
        } else {
            session_destroy(reg, s);
        }
    }
    adhoc_reply_clear(&reply);
    if (!ans)
        ans = router_error_stanza(srv, iq, "wait", "internal-server-error", NULL);
    return ans;
}

/* The full JID string of the requester (from the IQ, which the router stamped). */
xml_node *adhoc_handle(server *srv, const adhoc_requester *who, const xml_node *iq)
{
    adhoc_registry *reg = srv->adhoc;
    const char *from = xml_node_attr(iq, "from");
    const char *type = xml_node_attr(iq, "type");
    const xml_node *c = xml_node_child(iq, "command", ADHOC_NS);
    if (!reg || !from || !c)
        return router_error_stanza(srv, iq, "cancel", "service-unavailable", NULL);
    if (!type || strcmp(type, "set") != 0)
        return error_answer(srv, iq, "modify", "bad-request", NULL, "commands are run with an IQ of type set");
    const char *node = xml_node_attr(c, "node");
    const char *sid = xml_node_attr(c, "sessionid");
    adhoc_action action;
    if (parse_action(xml_node_attr(c, "action"), &action) != 0)
        return error_answer(srv, iq, "modify", "bad-request", "malformed-action", "unknown action");
    if (!node || !node[0])
        return error_answer(srv, iq, "modify", "bad-request", NULL, "the command has no node");

    const xml_node *x = xml_node_child(c, "x", DATAFORM_NS);
    dataform *form = NULL;
    char ferr[256];
    adhoc_session *s = NULL;
    uint64_t now = now_ms();

    if (sid) {
        HASH_FIND_STR(reg->by_id, sid, s);
        if (!s || !s->owner || strcmp(s->owner->full, from) != 0 || strcmp(s->cmd->node, node) != 0)
            return error_answer(srv, iq, "modify", "bad-request", "bad-sessionid", "no such session");
        if (!s->expired && now - s->time_ms >= timeout_ms(srv))
            session_expire(reg, s, now);
        if (s->expired)
            return error_answer(srv, iq, "cancel", "not-allowed", "session-expired", "the session has expired");
        if (!visible(s->cmd, who)) {
            session_destroy(reg, s);
            return error_answer(srv, iq, "cancel", "forbidden", NULL, NULL);
        }
        if (action == ADHOC_CANCEL) {
            xml_node *ans = result_answer(iq, node, s->id, ADHOC_CANCELED, NULL, 0, ADHOC_EXECUTE);
            session_destroy(reg, s);
            return ans ? ans : router_error_stanza(srv, iq, "wait", "internal-server-error", NULL);
        }
        if (action == ADHOC_EXECUTE)
            action = s->default_action;
        else if (!(s->allowed & ADHOC_ALLOW(action)))
            return error_answer(srv, iq, "modify", "bad-request", "bad-action",
                                "that action is not offered at this stage");
    } else {
        adhoc_command *cmd = find_command(reg, node);
        if (!cmd)
            return error_answer(srv, iq, "cancel", "item-not-found", NULL, "no such command");
        if (!visible(cmd, who))
            return error_answer(srv, iq, "cancel", "forbidden", NULL, NULL);
        if (action != ADHOC_EXECUTE)
            return error_answer(srv, iq, "modify", "bad-request", "bad-action",
                                "a new session starts with the action execute");
        adhoc_owner *o = owner_find(reg, from);
        if (o && o->nlive >= ADHOC_MAX_SESSIONS_PER_REQUESTER)
            return error_answer(srv, iq, "cancel", "not-allowed", NULL,
                                "too many command sessions open: complete or cancel one first");
        if (reg->nlive >= ADHOC_MAX_SESSIONS)
            return error_answer(srv, iq, "wait", "resource-constraint", NULL, "too many command sessions open");
        if (x) { /* checked before the session exists, so a bad form costs nothing */
            int rc = dataform_parse(x, &form, ferr, sizeof ferr);
            if (rc != DATAFORM_OK || (form->type != DATAFORM_SUBMIT && form->type != DATAFORM_CANCEL)) {
                dataform_free(form);
                return error_answer(srv, iq, "modify", "bad-request", "bad-payload",
                                    rc != DATAFORM_OK ? ferr : "a submitted form has type submit");
            }
        }
        s = session_new(reg, from, cmd);
        if (!s) {
            dataform_free(form);
            return router_error_stanza(srv, iq, "wait", "resource-constraint", NULL);
        }
        xml_node *ans = run(srv, reg, s, who, iq, ADHOC_EXECUTE, form);
        dataform_free(form);
        return ans;
    }
    if (x) {
        int rc = dataform_parse(x, &form, ferr, sizeof ferr);
        if (rc != DATAFORM_OK || (form->type != DATAFORM_SUBMIT && form->type != DATAFORM_CANCEL)) {
            dataform_free(form);
            touch(reg, s);
            return error_answer(srv, iq, "modify", "bad-request", "bad-payload",
                                rc != DATAFORM_OK ? ferr : "a submitted form has type submit");
        }
    }
    xml_node *ans = run(srv, reg, s, who, iq, action, form);
    dataform_free(form);
    return ans;
}

/* ---- router and disco glue ---- */

static void send_answer(server *srv, session *s, xml_node *ans)
{
    if (!ans)
        return;
    if (s) {
        stream_send(s, ans);
        xml_node_free(ans);
    } else {
        router_route(srv, NULL, ans);
    }
}

/* Who is asking: a local session tells account from guest; anyone else is remote. */
static void requester_of(server *srv, session *s, const jid *from, adhoc_requester *who)
{
    who->from = from;
    if (s && s->is_guest) {
        who->kind = ADHOC_GUEST;
        who->account = NULL;
    } else if (s && s->state == SESSION_BOUND && s->jid.node) {
        who->kind = ADHOC_ACCOUNT;
        who->account = s->jid.node;
    } else {
        who->kind = ADHOC_REMOTE;
        who->account = NULL;
    }
}

/* Commands live on the server's JID: not on an account's bare JID. */
static bool for_server(const xml_node *iq)
{
    const char *to = xml_node_attr(iq, "to");
    return !to || !strchr(to, '@');
}

static router_result on_iq(void *ud, server *srv, session *s, xml_node *iq, const jid *from)
{
    if (!for_server(iq))
        return ROUTER_PASS;
    adhoc_requester who;
    requester_of(srv, s, from, &who);
    send_answer(srv, s, adhoc_handle(srv, &who, iq));
    return ROUTER_HANDLED;
}

static void add_identity(xml_node *q, const char *type, const char *name)
{
    xml_node *id = xml_node_add_child(q, "identity", NS_DISCO_INFO);
    xml_node_set_attr(id, "category", "automation");
    xml_node_set_attr(id, "type", type);
    if (name)
        xml_node_set_attr(id, "name", name);
}

static void add_feature(xml_node *q, const char *var)
{
    xml_node *f = xml_node_add_child(q, "feature", NS_DISCO_INFO);
    xml_node_set_attr(f, "var", var);
}

static router_result on_disco_node(void *ud, server *srv, session *s, const jid *from, const char *node, bool items,
                                   xml_node *query, const char **error)
{
    adhoc_registry *reg = srv->adhoc;
    adhoc_requester who;
    requester_of(srv, s, from, &who);
    if (strcmp(node, ADHOC_NS) == 0) {
        if (items) {
            for (size_t i = 0; i < reg->ncmds; i++) {
                if (!visible(&reg->cmds[i], &who))
                    continue;
                xml_node *it = xml_node_add_child(query, "item", NS_DISCO_ITEMS);
                xml_node_set_attr(it, "jid", srv->cfg.domain);
                xml_node_set_attr(it, "node", reg->cmds[i].node);
                xml_node_set_attr(it, "name", reg->cmds[i].name);
            }
        } else {
            add_identity(query, "command-list", "Commands");
            add_feature(query, NS_DISCO_ITEMS);
        }
        return ROUTER_HANDLED;
    }
    adhoc_command *cmd = find_command(reg, node);
    if (!cmd)
        return ROUTER_PASS;
    if (!visible(cmd, &who)) {
        *error = "forbidden";
        return ROUTER_HANDLED;
    }
    if (!items) {
        add_identity(query, "command-node", cmd->name);
        add_feature(query, ADHOC_NS);
        add_feature(query, DATAFORM_NS);
    }
    return ROUTER_HANDLED;
}

int adhoc_init(server *srv)
{
    if (srv->adhoc)
        return 0;
    srv->adhoc = calloc(1, sizeof *srv->adhoc);
    if (!srv->adhoc)
        return -1;
    if (router_register_iq(&srv->router, ADHOC_NS, on_iq, NULL) != 0 ||
        router_register_node(&srv->router, on_disco_node, NULL) != 0 ||
        router_add_feature(&srv->router, ADHOC_NS) != 0) {
        log_write(&srv->log, LOG_ERROR, "adhoc", "cannot register with the router (tables full)");
        return -1;
    }
    return 0;
}

void adhoc_free(server *srv)
{
    adhoc_registry *reg = srv->adhoc;
    if (!reg)
        return;
    while (reg->live)
        session_destroy(reg, reg->live);
    while (reg->expired)
        session_destroy(reg, reg->expired);
    for (size_t i = 0; i < reg->ncmds; i++) {
        free(reg->cmds[i].node);
        free(reg->cmds[i].name);
    }
    free(reg);
    srv->adhoc = NULL;
}
