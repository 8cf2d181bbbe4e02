/* muc.h - the live chat rooms: a XEP-0045 Multi-User Chat service on the
 * host srv->muc_domain whose rooms exist only because of reservations
 * (specs/muc.md).
 *
 * Lifecycle.  Reconfirming a reservation enters a SCHEDULE_ROOM_OPEN timer
 * (reservation.c); when it fires the room `<reservation id>@<muc host>`
 * opens, its record is written with the timers of its notices and of its
 * closing, and "room opened" is raised.  At the closing time (or when the
 * reservation is cancelled) every occupant gets the XEP-0045 destroy
 * presence, the room's record is marked closed and "room closed" is raised
 * with the room's whole message log.  Users cannot create rooms.
 *
 * Durability.  Every groupchat message is appended to the room's log in the
 * store ("muc_log") before it is fanned out: messages accepted during one
 * loop turn are committed in one synced transaction at the end of the turn
 * (a libuv check handle), then delivered.  Rooms still open in the store
 * are reopened at start-up with the tail of their log as history.
 *
 * Addressing.  Occupants are known by their real full JID only; every
 * stanza leaves through the router (router_route, or router_deliver_spliced
 * for the serialize-once fan-out), never through a session pointer, so
 * remote occupants need no change here.
 *
 * Event payloads (event.h) are borrowed for the call; hooks copy what they
 * keep.
 */
#ifndef ONAIR_MUC_H
#define ONAIR_MUC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server;
struct config;
struct reservation;

#define MUC_NICK_MAX 64   /* characters of a nickname */
#define MUC_INTRO_MAX 200 /* characters of a self-introduction (longer ones are cut) */
#define MUC_SUBJECT_MAX 200

/* One message of a room's log. */
typedef struct muc_log_entry {
    uint64_t seq;     /* 1, 2, ... in the room */
    int64_t time_ms;  /* when the room accepted it (wall clock) */
    const char *nick; /* the sender's nickname; "" for the room's own notices */
    const char *jid;  /* the sender's real full JID; "" for notices */
    const char *body;
    const char *id;   /* the sender's stanza id ("" if none) */
    bool notice;      /* sent by the room itself (schedule notices) */
    bool addressed;   /* addressed to the broadcaster: the body starts with one of the
                         broadcaster's nicknames in the room (or, when the broadcaster is
                         not in it, the owner's account name) followed by ':' or ',';
                         never set on the broadcaster's own messages (specs/muc.md) */
} muc_log_entry;

/* EVENT_ROOM_OPENED */
typedef struct muc_room_opened {
    const char *room_id;  /* the reservation ID */
    const char *room_jid; /* <id>@<muc host> */
    const struct reservation *reservation;
    int64_t close_at;     /* seconds since the epoch */
    bool reopened;        /* reopened at start-up (it was open before a restart) */
} muc_room_opened;

/* EVENT_ROOM_MESSAGE: a groupchat message (or notice) committed to the log. */
typedef struct muc_room_message {
    const char *room_id;
    const char *room_jid;
    const muc_log_entry *entry;
} muc_room_message;

/* EVENT_ROOM_CLOSED: the room was destroyed; log[0..nlog) is every message
 * it ever accepted, in order. */
typedef struct muc_room_closed {
    const char *room_id;
    const char *room_jid;
    const char *reason;   /* "ended" (closing time) or "cancelled" (the reservation was) */
    int64_t closed_at;    /* seconds since the epoch */
    const muc_log_entry *log;
    size_t nlog;
} muc_room_closed;

/* What a live's page shows of its room (reservation_http.c). */
typedef enum muc_chat_state { MUC_CHAT_NOT_OPEN, MUC_CHAT_OPEN, MUC_CHAT_CLOSED } muc_chat_state;
typedef struct muc_chat_status {
    muc_chat_state state;
    int64_t opens_at;  /* seconds: when the room opened, or opens by the current offsets (for a live
                        * awaiting reconfirmation, if it is reconfirmed by then) */
    int64_t closes_at; /* seconds: when the room closes or closed */
} muc_chat_status;

/* The state of res's room at now (seconds): open (with its own times) while
 * the service has it open, else closed once cancelled or past its closing
 * time, else not open yet.  res is borrowed for the call. */
void muc_chat_status_of(struct server *srv, const struct reservation *res, int64_t now, muc_chat_status *out);

/* After reservation_service_start: registers the service for
 * srv->muc_domain, the schedule handlers and the reservation hooks, and
 * reopens the rooms the store has open.  Returns 0, or -1 with a message in
 * err. */
int muc_start(struct server *srv, char *err, size_t errlen);
/* Shutdown (before the streams close): commits what is pending, tells
 * every occupant the service is going (status 332) and stops taking
 * stanzas.  The rooms stay open in the store. */
void muc_stop(struct server *srv);
/* After the loop has ended: frees the rooms. */
void muc_free(struct server *srv);
/* Once a second (the server's sweep): occupant counts of restricted rooms,
 * and the logs of rooms closed muc.closed_log_keep_s ago removed. */
void muc_sweep(struct server *srv);
/* For onairctl health: the entries of every room's log in the store (0 if
 * it cannot be read) and the closed rooms' logs removed since the start. */
void muc_log_figures(struct server *srv, size_t *entries, uint64_t *removed);
/* Whether full_jid is an occupant of the open room of reservation room_id
 * (the media service lets room occupants watch without the password). */
bool muc_has_occupant(const struct server *srv, const char *room_id, const char *full_jid);
/* SIGHUP: the muc.* keys of next apply at once (history_max to rooms opened later). */
void muc_reload(struct server *srv, const struct config *next);

#endif
