"""F9 the support console and the CLI: staff only, fresh sign-in, a reason for every action, audit."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from sqlalchemy import select

from idp import clock
from idp.extensions import db
from idp.models import Account, AuditEvent
from tests.helpers import FULL, introspect, refresh
from tests.helpers import CHEAP_CAPTCHA, exchange_code, last_mail, wrong_password

STAFF = ("helpdesk@example.com", "Staff-password-2026!")


@pytest.fixture
def staff(app, cli, browser):
    """A staff member signed in to the console (first login done)."""
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0, 5))
    assert cli.invoke(args=["staff", "create", "--email", STAFF[0], "--password", STAFF[1], "--json"]).exit_code == 0
    browser.get("/support")
    assert browser.step_state == "email"
    browser.sign_in(*STAFF, first_time=True)
    assert browser.status == 200 and browser.url == "/support" and "search" in browser.page.forms
    return browser


@pytest.fixture
def customer(app, browser, portal, person):
    """A person who did the first login in another browser; returns (browser, secret)."""
    other = type(browser)(app)
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0, 5))
    other.authorize(portal["client_id"], scope=FULL)
    other.sign_in(person["email"], person["password"], first_time=True)
    other.tokens = exchange_code(other.http, portal, other.callback_params()["code"], other.verifier).get_json()
    return other


def events(app, action):
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def open_account(staff, email):
    staff.get(f"/support?q={email.split('@')[0]}")
    assert email in staff.page.ids["results"]
    import re

    href = re.search(r'href="(/support/accounts/[0-9a-f]+)"', staff.text).group(1)
    staff.get(href)
    assert staff.status == 200
    return href


def test_console_is_for_staff_only(app, browser, customer, person):
    customer.get("/support")
    assert customer.status == 404
    anonymous = type(browser)(app)
    anonymous.get("/support")
    assert anonymous.step_state == "email"  # sign in first
    r = anonymous.http.post("/support/accounts/x/disable", data={"reason": "x"})
    assert r.status_code in (302, 400)


def test_search_and_account_page(app, staff, customer, person):
    open_account(staff, person["email"])
    assert "status-active" in staff.text
    assert staff.page.ids["email-verified"].strip() in ("Yes", "Ja")
    events_table = staff.page.ids["events"]
    assert "Signed in" in events_table or "Aangemeld" in events_table  # the event's name, not its code
    assert "login.success" not in events_table
    staff.get("/support?q=zzz-nobody")
    assert "results" not in staff.page.ids


def test_reset_2fa_with_a_reason(app, staff, customer, person, portal):
    open_account(staff, person["email"])
    staff.submit("reset-2fa", reason="", confirm="yes")
    assert staff.status == 400 and staff.alert
    staff.submit("reset-2fa", reason="Lost phone, called from known number")
    assert staff.status == 400 and staff.alert  # not confirmed
    # The refusal stands in its own group, which keeps the reason typed, and the page opens there.
    group = re.search(r'<form [^>]*id="reset-2fa">.*?</form>', staff.text, re.S).group(0)
    assert 'role="alert"' in group and 'value="Lost phone, called from known number"' in group
    assert staff.text.count('role="alert"') == 1 and staff.url.endswith("#reset-2fa")
    staff.submit("reset-2fa", reason="Lost phone, called from known number", confirm="yes")
    assert staff.status == 200 and "done" in staff.page.ids  # "Two-step verification is reset ..."
    (event,) = events(app, "support.reset_2fa")
    assert event.actor == f"staff:{STAFF[0]}" and event.reason == "Lost phone, called from known number"
    assert event.ip and event.subject == person["email"]
    assert last_mail(app, person["email"]).kind == "totp_cleared"
    # The old secret stops at once; the next sign-in enrols a new one.
    customer.forget()
    clock.advance(seconds=30)
    customer.authorize(portal["client_id"])
    customer.submit(email=person["email"])
    customer.submit(password=person["password"])
    assert customer.step_state == "totp_enroll"


def test_disable_ends_sessions_and_tokens_then_enable(app, staff, customer, person, portal):
    open_account(staff, person["email"])
    staff.submit("disable", reason="Fraud report #123", confirm="yes")
    assert staff.status == 200 and "status-disabled" in staff.text
    assert refresh(customer.http, portal, customer.tokens["refresh_token"]).status_code == 400
    assert introspect(customer.http, portal, customer.tokens["access_token"])["active"] is False
    customer.authorize(portal["client_id"], prompt="none")
    assert customer.callback_params()["error"] == "login_required"
    customer.authorize(portal["client_id"])
    customer.submit(email=person["email"])
    customer.submit(password=person["password"])
    assert customer.status == 403 and customer.alert
    customer.authorize(portal["client_id"])
    customer.submit(email=person["email"])
    customer.submit(password="wrong password")
    assert customer.status == 401  # a wrong password does not learn that it is disabled
    staff.submit("enable", reason="Cleared")
    assert "status-active" in staff.text


@pytest.mark.config(**CHEAP_CAPTCHA)
def test_unlock(app, staff, customer, person, portal, cli):
    customer.forget()
    customer.authorize(portal["client_id"])
    customer.submit(email=person["email"])
    for _ in range(5):
        wrong_password(customer)
    assert customer.status == 423
    open_account(staff, person["email"])
    assert "status-locked" in staff.text
    staff.submit("unlock", reason="")
    assert staff.status == 400
    staff.submit("unlock", reason="Verified by phone")
    assert "status-active" in staff.text
    assert events(app, "account.unlocked")[0].reason == "Verified by phone"


def test_the_events_by_kind_period_and_page(app, staff, customer, person, cli):
    href = open_account(staff, person["email"])
    for n in range(30):  # a busy account: more events than one page holds
        assert cli.invoke(args=["invitations", "create", "--email", person["email"],
                                "--administration", f"Zaak {n}", "--json"]).exit_code == 0
    clock.advance(days=2)
    staff.get(href)
    staff.sign_in(*STAFF)  # the console wants a fresh sign-in
    staff.get(href + "?kind=invitations")
    rows = re.findall(r'<tr data-action="([a-z_.]+)"', staff.text)
    assert rows == ["invitation.created"] * 25 and 'rel="next"' in staff.text
    staff.get(href + "?kind=invitations&page=2")
    assert re.findall(r'<tr data-action="([a-z_.]+)"', staff.text) == ["invitation.created"] * 5
    assert 'rel="prev"' in staff.text and 'rel="next"' not in staff.text
    staff.get(href + "?kind=sign_in&period=day")  # the sign-ins were two days ago
    assert "no-events" in staff.page.ids
    staff.get(href + "?kind=sign_in&period=week")
    assert {"login.password", "email_code.verified", "login.success"} <= set(re.findall(r'<tr data-action="([a-z_.]+)"', staff.text))
    staff.get(href + "?kind=nonsense&period=nonsense&page=x")  # no filter, the first page
    assert staff.status == 200 and len(re.findall(r"<tr data-action=", staff.text)) == 25
    staff.get(href + "?page=" + "9" * 40)
    assert staff.status == 200 and "no-events" in staff.page.ids


def test_staff_actions_need_a_recent_sign_in(app, staff, customer, person):
    href = open_account(staff, person["email"])
    clock.advance(minutes=16)
    staff.get(href)
    assert staff.step_state == "email"
    r = staff.http.post(href + "/disable", data={"reason": "x", "confirm": "yes"})
    assert r.status_code in (302, 400)
    with app.app_context():
        assert db.session.scalar(select(Account).where(Account.email == person["email"])).disabled_at is None


def test_actions_need_csrf(app, staff, customer, person):
    href = open_account(staff, person["email"])
    r = staff.http.post(href + "/disable", data={"reason": "x", "confirm": "yes"})
    assert r.status_code == 400


# -- the CLI does the same --------------------------------------------------------------


def test_cli_parity(app, cli, customer, person):
    assert cli.invoke(args=["support", "reset-2fa", person["email"]]).exit_code != 0  # --reason required
    result = cli.invoke(args=["support", "reset-2fa", person["email"], "--reason", "Lost phone"])
    assert result.exit_code == 0, result.output
    shown = json.loads(cli.invoke(args=["accounts", "show", person["email"], "--json"]).output)
    assert shown["totp_enrolled"] is False
    assert cli.invoke(args=["support", "disable", person["email"], "--reason", "Fraud"]).exit_code == 0
    assert json.loads(cli.invoke(args=["accounts", "show", person["email"], "--json"]).output)["status"] == "disabled"
    assert cli.invoke(args=["support", "enable", person["email"], "--reason", "OK"]).exit_code == 0
    # CONTRACT section 3: the reason of an unlock is optional on the command line (kept when given).
    assert cli.invoke(args=["support", "unlock", person["email"]]).exit_code == 0
    assert cli.invoke(args=["support", "unlock", person["email"], "--reason", "Called in"]).exit_code == 0
    assert cli.invoke(args=["support", "disable", "nobody@example.com", "--reason", "x"]).exit_code != 0
    log = json.loads(cli.invoke(args=["audit", "list", "--subject", person["email"], "--json"]).output)
    actions = [e["action"] for e in log]
    assert actions[:5] == ["account.unlocked", "account.unlocked", "support.enable", "support.disable", "support.reset_2fa"]
    assert all(e["actor"].startswith("cli:") for e in log[:4])
    assert log[4]["reason"] == "Lost phone" and log[0]["reason"] == "Called in" and log[1]["reason"] is None


def test_console_invitation_and_connector_actions(app, staff, cli, browser):
    from tests.helpers import accept_until, invite

    data = invite(cli, "klant@example.com", "Bakkerij Jansen")
    client = type(browser)(app)
    accept_until(client, app, data["invitation_url"], "contract")
    client.submit(accept_terms="yes", accept_privacy="yes")
    second = invite(cli, "klant@example.com", "Tweede Zaak")
    open_account(staff, "klant@example.com")
    staff.submit(f"revoke-{second['id']}", reason="Sent by mistake")
    assert staff.status == 400 and staff.alert and "status-revoked" not in staff.text  # the box is not ticked
    staff.submit(f"revoke-{second['id']}", reason="Sent by mistake", confirm="yes")
    assert staff.status == 200 and "status-revoked" in staff.text
    (event,) = events(app, "invitation.revoked")
    assert event.reason == "Sent by mistake" and event.actor == f"staff:{STAFF[0]}"
    release_form = next(k for k in staff.page.forms if k.startswith("release-"))
    staff.submit(release_form, reason="Owner asked on the phone")
    assert staff.status == 200
    assert events(app, "support.release_reset_throttle")[0].reason == "Owner asked on the phone"


def test_nul_in_an_account_id(app, staff):
    """No account has it: 404 where the database can compare it, 400 where it cannot (PostgreSQL)."""
    staff.get("/support/accounts/%00")
    assert staff.status in (400, 404)
