/* xml.c - XMPP's XML (RFC 6120 section 4 streams, section 11 restrictions):
 * a streaming parser over expat, the stanza tree and its serializer.
 *
 * Each xml_parser owns one expat parser, the stanza being built and its
 * pending text; a finished stanza is handed to the stanza callback, which
 * then owns it.  Between stanzas, xml_parser_release frees expat (most of
 * an idle stream's memory); the next feed recreates it, replaying a
 * synthetic stream root that redeclares the stream's namespaces.  DTDs,
 * entity declarations, PIs and comments are refused (section 11.1); input
 * is UTF-8 only (section 11.6).  Size, depth and attribute limits are
 * checked on every expat event, before the tree grows.
 */
#include "xml.h"

#include <expat.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XML_NS_XML "http://www.w3.org/XML/1998/namespace"

/* Expat reports namespaced names as "uri" NS_SEP "local".  \x01 cannot occur
 * in an XML 1.0 document, so it cannot appear in a URI. */
#define NS_SEP '\x01'
#define NS_SEP_STR "\x01"
#define STREAM_ROOT XML_NS_STREAM NS_SEP_STR "stream"

/* Input is handed to expat at most this many bytes at a time.  Expat copies
 * every chunk into its own buffer (keeping up to 1 KiB of context), so the
 * chunk size sets the size that buffer settles at on an ordinary stream:
 * 2 KiB with 1 KiB chunks, 8 KiB with 4 KiB chunks (it never shrinks). */
#define FEED_CHUNK 1024

/* The implicit stream root of a framed parser: each message then parses as
 * a child of a jabber:client stream, so a stanza without xmlns is in
 * jabber:client and the stream prefix is bound, as on a TCP stream. */
#define FRAMED_ROOT "<stream:stream xmlns='" XML_NS_CLIENT "' xmlns:stream='" XML_NS_STREAM "'>"

/* ---- small helpers ---- */

static char *xml_mem_dup(const char *s, size_t len)
{
    char *d = malloc(len + 1);
    if (!d)
        return NULL;
    if (len)
        memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

static char *xml_str_dup(const char *s)
{
    return xml_mem_dup(s, strlen(s));
}

/* ---- buffer ---- */

/* Makes room for extra more bytes plus a NUL; false (and failed) on OOM. */
static bool xml_buf_reserve(xml_buf *buf, size_t extra)
{
    if (buf->failed)
        return false;
    if (extra > SIZE_MAX - buf->len - 1) {
        buf->failed = true;
        return false;
    }
    size_t need = buf->len + extra + 1;
    if (need <= buf->cap)
        return true;
    size_t cap = buf->cap ? buf->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *d = realloc(buf->data, cap);
    if (!d) {
        buf->failed = true;
        return false;
    }
    buf->data = d;
    buf->cap = cap;
    return true;
}

void xml_buf_append(xml_buf *buf, const char *data, size_t len)
{
    if (!xml_buf_reserve(buf, len))
        return;
    if (len)
        memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    buf->data[buf->len] = '\0'; /* data is kept NUL-terminated */
}

void xml_buf_append_str(xml_buf *buf, const char *s)
{
    xml_buf_append(buf, s, strlen(s));
}

/* Appends s escaping the characters for which esc() gives a replacement. */
static void xml_buf_append_mapped(xml_buf *buf, const char *s, size_t len,
                                  const char *(*esc)(char c))
{
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        const char *rep = esc(s[i]);
        if (!rep)
            continue;
        xml_buf_append(buf, s + run, i - run);
        xml_buf_append_str(buf, rep);
        run = i + 1;
    }
    xml_buf_append(buf, s + run, len - run);
}

static const char *xml_escape_basic(char c)
{
    switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '"': return "&quot;";
    case '\'': return "&apos;";
    default: return NULL;
    }
}

/* Text content: CR becomes a reference, or a reader would turn it into LF. */
static const char *xml_escape_text(char c)
{
    switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '\r': return "&#13;";
    default: return NULL;
    }
}

/* Attribute values: TAB, LF and CR as references, or a reader's attribute
 * value normalisation would turn them into spaces. */
static const char *xml_escape_attr(char c)
{
    switch (c) {
    case '\t': return "&#9;";
    case '\n': return "&#10;";
    case '\r': return "&#13;";
    default: return xml_escape_basic(c);
    }
}

void xml_buf_append_escaped(xml_buf *buf, const char *s, size_t len)
{
    xml_buf_append_mapped(buf, s, len, xml_escape_basic);
}

void xml_buf_reset(xml_buf *buf)
{
    buf->len = 0;
    buf->failed = false;
    if (buf->data)
        buf->data[0] = '\0';
}

void xml_buf_free(xml_buf *buf)
{
    free(buf->data);
    *buf = (xml_buf){0};
}

char *xml_escape(const char *s, size_t len)
{
    xml_buf buf = {0};
    xml_buf_reserve(&buf, len);
    xml_buf_append_escaped(&buf, s, len);
    if (buf.failed) {
        xml_buf_free(&buf);
        return NULL;
    }
    return buf.data; /* caller frees */
}

/* ---- tree ---- */

xml_node *xml_node_new(const char *name, const char *ns)
{
    if (!name)
        return NULL;
    xml_node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->type = XML_ELEMENT;
    n->name = xml_str_dup(name);
    n->ns = xml_str_dup(ns ? ns : "");
    if (!n->name || !n->ns) {
        xml_node_free(n);
        return NULL;
    }
    return n;
}

static xml_node *xml_text_new(const char *text, size_t len)
{
    xml_node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->type = XML_TEXT;
    n->text = xml_mem_dup(text, len);
    if (!n->text) {
        free(n);
        return NULL;
    }
    n->text_len = len;
    return n;
}

static void xml_node_free_one(xml_node *n)
{
    for (size_t i = 0; i < n->nattrs; i++) {
        free(n->attrs[i].name);
        free(n->attrs[i].value);
    }
    free(n->attrs);
    free(n->name);
    free(n->ns);
    free(n->text);
    free(n);
}

/* Iterative, so that no tree depth can exhaust the stack.  The node is
 * expected to be unlinked (a root, or removed from its parent first). */
void xml_node_free(xml_node *node)
{
    xml_node *n = node;
    while (n) {
        xml_node *c = n->children;
        if (c) {
            /* unlink the first child and descend into it */
            n->children = c->next;
            c->parent = n;
            n = c;
            continue;
        }
        xml_node *up = n == node ? NULL : n->parent;
        xml_node_free_one(n);
        n = up;
    }
}

xml_node *xml_node_clone(const xml_node *node)
{
    if (!node)
        return NULL;
    if (node->type == XML_TEXT)
        return xml_text_new(node->text ? node->text : "", node->text_len);
    xml_node *c = xml_node_new(node->name, node->ns);
    if (!c)
        return NULL;
    if (node->nattrs) {
        c->attrs = calloc(node->nattrs, sizeof *c->attrs);
        if (!c->attrs)
            goto fail;
        c->attrs_cap = node->nattrs;
        for (size_t i = 0; i < node->nattrs; i++) {
            c->attrs[i].name = xml_str_dup(node->attrs[i].name);
            c->attrs[i].value = xml_str_dup(node->attrs[i].value);
            c->nattrs++; /* counted at once so that a failure frees both */
            if (!c->attrs[i].name || !c->attrs[i].value)
                goto fail;
        }
    }
    for (const xml_node *k = node->children; k; k = k->next) {
        xml_node *kc = xml_node_clone(k);
        if (!kc)
            goto fail;
        xml_node_append(c, kc);
    }
    return c;
fail:
    xml_node_free(c);
    return NULL;
}

int xml_node_set_attr(xml_node *node, const char *name, const char *value)
{
    if (!node || !name || node->type != XML_ELEMENT)
        return -1;
    for (size_t i = 0; i < node->nattrs; i++) {
        if (strcmp(node->attrs[i].name, name) != 0)
            continue;
        if (!value) {
            free(node->attrs[i].name);
            free(node->attrs[i].value);
            memmove(&node->attrs[i], &node->attrs[i + 1],
                    (node->nattrs - i - 1) * sizeof *node->attrs);
            node->nattrs--;
            return 0;
        }
        char *v = xml_str_dup(value);
        if (!v)
            return -1;
        free(node->attrs[i].value);
        node->attrs[i].value = v;
        return 0;
    }
    if (!value)
        return 0;
    if (node->nattrs == node->attrs_cap) {
        size_t cap = node->attrs_cap ? node->attrs_cap * 2 : 4;
        xml_attr *a = realloc(node->attrs, cap * sizeof *a);
        if (!a)
            return -1;
        node->attrs = a;
        node->attrs_cap = cap;
    }
    char *n = xml_str_dup(name);
    char *v = xml_str_dup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return -1;
    }
    node->attrs[node->nattrs++] = (xml_attr){n, v};
    return 0;
}

const char *xml_node_attr(const xml_node *node, const char *name)
{
    if (!node || !name)
        return NULL;
    for (size_t i = 0; i < node->nattrs; i++)
        if (strcmp(node->attrs[i].name, name) == 0)
            return node->attrs[i].value;
    return NULL;
}

void xml_node_append(xml_node *parent, xml_node *child)
{
    child->parent = parent;
    child->next = NULL;
    if (parent->last)
        parent->last->next = child;
    else
        parent->children = child;
    parent->last = child;
}

xml_node *xml_node_add_child(xml_node *parent, const char *name, const char *ns)
{
    if (!parent || parent->type != XML_ELEMENT)
        return NULL;
    xml_node *c = xml_node_new(name, ns ? ns : parent->ns);
    if (c)
        xml_node_append(parent, c);
    return c;
}

void xml_node_remove(xml_node *parent, xml_node *child)
{
    xml_node *prev = NULL;
    for (xml_node *k = parent->children; k; prev = k, k = k->next) {
        if (k != child)
            continue;
        if (prev)
            prev->next = k->next;
        else
            parent->children = k->next;
        if (parent->last == k)
            parent->last = prev;
        k->parent = NULL;
        k->next = NULL;
        return;
    }
}

int xml_node_add_text(xml_node *parent, const char *text, size_t len)
{
    if (!parent || parent->type != XML_ELEMENT)
        return -1;
    xml_node *t = xml_text_new(text, len);
    if (!t)
        return -1;
    xml_node_append(parent, t);
    return 0;
}

static bool xml_node_matches(const xml_node *n, const char *name, const char *ns)
{
    return n->type == XML_ELEMENT && (!name || strcmp(n->name, name) == 0) &&
           (!ns || strcmp(n->ns, ns) == 0);
}

xml_node *xml_node_child(const xml_node *node, const char *name, const char *ns)
{
    if (!node)
        return NULL;
    for (xml_node *k = node->children; k; k = k->next)
        if (xml_node_matches(k, name, ns))
            return k;
    return NULL;
}

xml_node *xml_node_next(const xml_node *after, const char *name, const char *ns)
{
    if (!after)
        return NULL;
    for (xml_node *k = after->next; k; k = k->next)
        if (xml_node_matches(k, name, ns))
            return k;
    return NULL;
}

char *xml_node_text(const xml_node *node)
{
    size_t len = 0;
    for (const xml_node *k = node ? node->children : NULL; k; k = k->next)
        if (k->type == XML_TEXT)
            len += k->text_len;
    char *s = malloc(len + 1);
    if (!s)
        return NULL;
    size_t off = 0;
    for (const xml_node *k = node ? node->children : NULL; k; k = k->next) {
        if (k->type == XML_TEXT && k->text_len) {
            memcpy(s + off, k->text, k->text_len);
            off += k->text_len;
        }
    }
    s[off] = '\0';
    return s; /* caller frees */
}

char *xml_node_child_text(const xml_node *node, const char *name, const char *ns)
{
    xml_node *c = xml_node_child(node, name, ns);
    return c ? xml_node_text(c) : NULL;
}

/* ---- serialization ---- */

void xml_serialize(const xml_node *node, const char *parent_ns, xml_buf *buf)
{
    if (!node)
        return;
    if (node->type == XML_TEXT) {
        xml_buf_append_mapped(buf, node->text ? node->text : "", node->text_len, xml_escape_text);
        return;
    }
    if (!parent_ns)
        parent_ns = "";
    const char *ns = node->ns ? node->ns : "";
    /* The default namespace cannot be bound to the XML namespace, so an
     * element in it is the one case written with a prefix ("xml:"); the
     * default namespace in scope then stays the parent's. */
    bool xml_prefixed = strcmp(ns, XML_NS_XML) == 0;
    const char *scope = xml_prefixed ? parent_ns : ns;

    xml_buf_append_str(buf, xml_prefixed ? "<xml:" : "<");
    xml_buf_append_str(buf, node->name);
    if (!xml_prefixed && strcmp(ns, parent_ns) != 0) {
        xml_buf_append_str(buf, " xmlns=\"");
        xml_buf_append_mapped(buf, ns, strlen(ns), xml_escape_attr);
        xml_buf_append_str(buf, "\"");
    }
    for (size_t i = 0; i < node->nattrs; i++) {
        const char *name = node->attrs[i].name;
        const char *close = name[0] == '{' ? strrchr(name, '}') : NULL;
        if (close && close[1] != '\0') {
            /* "{uri}local": bound to a prefix declared on this element */
            const char *uri = name + 1;
            size_t urilen = (size_t)(close - uri);
            if (urilen == strlen(XML_NS_XML) && memcmp(uri, XML_NS_XML, urilen) == 0) {
                xml_buf_append_str(buf, " xml:");
            } else {
                char prefix[32];
                int n = snprintf(prefix, sizeof prefix, "ns%zu", i);
                xml_buf_append_str(buf, " xmlns:");
                xml_buf_append(buf, prefix, (size_t)n);
                xml_buf_append_str(buf, "=\"");
                xml_buf_append_mapped(buf, uri, urilen, xml_escape_attr);
                xml_buf_append_str(buf, "\" ");
                xml_buf_append(buf, prefix, (size_t)n);
                xml_buf_append_str(buf, ":");
            }
            xml_buf_append_str(buf, close + 1);
        } else {
            xml_buf_append_str(buf, " ");
            xml_buf_append_str(buf, name);
        }
        xml_buf_append_str(buf, "=\"");
        const char *v = node->attrs[i].value;
        xml_buf_append_mapped(buf, v, strlen(v), xml_escape_attr);
        xml_buf_append_str(buf, "\"");
    }
    if (!node->children) {
        xml_buf_append_str(buf, "/>");
        return;
    }
    xml_buf_append_str(buf, ">");
    for (const xml_node *k = node->children; k; k = k->next)
        xml_serialize(k, scope, buf);
    xml_buf_append_str(buf, xml_prefixed ? "</xml:" : "</");
    xml_buf_append_str(buf, node->name);
    xml_buf_append_str(buf, ">");
}

char *xml_to_string(const xml_node *node, const char *parent_ns)
{
    xml_buf buf = {0};
    xml_buf_reserve(&buf, 0);
    xml_serialize(node, parent_ns, &buf);
    if (buf.failed) {
        xml_buf_free(&buf);
        return NULL;
    }
    return buf.data; /* caller frees */
}

/* ---- streaming parser ---- */

/* Footprint, measured with glibc malloc on x86_64 and Debian's expat
 * 2.5.0-1+deb12u5: a new parser holds 3.2 KiB; an idle one that has read a
 * stream header and some stanzas 11 KiB (also after a 6 KB stanza), nearly
 * all of it expat's: three 512-byte hash tables, two 1 KiB string pools,
 * the 2 KiB input buffer, its struct and tag stack.  Nothing else stays
 * allocated between stanzas but this struct and root_tag.
 *
 * xml_parser_release frees expat between stanzas.  A released parser holds
 * 256 bytes of heap, malloc's chunk headers included: this struct (152
 * bytes) and root_tag (the synthetic root below) when the stream's header
 * declared other namespaces than the usual c2s header; one released before
 * the stream header, a framed one, or one whose root is the usual header
 * (all three rebuild from the constant FRAMED_ROOT), the struct alone (160
 * bytes with its chunk header).  The next feed recreates expat and parses root_tag through it
 * with the callbacks suppressed, which redeclares the stream's namespaces
 * and leaves expat inside the stream root, as before the release; after
 * one stanza it holds 10.3 KiB again, until the next release.  Measured
 * with 100k cycles of release + feed("<presence/>") at -O2 on a shared
 * 2-core AMD EPYC VM: 4-5 us per cycle, against 0.3 us for the feed alone.
 * That is mostly expat's creation (about twenty mallocs, and a getrandom()
 * system call of some 0.5 us for its hash salt). */
struct xml_parser {
    XML_Parser xp; /* owned; NULL after a failure or a release; recreated on reset */
    xml_limits limits;
    xml_parser_callbacks cb;
    void *ud;
    xml_error err;       /* sticky first error */
    unsigned depth;      /* open elements: 0 before the root, 1 in the stream, 2 in a stanza */
    unsigned ndecls;     /* namespace declarations of the start tag being reported */
    bool parsing;        /* inside XML_Parse, so callbacks are running */
    bool reset_pending;  /* xml_parser_reset was called from a callback */
    /* xml_parser_release freed xp; stays set during the rebuild until the
     * synthetic root has been parsed (the handlers ignore events till then) */
    bool released;
    bool in_cdata;       /* inside a CDATA section */
    /* RFC 7395 framing: the stream root is implicit (FRAMED_ROOT, fed at
     * creation), text between elements must be whitespace, and closing the
     * root is not well-formed */
    bool is_framed;
    /* The root's start tag is FRAMED_ROOT, the usual c2s header too: a
     * rebuild feeds that constant and root_tag keeps no copy */
    bool root_is_common;
    /* Byte offsets in expat's input since it was created: consumed is what
     * expat has been given; mark is where the current unit began (the stream
     * header, a stanza, or the unreported bytes after the last one).  A unit
     * may span at most max_stanza_bytes.  After a rebuild, expat's input
     * starts with root_tag, so both restart at its length: those bytes lie
     * before mark and count against no limit. */
    unsigned long long consumed;
    unsigned long long mark;
    char *default_ns; /* owned; the root's xmlns, kept until stream_open */
    /* Owned.  Before the root is reported, the namespace declarations seen
     * on it (" xmlns='u' xmlns:p='v'"); from then on, the synthetic root
     * start tag a rebuild feeds expat: the root's qualified name and those
     * declarations, e.g. "<stream:stream xmlns='jabber:client'
     * xmlns:stream='http://etherx.jabber.org/streams'>".  NULL before any
     * declaration, or when expat gave no input context to read the name
     * from (then the parser is never released inside a stream).  Always NULL
     * in a framed parser, and with root_is_common (see xml_parser_root_tag). */
    char *root_tag;
    xml_node *stanza; /* owned; the stanza being built */
    xml_node *cur;    /* borrowed; its innermost open element */
    xml_buf text;     /* owned; text not yet attached to cur */
};

/* Drops the stanza being built, any pending text and what the stream
 * remembered of its root (so a released parser is no longer released). */
static void xml_parser_drop_state(xml_parser *p)
{
    xml_node_free(p->stanza);
    p->stanza = NULL;
    p->cur = NULL;
    xml_buf_free(&p->text);
    free(p->default_ns);
    p->default_ns = NULL;
    free(p->root_tag);
    p->root_tag = NULL;
    p->released = false;
    p->in_cdata = false;
    p->root_is_common = false;
}

/* Records the first error and stops expat; only from inside a handler. */
static void xml_parser_fail(xml_parser *p, xml_error err)
{
    if (p->err != XML_OK)
        return;
    p->err = err;
    XML_StopParser(p->xp, XML_FALSE);
}

/* Handlers do nothing once parsing is to end (expat may still deliver an
 * event or two after XML_StopParser). */
static bool xml_parser_halted(const xml_parser *p)
{
    return p->err != XML_OK || p->reset_pending;
}

/* Offset just past the event being reported. */
static unsigned long long xml_parser_event_end(const xml_parser *p)
{
    XML_Index at = XML_GetCurrentByteIndex(p->xp);
    int count = XML_GetCurrentByteCount(p->xp);
    return (unsigned long long)(at < 0 ? 0 : at) + (unsigned long long)(count < 0 ? 0 : count);
}

/* The current unit must not extend past max_stanza_bytes. */
static bool xml_parser_check_size(xml_parser *p)
{
    if (xml_parser_event_end(p) - p->mark > p->limits.max_stanza_bytes) {
        xml_parser_fail(p, XML_ERR_TOO_BIG);
        return false;
    }
    return true;
}

/* Converts an expat attribute name to the stored form (see xml.h); caller
 * frees. */
static char *xml_attr_name_from_expat(const char *name)
{
    const char *sep = strrchr(name, NS_SEP);
    if (!sep)
        return xml_str_dup(name);
    size_t urilen = (size_t)(sep - name);
    const char *local = sep + 1;
    size_t locallen = strlen(local);
    if (urilen == strlen(XML_NS_XML) && memcmp(name, XML_NS_XML, urilen) == 0) {
        char *s = malloc(4 + locallen + 1);
        if (s) {
            memcpy(s, "xml:", 4);
            memcpy(s + 4, local, locallen + 1);
        }
        return s;
    }
    char *s = malloc(urilen + locallen + 3);
    if (s) {
        s[0] = '{';
        memcpy(s + 1, name, urilen);
        s[urilen + 1] = '}';
        memcpy(s + urilen + 2, local, locallen + 1);
    }
    return s;
}

static xml_node *xml_node_from_expat(const char *name, const char **atts, size_t nattrs)
{
    xml_node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->type = XML_ELEMENT;
    const char *sep = strrchr(name, NS_SEP);
    if (sep) {
        n->ns = xml_mem_dup(name, (size_t)(sep - name));
        n->name = xml_str_dup(sep + 1);
    } else {
        n->ns = xml_str_dup("");
        n->name = xml_str_dup(name);
    }
    if (!n->ns || !n->name)
        goto fail;
    if (nattrs) {
        n->attrs = calloc(nattrs, sizeof *n->attrs);
        if (!n->attrs)
            goto fail;
        n->attrs_cap = nattrs;
        for (size_t i = 0; i < nattrs; i++) {
            n->attrs[i].name = xml_attr_name_from_expat(atts[2 * i]);
            n->attrs[i].value = xml_str_dup(atts[2 * i + 1]);
            n->nattrs++;
            if (!n->attrs[i].name || !n->attrs[i].value)
                goto fail;
        }
    }
    return n;
fail:
    xml_node_free(n);
    return NULL;
}

/* Moves pending text into a text node under cur. */
static bool xml_parser_flush_text(xml_parser *p)
{
    if (p->text.len == 0)
        return true;
    xml_node *t = calloc(1, sizeof *t);
    if (!t) {
        xml_parser_fail(p, XML_ERR_NO_MEMORY);
        return false;
    }
    t->type = XML_TEXT;
    t->text_len = p->text.len;
    t->text = realloc(p->text.data, p->text.len + 1); /* shrink to fit */
    if (!t->text)
        t->text = p->text.data;
    p->text = (xml_buf){0}; /* the node owns the bytes now */
    xml_node_append(p->cur, t);
    return true;
}

/* Appends one namespace declaration of the root to root_tag, in the form
 * it takes in the synthetic root: " xmlns='uri'" or " xmlns:prefix='uri'"
 * (uri NULL: the undeclaration xmlns='').  False when out of memory. */
static bool xml_parser_note_root_decl(xml_parser *p, const XML_Char *prefix, const XML_Char *uri)
{
    size_t len = p->root_tag ? strlen(p->root_tag) : 0;
    xml_buf b = {p->root_tag, len, p->root_tag ? len + 1 : 0, false};
    xml_buf_append_str(&b, prefix ? " xmlns:" : " xmlns");
    if (prefix)
        xml_buf_append_str(&b, prefix);
    xml_buf_append_str(&b, "='");
    if (uri) /* as an attribute value that reads back the same (TAB, CR, LF too) */
        xml_buf_append_mapped(&b, uri, strlen(uri), xml_escape_attr);
    xml_buf_append_str(&b, "'");
    p->root_tag = b.data; /* still owned there when an append failed */
    return !b.failed;
}

static void XMLCALL xml_on_ns_decl(void *ud, const XML_Char *prefix, const XML_Char *uri)
{
    xml_parser *p = ud;
    if (xml_parser_halted(p) || p->released)
        return;
    p->ndecls++;
    if (p->depth != 0 || p->is_framed) /* a framed root is FRAMED_ROOT: nothing to note */
        return;
    if (!xml_parser_note_root_decl(p, prefix, uri)) {
        xml_parser_fail(p, XML_ERR_NO_MEMORY);
        return;
    }
    if (!prefix && !p->default_ns) {
        p->default_ns = xml_str_dup(uri ? uri : "");
        if (!p->default_ns)
            xml_parser_fail(p, XML_ERR_NO_MEMORY);
    }
}

/* Turns the root's declarations in root_tag into the synthetic root start
 * tag, with the qualified name the peer used (its end tag must match it).
 * expat reports names by namespace, not prefix, so the name is read from
 * the raw start tag being reported.  Without that input (an expat built
 * without XML_CONTEXT_BYTES) root_tag is dropped, so no release happens in
 * this stream.  False when out of memory. */
static bool xml_parser_finish_root_tag(xml_parser *p)
{
    int off = 0, size = 0;
    const char *in = XML_GetInputContext(p->xp, &off, &size);
    int count = XML_GetCurrentByteCount(p->xp);
    const char *name = NULL;
    size_t namelen = 0;
    if (in && off >= 0 && count > 1 && off <= size && count <= size - off && in[off] == '<') {
        name = in + off + 1;
        const char *end = in + off + count;
        while (name + namelen < end && !strchr(" \t\r\n/>", name[namelen]))
            namelen++;
        /* the root was checked to be {XML_NS_STREAM}stream: [prefix:]stream */
        bool ok = namelen == 6 || (namelen > 7 && name[namelen - 7] == ':');
        if (!ok || memcmp(name + namelen - 6, "stream", 6) != 0)
            name = NULL;
    }
    if (!name) {
        free(p->root_tag);
        p->root_tag = NULL;
        return true;
    }
    size_t declslen = p->root_tag ? strlen(p->root_tag) : 0;
    char *tag = malloc(namelen + declslen + 3);
    if (!tag)
        return false;
    tag[0] = '<';
    memcpy(tag + 1, name, namelen);
    if (declslen)
        memcpy(tag + 1 + namelen, p->root_tag, declslen);
    memcpy(tag + 1 + namelen + declslen, ">", 2);
    free(p->root_tag);
    p->root_tag = tag;
    if (strcmp(tag, FRAMED_ROOT) == 0) { /* nearly every client's: kept once, not per stream */
        free(p->root_tag);
        p->root_tag = NULL;
        p->root_is_common = true;
    }
    return true;
}

static void xml_parser_open_stream(xml_parser *p, const XML_Char *name, const XML_Char **atts,
                                   size_t nattrs)
{
    if (strcmp(name, STREAM_ROOT) != 0) {
        xml_parser_fail(p, XML_ERR_BAD_NAMESPACE);
        return;
    }
    if (!p->is_framed && !xml_parser_finish_root_tag(p)) {
        xml_parser_fail(p, XML_ERR_NO_MEMORY);
        return;
    }
    /* attribute names in the stored form, borrowed by the callback */
    const char **list = calloc(2 * nattrs + 1, sizeof *list);
    if (!list) {
        xml_parser_fail(p, XML_ERR_NO_MEMORY);
        return;
    }
    size_t i;
    for (i = 0; i < nattrs; i++) {
        list[2 * i] = xml_attr_name_from_expat(atts[2 * i]);
        list[2 * i + 1] = atts[2 * i + 1];
        if (!list[2 * i])
            break;
    }
    p->depth = 1;
    p->mark = xml_parser_event_end(p);
    if (i < nattrs) {
        xml_parser_fail(p, XML_ERR_NO_MEMORY);
    } else if (p->cb.stream_open && !p->is_framed) {
        char *default_ns = p->default_ns; /* freed here, after the call */
        p->default_ns = NULL;
        p->cb.stream_open(p->ud, list, default_ns ? default_ns : "");
        free(default_ns);
    }
    for (size_t k = 0; k < i; k++)
        free((char *)list[2 * k]);
    free(list);
    free(p->default_ns);
    p->default_ns = NULL;
}

static void XMLCALL xml_on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    xml_parser *p = ud;
    if (xml_parser_halted(p))
        return;
    if (p->released) { /* the synthetic root of a rebuild: back in the stream */
        p->released = false;
        p->ndecls = 0;
        return;
    }
    unsigned ndecls = p->ndecls;
    p->ndecls = 0;
    if (!xml_parser_check_size(p))
        return;
    size_t nattrs = 0;
    while (atts[2 * nattrs])
        nattrs++;
    /* namespace declarations are attributes too (and cost expat memory) */
    if (nattrs + ndecls > p->limits.max_attrs) {
        xml_parser_fail(p, XML_ERR_TOO_MANY_ATTRS);
        return;
    }
    if (p->depth == 0) {
        xml_parser_open_stream(p, name, atts, nattrs);
        return;
    }
    if (p->depth > p->limits.max_depth) { /* the new element's depth is p->depth */
        xml_parser_fail(p, XML_ERR_TOO_DEEP);
        return;
    }
    if (p->depth == 1) {
        XML_Index at = XML_GetCurrentByteIndex(p->xp);
        p->mark = (unsigned long long)(at < 0 ? 0 : at);
    } else if (!xml_parser_flush_text(p)) {
        return;
    }
    xml_node *n = xml_node_from_expat(name, atts, nattrs);
    if (!n) {
        xml_parser_fail(p, XML_ERR_NO_MEMORY);
        return;
    }
    if (p->cur)
        xml_node_append(p->cur, n);
    else
        p->stanza = n;
    p->cur = n;
    p->depth++;
}

static void XMLCALL xml_on_end(void *ud, const XML_Char *name)
{
    xml_parser *p = ud;
    if (xml_parser_halted(p))
        return;
    if (p->depth == 1) { /* </stream:stream> */
        if (p->is_framed) { /* the root is implicit: nothing to close */
            xml_parser_fail(p, XML_ERR_NOT_WELL_FORMED);
            return;
        }
        p->depth = 0;
        p->mark = xml_parser_event_end(p);
        if (p->cb.stream_close)
            p->cb.stream_close(p->ud);
        return;
    }
    if (!xml_parser_check_size(p) || !xml_parser_flush_text(p))
        return;
    p->cur = p->cur->parent;
    p->depth--;
    if (p->depth > 1)
        return;
    xml_node *stanza = p->stanza; /* ownership moves to the callback */
    p->stanza = NULL;
    p->cur = NULL;
    p->mark = xml_parser_event_end(p);
    if (p->cb.stanza)
        p->cb.stanza(p->ud, stanza);
    else
        xml_node_free(stanza);
}

static void XMLCALL xml_on_text(void *ud, const XML_Char *s, int len)
{
    xml_parser *p = ud;
    if (xml_parser_halted(p))
        return;
    if (p->depth < 2) {
        /* between stanzas: whitespace keepalives (or stray text), ignored;
         * framed, only whitespace may stand beside the element */
        for (int i = 0; p->is_framed && i < len; i++) {
            if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') {
                xml_parser_fail(p, XML_ERR_NOT_WELL_FORMED);
                return;
            }
        }
        p->mark = xml_parser_event_end(p);
        return;
    }
    if (!xml_parser_check_size(p))
        return;
    xml_buf_append(&p->text, s, (size_t)len);
    if (p->text.failed)
        xml_parser_fail(p, XML_ERR_NO_MEMORY);
}

static void XMLCALL xml_on_cdata_start(void *ud)
{
    xml_parser *p = ud;
    p->in_cdata = true;
}

static void XMLCALL xml_on_cdata_end(void *ud)
{
    xml_parser *p = ud;
    p->in_cdata = false;
    if (!xml_parser_halted(p) && p->depth < 2)
        p->mark = xml_parser_event_end(p); /* "]]>" between stanzas */
}

static void XMLCALL xml_on_comment(void *ud, const XML_Char *data)
{
    xml_parser_fail(ud, XML_ERR_RESTRICTED);
}

static void XMLCALL xml_on_pi(void *ud, const XML_Char *target, const XML_Char *data)
{
    xml_parser_fail(ud, XML_ERR_RESTRICTED);
}

static void XMLCALL xml_on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                                   const XML_Char *pubid, int has_internal_subset)
{
    xml_parser_fail(ud, XML_ERR_RESTRICTED);
}

static void XMLCALL xml_on_entity_decl(void *ud, const XML_Char *name, int is_param,
                                       const XML_Char *value, int value_len,
                                       const XML_Char *base, const XML_Char *sysid,
                                       const XML_Char *pubid, const XML_Char *notation)
{
    xml_parser_fail(ud, XML_ERR_RESTRICTED);
}

/* Installs onair's handlers and settings on a new or reset expat parser. */
static XML_Parser xml_parser_setup_expat(xml_parser *p, XML_Parser xp)
{
    XML_SetUserData(xp, p);
    XML_SetElementHandler(xp, xml_on_start, xml_on_end);
    XML_SetCharacterDataHandler(xp, xml_on_text);
    XML_SetStartNamespaceDeclHandler(xp, xml_on_ns_decl);
    XML_SetCdataSectionHandler(xp, xml_on_cdata_start, xml_on_cdata_end);
    XML_SetCommentHandler(xp, xml_on_comment);
    XML_SetProcessingInstructionHandler(xp, xml_on_pi);
    XML_SetStartDoctypeDeclHandler(xp, xml_on_doctype);
    XML_SetEntityDeclHandler(xp, xml_on_entity_decl);
    /* Report every complete token at once: a stanza must not wait for more
     * input (and the size limit assumes it does not).  Declared by Debian's
     * expat 2.5.0 (backport of 2.6.0's CVE-2023-52425 fix); older builds
     * never defer. */
#ifdef ONAIR_HAVE_REPARSE_DEFERRAL
    XML_SetReparseDeferralEnabled(xp, XML_FALSE);
#endif
    /* A random hash salt from OpenSSL's user-space generator: as strong
     * against hash flooding as expat's own, without the getrandom() system
     * call expat would make for every parser (several per login). */
    unsigned long salt = 0;
    while (salt == 0 && RAND_bytes((unsigned char *)&salt, sizeof salt) == 1)
        ;
    if (salt)
        XML_SetHashSalt(xp, salt);
    return xp;
}

static XML_Parser xml_parser_create_expat(xml_parser *p)
{
    /* The encoding passed here overrides any in the XML declaration. */
    XML_Parser xp = XML_ParserCreateNS("UTF-8", NS_SEP);
    return xp ? xml_parser_setup_expat(p, xp) : NULL;
}

xml_parser *xml_parser_new(const xml_limits *limits, const xml_parser_callbacks *cb, void *ud)
{
    xml_parser *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->limits = *limits;
    if (cb)
        p->cb = *cb;
    p->ud = ud;
    p->xp = xml_parser_create_expat(p);
    if (!p->xp) {
        free(p);
        return NULL;
    }
    return p;
}

/* The synthetic root start tag a rebuild feeds expat, NULL for none: a
 * framed parser's is its implicit root, and so is that of a stream whose
 * header declared just what the implicit root declares (nearly every
 * client's); both are the same for every stream, so the parser keeps no
 * copy of its own (one allocation less per idle stream, in a size class
 * that a login's short-lived buffers use a lot). */
static const char *xml_parser_root_tag(const xml_parser *p)
{
    return p->is_framed || p->root_is_common ? FRAMED_ROOT : p->root_tag;
}

/* Feeds a framed parser its implicit root, as if the peer had sent it;
 * false (err set) when out of memory. */
static bool xml_parser_prime(xml_parser *p)
{
    static const char root[] = FRAMED_ROOT;
    size_t max = p->limits.max_stanza_bytes; /* our own root counts against no limit */
    p->limits.max_stanza_bytes = sizeof root;
    p->parsing = true;
    enum XML_Status st = XML_Parse(p->xp, root, (int)sizeof root - 1, XML_FALSE);
    p->parsing = false;
    p->limits.max_stanza_bytes = max;
    if (p->err == XML_OK && (st != XML_STATUS_OK || p->depth != 1))
        p->err = XML_ERR_NO_MEMORY; /* expat refusing our own root: out of memory */
    p->consumed = sizeof root - 1;
    return p->err == XML_OK;
}

xml_parser *xml_parser_new_framed(const xml_limits *limits, const xml_parser_callbacks *cb, void *ud)
{
    xml_parser *p = xml_parser_new(limits, cb, ud);
    if (!p)
        return NULL;
    p->is_framed = true;
    if (!xml_parser_prime(p)) {
        xml_parser_free(p);
        return NULL;
    }
    return p;
}

bool xml_parser_is_between_elements(const xml_parser *p)
{
    return p->err == XML_OK && !p->reset_pending && (p->released || (p->depth == 1 && !p->stanza));
}

/* Must not be called from a callback. */
void xml_parser_free(xml_parser *p)
{
    if (!p)
        return;
    xml_parser_drop_state(p);
    if (p->xp)
        XML_ParserFree(p->xp);
    free(p);
}

/* Starts expat on a new stream.  A live parser is reset in place
 * (XML_ParserReset keeps its buffers: a stream restart after STARTTLS or
 * SASL costs no allocation); idle streams give the memory back through
 * xml_parser_release. */
static void xml_parser_restart(xml_parser *p)
{
    xml_parser_drop_state(p);
    if (p->xp && XML_ParserReset(p->xp, "UTF-8")) {
        xml_parser_setup_expat(p, p->xp);
    } else {
        if (p->xp)
            XML_ParserFree(p->xp);
        p->xp = xml_parser_create_expat(p);
    }
    p->err = p->xp ? XML_OK : XML_ERR_NO_MEMORY;
    p->depth = 0;
    p->ndecls = 0;
    p->reset_pending = false;
    p->consumed = 0;
    p->mark = 0;
    if (p->is_framed && p->xp)
        xml_parser_prime(p);
}

/* Recreates expat after a release and, inside a stream, feeds it root_tag
 * (the handlers ignore it while released is set), so that it stands where
 * the old one stood.  False with err set (XML_ERR_NO_MEMORY) on failure. */
static bool xml_parser_rebuild(xml_parser *p)
{
    p->xp = xml_parser_create_expat(p);
    if (!p->xp) {
        p->err = XML_ERR_NO_MEMORY;
        return false;
    }
    const char *root = xml_parser_root_tag(p);
    if (!root) { /* released before the first byte of the stream */
        p->released = false;
        return true;
    }
    size_t n = strlen(root);
    p->parsing = true;
    enum XML_Status st = XML_Parse(p->xp, root, (int)n, XML_FALSE);
    p->parsing = false;
    if (p->err != XML_OK)
        return false;
    if (st != XML_STATUS_OK || p->released || p->depth != 1) {
        /* out of memory, or expat refusing a root it once took (never
         * seen): an internal error either way */
        p->err = XML_ERR_NO_MEMORY;
        return false;
    }
    p->consumed = n;
    p->mark = n;
    return true;
}

/* Ends the parse after an error: frees what was being built, and expat
 * itself, since a failed stream is only ever closed. */
static xml_error xml_parser_failed(xml_parser *p)
{
    xml_parser_drop_state(p);
    p->reset_pending = false;
    if (p->xp) {
        XML_ParserFree(p->xp);
        p->xp = NULL;
    }
    return p->err;
}

static xml_error xml_error_from_expat(enum XML_Error code)
{
    switch (code) {
    case XML_ERROR_NO_MEMORY:
        return XML_ERR_NO_MEMORY;
    case XML_ERROR_ABORTED: /* only we stop it, and then err is set */
        return XML_ERR_STOPPED;
    default:
        /* syntax, unbound prefixes, bad UTF-8, undefined entities, ... */
        return XML_ERR_NOT_WELL_FORMED;
    }
}

/* Length of the prefix of s free of bytes that UTF-8 XML cannot contain
 * (NUL, 0xFE, 0xFF).  RFC 6120 section 11.6 allows UTF-8 only, yet expat
 * switches to UTF-16 on a byte order mark or on NUL bytes at the start,
 * whatever encoding it was created with; refusing these bytes prevents it. */
static size_t xml_utf8_prefix(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0 || c >= 0xFE)
            return i;
    }
    return n;
}

/* Not reentrant: callbacks must not call feed (or free the parser). */
xml_error xml_parser_feed(xml_parser *p, const char *data, size_t len)
{
    if (p->err != XML_OK)
        return p->err;
    if (p->released && len > 0 && !xml_parser_rebuild(p))
        return xml_parser_failed(p);
    size_t max = p->limits.max_stanza_bytes;
    while (len > 0) {
        /* Never give expat more than one byte beyond what the current unit
         * may still take: a unit still open after that is over the limit.
         * The invariant pending <= max holds between chunks. */
        unsigned long long pending = p->consumed - p->mark;
        size_t n = len < FEED_CHUNK ? len : FEED_CHUNK;
        if ((unsigned long long)max - pending < n)
            n = (size_t)(max - pending) + 1;
        size_t good = xml_utf8_prefix(data, n);
        bool bad_byte = good < n; /* parse what precedes it, then fail */
        n = good;
        enum XML_Status st = XML_STATUS_OK;
        if (n > 0) {
            p->parsing = true;
            st = XML_Parse(p->xp, data, (int)n, XML_FALSE);
            p->parsing = false;
        }
        p->consumed += n;
        data += n;
        len -= n;
        if (p->err != XML_OK)
            return xml_parser_failed(p);
        if (p->reset_pending) {
            xml_parser_restart(p); /* the rest of this buffer is dropped */
            return p->err;
        }
        if (st != XML_STATUS_OK) {
            p->err = xml_error_from_expat(XML_GetErrorCode(p->xp));
            return xml_parser_failed(p);
        }
        if (p->consumed - p->mark > max) {
            p->err = XML_ERR_TOO_BIG;
            return xml_parser_failed(p);
        }
        if (bad_byte) {
            p->err = XML_ERR_NOT_WELL_FORMED;
            return xml_parser_failed(p);
        }
    }
    return XML_OK;
}

void xml_parser_reset(xml_parser *p)
{
    if (!p->parsing) {
        xml_parser_restart(p);
        return;
    }
    if (!xml_parser_halted(p)) {
        p->reset_pending = true;
        XML_StopParser(p->xp, XML_FALSE);
    }
}

bool xml_parser_release(xml_parser *p)
{
    if (!p->xp || p->err != XML_OK || p->parsing || p->reset_pending || p->in_cdata)
        return false;
    /* everything given to expat has been reported (consumed == mark): it
     * holds no partial token.  Inside the stream that leaves only the
     * namespaces in scope, which root_tag restores; before the root, nothing
     * has been fed since the parser was created or reset. */
    bool in_stream = p->depth == 1 && xml_parser_root_tag(p) && !p->stanza;
    bool before_root = p->depth == 0 && p->consumed == 0;
    if (!(in_stream || before_root) || p->consumed != p->mark)
        return false;
    XML_ParserFree(p->xp);
    p->xp = NULL;
    p->released = true;
    return true;
}

void xml_parser_stop(xml_parser *p)
{
    if (p->parsing) {
        xml_parser_fail(p, XML_ERR_STOPPED);
    } else if (p->err == XML_OK) {
        p->err = XML_ERR_STOPPED;
        xml_parser_failed(p);
    }
}

const char *xml_error_condition(xml_error err)
{
    switch (err) {
    case XML_ERR_NOT_WELL_FORMED: return "not-well-formed";
    case XML_ERR_RESTRICTED: return "restricted-xml";
    case XML_ERR_TOO_BIG:
    case XML_ERR_TOO_DEEP:
    case XML_ERR_TOO_MANY_ATTRS: return "policy-violation";
    case XML_ERR_BAD_NAMESPACE: return "invalid-namespace";
    case XML_ERR_NO_MEMORY:
    case XML_ERR_STOPPED: return "internal-server-error";
    case XML_OK:
    default: return "undefined-condition";
    }
}

/* ---- one element from a string ---- */

typedef struct parse_one {
    xml_node *node;
    size_t count;
} parse_one;

static void one_open(void *ud, const char **attrs, const char *default_ns)
{
    (void)ud;
    (void)attrs;
    (void)default_ns;
}

static void one_stanza(void *ud, xml_node *stanza)
{
    parse_one *po = ud;
    if (po->count++ == 0)
        po->node = stanza;
    else
        xml_node_free(stanza);
}

static void one_close(void *ud)
{
    (void)ud;
}

int xml_parse_element(const char *text, size_t len, const xml_limits *limits, xml_node **out)
{
    static const char head[] = "<s:stream xmlns='jabber:client' xmlns:s='" XML_NS_STREAM "'>";
    static const char tail[] = "</s:stream>";
    static const xml_parser_callbacks cb = {one_open, one_stanza, one_close};
    *out = NULL;
    parse_one po = {NULL, 0};
    xml_parser *p = xml_parser_new(limits, &cb, &po);
    if (!p)
        return XML_ERR_NO_MEMORY;
    xml_error err = xml_parser_feed(p, head, sizeof head - 1);
    if (err == XML_OK)
        err = xml_parser_feed(p, text, len);
    if (err == XML_OK)
        err = xml_parser_feed(p, tail, sizeof tail - 1);
    xml_parser_free(p);
    if (err == XML_OK && po.count != 1)
        err = XML_ERR_NOT_WELL_FORMED;
    if (err != XML_OK) {
        xml_node_free(po.node);
        return err;
    }
    *out = po.node;
    return XML_OK;
}
