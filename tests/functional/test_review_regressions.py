"""Regressions: consent is not a sign-in, races on codes and refresh tokens, and leaks closed."""

from __future__ import annotations

import datetime as dt
import threading

from idp import clock
from idp.services import totp
from tests.functional.test_protocol import FULL, decode, introspect, refresh, tokens_for
from tests.helpers import exchange_code, make_client, token_request


def signed_in_browser(browser, portal, person):
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0, 5))
    browser.authorize(portal["client_id"])
    browser.sign_in(person["email"], person["password"], first_time=True)
    browser.first_code = browser.callback_params()["code"]
    return browser


def test_consent_is_not_a_new_sign_in(browser, portal, person, third_party):
    b = signed_in_browser(browser, portal, person)
    first = decode(b.http, exchange_code(b.http, portal, b.first_code, b.verifier).get_json()["id_token"]).claims
    clock.advance(hours=2)
    b.authorize(third_party["client_id"], prompt="consent")
    b.submit(decision="allow")
    code = b.callback_params()["code"]
    claims = decode(b.http, exchange_code(b.http, third_party, code, b.verifier).get_json()["id_token"]).claims
    assert claims["auth_time"] == first["auth_time"] and claims["sid"] == first["sid"]
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    b.authorize(portal["client_id"], max_age="60")
    assert b.step_state == "email"  # two hours old: sign in again


def test_a_new_sign_in_ends_the_previous_session(app, browser, portal, person):
    b = signed_in_browser(browser, portal, person)
    before = decode(b.http, exchange_code(b.http, portal, b.first_code, b.verifier).get_json()["id_token"]).claims["sid"]
    clock.advance(seconds=30)
    b.authorize(portal["client_id"], prompt="login")
    b.sign_in(person["email"], person["password"])
    from idp.extensions import db
    from idp.models import Session

    with app.app_context():
        assert db.session.get(Session, before).ended_at is not None


def test_racing_redemptions_of_one_code_get_one_token(app, browser, portal, person):
    b = signed_in_browser(browser, portal, person)
    results = []
    barrier = threading.Barrier(4)

    def redeem():
        http = app.test_client()
        barrier.wait()
        results.append(exchange_code(http, portal, b.first_code, b.verifier).status_code)

    threads = [threading.Thread(target=redeem) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 400, 400, 400]


def test_racing_refreshes_get_one_new_token(app, browser, portal, person):
    b = signed_in_browser(browser, portal, person)
    body = tokens_for(b, portal, scope=FULL)
    results = []
    barrier = threading.Barrier(4)

    def use():
        http = app.test_client()
        barrier.wait()
        results.append(refresh(http, portal, body["refresh_token"]).status_code)

    threads = [threading.Thread(target=use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(200) <= 1


def test_forgot_password_twice_looks_the_same_for_known_and_unknown(app, browser, portal, person):
    import re

    answers = {}
    for email in (person["email"], "nobody@example.com"):
        statuses = []
        for _ in range(2):
            b = type(browser)(app)
            b.authorize(portal["client_id"])
            b.submit(email=email)
            href = re.search(r'id="forgot-password" href="([^"]+)"', b.text).group(1)
            b.get(href)
            b.submit()
            statuses.append((b.status, b.step_state))
        answers[email] = statuses
    assert answers[person["email"]] == answers["nobody@example.com"] == [(200, "forgot_code")] * 2


def test_machine_tokens_carry_only_registered_scopes(app, client):
    service = make_client(app, name="Bank", grant_types=("client_credentials",), extra=["--scope", "openid"])
    body = token_request(client, service, {"grant_type": "client_credentials", "scope": "read payments:write admin"}).get_json()
    assert "scope" not in body


def test_locked_account_cannot_sign_in_through_2fa_reset(app, browser, portal, person):

    b = signed_in_browser(browser, portal, person)
    b.forget()
    clock.advance(seconds=30)
    b.authorize(portal["client_id"])
    b.submit(email=person["email"])
    b.submit(password=person["password"])
    for _ in range(5):
        b.submit(totp_code="000000")
    assert b.status == 423
    b.get(b.url + "/reset-2fa")
    b.submit(email=person["email"])
    from tests.helpers import code_from_mail

    b.submit(email_code=code_from_mail(app, person["email"]))
    secret = b.page.ids["totp-secret"].replace(" ", "").strip() if b.page and "totp-secret" in b.page.ids else None
    if secret:
        b.submit(totp_code=totp.code_for(secret))
    assert b.status == 423 and b.location is None


def test_long_nonce_is_refused(browser, portal, person):
    b = signed_in_browser(browser, portal, person)
    b.authorize(portal["client_id"], nonce="n" * 600)
    assert b.callback_params()["error"] == "invalid_request"


def test_introspection_only_for_the_tokens_client(app, browser, portal, person):
    b = signed_in_browser(browser, portal, person)
    access = exchange_code(b.http, portal, b.first_code, b.verifier).get_json()["access_token"]
    other = make_client(app, name="Other")
    assert introspect(b.http, other, access) == {"active": False}
    assert introspect(b.http, portal, access)["active"] is True


def test_id_token_hint_for_someone_else_does_not_loop(app, browser, portal, person, cli):
    b = signed_in_browser(browser, portal, person)
    hint = exchange_code(b.http, portal, b.first_code, b.verifier).get_json()["id_token"]
    cli.invoke(args=["users", "create", "--email", "other@example.com", "--password", "Other-password-12!"])
    b.forget()
    clock.advance(seconds=30)
    b.authorize(portal["client_id"], id_token_hint=hint)
    assert b.step_state == "email"
    b.totp_secret = None
    b.submit(email="other@example.com")
    b.submit(password="Other-password-12!")
    b.submit(email="other@example.com")
    from tests.helpers import code_from_mail

    b.submit(email_code=code_from_mail(app, "other@example.com"))
    secret = b.page.ids["totp-secret"].replace(" ", "").strip()
    b.submit(totp_code=totp.code_for(secret))
    assert b.callback_params()["error"] == "login_required"


def test_support_routes_do_not_reveal_what_exists(app, client):
    fake = client.post("/support/invitations/does-not-exist/revoke", data={"reason": "x"})
    assert fake.status_code in (302, 400)
