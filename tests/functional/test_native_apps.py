"""Native apps (RFC 8252): a loopback redirect URI registered without a port takes any port,
private-use schemes are for public clients, claimed https URIs match exactly."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from idp import clock
from tests.helpers import T0, pkce_pair, token_request

LOOPBACK = "http://127.0.0.1/callback"
LOOPBACK_V6 = "http://[::1]/callback"
APP_SCHEME = "com.example.invoicing:/callback"


def _register(cli, *args) -> dict:
    result = cli.invoke(args=["clients", "create", "--name", "Desktop app", "--first-party", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def native(cli):
    return _register(cli, "--public", "--redirect-uri", LOOPBACK, "--redirect-uri", LOOPBACK_V6,
                     "--redirect-uri", "http://localhost/callback", "--redirect-uri", "http://127.0.0.1:8400/fixed",
                     "--redirect-uri", APP_SCHEME, "--post-logout-redirect-uri", "http://127.0.0.1/bye")


@pytest.fixture
def signed_in(browser, person, native):
    """Signed in through the native app's own first sign-in."""
    clock.freeze(T0)
    _authorize(browser, native, "http://127.0.0.1:50123/callback")
    browser.sign_in(person["email"], person["password"], first_time=True)
    return browser


def _authorize(browser, client, redirect_uri, **extra):
    verifier, challenge = pkce_pair()
    browser.verifier = verifier
    query = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": redirect_uri,
             "scope": "openid offline_access", "state": "s1", "code_challenge": challenge,
             "code_challenge_method": "S256", **extra}
    return browser.get("/authorize?" + urlencode(query))


def _back(browser, redirect_uri) -> dict:
    assert browser.status == 302 and browser.location.startswith(redirect_uri + "?"), (browser.status, browser.location)
    return {k: v[0] for k, v in parse_qs(urlsplit(browser.location).query).items()}


@pytest.mark.parametrize("redirect_uri", ["http://127.0.0.1:50123/callback", "http://127.0.0.1:8/callback",
                                          "http://127.0.0.1/callback", "http://[::1]:61000/callback"])
def test_a_portless_loopback_uri_takes_any_port(signed_in, native, redirect_uri):
    _authorize(signed_in, native, redirect_uri)
    code = _back(signed_in, redirect_uri)["code"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": signed_in.verifier}
    assert token_request(signed_in.http, native, data, "none").status_code == 200


@pytest.mark.parametrize("redirect_uri", [
    "http://127.0.0.1:50123/other",         # another path
    "http://127.0.0.1:50123/callback?x=1",  # another query
    "https://127.0.0.1:50123/callback",     # another scheme
    "http://127.0.0.2:50123/callback",      # another address
    "http://localhost:50123/callback",      # localhost is no loopback literal: exact only
    "http://127.0.0.1:8401/fixed",          # registered with a port: that port only
    "http://user@127.0.0.1:50123/callback",
    "http://127.0.0.1:99999/callback",
])
def test_other_uris_are_refused(signed_in, native, redirect_uri):
    _authorize(signed_in, native, redirect_uri)
    assert signed_in.status == 400 and signed_in.location is None


def test_the_code_is_bound_to_the_port_it_was_sent_to(signed_in, native):
    _authorize(signed_in, native, "http://127.0.0.1:50123/callback")
    code = _back(signed_in, "http://127.0.0.1:50123/callback")["code"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:50124/callback",
            "code_verifier": signed_in.verifier}
    r = token_request(signed_in.http, native, data, "none")
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"


def test_a_private_use_scheme_receives_the_code(signed_in, native):
    _authorize(signed_in, native, APP_SCHEME)
    back = _back(signed_in, APP_SCHEME)
    assert back["state"] == "s1" and back["code"]


def test_the_step_pages_let_forms_end_at_the_apps_scheme(browser, native):
    _authorize(browser, native, APP_SCHEME)
    assert "form-action 'self' com.example.invoicing:;" in browser.response.headers["Content-Security-Policy"]


def test_logout_returns_to_a_loopback_uri_on_any_port(signed_in, native):
    _authorize(signed_in, native, LOOPBACK)
    data = {"grant_type": "authorization_code", "code": _back(signed_in, LOOPBACK)["code"], "redirect_uri": LOOPBACK,
            "code_verifier": signed_in.verifier}
    id_token = token_request(signed_in.http, native, data, "none").get_json()["id_token"]
    signed_in.get("/logout?" + urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": "http://127.0.0.1:50200/bye",
                                          "state": "b"}))
    # An ID token of this very session: signed out without a question.
    assert signed_in.status == 302 and signed_in.location == "http://127.0.0.1:50200/bye?state=b"


@pytest.mark.parametrize("args,message", [
    (["--redirect-uri", APP_SCHEME], "public"),                                  # a confidential client
    (["--public", "--redirect-uri", "myapp:/callback"], "reverse domain"),        # no dot in the scheme
    (["--public", "--redirect-uri", "javascript:alert(1)"], "reverse domain"),
    (["--public", "--redirect-uri", "com.example.app:/cb#frag"], "fragment"),
    (["--public", "--redirect-uri", "https://app.example/cb#frag"], "fragment"),
    (["--public", "--redirect-uri", "/relative"], "absolute"),
    (["--public", "--redirect-uri", LOOPBACK, "--post-logout-redirect-uri", "data:text/html,x"], "reverse domain"),
])
def test_registration_refuses_what_no_app_may_use(cli, args, message):
    result = cli.invoke(args=["clients", "create", "--name", "App", "--json", *args])
    assert result.exit_code != 0 and message in result.output, result.output
