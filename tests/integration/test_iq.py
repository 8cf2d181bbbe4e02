"""IQs the server answers itself: XEP-0199 ping, XEP-0030 disco, XEP-0092
version, and the errors of RFC 6120 8.4 / RFC 6121 8.5 for everything else."""
import secrets
import xml.etree.ElementTree as ET

import pytest

import clients
from clients import IqError
from rawxmpp import NS_CLIENT, RawStream, q, stanza_error

DISCO_INFO = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"


async def client(server):
    jid, pw = server.add_user()
    return await clients.login(server, jid, pw)


def custom_iq(c, to, xml, type_="get"):
    iq = c.make_iq(ito=to, itype=type_)
    iq.append(ET.fromstring(xml))
    return iq


async def expect_iq_error(iq, etype, condition):
    try:
        res = await iq.send(timeout=10)
    except IqError as e:
        err = e.iq["error"]
        assert err["condition"] == condition, str(e.iq)
        assert err["type"] == etype, str(e.iq)
        return e.iq
    raise AssertionError(f"expected an error {condition}, got {res}")


async def test_ping_server(server):
    c = await client(server)
    iq = c.make_iq_get(ito=server.domain)
    iq.enable("ping")
    res = await iq.send(timeout=10)
    assert res["type"] == "result"
    assert res["from"].full == server.domain
    assert res["id"] == iq["id"]
    # slixmpp's plugin too.
    rtt = await c["xep_0199"].ping(jid=server.domain, timeout=10)
    assert rtt is not None and rtt >= 0


async def test_ping_without_to_is_for_the_server(server):
    # RFC 6120 8.1.1.1: no 'to' = to the user's account (bare JID), which the
    # server handles on the user's behalf; ping must be answered.
    c = await client(server)
    iq = c.make_iq_get()
    iq.enable("ping")
    res = await iq.send(timeout=10)
    assert res["type"] == "result"


async def test_disco_info(server):
    c = await client(server)
    info = await c["xep_0030"].get_info(jid=server.domain, timeout=10)
    assert info["type"] == "result"
    identities = {(cat, typ) for cat, typ, _lang, _name in info["disco_info"]["identities"]}
    assert ("server", "im") in identities, identities
    features = set(info["disco_info"]["features"])
    for f in ("urn:xmpp:ping", "jabber:iq:version", DISCO_INFO,
              # specs/c2s.md lists these too
              DISCO_ITEMS, "jabber:iq:roster", "urn:xmpp:delay", "msgoffline"):
        assert f in features, f"{f} missing from {sorted(features)}"


async def test_disco_items(server):
    c = await client(server)
    items = await c["xep_0030"].get_items(jid=server.domain, timeout=10)
    assert items["type"] == "result"
    assert items.xml.find(f"{{{DISCO_ITEMS}}}query") is not None, str(items)
    # specs/c2s.md: the items are service domains (none are configured here).
    for item in items["disco_items"]["items"]:
        assert "@" not in str(item[0]) and "/" not in str(item[0]), str(items)


async def test_disco_info_unknown_node(server):
    # XEP-0030 3.1: a node the entity does not know -> <item-not-found/>.
    c = await client(server)
    iq = custom_iq(c, server.domain, f"<query xmlns='{DISCO_INFO}' node='no-such-node-{secrets.token_hex(3)}'/>")
    await expect_iq_error(iq, "cancel", "item-not-found")


async def test_version(server):
    c = await client(server)
    iq = custom_iq(c, server.domain, "<query xmlns='jabber:iq:version'/>")
    res = await iq.send(timeout=10)
    query = res.xml.find("{jabber:iq:version}query")
    assert query is not None, str(res)
    assert query.findtext("{jabber:iq:version}name") == "onair", str(res)
    version = query.findtext("{jabber:iq:version}version")
    assert version and version[0].isdigit(), str(res)


async def test_unknown_namespace_to_server(server):
    c = await client(server)
    iq = custom_iq(c, server.domain, "<query xmlns='urn:example:no-such-thing'/>")
    err = await expect_iq_error(iq, "cancel", "service-unavailable")
    assert err["from"].full == server.domain
    assert err["id"] == iq["id"]


async def test_unknown_namespace_set_to_server(server):
    c = await client(server)
    iq = custom_iq(c, server.domain, "<frob xmlns='urn:example:no-such-thing'/>", type_="set")
    await expect_iq_error(iq, "cancel", "service-unavailable")


async def test_unknown_namespace_to_own_bare_jid(server):
    # RFC 6121 8.5.1 / specs/c2s.md: the server answers for the user's bare JID.
    c = await client(server)
    iq = custom_iq(c, c.boundjid.bare, "<query xmlns='urn:example:no-such-thing'/>")
    await expect_iq_error(iq, "cancel", "service-unavailable")
    # ... and handles the roster there.
    iq = custom_iq(c, c.boundjid.bare, "<query xmlns='jabber:iq:roster'/>")
    res = await iq.send(timeout=10)
    assert res["type"] == "result"


async def test_iq_to_offline_user_bare_jid(server):
    c = await client(server)
    other, _ = server.add_user()  # exists, never online
    iq = custom_iq(c, other, "<query xmlns='urn:example:no-such-thing'/>")
    err = await expect_iq_error(iq, "cancel", "service-unavailable")
    assert err["from"].bare == other


async def test_iq_to_offline_user_full_jid(server):
    # RFC 6121 8.5.3.2.1: IQ to a full JID with no such resource -> service-unavailable.
    c = await client(server)
    other, _ = server.add_user()
    iq = custom_iq(c, other + "/nowhere", "<query xmlns='urn:example:no-such-thing'/>")
    await expect_iq_error(iq, "cancel", "service-unavailable")


async def test_iq_to_unknown_user(server):
    c = await client(server)
    iq = custom_iq(c, f"nobody-{secrets.token_hex(3)}@{server.domain}",
                   "<query xmlns='urn:example:no-such-thing'/>")
    await expect_iq_error(iq, "cancel", "service-unavailable")


async def test_iq_routed_between_online_users(server):
    # An IQ to another user's full JID is delivered; the answer comes back.
    a = await client(server)
    b = await client(server)
    iq = b.make_iq_get(ito=a.boundjid.full)
    iq.enable("ping")
    res = await iq.send(timeout=10)  # slixmpp's xep_0199 plugin answers pings
    assert res["type"] == "result"
    assert res["from"].full == a.boundjid.full


async def test_iq_result_and_error_are_never_answered(server):
    # RFC 6120 8.2.3: an entity MUST NOT answer an IQ result or error.
    raw = await RawStream.connect(server.host, server.port)
    jid, pw = server.add_user()
    await raw.login(jid.split("@")[0], pw, resource="r")
    await raw.send(f"<iq type='result' id='stray-result' to='{server.domain}'/>"
                   f"<iq type='error' id='stray-error' to='{server.domain}'>"
                   f"<error type='cancel'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
                   f"<iq type='get' id='marker' to='{server.domain}'><ping xmlns='urn:xmpp:ping'/></iq>")
    while True:
        el = await raw.next()
        if el.tag == q(NS_CLIENT, "iq"):
            assert el.get("id") == "marker", f"server answered a result/error IQ: {raw.received_text()}"
            break
    await raw.close()


async def test_iq_get_without_payload_is_bad_request(server):
    # RFC 6120 8.2.3: an IQ get/set contains exactly one child; anything
    # else gets an error reply (bad-request is the natural one).
    raw = await RawStream.connect(server.host, server.port)
    jid, pw = server.add_user()
    await raw.login(jid.split("@")[0], pw, resource="r")
    await raw.send(f"<iq type='get' id='empty' to='{server.domain}'/>")
    el = await raw.next()
    assert el.tag == q(NS_CLIENT, "iq") and el.get("id") == "empty", raw.received_text()
    assert el.get("type") == "error", raw.received_text()
    err = stanza_error(el)
    assert err is not None and err[1] in ("bad-request", "service-unavailable"), raw.received_text()
    await raw.close()
