/* client.c - one libstrophe connection for the onair command-line clients.
 *
 * Connects with TLS always (STARTTLS on 5222 or direct TLS on 5223,
 * XMPP_CONN_FLAG_MANDATORY_TLS), verifying the server's certificate against
 * the system's CAs or a given CA file; --insecure switches verification off
 * for tests and demos.  Logs in with SCRAM (libstrophe picks the strongest
 * mechanism offered) or, for guests, SASL ANONYMOUS: a JID without a node.
 * Requests are synchronous: client_request() runs the loop until the answer
 * with that id comes, which keeps the programs' code straight-line.  What
 * went wrong while connecting is told apart as well as libstrophe lets it:
 * no TCP connection, an untrusted certificate (said by the certfail
 * handler), or a login the server refused (the stream was secured but never
 * bound).
 */
#include "client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_S 20
#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

struct client {
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    xmpp_log_t log;
    const char *progname;
    int verbose;
    int timeout_ms;
    bool bound;        /* XMPP_CONN_CONNECT came */
    bool ended;        /* XMPP_CONN_DISCONNECT or _FAIL came */
    bool was_secured;  /* TLS was up at some point */
    bool stream_error; /* the server ended the stream with an error */
    int conn_error;    /* errno-style code of the disconnect */
    int socket_error;  /* errno of the last failed connect() */
    char stream_error_text[256];
    char last_error[256]; /* libstrophe's last error-level log line */
    char domain[256];
    char host[256]; /* where the connection went */
    char bound_jid[512];
    unsigned long next_id;
};

static long monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void client_options_init(client_options *o)
{
    memset(o, 0, sizeof *o);
    o->jid = getenv("ONAIR_JID");
    o->server = getenv("ONAIR_SERVER");
    o->cafile = getenv("ONAIR_CAFILE");
    o->password_file = getenv("ONAIR_PASSWORD_FILE");
    o->timeout_s = DEFAULT_TIMEOUT_S;
}

void client_options_help(FILE *out, bool with_guest)
{
    fputs("Connection (environment defaults in brackets):\n"
          "  --jid JID             your account, e.g. alice@example.org [ONAIR_JID]\n",
          out);
    if (with_guest)
        fputs("  --guest               enter as a guest (SASL ANONYMOUS), no account needed\n"
              "  --guest-domain HOST   the guest domain (default guest.<domain>)\n"
              "  --domain HOST         the server's domain when no JID names it\n",
              out);
    fputs("  --password-file FILE  read the account password from FILE's first line ('-': stdin)\n"
          "                        [ONAIR_PASSWORD_FILE]; else ONAIR_PASSWORD; else a prompt on the\n"
          "                        terminal. Never on the command line, where ps shows it.\n"
          "  --server HOST[:PORT]  where to connect (default: the JID's domain, port 5222) [ONAIR_SERVER]\n"
          "  --direct-tls          TLS from the first byte (port 5223) instead of STARTTLS\n"
          "  --cafile FILE         trust the CAs in FILE (PEM), e.g. a server's self-signed\n"
          "                        certificate, besides the system's [ONAIR_CAFILE]\n"
          "  --insecure            accept any server certificate (tests only: anyone can listen in)\n"
          "  --timeout SECONDS     bound on connecting and on each request (default 20)\n"
          "  -v, --verbose         say what happens; twice: every stanza (passwords too: careful)\n",
          out);
}

int client_options_parse(client_options *o, int opt, const char *arg)
{
    switch (opt) {
    case CLIENT_OPT_BASE + 0:
        o->jid = arg;
        return 1;
    case CLIENT_OPT_BASE + 1:
        o->password_file = arg;
        return 1;
    case CLIENT_OPT_BASE + 2:
        o->server = arg;
        return 1;
    case CLIENT_OPT_BASE + 3:
        o->direct_tls = true;
        return 1;
    case CLIENT_OPT_BASE + 4:
        o->cafile = arg;
        return 1;
    case CLIENT_OPT_BASE + 5:
        o->insecure = true;
        return 1;
    case CLIENT_OPT_BASE + 6: {
        char *end;
        long v = strtol(arg, &end, 10);
        if (*arg == '\0' || *end != '\0' || v < 1 || v > 3600) {
            fprintf(stderr, "--timeout: a number of seconds from 1 to 3600, not '%s'\n", arg);
            return -1;
        }
        o->timeout_s = (int)v;
        return 1;
    }
    case 'v':
        o->verbose++;
        return 1;
    case CLIENT_OPT_BASE + 7:
        o->guest = true;
        return 1;
    case CLIENT_OPT_BASE + 8:
        o->guest_domain = arg;
        return 1;
    case CLIENT_OPT_BASE + 9:
        o->domain = arg;
        return 1;
    default:
        return 0;
    }
}

int client_options_check(const client_options *o)
{
    if (o->guest && o->jid && getenv("ONAIR_JID") != o->jid) {
        fputs("--guest and --jid exclude each other\n", stderr);
        return EXIT_USAGE;
    }
    if (!o->guest) {
        if (!o->jid || !*o->jid) {
            fputs("no account: give --jid JID (or set ONAIR_JID)\n", stderr);
            return EXIT_USAGE;
        }
        const char *at = strchr(o->jid, '@');
        if (!at || at == o->jid || !at[1] || strchr(o->jid, '/')) {
            fprintf(stderr, "--jid: '%s' is not an account address (user@domain)\n", o->jid);
            return EXIT_USAGE;
        }
    } else if (!o->guest_domain && !o->domain) {
        fputs("--guest: the server's domain is unknown: give --domain or --guest-domain\n", stderr);
        return EXIT_USAGE;
    }
    if (o->cafile && access(o->cafile, R_OK) != 0) {
        fprintf(stderr, "--cafile: cannot read %s: %s\n", o->cafile, strerror(errno));
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* ---- connecting ---- */

static void log_handler(void *ud, xmpp_log_level_t level, const char *area, const char *msg)
{
    client *c = ud;
    int err;
    if (level >= XMPP_LEVEL_ERROR)
        snprintf(c->last_error, sizeof c->last_error, "%s", msg);
    /* libstrophe 0.12 passes 0 to the connection handler when a connect()
     * fails; the errno is only in this debug line */
    else if (sscanf(msg, "connection failed, error %d", &err) == 1)
        c->socket_error = err;
    if (c->verbose >= 2)
        fprintf(stderr, "%s: [%s] %s\n", c->progname, area, msg);
}

/* Called by libstrophe (OpenSSL backend) only when verification failed. */
static int certfail_handler(const xmpp_tlscert_t *cert, const char *const errormsg)
{
    const char *subject = xmpp_tlscert_get_string(cert, XMPP_CERT_SUBJECT);
    const char *fp = xmpp_tlscert_get_string(cert, XMPP_CERT_FINGERPRINT_SHA256);
    fprintf(stderr,
            "the server's TLS certificate is not trusted: %s\n"
            "  subject: %s\n  SHA-256 fingerprint: %s\n"
            "  (give the CA or the server's own certificate with --cafile FILE)\n",
            errormsg ? errormsg : "verification failed", subject ? subject : "?", fp ? fp : "?");
    return 0;
}

static void conn_handler(xmpp_conn_t *conn, xmpp_conn_event_t event, int error,
                         xmpp_stream_error_t *stream_error, void *ud)
{
    client *c = ud;
    if (event == XMPP_CONN_CONNECT) {
        const char *me = xmpp_conn_get_bound_jid(conn);
        snprintf(c->bound_jid, sizeof c->bound_jid, "%s", me ? me : "");
        c->bound = true;
        return;
    }
    if (event == XMPP_CONN_DISCONNECT || event == XMPP_CONN_FAIL) {
        c->ended = true;
        c->conn_error = error;
        if (stream_error) {
            c->stream_error = true;
            snprintf(c->stream_error_text, sizeof c->stream_error_text, "%s",
                     stream_error->text ? stream_error->text : "");
        }
    }
}

/* HOST, HOST:PORT or [V6]:PORT into host (written to buf) and port. */
static bool split_server(const char *server, char *buf, size_t len, unsigned short *port)
{
    const char *colon = NULL;
    *port = 0;
    if (server[0] == '[') {
        const char *close = strchr(server, ']');
        if (!close || (close[1] && close[1] != ':'))
            return false;
        snprintf(buf, len, "%.*s", (int)(close - server - 1), server + 1);
        colon = close[1] ? close + 1 : NULL;
    } else {
        colon = strrchr(server, ':');
        if (colon && strchr(server, ':') != colon)
            colon = NULL; /* a bare IPv6 address */
        snprintf(buf, len, "%.*s", colon ? (int)(colon - server) : (int)strlen(server), server);
    }
    if (colon) {
        char *end;
        long p = strtol(colon + 1, &end, 10);
        if (*end || p < 1 || p > 65535)
            return false;
        *port = (unsigned short)p;
    }
    return buf[0] != '\0';
}

static void say(const client *c, const char *fmt, ...)
{
    if (c->verbose < 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", c->progname);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int client_connect(client **out, const client_options *o, const char *password, const char *progname)
{
    *out = NULL;
    client *c = calloc(1, sizeof *c);
    if (!c) {
        fprintf(stderr, "%s: out of memory\n", progname);
        return EXIT_CONNECT;
    }
    c->progname = progname;
    c->verbose = o->verbose;
    c->timeout_ms = (o->timeout_s > 0 ? o->timeout_s : DEFAULT_TIMEOUT_S) * 1000;
    c->log.handler = log_handler;
    c->log.userdata = c;

    char jid[512];
    if (o->guest) {
        if (o->guest_domain)
            snprintf(jid, sizeof jid, "%s", o->guest_domain);
        else
            snprintf(jid, sizeof jid, "guest.%s", o->domain);
        const char *parent = o->domain ? o->domain : strchr(jid, '.') ? strchr(jid, '.') + 1 : jid;
        snprintf(c->domain, sizeof c->domain, "%.255s", parent);
    } else {
        snprintf(jid, sizeof jid, "%s", o->jid);
        snprintf(c->domain, sizeof c->domain, "%.255s", strchr(o->jid, '@') + 1);
    }

    char host[256] = "";
    unsigned short port = 0;
    if (o->server && !split_server(o->server, host, sizeof host, &port)) {
        fprintf(stderr, "%s: --server: '%s' is not HOST, HOST:PORT or [ADDRESS]:PORT\n", progname, o->server);
        free(c);
        return EXIT_USAGE;
    }
    if (!port && host[0])
        port = o->direct_tls ? 5223 : 5222;

    xmpp_initialize();
    c->ctx = xmpp_ctx_new(NULL, &c->log);
    c->conn = c->ctx ? xmpp_conn_new(c->ctx) : NULL;
    if (!c->conn) {
        fprintf(stderr, "%s: out of memory\n", progname);
        client_free(c);
        return EXIT_CONNECT;
    }
    xmpp_conn_set_flags(c->conn, XMPP_CONN_FLAG_MANDATORY_TLS | XMPP_CONN_FLAG_DISABLE_SM |
                                     (o->direct_tls ? XMPP_CONN_FLAG_LEGACY_SSL : 0) |
                                     (o->insecure ? XMPP_CONN_FLAG_TRUST_TLS : 0));
    if (o->cafile)
        xmpp_conn_set_cafile(c->conn, o->cafile);
    xmpp_conn_set_certfail_handler(c->conn, certfail_handler);
    xmpp_conn_set_jid(c->conn, jid);
    if (password)
        xmpp_conn_set_pass(c->conn, password);

    const char *where = host[0] ? host : c->domain;
    snprintf(c->host, sizeof c->host, "%s", where);
    char portbuf[16] = "";
    if (port)
        snprintf(portbuf, sizeof portbuf, ":%u", port);
    say(c, "connecting to %s%s as %s", where, portbuf, jid);
    if (xmpp_connect_client(c->conn, host[0] ? host : NULL, port, conn_handler, c) != XMPP_EOK) {
        fprintf(stderr, "%s: cannot connect to %s: %s\n", progname, where,
                c->last_error[0] ? c->last_error : "the address could not be resolved");
        client_free(c);
        return EXIT_CONNECT;
    }
    long deadline = monotonic_ms() + c->timeout_ms;
    while (!c->bound && !c->ended && monotonic_ms() < deadline) {
        xmpp_run_once(c->ctx, 50);
        if (!c->was_secured && xmpp_conn_is_secured(c->conn))
            c->was_secured = true;
    }
    if (c->bound) {
        say(c, "logged in as %s", c->bound_jid);
        *out = c;
        return EXIT_OK;
    }
    if (!c->ended)
        fprintf(stderr, "%s: no login within %d s at %s%s\n", progname, c->timeout_ms / 1000, where, portbuf);
    else if (c->stream_error)
        fprintf(stderr, "%s: the server at %s%s ended the connection%s%s\n", progname, where, portbuf,
                c->stream_error_text[0] ? ": " : "", c->stream_error_text);
    else if (c->was_secured && o->guest)
        fprintf(stderr, "%s: the server refused the guest login on %s\n", progname, jid);
    else if (c->was_secured)
        fprintf(stderr, "%s: login refused for %s: wrong address or password\n", progname, jid);
    else if (c->socket_error)
        fprintf(stderr, "%s: cannot connect to %s%s: %s\n", progname, where, portbuf, strerror(c->socket_error));
    else if (c->conn_error == ECONNABORTED)
        fprintf(stderr, "%s: no secure connection with %s%s: the TLS handshake failed\n", progname, where, portbuf);
    else if (c->conn_error && c->conn_error != ECONNRESET)
        fprintf(stderr, "%s: cannot connect to %s%s: %s\n", progname, where, portbuf, strerror(c->conn_error));
    else
        fprintf(stderr, "%s: no secure connection with %s%s%s%s\n", progname, where, portbuf,
                c->last_error[0] ? ": " : "", c->last_error);
    client_free(c);
    return EXIT_CONNECT;
}

void client_run_once(client *c, unsigned long timeout_ms)
{
    xmpp_run_once(c->ctx, timeout_ms);
}

bool client_is_connected(const client *c)
{
    return c->bound && !c->ended;
}

void client_send(client *c, xmpp_stanza_t *stanza)
{
    xmpp_send(c->conn, stanza);
}

const char *client_next_id(client *c, const char *prefix, char buf[64])
{
    snprintf(buf, 64, "%s-%lu", prefix, ++c->next_id);
    return buf;
}

typedef struct pending {
    xmpp_stanza_t *answer;
} pending;

static int answer_handler(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *ud)
{
    (void)conn;
    pending *p = ud;
    if (!p->answer)
        p->answer = xmpp_stanza_clone(stanza);
    return 0;
}

xmpp_stanza_t *client_request(client *c, xmpp_stanza_t *iq, int timeout_ms, const char **why)
{
    char idbuf[64];
    const char *id = xmpp_stanza_get_id(iq);
    if (!id) {
        id = client_next_id(c, "req", idbuf);
        xmpp_stanza_set_id(iq, id);
    }
    if (!client_is_connected(c)) {
        *why = "the connection closed";
        return NULL;
    }
    pending p = {NULL};
    char *key = strdup(id);
    if (!key) {
        *why = "out of memory";
        return NULL;
    }
    xmpp_id_handler_add(c->conn, answer_handler, key, &p);
    xmpp_send(c->conn, iq);
    long deadline = monotonic_ms() + (timeout_ms > 0 ? timeout_ms : c->timeout_ms);
    while (!p.answer && !c->ended && monotonic_ms() < deadline)
        xmpp_run_once(c->ctx, 50);
    if (!p.answer) {
        xmpp_id_handler_delete(c->conn, answer_handler, key);
        *why = c->ended ? "the connection closed" : "no answer in time";
    }
    free(key);
    return p.answer;
}

void client_disconnect(client *c)
{
    if (!c || !c->conn || c->ended || !c->bound)
        return;
    xmpp_disconnect(c->conn);
    long deadline = monotonic_ms() + 2000;
    while (!c->ended && monotonic_ms() < deadline)
        xmpp_run_once(c->ctx, 50);
}

void client_free(client *c)
{
    if (!c)
        return;
    if (c->conn)
        xmpp_conn_release(c->conn);
    if (c->ctx)
        xmpp_ctx_free(c->ctx);
    xmpp_shutdown();
    free(c);
}

xmpp_ctx_t *client_ctx(client *c)
{
    return c->ctx;
}

xmpp_conn_t *client_conn(client *c)
{
    return c->conn;
}

const char *client_bound_jid(const client *c)
{
    return c->bound_jid;
}

const char *client_domain(const client *c)
{
    return c->domain;
}

const char *client_server_host(const client *c)
{
    return c->host;
}

int client_timeout_ms(const client *c)
{
    return c->timeout_ms;
}

/* ---- stanza errors ---- */

const char *stanza_child_text(xmpp_stanza_t *stanza, const char *name, char *buf, size_t len)
{
    xmpp_stanza_t *child = stanza ? xmpp_stanza_get_child_by_name(stanza, name) : NULL;
    if (!child)
        return NULL;
    char *text = xmpp_stanza_get_text(child);
    snprintf(buf, len, "%s", text ? text : "");
    if (text)
        xmpp_free(xmpp_stanza_get_context(stanza), text);
    return buf;
}

bool stanza_error_read(xmpp_stanza_t *stanza, stanza_error *e)
{
    memset(e, 0, sizeof *e);
    e->reason = e->text;
    xmpp_stanza_t *err = xmpp_stanza_get_child_by_name(stanza, "error");
    if (!err)
        return false;
    const char *type = xmpp_stanza_get_type(err);
    snprintf(e->type, sizeof e->type, "%s", type ? type : "cancel");
    for (xmpp_stanza_t *ch = xmpp_stanza_get_children(err); ch; ch = xmpp_stanza_get_next(ch)) {
        const char *name = xmpp_stanza_get_name(ch);
        const char *ns = xmpp_stanza_get_ns(ch);
        if (!name)
            continue;
        if (ns && strcmp(ns, NS_STANZAS) == 0) {
            if (strcmp(name, "text") == 0) {
                char *t = xmpp_stanza_get_text(ch);
                snprintf(e->text, sizeof e->text, "%s", t ? t : "");
                if (t)
                    xmpp_free(xmpp_stanza_get_context(stanza), t);
            } else if (!e->condition[0]) {
                snprintf(e->condition, sizeof e->condition, "%s", name);
            }
        } else if (!e->app[0]) {
            snprintf(e->app, sizeof e->app, "%s", name);
        }
    }
    if (!e->condition[0])
        snprintf(e->condition, sizeof e->condition, "undefined-condition");
    /* "<var>: <reason>" names a field (specs/adhoc.md, "Invalid input") */
    size_t n = strspn(e->text, "abcdefghijklmnopqrstuvwxyz0123456789_-#");
    if (n > 0 && n < sizeof e->field && e->text[n] == ':' && e->text[n + 1] == ' ') {
        memcpy(e->field, e->text, n);
        e->field[n] = '\0';
        e->reason = e->text + n + 2;
    }
    return true;
}
