"""Malformed input on what browser and native apps use: DPoP proofs (garbage, JWS-shaped,
signed with odd claims) at /token, /par and /userinfo, CORS origins and preflights, and
pushed request references at /authorize. Never a 500; the errors are the protocol's."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import ECKey

from tests.helpers import REDIRECT_URI, basic

from .strategies import FAST, HEADER_TEXT, JSON_VALUES, MORE, SMALL_VALUES, send, token_error

KEY = ECKey.generate_key("P-256")
PROOF_CLAIMS = ["jti", "htm", "htu", "iat", "ath", "nonce", "exp"]
PROOF_HEADERS = ["typ", "alg", "jwk", "kid", "crit", "x5c"]


def _b64(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _signed_payload(payload: bytes) -> str:
    """Signed by the key its header carries, as a proof is: whatever the payload."""
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": KEY.as_dict(private=False)}
    return jws.serialize_compact(header, payload, KEY)


def _signed(claims: dict) -> str:
    return _signed_payload(json.dumps(claims).encode())


def _header_safe(value: str) -> str:
    """A header value a client can send: bytes as latin-1, no line breaks."""
    return value.encode("utf-8").decode("latin-1").replace("\r", "").replace("\n", "")


PROOFS = st.one_of(
    HEADER_TEXT,
    st.sampled_from(["", ".", "..", "a.b.c", "e30.e30.", "e30.e30.e30", "x" * 9000]),
    # JWS-shaped: any header and payload, a signature that cannot verify.
    st.tuples(st.dictionaries(st.sampled_from(PROOF_HEADERS), JSON_VALUES, max_size=4) | JSON_VALUES,
              JSON_VALUES, st.text(max_size=20)).map(lambda t: f"{_b64(t[0])}.{_b64(t[1])}.{t[2]}"),
    # Signed by the key in the header: the payload or the claims are what is odd.
    st.one_of(st.binary(max_size=50), JSON_VALUES.map(lambda v: json.dumps(v).encode())).map(_signed_payload),
    st.dictionaries(st.sampled_from(PROOF_CLAIMS), JSON_VALUES | SMALL_VALUES, max_size=7).map(_signed),
    st.builds(lambda jti, iat, htu: _signed({"jti": jti, "htm": "POST", "htu": htu, "iat": iat}),
              st.text(max_size=300), st.integers(), st.sampled_from(["http://idp.test/token", "http://idp.test/par", "x"])),
).map(_header_safe)


@MORE
@given(path=st.sampled_from(["/token", "/par"]), proofs=st.lists(PROOFS, min_size=1, max_size=2))
def test_any_proof_at_the_authorization_server(client, portal, machine, path, proofs):
    data = {"grant_type": "client_credentials"} if path == "/token" else {
        "response_type": "code", "redirect_uri": REDIRECT_URI, "code_challenge": "x" * 43, "code_challenge_method": "S256"}
    creds = machine if path == "/token" else portal
    headers = [("DPoP", proof) for proof in proofs] + [("Authorization", basic(creds)["Authorization"])]
    response = send(client, "POST", path, data=data, headers=headers)
    what = f"POST {path} DPoP={[p[:200] for p in proofs]!r}"
    if response.status_code in (200, 201):
        raise AssertionError(f"{what}\n-> accepted: no proof of these carries the server's nonce")
    body = token_error(response, True, what)
    assert body["error"] in ("invalid_dpop_proof", "use_dpop_nonce"), (what, body)


@FAST
@given(proof=PROOFS, scheme=st.sampled_from(["DPoP", "dpop", "Bearer"]), token=st.text(max_size=60))
def test_any_proof_at_userinfo(client, proof, scheme, token):
    header = _header_safe(f"{scheme} {token}")
    response = send(client, "GET", "/userinfo", headers={"Authorization": header, "DPoP": proof})
    assert response.status_code in (400, 401), (header, proof[:200], response.status_code)


ORIGINS = st.one_of(
    HEADER_TEXT,
    st.sampled_from(["null", "*", "http://app.test", "HTTP://APP.TEST:80", "http://app.test/", "http://app.test:99999",
                     "http://[::1", "http://app.test@evil.test", "file://", "http://", "app.test", " http://app.test"]),
)


@FAST
@given(path=st.sampled_from(["/token", "/userinfo", "/revoke", "/par"]), origin=ORIGINS,
       request_method=st.one_of(st.none(), HEADER_TEXT), request_headers=st.one_of(st.none(), HEADER_TEXT))
def test_any_preflight(client, public_app, path, origin, request_method, request_headers):
    headers = {"Origin": origin}
    if request_method is not None:
        headers["Access-Control-Request-Method"] = request_method
    if request_headers is not None:
        headers["Access-Control-Request-Headers"] = request_headers
    response = send(client, "OPTIONS", path, headers=headers)
    assert response.status_code in (204, 403), (path, headers, response.status_code)
    allowed = response.headers.get("Access-Control-Allow-Origin")
    assert allowed in (None, "http://app.test"), (headers, allowed)


@FAST
@given(path=st.sampled_from(["/token", "/userinfo", "/revoke", "/par"]), origin=ORIGINS,
       auth=st.sampled_from(["public", "portal", "none", "bearer"]))
def test_any_origin_on_a_request(client, portal, public_app, path, origin, auth):
    headers = {"Origin": origin}
    data = {"grant_type": "refresh_token", "refresh_token": "x", "token": "x"}
    if auth == "public":
        data["client_id"] = public_app["client_id"]
    elif auth == "portal":
        headers.update(basic(portal))
    elif auth == "bearer":
        headers["Authorization"] = "Bearer nope"
    response = send(client, "POST", path, data=data, headers=headers)
    assert response.status_code < 500
    allowed = response.headers.get("Access-Control-Allow-Origin")
    assert allowed in (None, "http://app.test"), (headers, allowed)


@FAST
@given(request_uri=st.one_of(SMALL_VALUES, SMALL_VALUES.map(lambda v: "urn:ietf:params:oauth:request_uri:" + v)),
       who=st.sampled_from(["portal", "unknown", "missing"]))
def test_any_request_uri_at_authorize(client, portal, request_uri, who):
    params = {"request_uri": request_uri}
    if who == "portal":
        params["client_id"] = portal["client_id"]
    elif who == "unknown":
        params["client_id"] = "no-such-client"
    response = send(client, "GET", "/authorize", query_string=urlencode(params))
    assert 400 <= response.status_code < 500 or response.status_code == 302, response.status_code
