"""A past live's chat transcript on My channel, in a real browser
(tests/browser/channel_transcript.mjs), from a whole scheduled live with
offsets of seconds: the transcript plugin archives the room when it closes,
the page shows it and downloads its text form."""
import asyncio
import time

from browser import scenario
from muc_client import groupchat, guest
from test_muc_lifecycle import CHANNELS, start_after
from test_plugins import plugin_dir
from test_transcript import book, join_open
from webapi import request

ASYNC_TEST_TIMEOUT = 200
# Addressed to the broadcaster (by the owner's account name: the owner is not
# in the room), with markup that must stay text.
LOOK = ': look <img src=x onerror="window.__xss=1"><b>here</b>'


async def test_my_channel_shows_and_downloads_the_transcript(server_factory, tmp_path):
    srv = server_factory({
        "channels": CHANNELS,
        "reservation": {"slot_s": 2},
        "schedule": {"reconfirm_before_s": 0, "room_open_before_s": 3, "notice_before_s": 1,
                     "room_close_after_s": 1, "close_warning_before_s": 0},
        "plugins": {"dir": str(plugin_dir(tmp_path, ["transcript"])), "load": ["transcript"]},
    })
    live = book(srv, start_after(5))
    said = live.user + LOOK
    g = await guest(srv)
    await join_open(g, live, "viewer")
    await groupchat(g, live.room, said)
    # the room closes 1 s after the end; the transcript is archived then
    deadline = time.monotonic() + 30
    r = None
    while time.monotonic() < deadline:
        r = request(srv, "GET", f"/api/v1/reservations/{live.id}/transcript?format=json", token=live.token)
        if r.status == 200:
            break
        await asyncio.sleep(0.2)
    assert r.status == 200, r
    assert any(m["body"] == said and m["addressed"] for m in r.json["messages"]), r.json
    res = request(srv, "GET", f"/api/v1/reservations/{live.id}", token=live.token).json["reservation"]
    assert res["state"] == "done", res
    await scenario("channel_transcript.mjs", {"base": f"http://127.0.0.1:{srv.http_port}", "user": live.user,
                                              "password": live.owner_pw, "done": live.id, "said": said})
