/* schedule.h - timers derived from reservations (reconfirmation deadlines;
 * room opening and closing, notices and ingest windows hang off the same
 * table), kept in the store so that a restart misses none.
 *
 * The "schedule" database holds one key per due action: the due time in
 * milliseconds (big-endian, so keys sort by time), a kind byte and the
 * reservation ID; values are empty.  An entry is written in the same write
 * transaction as the change that makes it due.  One libuv timer is armed for
 * the earliest entry; when it fires, every entry that is due is handed to
 * the handler of its kind and then deleted.  After a crash an entry may be
 * handed over again, so handlers check the reservation's state and do
 * nothing when nothing is due (they are idempotent).  Entries that are past
 * due at start-up fire at once.
 */
#ifndef ONAIR_SCHEDULE_H
#define ONAIR_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "store.h"

struct server;

typedef enum schedule_kind {
    SCHEDULE_RECONFIRM_DEADLINE = 1, /* reservation.c, at booking: cancel if not reconfirmed */
    SCHEDULE_ROOM_OPEN = 2,          /* reservation.c, at reconfirmation: open the live's room */
    SCHEDULE_ROOM_NOTICE = 3,        /* muc.c, at opening (these and below): "the live starts soon" */
    SCHEDULE_LIVE_START = 4,         /* notice: the live has started */
    SCHEDULE_LIVE_END = 5,           /* notice: the live has ended */
    SCHEDULE_ROOM_CLOSE_WARNING = 6, /* notice: the room closes soon */
    SCHEDULE_ROOM_CLOSE = 7,         /* destroy the room */
    SCHEDULE_INGEST_CLOSE = 8,       /* media.c, when a live goes on air: its ingest window closes */
    SCHEDULE_KIND_MAX = 32
} schedule_kind;

#define SCHEDULE_ID_MAX 64

/* Called on the loop for a due entry: id is borrowed for the call. */
typedef void (*schedule_fn)(void *ud, struct server *srv, schedule_kind kind, const char *id, int64_t due_ms);

typedef struct schedule {
    uv_timer_t timer;
    bool started;
    int64_t armed_ms; /* due time the timer is armed for, or -1 */
    struct {
        schedule_fn fn;
        void *ud;
    } handlers[SCHEDULE_KIND_MAX];
    uint64_t fired;   /* entries handed to handlers */
} schedule;

/* Enters an entry in the caller's write transaction.  STORE_OK or a store
 * code. */
int schedule_put_txn(store_txn *t, int64_t due_ms, schedule_kind kind, const char *id);

/* Sets the handler of a kind (before schedule_start). */
void schedule_handle(schedule *sc, schedule_kind kind, schedule_fn fn, void *ud);
/* Arms the timer for the earliest entry in the store. */
int schedule_start(struct server *srv);
/* An entry due at due_ms was added: arm earlier if needed. */
void schedule_changed(struct server *srv, int64_t due_ms);
/* Closes the timer (shutdown). */
void schedule_stop(struct server *srv);

/* Wall-clock time in milliseconds. */
int64_t schedule_now_ms(void);

#endif
