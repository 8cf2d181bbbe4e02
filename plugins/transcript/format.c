/* format.c - selection and rendering of transcripts (format.h). */
#include "format.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool tr_part_parse(const char *s, tr_part *out)
{
    if (!s)
        return false;
    if (strcmp(s, "all") == 0)
        *out = TR_PART_ALL;
    else if (strcmp(s, "live") == 0)
        *out = TR_PART_LIVE;
    else if (strcmp(s, "addressed") == 0)
        *out = TR_PART_ADDRESSED;
    else
        return false;
    return true;
}

const char *tr_part_name(tr_part p)
{
    switch (p) {
    case TR_PART_LIVE:
        return "live";
    case TR_PART_ADDRESSED:
        return "addressed";
    case TR_PART_ALL:
    default:
        return "all";
    }
}

bool tr_selected(const tr_meta *m, const onair_room_log_entry *e)
{
    if (e->notice)
        /* notices are kept or not as a whole; "live" keeps those of the live's time */
        return m->notices && (m->part != TR_PART_LIVE || (e->time_ms >= m->started_ms && e->time_ms < m->end * 1000));
    switch (m->part) {
    case TR_PART_LIVE:
        return e->time_ms >= m->started_ms && e->time_ms < m->end * 1000;
    case TR_PART_ADDRESSED:
        return e->addressed;
    case TR_PART_ALL:
    default:
        return true;
    }
}

void tr_offset(int64_t offset_ms, char out[32])
{
    char sign = offset_ms < 0 ? '-' : '+';
    /* whole seconds toward zero, without overflowing on INT64_MIN */
    uint64_t abs_ms = offset_ms < 0 ? (uint64_t)(-(offset_ms + 1)) + 1 : (uint64_t)offset_ms;
    uint64_t s = abs_ms / 1000;
    snprintf(out, 32, "%c%02llu:%02llu:%02llu", sign, (unsigned long long)(s / 3600),
             (unsigned long long)(s / 60 % 60), (unsigned long long)(s % 60));
}

/* RFC 3339 UTC with milliseconds when there are any. */
static void stamp(int64_t ms, char out[40])
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)t * 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, 40, "1970-01-01T00:00:00Z");
        return;
    }
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac)
        snprintf(out + n, 40 - n, ".%03dZ", frac);
    else
        snprintf(out + n, 40 - n, "Z");
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

json_t *tr_build(const tr_meta *m, const onair_room_log_entry *log, size_t n)
{
    char a[40], b[40], c[40], d[40];
    stamp(m->start * 1000, a);
    stamp(m->end * 1000, b);
    stamp(m->started_ms, c);
    stamp(m->closed_ms, d);
    json_t *msgs = json_array();
    json_t *doc = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "version", 1,
                            "reservation", nz(m->reservation_id), "owner", nz(m->owner), "title", nz(m->title),
                            "room", nz(m->room), "start", a, "end", b, "started", c, "closed", d, "reason",
                            nz(m->reason), "part", tr_part_name(m->part), "notices", m->notices);
    if (!doc || !msgs) {
        json_decref(doc);
        json_decref(msgs);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const onair_room_log_entry *e = &log[i];
        if (!tr_selected(m, e))
            continue;
        char off[32], at[40];
        tr_offset(e->time_ms - m->started_ms, off);
        stamp(e->time_ms, at);
        json_t *o = json_pack("{s:I, s:s, s:s, s:I, s:s, s:s, s:b, s:b}", "seq", (json_int_t)e->seq, "time", at,
                              "offset", off, "offset_ms", (json_int_t)(e->time_ms - m->started_ms), "nick",
                              e->notice ? "" : nz(e->nick), "body", nz(e->body), "notice", e->notice, "addressed",
                              e->addressed);
        if (!o || json_array_append_new(msgs, o) != 0) {
            json_decref(msgs);
            json_decref(doc);
            return NULL;
        }
    }
    json_object_set_new(doc, "count", json_integer((json_int_t)json_array_size(msgs)));
    if (json_object_set_new(doc, "messages", msgs) != 0) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/* ---- text ---- */

typedef struct tbuf {
    char *data;
    size_t len, cap;
    bool failed;
} tbuf;

static void tadd(tbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *g = realloc(b->data, cap);
        if (!g) {
            b->failed = true;
            return;
        }
        b->data = g;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void tstr(tbuf *b, const char *s)
{
    tadd(b, s, strlen(s));
}

static void tfmt(tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tfmt(tbuf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        tadd(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    tadd(b, big, (size_t)n);
    free(big);
}

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* A body whose later lines are indented under the first. */
static void tbody(tbuf *b, const char *body, size_t indent)
{
    const char *p = body;
    for (;;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n && p[n - 1] == '\r')
            n--;
        tadd(b, p, n);
        tstr(b, "\n");
        if (!nl || !nl[1])
            break;
        for (size_t i = 0; i < indent; i++)
            tstr(b, " ");
        p = nl + 1;
    }
}

char *tr_text(const json_t *doc)
{
    const json_t *msgs = json_object_get(doc, "messages");
    if (!json_is_object(doc) || !json_is_array(msgs))
        return NULL;
    tbuf b = {0};
    const char *part = jstr(doc, "part");
    const char *what = strcmp(part, "live") == 0        ? "what was said during the live"
                       : strcmp(part, "addressed") == 0 ? "the messages addressed to you"
                                                        : "everything said in the room";
    bool notices = json_is_true(json_object_get(doc, "notices"));
    tfmt(&b, "Transcript of the live \"%s\" (reservation %s)\n", jstr(doc, "title"), jstr(doc, "reservation"));
    tfmt(&b, "Room: %s\n", jstr(doc, "room"));
    tfmt(&b, "Live: %s to %s\n", jstr(doc, "start"), jstr(doc, "end"));
    tfmt(&b, "Room closed: %s (%s)\n", jstr(doc, "closed"), jstr(doc, "reason"));
    tfmt(&b, "Part: %s, %s the room's notices\n", what, notices ? "with" : "without");
    size_t n = json_array_size(msgs);
    tfmt(&b, "Messages: %zu; times are relative to the start of the live (%s)\n\n", n, jstr(doc, "started"));
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(msgs, i);
        const char *off = jstr(m, "offset");
        bool notice = json_is_true(json_object_get(m, "notice"));
        char head[400];
        if (notice)
            snprintf(head, sizeof head, "%s * ", off);
        else
            snprintf(head, sizeof head, "%s <%s> ", off, jstr(m, "nick"));
        tstr(&b, head);
        tbody(&b, jstr(m, "body"), strlen(off) + 1);
    }
    if (n == 0)
        tstr(&b, "(nothing was said)\n");
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    return b.data;
}
