"""Bad input to the chat-room service, stanza by stanza (raw XML): each
gets its XMPP error, nothing in the room changes, the server stays up and
the other occupants hear nothing of it (specs/muc.md)."""
import re

from muc_client import book_live
from rawxmpp import NS_CLIENT, RawStream, stanza_error, tostr

SERVER_CONFIG = {
    "channels": [{"id": "main", "name": "Main stage", "capacity": 50, "bandwidth_kbps": 2000, "price_per_hour": 0}],
    "reservation": {"slot_s": 60},
    "schedule": {"reconfirm_before_s": 0, "room_open_before_s": 86400},
    "muc": {"max_message_bytes": 64},
}
MUC = "http://jabber.org/protocol/muc"


async def connect(server, user, pw):
    raw = await RawStream.connect(server.host, server.port)
    await raw.login(user, pw, resource="raw")
    return raw


async def next_of(raw, name, timeout=5):
    """The next stanza of that name (other traffic, such as presences, skipped)."""
    while True:
        el = await raw.next(timeout=timeout)
        if el.tag == f"{{{NS_CLIENT}}}{name}":
            return el


async def enter(raw, room, nick, extra=""):
    await raw.send(f"<presence to='{room}/{nick}'><x xmlns='{MUC}'>{extra}</x></presence>")
    while True:
        el = await raw.next()
        if el.tag == f"{{{NS_CLIENT}}}message" and el.find(f"{{{NS_CLIENT}}}subject") is not None:
            return


async def error_for(raw, xml, name):
    await raw.send(xml)
    el = await next_of(raw, name)
    assert el.get("type") == "error", (xml, tostr(el))
    return stanza_error(el)


async def test_bad_stanzas_get_errors_and_change_nothing(server):
    live = book_live(server)
    room = str(live.room)
    owner = await connect(server, live.owner.split("@")[0], live.owner_pw)
    await enter(owner, room, "Alice")
    bob_jid, bob_pw = server.add_user()
    bob = await connect(server, bob_jid.split("@")[0], bob_pw)
    await enter(bob, room, "bob")
    await next_of(owner, "presence")  # bob's join

    # Entering (someone not in the room yet).
    carol_jid, carol_pw = server.add_user()
    carol = await connect(server, carol_jid.split("@")[0], carol_pw)
    entering = [
        (f"<presence to='{room}'><x xmlns='{MUC}'/></presence>", "jid-malformed"),
        (f"<presence to='{room}/x'><x xmlns='{MUC}'><history maxstanzas='-1'/></x></presence>", "bad-request"),
        (f"<presence to='{room}/x'><x xmlns='{MUC}'><history since='tomorrow'/></x></presence>", "bad-request"),
        (f"<presence to='{room}/{'x' * 65}'><x xmlns='{MUC}'/></presence>", "not-acceptable"),
        (f"<presence to='{room}/   '><x xmlns='{MUC}'/></presence>", "not-acceptable"),
        (f"<presence to='{room}/bob'><x xmlns='{MUC}'/></presence>", "conflict"),
    ]
    for xml, condition in entering:
        _, cond = await error_for(carol, xml, "presence")
        assert cond == condition, (xml, cond)
    # A nickname change of bob's onto a taken one.
    _, cond = await error_for(bob, f"<presence to='{room}/Alice'/>", "presence")
    assert cond == "conflict"
    cases = [
        # messages
        (f"<message to='{room}' type='chat'><body>hi</body></message>", "message", "bad-request"),
        (f"<message to='{room}' type='groupchat'><body>{'y' * 65}</body></message>", "message", "not-acceptable"),
        (f"<message to='{room}/nobody' type='chat'><body>hi</body></message>", "message", "item-not-found"),
        (f"<message to='{room}/Alice' type='groupchat'><body>hi</body></message>", "message", "bad-request"),
        (f"<message to='{room}' type='groupchat'><subject>mine now</subject></message>", "message", "forbidden"),
        # IQs
        (f"<iq type='get' id='q1' to='{room}'><query xmlns='http://jabber.org/protocol/muc#admin'>"
         f"<item affiliation='outcast'/></query></iq>", "iq", "forbidden"),
        (f"<iq type='set' id='q2' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'>"
         f"<destroy/></query></iq>", "iq", "forbidden"),
        (f"<iq type='get' id='q3' to='{room}'><vCard xmlns='vcard-temp'/></iq>", "iq", "service-unavailable"),
        (f"<iq type='get' id='q4' to='{room}'/>", "iq", "bad-request"),
        (f"<iq type='get' id='q5' to='{room}'><query xmlns='http://jabber.org/protocol/disco#info' node='x'/></iq>",
         "iq", "item-not-found"),
        (f"<iq type='get' id='q6' to='{room}/Alice'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
         "iq", "service-unavailable"),
        (f"<iq type='get' id='q7' to='live.localhost'><vCard xmlns='vcard-temp'/></iq>", "iq", "service-unavailable"),
        (f"<iq type='get' id='q8' to='{room}'><query xmlns='http://jabber.org/protocol/disco#items'>"
         f"<set xmlns='http://jabber.org/protocol/rsm'><max>many</max></set></query></iq>", "iq", "bad-request"),
        (f"<message to='live.localhost'><body>hello service</body></message>", "message", "service-unavailable"),
    ]
    for xml, name, condition in cases:
        etype, cond = await error_for(bob, xml, name)
        assert cond == condition, (xml, etype, cond)

    # The broadcaster's malformed moderation: errors, and nothing changed.
    admin = "http://jabber.org/protocol/muc#admin"
    owner_cases = [
        (f"<item nick='bob' role='none' affiliation='outcast'/>", "bad-request"),
        (f"<item role='none'/>", "bad-request"),
        (f"<item nick='bob' role='king'/>", "bad-request"),
        (f"<item affiliation='outcast' jid='not a jid@@'/>", "jid-malformed"),
        (f"<item affiliation='outcast'/>", "bad-request"),
        # one good item and one bad: nothing applied
        (f"<item nick='bob' role='none'/><item nick='ghost' role='none'/>", "item-not-found"),
        ("", "bad-request"),
        ("<item nick='bob' role='none'/>" * 51, "policy-violation"),
    ]
    for items, condition in owner_cases:
        _, cond = await error_for(owner, f"<iq type='set' id='a' to='{room}'><query xmlns='{admin}'>{items}</query></iq>",
                                     "iq")
        assert cond == condition, (items, cond)
    owner_form = "http://jabber.org/protocol/muc#owner"
    form_cases = [
        ("<x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_slow_mode_duration'><value>-5</value>"
         "</field></x>", "not-acceptable"),
        ("<x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_slow_mode_duration'><value>9999999</value>"
         "</field></x>", "not-acceptable"),
        ("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:other</value></field></x>",
         "bad-request"),
        ("<x xmlns='jabber:x:data' type='bogus'/>", "bad-request"),
        ("<nothing/>", "bad-request"),
    ]
    for form, condition in form_cases:
        _, cond = await error_for(owner, f"<iq type='set' id='f' to='{room}'><query xmlns='{owner_form}'>{form}"
                                            f"</query></iq>", "iq")
        assert cond == condition, (form, cond)

    # Bob is still in, with his voice; slow mode is still off; nobody heard of any of it.
    await bob.send(f"<message to='{room}' type='groupchat' id='ok1'><body>still fine</body></message>")
    el = await next_of(bob, "message")
    assert el.get("id") == "ok1" and el.get("type") == "groupchat", tostr(el)
    el = await next_of(owner, "message")
    assert el.get("id") == "ok1", tostr(el)
    await owner.send(f"<iq type='get' id='c' to='{room}'><query xmlns='{owner_form}'/></iq>")
    el = await next_of(owner, "iq")
    slow = re.search(r"slow_mode_duration\"[^>]*>\s*<[^>]*value>(\d+)<", tostr(el).replace("ns0:", "").replace("ns1:", ""))
    assert slow and slow.group(1) == "0", tostr(el)
    for raw in (bob, owner, carol):
        await raw.close()
