/* store.h - the durable store: one LMDB environment, named databases per
 * record type, one write transaction per logical change.
 *
 * This header is the only door to the backend, so callers never see LMDB
 * types.  Values are opaque bytes here; each record module (account.c,
 * roster.c, offline.c, ...) encodes its records with msgpack and a leading
 * version number.  Commits are durable (synced) before they
 * return: anything acknowledged after a commit survives kill -9.
 *
 * Threading: one writer at a time; all calls from the server loop.  The
 * environment may be opened by onairctl in another process at the same time
 * (LMDB's own locking).
 */
#ifndef ONAIR_STORE_H
#define ONAIR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store;
typedef struct store_txn store_txn;

/* Error codes: 0 ok, negative on failure. */
enum {
    STORE_OK = 0,
    STORE_NOTFOUND = -1,
    STORE_EXISTS = -2, /* store_put with no_overwrite on an existing key */
    STORE_FULL = -3,   /* map full */
    STORE_ERROR = -4,  /* anything else; see store_last_error */
    STORE_CORRUPT = -5 /* a record that does not decode */
};

/* Opens (creating dir and the environment if needed, unless readonly) the
 * store in `dir`.  map_size_mb bounds the database size.  On failure returns
 * a negative code and writes a message into err (errlen bytes).  Caller owns
 * *out (store_close). */
int store_open(store **out, const char *dir, size_t map_size_mb, bool readonly, char *err, size_t errlen);
void store_close(store *s);
const char *store_last_error(const store *s);

/* Transactions: caller owns *out until commit or abort (exactly one of them).
 * A read transaction is cheap.  At most one write transaction at a time per
 * store. */
int store_txn_begin(store *s, bool write, store_txn **out);
int store_txn_commit(store_txn *t); /* frees t, also on failure */
void store_txn_abort(store_txn *t); /* frees t */

/* Named databases are created on first write use.  Names are short
 * constants (e.g. "accounts", "roster", "offline"). */

/* *val borrowed until the transaction ends. */
int store_get(store_txn *t, const char *db, const void *key, size_t klen, const void **val, size_t *vlen);
int store_put(store_txn *t, const char *db, const void *key, size_t klen, const void *val, size_t vlen,
              bool no_overwrite);
int store_del(store_txn *t, const char *db, const void *key, size_t klen);

/* Calls cb for every key starting with prefix (plen 0 = all), in key order.
 * key/val are borrowed for the call.  cb returns 0 to go on, non-zero to stop
 * (that value is returned).  Deleting the current key from cb is allowed in a
 * write transaction. */
typedef int (*store_iter_cb)(void *ud, const void *key, size_t klen, const void *val, size_t vlen);
int store_iter(store_txn *t, const char *db, const void *prefix, size_t plen, store_iter_cb cb, void *ud);

/* Calls cb for every key k with from <= k < to, in key order (from NULL:
 * from the first key; to NULL: to the last).  Same callback rules as
 * store_iter. */
int store_iter_range(store_txn *t, const char *db, const void *from, size_t flen, const void *to, size_t tlen,
                     store_iter_cb cb, void *ud);

/* The number of keys in db in *n (0 when db has never been written). */
int store_count(store_txn *t, const char *db, size_t *n);

/* Deletes every key starting with prefix (plen > 0), in a write transaction. */
int store_del_prefix(store_txn *t, const char *db, const void *prefix, size_t plen);

/* Last key with the given prefix (for sequence numbers); key copied into
 * keybuf (up to keycap bytes), its length in *klen.  STORE_NOTFOUND if none. */
int store_last_key(store_txn *t, const char *db, const void *prefix, size_t plen, void *keybuf, size_t keycap,
                   size_t *klen);

#endif
