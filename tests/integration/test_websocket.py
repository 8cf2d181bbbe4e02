"""XMPP over WebSocket (RFC 7395, specs/websocket.md) against the real onaird:
the handshake (path, subprotocol), the framing (<open/>, <close/>, one
element per message, standalone namespaces), the same stream rules and
SASL as TCP, bad input of every layer (WebSocket frames, messages, XML,
stanzas) with its stream error or close code, and that none of it touches
another session; XEP-0156 discovery.  python3-websockets is the client; raw
sockets send what it refuses to."""
import asyncio
import json
import os
import pathlib
import re
import socket
import ssl
import xml.etree.ElementTree as ET

import pytest

import clients
from muc_client import book_live, groupchat, join, member, wait_presence
from test_spec_examples import matches as spec_matches, parse_expected
from webapi import request
from wsxmpp import (NS_BIND, NS_CLIENT, NS_FRAMING, NS_SASL, NS_STREAM, NS_TLS, WS_SERVER_CONFIG, WsStream,
                    mechanisms, q, tls_context, ws_connect)

import websockets

SERVER_CONFIG = WS_SERVER_CONFIG


async def bystanders(server):
    """A TCP session and a WebSocket session that every bad input must leave
    alone; check() proves both still work."""
    jid, pw = server.add_user()
    tcp = await clients.login(server, jid, pw)
    wjid, wpw = server.add_user()
    ws = await WsStream.connect(server)
    full = await ws.login(wjid, wpw, resource="bystander")

    async def check():
        body = "still-here-" + os.urandom(4).hex()
        tcp.send_message(mto=full, mbody=body, mtype="chat")
        m = await ws.wait_for(lambda el: el.tag == q(NS_CLIENT, "message"), "a message")
        assert m.findtext(q(NS_CLIENT, "body")) == body
        await ws.send(f"<message xmlns='{NS_CLIENT}' to='{tcp.boundjid.full}' type='chat'><body>{body}-back</body>"
                      "</message>")
        await tcp.wait_message(lambda m: m["body"] == body + "-back")
        await ws.aclose()

    return check


# ---- the handshake ----------------------------------------------------------

async def test_handshake_needs_the_xmpp_subprotocol(server):
    for protocols in (None, ["chat"], ["xmpp-framing"]):
        with pytest.raises(websockets.InvalidStatusCode) as e:
            await ws_connect(server, subprotocols=protocols)
        assert e.value.status_code == 400
    ws = await ws_connect(server, subprotocols=["chat", "xmpp"])
    assert ws.subprotocol == "xmpp"
    await ws.close()


def raw_upgrade(server, path="/xmpp-websocket", protocol="xmpp"):
    """The handshake by hand: (socket, response head)."""
    s = socket.create_connection(("127.0.0.1", server.http_port), timeout=10)
    s = tls_context().wrap_socket(s, server_hostname="localhost")
    head = (f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
    if protocol:
        head += f"Sec-WebSocket-Protocol: {protocol}\r\n"
    s.sendall((head + "\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return s, data


def test_handshake_errors_are_json(server):
    s, data = raw_upgrade(server, path="/elsewhere")
    s.close()
    assert data.startswith(b"HTTP/1.1 404"), data
    s, data = raw_upgrade(server, protocol=None)
    rest = s.recv(4096)
    s.close()
    assert data.startswith(b"HTTP/1.1 400"), data
    body = json.loads((data + rest).split(b"\r\n\r\n", 1)[1])
    assert body["error"]["status"] == 400 and "xmpp" in body["error"]["message"]
    s, data = raw_upgrade(server)
    s.close()
    assert data.startswith(b"HTTP/1.1 101") and b"Sec-WebSocket-Protocol: xmpp" in data, data


# ---- framing ----------------------------------------------------------------

async def test_open_features_and_close(server):
    s = await WsStream.connect(server)
    features = await s.open()
    # over wss: SCRAM and PLAIN, never STARTTLS (RFC 7395 section 3.8)
    assert features.find(q(NS_TLS, "starttls")) is None
    assert mechanisms(features) == ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]
    assert s.received[1].startswith("<stream:features xmlns:stream='http://etherx.jabber.org/streams'")
    await s.send(f"<close xmlns='{NS_FRAMING}'/>")
    el = await s.recv()
    assert el.tag == q(NS_FRAMING, "close")
    assert await s.close_code() == 1000


async def test_login_and_stanzas_stand_alone(server):
    jid, pw = server.add_user()
    s = await WsStream.connect(server)
    full = await s.login(jid, pw)
    assert full.startswith(jid + "/ws")
    # an unprefixed stanza inherits jabber:client, like on TCP
    await s.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
    reply = await s.recv()
    assert reply.tag == q(NS_CLIENT, "iq") and reply.get("type") == "result" and reply.get("id") == "p1"
    assert s.received[-1].startswith("<iq xmlns='jabber:client'")
    await s.send(f"<close xmlns='{NS_FRAMING}'/>")
    await s.wait_for(lambda el: el.tag == q(NS_FRAMING, "close"), "<close/>")
    assert await s.close_code() == 1000


async def test_tcp_and_websocket_sessions_talk(server):
    jid, pw = server.add_user()
    tcp = await clients.login(server, jid, pw)
    s = await WsStream.connect(server)
    wjid, wpw = server.add_user()
    full = await s.login(wjid, wpw)
    await s.send("<presence/>")
    tcp.send_message(mto=full, mbody="to the web", mtype="chat")
    m = await s.wait_for(lambda el: el.tag == q(NS_CLIENT, "message"), "a message")
    assert m.findtext(q(NS_CLIENT, "body")) == "to the web" and m.get("from") == tcp.boundjid.full
    await s.send(f"<message to='{jid}' type='chat'><body>from the web</body></message>")
    got = await tcp.wait_message(lambda m: m["body"] == "from the web")
    assert got["from"].full == full
    await s.aclose()


async def test_room_fan_out_reaches_websocket_occupants(server):
    """The serialize-once room fan-out (router_splice) to a WebSocket
    occupant: each message one whole, standalone stanza."""
    live = book_live(server)
    alice = await member(server)
    await join(alice, live, "Alice")
    jid, pw = server.add_user()
    s = await WsStream.connect(server)
    full = await s.login(jid, pw)
    room = str(live.room)
    await s.send(f"<presence to='{room}/Web'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
    await s.wait_for(lambda el: el.tag == q(NS_CLIENT, "presence") and el.get("from") == f"{room}/Web",
                     "self-presence")
    await wait_presence(alice, lambda p: p["from"].resource == "Web")
    for i in range(5):
        await groupchat(alice, live.room, f"line {i}")
    for i in range(5):
        m = await s.wait_for(lambda el: el.tag == q(NS_CLIENT, "message") and el.get("type") == "groupchat"
                             and el.find(q(NS_CLIENT, "body")) is not None, "a room message")
        assert m.findtext(q(NS_CLIENT, "body")) == f"line {i}"
        assert m.get("to") == full and m.get("from") == f"{room}/Alice"
    await s.send(f"<message to='{room}' type='groupchat'><body>web says hi</body></message>")
    await alice.wait_message(lambda m: m["body"] == "web says hi" and m["from"].resource == "Web")
    await s.aclose()
    await wait_presence(alice, lambda p: p["from"].resource == "Web" and p["type"] == "unavailable")


# ---- bad input: each gets its stream error or close code, others go on ------

async def test_stanza_before_auth(server):
    check = await bystanders(server)
    s = await WsStream.connect(server)
    await s.open()
    await s.send("<message to='someone@localhost'><body>let me in</body></message>")
    assert await s.expect_stream_error("not-authorized") == 1000
    await check()


async def test_element_before_open(server):
    check = await bystanders(server)
    s = await WsStream.connect(server)
    await s.send("<presence/>")
    opened = await s.recv()
    assert opened.tag == q(NS_FRAMING, "open")  # RFC 7395 3.6: the open element, then the error
    assert await s.expect_stream_error("invalid-namespace") == 1000
    await check()


@pytest.mark.parametrize("message,condition", [
    ("hello", "not-well-formed"),                                   # not XML
    ("<presence/><presence/>", "not-well-formed"),                  # two elements
    ("<presence>", "not-well-formed"),                              # half an element
    ("<presence/>trailing text", "not-well-formed"),                # text beside it
    ("text first<presence/>", "not-well-formed"),
    ("<presence><unclosed></presence>", "not-well-formed"),         # broken XML
    ("<?xml version='1.0'?><presence/>", "not-well-formed"),         # a declaration inside the stream
    ("<!DOCTYPE x [<!ENTITY a 'b'>]><presence/>", "not-well-formed"),  # no DTD once the stream is open
    ("<presence><!-- c --></presence>", "restricted-xml"),
    ("<presence><?pi x?></presence>", "restricted-xml"),
    ("<message><body>&custom;</body></message>", "not-well-formed"),
    ("</stream:stream>", "not-well-formed"),                        # TCP's stream end
    ("<a1:presence xmlns:a1='x'/>", "unsupported-stanza-type"),
    (f"<open xmlns='{NS_FRAMING}' to='localhost' version='1.0'/>", "invalid-xml"),  # opened already
    (f"<other xmlns='{NS_FRAMING}'/>", "unsupported-stanza-type"),
    ("<message from='mallory@localhost'><body>x</body></message>", "invalid-from"),
])
async def test_bad_messages(server, message, condition):
    """Each from a logged-in stream (so a first, good element is taken):
    its stream error, <close/>, close code 1000; the others go on."""
    check = await bystanders(server)
    jid, pw = server.add_user()
    s = await WsStream.connect(server)
    await s.login(jid, pw)
    await s.send(message)
    assert await s.expect_stream_error(condition) == 1000
    await check()


async def test_starttls_is_refused(server):
    s = await WsStream.connect(server)
    await s.open()
    await s.send(f"<starttls xmlns='{NS_TLS}'/>")
    assert (await s.recv()).tag == q(NS_TLS, "failure")
    assert (await s.recv()).tag == q(NS_FRAMING, "close")
    assert await s.close_code() == 1000


async def test_element_split_across_messages(server):
    check = await bystanders(server)
    s = await WsStream.connect(server)
    await s.open()
    await s.send("<presence")
    assert await s.expect_stream_error("not-well-formed") == 1000
    s = await WsStream.connect(server)
    await s.open()
    await s.send("<presence><status>a")
    assert await s.expect_stream_error("not-well-formed") == 1000
    await check()


async def test_whitespace_message_is_ignored(server):
    s = await WsStream.connect(server)
    await s.open()
    await s.send(" \n")
    await s.send(f"<close xmlns='{NS_FRAMING}'/>")
    assert (await s.recv()).tag == q(NS_FRAMING, "close")
    assert await s.close_code() == 1000


async def test_binary_message(server):
    check = await bystanders(server)
    s = await WsStream.connect(server)
    await s.open()
    await s.ws.send(b"<presence/>")
    assert await s.expect_stream_error("bad-format") == 1003
    await check()


async def test_oversize_message(server_factory):
    srv = server_factory({"http": {"tls": True}, "limits": {"max_stanza_bytes": 4096}})
    check = await bystanders(srv)
    s = await WsStream.connect(srv)
    jid, pw = srv.add_user()
    await s.login(jid, pw)
    body = "x" * 5000
    await s.send(f"<message to='{jid}'><body>{body}</body></message>")
    assert await s.expect_stream_error("policy-violation") == 1009
    # just under the limit is fine
    s = await WsStream.connect(srv)
    await s.login(jid, pw, resource="again")
    await s.send(f"<message to='{jid}/again' type='chat'><body>{'y' * 3000}</body></message>")
    m = await s.wait_for(lambda el: el.tag == q(NS_CLIENT, "message"), "the message")
    assert len(m.findtext(q(NS_CLIENT, "body"))) == 3000
    await s.aclose()
    await check()


def frame(payload, opcode=1, mask=True, fin=True, rsv=0):
    data = payload.encode() if isinstance(payload, str) else payload
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    n = len(data)
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([m | 127]) + n.to_bytes(8, "big")
    if not mask:
        return head + data
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(data))


def read_frames(sock):
    """Frames the server sent until it closed the connection or sent its
    close frame (answered, as a client does): [(opcode, payload)]."""
    data = b""
    frames = []
    sock.settimeout(10)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            while len(data) >= 2:
                op, n, i = data[0] & 0x0F, data[1] & 0x7F, 2
                if n == 126:
                    n, i = int.from_bytes(data[2:4], "big"), 4
                elif n == 127:
                    n, i = int.from_bytes(data[2:10], "big"), 10
                if len(data) < i + n:
                    break
                frames.append((op, data[i:i + n]))
                data = data[i + n:]
                if op == 8:
                    sock.sendall(frame(frames[-1][1], opcode=8))
                    return frames
    except (ConnectionResetError, BrokenPipeError, socket.timeout, ssl.SSLError):
        pass
    return frames


@pytest.mark.parametrize("bad,codes", [
    # libwebsockets 4.1 takes a client frame without a mask as it is: here a
    # stanza before authentication, answered as such
    (frame("<presence/>", mask=False), {1000}),
    (frame("<presence/>", opcode=3), {1002, None}),    # a reserved opcode
    (frame("<presence/>", rsv=0x40), {1002, None}),    # RSV1 without an extension
    (frame("x" * 200, opcode=9), {1002, None}),        # a control frame over 125 bytes
    (frame("<presence/>", opcode=0), {1002, None}),    # a continuation with nothing to continue
    (frame("<presence", fin=False) + frame("<presence/>"), {1002, None}),  # a new message inside one
])
async def test_malformed_frames(server, bad, codes):
    """Frames python3-websockets would never send, over a raw socket: the
    connection ends (with 1002, protocol error, where libwebsockets says
    why), nothing else does."""
    check = await bystanders(server)
    sock, head = await asyncio.to_thread(raw_upgrade, server)
    assert head.startswith(b"HTTP/1.1 101"), head
    sock.sendall(frame(f"<open xmlns='{NS_FRAMING}' to='localhost' version='1.0'/>"))
    sock.sendall(bad)
    frames = await asyncio.to_thread(read_frames, sock)
    sock.close()
    closes = [p for op, p in frames if op == 8]
    code = int.from_bytes(closes[0][:2], "big") if closes else None
    assert code in codes, frames
    await check()


async def test_peer_vanishing_ends_the_session(server):
    """A WebSocket that goes away without <close/> ends its stream: its room
    seat and presence go as for a dropped TCP connection."""
    live = book_live(server)
    alice = await member(server)
    await join(alice, live, "Alice")
    jid, pw = server.add_user()
    s = await WsStream.connect(server)
    await s.login(jid, pw)
    await s.send(f"<presence to='{live.room}/Gone'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
    await wait_presence(alice, lambda p: p["from"].resource == "Gone")
    s.ws.transport.abort()  # no close frame, no <close/>
    await wait_presence(alice, lambda p: p["from"].resource == "Gone" and p["type"] == "unavailable")


async def test_resource_conflict_between_transports(server):
    jid, pw = server.add_user()
    s = await WsStream.connect(server)
    await s.login(jid, pw, resource="same")
    tcp = await clients.connect(server, f"{jid}/same", pw)
    assert tcp.boundjid.resource == "same"
    assert await s.expect_stream_error("conflict") == 1000


# ---- policy: when a WebSocket stream counts as encrypted --------------------

async def test_plain_websocket_follows_require_tls(server_factory):
    srv = server_factory()  # plain HTTP, c2s.require_tls on (the default)
    s = await WsStream.connect(srv)
    features = await s.open()
    assert mechanisms(features) == [] and features.find(q(NS_TLS, "starttls")) is None
    jid, pw = srv.add_user()
    reply = await s.auth_plain(jid.split("@")[0], pw)
    assert reply.tag == q(NS_SASL, "failure") and reply.find(q(NS_SASL, "encryption-required")) is not None
    await s.aclose()


async def test_loopback_is_secure(server_factory):
    srv = server_factory({"http": {"loopback_is_secure": True}})
    s = await WsStream.connect(srv)
    jid, pw = srv.add_user()
    full = await s.login(jid, pw)
    assert full.startswith(jid)
    await s.aclose()
    await clients.wait_for(lambda: f"bound {full} (TLS) (WebSocket)" in srv.stderr_text(), 10,
                           "the log line of the binding")


async def test_guest_anonymous_over_websocket(server):
    s = await WsStream.connect(server)
    features = await s.open(server.guest_domain)
    assert mechanisms(features) == ["ANONYMOUS"]
    await s.send(f"<auth xmlns='{NS_SASL}' mechanism='ANONYMOUS'/>")
    assert (await s.recv()).tag == q(NS_SASL, "success")
    await s.open(server.guest_domain)
    await s.send(f"<iq type='set' id='b'><bind xmlns='{NS_BIND}'/></iq>")
    reply = await s.recv()
    full = reply.find(f"{q(NS_BIND, 'bind')}/{q(NS_BIND, 'jid')}").text
    assert full.split("/")[0].endswith("@" + server.guest_domain)
    await s.aclose()


# ---- the same limits and timers as TCP --------------------------------------

async def test_auth_timeout(server_factory):
    srv = server_factory({"http": {"tls": True}, "c2s": {"auth_timeout_s": 1}})
    s = await WsStream.connect(srv)
    await s.open()
    assert await s.expect_stream_error("connection-timeout", timeout=5) == 1000


async def test_idle_parser_release_and_rebuild(server_factory):
    srv = server_factory({"http": {"tls": True}, "c2s": {"idle_release_s": 1}})
    jid, pw = srv.add_user()
    s = await WsStream.connect(srv)
    full = await s.login(jid, pw)
    before = int(clients.health(srv)["parsers_released"])
    await clients.wait_for(lambda: int(clients.health(srv)["parsers_released"]) > before, 10,
                           "the idle WebSocket stream's parser to be released")
    # rebuilt with the framed stream's namespaces: an unprefixed stanza is still jabber:client
    await s.send(f"<message to='{full}' type='chat'><body>after the nap</body></message>")
    m = await s.wait_for(lambda el: el.tag == q(NS_CLIENT, "message"), "the message")
    assert m.findtext(q(NS_CLIENT, "body")) == "after the nap"
    await s.aclose()


async def test_slow_reader_is_cut_off(server_factory):
    """Output beyond limits.max_write_buffer_bytes for a WebSocket client that
    does not read ends that connection, and only that one."""
    srv = server_factory({"http": {"tls": True}, "limits": {"max_write_buffer_bytes": 65536}})
    check = await bystanders(srv)
    jid, pw = srv.add_user()
    s = await WsStream.connect(srv)
    full = await s.login(jid, pw)
    s.ws.transport.pause_reading()  # a client that stops reading
    sender_jid, sender_pw = srv.add_user()
    sender = await clients.login(srv, sender_jid, sender_pw)
    chunk = "z" * 60000
    for i in range(400):
        sender.send_message(mto=full, mbody=chunk, mtype="chat")
        if i % 20 == 19:
            await sender.barrier()
            if "WebSocket output over" in srv.stderr_text():
                break
    await clients.wait_for(lambda: "WebSocket output over" in srv.stderr_text(), 10,
                           "the slow WebSocket reader to be cut off")
    s.ws.transport.abort()
    await check()


async def test_shutdown_says_so(server_factory):
    srv = server_factory({"http": {"tls": True}})
    jid, pw = srv.add_user()
    s = await WsStream.connect(srv)
    await s.login(jid, pw)
    stopping = asyncio.create_task(asyncio.to_thread(srv.stop))
    el = await s.wait_for(lambda el: el.tag == q(NS_STREAM, "error"), "the stream error")
    assert el.find("{urn:ietf:params:xml:ns:xmpp-streams}system-shutdown") is not None
    assert (await s.recv()).tag == q(NS_FRAMING, "close")
    await stopping


# ---- XEP-0156 discovery -----------------------------------------------------

NS_XRD = "http://docs.oasis-open.org/ns/xri/xrd-1.0"
REL = "urn:xmpp:alt-connections:websocket"


def test_host_meta_from_host_header(server):
    r = request(server, "GET", "/.well-known/host-meta", headers={"Host": f"chat.example:{server.http_port}"})
    assert r.status == 200 and r.header("content-type").startswith("application/xrd+xml"), r
    assert r.header("access-control-allow-origin") == "*"
    xrd = ET.fromstring(r.raw)
    links = xrd.findall(f"{{{NS_XRD}}}Link")
    assert [(l.get("rel"), l.get("href")) for l in links] == [
        (REL, f"wss://chat.example:{server.http_port}/xmpp-websocket")]
    r = request(server, "GET", "/.well-known/host-meta.json", headers={"Host": "chat.example"})
    assert r.status == 200 and r.header("content-type") == "application/json"
    assert r.json == {"links": [{"rel": REL, "href": "wss://chat.example/xmpp-websocket"}]}
    r = request(server, "GET", "/.well-known/host-meta", headers={"Host": "bad host\"<x>"})
    assert r.status == 400


def test_host_meta_from_public_url(server_factory):
    srv = server_factory({"http": {"public_url": "https://live.example.org/onair/",
                                   "xmpp_websocket_path": "/ws"}})
    r = request(srv, "GET", "/.well-known/host-meta.json")
    assert r.json == {"links": [{"rel": REL, "href": "wss://live.example.org/onair/ws"}]}


async def test_endpoint_off(server_factory):
    srv = server_factory({"http": {"xmpp_websocket_path": ""}})
    assert request(srv, "GET", "/.well-known/host-meta").status == 404
    with pytest.raises(websockets.InvalidStatusCode) as e:
        await ws_connect(srv)
    assert e.value.status_code == 404


# ---- the examples of specs/websocket.md -------------------------------------

SPECS = pathlib.Path(__file__).resolve().parents[2] / "specs"
EXAMPLE = re.compile(r"```websocket-example\n(.*?)```", re.S)
SPEC_PASSWORD = "pencil-spec"


def ws_examples():
    text = (SPECS / "websocket.md").read_text()
    return [pytest.param(m.group(1), id=f"websocket-{i + 1}") for i, m in enumerate(EXAMPLE.finditer(text))]


def test_websocket_spec_has_examples():
    assert len(ws_examples()) >= 5, "specs/websocket.md lost its replayable examples"


@pytest.mark.parametrize("block", ws_examples())
async def test_websocket_spec_example(server_factory, block):
    """Block format: see specs/websocket.md, "Examples"; S: lines match as in
    test_spec_examples (a subset, '*' any value), and each received message
    must parse on its own."""
    lines = [ln for ln in block.strip().splitlines() if ln.strip()]
    state = lines[0].lstrip("#").strip()
    srv = server_factory({"http": {"tls": True}})
    srv.add_user("alice", SPEC_PASSWORD)
    s = await WsStream.connect(srv)
    if state == "as alice":
        await s.login("alice@localhost", SPEC_PASSWORD, resource="spec")
        await s.send("<presence/>")
        await s.send("<iq type='get' id='settle'><ping xmlns='urn:xmpp:ping'/></iq>")
        await s.wait_for(lambda el: el.get("id") == "settle", "the ping's answer")
    else:
        assert state == "not logged in", f"unknown example state: {state}"
    env = {}
    for line in lines[1:]:
        m = re.match(r"(C|S|CLOSE):\s*(.*)$", line)
        assert m, f"bad example line: {line}"
        kind, text = m.groups()
        if kind == "C":
            await s.send(text)
        elif kind == "S":
            got = await s.recv(timeout=5)
            bound = spec_matches(parse_expected(text), got, env)
            assert bound is not None, f"expected (subset) {text}\n     got {s.received[-1]}"
            env = bound
        else:
            assert await s.close_code(timeout=5) == int(text)
    if s.ws.open:
        await s.aclose()
