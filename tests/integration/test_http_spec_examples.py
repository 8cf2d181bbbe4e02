"""Replays every ```http-example block of specs/*.md against a real onaird, so
the HTTP examples in the specifications cannot drift from the server.

Block format (specs/http-api.md, "Example block format"): the first line
names the state (`# a fresh server`, `# account alice`, `# logged in as alice`); then the request
(request line without the version, headers, blank line, body); then
`-> <status>`, the headers the response must carry ('*' = any value), a blank
line and the expected JSON body, whose keys must be exactly those shown and
whose "*" values match anything."""
import json
import pathlib
import re

import pytest

from webapi import login, request

SPECS = pathlib.Path(__file__).resolve().parents[2] / "specs"
BLOCK = re.compile(r"```http-example\n(.*?)```", re.S)
PASSWORD = "pencil-spec"
# The servers of the examples have one channel and a ten-year booking horizon
# (specs/reservation.md relies on them).
SPEC_CONFIG = {
    "channels": [{"id": "main", "name": "Main stage", "capacity": 50, "bandwidth_kbps": 2000,
                  "price_per_hour": 3000}],
    "reservation": {"max_advance_days": 3660},
}


def examples():
    found = []
    for path in sorted(SPECS.glob("*.md")):
        for i, m in enumerate(BLOCK.finditer(path.read_text())):
            found.append(pytest.param(m.group(1), id=f"{path.stem}-{i + 1}"))
    return found


def parse_block(block):
    """-> (state, method, path, headers, body, status, want_headers, want_json)"""
    lines = block.split("\n")
    state = lines[0].lstrip("#").strip()
    arrow = next(i for i, ln in enumerate(lines) if ln.startswith("-> "))
    req, resp = lines[1:arrow], lines[arrow:]

    method, path = req[0].split()
    headers, i = {}, 1
    while i < len(req) and req[i].strip():
        k, v = req[i].split(":", 1)
        headers[k.strip()] = v.strip()
        i += 1
    body = "\n".join(req[i + 1:]).strip() or None

    status = int(resp[0][3:].strip())
    want_headers, i = {}, 1
    while i < len(resp) and resp[i].strip():
        k, v = resp[i].split(":", 1)
        want_headers[k.strip().lower()] = v.strip()
        i += 1
    rest = "\n".join(resp[i:]).strip()
    want_json = json.loads(rest) if rest else None
    return state, method, path, headers, body, status, want_headers, want_json


def matches(want, got):
    if want == "*":
        return got is not None
    if isinstance(want, dict):
        return isinstance(got, dict) and set(want) == set(got) and all(matches(want[k], got[k]) for k in want)
    if isinstance(want, list):
        return isinstance(got, list) and len(want) == len(got) and all(map(matches, want, got))
    return want == got


def test_specs_have_http_examples():
    assert len(examples()) >= 10, "the specifications lost their replayable HTTP examples"


@pytest.mark.parametrize("block", examples())
def test_http_spec_example(server_factory, block):
    state, method, path, headers, body, status, want_headers, want_json = parse_block(block)
    srv = server_factory(SPEC_CONFIG)
    token = None
    if state == "a fresh server":
        pass
    elif state.startswith("account "):
        srv.add_user(state.split()[-1], PASSWORD)
    elif state.startswith("logged in as "):
        user = state.split()[-1]
        srv.add_user(user, PASSWORD)
        token = login(srv, user, PASSWORD)
    else:
        raise AssertionError(f"unknown start state: {state!r}")
    headers = {k: v.replace("{token}", token or "") for k, v in headers.items()}
    r = request(srv, method, path, raw=body, headers=headers, content_type=None)
    assert r.status == status, r
    for k, v in want_headers.items():
        got = r.header(k)
        assert got is not None and (v == "*" or got == v), f"header {k}: want {v!r}, got {got!r}\n{r}"
    if want_json is None:
        assert r.raw == b"", r
    else:
        assert matches(want_json, r.json), f"want {want_json}\ngot  {r.json}"
