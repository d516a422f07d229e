"""The OpenID Connect protocol as a relying party sees it."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qs

import pytest

from idp import clock
from tests.helpers import (
    FULL,
    POST_LOGOUT_URI,
    REDIRECT_URI,
    basic,
    cli_runner,
    decode,
    exchange_code,
    introspect,
    make_client,
    pkce_pair,
    refresh,
    signed_in_browser,
    token_request,
    tokens_for,
)

@pytest.fixture
def signed_in(browser, portal, person):
    """A browser with an SSO session (first login done)."""
    return signed_in_browser(browser, portal, person)


# -- discovery and keys ---------------------------------------------------------------


def test_discovery_names_every_endpoint(client):
    doc = client.get("/.well-known/openid-configuration").get_json()
    assert doc["issuer"] == "http://idp.test"
    for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                "introspection_endpoint", "revocation_endpoint", "end_session_endpoint"):
        assert doc[key].startswith("http://idp.test/")
    assert doc["response_types_supported"] == ["code"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert "form_post" in doc["response_modes_supported"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert set(doc["scopes_supported"]) == {"openid", "profile", "email", "offline_access", "administrations"}


def test_every_endpoint_discovery_names_answers(client):
    """Discovery promises nothing the server does not serve: each endpoint is there (an
    unauthenticated request is refused, never not found)."""
    doc = client.get("/.well-known/openid-configuration").get_json()
    methods = {"authorization_endpoint": "GET", "jwks_uri": "GET", "end_session_endpoint": "GET",
               "userinfo_endpoint": "GET"}
    endpoints = {k: v for k, v in doc.items() if k.endswith(("_endpoint", "_uri")) and isinstance(v, str)}
    assert set(endpoints) == {"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                              "introspection_endpoint", "revocation_endpoint", "end_session_endpoint",
                              "pushed_authorization_request_endpoint"}
    for name, url in endpoints.items():
        response = client.open(url.replace("http://idp.test", ""), method=methods.get(name, "POST"))
        assert response.status_code not in (404, 405, 500), (name, response.status_code)


def test_jwks_has_rs256_key_with_kid(client):
    keys = client.get("/jwks.json").get_json()["keys"]
    assert keys and all(k["kty"] == "RSA" and k["kid"] and k["alg"] == "RS256" for k in keys)
    assert all("d" not in k for k in keys)


# -- authorize errors -----------------------------------------------------------------


def test_unknown_client_gets_an_error_page_not_a_redirect(client):
    r = client.get("/authorize?response_type=code&client_id=nope&redirect_uri=http://evil.test/cb")
    assert r.status_code == 400 and "Location" not in r.headers


def test_unregistered_redirect_uri_gets_an_error_page(client, portal):
    _, challenge = pkce_pair()
    r = client.get(f"/authorize?response_type=code&client_id={portal['client_id']}&redirect_uri=http://evil.test/cb"
                   f"&scope=openid&code_challenge={challenge}&code_challenge_method=S256")
    assert r.status_code == 400 and "Location" not in r.headers
    r = client.get(f"/authorize?response_type=code&client_id={portal['client_id']}&redirect_uri={REDIRECT_URI}?x=1"
                   f"&scope=openid&code_challenge={challenge}&code_challenge_method=S256")
    assert r.status_code == 400 and "Location" not in r.headers


def error_of(browser):
    return browser.callback_params()


def test_missing_pkce_is_refused(browser, portal):
    browser.authorize(portal["client_id"], code_challenge=None, code_challenge_method=None)
    assert error_of(browser)["error"] == "invalid_request"


def test_plain_pkce_is_refused(browser, portal):
    browser.authorize(portal["client_id"], code_challenge="a" * 43, code_challenge_method="plain")
    params = error_of(browser)
    assert params["error"] == "invalid_request" and params["state"] == browser.auth_request["state"]


def test_unsupported_response_type_goes_back_to_the_client(browser, portal):
    browser.authorize(portal["client_id"], response_type="token")
    assert error_of(browser)["error"] == "unsupported_response_type"


def test_invalid_prompt_and_max_age(browser, portal):
    browser.authorize(portal["client_id"], prompt="none login")
    assert error_of(browser)["error"] == "invalid_request"
    browser.authorize(portal["client_id"], max_age="soon")
    assert error_of(browser)["error"] == "invalid_request"


def test_prompt_none_without_session(browser, portal):
    browser.authorize(portal["client_id"], prompt="none")
    assert error_of(browser)["error"] == "login_required"


def test_unknown_parameters_and_display_are_ignored(browser, portal):
    browser.authorize(portal["client_id"], extra="foobar", display="popup", claims_locales="se", acr_values="1 2")
    assert browser.status == 200 and browser.step_state == "email"


# -- the code flow --------------------------------------------------------------------


def test_id_token(signed_in, portal, person):
    response = exchange_code(signed_in.http, portal, signed_in.first_code, signed_in.verifier)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    token = decode(signed_in.http, body["id_token"])
    assert token.header["kid"] and token.header["alg"] == "RS256"
    claims = token.claims
    assert claims["iss"] == "http://idp.test"
    assert claims["aud"] == portal["client_id"]
    assert claims["sub"] == person["sub"] and "@" not in claims["sub"]
    assert claims["nonce"] == signed_in.auth_request["nonce"]
    assert claims["sid"] and claims["auth_time"] <= claims["iat"] < claims["exp"]
    assert claims["at_hash"]
    assert claims["email"] == person["email"] and claims["name"] == "Anna de Vries"


def test_code_is_single_use_and_reuse_revokes(signed_in, portal):
    first = exchange_code(signed_in.http, portal, signed_in.first_code, signed_in.verifier)
    assert first.status_code == 200
    access = first.get_json()["access_token"]
    assert introspect(signed_in.http, portal, access)["active"] is True
    again = exchange_code(signed_in.http, portal, signed_in.first_code, signed_in.verifier)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    assert introspect(signed_in.http, portal, access)["active"] is False


def test_code_bound_to_client_redirect_and_verifier(app, signed_in, portal):
    other = make_client(app, name="Other")
    r = exchange_code(signed_in.http, other, signed_in.first_code, signed_in.verifier)
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"
    r = exchange_code(signed_in.http, portal, signed_in.first_code, "x" * 50)
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"


def test_code_expires(signed_in, portal):
    clock.advance(seconds=61)
    r = exchange_code(signed_in.http, portal, signed_in.first_code, signed_in.verifier)
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"


def test_wrong_client_secret(signed_in, portal):
    bad = dict(portal, client_secret="wrong")
    r = exchange_code(signed_in.http, bad, signed_in.first_code, signed_in.verifier)
    assert r.status_code == 401 and r.get_json()["error"] == "invalid_client"


def test_client_secret_post(signed_in, portal):
    r = exchange_code(signed_in.http, portal, signed_in.first_code, signed_in.verifier, auth="post")
    assert r.status_code == 200


def test_public_client_with_pkce(app, signed_in):
    public = make_client(app, name="Mobile", public=True)
    signed_in.authorize(public["client_id"])
    code = signed_in.callback_params()["code"]
    r = exchange_code(signed_in.http, public, code, signed_in.verifier, auth="none")
    assert r.status_code == 200 and "id_token" in r.get_json()


def test_form_post_response_mode(signed_in, portal):
    signed_in.authorize(portal["client_id"], response_mode="form_post")
    assert signed_in.status == 200
    form = signed_in.page.forms["form-post"]
    assert form["action"] == REDIRECT_URI
    assert form["fields"]["state"] == signed_in.auth_request["state"] and form["fields"]["code"]
    assert "form-action http://app.test" in signed_in.response.headers["Content-Security-Policy"]


def test_form_post_errors(browser, portal):
    browser.authorize(portal["client_id"], response_mode="form_post", prompt="none")
    assert browser.page.forms["form-post"]["fields"]["error"] == "login_required"


def test_prompt_none_with_session(signed_in, portal, person):
    body = tokens_for(signed_in, portal, prompt="none")
    assert decode(signed_in.http, body["id_token"]).claims["sub"] == person["sub"]


def test_prompt_login_asks_again(signed_in, portal, person):
    signed_in.authorize(portal["client_id"], prompt="login")
    assert signed_in.step_state == "email"
    clock.advance(seconds=30)
    signed_in.sign_in(person["email"], person["password"])
    assert "code" in signed_in.callback_params()


def test_max_age(signed_in, portal, person):
    clock.advance(seconds=120)
    body = tokens_for(signed_in, portal, max_age="10000")
    first_auth_time = decode(signed_in.http, body["id_token"]).claims["auth_time"]
    signed_in.authorize(portal["client_id"], max_age="1")
    assert signed_in.step_state == "email"
    signed_in.sign_in(person["email"], person["password"])
    code = signed_in.callback_params()["code"]
    body = exchange_code(signed_in.http, portal, code, signed_in.verifier).get_json()
    assert decode(signed_in.http, body["id_token"]).claims["auth_time"] > first_auth_time


def test_id_token_hint(signed_in, portal, person):
    body = tokens_for(signed_in, portal)
    again = tokens_for(signed_in, portal, prompt="none", id_token_hint=body["id_token"])
    assert decode(signed_in.http, again["id_token"]).claims["sub"] == person["sub"]
    signed_in.authorize(portal["client_id"], prompt="none", id_token_hint="not.a.token")
    assert signed_in.callback_params()["error"] == "invalid_request"


# -- refresh tokens --------------------------------------------------------------------


def test_refresh_token_only_with_offline_access(signed_in, portal):
    assert "refresh_token" not in tokens_for(signed_in, portal, scope="openid email")
    assert "refresh_token" in tokens_for(signed_in, portal, scope=FULL)


def test_refresh_rotates_and_reuse_revokes_the_family(signed_in, portal):
    body = tokens_for(signed_in, portal)
    first = refresh(signed_in.http, portal, body["refresh_token"])
    assert first.status_code == 200 and first.headers["Cache-Control"] == "no-store"
    new = first.get_json()
    assert new["refresh_token"] != body["refresh_token"]
    reuse = refresh(signed_in.http, portal, body["refresh_token"])
    assert reuse.status_code == 400 and reuse.get_json()["error"] == "invalid_grant"
    # The whole family is revoked: the new refresh and access tokens too.
    assert refresh(signed_in.http, portal, new["refresh_token"]).status_code == 400
    assert introspect(signed_in.http, portal, new["access_token"])["active"] is False


def test_refresh_token_bound_to_client(app, signed_in, portal):
    body = tokens_for(signed_in, portal)
    other = make_client(app, name="Other")
    r = refresh(signed_in.http, other, body["refresh_token"])
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"


def test_one_connection_per_app_per_login(signed_in, portal):
    first = tokens_for(signed_in, portal)
    second = tokens_for(signed_in, portal)
    assert refresh(signed_in.http, portal, first["refresh_token"]).status_code == 400
    assert refresh(signed_in.http, portal, second["refresh_token"]).status_code == 200


# -- client credentials, userinfo, introspection, revocation ------------------------------


def test_client_credentials(app, client):
    service = make_client(app, name="Bank", grant_types=("client_credentials",))
    r = token_request(client, service, {"grant_type": "client_credentials"})
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    body = r.get_json()
    assert "refresh_token" not in body and "id_token" not in body
    info = introspect(client, service, body["access_token"])
    assert info["active"] is True and info["sub"] == service["client_id"] and info["client_id"] == service["client_id"]


def test_grant_not_registered_for_client(client, portal):
    r = token_request(client, portal, {"grant_type": "client_credentials"})
    assert r.status_code == 400 and r.get_json()["error"] == "unauthorized_client"


def test_userinfo_get_and_post(signed_in, portal, person):
    body = tokens_for(signed_in, portal)
    auth = {"Authorization": "Bearer " + body["access_token"]}
    for method in ("get", "post"):
        r = getattr(signed_in.http, method)("/userinfo", headers=auth)
        assert r.status_code == 200, r.data
        info = r.get_json()
        assert info["sub"] == person["sub"] and info["email"] == person["email"]
        assert info["email_verified"] is True and info["administrations"] == []


def test_userinfo_claims_follow_scope(signed_in, portal):
    body = tokens_for(signed_in, portal, scope="openid")
    info = signed_in.http.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]}).get_json()
    assert set(info) == {"sub"}


def test_userinfo_refuses_bad_tokens(client):
    assert client.get("/userinfo").status_code == 401
    r = client.get("/userinfo", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and "invalid_token" in r.headers.get("WWW-Authenticate", "")


def test_introspection(signed_in, portal):
    body = tokens_for(signed_in, portal)
    info = introspect(signed_in.http, portal, body["access_token"])
    assert info["active"] and info["client_id"] == portal["client_id"] and "openid" in info["scope"]
    info = introspect(signed_in.http, portal, body["refresh_token"], hint="refresh_token")
    assert info["active"] and info["token_type"] == "refresh_token"
    assert introspect(signed_in.http, portal, "garbage")["active"] is False
    assert signed_in.http.post("/introspect", data={"token": body["access_token"]}).status_code == 401


def test_revocation(signed_in, portal):
    body = tokens_for(signed_in, portal)
    r = signed_in.http.post("/revoke", data={"token": body["refresh_token"], "token_type_hint": "refresh_token"},
                            headers=basic(portal))
    assert r.status_code == 200
    assert refresh(signed_in.http, portal, body["refresh_token"]).status_code == 400
    assert introspect(signed_in.http, portal, body["access_token"])["active"] is False
    # Unknown tokens: 200 as RFC 7009 says.
    assert signed_in.http.post("/revoke", data={"token": "nope"}, headers=basic(portal)).status_code == 200


def test_revocation_by_another_client_does_nothing(app, signed_in, portal):
    body = tokens_for(signed_in, portal)
    other = make_client(app, name="Other")
    signed_in.http.post("/revoke", data={"token": body["access_token"]}, headers=basic(other))
    assert introspect(signed_in.http, portal, body["access_token"])["active"] is True


# -- consent ----------------------------------------------------------------------------


def test_third_party_consent_allow_is_remembered(signed_in, third_party):
    signed_in.authorize(third_party["client_id"], scope="openid email")
    assert signed_in.step_state == "consent"
    signed_in.submit(decision="allow")
    assert "code" in signed_in.callback_params()
    signed_in.authorize(third_party["client_id"], scope="openid email")
    assert "code" in signed_in.callback_params()
    # A wider scope set asks again.
    signed_in.authorize(third_party["client_id"], scope="openid email profile")
    assert signed_in.step_state == "consent"


def test_third_party_consent_deny(signed_in, third_party):
    signed_in.authorize(third_party["client_id"], scope="openid email")
    signed_in.submit(decision="deny")
    assert signed_in.callback_params()["error"] == "access_denied"


def test_consent_required_with_prompt_none(signed_in, third_party):
    signed_in.authorize(third_party["client_id"], prompt="none")
    assert signed_in.callback_params()["error"] == "consent_required"


def test_first_party_skips_consent(signed_in, portal):
    signed_in.authorize(portal["client_id"], prompt="consent")
    assert "code" in signed_in.callback_params()


# -- logout ----------------------------------------------------------------------------


def test_rp_initiated_logout_with_an_id_token_of_this_session_asks_nothing(signed_in, portal):
    body = tokens_for(signed_in, portal)
    signed_in.get(f"/logout?id_token_hint={body['id_token']}&post_logout_redirect_uri={POST_LOGOUT_URI}&state=bye1")
    assert signed_in.status == 302 and signed_in.location == POST_LOGOUT_URI + "?state=bye1"
    signed_in.authorize(portal["client_id"], prompt="none")
    assert signed_in.callback_params()["error"] == "login_required"


def test_logout_with_an_id_token_of_an_earlier_session_asks_with_a_cancel(signed_in, portal, person):
    old = tokens_for(signed_in, portal)["id_token"]
    signed_in.get("/logout")
    signed_in.submit()
    clock.advance(seconds=60)
    signed_in.authorize(portal["client_id"])
    signed_in.sign_in(person["email"], person["password"])
    signed_in.get(f"/logout?id_token_hint={old}&post_logout_redirect_uri={POST_LOGOUT_URI}&state=bye2")
    assert signed_in.status == 200 and "step" in signed_in.page.forms  # a question: another session's token
    cancel = signed_in.page.links["cancel"]
    assert cancel == "http://app.test/"  # back to the app, signed in as before
    signed_in.submit()
    assert signed_in.status == 302 and signed_in.location == POST_LOGOUT_URI + "?state=bye2"


def test_logout_with_unregistered_redirect_does_not_redirect(signed_in, portal):
    body = tokens_for(signed_in, portal)
    signed_in.get(f"/logout?id_token_hint={body['id_token']}&post_logout_redirect_uri=http://evil.test/")
    assert signed_in.status == 200 and signed_in.location is None
    assert "step" not in signed_in.page.forms  # signed out: no question


def test_logout_with_bad_id_token_hint_shows_error(signed_in):
    signed_in.get(f"/logout?id_token_hint=eyJhbGciOiJub25lIn0.e30.&post_logout_redirect_uri={POST_LOGOUT_URI}")
    assert signed_in.status == 400 and signed_in.location is None


def test_logout_without_params(signed_in, portal):
    signed_in.get("/logout")
    assert signed_in.page.links["cancel"] == "/account"  # no app named: back to the account page
    signed_in.submit()
    assert signed_in.status == 200
    signed_in.authorize(portal["client_id"], prompt="none")
    assert signed_in.callback_params()["error"] == "login_required"


def test_logout_confirmation_needs_csrf(signed_in):
    r = signed_in.http.post("/logout", data={"confirm": "yes"})
    assert r.status_code == 400


# -- keys --------------------------------------------------------------------------------


def test_key_rotation_keeps_old_keys_published(app, signed_in, portal, cli):
    old = tokens_for(signed_in, portal)["id_token"]
    old_kid = decode(signed_in.http, old).header["kid"]
    result = cli.invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    from idp.services import keys

    keys.clear_cache()
    kids = {k["kid"] for k in signed_in.http.get("/jwks.json").get_json()["keys"]}
    assert old_kid in kids and len(kids) == 2
    new = tokens_for(signed_in, portal)["id_token"]
    assert decode(signed_in.http, new).header["kid"] != old_kid
    decode(signed_in.http, old)  # still verifies


# -- headers ----------------------------------------------------------------------------


def test_security_headers_on_pages(browser, portal):
    browser.authorize(portal["client_id"])
    headers = browser.response.headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"
    nonces = set()
    for _ in range(2):
        browser.authorize(portal["client_id"])
        nonces |= set(re.findall(r"script-src 'self' 'nonce-([A-Za-z0-9_-]{22})';",
                                 browser.response.headers["Content-Security-Policy"]))
    assert len(nonces) == 2  # one per page, never reused


def test_security_headers_on_protocol_answers(client, app):
    service = make_client(app, name="Bank", grant_types=("client_credentials",))
    for response in (token_request(client, service, {"grant_type": "client_credentials"}),
                     client.post("/token", data="a=1&a=2", content_type="application/x-www-form-urlencoded")):
        headers = response.headers
        assert response.mimetype == "application/json"
        assert headers["Content-Security-Policy"] == (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'; object-src 'none'")  # JSON runs no script: no nonce
        assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer" and headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert headers["Cache-Control"] == "no-store"
        assert "Strict-Transport-Security" not in headers  # the test issuer is http://


# -- back-channel logout -------------------------------------------------------------------


def test_backchannel_logout(app, browser, person):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["Content-Length"])
            received.append(parse_qs(self.rfile.read(length).decode())["logout_token"][0])
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        rp = make_client(app, name="RP", extra=["--backchannel-logout-uri", f"http://127.0.0.1:{server.server_port}/bcl"])
        clock.freeze(dt.datetime(2026, 11, 23, 9, 0, 5))
        browser.authorize(rp["client_id"], scope=FULL)
        browser.sign_in(person["email"], person["password"], first_time=True)
        code = browser.callback_params()["code"]
        body = exchange_code(browser.http, rp, code, browser.verifier).get_json()
        sid = decode(browser.http, body["id_token"]).claims["sid"]
        browser.get(f"/logout?id_token_hint={body['id_token']}&post_logout_redirect_uri={POST_LOGOUT_URI}")
        assert browser.location == POST_LOGOUT_URI
        assert received == []  # not inside the person's request: the delivery loop sends it
        assert cli_runner(app).invoke(args=["mail", "deliver"]).exit_code == 0
        assert len(received) == 1
        token = decode(browser.http, received[0])
        assert token.header["typ"] == "logout+jwt"
        claims = token.claims
        assert claims["sid"] == sid and claims["sub"] == person["sub"] and claims["aud"] == rp["client_id"]
        assert "http://schemas.openid.net/event/backchannel-logout" in claims["events"] and "nonce" not in claims
    finally:
        server.shutdown()


def test_pkce_optional_only_for_registered_confidential_clients(app, signed_in):
    suite = make_client(app, name="Certification suite", extra=["--pkce-optional"])
    signed_in.authorize(suite["client_id"], code_challenge=None, code_challenge_method=None)
    code = signed_in.callback_params()["code"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    r = token_request(signed_in.http, suite, data)
    assert r.status_code == 200, r.get_json()
    # plain is still refused for it
    signed_in.authorize(suite["client_id"], code_challenge="a" * 43, code_challenge_method="plain")
    assert signed_in.callback_params()["error"] == "invalid_request"


def test_unknown_scopes_are_left_out(signed_in, portal):
    body = tokens_for(signed_in, portal, scope="openid email address phone")
    assert body["scope"] == "openid email"


def test_client_credentials_token_revocation_and_tampering(app, client):
    service = make_client(app, name="Bank", grant_types=("client_credentials",))
    body = token_request(client, service, {"grant_type": "client_credentials", "scope": "openid email"}).get_json()
    access = body["access_token"]
    assert "scope" not in body  # personal scopes are not granted to a machine
    r = client.get("/userinfo", headers={"Authorization": "Bearer " + access})
    assert r.status_code in (401, 403)  # no person behind it, no openid scope
    forged = access[:-2] + ("AA" if access[-2:] != "AA" else "BB")
    assert introspect(client, service, forged)["active"] is False
    other = make_client(app, name="Other", grant_types=("client_credentials",))
    client.post("/revoke", data={"token": access}, headers=basic(other))
    assert introspect(client, service, access)["active"] is True
    assert client.post("/revoke", data={"token": access}, headers=basic(service)).status_code == 200
    assert introspect(client, service, access)["active"] is False


def test_client_credentials_token_expires(app, client):
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0))
    service = make_client(app, name="Bank", grant_types=("client_credentials",))
    access = token_request(client, service, {"grant_type": "client_credentials"}).get_json()["access_token"]
    clock.advance(seconds=3601)
    assert introspect(client, service, access)["active"] is False


def test_step_pages_let_forms_redirect_to_the_client_only(browser, portal):
    browser.authorize(portal["client_id"])
    csp = browser.response.headers["Content-Security-Policy"]
    assert "form-action 'self' http://app.test;" in csp
