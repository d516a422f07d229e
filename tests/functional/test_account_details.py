"""Changing one's name and e-mail address on the account pages: the claims follow from the
next token on; the new address is confirmed with a mailed code; the old one gets a notice."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from idp import clock
from idp.extensions import db
from idp.models import Account, AuditEvent, Flow, OutboxMail

from ..helpers import (Browser, code_from_mail, decode, last_mail, make_account, mail_count, refresh,
                       signed_in_browser, tokens_for)

NEW = "anna.devries@example.org"


@pytest.fixture
def signed_in(browser, portal, person):
    browser.http.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return signed_in_browser(browser, portal, person)


def account(app, email) -> Account | None:
    with app.app_context():
        row = db.session.scalar(select(Account).where(Account.email == email))
        if row is not None:
            db.session.expunge(row)
        return row


def audited(app, action) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def status_text(b: Browser) -> str:
    match = re.search(r'role="status">([^<]*)<', b.text)
    return match.group(1) if match else ""


def start_change(b: Browser, email=NEW, password="correct horse battery staple"):
    b.get("/account/email")
    assert b.status == 200
    return b.submit("email-form", email=email, current_password=password)


# -- the name ------------------------------------------------------------------------------------


def test_change_the_name(app, signed_in, portal, person):
    body = tokens_for(signed_in, portal)
    signed_in.get("/account")
    assert 'href="/account/name"' in signed_in.text
    signed_in.get("/account/name")
    assert signed_in.page.forms["name-form"]["fields"]["name"] == "Anna de Vries"
    signed_in.submit("name-form", name="  Anna   Jansen-de Vries ")
    assert signed_in.status == 200 and signed_in.url == "/account?done=name"
    assert status_text(signed_in) == "Your name has been changed."
    assert signed_in.page.ids["account-name"] == "Anna Jansen-de Vries"
    (event,) = audited(app, "name.changed")
    assert event.detail == {"old": "Anna de Vries", "new": "Anna Jansen-de Vries"} and event.actor == person["sub"]
    refreshed = refresh(signed_in.http, portal, body["refresh_token"]).get_json()
    assert decode(signed_in.http, refreshed["id_token"]).claims["name"] == "Anna Jansen-de Vries"
    info = signed_in.http.get("/userinfo", headers={"Authorization": "Bearer " + refreshed["access_token"]}).get_json()
    assert info["name"] == "Anna Jansen-de Vries"


@pytest.mark.parametrize("bad", ["", "   ", "x" * 201, "Anna\u0000", "Anna\u200e", "Anna\u0007de Vries"])
def test_a_bad_name_is_refused(app, signed_in, bad):
    signed_in.get("/account/name")
    signed_in.submit("name-form", name=bad)
    assert signed_in.status == 400 and "Enter your name" in signed_in.alert
    assert account(app, "anna@example.com").name == "Anna de Vries"
    assert audited(app, "name.changed") == []


def test_changing_the_name_needs_the_csrf_token_and_a_session(app, signed_in, browser):
    signed_in.post("/account/name", {"name": "Mallory"})
    assert signed_in.status == 400
    assert account(app, "anna@example.com").name == "Anna de Vries"
    signed_in.forget()
    signed_in.get("/account/name")
    assert signed_in.step_state == "email"


# -- the e-mail address ------------------------------------------------------------------------------


def test_change_the_email_address(app, signed_in, portal, person):
    body = tokens_for(signed_in, portal)
    signed_in.get("/account")
    assert 'href="/account/email"' in signed_in.text
    start_change(signed_in, email="  Anna.DeVries@Example.ORG ")
    assert signed_in.step_state == "code" and NEW in signed_in.text
    mail = last_mail(app, NEW)
    assert mail.kind == "email_change_code" and "confirmation code" in mail.text
    assert account(app, "anna@example.com") is not None  # nothing changed yet
    signed_in.submit(email_code="000000" if code_from_mail(app, NEW) != "000000" else "111111")
    assert signed_in.status == 400 and signed_in.alert
    signed_in.submit(email_code=code_from_mail(app, NEW))
    assert signed_in.url == "/account?done=email" and "Sign in with the new address" in status_text(signed_in)
    assert signed_in.page.ids["account-email"] == NEW
    changed = account(app, NEW)
    assert changed.id == person["sub"] and changed.email_verified
    notice = last_mail(app, "anna@example.com")
    assert notice.kind == "email_changed" and NEW in notice.text and "anna@example.com" in notice.text
    (event,) = audited(app, "email.changed")
    assert event.detail == {"old": "anna@example.com", "new": NEW} and event.subject == NEW
    # The email claim changes from the next token on.
    refreshed = refresh(signed_in.http, portal, body["refresh_token"]).get_json()
    assert decode(signed_in.http, refreshed["id_token"]).claims["email"] == NEW
    info = signed_in.http.get("/userinfo", headers={"Authorization": "Bearer " + refreshed["access_token"]}).get_json()
    assert info["email"] == NEW
    # The person signs in with the new address from now on.
    signed_in.forget()
    clock.advance(seconds=30)
    signed_in.get("/account")
    signed_in.sign_in(NEW, person["password"])
    assert signed_in.page.ids["account-email"] == NEW


def test_the_current_password_comes_first(app, signed_in):
    signed_in.post("/account/email", {"email": NEW, "current_password": "correct horse battery staple"})
    assert signed_in.status == 400 and mail_count(app, NEW) == 0  # no CSRF token
    start_change(signed_in, password="wrong")
    assert signed_in.status == 401 and signed_in.alert
    assert mail_count(app, NEW) == 0
    with app.app_context():
        assert db.session.scalars(select(Flow).where(Flow.kind == "email_change")).all() == []
    (failure,) = audited(app, "password.check")
    assert failure.outcome == "failure"


@pytest.mark.parametrize("email, status, text", [
    ("not an address", 400, "valid e-mail address"),
    ("ANNA@example.com", 400, "already the e-mail address"),
    ("", 400, "valid e-mail address"),
])
def test_a_bad_new_address_is_refused(app, signed_in, email, status, text):
    start_change(signed_in, email=email)
    assert signed_in.status == status and text in signed_in.alert
    with app.app_context():
        assert db.session.scalars(select(Flow).where(Flow.kind == "email_change")).all() == []


def test_an_address_of_another_account_is_told_only_to_who_holds_it(app, signed_in):
    make_account(app, "bob@example.com", "another good password", name="Bob")
    start_change(signed_in, email="bob@example.com")
    # The same answer and the same mail as for a free address: who does not hold it learns nothing.
    assert signed_in.status == 200 and signed_in.step_state == "code"
    assert last_mail(app, "bob@example.com").kind == "email_change_code"
    signed_in.submit(email_code=code_from_mail(app, "bob@example.com"))
    assert signed_in.status == 409 and "belongs to another account" in signed_in.alert
    assert account(app, "anna@example.com") is not None and account(app, "bob@example.com").name == "Bob"
    (refused,) = audited(app, "email.change")
    assert refused.outcome == "failure"
    assert audited(app, "email.changed") == []


def test_resend_and_the_flow_belongs_to_its_browser_and_account(app, signed_in, portal, person):
    start_change(signed_in)
    flow_url = signed_in.url
    first = code_from_mail(app, NEW)
    clock.advance(seconds=31)
    signed_in.action("resend")
    assert signed_in.status == 200 and mail_count(app, NEW) == 2
    second = code_from_mail(app, NEW)
    if first != second:
        signed_in.submit(email_code=first)
        assert signed_in.status == 400  # superseded
    # Another browser of the same person does not own the flow.
    other = Browser(app)
    other.totp_secret, other._last_counter = signed_in.totp_secret, signed_in._last_counter
    clock.advance(seconds=30)
    other.get("/account")
    other.sign_in(person["email"], person["password"])
    other.get(flow_url)
    assert other.status == 404
    # Without the CSRF token nothing happens.
    form = signed_in.page.forms["step"]
    signed_in.post(form["action"], {"state": "code", "email_code": second})
    assert signed_in.status == 400 and account(app, NEW) is None
    # Once the flow has expired, the code no longer changes anything.
    clock.advance(minutes=31)
    signed_in.get(flow_url)
    assert signed_in.status == 410
    assert account(app, NEW) is None


def test_a_flow_of_another_account_on_the_same_browser_is_not_found(app, signed_in, person):
    start_change(signed_in)
    flow_url = signed_in.url
    make_account(app, "bob@example.com", "another good password", name="Bob")
    # Anna signs out; Bob signs in on the same browser, which still holds Anna's flow.
    signed_in.get("/account")
    form = next(f for f in signed_in.page.forms.values() if f["action"].startswith("/logout"))
    signed_in.post(form["action"], form["fields"])
    bob = signed_in
    bob.get("/account")
    bob.sign_in("bob@example.com", "another good password", first_time=True)
    assert bob.url.startswith("/account")
    bob.get(flow_url)
    assert bob.status == 404
