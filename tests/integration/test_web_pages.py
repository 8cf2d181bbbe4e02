"""The web pages served by onaird (specs/http-api.md, "Web pages"):
http.static_dir read into memory, Content-Types, ETag and 304, the security
headers (a same-origin Content-Security-Policy), the page routes ("/",
"/live/<id>", "/name" for name.html), 404 and 405, no way out of the folder
(.., escapes, hidden files, directories), SIGHUP re-reading the folder, the
pages turned off, a missing folder, the build tree's own pages with the
vendored XMPP library, and GET /api/v1/server."""
import pathlib
import re
import signal
import socket
import time

from harness import BUILD_DIR
from webapi import request

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def make_site(root):
    """A folder of pages beside a secret file the server must never give out."""
    site = root / "site"
    (site / "css").mkdir(parents=True)
    (site / "js").mkdir()
    (site / "img").mkdir()
    (site / "index.html").write_text("<!doctype html><title>index</title>")
    (site / "live.html").write_text("<!doctype html><title>live page</title>")
    (site / "book.html").write_text("<!doctype html><title>book</title>")
    (site / "css" / "site.css").write_text("body { color: black; }")
    (site / "js" / "app.js").write_text("console.log('app');")
    (site / "img" / "dot.png").write_bytes(PNG)
    (site / "notes.unknownext").write_text("raw")
    (site / ".hidden").write_text("hidden")
    (site / "a b.html").write_text("a name with a space is not read")
    (root / "secret.txt").write_text("TOP SECRET")
    return site


def raw_get(srv, target, headers=""):
    """A GET with the request target sent exactly as given; returns (status, head, body)."""
    with socket.create_connection((srv.host, srv.http_port), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, head.decode(errors="replace"), body


def poll(pred, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_pages_types_caching_and_security_headers(server_factory, tmp_path):
    site = make_site(tmp_path)
    srv = server_factory({"http": {"static_dir": str(site)}})

    r = request(srv, "GET", "/")
    assert r.status == 200 and r.raw == b"<!doctype html><title>index</title>", r
    assert r.header("content-type") == "text/html; charset=utf-8"
    assert r.header("cache-control") == "no-cache"
    assert r.header("x-content-type-options") == "nosniff"
    assert r.header("x-frame-options") == "DENY"
    assert r.header("referrer-policy") == "no-referrer"
    csp = r.header("content-security-policy")
    directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    for d in ("script-src", "style-src", "img-src"):
        assert directives[d] == "'self'", csp  # no inline code, nothing from elsewhere
    assert directives["connect-src"] == f"'self' ws://127.0.0.1:{srv.http_port} wss://127.0.0.1:{srv.http_port}"
    assert directives["frame-ancestors"] == "'none'" and "unsafe" not in csp
    etag = r.header("etag")
    assert etag and etag.startswith('"') and etag.endswith('"')

    for path, ctype, body in [("/css/site.css", "text/css; charset=utf-8", b"body { color: black; }"),
                              ("/js/app.js", "text/javascript; charset=utf-8", b"console.log('app');"),
                              ("/img/dot.png", "image/png", PNG),
                              ("/notes.unknownext", "application/octet-stream", b"raw"),
                              ("/book", "text/html; charset=utf-8", b"<!doctype html><title>book</title>"),
                              ("/book.html", "text/html; charset=utf-8", b"<!doctype html><title>book</title>")]:
        r = request(srv, "GET", path)
        assert r.status == 200 and r.header("content-type") == ctype and r.raw == body, (path, r)

    # Every live's page is live.html (reservation.page_url + ID).
    for path in ("/live/aaaaaaaaaaaaaaaaaaaaaaaaaa", "/live/anything?x=1"):
        r = request(srv, "GET", path)
        assert r.status == 200 and r.raw == b"<!doctype html><title>live page</title>", (path, r)

    # Revalidation: the same ETag is a 304 without a body; another one the page.
    status, head, body = raw_get(srv, "/", f"If-None-Match: {etag}\r\n")
    assert status == 304 and body == b"" and f"ETag: {etag}" in head, head
    status, _, body = raw_get(srv, "/", 'If-None-Match: "0000000000000000", W/"x"\r\n')
    assert status == 200 and body == b"<!doctype html><title>index</title>"

    # HEAD: the headers alone; other methods: 405 on a page, 404 elsewhere.
    r = request(srv, "HEAD", "/css/site.css")
    assert r.status == 200 and r.raw == b"" and r.header("content-length") == "22", r
    r = request(srv, "POST", "/index.html", {"a": 1})
    assert r.status == 405 and r.header("allow") == "GET, HEAD", r
    assert request(srv, "DELETE", "/nothing-here").status == 404

    # The API keeps its JSON errors.
    r = request(srv, "GET", "/api/v1/no-such-thing")
    assert r.status == 404 and r.header("content-type") == "application/json" and r.json["error"]["status"] == 404


def test_nothing_outside_the_folder(server_factory, tmp_path):
    site = make_site(tmp_path)
    (site / "404.html").write_text("<!doctype html><title>our 404</title>")
    srv = server_factory({"http": {"static_dir": str(site)}})
    for target in ["/../secret.txt", "/%2e%2e/secret.txt", "/css/../../secret.txt", "/css/%2e%2e/%2e%2e/secret.txt",
                   "/..%2fsecret.txt", "/%2F..%2Fsecret.txt", "/.hidden", "/css/", "/css", "/js/", "/a%20b.html",
                   "/live/a/b", "/index.html%00.png", "//etc/passwd", "/nothing"]:
        status, head, body = raw_get(srv, target)
        assert status in (0, 400, 403, 404), (target, status, head)  # 0: the HTTP parser closed the connection
        assert b"TOP SECRET" not in body and b"hidden" not in body and b"root:" not in body, target
        if status == 404:
            assert body == b"<!doctype html><title>our 404</title>", (target, body)
            assert "content-type: text/html; charset=utf-8" in head and "Content-Security-Policy" in head
    srv.assert_alive()


def test_sighup_reads_the_folder_again(server_factory, tmp_path):
    site = make_site(tmp_path)
    srv = server_factory({"http": {"static_dir": str(site)}})
    before = request(srv, "GET", "/css/site.css")
    (site / "css" / "site.css").write_text("body { color: red; }")
    (site / "new.html").write_text("new page")
    (site / "book.html").unlink()
    assert request(srv, "GET", "/css/site.css").raw == before.raw  # served from memory until told
    srv.proc.send_signal(signal.SIGHUP)
    poll(lambda: request(srv, "GET", "/css/site.css").raw == b"body { color: red; }", what="the new stylesheet")
    after = request(srv, "GET", "/css/site.css")
    assert after.header("etag") != before.header("etag")
    assert request(srv, "GET", "/new").raw == b"new page"
    assert request(srv, "GET", "/book").status == 404

    # Another folder on SIGHUP; then none.
    other = tmp_path / "other"
    other.mkdir()
    (other / "index.html").write_text("other index")
    srv.groups["http"]["static_dir"] = str(other)
    srv.write_config()
    srv.proc.send_signal(signal.SIGHUP)
    poll(lambda: request(srv, "GET", "/").raw == b"other index", what="the other folder")
    srv.groups["http"]["static_dir"] = ""
    srv.write_config()
    srv.proc.send_signal(signal.SIGHUP)
    poll(lambda: request(srv, "GET", "/").status == 404, what="pages turned off")


def test_pages_off_or_missing_leave_the_api(server_factory, tmp_path):
    off = server_factory({"http": {"static_dir": ""}})
    r = request(off, "GET", "/")
    assert r.status == 404 and r.header("content-type") == "text/plain; charset=utf-8"
    assert request(off, "GET", "/api/v1/schedule").status == 200
    assert "web pages: off" in off.stderr_text()

    missing = server_factory({"http": {"static_dir": "no-such-folder"}})  # relative to the config file
    assert request(missing, "GET", "/index.html").status == 404
    assert request(missing, "GET", "/api/v1/channels").status == 200
    assert f"cannot read the folder {missing.root}/no-such-folder" in missing.stderr_text()


def test_build_tree_pages_with_the_xmpp_library(server_factory):
    """Without http.static_dir an onaird of a build tree serves <build>/web:
    the real pages and the browser bundle of @xmpp/client."""
    assert (pathlib.Path(BUILD_DIR) / "web" / "vendor" / "xmpp.min.js").is_file(), \
        "the build has no web/vendor/xmpp.min.js: run sh tests/setup.sh (npm ci in tests/js) and build again"
    srv = server_factory()
    r = request(srv, "GET", "/")
    assert r.status == 200 and b"Upcoming lives" in r.raw
    for path in ("/live.html", "/book", "/channel", "/js/live.js", "/js/chat.js", "/style.css"):
        assert request(srv, "GET", path).status == 200, path
    lib = request(srv, "GET", "/vendor/xmpp.min.js")
    assert lib.status == 200 and lib.header("content-type") == "text/javascript; charset=utf-8"
    assert lib.raw.startswith(b"var XMPP=")
    # No page loads anything from elsewhere or runs inline code.
    for page in ("/", "/live/x", "/book", "/channel"):
        html = request(srv, "GET", page).raw.decode()
        refs = re.findall(r'(?:src|href)="([^"]*)"', html)
        assert refs and all(ref[:1] in "/#" and not ref.startswith("//") for ref in refs), (page, refs)
        assert "<script>" not in html and " style=" not in html and "onclick" not in html, page


def test_server_description(server_factory):
    srv = server_factory()
    r = request(srv, "GET", "/api/v1/server")
    assert r.status == 200 and r.header("cache-control") == "no-store"
    assert r.json == {"domain": "localhost", "guest_domain": "guest.localhost", "muc_domain": "live.localhost",
                      "media_domain": "media.localhost", "version": r.json["version"]}
    no_guests = server_factory({"server": {"guest_domain": ""}})
    assert request(no_guests, "GET", "/api/v1/server").json["guest_domain"] is None
