/* fuzz_xml_framed.c - libFuzzer target for core/xml.c's framed parser, the
 * one XMPP over WebSocket streams use (RFC 7395).
 *
 * The input is cut into messages at each form feed byte (0x0C, which XML
 * refuses anyway).  Each message is fed, in two pieces split at an offset
 * derived from it, to two framed parsers with small limits: the second one
 * also tries xml_parser_release after every message, where it may release
 * only between elements.  Both runs must report the same elements and end
 * with the same error, and every element reported must serialize and parse
 * back, as a jabber:client stanza, to the same serialization.  Any violation
 * aborts.  See tests/fuzz/README.md.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "fuzz_xml_framed: check failed at line %d: %s\n", __LINE__, #cond); \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

static const xml_limits limits = {512, 8, 8};

typedef struct run {
    xml_buf log; /* owned: every element's serialization */
} run;

static void on_open(void *ud, const char **attrs, const char *default_ns)
{
    (void)ud;
    (void)attrs;
    (void)default_ns;
    FUZZ_CHECK(!"a framed parser reported a stream header");
}

static void on_close(void *ud)
{
    (void)ud;
    FUZZ_CHECK(!"a framed parser reported a stream end");
}

static void on_element(void *ud, xml_node *el)
{
    run *r = ud;
    char *text = xml_to_string(el, XML_NS_CLIENT);
    xml_node_free(el);
    if (!text)
        return;
    xml_node *back = NULL;
    if (xml_parse_element(text, strlen(text), &limits, &back) == XML_OK) {
        char *again = xml_to_string(back, XML_NS_CLIENT);
        FUZZ_CHECK(again && strcmp(again, text) == 0);
        free(again);
        xml_node_free(back);
    }
    xml_buf_append_str(&r->log, text);
    xml_buf_append_str(&r->log, "\n");
    free(text);
}

static const xml_parser_callbacks callbacks = {on_open, on_element, on_close};

/* Feeds every message; returns the first error. */
static xml_error feed_all(xml_parser *p, const uint8_t *data, size_t size, bool releasing)
{
    size_t start = 0;
    while (start <= size) {
        const uint8_t *ff = memchr(data + start, 0x0C, size - start);
        size_t end = ff ? (size_t)(ff - data) : size;
        size_t len = end - start;
        size_t cut = len ? data[start] % (len + 1) : 0;
        xml_error e = xml_parser_feed(p, (const char *)data + start, cut);
        if (e == XML_OK)
            e = xml_parser_feed(p, (const char *)data + start + cut, len - cut);
        if (e != XML_OK)
            return e;
        if (releasing) {
            bool between = xml_parser_is_between_elements(p);
            if (xml_parser_release(p))
                FUZZ_CHECK(between);
        }
        if (!ff)
            break;
        start = end + 1;
    }
    return XML_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run a = {{0}}, b = {{0}};
    xml_parser *pa = xml_parser_new_framed(&limits, &callbacks, &a);
    xml_parser *pb = xml_parser_new_framed(&limits, &callbacks, &b);
    FUZZ_CHECK(pa && pb);
    xml_error ea = feed_all(pa, data, size, false);
    xml_error eb = feed_all(pb, data, size, true);
    FUZZ_CHECK(ea == eb);
    FUZZ_CHECK(a.log.len == b.log.len && (a.log.len == 0 || memcmp(a.log.data, b.log.data, a.log.len) == 0));
    xml_parser_free(pa);
    xml_parser_free(pb);
    xml_buf_free(&a.log);
    xml_buf_free(&b.log);
    return 0;
}
