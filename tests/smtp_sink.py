"""Real SMTP servers for tests and the benchmark (aiosmtpd), keeping what they receive: ``Sink``
keeps the raw messages; ``Mailbox`` (for the tests of a running `idp serve`) hands each mail out
once and can be taken off the network and put back on the same port."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
import time
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self._lock = threading.Lock()
        self.port = free_port()
        self.controller = None

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)
        return "250 OK"

    def start(self):
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def to(self, address: str) -> list:
        with self._lock:
            return [m for m in self.messages if address in m["To"]]

    def count(self) -> int:
        with self._lock:
            return len(self.messages)

    def code_for(self, address: str, since: int = 0, timeout: float = 10.0) -> str:
        """The newest 6-digit code mailed to ``address`` in a message after the first ``since``."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = [m for m in self.messages[since:] if address.lower() in str(m["To"]).lower()]
            for message in reversed(found):
                match = re.search(r"^\s*(\d{6})\s*$", text_of(message), re.M)  # the code's own line
                if match:
                    return match.group(1)
            if time.monotonic() >= deadline:
                raise AssertionError(f"no mail with a 6-digit code reached {address} within {timeout:.0f}s "
                                     f"({self.count()} mails received)")
            time.sleep(0.05)

    def wait_for(self, address: str, count: int = 1, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(address)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no mail to {address} within {timeout}s")


def text_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


@dataclass
class Mail:
    to: str
    subject: str
    text: str
    raw: bytes = field(repr=False)


class Mailbox:
    """Mail received by the sink, in arrival order. ``wait_for_mail`` hands each mail
    out once, so a second mail to the same address is not confused with the first."""

    def __init__(self):
        self._mails: list[Mail] = []
        self._taken: set[int] = set()
        self._cond = threading.Condition()
        self._controller = None
        self.port: int | None = None

    # the relay itself: the provider's IDP_MAIL_PORT stays the same across a restart

    def start_relay(self, port: int | None = None) -> None:
        from aiosmtpd.controller import Controller

        assert self._controller is None, "the SMTP sink is already running"
        if port is not None:
            self.port = port
        controller = Controller(self, hostname="127.0.0.1", port=self.port)
        controller.start()  # a stopped controller's event loop is closed: always a new one
        self._controller = controller

    def stop_relay(self) -> None:
        """Take the SMTP sink off the network: connections to its port are refused."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def relay_running(self) -> bool:
        return self._controller is not None

    # aiosmtpd handler hook
    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        recipients = {r.lower() for r in envelope.rcpt_tos}
        recipients |= {a.addr_spec.lower() for a in (message["To"].addresses if message["To"] else ())}
        with self._cond:
            for to in sorted(recipients):
                self._mails.append(Mail(to=to, subject=str(message["Subject"] or ""), text=text, raw=envelope.content))
            self._cond.notify_all()
        return "250 Message accepted for delivery"

    def all(self, to: str | None = None) -> list[Mail]:
        with self._cond:
            return [m for m in self._mails if to is None or m.to == to.lower()]

    def wait_for_mail(self, to: str, timeout: float = 15, match: str | re.Pattern | None = None) -> Mail:
        """The next mail to ``to`` not handed out yet; with ``match``, the next one whose
        subject or text contains that regular expression (mails skipped over stay
        available for later calls)."""
        to = to.lower()
        pattern = re.compile(match) if match is not None else None
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, mail in enumerate(self._mails):
                    if i in self._taken or mail.to != to:
                        continue
                    if pattern is not None and not (pattern.search(mail.subject) or pattern.search(mail.text)):
                        continue
                    self._taken.add(i)
                    return mail
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = sorted({m.to for m in self._mails})
                    wanted = f" matching {pattern.pattern!r}" if pattern is not None else ""
                    raise AssertionError(f"no mail to {to}{wanted} within {timeout} s (mail arrived for: {seen})")
                self._cond.wait(remaining)

    def code_for(self, to: str, timeout: float = 15) -> str:
        """The 6-digit code of the next mail to ``to``."""
        mail = self.wait_for_mail(to, timeout)
        # The code stands on a line of its own (an address in the text may hold six digits too).
        match = re.search(r"^\s*(\d{6})\s*$", mail.text, re.M)
        assert match, f"no 6-digit code in the mail {mail.subject!r} to {to}:\n{mail.text}"
        return match.group(1)
