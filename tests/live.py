"""A real `idp serve` for the tests that need one (end-to-end, faults, two instances behind a
load balancer): its environment, its start and stop as a process group, the `idp` commands
beside it, a fresh PostgreSQL database for it, and a person's browser as plain HTTP requests."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests

from .forms import parse
from .isolation import worker_database
from .smtp_sink import free_port  # noqa: F401 - the live tests take it from here

REPO = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT = 40  # seconds for a server to answer
REDIRECT_URI = "http://app.test/callback"


def idp_command() -> list[str]:
    script = Path(sys.executable).with_name("idp")
    return [str(script)] if script.exists() else [sys.executable, "-m", "idp.cli"]


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Server:
    """A child process in its own process group, stopped with the whole group."""

    def __init__(self, name: str, args: list[str], env: dict, log: Path, cwd: Path = REPO):
        self.name = name
        self.log = log
        self._log_file = open(log, "wb")
        self.process = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_until_up(self, url: str, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                pytest.fail(f"{self.name} exited with {self.process.returncode}:\n{log_tail(self.log)}")
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"{self.name} did not answer {url} within {timeout} s:\n{log_tail(self.log)}")

    def stop(self) -> None:
        if self.process.poll() is None:
            pgid = self.process.pid  # start_new_session: the group id is the child's pid
            try:
                os.killpg(pgid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(pgid, signal.SIGKILL)
                self.process.wait(timeout=5)
            except ProcessLookupError:
                pass
        # Workers and the delivery and prune loops share the group; make sure none is left.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._log_file.close()


def provider_env(issuer: str, *, database_url: str, instance: Path, mail_port: int | None = None,
                 **settings) -> dict:
    """The environment of a production-style provider at ``issuer``: only the ``IDP_*`` settings
    given here (none leaks in from the test run), a random secret, ``settings`` as ``IDP_<name>``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "PORTAL_", "PROMETHEUS_"))}
    env.update(
        PYTHONUNBUFFERED="1",
        IDP_ENV="production",
        IDP_ISSUER=issuer,
        IDP_INSTANCE_PATH=str(instance),
        IDP_SECRET_KEY=secrets.token_hex(32),
        IDP_DATABASE_URL=database_url,
    )
    if mail_port is not None:
        env.update(IDP_MAIL_SERVER="127.0.0.1", IDP_MAIL_PORT=str(mail_port))
    env.update({f"IDP_{name}": str(value) for name, value in settings.items()})
    instance.mkdir(parents=True, exist_ok=True)
    return env


def run_idp(env: dict, *args: str, timeout: float = 120) -> str:
    """An ``idp`` command with these settings; its stdout (a failure fails the test)."""
    result = subprocess.run([*idp_command(), *args], env=env, cwd=REPO, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"idp {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
    return result.stdout


def serve(env: dict, port: int, log: Path, *, workers: int = 2, server_kind: str = "granian",
          ready_path: str = "/healthz", options: tuple[str, ...] = ()) -> Server:
    """`idp serve` on 127.0.0.1:``port`` (with ``options`` besides), answering ``ready_path``
    before this returns."""
    server = Server("idp serve", [*idp_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers",
                                  str(workers), "--server", server_kind, *options], env, log)
    server.wait_until_up(f"http://127.0.0.1:{port}{ready_path}")
    return server


def fresh_postgres(url: str, suffix: str) -> str:
    """This worker's database ``<db><suffix>_<worker>`` on the server of ``url`` (created when
    missing) with an empty public schema; its SQLAlchemy URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    target = make_url(worker_database(url, suffix=suffix))
    with psycopg.connect(target.set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return target.render_as_string(hide_password=False)


@dataclass
class Provider:
    """A running provider: where it answers, its settings (for `idp` commands) and its log."""

    url: str
    env: dict
    log: Path

    def cli(self, *args: str) -> str:
        """Run an ``idp`` command with the provider's settings; returns stdout."""
        return run_idp(self.env, *args, timeout=60)

    def cli_json(self, *args: str):
        """Run an ``idp`` command that prints JSON (pass ``--json``); returns the data."""
        return json.loads(self.cli(*args))

    def log_size(self) -> int:
        return self.log.stat().st_size

    def assert_no_unhandled_error(self, since: int = 0) -> None:
        """No line of Flask's for an unhandled error (a 500) in the log after byte ``since``;
        else the failure shows it with the traceback that follows it."""
        with open(self.log, "rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
        at = text.find("Exception on /")
        assert at < 0, text[text.rfind("\n", 0, at) + 1:][:6000]

    def wait_for_log(self, *texts: str, since: int = 0, timeout: float = 10) -> str:
        """The first line of the server's log, written after byte ``since``, that contains
        every one of ``texts``."""
        deadline = time.monotonic() + timeout
        while True:
            with open(self.log, "rb") as log:
                log.seek(since)
                for line in log.read().decode(errors="replace").splitlines():
                    if all(text in line for text in texts):
                        return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no line with {texts} in {self.log} within {timeout} s:\n{log_tail(self.log)}")
            time.sleep(0.1)


class Visitor:
    """A person's browser as plain HTTP requests: follows the provider's redirects, stops at the
    app's; every request carries an ``X-Request-Id`` of its own, kept in ``sent_ids``."""

    def __init__(self, base: str, language: str = "en"):
        self.base = base
        self.http = requests.Session()
        self.http.headers["Accept-Language"] = language
        self.sent_ids: list[str] = []
        self.page = self.url = self.response = self.status = self.location = None
        self.verifier = None

    def go(self, method: str, url: str, data=None):
        url = urljoin(self.base, url)
        while True:
            request_id = uuid.uuid4().hex
            self.sent_ids.append(request_id)
            response = self.http.request(method, url, data=data, allow_redirects=False, timeout=30,
                                         headers={"X-Request-Id": request_id})
            location = response.headers.get("Location")
            if response.status_code in (302, 303) and location and urljoin(url, location).startswith(self.base):
                url, method, data = urljoin(url, location), "GET", None
                continue
            self.url, self.response, self.status, self.location = url, response, response.status_code, location
            self.page = parse(response.text) if response.headers.get("Content-Type", "").startswith("text/html") else None
            return response

    def authorize(self, client_id: str, scope: str = "openid email"):
        self.verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(self.verifier.encode()).digest()).rstrip(b"=").decode()
        query = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI, "scope": scope,
                 "state": secrets.token_hex(4), "nonce": secrets.token_hex(4), "code_challenge": challenge,
                 "code_challenge_method": "S256"}
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

    def code(self) -> str:
        """The authorization code of the redirect back to the app."""
        assert self.location and self.location.startswith(REDIRECT_URI), (self.status, self.location)
        return parse_qs(urlsplit(self.location).query)["code"][0]

    def exchange(self, client: dict) -> requests.Response:
        """The app's side: the code for tokens at the token endpoint."""
        return requests.post(self.base + "/token", auth=(client["client_id"], client["client_secret"]), timeout=30,
                             data={"grant_type": "authorization_code", "code": self.code(),
                                   "redirect_uri": REDIRECT_URI, "code_verifier": self.verifier})


def first_login(provider: Provider, base: str, mailbox, client: dict,
                scope: str = "openid email") -> tuple[Visitor, "pyotp.TOTP", list[str]]:
    """A new account's first sign-in at ``base`` (the provider, or a balancer in front of it):
    the account made with ``provider``'s CLI, its address confirmed with the code ``mailbox``
    receives, its authenticator enrolled. Returns the browser at the redirect back to the app,
    its authenticator, and the request ids of the flow's steps."""
    import pyotp

    email, password = f"anna-{secrets.token_hex(3)}@example.com", "correct horse battery staple"
    provider.cli("users", "create", "--email", email, "--password", password, "--json")
    person = Visitor(base)
    person.authorize(client["client_id"], scope=scope)
    flow_start = len(person.sent_ids)
    person.submit(email=email)
    assert person.state == "password", person.status
    person.submit(password=password)
    assert person.state == "verify_email", person.status
    person.submit(email=email)
    person.submit(email_code=mailbox.code_for(email, timeout=20))
    assert person.state == "totp_enroll", person.status
    totp = pyotp.TOTP(person.page.ids["totp-secret"].replace(" ", "").strip())
    person.submit(totp_code=totp.now())
    person.email, person.password = email, password
    return person, totp, person.sent_ids[flow_start:]
