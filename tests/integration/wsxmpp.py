"""XMPP over WebSocket (RFC 7395) from the test side, on python3-websockets.

    s = await WsStream.connect(server)                 # wss:// when the server has http.tls
    features = await s.open()                          # <open/> out, <open/> and features back
    full = await s.login(jid, password)                # PLAIN over TLS, restart, bind
    el = await s.recv()                                # the next message, parsed on its own
    code = await s.expect_stream_error("not-well-formed")   # error, <close/>, close frame

Every message is parsed as a standalone document (ElementTree): RFC 7395
wants each one complete with its namespace declarations, so a missing
xmlns shows up as a wrong tag here.  Every wait is bounded.
"""
import asyncio
import base64
import ssl
import xml.etree.ElementTree as ET

import websockets

WAIT = 10.0
NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
NS_STREAM = "http://etherx.jabber.org/streams"
NS_STREAMS = "urn:ietf:params:xml:ns:xmpp-streams"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_CLIENT = "jabber:client"
PATH = "/xmpp-websocket"


# Servers of the WebSocket tests: HTTPS (so wss://, where streams count as
# encrypted) and a channel whose rooms open at reconfirmation.
WS_SERVER_CONFIG = {
    "http": {"tls": True},
    "channels": [{"id": "main", "name": "Main stage", "capacity": 50, "bandwidth_kbps": 2000,
                  "price_per_hour": 0}],
    "reservation": {"slot_s": 60},
    "schedule": {"reconfirm_before_s": 0, "room_open_before_s": 7 * 86400},
}


def q(ns, name):
    return f"{{{ns}}}{name}"


def ws_url(server, path=PATH):
    tls = bool(server.groups.get("http", {}).get("tls"))
    return f"{'wss' if tls else 'ws'}://127.0.0.1:{server.http_port}{path}"


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the test server's certificate is self-signed
    return ctx


async def ws_connect(server, *, subprotocols=("xmpp",), path=PATH, **kw):
    url = ws_url(server, path)
    return await websockets.connect(url, subprotocols=list(subprotocols) if subprotocols is not None else None,
                                    ssl=tls_context() if url.startswith("wss") else None, max_size=None,
                                    open_timeout=WAIT, close_timeout=WAIT, ping_interval=None, **kw)


class StreamEnded(AssertionError):
    pass


class WsStream:
    def __init__(self, ws, domain):
        self.ws = ws
        self.domain = domain
        self.received = []  # raw texts, for messages in failures

    @classmethod
    async def connect(cls, server, **kw):
        return cls(await ws_connect(server, **kw), server.domain)

    async def send(self, text):
        await self.ws.send(text)

    async def recv_text(self, timeout=WAIT):
        try:
            text = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"nothing received within {timeout}s; so far {self.received}") from None
        except websockets.ConnectionClosed as e:
            raise StreamEnded(f"connection closed ({e}); so far {self.received}") from None
        assert isinstance(text, str), f"a binary message: {text!r}"
        self.received.append(text)
        return text

    async def recv(self, timeout=WAIT):
        """The next message as an element; it must parse on its own."""
        text = await self.recv_text(timeout)
        try:
            return ET.fromstring(text)
        except ET.ParseError as e:
            raise AssertionError(f"a message that does not stand alone ({e}): {text!r}") from None

    async def open(self, to=None):
        await self.send(f"<open xmlns='{NS_FRAMING}' to='{to or self.domain}' version='1.0'/>")
        opened = await self.recv()
        assert opened.tag == q(NS_FRAMING, "open"), ET.tostring(opened)
        assert opened.get("version") == "1.0" and opened.get("id") and opened.get("from") == (to or self.domain)
        features = await self.recv()
        assert features.tag == q(NS_STREAM, "features"), ET.tostring(features)
        return features

    async def auth_plain(self, user, password):
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        await self.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{token}</auth>")
        return await self.recv()

    async def login(self, jid, password, resource="ws"):
        """PLAIN (over TLS), the stream restart, binding: returns the full JID."""
        user, domain = jid.split("@")
        features = await self.open(domain)
        assert "PLAIN" in mechanisms(features), ET.tostring(features)
        reply = await self.auth_plain(user, password)
        assert reply.tag == q(NS_SASL, "success"), ET.tostring(reply)
        features = await self.open(domain)
        assert features.find(q(NS_BIND, "bind")) is not None, ET.tostring(features)
        await self.send(f"<iq xmlns='{NS_CLIENT}' type='set' id='b1'><bind xmlns='{NS_BIND}'>"
                        f"<resource>{resource}</resource></bind></iq>")
        reply = await self.recv()
        assert reply.tag == q(NS_CLIENT, "iq") and reply.get("type") == "result", ET.tostring(reply)
        return reply.find(f"{q(NS_BIND, 'bind')}/{q(NS_BIND, 'jid')}").text

    async def wait_for(self, pred, what, timeout=WAIT):
        """The first element that matches (others are skipped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            el = await self.recv(max(0.01, deadline - loop.time()))
            if pred(el):
                return el

    async def close_code(self, timeout=WAIT):
        """Waits until the connection is closed; returns the close code the
        server sent (1006: none)."""
        try:
            while True:
                text = await asyncio.wait_for(self.ws.recv(), timeout)
                self.received.append(text)
        except websockets.ConnectionClosed:
            pass
        await asyncio.wait_for(self.ws.wait_closed(), timeout)
        return self.ws.close_code

    async def expect_stream_error(self, condition, timeout=WAIT):
        """A stream error with `condition`, then <close/>, then the close
        frame; returns the close code."""
        el = await self.recv(timeout)
        assert el.tag == q(NS_STREAM, "error"), f"expected a stream error, got {self.received[-1]!r}"
        conds = [c.tag for c in el if c.tag != q(NS_STREAMS, "text")]
        assert conds == [q(NS_STREAMS, condition)], f"expected {condition}: {self.received[-1]!r}"
        closing = await self.recv(timeout)
        assert closing.tag == q(NS_FRAMING, "close"), f"expected <close/> after the error: {self.received[-1]!r}"
        return await self.close_code(timeout)

    async def aclose(self):
        await self.ws.close()


def mechanisms(features):
    mechs = features.find(q(NS_SASL, "mechanisms"))
    return [] if mechs is None else [m.text for m in mechs.findall(q(NS_SASL, "mechanism"))]
