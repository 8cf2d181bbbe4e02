/* muc.c - onair-bench: the chat room modes (XEP-0045 multi-user chat).
 *
 *   muc-join    N clients log in during the setup (not measured).  Occupant
 *               0, the opener (in generator 0), joins the room in the setup
 *               too, so that the room exists before the measurement: a
 *               server that creates rooms on the first join makes it then,
 *               and one that locks new rooms gets the instant-room form.
 *               Measured: the other N-1 send their join presences (all at
 *               once, or --join-conc in flight) until each has received its
 *               self-presence (status 110).  Reported: seat time, joins/s,
 *               per-join latency, presence stanzas each client received
 *               (which shows the server's presence mode) and the server's
 *               RSS per seated occupant.
 *   muc-fanout  N occupants join in the setup (the opener first); S of them
 *               send groupchat messages, closed loop (--window in flight per
 *               sender, the next one sent when the sender's own echo comes
 *               back) or paced (--rate total msgs/s); every occupant counts
 *               and times what it receives.  Reported: deliveries/s (all
 *               occupants together), latency, losses.  With --sample K only
 *               K occupants spread over the room (and the senders) read and
 *               time messages as they arrive; the others stop reading during
 *               the window (what the server sends them waits in their
 *               sockets' receive buffers) and are read and counted in the
 *               drain.  On one machine the tool has to read every delivery
 *               on its one core, and for a large room that costs more than
 *               the server's write: with every occupant timing, the last
 *               ones of a message would be timed late by the tool's own
 *               reading.
 *
 * Occupants are numbered 0..N-1 over all generators (this generator has
 * [o->muc_first, o->muc_first + o->count)); occupant i is the account
 * <prefix><offset+1+i> with the nick <nick><i>.  A message body is
 * "<send time> <sequence> <sender index>": the send time is uv_hrtime()
 * (CLOCK_MONOTONIC, one clock for every process on the machine), so a
 * receiver in any generator can time it, and the sender index lets a sender
 * recognise its own echo.  Every wait is bounded: the setup by
 * --setup-timeout, seating by --duration, sending by --duration, the drain
 * by DRAIN_S.
 */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define NS_MUC "http://jabber.org/protocol/muc"
#define DRAIN_S 3.0          /* bound of the drain after sending stops */
#define TAIL_MS 500          /* after the last own echo, for other receivers */
#define NO_SENDER_TAIL_MS 1000
#define PACED_WINDOW 1000    /* default in-flight bound per sender, paced */

enum { OS_NONE, OS_UP, OS_JOINING, OS_CONFIG, OS_SEATED, OS_FAILED, OS_GONE };

typedef struct occupant {
    conn *c;          /* NULL until logged in and after closing */
    uint64_t t_join;  /* when its join was sent */
    uint64_t sent, echoed;
    unsigned long presences; /* from the room during the measured phase */
    unsigned char st;        /* OS_* */
    bool timed;              /* muc-join: joins in the measured phase */
    bool sender;
    bool probe;              /* muc-fanout: reads and times during the window */
} occupant;

struct muc_state {
    occupant *occ;
    unsigned long n;       /* occupants of this generator */
    unsigned long first;   /* global index of occ[0] */
    char room_esc[1600];   /* room JID escaped for an attribute */
    char nick_esc[400];
    char join_x[1400];     /* the <x/> of a join presence */
    size_t room_len;       /* of the raw room JID */
    unsigned long *senders;
    unsigned long nsenders, rr;
    unsigned window;
    unsigned long timed_total, timed_done, next_join, joining;
    bool seat_open, seat_over, draining, released, paused;
    uint64_t t_first, t_last;
};

static void inc(bench *b, int field)
{
    b->res.v[field] += 1;
}

unsigned long muc_senders_between(unsigned long n, unsigned long s, unsigned long lo, unsigned long hi)
{
    if (s == 0 || n == 0)
        return 0;
    if (s > n)
        s = n;
    unsigned long stride = n / s, cnt = 0;
    for (unsigned long k = 0; k < s; k++)
        if (k * stride >= lo && k * stride < hi)
            cnt++;
    return cnt;
}

static bool is_sender(unsigned long n, unsigned long s, unsigned long g)
{
    if (s == 0 || n == 0)
        return false;
    if (s > n)
        s = n;
    unsigned long stride = n / s;
    return g % stride == 0 && g / stride < s;
}

int muc_init(bench *b)
{
    const bench_opts *o = b->o;
    struct muc_state *m = calloc(1, sizeof *m);
    if (!m)
        return -1;
    b->muc = m;
    m->n = o->count;
    m->first = o->muc_first;
    m->occ = calloc(m->n ? m->n : 1, sizeof *m->occ);
    m->senders = calloc(m->n ? m->n : 1, sizeof *m->senders);
    if (!m->occ || !m->senders)
        return -1;
    m->room_len = strlen(o->room);
    xml_escape(m->room_esc, sizeof m->room_esc, o->room);
    xml_escape(m->nick_esc, sizeof m->nick_esc, o->nick);
    size_t n = (size_t)snprintf(m->join_x, sizeof m->join_x, "<x xmlns='" NS_MUC "'>");
    if (o->history >= 0)
        n += (size_t)snprintf(m->join_x + n, sizeof m->join_x - n, "<history maxstanzas='%d'/>", o->history);
    if (o->room_password) {
        char pw[1300];
        xml_escape(pw, sizeof pw, o->room_password);
        n += (size_t)snprintf(m->join_x + n, sizeof m->join_x - n, "<password>%s</password>", pw);
    }
    if (n < sizeof m->join_x)
        snprintf(m->join_x + n, sizeof m->join_x - n, "</x>");
    if (o->mode == MODE_MUC_FANOUT) {
        m->window = o->window_set ? o->window : o->rate > 0 ? PACED_WINDOW : 1;
        for (unsigned long i = 0; i < m->n; i++)
            m->occ[i].sender = is_sender(o->muc_total, o->senders, m->first + i);
    }
    return 0;
}

void muc_free(bench *b)
{
    if (!b->muc)
        return;
    free(b->muc->occ);
    free(b->muc->senders);
    free(b->muc);
    b->muc = NULL;
}

static occupant *occ_of(conn *c)
{
    struct muc_state *m = c->b->muc;
    if (!m || c->idx >= m->n || m->occ[c->idx].c != c)
        return NULL;
    return &m->occ[c->idx];
}

static unsigned long gidx(bench *b, const occupant *o)
{
    return b->muc->first + (unsigned long)(o - b->muc->occ);
}

static bool has_opener(const struct muc_state *m)
{
    return m->first == 0 && m->n > 0;
}

/* The opener has joined, failed or gone. */
static bool opener_settled(const struct muc_state *m)
{
    if (!has_opener(m))
        return true;
    unsigned char st = m->occ[0].st;
    return st == OS_SEATED || st == OS_FAILED || st == OS_GONE;
}

/* Fanout occupants join in the setup once the opener is in (at once in
 * generators without the opener). */
static bool may_join(const struct muc_state *m)
{
    return !has_opener(m) || m->occ[0].st == OS_SEATED;
}

static void send_join(bench *b, occupant *o)
{
    struct muc_state *m = b->muc;
    o->st = OS_JOINING;
    o->t_join = uv_hrtime();
    conn_sendf(o->c, "<presence to='%s/%s%lu'>%s</presence>", m->room_esc, m->nick_esc, gidx(b, o), m->join_x);
}

/* Setup joins of fanout occupants that waited for the opener. */
static void release_waiting(bench *b)
{
    struct muc_state *m = b->muc;
    if (b->o->mode != MODE_MUC_FANOUT || !may_join(m) || b->stop_sending || m->released)
        return;
    m->released = true; /* once: the later ones join as they log in */
    for (unsigned long i = 0; i < m->n; i++)
        if (m->occ[i].st == OS_UP && m->occ[i].c)
            send_join(b, &m->occ[i]);
}

/* ---- muc-join: the measured seating ---------------------------------------------- */

static void on_seat_settled(uv_timer_t *t)
{
    bench *b = t->data;
    if (b->o->server_pid > 0)
        b->res.v[RF_rss_after_kib] = (double)read_vmrss_kib(b->o->server_pid);
    bench_measured_done(b);
}

/* Every timed join answered, or --duration over: the end of the measured
 * window.  Alone, the server's RSS is read --settle seconds later; forked,
 * the parent reads it once every generator has said SEATED and then ends
 * them (any line but GO on the control pipe). */
static void seat_done(bench *b)
{
    struct muc_state *m = b->muc;
    if (m->seat_over || b->phase != PH_RUN)
        return;
    m->seat_over = true;
    m->seat_open = false;
    uv_timer_stop(&b->phase_timer);
    b->res.v[RF_unseated] = (double)(m->timed_total - m->timed_done);
    b->res.v[RF_t_first_ns] = (double)m->t_first;
    b->res.v[RF_t_last_ns] = (double)m->t_last;
    bench_mark_end(b);
    if (b->ctl_fd >= 0) {
        static const char seated[] = "SEATED\n";
        if (write(b->res_fd, seated, sizeof seated - 1) != (ssize_t)(sizeof seated - 1))
            bench_measured_done(b);
        return;
    }
    uv_timer_start(&b->phase_timer, on_seat_settled, (uint64_t)(b->o->settle * 1000), 0);
}

static void launch_joins(bench *b)
{
    struct muc_state *m = b->muc;
    unsigned long conc = b->o->join_conc ? b->o->join_conc : m->n;
    /* Bounded by the occupants of this generator. */
    while (m->seat_open && m->joining < conc && m->next_join < m->n) {
        occupant *o = &m->occ[m->next_join++];
        if (!o->timed)
            continue;
        if (!o->c) { /* gone since the setup */
            m->timed_done++;
            inc(b, RF_failed);
            continue;
        }
        if (m->t_first == 0)
            m->t_first = uv_hrtime();
        m->joining++;
        inc(b, RF_attempted);
        send_join(b, o);
    }
    if (m->seat_open && m->timed_done >= m->timed_total)
        seat_done(b);
}

static void on_seat_cap(uv_timer_t *t)
{
    bench *b = t->data;
    result_note_error(&b->res, "seating not finished within --duration");
    seat_done(b);
}

/* ---- muc-fanout: sending ------------------------------------------------------------ */

static void fan_send(bench *b, occupant *o)
{
    char buf[1700 + 16400];
    struct muc_state *m = b->muc;
    int hn = snprintf(buf, 1700, "<message to='%s' type='groupchat' id='g%llu'><body>", m->room_esc,
                      (unsigned long long)o->sent);
    if (hn < 0 || hn >= 1700)
        return;
    size_t len = (size_t)hn;
    int bn = snprintf(buf + len, 96, "%llu %llu %lu", (unsigned long long)uv_hrtime(), (unsigned long long)o->sent,
                      gidx(b, o));
    if (bn < 0 || bn >= 96)
        return;
    len += (size_t)bn;
    if ((size_t)bn < b->o->body_size) {
        size_t pad = b->o->body_size - (size_t)bn;
        buf[len++] = ' ';
        memset(buf + len, 'x', pad - 1);
        len += pad - 1;
    }
    static const char tail[] = "</body></message>";
    memcpy(buf + len, tail, sizeof tail - 1);
    len += sizeof tail - 1;
    o->sent++;
    inc(b, RF_sent);
    conn_send(o->c, buf, len);
}

static uint64_t fan_inflight(bench *b)
{
    struct muc_state *m = b->muc;
    uint64_t n = 0;
    for (unsigned long k = 0; k < m->nsenders; k++) {
        occupant *o = &m->occ[m->senders[k]];
        if (o->c && o->sent > o->echoed)
            n += o->sent - o->echoed;
    }
    return n;
}

static void on_fan_pace(uv_timer_t *t)
{
    bench *b = t->data;
    struct muc_state *m = b->muc;
    if (b->phase != PH_RUN || b->stop_sending || m->nsenders == 0)
        return;
    /* Message k is due at k / rate (the first at once): ceil(rate x
     * duration) in all, which matters at the low rates of latency runs. */
    double el = (double)(uv_hrtime() - b->t_go) / 1e9;
    double due_total = floor(b->o->rate * el) + 1, cap = ceil(b->o->rate * b->o->duration);
    if (due_total > cap)
        due_total = cap;
    double sent = b->res.v[RF_sent];
    if (due_total <= sent)
        return;
    uint64_t due = (uint64_t)(due_total - sent);
    unsigned long idle_scans = 0;
    /* Bounded: each step sends (due shrinks) or scans one more sender. */
    while (due > 0 && idle_scans < m->nsenders) {
        occupant *o = &m->occ[m->senders[m->rr]];
        m->rr = (m->rr + 1) % m->nsenders;
        if (o->c && o->sent - o->echoed < m->window) {
            fan_send(b, o);
            due--;
            idle_scans = 0;
        } else {
            idle_scans++;
        }
    }
}

static void on_drain_over(uv_timer_t *t)
{
    bench_measured_done(t->data);
}

static void drain_check(bench *b)
{
    struct muc_state *m = b->muc;
    if (b->phase != PH_DRAIN || m->draining || fan_inflight(b) != 0)
        return;
    m->draining = true; /* the own echoes are in: a short tail for the rest */
    uv_timer_start(&b->phase_timer, on_drain_over, m->nsenders && !m->paused ? TAIL_MS : NO_SENDER_TAIL_MS, 0);
}

static void on_fan_stop(uv_timer_t *t)
{
    bench *b = t->data;
    if (b->phase != PH_RUN)
        return;
    b->stop_sending = true;
    uv_timer_stop(&b->pace);
    bench_mark_end(b);
    if (b->o->rate > 0 && b->o->senders > 0) {
        double mine = ceil(b->o->rate * b->o->duration), behind = mine - b->res.v[RF_sent];
        b->res.v[RF_behind] = behind > 0 ? behind : 0;
    }
    b->phase = PH_DRAIN;
    struct muc_state *m = b->muc;
    if (m->paused)
        for (unsigned long i = 0; i < m->n; i++)
            if (m->occ[i].c)
                conn_read_resume(m->occ[i].c);
    uv_timer_start(&b->phase_timer, on_drain_over, (uint64_t)(DRAIN_S * 1000), 0);
    drain_check(b);
}

/* ---- phases ---------------------------------------------------------------------------- */

/* --sample K: whether global occupant g times on arrival.  The K are split
 * between the transports in proportion to their occupants (at least one
 * each when both are there and K >= 2) and spread evenly over each
 * transport's occupants, so that a mixed room is timed on both. */
static bool is_probe(const bench_opts *o, unsigned long g)
{
    unsigned long total = o->muc_total, k = o->sample;
    if (k == 0 || k >= total)
        return true;
    unsigned long w = o->ws_path ? o->ws_count : 0, t = total - w;
    unsigned long k_ws = 0;
    if (w > 0) {
        k_ws = (unsigned long)llround((double)k * (double)w / (double)total);
        if (k_ws < 1)
            k_ws = 1;
        if (t > 0 && k_ws > k - 1)
            k_ws = k - 1;
        if (k_ws > w)
            k_ws = w;
    }
    unsigned long k_tcp = k - k_ws;
    if (k_tcp > t)
        k_tcp = t;
    bool ws = bench_unit_is_ws(o, g);
    unsigned long mine = ws ? k_ws : k_tcp, of = ws ? w : t;
    if (mine == 0)
        return false;
    unsigned long stride = of / mine, rank = bench_unit_rank(o, g);
    return rank % stride == 0 && rank / stride < mine;
}

bool muc_setup_pending(bench *b)
{
    struct muc_state *m = b->muc;
    if (!m || b->stop_sending)
        return false;
    for (unsigned long i = 0; i < m->n; i++) {
        unsigned char st = m->occ[i].st;
        if (st == OS_JOINING || st == OS_CONFIG)
            return true;
        if (b->o->mode == MODE_MUC_FANOUT && st == OS_UP && !opener_settled(m))
            return true; /* waits for the opener */
    }
    return false;
}

int muc_setup_finish(bench *b)
{
    struct muc_state *m = b->muc;
    unsigned long seated = 0, up = 0;
    for (unsigned long i = 0; i < m->n; i++) {
        occupant *o = &m->occ[i];
        if (!o->c)
            continue;
        up++;
        if (o->st == OS_SEATED)
            seated++;
        if (b->o->mode == MODE_MUC_JOIN && o->st == OS_UP && gidx(b, o) != 0) {
            o->timed = true;
            m->timed_total++;
        }
        if (b->o->mode == MODE_MUC_FANOUT && o->st == OS_SEATED && o->sender)
            m->senders[m->nsenders++] = i;
    }
    if (b->o->mode == MODE_MUC_FANOUT) {
        unsigned long probes = 0, probes_ws = 0;
        for (unsigned long i = 0; i < m->n; i++) {
            occupant *o = &m->occ[i];
            if (!o->c || o->st != OS_SEATED)
                continue;
            o->probe = o->sender || is_probe(b->o, gidx(b, o));
            if (o->probe) {
                probes++;
                probes_ws += o->c->ws;
            } else {
                conn_read_pause(o->c);
                m->paused = true;
            }
        }
        b->res.v[RF_probes] = (double)probes;
        b->res.v[RF_probes_ws] = (double)probes_ws;
    }
    for (unsigned long i = 0; i < m->n; i++)
        if (m->occ[i].c && m->occ[i].st == OS_SEATED && m->occ[i].c->ws)
            b->res.v[RF_occupants_ws] += 1;
    b->res.v[RF_occupants] = (double)seated;
    b->res.v[RF_senders] = (double)m->nsenders;
    b->res.v[RF_timed_joins] = (double)m->timed_total;
    if (has_opener(m) && m->occ[0].st != OS_SEATED) {
        if (b->res.first_err[0] == '\0')
            result_note_error(&b->res, "the opener (occupant 0) could not join the room");
        return -1;
    }
    if (b->o->mode == MODE_MUC_FANOUT && seated == 0) {
        result_note_error(&b->res, "no occupant could join the room");
        return -1;
    }
    if (b->o->mode == MODE_MUC_JOIN && up == 0) {
        result_note_error(&b->res, "no client could log in");
        return -1;
    }
    return 0;
}

void muc_go(bench *b)
{
    struct muc_state *m = b->muc;
    if (b->o->mode == MODE_MUC_JOIN) {
        if (b->o->server_pid > 0 && b->ctl_fd < 0)
            b->res.v[RF_rss_before_kib] = (double)read_vmrss_kib(b->o->server_pid);
        for (unsigned long i = 0; i < m->n; i++)
            m->occ[i].presences = 0;
        m->seat_open = true;
        uv_timer_start(&b->phase_timer, on_seat_cap, (uint64_t)(b->o->duration * 1000), 0);
        launch_joins(b);
        return;
    }
    uv_timer_start(&b->phase_timer, on_fan_stop, (uint64_t)(b->o->duration * 1000), 0);
    if (b->o->rate > 0) {
        uv_timer_start(&b->pace, on_fan_pace, 1, 1);
        return;
    }
    for (unsigned long k = 0; k < m->nsenders; k++) {
        occupant *o = &m->occ[m->senders[k]];
        for (unsigned w = 0; o->c && w < m->window; w++)
            fan_send(b, o);
    }
}

/* ---- callbacks from modes.c ------------------------------------------------------------- */

void muc_conn_ready(conn *c)
{
    bench *b = c->b;
    struct muc_state *m = b->muc;
    if (c->idx >= m->n)
        return;
    occupant *o = &m->occ[c->idx];
    o->c = c;
    o->st = OS_UP;
    inc(b, RF_setup_ok);
    if (b->phase != PH_SETUP || b->stop_sending)
        return;
    if (gidx(b, o) == 0 || (b->o->mode == MODE_MUC_FANOUT && may_join(m)))
        send_join(b, o);
}

static void joined(bench *b, occupant *o, uint64_t now)
{
    struct muc_state *m = b->muc;
    o->st = OS_SEATED;
    if (o->timed) {
        m->joining--;
        if (!m->seat_open)
            return; /* after the cap: not counted */
        m->timed_done++;
        inc(b, RF_ok);
        bench_lat_add(b, o->c, now - o->t_join);
        m->t_last = now;
        launch_joins(b);
        return;
    }
    if (b->phase == PH_SETUP) {
        release_waiting(b);
        bench_check_progress(b);
    }
}

static void join_failed(bench *b, occupant *o, const char *what)
{
    struct muc_state *m = b->muc;
    char msg[200];
    snprintf(msg, sizeof msg, "%s%lu: join %s", b->o->nick, gidx(b, o), what);
    result_note_error(&b->res, msg);
    bool was_joining = o->st == OS_JOINING || o->st == OS_CONFIG;
    o->st = o->c ? OS_FAILED : OS_GONE;
    if (o->timed) {
        if (was_joining)
            m->joining--;
        if (!m->seat_open)
            return;
        m->timed_done++;
        inc(b, RF_failed);
        launch_joins(b);
        return;
    }
    if (b->phase == PH_SETUP)
        release_waiting(b); /* the error is noted; the count is of seated ones */
}

static bool from_room(const struct muc_state *m, const char *from, const char *room)
{
    return strncasecmp(from, room, m->room_len) == 0 && (from[m->room_len] == '/' || from[m->room_len] == '\0');
}

void muc_conn_presence(conn *c)
{
    bench *b = c->b;
    struct muc_state *m = b->muc;
    occupant *o = occ_of(c);
    if (!o || !from_room(m, c->from, b->o->room))
        return;
    if (b->phase == PH_RUN) {
        o->presences++;
        inc(b, RF_presences);
        if ((double)o->presences > b->res.v[RF_presences_max])
            b->res.v[RF_presences_max] = (double)o->presences;
    }
    bool joining = o->st == OS_JOINING;
    if (c->pres_type == PRES_ERROR) {
        if (joining || o->st == OS_CONFIG) {
            char what[120];
            snprintf(what, sizeof what, "refused: %s", c->cond[0] ? c->cond : "error");
            join_failed(b, o, what);
            if (b->phase == PH_SETUP)
                bench_check_progress(b);
        }
        return;
    }
    /* The self-presence: status 110, or (servers without it) our own nick. */
    bool self = (c->muc_status & MUC_STATUS_SELF) != 0;
    if (!self && c->from[m->room_len] == '/') {
        char nick[96];
        snprintf(nick, sizeof nick, "%s%lu", b->o->nick, gidx(b, o));
        self = strcmp(c->from + m->room_len + 1, nick) == 0;
    }
    if (!self)
        return;
    if (c->pres_type == PRES_UNAVAILABLE) {
        if (joining || o->st == OS_CONFIG) {
            join_failed(b, o, "answered with unavailable");
            if (b->phase == PH_SETUP)
                bench_check_progress(b);
        } else if (o->st == OS_SEATED && b->phase < PH_CLOSING) {
            char msg[160];
            snprintf(msg, sizeof msg, "%s%lu: removed from the room", b->o->nick, gidx(b, o));
            result_note_error(&b->res, msg);
            o->st = OS_GONE;
            inc(b, RF_dropped);
        }
        return;
    }
    if (!joining)
        return;
    if (c->muc_status & MUC_STATUS_CREATED) {
        /* This join made the room: accept the default configuration (an
         * instant room, XEP-0045 10.1.2) in case the server locks it. */
        o->st = OS_CONFIG;
        conn_sendf(c,
                   "<iq type='set' to='%s' id='muc-cfg'><query xmlns='" NS_MUC "#owner'>"
                   "<x xmlns='jabber:x:data' type='submit'/></query></iq>",
                   m->room_esc);
        return;
    }
    joined(b, o, uv_hrtime());
}

void muc_conn_iq(conn *c, bool ok, const char *cond)
{
    bench *b = c->b;
    occupant *o = occ_of(c);
    if (!o || o->st != OS_CONFIG || strcmp(c->iq_id, "muc-cfg") != 0)
        return;
    if (!ok) {
        /* Not an owner, or the server takes no form: the room stays as it is. */
        char msg[160];
        snprintf(msg, sizeof msg, "%s%lu: instant-room form refused: %s", b->o->nick, gidx(b, o),
                 cond && cond[0] ? cond : "error");
        result_note_error(&b->res, msg);
    }
    joined(b, o, uv_hrtime());
}

void muc_conn_message(conn *c, const char *body, size_t len)
{
    bench *b = c->b;
    (void)len; /* the body is NUL-terminated */
    if (b->o->mode != MODE_MUC_FANOUT || b->phase < PH_RUN || b->phase > PH_DRAIN)
        return;
    occupant *o = occ_of(c);
    if (!o)
        return;
    char *end;
    unsigned long long ts = strtoull(body, &end, 10);
    if (end == body || *end != ' ')
        return; /* not ours */
    strtoull(end + 1, &end, 10);
    if (*end != ' ')
        return;
    unsigned long sender = strtoul(end + 1, NULL, 10);
    uint64_t now = uv_hrtime();
    inc(b, RF_received);
    if (!o->probe) {
        /* read after the window (--sample): counted, not timed */
        if (b->phase == PH_RUN || ts <= b->t_end)
            inc(b, RF_received_window);
        return;
    }
    bench_lat_add(b, c, now >= ts ? now - ts : 0);
    if (b->phase == PH_RUN)
        inc(b, RF_received_window);
    if (sender != gidx(b, o))
        return;
    o->echoed++; /* our own message came back */
    if (b->phase == PH_RUN && !b->stop_sending && b->o->rate <= 0)
        fan_send(b, o);
    else if (b->phase == PH_DRAIN)
        drain_check(b);
}

void muc_conn_message_error(conn *c, const char *cond)
{
    bench *b = c->b;
    occupant *o = occ_of(c);
    if (!o || b->o->mode != MODE_MUC_FANOUT || b->phase < PH_RUN || b->phase > PH_DRAIN)
        return;
    char msg[160];
    snprintf(msg, sizeof msg, "%s%lu: groupchat message refused: %s", b->o->nick, gidx(b, o),
             cond && cond[0] ? cond : "error");
    result_note_error(&b->res, msg);
    inc(b, RF_msg_errors);
    /* It will not come back: count it as returned so the loop goes on
     * (bounded by --duration). */
    if (o->echoed < o->sent)
        o->echoed++;
    if (b->phase == PH_RUN && !b->stop_sending && b->o->rate <= 0 && o->sender)
        fan_send(b, o);
    else if (b->phase == PH_DRAIN)
        drain_check(b);
}

void muc_conn_closed(conn *c)
{
    bench *b = c->b;
    struct muc_state *m = b->muc;
    occupant *o = occ_of(c);
    if (!m || !o)
        return;
    o->c = NULL;
    if (b->phase >= PH_CLOSING)
        return;
    if (o->st == OS_JOINING || o->st == OS_CONFIG) {
        join_failed(b, o, "interrupted: connection closed");
    } else if (o->st == OS_SEATED) {
        o->st = OS_GONE;
        inc(b, RF_dropped);
    } else {
        o->st = OS_GONE;
    }
    if (b->phase == PH_SETUP && gidx(b, o) == 0)
        release_waiting(b);
    if (b->phase == PH_DRAIN)
        drain_check(b);
}
