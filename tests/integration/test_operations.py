"""Operating a running onaird: SIGHUP reloads what can change at run time
(and refuses a broken file without stopping), idle streams give back their
parser memory and still work afterwards, and secrets never reach the log."""
import os
import signal

import clients
from clients import health, wait_for
from harness import render_config
from rawxmpp import RawStream


async def test_sighup_applies_new_limits(server_factory):
    srv = server_factory({"limits": {"max_stanza_bytes": 4096}})
    (ja, pa) = srv.add_user()
    big = "x" * 8000

    raw = await RawStream.connect(srv.host, srv.port)
    full = await raw.login(ja.split("@")[0], pa, resource="before")
    await raw.send(f"<message to='{full}'><body>{big}</body></message>")
    cond, _ = await raw.expect_stream_error()
    assert cond == "policy-violation"

    srv.groups["limits"]["max_stanza_bytes"] = 65536
    srv.write_config()
    os.kill(srv.proc.pid, signal.SIGHUP)
    await wait_for(lambda: "configuration reloaded" in srv.stderr_text(), what="the reload log line")

    raw = await RawStream.connect(srv.host, srv.port)
    full = await raw.login(ja.split("@")[0], pa, resource="after")
    await raw.send(f"<message to='{full}' id='big'><body>{big}</body></message>")
    el = await raw.next()
    assert el.get("id") == "big" and el.find("{jabber:client}body").text == big
    await raw.close()


async def test_sighup_with_a_broken_file_keeps_running(server_factory):
    srv = server_factory()
    (ja, pa) = srv.add_user()
    srv.write_config(render_config(srv.groups) + "limits = { no_such_key = 1; };\n")
    os.kill(srv.proc.pid, signal.SIGHUP)
    await wait_for(lambda: "reload refused" in srv.stderr_text(), what="the refusal log line")
    assert "no_such_key" in srv.stderr_text()
    srv.assert_alive()
    c = await clients.login(srv, ja, pa)
    await c.roundtrip(c)
    srv.write_config()  # restore, so the final stop is clean


async def test_idle_streams_release_parser_memory_and_keep_working(server_factory):
    srv = server_factory({"c2s": {"idle_release_s": 1}})
    (ja, pa), (jb, pb) = srv.add_user(), srv.add_user()
    a = await clients.login(srv, ja, pa)
    b = await clients.login(srv, jb, pb)
    before = int(health(srv)["parsers_released"])
    await wait_for(lambda: int(health(srv)["parsers_released"]) >= before + 2, timeout=10,
                   what="both idle streams to release their parsers")
    # The released parsers rebuild on the next input: stanzas still flow both ways.
    a.send_message(mto=b.boundjid.full, mbody="after release", mtype="chat")
    await b.wait_message(lambda m: m["body"] == "after release")
    b.send_message(mto=a.boundjid.full, mbody="and back", mtype="chat")
    await a.wait_message(lambda m: m["body"] == "and back")


async def test_secrets_never_reach_the_log(server_factory):
    srv = server_factory({"server": {"log_level": "debug"}})
    secret = "Zq9-very-secret-pw"
    srv.add_user("carol", secret)
    c = await clients.login(srv, "carol@localhost", secret)
    raw = await RawStream.connect(srv.host, srv.port)
    await raw.login("carol", secret, resource="plain")  # SASL PLAIN over TLS
    await raw.close()
    srv.ctl("account", "passwd", "carol", input="Another-secret-77\n")
    log = srv.stderr_text()
    assert "carol" in log  # the log does name the account
    for s in (secret, "Another-secret-77"):
        assert s not in log
