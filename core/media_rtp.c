/* media_rtp.c - RTP/RTCP headers and keyframe detection (media_rtp.h). */
#include "media_rtp.h"

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

bool rtp_is_rtcp(const uint8_t *p, size_t len)
{
    return len >= 2 && p[1] >= 192 && p[1] <= 223;
}

int rtp_parse(const uint8_t *p, size_t len, rtp_header *h)
{
    if (len < 12 || (p[0] >> 6) != 2)
        return -1;
    size_t off = 12 + 4u * (p[0] & 0x0f);
    if (off > len)
        return -1;
    if (p[0] & 0x10) { /* header extension: 16-bit profile, 16-bit length in words */
        if (off + 4 > len)
            return -1;
        off += 4 + 4u * be16(p + off + 2);
        if (off > len)
            return -1;
    }
    size_t pad = 0;
    if (p[0] & 0x20) {
        pad = p[len - 1];
        if (pad == 0 || off + pad > len)
            return -1;
    }
    h->pt = p[1] & 0x7f;
    h->marker = (p[1] & 0x80) != 0;
    h->seq = be16(p + 2);
    h->ts = be32(p + 4);
    h->ssrc = be32(p + 8);
    h->header_len = off;
    h->payload_len = len - off - pad;
    return 0;
}

/* H.264 NAL unit types (RFC 6184 section 5.4 and ITU-T H.264 table 7-1). */
enum { NAL_IDR = 5, NAL_SPS = 7, NAL_STAP_A = 24, NAL_FU_A = 28 };

static bool h264_key_nal(uint8_t type)
{
    return type == NAL_IDR || type == NAL_SPS;
}

static bool h264_keyframe(const uint8_t *p, size_t len)
{
    if (len < 1 || (p[0] & 0x80)) /* forbidden_zero_bit */
        return false;
    uint8_t type = p[0] & 0x1f;
    if (type >= 1 && type <= 23)
        return h264_key_nal(type);
    if (type == NAL_STAP_A) {
        size_t off = 1;
        while (off + 2 < len) {
            size_t n = be16(p + off);
            off += 2;
            if (n == 0 || off + n > len)
                return false;
            if (h264_key_nal(p[off] & 0x1f))
                return true;
            off += n;
        }
        return false;
    }
    if (type == NAL_FU_A) {
        if (len < 2)
            return false;
        bool start = (p[1] & 0x80) != 0;
        return start && h264_key_nal(p[1] & 0x1f);
    }
    return false;
}

/* RFC 7741 section 4.2: the payload descriptor, then (with S=1 and PID=0)
 * the VP8 payload header, whose lowest bit P is 0 for a key frame. */
static bool vp8_keyframe(const uint8_t *p, size_t len)
{
    if (len < 1)
        return false;
    size_t off = 1;
    bool start = (p[0] & 0x10) != 0;
    uint8_t pid = p[0] & 0x07;
    if (p[0] & 0x80) { /* X: extension byte */
        if (len < 2)
            return false;
        uint8_t x = p[1];
        off = 2;
        if (x & 0x80) { /* I: picture ID, 7 or 15 bits */
            if (off >= len)
                return false;
            off += (p[off] & 0x80) ? 2 : 1;
        }
        if (x & 0x40) /* L: TL0PICIDX */
            off += 1;
        if (x & 0x30) /* T or K: TID/Y/KEYIDX */
            off += 1;
    }
    if (!start || pid != 0 || off >= len)
        return false;
    return (p[off] & 0x01) == 0;
}

bool media_payload_keyframe(media_codec c, const uint8_t *payload, size_t len)
{
    switch (c) {
    case MEDIA_CODEC_H264:
        return h264_keyframe(payload, len);
    case MEDIA_CODEC_VP8:
        return vp8_keyframe(payload, len);
    case MEDIA_CODEC_OTHER:
        break;
    }
    return false;
}

int rtcp_walk(const uint8_t *p, size_t len, rtcp_item *items, size_t max, unsigned *kinds)
{
    *kinds = 0;
    size_t off = 0;
    int n = 0;
    while (off < len) {
        if (len - off < 4 || (p[off] >> 6) != 2)
            return -1;
        size_t plen = 4u * ((size_t)be16(p + off + 2) + 1);
        if (plen > len - off)
            return -1;
        uint8_t pt = p[off + 1], fmt = p[off] & 0x1f;
        if (pt == 200)
            *kinds |= RTCP_HAS_SR;
        else if (pt == 206 && fmt == 1)
            *kinds |= RTCP_HAS_PLI;
        else if (pt == 206 && fmt == 4)
            *kinds |= RTCP_HAS_FIR;
        else if (pt == 205 && fmt == 1)
            *kinds |= RTCP_HAS_NACK;
        if ((size_t)n < max)
            items[n] = (rtcp_item){off, plen, pt, fmt};
        n++;
        off += plen;
    }
    return n;
}

int rtcp_sender_clock(const uint8_t *sr, size_t len, int64_t *ntp_ms, uint32_t *rtp)
{
    if (len < 28)
        return -1;
    uint64_t sec = be32(sr + 8), frac = be32(sr + 12);
    *ntp_ms = (int64_t)(sec * 1000 + ((frac * 1000) >> 32));
    *rtp = be32(sr + 16);
    return 0;
}
