/* strophe_login.c - a libstrophe (0.12) client for the onair integration tests.
 *
 *   strophe_login [--direct-tls] JID PASSWORD HOST PORT
 *
 * Connects (STARTTLS, or direct TLS with --direct-tls), trusts the server's
 * self-signed certificate, logs in, sends a message to its own full JID,
 * waits for it to come back, pings the server (XEP-0199) and waits for the
 * result.  Prints "OK" and exits 0 on success; prints "FAIL: <why>" and
 * exits 1 on any failure or after 20 seconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <strophe.h>

#define DEADLINE_S 20

typedef struct state {
    xmpp_ctx_t *ctx;
    char body[64];
    char domain[256];
    int done;
    int ok;
    const char *why;
} state;

static void fail(xmpp_conn_t *conn, state *st, const char *why)
{
    if (!st->why)
        st->why = why;
    st->ok = 0;
    xmpp_disconnect(conn);
}

static int pong_handler(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    state *st = userdata;
    const char *type = xmpp_stanza_get_type(stanza);
    if (type && strcmp(type, "result") == 0) {
        st->ok = 1;
        xmpp_disconnect(conn);
    } else {
        fail(conn, st, "ping answered with an error");
    }
    return 0;
}

static void send_ping(xmpp_conn_t *conn, state *st)
{
    xmpp_stanza_t *iq = xmpp_iq_new(st->ctx, "get", "onair-ping-1");
    xmpp_stanza_t *ping = xmpp_stanza_new(st->ctx);
    xmpp_stanza_set_to(iq, st->domain);
    xmpp_stanza_set_name(ping, "ping");
    xmpp_stanza_set_ns(ping, "urn:xmpp:ping");
    xmpp_stanza_add_child(iq, ping);
    xmpp_stanza_release(ping);
    xmpp_id_handler_add(conn, pong_handler, "onair-ping-1", st);
    xmpp_send(conn, iq);
    xmpp_stanza_release(iq);
}

static int message_handler(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    state *st = userdata;
    const char *type = xmpp_stanza_get_type(stanza);
    char *body;
    if (type && strcmp(type, "error") == 0) {
        fail(conn, st, "message bounced with an error");
        return 0;
    }
    body = xmpp_message_get_body(stanza);
    if (body && strcmp(body, st->body) == 0) {
        xmpp_free(st->ctx, body);
        send_ping(conn, st);
        return 0; /* done with messages */
    }
    if (body)
        xmpp_free(st->ctx, body);
    return 1; /* keep waiting */
}

static void conn_handler(xmpp_conn_t *conn, xmpp_conn_event_t event, int error,
                         xmpp_stream_error_t *stream_error, void *userdata)
{
    state *st = userdata;
    (void)error;
    if (event == XMPP_CONN_CONNECT) {
        const char *me = xmpp_conn_get_bound_jid(conn);
        xmpp_stanza_t *msg;
        if (!me) {
            fail(conn, st, "no bound JID");
            return;
        }
        xmpp_handler_add(conn, message_handler, NULL, "message", NULL, st);
        msg = xmpp_message_new(st->ctx, "chat", me, "onair-msg-1");
        xmpp_message_set_body(msg, st->body);
        xmpp_send(conn, msg);
        xmpp_stanza_release(msg);
    } else if (event == XMPP_CONN_DISCONNECT || event == XMPP_CONN_FAIL) {
        if (!st->ok && !st->why)
            st->why = stream_error ? "stream error" : "disconnected before finishing (login failed?)";
        st->done = 1;
    }
}

int main(int argc, char **argv)
{
    int argi = 1, direct_tls = 0;
    const char *jid, *password, *host;
    unsigned short port;
    xmpp_log_t *log;
    xmpp_conn_t *conn;
    state st;
    time_t deadline;
    char *domain;

    if (argc > 1 && strcmp(argv[1], "--direct-tls") == 0) {
        direct_tls = 1;
        argi++;
    }
    if (argc - argi != 4) {
        fprintf(stderr, "usage: %s [--direct-tls] JID PASSWORD HOST PORT\n", argv[0]);
        return 2;
    }
    jid = argv[argi];
    password = argv[argi + 1];
    host = argv[argi + 2];
    port = (unsigned short)atoi(argv[argi + 3]);

    memset(&st, 0, sizeof st);
    snprintf(st.body, sizeof st.body, "strophe-%ld-%d", (long)time(NULL), (int)getpid());

    xmpp_initialize();
    log = getenv("STROPHE_DEBUG") ? xmpp_get_default_logger(XMPP_LEVEL_DEBUG)
                                  : xmpp_get_default_logger(XMPP_LEVEL_ERROR);
    st.ctx = xmpp_ctx_new(NULL, log);
    domain = xmpp_jid_domain(st.ctx, jid);
    snprintf(st.domain, sizeof st.domain, "%s", domain ? domain : "localhost");
    if (domain)
        xmpp_free(st.ctx, domain);

    conn = xmpp_conn_new(st.ctx);
    xmpp_conn_set_flags(conn, XMPP_CONN_FLAG_TRUST_TLS | XMPP_CONN_FLAG_MANDATORY_TLS |
                                  XMPP_CONN_FLAG_DISABLE_SM |
                                  (direct_tls ? XMPP_CONN_FLAG_LEGACY_SSL : 0));
    xmpp_conn_set_jid(conn, jid);
    xmpp_conn_set_pass(conn, password);
    if (xmpp_connect_client(conn, host, port, conn_handler, &st) != XMPP_EOK) {
        printf("FAIL: cannot start connecting\n");
        return 1;
    }

    deadline = time(NULL) + DEADLINE_S;
    while (!st.done && time(NULL) < deadline)
        xmpp_run_once(st.ctx, 100);
    if (!st.done) {
        st.ok = 0;
        if (!st.why)
            st.why = "timed out";
    }

    xmpp_conn_release(conn);
    xmpp_ctx_free(st.ctx);
    xmpp_shutdown();

    if (st.ok) {
        printf("OK\n");
        return 0;
    }
    printf("FAIL: %s\n", st.why ? st.why : "unknown");
    return 1;
}
