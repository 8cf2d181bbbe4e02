"""Protocol corners: negotiation replays, STARTTLS injection, escaping,
address normalisation, stream closing, and output pressure from legitimate
traffic."""
import asyncio
import secrets

import pytest

import clients
from rawxmpp import (NS_BIND, NS_CLIENT, NS_SASL, NS_STREAM, NS_TLS, RawStream, q,
                     stanza_error, tls_context, tostr)


async def raw_user(server, resource="r"):
    jid, pw = server.add_user()
    raw = await RawStream.connect(server.host, server.port)
    full = await raw.login(jid.split("@")[0], pw, resource=resource)
    return raw, full, jid, pw


async def still_fine(server):
    jid, pw = server.add_user()
    c = await clients.login(server, jid, pw)
    await c.roundtrip()
    await c.close()


# -- negotiation replays ---------------------------------------------------------

async def test_starttls_command_injection(server):
    # Plaintext pipelined after <starttls/> must never be processed as part
    # of the encrypted session (the classic STARTTLS injection).
    jid, pw = server.add_user()
    raw = await RawStream.connect(server.host, server.port)
    await raw.open_stream()
    await raw.send(f"<starttls xmlns='{NS_TLS}'/>"
                   "<iq type='get' id='injected' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    el = await raw.next()
    assert el.tag == q(NS_TLS, "proceed"), tostr(el)
    try:
        await asyncio.wait_for(raw.writer.start_tls(tls_context(), server_hostname="localhost"), 10)
    except (ConnectionError, OSError, asyncio.TimeoutError):
        await still_fine(server)  # refusing the connection is acceptable
        return
    raw.tls = True
    features = await raw.open_stream()
    assert features.tag == q(NS_STREAM, "features")
    reply = await raw.auth_plain(jid.split("@")[0], pw)
    assert reply.tag == q(NS_SASL, "success"), tostr(reply)
    await raw.open_stream()
    await raw.bind("inj")
    res = await raw.iq("<ping xmlns='urn:xmpp:ping'/>", to=server.domain)
    assert res.get("type") == "result"
    assert "injected" not in raw.received_text(), "plaintext sent before the TLS handshake was processed"
    await raw.close()


async def test_starttls_twice(server):
    raw = await RawStream.connect(server.host, server.port)
    await raw.open_stream()
    await raw.starttls()
    await raw.send(f"<starttls xmlns='{NS_TLS}'/>")
    el = await raw.next()
    assert el.tag in (q(NS_TLS, "failure"), q(NS_STREAM, "error")), tostr(el)
    await raw.close()
    await still_fine(server)


async def test_auth_after_auth(server):
    raw, full, jid, pw = await raw_user(server)
    await raw.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>AGEAYg==</auth>")
    el = await raw.next()
    assert el.tag != q(NS_SASL, "success"), tostr(el)
    await raw.close()
    await still_fine(server)


async def test_bind_twice(server):
    # RFC 6120 7.7.2.x: one resource per stream here; a second bind fails
    # (error IQ or stream error), and the first binding stays.
    raw, full, jid, pw = await raw_user(server)
    await raw.send(f"<iq type='set' id='b2'><bind xmlns='{NS_BIND}'><resource>other</resource></bind></iq>")
    el = await raw.next()
    if el.tag == q(NS_CLIENT, "iq"):
        assert el.get("type") == "error", f"second bind accepted: {tostr(el)}"
        await raw.send(f"<message to='{full}'><body>still me</body></message>")
        m = await raw.next()
        assert m.get("to") == full and m.get("from") == full, tostr(m)
    else:
        assert el.tag == q(NS_STREAM, "error"), tostr(el)
    await raw.close()
    await still_fine(server)


async def test_nested_stream_header_after_bind(server):
    raw, full, jid, pw = await raw_user(server)
    # (closed again, so that a server which validates whole stanzas sees it)
    await raw.send(f"<stream:stream xmlns='jabber:client' xmlns:stream='{NS_STREAM}' to='localhost' "
                   f"version='1.0'><message><body>x</body></message></stream:stream>")
    cond, _ = await raw.expect_stream_error()
    assert cond in ("unsupported-stanza-type", "bad-format", "invalid-xml", "policy-violation"), cond
    await still_fine(server)


async def test_auth_timeout_covers_binding(server_factory):
    # c2s.auth_timeout_s: "to authenticate and bind".
    srv = server_factory({"c2s": {"auth_timeout_s": 1}})
    jid, pw = srv.add_user()
    raw = await RawStream.connect(srv.host, srv.port)
    await raw.open_stream()
    await raw.starttls()
    reply = await raw.auth_plain(jid.split("@")[0], pw)
    assert reply.tag == q(NS_SASL, "success")
    await raw.open_stream()
    cond, _ = await raw.expect_stream_error(timeout=8)
    assert cond == "connection-timeout", cond


# -- closing -------------------------------------------------------------------------

async def test_client_closes_stream(server):
    # RFC 6120 4.4: the server answers </stream:stream> with its own and
    # closes the TCP connection.
    raw, full, jid, pw = await raw_user(server)
    await raw.send("</stream:stream>")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while not raw.stream_closed:
        assert loop.time() < deadline, "no </stream:stream> from the server"
        data = await raw._read_some(deadline - loop.time())
        if data:
            raw._feed(data)
        if raw.eof:
            break
    assert raw.stream_closed, f"TCP closed without </stream:stream>: {raw.received_text()[-300:]}"
    await raw.wait_closed()


async def test_half_close_ends_session(server):
    # The client shuts down its sending side: the server must not keep the
    # session; contacts see it go away.
    (ja, pa), (jb, pb) = server.add_user(), server.add_user()
    b = await clients.login(server, jb, pb)
    raw = await RawStream.connect(server.host, server.port)
    full = await raw.login(ja.split("@")[0], pa, resource="half")
    await raw.send(f"<presence/><presence to='{b.boundjid.full}'/>")  # initial, then directed
    await b.wait_presence(lambda p: p["from"].full == full)
    import socket
    raw.writer.get_extra_info("socket").shutdown(socket.SHUT_WR)  # TCP FIN under TLS
    await b.wait_presence(lambda p: p["from"].full == full and p["type"] == "unavailable")
    await raw.wait_closed()


async def test_directed_presence_without_initial_presence(server):
    # RFC 3921 5.1.4 (3), kept by RFC 6121 4.6: directed presence sent
    # before initial presence is remembered the same way, so the entity gets
    # unavailable presence when the session ends.
    (ja, pa), (jb, pb) = server.add_user(), server.add_user()
    b = await clients.login(server, jb, pb)
    raw = await RawStream.connect(server.host, server.port)
    full = await raw.login(ja.split("@")[0], pa, resource="nodirect")
    await raw.send(f"<presence to='{b.boundjid.full}'/>")
    await b.wait_presence(lambda p: p["from"].full == full)
    await raw.send("</stream:stream>")
    await b.wait_presence(lambda p: p["from"].full == full and p["type"] == "unavailable", timeout=5)


# -- escaping and addresses --------------------------------------------------------------

async def test_escaping_round_trip(server):
    raw_a, full_a, _, _ = await raw_user(server, "a")
    raw_b, full_b, _, _ = await raw_user(server, "b")
    body = "<tag> & 'quotes' \"double\" ]]> \U0001F600 \u00e9\u00e8 \t tab"
    esc_body = (body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
    msg_id = "id-'\"<>&\n\t-end"
    esc_id = "id-&apos;&quot;&lt;&gt;&amp;&#10;&#9;-end"
    await raw_a.send(f"<message to='{full_b}' id='{esc_id}' type='chat'><body>{esc_body}</body>"
                     f"<x xmlns='urn:example:esc' attr='{esc_id}'>{esc_body}</x></message>")
    el = await raw_b.next()
    assert el.tag == q(NS_CLIENT, "message"), tostr(el)
    assert el.findtext(q(NS_CLIENT, "body")) == body, repr(el.findtext(q(NS_CLIENT, "body")))
    assert el.get("id") == msg_id, repr(el.get("id"))
    x = el.find("{urn:example:esc}x")
    assert x is not None and x.get("attr") == msg_id and x.text == body, tostr(el)
    await raw_a.close()
    await raw_b.close()


async def test_namespace_prefixes_preserved_semantically(server):
    raw_a, full_a, _, _ = await raw_user(server, "a")
    raw_b, full_b, _, _ = await raw_user(server, "b")
    await raw_a.send(f"<message to='{full_b}' type='chat' xmlns:p='urn:example:p'>"
                     f"<body>ns</body><p:outer><p:inner p:attr='v' plain='w'/>"
                     f"<other xmlns='urn:example:o'><deep/></other></p:outer></message>")
    el = await raw_b.next()
    inner = el.find("{urn:example:p}outer/{urn:example:p}inner")
    assert inner is not None, tostr(el)
    assert inner.get("{urn:example:p}attr") == "v" and inner.get("plain") == "w", tostr(el)
    assert el.find("{urn:example:p}outer/{urn:example:o}other/{urn:example:o}deep") is not None, tostr(el)
    await raw_a.close()
    await raw_b.close()


async def test_address_normalisation(server):
    # RFC 7622: localpart and domain are case-insensitive (nodeprep/nameprep).
    (ja, pa), (jb, pb) = server.add_user(), server.add_user()
    a = await clients.login(server, ja, pa)
    b = await clients.login(server, jb, pb)
    raw = await RawStream.connect(server.host, server.port)
    await raw.login(ja.split("@")[0], pa, resource="raw")
    user_b = jb.split("@")[0]
    await raw.send(f"<message to='{user_b.upper()}@LOCALHOST' type='chat'><body>upper</body></message>")
    m = await b.wait_message(lambda m: m["body"] == "upper")
    assert m["to"].bare.lower() == jb  # delivered; 'to' may keep the sender's spelling
    await raw.close()
    await a.close()


async def test_unicode_account_and_resource(server):
    name = "jürgen" + secrets.token_hex(3)
    pw = "pw-" + secrets.token_hex(4)
    server.ctl("account", "add", name, input=pw + "\n")
    jid = f"{name}@{server.domain}"
    c = await clients.login(server, jid + "/résumé ✓", pw)
    assert c.boundjid.resource == "résumé ✓", c.boundjid
    await c.roundtrip()
    (jo, po), = [server.add_user()]
    o = await clients.login(server, jo, po)
    o.send_message(mto=f"{name.upper()}@{server.domain}", mbody="to unicode", mtype="chat")
    await c.wait_message(lambda m: m["body"] == "to unicode")


# -- legitimate output pressure -----------------------------------------------------------

async def test_large_offline_backlog_reaches_a_fast_reader(server_factory):
    # 2 MB of stored messages, more than max_write_buffer_bytes (1 MB by
    # default): a client that reads normally must get all of them, not be
    # cut off as if it were a slow reader.
    srv = server_factory({"limits": {"max_offline_per_user": 1000}})
    (ja, pa), (jb, pb) = srv.add_user(), srv.add_user()
    a = await RawStream.connect(srv.host, srv.port)
    await a.login(ja.split("@")[0], pa, resource="a")
    n = 700
    filler = "o" * 3000
    chunk = "".join(f"<message to='{jb}' type='chat'><body>{i} {filler}</body></message>" for i in range(n))
    await a.send(chunk)
    res = await a.iq("<ping xmlns='urn:xmpp:ping'/>", to=srv.domain, timeout=30)
    assert res.get("type") == "result"
    b = await RawStream.connect(srv.host, srv.port)
    await b.login(jb.split("@")[0], pb, resource="b")
    await b.send("<presence/>")
    got = 0
    while got < n:
        el = await b.next(timeout=10)
        if el.tag == q(NS_CLIENT, "message"):
            assert el.findtext(q(NS_CLIENT, "body")).startswith(f"{got} "), tostr(el)[:200]
            got += 1
    await a.close()
    await b.close()


async def test_burst_to_a_fast_reader(server):
    # Many senders at once towards one reading client: all delivered.
    (jb, pb), = [server.add_user()]
    b = await RawStream.connect(server.host, server.port)
    full_b = await b.login(jb.split("@")[0], pb, resource="b")
    senders = [await raw_user(server, f"s{i}") for i in range(5)]
    per = 300
    filler = "x" * 1500
    for raw, full, _, _ in senders:
        raw.writer.write("".join(f"<message to='{full_b}'><body>{full} {i} {filler}</body></message>"
                                 for i in range(per)).encode())
    await asyncio.gather(*(raw.writer.drain() for raw, *_ in senders))
    counts = {}
    while sum(counts.values()) < per * len(senders):
        el = await b.next(timeout=10)
        sender = el.get("from")
        counts[sender] = counts.get(sender, 0) + 1
    assert set(counts) == {full for _, full, _, _ in senders}
    for raw, *_ in senders:
        await raw.close()
    await b.close()


@pytest.mark.parametrize("n", [20])
async def test_many_resources_one_account(server, n):
    # specs/c2s.md: a bare-JID message goes to all available resources with
    # the highest priority (here all n have priority 0).
    jid, pw = server.add_user()
    sessions = await asyncio.gather(*(clients.login(server, f"{jid}/r{i}", pw) for i in range(n)))
    (jo, po), = [server.add_user()]
    o = await clients.login(server, jo, po)
    o.send_message(mto=jid, mbody="to all", mtype="chat")
    await asyncio.gather(*(s.wait_message(lambda m: m["body"] == "to all") for s in sessions))
    # Each full JID is reachable.
    for i in (0, n // 2, n - 1):
        o.send_message(mto=f"{jid}/r{i}", mbody=f"only {i}", mtype="chat")
        await sessions[i].wait_message(lambda m, i=i: m["body"] == f"only {i}")


# -- roster and routing corners ---------------------------------------------------------

async def test_roster_item_with_many_groups(server):
    raw, full, jid, pw = await raw_user(server)
    groups = "".join(f"<group>g{i:02d}</group>" for i in range(40))
    res = await raw.iq(f"<query xmlns='jabber:iq:roster'><item jid='many@localhost'>{groups}</item></query>",
                       type_="set")
    if res.get("type") == "result":
        got = await raw.iq("<query xmlns='jabber:iq:roster'/>")
        item = got.find("{jabber:iq:roster}query/{jabber:iq:roster}item")
        names = sorted(g.text for g in item.findall("{jabber:iq:roster}group"))
        assert names == [f"g{i:02d}" for i in range(40)], f"groups silently dropped: {names}"
    else:
        assert stanza_error(res) is not None, tostr(res)  # refusing is fine, truncating is not
    await raw.close()


@pytest.mark.parametrize("payload", [
    "<item jid='a@localhost'/><item jid='b@localhost'/>",
    "<item jid='a@b@c'/>",
    "",
], ids=["two-items", "bad-jid", "no-item"])
async def test_roster_set_bad_request(server, payload):
    # RFC 6121 2.3.3: exactly one valid item, else <bad-request/>.
    raw, full, jid, pw = await raw_user(server)
    res = await raw.iq(f"<query xmlns='jabber:iq:roster'>{payload}</query>", type_="set")
    assert res.get("type") == "error", tostr(res)
    assert stanza_error(res)[1] in ("bad-request", "jid-malformed"), tostr(res)
    await raw.close()


async def test_message_without_to_goes_to_own_bare_jid(server):
    # RFC 6120 8.1.1.1: no 'to' = the user's bare JID.
    jid, pw = server.add_user()
    a = await RawStream.connect(server.host, server.port)
    full_a = await a.login(jid.split("@")[0], pw, resource="a")
    await a.send("<presence/>")
    await a.iq("<ping xmlns='urn:xmpp:ping'/>", to=server.domain)
    await a.send("<message type='chat'><body>to myself</body></message>")
    while True:
        el = await a.next()
        if el.tag == q(NS_CLIENT, "message"):
            break
    assert el.findtext(q(NS_CLIENT, "body")) == "to myself" and el.get("from") == full_a, tostr(el)
    await a.close()


async def test_error_messages_are_not_bounced(server):
    raw, full, jid, pw = await raw_user(server)
    await raw.send("<message type='error' to='nobody-at-all@localhost' id='e1'>"
                   "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
                   "</message>")
    res = await raw.iq("<ping xmlns='urn:xmpp:ping'/>", to=server.domain)
    assert "id='e1'" not in raw.received_text() and 'id="e1"' not in raw.received_text(), \
        raw.received_text()[-500:]
    assert res.get("type") == "result"
    await raw.close()
