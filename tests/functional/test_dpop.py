"""DPoP (RFC 9449): proofs at the token endpoint, the server's nonces, tokens bound to a key,
and userinfo and introspection honouring the binding."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from joserfc.jwk import ECKey, OctKey, RSAKey

from idp import clock
from tests.helpers import (
    FULL,
    DPoPKey,
    basic,
    dpop_token_request,
    exchange_code,
    introspect,
    make_client,
    refresh,
    token_request,
)


@pytest.fixture
def key():
    return DPoPKey()


def _code(browser, client, **params) -> str:
    browser.authorize(client["client_id"], scope=FULL, **params)
    return browser.callback_params()["code"]


def _code_data(browser, code) -> dict:
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": browser.auth_request["redirect_uri"],
            "code_verifier": browser.verifier}


def _dpop_tokens(browser, client, key, auth="basic", **params) -> dict:
    code = _code(browser, client, **params)
    response = dpop_token_request(browser.http, client, _code_data(browser, code), key, auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _userinfo(http, access_token, key=None, scheme="DPoP", **proof):
    headers = {"Authorization": f"{scheme} {access_token}"}
    if key is not None:
        headers["DPoP"] = key.proof("GET", "/userinfo", access_token=access_token, **proof)
    return http.get("/userinfo", headers=headers)


# -- discovery and the nonce ---------------------------------------------------------------


def test_discovery_advertises_dpop(client):
    doc = client.get("/.well-known/openid-configuration").get_json()
    assert doc["dpop_signing_alg_values_supported"] == ["ES256", "ES384", "PS256", "RS256"]


def test_a_proof_without_the_nonce_is_answered_with_one_and_spends_nothing(signed_in, portal, key):
    code = _code(signed_in, portal)
    first = token_request(signed_in.http, portal, _code_data(signed_in, code), headers={"DPoP": key.proof()})
    assert first.status_code == 400 and first.get_json()["error"] == "use_dpop_nonce"
    nonce = first.headers["DPoP-Nonce"]
    # The code is still good: the refusal came before it was looked at.
    again = token_request(signed_in.http, portal, _code_data(signed_in, code), headers={"DPoP": key.proof(nonce=nonce)})
    assert again.status_code == 200, again.get_json()
    body = again.get_json()
    assert body["token_type"] == "DPoP" and again.headers["DPoP-Nonce"]


def test_a_nonce_lasts_its_period_and_the_next(app, signed_in, portal, key):
    _dpop_tokens(signed_in, portal, key)
    clock.advance(seconds=app.config["DPOP_NONCE_LIFETIME"])
    code = _code(signed_in, portal)
    assert token_request(signed_in.http, portal, _code_data(signed_in, code),
                         headers={"DPoP": key.proof()}).status_code == 200
    clock.advance(seconds=2 * app.config["DPOP_NONCE_LIFETIME"])
    code = _code(signed_in, portal)
    stale = token_request(signed_in.http, portal, _code_data(signed_in, code), headers={"DPoP": key.proof()})
    assert stale.status_code == 400 and stale.get_json()["error"] == "use_dpop_nonce"
    assert stale.headers["DPoP-Nonce"] != key.nonce


def test_a_nonce_of_another_secret_is_refused(signed_in, portal, key):
    code = _code(signed_in, portal)
    forged = f"{clock.timestamp() // 300}.AAAAAAAAAAAAAAAAAAAAAA"
    r = token_request(signed_in.http, portal, _code_data(signed_in, code), headers={"DPoP": key.proof(nonce=forged)})
    assert r.status_code == 400 and r.get_json()["error"] == "use_dpop_nonce"


@pytest.mark.config(DPOP_NONCE_REQUIRED=False)
def test_without_the_nonce_policy_a_proof_needs_none(signed_in, portal, key):
    code = _code(signed_in, portal)
    r = token_request(signed_in.http, portal, _code_data(signed_in, code), headers={"DPoP": key.proof()})
    assert r.status_code == 200 and r.get_json()["token_type"] == "DPoP"


# -- bound tokens ---------------------------------------------------------------------------


def test_a_bound_access_token_at_userinfo_and_introspection(signed_in, portal, person, key):
    body = _dpop_tokens(signed_in, portal, key)
    access = body["access_token"]
    info = introspect(signed_in.http, portal, access)
    assert info["active"] and info["token_type"] == "DPoP" and info["cnf"] == {"jkt": key.jkt}
    r = _userinfo(signed_in.http, access, key)
    assert r.status_code == 200 and r.get_json()["sub"] == person["sub"]
    assert r.headers["DPoP-Nonce"]


def test_a_bound_token_is_refused_without_a_matching_proof(signed_in, portal, key):
    access = _dpop_tokens(signed_in, portal, key)["access_token"]
    http = signed_in.http
    as_bearer = _userinfo(http, access, scheme="Bearer")
    assert as_bearer.status_code == 401
    assert as_bearer.headers["WWW-Authenticate"].startswith('DPoP error="invalid_token"')
    assert http.post("/userinfo", data={"access_token": access}).status_code == 401
    no_proof = _userinfo(http, access)
    assert no_proof.status_code == 401 and 'error="invalid_dpop_proof"' in no_proof.headers["WWW-Authenticate"]
    other_key = _userinfo(http, access, DPoPKey())
    assert other_key.status_code == 401 and 'error="invalid_token"' in other_key.headers["WWW-Authenticate"]
    wrong_ath = http.get("/userinfo", headers={"Authorization": f"DPoP {access}",
                                               "DPoP": key.proof("GET", "/userinfo", access_token="another")})
    assert wrong_ath.status_code == 401 and "ath" in wrong_ath.headers["WWW-Authenticate"]
    no_ath = http.get("/userinfo", headers={"Authorization": f"DPoP {access}", "DPoP": key.proof("GET", "/userinfo")})
    assert no_ath.status_code == 401 and "ath" in no_ath.headers["WWW-Authenticate"]
    wrong_method = http.get("/userinfo", headers={"Authorization": f"DPoP {access}",
                                                  "DPoP": key.proof("POST", "/userinfo", access_token=access)})
    assert wrong_method.status_code == 401 and "htm" in wrong_method.headers["WWW-Authenticate"]
    replayed = key.proof("GET", "/userinfo", access_token=access)
    headers = {"Authorization": f"DPoP {access}", "DPoP": replayed}
    assert http.get("/userinfo", headers=headers).status_code == 200
    again = http.get("/userinfo", headers=headers)
    assert again.status_code == 401 and "used before" in again.headers["WWW-Authenticate"]


def test_userinfo_takes_a_proof_without_nonce_and_refuses_a_stale_one(app, signed_in, portal, key):
    access = _dpop_tokens(signed_in, portal, key)["access_token"]
    assert _userinfo(signed_in.http, access, key, nonce=None).status_code == 200
    stale = _userinfo(signed_in.http, access, key, nonce="1.AAAAAAAAAAAAAAAAAAAAAA")
    assert stale.status_code == 401 and 'error="use_dpop_nonce"' in stale.headers["WWW-Authenticate"]
    assert stale.headers["DPoP-Nonce"]


def test_a_bearer_token_is_refused_with_the_dpop_scheme(signed_in, portal, key):
    body = exchange_code(signed_in.http, portal, signed_in.first_code, signed_in.verifier).get_json()
    assert body["token_type"] == "Bearer"
    r = _userinfo(signed_in.http, body["access_token"], key)
    assert r.status_code == 401 and "not bound" in r.headers["WWW-Authenticate"]
    assert introspect(signed_in.http, portal, body["access_token"])["token_type"] == "Bearer"


def test_a_confidential_clients_refresh_token_is_not_bound(signed_in, portal, key):
    body = _dpop_tokens(signed_in, portal, key)
    plain = refresh(signed_in.http, portal, body["refresh_token"])
    assert plain.status_code == 200 and plain.get_json()["token_type"] == "Bearer"
    other = DPoPKey()
    bound = dpop_token_request(signed_in.http, portal, {"grant_type": "refresh_token",
                                                        "refresh_token": plain.get_json()["refresh_token"]}, other)
    assert bound.status_code == 200 and bound.get_json()["token_type"] == "DPoP"
    assert introspect(signed_in.http, portal, bound.get_json()["access_token"])["cnf"] == {"jkt": other.jkt}


def _audit(cli) -> list[dict]:
    result = cli.invoke(args=["audit", "list", "--json", "--limit", "5"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_public_clients_refresh_token_is_bound_to_its_key(cli, signed_in, public_app, key):
    body = _dpop_tokens(signed_in, public_app, key, auth="none")
    data = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    without = token_request(signed_in.http, public_app, data, "none")
    assert without.status_code == 400 and without.get_json()["error"] == "invalid_grant"
    thief = dpop_token_request(signed_in.http, public_app, data, DPoPKey(), "none")
    assert thief.status_code == 400 and thief.get_json()["error"] == "invalid_grant"
    assert [e["action"] for e in _audit(cli)[:2]] == ["refresh_token.dpop_refused"] * 2
    # Refused, not spent: the app itself still refreshes, and the new tokens keep the key.
    renewed = dpop_token_request(signed_in.http, public_app, data, key, "none")
    assert renewed.status_code == 200 and renewed.get_json()["token_type"] == "DPoP"
    assert _userinfo(signed_in.http, renewed.get_json()["access_token"], key).status_code == 200


def test_a_code_bound_with_dpop_jkt_needs_that_key(cli, signed_in, public_app, key):
    code = _code(signed_in, public_app, dpop_jkt=key.jkt)
    data = _code_data(signed_in, code)
    plain = token_request(signed_in.http, public_app, data, "none")
    assert plain.status_code == 400 and plain.get_json()["error"] == "invalid_grant"
    assert _audit(cli)[0]["action"] == "authorization_code.dpop_refused"
    assert dpop_token_request(signed_in.http, public_app, data, DPoPKey(), "none").status_code == 400
    good = dpop_token_request(signed_in.http, public_app, data, key, "none")
    assert good.status_code == 200 and good.get_json()["token_type"] == "DPoP"


def test_an_invalid_dpop_jkt_is_refused_at_authorize(signed_in, public_app):
    signed_in.authorize(public_app["client_id"], dpop_jkt="not-a-thumbprint")
    assert signed_in.callback_params()["error"] == "invalid_request"


def test_client_credentials_tokens_carry_the_binding(app, client, key):
    service = make_client(app, name="Bank", grant_types=("client_credentials",))
    r = dpop_token_request(client, service, {"grant_type": "client_credentials"}, key)
    assert r.status_code == 200 and r.get_json()["token_type"] == "DPoP"
    info = introspect(client, service, r.get_json()["access_token"])
    assert info["active"] and info["cnf"] == {"jkt": key.jkt}


# -- refused proofs at the token endpoint ----------------------------------------------------

OTHER = ECKey.generate_key("P-256")


def _bad_proofs(key: DPoPKey) -> dict[str, str | list[str]]:
    now = clock.timestamp()
    rsa = RSAKey.generate_key(2048)
    return {
        "typ": key.proof(header={"typ": "JWT"}),
        "alg-none": key.proof(header={"alg": "none"}),
        "alg-hmac": key.proof(header={"alg": "HS256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}},
                              sign_with=OctKey.import_key("secret-secret-secret-secret-secret!")),
        "private-jwk": key.proof(header={"jwk": key.key.as_dict(private=True)}),
        "no-jwk": key.proof(header={"jwk": None}),
        "not-a-key": key.proof(header={"jwk": {"kty": "EC", "crv": "P-256"}}),
        "signature": key.proof(sign_with=OTHER),
        "key-of-another-type": key.proof(header={"jwk": rsa.as_dict(private=False)}),
        "htm": key.proof(method="GET"),
        "htu-path": key.proof(path="/userinfo"),
        "htu-host": key.proof(claims={"htu": "http://evil.test/token"}),
        "iat-old": key.proof(claims={"iat": now - 121}),
        "iat-future": key.proof(claims={"iat": now + 121}),
        "iat-text": key.proof(claims={"iat": str(now)}),
        "no-jti": key.proof(claims={"jti": None}),
        "jti-huge": key.proof(claims={"jti": "j" * 257}),
        "two-proofs": [key.proof(), key.proof()],
        "garbage": "not.a.jws",
        "huge": "a" * 9000,
    }


@pytest.mark.parametrize("name", ["typ", "alg-none", "alg-hmac", "private-jwk", "no-jwk", "not-a-key", "signature",
                                  "key-of-another-type", "htm", "htu-path", "htu-host", "iat-old", "iat-future",
                                  "iat-text", "no-jti", "jti-huge", "two-proofs", "garbage", "huge"])
def test_a_bad_proof_is_refused_and_the_code_stays_good(app, signed_in, portal, key, name):
    _dpop_tokens(signed_in, portal, key)  # the key has the provider's nonce now
    code = _code(signed_in, portal)
    data = _code_data(signed_in, code)
    proof = _bad_proofs(key)[name]
    headers = [("DPoP", p) for p in proof] if isinstance(proof, list) else [("DPoP", proof)]
    headers.append(("Authorization", basic(portal)["Authorization"]))
    r = signed_in.http.post("/token", data=data, headers=headers)
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_dpop_proof", (name, r.get_json())
    assert "DPoP-Nonce" not in r.headers
    assert token_request(signed_in.http, portal, data, headers={"DPoP": key.proof()}).status_code == 200


def test_htu_with_a_query_or_another_spelling_of_the_host_is_the_same_target(signed_in, portal, key):
    _dpop_tokens(signed_in, portal, key)
    for htu in ("http://idp.test/token?x=1#f", "HTTP://IDP.TEST:80/token"):
        code = _code(signed_in, portal)
        r = token_request(signed_in.http, portal, _code_data(signed_in, code),
                          headers={"DPoP": key.proof(claims={"htu": htu})})
        assert r.status_code == 200, (htu, r.get_json())


def test_a_replayed_proof_is_refused(signed_in, portal, key):
    _dpop_tokens(signed_in, portal, key)
    proof = key.proof()
    code = _code(signed_in, portal)
    assert token_request(signed_in.http, portal, _code_data(signed_in, code), headers={"DPoP": proof}).status_code == 200
    code = _code(signed_in, portal)
    r = token_request(signed_in.http, portal, _code_data(signed_in, code), headers={"DPoP": proof})
    assert r.status_code == 400 and r.get_json() == {"error": "invalid_dpop_proof",
                                                     "error_description": "The DPoP proof was used before."}


def test_an_rsa_key_proves_as_well(signed_in, portal):
    key = DPoPKey(RSAKey.generate_key(2048))
    code = _code(signed_in, portal)
    data = _code_data(signed_in, code)
    first = token_request(signed_in.http, portal, data, headers={"DPoP": key.proof(header={"alg": "PS256"})})
    assert first.get_json()["error"] == "use_dpop_nonce", first.get_json()
    key.remember_nonce(first)
    r = token_request(signed_in.http, portal, data, headers={"DPoP": key.proof(header={"alg": "PS256"})})
    assert r.status_code == 200 and r.get_json()["token_type"] == "DPoP"


# -- public clients' refresh lifetimes --------------------------------------------------------


def test_a_public_clients_refresh_token_expires_when_idle(app, signed_in, public_app):
    body = _dpop_tokens(signed_in, public_app, DPoPKey(), auth="none")
    idle = app.config["PUBLIC_REFRESH_IDLE_LIFETIME"]
    clock.advance(seconds=idle + 1)
    r = token_request(signed_in.http, public_app, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}, "none")
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"


def test_a_public_clients_refresh_family_ends_at_its_absolute_lifetime(app, signed_in, public_app):
    key = DPoPKey()
    body = _dpop_tokens(signed_in, public_app, key, auth="none")
    absolute = dt.timedelta(seconds=app.config["PUBLIC_REFRESH_ABSOLUTE_LIFETIME"])
    idle = dt.timedelta(seconds=app.config["PUBLIC_REFRESH_IDLE_LIFETIME"])
    started = clock.now()
    while clock.now() + idle < started + absolute:
        clock.advance(seconds=idle.total_seconds() - 60)
        r = dpop_token_request(signed_in.http, public_app,
                               {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}, key, "none")
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
    clock.freeze(started + absolute + dt.timedelta(seconds=1))
    r = dpop_token_request(signed_in.http, public_app, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
                           key, "none")
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"


def test_a_confidential_clients_refresh_token_keeps_its_lifetime(app, signed_in, portal):
    code = _code(signed_in, portal)
    body = token_request(signed_in.http, portal, _code_data(signed_in, code)).get_json()
    clock.advance(seconds=app.config["PUBLIC_REFRESH_ABSOLUTE_LIFETIME"] + 1)
    assert refresh(signed_in.http, portal, body["refresh_token"]).status_code == 200
