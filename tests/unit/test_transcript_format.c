/* Unit tests of plugins/transcript/format.c: the selection of a room's log,
 * the relative times, the JSON archive and its plain text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "format.h"

#define START 1800000000LL /* seconds */

static onair_room_log_entry entry(uint64_t seq, int64_t at_s_from_start, const char *nick, const char *body,
                                  bool notice, bool addressed)
{
    return (onair_room_log_entry){.seq = seq, .time_ms = (START + at_s_from_start) * 1000, .nick = nick,
                                  .jid = notice ? "" : "x@localhost/r", .body = body, .id = "",
                                  .notice = notice, .addressed = addressed};
}

static tr_meta meta(tr_part part, bool notices)
{
    return (tr_meta){.reservation_id = "abcdefghijklmnopqrstuvwxyz", .owner = "alice", .title = "Talk",
                     .room = "abcdefghijklmnopqrstuvwxyz@live.localhost", .reason = "ended", .start = START,
                     .end = START + 600, .started_ms = START * 1000, .closed_ms = (START + 900) * 1000,
                     .part = part, .notices = notices};
}

static void test_offsets(void **state)
{
    (void)state;
    char out[32];
    tr_offset(0, out);
    assert_string_equal(out, "+00:00:00");
    tr_offset(190000, out);
    assert_string_equal(out, "+00:03:10");
    tr_offset(-725000, out);
    assert_string_equal(out, "-00:12:05");
    tr_offset(-999, out); /* whole seconds toward zero */
    assert_string_equal(out, "-00:00:00");
    tr_offset(1999, out);
    assert_string_equal(out, "+00:00:01");
    tr_offset(100LL * 3600 * 1000 + 61000, out);
    assert_string_equal(out, "+100:01:01");
    tr_offset(INT64_MIN, out); /* no overflow */
    assert_int_equal(out[0], '-');
}

static void test_parts(void **state)
{
    (void)state;
    tr_part p;
    assert_true(tr_part_parse("all", &p) && p == TR_PART_ALL);
    assert_true(tr_part_parse("live", &p) && p == TR_PART_LIVE);
    assert_true(tr_part_parse("addressed", &p) && p == TR_PART_ADDRESSED);
    assert_false(tr_part_parse("", &p));
    assert_false(tr_part_parse("ALL", &p));
    assert_false(tr_part_parse(NULL, &p));
    assert_string_equal(tr_part_name(TR_PART_LIVE), "live");
}

static void test_selection(void **state)
{
    (void)state;
    onair_room_log_entry before = entry(1, -60, "bob", "hi", false, false);
    onair_room_log_entry soon = entry(2, -30, "", "starts soon", true, false);
    onair_room_log_entry asked = entry(3, 10, "bob", "alice: why?", false, true);
    onair_room_log_entry started = entry(4, 0, "", "has started", true, false);
    onair_room_log_entry at_end = entry(5, 600, "bob", "bye", false, false);
    tr_meta all = meta(TR_PART_ALL, true), quiet = meta(TR_PART_ALL, false);
    tr_meta live = meta(TR_PART_LIVE, true), addressed = meta(TR_PART_ADDRESSED, false);
    assert_true(tr_selected(&all, &before) && tr_selected(&all, &soon) && tr_selected(&all, &at_end));
    assert_false(tr_selected(&quiet, &soon));
    assert_true(tr_selected(&quiet, &before));
    /* live: [start, end) -- notices of that time only */
    assert_false(tr_selected(&live, &before));
    assert_false(tr_selected(&live, &soon));
    assert_true(tr_selected(&live, &started));
    assert_true(tr_selected(&live, &asked));
    assert_false(tr_selected(&live, &at_end));
    /* addressed */
    assert_true(tr_selected(&addressed, &asked));
    assert_false(tr_selected(&addressed, &before));
    assert_false(tr_selected(&addressed, &started));
}

static void test_json_and_text(void **state)
{
    (void)state;
    onair_room_log_entry log[] = {
        entry(1, -725, "bob", "hi", false, false),
        entry(2, -60, "", "The live starts in 1 minute.", true, false),
        entry(3, 190, "bob", "alice: two\nlines", false, true),
        entry(4, 200, "alice", "<ok> & \"fine\"", false, false),
    };
    tr_meta m = meta(TR_PART_ALL, false);
    json_t *doc = tr_build(&m, log, 4);
    assert_non_null(doc);
    assert_int_equal(json_integer_value(json_object_get(doc, "count")), 3);
    assert_string_equal(json_string_value(json_object_get(doc, "part")), "all");
    assert_true(json_is_false(json_object_get(doc, "notices")));
    assert_string_equal(json_string_value(json_object_get(doc, "start")), "2027-01-15T08:00:00Z");
    json_t *msgs = json_object_get(doc, "messages");
    assert_int_equal(json_array_size(msgs), 3);
    json_t *first = json_array_get(msgs, 0);
    assert_string_equal(json_string_value(json_object_get(first, "offset")), "-00:12:05");
    assert_int_equal(json_integer_value(json_object_get(first, "offset_ms")), -725000);
    assert_null(json_object_get(first, "jid")); /* real addresses stay out */
    json_t *second = json_array_get(msgs, 1);
    assert_string_equal(json_string_value(json_object_get(second, "offset")), "+00:03:10");
    assert_true(json_is_true(json_object_get(second, "addressed")));

    char *text = tr_text(doc);
    assert_non_null(text);
    assert_non_null(strstr(text, "Transcript of the live \"Talk\" (reservation abcdefghijklmnopqrstuvwxyz)\n"));
    assert_non_null(strstr(text, "Part: everything said in the room, without the room's notices\n"));
    assert_non_null(strstr(text, "\n-00:12:05 <bob> hi\n"));
    assert_non_null(strstr(text, "\n+00:03:10 <bob> alice: two\n          lines\n"));
    assert_non_null(strstr(text, "\n+00:03:20 <alice> <ok> & \"fine\"\n"));
    assert_null(strstr(text, "starts in"));
    free(text);
    json_decref(doc);

    /* nothing selected */
    tr_meta a = meta(TR_PART_ADDRESSED, false);
    doc = tr_build(&a, log, 1);
    text = tr_text(doc);
    assert_non_null(strstr(text, "(nothing was said)\n"));
    free(text);
    json_decref(doc);
    /* not an archive */
    json_t *bad = json_pack("{s:s}", "messages", "x");
    assert_null(tr_text(bad));
    json_decref(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_parts),
        cmocka_unit_test(test_selection),
        cmocka_unit_test(test_json_and_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
