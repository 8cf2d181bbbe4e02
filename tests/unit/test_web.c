/* test_web.c - unit tests of the HTTP framework in core/web.c (web.h), with
 * the real libwebsockets context on a private libuv loop and a blocking
 * client on a second thread over loopback: route patterns and ":name"
 * captures, decoded query parameters, the bearer-authenticated user, JSON
 * bodies, deferred answers (also one answered after the server stopped, with
 * its connection gone), a handler that forgets to answer, a second answer,
 * extra headers, route registration errors, and a clean end: after web_stop
 * the loop ends by itself and closes with no handle left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "server.h"
#include "web.h"

typedef struct fixture {
    uv_loop_t loop;
    server srv;
    int port;
    char token[WEB_TOKEN_LEN + 1];
    uv_async_t stop;
    uv_timer_t later;    /* answers GET /later */
    uv_timer_t watchdog; /* fails the test if the loop does not end */
    web_response *later_res;
    web_response *orphan_res;
    atomic_int orphan_seen;
    int header_results[4];
    char failures[4096]; /* written by the client thread, read after it ended */
} fixture;

/* -- handlers (on the loop) ---------------------------------------------- */

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static void on_echo(void *ud, server *srv, const web_request *req, web_response *res)
{
    json_t *params = json_array();
    for (size_t i = 0; i < req->nparams; i++)
        json_array_append_new(params, json_string(req->params[i]));
    web_reply_json(res, 200,
                   json_pack("{s:s, s:s, s:o, s:o, s:o, s:b, s:o, s:O?}", "method", req->method, "path", req->path,
                             "params", params, "q", str_or_null(web_query(req, "q")), "empty",
                             str_or_null(web_query(req, "e")), "missing", web_query(req, "zz") == NULL, "user",
                             str_or_null(req->user), "body", req->body));
}

static void on_auth(void *ud, server *srv, const web_request *req, web_response *res)
{
    web_reply_json(res, 200, json_pack("{s:s}", "user", req->user));
}

static void on_none(void *ud, server *srv, const web_request *req, web_response *res)
{
}

/* The fallback: paths no route matches, outside /api/, answered as text. */
static void on_page(void *ud, server *srv, const web_request *req, web_response *res)
{
    char text[256];
    snprintf(text, sizeof text, "%s %s body=%s host=%s", req->method, req->path, req->body ? "json" : "none",
             req->host ? req->host : "-");
    web_add_header(res, "Cache-Control", "max-age=60");
    if (req->if_none_match && strcmp(req->if_none_match, "\"v1\"") == 0) {
        web_reply_body(res, 304, NULL, NULL, 0);
        return;
    }
    web_reply_body(res, strcmp(req->path, "/missing") == 0 ? 404 : 200, "text/plain; charset=utf-8", text,
                    strlen(text));
}

static void on_twice(void *ud, server *srv, const web_request *req, web_response *res)
{
    fixture *f = ud;
    f->header_results[0] = web_add_header(res, "Location", "/t/new");
    f->header_results[1] = web_add_header(res, "Content-Length", "5");
    f->header_results[2] = web_add_header(res, "X-Bad", "a\r\nSet-Cookie: x=1");
    f->header_results[3] = web_add_header(res, "X Bad", "v");
    web_reply_json(res, 201, json_pack("{s:i}", "n", 1));
    web_reply_json(res, 200, json_pack("{s:i}", "n", 2));
    web_reply_error(res, 400, NULL, "ignored");
}

static void answer_later(uv_timer_t *t)
{
    fixture *f = t->data;
    web_reply_json(f->later_res, 200, json_pack("{s:b}", "later", 1));
    f->later_res = NULL;
}

static void on_later(void *ud, server *srv, const web_request *req, web_response *res)
{
    fixture *f = ud;
    f->later_res = web_defer(res);
    uv_timer_start(&f->later, answer_later, 20, 0);
}

static void on_orphan(void *ud, server *srv, const web_request *req, web_response *res)
{
    fixture *f = ud;
    f->orphan_res = web_defer(res);
    atomic_store(&f->orphan_seen, 1);
}

static void on_stop(uv_async_t *a)
{
    fixture *f = a->data;
    web_stop(&f->srv);
    /* the connection is gone now: this answer is dropped, its memory released */
    web_reply_json(f->orphan_res, 200, json_pack("{s:b}", "late", 1));
    f->orphan_res = NULL;
    uv_close((uv_handle_t *)&f->stop, NULL);
    uv_close((uv_handle_t *)&f->later, NULL);
    uv_unref((uv_handle_t *)&f->watchdog); /* still fires if libwebsockets keeps the loop alive */
}

static void on_watchdog(uv_timer_t *t)
{
    fprintf(stderr, "test_web: the loop did not end after web_stop\n");
    abort();
}

/* -- the client (its own thread, blocking sockets) ----------------------- */

typedef struct reply {
    int status;
    char head[4096];
    char body[8192]; /* as received */
    json_t *json;    /* the body parsed, when it is JSON */
} reply;

static void note_failure(fixture *f, const char *fmt, ...)
{
    size_t len = strlen(f->failures);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->failures + len, sizeof f->failures - len, fmt, ap);
    va_end(ap);
    len = strlen(f->failures);
    if (len + 1 < sizeof f->failures) {
        f->failures[len] = '\n';
        f->failures[len + 1] = '\0';
    }
}

static int client_connect(fixture *f)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One request on a fresh connection (Connection: close); reads to EOF. */
static int http(fixture *f, const char *method, const char *path, const char *extra, const char *body, reply *out)
{
    memset(out, 0, sizeof *out);
    int fd = client_connect(f);
    if (fd < 0)
        return -1;
    char req[2048];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s", method, path,
                     extra ? extra : "");
    if (body)
        n += snprintf(req + n, sizeof req - (size_t)n,
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
    else
        n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    char buf[16384];
    size_t got = 0;
    ssize_t r;
    while (got + 1 < sizeof buf && (r = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)r;
    close(fd);
    buf[got] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (!end || sscanf(buf, "HTTP/1.1 %d", &out->status) != 1)
        return -1;
    snprintf(out->head, sizeof out->head, "%.*s", (int)(end - buf), buf);
    snprintf(out->body, sizeof out->body, "%s", end + 4);
    if (end[4])
        out->json = json_loads(end + 4, 0, NULL);
    return 0;
}

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

#define CHECK(cond)                                                                                                \
    do {                                                                                                           \
        if (!(cond))                                                                                               \
            note_failure(f, "%s:%d: %s", __FILE__, __LINE__, #cond);                                               \
    } while (0)

static void *client(void *arg)
{
    fixture *f = arg;
    reply r;
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", f->token);

    /* captures and the decoded query */
    CHECK(http(f, "GET", "/t/one/x/two?q=hello+world&e&q=second", NULL, NULL, &r) == 0);
    CHECK(r.status == 200);
    CHECK(r.json && strcmp(jstr(r.json, "method"), "GET") == 0 && strcmp(jstr(r.json, "path"), "/t/one/x/two") == 0);
    json_t *p = json_object_get(r.json, "params");
    CHECK(json_array_size(p) == 2 && strcmp(json_string_value(json_array_get(p, 0)), "one") == 0 &&
          strcmp(json_string_value(json_array_get(p, 1)), "two") == 0);
    CHECK(jstr(r.json, "q") && strcmp(jstr(r.json, "q"), "hello world") == 0);
    CHECK(jstr(r.json, "empty") && strcmp(jstr(r.json, "empty"), "") == 0);
    CHECK(json_is_true(json_object_get(r.json, "missing")));
    CHECK(json_is_null(json_object_get(r.json, "user")) && json_is_null(json_object_get(r.json, "body")));
    json_decref(r.json);

    /* percent-decoding in the path, the user of a valid token */
    CHECK(http(f, "GET", "/t/caf%C3%A9/x/b%20c?q=%26%3D", auth, NULL, &r) == 0);
    p = json_object_get(r.json, "params");
    CHECK(r.status == 200 && strcmp(json_string_value(json_array_get(p, 0)), "caf\xc3\xa9") == 0 &&
          strcmp(json_string_value(json_array_get(p, 1)), "b c") == 0);
    CHECK(jstr(r.json, "q") && strcmp(jstr(r.json, "q"), "&=") == 0);
    CHECK(jstr(r.json, "user") && strcmp(jstr(r.json, "user"), "alice") == 0);
    json_decref(r.json);

    /* an empty capture does not match (the path goes to the fallback); a body reaches the handler */
    CHECK(http(f, "GET", "/t//x/two", NULL, NULL, &r) == 0 && r.status == 200);
    CHECK(!r.json && strncmp(r.body, "GET /t/", 7) == 0);
    json_decref(r.json);
    CHECK(http(f, "POST", "/t/a/x/b", NULL, "{\"k\": [1, 2]}", &r) == 0 && r.status == 200);
    CHECK(json_integer_value(json_array_get(json_object_get(json_object_get(r.json, "body"), "k"), 1)) == 2);
    json_decref(r.json);
    CHECK(http(f, "DELETE", "/t/a/x/b", NULL, NULL, &r) == 0 && r.status == 405);
    CHECK(strstr(r.head, "\r\nAllow: GET, POST") != NULL);
    json_decref(r.json);

    /* WEB_AUTH */
    CHECK(http(f, "GET", "/auth", NULL, NULL, &r) == 0 && r.status == 401);
    CHECK(strstr(r.head, "\r\nWWW-Authenticate: Bearer") != NULL);
    json_decref(r.json);
    CHECK(http(f, "GET", "/auth", auth, NULL, &r) == 0 && r.status == 200);
    CHECK(r.json && strcmp(jstr(r.json, "user"), "alice") == 0);
    json_decref(r.json);

    /* a handler without an answer gets a 500 in the error format */
    CHECK(http(f, "GET", "/none", NULL, NULL, &r) == 0 && r.status == 500);
    CHECK(json_integer_value(json_object_get(json_object_get(r.json, "error"), "status")) == 500);
    json_decref(r.json);

    /* the first answer counts; headers */
    CHECK(http(f, "GET", "/twice", NULL, NULL, &r) == 0 && r.status == 201);
    CHECK(json_integer_value(json_object_get(r.json, "n")) == 1);
    CHECK(strstr(r.head, "\r\nLocation: /t/new") != NULL && !strstr(r.head, "Set-Cookie"));
    CHECK(strstr(r.head, "\r\ncache-control: no-store") != NULL);
    CHECK(strstr(r.head, "\r\ncontent-type: application/json") != NULL);
    json_decref(r.json);

    /* the fallback: any method on paths no route matches, never under /api/ */
    CHECK(http(f, "GET", "/page/a", NULL, NULL, &r) == 0 && r.status == 200);
    CHECK(strcmp(r.body, "GET /page/a body=none host=t") == 0);
    CHECK(strstr(r.head, "\r\ncontent-type: text/plain; charset=utf-8") != NULL);
    CHECK(strstr(r.head, "\r\nCache-Control: max-age=60") != NULL && !strstr(r.head, "no-store"));
    CHECK(strstr(r.head, "\r\ncontent-length: 28") != NULL);
    CHECK(strstr(r.head, "\r\nx-content-type-options: nosniff") != NULL);
    json_decref(r.json);
    CHECK(http(f, "HEAD", "/page/a", NULL, NULL, &r) == 0 && r.status == 200);
    CHECK(strstr(r.head, "\r\ncontent-length: 29") != NULL && r.body[0] == '\0');
    CHECK(http(f, "POST", "/page/b", NULL, "{\"a\": 1}", &r) == 0 && r.status == 200);
    CHECK(strcmp(r.body, "POST /page/b body=none host=t") == 0);
    CHECK(http(f, "GET", "/missing", NULL, NULL, &r) == 0 && r.status == 404);
    CHECK(strncmp(r.body, "GET /missing", 12) == 0);
    CHECK(http(f, "GET", "/page/c", "If-None-Match: \"v1\"\r\n", NULL, &r) == 0 && r.status == 304);
    CHECK(r.body[0] == '\0' && !strstr(r.head, "\r\ncontent-type") && strstr(r.head, "max-age=60"));
    CHECK(http(f, "GET", "/api/v1/nothing", NULL, NULL, &r) == 0 && r.status == 404);
    CHECK(r.json && json_integer_value(json_object_get(json_object_get(r.json, "error"), "status")) == 404);
    CHECK(strstr(r.head, "\r\ncache-control: no-store") != NULL);
    json_decref(r.json);
    CHECK(http(f, "GET", "/api", NULL, NULL, &r) == 0 && r.status == 404 && r.json);
    json_decref(r.json);

    /* a deferred answer */
    CHECK(http(f, "GET", "/later", NULL, NULL, &r) == 0 && r.status == 200);
    CHECK(json_is_true(json_object_get(r.json, "later")));
    json_decref(r.json);

    /* a deferred answer still due when the server stops */
    int fd = client_connect(f);
    CHECK(fd >= 0);
    const char orphan[] = "GET /orphan HTTP/1.1\r\nHost: t\r\n\r\n";
    CHECK(write(fd, orphan, sizeof orphan - 1) == (ssize_t)(sizeof orphan - 1));
    for (int i = 0; i < 1000 && !atomic_load(&f->orphan_seen); i++)
        usleep(10000);
    CHECK(atomic_load(&f->orphan_seen));
    uv_async_send(&f->stop);
    char c;
    CHECK(read(fd, &c, 1) <= 0); /* closed without an answer */
    close(fd);
    return NULL;
}

/* -- the tests ----------------------------------------------------------- */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    return ntohs(sa.sin_port);
}

static void start(fixture *f)
{
    uv_loop_init(&f->loop);
    f->srv.loop = &f->loop;
    config_defaults(&f->srv.cfg);
    f->srv.cfg.path = strdup("test_web.conf");
    for (size_t i = 1; i < f->srv.cfg.http_nlisten; i++)
        free(f->srv.cfg.http_listen[i]);
    f->srv.cfg.http_nlisten = 1; /* 127.0.0.1 */
    f->port = free_port();
    f->srv.cfg.http_port = f->port;
    f->srv.log.level = LOG_WARN;
    assert_int_equal(web_init(&f->srv), 0);
}

static void finish(fixture *f)
{
    web_free(&f->srv);
    assert_null(f->srv.web);
    config_free(&f->srv.cfg);
    assert_int_equal(uv_loop_close(&f->loop), 0); /* no handle left behind */
}

static void test_route_registration(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_int_equal(web_route(&f->srv, "GET", "/x", 0, on_auth, NULL), -1); /* no web state yet */
    start(f);
    server *srv = &f->srv;
    assert_int_equal(web_route(srv, "GET", "/t/:a/x/:b", 0, on_echo, f), 0);
    assert_int_equal(web_route(srv, "GET", "/t/:a/x/:b", 0, on_echo, f), -1); /* taken */
    assert_int_equal(web_route(srv, "POST", "/t/:a/x/:b", 0, on_echo, f), 0);
    assert_int_equal(web_route(srv, "GET", "/", 0, on_echo, f), 0);
    assert_int_equal(web_route(srv, "HEAD", "/y", 0, on_echo, f), -1);
    assert_int_equal(web_route(srv, "get", "/y", 0, on_echo, f), -1);
    assert_int_equal(web_route(srv, NULL, "/y", 0, on_echo, f), -1);
    assert_int_equal(web_route(srv, "GET", "y", 0, on_echo, f), -1);
    assert_int_equal(web_route(srv, "GET", NULL, 0, on_echo, f), -1);
    assert_int_equal(web_route(srv, "GET", "/y", 0, NULL, f), -1);
    assert_int_equal(web_route(srv, "GET", "/a//b", 0, on_echo, f), -1);
    assert_int_equal(web_route(srv, "GET", "/a/:", 0, on_echo, f), -1);
    assert_int_equal(web_route(srv, "GET", "/:a/:b/:c/:d", 0, on_echo, f), 0);
    assert_int_equal(web_route(srv, "GET", "/:a/:b/:c/:d/:e", 0, on_echo, f), -1); /* > WEB_MAX_PARAMS */
    finish(f);
    free(f);
}

static void test_requests(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    start(f);
    server *srv = &f->srv;
    assert_int_equal(web_route(srv, "GET", "/t/:a/x/:b", 0, on_echo, f), 0);
    assert_int_equal(web_route(srv, "POST", "/t/:a/x/:b", 0, on_echo, f), 0);
    assert_int_equal(web_route(srv, "GET", "/auth", WEB_AUTH, on_auth, f), 0);
    assert_int_equal(web_route(srv, "GET", "/none", 0, on_none, f), 0);
    assert_int_equal(web_route(srv, "GET", "/twice", 0, on_twice, f), 0);
    assert_int_equal(web_route(srv, "GET", "/later", 0, on_later, f), 0);
    assert_int_equal(web_route(srv, "GET", "/orphan", 0, on_orphan, f), 0);
    assert_int_equal(web_fallback(srv, on_page, f), 0);
    assert_int_equal(web_fallback(srv, on_page, f), -1); /* one at most */
    uint64_t expires;
    assert_int_equal(web_token_issue(srv, "alice", f->token, &expires), 0);
    assert_int_equal(strlen(f->token), WEB_TOKEN_LEN);
    char err[256] = "";
    assert_int_equal(web_start(srv, err, sizeof err), 0);

    uv_async_init(&f->loop, &f->stop, on_stop);
    f->stop.data = f;
    uv_timer_init(&f->loop, &f->later);
    f->later.data = f;
    uv_timer_init(&f->loop, &f->watchdog);
    uv_timer_start(&f->watchdog, on_watchdog, 60000, 0);

    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, client, f), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT); /* ends by itself after on_stop */
    pthread_join(th, NULL);
    uv_close((uv_handle_t *)&f->watchdog, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);

    if (f->failures[0])
        fail_msg("%s", f->failures);
    assert_int_equal(f->header_results[0], 0);
    assert_int_equal(f->header_results[1], -1);
    assert_int_equal(f->header_results[2], -1);
    assert_int_equal(f->header_results[3], -1);
    finish(f);
    free(f);
}

static void test_format_time(void **state)
{
    char buf[32];
    web_format_time(0, buf, sizeof buf);
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
    web_format_time(1714564800999ULL, buf, sizeof buf);
    assert_string_equal(buf, "2024-05-01T12:00:00Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_time),
        cmocka_unit_test(test_route_registration),
        cmocka_unit_test(test_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
