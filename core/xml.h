/* xml.h - XMPP's XML: a streaming parser over expat, a small stanza tree and
 * one serializer.
 *
 * The parser reads one XML stream (RFC 6120 section 4): it reports the stream
 * header, then each complete top-level child (a "stanza": message, presence,
 * iq, or any stream-level element such as <starttls/> or <auth/>) as a tree,
 * then the stream end.  Limits (stanza bytes, nesting depth, attributes per
 * element) are enforced while parsing, before allocation grows.  DTDs, entity
 * declarations, processing instructions and comments are refused
 * (restricted-xml).  The parser never calls back after it has failed.
 *
 * Namespaces: every element carries its namespace URI in `ns` (never NULL:
 * "" for none).  The serializer writes xmlns="..." only where an element's
 * namespace differs from its parent's, so stanzas round-trip in the stream's
 * default namespace.  Attributes are stored by qualified name as they appear
 * after namespace processing: unprefixed names as is, "xml:lang" for the
 * XML namespace; other namespaced attributes as "{uri}local".
 */
#ifndef ONAIR_XML_H
#define ONAIR_XML_H

#include <stdbool.h>
#include <stddef.h>

#define XML_NS_STREAM "http://etherx.jabber.org/streams"
#define XML_NS_CLIENT "jabber:client"
#define XML_NS_SERVER "jabber:server"

typedef enum xml_node_type { XML_ELEMENT = 0, XML_TEXT = 1 } xml_node_type;

typedef struct xml_attr {
    char *name;  /* owned */
    char *value; /* owned, unescaped */
} xml_attr;

/* A node of a stanza tree.  Every node owns its strings, attributes and
 * children; freeing the root frees the tree.  Trees are not shared: clone
 * one to keep it beyond the call that lends it to you. */
typedef struct xml_node {
    xml_node_type type;
    char *name;            /* element local name (owned); NULL for text */
    char *ns;              /* element namespace URI (owned, "" if none); NULL for text */
    char *text;            /* text content (owned, unescaped); NULL for elements */
    size_t text_len;
    xml_attr *attrs;       /* owned array of nattrs */
    size_t nattrs;
    size_t attrs_cap;
    struct xml_node *parent;   /* borrowed back pointer */
    struct xml_node *children; /* first child (owned) */
    struct xml_node *last;     /* last child (borrowed) */
    struct xml_node *next;     /* next sibling (owned by the parent's list) */
} xml_node;

/* ---- tree building and reading ---- */

/* Returns a new element (caller owns; free with xml_node_free), or NULL when
 * out of memory.  ns may be NULL (meaning ""). */
xml_node *xml_node_new(const char *name, const char *ns);
void xml_node_free(xml_node *node);
/* Deep copy; caller owns the copy. */
xml_node *xml_node_clone(const xml_node *node);

/* Sets (replacing) or, with value NULL, removes an attribute.  Returns 0, or
 * -1 when out of memory. */
int xml_node_set_attr(xml_node *node, const char *name, const char *value);
/* Borrowed pointer to the value, valid until the attribute changes; NULL if absent. */
const char *xml_node_attr(const xml_node *node, const char *name);

/* Creates a child element appended to parent and returns it (owned by
 * parent).  ns NULL inherits the parent's namespace. */
xml_node *xml_node_add_child(xml_node *parent, const char *name, const char *ns);
/* Appends an existing node (ownership moves to parent). */
void xml_node_append(xml_node *parent, xml_node *child);
/* Unlinks child from its parent; the caller then owns it. */
void xml_node_remove(xml_node *parent, xml_node *child);
/* Appends text (copied) as a text child.  Returns 0 or -1. */
int xml_node_add_text(xml_node *parent, const char *text, size_t len);

/* First child element with that name and namespace (either may be NULL for
 * "any"); borrowed. */
xml_node *xml_node_child(const xml_node *node, const char *name, const char *ns);
/* Next sibling element after `after` matching name/ns (NULL = any). */
xml_node *xml_node_next(const xml_node *after, const char *name, const char *ns);
/* Concatenated text of the node's direct text children; caller frees. */
char *xml_node_text(const xml_node *node);
/* Text of child `name` in `ns` (NULL = any), caller frees; NULL if no such child. */
char *xml_node_child_text(const xml_node *node, const char *name, const char *ns);

/* ---- serialization ---- */

/* A growable byte buffer.  Zero-initialise it; free data with xml_buf_free. */
typedef struct xml_buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed; /* set when an append ran out of memory */
} xml_buf;

void xml_buf_append(xml_buf *buf, const char *data, size_t len);
void xml_buf_append_str(xml_buf *buf, const char *s);
/* Appends s with &, <, >, ", ' escaped. */
void xml_buf_append_escaped(xml_buf *buf, const char *s, size_t len);
void xml_buf_reset(xml_buf *buf); /* len = 0, keeps memory */
void xml_buf_free(xml_buf *buf);

/* Serializes node (and its subtree) onto buf.  parent_ns is the namespace in
 * scope where it will be written (e.g. "jabber:client" for a stanza in a c2s
 * stream); xmlns is emitted only when node->ns differs. */
void xml_serialize(const xml_node *node, const char *parent_ns, xml_buf *buf);
/* Convenience: a NUL-terminated string, caller frees. */
char *xml_to_string(const xml_node *node, const char *parent_ns);

/* ---- streaming parser ---- */

typedef struct xml_limits {
    size_t max_stanza_bytes; /* bytes of one top-level child, as received */
    unsigned max_depth;      /* element nesting below the stream root (stanza = 1) */
    unsigned max_attrs;      /* attributes per element */
} xml_limits;

typedef enum xml_error {
    XML_OK = 0,
    XML_ERR_NOT_WELL_FORMED, /* stream error not-well-formed */
    XML_ERR_RESTRICTED,      /* DTD, entity, PI, comment: restricted-xml */
    XML_ERR_TOO_BIG,         /* stanza over max_stanza_bytes: policy-violation */
    XML_ERR_TOO_DEEP,        /* nesting over max_depth: policy-violation */
    XML_ERR_TOO_MANY_ATTRS,  /* attributes over max_attrs: policy-violation */
    XML_ERR_BAD_NAMESPACE,   /* root not stream:stream in XML_NS_STREAM: invalid-namespace */
    XML_ERR_NO_MEMORY,       /* internal-server-error */
    XML_ERR_STOPPED          /* a callback asked to stop (see xml_parser_stop) */
} xml_error;

typedef struct xml_parser xml_parser;

typedef struct xml_parser_callbacks {
    /* The stream header.  attrs is a NULL-terminated name/value array,
     * borrowed for the call ("to", "from", "version", "xml:lang", "id").
     * default_ns is the default namespace declared on it ("jabber:client"),
     * "" if none. */
    void (*stream_open)(void *ud, const char **attrs, const char *default_ns);
    /* One complete top-level element.  Ownership of stanza moves to the
     * callee. */
    void (*stanza)(void *ud, xml_node *stanza);
    /* </stream:stream> */
    void (*stream_close)(void *ud);
} xml_parser_callbacks;

/* Returns a parser (caller owns; xml_parser_free), or NULL when out of memory.
 * cb and limits are copied. */
xml_parser *xml_parser_new(const xml_limits *limits, const xml_parser_callbacks *cb, void *ud);
void xml_parser_free(xml_parser *p);

/* A parser for a framed stream (XMPP over WebSocket, RFC 7395), where every
 * message is one element and the stream has no root element of its own:
 * the parser stands inside an implicit jabber:client stream root (with the
 * stream prefix bound), so the stream_open and stream_close callbacks never
 * fire; each top-level element is reported through the stanza callback
 * (<open/> and <close/> included).  Text other than whitespace between
 * elements, and an end tag closing the implicit root, are
 * XML_ERR_NOT_WELL_FORMED.  Limits, refusals, release and reset (which
 * restores the implicit root) work as for xml_parser_new. */
xml_parser *xml_parser_new_framed(const xml_limits *limits, const xml_parser_callbacks *cb, void *ud);
/* Whether the parser stands between top-level elements: no error, and no
 * element begun and not finished.  (A start tag whose bytes have not all
 * arrived has not begun yet: a framed stream checks the message's last byte
 * as well.) */
bool xml_parser_is_between_elements(const xml_parser *p);

/* Feeds bytes.  Returns XML_OK or the first error; once failed, every later
 * call returns the same error without calling back.  Callbacks may call
 * xml_parser_stop() or xml_parser_reset() (the latter takes effect after the
 * current callback returns; the rest of this buffer is then discarded, since
 * a stream restart only happens after the peer waits for our answer). */
xml_error xml_parser_feed(xml_parser *p, const char *data, size_t len);

/* Starts a fresh stream (after STARTTLS or SASL success). */
void xml_parser_reset(xml_parser *p);
/* From inside a callback: stop parsing; feed returns XML_ERR_STOPPED. */
void xml_parser_stop(xml_parser *p);

/* Releases the memory of the underlying XML parser while the stream sits
 * between stanzas (depth 1, no partial stanza or unparsed bytes buffered, no
 * error, not inside a callback).  The next xml_parser_feed rebuilds it
 * transparently with the same namespace context as the stream root (default
 * namespace and prefixes declared on the stream header), so stanzas parse
 * exactly as before.  Returns true if memory was released, false if the
 * parser was not at a point where it could (then nothing changed).
 *
 * Also allowed before the first byte of a stream (after xml_parser_new or
 * xml_parser_reset), where there is nothing to remember.  A released parser
 * holds a few hundred bytes (see xml.c); releasing it again returns false.
 * Bytes still buffered because they may continue a token (half a tag, a
 * partial UTF-8 sequence, a trailing CR or ']') make it return false until
 * more input completes them; so does an open CDATA section.  Rebuilding
 * takes a few microseconds; if it runs out of memory, that feed returns
 * XML_ERR_NO_MEMORY. */
bool xml_parser_release(xml_parser *p);

/* The RFC 6120 stream error condition for an error, e.g. "not-well-formed". */
const char *xml_error_condition(xml_error err);

/* Parses exactly one element from text (len bytes) as if it stood in a
 * jabber:client stream: unprefixed elements without xmlns are in
 * jabber:client.  The same limits and refusals as the streaming parser;
 * anything but one element (none, two) is XML_ERR_NOT_WELL_FORMED; text
 * beside the element is ignored, as between the stanzas of a stream.  Returns XML_OK with *out (caller owns), or an
 * error with *out NULL. */
int xml_parse_element(const char *text, size_t len, const xml_limits *limits, xml_node **out);

/* Escapes for attribute/text use; caller frees. */
char *xml_escape(const char *s, size_t len);

#endif
