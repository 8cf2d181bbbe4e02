/* disco.h - what the server says about itself: service discovery
 * (XEP-0030 disco#info / disco#items), XEP-0199 ping and XEP-0092 software
 * version, answered for the server's own JID.
 */
#ifndef ONAIR_DISCO_H
#define ONAIR_DISCO_H

struct server;

/* Registers the IQ handlers and features with the router. */
void disco_register(struct server *srv);

#endif
