"""Fault tests: a real `idp serve` (its own database, SMTP sink and, where needed, Redis or
PostgreSQL that the test stops and starts again), on loopback, each bounded in time."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, Mailbox, Provider, Server, _idp_command, free_port


def children_of(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append((int(entry.name), cmdline))
    return found


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

    def start(workers: int = 2, database_url: str | None = None, **env_overrides) -> tuple[Provider, Server]:
        port = free_port()
        issuer = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "PORTAL_"))}
        env.update(
            PYTHONUNBUFFERED="1",
            IDP_ENV="production",
            IDP_ISSUER=issuer,
            IDP_INSTANCE_PATH=str(tmp_path / "instance"),
            IDP_SECRET_KEY=secrets.token_hex(32),
            IDP_MAIL_SERVER="127.0.0.1",
            IDP_MAIL_PORT=str(sink.port),
            IDP_DATABASE_URL=database_url or f"sqlite:///{tmp_path / 'idp.db'}",
        )
        env.update({f"IDP_{k}": str(v) for k, v in env_overrides.items()})
        (tmp_path / "instance").mkdir(exist_ok=True)
        upgrade = subprocess.run([*_idp_command(), "db", "upgrade"], env=env, cwd=REPO, capture_output=True,
                                 text=True, timeout=120)
        assert upgrade.returncode == 0, f"idp db upgrade failed:\n{upgrade.stderr}"
        server = Server("idp serve", [*_idp_command(), "serve", "--host", "127.0.0.1", "--port", str(port),
                                      "--workers", str(workers)], env, tmp_path / f"idp-{port}.log")
        servers.append(server)
        server.wait_until_up(issuer + "/healthz")
        return Provider(url=issuer, env=env, log=server.log), server

    yield start
    for server in servers:
        server.stop()
