/* onair-watch - the viewer's command-line client (clients/README.md).
 *
 *   onair-watch [options] ROOM
 *
 * Enters a live's chat room (XEP-0045, specs/muc.md) with an account or as a
 * guest (SASL ANONYMOUS), with the live's shared password when it needs
 * one, a nickname and a self-introduction; prints the chat on stdout
 * (notices and one's own messages marked) and sends the lines typed on
 * stdin.  It ends cleanly when the room is destroyed at its close, saying
 * why.  The room is asked first with disco#info, so a room that is not open
 * yet is reported with its opening time before anything is entered.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "datetime.h"
#include "form.h"
#include "prompt.h"
#include "stream.h"

#define PROG "onair-watch"
#define NS_MUC "http://jabber.org/protocol/muc"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_DELAY "urn:xmpp:delay"
#define LINE_MAX_BYTES 4096

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

typedef struct watch {
    client_options o;
    client *c;
    xmpp_ctx_t *ctx;
    const char *room_arg;
    char room[512];      /* <id>@<muc host> */
    char occupant[700];  /* room/nick */
    const char *nick;
    char nick_buf[128];
    const char *intro;
    const char *room_password_file;
    char *room_password;
    int history;
    bool no_input;
    bool wait_open;
    const char *media_host;
    watch_stream stream;
    bool want_stream;
    /* from disco#info */
    char title[256];
    bool password_protected;
    int64_t start, end, close;
    /* state */
    char **nicks; /* the occupants this client has seen enter */
    size_t nnicks;
    bool joined;
    bool join_failed;
    stanza_error join_error;
    bool done;
    int exit_code;
    bool input_open;
    char line[LINE_MAX_BYTES];
    size_t line_len;
} watch;

/* ---- output ---- */

static void stamp_now(char out[16], int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(out, 16, "%H:%M:%S", &tm);
}

static void say_at(int64_t t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say_at(int64_t t, const char *fmt, ...)
{
    char ts[16];
    stamp_now(ts, t);
    printf("[%s] ", ts);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void say_line(const char *line)
{
    say_at(time(NULL), "%s", line);
}

static char *format_local(int64_t t, char out[64])
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(out, 64, "%Y-%m-%d %H:%M:%S %Z", &tm);
    return out;
}

/* The time of a stanza: its XEP-0203 delay stamp, else now. */
static int64_t stanza_time(xmpp_stanza_t *st)
{
    xmpp_stanza_t *d = xmpp_stanza_get_child_by_name_and_ns(st, "delay", NS_DELAY);
    const char *stamp = d ? xmpp_stanza_get_attribute(d, "stamp") : NULL;
    int64_t t;
    if (stamp && datetime_parse(stamp, &t, NULL) == 0)
        return t;
    return (int64_t)time(NULL);
}

static const char *resource_of(const char *jid)
{
    const char *slash = jid ? strchr(jid, '/') : NULL;
    return slash ? slash + 1 : NULL;
}

static bool is_room(const watch *w, const char *from)
{
    return from && strcmp(from, w->room) == 0;
}

static bool from_room(const watch *w, const char *from)
{
    size_t n = strlen(w->room);
    return from && strncmp(from, w->room, n) == 0 && (from[n] == '\0' || from[n] == '/');
}

static bool has_status(xmpp_stanza_t *st, const char *code)
{
    xmpp_stanza_t *x = xmpp_stanza_get_child_by_name_and_ns(st, "x", NS_MUC_USER);
    for (xmpp_stanza_t *c = x ? xmpp_stanza_get_children(x) : NULL; c; c = xmpp_stanza_get_next(c)) {
        const char *name = xmpp_stanza_get_name(c);
        const char *v = xmpp_stanza_get_attribute(c, "code");
        if (name && strcmp(name, "status") == 0 && v && strcmp(v, code) == 0)
            return true;
    }
    return false;
}

/* The text of child name of parent (a copy in buf), or "". */
static const char *child_text(xmpp_stanza_t *parent, const char *name, char *buf, size_t len)
{
    const char *t = parent ? stanza_child_text(parent, name, buf, len) : NULL;
    if (!t) {
        buf[0] = '\0';
        return buf;
    }
    return t;
}

/* ---- the room's answers ---- */

static void describe_refusal(const watch *w, const stanza_error *e)
{
    const char *cond = e->condition;
    if (strcmp(cond, "not-authorized") == 0)
        fprintf(stderr, PROG ": %s: %s\n", w->room,
                w->room_password ? "wrong shared password" : "this live needs its shared password (--room-password-file)");
    else if (strcmp(cond, "item-not-found") == 0)
        fprintf(stderr, PROG ": %s: %s\n", w->room, e->text[0] ? e->text : "no such room");
    else if (strcmp(cond, "service-unavailable") == 0)
        fprintf(stderr, PROG ": %s: the room is full%s%s\n", w->room, e->text[0] ? ": " : "", e->text);
    else if (strcmp(cond, "conflict") == 0)
        fprintf(stderr, PROG ": %s: the nickname '%s' is taken: choose another with --nick\n", w->room, w->nick);
    else if (strcmp(cond, "forbidden") == 0)
        fprintf(stderr, PROG ": %s: you are banned from this room%s%s\n", w->room, e->text[0] ? ": " : "", e->text);
    else if (strcmp(cond, "not-acceptable") == 0 || strcmp(cond, "jid-malformed") == 0)
        fprintf(stderr, PROG ": %s: the nickname '%s' is not acceptable%s%s\n", w->room, w->nick,
                e->text[0] ? ": " : "", e->text);
    else
        fprintf(stderr, PROG ": %s: refused: %s%s%s\n", w->room, cond, e->text[0] ? ": " : "", e->text);
}

static void room_closed(watch *w, xmpp_stanza_t *presence)
{
    xmpp_stanza_t *x = xmpp_stanza_get_child_by_name_and_ns(presence, "x", NS_MUC_USER);
    xmpp_stanza_t *d = x ? xmpp_stanza_get_child_by_name(x, "destroy") : NULL;
    char reason[512];
    if (d) {
        child_text(d, "reason", reason, sizeof reason);
        say_at(time(NULL), "*** The room is closed%s%s", reason[0] ? ": " : "", reason);
        w->exit_code = EXIT_OK;
    } else if (has_status(presence, "307") || has_status(presence, "301")) {
        xmpp_stanza_t *item = x ? xmpp_stanza_get_child_by_name(x, "item") : NULL;
        child_text(item, "reason", reason, sizeof reason);
        say_at(time(NULL), "*** You were %s the room%s%s", has_status(presence, "301") ? "banned from" : "removed from",
               reason[0] ? ": " : "", reason);
        w->exit_code = EXIT_REFUSED;
    } else {
        say_at(time(NULL), "*** You left the room");
    }
    w->done = true;
}

/* The occupants seen: a presence from a nickname not in the set is an entry. */
static bool nick_known(const watch *w, const char *nick)
{
    for (size_t i = 0; i < w->nnicks; i++)
        if (strcmp(w->nicks[i], nick) == 0)
            return true;
    return false;
}

static void nick_add(watch *w, const char *nick)
{
    char **n = realloc(w->nicks, (w->nnicks + 1) * sizeof *n);
    if (!n)
        return;
    w->nicks = n;
    if ((n[w->nnicks] = strdup(nick)))
        w->nnicks++;
}

static void nick_remove(watch *w, const char *nick)
{
    for (size_t i = 0; i < w->nnicks; i++)
        if (strcmp(w->nicks[i], nick) == 0) {
            free(w->nicks[i]);
            w->nicks[i] = w->nicks[--w->nnicks];
            return;
        }
}

static void nicks_free(watch *w)
{
    for (size_t i = 0; i < w->nnicks; i++)
        free(w->nicks[i]);
    free(w->nicks);
    w->nicks = NULL;
    w->nnicks = 0;
}

static void print_present(const watch *w)
{
    if (!w->nnicks) {
        say_at(time(NULL), "*** Nobody else is in the room yet");
        return;
    }
    char line[2048];
    size_t used = 0;
    for (size_t i = 0; i < w->nnicks && used < sizeof line - 4; i++)
        used += (size_t)snprintf(line + used, sizeof line - used, "%s%s", i ? ", " : "", w->nicks[i]);
    say_at(time(NULL), "*** In the room: %s", line);
}

static int presence_handler(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    (void)conn;
    watch *w = ud;
    const char *from = xmpp_stanza_get_from(st);
    const char *type = xmpp_stanza_get_type(st);
    if (!from_room(w, from))
        return 1;
    const char *nick = resource_of(from);
    if (type && strcmp(type, "error") == 0) {
        if (!w->joined && from && strcmp(from, w->occupant) == 0) {
            w->join_failed = true;
            stanza_error_read(st, &w->join_error);
        }
        return 1;
    }
    bool self = has_status(st, "110") || (from && strcmp(from, w->occupant) == 0);
    bool gone = type && strcmp(type, "unavailable") == 0;
    char status[256];
    child_text(st, "status", status, sizeof status);
    if (self) {
        if (gone) {
            if (has_status(st, "303"))
                return 1; /* a nickname change */
            room_closed(w, st);
        } else if (!w->joined) {
            char when[64];
            w->joined = true;
            say_at(time(NULL), "*** Entered \"%s\" as %s%s%s", w->title[0] ? w->title : w->room, w->nick,
                   w->close ? "; the room closes at " : "", w->close ? format_local(w->close, when) : "");
            print_present(w);
        }
        return 1;
    }
    if (!nick)
        return 1;
    if (gone) {
        nick_remove(w, nick);
        if (has_status(st, "303")) {
            xmpp_stanza_t *x = xmpp_stanza_get_child_by_name_and_ns(st, "x", NS_MUC_USER);
            xmpp_stanza_t *item = x ? xmpp_stanza_get_child_by_name(x, "item") : NULL;
            const char *to = item ? xmpp_stanza_get_attribute(item, "nick") : NULL;
            if (to)
                nick_add(w, to);
            say_at(time(NULL), "--- %s is now %s", nick, to ? to : "?");
        } else {
            say_at(time(NULL), "<-- %s left%s", nick,
                   has_status(st, "307") ? " (removed)" : has_status(st, "301") ? " (banned)" : "");
        }
    } else if (!type && !nick_known(w, nick)) {
        nick_add(w, nick);
        if (w->joined)
            say_at(time(NULL), "--> %s entered%s%s", nick, status[0] ? ": " : "", status);
    }
    return 1;
}

static int message_handler(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    (void)conn;
    watch *w = ud;
    const char *from = xmpp_stanza_get_from(st);
    const char *type = xmpp_stanza_get_type(st);
    if (!from_room(w, from))
        return 1;
    char body[LINE_MAX_BYTES + 64];
    xmpp_stanza_t *b = xmpp_stanza_get_child_by_name(st, "body");
    bool has_body = b != NULL;
    child_text(st, "body", body, sizeof body);
    if (type && strcmp(type, "error") == 0) {
        stanza_error e;
        stanza_error_read(st, &e);
        say_at(time(NULL), "!!! not sent%s%s%s: %s%s%s", has_body ? " (\"" : "", has_body ? body : "",
               has_body ? "\")" : "", e.condition, e.text[0] ? ": " : "", e.text);
        return 1;
    }
    int64_t t = stanza_time(st);
    const char *nick = resource_of(from);
    if (type && strcmp(type, "groupchat") == 0) {
        xmpp_stanza_t *subj = xmpp_stanza_get_child_by_name(st, "subject");
        if (subj && !has_body) {
            char s[512];
            child_text(st, "subject", s, sizeof s);
            if (s[0])
                say_at(t, "*** Subject: %s", s);
            return 1;
        }
        if (!has_body)
            return 1; /* occupant counts, status codes */
        if (is_room(w, from))
            say_at(t, "*** %s", body);
        else if (nick && strcmp(nick, w->nick) == 0)
            say_at(t, "<%s (you)> %s", nick, body);
        else
            say_at(t, "<%s> %s", nick ? nick : "?", body);
        return 1;
    }
    if (has_body && nick)
        say_at(t, "<%s -> you, privately> %s", nick, body);
    return 1;
}

/* ---- requests ---- */

/* The opening time in "this room opens at <time>" (specs/muc.md), or 0. */
static int64_t opening_time(const char *text)
{
    const char *at = strstr(text, "opens at ");
    char buf[DATETIME_MAX];
    int64_t t;
    if (!at || sscanf(at + 9, "%31[^ ,;]", buf) != 1 || datetime_parse(buf, &t, NULL) != 0)
        return 0;
    return t;
}

static long monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the loop for ms (or until a signal or the end of the connection). */
static void pause_ms(watch *w, long ms)
{
    long until = monotonic_ms() + ms;
    while (!stop_signal && client_is_connected(w->c) && monotonic_ms() < until)
        client_run_once(w->c, 50);
}

/* A disco query (ns: disco#info or disco#items) to the room: its answer
 * (the caller releases it), or NULL with *why. */
static xmpp_stanza_t *room_disco(watch *w, const char *ns, const char *id_prefix, const char **why)
{
    char id[64];
    xmpp_stanza_t *iq = xmpp_iq_new(w->ctx, "get", client_next_id(w->c, id_prefix, id));
    xmpp_stanza_set_to(iq, w->room);
    xmpp_stanza_t *q = xmpp_stanza_new(w->ctx);
    xmpp_stanza_set_name(q, "query");
    xmpp_stanza_set_ns(q, ns);
    xmpp_stanza_add_child(iq, q);
    xmpp_stanza_release(q);
    xmpp_stanza_t *res = client_request(w->c, iq, 0, why);
    xmpp_stanza_release(iq);
    return res;
}

/* disco#info of the room: title, password, times.  EXIT_OK, or the exit code
 * after printing why the room cannot be entered.  With --wait, a room that
 * is not open yet is asked again at its opening time (every 5 s when the
 * time is not known yet), for as long as it takes. */
static int ask_room_once(watch *w, bool *not_open);

static int ask_room(watch *w)
{
    bool told = false;
    for (;;) {
        bool not_open = false;
        int rc = ask_room_once(w, &not_open);
        if (!not_open || !w->wait_open || stop_signal || !client_is_connected(w->c))
            return rc;
        int64_t opens = opening_time(w->join_error.text);
        int64_t now = time(NULL);
        if (!told) {
            char when[64];
            if (opens)
                say_at(now, "*** The room opens at %s: waiting", format_local(opens, when));
            else
                say_at(now, "*** %s: waiting", w->join_error.text[0] ? w->join_error.text : "The room is not open");
            told = true;
        }
        pause_ms(w, opens > now ? (long)(opens - now) * 1000 : opens ? 250 : 5000);
    }
}

static int ask_room_once(watch *w, bool *not_open)
{
    const char *why;
    xmpp_stanza_t *res = room_disco(w, NS_DISCO_INFO, "info", &why);
    if (!res) {
        fprintf(stderr, PROG ": %s: %s\n", w->room, why);
        return EXIT_PROTOCOL;
    }
    const char *type = xmpp_stanza_get_type(res);
    if (type && strcmp(type, "error") == 0) {
        stanza_error *e = &w->join_error;
        stanza_error_read(res, e);
        xmpp_stanza_release(res);
        *not_open = strcmp(e->condition, "item-not-found") == 0 && strstr(e->text, "opens at");
        if (!*not_open || !w->wait_open)
            describe_refusal(w, e);
        return EXIT_REFUSED;
    }
    xmpp_stanza_t *query = xmpp_stanza_get_child_by_name_and_ns(res, "query", NS_DISCO_INFO);
    for (xmpp_stanza_t *c = query ? xmpp_stanza_get_children(query) : NULL; c; c = xmpp_stanza_get_next(c)) {
        const char *name = xmpp_stanza_get_name(c);
        if (!name)
            continue;
        if (strcmp(name, "identity") == 0 && !w->title[0]) {
            const char *n = xmpp_stanza_get_attribute(c, "name");
            snprintf(w->title, sizeof w->title, "%s", n ? n : "");
        } else if (strcmp(name, "feature") == 0) {
            const char *v = xmpp_stanza_get_attribute(c, "var");
            if (v && strcmp(v, "muc_passwordprotected") == 0)
                w->password_protected = true;
        } else if (strcmp(name, "x") == 0) {
            form *f = form_from_stanza(c);
            const char *v;
            if (f && (v = form_value(f, "x-onair#start")))
                datetime_parse(v, &w->start, NULL);
            if (f && (v = form_value(f, "x-onair#end")))
                datetime_parse(v, &w->end, NULL);
            if (f && (v = form_value(f, "x-onair#close")))
                datetime_parse(v, &w->close, NULL);
            form_free(f);
        }
    }
    xmpp_stanza_release(res);
    return EXIT_OK;
}

static void send_join(watch *w)
{
    xmpp_stanza_t *p = xmpp_presence_new(w->ctx);
    xmpp_stanza_set_to(p, w->occupant);
    xmpp_stanza_t *x = xmpp_stanza_new(w->ctx);
    xmpp_stanza_set_name(x, "x");
    xmpp_stanza_set_ns(x, NS_MUC);
    if (w->room_password) {
        xmpp_stanza_t *pw = xmpp_stanza_new(w->ctx), *t = xmpp_stanza_new(w->ctx);
        xmpp_stanza_set_name(pw, "password");
        xmpp_stanza_set_text(t, w->room_password);
        xmpp_stanza_add_child(pw, t);
        xmpp_stanza_add_child(x, pw);
        xmpp_stanza_release(t);
        xmpp_stanza_release(pw);
    }
    if (w->history >= 0) {
        char n[16];
        snprintf(n, sizeof n, "%d", w->history);
        xmpp_stanza_t *h = xmpp_stanza_new(w->ctx);
        xmpp_stanza_set_name(h, "history");
        xmpp_stanza_set_attribute(h, "maxstanzas", n);
        xmpp_stanza_add_child(x, h);
        xmpp_stanza_release(h);
    }
    xmpp_stanza_add_child(p, x);
    xmpp_stanza_release(x);
    if (w->intro) {
        xmpp_stanza_t *s = xmpp_stanza_new(w->ctx), *t = xmpp_stanza_new(w->ctx);
        xmpp_stanza_set_name(s, "status");
        xmpp_stanza_set_text(t, w->intro);
        xmpp_stanza_add_child(s, t);
        xmpp_stanza_add_child(p, s);
        xmpp_stanza_release(t);
        xmpp_stanza_release(s);
    }
    client_send(w->c, p);
    xmpp_stanza_release(p);
}

/* Sends the join and runs the loop until the self-presence or a refusal. */
static int join_once(watch *w)
{
    w->join_failed = false;
    send_join(w);
    long deadline = monotonic_ms() + client_timeout_ms(w->c);
    while (!w->joined && !w->join_failed && client_is_connected(w->c) && monotonic_ms() < deadline && !stop_signal)
        client_run_once(w->c, 50);
    if (w->joined)
        return EXIT_OK;
    if (w->join_failed)
        return EXIT_REFUSED;
    if (stop_signal)
        return EXIT_OK;
    fprintf(stderr, PROG ": %s: %s\n", w->room,
            client_is_connected(w->c) ? "no answer to entering in time" : "the connection closed");
    return client_is_connected(w->c) ? EXIT_PROTOCOL : EXIT_CONNECT;
}

static int join(watch *w)
{
    int rc = join_once(w);
    if (rc == EXIT_REFUSED && strcmp(w->join_error.condition, "not-authorized") == 0 && !w->room_password) {
        /* a password live: ask on the terminal, once */
        w->room_password = secret_read(NULL, NULL, "the live's shared password", false, "--room-password-file");
        if (!w->room_password)
            return EXIT_USAGE;
        rc = join_once(w);
    }
    if (rc == EXIT_REFUSED)
        describe_refusal(w, &w->join_error);
    return rc;
}

static void send_groupchat(watch *w, const char *text)
{
    char id[64];
    xmpp_stanza_t *m = xmpp_message_new(w->ctx, "groupchat", w->room, client_next_id(w->c, "msg", id));
    xmpp_message_set_body(m, text);
    client_send(w->c, m);
    xmpp_stanza_release(m);
}

static void send_private(watch *w, const char *nick, const char *text)
{
    char to[800], id[64];
    snprintf(to, sizeof to, "%s/%s", w->room, nick);
    xmpp_stanza_t *m = xmpp_message_new(w->ctx, "chat", to, client_next_id(w->c, "pm", id));
    xmpp_message_set_body(m, text);
    client_send(w->c, m);
    xmpp_stanza_release(m);
    say_at(time(NULL), "<you -> %s, privately> %s", nick, text);
}

static void list_participants(watch *w)
{
    const char *why;
    xmpp_stanza_t *res = room_disco(w, NS_DISCO_ITEMS, "who", &why);
    if (!res) {
        say_at(time(NULL), "!!! no participant list: %s", why);
        return;
    }
    stanza_error e;
    if (stanza_error_read(res, &e)) {
        say_at(time(NULL), "!!! no participant list: %s%s%s", e.condition, e.text[0] ? ": " : "", e.text);
        xmpp_stanza_release(res);
        return;
    }
    xmpp_stanza_t *query = xmpp_stanza_get_child_by_name_and_ns(res, "query", NS_DISCO_ITEMS);
    int n = 0;
    for (xmpp_stanza_t *c = query ? xmpp_stanza_get_children(query) : NULL; c; c = xmpp_stanza_get_next(c)) {
        const char *name = xmpp_stanza_get_name(c);
        if (!name || strcmp(name, "item") != 0)
            continue;
        const char *nick = resource_of(xmpp_stanza_get_attribute(c, "jid"));
        const char *intro = xmpp_stanza_get_attribute(c, "name");
        bool me = nick && strcmp(nick, w->nick) == 0;
        printf("    %s%s%s%s\n", nick ? nick : "?", me ? " (you)" : "",
               intro && nick && strcmp(intro, nick) != 0 ? " - " : "",
               intro && nick && strcmp(intro, nick) != 0 ? intro : "");
        n++;
    }
    say_at(time(NULL), "*** %d in the room", n);
    xmpp_stanza_release(res);
}

static void time_left(watch *w)
{
    int64_t now = time(NULL);
    char when[64];
    if (w->start && now < w->start)
        say_at(now, "*** The live starts in %lld min (%s)", (long long)((w->start - now + 59) / 60),
               format_local(w->start, when));
    else if (w->end && now < w->end)
        say_at(now, "*** The live ends in %lld min (%s)", (long long)((w->end - now + 59) / 60), format_local(w->end, when));
    if (w->close)
        say_at(now, "*** The room closes in %lld min (%s)", (long long)((w->close - now + 59) / 60),
               format_local(w->close, when));
}

static void command_help(void)
{
    puts("    /who             the participants and their self-introductions\n"
         "    /msg NICK TEXT   a private message to NICK\n"
         "    /time            time left until the live ends and the room closes\n"
         "    /quit            leave the room (also Ctrl-C or Ctrl-D)\n"
         "    //TEXT           send a line that starts with '/'\n"
         "    anything else is said to the room");
    fflush(stdout);
}

static void handle_line(watch *w, char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (!n)
        return;
    if (line[0] != '/' || line[1] == '/') {
        send_groupchat(w, line[0] == '/' ? line + 1 : line);
        return;
    }
    if (strcmp(line, "/quit") == 0) {
        stop_signal = SIGTERM;
    } else if (strcmp(line, "/who") == 0) {
        list_participants(w);
    } else if (strcmp(line, "/time") == 0) {
        time_left(w);
    } else if (strcmp(line, "/help") == 0) {
        command_help();
    } else if (strncmp(line, "/msg ", 5) == 0) {
        char *nick = line + 5;
        char *text = strchr(nick, ' ');
        if (!text || !text[1]) {
            say_at(time(NULL), "!!! usage: /msg NICK TEXT");
            return;
        }
        *text++ = '\0';
        send_private(w, nick, text);
    } else {
        say_at(time(NULL), "!!! unknown command %s (/help lists them)", line);
    }
}

/* Reads what stdin has (without blocking) and handles whole lines. */
static void read_input(watch *w)
{
    struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
    while (w->input_open && poll(&pfd, 1, 0) > 0) {
        char buf[1024];
        ssize_t got = read(STDIN_FILENO, buf, sizeof buf);
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            return;
        if (got <= 0) {
            /* end of input: a terminal's Ctrl-D leaves; a pipe or file ends only the input */
            w->input_open = false;
            if (w->line_len) {
                w->line[w->line_len] = '\0';
                handle_line(w, w->line);
                w->line_len = 0;
            }
            if (isatty(STDIN_FILENO))
                stop_signal = SIGTERM;
            return;
        }
        for (ssize_t i = 0; i < got; i++) {
            if (buf[i] == '\n' || w->line_len + 1 >= sizeof w->line) {
                if (buf[i] != '\n')
                    w->line[w->line_len++] = buf[i];
                w->line[w->line_len] = '\0';
                handle_line(w, w->line);
                w->line_len = 0;
            } else {
                w->line[w->line_len++] = buf[i];
            }
        }
    }
}

static void leave(watch *w)
{
    xmpp_stanza_t *p = xmpp_presence_new(w->ctx);
    xmpp_stanza_set_to(p, w->occupant);
    xmpp_stanza_set_type(p, "unavailable");
    client_send(w->c, p);
    xmpp_stanza_release(p);
    long deadline = monotonic_ms() + 3000;
    while (!w->done && client_is_connected(w->c) && monotonic_ms() < deadline)
        client_run_once(w->c, 50);
}

/* ---- command line ---- */

static void usage(FILE *out)
{
    fputs("usage: " PROG " [options] ROOM\n"
          "\n"
          "Enters the chat room of a live and prints its chat; the lines you type are said in\n"
          "the room (/help on the way lists the commands). ROOM is the room's address,\n"
          "<reservation id>@live.<domain>, or a reservation ID with --domain (or --jid).\n"
          "\n"
          "  --nick NICK                 your name in the room (default: your account's name, or\n"
          "                              guest-<n>)\n"
          "  --intro TEXT                a short self-introduction, shown in the participant list\n"
          "  --room-password-file FILE   the live's shared password (first line; else\n"
          "                              ONAIR_SHARED_PASSWORD; else asked on the terminal if the\n"
          "                              room wants one)\n"
          "  --room-host HOST            the chat service (default live.<domain>)\n"
          "  --history N                 messages said before you came to show (default: the\n"
          "                              room's, up to 20)\n"
          "  -o, --output FILE|-         also receive the live stream and write it to FILE (the\n"
          "                              container by its extension: .ts or .mkv) or, '-', to\n"
          "                              stdout as MPEG-TS (the chat then goes to stderr); if the\n"
          "                              broadcaster comes back on air after the live ended, the\n"
          "                              next part goes to FILE-2.ext, FILE-3.ext ...\n"
          "  --player COMMAND            also receive the stream and pipe it (MPEG-TS) into\n"
          "                              COMMAND, e.g. 'ffplay -' or 'mpv -'\n"
          "  --media-host HOST           the media service (default media.<domain>)\n"
          "  --ffmpeg PATH               the ffmpeg that receives the stream (default: from PATH)\n"
          "  --no-input                  only watch: do not read stdin\n"
          "  --wait                      if the room is not open yet, wait for its opening\n"
          "  -h, --help                  this help\n"
          "\n",
          out);
    client_options_help(out, true);
    fputs("\n"
          "Output: one line per event, '[HH:MM:SS] ' first (local time; for history, when it was\n"
          "said): '<nick> text' for messages, '<nick (you)> text' for your own, '*** text' for the\n"
          "room's notices, '<nick -> you, privately> text', '<-- nick left', '!!! ...' for a message\n"
          "the room refused. End of input from a pipe ends only the input; from a terminal\n"
          "(Ctrl-D), /quit, Ctrl-C or SIGTERM leave the room.\n"
          "\n"
          "Exit status:\n"
          "  0  the room closed (its reason is printed), or you left\n"
          "  1  the room refused you (wrong or missing shared password, not open yet with its\n"
          "     opening time, closed, full, nickname taken, banned) or removed you\n"
          "  2  usage: a bad option or argument, or a required input is missing\n"
          "  3  cannot connect, the server's certificate is not trusted, the login was refused, or\n"
          "     the connection was lost\n"
          "  4  no answer from the server in time\n"
          "  5  the stream failed (its receiver ffmpeg or player failed)\n",
          out);
}

enum {
    OPT_NICK = 300, OPT_INTRO, OPT_ROOM_PW, OPT_ROOM_HOST, OPT_HISTORY, OPT_NO_INPUT, OPT_WAIT, OPT_OUTPUT, OPT_PLAYER,
    OPT_MEDIA_HOST, OPT_FFMPEG
};

static int parse(watch *w, int argc, char **argv, const char **room_host)
{
    static const struct option opts[] = {
        {"nick", required_argument, NULL, OPT_NICK},
        {"intro", required_argument, NULL, OPT_INTRO},
        {"room-password-file", required_argument, NULL, OPT_ROOM_PW},
        {"room-host", required_argument, NULL, OPT_ROOM_HOST},
        {"history", required_argument, NULL, OPT_HISTORY},
        {"no-input", no_argument, NULL, OPT_NO_INPUT},
        {"wait", no_argument, NULL, OPT_WAIT},
        {"output", required_argument, NULL, OPT_OUTPUT},
        {"player", required_argument, NULL, OPT_PLAYER},
        {"media-host", required_argument, NULL, OPT_MEDIA_HOST},
        {"ffmpeg", required_argument, NULL, OPT_FFMPEG},
        {"help", no_argument, NULL, 'h'},
        CLIENT_LONG_OPTIONS,
        {0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "hvo:", opts, NULL)) != -1) {
        int r;
        switch (opt) {
        case 'h':
            usage(stdout);
            return -1;
        case OPT_NICK:
            w->nick = optarg;
            break;
        case OPT_INTRO:
            w->intro = optarg;
            break;
        case OPT_ROOM_PW:
            w->room_password_file = optarg;
            break;
        case OPT_ROOM_HOST:
            *room_host = optarg;
            break;
        case OPT_HISTORY: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 0 || v > 1000) {
                fprintf(stderr, PROG ": --history: a number from 0 to 1000, not '%s'\n", optarg);
                return EXIT_USAGE;
            }
            w->history = (int)v;
            break;
        }
        case OPT_NO_INPUT:
            w->no_input = true;
            break;
        case OPT_WAIT:
            w->wait_open = true;
            break;
        case 'o':
        case OPT_OUTPUT:
            w->stream.output = optarg;
            break;
        case OPT_PLAYER:
            w->stream.player = optarg;
            break;
        case OPT_MEDIA_HOST:
            w->media_host = optarg;
            break;
        case OPT_FFMPEG:
            w->stream.ffmpeg = optarg;
            break;
        case '?':
            fputs("'" PROG " --help' lists the options\n", stderr);
            return EXIT_USAGE;
        default:
            r = client_options_parse(&w->o, opt, optarg);
            if (r <= 0)
                return EXIT_USAGE;
        }
    }
    if (argc - optind != 1) {
        fputs(PROG ": give one ROOM ('" PROG " --help')\n", stderr);
        return EXIT_USAGE;
    }
    if (w->stream.output && w->stream.player) {
        fputs(PROG ": --output and --player exclude each other\n", stderr);
        return EXIT_USAGE;
    }
    w->want_stream = w->stream.output || w->stream.player;
    w->room_arg = argv[optind];
    return EXIT_OK;
}

/* The room's JID, the server's domain for guests, and the nickname. */
static int resolve_names(watch *w, const char *room_host)
{
    const char *at = strchr(w->room_arg, '@');
    if (strchr(w->room_arg, '/') || (at && (at == w->room_arg || !at[1]))) {
        fprintf(stderr, PROG ": '%s' is not a room address (<id>@live.<domain>) or a reservation ID\n", w->room_arg);
        return EXIT_USAGE;
    }
    if (at) {
        snprintf(w->room, sizeof w->room, "%s", w->room_arg);
        const char *dot = strchr(at + 1, '.');
        if (!w->o.domain && !w->o.jid && dot)
            w->o.domain = dot + 1; /* live.example.org -> example.org */
    } else {
        const char *domain = w->o.domain ? w->o.domain : w->o.jid && strchr(w->o.jid, '@') ? strchr(w->o.jid, '@') + 1 : NULL;
        if (!domain && !room_host) {
            fputs(PROG ": a reservation ID needs --domain (or --jid, or --room-host) to name its room\n", stderr);
            return EXIT_USAGE;
        }
        if (room_host)
            snprintf(w->room, sizeof w->room, "%s@%s", w->room_arg, room_host);
        else
            snprintf(w->room, sizeof w->room, "%s@live.%s", w->room_arg, domain);
        if (!w->o.domain && !w->o.jid && room_host && strchr(room_host, '.'))
            w->o.domain = strchr(room_host, '.') + 1;
    }
    if (!w->nick) {
        if (!w->o.guest && w->o.jid && strchr(w->o.jid, '@'))
            snprintf(w->nick_buf, sizeof w->nick_buf, "%.*s", (int)(strchr(w->o.jid, '@') - w->o.jid), w->o.jid);
        else
            snprintf(w->nick_buf, sizeof w->nick_buf, "guest-%d", (int)(getpid() % 10000));
        w->nick = w->nick_buf;
    }
    snprintf(w->occupant, sizeof w->occupant, "%s/%s", w->room, w->nick);
    return EXIT_OK;
}

static int login(watch *w)
{
    int rc = client_options_check(&w->o);
    if (rc != EXIT_OK)
        return rc;
    char *pw = NULL;
    if (!w->o.guest) {
        char name[600];
        snprintf(name, sizeof name, "the password of %s", w->o.jid);
        if (!(pw = secret_read(w->o.password_file, "ONAIR_PASSWORD", name, false, "--password-file")))
            return EXIT_USAGE;
    }
    rc = client_connect(&w->c, &w->o, pw, PROG);
    secret_free(pw);
    if (rc == EXIT_OK)
        w->ctx = client_ctx(w->c);
    return rc;
}

static void run(watch *w)
{
    while (!w->done && !stop_signal && client_is_connected(w->c)) {
        if (w->input_open)
            read_input(w);
        client_run_once(w->c, 50);
        if (w->want_stream)
            watch_stream_poll(&w->stream, say_line);
    }
    if (w->done)
        return;
    if (stop_signal) {
        leave(w);
        w->exit_code = EXIT_OK;
        return;
    }
    fprintf(stderr, PROG ": the connection to the server was lost\n");
    w->exit_code = EXIT_CONNECT;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);

    watch w = {0};
    w.history = -1;
    w.stream.ffmpeg = "ffmpeg";
    w.stream.stdout_fd = -1;
    client_options_init(&w.o);
    const char *room_host = NULL;
    int rc = parse(&w, argc, argv, &room_host);
    if (rc != EXIT_OK)
        return rc < 0 ? EXIT_OK : rc;
    if ((rc = resolve_names(&w, room_host)) != EXIT_OK)
        return rc;
    w.stream.verbose = w.o.verbose > 0;
    if (w.stream.output && strcmp(w.stream.output, "-") == 0) {
        /* the stream takes stdout; the chat goes to stderr */
        w.stream.stdout_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
        dup2(STDERR_FILENO, STDOUT_FILENO);
    }
    if (w.room_password_file || getenv("ONAIR_SHARED_PASSWORD")) {
        w.room_password = secret_read(w.room_password_file, "ONAIR_SHARED_PASSWORD", "the live's shared password",
                                      false, "--room-password-file");
        if (!w.room_password)
            return EXIT_USAGE;
    }
    if ((rc = login(&w)) != EXIT_OK) {
        secret_free(w.room_password);
        return rc;
    }
    xmpp_handler_add(client_conn(w.c), presence_handler, NULL, "presence", NULL, &w);
    xmpp_handler_add(client_conn(w.c), message_handler, NULL, "message", NULL, &w);
    rc = ask_room(&w);
    if (rc == EXIT_OK)
        rc = join(&w);
    if (rc == EXIT_OK && !stop_signal && w.want_stream) {
        char endpoint[600], local[256];
        snprintf(local, sizeof local, "%.*s", (int)(strchr(w.room, '@') - w.room), w.room);
        if (w.media_host)
            snprintf(endpoint, sizeof endpoint, "%s@%s", local, w.media_host);
        else
            snprintf(endpoint, sizeof endpoint, "%s@media.%s", local, client_domain(w.c));
        rc = watch_stream_start(&w.stream, w.c, endpoint, client_server_host(w.c), w.room_password, say_line, PROG);
        if (rc != EXIT_OK)
            leave(&w);
    }
    if (rc == EXIT_OK && !stop_signal) {
        w.input_open = !w.no_input;
        run(&w);
        rc = w.exit_code;
    }
    if (w.want_stream) {
        watch_stream_stop(&w.stream);
        if (w.stream.failed && rc == EXIT_OK)
            rc = EXIT_MEDIA;
    }
    if (w.stream.stdout_fd >= 0)
        close(w.stream.stdout_fd);
    client_disconnect(w.c);
    client_free(w.c);
    secret_free(w.room_password);
    nicks_free(&w);
    return rc;
}
