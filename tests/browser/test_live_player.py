"""A guest watches a live in a real browser (tests/browser/live_player.mjs:
Debian's chromium with playwright-core): the live page's player gets its
media token over the page's XMPP connection, opens the media WebSocket and
decodes the H.264 stream with WebCodecs (decoded frames > 0, a picture of
the stream's size that is not black) and its Opus sound (decoded packets > 0,
played once the viewer turns the sound on), while ffmpeg (Debian's) sends a test
pattern as SRTP ingest with the negotiated key, as in
tests/integration/test_media_ffmpeg.py; the live's end reaches the page, and
when the broadcaster comes back the page plays again without a reload (and
the schedule shows the live on air with its viewer).  In
the room of a live whose stream window has not opened, the player says when
it opens."""
import time

import jingle
from booking import iso
from browser import scenario
from jingle import Offer, initiate, media_jid, terminate, wait_accept
from media_peer import ffmpeg_cast, free_udp_pair, health, stop
from muc_client import book_live, owner

ASYNC_TEST_TIMEOUT = 200
SERVER_CONFIG = {
    "http": {"loopback_is_secure": True},
    "channels": [{"id": "main", "name": "Main stage", "capacity": 5, "bandwidth_kbps": 2000, "price_per_hour": 0}],
    "reservation": {"slot_s": 60, "timezone": "UTC"},
    "schedule": {"reconfirm_before_s": 0, "room_open_before_s": 7200, "ingest_open_before_s": 3600,
                 "notice_before_s": 0, "close_warning_before_s": 0},
}


async def test_live_page_plays_the_stream(server):
    start = (int(time.time()) // 60 + 1) * 60 + 60
    live = book_live(server, level="password", start=start, password="view-secret", title="Test pattern")
    # Its room is open, but its stream may be watched only from an hour before the start.
    early = book_live(server, level="public", start=start + 5400, title="Later show")
    state = {}

    async def go_live():
        if "caster" in state:  # on air again: the first ffmpeg is done with
            stop(state.pop("caster"))
        state["sid"] = sid = f"cast{state.get('n', 0)}"
        state["n"] = state.get("n", 0) + 1
        alice = state.get("alice") or jingle.watch(await owner(server, live))
        vport, aport = free_udp_pair(), free_udp_pair()
        offer = Offer("broadcast", password="cast-secret")
        v = offer.content("video", port=vport, pt=(96, "H264", 90000))
        a = offer.content("audio", port=aport, pt=(111, "opus", 48000, 2))
        await initiate(alice, media_jid(live), sid, offer)
        acc = await wait_accept(alice, sid)
        addr = (acc.contents["video"].ip, acc.contents["video"].port)
        # H.264 baseline, a keyframe every second, and an Opus tone, for longer than the page needs
        state["caster"] = ffmpeg_cast(addr, video=(vport, v["key"]), audio=(aport, a["key"]), seconds=60, gop=25,
                                      profile="baseline")
        state["alice"] = alice
        return True

    async def viewers():
        return health(server)["media_viewers"]

    async def end_live():
        await terminate(state["alice"], media_jid(live), state["sid"])
        return True

    try:
        await scenario("live_player.mjs", {"base": f"http://127.0.0.1:{server.http_port}", "live": live.id,
                                           "password": "view-secret", "early": early.id,
                                           "early_opens": iso(early.start - 3600)},
                       {"go_live": go_live, "viewers": viewers, "end_live": end_live})
    finally:
        if "caster" in state:
            stop(state["caster"])
