/* commands.c - XEP-0050 requests for the command-line clients (commands.h). */
#include "commands.h"

#include <stdlib.h>
#include <string.h>

#define NS_COMMANDS "http://jabber.org/protocol/commands"
#define NS_DATA "jabber:x:data"

void adhoc_answer_clear(adhoc_answer *a)
{
    free(a->sessionid);
    form_free(a->form);
    for (size_t i = 0; i < a->nnotes; i++)
        free(a->notes[i].text);
    memset(a, 0, sizeof *a);
}

static void read_command(xmpp_stanza_t *cmd, adhoc_answer *a)
{
    const char *v = xmpp_stanza_get_attribute(cmd, "status");
    snprintf(a->status, sizeof a->status, "%s", v ? v : "");
    v = xmpp_stanza_get_attribute(cmd, "sessionid");
    a->sessionid = v ? strdup(v) : NULL;
    for (xmpp_stanza_t *ch = xmpp_stanza_get_children(cmd); ch; ch = xmpp_stanza_get_next(ch)) {
        const char *name = xmpp_stanza_get_name(ch);
        const char *ns = xmpp_stanza_get_ns(ch);
        if (!name)
            continue;
        if (strcmp(name, "x") == 0 && ns && strcmp(ns, NS_DATA) == 0 && !a->form) {
            a->form = form_from_stanza(ch);
        } else if (strcmp(name, "note") == 0 && a->nnotes < ADHOC_MAX_NOTES) {
            const char *type = xmpp_stanza_get_type(ch);
            adhoc_note *n = &a->notes[a->nnotes];
            snprintf(n->type, sizeof n->type, "%s", type ? type : "info");
            char *t = xmpp_stanza_get_text(ch);
            n->text = strdup(t ? t : "");
            if (t)
                xmpp_free(xmpp_stanza_get_context(ch), t);
            if (n->text)
                a->nnotes++;
        }
    }
}

int adhoc_execute(client *c, const char *node, const char *sessionid, const char *action, const form *submit,
                  adhoc_answer *a, const char *progname)
{
    memset(a, 0, sizeof *a);
    xmpp_ctx_t *ctx = client_ctx(c);
    char id[64];
    xmpp_stanza_t *iq = xmpp_iq_new(ctx, "set", client_next_id(c, "cmd", id));
    xmpp_stanza_set_to(iq, client_domain(c));
    xmpp_stanza_t *cmd = xmpp_stanza_new(ctx);
    xmpp_stanza_set_name(cmd, "command");
    xmpp_stanza_set_ns(cmd, NS_COMMANDS);
    xmpp_stanza_set_attribute(cmd, "node", node);
    if (sessionid)
        xmpp_stanza_set_attribute(cmd, "sessionid", sessionid);
    xmpp_stanza_set_attribute(cmd, "action", action ? action : "execute");
    if (submit) {
        xmpp_stanza_t *x = form_to_stanza(submit, ctx);
        xmpp_stanza_add_child(cmd, x);
        xmpp_stanza_release(x);
    }
    xmpp_stanza_add_child(iq, cmd);
    xmpp_stanza_release(cmd);
    const char *why = NULL;
    xmpp_stanza_t *answer = client_request(c, iq, 0, &why);
    xmpp_stanza_release(iq);
    if (!answer) {
        fprintf(stderr, "%s: command %s: %s\n", progname, node, why);
        return EXIT_PROTOCOL;
    }
    const char *type = xmpp_stanza_get_type(answer);
    if (type && strcmp(type, "error") == 0) {
        a->is_error = true;
        stanza_error_read(answer, &a->error);
        xmpp_stanza_release(answer);
        return EXIT_OK;
    }
    xmpp_stanza_t *res = xmpp_stanza_get_child_by_name_and_ns(answer, "command", NS_COMMANDS);
    if (!type || strcmp(type, "result") != 0 || !res) {
        fprintf(stderr, "%s: command %s: the server's answer has no command result\n", progname, node);
        xmpp_stanza_release(answer);
        return EXIT_PROTOCOL;
    }
    read_command(res, a);
    xmpp_stanza_release(answer);
    return EXIT_OK;
}

void adhoc_print_notes(FILE *out, const adhoc_answer *a)
{
    for (size_t i = 0; i < a->nnotes; i++) {
        const char *t = a->notes[i].type;
        fprintf(out, "%s%s\n", strcmp(t, "error") == 0 ? "error: " : strcmp(t, "warn") == 0 ? "warning: " : "",
                a->notes[i].text);
    }
}
