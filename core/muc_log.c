/* muc_log.c - room records and message logs in the store (muc_log.h). */
#include "muc_log.h"

#include <stdlib.h>
#include <string.h>

#include "record.h"

#define LOG_KEY_LEN (RES_ID_LEN + 8)

static size_t log_key(unsigned char *key, const char *room_id, uint64_t seq)
{
    memcpy(key, room_id, RES_ID_LEN);
    for (int i = 7; i >= 0; i--) {
        key[RES_ID_LEN + (size_t)i] = (unsigned char)(seq & 0xff);
        seq >>= 8;
    }
    return LOG_KEY_LEN;
}

static uint64_t key_seq(const unsigned char *key)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++)
        v = (v << 8) | key[RES_ID_LEN + i];
    return v;
}

static bool id_ok(const char *id)
{
    return id && strlen(id) == RES_ID_LEN;
}

static void put_s(record_writer *w, const char *key, const char *s)
{
    s = s ? s : "";
    record_put_str(w, key, s, strlen(s));
}

/* A field as a NUL-terminated copy (caller frees); "" if absent. */
static int get_s(const record_reader *r, const char *key, char **out)
{
    const char *s = "";
    size_t n = 0;
    if (record_field(r, key) && record_get_str(r, key, &s, &n) != STORE_OK)
        return STORE_CORRUPT;
    *out = malloc(n + 1);
    if (!*out)
        return STORE_ERROR;
    memcpy(*out, s, n);
    (*out)[n] = '\0';
    return STORE_OK;
}

int muc_room_record_put(store_txn *t, const muc_room_record *r)
{
    if (!id_ok(r->id))
        return STORE_ERROR;
    record_writer w;
    record_writer_init(&w, r->log_removed_ms ? 13 : 12);
    record_put_uint(&w, "state", (uint64_t)r->state);
    record_put_int(&w, "opened", r->opened_ms);
    record_put_int(&w, "close_at", r->close_at);
    record_put_int(&w, "closed", r->closed_ms);
    record_put_uint(&w, "notices", r->notices);
    record_put_uint(&w, "slow", r->slow_mode_s);
    put_s(&w, "subject", r->subject);
    put_s(&w, "subject_nick", r->subject_nick);
    record_put_int(&w, "subject_at", r->subject_ms);
    put_s(&w, "bans", r->bans);
    put_s(&w, "devoiced", r->devoiced);
    put_s(&w, "reason", r->close_reason);
    if (r->log_removed_ms)
        record_put_int(&w, "log_removed", r->log_removed_ms);
    const void *data;
    size_t len;
    int rc = record_finish(&w, &data, &len);
    if (rc == STORE_OK)
        rc = store_put(t, MUC_DB_ROOMS, r->id, RES_ID_LEN, data, len, false);
    record_writer_free(&w);
    return rc;
}

static int record_decode(const char *id, size_t idlen, const void *val, size_t vlen, muc_room_record *out)
{
    memset(out, 0, sizeof *out);
    if (idlen != RES_ID_LEN)
        return STORE_CORRUPT;
    memcpy(out->id, id, RES_ID_LEN);
    record_reader r;
    int rc = record_read(&r, val, vlen);
    if (rc != STORE_OK)
        return rc;
    uint64_t state = 0, notices = 0, slow = 0;
    rc = record_get_uint(&r, "state", &state);
    if (rc == STORE_OK)
        rc = record_get_int(&r, "opened", &out->opened_ms);
    if (rc == STORE_OK)
        rc = record_get_int(&r, "close_at", &out->close_at);
    if (rc == STORE_OK)
        rc = record_get_int(&r, "closed", &out->closed_ms);
    if (rc == STORE_OK)
        rc = record_get_uint(&r, "notices", &notices);
    if (rc == STORE_OK)
        rc = record_get_uint(&r, "slow", &slow);
    if (rc == STORE_OK)
        rc = record_get_int(&r, "subject_at", &out->subject_ms);
    if (rc == STORE_OK)
        rc = get_s(&r, "subject", &out->subject);
    if (rc == STORE_OK)
        rc = get_s(&r, "subject_nick", &out->subject_nick);
    if (rc == STORE_OK)
        rc = get_s(&r, "bans", &out->bans);
    if (rc == STORE_OK)
        rc = get_s(&r, "devoiced", &out->devoiced);
    if (rc == STORE_OK)
        rc = get_s(&r, "reason", &out->close_reason);
    if (rc == STORE_OK && record_field(&r, "log_removed"))
        rc = record_get_int(&r, "log_removed", &out->log_removed_ms);
    record_reader_free(&r);
    if (rc == STORE_OK && (state > MUC_ROOM_CLOSED || slow > UINT32_MAX || notices > UINT32_MAX))
        rc = STORE_CORRUPT;
    if (rc != STORE_OK) {
        muc_room_record_clear(out);
        return rc;
    }
    out->state = (muc_room_state)state;
    out->notices = (uint32_t)notices;
    out->slow_mode_s = (uint32_t)slow;
    return STORE_OK;
}

int muc_room_record_get(store_txn *t, const char *id, muc_room_record *out)
{
    memset(out, 0, sizeof *out);
    if (!id_ok(id))
        return STORE_NOTFOUND;
    const void *val;
    size_t vlen;
    int rc = store_get(t, MUC_DB_ROOMS, id, RES_ID_LEN, &val, &vlen);
    if (rc != STORE_OK)
        return rc;
    return record_decode(id, RES_ID_LEN, val, vlen, out);
}

typedef struct list_ctx {
    int (*cb)(void *ud, const muc_room_record *r);
    void *ud;
    int rc;
} list_ctx;

static int list_one(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    list_ctx *c = ud;
    muc_room_record r;
    int rc = record_decode(key, klen, val, vlen, &r);
    if (rc != STORE_OK) {
        c->rc = rc;
        return 1;
    }
    rc = c->cb(c->ud, &r);
    muc_room_record_clear(&r);
    return rc;
}

int muc_room_record_list(store_txn *t, int (*cb)(void *ud, const muc_room_record *r), void *ud)
{
    list_ctx c = {cb, ud, STORE_OK};
    int rc = store_iter(t, MUC_DB_ROOMS, NULL, 0, list_one, &c);
    if (c.rc != STORE_OK)
        return c.rc;
    return rc < 0 ? rc : STORE_OK;
}

void muc_room_record_clear(muc_room_record *r)
{
    free(r->subject);
    free(r->subject_nick);
    free(r->bans);
    free(r->devoiced);
    free(r->close_reason);
    memset(r, 0, sizeof *r);
}

int muc_log_append(store_txn *t, const char *room_id, const muc_log_entry *e)
{
    if (!id_ok(room_id) || e->seq == 0)
        return STORE_ERROR;
    record_writer w;
    record_writer_init(&w, e->addressed ? 7 : 6);
    record_put_int(&w, "t", e->time_ms);
    put_s(&w, "n", e->nick);
    put_s(&w, "j", e->jid);
    put_s(&w, "b", e->body);
    put_s(&w, "i", e->id);
    record_put_bool(&w, "x", e->notice);
    if (e->addressed)
        record_put_bool(&w, "a", true);
    const void *data;
    size_t len;
    int rc = record_finish(&w, &data, &len);
    if (rc == STORE_OK) {
        unsigned char key[LOG_KEY_LEN];
        rc = store_put(t, MUC_DB_LOG, key, log_key(key, room_id, e->seq), data, len, true);
    }
    record_writer_free(&w);
    return rc;
}

int muc_log_remove(store_txn *t, const char *room_id)
{
    if (!id_ok(room_id))
        return STORE_ERROR;
    int rc = store_del_prefix(t, MUC_DB_LOG, room_id, RES_ID_LEN);
    return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

int muc_log_count(store_txn *t, size_t *n)
{
    return store_count(t, MUC_DB_LOG, n);
}

int muc_log_last_seq(store_txn *t, const char *room_id, uint64_t *seq)
{
    *seq = 0;
    if (!id_ok(room_id))
        return STORE_ERROR;
    unsigned char key[LOG_KEY_LEN + 8];
    size_t klen = 0;
    int rc = store_last_key(t, MUC_DB_LOG, room_id, RES_ID_LEN, key, sizeof key, &klen);
    if (rc == STORE_NOTFOUND)
        return STORE_OK;
    if (rc != STORE_OK)
        return rc;
    if (klen != LOG_KEY_LEN)
        return STORE_CORRUPT;
    *seq = key_seq(key);
    return STORE_OK;
}

typedef struct read_ctx {
    int (*cb)(void *ud, const muc_log_entry *e);
    void *ud;
    char *buf; /* the entry's strings, reused */
    size_t cap;
    int rc;
} read_ctx;

/* Copies the string field key into c->buf at *off (NUL-terminated). */
static int take_str(read_ctx *c, const record_reader *r, const char *key, size_t *off, size_t *at)
{
    const char *s = "";
    size_t n = 0;
    if (record_field(r, key) && record_get_str(r, key, &s, &n) != STORE_OK)
        return STORE_CORRUPT;
    if (*off + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 256;
        while (cap < *off + n + 1)
            cap *= 2;
        char *grown = realloc(c->buf, cap);
        if (!grown)
            return STORE_ERROR;
        c->buf = grown;
        c->cap = cap;
    }
    memcpy(c->buf + *off, s, n);
    c->buf[*off + n] = '\0';
    *at = *off;
    *off += n + 1;
    return STORE_OK;
}

static int read_one(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    read_ctx *c = ud;
    if (klen != LOG_KEY_LEN) {
        c->rc = STORE_CORRUPT;
        return 1;
    }
    record_reader r;
    int rc = record_read(&r, val, vlen);
    muc_log_entry e = {0};
    size_t off = 0, at[4] = {0};
    if (rc == STORE_OK) {
        e.seq = key_seq(key);
        rc = record_get_int(&r, "t", &e.time_ms);
        if (rc == STORE_OK)
            rc = record_get_bool(&r, "x", &e.notice);
        if (rc == STORE_OK && record_field(&r, "a"))
            rc = record_get_bool(&r, "a", &e.addressed);
        static const char *const keys[4] = {"n", "j", "b", "i"};
        for (size_t i = 0; i < 4 && rc == STORE_OK; i++)
            rc = take_str(c, &r, keys[i], &off, &at[i]);
        record_reader_free(&r);
    }
    if (rc != STORE_OK) {
        c->rc = rc;
        return 1;
    }
    /* Pointers only now: the buffer may have moved while it grew. */
    e.nick = c->buf + at[0];
    e.jid = c->buf + at[1];
    e.body = c->buf + at[2];
    e.id = c->buf + at[3];
    return c->cb(c->ud, &e);
}

int muc_log_read(store_txn *t, const char *room_id, uint64_t from_seq,
                 int (*cb)(void *ud, const muc_log_entry *e), void *ud)
{
    if (!id_ok(room_id))
        return STORE_ERROR;
    unsigned char from[LOG_KEY_LEN], to[LOG_KEY_LEN];
    log_key(from, room_id, from_seq);
    log_key(to, room_id, UINT64_MAX);
    read_ctx c = {cb, ud, NULL, 0, STORE_OK};
    int rc = store_iter_range(t, MUC_DB_LOG, from, LOG_KEY_LEN, to, LOG_KEY_LEN, read_one, &c);
    free(c.buf);
    if (c.rc != STORE_OK)
        return c.rc;
    return rc;
}

bool muc_list_has(const char *list, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = list; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len == n && memcmp(p, line, n) == 0)
            return true;
        p = nl ? nl + 1 : p + len;
    }
    return false;
}

char *muc_list_with(const char *list, const char *line, bool present)
{
    list = list ? list : "";
    size_t n = strlen(line);
    size_t cap = strlen(list) + n + 2;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t o = 0;
    for (const char *p = list; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        bool same = len == n && memcmp(p, line, n) == 0;
        if (!same && len > 0) {
            if (o)
                out[o++] = '\n';
            memcpy(out + o, p, len);
            o += len;
        }
        p = nl ? nl + 1 : p + len;
    }
    if (present && n > 0) {
        if (o)
            out[o++] = '\n';
        memcpy(out + o, line, n);
        o += n;
    }
    out[o] = '\0';
    return out;
}
