/* strophe_muc.c - a libstrophe (0.12) chat-room client for the onair
 * integration tests.
 *
 *   strophe_muc JID PASSWORD HOST PORT ROOM NICK [ROOM_PASSWORD]
 *
 * Logs in (STARTTLS, trusting the server's self-signed certificate), enters
 * ROOM as NICK (XEP-0045, with the room password when given, asking for no
 * history), waits for its self-presence (status 110) and the subject, sends
 * a groupchat message and waits for its reflection (same id, from
 * ROOM/NICK), sends itself a private message through the room and waits for
 * it, then leaves and waits for the unavailable self-presence.  Prints
 * "OK <subject>" and exits 0; prints "FAIL: <why>" and exits 1 on a presence
 * error, any other failure, or after 20 seconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <strophe.h>

#define DEADLINE_S 20
#define NS_MUC "http://jabber.org/protocol/muc"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"

typedef enum stage { JOINING, SUBJECT, GROUPCHAT, PRIVATE, LEAVING } stage;

typedef struct state {
    xmpp_ctx_t *ctx;
    const char *room, *nick, *room_password;
    char occupant[512];
    char body[64];
    char subject[256];
    stage stage;
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

static int has_status(xmpp_stanza_t *presence, const char *code)
{
    xmpp_stanza_t *x = xmpp_stanza_get_child_by_ns(presence, NS_MUC_USER);
    for (xmpp_stanza_t *c = x ? xmpp_stanza_get_children(x) : NULL; c; c = xmpp_stanza_get_next(c)) {
        const char *name = xmpp_stanza_get_name(c);
        const char *v = xmpp_stanza_get_attribute(c, "code");
        if (name && strcmp(name, "status") == 0 && v && strcmp(v, code) == 0)
            return 1;
    }
    return 0;
}

static void send_message(xmpp_conn_t *conn, state *st, const char *type, const char *to, const char *id)
{
    xmpp_stanza_t *msg = xmpp_message_new(st->ctx, type, to, id);
    xmpp_message_set_body(msg, st->body);
    xmpp_send(conn, msg);
    xmpp_stanza_release(msg);
}

static int presence_handler(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    state *st = userdata;
    const char *from = xmpp_stanza_get_from(stanza);
    const char *type = xmpp_stanza_get_type(stanza);
    if (!from || strcmp(from, st->occupant) != 0)
        return 1;
    if (type && strcmp(type, "error") == 0) {
        fail(conn, st, "the room refused the join");
        return 0;
    }
    if (!has_status(stanza, "110"))
        return 1;
    if (st->stage == JOINING && !type) {
        st->stage = SUBJECT;
    } else if (st->stage == LEAVING && type && strcmp(type, "unavailable") == 0) {
        st->ok = 1;
        xmpp_disconnect(conn);
        return 0;
    }
    return 1;
}

static int message_handler(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    state *st = userdata;
    const char *type = xmpp_stanza_get_type(stanza);
    const char *from = xmpp_stanza_get_from(stanza);
    const char *id = xmpp_stanza_get_id(stanza);
    if (type && strcmp(type, "error") == 0) {
        fail(conn, st, "a message bounced with an error");
        return 0;
    }
    if (st->stage == SUBJECT) {
        xmpp_stanza_t *subj = xmpp_stanza_get_child_by_name(stanza, "subject");
        if (subj && !xmpp_stanza_get_child_by_name(stanza, "body")) {
            char *text = xmpp_stanza_get_text(subj);
            snprintf(st->subject, sizeof st->subject, "%s", text ? text : "");
            if (text)
                xmpp_free(st->ctx, text);
            st->stage = GROUPCHAT;
            send_message(conn, st, "groupchat", st->room, "onair-gc-1");
        }
        return 1;
    }
    char *body = xmpp_message_get_body(stanza);
    int mine = body && strcmp(body, st->body) == 0 && from && strcmp(from, st->occupant) == 0;
    if (body)
        xmpp_free(st->ctx, body);
    if (!mine)
        return 1;
    if (st->stage == GROUPCHAT && type && strcmp(type, "groupchat") == 0 && id && strcmp(id, "onair-gc-1") == 0) {
        st->stage = PRIVATE;
        send_message(conn, st, "chat", st->occupant, "onair-pm-1");
    } else if (st->stage == PRIVATE && type && strcmp(type, "chat") == 0) {
        st->stage = LEAVING;
        xmpp_stanza_t *p = xmpp_presence_new(st->ctx);
        xmpp_stanza_set_to(p, st->occupant);
        xmpp_stanza_set_type(p, "unavailable");
        xmpp_send(conn, p);
        xmpp_stanza_release(p);
    }
    return 1;
}

static void conn_handler(xmpp_conn_t *conn, xmpp_conn_event_t event, int error,
                         xmpp_stream_error_t *stream_error, void *userdata)
{
    state *st = userdata;
    (void)error;
    if (event == XMPP_CONN_CONNECT) {
        xmpp_handler_add(conn, presence_handler, NULL, "presence", NULL, st);
        xmpp_handler_add(conn, message_handler, NULL, "message", NULL, st);
        xmpp_stanza_t *p = xmpp_presence_new(st->ctx);
        xmpp_stanza_set_to(p, st->occupant);
        xmpp_stanza_t *x = xmpp_stanza_new(st->ctx);
        xmpp_stanza_set_name(x, "x");
        xmpp_stanza_set_ns(x, NS_MUC);
        xmpp_stanza_t *h = xmpp_stanza_new(st->ctx);
        xmpp_stanza_set_name(h, "history");
        xmpp_stanza_set_attribute(h, "maxchars", "0");
        xmpp_stanza_add_child(x, h);
        xmpp_stanza_release(h);
        if (st->room_password) {
            xmpp_stanza_t *pw = xmpp_stanza_new(st->ctx);
            xmpp_stanza_t *t = xmpp_stanza_new(st->ctx);
            xmpp_stanza_set_name(pw, "password");
            xmpp_stanza_set_text(t, st->room_password);
            xmpp_stanza_add_child(pw, t);
            xmpp_stanza_add_child(x, pw);
            xmpp_stanza_release(t);
            xmpp_stanza_release(pw);
        }
        xmpp_stanza_add_child(p, x);
        xmpp_stanza_release(x);
        xmpp_send(conn, p);
        xmpp_stanza_release(p);
    } else if (event == XMPP_CONN_DISCONNECT || event == XMPP_CONN_FAIL) {
        if (!st->ok && !st->why)
            st->why = stream_error ? "stream error" : "disconnected before finishing (login failed?)";
        st->done = 1;
    }
}

int main(int argc, char **argv)
{
    if (argc != 7 && argc != 8) {
        fprintf(stderr, "usage: %s JID PASSWORD HOST PORT ROOM NICK [ROOM_PASSWORD]\n", argv[0]);
        return 2;
    }
    state st;
    memset(&st, 0, sizeof st);
    st.room = argv[5];
    st.nick = argv[6];
    st.room_password = argc == 8 ? argv[7] : NULL;
    snprintf(st.occupant, sizeof st.occupant, "%s/%s", st.room, st.nick);
    snprintf(st.body, sizeof st.body, "strophe-muc-%ld-%d", (long)time(NULL), (int)getpid());

    xmpp_initialize();
    xmpp_log_t *log = getenv("STROPHE_DEBUG") ? xmpp_get_default_logger(XMPP_LEVEL_DEBUG)
                                              : xmpp_get_default_logger(XMPP_LEVEL_ERROR);
    st.ctx = xmpp_ctx_new(NULL, log);
    xmpp_conn_t *conn = xmpp_conn_new(st.ctx);
    xmpp_conn_set_flags(conn, XMPP_CONN_FLAG_TRUST_TLS | XMPP_CONN_FLAG_MANDATORY_TLS | XMPP_CONN_FLAG_DISABLE_SM);
    xmpp_conn_set_jid(conn, argv[1]);
    xmpp_conn_set_pass(conn, argv[2]);
    if (xmpp_connect_client(conn, argv[3], (unsigned short)atoi(argv[4]), conn_handler, &st) != XMPP_EOK) {
        printf("FAIL: cannot start connecting\n");
        return 1;
    }
    time_t deadline = time(NULL) + DEADLINE_S;
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
        printf("OK %s\n", st.subject);
        return 0;
    }
    printf("FAIL: %s\n", st.why ? st.why : "unknown");
    return 1;
}
