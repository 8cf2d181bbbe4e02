"""The live stream with SRTP peers written here on libsrtp2 (python3-pylibsrtp)
and slixmpp for Jingle (specs/media.md): relay and re-protection per viewer,
forged, tampered, replayed and unknown packets dropped and counted, the
keyframe group first for a late joiner, feedback to the broadcaster
rate-limited, policing, every refusal with its error, the live's end (by
the broadcaster, by silence, at the window's close) terminating viewers
with the room's notices, counts in "my channel", and kill -9."""
import asyncio
import time

import jingle
from jingle import Offer, initiate, initiate_error, media_jid, terminate, wait_accept, wait_terminate
from media_peer import (SrtpPeer, fu_a, health, nack, nal, pli, receiver_report, stap_a)
from muc_client import book_live, guest, join, member, owner, wait_bodiless  # noqa: F401
from webapi import login, request

CHANNELS = [
    {"id": "main", "name": "Main stage", "capacity": 2, "bandwidth_kbps": 2000, "price_per_hour": 0},
    {"id": "slow", "name": "Slow room", "capacity": 5, "bandwidth_kbps": 64, "price_per_hour": 0},
]
CONFIG = {
    "channels": CHANNELS,
    "reservation": {"slot_s": 60},
    "schedule": {"reconfirm_before_s": 0, "room_open_before_s": 7200, "ingest_open_before_s": 7200,
                 "notice_before_s": 0, "close_warning_before_s": 0},
    "media": {"ingest_timeout_s": 30, "feedback_per_s": 3, "keyframe_request_interval_ms": 1000},
}
H264 = (96, "H264", 90000)
SERVER = ("127.0.0.1", 0)


def soon():
    """A start within the two hours of the test servers' windows."""
    return (int(time.time()) // 60 + 1) * 60 + 60


def server_addr(acc, name="video"):
    c = acc.contents[name]
    return (c.ip, c.port)


async def go_live(srv, live, port, key=None, pt=H264, sid="cast"):
    """The owner goes on air with one video content sent from `port`."""
    alice = jingle.watch(await owner(srv, live))
    offer = Offer("broadcast", password="cast-secret")
    c = offer.content("video", port=port, pt=pt, key=key, rtcp_mux=True)
    await initiate(alice, media_jid(live), sid, offer)
    acc = await wait_accept(alice, sid)
    return alice, c["key"], acc


async def watch_live(c, live, port, sid="view", pt=(102, "H264", 90000), password=None, credential=None, **content):
    jingle.watch(c)
    offer = Offer("watch", password=password, credential=credential if credential is not None else password is not None)
    offer.content("video", port=port, pt=pt, rtcp_mux=True, **content)
    await initiate(c, media_jid(live), sid, offer)
    return offer


def key_group(seq, ts):
    """An H.264 keyframe access unit: SPS+PPS (STAP-A), then an IDR in three FU-A fragments."""
    idr = [fu_a(5, b"\x11" * 100, True, False), fu_a(5, b"\x22" * 100, False, False),
           fu_a(5, b"\x33" * 100, False, True)]
    return [(seq, ts, stap_a(nal(7, 12), nal(8, 6)), False)] + \
           [(seq + 1 + i, ts, p, i == 2) for i, p in enumerate(idr)]


async def on_air(srv):
    """A live booked and on air, its broadcaster's packets from an SrtpPeer:
    (live, the peer, the owner's client, its key, the acceptance, the server's address)."""
    live = book_live(srv, start=soon())
    tx = SrtpPeer(b"\x00" * 30)
    alice, key, acc = await go_live(srv, live, tx.port)
    tx.set_key(key, inbound=False)
    return live, tx, alice, key, acc, server_addr(acc)


async def test_relay_reprotects_and_drops_what_is_not_authentic(server_factory):
    srv = server_factory(CONFIG)
    live, tx, alice, key, acc, to = await on_air(srv)
    assert acc.contents["video"].rtcp_mux and to[1] == health(srv)["media_port"]
    # The live's settings name the same endpoint and address.
    r = request(srv, "GET", f"/api/v1/reservations/{live.id}/settings", token=live.token)
    st = r.json["settings"]
    assert (st["ingest_jid"], st["ingest_host"], st["ingest_port"]) == (media_jid(live), to[0], to[1])
    assert "AES_CM_128_HMAC_SHA1_80" in st["ingest_srtp"] and "H264/90000" in st["ingest_video"]
    assert "opus/48000/2" in st["ingest_audio"]
    viewer = await guest(srv)
    rx = SrtpPeer(b"\x00" * 30, inbound=True)
    await watch_live(viewer, live, rx.port)
    vacc = await wait_accept(viewer, "view")
    assert vacc.contents["video"].pt[:3] == (102, "H264", 90000)
    rx.set_key(vacc.contents["video"].key, inbound=True)
    assert vacc.contents["video"].key != key  # each side its own key
    before = health(srv)
    sent = []
    for seq, ts, payload, marker in key_group(1000, 9000):
        sent.append(tx.send_rtp(to, seq, ts, payload, marker=marker))
    for i in range(4):
        got = await rx.recv_rtp()
        assert got.seq == 1000 + i and got.ts == 9000 and got.pt == 102 and got.ssrc == 0x11223344
    # Tampered: a valid header, a flipped payload byte (the tag no longer matches).
    bad = bytearray(tx.send_rtp(to, 1004, 12600, nal(1, 50)))
    assert (await rx.recv_rtp()).seq == 1004
    bad[2:4] = (1005).to_bytes(2, "big")
    bad[20] ^= 0xFF
    tx.send_raw(to, bytes(bad))
    # Replayed: a packet the server has already taken.
    tx.send_raw(to, sent[1])
    # Forged: a key nobody negotiated, from the broadcaster's address.
    forger = SrtpPeer(b"\x07" * 30)
    forged = forger.srtp.protect(bytes(bad[:12]) + b"x" * 40)
    tx.send_raw(to, forged)
    # From an address no session has.
    forger.send_raw(to, sent[0])
    tx.send_rtp(to, 1005, 16200, nal(1, 50), marker=True)
    got = await rx.recv_rtp()
    assert got.seq == 1005, "only the authentic packet arrives"
    assert await rx.silent(0.3)
    after = await wait_counts(srv, lambda h: h["media_unknown_source"] > before["media_unknown_source"])
    assert after["media_auth_failed"] - before["media_auth_failed"] == 2
    assert after["media_replayed"] - before["media_replayed"] == 1
    assert after["media_unknown_source"] - before["media_unknown_source"] == 1
    assert after["media_packets_in"] - before["media_packets_in"] == 6
    assert after["media_packets_out"] - before["media_packets_out"] == 6
    assert after["media_lives_on_air"] == 1 and after["media_viewers"] == 1
    # Keys never reach the log.
    log = srv.stderr_text()
    for k in (key, vacc.contents["video"].key):
        assert jingle.b64(k) not in log
    tx.close(), rx.close(), forger.close()


async def test_a_viewer_on_aes_gcm(server_factory):
    """AEAD_AES_128_GCM (RFC 7714): the viewer's 28-byte key, the server's
    answer in the same suite, the stream re-protected under it (the
    broadcaster on AES-CM); a key of the wrong length is refused."""
    srv = server_factory(CONFIG)
    live, tx, alice, key, acc, to = await on_air(srv)
    viewer = await guest(srv)
    wrong = Offer("watch", credential=False)
    wrong.content("video", port=9, pt=(102, "H264", 90000), suite="AEAD_AES_128_GCM", key=b"\x01" * 30)
    bad = await initiate_error(viewer, media_jid(live), "short", wrong)
    assert bad.condition == "bad-request" and "28 bytes" in bad.text, bad
    rx = SrtpPeer(b"\x00" * 30, inbound=True)
    await watch_live(viewer, live, rx.port, suite="AEAD_AES_128_GCM", key=bytes(range(28)))
    vacc = await wait_accept(viewer, "view")
    got = vacc.contents["video"]
    assert got.suite == "AEAD_AES_128_GCM" and len(got.key) == 28, (got.suite, got.key_params)
    assert got.key_params.endswith("==")
    rx.set_key(got.key, inbound=True, suite="AEAD_AES_128_GCM")
    for seq, ts, payload, marker in key_group(2000, 18000):
        tx.send_rtp(to, seq, ts, payload, marker=marker)
    for i in range(4):
        p = await rx.recv_rtp()
        assert p.seq == 2000 + i and p.ts == 18000 and p.pt == 102
    tx.close(), rx.close()


async def wait_counts(srv, pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        h = health(srv)
        if pred(h) or time.monotonic() > deadline:
            return h
        await asyncio.sleep(0.05)


async def test_late_joiner_gets_the_keyframe_group_first(server_factory):
    srv = server_factory(CONFIG)
    live = book_live(srv, start=soon())
    tx = SrtpPeer(b"\x00" * 30)
    alice, key, acc = await go_live(srv, live, tx.port)
    tx.set_key(key, inbound=False)
    to = server_addr(acc)
    # A first group, then a second keyframe group with two P frames: only
    # the second is kept.
    for seq, ts, payload, marker in key_group(10, 1000):
        tx.send_rtp(to, seq, ts, payload, marker=marker)
    tx.send_rtp(to, 14, 4600, nal(1, 80), marker=True)
    group = key_group(15, 8200) + [(19, 11800, nal(1, 80), True), (20, 15400, nal(1, 80), True)]
    for seq, ts, payload, marker in group:
        tx.send_rtp(to, seq, ts, payload, marker=marker)
    await wait_counts(srv, lambda h: h["media_packets_in"] >= 11)
    viewer = await guest(srv)
    rx = SrtpPeer(b"\x00" * 30, inbound=True)
    await watch_live(viewer, live, rx.port)
    vacc = await wait_accept(viewer, "view")
    rx.set_key(vacc.contents["video"].key, inbound=True)
    got = [await rx.recv_rtp() for _ in group]
    assert [p.seq for p in got] == [g[0] for g in group]
    assert got[0].payload[0] & 0x1F == 24 and got[0].payload[3] & 0x1F == 7  # STAP-A starting with the SPS
    assert [p.payload for p in got] == [g[2] for g in group]
    # Then the live packets, in sequence.
    tx.send_rtp(to, 21, 19000, nal(1, 80), marker=True)
    nxt = await rx.recv_rtp()
    assert nxt.seq == 21 and nxt.pt == 102
    tx.close(), rx.close()


async def test_feedback_reaches_the_broadcaster_rate_limited(server_factory):
    srv = server_factory(CONFIG)
    live = book_live(srv, start=soon())
    tx = SrtpPeer(b"\x00" * 30)
    alice, key, acc = await go_live(srv, live, tx.port)
    tx.set_key(key, inbound=False)
    to = server_addr(acc)
    # The broadcaster reads what the server sends with the server's key.
    fb = SrtpPeer(b"\x00" * 30)
    fb.sock.close()
    fb.sock = tx.sock
    fb.set_key(acc.contents["video"].key, inbound=True)
    viewer = await guest(srv)
    rx = SrtpPeer(b"\x00" * 30, inbound=True)
    offer = await watch_live(viewer, live, rx.port)
    vacc = await wait_accept(viewer, "view")
    vkey = offer.contents[0]["key"]
    out = SrtpPeer(b"\x00" * 30)
    out.sock.close()
    out.sock = rx.sock  # the viewer sends its RTCP from its RTP address (rtcp-mux)
    out.set_key(vkey, inbound=False)
    before = health(srv)
    for _ in range(5):
        out.send_rtcp(server_addr(vacc), receiver_report(0x55) + pli(0x55, 0x11223344))
    first = await fb.recv_rtcp()
    assert first[1] == 206 and first[0] & 0x1F == 1 and first[8:12] == (0x11223344).to_bytes(4, "big")
    for i in range(10):
        out.send_rtcp(server_addr(vacc), receiver_report(0x55) + nack(0x55, 0x11223344, 100 + i))
    nacks = []
    try:
        while True:
            nacks.append(await fb.recv_rtcp(timeout=0.5))
    except asyncio.TimeoutError:
        pass
    assert all(p[1] == 205 for p in nacks) and len(nacks) == 3, [p[:2] for p in nacks]
    # Unauthenticated RTCP from the viewer's address is not forwarded.
    rx.send_raw(server_addr(vacc), receiver_report(0x55) + pli(0x55, 0x11223344) + b"\x00" * 10)
    assert await fb.silent(0.3)
    after = await wait_counts(srv, lambda h: h["media_feedback_rejected"] > before["media_feedback_rejected"])
    assert after["media_feedback_forwarded"] - before["media_feedback_forwarded"] == 4
    assert after["media_feedback_limited"] - before["media_feedback_limited"] == 4 + 7
    tx.close(), rx.close()


async def test_ingest_above_the_channel_bandwidth_is_policed(server_factory):
    srv = server_factory(CONFIG)
    live = book_live(srv, channel="slow", start=soon())  # 64 kbps + 25 %: 10 kB a second, 10 kB of burst
    tx = SrtpPeer(b"\x00" * 30)
    alice, key, acc = await go_live(srv, live, tx.port)
    tx.set_key(key, inbound=False)
    before = health(srv)
    for i in range(40):  # 40 kB at once
        tx.send_rtp(server_addr(acc), i, i * 3000, nal(1, 1000))
    after = await wait_counts(srv, lambda h: h["media_packets_in"] + h["media_policed"] -
                              before["media_packets_in"] - before["media_policed"] >= 40)
    taken = after["media_packets_in"] - before["media_packets_in"]
    policed = after["media_policed"] - before["media_policed"]
    assert taken + policed == 40 and 8 <= taken <= 12 and policed >= 28, (taken, policed)
    tx.close()


async def test_every_refusal_says_why(server_factory):
    srv = server_factory({**CONFIG, "channels": [{**CHANNELS[0], "capacity": 1}]})
    live = book_live(srv, level="password", start=soon())
    alice = jingle.watch(await owner(srv, live))
    to = media_jid(live)

    def cast(password="cast-secret", port=40000):
        o = Offer("broadcast", password=password)
        o.content("video", port=port, pt=H264)
        return o

    e = await initiate_error(alice, to, "s1", cast("nope"))
    assert (e.type, e.condition, e.text) == ("auth", "not-authorized", "wrong broadcast password")
    e = await initiate_error(alice, to, "s2", cast(None))
    assert e.condition == "not-authorized"
    bob = jingle.watch(await member(srv))
    e = await initiate_error(bob, to, "s3", cast())
    assert (e.type, e.condition) == ("auth", "forbidden") and "only the broadcaster" in e.text
    # Outside the window: a live the day after.
    later = book_live(srv, start=(int(time.time()) // 60 + 1) * 60 + 86400,
                      owner=(live.owner, live.owner_pw))
    e = await initiate_error(alice, media_jid(later), "s4", cast())
    assert (e.type, e.condition) == ("cancel", "not-allowed") and "the ingest window of this live is" in e.text
    # Unknown and not reconfirmed.
    e = await initiate_error(alice, f"{'a' * 26}@media.localhost", "s5", cast())
    assert (e.condition, e.text) == ("item-not-found", "no such live")
    unconfirmed = book_live(srv, reconfirm=False, owner=(live.owner, live.owner_pw), start=soon() + 3 * 3600)
    e = await initiate_error(alice, media_jid(unconfirmed), "s6", cast())
    assert (e.condition, e.text) == ("item-not-found", "this live is not reconfirmed")
    # Malformed, another transport, no crypto, an unsupported codec.
    o = cast()
    o.contents[0]["pts"] = [(96, "theora", 90000)]
    e = await initiate_error(alice, to, "s7", o)
    assert e.condition == "not-acceptable" and "H264" in e.text
    o = cast()
    o.contents[0]["suite"] = "F8_128_HMAC_SHA1_80"
    e = await initiate_error(alice, to, "s8", o)
    assert (e.condition, e.app) == ("not-acceptable", "invalid-crypto")
    o = cast()
    o.contents[0]["key"] = b"short"
    e = await initiate_error(alice, to, "s9", o)
    assert e.condition == "bad-request" and "30 bytes" in e.text
    # On air once; a second ingest is a conflict; the same sid again is out of order.
    await initiate(alice, to, "on", cast())
    await wait_accept(alice, "on")
    e = await initiate_error(alice, to, "again", cast(port=40010))
    assert (e.condition, e.text) == ("conflict", "this live is already on air")
    e = await initiate_error(alice, to, "on", cast(port=40020))
    assert (e.condition, e.app) == ("unexpected-request", "out-of-order")
    # Viewers of a password live: without it, with a wrong one, with it; then over capacity.
    v1 = await guest(srv)
    e = await initiate_error(jingle.watch(v1), to, "w1", watch_offer(41000))
    assert e.condition == "not-authorized" and "shared password" in e.text
    e = await initiate_error(v1, to, "w2", watch_offer(41000, "wrong"))
    assert (e.condition, e.text) == ("not-authorized", "wrong shared password")
    await initiate(v1, to, "w3", watch_offer(41000, "view-secret"))
    await wait_accept(v1, "w3")
    v2 = jingle.watch(await guest(srv))
    e = await initiate_error(v2, to, "w4", watch_offer(41002, "view-secret"))
    assert (e.type, e.condition, e.text) == ("wait", "resource-constraint",
                                              "this live has reached its capacity of 1 viewers")
    # Chat occupants do not count: v2 enters the room and still cannot watch.
    await join(v2, live, "v2", password="view-secret")
    e = await initiate_error(v2, to, "w5", watch_offer(41002))
    assert e.condition == "resource-constraint"
    # v1 leaves: v2, in the room, may watch without the password.
    await terminate(v1, to, "w3")
    await initiate(v2, to, "w6", watch_offer(41002))
    await wait_accept(v2, "w6")
    # A viewer asking for a codec the live does not send.
    await terminate(v2, to, "w6")
    e = await initiate_error(v2, to, "w7", watch_offer(41002, pt=(100, "VP8", 90000)))
    assert e.condition == "not-acceptable" and "H264/90000 video" in e.text


def watch_offer(port, password=None, pt=(102, "H264", 90000)):
    o = Offer("watch", password=password, credential=password is not None)
    o.content("video", port=port, pt=pt, rtcp_mux=True)
    return o


async def test_broadcaster_ends_the_live_viewers_terminated_and_counted(server_factory):
    srv = server_factory(CONFIG)
    live = book_live(srv, start=soon())
    tx = SrtpPeer(b"\x00" * 30)
    g = await guest(srv)
    await join(g, live, "watcher")
    alice, key, acc = await go_live(srv, live, tx.port)
    await g.wait_message(lambda m: m["from"] == live.room and "has started" in m["body"])
    viewers = [g, await guest(srv)]
    for i, v in enumerate(viewers):
        await watch_live(v, live, 42000 + 2 * i, sid=f"v{i}")
        await wait_accept(v, f"v{i}")
    info = await g.plugin["xep_0030"].get_info(jid=live.room)
    form = info["disco_info"].xml.find("{jabber:x:data}x")
    fields = {f.get("var"): [v.text for v in f.findall("{jabber:x:data}value")]
              for f in form.findall("{jabber:x:data}field")}
    assert fields["x-onair#viewers"] == ["2"] and fields["x-onair#on_air"] in (["1"], ["true"])
    # the live as anyone sees it (its page): on air, two watching
    pub = request(srv, "GET", f"/api/v1/lives/{live.id}").json["live"]
    assert (pub["on_air"], pub["viewers_now"]) == (True, 2), pub
    await terminate(viewers[1], media_jid(live), "v1")
    await terminate(alice, media_jid(live), "cast")
    cond, text = await wait_terminate(g, "v0")
    assert (cond, text) == ("success", "the live has ended")
    m = await g.wait_message(lambda m: m["from"] == live.room and "has ended" in m["body"])
    assert "This room closes at" in m["body"]
    # My channel: the peak and total of this broadcast.
    tok = login(srv, live.owner.split("@")[0], live.owner_pw)
    r = request(srv, "GET", "/api/v1/reservations", token=tok)
    mine = next(x for x in r.json["reservations"] if x["id"] == live.id)
    assert (mine["viewers"], mine["viewers_total"], mine["on_air"]) == (2, 2, False)
    pub = request(srv, "GET", f"/api/v1/lives/{live.id}").json["live"]
    assert (pub["on_air"], pub["viewers_now"]) == (False, 0), pub
    assert mine["aired_at"] and mine["ended_at"]
    assert "live ended: " + live.id + " (broadcaster), viewers peak 2 total 2" in srv.stderr_text()
    # Going on air again within the window: the room says it is back.
    alice2, _, _ = await go_live(srv, live, tx.port, sid="cast2")
    await g.wait_message(lambda m: m["from"] == live.room and "is back on air" in m["body"])
    tx.close()


async def test_silence_ends_the_live(server_factory):
    srv = server_factory({**CONFIG, "media": {**CONFIG["media"], "ingest_timeout_s": 2}})
    live = book_live(srv, start=soon())
    tx = SrtpPeer(b"\x00" * 30)
    alice, key, acc = await go_live(srv, live, tx.port)
    v = await guest(srv)
    await watch_live(v, live, 43000)
    await wait_accept(v, "view")
    t0 = time.monotonic()
    cond, text = await wait_terminate(alice, "cast", timeout=6)
    assert (cond, text) == ("timeout", "no media for 2 seconds") and time.monotonic() - t0 >= 1.0
    assert await wait_terminate(v, "view") == ("success", "the live has ended")
    tx.close()


SHORT = {
    **CONFIG,
    "reservation": {"slot_s": 2},
    "schedule": {"reconfirm_before_s": 0, "room_open_before_s": 60, "ingest_open_before_s": 60,
                 "ingest_close_after_s": 2, "notice_before_s": 0, "close_warning_before_s": 0,
                 "room_close_after_s": 30},
}


def start_after(seconds, slot=2):
    t = time.time() + seconds
    return int((t + slot - 1) // slot * slot)


async def test_window_close_ends_the_live(server_factory):
    srv = server_factory(SHORT)
    start = start_after(3)
    live = book_live(srv, start=start, seconds=2, slot=2)
    tx = SrtpPeer(b"\x00" * 30)
    alice, key, acc = await go_live(srv, live, tx.port)
    tx.set_key(key, inbound=False)
    v = await guest(srv)
    await watch_live(v, live, 43100)
    await wait_accept(v, "view")
    closes = live.end + 2
    # Keep streaming until the server ends it.
    seq = 0
    while not alice.jingle.items and time.time() < closes + 5:
        tx.send_rtp(server_addr(acc), seq, seq * 3000, nal(1, 100))
        seq += 1
        await asyncio.sleep(0.1)
    cond, text = await wait_terminate(alice, "cast")
    assert time.time() >= closes - 0.3
    assert cond == "expired" and text.startswith("the ingest window closed at ")
    assert await wait_terminate(v, "view") == ("success", "the live has ended")
    e = await initiate_error(alice, media_jid(live), "late", (lambda o: (o.content("video", port=tx.port, pt=H264), o)[1])(
        Offer("broadcast", password="cast-secret")))
    assert e.condition == "not-allowed"
    tx.close()


async def test_restart_renegotiates_and_keeps_the_window_timer(server_factory):
    srv = server_factory(SHORT)
    start = start_after(4)
    live = book_live(srv, start=start, seconds=4, slot=2)
    g = await guest(srv)
    await join(g, live, "watcher")
    tx = SrtpPeer(b"\x00" * 30)
    alice, key, acc = await go_live(srv, live, tx.port)
    await g.wait_message(lambda m: m["from"] == live.room and "has started" in m["body"])
    srv.kill9()
    srv.start()
    # The broadcaster negotiates again: on air, no second "has started".
    g = await guest(srv)
    await join(g, live, "watcher2")
    alice, key, acc = await go_live(srv, live, tx.port, sid="again")
    tx.set_key(key, inbound=False)
    # The window-close timer written before the crash ends it.
    seq = 0
    while not alice.jingle.items and time.time() < live.end + 8:
        tx.send_rtp(server_addr(acc), seq, seq * 3000, nal(1, 100))
        seq += 1
        await asyncio.sleep(0.1)
    cond, _ = await wait_terminate(alice, "again")
    assert cond == "expired"
    await g.wait_message(lambda m: m["from"] == live.room and "has ended" in m["body"])
    assert "marked interrupted" in srv.stderr_text()
    # Said once each, across the restart.
    log = srv.ctl("room", "log", live.id).stdout
    assert log.count("has started") == 1 and log.count("has ended") == 1 and "back on air" not in log
    tx.close()


async def test_interrupted_live_ends_at_its_window_after_restart(server_factory):
    srv = server_factory(SHORT)
    start = start_after(4)
    live = book_live(srv, start=start, seconds=2, slot=2)
    tx = SrtpPeer(b"\x00" * 30)
    await go_live(srv, live, tx.port)
    srv.kill9()
    srv.start()
    g = await guest(srv)
    await join(g, live, "watcher")
    m = await g.wait_message(lambda m: m["from"] == live.room and "has ended" in m["body"], timeout=15)
    assert time.time() >= live.end + 2 - 0.5
    log = srv.stderr_text()
    assert f"live ended: {live.id} (window; it was interrupted by a restart)" in log
    tok = login(srv, live.owner.split("@")[0], live.owner_pw)
    mine = next(x for x in request(srv, "GET", "/api/v1/reservations", token=tok).json["reservations"]
                if x["id"] == live.id)
    assert mine["on_air"] is False and mine["ended_at"]
    tx.close()


async def test_a_viewer_whose_stream_ends_is_gone(server_factory):
    srv = server_factory(CONFIG)
    live = book_live(srv, start=soon())
    v = await guest(srv)
    await watch_live(v, live, 43200)
    assert health(srv)["media_viewers"] == 1
    await v.close()
    h = await wait_counts(srv, lambda h: h["media_viewers"] == 0)
    assert h["media_viewers"] == 0
