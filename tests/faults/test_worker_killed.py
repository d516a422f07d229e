"""A worker of `idp serve` killed with SIGKILL in the middle of a sign-in step, while it processes
the password: nothing of the step is written, the person presses again, another worker answers
and the sign-in goes on where it was; the server replaces the worker.

The step is held in the middle by a row lock the test takes on the flow (the step writes the flow
last), so the kill lands while the worker is inside the request, not before or after it."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import uuid
from pathlib import Path

import psycopg
import requests
from sqlalchemy.engine import make_url

from tests.live import Visitor

from .conftest import children_of

def _workers(server) -> set[int]:
    return {pid for pid, _cmd in children_of(server.process.pid)}


def _wait_for_workers(server, count: int, timeout: float = 15) -> set[int]:
    deadline = time.monotonic() + timeout
    while True:
        found = _workers(server)
        if len(found) == count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _owner_of_connection(local_port: int, pids: set[int]) -> int | None:
    """Which of ``pids`` holds the TCP connection whose local end is ``local_port`` on 127.0.0.1."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == local_port:
            inodes.add(fields[9])
    for pid in pids:
        try:
            links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            return pid
    return None


def _blocked_worker(db, pids: set[int], timeout: float = 15) -> int:
    """The worker whose database connection waits for the test's lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for (port,) in db.execute("SELECT client_port FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                  "AND pid <> pg_backend_pid()").fetchall():
            owner = _owner_of_connection(port, pids)
            if owner is not None:
                return owner
        time.sleep(0.05)
    raise AssertionError("no worker got to wait on the flow's row lock")


def _state(db, flow_id: str) -> tuple[str, int]:
    """The flow's state, and how many successful password steps the audit trail holds."""
    state = db.execute("SELECT state FROM flows WHERE id = %s", (flow_id,)).fetchone()[0]
    passed = db.execute("SELECT count(*) FROM audit_events WHERE action = 'login.password' "
                        "AND outcome = 'success'").fetchone()[0]
    return state, passed


def test_a_worker_killed_in_the_middle_of_a_sign_in_step_writes_nothing_and_the_flow_goes_on(serve, sink, postgres):
    provider, server = serve(workers=2, database_url=postgres.url, PRUNE_INTERVAL=0)
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
    flow_id = person.url.rstrip("/").rsplit("/", 1)[-1]

    dsn = make_url(postgres.url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as db, psycopg.connect(dsn) as holder:
        holder.execute("SELECT id FROM flows WHERE id = %s FOR UPDATE", (flow_id,))
        outcome = {}

        def press():
            try:
                outcome["status"] = person.submit(password=password).status_code
            except requests.ConnectionError as exc:
                outcome["error"] = exc

        step = threading.Thread(target=press)
        step.start()
        victim = _blocked_worker(db, workers)
        os.kill(victim, signal.SIGKILL)
        step.join(30)
        holder.rollback()
        # The worker died inside the step: the browser saw the connection go, and nothing the
        # step had begun to write stayed.
        assert "error" in outcome or outcome.get("status", 200) >= 500, outcome
        assert _state(db, flow_id) == ("password", 0)

        # The person presses again (bounded: a connection the kernel had already queued for the dead
        # worker is reset too); a live worker takes the step where it was.
        for attempt in range(5):
            try:
                person.submit(password=password)
                break
            except requests.ConnectionError:
                assert attempt < 4, "no worker answered within 5 tries"
                time.sleep(0.5)
        assert person.response.status_code == 200 and person.state == "verify_email", person.response.text[:500]
        assert _state(db, flow_id) == ("verify_email", 1)

    person.submit(email=email)
    code = re.search(r"(?<!\d)(\d{6})(?!\d)", sink.wait_for_mail(email, timeout=10).text).group(1)
    person.submit(email_code=code)
    assert person.state == "totp_enroll", (person.response.status_code, person.alert)

    replaced = _wait_for_workers(server, 2)
    assert len(replaced) == 2 and victim not in replaced, (workers, replaced)
