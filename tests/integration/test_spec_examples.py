"""Replays the ```xmpp-example blocks of specs/c2s.md against a real onaird,
so the documented exchanges cannot drift from the code.

Block format (see specs/c2s.md, "Examples"): the first line sets the scene
("# as alice", "# as alice and bob", "# not logged in"); then "C: <xml>"
lines are sent (by alice, or "C(bob):"), and "S: <xml>" lines must match the
next element the server sends to alice ("S(bob):" to bob).  Every attribute
and child written in the example must be present (extras are allowed); a
value of "*" matches anything.
"""
import re
import xml.etree.ElementTree as ET

import pytest

from harness import REPO
from rawxmpp import NS_CLIENT, NS_STREAM, RawStream, q, tostr

SPEC = REPO / "specs" / "c2s.md"
PASSWORDS = {"alice": "alice-pw-spec", "bob": "bob-pw-spec"}


def load_examples():
    if not SPEC.is_file():
        return []
    text = SPEC.read_text()
    out = []
    for m in re.finditer(r"```xmpp-example\n(.*?)```", text, re.S):
        before = [ln.strip() for ln in text[:m.start()].splitlines() if ln.strip()]
        title = before[-1].rstrip(":") if before else f"example {len(out) + 1}"
        out.append((title, m.group(1)))
    return out


EXAMPLES = load_examples()


def slug(title):
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def parse_expected(xml):
    root = ET.fromstring(f"<wrap xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}'>{xml}</wrap>")
    assert len(root) == 1, f"one element per S: line: {xml}"
    return root[0]


def matches(exp, act):
    if exp.tag != act.tag:
        return False
    for k, v in exp.attrib.items():
        if k not in act.attrib or (v != "*" and act.attrib[k] != v):
            return False
    want = (exp.text or "").strip()
    if want and want != "*" and (act.text or "").strip() != want:
        return False
    used = set()
    for ec in exp:
        for i, ac in enumerate(act):
            if i not in used and matches(ec, ac):
                used.add(i)
                break
        else:
            return False
    return True


async def session_for(server, name):
    raw = await RawStream.connect(server.host, server.port)
    await raw.login(name, PASSWORDS[name], resource="spec")
    await raw.send("<presence/>")
    res = await raw.iq("<ping xmlns='urn:xmpp:ping'/>", to=server.domain)  # drains up to here
    assert res.get("type") == "result"
    return raw


@pytest.fixture(scope="module")
def spec_accounts(module_server):
    for name, pw in PASSWORDS.items():
        module_server.add_user(name, pw)
    return module_server


@pytest.mark.skipif(not EXAMPLES, reason="specs/c2s.md has no xmpp-example blocks")
@pytest.mark.parametrize("title,block", EXAMPLES, ids=[slug(t) for t, _ in EXAMPLES] or None)
async def test_spec_example(server, spec_accounts, title, block):
    lines = [ln for ln in block.splitlines() if ln.strip()]
    scene = lines[0].strip()
    actors = {}
    if scene == "# not logged in":
        raw = await RawStream.connect(server.host, server.port)
        await raw.open_stream()
        actors["alice"] = raw
    else:
        m = re.fullmatch(r"# as (\w+)(?: and (\w+))?", scene)
        assert m, f"unknown scene {scene!r}"
        for name in filter(None, m.groups()):
            actors[name] = await session_for(server, name)
    default = next(iter(actors))
    try:
        for ln in lines[1:]:
            m = re.fullmatch(r"([CS])(?:\((\w+)\))?:\s*(.*)", ln.strip())
            assert m, f"bad example line {ln!r}"
            kind, who, xml = m.group(1), m.group(2) or default, m.group(3)
            raw = actors[who]
            if kind == "C":
                await raw.send(xml)
                continue
            expected = parse_expected(xml)
            got = await raw.next()
            assert matches(expected, got), (f"{title}: expected (to {who})\n  {xml}\ngot\n  {tostr(got)}")
    finally:
        for raw in actors.values():
            await raw.try_send("</stream:stream>")
            await raw.close()
