"""Stream setup and SASL (RFC 6120 5, 6; XEP-0368; RFC 4505; RFC 7677)."""
import base64
import hashlib
import hmac
import os

import pytest

import clients
from clients import AuthFailed
from rawxmpp import (NS_SASL, NS_STREAM, NS_TLS, RawStream, mechanisms, q,
                     starttls_required, tostr)


@pytest.fixture
def account(server):
    return server.add_user()


# -- slixmpp logins -----------------------------------------------------------

async def test_scram_sha256_over_starttls(server, account):
    jid, pw = account
    c = await clients.login(server, jid, pw, mech="SCRAM-SHA-256")
    assert c.used_mechanism == "SCRAM-SHA-256"
    assert c.boundjid.bare == jid
    assert c.boundjid.resource, "bind must give a resource"
    await c.roundtrip()


async def test_default_mechanism_choice_logs_in(server, account):
    # No restriction: the client picks the strongest offered mechanism; the
    # offer must contain SCRAM-SHA-256 and it must be the one used.
    jid, pw = account
    c = await clients.login(server, jid, pw)
    assert c.used_mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-512",
                                "SCRAM-SHA-512-PLUS"), c.used_mechanism


async def test_scram_sha1(server, account):
    jid, pw = account
    c = await clients.login(server, jid, pw, mech="SCRAM-SHA-1")
    assert c.used_mechanism == "SCRAM-SHA-1"
    assert c.boundjid.bare == jid
    await c.barrier()


async def test_direct_tls_port(server, account):
    jid, pw = account
    c = await clients.login(server, jid, pw, direct_tls=True, mech="SCRAM-SHA-256")
    assert c.boundjid.bare == jid
    await c.roundtrip()


async def test_direct_tls_raw_features_have_no_starttls(server):
    # XEP-0368: the stream on the direct TLS port is already encrypted, so the
    # server must not offer STARTTLS there, and does offer SASL.
    raw = await RawStream.connect(server.host, server.tls_port, tls=True)
    features = await raw.open_stream()
    assert features.find(q(NS_TLS, "starttls")) is None, tostr(features)
    assert "SCRAM-SHA-256" in mechanisms(features), tostr(features)
    assert "PLAIN" in mechanisms(features), tostr(features)
    await raw.close()


async def test_plain_over_tls(server, account):
    jid, pw = account
    c = await clients.login(server, jid, pw, mech="PLAIN")
    assert c.used_mechanism == "PLAIN"
    assert c.boundjid.bare == jid
    await c.barrier()


async def test_plain_raw_over_starttls_and_bind(server, account):
    jid, pw = account
    user = jid.split("@")[0]
    raw = await RawStream.connect(server.host, server.port)
    features = await raw.open_stream()
    assert starttls_required(features), tostr(features)
    features = await raw.starttls()
    assert features.find(q(NS_TLS, "starttls")) is None, "STARTTLS offered again after TLS"
    offered = mechanisms(features)
    assert {"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"} <= set(offered), offered
    assert "ANONYMOUS" not in offered, "ANONYMOUS must only be offered on the guest host"
    reply = await raw.auth_plain(user, pw)
    assert reply.tag == q(NS_SASL, "success"), tostr(reply)
    features = await raw.open_stream()
    assert mechanisms(features) == [], "SASL offered again after success"
    full = await raw.bind("raw-res")
    assert full == f"{jid}/raw-res"
    await raw.send("</stream:stream>")
    await raw.wait_closed()


async def test_stream_header_from_server(server):
    # RFC 6120 4.7: the response header has an id, version 1.0, from = domain.
    raw = await RawStream.connect(server.host, server.port)
    await raw.open_stream()
    h = raw.header
    assert h.get("from") == server.domain, h
    assert h.get("version") == "1.0", h
    assert h.get("id"), h
    await raw.close()


# -- before TLS ------------------------------------------------------------------

async def test_plain_refused_before_tls(server, account):
    jid, pw = account
    user = jid.split("@")[0]
    raw = await RawStream.connect(server.host, server.port)
    features = await raw.open_stream()
    assert starttls_required(features), \
        f"require_tls is on by default: starttls must be <required/>: {tostr(features)}"
    assert "PLAIN" not in mechanisms(features), f"PLAIN offered without TLS: {tostr(features)}"
    await raw.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>"
                   + base64.b64encode(f"\0{user}\0{pw}".encode()).decode() + "</auth>")
    try:
        el = await raw.next()
    except Exception:
        el = None
    text = raw.received_text()
    assert "<success" not in text, f"authenticated over plaintext: {text}"
    if el is not None and el.tag == q(NS_SASL, "failure"):
        conds = [c.tag for c in el]
        assert q(NS_SASL, "encryption-required") in conds, tostr(el)
        # The stream stays usable for STARTTLS after a SASL failure.
        await raw.starttls()
        reply = await raw.auth_plain(user, pw)
        assert reply.tag == q(NS_SASL, "success"), tostr(reply)
    else:
        # A stream error is the other acceptable answer.
        assert el is not None and el.tag == q(NS_STREAM, "error"), \
            f"expected SASL <failure><encryption-required/> or a stream error, got: {text}"
        await raw.send("</stream:stream>")
        await raw.wait_closed()


async def test_scram_refused_before_tls(server, account):
    # require_tls covers every mechanism, not just PLAIN.
    jid, _ = account
    user = jid.split("@")[0]
    raw = await RawStream.connect(server.host, server.port)
    await raw.open_stream()
    nonce = base64.b64encode(os.urandom(18)).decode()
    await raw.send(f"<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-256'>"
                   + base64.b64encode(f"n,,n={user},r={nonce}".encode()).decode() + "</auth>")
    try:
        el = await raw.next()
    except Exception:
        el = None
    assert el is not None, f"no answer: {raw.received_text()}"
    assert el.tag in (q(NS_SASL, "failure"), q(NS_STREAM, "error")), \
        f"SCRAM before TLS must be refused, got {tostr(el)}"
    await raw.close()


# -- failures -----------------------------------------------------------------

@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])
async def test_wrong_password_not_authorized(server, account, mech):
    jid, pw = account
    e = await clients.login_fails(server, jid, pw + "x", mech=mech)
    assert e.condition == "not-authorized", e
    # The right password still works afterwards.
    c = await clients.login(server, jid, pw, mech=mech)
    await c.barrier()


async def test_unknown_user_not_authorized(server):
    e = await clients.login_fails(server, "nosuchuser@localhost", "whatever", mech="SCRAM-SHA-256")
    assert e.condition == "not-authorized", e
    e = await clients.login_fails(server, "nosuchuser@localhost", "whatever", mech="PLAIN")
    assert e.condition == "not-authorized", e


async def test_raw_plain_wrong_password_then_retry(server, account):
    # RFC 6120 6.4.5: after a failure the client may retry on the same stream.
    jid, pw = account
    user = jid.split("@")[0]
    raw = await RawStream.connect(server.host, server.port)
    await raw.open_stream()
    await raw.starttls()
    reply = await raw.auth_plain(user, pw + "nope")
    assert reply.tag == q(NS_SASL, "failure"), tostr(reply)
    assert reply.find(q(NS_SASL, "not-authorized")) is not None, tostr(reply)
    reply = await raw.auth_plain(user, pw)
    assert reply.tag == q(NS_SASL, "success"), tostr(reply)
    await raw.close()


async def test_unknown_mechanism_refused(server):
    raw = await RawStream.connect(server.host, server.port)
    await raw.open_stream()
    await raw.starttls()
    reply = await raw.auth("X-NO-SUCH-MECH", b"hello")
    assert reply.tag == q(NS_SASL, "failure"), tostr(reply)
    assert reply.find(q(NS_SASL, "invalid-mechanism")) is not None, tostr(reply)
    await raw.close()


async def test_scram_bad_proof_raw(server, account):
    # A SCRAM exchange with a wrong ClientProof ends in <failure><not-authorized/>.
    jid, pw = account
    user = jid.split("@")[0]
    raw = await RawStream.connect(server.host, server.port)
    await raw.open_stream()
    await raw.starttls()
    cnonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n={user},r={cnonce}"
    ch = await raw.auth("SCRAM-SHA-256", f"n,,{first_bare}".encode())
    assert ch.tag == q(NS_SASL, "challenge"), tostr(ch)
    server_first = base64.b64decode(ch.text).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    assert attrs["r"].startswith(cnonce), server_first
    assert int(attrs["i"]) >= 4096, f"RFC 7677: iteration count should be at least 4096: {server_first}"
    salt = base64.b64decode(attrs["s"])
    salted = hashlib.pbkdf2_hmac("sha256", (pw + "WRONG").encode(), salt, int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored = hashlib.sha256(client_key).digest()
    final_noproof = f"c=biws,r={attrs['r']}"
    auth_msg = f"{first_bare},{server_first},{final_noproof}".encode()
    sig = hmac.new(stored, auth_msg, "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    final = f"{final_noproof},p={base64.b64encode(proof).decode()}"
    await raw.send(f"<response xmlns='{NS_SASL}'>{base64.b64encode(final.encode()).decode()}</response>")
    reply = await raw.next()
    assert reply.tag == q(NS_SASL, "failure"), tostr(reply)
    assert reply.find(q(NS_SASL, "not-authorized")) is not None, tostr(reply)
    await raw.close()


# -- ANONYMOUS ------------------------------------------------------------------

async def test_anonymous_on_guest_host(server):
    a = await clients.login(server, server.guest_domain, "", mech="ANONYMOUS")
    b = await clients.login(server, server.guest_domain, "", mech="ANONYMOUS")
    for c in (a, b):
        assert c.used_mechanism == "ANONYMOUS"
        assert c.boundjid.domain == server.guest_domain, c.boundjid
        assert c.boundjid.user, f"anonymous JID needs a node: {c.boundjid}"
        assert c.boundjid.resource, f"anonymous JID needs a resource: {c.boundjid}"
    assert a.boundjid.user != b.boundjid.user, "two guests got the same node"
    # Guests can talk to each other.
    await a.roundtrip(b)


async def test_anonymous_offered_only_on_guest_host(server):
    raw = await RawStream.connect(server.host, server.port)
    await raw.open_stream(to=server.guest_domain)
    features = await raw.starttls(to=server.guest_domain)
    assert "ANONYMOUS" in mechanisms(features), tostr(features)
    reply = await raw.auth("ANONYMOUS", b"trace")
    assert reply.tag == q(NS_SASL, "success"), tostr(reply)
    await raw.open_stream(to=server.guest_domain)
    full = await raw.bind()
    assert full.split("@", 1)[1].split("/", 1)[0] == server.guest_domain, full
    await raw.close()


async def test_anonymous_refused_on_main_domain(server):
    raw = await RawStream.connect(server.host, server.port)
    await raw.open_stream()
    features = await raw.starttls()
    assert "ANONYMOUS" not in mechanisms(features), tostr(features)
    reply = await raw.auth("ANONYMOUS", b"")
    assert reply.tag in (q(NS_SASL, "failure"), q(NS_STREAM, "error")), tostr(reply)
    assert "<success" not in raw.received_text()
    await raw.close()
    # And with slixmpp.
    e = await clients.login_fails(server, server.domain, "", mech="ANONYMOUS")
    assert e.condition in ("invalid-mechanism", "no-mechanism", "not-authorized",
                           "mechanism-too-weak"), e


async def test_unknown_host_in_stream_header(server):
    # RFC 6120 4.9.3.6: a 'to' the server does not serve -> <host-unknown/>.
    raw = await RawStream.connect(server.host, server.port)
    await raw.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                   "xmlns:stream='http://etherx.jabber.org/streams' to='no.such.example' version='1.0'>")
    cond, _ = await raw.expect_stream_error()
    assert cond == "host-unknown"
