/* event.h - the server's events: modules (and, through the plugin API,
 * plugins) hook a function on an event with a priority; whoever raises the
 * event calls every hook, highest priority first, in the order of
 * registration among equals.
 *
 * Payloads are borrowed for the call: a hook copies what it keeps.  The
 * payload type of each event is written next to it below.
 */
#ifndef ONAIR_EVENT_H
#define ONAIR_EVENT_H

#include <stddef.h>
#include <stdint.h>

struct server;
struct xml_node;

typedef enum event_type {
    EVENT_RESERVATION_BOOKED = 0,  /* const reservation * (reservation.h) */
    EVENT_RESERVATION_RECONFIRMED, /* const reservation * */
    EVENT_RESERVATION_CANCELLED,   /* const reservation * (cancel_reason says why) */
    EVENT_ROOM_OPENED,             /* const muc_room_opened * (muc.h) */
    EVENT_ROOM_MESSAGE,            /* const muc_room_message * (muc.h): after the log commit */
    EVENT_ROOM_CLOSED,             /* const muc_room_closed * (muc.h): with the room's whole log */
    EVENT_LIVE_STARTED,            /* const event_live * (below) */
    EVENT_LIVE_ENDED,              /* const event_live * */
    EVENT_COUNT
} event_type;

/* Returns EVENT_CONTINUE, or EVENT_STOP to end the walk (later hooks are not
 * called). */
enum { EVENT_CONTINUE = 0, EVENT_STOP = 1 };
typedef int (*event_fn)(void *ud, struct server *srv, event_type type, const void *payload);

typedef struct event_hook {
    event_fn fn;
    void *ud;
    int priority;
} event_hook;

typedef struct events {
    event_hook *hooks[EVENT_COUNT]; /* owned arrays, sorted by priority */
    size_t nhooks[EVENT_COUNT];
} events;

void events_init(events *ev);
void events_free(events *ev);
/* Returns 0, or -1 (unknown type, out of memory). */
int event_hook_add(events *ev, event_type type, int priority, event_fn fn, void *ud);
/* Removes the hook registered with this fn and ud, if any. */
void event_hook_remove(events *ev, event_type type, event_fn fn, void *ud);
/* Calls the hooks of type.  A hook may add or remove hooks of the same
 * event while it runs; those changes apply from the next event. */
void event_fire(struct server *srv, events *ev, event_type type, const void *payload);
/* "reservation booked", ... */
const char *event_name(event_type type);

/* The payload of the live events.  The media service raises them from the
 * real stream with a media_live_event (media.h), which begins with this
 * struct (source "stream").  Borrowed for the call; room may be NULL. */
typedef struct event_live {
    const char *reservation_id;
    const char *channel;
    const char *room;   /* the live's room JID, or NULL */
    const char *owner;  /* the owner's account (local part) */
    const char *source; /* "stream": the broadcaster's stream (media.c) */
    int64_t time_ms;    /* when it happened */
    int64_t start, end; /* the reservation's slot, seconds since the epoch */
    int64_t started_ms; /* when the live started (ms since the epoch) */
} event_live;

#endif
