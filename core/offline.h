/* offline.h - messages stored for users who are offline (RFC 6121 section
 * 8.5.2.2.1 "store" behaviour), in the "offline" database.
 *
 * Key: "<user>\0<8-byte big-endian sequence>"; value: a versioned msgpack
 * record {stamp_ms, stanza xml}.  Each push is its own synced write
 * transaction, so an acknowledged message survives kill -9.
 */
#ifndef ONAIR_OFFLINE_H
#define ONAIR_OFFLINE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Appends a serialized stanza for user.  max_per_user 0 = unbounded; over it
 * returns STORE_FULL and stores nothing. */
int offline_push(store *s, const char *user, const char *xml, size_t len, int64_t stamp_ms, size_t max_per_user);

/* Calls cb for each stored message of user, oldest first (xml borrowed for
 * the call, not NUL-terminated), then deletes them all in the same write
 * transaction.  If cb returns non-zero, iteration stops and nothing is
 * deleted (the transaction is aborted). */
int offline_take(store *s, const char *user,
                 int (*cb)(void *ud, const char *xml, size_t len, int64_t stamp_ms), void *ud);

size_t offline_count(store *s, const char *user);
/* Removes every message of user (inside an existing write transaction). */
int offline_remove_all_txn(store_txn *t, const char *user);

#endif
