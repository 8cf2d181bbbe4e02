/* test_xml.c - unit tests for core/xml.c: tree API, serializer, and the
 * streaming parser (namespaces, limits, restricted XML, reset/stop, release
 * between stanzas). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xml.h"

#define HEADER                                                                            \
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'" \
    " to='localhost' version='1.0'>"

/* ---- a recording set of callbacks ---- */

typedef struct rec {
    xml_parser *p;
    xml_buf log;         /* one line per event */
    char *default_ns;    /* from the last stream_open */
    int opens, stanzas, closes;
    const char *reset_on; /* stanza name that triggers xml_parser_reset */
    const char *stop_on;  /* stanza name that triggers xml_parser_stop */
    xml_node *keep;       /* last stanza, if keep_last */
    bool keep_last;
    bool release_in_cb;   /* try xml_parser_release in every callback */
    int cb_releases;      /* how many of those succeeded (must be none) */
} rec;

/* Tries a release from inside a callback, where it must be refused. */
static void rec_try_release(rec *r)
{
    if (r->release_in_cb && xml_parser_release(r->p))
        r->cb_releases++;
}

static void rec_open(void *ud, const char **attrs, const char *default_ns)
{
    rec *r = ud;
    r->opens++;
    free(r->default_ns);
    r->default_ns = strdup(default_ns);
    xml_buf_append_str(&r->log, "open ns=");
    xml_buf_append_str(&r->log, default_ns);
    for (size_t i = 0; attrs[i]; i += 2) {
        xml_buf_append_str(&r->log, " ");
        xml_buf_append_str(&r->log, attrs[i]);
        xml_buf_append_str(&r->log, "=");
        xml_buf_append_str(&r->log, attrs[i + 1]);
    }
    xml_buf_append_str(&r->log, "\n");
    rec_try_release(r);
}

static void rec_stanza(void *ud, xml_node *st)
{
    rec *r = ud;
    rec_try_release(r);
    r->stanzas++;
    xml_serialize(st, r->default_ns ? r->default_ns : "", &r->log);
    xml_buf_append_str(&r->log, "\n");
    bool reset = r->reset_on && strcmp(st->name, r->reset_on) == 0;
    bool stop = r->stop_on && strcmp(st->name, r->stop_on) == 0;
    if (r->keep_last) {
        xml_node_free(r->keep);
        r->keep = st;
    } else {
        xml_node_free(st);
    }
    if (reset)
        xml_parser_reset(r->p);
    if (stop)
        xml_parser_stop(r->p);
}

static void rec_close(void *ud)
{
    rec *r = ud;
    rec_try_release(r);
    r->closes++;
    xml_buf_append_str(&r->log, "close\n");
}

static const xml_parser_callbacks rec_cb = {rec_open, rec_stanza, rec_close};

static void rec_init(rec *r, size_t max_bytes, unsigned max_depth, unsigned max_attrs)
{
    memset(r, 0, sizeof *r);
    xml_limits lim = {max_bytes, max_depth, max_attrs};
    r->p = xml_parser_new(&lim, &rec_cb, r);
    assert_non_null(r->p);
}

static void rec_init_default(rec *r)
{
    rec_init(r, 65536, 32, 32);
}

static void rec_fini(rec *r)
{
    xml_parser_free(r->p);
    xml_buf_free(&r->log);
    free(r->default_ns);
    xml_node_free(r->keep);
}

static const char *rec_log(rec *r)
{
    return r->log.data ? r->log.data : "";
}

static xml_error feed_str(rec *r, const char *s)
{
    return xml_parser_feed(r->p, s, strlen(s));
}

static xml_error feed_bytewise(rec *r, const char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len; i++) {
        xml_error e = xml_parser_feed(r->p, s + i, 1);
        if (e != XML_OK)
            return e;
    }
    return XML_OK;
}

/* Parses one stream with default limits; returns the error. */
static xml_error parse_once(const char *s)
{
    rec r;
    rec_init_default(&r);
    xml_error e = feed_str(&r, s);
    rec_fini(&r);
    return e;
}

/* ---- parser: basics ---- */

static const char *const STREAM_DOC =
    "<?xml version='1.0'?>" HEADER
    "<message to='a@b' type='chat' xml:lang='en'><body>hi &amp; &lt;bye&gt; \xc3\xa9</body>"
    "<x xmlns='jabber:x:data'><field var='a'/></x></message>\n"
    "  <presence/> \n"
    "<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>"
    "</stream:stream>";

static const char *const STREAM_LOG =
    "open ns=jabber:client to=localhost version=1.0\n"
    "<message to=\"a@b\" type=\"chat\" xml:lang=\"en\"><body>hi &amp; &lt;bye&gt; \xc3\xa9</body>"
    "<x xmlns=\"jabber:x:data\"><field var=\"a\"/></x></message>\n"
    "<presence/>\n"
    "<iq type=\"get\" id=\"1\"><query xmlns=\"jabber:iq:roster\"/></iq>\n"
    "close\n";

static void test_stream_whole(void **state)
{
    rec r;
    rec_init_default(&r);
    assert_int_equal(feed_str(&r, STREAM_DOC), XML_OK);
    assert_string_equal(rec_log(&r), STREAM_LOG);
    assert_int_equal(r.opens, 1);
    assert_int_equal(r.stanzas, 3);
    assert_int_equal(r.closes, 1);
    rec_fini(&r);
}

static void test_stream_bytewise(void **state)
{
    rec r;
    rec_init_default(&r);
    assert_int_equal(feed_bytewise(&r, STREAM_DOC), XML_OK);
    assert_string_equal(rec_log(&r), STREAM_LOG);
    rec_fini(&r);
}

static void test_stream_split_everywhere(void **state)
{
    size_t len = strlen(STREAM_DOC);
    for (size_t cut = 0; cut <= len; cut++) {
        rec r;
        rec_init_default(&r);
        assert_int_equal(xml_parser_feed(r.p, STREAM_DOC, cut), XML_OK);
        assert_int_equal(xml_parser_feed(r.p, STREAM_DOC + cut, len - cut), XML_OK);
        assert_string_equal(rec_log(&r), STREAM_LOG);
        rec_fini(&r);
    }
}

static void test_text_single_node_bytewise(void **state)
{
    rec r;
    rec_init_default(&r);
    r.keep_last = true;
    assert_int_equal(feed_bytewise(&r, HEADER "<message><body>a&amp;b\nc<![CDATA[<d>]]>e</body></message>"),
                     XML_OK);
    assert_non_null(r.keep);
    xml_node *body = xml_node_child(r.keep, "body", XML_NS_CLIENT);
    assert_non_null(body);
    /* all pieces of text merged into one node */
    assert_non_null(body->children);
    assert_ptr_equal(body->children, body->last);
    assert_int_equal(body->children->type, XML_TEXT);
    assert_string_equal(body->children->text, "a&b\nc<d>e");
    assert_int_equal(body->children->text_len, 9);
    rec_fini(&r);
}

static void test_header_attrs_and_default_ns(void **state)
{
    rec r;
    rec_init_default(&r);
    assert_int_equal(
        feed_str(&r, "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
                     "xmlns='jabber:server' from='a.example' to='b.example' version='1.0' "
                     "xml:lang='fr' id='x1'>"),
        XML_OK);
    assert_string_equal(rec_log(&r),
                        "open ns=jabber:server from=a.example to=b.example version=1.0 "
                        "xml:lang=fr id=x1\n");
    rec_fini(&r);

    rec_init_default(&r);
    assert_int_equal(feed_str(&r, "<stream xmlns='http://etherx.jabber.org/streams'>"), XML_OK);
    assert_string_equal(rec_log(&r), "open ns=http://etherx.jabber.org/streams\n");
    rec_fini(&r);

    rec_init_default(&r);
    assert_int_equal(feed_str(&r, "<s:stream xmlns:s='http://etherx.jabber.org/streams'>"), XML_OK);
    assert_string_equal(rec_log(&r), "open ns=\n");
    rec_fini(&r);
}

static void test_namespaces(void **state)
{
    rec r;
    rec_init_default(&r);
    r.keep_last = true;
    assert_int_equal(
        feed_str(&r, HEADER "<iq type='set'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                            "<resource>r</resource></bind>"
                            "<p:q xmlns:p='urn:p'><p:r/><s/></p:q><plain xmlns=''/></iq>"),
        XML_OK);
    xml_node *iq = r.keep;
    assert_non_null(iq);
    assert_string_equal(iq->ns, XML_NS_CLIENT);
    xml_node *bind = xml_node_child(iq, "bind", NULL);
    assert_non_null(bind);
    assert_string_equal(bind->ns, "urn:ietf:params:xml:ns:xmpp-bind");
    xml_node *res = xml_node_child(bind, "resource", "urn:ietf:params:xml:ns:xmpp-bind");
    assert_non_null(res);
    xml_node *q = xml_node_child(iq, "q", "urn:p");
    assert_non_null(q);
    assert_non_null(xml_node_child(q, "r", "urn:p"));
    assert_non_null(xml_node_child(q, "s", XML_NS_CLIENT));
    xml_node *plain = xml_node_child(iq, "plain", "");
    assert_non_null(plain);
    assert_string_equal(plain->ns, "");

    char *s = xml_to_string(iq, XML_NS_CLIENT);
    assert_string_equal(s, "<iq type=\"set\"><bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\">"
                           "<resource>r</resource></bind>"
                           "<q xmlns=\"urn:p\"><r/><s xmlns=\"jabber:client\"/></q>"
                           "<plain xmlns=\"\"/></iq>");
    free(s);
    /* written into a different scope, the stanza declares its namespace */
    s = xml_to_string(iq, XML_NS_SERVER);
    const char *want = "<iq xmlns=\"jabber:client\" type=\"set\">";
    assert_true(strncmp(s, want, strlen(want)) == 0);
    free(s);
    rec_fini(&r);
}

/* Serializes, then parses the result again in a jabber:client stream and
 * checks that the reparsed stanza serializes the same. */
static void assert_roundtrip(const xml_node *n, const char *expect)
{
    char *s = xml_to_string(n, XML_NS_CLIENT);
    assert_non_null(s);
    if (expect)
        assert_string_equal(s, expect);
    rec r;
    rec_init_default(&r);
    r.keep_last = true;
    assert_int_equal(feed_str(&r, HEADER), XML_OK);
    assert_int_equal(feed_str(&r, s), XML_OK);
    assert_non_null(r.keep);
    char *s2 = xml_to_string(r.keep, XML_NS_CLIENT);
    assert_string_equal(s, s2);
    free(s2);
    free(s);
    rec_fini(&r);
}

static void test_escaping_roundtrip(void **state)
{
    xml_node *m = xml_node_new("message", XML_NS_CLIENT);
    assert_non_null(m);
    assert_int_equal(xml_node_set_attr(m, "to", "a&b<c>d\"e'f"), 0);
    assert_int_equal(xml_node_set_attr(m, "ws", "t\tn\nr\r"), 0);
    xml_node *b = xml_node_add_child(m, "body", NULL);
    static const char txt[] = "x & y < z > w \"q\" 'a' ]]> \r\n";
    assert_int_equal(xml_node_add_text(b, txt, sizeof txt - 1), 0);
    assert_roundtrip(m, "<message to=\"a&amp;b&lt;c&gt;d&quot;e&apos;f\" ws=\"t&#9;n&#10;r&#13;\">"
                        "<body>x &amp; y &lt; z &gt; w \"q\" 'a' ]]&gt; &#13;\n</body></message>");

    char *e = xml_escape("<&>\"'", 5);
    assert_string_equal(e, "&lt;&amp;&gt;&quot;&apos;");
    free(e);
    e = xml_escape("", 0);
    assert_string_equal(e, "");
    free(e);

    /* reparsed values come back unescaped */
    rec r;
    rec_init_default(&r);
    r.keep_last = true;
    assert_int_equal(feed_str(&r, HEADER "<message to='&lt;&amp;&gt;&quot;&apos;&#x41;'>"
                                         "<body>&lt;&amp;&#65;&#x10348;</body></message>"),
                     XML_OK);
    assert_string_equal(xml_node_attr(r.keep, "to"), "<&>\"'A");
    char *t = xml_node_child_text(r.keep, "body", NULL);
    assert_string_equal(t, "<&A\xf0\x90\x8d\x88");
    free(t);
    rec_fini(&r);
    xml_node_free(m);
}

static void test_xml_lang_and_ns_attrs(void **state)
{
    rec r;
    rec_init_default(&r);
    r.keep_last = true;
    assert_int_equal(feed_str(&r, HEADER "<message xml:lang='de' xmlns:u='urn:u' u:a='1' b='2'>"
                                         "<body xml:lang='en'>x</body></message>"),
                     XML_OK);
    xml_node *m = r.keep;
    assert_string_equal(xml_node_attr(m, "xml:lang"), "de");
    assert_string_equal(xml_node_attr(m, "{urn:u}a"), "1");
    assert_string_equal(xml_node_attr(m, "b"), "2");
    assert_null(xml_node_attr(m, "a"));
    assert_string_equal(xml_node_attr(xml_node_child(m, "body", NULL), "xml:lang"), "en");
    assert_roundtrip(m, "<message xml:lang=\"de\" xmlns:ns1=\"urn:u\" ns1:a=\"1\" b=\"2\">"
                        "<body xml:lang=\"en\">x</body></message>");
    rec_fini(&r);

    /* an element in the XML namespace keeps the reserved prefix */
    rec_init_default(&r);
    r.keep_last = true;
    assert_int_equal(feed_str(&r, HEADER "<xml:x><y/></xml:x>"), XML_OK);
    assert_string_equal(r.keep->ns, "http://www.w3.org/XML/1998/namespace");
    assert_roundtrip(r.keep, "<xml:x><y/></xml:x>");
    rec_fini(&r);
}

static void test_whitespace_keepalives(void **state)
{
    rec r;
    rec_init(&r, 200, 4, 8);
    assert_int_equal(feed_str(&r, HEADER), XML_OK);
    /* far more whitespace than one stanza may hold, in pieces and at once */
    char ws[1000];
    memset(ws, ' ', sizeof ws);
    ws[10] = '\n';
    ws[20] = '\t';
    for (int i = 0; i < 50; i++)
        assert_int_equal(xml_parser_feed(r.p, ws, sizeof ws), XML_OK);
    assert_int_equal(feed_bytewise(&r, "   \n "), XML_OK);
    assert_int_equal(feed_str(&r, "<presence/>  "), XML_OK);
    assert_int_equal(r.stanzas, 1);
    rec_fini(&r);
}

static void test_stream_close_then_junk(void **state)
{
    rec r;
    rec_init_default(&r);
    assert_int_equal(feed_str(&r, HEADER "<presence/></stream:stream>  "), XML_OK);
    assert_int_equal(r.closes, 1);
    assert_int_equal(feed_str(&r, "<presence/>"), XML_ERR_NOT_WELL_FORMED);
    assert_int_equal(r.stanzas, 1);
    rec_fini(&r);
}

/* ---- limits ---- */

/* A stanza of exactly n bytes: <m>xxxx</m> */
static char *stanza_of(size_t n)
{
    assert_true(n >= 7);
    char *s = malloc(n + 1);
    memcpy(s, "<m>", 3);
    memset(s + 3, 'x', n - 7);
    memcpy(s + n - 4, "</m>", 5);
    return s;
}

static void check_size_limit(size_t max, size_t n, xml_error want, bool bytewise)
{
    rec r;
    rec_init(&r, max, 8, 8);
    assert_int_equal(feed_str(&r, HEADER), XML_OK);
    char *s = stanza_of(n);
    /* twice, to check the count starts afresh with each stanza */
    for (int i = 0; i < 2; i++) {
        xml_error e = bytewise ? feed_bytewise(&r, s) : feed_str(&r, s);
        assert_int_equal(e, want);
        if (e != XML_OK)
            break;
        assert_int_equal(feed_str(&r, " \n"), XML_OK);
    }
    assert_int_equal(r.stanzas, want == XML_OK ? 2 : 0);
    free(s);
    rec_fini(&r);
}

static void test_limit_stanza_bytes(void **state)
{
    size_t sizes[] = {sizeof HEADER, 1024, 1500, 5000};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t max = sizes[i];
        for (int bw = 0; bw < 2; bw++) {
            check_size_limit(max, max - 1, XML_OK, bw);
            check_size_limit(max, max, XML_OK, bw);
            check_size_limit(max, max + 1, XML_ERR_TOO_BIG, bw);
            check_size_limit(max, max * 3 + 7, XML_ERR_TOO_BIG, bw);
        }
    }
}

static void test_limit_unfinished_tag(void **state)
{
    /* a start tag that never ends, and text that never ends */
    rec r;
    rec_init(&r, 200, 8, 8);
    assert_int_equal(feed_str(&r, HEADER), XML_OK);
    assert_int_equal(feed_str(&r, "<message to='"), XML_OK);
    xml_error e = XML_OK;
    for (int i = 0; i < 300 && e == XML_OK; i++)
        e = feed_str(&r, "a");
    assert_int_equal(e, XML_ERR_TOO_BIG);
    rec_fini(&r);

    rec_init(&r, 200, 8, 8);
    assert_int_equal(feed_str(&r, HEADER "<message><body>"), XML_OK);
    e = XML_OK;
    for (int i = 0; i < 300 && e == XML_OK; i++)
        e = feed_str(&r, "a");
    assert_int_equal(e, XML_ERR_TOO_BIG);
    rec_fini(&r);

    /* a huge stream header */
    rec_init(&r, 200, 8, 8);
    char big[400];
    memset(big, 'a', sizeof big);
    assert_int_equal(feed_str(&r, "<stream:stream to='"), XML_OK);
    assert_int_equal(xml_parser_feed(r.p, big, sizeof big), XML_ERR_TOO_BIG);
    assert_int_equal(r.opens, 0);
    rec_fini(&r);
}

static void test_limit_depth(void **state)
{
    /* stanza = depth 1; with max_depth 3, <a><b><c/></b></a> passes */
    rec r;
    rec_init(&r, 4096, 3, 8);
    assert_int_equal(feed_str(&r, HEADER "<a><b><c/></b></a>"), XML_OK);
    assert_int_equal(r.stanzas, 1);
    assert_int_equal(feed_str(&r, "<a><b><c><d/></c></b></a>"), XML_ERR_TOO_DEEP);
    assert_int_equal(r.stanzas, 1);
    rec_fini(&r);

    rec_init(&r, 4096, 1, 8);
    assert_int_equal(feed_bytewise(&r, HEADER "<a/><a>t</a><a><b/></a>"), XML_ERR_TOO_DEEP);
    assert_int_equal(r.stanzas, 2);
    rec_fini(&r);
}

static void test_limit_attrs(void **state)
{
    rec r;
    rec_init(&r, 4096, 8, 6);
    assert_int_equal(feed_str(&r, HEADER), XML_OK);
    assert_int_equal(feed_str(&r, "<a x='1' y='2' z='3' w='4' v='5' u='6'/>"), XML_OK);
    assert_int_equal(feed_str(&r, "<a><b x='1' y='2' z='3' w='4' v='5' xmlns='urn:q'/></a>"), XML_OK);
    assert_int_equal(r.stanzas, 2);
    assert_int_equal(feed_str(&r, "<a><b x='1' y='2' z='3' w='4' v='5' u='6' t='7'/></a>"),
                     XML_ERR_TOO_MANY_ATTRS);
    assert_int_equal(r.stanzas, 2);
    rec_fini(&r);

    /* namespace declarations count */
    rec_init(&r, 4096, 8, 6);
    assert_int_equal(feed_str(&r, HEADER "<a xmlns:a='1' xmlns:b='2' xmlns:c='3' xmlns:d='4' "
                                         "xmlns:e='5' xmlns:f='6' xmlns:g='7'/>"),
                     XML_ERR_TOO_MANY_ATTRS);
    rec_fini(&r);

    /* and the header (2 attributes, 2 declarations) is an element like any other */
    rec_init(&r, 4096, 8, 4);
    assert_int_equal(feed_str(&r, HEADER), XML_OK);
    rec_fini(&r);
    rec_init(&r, 4096, 8, 3);
    assert_int_equal(feed_str(&r, HEADER), XML_ERR_TOO_MANY_ATTRS);
    assert_int_equal(r.opens, 0);
    rec_fini(&r);
}

/* ---- restricted XML and errors ---- */

static void test_restricted(void **state)
{
    static const char *const docs[] = {
        "<!DOCTYPE stream:stream>" HEADER,
        "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]>" HEADER,
        /* billion laughs */
        "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
        "<!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>"
        "<!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>]>"
        "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>&lol3;",
        "<?xml-stylesheet href='x'?>" HEADER,
        HEADER "<?pi data?>",
        HEADER "<message><?pi?></message>",
        "<!-- hi -->" HEADER,
        HEADER "<!-- keepalive -->",
        HEADER "<message><body>a<!-- c --></body></message>",
    };
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
        rec r;
        rec_init_default(&r);
        assert_int_equal(feed_str(&r, docs[i]), XML_ERR_RESTRICTED);
        assert_int_equal(r.stanzas, 0);
        rec_fini(&r);
        rec_init_default(&r);
        assert_int_equal(feed_bytewise(&r, docs[i]), XML_ERR_RESTRICTED);
        assert_int_equal(r.stanzas, 0);
        rec_fini(&r);
    }
}

static void test_not_well_formed(void **state)
{
    static const char *const docs[] = {
        HEADER "<message></presence>",
        HEADER "<message><body>\xff\xfe</body></message>",
        HEADER "<message><body>\xc3</body></message>",
        HEADER "<message>&nbsp;</message>",
        HEADER "<x:message/>",
        HEADER "<message a='1' a='2'/>",
        HEADER "<message>&#0;</message>",
        "garbage ",
        HEADER "</stream:stream><stream:stream>",
        "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><a xmlns='http://www.w3.org/XML/1998/namespace'/>",
    };
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
        rec r;
        rec_init_default(&r);
        assert_int_equal(feed_str(&r, docs[i]), XML_ERR_NOT_WELL_FORMED);
        assert_int_equal(r.stanzas, 0);
        rec_fini(&r);
    }
}

static void test_sticky_error(void **state)
{
    rec r;
    rec_init_default(&r);
    assert_int_equal(feed_str(&r, HEADER "<a><b></a>"), XML_ERR_NOT_WELL_FORMED);
    int opens = r.opens;
    assert_int_equal(feed_str(&r, "<presence/>"), XML_ERR_NOT_WELL_FORMED);
    assert_int_equal(feed_str(&r, HEADER), XML_ERR_NOT_WELL_FORMED);
    assert_int_equal(r.opens, opens);
    assert_int_equal(r.stanzas, 0);
    rec_fini(&r);
}

static void test_bad_namespace(void **state)
{
    static const char *const docs[] = {
        "<stream:stream xmlns:stream='urn:wrong' xmlns='jabber:client'>",
        "<stream xmlns='jabber:client'>",
        "<stream>",
        "<foo xmlns='http://etherx.jabber.org/streams'>",
        "<message xmlns='jabber:client'/>",
    };
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
        rec r;
        rec_init_default(&r);
        assert_int_equal(feed_str(&r, docs[i]), XML_ERR_BAD_NAMESPACE);
        assert_int_equal(r.opens, 0);
        rec_fini(&r);
    }
}

static void test_encoding(void **state)
{
    /* a declared encoding does not override UTF-8 */
    assert_int_equal(parse_once("<?xml version='1.0' encoding='UTF-8'?>" HEADER "<a>\xc3\xa9</a>"), XML_OK);
    assert_int_equal(parse_once("<?xml version='1.0' encoding='ISO-8859-1'?>" HEADER "<a>\xe9</a>"),
                     XML_ERR_NOT_WELL_FORMED);
    /* a UTF-8 byte order mark is fine, UTF-16 is not */
    assert_int_equal(parse_once("\xef\xbb\xbf" HEADER), XML_OK);
    static const char *const utf16[] = {
        "\xff\xfe<\0s\0t\0r\0e\0a\0m\0>\0", /* with byte order marks */
        "\xfe\xff\0<\0s\0t\0r\0e\0a\0m\0>",
        "<\0s\0t\0r\0e\0a\0m\0>\0", /* and without */
        "\0<\0s\0t\0r\0e\0a\0m\0>",
    };
    for (size_t i = 0; i < sizeof utf16 / sizeof *utf16; i++) {
        rec r;
        rec_init_default(&r);
        assert_int_equal(xml_parser_feed(r.p, utf16[i], 18), XML_ERR_NOT_WELL_FORMED);
        rec_fini(&r);
    }
    /* stanzas before a bad byte in the same buffer are still delivered */
    rec r;
    rec_init_default(&r);
    static const char doc[] = HEADER "<a/><b/>\xff<c/>";
    assert_int_equal(xml_parser_feed(r.p, doc, sizeof doc - 1), XML_ERR_NOT_WELL_FORMED);
    assert_int_equal(r.stanzas, 2);
    rec_fini(&r);
}

/* ---- reset and stop ---- */

static void test_reset_from_callback(void **state)
{
    rec r;
    rec_init_default(&r);
    r.reset_on = "success";
    /* everything after <success/> in the same buffer is discarded */
    assert_int_equal(
        feed_str(&r, HEADER "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
                            "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><message>junk</x>"),
        XML_OK);
    assert_int_equal(r.opens, 1);
    assert_int_equal(r.stanzas, 2);
    /* a new header in the next feed works */
    assert_int_equal(feed_str(&r, "<?xml version='1.0'?>" HEADER "<iq type='set'/>"), XML_OK);
    assert_int_equal(r.opens, 2);
    assert_int_equal(r.stanzas, 3);
    assert_string_equal(rec_log(&r),
                        "open ns=jabber:client to=localhost version=1.0\n"
                        "<auth xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"/>\n"
                        "<success xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"/>\n"
                        "open ns=jabber:client to=localhost version=1.0\n"
                        "<iq type=\"set\"/>\n");
    rec_fini(&r);

    /* the same byte by byte, and with the stanza limit counted afresh */
    rec_init(&r, 300, 8, 8);
    r.reset_on = "proceed";
    assert_int_equal(feed_bytewise(&r, HEADER "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
                                              "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
                     XML_OK);
    assert_int_equal(feed_bytewise(&r, HEADER "<presence/>"), XML_OK);
    assert_int_equal(r.opens, 2);
    assert_int_equal(r.stanzas, 3);
    rec_fini(&r);
}

static void test_reset_outside_callback(void **state)
{
    rec r;
    rec_init_default(&r);
    assert_int_equal(feed_str(&r, HEADER "<message><body>half"), XML_OK);
    xml_parser_reset(r.p); /* drops the half stanza */
    assert_int_equal(feed_str(&r, HEADER "<presence/>"), XML_OK);
    assert_int_equal(r.opens, 2);
    assert_int_equal(r.stanzas, 1);
    /* reset also clears a failure: a new stream starts */
    assert_int_equal(feed_str(&r, "<bad"), XML_OK);
    assert_int_equal(feed_str(&r, "</x>"), XML_ERR_NOT_WELL_FORMED);
    xml_parser_reset(r.p);
    assert_int_equal(feed_str(&r, HEADER), XML_OK);
    assert_int_equal(r.opens, 3);
    rec_fini(&r);
}

static void test_stop_from_callback(void **state)
{
    rec r;
    rec_init_default(&r);
    r.stop_on = "stop";
    assert_int_equal(feed_str(&r, HEADER "<a/><stop/><b/><c/>"), XML_ERR_STOPPED);
    assert_int_equal(r.stanzas, 2);
    assert_int_equal(feed_str(&r, "<d/>"), XML_ERR_STOPPED);
    assert_int_equal(r.stanzas, 2);
    rec_fini(&r);

    /* stop and reset in the same callback: stop wins */
    rec_init_default(&r);
    r.stop_on = "x";
    r.reset_on = "x";
    assert_int_equal(feed_str(&r, HEADER "<x/><y/>"), XML_ERR_STOPPED);
    assert_int_equal(r.stanzas, 1);
    rec_fini(&r);

    /* a stop outside callbacks */
    rec_init_default(&r);
    assert_int_equal(feed_str(&r, HEADER "<message>"), XML_OK);
    xml_parser_stop(r.p);
    assert_int_equal(feed_str(&r, "</message>"), XML_ERR_STOPPED);
    assert_int_equal(r.stanzas, 0);
    rec_fini(&r);
}

static void test_null_callbacks(void **state)
{
    xml_limits lim = {4096, 8, 8};
    xml_parser_callbacks cb = {0};
    xml_parser *p = xml_parser_new(&lim, &cb, NULL);
    assert_non_null(p);
    const char *doc = HEADER "<message><body>x</body></message></stream:stream>";
    assert_int_equal(xml_parser_feed(p, doc, strlen(doc)), XML_OK);
    xml_parser_free(p);
    /* freeing mid-stanza frees the partial tree */
    p = xml_parser_new(&lim, &cb, NULL);
    doc = HEADER "<message><body>x</body><a><b>text";
    assert_int_equal(xml_parser_feed(p, doc, strlen(doc)), XML_OK);
    xml_parser_free(p);
    xml_parser_free(NULL);
}

/* ---- release between stanzas ---- */

#define STREAMS "http://etherx.jabber.org/streams"

/* Feeds s in one piece and checks that the parser can then be released. */
static void feed_release(rec *r, const char *s)
{
    assert_int_equal(feed_str(r, s), XML_OK);
    assert_true(xml_parser_release(r->p));
    assert_false(xml_parser_release(r->p)); /* twice: a no-op */
}

/* Parses the pieces once as they are and once with a release attempted
 * after each piece; the two runs must report the same events and error.
 * Returns the number of releases that succeeded. */
static int check_release_equivalent(const char *const *pieces, size_t n, size_t max_bytes,
                                    unsigned max_depth, unsigned max_attrs)
{
    rec plain, rel;
    rec_init(&plain, max_bytes, max_depth, max_attrs);
    rec_init(&rel, max_bytes, max_depth, max_attrs);
    rel.release_in_cb = true;
    xml_error e1 = XML_OK, e2 = XML_OK;
    int releases = 0;
    for (size_t i = 0; i < n; i++) {
        if (e1 == XML_OK)
            e1 = feed_str(&plain, pieces[i]);
        if (e2 == XML_OK)
            e2 = feed_str(&rel, pieces[i]);
        if (xml_parser_release(rel.p))
            releases++;
    }
    assert_int_equal(e1, e2);
    assert_string_equal(rec_log(&plain), rec_log(&rel));
    assert_int_equal(rel.cb_releases, 0);
    rec_fini(&plain);
    rec_fini(&rel);
    return releases;
}

static void test_release_namespaces(void **state)
{
    rec r;
    rec_init_default(&r);
    r.keep_last = true;
    feed_release(&r, "<stream:stream xmlns='jabber:client' xmlns:stream='" STREAMS "'"
                     " xmlns:u='urn:u' xml:lang='en' to='localhost' version='1.0'>");
    assert_int_equal(r.opens, 1);

    /* a stanza in jabber:client with a child in its own namespace */
    feed_release(&r, "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                     "<resource>r</resource></bind></iq>");
    xml_node *iq = r.keep;
    assert_string_equal(iq->name, "iq");
    assert_string_equal(iq->ns, XML_NS_CLIENT);
    xml_node *bind = xml_node_child(iq, "bind", "urn:ietf:params:xml:ns:xmpp-bind");
    assert_non_null(bind);
    assert_non_null(xml_node_child(bind, "resource", "urn:ietf:params:xml:ns:xmpp-bind"));

    /* prefixes declared on the root: an attribute and an element */
    feed_release(&r, "<message u:a='1' b='2'><u:x><y/></u:x></message>");
    assert_string_equal(r.keep->ns, XML_NS_CLIENT);
    assert_string_equal(xml_node_attr(r.keep, "{urn:u}a"), "1");
    assert_string_equal(xml_node_attr(r.keep, "b"), "2");
    xml_node *x = xml_node_child(r.keep, "x", "urn:u");
    assert_non_null(x);
    assert_non_null(xml_node_child(x, "y", XML_NS_CLIENT));
    feed_release(&r, "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                     "</stream:features>");
    assert_string_equal(r.keep->name, "features");
    assert_string_equal(r.keep->ns, STREAMS);

    /* an undeclared prefix is still an error, and no stream_open came again */
    assert_int_equal(feed_str(&r, "<v:z/>"), XML_ERR_NOT_WELL_FORMED);
    assert_int_equal(r.opens, 1);
    assert_int_equal(r.stanzas, 3);
    assert_false(xml_parser_release(r.p)); /* failed */
    rec_fini(&r);

    /* the same pieces with and without releases report the same */
    static const char *const pieces[] = {
        "<?xml version='1.0'?>",
        HEADER,
        "<message to='a@b' xml:lang='de'><body>x</body></message>",
        "\n",
        "<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>",
        " ",
        "<presence><x xmlns:p='urn:p' p:q='1'/></presence>",
        "<m><![CDATA[<x>]]></m>",
        "</stream:stream>",
    };
    /* released after each piece but the XML declaration (before the root)
     * and the close (the stream is over) */
    assert_int_equal(check_release_equivalent(pieces, sizeof pieces / sizeof *pieces, 65536, 32,
                                              32),
                     7);
    /* the default namespace undeclared on the root, and one to escape */
    static const char *const odd[] = {
        "<stream:stream xmlns:stream='" STREAMS "' xmlns=''>",
        "<a/>",
        "<b xmlns='x'/>",
        "</stream:stream>",
    };
    assert_int_equal(check_release_equivalent(odd, 4, 4096, 8, 8), 3);
    static const char *const esc[] = {
        "<stream:stream xmlns:stream='" STREAMS "' xmlns='a&amp;&lt;&apos;&quot;&#13;&#9;&#10;b'"
        " xmlns:q=\"u'&#x20;\">",
        "<a q:z='1'/>",
        "<b/>",
    };
    assert_int_equal(check_release_equivalent(esc, 3, 4096, 8, 8), 3);
    /* near the usual header but not it (rebuilt from the stream's own
     * copy, not the shared one): another prefix, whose end tag must still
     * match after a rebuild, and the declarations in the other order */
    static const char *const prefixed[] = {
        "<s:stream xmlns='jabber:client' xmlns:s='" STREAMS "'>",
        "<s:features/>",
        "<stream:features/>", /* not declared here */
    };
    assert_int_equal(check_release_equivalent(prefixed, 3, 4096, 8, 8), 2);
    static const char *const closing[] = {
        "<s:stream xmlns='jabber:client' xmlns:s='" STREAMS "'>",
        "<a/>",
        "</s:stream>",
    };
    assert_int_equal(check_release_equivalent(closing, 3, 4096, 8, 8), 2);
    static const char *const swapped[] = {
        "<stream:stream xmlns:stream='" STREAMS "' xmlns='jabber:client'>",
        "<message><body>b</body></message>",
        "<stream:features/>",
        "</stream:stream>",
    };
    assert_int_equal(check_release_equivalent(swapped, 4, 4096, 8, 8), 3);
}

static void test_release_refused_mid_stanza(void **state)
{
    rec r;
    rec_init_default(&r);
    r.release_in_cb = true;
    /* no stream yet, then half a header */
    assert_true(xml_parser_release(r.p)); /* before the first byte */
    assert_false(xml_parser_release(r.p));
    assert_int_equal(feed_str(&r, "<stream:stream xmlns='jabber:client' xmlns:stream"), XML_OK);
    assert_false(xml_parser_release(r.p));
    feed_release(&r, "='" STREAMS "'>");
    /* half a stanza, at several points */
    static const char *const halves[] = {"<", "<mess", "<message to='a'", "<message to='a'>",
                                         "<message to='a'><body>hal"};
    for (size_t i = 0; i < sizeof halves / sizeof *halves; i++) {
        assert_int_equal(feed_str(&r, halves[i]), XML_OK);
        assert_false(xml_parser_release(r.p));
        const char *full = "<message to='a'><body>half</body></message>";
        assert_int_equal(feed_str(&r, full + strlen(halves[i])), XML_OK);
        assert_int_equal(r.stanzas, (int)i + 1);
        assert_true(xml_parser_release(r.p));
    }
    /* bytes expat holds between stanzas: a partial UTF-8 character, a CR
     * that may start CR LF, a ']' that may start "]]>", a CDATA section */
    static const char *const held[][2] = {
        {"\xc3", "\xa9"}, {"\r", "\n"}, {"]", " "}, {"<![CDATA[ x", " ]]>"}};
    for (size_t i = 0; i < sizeof held / sizeof *held; i++) {
        assert_int_equal(feed_str(&r, held[i][0]), XML_OK);
        assert_false(xml_parser_release(r.p));
        assert_int_equal(feed_str(&r, held[i][1]), XML_OK);
        assert_true(xml_parser_release(r.p));
    }
    feed_release(&r, "<presence/>");
    assert_int_equal(r.stanzas, 6);
    assert_int_equal(r.cb_releases, 0); /* refused inside every callback */
    assert_string_equal(rec_log(&r), "open ns=jabber:client\n"
                                     "<message to=\"a\"><body>half</body></message>\n"
                                     "<message to=\"a\"><body>half</body></message>\n"
                                     "<message to=\"a\"><body>half</body></message>\n"
                                     "<message to=\"a\"><body>half</body></message>\n"
                                     "<message to=\"a\"><body>half</body></message>\n"
                                     "<presence/>\n");
    /* after an error */
    assert_int_equal(feed_str(&r, "<a></b>"), XML_ERR_NOT_WELL_FORMED);
    assert_false(xml_parser_release(r.p));
    rec_fini(&r);

    /* after a stop from outside callbacks */
    rec_init_default(&r);
    feed_release(&r, HEADER);
    xml_parser_stop(r.p);
    assert_false(xml_parser_release(r.p));
    assert_int_equal(feed_str(&r, "<a/>"), XML_ERR_STOPPED);
    assert_int_equal(r.stanzas, 0);
    rec_fini(&r);
}

static void test_release_stream_close(void **state)
{
    rec r;
    rec_init_default(&r);
    feed_release(&r, HEADER "<presence/>");
    assert_int_equal(feed_str(&r, "</stream:stream>"), XML_OK);
    assert_int_equal(r.closes, 1);
    assert_false(xml_parser_release(r.p)); /* the stream is over */
    assert_int_equal(feed_str(&r, "  <presence/>"), XML_ERR_NOT_WELL_FORMED);
    assert_int_equal(r.stanzas, 1);
    rec_fini(&r);

    /* the close right after the rebuild, byte by byte */
    rec_init_default(&r);
    feed_release(&r, HEADER);
    assert_int_equal(feed_bytewise(&r, "</stream:stream>"), XML_OK);
    assert_int_equal(r.closes, 1);
    rec_fini(&r);

    /* a mismatched close is still an error */
    rec_init_default(&r);
    feed_release(&r, HEADER);
    assert_int_equal(feed_str(&r, "</stream:streams>"), XML_ERR_NOT_WELL_FORMED);
    assert_int_equal(r.closes, 0);
    rec_fini(&r);
}

static void test_release_stream_prefixes(void **state)
{
    /* root prefix other than "stream" */
    rec r;
    rec_init_default(&r);
    r.keep_last = true;
    feed_release(&r, "<s:stream xmlns:s='" STREAMS "' xmlns='jabber:client'>");
    feed_release(&r, "<message><body>b</body></message>");
    assert_string_equal(r.keep->ns, XML_NS_CLIENT);
    assert_string_equal(xml_node_child(r.keep, "body", NULL)->ns, XML_NS_CLIENT);
    feed_release(&r, "<s:error><x xmlns='urn:e'/></s:error>");
    assert_string_equal(r.keep->ns, STREAMS);
    assert_int_equal(feed_str(&r, "<stream:features/>"), XML_ERR_NOT_WELL_FORMED);
    rec_fini(&r);

    rec_init_default(&r);
    feed_release(&r, "<s:stream xmlns:s='" STREAMS "' xmlns='jabber:client'>");
    assert_int_equal(feed_str(&r, "</s:stream>"), XML_OK);
    assert_int_equal(r.closes, 1);
    rec_fini(&r);

    /* two prefixes for the stream namespace: the close must use the root's */
    rec_init_default(&r);
    feed_release(&r, "<x:stream xmlns:stream='" STREAMS "' xmlns:x='" STREAMS "'>");
    assert_int_equal(feed_str(&r, "</x:stream>"), XML_OK);
    assert_int_equal(r.closes, 1);
    rec_fini(&r);
    rec_init_default(&r);
    feed_release(&r, "<x:stream xmlns:stream='" STREAMS "' xmlns:x='" STREAMS "'>");
    assert_int_equal(feed_str(&r, "</stream:stream>"), XML_ERR_NOT_WELL_FORMED);
    rec_fini(&r);

    /* no prefix: the stream namespace is the default one */
    rec_init_default(&r);
    r.keep_last = true;
    feed_release(&r, "<stream\n xmlns='" STREAMS "'\tversion='1.0'>");
    feed_release(&r, "<features/>");
    assert_string_equal(r.keep->ns, STREAMS);
    assert_int_equal(feed_str(&r, "</stream >"), XML_OK);
    assert_int_equal(r.closes, 1);
    rec_fini(&r);
}

static void test_release_reset_and_free(void **state)
{
    /* reset while released: a new stream starts */
    rec r;
    rec_init_default(&r);
    feed_release(&r, HEADER "<presence/>");
    xml_parser_reset(r.p);
    assert_true(xml_parser_release(r.p)); /* nothing fed since the reset */
    feed_release(&r, "<?xml version='1.0'?><s:stream xmlns:s='" STREAMS "' xmlns='jabber:server'>");
    assert_int_equal(r.opens, 2);
    assert_string_equal(r.default_ns, XML_NS_SERVER);
    assert_int_equal(feed_str(&r, "<db:result xmlns:db='jabber:server:dialback'/></s:stream>"),
                     XML_OK);
    assert_int_equal(r.closes, 1);
    rec_fini(&r);

    /* a reset from a callback after a rebuild (SASL success) */
    rec_init_default(&r);
    r.reset_on = "success";
    feed_release(&r, HEADER);
    assert_int_equal(feed_str(&r, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>junk"), XML_OK);
    assert_true(xml_parser_release(r.p));
    feed_release(&r, HEADER "<iq/>");
    assert_int_equal(r.opens, 2);
    assert_int_equal(r.stanzas, 2);
    rec_fini(&r);

    /* an empty feed does not rebuild: still released */
    rec_init_default(&r);
    feed_release(&r, HEADER);
    assert_int_equal(xml_parser_feed(r.p, "", 0), XML_OK);
    assert_false(xml_parser_release(r.p));
    feed_release(&r, "<presence/>");
    assert_int_equal(r.stanzas, 1);
    rec_fini(&r);

    /* free while released, and before anything was fed (ASan checks leaks) */
    rec_init_default(&r);
    feed_release(&r, HEADER "<presence/>");
    rec_fini(&r);
    rec_init_default(&r);
    assert_true(xml_parser_release(r.p));
    rec_fini(&r);
    /* released, rebuilt, then freed mid-stanza */
    rec_init_default(&r);
    feed_release(&r, HEADER);
    assert_int_equal(feed_str(&r, "<message><body>x"), XML_OK);
    rec_fini(&r);
}

static void test_release_bytewise(void **state)
{
    /* a release tried after every byte, and after every split */
    rec r;
    rec_init_default(&r);
    r.release_in_cb = true;
    size_t len = strlen(STREAM_DOC);
    int releases = 0;
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(xml_parser_feed(r.p, STREAM_DOC + i, 1), XML_OK);
        if (xml_parser_release(r.p))
            releases++;
    }
    assert_string_equal(rec_log(&r), STREAM_LOG);
    assert_int_equal(r.cb_releases, 0);
    /* after the header, after each stanza and each keepalive byte, except
     * at the last '>' (the close ends the stream) */
    assert_true(releases >= 8);
    rec_fini(&r);

    for (size_t cut = 0; cut <= len; cut++) {
        rec_init_default(&r);
        assert_int_equal(xml_parser_feed(r.p, STREAM_DOC, cut), XML_OK);
        xml_parser_release(r.p);
        assert_int_equal(xml_parser_feed(r.p, STREAM_DOC + cut, len - cut), XML_OK);
        assert_string_equal(rec_log(&r), STREAM_LOG);
        rec_fini(&r);
    }
}

static void test_release_whitespace(void **state)
{
    rec r;
    rec_init(&r, 200, 4, 8);
    feed_release(&r, HEADER);
    char ws[1000];
    memset(ws, ' ', sizeof ws);
    ws[10] = '\n';
    ws[20] = '\t';
    for (int i = 0; i < 20; i++) {
        assert_int_equal(xml_parser_feed(r.p, ws, sizeof ws), XML_OK);
        assert_true(xml_parser_release(r.p));
    }
    feed_release(&r, "\n");
    feed_release(&r, " ");
    feed_release(&r, "\r\n");
    feed_release(&r, "<presence/>  ");
    assert_int_equal(r.stanzas, 1);
    rec_fini(&r);
}

/* A stanza of exactly n bytes that is all start tag: <m a='xxxx'/>.  No
 * event starts its unit until the tag is complete. */
static char *long_tag_of(size_t n)
{
    assert_true(n >= 9);
    char *s = malloc(n + 1);
    memcpy(s, "<m a='", 6);
    memset(s + 6, 'x', n - 9);
    memcpy(s + n - 3, "'/>", 4);
    return s;
}

/* Like check_size_limit, with a release before every stanza: the synthetic
 * root of each rebuild must not count against the limit. */
static void check_size_limit_released(size_t max, size_t n, xml_error want, bool bytewise,
                                      bool long_tag)
{
    rec r;
    rec_init(&r, max, 8, 8);
    feed_release(&r, HEADER);
    char *s = long_tag ? long_tag_of(n) : stanza_of(n);
    for (int i = 0; i < 2; i++) {
        xml_error e = bytewise ? feed_bytewise(&r, s) : feed_str(&r, s);
        assert_int_equal(e, want);
        if (e != XML_OK)
            break;
        assert_true(xml_parser_release(r.p));
        assert_int_equal(feed_str(&r, " \n"), XML_OK);
        assert_true(xml_parser_release(r.p));
    }
    assert_int_equal(r.stanzas, want == XML_OK ? 2 : 0);
    free(s);
    rec_fini(&r);
}

static void test_release_limits(void **state)
{
    /* a limit the size of the header, and so of the synthetic root */
    size_t sizes[] = {sizeof HEADER, 1024, 1500};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t max = sizes[i];
        for (int bw = 0; bw < 2; bw++) {
            for (int lt = 0; lt < 2; lt++) {
                check_size_limit_released(max, 9, XML_OK, bw, lt);
                check_size_limit_released(max, max, XML_OK, bw, lt);
                check_size_limit_released(max, max + 1, XML_ERR_TOO_BIG, bw, lt);
                check_size_limit_released(max, max * 3 + 7, XML_ERR_TOO_BIG, bw, lt);
            }
        }
    }

    /* a start tag that never ends, right after a rebuild */
    rec r;
    rec_init(&r, 200, 8, 8);
    feed_release(&r, HEADER);
    assert_int_equal(feed_str(&r, "<message to='"), XML_OK);
    xml_error e = XML_OK;
    for (int i = 0; i < 300 && e == XML_OK; i++)
        e = feed_str(&r, "a");
    assert_int_equal(e, XML_ERR_TOO_BIG);
    rec_fini(&r);

    /* nesting */
    rec_init(&r, 4096, 3, 8);
    feed_release(&r, HEADER);
    feed_release(&r, "<a><b><c/></b></a>");
    assert_int_equal(r.stanzas, 1);
    assert_int_equal(feed_str(&r, "<a><b><c><d/></c></b></a>"), XML_ERR_TOO_DEEP);
    assert_int_equal(r.stanzas, 1);
    rec_fini(&r);

    /* attributes: the header takes the whole budget (2 attributes and 2
     * declarations); the synthetic root is not counted again */
    rec_init(&r, 4096, 8, 4);
    feed_release(&r, HEADER);
    feed_release(&r, "<a w='1' x='2' y='3' z='4'/>");
    assert_int_equal(feed_str(&r, "<a v='0' w='1' x='2' y='3' z='4'/>"), XML_ERR_TOO_MANY_ATTRS);
    assert_int_equal(r.stanzas, 1);
    rec_fini(&r);

    /* restricted XML after a rebuild */
    rec_init_default(&r);
    feed_release(&r, HEADER);
    assert_int_equal(feed_str(&r, "<!-- c -->"), XML_ERR_RESTRICTED);
    rec_fini(&r);
    rec_init_default(&r);
    feed_release(&r, HEADER);
    assert_int_equal(feed_str(&r, "<!DOCTYPE x>"), XML_ERR_NOT_WELL_FORMED);
    rec_fini(&r);
}

/* ---- tree ---- */

static void test_tree_attrs(void **state)
{
    xml_node *n = xml_node_new("iq", NULL);
    assert_non_null(n);
    assert_string_equal(n->ns, "");
    assert_null(xml_node_attr(n, "id"));
    for (int i = 0; i < 10; i++) {
        char name[8], val[8];
        snprintf(name, sizeof name, "a%d", i);
        snprintf(val, sizeof val, "v%d", i);
        assert_int_equal(xml_node_set_attr(n, name, val), 0);
    }
    assert_int_equal(n->nattrs, 10);
    assert_string_equal(xml_node_attr(n, "a7"), "v7");
    assert_int_equal(xml_node_set_attr(n, "a7", "new"), 0); /* replace */
    assert_string_equal(xml_node_attr(n, "a7"), "new");
    assert_int_equal(n->nattrs, 10);
    assert_int_equal(xml_node_set_attr(n, "a0", NULL), 0); /* remove */
    assert_int_equal(xml_node_set_attr(n, "a9", NULL), 0);
    assert_int_equal(xml_node_set_attr(n, "a5", NULL), 0);
    assert_int_equal(xml_node_set_attr(n, "zz", NULL), 0); /* absent: no-op */
    assert_int_equal(n->nattrs, 7);
    assert_null(xml_node_attr(n, "a0"));
    assert_null(xml_node_attr(n, "a5"));
    assert_string_equal(xml_node_attr(n, "a1"), "v1");
    assert_string_equal(xml_node_attr(n, "a8"), "v8");
    char *s = xml_to_string(n, "");
    assert_string_equal(s, "<iq a1=\"v1\" a2=\"v2\" a3=\"v3\" a4=\"v4\" a6=\"v6\" a7=\"new\" a8=\"v8\"/>");
    free(s);
    xml_node_free(n);
}

static void test_tree_children(void **state)
{
    xml_node *iq = xml_node_new("iq", XML_NS_CLIENT);
    xml_node *q = xml_node_add_child(iq, "query", "jabber:iq:roster");
    xml_node *i1 = xml_node_add_child(q, "item", NULL);
    xml_node *g = xml_node_add_child(q, "group", NULL);
    xml_node *i2 = xml_node_add_child(q, "item", NULL);
    xml_node *o = xml_node_add_child(q, "item", "urn:other");
    assert_non_null(o);
    assert_string_equal(i1->ns, "jabber:iq:roster"); /* inherited */
    assert_int_equal(xml_node_add_text(q, "t", 1), 0);

    assert_ptr_equal(xml_node_child(iq, "query", "jabber:iq:roster"), q);
    assert_null(xml_node_child(iq, "query", XML_NS_CLIENT));
    assert_ptr_equal(xml_node_child(iq, NULL, NULL), q);
    assert_ptr_equal(xml_node_child(q, "item", NULL), i1);
    assert_ptr_equal(xml_node_child(q, NULL, "urn:other"), o);
    assert_ptr_equal(xml_node_next(i1, "item", NULL), i2);
    assert_ptr_equal(xml_node_next(i1, NULL, NULL), g);
    assert_ptr_equal(xml_node_next(i2, "item", NULL), o);
    assert_null(xml_node_next(i2, "item", "jabber:iq:roster"));
    assert_null(xml_node_next(o, NULL, NULL)); /* a text node follows: skipped */
    assert_null(xml_node_child(q, "nope", NULL));

    char *s = xml_to_string(iq, XML_NS_CLIENT);
    assert_string_equal(s, "<iq><query xmlns=\"jabber:iq:roster\"><item/><group/><item/>"
                           "<item xmlns=\"urn:other\"/>t</query></iq>");
    free(s);

    /* remove first, middle and last */
    xml_node_remove(q, i1);
    xml_node_remove(q, i2);
    xml_node *txt = q->last;
    xml_node_remove(q, txt);
    xml_node_free(txt);
    assert_null(i1->parent);
    assert_ptr_equal(q->children, g);
    assert_ptr_equal(q->last, o);
    s = xml_to_string(iq, XML_NS_CLIENT);
    assert_string_equal(s, "<iq><query xmlns=\"jabber:iq:roster\"><group/>"
                           "<item xmlns=\"urn:other\"/></query></iq>");
    free(s);
    /* a removed node can be appended elsewhere */
    xml_node_append(g, i2);
    assert_ptr_equal(i2->parent, g);
    xml_node_remove(q, i1); /* not a child: no-op */
    xml_node_free(i1);
    s = xml_to_string(q, XML_NS_CLIENT);
    assert_string_equal(s, "<query xmlns=\"jabber:iq:roster\"><group><item/></group>"
                           "<item xmlns=\"urn:other\"/></query>");
    free(s);
    xml_node_free(iq);
}

static void test_tree_text(void **state)
{
    xml_node *m = xml_node_new("message", XML_NS_CLIENT);
    char *t = xml_node_text(m);
    assert_string_equal(t, "");
    free(t);
    assert_null(xml_node_child_text(m, "body", NULL));
    xml_node *b = xml_node_add_child(m, "body", NULL);
    t = xml_node_child_text(m, "body", NULL);
    assert_string_equal(t, "");
    free(t);
    assert_int_equal(xml_node_add_text(b, "hello", 5), 0);
    xml_node_add_child(b, "br", NULL);
    assert_int_equal(xml_node_add_text(b, ", world!!", 7), 0); /* len counts */
    assert_int_equal(xml_node_add_text(b, "", 0), 0);
    t = xml_node_text(b);
    assert_string_equal(t, "hello, world");
    free(t);
    t = xml_node_child_text(m, "body", XML_NS_CLIENT);
    assert_string_equal(t, "hello, world");
    free(t);
    assert_null(xml_node_child_text(m, "body", "urn:x"));
    char *s = xml_to_string(m, XML_NS_CLIENT);
    assert_string_equal(s, "<message><body>hello<br/>, world</body></message>");
    free(s);
    xml_node_free(m);
}

static void test_tree_clone(void **state)
{
    rec r;
    rec_init_default(&r);
    r.keep_last = true;
    assert_int_equal(feed_str(&r, HEADER "<message to='a' xml:lang='en'><body>x&amp;y</body>"
                                         "<q xmlns='urn:q' xmlns:p='urn:p' p:a='1'><r>t<s/>u</r></q>"
                                         "</message>"),
                     XML_OK);
    xml_node *c = xml_node_clone(r.keep);
    assert_non_null(c);
    assert_null(c->parent);
    char *a = xml_to_string(r.keep, XML_NS_CLIENT);
    char *b = xml_to_string(c, XML_NS_CLIENT);
    assert_string_equal(a, b);
    free(a);
    free(b);
    /* independent: changing one leaves the other */
    assert_int_equal(xml_node_set_attr(c, "to", "b"), 0);
    assert_string_equal(xml_node_attr(r.keep, "to"), "a");
    rec_fini(&r); /* frees the original */
    xml_node *r2 = xml_node_child(xml_node_child(c, "q", "urn:q"), "r", NULL);
    assert_ptr_equal(r2->parent->parent, c);
    char *t = xml_node_text(r2);
    assert_string_equal(t, "tu");
    free(t);
    /* clone of a subtree and of a text node */
    xml_node *sub = xml_node_clone(r2);
    xml_node *txt = xml_node_clone(r2->children);
    assert_int_equal(txt->type, XML_TEXT);
    assert_string_equal(txt->text, "t");
    xml_node_free(txt);
    xml_node_free(c);
    char *s = xml_to_string(sub, "urn:q");
    assert_string_equal(s, "<r>t<s/>u</r>");
    free(s);
    xml_node_free(sub);
    assert_null(xml_node_clone(NULL));
    xml_node_free(NULL);
}

static void test_deep_tree_free(void **state)
{
    /* free is iterative: a very deep tree built by hand */
    xml_node *root = xml_node_new("a", NULL);
    xml_node *n = root;
    for (int i = 0; i < 200000; i++) {
        n = xml_node_add_child(n, "a", NULL);
        assert_non_null(n);
    }
    xml_node_free(root);
}

static void test_ns_attr_serialize(void **state)
{
    xml_node *n = xml_node_new("x", "urn:x");
    assert_int_equal(xml_node_set_attr(n, "{urn:a}k", "1"), 0);
    assert_int_equal(xml_node_set_attr(n, "{urn:b}k", "2"), 0);
    assert_int_equal(xml_node_set_attr(n, "{http://www.w3.org/XML/1998/namespace}lang", "en"), 0);
    assert_int_equal(xml_node_set_attr(n, "k", "3"), 0);
    xml_node *c = xml_node_add_child(n, "y", NULL);
    assert_int_equal(xml_node_set_attr(c, "{urn:a}k", "4"), 0);
    assert_roundtrip(n, "<x xmlns=\"urn:x\" xmlns:ns0=\"urn:a\" ns0:k=\"1\" xmlns:ns1=\"urn:b\" ns1:k=\"2\""
                        " xml:lang=\"en\" k=\"3\"><y xmlns:ns0=\"urn:a\" ns0:k=\"4\"/></x>");
    xml_node_free(n);
}

static void test_buf(void **state)
{
    xml_buf b = {0};
    xml_buf_append_str(&b, "ab");
    xml_buf_append(&b, "cdef", 2);
    xml_buf_append_escaped(&b, "<'>", 3);
    assert_int_equal(b.len, strlen("abcd&lt;&apos;&gt;"));
    assert_string_equal(b.data, "abcd&lt;&apos;&gt;");
    char *keep = b.data;
    xml_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_ptr_equal(b.data, keep);
    for (int i = 0; i < 1000; i++)
        xml_buf_append_str(&b, "0123456789");
    assert_int_equal(b.len, 10000);
    assert_false(b.failed);
    xml_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
}

static void test_parse_element(void **state)
{
    xml_limits lim = {4096, 8, 8};
    xml_node *n = NULL;
    const char *ok = "<message to='a@b' type='chat'><body>x &amp; y</body><q xmlns='urn:x'><i/></q></message>";
    assert_int_equal(xml_parse_element(ok, strlen(ok), &lim, &n), XML_OK);
    assert_string_equal(n->name, "message");
    assert_string_equal(n->ns, XML_NS_CLIENT); /* the default namespace */
    char *body = xml_node_child_text(n, "body", XML_NS_CLIENT);
    assert_string_equal(body, "x & y");
    free(body);
    assert_non_null(xml_node_child(n, "q", "urn:x"));
    xml_node_free(n);
    static const char *const bad[] = {
        "", "text", "<a/><b/>", "<a>", "</s:stream><a/>", "<!DOCTYPE a><a/>", "<a><!-- c --></a>",
        "<a><b><c><d><e><f><g><h><i/></h></g></f></e></d></c></b></a>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = (xml_node *)1;
        if (xml_parse_element(bad[i], strlen(bad[i]), &lim, &n) == XML_OK)
            fail_msg("accepted: %s", bad[i]);
        assert_null(n);
    }
    /* Text beside the element is ignored, as between stanzas of a stream. */
    assert_int_equal(xml_parse_element(" <a/>tail ", 10, &lim, &n), XML_OK);
    assert_string_equal(n->name, "a");
    xml_node_free(n);
}

static void test_error_condition(void **state)
{
    assert_string_equal(xml_error_condition(XML_ERR_NOT_WELL_FORMED), "not-well-formed");
    assert_string_equal(xml_error_condition(XML_ERR_RESTRICTED), "restricted-xml");
    assert_string_equal(xml_error_condition(XML_ERR_TOO_BIG), "policy-violation");
    assert_string_equal(xml_error_condition(XML_ERR_TOO_DEEP), "policy-violation");
    assert_string_equal(xml_error_condition(XML_ERR_TOO_MANY_ATTRS), "policy-violation");
    assert_string_equal(xml_error_condition(XML_ERR_BAD_NAMESPACE), "invalid-namespace");
    assert_string_equal(xml_error_condition(XML_ERR_NO_MEMORY), "internal-server-error");
    assert_string_equal(xml_error_condition(XML_ERR_STOPPED), "internal-server-error");
}

/* ---- framed parser (RFC 7395) ---- */

static void rec_init_framed(rec *r, size_t max_bytes)
{
    memset(r, 0, sizeof *r);
    xml_limits lim = {max_bytes, 32, 32};
    r->p = xml_parser_new_framed(&lim, &rec_cb, r);
    assert_non_null(r->p);
    r->default_ns = strdup("jabber:client"); /* for serializing what it reports */
}

static void test_framed_elements(void **state)
{
    (void)state;
    rec r;
    rec_init_framed(&r, 65536);
    assert_true(xml_parser_is_between_elements(r.p));
    assert_int_equal(feed_str(&r, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>"),
                     XML_OK);
    assert_true(xml_parser_is_between_elements(r.p));
    /* no xmlns: jabber:client; the stream prefix is bound */
    assert_int_equal(feed_str(&r, " <message to='a@b'><body>x</body></message>\n"), XML_OK);
    assert_int_equal(feed_str(&r, "<stream:features/>"), XML_OK);
    assert_int_equal(feed_str(&r, "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"), XML_OK);
    assert_int_equal(r.opens, 0); /* the implicit root is never reported */
    assert_int_equal(r.closes, 0);
    assert_int_equal(r.stanzas, 4);
    assert_string_equal(rec_log(&r), "<open xmlns=\"urn:ietf:params:xml:ns:xmpp-framing\" to=\"localhost\" "
                                     "version=\"1.0\"/>\n"
                                     "<message to=\"a@b\"><body>x</body></message>\n"
                                     "<features xmlns=\"http://etherx.jabber.org/streams\"/>\n"
                                     "<close xmlns=\"urn:ietf:params:xml:ns:xmpp-framing\"/>\n");
    /* half an element: not between elements until its end tag is in */
    assert_int_equal(feed_str(&r, "<presence><status>a"), XML_OK);
    assert_false(xml_parser_is_between_elements(r.p));
    assert_int_equal(feed_str(&r, "</status></presence>"), XML_OK);
    assert_true(xml_parser_is_between_elements(r.p));
    rec_fini(&r);
}

static void test_framed_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *input;
        xml_error err;
    } cases[] = {
        {"hello", XML_ERR_NOT_WELL_FORMED},              /* text between elements */
        {"<presence/>junk", XML_ERR_NOT_WELL_FORMED},
        {"</stream:stream>", XML_ERR_NOT_WELL_FORMED},   /* closing the implicit root */
        {"<?xml version='1.0'?><presence/>", XML_ERR_NOT_WELL_FORMED},
        {"<presence><!-- x --></presence>", XML_ERR_RESTRICTED},
        {"<presence><?pi x?></presence>", XML_ERR_RESTRICTED},
        {"<presence><unclosed></presence>", XML_ERR_NOT_WELL_FORMED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rec r;
        rec_init_framed(&r, 65536);
        assert_int_equal(feed_str(&r, cases[i].input), cases[i].err);
        assert_false(xml_parser_is_between_elements(r.p));
        rec_fini(&r);
    }
    /* the size limit counts each element, not the stream */
    rec r;
    rec_init_framed(&r, 64);
    for (int i = 0; i < 10; i++)
        assert_int_equal(feed_str(&r, "<message><body>forty bytes or so</body></message>"), XML_OK);
    assert_int_equal(feed_str(&r, "<message><body>this one is longer than sixty-four bytes</body></message>"),
                     XML_ERR_TOO_BIG);
    rec_fini(&r);
}

/* Released between elements and rebuilt: still inside the implicit root, so
 * an element without xmlns is jabber:client and stream: is bound; a reset
 * restores the root too. */
static void test_framed_release_and_reset(void **state)
{
    (void)state;
    rec r;
    rec_init_framed(&r, 65536);
    assert_int_equal(feed_str(&r, "<presence/>"), XML_OK);
    assert_true(xml_parser_release(r.p));
    assert_true(xml_parser_is_between_elements(r.p));
    assert_int_equal(feed_bytewise(&r, "<iq type='get' id='1'/><stream:features/>"), XML_OK);
    xml_parser_reset(r.p);
    assert_int_equal(feed_str(&r, "<message><body>y</body></message>"), XML_OK);
    assert_int_equal(feed_str(&r, "hello"), XML_ERR_NOT_WELL_FORMED); /* still framed after the reset */
    assert_string_equal(rec_log(&r), "<presence/>\n<iq type=\"get\" id=\"1\"/>\n"
                                     "<features xmlns=\"http://etherx.jabber.org/streams\"/>\n"
                                     "<message><body>y</body></message>\n");
    assert_int_equal(r.opens, 0);
    rec_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_whole),
        cmocka_unit_test(test_stream_bytewise),
        cmocka_unit_test(test_stream_split_everywhere),
        cmocka_unit_test(test_text_single_node_bytewise),
        cmocka_unit_test(test_header_attrs_and_default_ns),
        cmocka_unit_test(test_namespaces),
        cmocka_unit_test(test_escaping_roundtrip),
        cmocka_unit_test(test_xml_lang_and_ns_attrs),
        cmocka_unit_test(test_whitespace_keepalives),
        cmocka_unit_test(test_stream_close_then_junk),
        cmocka_unit_test(test_limit_stanza_bytes),
        cmocka_unit_test(test_limit_unfinished_tag),
        cmocka_unit_test(test_limit_depth),
        cmocka_unit_test(test_limit_attrs),
        cmocka_unit_test(test_restricted),
        cmocka_unit_test(test_not_well_formed),
        cmocka_unit_test(test_sticky_error),
        cmocka_unit_test(test_bad_namespace),
        cmocka_unit_test(test_encoding),
        cmocka_unit_test(test_reset_from_callback),
        cmocka_unit_test(test_reset_outside_callback),
        cmocka_unit_test(test_stop_from_callback),
        cmocka_unit_test(test_null_callbacks),
        cmocka_unit_test(test_release_namespaces),
        cmocka_unit_test(test_release_refused_mid_stanza),
        cmocka_unit_test(test_release_stream_close),
        cmocka_unit_test(test_release_stream_prefixes),
        cmocka_unit_test(test_release_reset_and_free),
        cmocka_unit_test(test_release_bytewise),
        cmocka_unit_test(test_release_whitespace),
        cmocka_unit_test(test_release_limits),
        cmocka_unit_test(test_tree_attrs),
        cmocka_unit_test(test_tree_children),
        cmocka_unit_test(test_tree_text),
        cmocka_unit_test(test_tree_clone),
        cmocka_unit_test(test_deep_tree_free),
        cmocka_unit_test(test_ns_attr_serialize),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_error_condition),
        cmocka_unit_test(test_parse_element),
        cmocka_unit_test(test_framed_elements),
        cmocka_unit_test(test_framed_refusals),
        cmocka_unit_test(test_framed_release_and_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
