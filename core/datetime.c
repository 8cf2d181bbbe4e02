/* datetime.c - RFC 3339 / XEP-0082 date-times and local days (datetime.h).
 *
 * Parsing is strict about the grammar of RFC 3339 section 5.6 (fixed-width
 * fields, ranges checked, including the day of the month), and lenient only
 * where RFC 3339 itself allows it (lower-case 't' / 'z', a space as the
 * separator).  Local days use the C library (mktime / localtime_r) under the
 * zone chosen at start-up.
 */
#include "datetime.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

bool datetime_zone_known(const char *name)
{
    if (!name || !*name)
        return false;
    if (strcmp(name, "UTC") != 0) {
        /* An IANA name: letters, digits, '_', '-', '+', '/' and no "..";
         * glibc would silently read an unknown one as UTC. */
        if (name[0] == '/' || strstr(name, ".."))
            return false;
        for (const char *p = name; *p; p++)
            if (!isalnum((unsigned char)*p) && !strchr("_-+/", *p))
                return false;
        char path[512];
        snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            return false;
    }
    return true;
}

int datetime_set_zone(const char *name)
{
    if (!datetime_zone_known(name))
        return -1;
    if (setenv("TZ", name, 1) != 0)
        return -1;
    tzset();
    return 0;
}

/* Reads exactly n digits. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* "YYYY-MM-DD" at *p. */
static bool parse_date(const char **p, int *y, int *m, int *d)
{
    if (!digits(p, 4, y) || **p != '-')
        return false;
    (*p)++;
    if (!digits(p, 2, m) || **p != '-')
        return false;
    (*p)++;
    if (!digits(p, 2, d))
        return false;
    return *y >= 1970 && *y <= 9999 && *m >= 1 && *m <= 12 && *d >= 1 && *d <= days_in_month(*y, *m);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int64_t local_mktime(int y, int m, int d, int hh, int mm, int ss)
{
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm);
}

int datetime_parse(const char *text, int64_t *out, long *fraction_ns)
{
    if (!text)
        return -1;
    const char *p = text;
    int y, mo, d, hh, mm, ss;
    if (!parse_date(&p, &y, &mo, &d))
        return -1;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -1;
    p++;
    if (!digits(&p, 2, &hh) || *p++ != ':' || !digits(&p, 2, &mm) || *p++ != ':' || !digits(&p, 2, &ss))
        return -1;
    if (hh > 23 || mm > 59 || ss > 59)
        return -1;
    long frac = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        long scale = 100000000L;
        while (isdigit((unsigned char)*p)) {
            if (n < 9) {
                frac += (*p - '0') * scale;
                scale /= 10;
            }
            p++;
            n++;
        }
        if (n == 0)
            return -1;
    }
    int64_t t;
    if (*p == 'Z' || *p == 'z') {
        p++;
        t = days_from_civil(y, mo, d) * 86400 + hh * 3600 + mm * 60 + ss;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        p++;
        int oh, om;
        if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om) || oh > 23 || om > 59)
            return -1;
        t = days_from_civil(y, mo, d) * 86400 + hh * 3600 + mm * 60 + ss - sign * (oh * 3600 + om * 60);
    } else if (*p == '\0') {
        t = local_mktime(y, mo, d, hh, mm, ss);
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    *out = t;
    if (fraction_ns)
        *fraction_ns = frac;
    return 0;
}

static char *format_tm(const struct tm *tm, long offset, char out[DATETIME_MAX])
{
    int n = snprintf(out, DATETIME_MAX, "%04d-%02d-%02dT%02d:%02d:%02d", tm->tm_year + 1900, tm->tm_mon + 1,
                     tm->tm_mday, tm->tm_hour, tm->tm_min, tm->tm_sec);
    if (offset == 0) {
        snprintf(out + n, (size_t)(DATETIME_MAX - n), "Z");
    } else {
        long a = offset < 0 ? -offset : offset;
        snprintf(out + n, (size_t)(DATETIME_MAX - n), "%c%02ld:%02ld", offset < 0 ? '-' : '+', a / 3600,
                 (a % 3600) / 60);
    }
    return out;
}

char *datetime_format(int64_t t, char out[DATETIME_MAX])
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    return format_tm(&tm, tm.tm_gmtoff, out);
}

char *datetime_format_utc(int64_t t, char out[DATETIME_MAX])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    return format_tm(&tm, 0, out);
}

char *datetime_format_stamp_ms(int64_t ms, char out[DATETIME_MAX])
{
    time_t tt = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&tt, &tm);
    char date[DATETIME_MAX];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, DATETIME_MAX, "%.24s.%03dZ", date, (int)(ms % 1000));
    return out;
}

int datetime_parse_day(const char *text, int64_t *day_start, int64_t *next_day_start)
{
    if (!text)
        return -1;
    const char *p = text;
    int y, m, d;
    if (!parse_date(&p, &y, &m, &d) || *p != '\0')
        return -1;
    *day_start = local_mktime(y, m, d, 0, 0, 0);
    *next_day_start = local_mktime(y, m, d + 1, 0, 0, 0); /* mktime normalises the day */
    return 0;
}

int64_t datetime_day_start(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    return local_mktime(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, 0, 0, 0);
}

char *datetime_format_day(int64_t t, char out[DATETIME_MAX])
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    snprintf(out, DATETIME_MAX, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    return out;
}

char *datetime_format_span(int64_t seconds, char out[DATETIME_MAX])
{
    const char *unit = "second";
    int64_t n = seconds;
    if (seconds != 0 && seconds % 86400 == 0) {
        unit = "day";
        n = seconds / 86400;
    } else if (seconds != 0 && seconds % 3600 == 0) {
        unit = "hour";
        n = seconds / 3600;
    } else if (seconds != 0 && seconds % 60 == 0) {
        unit = "minute";
        n = seconds / 60;
    }
    snprintf(out, DATETIME_MAX, "%lld %s%s", (long long)n, unit, n == 1 ? "" : "s");
    return out;
}
