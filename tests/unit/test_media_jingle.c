/* test_media_jingle.c - unit tests of core/media_jingle.c: reading a
 * session-initiate (roles, payload types, crypto, candidates, credentials)
 * and each refusal in the order of specs/media.md; building the server's
 * session-accept and session-terminate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media_jingle.h"

#define KEY "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
#define J "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s1'>"
#define DESC_V "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>"
#define CRYPTO "<encryption><crypto tag='1' crypto-suite='AES_CM_128_HMAC_SHA1_80' key-params='" KEY "'/></encryption>"
#define RAW(port) "<transport xmlns='urn:xmpp:jingle:transports:raw-udp:1'><candidate component='1' generation='0' id='c' ip='127.0.0.1' port='" port "'/></transport>"
#define CAST "<broadcast xmlns='urn:onair:media:1'><password>cast-secret</password></broadcast>"

static xml_node *parse(const char *s)
{
    xml_limits lim = {262144, 32, 64};
    xml_node *n = NULL;
    assert_int_equal(xml_parse_element(s, strlen(s), &lim, &n), 0);
    return n;
}

static int run(const char *s, mj_initiate *ji, mj_error *e)
{
    xml_node *n = parse(s);
    int rc = mj_parse_initiate(n, ji, e);
    xml_node_free(n);
    return rc;
}

static void test_ingest_offer(void **state)
{
    (void)state;
    mj_initiate *ji = calloc(1, sizeof *ji);
    mj_error e;
    const char *s = J "<content creator='initiator' name='v' senders='initiator'>" DESC_V
                      "<payload-type id='100' name='theora' clockrate='90000'/>"
                      "<payload-type id='96' name='h264' clockrate='90000'><parameter name='packetization-mode' value='1'/></payload-type>"
                      CRYPTO "</description>" RAW("40000") "</content>"
                      "<content creator='initiator' name='a' senders='initiator'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>"
                      "<payload-type id='0'/>" CRYPTO "<rtcp-mux/></description>" RAW("40002") "</content>" CAST "</jingle>";
    assert_int_equal(run(s, ji, &e), 0);
    assert_string_equal(ji->sid, "s1");
    assert_int_equal(ji->role, MJ_INGEST);
    assert_true(ji->has_password);
    assert_string_equal(ji->password, "cast-secret");
    assert_int_equal(ji->ncontents, 2);
    mj_content *v = &ji->contents[0], *a = &ji->contents[1];
    assert_int_equal(v->media, MJ_VIDEO);
    assert_int_equal(v->npts, 1); /* the supported one, chosen */
    assert_int_equal(v->pts[0].id, 96);
    assert_string_equal(v->pts[0].params, "packetization-mode=1");
    assert_int_equal(mj_payload_codec(&v->pts[0]), MEDIA_CODEC_H264);
    assert_int_equal(v->suite, MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80);
    assert_int_equal(ntohs(((struct sockaddr_in *)&v->rtp)->sin_port), 40000);
    assert_int_equal(ntohs(((struct sockaddr_in *)&v->rtcp)->sin_port), 40001); /* RTP + 1 */
    assert_string_equal(a->pts[0].name, "PCMU");                                /* static type 0 */
    assert_int_equal(a->pts[0].clockrate, 8000);
    assert_true(a->rtcp_mux);
    assert_int_equal(ntohs(((struct sockaddr_in *)&a->rtcp)->sin_port), 40002);
    free(ji);
}

static void expect(const char *s, const char *cond, const char *app, const char *text_part)
{
    mj_initiate *ji = calloc(1, sizeof *ji);
    mj_error e;
    assert_int_equal(run(s, ji, &e), -1);
    assert_string_equal(e.condition, cond);
    if (app)
        assert_string_equal(e.app_name, app);
    else
        assert_null(e.app_name);
    if (text_part && !strstr(e.text, text_part))
        fail_msg("text '%s' lacks '%s'", e.text, text_part);
    free(ji);
}

static void test_refusals(void **state)
{
    (void)state;
    expect("<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate'/>", "bad-request", NULL, "sid");
    expect(J "</jingle>", "bad-request", NULL, "at least one");
    expect(J "<content name='v' senders='initiator'>" DESC_V "<payload-type id='96' name='H264' clockrate='90000'/></description></content>" CAST "</jingle>",
           "bad-request", NULL, "no <transport/>");
    expect(J "<content name='v' senders='initiator'>" DESC_V "</description>" RAW("1") "</content>" CAST "</jingle>",
           "bad-request", NULL, "no <payload-type/>");
    expect(J "<content name='v' senders='initiator'>" DESC_V "<payload-type id='300'/></description>" RAW("1") "</content></jingle>",
           "bad-request", NULL, "id must be");
    expect(J "<content name='v' senders='initiator'>" DESC_V "<payload-type id='96' name='H264' clockrate='90000'/>" CRYPTO
             "</description>" RAW("0") "</content>" CAST "</jingle>",
           "bad-request", NULL, "port");
    const char *two_video = J "<content name='v' senders='initiator'>" DESC_V "<payload-type id='96' name='H264' clockrate='90000'/>"
                              CRYPTO "</description>" RAW("40000") "</content><content name='w' senders='initiator'>" DESC_V
                              "<payload-type id='96' name='H264' clockrate='90000'/>" CRYPTO "</description>" RAW("40002")
                              "</content>" CAST "</jingle>";
    expect(two_video, "bad-request", NULL, "one content per media");
    expect(J "<content name='v' senders='both'>" DESC_V "<payload-type id='96' name='H264' clockrate='90000'/>" CRYPTO
             "</description>" RAW("40000") "</content></jingle>",
           "bad-request", NULL, "senders");
    expect(J "<content name='v' senders='responder'>" DESC_V "<payload-type id='96' name='H264' clockrate='90000'/>" CRYPTO
             "</description>" RAW("40000") "</content>" CAST "</jingle>",
           "bad-request", NULL, "with <broadcast/>");
    expect(J "<content name='v' senders='initiator'>" DESC_V "<payload-type id='96' name='H264' clockrate='90000'/>" CRYPTO
             "</description><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'/></content>" CAST "</jingle>",
           "not-acceptable", NULL, "raw UDP");
    expect(J "<content name='v' senders='initiator'>" DESC_V "<payload-type id='96' name='H264' clockrate='90000'/></description>"
             RAW("40000") "</content>" CAST "</jingle>",
           "not-acceptable", "crypto-required", NULL);
    expect(J "<content name='v' senders='initiator'>" DESC_V "<payload-type id='96' name='H264' clockrate='90000'/>"
             "<encryption><crypto tag='1' crypto-suite='AEAD_AES_256_GCM' key-params='" KEY "'/></encryption></description>"
             RAW("40000") "</content>" CAST "</jingle>",
           "not-acceptable", "invalid-crypto", NULL);
    expect(J "<content name='v' senders='initiator'>" DESC_V "<payload-type id='96' name='H264' clockrate='90000'/>"
             "<encryption><crypto tag='1' crypto-suite='AES_CM_128_HMAC_SHA1_80' key-params='" KEY "|2^20|1:4'/></encryption></description>"
             RAW("40000") "</content>" CAST "</jingle>",
           "not-acceptable", "invalid-crypto", "MKI");
    expect(J "<content name='v' senders='initiator'>" DESC_V "<payload-type id='96' name='H264' clockrate='90000'/>"
             "<encryption><crypto tag='1' crypto-suite='AES_CM_128_HMAC_SHA1_80' key-params='inline:abc'/></encryption></description>"
             RAW("40000") "</content>" CAST "</jingle>",
           "bad-request", NULL, "30 bytes");
    expect(J "<content name='v' senders='initiator'>" DESC_V "<payload-type id='96' name='MP4V-ES' clockrate='90000'/>" CRYPTO
             "</description>" RAW("40000") "</content>" CAST "</jingle>",
           "not-acceptable", NULL, "H264/90000");
}

static void test_watch_without_credential(void **state)
{
    (void)state;
    mj_initiate *ji = calloc(1, sizeof *ji);
    mj_error e;
    const char *s = J "<content name='v' senders='responder'>" DESC_V "<payload-type id='97' name='VP8' clockrate='90000'/>"
                      "<payload-type id='98' name='H264' clockrate='90000'/>" CRYPTO "</description>"
                      "<transport xmlns='urn:xmpp:jingle:transports:raw-udp:1'><candidate component='1' generation='0' id='c' ip='::1' port='5000'/>"
                      "<candidate component='2' generation='0' id='d' ip='::1' port='6000'/></transport></content></jingle>";
    assert_int_equal(run(s, ji, &e), 0);
    assert_int_equal(ji->role, MJ_WATCH);
    assert_false(ji->has_password);
    assert_int_equal(ji->contents[0].npts, 2); /* a viewer's offer is kept whole */
    assert_int_equal(ji->contents[0].rtcp.ss_family, AF_INET6);
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&ji->contents[0].rtcp)->sin6_port), 6000);
    free(ji);
}

static void test_build(void **state)
{
    (void)state;
    mj_payload pt = {.id = 97, .clockrate = 90000, .channels = 1};
    snprintf(pt.name, sizeof pt.name, "H264");
    snprintf(pt.params, sizeof pt.params, "packetization-mode=1;profile-level-id=42e01f");
    mj_answer a = {"video", "initiator", "responder", MJ_VIDEO, &pt, "1", MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80, KEY,
                   "127.0.0.1", 5004};
    xml_node *iq = mj_build_accept("x1", "id@media.localhost", "bob@localhost/r", "s1", &a, 1);
    char *out = xml_to_string(iq, XML_NS_CLIENT);
    assert_non_null(strstr(out, "action=\"session-accept\""));
    assert_non_null(strstr(out, "responder=\"id@media.localhost\""));
    assert_non_null(strstr(out, "initiator=\"bob@localhost/r\""));
    assert_non_null(strstr(out, "<parameter name=\"profile-level-id\" value=\"42e01f\"/>"));
    assert_non_null(strstr(out, "key-params=\"" KEY "\""));
    assert_non_null(strstr(out, "component=\"2\""));
    assert_non_null(strstr(out, "<rtcp-mux/>"));
    free(out);
    xml_node_free(iq);
    iq = mj_build_terminate("x2", "id@media.localhost", "bob@localhost/r", "s1", "expired", "closed <now>");
    out = xml_to_string(iq, XML_NS_CLIENT);
    assert_non_null(strstr(out, "<reason><expired/><text>closed &lt;now&gt;</text></reason>"));
    free(out);
    xml_node_free(iq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ingest_offer),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_watch_without_credential),
        cmocka_unit_test(test_build),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
