/* media_h264.c - RFC 6184 depacketization into Annex B access units
 * (media_h264.h). */
#include "media_h264.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NAL_IDR = 5, NAL_SPS = 7, NAL_PPS = 8, NAL_AUD = 9, NAL_STAP_A = 24, NAL_FU_A = 28 };

static const uint8_t START[4] = {0, 0, 0, 1};

void h264_au_init(h264_au *a, size_t max_bytes)
{
    memset(a, 0, sizeof *a);
    a->max_bytes = max_bytes;
    a->need_key = true;
}

void h264_au_free(h264_au *a)
{
    free(a->buf);
    free(a->out);
    memset(a, 0, sizeof *a);
}

static bool reserve(uint8_t **buf, size_t *cap, size_t want)
{
    if (want <= *cap)
        return true;
    size_t c = *cap ? *cap : 16384;
    while (c < want)
        c *= 2;
    uint8_t *nb = realloc(*buf, c);
    if (!nb)
        return false;
    *buf = nb;
    *cap = c;
    return true;
}

static void append(h264_au *a, const uint8_t *p, size_t len)
{
    if (a->is_broken)
        return;
    if (a->len + len > a->max_bytes || !reserve(&a->buf, &a->cap, a->len + len)) {
        a->is_broken = true;
        return;
    }
    memcpy(a->buf + a->len, p, len);
    a->len += len;
}

/* The start of a NAL unit whose header byte is hdr (its first bytes are
 * p[0..len), the header included). */
static void nal_begin(h264_au *a, const uint8_t *p, size_t len)
{
    unsigned type = p[0] & 0x1f;
    if (type == NAL_IDR)
        a->is_key = true;
    /* A whole SPS or PPS (never fragmented in practice) is kept for the
     * keyframes that lack it. */
    if (type == NAL_SPS && len <= H264_PARAM_MAX && !a->in_fu) {
        memcpy(a->sps, p, len);
        a->sps_len = len;
        a->has_sps_in = true;
    } else if (type == NAL_PPS && len <= H264_PARAM_MAX && !a->in_fu) {
        memcpy(a->pps, p, len);
        a->pps_len = len;
        a->has_pps_in = true;
    }
    append(a, START, sizeof START);
    append(a, p, len);
}

static void reset(h264_au *a)
{
    a->len = 0;
    a->is_open = false;
    a->is_key = false;
    a->is_broken = false;
    a->in_fu = false;
    a->has_sps_in = false;
    a->has_pps_in = false;
}

static void finish(h264_au *a, h264_au_fn fn, void *ud)
{
    if (!a->is_open)
        return;
    bool ok = !a->is_broken && a->len > 0 && !a->in_fu;
    if (!ok) {
        a->need_key = true;
    } else if (a->is_key || !a->need_key) {
        const uint8_t *au = a->buf;
        size_t len = a->len;
        bool add_sps = a->is_key && !a->has_sps_in && a->sps_len;
        bool add_pps = a->is_key && !a->has_pps_in && a->pps_len;
        if (add_sps || add_pps) {
            size_t want = len + (add_sps ? 4 + a->sps_len : 0) + (add_pps ? 4 + a->pps_len : 0);
            if (reserve(&a->out, &a->out_cap, want)) {
                size_t o = 0;
                if (add_sps) {
                    memcpy(a->out + o, START, 4);
                    memcpy(a->out + o + 4, a->sps, a->sps_len);
                    o += 4 + a->sps_len;
                }
                if (add_pps) {
                    memcpy(a->out + o, START, 4);
                    memcpy(a->out + o + 4, a->pps, a->pps_len);
                    o += 4 + a->pps_len;
                }
                memcpy(a->out + o, a->buf, len);
                au = a->out;
                len = want;
            }
        }
        if (a->is_key)
            a->need_key = false;
        fn(ud, au, len, a->ts, a->is_key);
    }
    reset(a);
}

void h264_au_push(h264_au *a, const uint8_t *pkt, const rtp_header *h, h264_au_fn fn, void *ud)
{
    const uint8_t *p = pkt + h->header_len;
    size_t len = h->payload_len;
    if (a->is_open && h->ts != a->ts)
        finish(a, fn, ud);
    if (a->has_seq && h->seq != a->next_seq) {
        /* a gap: what is being assembled misses a piece */
        if (a->is_open)
            a->is_broken = true;
        else
            a->need_key = true;
    }
    a->has_seq = true;
    a->next_seq = (uint16_t)(h->seq + 1);
    if (!a->is_open) {
        a->is_open = true;
        a->ts = h->ts;
    }
    if (len < 1) {
        a->is_broken = true;
    } else {
        unsigned type = p[0] & 0x1f;
        if (type >= 1 && type <= 23) {
            if (a->in_fu)
                a->is_broken = true;
            nal_begin(a, p, len);
        } else if (type == NAL_STAP_A) {
            size_t off = 1;
            while (off + 2 <= len) {
                size_t n = (size_t)p[off] << 8 | p[off + 1];
                off += 2;
                if (n == 0 || off + n > len) {
                    a->is_broken = true;
                    break;
                }
                nal_begin(a, p + off, n);
                off += n;
            }
            if (off != len)
                a->is_broken = true;
        } else if (type == NAL_FU_A && len >= 2) {
            bool start = p[1] & 0x80, end = p[1] & 0x40;
            uint8_t hdr = (uint8_t)((p[0] & 0xe0) | (p[1] & 0x1f));
            if (start) {
                if (a->in_fu)
                    a->is_broken = true;
                a->in_fu = false;
                if ((hdr & 0x1f) == NAL_IDR)
                    a->is_key = true;
                append(a, START, sizeof START);
                append(a, &hdr, 1);
                a->in_fu = true;
            } else if (!a->in_fu) {
                a->is_broken = true; /* its start was lost */
            }
            append(a, p + 2, len - 2);
            if (end)
                a->in_fu = false;
        } else {
            a->is_broken = true; /* STAP-B, MTAP, FU-B: not in packetization-mode 1 */
        }
    }
    if (h->marker)
        finish(a, fn, ud);
}

void h264_codec_string(const h264_au *a, char out[12])
{
    if (a->sps_len < 4) {
        out[0] = '\0';
        return;
    }
    snprintf(out, 12, "avc1.%02X%02X%02X", a->sps[1], a->sps[2], a->sps[3]);
}
