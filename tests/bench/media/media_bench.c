/* media_bench.c - onair-media-bench: the UDP side of the live stream
 * benchmark (tests/bench/media.sh).  The Jingle sessions are negotiated
 * beforehand (media_run.py); this tool gets their ports and keys and then
 *
 *   1. measures the bare cost on this machine of what the relay does per
 *      viewer and packet: copy + libsrtp2 protect + sendmsg (one datagram a
 *      call), and the same with sendmmsg in batches of 1024, to a sink
 *      socket on loopback that a second thread drains on another core (as
 *      the viewers' sockets are read by another process);
 *   2. plays the broadcaster: RTP of `pkt` bytes at `kbps`, protected with
 *      the broadcaster's key, to the server's media port, each payload
 *      carrying its sequence number and send time (CLOCK_MONOTONIC);
 *   3. plays every viewer: one UDP socket each on its negotiated port,
 *      unprotecting with the server's key for it, counting packets, gaps
 *      and the delay from send to receipt (the relay's added latency plus
 *      this tool's own scheduling).
 *
 * One thread (and the sink's during phase 1), epoll.  Prints one JSON line.  Everything is bounded in time.
 *
 *   onair-media-bench --server 127.0.0.1:5004 --cast-port 40000 --cast-key B64 \
 *       --sessions FILE [--seconds 10] [--kbps 2000] [--pkt 1200] [--bare-seconds 2]
 *
 * FILE: one line per viewer, "<port> <server key base64>".
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

#define KEY_LEN 30
#define MAX_PKT 1500
#define BATCH 1024

typedef struct viewer {
    int fd;
    srtp_t rx;
    uint64_t received, gaps, dup_or_old;
    int64_t last_seq;
} viewer;

typedef struct lat_hist { /* microseconds, 0..100 ms in 10 us steps, then overflow */
    uint64_t b[10001];
    uint64_t n, max_us;
} lat_hist;

static uint64_t now_ns(void)
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

static void die(const char *what)
{
    fprintf(stderr, "onair-media-bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int b64key(const char *s, uint8_t key[KEY_LEN])
{
    unsigned char out[64];
    size_t n = strlen(s);
    if (n != 40 || EVP_DecodeBlock(out, (const unsigned char *)s, (int)n) != KEY_LEN)
        return -1;
    memcpy(key, out, KEY_LEN);
    return 0;
}

static srtp_t srtp_ctx(const uint8_t key[KEY_LEN], bool outbound)
{
    srtp_policy_t p;
    memset(&p, 0, sizeof p);
    srtp_crypto_policy_set_rtp_default(&p.rtp);
    srtp_crypto_policy_set_rtcp_default(&p.rtcp);
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

static size_t make_rtp(uint8_t *p, size_t size, uint16_t seq, uint32_t ts, uint64_t seq64, uint64_t t_ns)
{
    uint8_t h[12] = {0x80, 96, (uint8_t)(seq >> 8), (uint8_t)seq, (uint8_t)(ts >> 24), (uint8_t)(ts >> 16),
                     (uint8_t)(ts >> 8), (uint8_t)ts, 0x0b, 0xe0, 0xbe, 0x01};
    memcpy(p, h, 12);
    p[12] = 0x41; /* an H.264 non-IDR slice: nothing for the keyframe group */
    memcpy(p + 13, &seq64, 8);
    memcpy(p + 21, &t_ns, 8);
    memset(p + 29, 0xab, size - 29);
    return size;
}

static void lat_add(lat_hist *h, uint64_t us)
{
    h->n++;
    if (us > h->max_us)
        h->max_us = us;
    size_t i = us / 10;
    h->b[i > 10000 ? 10000 : i]++;
}

static double lat_pct(const lat_hist *h, double p)
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

/* The sink's thread runs on another core than this one when there is one. */
static void start_drain(sink *k, pthread_t *t)
{
    struct timeval tv = {0, 100000};
    fcntl(k->fd, F_SETFL, fcntl(k->fd, F_GETFL) & ~O_NONBLOCK);
    setsockopt(k->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
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
    if (pthread_create(t, &attr, drain, k) != 0) {
        pthread_attr_destroy(&attr);
        pthread_attr_init(&attr);
        pthread_create(t, &attr, drain, k);
    }
    pthread_attr_destroy(&attr);
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
        ctxs[c] = srtp_ctx(key, true);
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
                    make_rtp(src, pkt, (uint16_t)(turn / nctx), seq, seq, 0);
                    memcpy(buf, src, pkt);
                    int len = (int)pkt;
                    srtp_protect(ctxs[turn % nctx], buf, &len);
                    if (sendto(out, buf, (size_t)len, 0, (struct sockaddr *)&to, sizeof to) > 0)
                        n++;
                    seq++;
                }
            } else {
                make_rtp(src, pkt, seq, seq, seq, 0);
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

int main(int argc, char **argv)
{
    const char *server = "127.0.0.1:5004", *sessions = NULL, *cast_key_b64 = NULL;
    int cast_port = 0;
    double seconds = 10, bare_seconds = 2, kbps = 2000;
    size_t pkt = 1200;
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
        else if (strcmp(a, "--seconds") == 0)
            seconds = atof(v);
        else if (strcmp(a, "--bare-seconds") == 0)
            bare_seconds = atof(v);
        else if (strcmp(a, "--kbps") == 0)
            kbps = atof(v);
        else if (strcmp(a, "--pkt") == 0)
            pkt = (size_t)atoi(v);
        else {
            fprintf(stderr, "onair-media-bench: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (!sessions || !cast_key_b64 || !cast_port || pkt < 64 || pkt > MAX_PKT || seconds <= 0) {
        fprintf(stderr, "usage: onair-media-bench --server H:P --cast-port N --cast-key B64 --sessions FILE "
                        "[--seconds S] [--kbps K] [--pkt BYTES] [--bare-seconds S]\n");
        return 2;
    }
    if (srtp_init() != srtp_err_status_ok)
        return 1;
    struct rlimit rl = {65536, 65536};
    setrlimit(RLIMIT_NOFILE, &rl);

    /* viewers */
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
        if (b64key(kb, key) != 0) {
            fprintf(stderr, "onair-media-bench: bad key for port %d\n", port);
            return 1;
        }
        memset(&vs[nv], 0, sizeof vs[nv]);
        vs[nv].fd = udp_socket(port, 1 << 20);
        vs[nv].rx = srtp_ctx(key, false);
        vs[nv].last_seq = -1;
        nv++;
    }
    fclose(f);
    double bare_pps = 0, bare_mmsg_pps = 0, bare_n_pps = 0, bare_n_mmsg_pps = 0;
    if (bare_seconds > 0) {
        bare(bare_seconds, pkt, 1, &bare_pps, &bare_mmsg_pps);
        bare(bare_seconds, pkt, nv ? nv : 1, &bare_n_pps, &bare_n_mmsg_pps);
    }
    int ep = epoll_create1(0);
    for (size_t i = 0; i < nv; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, vs[i].fd, &ev);
    }
    /* the broadcaster */
    uint8_t ck[KEY_LEN];
    if (b64key(cast_key_b64, ck) != 0) {
        fprintf(stderr, "onair-media-bench: bad --cast-key\n");
        return 2;
    }
    srtp_t tx = srtp_ctx(ck, true);
    int cfd = udp_socket(cast_port, 1 << 20);
    struct sockaddr_in srv = {.sin_family = AF_INET};
    char host[64];
    int sport;
    if (sscanf(server, "%63[^:]:%d", host, &sport) != 2 || inet_pton(AF_INET, host, &srv.sin_addr) != 1) {
        fprintf(stderr, "onair-media-bench: --server HOST:PORT\n");
        return 2;
    }
    srv.sin_port = htons((uint16_t)sport);

    double pps = kbps * 1000.0 / 8.0 / (double)pkt;
    uint64_t interval = (uint64_t)(1e9 / pps);
    static lat_hist lat;
    uint64_t sent = 0, t_start = now_ns(), t_send_end = t_start + (uint64_t)(seconds * 1e9);
    uint64_t next = t_start, t_end = t_send_end + 1000000000ull; /* 1 s to drain */
    double cpu0 = cpu_s();
    uint8_t p[MAX_PKT + 64];
    struct epoll_event evs[256];
    static uint8_t rbuf[16][2048];
    struct mmsghdr rm[16];
    struct iovec riov[16];
    for (int k = 0; k < 16; k++) {
        riov[k] = (struct iovec){rbuf[k], sizeof rbuf[k]};
        memset(&rm[k], 0, sizeof rm[k]);
        rm[k].msg_hdr.msg_iov = &riov[k];
        rm[k].msg_hdr.msg_iovlen = 1;
    }
    uint64_t rtcp_seen = 0, bad = 0;
    for (;;) {
        uint64_t now = now_ns();
        while (now >= next && next < t_send_end) {
            size_t len = make_rtp(p, pkt, (uint16_t)sent, (uint32_t)(sent * 3000), sent, now_ns());
            int n = (int)len;
            srtp_protect(tx, p, &n);
            if (sendto(cfd, p, (size_t)n, 0, (struct sockaddr *)&srv, sizeof srv) > 0)
                sent++;
            next += interval;
        }
        if (now >= t_end)
            break;
        uint64_t wake = next < t_send_end ? next : t_end;
        int timeout_ms = wake > now ? (int)((wake - now) / 1000000) : 0;
        int n = epoll_wait(ep, evs, 256, timeout_ms);
        for (int i = 0; i < n; i++) {
            viewer *v = &vs[evs[i].data.u64];
            int r;
            while ((r = recvmmsg(v->fd, rm, 16, MSG_DONTWAIT, NULL)) > 0) {
                uint64_t t = now_ns();
                for (int k = 0; k < r; k++) {
                    uint8_t *d = rbuf[k];
                    int len = (int)rm[k].msg_len;
                    if (len >= 2 && d[1] >= 192 && d[1] <= 223) {
                        rtcp_seen++;
                        continue;
                    }
                    if (srtp_unprotect(v->rx, d, &len) != srtp_err_status_ok || len < 29) {
                        bad++;
                        continue;
                    }
                    uint64_t seq64, ts;
                    memcpy(&seq64, d + 13, 8);
                    memcpy(&ts, d + 21, 8);
                    v->received++;
                    if (v->last_seq >= 0 && (int64_t)seq64 > v->last_seq + 1)
                        v->gaps += (uint64_t)((int64_t)seq64 - v->last_seq - 1);
                    if ((int64_t)seq64 <= v->last_seq)
                        v->dup_or_old++;
                    else
                        v->last_seq = (int64_t)seq64;
                    lat_add(&lat, (t - ts) / 1000);
                }
            }
        }
    }
    double cpu = cpu_s() - cpu0;
    uint64_t received = 0, gaps = 0, old = 0, min_rx = UINT64_MAX;
    for (size_t i = 0; i < nv; i++) {
        received += vs[i].received;
        gaps += vs[i].gaps;
        old += vs[i].dup_or_old;
        if (vs[i].received < min_rx)
            min_rx = vs[i].received;
    }
    uint64_t expected = sent * nv;
    printf("{\"viewers\": %zu, \"kbps\": %.0f, \"pkt\": %zu, \"seconds\": %.1f, \"sent\": %llu, \"expected\": %llu, "
           "\"received\": %llu, \"lost\": %lld, \"gaps\": %llu, \"out_of_order\": %llu, \"unauthentic\": %llu, "
           "\"rtcp\": %llu, \"min_per_viewer\": %llu, \"lat_p50_us\": %.0f, \"lat_p99_us\": %.0f, "
           "\"lat_p999_us\": %.0f, \"lat_max_us\": %llu, \"tool_cpu_s\": %.2f, \"bare_protect_sendmsg_pps\": %.0f, "
           "\"bare_protect_sendmmsg_pps\": %.0f, \"bare_n_keys_sendmsg_pps\": %.0f, \"bare_n_keys_sendmmsg_pps\": %.0f}\n",
           nv, kbps, pkt, seconds, (unsigned long long)sent, (unsigned long long)expected,
           (unsigned long long)received, (long long)expected - (long long)received, (unsigned long long)gaps,
           (unsigned long long)old, (unsigned long long)bad, (unsigned long long)rtcp_seen,
           (unsigned long long)(nv ? min_rx : 0), lat_pct(&lat, 0.5), lat_pct(&lat, 0.99), lat_pct(&lat, 0.999),
           (unsigned long long)lat.max_us, cpu, bare_pps, bare_mmsg_pps, bare_n_pps, bare_n_mmsg_pps);
    for (size_t i = 0; i < nv; i++) {
        close(vs[i].fd);
        srtp_dealloc(vs[i].rx);
    }
    free(vs);
    srtp_dealloc(tx);
    close(cfd);
    close(ep);
    srtp_shutdown();
    return 0;
}
