"""Malformed requests to /authorize: an unknown client never redirects, a missing PKCE challenge
goes back to the registered redirect URI."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.helpers import ISSUER, REDIRECT_URI

from .strategies import (
    FAST,
    MAX_BODY,
    MORE,
    ODD_URI_CHARS,
    SMALL_PAIRS,
    STATES,
    UNKNOWN_CLIENT_IDS,
    form_body,
    placeholders,
    resolve_pairs,
    send,
)


@MORE
@given(client_id=UNKNOWN_CLIENT_IDS, pairs=SMALL_PAIRS, method=st.sampled_from(["GET", "POST"]),
       redirect_uri=st.sampled_from([REDIRECT_URI, "http://evil.test/cb", "javascript:alert(1)", "", None]))
def test_authorize_with_an_unknown_client_shows_an_error_page(client, portal, third_party, client_id, pairs, method, redirect_uri):
    assume(client_id not in (portal["client_id"], third_party["client_id"]))
    ctx = placeholders(None)
    extra = [(k, v) for k, v in resolve_pairs(pairs, ctx) if k != "client_id"]
    params = [("client_id", client_id), ("response_type", "code"), ("scope", "openid")]
    if redirect_uri is not None:
        params.append(("redirect_uri", redirect_uri))
    body = form_body(params + extra)
    if method == "GET":
        response = send(client, "GET", "/authorize", query_string=body)
    else:
        response = send(client, "POST", "/authorize", data=body, content_type="application/x-www-form-urlencoded")
    what = f"{method} /authorize {body[:400]!r}"
    if method == "POST" and len(body) > MAX_BODY:
        assert response.status_code == 413, what
        return
    assert 400 <= response.status_code < 500, (what, response.status_code, response.headers.get("Location"))
    assert "Location" not in response.headers, what
    assert response.mimetype == "text/html", what
    assert b"<form" not in response.get_data() or b"form_post" not in response.get_data()


@pytest.mark.parametrize("char", ODD_URI_CHARS)
def test_authorize_odd_response_type_is_answered_not_raised(client, portal, char):
    """The response_type is echoed into an error description; characters outside the
    RFC 6749 error_description set must not turn the error into an exception."""
    response = send(client, "GET", "/authorize", query_string=urlencode({"response_type": "code" + char, "client_id": "nope"}))
    assert response.status_code == 400 and "Location" not in response.headers
    response = send(client, "GET", "/authorize", query_string=urlencode(
        {"response_type": "code" + char, "client_id": portal["client_id"], "state": "s1"}))
    assert response.status_code == 302, response.status_code
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["error"] == ["unsupported_response_type"] and query["state"] == ["s1"], query


@pytest.mark.parametrize("char", ODD_URI_CHARS)
def test_authorize_odd_unregistered_redirect_uri_shows_an_error_page(client, portal, char):
    for redirect_uri in (f"http://evil.test/{char}", REDIRECT_URI + char):
        params = {"response_type": "code", "client_id": portal["client_id"], "redirect_uri": redirect_uri, "scope": "openid"}
        response = send(client, "GET", "/authorize", query_string=urlencode(params))
        assert response.status_code == 400 and "Location" not in response.headers, (redirect_uri, response.status_code)


@FAST
@given(state=STATES, method=st.sampled_from(["GET", "POST"]), which=st.sampled_from(["portal", "third_party"]),
       variant=st.sampled_from(["missing", "empty", "plain", "missing-with-method"]),
       scope=st.sampled_from(["openid", "openid profile email", "openid offline_access"]),
       with_redirect=st.booleans())
def test_authorize_without_pkce_returns_invalid_request_to_the_client(client, portal, third_party, state, method, which, variant,
                                                                       scope, with_redirect):
    registered = portal if which == "portal" else third_party
    params = {"response_type": "code", "client_id": registered["client_id"], "scope": scope, "state": state, "nonce": "n-1"}
    if with_redirect:
        params["redirect_uri"] = REDIRECT_URI
    if variant == "empty":
        params["code_challenge"] = ""
    elif variant == "plain":
        params["code_challenge"] = "a" * 43
        params["code_challenge_method"] = "plain"
    elif variant == "missing-with-method":
        params["code_challenge_method"] = "S256"
    body = form_body(list(params.items()))
    if method == "GET":
        response = send(client, "GET", "/authorize", query_string=body)
    else:
        response = send(client, "POST", "/authorize", data=body, content_type="application/x-www-form-urlencoded")
    what = f"{method} /authorize {params!r}"
    assert response.status_code in (302, 303), (what, response.status_code, response.get_data()[:500])
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?"), (what, location)
    query = parse_qs(urlsplit(location).query, keep_blank_values=True)
    assert query.get("error") == ["invalid_request"], (what, query)
    assert query.get("state") == [state], (what, query)
    assert query.get("iss") == [ISSUER], (what, query)
    assert "code" not in query, (what, query)
