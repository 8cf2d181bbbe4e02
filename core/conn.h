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

#include "transport.h"

struct server;

typedef struct conn conn;

/* Accepts a pending connection on listener.  With direct_tls the TLS
 * handshake starts at once.  Returns NULL on failure (the pending connection
 * is dropped). */
conn *conn_accept(struct server *srv, uv_stream_t *server_handle, bool direct_tls);
/* The conn as a stream transport (transport.h): a byte stream with STARTTLS.
 * Output is gathered during one loop turn and written once (see
 * conn_flusher_start); over limits.max_write_buffer_bytes queued, the
 * connection is aborted.  The transport lives as long as the conn. */
transport *conn_transport(conn *c);
/* Closes now, dropping queued output. */
void conn_abort(conn *c);
/* Starts / stops the per-turn output flusher (a prepare and a check handle
 * on the server loop). */
void conn_flusher_start(struct server *srv);
void conn_flusher_stop(struct server *srv);

#endif
