"""The browsers' media WebSocket (specs/media.md, "Browsers") against a real
onaird, with ffmpeg (Debian's) as the broadcaster: a token asked over XMPP
by a room occupant (refused to others), bad, reused and expired tokens
refused with their close code, the browser counted against the channel's
capacity together with the Jingle viewers, the stream arriving as access
units that start with a keyframe carrying its SPS and PPS and that ffmpeg
decodes, the close when the live ends, and the browser that opens again
with a new token when the broadcaster comes back."""
import asyncio
import socket
import subprocess
import time

import pytest
import websockets

import jingle
from jingle import Offer, initiate, initiate_error, media_jid, terminate, wait_accept
from media_peer import FFMPEG, free_udp_pair, ffmpeg_cast, health, stop
from media_ws import closed, media_token, next_message, open_media, token_error
from muc_client import book_live, guest, join, owner
from test_media_ffmpeg import cast as cast_av
from webapi import login, request

TTL = 3
CONFIG = {
    "channels": [{"id": "main", "name": "Main stage", "capacity": 2, "bandwidth_kbps": 2000, "price_per_hour": 0}],
    "reservation": {"slot_s": 60},
    "schedule": {"reconfirm_before_s": 0, "room_open_before_s": 7200, "ingest_open_before_s": 7200,
                 "notice_before_s": 0, "close_warning_before_s": 0},
    "media": {"token_ttl_s": TTL},
}


def soon():
    return (int(time.time()) // 60 + 1) * 60 + 60


async def cast_video(srv, live, seconds):
    alice = jingle.watch(await owner(srv, live))
    vport = free_udp_pair()
    offer = Offer("broadcast", password="cast-secret")
    v = offer.content("video", port=vport, pt=(96, "H264", 90000))
    await initiate(alice, media_jid(live), "cast", offer)
    acc = await wait_accept(alice, "cast")
    server = (acc.contents["video"].ip, acc.contents["video"].port)
    return alice, ffmpeg_cast(server, video=(vport, v["key"]), seconds=seconds, gop=25, profile="baseline")


async def read_units(ws, n):
    """The next n access units of a playing browser (no text message among them)."""
    units = []
    while len(units) < n:
        m = await next_message(ws)
        assert not isinstance(m, dict), m
        units.append(m)
    return units


async def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"{what} not within {timeout}s"
        await asyncio.sleep(0.05)


async def test_tokens_capacity_and_stream(server_factory, tmp_path):
    srv = server_factory(CONFIG)
    live = book_live(srv, level="password", start=soon())
    viewer = await guest(srv)
    await join(viewer, live, "Viewer", password="view-secret")

    # Outside the room: no token.
    stranger = await guest(srv)
    cond, text = await token_error(stranger, live)
    assert cond == "not-authorized" and "shared password" in text, (cond, text)

    # A token nobody was given is refused with 1008 and the reason.
    ws = await open_media(srv, "A" * 32)
    rest, (code, reason) = await closed(ws)
    assert code == 1008 and reason == "unknown or expired token", (code, reason)
    assert rest == [{"type": "error", "message": "unknown or expired token"}], rest

    # The occupant's token; before the live is on air the browser waits.
    tok = await media_token(viewer, live)
    assert tok.get("path") == "/media-websocket" and tok.get("protocol") == "onair-media" and len(tok.text) == 32
    ws1 = await open_media(srv, tok.text)
    assert await next_message(ws1) == {"type": "waiting"}
    # A token serves once.
    again = await open_media(srv, tok.text)
    _, (code, _) = await closed(again)
    assert code == 1008

    # One Jingle viewer fills the capacity of 2 with the browser.
    g = jingle.watch(await guest(srv))
    await join(g, live, "Jingle", password="view-secret")
    offer = Offer("watch", credential=False)
    offer.content("video", port=free_udp_pair(), pt=(97, "H264", 90000))
    await initiate(g, media_jid(live), "view", offer)
    assert health(srv)["media_viewers"] == 2
    ws2 = await open_media(srv, (await media_token(viewer, live)).text)
    rest, (code, reason) = await closed(ws2)
    assert code == 1013 and reason == "this live has reached its capacity of 2 viewers", (code, reason)
    g2 = jingle.watch(await guest(srv))  # the room is full too: the shared password in <watch/>
    offer2 = Offer("watch", password="view-secret")
    offer2.content("video", port=free_udp_pair(), pt=(97, "H264", 90000))
    e = await initiate_error(g2, media_jid(live), "view2", offer2)
    assert e.condition == "resource-constraint", e

    # On air: the browser is told, then receives access units, the first a
    # keyframe with SPS (7), PPS (8) and an IDR slice (5).
    alice, caster = await cast_video(srv, live, seconds=6)
    try:
        assert await next_message(ws1) == {"type": "playing"}
        units = await read_units(ws1, 50)
        first = units[0]
        assert first.is_key, first.nal_types()
        assert {7, 8, 5} <= set(first.nal_types()), first.nal_types()
        assert sum(u.is_key for u in units) >= 1
        assert all(b.ts != a.ts for a, b in zip(units, units[1:]))  # one message per access unit
        # What arrived is a real H.264 stream: ffmpeg decodes every frame.
        path = tmp_path / "browser.h264"
        path.write_bytes(b"".join(u.annexb for u in units))
        out = subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "h264", "-i", str(path), "-f",
                              "framemd5", "-"], capture_output=True, text=True, timeout=30)
        frames = [line for line in out.stdout.splitlines() if line and not line.startswith("#")]
        assert len(frames) == 50, (len(frames), out.stderr)
        assert not out.stderr.strip(), out.stderr

        # The browser leaves: a place is free again.
        await ws1.close()
        await wait_for(lambda: health(srv)["media_viewers"] == 1, 5, "the browser's place freed")

        # A late browser starts at the kept keyframe group.
        ws3 = await open_media(srv, (await media_token(viewer, live)).text)
        assert await next_message(ws3) == {"type": "playing"}
        m = await next_message(ws3)
        assert m.is_key and 7 in m.nal_types(), m.nal_types()

        # An expired token is refused.
        tok = await media_token(viewer, live)
        await asyncio.sleep(TTL + 0.5)  # the token's lifetime is what is tested
        late = await open_media(srv, tok.text)
        _, (code, reason) = await closed(late)
        assert code == 1008 and reason == "unknown or expired token", (code, reason)

        # The broadcaster ends the live: the browser is told and closed.
        await terminate(alice, media_jid(live), "cast")
        rest, (code, reason) = await closed(ws3)
        assert rest and rest[-1] == {"type": "ended", "message": "the live has ended"}, rest[-3:]
        assert code == 1000, (code, reason)
        # My channel counts the browsers with the Jingle viewer: two at once
        # (the first browser and the Jingle viewer), three in all (and the late browser).
        r = request(srv, "GET", "/api/v1/reservations", token=login(srv, live.owner.split("@")[0], live.owner_pw))
        mine = next(x for x in r.json["reservations"] if x["id"] == live.id)
        assert (mine["viewers"], mine["viewers_total"]) == (2, 3), mine
    finally:
        stop(caster)


async def test_browsers_get_the_opus_audio(server_factory):
    """A live with H.264 video and Opus audio (ffmpeg): a playing browser
    receives the audio too, one Opus packet per message (kind 2), each of
    20 ms (its TOC byte) at timestamps 960 apart, between the access units;
    and the broadcaster's sender reports as clock messages, which put the
    two streams' RTP timestamps (each from its own random start) on one
    wall clock, where what arrives together was captured together.  A
    browser that starts later is given the clocks at once."""
    srv = server_factory(CONFIG)
    live = book_live(srv, start=soon())  # public
    viewer = await guest(srv)
    ws = await open_media(srv, (await media_token(viewer, live)).text)
    assert await next_message(ws) == {"type": "waiting"}
    alice, caster, _ = await cast_av(srv, live, seconds=20, profile="baseline")
    try:
        assert await next_message(ws) == {"type": "playing"}
        video, audio, clocks = [], [], {}
        skew = []  # wall-clock time of each Opus packet less that of the access unit before it
        while len(audio) < 100 or len(video) < 25 or len(clocks) < 2:
            m = await next_message(ws, clocks=True)
            if isinstance(m, dict):
                assert m["type"] == "clock" and m["kind"] in (1, 2), m
                assert set(m) == {"type", "kind", "rtp", "ntp_ms"}, m
                clocks[m["kind"]] = m
                continue
            (audio if m.is_audio else video).append(m)
            if m.is_audio and len(clocks) == 2 and video:
                skew.append(wall_ms(clocks[2], m.ts, 48000) - wall_ms(clocks[1], video[-1].ts, 90000))
        assert video[0].is_key
        steps = [b.ts - a.ts for a, b in zip(audio, audio[1:])]
        assert steps.count(960) >= len(steps) - 2, steps[:20]  # 20 ms each, in order
        twenty_ms = {3, 7, 11, 13, 15, 19, 23, 27, 31}  # RFC 6716 section 3.1: configurations of 20 ms
        assert all(p.opus and p.opus[0] >> 3 in twenty_ms and p.opus[0] & 3 == 0 for p in audio), \
            [p.opus[:1].hex() for p in audio[:10]]
        # An access unit every 40 ms, a packet every 20 ms: a packet's sound is
        # captured close to the picture that came before it.
        assert len(skew) >= 20 and sorted(abs(x) for x in skew)[len(skew) // 2] < 200, skew[:40]
        assert abs(clocks[1]["ntp_ms"] - clocks[2]["ntp_ms"]) < 60000, clocks

        # A browser that starts now gets both clocks right after "playing".
        late = await open_media(srv, (await media_token(viewer, live)).text)
        assert await next_message(late) == {"type": "playing"}
        first = [await next_message(late, clocks=True) for _ in range(2)]
        assert {m["kind"] for m in first if isinstance(m, dict) and m.get("type") == "clock"} == {1, 2}, first
    finally:
        stop(caster)
        await terminate(alice, media_jid(live), "cast")


def wall_ms(clock, ts, rate):
    """The broadcaster's wall-clock time (ms) of an RTP timestamp, from a clock message."""
    diff = (ts - clock["rtp"]) & 0xFFFFFFFF
    if diff >= 1 << 31:
        diff -= 1 << 32
    return clock["ntp_ms"] + diff * 1000 / rate


async def test_a_browser_follows_the_broadcaster_back(server_factory, tmp_path):
    """The broadcaster ends the live and goes live again inside the ingest
    window: the browser closed at the end opens again with a new token (as
    the live page does), waits, and plays the new stream from its first
    keyframe, with nothing of the old stream before it."""
    srv = server_factory(CONFIG)
    live = book_live(srv, start=soon())  # public
    viewer = await guest(srv)
    ws = await open_media(srv, (await media_token(viewer, live)).text)
    assert await next_message(ws) == {"type": "waiting"}

    alice, caster = await cast_video(srv, live, seconds=20)
    try:
        assert await next_message(ws) == {"type": "playing"}
        first = [await next_message(ws) for _ in range(10)]
        assert all(not isinstance(m, dict) for m in first) and first[0].is_key
        await terminate(alice, media_jid(live), "cast")
        rest, (code, _) = await closed(ws)
        assert rest and rest[-1] == {"type": "ended", "message": "the live has ended"}, rest[-3:]
        assert code == 1000
    finally:
        stop(caster)
    await wait_for(lambda: health(srv)["media_lives_on_air"] == 0, 5, "the live's end")

    # Off air, inside the window: a new token, and the browser waits.
    ws = await open_media(srv, (await media_token(viewer, live)).text)
    assert await next_message(ws) == {"type": "waiting"}
    with pytest.raises(TimeoutError):  # nothing is sent while off air (the old stream is not kept)
        await next_message(ws, timeout=1)

    # The broadcaster is back: the browser plays the new stream.
    alice, caster = await cast_video(srv, live, seconds=20)
    try:
        assert await next_message(ws) == {"type": "playing"}
        units = await read_units(ws, 30)
        assert units[0].is_key and {7, 8, 5} <= set(units[0].nal_types()), units[0].nal_types()
        assert {b.ts - a.ts for a, b in zip(units, units[1:])} == {3600}
        path = tmp_path / "again.h264"
        path.write_bytes(b"".join(u.annexb for u in units))
        out = subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "h264", "-i", str(path), "-f",
                              "framemd5", "-"], capture_output=True, text=True, timeout=30)
        frames = [line for line in out.stdout.splitlines() if line and not line.startswith("#")]
        assert len(frames) == 30 and not out.stderr.strip(), (len(frames), out.stderr)
    finally:
        stop(caster)
        await terminate(alice, media_jid(live), "cast")
    rest, (code, _) = await closed(ws)
    assert rest and rest[-1] == {"type": "ended", "message": "the live has ended"}, rest[-3:]


async def test_a_browser_without_token_is_closed(server_factory):
    """A connection that never sends its token does not stay open."""
    srv = server_factory({"c2s": {"auth_timeout_s": 1}})
    ws = await websockets.connect(f"ws://127.0.0.1:{srv.http_port}/media-websocket", subprotocols=["onair-media"])
    rest, (code, reason) = await closed(ws, timeout=5)
    assert code == 1008 and reason == "no token came in time", (code, reason)
    assert rest == [{"type": "error", "message": "no token came in time"}], rest
    # Without the subprotocol the handshake is refused.
    try:
        await websockets.connect(f"ws://127.0.0.1:{srv.http_port}/media-websocket")
    except websockets.InvalidStatusCode as e:
        assert e.status_code == 400
    else:
        raise AssertionError("a handshake without the onair-media subprotocol was accepted")


async def test_a_slow_browser_drops_to_the_next_keyframe(server_factory):
    """A browser that stops reading misses access units once its queue is
    full (media.websocket_queue_bytes), and resumes at a keyframe; another
    browser of the same live receives every access unit meanwhile.  The
    stream lasts long enough for a loaded machine (ffmpeg encoding slower
    than real time): the slow browser reads until it has seen a gap and a
    second of the stream after it, not a fixed count."""
    srv = server_factory(dict(CONFIG, media={"websocket_queue_bytes": 65536}))
    live = book_live(srv, level="password", start=soon())
    viewer = await guest(srv)
    await join(viewer, live, "Viewer", password="view-secret")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", srv.http_port))
    slow = await websockets.connect(f"ws://127.0.0.1:{srv.http_port}/media-websocket", sock=sock,
                                    subprotocols=["onair-media"], max_size=None, max_queue=1, read_limit=4096)
    await slow.send((await media_token(viewer, live)).text)
    fast = await open_media(srv, (await media_token(viewer, live)).text)
    assert await next_message(slow) == {"type": "waiting"}
    assert await next_message(fast) == {"type": "waiting"}
    alice, caster = await cast_video(srv, live, seconds=40)
    try:
        assert await next_message(fast) == {"type": "playing"}
        # The fast browser reads 6 seconds of video (one access unit per
        # 3600 ticks at 25 frames a second) while the slow one reads nothing.
        units = [await next_message(fast) for _ in range(150)]
        steps = {b.ts - a.ts for a, b in zip(units, units[1:])}
        assert steps == {3600}, sorted(steps)[:10]
        # The slow one now reads: what it missed is a gap, after which comes a keyframe.
        got = []
        m = await next_message(slow)
        assert m == {"type": "playing"}, m
        gaps = []
        while not gaps or len(got) - gaps[0] < 25:
            m = await next_message(slow)
            assert not isinstance(m, dict), (m, len(got), gaps)
            got.append(m)
            if len(got) > 1 and got[-1].ts - got[-2].ts != 3600:
                gaps.append(len(got) - 1)
        assert gaps, "the slow browser missed nothing"
        assert all(got[i].is_key for i in gaps), [(got[i].ts - got[i - 1].ts, got[i].is_key) for i in gaps]
        assert got[0].is_key
    finally:
        stop(caster)
        await terminate(alice, media_jid(live), "cast")


async def test_a_live_without_h264_has_nothing_for_browsers(server_factory):
    """A live that goes on air with VP8 video: the waiting browser is told
    why and closed, and its place is free again."""
    srv = server_factory(CONFIG)
    live = book_live(srv, start=soon())  # public: any guest gets a token
    viewer = await guest(srv)
    ws = await open_media(srv, (await media_token(viewer, live)).text)
    assert await next_message(ws) == {"type": "waiting"}
    alice = jingle.watch(await owner(srv, live))
    offer = Offer("broadcast", password="cast-secret")
    offer.content("video", port=free_udp_pair(), pt=(100, "VP8", 90000))
    await initiate(alice, media_jid(live), "cast", offer)
    await wait_accept(alice, "cast")
    rest, (code, reason) = await closed(ws)
    assert code == 1003 and reason == "this live sends no H.264 video, which the player needs", (code, reason)
    assert rest == [{"type": "error", "message": reason}], rest
    await wait_for(lambda: health(srv)["media_viewers"] == 0, 5, "the browser's place freed")
    await terminate(alice, media_jid(live), "cast")
