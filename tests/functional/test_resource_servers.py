"""Resource servers (`idp clients create --resource-server`): an API may introspect the
tokens issued to the relying apps; other clients learn only about their own tokens."""

from __future__ import annotations

import datetime as dt

import pytest

from idp import clock
from tests.helpers import basic, cli_runner, exchange_code, make_client, token_request


@pytest.fixture
def issued(browser, portal, person):
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0, 5))
    browser.authorize(portal["client_id"], scope="openid email offline_access")
    browser.sign_in(person["email"], person["password"], first_time=True)
    return exchange_code(browser.http, portal, browser.callback_params()["code"], browser.verifier).get_json()


@pytest.fixture
def api(app):
    return make_client(app, name="Ledger API", first_party=False, grant_types=(), extra=("--resource-server",))


def _introspect(client, creds, token):
    return client.post("/introspect", data={"token": token}, headers=basic(creds)).get_json()


def test_a_resource_server_introspects_another_clients_token(client, api, portal, person, issued):
    seen = _introspect(client, api, issued["access_token"])
    assert seen["active"] is True and seen["client_id"] == portal["client_id"] and seen["sub"] == person["sub"]


def test_another_client_learns_nothing_about_the_token(client, third_party, issued):
    assert _introspect(client, third_party, issued["access_token"]) == {"active": False}


def test_a_resource_server_sees_a_revoked_token_inactive(client, api, portal, issued):
    assert client.post("/revoke", data={"token": issued["access_token"]}, headers=basic(portal)).status_code == 200
    assert _introspect(client, api, issued["access_token"]) == {"active": False}


def test_a_resource_server_cannot_revoke_another_clients_token(client, api, portal, issued):
    client.post("/revoke", data={"token": issued["access_token"]}, headers=basic(api))
    assert _introspect(client, portal, issued["access_token"])["active"] is True


def test_a_resource_server_gets_no_tokens_of_its_own(client, api):
    response = token_request(client, api, {"grant_type": "client_credentials"})
    assert response.status_code in (400, 401) and response.get_json()["error"] == "unauthorized_client"


def test_a_resource_server_cannot_be_public(app):
    result = cli_runner(app).invoke(args=["clients", "create", "--name", "API", "--public", "--resource-server"])
    assert result.exit_code != 0
