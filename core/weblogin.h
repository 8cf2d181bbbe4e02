/* weblogin.h - account login over HTTP (specs/http-api.md, "Sessions"):
 *   POST   /api/v1/session  {"user", "password"} -> 201 {"token", "user", "expires"}
 *   GET    /api/v1/session  (bearer token)       -> 200 {"user", "expires"}
 *   DELETE /api/v1/session  (bearer token)       -> 204, the token ends
 * The password check derives the SCRAM key on the libuv thread pool; the
 * stored secrets are read on the loop.  Guest (anonymous) accounts have no
 * HTTP login.  Neither passwords nor tokens are ever logged.
 */
#ifndef ONAIR_WEBLOGIN_H
#define ONAIR_WEBLOGIN_H

struct server;

/* Registers the routes with the web module (after web_init).  Returns 0 or -1. */
int weblogin_register(struct server *srv);

#endif
