/* test_media_rtp.c - unit tests of core/media_rtp.c (RTP/RTCP headers,
 * H.264 and VP8 keyframe starts, RTCP compounds) and core/media_srtp.c
 * (SDES keys, protect/unprotect, tampering and replay detection). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "media_rtp.h"
#include "media_srtp.h"

static size_t rtp(uint8_t *out, uint16_t seq, uint32_t ts, const uint8_t *payload, size_t n)
{
    uint8_t h[12] = {0x80, 96, (uint8_t)(seq >> 8), (uint8_t)seq, (uint8_t)(ts >> 24), (uint8_t)(ts >> 16),
                     (uint8_t)(ts >> 8), (uint8_t)ts, 0x11, 0x22, 0x33, 0x44};
    memcpy(out, h, 12);
    memcpy(out + 12, payload, n);
    return 12 + n;
}

static void test_rtp_header(void **state)
{
    (void)state;
    uint8_t p[64];
    size_t n = rtp(p, 513, 90000, (const uint8_t *)"abc", 3);
    rtp_header h;
    assert_int_equal(rtp_parse(p, n, &h), 0);
    assert_int_equal(h.seq, 513);
    assert_int_equal(h.ts, 90000);
    assert_int_equal(h.ssrc, 0x11223344);
    assert_int_equal(h.pt, 96);
    assert_int_equal(h.header_len, 12);
    assert_int_equal(h.payload_len, 3);
    assert_false(rtp_is_rtcp(p, n));
    /* CSRCs and an extension */
    uint8_t q[64] = {0x91, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, /* 1 CSRC */ 9, 9, 9, 9,
                     /* ext: profile, 1 word */ 0xbe, 0xde, 0, 1, 1, 2, 3, 4, 'x'};
    assert_int_equal(rtp_parse(q, 25, &h), 0);
    assert_int_equal(h.header_len, 24);
    assert_int_equal(h.payload_len, 1);
    /* bad version, truncated extension, padding larger than the packet */
    p[0] = 0x40;
    assert_int_equal(rtp_parse(p, n, &h), -1);
    assert_int_equal(rtp_parse(q, 19, &h), -1);
    p[0] = 0xA0;
    p[n - 1] = 200;
    assert_int_equal(rtp_parse(p, n, &h), -1);
    uint8_t rr[8] = {0x80, 201, 0, 1, 0, 0, 0, 1};
    assert_true(rtp_is_rtcp(rr, 8));
}

static void test_h264_keyframes(void **state)
{
    (void)state;
    uint8_t sps[] = {0x67, 1, 2}, idr[] = {0x65, 1}, slice[] = {0x41, 1};
    assert_true(media_payload_keyframe(MEDIA_CODEC_H264, sps, sizeof sps));
    assert_true(media_payload_keyframe(MEDIA_CODEC_H264, idr, sizeof idr));
    assert_false(media_payload_keyframe(MEDIA_CODEC_H264, slice, sizeof slice));
    /* STAP-A with an SPS in second place, and one without */
    uint8_t stap[] = {0x78, 0, 2, 0x68, 1, 0, 2, 0x67, 1};
    assert_true(media_payload_keyframe(MEDIA_CODEC_H264, stap, sizeof stap));
    uint8_t stap2[] = {0x78, 0, 2, 0x68, 1, 0, 2, 0x41, 1};
    assert_false(media_payload_keyframe(MEDIA_CODEC_H264, stap2, sizeof stap2));
    uint8_t stap_bad[] = {0x78, 0, 40, 0x67};
    assert_false(media_payload_keyframe(MEDIA_CODEC_H264, stap_bad, sizeof stap_bad));
    /* FU-A: only the start of an IDR */
    uint8_t fu_start[] = {0x7c, 0x85, 1}, fu_mid[] = {0x7c, 0x05, 1}, fu_p[] = {0x7c, 0x81, 1};
    assert_true(media_payload_keyframe(MEDIA_CODEC_H264, fu_start, sizeof fu_start));
    assert_false(media_payload_keyframe(MEDIA_CODEC_H264, fu_mid, sizeof fu_mid));
    assert_false(media_payload_keyframe(MEDIA_CODEC_H264, fu_p, sizeof fu_p));
    uint8_t forbidden[] = {0xe7, 1};
    assert_false(media_payload_keyframe(MEDIA_CODEC_H264, forbidden, sizeof forbidden));
    assert_false(media_payload_keyframe(MEDIA_CODEC_H264, sps, 0));
    assert_false(media_payload_keyframe(MEDIA_CODEC_OTHER, sps, sizeof sps));
}

static void test_vp8_keyframes(void **state)
{
    (void)state;
    uint8_t key[] = {0x10, 0x00, 0x9d}, inter[] = {0x10, 0x01, 0x9d}, cont[] = {0x00, 0x00, 0x9d};
    assert_true(media_payload_keyframe(MEDIA_CODEC_VP8, key, sizeof key));
    assert_false(media_payload_keyframe(MEDIA_CODEC_VP8, inter, sizeof inter));
    assert_false(media_payload_keyframe(MEDIA_CODEC_VP8, cont, sizeof cont));
    /* X with a 15-bit picture ID */
    uint8_t ext[] = {0x90, 0x80, 0x81, 0x23, 0x00};
    assert_true(media_payload_keyframe(MEDIA_CODEC_VP8, ext, sizeof ext));
    assert_false(media_payload_keyframe(MEDIA_CODEC_VP8, ext, 4));
}

static void test_rtcp_compound(void **state)
{
    (void)state;
    uint8_t p[] = {0x81, 201, 0, 1, 0, 0, 0, 5,            /* RR, no blocks? length 1 */
                   0x81, 206, 0, 2, 0, 0, 0, 5, 0, 0, 0, 9, /* PLI */
                   0x81, 205, 0, 3, 0, 0, 0, 5, 0, 0, 0, 9, 0, 7, 0, 0, /* NACK */
                   0x84, 206, 0, 4, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 9, 1, 0, 0, 0}; /* FIR */
    rtcp_item items[8];
    unsigned kinds;
    assert_int_equal(rtcp_walk(p, sizeof p, items, 8, &kinds), 4);
    assert_int_equal(kinds, RTCP_HAS_PLI | RTCP_HAS_NACK | RTCP_HAS_FIR);
    assert_int_equal(items[1].off, 8);
    assert_int_equal(items[1].len, 12);
    assert_int_equal(items[3].fmt, 4);
    assert_int_equal(rtcp_walk(p, sizeof p - 1, items, 8, &kinds), -1);
    p[0] = 0x41;
    assert_int_equal(rtcp_walk(p, sizeof p, items, 8, &kinds), -1);
}

static void test_srtp_keys(void **state)
{
    (void)state;
    const media_srtp_suite cm = MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80, gcm = MEDIA_SRTP_AEAD_AES_128_GCM;
    uint8_t key[MEDIA_SRTP_KEY_MAX];
    const char *why = NULL;
    assert_int_equal(media_srtp_parse_key(cm, "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz", key, &why), 0);
    assert_int_equal(media_srtp_parse_key(cm, "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20", key, &why), 0);
    assert_int_equal(media_srtp_parse_key(cm, "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4", key, &why),
                     -1);
    assert_non_null(strstr(why, "MKI"));
    assert_int_equal(media_srtp_parse_key(cm, "inline:short", key, &why), -1);
    assert_int_equal(media_srtp_parse_key(cm, "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz", key, &why), -1);
    assert_int_equal(media_srtp_parse_key(cm, "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGV!", key, &why), -1);
    /* AES-GCM: 28 bytes, "==" at the end and nowhere else; a 30-byte key is refused */
    assert_int_equal(media_srtp_parse_key(gcm, "inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==", key, &why), 0);
    assert_int_equal(key[0], 0);
    assert_int_equal(key[27], 27);
    assert_int_equal(media_srtp_parse_key(gcm, "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz", key, &why), -1);
    assert_non_null(strstr(why, "28 bytes"));
    assert_int_equal(media_srtp_parse_key(gcm, "inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaG==A", key, &why), -1);
    assert_int_equal(media_srtp_parse_key(cm, "inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==", key, &why), -1);
    for (media_srtp_suite s = cm; s <= gcm; s++) {
        char inl[MEDIA_SRTP_INLINE_MAX];
        assert_int_equal(media_srtp_new_key(s, key, inl), 0);
        assert_int_equal(strlen(inl), 7 + 40);
        uint8_t back[MEDIA_SRTP_KEY_MAX];
        assert_int_equal(media_srtp_parse_key(s, inl, back, &why), 0);
        assert_memory_equal(key, back, media_srtp_key_len(s));
    }
    assert_int_equal(media_srtp_suite_by_name("AES_CM_128_HMAC_SHA1_32"), MEDIA_SRTP_AES_CM_128_HMAC_SHA1_32);
    assert_int_equal(media_srtp_suite_by_name("AEAD_AES_128_GCM"), gcm);
    assert_int_equal(media_srtp_suite_by_name("NULL"), MEDIA_SRTP_NONE);
}

static void test_srtp_roundtrip_tamper_replay(void **state)
{
    (void)state;
    assert_int_equal(media_srtp_init(), 0);
    for (int suite = MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80; suite <= MEDIA_SRTP_AEAD_AES_128_GCM; suite++) {
        uint8_t key[MEDIA_SRTP_KEY_MAX];
        char inl[MEDIA_SRTP_INLINE_MAX];
        assert_int_equal(media_srtp_new_key((media_srtp_suite)suite, key, inl), 0);
        media_srtp *tx = media_srtp_new((media_srtp_suite)suite, key, true);
        media_srtp *rx = media_srtp_new((media_srtp_suite)suite, key, false);
        assert_non_null(tx);
        assert_non_null(rx);
        uint8_t p[128], copy[128];
        size_t n = rtp(p, 7, 1000, (const uint8_t *)"payload bytes", 13);
        size_t plain = n;
        assert_int_equal(media_srtp_protect(tx, p, &n), MEDIA_SRTP_OK);
        assert_true(n > plain);
        memcpy(copy, p, n);
        size_t m = n;
        assert_int_equal(media_srtp_unprotect(rx, p, &m), MEDIA_SRTP_OK);
        assert_int_equal(m, plain);
        assert_memory_equal(p + 12, "payload bytes", 13);
        /* the same packet again: a replay */
        m = n;
        memcpy(p, copy, n);
        assert_int_equal(media_srtp_unprotect(rx, p, &m), MEDIA_SRTP_REPLAY);
        /* the next one tampered */
        n = rtp(p, 8, 1000, (const uint8_t *)"payload bytes", 13);
        assert_int_equal(media_srtp_protect(tx, p, &n), MEDIA_SRTP_OK);
        p[14] ^= 1;
        m = n;
        assert_int_equal(media_srtp_unprotect(rx, p, &m), MEDIA_SRTP_AUTH_FAIL);
        /* RTCP */
        uint8_t r[64] = {0x81, 206, 0, 2, 0, 0, 0, 5, 0, 0, 0, 9};
        size_t rn = 12;
        assert_int_equal(media_srtp_protect_rtcp(tx, r, &rn), MEDIA_SRTP_OK);
        assert_int_equal(media_srtp_unprotect_rtcp(rx, r, &rn), MEDIA_SRTP_OK);
        assert_int_equal(rn, 12);
        m = 5;
        assert_int_equal(media_srtp_unprotect(rx, p, &m), MEDIA_SRTP_BAD);
        media_srtp_free(tx);
        media_srtp_free(rx);
    }
    media_srtp_shutdown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rtp_header),    cmocka_unit_test(test_h264_keyframes),
        cmocka_unit_test(test_vp8_keyframes), cmocka_unit_test(test_rtcp_compound),
        cmocka_unit_test(test_srtp_keys),     cmocka_unit_test(test_srtp_roundtrip_tamper_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
