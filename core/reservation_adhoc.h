/* reservation_adhoc.h - the reservation commands (XEP-0050) on the server's
 * JID: book, reconfirm, settings, cancel, my-channel, availability, schedule. */
#ifndef ONAIR_RESERVATION_ADHOC_H
#define ONAIR_RESERVATION_ADHOC_H

struct server;

/* Registers the commands (after adhoc_init).  0 or -1. */
int reservation_adhoc_register(struct server *srv);

#endif
