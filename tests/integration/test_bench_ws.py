"""onair-bench (tests/bench, README "WebSocket transport") over XMPP over
WebSocket against the real onaird, in seconds: the tool's RFC 7395 transport
(HTTP upgrade with the xmpp subprotocol, libwslay framing, <open/>/<close/>)
and its mixed runs, where some connections use WebSocket and the others TCP.
Logins, one-to-one messages with half of each role on each transport, and a
chat room of WebSocket and TCP occupants at a paced rate, timed per
transport with nothing lost; and the refusals the tool must report (a wrong
path, a wrong password) rather than count as logins.  The benchmark's
figures are only worth something if these hold."""
import asyncio
import json
import os
import subprocess

import pytest

from clients import health, wait_for
from harness import BUILD_DIR
from muc_client import book_live

SERVER_CONFIG = {
    "c2s": {"require_tls": False},  # SCRAM over ws:// and plaintext TCP, as the benchmarks run
    "channels": [{"id": "main", "name": "Main stage", "capacity": 1000, "bandwidth_kbps": 2000,
                  "price_per_hour": 0}],
    "reservation": {"slot_s": 60},
    "schedule": {"reconfirm_before_s": 0, "room_open_before_s": 7 * 86400},
    "muc": {"rate_per_s": 1000, "rate_burst": 1000},
}

BENCH = BUILD_DIR / "tests" / "bench" / "onair-bench"
PASSWORD = "bench-secret"
ACCOUNTS = 40


@pytest.fixture(scope="module")
def tool():
    if BENCH.is_file() and os.access(BENCH, os.X_OK):
        return str(BENCH)
    if not os.environ.get("ONAIR_BUILD_DIR"):
        pytest.skip(f"{BENCH} is not built")
    pytest.fail(f"{BENCH} is not built: tests/setup.sh installs libwslay-dev, which the tool needs")


@pytest.fixture(scope="module")
def accounts(module_server):
    module_server.ctl("account", "bulk-add", "bench", str(ACCOUNTS), input=PASSWORD + "\n")
    return ACCOUNTS


def run(tool, server, *args, expect_ok=True):
    """Runs the tool against server (bounded); returns its JSON line."""
    cmd = [tool, *args, "--port", str(server.port), "--domain", server.domain, "--prefix", "bench",
           "--password", PASSWORD, "--quiet", "--timeout", "10", "--setup-timeout", "30"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON line from {' '.join(cmd)}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    result = json.loads(lines[-1])
    if expect_ok:
        assert r.returncode == 0 and "first_error" not in result, result
    return result


def ws(server, share=None):
    args = ["--ws", "/xmpp-websocket", "--ws-port", str(server.http_port)]
    return args + (["--ws-share", share] if share else [])


def test_logins_over_websocket(server, tool, accounts):
    errors = int(health(server)["stream_errors"])
    res = run(tool, server, "login", "-n", "30", "-c", "10", "--users", "10", *ws(server))
    assert res["transport"] == "ws" and res["ws_conns"] == 30 and res["ws_ready"] == 30
    assert res["logins"] == 30 and res["failures"] == 0
    assert res["ws_samples"] == 30 and res["tcp_samples"] == 0 and res["ws_p99_ms"] > 0
    # every login ended with <close/> and the closing handshake: no stream
    # error on the server's side, and no session left
    asyncio.run(wait_for(lambda: health(server)["sessions"] == "0", what="the sessions to end"))
    assert int(health(server)["stream_errors"]) == errors


def test_messages_between_transports(server, tool, accounts):
    res = run(tool, server, "msgs", "--pairs", "8", "--rate", "400", "--duration", "1", *ws(server, "0.5"))
    assert res["transport"] == "mixed" and res["ws_conns"] == 8 and res["tcp_conns"] == 8
    assert res["ws_ready"] == 8 and res["pairs"] == 8
    assert res["lost"] == 0 and res["out_of_order"] == 0 and res["received"] == res["sent"] > 0
    # half of the receivers on each transport
    assert res["ws_samples"] > 0 and res["tcp_samples"] > 0
    assert res["ws_samples"] + res["tcp_samples"] == res["received"]


def test_mixed_room_paced(server, tool, accounts):
    live = book_live(server, channel="main")
    res = run(tool, server, "muc-fanout", "-n", "30", "--senders", "2", "--rate", "20", "--duration", "1",
              "--sample", "9", "--rcvbuf", "131072", "--room", str(live.room), *ws(server, "20"))
    assert res["occupants"] == 30 and res["ws_occupants"] == 20 and res["tcp_occupants"] == 10
    # the timing occupants are split in proportion: 6 over WebSocket, 3 over TCP (plus senders)
    assert res["ws_timed_receivers"] >= 6 and res["tcp_timed_receivers"] >= 3
    assert res["sent"] == 20 and res["lost"] == 0 and res["received"] == 20 * 30
    assert res["ws_samples"] > 0 and res["tcp_samples"] > 0


def test_refusals_are_failures(server, tool, accounts):
    wrong_path = run(tool, server, "login", "-n", "1", "-c", "1", "--ws", "/nowhere", "--ws-port",
                     str(server.http_port), expect_ok=False)
    assert wrong_path["logins"] == 0 and wrong_path["exit"] != 0
    assert "WebSocket upgrade refused: HTTP 404" in wrong_path["first_error"]
    cmd_pw = ["--password", "not-the-password"]
    bad = subprocess.run([tool, "login", "-n", "1", "-c", "1", *ws(server), "--port", str(server.port),
                          "--domain", server.domain, "--prefix", "bench", *cmd_pw, "--quiet", "--timeout", "10"],
                         capture_output=True, text=True, timeout=60)
    res = json.loads(bad.stdout.splitlines()[-1])
    assert res["logins"] == 0 and bad.returncode != 0
    assert "SASL failure: not-authorized" in res["first_error"]
