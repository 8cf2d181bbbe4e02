/* test_adhoc.c - unit tests of core/adhoc.c (XEP-0050): registration,
 * discovery through the router's node handlers, and the session machine
 * driven through adhoc_handle: stages, actions and their errors, session
 * ownership, expiry, limits, cancel, and that every way a session ends
 * frees the command's state exactly once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adhoc.h"
#include "router.h"
#include "server.h"

#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

typedef struct fixture {
    server srv;
    int states_made;
    int states_freed;
    int calls;
    adhoc_request last; /* copy of the last request (pointers not valid after the call) */
    bool last_had_form;
    char last_value[64];
    bool gone_during_call; /* the wizard's handler ends its requester's stream */
    jid alice, bob, guest, remote;
} fixture;

/* ---- a three-stage wizard: stage 0 asks, 1 asks more, 2 completes ---- */

typedef struct wizard_state {
    fixture *f;
    int visits;
} wizard_state;

static void wizard_free(void *p)
{
    wizard_state *w = p;
    w->f->states_freed++;
    free(w);
}

static void wizard(void *ud, const adhoc_request *req, adhoc_reply *reply)
{
    fixture *f = ud;
    f->calls++;
    f->last = *req;
    f->last_had_form = req->form != NULL;
    const char *v = dataform_value(req->form, "value");
    snprintf(f->last_value, sizeof f->last_value, "%s", v ? v : "");
    if (!*req->state) {
        wizard_state *w = calloc(1, sizeof *w);
        w->f = f;
        *req->state = w;
        f->states_made++;
    }
    ((wizard_state *)*req->state)->visits++;
    if (f->gone_during_call)
        adhoc_requester_gone(req->srv, "alice@localhost/r1");
    if (v && strcmp(v, "bad") == 0) {
        adhoc_reply_bad_field(reply, "value", "must not be %s", v);
        return;
    }
    if (v && strcmp(v, "fatal") == 0) {
        adhoc_reply_error(reply, "cancel", "conflict", NULL, false, "gave up");
        return;
    }
    unsigned next = req->stage;
    if (req->action == ADHOC_PREV)
        next = req->stage - 1;
    else if (req->action == ADHOC_EXECUTE || req->action == ADHOC_NEXT)
        next = req->stage + 1;
    if (req->action == ADHOC_COMPLETE || next >= 3) {
        adhoc_reply_note(reply, ADHOC_NOTE_INFO, "done after %d calls", ((wizard_state *)*req->state)->visits);
        adhoc_reply_completed(reply);
        return;
    }
    dataform *form = dataform_new(DATAFORM_FORM, "Wizard", NULL);
    dataform_add_text(form, "value", "Value", NULL);
    adhoc_reply_form(reply, form);
    unsigned allowed = ADHOC_ALLOW(ADHOC_NEXT) | ADHOC_ALLOW(ADHOC_COMPLETE);
    if (next > 1)
        allowed |= ADHOC_ALLOW(ADHOC_PREV);
    adhoc_reply_note(reply, ADHOC_NOTE_WARN, "stage %u", next);
    adhoc_reply_executing(reply, next, allowed, ADHOC_NEXT);
}

static void once(void *ud, const adhoc_request *req, adhoc_reply *reply)
{
    fixture *f = ud;
    f->calls++;
    dataform *form = dataform_new(DATAFORM_RESULT, "Once", NULL);
    dataform_add_text(form, "who", NULL, req->who->account ? req->who->account : "-");
    adhoc_reply_form(reply, form);
}

/* ---- fixture ---- */

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    config_defaults(&f->srv.cfg);
    router_init(&f->srv.router);
    assert_int_equal(adhoc_init(&f->srv), 0);
    assert_int_equal(adhoc_register(&f->srv, "wizard", "Wizard", NULL, wizard, wizard_free, f), 0);
    assert_int_equal(adhoc_register(&f->srv, "once", "Once", adhoc_visible_accounts, once, NULL, f), 0);
    assert_int_equal(jid_parse("alice@localhost/r1", &f->alice), 0);
    assert_int_equal(jid_parse("bob@localhost/r1", &f->bob), 0);
    assert_int_equal(jid_parse("x1@guest.localhost/g", &f->guest), 0);
    assert_int_equal(jid_parse("carol@example.org/c", &f->remote), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    adhoc_free(&f->srv);
    /* every state made was freed exactly once */
    assert_int_equal(f->states_made, f->states_freed);
    router_free(&f->srv.router);
    config_free(&f->srv.cfg);
    jid_clear(&f->alice);
    jid_clear(&f->bob);
    jid_clear(&f->guest);
    jid_clear(&f->remote);
    free(f);
    return 0;
}

static adhoc_requester requester(fixture *f, const jid *j)
{
    adhoc_requester who = {j, ADHOC_ACCOUNT, j->node};
    if (j == &f->guest)
        who = (adhoc_requester){j, ADHOC_GUEST, NULL};
    else if (j == &f->remote)
        who = (adhoc_requester){j, ADHOC_REMOTE, NULL};
    return who;
}

/* Sends <iq type=set><command node sessionid action>payload</command></iq>
 * from j and returns the answer (caller frees). */
static xml_node *send_cmd(fixture *f, const jid *j, const char *type, const char *node, const char *sid,
                          const char *action, xml_node *payload)
{
    xml_node *iq = xml_node_new("iq", XML_NS_CLIENT);
    xml_node_set_attr(iq, "type", type ? type : "set");
    xml_node_set_attr(iq, "id", "c1");
    char *full = jid_full(j);
    xml_node_set_attr(iq, "from", full);
    free(full);
    xml_node_set_attr(iq, "to", "localhost");
    xml_node *c = xml_node_add_child(iq, "command", ADHOC_NS);
    if (node)
        xml_node_set_attr(c, "node", node);
    if (sid)
        xml_node_set_attr(c, "sessionid", sid);
    if (action)
        xml_node_set_attr(c, "action", action);
    if (payload)
        xml_node_append(c, payload);
    adhoc_requester who = requester(f, j);
    xml_node *ans = adhoc_handle(&f->srv, &who, iq);
    xml_node_free(iq);
    assert_non_null(ans);
    return ans;
}

static xml_node *submit(const char *value)
{
    dataform *d = dataform_new(DATAFORM_SUBMIT, NULL, NULL);
    dataform_add_text(d, "value", NULL, value);
    xml_node *x = dataform_to_xml(d);
    dataform_free(d);
    return x;
}

static const xml_node *command_of(const xml_node *ans)
{
    return xml_node_child(ans, "command", ADHOC_NS);
}

static const char *status_of(const xml_node *ans)
{
    assert_string_equal(xml_node_attr(ans, "type"), "result");
    return xml_node_attr(command_of(ans), "status");
}

/* "condition/specific" of an error answer, e.g. "bad-request/bad-sessionid". */
static void assert_error(const xml_node *ans, const char *type, const char *condition, const char *specific)
{
    assert_string_equal(xml_node_attr(ans, "type"), "error");
    const xml_node *e = xml_node_child(ans, "error", XML_NS_CLIENT);
    assert_non_null(e);
    assert_string_equal(xml_node_attr(e, "type"), type);
    assert_non_null(xml_node_child(e, condition, NS_STANZAS));
    const xml_node *spec = xml_node_child(e, NULL, ADHOC_NS);
    if (specific) {
        assert_non_null(spec);
        assert_string_equal(spec->name, specific);
    } else {
        assert_null(spec);
    }
    /* the echoed command carries no payload */
    const xml_node *c = command_of(ans);
    if (c)
        assert_null(c->children);
}

static char *error_text(const xml_node *ans)
{
    return xml_node_child_text(xml_node_child(ans, "error", XML_NS_CLIENT), "text", NS_STANZAS);
}

/* Starts the wizard for j; returns its session id (caller frees). */
static char *start(fixture *f, const jid *j)
{
    xml_node *ans = send_cmd(f, j, NULL, "wizard", NULL, NULL, NULL);
    assert_string_equal(status_of(ans), "executing");
    char *sid = strdup(xml_node_attr(command_of(ans), "sessionid"));
    xml_node_free(ans);
    return sid;
}

/* ---- tests ---- */

static void test_registration(void **state)
{
    fixture *f = *state;
    assert_int_equal(adhoc_register(&f->srv, "wizard", "Again", NULL, wizard, NULL, f), -1);
    assert_int_equal(adhoc_register(&f->srv, ADHOC_NS, "List", NULL, wizard, NULL, f), -1);
    assert_int_equal(adhoc_register(&f->srv, "", "Empty", NULL, wizard, NULL, f), -1);
    assert_int_equal(adhoc_register(&f->srv, "nohandler", "x", NULL, NULL, NULL, f), -1);
    server bare;
    memset(&bare, 0, sizeof bare);
    assert_int_equal(adhoc_register(&bare, "x", "x", NULL, wizard, NULL, NULL), -1); /* no adhoc_init */
    adhoc_free(&bare);
    /* the feature and the IQ handler are registered */
    bool feature = false;
    for (size_t i = 0; i < f->srv.router.nfeatures; i++)
        feature |= strcmp(f->srv.router.features[i], ADHOC_NS) == 0;
    assert_true(feature);
    assert_int_equal(f->srv.router.nnodes, 1);
}

/* Asks the node handler; returns the query (caller frees) or NULL with *error. */
static xml_node *disco(fixture *f, const jid *j, const char *node, bool items, const char **error)
{
    xml_node *q = xml_node_new("query", items ? "http://jabber.org/protocol/disco#items"
                                              : "http://jabber.org/protocol/disco#info");
    router_node_handler *h = &f->srv.router.nodes[0];
    *error = NULL;
    router_result rr = h->fn(h->ud, &f->srv, NULL, j, node, items, q, error);
    if (rr == ROUTER_PASS) {
        xml_node_free(q);
        *error = "pass";
        return NULL;
    }
    if (*error) {
        xml_node_free(q);
        return NULL;
    }
    return q;
}

static size_t count_children(const xml_node *n, const char *name)
{
    size_t k = 0;
    for (const xml_node *c = xml_node_child(n, name, NULL); c; c = xml_node_next(c, name, NULL))
        k++;
    return k;
}

static void test_disco(void **state)
{
    fixture *f = *state;
    const char *error;
    /* the node handler sees no session here: everyone is "remote" to it, so
     * only the wizard (visible to all) is listed */
    xml_node *q = disco(f, &f->alice, ADHOC_NS, true, &error);
    assert_non_null(q);
    assert_int_equal(count_children(q, "item"), 1);
    const xml_node *item = xml_node_child(q, "item", NULL);
    assert_string_equal(xml_node_attr(item, "node"), "wizard");
    assert_string_equal(xml_node_attr(item, "name"), "Wizard");
    assert_string_equal(xml_node_attr(item, "jid"), "localhost");
    xml_node_free(q);

    q = disco(f, &f->alice, ADHOC_NS, false, &error);
    const xml_node *id = xml_node_child(q, "identity", NULL);
    assert_string_equal(xml_node_attr(id, "category"), "automation");
    assert_string_equal(xml_node_attr(id, "type"), "command-list");
    xml_node_free(q);

    q = disco(f, &f->alice, "wizard", false, &error);
    id = xml_node_child(q, "identity", NULL);
    assert_string_equal(xml_node_attr(id, "type"), "command-node");
    assert_string_equal(xml_node_attr(id, "name"), "Wizard");
    assert_int_equal(count_children(q, "feature"), 2);
    xml_node_free(q);

    assert_null(disco(f, &f->alice, "once", false, &error));
    assert_string_equal(error, "forbidden");
    assert_null(disco(f, &f->alice, "nonexistent", false, &error));
    assert_string_equal(error, "pass");
}

static void test_visibility_on_execute(void **state)
{
    fixture *f = *state;
    xml_node *ans = send_cmd(f, &f->guest, NULL, "once", NULL, NULL, NULL);
    assert_error(ans, "cancel", "forbidden", NULL);
    xml_node_free(ans);
    ans = send_cmd(f, &f->remote, NULL, "once", NULL, "execute", NULL);
    assert_error(ans, "cancel", "forbidden", NULL);
    xml_node_free(ans);
    ans = send_cmd(f, &f->alice, NULL, "once", NULL, "execute", NULL);
    assert_string_equal(status_of(ans), "completed");
    const xml_node *c = command_of(ans);
    assert_non_null(xml_node_attr(c, "sessionid"));
    assert_string_equal(xml_node_attr(c, "node"), "once");
    assert_null(xml_node_child(c, "actions", NULL));
    const xml_node *x = xml_node_child(c, "x", DATAFORM_NS);
    assert_non_null(x);
    dataform *df = NULL;
    assert_int_equal(dataform_parse(x, &df, NULL, 0), DATAFORM_OK);
    assert_string_equal(dataform_value(df, "who"), "alice");
    dataform_free(df);
    xml_node_free(ans);
    assert_int_equal(adhoc_session_count(&f->srv), 0);
}

static void test_stages_and_actions(void **state)
{
    fixture *f = *state;
    xml_node *ans = send_cmd(f, &f->alice, NULL, "wizard", NULL, NULL, NULL);
    assert_string_equal(status_of(ans), "executing");
    assert_int_equal(f->last.stage, 0);
    assert_int_equal(f->last.action, ADHOC_EXECUTE);
    assert_false(f->last_had_form);
    const xml_node *c = command_of(ans);
    const char *sid_attr = xml_node_attr(c, "sessionid");
    assert_int_equal(strlen(sid_attr), ADHOC_SESSIONID_LEN);
    char *sid = strdup(sid_attr);
    const xml_node *acts = xml_node_child(c, "actions", ADHOC_NS);
    assert_string_equal(xml_node_attr(acts, "execute"), "next");
    assert_non_null(xml_node_child(acts, "next", ADHOC_NS));
    assert_non_null(xml_node_child(acts, "complete", ADHOC_NS));
    assert_null(xml_node_child(acts, "prev", ADHOC_NS));
    const xml_node *note = xml_node_child(c, "note", ADHOC_NS);
    assert_string_equal(xml_node_attr(note, "type"), "warn");
    assert_non_null(xml_node_child(c, "x", DATAFORM_NS));
    xml_node_free(ans);
    assert_int_equal(adhoc_session_count(&f->srv), 1);

    /* prev is not offered at stage 1 */
    ans = send_cmd(f, &f->alice, NULL, "wizard", sid, "prev", NULL);
    assert_error(ans, "modify", "bad-request", "bad-action");
    xml_node_free(ans);
    /* an action XEP-0050 does not define */
    ans = send_cmd(f, &f->alice, NULL, "wizard", sid, "jump", NULL);
    assert_error(ans, "modify", "bad-request", "malformed-action");
    xml_node_free(ans);

    /* "execute" means the default (next), with the submitted form */
    ans = send_cmd(f, &f->alice, NULL, "wizard", sid, "execute", submit("first"));
    assert_string_equal(status_of(ans), "executing");
    assert_int_equal(f->last.stage, 1);
    assert_int_equal(f->last.action, ADHOC_NEXT);
    assert_string_equal(f->last_value, "first");
    assert_non_null(xml_node_child(xml_node_child(command_of(ans), "actions", NULL), "prev", NULL));
    xml_node_free(ans);

    /* prev now allowed; no action at all = execute = next */
    ans = send_cmd(f, &f->alice, NULL, "wizard", sid, "prev", NULL);
    assert_string_equal(status_of(ans), "executing");
    assert_int_equal(f->last.stage, 2);
    assert_int_equal(f->last.action, ADHOC_PREV);
    xml_node_free(ans);
    ans = send_cmd(f, &f->alice, NULL, "wizard", sid, NULL, NULL);
    assert_int_equal(f->last.stage, 1);
    assert_int_equal(f->last.action, ADHOC_NEXT);
    xml_node_free(ans);

    /* complete ends the session and frees its state */
    ans = send_cmd(f, &f->alice, NULL, "wizard", sid, "complete", NULL);
    assert_string_equal(status_of(ans), "completed");
    assert_string_equal(xml_node_attr(command_of(ans), "sessionid"), sid);
    assert_null(xml_node_child(command_of(ans), "actions", NULL));
    char *note_text = xml_node_child_text(command_of(ans), "note", ADHOC_NS);
    assert_string_equal(note_text, "done after 5 calls");
    free(note_text);
    xml_node_free(ans);
    assert_int_equal(f->states_freed, 1);
    assert_int_equal(adhoc_session_count(&f->srv), 0);

    /* the ended session is unknown now */
    ans = send_cmd(f, &f->alice, NULL, "wizard", sid, NULL, NULL);
    assert_error(ans, "modify", "bad-request", "bad-sessionid");
    xml_node_free(ans);
    free(sid);
}

static void test_cancel(void **state)
{
    fixture *f = *state;
    char *sid = start(f, &f->alice);
    int calls = f->calls;
    xml_node *ans = send_cmd(f, &f->alice, NULL, "wizard", sid, "cancel", submit("ignored"));
    assert_string_equal(status_of(ans), "canceled");
    assert_string_equal(xml_node_attr(command_of(ans), "sessionid"), sid);
    xml_node_free(ans);
    assert_int_equal(f->calls, calls); /* the handler is not called */
    assert_int_equal(f->states_freed, 1);
    ans = send_cmd(f, &f->alice, NULL, "wizard", sid, "cancel", NULL);
    assert_error(ans, "modify", "bad-request", "bad-sessionid");
    xml_node_free(ans);
    free(sid);
}

static void test_session_belongs_to_its_full_jid(void **state)
{
    fixture *f = *state;
    char *sid = start(f, &f->alice);
    jid other = {0};
    assert_int_equal(jid_parse("alice@localhost/other", &other), 0);
    xml_node *ans = send_cmd(f, &other, NULL, "wizard", sid, "next", NULL);
    assert_error(ans, "modify", "bad-request", "bad-sessionid");
    xml_node_free(ans);
    ans = send_cmd(f, &f->bob, NULL, "wizard", sid, "cancel", NULL);
    assert_error(ans, "modify", "bad-request", "bad-sessionid");
    xml_node_free(ans);
    /* a session id with another node */
    ans = send_cmd(f, &f->alice, NULL, "once", sid, "next", NULL);
    assert_error(ans, "modify", "bad-request", "bad-sessionid");
    xml_node_free(ans);
    /* an id nobody issued */
    ans = send_cmd(f, &f->alice, NULL, "wizard", "notasession", "next", NULL);
    assert_error(ans, "modify", "bad-request", "bad-sessionid");
    xml_node_free(ans);
    /* nothing of that touched alice's session */
    assert_int_equal(adhoc_session_count(&f->srv), 1);
    ans = send_cmd(f, &f->alice, NULL, "wizard", sid, "next", NULL);
    assert_string_equal(status_of(ans), "executing");
    xml_node_free(ans);
    jid_clear(&other);
    free(sid);
}

static void test_malformed_requests(void **state)
{
    fixture *f = *state;
    xml_node *ans = send_cmd(f, &f->alice, NULL, "nonexistent", NULL, NULL, NULL);
    assert_error(ans, "cancel", "item-not-found", NULL);
    xml_node_free(ans);
    ans = send_cmd(f, &f->alice, NULL, NULL, NULL, NULL, NULL);
    assert_error(ans, "modify", "bad-request", NULL);
    xml_node_free(ans);
    ans = send_cmd(f, &f->alice, "get", "wizard", NULL, NULL, NULL);
    assert_error(ans, "modify", "bad-request", NULL);
    xml_node_free(ans);
    ans = send_cmd(f, &f->alice, NULL, "wizard", NULL, "complete", NULL);
    assert_error(ans, "modify", "bad-request", "bad-action");
    xml_node_free(ans);
    ans = send_cmd(f, &f->alice, NULL, "wizard", NULL, "EXECUTE", NULL);
    assert_error(ans, "modify", "bad-request", "malformed-action");
    xml_node_free(ans);
    /* a broken form on the first call: no session is made */
    xml_node *x = xml_node_new("x", DATAFORM_NS);
    ans = send_cmd(f, &f->alice, NULL, "wizard", NULL, NULL, x);
    assert_error(ans, "modify", "bad-request", "bad-payload");
    char *t = error_text(ans);
    assert_string_equal(t, "the form has no type");
    free(t);
    xml_node_free(ans);
    assert_int_equal(adhoc_session_count(&f->srv), 0);
    assert_int_equal(f->calls, 0);
}

static void test_errors_keep_or_end_the_session(void **state)
{
    fixture *f = *state;
    char *sid = start(f, &f->alice);
    /* a field the handler refuses: bad-payload naming it, session kept */
    xml_node *ans = send_cmd(f, &f->alice, NULL, "wizard", sid, "next", submit("bad"));
    assert_error(ans, "modify", "bad-request", "bad-payload");
    char *t = error_text(ans);
    assert_string_equal(t, "value: must not be bad");
    free(t);
    assert_string_equal(xml_node_attr(command_of(ans), "sessionid"), sid);
    xml_node_free(ans);
    assert_int_equal(f->states_freed, 0);
    /* a form that is not a submission: refused by the framework, session kept */
    dataform *d = dataform_new(DATAFORM_RESULT, NULL, NULL);
    xml_node *x = dataform_to_xml(d);
    dataform_free(d);
    ans = send_cmd(f, &f->alice, NULL, "wizard", sid, "next", x);
    assert_error(ans, "modify", "bad-request", "bad-payload");
    xml_node_free(ans);
    /* resubmitted correctly: the same stage again */
    ans = send_cmd(f, &f->alice, NULL, "wizard", sid, "next", submit("good"));
    assert_string_equal(status_of(ans), "executing");
    assert_int_equal(f->last.stage, 1);
    xml_node_free(ans);
    /* an error that ends the session */
    ans = send_cmd(f, &f->alice, NULL, "wizard", sid, "next", submit("fatal"));
    assert_error(ans, "cancel", "conflict", NULL);
    xml_node_free(ans);
    assert_int_equal(f->states_freed, 1);
    assert_int_equal(adhoc_session_count(&f->srv), 0);
    free(sid);
    /* on the first call an error always ends the session */
    ans = send_cmd(f, &f->alice, NULL, "wizard", NULL, NULL, submit("bad"));
    assert_error(ans, "modify", "bad-request", "bad-payload");
    xml_node_free(ans);
    assert_int_equal(adhoc_session_count(&f->srv), 0);
    assert_int_equal(f->states_freed, 2);
}

static void test_limits(void **state)
{
    fixture *f = *state;
    char *sids[ADHOC_MAX_SESSIONS_PER_REQUESTER];
    for (int i = 0; i < ADHOC_MAX_SESSIONS_PER_REQUESTER; i++)
        sids[i] = start(f, &f->alice);
    xml_node *ans = send_cmd(f, &f->alice, NULL, "wizard", NULL, NULL, NULL);
    assert_error(ans, "cancel", "not-allowed", NULL);
    xml_node_free(ans);
    /* others are not affected */
    char *bobs = start(f, &f->bob);
    /* cancelling one makes room */
    ans = send_cmd(f, &f->alice, NULL, "wizard", sids[3], "cancel", NULL);
    xml_node_free(ans);
    free(sids[3]);
    sids[3] = start(f, &f->alice);
    assert_int_equal(adhoc_session_count(&f->srv), ADHOC_MAX_SESSIONS_PER_REQUESTER + 1);
    for (int i = 0; i < ADHOC_MAX_SESSIONS_PER_REQUESTER; i++)
        free(sids[i]);
    free(bobs);
    /* teardown's adhoc_free frees the remaining states */
}

static void test_requester_gone(void **state)
{
    fixture *f = *state;
    char *a1 = start(f, &f->alice), *a2 = start(f, &f->alice), *b = start(f, &f->bob);
    adhoc_requester_gone(&f->srv, "alice@localhost/r1");
    assert_int_equal(f->states_freed, 2);
    assert_int_equal(adhoc_session_count(&f->srv), 1);
    xml_node *ans = send_cmd(f, &f->alice, NULL, "wizard", a1, "next", NULL);
    assert_error(ans, "modify", "bad-request", "bad-sessionid");
    xml_node_free(ans);
    adhoc_requester_gone(&f->srv, "alice@localhost/r1"); /* again: nothing left */
    adhoc_requester_gone(&f->srv, "nobody@localhost/x");
    ans = send_cmd(f, &f->bob, NULL, "wizard", b, "next", NULL);
    assert_string_equal(status_of(ans), "executing");
    xml_node_free(ans);
    free(a1);
    free(a2);
    free(b);
}

static void test_unregister(void **state)
{
    fixture *f = *state;
    char *a = start(f, &f->alice), *b = start(f, &f->bob);
    assert_int_equal(adhoc_register(&f->srv, "later", "Later", NULL, once, NULL, f), 0);
    /* The wizard goes: its sessions end (states freed), the others stay. */
    assert_int_equal(adhoc_unregister(&f->srv, "wizard"), 0);
    assert_int_equal(f->states_freed, 2);
    assert_int_equal(adhoc_session_count(&f->srv), 0);
    assert_int_equal(adhoc_unregister(&f->srv, "wizard"), -1);
    assert_int_equal(adhoc_unregister(&f->srv, "nothing"), -1);
    xml_node *ans = send_cmd(f, &f->alice, NULL, "wizard", NULL, "execute", NULL);
    assert_error(ans, "cancel", "item-not-found", NULL);
    xml_node_free(ans);
    /* The commands after it in the table still answer. */
    ans = send_cmd(f, &f->alice, NULL, "later", NULL, "execute", NULL);
    assert_string_equal(status_of(ans), "completed");
    xml_node_free(ans);
    ans = send_cmd(f, &f->alice, NULL, "once", NULL, "execute", NULL);
    assert_string_equal(status_of(ans), "completed");
    xml_node_free(ans);
    /* And it can come back. */
    assert_int_equal(adhoc_register(&f->srv, "wizard", "Wizard", NULL, wizard, wizard_free, f), 0);
    free(a);
    free(b);
}

static void test_requester_gone_during_the_call(void **state)
{
    fixture *f = *state;
    char *sid = start(f, &f->alice);
    f->gone_during_call = true;
    adhoc_requester who = requester(f, &f->alice);
    xml_node *iq = xml_node_new("iq", XML_NS_CLIENT);
    xml_node_set_attr(iq, "type", "set");
    xml_node_set_attr(iq, "id", "g1");
    xml_node_set_attr(iq, "from", "alice@localhost/r1");
    xml_node *c = xml_node_add_child(iq, "command", ADHOC_NS);
    xml_node_set_attr(c, "node", "wizard");
    xml_node_set_attr(c, "sessionid", sid);
    assert_null(adhoc_handle(&f->srv, &who, iq)); /* nobody left to answer */
    xml_node_free(iq);
    assert_int_equal(f->states_freed, 1);
    assert_int_equal(adhoc_session_count(&f->srv), 0);
    free(sid);
}

static void test_expiry(void **state)
{
    fixture *f = *state;
    f->srv.cfg.adhoc_session_timeout_s = 1;
    char *s1 = start(f, &f->alice), *s2 = start(f, &f->alice);
    struct timespec ts = {1, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    /* found stale on use */
    xml_node *ans = send_cmd(f, &f->alice, NULL, "wizard", s1, "next", NULL);
    assert_error(ans, "cancel", "not-allowed", "session-expired");
    xml_node_free(ans);
    assert_int_equal(f->states_freed, 1);
    /* expired by the sweep */
    adhoc_sweep(&f->srv);
    assert_int_equal(f->states_freed, 2);
    assert_int_equal(adhoc_session_count(&f->srv), 0);
    ans = send_cmd(f, &f->alice, NULL, "wizard", s2, "cancel", NULL);
    assert_error(ans, "cancel", "not-allowed", "session-expired");
    xml_node_free(ans);
    /* only to its owner: anyone else hears of no such session */
    ans = send_cmd(f, &f->bob, NULL, "wizard", s2, "next", NULL);
    assert_error(ans, "modify", "bad-request", "bad-sessionid");
    xml_node_free(ans);
    /* expired sessions do not count against the limit */
    for (int i = 0; i < ADHOC_MAX_SESSIONS_PER_REQUESTER; i++) {
        char *s = start(f, &f->alice);
        free(s);
    }
    free(s1);
    free(s2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_registration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disco, setup, teardown),
        cmocka_unit_test_setup_teardown(test_visibility_on_execute, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stages_and_actions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_belongs_to_its_full_jid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_keep_or_end_the_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requester_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unregister, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requester_gone_during_the_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
