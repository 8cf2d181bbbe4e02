/* muc_history.c - history ring and its XEP-0045 limits; the per-occupant
 * token bucket (muc_history.h). */
#include "muc_history.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "datetime.h"

int muc_history_init(muc_history *h, size_t cap)
{
    memset(h, 0, sizeof *h);
    if (cap == 0)
        return 0;
    h->items = calloc(cap, sizeof *h->items);
    if (!h->items)
        return -1;
    h->cap = cap;
    return 0;
}

void muc_history_free(muc_history *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->items[(h->start + i) % h->cap].wire);
    free(h->items);
    memset(h, 0, sizeof *h);
}

void muc_history_push(muc_history *h, int64_t time_ms, char *wire, uint32_t head_len, uint32_t len)
{
    if (h->cap == 0) {
        free(wire);
        return;
    }
    muc_history_item *it;
    if (h->n == h->cap) {
        it = &h->items[h->start];
        free(it->wire);
        h->start = (h->start + 1) % h->cap;
    } else {
        it = &h->items[(h->start + h->n) % h->cap];
        h->n++;
    }
    it->time_ms = time_ms;
    it->wire = wire;
    it->head_len = head_len;
    it->len = len;
}

const muc_history_item *muc_history_at(const muc_history *h, size_t i)
{
    return &h->items[(h->start + i) % h->cap];
}

static int parse_count(const char *v, long long *out)
{
    if (!v)
        return 0;
    if (!*v || *v == '-' || *v == '+')
        return -1;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (*end || errno == ERANGE || n < 0)
        return -1;
    *out = n;
    return 0;
}

int muc_history_request_parse(const xml_node *history, muc_history_request *out, const char **bad)
{
    out->maxstanzas = out->maxchars = out->seconds = -1;
    out->since_ms = -1;
    if (!history)
        return 0;
    static const char *const names[3] = {"maxstanzas", "maxchars", "seconds"};
    long long *slots[3] = {&out->maxstanzas, &out->maxchars, &out->seconds};
    for (size_t i = 0; i < 3; i++) {
        if (parse_count(xml_node_attr(history, names[i]), slots[i]) != 0) {
            *bad = names[i];
            return -1;
        }
    }
    const char *since = xml_node_attr(history, "since");
    if (since) {
        int64_t t;
        long ns = 0;
        if (datetime_parse(since, &t, &ns) != 0) {
            *bad = "since";
            return -1;
        }
        out->since_ms = t * 1000 + ns / 1000000;
    }
    return 0;
}

size_t muc_history_select(const muc_history *h, const muc_history_request *rq, int64_t now_ms, size_t to_len)
{
    int64_t oldest = INT64_MIN;
    if (rq->seconds >= 0)
        oldest = now_ms - (rq->seconds > INT64_MAX / 2000 ? INT64_MAX / 2 : rq->seconds * 1000);
    if (rq->since_ms >= 0 && rq->since_ms > oldest)
        oldest = rq->since_ms;
    size_t first = h->n;
    long long chars = 0;
    while (first > 0) {
        const muc_history_item *it = muc_history_at(h, first - 1);
        if (rq->maxstanzas >= 0 && (long long)(h->n - first) >= rq->maxstanzas)
            break;
        if (it->time_ms < oldest)
            break;
        long long size = (long long)it->len + (long long)to_len;
        if (rq->maxchars >= 0 && chars + size > rq->maxchars)
            break;
        chars += size;
        first--;
    }
    return first;
}

void muc_rate_init(muc_rate *r, int64_t now_ms, uint32_t burst)
{
    r->stamp_ms = now_ms;
    r->tokens = (uint64_t)burst * 1000;
}

bool muc_rate_take(muc_rate *r, int64_t now_ms, uint32_t per_s, uint32_t burst)
{
    uint64_t cap = (uint64_t)burst * 1000;
    if (now_ms > r->stamp_ms) {
        uint64_t elapsed = (uint64_t)(now_ms - r->stamp_ms);
        /* per_s tokens a second = per_s thousandths a millisecond */
        uint64_t add = elapsed > cap ? cap * (uint64_t)per_s : elapsed * per_s;
        r->tokens = r->tokens + add > cap ? cap : r->tokens + add;
        r->stamp_ms = now_ms;
    }
    if (r->tokens > cap)
        r->tokens = cap; /* the burst was lowered */
    if (r->tokens < 1000)
        return false;
    r->tokens -= 1000;
    return true;
}
