"""Fault tests: a real `idp serve` (its own database, SMTP sink and, where needed, Redis or
PostgreSQL that the test stops and starts again), on loopback, each bounded in time."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
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

    def start(workers: int = 2, database_url: str | None = None, server_kind: str = "granian",
              **env_overrides) -> tuple[Provider, Server]:
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
                                      "--workers", str(workers), "--server", server_kind], env, tmp_path / f"idp-{port}.log")
        servers.append(server)
        server.wait_until_up(issuer + "/healthz")
        return Provider(url=issuer, env=env, log=server.log), server

    yield start
    for server in servers:
        server.stop()


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


REDIRECT_URI = "http://app.test/callback"


class Visitor:
    """A person's browser as requests: follows the provider's redirects, stops at the app's."""

    def __init__(self, base: str):
        import requests

        self.base = base
        self.http = requests.Session()
        self.http.headers["Accept-Language"] = "en"
        self.page = None
        self.url = None
        self.response = None

    def go(self, method: str, url: str, data=None):
        from urllib.parse import urljoin

        from tests.forms import parse

        url = urljoin(self.base, url)
        while True:
            response = self.http.request(method, url, data=data, allow_redirects=False, timeout=15)
            location = response.headers.get("Location")
            if response.status_code in (302, 303) and location and urljoin(url, location).startswith(self.base):
                url, method, data = urljoin(url, location), "GET", None
                continue
            self.url, self.response = url, response
            self.page = parse(response.text) if response.headers.get("Content-Type", "").startswith("text/html") else None
            return response

    def authorize(self, client_id: str):
        import base64
        import hashlib
        from urllib.parse import urlencode

        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI,
                 "scope": "openid email", "state": secrets.token_hex(4), "nonce": secrets.token_hex(4),
                 "code_challenge": challenge, "code_challenge_method": "S256"}
        return self.go("GET", "/authorize?" + urlencode(query))

    @property
    def state(self):
        form = self.page.forms.get("step") if self.page else None
        return form["fields"].get("state") if form else None

    @property
    def alert(self) -> str:
        return " ".join(t.strip() for t in self.page.alert_texts) if self.page else ""

    def submit(self, **fields):
        form = self.page.forms["step"]
        return self.go("POST", form["action"] or self.url, {**form["fields"], **fields})


def client_credentials(provider: Provider, client: dict):
    import requests

    return requests.post(provider.url + "/token", data={"grant_type": "client_credentials"},
                         auth=(client["client_id"], client["client_secret"]), timeout=15)
