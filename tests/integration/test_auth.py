"""Stream setup and SASL (RFC 6120 5, 6; XEP-0368; RFC 4505; RFC 7677)."""
import base64
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


@pytest.mark.parametrize("hash_name", ["sha256", "sha1"])
async def test_scram_raw_exchange(server, account, hash_name):
    # Our own SCRAM client: the server's signature must verify (mutual auth)
    # and the iteration count must be sane (RFC 7677: at least 4096).
    jid, pw = account
    raw = await RawStream.connect(server.host, server.port)
    await raw.open_stream()
    await raw.starttls()
    reply = await raw.auth_scram(jid.split("@")[0], pw, hash_name)
    assert reply.tag == q(NS_SASL, "success"), tostr(reply)
    assert raw.scram_iterations >= 4096, raw.scram_iterations
    await raw.open_stream()
    assert (await raw.bind("scram")) == f"{jid}/scram"
    await raw.close()


async def test_scram_bad_proof_raw(server, account):
    # A SCRAM exchange with a wrong ClientProof ends in <failure><not-authorized/>.
    jid, pw = account
    raw = await RawStream.connect(server.host, server.port)
    await raw.open_stream()
    await raw.starttls()
    reply = await raw.auth_scram(jid.split("@")[0], pw, "sha256", wrong_password=True)
    assert reply.tag == q(NS_SASL, "failure"), tostr(reply)
    assert reply.find(q(NS_SASL, "not-authorized")) is not None, tostr(reply)
    await raw.close()


async def test_three_failures_end_the_stream(server, account):
    # specs/c2s.md: after three failures the stream ends with policy-violation.
    jid, pw = account
    user = jid.split("@")[0]
    raw = await RawStream.connect(server.host, server.port)
    await raw.open_stream()
    await raw.starttls()
    for i in range(3):
        reply = await raw.auth_plain(user, f"{pw}-wrong{i}")
        if reply.tag == q(NS_STREAM, "error"):
            raw._queue.insert(0, reply)
            break
        assert reply.tag == q(NS_SASL, "failure"), tostr(reply)
    cond, _ = await raw.expect_stream_error()
    assert cond == "policy-violation", cond


async def test_plain_authzid_of_someone_else(server, account):
    jid, pw = account
    other, _ = server.add_user()
    raw = await RawStream.connect(server.host, server.port)
    await raw.open_stream()
    await raw.starttls()
    reply = await raw.auth_plain(jid.split("@")[0], pw, authzid=other)
    assert reply.tag == q(NS_SASL, "failure"), tostr(reply)
    assert reply.find(q(NS_SASL, "invalid-authzid")) is not None, tostr(reply)
    # Authorizing as oneself is fine.
    reply = await raw.auth_plain(jid.split("@")[0], pw, authzid=jid)
    assert reply.tag == q(NS_SASL, "success"), tostr(reply)
    await raw.close()


@pytest.mark.parametrize("payload", [
    "bm90IHBsYWluIGF0IGFsbA==",       # "not plain at all": no NUL separators
    "!!!not base64!!!",
    "AAAA" * 300,                       # NULs only, long
], ids=["no-separators", "bad-base64", "nuls"])
async def test_plain_malformed(server, payload):
    raw = await RawStream.connect(server.host, server.port)
    await raw.open_stream()
    await raw.starttls()
    await raw.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{payload}</auth>")
    reply = await raw.next()
    assert reply.tag == q(NS_SASL, "failure"), tostr(reply)
    conds = [c.tag.split("}")[1] for c in reply]
    assert set(conds) & {"malformed-request", "incorrect-encoding", "not-authorized"}, tostr(reply)
    await raw.close()


async def test_scram_abort(server, account):
    jid, _ = account
    raw = await RawStream.connect(server.host, server.port)
    await raw.open_stream()
    await raw.starttls()
    ch = await raw.auth("SCRAM-SHA-256", f"n,,n={jid.split('@')[0]},r=abcdefghijkl".encode())
    assert ch.tag == q(NS_SASL, "challenge"), tostr(ch)
    await raw.send(f"<abort xmlns='{NS_SASL}'/>")
    reply = await raw.next()
    assert reply.tag == q(NS_SASL, "failure"), tostr(reply)
    assert reply.find(q(NS_SASL, "aborted")) is not None, tostr(reply)
    await raw.close()


async def test_allow_plain_false(server_factory):
    srv = server_factory({"c2s": {"allow_plain": False}})
    jid, pw = srv.add_user()
    raw = await RawStream.connect(srv.host, srv.port)
    await raw.open_stream()
    features = await raw.starttls()
    assert "PLAIN" not in mechanisms(features), tostr(features)
    assert "SCRAM-SHA-256" in mechanisms(features), tostr(features)
    reply = await raw.auth_plain(jid.split("@")[0], pw)
    assert reply.tag == q(NS_SASL, "failure"), tostr(reply)
    await raw.close()
    c = await clients.login(srv, jid, pw, mech="SCRAM-SHA-1")
    await c.barrier()


async def test_require_tls_false(server_factory):
    # Without required TLS, SCRAM works in the clear, but PLAIN is never
    # offered or accepted without TLS (specs/config.md).
    srv = server_factory({"c2s": {"require_tls": False}})
    jid, pw = srv.add_user()
    user = jid.split("@")[0]
    raw = await RawStream.connect(srv.host, srv.port)
    features = await raw.open_stream()
    assert features.find(q(NS_TLS, "starttls")) is not None, "STARTTLS still offered"
    assert not starttls_required(features), tostr(features)
    assert "PLAIN" not in mechanisms(features), tostr(features)
    reply = await raw.auth_plain(user, pw)
    assert reply.tag == q(NS_SASL, "failure"), tostr(reply)
    reply = await raw.auth_scram(user, pw, "sha256")
    assert reply.tag == q(NS_SASL, "success"), tostr(reply)
    await raw.open_stream()
    assert (await raw.bind("clear")) == f"{jid}/clear"
    await raw.close()


async def test_guest_domain_disabled(server_factory):
    srv = server_factory({"server": {"guest_domain": ""}})
    raw = await RawStream.connect(srv.host, srv.port)
    await raw.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                   "xmlns:stream='http://etherx.jabber.org/streams' to='guest.localhost' version='1.0'>")
    cond, _ = await raw.expect_stream_error()
    assert cond == "host-unknown", cond


async def test_to_may_not_change_after_auth(server, account):
    # specs/c2s.md: after authentication the stream's 'to' may not change.
    jid, pw = account
    raw = await RawStream.connect(server.host, server.port)
    await raw.open_stream()
    await raw.starttls()
    reply = await raw.auth_plain(jid.split("@")[0], pw)
    assert reply.tag == q(NS_SASL, "success"), tostr(reply)
    raw._reset_parser()
    await raw.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                   f"xmlns:stream='http://etherx.jabber.org/streams' to='{server.guest_domain}' version='1.0'>")
    cond, _ = await raw.expect_stream_error()
    assert "<bind" not in raw.received_text().split("<success")[-1], raw.received_text()


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
