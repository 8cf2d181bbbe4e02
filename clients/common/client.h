/* client.h - the XMPP connection shared by onair-cast and onair-watch.
 *
 * One libstrophe connection per program: options (server, JID, password
 * source, TLS trust), connecting with STARTTLS (or direct TLS) and
 * certificate verification, synchronous IQ round trips, stanza errors as
 * text, and the exit codes both programs document.  Everything runs on
 * libstrophe's own loop, driven by client_run_once().
 */
#ifndef ONAIR_CLIENT_H
#define ONAIR_CLIENT_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <strophe.h>

/* Exit codes of both programs (their --help lists them). */
enum {
    EXIT_OK = 0,
    EXIT_REFUSED = 1,  /* the server refused the request (its error is printed) */
    EXIT_USAGE = 2,    /* bad command line, or a required input is missing */
    EXIT_CONNECT = 3,  /* cannot connect, TLS not trusted, or login refused */
    EXIT_PROTOCOL = 4, /* no answer in time, or an answer the client cannot read */
    EXIT_MEDIA = 5,    /* the stream failed (negotiation answer unusable, ffmpeg failed) */
};

typedef struct client_options {
    const char *jid;            /* account JID; NULL with guest */
    bool guest;                 /* SASL ANONYMOUS on guest_domain */
    const char *guest_domain;   /* NULL: guest.<domain> */
    const char *domain;         /* the server's domain when no JID gives it */
    const char *server;         /* HOST or HOST:PORT to connect to; NULL: the JID's domain */
    bool direct_tls;            /* TLS from the first byte (port 5223) instead of STARTTLS */
    const char *cafile;         /* PEM file of CAs (or the server's self-signed certificate) to trust */
    bool insecure;              /* accept any certificate (tests and demos only) */
    const char *password_file;  /* "-" = the first line of stdin */
    int timeout_s;              /* bound on connecting and on each request */
    int verbose;                /* 1: progress, 2: libstrophe debug (stanzas, never passwords) */
} client_options;

/* Long options every program accepts; their ids are >= CLIENT_OPT_BASE. */
#define CLIENT_OPT_BASE 1000
#define CLIENT_LONG_OPTIONS                                                                    \
    {"jid", required_argument, NULL, CLIENT_OPT_BASE + 0},                                     \
        {"password-file", required_argument, NULL, CLIENT_OPT_BASE + 1},                       \
        {"server", required_argument, NULL, CLIENT_OPT_BASE + 2},                              \
        {"direct-tls", no_argument, NULL, CLIENT_OPT_BASE + 3},                                \
        {"cafile", required_argument, NULL, CLIENT_OPT_BASE + 4},                              \
        {"insecure", no_argument, NULL, CLIENT_OPT_BASE + 5},                                  \
        {"timeout", required_argument, NULL, CLIENT_OPT_BASE + 6},                             \
        {"verbose", no_argument, NULL, 'v'}, {"guest", no_argument, NULL, CLIENT_OPT_BASE + 7}, \
        {"guest-domain", required_argument, NULL, CLIENT_OPT_BASE + 8},                        \
        {"domain", required_argument, NULL, CLIENT_OPT_BASE + 9}

/* The help text of those options (guest ones only when with_guest). */
void client_options_help(FILE *out, bool with_guest);

/* Defaults from the environment (ONAIR_JID, ONAIR_SERVER, ONAIR_CAFILE,
 * ONAIR_PASSWORD_FILE). */
void client_options_init(client_options *o);

/* Handles one getopt_long result if it is a common option: returns 1 if
 * handled, 0 if not one of ours, -1 on a bad value (message printed). */
int client_options_parse(client_options *o, int opt, const char *arg);

/* Checks the combination (a JID or a guest; a readable CA file) and prints
 * what is wrong; returns EXIT_OK or EXIT_USAGE. */
int client_options_check(const client_options *o);

typedef struct client client;

/* Connects and logs in, running the loop until the session is bound or it
 * failed (bounded by o->timeout_s).  password is borrowed for the call (NULL
 * for guests).  On failure prints why on stderr, sets *c to NULL and returns
 * EXIT_CONNECT (or EXIT_USAGE for an unusable option); on success *c is
 * owned by the caller (client_free). */
int client_connect(client **c, const client_options *o, const char *password, const char *progname);

/* Runs libstrophe's loop for at most timeout_ms. */
void client_run_once(client *c, unsigned long timeout_ms);
/* False once the connection has ended (by either side). */
bool client_is_connected(const client *c);
/* Sends a stanza (borrowed; the caller still releases it). */
void client_send(client *c, xmpp_stanza_t *stanza);
/* Sends an IQ (borrowed; an id is set if it has none) and runs the loop until
 * its answer, the end of the connection or timeout_ms.  Returns the answer
 * (owned by the caller: xmpp_stanza_release) or NULL (*why says what
 * happened: "no answer within N s" or "the connection closed"). */
xmpp_stanza_t *client_request(client *c, xmpp_stanza_t *iq, int timeout_ms, const char **why);
/* A fresh id for a stanza, unique in this connection: "<prefix>-<n>". */
const char *client_next_id(client *c, const char *prefix, char buf[64]);
/* Closes the stream and waits (briefly) for the server's close; idempotent. */
void client_disconnect(client *c);
void client_free(client *c);

xmpp_ctx_t *client_ctx(client *c);
xmpp_conn_t *client_conn(client *c);
const char *client_bound_jid(const client *c);
/* The server's domain (the JID's, or the guest domain's parent). */
const char *client_domain(const client *c);
int client_timeout_ms(const client *c);
/* The host the connection went to (from --server, or the domain). */
const char *client_server_host(const client *c);

/* A stanza error, read from a stanza of type error. */
typedef struct stanza_error {
    char type[16];       /* cancel, modify, auth, wait, continue */
    char condition[48];  /* RFC 6120 defined condition */
    char app[48];        /* application-specific condition (e.g. bad-payload), or "" */
    char text[1024];     /* the server's text, or "" */
    char field[64];      /* the field the text names ("<var>: <reason>"), or "" */
    const char *reason;  /* in text: after "<field>: ", else the whole text */
} stanza_error;

/* Fills e from stanza's <error/>; returns false if it has none. */
bool stanza_error_read(xmpp_stanza_t *stanza, stanza_error *e);

/* The text of the first child called name (borrowed from the stanza), or NULL. */
const char *stanza_child_text(xmpp_stanza_t *stanza, const char *name, char *buf, size_t len);

#endif
