"""What a token request may get: machine scopes limited to the client's, bounded nonces,
introspection of a client's own tokens only."""

from __future__ import annotations

from tests.helpers import exchange_code, introspect, make_client, signed_in_browser, token_request


def test_machine_tokens_carry_only_registered_scopes(app, client):
    service = make_client(app, name="Bank", grant_types=("client_credentials",), extra=["--scope", "openid"])
    body = token_request(client, service, {"grant_type": "client_credentials", "scope": "read payments:write admin"}).get_json()
    assert "scope" not in body


def test_long_nonce_is_refused(browser, portal, person):
    b = signed_in_browser(browser, portal, person)
    b.authorize(portal["client_id"], nonce="n" * 600)
    assert b.callback_params()["error"] == "invalid_request"


def test_introspection_only_for_the_tokens_client(app, browser, portal, person):
    b = signed_in_browser(browser, portal, person)
    access = exchange_code(b.http, portal, b.first_code, b.verifier).get_json()["access_token"]
    other = make_client(app, name="Other")
    assert introspect(b.http, other, access) == {"active": False}
    assert introspect(b.http, portal, access)["active"] is True
