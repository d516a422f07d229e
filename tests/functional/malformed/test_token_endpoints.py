"""Malformed requests to /token, /introspect and /revoke: RFC 6749 errors, never a 500."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import REDIRECT_URI, basic

from .strategies import (
    AUTH_MODES,
    FAST,
    GRANT_TYPES,
    MAX_BODY,
    MORE,
    SMALL_PAIRS,
    TOKEN_PAIRS,
    b64,
    form_body,
    placeholders,
    resolve_pairs,
    send,
    token_auth,
    token_error,
)


@MORE
@given(grant_type=GRANT_TYPES, pairs=TOKEN_PAIRS, mode=AUTH_MODES, grant_twice=st.booleans(), grant_first=st.booleans())
def test_token_requests_with_any_grant_type(client, portal, machine, public_app, grant_type, pairs, mode, grant_twice, grant_first):
    ctx = placeholders(portal)
    headers, auth_fields = token_auth(mode, portal, machine, public_app)
    fields = resolve_pairs(pairs, ctx)
    grant = [("grant_type", grant_type)] * (2 if grant_twice else 1)
    body_pairs = (grant + auth_fields + fields) if grant_first else (auth_fields + fields + grant)
    body = form_body(body_pairs)
    what = f"POST /token headers={headers!r} body={body[:500]!r}"
    response = send(client, "POST", "/token", data=body, content_type="application/x-www-form-urlencoded", headers=headers)
    if len(body) > MAX_BODY:
        assert response.status_code == 413, what
        return
    if response.status_code == 200:
        effective = parse_qs(body.decode(), keep_blank_values=True)
        assert mode.startswith("machine") and effective["grant_type"] == ["client_credentials"], what
        assert response.get_json()["token_type"] == "Bearer"
        assert response.headers["Cache-Control"] == "no-store"
        return
    token_error(response, "Authorization" in headers, what)


@pytest.mark.parametrize("grant_type", ["authorization_code", "refresh_token", "client_credentials", "password", "implicit", ""])
@pytest.mark.parametrize("content_type,body", [
    ("application/json", b'{"grant_type": "%s", "code": "x"}'),
    ("text/plain", b"grant_type=%s&code=x"),
    ("multipart/form-data; boundary=nope", b"grant_type=%s"),
    ("application/x-www-form-urlencoded", b"\xff\xfe%s\x00"),
], ids=["json", "text", "bad-multipart", "binary"])
def test_token_with_wrong_content_type_is_a_json_error(client, portal, grant_type, content_type, body):
    body = body.replace(b"%s", grant_type.encode())
    response = send(client, "POST", "/token", data=body, content_type=content_type, headers=basic(portal))
    token_error(response, True, f"POST /token {content_type} {body!r}")


def test_token_errors_with_the_right_status(client, portal):
    cases = [
        ({}, [("grant_type", "authorization_code"), ("code", "x"), ("code_verifier", "y")], 401),  # no client auth
        (basic(portal), [], 400),
        (basic(portal), [("grant_type", "nonsense")], 400),
        (basic(portal), [("grant_type", "authorization_code")], 400),
        (basic(portal), [("grant_type", "authorization_code"), ("code", "nope"), ("redirect_uri", REDIRECT_URI),
                         ("code_verifier", "v" * 50)], 400),
        (basic(portal), [("grant_type", "refresh_token"), ("refresh_token", "nope")], 400),
        (basic(portal), [("grant_type", "client_credentials")], 400),
        ({"Authorization": "Basic " + b64(b"nobody:nothing")}, [("grant_type", "client_credentials")], 401),
    ]
    for headers, pairs, status in cases:
        response = send(client, "POST", "/token", data=form_body(pairs), content_type="application/x-www-form-urlencoded",
                        headers=headers)
        token_error(response, bool(headers), f"{headers} {pairs}")
        assert response.status_code == status, (headers, pairs, response.status_code, response.get_json())


# -- introspection and revocation with a valid client --------------------------------------------------------


@FAST
@given(path=st.sampled_from(["/introspect", "/revoke"]), pairs=SMALL_PAIRS, auth=st.sampled_from(["basic", "post", "none"]))
def test_introspect_and_revoke_with_malformed_tokens(client, portal, machine, path, pairs, auth):
    ctx = placeholders(portal)
    headers, auth_fields = token_auth(auth, portal, machine, None)
    body = form_body(auth_fields + resolve_pairs(pairs, ctx))
    response = send(client, "POST", path, data=body, content_type="application/x-www-form-urlencoded", headers=headers)
    assert response.status_code in (200, 400, 401, 413), (path, body[:300], response.status_code)
    if response.status_code in (400, 401):
        assert response.mimetype == "application/json", response.get_data()[:300]
        assert isinstance(response.get_json().get("error"), str)
    if path == "/introspect" and response.status_code == 200:
        assert response.get_json() == {"active": False}, (body[:300], response.get_json())
