/* jid.c - XMPP addresses (jid.h): splitting per RFC 6122 section 2.1 (the
 * resource starts at the first '/', the node ends at the first '@' before
 * it, one trailing '.' of the domain is dropped) and preparation with
 * libidn's Nodeprep, Nameprep and Resourceprep profiles.  Each part must be
 * 1..1023 bytes after preparation; an empty node or resource next to its
 * separator is malformed.
 */
#include "jid.h"

#include <stdlib.h>
#include <string.h>
#include <stringprep.h>

#define JID_PART_MAX 1023

enum jid_profile { JID_NODE, JID_DOMAIN, JID_RESOURCE };

/* Domain characters beyond what Nameprep checks: the letter-digit-hyphen
 * rule of host names (plus '_', common in service names), labels non-empty;
 * or an IP literal in brackets.  Non-ASCII bytes are left to Nameprep. */
static bool jid_domain_ok(const char *d, size_t len)
{
    if (d[0] == '[') {
        if (len < 3 || d[len - 1] != ']')
            return false;
        for (size_t i = 1; i + 1 < len; i++) {
            unsigned char c = (unsigned char)d[i];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' || c == '.'))
                return false;
        }
        return true;
    }
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        label++;
        if (c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')
            continue;
        return false; /* upper case cannot remain after Nameprep */
    }
    return label > 0;
}

/* True when the profile maps every byte of in to itself and prohibits none,
 * so stringprep can be skipped: lower-case letters, digits and a few marks
 * for Nodeprep and Nameprep, printable ASCII for Resourceprep.  This is the
 * common case on the stanza hot path. */
static bool jid_is_prepared_ascii(const char *in, size_t len, enum jid_profile profile)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (profile == JID_RESOURCE) {
            if (c < 0x20 || c > 0x7e)
                return false;
        } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_')) {
            return false;
        }
    }
    return true;
}

/* Prepares the len bytes at in with one profile.  Returns a malloc'd string
 * (caller frees) or NULL if the part is invalid, empty or too long. */
static char *jid_prep(const char *in, size_t len, enum jid_profile profile)
{
    if (len == 0)
        return NULL;
    if (len <= JID_PART_MAX && jid_is_prepared_ascii(in, len, profile)) {
        if (profile == JID_DOMAIN && !jid_domain_ok(in, len))
            return NULL;
        char *copy = malloc(len + 1);
        if (copy) {
            memcpy(copy, in, len);
            copy[len] = '\0';
        }
        return copy;
    }
    /* Preparation works in place and may grow or shrink the text; a buffer of
     * at least JID_PART_MAX + 1 bytes holds any acceptable result. */
    size_t cap = (len > JID_PART_MAX ? len : JID_PART_MAX) + 1;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    memcpy(buf, in, len);
    buf[len] = '\0';
    if (strlen(buf) != len) { /* embedded NUL */
        free(buf);
        return NULL;
    }
    int rc;
    switch (profile) {
    case JID_NODE:
        rc = stringprep_xmpp_nodeprep(buf, cap);
        break;
    case JID_DOMAIN:
        rc = stringprep_nameprep(buf, cap);
        break;
    default:
        rc = stringprep_xmpp_resourceprep(buf, cap);
        break;
    }
    size_t out = rc == STRINGPREP_OK ? strlen(buf) : 0;
    if (out == 0 || out > JID_PART_MAX || (profile == JID_DOMAIN && !jid_domain_ok(buf, out))) {
        free(buf);
        return NULL;
    }
    if (out + 1 < cap) {
        char *shrunk = realloc(buf, out + 1);
        if (shrunk)
            buf = shrunk;
    }
    return buf;
}

/* The domain as written, less one trailing dot (RFC 6122 section 2.2). */
static char *jid_prep_domain(const char *in, size_t len)
{
    if (len > 1 && in[len - 1] == '.')
        len--;
    return jid_prep(in, len, JID_DOMAIN);
}

char *jid_nodeprep(const char *in)
{
    return in ? jid_prep(in, strlen(in), JID_NODE) : NULL;
}

char *jid_nameprep(const char *in)
{
    return in ? jid_prep_domain(in, strlen(in)) : NULL;
}

char *jid_resourceprep(const char *in)
{
    return in ? jid_prep(in, strlen(in), JID_RESOURCE) : NULL;
}

void jid_clear(jid *j)
{
    free(j->node);
    free(j->domain);
    free(j->resource);
    j->node = j->domain = j->resource = NULL;
}

int jid_parse(const char *s, jid *out)
{
    out->node = out->domain = out->resource = NULL;
    if (!s)
        return -1;
    size_t len = strlen(s);
    const char *slash = memchr(s, '/', len);
    size_t head = slash ? (size_t)(slash - s) : len;
    const char *at = memchr(s, '@', head);
    const char *dom = at ? at + 1 : s;
    size_t domlen = head - (size_t)(dom - s);

    if (at && !(out->node = jid_prep(s, (size_t)(at - s), JID_NODE)))
        goto fail;
    if (!(out->domain = jid_prep_domain(dom, domlen)))
        goto fail;
    if (slash && !(out->resource = jid_prep(slash + 1, len - head - 1, JID_RESOURCE)))
        goto fail;
    return 0;
fail:
    jid_clear(out);
    return -1;
}

int jid_from_parts(jid *out, const char *node, const char *domain, const char *resource)
{
    out->node = out->domain = out->resource = NULL;
    if (!domain)
        return -1;
    if (node && !(out->node = jid_nodeprep(node)))
        goto fail;
    if (!(out->domain = jid_nameprep(domain)))
        goto fail;
    if (resource && !(out->resource = jid_resourceprep(resource)))
        goto fail;
    return 0;
fail:
    jid_clear(out);
    return -1;
}

int jid_copy(jid *out, const jid *in)
{
    out->node = out->domain = out->resource = NULL;
    if ((in->node && !(out->node = strdup(in->node))) || (in->domain && !(out->domain = strdup(in->domain))) ||
        (in->resource && !(out->resource = strdup(in->resource)))) {
        jid_clear(out);
        return -1;
    }
    return 0;
}

static char *jid_format(const jid *j, bool with_resource)
{
    if (!j->domain)
        return NULL;
    size_t nl = j->node ? strlen(j->node) : 0, dl = strlen(j->domain);
    size_t rl = with_resource && j->resource ? strlen(j->resource) : 0;
    char *s = malloc(nl + dl + rl + 3);
    if (!s)
        return NULL;
    char *p = s;
    if (j->node) {
        memcpy(p, j->node, nl);
        p += nl;
        *p++ = '@';
    }
    memcpy(p, j->domain, dl);
    p += dl;
    if (with_resource && j->resource) {
        *p++ = '/';
        memcpy(p, j->resource, rl);
        p += rl;
    }
    *p = '\0';
    return s;
}

char *jid_bare(const jid *j)
{
    return jid_format(j, false);
}

char *jid_full(const jid *j)
{
    return jid_format(j, true);
}

static bool jid_str_equal(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

bool jid_bare_equal(const jid *a, const jid *b)
{
    return jid_str_equal(a->node, b->node) && jid_str_equal(a->domain, b->domain);
}

bool jid_full_equal(const jid *a, const jid *b)
{
    return jid_bare_equal(a, b) && jid_str_equal(a->resource, b->resource);
}

char *jid_normalize(const char *s)
{
    jid j;
    if (jid_parse(s, &j) != 0)
        return NULL;
    char *out = jid_full(&j);
    jid_clear(&j);
    return out;
}
