/* server.h - the server's context object: everything onaird holds while it
 * runs lives here (there is no other mutable global state).  Core modules
 * receive a `server *` and reach their own part through it.
 */
#ifndef ONAIR_SERVER_H
#define ONAIR_SERVER_H

#include <gsasl.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "event.h"
#include "log.h"
#include "reservation.h"
#include "router.h"
#include "schedule.h"
#include "store.h"
#include "xml.h"

struct session;
struct user_sessions;
struct conn;
struct admin_state;
struct adhoc_registry;
struct web;
struct web_static;
struct plugins;
struct muc_service;
struct media_service;

#define SERVER_MAX_LISTENERS (CONFIG_MAX_LISTEN * 2)

typedef struct server_listener {
    uv_tcp_t tcp;
    struct server *srv;
    bool direct_tls;
    bool is_open;
} server_listener;

typedef struct server_stats {
    uint64_t connections_accepted;
    uint64_t connections_refused;
    uint64_t logins_ok;
    uint64_t logins_failed;
    uint64_t stanzas_in;
    uint64_t stanzas_out;
    uint64_t stream_errors;
    uint64_t offline_stored;
    uint64_t parsers_released;
} server_stats;

typedef struct server {
    uv_loop_t *loop;
    config cfg;               /* owned; replaced on SIGHUP for reloadable keys */
    logger log;
    store *store;             /* owned */
    SSL_CTX *tls;             /* owned; NULL if TLS could not be set up */
    Gsasl *gsasl;             /* owned */
    router router;            /* services and IQ handlers */
    xml_limits limits;        /* from cfg, applied to new streams */

    server_listener listeners[SERVER_MAX_LISTENERS];
    size_t nlisteners;

    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t sweep_timer;   /* auth timeouts, once a second */
    uv_timer_t *grace_timer;  /* owned while shutting down with streams still open */
    uv_prepare_t flush_prepare; /* conn.c: write out what a loop turn produced */
    uv_check_t flush_check;
    struct conn *dirty_head;    /* conns with buffered output this turn */

    struct user_sessions *users;    /* uthash: bare JID -> bound sessions */
    struct session *sessions_by_full; /* uthash: full JID -> session */
    struct session *preauth_head;   /* connections not yet bound, oldest first */
    struct session *preauth_tail;
    struct session *all_head;       /* every live session (for shutdown) */
    struct session *active_head;    /* sessions with a live XML parser, least recently read first */
    size_t nconnections;
    size_t nsessions;               /* bound */

    struct admin_state *admin;      /* owned by admin.c */
    struct adhoc_registry *adhoc;   /* owned by adhoc.c: XEP-0050 commands and their sessions */

    events events;                  /* hooks on server events (event.h) */
    schedule schedule;              /* store-backed timers (schedule.h) */
    reservations res;               /* booking rules (reservation.h) */
    bool res_started;
    char *muc_domain;               /* owned: host of the chat rooms */
    char *media_domain;             /* owned: host of the media endpoints */
    struct web *web;                /* owned by web.c: HTTP server, routes, login tokens */
    struct web_static *web_static;  /* owned by web_static.c: the web pages read into memory */
    struct plugins *plugins;        /* owned by plugin.c: loaded plugins and what they registered */
    struct muc_service *muc;        /* owned by muc.c: the chat rooms */
    struct media_service *media;    /* owned by media.c: the live stream */

    char read_buf[65536];           /* one read buffer for every socket: reads are handled synchronously */
    char tls_buf[65536];            /* decrypted plaintext, likewise shared */
    xml_buf out;                    /* scratch serializer buffer, reset per use */
    char peer_buf[64];              /* conn_peer's answer */

    server_stats stats;
    uint64_t started_ms;
    bool stopping;
    int exit_code;
} server;

/* Sets up everything from cfg (which moves into srv) on loop: store, TLS,
 * SASL, the web state (then every module registers its routes and
 * handlers), listeners (XMPP and HTTP), admin socket, signals.  On failure returns -1 with a
 * message in err; srv must still be passed to server_free. */
int server_init(server *srv, uv_loop_t *loop, config *cfg, char *err, size_t errlen);
/* Begins a clean shutdown: stop accepting, close every stream with
 * </stream:stream>, close handles; the loop then ends by itself. */
void server_stop(server *srv);
/* A stream has gone (called by stream.c): ends the shutdown grace timer when it was the last. */
void server_session_gone(server *srv);
/* Frees what remains after the loop has ended. */
void server_free(server *srv);
/* Re-reads the configuration file and applies the reloadable keys. */
void server_reload(server *srv);

uint64_t server_now_ms(void);
/* Asks the allocator to give unused pages back to the kernel now (after many
 * idle streams released their buffers). */
void server_return_free_memory(void);
/* Bytes the allocator has handed out, and bytes it keeps resident beyond them. */
void server_heap_figures(size_t *used, size_t *spare);
/* "ip:port" of an IPv4 or IPv6 socket address into out ("?" for another
 * family), for log lines. */
void server_format_address(const struct sockaddr_storage *ss, char *out, size_t cap);
/* Random identifier of `len` URL-safe characters (len < cap). */
void server_random_id(char *out, size_t cap, size_t len);

#endif
