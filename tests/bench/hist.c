/* hist.c - onair-bench: latency histogram and the result record.
 *
 * The histogram is log-linear: values below 64 have a bucket each, above
 * that every power of two is split in 64 buckets, so a percentile is within
 * 1.6% of the true value.  Results travel from a generator process to the
 * parent as text lines: "R name=value ...", "H count min max idx:n ..." (the
 * latency of every connection; "T" and "W" the same for the TCP and the
 * WebSocket ones) and "E first error"; the parent merges them (sums, maxima,
 * merged histograms).
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const result_names[RF_COUNT] = {
#define RF_NAME(n, a) #n,
    RESULT_FIELDS(RF_NAME)
#undef RF_NAME
};

const int result_agg[RF_COUNT] = {
#define RF_AGG(n, a) a,
    RESULT_FIELDS(RF_AGG)
#undef RF_AGG
};

static unsigned hist_index(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS */
    unsigned sub = (unsigned)(v >> (e - HIST_SUB_BITS)) - HIST_SUB;
    return (e - HIST_SUB_BITS + 1) * HIST_SUB + sub;
}

/* The middle of bucket i. */
static uint64_t hist_value(unsigned i)
{
    if (i < HIST_SUB)
        return i;
    unsigned e = i / HIST_SUB + HIST_SUB_BITS - 1;
    uint64_t sub = i % HIST_SUB;
    uint64_t width = 1ull << (e - HIST_SUB_BITS);
    return ((HIST_SUB + sub) << (e - HIST_SUB_BITS)) + width / 2;
}

void hist_add(hist *h, uint64_t v)
{
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count++;
    h->b[hist_index(v)]++;
}

void hist_merge(hist *into, const hist *from)
{
    if (from->count == 0)
        return;
    if (into->count == 0 || from->min < into->min)
        into->min = from->min;
    if (from->max > into->max)
        into->max = from->max;
    into->count += from->count;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->b[i] += from->b[i];
}

uint64_t hist_pct(const hist *h, double p)
{
    if (h->count == 0)
        return 0;
    if (p >= 1.0)
        return h->max;
    uint64_t rank = (uint64_t)(p * (double)h->count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = hist_value(i);
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}

void result_note_error(result *r, const char *msg)
{
    if (r->first_err[0] == '\0')
        snprintf(r->first_err, sizeof r->first_err, "%s", msg);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One histogram as a protocol line: "TAG count min max i:n i:n ...". */
static size_t hist_line(char *buf, size_t cap, char tag, const hist *h)
{
    size_t n = (size_t)snprintf(buf, cap, "%c %llu %llu %llu", tag, (unsigned long long)h->count,
                                (unsigned long long)h->min, (unsigned long long)h->max);
    for (unsigned i = 0; i < HIST_BUCKETS && n < cap; i++)
        if (h->b[i])
            n += (size_t)snprintf(buf + n, cap - n, " %u:%llu", i, (unsigned long long)h->b[i]);
    if (n < cap)
        n += (size_t)snprintf(buf + n, cap - n, "\n");
    return n < cap ? n : cap;
}

static void hist_parse_merge(hist *into, const char *s)
{
    hist h;
    memset(&h, 0, sizeof h);
    char *p;
    h.count = strtoull(s, &p, 10);
    h.min = strtoull(p, &p, 10);
    h.max = strtoull(p, &p, 10);
    while (*p == ' ') {
        unsigned long i = strtoul(p + 1, &p, 10);
        if (*p != ':')
            break;
        unsigned long long cnt = strtoull(p + 1, &p, 10);
        if (i < HIST_BUCKETS)
            h.b[i] += cnt;
    }
    hist_merge(into, &h);
}

int result_write(int fd, const result *r)
{
    /* A histogram line can be long: at most HIST_BUCKETS "i:n" pairs. */
    size_t hcap = 64 + (size_t)HIST_BUCKETS * 28;
    size_t cap = 256 + RF_COUNT * 48 + 3 * hcap + sizeof r->first_err;
    char *buf = malloc(cap);
    if (!buf)
        return -1;
    size_t n = 0;
    n += (size_t)snprintf(buf + n, cap - n, "R");
    for (int i = 0; i < RF_COUNT; i++)
        n += (size_t)snprintf(buf + n, cap - n, " %s=%.17g", result_names[i], r->v[i]);
    n += (size_t)snprintf(buf + n, cap - n, "\n");
    n += hist_line(buf + n, cap - n, 'H', &r->lat);
    n += hist_line(buf + n, cap - n, 'T', &r->lat_tcp);
    n += hist_line(buf + n, cap - n, 'W', &r->lat_ws);
    if (r->first_err[0]) {
        n += (size_t)snprintf(buf + n, cap - n, "E ");
        for (const char *s = r->first_err; *s && n + 2 < cap; s++)
            buf[n++] = (*s == '\n' || *s == '\r') ? ' ' : *s;
        buf[n++] = '\n';
    }
    int rc = write_all(fd, buf, n);
    free(buf);
    return rc;
}

int result_merge_line(result *r, const char *line)
{
    if (line[0] == 'R' && line[1] == ' ') {
        const char *p = line + 2;
        while (*p) {
            const char *eq = strchr(p, '=');
            if (!eq)
                break;
            size_t klen = (size_t)(eq - p);
            char *end;
            double val = strtod(eq + 1, &end);
            for (int i = 0; i < RF_COUNT; i++) {
                if (strlen(result_names[i]) == klen && memcmp(result_names[i], p, klen) == 0) {
                    if (result_agg[i] == 1)
                        r->v[i] = val > r->v[i] ? val : r->v[i];
                    else if (result_agg[i] == 2) {
                        if (val > 0 && (r->v[i] <= 0 || val < r->v[i]))
                            r->v[i] = val;
                    } else
                        r->v[i] += val;
                    break;
                }
            }
            p = end;
            while (*p == ' ')
                p++;
        }
        return 0;
    }
    if ((line[0] == 'H' || line[0] == 'T' || line[0] == 'W') && line[1] == ' ') {
        hist_parse_merge(line[0] == 'H' ? &r->lat : line[0] == 'T' ? &r->lat_tcp : &r->lat_ws, line + 2);
        return 0;
    }
    if (line[0] == 'E' && line[1] == ' ') {
        result_note_error(r, line + 2);
        return 0;
    }
    return -1;
}
