/* secret.h - sealing the few secrets the server must be able to read back
 * (a reservation's broadcast and shared passwords, which it checks and hands
 * to the owner and friends), so that they are never at rest in clear text.
 *
 * The key is 32 random bytes in <data_dir>/secret.key (mode 0600), made on
 * first use; a copy of the store without that file reveals no secret.
 * Sealing is AES-256-GCM (OpenSSL EVP) with a random 96-bit nonce per value;
 * the associated data binds a sealed value to its purpose (e.g. a
 * reservation ID and field name), so it cannot be moved to another record.
 */
#ifndef ONAIR_SECRET_H
#define ONAIR_SECRET_H

#include <stddef.h>

#define SECRET_KEY_LEN 32
#define SECRET_OVERHEAD (12 + 16) /* nonce + tag */

typedef struct secret_key {
    unsigned char key[SECRET_KEY_LEN];
} secret_key;

/* Reads <dir>/secret.key, creating it (and dir) if missing and create is
 * true.  Returns 0, or -1 with a message in err. */
int secret_key_load(secret_key *k, const char *dir, int create, char *err, size_t errlen);
/* Wipes the key from memory. */
void secret_key_wipe(secret_key *k);

/* Seals len bytes of plain into out (len + SECRET_OVERHEAD bytes, caller's
 * buffer).  ad (adlen bytes) is authenticated, not stored.  Returns 0 or -1. */
int secret_seal(const secret_key *k, const void *ad, size_t adlen, const void *plain, size_t len, unsigned char *out);
/* Opens a sealed value of len bytes into plain (len - SECRET_OVERHEAD bytes
 * plus a NUL, caller's buffer).  Returns the plain length, or -1 when the
 * value was tampered with, sealed for other ad, or under another key. */
long secret_open(const secret_key *k, const void *ad, size_t adlen, const unsigned char *sealed, size_t len,
                 char *plain);

#endif
