"""A real SMTP server for the tests: aiosmtpd (Debian's python3-aiosmtpd),
on loopback, in a thread of the test process.

    box = Mailbox()                         # what arrives, and how to answer
    smtp = SmtpServer(box).start()          # or SmtpServer(box, port) to start later on a chosen port
    msg = box.wait(lambda m: "x@example.com" in m.rcpt_tos)   # bounded wait
    smtp.stop()

Mailbox.reject maps a recipient to the reply given to its RCPT TO (e.g.
"550 5.1.1 no such user"); Mailbox.reject_data maps a recipient to the
reply given at the end of its message (e.g. "554 5.7.1 rejected");
Mailbox.defer_data makes the next N messages fail with 451 after DATA;
Mailbox.stall_data_s makes the server wait that long before it answers the
end of each message (a slow mail server), and data_started is set when it
begins waiting.  Every message keeps its envelope, its raw bytes
and the parsed message (email.policy.default, which decodes RFC 2047 words
and MIME parts).
"""
import asyncio
import email
import email.policy
import threading
import time

import ssl

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from harness import free_ports

WAIT = 20.0


class Received:
    def __init__(self, envelope, tls=False):
        self.tls = tls  # it came over STARTTLS
        self.mail_from = envelope.mail_from
        self.rcpt_tos = list(envelope.rcpt_tos)
        self.raw = envelope.original_content or envelope.content
        self.msg = email.message_from_bytes(self.raw, policy=email.policy.default)

    @property
    def subject(self):
        return str(self.msg["Subject"])

    def text(self):
        """The decoded text of the (first) text/plain body part."""
        part = self.msg.get_body(preferencelist=("plain",))
        return part.get_content()

    def __repr__(self):
        return f"<mail from {self.mail_from} to {self.rcpt_tos}: {self.subject!r}>"


class Mailbox:
    def __init__(self):
        self.cond = threading.Condition()
        self.messages = []
        self.reject = {}
        self.reject_data = {}
        self.defer_data = 0
        self.stall_data_s = 0.0
        self.data_started = threading.Event()
        self.rcpt_seen = []  # every RCPT TO address, accepted or not

    # aiosmtpd handler hooks (run in the server's thread)
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.cond:
            self.rcpt_seen.append(address)
            reply = self.reject.get(address)
            self.cond.notify_all()
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.stall_data_s > 0:
            self.data_started.set()
            await asyncio.sleep(self.stall_data_s)  # the message is in; the answer is late
        with self.cond:
            for rcpt in envelope.rcpt_tos:
                if rcpt in self.reject_data:
                    self.rcpt_seen.append("DATA " + rcpt)
                    self.cond.notify_all()
                    return self.reject_data[rcpt]
            if self.defer_data > 0:
                self.defer_data -= 1
                self.cond.notify_all()
                return "451 4.3.0 try again later"
            self.messages.append(Received(envelope, tls=session.ssl is not None))
            self.cond.notify_all()
        return "250 OK queued"

    # the test side
    def wait(self, pred, timeout=WAIT, what="a mail"):
        """The first received message matching pred (bounded wait)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for m in self.messages:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {what} within {timeout}s; received: {self.messages}")
                self.cond.wait(left)

    def wait_count(self, pred, n, timeout=WAIT, what="mails"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [m for m in self.messages if pred(m)]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(got)} of {n} {what} within {timeout}s; received: {self.messages}")
                self.cond.wait(left)

    def wait_rcpt(self, address, timeout=WAIT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while address not in self.rcpt_seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no RCPT TO {address} within {timeout}s; seen: {self.rcpt_seen}")
                self.cond.wait(left)

    def to(self, address):
        with self.cond:
            return [m for m in self.messages if address in m.rcpt_tos]


class SmtpServer:
    """auth=(user, password): AUTH required (over plain SMTP too); tls=(cert,
    key): STARTTLS offered and required."""

    def __init__(self, box, port=None, auth=None, tls=None):
        self.box = box
        self.host = "127.0.0.1"
        self.port = port or free_ports(1)[0]
        self.auth = auth
        self.tls = tls
        self.logins = []
        self.controller = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        if (isinstance(auth_data, LoginPassword) and self.auth
                and (auth_data.login, auth_data.password) == tuple(x.encode() for x in self.auth)):
            self.logins.append(auth_data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def start(self):
        kw = {}
        if self.auth:
            kw.update(authenticator=self._authenticate, auth_required=True, auth_require_tls=False)
        if self.tls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            kw.update(tls_context=ctx, require_starttls=True)
        self.controller = Controller(self.box, hostname=self.host, port=self.port, ready_timeout=10, **kw)
        self.controller.start()
        return self

    def stop(self):
        if self.controller:
            self.controller.stop()
            self.controller = None

    def config(self, **over):
        """The plugin's settings for this server (plain SMTP, short retries)."""
        cfg = {"smtp_host": self.host, "smtp_port": self.port, "starttls": "off", "from": "onair@localhost",
               "retry_first_s": 1, "retry_max_s": 2}
        cfg.update(over)
        return cfg
