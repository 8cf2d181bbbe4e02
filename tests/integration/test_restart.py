"""Durability across kill -9 and clean restarts."""
import secrets

import clients
from rawxmpp import RawStream, stream_error_conditions_in


async def test_kill9_keeps_acknowledged_offline_messages(server_factory):
    srv = server_factory()
    (ja, pa), (jb, pb) = srv.add_user(), srv.add_user()
    a = await clients.login(srv, ja, pa)
    bodies = [f"durable {i} {secrets.token_hex(4)}" for i in range(20)]
    for body in bodies:
        a.send_message(mto=jb, mbody=body, mtype="chat")
    # The server handles A's stanzas in order: once the ping is answered,
    # every message before it has been stored.
    await a.barrier()
    srv.kill9()
    await a.wait_disconnected()
    srv.start()
    b = await clients.login(srv, jb, pb)
    got = [await b.wait_message(lambda m: m["body"] in bodies) for _ in bodies]
    assert [m["body"] for m in got] == bodies
    for m in got:
        assert m.xml.find("{urn:xmpp:delay}delay") is not None


async def test_kill9_keeps_accounts_and_rosters(server_factory):
    srv = server_factory()
    (ja, pa), (jb, pb) = srv.add_user(), srv.add_user()
    a = await clients.login(srv, ja, pa)
    b = await clients.login(srv, jb, pb)
    a.send_presence(pto=jb, ptype="subscribe")
    await b.wait_presence(lambda p: p["type"] == "subscribe" and p["from"].bare == ja)
    b.send_presence(pto=ja, ptype="subscribed")
    await a.wait_presence(lambda p: p["type"] == "subscribed" and p["from"].bare == jb)
    await a.barrier()
    await b.barrier()
    # A password change through the admin socket is durable too.
    srv.ctl("account", "passwd", ja.split("@")[0], input="changed-pw\n")
    srv.kill9()
    srv.start()
    a = await clients.login(srv, ja, "changed-pw")
    res = await a.make_iq_get(queryxmlns="jabber:iq:roster").send(timeout=10)
    items = {str(j): v for j, v in res["roster"]["items"].items()}
    assert jb in items, str(res)
    assert items[jb]["subscription"] == "to", str(res)
    b = await clients.login(srv, jb, pb)
    res = await b.make_iq_get(queryxmlns="jabber:iq:roster").send(timeout=10)
    items = {str(j): v for j, v in res["roster"]["items"].items()}
    assert items[ja]["subscription"] == "from", str(res)
    # Presence flows along the restored subscription.
    await a.wait_presence(lambda p: p["from"].full == b.boundjid.full and p["type"] == "available")


async def test_sigterm_with_clients_connected(server_factory):
    # A clean shutdown with live sessions (authenticated, half-open, in TLS)
    # exits 0 and tells the clients.
    srv = server_factory()
    (ja, pa), = [srv.add_user()]
    a = await clients.login(srv, ja, pa)
    raw = await RawStream.connect(srv.host, srv.port)
    await raw.open_stream()
    tls = await RawStream.connect(srv.host, srv.tls_port, tls=True)
    await tls.open_stream()
    stalled = await RawStream.connect(srv.host, srv.port)
    await stalled.send("<?xml version='1.0'?><stream:stream xmlns='jabber:cl")
    srv.stop()  # asserts exit status 0
    await a.wait_disconnected()
    for r in (raw, tls, stalled):
        await r.wait_closed()
    # specs/c2s.md: streams get <system-shutdown/> (RFC 6120 4.9.3.22).
    for r in (raw, tls):
        conds = stream_error_conditions_in(r.received_text())
        assert conds == ["system-shutdown"], r.received_text()
    err = await a.wait_stream_error(timeout=1)
    assert err["condition"] == "system-shutdown", str(err)
    # And it starts again on the same data.
    srv.start()
    a = await clients.login(srv, ja, pa)
    await a.roundtrip()


async def test_clean_restart_keeps_offline_messages(server_factory):
    srv = server_factory()
    (ja, pa), (jb, pb) = srv.add_user(), srv.add_user()
    a = await clients.login(srv, ja, pa)
    a.send_message(mto=jb, mbody="across a clean restart", mtype="chat")
    await a.barrier()
    await a.close()
    srv.restart()
    b = await clients.login(srv, jb, pb)
    await b.wait_message(lambda m: m["body"] == "across a clean restart")
