"""XMPP over WebSocket (specs/websocket.md) with a maintained JavaScript XMPP
library: @xmpp/client from npm (installed into tests/js by tests/setup.sh),
running under Node, against the real onaird over wss:// (http.tls with the
server's self-signed certificate).  It logs in with SCRAM, talks with a
slixmpp client on the TCP port, enters a password room next to a slixmpp
occupant, and logs in as a guest with ANONYMOUS.

tests/js/ws_client.mjs is the JavaScript side: it reports events as JSON
lines and takes orders as JSON lines, so each step here waits for its event
(bounded), never for time."""
import asyncio
import json
import os
import shutil

import pytest

import clients
from harness import REPO
from muc_client import book_live, groupchat, join, member, status_codes, wait_presence
from wsxmpp import WS_SERVER_CONFIG

JS_DIR = REPO / "tests" / "js"
JS_CLIENT = JS_DIR / "ws_client.mjs"
WAIT = 15.0

SERVER_CONFIG = WS_SERVER_CONFIG


@pytest.fixture
def node():
    exe = shutil.which("node")
    if exe and (JS_DIR / "node_modules" / "@xmpp" / "client").is_dir():
        return exe
    what = "node is not installed" if not exe else f"{JS_DIR}/node_modules is missing"
    if not os.environ.get("ONAIR_BUILD_DIR"):
        pytest.skip(f"{what} (run tests/setup.sh --test)")
    pytest.fail(f"{what}: tests/setup.sh --test installs nodejs and runs npm ci in tests/js")


class JsClient:
    """One ws_client.mjs process."""

    def __init__(self, proc):
        self.proc = proc
        self.seen = []

    @classmethod
    async def start(cls, node, server, username=None, password=None, domain=None):
        opts = {"service": f"wss://localhost:{server.http_port}/xmpp-websocket",
                "domain": domain or server.domain}
        if username is not None:
            opts.update(username=username, password=password)
        env = dict(os.environ, NODE_TLS_REJECT_UNAUTHORIZED="0",  # the test server's certificate is self-signed
                   NODE_NO_WARNINGS="1")
        proc = await asyncio.create_subprocess_exec(
            node, str(JS_CLIENT), json.dumps(opts), cwd=str(JS_DIR), env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return cls(proc)

    async def event(self, name):
        """The next event, which must be `name`."""
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), WAIT)
        except asyncio.TimeoutError:
            raise AssertionError(f"no '{name}' event from the JS client within {WAIT}s; so far {self.seen}")
        if not line:
            err = (await self.proc.stderr.read()).decode(errors="replace")
            raise AssertionError(f"the JS client ended before '{name}'; events {self.seen}; stderr: {err[-2000:]}")
        ev = json.loads(line)
        self.seen.append(ev)
        assert ev["event"] == name, f"expected '{name}', got {ev}; events so far {self.seen}"
        return ev

    async def order(self, **order):
        self.proc.stdin.write((json.dumps(order) + "\n").encode())
        await self.proc.stdin.drain()

    async def stop(self):
        await self.order(op="stop")
        await self.event("stopped")
        assert await asyncio.wait_for(self.proc.wait(), WAIT) == 0

    async def close(self):
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()


async def js_login(node, server, started, **kw):
    c = await JsClient.start(node, server, **kw)
    started.append(c)
    online = await c.event("online")
    return c, online["jid"]


async def test_js_scram_login_and_chat_with_tcp_client(server, node):
    started = []
    try:
        alice_jid, alice_pw = server.add_user()
        bob_jid, bob_pw = server.add_user()
        js, full = await js_login(node, server, started, username=alice_jid.split("@")[0], password=alice_pw)
        assert full.startswith(alice_jid + "/")
        bob = await clients.login(server, bob_jid, bob_pw)

        await js.order(op="chat", to=bob_jid, body="hello from the browser side")
        await js.event("sent")
        m = await bob.wait_message(lambda m: m["body"] == "hello from the browser side")
        assert m["from"].full == full and m["type"] == "chat"

        bob.send_message(mto=full, mbody="hello back over TCP", mtype="chat")
        await js.order(op="wait_message", **{"from": bob_jid, "type": "chat"})
        got = await js.event("message")
        assert got["body"] == "hello back over TCP" and got["from"] == str(bob.boundjid)

        await js.order(op="ping")
        assert (await js.event("pong"))["type"] == "result"
        await js.stop()
        # the stream ended cleanly: bob's message to it now finds nobody online
        assert "(WebSocket)" in server.stderr_text() and "(TLS)" in server.stderr_text()
    finally:
        for c in started:
            await c.close()


async def test_js_joins_password_room_with_tcp_occupant(server, node):
    started = []
    try:
        live = book_live(server, level="password", title="Night show")
        carol = await member(server)
        await join(carol, live, "Carol", password=live.password)
        dave_jid, dave_pw = server.add_user()
        js, full = await js_login(node, server, started, username=dave_jid.split("@")[0], password=dave_pw)
        room = str(live.room)

        await js.order(op="join", room=room, nick="Dave", password="not-it")
        assert (await js.event("join_error"))["condition"] == "not-authorized"

        await js.order(op="join", room=room, nick="Dave", password=live.password)
        joined = await js.event("joined")
        assert 110 in joined["codes"] and "Carol" in joined["occupants"]
        await wait_presence(carol, lambda p: p["from"].resource == "Dave" and p["type"] != "unavailable")

        await js.order(op="groupchat", room=room, body="evening all")
        assert (await js.event("reflected"))["from"] == f"{room}/Dave"
        m = await carol.wait_message(lambda m: m["body"] == "evening all")
        assert m["from"].resource == "Dave" and m["type"] == "groupchat"

        await groupchat(carol, live.room, "welcome Dave")
        await js.order(op="wait_message", **{"from": room, "type": "groupchat"})
        got = await js.event("message")
        assert got["body"] == "welcome Dave" and got["from"] == f"{room}/Carol"

        await js.order(op="leave", room=room, nick="Dave")
        await js.event("left")
        await wait_presence(carol, lambda p: p["from"].resource == "Dave" and p["type"] == "unavailable")
        await js.stop()
    finally:
        for c in started:
            await c.close()


async def test_js_guest_anonymous_in_public_room(server, node):
    started = []
    try:
        live = book_live(server, level="public")
        erin = await member(server)
        await join(erin, live, "Erin")
        js, full = await js_login(node, server, started, domain=server.guest_domain)
        assert full.split("/")[0].endswith("@" + server.guest_domain)
        room = str(live.room)
        await js.order(op="join", room=room, nick="Visitor")
        joined = await js.event("joined")
        assert 110 in joined["codes"] and "Erin" in joined["occupants"]
        pres = await wait_presence(erin, lambda p: p["from"].resource == "Visitor")
        assert 110 not in status_codes(pres)
        await js.order(op="groupchat", room=room, body="hi from a guest")
        await js.event("reflected")
        await erin.wait_message(lambda m: m["body"] == "hi from a guest" and m["from"].resource == "Visitor")
        await js.stop()
        # the guest's session is gone with its stream: the room says so
        await wait_presence(erin, lambda p: p["from"].resource == "Visitor" and p["type"] == "unavailable")
    finally:
        for c in started:
            await c.close()
