/* fuzz_h264.c - libFuzzer target for core/media_h264.c: the broadcaster's
 * authenticated RTP payloads (RFC 6184 single NAL units, STAP-A, FU-A, and
 * anything else) assembled into the Annex B access units the browsers
 * receive.
 *
 * The input is a run of packets, each a 2-byte big-endian length and that
 * many bytes of RTP (header and payload).  Every access unit given out must
 * be non-empty, within the size limit (plus the parameter sets put in
 * front), begin with a start code, and a keyframe must hold an IDR NAL
 * unit.  Any violation aborts.  See tests/fuzz/README.md.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media_h264.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz_h264: check failed at line %d: %s\n", __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#define AU_MAX 4096

static void check_au(void *ud, const uint8_t *au, size_t len, uint32_t ts, bool is_key)
{
    (void)ud;
    (void)ts;
    FUZZ_CHECK(len >= 5 && len <= AU_MAX + 2 * (4 + H264_PARAM_MAX));
    FUZZ_CHECK(au[0] == 0 && au[1] == 0 && au[2] == 0 && au[3] == 1);
    if (is_key) {
        bool idr = false;
        for (size_t i = 0; i + 4 < len && !idr; i++)
            idr = au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 0 && au[i + 3] == 1 && (au[i + 4] & 0x1f) == 5;
        FUZZ_CHECK(idr);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    h264_au a;
    h264_au_init(&a, AU_MAX);
    size_t off = 0;
    while (off + 2 <= size) {
        size_t n = (size_t)data[off] << 8 | data[off + 1];
        off += 2;
        if (n > size - off)
            n = size - off;
        uint8_t pkt[65536];
        memcpy(pkt, data + off, n);
        off += n;
        rtp_header h;
        if (rtp_parse(pkt, n, &h) == 0)
            h264_au_push(&a, pkt, &h, check_au, NULL);
    }
    char codec[12];
    h264_codec_string(&a, codec);
    FUZZ_CHECK(codec[0] == '\0' || strlen(codec) == 11);
    h264_au_free(&a);
    return 0;
}
