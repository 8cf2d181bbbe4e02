/* adhoc.h - XEP-0050 ad-hoc commands on the server's JID: one registry of
 * commands per server, their discovery (XEP-0030 node
 * "http://jabber.org/protocol/commands" and one node per command) and
 * their execution in sessions of one or more stages.  The protocol as
 * onaird speaks it is in specs/adhoc.md.
 *
 * A command is a node, a name, a visibility callback and a handler.  The
 * framework does the protocol: it checks the node, the requester's right
 * to run the command, the session id, its owner and age, and the action;
 * parses a submitted data form; calls the handler with what it needs; and
 * turns the handler's adhoc_reply into the IQ result or error.  Sessions
 * end when the handler completes or cancels, when the requester cancels,
 * on an error that does not keep the session, after
 * adhoc.session_timeout_s without use, when the requester's stream ends,
 * and at shutdown; each end frees the command's state with its free_state.
 *
 *     static void hello(void *ud, const adhoc_request *req, adhoc_reply *reply)
 *     {
 *         if (req->stage == 0) {                  // first call: ask
 *             dataform *f = dataform_new(DATAFORM_FORM, "Hello", NULL);
 *             dataform_add_text(f, "name", "Your name", NULL);
 *             adhoc_reply_form(reply, f);
 *             adhoc_reply_executing(reply, 1, ADHOC_ALLOW(ADHOC_COMPLETE), ADHOC_COMPLETE);
 *             return;
 *         }
 *         const char *name = dataform_value(req->form, "name");
 *         if (!name || !*name) {                  // the user can fix it and submit again
 *             adhoc_reply_bad_field(reply, "name", "required");
 *             return;
 *         }
 *         adhoc_reply_note(reply, ADHOC_NOTE_INFO, "Hello, %s", name);
 *         adhoc_reply_completed(reply);
 *     }
 *     adhoc_register(srv, "hello", "Say hello", adhoc_visible_accounts, hello, NULL, NULL);
 */
#ifndef ONAIR_ADHOC_H
#define ONAIR_ADHOC_H

#include <stdbool.h>
#include <stddef.h>

#include "dataform.h"
#include "jid.h"
#include "xml.h"

struct server;

#define ADHOC_NS "http://jabber.org/protocol/commands"

#define ADHOC_MAX_COMMANDS 64
#define ADHOC_MAX_NODE_LEN 256          /* bytes of a command node */
#define ADHOC_MAX_SESSIONS_PER_REQUESTER 16 /* live sessions of one full JID */
#define ADHOC_MAX_SESSIONS 4096         /* live sessions of the whole server */
#define ADHOC_MAX_NOTES 8               /* notes in one reply */
#define ADHOC_SESSIONID_LEN 26          /* random [a-z0-9]: about 134 bits */

typedef enum adhoc_action {
    ADHOC_EXECUTE = 0, /* the first call of a session */
    ADHOC_NEXT,
    ADHOC_PREV,
    ADHOC_COMPLETE,
    ADHOC_CANCEL /* handled by the framework; never passed to a handler */
} adhoc_action;

/* Bit of an action in an `allowed` mask, e.g. ADHOC_ALLOW(ADHOC_NEXT) | ADHOC_ALLOW(ADHOC_PREV). */
#define ADHOC_ALLOW(action) (1u << (action))

typedef enum adhoc_requester_kind {
    ADHOC_ACCOUNT = 0, /* a local session authenticated as an account */
    ADHOC_GUEST,       /* a local ANONYMOUS (guest) session */
    ADHOC_REMOTE       /* anyone else (another server's user, a service) */
} adhoc_requester_kind;

typedef struct adhoc_requester {
    const jid *from;             /* the requester's full JID (borrowed) */
    adhoc_requester_kind kind;
    const char *account;         /* ADHOC_ACCOUNT: the local part (Nodeprep'd); else NULL */
} adhoc_requester;

/* May `who` see and run the command?  Asked for disco#items on the command
 * list (a command not visible is not listed), disco#info on the command's
 * node and at every call (not visible: forbidden).  NULL means everyone. */
typedef bool (*adhoc_visible_fn)(void *ud, const adhoc_requester *who);
/* Ready-made: only ADHOC_ACCOUNT requesters. */
bool adhoc_visible_accounts(void *ud, const adhoc_requester *who);

/* What the handler is asked.  Everything is borrowed for the call. */
typedef struct adhoc_request {
    struct server *srv;
    const adhoc_requester *who;
    const char *node;
    const char *sessionid;
    /* ADHOC_EXECUTE on the first call (stage 0); later ADHOC_NEXT,
     * ADHOC_PREV or ADHOC_COMPLETE, one of the actions the handler allowed
     * last ("execute" or no action is mapped to the default it offered). */
    adhoc_action action;
    const dataform *form; /* the submitted form (type submit or cancel), or NULL */
    unsigned stage;       /* 0 on the first call; then the next_stage of the last executing reply */
    /* The command's state for this session, NULL at first.  The handler
     * sets and changes it; the framework frees it with the command's
     * free_state when the session ends (the handler must not free a state
     * it leaves in *state). */
    void **state;
} adhoc_request;

typedef enum adhoc_status { ADHOC_COMPLETED = 0, ADHOC_EXECUTING, ADHOC_CANCELED } adhoc_status;
typedef enum adhoc_note_type { ADHOC_NOTE_INFO = 0, ADHOC_NOTE_WARN, ADHOC_NOTE_ERROR } adhoc_note_type;

typedef struct adhoc_note {
    adhoc_note_type type;
    char *text; /* owned */
} adhoc_note;

/* What the handler answers, filled with the adhoc_reply_* functions below
 * (the fields are for reading in tests).  It starts as "completed, no form,
 * no notes, no error". */
typedef struct adhoc_reply {
    adhoc_status status;
    unsigned next_stage;          /* executing: the stage the next call gets */
    unsigned allowed;             /* executing: ADHOC_ALLOW mask of NEXT, PREV, COMPLETE */
    adhoc_action default_action;  /* executing: what "execute" means next */
    dataform *form;               /* owned; NULL if none */
    adhoc_note notes[ADHOC_MAX_NOTES];
    size_t nnotes;
    bool is_error;
    char error_type[16];          /* "modify", "cancel", "wait", "auth" */
    char error_condition[48];     /* RFC 6120 stanza error condition */
    char error_specific[32];      /* XEP-0050 condition ("bad-payload", ...), "" if none */
    char *error_text;             /* owned; NULL if none */
    bool keep_session;
} adhoc_reply;

/* The session goes on: the next call gets stage `next_stage` and may use
 * the actions in `allowed` (a mask of ADHOC_ALLOW(ADHOC_NEXT / PREV /
 * COMPLETE); 0 is read as COMPLETE only); `default_action` is what a bare
 * "execute" means and is offered as the default button (it must be in
 * `allowed`, else the first allowed of NEXT, COMPLETE, PREV is used). */
void adhoc_reply_executing(adhoc_reply *r, unsigned next_stage, unsigned allowed, adhoc_action default_action);
/* The session ends (its state is freed). */
void adhoc_reply_completed(adhoc_reply *r);
void adhoc_reply_canceled(adhoc_reply *r);
/* Attaches a form (a DATAFORM_FORM to fill in, or a DATAFORM_RESULT);
 * ownership passes to the reply (a previous form is freed).  NULL is allowed. */
void adhoc_reply_form(adhoc_reply *r, dataform *form);
/* Adds a <note/> (printf-style; copied).  Beyond ADHOC_MAX_NOTES notes are dropped. */
void adhoc_reply_note(adhoc_reply *r, adhoc_note_type type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Answers with an IQ error instead: RFC 6120 `type` and `condition`, an
 * optional XEP-0050 specific condition (`specific`, NULL for none:
 * "bad-payload", "bad-action", ...) and a text (printf-style, NULL for none).
 * keep_session true keeps the session as it was before this call (same
 * stage, same allowed actions, the state as the handler left it) so the
 * requester can correct its form and submit again; false ends it.  On the
 * first call of a session (stage 0) the session always ends.  Any form or
 * notes already set are dropped. */
void adhoc_reply_error(adhoc_reply *r, const char *type, const char *condition, const char *specific,
                       bool keep_session, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* A submitted field that fails validation: modify / bad-request with
 * <bad-payload/> and the text "<var>: <reason>", the session kept.  This is
 * how commands report invalid input (specs/adhoc.md, "Errors"). */
void adhoc_reply_bad_field(adhoc_reply *r, const char *var, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Frees what the reply owns and resets it (the framework calls it). */
void adhoc_reply_clear(adhoc_reply *r);

/* Called with the request; fills reply.  ud is the registration's. */
typedef void (*adhoc_handler_fn)(void *ud, const adhoc_request *req, adhoc_reply *reply);

/* Registers a command on the server's JID.  node (at most
 * ADHOC_MAX_NODE_LEN bytes, unique) and name are copied; ud is borrowed
 * and must outlive the server; free_state (may be NULL when the command
 * keeps no state) frees what a handler left in *state.  Returns 0, or -1
 * when the node is taken, the table is full, an argument is missing or
 * adhoc_init has not run. */
int adhoc_register(struct server *srv, const char *node, const char *name, adhoc_visible_fn visible,
                   adhoc_handler_fn fn, void (*free_state)(void *), void *ud);

/* Removes the command of node: its live sessions end (states freed with its
 * free_state) and it is no longer listed.  Not from inside one of the
 * command's own handler calls.  Returns 0, or -1 when no such command. */
int adhoc_unregister(struct server *srv, const char *node);

/* ---- the server's side ---- */

/* Creates the registry (srv->adhoc), registers the IQ handler for ADHOC_NS,
 * the disco node handler and the disco feature.  0 or -1 (out of memory). */
int adhoc_init(struct server *srv);
/* Ends every session (freeing states) and frees the registry.  Safe when adhoc_init did not run. */
void adhoc_free(struct server *srv);
/* Expires sessions unused for adhoc.session_timeout_s and forgets old
 * expired ones; called once a second. */
void adhoc_sweep(struct server *srv);
/* The stream of `full` (a full JID string) has ended: its sessions end. */
void adhoc_requester_gone(struct server *srv, const char *full);
/* Live sessions (for health figures and tests). */
size_t adhoc_session_count(const struct server *srv);

/* The answer to one IQ whose payload is <command xmlns=ADHOC_NS/> from
 * `who` (the IQ's 'from' must be who->from's string form): a result or an
 * error stanza, caller owns; NULL if nothing may be answered.  The IQ
 * handler uses it; tests call it directly. */
xml_node *adhoc_handle(struct server *srv, const adhoc_requester *who, const xml_node *iq);

#endif
