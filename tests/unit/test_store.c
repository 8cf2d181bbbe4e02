/* test_store.c - unit tests of core/store.c (LMDB behind store.h): put/get/
 * del, prefix iteration (with deletion from the callback), last_key,
 * no_overwrite, read-only open, persistence across reopen, STORE_FULL. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "store_fixture.h"

typedef store_fixture fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || store_fixture_open(f, "store") != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_fixture_close(f);
    free(f);
    return 0;
}

static void put(store *s, const char *db, const char *k, const char *v)
{
    store_txn *t;
    assert_int_equal(store_txn_begin(s, true, &t), STORE_OK);
    assert_int_equal(store_put(t, db, k, strlen(k), v, strlen(v), false), STORE_OK);
    assert_int_equal(store_txn_commit(t), STORE_OK);
}

/* Reads k into buf (NUL-terminated); returns the store code. */
static int get(store *s, const char *db, const char *k, char *buf, size_t cap)
{
    store_txn *t;
    assert_int_equal(store_txn_begin(s, false, &t), STORE_OK);
    const void *v;
    size_t vlen;
    int rc = store_get(t, db, k, strlen(k), &v, &vlen);
    if (rc == STORE_OK) {
        assert_true(vlen < cap);
        memcpy(buf, v, vlen);
        buf[vlen] = '\0';
    }
    store_txn_abort(t);
    return rc;
}

static void test_put_get_del(void **state)
{
    fixture *f = *state;
    char buf[64];
    put(f->s, "accounts", "alice", "one");
    assert_int_equal(get(f->s, "accounts", "alice", buf, sizeof buf), STORE_OK);
    assert_string_equal(buf, "one");
    put(f->s, "accounts", "alice", "two");
    assert_int_equal(get(f->s, "accounts", "alice", buf, sizeof buf), STORE_OK);
    assert_string_equal(buf, "two");
    assert_int_equal(get(f->s, "accounts", "bob", buf, sizeof buf), STORE_NOTFOUND);
    /* Same key in another database is another record. */
    assert_int_equal(get(f->s, "roster", "alice", buf, sizeof buf), STORE_NOTFOUND);

    store_txn *t;
    assert_int_equal(store_txn_begin(f->s, true, &t), STORE_OK);
    assert_int_equal(store_del(t, "accounts", "alice", 5), STORE_OK);
    assert_int_equal(store_del(t, "accounts", "alice", 5), STORE_NOTFOUND);
    assert_int_equal(store_txn_commit(t), STORE_OK);
    assert_int_equal(get(f->s, "accounts", "alice", buf, sizeof buf), STORE_NOTFOUND);

    /* An aborted write leaves nothing behind. */
    assert_int_equal(store_txn_begin(f->s, true, &t), STORE_OK);
    assert_int_equal(store_put(t, "accounts", "carol", 5, "x", 1, false), STORE_OK);
    store_txn_abort(t);
    assert_int_equal(get(f->s, "accounts", "carol", buf, sizeof buf), STORE_NOTFOUND);

    /* Writes in a read transaction are refused. */
    assert_int_equal(store_txn_begin(f->s, false, &t), STORE_OK);
    assert_int_equal(store_put(t, "accounts", "x", 1, "x", 1, false), STORE_ERROR);
    assert_int_equal(store_del(t, "accounts", "x", 1), STORE_ERROR);
    store_txn_abort(t);
}

static void test_no_overwrite(void **state)
{
    fixture *f = *state;
    char buf[16];
    store_txn *t;
    assert_int_equal(store_txn_begin(f->s, true, &t), STORE_OK);
    assert_int_equal(store_put(t, "accounts", "k", 1, "a", 1, true), STORE_OK);
    assert_int_equal(store_put(t, "accounts", "k", 1, "b", 1, true), STORE_EXISTS);
    assert_int_equal(store_txn_commit(t), STORE_OK);
    assert_int_equal(get(f->s, "accounts", "k", buf, sizeof buf), STORE_OK);
    assert_string_equal(buf, "a");
}

typedef struct collect {
    char keys[16][32];
    int n;
    int stop_at; /* stop after this many (0 = never) */
    store_txn *del_txn;
} collect;

static int collect_cb(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    collect *c = ud;
    assert_true(klen < 32);
    memcpy(c->keys[c->n], key, klen);
    c->keys[c->n][klen] = '\0';
    c->n++;
    if (c->del_txn) {
        char copy[32];
        memcpy(copy, key, klen);
        assert_int_equal(store_del(c->del_txn, "roster", copy, klen), STORE_OK);
    }
    if (c->stop_at && c->n == c->stop_at)
        return 7;
    return 0;
}

static void test_iter_prefix(void **state)
{
    fixture *f = *state;
    const char *keys[] = {"a\0z", "b\0b", "b\0a", "b\0c", "ba\0a", "c\0a"};
    store_txn *t;
    assert_int_equal(store_txn_begin(f->s, true, &t), STORE_OK);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(store_put(t, "roster", keys[i], 3 + (keys[i][1] == 'a'), "v", 1, false), STORE_OK);
    assert_int_equal(store_txn_commit(t), STORE_OK);

    collect c = {0};
    assert_int_equal(store_txn_begin(f->s, false, &t), STORE_OK);
    assert_int_equal(store_iter(t, "roster", "b\0", 2, collect_cb, &c), STORE_OK);
    assert_int_equal(c.n, 3);
    assert_memory_equal(c.keys[0], "b\0a", 3);
    assert_memory_equal(c.keys[1], "b\0b", 3);
    assert_memory_equal(c.keys[2], "b\0c", 3);

    memset(&c, 0, sizeof c);
    assert_int_equal(store_iter(t, "roster", NULL, 0, collect_cb, &c), STORE_OK);
    assert_int_equal(c.n, 6);

    memset(&c, 0, sizeof c);
    c.stop_at = 2;
    assert_int_equal(store_iter(t, "roster", "b\0", 2, collect_cb, &c), 7);
    assert_int_equal(c.n, 2);

    memset(&c, 0, sizeof c);
    assert_int_equal(store_iter(t, "roster", "zz", 2, collect_cb, &c), STORE_OK);
    assert_int_equal(c.n, 0);
    /* A database never written is empty, not an error. */
    assert_int_equal(store_iter(t, "never-written", NULL, 0, collect_cb, &c), STORE_OK);
    assert_int_equal(c.n, 0);
    store_txn_abort(t);

    /* Deleting the current key from the callback visits every key once. */
    assert_int_equal(store_txn_begin(f->s, true, &t), STORE_OK);
    memset(&c, 0, sizeof c);
    c.del_txn = t;
    assert_int_equal(store_iter(t, "roster", "b", 1, collect_cb, &c), STORE_OK);
    assert_int_equal(c.n, 4);
    assert_int_equal(store_txn_commit(t), STORE_OK);
    assert_int_equal(store_txn_begin(f->s, false, &t), STORE_OK);
    memset(&c, 0, sizeof c);
    assert_int_equal(store_iter(t, "roster", NULL, 0, collect_cb, &c), STORE_OK);
    assert_int_equal(c.n, 2);
    assert_memory_equal(c.keys[0], "a\0z", 3);
    assert_memory_equal(c.keys[1], "c\0a", 3);
    store_txn_abort(t);
}

typedef struct del_all {
    store_txn *t;
    const char *db;
    int n;
} del_all;

static int del_all_cb(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    del_all *d = ud;
    char copy[64];
    memcpy(copy, key, klen);
    assert_int_equal(store_del(d->t, d->db, copy, klen), STORE_OK);
    d->n++;
    return 0;
}

static int count_cb(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    (*(int *)ud)++;
    return 0;
}

static void test_iter_delete_pages(void **state)
{
    fixture *f = *state;
    store_txn *t;
    char key[32], val[200];
    memset(val, 'x', sizeof val);
    assert_int_equal(store_txn_begin(f->s, true, &t), STORE_OK);
    for (int i = 0; i < 3000; i++) {
        int n = snprintf(key, sizeof key, "u%c%05d", i % 2 ? 'a' : 'b', i);
        assert_int_equal(store_put(t, "offline", key, (size_t)n, val, sizeof val, false), STORE_OK);
    }
    assert_int_equal(store_txn_commit(t), STORE_OK);

    assert_int_equal(store_txn_begin(f->s, true, &t), STORE_OK);
    del_all d = {t, "offline", 0};
    assert_int_equal(store_iter(t, "offline", "ua", 2, del_all_cb, &d), STORE_OK);
    assert_int_equal(d.n, 1500);
    assert_int_equal(store_txn_commit(t), STORE_OK);

    int n = 0;
    assert_int_equal(store_txn_begin(f->s, false, &t), STORE_OK);
    assert_int_equal(store_iter(t, "offline", "u", 1, count_cb, &n), STORE_OK);
    assert_int_equal(n, 1500);
    n = 0;
    assert_int_equal(store_iter(t, "offline", "ua", 2, count_cb, &n), STORE_OK);
    assert_int_equal(n, 0);
    store_txn_abort(t);
}

static void test_del_prefix(void **state)
{
    fixture *f = *state;
    store_txn *t;
    assert_int_equal(store_txn_begin(f->s, true, &t), STORE_OK);
    const char *keys[] = {"alice\0x", "alice\0y", "alicex", "bob\0x"};
    for (int i = 0; i < 4; i++)
        assert_int_equal(store_put(t, "roster", keys[i], strlen(keys[i]) + (i == 2 ? 0 : 2), "v", 1, false),
                         STORE_OK);
    assert_int_equal(store_del_prefix(t, "roster", "alice\0", 6), STORE_OK);
    assert_int_equal(store_txn_commit(t), STORE_OK);
    assert_int_equal(store_txn_begin(f->s, false, &t), STORE_OK);
    int n = 0;
    assert_int_equal(store_iter(t, "roster", NULL, 0, count_cb, &n), STORE_OK);
    assert_int_equal(n, 2); /* "alicex" and "bob\0x" are left */
    const void *v;
    size_t vl;
    assert_int_equal(store_get(t, "roster", "alicex", 6, &v, &vl), STORE_OK);
    assert_int_equal(store_get(t, "roster", "alice\0x", 7, &v, &vl), STORE_NOTFOUND);
    store_txn_abort(t);
}

static void test_last_key(void **state)
{
    fixture *f = *state;
    store_txn *t;
    unsigned char buf[64];
    size_t klen;
    assert_int_equal(store_txn_begin(f->s, true, &t), STORE_OK);
    assert_int_equal(store_last_key(t, "offline", "bob\0", 4, buf, sizeof buf, &klen), STORE_NOTFOUND);
    const char *keys[] = {"alice\0\x01", "bob\0\x01", "bob\0\x02", "bob\0\xff", "bob\x01", "carol\0\x01"};
    size_t lens[] = {7, 5, 5, 5, 4, 7};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(store_put(t, "offline", keys[i], lens[i], "v", 1, false), STORE_OK);
    assert_int_equal(store_last_key(t, "offline", "bob\0", 4, buf, sizeof buf, &klen), STORE_OK);
    assert_int_equal(klen, 5);
    assert_memory_equal(buf, "bob\0\xff", 5);
    assert_int_equal(store_last_key(t, "offline", "carol\0", 6, buf, sizeof buf, &klen), STORE_OK);
    assert_memory_equal(buf, "carol\0\x01", 7);
    assert_int_equal(store_last_key(t, "offline", "alice\0", 6, buf, sizeof buf, &klen), STORE_OK);
    assert_memory_equal(buf, "alice\0\x01", 7);
    assert_int_equal(store_last_key(t, "offline", "dave\0", 5, buf, sizeof buf, &klen), STORE_NOTFOUND);
    assert_int_equal(store_last_key(t, "offline", "b", 1, buf, sizeof buf, &klen), STORE_OK);
    assert_memory_equal(buf, "bob\x01", 4);
    assert_int_equal(store_last_key(t, "offline", NULL, 0, buf, sizeof buf, &klen), STORE_OK);
    assert_memory_equal(buf, "carol\0\x01", 7);
    /* A prefix ending in 0xff. */
    assert_int_equal(store_last_key(t, "offline", "bob\0\xff", 5, buf, sizeof buf, &klen), STORE_OK);
    assert_int_equal(klen, 5);
    assert_int_equal(store_last_key(t, "offline", "bob\0", 4, buf, 2, &klen), STORE_ERROR);
    assert_int_equal(store_txn_commit(t), STORE_OK);
}

static void test_reopen_readonly(void **state)
{
    fixture *f = *state;
    char buf[64], err[256];
    put(f->s, "accounts", "alice", "kept");
    put(f->s, "custom", "k", "lazily created");
    store_close(f->s);
    f->s = NULL;

    assert_int_equal(store_open(&f->s, f->dir, 16, false, err, sizeof err), STORE_OK);
    assert_int_equal(get(f->s, "accounts", "alice", buf, sizeof buf), STORE_OK);
    assert_string_equal(buf, "kept");
    assert_int_equal(get(f->s, "custom", "k", buf, sizeof buf), STORE_OK);
    assert_string_equal(buf, "lazily created");

    /* A second, read-only handle on the same environment. */
    store *ro;
    assert_int_equal(store_open(&ro, f->dir, 16, true, err, sizeof err), STORE_OK);
    assert_int_equal(get(ro, "accounts", "alice", buf, sizeof buf), STORE_OK);
    assert_string_equal(buf, "kept");
    assert_int_equal(get(ro, "custom", "k", buf, sizeof buf), STORE_OK);
    assert_int_equal(get(ro, "absent-db", "k", buf, sizeof buf), STORE_NOTFOUND);
    store_txn *t;
    assert_int_equal(store_txn_begin(ro, true, &t), STORE_ERROR);
    assert_null(t);
    /* The writer's later commit is visible to the reader's next txn. */
    put(f->s, "accounts", "bob", "new");
    assert_int_equal(get(ro, "accounts", "bob", buf, sizeof buf), STORE_OK);
    store_close(ro);

    /* Read-only open of a directory without a store fails cleanly. */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/none", f->dir);
    assert_int_not_equal(store_open(&ro, missing, 16, true, err, sizeof err), STORE_OK);
    assert_null(ro);
    assert_true(strlen(err) > 0);
}

static void test_one_writer(void **state)
{
    fixture *f = *state;
    store_txn *t, *t2, *r1, *r2;
    assert_int_equal(store_txn_begin(f->s, true, &t), STORE_OK);
    assert_int_equal(store_txn_begin(f->s, true, &t2), STORE_ERROR);
    /* Readers alongside the writer, and two readers at once. */
    assert_int_equal(store_txn_begin(f->s, false, &r1), STORE_OK);
    assert_int_equal(store_txn_begin(f->s, false, &r2), STORE_OK);
    store_txn_abort(r1);
    store_txn_abort(r2);
    /* A database first opened in a write txn that aborts is usable later. */
    assert_int_equal(store_put(t, "aborted-db", "k", 1, "v", 1, false), STORE_OK);
    store_txn_abort(t);
    char buf[8];
    assert_int_equal(get(f->s, "aborted-db", "k", buf, sizeof buf), STORE_NOTFOUND);
    put(f->s, "aborted-db", "k", "v");
    assert_int_equal(get(f->s, "aborted-db", "k", buf, sizeof buf), STORE_OK);
}

static void test_full(void **state)
{
    fixture *f = *state;
    char dir[600], err[256];
    snprintf(dir, sizeof dir, "%s/tiny", f->dir);
    store *s;
    assert_int_equal(store_open(&s, dir, 1, false, err, sizeof err), STORE_OK);
    static char val[64 * 1024];
    memset(val, 'z', sizeof val);
    int rc = STORE_OK;
    store_txn *t;
    int i;
    for (i = 0; i < 100 && rc == STORE_OK; i++) {
        assert_int_equal(store_txn_begin(s, true, &t), STORE_OK);
        char key[16];
        int n = snprintf(key, sizeof key, "k%03d", i);
        rc = store_put(t, "offline", key, (size_t)n, val, sizeof val, false);
        if (rc == STORE_OK)
            rc = store_txn_commit(t);
        else
            store_txn_abort(t);
    }
    assert_int_equal(rc, STORE_FULL);
    assert_true(i > 2);
    assert_non_null(strstr(store_last_error(s), "MDB_MAP_FULL"));
    /* Still usable for reads and small deletes after that. */
    char buf[8];
    assert_int_equal(get(s, "offline", "missing", buf, sizeof buf), STORE_NOTFOUND);
    assert_int_equal(store_txn_begin(s, true, &t), STORE_OK);
    assert_int_equal(store_del(t, "offline", "k000", 4), STORE_OK);
    assert_int_equal(store_txn_commit(t), STORE_OK);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_del, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_overwrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iter_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iter_delete_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_del_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_last_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_readonly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
