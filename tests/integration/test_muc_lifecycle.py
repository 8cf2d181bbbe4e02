"""Room lifecycle through the real store-backed timers, with offsets of a
few seconds (specs/muc.md, "Lifecycle"): a room absent before its opening
time and present after, the notices at their times, the destroy presence
at the close with the "room closed" event carrying every message (seen in
the log), cancellation before and during the room, and kill -9 restarts
that keep history and the schedule; the log of a closed room removed
muc.closed_log_keep_s later."""
import asyncio
import re
import time

from slixmpp import JID

from clients import health
from muc_client import (book_live, cancel_live, groupchat, guest, join, join_error, member, owner, wait_presence)
from webapi import request

CHANNELS = [
    {"id": "main", "name": "Main stage", "capacity": 50, "bandwidth_kbps": 2000, "price_per_hour": 3000},
    {"id": "side", "name": "Side room", "capacity": 50, "bandwidth_kbps": 500, "price_per_hour": 1000},
]
SLOT = 2
# open 2 s before the start, "soon" notice 1 s before, the live lasts 2 s,
# the warning 1 s before the close, 2 s after the end.
FAST = {
    "server": {"log_level": "debug"},
    "channels": CHANNELS,
    "reservation": {"slot_s": SLOT},
    "schedule": {"reconfirm_before_s": 0, "room_open_before_s": 2, "notice_before_s": 1,
                 "room_close_after_s": 2, "close_warning_before_s": 1},
}
NOW_OPEN = {**FAST, "schedule": {**FAST["schedule"], "room_open_before_s": 3600, "room_close_after_s": 3600}}


def start_after(seconds):
    t = time.time() + seconds
    return int((t + SLOT - 1) // SLOT * SLOT)


async def join_when_open(c, live, nick, timeout=15.0, **kw):
    """Joins as soon as the room opens (bounded); returns the join result."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await join(c, live, nick, **kw)
        except Exception as e:  # PresenceError while not open yet
            if time.monotonic() > deadline:
                raise AssertionError(f"room {live.room} not open after {timeout}s: {e}")
        await asyncio.sleep(0.1)


async def wait_log(srv, pattern, timeout=15.0):
    """The first match of pattern in the server's log (bounded)."""
    deadline = time.monotonic() + timeout
    rx = re.compile(pattern)
    while time.monotonic() < deadline:
        m = rx.search(srv.stderr_text())
        if m:
            return m
        await asyncio.sleep(0.1)
    raise AssertionError(f"no log line matching {pattern!r} within {timeout}s")


def notice(room, text):
    return lambda m: m["type"] == "groupchat" and m["from"] == room and text in m["body"]


async def test_room_absent_before_its_time_then_open(server_factory):
    srv = server_factory(FAST)
    start = start_after(6)
    live = book_live(srv, start=start, seconds=SLOT, slot=SLOT)
    g = await guest(srv)
    _, cond, text = await join_error(g, live, "early")
    assert cond == "item-not-found" and "opens at" in text
    assert time.time() < start - 2
    alice = await owner(srv, live)
    await join_when_open(alice, live, "Alice")
    assert time.time() >= start - 2 - 0.5
    await join(g, live, "viewer", intro="first time here")


async def test_notices_and_destroy_at_close(server_factory):
    srv = server_factory(FAST)
    start = start_after(5)
    live = book_live(srv, start=start, slot=SLOT, seconds=SLOT)
    end = start + SLOT
    close = end + 2
    g = await guest(srv)
    alice = await owner(srv, live)
    await join_when_open(alice, live, "Alice")
    await join(g, live, "viewer")
    await groupchat(g, live.room, "one")
    await groupchat(alice, live.room, "two")
    # Nobody streams: at the start the room says the live is due but not on
    # air; the stream's "started" / "ended" notices come from the media
    # service (test_media_live.py).
    for text, due in (("starts in", start - 1), ("is due to start now", start), ("closes in", close - 1)):
        await g.wait_message(notice(live.room, text), timeout=15)
        assert time.time() >= due - 0.5, text
    p = await wait_presence(g, lambda p: p["type"] == "unavailable", timeout=15)
    assert time.time() >= close - 0.5
    d = p.xml.find("{http://jabber.org/protocol/muc#user}x/{http://jabber.org/protocol/muc#user}destroy")
    assert d is not None and "over" in d.findtext("{http://jabber.org/protocol/muc#user}reason")
    await wait_presence(alice, lambda p: p["type"] == "unavailable", timeout=5)
    # The event carried every message: two from occupants, three notices.
    m = await wait_log(srv, rf"room closed: {live.id} \(ended\), (\d+) messages \((\d+) notices\)")
    assert (int(m.group(1)), int(m.group(2))) == (5, 3)
    log = srv.stderr_text()
    entries = re.findall(rf"room log {live.id} #(\d+) (\S+) <([^>]*)>", log)
    assert [int(e[0]) for e in entries] == [1, 2, 3, 4, 5]
    senders = [(e[1], e[2]) for e in entries if e[1] != "(notice)"]
    assert senders == [("viewer", str(g.boundjid)), ("Alice", str(alice.boundjid))]
    # Closed: entering says so.
    _, cond, text = await join_error(g, live, "late")
    assert cond == "item-not-found" and "closed at" in text
    # The operator reads the log from the store.
    rooms = srv.ctl("room", "list").stdout
    assert f"{live.id}\tclosed\t" in rooms and "5 messages\tended" in rooms
    lines = srv.ctl("room", "log", live.id).stdout.splitlines()
    assert len(lines) == 5
    assert lines[0].startswith("#1\t") and lines[0].endswith(f"\tviewer\t{g.boundjid}\tone")
    assert "\t(notice)\t-\tThe live" in lines[2]
    assert srv.ctl("room", "log", "a" * 26, check=False).returncode != 0


async def test_cancelled_reservation_never_gets_a_room(server_factory):
    srv = server_factory(FAST)
    start = start_after(5)
    cancelled = book_live(srv, start=start, slot=SLOT, seconds=SLOT)
    other = book_live(srv, start=start, slot=SLOT, seconds=SLOT, channel="side")
    r = request(srv, "DELETE", f"/api/v1/reservations/{cancelled.id}", token=cancelled.token)
    assert r.status == 200, r
    g = await guest(srv)
    # Both timers are due at the same time: once the other room is open,
    # the cancelled one's timer has run too.
    await join_when_open(g, other, "g")
    _, cond, text = await join_error(g, cancelled, "g")
    assert cond == "item-not-found" and "cancelled" in text


async def test_cancel_while_open_closes_the_room(server_factory):
    srv = server_factory(NOW_OPEN)
    live = book_live(srv, start=start_after(600), slot=SLOT, seconds=SLOT)
    g = await guest(srv)
    await join(g, live, "g")
    await groupchat(g, live.room, "before the cancel")
    r = request(srv, "DELETE", f"/api/v1/reservations/{live.id}", token=live.token)
    assert r.status == 200, r
    p = await wait_presence(g, lambda p: p["type"] == "unavailable")
    d = p.xml.find("{http://jabber.org/protocol/muc#user}x/{http://jabber.org/protocol/muc#user}destroy")
    assert d is not None and "cancelled" in d.findtext("{http://jabber.org/protocol/muc#user}reason")
    m = await wait_log(srv, rf"room closed: {live.id} \(cancelled\), (\d+) messages")
    assert m.group(1) == "1"
    _, cond, _ = await join_error(g, live, "g")
    assert cond == "item-not-found"


async def test_kill9_restart_keeps_history_and_close_time(server_factory):
    srv = server_factory(NOW_OPEN)
    live = book_live(srv, start=start_after(600), slot=SLOT, seconds=SLOT)
    c = await member(srv)
    await join(c, live, "c")
    info = await c.plugin["xep_0030"].get_info(jid=live.room)
    close_before = [f for f in info["disco_info"].xml.iter("{jabber:x:data}field") if f.get("var") == "x-onair#close"]
    for i in range(3):
        await groupchat(c, live.room, f"kept {i}")
    srv.kill9()
    srv.start()
    d = await member(srv)
    _, subject, _, hist = await join(d, live, "d")
    assert [m["body"] for m in hist] == ["kept 0", "kept 1", "kept 2"]
    assert subject["subject"] == "Evening talk"
    info = await d.plugin["xep_0030"].get_info(jid=live.room)
    close_after = [f for f in info["disco_info"].xml.iter("{jabber:x:data}field") if f.get("var") == "x-onair#close"]
    assert close_after[0].findtext("{jabber:x:data}value") == close_before[0].findtext("{jabber:x:data}value")
    # Numbering goes on after the restart.
    await groupchat(d, live.room, "after restart")
    cancel_live(srv, live)
    m = await wait_log(srv, rf"room closed: {live.id} \(cancelled\), (\d+) messages")
    assert m.group(1) == "4"


async def test_restart_keeps_the_schedule(server_factory):
    """The close timer lives in the store: after kill -9 the reopened room
    still closes at its time."""
    srv = server_factory(FAST)
    start = start_after(4)
    live = book_live(srv, start=start, slot=SLOT, seconds=SLOT)
    close = start + SLOT + 2
    c = await member(srv)
    await join_when_open(c, live, "c")
    await groupchat(c, live.room, "before the crash")
    srv.kill9()
    srv.start()
    c2 = await member(srv)
    _, _, _, hist = await join(c2, live, "c2")
    assert "before the crash" in [m["body"] for m in hist]
    p = await wait_presence(c2, lambda p: p["type"] == "unavailable", timeout=15)
    assert p.xml.find("{http://jabber.org/protocol/muc#user}x/{http://jabber.org/protocol/muc#user}destroy") is not None
    assert time.time() >= close - 0.5


async def test_cancelled_while_down_closes_at_start_up(server_factory):
    """Cancelled by the operator while onaird was down (onairctl writes the
    store itself): the room is closed at start-up, with its event."""
    srv = server_factory(NOW_OPEN)
    live = book_live(srv, start=start_after(600), slot=SLOT, seconds=SLOT)
    c = await member(srv)
    await join(c, live, "c")
    await groupchat(c, live.room, "last words")
    srv.kill9()
    out = srv.ctl("reservation", "cancel", live.id).stdout
    assert "cancelled" in out
    srv.start()
    m = await wait_log(srv, rf"room closed: {live.id} \(cancelled\), (\d+) messages")
    assert m.group(1) == "1"
    g = await guest(srv)
    _, cond, text = await join_error(g, live, "g")
    assert cond == "item-not-found" and "cancelled" in text
    assert f"{live.id}\tclosed\t" in srv.ctl("room", "list").stdout


async def test_closed_room_log_removed_after_keep_time(server_factory):
    """muc.closed_log_keep_s after a room closes its log leaves the store, in
    one transaction with the room's record (specs/muc.md, "The log after the
    room"): an open room's log stays, onairctl says when it went, and kill -9
    keeps both."""
    srv = server_factory({**FAST, "muc": {"closed_log_keep_s": 3}})
    start = start_after(5)
    short = book_live(srv, start=start, slot=SLOT, seconds=SLOT)
    long = book_live(srv, start=start, slot=SLOT, seconds=SLOT * 15, channel="side")
    alice = await owner(srv, short)
    bob = await owner(srv, long)
    await join_when_open(alice, short, "Alice")
    await join_when_open(bob, long, "Bob")
    await groupchat(alice, short.room, "said in the short live")
    await groupchat(bob, long.room, "said in the long live")
    await wait_presence(alice, lambda p: p["type"] == "unavailable" and p["from"].bare == short.room, timeout=15)
    closed = time.time()
    rooms = srv.ctl("room", "list").stdout
    assert re.search(rf"{short.id}\tclosed\t.*\t\d+ messages\tended", rooms), rooms
    assert len(srv.ctl("room", "log", short.id).stdout.splitlines()) >= 1
    before = int(health(srv)["muc_log_entries"])
    m = await wait_log(srv, rf"room {short.id}: its log of (\d+) messages removed", timeout=15)
    assert time.time() >= closed + 3 - 1.0
    removed = int(m.group(1))
    assert removed >= 4  # "starts in", "due", "closes in" and Alice's message
    h = health(srv)
    assert int(h["muc_logs_removed"]) == 1
    assert int(h["muc_log_entries"]) == before - removed
    long_log = srv.ctl("room", "log", long.id).stdout
    assert "said in the long live" in long_log

    def removed_and_kept():
        rooms = srv.ctl("room", "list").stdout
        assert re.search(rf"{short.id}\tclosed\t.*\tlog removed \S+\tended", rooms), rooms
        assert re.search(rf"{long.id}\topen\t.*\t\d+ messages", rooms), rooms
        r = srv.ctl("room", "log", short.id, check=False)
        assert r.returncode != 0 and f"the log of room {short.id} was removed at" in r.stderr
        assert srv.ctl("room", "log", long.id).stdout == long_log

    removed_and_kept()
    srv.kill9()
    srv.start()
    removed_and_kept()
    assert int(health(srv)["muc_logs_removed"]) == 0  # nothing left to remove after the restart
