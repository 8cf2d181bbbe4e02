/* roster.c - stored roster items (roster.h, RFC 6121 section 2) in the
 * "roster" database.  Key: "<user>\0<contact bare jid>" with the user
 * Nodeprep'd and the contact normalised; value: a record (record.h) with
 * the name, subscription state, pending flags and groups.  The subscription
 * state machine is not here: this module only stores what it is given.
 * Keys are bounded by LMDB's 511-byte key size; a longer pair is refused.
 */
#include "roster.h"

#include <stdlib.h>
#include <string.h>

#include "jid.h"
#include "record.h"

#define ROSTER_DB "roster"
#define ROSTER_KEY_MAX 511

void roster_item_clear(roster_item *item)
{
    free(item->jid);
    free(item->name);
    for (size_t i = 0; i < item->ngroups; i++)
        free(item->groups[i]);
    free(item->groups);
    memset(item, 0, sizeof *item);
}

const char *roster_sub_name(roster_sub sub)
{
    switch (sub) {
    case ROSTER_SUB_TO:
        return "to";
    case ROSTER_SUB_FROM:
        return "from";
    case ROSTER_SUB_BOTH:
        return "both";
    default:
        return "none";
    }
}

/* "<user>\0" into key; returns its length or 0 if the user is invalid. */
static size_t roster_prefix(const char *user, char *key)
{
    size_t ulen;
    if (record_prep_user(user, key, &ulen) != STORE_OK || ulen + 1 >= ROSTER_KEY_MAX)
        return 0;
    key[ulen] = '\0';
    return ulen + 1;
}

/* "<user>\0<contact>" into key (ROSTER_KEY_MAX + 1 bytes, and user buffer
 * room); returns the length, 0 if either part is invalid or a full JID, or
 * the pair too long. */
static size_t roster_key(const char *user, const char *contact, char *key)
{
    size_t plen = roster_prefix(user, key);
    if (plen == 0 || !contact)
        return 0;
    jid j;
    if (jid_parse(contact, &j) != 0)
        return 0;
    size_t len = 0;
    char *bare = j.resource ? NULL : jid_bare(&j);
    if (bare) {
        size_t blen = strlen(bare);
        if (plen + blen <= ROSTER_KEY_MAX) {
            memcpy(key + plen, bare, blen);
            len = plen + blen;
        }
        free(bare);
    }
    jid_clear(&j);
    return len;
}

static char *roster_strndup(const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/* Decodes a stored value into out (contact taken from the key).  STORE_OK,
 * STORE_CORRUPT or STORE_ERROR (out of memory); out is cleared on failure. */
static int roster_decode(const char *contact, size_t clen, const void *val, size_t vlen, roster_item *out)
{
    memset(out, 0, sizeof *out);
    record_reader r;
    int rc = record_read(&r, val, vlen);
    if (rc != STORE_OK)
        return rc;
    uint64_t sub;
    bool ask, pending;
    const msgpack_object *name = record_field(&r, "name");
    const msgpack_object *groups = record_field(&r, "groups");
    rc = STORE_CORRUPT;
    if (record_get_uint(&r, "sub", &sub) != STORE_OK || sub > ROSTER_SUB_BOTH ||
        record_get_bool(&r, "ask", &ask) != STORE_OK || record_get_bool(&r, "pending", &pending) != STORE_OK ||
        !groups || groups->type != MSGPACK_OBJECT_ARRAY ||
        (name && name->type != MSGPACK_OBJECT_STR && name->type != MSGPACK_OBJECT_NIL))
        goto done;
    for (uint32_t i = 0; i < groups->via.array.size; i++)
        if (groups->via.array.ptr[i].type != MSGPACK_OBJECT_STR)
            goto done;
    rc = STORE_ERROR;
    out->sub = (roster_sub)sub;
    out->ask_out = ask;
    out->pending_in = pending;
    if (!(out->jid = roster_strndup(contact, clen)))
        goto done;
    if (name && name->type == MSGPACK_OBJECT_STR && !(out->name = roster_strndup(name->via.str.ptr, name->via.str.size)))
        goto done;
    if (groups->via.array.size > 0) {
        if (!(out->groups = calloc(groups->via.array.size, sizeof *out->groups)))
            goto done;
        for (uint32_t i = 0; i < groups->via.array.size; i++) {
            const msgpack_object *g = &groups->via.array.ptr[i];
            if (!(out->groups[i] = roster_strndup(g->via.str.ptr, g->via.str.size)))
                goto done;
            out->ngroups++;
        }
    }
    rc = STORE_OK;
done:
    record_reader_free(&r);
    if (rc != STORE_OK)
        roster_item_clear(out);
    return rc;
}

static int roster_encode(record_writer *w, const roster_item *item, const void **data, size_t *len)
{
    record_writer_init(w, item->name ? 5 : 4);
    record_put_uint(w, "sub", (uint64_t)item->sub);
    record_put_bool(w, "ask", item->ask_out);
    record_put_bool(w, "pending", item->pending_in);
    if (item->name)
        record_put_str(w, "name", item->name, strlen(item->name));
    record_key(w, "groups");
    record_check(w, msgpack_pack_array(&w->pk, item->ngroups));
    for (size_t i = 0; i < item->ngroups; i++) {
        const char *g = item->groups[i] ? item->groups[i] : "";
        record_check(w, msgpack_pack_str_with_body(&w->pk, g, strlen(g)));
    }
    return record_finish(w, data, len);
}

int roster_get(store *s, const char *user, const char *contact, roster_item *out)
{
    memset(out, 0, sizeof *out);
    char key[RECORD_USER_MAX + ROSTER_KEY_MAX + 2];
    size_t klen = roster_key(user, contact, key);
    if (klen == 0)
        return STORE_NOTFOUND; /* no such key can be stored */
    size_t plen = strlen(key) + 1;
    store_txn *t;
    int rc = store_txn_begin(s, false, &t);
    if (rc != STORE_OK)
        return rc;
    const void *val;
    size_t vlen;
    rc = store_get(t, ROSTER_DB, key, klen, &val, &vlen);
    if (rc == STORE_OK)
        rc = roster_decode(key + plen, klen - plen, val, vlen, out);
    store_txn_abort(t);
    return rc;
}

static int roster_count_one(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    (*(size_t *)ud)++;
    return 0;
}

int roster_put(store *s, const char *user, const roster_item *item, size_t max_items)
{
    char key[RECORD_USER_MAX + ROSTER_KEY_MAX + 2];
    size_t klen = item->sub <= ROSTER_SUB_BOTH ? roster_key(user, item->jid, key) : 0;
    if (klen == 0)
        return STORE_ERROR;
    size_t plen = strlen(key) + 1;
    record_writer w;
    const void *data;
    size_t len;
    int rc = roster_encode(&w, item, &data, &len);
    if (rc != STORE_OK) {
        record_writer_free(&w);
        return rc;
    }
    store_txn *t;
    rc = store_txn_begin(s, true, &t);
    if (rc != STORE_OK) {
        record_writer_free(&w);
        return rc;
    }
    if (max_items > 0) {
        const void *old;
        size_t oldlen;
        rc = store_get(t, ROSTER_DB, key, klen, &old, &oldlen);
        if (rc == STORE_NOTFOUND) {
            size_t n = 0;
            rc = store_iter(t, ROSTER_DB, key, plen, roster_count_one, &n);
            if (rc == STORE_OK && n >= max_items)
                rc = STORE_FULL;
        }
    }
    if (rc == STORE_OK)
        rc = store_put(t, ROSTER_DB, key, klen, data, len, false);
    if (rc == STORE_OK)
        rc = store_txn_commit(t);
    else
        store_txn_abort(t);
    record_writer_free(&w);
    return rc;
}

int roster_remove(store *s, const char *user, const char *contact)
{
    char key[RECORD_USER_MAX + ROSTER_KEY_MAX + 2];
    size_t klen = roster_key(user, contact, key);
    if (klen == 0)
        return STORE_NOTFOUND;
    store_txn *t;
    int rc = store_txn_begin(s, true, &t);
    if (rc != STORE_OK)
        return rc;
    rc = store_del(t, ROSTER_DB, key, klen);
    if (rc == STORE_OK)
        rc = store_txn_commit(t);
    else
        store_txn_abort(t);
    return rc;
}

typedef struct roster_list_ctx {
    size_t plen;
    int (*cb)(void *ud, const roster_item *item);
    void *ud;
} roster_list_ctx;

static int roster_list_one(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    roster_list_ctx *ctx = ud;
    roster_item item;
    int rc = roster_decode((const char *)key + ctx->plen, klen - ctx->plen, val, vlen, &item);
    if (rc != STORE_OK)
        return rc;
    rc = ctx->cb(ctx->ud, &item);
    roster_item_clear(&item);
    return rc;
}

int roster_list(store *s, const char *user, int (*cb)(void *ud, const roster_item *item), void *ud)
{
    char prefix[RECORD_USER_MAX + 2];
    size_t plen = roster_prefix(user, prefix);
    if (plen == 0)
        return STORE_OK; /* an invalid name has no roster */
    store_txn *t;
    int rc = store_txn_begin(s, false, &t);
    if (rc != STORE_OK)
        return rc;
    roster_list_ctx ctx = {plen, cb, ud};
    rc = store_iter(t, ROSTER_DB, prefix, plen, roster_list_one, &ctx);
    store_txn_abort(t);
    return rc;
}

int roster_remove_all_txn(store_txn *t, const char *user)
{
    char prefix[RECORD_USER_MAX + 2];
    size_t plen = roster_prefix(user, prefix);
    if (plen == 0)
        return STORE_OK;
    return store_del_prefix(t, ROSTER_DB, prefix, plen);
}
