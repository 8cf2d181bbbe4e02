/* media_bench.h - onair-media-bench's parts (tests/bench/media.sh): the
 * stream's shape that the broadcaster sends (media_bench.c) and the
 * WebSocket viewers check (ws_viewers.c), the delay histogram, the clock. */
#ifndef ONAIR_MEDIA_BENCH_H
#define ONAIR_MEDIA_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UNITS_PER_S 25
#define UNIT_TS_STEP (90000 / UNITS_PER_S) /* RTP timestamp step of one access unit (90 kHz) */

uint64_t now_ns(void); /* CLOCK_MONOTONIC */

/* Delays in microseconds: 0..100 ms in 10 us steps, then one overflow bucket. */
typedef struct lat_hist {
    uint64_t b[10001];
    uint64_t n, max_us;
} lat_hist;

void lat_add(lat_hist *h, uint64_t us);
double lat_pct(const lat_hist *h, double p); /* p in [0,1]; the bucket's upper bound */

/* The H.264 stream (RFC 6184): `nunits` access units, one every 40 ms with
 * RTP timestamps ts_base + u * UNIT_TS_STEP; unit u is a keyframe (an IDR
 * slice preceded by SPS and PPS) when u % gop == 0, otherwise one non-IDR
 * slice; each slice NAL unit is unit_bytes long.  unit_sent_ns[u] is the
 * send time of unit u's last packet (its marker), 0 until it is sent: the
 * broadcaster owns the array, the WebSocket viewers read it. */
typedef struct stream_plan {
    uint32_t ts_base;
    size_t nunits, gop, unit_bytes;
    size_t key_au_len, au_len; /* a browser's Annex B access unit, keyframe or not */
    uint64_t *unit_sent_ns;
} stream_plan;

/* The WebSocket viewers (ws_viewers.c): one connection per token to the
 * media WebSocket, each on the same epoll set. */
typedef struct ws_viewers ws_viewers;

typedef struct ws_report {
    size_t viewers, playing, ok, refused;
    uint64_t units, expected, gaps, old, bad, other_kinds, min_per_viewer;
    double connect_s;
} ws_report;

/* Reads one token a line from tokens_file and gets ready to connect to
 * host:port (IPv4).  NULL with a message in err on failure. */
ws_viewers *wsv_new(const char *tokens_file, const char *hostport, const stream_plan *plan, char *err,
                    size_t errcap);
/* The descriptor to watch for input (an epoll set of the connections). */
int wsv_fd(const ws_viewers *w);
/* Connects every viewer (at most 64 handshakes at a time): upgrade, token,
 * "playing" or "waiting".  Returns when each one plays, waits or has
 * failed, or after `seconds`; those not playing or waiting by then are
 * refused (the reasons go to stderr). */
void wsv_connect_all(ws_viewers *w, double seconds);
/* Handles what is ready on the connections, without waiting. */
void wsv_poll(ws_viewers *w);
/* The figures of the run; units_sent: units the broadcaster sent. */
void wsv_report(ws_viewers *w, size_t units_sent, ws_report *r);
const lat_hist *wsv_latency(const ws_viewers *w);
void wsv_free(ws_viewers *w);

#endif
