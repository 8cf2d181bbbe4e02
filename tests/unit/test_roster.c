/* test_roster.c - unit tests of core/roster.c: put/get/list/remove,
 * max_items, groups and names, key normalisation, corrupt records. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "roster.h"
#include "store.h"
#include "store_fixture.h"

typedef store_fixture fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || store_fixture_open(f, "roster") != 0)
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

static void test_put_get(void **state)
{
    fixture *f = *state;
    char *groups[] = {"Friends", "Work"};
    roster_item in = {.jid = "Juliet@Example.COM", .name = "Juliet", .sub = ROSTER_SUB_TO, .ask_out = false,
                      .pending_in = true, .groups = groups, .ngroups = 2};
    assert_int_equal(roster_put(f->s, "romeo", &in, 0), STORE_OK);

    roster_item out;
    assert_int_equal(roster_get(f->s, "Romeo", "juliet@example.com", &out), STORE_OK);
    assert_string_equal(out.jid, "juliet@example.com");
    assert_string_equal(out.name, "Juliet");
    assert_int_equal(out.sub, ROSTER_SUB_TO);
    assert_false(out.ask_out);
    assert_true(out.pending_in);
    assert_int_equal(out.ngroups, 2);
    assert_string_equal(out.groups[0], "Friends");
    assert_string_equal(out.groups[1], "Work");
    roster_item_clear(&out);
    assert_null(out.jid);
    roster_item_clear(&out); /* safe twice */

    /* Replace: no name, no groups, other state. */
    roster_item in2 = {.jid = "juliet@example.com", .sub = ROSTER_SUB_BOTH, .ask_out = true};
    assert_int_equal(roster_put(f->s, "romeo", &in2, 0), STORE_OK);
    assert_int_equal(roster_get(f->s, "romeo", "JULIET@example.com", &out), STORE_OK);
    assert_null(out.name);
    assert_int_equal(out.ngroups, 0);
    assert_null(out.groups);
    assert_int_equal(out.sub, ROSTER_SUB_BOTH);
    assert_true(out.ask_out);
    assert_false(out.pending_in);
    roster_item_clear(&out);

    assert_int_equal(roster_get(f->s, "romeo", "nurse@example.com", &out), STORE_NOTFOUND);
    assert_int_equal(roster_get(f->s, "juliet", "juliet@example.com", &out), STORE_NOTFOUND);
    assert_int_equal(roster_get(f->s, "romeo", "bad jid@", &out), STORE_NOTFOUND);
}

static void test_bad_items(void **state)
{
    fixture *f = *state;
    roster_item it = {.jid = "a@example.com/res", .sub = ROSTER_SUB_NONE};
    assert_int_equal(roster_put(f->s, "romeo", &it, 0), STORE_ERROR); /* full JID */
    it.jid = "a b@example.com";
    assert_int_equal(roster_put(f->s, "romeo", &it, 0), STORE_ERROR);
    it.jid = NULL;
    assert_int_equal(roster_put(f->s, "romeo", &it, 0), STORE_ERROR);
    it.jid = "a@example.com";
    assert_int_equal(roster_put(f->s, "bad user", &it, 0), STORE_ERROR);
    it.sub = (roster_sub)9;
    assert_int_equal(roster_put(f->s, "romeo", &it, 0), STORE_ERROR);
    /* A domain-only contact is fine. */
    it.jid = "Example.org";
    it.sub = ROSTER_SUB_FROM;
    assert_int_equal(roster_put(f->s, "romeo", &it, 0), STORE_OK);
}

typedef struct listed {
    char jids[8][64];
    int n;
    int stop_after;
} listed;

static int list_cb(void *ud, const roster_item *item)
{
    listed *l = ud;
    snprintf(l->jids[l->n], sizeof l->jids[0], "%s:%s:%zu", item->jid, roster_sub_name(item->sub), item->ngroups);
    l->n++;
    return l->stop_after && l->n == l->stop_after ? 9 : 0;
}

static void test_list_remove(void **state)
{
    fixture *f = *state;
    char *g[] = {"G"};
    const char *contacts[] = {"zed@x", "amy@x", "mike@y", "x"};
    for (int i = 0; i < 4; i++) {
        roster_item it = {.jid = (char *)contacts[i], .sub = (roster_sub)i, .groups = g, .ngroups = (size_t)(i % 2)};
        assert_int_equal(roster_put(f->s, "romeo", &it, 0), STORE_OK);
    }
    /* A user whose name extends romeo's, to check the prefix bound. */
    roster_item other = {.jid = "amy@x", .sub = ROSTER_SUB_NONE};
    assert_int_equal(roster_put(f->s, "romeo2", &other, 0), STORE_OK);

    listed l = {0};
    assert_int_equal(roster_list(f->s, "romeo", list_cb, &l), STORE_OK);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.jids[0], "amy@x:to:1");
    assert_string_equal(l.jids[1], "mike@y:from:0");
    assert_string_equal(l.jids[2], "x:both:1");
    assert_string_equal(l.jids[3], "zed@x:none:0");

    memset(&l, 0, sizeof l);
    l.stop_after = 2;
    assert_int_equal(roster_list(f->s, "romeo", list_cb, &l), 9);
    assert_int_equal(l.n, 2);

    assert_int_equal(roster_remove(f->s, "romeo", "Amy@X"), STORE_OK);
    assert_int_equal(roster_remove(f->s, "romeo", "amy@x"), STORE_NOTFOUND);
    memset(&l, 0, sizeof l);
    assert_int_equal(roster_list(f->s, "romeo", list_cb, &l), STORE_OK);
    assert_int_equal(l.n, 3);

    store_txn *t;
    assert_int_equal(store_txn_begin(f->s, true, &t), STORE_OK);
    assert_int_equal(roster_remove_all_txn(t, "romeo"), STORE_OK);
    assert_int_equal(store_txn_commit(t), STORE_OK);
    memset(&l, 0, sizeof l);
    assert_int_equal(roster_list(f->s, "romeo", list_cb, &l), STORE_OK);
    assert_int_equal(l.n, 0);
    assert_int_equal(roster_list(f->s, "romeo2", list_cb, &l), STORE_OK);
    assert_int_equal(l.n, 1);
}

static void test_max_items(void **state)
{
    fixture *f = *state;
    char jid[32];
    for (int i = 0; i < 3; i++) {
        snprintf(jid, sizeof jid, "c%d@x", i);
        roster_item it = {.jid = jid, .sub = ROSTER_SUB_NONE};
        assert_int_equal(roster_put(f->s, "romeo", &it, 3), STORE_OK);
    }
    roster_item it = {.jid = "c9@x", .sub = ROSTER_SUB_NONE};
    assert_int_equal(roster_put(f->s, "romeo", &it, 3), STORE_FULL);
    roster_item out;
    assert_int_equal(roster_get(f->s, "romeo", "c9@x", &out), STORE_NOTFOUND);
    /* Updating an existing item is allowed at the limit. */
    it.jid = "c1@x";
    it.sub = ROSTER_SUB_BOTH;
    assert_int_equal(roster_put(f->s, "romeo", &it, 3), STORE_OK);
    /* Other users are not counted; 0 is unbounded. */
    it.jid = "c9@x";
    assert_int_equal(roster_put(f->s, "juliet", &it, 1), STORE_OK);
    assert_int_equal(roster_put(f->s, "romeo", &it, 0), STORE_OK);
}

static void test_corrupt(void **state)
{
    fixture *f = *state;
    store_txn *t;
    /* A record without its required fields, and one that is not msgpack. */
    static const unsigned char no_sub[] = {0x81, 0xa1, 'v', 0x01};
    assert_int_equal(store_txn_begin(f->s, true, &t), STORE_OK);
    assert_int_equal(store_put(t, "roster", "romeo\0a@x", 9, no_sub, sizeof no_sub, false), STORE_OK);
    assert_int_equal(store_put(t, "roster", "romeo\0b@x", 9, "junk", 4, false), STORE_OK);
    assert_int_equal(store_txn_commit(t), STORE_OK);
    roster_item out;
    assert_int_equal(roster_get(f->s, "romeo", "a@x", &out), STORE_CORRUPT);
    assert_null(out.jid);
    assert_int_equal(roster_get(f->s, "romeo", "b@x", &out), STORE_CORRUPT);
    listed l = {0};
    assert_int_equal(roster_list(f->s, "romeo", list_cb, &l), STORE_CORRUPT);

    /* Unknown extra fields are ignored (a newer writer's record). */
    static const unsigned char extra[] = {0x86, 0xa1, 'v', 0x01, 0xa3, 's', 'u', 'b', 0x03, 0xa3, 'a', 's', 'k', 0xc2,
                                          0xa7, 'p', 'e', 'n', 'd', 'i', 'n', 'g', 0xc3, 0xa6, 'g', 'r', 'o', 'u',
                                          'p', 's', 0x90, 0xa3, 'n', 'e', 'w', 0x2a};
    assert_int_equal(store_txn_begin(f->s, true, &t), STORE_OK);
    assert_int_equal(store_put(t, "roster", "romeo\0c@x", 9, extra, sizeof extra, false), STORE_OK);
    assert_int_equal(store_txn_commit(t), STORE_OK);
    assert_int_equal(roster_get(f->s, "romeo", "c@x", &out), STORE_OK);
    assert_int_equal(out.sub, ROSTER_SUB_BOTH);
    assert_true(out.pending_in);
    roster_item_clear(&out);
    /* Another record version is not read. */
    static const unsigned char v2[] = {0x81, 0xa1, 'v', 0x02};
    assert_int_equal(store_txn_begin(f->s, true, &t), STORE_OK);
    assert_int_equal(store_put(t, "roster", "romeo\0d@x", 9, v2, sizeof v2, false), STORE_OK);
    assert_int_equal(store_txn_commit(t), STORE_OK);
    assert_int_equal(roster_get(f->s, "romeo", "d@x", &out), STORE_CORRUPT);
}

static void test_sub_names(void **state)
{
    assert_string_equal(roster_sub_name(ROSTER_SUB_NONE), "none");
    assert_string_equal(roster_sub_name(ROSTER_SUB_TO), "to");
    assert_string_equal(roster_sub_name(ROSTER_SUB_FROM), "from");
    assert_string_equal(roster_sub_name(ROSTER_SUB_BOTH), "both");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_items, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_items, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
        cmocka_unit_test(test_sub_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
