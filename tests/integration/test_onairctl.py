"""onairctl account management, through the admin socket while onaird runs
and directly on the store while it does not."""
import secrets

import clients


def user():
    return "ctl" + secrets.token_hex(4)


def listed(srv):
    out = srv.ctl("account", "list").stdout
    return {line.strip() for line in out.splitlines() if line.strip()}


def in_list(srv, name):
    names = listed(srv)
    return name in names or f"{name}@{srv.domain}" in names


async def assert_login(srv, name, pw):
    c = await clients.login(srv, f"{name}@{srv.domain}", pw)
    await c.barrier()
    await c.close()


async def assert_no_login(srv, name, pw):
    e = await clients.login_fails(srv, f"{name}@{srv.domain}", pw, mech="SCRAM-SHA-256")
    assert e.condition == "not-authorized", e


async def test_accounts_while_running(server_factory):
    srv = server_factory()
    name, pw, pw2 = user(), "first-" + secrets.token_hex(4), "second-" + secrets.token_hex(4)

    srv.ctl("account", "add", name, input=pw + "\n")
    assert in_list(srv, name)
    await assert_login(srv, name, pw)

    srv.ctl("account", "passwd", name, input=pw2 + "\n")
    await assert_no_login(srv, name, pw)
    await assert_login(srv, name, pw2)

    srv.ctl("account", "del", name)
    assert not in_list(srv, name)
    await assert_no_login(srv, name, pw2)

    r = srv.ctl("health")
    assert r.stdout.strip(), "health printed nothing"


async def test_del_closes_sessions(server_factory):
    srv = server_factory()
    name, pw = user(), "pw-" + secrets.token_hex(4)
    srv.ctl("account", "add", name, input=pw + "\n")
    c = await clients.login(srv, f"{name}@{srv.domain}", pw)
    srv.ctl("account", "del", name)
    await c.wait_disconnected()


async def test_errors(server_factory):
    srv = server_factory()
    name, pw = user(), "pw-" + secrets.token_hex(4)
    srv.ctl("account", "add", name, input=pw + "\n")
    r = srv.ctl("account", "add", name, input="other\n", check=False)
    assert r.returncode != 0, "adding an existing account succeeded"
    await assert_login(srv, name, pw)  # and the password was not replaced
    missing = user()
    assert srv.ctl("account", "passwd", missing, input="x\n", check=False).returncode != 0
    assert srv.ctl("account", "del", missing, check=False).returncode != 0
    for bad in ("with space", "a@b", "a/b", "", "x" * 1100):
        r = srv.ctl("account", "add", bad, input="pw\n", check=False)
        assert r.returncode != 0, f"invalid user name {bad!r} accepted"
    assert srv.ctl("no-such-command", check=False).returncode != 0
    assert srv.running()


async def test_unicode_and_space_password(server_factory):
    # The password is the whole line from stdin; SASLprep applies (RFC 4013).
    srv = server_factory()
    name, pw = user(), "pässwörd with spaces ✓"
    srv.ctl("account", "add", name, input=pw + "\n")
    for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"):
        c = await clients.login(srv, f"{name}@{srv.domain}", pw, mech=mech)
        await c.close()


async def test_accounts_while_stopped(server_factory):
    srv = server_factory()
    keep, gone = user(), user()
    srv.ctl("account", "add", gone, input="gone-pw\n")
    srv.stop()

    srv.ctl("account", "add", keep, input="old-pw\n")
    srv.ctl("account", "passwd", keep, input="new-pw\n")
    srv.ctl("account", "del", gone)
    names = listed(srv)
    assert keep in names or f"{keep}@{srv.domain}" in names
    assert gone not in names and f"{gone}@{srv.domain}" not in names

    srv.start()
    await assert_login(srv, keep, "new-pw")
    await assert_no_login(srv, keep, "old-pw")
    await assert_no_login(srv, gone, "gone-pw")
    # Changes made while stopped and while running mix.
    srv.ctl("account", "del", keep)
    srv.stop()
    assert not in_list(srv, keep)
    srv.start()
    await assert_no_login(srv, keep, "new-pw")


async def test_deleted_account_leaves_nothing_behind(server_factory):
    # A re-created account must not inherit the old one's offline messages
    # or roster.
    srv = server_factory()
    (ja, pa), = [srv.add_user()]
    name = user()
    jb = f"{name}@{srv.domain}"
    srv.ctl("account", "add", name, input="first\n")
    b = await clients.login(srv, jb, "first")
    iq = b.make_iq_set()
    iq["roster"]["items"] = {ja: {"name": "old contact"}}
    for item in iq.xml.iter("{jabber:iq:roster}item"):
        item.attrib.pop("subscription", None)
    await iq.send(timeout=10)
    await b.close()
    a = await clients.login(srv, ja, pa)
    a.send_message(mto=jb, mbody="for the old account", mtype="chat")
    await a.barrier()
    srv.ctl("account", "del", name)
    srv.ctl("account", "add", name, input="second\n")
    b2 = await clients.login(srv, jb, "second")
    await b2.roundtrip()
    old = [m for m in b2.messages.items if m["body"] == "for the old account"]
    assert not old, "offline message of a deleted account delivered to its successor"
    res = await b2.make_iq_get(queryxmlns="jabber:iq:roster").send(timeout=10)
    assert not res["roster"]["items"], f"roster of a deleted account survived: {res}"


def test_channels(server_factory):
    srv = server_factory({"channels": [{"id": "main", "name": "Main stage", "capacity": 50,
                                        "bandwidth_kbps": 2000, "price_per_hour": 3000}]})
    out = srv.ctl("channel", "list").stdout
    assert out.startswith("main\tMain stage\tcapacity 50\t2000 kbps\t3000 per hour"), out
    srv.ctl("channel", "add", "late", "Late show", "20", "800", "1000")
    assert "late\tLate show\tcapacity 20" in srv.ctl("channel", "list").stdout
    # Refused input changes nothing.
    r = srv.ctl("channel", "add", "Bad Id", "x", "1", "1", "1", check=False)
    assert r.returncode == 1 and "id:" in r.stderr, r
    r = srv.ctl("channel", "add", "ok", "x", "lots", "1", "1", check=False)
    assert r.returncode == 2 and "CAPACITY" in r.stderr, r
    srv.ctl("channel", "del", "late")
    assert "late" not in srv.ctl("channel", "list").stdout
    r = srv.ctl("channel", "del", "late", check=False)
    assert r.returncode == 1 and "no such channel" in r.stderr, r
    srv.stop()  # also on the store directly
    srv.ctl("channel", "add", "offline", "Offline", "5", "100", "0")
    assert "offline\tOffline" in srv.ctl("channel", "list").stdout


def test_reservations_and_email(server_factory):
    import time
    from datetime import datetime, timezone

    from webapi import login, request
    srv = server_factory({"channels": [{"id": "main", "name": "Main", "capacity": 5, "bandwidth_kbps": 100,
                                        "price_per_hour": 1000}]})
    name, pw = user(), "pw-" + secrets.token_hex(4)
    srv.ctl("account", "add", name, input=pw + "\n")
    srv.ctl("account", "email", name, "owner@example.com")
    tok = login(srv, name, pw)
    start = (int(time.time()) // 1800 + 24) * 1800
    iso = lambda t: datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    r = request(srv, "POST", "/api/v1/reservations", {
        "channel": "main", "start": iso(start), "end": iso(start + 3600), "level": "public",
        "title": "Ctl live", "broadcast_password": "cast-pass"}, token=tok)
    assert r.status == 201, r
    rid = r.json["reservation"]["id"]
    assert r.json["reservation"]["email"] == "owner@example.com"
    listed = srv.ctl("reservation", "list").stdout
    assert f"{rid}\t{name}\tmain\t{iso(start)}" in listed, listed
    assert rid in srv.ctl("reservation", "list", name).stdout
    assert rid not in srv.ctl("reservation", "list", "nobody").stdout
    shown = srv.ctl("reservation", "show", rid).stdout
    assert "state\tawaiting_reconfirmation" in shown and "fee\t1000 JPY" in shown
    assert "cast-pass" not in shown
    # The operator cancels through the running server: the server raises the event.
    assert "cancelled" in srv.ctl("reservation", "cancel", rid).stdout
    assert request(srv, "GET", f"/api/v1/reservations/{rid}", token=tok).json["reservation"]["cancelled_by"] == \
        "operator"
    assert f"reservation cancelled: {rid}" in srv.stderr_text()
    r = srv.ctl("reservation", "cancel", rid, check=False)
    assert r.returncode == 1 and "already cancelled" in r.stderr, r
    r = srv.ctl("reservation", "show", "nope", check=False)
    assert r.returncode == 1, r
