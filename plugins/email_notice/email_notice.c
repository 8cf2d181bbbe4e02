/* email_notice.c - e-mail and XMPP notices of reservations (specs/email.md,
 * plugins/email_notice/README.md).
 *
 *  - "reservation booked": the reservation ID (and the deadline to
 *    reconfirm) mailed to the owner's address.
 *  - "reservation reconfirmed": a notice to every friend of the
 *    reservation: by mail to e-mail addresses; to XMPP addresses a message
 *    with the same details and a XEP-0249 invitation to the live's room.
 *  - the service "mail" (ONAIR_SERVICE_MAIL): other plugins queue mails
 *    (the transcript plugin sends transcripts with it).
 *
 * Everything to send goes through a durable outbox in the plugin's store
 * database first, one entry per recipient (key "q" + sequence number), so
 * nothing accepted is lost when the mail server is away or onaird is
 * killed: entries are retried with exponential back-off (their next
 * attempt time is stored), and deleted once delivered.  A recipient the
 * mail server refuses permanently (5xx) is dropped and the owner is told,
 * by XMPP and by mail.
 *
 * Mail leaves through libcurl's SMTP client, one curl_easy_perform per
 * mail on the host's thread pool (work_queue): curl's SMTP code waits for
 * the server's replies to the end of a message and to QUIT in a blocking
 * loop, which must never run on the server's loop.  A transfer is set up
 * on the loop (settings read there), performed on a pool thread that
 * touches only the transfer, and its result handled on the loop again
 * (outbox updated, retry or report).  The notices carry the shared
 * password; it is never stored in the outbox: a notice entry names the
 * reservation and the recipient, and the text is made from reservation_read
 * when it is sent (so a live cancelled meanwhile sends nothing).
 */
#include <curl/curl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <onair/plugin.h>

#include "mime.h"

#define NAME "email_notice"
#define ENTRY_VERSION 1
#define ENTRY_HEADER 24
#define NSTRINGS 9
#define MAX_TEXT_BYTES (4u << 20) /* subject, body and attachment of one queued mail */
#define SEQ_KEY "seq"

enum kind {
    KIND_MAIL = 1,        /* a mail with its text stored */
    KIND_NOTICE_MAIL = 2, /* a friend's notice by mail, made when sent */
    KIND_NOTICE_XMPP = 3, /* a friend's notice by XMPP, made when sent */
    KIND_XMPP = 4         /* an XMPP message with its text stored */
};

enum purpose { PURPOSE_BOOKING = 1, PURPOSE_NOTICE = 2, PURPOSE_SERVICE = 3, PURPOSE_REPORT = 4 };

static const char *purpose_name(int p)
{
    switch (p) {
    case PURPOSE_BOOKING:
        return "booking";
    case PURPOSE_NOTICE:
        return "notice";
    case PURPOSE_SERVICE:
        return "service";
    case PURPOSE_REPORT:
        return "report";
    default:
        return "mail";
    }
}

/* One outbox entry, decoded.  Strings owned, never NULL once decoded. */
typedef struct entry {
    uint64_t seq;
    uint8_t kind, purpose;
    uint32_t attempts;
    int64_t created;  /* seconds since the epoch */
    int64_t next_ms;  /* next attempt, ms since the epoch */
    char *s[NSTRINGS];
} entry;

/* the strings of an entry, by index */
enum { S_TO, S_OWNER, S_RID, S_MSGID, S_SUBJECT, S_BODY, S_ATT_NAME, S_ATT, S_ERROR };

/* libcurl's global state, released (curl_global_cleanup) when the plugin
 * and every transfer still on a pool thread are done with it.  Counted on
 * the loop only. */
typedef struct curl_life {
    unsigned refs;
} curl_life;

struct emailer;

/* One mail on its way to the SMTP server.  Made on the loop; while queued
 * the pool thread owns easy, msg, off, err, result and code; back on the
 * loop (done) the emailer handles it, or frees it alone when the plugin
 * has shut down meanwhile (st NULL). */
typedef struct xfer {
    struct xfer *next;
    struct emailer *st; /* NULL once the plugin has shut down */
    curl_life *life;    /* one reference */
    uint64_t seq;
    CURL *easy;
    struct curl_slist *rcpt;
    mbuf msg;   /* the message (may hold a password: wiped) */
    size_t off; /* read so far */
    char err[CURL_ERROR_SIZE];
    CURLcode result;
    long code;           /* the last SMTP reply code */
    atomic_bool abort;   /* set on the loop at shutdown: the transfer stops at curl's next progress call */
} xfer;

typedef struct emailer {
    onair_host *h;
    const onair_host_api *api;
    curl_life *life;     /* one reference; NULL until curl_global_init succeeded */
    uint64_t wake_timer; /* the outbox's next due entry */
    bool running;        /* inside run_outbox */
    bool rerun;          /* something was queued meanwhile: run again at once */
    xfer *xfers;
    unsigned nxfers;
    long use_ssl; /* CURLUSESSL_* from starttls */
    onair_mail_service service;
} emailer;

/* ---- small helpers ---- */

static char *dup(const char *s)
{
    size_t n = strlen(s ? s : "") + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s ? s : "", n) : NULL;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wipe_str(char *s)
{
    if (s) {
        volatile char *p = s;
        while (*p)
            *p++ = 0;
    }
    free(s);
}

/* "2031-01-15 18:00 UTC" in the server's zone (the process's local zone is
 * reservation.timezone). */
static void fmt_time(int64_t t, char out[64])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!localtime_r(&tt, &tm) || strftime(out, 64, "%Y-%m-%d %H:%M %Z", &tm) == 0)
        snprintf(out, 64, "%lld", (long long)t);
}

static bool valid_rid(const char *id)
{
    if (!id || strlen(id) != 26)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '2' && *p <= '7')))
            return false;
    return true;
}

/* XML-escaped copy (malloc'd), for values put into stanzas. */
static char *esc(emailer *st, const char *s)
{
    size_t cap = 6 * strlen(s ? s : "") + 1;
    char *out = malloc(cap);
    if (out)
        st->api->xml_escape(s ? s : "", out, cap);
    return out;
}

/* ---- configuration ---- */

static const onair_config_key config_keys[] = {
    {.name = "smtp_host", .type = ONAIR_CONFIG_STRING, .default_string = "localhost",
     .description = "the mail server (a relay that accepts mail for any address from onaird)"},
    {.name = "smtp_port", .type = ONAIR_CONFIG_INT, .default_int = 25, .min = 1, .max = 65535,
     .description = "its port (25, or 587 for submission)"},
    {.name = "starttls", .type = ONAIR_CONFIG_STRING, .default_string = "opportunistic",
     .description = "off, opportunistic (STARTTLS when offered) or required (no mail without it)"},
    {.name = "tls_verify", .type = ONAIR_CONFIG_BOOL, .default_int = 1,
     .description = "check the mail server's certificate and name"},
    {.name = "ca_file", .type = ONAIR_CONFIG_STRING, .default_string = "",
     .description = "CA certificates (PEM) to check it with (\"\": the system's)"},
    {.name = "username", .type = ONAIR_CONFIG_STRING, .default_string = "",
     .description = "SMTP AUTH user (\"\": no AUTH)"},
    {.name = "password", .type = ONAIR_CONFIG_STRING, .default_string = "",
     .description = "SMTP AUTH password (never logged)"},
    {.name = "from", .type = ONAIR_CONFIG_STRING, .default_string = "",
     .description = "sender address (\"\": noreply@<server.domain>)"},
    {.name = "from_name", .type = ONAIR_CONFIG_STRING, .default_string = "onair",
     .description = "sender name shown in From"},
    {.name = "retry_first_s", .type = ONAIR_CONFIG_INT, .default_int = 60, .min = 1, .max = 86400,
     .description = "first delay after a failed attempt; doubled each time"},
    {.name = "retry_max_s", .type = ONAIR_CONFIG_INT, .default_int = 3600, .min = 1, .max = 604800,
     .description = "longest delay between attempts"},
    {.name = "give_up_s", .type = ONAIR_CONFIG_INT, .default_int = 432000, .min = 1, .max = 31536000,
     .description = "a mail not delivered this long after it was queued is given up (the owner is told)"},
    {.name = "connect_timeout_s", .type = ONAIR_CONFIG_INT, .default_int = 15, .min = 1, .max = 600,
     .description = "connecting to the mail server"},
    {.name = "timeout_s", .type = ONAIR_CONFIG_INT, .default_int = 120, .min = 1, .max = 3600,
     .description = "one whole delivery"},
    {.name = "reply_timeout_s", .type = ONAIR_CONFIG_INT, .default_int = 10, .min = 1, .max = 600,
     .description = "waiting for one reply of the mail server"},
    {.name = "max_parallel", .type = ONAIR_CONFIG_INT, .default_int = 4, .min = 1, .max = 64,
     .description = "deliveries at once"},
    {.name = NULL},
};

static const char *cfg_s(emailer *st, const char *key)
{
    const char *v = st->api->config_string(st->h, key);
    return v ? v : "";
}

static int64_t cfg_i(emailer *st, const char *key)
{
    return st->api->config_int(st->h, key);
}

/* The sender address: from, or noreply@<domain>. */
static void from_addr(emailer *st, char out[MIME_ADDRESS_MAX + 1])
{
    const char *f = cfg_s(st, "from");
    if (*f)
        snprintf(out, MIME_ADDRESS_MAX + 1, "%s", f);
    else
        snprintf(out, MIME_ADDRESS_MAX + 1, "noreply@%s", st->api->server_domain(st->h));
}

/* Checks the settings in place; sets use_ssl.  0, or -1 (logged). */
static int check_settings(emailer *st)
{
    const char *tls = cfg_s(st, "starttls");
    long mode;
    if (strcmp(tls, "off") == 0)
        mode = CURLUSESSL_NONE;
    else if (strcmp(tls, "opportunistic") == 0)
        mode = CURLUSESSL_TRY;
    else if (strcmp(tls, "required") == 0)
        mode = CURLUSESSL_ALL;
    else {
        st->api->log(st->h, ONAIR_LOG_ERROR, "plugin.%s.starttls: expected off, opportunistic or required", NAME);
        return -1;
    }
    char from[MIME_ADDRESS_MAX + 1];
    from_addr(st, from);
    if (!mime_address_ok(from)) {
        st->api->log(st->h, ONAIR_LOG_ERROR, "plugin.%s.from: not a plain e-mail address", NAME);
        return -1;
    }
    const char *host = cfg_s(st, "smtp_host");
    if (!*host || strlen(host) > 253 || strpbrk(host, " /?#@\r\n\t")) {
        st->api->log(st->h, ONAIR_LOG_ERROR, "plugin.%s.smtp_host: not a host name or address", NAME);
        return -1;
    }
    if (*cfg_s(st, "username") && mode != CURLUSESSL_ALL)
        st->api->log(st->h, ONAIR_LOG_WARN, "SMTP AUTH without starttls = \"required\": the password may cross "
                                            "the network in clear");
    st->use_ssl = mode;
    return 0;
}

/* ---- outbox entries in the store ---- */

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void entry_key(uint64_t seq, unsigned char key[9])
{
    key[0] = 'q';
    put_u64(key + 1, seq);
}

static void entry_clear(entry *e)
{
    for (int i = 0; i < NSTRINGS; i++)
        free(e->s[i]);
    memset(e, 0, sizeof *e);
}

/* The encoded value: version, kind, purpose, 0, attempts, created, next
 * attempt, then the strings, each with a 4-byte length. */
static bool entry_encode(const entry *e, mbuf *b)
{
    unsigned char h[ENTRY_HEADER] = {ENTRY_VERSION, e->kind, e->purpose, 0};
    put_u32(h + 4, e->attempts);
    put_u64(h + 8, (uint64_t)e->created);
    put_u64(h + 16, (uint64_t)e->next_ms);
    mbuf_add(b, h, sizeof h);
    for (int i = 0; i < NSTRINGS; i++) {
        const char *s = e->s[i] ? e->s[i] : "";
        unsigned char n[4];
        put_u32(n, (uint32_t)strlen(s));
        mbuf_add(b, n, 4);
        mbuf_add(b, s, strlen(s));
    }
    return !b->failed;
}

static bool header_decode(const unsigned char *v, size_t len, entry *e)
{
    if (len < ENTRY_HEADER || v[0] != ENTRY_VERSION || v[1] < KIND_MAIL || v[1] > KIND_XMPP)
        return false;
    e->kind = v[1];
    e->purpose = v[2];
    e->attempts = get_u32(v + 4);
    e->created = (int64_t)get_u64(v + 8);
    e->next_ms = (int64_t)get_u64(v + 16);
    return true;
}

static bool entry_decode(const unsigned char *v, size_t len, entry *e)
{
    memset(e, 0, sizeof *e);
    if (!header_decode(v, len, e))
        return false;
    size_t off = ENTRY_HEADER;
    for (int i = 0; i < NSTRINGS; i++) {
        if (len - off < 4)
            return false;
        uint32_t n = get_u32(v + off);
        off += 4;
        if (n > len - off || !(e->s[i] = malloc((size_t)n + 1)))
            return false;
        memcpy(e->s[i], v + off, n);
        e->s[i][n] = '\0';
        off += n;
    }
    return true;
}

/* Reads entry seq; false when it is gone or damaged. */
static bool entry_load(emailer *st, uint64_t seq, entry *e)
{
    unsigned char key[9];
    entry_key(seq, key);
    size_t vlen = 0;
    memset(e, 0, sizeof *e);
    if (st->api->store_get(st->h, NULL, key, sizeof key, NULL, 0, &vlen) != ONAIR_OK)
        return false;
    unsigned char *v = malloc(vlen ? vlen : 1);
    bool ok = v && st->api->store_get(st->h, NULL, key, sizeof key, v, vlen, &vlen) == ONAIR_OK &&
              entry_decode(v, vlen, e);
    free(v);
    if (!ok) {
        entry_clear(e);
        return false;
    }
    e->seq = seq;
    return true;
}

static int entry_put(emailer *st, onair_txn *txn, const entry *e)
{
    unsigned char key[9];
    entry_key(e->seq, key);
    mbuf b = {0};
    int rc = entry_encode(e, &b) ? st->api->store_put(st->h, txn, key, sizeof key, b.data, b.len) : ONAIR_E_NOMEM;
    mbuf_free(&b);
    return rc;
}

static int entry_del(emailer *st, onair_txn *txn, uint64_t seq)
{
    unsigned char key[9];
    entry_key(seq, key);
    return st->api->store_del(st->h, txn, key, sizeof key);
}

/* Adds e (seq, message ID and times filled here) in txn. */
static int entry_add(emailer *st, onair_txn *txn, entry *e)
{
    unsigned char v[8];
    size_t n = 0;
    uint64_t seq = 0;
    int rc = st->api->store_get(st->h, txn, SEQ_KEY, strlen(SEQ_KEY), v, sizeof v, &n);
    if (rc == ONAIR_OK && n == 8)
        seq = get_u64(v);
    else if (rc != ONAIR_E_NOTFOUND)
        return rc == ONAIR_OK ? ONAIR_E_STORE : rc;
    put_u64(v, ++seq);
    if ((rc = st->api->store_put(st->h, txn, SEQ_KEY, strlen(SEQ_KEY), v, 8)) != ONAIR_OK)
        return rc;
    e->seq = seq;
    e->created = now_ms() / 1000;
    e->next_ms = 0; /* due now */
    char id[320];
    snprintf(id, sizeof id, "onair.%llu.%lld@%s", (unsigned long long)seq, (long long)e->created,
             st->api->server_domain(st->h));
    free(e->s[S_MSGID]);
    if (!(e->s[S_MSGID] = dup(id)))
        return ONAIR_E_NOMEM;
    return entry_put(st, txn, e);
}

typedef struct add_job {
    emailer *st;
    entry *items;
    size_t n;
    uint64_t del; /* an entry to delete in the same transaction, or 0 */
} add_job;

static int add_in_txn(void *ud, onair_txn *txn)
{
    add_job *job = ud;
    if (job->del && entry_del(job->st, txn, job->del) != ONAIR_OK)
        return -1;
    for (size_t i = 0; i < job->n; i++) {
        int rc = entry_add(job->st, txn, &job->items[i]);
        if (rc != ONAIR_OK)
            return rc < 0 ? rc : -1;
    }
    return 0;
}

static void kick(emailer *st);

/* Stores the entries (and deletes `del`) in one transaction, then wakes
 * the outbox.  The entries are cleared either way. */
static int enqueue(emailer *st, entry *items, size_t n, uint64_t del)
{
    add_job job = {st, items, n, del};
    int rc = st->api->store_txn(st->h, add_in_txn, &job);
    for (size_t i = 0; i < n; i++)
        entry_clear(&items[i]);
    if (rc != ONAIR_OK)
        st->api->log(st->h, ONAIR_LOG_ERROR, "the outbox could not be written (%d): %zu message%s not queued", rc,
                     n, n == 1 ? "" : "s");
    kick(st);
    return rc;
}

/* A new entry with its strings; false when out of memory (then cleared). */
static bool entry_make(entry *e, int kind, int purpose, const char *to, const char *owner, const char *rid,
                       const char *subject, const char *body)
{
    memset(e, 0, sizeof *e);
    e->kind = (uint8_t)kind;
    e->purpose = (uint8_t)purpose;
    const char *v[NSTRINGS] = {to, owner, rid, "", subject, body, "", "", ""};
    for (int i = 0; i < NSTRINGS; i++) {
        if (!(e->s[i] = dup(v[i]))) {
            entry_clear(e);
            return false;
        }
    }
    return true;
}

/* ---- texts ---- */

static void line(mbuf *b, const char *label, const char *value)
{
    char pad[24];
    snprintf(pad, sizeof pad, "%-16s", label);
    mbuf_str(b, pad);
    mbuf_str(b, value);
    mbuf_str(b, "\n");
}

/* What a notice needs of a reservation, copied out of reservation_read. */
typedef struct notice {
    bool found, sendable;
    char state[32];
    char *id, *owner, *title, *summary, *page_url, *room_jid, *password, *level;
    int64_t start, end;
} notice;

static void notice_clear(notice *n)
{
    free(n->id);
    free(n->owner);
    free(n->title);
    free(n->summary);
    free(n->page_url);
    free(n->room_jid);
    free(n->level);
    wipe_str(n->password);
    memset(n, 0, sizeof *n);
}

static void notice_fill(void *ud, const onair_reservation_event *r, const onair_reservation_settings *s)
{
    notice *n = ud;
    n->found = true;
    snprintf(n->state, sizeof n->state, "%s", r->state);
    n->sendable = s && (strcmp(r->state, "reconfirmed") == 0 || strcmp(r->state, "live") == 0);
    if (!n->sendable)
        return;
    n->id = dup(r->id);
    n->owner = dup(r->owner);
    n->title = dup(r->title);
    n->summary = dup(r->summary);
    n->level = dup(r->level);
    n->page_url = dup(s->page_url);
    n->room_jid = dup(s->room_jid);
    n->password = dup(s->shared_password);
    n->start = r->start;
    n->end = r->end;
    if (!n->id || !n->owner || !n->title || !n->summary || !n->level || !n->page_url || !n->room_jid ||
        !n->password)
        n->sendable = false;
}

static void notice_text(const notice *n, const char *server, mbuf *subject, mbuf *body)
{
    char a[64], z[64];
    fmt_time(n->start, a);
    fmt_time(n->end, z);
    mbuf_str(subject, "Invitation: ");
    mbuf_str(subject, n->title);
    mbuf_str(subject, ", ");
    mbuf_str(subject, a);
    mbuf_str(body, "You are invited to a live broadcast on ");
    mbuf_str(body, server);
    mbuf_str(body, ".\n\n");
    line(body, "Title:", n->title);
    char when[160];
    snprintf(when, sizeof when, "%s to %s", a, z);
    line(body, "Date and time:", when);
    if (*n->summary)
        line(body, "Summary:", n->summary);
    line(body, "Watch at:", n->page_url);
    line(body, "Password:", *n->password ? n->password : "(none needed)");
    line(body, "Reservation ID:", n->id);
    line(body, "Chat room:", n->room_jid);
    mbuf_str(body, "\nThe password opens the live and its chat room. Please do not pass it on.\n");
}

static void booking_text(const onair_reservation_event *r, mbuf *subject, mbuf *body)
{
    char a[64], z[64], d[64];
    fmt_time(r->start, a);
    fmt_time(r->end, z);
    fmt_time(r->deadline, d);
    mbuf_str(subject, "Booked: ");
    mbuf_str(subject, r->title);
    mbuf_str(subject, ", ");
    mbuf_str(subject, a);
    mbuf_str(body, "Your live is booked. Keep its reservation ID: you need it to reconfirm,\n"
                   "to see the live's settings and to cancel.\n\n");
    line(body, "Reservation ID:", r->id);
    line(body, "Title:", r->title);
    line(body, "Channel:", r->channel);
    char when[160];
    snprintf(when, sizeof when, "%s to %s", a, z);
    line(body, "Date and time:", when);
    line(body, "Reconfirm by:", d);
    mbuf_str(body, "\nA reservation that is not reconfirmed by then is cancelled.\n"
                   "On reconfirmation your friends receive their invitations.\n");
}

/* ---- XMPP ---- */

/* Sends a chat message (subject, body, and an invitation when room is
 * set).  Returns the send_xml code. */
static int send_message(emailer *st, const char *to, const char *id, const char *subject, const char *body,
                        const char *room, const char *password, const char *reason)
{
    char *clean_body = mime_clean(body, true), *clean_subject = mime_clean(subject, false);
    char *e_to = esc(st, to), *e_id = esc(st, id), *e_sub = esc(st, clean_subject), *e_body = esc(st, clean_body);
    char *e_room = room ? esc(st, room) : NULL, *e_pw = room ? esc(st, password) : NULL,
         *e_reason = room ? esc(st, reason) : NULL;
    int rc = ONAIR_E_NOMEM;
    mbuf x = {0};
    if (clean_body && clean_subject && e_to && e_id && e_sub && e_body && (!room || (e_room && e_pw && e_reason))) {
        mbuf_str(&x, "<message type='chat' to='");
        mbuf_str(&x, e_to);
        mbuf_str(&x, "' id='");
        mbuf_str(&x, e_id);
        mbuf_str(&x, "'><subject>");
        mbuf_str(&x, e_sub);
        mbuf_str(&x, "</subject><body>");
        mbuf_str(&x, e_body);
        mbuf_str(&x, "</body>");
        if (room) {
            /* XEP-0249 direct invitation, with the room's password */
            mbuf_str(&x, "<x xmlns='jabber:x:conference' jid='");
            mbuf_str(&x, e_room);
            if (*password) {
                mbuf_str(&x, "' password='");
                mbuf_str(&x, e_pw);
            }
            mbuf_str(&x, "' reason='");
            mbuf_str(&x, e_reason);
            mbuf_str(&x, "'/>");
        }
        mbuf_str(&x, "</message>");
        rc = x.failed ? ONAIR_E_NOMEM : st->api->send_xml(st->h, x.data);
    }
    mbuf_wipe(&x);
    free(clean_body);
    free(clean_subject);
    free(e_to);
    free(e_id);
    free(e_sub);
    wipe_str(e_body);
    free(e_room);
    wipe_str(e_pw);
    free(e_reason);
    return rc;
}

/* ---- reports of permanent failures ---- */

/* Deletes entry e and queues, in the same transaction, the owner's report
 * (an XMPP message, and a mail to the owner's address unless that is the
 * address that failed). */
static void fail_permanently(emailer *st, const entry *e, const char *why)
{
    st->api->log(st->h, ONAIR_LOG_WARN, "q%llu (%s%s%s) to %s given up: %s", (unsigned long long)e->seq,
                 purpose_name(e->purpose), *e->s[S_RID] ? ", reservation " : "", e->s[S_RID], e->s[S_TO], why);
    entry items[2];
    size_t n = 0;
    const char *owner = e->s[S_OWNER];
    if (e->purpose != PURPOSE_REPORT && *owner) {
        mbuf subject = {0}, body = {0};
        mbuf_str(&subject, "Not delivered: ");
        mbuf_str(&subject, purpose_name(e->purpose));
        mbuf_str(&subject, " to ");
        mbuf_str(&subject, e->s[S_TO]);
        mbuf_str(&body, "A message could not be delivered and was given up.\n\n");
        line(&body, "To:", e->s[S_TO]);
        line(&body, "What:", e->kind == KIND_NOTICE_MAIL || e->kind == KIND_NOTICE_XMPP ? "the invitation to your live"
                                                                                        : purpose_name(e->purpose));
        if (*e->s[S_RID])
            line(&body, "Reservation ID:", e->s[S_RID]);
        line(&body, "Reason:", why);
        mbuf_str(&body, "\nPlease check the address.\n");
        char jid[600];
        snprintf(jid, sizeof jid, "%s@%s", owner, st->api->server_domain(st->h));
        if (!subject.failed && !body.failed &&
            entry_make(&items[n], KIND_XMPP, PURPOSE_REPORT, jid, "", e->s[S_RID], subject.data, body.data))
            n++;
        char mail[MIME_ADDRESS_MAX + 2];
        long ml = st->api->account_email(st->h, owner, mail, sizeof mail);
        if (ml > 0 && (size_t)ml <= MIME_ADDRESS_MAX && mime_address_ok(mail) && strcmp(mail, e->s[S_TO]) != 0 &&
            !subject.failed && !body.failed &&
            entry_make(&items[n], KIND_MAIL, PURPOSE_REPORT, mail, "", e->s[S_RID], subject.data, body.data))
            n++;
        mbuf_free(&subject);
        mbuf_free(&body);
    }
    enqueue(st, items, n, e->seq);
}

/* ---- curl: one transfer per mail on the thread pool ---- */

static void life_release(curl_life *life)
{
    if (life && --life->refs == 0) {
        curl_global_cleanup();
        free(life);
    }
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    xfer *x = ud;
    size_t room = size * nitems, left = x->msg.len - x->off;
    size_t n = room < left ? room : left;
    memcpy(buf, x->msg.data + x->off, n);
    x->off += n;
    return n;
}

/* curl calls this while it works (also while it waits for a reply): a
 * non-zero return ends the transfer (the plugin is shutting down). */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    xfer *x = ud;
    return atomic_load(&x->abort) ? 1 : 0;
}

static void xfer_free(xfer *x)
{
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->rcpt);
    mbuf_wipe(&x->msg);
    life_release(x->life);
    free(x);
}

/* On a pool thread: the whole SMTP conversation.  Touches x only. */
static void xfer_work(void *data)
{
    xfer *x = data;
    x->result = curl_easy_perform(x->easy);
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->code);
}

/* Whether a failed delivery will never succeed: a 5xx reply to the
 * recipient (RCPT) or to the message (DATA, end of data).  A 5xx to MAIL
 * FROM or AUTH is the server's set-up and is retried. */
static bool permanent(CURLcode rc, long code, const char *err)
{
    if (code < 500 || code > 599)
        return false;
    return (rc == CURLE_SEND_ERROR && (strncmp(err, "RCPT failed", 11) == 0 || strncmp(err, "DATA failed", 11) == 0)) ||
           rc == CURLE_WEIRD_SERVER_REPLY;
}

static int64_t backoff_s(emailer *st, uint32_t attempts)
{
    int64_t d = cfg_i(st, "retry_first_s"), max = cfg_i(st, "retry_max_s");
    for (uint32_t i = 1; i < attempts && d < max; i++)
        d *= 2;
    return d < max ? d : max;
}

/* A temporary failure of entry e: retried later, or given up when it is
 * too old. */
static void retry_later(emailer *st, entry *e, const char *why)
{
    int64_t now = now_ms();
    if (now / 1000 - e->created >= cfg_i(st, "give_up_s")) {
        char msg[600];
        snprintf(msg, sizeof msg, "not delivered within %lld s of being queued; last: %s",
                 (long long)cfg_i(st, "give_up_s"), why);
        fail_permanently(st, e, msg);
        return;
    }
    e->attempts++;
    int64_t delay = backoff_s(st, e->attempts);
    e->next_ms = now + delay * 1000;
    free(e->s[S_ERROR]);
    e->s[S_ERROR] = dup(why);
    int rc = entry_put(st, NULL, e);
    st->api->log(st->h, ONAIR_LOG_WARN, "q%llu (%s) to %s: %s; attempt %u failed, next in %lld s%s",
                 (unsigned long long)e->seq, purpose_name(e->purpose), e->s[S_TO], why, e->attempts,
                 (long long)delay, rc == ONAIR_OK ? "" : " (the outbox could not be updated)");
}

/* On the loop, after xfer_work (or instead of it, status ONAIR_E_CANCELLED). */
static void xfer_done(void *data, int status)
{
    xfer *x = data;
    emailer *st = x->st;
    if (!st) {
        /* The plugin shut down meanwhile: the entry stays in the outbox and
         * is sent again after the next start. */
        xfer_free(x);
        return;
    }
    xfer **pp = &st->xfers;
    while (*pp && *pp != x)
        pp = &(*pp)->next;
    if (*pp)
        *pp = x->next;
    st->nxfers--;
    CURLcode result = status == ONAIR_OK ? x->result : CURLE_ABORTED_BY_CALLBACK;
    long code = status == ONAIR_OK ? x->code : 0;
    char why[CURL_ERROR_SIZE + 64];
    if (status != ONAIR_OK)
        snprintf(why, sizeof why, "the delivery did not run (%d)", status);
    else if (result != CURLE_OK)
        snprintf(why, sizeof why, "%s (SMTP %ld)", x->err[0] ? x->err : curl_easy_strerror(result), code);
    bool perm = status == ONAIR_OK && result != CURLE_OK && permanent(result, code, x->err);
    uint64_t seq = x->seq;
    xfer_free(x);
    entry e;
    if (!entry_load(st, seq, &e)) {
        kick(st);
        return;
    }
    if (status == ONAIR_OK && result == CURLE_OK) {
        entry_del(st, NULL, seq);
        st->api->log(st->h, ONAIR_LOG_INFO, "q%llu (%s%s%s) delivered to %s", (unsigned long long)seq,
                     purpose_name(e.purpose), *e.s[S_RID] ? ", reservation " : "", e.s[S_RID], e.s[S_TO]);
    } else if (perm) {
        char msg[CURL_ERROR_SIZE + 128];
        snprintf(msg, sizeof msg, "the mail server refused it permanently: %s", why);
        fail_permanently(st, &e, msg);
    } else {
        retry_later(st, &e, why);
    }
    entry_clear(&e);
    kick(st);
}

/* Starts delivering msg (taken over) for entry e on the thread pool.  On
 * failure the entry is retried later. */
static void start_transfer(emailer *st, entry *e, mbuf *msg)
{
    xfer *x = calloc(1, sizeof *x);
    char from[MIME_ADDRESS_MAX + 3], rcpt[MIME_ADDRESS_MAX + 3], url[600], addr[MIME_ADDRESS_MAX + 1];
    from_addr(st, addr);
    snprintf(from, sizeof from, "<%s>", addr);
    snprintf(rcpt, sizeof rcpt, "<%s>", e->s[S_TO]);
    const char *host = cfg_s(st, "smtp_host");
    bool v6 = strchr(host, ':') != NULL;
    snprintf(url, sizeof url, "smtp://%s%s%s:%lld/%s", v6 ? "[" : "", host, v6 ? "]" : "",
             (long long)cfg_i(st, "smtp_port"), st->api->server_domain(st->h));
    if (x) {
        x->life = st->life;
        st->life->refs++;
    }
    if (!x || !(x->easy = curl_easy_init()) || !(x->rcpt = curl_slist_append(NULL, rcpt))) {
        if (x)
            xfer_free(x);
        mbuf_wipe(msg);
        retry_later(st, e, "out of memory");
        return;
    }
    x->st = st;
    x->seq = e->seq;
    x->msg = *msg;
    *msg = (mbuf){0};
    atomic_init(&x->abort, false);
    /* Every option is copied by curl here, on the loop: the pool thread
     * reads nothing of the host. */
    CURL *c = x->easy;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, x->rcpt);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, x);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->msg.len);
    curl_easy_setopt(c, CURLOPT_USE_SSL, st->use_ssl);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, st->api->config_bool(st->h, "tls_verify") ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, st->api->config_bool(st->h, "tls_verify") ? 2L : 0L);
    if (*cfg_s(st, "ca_file"))
        curl_easy_setopt(c, CURLOPT_CAINFO, cfg_s(st, "ca_file"));
    if (*cfg_s(st, "username")) {
        curl_easy_setopt(c, CURLOPT_USERNAME, cfg_s(st, "username"));
        curl_easy_setopt(c, CURLOPT_PASSWORD, cfg_s(st, "password"));
    }
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)cfg_i(st, "connect_timeout_s"));
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)cfg_i(st, "timeout_s"));
    curl_easy_setopt(c, CURLOPT_SERVER_RESPONSE_TIMEOUT, (long)cfg_i(st, "reply_timeout_s"));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->err);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
    x->next = st->xfers;
    st->xfers = x;
    st->nxfers++;
    int rc = st->api->work_queue(st->h, xfer_work, xfer_done, x);
    if (rc != ONAIR_OK) {
        st->xfers = x->next;
        st->nxfers--;
        xfer_free(x);
        retry_later(st, e, "the delivery could not be queued on the thread pool");
    }
}

/* ---- the outbox ---- */

static void mail_message(emailer *st, entry *e, const char *subject, const char *body, mbuf *out, bool *bad)
{
    char from[MIME_ADDRESS_MAX + 1];
    from_addr(st, from);
    mime_mail m = {
        .from_name = cfg_s(st, "from_name"),
        .from_addr = from,
        .to_addr = e->s[S_TO],
        .subject = subject,
        .body = body,
        .attachment_name = *e->s[S_ATT_NAME] ? e->s[S_ATT_NAME] : NULL,
        .attachment = e->s[S_ATT],
        .message_id = e->s[S_MSGID],
        .reservation_id = *e->s[S_RID] ? e->s[S_RID] : NULL,
        .date = e->created,
    };
    size_t len = 0;
    char *text = mime_build(&m, &len);
    *bad = text == NULL;
    *out = (mbuf){.data = text, .len = len, .cap = len};
}

/* Processes entry seq now: sends XMPP at once, starts a mail transfer. */
static void process(emailer *st, uint64_t seq)
{
    entry e;
    if (!entry_load(st, seq, &e)) {
        st->api->log(st->h, ONAIR_LOG_ERROR, "q%llu is damaged: removed", (unsigned long long)seq);
        entry_del(st, NULL, seq);
        return;
    }
    if (e.kind == KIND_NOTICE_MAIL || e.kind == KIND_NOTICE_XMPP) {
        notice n = {0};
        int rc = st->api->reservation_read(st->h, e.s[S_RID], notice_fill, &n);
        if (rc != ONAIR_OK && rc != ONAIR_E_NOTFOUND) {
            char why[64];
            snprintf(why, sizeof why, "the reservation could not be read (%d)", rc);
            retry_later(st, &e, why);
        } else if (!n.sendable) {
            st->api->log(st->h, ONAIR_LOG_INFO, "q%llu (notice, reservation %s) to %s dropped: the reservation is %s",
                         (unsigned long long)seq, e.s[S_RID], e.s[S_TO], n.found ? n.state : "gone");
            entry_del(st, NULL, seq);
        } else {
            mbuf subject = {0}, body = {0};
            notice_text(&n, st->api->server_domain(st->h), &subject, &body);
            if (subject.failed || body.failed) {
                retry_later(st, &e, "out of memory");
            } else if (e.kind == KIND_NOTICE_XMPP) {
                rc = send_message(st, e.s[S_TO], e.s[S_MSGID], subject.data, body.data, n.room_jid, n.password,
                                  n.title);
                if (rc == ONAIR_E_NOMEM) {
                    retry_later(st, &e, "out of memory");
                } else {
                    st->api->log(st->h, rc == ONAIR_OK ? ONAIR_LOG_INFO : ONAIR_LOG_WARN,
                                 "q%llu (notice, reservation %s) %s %s", (unsigned long long)seq, e.s[S_RID],
                                 rc == ONAIR_OK ? "sent by XMPP to" : "not sendable by XMPP to", e.s[S_TO]);
                    entry_del(st, NULL, seq);
                }
            } else {
                mbuf msg;
                bool bad;
                mail_message(st, &e, subject.data, body.data, &msg, &bad);
                if (bad)
                    fail_permanently(st, &e, "the message could not be made (a bad address?)");
                else
                    start_transfer(st, &e, &msg);
            }
            mbuf_free(&subject);
            mbuf_wipe(&body);
        }
        notice_clear(&n);
    } else if (e.kind == KIND_XMPP) {
        int rc = send_message(st, e.s[S_TO], e.s[S_MSGID], e.s[S_SUBJECT], e.s[S_BODY], NULL, NULL, NULL);
        if (rc == ONAIR_E_NOMEM) {
            retry_later(st, &e, "out of memory");
        } else {
            st->api->log(st->h, rc == ONAIR_OK ? ONAIR_LOG_INFO : ONAIR_LOG_WARN, "q%llu (%s) %s %s",
                         (unsigned long long)seq, purpose_name(e.purpose),
                         rc == ONAIR_OK ? "sent by XMPP to" : "not sendable by XMPP to", e.s[S_TO]);
            entry_del(st, NULL, seq);
        }
    } else {
        mbuf msg;
        bool bad;
        mail_message(st, &e, e.s[S_SUBJECT], e.s[S_BODY], &msg, &bad);
        if (bad)
            fail_permanently(st, &e, "the message could not be made (a bad address?)");
        else
            start_transfer(st, &e, &msg);
    }
    entry_clear(&e);
}

typedef struct due {
    uint64_t seq;
    int64_t next_ms;
    bool mail;
} due;

typedef struct scan {
    emailer *st;
    due *items;
    size_t n, cap;
    bool failed;
} scan;

static bool in_flight(const emailer *st, uint64_t seq)
{
    for (const xfer *x = st->xfers; x; x = x->next)
        if (x->seq == seq)
            return true;
    return false;
}

static int scan_cb(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    scan *sc = ud;
    entry e = {0};
    if (klen != 9)
        return 0;
    uint64_t seq = get_u64((const unsigned char *)key + 1);
    if (in_flight(sc->st, seq))
        return 0;
    if (!header_decode(val, vlen, &e)) {
        /* damaged: due now, process() removes it */
        e.next_ms = 0;
        e.kind = 0;
    }
    if (sc->n == sc->cap) {
        size_t cap = sc->cap ? 2 * sc->cap : 64;
        due *d = realloc(sc->items, cap * sizeof *d);
        if (!d) {
            sc->failed = true;
            return 1;
        }
        sc->items = d;
        sc->cap = cap;
    }
    sc->items[sc->n++] = (due){seq, e.next_ms, e.kind == KIND_MAIL || e.kind == KIND_NOTICE_MAIL};
    return 0;
}

static void on_wake(void *ud, uint64_t id);

/* Sends what is due (mails up to max_parallel at once), then sets the
 * timer for the next due entry. */
static void run_outbox(emailer *st)
{
    st->running = true;
    st->rerun = false;
    scan sc = {.st = st};
    int rc = st->api->store_iter(st->h, NULL, "q", 1, scan_cb, &sc);
    int64_t now = now_ms(), next = INT64_MAX;
    unsigned max = (unsigned)cfg_i(st, "max_parallel");
    for (size_t i = 0; i < sc.n; i++) {
        due *d = &sc.items[i];
        if (d->next_ms > now) {
            if (d->next_ms < next)
                next = d->next_ms;
        } else if (!d->mail || st->nxfers < max) {
            process(st, d->seq);
        }
        /* else: a due mail waits for a free slot; the end of a transfer runs the outbox again */
    }
    free(sc.items);
    if (rc < 0 || sc.failed) {
        st->api->log(st->h, ONAIR_LOG_ERROR, "the outbox could not be read (%d): trying again in 10 s", rc);
        next = now + 10000;
    }
    if (st->wake_timer) {
        st->api->timer_stop(st->h, st->wake_timer);
        st->wake_timer = 0;
    }
    if (st->rerun)
        next = now; /* reports queued while processing */
    st->running = false;
    if (next != INT64_MAX)
        st->wake_timer = st->api->timer_start(st->h, (uint64_t)(next > now ? next - now : 0), 0, on_wake, st);
}

static void on_wake(void *ud, uint64_t id)
{
    emailer *st = ud;
    if (st->wake_timer == id)
        st->wake_timer = 0;
    run_outbox(st);
}

/* Runs the outbox soon (from the loop, never inside the caller). */
static void kick(emailer *st)
{
    if (st->running) {
        st->rerun = true;
        return;
    }
    if (st->wake_timer)
        st->api->timer_stop(st->h, st->wake_timer);
    st->wake_timer = st->api->timer_start(st->h, 0, 0, on_wake, st);
}

/* ---- events ---- */

static int on_booked(void *ud, onair_event event, const void *payload)
{
    (void)event;
    emailer *st = ud;
    const onair_reservation_event *r = payload;
    if (!*r->email) {
        st->api->log(st->h, ONAIR_LOG_INFO, "reservation %s booked by %s: the account has no e-mail address, "
                                            "no booking mail", r->id, r->owner);
        return ONAIR_HOOK_CONTINUE;
    }
    if (!mime_address_ok(r->email)) {
        st->api->log(st->h, ONAIR_LOG_WARN, "reservation %s booked by %s: the account's e-mail address is not one "
                                            "we send to, no booking mail", r->id, r->owner);
        return ONAIR_HOOK_CONTINUE;
    }
    mbuf subject = {0}, body = {0};
    booking_text(r, &subject, &body);
    entry e;
    if (!subject.failed && !body.failed &&
        entry_make(&e, KIND_MAIL, PURPOSE_BOOKING, r->email, r->owner, r->id, subject.data, body.data)) {
        if (enqueue(st, &e, 1, 0) == ONAIR_OK)
            st->api->log(st->h, ONAIR_LOG_INFO, "reservation %s booked: booking mail queued for %s", r->id,
                         r->email);
    } else {
        st->api->log(st->h, ONAIR_LOG_ERROR, "reservation %s: out of memory, no booking mail", r->id);
    }
    mbuf_free(&subject);
    mbuf_free(&body);
    return ONAIR_HOOK_CONTINUE;
}

static bool same_domain(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

static int on_reconfirmed(void *ud, onair_event event, const void *payload)
{
    (void)event;
    emailer *st = ud;
    const onair_reservation_event *r = payload;
    entry items[64];
    size_t n = 0, mails = 0, xmpps = 0, skipped = 0;
    const char *p = r->friends;
    while (*p && n < sizeof items / sizeof items[0]) {
        size_t len = strcspn(p, "\n");
        char addr[400];
        const char *a = p;
        size_t alen = len;
        while (alen > 0 && (a[alen - 1] == '\r' || a[alen - 1] == ' '))
            alen--;
        p += len + (p[len] == '\n');
        if (alen == 0)
            continue;
        if (alen >= sizeof addr) {
            skipped++;
            continue;
        }
        memcpy(addr, a, alen);
        addr[alen] = '\0';
        /* xmpp:user@host, or an address of this server's domain: XMPP;
         * anything else: e-mail. */
        bool xmpp = strncmp(addr, "xmpp:", 5) == 0;
        const char *to = xmpp ? addr + 5 : addr;
        const char *at = strrchr(to, '@');
        if (!xmpp && at && same_domain(at + 1, st->api->server_domain(st->h)))
            xmpp = true;
        if (!xmpp && !mime_address_ok(to)) {
            st->api->log(st->h, ONAIR_LOG_WARN, "reservation %s: friend \"%s\" is not an address we send to: skipped",
                         r->id, to);
            skipped++;
            continue;
        }
        if (!entry_make(&items[n], xmpp ? KIND_NOTICE_XMPP : KIND_NOTICE_MAIL, PURPOSE_NOTICE, to, r->owner, r->id,
                        "", "")) {
            skipped++;
            continue;
        }
        n++;
        if (xmpp)
            xmpps++;
        else
            mails++;
    }
    if (n > 0 && enqueue(st, items, n, 0) == ONAIR_OK)
        st->api->log(st->h, ONAIR_LOG_INFO, "reservation %s reconfirmed: %zu notice%s queued (%zu by mail, %zu by XMPP)",
                     r->id, n, n == 1 ? "" : "s", mails, xmpps);
    if (skipped)
        st->api->log(st->h, ONAIR_LOG_WARN, "reservation %s: %zu friend%s skipped", r->id, skipped,
                     skipped == 1 ? "" : "s");
    return ONAIR_HOOK_CONTINUE;
}

/* ---- the service "mail" ---- */

static int svc_send(void *ud, const onair_mail *m)
{
    emailer *st = ud;
    if (!m || !m->subject || !m->body || (!m->to && !m->to_account) ||
        (m->attachment_name && !mime_filename_ok(m->attachment_name)) ||
        (m->reservation_id && *m->reservation_id && !valid_rid(m->reservation_id)))
        return ONAIR_E_INVALID;
    char addr[MIME_ADDRESS_MAX + 2];
    if (m->to) {
        if (!mime_address_ok(m->to))
            return ONAIR_E_INVALID;
        snprintf(addr, sizeof addr, "%s", m->to);
    } else {
        long n = st->api->account_email(st->h, m->to_account, addr, sizeof addr);
        if (n <= 0)
            return ONAIR_E_NOTFOUND;
        if ((size_t)n > MIME_ADDRESS_MAX || !mime_address_ok(addr))
            return ONAIR_E_INVALID;
    }
    size_t total = strlen(m->subject) + strlen(m->body) + (m->attachment ? strlen(m->attachment) : 0);
    if (total > MAX_TEXT_BYTES)
        return ONAIR_E_LIMIT;
    entry e;
    if (!entry_make(&e, KIND_MAIL, PURPOSE_SERVICE, addr, m->to_account ? m->to_account : "",
                    m->reservation_id ? m->reservation_id : "", m->subject, m->body))
        return ONAIR_E_NOMEM;
    if (m->attachment_name) {
        free(e.s[S_ATT_NAME]);
        free(e.s[S_ATT]);
        e.s[S_ATT_NAME] = dup(m->attachment_name);
        e.s[S_ATT] = dup(m->attachment ? m->attachment : "");
        if (!e.s[S_ATT_NAME] || !e.s[S_ATT]) {
            entry_clear(&e);
            return ONAIR_E_NOMEM;
        }
    }
    int rc = enqueue(st, &e, 1, 0);
    if (rc == ONAIR_OK)
        st->api->log(st->h, ONAIR_LOG_INFO, "a mail for %s queued by another plugin", addr);
    return rc == ONAIR_OK ? ONAIR_OK : ONAIR_E_STORE;
}

/* ---- life cycle ---- */

static void shutdown_plugin(void *state)
{
    emailer *st = state;
    /* Mails on their way stay in the outbox: they are sent again after
     * the next start.  Their transfers end at curl's next progress call;
     * each frees itself when its done callback comes (see xfer_done). */
    for (xfer *x = st->xfers; x; x = x->next) {
        atomic_store(&x->abort, true);
        x->st = NULL;
    }
    st->xfers = NULL;
    life_release(st->life);
    free(st);
}

static int init(onair_host *h, const onair_host_api *api, void **state)
{
    if (!ONAIR_HOST_HAS(api, reservation_read) || !ONAIR_HOST_HAS(api, account_email) ||
        !ONAIR_HOST_HAS(api, service_provide)) {
        api->log(h, ONAIR_LOG_ERROR, "this server's plugin API is too old (ABI 1.%d; 1.1 needed)", api->abi_minor);
        return -1;
    }
    emailer *st = calloc(1, sizeof *st);
    if (!st)
        return -1;
    st->h = h;
    st->api = api;
    if (check_settings(st) != 0) {
        free(st);
        return -2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        api->log(h, ONAIR_LOG_ERROR, "libcurl could not be initialised");
        free(st);
        return -3;
    }
    st->life = calloc(1, sizeof *st->life);
    if (!st->life) {
        curl_global_cleanup();
        free(st);
        return -3;
    }
    st->life->refs = 1;
    st->service = (onair_mail_service){.size = sizeof st->service, .send = svc_send};
    int rc = api->hook(h, ONAIR_EVENT_RESERVATION_BOOKED, 0, on_booked, st);
    if (rc == ONAIR_OK)
        rc = api->hook(h, ONAIR_EVENT_RESERVATION_RECONFIRMED, 0, on_reconfirmed, st);
    if (rc == ONAIR_OK)
        rc = api->service_provide(h, ONAIR_SERVICE_MAIL, &st->service, st);
    if (rc != ONAIR_OK) {
        api->log(h, ONAIR_LOG_ERROR, "cannot register (%d)", rc);
        shutdown_plugin(st);
        return -4;
    }
    api->log(h, ONAIR_LOG_INFO, "ready: mail through %s:%lld (starttls %s%s)", cfg_s(st, "smtp_host"),
             (long long)cfg_i(st, "smtp_port"), cfg_s(st, "starttls"), *cfg_s(st, "username") ? ", AUTH" : "");
    kick(st); /* what an earlier run left in the outbox */
    *state = st;
    return 0;
}

static int reload(void *state)
{
    emailer *st = state;
    if (check_settings(st) != 0)
        return -1;
    st->api->log(st->h, ONAIR_LOG_INFO, "reloaded: mail through %s:%lld (starttls %s)", cfg_s(st, "smtp_host"),
                 (long long)cfg_i(st, "smtp_port"), cfg_s(st, "starttls"));
    kick(st);
    return 0;
}

static const onair_plugin_info info = {
    .abi = ONAIR_PLUGIN_ABI,
    .name = NAME,
    .version = "1.0",
    .description = "mails and XMPP notices of reservations, through a durable outbox",
    .config = config_keys,
    .init = init,
    .shutdown = shutdown_plugin,
    .reload = reload,
};

ONAIR_PLUGIN_EXPORT const onair_plugin_info *onair_plugin_entry(void)
{
    return &info;
}
