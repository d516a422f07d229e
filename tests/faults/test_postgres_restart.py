"""PostgreSQL restarted under a running `idp serve` with requests in flight: while it is away
every answer is a clear 503 page or an OAuth ``temporarily_unavailable``, never a 500 or a
traceback; within 5 s after it is back every request succeeds again (the pool's checkout replaces
the connections the restart closed: idp.live_connections)."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.live import Visitor

from .conftest import client_credentials

def _round(provider, clients) -> list[tuple[str, int, str]]:
    """Discovery, a client_credentials token and a sign-in page: (what, status, body)."""
    out = []
    for name, call in (
        ("discovery", lambda: requests.get(provider.url + "/.well-known/openid-configuration", timeout=10)),
        ("token", lambda: client_credentials(provider, clients["m2m"])),
        ("sign-in page", lambda: Visitor(provider.url).authorize(clients["app"]["client_id"])),
    ):
        try:
            response = call()
            out.append((name, response.status_code, response.text))
        except requests.RequestException as exc:  # the server must answer, even now
            out.append((name, 0, repr(exc)))
    return out


def _fine(status: int, body: str) -> bool:
    if status == 200:
        return True
    return status == 503 and ("temporarily_unavailable" in body or "temporarily unavailable" in body.lower())


def test_requests_during_a_database_restart_get_a_clear_503_and_recover(serve, postgres):
    cluster = postgres
    provider, _server = serve(workers=2, database_url=cluster.url, PRUNE_INTERVAL=0)
    clients = {
        "app": provider.cli_json("clients", "create", "--name", "App", "--first-party", "--redirect-uri",
                                 "http://app.test/callback", "--json"),
        "m2m": provider.cli_json("clients", "create", "--name", "Batch", "--grant-type", "client_credentials",
                                 "--json"),
    }
    assert {(n, s) for n, s, _ in _round(provider, clients)} == {("discovery", 200), ("token", 200), ("sign-in page", 200)}

    seen: list[tuple[float, str, int, str]] = []
    done = threading.Event()

    def load():
        deadline = time.monotonic() + 40  # bounded whatever happens to the test thread
        while not done.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            seen.extend((started, *answer) for answer in _round(provider, clients))
            time.sleep(0.05)

    before = provider.log_size()
    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    time.sleep(1)
    cluster.stop()
    time.sleep(2)
    cluster.start()
    back = time.monotonic()
    time.sleep(7)
    done.set()
    worker.join(timeout=30)

    bad = [(n, s, b[:300]) for _t, n, s, b in seen if not _fine(s, b)]
    assert not bad, bad
    assert any(s == 503 for _t, _n, s, _b in seen), "no request met the restart"
    late = [(n, s) for t, n, s, _b in seen if t > back + 5]
    assert late and all(s == 200 for _n, s in late), late
    provider.assert_no_unhandled_error(since=before)
