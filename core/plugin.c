/* plugin.c - loading plugins and the host side of the plugin API
 * (core/plugin.h, core/include/onair/plugin.h, specs/plugin-api.md).
 *
 * One onair_host per loaded plugin holds what the plugin registered: its
 * hooks (in the per-event lists of the plugins state, each entry naming its
 * plugin), IQ handlers, commands, timers, watched fds, services (in the
 * plugins state, each naming its plugin) and queued work.  Unloading walks
 * those lists, so a plugin never leaves anything behind.
 */
#include "plugin.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <utlist.h>
#include <uv.h>

#include <onair/plugin.h>

#include "account.h"
#include "adhoc.h"
#include "dataform.h"
#include "event.h"
#include "reservation.h"
#include "router.h"
#include "server.h"
#include "session.h"
#include "store.h"

#define NEVENTS (ONAIR_EVENT_STANZA_OUT + 1)
#define MAX_KEY_BYTES 511
#define MAX_SERVICE_NAME 64
#define MAX_SERVICES 64

/* ---- records ---- */

typedef struct plugin_hook {
    onair_host *h;
    onair_hook_fn fn;
    void *ud;
    int priority;
} plugin_hook;

typedef struct plugin_iq {
    struct plugin_iq *next;
    onair_host *h;
    char *ns; /* owned */
    onair_iq_fn fn;
    void *ud;
} plugin_iq;

typedef struct plugin_cmd {
    struct plugin_cmd *next;
    onair_host *h;
    char *node, *title, *instructions; /* owned */
    onair_field *fields;               /* owned copies (strings owned too) */
    size_t nfields;
    onair_command_fn fn;
    void *ud;
} plugin_cmd;

typedef struct plugin_timer {
    uv_timer_t t;
    struct plugin_timer *next;
    onair_host *h;
    uint64_t id;
    bool once;
    onair_timer_fn fn;
    void *ud;
} plugin_timer;

typedef struct plugin_work {
    uv_work_t req;
    struct plugin_work *prev, *next;
    onair_host *h;
    onair_work_fn work;
    onair_done_fn done;
    void *data;
} plugin_work;

typedef struct plugin_watch {
    uv_poll_t poll;
    struct plugin_watch *next;
    onair_host *h;
    int fd;
    int events; /* ONAIR_FD_READ | ONAIR_FD_WRITE */
    onair_fd_fn fn;
    void *ud;
} plugin_watch;

typedef struct plugin_service {
    char name[MAX_SERVICE_NAME + 1];
    onair_host *h;
    const void *table; /* the provider's */
    void *ud;
} plugin_service;

typedef struct plugin_value {
    char *str; /* owned; STRING keys */
    int64_t num;
} plugin_value;

struct onair_host {
    server *srv;
    char name[CONFIG_PLUGIN_NAME_MAX + 1];
    char module[CONFIG_PLUGIN_NAME_MAX + 8]; /* "plugin <name>", for the log */
    char db[CONFIG_PLUGIN_NAME_MAX + 8];     /* "plugin.<name>", its store database */
    void *dl;
    const onair_plugin_info *info; /* borrowed from the object */
    void *state;                   /* the plugin's */
    size_t nkeys;                  /* declared configuration keys */
    plugin_value *values;          /* owned, one per declared key */
    plugin_iq *iqs;
    plugin_cmd *cmds;
    plugin_timer *timers;
    plugin_watch *watches;
    plugin_work *works; /* queued or running */
    unsigned pending;
    bool active; /* loaded and not unloaded */
    bool in_txn;
    struct onair_host *next_zombie;
};

struct onair_txn {
    onair_host *h;
    store_txn *t;
};

struct onair_command {
    plugin_cmd *c;
    const adhoc_request *req;
    adhoc_reply *reply;
    dataform *result;
    char *tmp[DATAFORM_MAX_FIELDS];
    size_t ntmp;
    char *requester; /* owned: the requester's full JID, made when asked */
    bool failed;
};

typedef struct plugins {
    onair_host *loaded[CONFIG_MAX_PLUGINS]; /* in load order */
    size_t nloaded;
    onair_host *zombies; /* unloaded, waiting for their queued work */
    plugin_hook *hooks[NEVENTS];
    size_t nhooks[NEVENTS];
    uint64_t next_timer_id;
    plugin_service services[MAX_SERVICES];
    size_t nservices;
    char *dir; /* owned: the folder plugins are loaded from */
    onair_host_api api;
} plugins;

/* ---- events: the plugin API's events and the server's ----
 *
 * One row per plugin event.  `internal` is the event.h event that raises
 * it, or -1 while no module raises it yet.  When the room and media
 * modules add their events, wiring one is putting its name here, e.g.
 * EVENT_ROOM_OPENED in place of -1 (its payload is a const event_room *,
 * or const event_live * for the live events; event.h). */
enum payload_kind { PAYLOAD_RESERVATION, PAYLOAD_ROOM, PAYLOAD_LIVE, PAYLOAD_STANZA };

static const struct event_map {
    onair_event event;
    int internal;
    enum payload_kind payload;
    const char *name;
} event_map[] = {
    {ONAIR_EVENT_RESERVATION_BOOKED, EVENT_RESERVATION_BOOKED, PAYLOAD_RESERVATION, "reservation booked"},
    {ONAIR_EVENT_RESERVATION_RECONFIRMED, EVENT_RESERVATION_RECONFIRMED, PAYLOAD_RESERVATION,
     "reservation reconfirmed"},
    {ONAIR_EVENT_RESERVATION_CANCELLED, EVENT_RESERVATION_CANCELLED, PAYLOAD_RESERVATION, "reservation cancelled"},
    {ONAIR_EVENT_ROOM_OPENED, -1 /* EVENT_ROOM_OPENED */, PAYLOAD_ROOM, "room opened"},
    {ONAIR_EVENT_ROOM_MESSAGE, -1 /* EVENT_ROOM_MESSAGE */, PAYLOAD_ROOM, "room message"},
    {ONAIR_EVENT_ROOM_CLOSED, -1 /* EVENT_ROOM_CLOSED */, PAYLOAD_ROOM, "room closed"},
    {ONAIR_EVENT_LIVE_STARTED, EVENT_LIVE_STARTED, PAYLOAD_LIVE, "live started"},
    {ONAIR_EVENT_LIVE_ENDED, EVENT_LIVE_ENDED, PAYLOAD_LIVE, "live ended"},
    /* raised by stream.c and session.c through plugins_stanza_in / _out */
    {ONAIR_EVENT_STANZA_IN, -1, PAYLOAD_STANZA, "stanza in"},
    {ONAIR_EVENT_STANZA_OUT, -1, PAYLOAD_STANZA, "stanza out"},
};

static bool event_known(int ev)
{
    return ev >= ONAIR_EVENT_RESERVATION_BOOKED && ev <= ONAIR_EVENT_STANZA_OUT;
}

/* Calls the hooks of ev.  Returns true when a stanza hook dropped. */
static bool run_hooks(plugins *P, onair_event ev, const void *payload)
{
    size_t n = P->nhooks[ev];
    if (n == 0)
        return false;
    /* A snapshot: a hook may add hooks while the list is walked. */
    plugin_hook stack[16];
    plugin_hook *copy = n <= 16 ? stack : malloc(n * sizeof *copy);
    if (!copy)
        return false;
    memcpy(copy, P->hooks[ev], n * sizeof *copy);
    bool stanza = ev == ONAIR_EVENT_STANZA_IN || ev == ONAIR_EVENT_STANZA_OUT;
    bool dropped = false;
    for (size_t i = 0; i < n && !dropped; i++) {
        if (!copy[i].h->active)
            continue;
        int rc = copy[i].fn(copy[i].ud, ev, payload);
        if (stanza && rc == ONAIR_HOOK_DROP)
            dropped = true;
    }
    if (copy != stack)
        free(copy);
    return dropped;
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* The plugins' view of a reservation (no passwords); room is its buffer
 * for the room JID. */
static void reservation_payload(server *srv, const reservation *r, char *room, size_t roomcap,
                                onair_reservation_event *e)
{
    snprintf(room, roomcap, "%s@%s", r->id, nz(srv->muc_domain));
    *e = (onair_reservation_event){
        .id = r->id, .owner = nz(r->owner), .email = nz(r->email), .channel = r->channel,
        .title = nz(r->title), .genre = nz(r->genre), .summary = nz(r->summary), .detail = nz(r->detail),
        .url = nz(r->url), .level = res_level_name(r->level), .state = res_state_name(r->state),
        .cancel_reason = r->cancel_reason, .friends = nz(r->friends), .room_jid = room, .start = r->start,
        .end = r->end, .deadline = r->deadline, .fee = r->fee, .capacity = r->capacity,
        .bandwidth_kbps = r->bandwidth_kbps, .show_email = r->show_email, .show_url = r->show_url,
    };
}

static int on_internal_event(void *ud, server *srv, event_type type, const void *payload)
{
    plugins *P = ud;
    for (size_t i = 0; i < sizeof event_map / sizeof event_map[0]; i++) {
        const struct event_map *m = &event_map[i];
        if (m->internal != (int)type || P->nhooks[m->event] == 0)
            continue;
        switch (m->payload) {
        case PAYLOAD_RESERVATION: {
            char room[RES_ID_LEN + 2 + 256];
            onair_reservation_event e;
            reservation_payload(srv, payload, room, sizeof room, &e);
            run_hooks(P, m->event, &e);
            break;
        }
        case PAYLOAD_ROOM: {
            const event_room *r = payload;
            onair_room_event e = {.room = r->room, .reservation_id = r->reservation_id,
                                  .occupant_jid = r->occupant_jid, .nick = r->nick, .body = r->body,
                                  .stanza = (const onair_stanza *)r->stanza, .time_ms = r->time_ms};
            run_hooks(P, m->event, &e);
            break;
        }
        case PAYLOAD_LIVE: {
            const event_live *l = payload;
            onair_live_event e = {.reservation_id = l->reservation_id, .channel = l->channel, .room = l->room,
                                  .time_ms = l->time_ms};
            run_hooks(P, m->event, &e);
            break;
        }
        case PAYLOAD_STANZA:
            break;
        }
    }
    return EVENT_CONTINUE;
}

bool plugins_hook_stanza_in(const server *srv)
{
    return srv->plugins && srv->plugins->nhooks[ONAIR_EVENT_STANZA_IN] > 0;
}

bool plugins_hook_stanza_out(const server *srv)
{
    return srv->plugins && srv->plugins->nhooks[ONAIR_EVENT_STANZA_OUT] > 0;
}

static bool stanza_hooks(server *srv, onair_event ev, session *s, xml_node *stanza)
{
    if (!srv->plugins || srv->plugins->nhooks[ev] == 0)
        return true;
    onair_stanza_event e = {.stanza = (onair_stanza *)stanza, .session_jid = s->full, .is_guest = s->is_guest};
    return !run_hooks(srv->plugins, ev, &e);
}

bool plugins_stanza_in(server *srv, session *s, xml_node *stanza)
{
    return stanza_hooks(srv, ONAIR_EVENT_STANZA_IN, s, stanza);
}

bool plugins_stanza_out(server *srv, session *s, xml_node *stanza)
{
    return stanza_hooks(srv, ONAIR_EVENT_STANZA_OUT, s, stanza);
}

/* ---- the host API: server, log, configuration ---- */

static const char *api_plugin_name(onair_host *h)
{
    return h->name;
}

static const char *api_server_domain(onair_host *h)
{
    return h->srv->cfg.domain;
}

static const char *api_room_domain(onair_host *h)
{
    return nz(h->srv->muc_domain);
}

static void api_vlog(onair_host *h, onair_log_level level, const char *fmt, va_list ap)
{
    log_level l = level <= ONAIR_LOG_DEBUG ? LOG_DEBUG
                  : level == ONAIR_LOG_INFO ? LOG_INFO
                  : level == ONAIR_LOG_WARN ? LOG_WARN
                                            : LOG_ERROR;
    if (!log_enabled(&h->srv->log, l) || !fmt)
        return;
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, ap);
    log_write(&h->srv->log, l, h->module, "%s", buf);
}

static void api_log(onair_host *h, onair_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    api_vlog(h, level, fmt, ap);
    va_end(ap);
}

static const onair_config_key *find_key(const onair_host *h, const char *key, size_t *index)
{
    for (size_t i = 0; key && i < h->nkeys; i++) {
        if (strcmp(h->info->config[i].name, key) == 0) {
            *index = i;
            return &h->info->config[i];
        }
    }
    return NULL;
}

static const char *api_config_string(onair_host *h, const char *key)
{
    size_t i;
    const onair_config_key *k = find_key(h, key, &i);
    return k && k->type == ONAIR_CONFIG_STRING && h->values ? h->values[i].str : NULL;
}

static int64_t api_config_int(onair_host *h, const char *key)
{
    size_t i;
    const onair_config_key *k = find_key(h, key, &i);
    return k && k->type == ONAIR_CONFIG_INT && h->values ? h->values[i].num : 0;
}

static bool api_config_bool(onair_host *h, const char *key)
{
    size_t i;
    const onair_config_key *k = find_key(h, key, &i);
    return k && k->type == ONAIR_CONFIG_BOOL && h->values ? h->values[i].num != 0 : false;
}

/* ---- hooks ---- */

static int api_hook(onair_host *h, onair_event event, int priority, onair_hook_fn fn, void *ud)
{
    plugins *P = h->srv->plugins;
    if (!event_known((int)event) || !fn)
        return ONAIR_E_INVALID;
    size_t n = P->nhooks[event];
    if (n >= 1024)
        return ONAIR_E_LIMIT;
    plugin_hook *arr = realloc(P->hooks[event], (n + 1) * sizeof *arr);
    if (!arr)
        return ONAIR_E_NOMEM;
    P->hooks[event] = arr;
    size_t at = n;
    while (at > 0 && arr[at - 1].priority < priority)
        at--;
    memmove(&arr[at + 1], &arr[at], (n - at) * sizeof *arr);
    arr[at] = (plugin_hook){h, fn, ud, priority};
    P->nhooks[event] = n + 1;
    return ONAIR_OK;
}

/* ---- stanzas ---- */

static const xml_node *node_of(const onair_stanza *s)
{
    return (const xml_node *)s;
}

static const char *api_stanza_name(const onair_stanza *s)
{
    return s ? node_of(s)->name : NULL;
}

static const char *api_stanza_attr(const onair_stanza *s, const char *name)
{
    return s && name ? xml_node_attr(node_of(s), name) : NULL;
}

static size_t copy_out(const char *src, size_t len, char *buf, size_t cap)
{
    if (buf && cap > 0) {
        size_t n = len < cap - 1 ? len : cap - 1;
        memcpy(buf, src, n);
        buf[n] = '\0';
    }
    return len;
}

static long api_stanza_child_text(const onair_stanza *s, const char *name, const char *ns, char *buf, size_t cap)
{
    if (!s || !name)
        return -1;
    const xml_node *c = node_of(s);
    char step[256];
    while (c && *name) {
        size_t n = strcspn(name, "/");
        if (n == 0 || n >= sizeof step)
            return -1;
        memcpy(step, name, n);
        step[n] = '\0';
        c = xml_node_child(c, step, ns ? ns : XML_NS_CLIENT);
        name += n + (name[n] == '/');
    }
    if (!c || c == node_of(s))
        return -1;
    char *t = xml_node_text(c);
    if (!t)
        return -1;
    long n = (long)copy_out(t, strlen(t), buf, cap);
    free(t);
    return n;
}

static const char *api_stanza_payload_ns(const onair_stanza *s)
{
    if (!s)
        return NULL;
    for (const xml_node *c = node_of(s)->children; c; c = c->next)
        if (c->type == XML_ELEMENT)
            return c->ns;
    return NULL;
}

static size_t api_stanza_xml(const onair_stanza *s, char *buf, size_t cap)
{
    if (!s)
        return copy_out("", 0, buf, cap);
    xml_buf b = {0};
    xml_serialize(node_of(s), XML_NS_CLIENT, &b);
    size_t n = b.failed ? copy_out("", 0, buf, cap) : copy_out(b.data ? b.data : "", b.len, buf, cap);
    xml_buf_free(&b);
    return n;
}

static int api_stanza_set_attr(onair_stanza *s, const char *name, const char *value)
{
    if (!s || !name || !*name)
        return ONAIR_E_INVALID;
    return xml_node_set_attr((xml_node *)s, name, value) == 0 ? ONAIR_OK : ONAIR_E_NOMEM;
}

static int api_stanza_set_child_text(onair_stanza *s, const char *name, const char *ns, const char *text)
{
    if (!s || !name || !*name)
        return ONAIR_E_INVALID;
    xml_node *st = (xml_node *)s;
    const char *want_ns = ns ? ns : XML_NS_CLIENT;
    xml_node *c = xml_node_child(st, name, want_ns);
    if (!text) {
        if (c) {
            xml_node_remove(st, c);
            xml_node_free(c);
        }
        return ONAIR_OK;
    }
    if (!c && !(c = xml_node_add_child(st, name, want_ns)))
        return ONAIR_E_NOMEM;
    while (c->children) {
        xml_node *k = c->children;
        xml_node_remove(c, k);
        xml_node_free(k);
    }
    return xml_node_add_text(c, text, strlen(text)) == 0 ? ONAIR_OK : ONAIR_E_NOMEM;
}

static size_t api_xml_escape(const char *s, char *out, size_t cap)
{
    char *e = s ? xml_escape(s, strlen(s)) : NULL;
    size_t n = e ? copy_out(e, strlen(e), out, cap) : copy_out("", 0, out, cap);
    free(e);
    return n;
}

/* ---- sending ---- */

static bool domain_is_ours(server *srv, const char *domain)
{
    if (router_is_local_domain(srv, domain))
        return true;
    if ((srv->muc_domain && strcmp(domain, srv->muc_domain) == 0) ||
        (srv->media_domain && strcmp(domain, srv->media_domain) == 0))
        return true;
    for (size_t i = 0; i < srv->router.nservices; i++)
        if (strcmp(srv->router.services[i].domain, domain) == 0)
            return true;
    return false;
}

static int api_send_xml(onair_host *h, const char *xml)
{
    server *srv = h->srv;
    if (!xml)
        return ONAIR_E_INVALID;
    xml_node *st = NULL;
    if (xml_parse_element(xml, strlen(xml), &srv->limits, &st) != XML_OK) {
        api_log(h, ONAIR_LOG_WARN, "send_xml: not one well-formed element; nothing sent");
        return ONAIR_E_INVALID;
    }
    const char *to = xml_node_attr(st, "to");
    const char *from = xml_node_attr(st, "from");
    bool ok = strcmp(st->ns, XML_NS_CLIENT) == 0 &&
              (strcmp(st->name, "message") == 0 || strcmp(st->name, "presence") == 0 || strcmp(st->name, "iq") == 0);
    jid j = {0};
    if (ok)
        ok = to && jid_parse(to, &j) == 0;
    jid_clear(&j);
    if (ok && from) {
        ok = jid_parse(from, &j) == 0 && domain_is_ours(srv, j.domain);
        jid_clear(&j);
    }
    if (!ok) {
        api_log(h, ONAIR_LOG_WARN, "send_xml: a stanza needs a valid 'to' and a 'from' of this server; nothing sent");
        xml_node_free(st);
        return ONAIR_E_INVALID;
    }
    if (!from)
        xml_node_set_attr(st, "from", srv->cfg.domain);
    router_route(srv, NULL, st);
    return ONAIR_OK;
}

/* Sends an answer to the sender of iq: straight to its stream when it is a
 * local session (as the server's own handlers do), else through the router. */
static void answer(server *srv, const xml_node *iq, xml_node *res)
{
    const char *from = xml_node_attr(iq, "from");
    session *s = from ? session_find_full(srv, from) : NULL;
    if (s) {
        stream_send(s, res);
        xml_node_free(res);
        return;
    }
    if (!xml_node_attr(res, "from"))
        xml_node_set_attr(res, "from", srv->cfg.domain);
    router_route(srv, NULL, res);
}

static bool is_request(const xml_node *iq)
{
    const char *type = xml_node_attr(iq, "type");
    return strcmp(iq->name, "iq") == 0 && type && (strcmp(type, "get") == 0 || strcmp(type, "set") == 0);
}

static int api_iq_result(onair_host *h, const onair_stanza *iq, const char *payload_xml)
{
    server *srv = h->srv;
    if (!iq || !is_request(node_of(iq)))
        return ONAIR_E_INVALID;
    xml_node *payload = NULL;
    if (payload_xml && xml_parse_element(payload_xml, strlen(payload_xml), &srv->limits, &payload) != XML_OK) {
        api_log(h, ONAIR_LOG_WARN, "iq_result: the payload is not one well-formed element");
        router_reply_error(srv, node_of(iq), "wait", "internal-server-error", NULL);
        return ONAIR_E_INVALID;
    }
    xml_node *res = router_iq_result(node_of(iq));
    if (!res) {
        xml_node_free(payload);
        return ONAIR_E_NOMEM;
    }
    if (payload)
        xml_node_append(res, payload);
    answer(srv, node_of(iq), res);
    return ONAIR_OK;
}

static bool is_token(const char *s)
{
    if (!s || !*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || *s == '-'))
            return false;
    return true;
}

static int api_iq_error(onair_host *h, const onair_stanza *stanza, const char *type, const char *condition,
                        const char *text)
{
    static const char *const types[] = {"cancel", "modify", "auth", "wait", "continue"};
    bool type_ok = false;
    for (size_t i = 0; type && i < sizeof types / sizeof types[0]; i++)
        type_ok = type_ok || strcmp(type, types[i]) == 0;
    if (!stanza || !type_ok || !is_token(condition))
        return ONAIR_E_INVALID;
    xml_node *err = router_error_stanza(h->srv, node_of(stanza), type, condition, text);
    if (!err)
        return ONAIR_E_INVALID;
    answer(h->srv, node_of(stanza), err);
    return ONAIR_OK;
}

/* ---- IQ handlers ---- */

static router_result iq_trampoline(void *ud, server *srv, session *s, xml_node *iq, const jid *from)
{
    plugin_iq *r = ud;
    if (!r->h->active)
        return ROUTER_PASS;
    return r->fn(r->ud, (const onair_stanza *)iq) == ONAIR_IQ_HANDLED ? ROUTER_HANDLED : ROUTER_PASS;
}

static int api_iq_register(onair_host *h, const char *ns, onair_iq_fn fn, void *ud)
{
    server *srv = h->srv;
    if (!ns || !*ns || !fn || strlen(ns) > 1024)
        return ONAIR_E_INVALID;
    for (size_t i = 0; i < srv->router.niqs; i++)
        if (strcmp(srv->router.iqs[i].ns, ns) == 0)
            return ONAIR_E_EXISTS;
    plugin_iq *r = calloc(1, sizeof *r);
    if (!r || !(r->ns = strdup(ns))) {
        free(r);
        return ONAIR_E_NOMEM;
    }
    r->h = h;
    r->fn = fn;
    r->ud = ud;
    if (router_register_iq(&srv->router, ns, iq_trampoline, r) != 0) {
        free(r->ns);
        free(r);
        return ONAIR_E_LIMIT;
    }
    router_add_feature(&srv->router, ns);
    LL_PREPEND(h->iqs, r);
    return ONAIR_OK;
}

/* ---- ad-hoc commands ---- */

static const onair_field *cmd_field(const plugin_cmd *c, const char *var)
{
    for (size_t i = 0; var && i < c->nfields; i++)
        if (strcmp(c->fields[i].var, var) == 0)
            return &c->fields[i];
    return NULL;
}

static const char *api_command_value(onair_command *cmd, const char *var)
{
    if (!cmd || !var || !cmd->req->form)
        return NULL;
    const onair_field *f = cmd_field(cmd->c, var);
    if (f && f->type == ONAIR_FIELD_MULTI) {
        if (cmd->ntmp >= DATAFORM_MAX_FIELDS)
            return NULL;
        char *t = dataform_text(cmd->req->form, var);
        if (t)
            cmd->tmp[cmd->ntmp++] = t;
        return t;
    }
    if (f && f->type == ONAIR_FIELD_BOOLEAN) {
        bool b = false;
        int rc = dataform_bool(cmd->req->form, var, &b);
        if (rc == DATAFORM_ABSENT)
            return NULL;
        return b ? "true" : "false";
    }
    return dataform_value(cmd->req->form, var);
}

static const char *api_command_requester(onair_command *cmd)
{
    if (!cmd)
        return NULL;
    if (!cmd->requester)
        cmd->requester = jid_full(cmd->req->who->from);
    return cmd->requester;
}

static const char *api_command_account(onair_command *cmd)
{
    return cmd && cmd->req->who->kind == ADHOC_ACCOUNT ? cmd->req->who->account : NULL;
}

static int api_command_note(onair_command *cmd, const char *text)
{
    if (!cmd || !text || cmd->failed)
        return ONAIR_E_INVALID;
    adhoc_reply_note(cmd->reply, ADHOC_NOTE_INFO, "%s", text);
    return ONAIR_OK;
}

static int api_command_result(onair_command *cmd, const char *var, const char *label, const char *value)
{
    if (!cmd || !var || !*var || cmd->failed)
        return ONAIR_E_INVALID;
    if (!cmd->result && !(cmd->result = dataform_new(DATAFORM_RESULT, cmd->c->title, NULL)))
        return ONAIR_E_NOMEM;
    if (cmd->result->nfields >= DATAFORM_MAX_FIELDS)
        return ONAIR_E_LIMIT;
    return dataform_add_text(cmd->result, var, label, value ? value : "") ? ONAIR_OK : ONAIR_E_NOMEM;
}

static int api_command_fail(onair_command *cmd, const char *var, const char *text)
{
    if (!cmd)
        return ONAIR_E_INVALID;
    if (var)
        adhoc_reply_bad_field(cmd->reply, var, "%s", text ? text : "invalid");
    else
        adhoc_reply_error(cmd->reply, "modify", "bad-request", NULL, false, "%s", text ? text : "failed");
    cmd->failed = true;
    return ONAIR_OK;
}

static dataform_field_type field_type(onair_field_type t)
{
    switch (t) {
    case ONAIR_FIELD_PRIVATE:
        return DATAFORM_TEXT_PRIVATE;
    case ONAIR_FIELD_MULTI:
        return DATAFORM_TEXT_MULTI;
    case ONAIR_FIELD_BOOLEAN:
        return DATAFORM_BOOLEAN;
    case ONAIR_FIELD_TEXT:
    default:
        return DATAFORM_TEXT_SINGLE;
    }
}

static void cmd_trampoline(void *ud, const adhoc_request *req, adhoc_reply *reply)
{
    plugin_cmd *c = ud;
    if (!c->h->active) {
        adhoc_reply_error(reply, "cancel", "service-unavailable", NULL, false, "the plugin is gone");
        return;
    }
    if (req->stage == 0 && c->nfields > 0) {
        dataform *f = dataform_new(DATAFORM_FORM, c->title, c->instructions);
        for (size_t i = 0; f && i < c->nfields; i++) {
            const onair_field *fd = &c->fields[i];
            dataform_field *fl = dataform_add_field(f, field_type(fd->type), fd->var, fd->label);
            if (!fl)
                continue;
            dataform_field_set_required(fl, fd->required);
            if (fd->default_value) {
                if (fd->type == ONAIR_FIELD_MULTI)
                    dataform_field_set_text(fl, fd->default_value);
                else
                    dataform_field_add_value(fl, fd->default_value);
            }
        }
        adhoc_reply_form(reply, f);
        adhoc_reply_executing(reply, 1, ADHOC_ALLOW(ADHOC_COMPLETE), ADHOC_COMPLETE);
        return;
    }
    for (size_t i = 0; i < c->nfields; i++) {
        const onair_field *fd = &c->fields[i];
        const char *v = req->form ? dataform_value(req->form, fd->var) : NULL;
        if (fd->required && (!v || !*v)) {
            adhoc_reply_bad_field(reply, fd->var, "required");
            return;
        }
        bool b;
        if (fd->type == ONAIR_FIELD_BOOLEAN && req->form &&
            dataform_bool(req->form, fd->var, &b) == DATAFORM_ERR_INVALID) {
            adhoc_reply_bad_field(reply, fd->var, "expected true or false");
            return;
        }
    }
    onair_command cmd = {.c = c, .req = req, .reply = reply};
    c->fn(c->ud, &cmd);
    for (size_t i = 0; i < cmd.ntmp; i++)
        free(cmd.tmp[i]);
    free(cmd.requester);
    if (cmd.failed) {
        dataform_free(cmd.result);
        return;
    }
    if (cmd.result)
        adhoc_reply_form(reply, cmd.result);
    adhoc_reply_completed(reply);
}

static void cmd_free(plugin_cmd *c)
{
    for (size_t i = 0; i < c->nfields; i++) {
        free((char *)c->fields[i].var);
        free((char *)c->fields[i].label);
        free((char *)c->fields[i].default_value);
    }
    free(c->fields);
    free(c->node);
    free(c->title);
    free(c->instructions);
    free(c);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int api_command_register(onair_host *h, const onair_command_spec *spec, onair_command_fn fn, void *ud)
{
    if (!spec || !spec->node || !*spec->node || !spec->name || !fn ||
        (spec->who != ONAIR_COMMAND_ACCOUNTS && spec->who != ONAIR_COMMAND_EVERYONE))
        return ONAIR_E_INVALID;
    size_t nf = 0;
    while (spec->fields && spec->fields[nf].var) {
        if (!*spec->fields[nf].var || (unsigned)spec->fields[nf].type > ONAIR_FIELD_BOOLEAN)
            return ONAIR_E_INVALID;
        if (++nf > DATAFORM_MAX_FIELDS)
            return ONAIR_E_LIMIT;
    }
    plugin_cmd *c = calloc(1, sizeof *c);
    if (!c)
        return ONAIR_E_NOMEM;
    c->h = h;
    c->fn = fn;
    c->ud = ud;
    c->node = strdup(spec->node);
    c->title = dup_or_null(spec->title ? spec->title : spec->name);
    c->instructions = dup_or_null(spec->instructions);
    c->fields = nf ? calloc(nf, sizeof *c->fields) : NULL;
    bool oom = !c->node || !c->title || (spec->instructions && !c->instructions) || (nf && !c->fields);
    for (size_t i = 0; !oom && i < nf; i++) {
        const onair_field *src = &spec->fields[i];
        onair_field *dst = &c->fields[i];
        dst->type = src->type;
        dst->required = src->required;
        dst->var = strdup(src->var);
        dst->label = dup_or_null(src->label);
        dst->default_value = dup_or_null(src->default_value);
        c->nfields = i + 1;
        oom = !dst->var || (src->label && !dst->label) || (src->default_value && !dst->default_value);
    }
    if (oom) {
        cmd_free(c);
        return ONAIR_E_NOMEM;
    }
    int rc = adhoc_register(h->srv, c->node, spec->name,
                            spec->who == ONAIR_COMMAND_ACCOUNTS ? adhoc_visible_accounts : NULL, cmd_trampoline,
                            NULL, c);
    if (rc != 0) {
        cmd_free(c);
        return strlen(spec->node) > ADHOC_MAX_NODE_LEN ? ONAIR_E_INVALID : ONAIR_E_EXISTS;
    }
    LL_PREPEND(h->cmds, c);
    return ONAIR_OK;
}

/* ---- timers ---- */

static void timer_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void timer_close(onair_host *h, plugin_timer *t)
{
    LL_DELETE(h->timers, t);
    uv_timer_stop(&t->t);
    t->t.data = t;
    uv_close((uv_handle_t *)&t->t, timer_closed);
}

static plugin_timer *timer_find(onair_host *h, uint64_t id)
{
    plugin_timer *t;
    LL_SEARCH_SCALAR(h->timers, t, id, id);
    return t;
}

static void on_timer(uv_timer_t *handle)
{
    plugin_timer *t = handle->data;
    onair_host *h = t->h;
    uint64_t id = t->id;
    bool once = t->once;
    if (h->active)
        t->fn(t->ud, id);
    /* The callback may have stopped it (then t is being closed). */
    if (once && (t = timer_find(h, id)) != NULL)
        timer_close(h, t);
}

static uint64_t api_timer_start(onair_host *h, uint64_t delay_ms, uint64_t repeat_ms, onair_timer_fn fn, void *ud)
{
    if (!fn || !h->active)
        return 0;
    plugin_timer *t = calloc(1, sizeof *t);
    if (!t)
        return 0;
    t->h = h;
    t->id = ++h->srv->plugins->next_timer_id;
    t->once = repeat_ms == 0;
    t->fn = fn;
    t->ud = ud;
    uv_timer_init(h->srv->loop, &t->t);
    t->t.data = t;
    uv_timer_start(&t->t, on_timer, delay_ms, repeat_ms);
    LL_PREPEND(h->timers, t);
    return t->id;
}

static void api_timer_stop(onair_host *h, uint64_t id)
{
    plugin_timer *t = timer_find(h, id);
    if (t)
        timer_close(h, t);
}

/* ---- work on the thread pool ---- */

static void finalize(onair_host *h);

static void work_run(uv_work_t *req)
{
    plugin_work *w = req->data;
    w->work(w->data);
}

static void work_done(uv_work_t *req, int status)
{
    plugin_work *w = req->data;
    onair_host *h = w->h;
    DL_DELETE(h->works, w);
    h->pending--;
    if (w->done)
        w->done(w->data, status == UV_ECANCELED || !h->active ? ONAIR_E_CANCELLED : ONAIR_OK);
    free(w);
    if (!h->active && h->pending == 0) {
        /* An unloaded plugin waited for this: now it can go. */
        plugins *P = h->srv->plugins;
        LL_DELETE2(P->zombies, h, next_zombie);
        finalize(h);
    }
}

static int api_work_queue(onair_host *h, onair_work_fn work, onair_done_fn done, void *data)
{
    if (!work || !h->active)
        return ONAIR_E_INVALID;
    plugin_work *w = calloc(1, sizeof *w);
    if (!w)
        return ONAIR_E_NOMEM;
    w->h = h;
    w->work = work;
    w->done = done;
    w->data = data;
    w->req.data = w;
    if (uv_queue_work(h->srv->loop, &w->req, work_run, work_done) != 0) {
        free(w);
        return ONAIR_E_NOMEM;
    }
    DL_APPEND(h->works, w);
    h->pending++;
    return ONAIR_OK;
}

/* ---- the store ---- */

static int map_store(int rc)
{
    switch (rc) {
    case STORE_OK:
        return ONAIR_OK;
    case STORE_NOTFOUND:
        return ONAIR_E_NOTFOUND;
    case STORE_EXISTS:
        return ONAIR_E_EXISTS;
    default:
        return ONAIR_E_STORE;
    }
}

static bool key_ok(const void *key, size_t klen)
{
    return key && klen > 0 && klen <= MAX_KEY_BYTES;
}

static int api_store_get(onair_host *h, onair_txn *txn, const void *key, size_t klen, void *buf, size_t cap,
                         size_t *vlen)
{
    if (!key_ok(key, klen) || (txn && txn->h != h))
        return ONAIR_E_INVALID;
    store_txn *t = txn ? txn->t : NULL;
    if (!t && store_txn_begin(h->srv->store, false, &t) != STORE_OK)
        return ONAIR_E_STORE;
    const void *v = NULL;
    size_t n = 0;
    int rc = store_get(t, h->db, key, klen, &v, &n);
    if (rc == STORE_OK) {
        if (buf && cap)
            memcpy(buf, v, n < cap ? n : cap);
        if (vlen)
            *vlen = n;
    }
    if (!txn)
        store_txn_abort(t);
    return map_store(rc);
}

static int api_store_put(onair_host *h, onair_txn *txn, const void *key, size_t klen, const void *val, size_t vlen)
{
    if (!key_ok(key, klen) || (!val && vlen) || (txn && txn->h != h))
        return ONAIR_E_INVALID;
    if (txn)
        return map_store(store_put(txn->t, h->db, key, klen, val ? val : "", vlen, false));
    if (h->in_txn)
        return ONAIR_E_STATE;
    store_txn *t;
    if (store_txn_begin(h->srv->store, true, &t) != STORE_OK)
        return ONAIR_E_STATE;
    int rc = store_put(t, h->db, key, klen, val ? val : "", vlen, false);
    if (rc == STORE_OK)
        return map_store(store_txn_commit(t));
    store_txn_abort(t);
    return map_store(rc);
}

static int api_store_del(onair_host *h, onair_txn *txn, const void *key, size_t klen)
{
    if (!key_ok(key, klen) || (txn && txn->h != h))
        return ONAIR_E_INVALID;
    if (txn)
        return map_store(store_del(txn->t, h->db, key, klen));
    if (h->in_txn)
        return ONAIR_E_STATE;
    store_txn *t;
    if (store_txn_begin(h->srv->store, true, &t) != STORE_OK)
        return ONAIR_E_STATE;
    int rc = store_del(t, h->db, key, klen);
    if (rc == STORE_OK)
        return map_store(store_txn_commit(t));
    store_txn_abort(t);
    return map_store(rc);
}

typedef struct iter_ctx {
    onair_iter_fn fn;
    void *ud;
} iter_ctx;

static int iter_cb(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    iter_ctx *c = ud;
    return c->fn(c->ud, key, klen, val, vlen);
}

static int api_store_iter(onair_host *h, onair_txn *txn, const void *prefix, size_t plen, onair_iter_fn fn,
                          void *ud)
{
    if (!fn || (plen && !prefix) || plen > MAX_KEY_BYTES || (txn && txn->h != h))
        return ONAIR_E_INVALID;
    store_txn *t = txn ? txn->t : NULL;
    if (!t && store_txn_begin(h->srv->store, false, &t) != STORE_OK)
        return ONAIR_E_STORE;
    iter_ctx c = {fn, ud};
    int rc = store_iter(t, h->db, prefix, plen, iter_cb, &c);
    if (!txn)
        store_txn_abort(t);
    if (rc > 0 || rc == STORE_OK || rc == STORE_NOTFOUND) /* NOTFOUND: the database does not exist yet */
        return rc > 0 ? rc : 0;
    return ONAIR_E_STORE;
}

static int api_store_txn(onair_host *h, onair_txn_fn fn, void *ud)
{
    if (!fn)
        return ONAIR_E_INVALID;
    if (h->in_txn)
        return ONAIR_E_STATE;
    store_txn *t;
    if (store_txn_begin(h->srv->store, true, &t) != STORE_OK)
        return ONAIR_E_STATE;
    onair_txn tx = {h, t};
    h->in_txn = true;
    int rc = fn(ud, &tx);
    h->in_txn = false;
    if (rc != 0) {
        store_txn_abort(t);
        return rc < 0 ? rc : ONAIR_E_CANCELLED;
    }
    return map_store(store_txn_commit(t));
}

/* ---- file descriptors on the loop ---- */

static void watch_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void watch_close(onair_host *h, plugin_watch *w)
{
    LL_DELETE(h->watches, w);
    uv_poll_stop(&w->poll);
    w->poll.data = w;
    uv_close((uv_handle_t *)&w->poll, watch_closed);
}

static void on_poll(uv_poll_t *handle, int status, int got)
{
    plugin_watch *w = handle->data;
    if (!w->h->active)
        return;
    int ready = 0;
    if (status < 0)
        ready = ONAIR_FD_ERROR | w->events; /* let the plugin find out what happened */
    if (got & UV_READABLE)
        ready |= ONAIR_FD_READ;
    if (got & UV_WRITABLE)
        ready |= ONAIR_FD_WRITE;
    /* fn may unwatch (w is then being closed, freed after this returns). */
    w->fn(w->ud, w->fd, ready & (w->events | ONAIR_FD_ERROR));
}

static plugin_watch *watch_find(onair_host *h, int fd)
{
    plugin_watch *w;
    LL_SEARCH_SCALAR(h->watches, w, fd, fd);
    return w;
}

static int api_fd_watch(onair_host *h, int fd, int want, onair_fd_fn fn, void *ud)
{
    if (fd < 0 || !fn || want == 0 || (want & ~(ONAIR_FD_READ | ONAIR_FD_WRITE)) || !h->active)
        return ONAIR_E_INVALID;
    int uvev = ((want & ONAIR_FD_READ) ? UV_READABLE : 0) |
               ((want & ONAIR_FD_WRITE) ? UV_WRITABLE : 0);
    plugin_watch *w = watch_find(h, fd);
    if (w) {
        w->events = want;
        w->fn = fn;
        w->ud = ud;
        return uv_poll_start(&w->poll, uvev, on_poll) == 0 ? ONAIR_OK : ONAIR_E_INVALID;
    }
    plugins *P = h->srv->plugins;
    for (size_t i = 0; i < P->nloaded; i++)
        if (P->loaded[i] != h && watch_find(P->loaded[i], fd))
            return ONAIR_E_EXISTS;
    if (!(w = calloc(1, sizeof *w)))
        return ONAIR_E_NOMEM;
    int rc = uv_poll_init(h->srv->loop, &w->poll, fd);
    if (rc != 0) {
        free(w);
        return rc == UV_EEXIST ? ONAIR_E_EXISTS : ONAIR_E_INVALID;
    }
    w->h = h;
    w->fd = fd;
    w->events = want;
    w->fn = fn;
    w->ud = ud;
    w->poll.data = w;
    LL_PREPEND(h->watches, w);
    if (uv_poll_start(&w->poll, uvev, on_poll) != 0) {
        watch_close(h, w);
        return ONAIR_E_INVALID;
    }
    return ONAIR_OK;
}

static int api_fd_unwatch(onair_host *h, int fd)
{
    plugin_watch *w = watch_find(h, fd);
    if (!w)
        return ONAIR_E_NOTFOUND;
    watch_close(h, w);
    return ONAIR_OK;
}

/* ---- reservations and accounts ---- */

static int api_reservation_read(onair_host *h, const char *id, onair_reservation_fn fn, void *ud)
{
    server *srv = h->srv;
    if (!id || !fn || !reservation_id_valid(id))
        return ONAIR_E_INVALID;
    if (h->in_txn || !srv->res_started)
        return ONAIR_E_STATE;
    reservation r;
    int rc = reservation_get(&srv->res, id, &r);
    if (rc != RES_OK)
        return rc == RES_E_NOTFOUND ? ONAIR_E_NOTFOUND : ONAIR_E_STORE;
    res_settings st;
    res_error e;
    rc = reservation_settings(&srv->res, r.owner, id, &st, &e);
    if (rc != RES_OK && rc != RES_E_CONFLICT) {
        reservation_clear(&r);
        return ONAIR_E_STORE;
    }
    char room[RES_ID_LEN + 2 + 256];
    onair_reservation_event ev;
    reservation_payload(srv, &r, room, sizeof room, &ev);
    if (rc == RES_OK) {
        onair_reservation_settings s = {
            .room_jid = nz(st.room_jid), .page_url = nz(st.page_url), .ingest_jid = nz(st.ingest_jid),
            .shared_password = nz(st.shared_password), .ingest_open = st.ingest_open,
            .ingest_close = st.ingest_close, .issued = st.issued,
        };
        fn(ud, &ev, &s);
        res_settings_clear(&st); /* wipes the password */
    } else {
        fn(ud, &ev, NULL);
    }
    reservation_clear(&r);
    return ONAIR_OK;
}

static long api_account_email(onair_host *h, const char *user, char *buf, size_t cap)
{
    char mail[1024];
    if (!user || !*user || h->in_txn || !account_exists(h->srv->store, user) ||
        account_get_email(h->srv->store, user, mail, sizeof mail) != STORE_OK) {
        copy_out("", 0, buf, cap);
        return -1;
    }
    return (long)copy_out(mail, strlen(mail), buf, cap);
}

/* ---- services ---- */

static bool service_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > MAX_SERVICE_NAME)
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' || *c == '.'))
            return false;
    return true;
}

static int api_service_provide(onair_host *h, const char *name, const void *table, void *ud)
{
    plugins *P = h->srv->plugins;
    if (!service_name_ok(name) || !table || !h->active)
        return ONAIR_E_INVALID;
    for (size_t i = 0; i < P->nservices; i++)
        if (strcmp(P->services[i].name, name) == 0)
            return ONAIR_E_EXISTS;
    if (P->nservices >= MAX_SERVICES)
        return ONAIR_E_LIMIT;
    plugin_service *sv = &P->services[P->nservices++];
    snprintf(sv->name, sizeof sv->name, "%s", name);
    sv->h = h;
    sv->table = table;
    sv->ud = ud;
    log_write(&h->srv->log, LOG_INFO, h->module, "offers the service \"%s\"", name);
    return ONAIR_OK;
}

static const void *api_service_lookup(onair_host *h, const char *name, void **ud)
{
    plugins *P = h->srv->plugins;
    for (size_t i = 0; name && i < P->nservices; i++) {
        const plugin_service *sv = &P->services[i];
        if (strcmp(sv->name, name) == 0 && sv->h->active) {
            if (ud)
                *ud = sv->ud;
            return sv->table;
        }
    }
    if (ud)
        *ud = NULL;
    return NULL;
}

/* ---- configuration of a plugin ---- */

static void values_free(plugin_value *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i].str);
    free(v);
}

/* Checks the plugin's declared keys and its group in cfg; on success sets
 * *out (caller owns, one value per key).  On failure returns -1 with a
 * "file:line: plugin.<name>.<key>: problem" message. */
static int plugin_config(const onair_plugin_info *info, const char *name, const config *cfg, size_t *nkeys,
                         plugin_value **out, char *err, size_t errlen)
{
    *out = NULL;
    size_t n = 0;
    while (info->config && info->config[n].name) {
        const onair_config_key *k = &info->config[n];
        if (!*k->name || k->type < ONAIR_CONFIG_STRING || k->type > ONAIR_CONFIG_BOOL) {
            snprintf(err, errlen, "the plugin declares a bad configuration key #%zu (\"%s\")", n, k->name);
            return -1;
        }
        for (size_t j = 0; j < n; j++) {
            if (strcmp(info->config[j].name, k->name) == 0) {
                snprintf(err, errlen, "the plugin declares the configuration key \"%s\" twice", k->name);
                return -1;
            }
        }
        if (++n > 256) {
            snprintf(err, errlen, "the plugin declares more than 256 configuration keys");
            return -1;
        }
    }
    *nkeys = n;
    plugin_value *v = calloc(n ? n : 1, sizeof *v);
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const onair_config_key *k = &info->config[i];
        if (k->type == ONAIR_CONFIG_STRING && !(v[i].str = strdup(k->default_string ? k->default_string : ""))) {
            values_free(v, n);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        v[i].num = k->type == ONAIR_CONFIG_BOOL ? k->default_int != 0 : k->default_int;
    }
    const config_plugin_group *g = config_plugin_group_find(cfg, name);
    for (size_t j = 0; g && j < g->nvalues; j++) {
        const config_plugin_value *cv = &g->values[j];
        size_t i = 0;
        while (i < n && strcmp(info->config[i].name, cv->key) != 0)
            i++;
        const char *problem = NULL;
        char buf[256];
        if (i == n) {
            size_t used = (size_t)snprintf(buf, sizeof buf, "unknown setting (%s %s", name,
                                           n ? "declares:" : "declares no settings");
            for (size_t k = 0; k < n && used < sizeof buf; k++)
                used += (size_t)snprintf(buf + used, sizeof buf - used, "%s %s", k ? "," : "", info->config[k].name);
            if (used < sizeof buf)
                snprintf(buf + used, sizeof buf - used, ")");
            problem = buf;
        } else {
            const onair_config_key *k = &info->config[i];
            if (k->type == ONAIR_CONFIG_STRING) {
                if (cv->kind != CONFIG_VALUE_STRING) {
                    problem = "expected a string";
                } else {
                    char *s = strdup(cv->str);
                    if (!s) {
                        problem = "out of memory";
                    } else {
                        free(v[i].str);
                        v[i].str = s;
                    }
                }
            } else if (k->type == ONAIR_CONFIG_INT) {
                bool ranged = k->min != 0 || k->max != 0;
                if (cv->kind != CONFIG_VALUE_INT || (ranged && (cv->num < k->min || cv->num > k->max))) {
                    if (ranged)
                        snprintf(buf, sizeof buf, "expected an integer between %lld and %lld", (long long)k->min,
                                 (long long)k->max);
                    else
                        snprintf(buf, sizeof buf, "expected an integer");
                    problem = buf;
                } else {
                    v[i].num = cv->num;
                }
            } else if (cv->kind != CONFIG_VALUE_BOOL) {
                problem = "expected true or false";
            } else {
                v[i].num = cv->num;
            }
        }
        if (problem) {
            snprintf(err, errlen, "%s:%d: plugin.%s.%s: %s", cfg->path, cv->line, name, cv->key, problem);
            values_free(v, n);
            return -1;
        }
    }
    *out = v;
    return 0;
}

/* ---- loading and unloading ---- */

static void finalize(onair_host *h)
{
    if (h->dl)
        dlclose(h->dl);
    values_free(h->values, h->nkeys);
    free(h);
}

/* Removes everything h registered; then frees it, or keeps it (as a
 * zombie) until its queued work has come back. */
static void unregister_all(onair_host *h)
{
    server *srv = h->srv;
    plugins *P = srv->plugins;
    h->active = false;
    for (int ev = 0; ev < NEVENTS; ev++) {
        size_t k = 0;
        for (size_t i = 0; i < P->nhooks[ev]; i++)
            if (P->hooks[ev][i].h != h)
                P->hooks[ev][k++] = P->hooks[ev][i];
        P->nhooks[ev] = k;
    }
    plugin_iq *q, *qt;
    LL_FOREACH_SAFE(h->iqs, q, qt)
    {
        router_unregister_iq(&srv->router, q->ns);
        router_remove_feature(&srv->router, q->ns);
        free(q->ns);
        free(q);
    }
    h->iqs = NULL;
    plugin_cmd *c, *ct;
    LL_FOREACH_SAFE(h->cmds, c, ct)
    {
        adhoc_unregister(srv, c->node);
        cmd_free(c);
    }
    h->cmds = NULL;
    while (h->timers)
        timer_close(h, h->timers);
    while (h->watches)
        watch_close(h, h->watches);
    size_t ns = 0;
    for (size_t i = 0; i < P->nservices; i++)
        if (P->services[i].h != h)
            P->services[ns++] = P->services[i];
    P->nservices = ns;
    for (plugin_work *w = h->works; w; w = w->next)
        uv_cancel((uv_req_t *)&w->req); /* fails harmlessly for work already running */
    if (h->pending == 0) {
        finalize(h);
    } else {
        log_write(&srv->log, LOG_INFO, h->module, "unloaded; its object stays open until %u queued work items end",
                  h->pending);
        LL_PREPEND2(P->zombies, h, next_zombie);
    }
}

static void unload(server *srv, onair_host *h)
{
    log_write(&srv->log, LOG_INFO, h->module, "shutting down");
    if (h->info->shutdown)
        h->info->shutdown(h->state);
    h->state = NULL;
    unregister_all(h);
}

/* Tries to load plugin pn; logs and returns NULL when it cannot. */
static onair_host *load(server *srv, const config_plugin_name *pn)
{
    plugins *P = srv->plugins;
    const char *cfgpath = srv->cfg.path;
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s/%s.so", P->dir, pn->name, pn->name) >= (int)sizeof path) {
        log_write(&srv->log, LOG_ERROR, "plugin", "%s:%d: plugins.load: \"%s\" not loaded: the path is too long",
                  cfgpath, pn->line, pn->name);
        return NULL;
    }
    if (access(path, R_OK) != 0) {
        log_write(&srv->log, LOG_ERROR, "plugin", "%s:%d: plugins.load: \"%s\" not loaded: %s: no such plugin file",
                  cfgpath, pn->line, pn->name, path);
        return NULL;
    }
    /* RTLD_NODELETE: a plugin's code (and the libraries it pulled in, such
     * as libcurl) stays mapped after dlclose, because those libraries may
     * leave exit handlers and thread-key destructors behind that run when
     * the process ends. */
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!dl) {
        log_write(&srv->log, LOG_ERROR, "plugin", "\"%s\" not loaded: %s", pn->name, dlerror());
        return NULL;
    }
    const onair_plugin_info *(*entry)(void) = (const onair_plugin_info *(*)(void))dlsym(dl, ONAIR_PLUGIN_ENTRY_SYMBOL);
    if (!entry) {
        log_write(&srv->log, LOG_ERROR, "plugin", "\"%s\" not loaded: %s has no %s function", pn->name, path,
                  ONAIR_PLUGIN_ENTRY_SYMBOL);
        dlclose(dl);
        return NULL;
    }
    const onair_plugin_info *info = entry();
    const char *why = NULL;
    char buf[2048];
    if (!info) {
        why = "its descriptor is missing (" ONAIR_PLUGIN_ENTRY_SYMBOL " returned NULL)";
    } else if (info->abi != ONAIR_PLUGIN_ABI) {
        snprintf(buf, sizeof buf, "ABI mismatch: built for plugin ABI %d, this server has plugin ABI %d", info->abi,
                 ONAIR_PLUGIN_ABI);
        why = buf;
    } else if (!info->name || strcmp(info->name, pn->name) != 0) {
        snprintf(buf, sizeof buf, "it calls itself \"%.64s\", not \"%s\"", info->name ? info->name : "(null)",
                 pn->name);
        why = buf;
    } else if (!info->init || !info->shutdown) {
        why = "its descriptor lacks init or shutdown";
    }
    if (why) {
        log_write(&srv->log, LOG_ERROR, "plugin", "\"%s\" refused and not loaded: %s", pn->name, why);
        dlclose(dl);
        return NULL;
    }
    onair_host *h = calloc(1, sizeof *h);
    if (!h) {
        dlclose(dl);
        return NULL;
    }
    h->srv = srv;
    h->dl = dl;
    h->info = info;
    snprintf(h->name, sizeof h->name, "%s", pn->name);
    snprintf(h->module, sizeof h->module, "plugin %s", pn->name);
    snprintf(h->db, sizeof h->db, "plugin.%s", pn->name);
    if (plugin_config(info, pn->name, &srv->cfg, &h->nkeys, &h->values, buf, sizeof buf) != 0) {
        log_write(&srv->log, LOG_ERROR, "plugin", "\"%s\" not loaded: %s", pn->name, buf);
        finalize(h);
        return NULL;
    }
    h->active = true;
    int rc = info->init(h, &P->api, &h->state);
    if (rc != 0) {
        log_write(&srv->log, LOG_ERROR, "plugin", "\"%s\" not loaded: its init failed (%d)", pn->name, rc);
        h->state = NULL;
        unregister_all(h);
        return NULL;
    }
    log_write(&srv->log, LOG_INFO, "plugin", "loaded %s %s from %s", pn->name, info->version ? info->version : "",
              path);
    return h;
}

static char *default_dir(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            char probe[PATH_MAX + 32];
            snprintf(probe, sizeof probe, "%s/CMakeCache.txt", exe);
            if (access(probe, F_OK) == 0) {
                snprintf(probe, sizeof probe, "%s/plugins", exe);
                return strdup(probe);
            }
        }
    }
    return strdup(ONAIR_PLUGIN_DIR);
}

static void set_dir(plugins *P, const config *cfg)
{
    char *d = cfg->plugins_dir ? strdup(cfg->plugins_dir) : default_dir();
    if (d) {
        free(P->dir);
        P->dir = d;
    }
}

static bool is_loaded(const plugins *P, const char *name)
{
    for (size_t i = 0; i < P->nloaded; i++)
        if (strcmp(P->loaded[i]->name, name) == 0)
            return true;
    return false;
}

static void load_listed(server *srv)
{
    plugins *P = srv->plugins;
    for (size_t i = 0; i < srv->cfg.nplugins_load; i++) {
        const config_plugin_name *pn = &srv->cfg.plugins_load[i];
        if (is_loaded(P, pn->name) || P->nloaded >= CONFIG_MAX_PLUGINS)
            continue;
        onair_host *h = load(srv, pn);
        if (h)
            P->loaded[P->nloaded++] = h;
    }
    for (size_t i = 0; i < srv->cfg.nplugin_groups; i++) {
        bool listed = false;
        for (size_t j = 0; j < srv->cfg.nplugins_load; j++)
            listed = listed || strcmp(srv->cfg.plugins_load[j].name, srv->cfg.plugin_groups[i].name) == 0;
        if (!listed)
            log_write(&srv->log, LOG_WARN, "plugin", "%s:%d: plugin.%s: settings for a plugin not in plugins.load",
                      srv->cfg.path, srv->cfg.plugin_groups[i].line, srv->cfg.plugin_groups[i].name);
    }
}

static void fill_api(onair_host_api *a)
{
    memset(a, 0, sizeof *a);
    a->size = sizeof *a;
    a->abi = ONAIR_PLUGIN_ABI;
    a->abi_minor = ONAIR_PLUGIN_ABI_MINOR;
    a->plugin_name = api_plugin_name;
    a->server_domain = api_server_domain;
    a->room_domain = api_room_domain;
    a->log = api_log;
    a->vlog = api_vlog;
    a->config_string = api_config_string;
    a->config_int = api_config_int;
    a->config_bool = api_config_bool;
    a->hook = api_hook;
    a->iq_register = api_iq_register;
    a->iq_result = api_iq_result;
    a->iq_error = api_iq_error;
    a->send_xml = api_send_xml;
    a->xml_escape = api_xml_escape;
    a->stanza_name = api_stanza_name;
    a->stanza_attr = api_stanza_attr;
    a->stanza_child_text = api_stanza_child_text;
    a->stanza_payload_ns = api_stanza_payload_ns;
    a->stanza_xml = api_stanza_xml;
    a->stanza_set_attr = api_stanza_set_attr;
    a->stanza_set_child_text = api_stanza_set_child_text;
    a->command_register = api_command_register;
    a->command_value = api_command_value;
    a->command_requester = api_command_requester;
    a->command_account = api_command_account;
    a->command_note = api_command_note;
    a->command_result = api_command_result;
    a->command_fail = api_command_fail;
    a->timer_start = api_timer_start;
    a->timer_stop = api_timer_stop;
    a->work_queue = api_work_queue;
    a->store_get = api_store_get;
    a->store_put = api_store_put;
    a->store_del = api_store_del;
    a->store_iter = api_store_iter;
    a->store_txn = api_store_txn;
    a->fd_watch = api_fd_watch;
    a->fd_unwatch = api_fd_unwatch;
    a->reservation_read = api_reservation_read;
    a->account_email = api_account_email;
    a->service_provide = api_service_provide;
    a->service_lookup = api_service_lookup;
}

int plugins_start(server *srv)
{
    plugins *P = calloc(1, sizeof *P);
    if (!P)
        return -1;
    srv->plugins = P;
    fill_api(&P->api);
    set_dir(P, &srv->cfg);
    if (!P->dir)
        return -1;
    for (size_t i = 0; i < sizeof event_map / sizeof event_map[0]; i++)
        if (event_map[i].internal >= 0 &&
            event_hook_add(&srv->events, (event_type)event_map[i].internal, 0, on_internal_event, P) != 0)
            return -1;
    if (srv->cfg.nplugins_load > 0)
        log_write(&srv->log, LOG_INFO, "plugin", "loading %zu plugin%s from %s", srv->cfg.nplugins_load,
                  srv->cfg.nplugins_load == 1 ? "" : "s", P->dir);
    load_listed(srv);
    return 0;
}

void plugins_reload(server *srv, config *next)
{
    plugins *P = srv->plugins;
    if (!P)
        return;
    /* The plugin settings of next become the running ones (next gets the
     * old ones, freed with it). */
    config *cur = &srv->cfg;
    char *dir = cur->plugins_dir;
    cur->plugins_dir = next->plugins_dir;
    next->plugins_dir = dir;
    config_plugin_name names[CONFIG_MAX_PLUGINS];
    memcpy(names, cur->plugins_load, sizeof names);
    memcpy(cur->plugins_load, next->plugins_load, sizeof names);
    memcpy(next->plugins_load, names, sizeof names);
    size_t nn = cur->nplugins_load;
    cur->nplugins_load = next->nplugins_load;
    next->nplugins_load = nn;
    config_plugin_group *groups = cur->plugin_groups;
    cur->plugin_groups = next->plugin_groups;
    next->plugin_groups = groups;
    size_t ng = cur->nplugin_groups;
    cur->nplugin_groups = next->nplugin_groups;
    next->nplugin_groups = ng;
    set_dir(P, cur);

    /* Unlisted plugins go, last loaded first. */
    for (size_t i = P->nloaded; i-- > 0;) {
        onair_host *h = P->loaded[i];
        bool listed = false;
        for (size_t j = 0; j < cur->nplugins_load; j++)
            listed = listed || strcmp(cur->plugins_load[j].name, h->name) == 0;
        if (!listed) {
            log_write(&srv->log, LOG_INFO, "plugin", "reload: %s is no longer in plugins.load: unloading", h->name);
            memmove(&P->loaded[i], &P->loaded[i + 1], (P->nloaded - i - 1) * sizeof P->loaded[0]);
            P->nloaded--;
            unload(srv, h);
        }
    }
    /* Listed ones get their new settings. */
    for (size_t i = 0; i < P->nloaded; i++) {
        onair_host *h = P->loaded[i];
        char err[1024];
        size_t nkeys;
        plugin_value *fresh;
        if (plugin_config(h->info, h->name, cur, &nkeys, &fresh, err, sizeof err) != 0) {
            log_write(&srv->log, LOG_ERROR, h->module, "reload: keeping the running settings: %s", err);
            continue;
        }
        plugin_value *old = h->values;
        h->values = fresh;
        if (h->info->reload) {
            int rc = h->info->reload(h->state);
            if (rc != 0) {
                log_write(&srv->log, LOG_ERROR, h->module, "reload refused by the plugin (%d): settings unchanged",
                          rc);
                h->values = old;
                values_free(fresh, nkeys);
                continue;
            }
        }
        values_free(old, nkeys);
        log_write(&srv->log, LOG_INFO, h->module, "settings reloaded");
    }
    /* Listed ones that are not loaded (new, or failed before) are tried. */
    load_listed(srv);
}

void plugins_stop(server *srv)
{
    plugins *P = srv->plugins;
    if (!P)
        return;
    while (P->nloaded > 0) {
        onair_host *h = P->loaded[--P->nloaded];
        unload(srv, h);
    }
}

void plugins_free(server *srv)
{
    plugins *P = srv->plugins;
    if (!P)
        return;
    plugins_stop(srv);
    /* The loop has ended: no work is pending any more. */
    while (P->zombies) {
        onair_host *h = P->zombies;
        LL_DELETE2(P->zombies, h, next_zombie);
        finalize(h);
    }
    for (int ev = 0; ev < NEVENTS; ev++)
        free(P->hooks[ev]);
    free(P->dir);
    free(P);
    srv->plugins = NULL;
}

size_t plugins_loaded(const server *srv, const char **names, size_t cap)
{
    const plugins *P = srv->plugins;
    size_t n = 0;
    for (size_t i = 0; P && i < P->nloaded && n < cap; i++)
        names[n++] = P->loaded[i]->name;
    return n;
}
