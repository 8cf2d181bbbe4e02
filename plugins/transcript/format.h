/* format.h - the transcript plugin's archive document and its two
 * renderings (plugins/transcript/README.md, specs/transcript.md): which
 * messages of a room's log a selection keeps, the JSON document archived
 * and served, and the plain text made from it.  Times in both are relative
 * to the start of the live ("-00:12:05" before it, "+00:03:10" after).
 *
 * Pure functions over memory (no I/O, no host calls), so the unit tests
 * run them directly.  Every json_t * and char * returned belongs to the
 * caller (json_decref / free).
 */
#ifndef ONAIR_TRANSCRIPT_FORMAT_H
#define ONAIR_TRANSCRIPT_FORMAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <onair/plugin.h>

/* The part of a room's log a transcript keeps. */
typedef enum tr_part {
    TR_PART_ALL = 0,      /* every message */
    TR_PART_LIVE = 1,     /* messages between the live's start and its end */
    TR_PART_ADDRESSED = 2 /* messages addressed to the broadcaster */
} tr_part;

/* "all", "live", "addressed" -> *out; false for anything else. */
bool tr_part_parse(const char *s, tr_part *out);
const char *tr_part_name(tr_part p);

/* What the archive says about the live besides its messages.  Borrowed. */
typedef struct tr_meta {
    const char *reservation_id;
    const char *owner;       /* account (local part) */
    const char *title;
    const char *room;        /* the room's JID */
    const char *reason;      /* "ended" or "cancelled" */
    int64_t start, end;      /* the slot, seconds since the epoch */
    int64_t started_ms;      /* the live's start: offsets count from here */
    int64_t closed_ms;       /* when the room closed */
    tr_part part;
    bool notices;            /* the room's own notices are kept */
} tr_meta;

/* Whether a log entry belongs to the selection of m. */
bool tr_selected(const tr_meta *m, const onair_room_log_entry *e);

/* offset_ms as "+HH:MM:SS" / "-HH:MM:SS" (whole seconds toward zero; hours
 * grow past two digits when needed).  out needs 32 bytes. */
void tr_offset(int64_t offset_ms, char out[32]);

/* The archive: the meta data and the selected entries of log[0..n), each
 * with its offset (specs/transcript.md, "The JSON form").  NULL when out
 * of memory. */
json_t *tr_build(const tr_meta *m, const onair_room_log_entry *log, size_t n);

/* The plain text of an archive made by tr_build (UTF-8, lines ending in
 * "\n"); NULL when doc is not such an archive or memory ran out. */
char *tr_text(const json_t *doc);

#endif
