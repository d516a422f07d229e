"""OpenID requests beyond the basics: request objects are refused (never ignored), as
discovery says, and userinfo takes the access token in a form-encoded POST body."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from idp import clock
from tests.helpers import REDIRECT_URI, exchange_code, make_client, token_request

FULL = "openid profile email offline_access administrations"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _unsigned(claims: dict) -> str:
    return f"{_b64({'alg': 'none'})}.{_b64(claims)}."


@pytest.fixture
def signed_in(browser, portal, person):
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0, 5))
    browser.authorize(portal["client_id"], scope=FULL)
    browser.sign_in(person["email"], person["password"], first_time=True)
    return browser


def test_discovery_says_request_objects_are_not_supported(client):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["request_parameter_supported"] is False
    assert meta["request_uri_parameter_supported"] is False


def test_an_unsigned_request_object_is_refused_not_ignored(signed_in, portal):
    request_object = _unsigned({"client_id": portal["client_id"], "response_type": "code",
                                "redirect_uri": REDIRECT_URI, "scope": "openid", "nonce": "from-the-object"})
    signed_in.authorize(portal["client_id"], request=request_object, state="st-obj")
    params = signed_in.callback_params()
    assert params["error"] == "request_not_supported" and params["state"] == "st-obj"
    assert "code" not in params


def test_a_request_object_is_refused_before_sign_in(browser, portal):
    browser.authorize(portal["client_id"], request=_unsigned({"scope": "openid"}))
    assert browser.callback_params()["error"] == "request_not_supported"


def test_a_request_uri_is_refused(signed_in, portal):
    signed_in.authorize(portal["client_id"], request_uri="https://app.test/request.jwt")
    params = signed_in.callback_params()
    assert params["error"] == "request_uri_not_supported" and "code" not in params


@pytest.fixture
def access_token(signed_in, portal):
    body = exchange_code(signed_in.http, portal, signed_in.callback_params()["code"], signed_in.verifier).get_json()
    return body["access_token"]


def test_userinfo_takes_the_access_token_in_a_form_body(client, access_token, person):
    response = client.post("/userinfo", data={"access_token": access_token})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["email"] == person["email"]


def test_userinfo_refuses_a_token_in_both_header_and_body(client, access_token):
    response = client.post("/userinfo", data={"access_token": access_token},
                           headers={"Authorization": "Bearer " + access_token})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"


def test_userinfo_refuses_a_wrong_token_in_the_body(client, access_token):
    assert client.post("/userinfo", data={"access_token": access_token + "x"}).status_code == 401


def test_userinfo_does_not_take_the_token_from_the_query(client, access_token):
    assert client.get("/userinfo?access_token=" + access_token).status_code == 401


def _claims(client, id_token: str) -> dict:
    from joserfc import jwt
    from joserfc.jwk import KeySet

    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    return jwt.decode(id_token, keys, algorithms=["RS256"]).claims


def test_a_refresh_brings_an_id_token_for_the_same_sign_in(signed_in, portal, client):
    first = exchange_code(signed_in.http, portal, signed_in.callback_params()["code"], signed_in.verifier).get_json()
    clock.advance(minutes=10)
    refreshed = token_request(client, portal, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert refreshed.status_code == 200
    before, after = _claims(client, first["id_token"]), _claims(client, refreshed.get_json()["id_token"])
    assert after["sub"] == before["sub"] and after["aud"] == before["aud"] and after["iss"] == before["iss"]
    assert after["auth_time"] == before["auth_time"]
    assert after["iat"] == before["iat"] + 600
    assert after["sid"] == before["sid"]
    # How the person signed in: the sign-in the family started with, not the refresh.
    assert after["amr"] == before["amr"] and set(after["amr"]) >= {"pwd", "otp", "mfa"}
    assert after["acr"] == before["acr"] == "https://refeds.org/profile/mfa"
    assert "nonce" not in after


def test_acr_values_are_answered_with_the_strength_of_the_sign_in(signed_in, portal, client):
    """The person signed in with a password and TOTP: the ID token says so in `acr`."""
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert "https://refeds.org/profile/mfa" in meta["acr_values_supported"] and "acr" in meta["claims_supported"]
    signed_in.authorize(portal["client_id"], acr_values="https://refeds.org/profile/mfa")
    body = exchange_code(signed_in.http, portal, signed_in.callback_params()["code"], signed_in.verifier).get_json()
    claims = _claims(client, body["id_token"])
    assert claims["acr"] == "https://refeds.org/profile/mfa"
    assert set(claims["amr"]) >= {"pwd", "otp"}


MFA = "https://refeds.org/profile/mfa"


def test_discovery_says_the_claims_parameter_is_supported(client):
    assert client.get("/.well-known/openid-configuration").get_json()["claims_parameter_supported"] is True


def _id_token_for(browser, portal, client, **params):
    browser.authorize(portal["client_id"], **params)
    body = exchange_code(browser.http, portal, browser.callback_params()["code"], browser.verifier).get_json()
    return _claims(client, body["id_token"])


def test_an_essential_acr_that_is_met_is_in_the_id_token(signed_in, portal, client):
    """With only `openid` granted, the e-mail address is in the ID token because the claims
    parameter asked for it, beside the essential `acr`."""
    claims = json.dumps({"id_token": {"acr": {"essential": True, "values": [MFA]}, "email": {"essential": True}}})
    token = _id_token_for(signed_in, portal, client, scope="openid", claims=claims)
    assert token["acr"] == MFA and token["email"] == "anna@example.com"
    assert "email_verified" not in token and "name" not in token


def test_an_essential_acr_that_cannot_be_met_is_refused(signed_in, portal):
    claims = json.dumps({"id_token": {"acr": {"essential": True, "value": "urn:example:acr:phishing-resistant"}}})
    signed_in.authorize(portal["client_id"], claims=claims)
    params = signed_in.callback_params()
    assert params["error"] == "unmet_authentication_requirements" and "code" not in params


def test_a_voluntary_acr_that_cannot_be_met_is_answered_with_the_real_one(signed_in, portal, client):
    claims = json.dumps({"id_token": {"acr": {"values": ["urn:example:acr:phishing-resistant"]}}})
    assert _id_token_for(signed_in, portal, client, claims=claims)["acr"] == MFA


@pytest.mark.parametrize("claims", ["not json", "[]", '{"id_token": []}', '{"userinfo": {"email": {"essential": 1}}}',
                                    '{"id_token": {"acr": {"values": "x"}}}', '{"id_token": {"email": 5}}'])
def test_a_malformed_claims_parameter_is_refused(signed_in, portal, claims):
    signed_in.authorize(portal["client_id"], claims=claims)
    assert signed_in.callback_params()["error"] == "invalid_request"


# -- claims asked for by name (OpenID Connect Core 5.5) -----------------------------------


def _userinfo(http, access_token) -> dict:
    response = http.get("/userinfo", headers={"Authorization": "Bearer " + access_token})
    assert response.status_code == 200, response.get_data()[:300]
    return response.get_json()


def _tokens_for(browser, app_client, **params) -> dict:
    browser.authorize(app_client["client_id"], **params)
    response = exchange_code(browser.http, app_client, browser.callback_params()["code"], browser.verifier)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_a_claim_asked_for_at_userinfo_is_released_there_only(signed_in, portal, client):
    claims = json.dumps({"userinfo": {"email": None}})
    body = _tokens_for(signed_in, portal, scope="openid", claims=claims)
    assert body["scope"].split() == ["openid"]  # the scope stays what was asked for
    assert _userinfo(signed_in.http, body["access_token"]) == {"sub": signed_in_sub(client, body),
                                                               "email": "anna@example.com"}
    assert "email" not in _claims(client, body["id_token"])


def signed_in_sub(client, body) -> str:
    return _claims(client, body["id_token"])["sub"]


def test_claims_asked_for_in_the_id_token_are_released_there_only(signed_in, portal, client):
    claims = json.dumps({"id_token": {"name": {"essential": True}, "email_verified": {"value": True},
                                      "administrations": {"values": [[]]}}})
    body = _tokens_for(signed_in, portal, scope="openid", claims=claims)
    token = _claims(client, body["id_token"])
    assert token["name"] == "Anna de Vries" and token["email_verified"] is True
    assert token["administrations"] == [] and "email" not in token
    assert set(_userinfo(signed_in.http, body["access_token"])) == {"sub"}


def test_claims_asked_for_stay_with_the_refreshed_tokens(signed_in, portal, client):
    claims = json.dumps({"userinfo": {"name": None}, "id_token": {"email": None}})
    body = _tokens_for(signed_in, portal, scope="openid offline_access", claims=claims)
    renewed = token_request(signed_in.http, portal, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    assert renewed.status_code == 200, renewed.get_json()
    renewed = renewed.get_json()
    assert _claims(client, renewed["id_token"])["email"] == "anna@example.com"
    assert "name" not in _claims(client, renewed["id_token"])
    assert _userinfo(signed_in.http, renewed["access_token"])["name"] == "Anna de Vries"


def test_claims_the_provider_does_not_have_are_left_out(signed_in, portal, client):
    claims = json.dumps({"userinfo": {"phone_number": {"essential": True}, "sub": {"value": "someone-else"}},
                         "id_token": {"address": None, "nonce": None}})
    body = _tokens_for(signed_in, portal, scope="openid", claims=claims)
    info = _userinfo(signed_in.http, body["access_token"])
    assert set(info) == {"sub"} and info["sub"] == signed_in_sub(client, body)
    assert "address" not in _claims(client, body["id_token"])


def test_a_claim_outside_the_clients_registered_scopes_is_not_released(app, signed_in, client):
    narrow = make_client(app, name="Narrow app", extra=["--scope", "openid", "--scope", "profile"])
    claims = json.dumps({"userinfo": {"email": None, "name": None}, "id_token": {"email": None}})
    body = _tokens_for(signed_in, narrow, scope="openid", claims=claims)
    info = _userinfo(signed_in.http, body["access_token"])
    assert "email" not in info and info["name"] == "Anna de Vries"
    assert "email" not in _claims(client, body["id_token"])


def test_a_third_party_app_gets_a_claim_asked_for_only_with_consent(signed_in, third_party):
    claims = json.dumps({"userinfo": {"email": None}})
    signed_in.authorize(third_party["client_id"], scope="openid", claims=claims, prompt="none")
    assert signed_in.callback_params()["error"] == "consent_required"
    signed_in.authorize(third_party["client_id"], scope="openid", claims=claims, ui_locales="en")
    assert signed_in.step_state == "consent"
    assert "Your e-mail address" in signed_in.text  # what the claim reveals is asked for
    signed_in.submit(decision="allow")
    code = signed_in.callback_params()["code"]
    body = exchange_code(signed_in.http, third_party, code, signed_in.verifier).get_json()
    assert _userinfo(signed_in.http, body["access_token"])["email"] == "anna@example.com"
    # The consent covers it from now on; without the claim, only the scope asked for is asked.
    signed_in.authorize(third_party["client_id"], scope="openid", claims=claims, prompt="none")
    assert "code" in signed_in.callback_params()


def test_a_third_party_app_denied_consent_gets_no_claim(signed_in, third_party):
    signed_in.authorize(third_party["client_id"], scope="openid", claims=json.dumps({"userinfo": {"email": None}}))
    assert signed_in.step_state == "consent"
    signed_in.submit(decision="deny")
    assert signed_in.callback_params()["error"] == "access_denied"
