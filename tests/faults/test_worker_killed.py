"""A worker of `idp serve` killed with SIGKILL in the middle of a sign-in: the next request is
answered by another worker and the sign-in goes on where it was; the server replaces the worker."""

from __future__ import annotations

import os
import re
import signal
import time
import uuid

import requests

from tests.live import Visitor

from .conftest import children_of

LOOPS = ("deliver --loop", "prune --every")


def _workers(server) -> set[int]:
    return {pid for pid, cmd in children_of(server.process.pid) if not any(loop in cmd for loop in LOOPS)}


def _wait_for_workers(server, count: int, timeout: float = 15) -> set[int]:
    deadline = time.monotonic() + timeout
    while True:
        found = _workers(server)
        if len(found) == count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_a_killed_worker_mid_sign_in_loses_nothing_and_is_replaced(serve, sink):
    provider, server = serve(workers=2)
    app = provider.cli_json("clients", "create", "--name", "App", "--first-party", "--redirect-uri",
                            "http://app.test/callback", "--json")
    email, password = f"anna-{uuid.uuid4().hex[:8]}@example.com", "correct horse battery staple 42"
    provider.cli("users", "create", "--email", email, "--password", password, "--json")
    workers = _wait_for_workers(server, 2)
    assert len(workers) == 2, workers

    person = Visitor(provider.url)
    person.http.headers["Connection"] = "close"  # each step on a new connection, as after a reset
    person.authorize(app["client_id"])
    person.submit(email=email)
    assert person.state == "password", person.response.text[:500]

    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    # A connection the kernel had already queued for the dead worker is reset, as a browser would
    # show; the person presses again (bounded), and that request reaches a live worker.
    for attempt in range(5):
        try:
            person.submit(password=password)
            break
        except requests.ConnectionError:
            assert attempt < 4, "no worker answered within 5 tries"
            time.sleep(0.5)
    assert person.response.status_code == 200 and person.state == "verify_email", person.response.text[:500]
    person.submit(email=email)
    code = re.search(r"(?<!\d)(\d{6})(?!\d)", sink.wait_for_mail(email, timeout=10).text).group(1)
    person.submit(email_code=code)
    assert person.state == "totp_enroll", (person.response.status_code, person.alert)

    replaced = _wait_for_workers(server, 2)
    assert len(replaced) == 2 and victim not in replaced, (workers, replaced)
