"""Configuration errors (specs/config.md): onaird must refuse to start, fast,
with "<file>:<line>: <key>: <problem>" on stderr.  Plus the documented
handling of relative paths and SIGHUP."""
import asyncio
import re
import signal
import subprocess
import time

import pytest

import clients
from harness import ONAIRD, binary_or_fail, free_ports
from rawxmpp import RawStream

MARK = "# <-- the error"


def config_lines(tmp_path, bad_group, bad_line, extra_tls=None):
    """A complete, otherwise valid config (free ports, private data dir) with
    bad_line inside bad_group; returns (text, line number of bad_line)."""
    port, tls_port = free_ports(2)
    groups = {
        "server": ['data_dir = "data";', 'domain = "localhost";'],
        "tls": extra_tls if extra_tls is not None else ['generate = true;'],
        "c2s": ['listen = ["127.0.0.1"];', f"port = {port};", f"direct_tls_port = {tls_port};"],
    }
    lines = ["# onaird test config"]
    lineno = None
    for g, body in list(groups.items()) + ([(bad_group, [])] if bad_group not in groups else []):
        lines.append(f"{g} = {{")
        for entry in body:
            lines.append("  " + entry)
        if g == bad_group:
            lines.append("  " + bad_line + "  " + MARK)
            lineno = len(lines)
        lines.append("};")
    return "\n".join(lines) + "\n", lineno


def run_onaird(tmp_path, text, timeout=10):
    path = tmp_path / "onaird.conf"
    path.write_text(text)
    t0 = time.monotonic()
    p = subprocess.Popen([binary_or_fail(ONAIRD, "onaird"), "-c", str(path)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=10)
        pytest.fail(f"onaird kept running with a bad config:\n{text}\nstderr:\n{err}")
    return p.returncode, out + err, time.monotonic() - t0, path


def assert_config_error(tmp_path, text, key, line):
    rc, err, elapsed, path = run_onaird(tmp_path, text)
    assert rc != 0, f"onaird exited 0 with a bad config; output:\n{err}"
    assert rc > 0, f"onaird died of signal {-rc} instead of exiting with an error:\n{err}"
    assert elapsed < 5, f"took {elapsed:.1f}s to reject the config"
    assert "AddressSanitizer" not in err and "runtime error:" not in err, err
    want = re.compile(re.escape(path.name) + r":" + (str(line) if line else r"\d+")
                      + r": " + re.escape(key) + r": \S")
    assert want.search(err), f"expected '{path.name}:{line}: {key}: <problem>' in stderr:\n{err}"
    return err


CASES = {
    # id: (group, bad line, key)
    "unknown-key": ("server", 'colour = "blue";', "server.colour"),
    "unknown-key-c2s": ("c2s", "max_conections = 10;", "c2s.max_conections"),
    "wrong-type-string-for-int": ("c2s", 'auth_timeout_s = "30";', "c2s.auth_timeout_s"),
    "wrong-type-int-for-string": ("server", "log_level = 3;", "server.log_level"),
    "wrong-type-string-for-bool": ("c2s", 'require_tls = "yes";', "c2s.require_tls"),
    "negative-limit": ("limits", "max_depth = -1;", "limits.max_depth"),
    "bad-enum": ("server", 'log_level = "loud";', "server.log_level"),
    "wrong-type-group": ("store", 'map_size_mb = "big";', "store.map_size_mb"),
    "unknown-timezone": ("reservation", 'timezone = "Mars/Olympus";', "reservation.timezone"),
    "slot-not-dividing-a-day": ("reservation", "slot_s = 7;", "reservation.slot_s"),
    "bad-currency": ("reservation", 'currency = "yen";', "reservation.currency"),
    "bad-page-url": ("reservation", 'page_url = "ftp://x/";', "reservation.page_url"),
    "negative-deadline": ("schedule", "reconfirm_before_s = -5;", "schedule.reconfirm_before_s"),
    "bad-muc-domain": ("muc", 'domain = "rooms@localhost";', "muc.domain"),
    "bad-websocket-path": ("http", 'xmpp_websocket_path = "no-slash";', "http.xmpp_websocket_path"),
    "websocket-path-with-query": ("http", 'xmpp_websocket_path = "/ws?x=1";', "http.xmpp_websocket_path"),
    "bad-public-url": ("http", 'public_url = "chat.example.com";', "http.public_url"),
    "public-url-without-host": ("http", 'public_url = "https:///x";', "http.public_url"),
    "http-tls-not-bool": ("http", 'tls = "on";', "http.tls"),
    "media-token-ttl-zero": ("media", "token_ttl_s = 0;", "media.token_ttl_s"),
    "media-websocket-queue-too-small": ("media", "websocket_queue_bytes = 1000;", "media.websocket_queue_bytes"),
}

CHANNEL_CASES = {
    # id: (channels text, key, line of the error counted from the channels line)
    "wrong-type": ('  { id = "a"; name = "A"; capacity = "many"; bandwidth_kbps = 1; }', "channels[0].capacity", 1),
    "unknown-key": ('  { id = "a"; name = "A"; capacity = 1; bandwidth_kbps = 1; colour = "red"; }',
                    "channels[0].colour", 1),
    "missing-name": ('  { id = "a"; capacity = 1; bandwidth_kbps = 1; }', "channels[0].name", 1),
    "duplicate": ('  { id = "a"; name = "A"; capacity = 1; bandwidth_kbps = 1; },\n'
                  '  { id = "a"; name = "B"; capacity = 1; bandwidth_kbps = 1; }', "channels[1].id", 2),
    "bad-id": ('  { id = "Not Valid"; name = "A"; capacity = 1; bandwidth_kbps = 1; }', "channels[0].id", 1),
    "out-of-range": ('  { id = "a"; name = "A"; capacity = 0; bandwidth_kbps = 1; }', "channels[0].capacity", 1),
}


@pytest.mark.parametrize("case", sorted(CHANNEL_CASES))
def test_channel_config_error(tmp_path, case):
    body, key, offset = CHANNEL_CASES[case]
    text, _ = config_lines(tmp_path, "server", 'log_level = "info";')
    text += "channels = (\n" + body + "\n);\n"
    line = text.splitlines().index("channels = (") + 1 + offset
    assert_config_error(tmp_path, text, key, line)


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_error(tmp_path, case):
    group, bad, key = CASES[case]
    text, line = config_lines(tmp_path, group, bad)
    assert_config_error(tmp_path, text, key, line)


def test_unknown_group(tmp_path):
    text, _ = config_lines(tmp_path, "server", 'log_level = "info";')
    text += "nosuchgroup = {\n  a = 1;\n};\n"
    line = text.splitlines().index("nosuchgroup = {") + 1
    assert_config_error(tmp_path, text, "nosuchgroup", line)


def test_port_out_of_range(tmp_path):
    text, _ = config_lines(tmp_path, "server", 'log_level = "info";')
    text = re.sub(r"\n  port = \d+;", "\n  port = 70000;", text)
    line = text.splitlines().index("  port = 70000;") + 1
    assert_config_error(tmp_path, text, "c2s.port", line)


def test_missing_certificate(tmp_path):
    tls = ['certificate = "certs/missing.crt";', 'key = "certs/missing.key";', "generate = false;"]
    text, _ = config_lines(tmp_path, "server", 'log_level = "info";', extra_tls=tls)
    line = text.splitlines().index('  certificate = "certs/missing.crt";') + 1
    err = assert_config_error(tmp_path, text, "tls.certificate", line)
    assert "missing.crt" in err or "No such file" in err or "not" in err.lower(), err


def test_syntax_error(tmp_path):
    text, _ = config_lines(tmp_path, "server", 'log_level = "info";')
    text += "broken = {\n  a = ;\n};\n"
    rc, err, elapsed, path = run_onaird(tmp_path, text)
    assert rc > 0 and elapsed < 5, err
    line = text.splitlines().index("  a = ;") + 1
    assert re.search(re.escape(path.name) + rf":{line}:", err), err


def test_missing_config_file(tmp_path):
    p = subprocess.run([binary_or_fail(ONAIRD, "onaird"), "-c", str(tmp_path / "nope.conf")],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode > 0
    assert "nope.conf" in p.stderr, p.stderr


# -- valid configs ----------------------------------------------------------------

def test_relative_paths_resolve_against_config_dir(server_factory):
    srv = server_factory()  # started with cwd != the config's directory
    assert (srv.root / "data").is_dir(), "data_dir not created next to the config file"
    assert (srv.root / "certs" / "onair.crt").is_file(), "certificate not generated next to the config"
    assert (srv.root / "certs" / "onair.key").is_file()
    assert not (srv.cwd / "data").exists() and not (srv.cwd / "certs").exists(), \
        "relative paths resolved against the working directory"


def test_generated_key_is_private(server_factory):
    srv = server_factory()
    mode = (srv.root / "certs" / "onair.key").stat().st_mode & 0o777
    assert mode & 0o077 == 0, f"generated private key has mode {oct(mode)}"


def test_admin_socket_mode(server_factory):
    srv = server_factory()
    mode = srv.admin_socket.stat().st_mode & 0o777
    assert mode == 0o600, f"admin socket mode {oct(mode)}, specs/config.md says 0600"


async def test_starttls_port_zero_direct_tls_only(server_factory):
    srv = server_factory({"c2s": {"port": 0}})
    jid, pw = srv.add_user()
    c = await clients.login(srv, jid, pw, direct_tls=True)
    await c.roundtrip()


async def test_sighup_applies_new_limits(server_factory):
    srv = server_factory()
    jid, pw = srv.add_user()
    user = jid.split("@")[0]
    w = await clients.login(srv, jid, pw)
    raw = await RawStream.connect(srv.host, srv.port)
    await raw.login(user, pw, resource="before")
    big = "b" * 20000
    await raw.send(f"<message to='{w.boundjid.full}' type='chat'><body>{big}</body></message>")
    await w.wait_message(lambda m: m["body"] == big)
    srv.groups["limits"] = {"max_stanza_bytes": 10000}
    srv.write_config()
    srv.proc.send_signal(signal.SIGHUP)
    # Applied to new streams; the reload is asynchronous, so retry (bounded).
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        r = await RawStream.connect(srv.host, srv.port)
        await r.login(user, pw)
        await r.send(f"<message to='{w.boundjid.full}' type='chat'><body>{big}</body></message>")
        try:
            cond, _ = await r.expect_stream_error(timeout=2)
            assert cond == "policy-violation", cond
            break
        except (AssertionError, asyncio.TimeoutError):
            if loop.time() > deadline:
                raise
            await w.wait_message(lambda m: m["body"] == big)
        finally:
            await r.close()
    assert srv.running()
    await w.roundtrip()


async def test_sighup_with_broken_config_keeps_running(server_factory):
    srv = server_factory()
    jid, pw = srv.add_user()
    c = await clients.login(srv, jid, pw)
    srv.write_config("server = { this is not libconfig ;;; \n")
    srv.proc.send_signal(signal.SIGHUP)
    await c.roundtrip()
    await c.barrier()
    assert srv.running(), "onaird exited on SIGHUP with an unreadable config"
    c2 = await clients.login(srv, jid, pw)
    await c2.roundtrip(c)
    srv.write_config()  # restore so teardown's stop/restart logic sees a sane file
