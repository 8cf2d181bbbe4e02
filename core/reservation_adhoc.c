/* reservation_adhoc.c - the reservation rules as XEP-0050 ad-hoc commands
 * on the server's JID, so that any standard XMPP client can book
 * (specs/reservation.md has the protocol with examples):
 *
 *   book          stage 1: the booking form; stage 2: everything shown back
 *                 with the fee and the account's e-mail, complete or cancel
 *                 (cancel stores nothing); complete: the reservation ID
 *   reconfirm     id -> the settings document
 *   settings      id -> the settings document again
 *   cancel        id -> cancelled
 *   my-channel    the account's reservations as a table
 *   availability  date -> every channel's slots
 *   schedule      upcoming public and password lives (anyone, guests too)
 *
 * The first five need an authenticated account (not a guest).  A command
 * that takes input accepts it on the first call too (a client that submits
 * the form with "execute" right away).  Invalid input is a bad-payload error
 * naming the field, with the session kept so the form can be corrected.
 */
#include "reservation_adhoc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adhoc.h"
#include "datetime.h"
#include "media.h"
#include "reservation.h"
#include "server.h"

#define FORM_TYPE_BOOK "urn:onair:reservation:book"
#define FORM_TYPE_ID "urn:onair:reservation:id"
#define FORM_TYPE_SETTINGS "urn:onair:reservation:settings"
#define FORM_TYPE_AVAILABILITY "urn:onair:reservation:availability"

/* ---- what the forms show ---- */

#define VIEW_MAX 32
#define VIEW_BUF 8192
#define SCHEDULE_MAX 200 /* rows of the public schedule */

typedef struct view {
    const char *var[VIEW_MAX];
    const char *label[VIEW_MAX];
    const char *value[VIEW_MAX];
    size_t n;
    char buf[VIEW_BUF];
    size_t used;
} view;

static void view_add(view *v, const char *var, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void view_add(view *v, const char *var, const char *label, const char *fmt, ...)
{
    if (v->n == VIEW_MAX || v->used >= sizeof v->buf)
        return;
    char *at = v->buf + v->used;
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(at, sizeof v->buf - v->used, fmt, ap);
    va_end(ap);
    if (len < 0)
        return;
    size_t take = (size_t)len + 1 <= sizeof v->buf - v->used ? (size_t)len + 1 : sizeof v->buf - v->used;
    v->used += take;
    v->var[v->n] = var;
    v->label[v->n] = label;
    v->value[v->n] = at;
    v->n++;
}

static const char *yes_no(bool b)
{
    return b ? "yes" : "no";
}

/* The confirmation stage: every field of the draft, the fee and the
 * owner's e-mail; passwords are not echoed. */
static void view_booking(server *srv, const reservation *d, view *v)
{
    char a[DATETIME_MAX], b[DATETIME_MAX], c[DATETIME_MAX];
    channel ch;
    bool have = channel_get(&srv->res, d->channel, &ch) == RES_OK;
    view_add(v, "channel", "Channel", "%s%s%s%s", d->channel, have ? " (" : "", have ? ch.name : "", have ? ")" : "");
    view_add(v, "start", "Start", "%s", datetime_format(d->start, a));
    view_add(v, "end", "End", "%s", datetime_format(d->end, b));
    view_add(v, "level", "Who may watch", "%s", res_level_name(d->level));
    view_add(v, "title", "Title", "%s", d->title);
    view_add(v, "genre", "Genre", "%s", d->genre);
    view_add(v, "summary", "Summary", "%s", d->summary);
    view_add(v, "detail", "Detail", "%s", d->detail);
    view_add(v, "show_email", "Show my e-mail address", "%s", yes_no(d->show_email));
    view_add(v, "show_url", "Show my home page", "%s", yes_no(d->show_url));
    view_add(v, "url", "Home page", "%s", d->url);
    view_add(v, "friends", "Friends to invite", "%s", d->friends);
    view_add(v, "transcript", "Transcript", "%s", d->transcript[0] ? d->transcript : "default");
    view_add(v, "transcript_notices", "Transcript with notices", "%s",
             d->transcript_notices[0] ? d->transcript_notices : "default");
    view_add(v, "shared_password", "Shared password", "%s", d->level == RES_PUBLIC ? "none (public)" : "set");
    view_add(v, "capacity", "Viewers at most", "%u", d->capacity);
    view_add(v, "bandwidth_kbps", "Bandwidth (kbps)", "%u", d->bandwidth_kbps);
    view_add(v, "price_per_hour", "Price per hour", "%llu %s", (unsigned long long)d->price_per_hour,
             srv->res.policy.currency);
    view_add(v, "fee", "Fee", "%llu %s", (unsigned long long)d->fee, srv->res.policy.currency);
    view_add(v, "email", "Your e-mail address", "%s", *d->email ? d->email : "(none on the account)");
    view_add(v, "reconfirm_by", "Reconfirm by", "%s", datetime_format(d->deadline, c));
}

static void view_settings(server *srv, const res_settings *st, view *v)
{
    char a[DATETIME_MAX], b[DATETIME_MAX], c[DATETIME_MAX], d[DATETIME_MAX];
    view_add(v, "id", "Reservation ID", "%s", st->id);
    view_add(v, "start", "Start", "%s", datetime_format(st->start, a));
    view_add(v, "end", "End", "%s", datetime_format(st->end, b));
    view_add(v, "ingest_open", "Broadcast from", "%s", datetime_format(st->ingest_open, c));
    view_add(v, "ingest_close", "Broadcast until", "%s", datetime_format(st->ingest_close, d));
    view_add(v, "ingest_jid", "Broadcast to (Jingle)", "%s", st->ingest_jid);
    view_add(v, "ingest_host", "Media address (UDP)", "%s", media_public_ip(srv));
    view_add(v, "ingest_port", "Media port (UDP)", "%d", media_port(srv));
    view_add(v, "ingest_srtp", "SRTP suites", "%s", MEDIA_INGEST_SRTP);
    view_add(v, "ingest_video", "Video codecs", "%s", MEDIA_INGEST_VIDEO);
    view_add(v, "ingest_audio", "Audio codecs", "%s", MEDIA_INGEST_AUDIO);
    view_add(v, "room_jid", "Chat room", "%s", st->room_jid);
    view_add(v, "page_url", "Web page", "%s", st->page_url);
    view_add(v, "bandwidth_kbps", "Bandwidth (kbps)", "%u", st->bandwidth_kbps);
    view_add(v, "capacity", "Viewers at most", "%u", st->capacity);
    view_add(v, "title", "Title", "%s", st->title);
    view_add(v, "summary", "Summary", "%s", st->summary);
    view_add(v, "level", "Who may watch", "%s", res_level_name(st->level));
    view_add(v, "friends", "Friends", "%s", st->friends);
    view_add(v, "shared_password", "Shared password", "%s", st->shared_password);
}

/* A row of "my channel" (owner_view) or of the public schedule. */
static void view_row(server *srv, const reservation *r, int64_t now, bool owner_view, view *v)
{
    char a[DATETIME_MAX], b[DATETIME_MAX];
    if (owner_view) {
        /* the broadcast's state and peak of viewers (specs/media.md) */
        media_broadcast bc;
        media_broadcast_of(srv, r->id, &bc);
        view_add(v, "id", "ID", "%s", r->id);
        view_add(v, "title", "Title", "%s", r->title);
        view_add(v, "channel", "Channel", "%s", r->channel);
        view_add(v, "start", "Start", "%s", datetime_format(r->start, a));
        view_add(v, "end", "End", "%s", datetime_format(r->end, b));
        view_add(v, "state", "State", "%s", bc.is_on_air ? "live" : res_state_name(reservation_state_at(r, now)));
        view_add(v, "level", "Level", "%s", res_level_name(r->level));
        view_add(v, "fee", "Fee", "%llu", (unsigned long long)r->fee);
        view_add(v, "viewers", "Viewers", "%u", bc.viewers_peak);
        return;
    }
    view_add(v, "id", "ID", "%s", r->id);
    view_add(v, "title", "Title", "%s", r->title);
    view_add(v, "genre", "Genre", "%s", r->genre);
    view_add(v, "summary", "Summary", "%s", r->summary);
    view_add(v, "channel", "Channel", "%s", r->channel);
    view_add(v, "start", "Start", "%s", datetime_format(r->start, a));
    view_add(v, "end", "End", "%s", datetime_format(r->end, b));
    view_add(v, "password", "Password needed", "%s", r->level == RES_PUBLIC ? "no" : "yes");
    view_add(v, "email", "Broadcaster e-mail", "%s", r->show_email ? r->email : "");
    view_add(v, "url", "Broadcaster home page", "%s", r->show_url ? r->url : "");
    view_add(v, "room", "Chat room", "%s@%s", r->id, srv->res.policy.room_domain);
    view_add(v, "page", "Web page", "%s%s", srv->res.policy.page_url, r->id);
}

static const char *slot_state_name(res_slot_state s)
{
    return s == SLOT_FREE ? "free" : s == SLOT_BOOKED ? "booked" : "closed";
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static void internal_error(adhoc_reply *reply)
{
    adhoc_reply_error(reply, "wait", "internal-server-error", NULL, false, "the server could not do that now");
}

/* A res_error as the reply: invalid input keeps the session for a corrected
 * form; the others end it with their condition. */
static void reply_res_error(adhoc_reply *reply, int code, const res_error *e)
{
    switch (code) {
    case RES_E_INVALID:
        adhoc_reply_error(reply, "modify", "bad-request", "bad-payload", true, "%s", e->message);
        break;
    case RES_E_CONFLICT:
        adhoc_reply_error(reply, "cancel", "conflict", NULL, true, "%s", e->message);
        break;
    case RES_E_FORBIDDEN:
        adhoc_reply_error(reply, "auth", "forbidden", NULL, false, "%s", e->message);
        break;
    case RES_E_NOTFOUND:
        adhoc_reply_error(reply, "cancel", "item-not-found", NULL, false, "%s", e->message);
        break;
    case RES_E_GONE:
        adhoc_reply_error(reply, "cancel", "not-allowed", NULL, false, "%s", e->message);
        break;
    default:
        internal_error(reply);
        break;
    }
}

/* ---- book ---- */

static void free_draft(void *state)
{
    reservation *d = state;
    reservation_clear(d);
    free(d);
}

static dataform_field *add_required(dataform *f, dataform_field_type type, const char *var, const char *label,
                                    const char *desc, const char *value)
{
    dataform_field *fl = dataform_add_field(f, type, var, label);
    if (!fl)
        return NULL;
    dataform_field_set_required(fl, true);
    if ((desc && dataform_field_set_desc(fl, desc) != DATAFORM_OK) ||
        (value && dataform_field_add_value(fl, value) != DATAFORM_OK))
        return NULL;
    return fl;
}

static dataform_field *add_optional(dataform *f, dataform_field_type type, const char *var, const char *label,
                                    const char *desc, const char *value)
{
    dataform_field *fl = dataform_add_field(f, type, var, label);
    if (!fl)
        return NULL;
    if (type == DATAFORM_TEXT_MULTI && value)
        return dataform_field_set_text(fl, value) == DATAFORM_OK ? fl : NULL;
    if ((desc && dataform_field_set_desc(fl, desc) != DATAFORM_OK) ||
        (value && dataform_field_add_value(fl, value) != DATAFORM_OK))
        return NULL;
    return fl;
}

typedef struct channel_opts {
    dataform_field *fl;
    const char *currency;
    bool failed;
} channel_opts;

static int add_channel_option(void *ud, const channel *ch)
{
    channel_opts *co = ud;
    char label[CHANNEL_NAME_MAX * 4 + 128];
    snprintf(label, sizeof label, "%s (up to %u viewers, %u kbps, %llu %s per hour)", ch->name, ch->capacity,
             ch->bandwidth_kbps, (unsigned long long)ch->price_per_hour, co->currency);
    if (dataform_field_add_option(co->fl, label, ch->id) != DATAFORM_OK) {
        co->failed = true;
        return 1;
    }
    return 0;
}

/* The booking form, filled with a draft's values when going back to it. */
static dataform *book_form(server *srv, const reservation *d)
{
    char slot[320], a[DATETIME_MAX], b[DATETIME_MAX], s1[DATETIME_MAX], s2[DATETIME_MAX];
    snprintf(slot, sizeof slot,
             "Times as RFC 3339 (e.g. 2026-11-24T20:00:00+09:00) on slots of %s; bookings close %s before the "
             "start, when reconfirmation is due.",
             datetime_format_span(srv->res.policy.slot_s, s1), datetime_format_span(srv->res.policy.reconfirm_before_s, s2));
    dataform *f = dataform_new(DATAFORM_FORM, "Book a live", slot);
    if (!f)
        return NULL;
    channel_opts co = {NULL, srv->res.policy.currency, false};
    bool ok = dataform_add_form_type(f, FORM_TYPE_BOOK) &&
              (co.fl = add_required(f, DATAFORM_LIST_SINGLE, "channel", "Channel", NULL, d ? d->channel : NULL));
    ok = ok && channel_list(&srv->res, add_channel_option, &co) == RES_OK && !co.failed;
    dataform_field *lv = NULL;
    ok = ok && add_required(f, DATAFORM_TEXT_SINGLE, "start", "Start", "RFC 3339 date-time",
                            d ? datetime_format(d->start, a) : NULL) &&
         add_required(f, DATAFORM_TEXT_SINGLE, "end", "End", "RFC 3339 date-time",
                      d ? datetime_format(d->end, b) : NULL) &&
         (lv = add_required(f, DATAFORM_LIST_SINGLE, "level", "Who may watch",
                            "public: anyone; password: the shared password; secret: unlisted, shared password",
                            d ? res_level_name(d->level) : "public")) &&
         dataform_field_add_option(lv, "Public", "public") == DATAFORM_OK &&
         dataform_field_add_option(lv, "With a password", "password") == DATAFORM_OK &&
         dataform_field_add_option(lv, "Secret", "secret") == DATAFORM_OK &&
         add_required(f, DATAFORM_TEXT_SINGLE, "title", "Title", "at most 100 characters", d ? d->title : NULL) &&
         add_optional(f, DATAFORM_TEXT_SINGLE, "genre", "Genre", NULL, d ? d->genre : NULL) &&
         dataform_add_bool(f, "show_email", "Show my e-mail address", d && d->show_email) &&
         dataform_add_bool(f, "show_url", "Show my home page", d && d->show_url) &&
         add_optional(f, DATAFORM_TEXT_SINGLE, "url", "Home page", "http:// or https://", d ? d->url : NULL) &&
         add_required(f, DATAFORM_TEXT_PRIVATE, "broadcast_password", "Broadcast password",
                      "you give it when you go live", NULL) &&
         add_optional(f, DATAFORM_TEXT_PRIVATE, "shared_password", "Shared password",
                      "opens the stream and the chat; required unless the live is public", NULL) &&
         add_optional(f, DATAFORM_TEXT_MULTI, "friends", "Friends to invite", NULL, d ? d->friends : NULL) &&
         add_optional(f, DATAFORM_TEXT_SINGLE, "summary", "Summary", "at most 20 characters", d ? d->summary : NULL) &&
         add_optional(f, DATAFORM_TEXT_MULTI, "detail", "Detail", NULL, d ? d->detail : NULL);
    dataform_field *tr = NULL, *tn = NULL;
    ok = ok &&
         (tr = add_optional(f, DATAFORM_LIST_SINGLE, "transcript", "Transcript you receive after the live",
                            "default: the server's choice; all: everything said in the room; live: what was said "
                            "between the start and the end; addressed: messages addressed to you (\"yournick: ...\")",
                            d && d->transcript[0] ? d->transcript : "default")) &&
         dataform_field_add_option(tr, "The server's default", "default") == DATAFORM_OK &&
         dataform_field_add_option(tr, "Everything", "all") == DATAFORM_OK &&
         dataform_field_add_option(tr, "Only during the live", "live") == DATAFORM_OK &&
         dataform_field_add_option(tr, "Only messages addressed to me", "addressed") == DATAFORM_OK &&
         (tn = add_optional(f, DATAFORM_LIST_SINGLE, "transcript_notices", "Keep the room's notices in it",
                            "the room's own notices (\"the live starts soon\", ...)",
                            d && d->transcript_notices[0] ? d->transcript_notices : "default")) &&
         dataform_field_add_option(tn, "The server's default", "default") == DATAFORM_OK &&
         dataform_field_add_option(tn, "Yes", "true") == DATAFORM_OK &&
         dataform_field_add_option(tn, "No", "false") == DATAFORM_OK;
    if (!ok) {
        dataform_free(f);
        return NULL;
    }
    return f;
}

/* Stage two: everything shown back, with the fee and the e-mail. */
static dataform *confirm_form(server *srv, const reservation *d)
{
    dataform *f = dataform_new(DATAFORM_FORM, "Confirm the booking",
                               "Check the booking and the fee. Complete to book, or cancel to store nothing.");
    if (!f)
        return NULL;
    view *v = calloc(1, sizeof *v);
    bool ok = v && dataform_add_form_type(f, FORM_TYPE_BOOK) != NULL;
    if (ok)
        view_booking(srv, d, v);
    for (size_t i = 0; ok && i < v->n; i++) {
        dataform_field *fl = dataform_add_field(f, DATAFORM_TEXT_SINGLE, v->var[i], v->label[i]);
        ok = fl && dataform_field_set_text(fl, v->value[i]) == DATAFORM_OK;
        if (ok && strchr(v->value[i], '\n'))
            fl->type = DATAFORM_TEXT_MULTI;
    }
    free(v);
    if (!ok) {
        dataform_free(f);
        return NULL;
    }
    return f;
}

static res_form form_of(const dataform *f, char **friends, char **detail)
{
    *friends = dataform_text(f, "friends");
    *detail = dataform_text(f, "detail");
    res_form rf = {
        .channel = dataform_value(f, "channel"),
        .start = dataform_value(f, "start"),
        .end = dataform_value(f, "end"),
        .level = dataform_value(f, "level"),
        .title = dataform_value(f, "title"),
        .genre = dataform_value(f, "genre"),
        .show_email = dataform_value(f, "show_email"),
        .show_url = dataform_value(f, "show_url"),
        .url = dataform_value(f, "url"),
        .broadcast_password = dataform_value(f, "broadcast_password"),
        .shared_password = dataform_value(f, "shared_password"),
        .friends = *friends,
        .summary = dataform_value(f, "summary"),
        .detail = *detail,
        .transcript = dataform_value(f, "transcript"),
        .transcript_notices = dataform_value(f, "transcript_notices"),
    };
    return rf;
}

static void book_show_form(server *srv, adhoc_reply *reply, const reservation *d)
{
    dataform *f = book_form(srv, d);
    if (!f) {
        internal_error(reply);
        return;
    }
    adhoc_reply_form(reply, f);
    adhoc_reply_executing(reply, 1, ADHOC_ALLOW(ADHOC_NEXT), ADHOC_NEXT);
}

static void book_check(server *srv, const adhoc_request *req, adhoc_reply *reply)
{
    char *friends, *detail;
    res_form rf = form_of(req->form, &friends, &detail);
    reservation *d = calloc(1, sizeof *d);
    res_error e;
    int rc = d ? reservation_prepare(&srv->res, req->who->account, &rf, now_s(), d, &e) : RES_E_INTERNAL;
    free(friends);
    free(detail);
    if (rc != RES_OK) {
        free(d);
        reply_res_error(reply, rc, &e);
        return;
    }
    dataform *f = confirm_form(srv, d);
    if (!f) {
        free_draft(d);
        internal_error(reply);
        return;
    }
    free_draft(*req->state); /* a draft from an earlier pass */
    *req->state = d;
    adhoc_reply_form(reply, f);
    adhoc_reply_note(reply, ADHOC_NOTE_INFO, "Fee: %llu %s. Complete to book.", (unsigned long long)d->fee,
                     srv->res.policy.currency);
    adhoc_reply_executing(reply, 2, ADHOC_ALLOW(ADHOC_COMPLETE) | ADHOC_ALLOW(ADHOC_PREV), ADHOC_COMPLETE);
}

static void book_complete(server *srv, const adhoc_request *req, adhoc_reply *reply)
{
    reservation *d = *req->state;
    res_error e;
    int rc = reservation_book(&srv->res, d, now_s(), &e);
    if (rc != RES_OK) {
        reply_res_error(reply, rc, &e);
        return;
    }
    dataform *f = dataform_new(DATAFORM_RESULT, "Booked", NULL);
    char a[DATETIME_MAX], fee[64];
    snprintf(fee, sizeof fee, "%llu", (unsigned long long)d->fee);
    if (!f || !dataform_add_form_type(f, FORM_TYPE_BOOK) || !dataform_add_text(f, "id", "Reservation ID", d->id) ||
        !dataform_add_text(f, "state", "State", res_state_name(d->state)) ||
        !dataform_add_text(f, "fee", "Fee", fee) ||
        !dataform_add_text(f, "currency", "Currency", srv->res.policy.currency) ||
        !dataform_add_text(f, "reconfirm_by", "Reconfirm by", datetime_format(d->deadline, a))) {
        dataform_free(f);
        internal_error(reply);
        return;
    }
    adhoc_reply_form(reply, f);
    adhoc_reply_note(reply, ADHOC_NOTE_INFO, "Booked: %s. Reconfirm it by %s or it is cancelled.", d->id, a);
    adhoc_reply_completed(reply);
}

static void book(void *ud, const adhoc_request *req, adhoc_reply *reply)
{
    (void)ud;
    server *srv = req->srv;
    switch (req->stage) {
    case 0:
        if (req->form)
            book_check(srv, req, reply);
        else
            book_show_form(srv, reply, NULL);
        return;
    case 1:
        if (!req->form) {
            adhoc_reply_error(reply, "modify", "bad-request", "bad-payload", true, "the booking form is missing");
            return;
        }
        book_check(srv, req, reply);
        return;
    default:
        if (req->action == ADHOC_PREV) {
            book_show_form(srv, reply, *req->state);
            return;
        }
        book_complete(srv, req, reply);
        return;
    }
}

/* ---- commands taking an ID ---- */

typedef enum id_command { ID_RECONFIRM, ID_SETTINGS, ID_CANCEL } id_command;

static const char *const id_titles[] = {"Reconfirm a reservation", "Reservation settings", "Cancel a reservation"};

static void ask_id(adhoc_reply *reply, id_command which)
{
    dataform *f = dataform_new(DATAFORM_FORM, id_titles[which], NULL);
    if (!f || !dataform_add_form_type(f, FORM_TYPE_ID) ||
        !add_required(f, DATAFORM_TEXT_SINGLE, "id", "Reservation ID", NULL, NULL)) {
        dataform_free(f);
        internal_error(reply);
        return;
    }
    adhoc_reply_form(reply, f);
    adhoc_reply_executing(reply, 1, ADHOC_ALLOW(ADHOC_COMPLETE), ADHOC_COMPLETE);
}

static dataform *settings_form(server *srv, const res_settings *st)
{
    dataform *f = dataform_new(DATAFORM_RESULT, "Reservation settings", NULL);
    if (!f)
        return NULL;
    view *v = calloc(1, sizeof *v);
    bool ok = v && dataform_add_form_type(f, FORM_TYPE_SETTINGS) != NULL;
    if (ok)
        view_settings(srv, st, v);
    for (size_t i = 0; ok && i < v->n; i++) {
        dataform_field_type type = strchr(v->value[i], '\n') ? DATAFORM_TEXT_MULTI : DATAFORM_TEXT_SINGLE;
        dataform_field *fl = dataform_add_field(f, type, v->var[i], v->label[i]);
        ok = fl && dataform_field_set_text(fl, v->value[i]) == DATAFORM_OK;
    }
    free(v);
    if (!ok) {
        dataform_free(f);
        return NULL;
    }
    return f;
}

static void id_command_run(server *srv, const adhoc_request *req, adhoc_reply *reply, id_command which)
{
    const char *id = dataform_value(req->form, "id");
    if (!id || !*id) {
        adhoc_reply_bad_field(reply, "id", "required");
        return;
    }
    res_error e;
    reservation r;
    int rc;
    if (which == ID_CANCEL) {
        rc = reservation_cancel(&srv->res, req->who->account, id, now_s(), &r, &e);
        if (rc != RES_OK) {
            reply_res_error(reply, rc, &e);
            return;
        }
        adhoc_reply_note(reply, ADHOC_NOTE_INFO, "Reservation %s is cancelled.", r.id);
        reservation_clear(&r);
        adhoc_reply_completed(reply);
        return;
    }
    if (which == ID_RECONFIRM) {
        rc = reservation_reconfirm(&srv->res, req->who->account, id, now_s(), &r, &e);
        if (rc != RES_OK) {
            reply_res_error(reply, rc, &e);
            return;
        }
        reservation_clear(&r);
    }
    res_settings st;
    rc = reservation_settings(&srv->res, req->who->account, id, &st, &e);
    if (rc != RES_OK) {
        reply_res_error(reply, rc, &e);
        return;
    }
    dataform *f = settings_form(srv, &st);
    res_settings_clear(&st);
    if (!f) {
        internal_error(reply);
        return;
    }
    adhoc_reply_form(reply, f);
    if (which == ID_RECONFIRM)
        adhoc_reply_note(reply, ADHOC_NOTE_INFO, "Reconfirmed. These settings stay available with the settings command.");
    adhoc_reply_completed(reply);
}

static void by_id(const adhoc_request *req, adhoc_reply *reply, id_command which)
{
    if (req->stage == 0 && !req->form) {
        ask_id(reply, which);
        return;
    }
    if (!req->form) {
        adhoc_reply_bad_field(reply, "id", "required");
        return;
    }
    id_command_run(req->srv, req, reply, which);
}

static void reconfirm(void *ud, const adhoc_request *req, adhoc_reply *reply)
{
    (void)ud;
    by_id(req, reply, ID_RECONFIRM);
}

static void settings(void *ud, const adhoc_request *req, adhoc_reply *reply)
{
    (void)ud;
    by_id(req, reply, ID_SETTINGS);
}

static void cancel(void *ud, const adhoc_request *req, adhoc_reply *reply)
{
    (void)ud;
    by_id(req, reply, ID_CANCEL);
}

/* ---- tables ---- */

typedef struct table_ctx {
    server *srv;
    dataform *f;
    bool public_view;
    bool failed;
} table_ctx;

static int add_row(void *ud, const reservation *r)
{
    table_ctx *tc = ud;
    view *v = calloc(1, sizeof *v);
    dataform_item *it = v ? dataform_add_item(tc->f) : NULL;
    if (!it) {
        free(v);
        tc->failed = true;
        return 1;
    }
    view_row(tc->srv, r, now_s(), !tc->public_view, v);
    for (size_t i = 0; i < v->n; i++) {
        if (dataform_item_add_value(it, v->var[i], v->value[i]) != DATAFORM_OK) {
            tc->failed = true;
            break;
        }
    }
    free(v);
    return tc->failed ? 1 : 0;
}

/* The columns of a table: the vars and labels of a row's view. */
static bool add_columns(server *srv, dataform *f, bool owner_view)
{
    view *v = calloc(1, sizeof *v);
    if (!v)
        return false;
    reservation blank = {0};
    blank.owner = blank.email = blank.title = blank.genre = blank.summary = blank.detail = blank.url = "";
    view_row(srv, &blank, 0, owner_view, v);
    bool ok = true;
    for (size_t i = 0; ok && i < v->n; i++)
        ok = dataform_add_column(f, DATAFORM_TEXT_SINGLE, v->var[i], v->label[i]) != NULL;
    free(v);
    return ok;
}

static void my_channel(void *ud, const adhoc_request *req, adhoc_reply *reply)
{
    (void)ud;
    server *srv = req->srv;
    table_ctx tc = {srv, dataform_new(DATAFORM_RESULT, "My channel", NULL), false, false};
    if (!tc.f || !add_columns(srv, tc.f, true) ||
        reservation_list_owner(&srv->res, req->who->account, add_row, &tc) != RES_OK || tc.failed) {
        dataform_free(tc.f);
        internal_error(reply);
        return;
    }
    if (tc.f->nitems == 0)
        adhoc_reply_note(reply, ADHOC_NOTE_INFO, "You have no reservations yet.");
    adhoc_reply_form(reply, tc.f);
    adhoc_reply_completed(reply);
}

static void upcoming(void *ud, const adhoc_request *req, adhoc_reply *reply)
{
    (void)ud;
    server *srv = req->srv;
    table_ctx tc = {srv, dataform_new(DATAFORM_RESULT, "Upcoming lives", NULL), true, false};
    if (!tc.f || !add_columns(srv, tc.f, false) ||
        reservation_list_public(&srv->res, now_s(), SCHEDULE_MAX, add_row, &tc) != RES_OK || tc.failed) {
        dataform_free(tc.f);
        internal_error(reply);
        return;
    }
    adhoc_reply_form(reply, tc.f);
    adhoc_reply_completed(reply);
}

typedef struct avail_table {
    server *srv;
    dataform *f;
    bool failed;
} avail_table;

static int add_availability_row(void *ud, const channel *ch, const res_slot *slots, size_t n)
{
    avail_table *at = ud;
    dataform_item *it = dataform_add_item(at->f);
    char num[3][32];
    snprintf(num[0], sizeof num[0], "%u", ch->capacity);
    snprintf(num[1], sizeof num[1], "%u", ch->bandwidth_kbps);
    snprintf(num[2], sizeof num[2], "%llu", (unsigned long long)ch->price_per_hour);
    if (!it || dataform_item_add_value(it, "channel", ch->id) || dataform_item_add_value(it, "name", ch->name) ||
        dataform_item_add_value(it, "capacity", num[0]) || dataform_item_add_value(it, "bandwidth_kbps", num[1]) ||
        dataform_item_add_value(it, "price_per_hour", num[2])) {
        at->failed = true;
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        char a[DATETIME_MAX], b[DATETIME_MAX], line[2 * DATETIME_MAX + 16];
        snprintf(line, sizeof line, "%s/%s %s", datetime_format(slots[i].start, a), datetime_format(slots[i].end, b),
                 slot_state_name(slots[i].state));
        if (dataform_item_add_value(it, "slots", line) != DATAFORM_OK) {
            at->failed = true;
            return 1;
        }
    }
    return 0;
}

static void availability(void *ud, const adhoc_request *req, adhoc_reply *reply)
{
    (void)ud;
    server *srv = req->srv;
    if (req->stage == 0 && !req->form) {
        char today[DATETIME_MAX];
        dataform *f = dataform_new(DATAFORM_FORM, "Availability", "A date (YYYY-MM-DD) in the server's time zone.");
        if (!f || !dataform_add_form_type(f, FORM_TYPE_AVAILABILITY) ||
            !add_required(f, DATAFORM_TEXT_SINGLE, "date", "Date", srv->cfg.timezone,
                          datetime_format_day(now_s(), today))) {
            dataform_free(f);
            internal_error(reply);
            return;
        }
        adhoc_reply_form(reply, f);
        adhoc_reply_executing(reply, 1, ADHOC_ALLOW(ADHOC_COMPLETE), ADHOC_COMPLETE);
        return;
    }
    const char *date = req->form ? dataform_value(req->form, "date") : NULL;
    avail_table at = {srv, dataform_new(DATAFORM_RESULT, "Availability", NULL), false};
    char title[64];
    snprintf(title, sizeof title, "Availability on %s (%s)", date ? date : "", srv->cfg.timezone);
    bool ok = at.f && dataform_add_column(at.f, DATAFORM_TEXT_SINGLE, "channel", "Channel") &&
              dataform_add_column(at.f, DATAFORM_TEXT_SINGLE, "name", "Name") &&
              dataform_add_column(at.f, DATAFORM_TEXT_SINGLE, "capacity", "Viewers") &&
              dataform_add_column(at.f, DATAFORM_TEXT_SINGLE, "bandwidth_kbps", "Bandwidth (kbps)") &&
              dataform_add_column(at.f, DATAFORM_TEXT_SINGLE, "price_per_hour", "Price per hour") &&
              dataform_add_column(at.f, DATAFORM_TEXT_MULTI, "slots", "Slots (start/end state)");
    if (!ok) {
        dataform_free(at.f);
        internal_error(reply);
        return;
    }
    free(at.f->title);
    at.f->title = strdup(title);
    res_error e;
    int rc = reservation_availability(&srv->res, date, now_s(), add_availability_row, &at, &e);
    if (rc != RES_OK || at.failed) {
        dataform_free(at.f);
        if (rc == RES_E_INVALID)
            adhoc_reply_bad_field(reply, "date", "not a date (YYYY-MM-DD)");
        else
            internal_error(reply);
        return;
    }
    adhoc_reply_form(reply, at.f);
    adhoc_reply_completed(reply);
}

int reservation_adhoc_register(server *srv)
{
    int rc = 0;
    rc |= adhoc_register(srv, "book", "Book a live", adhoc_visible_accounts, book, free_draft, NULL);
    rc |= adhoc_register(srv, "reconfirm", "Reconfirm a reservation", adhoc_visible_accounts, reconfirm, NULL, NULL);
    rc |= adhoc_register(srv, "settings", "Reservation settings", adhoc_visible_accounts, settings, NULL, NULL);
    rc |= adhoc_register(srv, "cancel", "Cancel a reservation", adhoc_visible_accounts, cancel, NULL, NULL);
    rc |= adhoc_register(srv, "my-channel", "My channel", adhoc_visible_accounts, my_channel, NULL, NULL);
    rc |= adhoc_register(srv, "availability", "Availability", NULL, availability, NULL, NULL);
    rc |= adhoc_register(srv, "schedule", "Upcoming lives", NULL, upcoming, NULL, NULL);
    return rc ? -1 : 0;
}
