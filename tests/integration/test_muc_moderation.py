"""Moderation and limits in the live chat rooms (specs/muc.md,
"Moderation", "Limits", "Large rooms"), with slixmpp's xep_0045: the
broadcaster kicks, bans and unbans, revokes and grants voice, sets slow
mode through the room configuration and changes the subject; nobody else
can; the per-occupant rate limit stops a flood before it reaches the
others; above the presence broadcast limit viewers see the moderators, an
occupant count and, on demand, the whole participant list."""
import xml.etree.ElementTree as ET

from slixmpp import JID
from slixmpp.exceptions import IqError

from muc_client import (NS_MUC_USER, book_live, error_of, groupchat, guest, join, join_error, member, muc_item, owner,
                        settle, status_codes, wait_bodiless, wait_error, wait_presence)

CHANNELS = [{"id": "main", "name": "Main stage", "capacity": 50, "bandwidth_kbps": 2000, "price_per_hour": 3000}]
SERVER_CONFIG = {
    "channels": CHANNELS,
    "reservation": {"slot_s": 60, "max_advance_days": 30},
    "schedule": {"reconfirm_before_s": 0, "room_open_before_s": 7 * 86400},
    "muc": {"rate_per_s": 50, "rate_burst": 50},
}


async def room_with(server, *nicks):
    """A room with its broadcaster "Alice" and members with the given nicks."""
    live = book_live(server)
    alice = await owner(server, live)
    await join(alice, live, "Alice")
    others = []
    for nick in nicks:
        c = await member(server)
        await join(c, live, nick)
        others.append(c)
    return live, alice, others


def muc(c):
    return c.plugin["xep_0045"]


async def iq_error(aw):
    try:
        await aw
    except IqError as e:
        return e.iq["error"]["type"], e.iq["error"]["condition"], e.iq["error"]["text"]
    raise AssertionError("the request unexpectedly succeeded")


async def test_kick(server):
    live, alice, (bob, carol) = await room_with(server, "bob", "carol")
    await muc(alice).set_role(live.room, "bob", "none", reason="spam")
    p = await wait_presence(bob, lambda p: p["type"] == "unavailable" and p["from"].resource == "bob")
    assert {110, 307} <= status_codes(p)
    item = muc_item(p)
    assert item.findtext(f"{{{NS_MUC_USER}}}reason") == "spam"
    assert item.find(f"{{{NS_MUC_USER}}}actor").get("nick") == "Alice"
    p = await wait_presence(carol, lambda p: p["type"] == "unavailable" and p["from"].resource == "bob")
    assert 307 in status_codes(p) and 110 not in status_codes(p)
    bob.send_message(mto=live.room, mbody="am I in?", mtype="groupchat")
    assert (await wait_error(bob))["error"]["condition"] == "not-acceptable"
    # A kick is not a ban.
    await join(bob, live, "bob")


async def test_ban_and_unban(server):
    live, alice, (carol,) = await room_with(server, "carol")
    bob_jid, bob_pw = server.add_user()
    bob = await member(server, bob_jid, bob_pw)
    await join(bob, live, "bob")
    await muc(alice).set_affiliation(live.room, "outcast", jid=bob.boundjid.bare, reason="trolling")
    p = await wait_presence(bob, lambda p: p["type"] == "unavailable")
    assert 301 in status_codes(p) and muc_item(p).get("affiliation") == "outcast"
    p = await wait_presence(carol, lambda p: p["type"] == "unavailable" and p["from"].resource == "bob")
    assert 301 in status_codes(p)
    assert (await join_error(bob, live, "bob2"))[:2] == ("auth", "forbidden")
    # Another resource of the same account is banned too.
    bob2 = await member(server, bob_jid, bob_pw)
    assert (await join_error(bob2, live, "bob3"))[1] == "forbidden"
    banned = await muc(alice).get_affiliation_list(live.room, "outcast")
    assert [str(j) for j in banned] == [bob.boundjid.bare]
    await muc(alice).set_affiliation(live.room, "none", jid=bob.boundjid.bare)
    await join(bob, live, "bob")
    assert await muc(alice).get_affiliation_list(live.room, "outcast") == []


async def test_voice(server):
    live, alice, (bob, carol) = await room_with(server, "bob", "carol")
    await muc(alice).set_role(live.room, "carol", "visitor", reason="cool down")
    p = await wait_presence(bob, lambda p: p["from"].resource == "carol" and muc_item(p).get("role") == "visitor")
    assert p["type"] != "unavailable"
    carol.send_message(mto=live.room, mbody="can I talk?", mtype="groupchat")
    err = await wait_error(carol)
    assert (err["error"]["type"], err["error"]["condition"]) == ("auth", "forbidden")
    assert await muc(alice).get_roles_list(live.room, "visitor") == ["carol"]
    # Leaving and entering again does not give the voice back.
    muc(carol).leave_muc(live.room, "carol")
    await wait_presence(carol, lambda p: p["type"] == "unavailable")
    pres, _, _, _ = await join(carol, live, "carol")
    assert muc_item(pres).get("role") == "visitor"
    await muc(alice).set_role(live.room, "carol", "participant")
    await wait_presence(carol, lambda p: muc_item(p) is not None and muc_item(p).get("role") == "participant"
                        and p["type"] != "unavailable" and 110 in status_codes(p))
    await groupchat(carol, live.room, "thanks")


async def test_only_the_broadcaster_moderates(server):
    live, alice, (bob, carol) = await room_with(server, "bob", "carol")
    assert (await iq_error(muc(bob).set_role(live.room, "carol", "none")))[:2] == ("auth", "forbidden")
    assert (await iq_error(muc(bob).set_affiliation(live.room, "outcast", jid=carol.boundjid.bare)))[1] == "forbidden"
    assert (await iq_error(muc(bob).get_room_config(live.room)))[1] == "forbidden"
    # Nobody acts on the broadcaster.
    assert (await iq_error(muc(alice).set_role(live.room, "Alice", "none")))[1] == "not-allowed"
    assert (await iq_error(muc(alice).set_role(live.room, "Alice", "visitor")))[1] == "not-allowed"
    assert (await iq_error(muc(alice).set_affiliation(live.room, "outcast", jid=alice.boundjid.bare)))[1] == "conflict"
    assert (await iq_error(muc(alice).set_role(live.room, "bob", "moderator")))[1] == "not-allowed"
    assert (await iq_error(muc(alice).set_affiliation(live.room, "member", jid=bob.boundjid.bare)))[1] == "not-allowed"
    assert (await iq_error(muc(alice).set_role(live.room, "nobody", "none")))[1] == "item-not-found"
    assert (await iq_error(muc(alice).destroy(live.room)))[1] == "not-allowed"
    # Nothing changed.
    assert sorted(await muc(alice).get_roles_list(live.room, "participant")) == ["bob", "carol"]


async def test_slow_mode_and_config(server):
    live, alice, (bob, carol) = await room_with(server, "bob", "carol")
    form = await muc(alice).get_room_config(live.room)
    values = form.get_values()
    assert values["muc#roomconfig_roomname"] == "Evening talk"
    assert values["muc#roomconfig_slow_mode_duration"] == "0"
    # A field set by the reservation cannot change.
    form["type"] = "submit"
    form.set_values({**values, "muc#roomconfig_roomname": "Other"})
    err = await iq_error(muc(alice).set_room_config(live.room, form))
    assert err[:2] == ("modify", "not-acceptable"), err
    form = await muc(alice).get_room_config(live.room)
    form.set_values({**form.get_values(), "muc#roomconfig_slow_mode_duration": "30"})
    await muc(alice).set_room_config(live.room, form)
    m = await wait_bodiless(bob, lambda m: 104 in status_codes(m))
    assert m["from"] == live.room
    info = await bob.plugin["xep_0030"].get_info(jid=live.room)
    fields = {f.get("var"): f.findtext("{jabber:x:data}value")
              for f in info["disco_info"].xml.iter("{jabber:x:data}field")}
    assert fields["muc#roominfo_slow_mode_duration"] == "30"
    await groupchat(bob, live.room, "first")
    bob.send_message(mto=live.room, mbody="second", mtype="groupchat")
    etype, cond, text = error_of(await wait_error(bob))
    assert (etype, cond) == ("wait", "policy-violation") and "slow mode" in text
    # Per occupant, and not for the broadcaster.
    await groupchat(carol, live.room, "mine")
    await groupchat(alice, live.room, "a")
    await groupchat(alice, live.room, "b")
    await settle(carol)
    assert "second" not in [m["body"] for m in carol.messages.items]


async def test_subject(server):
    live, alice, (bob,) = await room_with(server, "bob")
    muc(alice).set_subject(live.room, "Q&A now")
    m = await wait_bodiless(bob, lambda m: m["subject"] == "Q&A now")
    assert m["from"] == JID(f"{live.room}/Alice")
    muc(bob).set_subject(live.room, "mine")
    err = await wait_error(bob)
    assert err["error"]["condition"] == "forbidden"
    late = await member(server)
    _, subject, _, _ = await join(late, live, "late")
    assert subject["subject"] == "Q&A now"


async def test_self_ping(server):
    live, alice, (bob,) = await room_with(server, "bob")
    iq = bob.make_iq_get(queryxmlns=None, ito=JID(f"{live.room}/bob"))
    iq.enable("ping")
    assert (await iq.send(timeout=5))["type"] == "result"
    out = await member(server)
    iq = out.make_iq_get(queryxmlns=None, ito=JID(f"{live.room}/bob"))
    iq.enable("ping")
    assert (await iq_error(iq.send(timeout=5)))[1] == "bad-request"


NS_ITEMS = "http://jabber.org/protocol/disco#items"
NS_RSM = "http://jabber.org/protocol/rsm"
RATE = {"channels": CHANNELS, "reservation": {"slot_s": 60},
        "schedule": {"reconfirm_before_s": 0, "room_open_before_s": 86400},
        "muc": {"rate_per_s": 1, "rate_burst": 5}}


async def test_a_flood_does_not_reach_the_others(server_factory):
    srv = server_factory(RATE)
    live = book_live(srv)
    flooder, other = await member(srv), await member(srv)
    await join(flooder, live, "flood")
    await join(other, live, "calm")
    for i in range(40):
        flooder.send_message(mto=live.room, mbody=f"spam {i}", mtype="groupchat")
    errors = [await wait_error(flooder) for _ in range(34)]
    assert all(error_of(e)[:2] == ("wait", "policy-violation") for e in errors)
    await settle(flooder, other)
    got = [m["body"] for m in other.messages.items if m["body"].startswith("spam")]
    assert 5 <= len(got) <= 6, got
    # Private messages count too.
    for i in range(20):
        flooder.send_message(mto=JID(f"{live.room}/calm"), mbody=f"pm {i}", mtype="chat")
    await settle(flooder, other)
    assert len([m for m in other.messages.items if m["body"].startswith("pm")]) <= 2


LARGE = {"channels": CHANNELS, "reservation": {"slot_s": 60},
         "schedule": {"reconfirm_before_s": 0, "room_open_before_s": 86400},
         "muc": {"presence_broadcast_limit": 3, "count_interval_s": 1}}


async def test_restricted_presence_in_a_large_room(server_factory):
    srv = server_factory(LARGE)
    live = book_live(srv)
    alice = await owner(srv, live)
    await join(alice, live, "Alice")
    early = [await guest(srv) for _ in range(2)]
    for i, c in enumerate(early):
        await join(c, live, f"early{i}", intro=f"hello {i}")
    # The fourth occupant passes the limit: restricted from now on.
    late = [await guest(srv) for _ in range(3)]
    pres, _, occupants, _ = await join(late[0], live, "late0", intro="just arrived")
    # A viewer entering a restricted room sees the moderators (and itself).
    assert {p["from"].resource for p in occupants} == {"Alice", "late0"}
    m = await wait_bodiless(early[0], lambda m: 104 in status_codes(m))
    assert m["from"] == live.room
    _, _, occupants, _ = await join(late[1], live, "late1")
    assert {p["from"].resource for p in occupants} == {"Alice", "late1"}
    # Viewers do not hear of other viewers' joins, moderators do.
    await wait_presence(alice, lambda p: p["from"].resource == "late1")
    await settle(*early, late[0])
    for c in early + [late[0]]:
        assert not [p for p in c.muc_presences.items if p["from"].resource == "late1"]
    # A live count instead.
    await join(late[2], live, "late2")
    m = await wait_bodiless(late[2], lambda m: m.xml.find("{urn:onair:muc}occupants") is not None)
    assert m.xml.find("{urn:onair:muc}occupants").get("count") == "6"
    m = await wait_bodiless(early[0], lambda m: m.xml.find("{urn:onair:muc}occupants") is not None
                                    and m.xml.find("{urn:onair:muc}occupants").get("count") == "6", timeout=5)
    # The full participant list on demand, with self-introductions.
    items = await late[1].plugin["xep_0030"].get_items(jid=live.room)
    listed = {JID(i[0]).resource: i[2] for i in items["disco_items"]["items"]}
    assert set(listed) == {"Alice", "early0", "early1", "late0", "late1", "late2"}
    assert listed["late0"] == "just arrived" and listed["late1"] == "late1"
    # Paged (XEP-0059): two at a time, in the order they came.
    order, after = [], None
    for _ in range(4):
        iq = late[1].make_iq_get(queryxmlns=NS_ITEMS, ito=live.room)
        rsm = ET.SubElement(iq.xml.find(f"{{{NS_ITEMS}}}query"), f"{{{NS_RSM}}}set")
        ET.SubElement(rsm, f"{{{NS_RSM}}}max").text = "2"
        if after:
            ET.SubElement(rsm, f"{{{NS_RSM}}}after").text = after
        res = await iq.send(timeout=5)
        q = res.xml.find(f"{{{NS_ITEMS}}}query")
        page = [JID(i.get("jid")).resource for i in q.findall(f"{{{NS_ITEMS}}}item")]
        assert q.find(f"{{{NS_RSM}}}set").findtext(f"{{{NS_RSM}}}count") == "6"
        if not page:
            break
        assert len(page) <= 2
        order += page
        after = q.find(f"{{{NS_RSM}}}set").findtext(f"{{{NS_RSM}}}last")
    assert order == ["Alice", "early0", "early1", "late0", "late1", "late2"]
    # Messages still reach everyone.
    await groupchat(late[2], live.room, "from the back row")
    for c in [alice] + early + late[:2]:
        await c.wait_message(lambda m: m["body"] == "from the back row")
    # A restricted viewer leaving: only moderators hear of it.
    muc(late[1]).leave_muc(live.room, "late1")
    await wait_presence(alice, lambda p: p["type"] == "unavailable" and p["from"].resource == "late1")
    await settle(*early)
    for c in early:
        assert not [p for p in c.muc_presences.items if p["from"].resource == "late1"]
    # An early one leaving: everyone hears of it.
    muc(early[1]).leave_muc(live.room, "early1")
    await wait_presence(late[0], lambda p: p["type"] == "unavailable" and p["from"].resource == "early1")
