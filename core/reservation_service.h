/* reservation_service.h - the reservation module inside the running server:
 * its policy from the configuration, the channels declared there, events
 * raised on the server's hooks, and the reconfirmation-deadline timers.
 */
#ifndef ONAIR_RESERVATION_SERVICE_H
#define ONAIR_RESERVATION_SERVICE_H

#include <stddef.h>

struct server;
struct config;

/* After the store is open: sets the zone, opens the sealing key, enters the
 * configured channels and starts the schedule.  Returns 0, or -1 with a
 * message (naming the config key at fault) in err. */
int reservation_service_start(struct server *srv, char *err, size_t errlen);
/* SIGHUP: applies the reloadable keys of next (durations, channels). */
void reservation_service_reload(struct server *srv, const struct config *next);
void reservation_service_stop(struct server *srv);
/* The host names of the chat rooms and of the media endpoints. */
const char *reservation_service_muc_domain(const struct server *srv);
const char *reservation_service_media_domain(const struct server *srv);

#endif
