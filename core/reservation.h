/* reservation.h - channels and reservations: the rules of booking a live
 * slot (availability, validation, fees, the two-stage booking, the
 * reconfirmation deadline, cancellation, settings, the public schedule) over
 * the store.  Two thin adapters expose it: ad-hoc commands
 * (reservation_adhoc.c) and the JSON HTTP API (reservation_http.c).
 *
 * Pure logic: no sockets, no timers.  Every call takes the current time from
 * its caller, so the rules are tested with any clock.  What the rest of the
 * server must learn (events, new timers) leaves through res_hooks.
 *
 * Times are seconds since the epoch (UTC).  A reservation owns its strings
 * (reservation_clear frees them); everything a function returns through a
 * reservation * belongs to the caller.  Passwords are kept sealed in the
 * store (secret.h) and in clear only in the structs handed to the owner's
 * requests; no function here logs.
 */
#ifndef ONAIR_RESERVATION_H
#define ONAIR_RESERVATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "secret.h"
#include "store.h"

#define RES_ID_LEN 26 /* 128 random bits in lower-case base32: URL-safe and a valid JID localpart */
#define CHANNEL_ID_MAX 32
#define CHANNEL_NAME_MAX 64 /* characters */
#define RES_TITLE_MAX 100
#define RES_GENRE_MAX 40
#define RES_SUMMARY_MAX 20
#define RES_DETAIL_MAX 200
#define RES_URL_MAX 500
#define RES_PASSWORD_MIN 4
#define RES_PASSWORD_MAX 128
#define RES_FRIENDS_MAX 50
#define RES_ADDRESS_MAX 320
#define RES_OWNER_MAX 256 /* bytes of the owner's account name */
#define RES_TRANSCRIPT_MAX 16

typedef struct channel {
    char id[CHANNEL_ID_MAX + 1];   /* [a-z0-9_-], 1 to 32 */
    char name[CHANNEL_NAME_MAX * 4 + 1]; /* UTF-8 */
    uint32_t capacity;             /* viewers at once, besides the broadcaster */
    uint32_t bandwidth_kbps;       /* of the live stream */
    uint64_t price_per_hour;       /* in the smallest unit of the currency */
} channel;

typedef enum res_level { RES_PUBLIC = 0, RES_PASSWORD = 1, RES_SECRET = 2 } res_level;

typedef enum res_state {
    RES_AWAITING = 0, /* booked, awaiting reconfirmation */
    RES_RECONFIRMED,
    RES_CANCELLED,
    RES_LIVE,
    RES_DONE
} res_state;

typedef struct reservation {
    char id[RES_ID_LEN + 1];
    char *owner;   /* account local part */
    char *email;   /* the owner's e-mail when booked ("" if none) */
    char channel[CHANNEL_ID_MAX + 1];
    int64_t start, end;
    int64_t deadline; /* reconfirmation deadline */
    res_level level;
    res_state state;
    char *title, *genre, *summary, *detail, *url;
    bool show_email, show_url;
    char *broadcast_password, *shared_password; /* clear text; shared is "" for public */
    char *friends;  /* addresses, one per line ("" if none) */
    uint32_t capacity, bandwidth_kbps;
    uint64_t price_per_hour, fee;
    uint64_t viewers;
    int64_t created, reconfirmed_at, cancelled_at;
    char cancel_reason[16]; /* "owner", "deadline", "operator" */
    /* The part of the room's transcript the owner receives (F15):
     * "all", "live" (between start and end), "addressed" (messages
     * addressed to the broadcaster), or "" for the server's default; and
     * whether it keeps the room's notices: "true", "false", or "". */
    char transcript[RES_TRANSCRIPT_MAX + 1];
    char transcript_notices[8];
} reservation;

/* A booking form as submitted, field by field (borrowed strings; NULL or ""
 * = absent).  Booleans as "true"/"false"/"1"/"0"; friends one per line. */
typedef struct res_form {
    const char *channel, *start, *end, *level, *title, *genre, *show_email, *show_url, *url;
    const char *broadcast_password, *shared_password, *friends, *summary, *detail;
    const char *transcript, *transcript_notices;
} res_form;

/* Result codes.  Every failure also fills a res_error. */
enum {
    RES_OK = 0,
    RES_E_INVALID = -1,   /* a field is missing or wrong (400 / bad-request) */
    RES_E_CONFLICT = -2,  /* the slot is taken, or the state forbids it (409 / conflict) */
    RES_E_FORBIDDEN = -3, /* not the owner (403 / forbidden) */
    RES_E_NOTFOUND = -4,  /* no such reservation or channel (404 / item-not-found) */
    RES_E_GONE = -5,      /* cancelled at the deadline: book again (410 / not-allowed) */
    RES_E_INTERNAL = -6   /* store failure (500 / internal-server-error) */
};

typedef struct res_error {
    char field[24];    /* the form field at fault, "" if none */
    char message[256]; /* for the user; never contains a password */
} res_error;

/* Rules from the configuration (reservation.* and schedule.* keys). */
typedef struct res_policy {
    int64_t slot_s;             /* granularity of slots */
    int64_t max_duration_s;
    int64_t max_advance_s;      /* how far ahead a start may be */
    int64_t reconfirm_before_s; /* deadline = start - this */
    int64_t ingest_open_before_s, ingest_close_after_s;
    int64_t room_open_before_s; /* the room-open timer: start - this (written at reconfirmation) */
    const char *currency;       /* borrowed for the module's life */
    const char *room_domain;    /* room JIDs: <id>@room_domain */
    const char *media_domain;   /* ingest endpoint: <id>@media_domain */
    const char *page_url;       /* live pages: <page_url><id> */
} res_policy;

/* Hooks to the rest of the server, called after a change has committed.
 * event_type is an event.h value; r is borrowed for the call. */
typedef struct res_hooks {
    void (*event)(void *ud, int event_type, const reservation *r);
    /* A timer entry was added at when_ms (schedule.h). */
    void (*scheduled)(void *ud, int64_t when_ms);
    void *ud;
} res_hooks;

typedef struct reservations {
    store *store;      /* borrowed */
    secret_key key;
    res_policy policy; /* strings borrowed */
    res_hooks hooks;
} reservations;

/* Sets up the module over an open store.  key is copied.  Returns 0. */
int reservations_init(reservations *rs, store *s, const secret_key *key, const res_policy *policy,
                      const res_hooks *hooks);
void reservations_free(reservations *rs);

/* ---- channels ---- */

/* Checks a channel's fields; RES_OK or RES_E_INVALID with the field. */
int channel_check(const channel *ch, res_error *e);
/* Creates or replaces a channel. */
int channel_put(reservations *rs, const channel *ch, res_error *e);
int channel_get(reservations *rs, const char *id, channel *out);
/* Refused (RES_E_CONFLICT) while a reservation that has not ended uses it. */
int channel_delete(reservations *rs, const char *id, int64_t now, res_error *e);
/* cb is called for each channel in id order (borrowed); non-zero stops. */
int channel_list(reservations *rs, int (*cb)(void *ud, const channel *ch), void *ud);

/* ---- booking ---- */

/* Stage one: checks a form for `owner` at time now (every rule, including a
 * free slot) and fills *draft (fee, bandwidth, capacity, the owner's e-mail;
 * no ID yet).  The caller clears draft.  RES_OK or an error naming the field. */
int reservation_prepare(reservations *rs, const char *owner, const res_form *f, int64_t now, reservation *draft,
                        res_error *e);
/* Stage two: stores a prepared draft in one write transaction that checks
 * the slot again (of two bookings of one slot, exactly one wins), gives it
 * its ID, and enters its deadline timer.  Raises "reservation booked". */
int reservation_book(reservations *rs, reservation *draft, int64_t now, res_error *e);

/* On failure, every function below leaves its reservation * out cleared
 * (nothing to free). */

/* Reads a reservation (passwords opened).  RES_E_NOTFOUND if none. */
int reservation_get(reservations *rs, const char *id, reservation *out);
/* The state a reservation shows at time now ("done" once over). */
res_state reservation_state_at(const reservation *r, int64_t now);

/* The owner reconfirms before the deadline: stores the settings document,
 * lists the live publicly (unless secret), enters the room-open timer
 * (SCHEDULE_ROOM_OPEN at start - room_open_before_s), raises "reservation
 * reconfirmed".
 * Reconfirming again returns the same settings.  Past the deadline the
 * reservation is cancelled (if the timer has not done it yet) and RES_E_GONE
 * is returned. */
int reservation_reconfirm(reservations *rs, const char *owner, const char *id, int64_t now, reservation *out,
                          res_error *e);
/* The owner (or, with owner NULL, the operator) cancels a reservation that
 * has not ended and is not live.  Raises "reservation cancelled". */
int reservation_cancel(reservations *rs, const char *owner, const char *id, int64_t now, reservation *out,
                       res_error *e);
/* The deadline timer of id fired at now: cancels it if still awaiting
 * reconfirmation and the deadline has passed.  Returns 1 if it cancelled, 0
 * if nothing was due, or a negative code. */
int reservation_expire(reservations *rs, const char *id, int64_t now);

/* The owner's reservations, in order of start (borrowed for the call). */
int reservation_list_owner(reservations *rs, const char *owner, int (*cb)(void *ud, const reservation *r),
                           void *ud);
/* Every reservation, in ID order (operator listings). */
int reservation_list_all(reservations *rs, int (*cb)(void *ud, const reservation *r), void *ud);
/* Reconfirmed public and password-level lives that have not ended at now,
 * in order of start, at most limit of them.  Secret lives are never here. */
int reservation_list_public(reservations *rs, int64_t now, size_t limit, int (*cb)(void *ud, const reservation *r),
                            void *ud);

/* ---- availability ---- */

/* CLOSED: not bookable although free (in the past, after the booking
 * cut-off at the reconfirmation deadline, or beyond the booking horizon). */
typedef enum res_slot_state { SLOT_FREE = 0, SLOT_BOOKED = 1, SLOT_CLOSED = 2 } res_slot_state;
typedef struct res_slot {
    int64_t start, end;
    res_slot_state state;
} res_slot;
/* Every channel's slots on the local date "YYYY-MM-DD" (server zone):
 * cb(ud, channel, slots, n) per channel, all borrowed for the call. */
int reservation_availability(reservations *rs, const char *date, int64_t now,
                             int (*cb)(void *ud, const channel *ch, const res_slot *slots, size_t n), void *ud,
                             res_error *e);

/* ---- settings ---- */

typedef struct res_settings {
    char id[RES_ID_LEN + 1];
    int64_t start, end;
    int64_t ingest_open, ingest_close;
    char *ingest_jid;      /* Jingle endpoint of the live */
    char *room_jid;        /* chat room */
    char *page_url;        /* web page of the live */
    uint32_t bandwidth_kbps, capacity;
    char *title, *summary, *friends, *shared_password;
    res_level level;
    int64_t issued;
} res_settings;
/* The stored settings document of a reconfirmed reservation, for its owner
 * only (RES_E_FORBIDDEN otherwise; RES_E_CONFLICT before reconfirmation). */
int reservation_settings(reservations *rs, const char *owner, const char *id, res_settings *out, res_error *e);
void res_settings_clear(res_settings *s);

void reservation_clear(reservation *r);

/* ---- names on the wire ---- */
const char *res_level_name(res_level l);     /* "public", "password", "secret" */
const char *res_state_name(res_state s);     /* "awaiting_reconfirmation", "reconfirmed", ... */
/* Whether id has the shape of a reservation ID. */
bool reservation_id_valid(const char *id);
/* fee for a duration at a price per hour, rounded up to the smallest unit */
uint64_t reservation_fee(uint64_t price_per_hour, int64_t duration_s);

#endif
