/* modes.c - onair-bench: the load modes and the phases of one generator.
 *
 * Every generator process goes through the same phases:
 *   SETUP    connections the measurement needs (idle: all N; msgs: the 2P
 *            clients of the pairs; login: the optional warm-up pass; the
 *            chat room modes: N clients and the joins muc.c makes then)
 *   WAIT_GO  alone: idle reads the server's RSS after --settle seconds;
 *            forked: "READY" to the parent, which measures and answers "GO"
 *   RUN      the measured part (logins, holding, messages, registrations)
 *   DRAIN    msgs, muc-fanout: sending stopped, in-flight messages counted
 *   CLOSING  every connection is closed with </stream:stream>, bounded
 *   END      handles closed; uv_run returns, uv_loop_close must succeed
 * Each phase is bounded by a timer and each connection by --timeout.
 */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#define SWEEP_MS 50
#define DRAIN_S 3.0
#define CLOSE_BOUND_S 5.0

static void setup_done(bench *b);

static double cpu_seconds(const struct rusage *ru)
{
    return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
           (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
}

static void inc(bench *b, int field)
{
    b->res.v[field] += 1;
}

static unsigned long user_for(bench *b, unsigned long i)
{
    unsigned long users = b->o->users ? b->o->users : 1;
    return b->o->user_offset + 1 + i % users;
}

/* ---- launching ------------------------------------------------------------- */

/* Starts connections while fewer than --concurrency are negotiating and the
 * phase's target is not reached.  Bounded by the target. */
static bool more_to_launch(bench *b)
{
    if (b->stop_sending || b->active >= b->o->concurrency)
        return false;
    if (b->o->mode == MODE_REGISTER && b->phase == PH_RUN)
        return b->launched < b->o->count && b->next_reg + b->active < b->o->count;
    return b->launched < b->target;
}

static void launch(bench *b)
{
    bool auth = b->o->mode != MODE_REGISTER && b->o->mode != MODE_PROBE;
    unsigned fails = 0;
    /* A failure to even create a socket (EMFILE...) ends this round after a
     * few tries; the sweep timer calls again 50 ms later. */
    while (fails < 16 && more_to_launch(b)) {
        unsigned long i = b->launched++;
        bool fixed = b->o->mode == MODE_MSGS || IS_MUC(b->o->mode); /* one conn per account */
        unsigned long user = fixed ? b->o->user_offset + 1 + i : user_for(b, i);
        /* The connection's global index decides its transport (--ws-share).
         * msgs numbers the senders first, then the receivers, so that each
         * role has its share of WebSocket connections. */
        unsigned long g = b->o->unit_first + (fixed ? i : i % (b->o->count ? b->o->count : 1));
        if (b->o->mode == MODE_MSGS)
            g = (i % 2) * (b->o->unit_total / 2) + b->o->unit_first / 2 + i / 2;
        bool ws = bench_unit_is_ws(b->o, g);
        conn *c = NULL;
        int r = conn_start(b, user, auth, b->phase, ws, &c);
        if (r < 0) {
            char msg[120];
            snprintf(msg, sizeof msg, "cannot start a connection: %s", uv_strerror(r));
            result_note_error(&b->res, msg);
            inc(b, b->phase == PH_RUN ? RF_failed : RF_setup_failed);
            b->done++;
            fails++;
            continue;
        }
        c->counted = true;
        c->idx = IS_MUC(b->o->mode) ? i : i / 2;
        c->role = IS_MUC(b->o->mode) ? 0 : (int)(i % 2);
        if (b->phase == PH_RUN && b->o->mode != MODE_REGISTER)
            inc(b, RF_attempted);
        b->active++;
    }
}

/* Called whenever a negotiating connection finished (either way). */
void bench_check_progress(bench *b)
{
    launch(b);
    if (b->active > 0)
        return;
    if (b->o->mode == MODE_REGISTER && b->phase == PH_RUN) {
        if (b->next_reg < b->o->count && b->launched < b->o->count && !b->stop_sending)
            return;
    } else if (b->launched < b->target && !b->stop_sending) {
        return;
    }
    if (b->phase == PH_SETUP)
        setup_done(b);
    else if (b->phase == PH_RUN && b->o->mode != MODE_IDLE && b->o->mode != MODE_MSGS &&
             !IS_MUC(b->o->mode))
        bench_measured_done(b);
}

/* ---- msgs --------------------------------------------------------------------- */

static void msg_send(bench *b, pair *p)
{
    char buf[512 + 16384];
    uint64_t seq = p->sent;
    int hn = snprintf(buf, 512, "<message to='%s' type='chat' id='m%llu'><body>", p->to,
                      (unsigned long long)seq);
    if (hn < 0 || hn >= 400)
        return;
    size_t len = (size_t)hn;
    int bn = snprintf(buf + len, 64, "%llu %llu", (unsigned long long)uv_hrtime(), (unsigned long long)seq);
    if (bn < 0 || bn >= 64)
        return;
    len += (size_t)bn;
    if ((size_t)bn < b->o->body_size) {
        size_t pad = b->o->body_size - (size_t)bn; /* " xxx..." */
        buf[len++] = ' ';
        memset(buf + len, 'x', pad - 1);
        len += pad - 1;
    }
    static const char tail[] = "</body></message>";
    memcpy(buf + len, tail, sizeof tail - 1);
    len += sizeof tail - 1;
    p->sent++;
    inc(b, RF_sent);
    conn_send(p->a, buf, len);
}

static void msgs_start_sending(bench *b)
{
    if (b->o->rate > 0)
        return; /* the pace timer does it */
    for (unsigned long i = 0; i < b->npairs; i++) {
        pair *p = &b->pairs[i];
        for (unsigned w = 0; p->live && w < b->o->window; w++)
            msg_send(b, p);
    }
}

static uint64_t inflight(bench *b)
{
    uint64_t n = 0;
    for (unsigned long i = 0; i < b->npairs; i++)
        if (b->pairs[i].live)
            n += b->pairs[i].sent - b->pairs[i].received;
    return n;
}

static void on_pace(uv_timer_t *t)
{
    bench *b = t->data;
    if (b->phase != PH_RUN || b->stop_sending || b->npairs == 0)
        return;
    double el = (double)(uv_hrtime() - b->t_go) / 1e9;
    if (el > b->o->duration)
        el = b->o->duration;
    double due_total = b->o->rate * el;
    double sent = b->res.v[RF_sent];
    if (due_total <= sent)
        return;
    uint64_t due = (uint64_t)(due_total - sent);
    unsigned long idle_scans = 0;
    /* Bounded: each step sends (due shrinks) or scans one more pair. */
    while (due > 0 && idle_scans < b->npairs) {
        pair *p = &b->pairs[b->rr];
        b->rr = (b->rr + 1) % b->npairs;
        if (p->live && p->sent - p->received < b->o->window) {
            msg_send(b, p);
            due--;
            idle_scans = 0;
        } else {
            idle_scans++;
        }
    }
}

static void msgs_stop(bench *b)
{
    if (b->phase != PH_RUN)
        return;
    b->stop_sending = true;
    uv_timer_stop(&b->pace);
    bench_mark_end(b);
    if (b->o->rate > 0) {
        double behind = b->o->rate * b->o->duration - b->res.v[RF_sent];
        b->res.v[RF_behind] = behind > 0 ? behind : 0;
    }
    b->phase = PH_DRAIN;
    if (inflight(b) == 0)
        bench_measured_done(b);
}

/* ---- callbacks from conn.c --------------------------------------------------- */

void bench_lat_add(bench *b, const conn *c, uint64_t ns)
{
    hist_add(&b->res.lat, ns);
    hist_add(c && c->ws ? &b->res.lat_ws : &b->res.lat_tcp, ns);
}

static void close_handles(bench *b);

void mode_conn_ready(conn *c)
{
    bench *b = c->b;
    uint64_t now = uv_hrtime();
    if (b->o->mode == MODE_REGISTER) {
        mode_conn_iq(c, true, NULL); /* asks for the first registration */
        return;
    }
    if (c->counted) {
        c->counted = false;
        b->active--;
        b->done++;
    }
    if (c->ws)
        inc(b, RF_ws_ready);
    switch (b->o->mode) {
    case MODE_LOGIN:
        if (c->phase == PH_RUN) {
            inc(b, RF_ok);
            bench_lat_add(b, c, now - c->t_start);
            b->t_last_ok = now;
        } else {
            inc(b, RF_setup_ok);
        }
        conn_close_graceful(c);
        break;
    case MODE_IDLE:
        inc(b, RF_setup_ok);
        b->up++;
        if (c->phase == PH_SETUP)
            bench_lat_add(b, c, now - c->t_start);
        break;
    case MODE_MSGS: {
        inc(b, RF_setup_ok);
        pair *p = &b->pairs[c->idx];
        if (c->role == 0) {
            p->a = c;
            p->up_a = true;
        } else {
            p->b = c;
            p->up_b = true;
        }
        break;
    }
    case MODE_REGISTER:
        break;
    case MODE_PROBE:
        inc(b, RF_ok);
        bench_lat_add(b, c, now - c->t_start);
        conn_close_graceful(c);
        break;
    case MODE_MUC_JOIN:
    case MODE_MUC_FANOUT:
        muc_conn_ready(c);
        break;
    }
    bench_check_progress(b);
}

void mode_conn_iq(conn *c, bool ok, const char *cond)
{
    bench *b = c->b;
    if (IS_MUC(b->o->mode)) {
        muc_conn_iq(c, ok, cond);
        return;
    }
    if (b->o->mode != MODE_REGISTER)
        return;
    if (cond) { /* the answer to a registration */
        if (ok)
            inc(b, RF_ok);
        else if (strcmp(cond, "conflict") == 0)
            inc(b, RF_exists);
        else {
            char msg[120];
            snprintf(msg, sizeof msg, "%s%lu: registration refused: %s", b->o->prefix, c->user,
                     cond[0] ? cond : "?");
            result_note_error(&b->res, msg);
            inc(b, RF_failed);
        }
        b->done++;
    }
    if (b->next_reg >= b->o->count || b->stop_sending) {
        conn_close_graceful(c);
        if (c->counted) {
            c->counted = false;
            b->active--;
        }
        bench_check_progress(b);
        return;
    }
    unsigned long user = b->o->user_offset + 1 + b->next_reg++;
    c->user = user;
    c->reg_pending = true;
    inc(b, RF_attempted);
    char name[512], pw[1300];
    char raw[160];
    snprintf(raw, sizeof raw, "%s%lu", b->o->prefix, user);
    xml_escape(name, sizeof name, raw);
    xml_escape(pw, sizeof pw, b->o->password);
    conn_sendf(c,
               "<iq type='set' id='r%lu'><query xmlns='jabber:iq:register'><username>%s</username>"
               "<password>%s</password></query></iq>",
               user, name, pw);
    c->deadline = uv_hrtime() + (uint64_t)(b->o->timeout * 1e9);
}

void mode_conn_message_error(conn *c, const char *cond)
{
    if (IS_MUC(c->b->o->mode))
        muc_conn_message_error(c, cond);
}

void mode_conn_presence(conn *c)
{
    if (IS_MUC(c->b->o->mode))
        muc_conn_presence(c);
}

void mode_conn_message(conn *c, const char *body, size_t len)
{
    bench *b = c->b;
    if (IS_MUC(b->o->mode)) {
        muc_conn_message(c, body, len);
        return;
    }
    if (b->o->mode != MODE_MSGS || c->role != 1 || c->idx >= b->npairs)
        return;
    pair *p = &b->pairs[c->idx];
    char *end;
    unsigned long long ts = strtoull(body, &end, 10);
    if (end == body || *end != ' ')
        return; /* not ours */
    unsigned long long seq = strtoull(end + 1, NULL, 10);
    uint64_t now = uv_hrtime();
    bench_lat_add(b, c, now >= ts ? now - ts : 0);
    inc(b, RF_received);
    if (b->phase == PH_RUN)
        inc(b, RF_received_window);
    p->received++;
    if (seq != p->expect)
        inc(b, RF_out_of_order);
    p->expect = seq + 1;
    if (b->phase == PH_RUN && !b->stop_sending && b->o->rate <= 0 && p->live)
        msg_send(b, p);
    else if (b->phase == PH_DRAIN && inflight(b) == 0)
        bench_measured_done(b);
}

void mode_conn_closed(conn *c)
{
    bench *b = c->b;
    if (IS_MUC(b->o->mode)) {
        muc_conn_closed(c);
    } else if (b->o->mode == MODE_MSGS && c->idx < b->npairs) {
        pair *p = &b->pairs[c->idx];
        if (p->a == c)
            p->a = NULL;
        if (p->b == c)
            p->b = NULL;
        if (p->live && b->phase < PH_CLOSING) {
            p->live = false;
            inc(b, RF_dropped);
        }
    } else if (c->was_ready && !c->counted && b->phase < PH_CLOSING && b->o->mode == MODE_IDLE) {
        inc(b, RF_dropped);
    }
    if (c->counted) {
        c->counted = false;
        b->active--;
        if (c->timed_out)
            inc(b, RF_timeouts);
        if (b->o->mode == MODE_REGISTER) {
            inc(b, c->reg_pending ? RF_failed : RF_dropped);
        } else {
            b->done++;
            inc(b, c->phase == PH_RUN ? RF_failed : RF_setup_failed);
        }
    }
    if (b->phase == PH_CLOSING) {
        if (b->nconns == 0)
            close_handles(b);
    } else if (b->phase != PH_END) {
        bench_check_progress(b);
    }
}

/* ---- phases --------------------------------------------------------------------- */

static void close_handles(bench *b)
{
    b->phase = PH_END;
    if (b->handles_closed)
        return;
    b->handles_closed = true;
    uv_close((uv_handle_t *)&b->check, NULL);
    uv_close((uv_handle_t *)&b->sweep, NULL);
    uv_close((uv_handle_t *)&b->pace, NULL);
    uv_close((uv_handle_t *)&b->phase_timer, NULL);
    uv_close((uv_handle_t *)&b->sigint, NULL);
    uv_close((uv_handle_t *)&b->sigterm, NULL);
    if (b->ctl_open)
        uv_close((uv_handle_t *)&b->ctl, NULL);
    b->ctl_open = false;
}

static void on_close_bound(uv_timer_t *t)
{
    bench *b = t->data;
    unsigned long n = 0;
    for (conn *c = b->conns; c && n <= b->nconns; c = c->next, n++)
        conn_kill(c);
}

/* The end of the measured window: wall time, the tool's and the server's
 * CPU.  msgs calls it when sending stops (before the drain). */
void bench_mark_end(bench *b)
{
    if (b->t_end != 0)
        return;
    b->t_end = uv_hrtime();
    /* login: up to the last completed login, so that a straggler running
     * into --timeout after the --duration cap does not stretch the run */
    uint64_t end = b->o->mode == MODE_LOGIN && b->t_last_ok > b->t_go ? b->t_last_ok : b->t_end;
    b->res.v[RF_elapsed_s] = ns_to_s(end - b->t_go);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    b->res.v[RF_cpu_s] = cpu_seconds(&ru) - cpu_seconds(&b->ru_go);
    if (b->srv_ticks_go >= 0 && b->o->server_pid > 0) {
        long t = read_cpu_ticks(b->o->server_pid);
        if (t >= b->srv_ticks_go)
            b->res.v[RF_server_cpu_s] = ticks_to_s(t - b->srv_ticks_go);
    }
    long m = read_machine_busy_ticks();
    if (b->machine_ticks_go >= 0 && m >= b->machine_ticks_go)
        b->res.v[RF_machine_busy_s] = ticks_to_s(m - b->machine_ticks_go);
}

void bench_measured_done(bench *b)
{
    if (b->phase >= PH_CLOSING)
        return;
    if (b->phase == PH_RUN || b->phase == PH_DRAIN)
        bench_mark_end(b);
    b->phase = PH_CLOSING;
    b->stop_sending = true;
    uv_timer_stop(&b->pace);
    uv_timer_stop(&b->phase_timer);
    unsigned long n = 0;
    for (conn *c = b->conns; c && n <= b->nconns; c = c->next, n++) {
        c->counted = false;
        conn_close_graceful(c);
    }
    b->active = 0;
    uv_timer_start(&b->phase_timer, on_close_bound, (uint64_t)(CLOSE_BOUND_S * 1000), 0);
    if (b->nconns == 0)
        close_handles(b);
}

static void on_phase_timer(uv_timer_t *t)
{
    bench *b = t->data;
    switch (b->phase) {
    case PH_SETUP:
        /* Setup took too long: stop launching; running ones time out. */
        result_note_error(&b->res, "setup phase timed out");
        b->stop_sending = true;
        bench_check_progress(b);
        break;
    case PH_RUN:
        if (b->o->mode == MODE_MSGS) {
            msgs_stop(b);
            if (b->phase == PH_DRAIN)
                uv_timer_start(&b->phase_timer, on_phase_timer, (uint64_t)(DRAIN_S * 1000), 0);
        } else if (b->o->mode == MODE_IDLE) {
            bench_measured_done(b);
        } else {
            b->stop_sending = true; /* login/register: --duration cap */
            bench_check_progress(b);
        }
        break;
    case PH_DRAIN:
        bench_measured_done(b);
        break;
    default:
        break;
    }
}

static void go(bench *b)
{
    b->phase = PH_RUN;
    b->stop_sending = false;
    b->t_go = uv_hrtime();
    getrusage(RUSAGE_SELF, &b->ru_go);
    b->srv_ticks_go = b->o->server_pid > 0 ? read_cpu_ticks(b->o->server_pid) : -1;
    b->machine_ticks_go = read_machine_busy_ticks();
    uv_timer_stop(&b->phase_timer);
    switch (b->o->mode) {
    case MODE_LOGIN:
        b->launched = b->done = 0;
        b->target = b->o->count;
        uv_timer_start(&b->phase_timer, on_phase_timer, (uint64_t)(b->o->duration * 1000), 0);
        bench_check_progress(b);
        break;
    case MODE_IDLE:
        uv_timer_start(&b->phase_timer, on_phase_timer, (uint64_t)(b->o->hold * 1000), 0);
        break;
    case MODE_MSGS:
        uv_timer_start(&b->phase_timer, on_phase_timer, (uint64_t)(b->o->duration * 1000), 0);
        if (b->o->rate > 0)
            uv_timer_start(&b->pace, on_pace, 1, 1);
        msgs_start_sending(b);
        break;
    case MODE_REGISTER:
        b->launched = b->done = 0;
        b->target = b->o->count;
        uv_timer_start(&b->phase_timer, on_phase_timer, (uint64_t)(b->o->setup_timeout * 1000), 0);
        bench_check_progress(b);
        break;
    case MODE_PROBE:
        b->launched = b->done = 0;
        b->target = 1;
        uv_timer_start(&b->phase_timer, on_phase_timer, (uint64_t)(b->o->timeout * 1000 + 1000), 0);
        bench_check_progress(b);
        break;
    case MODE_MUC_JOIN:
    case MODE_MUC_FANOUT:
        muc_go(b); /* starts its own timers */
        break;
    }
}

static void on_settled(uv_timer_t *t)
{
    bench *b = t->data;
    b->res.v[RF_rss_after_kib] = (double)read_vmrss_kib(b->o->server_pid);
    go(b);
}

static void on_ctl_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    bench *b = h->data;
    *buf = uv_buf_init(b->ctl_line + b->ctl_len, (unsigned)(sizeof b->ctl_line - 1 - b->ctl_len));
}

static void on_ctl_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    bench *b = s->data;
    if (n < 0) {
        /* The parent went away: stop. */
        uv_read_stop(s);
        if (b->phase < PH_CLOSING) {
            result_note_error(&b->res, "parent closed the control pipe");
            b->gave_up = true;
            bench_measured_done(b);
        }
        return;
    }
    b->ctl_len += (size_t)n;
    b->ctl_line[b->ctl_len] = '\0';
    if (strchr(b->ctl_line, '\n')) {
        bool is_go = strncmp(b->ctl_line, "GO", 2) == 0;
        b->ctl_len = 0;
        if (is_go && b->phase == PH_WAIT_GO)
            go(b);
        else if (!is_go && b->phase < PH_CLOSING)
            bench_measured_done(b);
    } else if (b->ctl_len >= sizeof b->ctl_line - 1) {
        b->ctl_len = 0;
    }
}

static void setup_done(bench *b)
{
    if (b->phase != PH_SETUP)
        return;
    if (IS_MUC(b->o->mode) && muc_setup_pending(b))
        return; /* muc.c calls bench_check_progress when its joins are answered */
    b->res.v[RF_setup_s] = ns_to_s(uv_hrtime() - b->t_setup);
    uv_timer_stop(&b->phase_timer);
    b->phase = PH_WAIT_GO;
    if (b->o->mode == MODE_MSGS) {
        unsigned long live = 0;
        for (unsigned long i = 0; i < b->npairs; i++) {
            pair *p = &b->pairs[i];
            p->live = p->up_a && p->up_b && p->a && p->b && p->b->jid;
            if (p->live) {
                size_t cap = strlen(p->b->jid) * 6 + 1;
                p->to = malloc(cap);
                if (!p->to) {
                    p->live = false;
                    continue;
                }
                xml_escape(p->to, cap, p->b->jid);
                live++;
            }
        }
        b->res.v[RF_pairs] = (double)live;
        if (live == 0) {
            result_note_error(&b->res, "no message pair could log in");
            b->exit_code = 1;
            bench_measured_done(b);
            return;
        }
    }
    if (IS_MUC(b->o->mode) && muc_setup_finish(b) < 0) {
        b->exit_code = 1;
        bench_measured_done(b);
        return;
    }
    if (b->ctl_fd >= 0) {
        static const char ready[] = "READY\n";
        if (write(b->res_fd, ready, sizeof ready - 1) != (ssize_t)(sizeof ready - 1)) {
            bench_measured_done(b);
            return;
        }
        int r = uv_pipe_init(&b->loop, &b->ctl, 0);
        if (r == 0) {
            b->ctl.data = b;
            b->ctl_open = true;
            r = uv_pipe_open(&b->ctl, b->ctl_fd);
            if (r == 0) {
                b->ctl_fd_owned = false; /* closing the handle closes it */
                r = uv_read_start((uv_stream_t *)&b->ctl, on_ctl_alloc, on_ctl_read);
            }
        }
        if (r < 0) {
            result_note_error(&b->res, "control pipe failed");
            bench_measured_done(b);
        }
        return;
    }
    if (b->o->mode == MODE_IDLE && b->o->server_pid > 0) {
        uv_timer_start(&b->phase_timer, on_settled, (uint64_t)(b->o->settle * 1000), 0);
        return;
    }
    go(b);
}

/* ---- loop plumbing -------------------------------------------------------------- */

static void on_check(uv_check_t *h)
{
    conn_flush_pending(h->data);
}

static void on_sweep(uv_timer_t *t)
{
    bench *b = t->data;
    conn_sweep(b, uv_hrtime());
    if (b->phase == PH_SETUP || b->phase == PH_RUN)
        bench_check_progress(b);
}

static void on_signal(uv_signal_t *s, int signum)
{
    bench *b = s->data;
    b->gave_up = true;
    result_note_error(&b->res, signum == SIGINT ? "interrupted" : "terminated");
    if (b->phase < PH_CLOSING)
        bench_measured_done(b);
    else
        on_close_bound(&b->phase_timer);
}

static int resolve(bench *b)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char port[16];
    snprintf(port, sizeof port, "%d", b->o->port);
    int rc = getaddrinfo(b->o->host, port, &hints, &res);
    if (rc != 0 || !res) {
        fprintf(stderr, "onair-bench: %s: %s\n", b->o->host, gai_strerror(rc));
        return -1;
    }
    memcpy(&b->dst, res->ai_addr, res->ai_addrlen);
    memcpy(&b->dst_ws, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (b->dst_ws.ss_family == AF_INET)
        ((struct sockaddr_in *)&b->dst_ws)->sin_port = htons((uint16_t)b->o->ws_port);
    else if (b->dst_ws.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&b->dst_ws)->sin6_port = htons((uint16_t)b->o->ws_port);
    unsigned long total = 0;
    switch (b->o->mode) {
    case MODE_LOGIN: total = b->o->count + (b->o->warmup ? b->o->users : 0); break;
    case MODE_IDLE: total = b->o->count; break;
    case MODE_MSGS: total = 2 * b->o->pairs; break;
    case MODE_MUC_JOIN:
    case MODE_MUC_FANOUT: total = b->o->count; break;
    default: total = 0; break;
    }
    b->src_count = b->o->src_addrs ? b->o->src_addrs : (total > 20000 ? (unsigned)(1 + total / 20000) : 0);
    if (b->src_count > (b->o->src_addrs ? 250u : 32u))
        b->src_count = b->o->src_addrs ? 250u : 32u;
    if (b->dst.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&b->dst;
        b->src_loopback = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
    }
    return 0;
}

static int tls_init(bench *b)
{
    b->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!b->ssl_ctx)
        return -1;
    SSL_CTX_set_min_proto_version(b->ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(b->ssl_ctx, SSL_VERIFY_NONE, NULL); /* benchmark: self-signed certs */
    SSL_CTX_set_mode(b->ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(b->ssl_ctx, SSL_SESS_CACHE_OFF);
    return 0;
}

static void start_setup(bench *b)
{
    b->phase = PH_SETUP;
    b->t_setup = uv_hrtime();
    switch (b->o->mode) {
    case MODE_LOGIN:
        b->target = b->o->warmup ? b->o->users : 0;
        break;
    case MODE_IDLE:
        b->target = b->o->count;
        break;
    case MODE_MSGS:
        b->target = 2 * b->npairs;
        break;
    case MODE_MUC_JOIN:
    case MODE_MUC_FANOUT:
        b->target = b->o->count;
        break;
    default:
        b->target = 0;
        break;
    }
    uv_timer_start(&b->phase_timer, on_phase_timer, (uint64_t)(b->o->setup_timeout * 1000), 0);
    bench_check_progress(b);
}

int bench_run(const bench_opts *o, int ctl_fd, int res_fd, result *out)
{
    bench *b = calloc(1, sizeof *b);
    if (!b)
        return 1;
    b->o = o;
    b->srv_ticks_go = -1;
    b->machine_ticks_go = -1;
    b->xml_salt = (unsigned long)uv_hrtime() ^ ((unsigned long)getpid() << 16);
    b->ctl_fd = ctl_fd;
    b->ctl_fd_owned = ctl_fd >= 0;
    b->res_fd = res_fd;
    int rc = uv_loop_init(&b->loop);
    if (rc < 0) {
        fprintf(stderr, "onair-bench: uv_loop_init: %s\n", uv_strerror(rc));
        free(b);
        return 1;
    }
    uv_check_init(&b->loop, &b->check);
    b->check.data = b;
    uv_check_start(&b->check, on_check);
    uv_timer_init(&b->loop, &b->sweep);
    b->sweep.data = b;
    uv_timer_start(&b->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    uv_timer_init(&b->loop, &b->pace);
    b->pace.data = b;
    uv_timer_init(&b->loop, &b->phase_timer);
    b->phase_timer.data = b;
    uv_signal_init(&b->loop, &b->sigint);
    b->sigint.data = b;
    uv_signal_start(&b->sigint, on_signal, SIGINT);
    uv_signal_init(&b->loop, &b->sigterm);
    b->sigterm.data = b;
    uv_signal_start(&b->sigterm, on_signal, SIGTERM);

    bool ok = resolve(b) == 0 && tls_init(b) == 0 && sasl_init(b) == 0;
    if (ok && o->mode == MODE_MSGS) {
        b->npairs = o->pairs;
        b->pairs = calloc(b->npairs ? b->npairs : 1, sizeof *b->pairs);
        ok = b->pairs != NULL;
    }
    if (ok && IS_MUC(o->mode))
        ok = muc_init(b) == 0;
    if (ok) {
        if (o->mode == MODE_IDLE && o->server_pid > 0 && res_fd < 0)
            b->res.v[RF_rss_before_kib] = (double)read_vmrss_kib(o->server_pid);
        if (o->mode == MODE_MUC_JOIN && o->server_pid > 0 && res_fd < 0)
            b->res.v[RF_rss_start_kib] = (double)read_vmrss_kib(o->server_pid); /* before any login */
        start_setup(b);
    } else {
        ERR_print_errors_fp(stderr);
        b->exit_code = 2;
        close_handles(b);
    }
    uv_run(&b->loop, UV_RUN_DEFAULT);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    b->res.v[RF_cpu_total_s] = cpu_seconds(&ru);
    int exit_code = b->exit_code;
    if (exit_code == 0 && b->gave_up)
        exit_code = 1;
    rc = uv_loop_close(&b->loop);
    if (rc != 0) {
        fprintf(stderr, "onair-bench: uv_loop_close: %s\n", uv_strerror(rc));
        if (exit_code == 0)
            exit_code = 1;
    }
    if (out)
        *out = b->res;
    if (res_fd >= 0 && result_write(res_fd, &b->res) < 0 && exit_code == 0)
        exit_code = 1;
    if (b->ctl_fd_owned)
        close(b->ctl_fd);
    for (unsigned long i = 0; i < b->npairs; i++)
        free(b->pairs[i].to);
    free(b->pairs);
    muc_free(b);
    sasl_done(b);
    conn_pool_free(b);
    SSL_CTX_free(b->ssl_ctx);
    free(b);
    return exit_code;
}
