"""Live chat rooms from the test side (specs/muc.md).

    live = book_live(server, level="password")          # booked and reconfirmed over HTTP
    c = await member(server)                            # an account, logged in with xep_0045
    pres, subject, occupants, history = await join(c, live, "nick", password=live.password)

A room opens when its reservation is reconfirmed if schedule.room_open_before_s
reaches past the start (the servers of these tests book a few minutes or
hours ahead with an open-before of a week).  Every wait is for an event,
bounded.
"""
import asyncio
import time
from datetime import datetime, timezone

from slixmpp import JID
from slixmpp.exceptions import PresenceError  # noqa: F401 (re-exported)
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath

import clients
from webapi import login as http_login, request

PLUGINS = ("xep_0004", "xep_0045")
MUC_HOST = "live.localhost"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
WAIT = 10.0



def iso(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Live:
    def __init__(self, rid, owner, owner_pw, start, end, level, password, title):
        self.id = rid
        self.room = JID(f"{rid}@{MUC_HOST}")
        self.owner = owner
        self.owner_pw = owner_pw
        self.start, self.end = start, end
        self.level = level
        self.password = password
        self.title = title


def book_live(server, *, level="public", channel="main", start=None, minutes=60, seconds=None, slot=60,
              title="Evening talk", password="view-secret", reconfirm=True, owner=None):
    """Books (and reconfirms) a live of `minutes` (or `seconds`); returns a
    Live.  Without start, each call on a server takes its own hour (the
    server's first booking the next hour, and so on)."""
    if start is None:
        now = int(time.time())
        server.booked_hours = getattr(server, "booked_hours", 0) + 1
        start = (now // slot + 1) * slot + server.booked_hours * 3600
    length = seconds if seconds is not None else minutes * 60
    owner_jid, owner_pw = owner or server.add_user()
    tok = http_login(server, owner_jid.split("@")[0], owner_pw)
    body = {"channel": channel, "start": iso(start), "end": iso(start + length), "level": level,
            "title": title, "broadcast_password": "cast-secret", "summary": "A short talk",
            "detail": "Questions welcome"}
    if level != "public":
        body["shared_password"] = password
    r = request(server, "POST", "/api/v1/reservations", body, token=tok)
    assert r.status == 201, r
    rid = r.json["reservation"]["id"]
    if reconfirm:
        rc = request(server, "POST", f"/api/v1/reservations/{rid}/reconfirm", token=tok)
        assert rc.status == 200, rc
    live = Live(rid, owner_jid, owner_pw, start, start + length, level,
                password if level != "public" else None, title)
    live.token = tok
    return live


def _watch_rooms(c):
    """Room presences (with a muc#user payload) go to c.muc_presences:
    slixmpp's own "presence" event skips occupant JIDs once joined."""
    c.muc_presences = clients.Inbox("room presence")
    c.register_handler(Callback("onair room presence", StanzaPath("presence/muc"), c.muc_presences.put))
    # slixmpp's "message" event needs a body: subjects, status codes and
    # counts come without.
    c.bodiless = clients.Inbox("message without body")
    c.register_handler(Callback("onair bodiless", StanzaPath("message"),
                                lambda m: None if m["body"] else c.bodiless.put(m)))
    c.errors = clients.Inbox("message error")
    c.register_handler(Callback("onair message errors", StanzaPath("message@type=error"), c.errors.put))
    return c


def cancel_live(server, live):
    """The owner cancels over HTTP (logging in again: tokens do not survive a restart)."""
    tok = http_login(server, live.owner.split("@")[0], live.owner_pw)
    r = request(server, "DELETE", f"/api/v1/reservations/{live.id}", token=tok)
    assert r.status == 200, r
    return r


async def member(server, jid=None, password=None):
    if jid is None:
        jid, password = server.add_user()
    return _watch_rooms(await clients.login(server, jid, password, plugins=PLUGINS))


async def guest(server):
    return _watch_rooms(await clients.login(server, server.guest_domain, "", mech="ANONYMOUS", plugins=PLUGINS))


async def wait_bodiless(c, pred=None, timeout=WAIT):
    """The first message without a body (subject, status, count) c received that matches pred."""
    return await c.bodiless.wait(pred, timeout, c.boundjid)


async def wait_presence(c, pred=None, timeout=WAIT):
    """The first room presence c received that matches pred (see _watch_rooms)."""
    return await c.muc_presences.wait(pred, timeout, c.boundjid)


async def owner(server, live):
    return await member(server, live.owner, live.owner_pw)


async def join(c, live_or_room, nick, *, password=None, intro=None, timeout=WAIT, **history):
    """Joins and waits for self-presence and subject; returns
    (self presence, subject message, occupant presences, history messages)."""
    room = live_or_room.room if isinstance(live_or_room, Live) else JID(live_or_room)
    opts = {"pstatus": intro} if intro else {}
    return await c.plugin["xep_0045"].join_muc_wait(room, nick, password=password, presence_options=opts,
                                                     timeout=timeout, **history)


async def join_error(c, live_or_room, nick, **kw):
    """Joins expecting an error; returns (type, condition, text)."""
    try:
        await join(c, live_or_room, nick, **kw)
    except PresenceError as e:
        err = e.presence["error"]
        return err["type"], err["condition"], err["text"]
    raise AssertionError(f"joining {live_or_room} as {nick} unexpectedly succeeded")


def error_of(stanza):
    """(type, condition, text) of a stanza error, read from the XML: slixmpp
    1.8 does not know RFC 6120's policy-violation."""
    e = stanza.xml.find("{jabber:client}error")
    if e is None:
        return None
    cond = next((c.tag.split("}")[1] for c in e if c.tag.startswith(f"{{{NS_STANZAS}}}")
                 and not c.tag.endswith("}text")), "")
    return e.get("type"), cond, e.findtext(f"{{{NS_STANZAS}}}text") or ""


def status_codes(stanza):
    x = stanza.xml.find(f"{{{NS_MUC_USER}}}x")
    if x is None:
        return set()
    return {int(s.get("code")) for s in x.findall(f"{{{NS_MUC_USER}}}status")}


def muc_item(stanza):
    x = stanza.xml.find(f"{{{NS_MUC_USER}}}x")
    return None if x is None else x.find(f"{{{NS_MUC_USER}}}item")


async def groupchat(c, room, body, pred=None, timeout=WAIT):
    """Sends a groupchat message and waits for its reflection."""
    c.send_message(mto=room, mbody=body, mtype="groupchat")
    return await c.wait_message(lambda m: m["type"] == "groupchat" and m["body"] == body
                                and (pred is None or pred(m)), timeout)


async def wait_error(c, pred=None, timeout=WAIT):
    """The next message of type error (matching pred), with or without a body."""
    return await c.errors.wait(pred, timeout, c.boundjid)


async def no_message(c, pred, after):
    """Asserts that no message matching pred arrived before `after` (an
    awaitable that makes sure everything earlier was delivered)."""
    await after
    bad = [m for m in c.messages.items if pred(m)]
    assert not bad, [str(m) for m in bad]


async def settle(*cs):
    """A ping round trip per client: what the server sent them before is in."""
    await asyncio.gather(*(c.barrier() for c in cs))
