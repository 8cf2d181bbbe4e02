/* media_jingle.c - Jingle session-initiate parsing and the server's answers
 * (media_jingle.h; XEP-0166, XEP-0167 section 7 for SRTP, XEP-0177).
 */
#include "media_jingle.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

static int fail(mj_error *e, const char *type, const char *cond, const char *app_ns, const char *app_name,
                const char *fmt, ...)
{
    e->type = type;
    e->condition = cond;
    e->app_ns = app_ns;
    e->app_name = app_name;
    e->text[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->text, sizeof e->text, fmt, ap);
        va_end(ap);
    }
    return -1;
}

#define BAD(e, ...) fail((e), "modify", "bad-request", NULL, NULL, __VA_ARGS__)

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    if (!s || !*s || strlen(s) > 10)
        return false;
    unsigned long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

static bool copy(char *dst, size_t cap, const char *src)
{
    if (!src || strlen(src) >= cap)
        return false;
    memcpy(dst, src, strlen(src) + 1);
    return true;
}

const char *mj_media_name(mj_media m)
{
    return m == MJ_VIDEO ? "video" : "audio";
}

/* Static payload types of RFC 3551 that onair relays. */
static void static_name(mj_payload *p)
{
    if (p->name[0])
        return;
    if (p->id == 0)
        snprintf(p->name, sizeof p->name, "PCMU");
    else if (p->id == 8)
        snprintf(p->name, sizeof p->name, "PCMA");
    else if (p->id == 9)
        snprintf(p->name, sizeof p->name, "G722");
    if (p->name[0] && !p->clockrate)
        p->clockrate = 8000;
}

media_codec mj_payload_codec(const mj_payload *p)
{
    if (strcasecmp(p->name, "H264") == 0)
        return MEDIA_CODEC_H264;
    if (strcasecmp(p->name, "VP8") == 0)
        return MEDIA_CODEC_VP8;
    return MEDIA_CODEC_OTHER;
}

bool mj_payload_supported(mj_media m, const mj_payload *p)
{
    if (m == MJ_VIDEO)
        return (strcasecmp(p->name, "H264") == 0 || strcasecmp(p->name, "VP8") == 0) && p->clockrate == 90000;
    if (strcasecmp(p->name, "opus") == 0)
        return p->clockrate == 48000;
    return (strcasecmp(p->name, "PCMU") == 0 || strcasecmp(p->name, "PCMA") == 0 ||
            strcasecmp(p->name, "G722") == 0) &&
           p->clockrate == 8000;
}

bool mj_payload_same_codec(const mj_payload *a, const mj_payload *b)
{
    return a->name[0] && strcasecmp(a->name, b->name) == 0 && a->clockrate == b->clockrate;
}

void mj_payload_describe(const mj_payload *p, char *out, size_t cap)
{
    if (p->channels > 1)
        snprintf(out, cap, "%s/%u/%u", p->name, p->clockrate, p->channels);
    else
        snprintf(out, cap, "%s/%u", p->name, p->clockrate);
}

static int parse_payload(const xml_node *el, mj_payload *p, const char *content, mj_error *e)
{
    memset(p, 0, sizeof *p);
    unsigned long v;
    if (!parse_uint(xml_node_attr(el, "id"), 127, &v))
        return BAD(e, "content '%s': payload-type: id must be 0 to 127", content);
    p->id = (unsigned)v;
    const char *name = xml_node_attr(el, "name");
    if (name && !copy(p->name, sizeof p->name, name))
        return BAD(e, "content '%s': payload-type: name too long", content);
    const char *cr = xml_node_attr(el, "clockrate");
    if (cr) {
        if (!parse_uint(cr, 10000000, &v))
            return BAD(e, "content '%s': payload-type: clockrate must be a number", content);
        p->clockrate = (unsigned)v;
    }
    const char *ch = xml_node_attr(el, "channels");
    p->channels = 1;
    if (ch) {
        if (!parse_uint(ch, 255, &v) || v == 0)
            return BAD(e, "content '%s': payload-type: channels must be 1 to 255", content);
        p->channels = (unsigned)v;
    }
    size_t used = 0;
    for (const xml_node *c = el->children; c; c = c->next) {
        if (c->type != XML_ELEMENT || strcmp(c->name, "parameter") != 0)
            continue;
        const char *pn = xml_node_attr(c, "name"), *pv = xml_node_attr(c, "value");
        if (!pn || !*pn || !pv || strpbrk(pn, ";=") || strchr(pv, ';'))
            return BAD(e, "content '%s': payload-type %u: a parameter needs a name and a value", content, p->id);
        int n = snprintf(p->params + used, sizeof p->params - used, "%s%s=%s", used ? ";" : "", pn, pv);
        if (n < 0 || (size_t)n >= sizeof p->params - used)
            return BAD(e, "content '%s': payload-type %u: parameters too long", content, p->id);
        used += (size_t)n;
    }
    static_name(p);
    return 0;
}

static int parse_addr(const char *ip, const char *port_s, struct sockaddr_storage *ss)
{
    unsigned long port;
    if (!ip || !parse_uint(port_s, 65535, &port) || port == 0)
        return -1;
    memset(ss, 0, sizeof *ss);
    if (strchr(ip, ':'))
        return uv_ip6_addr(ip, (int)port, (struct sockaddr_in6 *)ss) == 0 ? 0 : -1;
    return uv_ip4_addr(ip, (int)port, (struct sockaddr_in *)ss) == 0 ? 0 : -1;
}

static void addr_with_port(struct sockaddr_storage *dst, const struct sockaddr_storage *src, int port)
{
    *dst = *src;
    if (src->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)dst)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)dst)->sin_port = htons((uint16_t)port);
}

static int addr_port(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)ss)->sin6_port)
                                     : ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/* Pass 1: the structure of one content (bad-request). */
static int parse_structure(const xml_node *el, mj_content *c, const xml_node **desc, const xml_node **tr,
                           mj_error *e)
{
    const char *name = xml_node_attr(el, "name");
    if (!name || !*name)
        return BAD(e, "a content needs a name");
    if (!copy(c->name, sizeof c->name, name))
        return BAD(e, "content name too long (at most %d bytes)", MJ_NAME_MAX);
    const char *creator = xml_node_attr(el, "creator");
    if (!copy(c->creator, sizeof c->creator, creator ? creator : "initiator") ||
        (strcmp(c->creator, "initiator") != 0 && strcmp(c->creator, "responder") != 0))
        return BAD(e, "content '%s': creator must be initiator or responder", c->name);
    *desc = NULL;
    *tr = NULL;
    const xml_node *other_desc = NULL;
    for (const xml_node *ch = el->children; ch; ch = ch->next) {
        if (ch->type != XML_ELEMENT)
            continue;
        if (strcmp(ch->name, "description") == 0) {
            if (strcmp(ch->ns, NS_JINGLE_RTP) == 0)
                *desc = ch;
            else
                other_desc = ch;
        } else if (strcmp(ch->name, "transport") == 0) {
            *tr = ch;
        }
    }
    if (!*desc && !other_desc)
        return BAD(e, "content '%s': no <description/>", c->name);
    if (!*tr)
        return BAD(e, "content '%s': no <transport/>", c->name);
    if (!*desc)
        return fail(e, "cancel", "feature-not-implemented", NULL, NULL,
                    "content '%s': only RTP sessions (%s) are supported", c->name, NS_JINGLE_RTP);
    const char *media = xml_node_attr(*desc, "media");
    if (media && strcmp(media, "video") == 0)
        c->media = MJ_VIDEO;
    else if (media && strcmp(media, "audio") == 0)
        c->media = MJ_AUDIO;
    else
        return BAD(e, "content '%s': description media must be video or audio", c->name);
    for (const xml_node *p = (*desc)->children; p; p = p->next) {
        if (p->type != XML_ELEMENT || strcmp(p->ns, NS_JINGLE_RTP) != 0)
            continue;
        if (strcmp(p->name, "payload-type") == 0) {
            if (c->npts == MJ_MAX_PAYLOADS)
                return BAD(e, "content '%s': at most %d payload types", c->name, MJ_MAX_PAYLOADS);
            if (parse_payload(p, &c->pts[c->npts], c->name, e) != 0)
                return -1;
            c->npts++;
        } else if (strcmp(p->name, "rtcp-mux") == 0) {
            c->rtcp_mux = true;
        }
    }
    if (c->npts == 0)
        return BAD(e, "content '%s': no <payload-type/>", c->name);
    if (strcmp((*tr)->ns, NS_JINGLE_RAW_UDP) == 0) {
        bool has_rtp = false;
        for (const xml_node *k = (*tr)->children; k; k = k->next) {
            if (k->type != XML_ELEMENT || strcmp(k->name, "candidate") != 0)
                continue;
            unsigned long comp;
            if (!parse_uint(xml_node_attr(k, "component"), 255, &comp) || comp < 1)
                return BAD(e, "content '%s': candidate: component must be 1 (RTP) or 2 (RTCP)", c->name);
            if (comp > 2)
                continue;
            struct sockaddr_storage ss;
            if (parse_addr(xml_node_attr(k, "ip"), xml_node_attr(k, "port"), &ss) != 0)
                return BAD(e, "content '%s': candidate: ip must be an IP address and port 1 to 65535", c->name);
            if (comp == 1 && !has_rtp) {
                c->rtp = ss;
                has_rtp = true;
            } else if (comp == 2 && !c->has_rtcp_candidate) {
                c->rtcp = ss;
                c->has_rtcp_candidate = true;
            }
        }
        if (!has_rtp)
            return BAD(e, "content '%s': the raw UDP transport needs a candidate for component 1", c->name);
        if (!c->has_rtcp_candidate) {
            if (c->rtcp_mux)
                c->rtcp = c->rtp;
            else
                addr_with_port(&c->rtcp, &c->rtp, addr_port(&c->rtp) < 65535 ? addr_port(&c->rtp) + 1 : 65535);
        }
    }
    return 0;
}

/* The content's SRTP offer: the first supported <crypto/> with a usable key. */
static int parse_crypto(const xml_node *desc, mj_content *c, mj_error *e)
{
    const xml_node *enc = xml_node_child(desc, "encryption", NS_JINGLE_RTP);
    bool any = false;
    const char *why = NULL;
    bool mki = false;
    for (const xml_node *k = enc ? enc->children : NULL; k; k = k->next) {
        if (k->type != XML_ELEMENT || strcmp(k->name, "crypto") != 0 || strcmp(k->ns, NS_JINGLE_RTP) != 0)
            continue;
        any = true;
        media_srtp_suite s = media_srtp_suite_by_name(xml_node_attr(k, "crypto-suite"));
        if (s == MEDIA_SRTP_NONE)
            continue;
        const char *tag = xml_node_attr(k, "tag");
        unsigned long t;
        if (!parse_uint(tag, 999999999, &t))
            return BAD(e, "content '%s': crypto: tag must be a number", c->name);
        const char *kwhy = NULL;
        if (media_srtp_parse_key(s, xml_node_attr(k, "key-params"), c->key, &kwhy) != 0) {
            why = kwhy;
            if (strstr(kwhy, "MKI"))
                mki = true;
            continue;
        }
        c->suite = s;
        snprintf(c->tag, sizeof c->tag, "%lu", t);
        return 0;
    }
    if (!any)
        return fail(e, "modify", "not-acceptable", NS_JINGLE_RTP_ERRORS, "crypto-required",
                    "content '%s': SRTP is required: add <encryption><crypto/></encryption>", c->name);
    if (why && !mki)
        return BAD(e, "content '%s': %s", c->name, why);
    return fail(e, "modify", "not-acceptable", NS_JINGLE_RTP_ERRORS, "invalid-crypto",
                "content '%s': %s", c->name,
                mki ? "a master key identifier (MKI) is not supported"
                    : "supported crypto suites: AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32, AEAD_AES_128_GCM");
}

int mj_parse_initiate(const xml_node *jingle, mj_initiate *out, mj_error *e)
{
    memset(out, 0, sizeof *out);
    const char *sid = xml_node_attr(jingle, "sid");
    if (!sid || !*sid)
        return BAD(e, "a session needs a sid");
    if (!copy(out->sid, sizeof out->sid, sid))
        return BAD(e, "sid too long (at most %d bytes)", MJ_SID_MAX);
    const xml_node *descs[MJ_MAX_CONTENTS], *trs[MJ_MAX_CONTENTS];
    const char *senders[MJ_MAX_CONTENTS];
    const xml_node *broadcast = NULL, *watch = NULL;
    for (const xml_node *el = jingle->children; el; el = el->next) {
        if (el->type != XML_ELEMENT)
            continue;
        if (strcmp(el->name, "content") == 0 && strcmp(el->ns, NS_JINGLE) == 0) {
            if (out->ncontents == MJ_MAX_CONTENTS)
                return BAD(e, "at most %d contents: one video and one audio", MJ_MAX_CONTENTS);
            mj_content *c = &out->contents[out->ncontents];
            if (parse_structure(el, c, &descs[out->ncontents], &trs[out->ncontents], e) != 0)
                return -1;
            for (size_t i = 0; i < out->ncontents; i++) {
                if (out->contents[i].media == c->media)
                    return BAD(e, "two contents of %s: one content per media", mj_media_name(c->media));
                if (strcmp(out->contents[i].name, c->name) == 0)
                    return BAD(e, "two contents named '%s'", c->name);
            }
            senders[out->ncontents] = xml_node_attr(el, "senders");
            out->ncontents++;
        } else if (strcmp(el->ns, NS_ONAIR_MEDIA) == 0 && strcmp(el->name, "broadcast") == 0) {
            broadcast = el;
        } else if (strcmp(el->ns, NS_ONAIR_MEDIA) == 0 && strcmp(el->name, "watch") == 0) {
            watch = el;
        }
    }
    if (out->ncontents == 0)
        return BAD(e, "a session-initiate needs at least one <content/>");
    if (broadcast && watch)
        return BAD(e, "<broadcast/> or <watch/>, not both");
    /* The role, from the credential element and the contents' senders. */
    const char *want = broadcast ? "initiator" : watch ? "responder" : senders[0];
    if (!want || (strcmp(want, "initiator") != 0 && strcmp(want, "responder") != 0))
        return BAD(e, "senders must be initiator (to broadcast) or responder (to watch)");
    for (size_t i = 0; i < out->ncontents; i++) {
        if (!senders[i] || strcmp(senders[i], want) != 0)
            return BAD(e, "content '%s': senders must be %s%s", out->contents[i].name, want,
                       broadcast ? " with <broadcast/>" : watch ? " with <watch/>" : " like the other contents");
    }
    out->role = strcmp(want, "initiator") == 0 ? MJ_INGEST : MJ_WATCH;
    const xml_node *cred = broadcast ? broadcast : watch;
    if (cred) {
        const xml_node *pw = xml_node_child(cred, "password", NS_ONAIR_MEDIA);
        if (pw) {
            char *text = xml_node_text(pw);
            if (!text || strlen(text) > MJ_PASSWORD_MAX) {
                if (text)
                    OPENSSL_cleanse(text, strlen(text));
                free(text);
                return BAD(e, "password too long");
            }
            memcpy(out->password, text, strlen(text) + 1);
            out->has_password = true;
            OPENSSL_cleanse(text, strlen(text));
            free(text);
        }
    }
    for (size_t i = 0; i < out->ncontents; i++) {
        if (strcmp(trs[i]->ns, NS_JINGLE_RAW_UDP) != 0)
            return fail(e, "modify", "not-acceptable", NULL, NULL,
                        "only the raw UDP transport (%s) is supported", NS_JINGLE_RAW_UDP);
    }
    for (size_t i = 0; i < out->ncontents; i++)
        if (parse_crypto(descs[i], &out->contents[i], e) != 0)
            return -1;
    if (out->role == MJ_INGEST) {
        for (size_t i = 0; i < out->ncontents; i++) {
            mj_content *c = &out->contents[i];
            size_t k = 0;
            while (k < c->npts && !mj_payload_supported(c->media, &c->pts[k]))
                k++;
            if (k == c->npts)
                return fail(e, "modify", "not-acceptable", NULL, NULL, "content '%s': supported codecs: %s",
                            c->name,
                            c->media == MJ_VIDEO ? "H264/90000, VP8/90000"
                                                 : "opus/48000/2, PCMU/8000, PCMA/8000, G722/8000");
            if (k > 0) { /* the chosen one first */
                mj_payload chosen = c->pts[k];
                c->pts[0] = chosen;
            }
            c->npts = 1;
        }
    }
    return 0;
}

static void set_uint(xml_node *n, const char *name, unsigned v)
{
    char b[16];
    snprintf(b, sizeof b, "%u", v);
    xml_node_set_attr(n, name, b);
}

static void add_payload(xml_node *desc, const mj_payload *p)
{
    xml_node *pt = xml_node_add_child(desc, "payload-type", NS_JINGLE_RTP);
    if (!pt)
        return;
    set_uint(pt, "id", p->id);
    if (p->name[0])
        xml_node_set_attr(pt, "name", p->name);
    if (p->clockrate)
        set_uint(pt, "clockrate", p->clockrate);
    if (p->channels > 1)
        set_uint(pt, "channels", p->channels);
    const char *s = p->params;
    while (*s) {
        size_t n = strcspn(s, ";");
        char item[512];
        snprintf(item, sizeof item, "%.*s", (int)n, s);
        char *eq = strchr(item, '=');
        if (eq) {
            *eq = '\0';
            xml_node *par = xml_node_add_child(pt, "parameter", NS_JINGLE_RTP);
            if (par) {
                xml_node_set_attr(par, "name", item);
                xml_node_set_attr(par, "value", eq + 1);
            }
        }
        s += n + (s[n] == ';');
    }
}

static xml_node *jingle_iq(const char *id, const char *from, const char *to, const char *action, const char *sid,
                           xml_node **jingle)
{
    xml_node *iq = xml_node_new("iq", XML_NS_CLIENT);
    if (!iq)
        return NULL;
    xml_node_set_attr(iq, "type", "set");
    xml_node_set_attr(iq, "id", id);
    xml_node_set_attr(iq, "from", from);
    xml_node_set_attr(iq, "to", to);
    *jingle = xml_node_add_child(iq, "jingle", NS_JINGLE);
    if (!*jingle) {
        xml_node_free(iq);
        return NULL;
    }
    xml_node_set_attr(*jingle, "action", action);
    xml_node_set_attr(*jingle, "sid", sid);
    return iq;
}

xml_node *mj_build_accept(const char *id, const char *from, const char *to, const char *sid, const mj_answer *a,
                          size_t n)
{
    xml_node *j;
    xml_node *iq = jingle_iq(id, from, to, "session-accept", sid, &j);
    if (!iq)
        return NULL;
    xml_node_set_attr(j, "initiator", to);
    xml_node_set_attr(j, "responder", from);
    for (size_t i = 0; i < n; i++) {
        xml_node *c = xml_node_add_child(j, "content", NS_JINGLE);
        if (!c)
            break;
        xml_node_set_attr(c, "creator", a[i].creator);
        xml_node_set_attr(c, "name", a[i].name);
        xml_node_set_attr(c, "senders", a[i].senders);
        xml_node *d = xml_node_add_child(c, "description", NS_JINGLE_RTP);
        if (!d)
            break;
        xml_node_set_attr(d, "media", mj_media_name(a[i].media));
        add_payload(d, a[i].pt);
        xml_node *enc = xml_node_add_child(d, "encryption", NS_JINGLE_RTP);
        xml_node *cr = enc ? xml_node_add_child(enc, "crypto", NS_JINGLE_RTP) : NULL;
        if (cr) {
            xml_node_set_attr(cr, "tag", a[i].tag);
            xml_node_set_attr(cr, "crypto-suite", media_srtp_suite_name(a[i].suite));
            xml_node_set_attr(cr, "key-params", a[i].key_params);
        }
        xml_node_add_child(d, "rtcp-mux", NS_JINGLE_RTP);
        xml_node *t = xml_node_add_child(c, "transport", NS_JINGLE_RAW_UDP);
        for (int comp = 1; t && comp <= 2; comp++) {
            xml_node *k = xml_node_add_child(t, "candidate", NS_JINGLE_RAW_UDP);
            if (!k)
                break;
            char cid[48];
            snprintf(cid, sizeof cid, "onair%zu%d", i, comp);
            set_uint(k, "component", (unsigned)comp);
            xml_node_set_attr(k, "generation", "0");
            xml_node_set_attr(k, "id", cid);
            xml_node_set_attr(k, "ip", a[i].ip);
            set_uint(k, "port", (unsigned)a[i].port);
            xml_node_set_attr(k, "type", "host");
        }
    }
    return iq;
}

xml_node *mj_build_terminate(const char *id, const char *from, const char *to, const char *sid,
                             const char *condition, const char *text)
{
    xml_node *j;
    xml_node *iq = jingle_iq(id, from, to, "session-terminate", sid, &j);
    if (!iq)
        return NULL;
    xml_node *r = xml_node_add_child(j, "reason", NS_JINGLE);
    if (r) {
        xml_node_add_child(r, condition, NS_JINGLE);
        if (text) {
            xml_node *t = xml_node_add_child(r, "text", NS_JINGLE);
            if (t)
                xml_node_add_text(t, text, strlen(text));
        }
    }
    return iq;
}
