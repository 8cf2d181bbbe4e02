"""A broadcaster books, reconfirms and cancels through the web pages in a
real browser (tests/browser/broadcaster.mjs: Debian's chromium with
playwright-core), against a real onaird; what the pages did is checked
through the JSON API as well."""
import asyncio
import time
from datetime import datetime, timedelta, timezone

from browser import scenario
from booking import iso
from webapi import login, request

ASYNC_TEST_TIMEOUT = 280
SERVER_CONFIG = {
    "channels": [
        {"id": "main", "name": "Main stage", "capacity": 50, "bandwidth_kbps": 2000, "price_per_hour": 3000},
        {"id": "side", "name": "Side room", "capacity": 5, "bandwidth_kbps": 500, "price_per_hour": 1000},
    ],
    "reservation": {"timezone": "UTC", "slot_s": 1800, "currency": "JPY"},
    "schedule": {"reconfirm_before_s": 3600},
}
# An XSS attempt as the title: every page must show it as text.
TITLE = 'Songs <img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


def day_string(d):
    return d.strftime("%Y-%m-%d")


async def test_broadcaster_books_reconfirms_and_cancels(server):
    jid, password = server.add_user()
    user = jid.split("@")[0]
    server.ctl("account", "email", user, "alice@example.com")
    token = login(server, user, password)
    today = datetime.now(timezone.utc).date()
    day = today + timedelta(days=3)
    # Another booking on the same day, 10:00-11:00, to be cancelled on My channel.
    other_start = int(datetime(day.year, day.month, day.day, 10, tzinfo=timezone.utc).timestamp())
    r = request(server, "POST", "/api/v1/reservations",
                {"channel": "main", "start": iso(other_start), "end": iso(other_start + 3600), "level": "public",
                 "title": "Morning show", "broadcast_password": "cast-secret"}, token=token)
    assert r.status == 201, r
    other = r.json["reservation"]["id"]

    async def count_reservations():
        return len(request(server, "GET", "/api/v1/reservations", token=token).json["reservations"])

    async def reservation(id):
        r = request(server, "GET", f"/api/v1/reservations/{id}", token=token)
        assert r.status == 200, r
        return r.json["reservation"]

    await scenario("broadcaster.mjs", {
        "base": f"http://127.0.0.1:{server.http_port}", "user": user, "password": password,
        "email": "alice@example.com", "day": day_string(day), "day_before": day_string(day - timedelta(days=1)),
        "title": TITLE, "other": other, "other_slot": 20,
    }, {"count_reservations": count_reservations, "reservation": reservation})

    # What the pages booked, as the server has it.
    mine = request(server, "GET", "/api/v1/reservations", token=token).json["reservations"]
    booked = [m for m in mine if m["id"] != other]
    assert len(booked) == 1, mine
    b = booked[0]
    start = int(datetime(day.year, day.month, day.day, 18, tzinfo=timezone.utc).timestamp())
    assert (b["title"], b["level"], b["channel"], b["start"], b["end"]) == \
        (TITLE, "password", "main", iso(start), iso(start + 7200))
    assert b["state"] == "reconfirmed" and b["fee"] == 6000 and b["show_email"] is True
    assert b["genre"] == "music" and b["summary"] == "Songs and talk"
    assert b["detail"] == "Two hours of songs.\nQuestions welcome."
    assert b["friends"] == ["bob@example.com", "carol@localhost"]
    settings = request(server, "GET", f"/api/v1/reservations/{b['id']}/settings", token=token).json["settings"]
    assert settings["shared_password"] == "view-pass"
    o = next(m for m in mine if m["id"] == other)
    assert o["state"] == "cancelled" and o["cancelled_by"] == "owner"
    assert time.time() < start  # the booking was made ahead, as the rules say


async def test_past_lives_show_their_viewer_count(server_factory):
    """A live that has ended (through the real timers: 5-second slots) is
    "Done" on My channel with its viewer count."""
    srv = server_factory({"channels": SERVER_CONFIG["channels"][:1], "reservation": {"slot_s": 5},
                          "schedule": {"reconfirm_before_s": 0}})
    jid, password = srv.add_user()
    user = jid.split("@")[0]
    token = login(srv, user, password)
    start = (int(time.time()) + 5 + 4) // 5 * 5
    r = request(srv, "POST", "/api/v1/reservations",
                {"channel": "main", "start": iso(start), "end": iso(start + 5), "level": "public",
                 "title": "Short show", "broadcast_password": "cast-secret"}, token=token)
    assert r.status == 201, r
    rid = r.json["reservation"]["id"]
    assert request(srv, "POST", f"/api/v1/reservations/{rid}/reconfirm", token=token).status == 200
    deadline = time.monotonic() + 30
    res = None
    while time.monotonic() < deadline:
        res = request(srv, "GET", f"/api/v1/reservations/{rid}", token=token).json["reservation"]
        if res["state"] == "done":
            break
        await asyncio.sleep(0.2)
    assert res["state"] == "done", res
    await scenario("past_lives.mjs", {"base": f"http://127.0.0.1:{srv.http_port}", "user": user,
                                      "password": password, "done": rid, "viewers": res["viewers"]})
