"""CORS for browser apps: /token, /userinfo, /revoke and /par answer the origins registered
for the client (by default those of its redirect URIs), never a wildcard, errors included;
discovery and JWKS are open to any origin; pages get none."""

from __future__ import annotations

import json

import pytest

from tests.helpers import FULL, REDIRECT_URI, basic, make_client, token_request

APP = "http://app.test"  # the origin of REDIRECT_URI
SPA = "https://spa.example"


@pytest.fixture
def spa(app):
    return make_client(app, name="Partner app", public=True, extra=["--allowed-origin", SPA,
                                                                    "--allowed-origin", "HTTPS://SPA.example:443/"])


def _tokens(browser, client):
    browser.authorize(client["client_id"], scope=FULL)
    code = browser.callback_params()["code"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": browser.verifier}
    return token_request(browser.http, client, data, "none", {"Origin": APP})


def _preflight(http, path, origin, method="POST", headers="content-type, dpop"):
    return http.open(path, method="OPTIONS", headers={"Origin": origin, "Access-Control-Request-Method": method,
                                                       "Access-Control-Request-Headers": headers})


@pytest.mark.parametrize("path,methods", [("/token", "POST"), ("/userinfo", "GET, POST"), ("/revoke", "POST"),
                                          ("/par", "POST")])
def test_preflight_from_a_registered_origin(client, public_app, path, methods):
    r = _preflight(client, path, APP)
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == APP
    assert r.headers["Access-Control-Allow-Methods"] == methods
    assert {h.strip() for h in r.headers["Access-Control-Allow-Headers"].split(",")} >= {"Authorization", "Content-Type",
                                                                                         "DPoP"}
    assert "Origin" in r.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in r.headers


@pytest.mark.parametrize("origin", ["http://evil.test", "null", "*", "http://app.test.evil.test", "https://app.test"])
def test_preflight_from_an_unknown_origin_gets_no_cors(client, public_app, origin):
    r = _preflight(client, "/token", origin)
    assert r.status_code == 403 and "Access-Control-Allow-Origin" not in r.headers


def test_a_plain_options_request_names_the_methods(client):
    r = client.open("/token", method="OPTIONS")
    assert r.status_code == 204 and r.headers["Allow"] == "POST, OPTIONS"
    assert "Access-Control-Allow-Origin" not in r.headers


def test_code_exchange_userinfo_refresh_and_revocation_from_the_apps_origin(signed_in, public_app, person):
    r = _tokens(signed_in, public_app)
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == APP
    assert "DPoP-Nonce" in r.headers["Access-Control-Expose-Headers"]
    body = r.get_json()
    info = signed_in.http.get("/userinfo", headers={"Origin": APP, "Authorization": "Bearer " + body["access_token"]})
    assert info.status_code == 200 and info.headers["Access-Control-Allow-Origin"] == APP
    assert info.get_json()["sub"] == person["sub"]
    renewed = token_request(signed_in.http, public_app, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
                            "none", {"Origin": APP})
    assert renewed.status_code == 200 and renewed.headers["Access-Control-Allow-Origin"] == APP
    revoked = signed_in.http.post("/revoke", data={"token": renewed.get_json()["refresh_token"],
                                                   "client_id": public_app["client_id"]}, headers={"Origin": APP})
    assert revoked.status_code == 200 and revoked.headers["Access-Control-Allow-Origin"] == APP


def test_errors_keep_their_cors_headers(client, public_app):
    r = token_request(client, public_app, {"grant_type": "refresh_token", "refresh_token": "nope"}, "none", {"Origin": APP})
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"
    assert r.headers["Access-Control-Allow-Origin"] == APP
    # A token that names no client: answered to a registered origin, so the app reads why.
    info = client.get("/userinfo", headers={"Origin": APP, "Authorization": "Bearer nope"})
    assert info.status_code == 401 and info.headers["Access-Control-Allow-Origin"] == APP
    assert "WWW-Authenticate" in info.headers["Access-Control-Expose-Headers"]
    unknown = token_request(client, {"client_id": "nobody"}, {"grant_type": "refresh_token", "refresh_token": "x"},
                            "none", {"Origin": APP})
    assert unknown.get_json()["error"] == "invalid_client" and unknown.headers["Access-Control-Allow-Origin"] == APP


def test_an_origin_of_another_client_is_refused_before_anything_is_spent(signed_in, public_app, spa):
    signed_in.authorize(public_app["client_id"], scope=FULL)
    code = signed_in.callback_params()["code"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": signed_in.verifier}
    foreign = token_request(signed_in.http, public_app, data, "none", {"Origin": SPA})
    assert foreign.status_code == 403 and "Access-Control-Allow-Origin" not in foreign.headers
    assert token_request(signed_in.http, public_app, data, "none", {"Origin": APP}).status_code == 200


def test_an_unknown_origin_gets_no_cors_headers(signed_in, public_app):
    r = _tokens(signed_in, public_app)
    access = r.get_json()["access_token"]
    for origin in ("http://evil.test", "null"):
        info = signed_in.http.get("/userinfo", headers={"Origin": origin, "Authorization": "Bearer " + access})
        assert info.status_code == 403 and "Access-Control-Allow-Origin" not in info.headers
        bad = token_request(signed_in.http, {"client_id": "nobody"}, {"grant_type": "refresh_token", "refresh_token": "x"},
                            "none", {"Origin": origin})
        assert "Access-Control-Allow-Origin" not in bad.headers


def test_explicit_origins_replace_the_redirect_uris_ones(client, spa):
    assert _preflight(client, "/token", SPA).headers["Access-Control-Allow-Origin"] == SPA
    r = token_request(client, spa, {"grant_type": "refresh_token", "refresh_token": "nope"}, "none", {"Origin": APP})
    assert r.status_code == 403 and "Access-Control-Allow-Origin" not in r.headers


def test_a_confidential_client_gets_its_redirect_uris_origins_too(client, portal):
    r = client.post("/revoke", data={"token": "nope"}, headers={**basic(portal), "Origin": APP})
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == APP


def test_discovery_and_jwks_are_open_and_pages_get_nothing(client, public_app):
    for path in ("/.well-known/openid-configuration", "/jwks.json"):
        assert client.get(path, headers={"Origin": "http://anyone.test"}).headers["Access-Control-Allow-Origin"] == "*"
    page = client.get(f"/authorize?client_id={public_app['client_id']}&response_type=code", headers={"Origin": APP})
    assert "Access-Control-Allow-Origin" not in page.headers
    assert client.open("/authorize", method="OPTIONS", headers={
        "Origin": APP, "Access-Control-Request-Method": "GET"}).headers.get("Access-Control-Allow-Origin") is None


@pytest.mark.parametrize("origin", ["*", "https://app.example/path", "https://*.example", "ftp://app.example",
                                    "https://user@app.example", "app.example"])
def test_registration_refuses_what_is_no_origin(cli, origin):
    result = cli.invoke(args=["clients", "create", "--name", "SPA", "--public", "--redirect-uri", REDIRECT_URI,
                              "--allowed-origin", origin, "--json"])
    assert result.exit_code != 0 and "--allowed-origin" in result.output


def test_registration_stores_the_origins_normalised(app, cli):
    result = cli.invoke(args=["clients", "create", "--name", "SPA", "--public", "--redirect-uri", "https://A.example:443/cb",
                              "--redirect-uri", "http://127.0.0.1/cb", "--redirect-uri", "com.example.app:/cb", "--json"])
    assert result.exit_code == 0, result.output
    client_id = json.loads(result.stdout)["client_id"]
    from idp.extensions import db
    from idp.models import ClientOrigin

    with app.app_context():
        origins = {o.origin for o in db.session.query(ClientOrigin).filter_by(client_id=client_id)}
    assert origins == {"https://a.example"}


CORS_POSTS = ["/token", "/par", "/revoke"]
MAX_BODY = 64 * 1024


def _twice(http, path, client_id, origin):
    body = f"client_id={client_id}&token=a&token=b&grant_type=refresh_token&refresh_token=x&response_type=code"
    return http.post(path, data=body, content_type="application/x-www-form-urlencoded", headers={"Origin": origin})


def _chunked(http, path, origin):
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    environ = EnvironBuilder(path=path, method="POST", data=b"token=" + b"a" * (2 * MAX_BODY),
                             content_type="application/x-www-form-urlencoded", headers={"Origin": origin}).get_environ()
    del environ["CONTENT_LENGTH"]
    environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    environ["wsgi.input_terminated"] = True
    return http.open(Request(environ))


def _guard_answers(http, client_id, origin):
    """Each answer the request guards give before a view: (what, response)."""
    for path in CORS_POSTS:
        yield f"{path} twice", 400, _twice(http, path, client_id, origin)
        yield f"{path} malformed Authorization", 401, http.post(
            path, data={"client_id": client_id}, headers={"Origin": origin, "Authorization": "Basic !!!"})
    for path in [*CORS_POSTS, "/userinfo"]:
        yield f"{path} too large", 413, http.post(path, data={"token": "a" * (MAX_BODY + 1)}, headers={"Origin": origin})
        yield f"{path} too large, chunked", 413, _chunked(http, path, origin)


def test_guard_errors_keep_their_cors_headers_for_a_registered_origin(client, public_app):
    """A parameter sent twice, a malformed Authorization header, a body too large: answered
    before the view, and still readable by the app."""
    for what, status, r in _guard_answers(client, public_app["client_id"], APP):
        assert r.status_code == status, (what, r.status_code)
        assert r.headers.get("Access-Control-Allow-Origin") == APP, what
        assert "Origin" in r.headers.get("Vary", ""), what
        assert "Access-Control-Allow-Credentials" not in r.headers, what


@pytest.mark.parametrize("origin", [APP, None])
def test_a_body_too_large_for_a_protocol_endpoint_is_answered_as_an_oauth_error(client, public_app, origin):
    """A protocol endpoint answers JSON its client can parse, never the error page, and with
    the no-store and CORS headers its other guard answers carry."""
    headers = {"Origin": origin} if origin else {}
    for path in [*CORS_POSTS, "/introspect", "/userinfo"]:
        for how, r in [("length", client.post(path, data={"token": "a" * (MAX_BODY + 1)}, headers=headers)),
                       ("chunked", _chunked(client, path, origin) if origin else None)]:
            if r is None:
                continue
            what = f"{path} {how}"
            assert r.status_code == 413, what
            assert r.mimetype == "application/json", what
            assert r.get_json() == {"error": "invalid_request", "error_description": "The request is too large."}, what
            assert r.headers["Cache-Control"] == "no-store", what
            assert r.headers.get("Access-Control-Allow-Origin") == (origin if path != "/introspect" else None), what


@pytest.mark.parametrize("origin", ["http://evil.test", "null"])
def test_guard_errors_get_no_cors_headers_for_an_unknown_origin(client, public_app, origin):
    for what, status, r in _guard_answers(client, public_app["client_id"], origin):
        assert r.status_code == status, (what, r.status_code)
        assert "Access-Control-Allow-Origin" not in r.headers, what


def test_a_guard_error_gets_no_cors_headers_for_an_origin_of_another_client(client, public_app, spa):
    """The same rule as after the guards: a client's requests are answered to its own origins only."""
    r = _twice(client, "/token", spa["client_id"], APP)
    assert r.status_code == 400 and "Access-Control-Allow-Origin" not in r.headers
    assert _twice(client, "/token", spa["client_id"], SPA).headers["Access-Control-Allow-Origin"] == SPA


def test_a_reused_refresh_token_of_a_browser_app_revokes_its_family(signed_in, public_app):
    """Reuse detection for a public client, from the browser app's origin: the rotated-away
    token comes back, and neither it nor what its successor issued works any more."""
    first = _tokens(signed_in, public_app).get_json()

    def refresh(token):
        return token_request(signed_in.http, public_app, {"grant_type": "refresh_token", "refresh_token": token},
                             "none", {"Origin": APP})

    second = refresh(first["refresh_token"])
    assert second.status_code == 200, second.get_json()
    second = second.get_json()
    replay = refresh(first["refresh_token"])
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    assert replay.headers["Access-Control-Allow-Origin"] == APP
    again = refresh(second["refresh_token"])
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    info = signed_in.http.get("/userinfo", headers={"Origin": APP, "Authorization": "Bearer " + second["access_token"]})
    assert info.status_code == 401
