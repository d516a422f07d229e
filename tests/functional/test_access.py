"""F8 access management: an owner gives and removes access on /administrations/<id>/access
and with `idp access`; the `administrations` claim follows from the next token on."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from idp.extensions import db
from idp.models import Account, Administration, AuditEvent, Invitation, Membership, OutboxMail
from tests.helpers import (FULL, accept_until, decode, form_with, last_mail, mail_count, make_account, make_company,
                           post_form, refresh, signed_in_at_provider, tokens_for)

PASSWORD = "correct horse battery staple"


@pytest.fixture
def owner(app):
    return make_account(app, "anna@example.com", PASSWORD, name="Anna de Vries")


@pytest.fixture
def accountant(app):
    return make_account(app, "bert@boekhouders.example", PASSWORD, name="Bert Boekhouder")


@pytest.fixture
def company(app, owner):
    return make_company(app, owner["email"])


@pytest.fixture
def owner_browser(app, owner, company):
    return signed_in_at_provider(app, owner)


def access_page(browser, company):
    browser.get(f"/administrations/{company}/access")
    assert browser.status == 200, (browser.status, browser.alert)
    return browser


def grant(browser, company, email, role):
    access_page(browser, company)
    browser.submit("grant-access", email=email, role=role)
    return browser


def revoke(browser, company, email):
    access_page(browser, company)
    post_form(browser, form_with(browser, "/access/revoke", email=email))
    return browser


def open_invitation_id(app, email):
    with app.app_context():
        return db.session.scalar(select(Invitation.id).where(Invitation.email == email, Invitation.revoked_at.is_(None)))


def withdraw(browser, company, email):
    """The row's "Withdraw invitation", the question, and its confirmation."""
    access_page(browser, company)
    post_form(browser, form_with(browser, f"/access/invitations/{open_invitation_id(browser.app, email)}/withdraw"))
    assert browser.status == 200 and email in browser.page.ids["main"]
    browser.submit("confirm-withdraw")
    return browser


def membership(app, email, company):
    with app.app_context():
        row = db.session.execute(
            select(Membership.role).join(Account, Account.id == Membership.account_id).where(
                func.lower(Account.email) == email.lower(), Membership.administration_id == company)
        ).first()
        return row[0] if row else None


def audit_events(app, action):
    with app.app_context():
        return [(e.actor, e.subject, e.detail) for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))]


def mails(app):
    with app.app_context():
        return db.session.scalar(select(func.count(OutboxMail.id)))


def test_the_account_page_links_to_the_access_page_of_what_the_person_owns(app, owner_browser, company):
    b = owner_browser
    b.get("/account")
    assert f'href="/administrations/{company}/access"' in b.text and "manage-access" in b.text
    access_page(b, company)
    assert "anna@example.com" in b.page.ids["members"] and "Owner" in b.page.ids["members"]
    assert set(b.page.forms["grant-access"]["fields"]) >= {"email", "csrf_token"} and 'name="role"' in b.text
    assert 'class="revoke-access"' in b.text


def test_an_account_gets_access_at_once_with_a_mail_and_an_audit_entry(app, owner_browser, company, owner, accountant):
    b = grant(owner_browser, company, "Bert@Boekhouders.example", "accountant")
    assert b.status == 200 and b.url.endswith(f"/administrations/{company}/access?done=granted")
    assert "bert@boekhouders.example" in b.page.ids["members"]
    assert membership(app, "bert@boekhouders.example", company) == "accountant"
    mail = last_mail(app, "bert@boekhouders.example")
    assert "Bakkerij Jansen" in mail.subject and "Anna de Vries" in mail.text and "http://idp.test/account" in mail.text
    ((actor, subject, detail),) = audit_events(app, "access.granted")
    assert (actor, subject) == (owner["sub"], "bert@boekhouders.example")
    assert detail == {"administration": company, "role": "accountant", "status": "granted"}


def test_an_address_without_an_account_is_invited_and_joins_when_it_accepts(app, owner_browser, company):
    b = grant(owner_browser, company, "colleague@example.com", "employee")
    assert b.url.endswith("done=invited") and "Invited" in b.page.ids["members"]
    assert membership(app, "colleague@example.com", company) is None
    mail = last_mail(app, "colleague@example.com")
    assert "Bakkerij Jansen" in mail.text and "Anna de Vries" in mail.text
    url = next(word for word in mail.text.split() if word.startswith("http://idp.test/invitation/"))

    invitee = type(b)(app)
    accept_until(invitee, app, url, "contract", email="colleague@example.com")
    assert "Medewerker" in invitee.page.ids["contract"] and "Abonnement" not in invitee.page.ids["contract"]
    invitee.submit(accept_terms="yes", accept_privacy="yes")
    assert invitee.status == 200
    # The existing administration gained a member; no second administration was made.
    assert membership(app, "colleague@example.com", company) == "employee"
    with app.app_context():
        assert db.session.scalar(select(func.count(Administration.id))) == 1
    access_page(b, company)
    assert "Invited" not in b.page.ids["members"] and "colleague@example.com" in b.page.ids["members"]


def test_refusals_leave_nothing_half_written(app, owner_browser, company, accountant):
    b = grant(owner_browser, company, accountant["email"], "accountant")
    before = mails(app)
    for email, role, status in [(accountant["email"], "accountant", 409), (accountant["email"], "employee", 409),
                                ("anna@example.com", "employee", 409), ("new@example.com", "director", 400),
                                ("not an address", "employee", 400), ("", "employee", 400)]:
        grant(b, company, email, role)
        assert b.status == status and b.alert, (email, role, b.status)
        assert b.page.forms["grant-access"]["fields"]["email"] == email.strip()
    grant(b, company, "new@example.com", "employee")
    grant(b, company, "new@example.com", "accountant")
    assert b.status == 409 and "invitation" in b.alert
    assert mails(app) == before + 1  # the one invitation
    assert membership(app, accountant["email"], company) == "accountant"
    with app.app_context():
        assert db.session.scalar(select(func.count(Invitation.id))) == 1
    assert len(audit_events(app, "access.granted")) == 2


def test_the_last_owner_stays_and_a_second_owner_can_be_added(app, owner_browser, company, accountant):
    b = revoke(owner_browser, company, "anna@example.com")
    assert b.status == 409 and "owner" in b.alert
    assert membership(app, "anna@example.com", company) == "owner"

    grant(b, company, accountant["email"], "owner")
    assert membership(app, accountant["email"], company) == "owner"
    # Now Anna may leave: she lands on her account page, no longer an owner.
    revoke(b, company, "anna@example.com")
    assert b.url.endswith("/account") and b.status == 200
    assert membership(app, "anna@example.com", company) is None
    b.get(f"/administrations/{company}/access")
    assert b.status == 404 and b.alert
    ((actor, subject, detail),) = audit_events(app, "access.revoked")
    assert subject == "anna@example.com" and detail == {"administration": company, "role": "owner"}

    bert = signed_in_at_provider(app, accountant)
    revoke(bert, company, accountant["email"])
    assert bert.status == 409 and bert.alert and membership(app, accountant["email"], company) == "owner"


def test_removing_access_and_withdrawing_an_invitation(app, owner_browser, company, accountant, owner):
    b = grant(owner_browser, company, accountant["email"], "employee")
    grant(b, company, "later@example.com", "accountant")
    revoke(b, company, accountant["email"])
    assert b.url.endswith("done=revoked") and membership(app, accountant["email"], company) is None
    withdraw(b, company, "later@example.com")
    assert b.url.endswith("done=withdrawn") and "later@example.com" not in b.page.ids["members"]
    with app.app_context():
        assert db.session.scalar(select(Invitation)).revoked_at is not None
    revoked = audit_events(app, "access.revoked")
    assert [(a, s, d["role"]) for a, s, d in revoked] == [(owner["sub"], accountant["email"], "employee"),
                                                         (owner["sub"], "later@example.com", "accountant")]
    # Someone without access: a clear refusal.
    b.post(f"/administrations/{company}/access/revoke", {"email": "nobody@example.com",
                                                        "csrf_token": b.page.forms["grant-access"]["fields"]["csrf_token"]})
    assert b.status == 404 and b.alert


def test_only_owners_see_the_page_and_strangers_learn_nothing(app, owner_browser, company, accountant):
    grant(owner_browser, company, accountant["email"], "employee")
    bert = signed_in_at_provider(app, accountant)
    bert.get(f"/administrations/{company}/access")
    assert bert.status == 403 and "owner" in bert.alert
    stranger = signed_in_at_provider(app, make_account(app, "eve@example.com", PASSWORD))
    stranger.get(f"/administrations/{company}/access")
    unknown = stranger.alert
    assert stranger.status == 404
    stranger.get("/administrations/00000000000000000000000000000000/access")
    assert stranger.status == 404 and stranger.alert == unknown
    stranger.get("/account")
    token = stranger.page.forms["password-form"]["fields"]["csrf_token"]
    stranger.post(f"/administrations/{company}/access", {"email": "eve@example.com", "role": "owner", "csrf_token": token})
    assert stranger.status == 404 and membership(app, "eve@example.com", company) is None
    # Signed out: through the sign-in steps and back to the page.
    anonymous = type(owner_browser)(app)
    anonymous.get(f"/administrations/{company}/access", follow=False)
    assert anonymous.status == 302 and "/login/" in anonymous.location


# -- the claim -------------------------------------------------------------------------------


def administrations_in(http, tokens):
    claims = decode(http, tokens["id_token"])
    info = http.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).get_json()
    assert claims.claims["administrations"] == info["administrations"]
    return [(a["name"], a["role"]) for a in info["administrations"]]


def test_the_claim_follows_a_grant_and_a_removal_at_the_next_refresh(app, owner_browser, company, accountant, portal):
    bert = signed_in_at_provider(app, accountant)
    first = tokens_for(bert, portal, scope=FULL)
    assert administrations_in(bert.http, first) == []

    grant(owner_browser, company, accountant["email"], "accountant")
    second = refresh(bert.http, portal, first["refresh_token"]).get_json()
    assert administrations_in(bert.http, second) == [("Bakkerij Jansen", "accountant")]

    revoke(owner_browser, company, accountant["email"])
    third = refresh(bert.http, portal, second["refresh_token"]).get_json()
    assert "id_token" in third and administrations_in(bert.http, third) == []


# -- the CLI ---------------------------------------------------------------------------------


def test_cli_grant_list_revoke(app, cli, company, accountant):
    def run(*args):
        return cli.invoke(args=["access", *args])

    result = run("grant", "--administration", company, "--email", accountant["email"], "--role", "accountant", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == {"status": "granted"}
    result = run("grant", "--administration", company, "--email", "new@example.com", "--role", "employee", "--json")
    assert json.loads(result.stdout) == {"status": "invited"}
    assert "Bakkerij Jansen" in last_mail(app, "new@example.com").text
    listed = json.loads(run("list", "--administration", company, "--json").stdout)
    assert listed == [{"email": "anna@example.com", "role": "owner"},
                      {"email": accountant["email"], "role": "accountant"}]
    result = run("revoke", "--administration", company, "--email", accountant["email"])
    assert result.exit_code == 0
    assert json.loads(run("list", "--administration", company, "--json").stdout) == [
        {"email": "anna@example.com", "role": "owner"}]
    actors = {actor for actor, _, _ in audit_events(app, "access.granted") + audit_events(app, "access.revoked")}
    assert len(actors) == 1 and actors.pop().startswith("cli:")


@pytest.mark.parametrize("args, says", [
    (["grant", "--administration", "no-such-id", "--email", "x@example.com", "--role", "employee"], "no administration"),
    (["grant", "--administration", "{company}", "--email", "x@example.com", "--role", "director"], "Unknown role"),
    (["grant", "--administration", "{company}", "--email", "anna@example.com", "--role", "employee"], "has access to this administration already"),
    (["grant", "--administration", "{company}", "--email", "not-an-address", "--role", "employee"], "valid e-mail address"),
    (["revoke", "--administration", "{company}", "--email", "anna@example.com"], "at least one owner"),
    (["revoke", "--administration", "{company}", "--email", "nobody@example.com"], "has no access"),
    (["list", "--administration", "no-such-id"], "no administration"),
])
def test_cli_refusals_are_one_line_and_change_nothing(app, cli, company, args, says):
    """Refusals of the services come in English, as everywhere in the CLI (an operator's tool)."""
    result = cli.invoke(args=["access", *[a.replace("{company}", company) for a in args]])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and says.lower() in lines[0].lower(), result.output
    assert mail_count(app, "x@example.com") == 0 and audit_events(app, "access.granted") == []
    assert membership(app, "anna@example.com", company) == "owner"


# -- invitations on the access page: a second one, resend, withdraw ----------------------------


def test_a_second_invitation_is_refused_and_offers_to_send_the_open_one_again(app, owner_browser, company):
    b = grant(owner_browser, company, "colleague@example.com", "employee")
    first_link = last_mail(app, "colleague@example.com").text
    grant(b, company, "Colleague@Example.com", "accountant")
    assert b.status == 409 and "still open" in b.alert
    assert b.page.forms["grant-access"]["fields"]["email"] == "Colleague@Example.com"
    assert mail_count(app, "colleague@example.com") == 1
    with app.app_context():
        assert db.session.scalar(select(func.count(Invitation.id))) == 1
    # The refusal's own button sends the open invitation again, and the page says so.
    b.submit("resend-open")
    assert b.status == 200 and b.url.endswith("done=resent")
    assert "sent again" in b.page.ids["main"] and mail_count(app, "colleague@example.com") == 2
    second = last_mail(app, "colleague@example.com").text
    url = next(word for word in second.split() if word.startswith("http://idp.test/invitation/"))
    assert url not in first_link
    with app.app_context():
        (invitation,) = db.session.scalars(select(Invitation)).all()
        assert invitation.role == "employee"  # the open invitation, unchanged
    assert [d.get("invitation") for _, _, d in audit_events(app, "invitation.resent")] == [invitation.id]


def test_resend_and_withdraw_from_the_members_list(app, owner_browser, company):
    b = grant(owner_browser, company, "later@example.com", "accountant")
    invitation_id = open_invitation_id(app, "later@example.com")
    post_form(b, form_with(b, f"/access/invitations/{invitation_id}/resend"))
    assert b.url.endswith("done=resent") and "sent again" in b.page.ids["main"]
    assert mail_count(app, "later@example.com") == 2
    # Withdraw asks first; Cancel goes back and leaves the invitation open.
    post_form(b, form_with(b, f"/access/invitations/{invitation_id}/withdraw"))
    assert b.status == 200 and "later@example.com" in b.page.ids["main"] and "confirm-withdraw" in b.page.forms
    assert 'id="keep-invitation"' in b.text and open_invitation_id(app, "later@example.com") == invitation_id
    b.submit("confirm-withdraw")
    assert b.url.endswith("done=withdrawn") and "later@example.com" not in b.page.ids["members"]
    assert open_invitation_id(app, "later@example.com") is None
    # Once withdrawn, it is neither withdrawn again nor resent: a clear refusal, no mail.
    token = b.page.forms["grant-access"]["fields"]["csrf_token"]
    for action in ("resend", "withdraw"):
        b.post(f"/administrations/{company}/access/invitations/{invitation_id}/{action}", {"csrf_token": token, "confirm": "yes"})
        assert b.status == 404 and "no open invitation" in b.alert
    assert mail_count(app, "later@example.com") == 2


def test_only_the_owner_resends_or_withdraws_an_invitation(app, owner_browser, company, accountant):
    grant(owner_browser, company, accountant["email"], "employee")
    grant(owner_browser, company, "later@example.com", "accountant")
    invitation_id = open_invitation_id(app, "later@example.com")
    bert = signed_in_at_provider(app, accountant)
    bert.get("/account")
    token = bert.page.forms["password-form"]["fields"]["csrf_token"]
    for action in ("resend", "withdraw"):
        bert.post(f"/administrations/{company}/access/invitations/{invitation_id}/{action}", {"csrf_token": token, "confirm": "yes"})
        assert bert.status == 403 and bert.alert
    assert mail_count(app, "later@example.com") == 1 and open_invitation_id(app, "later@example.com") == invitation_id
