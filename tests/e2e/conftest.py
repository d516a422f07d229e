"""End-to-end fixtures: a real SMTP sink, the provider under gunicorn, the demo portal
and a headless Chromium driven by Playwright.

The servers run once per test session. Every test gets fresh browser contexts and
fresh accounts, so tests do not depend on each other's state.

Settings (environment):
- IDP_TEST_DATABASE_URL: run the provider on PostgreSQL. The e2e run uses its own
  database ``<db>_e2e`` (``<db>_e2e_<worker>`` under xdist) on that server, created when
  missing and its schema wiped at start, so it never disturbs the functional tests nor
  another run that was given another database name.
- IDP_TEST_REDIS_URL: give the provider this Redis (with the worker's key prefix).

Under ``pytest -n`` each worker that runs e2e tests starts its own servers, mail sink and
browser, on its own database. (xdist's ``--dist loadgroup`` would keep them on one worker,
but it does not group under pytest 9.2, whose node ids it can no longer rewrite.)
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from ..isolation import redis_key_prefix, worker_database
from .helpers import Person, first_login, watch_console

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
STARTUP_TIMEOUT = 40  # seconds for a server to answer
DEFAULT_TIMEOUT_MS = 15_000  # Playwright actions, navigations and expect()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- SMTP sink ------------------------------------------------------------------------


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
        match = re.search(r"(?<!\d)(\d{6})(?!\d)", mail.text)
        assert match, f"no 6-digit code in the mail {mail.subject!r} to {to}:\n{mail.text}"
        return match.group(1)


@pytest.fixture(scope="session")
def mailbox():
    box = Mailbox()
    box.start_relay(free_port())
    yield box
    box.stop_relay()


# -- processes ------------------------------------------------------------------------


def _idp_command() -> list[str]:
    script = Path(sys.executable).with_name("idp")
    return [str(script)] if script.exists() else [sys.executable, "-m", "idp.cli"]


def _log_tail(path: Path, lines: int = 40) -> str:
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
                pytest.fail(f"{self.name} exited with {self.process.returncode}:\n{_log_tail(self.log)}")
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"{self.name} did not answer {url} within {timeout} s:\n{_log_tail(self.log)}")

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
        # gunicorn workers and the mail loop share the group; make sure none is left.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._log_file.close()


def _prepare_postgres(url: str, suffix: str = "_e2e") -> str:
    """Point ``url`` at this run's e2e database on the same server (created when missing)
    and give it an empty public schema. Returns the SQLAlchemy URL to use."""
    import psycopg
    from sqlalchemy.engine import make_url

    target = make_url(worker_database(url, suffix=suffix))
    with psycopg.connect(target.set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return target.render_as_string(hide_password=False)


@dataclass
class Provider:
    url: str
    env: dict
    log: Path

    def cli(self, *args: str) -> str:
        """Run an ``idp`` command with the provider's settings; returns stdout."""
        result = subprocess.run(
            [*_idp_command(), *args], env=self.env, cwd=REPO, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"idp {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
        return result.stdout

    def cli_json(self, *args: str):
        """Run an ``idp`` command that prints JSON (pass ``--json``); returns the data."""
        return json.loads(self.cli(*args))

    def log_size(self) -> int:
        return self.log.stat().st_size

    def wait_for_log(self, *texts: str, since: int = 0, timeout: float = 10) -> str:
        """The first line of the server's log, written after byte ``since``, that
        contains every one of ``texts``."""
        deadline = time.monotonic() + timeout
        while True:
            with open(self.log, "rb") as log:
                log.seek(since)
                for line in log.read().decode(errors="replace").splitlines():
                    if all(text in line for text in texts):
                        return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no line with {texts} in {self.log} within {timeout} s:\n{_log_tail(self.log)}")
            time.sleep(0.1)


@contextlib.contextmanager
def running_provider(mailbox, tmp: Path, *, host: str = "127.0.0.1", database_suffix: str = "_e2e"):
    """``idp serve`` with a migrated database of its own, its issuer ``http://<host>:<port>``
    (WebAuthn takes a host name as relying-party id, never an IP address: passkey tests
    need ``localhost``), mail to ``mailbox``; stopped when the block ends."""
    port = free_port()
    issuer = f"http://{host}:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "PORTAL_"))}
    database_url = os.environ.get("IDP_TEST_DATABASE_URL")
    database_url = _prepare_postgres(database_url, database_suffix) if database_url else f"sqlite:///{tmp / 'e2e.db'}"
    env.update(
        PYTHONUNBUFFERED="1",
        IDP_ENV="production",
        IDP_ISSUER=issuer,
        IDP_INSTANCE_PATH=str(tmp / "instance"),
        IDP_SECRET_KEY=secrets.token_hex(32),
        IDP_MAIL_SERVER="127.0.0.1",
        IDP_MAIL_PORT=str(mailbox.port),
        IDP_RATELIMIT_ENABLED="false",
        IDP_DATABASE_URL=database_url,
    )
    if os.environ.get("IDP_TEST_REDIS_URL"):
        env["IDP_REDIS_URL"] = os.environ["IDP_TEST_REDIS_URL"]
        env["IDP_RATELIMIT_STORAGE_OPTIONS"] = json.dumps({"key_prefix": redis_key_prefix() + database_suffix.upper()})
    (tmp / "instance").mkdir()
    upgrade = subprocess.run([*_idp_command(), "db", "upgrade"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert upgrade.returncode == 0, f"idp db upgrade failed:\n{upgrade.stderr}"
    server = Server(
        "idp serve",
        [*_idp_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env,
        tmp / "idp.log",
    )
    try:
        server.wait_until_up(issuer + "/.well-known/openid-configuration")
        yield Provider(url=issuer, env=env, log=server.log)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def provider(mailbox, tmp_path_factory):
    with running_provider(mailbox, tmp_path_factory.mktemp("idp")) as running:
        yield running


@dataclass
class Portal:
    url: str
    client_id: str
    log: Path


@pytest.fixture(scope="session")
def portal(provider, tmp_path_factory):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    client = json.loads(
        provider.cli(
            "clients", "create", "--name", "Portal", "--first-party",
            "--redirect-uri", f"{url}/callback",
            "--post-logout-redirect-uri", f"{url}/",
            "--grant-type", "authorization_code", "--grant-type", "refresh_token",
            "--json",
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "PORTAL_"))}
    env.update(
        PYTHONUNBUFFERED="1",
        PORTAL_ISSUER=provider.url,
        PORTAL_CLIENT_ID=client["client_id"],
        PORTAL_CLIENT_SECRET=client["client_secret"],
        PORTAL_URL=url,
        PORTAL_PORT=str(port),
    )
    log = tmp_path_factory.mktemp("portal") / "portal.log"
    server = Server("demo portal", [sys.executable, "-m", "clients.portal"], env, log)
    try:
        server.wait_until_up(url + "/")
        yield Portal(url=url, client_id=client["client_id"], log=log)
    finally:
        server.stop()


# -- accounts ---------------------------------------------------------------------------


@pytest.fixture
def make_person(provider):
    """Create an account (it still has to verify its e-mail and enrol TOTP)."""

    def make(name: str = "Anna de Vries", password: str | None = None) -> Person:
        address = f"{name.split()[0].lower()}-{uuid.uuid4().hex[:10]}@example.com"
        password = password or "correct horse battery " + secrets.token_hex(4)
        out = provider.cli("users", "create", "--email", address, "--password", password, "--name", name, "--json")
        return Person(email=address, password=password, name=name, sub=json.loads(out)["sub"])

    return make


# -- the browser ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"the end-to-end tests need Debian's Chromium at {CHROMIUM}; install it with "
            "`apt-get install -y chromium` (the tests never download a browser)",
            pytrace=False,
        )
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_context(browser):
    """A factory for fresh browser contexts (no cookies: a new person at a new browser).
    Every context is closed at the end of the test."""
    contexts = []

    def make(**options):
        options.setdefault("locale", "en-US")
        context = browser.new_context(**options)
        watch_console(context)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        context.set_default_navigation_timeout(DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context):
    return new_context().new_page()


@pytest.fixture
def docs_dir(tmp_path_factory) -> Path:
    """Where screenshots go: the README's docs/ with IDP_UPDATE_SCREENSHOTS=1, else a temporary folder."""
    if os.environ.get("IDP_UPDATE_SCREENSHOTS"):
        path = REPO / "docs"
        path.mkdir(exist_ok=True)
        return path
    return tmp_path_factory.mktemp("screenshots")



@pytest.fixture
def enrolled_person(make_person, new_context, provider, portal, mailbox):
    """A person who has completed the first sign-in (e-mail verified, authenticator
    enrolled). Returns the person and the page, still signed in at the portal."""

    def make(name: str = "Bram Jansen", **context_options):
        person = make_person(name)
        page = new_context(**context_options).new_page()
        first_login(page, portal.url, provider.url, mailbox, person)
        return person, page

    return make
