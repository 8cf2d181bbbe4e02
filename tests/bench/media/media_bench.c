/* media_bench.c - onair-media-bench: the media side of the live stream
 * benchmark (tests/bench/media.sh).  The Jingle sessions and the WebSocket
 * tokens are obtained beforehand (media_run.py); this tool gets the
 * sessions' ports and keys and the tokens, and then
 *
 *   1. measures the bare cost on this machine of what the relay does per
 *      viewer and packet: copy + libsrtp2 protect + sendmsg (one datagram a
 *      call), and the same with sendmmsg in batches of 1024, to a sink
 *      socket on loopback that a second thread drains on another core (as
 *      the viewers' sockets are read by another process);
 *   1b. measures the physical limit of the relay's delay (--fanout-seconds,
 *      0: not at all): a thread on the other core (the server's, idle
 *      then) fans the same stream, paced the same way, out to N sockets of
 *      this tool, each copy under its own key, in sendmmsg batches of
 *      --fanout-batch (64, as the relay); the delay from each packet's
 *      due time to the kernel's receipt stamp of each copy;
 *   2. connects the WebSocket viewers (ws_viewers.c), if any, before the
 *      stream starts: each upgrades to the media WebSocket, sends its token
 *      and must hear "playing" (or "waiting") within --ws-connect-seconds;
 *   3. plays the broadcaster: an H.264 stream (RFC 6184) of 25 access units
 *      a second (RTP timestamp step 3600), each kbps/25 bytes, sent as FU-A
 *      fragments of at most --pkt bytes paced evenly over the unit's 40 ms,
 *      the marker bit on each unit's last packet; every --gop units a
 *      keyframe (an IDR slice after an SPS and a PPS, each in its own
 *      packet), protected with the broadcaster's key, to the server's media
 *      port.  The send time of every packet and of every unit's last packet
 *      is kept (CLOCK_MONOTONIC);
 *   4. plays every SRTP viewer: one UDP socket each on its negotiated port,
 *      unprotecting with the server's key for it, counting packets, gaps
 *      (by the RTP sequence number) and the delay from the packet's send to
 *      the kernel's receipt stamp (SO_TIMESTAMPNS; on loopback taken as the
 *      relay's send reaches the socket: the relay's added latency), and to
 *      this tool's read (its own scheduling too), and every WebSocket
 *      viewer: access units, missing ones, and the delay from the send of
 *      the unit's last packet to the receipt of its message.  With
 *      --server-pid, the server's CPU time over the stream.
 *
 * One thread (and the sink's during phase 1, the fan-out's in 1b), epoll.
 * Prints one JSON line.  Everything is bounded in time.
 *
 *   onair-media-bench --server 127.0.0.1:5004 --cast-port 40000 --cast-key B64 \
 *       --sessions FILE [--seconds 10] [--kbps 2000] [--pkt 1200] [--gop 50] [--bare-seconds 2] \
 *       [--fanout-seconds 6] [--fanout-batch 64] [--server-pid PID (its CPU time over the stream)] \
 *       [--suite AES_CM_128_HMAC_SHA1_80|AEAD_AES_128_GCM (the viewers' and the bare cost's)] \
 *       [--ws-viewers TOKENS --http 127.0.0.1:5280 [--ws-connect-seconds 30]]
 *
 * FILE: one line per SRTP viewer, "<port> <server key base64>"; TOKENS: one
 * media token per line, one WebSocket viewer each.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <srtp2/srtp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../proc_stat.h"
#include "media_bench.h"

#define KEY_LEN 30
#define MAX_PKT 1500
#define BATCH 1024

typedef struct viewer {
    int fd;
    srtp_t rx;
    uint64_t received, gaps, dup_or_old;
    int64_t last_seq;
} viewer;

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* The CPU time of process pid in seconds; -1 when it cannot be read. */
static double proc_cpu_s(int pid)
{
    long ticks = read_cpu_ticks(pid);
    return ticks < 0 ? -1 : (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

static void die(const char *what)
{
    fprintf(stderr, "onair-media-bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* The viewers' suite (--suite): AES-CM with HMAC-SHA1 (30-byte keys) or
 * AEAD AES-GCM (RFC 7714, 28-byte keys); the broadcaster is on AES-CM. */
static bool viewers_gcm;

static int b64key(const char *s, uint8_t key[KEY_LEN], size_t len)
{
    unsigned char out[64];
    size_t n = strlen(s), pad = (3 - len % 3) % 3;
    if (n != (len + 2) / 3 * 4 || EVP_DecodeBlock(out, (const unsigned char *)s, (int)n) != (int)(len + pad))
        return -1;
    memcpy(key, out, len);
    return 0;
}

static srtp_t srtp_ctx(const uint8_t key[KEY_LEN], bool outbound, bool gcm)
{
    srtp_policy_t p;
    memset(&p, 0, sizeof p);
    if (gcm) {
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&p.rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&p.rtcp);
    } else {
        srtp_crypto_policy_set_rtp_default(&p.rtp);
        srtp_crypto_policy_set_rtcp_default(&p.rtcp);
    }
    p.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound;
    uint8_t k[KEY_LEN];
    memcpy(k, key, KEY_LEN);
    p.key = k;
    p.window_size = 1024;
    srtp_t s;
    if (srtp_create(&s, &p) != srtp_err_status_ok) {
        fprintf(stderr, "onair-media-bench: srtp_create failed\n");
        exit(1);
    }
    return s;
}

static int udp_socket(int port, int bufsize)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        die("socket");
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsize, sizeof bufsize) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof bufsize);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0)
        die("bind");
    return fd;
}

static void rtp_header_put(uint8_t *p, uint16_t seq, uint32_t ts, bool marker)
{
    uint8_t h[12] = {0x80, (uint8_t)(96 | (marker ? 0x80 : 0)), (uint8_t)(seq >> 8), (uint8_t)seq,
                     (uint8_t)(ts >> 24), (uint8_t)(ts >> 16), (uint8_t)(ts >> 8), (uint8_t)ts,
                     0x0b, 0xe0, 0xbe, 0x01};
    memcpy(p, h, 12);
}

/* ---- the H.264 stream ----------------------------------------------------------- */

/* Constrained Baseline (profile 66, constraint flags 0xe0), level 3.1,
 * 1280x720, POC type 2, one reference frame; and its PPS (CAVLC).  The
 * server reads the codec string from the SPS's bytes 1-3; it decodes no
 * picture, so the slices are filler. */
static const uint8_t SPS[] = {0x67, 0x42, 0xe0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe4};
static const uint8_t PPS[] = {0x68, 0xce, 0x3c, 0x80};
#define NAL_IDR_HDR 0x65     /* nal_ref_idc 3, type 5 */
#define NAL_SLICE_HDR 0x41   /* nal_ref_idc 2, type 1 */
#define FU_A 28
#define UNIT_NS (1000000000ull / UNITS_PER_S)

typedef struct stream {
    stream_plan plan;
    size_t frag_max;       /* slice bytes in one FU-A packet */
    size_t nfrag;          /* packets of a slice (1: a single NAL unit packet) */
    uint8_t *slice;        /* the slice's bytes after its NAL header (filler) */
    uint64_t t0;
    size_t u, k, n_u;      /* the next packet: unit u, its packet k of n_u */
    uint64_t sent;         /* packets sent: the next one's index */
    uint64_t *pkt_sent_ns; /* per packet index: when it was sent */
    size_t pkt_cap;
} stream;

static size_t unit_packets(const stream *s, size_t u)
{
    return s->nfrag + (u % s->plan.gop == 0 ? 2 : 0);
}

static void stream_init(stream *s, double seconds, double kbps, size_t pkt, size_t gop, uint32_t ts_base)
{
    memset(s, 0, sizeof *s);
    s->plan.ts_base = ts_base;
    s->plan.gop = gop;
    s->plan.nunits = (size_t)(seconds * UNITS_PER_S + 0.5);
    if (s->plan.nunits == 0)
        s->plan.nunits = 1;
    size_t ub = (size_t)(kbps * 1000.0 / 8.0 / UNITS_PER_S + 0.5);
    s->plan.unit_bytes = ub < 2 ? 2 : ub;
    s->plan.au_len = 4 + s->plan.unit_bytes;
    s->plan.key_au_len = 4 + sizeof SPS + 4 + sizeof PPS + s->plan.au_len;
    s->frag_max = pkt - 14;
    size_t body = s->plan.unit_bytes - 1;
    s->nfrag = body + 1 <= pkt - 12 ? 1 : (body + s->frag_max - 1) / s->frag_max;
    s->slice = malloc(body);
    s->plan.unit_sent_ns = calloc(s->plan.nunits, sizeof *s->plan.unit_sent_ns);
    s->pkt_cap = s->plan.nunits * (s->nfrag + 2);
    s->pkt_sent_ns = calloc(s->pkt_cap, sizeof *s->pkt_sent_ns);
    if (!s->slice || !s->plan.unit_sent_ns || !s->pkt_sent_ns) {
        fprintf(stderr, "onair-media-bench: out of memory for a stream of %zu units\n", s->plan.nunits);
        exit(1);
    }
    for (size_t i = 0; i < body; i++) /* no zero byte: no start code or emulation in the filler */
        s->slice[i] = (uint8_t)(0x80 | ((i * 37) & 0x7f));
    s->n_u = unit_packets(s, 0);
}

static void stream_free(stream *s)
{
    free(s->slice);
    free(s->plan.unit_sent_ns);
    free(s->pkt_sent_ns);
}

static bool stream_done(const stream *s)
{
    return s->u >= s->plan.nunits;
}

/* When the next packet is due: packet k of unit u's n_u at u * 40 ms + k * 40 ms / n_u. */
static uint64_t stream_next_ns(const stream *s)
{
    return s->t0 + (uint64_t)s->u * UNIT_NS + (uint64_t)s->k * UNIT_NS / s->n_u;
}

/* Writes the next packet (in the clear) to p; returns its length. */
static size_t stream_packet(const stream *s, uint8_t *p)
{
    bool key = s->u % s->plan.gop == 0, last = s->k + 1 == s->n_u;
    rtp_header_put(p, (uint16_t)s->sent, s->plan.ts_base + (uint32_t)(s->u * UNIT_TS_STEP), last);
    size_t f = s->k;
    if (key && f == 0) {
        memcpy(p + 12, SPS, sizeof SPS);
        return 12 + sizeof SPS;
    }
    if (key && f == 1) {
        memcpy(p + 12, PPS, sizeof PPS);
        return 12 + sizeof PPS;
    }
    f -= key ? 2 : 0;
    uint8_t hdr = key ? NAL_IDR_HDR : NAL_SLICE_HDR;
    size_t body = s->plan.unit_bytes - 1;
    if (s->nfrag == 1) {
        p[12] = hdr;
        memcpy(p + 13, s->slice, body);
        return 13 + body;
    }
    size_t off = f * s->frag_max, n = body - off < s->frag_max ? body - off : s->frag_max;
    p[12] = (uint8_t)((hdr & 0xe0) | FU_A);
    p[13] = (uint8_t)((f == 0 ? 0x80 : 0) | (f + 1 == s->nfrag ? 0x40 : 0) | (hdr & 0x1f));
    memcpy(p + 14, s->slice + off, n);
    return 14 + n;
}

/* The packet just built went out at t. */
static void stream_sent(stream *s, uint64_t t)
{
    if (s->sent < s->pkt_cap)
        s->pkt_sent_ns[s->sent] = t;
    s->sent++;
    if (++s->k == s->n_u) {
        s->plan.unit_sent_ns[s->u] = t;
        s->u++;
        s->k = 0;
        s->n_u = unit_packets(s, s->u);
    }
}

/* The index of a packet received with RTP sequence number seq: the latest
 * sent one with those 16 bits (a packet is received after its send and
 * within 65,536 packets of it); -1 for one never sent. */
static int64_t packet_index(const stream *s, uint16_t seq)
{
    if (s->sent == 0)
        return -1;
    uint64_t last = s->sent - 1;
    uint64_t back = (uint16_t)((uint16_t)last - seq);
    return back <= last ? (int64_t)(last - back) : -1;
}

/* An RTP packet of `size` bytes for the bare measurement (its payload is
 * never parsed). */
static size_t make_rtp(uint8_t *p, size_t size, uint16_t seq, uint32_t ts)
{
    rtp_header_put(p, seq, ts, false);
    p[12] = 0x41;
    memset(p + 13, 0xab, size - 13);
    return size;
}

void lat_add(lat_hist *h, uint64_t us)
{
    h->n++;
    if (us > h->max_us)
        h->max_us = us;
    size_t i = us / 10;
    h->b[i > 10000 ? 10000 : i]++;
}

double lat_pct(const lat_hist *h, double p)
{
    uint64_t want = (uint64_t)((double)h->n * p + 0.5), seen = 0;
    if (want == 0)
        want = 1;
    for (size_t i = 0; i <= 10000; i++) {
        seen += h->b[i];
        if (seen >= want)
            return (double)(i * 10 + 10);
    }
    return (double)h->max_us;
}

/* Phase 1's sink: reads and discards until told to stop. */
typedef struct sink {
    int fd;
    atomic_bool stop;
} sink;

static void *drain(void *arg)
{
    sink *k = arg;
    uint8_t buf[2048];
    while (!atomic_load(&k->stop))
        (void)recv(k->fd, buf, sizeof buf, 0); /* SO_RCVTIMEO bounds each wait */
    return NULL;
}

/* Starts fn(arg) on another core than this one when there is one. */
static void start_elsewhere(pthread_t *t, void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    int here = sched_getcpu();
    cpu_set_t others;
    CPU_ZERO(&others);
    for (int c = 0; c < CPU_SETSIZE && here >= 0; c++) {
        if (c != here)
            CPU_SET(c, &others);
    }
    if (CPU_COUNT(&others) > 0)
        pthread_attr_setaffinity_np(&attr, sizeof others, &others);
    if (pthread_create(t, &attr, fn, arg) != 0) {
        pthread_attr_destroy(&attr);
        pthread_attr_init(&attr);
        if (pthread_create(t, &attr, fn, arg) != 0)
            die("pthread_create");
    }
    pthread_attr_destroy(&attr);
}

/* The sink's thread runs on another core than this one when there is one. */
static void start_drain(sink *k, pthread_t *t)
{
    struct timeval tv = {0, 100000};
    fcntl(k->fd, F_SETFL, fcntl(k->fd, F_GETFL) & ~O_NONBLOCK);
    setsockopt(k->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    start_elsewhere(t, drain, k);
}

/* Phase 1: the bare cost of copy + protect + send, per datagram, with
 * nctx contexts used in turn (1: one key; N: one key per viewer, as the
 * relay does). */
static void bare(double seconds, size_t pkt, size_t nctx, double *pps_sendmsg, double *pps_sendmmsg)
{
    uint8_t key[KEY_LEN];
    srtp_t *ctxs = calloc(nctx, sizeof *ctxs);
    for (size_t c = 0; c < nctx; c++) {
        for (int i = 0; i < KEY_LEN; i++)
            key[i] = (uint8_t)(i * 7 + 1 + c);
        ctxs[c] = srtp_ctx(key, true, viewers_gcm);
    }
    size_t turn = 0;
    sink sk = {.fd = udp_socket(0, 64 << 20)};
    atomic_init(&sk.stop, false);
    struct sockaddr_in to;
    socklen_t tl = sizeof to;
    getsockname(sk.fd, (struct sockaddr *)&to, &tl);
    pthread_t drainer;
    start_drain(&sk, &drainer);
    int out = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    uint8_t src[MAX_PKT], buf[MAX_PKT + 64];
    static uint8_t slots[BATCH][MAX_PKT + 64];
    static struct mmsghdr msgs[BATCH];
    static struct iovec iov[BATCH];
    for (int mode = 0; mode < 2; mode++) {
        uint64_t n = 0, t0 = now_ns(), end = t0 + (uint64_t)(seconds * 1e9);
        uint16_t seq = 0;
        while (now_ns() < end) {
            if (mode == 0) {
                for (int k = 0; k < 256; k++, turn++) {
                    /* context turn % nctx, its next index turn / nctx */
                    make_rtp(src, pkt, (uint16_t)(turn / nctx), seq);
                    memcpy(buf, src, pkt);
                    int len = (int)pkt;
                    srtp_protect(ctxs[turn % nctx], buf, &len);
                    if (sendto(out, buf, (size_t)len, 0, (struct sockaddr *)&to, sizeof to) > 0)
                        n++;
                    seq++;
                }
            } else {
                make_rtp(src, pkt, seq, seq);
                for (int k = 0; k < BATCH; k++, turn++) {
                    memcpy(slots[k], src, pkt);
                    slots[k][3] = (uint8_t)(turn / nctx); /* the next index of its context */
                    slots[k][2] = (uint8_t)((turn / nctx) >> 8);
                    int len = (int)pkt;
                    srtp_protect(ctxs[turn % nctx], slots[k], &len);
                    iov[k] = (struct iovec){slots[k], (size_t)len};
                    memset(&msgs[k], 0, sizeof msgs[k]);
                    msgs[k].msg_hdr.msg_name = &to;
                    msgs[k].msg_hdr.msg_namelen = sizeof to;
                    msgs[k].msg_hdr.msg_iov = &iov[k];
                    msgs[k].msg_hdr.msg_iovlen = 1;
                }
                seq++;
                int done = 0;
                while (done < BATCH) {
                    int r = sendmmsg(out, msgs + done, (unsigned)(BATCH - done), 0);
                    if (r <= 0)
                        break;
                    done += r;
                }
                n += (uint64_t)done;
            }
        }
        double el = (double)(now_ns() - t0) / 1e9;
        if (mode == 0)
            *pps_sendmsg = (double)n / el;
        else
            *pps_sendmmsg = (double)n / el;
    }
    atomic_store(&sk.stop, true);
    pthread_join(drainer, NULL);
    close(out);
    close(sk.fd);
    for (size_t c = 0; c < nctx; c++)
        srtp_dealloc(ctxs[c]);
    free(ctxs);
}

/* The SRTP viewers' receipts.  lat: from the packet's send to the kernel's
 * receipt stamp (SO_TIMESTAMPNS: on loopback taken when the relay's send
 * reaches the viewer's socket, so the relay's added latency alone);
 * tool_lat: to this tool's read, its own scheduling included. */
typedef struct udp_rx {
    uint8_t buf[16][2048];
    uint8_t ctl[16][CMSG_SPACE(sizeof(struct timespec))];
    struct mmsghdr m[16];
    struct iovec iov[16];
    lat_hist lat, tool_lat;
    uint64_t rtcp, bad, unstamped;
} udp_rx;

/* The kernel's receipt stamp of message k (CLOCK_REALTIME), as
 * CLOCK_MONOTONIC by the offset between the two clocks now; 0 if none. */
static uint64_t rx_stamp(udp_rx *rx, int k, int64_t real_minus_mono)
{
    struct msghdr *h = &rx->m[k].msg_hdr;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            int64_t real = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
            return (uint64_t)(real - real_minus_mono);
        }
    }
    return 0;
}

/* Reads up to 16 datagrams of fd with their receipt stamps, without
 * waiting; the number read (0 or less: none).  *t: now (CLOCK_MONOTONIC);
 * *off: CLOCK_REALTIME minus CLOCK_MONOTONIC now, for rx_stamp. */
static int rx_read(udp_rx *rx, int fd, uint64_t *t, int64_t *off)
{
    for (int k = 0; k < 16; k++) {
        rx->m[k].msg_hdr.msg_control = rx->ctl[k];
        rx->m[k].msg_hdr.msg_controllen = sizeof rx->ctl[k];
    }
    int r = recvmmsg(fd, rx->m, 16, MSG_DONTWAIT, NULL);
    if (r > 0) {
        struct timespec real;
        clock_gettime(CLOCK_REALTIME, &real);
        *t = now_ns();
        *off = (int64_t)real.tv_sec * 1000000000 + real.tv_nsec - (int64_t)*t;
    }
    return r;
}

static void udp_input(udp_rx *rx, viewer *v, const stream *s)
{
    int r;
    uint64_t t;
    int64_t off;
    while ((r = rx_read(rx, v->fd, &t, &off)) > 0) {
        for (int k = 0; k < r; k++) {
            uint8_t *d = rx->buf[k];
            int len = (int)rx->m[k].msg_len;
            if (len >= 2 && d[1] >= 192 && d[1] <= 223) {
                rx->rtcp++;
                continue;
            }
            if (srtp_unprotect(v->rx, d, &len) != srtp_err_status_ok || len < 13) {
                rx->bad++;
                continue;
            }
            int64_t i = packet_index(s, (uint16_t)(d[2] << 8 | d[3]));
            if (i < 0 || (uint64_t)i >= s->pkt_cap) {
                rx->bad++;
                continue;
            }
            v->received++;
            if (v->last_seq >= 0 && i > v->last_seq + 1)
                v->gaps += (uint64_t)(i - v->last_seq - 1);
            if (i <= v->last_seq)
                v->dup_or_old++;
            else
                v->last_seq = i;
            uint64_t sent = s->pkt_sent_ns[i], stamp = rx_stamp(rx, k, off);
            if (stamp == 0) {
                rx->unstamped++;
                stamp = t;
            }
            lat_add(&rx->lat, stamp > sent ? (stamp - sent) / 1000 : 0);
            lat_add(&rx->tool_lat, t > sent ? (t - sent) / 1000 : 0);
        }
    }
}

/* Phase 1b: the physical limit of the relay's job, paced as the live is.
 * A thread on another core (the server's) plays a relay with nothing but
 * the work: at each packet's due time in the same stream (stream_next_ns),
 * it copies the packet once per viewer, protects it with that viewer's own
 * context and sends the copies with sendmmsg in batches of f->batch, to N
 * sockets of this thread; the delay is from the due time to each copy's
 * kernel receipt stamp, as the relay's.  No event loop, no Jingle, no
 * session lookup: what is left is libsrtp2 and the kernel.  Sequence
 * numbers are packet indexes (the phase is at most 60 s: below 65,536). */
typedef struct fanout {
    size_t n, batch;
    srtp_t *ctxs;
    struct sockaddr_in *to;
    stream st;
    _Atomic uint64_t *due; /* per packet index, stored before its copies go */
    atomic_bool done;
    double cpu_s, elapsed_s;
    uint64_t sent, send_errors;
} fanout;

static void *fanout_send(void *arg)
{
    fanout *f = arg;
    int out = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int big = 64 << 20;
    setsockopt(out, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
    static uint8_t slots[BATCH][MAX_PKT + 64];
    static struct mmsghdr msgs[BATCH];
    static struct iovec iov[BATCH];
    uint8_t p[MAX_PKT + 64];
    struct timespec c0, c1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    f->st.t0 = now_ns() + 100000000ull;
    while (!stream_done(&f->st)) {
        uint64_t due = stream_next_ns(&f->st);
        struct timespec ts = {(time_t)(due / 1000000000ull), (long)(due % 1000000000ull)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
        size_t len = stream_packet(&f->st, p);
        uint64_t idx = f->st.sent; /* its sequence number's 16 bits */
        atomic_store_explicit(&f->due[idx], due, memory_order_release);
        size_t k = 0;
        for (size_t v = 0; v < f->n; v++) {
            memcpy(slots[k], p, len);
            int l = (int)len;
            if (srtp_protect(f->ctxs[v], slots[k], &l) != srtp_err_status_ok)
                continue;
            iov[k] = (struct iovec){slots[k], (size_t)l};
            memset(&msgs[k], 0, sizeof msgs[k]);
            msgs[k].msg_hdr.msg_name = &f->to[v];
            msgs[k].msg_hdr.msg_namelen = sizeof f->to[v];
            msgs[k].msg_hdr.msg_iov = &iov[k];
            msgs[k].msg_hdr.msg_iovlen = 1;
            if (++k == f->batch || v + 1 == f->n) {
                size_t done = 0;
                while (done < k) {
                    int r = sendmmsg(out, msgs + done, (unsigned)(k - done), 0);
                    if (r <= 0) {
                        f->send_errors++;
                        done++;
                        continue;
                    }
                    done += (size_t)r;
                    f->sent += (uint64_t)r;
                }
                k = 0;
            }
        }
        stream_sent(&f->st, due);
    }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    f->cpu_s = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
    f->elapsed_s = (double)(now_ns() - f->st.t0) / 1e9;
    close(out);
    atomic_store(&f->done, true);
    return NULL;
}

typedef struct fanout_result {
    size_t viewers;
    uint64_t expected, received;
    lat_hist lat;
    double cpu_share;
} fanout_result;

static void bare_fanout(double seconds, double kbps, size_t pkt, size_t gop, size_t n, size_t batch,
                        fanout_result *res)
{
    static fanout f;
    memset(&f, 0, sizeof f);
    f.n = n;
    f.batch = batch;
    f.ctxs = calloc(n, sizeof *f.ctxs);
    f.to = calloc(n, sizeof *f.to);
    int *fds = calloc(n, sizeof *fds);
    stream_init(&f.st, seconds, kbps, pkt, gop, 0x20000000u);
    f.due = calloc(f.st.pkt_cap, sizeof *f.due);
    if (!f.ctxs || !f.to || !fds || !f.due || f.st.pkt_cap > 65536) {
        fprintf(stderr, "onair-media-bench: the paced fan-out needs fewer than 65,536 packets\n");
        exit(1);
    }
    int ep = epoll_create1(0);
    for (size_t v = 0; v < n; v++) {
        uint8_t key[KEY_LEN];
        for (int i = 0; i < KEY_LEN; i++)
            key[i] = (uint8_t)(i * 5 + 3 + v);
        f.ctxs[v] = srtp_ctx(key, true, viewers_gcm);
        fds[v] = udp_socket(0, 1 << 20);
        int on = 1;
        if (setsockopt(fds[v], SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) != 0)
            die("SO_TIMESTAMPNS");
        socklen_t tl = sizeof f.to[v];
        getsockname(fds[v], (struct sockaddr *)&f.to[v], &tl);
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = v};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[v], &ev);
    }
    atomic_init(&f.done, false);
    pthread_t sender;
    start_elsewhere(&sender, fanout_send, &f);

    static udp_rx rx;
    memset(&rx, 0, sizeof rx);
    for (int k = 0; k < 16; k++) {
        rx.iov[k] = (struct iovec){rx.buf[k], sizeof rx.buf[k]};
        rx.m[k].msg_hdr.msg_iov = &rx.iov[k];
        rx.m[k].msg_hdr.msg_iovlen = 1;
    }
    uint64_t received = 0, t_end = UINT64_MAX, limit = now_ns() + (uint64_t)((seconds + 30) * 1e9);
    struct epoll_event evs[256];
    for (;;) {
        uint64_t now = now_ns();
        if (t_end == UINT64_MAX && atomic_load(&f.done))
            t_end = now + 1000000000ull; /* 1 s to drain */
        if (now >= t_end || now >= limit)
            break;
        int ne = epoll_wait(ep, evs, 256, 100);
        for (int e = 0; e < ne; e++) {
            int fd = fds[evs[e].data.u64], r;
            uint64_t t;
            int64_t off;
            while ((r = rx_read(&rx, fd, &t, &off)) > 0) {
                for (int k = 0; k < r; k++) {
                    const uint8_t *d = rx.buf[k];
                    if (rx.m[k].msg_len < 12)
                        continue;
                    uint64_t idx = (uint64_t)(d[2] << 8 | d[3]);
                    uint64_t due = idx < f.st.pkt_cap ? atomic_load_explicit(&f.due[idx], memory_order_acquire) : 0;
                    if (due == 0)
                        continue;
                    uint64_t stamp = rx_stamp(&rx, k, off);
                    if (stamp == 0)
                        stamp = t;
                    received++;
                    lat_add(&rx.lat, stamp > due ? (stamp - due) / 1000 : 0);
                }
            }
        }
    }
    pthread_join(sender, NULL);
    res->viewers = n;
    res->expected = (uint64_t)f.st.sent * n;
    res->received = received;
    res->lat = rx.lat;
    res->cpu_share = f.elapsed_s > 0 ? f.cpu_s / f.elapsed_s : 0;
    for (size_t v = 0; v < n; v++) {
        close(fds[v]);
        srtp_dealloc(f.ctxs[v]);
    }
    close(ep);
    free(fds);
    free(f.ctxs);
    free(f.to);
    free((void *)f.due);
    stream_free(&f.st);
}

#define WS_TAG UINT64_MAX /* the epoll event of the WebSocket viewers' set */

int main(int argc, char **argv)
{
    const char *server = "127.0.0.1:5004", *sessions = NULL, *cast_key_b64 = NULL, *ws_tokens = NULL,
               *http = NULL;
    int cast_port = 0, server_pid = 0;
    double seconds = 10, bare_seconds = 2, fanout_seconds = 6, kbps = 2000, ws_connect_s = 30;
    size_t pkt = 1200, gop = 50, fanout_batch = 64;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "onair-media-bench: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--server") == 0)
            server = v;
        else if (strcmp(a, "--sessions") == 0)
            sessions = v;
        else if (strcmp(a, "--cast-key") == 0)
            cast_key_b64 = v;
        else if (strcmp(a, "--cast-port") == 0)
            cast_port = atoi(v);
        else if (strcmp(a, "--server-pid") == 0)
            server_pid = atoi(v);
        else if (strcmp(a, "--seconds") == 0)
            seconds = atof(v);
        else if (strcmp(a, "--bare-seconds") == 0)
            bare_seconds = atof(v);
        else if (strcmp(a, "--fanout-seconds") == 0)
            fanout_seconds = atof(v);
        else if (strcmp(a, "--fanout-batch") == 0)
            fanout_batch = (size_t)atoi(v);
        else if (strcmp(a, "--kbps") == 0)
            kbps = atof(v);
        else if (strcmp(a, "--pkt") == 0)
            pkt = (size_t)atoi(v);
        else if (strcmp(a, "--gop") == 0)
            gop = (size_t)atoi(v);
        else if (strcmp(a, "--ws-viewers") == 0)
            ws_tokens = v;
        else if (strcmp(a, "--http") == 0)
            http = v;
        else if (strcmp(a, "--ws-connect-seconds") == 0)
            ws_connect_s = atof(v);
        else if (strcmp(a, "--suite") == 0 && (strcmp(v, "AEAD_AES_128_GCM") == 0 ||
                                                strcmp(v, "AES_CM_128_HMAC_SHA1_80") == 0))
            viewers_gcm = strcmp(v, "AEAD_AES_128_GCM") == 0;
        else {
            fprintf(stderr, "onair-media-bench: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (!sessions || !cast_key_b64 || !cast_port || pkt < 64 || pkt > MAX_PKT || seconds <= 0 ||
        seconds > 3600 || fanout_seconds < 0 || fanout_seconds > 60 || fanout_batch < 1 || fanout_batch > BATCH ||
        kbps < 1 || kbps > 1000000 || gop < 1 || !ws_tokens != !http || ws_connect_s <= 0) {
        fprintf(stderr, "usage: onair-media-bench --server H:P --cast-port N --cast-key B64 --sessions FILE "
                        "[--seconds S (to 3600)] [--kbps K] [--pkt BYTES (64-%d)] [--gop UNITS] [--bare-seconds S] "
                        "[--fanout-seconds S (to 60)] [--fanout-batch N (to %d)] [--server-pid PID] "
                        "[--ws-viewers TOKENS --http H:P [--ws-connect-seconds S]] "
                        "[--suite AES_CM_128_HMAC_SHA1_80|AEAD_AES_128_GCM]\n",
                MAX_PKT, BATCH);
        return 2;
    }
    if (srtp_init() != srtp_err_status_ok)
        return 1;
    struct rlimit rl = {65536, 65536};
    setrlimit(RLIMIT_NOFILE, &rl);

    static stream st;
    stream_init(&st, seconds, kbps, pkt, gop, 0x10000000u);

    /* the SRTP viewers */
    FILE *f = fopen(sessions, "r");
    if (!f)
        die(sessions);
    size_t nv = 0, cap = 1024;
    viewer *vs = calloc(cap, sizeof *vs);
    int port;
    char kb[128];
    while (fscanf(f, "%d %127s", &port, kb) == 2) {
        if (nv == cap) {
            cap *= 2;
            vs = realloc(vs, cap * sizeof *vs);
        }
        uint8_t key[KEY_LEN];
        if (b64key(kb, key, viewers_gcm ? 28 : KEY_LEN) != 0) {
            fprintf(stderr, "onair-media-bench: bad key for port %d\n", port);
            return 1;
        }
        memset(&vs[nv], 0, sizeof vs[nv]);
        vs[nv].fd = udp_socket(port, 1 << 20);
        int on = 1;
        if (setsockopt(vs[nv].fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) != 0)
            die("SO_TIMESTAMPNS");
        vs[nv].rx = srtp_ctx(key, false, viewers_gcm);
        vs[nv].last_seq = -1;
        nv++;
    }
    fclose(f);
    /* the WebSocket viewers */
    ws_viewers *wv = NULL;
    if (ws_tokens) {
        char err[300];
        wv = wsv_new(ws_tokens, http, &st.plan, err, sizeof err);
        if (!wv) {
            fprintf(stderr, "onair-media-bench: %s\n", err);
            return 2;
        }
    }
    double bare_pps = 0, bare_mmsg_pps = 0, bare_n_pps = 0, bare_n_mmsg_pps = 0;
    if (bare_seconds > 0) {
        bare(bare_seconds, pkt, 1, &bare_pps, &bare_mmsg_pps);
        bare(bare_seconds, pkt, nv ? nv : 1, &bare_n_pps, &bare_n_mmsg_pps);
    }
    static fanout_result fo;
    if (fanout_seconds > 0 && nv > 0)
        bare_fanout(fanout_seconds, kbps, pkt, gop, nv, fanout_batch, &fo);
    if (wv)
        wsv_connect_all(wv, ws_connect_s);
    int ep = epoll_create1(0);
    for (size_t i = 0; i < nv; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, vs[i].fd, &ev);
    }
    if (wv) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WS_TAG};
        epoll_ctl(ep, EPOLL_CTL_ADD, wsv_fd(wv), &ev);
    }
    /* the broadcaster */
    uint8_t ck[KEY_LEN];
    if (b64key(cast_key_b64, ck, KEY_LEN) != 0) {
        fprintf(stderr, "onair-media-bench: bad --cast-key\n");
        return 2;
    }
    srtp_t tx = srtp_ctx(ck, true, false);
    int cfd = udp_socket(cast_port, 1 << 20);
    struct sockaddr_in srv = {.sin_family = AF_INET};
    char host[64];
    int sport;
    if (sscanf(server, "%63[^:]:%d", host, &sport) != 2 || inet_pton(AF_INET, host, &srv.sin_addr) != 1) {
        fprintf(stderr, "onair-media-bench: --server HOST:PORT\n");
        return 2;
    }
    srv.sin_port = htons((uint16_t)sport);

    static udp_rx rx;
    for (int k = 0; k < 16; k++) {
        rx.iov[k] = (struct iovec){rx.buf[k], sizeof rx.buf[k]};
        rx.m[k].msg_hdr.msg_iov = &rx.iov[k];
        rx.m[k].msg_hdr.msg_iovlen = 1;
    }
    uint64_t send_errors = 0, t_last_send = 0;
    static lat_hist cast_late; /* the broadcaster's packets: from their due time to their send */
    st.t0 = now_ns();
    uint64_t t_end = UINT64_MAX;
    double cpu0 = cpu_s(), srv_cpu0 = server_pid ? proc_cpu_s(server_pid) : -1;
    uint8_t p[MAX_PKT + 64];
    struct epoll_event evs[256];
    for (;;) {
        uint64_t now = now_ns();
        while (!stream_done(&st) && now >= stream_next_ns(&st)) {
            int n = (int)stream_packet(&st, p);
            srtp_protect(tx, p, &n);
            uint64_t t = now_ns(), due = stream_next_ns(&st);
            lat_add(&cast_late, t > due ? (t - due) / 1000 : 0);
            if (sendto(cfd, p, (size_t)n, 0, (struct sockaddr *)&srv, sizeof srv) < 0)
                send_errors++;
            stream_sent(&st, t);
            t_last_send = t;
        }
        if (stream_done(&st) && t_end == UINT64_MAX)
            t_end = t_last_send + 1000000000ull; /* 1 s to drain */
        if (now >= t_end)
            break;
        uint64_t wake = stream_done(&st) ? t_end : stream_next_ns(&st);
        int timeout_ms = wake > now ? (int)((wake - now) / 1000000) : 0;
        int n = epoll_wait(ep, evs, 256, timeout_ms);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == WS_TAG)
                wsv_poll(wv);
            else
                udp_input(&rx, &vs[evs[i].data.u64], &st);
        }
    }
    double cpu = cpu_s() - cpu0, srv_cpu1 = server_pid ? proc_cpu_s(server_pid) : -1;
    double stream_s = (double)(now_ns() - st.t0) / 1e9;
    uint64_t received = 0, gaps = 0, old = 0, min_rx = UINT64_MAX;
    for (size_t i = 0; i < nv; i++) {
        received += vs[i].received;
        gaps += vs[i].gaps;
        old += vs[i].dup_or_old;
        if (vs[i].received < min_rx)
            min_rx = vs[i].received;
    }
    uint64_t sent = st.sent, expected = sent * nv;
    printf("{\"viewers\": %zu, \"kbps\": %.0f, \"pkt\": %zu, \"seconds\": %.1f, \"units\": %zu, \"gop\": %zu, "
           "\"unit_bytes\": %zu, \"sent\": %llu, \"send_errors\": %llu, \"expected\": %llu, "
           "\"received\": %llu, \"lost\": %lld, \"gaps\": %llu, \"out_of_order\": %llu, \"unauthentic\": %llu, "
           "\"rtcp\": %llu, \"min_per_viewer\": %llu, \"lat_p50_us\": %.0f, \"lat_p99_us\": %.0f, "
           "\"lat_p999_us\": %.0f, \"lat_max_us\": %llu, \"unstamped\": %llu, \"tool_lat_p50_us\": %.0f, "
           "\"tool_lat_p99_us\": %.0f, ",
           nv, kbps, pkt, seconds, st.u, gop, st.plan.unit_bytes, (unsigned long long)sent,
           (unsigned long long)send_errors, (unsigned long long)expected, (unsigned long long)received,
           (long long)expected - (long long)received, (unsigned long long)gaps, (unsigned long long)old,
           (unsigned long long)rx.bad, (unsigned long long)rx.rtcp, (unsigned long long)(nv ? min_rx : 0),
           lat_pct(&rx.lat, 0.5), lat_pct(&rx.lat, 0.99), lat_pct(&rx.lat, 0.999), (unsigned long long)rx.lat.max_us,
           (unsigned long long)rx.unstamped, lat_pct(&rx.tool_lat, 0.5), lat_pct(&rx.tool_lat, 0.99));
    ws_report wr = {0};
    static const lat_hist no_lat;
    const lat_hist *wl = &no_lat;
    if (wv) {
        wsv_report(wv, st.u, &wr);
        wl = wsv_latency(wv);
    }
    printf("\"ws_viewers\": %zu, \"ws_viewers_ok\": %zu, \"ws_refused\": %zu, \"ws_connect_s\": %.2f, "
           "\"ws_units\": %llu, \"ws_expected\": %llu, \"ws_lost\": %lld, \"ws_gaps\": %llu, "
           "\"ws_out_of_order\": %llu, \"ws_bad\": %llu, \"ws_other_kinds\": %llu, \"ws_min_per_viewer\": %llu, "
           "\"ws_lat_p50_us\": %.0f, \"ws_lat_p99_us\": %.0f, \"ws_lat_max_us\": %llu, ",
           wr.viewers, wr.ok, wr.refused, wr.connect_s, (unsigned long long)wr.units, (unsigned long long)wr.expected,
           (long long)wr.expected - (long long)wr.units, (unsigned long long)wr.gaps, (unsigned long long)wr.old,
           (unsigned long long)wr.bad, (unsigned long long)wr.other_kinds, (unsigned long long)wr.min_per_viewer,
           wl->n ? lat_pct(wl, 0.5) : 0.0, wl->n ? lat_pct(wl, 0.99) : 0.0, (unsigned long long)wl->max_us);
    printf("\"fanout_viewers\": %zu, \"fanout_expected\": %llu, \"fanout_lost\": %lld, \"fanout_p50_us\": %.0f, "
           "\"fanout_p99_us\": %.0f, \"fanout_max_us\": %llu, \"fanout_core_share\": %.2f, ",
           fo.viewers, (unsigned long long)fo.expected, (long long)fo.expected - (long long)fo.received,
           fo.lat.n ? lat_pct(&fo.lat, 0.5) : 0.0, fo.lat.n ? lat_pct(&fo.lat, 0.99) : 0.0,
           (unsigned long long)fo.lat.max_us, fo.cpu_share);
    printf("\"cast_late_p50_us\": %.0f, \"cast_late_p99_us\": %.0f, \"cast_late_max_us\": %llu, ",
           lat_pct(&cast_late, 0.5), lat_pct(&cast_late, 0.99), (unsigned long long)cast_late.max_us);
    printf("\"stream_s\": %.2f, \"server_stream_cpu_s\": %.2f, ", stream_s,
           srv_cpu0 >= 0 && srv_cpu1 >= 0 ? srv_cpu1 - srv_cpu0 : -1.0);
    printf("\"tool_cpu_s\": %.2f, \"bare_protect_sendmsg_pps\": %.0f, \"bare_protect_sendmmsg_pps\": %.0f, "
           "\"bare_n_keys_sendmsg_pps\": %.0f, \"bare_n_keys_sendmmsg_pps\": %.0f}\n",
           cpu, bare_pps, bare_mmsg_pps, bare_n_pps, bare_n_mmsg_pps);
    for (size_t i = 0; i < nv; i++) {
        close(vs[i].fd);
        srtp_dealloc(vs[i].rx);
    }
    free(vs);
    wsv_free(wv);
    stream_free(&st);
    srtp_dealloc(tx);
    close(cfd);
    close(ep);
    srtp_shutdown();
    return 0;
}
