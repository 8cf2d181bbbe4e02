/* test_account.c - unit tests of core/account.c: create/exists/duplicate,
 * password checks, set_password, delete cascading to roster and offline
 * data, list, and the stored SCRAM secrets checked against an independent
 * computation (OpenSSL) and the RFC 5802 / RFC 7677 example exchanges. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ftw.h>
#include <gsasl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "account.h"
#include "offline.h"
#include "roster.h"
#include "store.h"
#include "store_fixture.h"

typedef store_fixture fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || store_fixture_open(f, "account") != 0)
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

static size_t b64dec(const char *in, unsigned char *out)
{
    int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)strlen(in));
    assert_true(n >= 0);
    size_t len = strlen(in);
    while (len > 0 && in[len - 1] == '=') {
        n--;
        len--;
    }
    return (size_t)n;
}

/* SCRAM secrets computed independently of GNU SASL (RFC 5802 section 3). */
static void scram_openssl(const EVP_MD *md, const char *password, const unsigned char *salt, size_t salt_len,
                          unsigned iter, unsigned char *stored, unsigned char *server)
{
    unsigned char salted[EVP_MAX_MD_SIZE], client_key[EVP_MAX_MD_SIZE];
    int hl = EVP_MD_size(md);
    unsigned int l;
    assert_int_equal(PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, (int)iter, md, hl, salted),
                     1);
    HMAC(md, salted, hl, (const unsigned char *)"Client Key", 10, client_key, &l);
    EVP_Digest(client_key, (size_t)hl, stored, &l, md, NULL);
    HMAC(md, salted, hl, (const unsigned char *)"Server Key", 10, server, &l);
}

/* Server-side check of an RFC example exchange with stored secrets only:
 * ClientKey = proof XOR HMAC(StoredKey, AuthMessage), H(ClientKey) must be
 * StoredKey, and HMAC(ServerKey, AuthMessage) the server's v=. */
static void check_exchange(const EVP_MD *md, const unsigned char *stored, const unsigned char *server,
                           const char *auth_message, const char *proof_b64, const char *verifier_b64)
{
    unsigned char proof[64], verifier[64], sig[EVP_MAX_MD_SIZE], key[EVP_MAX_MD_SIZE], h[EVP_MAX_MD_SIZE];
    unsigned int l;
    size_t hl = (size_t)EVP_MD_size(md);
    assert_int_equal(b64dec(proof_b64, proof), hl);
    assert_int_equal(b64dec(verifier_b64, verifier), hl);
    HMAC(md, stored, (int)hl, (const unsigned char *)auth_message, strlen(auth_message), sig, &l);
    for (size_t i = 0; i < hl; i++)
        key[i] = proof[i] ^ sig[i];
    EVP_Digest(key, hl, h, &l, md, NULL);
    assert_memory_equal(h, stored, hl);
    HMAC(md, server, (int)hl, (const unsigned char *)auth_message, strlen(auth_message), sig, &l);
    assert_memory_equal(sig, verifier, hl);
}

static void test_rfc_vectors(void **state)
{
    char salted[32], ck[32], sk[32], st[32];
    unsigned char salt[32], stored[32], server[32];

    /* RFC 5802 section 5: SCRAM-SHA-1, user/pencil. */
    size_t sl = b64dec("QSXCR+Q6sek8bf92", salt);
    assert_int_equal(gsasl_scram_secrets_from_password(GSASL_HASH_SHA1, "pencil", 4096, (const char *)salt, sl,
                                                       salted, ck, sk, st),
                     GSASL_OK);
    scram_openssl(EVP_sha1(), "pencil", salt, sl, 4096, stored, server);
    assert_memory_equal(st, stored, 20);
    assert_memory_equal(sk, server, 20);
    check_exchange(EVP_sha1(), stored, server,
                   "n=user,r=fyko+d2lbbFgONRv9qkxdawL,"
                   "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096,"
                   "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j",
                   "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", "rmF9pqV8S7suAoZWja4dJRkFsKQ=");

    /* RFC 7677 section 3: SCRAM-SHA-256, user/pencil. */
    sl = b64dec("W22ZaJ0SNY7soEsUEjb6gQ==", salt);
    assert_int_equal(sl, 16);
    assert_int_equal(gsasl_scram_secrets_from_password(GSASL_HASH_SHA256, "pencil", 4096, (const char *)salt, sl,
                                                       salted, ck, sk, st),
                     GSASL_OK);
    scram_openssl(EVP_sha256(), "pencil", salt, sl, 4096, stored, server);
    assert_memory_equal(st, stored, 32);
    assert_memory_equal(sk, server, 32);
    check_exchange(EVP_sha256(), stored, server,
                   "n=user,r=rOprNGfwEbeRWgbNEkqO,"
                   "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
                   "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
                   "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

static void test_create_exists(void **state)
{
    fixture *f = *state;
    assert_false(account_exists(f->s, "alice"));
    assert_int_equal(account_create(f->s, "alice", "secret", 0), STORE_OK);
    assert_true(account_exists(f->s, "alice"));
    assert_true(account_exists(f->s, "ALICE")); /* Nodeprep */
    assert_int_equal(account_create(f->s, "Alice", "other", 0), STORE_EXISTS);
    assert_int_equal(account_check_password(f->s, "alice", "secret"), 0);
    assert_int_equal(account_create(f->s, "a b", "x", 0), STORE_ERROR);
    assert_int_equal(account_create(f->s, "", "x", 0), STORE_ERROR);
    assert_int_equal(account_create(f->s, NULL, "x", 0), STORE_ERROR);
    assert_false(account_exists(f->s, "a@b"));
    assert_false(account_exists(f->s, "bob"));
}

static void test_check_password(void **state)
{
    fixture *f = *state;
    assert_int_equal(account_create(f->s, "bob", "correct horse", 1000), STORE_OK);
    assert_int_equal(account_check_password(f->s, "bob", "correct horse"), 0);
    assert_int_equal(account_check_password(f->s, "Bob", "correct horse"), 0);
    assert_int_equal(account_check_password(f->s, "bob", "Correct horse"), ACCOUNT_MISMATCH);
    assert_int_equal(account_check_password(f->s, "bob", ""), ACCOUNT_MISMATCH);
    assert_int_equal(account_check_password(f->s, "nobody", "x"), STORE_NOTFOUND);
    assert_int_not_equal(ACCOUNT_MISMATCH, STORE_NOTFOUND);

    /* SASLprep: U+00A0 (no-break space) maps to a plain space. */
    assert_int_equal(account_create(f->s, "carol", "a\xc2\xa0" "b", 0), STORE_OK);
    assert_int_equal(account_check_password(f->s, "carol", "a b"), 0);
    /* A password SASLprep refuses is refused. */
    assert_int_equal(account_create(f->s, "dave", "a\x07" "b", 0), STORE_ERROR);
    assert_false(account_exists(f->s, "dave"));
}

/* The store-free check used off the loop: same answers as account_check_password. */
static void test_verify_scram(void **state)
{
    fixture *f = *state;
    assert_int_equal(account_create(f->s, "gina", "p\xc2\xa0" "q", 1200), STORE_OK);
    for (int h = ACCOUNT_SHA1; h <= ACCOUNT_SHA256; h++) {
        account_scram sc;
        assert_int_equal(account_get_scram(f->s, "gina", (account_hash)h, &sc), STORE_OK);
        assert_int_equal(account_verify_scram(&sc, (account_hash)h, "p q"), STORE_OK);
        assert_int_equal(account_verify_scram(&sc, (account_hash)h, "p  q"), ACCOUNT_MISMATCH);
        assert_int_equal(account_verify_scram(&sc, (account_hash)h, ""), ACCOUNT_MISMATCH);
        assert_int_equal(account_verify_scram(&sc, (account_hash)h, NULL), ACCOUNT_MISMATCH);
        assert_int_equal(account_verify_scram(&sc, (account_hash)h, "a\x07" "b"), ACCOUNT_MISMATCH);
        /* secrets of the other hash do not pass for this one */
        assert_int_equal(account_verify_scram(&sc, (account_hash)(1 - h), "p q"), ACCOUNT_MISMATCH);
    }
}

static void test_set_password(void **state)
{
    fixture *f = *state;
    assert_int_equal(account_set_password(f->s, "erin", "x", 0), STORE_NOTFOUND);
    assert_false(account_exists(f->s, "erin"));
    assert_int_equal(account_create(f->s, "erin", "old", 0), STORE_OK);
    account_scram before, after;
    assert_int_equal(account_get_scram(f->s, "erin", ACCOUNT_SHA256, &before), STORE_OK);
    assert_int_equal(account_set_password(f->s, "erin", "new", 5000), STORE_OK);
    assert_int_equal(account_check_password(f->s, "erin", "new"), 0);
    assert_int_equal(account_check_password(f->s, "erin", "old"), ACCOUNT_MISMATCH);
    assert_int_equal(account_get_scram(f->s, "erin", ACCOUNT_SHA256, &after), STORE_OK);
    assert_int_equal(after.iterations, 5000);
    assert_memory_not_equal(before.salt, after.salt, 16); /* fresh salt */
}

static void test_scram_secrets(void **state)
{
    fixture *f = *state;
    assert_int_equal(account_create(f->s, "user", "pencil", 0), STORE_OK);
    account_scram s1, s256;
    unsigned char stored[32], server[32];
    assert_int_equal(account_get_scram(f->s, "user", ACCOUNT_SHA1, &s1), STORE_OK);
    assert_int_equal(account_get_scram(f->s, "user", ACCOUNT_SHA256, &s256), STORE_OK);
    assert_int_equal(s1.iterations, ACCOUNT_SCRAM_ITER_DEFAULT);
    assert_int_equal(s1.key_len, 20);
    assert_int_equal(s256.key_len, 32);
    assert_int_equal(s1.salt_len, 16);
    assert_int_equal(s256.salt_len, 16);
    assert_memory_not_equal(s1.salt, s256.salt, 16);

    scram_openssl(EVP_sha1(), "pencil", s1.salt, s1.salt_len, s1.iterations, stored, server);
    assert_memory_equal(s1.stored_key, stored, 20);
    assert_memory_equal(s1.server_key, server, 20);
    scram_openssl(EVP_sha256(), "pencil", s256.salt, s256.salt_len, s256.iterations, stored, server);
    assert_memory_equal(s256.stored_key, stored, 32);
    assert_memory_equal(s256.server_key, server, 32);

    assert_int_equal(account_get_scram(f->s, "nobody", ACCOUNT_SHA1, &s1), STORE_NOTFOUND);
    assert_int_equal(account_get_scram(f->s, "user", (account_hash)7, &s1), STORE_ERROR);
}

static int list_cb(void *ud, const char *user)
{
    char *out = ud;
    strcat(out, user);
    strcat(out, ",");
    return strcmp(user, "stop") == 0 ? 5 : 0;
}

static void test_list(void **state)
{
    fixture *f = *state;
    char out[256] = "";
    assert_int_equal(account_list(f->s, list_cb, out), STORE_OK);
    assert_string_equal(out, "");
    const char *names[] = {"zed", "Amy", "mike", "stop", "x"};
    for (int i = 0; i < 5; i++)
        assert_int_equal(account_create(f->s, names[i], "pw", 100), STORE_OK);
    assert_int_equal(account_list(f->s, list_cb, out), 5);
    assert_string_equal(out, "amy,mike,stop,");
}

static void test_create_txn(void **state)
{
    fixture *f = *state;
    account_secrets sec;
    assert_int_equal(account_secrets_derive("shared", 0, &sec), STORE_OK);
    store_txn *t;
    assert_int_equal(store_txn_begin(f->s, true, &t), STORE_OK);
    char name[16];
    for (int i = 1; i <= 20; i++) {
        snprintf(name, sizeof name, "bench%d", i);
        assert_int_equal(account_create_txn(t, name, &sec), STORE_OK);
    }
    assert_int_equal(account_create_txn(t, "bench1", &sec), STORE_EXISTS);
    assert_int_equal(store_txn_commit(t), STORE_OK);
    assert_int_equal(account_check_password(f->s, "bench17", "shared"), 0);
    assert_int_equal(account_check_password(f->s, "bench17", "other"), ACCOUNT_MISMATCH);
}

static int count_roster(void *ud, const roster_item *item)
{
    (*(int *)ud)++;
    return 0;
}

static void test_delete_cascades(void **state)
{
    fixture *f = *state;
    assert_int_equal(account_delete(f->s, "frank"), STORE_NOTFOUND);
    assert_int_equal(account_create(f->s, "frank", "pw", 100), STORE_OK);
    assert_int_equal(account_create(f->s, "frankie", "pw", 100), STORE_OK);
    roster_item it = {.jid = "friend@example.com", .sub = ROSTER_SUB_BOTH};
    assert_int_equal(roster_put(f->s, "frank", &it, 0), STORE_OK);
    it.jid = "other@example.com";
    assert_int_equal(roster_put(f->s, "frank", &it, 0), STORE_OK);
    assert_int_equal(roster_put(f->s, "frankie", &it, 0), STORE_OK);
    assert_int_equal(offline_push(f->s, "frank", "<message/>", 10, 1, 0), STORE_OK);
    assert_int_equal(offline_push(f->s, "frank", "<message/>", 10, 2, 0), STORE_OK);
    assert_int_equal(offline_push(f->s, "frankie", "<message/>", 10, 3, 0), STORE_OK);

    assert_int_equal(account_delete(f->s, "Frank"), STORE_OK);
    assert_false(account_exists(f->s, "frank"));
    int n = 0;
    assert_int_equal(roster_list(f->s, "frank", count_roster, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(offline_count(f->s, "frank"), 0);
    /* Another user whose name starts the same keeps everything. */
    assert_true(account_exists(f->s, "frankie"));
    assert_int_equal(roster_list(f->s, "frankie", count_roster, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(offline_count(f->s, "frankie"), 1);
    assert_int_equal(account_delete(f->s, "frank"), STORE_NOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_vectors),
        cmocka_unit_test_setup_teardown(test_create_exists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_scram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scram_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_txn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_cascades, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
