/* offline.c - messages kept for offline users (offline.h, RFC 6121 section
 * 8.5.2.2.1) in the "offline" database.  Key: "<user>\0<8-byte big-endian
 * sequence>", the sequence one past the user's last key (store_last_key), so
 * key order is arrival order.  Value: a record (record.h) {"ts": stamp in
 * ms, "xml": the serialized stanza}.  Each push is its own synced commit.
 * Messages are only removed all at once (take, remove_all), so a user's
 * sequences are contiguous and the count is last - first + 1.
 */
#include "offline.h"

#include <string.h>

#include "record.h"

#define OFFLINE_DB "offline"

/* "<user>\0" into key (RECORD_USER_MAX + 10 bytes); returns its length or 0
 * if the user is invalid. */
static size_t offline_prefix(const char *user, char *key)
{
    size_t ulen;
    if (record_prep_user(user, key, &ulen) != STORE_OK)
        return 0;
    key[ulen] = '\0';
    return ulen + 1;
}

static uint64_t offline_seq_get(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void offline_seq_put(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static int offline_first_one(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    if (klen < 8)
        return STORE_CORRUPT;
    memcpy(ud, (const char *)key + klen - 8, 8);
    return 1; /* stop at the first */
}

/* Sequence numbers of the user's first and last message; STORE_NOTFOUND
 * when there is none. */
static int offline_range(store_txn *t, const char *prefix, size_t plen, uint64_t *first, uint64_t *last)
{
    unsigned char key[RECORD_USER_MAX + 10];
    size_t klen;
    int rc = store_last_key(t, OFFLINE_DB, prefix, plen, key, sizeof key, &klen);
    if (rc != STORE_OK)
        return rc;
    if (klen != plen + 8)
        return STORE_CORRUPT;
    *last = offline_seq_get(key + plen);
    unsigned char seq[8];
    rc = store_iter(t, OFFLINE_DB, prefix, plen, offline_first_one, seq);
    if (rc != 1)
        return rc == STORE_OK ? STORE_NOTFOUND : rc;
    *first = offline_seq_get(seq);
    return STORE_OK;
}

int offline_push(store *s, const char *user, const char *xml, size_t len, int64_t stamp_ms, size_t max_per_user)
{
    char key[RECORD_USER_MAX + 10];
    size_t plen = offline_prefix(user, key);
    if (plen == 0)
        return STORE_ERROR;
    record_writer w;
    record_writer_init(&w, 2);
    record_put_int(&w, "ts", stamp_ms);
    record_put_str(&w, "xml", xml, len);
    const void *data;
    size_t dlen;
    int rc = record_finish(&w, &data, &dlen);
    store_txn *t = NULL;
    if (rc == STORE_OK)
        rc = store_txn_begin(s, true, &t);
    if (rc != STORE_OK) {
        record_writer_free(&w);
        return rc;
    }
    uint64_t first = 0, last = 0;
    rc = offline_range(t, key, plen, &first, &last);
    if (rc == STORE_NOTFOUND) {
        first = 1;
        last = 0;
        rc = STORE_OK;
    }
    if (rc == STORE_OK && max_per_user > 0 && last - first + 1 >= max_per_user && last >= first)
        rc = STORE_FULL;
    if (rc == STORE_OK) {
        offline_seq_put((unsigned char *)key + plen, last + 1);
        rc = store_put(t, OFFLINE_DB, key, plen + 8, data, dlen, true);
    }
    if (rc == STORE_OK)
        rc = store_txn_commit(t);
    else
        store_txn_abort(t);
    record_writer_free(&w);
    return rc;
}

typedef struct offline_take_ctx {
    int (*cb)(void *ud, const char *xml, size_t len, int64_t stamp_ms);
    void *ud;
} offline_take_ctx;

static int offline_take_one(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    offline_take_ctx *ctx = ud;
    record_reader r;
    if (record_read(&r, val, vlen) != STORE_OK)
        return 0; /* undeliverable: skipped, and deleted with the rest */
    int64_t ts;
    const char *xml;
    size_t len;
    int rc = 0;
    if (record_get_int(&r, "ts", &ts) == STORE_OK && record_get_str(&r, "xml", &xml, &len) == STORE_OK)
        rc = ctx->cb(ctx->ud, xml, len, ts);
    record_reader_free(&r);
    return rc;
}

/* Returns STORE_OK after delivering and deleting every message, the
 * callback's non-zero value (nothing deleted), or a negative store code.  A
 * record that does not decode is not passed to cb but is deleted with the
 * others, so it cannot block delivery forever.  cb runs inside the write
 * transaction: it must not open another write transaction on s. */
int offline_take(store *s, const char *user, int (*cb)(void *ud, const char *xml, size_t len, int64_t stamp_ms),
                 void *ud)
{
    char prefix[RECORD_USER_MAX + 10];
    size_t plen = offline_prefix(user, prefix);
    if (plen == 0)
        return STORE_OK; /* an invalid name has no messages */
    store_txn *t;
    int rc = store_txn_begin(s, true, &t);
    if (rc != STORE_OK)
        return rc;
    offline_take_ctx ctx = {cb, ud};
    rc = store_iter(t, OFFLINE_DB, prefix, plen, offline_take_one, &ctx);
    if (rc == STORE_OK)
        rc = offline_remove_all_txn(t, user);
    if (rc == STORE_OK)
        rc = store_txn_commit(t);
    else
        store_txn_abort(t);
    return rc;
}

size_t offline_count(store *s, const char *user)
{
    char prefix[RECORD_USER_MAX + 10];
    size_t plen = offline_prefix(user, prefix);
    if (plen == 0)
        return 0;
    store_txn *t;
    if (store_txn_begin(s, false, &t) != STORE_OK)
        return 0;
    uint64_t first, last;
    size_t n = 0;
    if (offline_range(t, prefix, plen, &first, &last) == STORE_OK && last >= first)
        n = (size_t)(last - first + 1);
    store_txn_abort(t);
    return n;
}

int offline_remove_all_txn(store_txn *t, const char *user)
{
    char prefix[RECORD_USER_MAX + 10];
    size_t plen = offline_prefix(user, prefix);
    if (plen == 0)
        return STORE_OK;
    return store_del_prefix(t, OFFLINE_DB, prefix, plen);
}
