/* media.h - the live stream (specs/media.md): a Jingle service on the host
 * srv->media_domain whose endpoints are the reservations
 * (`<reservation id>@<media host>`), one UDP socket for every live's SRTP,
 * the ingest checks (owner, broadcast password, window, one broadcaster at
 * a time, bandwidth), the relay to viewers (one outbound SRTP context each,
 * the latest keyframe group for late joiners, RTCP feedback back to the
 * broadcaster, rate-limited) and the viewer counts.
 *
 * Media sessions live in memory only, with their keys; the broadcasts'
 * records (media_store.h) and the window-close timers are in the store.
 * Everything runs on the server loop; the hot path (a packet in, N packets
 * out) allocates nothing once the batch buffers have grown.
 *
 * Events.  EVENT_LIVE_STARTED when a live goes on air (the broadcaster's
 * session-accept), EVENT_LIVE_ENDED when it ends, with a media_live_event
 * (below), borrowed for the call.
 */
#ifndef ONAIR_MEDIA_H
#define ONAIR_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

struct server;
struct config;

/* The payload of EVENT_LIVE_STARTED / EVENT_LIVE_ENDED.  Starts with the
 * event_live of event.h, so a hook (or the plugin event map) that knows only
 * event_live reads the common fields; media hooks may read the rest. */
typedef struct media_live_event {
    event_live live;      /* reservation_id, channel, room (the live's room JID), time_ms */
    const char *reason;   /* ENDED: "broadcaster", "window", "timeout", "cancelled", "shutdown"; STARTED: NULL */
    bool resumed;         /* STARTED: it had been on air before (its broadcaster came back) */
    uint32_t viewers_peak;  /* ENDED: viewer sessions at once, at most, over the whole broadcast */
    uint32_t viewers_total; /* ENDED: viewer sessions accepted over the whole broadcast */
} media_live_event;

/* Counters since start-up (onairctl health). */
typedef struct media_stats {
    uint64_t packets_in, bytes_in;  /* authenticated ingest packets */
    uint64_t auth_failed;           /* ingest packets whose authentication failed */
    uint64_t replayed;              /* ingest packets replayed */
    uint64_t unknown_source;        /* datagrams from no session's address */
    uint64_t policed;               /* ingest packets over the channel's bandwidth */
    uint64_t packets_out;           /* protected packets sent to viewers */
    uint64_t send_errors;           /* packets the socket did not take */
    uint64_t feedback_forwarded;    /* RTCP feedback packets sent to broadcasters */
    uint64_t feedback_limited;      /* dropped by the rate limits */
    uint64_t feedback_rejected;     /* viewer RTCP that failed authentication or was not RTCP */
} media_stats;

/* After muc_start: opens the UDP socket (media.listen, media.port),
 * registers the service for srv->media_domain, the schedule handler of the
 * window close and the reservation hooks, and marks lives that were on air
 * before a restart as interrupted.  0, or -1 with a message in err. */
int media_start(struct server *srv, char *err, size_t errlen);
/* Shutdown (before the streams close): every session is terminated
 * ("gone"), lives on air end, the socket closes. */
void media_stop(struct server *srv);
/* After the loop has ended. */
void media_free(struct server *srv);
/* Once a second: ingest timeouts, windows closing for waiting viewers,
 * viewer counts written to the store. */
void media_sweep(struct server *srv);
/* SIGHUP: the media keys that may change while running. */
void media_reload(struct server *srv, const struct config *next);
/* A bound XMPP session (full JID) has ended: its media sessions end. */
void media_peer_gone(struct server *srv, const char *full_jid);

/* For the room and the listings.  Whether live `id` is on air, and its
 * viewer sessions now (waiting or watching). */
bool media_is_on_air(const struct server *srv, const char *id);
size_t media_viewer_count(const struct server *srv, const char *id);
/* What "my channel" shows of a live's broadcast: from its record in the
 * store and, while it is on air, the counts in memory. */
typedef struct media_broadcast {
    bool has_aired;          /* it has been on air */
    bool is_on_air;
    int64_t aired_ms;        /* the first time it went on air */
    int64_t ended_ms;        /* 0 while on air or never */
    uint32_t viewers_peak, viewers_total;
    char reason[16];         /* why it ended ("" while on air) */
} media_broadcast;
/* Fills out (zeroed when the live never went on air). */
void media_broadcast_of(const struct server *srv, const char *id, media_broadcast *out);
/* The ingest parameters a live's settings carry (specs/media.md,
 * "Settings"): the server's media address and what it takes.  Strings are
 * static or owned by the media service (valid while it runs). */
#define MEDIA_INGEST_SRTP "AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32, AEAD_AES_128_GCM"
#define MEDIA_INGEST_VIDEO "H264/90000 packetization-mode=1, VP8/90000"
#define MEDIA_INGEST_AUDIO "opus/48000/2, PCMU/8000, PCMA/8000, G722/8000"
/* The UDP address announced to clients ("" / 0 before start). */
const char *media_public_ip(const struct server *srv);
int media_port(const struct server *srv);
const media_stats *media_get_stats(const struct server *srv);
size_t media_lives_on_air(const struct server *srv);
size_t media_viewers_total(const struct server *srv);

#endif
