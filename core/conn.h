/* conn.h - one client socket: TCP through libuv, optionally TLS through an
 * OpenSSL SSL object over memory BIOs (so STARTTLS runs on the same loop
 * with no blocking calls).  A conn knows bytes, not XML.
 *
 * Memory: an idle conn holds no buffers.  Reads go through the server's one
 * shared read buffer; writes are tried synchronously first and only what the
 * kernel did not take is copied into a queued write request.
 *
 * Lifetime: created by conn_accept; freed by conn itself after the handle is
 * closed, right after on_close has been called.  After on_close the owner must
 * drop its pointer.
 */
#ifndef ONAIR_CONN_H
#define ONAIR_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct server;

typedef struct conn_callbacks {
    /* Plaintext bytes arrived (borrowed for the call). */
    void (*on_data)(void *ud, const char *data, size_t len);
    /* The connection is gone (peer closed, error, or after conn_close). */
    void (*on_close)(void *ud);
} conn_callbacks;

typedef struct conn conn;

/* Accepts a pending connection on listener.  With direct_tls the TLS
 * handshake starts at once.  Returns NULL on failure (the pending connection
 * is dropped). */
conn *conn_accept(struct server *srv, uv_stream_t *server_handle, bool direct_tls);
void conn_set_callbacks(conn *c, const conn_callbacks *cb, void *ud);

/* Queues bytes (encrypted when TLS is on).  Output is gathered during one
 * loop turn and written once (see conn_flusher_start).  Returns 0, or -1 when
 * the connection is closing or its output is over the configured limit (it
 * is then being aborted). */
int conn_write(conn *c, const char *data, size_t len);
/* Switches to TLS as server: everything after this call is TLS.  Returns 0 or -1. */
int conn_start_tls(conn *c);
bool conn_is_tls(const conn *c);
/* For a connection that has gone quiet: drops buffers TLS kept from its
 * busiest moment.  Safe to call at any time; does nothing when busy. */
void conn_release_idle_memory(conn *c);
/* Closes after queued output has been written (TLS close_notify included). */
void conn_close(conn *c);
/* Closes now, dropping queued output. */
void conn_abort(conn *c);
/* Stops reading (for a clean close after an error); output still drains. */
void conn_stop_reading(conn *c);
/* Starts / stops the per-turn output flusher (a prepare and a check handle
 * on the server loop). */
void conn_flusher_start(struct server *srv);
void conn_flusher_stop(struct server *srv);
/* "ip:port" of the peer, for logs: a buffer of the server's, valid until the
 * next call. */
const char *conn_peer(const conn *c);
/* Bytes queued and not yet written. */
size_t conn_pending_bytes(const conn *c);

#endif
