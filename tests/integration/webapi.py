"""The HTTP API from the test side: http.client against a test server's HTTP
port (specs/http-api.md).

    r = request(srv, "GET", "/api/v1/session", token=tok)   # -> Response
    tok = login(srv, "alice", "pw")                         # 201 or AssertionError
    assert_error(r, 401)                                    # the error format

A request opens its own connection unless conn= is given (keep-alive).
"""
import http.client
import json
import re
import ssl

TIMEOUT = 10.0
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{32}")
TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


class Response:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = {}
        for k, v in headers:
            self.headers.setdefault(k.lower(), v)
        self.raw = raw
        ctype = self.headers.get("content-type", "application/json")
        self.json = json.loads(raw) if raw and ctype.startswith("application/json") else None

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return f"<HTTP {self.status} {self.headers} {self.raw[:300]!r}>"


def connect(srv, timeout=TIMEOUT):
    """HTTP, or HTTPS when the server runs with http.tls (its certificate is
    self-signed: not verified)."""
    if srv.groups.get("http", {}).get("tls"):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(srv.host, srv.http_port, timeout=timeout, context=ctx)
    return http.client.HTTPConnection(srv.host, srv.http_port, timeout=timeout)


def request(srv, method, path, body=None, *, token=None, headers=None, conn=None, raw=None,
            content_type="application/json"):
    """body: a JSON value to send; raw: bytes/str sent as they are."""
    own = conn is None
    c = conn or connect(srv)
    h = dict(headers or {})
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    if data is not None and content_type:
        h.setdefault("Content-Type", content_type)
    if token:
        h["Authorization"] = f"Bearer {token}"
    try:
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        return Response(r.status, r.getheaders(), r.read())
    finally:
        if own:
            c.close()


def login(srv, user, password, **kw):
    r = request(srv, "POST", "/api/v1/session", {"user": user, "password": password}, **kw)
    assert r.status == 201, f"login as {user}: {r}"
    return r.json["token"]


def assert_error(r, status, field=None):
    """The one error format: {"error": {"status", "field"?, "message"}}."""
    assert r.status == status, r
    assert r.header("content-type") == "application/json", r
    assert r.header("cache-control") == "no-store", r
    assert set(r.json) == {"error"}, r
    err = r.json["error"]
    assert err["status"] == status, r
    assert isinstance(err["message"], str) and err["message"], r
    if field is None:
        assert "field" not in err, r
    else:
        assert err.get("field") == field, r
    return err["message"]
