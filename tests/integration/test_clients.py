"""The command-line clients onair-cast and onair-watch (clients/README.md),
the real binaries built by CMake into the build directory, against a real
onaird: booking in two stages, reconfirming, "my channel", cancelling,
fetching transcripts, their error exits; entering a live's chat room as a
guest or an account, printing what a slixmpp client says, sending a line,
and leaving at the room's close with its reason.  Every client verifies the
server's self-signed certificate with --cafile; every wait is bounded."""
import asyncio
import json
import os
import re
import time

import pytest

import booking
from booking import Days, iso
from harness import BUILD_DIR
from muc_client import book_live, groupchat, join, member, owner
from test_muc_lifecycle import CHANNELS, SLOT, start_after
from test_plugins import plugin_dir

CAST = BUILD_DIR / "onair-cast"
WATCH = BUILD_DIR / "onair-watch"
SERVER_CONFIG = booking.SERVER_CONFIG
WAIT = 15.0


def binary(path):
    if not (path.is_file() and os.access(path, os.X_OK)):
        if not os.environ.get("ONAIR_BUILD_DIR"):
            pytest.skip(f"{path} not built and ONAIR_BUILD_DIR not set")
        pytest.fail(f"{path} missing although ONAIR_BUILD_DIR is set (ONAIR_CLIENTS off? libstrophe-dev?)")
    return str(path)


def client_env(**extra):
    """The environment of a client: none of the ONAIR_* defaults of the
    caller, sanitizer settings kept."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONAIR_")}
    env.setdefault("LSAN_OPTIONS", "use_tls=0")
    env.update(extra)
    return env


class Account:
    """An account of srv with its password in a file (never on the command line)."""

    def __init__(self, srv, tmp_path, jid=None, pw=None):
        if jid is None:
            jid, pw = srv.add_user()
        self.srv, self.jid, self.pw = srv, jid, pw
        self.user = jid.split("@")[0]
        self.pw_file = tmp_path / f"{self.user}.pw"
        self.pw_file.write_text(pw + "\n")

    def conn_args(self, direct_tls=False):
        port = self.srv.tls_port if direct_tls else self.srv.port
        return ["--jid", self.jid, "--password-file", str(self.pw_file), "--server", f"127.0.0.1:{port}",
                "--cafile", str(cafile(self.srv))] + (["--direct-tls"] if direct_tls else [])

    def cast(self, *args, env=None, stdin=None, timeout=60):
        import subprocess
        r = subprocess.run([binary(CAST), *self.conn_args(), *args], capture_output=True, text=True,
                           env=client_env(**(env or {})), input=stdin,
                           stdin=None if stdin is not None else subprocess.DEVNULL,
                           timeout=timeout, start_new_session=True)  # no terminal to ask on
        assert "runtime error" not in r.stderr and "Sanitizer" not in r.stderr, r.stderr
        return r


def cafile(srv):
    return srv.root / "certs" / "onair.crt"


def fields(text):
    """'var: value' lines -> {var: value} (first line of each field)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([a-z_#]+):\s*(.*)$", line)
        if m and m.group(1) not in out:
            out[m.group(1)] = m.group(2).strip()
    return out


def table(text):
    """An aligned table (header line, then rows; cells may hold spaces) -> list of dicts."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    cols = [(m.group(0), m.start()) for m in re.finditer(r"\S+", lines[0])]
    rows = []
    for ln in lines[1:]:
        row = {}
        for i, (name, at) in enumerate(cols):
            end = cols[i + 1][1] if i + 1 < len(cols) else None
            row[name] = ln[at:end].strip()
        rows.append(row)
    return rows


PASSWORDS = {"ONAIR_BROADCAST_PASSWORD": "cast-secret", "ONAIR_SHARED_PASSWORD": "view-secret"}


def book_args(start, end, level="password", title="Evening talk", **more):
    args = ["book", "--channel", "main", "--start", iso(start), "--end", iso(end), "--level", level,
            "--title", title, "--summary", "A short talk", "--friend", "friend@example.com"]
    for k, v in more.items():
        args += [f"--{k.replace('_', '-')}", v]
    return args


# ---- onair-cast: the account's side ----


def test_book_in_two_stages_reconfirm_list_cancel(server, tmp_path):
    a = Account(server, tmp_path)
    start, end = Days.take()
    # --quote: the request shown back with its fee, nothing stored
    r = a.cast(*book_args(start, end), "--quote", env=PASSWORDS)
    assert r.returncode == 0, r.stderr
    shown = fields(r.stdout)
    assert shown["fee"] == "6000 JPY" and shown["title"] == "Evening talk" and shown["shared_password"] == "set"
    assert "cast-secret" not in r.stdout + r.stderr and "view-secret" not in r.stdout + r.stderr
    assert "Not booked" in r.stderr
    r = a.cast("list")
    assert r.returncode == 0 and "no reservations" in r.stdout + r.stderr, r
    # without --yes and without a terminal: nothing booked, usage exit
    r = a.cast(*book_args(start, end), env=PASSWORDS)
    assert r.returncode == 2 and "--yes" in r.stderr, r
    # booked
    r = a.cast(*book_args(start, end), "--yes", env=PASSWORDS)
    assert r.returncode == 0, r.stderr
    done = fields(r.stdout.split("reconfirm_by", 1)[1])  # after the confirmation stage's fields
    rid = done["id"]
    assert re.fullmatch(r"[a-z2-7]{26}", rid) and done["state"] == "awaiting_reconfirmation", r.stdout
    assert done["fee"] == "6000" and done["currency"] == "JPY"
    assert f"owner\t{a.user}\n" in server.ctl("reservation", "show", rid).stdout
    rows = table(a.cast("list").stdout)
    assert [(x["id"], x["state"]) for x in rows] == [(rid, "awaiting_reconfirmation")]
    # reconfirmed: the settings document
    r = a.cast("reconfirm", rid)
    assert r.returncode == 0, r.stderr
    st = fields(r.stdout)
    assert st["id"] == rid and st["shared_password"] == "view-secret" and st["start"] == iso(start)
    assert st["room_jid"] == f"{rid}@live.localhost" and st["ingest_jid"].startswith(rid + "@")
    assert "friend@example.com" in r.stdout
    assert fields(a.cast("settings", rid).stdout) == st
    assert [(x["id"], x["state"]) for x in table(a.cast("list").stdout)] == [(rid, "reconfirmed")]
    # the public schedule lists it
    assert rid in a.cast("schedule").stdout
    # availability shows the slot booked
    r = a.cast("availability", booking.day_of(start))
    assert r.returncode == 0 and f"{iso(start)}/{iso(start + booking.SLOT)} booked" in r.stdout, r.stdout
    # cancelled
    r = a.cast("cancel", rid)
    assert r.returncode == 0 and "cancelled" in r.stdout, r
    assert [(x["id"], x["state"]) for x in table(a.cast("list").stdout)] == [(rid, "cancelled")]


def test_passwords_from_files_and_stdin(server, tmp_path):
    a = Account(server, tmp_path)
    start, end = Days.take()
    (tmp_path / "b").write_text("cast-secret\n")
    (tmp_path / "s").write_text("view-secret\n")
    r = a.cast(*book_args(start, end), "--yes", "--broadcast-password-file", str(tmp_path / "b"),
               "--shared-password-file", str(tmp_path / "s"))
    assert r.returncode == 0, r.stderr
    rid = fields(r.stdout.split("reconfirm_by", 1)[1])["id"]
    # the account password from stdin ("-"), over direct TLS
    import subprocess
    args = [binary(CAST), "--jid", a.jid, "--password-file", "-", "--server", f"127.0.0.1:{server.tls_port}",
            "--direct-tls", "--cafile", str(cafile(server)), "reconfirm", rid]
    r = subprocess.run(args, input=a.pw + "\n", capture_output=True, text=True, env=client_env(), timeout=60)
    assert r.returncode == 0 and fields(r.stdout)["shared_password"] == "view-secret", r.stderr
    # no broadcast password anywhere and no terminal: usage exit, nothing sent
    start2, end2 = Days.take()
    r = a.cast(*book_args(start2, end2), "--yes")
    assert r.returncode == 2 and "broadcast password" in r.stderr and "--broadcast-password-file" in r.stderr, r


def test_book_asks_on_the_terminal(server, tmp_path):
    """Passwords (twice, not echoed) and the fee's acceptance typed on a terminal
    (a pseudo-terminal from util-linux's script)."""
    import shlex
    import subprocess
    a = Account(server, tmp_path)
    start, end = Days.take()
    cmd = shlex.join([binary(CAST), *a.conn_args(), *book_args(start, end)])

    def typed(keys):
        r = subprocess.run(["script", "-qec", cmd, "/dev/null"], input=keys, capture_output=True, text=True,
                           env=client_env(), timeout=60)
        assert "runtime error" not in r.stdout and "Sanitizer" not in r.stdout, r.stdout
        return r

    r = typed("cast-secret\ncast-secret\nview-secret\nview-secret\nn\n")
    assert r.returncode == 0 and "Book this live for the fee shown? [y/N]" in r.stdout, r.stdout
    assert "Not booked" in r.stdout and "id:" not in r.stdout.split("[y/N]")[1], r.stdout
    r = typed("cast-secret\ncast-secret\nview-secret\nview-sekret\n")
    assert r.returncode == 2 and "differ" in r.stdout, r.stdout
    assert "no reservations" in a.cast("list").stdout + a.cast("list").stderr
    r = typed("cast-secret\ncast-secret\nview-secret\nview-secret\ny\n")
    assert r.returncode == 0, r.stdout
    rid = re.search(r"\bid:\s+([a-z2-7]{26})\b", r.stdout).group(1)
    assert fields(a.cast("reconfirm", rid).stdout)["shared_password"] == "view-secret"


def test_refusals_name_the_field_and_exit_1(server, tmp_path):
    a = Account(server, tmp_path)
    start, end = Days.take()
    r = a.cast(*book_args(start, end, summary="This summary is far too long"), "--yes", env=PASSWORDS)
    assert r.returncode == 1, r
    assert "--summary" in r.stderr and "at most 20 characters" in r.stderr, r.stderr
    r = a.cast(*book_args(start + 600, end), "--yes", env=PASSWORDS)
    assert r.returncode == 1 and "--start" in r.stderr and "boundary" in r.stderr, r.stderr
    r = a.cast(*book_args(start, end, level="private"), "--yes", env=PASSWORDS)
    assert r.returncode == 1 and "--level" in r.stderr, r.stderr
    assert "no reservations" in a.cast("list").stdout + a.cast("list").stderr
    # a taken slot
    assert a.cast(*book_args(start, end), "--yes", env=PASSWORDS).returncode == 0
    b = Account(server, tmp_path)
    r = b.cast(*book_args(start, end), "--yes", env=PASSWORDS)
    assert r.returncode == 1 and "--start" in r.stderr and "booked" in r.stderr and "conflict" in r.stderr, r.stderr
    # unknown reservation, someone else's
    rid = table(a.cast("list").stdout)[0]["id"]
    r = b.cast("reconfirm", "a" * 26)
    assert r.returncode == 1 and "item-not-found" in r.stderr, r.stderr
    r = b.cast("cancel", rid)
    assert r.returncode == 1 and "forbidden" in r.stderr and "another account" in r.stderr, r.stderr
    assert table(a.cast("list").stdout)[0]["state"] == "awaiting_reconfirmation"


def test_connection_and_login_failures_exit_3(server, tmp_path):
    a = Account(server, tmp_path)
    (tmp_path / "wrong").write_text("not-the-password\n")
    r = a.cast("--password-file", str(tmp_path / "wrong"), "list")
    assert r.returncode == 3 and "login refused" in r.stderr, r.stderr
    # the self-signed certificate is not trusted without --cafile
    import subprocess
    r = subprocess.run([binary(CAST), "--jid", a.jid, "--password-file", str(a.pw_file), "--server",
                        f"127.0.0.1:{server.port}", "list"], capture_output=True, text=True, env=client_env(),
                       timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 3 and "not trusted" in r.stderr and "--cafile" in r.stderr, r.stderr
    # another certificate as the CA: not trusted either
    other = tmp_path / "other.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "k"),
                    "-out", str(other), "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True)
    r = a.cast("--cafile", str(other), "list")
    assert r.returncode == 3 and "not trusted" in r.stderr, r.stderr
    # nothing listening
    from harness import free_ports
    r = a.cast("--server", f"127.0.0.1:{free_ports(1)[0]}", "list")
    assert r.returncode == 3 and "Connection refused" in r.stderr, r.stderr


def test_usage(tmp_path):
    import subprocess
    run = lambda *a: subprocess.run([binary(CAST), *a], capture_output=True, text=True, env=client_env(),  # noqa: E731
                                    timeout=30, stdin=subprocess.DEVNULL, start_new_session=True)
    r = run("--help")
    assert r.returncode == 0 and "book" in r.stdout and "Exit status" in r.stdout and "--password-file" in r.stdout
    for cmd in ("book", "reconfirm", "settings", "cancel", "list", "schedule", "availability", "transcripts",
                "transcript"):
        r = run(cmd, "--help")
        assert r.returncode == 0 and f"usage: onair-cast {cmd}" in r.stdout, (cmd, r)
    assert "--broadcast-password-file" in run("book", "--help").stdout
    r = run()
    assert r.returncode == 2
    r = run("fly")
    assert r.returncode == 2 and "no command 'fly'" in r.stderr
    r = run("list", "--bogus")
    assert r.returncode == 2
    r = run("reconfirm")
    assert r.returncode == 2 and "reservation ID" in r.stderr
    r = run("list")  # no account
    assert r.returncode == 2 and "--jid" in r.stderr
    r = run("--jid", "alice@localhost", "list")  # no password source, no terminal
    assert r.returncode == 2 and "password" in r.stderr
    r = run("--jid", "alice@localhost", "--timeout", "x", "list")
    assert r.returncode == 2 and "--timeout" in r.stderr
    w = subprocess.run([binary(WATCH), "--help"], capture_output=True, text=True, env=client_env(), timeout=30)
    assert w.returncode == 0 and "--room-password-file" in w.stdout and "Exit status" in w.stdout
    w = subprocess.run([binary(WATCH)], capture_output=True, text=True, env=client_env(), timeout=30)
    assert w.returncode == 2


# ---- onair-watch and transcripts: whole lives on short schedules ----

# The room opens 2 s before the start, the live lasts SLOT (2) s, the room
# closes 2 s after the end.
FAST = {
    "channels": CHANNELS + [{"id": "tiny", "name": "Tiny", "capacity": 1, "bandwidth_kbps": 500,
                             "price_per_hour": 0}],
    "reservation": {"slot_s": SLOT},
    "schedule": {"reconfirm_before_s": 0, "room_open_before_s": 2, "notice_before_s": 1,
                 "room_close_after_s": 2, "close_warning_before_s": 1},
}
# Rooms open at once and stay an hour.
OPEN = {**FAST, "reservation": {"slot_s": 60},
        "schedule": {"reconfirm_before_s": 0, "room_open_before_s": 86400, "room_close_after_s": 3600}}


_started = []


@pytest.fixture(autouse=True)
def no_client_left():
    """Whatever a test left running is killed (its event loop is gone by then)."""
    yield
    import signal
    while _started:
        proc = _started.pop()
        if proc.returncode is None:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Watch:
    """onair-watch as a subprocess: stdout read line by line, stdin open."""

    def __init__(self, proc):
        self.proc = proc
        self.lines = []
        self.err = b""

    @classmethod
    async def start(cls, srv, room, *args, account=None, env=None):
        conn = (account.conn_args() if account else
                ["--guest", "--server", f"127.0.0.1:{srv.port}", "--cafile", str(cafile(srv))])
        proc = await asyncio.create_subprocess_exec(
            binary(WATCH), *conn, *args, str(room), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=client_env(**(env or {})),
            start_new_session=True)
        _started.append(proc)
        return cls(proc)

    async def expect(self, pattern, timeout=WAIT):
        return await self.expect_nth(pattern, 1, timeout)

    async def expect_nth(self, pattern, n, timeout=WAIT):
        """Waits for the n-th line matching pattern (1: the first seen)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while sum(bool(rx.search(ln)) for ln in self.lines) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line {n} matching {pattern!r} in {timeout}s; got {self.lines}")
            try:
                raw = await asyncio.wait_for(self.proc.stdout.readline(), left)
            except asyncio.TimeoutError:
                continue
            if not raw:
                raise AssertionError(f"onair-watch ended before line {n} matching {pattern!r}; got {self.lines}"
                                     f"; stderr {(await self.proc.stderr.read()).decode()}")
            self.lines.append(raw.decode().rstrip("\n"))
        return [ln for ln in self.lines if rx.search(ln)][n - 1]

    async def say(self, text):
        self.proc.stdin.write(text.encode() + b"\n")
        await self.proc.stdin.drain()

    async def exit(self, timeout=WAIT):
        rest, err = await asyncio.wait_for(self.proc.communicate(), timeout)
        self.lines += rest.decode().splitlines()
        self.err = err.decode()
        assert "runtime error" not in self.err and "Sanitizer" not in self.err, self.err
        return self.proc.returncode


def book_fast(srv, start, level="public", channel="main"):
    return book_live(srv, start=start, slot=SLOT, seconds=SLOT, level=level, channel=channel, title="Night talk")


async def test_watch_as_guest_chats_and_leaves_at_the_close(server_factory):
    srv = server_factory(FAST)
    start = start_after(6)
    live = book_fast(srv, start)
    # before the room opens: refused with its opening time
    w = await Watch.start(srv, live.room, "--nick", "early")
    assert await w.exit() == 1
    assert "opens at" in w.err, w.err
    host = await owner(srv, live)
    from test_muc_lifecycle import join_when_open
    await join_when_open(host, live, "Host")
    w = await Watch.start(srv, live.room, "--nick", "viewer", "--intro", "first time here")
    await w.expect(r'\*\*\* Entered "Night talk" as viewer; the room closes at ')
    await w.expect(r"\*\*\* In the room: Host")
    await groupchat(host, live.room, "hello from the host")
    await w.expect(r"^\[\d\d:\d\d:\d\d\] <Host> hello from the host$")
    await w.say("hello from the terminal")
    m = await host.wait_message(lambda m: m["type"] == "groupchat" and m["body"] == "hello from the terminal")
    assert m["from"].resource == "viewer"
    await w.expect(r"<viewer \(you\)> hello from the terminal$")
    # the self-introduction is the participant list's name
    await w.say("/who")
    await w.expect(r"^    viewer \(you\) - first time here$")
    # the room's notices, then the destroy at the close
    await w.expect(r'\*\*\* The live "Night talk" starts in 1 minute')
    await w.expect(r"\*\*\* This room closes in 1 minute")
    await w.expect(r"\*\*\* The room is closed: The live is over", timeout=20)
    assert await w.exit() == 0
    assert time.time() >= start + SLOT + 2 - 0.5


async def test_watch_password_live_as_account(server_factory, tmp_path):
    srv = server_factory(OPEN)
    live = book_live(srv, level="password", password="view-secret", title="Secret talk")
    a = Account(srv, tmp_path)
    # no password and no terminal to ask on
    w = await Watch.start(srv, live.room, account=a)
    assert await w.exit() == 2 and "shared password is needed" in w.err, w.err
    (tmp_path / "wrong").write_text("not-it\n")
    w = await Watch.start(srv, live.room, "--room-password-file", str(tmp_path / "wrong"), account=a)
    assert await w.exit() == 1 and "wrong shared password" in w.err, w.err
    # from the environment, by reservation ID and the account's domain
    w = await Watch.start(srv, live.id, account=a, env={"ONAIR_SHARED_PASSWORD": "view-secret"})
    await w.expect(rf'Entered "Secret talk" as {a.user}')
    viewer = await member(srv)
    await join(viewer, live, "other", password="view-secret")
    await w.expect(r"--> other entered")
    viewer.send_message(mto=live.room, mbody="psst", mtype="groupchat")
    await w.expect(r"<other> psst$")
    viewer.send_message(mto=f"{live.room}/{a.user}", mbody="just for you", mtype="chat")
    await w.expect(r"<other -> you, privately> just for you$")
    await w.say("/msg other and back")
    m = await viewer.wait_message(lambda m: m["type"] == "chat" and m["body"] == "and back")
    assert m["from"] == f"{live.room}/{a.user}"
    viewer.plugin["xep_0045"].leave_muc(live.room, "other")
    await w.expect(r"<-- other left$")
    await w.say("/quit")
    assert await w.exit() == 0
    assert any("You left the room" in ln for ln in w.lines), w.lines


async def test_watch_refusals(server_factory, tmp_path):
    srv = server_factory(OPEN)
    live = book_live(srv, channel="tiny", title="Small room")
    first = await Watch.start(srv, live.room, "--nick", "one")
    await first.expect(r"Entered")
    w = await Watch.start(srv, live.room, "--nick", "two")
    assert await w.exit() == 1 and "the room is full" in w.err, w.err
    # the nickname is taken (the broadcaster does not count against capacity)
    host = Account(srv, tmp_path, live.owner, live.owner_pw)
    w = await Watch.start(srv, live.room, "--nick", "one", account=host)
    assert await w.exit() == 1 and "nickname 'one' is taken" in w.err, w.err
    # no such room
    w = await Watch.start(srv, f"{'a' * 26}@live.localhost")
    assert await w.exit() == 1 and "no such room" in w.err, w.err
    # a cancelled live: its room closes, the viewer is told why and exits 0
    from muc_client import cancel_live
    cancel_live(srv, live)
    await first.expect(r"\*\*\* The room is closed: The live was cancelled")
    assert await first.exit() == 0
    # a wrong account password
    (tmp_path / "bad").write_text("nope\n")
    w = await Watch.start(srv, live.room, "--password-file", str(tmp_path / "bad"), account=host)
    assert await w.exit() == 3 and "login refused" in w.err, w.err


async def test_transcripts_after_the_live(server_factory, tmp_path):
    cfg = {**FAST, "plugins": {"dir": str(plugin_dir(tmp_path, ["transcript"])), "load": ["transcript"]}}
    srv = server_factory(cfg)
    start = start_after(5)
    live = book_fast(srv, start)
    a = Account(srv, tmp_path, live.owner, live.owner_pw)
    # before the close: nothing yet
    r = a.cast("transcript", live.id)
    assert r.returncode == 1 and "item-not-found" in r.stderr, r.stderr
    # --wait: until the room opens (2 s before the start)
    w = await Watch.start(srv, live.room, "--nick", "viewer", "--wait")
    await w.expect(r"\*\*\* The room opens at .*: waiting")
    await w.expect("Entered")
    assert time.time() >= start - 2 - 0.5
    await w.say("a question for the host")
    await w.expect(r"<viewer \(you\)> a question for the host")
    await w.expect(r"The room is closed", timeout=20)
    assert await w.exit() == 0
    # the owner lists and fetches it
    r = a.cast("transcripts")
    deadline = time.monotonic() + WAIT
    while live.id not in r.stdout and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        r = a.cast("transcripts")
    assert r.returncode == 0 and live.id in r.stdout and "Night talk" in r.stdout, r
    r = a.cast("transcript", live.id)
    assert r.returncode == 0 and re.search(r"^[+-]\d\d:\d\d:\d\d <viewer> a question for the host$", r.stdout, re.M), r
    out = tmp_path / "t.json"
    r = a.cast("transcript", live.id, "--format", "json", "--output", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc["reservation"] == live.id and any(m["body"] == "a question for the host" for m in doc["messages"])
    r = a.cast("transcript", live.id, "--format", "pdf")
    assert r.returncode == 1 and "--format" in r.stderr, r.stderr
    # another account: forbidden
    b = Account(srv, tmp_path)
    r = b.cast("transcript", live.id)
    assert r.returncode == 1 and "forbidden" in r.stderr and "question" not in r.stdout, r


# ---- the live stream (specs/media.md): onair-cast live, onair-watch --output ----

STREAM_SLOT = 4
# The room opens 3 s before the start, ingest from 2 s before the start to 2 s
# after the end, the room closes 4 s after the end.
STREAM = {
    "channels": CHANNELS,
    "reservation": {"slot_s": STREAM_SLOT},
    "schedule": {"reconfirm_before_s": 0, "room_open_before_s": 3, "notice_before_s": 1,
                 "ingest_open_before_s": 2, "ingest_close_after_s": 2,
                 "room_close_after_s": 4, "close_warning_before_s": 1},
}
TEST_PATTERN = "lavfi:testsrc2=size=320x240:rate=30"


def probe_frames(path):
    """{codec: frames decoded} of a media file, by ffprobe decoding every frame."""
    import subprocess
    r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                        "stream=codec_type,codec_name,nb_read_frames", "-of", "json", str(path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return {s["codec_name"]: int(s.get("nb_read_frames", 0)) for s in json.loads(r.stdout)["streams"]}


async def cast_live(account, rid, *args, env=None):
    proc = await asyncio.create_subprocess_exec(
        binary(CAST), *account.conn_args(), "live", rid, *args, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=client_env(**{"ONAIR_BROADCAST_PASSWORD": "cast-secret", **(env or {})}), start_new_session=True)
    _started.append(proc)
    return proc


async def test_whole_scheduled_broadcast(server_factory, tmp_path):
    srv = server_factory(STREAM)
    start = int((time.time() + 8 + STREAM_SLOT - 1) // STREAM_SLOT * STREAM_SLOT)
    live = book_live(srv, start=start, slot=STREAM_SLOT, seconds=STREAM_SLOT, level="password",
                     password="view-secret", title="Pattern live")
    host = Account(srv, tmp_path, live.owner, live.owner_pw)
    (tmp_path / "shared").write_text("view-secret\n")
    out = tmp_path / "received.ts"
    # the viewer waits for the room, enters with the shared password, which
    # also opens the stream (one credential), and writes it to a file
    viewer = await Watch.start(srv, live.room, "--nick", "fan", "--wait", "--no-input", "--output", str(out),
                               "--room-password-file", str(tmp_path / "shared"))
    # the broadcaster waits for the ingest window and goes on air from a test pattern
    cast = await cast_live(host, live.id, "--wait", "--input", TEST_PATTERN)
    await viewer.expect(r"\*\*\* The room opens at .*: waiting")
    await viewer.expect(r'Entered "Pattern live" as fan', timeout=20)
    await viewer.expect(r"\*\*\* Receiving the stream \(H264, opus\) into ", timeout=20)
    on_air_at = time.time()
    assert on_air_at >= start - 2 - 0.5
    await viewer.expect(r'\*\*\* The live "Pattern live" has started\.')
    # the server ends the live at the window's close: the broadcaster is told why
    out_c, err_c = await asyncio.wait_for(cast.communicate(), 30)
    out_c, err_c = out_c.decode(), err_c.decode()
    assert cast.returncode == 0, (out_c, err_c)
    assert "On air:" in out_c and "the ingest window closed" in out_c, out_c
    assert time.time() >= start + STREAM_SLOT + 2 - 0.5
    assert "cast-secret" not in out_c + err_c and "inline:" not in out_c + err_c
    await viewer.expect(r"\*\*\* The stream ended: the live has ended")
    await viewer.expect(r"\*\*\* The room is closed: The live is over", timeout=20)
    assert await viewer.exit() == 0, viewer.err
    # what the viewer wrote decodes: the pattern's frames and the tone
    frames = probe_frames(out)
    assert frames.get("h264", 0) >= 30 * 3, frames  # on air for about 8 s at 30 frames a second
    assert frames.get("opus", 0) >= 50 * 3, frames
    # ... to its last seconds: a picture comes out of the end of the file
    import subprocess
    grab = tmp_path / "frame.png"
    r = subprocess.run(["ffmpeg", "-v", "error", "-sseof", "-2", "-i", str(out), "-frames:v", "1", "-y", str(grab)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and grab.stat().st_size > 1000, r.stderr
    # the server counted one viewer, and nothing unauthenticated
    health = srv.ctl("health").stdout
    assert re.search(r"^media_auth_failed: 0$", health, re.M), health
    from test_muc_lifecycle import wait_log
    await wait_log(srv, rf"live ended: {live.id} .*viewers peak 1 total 1")


async def test_watch_follows_a_broadcaster_who_comes_back(server_factory, tmp_path):
    """The broadcaster ends and goes on air again within the window: the
    viewer is told, waits, and receives the second part into FILE-2.ts."""
    cfg = {**OPEN, "schedule": {**OPEN["schedule"], "ingest_open_before_s": 86400}}
    srv = server_factory(cfg)
    live = book_live(srv, title="Twice")
    host = Account(srv, tmp_path, live.owner, live.owner_pw)
    out = tmp_path / "twice.ts"
    viewer = await Watch.start(srv, live.room, "--nick", "fan", "--no-input", "--output", str(out))
    await viewer.expect(r'Entered "Twice" as fan')
    for part, name in ((1, out), (2, tmp_path / "twice-2.ts")):
        cast = await cast_live(host, live.id, "--input", TEST_PATTERN, "--duration", "3")
        if part == 2:
            await viewer.expect(r'\*\*\* The live "Twice" is back on air\.', timeout=20)
        await viewer.expect(rf"\*\*\* Receiving the stream \(H264, opus\) into {re.escape(str(name))}$",
                            timeout=20)
        out_c, err_c = await asyncio.wait_for(cast.communicate(), 30)
        assert cast.returncode == 0, (out_c, err_c)
        await viewer.expect_nth(r"\*\*\* The stream ended: the live has ended", part)
        await viewer.expect_nth(r"\*\*\* Waiting for the live to come back on air", part)
    viewer.proc.terminate()
    assert await viewer.exit() == 0, viewer.err
    for name in (out, tmp_path / "twice-2.ts"):
        frames = probe_frames(name)
        assert frames.get("h264", 0) >= 30, (name, frames)
    from test_muc_lifecycle import wait_log
    await wait_log(srv, rf"live ended: {live.id} .*viewers peak 1 total 1")


async def test_live_refusals(server_factory, tmp_path):
    cfg = {**OPEN, "schedule": {**OPEN["schedule"], "ingest_open_before_s": 86400}}
    srv = server_factory(cfg)
    live = book_live(srv, title="Refusals")
    host = Account(srv, tmp_path, live.owner, live.owner_pw)
    proc = await cast_live(host, live.id, "--input", TEST_PATTERN, env={"ONAIR_BROADCAST_PASSWORD": "guess"})
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1 and "wrong broadcast password" in err.decode(), err
    other = Account(srv, tmp_path)
    proc = await cast_live(other, live.id, "--input", TEST_PATTERN)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1 and "another account" in err.decode(), err
    r = host.cast("live", live.id)
    assert r.returncode == 2 and "--input" in r.stderr, r.stderr
    # outside the window (a live tomorrow, the default window of 5 minutes)
    srv2 = server_factory(OPEN)
    tomorrow = book_live(srv2, start=int(time.time()) // 60 * 60 + 86400, title="Tomorrow")
    host2 = Account(srv2, tmp_path, tomorrow.owner, tomorrow.owner_pw)
    r = host2.cast("live", tomorrow.id, "--input", TEST_PATTERN, env={"ONAIR_BROADCAST_PASSWORD": "cast-secret"})
    assert r.returncode == 1 and "opens at" in r.stderr and "--wait" in r.stderr, r.stderr
