/* muc_history.h - what a room sends to late joiners, and how fast an
 * occupant may talk.
 *
 * History: a ring of the room's last messages, each kept serialized once
 * (XEP-0203 delay stamp included) around its 'to' like the live fan-out
 * (router_splice), so that sending history costs no serialization.  The
 * XEP-0045 history limits of a join (maxstanzas, maxchars, seconds, since)
 * select the newest messages that meet all of them.
 *
 * Rate: a token bucket per occupant in fixed point (16 bytes).
 *
 * Pure data structures: the clock is passed in.
 */
#ifndef ONAIR_MUC_HISTORY_H
#define ONAIR_MUC_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xml.h"

typedef struct muc_history_item {
    int64_t time_ms;
    char *wire;        /* owned: head then tail (see router_splice) */
    uint32_t head_len; /* bytes of the head: "<message to=\"" */
    uint32_t len;      /* bytes of wire */
} muc_history_item;

typedef struct muc_history {
    muc_history_item *items; /* owned ring of cap */
    size_t cap, start, n;
} muc_history;

/* A ring of cap items (0: keeps nothing).  Returns 0 or -1 (out of memory). */
int muc_history_init(muc_history *h, size_t cap);
void muc_history_free(muc_history *h);
/* Appends, dropping the oldest when full; wire (malloc'd) moves into the
 * ring, which frees it (also when cap is 0). */
void muc_history_push(muc_history *h, int64_t time_ms, char *wire, uint32_t head_len, uint32_t len);
/* Item i, 0 being the oldest kept; i < h->n. */
const muc_history_item *muc_history_at(const muc_history *h, size_t i);

/* The <history/> of a join: -1 where not given. */
typedef struct muc_history_request {
    long long maxstanzas, maxchars, seconds;
    int64_t since_ms;
} muc_history_request;

/* Reads the attributes of history (NULL: no limits).  Returns 0, or -1 with
 * the attribute at fault in *bad when a value is not a non-negative integer
 * (maxstanzas, maxchars, seconds) or a XEP-0082 date-time (since). */
int muc_history_request_parse(const xml_node *history, muc_history_request *out, const char **bad);
/* The index of the first item to send: items [first, h->n) are the most
 * recent ones such that there are at most maxstanzas of them, their complete
 * stanzas (each addressed to a 'to' of to_len bytes) add up to at most
 * maxchars, and none is older than now - seconds or than since. */
size_t muc_history_select(const muc_history *h, const muc_history_request *rq, int64_t now_ms, size_t to_len);

/* ---- rate ---- */

typedef struct muc_rate {
    int64_t stamp_ms; /* when tokens was last brought up to date */
    uint64_t tokens;  /* in thousandths */
} muc_rate;

/* A full bucket at now. */
void muc_rate_init(muc_rate *r, int64_t now_ms, uint32_t burst);
/* Takes one token if there is one (refilling per_s a second up to burst)
 * and returns true; false when the occupant must wait. */
bool muc_rate_take(muc_rate *r, int64_t now_ms, uint32_t per_s, uint32_t burst);

#endif
