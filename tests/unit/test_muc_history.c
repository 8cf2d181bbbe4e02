/* test_muc_history.c - unit tests of core/muc_history.c: the history ring,
 * the XEP-0045 history limits (maxstanzas, maxchars, seconds, since, their
 * combinations and bad values) and the per-occupant token bucket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "muc_history.h"

#define T0 1900000000000LL /* ms */

/* A ring of n items, item i at T0 + i seconds, each len bytes long. */
static void fill(muc_history *h, size_t cap, size_t n, uint32_t len)
{
    assert_int_equal(muc_history_init(h, cap), 0);
    for (size_t i = 0; i < n; i++) {
        char *w = malloc(len + 1);
        assert_non_null(w);
        memset(w, 'a' + (int)(i % 26), len);
        w[len] = '\0';
        muc_history_push(h, T0 + (int64_t)i * 1000, w, 13, len);
    }
}

static muc_history_request none(void)
{
    muc_history_request rq;
    const char *bad = NULL;
    assert_int_equal(muc_history_request_parse(NULL, &rq, &bad), 0);
    return rq;
}

static void test_ring_keeps_the_newest(void **state)
{
    (void)state;
    muc_history h;
    fill(&h, 3, 5, 20);
    assert_int_equal(h.n, 3);
    assert_int_equal(muc_history_at(&h, 0)->time_ms, T0 + 2000);
    assert_int_equal(muc_history_at(&h, 2)->time_ms, T0 + 4000);
    assert_int_equal(muc_history_at(&h, 0)->wire[0], 'c');
    muc_history_free(&h);
    /* cap 0 keeps nothing and frees what it is given */
    fill(&h, 0, 2, 20);
    assert_int_equal(h.n, 0);
    muc_history_request rq = none();
    assert_int_equal(muc_history_select(&h, &rq, T0, 10), 0);
    muc_history_free(&h);
}

static void test_no_limits_sends_all(void **state)
{
    (void)state;
    muc_history h;
    fill(&h, 10, 4, 20);
    muc_history_request rq = none();
    assert_int_equal(muc_history_select(&h, &rq, T0 + 10000, 30), 0);
    muc_history_free(&h);
}

static void test_maxstanzas(void **state)
{
    (void)state;
    muc_history h;
    fill(&h, 10, 4, 20);
    muc_history_request rq = none();
    rq.maxstanzas = 2;
    assert_int_equal(muc_history_select(&h, &rq, T0, 30), 2);
    rq.maxstanzas = 0;
    assert_int_equal(muc_history_select(&h, &rq, T0, 30), 4);
    rq.maxstanzas = 99;
    assert_int_equal(muc_history_select(&h, &rq, T0, 30), 0);
    muc_history_free(&h);
}

static void test_maxchars_counts_whole_stanzas(void **state)
{
    (void)state;
    muc_history h;
    fill(&h, 10, 4, 20); /* each stanza: 20 bytes + a 'to' of 30 = 50 */
    muc_history_request rq = none();
    rq.maxchars = 0;
    assert_int_equal(muc_history_select(&h, &rq, T0, 30), 4);
    rq.maxchars = 49;
    assert_int_equal(muc_history_select(&h, &rq, T0, 30), 4);
    rq.maxchars = 50;
    assert_int_equal(muc_history_select(&h, &rq, T0, 30), 3);
    rq.maxchars = 149; /* never half a stanza: two fit */
    assert_int_equal(muc_history_select(&h, &rq, T0, 30), 2);
    muc_history_free(&h);
}

static void test_seconds_and_since(void **state)
{
    (void)state;
    muc_history h;
    fill(&h, 10, 4, 20); /* at T0, +1 s, +2 s, +3 s */
    muc_history_request rq = none();
    rq.seconds = 2;
    assert_int_equal(muc_history_select(&h, &rq, T0 + 4000, 30), 2); /* +2 s and +3 s */
    rq.seconds = -1;
    rq.since_ms = T0 + 1000;
    assert_int_equal(muc_history_select(&h, &rq, T0 + 4000, 30), 1);
    /* the tightest of all the limits wins */
    rq.seconds = 10;
    rq.maxstanzas = 1;
    assert_int_equal(muc_history_select(&h, &rq, T0 + 4000, 30), 3);
    muc_history_free(&h);
}

static void test_parse(void **state)
{
    (void)state;
    xml_node *x = xml_node_new("history", "http://jabber.org/protocol/muc");
    muc_history_request rq;
    const char *bad = NULL;
    xml_node_set_attr(x, "maxstanzas", "5");
    xml_node_set_attr(x, "maxchars", "0");
    xml_node_set_attr(x, "seconds", "180");
    xml_node_set_attr(x, "since", "2030-01-01T00:00:00Z");
    assert_int_equal(muc_history_request_parse(x, &rq, &bad), 0);
    assert_int_equal(rq.maxstanzas, 5);
    assert_int_equal(rq.maxchars, 0);
    assert_int_equal(rq.seconds, 180);
    assert_int_equal(rq.since_ms, 1893456000000LL);
    static const char *const bad_counts[] = {"-1", "", "x", "1.5", "+3", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad_counts / sizeof bad_counts[0]; i++) {
        xml_node_set_attr(x, "maxchars", bad_counts[i]);
        assert_int_equal(muc_history_request_parse(x, &rq, &bad), -1);
        assert_string_equal(bad, "maxchars");
    }
    xml_node_set_attr(x, "maxchars", NULL);
    xml_node_set_attr(x, "since", "yesterday");
    assert_int_equal(muc_history_request_parse(x, &rq, &bad), -1);
    assert_string_equal(bad, "since");
    xml_node_free(x);
}

static void test_rate_bucket(void **state)
{
    (void)state;
    muc_rate r;
    muc_rate_init(&r, T0, 3);
    assert_true(muc_rate_take(&r, T0, 2, 3));
    assert_true(muc_rate_take(&r, T0, 2, 3));
    assert_true(muc_rate_take(&r, T0, 2, 3));
    assert_false(muc_rate_take(&r, T0, 2, 3)); /* the burst is spent */
    assert_false(muc_rate_take(&r, T0 + 499, 2, 3));
    assert_true(muc_rate_take(&r, T0 + 500, 2, 3)); /* 2 a second: one after 500 ms */
    assert_false(muc_rate_take(&r, T0 + 500, 2, 3));
    /* a long pause refills up to the burst, no more */
    for (int i = 0; i < 3; i++)
        assert_true(muc_rate_take(&r, T0 + 100000, 2, 3));
    assert_false(muc_rate_take(&r, T0 + 100000, 2, 3));
    /* a clock going back takes nothing and gives nothing */
    assert_false(muc_rate_take(&r, T0, 2, 3));
    /* a lowered burst applies at once */
    muc_rate_init(&r, T0, 10);
    assert_true(muc_rate_take(&r, T0, 1, 1));
    assert_false(muc_rate_take(&r, T0, 1, 1));
}

/* A flood at 1000 a second for 10 s gets burst + rate x 10 s through. */
static void test_rate_flood(void **state)
{
    (void)state;
    muc_rate r;
    muc_rate_init(&r, T0, 10);
    int passed = 0;
    for (int i = 0; i < 10000; i++)
        passed += muc_rate_take(&r, T0 + i, 2, 10);
    assert_in_range(passed, 29, 31);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_keeps_the_newest),
        cmocka_unit_test(test_no_limits_sends_all),
        cmocka_unit_test(test_maxstanzas),
        cmocka_unit_test(test_maxchars_counts_whole_stanzas),
        cmocka_unit_test(test_seconds_and_since),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_rate_bucket),
        cmocka_unit_test(test_rate_flood),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
