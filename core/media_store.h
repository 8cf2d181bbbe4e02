/* media_store.h - the broadcasts in the store: one msgpack record per live
 * that has been on air ("media_lives", key: the reservation ID) with when it
 * went on air and ended, why it ended, and its viewer counts (the peak at
 * once and the total of viewer sessions).  Pure store code over the
 * caller's transactions (record.h): no sockets, no timers, no logging.
 */
#ifndef ONAIR_MEDIA_STORE_H
#define ONAIR_MEDIA_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "reservation.h"
#include "store.h"

#define MEDIA_DB_LIVES "media_lives"
#define MEDIA_REASON_MAX 15

typedef enum media_live_state {
    MEDIA_LIVE_ON_AIR = 1,
    MEDIA_LIVE_ENDED = 2,
    MEDIA_LIVE_INTERRUPTED = 3 /* on air when the server stopped without ending it */
} media_live_state;

typedef struct media_live_record {
    char id[RES_ID_LEN + 1];
    media_live_state state;
    int64_t first_aired_ms; /* the first time it went on air */
    int64_t started_ms;     /* the latest time it went on air */
    int64_t ended_ms;       /* the latest end (0 while on air) */
    uint32_t airings;       /* how many times it went on air */
    uint32_t viewers_peak;  /* viewer sessions at once, at most */
    uint32_t viewers_total; /* viewer sessions accepted */
    char reason[MEDIA_REASON_MAX + 1]; /* why it ended: "broadcaster", "window", "timeout", "cancelled", "shutdown", "restart" */
} media_live_record;

/* STORE_OK or a store code. */
int media_live_put(store_txn *t, const media_live_record *r);
/* STORE_OK, STORE_NOTFOUND or STORE_CORRUPT (out is zeroed then). */
int media_live_get(store_txn *t, const char *id, media_live_record *out);
/* Every record in ID order (borrowed for the call); non-zero from cb stops. */
int media_live_list(store_txn *t, int (*cb)(void *ud, const media_live_record *r), void *ud);
const char *media_live_state_name(media_live_state s); /* "on_air", "ended", "interrupted" */

#endif
