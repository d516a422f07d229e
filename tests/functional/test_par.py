"""Pushed authorization requests (RFC 9126): the client pushes its request at /par (with the
client authentication and throttle of /token), /authorize takes the request_uri once and
only the pushed parameters; a client may be registered to require it."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode, urlsplit

import pytest
from werkzeug.datastructures import MultiDict

from idp import clock
from tests.helpers import (
    FULL,
    REDIRECT_URI,
    T0,
    DPoPKey,
    basic,
    make_client,
    pkce_pair,
    token_request,
)

PREFIX = "urn:ietf:params:oauth:request_uri:"


def _params(client, **extra) -> dict:
    verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT_URI, "scope": FULL,
              "state": "st-" + secrets.token_hex(4), "nonce": "n-1", "code_challenge": challenge,
              "code_challenge_method": "S256"}
    params.update(extra)
    return {k: v for k, v in params.items() if v is not None}, verifier


def _push(http, client, params, auth="basic", headers=None):
    headers = dict(headers or {})
    data = dict(params)
    if auth == "basic":
        headers.update(basic(client))
    elif auth == "post":
        data["client_secret"] = client["client_secret"]
    return http.post("/par", data=data, headers=headers)


def _pushed(http, client, **extra):
    params, verifier = _params(client, **extra)
    r = _push(http, client, params)
    assert r.status_code == 201, r.get_json()
    return r.get_json()["request_uri"], params, verifier


def _authorize(browser, client_id, request_uri, **query):
    return browser.get("/authorize?" + urlencode({"client_id": client_id, "request_uri": request_uri, **query}))


def test_discovery_names_the_endpoint(client):
    doc = client.get("/.well-known/openid-configuration").get_json()
    assert doc["pushed_authorization_request_endpoint"] == "http://idp.test/par"
    assert doc["require_pushed_authorization_requests"] is False
    assert doc["request_uri_parameter_supported"] is False  # request objects by reference stay refused


def test_a_pushed_request_is_answered_with_a_short_lived_request_uri(client, portal):
    params, _ = _params(portal)
    for auth in ("basic", "post"):
        r = _push(client, portal, params, auth)
        assert r.status_code == 201 and r.headers["Cache-Control"] == "no-store"
        body = r.get_json()
        assert body["request_uri"].startswith(PREFIX) and body["expires_in"] == 60


def test_authorize_takes_only_the_pushed_parameters_once(signed_in, portal):
    request_uri, params, verifier = _pushed(signed_in.http, portal)
    # What the URL says besides the reference does not count.
    _authorize(signed_in, portal["client_id"], request_uri, scope="openid", state="from-the-url", prompt="login")
    back = signed_in.callback_params()
    assert back["state"] == params["state"] and back["iss"] == "http://idp.test"
    data = {"grant_type": "authorization_code", "code": back["code"], "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier}
    tokens = token_request(signed_in.http, portal, data)
    assert tokens.status_code == 200 and tokens.get_json()["scope"] == FULL
    again = _authorize(signed_in, portal["client_id"], request_uri)
    assert signed_in.status == 400 and "Location" not in again.headers
    assert "invalid_request_uri" in signed_in.text


def test_a_request_uri_expires(signed_in, portal, app):
    request_uri, _, _ = _pushed(signed_in.http, portal)
    clock.advance(seconds=app.config["PAR_LIFETIME"])
    _authorize(signed_in, portal["client_id"], request_uri)
    assert signed_in.status == 400 and "invalid_request_uri" in signed_in.text


def test_a_request_uri_is_only_its_clients(app, signed_in, portal):
    other = make_client(app, name="Other")
    request_uri, _, _ = _pushed(signed_in.http, portal)
    _authorize(signed_in, other["client_id"], request_uri)
    assert signed_in.status == 400 and "invalid_request_uri" in signed_in.text
    _authorize(signed_in, portal["client_id"], PREFIX + "made-up")
    assert signed_in.status == 400 and "invalid_request_uri" in signed_in.text
    # Not spent by the tries of others.
    _authorize(signed_in, portal["client_id"], request_uri)
    assert "code" in signed_in.callback_params()


def test_other_request_uris_are_still_refused(signed_in, portal):
    signed_in.authorize(portal["client_id"], request_uri="https://app.test/request.jwt")
    assert signed_in.callback_params()["error"] == "request_uri_not_supported"


def test_the_sign_in_between_keeps_the_pushed_parameters_out_of_urls(browser, portal, person):
    clock.freeze(T0)
    request_uri, params, verifier = _pushed(browser.http, portal, login_hint=person["email"])
    _authorize(browser, portal["client_id"], request_uri)
    assert browser.page.forms["step"]["fields"]["email"] == person["email"]  # the pushed login_hint
    browser.sign_in(person["email"], person["password"], first_time=True)
    # The last step answers with the redirect to the app itself: no address on the way carries
    # the pushed parameters.
    assert browser.url.startswith("/login/") and not urlsplit(browser.url).query
    back = browser.callback_params()
    assert back["state"] == params["state"]
    data = {"grant_type": "authorization_code", "code": back["code"], "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier}
    assert token_request(browser.http, portal, data).status_code == 200


def test_consent_between_keeps_the_pushed_parameters(signed_in, third_party):
    request_uri, params, _ = _pushed(signed_in.http, third_party, scope="openid email")
    _authorize(signed_in, third_party["client_id"], request_uri)
    assert signed_in.step_state == "consent"
    signed_in.submit(decision="allow")
    assert signed_in.callback_params()["state"] == params["state"]


@pytest.mark.parametrize("change,error", [
    ({"redirect_uri": "http://evil.test/cb"}, "invalid_request"),
    ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"prompt": "none login"}, "invalid_request"),
    ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
    ({"request_uri": PREFIX + "x"}, "invalid_request"),
    ({"client_id": "someone-else"}, "invalid_request"),
    ({"dpop_jkt": "short"}, "invalid_request"),
])
def test_a_pushed_request_is_checked_as_authorize_checks_it(client, portal, change, error):
    params, _ = _params(portal, **change)
    r = _push(client, portal, params)
    assert r.status_code == 400 and "Location" not in r.headers, r.get_json()
    assert r.get_json()["error"] == error and "state" not in r.get_json()


def test_a_parameter_sent_twice_is_refused(client, portal):
    params, _ = _params(portal)
    r = client.post("/par", data=MultiDict(list(params.items()) + [("scope", "openid")]), headers=basic(portal))
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_request"


def test_pushing_needs_client_authentication(client, portal, public_app):
    params, _ = _params(portal)
    assert client.post("/par", data=params).get_json()["error"] == "invalid_client"
    wrong = dict(portal, client_secret="wrong")
    assert _push(client, wrong, params).status_code == 401
    params, _ = _params(public_app)
    assert client.post("/par", data=params).status_code == 201


@pytest.mark.config(RATELIMIT_ENABLED=True)
def test_failed_authentications_at_par_are_throttled_as_at_token(client, portal):
    params, _ = _params(portal)
    wrong = dict(portal, client_secret="not-the-secret")
    statuses = [_push(client, wrong, params).status_code for _ in range(30)]
    assert statuses[0] == 401 and 429 in statuses
    assert _push(client, portal, params).status_code == 429
    assert token_request(client, portal, {"grant_type": "refresh_token", "refresh_token": "x"}).status_code == 429


def test_a_client_registered_to_require_par(app, signed_in):
    strict = make_client(app, name="Strict", extra=["--require-par"])
    signed_in.authorize(strict["client_id"])
    assert signed_in.status == 400 and "must push" in signed_in.text
    request_uri, params, _ = _pushed(signed_in.http, strict)
    _authorize(signed_in, strict["client_id"], request_uri)
    assert signed_in.callback_params()["state"] == params["state"]


def test_a_proof_at_par_binds_the_code_to_its_key(signed_in, portal):
    key = DPoPKey()
    params, verifier = _params(portal)
    first = _push(signed_in.http, portal, params, headers={"DPoP": key.proof("POST", "/par")})
    assert first.status_code == 400 and first.get_json()["error"] == "use_dpop_nonce"
    key.remember_nonce(first)
    pushed = _push(signed_in.http, portal, params, headers={"DPoP": key.proof("POST", "/par")})
    assert pushed.status_code == 201 and pushed.headers["DPoP-Nonce"]
    _authorize(signed_in, portal["client_id"], pushed.get_json()["request_uri"])
    data = {"grant_type": "authorization_code", "code": signed_in.callback_params()["code"],
            "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
    plain = token_request(signed_in.http, portal, data)
    assert plain.status_code == 400 and plain.get_json()["error"] == "invalid_grant"
    bound = token_request(signed_in.http, portal, data, headers={"DPoP": key.proof()})
    assert bound.status_code == 200 and bound.get_json()["token_type"] == "DPoP"


def test_a_proof_at_par_must_match_dpop_jkt(client, portal):
    key = DPoPKey()
    params, _ = _params(portal, dpop_jkt=DPoPKey().jkt)
    key.remember_nonce(_push(client, portal, params, headers={"DPoP": key.proof("POST", "/par")}))
    r = _push(client, portal, params, headers={"DPoP": key.proof("POST", "/par")})
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_dpop_proof"


def test_registration_metadata_says_par_is_required(app):
    strict = make_client(app, name="Strict", extra=["--require-par"])
    from idp.extensions import db
    from idp.models import Client

    with app.app_context():
        metadata = db.session.get(Client, strict["client_id"]).client_metadata
    assert metadata["require_pushed_authorization_requests"] is True

