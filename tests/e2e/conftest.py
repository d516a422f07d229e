"""End-to-end fixtures: a real SMTP sink, the provider under `idp serve` (tests/live.py), the
demo portal and a headless Chromium driven by Playwright.

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
import json
import os
import secrets
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..isolation import redis_key_prefix
from ..live import REPO, Provider, Server, fresh_postgres, free_port, provider_env, run_idp, serve
from ..smtp_sink import Mailbox
from .helpers import Person, first_login, watch_console

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
DEFAULT_TIMEOUT_MS = 15_000  # Playwright actions, navigations and expect()


@pytest.fixture(scope="session")
def mailbox():
    box = Mailbox()
    box.start_relay(free_port())
    yield box
    box.stop_relay()


@contextlib.contextmanager
def running_provider(mailbox, tmp: Path, *, host: str = "127.0.0.1", database_suffix: str = "_e2e"):
    """``idp serve`` with a migrated database of its own, its issuer ``http://<host>:<port>``
    (WebAuthn takes a host name as relying-party id, never an IP address: passkey tests
    need ``localhost``), mail to ``mailbox``; stopped when the block ends."""
    port = free_port()
    issuer = f"http://{host}:{port}"
    database_url = os.environ.get("IDP_TEST_DATABASE_URL")
    database_url = fresh_postgres(database_url, database_suffix) if database_url else f"sqlite:///{tmp / 'e2e.db'}"
    env = provider_env(issuer, database_url=database_url, instance=tmp / "instance", mail_port=mailbox.port,
                       RATELIMIT_ENABLED="false", MAIL_POLL_INTERVAL="0.1")
    if os.environ.get("IDP_TEST_REDIS_URL"):
        env["IDP_REDIS_URL"] = os.environ["IDP_TEST_REDIS_URL"]
        env["IDP_RATELIMIT_STORAGE_OPTIONS"] = json.dumps({"key_prefix": redis_key_prefix() + database_suffix.upper()})
    run_idp(env, "db", "upgrade")
    server = serve(env, port, tmp / "idp.log", ready_path="/.well-known/openid-configuration")
    try:
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
            "clients", "create", "--name", "Portal", "--localized-name", "nl=Boekhoudportaal", "--first-party",
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


# -- relying-party libraries in JavaScript ------------------------------------------------

JS_APPS = REPO / "tests" / "e2e" / "apps"


@pytest.fixture(scope="session")
def js_apps() -> Path:
    """tests/e2e/apps with its npm packages installed (``npm ci``, as .ci/run does first; run
    here too when they are missing or older than the lock file). Without Node.js or npm the
    tests that need them skip, saying so."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("the tests of browser and native apps need Node.js (20 or later) and npm on PATH "
                    "to install oidc-client-ts and openid-client: install them (apt-get install -y nodejs npm)")
    installed = JS_APPS / "node_modules" / ".package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < (JS_APPS / "package-lock.json").stat().st_mtime:
        result = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS_APPS, capture_output=True, text=True,
                                timeout=300)
        if result.returncode != 0:
            pytest.fail(f"npm ci in {JS_APPS} failed ({result.returncode}):\n{result.stderr[-2000:]}", pytrace=False)
    return JS_APPS


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
