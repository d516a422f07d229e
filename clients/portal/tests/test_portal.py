"""The demo portal against a fake OpenID provider.

The fake provider is a small Flask app. Every HTTP call the portal makes through
Authlib (discovery, JWKS, token, userinfo) is routed to it in-process by a
``requests`` transport adapter, so the real wire format is exercised (client
authentication, the PKCE verifier, grant types, bearer tokens) without sockets.
The browser's hop to the provider's authorization endpoint is played by
``FakeProvider.authorize()``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from clients.testing import route_requests
from authlib.oidc.core.util import create_half_hash
from flask import Flask, jsonify, request
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from clients.portal import ConfigError, create_app
from clients.portal.app import load_settings

ISSUER = "https://op.test"
PORTAL = "http://localhost"  # the Flask test client's own origin
CLIENT_ID = "portal-client"
CLIENT_SECRET = "portal-secret-value"
REPO_ROOT = Path(__file__).resolve().parents[3]

ANN = {
    "sub": "5f0c1a2b-opaque",
    "name": "Ann de Vries",
    "email": "ann@example.com",
    "email_verified": True,
    "administrations": [
        {"id": "adm-1", "name": "De Vries Bakkerij", "role": "owner"},
        {"id": "adm-2", "name": "Hofman Holding", "role": "accountant"},
    ],
}


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class FakeProvider:
    """Just enough of an OpenID provider to sign the portal in, refresh and sign out."""

    def __init__(self, key: RSAKey):
        self.key = key
        self.codes: dict[str, dict] = {}
        self.access_tokens: dict[str, str] = {}
        self.refresh_tokens: dict[str, str] = {}
        self.token_requests: list[dict] = []
        self.userinfo_requests: list[str] = []
        # knobs for failure cases
        self.nonce_override: str | None = None
        self.omit_id_token = False
        self.token_error: str | None = None
        self.metadata_issuer = ISSUER
        self.app = self._build_app()

    # -- the browser's part: /authorize, with the person already signed in
    def authorize(self, location: str, sub: str = ANN["sub"]) -> str:
        url = urlsplit(location)
        assert f"{url.scheme}://{url.netloc}{url.path}" == ISSUER + "/authorize"
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        assert params["client_id"] == CLIENT_ID
        assert params["response_type"] == "code"
        assert params["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"params": params, "sub": sub, "auth_time": int(time.time())}
        return params["redirect_uri"] + "?" + urlencode({"code": code, "state": params["state"]})

    def _id_token(self, sub: str, access_token: str, nonce: str | None, auth_time: int) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": sub,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "auth_time": auth_time,
            "at_hash": create_half_hash(access_token, "RS256").decode(),
            "name": ANN["name"],
            "email": ANN["email"],
            "administrations": ANN["administrations"],
        }
        if nonce is not None:
            claims["nonce"] = nonce
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, self.key)

    def _issue(self, sub: str, nonce: str | None, auth_time: int, with_id_token: bool) -> dict:
        access_token = "at-" + secrets.token_urlsafe(24)
        refresh_token = "rt-" + secrets.token_urlsafe(24)
        self.access_tokens[access_token] = sub
        self.refresh_tokens[refresh_token] = sub
        body = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 600,
            "refresh_token": refresh_token,
            "scope": "openid profile email offline_access administrations",
        }
        if with_id_token:
            body["id_token"] = self._id_token(sub, access_token, nonce, auth_time)
        return body

    def _build_app(self) -> Flask:
        app = Flask("fake_provider")

        @app.get("/.well-known/openid-configuration")
        def discovery():
            return jsonify(
                issuer=self.metadata_issuer,
                authorization_endpoint=ISSUER + "/authorize",
                token_endpoint=ISSUER + "/token",
                userinfo_endpoint=ISSUER + "/userinfo",
                jwks_uri=ISSUER + "/jwks",
                end_session_endpoint=ISSUER + "/logout",
                response_types_supported=["code"],
                id_token_signing_alg_values_supported=["RS256"],
                code_challenge_methods_supported=["S256"],
                token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
            )

        @app.get("/jwks")
        def jwks():
            return jsonify(KeySet([self.key]).as_dict(private=False))

        def error(code: str, status: int = 400, description: str = ""):
            return jsonify(error=code, error_description=description), status

        @app.post("/token")
        def token():
            form = request.form.to_dict()
            self.token_requests.append({"form": form, "authorization": request.authorization})
            auth = request.authorization
            if not auth or (auth.username, auth.password) != (CLIENT_ID, CLIENT_SECRET):
                return error("invalid_client", 401)
            if self.token_error:
                return error(self.token_error, description="refused by the fake provider")
            if form.get("grant_type") == "authorization_code":
                grant = self.codes.pop(form.get("code", ""), None)
                if grant is None:
                    return error("invalid_grant", description="unknown or used code")
                params = grant["params"]
                if form.get("redirect_uri") != params["redirect_uri"]:
                    return error("invalid_grant", description="redirect_uri differs")
                if _s256(form.get("code_verifier", "")) != params["code_challenge"]:
                    return error("invalid_grant", description="PKCE verification failed")
                nonce = self.nonce_override if self.nonce_override is not None else params.get("nonce")
                return jsonify(self._issue(grant["sub"], nonce, grant["auth_time"], not self.omit_id_token))
            if form.get("grant_type") == "refresh_token":
                sub = self.refresh_tokens.pop(form.get("refresh_token", ""), None)  # rotation
                if sub is None:
                    return error("invalid_grant", description="refresh token is not active")
                return jsonify(self._issue(sub, None, int(time.time()), True))
            return error("unsupported_grant_type")

        @app.route("/userinfo", methods=["GET", "POST"])
        def userinfo():
            header = request.headers.get("Authorization", "")
            self.userinfo_requests.append(header)
            token = header.removeprefix("Bearer ")
            sub = self.access_tokens.get(token) if header.startswith("Bearer ") else None
            if sub is None:
                return jsonify(error="invalid_token"), 401
            return jsonify({**ANN, "sub": sub, "locale": "nl-NL"})

        return app


@pytest.fixture(scope="module")
def signing_key():
    return RSAKey.generate_key(2048, parameters={"kid": "test-key-1", "use": "sig", "alg": "RS256"})


@pytest.fixture
def provider(signing_key, monkeypatch):
    fake = FakeProvider(signing_key)
    route_requests(monkeypatch, fake.app, ISSUER)
    return fake


def portal_env(**overrides) -> dict:
    env = {
        "PORTAL_ISSUER": ISSUER,
        "PORTAL_CLIENT_ID": CLIENT_ID,
        "PORTAL_CLIENT_SECRET": CLIENT_SECRET,
        "PORTAL_URL": PORTAL,
        "PORTAL_SECRET_KEY": "test-secret-key",
    }
    env.update(overrides)
    return env


@pytest.fixture
def portal(provider):
    app = create_app(portal_env())
    app.testing = True
    return app


@pytest.fixture
def browser(portal):
    return portal.test_client()


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def sign_in(browser, provider, **login_args):
    start = browser.get("/login", query_string=login_args)
    assert start.status_code == 302
    callback_url = provider.authorize(start.headers["Location"])
    assert callback_url.startswith(PORTAL + "/callback?")
    done = browser.get(path_and_query(callback_url))
    assert done.status_code == 302, done.get_data(as_text=True)
    assert done.headers["Location"] in ("/", PORTAL + "/")
    return start.headers["Location"]


def csrf(browser) -> str:
    page = browser.get("/").get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def auth_in_session(browser) -> dict | None:
    with browser.session_transaction() as sess:
        return sess.get("auth")


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize("missing", ["PORTAL_CLIENT_ID", "PORTAL_CLIENT_SECRET"])
def test_missing_client_credentials_fail_at_startup(missing):
    env = portal_env()
    del env[missing]
    with pytest.raises(ConfigError, match=missing):
        create_app(env)


def test_malformed_issuer_fails_at_startup():
    with pytest.raises(ConfigError, match="PORTAL_ISSUER"):
        create_app(portal_env(PORTAL_ISSUER="op.test/without-scheme"))


def test_defaults():
    settings = load_settings({"PORTAL_CLIENT_ID": "c", "PORTAL_CLIENT_SECRET": "s"})
    assert settings.issuer == "http://127.0.0.1:5000"
    assert settings.metadata_url == "http://127.0.0.1:5000/.well-known/openid-configuration"
    assert settings.redirect_uri == "http://127.0.0.1:5001/callback"
    assert settings.post_logout_redirect_uri == "http://127.0.0.1:5001/"
    assert settings.secret_key  # random per process when unset
    assert settings.secret_key != load_settings({"PORTAL_CLIENT_ID": "c", "PORTAL_CLIENT_SECRET": "s"}).secret_key


def test_module_entry_point_reports_missing_config_in_one_line():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    result = subprocess.run(
        [sys.executable, "-m", "clients.portal"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "PORTAL_CLIENT_ID" in lines[0] and "PORTAL_CLIENT_SECRET" in lines[0]


# --------------------------------------------------------------------------- sign-in


def test_home_offers_sign_in_when_anonymous(browser):
    page = browser.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert re.search(r'<a[^>]*id="login"[^>]*href="/login"', html)
    assert 'id="whoami"' not in html
    assert page.headers["Cache-Control"] == "no-store"


def test_session_cookie_does_not_collide_with_the_provider(browser):
    response = browser.get("/login")
    assert "portal_session=" in response.headers["Set-Cookie"]
    assert "HttpOnly" in response.headers["Set-Cookie"]


def test_https_portal_uses_secure_cookies():
    assert create_app(portal_env(PORTAL_URL="https://portal.example")).config["SESSION_COOKIE_SECURE"] is True
    assert create_app(portal_env()).config["SESSION_COOKIE_SECURE"] is False


def test_login_redirects_to_authorize_with_pkce_s256_state_and_nonce(browser):
    response = browser.get("/login", query_string={"login_hint": "ann@example.com"})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(ISSUER + "/authorize?")
    params = query(location)
    assert params["response_type"] == "code"
    assert params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == PORTAL + "/callback"
    assert set(params["scope"].split()) == {"openid", "profile", "email", "offline_access", "administrations"}
    assert params["code_challenge_method"] == "S256"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", params["code_challenge"])
    assert params["state"] and params["nonce"]
    assert params["login_hint"] == "ann@example.com"
    assert "code_verifier" not in params

    # The verifier stays in the session; its S256 hash is the challenge that was sent.
    with browser.session_transaction() as sess:
        pending = sess[f"_state_portal_{params['state']}"]["data"]
    assert pending["nonce"] == params["nonce"]
    assert _s256(pending["code_verifier"]) == params["code_challenge"]


def test_each_login_uses_fresh_state_nonce_and_verifier(browser):
    first = query(browser.get("/login").headers["Location"])
    second = query(browser.get("/login").headers["Location"])
    for name in ("state", "nonce", "code_challenge"):
        assert first[name] != second[name]
    assert "login_hint" not in first


def test_callback_exchanges_code_and_stores_the_session(browser, provider):
    authorize_url = sign_in(browser, provider)
    sent = query(authorize_url)

    exchange = provider.token_requests[-1]
    assert exchange["form"]["grant_type"] == "authorization_code"
    assert exchange["form"]["redirect_uri"] == PORTAL + "/callback"
    assert _s256(exchange["form"]["code_verifier"]) == sent["code_challenge"]
    assert exchange["authorization"].type == "basic"  # client_secret_basic
    assert "client_secret" not in exchange["form"]

    auth = auth_in_session(browser)
    assert set(auth) >= {"id_token", "access_token", "refresh_token", "expires_at", "claims"}
    assert auth["access_token"] in provider.access_tokens
    assert auth["refresh_token"] in provider.refresh_tokens
    assert auth["claims"]["sub"] == ANN["sub"]
    assert auth["claims"]["nonce"] == sent["nonce"]
    assert auth["expires_at"] >= time.time() + 500
    with browser.session_transaction() as sess:
        assert not [key for key in sess if key.startswith("_state_")]  # state is single-use


def test_session_lives_on_the_server_and_gets_a_new_id_at_sign_in(browser, provider):
    start = browser.get("/login")
    before = browser.get_cookie("portal_session").value
    browser.get(path_and_query(provider.authorize(start.headers["Location"])))
    after = browser.get_cookie("portal_session").value
    assert after != before
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", after)  # an id, no tokens
    assert auth_in_session(browser)["claims"]["sub"] == ANN["sub"]


def test_many_administrations_fit(browser, provider, monkeypatch):
    many = [{"id": f"adm-{i}", "name": f"Client {i} B.V.", "role": "accountant"} for i in range(200)]
    monkeypatch.setitem(ANN, "administrations", many)
    sign_in(browser, provider)
    html = browser.get("/").get_data(as_text=True)
    assert "Client 199 B.V." in html


def test_idle_session_expires(portal, browser, provider):
    sign_in(browser, provider)
    assert 'id="whoami"' in browser.get("/").get_data(as_text=True)
    portal.session_interface.idle_seconds = -1
    browser.get("/")  # stored with an expiry in the past
    assert 'id="login"' in browser.get("/").get_data(as_text=True)


def test_signed_in_home_shows_identity_claims_userinfo_and_masked_tokens(browser, provider):
    sign_in(browser, provider)
    auth = auth_in_session(browser)
    page = browser.get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200

    assert re.search(r'id="whoami">Signed in as Ann de Vries \(ann@example.com\)<', html)
    claims_table = html[html.index('id="claims"') :]
    assert "at_hash" in claims_table and ANN["sub"] in claims_table
    userinfo_block = html[html.index('id="userinfo"') :]
    assert "nl-NL" in userinfo_block  # only the userinfo response has the locale
    assert provider.userinfo_requests[-1] == "Bearer " + auth["access_token"]
    assert 'id="administrations"' in html
    assert "De Vries Bakkerij" in html and "Hofman Holding" in html and "accountant" in html
    assert re.search(r'<form[^>]*id="refresh"[^>]*method="post"[^>]*action="/refresh"', html)
    assert re.search(r'<form[^>]*id="logout"[^>]*method="post"[^>]*action="/logout"', html)

    for name in ("id_token", "access_token", "refresh_token"):
        assert auth[name] not in html
        assert auth[name][:8] + "…" in html
    assert auth["id_token"][:40] not in html


def test_userinfo_failure_is_shown_not_fatal(browser, provider):
    sign_in(browser, provider)
    provider.access_tokens.clear()  # the provider revoked the access token
    page = browser.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "refused the access token (HTTP 401)" in html
    assert 'id="whoami"' in html


def test_id_token_with_wrong_nonce_is_rejected(browser, provider):
    provider.nonce_override = "not-the-nonce-we-sent"
    start = browser.get("/login")
    response = browser.get(path_and_query(provider.authorize(start.headers["Location"])))
    assert response.status_code == 400
    assert "nonce" in response.get_data(as_text=True)
    assert auth_in_session(browser) is None


def test_token_response_without_id_token_is_rejected(browser, provider):
    provider.omit_id_token = True
    start = browser.get("/login")
    response = browser.get(path_and_query(provider.authorize(start.headers["Location"])))
    assert response.status_code == 400
    assert "no ID token" in response.get_data(as_text=True)
    assert auth_in_session(browser) is None


def test_callback_with_unknown_state_is_rejected_before_any_exchange(browser, provider):
    browser.get("/login")
    response = browser.get("/callback", query_string={"code": "abc", "state": "forged"})
    assert response.status_code == 400
    assert 'role="alert"' in response.get_data(as_text=True)
    assert provider.token_requests == []
    assert auth_in_session(browser) is None


def test_callback_replayed_code_is_rejected(browser, provider):
    start = browser.get("/login")
    callback = path_and_query(provider.authorize(start.headers["Location"]))
    assert browser.get(callback).status_code == 302
    assert browser.get(callback).status_code == 400  # state already used


def test_provider_error_is_shown_with_description(browser, provider):
    start = browser.get("/login")
    state = query(start.headers["Location"])["state"]
    response = browser.get(
        "/callback",
        query_string={"error": "access_denied", "error_description": "<b>The person said no</b>", "state": state},
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "access_denied" in html
    assert "&lt;b&gt;The person said no&lt;/b&gt;" in html
    assert 'role="alert"' in html
    assert provider.token_requests == []
    with browser.session_transaction() as sess:
        assert f"_state_portal_{state}" not in sess


def test_token_endpoint_error_is_shown(browser, provider):
    provider.token_error = "invalid_grant"
    start = browser.get("/login")
    response = browser.get(path_and_query(provider.authorize(start.headers["Location"])))
    assert response.status_code == 400
    assert "invalid_grant" in response.get_data(as_text=True)


def test_unreachable_provider_gives_a_clear_page(provider):
    app = create_app(portal_env(PORTAL_ISSUER="https://down.test"))
    response = app.test_client().get("/login")
    assert response.status_code == 502
    assert "https://down.test/.well-known/openid-configuration" in response.get_data(as_text=True)


def test_discovery_with_another_issuer_is_refused(browser, provider):
    provider.metadata_issuer = "https://evil.test"
    response = browser.get("/login")
    assert response.status_code == 502
    assert "evil.test" in response.get_data(as_text=True)


# --------------------------------------------------------------------------- refresh


def test_refresh_uses_the_refresh_token_grant_and_shows_new_expiry(browser, provider):
    sign_in(browser, provider)
    before = auth_in_session(browser)
    response = browser.post("/refresh", data={"csrf_token": csrf(browser)})
    assert response.status_code == 302

    request_form = provider.token_requests[-1]["form"]
    assert request_form["grant_type"] == "refresh_token"
    assert request_form["refresh_token"] == before["refresh_token"]
    assert "scope" not in request_form

    after = auth_in_session(browser)
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"]  # the provider rotated it
    assert after["id_token"] != before["id_token"]
    assert after["claims"]["sub"] == before["claims"]["sub"]

    html = browser.get("/").get_data(as_text=True)
    assert re.search(r'id="refresh-result"[^>]*>Tokens refreshed\. The new access token expires at \d{4}-', html)
    assert provider.userinfo_requests[-1] == "Bearer " + after["access_token"]


def test_refused_refresh_shows_an_error_and_keeps_the_session(browser, provider):
    sign_in(browser, provider)
    provider.refresh_tokens.clear()  # e.g. revoked in the security centre
    token = csrf(browser)
    response = browser.post("/refresh", data={"csrf_token": token}, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert re.search(r'id="refresh-error" role="alert">The provider refused to refresh the tokens: invalid_grant', html)
    assert 'id="whoami"' in html


def test_refresh_and_logout_need_the_form_token(browser, provider):
    sign_in(browser, provider)
    assert browser.post("/refresh").status_code == 400
    assert browser.post("/logout", data={"csrf_token": "guess"}).status_code == 400
    assert auth_in_session(browser) is not None
    assert [r for r in provider.token_requests if r["form"]["grant_type"] == "refresh_token"] == []


# --------------------------------------------------------------------------- sign-out


def test_logout_clears_the_session_and_redirects_to_end_session(browser, provider):
    sign_in(browser, provider)
    id_token = auth_in_session(browser)["id_token"]
    response = browser.post("/logout", data={"csrf_token": csrf(browser)})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(ISSUER + "/logout?")
    params = query(location)
    assert params["id_token_hint"] == id_token
    assert params["post_logout_redirect_uri"] == PORTAL + "/"
    assert params["client_id"] == CLIENT_ID
    assert len(params["state"]) >= 16
    assert auth_in_session(browser) is None

    # The provider sends the browser back with the state.
    back = browser.get("/", query_string={"state": params["state"]})
    html = back.get_data(as_text=True)
    assert re.search(r'id="signed-out"[^>]*>You have been signed out', html)
    assert 'id="login"' in html

    # The state is single-use.
    again = browser.get("/", query_string={"state": params["state"]}).get_data(as_text=True)
    assert 'id="signed-out"' not in again
    assert 'id="logout-error"' in again


def test_logout_return_with_a_foreign_state_is_not_trusted(browser, provider):
    sign_in(browser, provider)
    browser.post("/logout", data={"csrf_token": csrf(browser)})
    html = browser.get("/", query_string={"state": "someone-elses"}).get_data(as_text=True)
    assert 'id="signed-out"' not in html
    assert 'id="logout-error"' in html


def test_logout_without_a_session_just_goes_home(browser, provider):
    with browser.session_transaction() as sess:
        sess["csrf_token"] = "known"
    response = browser.post("/logout", data={"csrf_token": "known"})
    assert response.status_code == 302
    assert response.headers["Location"] in ("/", PORTAL + "/")
