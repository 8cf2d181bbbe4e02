/* test_offline.c - unit tests of core/offline.c: push/take order, quota,
 * a callback that aborts keeps the messages, count, remove_all. */
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

#include "offline.h"
#include "store.h"
#include "store_fixture.h"

typedef store_fixture fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || store_fixture_open(f, "offline") != 0)
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

typedef struct taken {
    char xml[300][32];
    int64_t stamp[300];
    int n;
    int abort_at; /* return non-zero at this message (1-based; 0 = never) */
} taken;

static int take_cb(void *ud, const char *xml, size_t len, int64_t stamp_ms)
{
    taken *t = ud;
    assert_true(len < sizeof t->xml[0]);
    memcpy(t->xml[t->n], xml, len);
    t->xml[t->n][len] = '\0';
    t->stamp[t->n] = stamp_ms;
    t->n++;
    return t->abort_at && t->n == t->abort_at ? 3 : 0;
}

static void push(store *s, const char *user, const char *xml, int64_t stamp, size_t max, int expect)
{
    assert_int_equal(offline_push(s, user, xml, strlen(xml), stamp, max), expect);
}

static void test_push_take_order(void **state)
{
    fixture *f = *state;
    char xml[32];
    for (int i = 0; i < 260; i++) { /* past 255: the sequence crosses a byte */
        snprintf(xml, sizeof xml, "<message id='%d'/>", i);
        push(f->s, "juliet", xml, 1000 + i, 0, STORE_OK);
    }
    push(f->s, "juliet2", "<other/>", -5, 0, STORE_OK);
    assert_int_equal(offline_count(f->s, "juliet"), 260);
    assert_int_equal(offline_count(f->s, "Juliet"), 260);

    taken *t = calloc(1, sizeof *t);
    assert_int_equal(offline_take(f->s, "juliet", take_cb, t), STORE_OK);
    assert_int_equal(t->n, 260);
    for (int i = 0; i < 260; i++) {
        snprintf(xml, sizeof xml, "<message id='%d'/>", i);
        assert_string_equal(t->xml[i], xml);
        assert_int_equal(t->stamp[i], 1000 + i);
    }
    assert_int_equal(offline_count(f->s, "juliet"), 0);
    memset(t, 0, sizeof *t);
    assert_int_equal(offline_take(f->s, "juliet", take_cb, t), STORE_OK);
    assert_int_equal(t->n, 0);

    /* The neighbour's message is untouched; a negative stamp survives. */
    assert_int_equal(offline_count(f->s, "juliet2"), 1);
    assert_int_equal(offline_take(f->s, "juliet2", take_cb, t), STORE_OK);
    assert_int_equal(t->n, 1);
    assert_string_equal(t->xml[0], "<other/>");
    assert_int_equal(t->stamp[0], -5);

    /* After a take, new messages start again and keep their order. */
    push(f->s, "juliet", "<a/>", 1, 0, STORE_OK);
    push(f->s, "juliet", "<b/>", 2, 0, STORE_OK);
    memset(t, 0, sizeof *t);
    assert_int_equal(offline_take(f->s, "juliet", take_cb, t), STORE_OK);
    assert_int_equal(t->n, 2);
    assert_string_equal(t->xml[0], "<a/>");
    assert_string_equal(t->xml[1], "<b/>");
    free(t);
}

static void test_quota(void **state)
{
    fixture *f = *state;
    push(f->s, "romeo", "<1/>", 1, 3, STORE_OK);
    push(f->s, "romeo", "<2/>", 2, 3, STORE_OK);
    push(f->s, "romeo", "<3/>", 3, 3, STORE_OK);
    push(f->s, "romeo", "<4/>", 4, 3, STORE_FULL);
    assert_int_equal(offline_count(f->s, "romeo"), 3);
    push(f->s, "romeo", "<5/>", 5, 0, STORE_OK); /* 0 = unbounded */
    push(f->s, "other", "<1/>", 1, 1, STORE_OK);  /* per user */
    push(f->s, "other", "<2/>", 1, 1, STORE_FULL);
    taken *t = calloc(1, sizeof *t);
    assert_int_equal(offline_take(f->s, "romeo", take_cb, t), STORE_OK);
    assert_int_equal(t->n, 4);
    assert_string_equal(t->xml[3], "<5/>");
    push(f->s, "romeo", "<6/>", 6, 1, STORE_OK);
    free(t);
}

static void test_take_abort_keeps(void **state)
{
    fixture *f = *state;
    push(f->s, "tybalt", "<a/>", 1, 0, STORE_OK);
    push(f->s, "tybalt", "<b/>", 2, 0, STORE_OK);
    push(f->s, "tybalt", "<c/>", 3, 0, STORE_OK);
    taken *t = calloc(1, sizeof *t);
    t->abort_at = 2;
    assert_int_equal(offline_take(f->s, "tybalt", take_cb, t), 3);
    assert_int_equal(t->n, 2);
    assert_int_equal(offline_count(f->s, "tybalt"), 3);
    memset(t, 0, sizeof *t);
    assert_int_equal(offline_take(f->s, "tybalt", take_cb, t), STORE_OK);
    assert_int_equal(t->n, 3);
    assert_string_equal(t->xml[0], "<a/>");
    assert_string_equal(t->xml[2], "<c/>");
    assert_int_equal(offline_count(f->s, "tybalt"), 0);
    free(t);
}

static void test_binary_and_bad_user(void **state)
{
    fixture *f = *state;
    /* Stanzas are passed with their length: embedded NULs survive. */
    assert_int_equal(offline_push(f->s, "mercutio", "a\0b", 3, 7, 0), STORE_OK);
    taken *t = calloc(1, sizeof *t);
    assert_int_equal(offline_take(f->s, "mercutio", take_cb, t), STORE_OK);
    assert_int_equal(t->n, 1);
    assert_memory_equal(t->xml[0], "a\0b", 3);
    assert_int_equal(offline_push(f->s, "bad user", "<x/>", 4, 1, 0), STORE_ERROR);
    assert_int_equal(offline_count(f->s, "bad user"), 0);
    free(t);
}

static void test_corrupt_skipped(void **state)
{
    fixture *f = *state;
    push(f->s, "nurse", "<a/>", 1, 0, STORE_OK);
    store_txn *txn;
    assert_int_equal(store_txn_begin(f->s, true, &txn), STORE_OK);
    static const char key[] = {'n', 'u', 'r', 's', 'e', 0, 0, 0, 0, 0, 0, 0, 0, 2};
    assert_int_equal(store_put(txn, "offline", key, sizeof key, "junk", 4, false), STORE_OK);
    assert_int_equal(store_txn_commit(txn), STORE_OK);
    push(f->s, "nurse", "<c/>", 3, 0, STORE_OK);
    assert_int_equal(offline_count(f->s, "nurse"), 3);
    taken *t = calloc(1, sizeof *t);
    assert_int_equal(offline_take(f->s, "nurse", take_cb, t), STORE_OK);
    assert_int_equal(t->n, 2);
    assert_string_equal(t->xml[1], "<c/>");
    assert_int_equal(offline_count(f->s, "nurse"), 0);
    free(t);
}

static void test_remove_all(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 50; i++)
        push(f->s, "paris", "<m/>", i, 0, STORE_OK);
    push(f->s, "parisx", "<m/>", 0, 0, STORE_OK);
    store_txn *t;
    assert_int_equal(store_txn_begin(f->s, true, &t), STORE_OK);
    assert_int_equal(offline_remove_all_txn(t, "paris"), STORE_OK);
    assert_int_equal(store_txn_commit(t), STORE_OK);
    assert_int_equal(offline_count(f->s, "paris"), 0);
    assert_int_equal(offline_count(f->s, "parisx"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_push_take_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_take_abort_keeps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_and_bad_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_all, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
