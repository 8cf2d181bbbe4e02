/* weblogin.c - account login over HTTP (weblogin.h, specs/http-api.md).
 *
 * POST /api/v1/session reads the account's SCRAM-SHA-256 secrets on the loop
 * (LMDB reads belong to the loop), then derives the StoredKey of the offered
 * password on the libuv thread pool (PBKDF2, milliseconds of CPU) and
 * compares in constant time there (GNU SASL derives with gnulib's own
 * PBKDF2 and keeps no shared state); the answer is given back on the loop.  An
 * unknown account costs the same derivation against made-up secrets, and
 * gets the same answer as a wrong password.
 */
#include "weblogin.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "jid.h"
#include "record.h"
#include "server.h"
#include "web.h"

#define LOGIN_REFUSED "wrong user name or password"

typedef struct login_job {
    uv_work_t work;
    server *srv;
    web_response *res;   /* deferred; answered in login_done */
    char *user;          /* owned: normalised local part (or bare JID of another domain) */
    char *password;      /* owned; wiped before it is freed */
    size_t password_len;
    account_scram scram; /* the account's secrets, or made-up ones; wiped */
    bool known;          /* an account of this server */
    bool ok;             /* set by the worker */
} login_job;

static void login_job_free(login_job *job)
{
    if (job->password) {
        OPENSSL_cleanse(job->password, job->password_len);
        free(job->password);
    }
    OPENSSL_cleanse(&job->scram, sizeof job->scram);
    free(job->user);
    free(job);
}

/* On a worker thread: touches nothing but the job. */
static void login_work(uv_work_t *req)
{
    login_job *job = req->data;
    bool match = account_verify_scram(&job->scram, ACCOUNT_SHA256, job->password) == STORE_OK;
    job->ok = job->known && match;
}

/* Back on the loop. */
static void login_done(uv_work_t *req, int status)
{
    login_job *job = req->data;
    server *srv = job->srv;
    if (status != 0) {
        web_reply_error(job->res, 503, NULL, "the login could not be checked; try again");
    } else if (!job->ok) {
        log_write(&srv->log, LOG_INFO, "web", "HTTP login refused for %s", job->user);
        web_reply_error(job->res, 401, NULL, LOGIN_REFUSED);
    } else {
        char token[WEB_TOKEN_LEN + 1];
        uint64_t expires_ms;
        if (web_token_issue(srv, job->user, token, &expires_ms) != 0) {
            web_reply_error(job->res, 503, NULL, "no login token can be issued now");
        } else {
            char when[32];
            web_format_time(expires_ms, when, sizeof when);
            log_write(&srv->log, LOG_INFO, "web", "HTTP login of %s", job->user);
            web_reply_json(job->res, 201,
                           json_pack("{s:s, s:s, s:s}", "token", token, "user", job->user, "expires", when));
            OPENSSL_cleanse(token, sizeof token);
        }
    }
    login_job_free(job);
}

/* A JSON string without NUL bytes, or NULL. */
static const char *plain_string(json_t *j)
{
    if (!json_is_string(j))
        return NULL;
    const char *s = json_string_value(j);
    return strlen(s) == json_string_length(j) ? s : NULL;
}

static void on_login(void *ud, server *srv, const web_request *req, web_response *res)
{
    if (!req->body) {
        web_reply_error(res, 400, NULL, "send a JSON object: {\"user\": \"...\", \"password\": \"...\"}");
        return;
    }
    const char *given = plain_string(json_object_get(req->body, "user"));
    const char *password = plain_string(json_object_get(req->body, "password"));
    if (!given || !given[0]) {
        web_reply_error(res, 400, "user", "a user name (or bare JID) is required");
        return;
    }
    if (!password) {
        web_reply_error(res, 400, "password", "a password is required");
        return;
    }
    /* "alice" or "alice@<domain>"; a JID of another domain (the guests' too)
     * names no account here. */
    char *user = NULL;
    bool ours = true;
    if (strchr(given, '@') || strchr(given, '/')) {
        jid j = {0};
        if (jid_parse(given, &j) != 0 || !j.node || j.resource) {
            jid_clear(&j);
            web_reply_error(res, 400, "user", "not a user name or a bare JID (user@domain)");
            return;
        }
        ours = strcmp(j.domain, srv->cfg.domain) == 0;
        user = ours ? j.node : jid_bare(&j);
        if (ours)
            j.node = NULL;
        jid_clear(&j);
    } else {
        user = jid_nodeprep(given);
        if (!user) {
            web_reply_error(res, 400, "user", "not a valid user name");
            return;
        }
    }
    login_job *job = calloc(1, sizeof *job);
    if (!user || !job || !(job->password = strdup(password))) {
        free(user);
        if (job)
            login_job_free(job);
        web_reply_error(res, 503, NULL, "out of memory");
        return;
    }
    job->srv = srv;
    job->user = user;
    job->password_len = strlen(password);
    int rc = ours && strlen(user) <= RECORD_USER_MAX ? account_get_scram(srv->store, user, ACCOUNT_SHA256, &job->scram)
                                                     : STORE_NOTFOUND;
    if (rc == STORE_OK) {
        job->known = true;
    } else if (rc == STORE_NOTFOUND) {
        job->scram.iterations = ACCOUNT_SCRAM_ITER_DEFAULT;
        job->scram.salt_len = 16;
        job->scram.key_len = 32;
        RAND_bytes(job->scram.salt, (int)job->scram.salt_len);
    } else {
        log_write(&srv->log, LOG_ERROR, "web", "HTTP login of %s: store error %d", user, rc);
        login_job_free(job);
        web_reply_error(res, 500, NULL, "the account store failed");
        return;
    }
    job->res = web_defer(res);
    job->work.data = job;
    if (uv_queue_work(srv->loop, &job->work, login_work, login_done) != 0) {
        login_job_free(job);
        web_reply_error(res, 503, NULL, "the login could not be checked; try again");
    }
}

static void on_whoami(void *ud, server *srv, const web_request *req, web_response *res)
{
    char when[32];
    web_format_time(web_token_expires(srv, req), when, sizeof when);
    web_reply_json(res, 200, json_pack("{s:s, s:s}", "user", req->user, "expires", when));
}

static void on_logout(void *ud, server *srv, const web_request *req, web_response *res)
{
    web_token_revoke(srv, req);
    log_write(&srv->log, LOG_INFO, "web", "HTTP logout of %s", req->user);
    web_reply_json(res, 204, NULL);
}

int weblogin_register(server *srv)
{
    if (web_route(srv, "POST", "/api/v1/session", 0, on_login, NULL) != 0 ||
        web_route(srv, "GET", "/api/v1/session", WEB_AUTH, on_whoami, NULL) != 0 ||
        web_route(srv, "DELETE", "/api/v1/session", WEB_AUTH, on_logout, NULL) != 0)
        return -1;
    return 0;
}
