"""A native app in Node signs in with the unmodified openid-client (v6), with PAR and DPoP:
it listens on a loopback port it picks (registered without a port, RFC 8252), the person
signs in through the real pages in Chromium, and the app exchanges the code, reads
userinfo, renews and signs out, every request proven with its DPoP key."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading

import pytest
from playwright.sync_api import expect

from .conftest import REPO
from .helpers import at_provider, first_login_steps

TIMEOUT = 60


class NativeApp:
    """The Node process, read line by line (one JSON event each)."""

    def __init__(self, js_apps, issuer: str, client_id: str):
        self.process = subprocess.Popen([shutil.which("node"), str(js_apps / "native" / "sign_in.mjs"), issuer, client_id],
                                        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.events: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.events.put(json.loads(line))
        self.events.put({"event": "exit"})

    def next(self, expected: str) -> dict:
        try:
            event = self.events.get(timeout=TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"the native app said nothing within {TIMEOUT} s, waiting for {expected!r}") from None
        if event["event"] != expected:
            stderr = self.process.stderr.read() if event["event"] in ("exit", "error") else ""
            raise AssertionError(f"the native app said {event!r} instead of {expected!r}\n{stderr[-2000:]}")
        return event

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def native_app(js_apps, provider):
    client = provider.cli_json("clients", "create", "--name", "Invoicing (desktop)", "--public", "--first-party",
                               "--require-par", "--redirect-uri", "http://127.0.0.1/callback",
                               "--post-logout-redirect-uri", "http://127.0.0.1/signed-out", "--json")
    app = NativeApp(js_apps, provider.url, client["client_id"])
    yield app
    app.stop()


def test_a_native_app_signs_in_with_par_and_dpop(native_app, provider, mailbox, make_person, new_context):
    person = make_person("Noor Visser")
    page = new_context().new_page()

    authorize = native_app.next("authorize")
    assert authorize["url"].startswith(provider.url + "/authorize?")
    assert "request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3A" in authorize["url"]
    assert "scope" not in authorize["url"] and "code_challenge" not in authorize["url"]  # pushed, not in the URL
    page.goto(authorize["url"])
    page.wait_for_url(at_provider(provider.url))
    first_login_steps(page, mailbox, person)
    expect(page.locator("#native-app")).to_contain_text("/callback")

    logout = native_app.next("logout")
    page.goto(logout["url"])  # with the ID token of this very session: no question at the provider
    expect(page.locator("#native-app")).to_contain_text("/signed-out")

    done = native_app.next("done")
    assert done["sub"] == person.sub
    assert done["token_type"].lower() == "dpop" and done["renewed_token_type"].lower() == "dpop"
    assert done["refresh_rotated"] is True
    assert done["userinfo"]["email"] == person.email and done["userinfo_after_renewal"]["sub"] == person.sub
    assert done["refresh_without_key"] == "invalid_grant"
    assert done["redirect_port"] not in (80, 0)  # any port, the one the app picked
    assert done["logout_state"] == "bye"
