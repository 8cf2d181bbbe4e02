/* account.h - user accounts in the store ("accounts" database).
 *
 * Only SCRAM secrets are kept: per hash (SHA-1, SHA-256) the salt, iteration
 * count, StoredKey and ServerKey (RFC 5802).  A plaintext password is never
 * stored; PLAIN logins are checked by deriving StoredKey from the offered
 * password.  Record: msgpack map with a version field (see account.c).
 * Usernames are Nodeprep-normalised by the caller or by these functions.
 */
#ifndef ONAIR_ACCOUNT_H
#define ONAIR_ACCOUNT_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

#define ACCOUNT_SCRAM_ITER_DEFAULT 4096

typedef enum account_hash { ACCOUNT_SHA1 = 0, ACCOUNT_SHA256 = 1 } account_hash;

typedef struct account_scram {
    unsigned iterations;
    unsigned char salt[32];
    size_t salt_len;
    unsigned char stored_key[32]; /* 20 bytes used for SHA-1 */
    unsigned char server_key[32];
    size_t key_len;               /* 20 or 32 */
} account_scram;

/* Account operations, each one write transaction.  Return STORE_OK,
 * STORE_EXISTS (create of an existing user), STORE_NOTFOUND, or another
 * negative store code.  `user` is the local part; it is normalised with
 * Nodeprep (an invalid one gives STORE_ERROR). iterations 0 = default. */
int account_create(store *s, const char *user, const char *password, unsigned iterations);
int account_set_password(store *s, const char *user, const char *password, unsigned iterations);
int account_delete(store *s, const char *user); /* also removes roster and offline data */
bool account_exists(store *s, const char *user);
/* The account's e-mail address (for booking confirmations and notices):
 * set replaces it ("" removes it); get copies it into buf ("" when none),
 * truncated to cap - 1 bytes. */
int account_set_email(store *s, const char *user, const char *email);
int account_get_email(store *s, const char *user, char *buf, size_t cap);

/* SCRAM secrets for the login of `user` with the given hash. */
int account_get_scram(store *s, const char *user, account_hash hash, account_scram *out);
/* Checks a password against the stored secrets (constant-time compare).
 * Returns 0 if it matches, STORE_NOTFOUND for no such user, ACCOUNT_MISMATCH
 * for a wrong password, or another negative store code. */
#define ACCOUNT_MISMATCH (-16) /* distinct from every STORE_* code */
int account_check_password(store *s, const char *user, const char *password);
/* The slow half of account_check_password, without the store: derives the
 * StoredKey of `password` with the salt and iterations of `stored` (secrets
 * of `hash`, read with account_get_scram) and compares in constant time.
 * Touches no shared state, so it may run on a worker thread (it costs
 * milliseconds of CPU).  Returns STORE_OK or ACCOUNT_MISMATCH. */
int account_verify_scram(const account_scram *stored, account_hash hash, const char *password);

/* Calls cb for each username (borrowed for the call), in order. cb returns
 * non-zero to stop. */
int account_list(store *s, int (*cb)(void *ud, const char *user), void *ud);

/* Secrets for both hashes derived from one password with fresh random salts
 * (the slow part of account creation).  Returns STORE_OK, or STORE_ERROR if
 * the password fails SASLprep.  The caller should wipe *out after use. */
typedef struct account_secrets {
    account_scram sha1;
    account_scram sha256;
} account_secrets;
int account_secrets_derive(const char *password, unsigned iterations, account_secrets *out);
/* Creates `user` with the given secrets inside the caller's write
 * transaction (for creating many accounts per transaction).  STORE_OK,
 * STORE_EXISTS, or another negative store code. */
int account_create_txn(store_txn *t, const char *user, const account_secrets *sec);

#endif
