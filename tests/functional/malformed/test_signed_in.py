"""Malformed parameters on the paths that only run with an SSO session, and at /userinfo."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from flask import request
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import ISSUER, REDIRECT_URI, pkce_pair, token_request

from .strategies import (
    AUTH_HEADERS,
    FAST,
    KEYS,
    MORE,
    ODD_BODIES,
    SIGNED_IN_KEYS,
    SMALL_VALUES,
    form_body,
    placeholders,
    resolve,
    resolve_pairs,
    send,
)


@MORE
@given(path=st.sampled_from(["/authorize", "/authorize", "/authorize", "/logout", "/account", "/", "/userinfo"]),
       method=st.sampled_from(["GET", "POST"]),
       pairs=st.lists(st.tuples(st.one_of(st.sampled_from(SIGNED_IN_KEYS), KEYS), SMALL_VALUES), max_size=6))
def test_signed_in_endpoints_take_malformed_parameters(app, portal, third_party, signed_in, path, method, pairs):
    b = signed_in
    ctx = placeholders(portal, third_party, **{"{id_token}": b.id_token})
    _, challenge = pkce_pair()
    base = {"response_type": "code", "client_id": portal["client_id"], "redirect_uri": REDIRECT_URI, "scope": "openid",
            "code_challenge": challenge, "code_challenge_method": "S256"} if path == "/authorize" else {}
    extra = resolve_pairs(pairs, ctx)
    replaced = {k for k, _ in extra}
    params = [(k, v) for k, v in base.items() if k not in replaced] + extra
    body = form_body(params)
    if method == "GET" or path in ("/account", "/"):
        response = send(b.http, "GET", path, query_string=body)
    else:
        response = send(b.http, "POST", path, data=body, content_type="application/x-www-form-urlencoded")
    if path == "/authorize" and response.status_code in (302, 303):
        location = response.headers["Location"]
        if location.startswith(REDIRECT_URI):
            query = parse_qs(urlsplit(location).query)
            assert ("code" in query) != ("error" in query), (params, location)
            assert query.get("iss") == [ISSUER], (params, location)


def _token_in_the_body(app, content_type: str, body: bytes) -> bool:
    """Whether the body carries an access token as the app reads it (RFC 6750 section 2.2)."""
    with app.test_request_context("/userinfo", method="POST", data=body, headers={"Content-Type": content_type}):
        return request.mimetype == "application/x-www-form-urlencoded" and bool(
            request.form.get("access_token", "").strip())


@FAST
@given(header=AUTH_HEADERS, method=st.sampled_from(["GET", "POST"]), content=ODD_BODIES)
def test_userinfo_with_malformed_requests_around_a_valid_token(app, signed_in, header, method, content):
    b = signed_in
    content_type, body = content
    good = {"Authorization": "Bearer " + b.access_token, "Content-Type": content_type}
    bad = {"Authorization": resolve(header, {}), "Content-Type": content_type}
    for headers in (good, bad):
        kw = {"headers": headers, "data": body} if method == "POST" else {"headers": {"Authorization": headers["Authorization"]}}
        response = send(b.http, method, "/userinfo", **kw)
        if headers is good and method == "POST" and _token_in_the_body(app, content_type, body):
            # A token in the header and another in the body: one too many.
            assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"
        elif headers is good:
            assert response.status_code == 200, (method, content_type, body[:200], response.status_code)
            assert response.get_json()["sub"], response.get_data()[:300]
        elif headers["Authorization"] != good["Authorization"]:
            assert response.status_code in (400, 401), (headers, response.status_code)


def test_userinfo_with_a_client_credentials_token_is_refused(client, machine):
    for scope in ("openid", "openid profile email", ""):
        data = {"grant_type": "client_credentials"}
        if scope:
            data["scope"] = scope
        response = token_request(client, machine, data)
        assert response.status_code == 200, response.get_json()
        token = response.get_json()["access_token"]
        for method in ("GET", "POST"):
            response = send(client, method, "/userinfo", headers={"Authorization": "Bearer " + token})
            assert response.status_code in (401, 403), (scope, method, response.status_code, response.get_data()[:300])
