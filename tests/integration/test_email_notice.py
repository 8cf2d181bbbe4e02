"""The email_notice plugin (plugins/email_notice/README.md, specs/email.md)
against a real SMTP server started by the tests (aiosmtpd, on loopback):
the booking mail to the owner and the friends' notices (by mail, and by
XMPP with a XEP-0249 invitation, also to an offline friend) with the right
content and MIME; header injection attempts in titles and in the mail
service's subjects neutralised; SMTP down at reconfirmation, then up (mails
arrive, also after a 451 and across kill -9 and a restart of onaird); a
recipient refused with 550 dropped and reported to the owner; an account
without an e-mail address; SMTP AUTH and STARTTLS; new settings on SIGHUP;
bad settings.

Also the host functions of plugin ABI 1.1 through the test plugin `probe`
(tests/plugins/probe.c): fd_watch / fd_unwatch, reservation_read,
account_email, service_provide / service_lookup, and a watch left behind
at unload."""
import asyncio
import os
import pathlib
import re
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

import clients
from booking import CHANNELS
from booking import http_account as account
from booking import http_book as book
from booking import http_reconfirm as reconfirm
from rawxmpp import RawStream, q
from smtpd import Mailbox, SmtpServer
from test_plugins import plugin_dir, sighup, wait_log

NS_PROBE = "urn:onair:test:probe"
NS_CONFERENCE = "jabber:x:conference"

BOX = Mailbox()
SMTP = SmtpServer(BOX)  # its port is fixed now, for the module server's configuration
_DIR = plugin_dir(pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / f"onair-email-plugins-{os.getpid()}",
                  ["email_notice", "probe"])
SERVER_CONFIG = {
    "channels": CHANNELS,
    "reservation": {"timezone": "UTC", "slot_s": 1800, "max_duration_s": 4 * 3600},
    "schedule": {"reconfirm_before_s": 3600},
    "plugins": {"dir": str(_DIR), "load": ["email_notice", "probe"]},
    "plugin": {"email_notice": SMTP.config()},
}


@pytest.fixture(scope="module", autouse=True)
def smtp():
    SMTP.start()
    yield SMTP
    SMTP.stop()


def private_config(root, smtp_server, load=("email_notice", "probe"), **plugin_over):
    return {
        "channels": CHANNELS,
        "reservation": {"timezone": "UTC", "slot_s": 1800, "max_duration_s": 4 * 3600},
        "schedule": {"reconfirm_before_s": 3600},
        "plugins": {"dir": str(plugin_dir(root, list(load))), "load": list(load)},
        "plugin": {"email_notice": smtp_server.config(**plugin_over)},
    }


# ---- helpers ------------------------------------------------------------------


def fmt(t):
    """The plugin's time format in a UTC server."""
    from datetime import datetime, timezone
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def header_section(raw):
    return raw.split(b"\r\n\r\n", 1)[0].decode("ascii")


def assert_wire_format(m):
    """7-bit, CRLF lines, headers at most 78 and body lines at most 76 characters."""
    raw = m.raw
    assert all(b < 0x80 for b in raw), "non-ASCII byte on the wire"
    head, _, body = raw.partition(b"\r\n\r\n")
    for ln in head.split(b"\r\n"):
        assert len(ln) <= 78, ln
    for ln in body.split(b"\r\n"):
        assert len(ln) <= 76, ln
    assert b"\n" not in raw.replace(b"\r\n", b""), "bare LF"
    assert m.msg["MIME-Version"] == "1.0"
    assert m.msg["Message-ID"].startswith("<onair.")
    assert m.msg["Date"]
    assert m.msg["Auto-Submitted"] == "auto-generated"


async def probe(raw, op, **fields):
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    el = await raw.iq(f"<query xmlns='{NS_PROBE}'><op>{op}</op>{inner}</query>")
    assert el.get("type") == "result", ET.tostring(el, encoding="unicode")
    return {c.tag.split("}", 1)[1]: c.text or "" for c in el.find(q(NS_PROBE, "query"))}


def esc(s):
    """XML text, with CR kept as a character reference (XML reads a raw CR LF as LF)."""
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


async def raw_login(server, user=None, pw=None):
    if not user:
        jid, pw = server.add_user()
        user = jid.split("@")[0]
    raw = await RawStream.connect(server.host, server.port)
    await raw.login(user, pw)
    return raw


# ---- booking mail and notices -------------------------------------------------------


async def test_booking_mail_and_friends_notices(server):
    owner, _, tok = account(server, "owner.one@example.com")
    online_jid, online_pw = server.add_user()
    offline_jid, offline_pw = server.add_user()
    friend = await clients.login(server, online_jid, online_pw)
    title = "Café live — 東京 special"
    friends = ["ann@example.com", "bob@example.org", online_jid, f"xmpp:{offline_jid}"]
    res, start, end = book(server, tok, title=title, friends=friends)
    rid = res["id"]

    booked = await asyncio.to_thread(BOX.wait, lambda m: "owner.one@example.com" in m.rcpt_tos, what="booking mail")
    assert booked.rcpt_tos == ["owner.one@example.com"]
    assert booked.mail_from == "onair@localhost"
    assert booked.subject == f"Booked: {title}, {fmt(start)}"
    assert booked.msg["To"] == "owner.one@example.com"
    assert booked.msg["X-Onair-Reservation"] == rid
    assert booked.msg.get_content_type() == "text/plain"
    assert booked.msg.get_content_charset() == "utf-8"
    assert booked.msg["Content-Transfer-Encoding"] == "quoted-printable"
    text = booked.text()
    assert rid in text and title in text and fmt(start - 3600) in text and "Reconfirm by:" in text
    assert "view-secret" not in text and "cast-secret" not in text
    assert_wire_format(booked)
    assert not BOX.to("ann@example.com")  # the friends hear nothing before reconfirmation

    settings = reconfirm(server, tok, rid)
    for addr in ("ann@example.com", "bob@example.org"):
        m = await asyncio.to_thread(BOX.wait, lambda m, a=addr: a in m.rcpt_tos, what=f"notice to {addr}")
        assert m.rcpt_tos == [addr]  # one mail per friend: nobody sees the others
        assert m.msg["To"] == addr
        assert m.subject == f"Invitation: {title}, {fmt(start)}"
        body = m.text()
        for want in (title, "A short talk", f"{fmt(start)} to {fmt(end)}", settings["page_url"], "view-secret",
                     rid, settings["room_jid"]):
            assert want in body, (want, body)
        assert_wire_format(m)

    # XMPP friends: the details and a direct invitation with the password.
    msg = await friend.wait_message(lambda m: m.xml.find(q(NS_CONFERENCE, "x")) is not None)
    x = msg.xml.find(q(NS_CONFERENCE, "x"))
    assert x.get("jid") == settings["room_jid"] and x.get("password") == "view-secret" and x.get("reason") == title
    assert rid in msg["body"] and settings["page_url"] in msg["body"] and msg["from"].bare == server.domain
    offline = await clients.login(server, offline_jid, offline_pw)
    later = await offline.wait_message(lambda m: m.xml.find(q(NS_CONFERENCE, "x")) is not None)
    assert later.xml.find(q(NS_CONFERENCE, "x")).get("jid") == settings["room_jid"]
    assert later.xml.find("{urn:xmpp:delay}delay") is not None  # it waited in offline storage
    # No mail to the XMPP friends, and no password in the log.
    assert not [m for m in BOX.messages if online_jid in m.rcpt_tos or offline_jid in m.rcpt_tos]
    await wait_log(server, rf"plugin email_notice: q\d+ \(notice, reservation {rid}\) delivered to bob@example.org")
    assert "view-secret" not in server.stderr_text()


async def test_public_live_and_owner_without_address(server):
    owner, _, tok = account(server)  # no e-mail address
    res, start, _ = book(server, tok, title="Open air", friends=["pub@example.com"], level="public", summary="")
    rid = res["id"]
    await wait_log(server, rf"reservation {rid} booked by {owner}: the account has no e-mail address, no booking mail")
    reconfirm(server, tok, rid)
    m = await asyncio.to_thread(BOX.wait, lambda m: "pub@example.com" in m.rcpt_tos)
    body = m.text()
    assert "(none needed)" in body and "Summary:" not in body and rid in body


# ---- header injection -------------------------------------------------------------


async def test_header_injection_in_titles_is_neutralised(server):
    _, _, tok = account(server, "inj.owner@example.com")
    # Line separators and an encoded word that decodes to CRLF + a header:
    # the booking accepts them (no control characters), the mails must not
    # grow a header or a recipient from them.
    title = "Talk\u2028Bcc: evil@example.com\u2029To: evil2@example.com =?UTF-8?B?DQpCY2M6IGV2aWxAZXhhbXBsZS5jb20=?="
    assert len(title) <= 100
    res, _, _ = book(server, tok, title=title, friends=["inj.friend@example.com"])
    rid = res["id"]
    booked = await asyncio.to_thread(BOX.wait, lambda m: "inj.owner@example.com" in m.rcpt_tos)
    reconfirm(server, tok, rid)
    notice = await asyncio.to_thread(BOX.wait, lambda m: "inj.friend@example.com" in m.rcpt_tos)
    for m in (booked, notice):
        assert len(m.rcpt_tos) == 1
        assert m.msg["Bcc"] is None and m.msg.get_all("To") == [m.rcpt_tos[0]]
        head = header_section(m.raw)
        assert not re.search(r"^(Bcc|To):.*evil", head, re.M | re.I), head
        # The title is all there, as text of the one Subject line.
        subject = m.subject
        assert "\n" not in subject and "\r" not in subject
        assert "Bcc: evil@example.com To: evil2@example.com =?UTF-8?B?DQpCY2M6IGV2aWxAZXhhbXBsZS5jb20=?=" in subject
        assert_wire_format(m)
    assert not [a for a in BOX.rcpt_seen if "evil" in a]


async def test_mail_service_subjects_and_bodies_are_safe(server):
    raw = await raw_login(server)
    try:
        subject = "Transcript\r\nBcc: evil@example.com\r\n\r\nfake body"
        body = "line one\r\n.\r\nQUIT\r\nFrom the start\n" + "x" * 5000 + "\n=?UTF-8?Q?=0D=0A?= end  \n"
        r = await probe(raw, "mail", to="svc.one@example.com", subject=esc(subject), body=esc(body),
                        name="transcript.txt", attachment=esc("who: hi\n.\nwho: bye"))
        assert r["rc"] == "0"
        m = await asyncio.to_thread(BOX.wait, lambda m: "svc.one@example.com" in m.rcpt_tos)
        assert m.rcpt_tos == ["svc.one@example.com"] and m.msg["Bcc"] is None
        assert " ".join(m.subject.split()) == "Transcript Bcc: evil@example.com fake body"
        assert re.search(r"^Subject: Transcript  Bcc: evil@example.com    fake body\r\nMessage-ID: ",
                         header_section(m.raw) + "\r\n", re.M)
        assert m.msg.get_content_type() == "multipart/mixed"
        text = m.text()
        assert text.replace("\r\n", "\n") == "line one\n.\nQUIT\nFrom the start\n" + "x" * 5000 + \
            "\n=?UTF-8?Q?=0D=0A?= end  \n"
        atts = list(m.msg.iter_attachments())
        assert len(atts) == 1 and atts[0].get_filename() == "transcript.txt"
        assert atts[0].get_content().replace("\r\n", "\n") == "who: hi\n.\nwho: bye\n"
        assert_wire_format(m)
        # Refused: a bad address, a bad attachment name, nothing to send to.
        assert (await probe(raw, "mail", to=esc("a@b.example>\r\nRCPT TO:<evil@x.example"), subject="s",
                            body="b"))["rc"] == "-1"
        assert (await probe(raw, "mail", to="ok@example.com", subject="s", body="b", name="../etc"))["rc"] == "-1"
        assert (await probe(raw, "mail", subject="s", body="b"))["rc"] == "-1"
        # To an account: its address; an account without one is not found.
        user, _, _ = account(server, "svc.two@example.com")
        assert (await probe(raw, "mail", account=user, subject="To the account", body="hello"))["rc"] == "0"
        m = await asyncio.to_thread(BOX.wait, lambda m: "svc.two@example.com" in m.rcpt_tos)
        assert m.subject == "To the account"
        nomail, _, _ = account(server)
        assert (await probe(raw, "mail", account=nomail, subject="s", body="b"))["rc"] == "-2"
    finally:
        await raw.close()


# ---- SMTP away: retried, nothing lost -------------------------------------------------


async def test_smtp_down_at_reconfirmation_then_up(server_factory, tmp_path):
    box = Mailbox()
    smtp = SmtpServer(box)  # not listening yet
    srv = server_factory(private_config(tmp_path, smtp))
    _, _, tok = account(srv, "down.owner@example.com")
    res, _, _ = book(srv, tok, friends=["down.a@example.com", "down.b@example.com"])
    rid = res["id"]
    reconfirm(srv, tok, rid)
    await wait_log(srv, r"q\d+ \(notice\) to down.b@example.com: .*attempt 1 failed, next in 1 s")
    await wait_log(srv, r"q\d+ \(notice\) to down.a@example.com: .*attempt 2 failed, next in 2 s")
    box.defer_data = 1  # and the first message after it comes up is deferred with 451
    smtp.start()
    try:
        got = await asyncio.to_thread(box.wait_count, lambda m: True, 3)
        assert sorted(a for m in got for a in m.rcpt_tos) == ["down.a@example.com", "down.b@example.com",
                                                              "down.owner@example.com"]
        await wait_log(srv, r"\(SMTP 451\); attempt \d+ failed")
        for addr in ("down.a@example.com", "down.b@example.com", "down.owner@example.com"):
            await wait_log(srv, rf"delivered to {re.escape(addr)}")
        assert all(len(box.to(a)) == 1 for a in ("down.a@example.com", "down.b@example.com"))
    finally:
        smtp.stop()


async def test_smtp_down_across_kill_and_restart(server_factory, tmp_path):
    box = Mailbox()
    smtp = SmtpServer(box)
    srv = server_factory(private_config(tmp_path, smtp))
    _, _, tok = account(srv, "kill.owner@example.com")
    res, start, _ = book(srv, tok, friends=["kill.a@example.com", "kill.b@example.com"])
    rid = res["id"]
    settings = reconfirm(srv, tok, rid)
    await wait_log(srv, r"q\d+ \(notice\) to kill.b@example.com: .*attempt 1 failed")
    srv.kill9()
    smtp.start()
    try:
        srv.start()
        await wait_log(srv, r"plugin email_notice: ready")
        got = await asyncio.to_thread(box.wait_count, lambda m: True, 3)
        assert sorted(a for m in got for a in m.rcpt_tos) == ["kill.a@example.com", "kill.b@example.com",
                                                              "kill.owner@example.com"]
        notice = next(m for m in got if m.rcpt_tos == ["kill.a@example.com"])
        assert settings["page_url"] in notice.text() and "view-secret" in notice.text()
        for addr in ("kill.a@example.com", "kill.b@example.com", "kill.owner@example.com"):
            await wait_log(srv, rf"delivered to {re.escape(addr)}")
        # The outbox is empty now: a restart sends nothing again.
        srv.restart()
        raw = await raw_login(srv)
        await raw.close()
        assert len(box.messages) == 3
    finally:
        smtp.stop()


async def test_a_stalled_mail_server_does_not_block_the_loop(server_factory, tmp_path):
    """libcurl waits for the reply to the end of a message (and to QUIT)
    without returning: the plugin does that on the thread pool, so while a
    mail server takes seconds to answer, XMPP pings are answered at once."""
    box = Mailbox()
    box.stall_data_s = 4.0
    smtp = SmtpServer(box).start()
    try:
        srv = server_factory(private_config(tmp_path, smtp, reply_timeout_s=30, timeout_s=60))
        c = await clients.login(srv, *srv.add_user())
        user, _, tok = account(srv, email="slow@example.com")
        book(srv, tok)  # the booking mail goes out now
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, box.data_started.wait, 10), "the mail never reached DATA"
        began = time.monotonic()
        slowest = 0.0
        pings = 0
        while time.monotonic() - began < 2.5:  # well inside the 4 s the server stalls
            t0 = time.monotonic()
            await asyncio.wait_for(c.plugin["xep_0199"].ping(jid=srv.domain, timeout=5), 5)
            slowest = max(slowest, time.monotonic() - t0)
            pings += 1
        assert pings >= 5 and slowest < 1.0, f"{pings} pings, slowest {slowest:.2f} s: the loop was blocked"
        assert not box.to("slow@example.com"), "the server answered too early for this test"
        # the mail is delivered once the server answers
        m = box.wait(lambda x: "slow@example.com" in x.rcpt_tos, timeout=15)
        assert "Booked" in m.subject
        await wait_log(srv, r"q\d+ \(booking, reservation [a-z2-7]{26}\) delivered to slow@example.com")
    finally:
        smtp.stop()


async def test_refused_recipient_is_reported_to_the_owner(server):
    BOX.reject["nobody@example.com"] = "550 5.1.1 no such user"
    BOX.reject_data["spam@example.com"] = "554 5.7.1 rejected as spam"
    owner, pw, tok = account(server, "rep.owner@example.com")
    owner_client = await clients.login(server, f"{owner}@{server.domain}", pw)
    res, _, _ = book(server, tok, title="Reported", friends=["nobody@example.com", "rep.friend@example.com",
                                                             "spam@example.com"])
    rid = res["id"]
    reconfirm(server, tok, rid)
    await asyncio.to_thread(BOX.wait, lambda m: "rep.friend@example.com" in m.rcpt_tos)
    await asyncio.to_thread(BOX.wait_rcpt, "nobody@example.com")
    await wait_log(server, rf"q\d+ \(notice, reservation {rid}\) to nobody@example.com given up: the mail server "
                           r"refused it permanently: RCPT failed: 550")
    report = await owner_client.wait_message(lambda m: "nobody@example.com" in m["body"])
    assert rid in report["body"] and report["subject"] == "Not delivered: notice to nobody@example.com"
    # the two reports may come in either order (mails are sent in parallel)
    mail = await asyncio.to_thread(BOX.wait, lambda m: "rep.owner@example.com" in m.rcpt_tos and
                                   m.subject == "Not delivered: notice to nobody@example.com")
    assert "nobody@example.com" in mail.text() and "550" in mail.text()
    # Refused at the end of the message: the same.
    await wait_log(server, rf"q\d+ \(notice, reservation {rid}\) to spam@example.com given up: the mail server "
                           r"refused it permanently: .*SMTP 554")
    await owner_client.wait_message(lambda m: "spam@example.com" in m["body"])
    assert BOX.rcpt_seen.count("nobody@example.com") == 1  # not retried
    assert BOX.rcpt_seen.count("DATA spam@example.com") == 1


async def test_given_up_after_give_up_s_and_reported(server_factory, tmp_path):
    box = Mailbox()
    smtp = SmtpServer(box)  # never started
    srv = server_factory(private_config(tmp_path, smtp, give_up_s=2))
    owner, pw, tok = account(srv)  # no e-mail address: told by XMPP only
    owner_client = await clients.login(srv, f"{owner}@{srv.domain}", pw)
    res, _, _ = book(srv, tok, friends=["late@example.com"])
    reconfirm(srv, tok, res["id"])
    await wait_log(srv, r"q\d+ \(notice, reservation \w+\) to late@example.com given up: not delivered within 2 s "
                        r"of being queued; last: .*SMTP 0")
    report = await owner_client.wait_message(lambda m: "late@example.com" in m["body"])
    assert "not delivered within 2 s" in report["body"] and res["id"] in report["body"]


# ---- AUTH, STARTTLS, settings --------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_smtp_auth_and_password_never_logged(server_factory, tmp_path):
    box = Mailbox()
    smtp = SmtpServer(box, auth=("mailer", "s3cret-pw")).start()
    try:
        srv = server_factory(private_config(tmp_path, smtp, username="mailer", password="s3cret-pw"))
        _, _, tok = account(srv, "auth.owner@example.com")
        book(srv, tok)
        m = await asyncio.to_thread(box.wait, lambda m: True)
        assert m.rcpt_tos == ["auth.owner@example.com"] and smtp.logins == ["mailer"]
        await wait_log(srv, r"SMTP AUTH without starttls = \"required\"")
        assert "s3cret-pw" not in srv.stderr_text()
    finally:
        smtp.stop()


async def test_starttls(server_factory, tmp_path):
    cert, key = tmp_path / "smtp.crt", tmp_path / "smtp.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    plain_box, tls_box = Mailbox(), Mailbox()
    plain = SmtpServer(plain_box).start()
    tls = SmtpServer(tls_box, tls=(cert, key)).start()
    try:
        # required, but the server offers no STARTTLS: nothing is sent, it is retried.
        a = server_factory(private_config(tmp_path / "a", plain, smtp_host="localhost", starttls="required",
                                          ca_file=str(cert)))
        _, _, tok = account(a, "tls.a@example.com")
        book(a, tok)
        await wait_log(a, r"q\d+ \(booking\) to tls.a@example.com: .*attempt 1 failed")
        assert not plain_box.messages
        # required, offered, the certificate checked against ca_file: sent over TLS.
        b = server_factory(private_config(tmp_path / "b", tls, smtp_host="localhost", starttls="required",
                                          ca_file=str(cert)))
        _, _, tok = account(b, "tls.b@example.com")
        book(b, tok)
        m = await asyncio.to_thread(tls_box.wait, lambda m: True)
        assert m.rcpt_tos == ["tls.b@example.com"] and m.tls
    finally:
        plain.stop()
        tls.stop()


async def test_sighup_moves_to_another_mail_server(server_factory, tmp_path):
    box1, box2 = Mailbox(), Mailbox()
    s1, s2 = SmtpServer(box1).start(), SmtpServer(box2).start()
    try:
        srv = server_factory(private_config(tmp_path, s1))
        _, _, tok = account(srv, "hup.one@example.com")
        book(srv, tok)
        await asyncio.to_thread(box1.wait, lambda m: "hup.one@example.com" in m.rcpt_tos)
        srv.groups["plugin"]["email_notice"]["smtp_port"] = s2.port
        srv.write_config()
        mark = await sighup(srv)
        await wait_log(srv, rf"plugin email_notice: reloaded: mail through 127.0.0.1:{s2.port}", after=mark)
        _, _, tok = account(srv, "hup.two@example.com")
        book(srv, tok)
        await asyncio.to_thread(box2.wait, lambda m: "hup.two@example.com" in m.rcpt_tos)
        # A bad value: refused by the plugin, the running settings stay.
        srv.groups["plugin"]["email_notice"]["starttls"] = "maybe"
        srv.write_config()
        mark = await sighup(srv)
        await wait_log(srv, r"plugin email_notice: reload refused by the plugin", after=mark)
        _, _, tok = account(srv, "hup.three@example.com")
        book(srv, tok)
        await asyncio.to_thread(box2.wait, lambda m: "hup.three@example.com" in m.rcpt_tos)
        assert [m.rcpt_tos for m in box1.messages] == [["hup.one@example.com"]]
    finally:
        s1.stop()
        s2.stop()


async def test_bad_settings_skip_the_plugin(server_factory, tmp_path):
    srv = server_factory(private_config(tmp_path, SMTP, starttls="sometimes"))
    await wait_log(srv, r"plugin.email_notice.starttls: expected off, opportunistic or required")
    await wait_log(srv, r'plugin: "email_notice" not loaded: its init failed')
    raw = await raw_login(srv)
    try:
        assert (await probe(raw, "mail", to="x@example.com", subject="s", body="b"))["rc"] == "none"
    finally:
        await raw.close()
