/* schedule.c - the store-backed timer table (schedule.h): one uv timer for
 * the earliest entry of the "schedule" database. */
#include "schedule.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server.h"

#define DB_SCHEDULE "schedule"
#define KEY_MAX (8 + 1 + SCHEDULE_ID_MAX)
#define BATCH 256 /* entries handled per timer turn; the rest follow at once */

static void schedule_fire(uv_timer_t *timer);

int64_t schedule_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t entry_key(unsigned char *key, int64_t due_ms, schedule_kind kind, const char *id)
{
    uint64_t v = due_ms < 0 ? 0 : (uint64_t)due_ms;
    for (int i = 7; i >= 0; i--) {
        key[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
    key[8] = (unsigned char)kind;
    size_t n = strlen(id);
    memcpy(key + 9, id, n);
    return 9 + n;
}

static int64_t key_due(const unsigned char *key)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | key[i];
    return (int64_t)v;
}

int schedule_put_txn(store_txn *t, int64_t due_ms, schedule_kind kind, const char *id)
{
    if (!id || strlen(id) == 0 || strlen(id) > SCHEDULE_ID_MAX || kind <= 0 || kind >= SCHEDULE_KIND_MAX)
        return STORE_ERROR;
    unsigned char key[KEY_MAX];
    size_t klen = entry_key(key, due_ms, kind, id);
    return store_put(t, DB_SCHEDULE, key, klen, "", 0, false);
}

void schedule_handle(schedule *sc, schedule_kind kind, schedule_fn fn, void *ud)
{
    if (kind > 0 && kind < SCHEDULE_KIND_MAX) {
        sc->handlers[kind].fn = fn;
        sc->handlers[kind].ud = ud;
    }
}

static int first_one(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)val;
    (void)vlen;
    if (klen < 9)
        return 0;
    *(int64_t *)ud = key_due(key);
    return 1;
}

/* Due time of the earliest entry, or -1. */
static int64_t earliest(server *srv)
{
    store_txn *t;
    if (store_txn_begin(srv->store, false, &t) != STORE_OK)
        return -1;
    int64_t due = -1;
    store_iter(t, DB_SCHEDULE, NULL, 0, first_one, &due);
    store_txn_abort(t);
    return due;
}

static void arm(server *srv, int64_t due_ms)
{
    schedule *sc = &srv->schedule;
    if (!sc->started || srv->stopping)
        return;
    if (due_ms < 0) {
        uv_timer_stop(&sc->timer);
        sc->armed_ms = -1;
        return;
    }
    int64_t now = schedule_now_ms();
    uint64_t delay = due_ms > now ? (uint64_t)(due_ms - now) : 0;
    sc->armed_ms = due_ms;
    uv_timer_start(&sc->timer, schedule_fire, delay, 0);
}

typedef struct due_batch {
    int64_t now;
    size_t n;
    unsigned char keys[BATCH][KEY_MAX];
    size_t lens[BATCH];
} due_batch;

static int collect_one(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)val;
    (void)vlen;
    due_batch *b = ud;
    if (klen < 10 || klen > KEY_MAX)
        return 0;
    if (key_due(key) > b->now)
        return 1;
    memcpy(b->keys[b->n], key, klen);
    b->lens[b->n] = klen;
    return ++b->n == BATCH ? 1 : 0;
}

static void schedule_fire(uv_timer_t *timer)
{
    server *srv = timer->data;
    schedule *sc = &srv->schedule;
    if (srv->stopping)
        return;
    due_batch *b = malloc(sizeof *b);
    if (!b) {
        uv_timer_start(&sc->timer, schedule_fire, 1000, 0); /* try again shortly */
        return;
    }
    b->now = schedule_now_ms();
    b->n = 0;
    store_txn *t;
    if (store_txn_begin(srv->store, false, &t) == STORE_OK) {
        store_iter(t, DB_SCHEDULE, NULL, 0, collect_one, b);
        store_txn_abort(t);
    }
    for (size_t i = 0; i < b->n; i++) {
        schedule_kind kind = (schedule_kind)b->keys[i][8];
        char id[SCHEDULE_ID_MAX + 1];
        size_t idlen = b->lens[i] - 9;
        memcpy(id, b->keys[i] + 9, idlen);
        id[idlen] = '\0';
        if (kind > 0 && kind < SCHEDULE_KIND_MAX && sc->handlers[kind].fn) {
            sc->fired++;
            sc->handlers[kind].fn(sc->handlers[kind].ud, srv, kind, id, key_due(b->keys[i]));
        } else {
            log_write(&srv->log, LOG_WARN, "schedule", "no handler for an entry of kind %d; dropped", (int)kind);
        }
    }
    if (b->n > 0 && store_txn_begin(srv->store, true, &t) == STORE_OK) {
        int rc = STORE_OK;
        for (size_t i = 0; i < b->n && rc == STORE_OK; i++) {
            rc = store_del(t, DB_SCHEDULE, b->keys[i], b->lens[i]);
            if (rc == STORE_NOTFOUND)
                rc = STORE_OK;
        }
        if (rc == STORE_OK)
            rc = store_txn_commit(t);
        else
            store_txn_abort(t);
        if (rc != STORE_OK)
            log_write(&srv->log, LOG_ERROR, "schedule", "removing handled entries failed: %s", store_last_error(srv->store));
    }
    free(b);
    arm(srv, earliest(srv));
}

int schedule_start(server *srv)
{
    schedule *sc = &srv->schedule;
    if (uv_timer_init(srv->loop, &sc->timer) != 0)
        return -1;
    sc->timer.data = srv;
    sc->started = true;
    sc->armed_ms = -1;
    arm(srv, earliest(srv));
    return 0;
}

void schedule_changed(server *srv, int64_t due_ms)
{
    schedule *sc = &srv->schedule;
    if (sc->armed_ms < 0 || due_ms < sc->armed_ms)
        arm(srv, due_ms);
}

void schedule_stop(server *srv)
{
    schedule *sc = &srv->schedule;
    if (!sc->started)
        return;
    sc->started = false;
    uv_timer_stop(&sc->timer);
    uv_close((uv_handle_t *)&sc->timer, NULL);
}
