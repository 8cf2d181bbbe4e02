"""The live chat rooms (specs/muc.md) with slixmpp's xep_0045 against the
real server: rooms that open at reconfirmation, entering public, password
and secret rooms, capacity, messages and private messages, self-presence
and the occupant list, history for late joiners with the XEP-0045 limits,
subject, discovery, moderation (kick, ban, voice, slow mode), rate limits
and restricted presence in large rooms."""
import asyncio
import time

from slixmpp import JID

import clients
from muc_client import (MUC_HOST, book_live, groupchat, guest, join, join_error, member, muc_item, owner, settle,
                        status_codes, wait_error, wait_presence)

CHANNELS = [
    {"id": "main", "name": "Main stage", "capacity": 50, "bandwidth_kbps": 2000, "price_per_hour": 3000},
    {"id": "tiny", "name": "Tiny room", "capacity": 2, "bandwidth_kbps": 500, "price_per_hour": 100},
]
SERVER_CONFIG = {
    "channels": CHANNELS,
    "reservation": {"slot_s": 60, "max_advance_days": 30},
    "schedule": {"reconfirm_before_s": 0, "room_open_before_s": 7 * 86400},
    "muc": {"history_max": 5, "rate_per_s": 50, "rate_burst": 50},
}


async def test_public_room_join_message_leave(server):
    live = book_live(server)
    alice = await owner(server, live)
    bob = await member(server)
    pres, subject, occupants, history = await join(alice, live, "Alice")
    assert 110 in status_codes(pres) and 170 in status_codes(pres)
    item = muc_item(pres)
    assert item.get("affiliation") == "owner" and item.get("role") == "moderator"
    assert subject["subject"] == "Evening talk"
    # slixmpp lists self-presence among the occupants
    assert [p["from"].resource for p in occupants] == ["Alice"] and history == []

    pres, _, occupants, _ = await join(bob, live, "Bob", intro="Hello from Osaka")
    assert muc_item(pres).get("role") == "participant" and muc_item(pres).get("affiliation") == "none"
    assert [p["from"].resource for p in occupants] == ["Alice", "Bob"]
    # Bob is no moderator: no real JIDs for him.
    assert muc_item(occupants[0]).get("jid") is None
    # Alice (moderator) sees Bob's real JID and self-introduction.
    p = await wait_presence(alice, lambda p: p["from"] == JID(f"{live.room}/Bob"))
    assert muc_item(p).get("jid") == str(bob.boundjid) and p["status"] == "Hello from Osaka"

    m = await groupchat(bob, live.room, "hi all")
    assert m["from"] == JID(f"{live.room}/Bob")
    m = await alice.wait_message(lambda m: m["body"] == "hi all")
    assert m["type"] == "groupchat" and m["from"].resource == "Bob"

    bob.plugin["xep_0045"].leave_muc(live.room, "Bob")
    p = await wait_presence(bob, lambda p: p["type"] == "unavailable" and p["from"].resource == "Bob")
    assert 110 in status_codes(p)
    p = await wait_presence(alice, lambda p: p["type"] == "unavailable" and p["from"].resource == "Bob")
    assert muc_item(p).get("role") == "none"
    # Bob is out: his messages are refused.
    bob.send_message(mto=live.room, mbody="still here?", mtype="groupchat")
    err = await wait_error(bob)
    assert err["error"]["condition"] == "not-acceptable"


async def test_room_absent_before_reconfirmation_and_for_unknown_ids(server):
    live = book_live(server, reconfirm=False)
    c = await member(server)
    etype, cond, text = await join_error(c, live, "early")
    assert (etype, cond) == ("cancel", "item-not-found")
    assert "opens at" in text and "reconfirmed" in text
    etype, cond, text = await join_error(c, f"{'a' * 26}@{MUC_HOST}", "x")
    assert cond == "item-not-found" and text == "no such room"


async def test_password_room(server):
    live = book_live(server, level="password", password="view-secret")
    c = await member(server)
    assert (await join_error(c, live, "nopw"))[:2] == ("auth", "not-authorized")
    assert (await join_error(c, live, "wrong", password="nope"))[:2] == ("auth", "not-authorized")
    pres, _, _, _ = await join(c, live, "right", password="view-secret")
    assert 110 in status_codes(pres)
    # The broadcaster needs no password.
    alice = await owner(server, live)
    await join(alice, live, "Alice")


async def test_secret_room_not_listed(server):
    secret = book_live(server, level="secret", password="view-secret")
    public = book_live(server)
    c = await member(server)
    items = await c.plugin["xep_0030"].get_items(jid=MUC_HOST)
    listed = {i[0] for i in items["disco_items"]["items"]}
    assert str(public.room) in listed and str(secret.room) not in listed
    # Reachable with the ID and the password.
    await join(c, secret, "me", password="view-secret")


async def test_guests_join_and_capacity(server):
    live = book_live(server, channel="tiny")
    g1, g2, g3 = await guest(server), await guest(server), await guest(server)
    await join(g1, live, "g1")
    await join(g2, live, "g2")
    etype, cond, _ = await join_error(g3, live, "g3")
    assert (etype, cond) == ("wait", "service-unavailable")
    # The broadcaster is not counted.
    alice = await owner(server, live)
    await join(alice, live, "Alice")
    # One leaves: the third gets in.
    g1.plugin["xep_0045"].leave_muc(live.room, "g1")
    await wait_presence(g1, lambda p: p["type"] == "unavailable")
    await join(g3, live, "g3")


async def test_nick_conflict_and_bad_nicks(server):
    live = book_live(server)
    a, b = await member(server), await member(server)
    await join(a, live, "same")
    assert (await join_error(b, live, "same"))[:2] == ("cancel", "conflict")
    assert (await join_error(b, live, "   "))[1] == "not-acceptable"
    assert (await join_error(b, live, "n" * 65))[1] == "not-acceptable"


async def test_private_messages_reach_only_their_target(server):
    live = book_live(server)
    a, b, c = await member(server), await member(server), await member(server)
    await join(a, live, "a")
    await join(b, live, "b")
    await join(c, live, "c")
    a.send_message(mto=JID(f"{live.room}/b"), mbody="psst", mtype="chat")
    m = await b.wait_message(lambda m: m["body"] == "psst")
    assert m["from"] == JID(f"{live.room}/a") and m["type"] == "chat"
    assert m.xml.find("{http://jabber.org/protocol/muc#user}x") is not None
    await settle(a, c)
    assert not [x for x in c.messages.items + a.messages.items if x["body"] == "psst"]
    # To nobody, and of type groupchat.
    a.send_message(mto=JID(f"{live.room}/nobody"), mbody="?", mtype="chat")
    assert (await wait_error(a))["error"]["condition"] == "item-not-found"
    a.send_message(mto=JID(f"{live.room}/b"), mbody="?", mtype="groupchat")
    assert (await wait_error(a))["error"]["condition"] == "bad-request"
    # From outside the room.
    out = await member(server)
    out.send_message(mto=JID(f"{live.room}/b"), mbody="?", mtype="chat")
    assert (await wait_error(out))["error"]["condition"] == "not-acceptable"


async def test_history_for_late_joiners_with_limits(server):
    live = book_live(server)
    a = await member(server)
    await join(a, live, "a")
    for i in range(7):
        await groupchat(a, live.room, f"m{i}")
    b, c, d, e = [await member(server) for _ in range(4)]
    _, _, _, hist = await join(b, live, "b")
    assert [m["body"] for m in hist] == ["m2", "m3", "m4", "m5", "m6"]  # history_max = 5
    assert all(m["delay"]["from"] == live.room for m in hist)
    _, _, _, hist = await join(c, live, "c", maxstanzas=2)
    assert [m["body"] for m in hist] == ["m5", "m6"]
    _, _, _, hist = await join(d, live, "d", maxchars=0)
    assert hist == []
    _, _, _, hist = await join(e, live, "e", seconds=3600)
    assert len(hist) == 5


async def test_disco_info_of_a_room(server):
    live = book_live(server, level="password")
    c = await member(server)
    info = await c.plugin["xep_0030"].get_info(jid=live.room)
    q = info["disco_info"]
    assert ("conference", "text", None, "Evening talk") in q["identities"]
    feats = set(q["features"])
    assert {"http://jabber.org/protocol/muc", "muc_passwordprotected", "muc_public", "muc_semianonymous"} <= feats
    form = q.xml.find("{jabber:x:data}x")
    fields = {f.get("var"): [v.text for v in f.findall("{jabber:x:data}value")]
              for f in form.findall("{jabber:x:data}field")}
    assert fields["FORM_TYPE"] == ["http://jabber.org/protocol/muc#roominfo"]
    assert fields["muc#roomconfig_roomname"] == ["Evening talk"]
    assert fields["muc#roominfo_description"] == ["Questions welcome"]
    assert fields["muc#roominfo_occupants"] == ["0"]
    assert fields["x-onair#close"][0].endswith("Z")


async def test_leaving_by_disconnecting_and_ghosts(server):
    live = book_live(server)
    a, b, c = await member(server), await member(server), await member(server)
    await join(a, live, "a")
    await join(b, live, "b")
    await join(c, live, "c")
    # The stream ends without a word: its server leaves the room for it.
    b.abort()
    p = await wait_presence(a, lambda p: p["type"] == "unavailable" and p["from"].resource == "b")
    assert muc_item(p).get("role") == "none"
    # A delivery error from an occupant's address: a ghost, removed with 333.
    err = c.make_message(mto=live.room, mtype="error")
    err["error"]["type"] = "cancel"
    err["error"]["condition"] = "service-unavailable"
    err.send()
    p = await wait_presence(a, lambda p: p["type"] == "unavailable" and p["from"].resource == "c")
    assert 333 in status_codes(p)
    # Any other error from an occupant changes nothing.
    err = a.make_message(mto=live.room, mtype="error")
    err["error"]["type"] = "cancel"
    err["error"]["condition"] = "feature-not-implemented"
    err.send()
    await groupchat(a, live.room, "still here")
