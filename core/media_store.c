/* media_store.c - broadcast records (media_store.h). */
#include "media_store.h"

#include <string.h>

#include "record.h"

int media_live_put(store_txn *t, const media_live_record *r)
{
    if (strlen(r->id) != RES_ID_LEN)
        return STORE_ERROR;
    record_writer w;
    record_writer_init(&w, 8);
    record_put_uint(&w, "state", (uint64_t)r->state);
    record_put_int(&w, "first", r->first_aired_ms);
    record_put_int(&w, "started", r->started_ms);
    record_put_int(&w, "ended", r->ended_ms);
    record_put_uint(&w, "airings", r->airings);
    record_put_uint(&w, "peak", r->viewers_peak);
    record_put_uint(&w, "total", r->viewers_total);
    record_put_str(&w, "reason", r->reason, strlen(r->reason));
    const void *data;
    size_t len;
    int rc = record_finish(&w, &data, &len);
    if (rc == STORE_OK)
        rc = store_put(t, MEDIA_DB_LIVES, r->id, RES_ID_LEN, data, len, false);
    record_writer_free(&w);
    return rc;
}

static int decode(const char *id, size_t idlen, const void *val, size_t vlen, media_live_record *out)
{
    memset(out, 0, sizeof *out);
    if (idlen != RES_ID_LEN)
        return STORE_CORRUPT;
    record_reader r;
    int rc = record_read(&r, val, vlen);
    if (rc != STORE_OK)
        return rc;
    uint64_t state, airings, peak, total;
    const char *reason;
    size_t rlen;
    if (record_get_uint(&r, "state", &state) || record_get_int(&r, "first", &out->first_aired_ms) ||
        record_get_int(&r, "started", &out->started_ms) || record_get_int(&r, "ended", &out->ended_ms) ||
        record_get_uint(&r, "airings", &airings) || record_get_uint(&r, "peak", &peak) ||
        record_get_uint(&r, "total", &total) || record_get_str(&r, "reason", &reason, &rlen) ||
        state < MEDIA_LIVE_ON_AIR || state > MEDIA_LIVE_INTERRUPTED || rlen > MEDIA_REASON_MAX ||
        airings > UINT32_MAX || peak > UINT32_MAX || total > UINT32_MAX) {
        record_reader_free(&r);
        memset(out, 0, sizeof *out);
        return STORE_CORRUPT;
    }
    memcpy(out->id, id, RES_ID_LEN);
    out->state = (media_live_state)state;
    out->airings = (uint32_t)airings;
    out->viewers_peak = (uint32_t)peak;
    out->viewers_total = (uint32_t)total;
    memcpy(out->reason, reason, rlen);
    record_reader_free(&r);
    return STORE_OK;
}

int media_live_get(store_txn *t, const char *id, media_live_record *out)
{
    memset(out, 0, sizeof *out);
    if (!id || strlen(id) != RES_ID_LEN)
        return STORE_NOTFOUND;
    const void *val;
    size_t vlen;
    int rc = store_get(t, MEDIA_DB_LIVES, id, RES_ID_LEN, &val, &vlen);
    if (rc != STORE_OK)
        return rc;
    return decode(id, RES_ID_LEN, val, vlen, out);
}

typedef struct list_ctx {
    int (*cb)(void *ud, const media_live_record *r);
    void *ud;
} list_ctx;

static int list_one(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    list_ctx *l = ud;
    media_live_record r;
    if (decode(key, klen, val, vlen, &r) != STORE_OK)
        return 0; /* a record that does not decode is skipped in listings */
    return l->cb(l->ud, &r);
}

int media_live_list(store_txn *t, int (*cb)(void *ud, const media_live_record *r), void *ud)
{
    list_ctx l = {cb, ud};
    int rc = store_iter(t, MEDIA_DB_LIVES, NULL, 0, list_one, &l);
    return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

const char *media_live_state_name(media_live_state s)
{
    switch (s) {
    case MEDIA_LIVE_ON_AIR:
        return "on_air";
    case MEDIA_LIVE_ENDED:
        return "ended";
    case MEDIA_LIVE_INTERRUPTED:
        return "interrupted";
    }
    return "ended";
}
