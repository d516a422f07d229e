"""Fault tests: a real `idp serve` (its own database, SMTP sink and, where needed, Redis or
PostgreSQL that the test stops and starts again), on loopback, each bounded in time."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests import live
from tests.live import Provider, Server, free_port, provider_env, run_idp
from tests.smtp_sink import Mailbox


def children_of(pid: int) -> list[tuple[int, str]]:
    """(pid, name and command line) of the live processes whose parent is ``pid``: under `idp serve`,
    its workers."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append((int(entry.name), f"[{name}] {cmdline}"))
    return found


def thread_names(pid: int) -> list[str]:
    """The names of a process's threads (`ps -L`): the worker that runs the delivery and prune loops
    has threads named `idp-delivery` and `idp-prune`."""
    names = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return names
    for task in tasks:
        try:
            names.append((task / "comm").read_text().strip())
        except OSError:
            continue
    return names


@pytest.fixture
def sink():
    box = Mailbox()
    box.start_relay(free_port())
    yield box
    box.stop_relay()


@pytest.fixture
def serve(tmp_path, sink):
    """Start `idp serve` with ``env`` overrides; returns (Provider, Server). Stopped at the end."""
    servers = []

    def start(workers: int = 2, database_url: str | None = None, server_kind: str = "granian",
              options: tuple[str, ...] = (), **env_overrides) -> tuple[Provider, Server]:
        port = free_port()
        issuer = f"http://127.0.0.1:{port}"
        env = provider_env(issuer, database_url=database_url or f"sqlite:///{tmp_path / 'idp.db'}",
                           instance=tmp_path / "instance", mail_port=sink.port, **env_overrides)
        run_idp(env, "db", "upgrade")
        server = live.serve(env, port, tmp_path / f"idp-{port}.log", workers=workers, server_kind=server_kind,
                            options=options)
        servers.append(server)
        return Provider(url=issuer, env=env, log=server.log), server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def postgres():
    """A PostgreSQL cluster of the test's own (tests/faults/postgres.py), removed at the end."""
    from .postgres import Cluster

    cluster = Cluster().init()
    cluster.start()
    yield cluster
    cluster.remove()


class RedisServer:
    """A redis-server of the test's own on a free loopback port, which the test stops and starts."""

    def __init__(self, directory: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._directory = directory
        self.process = None

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self._directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


def client_credentials(provider: Provider, client: dict):
    import requests

    return requests.post(provider.url + "/token", data={"grant_type": "client_credentials"},
                         auth=(client["client_id"], client["client_secret"]), timeout=15)


def across_a_restart(cluster, call) -> tuple[list, object]:
    """Stop the database ``cluster``, ``call()`` three times while it is away, start it again and
    ``call()`` until an answer is 200 (10 s at most); every answer then is a 200 or a 503.
    ``call()`` answers (status, body). Returns the answers while away and the first 200's body
    (None if none came)."""
    cluster.stop()
    away = [call() for _ in range(3)]
    cluster.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, body = call()
        assert status in (200, 503), (status, str(body)[:300])
        if status == 200:
            return away, body
        time.sleep(0.2)
    return away, None
