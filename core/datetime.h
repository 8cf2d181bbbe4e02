/* datetime.h - times on the wire (XEP-0082 / RFC 3339) and days in the
 * server's time zone.
 *
 * Inside onair a time is a count of seconds since the Unix epoch (UTC).  On
 * the wire it is an RFC 3339 date-time with an explicit offset.  "A day" (an
 * availability date, a slot boundary) is a calendar day in the time zone the
 * server is configured with (reservation.timezone); the process's TZ is set to
 * it once at start-up by datetime_set_zone, and the C library's tz database
 * (Debian's tzdata) does the calendar arithmetic, daylight saving included.
 */
#ifndef ONAIR_DATETIME_H
#define ONAIR_DATETIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DATETIME_MAX 32 /* "2026-11-24T09:30:00+09:00" plus NUL, with room */

/* Selects the time zone for local days (an IANA name such as "Asia/Tokyo",
 * or "UTC").  Returns 0, or -1 when the zone is not known to the system's tz
 * database.  Called once at start-up, before the loop runs. */
int datetime_set_zone(const char *name);
/* Whether datetime_set_zone would accept name (nothing changes). */
bool datetime_zone_known(const char *name);

/* Parses an RFC 3339 date-time ("2026-11-24T09:30:00Z", "...+09:00", with
 * optional fractional seconds, 'T' or 't' or ' ' as separator).  Without an
 * offset the time is read in the server's zone.  Returns 0 with the time in
 * *out, or -1 when the text is not a valid date-time (fraction_ns, if not
 * NULL, receives the fractional part in nanoseconds). */
int datetime_parse(const char *text, int64_t *out, long *fraction_ns);

/* Writes t as RFC 3339 in the server's zone with its offset
 * ("2026-11-24T09:30:00+09:00"; "Z" when the offset is zero).  Returns out. */
char *datetime_format(int64_t t, char out[DATETIME_MAX]);
/* The same in UTC, always with "Z". */
char *datetime_format_utc(int64_t t, char out[DATETIME_MAX]);
/* A time in milliseconds as an XEP-0082 stamp in UTC with milliseconds
 * ("2026-11-24T09:30:00.250Z"), as delay stamps carry it. */
char *datetime_format_stamp_ms(int64_t ms, char out[DATETIME_MAX]);

/* Parses a calendar date "YYYY-MM-DD" and gives the first second of that
 * day and of the next in the server's zone.  Returns 0 or -1 (not a date). */
int datetime_parse_day(const char *text, int64_t *day_start, int64_t *next_day_start);
/* The start of the local day that contains t. */
int64_t datetime_day_start(int64_t t);
/* Writes the local date of t as "YYYY-MM-DD". */
char *datetime_format_day(int64_t t, char out[DATETIME_MAX]);

/* A duration in words: "6 hours", "30 minutes", "90 seconds", "1 hour". */
char *datetime_format_span(int64_t seconds, char out[DATETIME_MAX]);

#endif
