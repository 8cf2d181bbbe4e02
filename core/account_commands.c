/* account_commands.c - the account commands offered through adhoc.h:
 *
 * server-info      one stage: a result form with the server's version,
 *                  uptime in seconds and number of connected sessions.
 * change-password  stage 0 asks for old_password, new_password and
 *                  confirm (text-private); the submission (complete) is
 *                  checked field by field (each problem is a bad-payload
 *                  error naming the field, and the session stays open for a
 *                  corrected submission), then the account's SCRAM secrets
 *                  are replaced: the next login needs the new password.
 *                  The session counts wrong old passwords: the third ends
 *                  it (not-allowed), so one session cannot be used to guess.
 */
#include "account_commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "adhoc.h"
#include "log.h"
#include "server.h"

#define FORM_TYPE_SERVER_INFO "urn:onair:commands:server-info"
#define FORM_TYPE_CHANGE_PASSWORD "urn:onair:commands:change-password"
#define MAX_WRONG_PASSWORDS 3

/* change-password's state for one session (freed by adhoc with free()). */
typedef struct password_session {
    unsigned wrong; /* wrong old passwords submitted */
} password_session;

static void server_info(void *ud, const adhoc_request *req, adhoc_reply *reply)
{
    server *srv = req->srv;
    dataform *f = dataform_new(DATAFORM_RESULT, "Server information", NULL);
    if (!f) {
        adhoc_reply_error(reply, "wait", "internal-server-error", NULL, false, NULL);
        return;
    }
    char uptime[32], sessions[32];
    snprintf(uptime, sizeof uptime, "%llu", (unsigned long long)((server_now_ms() - srv->started_ms) / 1000));
    snprintf(sessions, sizeof sessions, "%zu", srv->nsessions);
    bool ok = dataform_add_form_type(f, FORM_TYPE_SERVER_INFO) &&
              dataform_add_text(f, "version", "Version", ONAIR_VERSION) &&
              dataform_add_text(f, "uptime", "Uptime (seconds)", uptime) &&
              dataform_add_text(f, "sessions", "Connected sessions", sessions);
    if (!ok) {
        dataform_free(f);
        adhoc_reply_error(reply, "wait", "internal-server-error", NULL, false, NULL);
        return;
    }
    adhoc_reply_form(reply, f);
    adhoc_reply_completed(reply);
}

static bool add_secret(dataform *f, const char *var, const char *label)
{
    dataform_field *fl = dataform_add_field(f, DATAFORM_TEXT_PRIVATE, var, label);
    if (fl)
        dataform_field_set_required(fl, true);
    return fl != NULL;
}

static void ask_passwords(const adhoc_request *req, adhoc_reply *reply)
{
    *req->state = calloc(1, sizeof(password_session));
    if (!*req->state) {
        adhoc_reply_error(reply, "wait", "internal-server-error", NULL, false, NULL);
        return;
    }
    dataform *f = dataform_new(DATAFORM_FORM, "Change password",
                               "Enter your current password and the new one twice.");
    if (!f || !dataform_add_form_type(f, FORM_TYPE_CHANGE_PASSWORD) ||
        !add_secret(f, "old_password", "Current password") || !add_secret(f, "new_password", "New password") ||
        !add_secret(f, "confirm", "New password again")) {
        dataform_free(f);
        adhoc_reply_error(reply, "wait", "internal-server-error", NULL, false, NULL);
        return;
    }
    adhoc_reply_form(reply, f);
    adhoc_reply_executing(reply, 1, ADHOC_ALLOW(ADHOC_COMPLETE), ADHOC_COMPLETE);
}

static void change_password(void *ud, const adhoc_request *req, adhoc_reply *reply)
{
    server *srv = req->srv;
    if (req->stage == 0) {
        ask_passwords(req, reply);
        return;
    }
    static const char *const vars[] = {"old_password", "new_password", "confirm"};
    const char *v[3];
    for (size_t i = 0; i < 3; i++) {
        v[i] = dataform_value(req->form, vars[i]);
        if (!v[i] || !v[i][0]) {
            adhoc_reply_bad_field(reply, vars[i], "required");
            return;
        }
    }
    if (strcmp(v[1], v[2]) != 0) {
        adhoc_reply_bad_field(reply, "confirm", "does not match new_password");
        return;
    }
    int rc = account_check_password(srv->store, req->who->account, v[0]);
    if (rc == ACCOUNT_MISMATCH) {
        password_session *ps = *req->state;
        if (++ps->wrong >= MAX_WRONG_PASSWORDS)
            adhoc_reply_error(reply, "cancel", "not-allowed", NULL, false,
                              "old_password: wrong password %d times; the session has ended", MAX_WRONG_PASSWORDS);
        else
            adhoc_reply_bad_field(reply, "old_password", "wrong password");
        return;
    }
    if (rc == STORE_OK)
        rc = account_set_password(srv->store, req->who->account, v[1], 0);
    if (rc == STORE_ERROR && account_exists(srv->store, req->who->account)) {
        /* SASLprep refused it (e.g. control characters) */
        adhoc_reply_bad_field(reply, "new_password", "not a usable password");
        return;
    }
    if (rc != STORE_OK) {
        log_write(&srv->log, LOG_ERROR, "adhoc", "change-password for %s failed: store error %d", req->who->account,
                  rc);
        adhoc_reply_error(reply, "wait", "internal-server-error", NULL, false, "the password was not changed");
        return;
    }
    log_write(&srv->log, LOG_INFO, "adhoc", "%s changed the password", req->who->account);
    adhoc_reply_note(reply, ADHOC_NOTE_INFO, "Password changed.");
    adhoc_reply_completed(reply);
}

int account_commands_register(server *srv)
{
    int rc = adhoc_register(srv, "server-info", "Server information", adhoc_visible_accounts, server_info, NULL, NULL);
    if (rc == 0)
        rc = adhoc_register(srv, "change-password", "Change password", adhoc_visible_accounts, change_password, free,
                            NULL);
    return rc;
}
