/* fuzz_xml.c - libFuzzer target for core/xml.c.
 *
 * Feeds the input, split at offsets derived from it, into a parser with
 * small limits.  Every stanza must serialize, clone to an identical tree,
 * and parse back from its serialization to the same serialization; a
 * stanza named "success"/"proceed" resets the stream, "stop" stops it.
 * The same pieces are then fed to a second parser that tries
 * xml_parser_release after pieces chosen from the input (and from inside
 * every callback, where it must be refused): both runs must report the same
 * events and the same error.  Any violation aborts.  See tests/fuzz/README.md.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_BYTES 512
#define FUZZ_MAX_DEPTH 8
#define FUZZ_MAX_ATTRS 8

#define FUZZ_CHECK(cond)                                                           \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "fuzz_xml: check failed at line %d: %s\n", __LINE__, #cond); \
            abort();                                                               \
        }                                                                          \
    } while (0)

typedef struct fuzz_state {
    xml_parser *p;
    char *default_ns; /* owned; from the last stream header */
    unsigned stanzas;
    bool releasing;   /* the run that releases the parser between pieces */
    xml_buf log;      /* owned; every event, to compare the two runs */
} fuzz_state;

/* A release from inside a callback must be refused. */
static void check_no_release(fuzz_state *f)
{
    if (f->releasing)
        FUZZ_CHECK(!xml_parser_release(f->p));
}

/* For the round trip: collects the serialization of one reparsed stanza. */
typedef struct reparse_state {
    const char *scope;
    char *out; /* owned */
    unsigned stanzas;
} reparse_state;

static void reparse_stanza(void *ud, xml_node *st)
{
    reparse_state *r = ud;
    r->stanzas++;
    free(r->out);
    r->out = xml_to_string(st, r->scope);
    xml_node_free(st);
}

/* xml_buf_append_escaped leaves TAB, LF and CR alone; in an attribute value
 * they must be references, or attribute value normalisation turns them into
 * spaces (found by this fuzzer: a default namespace "&#13;jabber:client"). */
static void append_attr_value(xml_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\t' || *s == '\n' || *s == '\r') {
            char ref[8];
            snprintf(ref, sizeof ref, "&#%d;", *s);
            xml_buf_append_str(b, ref);
        } else {
            xml_buf_append_escaped(b, s, 1);
        }
    }
}

/* Parses s inside a stream whose default namespace is scope and checks that
 * the single stanza it yields serializes to s again. */
static void check_roundtrip(const char *s, const char *scope)
{
    xml_limits lim = {1u << 20, FUZZ_MAX_DEPTH, 1000};
    xml_parser_callbacks cb = {NULL, reparse_stanza, NULL};
    reparse_state r = {scope, NULL, 0};
    xml_parser *p = xml_parser_new(&lim, &cb, &r);
    if (!p)
        return;
    xml_buf hdr = {0};
    xml_buf_append_str(&hdr, "<stream:stream xmlns:stream='" XML_NS_STREAM "'");
    if (scope[0]) {
        xml_buf_append_str(&hdr, " xmlns='");
        append_attr_value(&hdr, scope);
        xml_buf_append_str(&hdr, "'");
    }
    xml_buf_append_str(&hdr, ">");
    if (!hdr.failed) {
        FUZZ_CHECK(xml_parser_feed(p, hdr.data, hdr.len) == XML_OK);
        xml_error e = xml_parser_feed(p, s, strlen(s));
        if (e != XML_OK)
            fprintf(stderr, "fuzz_xml: reparse error %d on: %s\n", (int)e, s);
        FUZZ_CHECK(e == XML_OK);
        FUZZ_CHECK(r.stanzas == 1);
        if (r.out && strcmp(r.out, s) != 0)
            fprintf(stderr, "fuzz_xml: round trip differs:\n  %s\n  %s\n", s, r.out);
        FUZZ_CHECK(!r.out || strcmp(r.out, s) == 0);
    }
    xml_buf_free(&hdr);
    free(r.out);
    xml_parser_free(p);
}

static void on_open(void *ud, const char **attrs, const char *default_ns)
{
    fuzz_state *f = ud;
    check_no_release(f);
    xml_buf_append_str(&f->log, "open ");
    xml_buf_append_str(&f->log, default_ns);
    for (size_t i = 0; attrs[i]; i += 2) {
        xml_buf_append_str(&f->log, " ");
        xml_buf_append_str(&f->log, attrs[i]);
        xml_buf_append_str(&f->log, "=");
        xml_buf_append_str(&f->log, attrs[i + 1]);
    }
    xml_buf_append_str(&f->log, "\n");
    free(f->default_ns);
    f->default_ns = strdup(default_ns);
}

/* Walks the tree checking its links and the lookup functions. */
static void check_tree(const xml_node *n, unsigned depth)
{
    FUZZ_CHECK(depth <= FUZZ_MAX_DEPTH);
    FUZZ_CHECK(n->type == XML_ELEMENT && n->name && n->ns && !n->text);
    FUZZ_CHECK(n->nattrs <= FUZZ_MAX_ATTRS);
    for (size_t i = 0; i < n->nattrs; i++)
        FUZZ_CHECK(xml_node_attr(n, n->attrs[i].name) == n->attrs[i].value);
    const xml_node *prev = NULL;
    for (const xml_node *k = n->children; k; prev = k, k = k->next) {
        FUZZ_CHECK(k->parent == n);
        if (k->type == XML_TEXT) {
            FUZZ_CHECK(k->text && !k->name && k->text_len > 0);
            FUZZ_CHECK(!prev || prev->type != XML_TEXT); /* adjacent text is merged */
        } else {
            check_tree(k, depth + 1);
        }
    }
    FUZZ_CHECK(n->last == prev);
    const xml_node *first = xml_node_child(n, NULL, NULL);
    if (first)
        FUZZ_CHECK(xml_node_child(n, first->name, first->ns) != NULL);
    char *t = xml_node_text(n);
    free(t);
}

static void on_stanza(void *ud, xml_node *st)
{
    fuzz_state *f = ud;
    const char *scope = f->default_ns ? f->default_ns : "";
    check_no_release(f);
    f->stanzas++;
    check_tree(st, 1);
    char *s = xml_to_string(st, scope);
    if (s) { /* the namespace URI in full, not relative to the scope */
        xml_buf_append_str(&f->log, "{");
        xml_buf_append_str(&f->log, st->ns);
        xml_buf_append_str(&f->log, "}");
        xml_buf_append_str(&f->log, s);
        xml_buf_append_str(&f->log, "\n");
    }
    xml_node *c = f->releasing ? NULL : xml_node_clone(st); /* checked in one run */
    if (s && c) {
        char *s2 = xml_to_string(c, scope);
        FUZZ_CHECK(!s2 || strcmp(s, s2) == 0);
        free(s2);
        check_roundtrip(s, scope);
    }
    free(s);
    xml_node_free(c);
    bool reset = strcmp(st->name, "success") == 0 || strcmp(st->name, "proceed") == 0;
    bool stop = strcmp(st->name, "stop") == 0;
    xml_node_free(st);
    if (reset)
        xml_parser_reset(f->p);
    if (stop)
        xml_parser_stop(f->p);
}

static void on_close(void *ud)
{
    fuzz_state *f = ud;
    check_no_release(f);
    xml_buf_append_str(&f->log, "close\n");
}

/* In the releasing run, tries a release after a piece when `want`; a
 * successful one must not succeed twice. */
static void maybe_release(fuzz_state *f, bool want)
{
    if (f->releasing && want && xml_parser_release(f->p))
        FUZZ_CHECK(!xml_parser_release(f->p));
}

static xml_error feed_split(fuzz_state *f, const uint8_t *data, size_t size)
{
    /* split points from an FNV-1a hash of the input */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    const char *s = (const char *)data;
    if ((h & 7) == 0) { /* byte by byte, releasing after a hash-chosen third */
        for (size_t i = 0; i < size; i++) {
            xml_error e = xml_parser_feed(f->p, s + i, 1);
            if (e != XML_OK)
                return e;
            maybe_release(f, (h >> (i % 29)) % 3 == 0);
        }
        return XML_OK;
    }
    if ((h & 7) == 1) { /* after every '>' and white space: stanza boundaries */
        size_t start = 0;
        for (size_t i = 0; i < size; i++) {
            char c = s[i];
            if (c != '>' && c != ' ' && c != '\n' && c != '\t' && c != '\r' && i + 1 < size)
                continue;
            xml_error e = xml_parser_feed(f->p, s + start, i + 1 - start);
            if (e != XML_OK)
                return e;
            start = i + 1;
            maybe_release(f, true);
        }
        return XML_OK;
    }
    size_t cut[4] = {0, (h >> 3) % (size + 1), (h >> 17) % (size + 1), size};
    if (cut[1] > cut[2]) {
        size_t t = cut[1];
        cut[1] = cut[2];
        cut[2] = t;
    }
    xml_error e = XML_OK;
    maybe_release(f, (h >> 30) & 1);
    for (int i = 0; i < 3 && e == XML_OK; i++) {
        e = xml_parser_feed(f->p, s + cut[i], cut[i + 1] - cut[i]);
        maybe_release(f, e == XML_OK);
    }
    return e;
}

/* One run over the input; the caller frees f->log. */
static xml_error run(fuzz_state *f, const uint8_t *data, size_t size, bool releasing)
{
    xml_limits lim = {FUZZ_MAX_BYTES, FUZZ_MAX_DEPTH, FUZZ_MAX_ATTRS};
    xml_parser_callbacks cb = {on_open, on_stanza, on_close};
    *f = (fuzz_state){0};
    f->releasing = releasing;
    f->p = xml_parser_new(&lim, &cb, f);
    if (!f->p)
        return XML_ERR_NO_MEMORY;
    xml_error e = feed_split(f, data, size);
    FUZZ_CHECK(xml_error_condition(e) != NULL);
    if (e != XML_OK) { /* a failed parser stays failed, and is not released */
        FUZZ_CHECK(!xml_parser_release(f->p));
        FUZZ_CHECK(xml_parser_feed(f->p, "<a/>", 4) == e);
    }
    xml_buf_append_str(&f->log, "end\n");
    /* and once more on a reset parser, all in one piece */
    xml_parser_reset(f->p);
    if (releasing) /* nothing fed since the reset */
        FUZZ_CHECK(xml_parser_release(f->p));
    xml_error e2 = xml_parser_feed(f->p, (const char *)data, size);
    if (releasing)
        maybe_release(f, true);
    xml_parser_free(f->p);
    free(f->default_ns);
    f->default_ns = NULL;
    char code[32];
    snprintf(code, sizeof code, "error %d %d\n", (int)e, (int)e2);
    xml_buf_append_str(&f->log, code);
    return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_state plain, rel;
    run(&plain, data, size, false);
    run(&rel, data, size, true);
    if (!plain.log.failed && !rel.log.failed) {
        const char *a = plain.log.data ? plain.log.data : "";
        const char *b = rel.log.data ? rel.log.data : "";
        if (strcmp(a, b) != 0)
            fprintf(stderr, "fuzz_xml: releasing changed the result:\n%s----\n%s", a, b);
        FUZZ_CHECK(strcmp(a, b) == 0);
    }
    xml_buf_free(&plain.log);
    xml_buf_free(&rel.log);
    return 0;
}
