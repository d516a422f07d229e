"""F5 forgotten password, F6 reset two-step verification, lockout, and the account page."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from idp import clock
from idp.extensions import db
from idp.models import OutboxMail
from idp.services import totp
from tests.helpers import FULL, introspect, refresh
from tests.helpers import CHEAP_CAPTCHA, code_from_mail, last_mail, mail_count, wrong_password

NEW_PASSWORD = "Winter-boot-77-Haring"


@pytest.fixture
def enrolled(browser, portal, person):
    """A person who did the first login; the browser is closed again. Returns the TOTP secret."""
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0, 5))
    browser.authorize(portal["client_id"])
    browser.sign_in(person["email"], person["password"], first_time=True)
    secret = browser.totp_secret
    browser.forget()
    clock.advance(seconds=30)
    return secret


def to_password_step(browser, portal, email):
    browser.authorize(portal["client_id"])
    browser.submit(email=email)
    assert browser.step_state == "password"


def follow_link(browser, link_id):
    import re

    href = re.search(rf'id="{link_id}" href="([^"]+)"', browser.text).group(1)
    browser.get(href.replace("&amp;", "&"))


def test_forgot_password_back_into_the_authorization(app, browser, portal, person, enrolled):
    to_password_step(browser, portal, person["email"])
    follow_link(browser, "forgot-password")
    assert browser.step_state == "forgot_email"
    assert browser.page.forms["step"]["fields"]["email"] == person["email"]
    browser.submit()
    assert browser.step_state == "forgot_code"
    browser.submit(email_code=code_from_mail(app, person["email"]))
    assert browser.step_state == "forgot_totp"
    browser.submit(totp_code=totp.code_for(enrolled))
    assert browser.step_state == "new_password"
    browser.submit(password="short", password_confirm="short")
    assert browser.status == 400 and browser.alert
    browser.submit(password=NEW_PASSWORD, password_confirm=NEW_PASSWORD)
    assert "code" in browser.callback_params()
    assert "password" in last_mail(app, person["email"]).subject.lower() or "wachtwoord" in last_mail(app, person["email"]).subject.lower()
    browser.forget()
    clock.advance(seconds=60)
    browser.totp_secret = enrolled
    browser.authorize(portal["client_id"])
    browser.sign_in(person["email"], NEW_PASSWORD)
    assert "code" in browser.callback_params()


def test_forgot_password_for_an_unknown_address_looks_the_same(app, browser, portal, person, enrolled):
    to_password_step(browser, portal, "nobody@example.com")
    follow_link(browser, "forgot-password")
    browser.submit()
    unknown = (browser.status, browser.step_state)
    other = type(browser)(app)
    to_password_step(other, portal, person["email"])
    follow_link(other, "forgot-password")
    other.submit()
    assert unknown == (other.status, other.step_state) == (200, "forgot_code")
    assert mail_count(app, "nobody@example.com") == 0
    browser.submit(email_code="123456")
    assert browser.status == 400 and browser.step_state == "forgot_code"


def test_new_password_ends_other_sessions_and_refresh_tokens(app, browser, portal, person, enrolled):
    # Another device is signed in and holds a refresh token.
    device = type(browser)(app)
    device.totp_secret = enrolled
    device.authorize(portal["client_id"], scope=FULL)
    device.sign_in(person["email"], person["password"])
    code = device.callback_params()["code"]
    from tests.helpers import exchange_code

    body = exchange_code(device.http, portal, code, device.verifier).get_json()
    clock.advance(seconds=30)
    to_password_step(browser, portal, person["email"])
    follow_link(browser, "forgot-password")
    browser.submit()
    browser.submit(email_code=code_from_mail(app, person["email"]))
    browser.submit(totp_code=totp.code_for(enrolled))
    browser.submit(password=NEW_PASSWORD, password_confirm=NEW_PASSWORD)
    assert refresh(browser.http, portal, body["refresh_token"]).status_code == 400
    assert introspect(browser.http, portal, body["access_token"])["active"] is False
    device.authorize(portal["client_id"], prompt="none")
    assert device.callback_params()["error"] == "login_required"


def test_reset_two_step_verification(app, browser, portal, person, enrolled):
    to_password_step(browser, portal, person["email"])
    browser.submit(password=person["password"])
    assert browser.step_state == "totp"
    follow_link(browser, "reset-2fa")
    assert browser.step_state == "reset_email"
    browser.submit(email="someone@example.com")
    assert browser.status == 400 and browser.alert
    browser.submit(email=person["email"])
    assert browser.step_state == "reset_code"
    browser.submit(email_code=code_from_mail(app, person["email"]))
    assert browser.step_state == "totp_enroll"
    new_secret = browser.page.ids["totp-secret"].replace(" ", "").strip()
    assert new_secret != enrolled
    browser.submit(totp_code=totp.code_for(enrolled))  # the old app's code does not enrol
    assert browser.status == 400
    browser.submit(totp_code=totp.code_for(new_secret))
    assert "code" in browser.callback_params()
    mail = last_mail(app, person["email"])
    assert mail.kind == "totp_reset"
    # The old secret stops working at once.
    browser.forget()
    clock.advance(seconds=30)
    to_password_step(browser, portal, person["email"])
    browser.submit(password=person["password"])
    browser.submit(totp_code=totp.code_for(enrolled))
    assert browser.status == 400
    browser.submit(totp_code=totp.code_for(new_secret))
    assert "code" in browser.callback_params()


def test_reset_2fa_needs_the_password_first(app, browser, portal, person, enrolled):
    to_password_step(browser, portal, person["email"])

    assert 'id="reset-2fa"' not in browser.text
    browser.get(browser.url + "/reset-2fa")
    assert browser.status == 409


def test_repeated_lockouts_need_support(app, browser, portal, person, enrolled, cli):
    # Wrong authenticator codes after the right password: wrong passwords alone never lock
    # for good (test_smart_lockout.py).
    for round_ in range(3):
        to_password_step(browser, portal, person["email"])
        browser.submit(password=person["password"])
        for _ in range(5):
            browser.submit(totp_code="000000")
        assert browser.status == 423
        clock.advance(minutes=16)
    import json

    shown = json.loads(cli.invoke(args=["accounts", "show", person["email"], "--json"]).output)
    assert shown["status"] == "locked"
    clock.advance(days=2)
    to_password_step(browser, portal, person["email"])
    browser.submit(password=person["password"])
    assert browser.status == 423
    with app.app_context():
        kinds = [m.kind for m in db.session.scalars(select(OutboxMail).where(OutboxMail.recipient == person["email"]))]
    assert kinds.count("account_locked") == 3


@pytest.mark.config(**CHEAP_CAPTCHA)
def test_lockout_message_does_not_tell_whether_the_password_was_right(app, browser, portal, person, enrolled):
    to_password_step(browser, portal, person["email"])
    for _ in range(5):
        wrong_password(browser)
    wrong = (browser.status, browser.alert)
    assert wrong[0] == 423
    browser.submit(password=person["password"])
    assert (browser.status, browser.alert) == wrong


def test_wrong_totp_codes_lock_too(app, browser, portal, person, enrolled):
    to_password_step(browser, portal, person["email"])
    browser.submit(password=person["password"])
    for _ in range(5):
        browser.submit(totp_code="000000")
    assert browser.status == 423


def test_change_password_on_the_account_page(app, browser, portal, person, enrolled):
    browser.totp_secret = enrolled
    browser.get("/account")
    browser.sign_in(person["email"], person["password"])
    browser.get("/account")
    assert browser.page.ids["account-email"] == person["email"]
    form = "password-form"
    browser.submit(form, current_password="wrong", password=NEW_PASSWORD, password_confirm=NEW_PASSWORD,
                   totp_code=browser.next_totp())
    assert browser.status == 401 and "huidige wachtwoord klopt niet" in browser.alert  # the current one is wrong
    assert browser.url.endswith("#change-password")  # the answer opens where its message is
    clock.advance(seconds=30)
    browser.submit(form, current_password=person["password"], password=NEW_PASSWORD, password_confirm=NEW_PASSWORD,
                   totp_code="000000")
    assert browser.status == 400 and browser.alert
    code = browser.next_totp()  # a refused change does not use it up
    browser.submit(form, current_password=person["password"], password="short", password_confirm="short",
                   totp_code=code)
    assert browser.status == 400
    assert browser.page.ids["password-rules"]  # the live list, with the refused try's states
    assert 'data-rule="length" class="bad"' in browser.text and 'data-rule="not_personal" class="ok"' in browser.text
    browser.submit(form, current_password=person["password"], password=person["password"],
                   password_confirm=person["password"], totp_code=code)
    assert browser.status == 400 and "Dit is je huidige wachtwoord" in browser.alert  # not the same one again
    clock.advance(seconds=30)
    browser.submit(form, current_password=person["password"], password=NEW_PASSWORD, password_confirm=NEW_PASSWORD,
                   totp_code=browser.next_totp())
    assert browser.status == 200 and "role=\"status\"" in browser.text
    assert last_mail(app, person["email"]).kind == "password_changed"
    # This session stays.
    browser.get("/account")
    assert browser.status == 200 and browser.page.ids.get("account-email") == person["email"]


def live_check(browser, url, password, confirm=None, form_id="step"):
    """What the page's script gets back for the password typed so far."""
    token = browser.page.forms[form_id]["fields"]["csrf_token"]
    return browser.http.post(url, data={"password": password, "password_confirm": password if confirm is None
                                        else confirm, "csrf_token": token})


def test_the_new_password_step_checks_as_the_person_types(app, browser, portal, person, enrolled):
    to_password_step(browser, portal, person["email"])
    early = live_check(browser, browser.url + "/password-check", NEW_PASSWORD)
    assert early.status_code == 404, "only the new-password step answers"
    follow_link(browser, "forgot-password")
    browser.submit()
    browser.submit(email_code=code_from_mail(app, person["email"]))
    browser.submit(totp_code=totp.code_for(enrolled))
    assert browser.step_state == "new_password"
    url = browser.url + "/password-check"
    personal = live_check(browser, url, "anna-Winter-boot-77").get_json()
    assert personal["ok"] is False and personal["rules"]["not_personal"] is False
    assert live_check(browser, url, NEW_PASSWORD, NEW_PASSWORD + "x").get_json()["rules"]["confirmed"] is False
    assert live_check(browser, url, NEW_PASSWORD).get_json() == {"ok": True, "rules": {
        "length": True, "not_common": True, "not_personal": True, "strong": True, "confirmed": True}}
    stranger = type(browser)(app)
    stranger.get("/connector-password")  # any page, for a CSRF token of this other browser
    assert live_check(stranger, url, NEW_PASSWORD).status_code == 404, "the flow is not this browser's"


def test_the_account_page_checks_a_new_password_as_the_person_types(app, signed_in):
    signed_in.get("/account")
    check = live_check(signed_in, "/account/password-check", "vries-Winter-boot-77", form_id="password-form")
    assert check.status_code == 200 and check.get_json()["rules"]["not_personal"] is False
    assert live_check(signed_in, "/account/password-check", NEW_PASSWORD, form_id="password-form").get_json()["ok"]
    signed_in.forget()
    signed_in.get("/connector-password")  # any page, for a CSRF token of the new browser
    assert live_check(signed_in, "/account/password-check", NEW_PASSWORD).status_code == 401
