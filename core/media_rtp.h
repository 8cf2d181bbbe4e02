/* media_rtp.h - reading RTP and RTCP packets (RFC 3550) and the codec
 * payloads onair needs to understand: where an H.264 (RFC 6184) or VP8
 * (RFC 7741) keyframe starts, and which RTCP packets of a compound are
 * receiver feedback (RFC 4585 NACK and PLI, RFC 5104 FIR).
 *
 * Pure functions over borrowed bytes: no allocation, no state.  Everything
 * here is applied only to packets that SRTP has authenticated.
 */
#ifndef ONAIR_MEDIA_RTP_H
#define ONAIR_MEDIA_RTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rtp_header {
    uint8_t pt;         /* payload type, 0..127 */
    bool marker;
    uint16_t seq;
    uint32_t ts, ssrc;
    size_t header_len;  /* fixed header, CSRCs and extension */
    size_t payload_len; /* without padding */
} rtp_header;

/* RFC 5761 section 4: a packet whose second byte is 192..223 is RTCP. */
bool rtp_is_rtcp(const uint8_t *p, size_t len);
/* 0, or -1 for what is not a well-formed RTP version 2 packet. */
int rtp_parse(const uint8_t *p, size_t len, rtp_header *h);

typedef enum media_codec {
    MEDIA_CODEC_OTHER = 0, /* relayed without looking inside */
    MEDIA_CODEC_H264,
    MEDIA_CODEC_VP8
} media_codec;

/* Whether an RTP payload of codec c begins a keyframe: for H.264, it
 * carries an SPS or the first fragment of an IDR slice (single NAL unit,
 * STAP-A, FU-A); for VP8, the first partition's start of a key frame.
 * Always false for MEDIA_CODEC_OTHER or a malformed payload. */
bool media_payload_keyframe(media_codec c, const uint8_t *payload, size_t len);

/* RTCP feedback kinds found in a compound packet. */
enum {
    RTCP_HAS_SR = 1u << 0,   /* sender report (200) */
    RTCP_HAS_PLI = 1u << 1,  /* payload-specific feedback (206), FMT 1 */
    RTCP_HAS_FIR = 1u << 2,  /* payload-specific feedback (206), FMT 4 */
    RTCP_HAS_NACK = 1u << 3  /* transport-layer feedback (205), FMT 1 */
};

/* One packet of an RTCP compound: its offset, length and kind. */
typedef struct rtcp_item {
    size_t off, len;
    uint8_t pt, fmt;
} rtcp_item;

/* Walks a compound packet: fills up to max items; returns how many there
 * are, or -1 when the lengths do not add up (the whole packet is then
 * ignored).  *kinds gets the RTCP_HAS_* bits. */
int rtcp_walk(const uint8_t *p, size_t len, rtcp_item *items, size_t max, unsigned *kinds);
/* A sender report (RFC 3550 section 6.4.1, one item of rtcp_walk): the
 * wall-clock instant, in milliseconds since 1900 (NTP era 0), and the RTP
 * timestamp of the same instant.  0, or -1 when it is too short. */
int rtcp_sender_clock(const uint8_t *sr, size_t len, int64_t *ntp_ms, uint32_t *rtp);

#endif
