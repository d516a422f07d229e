"""Client authentication at the token endpoint: one method per request, the method the
client registered, and repeated wrong client secrets throttled per client."""

from __future__ import annotations

import datetime as dt

import pytest

from idp import clock
from idp.extensions import db
from idp.models import Client
from idp.oauth import clients
from idp.services.crypto import token_hash
from tests.helpers import REDIRECT_URI, basic, cli_runner, make_client, token_request

FULL = "openid profile email offline_access administrations"


@pytest.fixture
def signed_in(browser, portal, person):
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0, 5))
    browser.authorize(portal["client_id"])
    browser.sign_in(person["email"], person["password"], first_time=True)
    return browser


def test_basic_and_post_credentials_in_one_request_are_refused(signed_in, portal):
    signed_in.authorize(portal["client_id"])
    data = {"grant_type": "authorization_code", "code": signed_in.callback_params()["code"],
            "redirect_uri": REDIRECT_URI, "code_verifier": signed_in.verifier,
            "client_id": portal["client_id"], "client_secret": portal["client_secret"]}
    response = signed_in.http.post("/token", data=data, headers=basic(portal))
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"


def test_two_methods_are_refused_at_introspection_too(app, client):
    service = make_client(app, name="Bank", grant_types=("client_credentials",))
    issued = token_request(client, service, {"grant_type": "client_credentials"}).get_json()["access_token"]
    both = client.post("/introspect", headers=basic(service), data={
        "token": issued, "client_id": service["client_id"], "client_secret": service["client_secret"]})
    assert both.status_code == 400 and both.get_json()["error"] == "invalid_request"
    assert client.post("/introspect", headers=basic(service), data={"token": issued}).get_json()["active"]


def test_a_client_uses_the_method_it_registered(app, client):
    service = make_client(app, name="Bank", grant_types=("client_credentials",),
                          extra=("--token-endpoint-auth-method", "client_secret_basic"))
    by_post = token_request(client, service, {"grant_type": "client_credentials"}, auth="post")
    assert by_post.status_code == 401 and by_post.get_json()["error"] == "invalid_client"
    assert token_request(client, service, {"grant_type": "client_credentials"}).status_code == 200


def test_a_client_registered_for_post_cannot_use_basic(app, client):
    service = make_client(app, name="Bank", grant_types=("client_credentials",),
                          extra=("--token-endpoint-auth-method", "client_secret_post"))
    by_basic = token_request(client, service, {"grant_type": "client_credentials"})
    assert by_basic.status_code == 401 and by_basic.get_json()["error"] == "invalid_client"
    assert token_request(client, service, {"grant_type": "client_credentials"}, auth="post").status_code == 200


def test_a_client_registered_without_a_method_uses_either_secret_method(app, client):
    service = make_client(app, name="Bank", grant_types=("client_credentials",))
    for auth in ("basic", "post"):
        assert token_request(client, service, {"grant_type": "client_credentials"}, auth=auth).status_code == 200


def test_a_public_client_cannot_register_a_secret_method(app):
    result = cli_runner(app).invoke(args=["clients", "create", "--name", "App", "--public", "--redirect-uri",
                                          REDIRECT_URI, "--token-endpoint-auth-method", "client_secret_basic"])
    assert result.exit_code != 0


@pytest.mark.config(RATELIMIT_ENABLED=True)
def test_wrong_client_secrets_are_throttled(app, client):
    service = make_client(app, name="Bank", grant_types=("client_credentials",))
    wrong = dict(service, client_secret="not-the-secret")
    statuses = [token_request(client, wrong, {"grant_type": "client_credentials"}).status_code for _ in range(40)]
    assert statuses[0] == 401 and 429 in statuses
    # The right secret is refused too while the client is throttled: guessing gains nothing.
    assert token_request(client, service, {"grant_type": "client_credentials"}).status_code == 429


@pytest.mark.config(RATELIMIT_ENABLED=True)
def test_a_flood_from_one_address_does_not_shut_the_client_out_elsewhere(app, client):
    service = make_client(app, name="Bank", grant_types=("client_credentials",))
    wrong = dict(service, client_secret="not-the-secret")

    def from_address(creds, address):
        return client.post("/token", data={"grant_type": "client_credentials"}, headers=basic(creds),
                           environ_base={"REMOTE_ADDR": address})

    statuses = [from_address(wrong, "203.0.113.7").status_code for _ in range(30)]
    assert statuses[-1] == 429
    assert from_address(service, "203.0.113.7").status_code == 429
    assert from_address(service, "198.51.100.2").status_code == 200


@pytest.mark.config(RATELIMIT_ENABLED=True)
def test_a_throttled_client_does_not_throttle_another(app, client):
    service = make_client(app, name="Bank", grant_types=("client_credentials",))
    other = make_client(app, name="Scanner", grant_types=("client_credentials",))
    wrong = dict(service, client_secret="not-the-secret")
    for _ in range(30):
        token_request(client, wrong, {"grant_type": "client_credentials"})
    assert token_request(client, other, {"grant_type": "client_credentials"}).status_code == 200


def _set_secret_hash(app, client_id: str, secret_hash) -> None:
    with app.app_context():
        db.session.get(Client, client_id).secret_hash = secret_hash
        db.session.commit()


@pytest.mark.parametrize("endpoint", ["/token", "/introspect"])
def test_a_rotated_or_removed_basic_secret_takes_effect_at_once(app, client, monkeypatch, endpoint):
    # The client cache serves what the database holds (its few seconds are not this test's subject).
    monkeypatch.setattr(clients, "CACHE_SECONDS", 0)
    service = make_client(app, name="Bank", grant_types=("client_credentials",))
    data = {"grant_type": "client_credentials"} if endpoint == "/token" else {"token": "unknown"}

    def status(creds):
        return client.post(endpoint, data=data, headers=basic(creds)).status_code

    assert [status(service), status(service)] == [200, 200]
    _set_secret_hash(app, service["client_id"], token_hash("the-new-secret"))
    assert status(service) == 401
    assert status(dict(service, client_secret="the-new-secret")) == 200
    _set_secret_hash(app, service["client_id"], None)
    assert status(dict(service, client_secret="the-new-secret")) == 401
    assert status(service) == 401


def test_a_wrong_basic_secret_is_refused_every_time(app, client):
    service = make_client(app, name="Bank", grant_types=("client_credentials",))
    wrong = dict(service, client_secret="not-the-secret")
    request = {"grant_type": "client_credentials"}
    statuses = [token_request(client, creds, request).status_code for creds in (service, wrong, wrong, service, wrong)]
    assert statuses == [200, 401, 401, 200, 401]
