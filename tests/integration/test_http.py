"""The HTTP API (specs/http-api.md) against the real onaird over loopback:
login tokens (login, whoami, logout, expiry, revocation), the framework's own
answers (404, 405, 413, 411, 400, 401), keep-alive, 200 parallel logins,
stalled clients, the connection limit, start-up errors, secrets kept out of
the log, and XMPP working alongside."""
import datetime
import json
import re
import secrets
import socket
import threading
import time

import clients
from webapi import TIME_RE, TOKEN_RE, assert_error, connect, login, request

SESSION = "/api/v1/session"
WAIT = 10.0


def parse_time(s):
    assert TIME_RE.fullmatch(s), s
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def wait_until(predicate, timeout=WAIT, what="condition"):
    """Polls predicate (bounded); returns its last truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def raw_exchange(srv, data, timeout=WAIT):
    """Sends bytes on a fresh connection; returns everything read until the
    server closes it."""
    with socket.create_connection((srv.host, srv.http_port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def user_of(jid):
    return jid.split("@")[0]


# -- logins and tokens -------------------------------------------------------

def test_login_returns_a_token(server):
    jid, pw = server.add_user()
    before = time.time()
    r = request(server, "POST", SESSION, {"user": user_of(jid), "password": pw})
    assert r.status == 201, r
    assert set(r.json) == {"token", "user", "expires"}, r
    assert TOKEN_RE.fullmatch(r.json["token"]), r
    assert r.json["user"] == user_of(jid)
    expires = parse_time(r.json["expires"])
    assert before + 86400 - 5 <= expires <= time.time() + 86400 + 5, r
    assert r.header("content-type") == "application/json"
    assert r.header("cache-control") == "no-store"
    assert int(r.header("content-length")) == len(r.raw)


def test_login_with_a_bare_jid(server):
    jid, pw = server.add_user()
    r = request(server, "POST", SESSION, {"user": jid.upper(), "password": pw})
    assert r.status == 201, r
    assert r.json["user"] == user_of(jid)  # normalised local part


def test_wrong_password_and_unknown_user_get_the_same_answer(server):
    jid, pw = server.add_user()
    answers = [
        request(server, "POST", SESSION, {"user": user_of(jid), "password": pw + "x"}),
        request(server, "POST", SESSION, {"user": "nobody" + secrets.token_hex(4), "password": pw}),
        request(server, "POST", SESSION, {"user": user_of(jid), "password": ""}),
        # guests (SASL ANONYMOUS) have no HTTP login, and other domains have no accounts here
        request(server, "POST", SESSION, {"user": f"{user_of(jid)}@{server.guest_domain}", "password": pw}),
        request(server, "POST", SESSION, {"user": f"{user_of(jid)}@example.org", "password": pw}),
    ]
    for r in answers:
        assert_error(r, 401)
        assert r.header("www-authenticate") == "Bearer", r
    assert all(r.json == answers[0].json for r in answers), answers


def test_login_input_errors(server):
    cases = [
        ({"password": "x"}, "user"),
        ({"user": "", "password": "x"}, "user"),
        ({"user": 5, "password": "x"}, "user"),
        ({"user": "alice/phone", "password": "x"}, "user"),
        ({"user": "a@b@c", "password": "x"}, "user"),
        ({"user": "alice"}, "password"),
        ({"user": "alice", "password": None}, "password"),
    ]
    for body, field in cases:
        assert_error(request(server, "POST", SESSION, body), 400, field)
    assert_error(request(server, "POST", SESSION), 400)  # no body at all
    assert_error(request(server, "POST", SESSION, {"user": "a\u0000b", "password": "x"}), 400)  # NUL: not taken


def test_whoami(server):
    jid, pw = server.add_user()
    r = request(server, "POST", SESSION, {"user": user_of(jid), "password": pw})
    token, expires = r.json["token"], r.json["expires"]
    r = request(server, "GET", SESSION, token=token)
    assert r.status == 200, r
    assert r.json == {"user": user_of(jid), "expires": expires}

    r = request(server, "GET", SESSION)
    assert_error(r, 401)
    assert r.header("www-authenticate") == "Bearer"
    for bad in ({"Authorization": "Bearer " + "x" * 32}, {"Authorization": "Bearer " + token[:-1]},
                {"Authorization": "Basic YWxpY2U6cHc="}, {"Authorization": "Bearer"}):
        r = request(server, "GET", SESSION, headers=bad)
        assert_error(r, 401)
        assert r.header("www-authenticate") == 'Bearer error="invalid_token"', r
    # the scheme name is case-insensitive; a query string is not part of the path
    r = request(server, "GET", SESSION + "?x=1&y", headers={"Authorization": "bearer " + token})
    assert r.status == 200, r


def test_logout_ends_that_token_only(server):
    jid, pw = server.add_user()
    t1, t2 = login(server, user_of(jid), pw), login(server, user_of(jid), pw)
    assert t1 != t2
    r = request(server, "DELETE", SESSION, token=t1)
    assert r.status == 204, r
    assert r.raw == b"" and r.header("content-type") is None, r
    assert_error(request(server, "GET", SESSION, token=t1), 401)
    assert_error(request(server, "DELETE", SESSION, token=t1), 401)
    assert request(server, "GET", SESSION, token=t2).status == 200


def test_token_expires(server_factory):
    srv = server_factory({"http": {"token_ttl_s": 1}})
    jid, pw = srv.add_user()
    r = request(srv, "POST", SESSION, {"user": user_of(jid), "password": pw})
    assert r.status == 201, r
    assert parse_time(r.json["expires"]) <= time.time() + 2
    token = r.json["token"]
    r = wait_until(lambda: (lambda x: x if x.status == 401 else None)(request(srv, "GET", SESSION, token=token)),
                   what="the token to expire")
    assert_error(r, 401)
    assert r.header("www-authenticate") == 'Bearer error="invalid_token"'
    assert login(srv, user_of(jid), pw)  # a new login still works


def test_tokens_end_with_a_new_password_or_the_account(server):
    jid, pw = server.add_user()
    user = user_of(jid)
    token = login(server, user, pw)
    server.ctl("account", "passwd", user, input="Another-pw-1\n")
    assert_error(request(server, "GET", SESSION, token=token), 401)
    assert_error(request(server, "POST", SESSION, {"user": user, "password": pw}), 401)
    token = login(server, user, "Another-pw-1")
    assert request(server, "GET", SESSION, token=token).status == 200
    server.ctl("account", "del", user)
    assert_error(request(server, "GET", SESSION, token=token), 401)


# -- the framework's own answers --------------------------------------------

def test_unknown_path_is_404(server):
    for method, path in [("GET", "/api"), ("GET", "/api/nope"), ("GET", SESSION + "/"), ("GET", SESSION + "/x"),
                         ("POST", "/api/v2/session"), ("GET", "/api/" + "a/" * 40)]:
        assert_error(request(server, method, path), 404)
    # Outside /api/ are the web pages (test_web_pages.py): their 404 is a page.
    for method, path in [("GET", "/nope"), ("DELETE", "/API/v1/session"), ("GET", "/a/" * 40)]:
        r = request(server, method, path)
        assert r.status == 404 and r.header("content-type").startswith("text/"), r


def test_other_method_is_405_with_allow(server):
    for method in ("PUT", "PATCH", "OPTIONS"):
        r = request(server, method, SESSION, {} if method != "OPTIONS" else None)
        assert_error(r, 405)
        assert {m.strip() for m in r.header("allow").split(",")} == {"GET", "POST", "DELETE"}, r
    r = request(server, "HEAD", SESSION)
    assert r.status == 405 and r.raw == b"" and r.header("allow"), r


def test_body_over_the_limit_is_413(server_factory):
    srv = server_factory({"http": {"max_body_bytes": 2048}})
    conn = connect(srv)
    r = request(srv, "POST", SESSION, raw=json.dumps({"user": "x", "password": "y" * 3000}), conn=conn)
    assert_error(r, 413)
    assert r.header("connection") == "close"
    # a body of exactly the limit is read and handled
    head, tail = '{"user": "nobody", "password": "', '"}'
    body = head + "p" * (2048 - len(head) - len(tail)) + tail
    assert len(body) == 2048
    assert_error(request(srv, "POST", SESSION, raw=body), 401)


def test_default_body_limit(server):
    r = request(server, "POST", SESSION, raw='{"user": "' + "u" * 70000 + '"}')
    assert_error(r, 413)


def test_bad_json_is_400(server):
    for raw in ('{"user": "a", ', "not json", '{"user": "a"} trailing', "[1, 2]", '"text"', "42", "null",
                '{"user": "a", "user": "b", "password": "x"}'):
        msg = assert_error(request(server, "POST", SESSION, raw=raw), 400)
        assert "JSON" in msg, msg
    assert_error(request(server, "POST", SESSION, raw=b'{"user": "\xff\xfe", "password": "x"}'), 400)


def test_body_needs_json_content_type(server):
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx", None):
        r = request(server, "POST", SESSION, raw='{"user": "a", "password": "b"}', content_type=ctype)
        msg = assert_error(r, 400)
        assert "Content-Type" in msg, msg
    jid, pw = server.add_user()
    r = request(server, "POST", SESSION, {"user": user_of(jid), "password": pw},
                content_type="Application/JSON; charset=utf-8")
    assert r.status == 201, r


def test_bodies_need_content_length(server):
    out = raw_exchange(server, b"POST /api/v1/session HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 411 "), out
    assert b'"status":411' in out, out
    out = raw_exchange(server, b"POST /api/v1/session HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n{")
    assert out.startswith(b"HTTP/1.1 400 "), out
    out = raw_exchange(server, b"PUT /api/v1/session HTTP/1.1\r\nHost: t\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 411 "), out


def test_http10_closes_unless_kept_alive(server):
    out = raw_exchange(server, b"GET /api/nope HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.0 404 ") and out.endswith(b"}"), out


# -- connections ---------------------------------------------------------------

def test_keep_alive(server):
    jid, pw = server.add_user()
    conn = connect(server)
    token = login(server, user_of(jid), pw, conn=conn)
    local = conn.sock.getsockname()
    answers = [
        request(server, "GET", SESSION, token=token, conn=conn).status,
        request(server, "GET", "/nope", conn=conn).status,
        request(server, "PUT", SESSION, {}, conn=conn).status,
        request(server, "GET", SESSION, conn=conn).status,
        request(server, "POST", SESSION, raw="{oops", conn=conn).status,
        request(server, "POST", SESSION, {"user": user_of(jid), "password": "wrong"}, conn=conn).status,
        request(server, "DELETE", SESSION, token=token, conn=conn).status,
        request(server, "GET", SESSION, token=token, conn=conn).status,
    ]
    assert answers == [200, 404, 405, 401, 400, 401, 204, 401]
    assert conn.sock is not None and conn.sock.getsockname() == local, "the connection was not kept"
    conn.close()


def test_pipelining(server):
    # behind requests without a body: answered in order
    out = raw_exchange(server, b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
                               b"PUT /api/v1/session HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
                               b"GET /api/v1/session HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert re.findall(rb"HTTP/1.1 (\d+)", out) == [b"404", b"405", b"401"], out
    # behind a request with a body: answered, or the connection closes
    # (specs/http-api.md); nothing hangs or spins
    jid, pw = server.add_user()
    body = json.dumps({"user": user_of(jid), "password": pw}).encode()
    for _ in range(5):
        out = raw_exchange(server, b"POST /api/v1/session HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                                   b"Content-Length: %d\r\n\r\n" % len(body) + body +
                                   b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert re.findall(rb"HTTP/1.1 (\d+)", out) in ([], [b"201"], [b"201", b"404"]), out
    assert login(server, user_of(jid), pw)


def test_200_parallel_logins(server):
    users = [server.add_user() for _ in range(4)]
    n = 200
    barrier = threading.Barrier(n)
    results = [None] * n

    def worker(i):
        jid, pw = users[i % len(users)]
        if i % 10 == 9:
            pw += "-wrong"
        conn = connect(server, timeout=60)
        try:
            conn.connect()
            barrier.wait(timeout=60)  # all 200 connections open at once
            results[i] = request(server, "POST", SESSION, {"user": jid, "password": pw}, conn=conn)
        except Exception as e:  # reported below
            results[i] = e
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not any(t.is_alive() for t in threads), "logins still running after 90s"
    errors = [r for r in results if not hasattr(r, "status")]
    assert not errors, errors[:5]
    for i, r in enumerate(results):
        assert r.status == (401 if i % 10 == 9 else 201), (i, r)
    tokens = {r.json["token"] for r in results if r.status == 201}
    assert len(tokens) == n - n // 10
    for r in results[:8]:
        if r.status == 201:
            assert request(server, "GET", SESSION, token=r.json["token"]).json["user"] == r.json["user"]


def test_stalled_clients_do_not_block_others(server):
    jid, pw = server.add_user()
    body = json.dumps({"user": user_of(jid), "password": pw}).encode()
    half_body = socket.create_connection((server.host, server.http_port), timeout=WAIT)
    half_body.sendall(b"POST /api/v1/session HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
    half_line = socket.create_connection((server.host, server.http_port), timeout=WAIT)
    half_line.sendall(b"GET /api/v1/sess")
    silent = socket.create_connection((server.host, server.http_port), timeout=WAIT)
    try:
        t0 = time.monotonic()
        for _ in range(3):
            token = login(server, user_of(jid), pw)
            assert request(server, "GET", SESSION, token=token).status == 200
        assert time.monotonic() - t0 < 5, "requests waited for the stalled connections"
        # the stalled request still completes when its body arrives
        half_body.sendall(body[10:])
        reply = half_body.recv(65536)
        assert reply.startswith(b"HTTP/1.1 201 "), reply
    finally:
        for s in (half_body, half_line, silent):
            s.close()


def test_connection_limit(server_factory):
    srv = server_factory({"http": {"max_connections": 2}})
    held = [connect(srv), connect(srv)]
    for c in held:  # kept alive after a full exchange, so surely counted
        assert request(srv, "GET", "/nope", conn=c).status == 404
    with socket.create_connection((srv.host, srv.http_port), timeout=WAIT) as extra:
        try:
            extra.sendall(b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n")
            assert extra.recv(100) == b"", "a third connection was served"
        except (ConnectionResetError, BrokenPipeError):
            pass
    held[0].close()

    def served():
        try:
            return request(srv, "GET", "/nope").status == 404
        except (ConnectionError, OSError):
            return False
    wait_until(served, what="a free connection slot")
    held[1].close()


# -- the server around it -------------------------------------------------------

def test_port_in_use_is_a_start_up_error(server_factory):
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    try:
        srv = server_factory({"http": {"port": port}}, start=False)
        srv.start(wait=False)
        rc = srv.proc.wait(timeout=WAIT)
        srv.expect_dead = True
        assert rc == 2, srv.stderr_text()
        text = srv.stderr_text()
        assert f"cannot listen for HTTP on 127.0.0.1 port {port}: address already in use" in text, text
    finally:
        blocker.close()


def test_listen_address_is_checked(server_factory):
    srv = server_factory({"http": {"listen": ["localhost"]}}, start=False)
    srv.start(wait=False)
    rc = srv.proc.wait(timeout=WAIT)
    srv.expect_dead = True
    assert rc == 2
    assert 'http.listen: not an IP address: "localhost"' in srv.stderr_text()


def test_http_port_zero_turns_http_off(server_factory):
    srv = server_factory({"http": {"port": 0}})
    jid, pw = srv.add_user()
    assert srv.ctl("health").returncode == 0
    assert "web: listening" not in srv.stderr_text()


async def test_xmpp_alongside_http(server):
    jid, pw = server.add_user()
    token = login(server, jid, pw)
    c = await clients.login(server, jid, pw)
    await c.roundtrip()
    assert request(server, "GET", SESSION, token=token).json["user"] == user_of(jid)
    await c.barrier()
    assert request(server, "DELETE", SESSION, token=token).status == 204
    await c.roundtrip()  # the XMPP session does not depend on the HTTP token


def test_secrets_never_reach_the_log(server_factory):
    srv = server_factory({"server": {"log_level": "debug"}})
    secret = "Zq9-http-secret"
    srv.add_user("dora", secret)
    token = login(srv, "dora", secret)
    assert request(srv, "GET", SESSION, token=token).status == 200
    assert_error(request(srv, "POST", SESSION, {"user": "dora", "password": "Wrong-http-secret"}), 401)
    assert request(srv, "DELETE", SESSION, token=token).status == 204
    assert_error(request(srv, "GET", "/api/x%1B%07forged%20line"), 404)  # decoded control bytes stay off the log
    log = srv.stderr_text()
    assert "GET /api/x??forged line" in log and "\x1b" not in log and "\x07" not in log
    assert "dora" in log  # the log does name the account
    for s in (secret, "Wrong-http-secret", token):
        assert s not in log
