/* reservation_http.c - the reservation rules as a JSON HTTP API for the web
 * pages (specs/http-api.md, "Reservations"):
 *
 *   GET    /api/v1/channels                        channels, prices
 *   GET    /api/v1/availability?date=YYYY-MM-DD    every channel's slots
 *   GET    /api/v1/schedule                        upcoming public lives
 *   GET    /api/v1/lives/:id                       what a live page shows
 *   POST   /api/v1/reservations/quote        auth  stage one: checked, fee
 *   POST   /api/v1/reservations              auth  stage two: booked (201)
 *   GET    /api/v1/reservations              auth  my channel
 *   GET    /api/v1/reservations/:id          auth  one of mine
 *   DELETE /api/v1/reservations/:id          auth  cancel
 *   POST   /api/v1/reservations/:id/reconfirm auth reconfirm: the settings
 *   GET    /api/v1/reservations/:id/settings auth  the settings again
 *
 * The booking body is the form of the ad-hoc command as a JSON object
 * (booleans as true/false, friends as an array or one line per address).
 * Stage two checks everything again, so a client that never confirms (the
 * "cancel" of the two stages) leaves nothing behind.
 */
#include "reservation_http.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "datetime.h"
#include "muc.h"
#include "media.h"
#include "reservation.h"
#include "server.h"
#include "web.h"

#define SCHEDULE_MAX 200

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static int status_of(int code)
{
    switch (code) {
    case RES_E_INVALID:
        return 400;
    case RES_E_CONFLICT:
        return 409;
    case RES_E_FORBIDDEN:
        return 403;
    case RES_E_NOTFOUND:
        return 404;
    case RES_E_GONE:
        return 410;
    default:
        return 500;
    }
}

static void reply_res_error(web_response *res, int code, const res_error *e)
{
    web_reply_error(res, status_of(code), e->field[0] ? e->field : NULL,
                    e->message[0] ? e->message : "the server could not do that now");
}

static json_t *time_json(int64_t t)
{
    char buf[DATETIME_MAX];
    return json_string(datetime_format(t, buf));
}

static json_t *channel_json(const channel *ch)
{
    return json_pack("{s:s, s:s, s:I, s:I, s:I}", "id", ch->id, "name", ch->name, "capacity",
                     (json_int_t)ch->capacity, "bandwidth_kbps", (json_int_t)ch->bandwidth_kbps, "price_per_hour",
                     (json_int_t)ch->price_per_hour);
}

static json_t *friends_json(const char *friends)
{
    json_t *arr = json_array();
    const char *p = friends ? friends : "";
    while (arr && *p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len)
            json_array_append_new(arr, json_stringn(p, len));
        p += len + (eol ? 1 : 0);
    }
    return arr;
}

/* The owner's view of a reservation (no passwords; the settings have the
 * shared one). */
static json_t *owner_json(server *srv, const reservation *r, int64_t now)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:s, s:o, s:I, s:I, "
                          "s:I, s:I, s:s, s:s, s:o, s:I}",
                          "id", r->id, "owner", r->owner, "channel", r->channel, "start", time_json(r->start), "end",
                          time_json(r->end), "state", res_state_name(reservation_state_at(r, now)), "level",
                          res_level_name(r->level), "title", r->title, "genre", r->genre, "summary", r->summary,
                          "detail", r->detail, "show_email", r->show_email, "show_url", r->show_url, "url", r->url,
                          "friends", friends_json(r->friends), "capacity", (json_int_t)r->capacity, "bandwidth_kbps",
                          (json_int_t)r->bandwidth_kbps, "price_per_hour", (json_int_t)r->price_per_hour, "fee",
                          (json_int_t)r->fee, "currency", srv->res.policy.currency, "email", r->email,
                          "reconfirm_by", time_json(r->deadline), "viewers", (json_int_t)r->viewers);
    if (o && r->cancel_reason[0])
        json_object_set_new(o, "cancelled_by", json_string(r->cancel_reason));
    if (o) {
        json_object_set_new(o, "transcript", json_string(r->transcript[0] ? r->transcript : "default"));
        json_object_set_new(o, "transcript_notices",
                            r->transcript_notices[0] ? json_boolean(strcmp(r->transcript_notices, "true") == 0)
                                                     : json_null());
    }
    if (o && r->id[0]) {
        /* The broadcast (specs/media.md): on air, viewers at once at most
         * ("viewers") and viewer sessions in all, when it aired and ended. */
        media_broadcast b;
        media_broadcast_of(srv, r->id, &b);
        json_object_set_new(o, "on_air", json_boolean(b.is_on_air));
        json_object_set_new(o, "viewers", json_integer(b.viewers_peak));
        json_object_set_new(o, "viewers_total", json_integer(b.viewers_total));
        json_object_set_new(o, "aired_at", b.has_aired ? time_json(b.aired_ms / 1000) : json_null());
        json_object_set_new(o, "ended_at", b.ended_ms ? time_json(b.ended_ms / 1000) : json_null());
        if (b.is_on_air)
            json_object_set_new(o, "state", json_string("live"));
    }
    return o;
}

/* What anyone may see of a live (the e-mail and home page only when the
 * owner chose to show them). */
static json_t *public_json(server *srv, const reservation *r, int64_t now)
{
    char room[RES_ID_LEN + 300], page[RES_ID_LEN + 600];
    snprintf(room, sizeof room, "%s@%s", r->id, srv->res.policy.room_domain);
    snprintf(page, sizeof page, "%s%s", srv->res.policy.page_url, r->id);
    res_state st = reservation_state_at(r, now);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:b, s:I, s:s, s:s, s:s}", "id", r->id,
                          "title", r->title, "genre", r->genre, "summary", r->summary, "detail", r->detail, "channel",
                          r->channel, "start", time_json(r->start), "end", time_json(r->end), "level",
                          res_level_name(r->level), "password_required", r->level != RES_PUBLIC, "capacity",
                          (json_int_t)r->capacity, "state", res_state_name(st), "room", room, "page", page);
    muc_chat_status chat;
    muc_chat_status_of(srv, r, now, &chat);
    static const char *const chat_states[] = {"not_open", "open", "closed"};
    if (o)
        json_object_set_new(o, "chat",
                            json_pack("{s:s, s:o, s:o}", "state", chat_states[chat.state], "opens",
                                      time_json(chat.opens_at), "closes", time_json(chat.closes_at)));
    /* the stream now: on air or not, and how many watch it (specs/media.md) */
    if (o) {
        json_object_set_new(o, "on_air", json_boolean(media_is_on_air(srv, r->id)));
        json_object_set_new(o, "viewers_now", json_integer((json_int_t)media_viewer_count(srv, r->id)));
    }
    if (o && r->show_email && r->email[0])
        json_object_set_new(o, "email", json_string(r->email));
    if (o && r->show_url && r->url[0])
        json_object_set_new(o, "url", json_string(r->url));
    return o;
}

static json_t *settings_json(server *srv, const res_settings *st)
{
    json_t *o = json_pack("{s:s, s:o, s:o, s:o, s:o, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:o, s:s, s:o}", "id", st->id,
                     "start", time_json(st->start), "end", time_json(st->end), "ingest_open",
                     time_json(st->ingest_open), "ingest_close", time_json(st->ingest_close), "ingest_jid",
                     st->ingest_jid, "room_jid", st->room_jid, "page_url", st->page_url, "bandwidth_kbps",
                     (json_int_t)st->bandwidth_kbps, "capacity", (json_int_t)st->capacity, "title", st->title,
                     "summary", st->summary, "level", res_level_name(st->level), "friends",
                     friends_json(st->friends), "shared_password", st->shared_password, "issued",
                     time_json(st->issued));
    /* the media endpoint's address and parameters (specs/media.md, "Settings") */
    if (o && json_object_update_new(o, json_pack("{s:s, s:i, s:s, s:s, s:s}", "ingest_host", media_public_ip(srv),
                                                 "ingest_port", media_port(srv), "ingest_srtp", MEDIA_INGEST_SRTP,
                                                 "ingest_video", MEDIA_INGEST_VIDEO, "ingest_audio",
                                                 MEDIA_INGEST_AUDIO)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static void reply_or_500(web_response *res, int status, json_t *body)
{
    if (!body)
        web_reply_error(res, 500, NULL, "out of memory");
    else
        web_reply_json(res, status, body);
}

/* ---- the booking body ---- */

typedef struct body_form {
    res_form form;
    char *friends; /* owned: the array joined by lines */
} body_form;

/* Reads the JSON body into a res_form; every value stays borrowed from the
 * body.  Returns 0, or -1 after replying 400 naming the field. */
static int read_body(const web_request *req, web_response *res, body_form *bf)
{
    memset(bf, 0, sizeof *bf);
    if (!req->body) {
        web_reply_error(res, 400, NULL, "a JSON object with the booking is required");
        return -1;
    }
    static const char *const names[] = {"channel", "start", "end", "level", "title", "genre", "show_email",
                                        "show_url", "url", "broadcast_password", "shared_password", "friends",
                                        "summary", "detail", "transcript", "transcript_notices"};
    const char **slots[] = {&bf->form.channel, &bf->form.start, &bf->form.end, &bf->form.level, &bf->form.title,
                            &bf->form.genre, &bf->form.show_email, &bf->form.show_url, &bf->form.url,
                            &bf->form.broadcast_password, &bf->form.shared_password, &bf->form.friends,
                            &bf->form.summary, &bf->form.detail, &bf->form.transcript,
                            &bf->form.transcript_notices};
    const char *key;
    json_t *v;
    char msg[200];
    json_object_foreach(req->body, key, v)
    {
        size_t i = 0;
        while (i < sizeof names / sizeof names[0] && strcmp(names[i], key) != 0)
            i++;
        if (i == sizeof names / sizeof names[0]) {
            snprintf(msg, sizeof msg, "%.64s: unknown field", key);
            web_reply_error(res, 400, key, msg);
            return -1;
        }
        if (json_is_null(v))
            continue;
        if (strcmp(key, "show_email") == 0 || strcmp(key, "show_url") == 0 ||
            strcmp(key, "transcript_notices") == 0) {
            if (!json_is_boolean(v)) {
                snprintf(msg, sizeof msg, "%s: expected true or false", key);
                web_reply_error(res, 400, key, msg);
                return -1;
            }
            *slots[i] = json_is_true(v) ? "true" : "false";
        } else if (strcmp(key, "friends") == 0 && json_is_array(v)) {
            size_t total = 1, k;
            json_t *item;
            json_array_foreach(v, k, item)
            {
                if (!json_is_string(item) || strchr(json_string_value(item), '\n')) {
                    web_reply_error(res, 400, key, "friends: expected an array of addresses (strings)");
                    return -1;
                }
                total += json_string_length(item) + 1;
            }
            free(bf->friends);
            bf->friends = malloc(total);
            if (!bf->friends) {
                web_reply_error(res, 500, NULL, "out of memory");
                return -1;
            }
            bf->friends[0] = '\0';
            json_array_foreach(v, k, item)
            {
                strcat(bf->friends, json_string_value(item));
                strcat(bf->friends, "\n");
            }
            *slots[i] = bf->friends;
        } else if (json_is_string(v)) {
            if (strlen(json_string_value(v)) != json_string_length(v)) {
                snprintf(msg, sizeof msg, "%s: contains a NUL character", key);
                web_reply_error(res, 400, key, msg);
                return -1;
            }
            *slots[i] = json_string_value(v);
        } else {
            snprintf(msg, sizeof msg, "%s: expected a string", key);
            web_reply_error(res, 400, key, msg);
            return -1;
        }
    }
    return 0;
}

/* Stage one for a request: the body read and every rule checked into *d.
 * Returns 0, or -1 after replying with the error. */
static int prepare_body(server *srv, const web_request *req, web_response *res, int64_t now, reservation *d)
{
    body_form bf;
    if (read_body(req, res, &bf) != 0) {
        free(bf.friends);
        return -1;
    }
    res_error e;
    int rc = reservation_prepare(&srv->res, req->user, &bf.form, now, d, &e);
    free(bf.friends);
    if (rc != RES_OK) {
        reply_res_error(res, rc, &e);
        return -1;
    }
    return 0;
}

static void quote(void *ud, server *srv, const web_request *req, web_response *res)
{
    (void)ud;
    reservation d;
    if (prepare_body(srv, req, res, now_s(), &d) != 0)
        return;
    json_t *o = owner_json(srv, &d, now_s());
    if (o) {
        json_object_del(o, "id");
        json_object_del(o, "state");
        json_object_del(o, "viewers");
    }
    reservation_clear(&d);
    reply_or_500(res, 200, o ? json_pack("{s:o}", "quote", o) : NULL);
}

static void create(void *ud, server *srv, const web_request *req, web_response *res)
{
    (void)ud;
    reservation d;
    res_error e;
    int64_t now = now_s();
    if (prepare_body(srv, req, res, now, &d) != 0)
        return;
    int rc = reservation_book(&srv->res, &d, now, &e);
    if (rc != RES_OK) {
        reservation_clear(&d);
        reply_res_error(res, rc, &e);
        return;
    }
    char location[64 + RES_ID_LEN];
    snprintf(location, sizeof location, "/api/v1/reservations/%s", d.id);
    web_add_header(res, "Location", location);
    json_t *o = owner_json(srv, &d, now);
    reservation_clear(&d);
    reply_or_500(res, 201, o ? json_pack("{s:o}", "reservation", o) : NULL);
}

static int add_owner_row(void *ud, const reservation *r)
{
    void **ctx = ud;
    json_t *o = owner_json(ctx[0], r, now_s());
    if (!o || json_array_append_new(ctx[1], o) != 0)
        return 1;
    return 0;
}

static void list_mine(void *ud, server *srv, const web_request *req, web_response *res)
{
    (void)ud;
    json_t *arr = json_array();
    void *ctx[2] = {srv, arr};
    if (!arr || reservation_list_owner(&srv->res, req->user, add_owner_row, ctx) != RES_OK) {
        json_decref(arr);
        web_reply_error(res, 500, NULL, "the server could not list the reservations");
        return;
    }
    reply_or_500(res, 200, json_pack("{s:o}", "reservations", arr));
}

/* Reads :id for the requesting owner; replies and returns -1 on failure. */
static int get_mine(server *srv, const web_request *req, web_response *res, reservation *r)
{
    if (reservation_get(&srv->res, req->params[0], r) != RES_OK) {
        web_reply_error(res, 404, "id", "id: no such reservation");
        return -1;
    }
    if (strcmp(r->owner, req->user) != 0) {
        reservation_clear(r);
        web_reply_error(res, 403, "id", "id: this reservation belongs to another account");
        return -1;
    }
    return 0;
}

static void get_one(void *ud, server *srv, const web_request *req, web_response *res)
{
    (void)ud;
    reservation r;
    if (get_mine(srv, req, res, &r) != 0)
        return;
    json_t *o = owner_json(srv, &r, now_s());
    reservation_clear(&r);
    reply_or_500(res, 200, o ? json_pack("{s:o}", "reservation", o) : NULL);
}

static void cancel(void *ud, server *srv, const web_request *req, web_response *res)
{
    (void)ud;
    reservation r;
    res_error e;
    int rc = reservation_cancel(&srv->res, req->user, req->params[0], now_s(), &r, &e);
    if (rc != RES_OK) {
        reply_res_error(res, rc, &e);
        return;
    }
    json_t *o = owner_json(srv, &r, now_s());
    reservation_clear(&r);
    reply_or_500(res, 200, o ? json_pack("{s:o}", "reservation", o) : NULL);
}

static void reply_settings(server *srv, const web_request *req, web_response *res, int status)
{
    res_settings st;
    res_error e;
    int rc = reservation_settings(&srv->res, req->user, req->params[0], &st, &e);
    if (rc != RES_OK) {
        reply_res_error(res, rc, &e);
        return;
    }
    json_t *o = settings_json(srv, &st);
    res_settings_clear(&st);
    reply_or_500(res, status, o ? json_pack("{s:o}", "settings", o) : NULL);
}

static void reconfirm(void *ud, server *srv, const web_request *req, web_response *res)
{
    (void)ud;
    reservation r;
    res_error e;
    int rc = reservation_reconfirm(&srv->res, req->user, req->params[0], now_s(), &r, &e);
    if (rc != RES_OK) {
        reply_res_error(res, rc, &e);
        return;
    }
    reservation_clear(&r);
    reply_settings(srv, req, res, 200);
}

static void settings(void *ud, server *srv, const web_request *req, web_response *res)
{
    (void)ud;
    reply_settings(srv, req, res, 200);
}

/* ---- public ---- */

static int add_channel(void *ud, const channel *ch)
{
    json_t *o = channel_json(ch);
    return !o || json_array_append_new(ud, o) != 0;
}

static void channels(void *ud, server *srv, const web_request *req, web_response *res)
{
    (void)ud;
    (void)req;
    json_t *arr = json_array();
    if (!arr || channel_list(&srv->res, add_channel, arr) != RES_OK) {
        json_decref(arr);
        web_reply_error(res, 500, NULL, "the server could not list the channels");
        return;
    }
    reply_or_500(res, 200, json_pack("{s:s, s:o}", "currency", srv->res.policy.currency, "channels", arr));
}

static const char *slot_state_name(res_slot_state s)
{
    return s == SLOT_FREE ? "free" : s == SLOT_BOOKED ? "booked" : "closed";
}

typedef struct avail_json {
    json_t *slots;    /* the day's slots, once: [{start, end}] */
    json_t *channels; /* per channel: its fields and "states", one per slot */
} avail_json;

static int add_availability(void *ud, const channel *ch, const res_slot *slots, size_t n)
{
    avail_json *aj = ud;
    if (json_array_size(aj->slots) == 0) {
        for (size_t i = 0; i < n; i++) {
            char a[DATETIME_MAX], b[DATETIME_MAX];
            json_t *s = json_pack("{s:s, s:s}", "start", datetime_format(slots[i].start, a), "end",
                                  datetime_format(slots[i].end, b));
            if (!s || json_array_append_new(aj->slots, s) != 0)
                return 1;
        }
    }
    json_t *o = channel_json(ch), *states = json_array();
    if (!o || !states) {
        json_decref(o);
        json_decref(states);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        json_array_append_new(states, json_string(slot_state_name(slots[i].state)));
    json_object_set_new(o, "states", states);
    return json_array_append_new(aj->channels, o) != 0;
}

static void availability(void *ud, server *srv, const web_request *req, web_response *res)
{
    (void)ud;
    const char *date = web_query(req, "date");
    char today[DATETIME_MAX];
    if (!date)
        date = datetime_format_day(now_s(), today);
    avail_json aj = {json_array(), json_array()};
    res_error e;
    int rc = aj.slots && aj.channels
                 ? reservation_availability(&srv->res, date, now_s(), add_availability, &aj, &e)
                 : RES_E_INTERNAL;
    if (rc != RES_OK) {
        json_decref(aj.slots);
        json_decref(aj.channels);
        if (rc == RES_E_INTERNAL)
            web_reply_error(res, 500, NULL, "the server could not read the availability");
        else
            reply_res_error(res, rc, &e);
        return;
    }
    reply_or_500(res, 200,
                 json_pack("{s:s, s:s, s:I, s:s, s:o, s:o}", "date", date, "timezone", srv->cfg.timezone, "slot_s",
                           (json_int_t)srv->res.policy.slot_s, "currency", srv->res.policy.currency, "slots",
                           aj.slots, "channels", aj.channels));
}

static int add_public_row(void *ud, const reservation *r)
{
    void **ctx = ud;
    json_t *o = public_json(ctx[0], r, now_s());
    return !o || json_array_append_new(ctx[1], o) != 0;
}

static void upcoming(void *ud, server *srv, const web_request *req, web_response *res)
{
    (void)ud;
    (void)req;
    json_t *arr = json_array();
    void *ctx[2] = {srv, arr};
    if (!arr || reservation_list_public(&srv->res, now_s(), SCHEDULE_MAX, add_public_row, ctx) != RES_OK) {
        json_decref(arr);
        web_reply_error(res, 500, NULL, "the server could not list the schedule");
        return;
    }
    reply_or_500(res, 200, json_pack("{s:o}", "lives", arr));
}

/* A live by its ID: public and password lives are listed anyway; a secret
 * one is reachable only by whoever knows its ID.  Cancelled: not found. */
static void live(void *ud, server *srv, const web_request *req, web_response *res)
{
    (void)ud;
    reservation r;
    if (reservation_get(&srv->res, req->params[0], &r) != RES_OK || r.state == RES_CANCELLED) {
        if (r.owner)
            reservation_clear(&r);
        web_reply_error(res, 404, "id", "id: no such live");
        return;
    }
    json_t *o = public_json(srv, &r, now_s());
    reservation_clear(&r);
    reply_or_500(res, 200, o ? json_pack("{s:o}", "live", o) : NULL);
}

int reservation_http_register(server *srv)
{
    int rc = 0;
    rc |= web_route(srv, "GET", "/api/v1/channels", 0, channels, NULL);
    rc |= web_route(srv, "GET", "/api/v1/availability", 0, availability, NULL);
    rc |= web_route(srv, "GET", "/api/v1/schedule", 0, upcoming, NULL);
    rc |= web_route(srv, "GET", "/api/v1/lives/:id", 0, live, NULL);
    rc |= web_route(srv, "POST", "/api/v1/reservations/quote", WEB_AUTH, quote, NULL);
    rc |= web_route(srv, "POST", "/api/v1/reservations", WEB_AUTH, create, NULL);
    rc |= web_route(srv, "GET", "/api/v1/reservations", WEB_AUTH, list_mine, NULL);
    rc |= web_route(srv, "GET", "/api/v1/reservations/:id", WEB_AUTH, get_one, NULL);
    rc |= web_route(srv, "DELETE", "/api/v1/reservations/:id", WEB_AUTH, cancel, NULL);
    rc |= web_route(srv, "POST", "/api/v1/reservations/:id/reconfirm", WEB_AUTH, reconfirm, NULL);
    rc |= web_route(srv, "GET", "/api/v1/reservations/:id/settings", WEB_AUTH, settings, NULL);
    return rc ? -1 : 0;
}
