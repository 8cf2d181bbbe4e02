"""The browsers' media WebSocket from Python (specs/media.md, "Browsers"):
a token asked over XMPP by a room occupant, the WebSocket opened with it
(python3-websockets), and the messages read back: JSON text messages
(waiting, playing, clock, ended, error) and binary messages (an 8-byte header,
then an H.264 access unit in Annex B form, kind 1, or an Opus packet, kind 2)."""
import asyncio
import json
import struct
import xml.etree.ElementTree as ET

import websockets
from slixmpp.exceptions import IqError

from jingle import media_jid

NS_MEDIA = "urn:onair:media:1"
WAIT = 10.0


async def media_token(c, live):
    """The token the media endpoint gives c for live (raises IqError when refused)."""
    iq = c.make_iq_get(ito=media_jid(live))
    iq.append(ET.Element(f"{{{NS_MEDIA}}}token"))
    r = await iq.send(timeout=WAIT)
    return r.xml.find(f"{{{NS_MEDIA}}}token")


async def token_error(c, live):
    """(condition, text) of a refused token request."""
    try:
        await media_token(c, live)
    except IqError as e:
        err = e.iq.xml.find("{jabber:client}error")
        cond = next(ch.tag.split("}")[1] for ch in err if not ch.tag.endswith("}text"))
        return cond, err.findtext("{urn:ietf:params:xml:ns:xmpp-stanzas}text")
    raise AssertionError("the token was given")


async def open_media(srv, token):
    ws = await websockets.connect(f"ws://127.0.0.1:{srv.http_port}/media-websocket", subprotocols=["onair-media"],
                                  max_size=None)
    await ws.send(token)
    return ws


class AccessUnit:
    """A binary message: kind 1 (H.264: is_key, ts at 90 kHz, annexb) or 2
    (Opus: is_audio, ts at 48 kHz, opus)."""

    def __init__(self, data):
        kind, flags, _, ts = struct.unpack("!BBHI", data[:8])
        assert kind in (1, 2), kind
        self.is_audio = kind == 2
        self.is_key = bool(flags & 1)
        self.ts = ts
        self.annexb = b"" if self.is_audio else data[8:]
        self.opus = data[8:] if self.is_audio else b""

    def nal_types(self):
        return [self.annexb[i + 4] & 0x1F for i in range(len(self.annexb) - 4)
                if self.annexb[i:i + 4] == b"\0\0\0\1"]


async def next_message(ws, timeout=WAIT, clocks=False):
    """The next message: a dict for text, an AccessUnit for binary; the
    clock messages (the broadcaster's sender reports) only when clocks is
    true, else they are passed over."""
    while True:
        m = await asyncio.wait_for(ws.recv(), timeout)
        m = json.loads(m) if isinstance(m, str) else AccessUnit(m)
        if clocks or not isinstance(m, dict) or m.get("type") != "clock":
            return m


async def closed(ws, timeout=WAIT):
    """The messages left and (close code, reason) once the server has closed."""
    rest = []
    try:
        while True:
            rest.append(await next_message(ws, timeout))
    except websockets.ConnectionClosed:
        pass
    return rest, (ws.close_code, ws.close_reason)
