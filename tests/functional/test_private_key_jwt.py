"""private_key_jwt client authentication (RFC 7523, OpenID Connect Core section 9): keys
registered inline or published at a jwks_uri, each assertion single-use, client_secret_jwt
not offered."""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from tests.helpers import ISSUER, basic, cli_runner, make_client

CC = {"grant_type": "client_credentials"}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture(scope="module")
def key():
    return RSAKey.generate_key(2048, parameters={"kid": "k1"})


def _register(app, tmp_path, key, *more):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    return make_client(app, name="Bank", grant_types=("client_credentials",), extra=(
        "--token-endpoint-auth-method", "private_key_jwt", "--jwks", str(path), *more))


def _assertion(client_id, key, alg="RS256", **claims):
    now = int(time.time())
    payload = {"iss": client_id, "sub": client_id, "aud": ISSUER + "/token", "iat": now, "exp": now + 60,
               "jti": secrets.token_hex(8), **claims}
    return jwt.encode({"alg": alg, "kid": key.kid} if alg != "HS256" else {"alg": alg}, payload, key)


def _token(http, assertion, **extra):
    return http.post("/token", data={**CC, "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion},
                     **extra)


def test_a_client_authenticates_with_its_registered_key(app, client, tmp_path, key):
    bank = _register(app, tmp_path, key)
    assert "client_secret" not in bank
    response = _token(client, _assertion(bank["client_id"], key))
    assert response.status_code == 200, response.get_json()


def test_discovery_lists_private_key_jwt_and_its_algorithms(client):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]
    assert "client_secret_jwt" not in meta["token_endpoint_auth_methods_supported"]
    assert "RS256" in meta["token_endpoint_auth_signing_alg_values_supported"]


def test_a_replayed_assertion_is_refused(app, client, tmp_path, key):
    bank = _register(app, tmp_path, key)
    assertion = _assertion(bank["client_id"], key)
    assert _token(client, assertion).status_code == 200
    again = _token(client, assertion)
    assert again.status_code in (400, 401) and again.get_json()["error"] == "invalid_client"


def test_an_assertion_signed_by_another_key_is_refused(app, client, tmp_path, key):
    bank = _register(app, tmp_path, key)
    other = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    response = _token(client, _assertion(bank["client_id"], other))
    assert response.status_code in (400, 401) and response.get_json()["error"] == "invalid_client"


def test_an_assertion_for_another_audience_is_refused(app, client, tmp_path, key):
    bank = _register(app, tmp_path, key)
    response = _token(client, _assertion(bank["client_id"], key, aud="https://elsewhere.test/token"))
    assert response.status_code in (400, 401) and response.get_json()["error"] == "invalid_client"


def test_an_assertion_that_lives_too_long_is_refused(app, client, tmp_path, key):
    bank = _register(app, tmp_path, key)
    response = _token(client, _assertion(bank["client_id"], key, exp=int(time.time()) + 30 * 24 * 3600))
    assert response.status_code in (400, 401) and response.get_json()["error"] == "invalid_client"


def test_client_secret_jwt_is_refused(app, client):
    service = make_client(app, name="Bank", grant_types=("client_credentials",))
    secret_key = OctKey.import_key(service["client_secret"])
    response = _token(client, _assertion(service["client_id"], secret_key, alg="HS256"))
    assert response.status_code in (400, 401) and response.get_json()["error"] == "invalid_client"


def test_a_private_key_jwt_client_cannot_use_a_secret_or_two_methods(app, client, tmp_path, key):
    bank = _register(app, tmp_path, key)
    forged = dict(bank, client_secret="anything")
    assert client.post("/token", data=CC, headers=basic(forged)).status_code == 401
    both = _token(client, _assertion(bank["client_id"], key), headers=basic(forged))
    assert both.status_code == 400 and both.get_json()["error"] == "invalid_request"


def test_registration_refuses_private_keys_and_missing_keys(app, tmp_path, key):
    path = tmp_path / "private.json"
    path.write_text(json.dumps({"keys": [key.as_dict(private=True)]}))
    base = ["clients", "create", "--name", "Bank", "--grant-type", "client_credentials",
            "--token-endpoint-auth-method", "private_key_jwt"]
    runner = cli_runner(app)
    assert runner.invoke(args=base + ["--jwks", str(path)]).exit_code != 0
    assert runner.invoke(args=base).exit_code != 0
    assert runner.invoke(args=["clients", "create", "--name", "Bank", "--grant-type", "client_credentials",
                               "--jwks-uri", "https://bank.test/jwks"]).exit_code != 0


@pytest.fixture
def jwks_server(key):
    body = json.dumps({"keys": [key.as_dict(private=False)]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/jwks.json"
    server.shutdown()
    server.server_close()


def test_keys_are_read_from_the_jwks_uri(app, client, key, jwks_server):
    bank = make_client(app, name="Bank", grant_types=("client_credentials",), extra=(
        "--token-endpoint-auth-method", "private_key_jwt", "--jwks-uri", jwks_server))
    response = _token(client, _assertion(bank["client_id"], key))
    assert response.status_code == 200, response.get_json()
