/* record.c - the msgpack encoding shared by stored records (see record.h):
 * a map with "v" = RECORD_VERSION plus named fields, decoded by field name so
 * that unknown fields are ignored and missing required ones are
 * STORE_CORRUPT.  Uses msgpack-c's C API (sbuffer/packer, msgpack_unpack).
 */
#include "record.h"

#include <string.h>
#include <stringprep.h>

#include "store.h"

void record_writer_init(record_writer *w, size_t nfields)
{
    msgpack_sbuffer_init(&w->buf);
    msgpack_packer_init(&w->pk, &w->buf, msgpack_sbuffer_write);
    w->failed = false;
    record_check(w, msgpack_pack_map(&w->pk, nfields + 1));
    record_put_uint(w, "v", RECORD_VERSION);
}

void record_writer_free(record_writer *w)
{
    msgpack_sbuffer_destroy(&w->buf);
    memset(&w->buf, 0, sizeof w->buf);
}

void record_check(record_writer *w, int pack_rc)
{
    if (pack_rc != 0)
        w->failed = true;
}

void record_key(record_writer *w, const char *key)
{
    record_check(w, msgpack_pack_str_with_body(&w->pk, key, strlen(key)));
}

void record_put_uint(record_writer *w, const char *key, uint64_t v)
{
    record_key(w, key);
    record_check(w, msgpack_pack_uint64(&w->pk, v));
}

void record_put_int(record_writer *w, const char *key, int64_t v)
{
    record_key(w, key);
    record_check(w, msgpack_pack_int64(&w->pk, v));
}

void record_put_bool(record_writer *w, const char *key, bool v)
{
    record_key(w, key);
    record_check(w, v ? msgpack_pack_true(&w->pk) : msgpack_pack_false(&w->pk));
}

void record_put_str(record_writer *w, const char *key, const char *s, size_t len)
{
    record_key(w, key);
    record_check(w, msgpack_pack_str_with_body(&w->pk, s, len));
}

void record_put_bin(record_writer *w, const char *key, const void *p, size_t len)
{
    record_key(w, key);
    record_check(w, msgpack_pack_bin_with_body(&w->pk, p, len));
}

int record_finish(record_writer *w, const void **data, size_t *len)
{
    if (w->failed)
        return STORE_ERROR;
    *data = w->buf.data;
    *len = w->buf.size;
    return STORE_OK;
}

int record_read(record_reader *r, const void *data, size_t len)
{
    r->live = false;
    /* Records are small maps: one zone chunk holds the decoded objects. */
    if (!msgpack_zone_init(&r->zone, 1024))
        return STORE_ERROR;
    size_t off = 0;
    msgpack_unpack_return rc = msgpack_unpack(data, len, &off, &r->zone, &r->root);
    if (rc == MSGPACK_UNPACK_NOMEM_ERROR) {
        msgpack_zone_destroy(&r->zone);
        return STORE_ERROR;
    }
    r->live = true;
    uint64_t version = 0;
    if (rc != MSGPACK_UNPACK_SUCCESS || r->root.type != MSGPACK_OBJECT_MAP ||
        record_get_uint(r, "v", &version) != STORE_OK || version != RECORD_VERSION) {
        record_reader_free(r);
        return STORE_CORRUPT;
    }
    return STORE_OK;
}

void record_reader_free(record_reader *r)
{
    if (r->live)
        msgpack_zone_destroy(&r->zone);
    r->live = false;
}

const msgpack_object *record_field(const record_reader *r, const char *key)
{
    if (!r->live || r->root.type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t klen = strlen(key);
    const msgpack_object_map *m = &r->root.via.map;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen && memcmp(k->via.str.ptr, key, klen) == 0)
            return &m->ptr[i].val;
    }
    return NULL;
}

int record_get_uint(const record_reader *r, const char *key, uint64_t *out)
{
    const msgpack_object *o = record_field(r, key);
    if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return STORE_CORRUPT;
    *out = o->via.u64;
    return STORE_OK;
}

int record_get_int(const record_reader *r, const char *key, int64_t *out)
{
    const msgpack_object *o = record_field(r, key);
    if (!o)
        return STORE_CORRUPT;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return STORE_OK;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *out = (int64_t)o->via.u64;
        return STORE_OK;
    }
    return STORE_CORRUPT;
}

int record_get_bool(const record_reader *r, const char *key, bool *out)
{
    const msgpack_object *o = record_field(r, key);
    if (!o || o->type != MSGPACK_OBJECT_BOOLEAN)
        return STORE_CORRUPT;
    *out = o->via.boolean;
    return STORE_OK;
}

int record_get_str(const record_reader *r, const char *key, const char **s, size_t *len)
{
    const msgpack_object *o = record_field(r, key);
    if (!o || o->type != MSGPACK_OBJECT_STR)
        return STORE_CORRUPT;
    *s = o->via.str.ptr;
    *len = o->via.str.size;
    return STORE_OK;
}

int record_get_bin(const record_reader *r, const char *key, const void **p, size_t *len)
{
    const msgpack_object *o = record_field(r, key);
    if (!o || o->type != MSGPACK_OBJECT_BIN)
        return STORE_CORRUPT;
    *p = o->via.bin.ptr;
    *len = o->via.bin.size;
    return STORE_OK;
}

int record_prep_user(const char *user, char *buf, size_t *len)
{
    if (!user)
        return STORE_ERROR;
    size_t n = strlen(user);
    if (n == 0 || n > RECORD_USER_MAX)
        return STORE_ERROR;
    /* Names made only of [a-z0-9._-] are their own Nodeprep form: skip the
     * library (and its allocations) on the login path for the common case. */
    bool plain = true;
    for (size_t i = 0; i < n && plain; i++) {
        char c = user[i];
        plain = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    }
    memcpy(buf, user, n + 1);
    if (!plain) {
        if (stringprep_xmpp_nodeprep(buf, RECORD_USER_MAX + 1) != STRINGPREP_OK)
            return STORE_ERROR;
        n = strlen(buf);
        if (n == 0)
            return STORE_ERROR;
    }
    *len = n;
    return STORE_OK;
}
