/* test_media_h264.c - unit tests of core/media_h264.c: RTP packets (single
 * NAL units, STAP-A, FU-A) into Annex B access units for browsers, the
 * parameter sets added in front of a keyframe, losses dropping to the next
 * keyframe, the codec string. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "media_h264.h"

typedef struct got {
    uint8_t au[8][512];
    size_t len[8];
    uint32_t ts[8];
    bool key[8];
    size_t n;
} got;

static void collect(void *ud, const uint8_t *au, size_t len, uint32_t ts, bool is_key)
{
    got *g = ud;
    assert_true(g->n < 8 && len <= sizeof g->au[0]);
    memcpy(g->au[g->n], au, len);
    g->len[g->n] = len;
    g->ts[g->n] = ts;
    g->key[g->n] = is_key;
    g->n++;
}

/* One RTP packet through the assembler. */
static void push(h264_au *a, got *g, uint16_t seq, uint32_t ts, bool marker, const uint8_t *payload, size_t n)
{
    uint8_t p[600] = {0x80, (uint8_t)((marker ? 0x80 : 0) | 96), (uint8_t)(seq >> 8), (uint8_t)seq,
                      (uint8_t)(ts >> 24), (uint8_t)(ts >> 16), (uint8_t)(ts >> 8), (uint8_t)ts, 1, 2, 3, 4};
    memcpy(p + 12, payload, n);
    rtp_header h;
    assert_int_equal(rtp_parse(p, 12 + n, &h), 0);
    h264_au_push(a, p, &h, collect, g);
}

static const uint8_t SPS[] = {0x67, 0x42, 0xc0, 0x1e, 0xaa};
static const uint8_t PPS[] = {0x68, 0xce, 0x3c};
static const uint8_t IDR[] = {0x65, 0x88, 0x01, 0x02};
static const uint8_t SLICE[] = {0x41, 0x9a, 0x03};

static void test_stap_a_keyframe_and_single_nal(void **state)
{
    (void)state;
    h264_au a;
    got g = {0};
    h264_au_init(&a, 1 << 20);
    /* a slice before any keyframe is not sent */
    push(&a, &g, 1, 100, true, SLICE, sizeof SLICE);
    assert_int_equal(g.n, 0);
    uint8_t stap[32] = {0x78, 0, sizeof SPS};
    size_t n = 3;
    memcpy(stap + n, SPS, sizeof SPS);
    n += sizeof SPS;
    stap[n++] = 0;
    stap[n++] = sizeof PPS;
    memcpy(stap + n, PPS, sizeof PPS);
    n += sizeof PPS;
    push(&a, &g, 2, 3000, false, stap, n);
    push(&a, &g, 3, 3000, true, IDR, sizeof IDR);
    assert_int_equal(g.n, 1);
    assert_true(g.key[0]);
    assert_int_equal(g.ts[0], 3000);
    const uint8_t want[] = {0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xaa, 0, 0, 0, 1, 0x68, 0xce, 0x3c,
                            0, 0, 0, 1, 0x65, 0x88, 0x01, 0x02};
    assert_int_equal(g.len[0], sizeof want);
    assert_memory_equal(g.au[0], want, sizeof want);
    char codec[12];
    h264_codec_string(&a, codec);
    assert_string_equal(codec, "avc1.42C01E");
    /* the next picture, no marker: sent when the timestamp changes */
    push(&a, &g, 4, 6000, false, SLICE, sizeof SLICE);
    assert_int_equal(g.n, 1);
    push(&a, &g, 5, 9000, true, SLICE, sizeof SLICE);
    assert_int_equal(g.n, 3);
    assert_false(g.key[1]);
    assert_int_equal(g.ts[1], 6000);
    const uint8_t slice[] = {0, 0, 0, 1, 0x41, 0x9a, 0x03};
    assert_int_equal(g.len[1], sizeof slice);
    assert_memory_equal(g.au[1], slice, sizeof slice);
    h264_au_free(&a);
}

static void test_fu_a_loss_and_parameter_sets_added(void **state)
{
    (void)state;
    h264_au a;
    got g = {0};
    h264_au_init(&a, 1 << 20);
    push(&a, &g, 10, 0, false, SPS, sizeof SPS);
    push(&a, &g, 11, 0, false, PPS, sizeof PPS);
    /* an IDR slice in three fragments: FU indicator (NRI 3, type 28), FU header (S/E, type 5) */
    const uint8_t f1[] = {0x7c, 0x85, 0x88, 0x01}, f2[] = {0x7c, 0x05, 0x02}, f3[] = {0x7c, 0x45, 0x03};
    push(&a, &g, 12, 0, false, f1, sizeof f1);
    push(&a, &g, 13, 0, false, f2, sizeof f2);
    push(&a, &g, 14, 0, true, f3, sizeof f3);
    assert_int_equal(g.n, 1);
    assert_true(g.key[0]);
    const uint8_t idr[] = {0, 0, 0, 1, 0x65, 0x88, 0x01, 0x02, 0x03};
    assert_memory_equal(g.au[0] + g.len[0] - sizeof idr, idr, sizeof idr);
    /* a lost packet: that picture and the next are not sent */
    push(&a, &g, 15, 3000, false, f1, sizeof f1);
    push(&a, &g, 17, 3000, true, f3, sizeof f3); /* 16 lost */
    push(&a, &g, 18, 6000, true, SLICE, sizeof SLICE);
    assert_int_equal(g.n, 1);
    /* the next keyframe comes without its parameter sets: the kept ones go in front */
    push(&a, &g, 19, 9000, true, IDR, sizeof IDR);
    assert_int_equal(g.n, 2);
    assert_true(g.key[1]);
    const uint8_t want[] = {0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xaa, 0, 0, 0, 1, 0x68, 0xce, 0x3c,
                            0, 0, 0, 1, 0x65, 0x88, 0x01, 0x02};
    assert_int_equal(g.len[1], sizeof want);
    assert_memory_equal(g.au[1], want, sizeof want);
    /* a fragment whose start was lost, a malformed STAP-A: dropped */
    push(&a, &g, 20, 12000, true, f2, sizeof f2);
    const uint8_t bad_stap[] = {0x78, 0, 9, 0x41};
    push(&a, &g, 21, 15000, true, bad_stap, sizeof bad_stap);
    push(&a, &g, 22, 18000, true, SLICE, sizeof SLICE);
    assert_int_equal(g.n, 2);
    h264_au_free(&a);
}

static void test_size_limit(void **state)
{
    (void)state;
    h264_au a;
    got g = {0};
    h264_au_init(&a, 16);
    uint8_t big[40];
    memset(big, 0x11, sizeof big);
    big[0] = 0x65;
    push(&a, &g, 1, 0, true, big, sizeof big);
    assert_int_equal(g.n, 0);
    push(&a, &g, 2, 3000, true, IDR, sizeof IDR);
    assert_int_equal(g.n, 1);
    char codec[12];
    h264_codec_string(&a, codec);
    assert_string_equal(codec, ""); /* no SPS seen */
    h264_au_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stap_a_keyframe_and_single_nal),
        cmocka_unit_test(test_fu_a_loss_and_parameter_sets_added),
        cmocka_unit_test(test_size_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
