/* muc_log.h - the rooms in the store: one record per room ("muc_rooms",
 * key: the room ID) and every room's message log ("muc_log", key: room ID
 * then the sequence number big-endian, so a room's log is one ordered key
 * range and its last key gives the next number).  Records are msgpack
 * (record.h).  Pure store code over the caller's transactions: no sockets,
 * no timers, no logging.
 */
#ifndef ONAIR_MUC_LOG_H
#define ONAIR_MUC_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "muc.h"
#include "reservation.h"
#include "store.h"

#define MUC_DB_ROOMS "muc_rooms"
#define MUC_DB_LOG "muc_log"

/* The notices a room has sent, as bits of muc_room_record.notices: each is
 * set in the transaction that logs the notice, so none repeats after a
 * crash. */
enum {
    MUC_NOTICE_SOON = 1u << 0,
    MUC_NOTICE_START = 1u << 1,
    MUC_NOTICE_END = 1u << 2,
    MUC_NOTICE_WARNING = 1u << 3,
    MUC_NOTICE_DUE = 1u << 4 /* the scheduled start passed with nobody on air */
};

typedef enum muc_room_state { MUC_ROOM_OPEN = 0, MUC_ROOM_CLOSED = 1 } muc_room_state;

/* A room's record.  Owns its strings (muc_room_record_clear frees them). */
typedef struct muc_room_record {
    char id[RES_ID_LEN + 1];
    muc_room_state state;
    int64_t opened_ms;
    int64_t close_at;   /* seconds: when the room closes */
    int64_t closed_ms;  /* 0 while open */
    uint32_t notices;   /* MUC_NOTICE_* sent */
    uint32_t slow_mode_s;
    char *subject;      /* current subject ("" = none) */
    char *subject_nick; /* who set it ("" = the room) */
    int64_t subject_ms;
    char *bans;         /* banned bare JIDs, one per line ("" if none) */
    char *devoiced;     /* bare JIDs without voice, one per line */
    char *close_reason; /* "" while open; "ended", "cancelled" */
    int64_t log_removed_ms; /* when its log was removed (muc.closed_log_keep_s after closing); 0 = kept */
} muc_room_record;

/* STORE_OK or a store code. */
int muc_room_record_put(store_txn *t, const muc_room_record *r);
/* STORE_OK, STORE_NOTFOUND, STORE_CORRUPT, ...; on failure out is cleared. */
int muc_room_record_get(store_txn *t, const char *id, muc_room_record *out);
/* Every room record in ID order (borrowed for the call); non-zero from cb stops. */
int muc_room_record_list(store_txn *t, int (*cb)(void *ud, const muc_room_record *r), void *ud);
void muc_room_record_clear(muc_room_record *r);

/* Appends e (e->seq must be the next number) to the log of room_id. */
int muc_log_append(store_txn *t, const char *room_id, const muc_log_entry *e);
/* Removes every entry of room_id's log (STORE_OK also when it had none). */
int muc_log_remove(store_txn *t, const char *room_id);
/* The entries of every room's log in *n. */
int muc_log_count(store_txn *t, size_t *n);
/* The highest sequence number of room_id's log in *seq (0 when empty). */
int muc_log_last_seq(store_txn *t, const char *room_id, uint64_t *seq);
/* Entries of room_id with seq >= from_seq in order; the strings are borrowed
 * from the transaction for the call.  Non-zero from cb stops (and is
 * returned); STORE_CORRUPT for a record that does not decode. */
int muc_log_read(store_txn *t, const char *room_id, uint64_t from_seq,
                 int (*cb)(void *ud, const muc_log_entry *e), void *ud);

/* The lines of a "one per line" list: whether line is one of them. */
bool muc_list_has(const char *list, const char *line);
/* A new list (caller frees) with line added (if absent) or removed.  NULL
 * when out of memory. */
char *muc_list_with(const char *list, const char *line, bool present);

#endif
