/* bench.h - onair-bench: a load generator for any XMPP server.
 *
 * One process (or K forked generator processes with --procs), one libuv loop
 * per process, no threads.  Each client connection (conn.c) runs the whole
 * client side of RFC 6120 itself: stream, optional STARTTLS (OpenSSL over
 * memory BIOs), SASL (GNU SASL in client mode, sasl.c), resource binding and
 * the legacy session when a server requires it.  Responses are parsed with
 * expat.  The modes (modes.c; the chat room modes in muc.c) drive many
 * connections and count what happens; main.c parses options, forks
 * generators and prints the report.
 *
 * A connection runs over TCP (the XMPP stream as one XML document on the
 * socket, RFC 6120) or over WebSocket (ws.c: an HTTP/1.1 upgrade, then one
 * XML element per text message, RFC 7395, framed with libwslay); with
 * --ws-share some of the connections of one run use each.
 *
 * Ownership: the bench struct owns every conn (a doubly linked list); a conn
 * owns its SSL object, expat parser, SASL session, WebSocket context and
 * buffers and is freed only in its libuv close callback.  There is no global
 * mutable state.
 */
#ifndef ONAIR_BENCH_H
#define ONAIR_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <expat.h>
#include <gsasl.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "proc_stat.h"

/* ---- options ------------------------------------------------------------ */

typedef enum bench_mode {
    MODE_LOGIN,
    MODE_IDLE,
    MODE_MSGS,
    MODE_REGISTER,
    MODE_PROBE,
    MODE_MUC_JOIN,
    MODE_MUC_FANOUT,
} bench_mode;

#define IS_MUC(m) ((m) == MODE_MUC_JOIN || (m) == MODE_MUC_FANOUT)

typedef struct bench_opts {
    bench_mode mode;
    const char *host;
    int port;
    const char *domain;
    const char *prefix;        /* users are <prefix><n>, n = offset+1 .. */
    unsigned long user_offset;
    const char *password;      /* borrowed from argv or password_buf */
    char *password_buf;        /* owned: read from --password-file */
    unsigned long count;       /* logins, idle connections, registrations */
    unsigned long users;       /* distinct accounts (login/idle cycle them) */
    unsigned long concurrency; /* connections negotiating at once */
    unsigned long pairs;       /* msgs: sender/receiver pairs */
    bool tls;
    bool presence;             /* send initial presence after bind */
    bool warmup;               /* login: an untimed pass over the users first */
    bool quiet;                /* JSON line only */
    bool trace;                /* print XML sent and received to stderr */
    char mech[32];
    double duration;           /* seconds: msgs run; cap of login runs */
    double timeout;            /* seconds a connection may take per step */
    double setup_timeout;      /* seconds the setup phase may take */
    double hold;               /* idle: seconds to hold after measuring */
    double settle;             /* idle: seconds between all-up and RSS read */
    double rate;               /* msgs: total msgs/s, 0 = closed loop */
    unsigned window;           /* msgs: in-flight messages per pair; muc-fanout: per sender */
    bool window_set;
    unsigned body_size;        /* msgs: body bytes (timestamp + padding) */
    unsigned src_addrs;        /* source addresses 127.0.0.2.., 0 = auto */
    unsigned src_first;        /* first source address index (procs split) */
    unsigned procs;
    long server_pid;
    const char *scram_cache;   /* file of salted passwords, or NULL */
    const char *label;
    /* chat room modes (muc.c) */
    const char *room;          /* room JID */
    char *room_buf;            /* owned: the default room JID */
    const char *nick;          /* nick prefix: occupant i is <nick><i> */
    const char *room_password; /* or NULL */
    int history;               /* maxstanzas asked for on joining; -1: none */
    unsigned long senders;     /* muc-fanout: occupants that send */
    unsigned long join_conc;   /* muc-join: joins in flight at once, 0 = all */
    unsigned long sample;      /* muc-fanout: occupants timing on arrival, 0 = all */
    unsigned long muc_total;   /* occupants over all generators */
    unsigned long muc_first;   /* global index of this generator's first */
    /* WebSocket (ws.c): connection g of unit_total (over all generators) is
     * a WebSocket one when bench_unit_is_ws(o, g) */
    const char *ws_path;       /* --ws PATH, or NULL: TCP only */
    int ws_port;               /* HTTP port of the WebSocket endpoint */
    double ws_share;           /* --ws-share: fraction (< 1 or with a '.') or count */
    bool ws_share_is_count;
    unsigned long ws_count;    /* WebSocket connections of unit_total */
    unsigned long unit_total;  /* connections the run is about, over all generators */
    unsigned long unit_first;  /* global index of this generator's first */
    unsigned rcvbuf;           /* SO_RCVBUF of every socket, 0 = the kernel's */
} bench_opts;

/* Whether global connection g is a WebSocket one: the ws_count of
 * unit_total are spread evenly (g is one when floor((g+1)W/T) > floor(gW/T)). */
bool bench_unit_is_ws(const bench_opts *o, unsigned long g);
/* Its rank among the connections of its own transport. */
unsigned long bench_unit_rank(const bench_opts *o, unsigned long g);

/* ---- histogram (log-linear, <= 1.6% relative error) --------------------- */

#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64 - HIST_SUB_BITS) * HIST_SUB + HIST_SUB)

typedef struct hist {
    uint64_t count, min, max;
    uint64_t b[HIST_BUCKETS];
} hist;

void hist_add(hist *h, uint64_t v);
void hist_merge(hist *into, const hist *from);
uint64_t hist_pct(const hist *h, double p); /* p in [0,1]; 0 if empty */

/* ---- results ------------------------------------------------------------ */

/* name, aggregation over generator processes (0 = sum, 1 = max, 2 = min of
 * the values above 0) */
#define RESULT_FIELDS(X)                                                      \
    X(attempted, 0) X(ok, 0) X(failed, 0) X(timeouts, 0) X(exists, 0)         \
    X(dropped, 0) X(sent, 0) X(received, 0) X(received_window, 0)             \
    X(out_of_order, 0) X(behind, 0) X(pairs, 0) X(setup_ok, 0)                \
    X(setup_failed, 0) X(setup_s, 1) X(elapsed_s, 1) X(cpu_s, 0)              \
    X(cpu_total_s, 0) X(rss_before_kib, 1) X(rss_after_kib, 1) X(server_cpu_s, 1)    \
    X(machine_busy_s, 1) X(occupants, 0) X(senders, 0) X(presences, 0)        \
    X(presences_max, 1) X(t_first_ns, 2) X(t_last_ns, 1) X(unseated, 0)        \
    X(msg_errors, 0) X(timed_joins, 0) X(probes, 0) X(ws_ready, 0)          \
    X(probes_ws, 0) X(occupants_ws, 0) X(rss_start_kib, 1)

enum {
#define RF_ENUM(n, a) RF_##n,
    RESULT_FIELDS(RF_ENUM)
#undef RF_ENUM
    RF_COUNT
};

typedef struct result {
    double v[RF_COUNT];
    hist lat;            /* login latency or message latency, ns */
    hist lat_tcp, lat_ws; /* the same, by the transport of the connection timed */
    char first_err[200]; /* the first failure seen, for the report */
} result;

extern const char *const result_names[RF_COUNT];
extern const int result_agg[RF_COUNT];

void result_note_error(result *r, const char *msg);
/* Writes the result as protocol lines ("R ...", "H ...", "E ...") to fd. */
int result_write(int fd, const result *r);
/* Merges one protocol line into r; returns 0, or -1 for an unknown line. */
int result_merge_line(result *r, const char *line);

/* ---- SCRAM salted-password cache (sasl.c) ------------------------------- */

typedef struct scram_entry {
    char *key; /* "<hash bytes>:<iterations>:<salt base64>", owned */
    char *hex; /* hex SaltedPassword, owned */
} scram_entry;

typedef struct scram_cache {
    scram_entry *slots;
    size_t cap, len;
    char pwfp[17];  /* fingerprint of the password the entries belong to */
    int append_fd;  /* --scram-cache file opened O_APPEND, or -1 */
    uint64_t hits, misses;
} scram_cache;

/* ---- connections (conn.c) ----------------------------------------------- */

typedef enum conn_state {
    CS_CONNECTING,
    CS_UPGRADE,   /* WebSocket: HTTP upgrade sent, waiting for 101 */
    CS_STREAM,    /* stream header sent, waiting for features */
    CS_STARTTLS,  /* <starttls/> sent, waiting for <proceed/> */
    CS_HANDSHAKE, /* TLS handshake under way */
    CS_SASL,      /* <auth/> sent */
    CS_BIND,      /* bind iq sent */
    CS_SESSION,   /* session iq sent */
    CS_READY,     /* authenticated and bound (or unauthenticated: register) */
    CS_CLOSING,   /* </stream:stream> sent, waiting for the server's end */
    CS_DONE,      /* handle closing; the conn is freed in the close callback */
} conn_state;

typedef struct obuf {
    char *p;
    size_t len, off, cap;
} obuf;

typedef struct bench bench;
struct wslay_event_context;

typedef struct conn {
    uv_tcp_t tcp; /* tcp.data points back to the conn */
    uv_connect_t creq;
    uv_write_t wreq;
    bench *b;
    struct conn *prev, *next;   /* bench's list of live conns */
    struct conn *flush_next;    /* bench's list of conns with output */
    unsigned long user;         /* account number */
    unsigned long idx;          /* mode-specific (pair index) */
    int role;                   /* mode-specific (0 sender, 1 receiver) */
    int phase;                  /* phase the conn was started in */
    conn_state state;
    bool in_flush, writing, in_parse, want_auth, sasl_done, tls_on;
    bool restart_tls, restart_stream, was_ready, counted, timed_out;
    bool scram_miss, scram_checked, session_required, reg_pending, read_paused;
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    XML_Parser xp;
    Gsasl_session *sasl;
    obuf out, wbuf; /* out: being filled; wbuf: handed to uv_write */
    int depth, top, sub;
    unsigned feat;
    bool collect;
    char *text;
    size_t text_len, text_cap;
    char iq_id[24];
    int iq_type;
    char cond[48]; /* error condition of a failure/stream error/iq error */
    char *jid;     /* bound full JID, owned */
    uint64_t t_start, deadline;
    /* the presence being parsed (handed to mode_conn_presence) */
    int pres_type;       /* PRES_* */
    unsigned muc_status; /* MUC_STATUS_* codes seen in its muc#user <x/> */
    char from[200];      /* its from, empty when longer */
    /* WebSocket (ws.c) */
    bool ws;                         /* this connection speaks RFC 7395 */
    bool in_ws_recv;                 /* inside wslay_event_recv */
    struct wslay_event_context *wsx; /* owned; from the 101 answer on */
    char *http;                      /* owned: the upgrade answer so far */
    size_t http_len;
    char ws_accept[32];              /* the Sec-WebSocket-Accept expected */
    const unsigned char *ws_in;      /* input being handed to wslay */
    size_t ws_in_len;
} conn;

enum { PRES_AVAILABLE, PRES_UNAVAILABLE, PRES_ERROR, PRES_OTHER };
enum { MUC_STATUS_SELF = 1, MUC_STATUS_CREATED = 2 }; /* codes 110, 201 */

/* ---- message pairs (msgs mode) ------------------------------------------ */

typedef struct pair {
    conn *a, *b; /* sender, receiver; NULL once closed */
    char *to; /* receiver's full JID, XML-escaped, owned */
    uint64_t sent, received, expect;
    bool up_a, up_b, live;
} pair;

/* ---- the bench: everything one generator process owns -------------------- */

enum { PH_SETUP, PH_WAIT_GO, PH_RUN, PH_DRAIN, PH_CLOSING, PH_END };

#define XML_POOL_MAX 256

struct bench {
    uv_loop_t loop;
    const bench_opts *o;
    SSL_CTX *ssl_ctx;
    Gsasl *gsasl;
    scram_cache cache;
    struct sockaddr_storage dst, dst_ws; /* c2s port; HTTP port (WebSocket) */
    bool src_loopback;   /* bind source addresses 127.0.0.x */
    unsigned src_count, src_next;
    char rbuf[65536];    /* shared read buffer (callbacks never overlap) */
    char plain[65536];   /* shared TLS plaintext buffer */
    conn *conns;         /* all live conns */
    unsigned long nconns;
    conn *flush_head;
    uv_check_t check;
    uv_timer_t sweep, pace, phase_timer;
    uv_signal_t sigint, sigterm;
    uv_pipe_t ctl;       /* child: "GO" from the parent */
    bool ctl_open, handles_closed, stop_sending, gave_up;
    int ctl_fd, res_fd;  /* -1 when running alone; bench_run owns ctl_fd */
    bool ctl_fd_owned;   /* ctl_fd not (yet) handed to the ctl pipe handle */
    char ctl_line[16];
    size_t ctl_len;
    int phase;
    int exit_code;
    uint64_t t_setup, t_go, t_end, t_last_ok;
    struct rusage ru_go;
    unsigned long launched, active, done, up, target;
    unsigned long next_reg;
    XML_Parser xml_pool[XML_POOL_MAX]; /* idle parsers for new conns */
    unsigned npool;
    unsigned long xml_salt;
    long srv_ticks_go;                 /* server CPU ticks at GO, -1 unknown */
    long machine_ticks_go;             /* busy ticks of all CPUs at GO */
    pair *pairs;
    unsigned long npairs, rr;
    struct muc_state *muc; /* chat room modes, owned (muc.c) */
    result res;
};

/* conn.c */
int conn_start(bench *b, unsigned long user, bool want_auth, int phase, bool ws, conn **out);
/* Sends one top-level element (or the stream header / end on TCP): over
 * WebSocket each call is one message, so callers never split or join
 * elements. */
void conn_send(conn *c, const char *data, size_t len);
/* Bytes on the wire below the WebSocket framing (through TLS when on). */
void conn_send_raw(conn *c, const char *data, size_t len);
/* --trace: XML sent ('>') or received ('<') to stderr. */
void conn_trace(conn *c, char dir, const char *data, size_t len);
/* XML of the stream arrived (after TLS and WebSocket framing). */
void conn_feed(conn *c, const char *p, size_t n);
/* WebSocket: the upgrade is done; open the XMPP stream. */
void conn_ws_open(conn *c);
/* The server ended its stream (</stream:stream> or <close/>). */
void conn_server_end(conn *c);
void conn_sendf(conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void conn_close_graceful(conn *c);
/* Stops / restarts reading the socket: what the server sends meanwhile
 * waits in the kernel's receive buffer. */
void conn_read_pause(conn *c);
void conn_read_resume(conn *c);
void conn_kill(conn *c); /* close the socket now, without a stream close */
void conn_abort(conn *c, bool timed_out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void conn_flush_pending(bench *b);
void conn_sweep(bench *b, uint64_t now);
size_t xml_escape(char *dst, size_t cap, const char *src);
void conn_pool_free(bench *b); /* frees the pooled expat parsers */

/* ws.c: RFC 6455 client framing with libwslay, RFC 7395 on top */
void ws_begin(conn *c);                             /* sends the HTTP upgrade */
void ws_input(conn *c, const char *p, size_t n);    /* bytes from the socket (after TLS) */
void ws_send_text(conn *c, const char *p, size_t n); /* one text message */
void ws_send_close(conn *c, unsigned short code);   /* the close frame */
void ws_free(conn *c);

/* sasl.c */
int sasl_init(bench *b);
void sasl_done(bench *b);
/* Starts SASL on c with the configured mechanism; returns GSASL_OK and fills
 * *out (owned by the caller, gsasl_free) with the base64 initial response;
 * *complete tells whether the mechanism needs no further step (PLAIN). */
int sasl_begin(conn *c, char **out, bool *complete);
/* One step with the server's base64 data; returns a GSASL code. */
int sasl_step(conn *c, const char *in, char **out);

/* modes.c: callbacks from conn.c and the phase machinery */
void bench_lat_add(bench *b, const conn *c, uint64_t ns); /* all, and by transport */
void mode_conn_ready(conn *c);
void mode_conn_message(conn *c, const char *body, size_t len);
void mode_conn_message_error(conn *c, const char *cond);
void mode_conn_presence(conn *c); /* c->pres_type, c->muc_status, c->from, c->cond */
/* answers to iqs whose id starts "muc" (chat room modes) and registrations */
void mode_conn_iq(conn *c, bool ok, const char *cond);
void mode_conn_closed(conn *c);
/* The phase machinery, for muc.c. */
void bench_check_progress(bench *b);
void bench_mark_end(bench *b);
void bench_measured_done(bench *b);

/* muc.c: the chat room modes, called from modes.c at the same points as
 * the other modes. */
int muc_init(bench *b);
void muc_free(bench *b);
void muc_conn_ready(conn *c);
void muc_conn_presence(conn *c);
void muc_conn_message(conn *c, const char *body, size_t len);
void muc_conn_message_error(conn *c, const char *cond);
void muc_conn_iq(conn *c, bool ok, const char *cond);
void muc_conn_closed(conn *c);
bool muc_setup_pending(bench *b); /* setup joins still unanswered */
int muc_setup_finish(bench *b);   /* -1: nothing to measure */
void muc_go(bench *b);
/* Senders among the global occupants [lo, hi) of n when s of them send. */
unsigned long muc_senders_between(unsigned long n, unsigned long s, unsigned long lo, unsigned long hi);
/* Runs one generator.  ctl_fd (closed by bench_run) carries "GO" from the
 * parent and res_fd takes "READY" and the result lines; both -1 alone. */
int bench_run(const bench_opts *o, int ctl_fd, int res_fd, result *out);

/* main.c helpers shared with modes.c (and read_cpu_ticks, proc_stat.h) */
long read_vmrss_kib(long pid);
long read_machine_busy_ticks(void); /* all CPUs, non-idle, from /proc/stat */
double ticks_to_s(long ticks);
double ns_to_s(uint64_t ns);

#endif
