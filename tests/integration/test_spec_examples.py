"""Replays every ```xmpp-example block of specs/*.md against a real onaird, so
the stanza examples in the specifications cannot drift from the server.

Block format (see specs/c2s.md, "Examples"): the first line names the start
state (`# as alice`, `# as alice and bob`, `# not logged in`); `C:` lines are
sent by alice (or `C(bob):` by bob); `S:` / `S(bob):` lines are what that
client must receive next.  An expected element matches when every attribute,
text and child it shows is present ('*' matches any value).  An attribute
value (or a whole text) '$name' in an S: line matches any value and binds it
(the same name must then bind the same value); '$name' in a later C: line is
replaced by it; '$name' inside a longer value (e.g. '$room/Alice') is
replaced by what it bound before, and the result must match exactly.  Every
example's server has the channels and booking horizon of SPEC_CONFIG, which
specs/reservation.md relies on.

A start state may end with ", alice's room open" (or "alice's password room
open"): alice has then booked and reconfirmed a public (or password, shared
password 'view-secret') live titled "Evening talk", an hour ahead, whose room
is open and whose ingest window is open (broadcast password 'cast-secret');
$room is bound to its JID, $rid to its ID and $media to its media endpoint
(specs/muc.md, specs/media.md).  ", alice's live tomorrow" is such a live a
day ahead: no room yet, outside its ingest window."""
import pathlib
import re
import xml.etree.ElementTree as ET

import pytest

from rawxmpp import RawStream, tostr

SPECS = pathlib.Path(__file__).resolve().parents[2] / "specs"
BLOCK = re.compile(r"```xmpp-example\n(.*?)```", re.S)
WRAP = ("<wrap xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>{}</wrap>")
PASSWORD = "pencil-spec"
SPEC_CONFIG = {
    "channels": [{"id": "main", "name": "Main stage", "capacity": 50, "bandwidth_kbps": 2000,
                  "price_per_hour": 3000}],
    "reservation": {"max_advance_days": 3660},
}
# With a room: one-minute slots, rooms and ingest windows open two hours
# ahead, no timed notices during an example.
ROOM_CONFIG = {
    **SPEC_CONFIG,
    "reservation": {"max_advance_days": 3660, "slot_s": 60},
    "schedule": {"reconfirm_before_s": 0, "room_open_before_s": 7200, "notice_before_s": 0,
                 "close_warning_before_s": 0, "ingest_open_before_s": 7200},
}


def open_room(srv, owner, level, ahead=3600):
    """Books and reconfirms a live of owner's `ahead` seconds ahead (its room
    opens at once when that is within two hours)."""
    import time
    from muc_client import book_live
    start = (int(time.time()) // 60 + 1) * 60 + ahead
    live = book_live(srv, level=level, start=start, owner=(f"{owner}@{srv.domain}", PASSWORD),
                     password="view-secret")
    return {"room": str(live.room), "rid": live.id, "media": f"{live.id}@media.{srv.domain}"}


def examples():
    found = []
    for path in sorted(SPECS.glob("*.md")):
        for i, m in enumerate(BLOCK.finditer(path.read_text())):
            found.append(pytest.param(m.group(1), id=f"{path.stem}-{i + 1}"))
    return found


def parse_expected(xml):
    wrapped = ET.fromstring(WRAP.format(xml))
    children = list(wrapped)
    assert len(children) == 1, f"one element per S: line: {xml}"
    return children[0]


def matches(exp, got, env=None):
    """The bindings of $names (env extended) if got matches exp, else None."""
    env = dict(env or {})
    if exp.tag != got.tag:
        return None
    for k, v in exp.attrib.items():
        have = got.get(k)
        if re.fullmatch(r"\$\w+", v):
            if not have or env.get(v[1:], have) != have:
                return None
            env[v[1:]] = have
        elif "$" in v:
            names = re.findall(r"\$(\w+)", v)
            if any(n not in env for n in names) or \
                    have != re.sub(r"\$(\w+)", lambda m: env[m.group(1)], v):
                return None
        elif v != "*" and have != v:
            return None
        elif v == "*" and have is None:
            return None
    want_text = (exp.text or "").strip()
    if want_text.startswith("$") and re.fullmatch(r"\$\w+", want_text):
        have = (got.text or "").strip()
        if not have or env.get(want_text[1:], have) != have:
            return None
        env[want_text[1:]] = have
        want_text = ""
    if want_text and want_text != "*" and (got.text or "").strip() != want_text:
        return None
    if want_text == "*" and not (got.text or "").strip():
        return None
    remaining = list(got)
    for child in exp:
        for j, cand in enumerate(remaining):
            sub = matches(child, cand, env)
            if sub is not None:
                env = sub
                del remaining[j]
                break
        else:
            return None
    return env


def test_specs_have_examples():
    assert len(examples()) >= 8, "the specifications lost their replayable examples"


@pytest.mark.parametrize("block", examples())
async def test_spec_example(server_factory, block):
    lines = [ln for ln in block.strip().splitlines() if ln.strip()]
    state = lines[0].lstrip("#").strip()
    room = re.search(r",\s*(\w+)'s (?:(password )?room open|(live tomorrow))$", state)
    if room:
        state = state[:room.start()].strip()
    srv = server_factory(ROOM_CONFIG if room else SPEC_CONFIG)
    streams = {}
    if state.startswith("as "):
        for name in state[3:].split(" and "):
            name = name.strip()
            srv.add_user(name, PASSWORD)
            raw = await RawStream.connect(srv.host, srv.port)
            await raw.login(name, PASSWORD, resource="spec")
            await raw.send("<presence/>")
            streams[name] = raw
        # Let initial presence settle: a ping round trip per stream.
        for raw in streams.values():
            await raw.iq("<ping xmlns='urn:xmpp:ping'/>", to="localhost")
    elif state == "not logged in":
        raw = await RawStream.connect(srv.host, srv.port)
        await raw.open_stream()
        streams["alice"] = raw
    else:
        pytest.fail(f"unknown example state: {state}")

    env = {}
    if room:
        env.update(open_room(srv, room.group(1), "password" if room.group(2) else "public",
                             ahead=86400 if room.group(3) else 3600))
    for line in lines[1:]:
        m = re.match(r"([CS])(?:\((\w+)\))?:\s*(.*)$", line)
        assert m, f"bad example line: {line}"
        kind, who, xml = m.group(1), m.group(2) or "alice", m.group(3)
        raw = streams[who]
        if kind == "C":
            unbound = [n for n in re.findall(r"\$(\w+)", xml) if n not in env]
            assert not unbound, f"${unbound[0]} is used before an S: line binds it: {line}"
            await raw.send(re.sub(r"\$(\w+)", lambda v: env[v.group(1)], xml))
        else:
            exp = parse_expected(xml)
            got = await raw.next(timeout=5)
            bound = matches(exp, got, env)
            assert bound is not None, f"expected (subset) {xml}\n     got {tostr(got)}"
            env = bound
    for raw in streams.values():
        await raw.close()
