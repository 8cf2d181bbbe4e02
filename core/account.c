/* account.c - user accounts (account.h) in the "accounts" database: key the
 * Nodeprep'd local part, value a record (record.h) holding only SCRAM
 * secrets (RFC 5802 / RFC 7677): per hash the salt, iteration count,
 * StoredKey and ServerKey, derived with GNU SASL from a random 16-byte salt
 * (OpenSSL RAND_bytes).  No password is ever stored; PLAIN is checked by
 * re-deriving the SHA-256 StoredKey and comparing in constant time.
 * Deleting an account also removes its roster and offline messages in the
 * same write transaction.
 */
#include "account.h"

#include <gsasl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "offline.h"
#include "record.h"
#include "roster.h"

#define ACCOUNT_DB "accounts"
#define ACCOUNT_SALT_LEN 16

/* Field names of the account record, per hash. */
typedef struct account_fields {
    const char *iter, *salt, *stored, *server;
    Gsasl_hash gsasl;
    size_t key_len;
} account_fields;

static const account_fields account_field_names[2] = {
    [ACCOUNT_SHA1] = {"sha1_iter", "sha1_salt", "sha1_stored", "sha1_server", GSASL_HASH_SHA1, GSASL_HASH_SHA1_SIZE},
    [ACCOUNT_SHA256] = {"sha256_iter", "sha256_salt", "sha256_stored", "sha256_server", GSASL_HASH_SHA256,
                        GSASL_HASH_SHA256_SIZE},
};

/* Derives the secrets of one hash for password with the given salt. */
static int account_derive(account_hash hash, const char *password, unsigned iterations, const unsigned char *salt,
                          size_t salt_len, account_scram *out)
{
    const account_fields *f = &account_field_names[hash];
    char salted[GSASL_HASH_MAX_SIZE], client_key[GSASL_HASH_MAX_SIZE];
    memset(out, 0, sizeof *out);
    int rc = gsasl_scram_secrets_from_password(f->gsasl, password, iterations, (const char *)salt, salt_len, salted,
                                               client_key, (char *)out->server_key, (char *)out->stored_key);
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(client_key, sizeof client_key);
    if (rc != GSASL_OK) {
        OPENSSL_cleanse(out, sizeof *out);
        return STORE_ERROR;
    }
    out->iterations = iterations;
    memcpy(out->salt, salt, salt_len);
    out->salt_len = salt_len;
    out->key_len = f->key_len;
    return STORE_OK;
}

int account_secrets_derive(const char *password, unsigned iterations, account_secrets *out)
{
    memset(out, 0, sizeof *out);
    if (!password)
        return STORE_ERROR;
    if (iterations == 0)
        iterations = ACCOUNT_SCRAM_ITER_DEFAULT;
    unsigned char salt[2][ACCOUNT_SALT_LEN];
    if (RAND_bytes(&salt[0][0], sizeof salt) != 1)
        return STORE_ERROR;
    if (account_derive(ACCOUNT_SHA1, password, iterations, salt[0], ACCOUNT_SALT_LEN, &out->sha1) != STORE_OK ||
        account_derive(ACCOUNT_SHA256, password, iterations, salt[1], ACCOUNT_SALT_LEN, &out->sha256) != STORE_OK) {
        OPENSSL_cleanse(out, sizeof *out);
        return STORE_ERROR;
    }
    return STORE_OK;
}

static void account_put_hash(record_writer *w, account_hash hash, const account_scram *sc)
{
    const account_fields *f = &account_field_names[hash];
    record_put_uint(w, f->iter, sc->iterations);
    record_put_bin(w, f->salt, sc->salt, sc->salt_len);
    record_put_bin(w, f->stored, sc->stored_key, sc->key_len);
    record_put_bin(w, f->server, sc->server_key, sc->key_len);
}

/* Encodes and stores the record of user (key already prepared).  email may
 * be NULL or "" (none). */
static int account_write(store_txn *t, const char *key, size_t klen, const account_secrets *sec, int64_t created_ms,
                         const char *email, bool no_overwrite)
{
    bool has_email = email && *email;
    record_writer w;
    record_writer_init(&w, 9 + (has_email ? 1 : 0));
    record_put_int(&w, "created", created_ms);
    if (has_email)
        record_put_str(&w, "email", email, strlen(email));
    account_put_hash(&w, ACCOUNT_SHA1, &sec->sha1);
    account_put_hash(&w, ACCOUNT_SHA256, &sec->sha256);
    const void *data;
    size_t len;
    int rc = record_finish(&w, &data, &len);
    if (rc == STORE_OK)
        rc = store_put(t, ACCOUNT_DB, key, klen, data, len, no_overwrite);
    record_writer_free(&w);
    return rc;
}

/* Decodes the secrets of one hash from a record. */
static int account_decode(const record_reader *r, account_hash hash, account_scram *out)
{
    const account_fields *f = &account_field_names[hash];
    uint64_t iter;
    const void *salt, *stored, *server;
    size_t salt_len, stored_len, server_len;
    if (record_get_uint(r, f->iter, &iter) != STORE_OK || record_get_bin(r, f->salt, &salt, &salt_len) != STORE_OK ||
        record_get_bin(r, f->stored, &stored, &stored_len) != STORE_OK ||
        record_get_bin(r, f->server, &server, &server_len) != STORE_OK)
        return STORE_CORRUPT;
    if (iter == 0 || iter > 0xffffffffu || salt_len == 0 || salt_len > sizeof out->salt || stored_len != f->key_len ||
        server_len != f->key_len)
        return STORE_CORRUPT;
    out->iterations = (unsigned)iter;
    memcpy(out->salt, salt, salt_len);
    out->salt_len = salt_len;
    memcpy(out->stored_key, stored, stored_len);
    memcpy(out->server_key, server, server_len);
    out->key_len = f->key_len;
    return STORE_OK;
}

static int64_t account_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int account_create_txn(store_txn *t, const char *user, const account_secrets *sec)
{
    char key[RECORD_USER_MAX + 1];
    size_t klen;
    if (record_prep_user(user, key, &klen) != STORE_OK)
        return STORE_ERROR;
    return account_write(t, key, klen, sec, account_now_ms(), NULL, true);
}

int account_create(store *s, const char *user, const char *password, unsigned iterations)
{
    char key[RECORD_USER_MAX + 1];
    size_t klen;
    if (record_prep_user(user, key, &klen) != STORE_OK)
        return STORE_ERROR;
    account_secrets sec;
    int rc = account_secrets_derive(password, iterations, &sec);
    if (rc != STORE_OK)
        return rc;
    store_txn *t;
    rc = store_txn_begin(s, true, &t);
    if (rc == STORE_OK) {
        rc = account_write(t, key, klen, &sec, account_now_ms(), NULL, true);
        if (rc == STORE_OK)
            rc = store_txn_commit(t);
        else
            store_txn_abort(t);
    }
    OPENSSL_cleanse(&sec, sizeof sec);
    return rc;
}

/* Rewrites the record at key with new secrets (sec NULL: keep them) and a
 * new e-mail address (email NULL: keep it), keeping its creation time. */
static int account_rewrite(store_txn *t, const char *key, size_t klen, const account_secrets *sec, const char *email)
{
    const void *val;
    size_t vlen;
    int rc = store_get(t, ACCOUNT_DB, key, klen, &val, &vlen);
    if (rc != STORE_OK)
        return rc;
    record_reader r;
    rc = record_read(&r, val, vlen);
    if (rc != STORE_OK)
        return rc;
    int64_t created = account_now_ms();
    record_get_int(&r, "created", &created);
    account_secrets old;
    char *mail = NULL;
    if (!sec) {
        if (account_decode(&r, ACCOUNT_SHA1, &old.sha1) != STORE_OK ||
            account_decode(&r, ACCOUNT_SHA256, &old.sha256) != STORE_OK) {
            record_reader_free(&r);
            return STORE_CORRUPT;
        }
        sec = &old;
    }
    if (!email) {
        const char *m;
        size_t mlen;
        if (record_get_str(&r, "email", &m, &mlen) == STORE_OK)
            mail = strndup(m, mlen);
        email = mail;
    }
    record_reader_free(&r);
    /* val points into the store: the record is decoded before it is replaced. */
    rc = account_write(t, key, klen, sec, created, email, false);
    free(mail);
    OPENSSL_cleanse(&old, sizeof old);
    return rc;
}

int account_set_password(store *s, const char *user, const char *password, unsigned iterations)
{
    char key[RECORD_USER_MAX + 1];
    size_t klen;
    if (record_prep_user(user, key, &klen) != STORE_OK)
        return STORE_ERROR;
    account_secrets sec;
    int rc = account_secrets_derive(password, iterations, &sec);
    if (rc != STORE_OK)
        return rc;
    store_txn *t;
    rc = store_txn_begin(s, true, &t);
    if (rc == STORE_OK) {
        rc = account_rewrite(t, key, klen, &sec, NULL);
        if (rc == STORE_OK)
            rc = store_txn_commit(t);
        else
            store_txn_abort(t);
    }
    OPENSSL_cleanse(&sec, sizeof sec);
    return rc;
}

int account_set_email(store *s, const char *user, const char *email)
{
    char key[RECORD_USER_MAX + 1];
    size_t klen;
    if (record_prep_user(user, key, &klen) != STORE_OK || !email)
        return STORE_ERROR;
    store_txn *t;
    int rc = store_txn_begin(s, true, &t);
    if (rc != STORE_OK)
        return rc;
    rc = account_rewrite(t, key, klen, NULL, email);
    if (rc == STORE_OK)
        rc = store_txn_commit(t);
    else
        store_txn_abort(t);
    return rc;
}

int account_get_email(store *s, const char *user, char *buf, size_t cap)
{
    char key[RECORD_USER_MAX + 1];
    size_t klen;
    if (cap == 0 || record_prep_user(user, key, &klen) != STORE_OK)
        return STORE_ERROR;
    buf[0] = '\0';
    store_txn *t;
    int rc = store_txn_begin(s, false, &t);
    if (rc != STORE_OK)
        return rc;
    const void *val;
    size_t vlen;
    rc = store_get(t, ACCOUNT_DB, key, klen, &val, &vlen);
    if (rc == STORE_OK) {
        record_reader r;
        rc = record_read(&r, val, vlen);
        if (rc == STORE_OK) {
            const char *m;
            size_t mlen;
            if (record_get_str(&r, "email", &m, &mlen) == STORE_OK) {
                if (mlen >= cap)
                    mlen = cap - 1;
                memcpy(buf, m, mlen);
                buf[mlen] = '\0';
            }
            record_reader_free(&r);
        }
    }
    store_txn_abort(t);
    return rc;
}

int account_delete(store *s, const char *user)
{
    char key[RECORD_USER_MAX + 1];
    size_t klen;
    if (record_prep_user(user, key, &klen) != STORE_OK)
        return STORE_ERROR;
    store_txn *t;
    int rc = store_txn_begin(s, true, &t);
    if (rc != STORE_OK)
        return rc;
    rc = store_del(t, ACCOUNT_DB, key, klen);
    if (rc == STORE_OK)
        rc = roster_remove_all_txn(t, key);
    if (rc == STORE_OK)
        rc = offline_remove_all_txn(t, key);
    if (rc == STORE_OK)
        rc = store_txn_commit(t);
    else
        store_txn_abort(t);
    return rc;
}

bool account_exists(store *s, const char *user)
{
    char key[RECORD_USER_MAX + 1];
    size_t klen;
    if (record_prep_user(user, key, &klen) != STORE_OK)
        return false;
    store_txn *t;
    if (store_txn_begin(s, false, &t) != STORE_OK)
        return false;
    const void *val;
    size_t vlen;
    bool found = store_get(t, ACCOUNT_DB, key, klen, &val, &vlen) == STORE_OK;
    store_txn_abort(t);
    return found;
}

int account_get_scram(store *s, const char *user, account_hash hash, account_scram *out)
{
    if (hash != ACCOUNT_SHA1 && hash != ACCOUNT_SHA256)
        return STORE_ERROR;
    char key[RECORD_USER_MAX + 1];
    size_t klen;
    if (record_prep_user(user, key, &klen) != STORE_OK)
        return STORE_ERROR;
    store_txn *t;
    int rc = store_txn_begin(s, false, &t);
    if (rc != STORE_OK)
        return rc;
    const void *val;
    size_t vlen;
    rc = store_get(t, ACCOUNT_DB, key, klen, &val, &vlen);
    if (rc == STORE_OK) {
        record_reader r;
        rc = record_read(&r, val, vlen);
        if (rc == STORE_OK) {
            rc = account_decode(&r, hash, out);
            record_reader_free(&r);
        }
    }
    store_txn_abort(t);
    return rc;
}

int account_verify_scram(const account_scram *stored, account_hash hash, const char *password)
{
    if (!password || (hash != ACCOUNT_SHA1 && hash != ACCOUNT_SHA256) ||
        stored->key_len != account_field_names[hash].key_len)
        return ACCOUNT_MISMATCH;
    account_scram offered;
    if (account_derive(hash, password, stored->iterations, stored->salt, stored->salt_len, &offered) != STORE_OK)
        return ACCOUNT_MISMATCH; /* a password SASLprep refuses can match nothing */
    int rc = CRYPTO_memcmp(offered.stored_key, stored->stored_key, stored->key_len) == 0 ? STORE_OK : ACCOUNT_MISMATCH;
    OPENSSL_cleanse(&offered, sizeof offered);
    return rc;
}

int account_check_password(store *s, const char *user, const char *password)
{
    if (!password)
        return ACCOUNT_MISMATCH;
    account_scram stored;
    int rc = account_get_scram(s, user, ACCOUNT_SHA256, &stored);
    if (rc != STORE_OK)
        return rc;
    rc = account_verify_scram(&stored, ACCOUNT_SHA256, password);
    OPENSSL_cleanse(&stored, sizeof stored);
    return rc;
}

typedef struct account_list_ctx {
    int (*cb)(void *ud, const char *user);
    void *ud;
} account_list_ctx;

static int account_list_one(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    account_list_ctx *ctx = ud;
    char name[RECORD_USER_MAX + 1];
    if (klen > RECORD_USER_MAX)
        return 0; /* not a key this module writes */
    memcpy(name, key, klen);
    name[klen] = '\0';
    return ctx->cb(ctx->ud, name);
}

int account_list(store *s, int (*cb)(void *ud, const char *user), void *ud)
{
    store_txn *t;
    int rc = store_txn_begin(s, false, &t);
    if (rc != STORE_OK)
        return rc;
    account_list_ctx ctx = {cb, ud};
    rc = store_iter(t, ACCOUNT_DB, NULL, 0, account_list_one, &ctx);
    store_txn_abort(t);
    return rc;
}
