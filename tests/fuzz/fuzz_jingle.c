/* fuzz_jingle.c - libFuzzer target for core/media_jingle.c and
 * core/media_rtp.c.
 *
 * The input's first byte chooses: even, the rest is one XML element parsed
 * as a stanza and handed to mj_parse_initiate (which must either fill a
 * request within its limits or refuse with a condition and leave nothing to
 * free); odd, the rest is a datagram given to the RTP/RTCP readers and the
 * keyframe detectors (which must stay within the packet).  Any violation
 * aborts.  See tests/fuzz/README.md.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media_jingle.h"
#include "media_rtp.h"
#include "xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                               \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "fuzz_jingle: check failed at line %d: %s\n", __LINE__, #cond); \
            abort();                                                                   \
        }                                                                              \
    } while (0)

static void jingle(const uint8_t *data, size_t size)
{
    xml_limits lim = {262144, 32, 64};
    xml_node *n = NULL;
    if (xml_parse_element((const char *)data, size, &lim, &n) != 0)
        return;
    mj_initiate *ji = calloc(1, sizeof *ji);
    FUZZ_CHECK(ji != NULL);
    mj_error e;
    if (mj_parse_initiate(n, ji, &e) == 0) {
        FUZZ_CHECK(ji->ncontents >= 1 && ji->ncontents <= MJ_MAX_CONTENTS);
        FUZZ_CHECK(ji->sid[0] != '\0');
        for (size_t i = 0; i < ji->ncontents; i++) {
            FUZZ_CHECK(ji->contents[i].npts >= 1 && ji->contents[i].npts <= MJ_MAX_PAYLOADS);
            FUZZ_CHECK(ji->contents[i].suite != MEDIA_SRTP_NONE);
            FUZZ_CHECK(ji->role != MJ_INGEST || mj_payload_supported(ji->contents[i].media, &ji->contents[i].pts[0]));
        }
    } else {
        FUZZ_CHECK(e.condition != NULL && e.type != NULL);
        FUZZ_CHECK(strlen(e.text) < sizeof e.text);
    }
    free(ji);
    xml_node_free(n);
}

static void datagram(const uint8_t *data, size_t size)
{
    /* a copy of exactly size bytes, so that reading past it is caught */
    uint8_t *p = malloc(size ? size : 1);
    FUZZ_CHECK(p != NULL);
    memcpy(p, data, size);
    rtp_header h;
    if (rtp_parse(p, size, &h) == 0) {
        FUZZ_CHECK(h.header_len + h.payload_len <= size);
        media_payload_keyframe(MEDIA_CODEC_H264, p + h.header_len, h.payload_len);
        media_payload_keyframe(MEDIA_CODEC_VP8, p + h.header_len, h.payload_len);
    }
    rtcp_item items[4];
    unsigned kinds;
    int n = rtcp_walk(p, size, items, 4, &kinds);
    for (int i = 0; i < n && i < 4; i++)
        FUZZ_CHECK(items[i].off + items[i].len <= size);
    free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        datagram(data + 1, size - 1);
    else
        jingle(data + 1, size - 1);
    return 0;
}
