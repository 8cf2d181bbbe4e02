"""Hostile and broken input (RFC 6120 4.9 stream errors, 11 XML restrictions)
and resource limits.  Every case checks the stream error and that the
connection is closed, then that an already logged-in session still works and
that a new login succeeds."""
import asyncio
import os
import socket

import pytest

import clients
from rawxmpp import (NS_CLIENT, RawStream, q, stream_header, tostr)

MAX_STANZA = 10000
SERVER_CONFIG = {"limits": {"max_stanza_bytes": MAX_STANZA}}

PARTIAL_HEADER = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                  "xmlns:stream='http://etherx.jabber.org/streams' to='loc")


@pytest.fixture
def witness_account(server):
    return server.add_user()


async def login_witness(server, account):
    jid, pw = account
    return await clients.login(server, jid, pw)


async def assert_healthy(server, witness):
    """The running session still works, and a brand new login does."""
    assert server.running(), "onaird died"
    await witness.roundtrip()
    jid, pw = server.add_user()
    fresh = await clients.login(server, jid, pw)
    await fresh.roundtrip(witness)
    await fresh.close()


async def opened(server, tls=False):
    raw = await RawStream.connect(server.host, server.tls_port if tls else server.port, tls=tls)
    await raw.open_stream()
    return raw


async def logged_in(server):
    jid, pw = server.add_user()
    raw = await RawStream.connect(server.host, server.port)
    await raw.login(jid.split("@")[0], pw, resource="raw")
    return raw


# -- not well-formed ------------------------------------------------------------

MALFORMED = {
    "mismatched-tags": b"<message><body>hi</message>",
    "garbage": b"<<<>>> this is not xml",
    "unbound-prefix": b"<foo:bar/>",
    "bad-char-ref": b"<message><body>&#0;</body></message>",
    "bad-attr": b"<message to=unquoted><body/></message>",
    "double-attr": b"<message to='a@localhost' to='b@localhost'/>",
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_not_well_formed(server, witness_account, case):
    w = await login_witness(server, witness_account)
    raw = await opened(server)
    await raw.send(MALFORMED[case])
    cond, _ = await raw.expect_stream_error()
    assert cond == "not-well-formed", cond
    await assert_healthy(server, w)


async def test_not_well_formed_after_auth(server, witness_account):
    w = await login_witness(server, witness_account)
    raw = await logged_in(server)
    await raw.send(b"<message to='x@localhost'><body>oops</bdoy></message>")
    cond, _ = await raw.expect_stream_error()
    assert cond == "not-well-formed", cond
    await assert_healthy(server, w)


async def test_invalid_utf8(server, witness_account):
    w = await login_witness(server, witness_account)
    raw = await opened(server)
    await raw.send(b"<message><body>\xff\xfe\xc3</body></message>")
    cond, _ = await raw.expect_stream_error()
    # RFC 6120 11.6: UTF-8 only; expat reports it as not well-formed.
    assert cond in ("not-well-formed", "unsupported-encoding"), cond
    await assert_healthy(server, w)


async def test_garbage_instead_of_stream_header(server, witness_account):
    # RFC 6120 4.9.1.2: even before its own header the server sends a header,
    # then the error.
    w = await login_witness(server, witness_account)
    raw = await RawStream.connect(server.host, server.port)
    await raw.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    cond, _ = await raw.expect_stream_error()
    assert cond == "not-well-formed", cond
    await assert_healthy(server, w)


# -- restricted XML (RFC 6120 11.1) ----------------------------------------------

BILLION_LAUGHS = (
    "<?xml version='1.0'?>"
    "<!DOCTYPE lolz [<!ENTITY lol 'lol'>"
    "<!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>"
    "<!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>"
    "<!ENTITY lol4 '&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;'>"
    "<!ENTITY lol5 '&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;'>"
    "<!ENTITY lol6 '&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;'>"
    "<!ENTITY lol7 '&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;'>"
    "<!ENTITY lol8 '&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;'>"
    "<!ENTITY lol9 '&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;'>"
    "]>")


async def test_doctype_billion_laughs(server, witness_account):
    w = await login_witness(server, witness_account)
    raw = await RawStream.connect(server.host, server.port)
    await raw.send(BILLION_LAUGHS + stream_header(xml_decl=False)
                   + "<message to='x@localhost'><body>&lol9;</body></message>")
    cond, _ = await raw.expect_stream_error()
    assert cond == "restricted-xml", cond
    await assert_healthy(server, w)


async def test_doctype_external_entity(server, witness_account):
    w = await login_witness(server, witness_account)
    raw = await RawStream.connect(server.host, server.port)
    await raw.send("<?xml version='1.0'?><!DOCTYPE stream:stream SYSTEM 'file:///etc/passwd'>"
                   + stream_header(xml_decl=False))
    cond, _ = await raw.expect_stream_error()
    assert cond == "restricted-xml", cond
    assert "root:" not in raw.received_text()
    await assert_healthy(server, w)


async def test_processing_instruction(server, witness_account):
    w = await login_witness(server, witness_account)
    raw = await opened(server)
    await raw.send("<?evil instruction?>")
    cond, _ = await raw.expect_stream_error()
    assert cond == "restricted-xml", cond
    await assert_healthy(server, w)


async def test_processing_instruction_inside_stanza_after_auth(server, witness_account):
    w = await login_witness(server, witness_account)
    raw = await logged_in(server)
    await raw.send(f"<message to='{w.boundjid.full}'><?evil x?><body>pi</body></message>")
    cond, _ = await raw.expect_stream_error()
    assert cond == "restricted-xml", cond
    await assert_healthy(server, w)
    assert all(m["body"] != "pi" for m in list(w.messages.items)), "stanza with a PI was routed"


async def test_comment(server, witness_account):
    w = await login_witness(server, witness_account)
    raw = await opened(server)
    await raw.send("<!-- a comment -->")
    cond, _ = await raw.expect_stream_error()
    assert cond == "restricted-xml", cond
    await assert_healthy(server, w)


async def test_undeclared_entity_reference(server, witness_account):
    w = await login_witness(server, witness_account)
    raw = await opened(server)
    await raw.send("<message><body>&nbsp;</body></message>")
    cond, _ = await raw.expect_stream_error()
    assert cond in ("restricted-xml", "not-well-formed"), cond
    await assert_healthy(server, w)


# -- limits ------------------------------------------------------------------------

async def test_stanza_over_max_bytes(server, witness_account):
    w = await login_witness(server, witness_account)
    raw = await logged_in(server)
    body = "x" * (2 * MAX_STANZA)
    await raw.send(f"<message to='{w.boundjid.full}' type='chat'><body>{body}</body></message>")
    cond, _ = await raw.expect_stream_error()
    assert cond == "policy-violation", cond
    await assert_healthy(server, w)
    assert all(len(m["body"]) < MAX_STANZA for m in list(w.messages.items))


async def test_unterminated_stanza_over_max_bytes(server, witness_account):
    # The limit counts bytes as they arrive: a stanza that never ends must not
    # make the server buffer without bound.
    w = await login_witness(server, witness_account)
    raw = await logged_in(server)
    await raw.send(f"<message to='{w.boundjid.full}'><body>")
    for _ in range(6):
        if not await raw.try_send("y" * (MAX_STANZA // 2)):
            break
    cond, _ = await raw.expect_stream_error()
    assert cond == "policy-violation", cond
    await assert_healthy(server, w)


async def test_oversized_element_before_auth(server, witness_account):
    w = await login_witness(server, witness_account)
    raw = await opened(server)
    await raw.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>")
    for _ in range(6):
        if not await raw.try_send("QUFB" * (MAX_STANZA // 8)):
            break
    cond, _ = await raw.expect_stream_error()
    assert cond == "policy-violation", cond
    await assert_healthy(server, w)


async def test_stanza_under_max_bytes_is_fine(server, witness_account):
    w = await login_witness(server, witness_account)
    raw = await logged_in(server)
    body = "z" * (MAX_STANZA - 1000)
    await raw.send(f"<message to='{w.boundjid.full}' type='chat'><body>{body}</body></message>")
    m = await w.wait_message(lambda m: m["body"] == body)
    assert m["from"].resource == "raw"
    await raw.close()


def nested(depth):
    return "".join(f"<n{i} xmlns='urn:example:nest'>" for i in range(depth)) + \
        "".join(f"</n{i}>" for i in reversed(range(depth)))


async def test_nesting_over_max_depth(server, witness_account):
    w = await login_witness(server, witness_account)
    raw = await logged_in(server)
    await raw.send(f"<message to='{w.boundjid.full}'><body>deep</body>{nested(100)}</message>")
    cond, _ = await raw.expect_stream_error()
    assert cond == "policy-violation", cond
    await assert_healthy(server, w)


async def test_nesting_within_max_depth_is_fine(server, witness_account):
    w = await login_witness(server, witness_account)
    raw = await logged_in(server)
    await raw.send(f"<message to='{w.boundjid.full}' type='chat'><body>nested ok</body>{nested(20)}</message>")
    m = await w.wait_message(lambda m: m["body"] == "nested ok")
    el = m.xml
    for i in range(20):
        el = el.find(f"{{urn:example:nest}}n{i}")
        assert el is not None, f"nesting lost at level {i}: {m}"
    await raw.close()


async def test_too_many_attributes(server, witness_account):
    w = await login_witness(server, witness_account)
    raw = await logged_in(server)
    attrs = " ".join(f"a{i}='{i}'" for i in range(200))
    await raw.send(f"<message to='{w.boundjid.full}'><body>attrs</body><x xmlns='urn:example:x' {attrs}/></message>")
    cond, _ = await raw.expect_stream_error()
    assert cond == "policy-violation", cond
    await assert_healthy(server, w)


# -- order of negotiation ------------------------------------------------------------

@pytest.mark.parametrize("stanza", [
    "<message to='someone@localhost'><body>too early</body></message>",
    "<presence/>",
    "<iq type='get' id='early'><query xmlns='jabber:iq:roster'/></iq>",
])
async def test_stanza_before_auth(server, witness_account, stanza):
    # RFC 6120 6.4.1 / 4.9.3.20: no stanzas before SASL -> <not-authorized/>.
    w = await login_witness(server, witness_account)
    raw = await opened(server)
    await raw.send(stanza)
    cond, _ = await raw.expect_stream_error()
    assert cond == "not-authorized", cond
    await assert_healthy(server, w)


async def test_stanza_after_tls_before_auth(server, witness_account):
    w = await login_witness(server, witness_account)
    raw = await opened(server)
    await raw.starttls()
    await raw.send(f"<message to='{w.boundjid.full}'><body>too early</body></message>")
    cond, _ = await raw.expect_stream_error()
    assert cond == "not-authorized", cond
    await assert_healthy(server, w)
    assert all(m["body"] != "too early" for m in list(w.messages.items))


async def test_stanza_after_auth_before_bind(server, witness_account):
    # RFC 6120 7.1: no stanzas before a resource is bound.
    w = await login_witness(server, witness_account)
    jid, pw = server.add_user()
    raw = await opened(server)
    await raw.starttls()
    reply = await raw.auth_plain(jid.split("@")[0], pw)
    assert reply.tag.endswith("success"), tostr(reply)
    await raw.open_stream()
    await raw.send(f"<message to='{w.boundjid.full}'><body>unbound</body></message>")
    cond, _ = await raw.expect_stream_error()
    assert cond == "not-authorized", cond
    await assert_healthy(server, w)
    assert all(m["body"] != "unbound" for m in list(w.messages.items))


# -- stream header -----------------------------------------------------------------

async def test_wrong_stream_namespace(server, witness_account):
    w = await login_witness(server, witness_account)
    raw = await RawStream.connect(server.host, server.port)
    await raw.send(stream_header(stream_ns="http://example.com/not-streams"))
    cond, _ = await raw.expect_stream_error()
    assert cond == "invalid-namespace", cond
    await assert_healthy(server, w)


async def test_wrong_content_namespace(server, witness_account):
    w = await login_witness(server, witness_account)
    raw = await RawStream.connect(server.host, server.port)
    await raw.send(stream_header(ns="urn:example:not-jabber-client"))
    cond, _ = await raw.expect_stream_error()
    assert cond == "invalid-namespace", cond
    await assert_healthy(server, w)


async def test_wrong_root_element(server, witness_account):
    w = await login_witness(server, witness_account)
    raw = await RawStream.connect(server.host, server.port)
    await raw.send("<?xml version='1.0'?><html xmlns='http://www.w3.org/1999/xhtml'>")
    cond, _ = await raw.expect_stream_error()
    assert cond in ("invalid-namespace", "bad-format", "not-well-formed"), cond
    await assert_healthy(server, w)


async def test_unsupported_version(server, witness_account):
    # RFC 6120 4.7.5: a major version the server does not speak.
    w = await login_witness(server, witness_account)
    raw = await RawStream.connect(server.host, server.port)
    await raw.send(stream_header(version="2.0"))
    cond, _ = await raw.expect_stream_error()
    assert cond == "unsupported-version", cond
    await assert_healthy(server, w)


# -- connection floods and TLS garbage ------------------------------------------------

async def test_flood_of_stalled_connections(server, witness_account):
    w = await login_witness(server, witness_account)
    stalled = []

    async def stall():
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(PARTIAL_HEADER.encode())
        await writer.drain()
        return writer

    try:
        for _ in range(6):
            stalled += await asyncio.wait_for(asyncio.gather(*(stall() for _ in range(50))), 10)
        assert len(stalled) == 300
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        jid, pw = server.add_user()
        c = await clients.login(server, jid, pw, timeout=10)
        await c.roundtrip(w)
        assert loop.time() - t0 < 10
        # Direct TLS too.
        c2 = await clients.login(server, jid, pw, direct_tls=True, timeout=10)
        await c2.roundtrip(c)
    finally:
        for wr in stalled:
            wr.close()
    await assert_healthy(server, w)


@pytest.mark.parametrize("garbage", [
    b"\x00" * 64 + os.urandom(2048),
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client'>",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\xff" * 600,
], ids=["random-bytes", "plaintext-xmpp", "broken-client-hello"])
async def test_garbage_on_direct_tls_port(server, witness_account, garbage):
    w = await login_witness(server, witness_account)
    reader, writer = await asyncio.open_connection(server.host, server.tls_port)
    writer.write(garbage)
    await writer.drain()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:  # the server may answer with a TLS alert; then it must close
        remaining = deadline - loop.time()
        assert remaining > 0, "server kept the connection open after TLS garbage"
        try:
            data = await asyncio.wait_for(reader.read(4096), remaining)
        except (ConnectionResetError, asyncio.TimeoutError) as e:
            if isinstance(e, asyncio.TimeoutError):
                raise AssertionError("server kept the connection open after TLS garbage")
            break
        if not data:
            break
    writer.close()
    jid, pw = server.add_user()
    c = await clients.login(server, jid, pw, direct_tls=True)
    await c.roundtrip(w)
    await assert_healthy(server, w)


async def test_tcp_reset_mid_stanza(server, witness_account):
    w = await login_witness(server, witness_account)
    raw = await logged_in(server)
    await raw.send(f"<message to='{w.boundjid.full}'><body>half")
    sock = raw.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    raw.writer.transport.abort()
    await assert_healthy(server, w)


# -- timeouts and connection limits (private servers) ----------------------------------

async def test_auth_timeout_closes_idle_unauthenticated(server_factory):
    srv = server_factory({"c2s": {"auth_timeout_s": 1}})
    jid, pw = srv.add_user()
    w = await clients.login(srv, jid, pw)
    idle = await RawStream.connect(srv.host, srv.port)           # sends nothing at all
    half = await RawStream.connect(srv.host, srv.port)
    await half.open_stream()                                      # opens, never authenticates
    results = await asyncio.gather(idle.wait_closed(timeout=8),
                                   half.expect_stream_error(timeout=8))
    cond, _ = results[1]
    assert cond == "connection-timeout", cond  # specs/c2s.md
    # An authenticated session is not subject to the timeout.
    await w.roundtrip()
    assert w.is_connected()


async def test_max_connections(server_factory):
    srv = server_factory({"c2s": {"max_connections": 3}})
    held = []
    for _ in range(3):
        r = await RawStream.connect(srv.host, srv.port)
        await r.open_stream()
        held.append(r)
    extra = await RawStream.connect(srv.host, srv.port)
    await extra.try_send(stream_header())
    await extra.wait_closed(timeout=5)
    # Freeing one slot lets a new client in (the server needs a moment to
    # see the close: retry, bounded).
    await held.pop().close()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        r = await RawStream.connect(srv.host, srv.port)
        try:
            await r.open_stream(timeout=2)
            break
        except Exception:
            await r.close()
            assert loop.time() < deadline, "no slot freed after a client left"
    held.append(r)
    for r in held:
        await r.close()


async def test_slow_reader_is_disconnected(server_factory):
    # limits.max_write_buffer_bytes: a client that never reads must not make
    # the server queue output without bound.
    srv = server_factory({"limits": {"max_write_buffer_bytes": 65536}})
    (ja, pa), (jb, pb) = srv.add_user(), srv.add_user()
    # B: small receive buffer, never reads until the end.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (srv.host, srv.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    b = RawStream(reader, writer)
    b_full = await b.login(jb.split("@")[0], pb, resource="slow")
    await b.send("<presence/>")
    a = await RawStream.connect(srv.host, srv.port)
    await a.login(ja.split("@")[0], pa, resource="fast")
    chunk = "".join(f"<message to='{b_full}' type='chat'><body>{'p' * 4000}</body></message>"
                    for _ in range(100))
    for _ in range(20):  # ~8 MB towards B
        await a.send(chunk)
    # When A's ping is answered the server has routed all of it.
    res = await a.iq("<ping xmlns='urn:xmpp:ping'/>", to=srv.domain, timeout=30)
    assert res.get("type") == "result"
    # B must find its connection closed after at most what was queued.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    total = 0
    while True:
        remaining = deadline - loop.time()
        assert remaining > 0, f"slow reader still connected after reading {total} bytes"
        try:
            data = await asyncio.wait_for(reader.read(1 << 20), remaining)
        except ConnectionResetError:
            break
        except asyncio.TimeoutError:
            raise AssertionError(f"slow reader still connected after reading {total} bytes")
        if not data:
            break
        total += len(data)
    assert total < 8_000_000, f"server delivered {total} bytes instead of closing the slow reader"
    await a.close()
