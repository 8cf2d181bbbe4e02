/* admin.h - the operator's control socket (a Unix stream socket, mode 0600,
 * path from server.admin_socket) that onairctl talks to while onaird runs.
 *
 * Protocol: one request per line, fields separated by TAB; a field may not
 * contain TAB, CR or LF.  The reply is zero or more "data\t<field>..." lines
 * followed by one final line: "ok" or "error\t<message>".  Requests:
 *   account-add <user> <password>
 *   account-passwd <user> <password>  (also ends the account's HTTP login tokens)
 *   account-del <user>          (also closes the user's sessions and ends its login tokens)
 *   account-list                (one data line per user)
 *   health                      (data lines: "<name>\t<value>")
 *   reservation-cancel <id>     (an operator cancels; the server raises the event)
 * Passwords travel only over this local socket and are never logged.
 */
#ifndef ONAIR_ADMIN_H
#define ONAIR_ADMIN_H

struct server;

/* Starts listening on the configured path (replacing a stale socket file).
 * Returns 0 or a negative libuv error. */
int admin_start(struct server *srv);
/* Closes the listener and every admin connection, removes the socket file. */
void admin_stop(struct server *srv);

#endif
