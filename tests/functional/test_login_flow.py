"""F3 first login and F4 login through the Flask test client: every step and every refusal."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from idp import clock
from idp.extensions import db
from idp.models import Account, AuditEvent, Flow
from idp.services import totp
from tests.helpers import CHEAP_CAPTCHA, code_from_mail, mail_count, solve_captcha, wrong_password


def start(browser, client, **params):
    browser.authorize(client["client_id"], **params)
    assert browser.status == 200
    assert browser.step_state == "email"


def enrolled(browser, portal, person):
    """A person who has done the first login, signed out again (fresh browser)."""
    start(browser, portal)
    browser.sign_in(person["email"], person["password"], first_time=True)
    assert "code" in browser.callback_params()
    secret = browser.totp_secret
    browser.forget()
    return secret


def events(app, action):
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_login_hint_prefills_the_email(browser, portal, person):
    start(browser, portal, login_hint=person["email"])
    assert browser.page.forms["step"]["fields"]["email"] == person["email"]


def test_first_login_verifies_email_and_enrols_totp(app, browser, portal, person):
    start(browser, portal)
    browser.submit(email=person["email"])
    browser.submit(password=person["password"])
    assert browser.step_state == "verify_email"
    browser.submit(email=person["email"].upper())
    assert browser.step_state == "email_code"
    code = code_from_mail(app, person["email"])
    browser.submit(email_code=code)
    assert browser.step_state == "totp_enroll"
    assert browser.page.images["totp-qr"].startswith("data:image/svg+xml;base64,")
    secret = browser.page.ids["totp-secret"].replace(" ", "").strip()
    assert len(secret) == 32
    browser.submit(totp_code=totp.code_for(secret))
    params = browser.callback_params()
    assert params["state"] == browser.auth_request["state"]
    assert params["iss"] == "http://idp.test"
    with app.app_context():
        account = db.session.get(Account, person["sub"])
        assert account.email_verified and account.totp_enrolled
    assert events(app, "totp.enrolled") and events(app, "login.success")


def test_second_login_asks_password_and_totp_only(browser, portal, person):
    secret = enrolled(browser, portal, person)
    browser.totp_secret = secret
    start(browser, portal)
    browser.sign_in(person["email"], person["password"])
    assert "code" in browser.callback_params()


def test_wrong_password_same_answer_as_unknown_address(app, browser, portal, person):
    start(browser, portal)
    browser.submit(email=person["email"])
    browser.submit(password="wrong password")
    known = (browser.status, browser.alert, browser.step_state)
    other = type(browser)(app)
    start(other, portal)
    other.submit(email="nobody@example.com")
    assert other.step_state == "password"
    other.submit(password="wrong password")
    unknown = (other.status, other.alert, other.step_state)
    assert known == unknown
    assert known[0] == 401 and known[1] and known[2] == "password"


def test_invalid_email_is_refused(browser, portal):
    start(browser, portal)
    browser.submit(email="not an address")
    assert browser.status == 400 and browser.alert and browser.step_state == "email"


def test_verify_email_must_be_the_same_address(browser, portal, person):
    start(browser, portal)
    browser.submit(email=person["email"])
    browser.submit(password=person["password"])
    browser.submit(email="someone.else@example.com")
    assert browser.status == 400 and browser.alert and browser.step_state == "verify_email"


def to_email_code(app, browser, portal, person):
    start(browser, portal)
    browser.submit(email=person["email"])
    browser.submit(password=person["password"])
    browser.submit(email=person["email"])
    assert browser.step_state == "email_code"
    return code_from_mail(app, person["email"])


def test_wrong_email_code_then_right_one(app, browser, portal, person):
    code = to_email_code(app, browser, portal, person)
    wrong = "000000" if code != "000000" else "111111"
    browser.submit(email_code=wrong)
    assert browser.status == 400 and browser.alert and browser.step_state == "email_code"
    browser.submit(email_code=code)
    assert browser.step_state == "totp_enroll"


def test_email_code_allows_five_tries(app, browser, portal, person):
    code = to_email_code(app, browser, portal, person)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(4):
        browser.submit(email_code=wrong)
        assert browser.status == 400
    browser.submit(email_code=wrong)
    assert browser.status == 429 and browser.alert
    browser.submit(email_code=code)  # even the right code is refused now
    assert browser.status == 429 and browser.step_state == "email_code"


def test_email_code_expires_after_ten_minutes(app, browser, portal, person):
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0))
    code = to_email_code(app, browser, portal, person)
    clock.advance(minutes=10, seconds=1)
    browser.submit(email_code=code)
    assert browser.status == 400 and browser.alert and browser.step_state == "email_code"


def test_resend_is_throttled_and_replaces_the_code(app, browser, portal, person):
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0))
    first = to_email_code(app, browser, portal, person)
    browser.action("resend")
    # Not nothing: how long until a new code may be asked for.
    assert browser.status == 429 and "over 30 seconden" in browser.alert.lower(), browser.alert
    clock.advance(seconds=29)
    browser.action("resend")
    assert browser.status == 429 and "over 1 seconde " in browser.alert.lower(), browser.alert
    assert mail_count(app, person["email"]) == 1
    clock.advance(seconds=2)
    browser.action("resend")
    assert browser.status == 200 and "code-sent" in browser.page.ids  # "a new code is on its way"
    assert mail_count(app, person["email"]) == 2
    second = code_from_mail(app, person["email"])
    if second != first:
        browser.submit(email_code=first)
        assert browser.status == 400
    browser.submit(email_code=second)
    assert browser.step_state == "totp_enroll"


def test_used_email_code_cannot_be_used_again(app, browser, portal, person):
    code = to_email_code(app, browser, portal, person)
    state_page = dict(browser.page.forms["step"]["fields"])
    browser.submit(email_code=code)
    assert browser.step_state == "totp_enroll"
    # Replaying the e-mail code form: the flow moved on, the step is refused.
    browser.post(browser.page.forms["step"]["action"], dict(state_page, email_code=code))
    assert browser.status == 409 and browser.alert


def test_wrong_totp_at_enrolment(browser, portal, person, app):
    code = to_email_code(app, browser, portal, person)
    browser.submit(email_code=code)
    browser.submit(totp_code="123456" if totp.code_for(browser.page.ids["totp-secret"].replace(" ", "")) != "123456" else "654321")
    assert browser.status == 400 and browser.alert and browser.step_state == "totp_enroll"


def test_replayed_totp_code_is_refused(app, browser, portal, person):
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0, 5))
    secret = enrolled(browser, portal, person)
    used = totp.code_for(secret)  # the code used at enrolment
    start(browser, portal)
    browser.submit(email=person["email"])
    browser.submit(password=person["password"])
    browser.submit(totp_code=used)
    assert browser.status == 400 and browser.step_state == "totp"
    assert "al gebruikt" in browser.alert and "volgende code" in browser.alert  # wait for the next one
    clock.advance(seconds=30)
    browser.submit(totp_code=totp.code_for(secret))
    assert "code" in browser.callback_params()


def test_totp_accepts_one_step_of_drift(app, browser, portal, person):
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0, 5))
    secret = enrolled(browser, portal, person)
    clock.advance(seconds=60)
    start(browser, portal)
    browser.submit(email=person["email"])
    browser.submit(password=person["password"])
    previous = totp.code_for(secret, clock.timestamp() // 30 - 1)
    browser.submit(totp_code=previous)
    assert "code" in browser.callback_params()


def test_totp_two_steps_off_is_refused(app, browser, portal, person):
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0, 5))
    secret = enrolled(browser, portal, person)
    clock.advance(seconds=120)
    start(browser, portal)
    browser.submit(email=person["email"])
    browser.submit(password=person["password"])
    browser.submit(totp_code=totp.code_for(secret, clock.timestamp() // 30 - 2))
    assert browser.status == 400 and browser.step_state == "totp"


def test_expired_flow_is_refused(browser, portal, person):
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0))
    start(browser, portal)
    clock.advance(minutes=31)
    browser.submit(email=person["email"])
    assert browser.status == 410 and browser.alert


def test_step_out_of_order_is_refused(browser, portal, person):
    start(browser, portal)
    email_page = dict(browser.page.forms["step"]["fields"])
    action = browser.page.forms["step"]["action"]
    browser.submit(email=person["email"])
    # Submit a later step's form while the flow waits for the password.
    browser.post(action, dict(email_page, state="totp", totp_code="123456"))
    assert browser.status == 409 and browser.alert
    # And the old e-mail form again.
    browser.post(action, dict(email_page, email="x@example.com"))
    assert browser.status == 409


def flow_row(app, action):
    with app.app_context():
        row = db.session.get(Flow, action.rstrip("/").rsplit("/", 1)[-1])
        return row.state, row.account_id, dict(row.data)


def test_a_step_done_answers_the_next_page_at_the_flows_address(app, browser, portal, person):
    """No redirect and GET between two steps: the POST of a step answers with the next one."""
    start(browser, portal)
    action = browser.page.forms["step"]["action"]
    browser.submit(email=person["email"], follow=False)
    assert browser.status == 200 and browser.step_state == "password"
    assert browser.page.forms["step"]["action"] == action
    browser.submit(password=person["password"], follow=False)
    assert browser.status == 200 and browser.step_state == "verify_email"
    assert flow_row(app, action)[0] == "verify_email"


def test_a_reloaded_step_is_refused_with_the_current_page_and_changes_nothing(app, browser, portal, person):
    """The browser's reload posts the step just done again: 409 with an alert on the page of
    the step the flow waits for, the flow and the audit trail as they were."""
    start(browser, portal)
    browser.submit(email=person["email"], follow=False)
    action = browser.page.forms["step"]["action"]
    password_post = dict(browser.page.forms["step"]["fields"], password=person["password"])
    browser.post(action, password_post, follow=False)
    assert browser.step_state == "verify_email"
    before = flow_row(app, action), len(events(app, "login.password")), mail_count(app, person["email"])
    browser.post(action, password_post, follow=False)
    assert browser.status == 409 and browser.alert
    assert browser.step_state == "verify_email"
    assert (flow_row(app, action), len(events(app, "login.password")), mail_count(app, person["email"])) == before
    # The page answered goes on as the first one would have.
    browser.submit(email=person["email"], follow=False)
    assert browser.status == 200 and browser.step_state == "email_code"


def test_flow_of_another_browser_is_not_found(app, browser, portal, person):
    start(browser, portal)
    other = type(browser)(app)
    other.get(browser.page.forms["step"]["action"])  # the flow's own address
    assert other.status == 404


def test_flow_without_csrf_token_is_refused(browser, portal, person):
    start(browser, portal)
    fields = dict(browser.page.forms["step"]["fields"])
    fields.pop("csrf_token")
    browser.post(browser.page.forms["step"]["action"], dict(fields, email=person["email"]))
    assert browser.status == 400


@pytest.mark.config(**CHEAP_CAPTCHA)
def test_five_wrong_passwords_lock_this_browser_for_the_address(app, browser, portal, person):
    start(browser, portal)
    browser.submit(email=person["email"])
    for _ in range(5):
        wrong_password(browser)
    assert browser.status == 423 and browser.alert
    browser.submit(password=person["password"])
    assert browser.status == 423  # the right password does not unlock it
    clock.freeze(clock.now() + dt.timedelta(minutes=16))
    browser.submit(password=person["password"], altcha=solve_captcha(browser))
    assert browser.step_state == "verify_email"
    assert events(app, "sign_in.locked")


def test_session_cookie_is_renewed_at_login(browser, portal, person):
    start(browser, portal)
    before = browser.http.get_cookie("idp_session").value
    browser.sign_in(person["email"], person["password"], first_time=True)
    after = browser.http.get_cookie("idp_session").value
    assert before != after


def test_use_another_address(browser, portal, person):
    start(browser, portal)
    browser.submit(email="first@example.com")
    browser.action("restart")
    assert browser.step_state == "email"


@pytest.mark.parametrize("lang,expected", [("nl", "nl"), ("en", "en")])
def test_page_language(browser, portal, lang, expected):
    start(browser, portal, ui_locales=lang)
    assert f'<html lang="{expected}"' in browser.text


def test_account_page_leads_through_login_and_back(app, browser, person):
    browser.get("/account")
    assert browser.step_state == "email"
    browser.sign_in(person["email"], person["password"], first_time=True)
    assert browser.status == 302 and browser.location.endswith("/account") or "My details" in browser.text or "Mijn gegevens" in browser.text


def test_an_email_code_counts_only_in_the_flow_it_was_mailed_for(app, browser, portal, person):
    """The mailed code proves the address to the browser that asked for it (its flow), not to
    another browser signing in to the same account."""
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0, 0))
    to_email_code(app, browser, portal, person)
    clock.advance(seconds=31)  # past the resend interval
    other = type(browser)(app)
    second = to_email_code(app, other, portal, person)
    browser.submit(email_code=second)
    assert browser.status == 400 and browser.alert and browser.step_state == "email_code"
    other.submit(email_code=second)
    assert other.step_state == "totp_enroll"
