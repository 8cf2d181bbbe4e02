"""Reservations over XEP-0050 ad-hoc commands (specs/reservation.md), driven
by slixmpp's xep_0050 / xep_0004 plugins: the whole book -> confirm ->
reconfirm -> settings flow, cancel at the confirmation stage, every
validation error, other accounts and guests, secret lives never listed,
concurrent bookings of one slot, and the reconfirmation deadline through the
real timers (also across kill -9 and restart)."""
import asyncio
import time

from booking import FAST_CONFIG, RECONFIRM, SLOT, Days, day_of, iso, slot_after
from booking import SERVER_CONFIG  # noqa: F401 (the module server's configuration)
from adhoc_client import guest, login, run, run_error


def booking(start_t, end_t, **over):
    v = {"channel": "main", "start": iso(start_t), "end": iso(end_t), "level": "password", "title": "Evening talk",
         "genre": "talk", "show_email": "false", "show_url": "false", "broadcast_password": "cast-secret",
         "shared_password": "view-secret", "friends": "bob@example.com", "summary": "A short talk",
         "detail": "Longer words"}
    v.update(over)
    return {k: x for k, x in v.items() if x is not None}


NS_DATA = "{jabber:x:data}"


def field_xml(form, var):
    for f in form.xml.iter(NS_DATA + "field"):
        if f.get("var") == var:
            return f
    raise AssertionError(f"no field {var}")


def field_options(form, var):
    return [o.findtext(NS_DATA + "value") for o in field_xml(form, var).iter(NS_DATA + "option")]


def values(iq):
    return iq["command"]["form"].get_values()


def table(iq):
    """Rows of a result table as dicts."""
    rows = []
    for item in iq["command"]["form"].xml.iter(NS_DATA + "item"):
        row = {}
        for f in item.iter(NS_DATA + "field"):
            vals = [v.text or "" for v in f.iter(NS_DATA + "value")]
            row[f.get("var")] = vals[0] if len(vals) == 1 else (vals if vals else "")
        rows.append(row)
    return rows


async def book(c, server, start, end, **over):
    """The two stages with one submission: returns the result Iq."""
    first = await run(c, server, "book", values=booking(start, end, **over))
    assert first["command"]["status"] == "executing", first
    return await run(c, server, "book", action="complete", sessionid=first["command"]["sessionid"])


async def my_channel(c, server):
    return {row["id"]: row for row in table(await run(c, server, "my-channel"))}


async def test_book_confirm_reconfirm_settings(server):
    alice_jid, alice_pw = server.add_user()
    server.ctl("account", "email", alice_jid, "alice@example.com")
    c = await login(server, alice_jid, alice_pw)
    start, end = Days.take(2)

    # Stage one: the form lists the channels.
    first = await run(c, server, "book")
    assert first["command"]["status"] == "executing"
    form = first["command"]["form"]
    assert set(field_options(form, "channel")) == {"main", "side"}
    assert field_xml(form, "broadcast_password").get("type") == "text-private"
    sid = first["command"]["sessionid"]

    # Stage two: everything shown back with the fee and the e-mail.
    confirm = await run(c, server, "book", action="next", sessionid=sid, values=booking(start, end))
    assert confirm["command"]["status"] == "executing"
    shown = values(confirm)
    assert shown["fee"] == "6000 JPY"
    assert shown["email"] == "alice@example.com"
    assert shown["title"] == "Evening talk"
    assert shown["start"] == iso(start)
    assert "cast-secret" not in str(confirm) and "view-secret" not in str(confirm)
    actions = confirm["command"]["actions"]
    assert "complete" in actions

    done = await run(c, server, "book", action="complete", sessionid=sid)
    assert done["command"]["status"] == "completed"
    res = values(done)
    rid = res["id"]
    assert len(rid) == 26 and rid.isalnum() and rid == rid.lower()
    assert res["fee"] == "6000" and res["currency"] == "JPY"
    assert res["reconfirm_by"] == iso(start - RECONFIRM)

    mine = await my_channel(c, server)
    assert mine[rid]["state"] == "awaiting_reconfirmation"
    assert mine[rid]["start"] == iso(start)

    # Settings are issued at reconfirmation, for the owner.
    _, cond, _, text = await run_error(c, server, "settings", values={"id": rid})
    assert cond == "conflict" and "reconfirm" in text
    st = values(await run(c, server, "reconfirm", values={"id": rid}))
    assert st["id"] == rid
    assert st["shared_password"] == "view-secret"
    assert st["room_jid"] == f"{rid}@live.{server.domain}"
    assert st["ingest_jid"] == f"{rid}@media.{server.domain}"
    assert st["page_url"].endswith("/live/" + rid)
    assert st["ingest_open"] == iso(start - 300) and st["ingest_close"] == iso(end + 300)
    assert st["bandwidth_kbps"] == "2000" and st["capacity"] == "50"
    assert st["friends"] == "bob@example.com"
    again = values(await run(c, server, "settings", values={"id": rid}))
    assert again == st
    assert (await my_channel(c, server))[rid]["state"] == "reconfirmed"

    # Listed publicly (a password live) for anyone, guests included, without
    # the e-mail the owner chose not to show.
    g = await guest(server)
    rows = {r["id"]: r for r in table(await run(g, server, "schedule"))}
    assert rows[rid]["password"] == "yes" and rows[rid]["email"] == ""
    assert rows[rid]["room"] == f"{rid}@live.{server.domain}"

    # The passwords never reach the log.
    log = server.stderr_text()
    assert "cast-secret" not in log and "view-secret" not in log


async def test_cancel_at_confirmation_stores_nothing(server):
    c = await login(server)
    start, end = Days.take()
    first = await run(c, server, "book", values=booking(start, end))
    sid = first["command"]["sessionid"]
    canceled = await run(c, server, "book", action="cancel", sessionid=sid)
    assert canceled["command"]["status"] == "canceled"
    assert await my_channel(c, server) == {}
    # The slot is still free for someone else.
    other = await login(server)
    assert (await book(other, server, start, end))["command"]["status"] == "completed"


async def test_going_back_keeps_the_values(server):
    c = await login(server)
    start, end = Days.take()
    first = await run(c, server, "book", values=booking(start, end, title="Back and forth"))
    sid = first["command"]["sessionid"]
    back = await run(c, server, "book", action="prev", sessionid=sid)
    assert back["command"]["status"] == "executing"
    assert field_xml(back["command"]["form"], "title").findtext(NS_DATA + "value") == "Back and forth"
    confirm = await run(c, server, "book", action="next", sessionid=sid,
                        values=booking(start, end, title="Changed my mind"))
    assert values(confirm)["title"] == "Changed my mind"
    done = await run(c, server, "book", action="complete", sessionid=sid)
    assert done["command"]["status"] == "completed"


async def test_validation_errors(server):
    c = await login(server)
    start, end = Days.take()
    past = slot_after(0) - 2 * SLOT
    soon = slot_after(1)  # inside the reconfirmation cut-off (RECONFIRM > SLOT)
    cases = [
        ({"channel": None}, "channel"),
        ({"start": None}, "start"),
        ({"title": None}, "title"),
        ({"broadcast_password": None}, "broadcast_password"),
        ({"shared_password": None}, "shared_password"),
        ({"channel": "nosuch"}, "channel"),
        ({"level": "private"}, "level"),
        ({"start": "tomorrow"}, "start"),
        ({"end": iso(start)}, "end"),
        ({"start": iso(past), "end": iso(past + SLOT)}, "start"),
        ({"start": iso(soon), "end": iso(soon + SLOT)}, "start"),
        ({"start": iso(start + 600)}, "start"),
        ({"end": iso(end + 60)}, "end"),
        ({"end": iso(start + 5 * 3600)}, "end"),
        ({"summary": "x" * 21}, "summary"),
        ({"detail": "x" * 201}, "detail"),
        ({"title": "t" * 101}, "title"),
        ({"friends": "not an address"}, "friends"),
        ({"show_url": "true"}, "url"),
        ({"url": "ftp://example.com"}, "url"),
        ({"broadcast_password": "abc"}, "broadcast_password"),
    ]
    for over, field in cases:
        etype, cond, specific, text = await run_error(c, server, "book", values=booking(start, end, **over))
        assert (etype, cond, specific) == ("modify", "bad-request", "bad-payload"), (over, etype, cond, text)
        assert text.startswith(field + ":"), (over, text)
    assert await my_channel(c, server) == {}

    # A public live needs no shared password; an overlap is a conflict.
    ok = await book(c, server, start, end, level="public", shared_password=None)
    assert ok["command"]["status"] == "completed"
    for a, b in ((start, end), (start - SLOT, start + SLOT), (end - SLOT, end + SLOT)):
        _, cond, _, text = await run_error(c, server, "book", values=booking(a, b))
        assert cond == "conflict" and text.startswith("start:") and "booked" in text, text
    # Touching edges are free, and so is the other channel.
    assert (await book(c, server, end, end + SLOT))["command"]["status"] == "completed"
    assert (await book(c, server, start - SLOT, start))["command"]["status"] == "completed"
    assert (await book(c, server, start, end, channel="side"))["command"]["status"] == "completed"


async def test_error_then_corrected_form_on_the_same_session(server):
    c = await login(server)
    start, end = Days.take()
    first = await run(c, server, "book")
    sid = first["command"]["sessionid"]
    _, cond, _, text = await run_error(c, server, "book", action="next", sessionid=sid,
                                       values=booking(start, end, summary="x" * 30))
    assert cond == "bad-request" and text.startswith("summary:")
    confirm = await run(c, server, "book", action="next", sessionid=sid, values=booking(start, end))
    assert confirm["command"]["status"] == "executing"


async def test_other_accounts_and_guests(server):
    alice = await login(server)
    bob = await login(server)
    start, end = Days.take()
    rid = values(await book(alice, server, start, end, level="secret"))["id"]
    for node in ("reconfirm", "settings", "cancel"):
        etype, cond, _, _ = await run_error(bob, server, node, values={"id": rid})
        assert (etype, cond) == ("auth", "forbidden"), node
    _, cond, _, _ = await run_error(bob, server, "reconfirm", values={"id": "a" * 26})
    assert cond == "item-not-found"
    assert rid not in await my_channel(bob, server)
    g = await guest(server)
    for node in ("book", "reconfirm", "settings", "cancel", "my-channel"):
        assert (await run_error(g, server, node))[1] == "forbidden", node
    # Reconfirmed, a secret live is still never listed.
    await run(alice, server, "reconfirm", values={"id": rid})
    for who in (alice, bob, g):
        assert rid not in {r["id"] for r in table(await run(who, server, "schedule"))}
    # Its owner cancels it; the slot is free again.
    done = await run(alice, server, "cancel", values={"id": rid})
    assert done["command"]["status"] == "completed"
    assert (await my_channel(alice, server))[rid]["state"] == "cancelled"
    _, cond, _, _ = await run_error(alice, server, "cancel", values={"id": rid})
    assert cond == "conflict"
    assert (await book(bob, server, start, end))["command"]["status"] == "completed"


async def test_availability(server):
    c = await login(server)
    start, end = Days.take(2)
    await book(c, server, start, end)
    day = day_of(start)
    g = await guest(server)
    res = await run(g, server, "availability", values={"date": day})
    rows = {r["channel"]: r for r in table(res)}
    assert set(rows) == {"main", "side"}
    main = rows["main"]
    assert main["capacity"] == "50" and main["price_per_hour"] == "3000"
    slots = dict(line.split(" ") for line in main["slots"])
    assert len(slots) == 48
    assert slots[f"{iso(start)}/{iso(start + SLOT)}"] == "booked"
    assert slots[f"{iso(end - SLOT)}/{iso(end)}"] == "booked"
    assert slots[f"{iso(end)}/{iso(end + SLOT)}"] in ("free", "closed")
    assert all(s != "booked" for s in dict(line.split(" ") for line in rows["side"]["slots"]).values())
    _, cond, specific, text = await run_error(g, server, "availability", values={"date": "2030-13-01"})
    assert (cond, specific) == ("bad-request", "bad-payload") and text.startswith("date:")


async def test_concurrent_bookings_of_one_slot(server):
    """Two accounts confirm the same slot at the same instant, many times:
    exactly one wins each time."""
    a = await login(server)
    b = await login(server)
    for _ in range(20):
        start, end = Days.take(1)
        sa = (await run(a, server, "book", values=booking(start, end)))["command"]["sessionid"]
        sb = (await run(b, server, "book", values=booking(start, end)))["command"]["sessionid"]

        async def complete(c, sid):
            try:
                res = await run(c, server, "book", action="complete", sessionid=sid)
                return values(res)["id"]
            except Exception as e:  # the loser gets conflict
                return e

        ra, rb = await asyncio.gather(complete(a, sa), complete(b, sb))
        wins = [r for r in (ra, rb) if isinstance(r, str)]
        assert len(wins) == 1, (ra, rb)
        loser = rb if isinstance(ra, str) else ra
        assert loser.iq["error"]["condition"] == "conflict"
        # The loser's session stays open (to go back and pick another slot): close it.
        c, sid = (b, sb) if isinstance(ra, str) else (a, sa)
        await run(c, server, "book", action="cancel", sessionid=sid)


# -- the reconfirmation deadline through the real timers -----------------------


async def wait_state(c, server, rid, state, timeout=30):
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = (await my_channel(c, server))[rid]["state"]
        if seen == state:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{rid} stayed {seen}, expected {state} within {timeout}s")


async def fast_booking(c, server):
    start = slot_after(5, slot=5)
    res = await book(c, server, start, start + 5)
    return values(res)["id"], start - 3


async def test_unconfirmed_reservation_is_cancelled_at_the_deadline(server_factory):
    srv = server_factory(FAST_CONFIG)
    jid, pw = srv.add_user()
    c = await login(srv, jid, pw)
    rid, deadline = await fast_booking(c, srv)
    assert time.time() < deadline
    assert (await my_channel(c, srv))[rid]["state"] == "awaiting_reconfirmation"
    await wait_state(c, srv, rid, "cancelled")
    assert time.time() >= deadline - 0.5
    etype, cond, _, text = await run_error(c, srv, "reconfirm", values={"id": rid})
    assert (etype, cond) == ("cancel", "not-allowed")
    assert "cancelled" in text and "book again" in text
    assert "reservation cancelled: " + rid in srv.stderr_text()


async def test_restart_before_the_deadline_still_cancels(server_factory):
    srv = server_factory(FAST_CONFIG)
    jid, pw = srv.add_user()
    c = await login(srv, jid, pw)
    rid, deadline = await fast_booking(c, srv)
    srv.kill9()
    srv.start()
    c = await login(srv, jid, pw)
    if time.time() < deadline - 0.5:
        assert (await my_channel(c, srv))[rid]["state"] == "awaiting_reconfirmation"
    await wait_state(c, srv, rid, "cancelled")


async def test_deadline_passed_while_down_cancels_at_start(server_factory):
    srv = server_factory(FAST_CONFIG)
    jid, pw = srv.add_user()
    c = await login(srv, jid, pw)
    rid, deadline = await fast_booking(c, srv)
    srv.stop()
    while time.time() < deadline + 0.5:  # bounded: the deadline is seconds away
        await asyncio.sleep(0.1)
    srv.start()
    c = await login(srv, jid, pw)
    await wait_state(c, srv, rid, "cancelled", timeout=10)


async def test_reconfirmed_in_time_survives_the_deadline(server_factory):
    srv = server_factory(FAST_CONFIG)
    jid, pw = srv.add_user()
    c = await login(srv, jid, pw)
    rid, deadline = await fast_booking(c, srv)
    await run(c, srv, "reconfirm", values={"id": rid})
    while time.time() < deadline + 1:
        await asyncio.sleep(0.1)
    assert (await my_channel(c, srv))[rid]["state"] in ("reconfirmed", "done")
