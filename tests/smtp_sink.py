"""A real SMTP server for tests and the benchmark (aiosmtpd), keeping what it receives."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
import time

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
                match = re.search(r"(?<!\d)(\d{6})(?!\d)", text_of(message))
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
