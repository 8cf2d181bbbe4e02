/* server.c - the server context: builds every part from the configuration
 * (store, TLS, SASL, router with its modules, listeners, admin socket,
 * signals), accepts connections, and takes it all down again on SIGTERM.
 * SIGHUP re-reads the configuration and applies what can change at run time.
 */
#include "server.h"

#include <errno.h>
#ifdef ONAIR_JEMALLOC
#include <jemalloc/jemalloc.h>
#else
#include <malloc.h>
#endif
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utlist.h>

#include "account_commands.h"
#include "adhoc.h"
#include "admin.h"
#include "conn.h"
#include "disco.h"
#include "plugin.h"
#include "media.h"
#include "muc.h"
#include "reservation_adhoc.h"
#include "reservation_http.h"
#include "reservation_service.h"
#include "sasl.h"
#include "session.h"
#include "tls.h"
#include "transport.h"
#include "web.h"
#include "web_static.h"
#include "weblogin.h"
#include "xmpp_ws.h"

#define SHUTDOWN_GRACE_MS 3000

uint64_t server_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void server_return_free_memory(void)
{
#ifdef ONAIR_JEMALLOC
    /* Purge every arena's unused dirty pages at once. */
    char cmd[64];
    snprintf(cmd, sizeof cmd, "arena.%u.purge", (unsigned)MALLCTL_ARENAS_ALL);
    mallctl(cmd, NULL, NULL, NULL, 0);
#elif defined(__GLIBC__)
    malloc_trim(0);
#endif
}

void server_heap_figures(size_t *used, size_t *spare)
{
#ifdef ONAIR_JEMALLOC
    uint64_t epoch = 1;
    size_t sz = sizeof epoch;
    mallctl("epoch", &epoch, &sz, &epoch, sz); /* refresh the statistics */
    size_t allocated = 0, resident = 0;
    sz = sizeof allocated;
    mallctl("stats.allocated", &allocated, &sz, NULL, 0);
    mallctl("stats.resident", &resident, &sz, NULL, 0);
    *used = allocated;
    *spare = resident > allocated ? resident - allocated : 0;
#else
    struct mallinfo2 mi = mallinfo2();
    *used = mi.uordblks;
    *spare = mi.fordblks;
#endif
}

void server_format_address(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        uv_ip4_name((const struct sockaddr_in *)ss, ip, sizeof ip);
        port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        uv_ip6_name((const struct sockaddr_in6 *)ss, ip, sizeof ip);
        port = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    }
    snprintf(out, cap, "%s:%d", ip, port);
}

void server_random_id(char *out, size_t cap, size_t len)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[64];
    if (len >= cap)
        len = cap - 1;
    if (len > sizeof rnd)
        len = sizeof rnd;
    RAND_bytes(rnd, (int)len);
    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[rnd[i] % 36];
    out[len] = '\0';
}

static void apply_limits(server *srv)
{
    srv->limits.max_stanza_bytes = srv->cfg.max_stanza_bytes;
    srv->limits.max_depth = srv->cfg.max_depth;
    srv->limits.max_attrs = srv->cfg.max_attrs;
    srv->log.level = srv->cfg.log_level;
}

static void on_connection(uv_stream_t *server_handle, int status)
{
    server_listener *l = server_handle->data;
    server *srv = l->srv;
    if (status < 0 || srv->stopping)
        return;
    conn *c = conn_accept(srv, server_handle, l->direct_tls);
    if (!c)
        return;
    srv->stats.connections_accepted++;
    if (srv->nconnections > srv->cfg.max_connections) {
        srv->stats.connections_refused++;
        conn_abort(c);
        return;
    }
    if (!stream_accept(srv, conn_transport(c)))
        conn_abort(c);
}

static int listen_on(server *srv, const char *addr, int port, bool direct_tls, char *err, size_t errlen)
{
    if (srv->nlisteners >= SERVER_MAX_LISTENERS)
        return 0;
    struct sockaddr_storage ss;
    bool is_v6 = strchr(addr, ':') != NULL;
    int rc = is_v6 ? uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&ss)
                   : uv_ip4_addr(addr, port, (struct sockaddr_in *)&ss);
    if (rc != 0) {
        snprintf(err, errlen, "%s:0: c2s.listen: not an IP address: \"%s\"", srv->cfg.path, addr);
        return -1;
    }
    server_listener *l = &srv->listeners[srv->nlisteners];
    uv_tcp_init(srv->loop, &l->tcp);
    l->srv = srv;
    l->direct_tls = direct_tls;
    l->is_open = true;
    l->tcp.data = l;
    srv->nlisteners++;
    rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, is_v6 ? UV_TCP_IPV6ONLY : 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, 4096, on_connection);
    if (rc != 0) {
        if (is_v6 && (rc == UV_EADDRNOTAVAIL || rc == UV_EAFNOSUPPORT)) {
            log_write(&srv->log, LOG_WARN, "server", "no IPv6 here: not listening on [%s]:%d", addr, port);
            return 0;
        }
        snprintf(err, errlen, "cannot listen on %s port %d: %s", addr, port, uv_strerror(rc));
        return -1;
    }
    log_write(&srv->log, LOG_INFO, "server", "listening on %s%s%s:%d (%s)", is_v6 ? "[" : "", addr, is_v6 ? "]" : "",
              port, direct_tls ? "direct TLS" : "STARTTLS");
    return 0;
}

static void on_signal(uv_signal_t *h, int signum)
{
    server *srv = h->data;
    if (signum == SIGHUP) {
        server_reload(srv);
        return;
    }
    log_write(&srv->log, LOG_INFO, "server", "signal %d: shutting down", signum);
    server_stop(srv);
}

static void on_sweep(uv_timer_t *t)
{
    stream_sweep(t->data);
    adhoc_sweep(t->data);
    web_sweep(t->data);
    muc_sweep(t->data);
    media_sweep(t->data);
}

int server_init(server *srv, uv_loop_t *loop, config *cfg, char *err, size_t errlen)
{
    memset(srv, 0, sizeof *srv);
    srv->loop = loop;
    srv->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    srv->started_ms = server_now_ms();
    apply_limits(srv);
    router_init(&srv->router);
    events_init(&srv->events);

    if (tls_ensure_certificate(&srv->cfg, err, errlen) != 0)
        return -1;
    srv->tls = tls_context_new(&srv->cfg, err, errlen);
    if (!srv->tls)
        return -1;
    if (sasl_setup(&srv->gsasl) != 0) {
        snprintf(err, errlen, "cannot initialise GNU SASL");
        return -1;
    }
    char serr[512];
    if (store_open(&srv->store, srv->cfg.data_dir, srv->cfg.store_map_size_mb, false, serr, sizeof serr) != STORE_OK) {
        snprintf(err, errlen, "%s:0: server.data_dir: cannot open the store in %s: %s", srv->cfg.path,
                 srv->cfg.data_dir, serr);
        return -1;
    }
    /* The web state first, so that every module can register routes. */
    if (web_init(srv) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    disco_register(srv);
    session_register(srv);
    if (reservation_service_start(srv, err, errlen) != 0)
        return -1;
    if (muc_start(srv, err, errlen) != 0)
        return -1;
    if (media_start(srv, err, errlen) != 0)
        return -1;
    if (adhoc_init(srv) != 0 || account_commands_register(srv) != 0 || reservation_adhoc_register(srv) != 0) {
        snprintf(err, errlen, "cannot set up the ad-hoc commands");
        return -1;
    }
    if (weblogin_register(srv) != 0 || reservation_http_register(srv) != 0 || xmpp_ws_register(srv) != 0 ||
        web_static_start(srv) != 0) {
        snprintf(err, errlen, "cannot register the HTTP routes");
        return -1;
    }
    /* Plugins last among the modules: they may hook what the others offer.
     * A plugin that cannot be loaded is logged and skipped. */
    if (plugins_start(srv) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    for (size_t i = 0; i < srv->cfg.nlisten; i++) {
        if (srv->cfg.c2s_port && listen_on(srv, srv->cfg.listen[i], srv->cfg.c2s_port, false, err, errlen) != 0)
            return -1;
        if (srv->cfg.c2s_tls_port &&
            listen_on(srv, srv->cfg.listen[i], srv->cfg.c2s_tls_port, true, err, errlen) != 0)
            return -1;
    }
    if (web_start(srv, err, errlen) != 0)
        return -1;
    int rc = admin_start(srv);
    if (rc != 0) {
        snprintf(err, errlen, "%s:0: server.admin_socket: cannot listen on %s: %s", srv->cfg.path,
                 srv->cfg.admin_socket, uv_strerror(rc));
        return -1;
    }
    uv_signal_init(loop, &srv->sig_term);
    uv_signal_init(loop, &srv->sig_int);
    uv_signal_init(loop, &srv->sig_hup);
    srv->sig_term.data = srv->sig_int.data = srv->sig_hup.data = srv;
    uv_signal_start(&srv->sig_term, on_signal, SIGTERM);
    uv_signal_start(&srv->sig_int, on_signal, SIGINT);
    uv_signal_start(&srv->sig_hup, on_signal, SIGHUP);
    conn_flusher_start(srv);
    uv_timer_init(loop, &srv->sweep_timer);
    srv->sweep_timer.data = srv;
    uv_timer_start(&srv->sweep_timer, on_sweep, 1000, 1000);
    uv_unref((uv_handle_t *)&srv->sweep_timer);
    log_write(&srv->log, LOG_INFO, "server", "onair %s serving %s%s%s, store %s", ONAIR_VERSION, srv->cfg.domain,
              srv->cfg.guest_domain ? " and guests on " : "", srv->cfg.guest_domain ? srv->cfg.guest_domain : "",
              srv->cfg.data_dir);
    return 0;
}

static void close_grace_timer(server *srv)
{
    if (srv->grace_timer) {
        uv_close((uv_handle_t *)srv->grace_timer, (uv_close_cb)free);
        srv->grace_timer = NULL;
    }
}

static void on_grace_timeout(uv_timer_t *t)
{
    server *srv = t->data;
    for (session *s = srv->all_head; s; s = s->all_next)
        if (s->tr)
            transport_abort(s->tr);
    close_grace_timer(srv);
}

void server_session_gone(server *srv)
{
    if (srv->stopping && !srv->all_head)
        close_grace_timer(srv);
}

void server_stop(server *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    for (size_t i = 0; i < srv->nlisteners; i++) {
        if (srv->listeners[i].is_open) {
            srv->listeners[i].is_open = false;
            uv_close((uv_handle_t *)&srv->listeners[i].tcp, NULL);
        }
    }
    admin_stop(srv);
    plugins_stop(srv); /* first among the modules: plugins use them until their shutdown */
    media_stop(srv);   /* before the rooms: the live's end is noticed in its room */
    muc_stop(srv);
    reservation_service_stop(srv);
    /* Streams first, WebSocket ones included: their last words are written
     * before web_stop takes the HTTP listener's connections down. */
    session *s, *tmp;
    DL_FOREACH_SAFE2(srv->all_head, s, tmp, all_next)
    {
        stream_error(s, "system-shutdown", "the server is shutting down");
    }
    web_stop(srv);
    /* handles are initialised last in server_init: a failed start may lack them */
    if (srv->sig_term.loop) {
        uv_close((uv_handle_t *)&srv->sig_term, NULL);
        uv_close((uv_handle_t *)&srv->sig_int, NULL);
        uv_close((uv_handle_t *)&srv->sig_hup, NULL);
    }
    if (srv->sweep_timer.loop)
        uv_close((uv_handle_t *)&srv->sweep_timer, NULL);
    conn_flusher_stop(srv);
    if (srv->all_head) {
        srv->grace_timer = malloc(sizeof *srv->grace_timer);
        if (srv->grace_timer) {
            uv_timer_init(srv->loop, srv->grace_timer);
            srv->grace_timer->data = srv;
            uv_timer_start(srv->grace_timer, on_grace_timeout, SHUTDOWN_GRACE_MS, 0);
            uv_unref((uv_handle_t *)srv->grace_timer);
        }
    }
}

void server_reload(server *srv)
{
    config next;
    config_defaults(&next);
    char err[1024];
    if (config_load(&next, srv->cfg.path, err, sizeof err) != 0) {
        log_write(&srv->log, LOG_ERROR, "server", "reload refused, keeping the running configuration: %s", err);
        config_free(&next);
        return;
    }
    if (strcmp(next.domain, srv->cfg.domain) != 0 || strcmp(next.data_dir, srv->cfg.data_dir) != 0 ||
        next.c2s_port != srv->cfg.c2s_port || next.c2s_tls_port != srv->cfg.c2s_tls_port ||
        next.http_port != srv->cfg.http_port || next.http_tls != srv->cfg.http_tls ||
        (next.http_xmpp_websocket_path == NULL) != (srv->cfg.http_xmpp_websocket_path == NULL) ||
        (next.http_xmpp_websocket_path &&
         strcmp(next.http_xmpp_websocket_path, srv->cfg.http_xmpp_websocket_path) != 0))
        log_write(&srv->log, LOG_WARN, "server",
                  "reload: domain, data_dir, ports, http.tls and http.xmpp_websocket_path change only on restart");
    srv->cfg.log_level = next.log_level;
    srv->cfg.max_stanza_bytes = next.max_stanza_bytes;
    srv->cfg.max_depth = next.max_depth;
    srv->cfg.max_attrs = next.max_attrs;
    srv->cfg.max_offline_per_user = next.max_offline_per_user;
    srv->cfg.max_roster_items = next.max_roster_items;
    srv->cfg.max_write_buffer_bytes = next.max_write_buffer_bytes;
    srv->cfg.max_connections = next.max_connections;
    srv->cfg.auth_timeout_s = next.auth_timeout_s;
    srv->cfg.idle_release_s = next.idle_release_s;
    srv->cfg.require_tls = next.require_tls;
    srv->cfg.allow_plain = next.allow_plain;
    srv->cfg.adhoc_session_timeout_s = next.adhoc_session_timeout_s;
    srv->cfg.http_max_body_bytes = next.http_max_body_bytes;
    srv->cfg.http_token_ttl_s = next.http_token_ttl_s;
    srv->cfg.http_max_connections = next.http_max_connections;
    srv->cfg.http_loopback_is_secure = next.http_loopback_is_secure;
    free(srv->cfg.http_public_url);
    srv->cfg.http_public_url = next.http_public_url;
    next.http_public_url = NULL;
    apply_limits(srv);
    reservation_service_reload(srv, &next);
    web_static_reload(srv, &next);
    plugins_reload(srv, &next);
    muc_reload(srv, &next);
    media_reload(srv, &next);
    if (tls_ensure_certificate(&next, err, sizeof err) == 0) {
        SSL_CTX *ctx = tls_context_new(&next, err, sizeof err);
        if (ctx) {
            SSL_CTX_free(srv->tls); /* live connections keep their own reference */
            srv->tls = ctx;
            if (web_reload_certificate(srv, err, sizeof err) != 0)
                log_write(&srv->log, LOG_ERROR, "server", "reload: HTTPS keeps the old certificate: %s", err);
        } else {
            log_write(&srv->log, LOG_ERROR, "server", "reload: keeping the old certificate: %s", err);
        }
    } else {
        log_write(&srv->log, LOG_ERROR, "server", "reload: keeping the old certificate: %s", err);
    }
    config_free(&next);
    log_write(&srv->log, LOG_INFO, "server", "configuration reloaded from %s", srv->cfg.path);
}

void server_free(server *srv)
{
    plugins_free(srv);
    media_free(srv);
    muc_free(srv);
    adhoc_free(srv);
    web_free(srv);
    web_static_free(srv);
    if (srv->store)
        store_close(srv->store);
    if (srv->tls)
        SSL_CTX_free(srv->tls);
    if (srv->gsasl)
        gsasl_done(srv->gsasl);
    router_free(&srv->router);
    if (srv->res_started)
        reservations_free(&srv->res);
    events_free(&srv->events);
    free(srv->muc_domain);
    free(srv->media_domain);
    xml_buf_free(&srv->out);
    config_free(&srv->cfg);
}
