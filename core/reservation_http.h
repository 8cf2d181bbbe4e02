/* reservation_http.h - the reservation rules as a JSON HTTP API
 * (specs/http-api.md, "Reservations"). */
#ifndef ONAIR_RESERVATION_HTTP_H
#define ONAIR_RESERVATION_HTTP_H

struct server;

/* Registers the routes (after web_init).  0 or -1. */
int reservation_http_register(struct server *srv);

#endif
