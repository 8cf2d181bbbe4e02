/* test_sasl.c - unit tests of core/sasl.c: real GNU SASL clients run whole
 * exchanges against the server glue over a real store: SCRAM-SHA-256 and
 * SCRAM-SHA-1 from stored keys, PLAIN only over TLS, ANONYMOUS only on the
 * guest host, wrong passwords and unknown users refused alike. */
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

#include "account.h"
#include "sasl.h"
#include "store.h"
#include "store_fixture.h"

typedef struct fixture {
    store_fixture sf;
    Gsasl *server_ctx;
    Gsasl *client_ctx;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || store_fixture_open(&f->sf, "sasl") != 0)
        return -1;
    if (account_create(f->sf.s, "alice", "pencil", 0) != STORE_OK)
        return -1;
    if (sasl_setup(&f->server_ctx) != 0 || gsasl_init(&f->client_ctx) != GSASL_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    gsasl_done(f->server_ctx);
    gsasl_done(f->client_ctx);
    store_fixture_close(&f->sf);
    free(f);
    return 0;
}

static const sasl_policy tls_policy = {true, false, true, true};
static const sasl_policy plain_text_policy = {false, false, true, false};
static const sasl_policy guest_policy = {true, true, true, true};

/* Runs a whole exchange with a gsasl client; returns the final status and
 * leaves x filled (caller clears). */
static sasl_status run(fixture *f, const sasl_policy *pol, const char *mech, const char *user, const char *password,
                       sasl_exchange *x, const char **condition)
{
    Gsasl_session *cs = NULL;
    assert_int_equal(gsasl_client_start(f->client_ctx, mech, &cs), GSASL_OK);
    if (user)
        gsasl_property_set(cs, GSASL_AUTHID, user);
    if (password)
        gsasl_property_set(cs, GSASL_PASSWORD, password);
    if (!user)
        gsasl_property_set(cs, GSASL_ANONYMOUS_TOKEN, "viewer");
    char *c_out = NULL;
    int crc = gsasl_step64(cs, "", &c_out);
    assert_true(crc == GSASL_OK || crc == GSASL_NEEDS_MORE);
    char *s_out = NULL;
    sasl_status st = sasl_start(x, f->server_ctx, f->sf.s, pol, mech, c_out, &s_out, condition);
    free(c_out);
    for (int round = 0; st == SASL_CONTINUE && round < 5; round++) {
        c_out = NULL;
        crc = gsasl_step64(cs, s_out, &c_out);
        free(s_out);
        s_out = NULL;
        if (crc != GSASL_OK && crc != GSASL_NEEDS_MORE) {
            free(c_out);
            gsasl_finish(cs);
            return SASL_FAILURE;
        }
        st = sasl_step(x, c_out, &s_out, condition);
        free(c_out);
    }
    if (st == SASL_SUCCESS) {
        /* The client must accept the server's final message (server
         * signature for SCRAM): proves the server knew the keys. */
        c_out = NULL;
        crc = gsasl_step64(cs, s_out, &c_out);
        assert_int_equal(crc, GSASL_OK);
        free(c_out);
    }
    free(s_out);
    gsasl_finish(cs);
    return st;
}

static void test_scram_sha256_ok(void **state)
{
    sasl_exchange x = {0};
    const char *cond = NULL;
    assert_int_equal(run(*state, &tls_policy, "SCRAM-SHA-256", "alice", "pencil", &x, &cond), SASL_SUCCESS);
    assert_string_equal(x.user, "alice");
    assert_false(x.is_guest);
    sasl_exchange_clear(&x);
}

static void test_scram_sha1_ok_case_folded_user(void **state)
{
    sasl_exchange x = {0};
    const char *cond = NULL;
    assert_int_equal(run(*state, &tls_policy, "SCRAM-SHA-1", "Alice", "pencil", &x, &cond), SASL_SUCCESS);
    assert_string_equal(x.user, "alice");
    sasl_exchange_clear(&x);
}

static void test_scram_wrong_password(void **state)
{
    sasl_exchange x = {0};
    const char *cond = NULL;
    assert_int_equal(run(*state, &tls_policy, "SCRAM-SHA-256", "alice", "pen", &x, &cond), SASL_FAILURE);
    assert_string_equal(cond, "not-authorized");
    assert_null(x.user);
    sasl_exchange_clear(&x);
}

static void test_scram_unknown_user_fails_like_wrong_password(void **state)
{
    sasl_exchange x = {0};
    const char *cond = NULL;
    assert_int_equal(run(*state, &tls_policy, "SCRAM-SHA-256", "mallory", "pencil", &x, &cond), SASL_FAILURE);
    assert_string_equal(cond, "not-authorized");
    sasl_exchange_clear(&x);
}

static void test_plain_over_tls(void **state)
{
    sasl_exchange x = {0};
    const char *cond = NULL;
    assert_int_equal(run(*state, &tls_policy, "PLAIN", "alice", "pencil", &x, &cond), SASL_SUCCESS);
    assert_string_equal(x.user, "alice");
    sasl_exchange_clear(&x);
    memset(&x, 0, sizeof x);
    assert_int_equal(run(*state, &tls_policy, "PLAIN", "alice", "wrong", &x, &cond), SASL_FAILURE);
    assert_string_equal(cond, "not-authorized");
    sasl_exchange_clear(&x);
}

static void test_plain_refused_without_tls(void **state)
{
    fixture *f = *state;
    sasl_exchange x = {0};
    const char *cond = NULL;
    char *out = NULL;
    /* "\0alice\0pencil" in base64 */
    assert_int_equal(sasl_start(&x, f->server_ctx, f->sf.s, &plain_text_policy, "PLAIN", "AGFsaWNlAHBlbmNpbA==", &out,
                                &cond),
                     SASL_FAILURE);
    assert_string_equal(cond, "encryption-required");
    assert_null(out);
    sasl_exchange_clear(&x);
}

static void test_mechanism_lists(void **state)
{
    const char *names[4];
    size_t n = sasl_mechanisms(&tls_policy, names, 4);
    assert_int_equal(n, 3);
    assert_string_equal(names[0], "SCRAM-SHA-256");
    assert_string_equal(names[1], "SCRAM-SHA-1");
    assert_string_equal(names[2], "PLAIN");
    n = sasl_mechanisms(&plain_text_policy, names, 4);
    assert_int_equal(n, 2); /* no PLAIN in the clear */
    sasl_policy required = {false, false, true, true};
    assert_int_equal(sasl_mechanisms(&required, names, 4), 0); /* TLS first */
    n = sasl_mechanisms(&guest_policy, names, 4);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "ANONYMOUS");
    sasl_policy no_plain = {true, false, false, true};
    assert_int_equal(sasl_mechanisms(&no_plain, names, 4), 2);
}

static void test_anonymous_only_on_guest_host(void **state)
{
    sasl_exchange x = {0};
    const char *cond = NULL;
    assert_int_equal(run(*state, &guest_policy, "ANONYMOUS", NULL, NULL, &x, &cond), SASL_SUCCESS);
    assert_true(x.is_guest);
    assert_non_null(x.user);
    assert_true(strlen(x.user) >= 8);
    char first[32];
    snprintf(first, sizeof first, "%s", x.user);
    sasl_exchange_clear(&x);
    memset(&x, 0, sizeof x);
    assert_int_equal(run(*state, &guest_policy, "ANONYMOUS", NULL, NULL, &x, &cond), SASL_SUCCESS);
    assert_string_not_equal(first, x.user); /* each guest gets a fresh name */
    sasl_exchange_clear(&x);

    fixture *f = *state;
    memset(&x, 0, sizeof x);
    char *out = NULL;
    assert_int_equal(sasl_start(&x, f->server_ctx, f->sf.s, &tls_policy, "ANONYMOUS", "dHJhY2U=", &out, &cond),
                     SASL_FAILURE);
    assert_string_equal(cond, "invalid-mechanism");
    sasl_exchange_clear(&x);
}

/* RFC 4505: the ANONYMOUS message is optional.  An absent initial response
 * (a bare <auth/>), an empty one ("=") and an empty response after a
 * challenge all log a guest in. */
static void test_anonymous_empty_message(void **state)
{
    fixture *f = *state;
    const char *inputs[] = {NULL, "=", ""};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        sasl_exchange x = {0};
        const char *cond = NULL;
        char *out = NULL;
        assert_int_equal(sasl_start(&x, f->server_ctx, f->sf.s, &guest_policy, "ANONYMOUS", inputs[i], &out, &cond),
                         SASL_SUCCESS);
        assert_true(x.is_guest);
        assert_non_null(x.user);
        free(out);
        sasl_exchange_clear(&x);
    }
}

static void test_guest_host_refuses_scram(void **state)
{
    fixture *f = *state;
    sasl_exchange x = {0};
    const char *cond = NULL;
    char *out = NULL;
    assert_int_equal(sasl_start(&x, f->server_ctx, f->sf.s, &guest_policy, "SCRAM-SHA-256", "biwsbj1hbGljZSxyPWFiYw==",
                                &out, &cond),
                     SASL_FAILURE);
    assert_string_equal(cond, "invalid-mechanism");
    sasl_exchange_clear(&x);
}

static void test_malformed_scram_message(void **state)
{
    fixture *f = *state;
    sasl_exchange x = {0};
    const char *cond = NULL;
    char *out = NULL;
    sasl_status st = sasl_start(&x, f->server_ctx, f->sf.s, &tls_policy, "SCRAM-SHA-256", "bm90IHNjcmFt", &out, &cond);
    assert_int_equal(st, SASL_FAILURE);
    assert_null(out);
    sasl_exchange_clear(&x);
    memset(&x, 0, sizeof x);
    st = sasl_start(&x, f->server_ctx, f->sf.s, &tls_policy, "SCRAM-SHA-256", "!!!not base64", &out, &cond);
    assert_int_equal(st, SASL_FAILURE);
    sasl_exchange_clear(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scram_sha256_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scram_sha1_ok_case_folded_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scram_wrong_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scram_unknown_user_fails_like_wrong_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_over_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_refused_without_tls, setup, teardown),
        cmocka_unit_test(test_mechanism_lists),
        cmocka_unit_test_setup_teardown(test_anonymous_only_on_guest_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anonymous_empty_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guest_host_refuses_scram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_scram_message, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
