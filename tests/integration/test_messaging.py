"""Messages, presence and roster between users (RFC 6120 8, RFC 6121),
offline storage (XEP-0160 / XEP-0203) and resource conflicts (RFC 6120 7.7.2.2)."""
import asyncio
import datetime
import secrets

import clients
from rawxmpp import RawStream, NS_CLIENT, q, stanza_error


def roster_item(iq, jid):
    """The item for jid in a roster push / result, as a dict, or None."""
    items = iq["roster"]["items"]
    for k, v in items.items():
        if str(k) == jid:
            return {"subscription": v["subscription"], "ask": v["ask"], "name": v["name"]}
    return None


def is_push_for(jid, **want):
    def pred(iq):
        item = roster_item(iq, jid)
        return item is not None and all(item.get(k) == v for k, v in want.items())
    return pred


async def fetch_roster(c):
    """A full roster get (no 'ver', so never an "unchanged" answer)."""
    iq = c.make_iq_get(queryxmlns="jabber:iq:roster")
    res = await iq.send(timeout=10)
    assert res["type"] == "result", str(res)
    return res


def body_is(text):
    return lambda m: m["body"] == text


async def two_users(server):
    (ja, pa), (jb, pb) = server.add_user(), server.add_user()
    a = await clients.login(server, ja, pa)
    b = await clients.login(server, jb, pb)
    return (ja, pa, a), (jb, pb, b)


# -- messages ----------------------------------------------------------------

async def test_message_to_full_and_bare_jid(server):
    (ja, _, a), (jb, _, b) = await two_users(server)

    a.send_message(mto=b.boundjid.full, mbody="to full jid", mtype="chat")
    m = await b.wait_message(body_is("to full jid"))
    assert m["from"].full == a.boundjid.full, "RFC 6120 8.1.2.1: 'from' is the sender's full JID"
    assert m["to"].bare == jb
    assert m["type"] == "chat"

    a.send_message(mto=jb, mbody="to bare jid", mtype="chat")
    m = await b.wait_message(body_is("to bare jid"))
    assert m["from"].full == a.boundjid.full

    a.send_message(mto=jb, mbody="normal type", mtype="normal")
    m = await b.wait_message(body_is("normal type"))
    assert m["type"] == "normal"

    # And back.
    b.send_message(mto=m["from"], mbody="reply", mtype="chat")
    r = await a.wait_message(body_is("reply"))
    assert r["from"].full == b.boundjid.full


async def test_message_keeps_id_and_extension_payload(server):
    (_, _, a), (_, _, b) = await two_users(server)
    msg = a.make_message(mto=b.boundjid.full, mbody="with payload", mtype="chat")
    msg["id"] = "keep-" + secrets.token_hex(4)
    msg.append(__import__("xml.etree.ElementTree", fromlist=["Element"]).fromstring(
        "<x xmlns='urn:example:test'><deep a='1'><deeper>text &amp; more</deeper></deep></x>"))
    msg.send()
    got = await b.wait_message(body_is("with payload"))
    assert got["id"] == msg["id"]
    x = got.xml.find("{urn:example:test}x")
    assert x is not None, str(got)
    deeper = x.find("{urn:example:test}deep/{urn:example:test}deeper")
    assert deeper is not None and deeper.text == "text & more", str(got)
    assert x.find("{urn:example:test}deep").get("a") == "1"


async def test_bare_jid_message_skips_negative_priority(server):
    # RFC 6121 8.5.2.1.1: never deliver a bare-JID message to a resource with
    # negative priority.
    (ja, pa), (jb, pb) = server.add_user(), server.add_user()
    a = await clients.login(server, ja, pa)
    b_neg = await clients.login(server, jb + "/neg", pb, presence=False)
    b_neg.send_presence(ppriority=-1)
    await b_neg.barrier()
    b_pos = await clients.login(server, jb + "/pos", pb)
    # RFC 6121 4.2.2: initial presence goes to the user's other available resources.
    await b_neg.wait_presence(lambda p: p["from"].full == b_pos.boundjid.full and p["type"] == "available")

    a.send_message(mto=jb, mbody="for the positive one", mtype="chat")
    await b_pos.wait_message(body_is("for the positive one"))
    a.send_message(mto=b_neg.boundjid.full, mbody="direct to neg", mtype="chat")
    first = await b_neg.wait_message()
    assert first["body"] == "direct to neg", \
        f"negative-priority resource got a bare-JID message: {first}"


async def test_from_is_stamped_by_server(server):
    # A client may not choose its 'from' (RFC 6120 8.1.2.1): the server either
    # overwrites it or ends the stream with <invalid-from/>.  The receiver must
    # never see the forged address.
    (ja, pa), (jb, pb) = server.add_user(), server.add_user()
    b = await clients.login(server, jb, pb)
    raw = await RawStream.connect(server.host, server.port)
    full = await raw.login(ja.split("@")[0], pa, resource="raw")
    await raw.send(f"<message to='{b.boundjid.full}' from='mallory@localhost/evil' type='chat'>"
                   f"<body>forged</body></message>"
                   f"<iq type='get' id='after-forged' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    el = await raw.next()
    if el.tag == q(NS_CLIENT, "iq"):
        # Accepted: it must reach B with the real sender.
        assert el.get("id") == "after-forged" and el.get("type") == "result", raw.received_text()
        m = await b.wait_message(body_is("forged"))
        assert m["from"].full == full, f"forged 'from' delivered: {m}"
        await raw.close()
    else:
        raw._queue.insert(0, el)
        cond, _ = await raw.expect_stream_error()
        assert cond == "invalid-from", cond
        await b.roundtrip()
        assert all(m["body"] != "forged" for m in list(b.messages.items))


async def test_message_to_unknown_local_user(server):
    # RFC 6121 8.5.1 allows silence or <service-unavailable/>; specs/c2s.md
    # chooses the bounce.
    (ja, pa), = [server.add_user()]
    a = await clients.login(server, ja, pa)
    msg = a.make_message(mto="nobody-here@localhost", mbody="hello?", mtype="chat")
    msg["id"] = "to-nobody"
    msg.send()
    err = await a.wait_message(lambda m: m["type"] == "error")
    assert err["id"] == "to-nobody", str(err)
    assert err["error"]["condition"] == "service-unavailable", str(err)
    assert err["error"]["type"] == "cancel", str(err)
    assert err["from"].bare == "nobody-here@localhost", str(err)


async def test_message_to_malformed_jid(server):
    (ja, pa), = [server.add_user()]
    a = await clients.login(server, ja, pa)
    raw = await RawStream.connect(server.host, server.port)
    (jb, pb), = [server.add_user()]
    await raw.login(jb.split("@")[0], pb, resource="r")
    for i, bad in enumerate(["a@b@c", "@localhost", "x" * 1100 + "@localhost", "a@localhost/" + "r" * 1100]):
        await raw.send(f"<message to='{bad}' id='bad{i}'><body>x</body></message>")
        el = await raw.next()
        assert el.get("type") == "error" and el.get("id") == f"bad{i}", raw.received_text()[-1000:]
        assert stanza_error(el) == ("modify", "jid-malformed"), raw.received_text()[-1000:]
    await raw.close()


async def test_bare_jid_message_to_equal_and_higher_priority(server):
    # specs/c2s.md: a bare-JID message goes to the available resources with
    # the highest non-negative priority.
    (ja, pa), (jb, pb) = server.add_user(), server.add_user()
    a = await clients.login(server, ja, pa)
    b1 = await clients.login(server, jb + "/one", pb)
    b2 = await clients.login(server, jb + "/two", pb)
    a.send_message(mto=jb, mbody="both", mtype="chat")
    await b1.wait_message(body_is("both"))
    await b2.wait_message(body_is("both"))
    b1.send_presence(ppriority=5)
    await b1.barrier()
    a.send_message(mto=jb, mbody="only one", mtype="chat")
    await b1.wait_message(body_is("only one"))
    a.send_message(mto=b2.boundjid.full, mbody="marker", mtype="chat")
    first = await b2.wait_message()
    assert first["body"] == "marker", f"lower-priority resource got {first['body']!r}"


async def test_groupchat_and_headline_to_offline_user(server):
    # specs/c2s.md: groupchat -> service-unavailable, headline dropped, and
    # only messages with a body are stored.
    (ja, pa), (jb, pb) = server.add_user(), server.add_user()
    a = await clients.login(server, ja, pa)
    a.send_message(mto=jb, mbody="gc", mtype="groupchat")
    err = await a.wait_message(lambda m: m["type"] == "error")
    assert err["error"]["condition"] == "service-unavailable", str(err)
    a.send_message(mto=jb, mbody="headline", mtype="headline")
    nobody = a.make_message(mto=jb, mtype="chat")
    nobody.append(__import__("xml.etree.ElementTree", fromlist=["x"]).fromstring(
        "<active xmlns='http://jabber.org/protocol/chatstates'/>"))
    nobody.send()
    a.send_message(mto=jb, mbody="stored", mtype="chat")
    await a.barrier()
    b = await clients.login(server, jb, pb)
    first = await b.wait_message()
    assert first["body"] == "stored", f"expected only the chat message, got {first}"
    await b.roundtrip()
    rest = [m for m in list(b.messages.items) if m["from"].bare == ja]
    assert not rest, f"headline or bodiless message stored: {rest}"


async def test_unsupported_stanza_type(server):
    (ja, pa), = [server.add_user()]
    raw = await RawStream.connect(server.host, server.port)
    await raw.login(ja.split("@")[0], pa, resource="r")
    await raw.send("<foo xmlns='jabber:client'/>")
    cond, _ = await raw.expect_stream_error()
    assert cond == "unsupported-stanza-type", cond


async def test_whitespace_keepalive(server):
    (ja, pa), = [server.add_user()]
    raw = await RawStream.connect(server.host, server.port)
    full = await raw.login(ja.split("@")[0], pa, resource="r")
    await raw.send(" \n \t \n")
    res = await raw.iq("<ping xmlns='urn:xmpp:ping'/>", to=server.domain)
    assert res.get("type") == "result"
    await raw.send(f"\n<message to='{full}'><body>after space</body></message>\n ")
    el = await raw.next()
    assert el.findtext(q(NS_CLIENT, "body")) == "after space"
    await raw.close()


async def test_many_clients_exchange_messages(server):
    # 20 users, each sends 10 messages to every other: all arrive, in order
    # per sender.
    n, k = 20, 10
    accounts = [server.add_user() for _ in range(n)]
    cs = await asyncio.gather(*(clients.login(server, j, p) for j, p in accounts))
    for i, c in enumerate(cs):
        for j, d in enumerate(cs):
            if i != j:
                for m in range(k):
                    c.send_message(mto=d.boundjid.full, mbody=f"{i}:{m}", mtype="chat")

    async def collect(j, d):
        seen = {i: [] for i in range(n) if i != j}
        while sum(len(v) for v in seen.values()) < (n - 1) * k:
            msg = await d.wait_message()
            i, m = map(int, msg["body"].split(":"))
            seen[i].append(m)
        for i, got in seen.items():
            assert got == list(range(k)), f"{i}->{j}: {got}"
    await asyncio.gather(*(collect(j, d) for j, d in enumerate(cs)))


# -- presence and roster -------------------------------------------------------

async def subscribe(frm, frm_jid, to, to_jid):
    """frm subscribes to to's presence, to approves (RFC 6121 3.1)."""
    frm.send_presence(pto=to_jid, ptype="subscribe")
    # 3.1.2: the user's server pushes the roster item with ask='subscribe'
    # (subscription none, or from if the other direction already exists).
    await frm.wait_roster_push(is_push_for(to_jid, ask="subscribe"))
    req = await to.wait_presence(lambda p: p["type"] == "subscribe" and p["from"].bare == frm_jid)
    assert req["from"].full == frm_jid, "3.1.2: subscription requests come from the bare JID"
    to.send_presence(pto=frm_jid, ptype="subscribed")
    ok = await frm.wait_presence(lambda p: p["type"] == "subscribed" and p["from"].bare == to_jid)
    assert ok["from"].full == to_jid
    # 3.1.5/3.1.6: roster push with 'to' (or 'both'), no pending ask.
    await frm.wait_roster_push(lambda iq: (roster_item(iq, to_jid) or {}).get("subscription")
                               in ("to", "both") and not (roster_item(iq, to_jid) or {}).get("ask"))
    # The contact's server sends its current presence right away.
    await frm.wait_presence(lambda p: p["type"] == "available" and p["from"].full == to.boundjid.full)


async def test_subscription_roster_and_presence(server):
    (ja, pa, a), (jb, pb, b) = await two_users(server)

    await subscribe(a, ja, b, jb)
    # B's roster now has A with subscription 'from'.
    await b.wait_roster_push(is_push_for(ja, subscription="from"))
    await subscribe(b, jb, a, ja)

    for c, other in ((a, jb), (b, ja)):
        res = await fetch_roster(c)
        item = roster_item(res, other)
        assert item is not None, f"roster of {c.boundjid.bare} lacks {other}: {res}"
        assert item["subscription"] == "both", res
        assert not item["ask"], res

    # Unavailable presence when B leaves.
    b_full = b.boundjid.full
    await b.close()
    p = await a.wait_presence(lambda p: p["from"].full == b_full and p["type"] == "unavailable")
    assert p["to"].bare == ja

    # B comes back: A sees B available; B learns A's presence (probe answered).
    b2 = await clients.login(server, jb + "/again", pb)
    await a.wait_presence(lambda p: p["from"].full == b2.boundjid.full and p["type"] == "available")
    await b2.wait_presence(lambda p: p["from"].full == a.boundjid.full and p["type"] == "available")

    # Presence changes (show/status) are broadcast too.
    a.send_presence(pshow="away", pstatus="lunch")
    p = await b2.wait_presence(lambda p: p["from"].full == a.boundjid.full and p["type"] == "away")
    assert p["status"] == "lunch"

    # The roster survives a new session.
    res = await fetch_roster(b2)
    assert roster_item(res, ja)["subscription"] == "both"


async def test_no_presence_without_subscription(server):
    (ja, pa, a), (jb, pb, b) = await two_users(server)
    b_full = b.boundjid.full
    await b.close()
    # A is not subscribed to B, so nothing about B must reach A.  Use a
    # message round trip as the bound.
    b2 = await clients.login(server, jb, pb)
    await a.roundtrip()
    b2.send_message(mto=a.boundjid.full, mbody="marker", mtype="chat")
    await a.wait_message(body_is("marker"))
    for p in a.presences.take_all():
        assert p["from"].bare != jb, f"presence leaked without subscription: {p} (B was {b_full})"


async def test_roster_set_and_remove(server):
    (ja, pa), = [server.add_user()]
    a = await clients.login(server, ja, pa)
    contact = "someone@localhost"
    iq = a.make_iq_set()
    iq["roster"]["items"] = {contact: {"name": "Some One", "subscription": "none", "groups": ["Friends"]}}
    # 'subscription' must not be sent by clients except 'remove'; strip it.
    for item in iq.xml.iter("{jabber:iq:roster}item"):
        item.attrib.pop("subscription", None)
    await iq.send(timeout=10)
    push = await a.wait_roster_push(is_push_for(contact, name="Some One"))
    assert roster_item(push, contact)["subscription"] == "none"
    res = await fetch_roster(a)
    assert roster_item(res, contact)["name"] == "Some One"

    iq = a.make_iq_set()
    iq["roster"]["items"] = {contact: {"subscription": "remove"}}
    await iq.send(timeout=10)
    await a.wait_roster_push(is_push_for(contact, subscription="remove"))
    res = await fetch_roster(a)
    assert roster_item(res, contact) is None, res


async def mutual(server):
    (ja, pa, a), (jb, pb, b) = await two_users(server)
    await subscribe(a, ja, b, jb)
    await subscribe(b, jb, a, ja)
    return (ja, pa, a), (jb, pb, b)


async def test_subscription_request_to_offline_user_is_kept(server):
    (ja, pa), (jb, pb) = server.add_user(), server.add_user()
    a = await clients.login(server, ja, pa)
    a.send_presence(pto=jb, ptype="subscribe")
    await a.wait_roster_push(is_push_for(jb, ask="subscribe"))
    await a.barrier()
    b = await clients.login(server, jb, pb)
    await b.wait_presence(lambda p: p["type"] == "subscribe" and p["from"].bare == ja)
    b.send_presence(pto=ja, ptype="subscribed")
    await a.wait_presence(lambda p: p["type"] == "subscribed" and p["from"].bare == jb)


async def test_dropped_connection_sends_unavailable(server):
    (ja, pa, a), (jb, pb, b) = await mutual(server)
    b_full = b.boundjid.full
    b.abort()  # TCP gone, no unavailable presence, no </stream:stream>
    await a.wait_presence(lambda p: p["from"].full == b_full and p["type"] == "unavailable")


async def test_directed_presence_followed_by_unavailable(server):
    (ja, pa, a), (jb, pb, b) = await two_users(server)  # no subscription
    a.send_presence(pto=b.boundjid.full, pstatus="directed")
    p = await b.wait_presence(lambda p: p["from"].full == a.boundjid.full)
    assert p["status"] == "directed"
    a_full = a.boundjid.full
    await a.close()
    await b.wait_presence(lambda p: p["from"].full == a_full and p["type"] == "unavailable")


async def test_roster_remove_cancels_both_subscriptions(server):
    (ja, pa, a), (jb, pb, b) = await mutual(server)
    iq = a.make_iq_set()
    iq["roster"]["items"] = {jb: {"subscription": "remove"}}
    await iq.send(timeout=10)
    await a.wait_roster_push(is_push_for(jb, subscription="remove"))
    # RFC 6121 2.5.2: B gets unsubscribe and unsubscribed from A, and A's
    # unavailable presence; B's roster item drops to subscription none.
    await b.wait_presence(lambda p: p["type"] == "unsubscribe" and p["from"].bare == ja)
    await b.wait_presence(lambda p: p["type"] == "unsubscribed" and p["from"].bare == ja)
    await b.wait_roster_push(is_push_for(ja, subscription="none"))
    await b.wait_presence(lambda p: p["type"] == "unavailable" and p["from"].bare == ja, timeout=5)
    res = await fetch_roster(b)
    assert roster_item(res, ja)["subscription"] == "none", res
    # And A's later presence no longer reaches B.
    a.send_presence(pstatus="after removal")
    await a.barrier()
    await a.roundtrip(b)
    leaked = [p for p in list(b.presences.items) if p["status"] == "after removal"]
    assert not leaked, leaked


async def test_cancelling_subscription_sends_unavailable(server):
    # RFC 6121 3.2.2: when the user cancels the contact's subscription
    # (outbound 'unsubscribed'), the user's server MUST also send unavailable
    # presence from all of the user's available resources to the contact.
    (ja, pa, a), (jb, pb, b) = await two_users(server)
    await subscribe(b, jb, a, ja)          # B is subscribed to A's presence
    a.send_presence(pto=jb, ptype="unsubscribed")
    await b.wait_presence(lambda p: p["type"] == "unsubscribed" and p["from"].bare == ja)
    await b.wait_roster_push(is_push_for(ja, subscription="none"))
    await b.wait_presence(lambda p: p["type"] == "unavailable" and p["from"].full == a.boundjid.full)


async def test_max_roster_items(server_factory):
    srv = server_factory({"limits": {"max_roster_items": 3}})
    (ja, pa), = [srv.add_user()]
    a = await clients.login(srv, ja, pa)
    for i in range(3):
        iq = a.make_iq_set()
        iq["roster"]["items"] = {f"c{i}@localhost": {"name": f"c{i}"}}
        for item in iq.xml.iter("{jabber:iq:roster}item"):
            item.attrib.pop("subscription", None)
        await iq.send(timeout=10)
    iq = a.make_iq_set()
    iq["roster"]["items"] = {"c3@localhost": {"name": "c3"}}
    for item in iq.xml.iter("{jabber:iq:roster}item"):
        item.attrib.pop("subscription", None)
    try:
        res = await iq.send(timeout=10)
        raise AssertionError(f"4th roster item accepted with a limit of 3: {res}")
    except clients.IqError as e:
        assert e.iq["error"]["condition"] == "not-allowed", str(e.iq)
    res = await fetch_roster(a)
    assert len(res["roster"]["items"]) == 3, res


# -- offline -------------------------------------------------------------------

async def test_offline_message_delivered_with_delay(server):
    (ja, pa), (jb, pb) = server.add_user(), server.add_user()
    a = await clients.login(server, ja, pa)
    before = datetime.datetime.now(datetime.timezone.utc)
    bodies = [f"offline {i} {secrets.token_hex(3)}" for i in range(3)]
    for body in bodies:
        a.send_message(mto=jb, mbody=body, mtype="chat")
    await a.barrier()

    b = await clients.login(server, jb, pb)
    got = [await b.wait_message(lambda m: m["body"] in bodies) for _ in bodies]
    assert [m["body"] for m in got] == bodies, "offline messages out of order"
    after = datetime.datetime.now(datetime.timezone.utc)
    for m in got:
        assert m["from"].full == a.boundjid.full, str(m)
        delay = m.xml.find("{urn:xmpp:delay}delay")
        assert delay is not None, f"XEP-0203 <delay/> missing: {m}"
        stamp = m["delay"]["stamp"]
        assert stamp is not None, str(m)
        assert before - datetime.timedelta(seconds=2) <= stamp <= after + datetime.timedelta(seconds=2), \
            f"delay stamp {stamp} not between {before} and {after}"
        assert delay.get("stamp", "").endswith("Z"), "XEP-0082 UTC stamp expected"
        if delay.get("from"):
            assert delay.get("from") == server.domain, str(m)

    # Delivered once: a new session gets nothing of it again.
    await b.close()
    b2 = await clients.login(server, jb, pb)
    await b2.roundtrip()
    leftover = [m for m in list(b2.messages.items) if m["body"] in bodies]
    assert not leftover, f"offline messages delivered twice: {leftover}"


async def test_offline_message_to_gone_full_jid(server):
    # RFC 6121 8.5.3.2.1: a message to a full JID with no such resource is
    # handled as if sent to the bare JID -> stored when the user is offline.
    (ja, pa), (jb, pb) = server.add_user(), server.add_user()
    a = await clients.login(server, ja, pa)
    a.send_message(mto=jb + "/gone", mbody="to a resource that left", mtype="chat")
    await a.barrier()
    b = await clients.login(server, jb, pb)
    m = await b.wait_message(body_is("to a resource that left"))
    assert m.xml.find("{urn:xmpp:delay}delay") is not None


async def test_offline_storage_limit(server_factory):
    # limits.max_offline_per_user: beyond it the sender gets service-unavailable.
    srv = server_factory({"limits": {"max_offline_per_user": 3}})
    (ja, pa), (jb, pb) = srv.add_user(), srv.add_user()
    a = await clients.login(srv, ja, pa)
    for i in range(5):
        a.send_message(mto=jb, mbody=f"m{i}", mtype="chat")
    await a.barrier()
    # The bounces were generated before the ping's result, so they are here.
    errors = [await a.wait_message(lambda m: m["type"] == "error", timeout=5) for _ in range(2)]
    await a.barrier()
    extra = [m for m in list(a.messages.items) if m["type"] == "error"]
    assert not extra, f"more than 2 bounces: {extra}"
    assert sorted(e["body"] for e in errors if e["body"]) in ([], ["m3", "m4"]), errors
    for e in errors:
        assert e["error"]["condition"] == "service-unavailable", str(e)
    b = await clients.login(srv, jb, pb)
    got = [await b.wait_message(lambda m: m["body"].startswith("m")) for _ in range(3)]
    assert [m["body"] for m in got] == ["m0", "m1", "m2"]


# -- resource conflict -----------------------------------------------------------

async def test_resource_conflict_new_session_wins(server):
    (ja, pa), (jb, pb) = server.add_user(), server.add_user()
    full = ja + "/same"
    old = await clients.login(server, full, pa)
    assert old.boundjid.full == full
    new = await clients.login(server, full, pa)
    # onair's choice among RFC 6120 7.7.2.2's options: the new session takes
    # the resource, the old one gets a <conflict/> stream error.
    assert new.boundjid.full == full, f"new session got {new.boundjid} instead of {full}"
    err = await old.wait_stream_error()
    assert err["condition"] == "conflict", str(err)
    await old.wait_disconnected()
    # The server stays usable, and the full JID reaches the new session.
    b = await clients.login(server, jb, pb)
    b.send_message(mto=full, mbody="to the survivor", mtype="chat")
    await new.wait_message(body_is("to the survivor"))
    await new.roundtrip(b)


async def test_server_assigns_resource_when_none_requested(server):
    (ja, pa), = [server.add_user()]
    raw1 = await RawStream.connect(server.host, server.port)
    j1 = await raw1.login(ja.split("@")[0], pa)
    raw2 = await RawStream.connect(server.host, server.port)
    j2 = await raw2.login(ja.split("@")[0], pa)
    for j in (j1, j2):
        assert j.startswith(ja + "/") and len(j) > len(ja) + 1, j
    assert j1 != j2, "two sessions got the same generated resource"
    # Both are live: a message to each full JID arrives.
    await raw1.send(f"<message to='{j2}' type='chat'><body>hi two</body></message>")
    el = await raw2.next()
    assert el.tag == q(NS_CLIENT, "message") and el.get("from") == j1, raw2.received_text()
    await raw1.close()
    await raw2.close()
