"""slixmpp clients for the integration tests.

    c = await login(server, jid, password)               # STARTTLS + SASL, bound, presence sent
    await c.barrier()                                    # ping the server: all sent before is processed
    msg = await c.wait_message(lambda m: m['body'] == 'x')

Every client made here is remembered and disconnected by close_all(), which
the conftest runs at the end of each async test.  Nothing here sleeps: every
wait is for an event, bounded by a timeout.
"""
import asyncio
import time
import logging
import secrets
import ssl

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout  # noqa: F401  (re-exported)

log = logging.getLogger("onair.tests")

WAIT = 10.0
_clients = []


class AuthFailed(Exception):
    def __init__(self, condition, text=""):
        super().__init__(f"authentication failed: {condition} {text}".strip())
        self.condition = condition


class ConnectFailed(Exception):
    pass


class Inbox:
    """Received stanzas of one kind.  wait(pred) takes the first matching
    item, however old; items that don't match stay for later waits."""

    def __init__(self, what):
        self.what = what
        self.items = []
        self._waiter = None

    def put(self, item):
        self.items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self, pred, timeout, owner=""):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for i, item in enumerate(self.items):
                if pred is None or pred(item):
                    return self.items.pop(i)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{owner}: no {self.what} matching within {timeout}s; "
                                     f"unmatched: {[str(s) for s in self.items]}")
            self._waiter = loop.create_future()
            try:
                await asyncio.wait_for(self._waiter, remaining)
            except asyncio.TimeoutError:
                pass

    def take_all(self):
        items, self.items = self.items, []
        return items


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, mech=None, plugins=()):
        super().__init__(jid, password, sasl_mech=mech)
        self.use_ipv6 = False  # the test servers listen on 127.0.0.1 only
        # The test server's certificate is self-signed.
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        for plugin in ("xep_0030", "xep_0199", "xep_0203", *plugins):
            self.register_plugin(plugin)
        # Subscription requests are answered by the tests, not automatically.
        self.roster.auto_authorize = None
        self.roster.auto_subscribe = False
        self.messages = Inbox("message")
        self.presences = Inbox("presence")
        self.stream_errors = Inbox("stream error")
        self.roster_pushes = Inbox("roster push")
        self.auth_failures = []
        self.used_mechanism = None
        self.add_event_handler("message", self.messages.put)
        self.add_event_handler("presence", self.presences.put)
        self.add_event_handler("stream_error", self.stream_errors.put)
        self.add_event_handler("roster_update", self.roster_pushes.put)
        self.add_event_handler("auth_success", self._on_auth_success)
        self.add_event_handler("failed_auth", lambda s: self.auth_failures.append(s))

    def _on_auth_success(self, _stanza):
        mech = self["feature_mechanisms"].mech
        self.used_mechanism = mech.name if mech is not None else None

    # -- waiting --------------------------------------------------------------
    async def wait_message(self, pred=None, timeout=WAIT):
        return await self.messages.wait(pred, timeout, self.boundjid)

    async def wait_presence(self, pred=None, timeout=WAIT):
        return await self.presences.wait(pred, timeout, self.boundjid)

    async def wait_roster_push(self, pred=None, timeout=WAIT):
        return await self.roster_pushes.wait(pred, timeout, self.boundjid)

    async def wait_stream_error(self, timeout=WAIT):
        return await self.stream_errors.wait(None, timeout, self.boundjid)

    async def wait_disconnected(self, timeout=WAIT):
        if not self.is_connected():
            return
        await asyncio.wait_for(asyncio.shield(self.disconnected), timeout)

    async def barrier(self, timeout=WAIT):
        """XEP-0199 ping to the server, awaiting its result: the server
        handles a client's stanzas in order, so everything sent before has
        been processed when this returns."""
        iq = self.make_iq_get(queryxmlns=None, ito=self.boundjid.domain)
        iq.enable("ping")
        resp = await iq.send(timeout=timeout)
        assert resp["type"] == "result", str(resp)
        return resp

    async def roundtrip(self, peer=None, timeout=WAIT):
        """Sends a message (to itself by default) and waits until it arrives."""
        peer = peer or self
        body = "rt-" + secrets.token_hex(6)
        self.send_message(mto=peer.boundjid.full, mbody=body, mtype="chat")
        return await peer.wait_message(lambda m: m["body"] == body, timeout)

    async def close(self, timeout=5.0):
        if self.is_connected():
            try:
                self.disconnect(wait=1.0)
                await asyncio.wait_for(asyncio.shield(self.disconnected), timeout)
            except Exception:
                self.abort()
        self.cancel_connection_attempt()


async def connect(server, jid, password, *, mech=None, direct_tls=False, port=None,
                  presence=True, roster=True, plugins=(), timeout=WAIT):
    """Connects and logs in; returns the Client once the session has started
    (resource bound), the roster was fetched (roster=True) and initial
    presence was sent and processed (presence=True).  plugins: more slixmpp
    plugins to register (e.g. "xep_0050").  Raises AuthFailed(condition) if SASL fails and
    ConnectFailed if the connection closes first."""
    c = Client(jid, password, mech, plugins)
    _clients.append(c)
    loop = asyncio.get_running_loop()
    started = loop.create_future()

    def done(result=None, exc=None):
        if not started.done():
            if exc is not None:
                started.set_exception(exc)
            else:
                started.set_result(result)

    c.add_event_handler("session_start", lambda _: done(True))
    c.add_event_handler("failed_all_auth", lambda _: done(exc=AuthFailed(
        c.auth_failures[-1]["condition"] if c.auth_failures else "no-mechanism",
        c.auth_failures[-1]["text"] if c.auth_failures else "")))
    c.add_event_handler("no_auth", lambda _: done(exc=AuthFailed("no-mechanism")))
    c.add_event_handler("disconnected", lambda r: done(exc=ConnectFailed(
        f"disconnected before the session started ({r}); stream errors: "
        f"{[str(e) for e in c.stream_errors.items]}")))
    c.add_event_handler("connection_failed", lambda e: done(exc=ConnectFailed(f"connection failed: {e}")))
    if port is None:
        port = server.tls_port if direct_tls else server.port
    stage = ["connecting"]
    for ev in ("connected", "tls_success", "auth_success", "session_bind"):
        c.add_event_handler(ev, lambda *_a, ev=ev: stage.append(ev))
    c.default_port = port  # slixmpp resolves "localhost" and takes the port from here
    c.connect(("localhost", port), use_ssl=direct_tls, force_starttls=not direct_tls)
    try:
        await asyncio.wait_for(started, timeout)
    except asyncio.TimeoutError:
        c.cancel_connection_attempt()
        if c.is_connected():
            c.abort()
        raise ConnectFailed(f"login as {jid} on port {port}: no session within {timeout}s; "
                            f"last step reached: {stage[-1]}") from None
    except BaseException:
        c.cancel_connection_attempt()
        if c.is_connected():
            c.abort()
        raise
    if roster:
        # Makes this an "interested resource" (RFC 6121 2.1.6) that gets roster pushes.
        await c.get_roster(timeout=timeout)
    if presence:
        c.send_presence()
        await c.barrier()
    return c


async def login(server, jid, password, **kw):
    return await connect(server, jid, password, **kw)


async def login_fails(server, jid, password, **kw):
    """Asserts that logging in fails; returns the AuthFailed exception."""
    try:
        c = await connect(server, jid, password, **kw)
    except AuthFailed as e:
        return e
    await c.close()
    raise AssertionError(f"login as {jid} unexpectedly succeeded")


async def close_all():
    while _clients:
        c = _clients.pop()
        try:
            await c.close()
        except Exception:  # teardown must go on
            log.exception("closing %s", c.boundjid)


async def wait_for(predicate, timeout=10.0, what="condition"):
    """Polls predicate (bounded); a poll, not a sleep-as-synchronisation."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def health(srv):
    """`onairctl health` as a dict of name -> value."""
    out = srv.ctl("health").stdout
    return dict(line.split(": ", 1) for line in out.strip().splitlines() if ": " in line)
