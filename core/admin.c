/* admin.c - the operator's control socket (protocol in admin.h): a Unix
 * socket on the server loop, readable by the owner only, that onairctl uses
 * to manage accounts and read health figures while the server runs.
 */
#include "admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utlist.h>

#include "account.h"
#include "adhoc.h"
#include "jid.h"
#include "media.h"
#include "muc.h"
#include "plugin.h"
#include "server.h"
#include "session.h"
#include "web.h"

#define ADMIN_MAX_LINE 4096

typedef struct admin_client {
    uv_pipe_t pipe;
    server *srv;
    char line[ADMIN_MAX_LINE];
    size_t len;
    struct admin_client *prev, *next;
} admin_client;

typedef struct admin_state {
    uv_pipe_t listener;
    admin_client *clients;
    bool is_open;
} admin_state;

static void client_closed(uv_handle_t *h)
{
    admin_client *c = h->data;
    free(c);
}

static void client_close(admin_client *c)
{
    admin_state *st = c->srv->admin;
    if (st)
        DL_DELETE(st->clients, c);
    if (!uv_is_closing((uv_handle_t *)&c->pipe))
        uv_close((uv_handle_t *)&c->pipe, client_closed);
}

static void on_written(uv_write_t *req, int status)
{
    free(req);
}

static void reply(admin_client *c, const char *text)
{
    size_t len = strlen(text);
    uv_write_t *req = malloc(sizeof *req + len);
    if (!req)
        return;
    char *copy = (char *)(req + 1);
    memcpy(copy, text, len);
    uv_buf_t b = uv_buf_init(copy, (unsigned)len);
    if (uv_write(req, (uv_stream_t *)&c->pipe, &b, 1, on_written) != 0)
        free(req);
}

static void reply_error(admin_client *c, const char *msg)
{
    char buf[1300];
    snprintf(buf, sizeof buf, "error\t%.1200s\n", msg);
    reply(c, buf);
}

static int list_cb(void *ud, const char *user)
{
    admin_client *c = ud;
    char buf[1100];
    snprintf(buf, sizeof buf, "data\t%s\n", user);
    reply(c, buf);
    return 0;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

static void close_user_sessions(server *srv, const char *user)
{
    char bare[1100];
    snprintf(bare, sizeof bare, "%s@%s", user, srv->cfg.domain);
    user_sessions *u = session_find_user(srv, bare);
    while (u && u->head) {
        stream_error(u->head, "not-authorized", "the account was removed");
        u = session_find_user(srv, bare);
    }
}

static void handle_line(admin_client *c, char *line)
{
    server *srv = c->srv;
    char *fields[4] = {0};
    size_t n = 0;
    for (char *tok = line; tok && n < 4; n++) {
        fields[n] = tok;
        tok = strchr(tok, '\t');
        if (tok)
            *tok++ = '\0';
    }
    const char *cmd = fields[0];
    char msg[1200];
    if (strcmp(cmd, "account-list") == 0) {
        account_list(srv->store, list_cb, c);
        reply(c, "ok\n");
        return;
    }
    if (strcmp(cmd, "health") == 0) {
        size_t heap_used = 0, heap_free = 0;
        server_heap_figures(&heap_used, &heap_free);
        char buf[4096];
        snprintf(buf, sizeof buf,
                 "data\tstatus\trunning\ndata\tversion\t%s\ndata\tuptime_s\t%llu\ndata\tconnections\t%zu\n"
                 "data\tsessions\t%zu\ndata\tlogins_ok\t%llu\ndata\tlogins_failed\t%llu\ndata\tstanzas_in\t%llu\n"
                 "data\tstanzas_out\t%llu\ndata\tstream_errors\t%llu\ndata\toffline_stored\t%llu\n"
                 "data\tparsers_released\t%llu\ndata\tadhoc_sessions\t%zu\ndata\trss_kb\t%ld\ndata\theap_used_kb\t%zu\ndata\theap_free_kb\t%zu\nok\n",
                 ONAIR_VERSION, (unsigned long long)((server_now_ms() - srv->started_ms) / 1000), srv->nconnections,
                 srv->nsessions, (unsigned long long)srv->stats.logins_ok,
                 (unsigned long long)srv->stats.logins_failed, (unsigned long long)srv->stats.stanzas_in,
                 (unsigned long long)srv->stats.stanzas_out, (unsigned long long)srv->stats.stream_errors,
                 (unsigned long long)srv->stats.offline_stored, (unsigned long long)srv->stats.parsers_released,
                 adhoc_session_count(srv), rss_kb(), heap_used / 1024, heap_free / 1024);
        /* before the final "ok": the media figures and the loaded plugins */
        size_t len = strlen(buf) - 3;
        const media_stats *ms = media_get_stats(srv);
        len += (size_t)snprintf(
            buf + len, sizeof buf - len,
            "data\tmedia_port\t%d\ndata\tmedia_lives_on_air\t%zu\ndata\tmedia_viewers\t%zu\n"
            "data\tmedia_packets_in\t%llu\ndata\tmedia_bytes_in\t%llu\ndata\tmedia_auth_failed\t%llu\n"
            "data\tmedia_replayed\t%llu\ndata\tmedia_unknown_source\t%llu\ndata\tmedia_policed\t%llu\n"
            "data\tmedia_packets_out\t%llu\ndata\tmedia_send_errors\t%llu\ndata\tmedia_feedback_forwarded\t%llu\n"
            "data\tmedia_feedback_limited\t%llu\ndata\tmedia_feedback_rejected\t%llu\n",
            media_port(srv), media_lives_on_air(srv), media_viewers_total(srv), (unsigned long long)ms->packets_in,
            (unsigned long long)ms->bytes_in, (unsigned long long)ms->auth_failed, (unsigned long long)ms->replayed,
            (unsigned long long)ms->unknown_source, (unsigned long long)ms->policed,
            (unsigned long long)ms->packets_out, (unsigned long long)ms->send_errors,
            (unsigned long long)ms->feedback_forwarded, (unsigned long long)ms->feedback_limited,
            (unsigned long long)ms->feedback_rejected);
        size_t log_entries = 0;
        uint64_t logs_removed = 0;
        muc_log_figures(srv, &log_entries, &logs_removed);
        len += (size_t)snprintf(buf + len, sizeof buf - len, "data\tmuc_log_entries\t%zu\ndata\tmuc_logs_removed\t%llu\n",
                                log_entries, (unsigned long long)logs_removed);
        const char *names[CONFIG_MAX_PLUGINS];
        size_t nplugins = plugins_loaded(srv, names, CONFIG_MAX_PLUGINS);
        len += (size_t)snprintf(buf + len, sizeof buf - len, "data\tplugins\t");
        for (size_t i = 0; i < nplugins && len < sizeof buf; i++)
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", i ? "," : "", names[i]);
        if (len < sizeof buf)
            snprintf(buf + len, sizeof buf - len, "\nok\n");
        reply(c, buf);
        return;
    }
    if (strcmp(cmd, "reservation-cancel") == 0) {
        reservation r;
        res_error e;
        if (!fields[1]) {
            reply_error(c, "usage: reservation-cancel <id>");
        } else if (reservation_cancel(&srv->res, NULL, fields[1], (int64_t)time(NULL), &r, &e) != RES_OK) {
            reply_error(c, e.message);
        } else {
            reservation_clear(&r);
            reply(c, "ok\n");
        }
        return;
    }
    bool is_add = strcmp(cmd, "account-add") == 0;
    bool is_passwd = strcmp(cmd, "account-passwd") == 0;
    bool is_del = strcmp(cmd, "account-del") == 0;
    if (!is_add && !is_passwd && !is_del) {
        reply_error(c, "unknown request");
        return;
    }
    if (!fields[1] || ((is_add || is_passwd) && (!fields[2] || !fields[2][0]))) {
        reply_error(c, is_del ? "usage: account-del <user>" : "usage: <request> <user> <password>");
        return;
    }
    char *user = jid_nodeprep(fields[1]);
    if (!user) {
        snprintf(msg, sizeof msg, "not a valid user name: %.1000s", fields[1]);
        reply_error(c, msg);
        return;
    }
    int rc = is_add      ? account_create(srv->store, user, fields[2], 0)
             : is_passwd ? account_set_password(srv->store, user, fields[2], 0)
                         : account_delete(srv->store, user);
    if (rc == STORE_OK) {
        log_write(&srv->log, LOG_INFO, "admin", "account %s %s", user,
                  is_add ? "created" : is_passwd ? "password changed" : "deleted");
        if (is_del)
            close_user_sessions(srv, user);
        if (is_del || is_passwd)
            web_token_revoke_user(srv, user);
        reply(c, "ok\n");
    } else if (rc == STORE_EXISTS) {
        snprintf(msg, sizeof msg, "account exists: %s", user);
        reply_error(c, msg);
    } else if (rc == STORE_NOTFOUND) {
        snprintf(msg, sizeof msg, "no such account: %s", user);
        reply_error(c, msg);
    } else {
        snprintf(msg, sizeof msg, "store error %d", rc);
        reply_error(c, msg);
    }
    free(user);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    admin_client *c = h->data;
    *buf = uv_buf_init(c->srv->read_buf, sizeof c->srv->read_buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    admin_client *c = s->data;
    if (nread < 0) {
        client_close(c);
        return;
    }
    for (ssize_t i = 0; i < nread; i++) {
        char ch = buf->base[i];
        if (ch == '\n') {
            c->line[c->len] = '\0';
            if (c->len && c->line[c->len - 1] == '\r')
                c->line[c->len - 1] = '\0';
            handle_line(c, c->line);
            OPENSSL_cleanse(c->line, sizeof c->line);
            c->len = 0;
        } else if (c->len + 1 >= sizeof c->line) {
            reply_error(c, "request too long");
            client_close(c);
            return;
        } else {
            c->line[c->len++] = ch;
        }
    }
}

static void on_connection(uv_stream_t *l, int status)
{
    server *srv = l->data;
    if (status < 0 || !srv->admin)
        return;
    admin_client *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = srv;
    uv_pipe_init(srv->loop, &c->pipe, 0);
    c->pipe.data = c;
    if (uv_accept(l, (uv_stream_t *)&c->pipe) != 0) {
        uv_close((uv_handle_t *)&c->pipe, client_closed);
        return;
    }
    DL_APPEND(srv->admin->clients, c);
    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

int admin_start(server *srv)
{
    admin_state *st = calloc(1, sizeof *st);
    if (!st)
        return UV_ENOMEM;
    uv_pipe_init(srv->loop, &st->listener, 0);
    st->listener.data = srv;
    srv->admin = st;
    st->is_open = true;
    unlink(srv->cfg.admin_socket);
    mode_t old = umask(077);
    int rc = uv_pipe_bind(&st->listener, srv->cfg.admin_socket);
    umask(old);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&st->listener, 16, on_connection);
    if (rc == 0)
        chmod(srv->cfg.admin_socket, 0600);
    return rc;
}

static void listener_closed(uv_handle_t *h)
{
    server *srv = h->data;
    free(srv->admin);
    srv->admin = NULL;
}

void admin_stop(server *srv)
{
    admin_state *st = srv->admin;
    if (!st || !st->is_open)
        return;
    st->is_open = false;
    admin_client *c, *tmp;
    DL_FOREACH_SAFE(st->clients, c, tmp)
    {
        client_close(c);
    }
    uv_close((uv_handle_t *)&st->listener, listener_closed);
    unlink(srv->cfg.admin_socket);
}
