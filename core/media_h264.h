/* media_h264.h - H.264 access units from RTP (RFC 6184) for the browsers'
 * media WebSocket (specs/media.md, "Browsers"): single NAL unit packets,
 * STAP-A and FU-A are unpacked into one Annex B access unit (start codes
 * 00 00 00 01) per RTP timestamp, ended by the marker bit or by the next
 * timestamp.  A keyframe (an access unit with an IDR slice) always carries
 * the latest SPS and PPS in front, so a decoder can start at any of them.
 *
 * A lost packet (a gap in the sequence numbers) or a malformed payload
 * drops the access unit it belongs to, and everything after it until the
 * next keyframe: a decoder fed a broken picture shows garbage until then.
 *
 * Memory: the assembler owns its buffers (h264_au_free); the access unit
 * given to the callback is borrowed for the call.  No other state: one
 * assembler per live, and a short-lived one for a late joiner's start.
 */
#ifndef ONAIR_MEDIA_H264_H
#define ONAIR_MEDIA_H264_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "media_rtp.h"

#define H264_PARAM_MAX 256 /* an SPS or PPS larger than this is not kept */

typedef struct h264_au {
    uint8_t *buf;      /* the access unit being assembled (Annex B) */
    size_t len, cap;
    uint8_t *out;      /* a keyframe with the parameter sets in front */
    size_t out_cap;
    size_t max_bytes;  /* an access unit larger than this is dropped */
    uint32_t ts;
    uint16_t next_seq;
    bool has_seq;      /* next_seq is known */
    bool is_open;      /* an access unit is being assembled (ts is its) */
    bool is_key;       /* it has an IDR slice */
    bool is_broken;    /* a packet of it was lost or malformed */
    bool in_fu;        /* inside a fragmented NAL unit */
    bool need_key;     /* dropping until the next keyframe */
    bool has_sps_in, has_pps_in; /* the access unit carries them itself */
    uint8_t sps[H264_PARAM_MAX], pps[H264_PARAM_MAX];
    size_t sps_len, pps_len;
} h264_au;

/* Called for each complete access unit: Annex B bytes, the RTP timestamp,
 * whether it is a keyframe.  Borrowed for the call. */
typedef void (*h264_au_fn)(void *ud, const uint8_t *au, size_t len, uint32_t ts, bool is_key);

/* Starts an assembler (zeroes it); max_bytes bounds one access unit. */
void h264_au_init(h264_au *a, size_t max_bytes);
void h264_au_free(h264_au *a);
/* One RTP packet (authenticated, parsed into h): adds its payload, and
 * calls fn for the access unit(s) it completes. */
void h264_au_push(h264_au *a, const uint8_t *pkt, const rtp_header *h, h264_au_fn fn, void *ud);
/* The WebCodecs codec string of the latest SPS ("avc1.PPCCLL"), or "" when
 * none has been seen.  out needs 12 bytes. */
void h264_codec_string(const h264_au *a, char out[12]);

#endif
