/* test_jid.c - unit tests of core/jid.c: splitting, preparation, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jid.h"

/* Parses s and checks its normalised parts (NULL = absent). */
static void check_parse(const char *s, const char *node, const char *domain, const char *resource)
{
    jid j = {0};
    assert_int_equal(jid_parse(s, &j), 0);
    if (node)
        assert_string_equal(j.node, node);
    else
        assert_null(j.node);
    assert_string_equal(j.domain, domain);
    if (resource)
        assert_string_equal(j.resource, resource);
    else
        assert_null(j.resource);
    jid_clear(&j);
}

static void check_bad(const char *s)
{
    jid j = {0};
    assert_int_equal(jid_parse(s, &j), -1);
    assert_null(j.node);
    assert_null(j.domain);
    assert_null(j.resource);
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void test_valid_forms(void **state)
{
    check_parse("example.com", NULL, "example.com", NULL);
    check_parse("alice@example.com", "alice", "example.com", NULL);
    check_parse("alice@example.com/phone", "alice", "example.com", "phone");
    check_parse("example.com/res", NULL, "example.com", "res");
    check_parse("localhost", NULL, "localhost", NULL);
    check_parse("a@[::1]", "a", "[::1]", NULL);
    check_parse("a@127.0.0.1/x", "a", "127.0.0.1", "x");
    check_parse("a@_xmpp.example", "a", "_xmpp.example", NULL);
}

static void test_separators(void **state)
{
    /* The resource starts at the first '/', '@' and '/' are plain there. */
    check_parse("a@b/c@d/e", "a", "b", "c@d/e");
    check_parse("b/c@d", NULL, "b", "c@d");
    check_parse("a@b/ with space ", "a", "b", " with space ");
    /* '@' after the first '/' does not split a node. */
    check_parse("b/@", NULL, "b", "@");
    /* Two '@' before the domain: the domain holds an '@' -> malformed. */
    check_bad("a@b@c");
}

static void test_case_folding(void **state)
{
    check_parse("Alice@Example.COM/Phone", "alice", "example.com", "Phone");
    check_parse("Stra\xc3\x9f" "e@x.org/R", "strasse", "x.org", "R");
    char *n = jid_normalize("User@LocalHost/r");
    assert_string_equal(n, "user@localhost/r");
    free(n);
    /* Resource case and inner spaces are kept. */
    check_parse("a@b/MiXeD Case", "a", "b", "MiXeD Case");
}

static void test_unicode(void **state)
{
    /* Full-width "AB" folds to ascii "ab" under Nameprep (NFKC + case fold). */
    check_parse("x@\xef\xbc\xa1\xef\xbc\xa2.example", "x", "ab.example", NULL);
    /* A non-ASCII domain stays in Unicode, lower-cased. */
    check_parse("x@\xc3\x91" "and\xc3\xba.example", "x", "\xc3\xb1" "and\xc3\xba.example", NULL);
    /* Soft hyphen maps to nothing. */
    check_parse("a\xc2\xad" "b@x", "ab", "x", NULL);
    char *d = jid_nameprep("B\xc3\x9c" "CHER.Example.");
    assert_string_equal(d, "b\xc3\xbc" "cher.example");
    free(d);
}

static void test_trailing_dot(void **state)
{
    check_parse("a@example.com.", "a", "example.com", NULL);
    check_parse("example.com./r", NULL, "example.com", "r");
    check_bad("a@example.com..");
    check_bad("a@.");
    check_bad(".");
}

static void test_empty_parts(void **state)
{
    check_bad("");
    check_bad("@example.com");
    check_bad("a@");
    check_bad("a@/r");
    check_bad("example.com/");
    check_bad("a@example.com/");
    check_bad("/r");
    check_bad("a@a..b");
    check_bad(".a");
}

static void test_prohibited(void **state)
{
    check_bad("a b@example.com");     /* space in node */
    check_bad("a\"b@example.com");    /* quote in node */
    check_bad("a:b@example.com");
    check_bad("a<b@example.com");
    check_bad("a@exa mple.com");      /* space in domain */
    check_bad("a@exa<mple.com");
    check_bad("a@example.com/\x01");  /* control char in resource */
    check_bad("\xff\xfe@example.com"); /* not UTF-8 */
    check_bad("a@example.com/\xc3\x28");
    check_bad("a@[::g]");
    check_bad(NULL);
}

static void test_lengths(void **state)
{
    char *ok = repeat('n', 1023), *big = repeat('n', 1024);
    char buf[3000];

    snprintf(buf, sizeof buf, "%s@example.com", ok);
    jid j = {0};
    assert_int_equal(jid_parse(buf, &j), 0);
    assert_int_equal(strlen(j.node), 1023);
    jid_clear(&j);
    snprintf(buf, sizeof buf, "%s@example.com", big);
    check_bad(buf);

    snprintf(buf, sizeof buf, "a@example.com/%s", ok);
    assert_int_equal(jid_parse(buf, &j), 0);
    jid_clear(&j);
    snprintf(buf, sizeof buf, "a@example.com/%s", big);
    check_bad(buf);

    char *dom = repeat('d', 1023);
    assert_int_equal(jid_parse(dom, &j), 0);
    jid_clear(&j);
    check_bad(big);

    /* Preparation may grow a part over the limit: 600 x "ß" (2 bytes) folds
     * to "ss", 1200 bytes. */
    char sz[1300] = "";
    for (int i = 0; i < 600; i++)
        strcat(sz, "\xc3\x9f");
    snprintf(buf, sizeof buf, "%s@x", sz);
    check_bad(buf);
    /* ... and shrink under it: 1100 soft hyphens and an "a" make "a". */
    char *soft = malloc(2 * 1100 + 8);
    soft[0] = '\0';
    for (int i = 0; i < 1100; i++)
        strcat(soft, "\xc2\xad");
    strcat(soft, "a@x");
    check_parse(soft, "a", "x", NULL);

    free(soft);
    free(dom);
    free(ok);
    free(big);
}

static void test_parts_and_format(void **state)
{
    jid a = {0}, b = {0}, c = {0};
    assert_int_equal(jid_from_parts(&a, "Alice", "Example.com", "Res"), 0);
    char *full = jid_full(&a), *bare = jid_bare(&a);
    assert_string_equal(full, "alice@example.com/Res");
    assert_string_equal(bare, "alice@example.com");
    free(full);
    free(bare);

    assert_int_equal(jid_parse("alice@EXAMPLE.com/other", &b), 0);
    assert_true(jid_bare_equal(&a, &b));
    assert_false(jid_full_equal(&a, &b));
    assert_int_equal(jid_copy(&c, &a), 0);
    assert_true(jid_full_equal(&a, &c));
    jid_clear(&c);
    jid_clear(&c); /* safe twice */

    assert_int_equal(jid_from_parts(&c, NULL, "example.com", NULL), 0);
    assert_false(jid_bare_equal(&a, &c));
    bare = jid_bare(&c);
    assert_string_equal(bare, "example.com");
    free(bare);
    full = jid_full(&c);
    assert_string_equal(full, "example.com");
    free(full);
    jid_clear(&c);

    assert_int_equal(jid_from_parts(&c, "a b", "example.com", NULL), -1);
    assert_null(c.domain);
    assert_int_equal(jid_from_parts(&c, "a", NULL, NULL), -1);
    assert_int_equal(jid_from_parts(&c, "", "example.com", NULL), -1);
    assert_int_equal(jid_from_parts(&c, "a", "example.com", ""), -1);

    assert_null(jid_normalize("a@"));
    char *p = jid_nodeprep("ALICE");
    assert_string_equal(p, "alice");
    free(p);
    assert_null(jid_nodeprep("a@b"));
    assert_null(jid_nodeprep(""));
    p = jid_resourceprep("Phone");
    assert_string_equal(p, "Phone");
    free(p);

    jid_clear(&a);
    jid_clear(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_forms),   cmocka_unit_test(test_separators),
        cmocka_unit_test(test_case_folding),  cmocka_unit_test(test_unicode),
        cmocka_unit_test(test_trailing_dot),  cmocka_unit_test(test_empty_parts),
        cmocka_unit_test(test_prohibited),    cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_parts_and_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
