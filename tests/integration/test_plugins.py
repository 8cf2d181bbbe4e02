"""Loadable plugins (specs/plugin-api.md) against the real onaird: the example
plugin (its IQ with its configured greeting and a store counter that
survives a restart, thread-pool work, reservation events counted when a
reservation is booked over HTTP, its ad-hoc command, its timer, its stanza
filters: drop, rewrite, stamp on the way out); the refused plugins (ABI
mismatch, failing init, no entry point, missing file, bad settings) with
the server running on; SIGHUP reloads; the host functions of plugin ABI
1.1 through the test plugin probe (fd_watch / fd_unwatch, reservation_read,
account_email, service_provide / service_lookup, a watch left behind at
unload); and the example built out of tree against the header installed by
`cmake --install`.

Every test server gets its own plugin folder of symbolic links to the
built plugins, so what is loaded never depends on the machine."""
import asyncio
import os
import pathlib
import re
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

import clients
from adhoc_client import health, run, run_error
from adhoc_client import login as adhoc_login
from booking import CHANNELS, Days, http_account, http_book, http_reconfirm, iso
from harness import BUILD_DIR, REPO
from rawxmpp import NS_CLIENT, RawStream, q
from webapi import login as http_login
from webapi import request

NS = "urn:onair:example"
GREETING = "hi from the tests"


def plugin_dir(root, names):
    """A folder with <name> -> the built plugin's folder, for each name that exists."""
    d = pathlib.Path(root) / "plugins"
    d.mkdir(parents=True, exist_ok=True)
    for n in names:
        for base in (BUILD_DIR / "plugins", BUILD_DIR / "test-plugins"):
            if (base / n / f"{n}.so").is_file():
                link = d / n
                if not link.exists():
                    link.symlink_to(base / n)
                break
    return d


_MODULE_DIR = plugin_dir(pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / f"onair-plugins-{os.getpid()}",
                         ["example"])

EXAMPLE = {"greeting": GREETING, "drop_word": "forbidden", "rewrite_from": "ping-me", "rewrite_to": "pong-you",
           "stamp_out": True, "tick_ms": 50}
SERVER_CONFIG = {
    "channels": CHANNELS,
    "reservation": {"timezone": "UTC", "slot_s": 1800, "max_duration_s": 4 * 3600},
    "schedule": {"reconfirm_before_s": 3600},
    "plugins": {"dir": str(_MODULE_DIR), "load": ["example"]},
    "plugin": {"example": EXAMPLE},
}


def private_config(root, load, example=None, **groups):
    cfg = {"plugins": {"dir": str(plugin_dir(root, load)), "load": load}}
    if example is not None:
        cfg["plugin"] = {"example": example}
    cfg.update(groups)
    return cfg


async def wait_log(server, pattern, timeout=10.0, after=0):
    """Waits until the server's stderr (from offset `after`) matches pattern; returns the match."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        m = rx.search(server.stderr_text()[after:])
        if m:
            return m
        if time.monotonic() > deadline:
            raise AssertionError(f"no log line matching {pattern!r} within {timeout}s\n{server.stderr_tail()}")
        await asyncio.sleep(0.05)


def wait_log_sync(server, pattern, timeout=10.0, after=0):
    return asyncio.run(wait_log(server, pattern, timeout, after))


async def raw_login(server):
    user, pw = server.add_user()
    raw = await RawStream.connect(server.host, server.port)
    await raw.login(user.split("@")[0], pw)
    return raw


async def example_query(raw):
    el = await raw.iq(f"<query xmlns='{NS}'/>")
    assert el.get("type") == "result", ET.tostring(el, encoding="unicode")
    query = el.find(q(NS, "query"))
    assert query is not None, ET.tostring(el, encoding="unicode")
    return {c.tag.split("}", 1)[1]: c.text or "" for c in query}


async def sighup(server):
    mark = len(server.stderr_text())
    server.proc.send_signal(signal.SIGHUP)
    await wait_log(server, r"configuration reloaded", after=mark)
    return mark


# ---- the example plugin ----------------------------------------------------


async def test_example_loads_and_answers_its_iq(server):
    assert health(server)["plugins"] == "example"
    raw = await raw_login(server)
    try:
        first = await example_query(raw)
        second = await example_query(raw)
        assert first["greeting"] == GREETING  # its configured value
        assert int(second["count"]) == int(first["count"]) + 1
        # Its namespace is announced and the other IQs still work.
        info = await raw.iq("<query xmlns='http://jabber.org/protocol/disco#info'/>")
        features = [f.get("var") for f in info.iter("{http://jabber.org/protocol/disco#info}feature")]
        assert NS in features
    finally:
        await raw.close()


async def test_work_on_the_thread_pool_answers_later(server):
    raw = await raw_login(server)
    try:
        el = await raw.iq(f"<query xmlns='{NS}'><work>onair &amp; more</work></query>", type_="set")
        assert el.get("type") == "result", ET.tostring(el, encoding="unicode")
        assert el.findtext(f"{q(NS, 'query')}/{q(NS, 'result')}") == "erom & riano"
        bad = await raw.iq(f"<query xmlns='{NS}'/>", type_="set")
        assert bad.get("type") == "error"
        assert bad.find(f"{q(NS_CLIENT, 'error')}/{{urn:ietf:params:xml:ns:xmpp-stanzas}}bad-request") is not None
    finally:
        await raw.close()


async def test_timer_fires(server):
    await wait_log(server, r"plugin example: timer fired \(every 50 ms\)")
    raw = await raw_login(server)
    try:
        a = int((await example_query(raw))["ticks"])
        await asyncio.sleep(0.3)
        b = int((await example_query(raw))["ticks"])
        assert a > 0 and b > a
    finally:
        await raw.close()


async def test_reservation_events_are_counted(server):
    raw = await raw_login(server)
    try:
        before = await example_query(raw)
        user, pw = server.add_user()
        tok = http_login(server, user.split("@")[0], pw)
        start, end = Days.take(1)
        r = request(server, "POST", "/api/v1/reservations",
                    {"channel": "main", "start": iso(start), "end": iso(end), "level": "public", "title": "Plugin",
                     "genre": "talk", "show_email": False, "show_url": False, "broadcast_password": "cast-secret"},
                    token=tok)
        assert r.status == 201, r
        rid = r.json["reservation"]["id"]
        await wait_log(server, rf"plugin example: res.booked: reservation {rid} on main")
        after = await example_query(raw)
        assert int(after["booked"]) == int(before["booked"]) + 1
        assert request(server, "POST", f"/api/v1/reservations/{rid}/reconfirm", token=tok).status == 200
        r = request(server, "DELETE", f"/api/v1/reservations/{rid}", token=tok)
        assert r.status in (200, 204), r
        await wait_log(server, rf"res.cancelled: reservation {rid}")
        last = await example_query(raw)
        assert int(last["reconfirmed"]) == int(before["reconfirmed"]) + 1
        assert int(last["cancelled"]) == int(before["cancelled"]) + 1
    finally:
        await raw.close()


async def test_adhoc_command(server):
    c = await adhoc_login(server)
    form = await run(c, server, "example-greet")
    assert form["command"]["status"] == "executing"
    fields = form["command"]["form"].get_fields()
    assert fields["name"]["required"] and fields["shout"]["type"] == "boolean"
    sid = form["command"]["sessionid"]
    done = await run(c, server, "example-greet", action="complete", sessionid=sid,
                     values={"name": "Alice", "shout": "true"})
    assert done["command"]["status"] == "completed"
    assert done["command"]["notes"] == [("info", f"{GREETING}, Alice!")]
    values = done["command"]["form"].get_values()
    assert set(values) == {"count", "booked", "ticks"}
    # A missing required field: the session is kept for another try.
    form = await run(c, server, "example-greet")
    err = await run_error(c, server, "example-greet", action="complete", sessionid=form["command"]["sessionid"],
                          values={"shout": "false"})
    assert err[:3] == ("modify", "bad-request", "bad-payload") and err[3] == "name: required"


async def test_stanza_filter_drops_rewrites_and_stamps(server):
    ja, pa = server.add_user()
    jb, pb = server.add_user()
    a = await clients.login(server, ja, pa)
    b = await clients.login(server, jb, pb)
    raw = await raw_login(server)
    try:
        dropped_before = int((await example_query(raw))["dropped"])
        a.send_message(mto=b.boundjid.full, mbody="this is forbidden here", mtype="chat")
        a.send_message(mto=b.boundjid.full, mbody="ping-me", mtype="chat")
        a.send_message(mto=b.boundjid.full, mbody="plain words", mtype="chat")
        plain = await b.wait_message(lambda m: m["body"] == "plain words")
        rewritten = await b.wait_message(lambda m: m["body"] == "pong-you")
        # Messages arrive in order: the dropped one would have come first.
        assert not [m for m in b.messages.take_all() if "forbidden" in m["body"]]
        for m in (plain, rewritten):
            stamp = m.xml.find(q(NS, "stamp"))
            assert stamp is not None and int(stamp.text) > 0, str(m)
        assert int((await example_query(raw))["dropped"]) == dropped_before + 1
        await wait_log(server, rf"plugin example: dropped a message from {re.escape(a.boundjid.full)}")
    finally:
        await raw.close()


async def test_offline_messages_pass_the_out_hooks(server):
    ja, pa = server.add_user()
    jb, pb = server.add_user()
    a = await clients.login(server, ja, pa)
    a.send_message(mto=jb, mbody="while you were away", mtype="chat")
    await a.barrier()
    b = await clients.login(server, jb, pb)
    m = await b.wait_message(lambda m: m["body"] == "while you were away")
    assert m.xml.find(q(NS, "stamp")) is not None, str(m)
    assert m.xml.find("{urn:xmpp:delay}delay") is not None, str(m)


async def test_store_counter_survives_a_restart(server_factory, tmp_path):
    srv = server_factory(private_config(tmp_path, ["example"], {"greeting": "again"}))
    raw = await raw_login(srv)
    assert (await example_query(raw))["count"] == "1"
    assert (await example_query(raw))["count"] == "2"
    await raw.close()
    srv.restart()
    raw = await raw_login(srv)
    try:
        assert (await example_query(raw))["count"] == "3"
    finally:
        await raw.close()


# ---- plugins that are refused: the server runs on ---------------------------


async def test_abi_mismatch_is_refused(server_factory, tmp_path):
    srv = server_factory(private_config(tmp_path, ["abi_mismatch", "example"]))
    await wait_log(srv, r'plugin: "abi_mismatch" refused and not loaded: ABI mismatch: built for plugin ABI 99, '
                        r'this server has plugin ABI 1')
    assert health(srv)["plugins"] == "example"
    raw = await raw_login(srv)
    try:
        assert (await example_query(raw))["greeting"] == "hello"  # the default
    finally:
        await raw.close()


async def test_failing_init_is_skipped_and_cleaned_up(server_factory, tmp_path):
    srv = server_factory(private_config(tmp_path, ["init_fails"]))
    await wait_log(srv, r'plugin init_fails: failing on purpose')
    await wait_log(srv, r'plugin: "init_fails" not loaded: its init failed \(7\)')
    assert "plugins" not in health(srv)
    # What its init registered is gone: its IQ, its hook, its command, its timer
    # (each would abort the server if it were called).
    raw = await raw_login(srv)
    try:
        el = await raw.iq("<query xmlns='urn:onair:test:init-fails'/>")
        assert el.get("type") == "error"
        assert el.find(f"{q(NS_CLIENT, 'error')}/{{urn:ietf:params:xml:ns:xmpp-stanzas}}service-unavailable") \
            is not None
        await raw.send(f"<message to='{srv.domain}'><body>x</body></message>")
        await asyncio.sleep(0.2)
        await example_query_absent(raw)
    finally:
        await raw.close()
    c = await adhoc_login(srv)
    nodes = await asyncio.wait_for(c["xep_0030"].get_items(jid=srv.domain, node="http://jabber.org/protocol/commands"),
                                   10)
    assert "init-fails" not in [n for _j, n, _name in nodes["disco_items"]["items"]]


async def example_query_absent(raw):
    el = await raw.iq(f"<query xmlns='{NS}'/>")
    assert el.get("type") == "error", ET.tostring(el, encoding="unicode")


async def test_missing_and_broken_plugins_are_reported(server_factory, tmp_path):
    srv = server_factory(private_config(tmp_path, ["ghost", "no_entry", "example"]))
    line = srv.config_path.read_text().splitlines().index('  load = ["ghost", "no_entry", "example"];') + 1
    await wait_log(srv, rf'{re.escape(str(srv.config_path))}:{line}: plugins.load: "ghost" not loaded: '
                        r'.*/ghost/ghost.so: no such plugin file')
    await wait_log(srv, r'plugin: "no_entry" not loaded: .*no_entry.so has no onair_plugin_entry function')
    assert health(srv)["plugins"] == "example"


async def test_bad_plugin_settings_skip_the_plugin(server_factory, tmp_path):
    srv = server_factory(private_config(tmp_path, ["example"], {"greeting": "x", "gretting": "typo"}))
    text = srv.config_path.read_text().splitlines()
    line = next(i + 1 for i, t in enumerate(text) if "gretting" in t)
    await wait_log(srv, rf'plugin: "example" not loaded: {re.escape(str(srv.config_path))}:{line}: '
                        r'plugin.example.gretting: unknown setting \(example declares: greeting, drop_word,')
    assert "plugins" not in health(srv)
    for bad in ("fast", 5):  # the wrong type, out of range
        srv.stop()
        srv.groups["plugin"] = {"example": {"tick_ms": bad}}
        srv.write_config()
        mark = len(srv.stderr_text())
        srv.start()
        await wait_log(srv, r'plugin.example.tick_ms: expected an integer between 10 and 3600000', after=mark)
        raw = await raw_login(srv)
        try:
            await example_query_absent(raw)
        finally:
            await raw.close()


def test_bad_plugin_names_stop_the_server(tmp_path):
    from test_config import config_lines, run_onaird
    for bad, problem in (('load = ["Bad-Name"];', r'plugins.load: "Bad-Name" is not a plugin name'),
                         ('load = ["a", "a"];', r'plugins.load: "a" is listed twice'),
                         ('load = "example";', r'plugins.load: expected a list of plugin names'),
                         ('dir = "";', r'plugins.dir: must not be empty')):
        text, line = config_lines(tmp_path, "plugins", bad)
        rc, err = run_onaird(tmp_path, text)[:2]
        assert rc == 2 and re.search(rf"onaird.conf:{line}: {problem}", err), (bad, err)


# ---- SIGHUP -------------------------------------------------------------------


async def test_sighup_reload(server_factory, tmp_path):
    srv = server_factory(private_config(tmp_path, ["example", "init_fails"], {"greeting": "one"}))
    raw = await raw_login(srv)
    try:
        assert (await example_query(raw))["greeting"] == "one"
        # New settings: checked, put in place, the plugin's reload called.
        srv.groups["plugin"]["example"]["greeting"] = "two"
        srv.write_config()
        mark = await sighup(srv)
        await wait_log(srv, r'plugin example: reloaded, greeting "two"', after=mark)
        assert (await example_query(raw))["greeting"] == "two"
        # A plugin that failed is tried again (and fails again); the server runs on.
        await wait_log(srv, r'"init_fails" not loaded: its init failed', after=mark)
        # Wrong settings: the running ones stay.
        srv.groups["plugin"]["example"]["tick_ms"] = 1
        srv.write_config()
        mark = await sighup(srv)
        await wait_log(srv, r'plugin example: reload: keeping the running settings: .*plugin.example.tick_ms: '
                            r'expected an integer between 10 and 3600000', after=mark)
        assert (await example_query(raw))["greeting"] == "two"
        # Removed from plugins.load: unloaded, its IQ gone.
        del srv.groups["plugin"]["example"]["tick_ms"]
        srv.groups["plugins"]["load"] = []
        srv.write_config()
        mark = await sighup(srv)
        await wait_log(srv, r'plugin example: shutting down', after=mark)
        await example_query_absent(raw)
        assert "plugins" not in health(srv)
        # Listed again: loaded again, with its store counter where it was.
        srv.groups["plugins"]["load"] = ["example"]
        srv.groups["plugin"]["example"]["greeting"] = "three"
        srv.write_config()
        mark = await sighup(srv)
        await wait_log(srv, r'plugin: loaded example', after=mark)
        again = await example_query(raw)
        assert again["greeting"] == "three" and again["count"] == "4"
    finally:
        await raw.close()


async def test_unload_waits_for_queued_work(server_factory, tmp_path):
    srv = server_factory(private_config(tmp_path, ["slow_work", "example"]))
    await wait_log(srv, r"plugin slow_work: work queued")
    srv.groups["plugins"]["load"] = ["example"]
    srv.write_config()
    mark = await sighup(srv)
    await wait_log(srv, r"plugin slow_work: unloaded; its object stays open until 1 queued work items end",
                   after=mark)
    # The work runs to its end in the still-mapped object; done hears it was cancelled.
    await wait_log(srv, rf"slow_work: done, status -8, result 42", after=mark)
    raw = await raw_login(srv)
    try:
        assert (await example_query(raw))["greeting"] == "hello"
    finally:
        await raw.close()


async def test_shutdown_with_queued_work(server_factory, tmp_path):
    srv = server_factory(private_config(tmp_path, ["slow_work", "example"]))
    await wait_log(srv, r"plugin slow_work: work queued")
    srv.stop()  # exit status 0, no sanitizer report
    text = srv.stderr_text()
    assert "slow_work: done, status -8, result 42" in text
    # Unloaded in the reverse of the load order.
    assert text.index("plugin example: shutting down") < text.index("plugin slow_work: shutting down")


# ---- the host functions of plugin ABI 1.1 (the test plugin probe) ---------------------

NS_PROBE = "urn:onair:test:probe"


async def probe(raw, op, **fields):
    """One IQ get to the probe plugin: the children of its answer as a dict."""
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    el = await raw.iq(f"<query xmlns='{NS_PROBE}'><op>{op}</op>{inner}</query>")
    assert el.get("type") == "result", ET.tostring(el, encoding="unicode")
    return {c.tag.split("}", 1)[1]: c.text or "" for c in el.find(q(NS_PROBE, "query"))}


async def test_host_functions_of_abi_1_1(server_factory, tmp_path):
    srv = server_factory(private_config(tmp_path, ["probe"], **{k: v for k, v in SERVER_CONFIG.items()
                                                                if k in ("channels", "reservation", "schedule")}))
    raw = await raw_login(srv)
    try:
        assert (await probe(raw, "abi"))["abi"] == "1.2"
        # fd_watch / fd_unwatch: refusals, a read, the watch changed to write, unwatched in its callback
        assert (await probe(raw, "fd"))["fd"] == "read,write,unwatched"
        assert (await probe(raw, "fd"))["fd"] == "read,write,unwatched"  # the same fd numbers again
        # service_provide / service_lookup
        assert (await probe(raw, "service"))["service"] == "ok"
        assert (await probe(raw, "mail", to="x@example.com", subject="s", body="b"))["rc"] == "none"
        # account_email
        user, _, tok = http_account(srv, "probe.owner@example.com")
        assert await probe(raw, "email", user=user) == {"len": "23", "email": "probe.owner@example.com"}
        nomail, _, _ = http_account(srv)
        assert await probe(raw, "email", user=nomail) == {"len": "0", "email": ""}
        assert (await probe(raw, "email", user="nosuchuser"))["len"] == "-1"
        # reservation_read: the settings (with the shared password) once reconfirmed
        res, _, _ = http_book(srv, tok, title="Probe <&> live")
        rid = res["id"]
        before = await probe(raw, "reservation", id=rid)
        assert before["rc"] == "0" and before["state"] == "awaiting_reconfirmation" and before["settings"] == "no"
        assert before["title"] == "Probe <&> live" and before["owner"] == user and before["password"] == ""
        settings = http_reconfirm(srv, tok, rid)
        after = await probe(raw, "reservation", id=rid)
        assert after["settings"] == "yes" and after["state"] == "reconfirmed"
        assert after["password"] == "view-secret" and after["page"] == settings["page_url"]
        assert after["room"] == settings["room_jid"]
        assert (await probe(raw, "reservation", id="a" * 26))["rc"] == "-2"
        assert (await probe(raw, "reservation", id="not-an-id"))["rc"] == "-1"
    finally:
        await raw.close()
    assert "view-secret" not in srv.stderr_text()


async def test_watch_left_behind_is_removed_at_unload(server_factory, tmp_path):
    srv = server_factory(private_config(tmp_path, ["probe"]))
    raw = await raw_login(srv)
    try:
        assert (await probe(raw, "keep"))["keep"] == "0"
        srv.groups["plugins"]["load"] = []
        srv.write_config()
        mark = await sighup(srv)
        # Its shutdown closes the peer's end: the watched end turns readable, and
        # the probe aborts if its callback is still called.
        await wait_log(srv, r"plugin probe: shutting down with fd \d+ still watched", after=mark)
        el = await raw.iq(f"<query xmlns='{NS_PROBE}'><op>abi</op></query>")
        assert el.get("type") == "error"
        assert (await raw.iq("<ping xmlns='urn:xmpp:ping'/>")).get("type") == "result"
    finally:
        await raw.close()
    srv.assert_alive()


# ---- out of tree ------------------------------------------------------------------


def test_out_of_tree_build_against_the_installed_header(server_factory, tmp_path):
    prefix = tmp_path / "prefix"
    r = subprocess.run(["cmake", "--install", str(BUILD_DIR), "--prefix", str(prefix)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    header = prefix / "include" / "onair" / "plugin.h"
    for f in (header, prefix / "bin" / "onaird", prefix / "bin" / "onairctl",
              prefix / "lib" / "onair" / "plugins" / "example" / "example.so"):
        assert f.is_file(), f
    # The header needs nothing but the C library's headers.
    includes = re.findall(r"#include\s+<([^>]+)>", header.read_text())
    assert set(includes) <= {"stdarg.h", "stdbool.h", "stddef.h", "stdint.h"}, includes
    # The example alone, copied out of the tree, built with the plain command of the spec.
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(REPO / "plugins" / "example" / "example.c", src / "example.c")
    out = tmp_path / "myplugins" / "example"
    out.mkdir(parents=True)
    cc = shutil.which("cc") or "gcc"
    r = subprocess.run([cc, "-std=c17", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-fvisibility=hidden",
                        f"-I{prefix / 'include'}", "-o", str(out / "example.so"), str(src / "example.c")],
                       capture_output=True, text=True, timeout=120, cwd=src)
    assert r.returncode == 0, r.stderr
    nm = subprocess.run(["nm", "-D", "--defined-only", str(out / "example.so")], capture_output=True, text=True)
    if nm.returncode == 0:
        assert "onair_plugin_entry" in nm.stdout
    srv = server_factory({"plugins": {"dir": str(tmp_path / "myplugins"), "load": ["example"]},
                          "plugin": {"example": {"greeting": "out of tree"}}})

    async def check():
        raw = await raw_login(srv)
        try:
            assert (await example_query(raw))["greeting"] == "out of tree"
        finally:
            await raw.close()
    asyncio.run(check())
    wait_log_sync(srv, rf"plugin: loaded example 1.0 from {re.escape(str(out / 'example.so'))}")
