"""Stanza-level raw XMPP client over asyncio streams, for tests that must send
exactly the bytes they choose (bad XML, pre-TLS auth, oversized stanzas...).

    raw = await RawStream.connect(server.host, server.port)
    features = await raw.open_stream()          # ET element of <stream:features/>
    await raw.starttls()                        # upgrade + restart; returns new features
    el = await raw.next()                       # next top-level element from the server
    cond = await raw.expect_stream_error()      # the stream error's condition name, and
                                                # checks the server closes the connection

What the server sends is parsed with an incremental XML parser, so prefixes
and attribute order don't matter; elements carry Clark names
("{jabber:client}message").  Every wait is bounded.
"""
import asyncio
import base64
import hashlib
import hmac
import os
import re
import secrets
import ssl
import xml.etree.ElementTree as ET

NS_STREAM = "http://etherx.jabber.org/streams"
NS_STREAMS_ERR = "urn:ietf:params:xml:ns:xmpp-streams"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session"
NS_CLIENT = "jabber:client"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"

DEFAULT_TIMEOUT = 5.0


def q(ns, name):
    return f"{{{ns}}}{name}"


def local(tag):
    return tag.rsplit("}", 1)[-1]


def tostr(el):
    return ET.tostring(el, encoding="unicode")


def stream_header(to="localhost", ns=NS_CLIENT, stream_ns=NS_STREAM, version="1.0",
                  xml_decl=True, extra=""):
    decl = "<?xml version='1.0'?>" if xml_decl else ""
    ver = f" version='{version}'" if version else ""
    to_attr = f" to='{to}'" if to else ""
    return (f"{decl}<stream:stream xmlns='{ns}' xmlns:stream='{stream_ns}'"
            f"{to_attr}{ver} xml:lang='en'{extra}>")


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class StreamClosed(Exception):
    """The server closed its stream (</stream:stream>) or the connection."""


class ProtocolError(AssertionError):
    pass


class RawStream:
    def __init__(self, reader, writer, tls=False):
        self.reader = reader
        self.writer = writer
        self.tls = tls
        self.received = bytearray()  # everything the server sent (for messages)
        self.eof = False
        self.stream_closed = False
        self.header = None  # attributes of the server's stream header
        self._queue = []
        self._reset_parser()

    @classmethod
    async def connect(cls, host, port, tls=False, server_hostname="localhost",
                      timeout=DEFAULT_TIMEOUT):
        ssl_ctx = tls_context() if tls else None
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ssl_ctx,
                                    server_hostname=server_hostname if tls else None),
            timeout)
        return cls(reader, writer, tls=tls)

    # -- plumbing ------------------------------------------------------------
    def _reset_parser(self):
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.header = None
        self.stream_closed = False
        self._queue = []

    def received_text(self):
        return self.received.decode("utf-8", errors="replace")

    async def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.writer.write(data)
        await self.writer.drain()

    async def try_send(self, data):
        """send() that ignores a connection the server already closed."""
        try:
            await self.send(data)
            return True
        except (ConnectionError, OSError, RuntimeError):
            return False

    async def _read_some(self, timeout):
        try:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
        except asyncio.TimeoutError:  # (a subclass of OSError: test it first)
            return None
        except (ConnectionError, ssl.SSLError, OSError):
            data = b""
        if not data:
            self.eof = True
            return b""
        self.received += data
        return data

    def _feed(self, data):
        try:
            self.parser.feed(data)
            for ev, el in self.parser.read_events():
                if ev == "start":
                    if self.depth == 0:
                        if el.tag != q(NS_STREAM, "stream"):
                            raise ProtocolError(f"server's root element is {el.tag}, not stream:stream")
                        self.header = dict(el.attrib)
                    self.depth += 1
                else:
                    self.depth -= 1
                    if self.depth == 1:
                        self._queue.append(el)
                    elif self.depth == 0:
                        self.stream_closed = True
        except ET.ParseError as e:
            raise ProtocolError(f"server sent XML we cannot parse ({e}); received so far:\n"
                                f"{self.received_text()[-2000:]}")

    async def next(self, timeout=DEFAULT_TIMEOUT):
        """The next complete top-level element the server sends.  Raises
        StreamClosed at </stream:stream> or EOF, TimeoutError after timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._queue:
            if self.stream_closed or self.eof:
                raise StreamClosed(self.received_text()[-2000:])
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise asyncio.TimeoutError(
                    f"nothing from the server within {timeout}s; received so far:\n"
                    f"{self.received_text()[-2000:]}")
            data = await self._read_some(remaining)
            if data:
                self._feed(data)
        return self._queue.pop(0)

    async def expect(self, tag, timeout=DEFAULT_TIMEOUT):
        el = await self.next(timeout)
        if el.tag != tag:
            raise ProtocolError(f"expected {tag}, got {tostr(el)}")
        return el

    async def wait_header(self, timeout=DEFAULT_TIMEOUT):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.header is None:
            if self.eof:
                raise StreamClosed(self.received_text()[-2000:])
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise asyncio.TimeoutError(f"no stream header within {timeout}s; got "
                                           f"{self.received_text()[-2000:]!r}")
            data = await self._read_some(remaining)
            if data:
                self._feed(data)
        return self.header

    async def wait_closed(self, timeout=DEFAULT_TIMEOUT):
        """Reads (and discards unparsed) until the server closes the TCP
        connection; AssertionError if it is still open after timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.eof:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"server did not close the connection within {timeout}s; "
                                     f"received:\n{self.received_text()[-2000:]}")
            await self._read_some(remaining)
        return True

    async def expect_stream_error(self, timeout=DEFAULT_TIMEOUT, close_timeout=DEFAULT_TIMEOUT):
        """Reads elements up to a <stream:error/>; returns (condition, element).
        Then checks the server ends its stream and closes the TCP connection
        (we answer its </stream:stream> with ours, as RFC 6120 4.4 expects)."""
        skipped = []
        while True:
            try:
                el = await self.next(timeout)
            except StreamClosed:
                raise AssertionError("connection/stream closed without a stream error; "
                                     f"received:\n{self.received_text()[-3000:]}") from None
            if el.tag == q(NS_STREAM, "error"):
                break
            skipped.append(tostr(el))
            if len(skipped) > 20:
                raise AssertionError(f"no stream error; got {skipped}")
        conds = [local(c.tag) for c in el if c.tag.startswith("{" + NS_STREAMS_ERR + "}")
                 and local(c.tag) != "text"]
        assert len(conds) == 1, f"stream error must carry exactly one condition: {tostr(el)}"
        # The server must now close the stream and the connection.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + close_timeout
        while not self.stream_closed and not self.eof:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError("server sent a stream error but did not close the stream "
                                     f"within {close_timeout}s:\n{self.received_text()[-2000:]}")
            data = await self._read_some(remaining)
            if data:
                try:
                    self._feed(data)
                except ProtocolError:
                    pass  # trailing bytes after an error are not our concern here
        await self.try_send("</stream:stream>")
        await self.wait_closed(max(0.1, deadline - loop.time() + 1))
        return conds[0], el

    async def close(self):
        try:
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 2)
        except Exception:
            pass

    # -- XMPP steps ----------------------------------------------------------
    async def open_stream(self, to="localhost", timeout=DEFAULT_TIMEOUT, **kw):
        """Sends a stream header; returns the <stream:features/> element."""
        self._reset_parser()
        await self.send(stream_header(to=to, **kw))
        await self.wait_header(timeout)
        return await self.expect(q(NS_STREAM, "features"), timeout)

    async def starttls(self, to="localhost", server_hostname="localhost"):
        """STARTTLS (RFC 6120 5.4) then the stream restart; returns the new features."""
        await self.send(f"<starttls xmlns='{NS_TLS}'/>")
        await self.expect(q(NS_TLS, "proceed"))
        await self.writer.start_tls(tls_context(), server_hostname=server_hostname)
        self.tls = True
        return await self.open_stream(to=to)

    async def auth(self, mechanism, initial=b"", to="localhost"):
        """Sends <auth/>; returns the server's reply element (success, failure,
        challenge)."""
        payload = base64.b64encode(initial).decode() if initial else "="
        await self.send(f"<auth xmlns='{NS_SASL}' mechanism='{mechanism}'>{payload}</auth>")
        return await self.next()

    async def auth_plain(self, user, password, authzid=""):
        return await self.auth("PLAIN", f"{authzid}\0{user}\0{password}".encode())

    async def auth_scram(self, user, password, hash_name="sha256", wrong_password=False):
        """A complete SCRAM exchange (RFC 5802, no channel binding).  Returns
        the final reply element (success or failure); on success also checks
        the server's signature."""
        mech = {"sha256": "SCRAM-SHA-256", "sha1": "SCRAM-SHA-1"}[hash_name]
        cnonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = f"n={user},r={cnonce}"
        ch = await self.auth(mech, f"n,,{first_bare}".encode())
        if ch.tag != q(NS_SASL, "challenge"):
            return ch
        server_first = base64.b64decode(ch.text).decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        assert attrs["r"].startswith(cnonce) and len(attrs["r"]) > len(cnonce), server_first
        salt = base64.b64decode(attrs["s"])
        iters = int(attrs["i"])
        pw = password + ("WRONG" if wrong_password else "")
        salted = hashlib.pbkdf2_hmac(hash_name, pw.encode(), salt, iters)
        client_key = hmac.new(salted, b"Client Key", hash_name).digest()
        stored = hashlib.new(hash_name, client_key).digest()
        final_noproof = f"c=biws,r={attrs['r']}"
        auth_msg = f"{first_bare},{server_first},{final_noproof}".encode()
        sig = hmac.new(stored, auth_msg, hash_name).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        final = f"{final_noproof},p={base64.b64encode(proof).decode()}"
        await self.send(f"<response xmlns='{NS_SASL}'>{base64.b64encode(final.encode()).decode()}</response>")
        reply = await self.next()
        if reply.tag == q(NS_SASL, "success"):
            server_key = hmac.new(salted, b"Server Key", hash_name).digest()
            want = "v=" + base64.b64encode(hmac.new(server_key, auth_msg, hash_name).digest()).decode()
            got = base64.b64decode(reply.text or "").decode()
            assert got == want, f"bad server signature {got!r}, expected {want!r}"
        self.scram_iterations = iters
        return reply

    async def bind(self, resource=None):
        res = f"<resource>{resource}</resource>" if resource else ""
        iq_id = "bind-" + secrets.token_hex(3)
        await self.send(f"<iq type='set' id='{iq_id}'><bind xmlns='{NS_BIND}'>{res}</bind></iq>")
        el = await self.expect(q(NS_CLIENT, "iq"))
        assert el.get("type") == "result" and el.get("id") == iq_id, tostr(el)
        jid = el.find(f"{q(NS_BIND, 'bind')}/{q(NS_BIND, 'jid')}")
        assert jid is not None and jid.text, tostr(el)
        return jid.text

    async def login(self, user, password, resource=None, to="localhost"):
        """Full c2s login on a fresh plaintext connection: features, STARTTLS,
        SASL PLAIN, restart, bind (and legacy session if required).
        Returns the bound full JID."""
        if not self.tls:
            features = await self.open_stream(to=to)
            if features.find(q(NS_TLS, "starttls")) is not None:
                await self.starttls(to=to)
        else:
            await self.open_stream(to=to)
        reply = await self.auth_plain(user, password)
        assert reply.tag == q(NS_SASL, "success"), f"login failed: {tostr(reply)}"
        features = await self.open_stream(to=to)
        assert features.find(q(NS_BIND, "bind")) is not None, tostr(features)
        jid = await self.bind(resource)
        sess = features.find(q(NS_SESSION, "session"))
        if sess is not None and sess.find(q(NS_SESSION, "optional")) is None:
            await self.send(f"<iq type='set' id='sess'><session xmlns='{NS_SESSION}'/></iq>")
            el = await self.expect(q(NS_CLIENT, "iq"))
            assert el.get("type") == "result", tostr(el)
        return jid

    async def iq(self, xml_payload, type_="get", to=None, timeout=DEFAULT_TIMEOUT):
        """Sends an IQ and returns the matching response (other stanzas that
        arrive meanwhile are dropped)."""
        iq_id = "iq-" + secrets.token_hex(4)
        to_attr = f" to='{to}'" if to else ""
        await self.send(f"<iq type='{type_}' id='{iq_id}'{to_attr}>{xml_payload}</iq>")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            el = await self.next(max(0.01, deadline - loop.time()))
            if el.tag == q(NS_CLIENT, "iq") and el.get("id") == iq_id:
                return el


def mechanisms(features):
    """SASL mechanism names offered in a features element (empty if none)."""
    mechs = features.find(q(NS_SASL, "mechanisms"))
    if mechs is None:
        return []
    return [m.text.strip() for m in mechs.findall(q(NS_SASL, "mechanism")) if m.text]


def starttls_required(features):
    st = features.find(q(NS_TLS, "starttls"))
    return st is not None and st.find(q(NS_TLS, "required")) is not None


def stanza_error(el):
    """(type, condition) of a stanza's <error/> child, or None."""
    err = el.find(q(NS_CLIENT, "error"))
    if err is None:
        return None
    conds = [local(c.tag) for c in err if c.tag.startswith("{" + NS_STANZAS + "}")
             and local(c.tag) != "text"]
    return err.get("type"), (conds[0] if conds else None)


_ERR_RE = re.compile(r"<([a-z-]+)\s+xmlns=['\"]" + re.escape(NS_STREAMS_ERR))


def stream_error_conditions_in(text):
    """Stream-error condition names found textually (fallback for unparsable output)."""
    return [m for m in _ERR_RE.findall(text) if m != "text"]
