/* test_router.c - unit tests of core/router.c: service and IQ handler
 * registration, the routing decision (service domain, server JID, remote
 * domain), and stanza error replies (RFC 6120 8.3) that reach the sender and
 * are never sent in answer to an error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "server.h"

/* Records what a service received. */
typedef struct capture {
    xml_node *got[8];
    size_t n;
    router_result answer;
} capture;

static router_result capture_service(void *ud, server *srv, xml_node *stanza, const jid *from, const jid *to)
{
    capture *c = ud;
    if (c->n < 8)
        c->got[c->n++] = xml_node_clone(stanza);
    return c->answer;
}

static router_result capture_iq(void *ud, server *srv, struct session *s, xml_node *iq, const jid *from)
{
    capture *c = ud;
    if (c->n < 8)
        c->got[c->n++] = xml_node_clone(iq);
    return c->answer;
}

static void capture_clear(capture *c)
{
    for (size_t i = 0; i < c->n; i++)
        xml_node_free(c->got[i]);
    c->n = 0;
}

typedef struct fixture {
    server srv;
    capture svc;    /* "rooms.localhost" */
    capture sender; /* "peer.localhost": plays the sender, receives errors */
    capture remote;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    config_defaults(&f->srv.cfg);
    router_init(&f->srv.router);
    f->svc.answer = ROUTER_HANDLED;
    f->sender.answer = ROUTER_HANDLED;
    f->remote.answer = ROUTER_HANDLED;
    assert_int_equal(router_register_service(&f->srv.router, "rooms.localhost", capture_service, &f->svc), 0);
    assert_int_equal(router_register_service(&f->srv.router, "peer.localhost", capture_service, &f->sender), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    capture_clear(&f->svc);
    capture_clear(&f->sender);
    capture_clear(&f->remote);
    router_free(&f->srv.router);
    config_free(&f->srv.cfg);
    free(f);
    return 0;
}

static xml_node *stanza(const char *name, const char *type, const char *from, const char *to)
{
    xml_node *n = xml_node_new(name, XML_NS_CLIENT);
    if (type)
        xml_node_set_attr(n, "type", type);
    xml_node_set_attr(n, "id", "x1");
    if (from)
        xml_node_set_attr(n, "from", from);
    if (to)
        xml_node_set_attr(n, "to", to);
    return n;
}

static const char *error_condition(const xml_node *n)
{
    xml_node *e = xml_node_child(n, "error", NULL);
    if (!e)
        return NULL;
    for (xml_node *c = e->children; c; c = c->next)
        if (c->type == XML_ELEMENT && strcmp(c->ns, "urn:ietf:params:xml:ns:xmpp-stanzas") == 0 &&
            strcmp(c->name, "text") != 0)
            return c->name;
    return NULL;
}

static void test_registration_rules(void **state)
{
    fixture *f = *state;
    router *r = &f->srv.router;
    assert_int_equal(router_register_service(r, "rooms.localhost", capture_service, NULL), -1);
    assert_int_equal(router_register_iq(r, "urn:example", capture_iq, NULL), 0);
    assert_int_equal(router_register_iq(r, "urn:example", capture_iq, NULL), -1);
    assert_int_equal(router_add_feature(r, "urn:example"), 0);
    assert_int_equal(router_add_feature(r, "urn:example"), 0);
    assert_int_equal(r->nfeatures, 1);
    char name[64];
    int rc = 0;
    for (int i = 0; i < ROUTER_MAX_SERVICES + 2 && rc == 0; i++) {
        snprintf(name, sizeof name, "s%d.localhost", i);
        rc = router_register_service(r, name, capture_service, NULL);
    }
    assert_int_equal(rc, -1);
    assert_int_equal(r->nservices, ROUTER_MAX_SERVICES);
    /* Unregistering (plugins going away) frees the namespace and the feature. */
    assert_int_equal(router_register_iq(r, "urn:example:b", capture_iq, NULL), 0);
    router_unregister_iq(r, "urn:example");
    router_unregister_iq(r, "urn:never");
    router_remove_feature(r, "urn:example");
    router_remove_feature(r, "urn:never");
    assert_int_equal(r->nfeatures, 0);
    assert_int_equal(r->niqs, 1);
    assert_string_equal(r->iqs[0].ns, "urn:example:b");
    assert_int_equal(router_register_iq(r, "urn:example", capture_iq, NULL), 0);
}

static void test_service_domain_gets_stanza_with_parsed_jids(void **state)
{
    fixture *f = *state;
    router_route(&f->srv, NULL, stanza("message", "groupchat", "u@peer.localhost/r", "Room1@Rooms.LocalHost/Nick"));
    assert_int_equal(f->svc.n, 1);
    assert_string_equal(f->svc.got[0]->name, "message");
    assert_int_equal(f->sender.n, 0);
}

static void test_unhandled_service_stanza_gets_service_unavailable(void **state)
{
    fixture *f = *state;
    f->svc.answer = ROUTER_PASS;
    router_route(&f->srv, NULL, stanza("iq", "get", "u@peer.localhost/r", "rooms.localhost"));
    assert_int_equal(f->svc.n, 1);
    assert_int_equal(f->sender.n, 1);
    xml_node *err = f->sender.got[0];
    assert_string_equal(xml_node_attr(err, "type"), "error");
    assert_string_equal(xml_node_attr(err, "to"), "u@peer.localhost/r");
    assert_string_equal(xml_node_attr(err, "from"), "rooms.localhost");
    assert_string_equal(xml_node_attr(err, "id"), "x1");
    assert_string_equal(error_condition(err), "service-unavailable");
}

static void test_remote_domain_without_s2s(void **state)
{
    fixture *f = *state;
    router_route(&f->srv, NULL, stanza("message", "chat", "u@peer.localhost/r", "x@elsewhere.example"));
    assert_int_equal(f->sender.n, 1);
    assert_string_equal(error_condition(f->sender.got[0]), "remote-server-not-found");
}

static void test_remote_handler_takes_other_domains(void **state)
{
    fixture *f = *state;
    router_set_remote(&f->srv.router, capture_service, &f->remote);
    router_route(&f->srv, NULL, stanza("message", "chat", "u@peer.localhost/r", "x@elsewhere.example"));
    assert_int_equal(f->remote.n, 1);
    assert_int_equal(f->sender.n, 0);
}

static void test_error_is_never_answered(void **state)
{
    fixture *f = *state;
    router_route(&f->srv, NULL, stanza("message", "error", "u@peer.localhost/r", "x@elsewhere.example"));
    router_route(&f->srv, NULL, stanza("iq", "result", "u@peer.localhost/r", "x@elsewhere.example"));
    assert_int_equal(f->sender.n, 0);
}

static void test_server_iq_dispatch_by_namespace(void **state)
{
    fixture *f = *state;
    capture iq = {.answer = ROUTER_HANDLED};
    router_register_iq(&f->srv.router, "urn:example:a", capture_iq, &iq);
    xml_node *req = stanza("iq", "get", "u@peer.localhost/r", "localhost");
    xml_node_add_child(req, "query", "urn:example:a");
    router_route(&f->srv, NULL, req);
    assert_int_equal(iq.n, 1);
    assert_int_equal(f->sender.n, 0);

    /* a namespace nobody handles: service-unavailable, payload echoed */
    req = stanza("iq", "get", "u@peer.localhost/r", "localhost");
    xml_node_add_child(req, "query", "urn:example:nobody");
    router_route(&f->srv, NULL, req);
    assert_int_equal(f->sender.n, 1);
    assert_string_equal(error_condition(f->sender.got[0]), "service-unavailable");
    assert_non_null(xml_node_child(f->sender.got[0], "query", "urn:example:nobody"));

    /* a handler that passes falls through to the same error */
    iq.answer = ROUTER_PASS;
    req = stanza("iq", "set", "u@peer.localhost/r", "localhost");
    xml_node_add_child(req, "query", "urn:example:a");
    router_route(&f->srv, NULL, req);
    assert_int_equal(iq.n, 2);
    assert_int_equal(f->sender.n, 2);
    capture_clear(&iq);
}

static void test_malformed_to_gets_jid_malformed(void **state)
{
    fixture *f = *state;
    router_route(&f->srv, NULL, stanza("message", "chat", "u@peer.localhost/r", "a@b@c"));
    assert_int_equal(f->sender.n, 1);
    assert_string_equal(error_condition(f->sender.got[0]), "jid-malformed");
}

static router_result node_pass(void *ud, server *srv, struct session *s, const jid *from, const char *node,
                               bool items, xml_node *query, const char **error)
{
    return ROUTER_PASS;
}

static void test_node_handler_registration(void **state)
{
    fixture *f = *state;
    int rc = 0;
    for (int i = 0; i < ROUTER_MAX_NODE_HANDLERS + 1 && rc == 0; i++)
        rc = router_register_node(&f->srv.router, node_pass, NULL);
    assert_int_equal(rc, -1);
    assert_int_equal(f->srv.router.nnodes, ROUTER_MAX_NODE_HANDLERS);
}

static void test_error_stanza_builder(void **state)
{
    fixture *f = *state;
    xml_node *req = stanza("iq", "set", "u@peer.localhost/r", "localhost");
    xml_node *cmd = xml_node_add_child(req, "command", "urn:example:cmd");
    xml_node_add_child(cmd, "payload", NULL);
    xml_node *err = router_error_stanza(&f->srv, req, "modify", "bad-request", "why");
    assert_non_null(err);
    assert_string_equal(xml_node_attr(err, "type"), "error");
    assert_string_equal(xml_node_attr(err, "to"), "u@peer.localhost/r");
    assert_string_equal(xml_node_attr(err, "from"), "localhost");
    assert_string_equal(error_condition(err), "bad-request");
    assert_non_null(xml_node_child(err, "command", "urn:example:cmd"));
    xml_node_free(err);
    assert_int_equal(f->sender.n, 0); /* built, not sent */
    xml_node_free(req);
    /* nothing is built in answer to an error or a result */
    req = stanza("iq", "result", "u@peer.localhost/r", "localhost");
    assert_null(router_error_stanza(&f->srv, req, "cancel", "bad-request", NULL));
    xml_node_free(req);
    req = stanza("message", "error", "u@peer.localhost/r", "localhost");
    assert_null(router_error_stanza(&f->srv, req, "cancel", "bad-request", NULL));
    xml_node_free(req);
}

static void test_iq_result_builder(void **state)
{
    xml_node *req = stanza("iq", "get", "u@localhost/r", "localhost");
    xml_node *res = router_iq_result(req);
    assert_string_equal(xml_node_attr(res, "type"), "result");
    assert_string_equal(xml_node_attr(res, "to"), "u@localhost/r");
    assert_string_equal(xml_node_attr(res, "from"), "localhost");
    assert_string_equal(xml_node_attr(res, "id"), "x1");
    xml_node_free(req);
    xml_node_free(res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_registration_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_domain_gets_stanza_with_parsed_jids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unhandled_service_stanza_gets_service_unavailable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_domain_without_s2s, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_handler_takes_other_domains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_is_never_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_iq_dispatch_by_namespace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_to_gets_jid_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_handler_registration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_stanza_builder, setup, teardown),
        cmocka_unit_test(test_iq_result_builder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
