"""The live stream end to end with ffmpeg (Debian's) as real media peers
(specs/media.md): ffmpeg encodes a test pattern (H.264) and a tone (Opus)
and sends them as SRTP with the keys negotiated over Jingle; onaird
authenticates, decrypts and relays; a second ffmpeg, given the server's
keys in an SDP file, decodes.  The decoded picture is compared with the
same pattern generated here (SSIM), not just counted, and the tone's audio
is decoded; a viewer joining mid-stream, with a keyframe only every 5
seconds, decodes video within 2 seconds (the kept keyframe group: without
it, that takes until the next keyframe).  Tampered, replayed and forged
packets are in test_media_live.py, where the test holds the sender's
socket."""
import asyncio
import time

import jingle
from jingle import Offer, initiate, media_jid, terminate, wait_accept, wait_terminate
from media_peer import (Forwarder, best_ssim, ffmpeg_cast, ffmpeg_view, free_udp_pair, health, pngs, stop,
                        wav_seconds, write_sdp)
from muc_client import book_live, guest, join, owner

CONFIG = {
    "channels": [{"id": "main", "name": "Main stage", "capacity": 10, "bandwidth_kbps": 2000,
                  "price_per_hour": 0}],
    "reservation": {"slot_s": 60},
    "schedule": {"reconfirm_before_s": 0, "room_open_before_s": 7200, "ingest_open_before_s": 7200,
                 "notice_before_s": 0, "close_warning_before_s": 0},
}


def soon():
    return (int(time.time()) // 60 + 1) * 60 + 60


async def cast(srv, live, seconds, gop=25, profile=None):
    """The owner negotiates video and audio, then ffmpeg sends them;
    returns (the owner's client, ffmpeg, the server's media address)."""
    alice = jingle.watch(await owner(srv, live))
    vport, aport = free_udp_pair(), free_udp_pair()
    offer = Offer("broadcast", password="cast-secret")
    v = offer.content("video", port=vport, pt=(96, "H264", 90000))
    a = offer.content("audio", port=aport, pt=(111, "opus", 48000, 2))
    await initiate(alice, media_jid(live), "cast", offer)
    acc = await wait_accept(alice, "cast")
    server = (acc.contents["video"].ip, acc.contents["video"].port)
    assert server == (acc.contents["audio"].ip, acc.contents["audio"].port)
    proc = ffmpeg_cast(server, video=(vport, v["key"]), audio=(aport, a["key"]), seconds=seconds, gop=gop,
                       profile=profile)
    return alice, proc, server


async def viewer_session(srv, live, sid, video=True, audio=True):
    """A guest in the room negotiates, its player listening (forwarders,
    see media_peer.Forwarder); returns the client and the forwarders."""
    g = jingle.watch(await guest(srv))
    await join(g, live, sid)
    fv, fa = Forwarder(), Forwarder()
    fv.start(), fa.start()
    offer = Offer("watch", credential=False)
    if video:
        offer.content("video", port=fv.port, pt=(97, "H264", 90000), rtcp_port=fv.port + 1)
    if audio:
        offer.content("audio", port=fa.port, pt=(98, "opus", 48000, 2), rtcp_port=fa.port + 1)
    await initiate(g, media_jid(live), sid, offer)
    return g, (fv, fa)


def sdp_for(tmp_path, name, acc, ports):
    path = tmp_path / f"{name}.sdp"
    v = acc.contents.get("video")
    a = acc.contents.get("audio")
    write_sdp(path, video=(ports[0], v.pt[0], v.key) if v else None, audio=(ports[1], a.pt[0], a.key) if a else None)
    return path


async def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout}s")
        await asyncio.sleep(0.05)


async def test_pattern_and_tone_relayed_and_decoded(server_factory, tmp_path):
    srv = server_factory(CONFIG)
    live = book_live(srv, start=soon())
    # The viewer first (it waits), then the broadcaster goes on air.
    g, (fv, fa) = await viewer_session(srv, live, "view")
    before = health(srv)
    alice, caster, server = await cast(srv, live, seconds=8)
    acc = await wait_accept(g, "view")
    assert acc.contents["video"].pt[:3] == (97, "H264", 90000)
    assert acc.contents["audio"].pt == (98, "opus", 48000, 2)
    ports = (free_udp_pair(), free_udp_pair())
    sdp = sdp_for(tmp_path, "view", acc, ports)
    out = tmp_path / "decoded"
    viewer = ffmpeg_view(sdp, out, frames=75, audio=True)
    try:
        await fv.deliver_to(ports[0])
        await fa.deliver_to(ports[1])
        await wait_for(lambda: viewer.poll() is not None, 30, "the decoder")
    finally:
        err_v = stop(viewer)
        err_c = stop(caster)
        fv.close(), fa.close()
    frames = pngs(out)
    assert len(frames) >= 50, f"{len(frames)} frames decoded\nviewer: {err_v}\ncaster: {err_c}"
    # The picture is the pattern: the decoded frame matches one of the
    # pattern's frames generated here, and not another pattern.
    ssim = best_ssim(frames[-1], seconds=10)
    assert ssim >= 0.9, ssim
    assert best_ssim(frames[-1], seconds=2, pattern="smptebars") < 0.7
    assert wav_seconds(out / "audio.wav") >= 2.0
    after = health(srv)
    assert after["media_packets_in"] > before["media_packets_in"] >= 0
    assert after["media_auth_failed"] == 0 and after["media_replayed"] == 0 and after["media_policed"] == 0
    assert after["media_packets_out"] > 0
    # The broadcaster ends the live: the viewer's session is terminated.
    await terminate(alice, media_jid(live), "cast")
    assert await wait_terminate(g, "view") == ("success", "the live has ended")


async def test_late_joiner_decodes_within_two_seconds(server_factory, tmp_path):
    srv = server_factory(CONFIG)
    live = book_live(srv, start=soon())
    # One keyframe every 5 seconds: a viewer joining a second after one
    # would wait 4 seconds for the next without the kept group.
    alice, caster, server = await cast(srv, live, seconds=12, gop=125)
    try:
        await wait_for(lambda: health(srv)["media_packets_in"] > 60, 10, "the stream")
        g = jingle.watch(await guest(srv))
        fv = Forwarder()
        fv.start()
        offer = Offer("watch", credential=False)
        offer.content("video", port=fv.port, pt=(97, "H264", 90000), rtcp_port=fv.port + 1)
        out = tmp_path / "late"
        t0 = time.monotonic()
        await initiate(g, media_jid(live), "late", offer)
        acc = await wait_accept(g, "late")
        vport = free_udp_pair()
        sdp = sdp_for(tmp_path, "late", acc, (vport, None))
        # ffmpeg starts once the key is known: its own start-up is part of
        # the two seconds.
        viewer = ffmpeg_view(sdp, out, frames=1)
        try:
            await fv.deliver_to(vport)
            await wait_for(lambda: pngs(out) and viewer.poll() is not None, 5, "the first decoded frame")
        finally:
            err = stop(viewer)
            fv.close()
        elapsed = time.monotonic() - t0
        assert pngs(out), err
        assert elapsed <= 2.0, f"first frame after {elapsed:.2f}s: {err}"
        assert best_ssim(pngs(out)[0], seconds=14) >= 0.85
    finally:
        stop(caster)
