"""A small Jingle client for the tests (specs/media.md), on slixmpp.

    watch(c)                                   # c acknowledges and records the server's Jingle IQs
    offer = Offer(role="broadcast", password="cast-secret")
    offer.content("video", port=40000, pt=(96, "H264", 90000))
    await initiate(c, live_media_jid, "sid1", offer)   # the IQ result, or raises JingleError
    acc = await wait_accept(c, "sid1")         # acc.contents["video"].key / .port / .pt
    reason, text = await wait_terminate(c, "sid1")
    await terminate(c, live_media_jid, "sid1")

Keys are random 30-byte SRTP master keys (key || salt), sent inline as
RFC 4568 key-params.  Every wait is bounded.
"""
import base64
import os
import xml.etree.ElementTree as ET

from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import clients

NS_JINGLE = "urn:xmpp:jingle:1"
NS_RTP = "urn:xmpp:jingle:apps:rtp:1"
NS_RAW_UDP = "urn:xmpp:jingle:transports:raw-udp:1"
NS_ONAIR = "urn:onair:media:1"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
SUITE = "AES_CM_128_HMAC_SHA1_80"
WAIT = 10.0


def new_key():
    return os.urandom(30)


def b64(key):
    return base64.b64encode(key).decode()


class JingleError(Exception):
    def __init__(self, etype, condition, text, app):
        super().__init__(f"{etype}/{condition} {app or ''} {text!r}")
        self.type, self.condition, self.text, self.app = etype, condition, text, app


class Offer:
    """What a client offers: role "broadcast" (senders=initiator, with the
    broadcast password) or "watch" (senders=responder, optional shared
    password), and one content per media."""

    def __init__(self, role, password=None, credential=True):
        self.role = role
        self.password = password
        self.credential = credential
        self.contents = []

    def content(self, media, port, pt, key=None, rtcp_port=None, rtcp_mux=False, name=None, ip="127.0.0.1",
                pts=None, suite=SUITE):
        """pt: (id, name, clockrate[, channels]); pts: several instead."""
        c = {"media": media, "name": name or media, "port": port, "rtcp_port": rtcp_port, "rtcp_mux": rtcp_mux,
             "pts": pts or [pt], "key": key or new_key(), "ip": ip, "suite": suite}
        self.contents.append(c)
        return c

    def xml(self, sid, initiator):
        senders = "initiator" if self.role == "broadcast" else "responder"
        j = ET.Element(f"{{{NS_JINGLE}}}jingle", action="session-initiate", initiator=initiator, sid=sid)
        for c in self.contents:
            ce = ET.SubElement(j, f"{{{NS_JINGLE}}}content", creator="initiator", name=c["name"], senders=senders)
            d = ET.SubElement(ce, f"{{{NS_RTP}}}description", media=c["media"])
            for pt in c["pts"]:
                attrs = {"id": str(pt[0]), "name": pt[1], "clockrate": str(pt[2])}
                if len(pt) > 3:
                    attrs["channels"] = str(pt[3])
                ET.SubElement(d, f"{{{NS_RTP}}}payload-type", attrs)
            enc = ET.SubElement(d, f"{{{NS_RTP}}}encryption", required="1")
            ET.SubElement(enc, f"{{{NS_RTP}}}crypto", {"tag": "1", "crypto-suite": c["suite"],
                                                       "key-params": "inline:" + b64(c["key"])})
            if c["rtcp_mux"]:
                ET.SubElement(d, f"{{{NS_RTP}}}rtcp-mux")
            t = ET.SubElement(ce, f"{{{NS_RAW_UDP}}}transport")
            ET.SubElement(t, f"{{{NS_RAW_UDP}}}candidate", component="1", generation="0", id=c["name"] + "1",
                          ip=c["ip"], port=str(c["port"]))
            if c["rtcp_port"]:
                ET.SubElement(t, f"{{{NS_RAW_UDP}}}candidate", component="2", generation="0", id=c["name"] + "2",
                              ip=c["ip"], port=str(c["rtcp_port"]))
        if self.credential:
            cred = ET.SubElement(j, f"{{{NS_ONAIR}}}{self.role}")
            if self.password is not None:
                ET.SubElement(cred, f"{{{NS_ONAIR}}}password").text = self.password
        return j


class Accepted:
    """The server's session-accept: per content name, its key (bytes), ip,
    port and payload type (id, name, clockrate, channels)."""

    def __init__(self, jingle):
        self.contents = {}
        for ce in jingle.findall(f"{{{NS_JINGLE}}}content"):
            d = ce.find(f"{{{NS_RTP}}}description")
            pt = d.find(f"{{{NS_RTP}}}payload-type")
            crypto = d.find(f"{{{NS_RTP}}}encryption/{{{NS_RTP}}}crypto")
            cands = {int(k.get("component")): (k.get("ip"), int(k.get("port")))
                     for k in ce.findall(f"{{{NS_RAW_UDP}}}transport/{{{NS_RAW_UDP}}}candidate")}
            kp = crypto.get("key-params")
            assert kp.startswith("inline:"), kp
            params = {p.get("name"): p.get("value") for p in pt.findall(f"{{{NS_RTP}}}parameter")}
            self.contents[ce.get("name")] = type("Content", (), {
                "media": d.get("media"), "key": base64.b64decode(kp[7:]), "key_params": kp,
                "suite": crypto.get("crypto-suite"), "tag": crypto.get("tag"),
                "ip": cands[1][0], "port": cands[1][1], "rtcp": cands.get(2, cands[1]),
                "pt": (int(pt.get("id")), pt.get("name"), int(pt.get("clockrate") or 0),
                       int(pt.get("channels") or 1)),
                "params": params, "rtcp_mux": d.find(f"{{{NS_RTP}}}rtcp-mux") is not None,
            })


def watch(c):
    """c acknowledges every Jingle IQ set from the server and keeps it in
    c.jingle (ET elements of <jingle/>, with .get('action') and .get('sid'))."""
    if getattr(c, "jingle", None) is not None:
        return c
    c.jingle = clients.Inbox("jingle")

    def on_jingle(iq):
        if iq["type"] != "set":
            return
        c.jingle.put(iq.xml.find(f"{{{NS_JINGLE}}}jingle"))
        iq.reply().send()

    c.register_handler(Callback("onair jingle", MatchXPath(f"{{jabber:client}}iq/{{{NS_JINGLE}}}jingle"), on_jingle))
    return c


def error_of(e):
    err = e.iq.xml.find("{jabber:client}error")
    app = None
    text = ""
    cond = None
    for ch in err:
        ns, _, name = ch.tag[1:].partition("}")
        if ns == NS_STANZAS and name == "text":
            text = ch.text or ""
        elif ns == NS_STANZAS:
            cond = name
        else:
            app = name
    return JingleError(err.get("type"), cond, text, app)


async def send_jingle(c, to, jingle_el, timeout=WAIT):
    iq = c.make_iq_set(ito=to)
    iq.append(jingle_el)
    try:
        return await iq.send(timeout=timeout)
    except IqError as e:
        raise error_of(e) from None


async def initiate(c, to, sid, offer, timeout=WAIT):
    watch(c)
    return await send_jingle(c, to, offer.xml(sid, str(c.boundjid)), timeout)


async def initiate_error(c, to, sid, offer):
    """The JingleError a refused session-initiate gets."""
    try:
        await initiate(c, to, sid, offer)
    except JingleError as e:
        return e
    raise AssertionError(f"session-initiate {sid} to {to} was accepted")


async def wait_action(c, sid, action, timeout=WAIT):
    return await c.jingle.wait(lambda j: j.get("sid") == sid and j.get("action") == action, timeout, c.boundjid)


async def wait_accept(c, sid, timeout=WAIT):
    return Accepted(await wait_action(c, sid, "session-accept", timeout))


async def wait_terminate(c, sid, timeout=WAIT):
    """(reason condition, text) of the server's session-terminate."""
    j = await wait_action(c, sid, "session-terminate", timeout)
    reason = j.find(f"{{{NS_JINGLE}}}reason")
    cond = next((ch.tag.split("}")[1] for ch in reason if not ch.tag.endswith("}text")), None)
    return cond, reason.findtext(f"{{{NS_JINGLE}}}text") or ""


async def terminate(c, to, sid, condition="success"):
    j = ET.Element(f"{{{NS_JINGLE}}}jingle", action="session-terminate", sid=sid)
    ET.SubElement(ET.SubElement(j, f"{{{NS_JINGLE}}}reason"), f"{{{NS_JINGLE}}}{condition}")
    return await send_jingle(c, to, j)


def media_jid(live, domain="localhost"):
    return f"{live.id}@media.{domain}"
