/* reservation.c - the booking rules (reservation.h) over the store.
 *
 * Databases (keys sort as bytes; numbers are big-endian so they sort by value):
 *   "channels"      channel id                      -> channel record
 *   "reservations"  reservation id                  -> reservation record
 *   "res_slots"     channel id, 0, end (u64)        -> start (u64), id
 *                   live bookings only (not cancelled): on one channel they
 *                   never overlap, so ordering by end also orders by start,
 *                   and the first entry ending after a new start is the only
 *                   one that can overlap it.
 *   "res_owner"     owner, 0, start (u64), id       -> (empty)
 *   "res_public"    start (u64), id                 -> (empty)
 *                   reconfirmed public and password lives
 *   "res_settings"  reservation id                  -> settings record
 * Records are msgpack maps (record.h).  Passwords are sealed (secret.h) with
 * the reservation ID and field name as associated data.
 *
 * Every change is one write transaction; the booking's overlap check and
 * insert share it, so of two bookings of one slot exactly one commits.
 */
#include "reservation.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "datetime.h"
#include "event.h"
#include "jid.h"
#include "record.h"
#include "schedule.h"

#define DB_CHANNELS "channels"
#define DB_RES "reservations"
#define DB_SLOTS "res_slots"
#define DB_OWNER "res_owner"
#define DB_PUBLIC "res_public"
#define DB_SETTINGS "res_settings"

/* A live lasts at most this long (the public index looks back this far). */
#define RES_LONGEST_S (7 * 86400)

/* ---- small helpers ---- */

static int fail(res_error *e, int code, const char *field, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(res_error *e, int code, const char *field, const char *fmt, ...)
{
    if (e) {
        snprintf(e->field, sizeof e->field, "%s", field ? field : "");
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof e->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int store_fail(res_error *e, int rc)
{
    if (rc == STORE_NOTFOUND)
        return fail(e, RES_E_NOTFOUND, "id", "no such reservation");
    return fail(e, RES_E_INTERNAL, "", "the store failed (%d)", rc);
}

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static bool empty(const char *s)
{
    return !s || !*s;
}

/* Characters of a UTF-8 string, or -1 when it is not valid UTF-8 or holds a
 * control character (newlines allowed when multiline). */
static long utf8_chars(const char *s, bool multiline)
{
    long n = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int len;
        unsigned cp;
        if (c < 0x80) {
            if ((c < 0x20 && !(multiline && (c == '\n' || c == '\r' || c == '\t'))) || c == 0x7f)
                return -1;
            p++;
            n++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return -1;
        }
        for (int i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return -1;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0))
            return -1;
        p += len;
        n++;
    }
    return n;
}

/* Checks a text field against its limit. */
static int check_text(const char *value, const char *field, long max, bool required, bool multiline, res_error *e)
{
    if (empty(value))
        return required ? fail(e, RES_E_INVALID, field, "%s: required", field) : RES_OK;
    long n = utf8_chars(value, multiline);
    if (n < 0)
        return fail(e, RES_E_INVALID, field, "%s: not valid text (UTF-8 without control characters)", field);
    if (n > max)
        return fail(e, RES_E_INVALID, field, "%s: at most %ld characters (got %ld)", field, max, n);
    return RES_OK;
}

/* The transcript parts a booking may choose ("" = the server's default). */
static bool transcript_part_ok(const char *v)
{
    return !*v || strcmp(v, "all") == 0 || strcmp(v, "live") == 0 || strcmp(v, "addressed") == 0;
}

static int parse_bool(const char *v, bool *out)
{
    if (empty(v)) {
        *out = false;
        return 0;
    }
    if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0) {
        *out = false;
        return 0;
    }
    return -1;
}

/* A host name: dot-separated labels of letters, digits and inner hyphens
 * (non-ASCII letters allowed for internationalised names). */
static bool domain_valid(const char *d)
{
    size_t dlen = strlen(d);
    if (dlen == 0 || dlen > 253)
        return false;
    const char *label = d;
    for (const char *p = d;; p++) {
        if (*p == '.' || *p == '\0') {
            size_t l = (size_t)(p - label);
            if (l == 0 || l > 63 || label[0] == '-' || p[-1] == '-')
                return false;
            if (*p == '\0')
                break;
            label = p + 1;
        } else {
            unsigned char c = (unsigned char)*p;
            if (!(c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
                return false;
        }
    }
    return true;
}

/* An e-mail address in the dot-atom form of RFC 5322 (what people type). */
static bool email_valid(const char *a)
{
    const char *at = strchr(a, '@');
    if (!at || at == a || strchr(at + 1, '@') || at - a > 64)
        return false;
    static const char atext[] = "!#$%&'*+/=?^_`{|}~-";
    for (const char *p = a; p < at; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '.') {
            if (p == a || p + 1 == at || p[1] == '.')
                return false;
        } else if (!(c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     strchr(atext, c))) {
            return false;
        }
    }
    return domain_valid(at + 1);
}

/* A bare JID with a local part ("xmpp:" prefix allowed). */
static bool bare_jid_valid(const char *a)
{
    if (strncmp(a, "xmpp:", 5) == 0)
        a += 5;
    jid j = {0};
    if (jid_parse(a, &j) != 0)
        return false;
    bool ok = j.node && !j.resource && domain_valid(j.domain);
    jid_clear(&j);
    return ok;
}

/* Normalises the friends list (trimmed lines, blank ones dropped) into a
 * malloc'd string, checking every address. */
static int check_friends(const char *text, char **out, res_error *e)
{
    *out = NULL;
    size_t cap = text ? strlen(text) + 1 : 1;
    char *buf = malloc(cap), *w = buf;
    if (!buf)
        return fail(e, RES_E_INTERNAL, "friends", "out of memory");
    *w = '\0';
    unsigned count = 0, line = 0;
    const char *p = text ? text : "";
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        line++;
        const char *a = p, *z = p + len;
        while (a < z && (*a == ' ' || *a == '\t' || *a == '\r' || *a == ','))
            a++;
        while (z > a && (z[-1] == ' ' || z[-1] == '\t' || z[-1] == '\r' || z[-1] == ','))
            z--;
        if (z > a) {
            char addr[RES_ADDRESS_MAX + 1];
            size_t alen = (size_t)(z - a);
            if (alen > RES_ADDRESS_MAX) {
                free(buf);
                return fail(e, RES_E_INVALID, "friends", "friends: line %u: address longer than %d bytes", line,
                            RES_ADDRESS_MAX);
            }
            memcpy(addr, a, alen);
            addr[alen] = '\0';
            if (utf8_chars(addr, false) < 0 || (!email_valid(addr) && !bare_jid_valid(addr))) {
                free(buf);
                return fail(e, RES_E_INVALID, "friends",
                            "friends: line %u: not an e-mail address or XMPP address (user@host)", line);
            }
            if (++count > RES_FRIENDS_MAX) {
                free(buf);
                return fail(e, RES_E_INVALID, "friends", "friends: at most %d addresses", RES_FRIENDS_MAX);
            }
            if (w != buf)
                *w++ = '\n';
            memcpy(w, addr, alen);
            w += alen;
            *w = '\0';
        }
        p += len;
        if (*p == '\n')
            p++;
    }
    *out = buf;
    return RES_OK;
}

static bool url_valid(const char *u)
{
    if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
        return false;
    const char *host = strstr(u, "//") + 2;
    if (*host == '\0' || *host == '/')
        return false;
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p <= 0x20 || *p == 0x7f || *p == '"' || *p == '<' || *p == '>' || *p == '\\')
            return false;
    return true;
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

uint64_t reservation_fee(uint64_t price_per_hour, int64_t duration_s)
{
    if (duration_s <= 0)
        return 0;
    unsigned __int128 x = (unsigned __int128)price_per_hour * (uint64_t)duration_s;
    unsigned __int128 fee = (x + 3599) / 3600;
    return fee > UINT64_MAX ? UINT64_MAX : (uint64_t)fee;
}

const char *res_level_name(res_level l)
{
    switch (l) {
    case RES_PUBLIC:
        return "public";
    case RES_PASSWORD:
        return "password";
    case RES_SECRET:
        return "secret";
    }
    return "secret";
}

const char *res_state_name(res_state s)
{
    switch (s) {
    case RES_AWAITING:
        return "awaiting_reconfirmation";
    case RES_RECONFIRMED:
        return "reconfirmed";
    case RES_CANCELLED:
        return "cancelled";
    case RES_LIVE:
        return "live";
    case RES_DONE:
        return "done";
    }
    return "done";
}

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

bool reservation_id_valid(const char *id)
{
    if (!id || strlen(id) != RES_ID_LEN)
        return false;
    for (const char *p = id; *p; p++)
        if (!strchr(b32, *p))
            return false;
    return true;
}

static int new_id(char out[RES_ID_LEN + 1])
{
    unsigned char r[17] = {0};
    if (RAND_bytes(r, 16) != 1)
        return -1;
    /* 26 groups of 5 bits from 128 bits (the last group padded with zeros). */
    for (int i = 0; i < RES_ID_LEN; i++) {
        int bit = i * 5, byte = bit / 8, shift = bit % 8;
        unsigned v = ((unsigned)r[byte] << 8 | r[byte + 1]) >> (11 - shift);
        out[i] = b32[v & 31];
    }
    out[RES_ID_LEN] = '\0';
    return 0;
}

static bool channel_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > CHANNEL_ID_MAX)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return false;
    return true;
}

/* ---- module ---- */

int reservations_init(reservations *rs, store *s, const secret_key *key, const res_policy *policy,
                      const res_hooks *hooks)
{
    memset(rs, 0, sizeof *rs);
    rs->store = s;
    rs->key = *key;
    rs->policy = *policy;
    if (hooks)
        rs->hooks = *hooks;
    return 0;
}

void reservations_free(reservations *rs)
{
    secret_key_wipe(&rs->key);
}

static void raise_event(reservations *rs, int type, const reservation *r)
{
    if (rs->hooks.event)
        rs->hooks.event(rs->hooks.ud, type, r);
}

/* ---- channels ---- */

int channel_check(const channel *ch, res_error *e)
{
    if (!channel_id_valid(ch->id))
        return fail(e, RES_E_INVALID, "id", "id: 1 to %d characters of a-z, 0-9, '-' and '_'", CHANNEL_ID_MAX);
    int rc = check_text(ch->name, "name", CHANNEL_NAME_MAX, true, false, e);
    if (rc != RES_OK)
        return rc;
    if (ch->capacity == 0 || ch->capacity > 1000000)
        return fail(e, RES_E_INVALID, "capacity", "capacity: 1 to 1000000 viewers");
    if (ch->bandwidth_kbps == 0 || ch->bandwidth_kbps > 1000000)
        return fail(e, RES_E_INVALID, "bandwidth_kbps", "bandwidth_kbps: 1 to 1000000");
    if (ch->price_per_hour > 1000000000000ULL)
        return fail(e, RES_E_INVALID, "price_per_hour", "price_per_hour: at most 1000000000000");
    return RES_OK;
}

int channel_put(reservations *rs, const channel *ch, res_error *e)
{
    int rc = channel_check(ch, e);
    if (rc != RES_OK)
        return rc;
    record_writer w;
    record_writer_init(&w, 4);
    record_put_str(&w, "name", ch->name, strlen(ch->name));
    record_put_uint(&w, "capacity", ch->capacity);
    record_put_uint(&w, "bandwidth", ch->bandwidth_kbps);
    record_put_uint(&w, "price", ch->price_per_hour);
    const void *data;
    size_t len;
    rc = record_finish(&w, &data, &len);
    store_txn *t = NULL;
    if (rc == STORE_OK)
        rc = store_txn_begin(rs->store, true, &t);
    if (rc == STORE_OK) {
        rc = store_put(t, DB_CHANNELS, ch->id, strlen(ch->id), data, len, false);
        rc = rc == STORE_OK ? store_txn_commit(t) : (store_txn_abort(t), rc);
    }
    record_writer_free(&w);
    return rc == STORE_OK ? RES_OK : store_fail(e, rc);
}

static int channel_decode(const char *id, size_t idlen, const void *val, size_t vlen, channel *out)
{
    memset(out, 0, sizeof *out);
    if (idlen > CHANNEL_ID_MAX)
        return STORE_CORRUPT;
    memcpy(out->id, id, idlen);
    record_reader r;
    int rc = record_read(&r, val, vlen);
    if (rc != STORE_OK)
        return rc;
    const char *name;
    size_t nlen;
    uint64_t cap, bw, price;
    if (record_get_str(&r, "name", &name, &nlen) != STORE_OK || nlen >= sizeof out->name ||
        record_get_uint(&r, "capacity", &cap) != STORE_OK || record_get_uint(&r, "bandwidth", &bw) != STORE_OK ||
        record_get_uint(&r, "price", &price) != STORE_OK || cap > UINT32_MAX || bw > UINT32_MAX) {
        record_reader_free(&r);
        return STORE_CORRUPT;
    }
    memcpy(out->name, name, nlen);
    out->capacity = (uint32_t)cap;
    out->bandwidth_kbps = (uint32_t)bw;
    out->price_per_hour = price;
    record_reader_free(&r);
    return STORE_OK;
}

static int channel_get_txn(store_txn *t, const char *id, channel *out)
{
    if (!channel_id_valid(id))
        return STORE_NOTFOUND;
    const void *val;
    size_t vlen;
    int rc = store_get(t, DB_CHANNELS, id, strlen(id), &val, &vlen);
    if (rc != STORE_OK)
        return rc;
    return channel_decode(id, strlen(id), val, vlen, out);
}

int channel_get(reservations *rs, const char *id, channel *out)
{
    store_txn *t;
    int rc = store_txn_begin(rs->store, false, &t);
    if (rc != STORE_OK)
        return RES_E_INTERNAL;
    rc = channel_get_txn(t, id, out);
    store_txn_abort(t);
    return rc == STORE_OK ? RES_OK : rc == STORE_NOTFOUND ? RES_E_NOTFOUND : RES_E_INTERNAL;
}

typedef struct channel_iter {
    int (*cb)(void *ud, const channel *ch);
    void *ud;
} channel_iter;

static int channel_list_one(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    channel_iter *it = ud;
    channel ch;
    if (channel_decode(key, klen, val, vlen, &ch) != STORE_OK)
        return 0; /* a damaged record is skipped, not fatal to the listing */
    return it->cb(it->ud, &ch);
}

static int channel_list_txn(store_txn *t, int (*cb)(void *ud, const channel *ch), void *ud)
{
    channel_iter it = {cb, ud};
    return store_iter(t, DB_CHANNELS, NULL, 0, channel_list_one, &it);
}

int channel_list(reservations *rs, int (*cb)(void *ud, const channel *ch), void *ud)
{
    store_txn *t;
    if (store_txn_begin(rs->store, false, &t) != STORE_OK)
        return RES_E_INTERNAL;
    int rc = channel_list_txn(t, cb, ud);
    store_txn_abort(t);
    return rc < 0 ? RES_E_INTERNAL : RES_OK;
}

/* ---- the slot index ---- */

static size_t slot_key(unsigned char *key, const char *channel_id, int64_t end)
{
    size_t n = strlen(channel_id);
    memcpy(key, channel_id, n);
    key[n] = 0;
    put_be64(key + n + 1, (uint64_t)end);
    return n + 9;
}

typedef struct slot_walk {
    int64_t until;    /* stop at the first booking starting at or after this */
    int64_t *starts, *ends;
    size_t n, cap;
    bool stop_after_first;
} slot_walk;

static int slot_walk_one(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    slot_walk *w = ud;
    if (klen < 9 || vlen < 8)
        return 0;
    int64_t end = (int64_t)get_be64((const unsigned char *)key + klen - 8);
    int64_t start = (int64_t)get_be64(val);
    if (start >= w->until)
        return 1;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        int64_t *s = realloc(w->starts, cap * sizeof *s);
        if (!s)
            return -1;
        w->starts = s;
        int64_t *e = realloc(w->ends, cap * sizeof *e);
        if (!e)
            return -1;
        w->ends = e;
        w->cap = cap;
    }
    w->starts[w->n] = start;
    w->ends[w->n] = end;
    w->n++;
    return w->stop_after_first ? 1 : 0;
}

/* Bookings of a channel that overlap [from, until), in order. */
static int slot_walk_run(store_txn *t, const char *channel_id, int64_t from, slot_walk *w)
{
    unsigned char key[CHANNEL_ID_MAX + 9], to[CHANNEL_ID_MAX + 1];
    size_t klen = slot_key(key, channel_id, from + 1); /* ends after from */
    size_t n = strlen(channel_id);
    memcpy(to, channel_id, n);
    to[n] = 1; /* just past every key of this channel */
    int rc = store_iter_range(t, DB_SLOTS, key, klen, to, n + 1, slot_walk_one, w);
    return rc < 0 ? rc : STORE_OK;
}

static void slot_walk_free(slot_walk *w)
{
    free(w->starts);
    free(w->ends);
}

/* STORE_OK if [start, end) is free on the channel, STORE_EXISTS (with the
 * other booking's times) if not. */
static int slot_free(store_txn *t, const char *channel_id, int64_t start, int64_t end, int64_t *ostart,
                     int64_t *oend)
{
    slot_walk w = {.until = end, .stop_after_first = true};
    int rc = slot_walk_run(t, channel_id, start, &w);
    if (rc == STORE_OK && w.n > 0) {
        *ostart = w.starts[0];
        *oend = w.ends[0];
        rc = STORE_EXISTS;
    }
    slot_walk_free(&w);
    return rc;
}

static int slot_put(store_txn *t, const reservation *r)
{
    unsigned char key[CHANNEL_ID_MAX + 9], val[8 + RES_ID_LEN];
    size_t klen = slot_key(key, r->channel, r->end);
    put_be64(val, (uint64_t)r->start);
    memcpy(val + 8, r->id, RES_ID_LEN);
    return store_put(t, DB_SLOTS, key, klen, val, sizeof val, true);
}

static int slot_del(store_txn *t, const reservation *r)
{
    unsigned char key[CHANNEL_ID_MAX + 9];
    size_t klen = slot_key(key, r->channel, r->end);
    const void *val;
    size_t vlen;
    /* Only this reservation's entry (a cancelled one's slot may be rebooked). */
    int rc = store_get(t, DB_SLOTS, key, klen, &val, &vlen);
    if (rc == STORE_OK && vlen == 8 + RES_ID_LEN && memcmp((const char *)val + 8, r->id, RES_ID_LEN) == 0)
        return store_del(t, DB_SLOTS, key, klen);
    return rc == STORE_NOTFOUND || rc == STORE_OK ? STORE_OK : rc;
}

static size_t owner_key(unsigned char *key, const reservation *r)
{
    size_t n = strlen(r->owner);
    memcpy(key, r->owner, n);
    key[n] = 0;
    put_be64(key + n + 1, (uint64_t)r->start);
    memcpy(key + n + 9, r->id, RES_ID_LEN);
    return n + 9 + RES_ID_LEN;
}

static size_t public_key(unsigned char *key, const reservation *r)
{
    put_be64(key, (uint64_t)r->start);
    memcpy(key + 8, r->id, RES_ID_LEN);
    return 8 + RES_ID_LEN;
}

/* ---- records ---- */

static void put_sealed(reservations *rs, record_writer *w, const char *id, const char *field, const char *plain)
{
    size_t len = strlen(plain);
    unsigned char *buf = malloc(len + SECRET_OVERHEAD);
    char ad[RES_ID_LEN + 32];
    int adlen = snprintf(ad, sizeof ad, "%s/%s", id, field);
    if (!buf || secret_seal(&rs->key, ad, (size_t)adlen, plain, len, buf) != 0) {
        w->failed = true;
        free(buf);
        return;
    }
    record_put_bin(w, field, buf, len + SECRET_OVERHEAD);
    free(buf);
}

static char *get_sealed(reservations *rs, const record_reader *r, const char *id, const char *field)
{
    const void *p;
    size_t len;
    if (record_get_bin(r, field, &p, &len) != STORE_OK || len < SECRET_OVERHEAD)
        return NULL;
    char *plain = malloc(len - SECRET_OVERHEAD + 1);
    char ad[RES_ID_LEN + 32];
    int adlen = snprintf(ad, sizeof ad, "%s/%s", id, field);
    if (!plain || secret_open(&rs->key, ad, (size_t)adlen, p, len, plain) < 0) {
        free(plain);
        return NULL;
    }
    return plain;
}

static void put_s(record_writer *w, const char *key, const char *v)
{
    record_put_str(w, key, v ? v : "", v ? strlen(v) : 0);
}

static int res_encode(reservations *rs, const reservation *r, record_writer *w, const void **data, size_t *len)
{
    record_writer_init(w, 30);
    put_s(w, "owner", r->owner);
    put_s(w, "email", r->email);
    put_s(w, "channel", r->channel);
    record_put_int(w, "start", r->start);
    record_put_int(w, "end", r->end);
    record_put_int(w, "deadline", r->deadline);
    record_put_uint(w, "level", (uint64_t)r->level);
    record_put_uint(w, "state", (uint64_t)r->state);
    put_s(w, "title", r->title);
    put_s(w, "genre", r->genre);
    put_s(w, "summary", r->summary);
    put_s(w, "detail", r->detail);
    put_s(w, "url", r->url);
    record_put_bool(w, "show_email", r->show_email);
    record_put_bool(w, "show_url", r->show_url);
    put_sealed(rs, w, r->id, "broadcast_password", r->broadcast_password ? r->broadcast_password : "");
    put_sealed(rs, w, r->id, "shared_password", r->shared_password ? r->shared_password : "");
    put_s(w, "friends", r->friends);
    record_put_uint(w, "capacity", r->capacity);
    record_put_uint(w, "bandwidth", r->bandwidth_kbps);
    record_put_uint(w, "price", r->price_per_hour);
    record_put_uint(w, "fee", r->fee);
    record_put_uint(w, "viewers", r->viewers);
    record_put_int(w, "created", r->created);
    record_put_int(w, "reconfirmed", r->reconfirmed_at);
    record_put_int(w, "cancelled", r->cancelled_at);
    put_s(w, "cancel_reason", r->cancel_reason);
    put_s(w, "id", r->id);
    put_s(w, "transcript", r->transcript);
    put_s(w, "transcript_notices", r->transcript_notices);
    return record_finish(w, data, len);
}

static char *get_s(const record_reader *r, const char *key)
{
    const char *s;
    size_t n;
    if (record_get_str(r, key, &s, &n) != STORE_OK)
        return NULL;
    return strndup(s, n);
}

static int res_decode(reservations *rs, const char *id, const void *val, size_t vlen, reservation *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", id);
    record_reader r;
    int rc = record_read(&r, val, vlen);
    if (rc != STORE_OK)
        return rc;
    uint64_t level, state, cap, bw;
    char *channel_id = get_s(&r, "channel"), *reason = get_s(&r, "cancel_reason");
    out->owner = get_s(&r, "owner");
    out->email = get_s(&r, "email");
    out->title = get_s(&r, "title");
    out->genre = get_s(&r, "genre");
    out->summary = get_s(&r, "summary");
    out->detail = get_s(&r, "detail");
    out->url = get_s(&r, "url");
    out->friends = get_s(&r, "friends");
    out->broadcast_password = get_sealed(rs, &r, id, "broadcast_password");
    out->shared_password = get_sealed(rs, &r, id, "shared_password");
    rc = STORE_OK;
    if (!channel_id || strlen(channel_id) > CHANNEL_ID_MAX || !reason || !out->owner || !out->email ||
        !out->title || !out->genre || !out->summary || !out->detail || !out->url || !out->friends ||
        !out->broadcast_password || !out->shared_password || record_get_int(&r, "start", &out->start) ||
        record_get_int(&r, "end", &out->end) || record_get_int(&r, "deadline", &out->deadline) ||
        record_get_uint(&r, "level", &level) || record_get_uint(&r, "state", &state) ||
        record_get_bool(&r, "show_email", &out->show_email) || record_get_bool(&r, "show_url", &out->show_url) ||
        record_get_uint(&r, "capacity", &cap) || record_get_uint(&r, "bandwidth", &bw) ||
        record_get_uint(&r, "price", &out->price_per_hour) || record_get_uint(&r, "fee", &out->fee) ||
        record_get_uint(&r, "viewers", &out->viewers) || record_get_int(&r, "created", &out->created) ||
        record_get_int(&r, "reconfirmed", &out->reconfirmed_at) ||
        record_get_int(&r, "cancelled", &out->cancelled_at) || level > RES_SECRET || state > RES_DONE ||
        cap > UINT32_MAX || bw > UINT32_MAX) {
        rc = STORE_CORRUPT;
    } else {
        snprintf(out->channel, sizeof out->channel, "%s", channel_id);
        snprintf(out->cancel_reason, sizeof out->cancel_reason, "%s", reason);
        out->level = (res_level)level;
        out->state = (res_state)state;
        out->capacity = (uint32_t)cap;
        out->bandwidth_kbps = (uint32_t)bw;
    }
    /* Optional: records written before these fields existed lack them. */
    char *tr = rc == STORE_OK && record_field(&r, "transcript") ? get_s(&r, "transcript") : NULL;
    char *tn = rc == STORE_OK && record_field(&r, "transcript_notices") ? get_s(&r, "transcript_notices") : NULL;
    if (tr && transcript_part_ok(tr))
        snprintf(out->transcript, sizeof out->transcript, "%s", tr);
    if (tn && (strcmp(tn, "true") == 0 || strcmp(tn, "false") == 0))
        snprintf(out->transcript_notices, sizeof out->transcript_notices, "%s", tn);
    free(tr);
    free(tn);
    free(channel_id);
    free(reason);
    record_reader_free(&r);
    if (rc != STORE_OK)
        reservation_clear(out);
    return rc;
}

static int res_write(reservations *rs, store_txn *t, const reservation *r, bool create)
{
    record_writer w;
    const void *data;
    size_t len;
    int rc = res_encode(rs, r, &w, &data, &len);
    if (rc == STORE_OK)
        rc = store_put(t, DB_RES, r->id, RES_ID_LEN, data, len, create);
    record_writer_free(&w);
    return rc;
}

static int res_read(reservations *rs, store_txn *t, const char *id, reservation *out)
{
    memset(out, 0, sizeof *out);
    if (!reservation_id_valid(id))
        return STORE_NOTFOUND;
    const void *val;
    size_t vlen;
    int rc = store_get(t, DB_RES, id, RES_ID_LEN, &val, &vlen);
    if (rc != STORE_OK)
        return rc;
    return res_decode(rs, id, val, vlen, out);
}

/* Frees a secret string after wiping it. */
static void free_secret(char *secret)
{
    if (secret) {
        OPENSSL_cleanse(secret, strlen(secret));
        free(secret);
    }
}

void reservation_clear(reservation *r)
{
    if (!r)
        return;
    free(r->owner);
    free(r->email);
    free(r->title);
    free(r->genre);
    free(r->summary);
    free(r->detail);
    free(r->url);
    free(r->friends);
    free_secret(r->broadcast_password);
    free_secret(r->shared_password);
    memset(r, 0, sizeof *r);
}

res_state reservation_state_at(const reservation *r, int64_t now)
{
    if ((r->state == RES_RECONFIRMED || r->state == RES_LIVE) && now >= r->end)
        return RES_DONE;
    return r->state;
}

/* ---- booking ---- */

/* The time rules for [start, end) at now.  Field names as in the form. */
static int check_times(reservations *rs, int64_t start, int64_t end, int64_t now, res_error *e)
{
    const res_policy *p = &rs->policy;
    char a[DATETIME_MAX], b[DATETIME_MAX], span[DATETIME_MAX];
    if (end <= start)
        return fail(e, RES_E_INVALID, "end", "end: must be after start");
    if (start <= now)
        return fail(e, RES_E_INVALID, "start", "start: in the past (now is %s)", datetime_format(now, a));
    if ((start - datetime_day_start(start)) % p->slot_s != 0)
        return fail(e, RES_E_INVALID, "start", "start: not on a slot boundary (slots are %s)",
                    datetime_format_span(p->slot_s, span));
    if ((end - datetime_day_start(end)) % p->slot_s != 0)
        return fail(e, RES_E_INVALID, "end", "end: not on a slot boundary (slots are %s)",
                    datetime_format_span(p->slot_s, span));
    if (end - start > p->max_duration_s)
        return fail(e, RES_E_INVALID, "end", "end: a live lasts at most %s",
                    datetime_format_span(p->max_duration_s, span));
    if (start - p->reconfirm_before_s <= now)
        return fail(e, RES_E_INVALID, "start",
                    "start: too soon; bookings close %s before the start (reconfirmation deadline %s)",
                    datetime_format_span(p->reconfirm_before_s, span), datetime_format(start - p->reconfirm_before_s, b));
    if (start - now > p->max_advance_s)
        return fail(e, RES_E_INVALID, "start", "start: at most %lld days ahead",
                    (long long)(p->max_advance_s / 86400));
    return RES_OK;
}

int reservation_prepare(reservations *rs, const char *owner, const res_form *f, int64_t now, reservation *d,
                        res_error *e)
{
    memset(d, 0, sizeof *d);
    memset(e, 0, sizeof *e);
    if (empty(owner) || strlen(owner) > RES_OWNER_MAX)
        return fail(e, RES_E_FORBIDDEN, "", "booking needs an account (names up to %d bytes)", RES_OWNER_MAX);
    /* Required fields first, in the order of the form. */
    struct {
        const char *name, *value;
    } required[] = {{"channel", f->channel}, {"start", f->start}, {"end", f->end}, {"level", f->level},
                    {"title", f->title},     {"broadcast_password", f->broadcast_password}};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (empty(required[i].value))
            return fail(e, RES_E_INVALID, required[i].name, "%s: required", required[i].name);

    res_level level;
    if (strcmp(f->level, "public") == 0)
        level = RES_PUBLIC;
    else if (strcmp(f->level, "password") == 0)
        level = RES_PASSWORD;
    else if (strcmp(f->level, "secret") == 0)
        level = RES_SECRET;
    else
        return fail(e, RES_E_INVALID, "level", "level: one of public, password, secret");
    if (level != RES_PUBLIC && empty(f->shared_password))
        return fail(e, RES_E_INVALID, "shared_password", "shared_password: required for a %s live",
                    res_level_name(level));

    channel ch;
    store_txn *t;
    if (store_txn_begin(rs->store, false, &t) != STORE_OK)
        return fail(e, RES_E_INTERNAL, "", "the store failed");
    int rc = channel_get_txn(t, f->channel, &ch);
    if (rc != STORE_OK) {
        store_txn_abort(t);
        return rc == STORE_NOTFOUND ? fail(e, RES_E_INVALID, "channel", "channel: no channel \"%.32s\"", f->channel)
                                    : fail(e, RES_E_INTERNAL, "", "the store failed");
    }

    int64_t start, end;
    long frac;
    if (datetime_parse(f->start, &start, &frac) != 0) {
        store_txn_abort(t);
        return fail(e, RES_E_INVALID, "start", "start: not a date-time (e.g. 2026-11-24T09:30:00+09:00)");
    }
    if (frac != 0) {
        store_txn_abort(t);
        return fail(e, RES_E_INVALID, "start", "start: not on a slot boundary (fractional seconds)");
    }
    if (datetime_parse(f->end, &end, &frac) != 0) {
        store_txn_abort(t);
        return fail(e, RES_E_INVALID, "end", "end: not a date-time (e.g. 2026-11-24T11:00:00+09:00)");
    }
    if (frac != 0) {
        store_txn_abort(t);
        return fail(e, RES_E_INVALID, "end", "end: not on a slot boundary (fractional seconds)");
    }
    rc = check_times(rs, start, end, now, e);
    if (rc == RES_OK)
        rc = check_text(f->title, "title", RES_TITLE_MAX, true, false, e);
    if (rc == RES_OK)
        rc = check_text(f->genre, "genre", RES_GENRE_MAX, false, false, e);
    if (rc == RES_OK)
        rc = check_text(f->summary, "summary", RES_SUMMARY_MAX, false, false, e);
    if (rc == RES_OK)
        rc = check_text(f->detail, "detail", RES_DETAIL_MAX, false, true, e);
    bool show_email = false, show_url = false;
    if (rc == RES_OK && parse_bool(f->show_email, &show_email) != 0)
        rc = fail(e, RES_E_INVALID, "show_email", "show_email: true or false");
    if (rc == RES_OK && parse_bool(f->show_url, &show_url) != 0)
        rc = fail(e, RES_E_INVALID, "show_url", "show_url: true or false");
    if (rc == RES_OK && show_url && empty(f->url))
        rc = fail(e, RES_E_INVALID, "url", "url: required when show_url is set");
    if (rc == RES_OK && !empty(f->url) && (strlen(f->url) > RES_URL_MAX || !url_valid(f->url)))
        rc = fail(e, RES_E_INVALID, "url", "url: an http:// or https:// address of at most %d bytes", RES_URL_MAX);
    const char *pw_fields[2] = {"broadcast_password", "shared_password"};
    const char *pws[2] = {f->broadcast_password, level == RES_PUBLIC ? NULL : f->shared_password};
    for (int i = 0; rc == RES_OK && i < 2; i++) {
        if (empty(pws[i]))
            continue;
        long n = utf8_chars(pws[i], false);
        if (n < RES_PASSWORD_MIN || n > RES_PASSWORD_MAX)
            rc = fail(e, RES_E_INVALID, pw_fields[i], "%s: %d to %d characters", pw_fields[i], RES_PASSWORD_MIN,
                      RES_PASSWORD_MAX);
    }
    bool part_set = !empty(f->transcript) && strcmp(f->transcript, "default") != 0;
    if (rc == RES_OK && part_set && !transcript_part_ok(f->transcript))
        rc = fail(e, RES_E_INVALID, "transcript", "transcript: all, live, addressed or default");
    bool notices = false;
    bool notices_set = !empty(f->transcript_notices) && strcmp(f->transcript_notices, "default") != 0;
    if (rc == RES_OK && notices_set && parse_bool(f->transcript_notices, &notices) != 0)
        rc = fail(e, RES_E_INVALID, "transcript_notices", "transcript_notices: true, false or default");
    char *friends = NULL;
    if (rc == RES_OK)
        rc = check_friends(f->friends, &friends, e);
    int64_t os, oe;
    if (rc == RES_OK) {
        int src = slot_free(t, ch.id, start, end, &os, &oe);
        if (src == STORE_EXISTS) {
            char a[DATETIME_MAX], b[DATETIME_MAX];
            rc = fail(e, RES_E_CONFLICT, "start", "start: channel %s is booked from %s to %s", ch.id,
                      datetime_format(os, a), datetime_format(oe, b));
        } else if (src != STORE_OK) {
            rc = fail(e, RES_E_INTERNAL, "", "the store failed");
        }
    }
    store_txn_abort(t);
    if (rc != RES_OK) {
        free(friends);
        return rc;
    }

    /* The owner's address, shown back at confirmation; none is fine. */
    char email[RES_ADDRESS_MAX + 1] = "";
    account_get_email(rs->store, owner, email, sizeof email);
    d->owner = strdup(owner);
    d->email = strdup(email);
    snprintf(d->channel, sizeof d->channel, "%s", ch.id);
    d->start = start;
    d->end = end;
    d->deadline = start - rs->policy.reconfirm_before_s;
    d->level = level;
    d->state = RES_AWAITING;
    d->title = dup_or_empty(f->title);
    d->genre = dup_or_empty(f->genre);
    d->summary = dup_or_empty(f->summary);
    d->detail = dup_or_empty(f->detail);
    d->url = dup_or_empty(f->url);
    d->show_email = show_email;
    d->show_url = show_url;
    snprintf(d->transcript, sizeof d->transcript, "%s", part_set ? f->transcript : "");
    snprintf(d->transcript_notices, sizeof d->transcript_notices, "%s",
             notices_set ? (notices ? "true" : "false") : "");
    d->broadcast_password = dup_or_empty(f->broadcast_password);
    d->shared_password = dup_or_empty(level == RES_PUBLIC ? NULL : f->shared_password);
    d->friends = friends;
    d->capacity = ch.capacity;
    d->bandwidth_kbps = ch.bandwidth_kbps;
    d->price_per_hour = ch.price_per_hour;
    d->fee = reservation_fee(ch.price_per_hour, end - start);
    if (!d->owner || !d->email || !d->title || !d->genre || !d->summary || !d->detail || !d->url ||
        !d->broadcast_password || !d->shared_password || !d->friends) {
        reservation_clear(d);
        return fail(e, RES_E_INTERNAL, "", "out of memory");
    }
    return RES_OK;
}

int reservation_book(reservations *rs, reservation *d, int64_t now, res_error *e)
{
    memset(e, 0, sizeof *e);
    int rc = check_times(rs, d->start, d->end, now, e);
    if (rc != RES_OK)
        return rc;
    d->deadline = d->start - rs->policy.reconfirm_before_s;
    d->state = RES_AWAITING;
    d->created = now;
    d->reconfirmed_at = d->cancelled_at = 0;
    d->cancel_reason[0] = '\0';
    d->viewers = 0;
    if (new_id(d->id) != 0)
        return fail(e, RES_E_INTERNAL, "", "no random bytes");

    store_txn *t;
    if (store_txn_begin(rs->store, true, &t) != STORE_OK)
        return fail(e, RES_E_INTERNAL, "", "the store failed");
    channel ch;
    int64_t os, oe;
    rc = channel_get_txn(t, d->channel, &ch);
    if (rc == STORE_NOTFOUND) {
        store_txn_abort(t);
        return fail(e, RES_E_INVALID, "channel", "channel: no channel \"%s\"", d->channel);
    }
    if (rc == STORE_OK)
        rc = slot_free(t, d->channel, d->start, d->end, &os, &oe);
    if (rc == STORE_EXISTS) {
        store_txn_abort(t);
        char a[DATETIME_MAX], b[DATETIME_MAX];
        return fail(e, RES_E_CONFLICT, "start", "start: channel %s is booked from %s to %s", d->channel,
                    datetime_format(os, a), datetime_format(oe, b));
    }
    unsigned char okey[RECORD_USER_MAX + 9 + RES_ID_LEN];
    if (rc == STORE_OK)
        rc = res_write(rs, t, d, true);
    if (rc == STORE_OK)
        rc = slot_put(t, d);
    if (rc == STORE_OK) {
        size_t n = strlen(d->owner);
        rc = n > RECORD_USER_MAX ? STORE_ERROR : store_put(t, DB_OWNER, okey, owner_key(okey, d), "", 0, false);
    }
    if (rc == STORE_OK)
        rc = schedule_put_txn(t, d->deadline * 1000, SCHEDULE_RECONFIRM_DEADLINE, d->id);
    if (rc == STORE_OK)
        rc = store_txn_commit(t);
    else
        store_txn_abort(t);
    if (rc != STORE_OK)
        return fail(e, RES_E_INTERNAL, "", "the store failed (%d)", rc);
    if (rs->hooks.scheduled)
        rs->hooks.scheduled(rs->hooks.ud, d->deadline * 1000);
    raise_event(rs, EVENT_RESERVATION_BOOKED, d);
    return RES_OK;
}

int reservation_get(reservations *rs, const char *id, reservation *out)
{
    memset(out, 0, sizeof *out);
    store_txn *t;
    if (store_txn_begin(rs->store, false, &t) != STORE_OK)
        return RES_E_INTERNAL;
    int rc = res_read(rs, t, id, out);
    store_txn_abort(t);
    return rc == STORE_OK ? RES_OK : rc == STORE_NOTFOUND ? RES_E_NOTFOUND : RES_E_INTERNAL;
}

/* Marks r cancelled inside t and drops it from the indexes. */
static int cancel_txn(reservations *rs, store_txn *t, reservation *r, int64_t now, const char *reason)
{
    bool was_public = r->state == RES_RECONFIRMED && r->level != RES_SECRET;
    r->state = RES_CANCELLED;
    r->cancelled_at = now;
    snprintf(r->cancel_reason, sizeof r->cancel_reason, "%s", reason);
    int rc = res_write(rs, t, r, false);
    if (rc == STORE_OK)
        rc = slot_del(t, r);
    if (rc == STORE_OK && was_public) {
        unsigned char key[8 + RES_ID_LEN];
        rc = store_del(t, DB_PUBLIC, key, public_key(key, r));
        if (rc == STORE_NOTFOUND)
            rc = STORE_OK;
    }
    return rc;
}

/* Opens a write transaction and reads id for its owner (NULL: anyone). */
static int begin_owned(reservations *rs, const char *owner, const char *id, store_txn **t, reservation *r,
                       res_error *e)
{
    if (store_txn_begin(rs->store, true, t) != STORE_OK)
        return fail(e, RES_E_INTERNAL, "", "the store failed");
    int rc = res_read(rs, *t, id, r);
    if (rc != STORE_OK) {
        store_txn_abort(*t);
        return rc == STORE_NOTFOUND ? fail(e, RES_E_NOTFOUND, "id", "id: no such reservation")
                                    : fail(e, RES_E_INTERNAL, "", "the store failed");
    }
    if (owner && strcmp(owner, r->owner) != 0) {
        store_txn_abort(*t);
        reservation_clear(r);
        return fail(e, RES_E_FORBIDDEN, "id", "id: this reservation belongs to another account");
    }
    return RES_OK;
}

static int commit(store_txn *t, int rc, res_error *e)
{
    if (rc == STORE_OK)
        rc = store_txn_commit(t);
    else
        store_txn_abort(t);
    return rc == STORE_OK ? RES_OK : fail(e, RES_E_INTERNAL, "", "the store failed (%d)", rc);
}

static int settings_write(reservations *rs, store_txn *t, const reservation *r, int64_t now)
{
    const res_policy *p = &rs->policy;
    char room[RES_ID_LEN + 300], ingest[RES_ID_LEN + 300], page[RES_ID_LEN + 600];
    snprintf(room, sizeof room, "%s@%s", r->id, p->room_domain);
    snprintf(ingest, sizeof ingest, "%s@%s", r->id, p->media_domain);
    snprintf(page, sizeof page, "%s%s", p->page_url, r->id);
    record_writer w;
    record_writer_init(&w, 15);
    record_put_int(&w, "start", r->start);
    record_put_int(&w, "end", r->end);
    record_put_int(&w, "ingest_open", r->start - p->ingest_open_before_s);
    record_put_int(&w, "ingest_close", r->end + p->ingest_close_after_s);
    put_s(&w, "ingest_jid", ingest);
    put_s(&w, "room_jid", room);
    put_s(&w, "page_url", page);
    record_put_uint(&w, "bandwidth", r->bandwidth_kbps);
    record_put_uint(&w, "capacity", r->capacity);
    put_s(&w, "title", r->title);
    put_s(&w, "summary", r->summary);
    put_s(&w, "friends", r->friends);
    put_sealed(rs, &w, r->id, "settings_shared_password", r->shared_password);
    record_put_uint(&w, "level", (uint64_t)r->level);
    record_put_int(&w, "issued", now);
    const void *data;
    size_t len;
    int rc = record_finish(&w, &data, &len);
    if (rc == STORE_OK)
        rc = store_put(t, DB_SETTINGS, r->id, RES_ID_LEN, data, len, false);
    record_writer_free(&w);
    return rc;
}

int reservation_reconfirm(reservations *rs, const char *owner, const char *id, int64_t now, reservation *out,
                          res_error *e)
{
    memset(e, 0, sizeof *e);
    store_txn *t;
    int rc = begin_owned(rs, owner, id, &t, out, e);
    if (rc != RES_OK)
        return rc;
    char a[DATETIME_MAX];
    switch (out->state) {
    case RES_RECONFIRMED:
    case RES_LIVE:
    case RES_DONE:
        store_txn_abort(t);
        return RES_OK; /* already reconfirmed: the same settings */
    case RES_CANCELLED:
        store_txn_abort(t);
        rc = strcmp(out->cancel_reason, "deadline") == 0
                 ? fail(e, RES_E_GONE, "id",
                        "id: not reconfirmed by the deadline %s, so the booking was cancelled; book again",
                        datetime_format(out->deadline, a))
                 : fail(e, RES_E_CONFLICT, "id", "id: this reservation was cancelled");
        reservation_clear(out);
        return rc;
    case RES_AWAITING:
        break;
    }
    if (now >= out->deadline) {
        rc = commit(t, cancel_txn(rs, t, out, now, "deadline"), e);
        if (rc == RES_OK) {
            raise_event(rs, EVENT_RESERVATION_CANCELLED, out);
            rc = fail(e, RES_E_GONE, "id",
                      "id: not reconfirmed by the deadline %s, so the booking was cancelled; book again",
                      datetime_format(out->deadline, a));
        }
        reservation_clear(out);
        return rc;
    }
    out->state = RES_RECONFIRMED;
    out->reconfirmed_at = now;
    rc = res_write(rs, t, out, false);
    if (rc == STORE_OK)
        rc = settings_write(rs, t, out, now);
    if (rc == STORE_OK && out->level != RES_SECRET) {
        unsigned char key[8 + RES_ID_LEN];
        rc = store_put(t, DB_PUBLIC, key, public_key(key, out), "", 0, false);
    }
    int64_t room_open_ms = (out->start - rs->policy.room_open_before_s) * 1000;
    if (rc == STORE_OK)
        rc = schedule_put_txn(t, room_open_ms, SCHEDULE_ROOM_OPEN, out->id);
    rc = commit(t, rc, e);
    if (rc != RES_OK) {
        reservation_clear(out);
        return rc;
    }
    if (rs->hooks.scheduled)
        rs->hooks.scheduled(rs->hooks.ud, room_open_ms);
    raise_event(rs, EVENT_RESERVATION_RECONFIRMED, out);
    return RES_OK;
}

int reservation_cancel(reservations *rs, const char *owner, const char *id, int64_t now, reservation *out,
                       res_error *e)
{
    memset(e, 0, sizeof *e);
    store_txn *t;
    int rc = begin_owned(rs, owner, id, &t, out, e);
    if (rc != RES_OK)
        return rc;
    const char *why = NULL;
    if (out->state == RES_CANCELLED)
        why = "id: already cancelled";
    else if (out->state == RES_LIVE)
        why = "id: the live is on air; end the broadcast first";
    else if (reservation_state_at(out, now) == RES_DONE || now >= out->end)
        why = "id: this live is over";
    if (why) {
        store_txn_abort(t);
        reservation_clear(out);
        return fail(e, RES_E_CONFLICT, "id", "%s", why);
    }
    rc = commit(t, cancel_txn(rs, t, out, now, owner ? "owner" : "operator"), e);
    if (rc != RES_OK) {
        reservation_clear(out);
        return rc;
    }
    raise_event(rs, EVENT_RESERVATION_CANCELLED, out);
    return RES_OK;
}

int reservation_expire(reservations *rs, const char *id, int64_t now)
{
    store_txn *t;
    if (store_txn_begin(rs->store, true, &t) != STORE_OK)
        return RES_E_INTERNAL;
    reservation r;
    int rc = res_read(rs, t, id, &r);
    if (rc != STORE_OK) {
        store_txn_abort(t);
        return rc == STORE_NOTFOUND ? 0 : RES_E_INTERNAL;
    }
    if (r.state != RES_AWAITING || now < r.deadline) {
        store_txn_abort(t);
        reservation_clear(&r);
        return 0;
    }
    res_error e;
    rc = commit(t, cancel_txn(rs, t, &r, now, "deadline"), &e);
    if (rc == RES_OK)
        raise_event(rs, EVENT_RESERVATION_CANCELLED, &r);
    reservation_clear(&r);
    return rc == RES_OK ? 1 : rc;
}

/* ---- listings ---- */

typedef struct list_ctx {
    reservations *rs;
    store_txn *t;
    size_t id_at;  /* offset of the ID in the key */
    int64_t now;
    size_t limit, n;
    int (*cb)(void *ud, const reservation *r);
    void *ud;
} list_ctx;

static int list_one(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)val;
    (void)vlen;
    list_ctx *lc = ud;
    if (klen != lc->id_at + RES_ID_LEN)
        return 0;
    char id[RES_ID_LEN + 1];
    memcpy(id, (const char *)key + lc->id_at, RES_ID_LEN);
    id[RES_ID_LEN] = '\0';
    reservation r;
    if (res_read(lc->rs, lc->t, id, &r) != STORE_OK)
        return 0;
    int stop = 0;
    if (lc->limit == 0 || r.end > lc->now) {
        stop = lc->cb(lc->ud, &r);
        lc->n++;
        if (lc->limit && lc->n >= lc->limit)
            stop = 1;
    }
    reservation_clear(&r);
    return stop;
}

int reservation_list_owner(reservations *rs, const char *owner, int (*cb)(void *ud, const reservation *r), void *ud)
{
    size_t n = strlen(owner);
    if (n > RECORD_USER_MAX)
        return RES_OK;
    store_txn *t;
    if (store_txn_begin(rs->store, false, &t) != STORE_OK)
        return RES_E_INTERNAL;
    unsigned char prefix[RECORD_USER_MAX + 1];
    memcpy(prefix, owner, n);
    prefix[n] = 0;
    list_ctx lc = {rs, t, n + 9, 0, 0, 0, cb, ud};
    int rc = store_iter(t, DB_OWNER, prefix, n + 1, list_one, &lc);
    store_txn_abort(t);
    return rc < 0 ? RES_E_INTERNAL : RES_OK;
}

int reservation_list_all(reservations *rs, int (*cb)(void *ud, const reservation *r), void *ud)
{
    store_txn *t;
    if (store_txn_begin(rs->store, false, &t) != STORE_OK)
        return RES_E_INTERNAL;
    list_ctx lc = {rs, t, 0, 0, 0, 0, cb, ud};
    int rc = store_iter(t, DB_RES, NULL, 0, list_one, &lc);
    store_txn_abort(t);
    return rc < 0 ? RES_E_INTERNAL : RES_OK;
}

int reservation_list_public(reservations *rs, int64_t now, size_t limit, int (*cb)(void *ud, const reservation *r),
                            void *ud)
{
    store_txn *t;
    if (store_txn_begin(rs->store, false, &t) != STORE_OK)
        return RES_E_INTERNAL;
    unsigned char from[8];
    put_be64(from, (uint64_t)(now > RES_LONGEST_S ? now - RES_LONGEST_S : 0));
    list_ctx lc = {rs, t, 8, now, limit ? limit : (size_t)-1, 0, cb, ud};
    int rc = store_iter_range(t, DB_PUBLIC, from, sizeof from, NULL, 0, list_one, &lc);
    store_txn_abort(t);
    return rc < 0 ? RES_E_INTERNAL : RES_OK;
}

/* ---- availability ---- */

typedef struct avail_ctx {
    reservations *rs;
    store_txn *t;
    int64_t day_start, day_end, now;
    res_slot *slots;
    size_t nslots;
    int (*cb)(void *ud, const channel *ch, const res_slot *slots, size_t n);
    void *ud;
    int err;
} avail_ctx;

static int avail_channel(void *ud, const channel *ch)
{
    avail_ctx *ac = ud;
    const res_policy *p = &ac->rs->policy;
    slot_walk w = {.until = ac->day_end};
    if (slot_walk_run(ac->t, ch->id, ac->day_start, &w) != STORE_OK) {
        ac->err = RES_E_INTERNAL;
        slot_walk_free(&w);
        return 1;
    }
    size_t b = 0;
    for (size_t i = 0; i < ac->nslots; i++) {
        res_slot *s = &ac->slots[i];
        while (b < w.n && w.ends[b] <= s->start)
            b++;
        if (b < w.n && w.starts[b] < s->end)
            s->state = SLOT_BOOKED;
        else if (s->start - p->reconfirm_before_s <= ac->now || s->start - ac->now > p->max_advance_s)
            s->state = SLOT_CLOSED;
        else
            s->state = SLOT_FREE;
    }
    slot_walk_free(&w);
    return ac->cb(ac->ud, ch, ac->slots, ac->nslots);
}

int reservation_availability(reservations *rs, const char *date, int64_t now,
                             int (*cb)(void *ud, const channel *ch, const res_slot *slots, size_t n), void *ud,
                             res_error *e)
{
    memset(e, 0, sizeof *e);
    int64_t day_start, day_end;
    if (empty(date) || datetime_parse_day(date, &day_start, &day_end) != 0)
        return fail(e, RES_E_INVALID, "date", "date: not a date (YYYY-MM-DD)");
    int64_t slot = rs->policy.slot_s;
    size_t n = (size_t)((day_end - day_start + slot - 1) / slot);
    res_slot *slots = calloc(n ? n : 1, sizeof *slots);
    if (!slots)
        return fail(e, RES_E_INTERNAL, "", "out of memory");
    for (size_t i = 0; i < n; i++) {
        slots[i].start = day_start + (int64_t)i * slot;
        slots[i].end = slots[i].start + slot < day_end ? slots[i].start + slot : day_end;
    }
    store_txn *t;
    if (store_txn_begin(rs->store, false, &t) != STORE_OK) {
        free(slots);
        return fail(e, RES_E_INTERNAL, "", "the store failed");
    }
    avail_ctx ac = {rs, t, day_start, day_end, now, slots, n, cb, ud, RES_OK};
    int rc = channel_list_txn(t, avail_channel, &ac);
    store_txn_abort(t);
    free(slots);
    if (ac.err != RES_OK || rc < 0)
        return fail(e, RES_E_INTERNAL, "", "the store failed");
    return RES_OK;
}

/* ---- settings ---- */

void res_settings_clear(res_settings *s)
{
    if (!s)
        return;
    free(s->ingest_jid);
    free(s->room_jid);
    free(s->page_url);
    free(s->title);
    free(s->summary);
    free(s->friends);
    free_secret(s->shared_password);
    memset(s, 0, sizeof *s);
}

int reservation_settings(reservations *rs, const char *owner, const char *id, res_settings *out, res_error *e)
{
    memset(out, 0, sizeof *out);
    memset(e, 0, sizeof *e);
    store_txn *t;
    if (store_txn_begin(rs->store, false, &t) != STORE_OK)
        return fail(e, RES_E_INTERNAL, "", "the store failed");
    reservation r;
    int rc = res_read(rs, t, id, &r);
    if (rc != STORE_OK) {
        store_txn_abort(t);
        return rc == STORE_NOTFOUND ? fail(e, RES_E_NOTFOUND, "id", "id: no such reservation")
                                    : fail(e, RES_E_INTERNAL, "", "the store failed");
    }
    bool mine = owner && strcmp(owner, r.owner) == 0;
    reservation_clear(&r);
    if (!mine) {
        store_txn_abort(t);
        return fail(e, RES_E_FORBIDDEN, "id", "id: this reservation belongs to another account");
    }
    const void *val;
    size_t vlen;
    rc = store_get(t, DB_SETTINGS, id, RES_ID_LEN, &val, &vlen);
    if (rc == STORE_NOTFOUND) {
        store_txn_abort(t);
        return fail(e, RES_E_CONFLICT, "id", "id: not reconfirmed yet; settings are issued at reconfirmation");
    }
    record_reader rd;
    if (rc == STORE_OK)
        rc = record_read(&rd, val, vlen);
    if (rc != STORE_OK) {
        store_txn_abort(t);
        return fail(e, RES_E_INTERNAL, "", "the store failed");
    }
    snprintf(out->id, sizeof out->id, "%s", id);
    uint64_t bw, cap, level;
    out->ingest_jid = get_s(&rd, "ingest_jid");
    out->room_jid = get_s(&rd, "room_jid");
    out->page_url = get_s(&rd, "page_url");
    out->title = get_s(&rd, "title");
    out->summary = get_s(&rd, "summary");
    out->friends = get_s(&rd, "friends");
    out->shared_password = get_sealed(rs, &rd, id, "settings_shared_password");
    if (!out->ingest_jid || !out->room_jid || !out->page_url || !out->title || !out->summary || !out->friends ||
        !out->shared_password || record_get_int(&rd, "start", &out->start) ||
        record_get_int(&rd, "end", &out->end) || record_get_int(&rd, "ingest_open", &out->ingest_open) ||
        record_get_int(&rd, "ingest_close", &out->ingest_close) || record_get_uint(&rd, "bandwidth", &bw) ||
        record_get_uint(&rd, "capacity", &cap) || record_get_uint(&rd, "level", &level) ||
        record_get_int(&rd, "issued", &out->issued) || bw > UINT32_MAX || cap > UINT32_MAX || level > RES_SECRET) {
        rc = STORE_CORRUPT;
    } else {
        out->bandwidth_kbps = (uint32_t)bw;
        out->capacity = (uint32_t)cap;
        out->level = (res_level)level;
    }
    record_reader_free(&rd);
    store_txn_abort(t);
    if (rc != STORE_OK) {
        res_settings_clear(out);
        return fail(e, RES_E_INTERNAL, "", "a damaged settings record");
    }
    return RES_OK;
}

/* ---- channel deletion ---- */

typedef struct channel_use {
    int64_t now;
    bool used;
} channel_use;

static int channel_use_one(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)val;
    (void)vlen;
    channel_use *cu = ud;
    if (klen >= 8 && (int64_t)get_be64((const unsigned char *)key + klen - 8) > cu->now) {
        cu->used = true;
        return 1;
    }
    return 0;
}

int channel_delete(reservations *rs, const char *id, int64_t now, res_error *e)
{
    memset(e, 0, sizeof *e);
    if (!channel_id_valid(id))
        return fail(e, RES_E_NOTFOUND, "id", "id: no such channel");
    store_txn *t;
    if (store_txn_begin(rs->store, true, &t) != STORE_OK)
        return fail(e, RES_E_INTERNAL, "", "the store failed");
    unsigned char key[CHANNEL_ID_MAX + 9], to[CHANNEL_ID_MAX + 1];
    size_t klen = slot_key(key, id, now + 1);
    size_t n = strlen(id);
    memcpy(to, id, n);
    to[n] = 1;
    channel_use cu = {now, false};
    int rc = store_iter_range(t, DB_SLOTS, key, klen, to, n + 1, channel_use_one, &cu);
    if (rc < 0) {
        store_txn_abort(t);
        return fail(e, RES_E_INTERNAL, "", "the store failed");
    }
    if (cu.used) {
        store_txn_abort(t);
        return fail(e, RES_E_CONFLICT, "id", "id: channel %s has bookings that have not ended", id);
    }
    rc = store_del(t, DB_CHANNELS, id, strlen(id));
    if (rc == STORE_NOTFOUND) {
        store_txn_abort(t);
        return fail(e, RES_E_NOTFOUND, "id", "id: no such channel");
    }
    return commit(t, rc, e);
}
