"""JWT access tokens (RFC 9068) for clients registered with `--access-token-format jwt`: what
they say, and that introspection, userinfo, revocation and families treat them as opaque ones."""

from __future__ import annotations

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from idp import clock
from tests.helpers import (FULL, T0, basic, cli_runner, exchange_code, introspect, make_client, make_connector,
                           refresh, token_request, tokens_for)

MFA = "https://refeds.org/profile/mfa"


def _read(http, token: str):
    """The token as a resource server reads it: checked against the published keys."""
    return jwt.decode(token, KeySet.import_key_set(http.get("/jwks.json").get_json()), algorithms=["RS256"])


@pytest.fixture
def jwt_portal(app):
    return make_client(app, name="API portal", extra=["--access-token-format", "jwt"])


@pytest.fixture
def signed_in(browser, jwt_portal, person):
    clock.freeze(T0)
    browser.authorize(jwt_portal["client_id"], scope=FULL)
    browser.sign_in(person["email"], person["password"], first_time=True)
    return browser


def test_a_people_token_is_a_signed_jwt_that_says_who_and_how(signed_in, jwt_portal, person, client):
    body = exchange_code(signed_in.http, jwt_portal, signed_in.callback_params()["code"], signed_in.verifier).get_json()
    token = _read(client, body["access_token"])
    kids = {key["kid"] for key in client.get("/jwks.json").get_json()["keys"]}
    assert token.header["typ"] == "at+jwt" and token.header["alg"] == "RS256" and token.header["kid"] in kids
    claims = token.claims
    assert claims["iss"] == "http://idp.test" and claims["sub"] == person["sub"]
    assert claims["aud"] == claims["client_id"] == jwt_portal["client_id"]
    assert claims["iat"] == clock.timestamp() and claims["exp"] == claims["iat"] + body["expires_in"]
    assert claims["scope"] == body["scope"] and len(claims["jti"]) >= 16
    assert claims["auth_time"] == clock.timestamp() and claims["acr"] == MFA and {"pwd", "otp", "mfa"} <= set(claims["amr"])
    # The ID token's at_hash is the hash of this JWT.
    assert "at_hash" in _read(client, body["id_token"]).claims


def test_introspection_userinfo_and_revocation_work_as_for_opaque_tokens(signed_in, jwt_portal, person, client):
    signed_in.authorize(jwt_portal["client_id"], scope="openid email")
    body = exchange_code(signed_in.http, jwt_portal, signed_in.callback_params()["code"], signed_in.verifier).get_json()
    bearer = {"Authorization": "Bearer " + body["access_token"]}
    seen = introspect(client, jwt_portal, body["access_token"])
    assert seen["active"] is True and seen["sub"] == person["sub"] and seen["client_id"] == jwt_portal["client_id"]
    assert client.get("/userinfo", headers=bearer).get_json()["email"] == person["email"]
    revoked = client.post("/revoke", data={"token": body["access_token"]}, headers=basic(jwt_portal))
    assert revoked.status_code == 200
    assert introspect(client, jwt_portal, body["access_token"]) == {"active": False}
    assert client.get("/userinfo", headers=bearer).status_code == 401


def test_a_refresh_brings_a_new_jwt_of_the_same_sign_in_and_reuse_kills_it(signed_in, jwt_portal, client):
    first = tokens_for(signed_in, jwt_portal)
    clock.advance(minutes=10)
    second = refresh(client, jwt_portal, first["refresh_token"]).get_json()
    before, after = _read(client, first["access_token"]).claims, _read(client, second["access_token"]).claims
    assert after["iat"] == before["iat"] + 600 and after["jti"] != before["jti"]
    assert (after["sub"], after["auth_time"], after["amr"], after["acr"]) == (
        before["sub"], before["auth_time"], before["amr"], before["acr"])
    assert refresh(client, jwt_portal, first["refresh_token"]).status_code == 400  # a replay
    assert introspect(client, jwt_portal, second["access_token"]) == {"active": False}


def test_client_credentials_jwt_is_self_contained_and_revocable(app, client):
    api = make_client(app, name="Scanner", grant_types=("client_credentials",),
                      extra=["--access-token-format", "jwt"])
    body = token_request(client, api, {"grant_type": "client_credentials", "scope": "openid"}).get_json()
    claims = _read(client, body["access_token"]).claims
    assert claims["sub"] == claims["client_id"] == claims["aud"] == api["client_id"]
    assert "auth_time" not in claims and "amr" not in claims and "scope" not in claims  # no person's scope
    assert introspect(client, api, body["access_token"])["active"] is True
    assert client.post("/revoke", data={"token": body["access_token"]}, headers=basic(api)).status_code == 200
    assert introspect(client, api, body["access_token"]) == {"active": False}


def test_a_forged_or_foreign_jwt_is_not_a_token(app, client):
    api = make_client(app, name="Scanner", grant_types=("client_credentials",),
                      extra=["--access-token-format", "jwt"])
    value = token_request(client, api, {"grant_type": "client_credentials"}).get_json()["access_token"]
    header, payload, signature = value.split(".")
    tampered = ".".join([header, payload, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")])
    assert introspect(client, api, tampered) == {"active": False}
    stranger = jwt.encode({"alg": "RS256", "typ": "at+jwt"}, {
        "iss": "http://idp.test", "sub": api["client_id"], "client_id": api["client_id"], "aud": api["client_id"],
        "iat": clock.timestamp(), "exp": clock.timestamp() + 600, "jti": "x" * 16}, RSAKey.generate_key(2048))
    assert introspect(client, api, stranger) == {"active": False}


def test_a_connector_users_jwt_names_the_username_and_administration(app, client):
    bank = make_client(app, name="Bank", grant_types=("password",), extra=["--access-token-format", "jwt"])
    connector = make_connector(app)
    body = token_request(client, bank, {"grant_type": "password", "username": connector["username"],
                                        "password": connector["password"]}).get_json()
    claims = _read(client, body["access_token"]).claims
    assert claims["sub"] == connector["username"] and claims["administration"] == connector["administration"]
    assert claims["amr"] == ["pwd"] and "acr" not in claims
    assert introspect(client, bank, body["access_token"])["sub"] == connector["username"]


def test_opaque_stays_the_default(app, client, browser, portal, person):
    clock.freeze(T0)
    browser.authorize(portal["client_id"])
    browser.sign_in(person["email"], person["password"], first_time=True)
    body = exchange_code(browser.http, portal, browser.callback_params()["code"], browser.verifier).get_json()
    assert body["access_token"].count(".") == 0
    bad = cli_runner(app).invoke(args=["clients", "create", "--name", "X", "--redirect-uri",
                                       "http://app.test/cb", "--access-token-format", "paseto"])
    assert bad.exit_code != 0
