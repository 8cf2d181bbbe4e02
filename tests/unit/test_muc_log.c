/* test_muc_log.c - unit tests of core/muc_log.c: room records round-trip,
 * listing, the log's order and sequence numbers per room, reading from a
 * number, the line lists of bans and voice, and corrupt records refused. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "muc_log.h"
#include "store.h"
#include "store_fixture.h"

typedef store_fixture fixture;

#define ROOM_A "aaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ROOM_B "bbbbbbbbbbbbbbbbbbbbbbbbbb"

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || store_fixture_open(f, "muclog") != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_fixture_close(f);
    free(f);
    return 0;
}

static store_txn *begin(fixture *f, bool write)
{
    store_txn *t;
    assert_int_equal(store_txn_begin(f->s, write, &t), STORE_OK);
    return t;
}

static void test_room_record_round_trip(void **state)
{
    fixture *f = *state;
    muc_room_record r = {0};
    memcpy(r.id, ROOM_A, sizeof r.id);
    r.state = MUC_ROOM_OPEN;
    r.opened_ms = 1900000000123;
    r.close_at = 1900003600;
    r.notices = MUC_NOTICE_SOON | MUC_NOTICE_END;
    r.slow_mode_s = 30;
    r.subject = "Evening \xe2\x98\x85 talk";
    r.subject_nick = "Alice";
    r.subject_ms = 1900000000999;
    r.bans = "eve@localhost\nmallory@localhost";
    r.devoiced = "";
    r.close_reason = "";
    store_txn *t = begin(f, true);
    assert_int_equal(muc_room_record_put(t, &r), STORE_OK);
    assert_int_equal(store_txn_commit(t), STORE_OK);

    muc_room_record got;
    t = begin(f, false);
    assert_int_equal(muc_room_record_get(t, ROOM_A, &got), STORE_OK);
    assert_int_equal(muc_room_record_get(t, ROOM_B, &(muc_room_record){0}), STORE_NOTFOUND);
    assert_int_equal(muc_room_record_get(t, "short", &(muc_room_record){0}), STORE_NOTFOUND);
    store_txn_abort(t);
    assert_string_equal(got.id, ROOM_A);
    assert_int_equal(got.state, MUC_ROOM_OPEN);
    assert_int_equal(got.opened_ms, r.opened_ms);
    assert_int_equal(got.close_at, r.close_at);
    assert_int_equal(got.notices, r.notices);
    assert_int_equal(got.slow_mode_s, 30);
    assert_string_equal(got.subject, r.subject);
    assert_string_equal(got.subject_nick, "Alice");
    assert_int_equal(got.subject_ms, r.subject_ms);
    assert_string_equal(got.bans, r.bans);
    assert_string_equal(got.devoiced, "");
    assert_string_equal(got.close_reason, "");
    assert_int_equal(got.log_removed_ms, 0); /* absent: kept */
    muc_room_record_clear(&got);

    /* closed, its log removed: the time is kept */
    r.state = MUC_ROOM_CLOSED;
    r.closed_ms = 1900007200000;
    r.close_reason = "ended";
    r.log_removed_ms = 1902599200000;
    t = begin(f, true);
    assert_int_equal(muc_room_record_put(t, &r), STORE_OK);
    assert_int_equal(store_txn_commit(t), STORE_OK);
    t = begin(f, false);
    assert_int_equal(muc_room_record_get(t, ROOM_A, &got), STORE_OK);
    store_txn_abort(t);
    assert_int_equal(got.state, MUC_ROOM_CLOSED);
    assert_int_equal(got.log_removed_ms, r.log_removed_ms);
    muc_room_record_clear(&got);
}

static int count_open(void *ud, const muc_room_record *r)
{
    if (r->state == MUC_ROOM_OPEN)
        (*(int *)ud)++;
    return 0;
}

static void test_list_and_corrupt(void **state)
{
    fixture *f = *state;
    muc_room_record r = {0};
    r.subject = r.subject_nick = r.bans = r.devoiced = r.close_reason = "";
    store_txn *t = begin(f, true);
    memcpy(r.id, ROOM_A, sizeof r.id);
    assert_int_equal(muc_room_record_put(t, &r), STORE_OK);
    memcpy(r.id, ROOM_B, sizeof r.id);
    r.state = MUC_ROOM_CLOSED;
    r.close_reason = "ended";
    assert_int_equal(muc_room_record_put(t, &r), STORE_OK);
    assert_int_equal(store_txn_commit(t), STORE_OK);
    int open = 0;
    t = begin(f, false);
    assert_int_equal(muc_room_record_list(t, count_open, &open), STORE_OK);
    store_txn_abort(t);
    assert_int_equal(open, 1);
    /* garbage under a room key is refused, not read */
    t = begin(f, true);
    assert_int_equal(store_put(t, MUC_DB_ROOMS, ROOM_A, 26, "\x01\x02", 2, false), STORE_OK);
    assert_int_equal(store_txn_commit(t), STORE_OK);
    muc_room_record got;
    t = begin(f, false);
    assert_int_equal(muc_room_record_get(t, ROOM_A, &got), STORE_CORRUPT);
    assert_int_equal(muc_room_record_list(t, count_open, &open), STORE_CORRUPT);
    store_txn_abort(t);
}

typedef struct seen {
    uint64_t seq[16];
    char body[16][32];
    char nick[16][16];
    bool notice[16];
    bool addressed[16];
    int n;
} seen;

static int seen_one(void *ud, const muc_log_entry *e)
{
    seen *s = ud;
    s->seq[s->n] = e->seq;
    s->addressed[s->n] = e->addressed;
    snprintf(s->body[s->n], sizeof s->body[0], "%s", e->body);
    snprintf(s->nick[s->n], sizeof s->nick[0], "%s", e->nick);
    s->notice[s->n] = e->notice;
    s->n++;
    return 0;
}

static void test_log_order_and_rooms(void **state)
{
    fixture *f = *state;
    uint64_t last = 99;
    store_txn *t = begin(f, false);
    assert_int_equal(muc_log_last_seq(t, ROOM_A, &last), STORE_OK);
    store_txn_abort(t);
    assert_int_equal(last, 0);

    t = begin(f, true);
    for (uint64_t i = 1; i <= 300; i++) {
        char body[32];
        snprintf(body, sizeof body, "a%llu", (unsigned long long)i);
        muc_log_entry e = {i, 1000 + (int64_t)i, i == 7 ? "" : "bob", i == 7 ? "" : "bob@localhost/r", body, "id",
                           i == 7, i == 298};
        assert_int_equal(muc_log_append(t, ROOM_A, &e), STORE_OK);
    }
    muc_log_entry b = {1, 5, "carol", "carol@localhost/x", "in b", "", false, false};
    assert_int_equal(muc_log_append(t, ROOM_B, &b), STORE_OK);
    /* a number is never written twice */
    assert_int_equal(muc_log_append(t, ROOM_B, &b), STORE_EXISTS);
    assert_int_equal(muc_log_append(t, ROOM_B, &(muc_log_entry){0, 0, "", "", "", "", false, false}), STORE_ERROR);
    assert_int_equal(store_txn_commit(t), STORE_OK);

    t = begin(f, false);
    assert_int_equal(muc_log_last_seq(t, ROOM_A, &last), STORE_OK);
    assert_int_equal(last, 300); /* 256 and up sort after 255: big-endian keys */
    assert_int_equal(muc_log_last_seq(t, ROOM_B, &last), STORE_OK);
    assert_int_equal(last, 1);
    seen s = {0};
    assert_int_equal(muc_log_read(t, ROOM_A, 296, seen_one, &s), STORE_OK);
    assert_int_equal(s.n, 5);
    assert_int_equal(s.seq[0], 296);
    assert_string_equal(s.body[4], "a300");
    /* the addressed mark is kept (and absent is false) */
    assert_true(s.addressed[2]);
    assert_false(s.addressed[1]);
    assert_false(s.addressed[3]);
    memset(&s, 0, sizeof s);
    assert_int_equal(muc_log_read(t, ROOM_B, 1, seen_one, &s), STORE_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.nick[0], "carol");
    size_t n = 0;
    assert_int_equal(muc_log_count(t, &n), STORE_OK);
    assert_int_equal(n, 301);
    store_txn_abort(t);

    /* one room's log removed: the other's stays; removing again is no error */
    t = begin(f, true);
    assert_int_equal(muc_log_remove(t, ROOM_A), STORE_OK);
    assert_int_equal(muc_log_remove(t, ROOM_A), STORE_OK);
    assert_int_equal(muc_log_remove(t, "short"), STORE_ERROR);
    assert_int_equal(store_txn_commit(t), STORE_OK);
    t = begin(f, false);
    assert_int_equal(muc_log_count(t, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(muc_log_last_seq(t, ROOM_A, &last), STORE_OK);
    assert_int_equal(last, 0);
    assert_int_equal(muc_log_last_seq(t, ROOM_B, &last), STORE_OK);
    assert_int_equal(last, 1);
    store_txn_abort(t);
}

static int stop_after_two(void *ud, const muc_log_entry *e)
{
    seen *s = ud;
    seen_one(ud, e);
    return s->n == 2 ? 7 : 0;
}

static void test_log_read_stops_and_notices(void **state)
{
    fixture *f = *state;
    store_txn *t = begin(f, true);
    for (uint64_t i = 1; i <= 4; i++) {
        muc_log_entry e = {i, (int64_t)i, i == 2 ? "" : "dan", i == 2 ? "" : "dan@localhost/r", "x", "", i == 2, false};
        assert_int_equal(muc_log_append(t, ROOM_A, &e), STORE_OK);
    }
    assert_int_equal(store_txn_commit(t), STORE_OK);
    seen s = {0};
    t = begin(f, false);
    assert_int_equal(muc_log_read(t, ROOM_A, 1, stop_after_two, &s), 7);
    store_txn_abort(t);
    assert_int_equal(s.n, 2);
    assert_true(s.notice[1]);
    assert_string_equal(s.nick[1], "");
    assert_string_equal(s.nick[0], "dan");
}

static void test_line_lists(void **state)
{
    (void)state;
    assert_false(muc_list_has("", "a@b"));
    assert_true(muc_list_has("a@b", "a@b"));
    assert_true(muc_list_has("x@y\na@b", "a@b"));
    assert_false(muc_list_has("x@y\naa@b", "a@b"));
    char *l = muc_list_with("", "a@b", true);
    assert_string_equal(l, "a@b");
    char *l2 = muc_list_with(l, "c@d", true);
    assert_string_equal(l2, "a@b\nc@d");
    char *l3 = muc_list_with(l2, "a@b", true); /* no duplicate */
    assert_string_equal(l3, "c@d\na@b");
    char *l4 = muc_list_with(l3, "a@b", false);
    assert_string_equal(l4, "c@d");
    char *l5 = muc_list_with(l4, "c@d", false);
    assert_string_equal(l5, "");
    free(l);
    free(l2);
    free(l3);
    free(l4);
    free(l5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_room_record_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_and_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_order_and_rooms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_read_stops_and_notices, setup, teardown),
        cmocka_unit_test(test_line_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
