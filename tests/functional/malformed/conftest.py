"""The clients and the signed-in browser the malformed-input tests send from."""

from __future__ import annotations

import pytest

from tests.helpers import Browser, exchange_code, make_client


@pytest.fixture
def machine(app):
    return make_client(app, name="Nightly import", first_party=True, grant_types=("client_credentials",))


# -- signed in: the paths that only run with an SSO session ---------------------------------------------------


@pytest.fixture
def signed_in(app, portal, person):
    b = Browser(app)
    b.authorize(portal["client_id"])
    b.sign_in(person["email"], person["password"], first_time=True)
    params = b.callback_params()
    tokens = exchange_code(b.http, portal, params["code"], b.verifier).get_json()
    b.id_token = tokens["id_token"]
    b.access_token = tokens["access_token"]
    return b
