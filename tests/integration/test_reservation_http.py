"""Reservations over the JSON HTTP API (specs/http-api.md, "Reservations")
with real HTTP (http.client): quote -> book -> reconfirm -> settings, every
validation error with its field, ownership (403, never the data), secret
lives absent from every listing, concurrent bookings of one slot from many
connections (exactly one wins, many times), the deadline through the real
timers, and the same reservations seen over XMPP."""
import threading
import time
from datetime import datetime, timezone

from booking import FAST_CONFIG, RECONFIRM, SLOT, Days, day_of, iso, slot_after
from booking import SERVER_CONFIG  # noqa: F401 (the module server's configuration)
from webapi import assert_error, connect, login, request


def body(start_t, end_t, **over):
    b = {"channel": "main", "start": iso(start_t), "end": iso(end_t), "level": "password", "title": "Evening talk",
         "genre": "talk", "show_email": True, "show_url": False, "broadcast_password": "cast-secret",
         "shared_password": "view-secret", "friends": ["bob@example.com", "carol@localhost"],
         "summary": "A short talk", "detail": "Longer words"}
    b.update(over)
    return {k: v for k, v in b.items() if v is not None}


def account(server, email=None):
    user, pw = server.add_user()
    if email:
        server.ctl("account", "email", user, email)
    return user, login(server, user, pw)


def book(server, tok, start, end, **over):
    r = request(server, "POST", "/api/v1/reservations", body(start, end, **over), token=tok)
    assert r.status == 201, r
    return r.json["reservation"]


def test_quote_book_reconfirm_settings(server):
    user, tok = account(server, "alice@example.com")
    start, end = Days.take(2)

    q = request(server, "POST", "/api/v1/reservations/quote", body(start, end), token=tok)
    assert q.status == 200, q
    quote = q.json["quote"]
    assert quote["fee"] == 6000 and quote["currency"] == "JPY"
    assert quote["email"] == "alice@example.com"
    assert quote["start"] == iso(start) and quote["reconfirm_by"] == iso(start - RECONFIRM)
    assert "id" not in quote
    assert b"secret" not in q.raw  # no password echoed
    # A quote stores nothing.
    assert request(server, "GET", "/api/v1/reservations", token=tok).json["reservations"] == []

    r = request(server, "POST", "/api/v1/reservations", body(start, end), token=tok)
    assert r.status == 201, r
    res = r.json["reservation"]
    rid = res["id"]
    assert r.header("location") == f"/api/v1/reservations/{rid}"
    assert res["state"] == "awaiting_reconfirmation" and res["owner"] == user.split("@")[0]
    assert res["friends"] == ["bob@example.com", "carol@localhost"]
    assert res["bandwidth_kbps"] == 2000 and res["capacity"] == 50

    mine = request(server, "GET", "/api/v1/reservations", token=tok).json["reservations"]
    assert [m["id"] for m in mine] == [rid]
    one = request(server, "GET", f"/api/v1/reservations/{rid}", token=tok)
    assert one.status == 200 and one.json["reservation"]["title"] == "Evening talk"

    assert_error(request(server, "GET", f"/api/v1/reservations/{rid}/settings", token=tok), 409, "id")
    rc = request(server, "POST", f"/api/v1/reservations/{rid}/reconfirm", token=tok)
    assert rc.status == 200, rc
    st = rc.json["settings"]
    assert st["id"] == rid and st["shared_password"] == "view-secret"
    assert st["room_jid"] == f"{rid}@live.{server.domain}"
    assert st["ingest_open"] == iso(start - 300) and st["ingest_close"] == iso(end + 300)
    again = request(server, "GET", f"/api/v1/reservations/{rid}/settings", token=tok)
    assert again.status == 200 and again.json["settings"] == st

    # Public: the schedule and the live page, with the e-mail shown by choice.
    lives = request(server, "GET", "/api/v1/schedule").json["lives"]
    live = next(x for x in lives if x["id"] == rid)
    assert live["password_required"] is True and live["email"] == "alice@example.com"
    assert "url" not in live and "shared_password" not in live
    page = request(server, "GET", f"/api/v1/lives/{rid}")
    assert page.status == 200 and page.json["live"]["title"] == "Evening talk"
    assert b"secret" not in page.raw

    # Cancel: gone from the schedule; a second cancel is a conflict.
    c = request(server, "DELETE", f"/api/v1/reservations/{rid}", token=tok)
    assert c.status == 200 and c.json["reservation"]["state"] == "cancelled"
    assert_error(request(server, "DELETE", f"/api/v1/reservations/{rid}", token=tok), 409, "id")
    assert rid not in [x["id"] for x in request(server, "GET", "/api/v1/schedule").json["lives"]]
    assert_error(request(server, "GET", f"/api/v1/lives/{rid}"), 404, "id")


def test_validation_errors(server):
    _, tok = account(server)
    start, end = Days.take()
    past = slot_after(0) - 2 * SLOT
    soon = slot_after(1)
    cases = [
        ({"channel": None}, "channel"), ({"start": None}, "start"), ({"end": None}, "end"),
        ({"level": None}, "level"), ({"title": None}, "title"),
        ({"broadcast_password": None}, "broadcast_password"), ({"shared_password": None}, "shared_password"),
        ({"channel": "nosuch"}, "channel"), ({"level": "private"}, "level"), ({"start": "soon"}, "start"),
        ({"end": iso(start)}, "end"), ({"start": iso(past), "end": iso(past + SLOT)}, "start"),
        ({"start": iso(soon), "end": iso(soon + SLOT)}, "start"), ({"start": iso(start + 60)}, "start"),
        ({"end": iso(start + 5 * 3600)}, "end"), ({"summary": "x" * 21}, "summary"),
        ({"detail": "x" * 201}, "detail"), ({"friends": ["ok@example.com", "nope"]}, "friends"),
        ({"show_url": True}, "url"), ({"url": "javascript:alert(1)"}, "url"),
        # the JSON types
        ({"show_email": "yes"}, "show_email"), ({"title": 5}, "title"), ({"friends": [1]}, "friends"),
        ({"colour": "red"}, "colour"),
    ]
    for over, field in cases:
        for path in ("/api/v1/reservations/quote", "/api/v1/reservations"):
            r = request(server, "POST", path, body(start, end, **over), token=tok)
            msg = assert_error(r, 400, field)
            assert msg.startswith(field + ":"), (over, msg)
    assert request(server, "GET", "/api/v1/reservations", token=tok).json["reservations"] == []
    # Not a JSON object, no body, no token.
    assert_error(request(server, "POST", "/api/v1/reservations", None, token=tok), 400)
    assert_error(request(server, "POST", "/api/v1/reservations", body(start, end)), 401)
    # Overlaps are conflicts; touching edges and the other channel are free.
    book(server, tok, start, end)
    for a, b in ((start, end), (start - SLOT, start + SLOT), (end - SLOT, end + SLOT)):
        assert_error(request(server, "POST", "/api/v1/reservations", body(a, b), token=tok), 409, "start")
    book(server, tok, end, end + SLOT)
    book(server, tok, start - SLOT, start)
    book(server, tok, start, end, channel="side")
    # Bad IDs.
    assert_error(request(server, "GET", "/api/v1/reservations/nope", token=tok), 404, "id")
    assert_error(request(server, "POST", "/api/v1/reservations/" + "a" * 26 + "/reconfirm", token=tok), 404, "id")


def test_another_account_gets_403_and_no_data(server):
    _, alice = account(server)
    _, bob = account(server)
    start, end = Days.take()
    rid = book(server, alice, start, end, level="secret")["id"]
    for method, path in (("GET", f"/api/v1/reservations/{rid}"), ("DELETE", f"/api/v1/reservations/{rid}"),
                         ("POST", f"/api/v1/reservations/{rid}/reconfirm"),
                         ("GET", f"/api/v1/reservations/{rid}/settings")):
        r = request(server, method, path, token=bob)
        assert_error(r, 403, "id")
        assert b"Evening" not in r.raw and b"cast-secret" not in r.raw and b"view-secret" not in r.raw
    assert request(server, "GET", "/api/v1/reservations", token=bob).json["reservations"] == []
    # Still awaiting: bob's attempts changed nothing.
    assert request(server, "GET", f"/api/v1/reservations/{rid}", token=alice).json["reservation"]["state"] == \
        "awaiting_reconfirmation"


def test_secret_lives_are_never_listed(server):
    _, tok = account(server)
    start, end = Days.take()
    secret = book(server, tok, start, end, level="secret")["id"]
    public = book(server, tok, start, end, level="public", channel="side", shared_password=None)["id"]
    for rid in (secret, public):
        assert request(server, "POST", f"/api/v1/reservations/{rid}/reconfirm", token=tok).status == 200
    listed = [x["id"] for x in request(server, "GET", "/api/v1/schedule").json["lives"]]
    assert public in listed and secret not in listed
    # Availability shows the slot taken but never whose or which live.
    day = day_of(start)
    av = request(server, "GET", f"/api/v1/availability?date={day}")
    assert av.status == 200 and secret.encode() not in av.raw and b"Evening" not in av.raw
    # Whoever holds the ID reaches its page (that is how a secret live is shared).
    assert request(server, "GET", f"/api/v1/lives/{secret}").json["live"]["level"] == "secret"


def test_availability_and_channels(server):
    _, tok = account(server)
    ch = request(server, "GET", "/api/v1/channels")
    assert ch.status == 200 and ch.json["currency"] == "JPY"
    assert {c["id"] for c in ch.json["channels"]} == {"main", "side"}
    start, end = Days.take(2)
    book(server, tok, start, end)
    day = day_of(start)
    av = request(server, "GET", f"/api/v1/availability?date={day}").json
    assert av["timezone"] == "UTC" and av["slot_s"] == SLOT and av["date"] == day
    main = next(c for c in av["channels"] if c["id"] == "main")
    assert len(av["slots"]) == 48 and len(main["states"]) == 48 and main["price_per_hour"] == 3000
    assert av["slots"][0] == {"start": f"{day}T00:00:00Z", "end": f"{day}T00:30:00Z"}
    states = {s["start"]: st for s, st in zip(av["slots"], main["states"])}
    assert states[iso(start)] == "booked" and states[iso(end - SLOT)] == "booked"
    assert states[iso(end)] == "free"
    assert_error(request(server, "GET", "/api/v1/availability?date=2030-02-30"), 400, "date")


def test_concurrent_bookings_exactly_one_wins(server):
    """Eight connections, each of its own account, post the same slot at the
    same instant, 25 times: every time exactly one 201 and seven 409s."""
    tokens = [account(server)[1] for _ in range(8)]
    for _ in range(25):
        start, end = Days.take(1)
        conns = [connect(server) for _ in tokens]
        results = [None] * len(tokens)
        barrier = threading.Barrier(len(tokens))

        def go(i):
            barrier.wait(timeout=10)
            results[i] = request(server, "POST", "/api/v1/reservations", body(start, end), token=tokens[i],
                                 conn=conns[i]).status

        threads = [threading.Thread(target=go, args=(i,)) for i in range(len(tokens))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        for c in conns:
            c.close()
        assert sorted(results) == [201] + [409] * (len(tokens) - 1), results


def test_deadline_cancels_and_late_reconfirm_is_410(server_factory):
    srv = server_factory(FAST_CONFIG)
    _, tok = account(srv)
    start = slot_after(5, slot=5)
    rid = book(srv, tok, start, start + 5)["id"]
    deadline = start - 3
    t_end = time.monotonic() + 30
    state = None
    while time.monotonic() < t_end:
        state = request(srv, "GET", f"/api/v1/reservations/{rid}", token=tok).json["reservation"]["state"]
        if state == "cancelled":
            break
        time.sleep(0.2)
    assert state == "cancelled"
    assert time.time() >= deadline - 0.5
    r = request(srv, "POST", f"/api/v1/reservations/{rid}/reconfirm", token=tok)
    msg = assert_error(r, 410, "id")
    assert "book again" in msg
    assert request(srv, "GET", f"/api/v1/reservations/{rid}", token=tok).json["reservation"]["cancelled_by"] == \
        "deadline"


def test_live_shows_its_chat_room_state(server_factory):
    """A live's chat object: not open (with the opening time the offsets
    give) until its room opens, open with the room's own times, closed once
    the room has closed (followed through the real timers)."""
    cfg = {"channels": FAST_CONFIG["channels"], "reservation": {"slot_s": 5},
           "schedule": {"reconfirm_before_s": 3, "room_open_before_s": 600, "room_close_after_s": 1,
                        "notice_before_s": 0, "close_warning_before_s": 0}}
    srv = server_factory(cfg)
    _, tok = account(srv)
    start = slot_after(10, slot=5)
    rid = book(srv, tok, start, start + 5, level="public", shared_password=None)["id"]

    chat = request(srv, "GET", f"/api/v1/lives/{rid}").json["live"]["chat"]
    assert chat == {"state": "not_open", "opens": iso(start - 600), "closes": iso(start + 5 + 1)}

    assert request(srv, "POST", f"/api/v1/reservations/{rid}/reconfirm", token=tok).status == 200
    t_end = time.monotonic() + 10
    while time.monotonic() < t_end:
        chat = request(srv, "GET", f"/api/v1/lives/{rid}").json["live"]["chat"]
        if chat["state"] != "not_open":
            break
        time.sleep(0.1)
    assert chat["state"] == "open" and chat["closes"] == iso(start + 5 + 1), chat
    assert abs(datetime.strptime(chat["opens"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
               - time.time()) < 15
    listed = next(x for x in request(srv, "GET", "/api/v1/schedule").json["lives"] if x["id"] == rid)
    assert listed["chat"] == chat

    t_end = time.monotonic() + 40
    while time.monotonic() < t_end:
        chat = request(srv, "GET", f"/api/v1/lives/{rid}").json["live"]["chat"]
        if chat["state"] == "closed":
            break
        time.sleep(0.2)
    assert chat["state"] == "closed" and time.time() >= start + 5 + 1 - 0.5, chat
