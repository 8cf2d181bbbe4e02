/* jingle.c - Jingle RTP sessions with SDES-SRTP over raw UDP, the client's
 * side (jingle.h, specs/media.md).  Keys come from OpenSSL's generator and
 * are never printed; local ports are found free by binding, then released
 * for ffmpeg to bind (a pair: RTP even, RTCP the next).
 */
#include "jingle.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#define NS_JINGLE "urn:xmpp:jingle:1"
#define NS_RTP "urn:xmpp:jingle:apps:rtp:1"
#define NS_RAW_UDP "urn:xmpp:jingle:transports:raw-udp:1"
#define NS_ONAIR_MEDIA "urn:onair:media:1"

int jingle_local_ip(const char *host, char out[64])
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_DGRAM;
    if (getaddrinfo(host, "9", &hints, &res) != 0 || !res)
        return -1;
    int rc = -1;
    int fd = socket(res->ai_family, SOCK_DGRAM, 0);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0 &&
        getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
        getnameinfo((struct sockaddr *)&ss, len, out, 64, NULL, 0, NI_NUMERICHOST) == 0)
        rc = 0;
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return rc;
}

static int bind_udp(int family, const char *ip, int port)
{
    int fd = socket(family, SOCK_DGRAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        inet_pton(AF_INET6, ip, &a->sin6_addr);
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, ip, &a->sin_addr);
        len = sizeof *a;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A free pair of UDP ports on ip: an even RTP port and the next for RTCP. */
static int free_port_pair(const char *ip)
{
    int family = strchr(ip, ':') ? AF_INET6 : AF_INET;
    for (int attempt = 0; attempt < 64; attempt++) {
        int fd = bind_udp(family, ip, 0);
        if (fd < 0)
            return -1;
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        getsockname(fd, (struct sockaddr *)&ss, &len);
        int port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                            : ((struct sockaddr_in *)&ss)->sin_port);
        close(fd);
        port &= ~1;
        if (port < 1024 || port > 65534)
            continue;
        int a = bind_udp(family, ip, port), b = a >= 0 ? bind_udp(family, ip, port + 1) : -1;
        if (a >= 0)
            close(a);
        if (b >= 0)
            close(b);
        if (a >= 0 && b >= 0)
            return port;
    }
    return -1;
}

static int new_key(char out[JINGLE_KEY_B64])
{
    unsigned char raw[30];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)out, raw, sizeof raw);
    OPENSSL_cleanse(raw, sizeof raw);
    return 0;
}

int jingle_prepare(jingle_session *s, client *c, const char *endpoint, bool is_ingest, const char *toward_host,
                   const char *progname)
{
    unsigned char rnd[12];
    s->c = c;
    s->is_ingest = is_ingest;
    snprintf(s->endpoint, sizeof s->endpoint, "%s", endpoint);
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        fprintf(stderr, "%s: no random numbers for the session\n", progname);
        return EXIT_MEDIA;
    }
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(s->sid + 2 * i, 3, "%02x", rnd[i]);
    if (jingle_local_ip(toward_host, s->local_ip) != 0) {
        fprintf(stderr, "%s: no local address toward %s\n", progname, toward_host);
        return EXIT_MEDIA;
    }
    for (int i = 0; i < s->ncontent; i++) {
        jingle_content *ct = &s->content[i];
        if (new_key(ct->local_key) != 0 || (ct->local_port = free_port_pair(s->local_ip)) < 0) {
            fprintf(stderr, "%s: no free UDP ports or key for the %s stream\n", progname, ct->media);
            return EXIT_MEDIA;
        }
    }
    return EXIT_OK;
}

/* ---- stanzas ---- */

static xmpp_stanza_t *el(xmpp_ctx_t *ctx, xmpp_stanza_t *parent, const char *name, const char *ns)
{
    xmpp_stanza_t *e = xmpp_stanza_new(ctx);
    xmpp_stanza_set_name(e, name);
    if (ns)
        xmpp_stanza_set_ns(e, ns);
    xmpp_stanza_add_child(parent, e);
    xmpp_stanza_release(e); /* the parent holds it */
    return e;
}

static void attr_int(xmpp_stanza_t *e, const char *name, int v)
{
    char buf[16];
    snprintf(buf, sizeof buf, "%d", v);
    xmpp_stanza_set_attribute(e, name, buf);
}

static void candidate(xmpp_ctx_t *ctx, xmpp_stanza_t *transport, int component, const char *ip, int port)
{
    xmpp_stanza_t *cand = el(ctx, transport, "candidate", NULL);
    char id[8];
    snprintf(id, sizeof id, "c%d", component);
    attr_int(cand, "component", component);
    xmpp_stanza_set_attribute(cand, "generation", "0");
    xmpp_stanza_set_attribute(cand, "id", id);
    xmpp_stanza_set_attribute(cand, "ip", ip);
    attr_int(cand, "port", port);
}

static xmpp_stanza_t *jingle_iq(jingle_session *s, const char *action, xmpp_stanza_t **jingle)
{
    xmpp_ctx_t *ctx = client_ctx(s->c);
    char id[64];
    xmpp_stanza_t *iq = xmpp_iq_new(ctx, "set", client_next_id(s->c, "jingle", id));
    xmpp_stanza_set_to(iq, s->endpoint);
    *jingle = el(ctx, iq, "jingle", NS_JINGLE);
    xmpp_stanza_set_attribute(*jingle, "action", action);
    xmpp_stanza_set_attribute(*jingle, "sid", s->sid);
    return iq;
}

static xmpp_stanza_t *build_initiate(jingle_session *s, const char *credential, const char *password)
{
    xmpp_ctx_t *ctx = client_ctx(s->c);
    xmpp_stanza_t *j;
    xmpp_stanza_t *iq = jingle_iq(s, "session-initiate", &j);
    xmpp_stanza_set_attribute(j, "initiator", client_bound_jid(s->c));
    for (int i = 0; i < s->ncontent; i++) {
        jingle_content *ct = &s->content[i];
        xmpp_stanza_t *content = el(ctx, j, "content", NULL);
        xmpp_stanza_set_attribute(content, "creator", "initiator");
        xmpp_stanza_set_attribute(content, "name", ct->media);
        xmpp_stanza_set_attribute(content, "senders", s->is_ingest ? "initiator" : "responder");
        xmpp_stanza_t *desc = el(ctx, content, "description", NS_RTP);
        xmpp_stanza_set_attribute(desc, "media", ct->media);
        for (int k = 0; k < ct->noffer; k++) {
            const jingle_codec *co = &ct->offer[k];
            xmpp_stanza_t *pt = el(ctx, desc, "payload-type", NULL);
            attr_int(pt, "id", co->pt);
            xmpp_stanza_set_attribute(pt, "name", co->name);
            attr_int(pt, "clockrate", co->clockrate);
            if (co->channels)
                attr_int(pt, "channels", co->channels);
            if (co->fmtp) {
                /* one parameter, "name=value" */
                char name[64];
                const char *eq = strchr(co->fmtp, '=');
                if (eq && (size_t)(eq - co->fmtp) < sizeof name) {
                    snprintf(name, sizeof name, "%.*s", (int)(eq - co->fmtp), co->fmtp);
                    xmpp_stanza_t *p = el(ctx, pt, "parameter", NULL);
                    xmpp_stanza_set_attribute(p, "name", name);
                    xmpp_stanza_set_attribute(p, "value", eq + 1);
                }
            }
        }
        xmpp_stanza_t *enc = el(ctx, desc, "encryption", NULL);
        xmpp_stanza_set_attribute(enc, "required", "1");
        xmpp_stanza_t *crypto = el(ctx, enc, "crypto", NULL);
        char kp[JINGLE_KEY_B64 + 8];
        snprintf(kp, sizeof kp, "inline:%s", ct->local_key);
        xmpp_stanza_set_attribute(crypto, "tag", "1");
        xmpp_stanza_set_attribute(crypto, "crypto-suite", JINGLE_SUITE);
        xmpp_stanza_set_attribute(crypto, "key-params", kp);
        xmpp_stanza_t *tr = el(ctx, content, "transport", NS_RAW_UDP);
        candidate(ctx, tr, 1, s->local_ip, ct->local_port);
        candidate(ctx, tr, 2, s->local_ip, ct->local_port + 1);
    }
    if (credential && (password || s->is_ingest)) {
        xmpp_stanza_t *cred = el(ctx, j, credential, NS_ONAIR_MEDIA);
        if (password) {
            xmpp_stanza_t *pw = el(ctx, cred, "password", NULL);
            xmpp_stanza_t *t = xmpp_stanza_new(ctx);
            xmpp_stanza_set_text(t, password);
            xmpp_stanza_add_child(pw, t);
            xmpp_stanza_release(t);
        }
    }
    return iq;
}

static int attr_num(xmpp_stanza_t *e, const char *name)
{
    const char *v = xmpp_stanza_get_attribute(e, name);
    return v ? atoi(v) : -1;
}

/* A session-accept's content into the matching one of ours. */
static void read_accept_content(jingle_session *s, xmpp_stanza_t *content)
{
    const char *name = xmpp_stanza_get_attribute(content, "name");
    jingle_content *ct = NULL;
    for (int i = 0; name && i < s->ncontent; i++)
        if (strcmp(s->content[i].media, name) == 0)
            ct = &s->content[i];
    if (!ct)
        return;
    xmpp_stanza_t *desc = xmpp_stanza_get_child_by_name_and_ns(content, "description", NS_RTP);
    xmpp_stanza_t *pt = desc ? xmpp_stanza_get_child_by_name(desc, "payload-type") : NULL;
    if (pt) {
        int id = attr_num(pt, "id");
        const char *pname = xmpp_stanza_get_attribute(pt, "name");
        for (int k = 0; k < ct->noffer; k++)
            if (ct->offer[k].pt == id || (pname && strcasecmp(ct->offer[k].name, pname) == 0))
                ct->chosen = ct->offer[k];
        if (id >= 0)
            ct->chosen.pt = id;
    }
    xmpp_stanza_t *enc = desc ? xmpp_stanza_get_child_by_name(desc, "encryption") : NULL;
    xmpp_stanza_t *crypto = enc ? xmpp_stanza_get_child_by_name(enc, "crypto") : NULL;
    const char *kp = crypto ? xmpp_stanza_get_attribute(crypto, "key-params") : NULL;
    if (kp && strncmp(kp, "inline:", 7) == 0) {
        size_t n = strcspn(kp + 7, "|");
        if (n < sizeof ct->remote_key)
            snprintf(ct->remote_key, sizeof ct->remote_key, "%.*s", (int)n, kp + 7);
    }
    xmpp_stanza_t *tr = xmpp_stanza_get_child_by_name_and_ns(content, "transport", NS_RAW_UDP);
    for (xmpp_stanza_t *c = tr ? xmpp_stanza_get_children(tr) : NULL; c; c = xmpp_stanza_get_next(c)) {
        const char *n = xmpp_stanza_get_name(c);
        const char *ip = xmpp_stanza_get_attribute(c, "ip");
        if (!n || strcmp(n, "candidate") != 0 || !ip)
            continue;
        int comp = attr_num(c, "component"), port = attr_num(c, "port");
        if (comp == 1) {
            snprintf(ct->remote_ip, sizeof ct->remote_ip, "%s", ip);
            ct->remote_port = port;
        } else if (comp == 2) {
            ct->remote_rtcp_port = port;
        }
    }
    if (ct->remote_port > 0 && !ct->remote_rtcp_port)
        ct->remote_rtcp_port = ct->remote_port + 1;
    ct->accepted = ct->chosen.name && ct->remote_key[0] && ct->remote_port > 0;
}

/* session-accept and session-terminate from the endpoint, for our sid. */
static int jingle_handler(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    jingle_session *s = ud;
    xmpp_stanza_t *j = xmpp_stanza_get_child_by_name_and_ns(st, "jingle", NS_JINGLE);
    const char *from = xmpp_stanza_get_from(st);
    const char *sid = j ? xmpp_stanza_get_attribute(j, "sid") : NULL;
    const char *action = j ? xmpp_stanza_get_attribute(j, "action") : NULL;
    if (!j || !sid || strcmp(sid, s->sid) != 0 || !from || strncmp(from, s->endpoint, strlen(s->endpoint)) != 0)
        return 1;
    xmpp_stanza_t *reply = xmpp_stanza_reply(st);
    xmpp_stanza_set_type(reply, "result");
    xmpp_send(conn, reply);
    xmpp_stanza_release(reply);
    if (action && strcmp(action, "session-accept") == 0) {
        for (xmpp_stanza_t *c = xmpp_stanza_get_children(j); c; c = xmpp_stanza_get_next(c)) {
            const char *n = xmpp_stanza_get_name(c);
            if (n && strcmp(n, "content") == 0)
                read_accept_content(s, c);
        }
        s->accepted = true;
    } else if (action && strcmp(action, "session-terminate") == 0) {
        xmpp_stanza_t *reason = xmpp_stanza_get_child_by_name(j, "reason");
        for (xmpp_stanza_t *c = reason ? xmpp_stanza_get_children(reason) : NULL; c; c = xmpp_stanza_get_next(c)) {
            const char *n = xmpp_stanza_get_name(c);
            if (!n)
                continue;
            if (strcmp(n, "text") == 0) {
                char *t = xmpp_stanza_get_text(c);
                snprintf(s->reason_text, sizeof s->reason_text, "%s", t ? t : "");
                if (t)
                    xmpp_free(xmpp_stanza_get_context(st), t);
            } else if (!s->reason[0]) {
                snprintf(s->reason, sizeof s->reason, "%s", n);
            }
        }
        s->terminated = true;
    }
    return 1;
}

int jingle_initiate(jingle_session *s, const char *credential, const char *password, const char *progname)
{
    xmpp_handler_add(client_conn(s->c), jingle_handler, NS_JINGLE, "iq", "set", s);
    xmpp_stanza_t *iq = build_initiate(s, credential, password);
    const char *why;
    xmpp_stanza_t *res = client_request(s->c, iq, 0, &why);
    xmpp_stanza_release(iq);
    if (!res) {
        fprintf(stderr, "%s: %s: no answer to the stream request: %s\n", progname, s->endpoint, why);
        return EXIT_PROTOCOL;
    }
    const char *type = xmpp_stanza_get_type(res);
    if (type && strcmp(type, "error") == 0) {
        stanza_error_read(res, &s->error);
        xmpp_stanza_release(res);
        xmpp_handler_delete(client_conn(s->c), jingle_handler);
        return EXIT_REFUSED;
    }
    xmpp_stanza_release(res);
    s->acknowledged = true;
    return EXIT_OK;
}

void jingle_print_refusal(const jingle_session *s, const char *progname)
{
    const stanza_error *e = &s->error;
    fprintf(stderr, "%s: the stream was refused: %s%s%s (%s)\n", progname, e->text[0] ? e->text : e->condition,
            e->app[0] ? ", " : "", e->app, e->condition);
}

void jingle_terminate(jingle_session *s, const char *reason, const char *text)
{
    if (!s->c)
        return;
    if (s->acknowledged && !s->terminated && client_is_connected(s->c)) {
        xmpp_ctx_t *ctx = client_ctx(s->c);
        xmpp_stanza_t *j;
        xmpp_stanza_t *iq = jingle_iq(s, "session-terminate", &j);
        xmpp_stanza_t *r = el(ctx, j, "reason", NULL);
        el(ctx, r, reason, NULL);
        if (text) {
            xmpp_stanza_t *t = el(ctx, r, "text", NULL), *tx = xmpp_stanza_new(ctx);
            xmpp_stanza_set_text(tx, text);
            xmpp_stanza_add_child(t, tx);
            xmpp_stanza_release(tx);
        }
        const char *why;
        xmpp_stanza_t *res = client_request(s->c, iq, 3000, &why);
        xmpp_stanza_release(iq);
        if (res)
            xmpp_stanza_release(res);
        s->terminated = true;
    }
    xmpp_handler_delete(client_conn(s->c), jingle_handler);
}
