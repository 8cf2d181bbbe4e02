/* transcript.c - the transcript plugin (F15; plugins/transcript/README.md,
 * specs/transcript.md).
 *
 * When a live's room closes ("room closed", with the room's whole log),
 * the part of the log the owner chose when booking (or the configured
 * default) is archived in the plugin's database as one JSON document per
 * reservation (key "t/<id>"), with an index row per owner ("o/<owner>/<id>")
 * and a delivery mark ("d/<id>"), all in one write transaction.  The
 * transcript then goes to the broadcaster: an XMPP chat message from the
 * server (kept in offline storage while they are away) and, when the
 * email_notice plugin offers the "mail" service, a mail with the
 * transcript attached (its outbox makes it durable).  The mark is removed
 * once both are handed over; marks left by a crash are delivered at the
 * next start.  A room that closes again after a crash finds its archive and
 * is not delivered twice.
 *
 * The owner fetches archives later with the ad-hoc commands "transcripts"
 * (list) and "transcript" (one, as text or JSON), or over HTTP at
 * GET /api/v1/reservations/<id>/transcript?format=text|json.  Nobody else
 * may: another account gets forbidden / 403 and nothing.
 *
 * Every callback runs on the loop; nothing here blocks (the store calls are
 * the host's synced LMDB commits, like the server's own).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <onair/plugin.h>

#include "format.h"

#define NAME "transcript"
#define ID_LEN 26
#define OWNER_MAX 256
#define TITLE_MAX 512

typedef struct tstate {
    onair_host *h;
    const onair_host_api *api;
    uint64_t pending_timer;
} tstate;

static const onair_config_key config_keys[] = {
    {.name = "part", .type = ONAIR_CONFIG_STRING, .default_string = "all",
     .description = "the part of the room a transcript keeps when the booking chose none: all, live or addressed"},
    {.name = "notices", .type = ONAIR_CONFIG_BOOL, .default_int = 1,
     .description = "keep the room's own notices when the booking chose nothing"},
    {.name = "xmpp", .type = ONAIR_CONFIG_BOOL, .default_int = 1,
     .description = "send the transcript to the broadcaster as an XMPP message"},
    {.name = "mail", .type = ONAIR_CONFIG_BOOL, .default_int = 1,
     .description = "mail it too, through the \"mail\" service (the email_notice plugin)"},
    {.name = "xmpp_max_bytes", .type = ONAIR_CONFIG_INT, .default_int = 60000, .min = 1000, .max = 200000,
     .description = "the longest XMPP message body; a longer transcript is cut there, with a note"},
    {.name = NULL},
};

/* ---- helpers ---- */

static bool valid_id(const char *id)
{
    if (!id || strlen(id) != ID_LEN)
        return false;
    for (const char *c = id; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '2' && *c <= '7')))
            return false;
    return true;
}

static size_t key_of(char *out, size_t cap, const char *kind, const char *a, const char *b)
{
    int n = b ? snprintf(out, cap, "%s/%s/%s", kind, a, b) : snprintf(out, cap, "%s/%s", kind, a);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* The value of key (malloc'd, NUL-terminated) or NULL when absent. */
static char *load(tstate *st, const char *key, size_t klen)
{
    size_t len = 0;
    if (st->api->store_get(st->h, NULL, key, klen, NULL, 0, &len) != ONAIR_OK)
        return NULL;
    char *buf = malloc(len + 1);
    if (!buf)
        return NULL;
    if (st->api->store_get(st->h, NULL, key, klen, buf, len, &len) != ONAIR_OK) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

/* The archive of reservation id, or NULL. */
static json_t *load_doc(tstate *st, const char *id)
{
    char key[64];
    size_t klen = key_of(key, sizeof key, "t", id, NULL);
    char *text = klen ? load(st, key, klen) : NULL;
    if (!text)
        return NULL;
    json_t *doc = json_loads(text, 0, NULL);
    free(text);
    if (doc && !json_is_object(doc)) {
        json_decref(doc);
        doc = NULL;
    }
    return doc;
}

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* ---- reading the reservation at close ---- */

typedef struct res_info {
    bool found;
    char owner[OWNER_MAX + 1];
    char title[TITLE_MAX];
    char part[24], notices[8];
    int64_t start, end;
} res_info;

static void res_fill(void *ud, const onair_reservation_event *r, const onair_reservation_settings *s)
{
    (void)s;
    res_info *ri = ud;
    ri->found = true;
    snprintf(ri->owner, sizeof ri->owner, "%s", r->owner);
    snprintf(ri->title, sizeof ri->title, "%s", r->title);
    snprintf(ri->part, sizeof ri->part, "%s", r->transcript ? r->transcript : "");
    snprintf(ri->notices, sizeof ri->notices, "%s", r->transcript_notices ? r->transcript_notices : "");
    ri->start = r->start;
    ri->end = r->end;
}

/* ---- delivery ---- */

static void deliver_xmpp(tstate *st, const json_t *doc, const char *text)
{
    const char *id = jstr(doc, "reservation");
    size_t max = (size_t)st->api->config_int(st->h, "xmpp_max_bytes");
    size_t len = strlen(text);
    char *body = NULL;
    if (len > max) {
        /* cut at a line end within max, with a note on how to get the rest */
        size_t cut = max;
        while (cut > 0 && text[cut - 1] != '\n')
            cut--;
        if (cut == 0)
            cut = max;
        while (cut > 0 && (text[cut] & 0xc0) == 0x80) /* never inside a UTF-8 sequence */
            cut--;
        const char *note = "\n[cut here: the whole transcript is in the ad-hoc command \"transcript\" and at "
                           "/api/v1/reservations/%s/transcript]\n";
        size_t cap = cut + strlen(note) + ID_LEN + 1;
        body = malloc(cap);
        if (body) {
            memcpy(body, text, cut);
            snprintf(body + cut, cap - cut, note, id);
        }
    } else {
        body = strdup(text);
    }
    if (!body) {
        st->api->log(st->h, ONAIR_LOG_ERROR, "%s: out of memory: no XMPP message", id);
        return;
    }
    char subject[TITLE_MAX + 64];
    snprintf(subject, sizeof subject, "Transcript of \"%s\"", jstr(doc, "title"));
    size_t nb = st->api->xml_escape(body, NULL, 0), ns = st->api->xml_escape(subject, NULL, 0);
    char *eb = malloc(nb + 1), *es = malloc(ns + 1);
    char to[OWNER_MAX + 300];
    snprintf(to, sizeof to, "%s@%s", jstr(doc, "owner"), st->api->server_domain(st->h));
    size_t nt = st->api->xml_escape(to, NULL, 0);
    char *et = malloc(nt + 1);
    char *xml = NULL;
    if (eb && es && et) {
        st->api->xml_escape(body, eb, nb + 1);
        st->api->xml_escape(subject, es, ns + 1);
        st->api->xml_escape(to, et, nt + 1);
        size_t cap = nb + ns + nt + 512;
        xml = malloc(cap);
        if (xml)
            snprintf(xml, cap,
                     "<message to='%s' type='chat' id='transcript-%s'><subject>%s</subject><body>%s</body>"
                     "<transcript xmlns='urn:onair:transcript:0' reservation='%s'/></message>",
                     et, id, es, eb, id);
    }
    int rc = xml ? st->api->send_xml(st->h, xml) : ONAIR_E_NOMEM;
    st->api->log(st->h, rc == ONAIR_OK ? ONAIR_LOG_INFO : ONAIR_LOG_ERROR, "%s: transcript %s by XMPP to %s", id,
                 rc == ONAIR_OK ? "sent" : "not sent", to);
    free(xml);
    free(eb);
    free(es);
    free(et);
    free(body);
}

static void deliver_mail(tstate *st, const json_t *doc, const char *text)
{
    const char *id = jstr(doc, "reservation");
    void *ud = NULL;
    const onair_mail_service *mail = st->api->service_lookup(st->h, ONAIR_SERVICE_MAIL, &ud);
    if (!mail) {
        st->api->log(st->h, ONAIR_LOG_INFO, "%s: no mail service loaded: the transcript is not mailed", id);
        return;
    }
    if (mail->size < offsetof(onair_mail_service, send) + sizeof mail->send || !mail->send)
        return;
    char subject[TITLE_MAX + 64], name[64], body[TITLE_MAX + 512];
    snprintf(subject, sizeof subject, "Transcript of \"%s\"", jstr(doc, "title"));
    snprintf(name, sizeof name, "transcript-%s.txt", id);
    snprintf(body, sizeof body,
             "Your live \"%s\" (reservation %s) is over and its chat room has closed.\n"
             "The transcript is attached (%lld messages).\n",
             jstr(doc, "title"), id, (long long)json_integer_value(json_object_get(doc, "count")));
    onair_mail m = {.to_account = jstr(doc, "owner"), .subject = subject, .body = body, .attachment_name = name,
                    .attachment = text, .reservation_id = id};
    int rc = mail->send(ud, &m);
    if (rc == ONAIR_OK)
        st->api->log(st->h, ONAIR_LOG_INFO, "%s: transcript queued for mail to %s", id, jstr(doc, "owner"));
    else if (rc == ONAIR_E_NOTFOUND)
        st->api->log(st->h, ONAIR_LOG_INFO, "%s: %s has no e-mail address: the transcript is not mailed", id,
                     jstr(doc, "owner"));
    else
        st->api->log(st->h, ONAIR_LOG_WARN, "%s: the mail service refused the transcript (%d)", id, rc);
}

/* Sends the archive of id to its owner and removes the delivery mark. */
static void deliver(tstate *st, const char *id)
{
    char key[64];
    size_t klen = key_of(key, sizeof key, "d", id, NULL);
    json_t *doc = load_doc(st, id);
    char *text = doc ? tr_text(doc) : NULL;
    if (!text) {
        st->api->log(st->h, ONAIR_LOG_ERROR, "%s: the archived transcript cannot be read: not delivered", id);
    } else {
        if (st->api->config_bool(st->h, "xmpp"))
            deliver_xmpp(st, doc, text);
        if (st->api->config_bool(st->h, "mail"))
            deliver_mail(st, doc, text);
    }
    free(text);
    json_decref(doc);
    if (klen)
        st->api->store_del(st->h, NULL, key, klen);
}

typedef struct id_list {
    char (*ids)[ID_LEN + 1];
    size_t n, cap;
} id_list;

static int collect_pending(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)val;
    (void)vlen;
    id_list *l = ud;
    if (klen != 2 + ID_LEN)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 8;
        char(*g)[ID_LEN + 1] = realloc(l->ids, cap * sizeof *g);
        if (!g)
            return 1;
        l->ids = g;
        l->cap = cap;
    }
    memcpy(l->ids[l->n], (const char *)key + 2, ID_LEN);
    l->ids[l->n][ID_LEN] = '\0';
    l->n++;
    return 0;
}

/* Deliveries a crash interrupted (their marks are still there). */
static void on_pending(void *ud, uint64_t id)
{
    (void)id;
    tstate *st = ud;
    st->pending_timer = 0;
    id_list l = {0};
    st->api->store_iter(st->h, NULL, "d/", 2, collect_pending, &l);
    for (size_t i = 0; i < l.n; i++) {
        st->api->log(st->h, ONAIR_LOG_INFO, "%s: delivering a transcript left pending by the last run", l.ids[i]);
        deliver(st, l.ids[i]);
    }
    free(l.ids);
}

/* ---- archiving at close ---- */

/* The writes of one archive, in one transaction. */
typedef struct archive_job {
    tstate *st;
    const char *key[3];
    size_t klen[3];
    const char *val[3];
} archive_job;

static int archive_txn(void *ud, onair_txn *txn)
{
    archive_job *j = ud;
    for (int i = 0; i < 3; i++) {
        int rc = j->st->api->store_put(j->st->h, txn, j->key[i], j->klen[i], j->val[i], strlen(j->val[i]));
        if (rc != ONAIR_OK)
            return rc;
    }
    return 0;
}

/* The selection for a reservation: its owner's choice, else the config. */
static void choose(tstate *st, const res_info *ri, tr_meta *m)
{
    if (!tr_part_parse(ri->part, &m->part) && !tr_part_parse(st->api->config_string(st->h, "part"), &m->part))
        m->part = TR_PART_ALL;
    m->notices = *ri->notices ? strcmp(ri->notices, "true") == 0 : st->api->config_bool(st->h, "notices");
}

static int on_room_closed(void *ud, onair_event event, const void *payload)
{
    (void)event;
    tstate *st = ud;
    const onair_room_event *e = payload;
    const char *id = e->reservation_id;
    if (st->api->abi_minor < 2 || !id || !valid_id(id) || !e->reason)
        return ONAIR_HOOK_CONTINUE;
    char tkey[64], skey[64], dkey[64], okey[OWNER_MAX + 64];
    size_t tlen = key_of(tkey, sizeof tkey, "t", id, NULL), slen = key_of(skey, sizeof skey, "s", id, NULL),
           dlen = key_of(dkey, sizeof dkey, "d", id, NULL);
    size_t have = 0;
    if (st->api->store_get(st->h, NULL, tkey, tlen, NULL, 0, &have) == ONAIR_OK) {
        st->api->log(st->h, ONAIR_LOG_INFO, "%s: the room closed again (after a restart): its transcript is "
                                            "archived already", id);
        return ONAIR_HOOK_CONTINUE;
    }
    res_info ri = {0};
    int rc = st->api->reservation_read(st->h, id, res_fill, &ri);
    if (rc != ONAIR_OK || !ri.found) {
        st->api->log(st->h, ONAIR_LOG_ERROR, "%s: the reservation cannot be read (%d): no transcript", id, rc);
        return ONAIR_HOOK_CONTINUE;
    }
    size_t olen = key_of(okey, sizeof okey, "o", ri.owner, id);
    tr_meta m = {
        .reservation_id = id, .owner = ri.owner, .title = ri.title, .room = e->room, .reason = e->reason,
        .start = ri.start, .end = ri.end, .started_ms = ri.start * 1000, .closed_ms = e->time_ms,
    };
    char *started = load(st, skey, slen); /* the live's start as "live started" told it */
    if (started) {
        long long v = strtoll(started, NULL, 10);
        if (v > 0)
            m.started_ms = v;
        free(started);
    }
    choose(st, &ri, &m);
    json_t *doc = tr_build(&m, e->log, e->nlog);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_t *row = doc ? json_pack("{s:s, s:s, s:s, s:s, s:O}", "title", ri.title, "start", jstr(doc, "start"),
                                  "closed", jstr(doc, "closed"), "reason", e->reason, "count",
                                  json_object_get(doc, "count"))
                      : NULL;
    char *rowtext = row ? json_dumps(row, JSON_COMPACT) : NULL;
    if (!text || !rowtext || !olen) {
        st->api->log(st->h, ONAIR_LOG_ERROR, "%s: the transcript could not be made: not archived", id);
    } else {
        archive_job j = {st, {tkey, okey, dkey}, {tlen, olen, dlen}, {text, rowtext, ""}};
        rc = st->api->store_txn(st->h, archive_txn, &j);
        if (rc != ONAIR_OK) {
            st->api->log(st->h, ONAIR_LOG_ERROR, "%s: the transcript could not be archived (%d)", id, rc);
        } else {
            st->api->log(st->h, ONAIR_LOG_INFO, "%s: transcript archived (%lld of %zu messages: %s, %s notices)", id,
                         (long long)json_integer_value(json_object_get(doc, "count")), e->nlog,
                         tr_part_name(m.part), m.notices ? "with" : "without");
            st->api->store_del(st->h, NULL, skey, slen);
            deliver(st, id);
        }
    }
    json_decref(row);
    free(rowtext);
    free(text);
    json_decref(doc);
    return ONAIR_HOOK_CONTINUE;
}

static int on_live_started(void *ud, onair_event event, const void *payload)
{
    (void)event;
    tstate *st = ud;
    const onair_live_event *e = payload;
    if (st->api->abi_minor < 2 || !valid_id(e->reservation_id) || e->started_ms <= 0)
        return ONAIR_HOOK_CONTINUE;
    char key[64], val[32];
    size_t klen = key_of(key, sizeof key, "s", e->reservation_id, NULL);
    size_t have = 0;
    if (st->api->store_get(st->h, NULL, key, klen, NULL, 0, &have) == ONAIR_OK)
        return ONAIR_HOOK_CONTINUE; /* back on air: times count from the first start */
    snprintf(val, sizeof val, "%lld", (long long)e->started_ms);
    st->api->store_put(st->h, NULL, key, klen, val, strlen(val));
    return ONAIR_HOOK_CONTINUE;
}

/* ---- fetching: who may, and the two forms ---- */

enum { FETCH_OK = 0, FETCH_NOTFOUND = 1, FETCH_FORBIDDEN = 2 };

typedef struct owner_probe {
    bool found;
    char owner[OWNER_MAX + 1];
} owner_probe;

static void probe_owner(void *ud, const onair_reservation_event *r, const onair_reservation_settings *s)
{
    (void)s;
    owner_probe *p = ud;
    p->found = true;
    snprintf(p->owner, sizeof p->owner, "%s", r->owner);
}

/* The archive of id for account `who`: FETCH_OK with *out, or why not.
 * Another account's reservation is forbidden whether or not it has a
 * transcript yet. */
static int fetch(tstate *st, const char *who, const char *id, json_t **out)
{
    *out = NULL;
    if (!who || !valid_id(id))
        return FETCH_NOTFOUND;
    json_t *doc = load_doc(st, id);
    if (doc) {
        if (strcmp(jstr(doc, "owner"), who) != 0) {
            json_decref(doc);
            return FETCH_FORBIDDEN;
        }
        *out = doc;
        return FETCH_OK;
    }
    owner_probe p = {0};
    if (st->api->reservation_read(st->h, id, probe_owner, &p) == ONAIR_OK && p.found && strcmp(p.owner, who) != 0)
        return FETCH_FORBIDDEN;
    return FETCH_NOTFOUND;
}

/* The form asked for: "text" (or absent) or "json"; NULL for anything else. */
static const char *format_of(const char *f)
{
    if (!f || !*f || strcmp(f, "text") == 0)
        return "text";
    if (strcmp(f, "json") == 0)
        return "json";
    return NULL;
}

/* The body of the form (malloc'd). */
static char *render(const json_t *doc, const char *format)
{
    return strcmp(format, "json") == 0 ? json_dumps(doc, JSON_INDENT(1)) : tr_text(doc);
}

/* ---- ad-hoc commands ---- */

typedef struct list_ctx {
    tstate *st;
    onair_command *cmd;
    size_t n;
} list_ctx;

static int list_row(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    list_ctx *c = ud;
    if (klen < ID_LEN)
        return 0;
    char id[ID_LEN + 1];
    memcpy(id, (const char *)key + klen - ID_LEN, ID_LEN);
    id[ID_LEN] = '\0';
    json_t *row = json_loadb(val, vlen, 0, NULL);
    char label[TITLE_MAX + 64], value[256];
    snprintf(label, sizeof label, "%s", row ? jstr(row, "title") : id);
    snprintf(value, sizeof value, "live of %s, room closed %s (%s), %lld messages", row ? jstr(row, "start") : "",
             row ? jstr(row, "closed") : "", row ? jstr(row, "reason") : "",
             row ? (long long)json_integer_value(json_object_get(row, "count")) : 0LL);
    json_decref(row);
    c->st->api->command_result(c->cmd, id, label, value);
    c->n++;
    return 0;
}

static void cmd_list(void *ud, onair_command *cmd)
{
    tstate *st = ud;
    const char *who = st->api->command_account(cmd);
    if (!who) {
        st->api->command_error(cmd, "cancel", "forbidden", "transcripts belong to local accounts");
        return;
    }
    char prefix[OWNER_MAX + 8];
    size_t plen = key_of(prefix, sizeof prefix, "o", who, "");
    list_ctx c = {st, cmd, 0};
    if (plen)
        st->api->store_iter(st->h, NULL, prefix, plen, list_row, &c);
    char note[128];
    snprintf(note, sizeof note, c.n ? "%zu transcript%s: fetch one with the command \"Fetch a transcript\"."
                                    : "You have no transcripts yet.",
             c.n, c.n == 1 ? "" : "s");
    st->api->command_note(cmd, note);
}

static void cmd_fetch(void *ud, onair_command *cmd)
{
    tstate *st = ud;
    const char *who = st->api->command_account(cmd);
    const char *id = st->api->command_value(cmd, "id");
    const char *format = format_of(st->api->command_value(cmd, "format"));
    if (!who) {
        st->api->command_error(cmd, "cancel", "forbidden", "transcripts belong to local accounts");
        return;
    }
    if (!format) {
        st->api->command_fail(cmd, "format", "text or json");
        return;
    }
    if (!valid_id(id)) {
        st->api->command_fail(cmd, "id", "not a reservation ID");
        return;
    }
    json_t *doc;
    int rc = fetch(st, who, id, &doc);
    if (rc == FETCH_FORBIDDEN) {
        st->api->command_error(cmd, "auth", "forbidden", "this reservation belongs to another account");
        return;
    }
    if (rc == FETCH_NOTFOUND) {
        st->api->command_error(cmd, "cancel", "item-not-found", "no transcript for this reservation (yet)");
        return;
    }
    char *body = render(doc, format);
    json_decref(doc);
    if (!body) {
        st->api->command_error(cmd, "wait", "internal-server-error", "the transcript could not be made");
        return;
    }
    st->api->command_result(cmd, "format", "Format", format);
    st->api->command_result(cmd, "transcript", "Transcript", body);
    free(body);
}

static const onair_field fetch_fields[] = {
    {.var = "id", .label = "Reservation ID", .type = ONAIR_FIELD_TEXT, .required = true},
    {.var = "format", .label = "Format (text or json)", .type = ONAIR_FIELD_TEXT, .default_value = "text"},
    {.var = NULL},
};

/* ---- HTTP ---- */

static void http_fetch(void *ud, onair_http_request *req)
{
    tstate *st = ud;
    const char *id = st->api->http_param(req, 0);
    const char *format = format_of(st->api->http_query(req, "format"));
    if (!format) {
        st->api->http_error(req, 400, "format", "format: text or json");
        return;
    }
    json_t *doc;
    int rc = fetch(st, st->api->http_user(req), id, &doc);
    if (rc == FETCH_FORBIDDEN) {
        st->api->http_error(req, 403, NULL, "this reservation belongs to another account");
        return;
    }
    if (rc == FETCH_NOTFOUND) {
        st->api->http_error(req, 404, NULL, "no transcript for this reservation (yet)");
        return;
    }
    char *body = render(doc, format);
    json_decref(doc);
    if (!body) {
        st->api->http_error(req, 500, NULL, "the transcript could not be made");
        return;
    }
    st->api->http_reply(req, 200, strcmp(format, "json") == 0 ? "application/json" : "text/plain; charset=utf-8",
                        body, strlen(body));
    free(body);
}

/* ---- life cycle ---- */

static int check_settings(tstate *st)
{
    tr_part p;
    if (!tr_part_parse(st->api->config_string(st->h, "part"), &p)) {
        st->api->log(st->h, ONAIR_LOG_ERROR, "plugin.%s.part: expected all, live or addressed", NAME);
        return -1;
    }
    return 0;
}

static void shutdown_plugin(void *state)
{
    free(state);
}

static int init(onair_host *h, const onair_host_api *api, void **state)
{
    if (api->abi_minor < 2 || !ONAIR_HOST_HAS(api, http_route) || !ONAIR_HOST_HAS(api, command_error) ||
        !ONAIR_HOST_HAS(api, reservation_read)) {
        api->log(h, ONAIR_LOG_ERROR, "this server's plugin API is too old (ABI 1.%d; 1.2 needed)", api->abi_minor);
        return -1;
    }
    tstate *st = calloc(1, sizeof *st);
    if (!st)
        return -1;
    st->h = h;
    st->api = api;
    if (check_settings(st) != 0) {
        free(st);
        return -2;
    }
    static const onair_command_spec list_spec = {
        .node = "transcripts", .name = "List my transcripts", .who = ONAIR_COMMAND_ACCOUNTS};
    static const onair_command_spec fetch_spec = {
        .node = "transcript", .name = "Fetch a transcript", .who = ONAIR_COMMAND_ACCOUNTS,
        .title = "Fetch a transcript",
        .instructions = "The reservation ID of one of your lives, and the form: text, or json (times relative to "
                        "the start of the live).",
        .fields = fetch_fields};
    int rc = api->hook(h, ONAIR_EVENT_ROOM_CLOSED, 0, on_room_closed, st);
    if (rc == ONAIR_OK)
        rc = api->hook(h, ONAIR_EVENT_LIVE_STARTED, 0, on_live_started, st);
    if (rc == ONAIR_OK)
        rc = api->command_register(h, &list_spec, cmd_list, st);
    if (rc == ONAIR_OK)
        rc = api->command_register(h, &fetch_spec, cmd_fetch, st);
    if (rc == ONAIR_OK) {
        int hr = api->http_route(h, "GET", "/api/v1/reservations/:id/transcript", ONAIR_HTTP_AUTH, http_fetch, st);
        if (hr == ONAIR_E_INVALID)
            api->log(h, ONAIR_LOG_INFO, "no HTTP service: transcripts are fetched by ad-hoc command only");
        else
            rc = hr;
    }
    if (rc != ONAIR_OK) {
        api->log(h, ONAIR_LOG_ERROR, "cannot register (%d)", rc);
        free(st);
        return -3;
    }
    st->pending_timer = api->timer_start(h, 0, 0, on_pending, st); /* what a crash left undelivered */
    api->log(h, ONAIR_LOG_INFO, "ready: transcripts of %s by default, %s notices", api->config_string(h, "part"),
             api->config_bool(h, "notices") ? "with" : "without");
    *state = st;
    return 0;
}

static int reload(void *state)
{
    return check_settings(state);
}

static const onair_plugin_info info = {
    .abi = ONAIR_PLUGIN_ABI,
    .name = NAME,
    .version = "1.0",
    .description = "archives each live's chat transcript and delivers it to the broadcaster",
    .config = config_keys,
    .init = init,
    .shutdown = shutdown_plugin,
    .reload = reload,
};

ONAIR_PLUGIN_EXPORT const onair_plugin_info *onair_plugin_entry(void)
{
    return &info;
}
