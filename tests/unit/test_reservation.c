/* test_reservation.c - unit tests of core/reservation.c and core/datetime.c:
 * RFC 3339 parsing and local days, fees, every validation rule of a booking
 * (edges of overlaps, granularity, limits), booking and double booking,
 * reconfirmation before and after the deadline, expiry, cancellation,
 * ownership, listings, availability and sealed passwords at rest. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datetime.h"
#include "event.h"
#include "reservation.h"
#include "schedule.h"
#include "store.h"
#include "store_fixture.h"

/* 2030-01-01T00:00:00Z, a Tuesday. */
#define NOW 1893456000LL
#define H 3600LL

typedef struct fixture {
    store_fixture sf;
    reservations rs;
    int events[EVENT_COUNT];
    int64_t last_scheduled;
} fixture;

static void on_event(void *ud, int type, const reservation *r)
{
    (void)r;
    fixture *f = ud;
    f->events[type]++;
}

static void on_scheduled(void *ud, int64_t when_ms)
{
    fixture *f = ud;
    f->last_scheduled = when_ms;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || store_fixture_open(&f->sf, "reservation") != 0)
        return -1;
    if (datetime_set_zone("UTC") != 0)
        return -1;
    secret_key key;
    memset(&key, 7, sizeof key);
    res_policy p = {.slot_s = 1800,
                    .max_duration_s = 6 * H,
                    .max_advance_s = 180 * 86400,
                    .reconfirm_before_s = 6 * H,
                    .ingest_open_before_s = 300,
                    .ingest_close_after_s = 300,
                    .currency = "JPY",
                    .room_domain = "live.localhost",
                    .media_domain = "media.localhost",
                    .page_url = "http://localhost:5280/live/"};
    res_hooks hooks = {on_event, on_scheduled, f};
    reservations_init(&f->rs, f->sf.s, &key, &p, &hooks);
    channel ch = {.id = "main", .name = "Main stage", .capacity = 100, .bandwidth_kbps = 2000, .price_per_hour = 3000};
    res_error e;
    if (channel_put(&f->rs, &ch, &e) != RES_OK)
        return -1;
    channel ch2 = {.id = "side", .name = "Side", .capacity = 10, .bandwidth_kbps = 500, .price_per_hour = 1000};
    if (channel_put(&f->rs, &ch2, &e) != RES_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    reservations_free(&f->rs);
    store_fixture_close(&f->sf);
    free(f);
    return 0;
}

/* A valid form for [start, end) given as hours after NOW. */
static res_form form_at(char *sbuf, char *ebuf, int64_t start_h, int64_t end_h)
{
    datetime_format_utc(NOW + start_h * H, sbuf);
    datetime_format_utc(NOW + end_h * H, ebuf);
    res_form f = {.channel = "main",
                  .start = sbuf,
                  .end = ebuf,
                  .level = "password",
                  .title = "Evening talk",
                  .genre = "talk",
                  .broadcast_password = "cast-secret",
                  .shared_password = "view-secret",
                  .friends = "bob@example.com\nxmpp:carol@localhost\n",
                  .summary = "A short talk",
                  .detail = "Longer words"};
    return f;
}

static int book(fixture *f, const res_form *form, int64_t now, char *id_out, res_error *e)
{
    reservation d;
    int rc = reservation_prepare(&f->rs, "alice", form, now, &d, e);
    if (rc == RES_OK) {
        rc = reservation_book(&f->rs, &d, now, e);
        if (rc == RES_OK && id_out)
            strcpy(id_out, d.id);
    }
    reservation_clear(&d);
    return rc;
}

static int count_one(void *ud, const reservation *r)
{
    (void)r;
    (*(int *)ud)++;
    return 0;
}

static void test_datetime(void **state)
{
    (void)state;
    int64_t t;
    long frac;
    assert_int_equal(datetime_parse("2030-01-01T00:00:00Z", &t, &frac), 0);
    assert_int_equal(t, NOW);
    assert_int_equal(datetime_parse("2030-01-01T09:00:00+09:00", &t, NULL), 0);
    assert_int_equal(t, NOW);
    assert_int_equal(datetime_parse("2029-12-31T19:30:00-04:30", &t, NULL), 0);
    assert_int_equal(t, NOW);
    assert_int_equal(datetime_parse("2030-01-01t00:00:00.250z", &t, &frac), 0);
    assert_int_equal(frac, 250000000);
    assert_int_equal(datetime_parse("2030-01-01T00:00:00", &t, NULL), 0); /* server zone (UTC) */
    assert_int_equal(t, NOW);
    const char *bad[] = {"", "2030-01-01", "2030-02-30T00:00:00Z", "2030-13-01T00:00:00Z", "2030-01-01T24:00:00Z",
                         "2030-01-01T00:60:00Z", "2030-01-01T00:00:00+0900", "2030-01-01T00:00:00Zjunk",
                         "30-01-01T00:00:00Z", "2030-01-01T00:00:00.Z", "2029-02-29T00:00:00Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(datetime_parse(bad[i], &t, NULL), -1);
    assert_int_equal(datetime_parse("2028-02-29T00:00:00Z", &t, NULL), 0);
    char buf[DATETIME_MAX];
    assert_string_equal(datetime_format(NOW, buf), "2030-01-01T00:00:00Z");

    /* A zone with an offset: days and formatting follow it. */
    assert_int_equal(datetime_set_zone("Asia/Tokyo"), 0);
    assert_string_equal(datetime_format(NOW, buf), "2030-01-01T09:00:00+09:00");
    int64_t ds, de;
    assert_int_equal(datetime_parse_day("2030-01-01", &ds, &de), 0);
    assert_int_equal(ds, NOW - 9 * H);
    assert_int_equal(de - ds, 24 * H);
    assert_int_equal(datetime_day_start(NOW), NOW - 9 * H);
    /* Daylight saving: 2030-03-31 has 23 hours in Berlin. */
    assert_int_equal(datetime_set_zone("Europe/Berlin"), 0);
    assert_int_equal(datetime_parse_day("2030-03-31", &ds, &de), 0);
    assert_int_equal(de - ds, 23 * H);
    assert_int_equal(datetime_set_zone("No/Such_Zone"), -1);
    assert_int_equal(datetime_set_zone("../etc/passwd"), -1);
    assert_int_equal(datetime_set_zone("UTC"), 0);
}

static void test_fee_and_ids(void **state)
{
    (void)state;
    assert_int_equal(reservation_fee(3000, 2 * H), 6000);
    assert_int_equal(reservation_fee(3000, 1800), 1500);
    assert_int_equal(reservation_fee(1000, 1), 1); /* rounded up */
    assert_int_equal(reservation_fee(0, 5 * H), 0);
    assert_false(reservation_id_valid("short"));
    assert_false(reservation_id_valid("ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
    assert_true(reservation_id_valid("abcdefghijklmnopqrstuvwxyz"));
}

static void test_channels(void **state)
{
    fixture *f = *state;
    res_error e;
    channel bad = {.id = "Bad Id", .name = "x", .capacity = 1, .bandwidth_kbps = 1};
    assert_int_equal(channel_put(&f->rs, &bad, &e), RES_E_INVALID);
    assert_string_equal(e.field, "id");
    channel nocap = {.id = "ok", .name = "x", .capacity = 0, .bandwidth_kbps = 1};
    assert_int_equal(channel_put(&f->rs, &nocap, &e), RES_E_INVALID);
    assert_string_equal(e.field, "capacity");
    channel got;
    assert_int_equal(channel_get(&f->rs, "main", &got), RES_OK);
    assert_int_equal(got.capacity, 100);
    assert_int_equal(got.price_per_hour, 3000);
    assert_string_equal(got.name, "Main stage");
    assert_int_equal(channel_get(&f->rs, "nope", &got), RES_E_NOTFOUND);

    /* A channel with a future booking cannot be deleted; after it ends it can. */
    char s[DATETIME_MAX], en[DATETIME_MAX];
    res_form form = form_at(s, en, 24, 26);
    form.channel = "side";
    assert_int_equal(book(f, &form, NOW, NULL, &e), RES_OK);
    assert_int_equal(channel_delete(&f->rs, "side", NOW, &e), RES_E_CONFLICT);
    assert_int_equal(channel_delete(&f->rs, "side", NOW + 27 * H, &e), RES_OK);
    assert_int_equal(channel_get(&f->rs, "side", &got), RES_E_NOTFOUND);
}

/* Each rule gives its own field and stores nothing. */
static void expect_invalid(fixture *f, const res_form *form, int code, const char *field)
{
    reservation d;
    res_error e;
    int rc = reservation_prepare(&f->rs, "alice", form, NOW, &d, &e);
    if (rc != code || strcmp(e.field, field) != 0)
        fail_msg("expected %d on %s, got %d on %s: %s", code, field, rc, e.field, e.message);
    assert_true(e.message[0] != '\0');
    reservation_clear(&d);
}

static void test_validation(void **state)
{
    fixture *f = *state;
    char s[DATETIME_MAX], en[DATETIME_MAX];
    res_form base = form_at(s, en, 24, 26), form;

    const char **fields[] = {&form.channel, &form.start, &form.end, &form.level, &form.title,
                             &form.broadcast_password, &form.shared_password};
    const char *names[] = {"channel", "start", "end", "level", "title", "broadcast_password", "shared_password"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        form = base;
        *fields[i] = NULL;
        expect_invalid(f, &form, RES_E_INVALID, names[i]);
        form = base;
        *fields[i] = "";
        expect_invalid(f, &form, RES_E_INVALID, names[i]);
    }
    /* A public live needs no shared password. */
    form = base;
    form.level = "public";
    form.shared_password = NULL;
    reservation d;
    res_error e;
    assert_int_equal(reservation_prepare(&f->rs, "alice", &form, NOW, &d, &e), RES_OK);
    assert_string_equal(d.shared_password, "");
    assert_int_equal(d.fee, 6000);
    assert_int_equal(d.bandwidth_kbps, 2000);
    assert_int_equal(d.capacity, 100);
    reservation_clear(&d);

    form = base;
    form.channel = "nosuch";
    expect_invalid(f, &form, RES_E_INVALID, "channel");
    form = base;
    form.level = "private";
    expect_invalid(f, &form, RES_E_INVALID, "level");
    form = base;
    form.start = "tomorrow";
    expect_invalid(f, &form, RES_E_INVALID, "start");
    form = base;
    form.end = s; /* end == start */
    expect_invalid(f, &form, RES_E_INVALID, "end");

    char s2[DATETIME_MAX], e2[DATETIME_MAX];
    form = form_at(s2, e2, -2, -1); /* in the past */
    expect_invalid(f, &form, RES_E_INVALID, "start");
    form = form_at(s2, e2, 3, 4); /* after the booking cut-off (6 h before start) */
    expect_invalid(f, &form, RES_E_INVALID, "start");
    form = form_at(s2, e2, 24, 31); /* 7 hours > 6 */
    expect_invalid(f, &form, RES_E_INVALID, "end");
    form = form_at(s2, e2, 24 * 200, 24 * 200 + 1); /* beyond 180 days */
    expect_invalid(f, &form, RES_E_INVALID, "start");
    form = base;
    datetime_format_utc(NOW + 24 * H + 600, s2); /* 10 minutes past a slot */
    form.start = s2;
    expect_invalid(f, &form, RES_E_INVALID, "start");
    form = base;
    datetime_format_utc(NOW + 26 * H + 60, e2);
    form.end = e2;
    expect_invalid(f, &form, RES_E_INVALID, "end");
    form = base;
    form.start = "2030-01-02T00:00:00.5Z";
    expect_invalid(f, &form, RES_E_INVALID, "start");

    /* Text limits count characters, not bytes. */
    form = base;
    form.summary = "\xe3\x81\x82\xe3\x81\x82\xe3\x81\x82\xe3\x81\x82\xe3\x81\x82\xe3\x81\x82\xe3\x81\x82"
                   "\xe3\x81\x82\xe3\x81\x82\xe3\x81\x82\xe3\x81\x82\xe3\x81\x82\xe3\x81\x82\xe3\x81\x82"
                   "\xe3\x81\x82\xe3\x81\x82\xe3\x81\x82\xe3\x81\x82\xe3\x81\x82\xe3\x81\x82"; /* 20 x U+3042 */
    assert_int_equal(reservation_prepare(&f->rs, "alice", &form, NOW, &d, &e), RES_OK);
    reservation_clear(&d);
    form.summary = "123456789012345678901";
    expect_invalid(f, &form, RES_E_INVALID, "summary");
    char detail[202];
    memset(detail, 'x', 201);
    detail[201] = '\0';
    form = base;
    form.detail = detail;
    expect_invalid(f, &form, RES_E_INVALID, "detail");
    detail[200] = '\0';
    assert_int_equal(reservation_prepare(&f->rs, "alice", &form, NOW, &d, &e), RES_OK);
    reservation_clear(&d);
    char title[102];
    memset(title, 't', 101);
    title[101] = '\0';
    form = base;
    form.title = title;
    expect_invalid(f, &form, RES_E_INVALID, "title");
    form = base;
    form.title = "bad\x01title";
    expect_invalid(f, &form, RES_E_INVALID, "title");
    form = base;
    form.title = "bad \xff utf8";
    expect_invalid(f, &form, RES_E_INVALID, "title");

    form = base;
    form.friends = "bob@example.com\nnot an address\n";
    expect_invalid(f, &form, RES_E_INVALID, "friends");
    form.friends = "@example.com";
    expect_invalid(f, &form, RES_E_INVALID, "friends");
    form.friends = "bob@@example.com";
    expect_invalid(f, &form, RES_E_INVALID, "friends");
    form.friends = "bob@-example.com";
    expect_invalid(f, &form, RES_E_INVALID, "friends");
    form.friends = "  bob@example.com  \r\n\n carol@localhost\n";
    assert_int_equal(reservation_prepare(&f->rs, "alice", &form, NOW, &d, &e), RES_OK);
    assert_string_equal(d.friends, "bob@example.com\ncarol@localhost");
    reservation_clear(&d);

    form = base;
    form.show_url = "true";
    expect_invalid(f, &form, RES_E_INVALID, "url");
    form.url = "javascript:alert(1)";
    expect_invalid(f, &form, RES_E_INVALID, "url");
    form.url = "https://example.com/me";
    assert_int_equal(reservation_prepare(&f->rs, "alice", &form, NOW, &d, &e), RES_OK);
    assert_true(d.show_url);
    reservation_clear(&d);
    form.show_email = "maybe";
    expect_invalid(f, &form, RES_E_INVALID, "show_email");

    form = base;
    form.broadcast_password = "abc";
    expect_invalid(f, &form, RES_E_INVALID, "broadcast_password");
    form = base;
    form.shared_password = "abc";
    expect_invalid(f, &form, RES_E_INVALID, "shared_password");

    /* Nothing above was stored. */
    int n = 0;
    assert_int_equal(reservation_list_owner(&f->rs, "alice", count_one, &n), RES_OK);
    assert_int_equal(n, 0);
    assert_int_equal(f->events[EVENT_RESERVATION_BOOKED], 0);
}

static void test_overlaps(void **state)
{
    fixture *f = *state;
    char s[DATETIME_MAX], en[DATETIME_MAX], id[RES_ID_LEN + 1];
    res_error e;
    res_form form = form_at(s, en, 24, 26); /* 24:00 - 26:00 */
    assert_int_equal(book(f, &form, NOW, id, &e), RES_OK);
    assert_true(reservation_id_valid(id));
    assert_int_equal(f->events[EVENT_RESERVATION_BOOKED], 1);
    assert_int_equal(f->last_scheduled, (NOW + 24 * H - 6 * H) * 1000);

    struct {
        int64_t a, b;
        int rc;
    } cases[] = {
        {24, 26, RES_E_CONFLICT}, /* the same slot */
        {23, 25, RES_E_CONFLICT}, /* overlaps the start */
        {25, 27, RES_E_CONFLICT}, /* overlaps the end */
        {22, 28, RES_E_CONFLICT}, /* contains it */
        {22, 24, RES_OK},         /* ends where it starts */
        {26, 28, RES_OK},         /* starts where it ends */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char s2[DATETIME_MAX], e2[DATETIME_MAX];
        res_form f2 = form_at(s2, e2, cases[i].a, cases[i].b);
        int rc = book(f, &f2, NOW, NULL, &e);
        if (rc != cases[i].rc)
            fail_msg("case %zu: expected %d, got %d (%s)", i, cases[i].rc, rc, e.message);
        if (rc == RES_E_CONFLICT)
            assert_string_equal(e.field, "start");
    }
    /* 30 minutes inside, on another channel: free. */
    char s3[DATETIME_MAX], e3[DATETIME_MAX];
    res_form other = form_at(s3, e3, 24, 26);
    other.channel = "side";
    assert_int_equal(book(f, &other, NOW, NULL, &e), RES_OK);

    /* A draft prepared while free loses if someone books first. */
    char s4[DATETIME_MAX], e4[DATETIME_MAX];
    res_form late = form_at(s4, e4, 30, 31);
    reservation d1, d2;
    assert_int_equal(reservation_prepare(&f->rs, "alice", &late, NOW, &d1, &e), RES_OK);
    assert_int_equal(reservation_prepare(&f->rs, "bob", &late, NOW, &d2, &e), RES_OK);
    assert_int_equal(reservation_book(&f->rs, &d1, NOW, &e), RES_OK);
    assert_int_equal(reservation_book(&f->rs, &d2, NOW, &e), RES_E_CONFLICT);
    reservation_clear(&d1);
    reservation_clear(&d2);

    int n = 0;
    assert_int_equal(reservation_list_owner(&f->rs, "alice", count_one, &n), RES_OK);
    assert_int_equal(n, 5);
    n = 0;
    assert_int_equal(reservation_list_owner(&f->rs, "bob", count_one, &n), RES_OK);
    assert_int_equal(n, 0);
}

static void test_reconfirm_and_settings(void **state)
{
    fixture *f = *state;
    char s[DATETIME_MAX], en[DATETIME_MAX], id[RES_ID_LEN + 1];
    res_error e;
    res_form form = form_at(s, en, 24, 26);
    assert_int_equal(book(f, &form, NOW, id, &e), RES_OK);

    reservation r;
    res_settings st;
    assert_int_equal(reservation_settings(&f->rs, "alice", id, &st, &e), RES_E_CONFLICT);
    assert_int_equal(reservation_reconfirm(&f->rs, "mallory", id, NOW, &r, &e), RES_E_FORBIDDEN);
    assert_int_equal(reservation_cancel(&f->rs, "mallory", id, NOW, &r, &e), RES_E_FORBIDDEN);
    assert_int_equal(reservation_reconfirm(&f->rs, "alice", "aaaaaaaaaaaaaaaaaaaaaaaaaa", NOW, &r, &e),
                     RES_E_NOTFOUND);

    /* One second before the deadline (start - 6 h) is in time. */
    int64_t deadline = NOW + 18 * H;
    assert_int_equal(reservation_reconfirm(&f->rs, "alice", id, deadline - 1, &r, &e), RES_OK);
    assert_int_equal(r.state, RES_RECONFIRMED);
    reservation_clear(&r);
    assert_int_equal(f->events[EVENT_RESERVATION_RECONFIRMED], 1);
    /* Again: the same settings, no second event. */
    assert_int_equal(reservation_reconfirm(&f->rs, "alice", id, deadline - 1, &r, &e), RES_OK);
    reservation_clear(&r);
    assert_int_equal(f->events[EVENT_RESERVATION_RECONFIRMED], 1);

    assert_int_equal(reservation_settings(&f->rs, "mallory", id, &st, &e), RES_E_FORBIDDEN);
    assert_int_equal(reservation_settings(&f->rs, "alice", id, &st, &e), RES_OK);
    assert_string_equal(st.shared_password, "view-secret");
    assert_int_equal(st.ingest_open, NOW + 24 * H - 300);
    assert_int_equal(st.ingest_close, NOW + 26 * H + 300);
    char want[128];
    snprintf(want, sizeof want, "%s@live.localhost", id);
    assert_string_equal(st.room_jid, want);
    snprintf(want, sizeof want, "http://localhost:5280/live/%s", id);
    assert_string_equal(st.page_url, want);
    assert_int_equal(st.bandwidth_kbps, 2000);
    res_settings_clear(&st);

    /* The expiry timer finds nothing to do for a reconfirmed live. */
    assert_int_equal(reservation_expire(&f->rs, id, deadline + 1), 0);

    /* Listed publicly (password level) until it ends; cancelled: gone. */
    int n = 0;
    assert_int_equal(reservation_list_public(&f->rs, NOW, 100, count_one, &n), RES_OK);
    assert_int_equal(n, 1);
    n = 0;
    assert_int_equal(reservation_list_public(&f->rs, NOW + 26 * H, 100, count_one, &n), RES_OK);
    assert_int_equal(n, 0);
    assert_int_equal(reservation_cancel(&f->rs, "alice", id, NOW, &r, &e), RES_OK);
    assert_string_equal(r.cancel_reason, "owner");
    reservation_clear(&r);
    n = 0;
    assert_int_equal(reservation_list_public(&f->rs, NOW, 100, count_one, &n), RES_OK);
    assert_int_equal(n, 0);
    assert_int_equal(reservation_cancel(&f->rs, "alice", id, NOW, &r, &e), RES_E_CONFLICT);
    /* Its slot is free again. */
    assert_int_equal(book(f, &form, NOW, NULL, &e), RES_OK);
}

static void test_deadline(void **state)
{
    fixture *f = *state;
    char s[DATETIME_MAX], en[DATETIME_MAX], id[RES_ID_LEN + 1], id2[RES_ID_LEN + 1];
    res_error e;
    res_form form = form_at(s, en, 24, 26);
    assert_int_equal(book(f, &form, NOW, id, &e), RES_OK);
    int64_t deadline = NOW + 18 * H;
    assert_int_equal(reservation_expire(&f->rs, id, deadline - 1), 0); /* early timer: nothing */
    assert_int_equal(reservation_expire(&f->rs, id, deadline), 1);
    assert_int_equal(f->events[EVENT_RESERVATION_CANCELLED], 1);
    assert_int_equal(reservation_expire(&f->rs, id, deadline + 5), 0); /* fired twice: idempotent */
    reservation r;
    assert_int_equal(reservation_reconfirm(&f->rs, "alice", id, deadline + 10, &r, &e), RES_E_GONE);
    assert_non_null(strstr(e.message, "book again"));
    assert_int_equal(reservation_get(&f->rs, id, &r), RES_OK);
    assert_int_equal(r.state, RES_CANCELLED);
    assert_string_equal(r.cancel_reason, "deadline");
    reservation_clear(&r);

    /* A late reconfirmation before the timer ran cancels it there and then. */
    char s2[DATETIME_MAX], e2[DATETIME_MAX];
    res_form f2 = form_at(s2, e2, 30, 31);
    assert_int_equal(book(f, &f2, NOW, id2, &e), RES_OK);
    assert_int_equal(reservation_reconfirm(&f->rs, "alice", id2, NOW + 24 * H, &r, &e), RES_E_GONE);
    assert_int_equal(f->events[EVENT_RESERVATION_CANCELLED], 2);
    assert_int_equal(reservation_get(&f->rs, id2, &r), RES_OK);
    assert_int_equal(r.state, RES_CANCELLED);
    reservation_clear(&r);
}

typedef struct avail_seen {
    int channels;
    size_t nslots;
    int booked, free_, closed;
} avail_seen;

static int avail_one(void *ud, const channel *ch, const res_slot *slots, size_t n)
{
    avail_seen *a = ud;
    a->channels++;
    a->nslots = n;
    if (strcmp(ch->id, "main") != 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (slots[i].state == SLOT_BOOKED)
            a->booked++;
        else if (slots[i].state == SLOT_FREE)
            a->free_++;
        else
            a->closed++;
    }
    return 0;
}

static void test_availability(void **state)
{
    fixture *f = *state;
    char s[DATETIME_MAX], en[DATETIME_MAX];
    res_error e;
    res_form form = form_at(s, en, 33, 35); /* 2030-01-02 09:00 - 11:00 */
    assert_int_equal(book(f, &form, NOW, NULL, &e), RES_OK);
    avail_seen a = {0};
    assert_int_equal(reservation_availability(&f->rs, "2030-01-02", NOW, avail_one, &a, &e), RES_OK);
    assert_int_equal(a.channels, 2);
    assert_int_equal(a.nslots, 48);
    assert_int_equal(a.booked, 4);
    assert_int_equal(a.closed, 0);
    assert_int_equal(a.free_, 44);
    /* Today: everything up to 6 h from now is closed. */
    memset(&a, 0, sizeof a);
    assert_int_equal(reservation_availability(&f->rs, "2030-01-01", NOW, avail_one, &a, &e), RES_OK);
    assert_int_equal(a.closed, 13); /* 00:00 .. 06:00 inclusive */
    assert_int_equal(a.free_, 35);
    assert_int_equal(reservation_availability(&f->rs, "2030-1-2", NOW, avail_one, &a, &e), RES_E_INVALID);
    assert_string_equal(e.field, "date");
}

/* Passwords are sealed at rest: the raw store never holds them. */
static int find_secret(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)key;
    (void)klen;
    int *found = ud;
    if (memmem(val, vlen, "cast-secret", 11) || memmem(val, vlen, "view-secret", 11))
        *found = 1;
    return 0;
}

static void test_sealed_at_rest(void **state)
{
    fixture *f = *state;
    char s[DATETIME_MAX], en[DATETIME_MAX], id[RES_ID_LEN + 1];
    res_error e;
    res_form form = form_at(s, en, 24, 26);
    assert_int_equal(book(f, &form, NOW, id, &e), RES_OK);
    reservation r;
    assert_int_equal(reservation_reconfirm(&f->rs, "alice", id, NOW, &r, &e), RES_OK);
    reservation_clear(&r);
    store_txn *t;
    assert_int_equal(store_txn_begin(f->sf.s, false, &t), STORE_OK);
    int found = 0;
    store_iter(t, "reservations", NULL, 0, find_secret, &found);
    store_iter(t, "res_settings", NULL, 0, find_secret, &found);
    store_txn_abort(t);
    assert_int_equal(found, 0);
    assert_int_equal(reservation_get(&f->rs, id, &r), RES_OK);
    assert_string_equal(r.broadcast_password, "cast-secret");
    assert_string_equal(r.shared_password, "view-secret");
    reservation_clear(&r);
    /* Under another key the record does not open. */
    memset(&f->rs.key, 9, sizeof f->rs.key);
    assert_int_equal(reservation_get(&f->rs, id, &r), RES_E_INTERNAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_datetime),
        cmocka_unit_test(test_fee_and_ids),
        cmocka_unit_test_setup_teardown(test_channels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlaps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconfirm_and_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_availability, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed_at_rest, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
