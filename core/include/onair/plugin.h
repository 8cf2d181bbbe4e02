/* onair/plugin.h - the plugin interface of onaird.
 *
 * This is the only header a plugin includes.  It depends on standard C
 * headers only, and a plugin links against nothing of onaird: everything
 * it may call arrives as function pointers in an onair_host_api, together
 * with an opaque onair_host handle that identifies the plugin to the host.
 * The full contract (events, threading, configuration, a walkthrough) is
 * in specs/plugin-api.md.
 *
 * A plugin is a shared object <plugins.dir>/<name>/<name>.so that exports
 * one function:
 *
 *     const onair_plugin_info *onair_plugin_entry(void);
 *
 * returning a pointer to a static descriptor (the host never frees it and
 * reads it for as long as the plugin is loaded):
 *
 *     static int init(onair_host *h, const onair_host_api *api, void **state);
 *     static void shutdown(void *state);
 *     static const onair_plugin_info info = {
 *         .abi = ONAIR_PLUGIN_ABI, .name = "hello", .version = "1.0",
 *         .init = init, .shutdown = shutdown,
 *     };
 *     ONAIR_PLUGIN_EXPORT const onair_plugin_info *onair_plugin_entry(void) { return &info; }
 *
 * VERSIONING.  ONAIR_PLUGIN_ABI is the one number the host checks: a
 * plugin whose descriptor carries another value is refused and not loaded.
 * It changes when anything existing changes meaning, layout or signature:
 * a function pointer removed, moved or retyped, a field of a struct below
 * moved or retyped, an enum value renumbered, an ownership rule changed.
 * Compatible additions do not change it and raise ONAIR_PLUGIN_ABI_MINOR
 * instead: a new function appended at the end of onair_host_api (test for
 * it with ONAIR_HOST_HAS), a new event number, a new config key type, a new
 * field taking the place of a reserved slot of a struct (a host that does
 * not fill it leaves it NULL / 0; a field of 64 bits takes one slot, as on
 * the 64-bit systems onaird is built for), a new flag bit.  Check
 * api->abi_minor before reading a field added in a later minor version.  Plugins must ignore
 * event numbers and flag bits they do not know, and never allocate or copy
 * the host's payload structs by value.
 *
 * THREADING.  Every callback runs on the server's event loop thread, and
 * every function of onair_host_api may be called only from that thread
 * (from inside a callback) -- except inside a work function given to
 * work_queue, which runs on a pool thread and may call nothing of the
 * host.  A callback must return quickly: no blocking I/O, no sleeping, no
 * waiting for the network.  Slow work goes to work_queue; waiting goes to
 * timer_start.
 *
 * OWNERSHIP.  Unless a comment says otherwise: strings and structs the host
 * passes to a callback are borrowed for the duration of that call (copy
 * what you keep); strings and buffers a plugin passes to a host function
 * are borrowed for that call (the host copies what it keeps); the host
 * never frees memory the plugin allocated, and the plugin never frees
 * memory the host allocated.  The `ud` pointer given with a registration
 * (hook, IQ handler, command, timer) is kept by the host and handed back
 * to the callback as it is; the plugin keeps what it points to alive
 * until shutdown.  The descriptor and everything it points to (names,
 * the config key array) must stay valid while the plugin is loaded:
 * make them static.  Where a value must be returned, the plugin
 * passes a buffer and the host writes into it (snprintf-style: the full
 * length is returned, the copy is cut to fit and NUL-terminated).
 *
 * TRUST.  A plugin runs inside onaird with its rights: the host checks
 * what it can (descriptor, ABI, settings, arguments of every call) and
 * refuses a bad plugin with a log line, but a plugin that corrupts memory
 * or crashes takes the server down.  Load only plugins you trust.
 *
 * LIFETIME.  Everything a plugin registers (hooks, IQ handlers, commands,
 * timers, watched fds, services) is recorded against the plugin and
 * removed by the host when the plugin is unloaded, after its shutdown
 * callback has run; a plugin need not undo its registrations.  The onair_host handle and the api pointer
 * given to init stay valid until shutdown returns.
 */
#ifndef ONAIR_PLUGIN_H
#define ONAIR_PLUGIN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define ONAIR_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define ONAIR_PRINTF(fmt, args)
#endif

#define ONAIR_PLUGIN_ABI 1
#define ONAIR_PLUGIN_ABI_MINOR 2

/* The name of the exported entry point, for dlsym. */
#define ONAIR_PLUGIN_ENTRY_SYMBOL "onair_plugin_entry"

/* Result codes of the host functions (0 or negative). */
enum {
    ONAIR_OK = 0,
    ONAIR_E_INVALID = -1,   /* a bad argument: NULL where a value is needed, bad XML, an unknown key */
    ONAIR_E_NOTFOUND = -2,  /* no such key, field or registration */
    ONAIR_E_EXISTS = -3,    /* already registered (an IQ namespace, a command node) */
    ONAIR_E_NOMEM = -4,
    ONAIR_E_LIMIT = -5,     /* a table is full, a value too large */
    ONAIR_E_STORE = -6,     /* the store failed (full map, I/O) */
    ONAIR_E_STATE = -7,     /* not allowed now (e.g. a write inside a write transaction) */
    ONAIR_E_CANCELLED = -8  /* work that did not run, or whose plugin was unloaded */
};

/* ---- opaque types (pointers to them are only ever made by the host) ---- */

typedef struct onair_host onair_host;       /* one per loaded plugin */
typedef struct onair_stanza onair_stanza;   /* an XMPP stanza (message, presence, iq) */
typedef struct onair_txn onair_txn;         /* a write transaction on the plugin's database */
typedef struct onair_command onair_command; /* one call of an ad-hoc command */
typedef struct onair_http_request onair_http_request; /* one HTTP request to a plugin's route (ABI 1.2) */

/* ---- logging ---- */

typedef enum onair_log_level {
    ONAIR_LOG_DEBUG = 0,
    ONAIR_LOG_INFO = 1,
    ONAIR_LOG_WARN = 2,
    ONAIR_LOG_ERROR = 3
} onair_log_level;

/* ---- events ---- */

typedef enum onair_event {
    ONAIR_EVENT_RESERVATION_BOOKED = 1,      /* const onair_reservation_event * */
    ONAIR_EVENT_RESERVATION_RECONFIRMED = 2, /* const onair_reservation_event * */
    ONAIR_EVENT_RESERVATION_CANCELLED = 3,   /* const onair_reservation_event * */
    ONAIR_EVENT_ROOM_OPENED = 4,             /* const onair_room_event * */
    ONAIR_EVENT_ROOM_MESSAGE = 5,            /* const onair_room_event * */
    ONAIR_EVENT_ROOM_CLOSED = 6,             /* const onair_room_event * */
    ONAIR_EVENT_LIVE_STARTED = 7,            /* const onair_live_event * */
    ONAIR_EVENT_LIVE_ENDED = 8,              /* const onair_live_event * */
    ONAIR_EVENT_STANZA_IN = 9,               /* const onair_stanza_event * */
    ONAIR_EVENT_STANZA_OUT = 10              /* const onair_stanza_event * */
} onair_event;

/* What a hook returns.  ONAIR_HOOK_DROP is meaningful for the stanza
 * events only: the stanza is discarded and no later hook sees it.  For
 * every other event it is read as ONAIR_HOOK_CONTINUE. */
enum { ONAIR_HOOK_CONTINUE = 0, ONAIR_HOOK_DROP = 1 };

/* Hooks of one event run highest priority first, in registration order
 * among equal priorities.  0 is the ordinary priority. */
typedef int (*onair_hook_fn)(void *ud, onair_event event, const void *payload);

/* A reservation (booked, reconfirmed, cancelled).  Every pointer is
 * borrowed for the hook's call and never NULL ("" when there is no value).
 * The events carry no passwords; reservation_read gives a reconfirmed
 * reservation's shared password to the plugin that asks. */
typedef struct onair_reservation_event {
    const char *id;            /* 26 characters [a-z2-7] */
    const char *owner;         /* the owner's account (local part) */
    const char *email;         /* the owner's e-mail address when booked, "" if none */
    const char *channel;       /* channel id */
    const char *title, *genre, *summary, *detail, *url;
    const char *level;         /* "public", "password" or "secret" */
    const char *state;         /* "awaiting_reconfirmation", "reconfirmed", "cancelled", ... */
    const char *cancel_reason; /* "owner", "deadline", "operator"; "" unless cancelled */
    const char *friends;       /* addresses, one per line, "" if none */
    const char *room_jid;      /* the reservation's chat room */
    int64_t start, end;        /* seconds since the epoch (UTC) */
    int64_t deadline;          /* reconfirmation deadline, seconds since the epoch */
    uint64_t fee;              /* in the smallest unit of the server's currency */
    uint32_t capacity, bandwidth_kbps;
    bool show_email, show_url;
    /* ABI 1.2: the part of the room's transcript the owner chose when
     * booking (specs/reservation.md): "all", "live", "addressed", or ""
     * for the server's default; and whether it keeps the room's notices:
     * "true", "false", or "" for the default. */
    const char *transcript;
    const char *transcript_notices;
    void *reserved[6];
} onair_reservation_event;

/* One message of a room's log (ABI 1.2), as the room accepted it.
 * Borrowed with the event that carries it; strings never NULL. */
typedef struct onair_room_log_entry {
    uint64_t seq;          /* 1, 2, ... in the room */
    int64_t time_ms;       /* when the room accepted it, ms since the epoch */
    const char *nick;      /* the sender's nickname; "" for the room's notices */
    const char *jid;       /* the sender's real full JID; "" for notices */
    const char *body;
    const char *id;        /* the sender's stanza id, "" if none */
    bool notice;           /* a notice of the room itself ("the live starts soon", ...) */
    bool addressed;        /* addressed to the broadcaster: the body starts with one of
                              the broadcaster's nicknames in the room (the owner's account
                              name when they were not in it) followed by ':' or ','; never
                              set on the broadcaster's own messages */
    void *reserved[4];
} onair_room_log_entry;

/* A chat room of a reservation.  Borrowed for the call; NULL where a field
 * does not apply to the event. */
typedef struct onair_room_event {
    const char *room;           /* the room's bare JID */
    const char *reservation_id; /* the reservation it belongs to, or NULL */
    const char *occupant_jid;   /* message: the sender's real full JID ("" for a notice) */
    const char *nick;           /* message: the sender's nickname in the room ("" for a notice) */
    const char *body;           /* message: the body text */
    const onair_stanza *stanza; /* message: the groupchat message as the room sends it (read only) */
    int64_t time_ms;            /* when it happened, ms since the epoch */
    /* ABI 1.2 */
    const char *owner;          /* the broadcaster's account (local part) */
    const char *reason;         /* closed: "ended" (closing time) or "cancelled" (the reservation was) */
    const onair_room_log_entry *log; /* closed: every message the room accepted, in order */
    size_t nlog;                /* closed: entries in log */
    const onair_room_log_entry *entry; /* message: the message as logged (seq, notice, addressed) */
    void *reserved[3];
} onair_room_event;

/* A live broadcast of a reservation.  Until the media service raises these
 * from the real stream, the server raises them at the reservation's
 * scheduled start and end (source "schedule"). Borrowed for the call. */
typedef struct onair_live_event {
    const char *reservation_id;
    const char *channel;
    const char *room;           /* the live's room JID, or NULL */
    int64_t time_ms;            /* when it happened, ms since the epoch */
    /* ABI 1.2 */
    const char *owner;          /* the broadcaster's account (local part) */
    const char *source;         /* "schedule" (or, later, "stream") */
    int64_t started_ms;         /* when the live started, ms since the epoch: times
                                   relative to the live are counted from here */
    int64_t start, end;         /* the reservation's slot, seconds since the epoch */
    void *reserved[3];
} onair_live_event;

/* A stanza on a client stream.
 * STANZA_IN: from a bound client, after the server stamped its 'from' and
 * checked it, before it is routed.  STANZA_OUT: to a bound client, just
 * before it is written to the socket.  The hook may read the stanza and
 * rewrite it with the stanza_set_* functions (the next hooks and the
 * server see the rewritten stanza; on STANZA_IN the 'from' is stamped again
 * afterwards and cannot be changed), or return ONAIR_HOOK_DROP to discard
 * it silently (a plugin that drops an IQ request should answer it with
 * iq_error).  Everything is borrowed for the call. */
typedef struct onair_stanza_event {
    onair_stanza *stanza;
    const char *session_jid;  /* full JID of the client stream it comes from (IN) or goes to (OUT) */
    bool is_guest;            /* that stream logged in anonymously */
    void *reserved[8];
} onair_stanza_event;

/* ---- IQ handlers ---- */

/* Returned by an IQ handler: ONAIR_IQ_HANDLED (it answered, now or
 * later), or ONAIR_IQ_PASS (the server answers service-unavailable). */
enum { ONAIR_IQ_PASS = 0, ONAIR_IQ_HANDLED = 1 };

/* An IQ of type get or set addressed to the server (or to the sender's
 * own bare JID) whose payload is in the registered namespace.  iq is
 * borrowed for the call; its 'from' is the stamped sender.  To answer
 * later, copy its 'from' and 'id' and send the result with send_xml. */
typedef int (*onair_iq_fn)(void *ud, const onair_stanza *iq);

/* ---- ad-hoc commands (XEP-0050) ---- */

typedef enum onair_field_type {
    ONAIR_FIELD_TEXT = 0,     /* text-single */
    ONAIR_FIELD_PRIVATE = 1,  /* text-private */
    ONAIR_FIELD_MULTI = 2,    /* text-multi: one value, lines joined with "\n" */
    ONAIR_FIELD_BOOLEAN = 3   /* boolean: "true" or "false" */
} onair_field_type;

/* One field of a command's form.  An array of them ends with a field
 * whose var is NULL. */
typedef struct onair_field {
    const char *var;            /* the field name */
    const char *label;          /* shown to the user; may be NULL */
    onair_field_type type;
    bool required;
    const char *default_value;  /* pre-filled value, or NULL */
    void *reserved[2];
} onair_field;

/* Who may see and run a command. */
enum {
    ONAIR_COMMAND_ACCOUNTS = 0, /* local accounts only */
    ONAIR_COMMAND_EVERYONE = 1  /* also guests and remote JIDs */
};

/* A command: a node, a name, optionally a form.  Without fields the
 * handler runs at once when the command is executed; with fields the
 * server first sends the form, and the handler runs when it is submitted
 * (required fields are checked before).  The spec and the strings it
 * points to are copied at registration. */
typedef struct onair_command_spec {
    const char *node;           /* unique on the server, at most 256 bytes */
    const char *name;           /* human-readable */
    int who;                    /* ONAIR_COMMAND_ACCOUNTS or ONAIR_COMMAND_EVERYONE */
    const char *title;          /* of the form; may be NULL */
    const char *instructions;   /* of the form; may be NULL */
    const onair_field *fields;  /* may be NULL: no form */
    void *reserved[4];
} onair_command_spec;

/* The handler reads the call with command_* functions and answers with
 * them: notes, result fields, or a failure.  A handler that adds nothing
 * completes the command with no note.  cmd is valid for the call only. */
typedef void (*onair_command_fn)(void *ud, onair_command *cmd);

/* ---- configuration ---- */

typedef enum onair_config_type {
    ONAIR_CONFIG_STRING = 1,
    ONAIR_CONFIG_INT = 2,   /* 64-bit, within [min, max] */
    ONAIR_CONFIG_BOOL = 3
} onair_config_type;

/* One key of the plugin's own group, plugin.<name>.<key>.  An array of
 * them (onair_plugin_info.config) ends with a key whose name is NULL. */
typedef struct onair_config_key {
    const char *name;
    onair_config_type type;
    const char *default_string;  /* STRING: the default (NULL means "") */
    int64_t default_int;         /* INT: the default; BOOL: 0 or 1 */
    int64_t min, max;            /* INT: the accepted range (min = max = 0: any value) */
    const char *description;     /* one line, for error messages and docs; may be NULL */
    void *reserved[2];
} onair_config_key;

/* ---- the store ---- */

/* Called for each key/value of an iteration, in key order; both are
 * borrowed for the call.  Return 0 to go on, a positive value to stop
 * (that value is returned by store_iter). */
typedef int (*onair_iter_fn)(void *ud, const void *key, size_t klen, const void *val, size_t vlen);
/* Runs inside one write transaction: return 0 to commit, anything else to
 * abort (that value is returned by store_txn when it is negative, else
 * ONAIR_E_CANCELLED). */
typedef int (*onair_txn_fn)(void *ud, onair_txn *txn);

/* ---- timers and work ---- */

/* A timer fired; id is the one timer_start returned. */
typedef void (*onair_timer_fn)(void *ud, uint64_t id);
/* Runs on a thread of the pool: may use data, may call nothing of the host. */
typedef void (*onair_work_fn)(void *data);
/* Runs on the loop after the work: status ONAIR_OK, or ONAIR_E_CANCELLED
 * when the work did not run or the plugin was unloaded meanwhile -- then
 * the plugin's state is gone and done may only free data.  Always called
 * exactly once per queued work. */
typedef void (*onair_done_fn)(void *data, int status);

/* ---- file descriptors on the loop (ABI 1.1) ---- */

/* What fd_watch waits for, and what its callback is told is ready. */
enum {
    ONAIR_FD_READ = 1,  /* readable (or a peer closed it) */
    ONAIR_FD_WRITE = 2, /* writable */
    ONAIR_FD_ERROR = 4  /* only in the callback: polling the fd failed (check it, e.g. with a read) */
};
/* fd is ready: `ready` is a mix of ONAIR_FD_READ, _WRITE and _ERROR. */
typedef void (*onair_fd_fn)(void *ud, int fd, int ready);

/* ---- reservations read on demand (ABI 1.1) ---- */

/* The settings document a reservation received when it was reconfirmed
 * (specs/reservation.md, "Reconfirmation and the deadline"), beyond what
 * onair_reservation_event already carries.  Borrowed for the call; never
 * NULL strings. */
typedef struct onair_reservation_settings {
    const char *room_jid;        /* the live's chat room */
    const char *page_url;        /* the live's web page (where viewers watch) */
    const char *ingest_jid;      /* the live's media endpoint */
    const char *shared_password; /* opens the stream and the room; "" for public lives.  A
                                    secret: keep it no longer than needed, never log it */
    int64_t ingest_open, ingest_close; /* seconds since the epoch */
    int64_t issued;                    /* when it was reconfirmed */
    void *reserved[8];
} onair_reservation_settings;

/* Called once by reservation_read: r as in the reservation events (its
 * state as it is now), s the settings document, or NULL when the
 * reservation has not been reconfirmed.  Both borrowed for the call. */
typedef void (*onair_reservation_fn)(void *ud, const onair_reservation_event *r,
                                     const onair_reservation_settings *s);

/* ---- services: function tables one plugin offers the others (ABI 1.1) ----
 *
 * A plugin offers a table of functions under a name (service_provide);
 * another finds it (service_lookup) and calls the functions with the ud
 * that came with it.  The layout of a table is the contract of its name:
 * the first field is always its size (sizeof as the provider compiled it),
 * so a caller checks that a function it needs lies within it.  The
 * well-known services are declared here. */

/* "mail": queues an e-mail (provided by the email_notice plugin). */
#define ONAIR_SERVICE_MAIL "mail"

/* One mail to queue.  Borrowed for the call: the provider copies it. */
typedef struct onair_mail {
    const char *to;              /* one e-mail address; or NULL and to_account set */
    const char *to_account;      /* a local account: the mail goes to its e-mail address */
    const char *subject;         /* UTF-8, one line (line breaks and controls become spaces) */
    const char *body;            /* UTF-8 plain text, lines ending in "\n" */
    const char *attachment_name; /* optional: the file name of a text attachment */
    const char *attachment;      /* its UTF-8 text (with attachment_name) */
    const char *reservation_id;  /* optional: the reservation it is about (header, log) */
    void *reserved[8];
} onair_mail;

typedef struct onair_mail_service {
    size_t size; /* sizeof(onair_mail_service) of the provider */
    /* Queues m durably (it survives a crash once this returns ONAIR_OK) and
     * sends it as soon as it can, retrying while the mail server is away.
     * ONAIR_OK, ONAIR_E_INVALID (no or a bad address, no subject or body, a
     * bad attachment name), ONAIR_E_NOTFOUND (to_account has no e-mail
     * address or does not exist), ONAIR_E_LIMIT (too large), ONAIR_E_STORE. */
    int (*send)(void *ud, const onair_mail *m);
} onair_mail_service;

/* ---- HTTP routes (ABI 1.2) ---- */

/* Route flags. */
enum {
    ONAIR_HTTP_AUTH = 1 /* a login token is required: without a valid one the server answers 401 itself */
};

/* A request to a route the plugin registered.  req is valid for the call
 * only: the handler answers before it returns, with http_reply or
 * http_error (a handler that returns without answering gets a 500). */
typedef void (*onair_http_fn)(void *ud, onair_http_request *req);

/* ---- the host API ---- */

/* The functions a plugin may call, filled by the host.  Fields are only
 * ever appended; `size` is sizeof(onair_host_api) as the host knows it. */
typedef struct onair_host_api {
    size_t size;
    int abi;        /* ONAIR_PLUGIN_ABI of the host */
    int abi_minor;  /* ONAIR_PLUGIN_ABI_MINOR of the host */

    /* -- the server -- */
    /* The plugin's configured name, the server's XMPP domain and the room
     * service's domain; borrowed, valid while the plugin is loaded. */
    const char *(*plugin_name)(onair_host *h);
    const char *(*server_domain)(onair_host *h);
    const char *(*room_domain)(onair_host *h);
    /* One line in the server's log, "plugin <name>: <message>".  Never log
     * passwords or message bodies at INFO or above. */
    void (*log)(onair_host *h, onair_log_level level, const char *fmt, ...) ONAIR_PRINTF(3, 4);
    void (*vlog)(onair_host *h, onair_log_level level, const char *fmt, va_list ap);

    /* -- configuration (plugin.<name>.<key>, as declared in the descriptor) -- */
    /* The current value of a declared key (its default when the file does
     * not set it).  config_string's result is borrowed until the plugin's
     * reload callback returns or the plugin is unloaded; NULL for a key that
     * was not declared as a string.  config_int / config_bool return 0 for a
     * key not declared with their type. */
    const char *(*config_string)(onair_host *h, const char *key);
    int64_t (*config_int)(onair_host *h, const char *key);
    bool (*config_bool)(onair_host *h, const char *key);

    /* -- events -- */
    /* Hooks fn on an event with a priority.  ud is borrowed by the host and
     * given back to fn.  ONAIR_OK, ONAIR_E_INVALID (unknown event, fn NULL),
     * ONAIR_E_NOMEM, ONAIR_E_LIMIT. */
    int (*hook)(onair_host *h, onair_event event, int priority, onair_hook_fn fn, void *ud);

    /* -- IQ -- */
    /* Handles IQ get/set to the server with a payload in namespace ns (which
     * is also announced in disco#info).  ns is copied.  ONAIR_OK,
     * ONAIR_E_EXISTS (taken, also by the server), ONAIR_E_LIMIT, ONAIR_E_INVALID. */
    int (*iq_register)(onair_host *h, const char *ns, onair_iq_fn fn, void *ud);
    /* Answers iq with a result whose payload is payload_xml, one element
     * with its own xmlns (NULL for an empty result).  ONAIR_OK, or
     * ONAIR_E_INVALID when iq is not a get/set (nothing sent) or the
     * payload is not one well-formed element (then the server has answered
     * internal-server-error in its place). */
    int (*iq_result)(onair_host *h, const onair_stanza *iq, const char *payload_xml);
    /* Answers a stanza with an RFC 6120 error: type "cancel", "modify",
     * "auth" or "wait"; condition such as "bad-request", "not-allowed",
     * "item-not-found"; text may be NULL. */
    int (*iq_error)(onair_host *h, const onair_stanza *stanza, const char *type, const char *condition,
                    const char *text);

    /* -- sending -- */
    /* Parses one stanza (<message/>, <presence/> or <iq/>, in the
     * jabber:client namespace, which is the default) and routes it as the
     * server does any stanza.  'to' is required; 'from' defaults to the
     * server's domain and must be a JID of a domain this server serves.
     * xml is borrowed.  ONAIR_OK or ONAIR_E_INVALID. */
    int (*send_xml)(onair_host *h, const char *xml);
    /* Writes s with &, <, >, " and ' escaped into out (snprintf-style);
     * returns the escaped length. */
    size_t (*xml_escape)(const char *s, char *out, size_t cap);

    /* -- stanzas (borrowed onair_stanza pointers from the host) -- */
    /* "message", "presence" or "iq". */
    const char *(*stanza_name)(const onair_stanza *s);
    /* An attribute's value ("to", "from", "type", "id", "xml:lang"), or
     * NULL; borrowed until the stanza changes or the call ends. */
    const char *(*stanza_attr)(const onair_stanza *s, const char *name);
    /* The text of the first child element `name` in namespace ns (NULL:
     * jabber:client, the stanza's own), copied into buf (snprintf-style).
     * name may be a path "query/item" of nested elements, each in ns.
     * Returns the text's length, or -1 when there is no such element. */
    long (*stanza_child_text)(const onair_stanza *s, const char *name, const char *ns, char *buf, size_t cap);
    /* The namespace of the first child element (an IQ's payload), or NULL. */
    const char *(*stanza_payload_ns)(const onair_stanza *s);
    /* The stanza serialized, copied into buf (snprintf-style); returns the length. */
    size_t (*stanza_xml)(const onair_stanza *s, char *buf, size_t cap);
    /* In stanza hooks only: sets (value NULL: removes) an attribute. */
    int (*stanza_set_attr)(onair_stanza *s, const char *name, const char *value);
    /* In stanza hooks only: replaces the text of the first child element
     * name/ns (created when missing; ns NULL: jabber:client); text NULL
     * removes the child. */
    int (*stanza_set_child_text)(onair_stanza *s, const char *name, const char *ns, const char *text);

    /* -- ad-hoc commands -- */
    /* Registers a command on the server's JID.  ONAIR_OK, ONAIR_E_EXISTS,
     * ONAIR_E_LIMIT, ONAIR_E_INVALID. */
    int (*command_register)(onair_host *h, const onair_command_spec *spec, onair_command_fn fn, void *ud);
    /* The submitted value of a field (text-multi: lines joined with "\n";
     * boolean: "true"/"false"), or NULL when absent; borrowed for the call. */
    const char *(*command_value)(onair_command *cmd, const char *var);
    /* The requester's full JID, and its account (local part) when it is a
     * local account, else NULL.  Borrowed for the call. */
    const char *(*command_requester)(onair_command *cmd);
    const char *(*command_account)(onair_command *cmd);
    /* Adds an info note (copied) to the completed command. */
    int (*command_note)(onair_command *cmd, const char *text);
    /* Adds a read-only result field (copied) to the completed command (a
     * value with line breaks is sent as a text-multi field). */
    int (*command_result)(onair_command *cmd, const char *var, const char *label, const char *value);
    /* Fails the call: with var, the submitted field at fault (the user may
     * correct the form and submit again); with var NULL, the command ends
     * with a bad-request error.  text is copied. */
    int (*command_fail)(onair_command *cmd, const char *var, const char *text);

    /* -- timers on the loop -- */
    /* Calls fn after delay_ms, then every repeat_ms (0: once).  Returns the
     * timer's id (> 0), or 0 on failure.  A one-shot timer is forgotten
     * after it fired. */
    uint64_t (*timer_start)(onair_host *h, uint64_t delay_ms, uint64_t repeat_ms, onair_timer_fn fn, void *ud);
    /* Stops a timer (an unknown or fired id is ignored; allowed inside its callback). */
    void (*timer_stop)(onair_host *h, uint64_t id);

    /* -- work on the thread pool -- */
    /* Runs work(data) on a pool thread, then done(data, status) on the
     * loop.  data belongs to the plugin throughout; the host only passes it
     * on.  ONAIR_OK (done will be called) or ONAIR_E_NOMEM / ONAIR_E_INVALID
     * (done will not be called). */
    int (*work_queue)(onair_host *h, onair_work_fn work, onair_done_fn done, void *data);

    /* -- the store: the plugin's own database, "plugin.<name>" --
     * Keys are 1 to 511 bytes.  txn NULL: the call runs in a transaction
     * of its own, committed (synced to disk) before it returns.  A txn from
     * store_txn: the call joins that write transaction.  Durable as the
     * server's own records: what a commit returned survives a crash. */
    /* Copies the value into buf (up to cap bytes) and sets *vlen to its
     * full length (a longer value is cut: call again with a larger buffer).
     * ONAIR_OK, ONAIR_E_NOTFOUND, ONAIR_E_STORE. */
    int (*store_get)(onair_host *h, onair_txn *txn, const void *key, size_t klen, void *buf, size_t cap,
                     size_t *vlen);
    /* Creates or replaces.  ONAIR_OK, ONAIR_E_STORE (e.g. the map is full),
     * ONAIR_E_INVALID, ONAIR_E_STATE (txn NULL inside a store_txn). */
    int (*store_put)(onair_host *h, onair_txn *txn, const void *key, size_t klen, const void *val, size_t vlen);
    /* ONAIR_OK, ONAIR_E_NOTFOUND, ONAIR_E_STORE, ONAIR_E_STATE. */
    int (*store_del)(onair_host *h, onair_txn *txn, const void *key, size_t klen);
    /* Calls fn for every key starting with prefix (plen 0: all), in key
     * order.  fn may not call other store functions unless txn is given
     * (then it may put and delete through that txn).  Returns 0, fn's
     * positive value, or ONAIR_E_STORE. */
    int (*store_iter)(onair_host *h, onair_txn *txn, const void *prefix, size_t plen, onair_iter_fn fn,
                      void *ud);
    /* Runs fn inside one write transaction (txn valid only during fn),
     * committed when fn returns 0.  Returns ONAIR_OK, fn's negative value or
     * ONAIR_E_CANCELLED (aborted), ONAIR_E_STORE, ONAIR_E_STATE (nested). */
    int (*store_txn)(onair_host *h, onair_txn_fn fn, void *ud);

    /* ---- added in ABI 1.1: test with ONAIR_HOST_HAS(api, name) ---- */

    /* -- file descriptors on the loop -- */
    /* Calls fn(ud, fd, ready) on the loop whenever fd (a socket or a pipe,
     * not a regular file) is ready for `events` (ONAIR_FD_READ and/or
     * ONAIR_FD_WRITE).  Watching an fd the plugin already watches changes
     * its events, fn and ud.  The fd stays the plugin's: the host never
     * closes it, and the plugin calls fd_unwatch before closing it.
     * ONAIR_OK, ONAIR_E_INVALID (fd < 0, events 0 or unknown bits, fn NULL,
     * an fd the loop cannot poll), ONAIR_E_EXISTS (the server or another
     * plugin watches it), ONAIR_E_NOMEM. */
    int (*fd_watch)(onair_host *h, int fd, int events, onair_fd_fn fn, void *ud);
    /* Stops watching fd (allowed inside its callback).  ONAIR_OK or
     * ONAIR_E_NOTFOUND (the plugin does not watch it). */
    int (*fd_unwatch)(onair_host *h, int fd);

    /* -- reservations and accounts -- */
    /* Reads reservation id and calls fn(ud, r, s) once before returning
     * (see onair_reservation_fn).  Unlike the events, this gives the
     * settings document with the shared password: plugins are trusted code
     * (see TRUST).  Not inside store_txn.  ONAIR_OK, ONAIR_E_INVALID (not a
     * reservation ID, fn NULL), ONAIR_E_NOTFOUND, ONAIR_E_STORE,
     * ONAIR_E_STATE (inside store_txn). */
    int (*reservation_read)(onair_host *h, const char *id, onair_reservation_fn fn, void *ud);
    /* The e-mail address of the local account user (onairctl account
     * email), copied into buf (snprintf-style).  Returns its length (0: the
     * account has none), or -1 when there is no such account (or inside
     * store_txn). */
    long (*account_email)(onair_host *h, const char *user, char *buf, size_t cap);

    /* -- services -- */
    /* Offers table under name (1 to 64 characters of a-z, 0-9, '_', '-',
     * '.'): other plugins find it with service_lookup and call its
     * functions with ud.  table and ud are kept as they are (the plugin
     * keeps them valid) until the plugin is unloaded, when the service
     * goes.  ONAIR_OK, ONAIR_E_EXISTS (the name is taken), ONAIR_E_INVALID,
     * ONAIR_E_LIMIT, ONAIR_E_NOMEM. */
    int (*service_provide)(onair_host *h, const char *name, const void *table, void *ud);
    /* The table offered under name, with its ud in *ud; NULL when no loaded
     * plugin offers it.  Valid until the calling callback returns (the
     * provider may be unloaded between two callbacks): look it up each time. */
    const void *(*service_lookup)(onair_host *h, const char *name, void **ud);

    /* ---- added in ABI 1.2: test with ONAIR_HOST_HAS(api, name) ---- */

    /* -- HTTP routes on the server's HTTP API (specs/http-api.md) -- */
    /* Serves method ("GET", "POST", "PUT", "PATCH", "DELETE") on pattern,
     * a path such as "/api/v1/reservations/:id/transcript" whose ":name"
     * segments match one segment each (at most 4; read them with
     * http_param).  flags: ONAIR_HTTP_AUTH or 0.  pattern is copied.
     * ONAIR_OK, ONAIR_E_EXISTS (the server or a plugin serves it),
     * ONAIR_E_INVALID (bad method or pattern, no HTTP service). */
    int (*http_route)(onair_host *h, const char *method, const char *pattern, unsigned flags, onair_http_fn fn,
                      void *ud);
    /* The value of the index-th ":name" segment (0 = the first), the
     * account (local part) of a valid login token (NULL without one), a
     * query parameter (decoded; "" for a bare "?name"; NULL when absent),
     * the method.  Borrowed for the call. */
    const char *(*http_param)(onair_http_request *req, unsigned index);
    const char *(*http_user)(onair_http_request *req);
    const char *(*http_query)(onair_http_request *req, const char *name);
    const char *(*http_method)(onair_http_request *req);
    /* The request's JSON body (an object; the server checked it) as compact
     * JSON text, copied into buf (snprintf-style); returns its length, or
     * -1 when the request has no body. */
    long (*http_body)(onair_http_request *req, char *buf, size_t cap);
    /* Answers with status (200..599) and body[0..len) as content_type (e.g.
     * "text/plain; charset=utf-8"; NULL: "application/json").  body is
     * copied.  ONAIR_OK, ONAIR_E_INVALID (bad status or content type, or
     * already answered). */
    int (*http_reply)(onair_http_request *req, int status, const char *content_type, const char *body, size_t len);
    /* Answers with the server's error format:
     *   {"error": {"status": 403, "field": "format", "message": "..."}}
     * field may be NULL.  ONAIR_OK or ONAIR_E_INVALID. */
    int (*http_error)(onair_http_request *req, int status, const char *field, const char *message);

    /* -- ad-hoc commands -- */
    /* Ends the call with an XMPP error: type "cancel", "modify", "auth" or
     * "wait"; condition such as "forbidden", "item-not-found",
     * "not-allowed"; text (copied) may be NULL.  Nothing the handler added
     * is sent.  ONAIR_OK or ONAIR_E_INVALID. */
    int (*command_error)(onair_command *cmd, const char *type, const char *condition, const char *text);
} onair_host_api;

/* Whether the host's API has function `member` (added in a later minor version). */
#define ONAIR_HOST_HAS(api, member) \
    ((api)->size >= offsetof(onair_host_api, member) + sizeof((api)->member) && (api)->member != NULL)

/* ---- the plugin's descriptor ---- */

typedef struct onair_plugin_info {
    int abi;                  /* ONAIR_PLUGIN_ABI the plugin was built with */
    const char *name;         /* must equal the configured name: [a-z0-9_], 1 to 32 characters */
    const char *version;      /* the plugin's own version, free form */
    const char *description;  /* one line; may be NULL */
    /* The keys of plugin.<name> in the configuration, ending with a NULL
     * name; NULL for none.  Keys not declared here are refused. */
    const onair_config_key *config;
    /* Called once after loading, with the configuration already checked.
     * Registers what the plugin offers and sets *state (given back to
     * shutdown and reload; the plugin owns it).  Returns 0, or non-zero to
     * refuse: the plugin is then unloaded (what it registered is removed,
     * shutdown is not called, *state must be freed by init itself). */
    int (*init)(onair_host *h, const onair_host_api *api, void **state);
    /* Called once before unloading (server shutdown, or the plugin was
     * removed from plugins.load on SIGHUP): free the state.  The host then
     * removes the plugin's registrations and stops its timers.  Work still
     * queued gets its done callback with ONAIR_E_CANCELLED later. */
    void (*shutdown)(void *state);
    /* Optional (NULL: none).  Called on SIGHUP after the plugin's new
     * configuration was checked and put in place; returns 0, or non-zero to
     * refuse it (the previous values are put back). */
    int (*reload)(void *state);
    unsigned flags;           /* none defined yet: 0 */
    void *reserved[8];
} onair_plugin_info;

/* The entry point every plugin exports.  Build with -fvisibility=hidden
 * and mark the definition ONAIR_PLUGIN_EXPORT to export nothing else. */
#if defined(__GNUC__) || defined(__clang__)
#define ONAIR_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define ONAIR_PLUGIN_EXPORT
#endif
ONAIR_PLUGIN_EXPORT const onair_plugin_info *onair_plugin_entry(void);

#ifdef __cplusplus
}
#endif

#endif
