"""Guests chat on a live's page in a real browser (tests/browser/guest_chat.mjs:
Debian's chromium with playwright-core) over XMPP WebSocket, against a real
onaird, next to a slixmpp guest in the same room (driven from here when the
script asks): the schedule, a password live, a wrong password, the right
one, a second browser on a phone-sized screen, messages both ways with the
slixmpp client, private messages, the participant list, the room's notices,
an XSS attempt in a message, leaving; a full room and a room not open yet.

The server's timers are short: the password live starts about 25 seconds
after it is booked and its "starts in" notice comes 15 seconds before that,
so the notices arrive while the guests are in the room (or, if the browser
is slow, in the room's history)."""
import time

from booking import iso
from browser import scenario
from muc_client import book_live, guest, join, wait_presence
from webapi import request

ASYNC_TEST_TIMEOUT = 280
SERVER_CONFIG = {
    # The pages are served over plain HTTP on loopback, as in the demo: WebSocket
    # streams from loopback count as encrypted (http.loopback_is_secure), so guests may log in.
    "http": {"loopback_is_secure": True},
    "channels": [
        {"id": "main", "name": "Main stage", "capacity": 50, "bandwidth_kbps": 2000, "price_per_hour": 0},
        {"id": "tiny", "name": "Tiny room", "capacity": 1, "bandwidth_kbps": 500, "price_per_hour": 0},
    ],
    "reservation": {"slot_s": 5, "timezone": "UTC"},
    "schedule": {"reconfirm_before_s": 0, "room_open_before_s": 3600, "notice_before_s": 15,
                 "close_warning_before_s": 0},
}
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script> & <b>bold</b>'


async def test_guests_chat_on_the_live_page(server):
    now = int(time.time())
    start = (now + 25 + 4) // 5 * 5
    live = book_live(server, level="password", start=start, seconds=3600, slot=5, title="Evening jazz",
                     password="view-secret")
    full = book_live(server, level="public", channel="tiny", start=start, seconds=3600, slot=5, title="Tiny show")
    later = book_live(server, level="public", start=start + 3 * 3600, seconds=3600, slot=5, title="Late show")
    secret = book_live(server, level="secret", start=start + 7200, seconds=600, slot=5, title="Hidden show")
    listed = [x["id"] for x in request(server, "GET", "/api/v1/schedule").json["lives"]]
    assert live.id in listed and secret.id not in listed

    # The tiny room's only seat is taken by a slixmpp guest.
    filler = await guest(server)
    await join(filler, full, "Filler")
    slix = await guest(server)

    async def slix_join(nick, intro):
        await join(slix, live, nick, password="view-secret", intro=intro)
        return str(slix.boundjid)

    async def slix_expect(nick, body):
        m = await slix.wait_message(lambda m: m["type"] == "groupchat" and m["body"] == body
                                    and m["from"].resource == nick, timeout=15)
        return m["body"]

    async def slix_say(body):
        slix.send_message(mto=live.room, mbody=body, mtype="groupchat")
        await slix.wait_message(lambda m: m["type"] == "groupchat" and m["body"] == body, timeout=15)
        return True

    async def slix_private(nick, body):
        slix.send_message(mto=f"{live.room}/{nick}", mbody=body, mtype="chat")
        await slix.barrier()
        return True

    async def slix_got_nothing(body):
        """Everything the server sent slixmpp before a ping is in: none carries body."""
        await slix.barrier()
        got = [str(m) for m in slix.messages.items if m["body"] == body]
        assert not got, got
        return True

    async def slix_sees_leave(nick):
        await wait_presence(slix, lambda p: p["type"] == "unavailable" and p["from"].resource == nick, timeout=15)
        return True

    await scenario("guest_chat.mjs", {
        "base": f"http://127.0.0.1:{server.http_port}", "live": live.id, "full": full.id, "later": later.id,
        "secret": secret.id, "password": "view-secret", "title": "Evening jazz", "xss": XSS,
        "later_opens": iso(later.start - 3600),
    }, {"slix_join": slix_join, "slix_expect": slix_expect, "slix_say": slix_say, "slix_private": slix_private,
        "slix_got_nothing": slix_got_nothing, "slix_sees_leave": slix_sees_leave})

    # What the room logged: the browsers' messages (the XSS one as it was typed) and a notice.
    logged = server.ctl("room", "log", live.id).stdout
    assert "Hello from the browser" in logged and "Hello from the phone" in logged, logged
    assert "window.__xss=1" in logged, logged
    assert "Just for you" not in logged  # private messages are not the room's
    assert "The live \"Evening jazz\"" in logged, logged
