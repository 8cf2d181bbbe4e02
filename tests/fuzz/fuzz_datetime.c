/* fuzz_datetime.c - libFuzzer target for core/datetime.c: the RFC 3339 and
 * calendar-date parsers that every booking's start, end and date go through.
 *
 * The input is one string (NUL-terminated copy).  A date-time that parses
 * must format back (in UTC) to a string that parses to the same second; a
 * date that parses must give a day of 23 to 25 hours.  Any violation aborts.
 * The zone is UTC (set once).  See tests/fuzz/README.md.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datetime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                    \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "fuzz_datetime: check failed at line %d: %s\n", __LINE__, #cond); \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int zoned;
    if (!zoned) {
        FUZZ_CHECK(datetime_set_zone("UTC") == 0);
        zoned = 1;
    }
    if (size > 256)
        return 0;
    char text[257];
    memcpy(text, data, size);
    text[size] = '\0';

    int64_t t;
    long frac = -1;
    if (datetime_parse(text, &t, &frac) == 0) {
        FUZZ_CHECK(frac >= 0 && frac < 1000000000L);
        /* 1970-01-01 to 9999-12-31 after the offset: formats to a parsable string. */
        if (t >= 0 && t < 253402300800LL) {
            char buf[DATETIME_MAX];
            int64_t back;
            FUZZ_CHECK(datetime_parse(datetime_format_utc(t, buf), &back, NULL) == 0);
            FUZZ_CHECK(back == t);
            FUZZ_CHECK(datetime_parse(datetime_format(t, buf), &back, NULL) == 0);
            FUZZ_CHECK(back == t);
        }
    }
    int64_t a, b;
    if (datetime_parse_day(text, &a, &b) == 0) {
        FUZZ_CHECK(b - a >= 23 * 3600 && b - a <= 25 * 3600);
        char day[DATETIME_MAX];
        FUZZ_CHECK(strcmp(datetime_format_day(a, day), text) == 0);
    }
    return 0;
}
