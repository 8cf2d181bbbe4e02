/* media.c - the live stream (media.h, specs/media.md): Jingle sessions on
 * the router (XEP-0166/0167/0177, stanzas in media_jingle.c), one UDP
 * socket for every live, SRTP in and out (media_srtp.c), the relay with its
 * keyframe cache, feedback and policing, viewer counts, the window-close
 * timer and the live events.
 *
 * One socket serves every live (specs/architecture.md, "Media"): datagrams
 * are matched to a session content by their source address (a hash of the
 * candidates' addresses), and a packet for N viewers leaves in
 * ceil(N / 64) sendmmsg calls, each batch protected just before it goes.
 * Nothing unauthenticated is relayed or parsed beyond its SRTP header.
 *
 * Browsers watch over the media WebSocket (specs/media.md, "Browsers"): a
 * room occupant asks the endpoint for a token over XMPP, opens
 * MEDIA_WS_PATH with it and receives the live's H.264 access units, one
 * binary message each (media_h264.c depacketizes once per live), counted
 * against the channel's capacity with the Jingle viewers.
 *
 * What this module does not do: ICE, DTLS-SRTP, transcoding; browsers get
 * H.264 video and Opus audio only.
 */
#include "media.h"

#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <uthash.h>
#include <utlist.h>

#include "datetime.h"
#include "media_h264.h"
#include "media_jingle.h"
#include "media_rtp.h"
#include "media_srtp.h"
#include "media_store.h"
#include "muc.h"
#include "reservation.h"
#include "schedule.h"
#include "server.h"
#include "web.h"

#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define NS_DISCO_INFO_URI "http://jabber.org/protocol/disco#info"
#define BATCH_MAX 64             /* datagrams per sendmmsg (the first viewers do not wait for every protect) */
#define PACKET_MAX 65536         /* largest datagram read */
#define SLOT_MAX (PACKET_MAX + MEDIA_SRTP_TRAILER_MAX)
#define COUNT_WRITE_MS 1000      /* viewer counts reach the store at most this often */
#define MEDIA_WS_PATH "/media-websocket"
#define MEDIA_WS_PROTOCOL "onair-media"
#define MEDIA_WS_RX 128          /* the receive buffer: the token is the only message */
#define MEDIA_TOKEN_LEN 32
#define MEDIA_TOKENS_MAX 65536   /* tokens outstanding at once, every live together */
#define MEDIA_AU_MAX (4u << 20)  /* the largest access unit sent to a browser */
#define WS_HEADER_LEN 8
#define WS_KIND_H264 1 /* byte 0 of a binary message */
#define WS_KIND_OPUS 2
/* RFC 6455 section 7.4 */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_UNSUPPORTED 1003
#define WS_CLOSE_POLICY 1008
#define WS_CLOSE_TRY_LATER 1013

typedef struct media_live media_live;
typedef struct media_session media_session;

/* A browser on the media WebSocket.  Owned by its connection: freed in
 * on_close (web.c calls it once, also at shutdown); while it watches, it is
 * on its live's ws_viewers list, and the live's end or media_free takes it
 * off (live = NULL). */
typedef struct media_wsv {
    server *srv;
    web_ws *ws;                /* web.c's, valid until on_close */
    media_live *live;          /* set while it counts as a viewer */
    int64_t opened_ms;         /* until its token came: on the service's pending list */
    bool is_pending;
    bool need_key;             /* dropping access units until a keyframe */
    bool is_playing;           /* told "playing": audio frames go to it */
    bool is_done;              /* refused or ended: what it sends is ignored */
    char token[MEDIA_WS_RX + 1];
    size_t token_len;
    char peer[64];             /* for the log */
    struct media_wsv *prev, *next;
} media_wsv;

/* What a sender report (RFC 3550 section 6.4.1) says of one of the
 * broadcaster's RTP clocks: the RTP timestamp of a wall-clock instant. */
typedef struct ws_clock {
    bool is_set;
    uint32_t rtp;
    int64_t ntp_ms; /* milliseconds since 1900 (NTP's era 0) */
} ws_clock;

/* A media WebSocket token: one live, single use, expires unused. */
typedef struct media_token {
    char token[MEDIA_TOKEN_LEN + 1];
    char live[RES_ID_LEN + 1];
    int64_t expires_ms;
    UT_hash_handle hh;
} media_token;

/* One content (one media) of a session. */
typedef struct media_content {
    mj_media media;
    char name[MJ_NAME_MAX + 1];
    char creator[12];
    mj_payload pt;              /* ingest: the live's payload type; viewer: its number for the live's codec */
    mj_payload *offered;        /* owned, noffered of them: a viewer's payload types, to answer each
                                   time the live goes on air (NULL for the broadcaster) */
    size_t noffered;
    char tag[16];
    media_srtp_suite suite;
    media_codec codec;
    media_srtp *in;             /* unprotects what the peer sends (its key) */
    media_srtp *out;            /* protects what the server sends it (the server's key) */
    char server_key[MEDIA_SRTP_INLINE_MAX]; /* for the session-accept; wiped once sent */
    struct sockaddr_storage rtp, rtcp;
    bool is_active;             /* viewer: accepted for this content (the live has this media) */
    /* ingest: feedback limits towards the broadcaster */
    int64_t last_keyframe_request_ms;
    double nack_tokens;
    int64_t nack_ms;
} media_content;

typedef struct media_addr {
    uint8_t key[20]; /* family, port, address */
    media_session *s;
    uint8_t content;
    UT_hash_handle hh;
} media_addr;

struct media_session {
    char *key;      /* owned: "<peer full JID> <sid>" (the hash key) */
    char *peer;     /* owned: the client's full JID */
    char sid[MJ_SID_MAX + 1];
    mj_role role;
    media_live *live;
    bool is_accepted;
    char accept_id[24]; /* id of the session-accept IQ we sent */
    media_content contents[MJ_MAX_CONTENTS];
    size_t ncontents;
    media_addr *addrs[MJ_MAX_CONTENTS * 3];
    size_t naddrs;
    UT_hash_handle hh;       /* by key */
    media_session *peer_next; /* the peer's other sessions */
    media_session *prev, *next; /* the live's viewers */
};

/* A peer (full JID) with media sessions: to end them when its stream ends. */
typedef struct media_peer {
    char *jid; /* owned */
    media_session *head;
    UT_hash_handle hh;
} media_peer;

/* The packets of the latest keyframe group of a live's video, in order. */
typedef struct keyframe_cache {
    uint8_t *buf;
    size_t len, cap;
    uint32_t *lens; /* each packet's length; packets are back to back in buf */
    size_t n, ncap;
    uint32_t ts;    /* the group's RTP timestamp */
    size_t max_len; /* the longest packet kept */
    bool is_valid;
} keyframe_cache;

struct media_live {
    char id[RES_ID_LEN + 1];
    char channel[CHANNEL_ID_MAX + 1];
    char *owner_bare;          /* owned: owner@domain */
    char *room_jid;            /* owned */
    res_level level;
    uint32_t capacity, bandwidth_kbps;
    int64_t start, end;        /* the slot, seconds */
    media_session *ingest;     /* on air when set */
    media_session *viewers;    /* DL list: waiting and watching */
    size_t nviewers;
    int64_t started_ms, last_packet_ms;
    double tokens;             /* policing: bytes */
    int64_t tokens_ms;
    keyframe_cache cache;
    h264_au au;                /* the access units for browsers (H.264 video) */
    media_wsv *ws_viewers;     /* DL list: browsers, counted in nviewers too */
    ws_clock clocks[2];        /* the broadcaster's latest sender reports: [0] H.264, [1] Opus */
    uint32_t peak, total;      /* this broadcast's counts (with what the store had) */
    bool has_record;           /* media_lives has a record for it */
    bool counts_dirty;
    int64_t counts_written_ms;
    UT_hash_handle hh;
};

typedef struct media_service {
    server *srv;
    uv_udp_t udp;
    bool udp_open;
    int fd;
    char ip[64];  /* announced */
    int port;
    media_live *lives;       /* uthash by id */
    media_session *sessions; /* uthash by key */
    media_peer *peers;       /* uthash by jid */
    media_addr *addrs;       /* uthash by address key */
    media_token *tokens;     /* uthash by token */
    size_t ntokens;
    media_wsv *pending;      /* DL list: browsers connected whose token has not come */
    media_stats stats;
    uint64_t next_id;
    bool stopping;
    uint8_t rbuf[SLOT_MAX];
    /* send batch */
    uint8_t *slots;     /* nbatch slots of `stride` bytes, back to back */
    size_t slots_bytes;
    size_t stride;      /* the current packet's slot size (length and trailer, 64-byte aligned) */
    struct mmsghdr *msgs;
    struct iovec *iov;
    size_t nbatch;
} media_service;

static int64_t now_ms(void)
{
    return schedule_now_ms();
}

/* ---- addresses ---- */

static void addr_key(const struct sockaddr *sa, uint8_t key[20])
{
    memset(key, 0, 20);
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        key[0] = 6;
        memcpy(key + 2, &a->sin6_port, 2);
        memcpy(key + 4, &a->sin6_addr, 16);
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        key[0] = 4;
        memcpy(key + 2, &a->sin_port, 2);
        memcpy(key + 4, &a->sin_addr, 4);
    }
}

static socklen_t addr_len(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static media_addr *addr_find(media_service *m, const struct sockaddr *sa)
{
    uint8_t key[20];
    addr_key(sa, key);
    media_addr *a = NULL;
    HASH_FIND(hh, m->addrs, key, sizeof key, a);
    return a;
}

/* Whether the session's addresses are free (another session's taken
 * address would make its packets ambiguous). */
static bool addrs_free(media_service *m, const mj_initiate *ji)
{
    for (size_t i = 0; i < ji->ncontents; i++) {
        const mj_content *c = &ji->contents[i];
        if (addr_find(m, (const struct sockaddr *)&c->rtp) || addr_find(m, (const struct sockaddr *)&c->rtcp))
            return false;
        for (size_t j = 0; j < i; j++) {
            uint8_t a[20], b[20], d[20];
            addr_key((const struct sockaddr *)&ji->contents[j].rtp, a);
            addr_key((const struct sockaddr *)&c->rtp, b);
            addr_key((const struct sockaddr *)&c->rtcp, d);
            if (memcmp(a, b, 20) == 0 || memcmp(a, d, 20) == 0)
                return false;
        }
    }
    return true;
}

static void addr_add(media_service *m, media_session *s, uint8_t content, const struct sockaddr_storage *ss)
{
    uint8_t key[20];
    addr_key((const struct sockaddr *)ss, key);
    media_addr *a = NULL;
    HASH_FIND(hh, m->addrs, key, sizeof key, a);
    if (a)
        return; /* the same address for RTP and RTCP */
    a = calloc(1, sizeof *a);
    if (!a)
        return;
    memcpy(a->key, key, sizeof key);
    a->s = s;
    a->content = content;
    HASH_ADD(hh, m->addrs, key, sizeof a->key, a);
    s->addrs[s->naddrs++] = a;
}

/* ---- small helpers ---- */

static void next_id(media_service *m, char *out, size_t cap)
{
    snprintf(out, cap, "onair-m%llu", (unsigned long long)++m->next_id);
}

static void endpoint_jid(media_service *m, const char *id, char *out, size_t cap)
{
    snprintf(out, cap, "%s@%s", id, m->srv->media_domain);
}

/* An IQ error for a Jingle request, with an application condition; the
 * request's payload is not echoed (it holds keys and passwords). */
static void reply_error(media_service *m, const xml_node *iq, const mj_error *e)
{
    xml_node *err = router_error_stanza(m->srv, iq, e->type, e->condition, e->text[0] ? e->text : NULL);
    if (!err)
        return;
    xml_node *payload = xml_node_child(err, "jingle", NS_JINGLE);
    if (payload) {
        xml_node_remove(err, payload);
        xml_node_free(payload);
    }
    xml_node *el = xml_node_child(err, "error", XML_NS_CLIENT);
    if (el && e->app_name)
        xml_node_add_child(el, e->app_name, e->app_ns);
    router_route(m->srv, NULL, err);
}

static void reply_simple(media_service *m, const xml_node *iq, const char *type, const char *cond, const char *app_ns,
                         const char *app_name, const char *text)
{
    mj_error e = {type, cond, app_ns, app_name, ""};
    if (text)
        snprintf(e.text, sizeof e.text, "%.*s", (int)sizeof e.text - 1, text); /* longer texts are cut */
    reply_error(m, iq, &e);
}

static void reply_result(media_service *m, const xml_node *iq)
{
    router_route(m->srv, NULL, router_iq_result(iq));
}

/* ---- lives ---- */

static media_live *live_find(const media_service *m, const char *id)
{
    media_live *l = NULL;
    if (m)
        HASH_FIND_STR(m->lives, id, l);
    return l;
}

static media_live *live_get(media_service *m, const reservation *res)
{
    media_live *l = live_find(m, res->id);
    if (l)
        return l;
    server *srv = m->srv;
    l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    memcpy(l->id, res->id, sizeof l->id);
    snprintf(l->channel, sizeof l->channel, "%s", res->channel);
    size_t n = strlen(res->owner) + strlen(srv->cfg.domain) + 2;
    l->owner_bare = malloc(n);
    if (l->owner_bare)
        snprintf(l->owner_bare, n, "%s@%s", res->owner, srv->cfg.domain);
    n = RES_ID_LEN + strlen(srv->muc_domain) + 2;
    l->room_jid = malloc(n);
    if (l->room_jid)
        snprintf(l->room_jid, n, "%s@%s", res->id, srv->muc_domain);
    if (!l->owner_bare || !l->room_jid) {
        free(l->owner_bare);
        free(l->room_jid);
        free(l);
        return NULL;
    }
    l->level = res->level;
    l->capacity = res->capacity;
    l->bandwidth_kbps = res->bandwidth_kbps;
    l->start = res->start;
    l->end = res->end;
    h264_au_init(&l->au, MEDIA_AU_MAX);
    store_txn *t;
    if (store_txn_begin(srv->store, false, &t) == STORE_OK) {
        media_live_record rec;
        if (media_live_get(t, res->id, &rec) == STORE_OK) {
            l->has_record = true;
            l->peak = rec.viewers_peak;
            l->total = rec.viewers_total;
        }
        store_txn_abort(t);
    }
    HASH_ADD_STR(m->lives, id, l);
    return l;
}

static void cache_clear(keyframe_cache *c)
{
    c->len = 0;
    c->n = 0;
    c->max_len = 0;
    c->is_valid = false;
}

static void live_free(media_live *l)
{
    free(l->owner_bare);
    free(l->room_jid);
    free(l->cache.buf);
    free(l->cache.lens);
    h264_au_free(&l->au);
    free(l);
}

/* A live with no session left and not on air is dropped from memory. */
static void live_release(media_service *m, media_live *l)
{
    if (l->ingest || l->viewers || l->ws_viewers)
        return;
    HASH_DEL(m->lives, l);
    live_free(l);
}

static int64_t window_close(const server *srv, const media_live *l)
{
    return l->end + srv->cfg.ingest_close_after_s;
}

/* Writes the live's record (state and counts) in one transaction, with the
 * window-close timer when it goes on air. */
static int live_write(media_service *m, media_live *l, media_live_state state, const char *reason, bool starting,
                      bool ending)
{
    server *srv = m->srv;
    store_txn *t;
    int rc = store_txn_begin(srv->store, true, &t);
    if (rc != STORE_OK)
        return rc;
    media_live_record rec;
    rc = media_live_get(t, l->id, &rec);
    if (rc == STORE_NOTFOUND) {
        memset(&rec, 0, sizeof rec);
        memcpy(rec.id, l->id, sizeof rec.id);
        rc = STORE_OK;
    }
    int64_t now = now_ms();
    int64_t close_ms = window_close(srv, l) * 1000;
    if (rc == STORE_OK) {
        rec.state = state;
        if (starting) {
            if (!rec.first_aired_ms)
                rec.first_aired_ms = now;
            rec.started_ms = now;
            rec.ended_ms = 0;
            rec.reason[0] = '\0';
            rec.airings++;
        }
        if (ending) {
            rec.ended_ms = now;
            snprintf(rec.reason, sizeof rec.reason, "%s", reason ? reason : "");
        }
        rec.viewers_peak = l->peak;
        rec.viewers_total = l->total;
        rc = media_live_put(t, &rec);
    }
    if (rc == STORE_OK && starting)
        rc = schedule_put_txn(t, close_ms, SCHEDULE_INGEST_CLOSE, l->id);
    if (rc == STORE_OK)
        rc = store_txn_commit(t);
    else
        store_txn_abort(t);
    if (rc == STORE_OK) {
        l->has_record = true;
        l->counts_dirty = false;
        l->counts_written_ms = now;
        if (starting)
            schedule_changed(srv, close_ms);
    } else {
        log_write(&srv->log, LOG_ERROR, "media", "%s: writing the broadcast record failed: %s", l->id,
                  store_last_error(srv->store));
    }
    return rc;
}

static void fire_live(media_service *m, media_live *l, event_type type, const char *reason, bool resumed)
{
    media_live_event ev;
    memset(&ev, 0, sizeof ev);
    ev.live.reservation_id = l->id;
    ev.live.channel = l->channel;
    ev.live.room = l->room_jid;
    ev.live.time_ms = now_ms();
    char owner[RES_OWNER_MAX + 1] = "";
    const char *at = l->owner_bare ? strchr(l->owner_bare, '@') : NULL;
    if (at && (size_t)(at - l->owner_bare) < sizeof owner)
        memcpy(owner, l->owner_bare, (size_t)(at - l->owner_bare));
    ev.live.owner = owner;
    ev.live.source = "stream";
    ev.live.start = l->start;
    ev.live.end = l->end;
    ev.live.started_ms = l->started_ms;
    ev.reason = reason;
    ev.resumed = resumed;
    ev.viewers_peak = l->peak;
    ev.viewers_total = l->total;
    event_fire(m->srv, &m->srv->events, type, &ev);
}

/* ---- sessions ---- */

static media_session *session_find(media_service *m, const char *peer, const char *sid)
{
    char key[3200];
    snprintf(key, sizeof key, "%s %s", peer, sid);
    media_session *s = NULL;
    HASH_FIND_STR(m->sessions, key, s);
    return s;
}

static void session_send_terminate(media_service *m, media_session *s, const char *condition, const char *text)
{
    char from[RES_ID_LEN + 300], id[32];
    endpoint_jid(m, s->live->id, from, sizeof from);
    next_id(m, id, sizeof id);
    router_route(m->srv, NULL, mj_build_terminate(id, from, s->peer, s->sid, condition, text));
}

/* Removes a session from every table and frees it (the live stays). */
static void session_free(media_service *m, media_session *s)
{
    for (size_t i = 0; i < s->naddrs; i++) {
        HASH_DEL(m->addrs, s->addrs[i]);
        free(s->addrs[i]);
    }
    for (size_t i = 0; i < s->ncontents; i++) {
        media_srtp_free(s->contents[i].in);
        media_srtp_free(s->contents[i].out);
        free(s->contents[i].offered);
    }
    OPENSSL_cleanse(s->contents, sizeof s->contents);
    HASH_DEL(m->sessions, s);
    media_peer *p = NULL;
    HASH_FIND_STR(m->peers, s->peer, p);
    if (p) {
        for (media_session **pp = &p->head; *pp; pp = &(*pp)->peer_next) {
            if (*pp == s) {
                *pp = s->peer_next;
                break;
            }
        }
        if (!p->head) {
            HASH_DEL(m->peers, p);
            free(p->jid);
            free(p);
        }
    }
    media_live *l = s->live;
    if (s->role == MJ_WATCH) {
        DL_DELETE(l->viewers, s);
        l->nviewers--;
    } else if (l->ingest == s) {
        l->ingest = NULL;
    }
    free(s->key);
    free(s->peer);
    free(s);
}

static void live_end(media_service *m, media_live *l, const char *reason, const char *to_broadcaster_cond,
                     const char *to_broadcaster_text, const char *to_viewers_cond, const char *to_viewers_text,
                     bool notify);
static void ws_live_started(media_service *m, media_live *l);
static void ws_live_ended(media_service *m, media_live *l, const char *text);
static void ws_deliver_all(void *ud, const uint8_t *au, size_t len, uint32_t ts, bool is_key);
static void ws_audio_all(media_live *l, const uint8_t *frame, size_t len, uint32_t ts);
static void ws_clock_all(media_live *l, unsigned kind, const uint8_t *sr, size_t len);

/* Ends a session: tells its peer (unless notify is false), and when it was
 * the broadcaster's, ends the live. */
static void session_end(media_service *m, media_session *s, const char *condition, const char *text, bool notify,
                        const char *live_reason)
{
    media_live *l = s->live;
    if (s->role == MJ_INGEST && l->ingest == s) {
        live_end(m, l, live_reason, condition, text, "success", "the live has ended", notify);
        return;
    }
    if (notify)
        session_send_terminate(m, s, condition, text);
    log_write(&m->srv->log, LOG_INFO, "media", "%s: viewer %s (%s) left: %s", l->id, s->peer, s->sid,
              text ? text : condition);
    session_free(m, s);
    live_release(m, l);
}

/* ---- the keyframe cache ---- */

static void cache_add(media_service *m, keyframe_cache *c, const uint8_t *p, size_t len)
{
    size_t limit = m->srv->cfg.media_keyframe_cache_bytes;
    if (c->len + len > limit) {
        cache_clear(c); /* too big to keep: nothing until the next keyframe */
        return;
    }
    if (c->len + len > c->cap) {
        size_t cap = c->cap ? c->cap : 65536;
        while (cap < c->len + len)
            cap *= 2;
        uint8_t *nb = realloc(c->buf, cap);
        if (!nb) {
            cache_clear(c);
            return;
        }
        c->buf = nb;
        c->cap = cap;
    }
    if (c->n == c->ncap) {
        size_t ncap = c->ncap ? c->ncap * 2 : 256;
        uint32_t *nl = realloc(c->lens, ncap * sizeof *nl);
        if (!nl) {
            cache_clear(c);
            return;
        }
        c->lens = nl;
        c->ncap = ncap;
    }
    memcpy(c->buf + c->len, p, len);
    c->len += len;
    if (len > c->max_len)
        c->max_len = len;
    c->lens[c->n++] = (uint32_t)len;
}

static void cache_packet(media_service *m, media_live *l, media_codec codec, const uint8_t *p, size_t len,
                         const rtp_header *h)
{
    keyframe_cache *c = &l->cache;
    if (m->srv->cfg.media_keyframe_cache_bytes == 0)
        return;
    bool key = media_payload_keyframe(codec, p + h->header_len, h->payload_len);
    if (key && !(c->is_valid && c->n > 0 && c->ts == h->ts)) {
        cache_clear(c); /* a new keyframe: the group starts again here */
        c->is_valid = true;
        c->ts = h->ts;
    }
    if (c->is_valid)
        cache_add(m, c, p, len);
}

/* ---- sending ---- */

/* Room for a batch of min(n, BATCH_MAX) packets of len bytes: slots are
 * only as large as the packet, so a batch stays in a few hundred KiB of
 * contiguous memory however large a datagram could be. */
static int batch_grow(media_service *m, size_t n, size_t len)
{
    m->stride = (len + MEDIA_SRTP_TRAILER_MAX + 63) & ~(size_t)63;
    size_t want = n < BATCH_MAX ? n : BATCH_MAX;
    if (want < m->nbatch)
        want = m->nbatch;
    if (want * m->stride > m->slots_bytes) {
        uint8_t *slots = realloc(m->slots, want * m->stride);
        if (!slots)
            return -1;
        m->slots = slots;
        m->slots_bytes = want * m->stride;
    }
    if (want <= m->nbatch)
        return 0;
    struct mmsghdr *msgs = realloc(m->msgs, want * sizeof *msgs);
    if (!msgs)
        return -1;
    m->msgs = msgs;
    struct iovec *iov = realloc(m->iov, want * sizeof *iov);
    if (!iov)
        return -1;
    m->iov = iov;
    m->nbatch = want;
    return 0;
}

static void batch_flush(media_service *m, size_t n)
{
    size_t done = 0;
    while (done < n) {
        int r = sendmmsg(m->fd, m->msgs + done, (unsigned)(n - done), 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            /* EAGAIN (the socket buffer is full) or a peer's ICMP error
             * reported on this datagram: it is lost, the rest go on. */
            m->stats.send_errors++;
            done++;
            continue;
        }
        m->stats.packets_out += (uint64_t)r;
        done += (size_t)r;
    }
}

/* Puts a protected copy of pkt for one viewer content in batch slot i.
 * Returns 0, or -1 when protect failed (nothing to send). */
static int batch_put(media_service *m, size_t i, media_content *vc, const uint8_t *pkt, size_t len, bool rtcp)
{
    uint8_t *slot = m->slots + i * m->stride;
    memcpy(slot, pkt, len);
    size_t out = len;
    int rc;
    if (rtcp) {
        rc = media_srtp_protect_rtcp(vc->out, slot, &out);
    } else {
        slot[1] = (uint8_t)((slot[1] & 0x80) | (vc->pt.id & 0x7f));
        rc = media_srtp_protect(vc->out, slot, &out);
    }
    if (rc != MEDIA_SRTP_OK) {
        m->stats.send_errors++;
        return -1;
    }
    m->iov[i].iov_base = slot;
    m->iov[i].iov_len = out;
    memset(&m->msgs[i], 0, sizeof m->msgs[i]);
    struct sockaddr_storage *to = rtcp ? &vc->rtcp : &vc->rtp;
    m->msgs[i].msg_hdr.msg_name = to;
    m->msgs[i].msg_hdr.msg_namelen = addr_len(to);
    m->msgs[i].msg_hdr.msg_iov = &m->iov[i];
    m->msgs[i].msg_hdr.msg_iovlen = 1;
    return 0;
}

/* A packet of the live's media to every viewer accepted for it. */
static void relay(media_service *m, media_live *l, mj_media media, const uint8_t *pkt, size_t len, bool rtcp)
{
    if (!l->viewers || len > PACKET_MAX || batch_grow(m, l->nviewers, len) != 0)
        return;
    size_t n = 0;
    media_session *s;
    DL_FOREACH(l->viewers, s)
    {
        if (!s->is_accepted)
            continue;
        for (size_t i = 0; i < s->ncontents; i++) {
            media_content *vc = &s->contents[i];
            if (vc->media != media || !vc->is_active)
                continue;
            if (batch_put(m, n, vc, pkt, len, rtcp) == 0 && ++n == m->nbatch) {
                batch_flush(m, n);
                n = 0;
            }
        }
    }
    if (n)
        batch_flush(m, n);
}

/* The kept keyframe group to one new viewer, at once. */
static void send_cache(media_service *m, media_live *l, media_session *s)
{
    keyframe_cache *c = &l->cache;
    if (!c->is_valid || c->n == 0)
        return;
    media_content *vc = NULL;
    for (size_t i = 0; i < s->ncontents; i++)
        if (s->contents[i].media == MJ_VIDEO && s->contents[i].is_active)
            vc = &s->contents[i];
    if (!vc || batch_grow(m, c->n, c->max_len) != 0)
        return;
    log_write(&m->srv->log, LOG_DEBUG, "media", "%s: keyframe group of %zu packets (%zu bytes) to %s", l->id, c->n,
              c->len, s->peer);
    size_t off = 0, n = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (batch_put(m, n, vc, c->buf + off, c->lens[i], false) == 0 && ++n == m->nbatch) {
            batch_flush(m, n);
            n = 0;
        }
        off += c->lens[i];
    }
    if (n)
        batch_flush(m, n);
}

/* One RTCP packet (already unprotected) to the broadcaster's content. */
static void send_to_broadcaster(media_service *m, media_content *ic, const uint8_t *pkt, size_t len)
{
    if (len > PACKET_MAX || batch_grow(m, 1, len) != 0)
        return;
    uint8_t *slot = m->slots;
    memcpy(slot, pkt, len);
    size_t out = len;
    if (media_srtp_protect_rtcp(ic->out, slot, &out) != MEDIA_SRTP_OK)
        return;
    ssize_t r = sendto(m->fd, slot, out, 0, (struct sockaddr *)&ic->rtcp, addr_len(&ic->rtcp));
    if (r < 0)
        m->stats.send_errors++;
    else
        m->stats.feedback_forwarded++;
}

/* ---- packets in ---- */

static bool police(media_service *m, media_live *l, size_t len, int64_t now)
{
    double rate = (double)l->bandwidth_kbps * 1000.0 / 8.0 *
                  (100.0 + (double)m->srv->cfg.media_bandwidth_headroom_percent) / 100.0; /* bytes/s */
    double burst = rate; /* one second */
    if (l->tokens_ms == 0) {
        l->tokens = burst;
    } else if (now > l->tokens_ms) {
        l->tokens += rate * (double)(now - l->tokens_ms) / 1000.0;
        if (l->tokens > burst)
            l->tokens = burst;
    }
    l->tokens_ms = now;
    if (l->tokens < (double)len)
        return false;
    l->tokens -= (double)len;
    return true;
}

/* What of an ingest content goes to browsers: WS_KIND_H264, WS_KIND_OPUS, or 0. */
static unsigned ws_kind_of(const media_content *c)
{
    if (c->media == MJ_VIDEO && c->codec == MEDIA_CODEC_H264)
        return WS_KIND_H264;
    if (c->media == MJ_AUDIO && strcasecmp(c->pt.name, "opus") == 0)
        return WS_KIND_OPUS;
    return 0;
}

static void ingest_packet(media_service *m, media_session *s, media_content *c, uint8_t *p, size_t len)
{
    media_live *l = s->live;
    bool rtcp = rtp_is_rtcp(p, len);
    int rc = rtcp ? media_srtp_unprotect_rtcp(c->in, p, &len) : media_srtp_unprotect(c->in, p, &len);
    if (rc == MEDIA_SRTP_REPLAY) {
        m->stats.replayed++;
        return;
    }
    if (rc != MEDIA_SRTP_OK) {
        m->stats.auth_failed++;
        return;
    }
    int64_t now = now_ms();
    if (!police(m, l, len, now)) {
        m->stats.policed++;
        return;
    }
    l->last_packet_ms = now;
    m->stats.packets_in++;
    m->stats.bytes_in += len;
    if (rtcp) {
        rtcp_item items[16];
        unsigned kinds;
        int n = rtcp_walk(p, len, items, 16, &kinds);
        if (n <= 0 || !(kinds & RTCP_HAS_SR))
            return;
        unsigned kind = ws_kind_of(c);
        for (int i = 0; kind && i < n && i < 16; i++)
            if (items[i].pt == 200)
                ws_clock_all(l, kind, p + items[i].off, items[i].len);
        relay(m, l, c->media, p, len, true);
        return;
    }
    rtp_header h;
    if (rtp_parse(p, len, &h) != 0)
        return;
    if (c->media == MJ_VIDEO && c->codec != MEDIA_CODEC_OTHER)
        cache_packet(m, l, c->codec, p, len, &h);
    unsigned kind = ws_kind_of(c);
    if (kind == WS_KIND_H264)
        h264_au_push(&l->au, p, &h, ws_deliver_all, l);
    else if (kind == WS_KIND_OPUS && h.payload_len > 0)
        ws_audio_all(l, p + h.header_len, h.payload_len, h.ts);
    relay(m, l, c->media, p, len, false);
}

static void feedback_packet(media_service *m, media_session *s, media_content *c, uint8_t *p, size_t len)
{
    if (!rtp_is_rtcp(p, len) || media_srtp_unprotect_rtcp(c->in, p, &len) != MEDIA_SRTP_OK) {
        m->stats.feedback_rejected++;
        return;
    }
    media_live *l = s->live;
    media_session *in = l->ingest;
    if (!in)
        return;
    media_content *ic = NULL;
    for (size_t i = 0; i < in->ncontents; i++)
        if (in->contents[i].media == c->media)
            ic = &in->contents[i];
    if (!ic)
        return;
    rtcp_item items[16];
    unsigned kinds;
    int n = rtcp_walk(p, len, items, 16, &kinds);
    if (n <= 0)
        return;
    int64_t now = now_ms();
    const config *cfg = &m->srv->cfg;
    for (int i = 0; i < n && i < 16; i++) {
        const rtcp_item *it = &items[i];
        bool keyreq = it->pt == 206 && (it->fmt == 1 || it->fmt == 4);
        bool nack = it->pt == 205 && it->fmt == 1;
        if (keyreq) {
            if (ic->last_keyframe_request_ms &&
                now - ic->last_keyframe_request_ms < (int64_t)cfg->media_keyframe_request_interval_ms) {
                m->stats.feedback_limited++;
                continue;
            }
            ic->last_keyframe_request_ms = now;
            send_to_broadcaster(m, ic, p + it->off, it->len);
        } else if (nack) {
            double rate = cfg->media_feedback_per_s;
            if (ic->nack_ms == 0)
                ic->nack_tokens = rate;
            else
                ic->nack_tokens += rate * (double)(now - ic->nack_ms) / 1000.0;
            if (ic->nack_tokens > rate)
                ic->nack_tokens = rate;
            ic->nack_ms = now;
            if (ic->nack_tokens < 1.0) {
                m->stats.feedback_limited++;
                continue;
            }
            ic->nack_tokens -= 1.0;
            send_to_broadcaster(m, ic, p + it->off, it->len);
        }
    }
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from, unsigned flags)
{
    media_service *m = h->data;
    (void)buf;
    if (nread <= 0 || !from || m->stopping || (flags & UV_UDP_PARTIAL))
        return;
    media_addr *a = addr_find(m, from);
    if (!a) {
        m->stats.unknown_source++;
        return;
    }
    media_session *s = a->s;
    media_content *c = &s->contents[a->content];
    if (s->role == MJ_INGEST)
        ingest_packet(m, s, c, m->rbuf, (size_t)nread);
    else
        feedback_packet(m, s, c, m->rbuf, (size_t)nread);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    media_service *m = h->data;
    (void)suggested;
    /* Packets are handled before the next read: one buffer serves all. */
    buf->base = (char *)m->rbuf;
    buf->len = PACKET_MAX;
}

/* ---- accepting ---- */

static void make_answer(media_service *m, media_content *c, const char *senders, mj_answer *a)
{
    a->name = c->name;
    a->creator = c->creator;
    a->senders = senders;
    a->media = c->media;
    a->pt = &c->pt;
    a->tag = c->tag;
    a->suite = c->suite;
    a->key_params = c->server_key;
    a->ip = m->ip;
    a->port = m->port;
}

/* Sends a session-accept for the session's active contents. */
static void send_accept(media_service *m, media_session *s)
{
    mj_answer answers[MJ_MAX_CONTENTS];
    size_t n = 0;
    const char *senders = s->role == MJ_INGEST ? "initiator" : "responder";
    for (size_t i = 0; i < s->ncontents; i++)
        if (s->contents[i].is_active)
            make_answer(m, &s->contents[i], senders, &answers[n++]);
    char from[RES_ID_LEN + 300];
    endpoint_jid(m, s->live->id, from, sizeof from);
    next_id(m, s->accept_id, sizeof s->accept_id);
    router_route(m->srv, NULL, mj_build_accept(s->accept_id, from, s->peer, s->sid, answers, n));
    for (size_t i = 0; i < s->ncontents; i++)
        OPENSSL_cleanse(s->contents[i].server_key, sizeof s->contents[i].server_key);
    s->is_accepted = true;
}

/* For a viewer content: its payload type of the live's codec for this
 * media, if it offered one. */
static bool viewer_match(media_content *vc, const media_content *ic)
{
    for (size_t k = 0; k < vc->noffered; k++) {
        if (mj_payload_same_codec(&vc->offered[k], &ic->pt)) {
            vc->pt = ic->pt; /* the broadcaster's parameters ... */
            vc->pt.id = vc->offered[k].id; /* ... under the viewer's number */
            return true;
        }
    }
    return false;
}

/* Which of a viewer's contents the live on air can serve: marks them
 * active; false when none. */
static bool viewer_contents(media_live *l, media_session *s)
{
    bool any = false;
    for (size_t i = 0; i < s->ncontents; i++) {
        media_content *vc = &s->contents[i];
        vc->is_active = false;
        for (size_t j = 0; l->ingest && j < l->ingest->ncontents; j++)
            if (l->ingest->contents[j].media == vc->media && viewer_match(vc, &l->ingest->contents[j]))
                vc->is_active = any = true;
    }
    return any;
}

static void live_codecs(media_live *l, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t j = 0; l->ingest && j < l->ingest->ncontents; j++) {
        char d[64];
        mj_payload_describe(&l->ingest->contents[j].pt, d, sizeof d);
        used += (size_t)snprintf(out + used, cap - used, "%s%s %s", j ? " and " : "", d,
                                 mj_media_name(l->ingest->contents[j].media));
        if (used >= cap)
            break;
    }
}

static void count_viewer(media_live *l)
{
    l->total++;
    if (l->nviewers > l->peak)
        l->peak = (uint32_t)l->nviewers;
    l->counts_dirty = true;
}

/* The live has gone on air: its waiting viewers are accepted (or refused
 * when they asked for nothing the live sends). */
static void accept_waiting(media_service *m, media_live *l)
{
    media_session *s, *tmp;
    DL_FOREACH_SAFE(l->viewers, s, tmp)
    {
        if (s->is_accepted)
            continue;
        if (!viewer_contents(l, s)) {
            char codecs[200], text[256];
            live_codecs(l, codecs, sizeof codecs);
            snprintf(text, sizeof text, "this live sends %s", codecs);
            session_end(m, s, "incompatible-parameters", text, true, NULL);
            continue;
        }
        send_accept(m, s);
        send_cache(m, l, s);
    }
    ws_live_started(m, l);
}

/* ---- ending ---- */

static void live_end(media_service *m, media_live *l, const char *reason, const char *bcond, const char *btext,
                     const char *vcond, const char *vtext, bool notify)
{
    server *srv = m->srv;
    media_session *in = l->ingest;
    bool was_on_air = in != NULL;
    if (in) {
        if (notify)
            session_send_terminate(m, in, bcond, btext);
        session_free(m, in);
    }
    media_session *s, *tmp;
    DL_FOREACH_SAFE(l->viewers, s, tmp)
    {
        session_send_terminate(m, s, vcond, vtext);
        session_free(m, s);
    }
    ws_live_ended(m, l, vtext);
    cache_clear(&l->cache);
    if (was_on_air) {
        live_write(m, l, MEDIA_LIVE_ENDED, reason, false, true);
        const media_stats *st = &m->stats;
        log_write(&srv->log, LOG_INFO, "media",
                  "live ended: %s (%s), viewers peak %u total %u; server counts: in %llu, auth failed %llu, "
                  "replayed %llu, policed %llu, out %llu",
                  l->id, reason, l->peak, l->total, (unsigned long long)st->packets_in,
                  (unsigned long long)st->auth_failed, (unsigned long long)st->replayed,
                  (unsigned long long)st->policed, (unsigned long long)st->packets_out);
        fire_live(m, l, EVENT_LIVE_ENDED, reason, false);
    }
    live_release(m, l);
}

/* ---- session-initiate ---- */

/* Fills a session content from a parsed one: contexts, the server's key. */
static int content_setup(media_content *mc, const mj_content *c, mj_role role)
{
    mc->media = c->media;
    memcpy(mc->name, c->name, sizeof mc->name);
    memcpy(mc->creator, c->creator, sizeof mc->creator);
    memcpy(mc->tag, c->tag, sizeof mc->tag);
    mc->suite = c->suite;
    mc->rtp = c->rtp;
    mc->rtcp = c->rtcp;
    if (role == MJ_INGEST) {
        mc->pt = c->pts[0];
        mc->codec = mj_payload_codec(&mc->pt);
        mc->is_active = true;
    } else if (c->npts > 0) {
        mc->offered = malloc(c->npts * sizeof *mc->offered);
        if (!mc->offered)
            return -1;
        memcpy(mc->offered, c->pts, c->npts * sizeof *mc->offered);
        mc->noffered = c->npts;
    }
    uint8_t key[MEDIA_SRTP_KEY_MAX];
    if (media_srtp_new_key(c->suite, key, mc->server_key) != 0)
        return -1;
    mc->out = media_srtp_new(c->suite, key, true);
    OPENSSL_cleanse(key, sizeof key);
    mc->in = media_srtp_new(c->suite, c->key, false);
    return mc->in && mc->out ? 0 : -1;
}

static media_session *session_new(media_service *m, media_live *l, const char *peer, const mj_initiate *ji)
{
    media_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    size_t n = strlen(peer) + 1 + strlen(ji->sid) + 1;
    s->key = malloc(n);
    s->peer = strdup(peer);
    media_peer *p = NULL;
    HASH_FIND_STR(m->peers, peer, p);
    if (!p) {
        p = calloc(1, sizeof *p);
        if (p) {
            p->jid = strdup(peer);
            if (p->jid)
                HASH_ADD_KEYPTR(hh, m->peers, p->jid, strlen(p->jid), p);
        }
    }
    if (!s->key || !s->peer || !p || !p->jid) {
        if (p && !p->jid)
            free(p);
        free(s->key);
        free(s->peer);
        free(s);
        return NULL;
    }
    snprintf(s->key, n, "%s %s", peer, ji->sid);
    memcpy(s->sid, ji->sid, sizeof s->sid);
    s->role = ji->role;
    s->live = l;
    HASH_ADD_KEYPTR(hh, m->sessions, s->key, strlen(s->key), s);
    s->peer_next = p->head;
    p->head = s;
    if (s->role == MJ_WATCH) {
        DL_APPEND(l->viewers, s);
        l->nviewers++;
    } else {
        l->ingest = s;
    }
    int failed = 0;
    for (size_t i = 0; i < ji->ncontents; i++) {
        failed |= content_setup(&s->contents[i], &ji->contents[i], ji->role);
        s->ncontents++;
    }
    if (failed) {
        session_free(m, s);
        return NULL;
    }
    for (size_t i = 0; i < s->ncontents; i++) {
        media_content *c = &s->contents[i];
        addr_add(m, s, (uint8_t)i, &c->rtp);
        addr_add(m, s, (uint8_t)i, &c->rtcp);
        if (s->role == MJ_INGEST) {
            /* encoders such as ffmpeg send RTCP from their RTP port + 1 */
            struct sockaddr_storage next = c->rtp;
            int port = next.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&next)->sin6_port)
                                                  : ntohs(((struct sockaddr_in *)&next)->sin_port);
            if (port < 65535) {
                if (next.ss_family == AF_INET6)
                    ((struct sockaddr_in6 *)&next)->sin6_port = htons((uint16_t)(port + 1));
                else
                    ((struct sockaddr_in *)&next)->sin_port = htons((uint16_t)(port + 1));
                if (!addr_find(m, (struct sockaddr *)&next))
                    addr_add(m, s, (uint8_t)i, &next);
            }
        }
    }
    return s;
}

static bool same_secret(const char *given, const char *stored)
{
    size_t a = strlen(given), b = strlen(stored);
    return a == b && CRYPTO_memcmp(given, stored, a) == 0;
}

/* The reservation behind an endpoint, or an error for the request. */
static int endpoint_reservation(media_service *m, const xml_node *iq, const char *id, reservation *res)
{
    const char *why = NULL;
    if (!reservation_id_valid(id) || reservation_get(&m->srv->res, id, res) != RES_OK)
        why = "no such live";
    else if (res->state == RES_CANCELLED)
        why = "this live was cancelled";
    else if (res->state == RES_AWAITING)
        why = "this live is not reconfirmed";
    if (!why)
        return 0;
    reservation_clear(res);
    reply_simple(m, iq, "cancel", "item-not-found", NULL, NULL, why);
    return -1;
}

static void handle_initiate(media_service *m, const xml_node *iq, const xml_node *jingle, const char *from,
                            const jid *fromj, const char *id)
{
    server *srv = m->srv;
    mj_initiate *ji = calloc(1, sizeof *ji);
    if (!ji) {
        reply_simple(m, iq, "wait", "resource-constraint", NULL, NULL, NULL);
        return;
    }
    mj_error e;
    reservation res;
    memset(&res, 0, sizeof res);
    char text[300], a[DATETIME_MAX], b[DATETIME_MAX];
    if (mj_parse_initiate(jingle, ji, &e) != 0) {
        reply_error(m, iq, &e);
        goto done;
    }
    if (session_find(m, from, ji->sid)) {
        reply_simple(m, iq, "cancel", "unexpected-request", NS_JINGLE_ERRORS, "out-of-order",
                     "this sid is already in use");
        goto done;
    }
    if (endpoint_reservation(m, iq, id, &res) != 0)
        goto done;
    char bare[2100];
    snprintf(bare, sizeof bare, "%s%s%s", fromj->node ? fromj->node : "", fromj->node ? "@" : "", fromj->domain);
    char owner_bare[RES_OWNER_MAX + 300];
    snprintf(owner_bare, sizeof owner_bare, "%s@%s", res.owner, srv->cfg.domain);
    bool is_owner = strcmp(bare, owner_bare) == 0;
    int64_t now = now_ms() / 1000;
    int64_t opens = res.start - srv->cfg.ingest_open_before_s, closes = res.end + srv->cfg.ingest_close_after_s;
    if (ji->role == MJ_INGEST) {
        if (!is_owner) {
            reply_simple(m, iq, "auth", "forbidden", NULL, NULL, "only the broadcaster of this live may stream to it");
            goto done;
        }
        if (!ji->has_password || !same_secret(ji->password, res.broadcast_password)) {
            reply_simple(m, iq, "auth", "not-authorized", NULL, NULL, "wrong broadcast password");
            goto done;
        }
        if (now < opens || now >= closes) {
            snprintf(text, sizeof text, "the ingest window of this live is %s to %s", datetime_format(opens, a),
                     datetime_format(closes, b));
            reply_simple(m, iq, "cancel", "not-allowed", NULL, NULL, text);
            goto done;
        }
        media_live *l = live_find(m, id);
        if (l && l->ingest) {
            reply_simple(m, iq, "cancel", "conflict", NULL, NULL, "this live is already on air");
            goto done;
        }
    } else {
        bool ok = res.level == RES_PUBLIC || is_owner || muc_has_occupant(srv, id, from);
        if (!ok && ji->has_password) {
            if (!same_secret(ji->password, res.shared_password)) {
                reply_simple(m, iq, "auth", "not-authorized", NULL, NULL, "wrong shared password");
                goto done;
            }
            ok = true;
        }
        if (!ok) {
            reply_simple(m, iq, "auth", "not-authorized", NULL, NULL,
                         "this live needs its shared password: enter its room or send it in <watch/>");
            goto done;
        }
        if (now < opens || now >= closes) {
            snprintf(text, sizeof text, "this live can be watched from %s to %s", datetime_format(opens, a),
                     datetime_format(closes, b));
            reply_simple(m, iq, "cancel", "not-allowed", NULL, NULL, text);
            goto done;
        }
        media_live *l = live_find(m, id);
        if (l && l->nviewers >= res.capacity) {
            snprintf(text, sizeof text, "this live has reached its capacity of %u viewers", res.capacity);
            reply_simple(m, iq, "wait", "resource-constraint", NULL, NULL, text);
            goto done;
        }
        if (l && l->ingest) {
            /* On air: the viewer must accept the live's codec. */
            bool any = false;
            for (size_t i = 0; i < ji->ncontents; i++)
                for (size_t j = 0; j < l->ingest->ncontents; j++)
                    if (ji->contents[i].media == l->ingest->contents[j].media)
                        for (size_t k = 0; k < ji->contents[i].npts; k++)
                            any |= mj_payload_same_codec(&ji->contents[i].pts[k], &l->ingest->contents[j].pt);
            if (!any) {
                char codecs[200];
                live_codecs(l, codecs, sizeof codecs);
                snprintf(text, sizeof text, "this live sends %s", codecs);
                reply_simple(m, iq, "modify", "not-acceptable", NULL, NULL, text);
                goto done;
            }
        }
    }
    if (!addrs_free(m, ji)) {
        reply_simple(m, iq, "cancel", "conflict", NULL, NULL,
                     "a candidate address is already used by another media session");
        goto done;
    }
    media_live *l = live_get(m, &res);
    media_session *s = l ? session_new(m, l, from, ji) : NULL;
    if (!s) {
        if (l)
            live_release(m, l);
        reply_simple(m, iq, "wait", "resource-constraint", NULL, NULL, NULL);
        goto done;
    }
    reply_result(m, iq);
    if (s->role == MJ_INGEST) {
        bool resumed = l->has_record;
        l->started_ms = l->last_packet_ms = now_ms();
        l->tokens_ms = 0;
        cache_clear(&l->cache);
        h264_au_free(&l->au);
        h264_au_init(&l->au, MEDIA_AU_MAX);
        memset(l->clocks, 0, sizeof l->clocks); /* a new stream: its own clocks */
        send_accept(m, s);
        log_write(&srv->log, LOG_INFO, "media", "live on air: %s by %s (%s), %zu content%s", l->id, from, s->sid,
                  s->ncontents, s->ncontents == 1 ? "" : "s");
        live_write(m, l, MEDIA_LIVE_ON_AIR, NULL, true, false);
        accept_waiting(m, l);
        fire_live(m, l, EVENT_LIVE_STARTED, NULL, resumed);
    } else {
        count_viewer(l);
        log_write(&srv->log, LOG_INFO, "media", "%s: viewer %s (%s) %s, %zu of %u", l->id, from, s->sid,
                  l->ingest ? "watching" : "waiting", l->nviewers, l->capacity);
        if (l->ingest) {
            viewer_contents(l, s);
            send_accept(m, s);
            send_cache(m, l, s);
        }
    }
done:
    reservation_clear(&res);
    OPENSSL_cleanse(ji, sizeof *ji);
    free(ji);
}

/* ---- browsers: the media WebSocket ---- */

/* Whether n more bytes fit a browser's queue (media.websocket_queue_bytes). */
static bool ws_fits(const media_wsv *v, size_t n)
{
    return web_ws_queued(v->ws) + n <= v->srv->cfg.media_websocket_queue_bytes;
}

/* Sends obj (taken) as a text message; when bounded, only if it fits the
 * browser's queue (ws_fits). */
static void ws_send_json_to(media_wsv *v, json_t *obj, bool bounded)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text)
        return;
    const char *parts[1] = {text};
    size_t lens[1] = {strlen(text)};
    if (!bounded || ws_fits(v, lens[0]))
        web_ws_send(v->ws, parts, lens, 1);
    free(text);
}

static void ws_send_json(media_wsv *v, json_t *obj)
{
    ws_send_json_to(v, obj, false);
}

/* Takes a browser whose token has not come off the pending list. */
static void ws_unpend(media_wsv *v)
{
    if (v->is_pending && v->srv->media) {
        DL_DELETE(v->srv->media->pending, v);
        v->is_pending = false;
    }
}

/* Tells the browser why, then closes with code and reason; it no longer
 * counts (the caller has taken it off its live). */
static void ws_refuse(media_wsv *v, const char *type, unsigned short code, const char *text)
{
    ws_unpend(v);
    v->is_done = true;
    ws_send_json(v, json_pack("{s:s,s:s}", "type", type, "message", text));
    web_ws_close_reason(v->ws, code, text);
}

/* A binary message's header (specs/media.md, "The stream"): kind, flags
 * (bit 0: keyframe), two zero bytes, the RTP timestamp big-endian. */
static void ws_header(uint8_t hdr[WS_HEADER_LEN], unsigned kind, bool is_key, uint32_t ts)
{
    const uint8_t h[WS_HEADER_LEN] = {(uint8_t)kind, is_key ? 1 : 0, 0, 0, (uint8_t)(ts >> 24), (uint8_t)(ts >> 16),
                                      (uint8_t)(ts >> 8), (uint8_t)ts};
    memcpy(hdr, h, WS_HEADER_LEN);
}

/* One access unit to one browser: the header (specs/media.md, "Browsers")
 * and the Annex B bytes.  A browser whose queue is over the limit misses it
 * and everything until the next keyframe; nothing ever waits for it. */
static void ws_deliver(media_wsv *v, const uint8_t *au, size_t len, uint32_t ts, bool is_key)
{
    if (v->is_done || (v->need_key && !is_key))
        return;
    if (!ws_fits(v, len)) {
        if (!v->need_key)
            log_write(&v->srv->log, LOG_DEBUG, "media", "%s: browser %s behind, dropping to the next keyframe",
                      v->live ? v->live->id : "?", v->peer);
        v->need_key = true;
        return;
    }
    uint8_t hdr[WS_HEADER_LEN];
    ws_header(hdr, WS_KIND_H264, is_key, ts);
    const char *parts[2] = {(const char *)hdr, (const char *)au};
    size_t lens[2] = {sizeof hdr, len};
    if (web_ws_send_binary(v->ws, parts, lens, 2) == 0 && is_key)
        v->need_key = false;
}

static void ws_deliver_all(void *ud, const uint8_t *au, size_t len, uint32_t ts, bool is_key)
{
    media_live *l = ud;
    media_wsv *v;
    DL_FOREACH(l->ws_viewers, v)
        ws_deliver(v, au, len, ts, is_key);
}

/* One Opus packet (an RTP payload of the live's audio) to the browsers that
 * are playing: kind 2 (specs/media.md, "Browsers").  Each stands alone, so
 * one that does not fit a browser's queue is dropped for it alone. */
static void ws_audio_all(media_live *l, const uint8_t *frame, size_t len, uint32_t ts)
{
    uint8_t hdr[WS_HEADER_LEN];
    ws_header(hdr, WS_KIND_OPUS, false, ts);
    const char *parts[2] = {(const char *)hdr, (const char *)frame};
    size_t lens[2] = {sizeof hdr, len};
    media_wsv *v;
    DL_FOREACH(l->ws_viewers, v)
    {
        if (v->is_done || !v->is_playing || !ws_fits(v, sizeof hdr + len))
            continue;
        web_ws_send_binary(v->ws, parts, lens, 2);
    }
}

/* A clock message to a playing browser, unless its queue is full (a slow
 * browser keeps the clock it has: a later report replaces it). */
static void ws_send_clock(media_wsv *v, unsigned kind, const ws_clock *c)
{
    ws_send_json_to(v,
                    json_pack("{s:s,s:I,s:I,s:I}", "type", "clock", "kind", (json_int_t)kind, "rtp",
                              (json_int_t)c->rtp, "ntp_ms", (json_int_t)c->ntp_ms),
                    true);
}

/* A sender report of the broadcaster's H.264 video or Opus audio (kind
 * WS_KIND_*): kept for the browsers that start later and sent to those
 * playing, so that a player can put both streams on the broadcaster's
 * wall clock (specs/media.md, "The stream"). */
static void ws_clock_all(media_live *l, unsigned kind, const uint8_t *sr, size_t len)
{
    if (kind < 1 || kind > 2)
        return;
    ws_clock *c = &l->clocks[kind - 1];
    if (rtcp_sender_clock(sr, len, &c->ntp_ms, &c->rtp) != 0)
        return;
    c->is_set = true;
    media_wsv *v;
    DL_FOREACH(l->ws_viewers, v)
    {
        if (!v->is_done && v->is_playing)
            ws_send_clock(v, kind, c);
    }
}

static void ws_deliver_one(void *ud, const uint8_t *au, size_t len, uint32_t ts, bool is_key)
{
    ws_deliver(ud, au, len, ts, is_key);
}

static void ws_detach(media_service *m, media_wsv *v, bool release);

/* Whether the live on air sends H.264 video (what browsers play). */
static bool live_has_h264(const media_live *l)
{
    for (size_t i = 0; l->ingest && i < l->ingest->ncontents; i++)
        if (l->ingest->contents[i].media == MJ_VIDEO && l->ingest->contents[i].codec == MEDIA_CODEC_H264)
            return true;
    return false;
}

/* The start of the decoder for a browser joining a live on air: the kept
 * keyframe group, depacketized for it alone (what is still incomplete
 * comes with everyone's next access unit).  A live without H.264 video
 * has nothing for it: it is refused. */
static void ws_send_start(media_service *m, media_live *l, media_wsv *v)
{
    if (!live_has_h264(l)) {
        ws_detach(m, v, false);
        ws_refuse(v, "error", WS_CLOSE_UNSUPPORTED, "this live sends no H.264 video, which the player needs");
        return;
    }
    ws_send_json(v, json_pack("{s:s}", "type", "playing"));
    v->is_playing = true;
    for (unsigned k = 0; k < 2; k++)
        if (l->clocks[k].is_set)
            ws_send_clock(v, k + 1, &l->clocks[k]);
    keyframe_cache *c = &l->cache;
    if (!c->is_valid || c->n == 0)
        return;
    h264_au a;
    h264_au_init(&a, MEDIA_AU_MAX);
    size_t off = 0;
    for (size_t i = 0; i < c->n; i++) {
        rtp_header h;
        if (rtp_parse(c->buf + off, c->lens[i], &h) == 0)
            h264_au_push(&a, c->buf + off, &h, ws_deliver_one, v);
        off += c->lens[i];
    }
    h264_au_free(&a);
}

/* The live has gone on air: its waiting browsers start. */
static void ws_live_started(media_service *m, media_live *l)
{
    media_wsv *v, *tmp;
    DL_FOREACH_SAFE(l->ws_viewers, v, tmp)
        ws_send_start(m, l, v);
}

/* Takes a browser off its live (it no longer counts). */
static void ws_detach(media_service *m, media_wsv *v, bool release)
{
    media_live *l = v->live;
    if (!l)
        return;
    DL_DELETE(l->ws_viewers, v);
    l->nviewers--;
    v->live = NULL;
    if (release)
        live_release(m, l);
}

/* The live has ended: every browser is told and closed. */
static void ws_live_ended(media_service *m, media_live *l, const char *text)
{
    media_wsv *v, *tmp;
    DL_FOREACH_SAFE(l->ws_viewers, v, tmp)
    {
        ws_detach(m, v, false);
        v->is_done = true;
        ws_send_json(v, json_pack("{s:s,s:s}", "type", "ended", "message", text ? text : "the live has ended"));
        web_ws_close_reason(v->ws, WS_CLOSE_NORMAL, "the live has ended");
    }
}

static void token_drop(media_service *m, media_token *t)
{
    HASH_DEL(m->tokens, t);
    m->ntokens--;
    OPENSSL_cleanse(t, sizeof *t);
    free(t);
}

/* The browser's token has come: it becomes a viewer of the token's live,
 * or is refused with the reason. */
static void ws_authorise(media_service *m, media_wsv *v)
{
    server *srv = m->srv;
    ws_unpend(v);
    media_token *t = NULL;
    if (v->token_len == MEDIA_TOKEN_LEN)
        HASH_FIND(hh, m->tokens, v->token, MEDIA_TOKEN_LEN, t);
    if (!t || t->expires_ms <= now_ms()) {
        if (t)
            token_drop(m, t);
        ws_refuse(v, "error", WS_CLOSE_POLICY, "unknown or expired token");
        return;
    }
    char id[RES_ID_LEN + 1];
    memcpy(id, t->live, sizeof id);
    token_drop(m, t); /* single use */
    reservation res;
    if (reservation_get(&srv->res, id, &res) != RES_OK) {
        ws_refuse(v, "error", WS_CLOSE_POLICY, "no such live");
        return;
    }
    char text[128];
    int64_t closes = res.end + srv->cfg.ingest_close_after_s;
    if (res.state == RES_CANCELLED || now_ms() / 1000 >= closes) {
        bool cancelled = res.state == RES_CANCELLED;
        reservation_clear(&res);
        ws_refuse(v, "ended", WS_CLOSE_NORMAL, cancelled ? "this live was cancelled" : "the live has ended");
        return;
    }
    media_live *l = live_find(m, id);
    if (l && l->nviewers >= res.capacity) {
        snprintf(text, sizeof text, "this live has reached its capacity of %u viewers", res.capacity);
        reservation_clear(&res);
        ws_refuse(v, "error", WS_CLOSE_TRY_LATER, text);
        return;
    }
    if (!l)
        l = live_get(m, &res);
    reservation_clear(&res);
    if (!l) {
        ws_refuse(v, "error", WS_CLOSE_TRY_LATER, "the server is out of memory");
        return;
    }
    DL_APPEND(l->ws_viewers, v);
    l->nviewers++;
    v->live = l;
    v->need_key = true;
    count_viewer(l);
    log_write(&srv->log, LOG_INFO, "media", "%s: browser %s %s, %zu of %u", l->id, v->peer,
              l->ingest ? "watching" : "waiting", l->nviewers, l->capacity);
    if (l->ingest)
        ws_send_start(m, l, v);
    else
        ws_send_json(v, json_pack("{s:s}", "type", "waiting"));
}

static bool ws_can_open(void *ud)
{
    server *srv = ud;
    return !srv->stopping && srv->media && !srv->media->stopping && srv->nconnections < srv->cfg.max_connections;
}

static void *ws_on_open(void *ud, web_ws *ws)
{
    server *srv = ud;
    media_wsv *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->srv = srv;
    v->ws = ws;
    snprintf(v->peer, sizeof v->peer, "%s", web_ws_peer(ws));
    v->opened_ms = now_ms();
    v->is_pending = true;
    /* What the kernel holds counts against the browser's delay as much as
     * our queue does: the same bound for both. */
    web_ws_set_send_buffer(ws, srv->cfg.media_websocket_queue_bytes);
    DL_APPEND(srv->media->pending, v);
    srv->nconnections++;
    return v;
}

static void ws_on_data(void *conn_ud, const char *data, size_t len, bool is_binary, bool is_last)
{
    media_wsv *v = conn_ud;
    media_service *m = v->srv->media;
    if (v->is_done || v->live || !m || m->stopping)
        return; /* a watching browser has nothing more to say */
    if (is_binary) {
        ws_refuse(v, "error", WS_CLOSE_UNSUPPORTED, "the token is a text message");
        return;
    }
    if (len > MEDIA_WS_RX - v->token_len) {
        ws_refuse(v, "error", WS_CLOSE_POLICY, "unknown or expired token");
        return;
    }
    memcpy(v->token + v->token_len, data, len);
    v->token_len += len;
    if (is_last)
        ws_authorise(m, v);
}

static void ws_on_close(void *conn_ud)
{
    media_wsv *v = conn_ud;
    server *srv = v->srv;
    ws_unpend(v);
    if (v->live && srv->media) {
        log_write(&srv->log, LOG_INFO, "media", "%s: browser %s left", v->live->id, v->peer);
        ws_detach(srv->media, v, true);
    }
    srv->nconnections--;
    OPENSSL_cleanse(v->token, sizeof v->token);
    free(v);
}

static const web_ws_handler ws_handler = {ws_can_open, ws_on_open, ws_on_data, ws_on_close, 0};

/* <token xmlns='urn:onair:media:1'/>: a media WebSocket token for a viewer
 * of the endpoint's live, under the rule of the Jingle viewers without a
 * password (in the room, the owner, or a public live). */
static void handle_token(media_service *m, const xml_node *iq, const char *from, const jid *fromj, const char *id)
{
    server *srv = m->srv;
    reservation res;
    if (endpoint_reservation(m, iq, id, &res) != 0)
        return;
    char bare[2100], owner_bare[RES_OWNER_MAX + 300], text[200], a[DATETIME_MAX], b[DATETIME_MAX];
    snprintf(bare, sizeof bare, "%s%s%s", fromj->node ? fromj->node : "", fromj->node ? "@" : "", fromj->domain);
    snprintf(owner_bare, sizeof owner_bare, "%s@%s", res.owner, srv->cfg.domain);
    bool ok = res.level == RES_PUBLIC || strcmp(bare, owner_bare) == 0 || muc_has_occupant(srv, id, from);
    int64_t now = now_ms() / 1000;
    int64_t opens = res.start - srv->cfg.ingest_open_before_s, closes = res.end + srv->cfg.ingest_close_after_s;
    if (!ok) {
        reply_simple(m, iq, "auth", "not-authorized", NULL, NULL,
                     "enter the live's room (with its shared password) to watch it");
    } else if (now < opens || now >= closes) {
        snprintf(text, sizeof text, "this live can be watched from %s to %s", datetime_format(opens, a),
                 datetime_format(closes, b));
        reply_simple(m, iq, "cancel", "not-allowed", NULL, NULL, text);
    } else if (m->ntokens >= MEDIA_TOKENS_MAX) {
        reply_simple(m, iq, "wait", "resource-constraint", NULL, NULL, "too many tokens outstanding");
    } else {
        media_token *t = calloc(1, sizeof *t);
        xml_node *r = t ? router_iq_result(iq) : NULL;
        xml_node *el = r ? xml_node_add_child(r, "token", NS_ONAIR_MEDIA) : NULL;
        if (!el) {
            free(t);
            xml_node_free(r);
            reply_simple(m, iq, "wait", "resource-constraint", NULL, NULL, NULL);
        } else {
            server_random_id(t->token, sizeof t->token, MEDIA_TOKEN_LEN);
            memcpy(t->live, res.id, sizeof t->live);
            t->expires_ms = now_ms() + (int64_t)srv->cfg.media_token_ttl_s * 1000;
            HASH_ADD(hh, m->tokens, token, MEDIA_TOKEN_LEN, t);
            m->ntokens++;
            char expires[32];
            web_format_time((uint64_t)t->expires_ms, expires, sizeof expires);
            xml_node_set_attr(el, "expires", expires);
            xml_node_set_attr(el, "path", MEDIA_WS_PATH);
            xml_node_set_attr(el, "protocol", MEDIA_WS_PROTOCOL);
            xml_node_add_text(el, t->token, MEDIA_TOKEN_LEN);
            router_route(srv, NULL, r);
        }
    }
    reservation_clear(&res);
}

/* Browsers that have not sent their token within c2s.auth_timeout_s
 * are closed. */
static void ws_pending_sweep(media_service *m)
{
    int64_t limit = now_ms() - (int64_t)m->srv->cfg.auth_timeout_s * 1000;
    media_wsv *v, *tmp;
    DL_FOREACH_SAFE(m->pending, v, tmp)
    {
        if (v->opened_ms <= limit)
            ws_refuse(v, "error", WS_CLOSE_POLICY, "no token came in time");
    }
}

static void tokens_sweep(media_service *m, bool all)
{
    int64_t now = now_ms();
    media_token *t, *tmp;
    HASH_ITER(hh, m->tokens, t, tmp)
    {
        if (all || t->expires_ms <= now)
            token_drop(m, t);
    }
}

/* ---- the router's entry ---- */

static const char *const ACTIONS[] = {
    "content-accept", "content-add",     "content-modify",   "content-reject",   "content-remove",
    "description-info", "security-info", "session-accept",   "session-info",     "session-initiate",
    "session-terminate", "transport-accept", "transport-info", "transport-reject", "transport-replace",
};

static bool known_action(const char *a)
{
    for (size_t i = 0; i < sizeof ACTIONS / sizeof ACTIONS[0]; i++)
        if (strcmp(a, ACTIONS[i]) == 0)
            return true;
    return false;
}

static void handle_jingle(media_service *m, const xml_node *iq, const xml_node *jingle, const char *from,
                          const jid *fromj, const char *id)
{
    const char *action = xml_node_attr(jingle, "action");
    if (!action || !*action) {
        reply_simple(m, iq, "modify", "bad-request", NULL, NULL, "a jingle element needs an action");
        return;
    }
    if (!known_action(action)) {
        reply_simple(m, iq, "modify", "bad-request", NULL, NULL, "unknown action");
        return;
    }
    if (strcmp(action, "session-initiate") == 0) {
        handle_initiate(m, iq, jingle, from, fromj, id);
        return;
    }
    const char *sid = xml_node_attr(jingle, "sid");
    media_session *s = sid ? session_find(m, from, sid) : NULL;
    if (!s || strcmp(s->live->id, id) != 0) {
        reply_simple(m, iq, "cancel", "item-not-found", NS_JINGLE_ERRORS, "unknown-session", NULL);
        return;
    }
    if (strcmp(action, "session-terminate") == 0) {
        reply_result(m, iq);
        session_end(m, s, "success", NULL, false, "broadcaster");
        return;
    }
    if (strcmp(action, "session-info") == 0) {
        bool payload = false;
        for (const xml_node *c = jingle->children; c; c = c->next)
            payload |= c->type == XML_ELEMENT;
        if (!payload)
            reply_result(m, iq);
        else
            reply_simple(m, iq, "cancel", "feature-not-implemented", NS_JINGLE_ERRORS, "unsupported-info", NULL);
        return;
    }
    reply_simple(m, iq, "cancel", "feature-not-implemented", NULL, NULL, "this action is not supported here");
}

static void disco_info(media_service *m, const xml_node *iq)
{
    xml_node *res = router_iq_result(iq);
    xml_node *q = res ? xml_node_add_child(res, "query", NS_DISCO_INFO_URI) : NULL;
    if (!q) {
        xml_node_free(res);
        return;
    }
    xml_node *ident = xml_node_add_child(q, "identity", NS_DISCO_INFO_URI);
    xml_node_set_attr(ident, "category", "component");
    xml_node_set_attr(ident, "type", "generic");
    xml_node_set_attr(ident, "name", "onair live media");
    static const char *const features[] = {NS_DISCO_INFO_URI,
                                           NS_JINGLE,
                                           NS_JINGLE_RTP,
                                           "urn:xmpp:jingle:apps:rtp:audio",
                                           "urn:xmpp:jingle:apps:rtp:video",
                                           NS_JINGLE_RAW_UDP,
                                           NS_ONAIR_MEDIA};
    for (size_t i = 0; i < sizeof features / sizeof features[0]; i++) {
        xml_node *f = xml_node_add_child(q, "feature", NS_DISCO_INFO_URI);
        xml_node_set_attr(f, "var", features[i]);
    }
    router_route(m->srv, NULL, res);
}

/* An IQ error in answer to one of our requests: a client refusing our
 * session-accept ends that session. */
static void handle_iq_error(media_service *m, const xml_node *iq, const char *from)
{
    const char *id = xml_node_attr(iq, "id");
    media_peer *p = NULL;
    HASH_FIND_STR(m->peers, from, p);
    if (!p || !id)
        return;
    for (media_session *s = p->head; s; s = s->peer_next) {
        if (strcmp(s->accept_id, id) == 0) {
            session_end(m, s, "failed-application", NULL, false, "broadcaster");
            return;
        }
    }
}

static router_result media_route(void *ud, server *srv, xml_node *stanza, const jid *from, const jid *to)
{
    media_service *m = ud;
    if (m->stopping || strcmp(stanza->name, "iq") != 0)
        return ROUTER_HANDLED; /* messages and presence to the service are ignored */
    const char *type = xml_node_attr(stanza, "type");
    const char *from_s = xml_node_attr(stanza, "from");
    if (!type || !from_s)
        return ROUTER_HANDLED;
    if (strcmp(type, "result") == 0)
        return ROUTER_HANDLED; /* acknowledgements of what we sent */
    if (strcmp(type, "error") == 0) {
        handle_iq_error(m, stanza, from_s);
        return ROUTER_HANDLED;
    }
    xml_node *payload = NULL;
    for (xml_node *c = stanza->children; c && !payload; c = c->next)
        if (c->type == XML_ELEMENT)
            payload = c;
    if (!payload) {
        router_reply_error(srv, stanza, "modify", "bad-request", NULL);
        return ROUTER_HANDLED;
    }
    if (strcmp(type, "get") == 0 && strcmp(payload->name, "query") == 0 &&
        strcmp(payload->ns, NS_DISCO_INFO_URI) == 0 && !xml_node_attr(payload, "node") && !to->resource) {
        disco_info(m, stanza);
        return ROUTER_HANDLED;
    }
    if (strcmp(type, "get") == 0 && to->node && !to->resource && strcmp(payload->name, "token") == 0 &&
        strcmp(payload->ns, NS_ONAIR_MEDIA) == 0) {
        handle_token(m, stanza, from_s, from, to->node);
        return ROUTER_HANDLED;
    }
    if (strcmp(type, "set") == 0 && to->node && !to->resource && strcmp(payload->name, "jingle") == 0 &&
        strcmp(payload->ns, NS_JINGLE) == 0) {
        handle_jingle(m, stanza, payload, from_s, from, to->node);
        return ROUTER_HANDLED;
    }
    router_reply_error(srv, stanza, "cancel", "service-unavailable", NULL);
    return ROUTER_HANDLED;
}

/* ---- timers and hooks ---- */

/* The window of a live has closed (its timer, written when it went on
 * air): the live ends; after a restart, a live that was interrupted ends
 * now in the store and with its event. */
static void on_window_close(void *ud, server *srv, schedule_kind kind, const char *id, int64_t due_ms)
{
    media_service *m = ud;
    (void)kind;
    (void)due_ms;
    if (m->stopping)
        return;
    media_live *l = live_find(m, id);
    char text[128], a[DATETIME_MAX];
    if (l) {
        int64_t closes = window_close(srv, l);
        if (now_ms() / 1000 < closes)
            return; /* a stale entry */
        snprintf(text, sizeof text, "the ingest window closed at %s", datetime_format(closes, a));
        live_end(m, l, "window", "expired", text, "success", "the live has ended", true);
        return;
    }
    store_txn *t;
    media_live_record rec;
    if (store_txn_begin(srv->store, false, &t) != STORE_OK)
        return;
    int rc = media_live_get(t, id, &rec);
    store_txn_abort(t);
    if (rc != STORE_OK || (rec.state != MEDIA_LIVE_INTERRUPTED && rec.state != MEDIA_LIVE_ON_AIR))
        return;
    reservation res;
    if (reservation_get(&srv->res, id, &res) != RES_OK)
        return;
    l = live_get(m, &res);
    reservation_clear(&res);
    if (!l)
        return;
    live_write(m, l, MEDIA_LIVE_ENDED, "window", false, true);
    log_write(&srv->log, LOG_INFO, "media", "live ended: %s (window; it was interrupted by a restart)", id);
    fire_live(m, l, EVENT_LIVE_ENDED, "window", false);
    live_release(m, l);
}

static int on_reservation_cancelled(void *ud, server *srv, event_type type, const void *payload)
{
    media_service *m = ud;
    const reservation *res = payload;
    (void)srv;
    (void)type;
    media_live *l = live_find(m, res->id);
    if (l && !m->stopping)
        live_end(m, l, "cancelled", "cancel", "this live was cancelled", "cancel", "this live was cancelled", true);
    return EVENT_CONTINUE;
}

static int mark_interrupted(void *ud, const media_live_record *r)
{
    char (*ids)[RES_ID_LEN + 1] = ((void **)ud)[0];
    size_t *n = ((void **)ud)[1];
    if (r->state == MEDIA_LIVE_ON_AIR && *n < 4096)
        memcpy(ids[(*n)++], r->id, RES_ID_LEN + 1);
    return 0;
}

static void recover(media_service *m)
{
    server *srv = m->srv;
    store_txn *t;
    if (store_txn_begin(srv->store, true, &t) != STORE_OK)
        return;
    static const size_t max = 4096;
    char(*ids)[RES_ID_LEN + 1] = calloc(max, RES_ID_LEN + 1);
    size_t n = 0;
    void *ud[2] = {ids, &n};
    if (ids)
        media_live_list(t, mark_interrupted, ud);
    int rc = STORE_OK;
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        media_live_record rec;
        rc = media_live_get(t, ids[i], &rec);
        if (rc == STORE_OK) {
            rec.state = MEDIA_LIVE_INTERRUPTED;
            snprintf(rec.reason, sizeof rec.reason, "restart");
            rc = media_live_put(t, &rec);
        }
    }
    if (rc == STORE_OK && n > 0)
        rc = store_txn_commit(t);
    else
        store_txn_abort(t);
    if (n > 0)
        log_write(&srv->log, rc == STORE_OK ? LOG_INFO : LOG_ERROR, "media",
                  "%zu live%s on air before the restart marked interrupted%s", n, n == 1 ? "" : "s",
                  rc == STORE_OK ? "" : " (failed)");
    free(ids);
}

/* ---- module ---- */

static int open_socket(media_service *m, char *err, size_t errlen)
{
    server *srv = m->srv;
    const config *cfg = &srv->cfg;
    if (!cfg->media_public_ip && (strcmp(cfg->media_listen, "0.0.0.0") == 0 || strcmp(cfg->media_listen, "::") == 0)) {
        snprintf(err, errlen, "%s:0: media.public_ip: needed when media.listen is %s (clients must be told an address)",
                 cfg->path, cfg->media_listen);
        return -1;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    bool v6 = strchr(cfg->media_listen, ':') != NULL;
    int rc = v6 ? uv_ip6_addr(cfg->media_listen, cfg->media_port, (struct sockaddr_in6 *)&ss)
                : uv_ip4_addr(cfg->media_listen, cfg->media_port, (struct sockaddr_in *)&ss);
    if (rc == 0)
        rc = uv_udp_init(srv->loop, &m->udp);
    if (rc != 0) {
        snprintf(err, errlen, "%s:0: media.listen: not an IP address: \"%s\"", cfg->path, cfg->media_listen);
        return -1;
    }
    m->udp.data = m;
    m->udp_open = true;
    rc = uv_udp_bind(&m->udp, (const struct sockaddr *)&ss, 0);
    if (rc != 0) {
        snprintf(err, errlen, "cannot bind the media socket to %s port %d: %s", cfg->media_listen, cfg->media_port,
                 uv_strerror(rc));
        return -1;
    }
    uv_os_fd_t fd;
    uv_fileno((uv_handle_t *)&m->udp, &fd);
    m->fd = fd;
    int size = (int)cfg->media_socket_buffer_bytes;
    /* The FORCE variants pass the system's maximum when allowed. */
    if (setsockopt(m->fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0)
        setsockopt(m->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    if (setsockopt(m->fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
        setsockopt(m->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_udp_getsockname(&m->udp, (struct sockaddr *)&bound, &blen);
    m->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    snprintf(m->ip, sizeof m->ip, "%s", cfg->media_public_ip ? cfg->media_public_ip : cfg->media_listen);
    rc = uv_udp_recv_start(&m->udp, on_alloc, on_recv);
    if (rc != 0) {
        snprintf(err, errlen, "cannot read the media socket: %s", uv_strerror(rc));
        return -1;
    }
    log_write(&srv->log, LOG_INFO, "media", "media on udp %s port %d (announced as %s), endpoints on %s",
              cfg->media_listen, m->port, m->ip, srv->media_domain);
    return 0;
}

int media_start(server *srv, char *err, size_t errlen)
{
    media_service *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    m->srv = srv;
    m->fd = -1;
    srv->media = m;
    if (media_srtp_init() != 0) {
        snprintf(err, errlen, "cannot initialise libsrtp2");
        return -1;
    }
    if (router_register_service(&srv->router, srv->media_domain, media_route, m) != 0) {
        snprintf(err, errlen, "%s:0: media.domain: \"%s\" cannot be registered (taken, or too many services)",
                 srv->cfg.path, srv->media_domain);
        return -1;
    }
    schedule_handle(&srv->schedule, SCHEDULE_INGEST_CLOSE, on_window_close, m);
    if (web_websocket(srv, MEDIA_WS_PATH, MEDIA_WS_PROTOCOL, MEDIA_WS_RX, &ws_handler, srv) != 0) {
        snprintf(err, errlen, "cannot register the media WebSocket");
        return -1;
    }
    if (event_hook_add(&srv->events, EVENT_RESERVATION_CANCELLED, 0, on_reservation_cancelled, m) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    recover(m);
    return open_socket(m, err, errlen);
}

void media_stop(server *srv)
{
    media_service *m = srv->media;
    if (!m || m->stopping)
        return;
    media_live *l, *tmp;
    HASH_ITER(hh, m->lives, l, tmp)
    {
        live_end(m, l, "shutdown", "gone", "the server is shutting down", "gone", "the server is shutting down", true);
    }
    m->stopping = true;
    if (m->udp_open) {
        m->udp_open = false;
        uv_udp_recv_stop(&m->udp);
        uv_close((uv_handle_t *)&m->udp, NULL);
    }
}

void media_free(server *srv)
{
    media_service *m = srv->media;
    if (!m)
        return;
    media_live *l, *tmp;
    HASH_ITER(hh, m->lives, l, tmp)
    {
        media_session *s, *st;
        DL_FOREACH_SAFE(l->viewers, s, st)
            session_free(m, s);
        media_wsv *v, *vt;
        DL_FOREACH_SAFE(l->ws_viewers, v, vt)
            ws_detach(m, v, false);
        if (l->ingest)
            session_free(m, l->ingest);
        HASH_DEL(m->lives, l);
        live_free(l);
    }
    tokens_sweep(m, true);
    media_wsv *pv, *pt;
    DL_FOREACH_SAFE(m->pending, pv, pt)
        ws_unpend(pv);
    free(m->slots);
    free(m->msgs);
    free(m->iov);
    free(m);
    srv->media = NULL;
    media_srtp_shutdown();
}

void media_sweep(server *srv)
{
    media_service *m = srv->media;
    if (!m || m->stopping)
        return;
    int64_t now = now_ms();
    tokens_sweep(m, false);
    ws_pending_sweep(m);
    media_live *l, *tmp;
    HASH_ITER(hh, m->lives, l, tmp)
    {
        char text[96];
        if (l->ingest && now - l->last_packet_ms >= (int64_t)srv->cfg.media_ingest_timeout_s * 1000) {
            snprintf(text, sizeof text, "no media for %u seconds", srv->cfg.media_ingest_timeout_s);
            live_end(m, l, "timeout", "timeout", text, "success", "the live has ended", true);
            continue;
        }
        if (!l->ingest && now / 1000 >= window_close(srv, l)) {
            live_end(m, l, "window", "expired", "the ingest window has closed", "expired",
                     "the ingest window has closed", true);
            continue;
        }
        if (l->ingest && l->counts_dirty && now - l->counts_written_ms >= COUNT_WRITE_MS)
            live_write(m, l, MEDIA_LIVE_ON_AIR, NULL, false, false);
    }
}

void media_reload(server *srv, const config *next)
{
    srv->cfg.media_bandwidth_headroom_percent = next->media_bandwidth_headroom_percent;
    srv->cfg.media_ingest_timeout_s = next->media_ingest_timeout_s;
    srv->cfg.media_feedback_per_s = next->media_feedback_per_s;
    srv->cfg.media_keyframe_request_interval_ms = next->media_keyframe_request_interval_ms;
    srv->cfg.media_keyframe_cache_bytes = next->media_keyframe_cache_bytes;
    srv->cfg.media_token_ttl_s = next->media_token_ttl_s;
    srv->cfg.media_websocket_queue_bytes = next->media_websocket_queue_bytes;
}

void media_peer_gone(server *srv, const char *full_jid)
{
    media_service *m = srv->media;
    if (!m || m->stopping)
        return;
    /* Ending one session may end others of the same peer (a broadcaster
     * watching its own live) and frees the peer with its last: look it up
     * again each time. */
    for (;;) {
        media_peer *p = NULL;
        HASH_FIND_STR(m->peers, full_jid, p);
        if (!p || !p->head)
            break;
        session_end(m, p->head, "gone", NULL, false, "broadcaster");
    }
}

bool media_is_on_air(const server *srv, const char *id)
{
    media_live *l = live_find(srv->media, id);
    return l && l->ingest;
}

size_t media_viewer_count(const server *srv, const char *id)
{
    media_live *l = live_find(srv->media, id);
    return l ? l->nviewers : 0;
}

const char *media_public_ip(const server *srv)
{
    return srv->media ? srv->media->ip : "";
}

int media_port(const server *srv)
{
    return srv->media ? srv->media->port : 0;
}

const media_stats *media_get_stats(const server *srv)
{
    static const media_stats none;
    return srv->media ? &srv->media->stats : &none;
}

size_t media_lives_on_air(const server *srv)
{
    size_t n = 0;
    if (!srv->media)
        return 0;
    for (media_live *l = srv->media->lives; l; l = l->hh.next)
        n += l->ingest != NULL;
    return n;
}

size_t media_viewers_total(const server *srv)
{
    size_t n = 0;
    if (!srv->media)
        return 0;
    for (media_live *l = srv->media->lives; l; l = l->hh.next)
        n += l->nviewers;
    return n;
}

void media_broadcast_of(const server *srv, const char *id, media_broadcast *out)
{
    memset(out, 0, sizeof *out);
    store_txn *t;
    if (store_txn_begin(srv->store, false, &t) == STORE_OK) {
        media_live_record rec;
        if (media_live_get(t, id, &rec) == STORE_OK) {
            out->has_aired = true;
            out->aired_ms = rec.first_aired_ms;
            out->ended_ms = rec.state == MEDIA_LIVE_ON_AIR ? 0 : rec.ended_ms;
            out->viewers_peak = rec.viewers_peak;
            out->viewers_total = rec.viewers_total;
            snprintf(out->reason, sizeof out->reason, "%s", rec.reason);
        }
        store_txn_abort(t);
    }
    media_live *l = live_find(srv->media, id);
    if (l && l->ingest) {
        out->is_on_air = true;
        out->ended_ms = 0;
        out->reason[0] = '\0';
        out->viewers_peak = l->peak;
        out->viewers_total = l->total;
    }
}
