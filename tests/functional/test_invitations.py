"""F1 invite a client and F2 accept the invitation, through the Flask test client."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from sqlalchemy import func, select

from idp import clock
from idp.extensions import db
from idp.models import Account, Administration, AuditEvent, ConnectorUser, FirmClient, Invitation, Membership
from tests.helpers import (GOOD_PASSWORD, accept_until, code_from_mail, exchange_code, form_with, invite, last_mail, mail_count,
                           make_account, path_of, post_form)

@pytest.fixture
def firm(cli):
    return json.loads(cli.invoke(args=["firms", "create", "--name", "Boekhouders BV", "--json"]).output)["administration_id"]


def count(app, model, *where):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_invitation_mail_and_cli_output(app, cli, firm):
    data = invite(cli, "klant@example.com", "Bakkerij Jansen", "--firm", firm)
    assert data["invitation_url"].startswith("http://idp.test/invitation/")
    mail = last_mail(app, "klant@example.com")
    assert data["invitation_url"] in mail.text and "Boekhouders BV" in mail.text
    assert data["invitation_url"] in mail.html


def test_accept_creates_everything_in_one_go(app, cli, browser, firm):
    data = invite(cli, "klant@example.com", "Bakkerij Jansen", "--firm", firm)
    accept_until(browser, app, data["invitation_url"], "contract")
    assert "Bakkerij Jansen" in browser.page.ids["contract"] and "Boekhouders BV" in browser.page.ids["contract"]
    assert count(app, Account) == 0  # nothing exists before the confirmation
    browser.submit(accept_terms="yes")
    assert browser.status == 400 and browser.alert and browser.step_state == "contract"
    browser.submit(accept_terms="yes", accept_privacy="yes")
    assert browser.status == 200 and "continue" in browser.page.ids or "Sign in" in browser.text
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.email == "klant@example.com"))
        assert account.name == "Piet Jansen" and not account.totp_enrolled
        (membership,) = account.memberships
        assert membership.role == "owner" and membership.administration.name == "Bakkerij Jansen"
        administration = membership.administration
        assert db.session.scalar(select(FirmClient).where(FirmClient.administration_id == administration.id)).firm_id == firm
        connector = db.session.scalar(select(ConnectorUser).where(ConnectorUser.administration_id == administration.id))
        assert re.fullmatch(r"U[A-Z0-9]{5}\d{4}", connector.username) and connector.password_hash is None
        assert db.session.get(Invitation, data["id"]).accepted_at is not None


def test_accepting_a_firms_invitation_records_the_firm_link_like_sign_up_and_the_portal(app, cli, browser, firm):
    data = invite(cli, "klant@example.com", "Bakkerij Jansen", "--firm", firm)
    accept_until(browser, app, data["invitation_url"], "contract")
    browser.submit(accept_terms="yes", accept_privacy="yes")
    assert browser.status == 200
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.email == "klant@example.com"))
        (membership,) = account.memberships
        linked = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "firm.linked")).all()
        assert [(e.actor, e.subject, e.detail) for e in linked] == [
            (account.id, firm, {"administration": membership.administration_id, "firm": "Boekhouders BV",
                                "role": "accountant", "via": "invitation"})]


def test_the_new_account_signs_in_with_first_login(app, cli, browser, portal):
    data = invite(cli)
    accept_until(browser, app, data["invitation_url"], "contract")
    browser.submit(accept_terms="yes", accept_privacy="yes")
    browser.forget()
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0, 5))
    browser.authorize(portal["client_id"], scope="openid email administrations")
    # The invitation confirmed the address with a code: the first sign-in asks for no second one.
    browser.sign_in("klant@example.com", GOOD_PASSWORD, first_time=True, email_verified=True)
    assert mail_count(app, "klant@example.com") == 2  # the invitation and its one code
    code = browser.callback_params()["code"]
    body = exchange_code(browser.http, portal, code, browser.verifier).get_json()
    info = browser.http.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]}).get_json()
    assert [a["name"] for a in info["administrations"]] == ["Bakkerij Jansen"]
    assert info["administrations"][0]["role"] == "owner"


def test_wrong_code_and_password_policy(app, cli, browser):
    data = invite(cli)
    accept_until(browser, app, data["invitation_url"], "email_code")
    browser.submit(email_code="000000" if code_from_mail(app, "klant@example.com") != "000000" else "111111")
    assert browser.status == 400 and browser.step_state == "email_code"
    browser.submit(email_code=code_from_mail(app, "klant@example.com"))
    for bad, confirm in [("short1!", "short1!"), ("password1234", "password1234"), ("klant-Zomer-fiets-42", "klant-Zomer-fiets-42"),
                         (GOOD_PASSWORD, GOOD_PASSWORD + "x"), ("aaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaa")]:
        browser.submit(password=bad, password_confirm=confirm)
        assert browser.status == 400 and browser.alert and browser.step_state == "password", bad
    browser.submit(password=GOOD_PASSWORD, password_confirm=GOOD_PASSWORD)
    assert browser.step_state == "contract"


def test_live_password_check(app, cli, browser):
    data = invite(cli)
    accept_until(browser, app, data["invitation_url"], "password")
    url = browser.page.ids and browser.url + "/password-check"
    token = browser.page.forms["step"]["fields"]["csrf_token"]
    verdict = browser.http.post(url, data={"password": "short", "password_confirm": "", "csrf_token": token}).get_json()
    assert verdict["ok"] is False and verdict["rules"]["length"] is False
    verdict = browser.http.post(url, data={"password": GOOD_PASSWORD, "password_confirm": GOOD_PASSWORD,
                                           "csrf_token": token}).get_json()
    assert verdict["ok"] is True


def test_used_expired_revoked_and_replaced_links(app, cli, browser):
    data = invite(cli)
    accept_until(browser, app, data["invitation_url"], "contract")
    browser.submit(accept_terms="yes", accept_privacy="yes")
    other = type(browser)(app)
    other.get(path_of(data["invitation_url"]))
    assert other.status == 410 and other.alert

    clock.freeze(dt.datetime(2026, 11, 23, 9, 0))
    late = invite(cli, "late@example.com", "Late BV")
    clock.advance(days=14, seconds=1)
    other.get(path_of(late["invitation_url"]))
    assert other.status == 410 and other.alert

    revoked = invite(cli, "gone@example.com", "Gone BV")
    assert cli.invoke(args=["invitations", "revoke", revoked["id"]]).exit_code == 0
    other.get(path_of(revoked["invitation_url"]))
    assert other.status == 410 and other.alert

    resent = invite(cli, "again@example.com", "Again BV")
    new = json.loads(cli.invoke(args=["invitations", "resend", resent["id"], "--json"]).output)
    assert new["invitation_url"] != resent["invitation_url"]
    other.get(path_of(resent["invitation_url"]))
    assert other.status == 404 and other.alert
    other.get(path_of(new["invitation_url"]))
    assert other.step_state == "intro"
    assert mail_count(app, "again@example.com") == 2
    other.get("/invitation/not-a-real-token-at-all-xxxxxxxx")
    assert other.status == 404


def test_revoked_while_accepting_leaves_nothing(app, cli, browser):
    data = invite(cli)
    accept_until(browser, app, data["invitation_url"], "contract")
    cli.invoke(args=["invitations", "revoke", data["id"]])
    browser.submit(accept_terms="yes", accept_privacy="yes")
    assert browser.status == 410
    assert count(app, Account) == 0 and count(app, Administration) == 0


@pytest.mark.parametrize("locale, says, heading", [
    ("nl", "Er bestaat nu een account met dit e-mailadres. Meld je daarmee aan om de uitnodiging te accepteren",
     "<h1>Meld je aan om te accepteren</h1>"),
    ("en", "An account with this e-mail address exists now. Sign in with it to accept the invitation",
     "<h1>Sign in to accept</h1>"),
])
def test_an_account_made_for_the_address_meanwhile_is_told_to_sign_in_to_accept(app, cli, browser, locale, says, heading):
    data = invite(cli)
    accept_until(browser, app, data["invitation_url"], "contract")
    browser.get(browser.url + f"?lang={locale}")
    make_account(app, "klant@example.com", "another correct horse battery")  # e.g. signed up elsewhere
    browser.submit(accept_terms="yes", accept_privacy="yes")
    assert browser.status == 409 and says in browser.alert, (browser.status, browser.alert)
    assert "accepted" not in browser.alert and "geaccepteerd" not in browser.alert and heading in browser.text
    assert count(app, Account) == 1 and count(app, Administration) == 0
    with app.app_context():
        assert db.session.get(Invitation, data["id"]).accepted_at is None
    # The invitation still waits: its link now asks the account to sign in and accept.
    again = type(browser)(app)
    again.get(path_of(data["invitation_url"]))
    assert again.status == 200 and flow_state(app, again.url) == "signin"


def test_failure_in_the_middle_leaves_nothing_half_written(app, cli, browser, monkeypatch):
    from idp.services import administrations

    data = invite(cli)
    accept_until(browser, app, data["invitation_url"], "contract")

    def broken(*args, **kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(administrations, "new_connector_username", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    browser.submit(accept_terms="yes", accept_privacy="yes")
    assert browser.status == 500
    assert count(app, Account) == 0 and count(app, Administration) == 0 and count(app, Membership) == 0
    with app.app_context():
        assert db.session.get(Invitation, data["id"]).accepted_at is None


def test_step_out_of_order_and_foreign_flow(app, cli, browser):
    data = invite(cli)
    accept_until(browser, app, data["invitation_url"], "email_code")
    fields = dict(browser.page.forms["step"]["fields"])
    browser.post(browser.page.forms["step"]["action"], dict(fields, state="contract", accept_terms="yes", accept_privacy="yes"))
    assert browser.status == 409
    stranger = type(browser)(app)
    stranger.get(browser.url)
    assert stranger.status == 404


def test_existing_account_signs_in_and_only_gets_the_membership(app, cli, browser, person):
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0, 5))
    browser.get("/account")
    browser.sign_in(person["email"], person["password"], first_time=True)
    browser.forget()
    data = invite(cli, person["email"], "Tweede Zaak")
    browser.get(path_of(data["invitation_url"]))
    assert browser.step_state is None and "signin" in browser.url or browser.page.forms["step"]
    browser.submit()  # "Sign in"
    assert browser.step_state == "email"
    assert browser.page.forms["step"]["fields"]["email"] == person["email"]
    clock.advance(seconds=30)
    browser.sign_in(person["email"], person["password"])
    # Back from signing in: a page that says as whom, and the flow has not moved by the GET.
    assert person["email"] in browser.text and flow_state(app, browser.url) == "signin"
    browser.get(browser.url)
    assert flow_state(app, browser.url) == "signin"
    browser.submit()  # "Continue"
    assert browser.step_state == "contract", (browser.status, browser.url)
    browser.submit(accept_terms="yes", accept_privacy="yes")
    assert count(app, Account) == 1
    with app.app_context():
        account = db.session.get(Account, person["sub"])
        assert [m.administration.name for m in account.memberships] == ["Tweede Zaak"]


def flow_state(app, url) -> str:
    from idp.models import Flow

    with app.app_context():
        return db.session.get(Flow, url.rstrip("/").rsplit("/", 1)[-1]).state


def test_existing_account_signed_in_as_someone_else(app, cli, browser, person):
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0, 5))
    browser.get("/account")
    browser.sign_in(person["email"], person["password"], first_time=True)
    assert cli.invoke(args=["users", "create", "--email", "other@example.com", "--password", "Second-account-pass-12!"]).exit_code == 0
    data = invite(cli, "other@example.com", "Andere Zaak")
    browser.get(path_of(data["invitation_url"]))
    assert browser.status == 409 and browser.alert


# -- F1: the firm's client management ------------------------------------------------------


@pytest.fixture
def accountant(app, cli, browser, firm):
    """An accountant of the firm, signed in."""
    data = invite(cli, "boekhouder@example.com", "Boekhouders BV", "--firm", firm, "--role", "accountant")
    accept_until(browser, app, data["invitation_url"], "contract", email="boekhouder@example.com")
    browser.submit(accept_terms="yes", accept_privacy="yes")
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0, 5))
    browser.get("/account")
    browser.sign_in("boekhouder@example.com", GOOD_PASSWORD, first_time=True, email_verified=True)
    return browser


def test_accountant_invites_a_client_from_client_management(app, accountant, firm):
    page = f"/firms/{firm}/invitations"
    accountant.get("/account")
    assert any(page in v for v in [accountant.text])
    accountant.get(page)
    assert accountant.status == 200
    accountant.submit("invite", email="nieuw@example.com", name="Nieuwe Klant", administration="Nieuw BV", action="preview")
    assert "Nieuw BV" in accountant.page.ids["preview"] and "Boekhouders BV" in accountant.page.ids["preview"]
    assert mail_count(app, "nieuw@example.com") == 0
    accountant.submit("invite", action="send")
    assert accountant.status == 200 and "Nieuw BV" in accountant.page.ids["invitations"]
    assert mail_count(app, "nieuw@example.com") == 1
    # resend and revoke from the list
    resend = next(f for f in accountant.page.forms.values() if f["action"].endswith("/resend"))
    accountant.post(resend["action"], resend["fields"])
    assert mail_count(app, "nieuw@example.com") == 2
    assert accountant.url.endswith("done=resent") and "code-sent" not in accountant.page.ids
    revoke = next(f for f in accountant.page.forms.values() if f["action"].endswith("/revoke"))
    accountant.post(revoke["action"], revoke["fields"])
    assert accountant.status == 200 and "confirm-withdraw" in accountant.page.forms  # asks first
    assert "status-revoked" not in accountant.text
    accountant.submit("confirm-withdraw")
    assert accountant.url.endswith("done=revoked") and "status-revoked" in accountant.text


def test_invite_form_refuses_bad_input(accountant, firm):
    accountant.get(f"/firms/{firm}/invitations")
    accountant.submit("invite", email="not an address", name="X", administration="X BV", action="send")
    assert accountant.status == 400 and accountant.alert
    accountant.submit("invite", email="x@example.com", name="X", administration="", action="send")
    assert accountant.status == 400 and accountant.alert


def test_client_management_is_for_the_firms_accountants_only(app, browser, person, firm):
    browser.get(f"/firms/{firm}/invitations")
    assert browser.step_state == "email"  # not signed in: sign in first
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0, 5))
    browser.sign_in(person["email"], person["password"], first_time=True)
    browser.get(f"/firms/{firm}/invitations")
    assert browser.status == 404


def test_accountant_sees_the_firms_client_administrations(app, cli, accountant, firm, portal):
    data = invite(cli, "klant@example.com", "Bakkerij Jansen", "--firm", firm)
    client = type(accountant)(app)
    accept_until(client, app, data["invitation_url"], "contract")
    client.submit(accept_terms="yes", accept_privacy="yes")
    clock.advance(seconds=30)
    accountant.authorize(portal["client_id"], scope="openid administrations")
    code = accountant.callback_params()["code"]
    body = exchange_code(accountant.http, portal, code, accountant.verifier).get_json()
    from tests.helpers import decode

    claims = decode(accountant.http, body["id_token"]).claims
    names = {(a["name"], a["role"]) for a in claims["administrations"]}
    assert names == {("Bakkerij Jansen", "accountant"), ("Boekhouders BV", "accountant")}


def firm_invitation(app, email):
    with app.app_context():
        return db.session.scalar(select(Invitation).where(Invitation.email == email).order_by(Invitation.created_at.desc()))


def test_a_second_invitation_to_the_same_client_is_refused_and_offers_resend(app, accountant, firm):
    page = f"/firms/{firm}/invitations?lang=en"
    accountant.get(page)
    accountant.submit("invite", email="nieuw@example.com", name="Nieuwe Klant", administration="Nieuw BV", action="send")
    assert accountant.url.endswith("done=sent") and "has been sent" in accountant.page.ids["main"]
    first = firm_invitation(app, "nieuw@example.com")
    accountant.submit("invite", email="Nieuw@Example.com", name="Nieuwe Klant", administration="nieuw bv", action="send")
    assert accountant.status == 409 and "still open" in accountant.alert
    assert accountant.page.forms["invite"]["fields"]["email"] == "Nieuw@Example.com"  # what was typed stays
    assert mail_count(app, "nieuw@example.com") == 1 and count(app, Invitation, Invitation.email == "nieuw@example.com") == 1
    # The refusal offers to send the open invitation again: a new link, and the page says so.
    assert accountant.page.forms["resend-open"]["action"].endswith(f"/invitations/{first.id}/resend")
    accountant.submit("resend-open")
    assert accountant.url.endswith("done=resent") and "sent again" in accountant.page.ids["main"]
    assert mail_count(app, "nieuw@example.com") == 2 and firm_invitation(app, "nieuw@example.com").token_hash != first.token_hash
    # Another administration for the same client is another invitation.
    accountant.submit("invite", email="nieuw@example.com", name="Nieuwe Klant", administration="Tweede BV", action="send")
    assert accountant.url.endswith("done=sent") and mail_count(app, "nieuw@example.com") == 3


def test_revoke_asks_first_and_refuses_what_is_no_longer_open(app, accountant, firm):
    accountant.get(f"/firms/{firm}/invitations?lang=en")
    accountant.submit("invite", email="nieuw@example.com", name="Nieuwe Klant", administration="Nieuw BV", action="send")
    invitation = firm_invitation(app, "nieuw@example.com")
    revoke = f"/firms/{firm}/invitations/{invitation.id}/revoke"
    post_form(accountant, form_with(accountant, revoke))
    # The question names the invitation; Cancel leads back and the invitation stays open.
    assert accountant.status == 200 and "nieuw@example.com" in accountant.page.ids["main"]
    assert "Nieuw BV" in accountant.page.ids["invitation"]
    assert firm_invitation(app, "nieuw@example.com").revoked_at is None
    accountant.get(path_of(re.search(r'id="keep-invitation" href="([^"]+)"', accountant.text).group(1)))
    assert accountant.status == 200 and "invitations" in accountant.page.ids
    post_form(accountant, form_with(accountant, revoke))
    accountant.submit("confirm-withdraw")
    assert accountant.url.endswith("done=revoked") and "withdrawn" in accountant.page.ids["main"]
    assert firm_invitation(app, "nieuw@example.com").revoked_at is not None
    # Withdrawn: the question is not asked again, and it cannot be resent.
    token = accountant.page.forms["invite"]["fields"]["csrf_token"]
    accountant.post(revoke, {"csrf_token": token})
    assert accountant.status == 404 and "no open invitation" in accountant.alert
    accountant.post(f"/firms/{firm}/invitations/{invitation.id}/resend", {"csrf_token": token})
    assert accountant.status == 409 and "new invitation" in accountant.alert and mail_count(app, "nieuw@example.com") == 1
    # A withdrawn invitation does not block a new one.
    accountant.submit("invite", email="nieuw@example.com", name="Nieuwe Klant", administration="Nieuw BV", action="send")
    assert accountant.url.endswith("done=sent") and mail_count(app, "nieuw@example.com") == 2


def test_another_firms_invitation_is_not_found(app, cli, accountant, firm):
    other = json.loads(cli.invoke(args=["firms", "create", "--name", "Andere BV", "--json"]).output)["administration_id"]
    data = invite(cli, "elders@example.com", "Elders BV", "--firm", other)
    accountant.get(f"/firms/{firm}/invitations?lang=en")
    token = accountant.page.forms["invite"]["fields"]["csrf_token"]
    for action in ("resend", "revoke"):
        accountant.post(f"/firms/{firm}/invitations/{data['id']}/{action}", {"csrf_token": token, "confirm": "yes"})
        assert accountant.status == 404
    assert mail_count(app, "elders@example.com") == 1 and firm_invitation(app, "elders@example.com").revoked_at is None


def test_cli_refuses_a_second_open_invitation_and_names_the_first(app, cli):
    data = invite(cli, "klant@example.com", "Bakkerij Jansen")
    result = cli.invoke(args=["invitations", "create", "--email", "klant@example.com", "--administration", "Bakkerij Jansen"])
    assert result.exit_code != 0 and "still open" in result.output and f"idp invitations resend {data['id']}" in result.output
    assert mail_count(app, "klant@example.com") == 1


@pytest.mark.parametrize("locale, sign_in, create", [
    ("nl", "meld je aan om de uitnodiging te accepteren", "account aan te maken"),
    ("en", "sign in to accept the invitation", "create your account"),
])
def test_the_mail_to_an_address_with_an_account_says_sign_in_to_accept(app, cli, person, locale, sign_in, create):
    invite(cli, person["email"], "Tweede Zaak", "--locale", locale)
    mail = last_mail(app, person["email"])
    assert sign_in in mail.text and sign_in in mail.html and create not in mail.text and create not in mail.html
    invite(cli, "nieuw@example.com", "Nieuwe Zaak", "--locale", locale)
    mail = last_mail(app, "nieuw@example.com")
    assert create in mail.text and sign_in not in mail.text


def test_client_management_invites_an_address_with_an_account_to_sign_in_and_accept(app, accountant, firm, person):
    accountant.get(f"/firms/{firm}/invitations?lang=en")
    accountant.submit("invite", email=person["email"], name="Anna", administration="Annas Zaak", action="preview")
    assert "sign in to accept" in accountant.page.ids["preview"] and "create your account" not in accountant.page.ids["preview"]
    accountant.submit("invite", action="send")
    mail = last_mail(app, person["email"])
    assert "sign in to accept" in mail.text and "create your account" not in mail.text
    url = next(word for word in mail.text.split() if word.startswith("http://idp.test/invitation/"))
    # The invitee's page says the same: sign in (no new account, no password to choose).
    invitee = type(accountant)(app)
    invitee.get(path_of(url) + "?lang=en")
    invitee.get(invitee.url + "?lang=en")
    assert invitee.status == 200 and "Sign in to accept" in invitee.page.ids["main"]
    assert "password" not in invitee.page.forms["step"]["fields"]
    assert "email_code" not in invitee.page.forms["step"]["fields"]
