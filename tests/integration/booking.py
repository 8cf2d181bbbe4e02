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
        start = slot_after(RECONFIRM + 3600) + cls.n * 86400
        cls.n += 1
        return start, start + hours * 3600
