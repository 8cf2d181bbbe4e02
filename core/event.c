/* event.c - hooks and priorities (event.h). */
#include "event.h"

#include <stdlib.h>
#include <string.h>

void events_init(events *ev)
{
    memset(ev, 0, sizeof *ev);
}

void events_free(events *ev)
{
    for (size_t i = 0; i < EVENT_COUNT; i++)
        free(ev->hooks[i]);
    memset(ev, 0, sizeof *ev);
}

int event_hook_add(events *ev, event_type type, int priority, event_fn fn, void *ud)
{
    if ((unsigned)type >= EVENT_COUNT || !fn)
        return -1;
    size_t n = ev->nhooks[type];
    event_hook *h = realloc(ev->hooks[type], (n + 1) * sizeof *h);
    if (!h)
        return -1;
    ev->hooks[type] = h;
    size_t at = n;
    while (at > 0 && h[at - 1].priority < priority)
        at--;
    memmove(&h[at + 1], &h[at], (n - at) * sizeof *h);
    h[at] = (event_hook){fn, ud, priority};
    ev->nhooks[type] = n + 1;
    return 0;
}

void event_hook_remove(events *ev, event_type type, event_fn fn, void *ud)
{
    if ((unsigned)type >= EVENT_COUNT)
        return;
    event_hook *h = ev->hooks[type];
    size_t n = ev->nhooks[type];
    for (size_t i = 0; i < n; i++) {
        if (h[i].fn == fn && h[i].ud == ud) {
            memmove(&h[i], &h[i + 1], (n - i - 1) * sizeof *h);
            ev->nhooks[type] = n - 1;
            return;
        }
    }
}

void event_fire(struct server *srv, events *ev, event_type type, const void *payload)
{
    if ((unsigned)type >= EVENT_COUNT || ev->nhooks[type] == 0)
        return;
    /* A snapshot, so hooks may change the list while it is walked. */
    size_t n = ev->nhooks[type];
    event_hook stack[16];
    event_hook *copy = n <= 16 ? stack : malloc(n * sizeof *copy);
    if (!copy)
        return;
    memcpy(copy, ev->hooks[type], n * sizeof *copy);
    for (size_t i = 0; i < n; i++)
        if (copy[i].fn(copy[i].ud, srv, type, payload) == EVENT_STOP)
            break;
    if (copy != stack)
        free(copy);
}

const char *event_name(event_type type)
{
    switch (type) {
    case EVENT_RESERVATION_BOOKED:
        return "reservation booked";
    case EVENT_RESERVATION_RECONFIRMED:
        return "reservation reconfirmed";
    case EVENT_RESERVATION_CANCELLED:
        return "reservation cancelled";
    case EVENT_ROOM_OPENED:
        return "room opened";
    case EVENT_ROOM_MESSAGE:
        return "room message";
    case EVENT_ROOM_CLOSED:
        return "room closed";
    case EVENT_LIVE_STARTED:
        return "live started";
    case EVENT_LIVE_ENDED:
        return "live ended";
    case EVENT_COUNT:
        break;
    }
    return "unknown";
}
