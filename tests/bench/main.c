/* main.c - onair-bench: options, generator processes, the report.
 *
 *   onair-bench login|idle|msgs|register|probe|muc-join|muc-fanout [options]
 *
 * Every mode runs over TCP, over WebSocket (--ws PATH, RFC 7395), or both
 * (--ws-share: that share of the connections over WebSocket, spread evenly
 * by their global index; latency figures are then also given per transport).
 *
 * With --procs K the parent forks K generators, each running bench_run() on
 * its share of the users/connections/pairs.  They talk over two pipes each:
 * the child writes "READY" when its setup is done and, at the end, its
 * result lines (hist.c); the parent writes "GO" when every child is ready
 * (after reading the server's RSS in idle and muc-join mode); in muc-join a
 * child writes "SEATED" when its joins are answered and the parent, once all
 * have, reads the server's RSS and writes "END".  The parent merges the
 * results (sums, maxima, merged histograms) and prints one report: human
 * lines, then a single JSON line.  Every wait of the parent has a deadline.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 64

double ns_to_s(uint64_t ns)
{
    return (double)ns / 1e9;
}

long read_vmrss_kib(long pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

long read_machine_busy_ticks(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    char line[512];
    long busy = -1;
    if (fgets(line, sizeof line, f) && strncmp(line, "cpu ", 4) == 0) {
        /* user nice system idle iowait irq softirq steal ... */
        long v[8] = {0};
        char *p = line + 4;
        for (int i = 0; i < 8; i++)
            v[i] = strtol(p, &p, 10);
        busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    }
    fclose(f);
    return busy;
}

double ticks_to_s(long ticks)
{
    long hz = sysconf(_SC_CLK_TCK);
    return (double)ticks / (double)(hz > 0 ? hz : 100);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool bench_unit_is_ws(const bench_opts *o, unsigned long g)
{
    if (!o->ws_path || o->ws_count == 0 || o->unit_total == 0)
        return false;
    unsigned long long t = o->unit_total, w = o->ws_count, x = g % t;
    return (x + 1) * w / t > x * w / t;
}

unsigned long bench_unit_rank(const bench_opts *o, unsigned long g)
{
    if (!o->ws_path || o->ws_count == 0 || o->unit_total == 0)
        return g;
    unsigned long long t = o->unit_total, w = o->ws_count, x = g % t;
    unsigned long ws_before = (unsigned long)(x * w / t);
    return bench_unit_is_ws(o, g) ? ws_before : (unsigned long)x - ws_before;
}

/* ---- options ----------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: onair-bench MODE [options]\n"
            "modes:\n"
            "  login     N logins (stream, [STARTTLS], SASL, bind, [session], close), C at once:\n"
            "            logins/s and latency percentiles\n"
            "  idle      open and authenticate N connections, read the server's RSS (--server-pid)\n"
            "            before and after, hold them --hold seconds: KiB per connection\n"
            "  msgs      P sender/receiver pairs; senders message their partner's full JID for\n"
            "            --duration seconds at --rate (0: closed loop, --window in flight per pair):\n"
            "            delivered msgs/s, latency percentiles, losses\n"
            "  register  create accounts PREFIX<offset+1>..PREFIX<offset+N> by in-band\n"
            "            registration (XEP-0077), C connections at once\n"
            "  probe     connect, open a stream, read the features, close (readiness check)\n"
            "  muc-join  log in N clients; occupant 0 joins --room (setup); then time seating the\n"
            "            other N-1 (join presence sent -> self-presence, status 110): seat time,\n"
            "            joins/s, latency, presences per client, server KiB per occupant\n"
            "  muc-fanout  N occupants join --room; S (--senders) send groupchat messages for\n"
            "            --duration s, closed loop (--window per sender, next on own echo) or at\n"
            "            --rate msgs/s in total: deliveries/s to all occupants, latency, losses\n"
            "target and accounts:\n"
            "  --host H (127.0.0.1)  --port P (5222)  --domain D (localhost)\n"
            "  --prefix PFX (bench)  --offset O (0)  --password PW | --password-file F (secret)\n"
            "  --users U      distinct accounts the connections cycle through (default N)\n"
            "  --mech M       SASL mechanism (SCRAM-SHA-256; SCRAM-SHA-1, PLAIN)\n"
            "  --tls          STARTTLS before authenticating (certificates are not verified);\n"
            "                 over WebSocket: TLS from the start (wss)\n"
            "WebSocket (RFC 7395):\n"
            "  --ws PATH      connect over WebSocket: HTTP/1.1 upgrade to PATH (e.g. /xmpp-websocket),\n"
            "                 subprotocol xmpp, <open/>/<close/> framing, one element per message\n"
            "  --ws-port P    the HTTP port of PATH (default --port; needed with a --ws-share\n"
            "                 that leaves some connections on TCP at --port)\n"
            "  --ws-share F   a fraction (0.5, 1.0) or count (2000) of the connections or occupants\n"
            "                 over WebSocket, spread evenly, the rest over TCP (default: all)\n"
            "  --rcvbuf B     SO_RCVBUF of every socket (default: the kernel's); room for what a\n"
            "                 paused --sample occupant is sent during the window\n"
            "load:\n"
            "  -n, --count N  logins / connections / registrations (1000)\n"
            "  -c, --concurrency C  connections negotiating at once (50)\n"
            "  --pairs P      msgs: pairs (50; accounts offset+1 .. offset+2P)\n"
            "  --rate R       msgs: total messages/s (0 = as fast as the window allows)\n"
            "  --window W     msgs: messages in flight per pair (16)\n"
            "  --size B       msgs, muc-fanout: body bytes, padded (0 = timestamp and sequence only)\n"
            "  --presence / --no-presence  initial presence after bind (on for msgs only)\n"
            "  --warmup       login: one untimed login per distinct user first (fills the\n"
            "                 SCRAM cache so PBKDF2 stays out of the measurement)\n"
            "  --scram-cache F  keep SCRAM salted passwords in file F across runs\n"
            "chat room (muc-join, muc-fanout; N = -n, accounts offset+1 .. offset+N):\n"
            "  --room JID     the room (bench@conference.DOMAIN)\n"
            "  --nick PFX     occupant i joins as PFX<i> (u)\n"
            "  --room-password PW  sent in the join's <x xmlns='http://jabber.org/protocol/muc'/>\n"
            "  --history N    <history maxstanzas='N'/> on joining (0; -1: no history element)\n"
            "  --senders S    muc-fanout: occupants that send, spread over the room (10)\n"
            "  --window W     muc-fanout: messages in flight per sender (closed loop 1, paced 1000)\n"
            "  --join-conc C  muc-join: joins in flight at once (0 = all at once)\n"
            "  --sample K     muc-fanout, paced: only K occupants spread over the room (and the\n"
            "                 senders) read and time during the window; the others are read and\n"
            "                 counted after it (0 = all time)\n"
            "bounds:\n"
            "  --duration S   msgs, muc-fanout: length of the run (10); login/register, muc-join\n"
            "                 (seating): cap (60)\n"
            "  --timeout S    per connection and step (30)\n"
            "  --setup-timeout S  bound of the setup phase and of register (600)\n"
            "  --hold S       idle: seconds to hold after measuring (5)\n"
            "  --settle S     idle, muc-join: seconds between all-up/all-seated and the RSS reading (2)\n"
            "  --server-pid PID  the server process: idle reads its VmRSS; every mode reports\n"
            "                 its CPU time over the measured phase (/proc/PID/stat)\n"
            "process:\n"
            "  --procs K      fork K generator processes that split the load (1)\n"
            "  --src-addrs K  bind sources 127.0.0.2..127.0.0.(K+1) (0 = auto: one per 20000)\n"
            "  --label TEXT   copied into the JSON line\n"
            "  --quiet        print only the JSON line\n"
            "  --trace        print the XML each connection sends and receives (stderr)\n");
}

static int parse_num(const char *s, double lo, double hi, double *out, const char *name)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "onair-bench: %s: expected a number between %g and %g\n", name, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

enum {
    O_HOST = 256, O_PORT, O_DOMAIN, O_PREFIX, O_OFFSET, O_PASSWORD, O_PASSWORD_FILE, O_USERS,
    O_MECH, O_TLS, O_PAIRS, O_RATE, O_WINDOW, O_SIZE, O_PRESENCE, O_NO_PRESENCE, O_WARMUP,
    O_SCRAM_CACHE, O_DURATION, O_TIMEOUT, O_SETUP_TIMEOUT, O_HOLD, O_SETTLE, O_SERVER_PID,
    O_PROCS, O_SRC_ADDRS, O_LABEL, O_QUIET, O_TRACE, O_HELP, O_ROOM, O_NICK, O_ROOM_PASSWORD,
    O_HISTORY, O_SENDERS, O_JOIN_CONC, O_SAMPLE, O_WS, O_WS_PORT, O_WS_SHARE, O_RCVBUF,
};

static char *read_password_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "onair-bench: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char buf[1024];
    char *r = NULL;
    if (fgets(buf, sizeof buf, f)) {
        buf[strcspn(buf, "\r\n")] = '\0';
        r = strdup(buf);
    }
    fclose(f);
    if (!r)
        fprintf(stderr, "onair-bench: %s: empty\n", path);
    return r;
}

static int parse_opts(int argc, char **argv, bench_opts *o)
{
    if (argc < 2) {
        usage(stderr);
        return -1;
    }
    const char *m = argv[1];
    if (strcmp(m, "-h") == 0 || strcmp(m, "--help") == 0) {
        usage(stdout);
        return 1;
    }
    if (strcmp(m, "login") == 0)
        o->mode = MODE_LOGIN;
    else if (strcmp(m, "idle") == 0)
        o->mode = MODE_IDLE;
    else if (strcmp(m, "msgs") == 0)
        o->mode = MODE_MSGS;
    else if (strcmp(m, "register") == 0)
        o->mode = MODE_REGISTER;
    else if (strcmp(m, "probe") == 0)
        o->mode = MODE_PROBE;
    else if (strcmp(m, "muc-join") == 0)
        o->mode = MODE_MUC_JOIN;
    else if (strcmp(m, "muc-fanout") == 0)
        o->mode = MODE_MUC_FANOUT;
    else {
        fprintf(stderr, "onair-bench: unknown mode '%s'\n", m);
        usage(stderr);
        return -1;
    }
    o->host = "127.0.0.1";
    o->port = 5222;
    o->domain = "localhost";
    o->prefix = "bench";
    o->password = "secret";
    o->count = 1000;
    o->concurrency = 50;
    o->pairs = 50;
    snprintf(o->mech, sizeof o->mech, "SCRAM-SHA-256");
    o->duration = o->mode == MODE_MSGS || o->mode == MODE_MUC_FANOUT ? 10 : 60;
    o->nick = "u";
    o->senders = 10;
    o->timeout = 30;
    o->setup_timeout = 600;
    o->hold = 5;
    o->settle = 2;
    o->window = 16;
    o->procs = 1;
    o->presence = o->mode == MODE_MSGS;
    bool users_set = false, ws_share_set = false;

    static const struct option longopts[] = {
        {"host", required_argument, NULL, O_HOST},
        {"port", required_argument, NULL, O_PORT},
        {"domain", required_argument, NULL, O_DOMAIN},
        {"prefix", required_argument, NULL, O_PREFIX},
        {"offset", required_argument, NULL, O_OFFSET},
        {"password", required_argument, NULL, O_PASSWORD},
        {"password-file", required_argument, NULL, O_PASSWORD_FILE},
        {"users", required_argument, NULL, O_USERS},
        {"mech", required_argument, NULL, O_MECH},
        {"tls", no_argument, NULL, O_TLS},
        {"count", required_argument, NULL, 'n'},
        {"concurrency", required_argument, NULL, 'c'},
        {"pairs", required_argument, NULL, O_PAIRS},
        {"rate", required_argument, NULL, O_RATE},
        {"window", required_argument, NULL, O_WINDOW},
        {"size", required_argument, NULL, O_SIZE},
        {"presence", no_argument, NULL, O_PRESENCE},
        {"no-presence", no_argument, NULL, O_NO_PRESENCE},
        {"warmup", no_argument, NULL, O_WARMUP},
        {"scram-cache", required_argument, NULL, O_SCRAM_CACHE},
        {"duration", required_argument, NULL, O_DURATION},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"setup-timeout", required_argument, NULL, O_SETUP_TIMEOUT},
        {"hold", required_argument, NULL, O_HOLD},
        {"settle", required_argument, NULL, O_SETTLE},
        {"server-pid", required_argument, NULL, O_SERVER_PID},
        {"procs", required_argument, NULL, O_PROCS},
        {"src-addrs", required_argument, NULL, O_SRC_ADDRS},
        {"label", required_argument, NULL, O_LABEL},
        {"quiet", no_argument, NULL, O_QUIET},
        {"trace", no_argument, NULL, O_TRACE},
        {"help", no_argument, NULL, O_HELP},
        {"room", required_argument, NULL, O_ROOM},
        {"nick", required_argument, NULL, O_NICK},
        {"room-password", required_argument, NULL, O_ROOM_PASSWORD},
        {"history", required_argument, NULL, O_HISTORY},
        {"senders", required_argument, NULL, O_SENDERS},
        {"join-conc", required_argument, NULL, O_JOIN_CONC},
        {"sample", required_argument, NULL, O_SAMPLE},
        {"ws", required_argument, NULL, O_WS},
        {"ws-port", required_argument, NULL, O_WS_PORT},
        {"ws-share", required_argument, NULL, O_WS_SHARE},
        {"rcvbuf", required_argument, NULL, O_RCVBUF},
        {NULL, 0, NULL, 0},
    };
    optind = 2;
    int ch;
    double v;
    while ((ch = getopt_long(argc, argv, "n:c:h", longopts, NULL)) != -1) {
        int bad = 0;
        switch (ch) {
        case O_HOST: o->host = optarg; break;
        case O_PORT: bad = parse_num(optarg, 1, 65535, &v, "--port"); o->port = (int)v; break;
        case O_DOMAIN: o->domain = optarg; break;
        case O_PREFIX: o->prefix = optarg; break;
        case O_OFFSET: bad = parse_num(optarg, 0, 1e9, &v, "--offset"); o->user_offset = (unsigned long)v; break;
        case O_PASSWORD: o->password = optarg; break;
        case O_PASSWORD_FILE:
            free(o->password_buf);
            o->password_buf = read_password_file(optarg);
            if (!o->password_buf)
                return -1;
            o->password = o->password_buf;
            break;
        case O_USERS: bad = parse_num(optarg, 1, 1e8, &v, "--users"); o->users = (unsigned long)v; users_set = true; break;
        case O_MECH: snprintf(o->mech, sizeof o->mech, "%s", optarg); break;
        case O_TLS: o->tls = true; break;
        case 'n': bad = parse_num(optarg, 0, 1e8, &v, "--count"); o->count = (unsigned long)v; break;
        case 'c': bad = parse_num(optarg, 1, 1e6, &v, "--concurrency"); o->concurrency = (unsigned long)v; break;
        case O_PAIRS: bad = parse_num(optarg, 1, 1e6, &v, "--pairs"); o->pairs = (unsigned long)v; break;
        case O_RATE: bad = parse_num(optarg, 0, 1e8, &v, "--rate"); o->rate = v; break;
        case O_WINDOW: bad = parse_num(optarg, 1, 1e6, &v, "--window"); o->window = (unsigned)v; o->window_set = true; break;
        case O_SIZE: bad = parse_num(optarg, 0, 16000, &v, "--size"); o->body_size = (unsigned)v; break;
        case O_PRESENCE: o->presence = true; break;
        case O_NO_PRESENCE: o->presence = false; break;
        case O_WARMUP: o->warmup = true; break;
        case O_SCRAM_CACHE: o->scram_cache = optarg; break;
        case O_DURATION: bad = parse_num(optarg, 0.1, 86400, &v, "--duration"); o->duration = v; break;
        case O_TIMEOUT: bad = parse_num(optarg, 0.1, 3600, &v, "--timeout"); o->timeout = v; break;
        case O_SETUP_TIMEOUT: bad = parse_num(optarg, 1, 86400, &v, "--setup-timeout"); o->setup_timeout = v; break;
        case O_HOLD: bad = parse_num(optarg, 0, 86400, &v, "--hold"); o->hold = v; break;
        case O_SETTLE: bad = parse_num(optarg, 0, 3600, &v, "--settle"); o->settle = v; break;
        case O_SERVER_PID: bad = parse_num(optarg, 1, 1e9, &v, "--server-pid"); o->server_pid = (long)v; break;
        case O_PROCS: bad = parse_num(optarg, 1, MAX_PROCS, &v, "--procs"); o->procs = (unsigned)v; break;
        case O_SRC_ADDRS: bad = parse_num(optarg, 0, 250, &v, "--src-addrs"); o->src_addrs = (unsigned)v; break;
        case O_LABEL: o->label = optarg; break;
        case O_QUIET: o->quiet = true; break;
        case O_TRACE: o->trace = true; break;
        case O_ROOM: o->room = optarg; break;
        case O_NICK: o->nick = optarg; break;
        case O_ROOM_PASSWORD: o->room_password = optarg; break;
        case O_HISTORY: bad = parse_num(optarg, -1, 1e6, &v, "--history"); o->history = (int)v; break;
        case O_SENDERS: bad = parse_num(optarg, 1, 1e6, &v, "--senders"); o->senders = (unsigned long)v; break;
        case O_JOIN_CONC: bad = parse_num(optarg, 0, 1e8, &v, "--join-conc"); o->join_conc = (unsigned long)v; break;
        case O_SAMPLE: bad = parse_num(optarg, 0, 1e8, &v, "--sample"); o->sample = (unsigned long)v; break;
        case O_WS:
            if (optarg[0] != '/' || strlen(optarg) > 200 || strpbrk(optarg, " \r\n")) {
                fprintf(stderr, "onair-bench: --ws: a path from / of at most 200 bytes, no spaces\n");
                return -1;
            }
            o->ws_path = optarg;
            break;
        case O_WS_PORT: bad = parse_num(optarg, 1, 65535, &v, "--ws-port"); o->ws_port = (int)v; break;
        case O_WS_SHARE:
            bad = parse_num(optarg, 0, 1e8, &v, "--ws-share");
            o->ws_share = v;
            /* "1.0", "0.5": a fraction; "1", "2000": a count */
            o->ws_share_is_count = !strchr(optarg, '.') && v >= 1;
            if (!bad && !o->ws_share_is_count && v > 1) {
                fprintf(stderr, "onair-bench: --ws-share: a fraction is at most 1.0\n");
                return -1;
            }
            ws_share_set = true;
            break;
        case O_RCVBUF: bad = parse_num(optarg, 4096, 1 << 30, &v, "--rcvbuf"); o->rcvbuf = (unsigned)v; break;
        case 'h':
        case O_HELP: usage(stdout); return 1;
        default: usage(stderr); return -1;
        }
        if (bad)
            return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "onair-bench: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (o->mode == MODE_PROBE)
        o->procs = 1;
    if (!users_set)
        o->users = o->count ? o->count : 1;
    if (o->mode == MODE_MSGS)
        o->users = 2 * o->pairs;
    if (IS_MUC(o->mode)) {
        o->users = o->count;
        o->muc_total = o->count;
        o->muc_first = 0;
        if (!o->room) {
            size_t n = strlen(o->domain) + 32;
            o->room_buf = malloc(n);
            if (!o->room_buf)
                return -1;
            snprintf(o->room_buf, n, "bench@conference.%s", o->domain);
            o->room = o->room_buf;
        }
        if (strlen(o->room) > 250 || strlen(o->nick) > 60 || strchr(o->room, '/') || !strchr(o->room, '@')) {
            fprintf(stderr, "onair-bench: --room must be a bare JID room@service of at most 250 bytes,"
                            " --nick at most 60 bytes\n");
            return -1;
        }
        if (o->mode == MODE_MUC_JOIN && o->count < 2) {
            fprintf(stderr, "onair-bench: muc-join needs -n 2 or more (occupant 0 opens the room)\n");
            return -1;
        }
        if (o->mode == MODE_MUC_FANOUT && (o->count < 1 || o->senders > o->count)) {
            fprintf(stderr, "onair-bench: muc-fanout needs 1 <= --senders <= -n\n");
            return -1;
        }
        if (o->mode == MODE_MUC_FANOUT && o->sample > 0 && o->sample < o->count) {
            /* What a paused occupant is sent in the window must fit in its
             * socket's receive buffer: about 64 KiB usable by default, about
             * the SO_RCVBUF value given (the kernel doubles it for its own
             * bookkeeping); some of it is kept as a margin. */
            double per = ceil(o->rate * o->duration) * (o->body_size + 400.0);
            double room = o->rcvbuf > 0 ? 0.75 * o->rcvbuf : 48 * 1024;
            if (o->rate <= 0 || per > room) {
                fprintf(stderr, "onair-bench: --sample needs --rate, and at most %.0f bytes of messages per"
                                " occupant in the window (rate x duration x (size + 400) = %.0f bytes; --rcvbuf"
                                " gives more room)\n", room, per);
                return -1;
            }
        }
    }
    o->unit_total = o->mode == MODE_MSGS ? 2 * o->pairs : o->mode == MODE_PROBE ? 1 : o->count;
    o->unit_first = 0;
    if (!o->ws_path && (ws_share_set || o->ws_port)) {
        fprintf(stderr, "onair-bench: --ws-share and --ws-port go with --ws PATH\n");
        return -1;
    }
    if (o->ws_path) {
        double w = !ws_share_set ? (double)o->unit_total
                   : o->ws_share_is_count ? o->ws_share
                                          : floor(o->ws_share * (double)o->unit_total + 0.5);
        o->ws_count = w > (double)o->unit_total ? o->unit_total : (unsigned long)w;
        if (o->ws_count < o->unit_total && o->ws_port == 0) {
            fprintf(stderr, "onair-bench: --ws-share leaves connections on TCP at --port: give the"
                            " WebSocket's HTTP port with --ws-port\n");
            return -1;
        }
        if (o->ws_port == 0)
            o->ws_port = o->port;
    }
    unsigned long units = o->mode == MODE_MSGS ? o->pairs : o->mode == MODE_PROBE ? 1 : o->count;
    if (o->procs > 1 && (units < o->procs || o->users < o->procs)) {
        fprintf(stderr, "onair-bench: --procs %u needs at least that many %s and users\n", o->procs,
                o->mode == MODE_MSGS ? "pairs" : "connections");
        return -1;
    }
    if (strlen(o->prefix) > 64 || strlen(o->domain) > 200 || strlen(o->password) > 200) {
        fprintf(stderr, "onair-bench: prefix, domain or password too long\n");
        return -1;
    }
    return 0;
}

/* The share [k*n/K, (k+1)*n/K) of n units for generator k of K. */
static unsigned long share_lo(unsigned long n, unsigned k, unsigned K)
{
    return (unsigned long)((unsigned long long)n * k / K);
}

static void split_opts(bench_opts *co, unsigned k, unsigned K)
{
    unsigned long c_lo = share_lo(co->concurrency, k, K), c_hi = share_lo(co->concurrency, k + 1, K);
    co->concurrency = c_hi > c_lo ? c_hi - c_lo : 1;
    co->src_first = k; /* the parent reads the RSS; children the server CPU */
    if (IS_MUC(co->mode)) {
        unsigned long lo = share_lo(co->count, k, K), hi = share_lo(co->count, k + 1, K);
        unsigned long mine = muc_senders_between(co->muc_total, co->senders, lo, hi);
        if (co->mode == MODE_MUC_FANOUT && co->senders > 0)
            co->rate = co->rate * (double)mine / (double)(co->senders < co->muc_total ? co->senders : co->muc_total);
        co->user_offset += lo;
        co->muc_first = lo;
        co->unit_first = lo;
        co->count = hi - lo;
        co->users = co->count;
        return;
    }
    if (co->mode == MODE_MSGS) {
        unsigned long lo = share_lo(co->pairs, k, K), hi = share_lo(co->pairs, k + 1, K);
        co->rate = co->rate * (double)(hi - lo) / (double)co->pairs;
        co->user_offset += 2 * lo;
        co->unit_first = 2 * lo;
        co->pairs = hi - lo;
        co->users = 2 * co->pairs;
        return;
    }
    unsigned long n_lo = share_lo(co->count, k, K), n_hi = share_lo(co->count, k + 1, K);
    co->count = n_hi - n_lo;
    co->unit_first = n_lo;
    if (co->mode == MODE_REGISTER) {
        co->user_offset += n_lo;
        co->users = co->count;
        return;
    }
    unsigned long u_lo = share_lo(co->users, k, K), u_hi = share_lo(co->users, k + 1, K);
    co->user_offset += u_lo;
    co->users = u_hi - u_lo;
}

static void raise_fd_limit(const bench_opts *o)
{
    unsigned long per = 0;
    switch (o->mode) {
    case MODE_IDLE: per = o->count; break;
    case MODE_MSGS: per = 2 * o->pairs; break;
    case MODE_MUC_JOIN:
    case MODE_MUC_FANOUT: per = o->count; break;
    default: per = 4 * o->concurrency; break;
    }
    rlim_t need = (rlim_t)(per + 256);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur >= need)
        return;
    if (rl.rlim_max < need) {
        struct rlimit want = {need, need};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            return;
    }
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < need)
        fprintf(stderr, "onair-bench: warning: only %llu file descriptors allowed, %llu wanted\n",
                (unsigned long long)rl.rlim_cur, (unsigned long long)need);
}

/* ---- generator processes ------------------------------------------------------- */

typedef struct child {
    pid_t pid;
    int res_fd, ctl_fd;
    char *buf;
    size_t len, cap;
    bool ready, seated, eof;
    int status;
} child;

/* Reads what a child wrote; handles complete lines.  Returns -1 on EOF. */
static int child_read(child *ch, result *agg)
{
    if (ch->cap - ch->len < 65536) {
        size_t ncap = ch->cap ? ch->cap * 2 : 131072;
        char *nb = realloc(ch->buf, ncap);
        if (!nb)
            return -1;
        ch->buf = nb;
        ch->cap = ncap;
    }
    ssize_t n = read(ch->res_fd, ch->buf + ch->len, ch->cap - ch->len - 1);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n <= 0)
        return -1;
    ch->len += (size_t)n;
    ch->buf[ch->len] = '\0';
    char *start = ch->buf, *nl;
    while ((nl = strchr(start, '\n')) != NULL) {
        *nl = '\0';
        if (strcmp(start, "READY") == 0)
            ch->ready = true;
        else if (strcmp(start, "SEATED") == 0)
            ch->seated = true;
        else
            result_merge_line(agg, start);
        start = nl + 1;
    }
    size_t rest = ch->len - (size_t)(start - ch->buf);
    memmove(ch->buf, start, rest);
    ch->len = rest;
    return 0;
}

enum { WANT_EOF, WANT_READY, WANT_SEATED };

/* Polls the children until cond holds for all (or all hit EOF), a signal
 * arrives on sfd, or the deadline passes.  Returns 0, 1 on signal, 2 on
 * deadline. */
static int wait_children(child *ch, unsigned K, int sfd, result *agg, int want, uint64_t deadline)
{
    for (;;) {
        bool all = true;
        for (unsigned k = 0; k < K; k++)
            if (!ch[k].eof && (want == WANT_EOF || (want == WANT_READY && !ch[k].ready) ||
                               (want == WANT_SEATED && !ch[k].seated)))
                all = false;
        if (all)
            return 0;
        uint64_t now = mono_ms();
        if (now >= deadline)
            return 2;
        struct pollfd pf[MAX_PROCS + 1];
        unsigned np = 0;
        for (unsigned k = 0; k < K; k++)
            pf[np++] = (struct pollfd){.fd = ch[k].eof ? -1 : ch[k].res_fd, .events = POLLIN};
        pf[np++] = (struct pollfd){.fd = sfd, .events = POLLIN};
        uint64_t left = deadline - now;
        int r = poll(pf, np, left > 1000 ? 1000 : (int)left);
        if (r < 0 && errno != EINTR)
            return 2;
        if (r <= 0)
            continue;
        if (sfd >= 0 && (pf[K].revents & POLLIN)) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) > 0)
                return 1;
        }
        for (unsigned k = 0; k < K; k++)
            if (pf[k].revents & (POLLIN | POLLHUP | POLLERR))
                if (child_read(&ch[k], agg) < 0)
                    ch[k].eof = true;
    }
}

static void signal_children(child *ch, unsigned K, int sig)
{
    for (unsigned k = 0; k < K; k++)
        if (ch[k].pid > 0 && !ch[k].eof)
            kill(ch[k].pid, sig);
}

static int run_procs(const bench_opts *o, result *agg)
{
    unsigned K = o->procs;
    child ch[MAX_PROCS];
    memset(ch, 0, sizeof ch);
    if (o->mode == MODE_IDLE && o->server_pid > 0)
        agg->v[RF_rss_before_kib] = (double)read_vmrss_kib(o->server_pid);
    if (o->mode == MODE_MUC_JOIN && o->server_pid > 0)
        agg->v[RF_rss_start_kib] = (double)read_vmrss_kib(o->server_pid); /* before any login */

    sigset_t mask, old;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, &old);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);

    unsigned started = 0;
    int rc = 0;
    for (unsigned k = 0; k < K; k++) {
        int rp[2], cp[2];
        if (pipe2(rp, O_CLOEXEC) < 0)
            break;
        if (pipe2(cp, O_CLOEXEC) < 0) {
            close(rp[0]);
            close(rp[1]);
            break;
        }
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            close(rp[0]), close(rp[1]), close(cp[0]), close(cp[1]);
            break;
        }
        if (pid == 0) {
            sigprocmask(SIG_SETMASK, &old, NULL);
            if (sfd >= 0)
                close(sfd);
            for (unsigned j = 0; j < started; j++) {
                close(ch[j].res_fd);
                close(ch[j].ctl_fd);
            }
            close(rp[0]);
            close(cp[1]);
            bench_opts co = *o;
            split_opts(&co, k, K);
            int crc = bench_run(&co, cp[0], rp[1], NULL); /* closes cp[0] */
            close(rp[1]);
            free(o->password_buf);
            _exit(crc);
        }
        close(rp[1]);
        close(cp[0]);
        ch[k].pid = pid;
        ch[k].res_fd = rp[0];
        ch[k].ctl_fd = cp[1];
        started++;
    }
    if (started < K) {
        fprintf(stderr, "onair-bench: could only start %u of %u generators\n", started, K);
        rc = 1;
        for (unsigned k = 0; k < started; k++)
            close(ch[k].ctl_fd); /* EOF on the control pipe stops them */
        for (unsigned k = 0; k < started; k++)
            ch[k].ctl_fd = -1;
    }
    K = started;

    uint64_t setup_deadline = mono_ms() + (uint64_t)((o->setup_timeout + o->timeout + 30) * 1000);
    int w = rc == 0 ? wait_children(ch, K, sfd, agg, WANT_READY, setup_deadline) : 2;
    struct timespec settle = {(time_t)o->settle, (long)((o->settle - (double)(time_t)o->settle) * 1e9)};
    if (w == 0 && o->mode == MODE_IDLE && o->server_pid > 0) {
        nanosleep(&settle, NULL);
        agg->v[RF_rss_after_kib] = (double)read_vmrss_kib(o->server_pid);
    }
    if (w == 0 && o->mode == MODE_MUC_JOIN && o->server_pid > 0)
        agg->v[RF_rss_before_kib] = (double)read_vmrss_kib(o->server_pid); /* all logged in */
    for (unsigned k = 0; k < K; k++) {
        if (ch[k].ctl_fd < 0)
            continue;
        static const char go[] = "GO\n", stop[] = "STOP\n";
        const char *msg = w == 0 ? go : stop;
        if (write(ch[k].ctl_fd, msg, strlen(msg)) < 0) {
            /* that child is gone; its EOF is seen below */
        }
    }
    if (w != 0) {
        result_note_error(agg, w == 1 ? "interrupted" : "setup of the generators timed out");
        rc = 1;
    }
    if (w == 0 && o->mode == MODE_MUC_JOIN) {
        /* Every generator holds its occupants until all are seated; then the
         * server's RSS, then END. */
        uint64_t seat_deadline = mono_ms() + (uint64_t)((o->duration + o->timeout + 30) * 1000);
        int sw = wait_children(ch, K, sfd, agg, WANT_SEATED, seat_deadline);
        if (sw == 0 && o->server_pid > 0) {
            nanosleep(&settle, NULL);
            agg->v[RF_rss_after_kib] = (double)read_vmrss_kib(o->server_pid);
        }
        if (sw != 0) {
            result_note_error(agg, sw == 1 ? "interrupted" : "generators did not finish seating");
            rc = 1;
        }
        for (unsigned k = 0; k < K; k++) {
            static const char end[] = "END\n";
            if (ch[k].ctl_fd >= 0 && write(ch[k].ctl_fd, end, sizeof end - 1) < 0) {
                /* that child is gone; its EOF is seen below */
            }
        }
    }
    double run_s = o->mode == MODE_IDLE       ? o->hold
                   : o->mode == MODE_REGISTER ? o->setup_timeout
                   : o->mode == MODE_MUC_JOIN ? o->settle + 5
                                              : o->duration;
    uint64_t run_deadline = mono_ms() + (uint64_t)((run_s + o->timeout + 40) * 1000);
    for (int round = 0; round < 3; round++) {
        w = wait_children(ch, K, sfd, agg, WANT_EOF, round == 0 ? run_deadline : mono_ms() + 5000);
        if (w == 0)
            break;
        rc = 1;
        signal_children(ch, K, round == 0 ? SIGTERM : SIGKILL);
    }
    for (unsigned k = 0; k < K; k++) {
        if (ch[k].ctl_fd >= 0)
            close(ch[k].ctl_fd);
        close(ch[k].res_fd);
        free(ch[k].buf);
        int st = 0;
        if (waitpid(ch[k].pid, &st, 0) > 0) {
            int code = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
            if (code > rc)
                rc = code;
        }
    }
    if (sfd >= 0)
        close(sfd);
    /* SIGINT/SIGTERM stay blocked: a second one must not kill the parent
     * before it has printed the report; it exits right after. */
    return rc;
}

/* ---- report ---------------------------------------------------------------------- */

typedef struct jbuf {
    char s[8192];
    size_t n;
} jbuf;

static void jraw(jbuf *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jraw(jbuf *j, const char *fmt, ...)
{
    if (j->n >= sizeof j->s)
        return;
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(j->s + j->n, sizeof j->s - j->n, fmt, ap);
    va_end(ap);
    if (r > 0)
        j->n += (size_t)r;
    if (j->n >= sizeof j->s)
        j->n = sizeof j->s - 1;
}

static void jstr(jbuf *j, const char *key, const char *val)
{
    jraw(j, "%s\"%s\":\"", j->n > 1 ? "," : "", key);
    for (const unsigned char *p = (const unsigned char *)val; *p; p++) {
        if (*p == '"' || *p == '\\')
            jraw(j, "\\%c", *p);
        else if (*p < 0x20)
            jraw(j, "\\u%04x", *p);
        else
            jraw(j, "%c", *p);
    }
    jraw(j, "\"");
}

static void jnum(jbuf *j, const char *key, double v)
{
    if (v != v || v > 1e300 || v < -1e300)
        v = 0;
    if (v == (double)(long long)v && v < 1e15 && v > -1e15)
        jraw(j, "%s\"%s\":%lld", j->n > 1 ? "," : "", key, (long long)v);
    else
        jraw(j, "%s\"%s\":%.6g", j->n > 1 ? "," : "", key, v);
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static const char *mode_name(bench_mode m)
{
    switch (m) {
    case MODE_LOGIN: return "login";
    case MODE_IDLE: return "idle";
    case MODE_MSGS: return "msgs";
    case MODE_REGISTER: return "register";
    case MODE_PROBE: return "probe";
    case MODE_MUC_JOIN: return "muc-join";
    case MODE_MUC_FANOUT: return "muc-fanout";
    }
    return "?";
}

static int report(const bench_opts *o, const result *r, int rc)
{
    const double *v = r->v;
    double el = v[RF_elapsed_s] > 0 ? v[RF_elapsed_s] : 1e-9;
    bool h = !o->quiet;
    jbuf j = {.n = 0};
    jraw(&j, "{");
    jstr(&j, "mode", mode_name(o->mode));
    if (o->label)
        jstr(&j, "label", o->label);
    jstr(&j, "host", o->host);
    jnum(&j, "port", o->port);
    jstr(&j, "domain", o->domain);
    jraw(&j, ",\"tls\":%s", o->tls ? "true" : "false");
    jstr(&j, "mech", o->mech);
    jnum(&j, "procs", o->procs);
    bool ws = o->ws_path && o->ws_count > 0, mixed = ws && o->ws_count < o->unit_total;
    jstr(&j, "transport", !ws ? "tcp" : mixed ? "mixed" : "ws");
    if (ws) {
        jstr(&j, "ws_path", o->ws_path);
        jnum(&j, "ws_port", o->ws_port);
        jnum(&j, "ws_conns", (double)o->ws_count);
        jnum(&j, "tcp_conns", (double)(o->unit_total - o->ws_count));
        jnum(&j, "ws_ready", v[RF_ws_ready]);
    }
    if (h) {
        printf("onair-bench %s: %s:%d domain %s, %s%s, %u process%s\n", mode_name(o->mode), o->host,
               o->port, o->domain, o->mode == MODE_REGISTER || o->mode == MODE_PROBE ? "no SASL" : o->mech,
               o->tls ? (ws ? " over TLS (STARTTLS; wss)" : " over STARTTLS") : " plaintext", o->procs,
               o->procs > 1 ? "es" : "");
        if (ws)
            printf("  WebSocket: %lu of %lu connections over %s://%s:%d%s (RFC 7395), %s\n", o->ws_count,
                   o->unit_total, o->tls ? "wss" : "ws", o->host, o->ws_port, o->ws_path,
                   mixed ? "the others over TCP" : "none over TCP");
    }
    int exit_code = rc;
    const hist *lat = &r->lat;
    switch (o->mode) {
    case MODE_LOGIN: {
        double rate = v[RF_ok] / el;
        jnum(&j, "logins", v[RF_ok]);
        jnum(&j, "failures", v[RF_failed]);
        jnum(&j, "timeouts", v[RF_timeouts]);
        jnum(&j, "concurrency", (double)o->concurrency);
        jnum(&j, "users", (double)o->users);
        jnum(&j, "logins_per_s", rate);
        jnum(&j, "p50_ms", ms(hist_pct(lat, 0.5)));
        jnum(&j, "p90_ms", ms(hist_pct(lat, 0.9)));
        jnum(&j, "p99_ms", ms(hist_pct(lat, 0.99)));
        jnum(&j, "max_ms", ms(lat->max));
        if (o->warmup)
            jnum(&j, "warmup_s", v[RF_setup_s]);
        if (h) {
            if (o->warmup)
                printf("  warm-up: %.0f logins (%.0f failed) in %.1f s, not measured\n", v[RF_setup_ok],
                       v[RF_setup_failed], v[RF_setup_s]);
            printf("  logins: %.0f ok, %.0f failed (%.0f timeouts) in %.2f s = %.1f logins/s (%lu at once, %lu users)\n",
                   v[RF_ok], v[RF_failed], v[RF_timeouts], el, rate, o->concurrency, o->users);
            printf("  login latency: p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n",
                   ms(hist_pct(lat, 0.5)), ms(hist_pct(lat, 0.9)), ms(hist_pct(lat, 0.99)), ms(lat->max));
        }
        if (v[RF_ok] == 0)
            exit_code = exit_code ? exit_code : 1;
        break;
    }
    case MODE_IDLE: {
        double up = v[RF_setup_ok];
        double setup = v[RF_setup_s] > 0 ? v[RF_setup_s] : 1e-9;
        jnum(&j, "connections", (double)o->count);
        jnum(&j, "up", up);
        jnum(&j, "failures", v[RF_setup_failed]);
        jnum(&j, "dropped", v[RF_dropped]);
        jnum(&j, "setup_s", v[RF_setup_s]);
        jnum(&j, "conns_per_s", up / setup);
        jnum(&j, "hold_s", o->hold);
        if (h) {
            printf("  connections: %.0f of %lu up, %.0f failed, in %.2f s (%.1f/s); %.0f dropped while held\n",
                   up, o->count, v[RF_setup_failed], v[RF_setup_s], up / setup, v[RF_dropped]);
            printf("  connect+login latency: p50 %.2f ms  p99 %.2f ms  max %.2f ms\n", ms(hist_pct(lat, 0.5)),
                   ms(hist_pct(lat, 0.99)), ms(lat->max));
        }
        if (o->server_pid > 0) {
            double before = v[RF_rss_before_kib], after = v[RF_rss_after_kib];
            double per = up > 0 && before > 0 && after > 0 ? (after - before) / up : 0;
            jnum(&j, "server_pid", (double)o->server_pid);
            jnum(&j, "rss_before_kib", before);
            jnum(&j, "rss_after_kib", after);
            jnum(&j, "kib_per_conn", per);
            if (h)
                printf("  server RSS: %.0f KiB before, %.0f KiB with %.0f connections (after %.1f s) = %.2f KiB per connection\n",
                       before, after, up, o->settle, per);
        }
        if (up == 0)
            exit_code = exit_code ? exit_code : 1;
        break;
    }
    case MODE_MSGS: {
        double lost = v[RF_sent] - v[RF_received];
        double rate = v[RF_received_window] / el;
        jnum(&j, "pairs", v[RF_pairs]);
        jnum(&j, "rate_target", o->rate);
        jnum(&j, "window", o->window);
        jnum(&j, "body_bytes", o->body_size);
        jnum(&j, "sent", v[RF_sent]);
        jnum(&j, "received", v[RF_received]);
        jnum(&j, "lost", lost > 0 ? lost : 0);
        jnum(&j, "out_of_order", v[RF_out_of_order]);
        jnum(&j, "behind", v[RF_behind]);
        jnum(&j, "dropped", v[RF_dropped]);
        jnum(&j, "msgs_per_s", rate);
        jnum(&j, "send_per_s", v[RF_sent] / el);
        jnum(&j, "p50_ms", ms(hist_pct(lat, 0.5)));
        jnum(&j, "p90_ms", ms(hist_pct(lat, 0.9)));
        jnum(&j, "p99_ms", ms(hist_pct(lat, 0.99)));
        jnum(&j, "p999_ms", ms(hist_pct(lat, 0.999)));
        jnum(&j, "max_ms", ms(lat->max));
        if (h) {
            printf("  pairs: %.0f logged in (of %lu) in %.2f s\n", v[RF_pairs], o->pairs, v[RF_setup_s]);
            if (o->rate > 0)
                printf("  target %.0f msgs/s, window %u per pair", o->rate, o->window);
            else
                printf("  closed loop, window %u per pair", o->window);
            printf(", %.2f s: sent %.0f (%.0f/s), delivered %.0f in the window = %.1f msgs/s\n", el,
                   v[RF_sent], v[RF_sent] / el, v[RF_received_window], rate);
            printf("  lost %.0f, out of order %.0f, behind schedule %.0f, pair connections dropped %.0f\n",
                   lost > 0 ? lost : 0, v[RF_out_of_order], v[RF_behind], v[RF_dropped]);
            printf("  latency: p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms\n",
                   ms(hist_pct(lat, 0.5)), ms(hist_pct(lat, 0.9)), ms(hist_pct(lat, 0.99)),
                   ms(hist_pct(lat, 0.999)), ms(lat->max));
        }
        if (v[RF_received] == 0)
            exit_code = exit_code ? exit_code : 1;
        break;
    }
    case MODE_REGISTER: {
        double done = v[RF_ok] + v[RF_exists];
        jnum(&j, "registered", v[RF_ok]);
        jnum(&j, "exists", v[RF_exists]);
        jnum(&j, "failures", v[RF_failed]);
        jnum(&j, "regs_per_s", done / el);
        if (h)
            printf("  accounts: %.0f created, %.0f existed, %.0f failed of %lu in %.2f s (%.1f/s)\n",
                   v[RF_ok], v[RF_exists], v[RF_failed], o->count, el, done / el);
        if (done < (double)o->count)
            exit_code = exit_code ? exit_code : 1;
        break;
    }
    case MODE_MUC_JOIN: {
        double timed = v[RF_timed_joins];
        double span = v[RF_t_last_ns] > v[RF_t_first_ns] && v[RF_t_first_ns] > 0
                          ? (v[RF_t_last_ns] - v[RF_t_first_ns]) / 1e9
                          : 0;
        bool complete = timed > 0 && v[RF_ok] >= timed;
        /* complete: first join sent to last self-presence; else the cap */
        double seat_s = complete && span > 0 ? span : v[RF_elapsed_s];
        double clients = v[RF_setup_ok] > 0 ? v[RF_setup_ok] : 1;
        double jps = seat_s > 0 ? v[RF_ok] / seat_s : 0;
        jstr(&j, "room", o->room);
        jnum(&j, "clients", v[RF_setup_ok]);
        jnum(&j, "login_failures", v[RF_setup_failed]);
        jnum(&j, "joins", timed);
        jnum(&j, "seated", v[RF_ok]);
        jnum(&j, "occupants", v[RF_ok] + v[RF_occupants]);
        jnum(&j, "failures", v[RF_failed]);
        jnum(&j, "unseated", v[RF_unseated]);
        jraw(&j, ",\"complete\":%s", complete ? "true" : "false");
        jnum(&j, "join_conc", (double)o->join_conc);
        jnum(&j, "seat_s", seat_s);
        jnum(&j, "joins_per_s", jps);
        jnum(&j, "p50_ms", ms(hist_pct(lat, 0.5)));
        jnum(&j, "p90_ms", ms(hist_pct(lat, 0.9)));
        jnum(&j, "p99_ms", ms(hist_pct(lat, 0.99)));
        jnum(&j, "max_ms", ms(lat->max));
        jnum(&j, "presences_per_client", v[RF_presences] / clients);
        jnum(&j, "presences_max", v[RF_presences_max]);
        jnum(&j, "setup_s", v[RF_setup_s]);
        if (h) {
            printf("  room %s: %.0f clients logged in (%.0f failed) and occupant 0 joined in %.2f s (setup)\n",
                   o->room, v[RF_setup_ok], v[RF_setup_failed], v[RF_setup_s]);
            if (v[RF_attempted] == 0)
                printf("  no join measured: occupant 0 could not open the room (see the first failure)\n");
            else
                printf("  seated %.0f of %.0f joins (%.0f refused, %.0f unanswered) in %.3f s = %.1f joins/s%s\n",
                       v[RF_ok], timed, v[RF_failed], v[RF_unseated], seat_s, jps,
                       complete ? "" : " - NOT COMPLETE (cap or failures)");
            printf("  join latency: p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n", ms(hist_pct(lat, 0.5)),
                   ms(hist_pct(lat, 0.9)), ms(hist_pct(lat, 0.99)), ms(lat->max));
            printf("  presence stanzas received: %.2f per client on average, %.0f at most (%.0f in all)\n",
                   v[RF_presences] / clients, v[RF_presences_max], v[RF_presences]);
        }
        if (o->server_pid > 0) {
            double before = v[RF_rss_before_kib], after = v[RF_rss_after_kib];
            double per = v[RF_ok] > 0 && before > 0 && after > 0 ? (after - before) / v[RF_ok] : 0;
            jnum(&j, "server_pid", (double)o->server_pid);
            jnum(&j, "rss_before_kib", before);
            jnum(&j, "rss_after_kib", after);
            jnum(&j, "kib_per_occupant", per);
            /* the whole session: login, stream and seat (the opener too) */
            double start = v[RF_rss_start_kib], seated = v[RF_ok] + v[RF_occupants];
            double per_session = seated > 0 && start > 0 && after > 0 ? (after - start) / seated : 0;
            jnum(&j, "rss_start_kib", start);
            jnum(&j, "kib_per_session", per_session);
            if (h) {
                printf("  server RSS: %.0f KiB before, %.0f KiB %.1f s after seating = %.2f KiB per seated occupant\n",
                       before, after, o->settle, per);
                printf("  server RSS before any login: %.0f KiB = %.2f KiB per seated session (login, stream, seat)\n",
                       start, per_session);
            }
        }
        if (v[RF_ok] == 0)
            exit_code = exit_code ? exit_code : 1;
        break;
    }
    case MODE_MUC_FANOUT: {
        double occ = v[RF_occupants];
        double expected = v[RF_sent] * occ;
        double lost = expected - v[RF_received];
        double rate = v[RF_received_window] / el;
        jstr(&j, "room", o->room);
        jnum(&j, "occupants", occ);
        jnum(&j, "senders", v[RF_senders]);
        jnum(&j, "timed_receivers", v[RF_probes]);
        jnum(&j, "rate_target", o->rate);
        jnum(&j, "window", o->window_set ? o->window : o->rate > 0 ? 1000 : 1);
        jnum(&j, "body_bytes", o->body_size);
        jnum(&j, "sent", v[RF_sent]);
        jnum(&j, "received", v[RF_received]);
        jnum(&j, "expected", expected);
        jnum(&j, "lost", lost > 0 ? lost : 0);
        jnum(&j, "msg_errors", v[RF_msg_errors]);
        jnum(&j, "behind", v[RF_behind]);
        jnum(&j, "dropped", v[RF_dropped]);
        jnum(&j, "deliveries_per_s", rate);
        jnum(&j, "msgs_per_s", v[RF_sent] / el);
        jnum(&j, "p50_ms", ms(hist_pct(lat, 0.5)));
        jnum(&j, "p90_ms", ms(hist_pct(lat, 0.9)));
        jnum(&j, "p99_ms", ms(hist_pct(lat, 0.99)));
        jnum(&j, "p999_ms", ms(hist_pct(lat, 0.999)));
        jnum(&j, "max_ms", ms(lat->max));
        jnum(&j, "setup_s", v[RF_setup_s]);
        if (h) {
            printf("  room %s: %.0f occupants seated (of %lu; %.0f setup failures) in %.2f s, %.0f senders\n",
                   o->room, occ, o->count, v[RF_setup_failed], v[RF_setup_s], v[RF_senders]);
            if (v[RF_probes] < occ)
                printf("  %.0f occupants time deliveries as they arrive; the others are read after the window\n",
                       v[RF_probes]);
            if (o->rate > 0)
                printf("  paced at %.1f msgs/s in total", o->rate);
            else
                printf("  closed loop, %u in flight per sender", o->window_set ? o->window : 1);
            printf(", %.2f s: sent %.0f (%.1f/s), delivered %.0f in the window = %.1f deliveries/s\n", el,
                   v[RF_sent], v[RF_sent] / el, v[RF_received_window], rate);
            printf("  lost %.0f of %.0f expected (after the drain), %.0f refused, behind schedule %.0f, occupants dropped %.0f\n",
                   lost > 0 ? lost : 0, expected, v[RF_msg_errors], v[RF_behind], v[RF_dropped]);
            printf("  delivery latency: p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms\n",
                   ms(hist_pct(lat, 0.5)), ms(hist_pct(lat, 0.9)), ms(hist_pct(lat, 0.99)),
                   ms(hist_pct(lat, 0.999)), ms(lat->max));
        }
        if (v[RF_received] == 0)
            exit_code = exit_code ? exit_code : 1;
        break;
    }
    case MODE_PROBE:
        jnum(&j, "ok", v[RF_ok]);
        jnum(&j, "connect_ms", ms(lat->max));
        if (h)
            printf("  %s (%.2f ms)\n", v[RF_ok] > 0 ? "server answers" : "no answer", ms(lat->max));
        if (v[RF_ok] == 0)
            exit_code = exit_code ? exit_code : 1;
        break;
    }
    if (ws && o->mode != MODE_REGISTER && o->mode != MODE_PROBE) {
        /* the latency figures above, by the transport of the connection timed */
        static const char *const tname[2] = {"tcp", "ws"};
        const hist *th[2] = {&r->lat_tcp, &r->lat_ws};
        for (int t = 0; t < 2; t++) {
            char key[32];
            snprintf(key, sizeof key, "%s_samples", tname[t]);
            jnum(&j, key, (double)th[t]->count);
            snprintf(key, sizeof key, "%s_p50_ms", tname[t]);
            jnum(&j, key, ms(hist_pct(th[t], 0.5)));
            snprintf(key, sizeof key, "%s_p99_ms", tname[t]);
            jnum(&j, key, ms(hist_pct(th[t], 0.99)));
            snprintf(key, sizeof key, "%s_max_ms", tname[t]);
            jnum(&j, key, ms(th[t]->max));
        }
        if (o->mode == MODE_MUC_FANOUT) {
            jnum(&j, "ws_occupants", v[RF_occupants_ws]);
            jnum(&j, "tcp_occupants", v[RF_occupants] - v[RF_occupants_ws]);
            jnum(&j, "ws_timed_receivers", v[RF_probes_ws]);
            jnum(&j, "tcp_timed_receivers", v[RF_probes] - v[RF_probes_ws]);
        }
        if (h) {
            if (o->mode == MODE_MUC_FANOUT)
                printf("  occupants: %.0f over WebSocket (%.0f timing), %.0f over TCP (%.0f timing)\n",
                       v[RF_occupants_ws], v[RF_probes_ws], v[RF_occupants] - v[RF_occupants_ws],
                       v[RF_probes] - v[RF_probes_ws]);
            for (int t = 1; t >= 0; t--)
                printf("  %s: %llu timed, p50 %.3f ms  p99 %.3f ms  max %.3f ms\n", t ? "WebSocket" : "TCP      ",
                       (unsigned long long)th[t]->count, ms(hist_pct(th[t], 0.5)), ms(hist_pct(th[t], 0.99)),
                       ms(th[t]->max));
        }
    }
    double cpu = v[RF_cpu_s];
    jnum(&j, "elapsed_s", v[RF_elapsed_s]);
    jnum(&j, "tool_cpu_s", cpu);
    jnum(&j, "tool_cpu_pct", v[RF_elapsed_s] > 0 ? 100.0 * cpu / v[RF_elapsed_s] : 0);
    jnum(&j, "tool_cpu_total_s", v[RF_cpu_total_s]);
    double scpu = v[RF_server_cpu_s];
    double work = o->mode == MODE_LOGIN || o->mode == MODE_MUC_JOIN                ? v[RF_ok]
                  : o->mode == MODE_MSGS || o->mode == MODE_MUC_FANOUT ? v[RF_received_window]
                                                                         : 0;
    if (o->server_pid > 0) {
        jnum(&j, "server_cpu_s", scpu);
        jnum(&j, "server_cpu_pct", v[RF_elapsed_s] > 0 ? 100.0 * scpu / v[RF_elapsed_s] : 0);
        /* Work per second of server CPU: the server's capacity on one core
         * even when the tool, not the server, limited the rate. */
        if (work > 0 && scpu > 0)
            jnum(&j, "per_server_cpu_s", work / scpu);
    }
    /* CPU used on the machine by anything but the tool and the server:
     * other work distorts the figures. */
    double other = v[RF_machine_busy_s] - cpu - scpu;
    if (v[RF_machine_busy_s] > 0 && o->server_pid > 0)
        jnum(&j, "other_cpu_pct", v[RF_elapsed_s] > 0 && other > 0 ? 100.0 * other / v[RF_elapsed_s] : 0);
    if (r->first_err[0])
        jstr(&j, "first_error", r->first_err);
    jnum(&j, "exit", exit_code);
    jraw(&j, "}");
    if (h) {
        double pct = v[RF_elapsed_s] > 0 ? 100.0 * cpu / v[RF_elapsed_s] : 0;
        printf("  tool CPU: %.2f s in the measured %.2f s = %.0f%% of one core (%.2f s in all)%s\n", cpu,
               v[RF_elapsed_s], pct, v[RF_cpu_total_s],
               pct > 85.0 * o->procs && v[RF_elapsed_s] > 0.5 ? " - the tool may be the bottleneck" : "");
        if (o->server_pid > 0 && o->mode != MODE_IDLE) {
            printf("  server CPU: %.2f s in the measured %.2f s = %.0f%% of one core", scpu, v[RF_elapsed_s],
                   v[RF_elapsed_s] > 0 ? 100.0 * scpu / v[RF_elapsed_s] : 0);
            if (work > 0 && scpu > 0)
                printf(" (%.0f %s per server CPU second)", work / scpu,
                       o->mode == MODE_LOGIN      ? "logins"
                       : o->mode == MODE_MUC_JOIN ? "joins"
                       : o->mode == MODE_MSGS     ? "messages"
                                                  : "deliveries");
            printf("\n");
        }
        if (o->server_pid > 0 && v[RF_machine_busy_s] > 0 && v[RF_elapsed_s] > 0 &&
            100.0 * other / v[RF_elapsed_s] > 10)
            printf("  WARNING: other processes used %.0f%% of a core during the run\n",
                   100.0 * other / v[RF_elapsed_s]);
        if (r->first_err[0])
            printf("  first failure: %s\n", r->first_err);
    }
    printf("%s\n", j.s);
    fflush(stdout);
    return exit_code;
}

int main(int argc, char **argv)
{
    bench_opts o;
    memset(&o, 0, sizeof o);
    int p = parse_opts(argc, argv, &o);
    if (p != 0) {
        free(o.password_buf);
        free(o.room_buf);
        return p > 0 ? 0 : 2;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(&o);
    result *r = calloc(1, sizeof *r);
    if (!r) {
        free(o.password_buf);
        return 1;
    }
    int rc = o.procs > 1 ? run_procs(&o, r) : bench_run(&o, -1, -1, r);
    rc = report(&o, r, rc);
    free(r);
    free(o.password_buf);
    free(o.room_buf);
    return rc;
}
