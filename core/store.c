/* store.c - the durable store (store.h) on LMDB: one environment in a
 * directory, named databases, synced commits (no MDB_NOSYNC), so anything a
 * commit acknowledged survives kill -9.
 *
 * Owns the MDB_env and a cache of named-database handles.  The known record
 * databases are created at store_open in one write transaction; any other
 * name is opened inside the transaction that first uses it and enters the
 * cache only when that transaction commits (LMDB closes a handle opened in a
 * transaction that aborts).
 */
#include "store.h"

#include <errno.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define STORE_MAX_DBS 32
#define STORE_MAX_KEY 511 /* LMDB's default mdb_env_get_maxkeysize */

/* Databases created when the store opens (the record modules' names). */
static const char *const store_known_dbs[] = {"accounts", "roster", "offline"};

typedef struct store_db {
    char *name; /* owned */
    MDB_dbi dbi;
} store_db;

struct store {
    MDB_env *env;
    bool readonly;
    bool writer_active; /* a write transaction of this store is open */
    store_db dbs[STORE_MAX_DBS];
    size_t ndbs;
    char err[256];
};

struct store_txn {
    store *s;
    MDB_txn *txn;
    bool write;
    /* Handles opened inside this transaction, cached on commit. */
    store_db pending[STORE_MAX_DBS];
    size_t npending;
};

static void store_seterr(store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void store_seterr(store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
}

/* Maps an LMDB result to a store code, recording the message. */
static int store_rc(store *s, int rc, const char *what)
{
    switch (rc) {
    case MDB_SUCCESS:
        return STORE_OK;
    case MDB_NOTFOUND:
        return STORE_NOTFOUND;
    case MDB_KEYEXIST:
        return STORE_EXISTS;
    case MDB_MAP_FULL:
        store_seterr(s, "%s: %s", what, mdb_strerror(rc));
        return STORE_FULL;
    default:
        store_seterr(s, "%s: %s", what, mdb_strerror(rc));
        return STORE_ERROR;
    }
}

static int store_mkdirs(const char *dir)
{
    char *p = strdup(dir);
    if (!p)
        return -1;
    for (char *q = p + 1; *q; q++) {
        if (*q != '/')
            continue;
        *q = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *q = '/';
    }
    int rc = (mkdir(p, 0700) != 0 && errno != EEXIST) ? -1 : 0;
    free(p);
    return rc;
}

static int store_cache_add(store_db *arr, size_t *n, const char *name, MDB_dbi dbi)
{
    if (*n >= STORE_MAX_DBS)
        return -1;
    char *copy = strdup(name);
    if (!copy)
        return -1;
    arr[*n].name = copy;
    arr[*n].dbi = dbi;
    (*n)++;
    return 0;
}

static void store_cache_free(store_db *arr, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free(arr[i].name);
    *n = 0;
}

static const store_db *store_cache_find(const store_db *arr, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(arr[i].name, name) == 0)
            return &arr[i];
    return NULL;
}

/* Opens the known databases: created in a write transaction, or (read-only
 * store) looked up in a read transaction, skipping those not yet created. */
static int store_open_known(store *s)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, s->readonly ? MDB_RDONLY : 0, &txn);
    if (rc != MDB_SUCCESS)
        return store_rc(s, rc, "begin");
    for (size_t i = 0; i < sizeof store_known_dbs / sizeof store_known_dbs[0]; i++) {
        MDB_dbi dbi;
        rc = mdb_dbi_open(txn, store_known_dbs[i], s->readonly ? 0 : MDB_CREATE, &dbi);
        if (rc == MDB_NOTFOUND && s->readonly)
            continue;
        if (rc != MDB_SUCCESS) {
            mdb_txn_abort(txn);
            return store_rc(s, rc, store_known_dbs[i]);
        }
        if (store_cache_add(s->dbs, &s->ndbs, store_known_dbs[i], dbi) != 0) {
            mdb_txn_abort(txn);
            store_cache_free(s->dbs, &s->ndbs);
            store_seterr(s, "out of memory");
            return STORE_ERROR;
        }
    }
    rc = mdb_txn_commit(txn);
    if (rc != MDB_SUCCESS) {
        store_cache_free(s->dbs, &s->ndbs);
        return store_rc(s, rc, "commit");
    }
    return STORE_OK;
}

int store_open(store **out, const char *dir, size_t map_size_mb, bool readonly, char *err, size_t errlen)
{
    *out = NULL;
    store *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return STORE_ERROR;
    }
    s->readonly = readonly;
    if (!readonly && store_mkdirs(dir) != 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        free(s);
        return STORE_ERROR;
    }
    int rc = mdb_env_create(&s->env);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_set_maxdbs(s->env, STORE_MAX_DBS);
    if (rc == MDB_SUCCESS && map_size_mb > 0)
        rc = mdb_env_set_mapsize(s->env, map_size_mb * 1024 * 1024);
    /* MDB_NOTLS: read transactions are tied to their object, not the thread,
     * so a caller may hold more than one at a time.  Commits stay synced. */
    if (rc == MDB_SUCCESS)
        rc = mdb_env_open(s->env, dir, MDB_NOTLS | (readonly ? MDB_RDONLY : 0), 0600);
    if (rc != MDB_SUCCESS) {
        snprintf(err, errlen, "%s: %s", dir, mdb_strerror(rc));
        if (s->env)
            mdb_env_close(s->env);
        free(s);
        return rc == MDB_MAP_FULL ? STORE_FULL : STORE_ERROR;
    }
    /* Release reader slots left by processes that died (e.g. a killed
     * onairctl); harmless otherwise. */
    int dead = 0;
    mdb_reader_check(s->env, &dead);
    rc = store_open_known(s);
    if (rc != STORE_OK) {
        snprintf(err, errlen, "%s: %s", dir, s->err);
        mdb_env_close(s->env);
        free(s);
        return rc;
    }
    *out = s;
    return STORE_OK;
}

void store_close(store *s)
{
    if (!s)
        return;
    mdb_env_close(s->env);
    store_cache_free(s->dbs, &s->ndbs);
    free(s);
}

const char *store_last_error(const store *s)
{
    return s->err[0] ? s->err : "no error";
}

int store_txn_begin(store *s, bool write, store_txn **out)
{
    *out = NULL;
    if (write && s->readonly) {
        store_seterr(s, "store opened read-only");
        return STORE_ERROR;
    }
    if (write && s->writer_active) {
        /* LMDB would block this thread forever on its own writer lock. */
        store_seterr(s, "a write transaction is already open");
        return STORE_ERROR;
    }
    store_txn *t = malloc(sizeof *t);
    if (!t) {
        store_seterr(s, "out of memory");
        return STORE_ERROR;
    }
    t->s = s;
    t->write = write;
    t->npending = 0;
    int rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
    if (rc == MDB_MAP_RESIZED) {
        /* Another process grew the map: adopt its size and retry. */
        rc = mdb_env_set_mapsize(s->env, 0);
        if (rc == MDB_SUCCESS)
            rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
    }
    if (rc != MDB_SUCCESS) {
        free(t);
        return store_rc(s, rc, "begin");
    }
    if (write)
        s->writer_active = true;
    *out = t;
    return STORE_OK;
}

static void store_txn_end(store_txn *t, bool keep_handles)
{
    store *s = t->s;
    for (size_t i = 0; i < t->npending; i++) {
        if (keep_handles && s->ndbs < STORE_MAX_DBS && !store_cache_find(s->dbs, s->ndbs, t->pending[i].name)) {
            s->dbs[s->ndbs++] = t->pending[i]; /* name ownership moves to the store */
        } else {
            free(t->pending[i].name);
        }
    }
    if (t->write)
        s->writer_active = false;
    free(t);
}

int store_txn_commit(store_txn *t)
{
    int rc = mdb_txn_commit(t->txn);
    int ret = store_rc(t->s, rc, "commit");
    store_txn_end(t, rc == MDB_SUCCESS);
    return ret;
}

void store_txn_abort(store_txn *t)
{
    if (!t->write && t->npending > 0) {
        /* Ending a read transaction by commit keeps the handles it opened;
         * there is nothing else to commit. */
        store_txn_end(t, mdb_txn_commit(t->txn) == MDB_SUCCESS);
        return;
    }
    mdb_txn_abort(t->txn);
    store_txn_end(t, false);
}

/* Resolves a database name to a handle for this transaction.  Returns
 * STORE_OK, STORE_NOTFOUND (a database that does not exist yet, in a read
 * transaction) or STORE_ERROR. */
static int store_dbi(store_txn *t, const char *db, MDB_dbi *dbi)
{
    const store_db *d = store_cache_find(t->s->dbs, t->s->ndbs, db);
    if (!d)
        d = store_cache_find(t->pending, t->npending, db);
    if (d) {
        *dbi = d->dbi;
        return STORE_OK;
    }
    if (t->s->ndbs + t->npending >= STORE_MAX_DBS) {
        store_seterr(t->s, "%s: too many databases", db);
        return STORE_ERROR;
    }
    int rc = mdb_dbi_open(t->txn, db, t->write ? MDB_CREATE : 0, dbi);
    if (rc != MDB_SUCCESS)
        return store_rc(t->s, rc, db);
    if (store_cache_add(t->pending, &t->npending, db, *dbi) != 0) {
        store_seterr(t->s, "out of memory");
        return STORE_ERROR;
    }
    return STORE_OK;
}

int store_get(store_txn *t, const char *db, const void *key, size_t klen, const void **val, size_t *vlen)
{
    MDB_dbi dbi;
    int rc = store_dbi(t, db, &dbi);
    if (rc != STORE_OK)
        return rc;
    MDB_val k = {klen, (void *)key}, v;
    rc = mdb_get(t->txn, dbi, &k, &v);
    if (rc != MDB_SUCCESS)
        return store_rc(t->s, rc, db);
    *val = v.mv_data;
    *vlen = v.mv_size;
    return STORE_OK;
}

int store_put(store_txn *t, const char *db, const void *key, size_t klen, const void *val, size_t vlen,
              bool no_overwrite)
{
    if (!t->write) {
        store_seterr(t->s, "%s: put in a read transaction", db);
        return STORE_ERROR;
    }
    MDB_dbi dbi;
    int rc = store_dbi(t, db, &dbi);
    if (rc != STORE_OK)
        return rc;
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    return store_rc(t->s, mdb_put(t->txn, dbi, &k, &v, no_overwrite ? MDB_NOOVERWRITE : 0), db);
}

int store_del(store_txn *t, const char *db, const void *key, size_t klen)
{
    if (!t->write) {
        store_seterr(t->s, "%s: delete in a read transaction", db);
        return STORE_ERROR;
    }
    MDB_dbi dbi;
    int rc = store_dbi(t, db, &dbi);
    if (rc != STORE_OK)
        return rc;
    MDB_val k = {klen, (void *)key};
    return store_rc(t->s, mdb_del(t->txn, dbi, &k, NULL), db);
}

static bool store_has_prefix(const MDB_val *k, const void *prefix, size_t plen)
{
    return k->mv_size >= plen && (plen == 0 || memcmp(k->mv_data, prefix, plen) == 0);
}

/* Whether the walk goes on at key k: within the prefix, or below `to`. */
typedef struct store_bound {
    const void *prefix;
    size_t plen;
    const void *to; /* exclusive upper bound; NULL for none */
    size_t tlen;
} store_bound;

static bool store_in_bound(const MDB_val *k, const store_bound *b)
{
    if (!store_has_prefix(k, b->prefix, b->plen))
        return false;
    if (!b->to)
        return true;
    size_t n = k->mv_size < b->tlen ? k->mv_size : b->tlen;
    int c = memcmp(k->mv_data, b->to, n);
    return c < 0 || (c == 0 && k->mv_size < b->tlen);
}

/* Visits keys from `from` (inclusive; NULL = the first key) while they stay
 * in bound. */
static int store_walk(store_txn *t, const char *db, const void *from, size_t flen, const store_bound *b,
                      store_iter_cb cb, void *ud)
{
    MDB_dbi dbi;
    int rc = store_dbi(t, db, &dbi);
    if (rc == STORE_NOTFOUND)
        return STORE_OK; /* no such database yet: nothing to visit */
    if (rc != STORE_OK)
        return rc;
    if (flen > STORE_MAX_KEY)
        return STORE_OK;
    MDB_cursor *cur;
    rc = mdb_cursor_open(t->txn, dbi, &cur);
    if (rc != MDB_SUCCESS)
        return store_rc(t->s, rc, db);
    MDB_val k = {flen, (void *)from}, v;
    rc = flen ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    /* In a write transaction the callback may change the database; the
     * current key is saved and the cursor re-positioned after each call, so
     * the walk goes on from the next larger key whatever cb did. */
    unsigned char saved[STORE_MAX_KEY];
    int ret = STORE_OK;
    while (rc == MDB_SUCCESS && store_in_bound(&k, b)) {
        size_t slen = k.mv_size;
        if (t->write) {
            if (slen > sizeof saved) {
                ret = STORE_ERROR;
                store_seterr(t->s, "%s: key too long", db);
                break;
            }
            memcpy(saved, k.mv_data, slen);
        }
        int stop = cb(ud, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
        if (stop != 0) {
            ret = stop;
            break;
        }
        if (t->write) {
            k.mv_data = saved;
            k.mv_size = slen;
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
            if (rc == MDB_SUCCESS && k.mv_size == slen && memcmp(k.mv_data, saved, slen) == 0)
                rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        } else {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
    }
    if (ret == STORE_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        ret = store_rc(t->s, rc, db);
    mdb_cursor_close(cur);
    return ret;
}

int store_iter(store_txn *t, const char *db, const void *prefix, size_t plen, store_iter_cb cb, void *ud)
{
    store_bound b = {prefix, plen, NULL, 0};
    return store_walk(t, db, prefix, plen, &b, cb, ud);
}

int store_iter_range(store_txn *t, const char *db, const void *from, size_t flen, const void *to, size_t tlen,
                     store_iter_cb cb, void *ud)
{
    store_bound b = {NULL, 0, to, tlen};
    return store_walk(t, db, from, from ? flen : 0, &b, cb, ud);
}

int store_last_key(store_txn *t, const char *db, const void *prefix, size_t plen, void *keybuf, size_t keycap,
                   size_t *klen)
{
    MDB_dbi dbi;
    int rc = store_dbi(t, db, &dbi);
    if (rc != STORE_OK)
        return rc;
    if (plen > STORE_MAX_KEY)
        return STORE_NOTFOUND;
    MDB_cursor *cur;
    rc = mdb_cursor_open(t->txn, dbi, &cur);
    if (rc != MDB_SUCCESS)
        return store_rc(t->s, rc, db);
    /* Smallest key greater than every key with the prefix: the prefix with
     * its last non-0xff byte incremented and what follows dropped. */
    unsigned char succ[STORE_MAX_KEY];
    size_t slen = plen;
    if (plen)
        memcpy(succ, prefix, plen);
    while (slen > 0 && succ[slen - 1] == 0xff)
        slen--;
    MDB_val k, v;
    if (slen > 0) {
        succ[slen - 1]++;
        k.mv_data = succ;
        k.mv_size = slen;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == MDB_SUCCESS)
            rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
        else if (rc == MDB_NOTFOUND)
            rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    } else {
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    }
    int ret;
    if (rc == MDB_SUCCESS && store_has_prefix(&k, prefix, plen)) {
        if (k.mv_size > keycap) {
            store_seterr(t->s, "%s: key buffer too small", db);
            ret = STORE_ERROR;
        } else {
            memcpy(keybuf, k.mv_data, k.mv_size);
            *klen = k.mv_size;
            ret = STORE_OK;
        }
    } else if (rc == MDB_SUCCESS || rc == MDB_NOTFOUND) {
        ret = STORE_NOTFOUND;
    } else {
        ret = store_rc(t->s, rc, db);
    }
    mdb_cursor_close(cur);
    return ret;
}

typedef struct del_prefix_ctx {
    store_txn *t;
    const char *db;
} del_prefix_ctx;

static int store_del_one(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    del_prefix_ctx *c = ud;
    char copy[512]; /* LMDB keys are at most 511 bytes; key points into the page being changed */
    if (klen > sizeof copy)
        return STORE_ERROR;
    memcpy(copy, key, klen);
    return store_del(c->t, c->db, copy, klen);
}

int store_count(store_txn *t, const char *db, size_t *n)
{
    *n = 0;
    MDB_dbi dbi;
    int rc = store_dbi(t, db, &dbi);
    if (rc == STORE_NOTFOUND)
        return STORE_OK;
    if (rc != STORE_OK)
        return rc;
    MDB_stat st;
    rc = mdb_stat(t->txn, dbi, &st);
    if (rc != MDB_SUCCESS)
        return store_rc(t->s, rc, db);
    *n = st.ms_entries;
    return STORE_OK;
}

int store_del_prefix(store_txn *t, const char *db, const void *prefix, size_t plen)
{
    if (plen == 0)
        return STORE_ERROR;
    del_prefix_ctx c = {t, db};
    return store_iter(t, db, prefix, plen, store_del_one, &c);
}
