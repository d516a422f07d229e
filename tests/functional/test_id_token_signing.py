"""The ID token is signed by the current key's kept signer (keys.sign_jwt): the same bytes as
joserfc's jwt.encode, which Authlib's encode_id_token uses, makes of the same claims."""

from __future__ import annotations

import pytest
from authlib.oidc.core import OpenIDToken
from joserfc import jwt

from idp import clock
from idp.oauth.oidc import IdToken
from idp.services import keys
from tests.helpers import FULL, decode, refresh, tokens_for


def test_sign_jwt_makes_what_joserfc_makes(app):
    claims = {"iss": "http://idp.test", "sub": "abc", "aud": "portal", "iat": 1, "exp": 2, "name": "Zoë Ångström",
              "amr": ["pwd", "otp", "mfa"], "administrations": [{"id": "x", "name": "Bakkerij \u201cJansen\u201d"}]}
    with app.app_context():
        kid, key = keys.signing_key()
        expected = jwt.encode({"alg": "RS256", "kid": kid, "typ": "JWT"}, dict(claims), key, ["RS256"])
        assert keys.sign_jwt(dict(claims)) == expected
        assert keys.sign_jwt(dict(claims)) == expected  # with the header kept from the first
        token = jwt.decode(expected, keys.public_keyset(), algorithms=["RS256"])
        assert token.header == {"typ": "JWT", "alg": "RS256", "kid": kid} and token.claims == claims


@pytest.fixture
def with_authlibs_id_token_too(monkeypatch):
    """Every ID token issued is also made by Authlib's encode_id_token (with the same claims
    hooks, signed by joserfc), at the same frozen moment; the pairs are collected."""
    made = []
    ours = IdToken.encode_id_token

    def both(self, token, request):
        frozen = clock._frozen
        clock.freeze(clock.now())
        try:
            made.append((ours(self, token, request), OpenIDToken.encode_id_token(self, token, request)))
        finally:
            clock.freeze(frozen)
        return made[-1][0]

    monkeypatch.setattr(IdToken, "encode_id_token", both)
    return made


def test_id_tokens_of_a_code_and_a_refresh_are_authlibs_bytes(app, signed_in, portal, person, with_authlibs_id_token_too):
    body = tokens_for(signed_in, portal, scope=FULL)
    again = refresh(signed_in.http, portal, body["refresh_token"])
    assert again.status_code == 200, again.get_json()
    made = with_authlibs_id_token_too
    assert [ours for ours, _ in made] == [body["id_token"], again.get_json()["id_token"]]
    assert all(ours == authlibs for ours, authlibs in made)
    claims = decode(signed_in.http, again.get_json()["id_token"]).claims
    assert claims["sub"] == person["sub"] and "at_hash" in claims and "nonce" not in claims
