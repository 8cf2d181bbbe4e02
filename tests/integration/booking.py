"""What the reservation tests share: two channels, a server configuration
with 30-minute slots and a one-hour reconfirmation deadline, a fast one
whose timers fire within seconds, RFC 3339 times, slot arithmetic, and a
source of distinct free days for tests that share one server."""
import time
from datetime import datetime, timezone

SLOT = 1800
RECONFIRM = 3600  # longer than a slot: the next slot is always inside the cut-off
CHANNELS = [
    {"id": "main", "name": "Main stage", "capacity": 50, "bandwidth_kbps": 2000, "price_per_hour": 3000},
    {"id": "side", "name": "Side room", "capacity": 5, "bandwidth_kbps": 500, "price_per_hour": 1000},
]
SERVER_CONFIG = {
    "channels": CHANNELS,
    "reservation": {"timezone": "UTC", "slot_s": SLOT, "max_duration_s": 4 * 3600},
    "schedule": {"reconfirm_before_s": RECONFIRM},
}
# 5-second slots and a deadline 3 s before the start: the real timers fire within seconds.
FAST_CONFIG = {"channels": CHANNELS[:1], "reservation": {"slot_s": 5}, "schedule": {"reconfirm_before_s": 3}}


def iso(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def day_of(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d")


def slot_after(seconds, slot=SLOT):
    """The first slot boundary at least `seconds` from now."""
    t = int(time.time()) + seconds
    return (t + slot - 1) // slot * slot


class Days:
    """Hands out slots on distinct days, so tests on a shared server never collide."""
    n = 1

    @classmethod
    def take(cls, hours=2):
        """(start, end) of `hours` within one UTC day, with the slot after
        the end on that day too (a day's availability shows the booking and
        what follows it), on a day no earlier call was given."""
        start = slot_after(RECONFIRM + 3600) + cls.n * 86400
        cls.n += 1
        if (start + hours * 3600 + SLOT - 1) // 86400 != start // 86400:
            # it would reach midnight: early on the next day, which is then taken too
            start = (start // 86400 + 1) * 86400 + 3600
            cls.n += 1
        return start, start + hours * 3600


# ---- booking over the HTTP API (specs/http-api.md), for the tests of the plugins ----


def http_account(server, email=None):
    """A new account (with an e-mail address when given), logged in over HTTP: (user, password, token)."""
    from webapi import login
    jid, pw = server.add_user()
    user = jid.split("@")[0]
    if email:
        server.ctl("account", "email", user, email)
    return user, pw, login(server, user, pw)


def http_book(server, tok, title="Evening talk", friends=(), level="password", summary="A short talk", hours=2):
    """Books a slot on a day of its own on channel main: (reservation, start, end)."""
    from webapi import request
    start, end = Days.take(hours)
    body = {"channel": "main", "start": iso(start), "end": iso(end), "level": level, "title": title,
            "genre": "talk", "show_email": False, "show_url": False, "broadcast_password": "cast-secret",
            "friends": list(friends), "summary": summary}
    if level != "public":
        body["shared_password"] = "view-secret"
    r = request(server, "POST", "/api/v1/reservations", body, token=tok)
    assert r.status == 201, r
    return r.json["reservation"], start, end


def http_reconfirm(server, tok, rid):
    """Reconfirms; returns the settings document."""
    from webapi import request
    r = request(server, "POST", f"/api/v1/reservations/{rid}/reconfirm", token=tok)
    assert r.status == 200, r
    return r.json["settings"]
