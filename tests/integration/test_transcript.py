"""The transcript plugin (plugins/transcript/README.md, specs/transcript.md)
through whole scheduled broadcasts with offsets of a few seconds: after the
room closes the broadcaster receives the transcript over XMPP (online, and
offline through offline storage), and by mail (aiosmtpd on loopback,
through the email_notice plugin), with the part chosen when booking; the
owner fetches it later by ad-hoc command and over HTTP, as text and as
JSON, with times relative to the start of the live; another account gets
forbidden and nothing; kill -9 and restarts lose nothing and deliver
nothing twice."""
import asyncio
import json
import os
import pathlib
import re
import time

import adhoc_client
import clients
from muc_client import Live, groupchat, guest, join, wait_presence
from smtpd import Mailbox, SmtpServer
from test_muc_lifecycle import CHANNELS, SLOT, start_after, wait_log
from test_plugins import plugin_dir
from webapi import login as http_login
from webapi import request

OFFSET_RE = re.compile(r"^([+-])(\d\d):(\d\d):(\d\d) (\*|<[^>]*>) (.*)$")


def config(root, smtp, load=("email_notice", "transcript"), **transcript):
    return {
        "server": {"log_level": "debug"},
        "channels": CHANNELS,
        "reservation": {"slot_s": SLOT},
        # the room opens 2 s before the start, the live lasts SLOT s, the room closes 2 s after
        "schedule": {"reconfirm_before_s": 0, "room_open_before_s": 2, "notice_before_s": 1,
                     "room_close_after_s": 2, "close_warning_before_s": 1},
        "plugins": {"dir": str(plugin_dir(root, list(load))), "load": list(load)},
        "plugin": {"email_notice": smtp.config(), **({"transcript": transcript} if transcript else {})},
    }


def book(srv, start, *, transcript=None, notices=None, email=None):
    """Books and reconfirms a live of SLOT seconds at start for a new account; returns a Live."""
    jid, pw = srv.add_user()
    user = jid.split("@")[0]
    if email:
        srv.ctl("account", "email", user, email)
    tok = http_login(srv, user, pw)
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
    body = {"channel": "main", "start": iso(start), "end": iso(start + SLOT), "level": "public",
            "title": "Night talk", "broadcast_password": "cast-secret"}
    if transcript is not None:
        body["transcript"] = transcript
    if notices is not None:
        body["transcript_notices"] = notices
    r = request(srv, "POST", "/api/v1/reservations", body, token=tok)
    assert r.status == 201, r
    rid = r.json["reservation"]["id"]
    assert r.json["reservation"]["transcript"] == (transcript or "default")
    assert r.json["reservation"]["transcript_notices"] == notices
    assert request(srv, "POST", f"/api/v1/reservations/{rid}/reconfirm", token=tok).status == 200
    live = Live(rid, jid, pw, start, start + SLOT, "public", None, "Night talk")
    live.user = user
    live.token = tok
    return live


async def join_open(c, live, nick, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await join(c, live, nick)
        except Exception as e:  # not open yet
            if time.monotonic() > deadline:
                raise AssertionError(f"room {live.room} not open after {timeout}s: {e}")
        await asyncio.sleep(0.1)


def transcript_message(srv, live):
    return lambda m: (m["from"].bare == srv.domain and m["type"] == "chat"
                      and m["id"] == f"transcript-{live.id}")


def lines_of(text):
    """(offset seconds, who, body) of each message line of a text transcript."""
    out = []
    for ln in text.splitlines():
        m = OFFSET_RE.match(ln)
        if m:
            secs = int(m.group(2)) * 3600 + int(m.group(3)) * 60 + int(m.group(4))
            out.append(((-secs if m.group(1) == "-" else secs), m.group(5), m.group(6)))
    return out


def near(offset, expected, slack=1.5):
    return abs(offset - expected) <= slack


async def fetch_adhoc(c, srv, rid, fmt):
    first = await adhoc_client.run(c, srv, "transcript")
    sid = first["command"]["sessionid"]
    done = await adhoc_client.run(c, srv, "transcript", action="complete", sessionid=sid,
                                  values={"id": rid, "format": fmt})
    assert done["command"]["status"] == "completed", done
    return adhoc_client.form_values(done)["transcript"]


async def test_online_owner_gets_it_by_xmpp_and_mail_then_fetches_it(server_factory, tmp_path):
    box = Mailbox()
    smtp = SmtpServer(box).start()
    try:
        srv = server_factory(config(tmp_path, smtp))
        start = start_after(5)
        live = book(srv, start, email="owner@example.com")
        owner = await clients.login(srv, live.owner, live.owner_pw, plugins=adhoc_client.PLUGINS + ("xep_0045",))
        g = await guest(srv)
        await join_open(owner, live, "Host")
        await join(g, live, "viewer")
        sent = {}
        sent["hello"] = time.time()
        await groupchat(g, live.room, "hello before the start")
        sent["question"] = time.time()
        await groupchat(g, live.room, "Host: can you hear me?\nsecond line")
        # during the live
        await g.wait_message(lambda m: m["type"] == "groupchat" and "is due to start now" in m["body"], timeout=15)
        sent["during"] = time.time()
        await groupchat(owner, live.room, "yes, welcome")
        m = await owner.wait_message(transcript_message(srv, live), timeout=20)
        assert "Night talk" in m["subject"]
        got = lines_of(m["body"])
        bodies = [(who, body) for _, who, body in got]
        # everything (the server's default), with the room's notices
        assert ("<viewer>", "hello before the start") in bodies
        assert ("<viewer>", "Host: can you hear me?") in bodies
        assert ("<Host>", "yes, welcome") in bodies
        assert any(who == "*" and "starts in" in body for who, body in bodies)
        assert any(who == "*" and "is due to start now" in body for who, body in bodies)
        # a message's later lines stay indented under it
        assert re.search(r"^[+-]\d\d:\d\d:\d\d <viewer> Host: can you hear me\?\n +second line$", m["body"], re.M)
        offs = {body: off for off, _, body in got}
        assert offs["hello before the start"] < 0 and near(offs["hello before the start"], sent["hello"] - start)
        assert offs["yes, welcome"] >= 0 and near(offs["yes, welcome"], sent["during"] - start)
        started = [off for off, who, body in got if "is due to start now" in body]
        assert started and near(started[0], 0, 1)
        # and by mail, as an attachment
        mail = box.wait(lambda x: "owner@example.com" in x.rcpt_tos and "Transcript" in x.subject)
        att = [p for p in mail.msg.iter_attachments()]
        assert len(att) == 1 and att[0].get_filename() == f"transcript-{live.id}.txt"
        assert att[0].get_content().replace("\r\n", "\n") == m["body"]
        # later: ad-hoc, text and JSON
        text = await fetch_adhoc(owner, srv, live.id, "text")
        assert text.rstrip("\n") == m["body"].rstrip("\n")
        raw_json = await fetch_adhoc(owner, srv, live.id, "json")
        assert raw_json.startswith("{"), repr(raw_json[:200])
        doc = json.loads(raw_json)
        assert doc["reservation"] == live.id and doc["part"] == "all" and doc["notices"] is True
        assert doc["reason"] == "ended" and doc["owner"] == live.user
        msgs = {x["body"]: x for x in doc["messages"]}
        assert msgs["hello before the start"]["offset"].startswith("-")
        assert msgs["yes, welcome"]["offset"].startswith("+")
        assert msgs["Host: can you hear me?\nsecond line"]["addressed"] is True
        assert msgs["yes, welcome"]["addressed"] is False and msgs["yes, welcome"]["nick"] == "Host"
        assert all("jid" not in x for x in doc["messages"])  # viewers' real addresses stay out
        # later: HTTP, text and JSON
        r = request(srv, "GET", f"/api/v1/reservations/{live.id}/transcript?format=text", token=live.token)
        assert r.status == 200 and r.header("content-type").startswith("text/plain"), r
        assert r.raw.decode().rstrip("\n") == m["body"].rstrip("\n")
        r = request(srv, "GET", f"/api/v1/reservations/{live.id}/transcript?format=json", token=live.token)
        assert r.status == 200 and r.header("content-type") == "application/json", r
        assert r.json == doc
        r = request(srv, "GET", f"/api/v1/reservations/{live.id}/transcript", token=live.token)
        assert r.status == 200 and r.raw.decode().rstrip("\n") == m["body"].rstrip("\n")
        r = request(srv, "GET", f"/api/v1/reservations/{live.id}/transcript?format=pdf", token=live.token)
        assert r.status == 400 and r.json["error"]["field"] == "format", r
        # the owner's list
        listed = await adhoc_client.run(owner, srv, "transcripts")
        assert live.id in adhoc_client.form_values(listed)
        # another account: forbidden, and nothing of it
        ojid, opw = srv.add_user()
        otok = http_login(srv, ojid.split("@")[0], opw)
        r = request(srv, "GET", f"/api/v1/reservations/{live.id}/transcript?format=json", token=otok)
        assert r.status == 403 and "hello" not in r.raw.decode(), r
        r = request(srv, "GET", f"/api/v1/reservations/{live.id}/transcript")
        assert r.status == 401, r
        other = await adhoc_client.login(srv, ojid, opw)
        first = await adhoc_client.run(other, srv, "transcript")
        try:
            await adhoc_client.run(other, srv, "transcript", action="complete",
                                   sessionid=first["command"]["sessionid"], values={"id": live.id, "format": "text"})
            raise AssertionError("another account fetched the transcript")
        except clients.IqError as e:
            assert e.iq["error"]["condition"] == "forbidden"
            assert "hello" not in str(e.iq)
        listed = await adhoc_client.run(other, srv, "transcripts")
        assert live.id not in str(listed)
        # unknown reservation: not found
        r = request(srv, "GET", f"/api/v1/reservations/{'a' * 26}/transcript", token=live.token)
        assert r.status == 404, r
    finally:
        smtp.stop()


async def test_offline_owner_gets_it_once_across_kill9(server_factory, tmp_path):
    """The owner is away at the close: the message waits in offline storage.
    The chosen part is only what was addressed to the broadcaster, without
    notices.  A kill -9 after the close loses nothing and sends nothing
    twice."""
    box = Mailbox()
    smtp = SmtpServer(box).start()
    try:
        srv = server_factory(config(tmp_path, smtp))
        start = start_after(5)
        live = book(srv, start, transcript="addressed", notices=False, email="away@example.com")
        g = await guest(srv)
        await join_open(g, live, "viewer")
        # the broadcaster is not in the room: their account name addresses them
        await groupchat(g, live.room, f"{live.user}: where are you?")
        await groupchat(g, live.room, "just chatting")
        await g.wait_message(lambda m: m["type"] == "groupchat" and "is due to start now" in m["body"], timeout=15)
        await groupchat(g, live.room, f"{live.user}, the live has started")
        await wait_presence(g, lambda p: p["type"] == "unavailable", timeout=15)
        await wait_log(srv, rf"plugin transcript: {live.id}: transcript archived \(2 of \d+ messages: addressed, "
                            r"without notices\)")
        await wait_log(srv, rf"plugin transcript: {live.id}: transcript sent by XMPP")
        box.wait(lambda x: "away@example.com" in x.rcpt_tos and "Transcript" in x.subject)
        # the outbox has heard the server's answer (a mail whose answer a crash
        # cuts off is sent again: at least once)
        await wait_log(srv, rf"q2 \(service, reservation {live.id}\) delivered")
        srv.kill9()
        srv.start()
        owner = await clients.login(srv, live.owner, live.owner_pw)
        m = await owner.wait_message(transcript_message(srv, live), timeout=10)
        got = [(who, body) for _, who, body in lines_of(m["body"])]
        assert got == [("<viewer>", f"{live.user}: where are you?"),
                       ("<viewer>", f"{live.user}, the live has started")]
        offs = [off for off, _, _ in lines_of(m["body"])]
        assert offs[0] < 0 <= offs[1]
        # once: nothing more arrives, by XMPP or by mail
        await owner.roundtrip()
        assert not [x for x in owner.messages.take_all() if x["id"] == f"transcript-{live.id}"]
        transcripts = lambda: [x for x in box.to("away@example.com") if "Transcript" in x.subject]  # noqa: E731
        assert len(transcripts()) == 1
        assert "archived already" not in srv.stderr_text()
        # still there after the restart
        tok = http_login(srv, live.user, live.owner_pw)
        r = request(srv, "GET", f"/api/v1/reservations/{live.id}/transcript?format=json", token=tok)
        assert r.status == 200, r
        assert [x["body"] for x in r.json["messages"]] == [f"{live.user}: where are you?",
                                                          f"{live.user}, the live has started"]
        assert r.json["part"] == "addressed" and r.json["notices"] is False
        assert len(transcripts()) == 1
    finally:
        smtp.stop()


async def test_server_down_at_close_delivers_at_start_up(server_factory, tmp_path):
    """onaird is killed while the room is open and comes back after its
    closing time: the room closes at start-up and the transcript (only the
    live's part, from the configured default) is archived and delivered."""
    box = Mailbox()
    smtp = SmtpServer(box).start()
    try:
        srv = server_factory(config(tmp_path, smtp, part="live", notices=False))
        start = start_after(5)
        live = book(srv, start)
        g = await guest(srv)
        await join_open(g, live, "viewer")
        await groupchat(g, live.room, "before the live")
        await g.wait_message(lambda m: m["type"] == "groupchat" and "is due to start now" in m["body"], timeout=15)
        await groupchat(g, live.room, "during the live")
        srv.kill9()
        await clients.wait_for(lambda: time.time() > live.end + 2.5, timeout=15, what="the closing time")
        srv.start()
        owner = await clients.login(srv, live.owner, live.owner_pw)
        m = await owner.wait_message(transcript_message(srv, live), timeout=15)
        assert [(who, body) for _, who, body in lines_of(m["body"])] == [("<viewer>", "during the live")]
    finally:
        smtp.stop()


async def test_booking_rejects_a_bad_transcript_choice(server_factory, tmp_path):
    box = Mailbox()
    smtp = SmtpServer(box)
    srv = server_factory(config(tmp_path, smtp))
    jid, pw = srv.add_user()
    tok = http_login(srv, jid.split("@")[0], pw)
    start = start_after(3600)
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
    base = {"channel": "main", "start": iso(start), "end": iso(start + SLOT), "level": "public", "title": "x",
            "broadcast_password": "cast-secret"}
    r = request(srv, "POST", "/api/v1/reservations", {**base, "transcript": "everything"}, token=tok)
    assert r.status == 400 and r.json["error"]["field"] == "transcript", r
    r = request(srv, "POST", "/api/v1/reservations", {**base, "transcript_notices": "yes"}, token=tok)
    assert r.status == 400 and r.json["error"]["field"] == "transcript_notices", r
    r = request(srv, "GET", "/api/v1/reservations", token=tok)
    assert r.json["reservations"] == [], r
    # over XMPP: the booking form has the field and names it on error
    c = await adhoc_client.login(srv, jid, pw)
    first = await adhoc_client.run(c, srv, "book")
    fields = first["command"]["form"].get_fields()
    assert {o["value"] for o in fields["transcript"]["options"]} == {"default", "all", "live", "addressed"}
    etype, cond, specific, text = await adhoc_client.run_error(
        c, srv, "book", action="next", sessionid=first["command"]["sessionid"],
        values={"channel": "main", "start": iso(start), "end": iso(start + SLOT), "level": "public", "title": "x",
                "broadcast_password": "cast-secret", "transcript": "bogus"})
    assert cond == "bad-request" and text.startswith("transcript:"), text
