"""Rotating IDP_SECRET_KEY: what the old secret encrypted or signed keeps working while it
is a previous secret, `idp keys reencrypt` moves it to the new one, and then the old one can go."""

from __future__ import annotations

import json

import pytest

from idp import clock, create_app
from idp.config import ConfigError
from idp.extensions import db
from idp.services import keys

from ..helpers import T0, cli_runner, decode, exchange_code, introspect, make_client, token_request

NEW_SECRET = "the-new-secret-after-rotation-0123456789abcdef"


def instance(app, secret: str, previous: list[str]):
    """Another instance on the same database, started with other secrets."""
    keys.clear_cache()  # the new instance reads the signing key from the database itself
    settings = {k: app.config[k] for k in ("TESTING", "ENV", "ISSUER", "DATABASE_URL", "RATELIMIT_ENABLED",
                                           "REDIS_URL", "RATELIMIT_STORAGE_OPTIONS")}
    return create_app({**settings, "SECRET_KEY": secret, "PREVIOUS_SECRET_KEYS": previous})


def moved_to(browser, app):
    """The same browser (its cookies) talking to another instance."""
    browser.app = app
    browser.http.application = app
    return browser


def sign_in_with_totp(browser, client, person):
    browser.authorize(client["client_id"])
    browser.sign_in(person["email"], person["password"])
    body = exchange_code(browser.http, client, browser.callback_params()["code"], browser.verifier).get_json()
    return decode(browser.http, body["id_token"]).claims


def reencrypt(app) -> dict:
    result = cli_runner(app).invoke(args=["keys", "reencrypt", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_rotated_secret_keeps_sign_in_sessions_and_machine_tokens(app, browser, portal, person):
    old_secret = app.config["SECRET_KEY"]
    clock.freeze(T0)
    # Under the old secret: TOTP enrolled, a session cookie, a machine token.
    browser.authorize(portal["client_id"])
    browser.sign_in(person["email"], person["password"], first_time=True)
    exchange_code(browser.http, portal, browser.callback_params()["code"], browser.verifier)  # the signing key is made
    machine = make_client(app, name="Batch", grant_types=("client_credentials",))
    machine_token = token_request(browser.http, machine, {"grant_type": "client_credentials"}).get_json()["access_token"]
    totp_secret = browser.totp_secret
    halfway = type(browser)(app)
    halfway.authorize(portal["client_id"])  # the e-mail page, its CSRF token signed with the old secret

    rotated = instance(app, NEW_SECRET, [old_secret])
    moved_to(browser, rotated)
    browser.get("/account")
    assert browser.url == "/account" and person["email"] in browser.text  # still signed in
    assert introspect(browser.http, machine, machine_token)["active"] is True
    # A sign-in started before the rotation finishes after it, with the TOTP enrolled before it.
    moved_to(halfway, rotated).totp_secret = totp_secret
    clock.freeze(T0.replace(minute=2))
    halfway.sign_in(person["email"], person["password"])
    body = exchange_code(halfway.http, portal, halfway.callback_params()["code"], halfway.verifier).get_json()
    assert decode(halfway.http, body["id_token"]).claims["sub"] == person["sub"]

    first = reencrypt(rotated)
    assert first["totp_secrets"] == {"reencrypted": 1, "current": 0, "undecryptable": 0}
    assert first["signing_keys"] == {"reencrypted": 1, "current": 0, "undecryptable": 0}
    again = reencrypt(rotated)  # idempotent: nothing left to move
    assert again["totp_secrets"] == {"reencrypted": 0, "current": 1, "undecryptable": 0}
    assert again["signing_keys"] == {"reencrypted": 0, "current": 1, "undecryptable": 0}

    # The old secret removed: TOTP and the signing key still work; what it signed does not.
    only_new = instance(app, NEW_SECRET, [])
    fresh = type(browser)(only_new)
    fresh.totp_secret = totp_secret
    clock.freeze(T0.replace(minute=4))
    assert sign_in_with_totp(fresh, portal, person)["sub"] == person["sub"]
    assert introspect(fresh.http, machine, machine_token)["active"] is False
    new_machine_token = token_request(fresh.http, machine, {"grant_type": "client_credentials"}).get_json()["access_token"]
    assert introspect(fresh.http, machine, new_machine_token)["active"] is True
    for other in (rotated, only_new):
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


def test_without_the_previous_secret_reencrypt_reports_what_it_cannot_open(app, browser, portal, person):
    clock.freeze(T0)
    browser.authorize(portal["client_id"])
    browser.sign_in(person["email"], person["password"], first_time=True)
    lost = instance(app, NEW_SECRET, [])
    result = cli_runner(lost).invoke(args=["keys", "reencrypt", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["totp_secrets"] == {"reencrypted": 0, "current": 0, "undecryptable": 1}
    with lost.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize("previous", [["short"], "a-long-enough-previous-secret-0123456789,short", [42]])
def test_a_weak_previous_secret_stops_start_up_with_one_line(app, previous):
    with pytest.raises(ConfigError) as caught:
        instance(app, NEW_SECRET, previous)
    message = str(caught.value)
    assert "IDP_PREVIOUS_SECRET_KEYS" in message and "\n" not in message and "short" not in message
