"""One SSO session per browser: consent is not a sign-in, a new sign-in ends the previous session,
an id_token_hint for someone else does not loop."""

from __future__ import annotations

from idp import clock
from idp.services import totp
from tests.helpers import decode, exchange_code, signed_in_browser


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
    from idp.models import SsoSession

    with app.app_context():
        assert db.session.get(SsoSession, before).ended_at is not None


def test_id_token_hint_for_someone_else_does_not_loop(app, browser, portal, person, cli):
    b = signed_in_browser(browser, portal, person)
    hint = exchange_code(b.http, portal, b.first_code, b.verifier).get_json()["id_token"]
    cli.invoke(args=["users", "create", "--email", "other@example.com", "--password", "Second-account-pass-12!"])
    b.forget()
    clock.advance(seconds=30)
    b.authorize(portal["client_id"], id_token_hint=hint)
    assert b.step_state == "email"
    b.totp_secret = None
    b.submit(email="other@example.com")
    b.submit(password="Second-account-pass-12!")
    b.submit(email="other@example.com")
    from tests.helpers import code_from_mail

    b.submit(email_code=code_from_mail(app, "other@example.com"))
    secret = b.page.ids["totp-secret"].replace(" ", "").strip()
    b.submit(totp_code=totp.code_for(secret))
    assert b.callback_params()["error"] == "login_required"
