"""A single-page app on its own loopback origin signs in with the unmodified oidc-client-ts
(its browser build, served by the test): code + PKCE through the real pages (e-mail,
password, mailed code, authenticator), userinfo, renewal with the refresh token and
RP-initiated logout, in Chromium; once with bearer tokens and once with DPoP. A page of an
unregistered origin is refused by the browser, as CORS makes it."""

from __future__ import annotations

import json
import mimetypes
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .conftest import free_port
from .helpers import at_provider, field as step_field, first_login_steps

VARIANTS = ("plain", "dpop")


@dataclass
class Site:
    """The app's own web server: the page, its script, the library, and a config per variant."""

    root: Path
    port: int
    configs: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def files(self) -> dict[str, Path]:
        spa = self.root / "spa"
        found = {"/app.js": spa / "app.js",
                 "/vendor/oidc-client-ts.min.js": self.root / "node_modules/oidc-client-ts/dist/browser/oidc-client-ts.min.js"}
        for variant in VARIANTS:
            found[f"/{variant}/"] = spa / "index.html"
        return found


def _handler(site: Site):
    files = site.files()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the name http.server calls
            path = self.path.split("?", 1)[0]
            variant = path.strip("/").split("/")[0]
            if path == f"/{variant}/config.json" and variant in site.configs:
                body, kind = json.dumps(site.configs[variant]).encode(), "application/json"
            elif path in files:
                body = files[path].read_bytes()
                kind = mimetypes.guess_type(files[path].name)[0] or "text/html"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture(scope="module")
def site(js_apps, provider):
    site = Site(root=js_apps, port=free_port())
    for variant in VARIANTS:
        home = f"{site.url}/{variant}/"
        client = provider.cli_json("clients", "create", "--name", f"Invoicing ({variant})", "--public", "--first-party",
                                   "--redirect-uri", home, "--post-logout-redirect-uri", home + "?signed-out", "--json")
        site.configs[variant] = {"authority": provider.url, "client_id": client["client_id"], "dpop": variant == "dpop"}
    server = ThreadingHTTPServer(("127.0.0.1", site.port), _handler(site))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield site
    server.shutdown()
    server.server_close()


def _stored_user(page, site: Site, variant: str) -> dict:
    key = f"oidc.user:{site.configs[variant]['authority']}:{site.configs[variant]['client_id']}"
    return json.loads(page.evaluate("key => localStorage.getItem(key)", key))


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_single_page_app_signs_in_reads_userinfo_renews_and_signs_out(variant, site, provider, mailbox, make_person,
                                                                         new_context):
    person = make_person("Iris Bakker")
    page = new_context().new_page()
    home = f"{site.url}/{variant}/"
    page.goto(home)
    status = page.locator("#status")
    expect(status).to_have_text("signed-out")

    page.locator("#login").click()
    page.wait_for_url(at_provider(provider.url))
    first_login_steps(page, mailbox, person)
    page.wait_for_url(home)
    expect(status).to_have_text("signed-in")
    expect(page.locator("#error")).to_have_text("")
    expect(page.locator("#claims")).to_contain_text(person.sub)
    expect(page.locator("#token-type")).to_have_text("DPoP" if variant == "dpop" else "Bearer")

    page.locator("#userinfo").click()
    expect(page.locator("#userinfo-result")).to_contain_text(person.email)
    first = _stored_user(page, site, variant)

    page.locator("#renew").click()
    expect(page.locator("#renewals")).to_have_text("1")
    expect(status).to_have_text("renewed")
    renewed = _stored_user(page, site, variant)
    assert renewed["refresh_token"] != first["refresh_token"] and renewed["access_token"] != first["access_token"]
    page.locator("#userinfo-result").evaluate("node => node.textContent = ''")
    page.locator("#userinfo").click()
    expect(page.locator("#userinfo-result")).to_contain_text(person.sub)

    if variant == "dpop":
        # The token is bound: sent as a bearer token, the provider refuses it (and says why).
        answer = page.evaluate("""async ([url, token]) => {
            const r = await fetch(url, {headers: {Authorization: "Bearer " + token}});
            return [r.status, r.headers.get("WWW-Authenticate")];
        }""", [provider.url + "/userinfo", renewed["access_token"]])
        assert answer[0] == 401 and answer[1].startswith("DPoP "), answer

    page.locator("#logout").click()
    # The app sends the ID token of this very session: the provider signs out without a question.
    page.wait_for_url(home + "?signed-out*")
    expect(status).to_have_text("signed-out")
    expect(page.locator("#error")).to_have_text("")
    # The provider's session is over: signing in again starts at the e-mail step.
    page.locator("#login").click()
    page.wait_for_url(at_provider(provider.url))
    expect(step_field(page, "email")).to_be_visible()


def test_a_page_of_an_unregistered_origin_is_refused_by_the_browser(site, provider, new_context):
    """The same app served as http://localhost:port (another origin than the registered
    http://127.0.0.1:port): the browser withholds every answer, preflighted or not."""
    page = new_context().new_page()
    page.goto(f"http://localhost:{site.port}/plain/")
    expect(page.locator("#status")).to_have_text("signed-out")
    outcomes = page.evaluate("""async ([issuer, clientId]) => {
        const body = new URLSearchParams({grant_type: "refresh_token", refresh_token: "x", client_id: clientId});
        const attempts = [
            fetch(issuer + "/token", {method: "POST", body}),
            fetch(issuer + "/token", {method: "POST", body, headers: {DPoP: "x.y.z"}}),
            fetch(issuer + "/userinfo", {headers: {Authorization: "Bearer x"}}),
        ];
        return Promise.all(attempts.map(p => p.then(r => "answered " + r.status, e => "blocked: " + e.name)));
    }""", [provider.url, site.configs["plain"]["client_id"]])
    assert outcomes == ["blocked: TypeError"] * 3, outcomes
    # From its registered origin the same request is answered (and the app reads the error).
    page.goto(f"{site.url}/plain/")
    expect(page.locator("#status")).to_have_text("signed-out")
    outcome = page.evaluate("""async ([issuer, clientId]) => {
        const body = new URLSearchParams({grant_type: "refresh_token", refresh_token: "x", client_id: clientId});
        const r = await fetch(issuer + "/token", {method: "POST", body, headers: {DPoP: "x.y.z"}});
        return [r.status, (await r.json()).error];
    }""", [provider.url, site.configs["plain"]["client_id"]])
    assert outcome == [400, "invalid_dpop_proof"], outcome
