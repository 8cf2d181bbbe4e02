/* roster.h - stored rosters (RFC 6121 section 2) in the "roster" database.
 *
 * Key: "<user>\0<contact bare jid>"; value: a versioned msgpack record.
 * The subscription state machine itself lives in session/presence code; this
 * module only stores items.
 */
#ifndef ONAIR_ROSTER_H
#define ONAIR_ROSTER_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

typedef enum roster_sub { ROSTER_SUB_NONE = 0, ROSTER_SUB_TO, ROSTER_SUB_FROM, ROSTER_SUB_BOTH } roster_sub;

typedef struct roster_item {
    char *jid;        /* owned, bare, normalised */
    char *name;       /* owned, may be NULL */
    roster_sub sub;
    bool ask_out;     /* we sent subscribe, awaiting the contact's answer (ask='subscribe') */
    bool pending_in;  /* the contact asked to subscribe to us; not yet approved */
    char **groups;    /* owned array of owned strings */
    size_t ngroups;
} roster_item;

void roster_item_clear(roster_item *item);
const char *roster_sub_name(roster_sub sub); /* "none", "to", "from", "both" */

/* out is filled (caller clears).  STORE_OK or STORE_NOTFOUND. */
int roster_get(store *s, const char *user, const char *contact, roster_item *out);
/* Inserts or replaces; one write transaction.  max_items bounds the roster
 * size for new items (0 = unbounded); STORE_FULL when over it. */
int roster_put(store *s, const char *user, const roster_item *item, size_t max_items);
int roster_remove(store *s, const char *user, const char *contact);
/* Items in contact order; item borrowed for the call; cb non-zero stops. */
int roster_list(store *s, const char *user, int (*cb)(void *ud, const roster_item *item), void *ud);
/* Removes every item of user (inside an existing write transaction). */
int roster_remove_all_txn(store_txn *t, const char *user);

#endif
