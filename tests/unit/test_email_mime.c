/* test_email_mime.c - unit tests of plugins/email_notice/mime.c: addresses,
 * cleaning text, RFC 2047 headers (decoded back, never split inside a
 * character, never a bare line break), quoted-printable bodies (decoded
 * back, no line over 76), dates, whole messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "mime.h"

/* ---- decoders for the checks ---- */

static int b64v(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Appends the base64 text s[0..n) decoded to out. */
static void b64dec(const char *s, size_t n, mbuf *out)
{
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        int v = b64v(s[i]);
        assert_true(v >= 0);
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            char c = (char)(acc >> bits);
            mbuf_add(out, &c, 1);
        }
    }
}

static bool valid_utf8(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (!len || i + len > n)
            return false;
        for (size_t k = 1; k < len; k++)
            if (((unsigned char)s[i + k] & 0xc0) != 0x80)
                return false;
        i += len;
    }
    return true;
}

/* The value of one header line block "Name: ...\r\n( ...\r\n)*": checks
 * the line lengths and that every line break is a fold, then decodes
 * plain text and encoded words (each on its own valid UTF-8). */
static char *header_value(const char *h, const char *name)
{
    size_t nl = strlen(name);
    assert_memory_equal(h, name, nl);
    assert_int_equal(h[nl], ':');
    const char *p = h + nl + 1;
    const char *end = h + strlen(h);
    assert_true(end - h >= 2 && end[-2] == '\r' && end[-1] == '\n');
    for (const char *q = h, *ln = h; q < end; q++) {
        if (*q == '\n') {
            assert_true(q > h && q[-1] == '\r');
            assert_true(q - ln - 1 <= 78);
            assert_true(q + 1 == end || q[1] == ' '); /* a fold, never a new header */
            ln = q + 1;
        } else if (*q == '\r') {
            assert_true(q[1] == '\n');
        }
    }
    mbuf out = {0};
    if (!strstr(p, "=?UTF-8?B?")) {
        /* plain: the text after "Name: " as it is (one line) */
        assert_int_equal(*p, ' ');
        mbuf_add(&out, p + 1, (size_t)(end - 2 - (p + 1)));
        assert_null(memchr(out.data ? out.data : "", '\r', out.len));
        mbuf_add(&out, "", 0);
        return out.data;
    }
    /* encoded words only, separated by folding white space */
    while (p < end - 2) {
        if (*p == '\r' || *p == '\n' || *p == ' ') {
            p++;
            continue;
        }
        assert_memory_equal(p, "=?UTF-8?B?", 10);
        {
            const char *z = strstr(p + 10, "?=");
            assert_non_null(z);
            assert_true(z + 2 - p <= 75);
            mbuf word = {0};
            b64dec(p + 10, (size_t)(z - p - 10), &word);
            assert_true(valid_utf8(word.data ? word.data : "", word.len));
            mbuf_add(&out, word.data ? word.data : "", word.len);
            mbuf_free(&word);
            p = z + 2;
        }
    }
    mbuf_add(&out, "", 0);
    return out.data ? out.data : calloc(1, 1);
}

static int hexv(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes quoted-printable (checking the line limit and the characters). */
static char *qp_decode(const char *s)
{
    mbuf out = {0};
    const char *ln = s;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\r') {
            assert_int_equal(p[1], '\n');
            assert_true(p - ln <= 76);
            assert_true(p == ln || (p[-1] != ' ' && p[-1] != '\t')); /* no white space at a line's end */
            mbuf_add(&out, "\n", 1);
            p++;
            ln = p + 1;
        } else if (c == '=') {
            if (p[1] == '\r' && p[2] == '\n') {
                assert_true(p + 1 - ln <= 76);
                p += 2;
                ln = p + 1;
                continue;
            }
            int a = hexv(p[1]), b = a >= 0 ? hexv(p[2]) : -1;
            assert_true(a >= 0 && b >= 0);
            char v = (char)(a * 16 + b);
            mbuf_add(&out, &v, 1);
            p += 2;
        } else {
            assert_true((c >= 33 && c <= 126) || c == ' ' || c == '\t');
            mbuf_add(&out, p, 1);
        }
    }
    mbuf_add(&out, "", 0);
    return out.data;
}

/* ---- tests ---- */

static void test_addresses(void **state)
{
    (void)state;
    const char *good[] = {"a@example.com", "first.last+tag@sub.example.org", "x_y-z@localhost", "o'neil@ex.com"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(mime_address_ok(good[i]));
    const char *bad[] = {"", "plain", "@example.com", "a@", "a@b@c", "a b@example.com", "a@example.com\r\nRCPT TO:<x@y>",
                         "a@exa\nmple.com", "<a@example.com>", "a,b@example.com", "a@example..com", "a@.example.com",
                         "a@example.com.", "\"q\"@example.com", "caf\xc3\xa9@example.com", "a@ex_ample.com",
                         "a;b@example.com", "a@[127.0.0.1]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(mime_address_ok(bad[i]));
    char longa[300];
    memset(longa, 'a', sizeof longa);
    strcpy(longa + 250, "@x.com");
    assert_false(mime_address_ok(longa));
    assert_false(mime_address_ok(NULL));

    assert_true(mime_filename_ok("transcript-2031-01-15.txt"));
    assert_false(mime_filename_ok(".hidden"));
    assert_false(mime_filename_ok("../etc/passwd"));
    assert_false(mime_filename_ok("a b.txt"));
    assert_false(mime_filename_ok("a\"b.txt"));
    assert_false(mime_filename_ok(""));
}

static void test_clean(void **state)
{
    (void)state;
    char *c = mime_clean("a\r\nb\rc\nd\te\x01" "f\x7fg", false);
    assert_string_equal(c, "a  b c d e f g");
    free(c);
    c = mime_clean("a\r\nb\rc\nd\te", true);
    assert_string_equal(c, "a\nb\nc\nd\te");
    free(c);
    /* invalid UTF-8, an overlong form, a surrogate, C1 NEL, the line and paragraph separators */
    c = mime_clean("x\xff" "y\xc0\xaf" "z\xed\xa0\x80" "w\xc2\x85" "v\xe2\x80\xa8" "u\xe2\x80\xa9" "t", false);
    assert_string_equal(c, "x\xef\xbf\xbdy\xef\xbf\xbd\xef\xbf\xbdz\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdw v u t");
    free(c);
    c = mime_clean("\xe6\x9d\xb1\xe4\xba\xac caf\xc3\xa9 \xf0\x9f\x8e\xa5", false);
    assert_string_equal(c, "\xe6\x9d\xb1\xe4\xba\xac caf\xc3\xa9 \xf0\x9f\x8e\xa5");
    free(c);
}

static char *one_header(const char *name, const char *value)
{
    mbuf b = {0};
    mime_header_text(&b, name, value);
    assert_false(b.failed);
    return b.data;
}

static void test_header_text(void **state)
{
    (void)state;
    char *h = one_header("Subject", "Evening talk");
    assert_string_equal(h, "Subject: Evening talk\r\n");
    free(h);

    /* injection attempts: line breaks become spaces, nothing starts a new line */
    const char *attacks[] = {
        "Hi\r\nBcc: evil@example.com",
        "Hi\nBcc: evil@example.com\n\nbody",
        "Hi\rBcc: evil@example.com",
        "Hi\xe2\x80\xa8" "Bcc: evil@example.com",
        "=?UTF-8?B?DQpCY2M6IGV2aWxAZXhhbXBsZS5jb20=?=",
        "Caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac\r\nBcc: evil@example.com",
    };
    const char *want[] = {
        "Hi  Bcc: evil@example.com",
        "Hi Bcc: evil@example.com  body",
        "Hi Bcc: evil@example.com",
        "Hi Bcc: evil@example.com",
        "=?UTF-8?B?DQpCY2M6IGV2aWxAZXhhbXBsZS5jb20=?=",
        "Caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac  Bcc: evil@example.com",
    };
    for (size_t i = 0; i < sizeof attacks / sizeof *attacks; i++) {
        h = one_header("Subject", attacks[i]);
        char *v = header_value(h, "Subject");
        assert_string_equal(v, want[i]);
        free(v);
        free(h);
    }
    /* an "=?" in plain text is encoded so that no reader decodes it */
    h = one_header("Subject", "=?UTF-8?B?SGk=?=");
    assert_non_null(strstr(h, "=?UTF-8?B?PT9VVEYtOD9CP1NHaz0/PQ==?="));
    free(h);

    /* long text of multi-byte characters: folded, no word splits a character */
    mbuf long_text = {0};
    for (int i = 0; i < 100; i++)
        mbuf_str(&long_text, i % 3 ? "\xe6\x9d\xb1" : "a\xf0\x9f\x8e\xa5");
    h = one_header("X-Onair-Reservation-Title", long_text.data);
    char *v = header_value(h, "X-Onair-Reservation-Title");
    assert_string_equal(v, long_text.data);
    free(v);
    free(h);
    mbuf_free(&long_text);

    /* long ASCII: encoded and folded too */
    char ascii[301];
    memset(ascii, 'x', 300);
    ascii[300] = '\0';
    h = one_header("Subject", ascii);
    v = header_value(h, "Subject");
    assert_string_equal(v, ascii);
    free(v);
    free(h);
}

static void test_header_address(void **state)
{
    (void)state;
    mbuf b = {0};
    mime_header_address(&b, "From", "onair \"live\" \\ server", "noreply@example.com");
    assert_string_equal(b.data, "From: \"onair \\\"live\\\" \\\\ server\" <noreply@example.com>\r\n");
    mbuf_free(&b);
    mime_header_address(&b, "To", NULL, "a@example.com");
    assert_string_equal(b.data, "To: <a@example.com>\r\n");
    mbuf_free(&b);
    mime_header_address(&b, "From", "\xe6\x9d\xb1\xe4\xba\xac\r\nBcc: x@y.com", "noreply@example.com");
    assert_non_null(strstr(b.data, "=?UTF-8?B?"));
    assert_null(strstr(b.data, "\r\nBcc"));
    assert_non_null(strstr(b.data, "<noreply@example.com>\r\n"));
    mbuf_free(&b);
}

static void check_qp(const char *in, const char *decoded_want)
{
    mbuf b = {0};
    mime_qp(&b, in);
    assert_false(b.failed);
    char *d = qp_decode(b.data ? b.data : "");
    assert_string_equal(d, decoded_want);
    free(d);
    mbuf_free(&b);
}

static void test_qp(void **state)
{
    (void)state;
    check_qp("plain text\nsecond line\n", "plain text\nsecond line\n");
    check_qp("no final newline", "no final newline\n");
    check_qp("a = b\r\nc\rd", "a = b\nc\nd\n");
    check_qp("trailing  \nand\ttab\t\n", "trailing  \nand\ttab\t\n");
    check_qp(".\n..\nFrom me\nFrom\n", ".\n..\nFrom me\nFrom\n");
    check_qp("caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac\n", "caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac\n");
    check_qp("bell\x07 here\n", "bell  here\n");

    /* a leading dot and "From " never stand at a line's start on the wire */
    mbuf b = {0};
    mime_qp(&b, ".\nFrom me\n");
    assert_string_equal(b.data, "=2E\r\n=46rom me\r\n");
    mbuf_free(&b);

    /* very long lines: soft breaks; the decoded text is the same */
    mbuf big = {0};
    for (int i = 0; i < 3000; i++)
        mbuf_str(&big, i % 7 ? "x" : i % 2 ? "=" : "\xc3\xa9");
    mbuf_str(&big, "\n");
    check_qp(big.data, big.data);
    mbuf_free(&big);
    check_qp("", "");
}

static void test_date(void **state)
{
    (void)state;
    char d[40];
    setenv("TZ", "UTC", 1);
    tzset();
    mime_date(0, d);
    assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 +0000");
    mime_date(1926244800, d); /* 2031-01-15T12:00:00Z */
    assert_string_equal(d, "Wed, 15 Jan 2031 12:00:00 +0000");
    setenv("TZ", "Asia/Tokyo", 1);
    tzset();
    mime_date(1926244800, d);
    assert_string_equal(d, "Wed, 15 Jan 2031 21:00:00 +0900");
    setenv("TZ", "America/St_Johns", 1);
    tzset();
    mime_date(1926244800, d);
    assert_string_equal(d, "Wed, 15 Jan 2031 08:30:00 -0330");
    setenv("TZ", "UTC", 1);
    tzset();
}

static void test_build(void **state)
{
    (void)state;
    mime_mail m = {
        .from_name = "onair",
        .from_addr = "noreply@example.com",
        .to_addr = "friend@example.org",
        .subject = "Invitation: Caf\xc3\xa9",
        .body = "Line one\n.\nPassword: view-secret\n",
        .message_id = "onair.7.1926345600@example.com",
        .reservation_id = "abcdefghijklmnopqrstuvwxyz",
        .date = 0,
    };
    size_t len = 0;
    char *msg = mime_build(&m, &len);
    assert_non_null(msg);
    assert_int_equal(len, strlen(msg));
    const char *head_end = strstr(msg, "\r\n\r\n");
    assert_non_null(head_end);
    assert_non_null(strstr(msg, "From: \"onair\" <noreply@example.com>\r\n"));
    assert_non_null(strstr(msg, "To: <friend@example.org>\r\n"));
    assert_non_null(strstr(msg, "Subject: =?UTF-8?B?"));
    assert_non_null(strstr(msg, "Message-ID: <onair.7.1926345600@example.com>\r\n"));
    assert_non_null(strstr(msg, "MIME-Version: 1.0\r\n"));
    assert_non_null(strstr(msg, "X-Onair-Reservation: abcdefghijklmnopqrstuvwxyz\r\n"));
    assert_non_null(strstr(msg, "Content-Type: text/plain; charset=UTF-8\r\n"));
    char *body = qp_decode(head_end + 4);
    assert_string_equal(body, "Line one\n.\nPassword: view-secret\n");
    free(body);
    for (const char *p = msg; *p; p++)
        assert_true((unsigned char)*p < 0x80 && (*p != '\n' || p[-1] == '\r'));
    free(msg);

    /* with an attachment: multipart/mixed, the boundary in no part */
    m.attachment_name = "transcript.txt";
    m.attachment = "who: --=_onair_onair71926345600\nwho: bye\n";
    msg = mime_build(&m, &len);
    assert_non_null(msg);
    assert_non_null(strstr(msg, "Content-Type: multipart/mixed; boundary=\"=_onair_onair71926345600\"\r\n"));
    assert_non_null(strstr(msg, "Content-Disposition: attachment; filename=\"transcript.txt\"\r\n"));
    size_t delimiters = 0;
    for (const char *p = msg; (p = strstr(p, "\r\n--=_onair_onair71926345600")) != NULL; p++)
        delimiters++;
    assert_int_equal(delimiters, 3); /* two parts and the close */
    assert_non_null(strstr(msg, "\r\n--=_onair_onair71926345600--\r\n"));
    free(msg);

    /* refused: bad addresses, a bad message ID, a bad file name */
    m.attachment_name = "../x";
    assert_null(mime_build(&m, &len));
    m.attachment_name = NULL;
    m.to_addr = "friend@example.org>\r\nRCPT TO:<evil@example.com";
    assert_null(mime_build(&m, &len));
    m.to_addr = "friend@example.org";
    m.from_addr = "bad from@example.com";
    assert_null(mime_build(&m, &len));
    m.from_addr = "noreply@example.com";
    m.message_id = "no at sign";
    assert_null(mime_build(&m, &len));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addresses), cmocka_unit_test(test_clean), cmocka_unit_test(test_header_text),
        cmocka_unit_test(test_header_address), cmocka_unit_test(test_qp), cmocka_unit_test(test_date),
        cmocka_unit_test(test_build),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
